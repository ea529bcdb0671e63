"""Keras 3's threshold counts, ``*At*`` metrics, F-scores, IoUs, correlations and ``Sum`` against Keras's own
metric objects: the same batches streamed into both (with and without ``sample_weight``, several thresholds,
``class_id``), the same configs both ways, Keras's string names, clear errors for bad options and inputs, and a
compiled GRU model read from a ``.keras`` file that evaluates and trains to Keras's metric history."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import correlation_metrics, f_score, iou_metrics, threshold_metrics

B = 7  # samples a batch


def _batch(kind: str, rng: np.random.Generator):
    """(y_true, y_pred) of one batch of the given kind."""
    f = np.float32
    if kind == "binary":  # multi-label 0/1 targets, uniform scores
        return rng.integers(0, 2, (B, 3)).astype(f), rng.random((B, 3)).astype(f)
    if kind == "grid":  # scores on the 200-threshold grid and at 0 and 1: bucket edges
        p = (rng.integers(0, 200, (B, 3)) / 199).astype(f)
        p[0, 0], p[1, 1], p[2, 2] = 0.0, 1.0, 0.5
        return rng.integers(0, 2, (B, 3)).astype(f), p
    if kind == "column":  # (B,) labels against a (B, 1) output
        return rng.integers(0, 2, B).astype(f), rng.random((B, 1)).astype(f)
    if kind == "onehot":  # one-hot targets, softmax-like scores with ties and an all-zero row
        p = np.round(rng.dirichlet(np.ones(4), B), 1).astype(f)
        p[0] = 0.0
        return np.eye(4, dtype=f)[rng.integers(0, 4, B)], p
    if kind == "multilabel":
        return rng.integers(0, 2, (B, 4)).astype(f), rng.random((B, 4)).astype(f)
    if kind == "sparse":  # class ids, some outside [0, 3)
        return rng.integers(-1, 4, (B, 2)), rng.integers(0, 4, (B, 2))
    if kind == "onehot3":
        return np.eye(3, dtype=f)[rng.integers(0, 3, B)], rng.random((B, 3)).astype(f)
    if kind == "onehot_ids":  # one-hot targets, predicted class ids
        return np.eye(3, dtype=f)[rng.integers(0, 3, B)], rng.integers(0, 3, B)
    if kind == "ids_scores":  # class ids, scores
        return rng.integers(0, 3, B), rng.random((B, 3)).astype(f)
    if kind == "binary01":
        return rng.integers(0, 2, (B, 2)).astype(f), rng.random((B, 2)).astype(f)
    t = rng.normal(size=(B, 5)).astype(f)  # "regression"
    return t, (t * 0.5 + rng.normal(size=(B, 5))).astype(f)


CASES = [
    ("TruePositives", {}, "binary"), ("TruePositives", {"thresholds": [0.2, 0.5, 0.9]}, "binary"),
    ("TrueNegatives", {"thresholds": 0.3}, "binary"), ("TrueNegatives", {"thresholds": [0.0, 0.5, 1.0]}, "grid"),
    ("FalsePositives", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "grid"), ("FalsePositives", {}, "column"),
    ("FalseNegatives", {"thresholds": [0.9, 0.1]}, "grid"), ("FalseNegatives", {}, "binary"),
    ("PrecisionAtRecall", {"recall": 0.5}, "binary"), ("PrecisionAtRecall", {"recall": 0.8, "num_thresholds": 1},
                                                        "binary"),
    ("RecallAtPrecision", {"precision": 0.6, "class_id": 1}, "grid"),
    ("RecallAtPrecision", {"precision": 0.4, "num_thresholds": 2}, "column"),
    ("SensitivityAtSpecificity", {"specificity": 0.7, "num_thresholds": 50}, "grid"),
    ("SensitivityAtSpecificity", {"specificity": 0.5, "class_id": 0}, "multilabel"),
    ("SpecificityAtSensitivity", {"sensitivity": 0.4}, "grid"),
    ("SpecificityAtSensitivity", {"sensitivity": 0.9, "num_thresholds": 7, "class_id": 2}, "binary"),
    ("F1Score", {}, "onehot"), ("F1Score", {"average": "micro"}, "onehot"),
    ("F1Score", {"average": "macro", "threshold": 0.4}, "multilabel"), ("F1Score", {"average": "weighted"}, "onehot"),
    ("FBetaScore", {"beta": 2.0}, "multilabel"), ("FBetaScore", {"beta": 0.5, "average": "weighted",
                                                                 "threshold": 0.3}, "multilabel"),
    ("FBetaScore", {"beta": 1.5, "average": "micro", "threshold": 0.5}, "onehot"),
    ("FBetaScore", {"beta": 3.0, "average": "macro"}, "onehot"),
    ("PearsonCorrelation", {}, "regression"), ("ConcordanceCorrelation", {}, "regression"),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 2]}, "sparse"),
    ("IoU", {"num_classes": 3, "target_class_ids": [1], "ignore_class": 0}, "sparse"),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 1], "sparse_y_true": False}, "onehot_ids"),
    ("MeanIoU", {"num_classes": 3}, "sparse"), ("MeanIoU", {"num_classes": 3, "dtype": "float32"}, "sparse"),
    ("MeanIoU", {"num_classes": 3, "sparse_y_pred": False, "ignore_class": 2}, "ids_scores"),
    ("BinaryIoU", {}, "binary01"), ("BinaryIoU", {"target_class_ids": [1], "threshold": 0.3}, "binary01"),
    ("OneHotIoU", {"num_classes": 3, "target_class_ids": [0, 2]}, "onehot3"),
    ("OneHotMeanIoU", {"num_classes": 3}, "onehot3"),
    ("OneHotMeanIoU", {"num_classes": 3, "dtype": "float32"}, "onehot3"),
]


def _weights(kind, kwargs, rng):
    shape = (B, 2) if kind in ("sparse", "binary01") else (B,)  # (IoU: a weight per label, flattened)
    if kind in ("sparse", "onehot3", "binary01", "onehot_ids", "ids_scores") and kwargs.get("dtype") != "float32":
        return rng.integers(0, 3, shape)  # (an int64 IoU truncates float weights, with Keras's warning)
    return rng.random(shape).astype(np.float32)


@pytest.mark.keras
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cls_name,kwargs,kind", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_streamed_values_and_configs_match_keras(keras, cls_name, kwargs, kind, weighted):
    rng = np.random.default_rng(zlib.crc32(f"{cls_name}{kwargs}{kind}{weighted}".encode()))
    theirs = getattr(keras.metrics, cls_name)(**kwargs, name="m")
    ours = getattr(fg.metrics, cls_name)(**kwargs, name="m")
    converted = fg.metrics.get(theirs)  # (a Keras object, read through its config)
    assert type(converted) is type(ours)
    assert ours.get_config() == theirs.get_config() == converted.get_config()
    again = type(ours).from_config(ours.get_config())
    assert again.get_config() == ours.get_config()
    assert ours._direction == getattr(theirs, "_direction", None)
    for _ in range(3):
        y_true, y_pred = _batch(kind, rng)
        w = _weights(kind, kwargs, rng) if weighted else None
        theirs.update_state(y_true, y_pred, sample_weight=w)
        for m in (ours, converted):
            m.update_state(y_true, y_pred, sample_weight=w)
    want = np.asarray(theirs.result())
    np.testing.assert_allclose(ours.result(), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(converted.result(), want, rtol=1e-6, atol=1e-7)
    ours.reset_state()
    theirs.reset_state()
    np.testing.assert_allclose(np.nan_to_num(ours.result()), np.nan_to_num(np.asarray(theirs.result())), atol=0)


@pytest.mark.keras
@pytest.mark.parametrize("weighted", [False, True])
def test_sum_matches_keras(keras, weighted):
    rng = np.random.default_rng(3)
    theirs, ours = keras.metrics.Sum(), fg.metrics.Sum()
    assert ours.get_config() == theirs.get_config()
    for shape in [(B,), (B, 3), (B, 2, 3)]:
        values = rng.normal(size=shape).astype(np.float32)
        w = rng.random(B).astype(np.float32) if weighted else None
        theirs.update_state(values, sample_weight=w)
        ours.update_state(values, sample_weight=w)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6, atol=1e-7)


@pytest.mark.keras
def test_pearson_over_axis_0_matches_keras(keras):
    rng = np.random.default_rng(4)
    for cls in ("PearsonCorrelation", "ConcordanceCorrelation"):
        theirs, ours = getattr(keras.metrics, cls)(axis=0), getattr(fg.metrics, cls)(axis=0)
        assert ours.get_config() == theirs.get_config()
        for _ in range(2):
            t, p = _batch("regression", rng)
            theirs.update_state(t, p)
            ours.update_state(t, p)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6, atol=1e-7)


@pytest.mark.keras
def test_keras_string_names(keras):
    """Keras's ``metrics.get`` takes each class's snake-case name (those that need a target or ``num_classes``
    fail there for want of it); fastgru takes the same names, no others."""
    names = {**threshold_metrics.NAMES, **f_score.NAMES, **iou_metrics.NAMES, **correlation_metrics.NAMES}
    for name, cls in names.items():
        try:
            theirs = type(keras.metrics.get(name))
        except TypeError:  # (a required argument missing)
            with pytest.raises(ValueError, match="needs"):
                fg.metrics.get(name)
            continue
        assert theirs.__name__ == cls.__name__
        ours = fg.metrics.get(name)
        assert type(ours) is cls and ours.name == name
    for name in ("iou", "mean_iou", "fbeta_score", "tp", "binary_iou"):
        with pytest.raises(ValueError):
            keras.metrics.get(name)
        with pytest.raises(ValueError, match="could not interpret"):
            fg.metrics.get(name)


def test_unnamed_metrics_are_numbered_as_keras():
    first, second = fg.metrics.OneHotMeanIoU(3), fg.metrics.OneHotMeanIoU(3)
    assert first.name.startswith("one_hot_mean_io_u") and second.name.startswith("one_hot_mean_io_u")
    assert first.name != second.name
    assert fg.metrics.F1Score().name == "f1_score" == fg.metrics.F1Score().name
    assert fg.metrics.FBetaScore().name == "fbeta_score"


def test_several_thresholds_give_arrays_and_counts():
    m = fg.metrics.TruePositives(thresholds=[0.2, 0.5, 0.8])
    m.update_state([[1, 0, 1, 1]], [[0.3, 0.9, 0.6, 0.9]], sample_weight=[2.0])
    result = m.result()  # (one value per threshold: a float32 array, as Keras's evaluate gives)
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    np.testing.assert_array_equal(result, [6.0, 4.0, 2.0])
    f = fg.metrics.FalsePositives()
    f.update_state([0, 1, 0, 0], [0, 0, 1, 1])
    assert f.result() == 2.0


def test_float_weights_of_an_integer_iou_are_truncated_with_keras_warning():
    m = fg.metrics.MeanIoU(2)
    with pytest.warns(UserWarning, match="weight as `float`"):
        m.update_state([0, 1, 1], [0, 1, 0], sample_weight=np.array([1.9, 0.5, 1.0]))
    assert m.total_cm.tolist() == [[1, 0], [1, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fg.metrics.MeanIoU(2, dtype="float32").update_state([0, 1], [0, 1], sample_weight=np.array([0.5, 1.0]))


@pytest.mark.parametrize("make,match", [
    (lambda: fg.metrics.TruePositives(thresholds=[0.5, 1.5]), r"\[0, 1\].*1\.5"),
    (lambda: fg.metrics.FalseNegatives(thresholds="0.5"), r"\[0, 1\]"),
    (lambda: fg.metrics.FalsePositives(thresholds=[]), "at least one"),
    (lambda: fg.metrics.PrecisionAtRecall(1.2), r"`recall`.*\[0, 1\].*1\.2"),
    (lambda: fg.metrics.PrecisionAtRecall(), "needs `recall`"),
    (lambda: fg.metrics.SpecificityAtSensitivity(0.5, num_thresholds=0), r"num_thresholds.*> 0.*0"),
    (lambda: fg.metrics.F1Score(average="samples"), r"average.*'micro'.*samples"),
    (lambda: fg.metrics.FBetaScore(beta=0.0), r"beta.*> 0"),
    (lambda: fg.metrics.FBetaScore(threshold=1.5), r"0 < threshold <= 1.*1\.5"),
    (lambda: fg.metrics.IoU(3, [0, 3]), r"\[0, 3\).*\[0, 3\]"),
    (lambda: fg.metrics.IoU(3), "target_class_ids"),
    (lambda: fg.metrics.MeanIoU(0), "num_classes must be > 0"),
    (lambda: fg.metrics.PearsonCorrelation(axis=None), "axis must be an integer"),
    (lambda: fg.metrics.TruePositives(dtype="int32"), "float type"),
])
def test_invalid_options_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("metric,args,match", [
    (lambda: fg.metrics.TruePositives(), (np.zeros((4, 3)), np.zeros((4, 2))), r"\(4, 2\).*\(4, 3\)"),
    (lambda: fg.metrics.RecallAtPrecision(0.5, class_id=3), (np.zeros((4, 3)), np.zeros((4, 3))), "class_id"),
    (lambda: fg.metrics.SensitivityAtSpecificity(0.5, class_id=0), (np.zeros(4), np.zeros(4)), "class_id"),
    (lambda: fg.metrics.TrueNegatives(), (np.zeros((4, 3)), np.zeros((4, 3)), np.ones(3)), "sample_weight"),
    (lambda: fg.metrics.F1Score(), (np.zeros(4), np.zeros(4)), "2D inputs"),
    (lambda: fg.metrics.F1Score(), (np.zeros((4, 1)), np.zeros((4, 3))), r"\(4, 3\).*\(4, 1\)"),
    (lambda: fg.metrics.F1Score(), (np.zeros((4, 3)), np.zeros((4, 3)), np.ones(3)), r"\(4,\).*\(3,\)"),
    (lambda: fg.metrics.MeanIoU(3), (np.zeros(4), np.zeros(5)), "4 labels and 5 predictions"),
    (lambda: fg.metrics.PearsonCorrelation(), (np.zeros((4, 3)), np.zeros((4, 2))), r"\(4, 2\).*\(4, 3\)"),
    (lambda: fg.metrics.Sum(), (np.zeros((4, 3)), np.zeros(3)), "sample_weight"),
])
def test_bad_inputs_are_refused(metric, args, match):
    with pytest.raises(ValueError, match=match):
        metric().update_state(*args)


def test_f1_score_keeps_its_classes_and_sum_is_no_compiled_metric():
    m = fg.metrics.F1Score(average=None)
    assert isinstance(m.result(), np.ndarray) and m.result().shape == (0,)
    m.update_state(np.eye(3)[[0, 1, 2, 1]], np.eye(3)[[0, 1, 1, 1]])
    np.testing.assert_allclose(m.result(), [1.0, 0.8, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="built for 3 classes"):
        m.update_state(np.eye(4), np.eye(4))
    m.reset_state()
    assert m.result().dtype == np.float32
    np.testing.assert_array_equal(m.result(), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="cannot be compiled"):
        fg.metrics.Sum().update_state(np.zeros(3), np.zeros(3), mask=None)


@pytest.mark.keras
def test_compiled_gru_from_keras_file_reports_keras_metrics(keras, tmp_path):
    """A GRU classifier compiled in Keras with the new metrics, saved, read by ``fg.load_model``: evaluate and two
    epochs of fit (with sample weights for the weighted metrics) log Keras's numbers."""
    rng = np.random.default_rng(7)
    M = keras.metrics
    keras.utils.set_random_seed(7)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(6), keras.layers.Dense(3, activation="softmax")])
    km.set_weights([(rng.standard_normal(w.shape) * 0.6).astype(np.float32) for w in km.get_weights()])
    x = rng.standard_normal((20, 5, 3)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 20)]
    sw = rng.random(20).astype(np.float32)
    km.compile(keras.optimizers.Adam(0.02), "categorical_crossentropy",
               metrics=[M.TruePositives(name="tp"), M.FalseNegatives(thresholds=[0.3, 0.6], name="fn"),
                        M.RecallAtPrecision(0.5, class_id=1, name="rap"),
                        M.SensitivityAtSpecificity(0.6, num_thresholds=50, name="sas"),
                        M.F1Score(average="macro", name="f1"), M.OneHotMeanIoU(3, name="miou"),
                        M.OneHotIoU(3, [0, 2], name="iou02"), M.PearsonCorrelation(name="pearson"),
                        M.ConcordanceCorrelation(name="ccc")],
               weighted_metrics=[M.TrueNegatives(name="tn"),
                                 M.FBetaScore(beta=2.0, average="weighted", threshold=0.4, name="fbeta")])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    want = km.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    theirs_h = km.fit(x, y, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    ours_h = ours.fit(x, y, sample_weight=sw, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(ours_h) == sorted(theirs_h)
    for key in theirs_h:
        np.testing.assert_allclose(np.asarray(ours_h[key], np.float64), np.asarray(theirs_h[key], np.float64),
                                   rtol=1e-5, atol=1e-6, err_msg=key)
