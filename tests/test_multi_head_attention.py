"""MultiHeadAttention against live Keras: options (heads, value_dim, output_shape, use_bias), masks (value,
key, attention_mask, causal, fully masked rows on both of Keras's paths), attention scores, a separate key;
gradients by finite differences (float64); self-attention over GRU outputs in a Functional model (forward,
5 Adam steps, .keras / Keras 3 .h5 / tf_keras .h5 both ways); bad options and inputs. The layer contract
(tests/test_layer_contract.py) covers it too."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.layers import MultiHeadAttention

OPTIONS = [
    {"num_heads": 1, "key_dim": 2},
    {"num_heads": 3, "key_dim": 2, "value_dim": 4},
    {"num_heads": 2, "key_dim": 3, "output_shape": 6},
    {"num_heads": 2, "key_dim": 3, "output_shape": (2, 3), "use_bias": False},
]


def _data(rng, dtype="float32"):
    q = rng.standard_normal((3, 4, 5)).astype(dtype)
    v = rng.standard_normal((3, 6, 3)).astype(dtype)
    k = rng.standard_normal((3, 6, 7)).astype(dtype)
    q_mask = np.ones((3, 4), bool)
    q_mask[0, 3:] = False
    v_mask = np.ones((3, 6), bool)
    v_mask[1, 4:] = False
    v_mask[2, 0] = False
    k_mask = np.ones((3, 6), bool)
    k_mask[2, 5] = False
    att = rng.random((3, 4, 6)) > 0.3
    att[1, 2] = False  # a fully masked row
    return q, v, k, q_mask, v_mask, k_mask, att


@pytest.mark.keras
@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
def test_forward_matches_keras(keras, rng, options):
    q, v, k, _, v_mask, k_mask, att = _data(rng)
    theirs = keras.layers.MultiHeadAttention(**options)
    ours = MultiHeadAttention(**options)
    theirs(q, v, key=k)
    ours(q, v, key=k)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    assert [w.path.split("/", 1)[1] for w in theirs.weights] == ours.weight_paths
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    calls = [{}, {"attention_mask": att}, {"use_causal_mask": True}, {"value_mask": v_mask, "key_mask": k_mask},
             {"value_mask": v_mask, "attention_mask": att, "use_causal_mask": True}]
    for kwargs in calls:
        for scores in (False, True):  # Keras's two paths: fused attention, and the Softmax layer with scores
            expected = theirs(q, v, key=k, return_attention_scores=scores, **kwargs)
            got = ours(q, v, key=k, return_attention_scores=scores, **kwargs)
            for g, e in zip(got if scores else [got], expected if scores else [expected]):
                np.testing.assert_allclose(g, np.asarray(e), rtol=1e-4, atol=2e-5)
    q2 = rng.standard_normal((3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(ours(q2, v, key=k, use_causal_mask=True),
                               np.asarray(theirs(q2, v, key=k, use_causal_mask=True)), rtol=1e-4, atol=2e-5)


@pytest.mark.keras
def test_sliding_window_matches_keras(keras, rng):
    import inspect

    if "sliding_window" not in inspect.signature(keras.layers.MultiHeadAttention).parameters:
        pytest.skip("this Keras has no sliding_window")
    q, v, k, _, v_mask, _, _ = _data(rng)
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, sliding_window=2)
    ours = MultiHeadAttention(num_heads=2, key_dim=3, sliding_window=2)
    theirs(q, v)
    ours(q, v)
    ours.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    for kwargs in ({}, {"use_causal_mask": True, "value_mask": v_mask}, {"return_attention_scores": True}):
        expected = theirs(q, v, **kwargs)
        got = ours(q, v, **kwargs)
        for g, e in zip(got if isinstance(got, list) else [got], expected if isinstance(got, list) else [expected]):
            np.testing.assert_allclose(g, np.asarray(e), rtol=1e-4, atol=2e-5)
    assert MultiHeadAttention.from_config(ours.get_config()).sliding_window == 2
    assert "sliding_window" not in MultiHeadAttention(2, 3).get_config()  # older Keras has no such option


@pytest.mark.keras
def test_float64_and_key_defaulting_to_value_match_keras(keras, rng):
    q, v, _, _, v_mask, _, att = _data(rng, "float64")
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dtype="float64")
    ours = MultiHeadAttention(num_heads=2, key_dim=3, dtype="float64")
    theirs(q, v)
    ours(q, v)
    ours.set_weights([rng.standard_normal(w.shape) for w in ours.get_weights()])
    theirs.set_weights(ours.get_weights())
    for kwargs in ({}, {"value_mask": v_mask, "attention_mask": att}):
        out = ours(q, v, **kwargs)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, np.asarray(theirs(q, v, **kwargs)), rtol=1e-9, atol=1e-12)
        got, scores = ours(q, v, return_attention_scores=True, **kwargs)
        expected, expected_scores = theirs(q, v, return_attention_scores=True, **kwargs)
        np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(scores, np.asarray(expected_scores), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("options", OPTIONS[1:3] + [{"num_heads": 2, "key_dim": 2, "dropout": 0.3}],
                         ids=["value_dim", "output_shape", "dropout"])
@pytest.mark.parametrize("with_key,masked,scores", [(False, False, False), (True, True, False), (True, True, True)],
                         ids=["plain", "key-masked", "key-masked-scores"])
def test_gradients_match_finite_differences(rng, options, with_key, masked, scores):
    q, v, k, q_mask, v_mask, k_mask, att = _data(rng, "float64")
    layer = MultiHeadAttention(dtype="float64", seed=3, **options)
    inputs = [q, v, k] if with_key else [q, v]
    layer.build([a.shape for a in inputs])
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])
    mask = [q_mask, v_mask, k_mask][:len(inputs)] if masked else None
    kwargs = {"layout": ("query", "value", "key", "attention_mask")[:len(inputs) + 1]} if masked else {}
    kwargs["return_attention_scores"] = scores  # then the scores are an output too (Keras's Softmax path)
    args = inputs + [att] if masked else inputs
    if mask is not None:
        mask = mask + [None]
    # dropout: the same generator state for every evaluation (one mask throughout)
    state = layer._rng.bit_generator.state

    def run(values):
        layer._rng.bit_generator.state = state
        return layer.forward(values, mask=mask, training=True, **kwargs)

    def total(values):  # sum(output * coef) (+ sum(scores * coef_scores))
        out = run(values)[0]
        outs = out if isinstance(out, list) else [out]
        return np.array(sum((o * c).sum() for o, c in zip(outs, coefs)))

    y, cache = run(args)
    coefs = [rng.standard_normal(np.shape(o)) for o in (y if scores else [y])]
    dxs, grads = layer.backward(coefs if scores else coefs[0], cache)
    one = np.array(1.0)
    for i in range(len(inputs)):
        def f(value, i=i):
            values = list(args)
            values[i] = value
            return total(values)
        np.testing.assert_allclose(dxs[i], numeric_gradient(f, args[i], one), rtol=1e-5, atol=1e-7)
    if masked:
        assert dxs[-1] is None  # the attention mask
    for w, g in zip(layer.trainable_weights, grads):
        def fw(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return total(args)
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(fw, w.copy(), one), rtol=1e-5, atol=1e-7)


def _functional(mod, layers, options, embedding=False):
    if embedding:
        inp = mod.Input((7,), dtype="int32")
        h = layers.Embedding(6, 3, mask_zero=True)(inp)
    else:
        inp = mod.Input((7, 3))
        h = layers.Masking()(inp)
    h = layers.GRU(4, return_sequences=True)(h)
    a = layers.MultiHeadAttention(**options)(h, h)
    out = layers.Dense(1, activation="sigmoid")(layers.GlobalAveragePooling1D()(a))
    return mod.Model(inp, out)


@pytest.mark.keras
@pytest.mark.parametrize("options,embedding", [({"num_heads": 2, "key_dim": 3}, False),
                                               ({"num_heads": 1, "key_dim": 2, "value_dim": 3, "output_shape": 5},
                                                True)], ids=["masking", "embedding"])
def test_self_attention_over_gru_outputs_matches_keras(keras, rng, tmp_path, options, embedding):
    if embedding:
        x = rng.integers(1, 6, (8, 7))
        x[0, 4:] = 0
        x[3, 6:] = 0
    else:
        x = rng.standard_normal((8, 7, 3)).astype(np.float32)
        x[0, 5:] = 0.0
    y = rng.integers(0, 2, (8, 1)).astype(np.float32)
    km = _functional(keras, keras.layers, options, embedding)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = _functional(fg, fg.layers, options, embedding)
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


def _graph(mod, layers):
    """Keyed calls: key given separately, attention_mask as a model input, causal mask, scores returned, a
    second attention over a tensor the first one used (Keras 3 drops that tensor's mask for it)."""
    inp = mod.Input((7, 3))
    am = mod.Input((7, 7), dtype="bool")
    h = layers.GRU(4, return_sequences=True)(layers.Masking()(inp))
    a = layers.MultiHeadAttention(num_heads=2, key_dim=3, name="mha")(h, h)
    b = layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=5, output_shape=6, name="mha2")(
        h, a, key=h, use_causal_mask=True)
    c, s = layers.MultiHeadAttention(num_heads=1, key_dim=2, use_bias=False, name="mha3")(
        b, h, attention_mask=am, return_attention_scores=True)
    out = layers.Dense(1)(layers.GlobalAveragePooling1D()(c))
    return mod.Model([inp, am], [out, s])


