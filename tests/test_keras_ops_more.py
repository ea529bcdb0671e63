"""The Keras 3 ops added in the twenty-eighth session (activations of ``keras.ops.nn``, math of ``keras.ops.numpy``,
``glu``, ``normalize``, ``repeat``, ``tile``, ``roll``, ``argmax``, ``split``, ``sort``, ``top_k``, ``moments``,
``take``, ``take_along_axis``, ...): each op's values and input gradient
against TensorFlow's; a model of all of them loaded live, from the committed file (no TensorFlow), and saved back
for Keras; and the refusals of what they cannot do."""

from __future__ import annotations

from pathlib import Path

import keras_ops_cases as cases
import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def _x(domain, seed=0, shape=(3, 6, 4)):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.3, 2.0, shape) if domain == "positive" else rng.normal(size=shape)).astype("float32")


@pytest.mark.keras
@pytest.mark.parametrize("case", cases.MORE_OPS, ids=[c[0] for c in cases.MORE_OPS])
def test_values_and_input_gradient_match_tensorflow(keras, case):
    import tensorflow as tf

    name, f, *_, domain = case
    x = _x(domain, seed=len(name))
    inp = keras.Input((6, 4))
    km = keras.Model(inp, f(keras.ops, inp))
    ours = fg.from_keras(km)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = km(xt)
        w = tf.constant(np.random.default_rng(1).normal(size=y.shape).astype("float32"))
        loss = tf.reduce_sum(y * w)
    expected_dx = tape.gradient(loss, xt)
    no_gradient = expected_dx is None
    expected_dx = np.zeros_like(x) if expected_dx is None else expected_dx.numpy()
    mine, cache = ours.forward(x, training=True)
    np.testing.assert_allclose(mine, y.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    dx, _ = ours.backward(w.numpy(), cache)
    assert (dx is None) == no_gradient, name  # (no gradient at all where TensorFlow has none)
    dx = np.zeros_like(x) if dx is None else dx
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-4, atol=1e-5, err_msg=name)


def _npz():
    data = np.load(FILES / "ops_more.npz")
    return data["x0"], [data[f"y{j}"] for j in range(len(cases.MORE_OPS))]


def test_the_committed_file_of_every_added_op_gives_keras_outputs_and_saves_back(tmp_path):
    x, expected = _npz()
    model = fg.load_model(FILES / "ops_more.keras")
    got = model.predict(x)
    assert len(got) == len(expected) == len(cases.MORE_OPS)
    for (name, *_), g, e in zip(cases.MORE_OPS, got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6, err_msg=name)
    model.save(tmp_path / "again.keras")
    for g, e in zip(fg.load_model(tmp_path / "again.keras").predict(x), got):
        np.testing.assert_array_equal(g, e)


