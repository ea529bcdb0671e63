"""GroupQueryAttention (Keras's GroupedQueryAttention) against Keras: every mask form, causal and sliding-window
masks, scores returned (Keras's two softmax paths), key/value heads shared by the query heads; in a masked
GRU model, from Keras files and back, trained step by step as Keras; float64 gradients (the shared heads' summed
back): tests/test_layer_contract.py; bad options."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GroupQueryAttention


def _data(rng):
    q = rng.standard_normal((3, 4, 6)).astype(np.float32)
    v = rng.standard_normal((3, 5, 6)).astype(np.float32)
    k = rng.standard_normal((3, 5, 2)).astype(np.float32)
    v_mask = np.ones((3, 5), bool)
    v_mask[1, 3:] = False
    att = rng.random((3, 4, 5)) > 0.3
    att[2, 1] = False  # (a fully masked row)
    return q, v, k, v_mask, att


@pytest.mark.parametrize("options", [dict(head_dim=3, num_query_heads=4, num_key_value_heads=2),
                                     dict(head_dim=2, num_query_heads=3, num_key_value_heads=1, use_bias=False),
                                     dict(head_dim=2, num_query_heads=2, num_key_value_heads=2, sliding_window=2)],
                         ids=["groups-of-2", "one-kv-head", "sliding"])
def test_forward_matches_keras(keras, rng, options):
    q, v, k, v_mask, att = _data(rng)
    theirs, ours = keras.layers.GroupQueryAttention(**options), GroupQueryAttention(**options)
    theirs(q, v, key=k)
    ours(q, v, key=k)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    for kwargs in ({}, {"attention_mask": att}, {"use_causal_mask": True}, {"value_mask": v_mask},
                   {"value_mask": v_mask, "attention_mask": att, "use_causal_mask": True}):
        for scores in (False, True):
            expected = theirs(q, v, key=k, return_attention_scores=scores, **kwargs)
            got = ours(q, v, key=k, return_attention_scores=scores, **kwargs)
            for g, e in zip(got if scores else [got], expected if scores else [expected]):
                np.testing.assert_allclose(g, np.asarray(e), rtol=1e-4, atol=2e-5)


def _model(mod, layers):
    inp = mod.Input((7, 3))
    h = layers.GRU(6, return_sequences=True)(layers.Masking()(inp))
    a = layers.GroupQueryAttention(head_dim=2, num_query_heads=4, num_key_value_heads=2)(h, h)
    b = layers.GroupQueryAttention(head_dim=3, num_query_heads=2, num_key_value_heads=1)(a, h, use_causal_mask=True)
    pooled = layers.GlobalAveragePooling1D()(h)  # (h keeps its mask after the attentions, as Keras leaves it)
    return mod.Model(inp, layers.Dense(1)(layers.Concatenate()([layers.GlobalAveragePooling1D()(b), pooled])))


def test_masked_gru_block_from_files_and_trained_as_keras(keras, rng, tmp_path):
    x = rng.standard_normal((8, 7, 3)).astype(np.float32)
    x[0, 5:] = 0.0
    x[3, 2:] = 0.0
    y = rng.standard_normal((8, 1)).astype(np.float32)
    km = _model(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    expected = km.predict(x, verbose=0)
    for suffix in (".keras", ".h5"):
        km.save(tmp_path / f"k{suffix}")
        np.testing.assert_allclose(fg.load_model(tmp_path / f"k{suffix}").predict(x), expected, rtol=1e-4, atol=2e-5)
    ours = fg.from_keras(km)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="mse")
    for _ in range(4):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-4)
    for variable, mine in zip(km.weights, ours.get_weights()):
        if variable.path.endswith("key/bias"):  # (its gradient is zero but for rounding: Adam's steps on noise)
            continue
        theirs = np.asarray(variable)
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-4 * max(np.abs(theirs).max(), 1e-3))
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-3, atol=1e-4)


def test_bad_options():
    with pytest.raises(ValueError, match="num_query_heads \\(3\\) must be divisible by num_key_value_heads \\(2\\)"):
        GroupQueryAttention(2, 3, 2)
    with pytest.raises(fg.UnsupportedKerasFeature, match="use_gate=True"):
        GroupQueryAttention(2, 2, 1, use_gate=True)
    with pytest.raises(ValueError, match="head_dim must be a positive integer"):
        GroupQueryAttention(0, 2, 1)
    layer = GroupQueryAttention(2, 2, 1)
    with pytest.raises(ValueError, match="last dimensions must be equal"):
        layer(np.zeros((1, 3, 4), np.float32), np.zeros((1, 3, 5), np.float32))