@pytest.mark.keras
def test_keyed_calls_in_files_keras3_and_tf_keras(keras, rng, tmp_path):
    x = rng.standard_normal((3, 7, 3)).astype(np.float32)
    x[0, 5:] = 0.0
    am = rng.random((3, 7, 7)) > 0.3
    am[:, :, 0] = True  # no fully masked row: tf_keras and Keras 3 differ there
    km = _graph(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    expected = km.predict([x, am], verbose=0)
    ours = _graph(fg, fg.layers)
    ours.set_weights(km.get_weights())
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k3.h5")
    for model in (ours, fg.load_model(tmp_path / "k.keras"), fg.load_model(tmp_path / "k3.h5")):
        for g, e in zip(model.predict([x, am]), expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "ours.keras")
    for g, e in zip(keras.models.load_model(tmp_path / "ours.keras").predict([x, am], verbose=0), expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=2e-5)
    tf_keras = pytest.importorskip("tf_keras")
    tk = _graph(tf_keras, tf_keras.layers)
    tk.set_weights(km.get_weights())
    tk.save(tmp_path / "k2.h5")
    expected2 = tk.predict([x, am], verbose=0)
    loaded = fg.load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(loaded.get_layer("mha2").get_weights()[4], km.get_layer("mha2").get_weights()[4])
    for g, e in zip(loaded.predict([x, am]), expected2):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=2e-5)