@pytest.mark.keras
def test_a_live_model_of_every_added_op_and_back_to_keras(keras, tmp_path):
    km, names = cases.more_ops(keras)
    cases.randomize(km, 4)
    x = _x("any", seed=9, shape=(4, 6, 4))
    expected = km.predict(x, verbose=0)
    ours = fg.from_keras(km)
    for name, g, e in zip(names, ours.predict(x), expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6, err_msg=name)
    ours.save(tmp_path / "ours.keras")
    for name, g, e in zip(names, keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(("op", "config", "shape", "match"), [
    ("Tile", {"repeats": [2, 1, 1]}, (None, 6, 4), "tile the batch axis"),
    ("Tile", {"repeats": [1, 1, 1, 2]}, (None, 6, 4), "add axes before the batch axis"),
    ("Roll", {"shift": 1, "axis": None}, (None, 6, 4), "batch axis"),
    ("Repeat", {"repeats": [1, 2], "axis": 0}, (None, 2, 4), "batch axis"),
    ("Argmax", {"axis": None, "keepdims": False}, (None, 6, 4), "batch axis"),
    ("Glu", {"axis": 0}, (None, 6, 4), "batch axis"),
])
def test_what_would_mix_samples_is_refused(op, config, shape, match):
    from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

    with pytest.raises(UnsupportedKerasFeature, match=match):
        KerasOp(op, config)([fg.Input(shape[1:])], template={"args": [{TENSOR_KEY: 0}], "kwargs": {}})


def test_an_average_weighted_by_a_tensor_or_a_mismatched_vector_is_refused():
    from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

    layer = KerasOp("Average", {"axis": 1})
    with pytest.raises(UnsupportedKerasFeature, match="weights computed from the graph's tensors"):
        layer([fg.Input((6, 4)), fg.Input((6, 4))], template={"args": [{TENSOR_KEY: 0}],
                                                              "kwargs": {"weights": {TENSOR_KEY: 1}}})
    with pytest.raises(ValueError, match="must be a vector as long as the one axis"):
        KerasOp("Average", {"axis": 1})([fg.Input((6, 4))], template={"args": [{TENSOR_KEY: 0}],
                                                                       "kwargs": {"weights": [1.0, 2.0]}})


def test_glu_of_an_odd_axis_is_a_value_error():
    from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

    with pytest.raises(ValueError, match="cannot be split in halves"):
        KerasOp("Glu", {"axis": -1})([fg.Input((6, 5))], template={"args": [{TENSOR_KEY: 0}], "kwargs": {}})


@pytest.mark.parametrize(("op", "config", "extra", "sizes"), [
    ("Split", {"indices_or_sections": [2, 5], "axis": 1}, [], [(None, 2, 3), (None, 3, 3), (None, 2, 3)]),
    ("Split", {"indices_or_sections": 3, "axis": -1}, [], [(None, 7, 1)] * 3),
    ("TopK", {"k": 2}, [], [(None, 7, 2)] * 2),
    ("Moments", {"axes": [1], "keepdims": True}, [], [(None, 1, 3)] * 2),
    ("Moments", {"axes": [1, 2], "keepdims": False}, [], [(None,)] * 2),
    ("Sort", {"axis": 1}, [], [(None, 7, 3)]),
    ("Unstack", {"axis": 2}, [], [(None, 7)] * 3),
    ("Take", {"axis": 1}, [[[0, -1], [3, 3]]], [(None, 2, 2, 3)]),
    ("TakeAlongAxis", {"axis": 1}, ["indices"], [(None, 7, 3)]),
])
def test_several_output_and_gather_ops_against_central_differences(op, config, extra, sizes):
    """Ops with one output per part (None: an output nothing used, zeros back) and the gathers, in float64."""
    from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

    x = np.random.default_rng(0).normal(size=(2, 7, 3))
    xs, args = [x], [{TENSOR_KEY: 0}]
    for e in extra:
        if e == "indices":
            xs.append(np.argsort(x, axis=1).astype(np.float64))
            args.append({TENSOR_KEY: 1})
        else:
            args.append(e)
    template = {"args": args, "kwargs": {}}
    layer = KerasOp(op, config)
    shape = layer.compute_output_shape([(None, 7, 3)] + [(None, 7, 3)] * (len(xs) - 1), template=template)
    assert (shape if isinstance(shape, list) else [shape]) == sizes
    y, cache = layer.forward(xs, template=template)
    ys = y if isinstance(y, list) else [y]
    weights = [np.random.default_rng(k).normal(size=p.shape) for k, p in enumerate(ys)]
    if len(weights) > 1:
        weights[1] = None  # (the second output unused)
    dxs, _ = layer.backward(weights if isinstance(y, list) else weights[0], cache)
    eps, numeric = 1e-6, np.zeros_like(x)

    def f(v):
        out = layer.call([v] + xs[1:], template=template)
        return sum((p * w).sum() for p, w in zip(out if isinstance(out, list) else [out], weights) if w is not None)

    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (f(up) - f(down)) / (2 * eps)
    np.testing.assert_allclose(dxs[0], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.keras
def test_split_in_a_keras_model_predicts_trains_and_saves_as_keras(keras, tmp_path):
    """``a, b = ops.split(h, 2, axis=-1)`` (gated units) and a split at indices, one part unused by the loss."""
    O, L = keras.ops, keras.layers
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 8))
    h = L.Dense(8)(i)
    a, b = O.split(h, 2, axis=-1)
    first, middle, last = O.split(h, [2, 5], axis=1)
    km = keras.Model(i, [L.GRU(3)(a * O.sigmoid(b)), O.mean(first, axis=1) + O.mean(last, axis=1), middle])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    x = _x("any", seed=2, shape=(4, 6, 8))
    for mine, theirs in zip(ours.predict(x), km.predict(x, verbose=0)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    ys = [np.random.default_rng(1).normal(size=(4, 3)).astype("float32"),
          np.random.default_rng(2).normal(size=(4, 8)).astype("float32")]
    for model, lib in ((km, keras), (ours, fg)):
        model.compile(lib.optimizers.SGD(0.1), loss=["mse", "mse", None])
    theirs = km.fit(x, ys, epochs=3, batch_size=2, shuffle=False, verbose=0).history
    mine = ours.fit(x, ys, epochs=3, batch_size=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(mine["loss"], theirs["loss"], rtol=1e-5)
    for w, v in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-4, atol=1e-6)
    ours.save(tmp_path / "back.keras")
    for mine, theirs in zip(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), ours.predict(x)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.keras
def test_one_hot_of_integer_inputs_predicts_and_trains_as_keras(keras, tmp_path):
    """``ops.one_hot(ids, n)`` of an int input (a character model without an Embedding): ids outside [0, n) give
    zeros, as TensorFlow; ``axis`` places the classes; the recurrent model trains to Keras's numbers."""
    O, L = keras.ops, keras.layers
    keras.utils.set_random_seed(0)
    i = keras.Input((7,), dtype="int32")
    km = keras.Model(i, [L.Dense(2)(L.LSTM(3)(O.one_hot(i, 5))), O.one_hot(i, 6, axis=1)])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    ids = np.array([[0, 1, 4, 2, 7, -1, 3], [4, 4, 0, 1, 2, 3, 5], [1, 1, 1, 0, 0, 2, 2]], "int32")
    for mine, theirs in zip(ours.predict(ids), km.predict(ids, verbose=0)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    y = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    for model, lib in ((km, keras), (ours, fg)):
        model.compile(lib.optimizers.Adam(0.05), loss=["mse", None])
    theirs = km.fit(ids, [y], epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(ids, [y], epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for w, v in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-4, atol=1e-6)


#: TensorFlow's casts of these floats (x86, keras.ops.cast in a graph): truncated, narrower types wrapping around
#: through int32, whose out-of-range values become -2**31 (so 0 in the narrower types)
_CAST_INPUT = [-100.7, 300.2, 45000.0, 70000.5, 3e9, -3e9, 5e10, -1.5, 255.9]
_TENSORFLOW_CASTS = {
    "uint8": [156, 44, 200, 112, 0, 0, 0, 255, 255],
    "int8": [-100, 44, -56, 112, 0, 0, 0, -1, -1],
    "int16": [-100, 300, -20536, 4464, 0, 0, 0, -1, 255],
    "uint16": [65436, 300, 45000, 4464, 0, 0, 0, 65535, 255],
    "int32": [-100, 300, 45000, 70000, -2 ** 31, -2 ** 31, -2 ** 31, -1, 255],
    "int64": [-100, 300, 45000, 70000, 3000000000, -3000000000, 49999998976, -1, 255],
}


@pytest.mark.parametrize("dtype", sorted(_TENSORFLOW_CASTS))
def test_narrowing_integer_casts_in_a_graph_wrap_as_tensorflow_s(dtype):
    inputs = fg.Input((len(_CAST_INPUT),))
    model = fg.Model(inputs, fg.ops.cast(fg.ops.cast(inputs, dtype), "float32"))
    got = model.predict(np.array([_CAST_INPUT], np.float32), verbose=0)[0]
    np.testing.assert_array_equal(got, np.array(_TENSORFLOW_CASTS[dtype], np.float32))


def test_argmax_and_argmin_skip_nans_as_tensorflow_s():
    nan, inf = np.nan, np.inf
    x = np.array([[1, nan, 3, 2], [nan, 1, 2, 0], [nan, nan, nan, nan], [-inf, nan, -inf, nan], [nan, -inf, 5, 5],
                  [3, 3, nan, 1]], np.float32)
    expected = {"argmax": [2, 2, 0, 0, 2, 0], "argmin": [0, 3, 0, 0, 1, 3]}  # (TensorFlow's, keras.ops on arrays)
    for name, indices in expected.items():
        np.testing.assert_array_equal(getattr(fg.ops, name)(x, -1), indices)
        inputs = fg.Input((4,))
        model = fg.Model(inputs, fg.ops.cast(getattr(fg.ops, name)(inputs, -1), "float32"))
        np.testing.assert_array_equal(model.predict(x, verbose=0), indices)
    corners = np.array([[nan, 1], [5, nan]], np.float32)  # (over every axis: NumPy's function, the same rule)
    assert fg.ops.argmax(corners) == 2 and fg.ops.argmin(corners) == 1


def test_tensors_of_different_ranks_are_not_broadcast_across_the_batch():
    """``(B,) + (B, 1)`` broadcasts to (B, B) in Keras: each sample's value would depend on the others (and on the
    batch size predict cuts); refused with what to do instead, as the other ops that mix samples are."""
    tokens, features = fg.Input((6,)), fg.Input((3, 4))
    with pytest.raises(UnsupportedKerasFeature, match="different ranks.*expand_dims"):
        fg.ops.mean(tokens, 1) + fg.ops.mean(features, (1, 2))[:, None]
    with pytest.raises(UnsupportedKerasFeature, match="different ranks"):
        fg.ops.where(fg.ops.greater(tokens, 0.0)[:, :3], features, 0.0)  # ((B, 3) against (B, 3, 4): refused too)
    model = fg.Model([tokens, features], fg.ops.mean(tokens, 1, keepdims=True) + fg.ops.mean(features, (1, 2))[:, None])
    assert model.output_shape == (None, 1)  # (of one rank: each sample its own)


@pytest.mark.keras
def test_a_file_with_where_of_a_condition_alone_is_refused_by_name(keras, tmp_path):
    inputs = keras.Input((3, 4))
    keras.Model(inputs, keras.ops.where(inputs > 0)).save(tmp_path / "m.keras")
    with pytest.raises(UnsupportedKerasFeature, match="Where.*an operand is None .ops.where needs both values"):
        fg.load_model(tmp_path / "m.keras")


def _loads_predicts_trains_and_saves_as_keras(keras, theirs, x, y, tmp_path, batch_size: int):
    """``theirs`` compiled and saved; fastgru's load of it predicts, trains two epochs (SGD) and saves back as Keras's.
    Returns fastgru's model."""
    theirs.compile(keras.optimizers.SGD(0.05), "mse")
    theirs.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    history = theirs.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0).history[
        "loss"], history, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    ours.save(tmp_path / "back.keras")
    again = keras.models.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    return ours


@pytest.mark.keras
def test_count_nonzero_and_vector_norms_of_other_orders_load_predict_and_train_as_keras(keras, tmp_path, rng):
    ops, layers = keras.ops, keras.layers
    inputs = keras.Input((5, 3))
    h = layers.GRU(4, return_sequences=True)(inputs)
    lengths = ops.cast(ops.count_nonzero(ops.relu(inputs[:, :, 0]), axis=1), "float32")  # (no gradient)
    norms = ops.concatenate([ops.norm(h, ord=1, axis=-1), ops.norm(h, ord=np.inf, axis=-1),
                             ops.norm(h, ord=-np.inf, axis=-1), ops.expand_dims(lengths, -1)], axis=-1)
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")
    _loads_predicts_trains_and_saves_as_keras(keras, keras.Model(inputs, layers.Dense(2)(norms)), x, y, tmp_path, 8)
    np.testing.assert_array_equal(fg.ops.count_nonzero(x[:, :, 0] > 0, axis=1),
                                  ops.count_nonzero(x[:, :, 0] > 0, axis=1).numpy())


@pytest.mark.keras
def test_repeat_with_a_count_per_entry_loads_predicts_and_trains_as_keras(keras, tmp_path, rng):
    inputs = keras.Input((4, 3))
    h = keras.layers.GRU(3, return_sequences=True)(inputs)
    h = keras.ops.repeat(h, [2, 0, 1, 3], axis=1)  # (steps 4 -> 6; one step dropped)
    theirs = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(2)(h)))
    x, y = rng.normal(size=(8, 4, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    _loads_predicts_trains_and_saves_as_keras(keras, theirs, x, y, tmp_path, 4)
    with pytest.raises(UnsupportedKerasFeature, match="one per entry"):
        fg.ops.repeat(fg.Input((4, 3)), [1, 2], axis=1)


@pytest.mark.keras
@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_mirror_padding_loads_predicts_and_trains_as_keras(keras, tmp_path, rng, mode):
    inputs = keras.Input((5, 3))
    h = keras.layers.Conv1D(4, 3, padding="valid")(keras.ops.pad(inputs, [[0, 0], [1, 1], [0, 0]], mode=mode))
    h = keras.ops.pad(h, [[0, 0], [2, 0], [1, 2]], mode=mode)
    theirs = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(3)(h)))
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    _loads_predicts_trains_and_saves_as_keras(keras, theirs, x, y, tmp_path, 4)
    first = fg.Input((5, 3))  # (and built with fastgru's own ops)
    built = fg.Model(first, fg.ops.pad(first, [[0, 0], [1, 1], [0, 0]], mode=mode))
    np.testing.assert_array_equal(built.predict(x, verbose=0), np.pad(x, [[0, 0], [1, 1], [0, 0]], mode=mode))


