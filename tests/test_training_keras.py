"""Training parity with live Keras 3: weights after train_on_batch steps, fit histories, evaluate."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input, Masking

keras = pytest.importorskip("keras")


def randomized(layers, rng, scale=0.3):
    model = keras.Sequential(layers)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * scale for w in model.get_weights()])
    return model


def twin(keras_model, our_layers):
    ours = fg.Sequential(our_layers)
    ours.set_weights(keras_model.get_weights())
    return ours


def assert_weights_close(keras_model, ours, rtol):
    for k, o in zip(keras_model.get_weights(), ours.get_weights()):
        scale = max(np.abs(k).max(), 1e-3)
        np.testing.assert_allclose(o, k, atol=rtol * scale, rtol=rtol)


HEADS = {
    "binary_crossentropy": (1, "sigmoid", lambda rng, b: (rng.random((b, 1)) > 0.5).astype("float32")),
    "sparse_categorical_crossentropy": (3, "softmax", lambda rng, b: rng.integers(0, 3, b)),
    "categorical_crossentropy": (3, "softmax", lambda rng, b: np.eye(3, dtype="float32")[rng.integers(0, 3, b)]),
    "mse": (2, None, lambda rng, b: rng.standard_normal((b, 2)).astype("float32")),
    "mae": (2, "tanh", lambda rng, b: rng.standard_normal((b, 2)).astype("float32")),
    "huber": (2, None, lambda rng, b: 2 * rng.standard_normal((b, 2)).astype("float32")),
}

OPTIMIZERS = {
    "adam": lambda m: m.optimizers.Adam(learning_rate=0.01),
    "adam_amsgrad_clipnorm": lambda m: m.optimizers.Adam(learning_rate=0.01, amsgrad=True, clipnorm=0.5),
    "sgd_momentum_nesterov": lambda m: m.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    "sgd_clipvalue": lambda m: m.optimizers.SGD(learning_rate=0.1, clipvalue=0.01),
    "rmsprop_centered": lambda m: m.optimizers.RMSprop(learning_rate=0.01, centered=True, momentum=0.5),
    "adagrad_global_clipnorm": lambda m: m.optimizers.Adagrad(learning_rate=0.1, global_clipnorm=0.3),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["binary_crossentropy", "sparse_categorical_crossentropy", "mse"])
def test_train_on_batch_steps_match_keras(rng, optimizer, loss):
    units, activation, make_y = HEADS[loss]
    x = rng.standard_normal((16, 6, 5)).astype("float32")
    y = make_y(rng, 16)
    km = randomized([keras.Input((6, 5)), keras.layers.GRU(8), keras.layers.Dense(units, activation=activation)], rng)
    ours = twin(km, [Input((6, 5)), GRU(8), Dense(units, activation=activation)])
    km.compile(optimizer=OPTIMIZERS[optimizer](keras), loss=loss)
    config = {"class_name": type(km.optimizer).__name__, "config": km.optimizer.get_config()}
    ours.compile(optimizer=fg.optimizers.get(config), loss=loss)
    k_loss, o_loss = km.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(o_loss, k_loss, rtol=1e-5)
    assert_weights_close(km, ours, rtol=1e-4)
    for _ in range(4):
        k_loss, o_loss = km.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(o_loss, k_loss, rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mae", "huber"])
@pytest.mark.parametrize("reset_after,go_backwards", [(False, False), (True, True)])
def test_more_losses_and_gru_options(rng, loss, reset_after, go_backwards):
    units, activation, make_y = HEADS[loss]
    x = rng.standard_normal((12, 5, 4)).astype("float32")
    y = make_y(rng, 12)
    opts = dict(reset_after=reset_after, go_backwards=go_backwards, recurrent_activation="hard_sigmoid")
    km = randomized([keras.Input((5, 4)), keras.layers.GRU(6, return_sequences=True, **opts), keras.layers.GRU(5),
                     keras.layers.Dense(units, activation=activation)], rng)
    ours = twin(km, [Input((5, 4)), GRU(6, return_sequences=True, **opts), GRU(5), Dense(units, activation=activation)])
    km.compile(optimizer="adam", loss=loss, metrics=["mae"])
    ours.compile(optimizer="adam", loss=loss, metrics=["mae"])
    for _ in range(5):
        k_out, o_out = km.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(o_out, k_out, rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


def test_masked_sequence_loss_matches_keras(rng):
    """A Masking layer's mask reaches the GRU and the loss over time steps (Keras averages valid steps)."""
    x = rng.standard_normal((8, 7, 3)).astype("float32")
    x[0, 5:] = 0.0
    x[3, :2] = 0.0
    y = rng.standard_normal((8, 7, 2)).astype("float32")
    km = randomized([keras.Input((7, 3)), keras.layers.Masking(0.0), keras.layers.GRU(6, return_sequences=True),
                     keras.layers.Dense(2)], rng)
    ours = twin(km, [Input((7, 3)), Masking(0.0), GRU(6, return_sequences=True), Dense(2)])
    km.compile(optimizer="rmsprop", loss="mse")
    ours.compile(optimizer="rmsprop", loss="mse")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    assert_weights_close(km, ours, rtol=1e-4)