@pytest.mark.keras
def test_value_keyword_mask_tensor_regularizers_from_keras_and_batch_invariance(keras, rng, tmp_path):
    """``mha(h, value=h, value_mask=tensor)`` with kernel/bias regularizers: from_keras, .keras both ways,
    3 Adam steps (the penalties over all four kernels and biases), one row alone bit-equal in its batch."""
    L = keras.layers
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    x[0, 5:] = 0.0
    vm = rng.random((4, 7)) > 0.2
    inp, vin = keras.Input((7, 3)), keras.Input((7,), dtype="bool")
    h = L.GRU(4, return_sequences=True)(L.Masking()(inp))
    a = L.MultiHeadAttention(2, 3, kernel_regularizer="l2", bias_regularizer=keras.regularizers.L1(0.01))(
        h, value=h, value_mask=vin)
    km = keras.Model([inp, vin], L.Dense(1)(L.GlobalAveragePooling1D()(a)))
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    expected = km.predict([x, vm], verbose=0)
    np.testing.assert_allclose(fg.from_keras(km).predict([x, vm]), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(ours.predict([x, vm]), expected, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict([x, vm], verbose=0),
                               expected, rtol=1e-4, atol=2e-5)
    y = rng.random((4, 1)).astype(np.float32)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="mse")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch([x, vm], y), km.train_on_batch([x, vm], y), rtol=1e-4)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-5)
    invariant = fg.get_batch_invariant()
    fg.set_batch_invariant(True)
    try:
        np.testing.assert_array_equal(ours.predict([x[1:2], vm[1:2]]), ours.predict([x, vm])[1:2])
    finally:
        fg.set_batch_invariant(invariant)