def _attention_model(api, variant):
    """A GRU's states as queries, keys and values of ``ops.dot_product_attention`` (heads of 2), pooled to one output."""
    layers, ops = api.layers, api.ops
    tokens = api.Input((6,), dtype="int32")
    h = layers.GRU(8, return_sequences=True)(layers.Embedding(10, 4)(tokens))
    q = layers.Reshape((6, 4, 2))(layers.Dense(8)(h))
    kv_heads = 2 if variant == "grouped" else 4
    k = layers.Reshape((6, kv_heads, 2))(layers.Dense(2 * kv_heads)(h))
    v = layers.Reshape((6, kv_heads, 2))(layers.Dense(2 * kv_heads)(h))
    options = {}
    if variant == "causal":
        options["is_causal"] = True
    if variant == "masked":  # (padding ids 0: a (B, 1, 1, S) key mask), with a scale
        options["mask"] = ops.expand_dims(ops.expand_dims(ops.not_equal(tokens, 0), 1), 1)
        options["scale"] = 0.3
    if variant == "bias":  # (a bias computed from the states: (B, 1, T, S))
        options["bias"] = ops.expand_dims(ops.einsum("btd,bsd->bts", h, h), 1)
    out = ops.dot_product_attention(q, k, v, **options)
    return api.Model(tokens, layers.Dense(1)(ops.mean(layers.Reshape((6, 8))(out), axis=1)))


