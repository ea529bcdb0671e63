"""Numerical robustness: activations, losses and the GRU kernels stay finite on inputs of +-1e4 and on large
weights wherever Keras gives finite numbers, and agree with Keras there."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru import activations
from fastgru.layers import GRU, Dense, Input
from fastgru.training import losses

EXTREME = np.array([-1e4, -1e3, -100.0, -30.0, -10.0, -1.0, 0.0, 1.0, 10.0, 30.0, 100.0, 1e3, 1e4], np.float32)
NAMES = ["linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "softsign", "elu", "selu", "softplus", "swish",
         "gelu", "softmax", "relu6", "leaky_relu", "mish", "log_softmax", "hard_tanh", "celu", "hard_silu",
         "sparse_plus", "squareplus", "tanh_shrink", "log_sigmoid", "soft_shrink", "hard_shrink", "sparse_sigmoid"]
# (exponential is left out: exp(1e4) is inf in Keras too)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_numpy_activations_finite_and_like_keras_on_extreme_inputs(keras, name, dtype):
    x = np.stack([EXTREME, -EXTREME[::-1]]).astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # stable forms never overflow
        got = activations.apply(name, x)
        dy = np.ones_like(x)
        grad = activations.gradient(name, x, got, dy)
    want = np.asarray(getattr(keras.activations, name)(keras.ops.convert_to_tensor(x)))
    assert np.isfinite(want).all()
    assert np.isfinite(got).all() and np.isfinite(grad).all()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "hard_sigmoid", "relu", "softsign", "elu", "selu", "softplus",
                                  "swish", "gelu", "linear"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_activations_finite_on_extreme_inputs(name, dtype):
    """The Numba activations the GRU kernels use (including float32's rational tanh/sigmoid)."""
    from fastgru._kernels import activations as k

    x = np.concatenate([EXTREME, -EXTREME]).astype(dtype)
    v = x.copy()
    k.activate_inplace(k.fast_code(activations.kernel_code(name), np.dtype(dtype)), v)
    assert np.isfinite(v).all(), (name, v)
    np.testing.assert_allclose(v, activations.apply(name, x), rtol=2e-6, atol=1e-6 * max(1.0, np.abs(x).max()))
    d = np.ones_like(v)
    k.derivative_from_output(k.fast_code(activations.kernel_code(name), np.dtype(dtype)), v, d)
    assert np.isfinite(d).all()


LOSS_CASES = [
    ("binary_crossentropy", True), ("binary_crossentropy", False),
    ("categorical_crossentropy", True), ("categorical_crossentropy", False),
    ("sparse_categorical_crossentropy", True), ("sparse_categorical_crossentropy", False),
    ("mean_squared_error", False), ("mean_absolute_error", False), ("huber", False),
]


@pytest.mark.parametrize("name,from_logits", LOSS_CASES)
def test_losses_finite_and_like_keras_on_extreme_predictions(keras, name, from_logits):
    rng = np.random.default_rng(0)
    n, c = 8, 3
    if from_logits:
        y_pred = rng.choice([-1e4, -100.0, 0.0, 100.0, 1e4], size=(n, c)).astype(np.float32)
    else:  # probabilities at and beyond the clipping bounds
        y_pred = rng.choice([0.0, 1e-30, 0.5, 1.0 - 1e-8, 1.0], size=(n, c)).astype(np.float32)
        if name == "categorical_crossentropy":
            y_pred[:, 0] += 1e-3  # Keras renormalises; keep every row's sum positive
    if name == "sparse_categorical_crossentropy":
        y_true = rng.integers(0, c, size=(n,))
    elif name == "categorical_crossentropy":
        y_true = np.eye(c, dtype=np.float32)[rng.integers(0, c, size=n)]
    else:
        y_true = rng.integers(0, 2, size=(n, c)).astype(np.float32)
    kwargs = {"from_logits": True} if from_logits else {}
    ours = losses.get(name)
    if from_logits:
        ours.from_logits = True
    value, grad = ours.value_and_grad(y_true, y_pred)
    keras_loss = keras.losses.get({"class_name": type(ours).__name__, "config": kwargs})
    want = float(keras_loss(y_true, y_pred))
    assert np.isfinite(want)
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5 * max(1.0, abs(want)))


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_model_on_extreme_inputs_and_large_weights_matches_keras(keras, reset_after):
    from keras import layers as L

    rng = np.random.default_rng(4)
    x = rng.choice([-1e4, -50.0, 0.0, 50.0, 1e4], size=(4, 7, 5)).astype(np.float32)
    km = keras.Sequential([keras.Input((7, 5)), L.GRU(6, reset_after=reset_after, return_sequences=True),
                           L.GRU(4, activation="softplus", recurrent_activation="sigmoid", reset_after=reset_after),
                           L.Dense(3, activation="sigmoid")])
    km.set_weights([(rng.standard_normal(w.shape) * 100.0).astype(np.float32) for w in km.get_weights()])
    want = np.asarray(km(x))
    model = fg.Sequential([Input(shape=(7, 5)), GRU(6, reset_after=reset_after, return_sequences=True),
                           GRU(4, activation="softplus", reset_after=reset_after), Dense(3, activation="sigmoid")])
    model.set_weights(km.get_weights())
    for dtype in (np.float32, np.float64):
        got = model.predict(x.astype(dtype))
        assert np.isfinite(want).all() and np.isfinite(got).all()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_gru_kernels_stay_finite_with_huge_preactivations():
    """Pre-activations of +-1e8 (weights 1e4 times inputs 1e4) saturate the gates instead of overflowing."""
    model = fg.Sequential([Input(shape=(3, 2)), GRU(3)])
    weights = [np.full(w.shape, 1e4, np.float32) * np.sign(np.arange(w.size).reshape(w.shape) % 3 - 1)
               for w in model.get_weights()]
    model.set_weights(weights)
    x = np.array([[[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4]]], np.float32)
    for dtype in (np.float32, np.float64):
        y = model.predict(x.astype(dtype))
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_training_on_extreme_logits_keeps_finite_gradients():
    model = fg.Sequential([Input(shape=(4, 3)), GRU(4), Dense(2, activation="softmax")])
    model.set_weights([w * 50 for w in model.get_weights()])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).choice([-1e4, 1e4], size=(16, 4, 3)).astype(np.float32)
    y = np.arange(16) % 2
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
