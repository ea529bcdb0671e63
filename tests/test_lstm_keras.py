"""LSTM and Bidirectional against live Keras 3: forward parity for every option and merge mode, and
training parity (weights after optimizer steps) for LSTM stacks, Bidirectional models with a softmax
head and sparse categorical cross-entropy, and Embedding(mask_zero) + GRU on padded token sequences."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Embedding, Input, Masking

keras = pytest.importorskip("keras")
L = keras.layers
T, D = 6, 3


def padded(rng, bsz=5):
    x = rng.standard_normal((bsz, T, D)).astype(np.float32)
    x[0, -2:] = 0.0  # trailing padding
    x[1, :2] = 0.0  # leading padding
    x[3, 2] = 0.0  # a gap
    return x


def twins(rng, keras_layers, our_layers, shape=(T, D), scale=0.5):
    km = keras.Sequential([keras.Input(shape)] + keras_layers)
    km.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * scale for w in km.get_weights()])
    ours = fg.Sequential([Input(shape)] + our_layers)
    ours.set_weights(km.get_weights())
    return km, ours


def assert_outputs_close(theirs, ours, atol=3e-6):
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for t, o in zip(theirs, ours):
            np.testing.assert_allclose(o, np.asarray(t), atol=atol)
    else:
        np.testing.assert_allclose(ours, np.asarray(theirs), atol=atol)


# ---- forward parity ---------------------------------------------------------------------------
LSTM_OPTIONS = [
    {},
    {"return_sequences": True},
    {"go_backwards": True, "return_sequences": True},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"activation": "softsign", "use_bias": False, "return_sequences": True},
    {"activation": "elu", "recurrent_activation": "sigmoid", "go_backwards": True},
    {"activation": "swish", "recurrent_activation": "tanh"},
    {"activation": "mish", "recurrent_activation": "hard_sigmoid"},
    {"activation": "hard_tanh", "return_sequences": True},
    {"activation": "relu6", "go_backwards": True},
    {"return_sequences": True, "zero_output_for_mask": True},
    {"unit_forget_bias": False, "dropout": 0.3, "recurrent_dropout": 0.2},  # dropout: inactive at inference
]


@pytest.mark.parametrize("options", LSTM_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masking"])
def test_lstm_forward_matches_keras(rng, options, masked):
    x = padded(rng)
    head_k, head_o = ([L.Masking()], [Masking()]) if masked else ([], [])
    km, ours = twins(rng, head_k + [L.LSTM(4, **options)], head_o + [LSTM(4, **options)])
    assert_outputs_close(km(x), ours.predict(x))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masking"])
def test_bidirectional_forward_matches_keras(rng, merge_mode, cell, return_sequences, masked):
    x = padded(rng)
    theirs_cell, our_cell = getattr(L, cell), {"GRU": GRU, "LSTM": LSTM}[cell]
    head_k, head_o = ([L.Masking()], [Masking()]) if masked else ([], [])
    km, ours = twins(
        rng, head_k + [L.Bidirectional(theirs_cell(3, return_sequences=return_sequences), merge_mode=merge_mode)],
        head_o + [Bidirectional(our_cell(3, return_sequences=return_sequences), merge_mode=merge_mode)],
    )
    assert_outputs_close(km(x), ours.predict(x))


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_bidirectional_states_and_initial_states_match_keras(rng, cell):
    x = padded(rng)
    n_states = 1 if cell == "GRU" else 2
    layer_k = L.Bidirectional(getattr(L, cell)(3, return_state=True, return_sequences=True))
    inp = keras.Input((T, D))
    states_in = [keras.Input((3,)) for _ in range(2 * n_states)]
    outs = layer_k(inp, initial_state=states_in)
    km = keras.Model([inp] + states_in, list(outs))
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = Bidirectional({"GRU": GRU, "LSTM": LSTM}[cell](3, return_state=True, return_sequences=True))
    ours.build((None, T, D))
    ours.set_weights(km.get_weights())
    states = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(2 * n_states)]
    theirs = km([x] + states)
    got = ours(x, initial_state=states)
    assert len(got) == 1 + 2 * n_states
    assert_outputs_close(theirs, got)
    assert ours.compute_output_shape((None, T, D)) == [(None, T, 6)] + [(None, 3)] * (2 * n_states)


def test_lstm_return_state_initial_state_and_stateful_match_keras(rng):
    x = padded(rng)
    inp, h_in, c_in = keras.Input((T, D)), keras.Input((4,)), keras.Input((4,))
    outs = L.LSTM(4, return_state=True)(inp, initial_state=[h_in, c_in])
    km = keras.Model([inp, h_in, c_in], list(outs))
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = LSTM(4, return_state=True)
    ours.build((None, T, D))
    ours.set_weights(km.get_weights())
    h0, c0 = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(2))
    assert_outputs_close(km([x, h0, c0]), ours(x, initial_state=[h0, c0]))
    # stateful: two halves carry (h, c) over, as Keras's stateful LSTM does
    ks = keras.Sequential([keras.Input((3, D), batch_size=5), L.LSTM(4, stateful=True, return_sequences=True)])
    ks.set_weights(km.get_weights())
    fs = fg.Sequential([Input((3, D), batch_size=5), LSTM(4, stateful=True, return_sequences=True)])
    fs.set_weights(km.get_weights())
    for half in (x[:, :3], x[:, 3:]):
        assert_outputs_close(ks(half), fs.predict(half))
    ks.layers[0].reset_states()
    fs.reset_states()
    assert not np.any(fs.layers[0].states)  # (zeros, as Keras's)
    assert_outputs_close(ks(x[:, 3:]), fs.predict(x[:, 3:]))


def test_unit_forget_bias_initialisation_matches_keras():
    ours = LSTM(3, bias_initializer="zeros")
    ours.build((None, T, D))
    np.testing.assert_array_equal(ours.get_weights()[2], np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    theirs = L.LSTM(3)
    theirs.build((None, T, D))
    np.testing.assert_array_equal(ours.get_weights()[2], theirs.get_weights()[2])
    assert not LSTM(3, unit_forget_bias=False, bias_initializer="zeros")(np.zeros((1, 2, 2), np.float32)).any()


def test_summary_param_counts_match_keras(rng):
    km, ours = twins(rng, [L.Bidirectional(L.LSTM(5, return_sequences=True)), L.Bidirectional(L.GRU(4)), L.Dense(2)],
                     [Bidirectional(LSTM(5, return_sequences=True)), Bidirectional(GRU(4)), Dense(2)])
    assert ours.count_params() == km.count_params()
    assert [l.count_params() for l in ours.layers] == [l.count_params() for l in km.layers]
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in km.get_weights()]


# ---- training parity --------------------------------------------------------------------------
def assert_weights_close(keras_model, ours, rtol):
    for k, o in zip(keras_model.get_weights(), ours.get_weights()):
        scale = max(np.abs(k).max(), 1e-3)
        np.testing.assert_allclose(o, k, atol=rtol * scale, rtol=rtol)


def train_both(km, ours, x, y, loss, steps=5, optimizer=None):
    optimizer = optimizer or keras.optimizers.Adam(learning_rate=0.01)
    km.compile(optimizer=optimizer, loss=loss)
    ours.compile(optimizer=fg.optimizers.get({"class_name": type(optimizer).__name__,
                                               "config": optimizer.get_config()}), loss=loss)
    np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    assert_weights_close(km, ours, rtol=1e-4)
    for _ in range(steps - 1):
        k_loss, o_loss = km.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(o_loss, k_loss, rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
def test_bidirectional_softmax_sparse_ce_training_matches_keras(rng, merge_mode, cell):
    x = padded(rng, 16)
    y = rng.integers(0, 3, 16)
    km, ours = twins(
        rng, [L.Masking(), L.Bidirectional(getattr(L, cell)(4, return_sequences=True), merge_mode=merge_mode),
              L.Bidirectional(getattr(L, cell)(3)), L.Dense(3, activation="softmax")],
        [Masking(), Bidirectional({"GRU": GRU, "LSTM": LSTM}[cell](4, return_sequences=True), merge_mode=merge_mode),
         Bidirectional({"GRU": GRU, "LSTM": LSTM}[cell](3)), Dense(3, activation="softmax")], scale=0.4)
    train_both(km, ours, x, y, "sparse_categorical_crossentropy")


@pytest.mark.parametrize("options", [
    {}, {"go_backwards": True, "activation": "softsign", "recurrent_activation": "hard_sigmoid"},
    {"use_bias": False, "zero_output_for_mask": True},
], ids=["default", "backwards-softsign-hard_sigmoid", "nobias-zero_output"])
def test_lstm_stack_training_matches_keras(rng, options):
    x = padded(rng, 12)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    km, ours = twins(rng, [L.Masking(), L.LSTM(5, return_sequences=True, **options), L.LSTM(4), L.Dense(2)],
                     [Masking(), LSTM(5, return_sequences=True, **options), LSTM(4), Dense(2)], scale=0.4)
    train_both(km, ours, x, y, "mse", optimizer=keras.optimizers.RMSprop(learning_rate=0.01))


EMBEDDING_OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(learning_rate=0.01),
    "rmsprop_clipnorm": lambda: keras.optimizers.RMSprop(learning_rate=0.01, clipnorm=0.05),
    "adagrad_global_clipnorm": lambda: keras.optimizers.Adagrad(learning_rate=0.1, global_clipnorm=0.1),
    "sgd_momentum": lambda: keras.optimizers.SGD(learning_rate=0.5, momentum=0.9),
}


@pytest.mark.parametrize("cell,optimizer", [("GRU", "adam"), ("LSTM", "adam"), ("GRU", "rmsprop_clipnorm"),
                                            ("LSTM", "adagrad_global_clipnorm"), ("GRU", "sgd_momentum")])
def test_embedding_mask_zero_on_padded_tokens_training_matches_keras(rng, cell, optimizer):
    """Keras hands optimizers an Embedding's gradient as slices (IndexedSlices) and squares the
    slices, not their sum: fastgru's RowGradient reproduces that, for every optimizer and clipping."""
    tokens = rng.integers(1, 20, (16, 9))
    lengths = rng.integers(2, 10, 16)
    for row, n in zip(tokens, lengths):
        row[n:] = 0  # post-padding with the mask token
    tokens[3, :4] = 0  # and one pre-padded sequence
    y = (rng.random((16, 1)) > 0.5).astype(np.float32)
    inner_k, inner_o = getattr(L, cell), {"GRU": GRU, "LSTM": LSTM}[cell]
    km = keras.Sequential([keras.Input((9,), dtype="int32"), L.Embedding(20, 4, mask_zero=True),
                           inner_k(5, return_sequences=True), inner_k(3), L.Dense(1, activation="sigmoid")])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = fg.Sequential([Input((9,), dtype="int32"), Embedding(20, 4, mask_zero=True),
                          inner_o(5, return_sequences=True), inner_o(3), Dense(1, activation="sigmoid")])
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(tokens), np.asarray(km(tokens)), atol=3e-6)
    train_both(km, ours, tokens, y, "binary_crossentropy", optimizer=EMBEDDING_OPTIMIZERS[optimizer]())


def test_lstm_and_bidirectional_dropout_train(rng):
    """Dropout masks are random (no number-for-number parity): training with them runs, is
    reproducible from the seed, and lowers the loss."""
    x = padded(rng, 32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.float32)

    def model():
        fg.set_random_seed(3)
        m = fg.Sequential([Input((T, D)), Bidirectional(LSTM(8, dropout=0.2, recurrent_dropout=0.2,
                                                             return_sequences=True)),
                           LSTM(4, dropout=0.1), Dense(1, activation="sigmoid")])
        m.compile(optimizer=fg.optimizers.Adam(0.02), loss="binary_crossentropy")
        return m

    first, second = model(), model()
    losses = [first.train_on_batch(x, y) for _ in range(30)]
    again = [second.train_on_batch(x, y) for _ in range(30)]
    assert losses == again
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
