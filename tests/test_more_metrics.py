"""Keras 3's other metrics (fastgru.training.more_metrics): values against their formulas without TensorFlow,
against Keras's own metric objects batch by batch (weights, masks, names, configs), and in compiled models
loaded from Keras files (fit and evaluate report Keras's numbers)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import metrics, more_metrics


def test_formulas(rng):
    t, p = rng.uniform(0.5, 2, (6, 3)), rng.uniform(0.5, 2, (6, 3))
    m = metrics.get("mape")
    m.update_state(t, p)
    np.testing.assert_allclose(m.result(), 100 * np.mean(np.abs((t - p) / t)), rtol=1e-5)
    rmse = more_metrics.RootMeanSquaredError()
    rmse.update_state(t[:4], p[:4])
    rmse.update_state(t[4:], p[4:], sample_weight=np.array([0.0, 2.0]))
    err = ((t - p) ** 2).mean(axis=1)
    np.testing.assert_allclose(rmse.result(), np.sqrt((err[:4].sum() + 2 * err[5]) / 6), rtol=1e-5)
    cos = metrics.get("cosine_similarity")
    cos.update_state(t, p)
    expected = np.mean((t * p).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(p, axis=1))
    np.testing.assert_allclose(cos.result(), expected, rtol=1e-5)
    acc = more_metrics.Accuracy()
    acc.update_state(np.array([1, 2, 3, 4]), np.array([1, 0, 3, 0]))
    assert acc.result() == 0.5


def test_top_k_ties_and_non_finite_rows():
    scores = np.array([[0.1, 0.5, 0.5, 0.2], [0.4, 0.3, 0.2, 0.1], [np.nan, 0.9, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]])
    targets = np.array([2, 3, 1, 0])
    # row 0: the target ties the best score (in); row 1: fourth of four (out at k=2); row 2: a NaN (out); row 3 out
    np.testing.assert_array_equal(more_metrics.sparse_top_k_categorical_accuracy(targets, scores, k=2), [1, 0, 0, 0])
    np.testing.assert_array_equal(more_metrics.top_k_categorical_accuracy(np.eye(4)[targets], scores, k=4),
                                  [1, 1, 0, 1])
    m = metrics.get({"class_name": "SparseTopKCategoricalAccuracy", "config": {"k": 1, "name": "top1"}})
    m.update_state(targets[:, None], scores)
    assert (m.name, m.result(), m.get_config()["k"]) == ("top1", 0.25, 1)
    with pytest.raises(ValueError, match="from_sorted_ids=True is not supported"):
        more_metrics.SparseTopKCategoricalAccuracy(from_sorted_ids=True)


def test_names_resolve_as_keras():
    for name, cls in [("mape", "MeanAbsolutePercentageError"), ("MSLE", "MeanSquaredLogarithmicError"),
                      ("root_mean_squared_error", "RootMeanSquaredError"), ("log_cosh_error", "LogCoshError"),
                      ("top_k_categorical_accuracy", "TopKCategoricalAccuracy"), ("bce", "BinaryCrossentropy"),
                      ("RootMeanSquaredError", "RootMeanSquaredError")]:
        m = metrics.get(name)
        assert type(m).__name__ == cls and m.name == name
    with pytest.raises(ValueError, match="could not interpret metric identifier 'rmse'"):
        metrics.get("rmse")  # (Keras has no such name either)
    with pytest.raises(ValueError, match="only axis=-1"):
        metrics.get({"class_name": "CategoricalCrossentropy", "config": {"axis": 1}})


@pytest.mark.keras
@pytest.mark.parametrize("name,kind", [
    ("MeanAbsolutePercentageError", "reg"), ("MeanSquaredLogarithmicError", "reg"), ("LogCoshError", "reg"),
    ("RootMeanSquaredError", "reg"), ("CosineSimilarity", "reg"), ("Poisson", "pos"), ("KLDivergence", "prob"),
    ("CategoricalCrossentropy", "prob"), ("CategoricalHinge", "prob"), ("TopKCategoricalAccuracy", "prob"),
    ("SparseTopKCategoricalAccuracy", "sparse"), ("SparseCategoricalCrossentropy", "sparse"),
    ("BinaryCrossentropy", "binary"), ("Hinge", "binary"), ("SquaredHinge", "binary"), ("Accuracy", "int"),
])
def test_matches_keras_metric_objects(keras, rng, name, kind):
    theirs = getattr(keras.metrics, name)()
    ours = metrics.get({"class_name": name, "config": theirs.get_config()})
    assert ours.name == theirs.name
    for batch in range(3):
        if kind in ("reg", "pos"):
            t, p = rng.normal(size=(5, 4)) + 2, rng.normal(size=(5, 4)) + (2 if kind == "reg" else 3)
        elif kind in ("prob", "sparse"):
            p = rng.dirichlet(np.ones(6), size=5)
            t = rng.integers(0, 6, size=(5, 1)) if kind == "sparse" else np.eye(6)[rng.integers(0, 6, 5)]
        elif kind == "binary":
            t, p = rng.integers(0, 2, size=(5, 1)).astype(float), rng.uniform(size=(5, 1))
        else:
            t, p = rng.integers(0, 3, size=(5, 2)), rng.integers(0, 3, size=(5, 2))
        t, p = np.asarray(t, np.float32), np.asarray(p, np.float32)
        w = rng.uniform(size=5).astype(np.float32) if batch == 1 else None
        theirs.update_state(t, p, sample_weight=w)
        ours.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
def test_compiled_keras_models_report_keras_metrics(keras, rng, tmp_path):
    L, M = keras.layers, keras.metrics
    x = rng.normal(size=(10, 6, 4)).astype(np.float32)
    x[2, 4:] = 0
    y = rng.normal(size=(10, 3)).astype(np.float32) + 2
    km = keras.Sequential([keras.Input((6, 4)), L.Masking(), L.GRU(5), L.Dense(3)])
    km.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in km.get_weights()])
    km.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mape", "msle", M.RootMeanSquaredError(),
                                                             M.LogCoshError(name="lc"), "cosine_similarity"])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    theirs_h = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    ours_h = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(ours_h) == sorted(theirs_h)
    for key in theirs_h:
        np.testing.assert_allclose(ours_h[key], theirs_h[key], rtol=1e-4, err_msg=key)
    theirs_e, ours_e = km.evaluate(x, y, verbose=0, return_dict=True), ours.evaluate(x, y, verbose=0, return_dict=True)
    for key in theirs_e:
        np.testing.assert_allclose(ours_e[key], theirs_e[key], rtol=1e-4, err_msg=key)


@pytest.mark.keras
@pytest.mark.parametrize("options", [{}, {"class_aggregation": "variance_weighted_average"},
                                     {"class_aggregation": None}, {"num_regressors": 2}])
def test_r2_score_matches_keras(keras, rng, options):
    theirs = keras.metrics.R2Score(**options)
    ours = metrics.get({"class_name": "R2Score", "config": theirs.get_config()})
    for batch in range(3):
        t = rng.normal(size=(6, 3)).astype(np.float32)
        p = (t + rng.normal(size=(6, 3)) * 0.5).astype(np.float32)
        w = rng.uniform(size=6).astype(np.float32) if batch == 1 else None
        theirs.update_state(t, p, sample_weight=w)
        ours.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-5, atol=1e-6)


def test_r2_score_formula(rng):
    t, p = rng.normal(size=(20, 1)), rng.normal(size=(20, 1))
    m = metrics.get("r2_score")
    m.update_state(t, p)
    expected = 1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    np.testing.assert_allclose(m.result(), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="class_aggregation"):
        more_metrics.R2Score(class_aggregation="mean")
