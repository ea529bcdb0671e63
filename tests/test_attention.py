"""Attention and AdditiveAttention against live Keras: every option with query/value/key masks, causal
masks and attention scores, called directly; self-attention over GRU outputs in a Functional model
(forward, files both ways, 5 Adam steps); gradients by finite differences (and the layer-contract
test, tests/test_layer_contract.py); bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.layers import AdditiveAttention, Attention

CASES = [
    ("Attention", {}), ("Attention", {"use_scale": True}), ("Attention", {"score_mode": "concat"}),
    ("Attention", {"score_mode": "concat", "use_scale": True}), ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False}),
]
OURS = {"Attention": Attention, "AdditiveAttention": AdditiveAttention}


def _data(rng, dtype="float32"):
    q = rng.standard_normal((3, 4, 5)).astype(dtype)
    v = rng.standard_normal((3, 6, 5)).astype(dtype)
    k = rng.standard_normal((3, 6, 5)).astype(dtype)
    q_mask = np.ones((3, 4), bool)
    q_mask[0, 3:] = False
    v_mask = np.ones((3, 6), bool)
    v_mask[1, 4:] = False
    v_mask[2, 0] = False
    return q, v, k, q_mask, v_mask


@pytest.mark.keras
@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}{o}" for n, o in CASES])
def test_forward_matches_keras_with_masks_causal_and_scores(keras, rng, name, options):
    q, v, k, q_mask, v_mask = _data(rng)
    theirs = getattr(keras.layers, name)(**options)
    ours = OURS[name](**options)
    theirs([q, v])  # builds it
    ours.build([q.shape, v.shape])
    ours.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    for inputs, mask in (([q, v], None), ([q, v, k], None), ([q, v, k], [q_mask, v_mask]), ([q, v], [None, v_mask])):
        expected = theirs(inputs, mask=mask, return_attention_scores=True)
        got = ours(inputs, mask=mask, return_attention_scores=True)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, np.asarray(e), rtol=1e-5, atol=1e-6)
    q2 = rng.standard_normal((3, 6, 5)).astype(np.float32)
    for inputs in ([q2, v], [q2, v, k]):
        np.testing.assert_allclose(ours(inputs, use_causal_mask=True),
                                   np.asarray(theirs(inputs, use_causal_mask=True)), rtol=1e-5, atol=1e-6)
    assert ours.compute_mask([q, v], [q_mask, v_mask]) is q_mask


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}{o}" for n, o in CASES])
@pytest.mark.parametrize("with_key,masked", [(False, False), (True, True)])
def test_gradients_match_finite_differences(rng, name, options, with_key, masked):
    q, v, k, q_mask, v_mask = _data(rng, "float64")
    layer = OURS[name](dtype="float64", **options)
    inputs = [q, v, k] if with_key else [q, v]
    mask = [q_mask, v_mask] if masked else None
    layer.build([a.shape for a in inputs])
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    y, cache = layer.forward(inputs, mask=mask, training=True)
    coef = rng.standard_normal(y.shape)
    dxs, grads = layer.backward(coef, cache)
    for i, x in enumerate(inputs):
        def f(value, i=i):
            args = list(inputs)
            args[i] = value
            return layer.call(args, mask=mask)
        np.testing.assert_allclose(dxs[i], numeric_gradient(f, x, coef), rtol=1e-5, atol=1e-7)
    for w, g in zip(layer.trainable_weights, grads):
        def fw(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return layer.call(inputs, mask=mask)
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(fw, w.copy(), coef), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("name,options", CASES[:3] + CASES[4:5], ids=[f"{n}{o}" for n, o in CASES[:3] + CASES[4:5]])
def test_self_attention_over_gru_outputs_matches_keras(keras, rng, tmp_path, name, options):
    L = keras.layers
    x = rng.standard_normal((8, 7, 3)).astype(np.float32)
    x[0, 5:] = 0.0
    y = rng.integers(0, 2, (8, 1)).astype(np.float32)

    def build(mod, layers):
        inp = mod.Input((7, 3))
        h = layers.GRU(4, return_sequences=True)(layers.Masking()(inp))
        a = getattr(layers, name)(**options)([h, h])
        out = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling1D()(a))
        return mod.Model(inp, out)

    km = build(keras, L)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = build(fg, fg.layers)
    ours.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k.keras").predict(x), expected, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="binary_crossentropy")
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


CALLS = [{"use_causal_mask": True}, {"use_causal_mask": True, "return_attention_scores": True},
         {"return_attention_scores": True}]


@pytest.mark.keras
@pytest.mark.parametrize("call", CALLS, ids=["causal", "causal-scores", "scores"])
@pytest.mark.parametrize("name,options", [CASES[0], CASES[2], CASES[4]], ids=["dot", "concat", "additive"])
def test_call_options_in_a_graph_and_in_files_match_keras(keras, rng, tmp_path, name, options, call):
    """use_causal_mask and return_attention_scores given in the call of a Functional model: kept on the node,
    read from Keras's .keras and .h5 files and written back; the scores feed the head (their gradient
    trains the model)."""
    L = keras.layers
    x = rng.standard_normal((8, 7, 3)).astype(np.float32)
    x[0, 5:] = 0.0
    y = rng.integers(0, 2, (8, 1)).astype(np.float32)

    def build(mod, layers):
        inp = mod.Input((7, 3))
        h = layers.GRU(4, return_sequences=True)(layers.Masking()(inp))
        got = getattr(layers, name)(**options)([h, h], **call)
        if call.get("return_attention_scores"):
            a, scores = got
            feat = layers.Concatenate()([layers.GlobalAveragePooling1D()(a), layers.Flatten()(scores)])
        else:
            feat = layers.GlobalAveragePooling1D()(got)
        return mod.Model(inp, layers.Dense(1, activation="sigmoid")(feat))

    km = build(keras, L)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = build(fg, fg.layers)
    ours.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    for f in ("k.keras", "k.h5"):
        np.testing.assert_allclose(fg.load_model(tmp_path / f).predict(x), expected, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="binary_crossentropy")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def test_tf_keras_causal_attention_files(rng, tmp_path):
    """tf_keras: the call argument use_causal_mask=True in .h5 and .keras files."""
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    inp = tf_keras.Input((6, 3))
    h = L.GRU(4, return_sequences=True)(inp)
    km = tf_keras.Model(inp, L.AdditiveAttention()([h, h], use_causal_mask=True))
    expected = km.predict(x, verbose=0)
    unmasked = tf_keras.Model(inp, km.layers[-1]([h, h]))
    assert np.abs(unmasked(x).numpy() - expected).max() > 1e-3  # the mask matters
    for ext in ("h5", "keras"):
        km.save(tmp_path / f"m.{ext}")
        np.testing.assert_allclose(fg.load_model(tmp_path / f"m.{ext}").predict(x), expected, rtol=1e-4, atol=2e-5)


def test_keras2_constructor_option_causal(rng, tmp_path):
    """Keras 2 (TF <= 2.9) wrote Attention(causal=True) in the config: the causal mask in every call; a
    .keras that fastgru writes gives Keras 3 use_causal_mask=True per call instead (Keras 3 has no causal)."""
    q, v, _, _, _ = _data(rng)
    for cls in (Attention, AdditiveAttention):
        by_option = cls(causal=True)
        by_call = cls()
        expected = by_option([q, q])
        by_call([q, q])
        by_call.set_weights(by_option.get_weights())
        np.testing.assert_array_equal(expected, by_call([q, q], use_causal_mask=True))
        assert np.abs(expected - by_call([q, q])).max() > 1e-3
        assert cls.from_config(by_option.get_config()).causal is True
    inp = fg.Input((4, 5))
    model = fg.Model(inp, Attention(causal=True)([inp, inp]))
    model.save(tmp_path / "c.keras")
    import json
    import zipfile

    config = json.loads(zipfile.ZipFile(tmp_path / "c.keras").read("config.json"))
    layer = [entry for entry in config["config"]["layers"] if entry["class_name"] == "Attention"][0]
    assert "causal" not in layer["config"] and layer["inbound_nodes"][0]["kwargs"]["use_causal_mask"] is True
    np.testing.assert_array_equal(fg.load_model(tmp_path / "c.keras").predict(q), model.predict(q))


def test_bad_options_and_inputs(rng):
    with pytest.raises(ValueError, match="'score_mode' should be one of"):
        Attention(score_mode="general")
    with pytest.raises(ValueError, match="'dropout'"):
        AdditiveAttention(dropout=1.0)
    layer = Attention()
    with pytest.raises(ValueError, match=r"\[query, value\]"):
        layer(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="same last dimension"):
        layer([np.ones((2, 3, 4), np.float32), np.ones((2, 5, 6), np.float32)])
    with pytest.raises(ValueError, match="value mask must have shape"):
        layer([np.ones((2, 3, 4), np.float32), np.ones((2, 5, 4), np.float32)], mask=[None, np.ones((2, 4), bool)])
    # dropout acts in training only, seeded
    drop = Attention(dropout=0.5, seed=1)
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(drop([q, q]), Attention()([q, q]))
    assert not np.allclose(drop([q, q], training=True), drop([q, q]))
