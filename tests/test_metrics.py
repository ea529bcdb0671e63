"""Streaming metrics against keras.metrics, and the "accuracy" selection rule of Keras 3."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import metrics

RTOL = 1e-6
BATCHES = (5, 3, 8)  # uneven batch sizes: results are weighted by samples


def _binary(rng, b, t_shape, p_shape):
    return (rng.random((b,) + t_shape) > 0.5).astype(np.float32), rng.random((b,) + p_shape).astype(np.float32)


def _categorical(rng, b, shape):
    c = shape[-1]
    return (np.eye(c, dtype=np.float32)[rng.integers(0, c, (b,) + shape[:-1])],
            rng.random((b,) + shape).astype(np.float32))


def _sparse(rng, b, t_shape, p_shape):
    return rng.integers(0, p_shape[-1], (b,) + t_shape), rng.random((b,) + p_shape).astype(np.float32)


def _regression(rng, b, t_shape, p_shape):
    return rng.normal(size=(b,) + t_shape).astype(np.float32), rng.normal(size=(b,) + p_shape).astype(np.float32)


CASES = [
    ("binary", "BinaryAccuracy", {}, lambda r, b: _binary(r, b, (1,), (1,))),
    ("binary_rank1_labels", "BinaryAccuracy", {}, lambda r, b: _binary(r, b, (), (1,))),
    ("binary_threshold", "BinaryAccuracy", {"threshold": 0.7}, lambda r, b: _binary(r, b, (3,), (3,))),
    ("binary_seq", "BinaryAccuracy", {}, lambda r, b: _binary(r, b, (6, 1), (6, 1))),
    ("binary_seq_squeezed_labels", "BinaryAccuracy", {}, lambda r, b: _binary(r, b, (6,), (6, 1))),
    ("categorical", "CategoricalAccuracy", {}, lambda r, b: _categorical(r, b, (4,))),
    ("categorical_seq", "CategoricalAccuracy", {}, lambda r, b: _categorical(r, b, (6, 4))),
    ("sparse", "SparseCategoricalAccuracy", {}, lambda r, b: _sparse(r, b, (), (4,))),
    ("sparse_col", "SparseCategoricalAccuracy", {}, lambda r, b: _sparse(r, b, (1,), (4,))),
    ("sparse_seq", "SparseCategoricalAccuracy", {}, lambda r, b: _sparse(r, b, (6,), (6, 4))),
    ("mse", "MeanSquaredError", {}, lambda r, b: _regression(r, b, (3,), (3,))),
    ("mse_rank1_labels", "MeanSquaredError", {}, lambda r, b: _regression(r, b, (), (1,))),
    ("mse_seq", "MeanSquaredError", {}, lambda r, b: _regression(r, b, (6, 2), (6, 2))),
    ("mae", "MeanAbsoluteError", {}, lambda r, b: _regression(r, b, (3,), (3,))),
    ("mae_seq", "MeanAbsoluteError", {}, lambda r, b: _regression(r, b, (6, 2), (6, 2))),
]
IDS = [c[0] for c in CASES]


# ---------------------------------------------------------------- pure NumPy ---------
def test_binary_accuracy_by_hand():
    m = metrics.BinaryAccuracy()
    m.update_state(np.array([[1.0], [0.0], [1.0], [0.0]]), np.array([[0.9], [0.2], [0.4], [0.5]]))
    assert m.result() == pytest.approx(0.75)
    m.update_state(np.array([[1.0], [1.0]]), np.array([[0.6], [0.7]]))
    assert m.result() == pytest.approx(5 / 6)
    m.reset_state()
    assert m.result() == 0.0


def test_sequence_accuracy_averages_per_sample_then_over_samples():
    m = metrics.SparseCategoricalAccuracy()
    y = np.array([[0, 1, 1], [2, 2, 2]])
    p = np.eye(3)[np.array([[0, 1, 0], [2, 2, 2]])]
    m.update_state(y, p)
    assert m.result() == pytest.approx((2 / 3 + 1) / 2)
    m.update_state(np.array([[0, 0, 0]]), np.eye(3)[np.array([[1, 1, 1]])])
    assert m.result() == pytest.approx((2 / 3 + 1 + 0) / 3)


def test_mean_weighted_by_batch_size_like_the_loss_tracker():
    m = metrics.Mean(name="loss")
    m.update_state(0.5, sample_weight=32)
    m.update_state(1.0, sample_weight=8)
    assert m.result() == pytest.approx((0.5 * 32 + 1.0 * 8) / 40)
    assert m.name == "loss"


def test_mean_of_arrays_counts_rows():
    m = metrics.Mean()
    m.update_state(np.array([[1.0, 3.0], [5.0, 7.0]]))
    m.update_state(np.array([10.0]))
    assert m.result() == pytest.approx((2 + 6 + 10) / 3)


def test_mask_drops_positions():
    m = metrics.MeanAbsoluteError()
    y = np.zeros((2, 3, 1))
    p = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    mask = np.array([[True, True, False], [True, False, False]])
    m.update_state(y, p, mask=mask)
    # Keras: values * mask, then per-sample mean of both, then total / count
    per_sample_values = np.array([(0 + 1) / 3, 3 / 3])
    per_sample_weight = np.array([2 / 3, 1 / 3])
    assert m.result() == pytest.approx(per_sample_values.sum() / per_sample_weight.sum())


@pytest.mark.parametrize(
    "t_shape,p_shape,cls",
    [
        ((8, 1), (8, 1), metrics.BinaryAccuracy),
        ((8,), (8, 1), metrics.BinaryAccuracy),
        ((8, 5, 1), (8, 5, 1), metrics.BinaryAccuracy),
        ((8, 5), (8, 5, 1), metrics.BinaryAccuracy),
        ((8,), (8, 4), metrics.SparseCategoricalAccuracy),
        ((8, 1), (8, 4), metrics.SparseCategoricalAccuracy),
        ((8, 5), (8, 5, 4), metrics.SparseCategoricalAccuracy),
        ((8, 4), (8, 4), metrics.CategoricalAccuracy),
        ((8, 5, 4), (8, 5, 4), metrics.CategoricalAccuracy),
    ],
)
def test_accuracy_picked_from_shapes(t_shape, p_shape, cls):
    for ident in ("accuracy", "acc", "Accuracy"):
        m = metrics.get(ident, t_shape, p_shape)
        assert type(m) is cls and m.name == ident
    auto = metrics.get("accuracy")
    assert auto.name == "accuracy" and auto.result() == 0.0
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, t_shape).astype(np.float32)
    auto.update_state(y, rng.random(p_shape).astype(np.float32))
    assert type(auto.metric) is cls


def test_get_names_and_errors():
    assert type(metrics.get("mae")) is metrics.MeanAbsoluteError and metrics.get("mae").name == "mae"
    assert metrics.get("mse").name == "mse"
    assert metrics.get("mean_squared_error").name == "mean_squared_error"
    assert type(metrics.get("binary_accuracy")) is metrics.BinaryAccuracy
    m = metrics.BinaryAccuracy(threshold=0.3)
    assert metrics.get(m) is m
    cfg = metrics.get({"class_name": "BinaryAccuracy", "config": {"name": "acc", "threshold": 0.2}})
    assert cfg.name == "acc" and cfg.threshold == 0.2
    assert metrics.BinaryAccuracy._direction == "up" and metrics.MeanSquaredError._direction == "down"
    with pytest.raises(ValueError, match="could not interpret"):
        metrics.get("precision_at_7")


# ---------------------------------------------------------------- live Keras ---------
@pytest.mark.keras
@pytest.mark.parametrize("name,cls_name,kw,make", CASES, ids=IDS)
def test_streaming_matches_keras(keras, name, cls_name, kw, make, rng):
    ours = getattr(metrics, cls_name)(**kw)
    theirs = getattr(keras.metrics, cls_name)(**kw)
    for b in BATCHES:
        y_true, y_pred = make(rng, b)
        ours.update_state(y_true, y_pred)
        theirs.update_state(y_true, y_pred)
        np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=RTOL)
    ours.reset_state()
    theirs.reset_state()
    y_true, y_pred = make(rng, 4)
    ours.update_state(y_true, y_pred)
    theirs.update_state(y_true, y_pred)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=RTOL)


@pytest.mark.keras
@pytest.mark.parametrize("name,cls_name,kw,make", CASES, ids=IDS)
def test_accuracy_selection_matches_keras(keras, name, cls_name, kw, make, rng):
    from keras.src.trainers import compile_utils

    y_true, y_pred = make(rng, 4)
    theirs = compile_utils.get_metric("accuracy", y_true, y_pred)
    ours = metrics.get("accuracy", y_true, y_pred)
    assert type(ours).__name__ == type(theirs).__name__ and ours.name == theirs.name


@pytest.mark.keras
def test_sample_weight_and_mask_match_keras(keras, rng):
    import tensorflow as tf

    y = rng.normal(size=(4, 5, 2)).astype(np.float32)
    p = rng.normal(size=(4, 5, 2)).astype(np.float32)
    mask = rng.random((4, 5)) > 0.3
    sw = rng.random(4).astype(np.float32)
    ours, theirs = metrics.MeanSquaredError(), keras.metrics.MeanSquaredError()
    ours.update_state(y, p, sample_weight=sw)
    theirs.update_state(y, p, sample_weight=sw)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=RTOL)
    ours.reset_state()
    theirs.reset_state()
    out = tf.identity(tf.constant(p))
    out._keras_mask = tf.constant(mask)
    ours.update_state(y, p, mask=mask)
    theirs.update_state(y, out)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=RTOL)


@pytest.mark.keras
def test_mean_matches_keras_loss_tracker(keras):
    ours, theirs = metrics.Mean(name="loss"), keras.metrics.Mean(name="loss")
    for value, n in [(0.6931, 32), (0.5, 32), (0.41, 7)]:
        ours.update_state(np.float32(value), sample_weight=n)
        theirs.update_state(np.float32(value), sample_weight=n)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=RTOL)


def test_mean_of_scalars_is_bit_identical_to_the_array_path():
    """``Mean.update_state`` of a scalar (the loss tracker's path, without the array plumbing) keeps the
    same float32 total and count as the per-sample reduction of the same value, for every kind of
    weight: none, an int batch size, a float, a float32."""
    from fastgru.training.metrics import Mean, _reduce_to_samplewise

    rng = np.random.default_rng(0)
    fast, general = Mean(), Mean()
    dt = general.dtype.type
    for i in range(400):
        value = float(rng.standard_normal() * 10.0 ** rng.integers(-8, 8))
        weight = [None, 32, 7.5, np.float32(3)][i % 4]
        fast.update_state(value, sample_weight=weight)
        values, w = _reduce_to_samplewise(np.asarray(value)[None], None if weight is None else [weight], general.dtype)
        general.total = dt(general.total + np.sum(values, dtype=general.dtype))
        general.count = dt(general.count + dt(1 if w is None else np.sum(w, dtype=general.dtype)))
        assert fast.total == general.total and fast.count == general.count
        assert type(fast.total) is type(general.total) is np.float32
    assert fast.result() == general.result()


@pytest.mark.parametrize("metric", ["iou", "mean_iou", {"class_name": "MeanMetricWrapper", "config": {}}])
def test_compile_refuses_an_unknown_metric_before_any_step(metric):
    """An unsupported metric is refused by ``compile`` (Keras refuses an unknown name there too), not by the
    first ``fit`` or ``evaluate`` step."""
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match="metric"):
        model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[metric])
    assert not model.compiled