@pytest.mark.keras
@pytest.mark.parametrize("variant", ["plain", "causal", "grouped", "masked", "bias"])
def test_dot_product_attention_loads_predicts_trains_and_saves_as_keras(keras, tmp_path, rng, variant):
    theirs = _attention_model(keras, variant)
    built = _attention_model(fg, variant)  # (and written with fastgru's own ops)
    built.set_weights(theirs.get_weights())
    x = rng.integers(1, 10, (8, 6)).astype("int32")
    x[:3, 4:] = 0
    y = rng.normal(size=(8, 1)).astype("float32")
    np.testing.assert_allclose(built.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    _loads_predicts_trains_and_saves_as_keras(keras, theirs, x, y, tmp_path, 4)
    q, k, v = (rng.normal(size=s).astype("float32") for s in ((2, 3, 4, 2), (2, 5, 2, 2), (2, 5, 2, 2)))
    np.testing.assert_allclose(fg.ops.dot_product_attention(q, k, v, is_causal=True),
                               keras.ops.dot_product_attention(q, k, v, is_causal=True).numpy(), rtol=1e-5, atol=1e-6)


def test_what_keras_s_tensorflow_backend_refuses_is_refused():
    q = np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(UnsupportedKerasFeature, match="attn_logits_soft_cap"):
        fg.ops.dot_product_attention(q, q, q, attn_logits_soft_cap=1.0)
    with pytest.raises(ValueError, match="constant_values must be a number, with mode 'constant'"):
        fg.ops.pad(fg.Input((4, 2)), [[0, 0], [1, 1], [0, 0]], mode="reflect", constant_values=2.5)
