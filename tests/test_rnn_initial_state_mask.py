"""A recurrent layer called with ``initial_state`` on a masked input: Keras 3 passes the propagated mask
only to a call with one tensor argument, so the layer runs unmasked (its output still carries the
input's mask); tf_keras applied the mask. fastgru follows the file's Keras (``graph.Node.mask_from_inputs``)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastgru as fg

N_STATES = {"GRU": 1, "LSTM": 2, "SimpleRNN": 1}


def _tokens_and_states():
    rng = np.random.default_rng(5)
    tokens = rng.integers(1, 30, (4, 7)).astype(np.int32)
    tokens[0, 4:] = 0
    tokens[1, 2:4] = 0
    tokens[2, 0] = 0
    return tokens, rng.standard_normal((4, 3)).astype(np.float32)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    return model


def _model(k, cell: str, pooled: bool):
    """Embedding(mask_zero) -> cell(initial_state=Dense(states)) [-> GlobalAveragePooling1D] -> Dense."""
    L = k.layers
    tokens, static = k.Input((7,), dtype="int32"), k.Input((3,))
    seq = L.Embedding(30, 5, mask_zero=True)(tokens)
    states = [L.Dense(6)(static) for _ in range(N_STATES[cell])]
    h = getattr(L, cell)(6, return_sequences=pooled)(seq, initial_state=states)
    if pooled:  # the pooling averages over the steps the input's mask keeps
        h = L.GlobalAveragePooling1D()(h)
    return _randomize(k.Model([tokens, static], L.Dense(2)(h)))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("cell,pooled", [("GRU", False), ("LSTM", False), ("SimpleRNN", False), ("GRU", True)])
def test_keras3_runs_the_layer_unmasked(tmp_path, keras, suffix, cell, pooled):
    model = _model(keras, cell, pooled)
    x = list(_tokens_and_states())
    model.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}")
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), want, atol=2e-5)
    # the same graph built with fastgru's own layers follows the same rule (from the Keras config)
    rebuilt = fg.Model.from_config(ours.get_config())
    rebuilt.set_weights(ours.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x), want, atol=2e-5)


def test_keras3_training_step_matches(keras):
    """The training forward runs the layer unmasked too: one SGD step, loss and weights as Keras's."""
    model = _model(keras, "GRU", True)
    x = list(_tokens_and_states())
    y = np.random.default_rng(6).standard_normal((4, 2)).astype(np.float32)
    ours = fg.from_keras(model)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.1), loss="mse")
    want_loss = float(model.train_on_batch(x, y))
    loss = ours.train_on_batch(x, y)
    np.testing.assert_allclose(float(np.ravel(loss)[0]), want_loss, rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_tf_keras_applies_the_mask_and_pickling_keeps_it(tmp_path):
    tk = pytest.importorskip("tf_keras")
    model = _model(tk, "GRU", False)
    x = list(_tokens_and_states())
    model.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), want, atol=2e-5)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(ours)).predict(x), want, atol=2e-5)
    # a Keras 3 file would run the layer unmasked: refused rather than written
    with pytest.raises(fg.UnsupportedKerasFeature, match="initial_state on a masked input"):
        ours.save(tmp_path / "m3.keras")


def test_tf_keras_seq2seq_with_an_unmasked_decoder_saves_as_keras3(tmp_path, keras):
    """Only a call whose input can carry a mask keeps tf_keras's masked call: a decoder over an unmasked
    input (the encoder's Embedding masks only the encoder) computes alike in Keras 3, so it saves."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    enc_in, dec_in = tk.Input((7,), dtype="int32"), tk.Input((5, 3))
    _, h, c = L.LSTM(6, return_state=True)(L.Embedding(30, 4, mask_zero=True)(enc_in))
    model = _randomize(tk.Model([enc_in, dec_in], L.Dense(2)(L.LSTM(6, return_sequences=True)(
        dec_in, initial_state=[h, c]))))
    rng = np.random.default_rng(3)
    tokens = rng.integers(1, 30, (3, 7)).astype(np.int32)
    tokens[0, 4:] = 0
    x = [tokens, rng.standard_normal((3, 5, 3)).astype(np.float32)]
    model.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), want, atol=2e-5)
    ours.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), want, atol=2e-5)
