"""Forward parity with live Keras 3 (skipped cleanly when keras is not installed; CI installs it)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Embedding, Masking

ATOL, RTOL = 2e-5, 1e-4


def randomize(keras_layer, rng, scale=0.5):
    """Random weights with non-zero biases (Keras initialises biases to zero)."""
    weights = [rng.standard_normal(w.shape).astype(w.dtype) * scale for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)
    return weights


def keras_gru_and_ours(keras, rng, d=5, batch=None, **kwargs):
    k = keras.layers.GRU(**kwargs)
    k.build((batch, None, d))
    weights = randomize(k, rng)
    ours = GRU(**kwargs)
    ours.build((None, None, d))
    ours.set_weights(weights)
    return k, ours


@pytest.mark.parametrize(
    "reset_after,go_backwards,return_sequences,masked",
    list(itertools.product([True, False], [False, True], [False, True], [False, True])),
)
def test_gru_option_grid(keras, rng, reset_after, go_backwards, return_sequences, masked):
    k, ours = keras_gru_and_ours(keras, rng, units=6, reset_after=reset_after, go_backwards=go_backwards,
                                 return_sequences=return_sequences)
    x = rng.standard_normal((4, 7, 5)).astype(np.float32)
    mask = None
    if masked:
        mask = rng.random((4, 7)) > 0.3
        mask[0, -2:] = False
        mask[1, :2] = False
        mask[:, 3] = True
    expected = np.asarray(k(x, mask=mask))
    np.testing.assert_allclose(ours(x, mask=mask), expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_zero_output_for_mask(keras, rng, return_sequences):
    k, ours = keras_gru_and_ours(keras, rng, units=4, return_sequences=return_sequences, zero_output_for_mask=True)
    x = rng.standard_normal((3, 6, 5)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0, 0], [0, 1, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0]], bool)
    np.testing.assert_allclose(ours(x, mask=mask), np.asarray(k(x, mask=mask)), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "linear", "softsign", "elu", "hard_sigmoid",
                                        "selu", "softplus", "silu", "gelu", "relu6", "leaky_relu", "hard_tanh", "celu",
                                        "log_sigmoid", "sparse_plus", "squareplus", "exponential", "mish",
                                        "hard_silu", "hard_swish"])
def test_gru_activations(keras, rng, activation):
    k, ours = keras_gru_and_ours(keras, rng, units=6, activation=activation, return_sequences=True)
    x = rng.standard_normal((3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(x), np.asarray(k(x)), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("recurrent_activation", ["sigmoid", "hard_sigmoid", "tanh", "softsign"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_recurrent_activations(keras, rng, recurrent_activation, reset_after):
    k, ours = keras_gru_and_ours(keras, rng, units=6, recurrent_activation=recurrent_activation,
                                 reset_after=reset_after, return_sequences=True)
    x = rng.standard_normal((3, 5, 5)).astype(np.float32) * 2
    np.testing.assert_allclose(ours(x), np.asarray(k(x)), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_without_bias(keras, rng, reset_after):
    k, ours = keras_gru_and_ours(keras, rng, units=6, use_bias=False, reset_after=reset_after)
    x = rng.standard_normal((3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(x), np.asarray(k(x)), atol=ATOL, rtol=RTOL)


def test_initial_state_and_return_state(keras, rng):
    k, ours = keras_gru_and_ours(keras, rng, units=6, return_state=True, return_sequences=True)
    x = rng.standard_normal((3, 5, 5)).astype(np.float32)
    h0 = rng.standard_normal((3, 6)).astype(np.float32)
    k_out, k_h = k(x, initial_state=[h0])
    out, h = ours(x, initial_state=[h0])
    np.testing.assert_allclose(out, np.asarray(k_out), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(h, np.asarray(k_h), atol=ATOL, rtol=RTOL)


def test_stateful_carries_state_across_calls(keras, rng):
    k, ours = keras_gru_and_ours(keras, rng, batch=2, units=6, stateful=True)
    x1, x2 = (rng.standard_normal((2, 4, 5)).astype(np.float32) for _ in range(2))
    for x in (x1, x2):
        np.testing.assert_allclose(ours(x), np.asarray(k(x)), atol=ATOL, rtol=RTOL)
    k.reset_states()
    ours.reset_states()
    np.testing.assert_allclose(ours(x2), np.asarray(k(x2)), atol=ATOL, rtol=RTOL)


def keras_model_and_ours(keras, rng, keras_layers, our_layers, x):
    km = keras.Sequential(keras_layers)
    km.build(x.shape if x.dtype.kind != "f" else (None,) + x.shape[1:])
    for layer in km.layers:
        randomize(layer, rng)
    ours = fg.Sequential(our_layers)
    ours.build((None,) + x.shape[1:])
    ours.set_weights(km.get_weights())
    return km, ours


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_grus_with_softmax_head(keras, rng, dtype):
    x = rng.standard_normal((6, 8, 5)).astype(dtype)
    kd = "float64" if dtype == np.float64 else "float32"
    km, ours = keras_model_and_ours(
        keras, rng,
        [keras.Input(shape=x.shape[1:], dtype=kd), keras.layers.GRU(7, return_sequences=True, dtype=kd), keras.layers.GRU(5, go_backwards=True, dtype=kd,
                                                                                 reset_after=False),
         keras.layers.Dense(3, activation="softmax", dtype=kd)],
        [GRU(7, return_sequences=True, dtype=kd), GRU(5, go_backwards=True, reset_after=False, dtype=kd),
         Dense(3, activation="softmax", dtype=kd)],
        x,
    )
    got = ours.predict(x)
    assert got.dtype == dtype
    tol = dict(atol=1e-10, rtol=1e-9) if dtype == np.float64 else dict(atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got, np.asarray(km(x)), **tol)  # predict() would cast to float32
    np.testing.assert_allclose(ours.predict(x, batch_size=4), got, atol=1e-6)


def test_masking_layer_feeds_gru_mask(keras, rng):
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, :2] = 0.0
    km, ours = keras_model_and_ours(
        keras, rng,
        [keras.layers.Masking(0.0), keras.layers.GRU(5, return_sequences=True), keras.layers.GRU(4),
         keras.layers.Dense(2)],
        [Masking(0.0), GRU(5, return_sequences=True), GRU(4), Dense(2)],
        x,
    )
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=RTOL)


def test_embedding_mask_zero_feeds_gru(keras, rng):
    tokens = rng.integers(1, 20, size=(5, 7))
    tokens[0, 5:] = 0
    tokens[3, :3] = 0
    km = keras.Sequential([keras.layers.Embedding(20, 4, mask_zero=True), keras.layers.GRU(6),
                           keras.layers.Dense(1, activation="sigmoid")])
    km.build((None, 7))
    for layer in km.layers:
        randomize(layer, rng)
    ours = fg.Sequential([Embedding(20, 4, mask_zero=True), GRU(6), Dense(1, activation="sigmoid")])
    ours.build((None, 7))
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(tokens), km.predict(tokens, verbose=0), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
                                        "softsign", "swish", "gelu", "hard_sigmoid", "relu6", "leaky_relu", "mish",
                                        "log_softmax", "exponential", "hard_tanh", "celu", "hard_silu", "hard_swish",
                                        "sparse_plus", "squareplus", "tanh_shrink", "log_sigmoid", "soft_shrink",
                                        "hard_shrink", "sparse_sigmoid"])
def test_dense_activations(keras, rng, activation):
    k = keras.layers.Dense(4, activation=activation)
    k.build((None, 6))
    weights = randomize(k, rng)
    ours = Dense(4, activation=activation)
    ours.build((None, 6))
    ours.set_weights(weights)
    x = rng.standard_normal((5, 6)).astype(np.float32) * 2
    np.testing.assert_allclose(ours(x), np.asarray(k(x)), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: [L.Input(shape=(10, 50)), L.GRU(64), L.Dense(1, activation="sigmoid")],
        lambda L: [L.Input(shape=(None, 8)), L.GRU(16, return_sequences=True, reset_after=False),
                   L.GRU(4, use_bias=False), L.Dropout(0.5), L.Dense(3)],
        lambda L: [L.Input(shape=(12,)), L.Embedding(100, 8), L.GRU(5, return_sequences=True), L.Dense(2)],
    ],
)
def test_summary_parameter_counts_and_weight_order(keras, make, capsys):
    import keras.layers as KL

    import fastgru.layers as FL

    km = keras.Sequential(make(KL))
    ours = fg.Sequential(make(FL))
    assert ours.count_params() == km.count_params()
    assert [l.count_params() for l in ours.layers] == [l.count_params() for l in km.layers]
    assert [tuple(l.output_shape) if not isinstance(l.output_shape, list) else l.output_shape
            for l in ours.layers] == [tuple(l.output.shape) for l in km.layers]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in km.get_weights()]
    ours.summary()
    text = capsys.readouterr().out
    assert f"Total params: {km.count_params():,}" in text
    for layer in ours.layers:
        assert f"{layer.count_params():,}" in text


@pytest.mark.parametrize("name,keras_name", [("glorot_uniform", "GlorotUniform"), ("orthogonal", "Orthogonal"),
                                             ("he_normal", "HeNormal"), ("random_normal", "RandomNormal"),
                                             ("lecun_uniform", "LecunUniform")])
def test_initializer_distributions_match_keras(keras, name, keras_name):
    shape = (64, 192)
    theirs = np.asarray(getattr(keras.initializers, keras_name)(seed=1)(shape))
    ours = fg.initializers.get(name)(shape, np.float32, np.random.default_rng(1))
    assert ours.shape == theirs.shape and ours.dtype == np.float32
    assert abs(ours.std() - theirs.std()) < 0.08 * theirs.std()
    assert abs(ours.mean()) < 0.1 * theirs.std() + 1e-3
    assert np.abs(ours).max() <= np.abs(theirs).max() * 1.5


def test_activation_layer_head(keras, rng):
    from fastgru.layers import Activation

    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    km, ours = keras_model_and_ours(
        keras, rng, [keras.layers.GRU(4), keras.layers.Dense(3), keras.layers.Activation("softmax")],
        [GRU(4), Dense(3), Activation("softmax")], x,
    )
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=RTOL)