def test_fit_history_and_evaluate_match_keras(rng):
    x = rng.standard_normal((50, 6, 4)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    km = randomized([keras.Input((6, 4)), keras.layers.GRU(8), keras.layers.Dense(1, activation="sigmoid")], rng)
    ours = twin(km, [Input((6, 4)), GRU(8), Dense(1, activation="sigmoid")])
    for m in (km, ours):
        m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    kh = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.2, verbose=0).history
    oh = ours.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.2, verbose=0).history
    assert sorted(oh) == sorted(kh)
    for key in kh:
        np.testing.assert_allclose(oh[key], kh[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-4)
    np.testing.assert_allclose(ours.test_on_batch(x, y), km.test_on_batch(x, y), rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


def test_embedding_model_trains_like_keras(rng):
    from fastgru.layers import Embedding

    tokens = rng.integers(0, 12, (10, 6))
    y = rng.integers(0, 2, 10).astype("float32")[:, None]
    km = randomized([keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 4, mask_zero=True),
                     keras.layers.GRU(5), keras.layers.Dense(1, activation="sigmoid")], rng)
    ours = twin(km, [Embedding(12, 4, mask_zero=True, input_shape=(6,)), GRU(5), Dense(1, activation="sigmoid")])
    km.compile(optimizer="sgd", loss="binary_crossentropy")
    ours.compile(optimizer="sgd", loss="binary_crossentropy")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(tokens, y), km.train_on_batch(tokens, y), rtol=1e-5)
    assert_weights_close(km, ours, rtol=1e-4)


def test_activation_layer_head_trains_like_keras(rng, tmp_path):
    from fastgru.layers import Activation

    x = rng.standard_normal((12, 5, 3)).astype("float32")
    y = rng.integers(0, 3, 12)
    km = randomized([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(3),
                     keras.layers.Activation("softmax")], rng)
    ours = twin(km, [Input((5, 3)), GRU(4), Dense(3), Activation("softmax")])
    for m in (km, ours):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    assert_weights_close(km, ours, rtol=1e-4)
    path = tmp_path / "act.keras"
    km.save(path)
    np.testing.assert_allclose(fg.load_model(path).predict(x), km.predict(x, verbose=0), atol=2e-5)


@pytest.mark.keras
def test_compiled_metrics_ignore_sample_weight_as_keras(keras, rng):
    """Keras 3 weights the loss by sample_weight but not the compiled ``metrics`` (only
    ``weighted_metrics`` would be): evaluate and fit report the same numbers as Keras."""
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    sw = rng.random(16).astype(np.float32)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.Sequential([fg.layers.Input(shape=(5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    ours.set_weights(km.get_weights())
    km.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    ours.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    expected = km.evaluate(x, y, sample_weight=sw, batch_size=16, verbose=0)
    np.testing.assert_allclose(ours.evaluate(x, y, sample_weight=sw, batch_size=16, verbose=0), expected, rtol=1e-5)
    k_hist = km.fit(x, y, sample_weight=sw, batch_size=8, epochs=1, shuffle=False, verbose=0).history
    o_hist = ours.fit(x, y, sample_weight=sw, batch_size=8, epochs=1, shuffle=False, verbose=0).history
    for key in ("loss", "mae"):
        np.testing.assert_allclose(o_hist[key], k_hist[key], rtol=1e-4)