@pytest.mark.keras
def test_two_attentions_on_one_tensor_follow_keras_masks(keras, rng, tmp_path):
    """Keras 3's MultiHeadAttention removes its inputs' masks when it runs: the second one over ``h`` sees
    ``h`` unmasked, while the other layers keep the masks recorded when the graph was built."""
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    x[0, 4:] = 0.0
    x[2, 6:] = 0.0

    def build(mod, layers):
        inp = mod.Input((7, 3))
        h = layers.GRU(4, return_sequences=True)(layers.Masking()(inp))
        z = layers.Add()([layers.MultiHeadAttention(2, 3)(h, h), layers.MultiHeadAttention(1, 2)(h, h), h])
        return mod.Model(inp, [layers.Dense(1)(layers.GlobalAveragePooling1D()(z)), layers.GRU(3)(z)])

    km = build(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = build(fg, fg.layers)
    ours.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    for model in (ours, fg.load_model(tmp_path / "k.keras")):
        for g, e in zip(model.predict(x), expected):
            np.testing.assert_allclose(g, e, rtol=1e-4, atol=2e-5)
    y = [rng.random((4, 1)).astype(np.float32), rng.random((4, 3)).astype(np.float32)]
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss=["mse", "mse"])
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss=["mse", "mse"])
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-4)


