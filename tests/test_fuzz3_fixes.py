"""Fixes from a parity fuzz of the supported-options table: a Bidirectional(merge_mode=None)'s two masked
outputs, Attention on [query, value, key] with two masks, tf_keras's live Attention(causal=True), and a
Bidirectional whose backward layer has other units (refused as unsupported, not as a damaged file)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    return model


def test_bidirectional_without_merge_masks_both_outputs(keras, tmp_path):
    L = keras.layers
    inp = keras.Input((6, 4))
    fwd, bwd = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None)(L.Masking(0.0)(inp))
    model = _randomize(keras.Model(inp, [L.GlobalAveragePooling1D()(fwd), L.GlobalAveragePooling1D()(bwd)]))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6, 4)).astype(np.float32)
    x[0, 3:] = 0
    x[1, 2:4] = 0
    model.save(tmp_path / "m.keras")
    want = model.predict(x, verbose=0)
    for ours in (fg.load_model(tmp_path / "m.keras"), fg.from_keras(model)):
        for got, exp in zip(ours.predict(x), want):
            np.testing.assert_allclose(got, exp, atol=2e-6)
    # training: the loss of both sequence outputs is masked, as in Keras
    seq = _randomize(keras.Model(inp, [fwd, bwd]), 2)
    y = [rng.standard_normal((5, 6, 3)).astype(np.float32) for _ in range(2)]
    ours = fg.from_keras(seq)
    seq.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.1), loss="mse")
    np.testing.assert_allclose(np.ravel(ours.train_on_batch(x, y))[0], np.ravel(seq.train_on_batch(x, y))[0],
                               rtol=1e-5)
    for a, b in zip(ours.get_weights(), seq.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("cls", ["Attention", "AdditiveAttention"])
def test_attention_on_query_value_key_with_two_masks(keras, tmp_path, cls):
    L = keras.layers
    q, v, k = keras.Input((5, 4)), keras.Input((6, 4)), keras.Input((6, 4))
    qm, vm = keras.Input((5,), dtype="bool"), keras.Input((6,), dtype="bool")
    out = getattr(L, cls)()([q, v, k], mask=[qm, vm])
    model = keras.Model([q, v, k, qm, vm], out)
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((3, 5, 4)).astype(np.float32), rng.standard_normal((3, 6, 4)).astype(np.float32),
          rng.standard_normal((3, 6, 4)).astype(np.float32), rng.random((3, 5)) > 0.3, rng.random((3, 6)) > 0.3]
    xs[4][:, 0] = True  # (every query attends to something)
    model.save(tmp_path / "m.keras")
    want = model.predict(xs, verbose=0)
    for ours in (fg.load_model(tmp_path / "m.keras"), fg.from_keras(model)):
        np.testing.assert_allclose(ours.predict(xs), want, atol=2e-6)


def test_tf_keras_live_causal_attention_stays_causal():
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    inp = L.Input((6, 4))
    h = L.GRU(4, return_sequences=True)(inp)
    model = _randomize(tk.Model(inp, L.Attention(causal=True)([h, h])))
    x = np.random.default_rng(4).standard_normal((3, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(fg.from_keras(model).predict(x), model.predict(x, verbose=0), atol=2e-6)


def test_bidirectional_with_a_backward_layer_of_other_units_is_refused_as_unsupported():
    with pytest.raises(fg.UnsupportedKerasFeature, match="2 units beside a forward layer of 3"):
        fg.layers.Bidirectional(fg.layers.LSTM(3, return_sequences=True),
                                backward_layer=fg.layers.LSTM(2, return_sequences=True, go_backwards=True))


def test_tf_keras_time_distributed_batch_normalization_trains_over_all_rows(tmp_path):
    """tf_keras's TimeDistributed runs its BatchNormalization once on all B*T rows (Keras 3's, step by step):
    a tf_keras file keeps tf_keras's statistics in training."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    model = tk.Sequential([L.InputLayer(input_shape=(4, 3)), L.TimeDistributed(L.BatchNormalization())])
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((5, 4, 3)).astype(np.float32), rng.standard_normal((5, 4, 3)).astype(np.float32)
    model.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5", compile=False)
    model.compile(optimizer=tk.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.1), loss="mse")
    np.testing.assert_allclose(np.ravel(ours.train_on_batch(x, y))[0], model.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):  # gamma, beta, moving mean and variance
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_tf_keras_multi_head_attention_trains_a_fully_masked_row_as_tf_keras(tmp_path):
    """tf_keras adds -1e9 to masked scores: a query that sees nothing attends evenly, and the gradient of its
    scores passes back to the query and key projections (Keras 3 files: Keras 3's masking)."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    q, v, am = L.Input((4, 3)), L.Input((5, 3)), L.Input((4, 5), dtype="bool")
    model = _randomize(tk.Model([q, v, am], L.MultiHeadAttention(2, 2)(q, v, attention_mask=am)), 6)
    rng = np.random.default_rng(7)
    mask = np.ones((3, 4, 5), bool)
    mask[0, 1, :] = False
    x = [rng.standard_normal((3, 4, 3)).astype(np.float32), rng.standard_normal((3, 5, 3)).astype(np.float32), mask]
    y = rng.standard_normal((3, 4, 3)).astype(np.float32)
    model.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5", compile=False)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), atol=2e-6)
    model.compile(optimizer=tk.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.1), loss="mse")
    np.testing.assert_allclose(np.ravel(ours.train_on_batch(x, y))[0], model.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