def test_bad_options_and_inputs(rng):
    with pytest.raises(ValueError, match="'num_heads' should be a positive integer"):
        MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(TypeError, match="'key_dim'"):
        MultiHeadAttention(num_heads=2, key_dim="3")
    with pytest.raises(ValueError, match="'dropout'"):
        MultiHeadAttention(2, 3, dropout=1.0)
    with pytest.raises(fg.UnsupportedKerasFeature, match="attention_axes"):
        MultiHeadAttention(2, 3, attention_axes=(2,))
    with pytest.raises(fg.UnsupportedKerasFeature, match="use_gate"):
        MultiHeadAttention(2, 3, use_gate=True)
    with pytest.raises(fg.UnsupportedKerasFeature, match="no_such_constraint"):  # (applied; an unknown one refused)
        MultiHeadAttention(2, 3, kernel_constraint="no_such_constraint")
    assert set(MultiHeadAttention(2, 3, kernel_constraint="non_neg").weight_constraints) == {
        "query/kernel", "key/kernel", "value/kernel", "attention_output/kernel"}
    assert MultiHeadAttention(2, 3, attention_axes=1).attention_axes == (1,)
    # glorot on a (D, heads, key_dim) kernel draws with fans D and heads * key_dim, as Keras 3's EinsumDense
    wide = MultiHeadAttention(4, 16)
    wide.build([(None, 3, 64), (None, 3, 64)])
    assert np.sqrt(6 / 128) * 0.9 < np.abs(wide.get_weights()[0]).max() <= np.sqrt(6 / 128)
    layer = MultiHeadAttention(2, 3)
    q = rng.standard_normal((2, 4, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="value is missing"):
        layer(q)
    with pytest.raises(fg.UnsupportedKerasFeature, match="rank 3"):
        layer(q[0], q[0])
    with pytest.raises(ValueError, match="same number of steps"):
        layer(q, q, key=np.ones((2, 3, 5), np.float32))
    layer(q, q)
    with pytest.raises(ValueError, match="last dimension 5"):
        layer(q, np.ones((2, 4, 6), np.float32))
    with pytest.raises(ValueError, match="value mask must have shape"):
        layer(q, q, value_mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        layer(q, q, attention_mask=np.ones((2, 4, 3), bool))
    # dropout acts in training only, seeded; an explicit query_mask is ignored, as Keras 3 does
    drop = MultiHeadAttention(2, 3, dropout=0.5, seed=1)
    drop(q, q)
    drop.set_weights(layer.get_weights())
    np.testing.assert_array_equal(drop(q, q), layer(q, q))
    assert not np.allclose(drop(q, q, training=True), drop(q, q))
    np.testing.assert_array_equal(layer(q, q, query_mask=np.zeros((2, 4), bool)), layer(q, q))


def test_config_round_trip_and_refusals_from_a_config():
    import copy

    L = fg.layers
    inp = fg.Input((7, 3))
    h = L.GRU(4, return_sequences=True)(inp)
    model = fg.Model(inp, L.MultiHeadAttention(2, 3, name="mha")(h, h, use_causal_mask=True))
    config = model.get_config()
    again = fg.Model.from_config(config)
    assert again.get_layer("mha")._inbound_nodes[0].call_kwargs == {"use_causal_mask": True}

    def edited(key, value, node=False):
        c = copy.deepcopy(config)
        entry = next(e for e in c["layers"] if e["class_name"] == "MultiHeadAttention")
        (entry["inbound_nodes"][0]["kwargs"] if node else entry["config"])[key] = value
        return c

    with pytest.raises(fg.UnsupportedKerasFeature, match="attention_axes"):
        fg.Model.from_config(edited("attention_axes", [2]))
    with pytest.raises(fg.UnsupportedKerasFeature, match="use_gate"):
        fg.Model.from_config(edited("use_gate", True))
    with pytest.raises(fg.ModelFileError, match="'num_heads' should be a positive integer"):
        fg.Model.from_config(edited("num_heads", "x"))
    with pytest.raises(fg.UnsupportedKerasFeature, match="call argument sliding"):
        fg.Model.from_config(edited("sliding", True, node=True))


@pytest.mark.keras
@pytest.mark.parametrize("merge", ["Concatenate", "Add", "none"])
def test_loss_mask_after_a_merge_of_the_attentions_input_follows_keras(keras, rng, tmp_path, merge):
    """Keras gives a layer's output the mask computed from the masks its inputs carry when it runs; a
    MultiHeadAttention deletes those of the tensors it is called on, so merging its input with its output
    leaves a sequence loss unmasked (Concatenate: any; Add: none), while its output alone stays masked."""
    ids = rng.integers(1, 20, (6, 5)).astype("int32")
    ids[:3, 3:] = 0
    y = rng.integers(0, 3, (6, 5)).astype("int32")

    def build(mod, layers):
        inp = mod.Input((5,), dtype="int32")
        h = layers.GRU(4, return_sequences=True)(layers.Embedding(20, 4, mask_zero=True)(inp))
        a = layers.MultiHeadAttention(num_heads=1, key_dim=2)(h, h)
        z = a if merge == "none" else getattr(layers, merge)()([h, a])
        return mod.Model(inp, layers.Dense(3, activation="softmax")(z))

    km = build(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "m.keras")
    for ours in (fg.load_model(tmp_path / "m.keras", compile=False), build(fg, fg.layers)):
        ours.set_weights(km.get_weights())
        ours.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        km.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        np.testing.assert_allclose(ours.test_on_batch(ids, y), km.test_on_batch(ids, y), rtol=1e-5)
