"""Fixes from the twenty-eighth session (the thirty-fifth Keras-parity fuzz round; each test says what was
wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
@pytest.mark.parametrize("scores", ["features", "dense"])
def test_keras_softmax_op_after_a_masking_layer_takes_no_mask(keras, tmp_path, scores):
    """``Masking -> GRU(return_sequences) -> [Dense(1)] -> ops.softmax``: the chain loader ran the op as the
    Softmax layer, which applied the propagated (batch, steps) mask to a (batch, steps, 1) tensor and failed at
    predict. Keras's op takes no mask: now loaded as a graph of the op, Keras's numbers."""
    L, O = keras.layers, keras.ops
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(4, 10, 3)).astype("float32")
    x[0, 6:] = 0
    x[1, 3:] = 0
    i = keras.Input((10, 3))
    h = L.GRU(5, return_sequences=True)(L.Masking()(i))
    km = keras.Model(i, O.softmax(h, axis=-1) if scores == "features" else O.softmax(L.Dense(1)(h), axis=1))
    km.save(tmp_path / "m.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_transpose_op_without_axes_is_refused_as_moving_the_batch_axis(keras, tmp_path):
    """``ops.transpose(h)`` (numpy's default: every axis reversed) was refused as a damaged file ("axes must be
    a permutation"); it is a valid op that moves the batch axis, which fastgru refuses as unsupported."""
    i = keras.Input((10, 6))
    keras.Model(i, keras.ops.transpose(keras.layers.GRU(4)(i))).save(tmp_path / "m.keras")
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="axes=None reverses every axis"):
        fg.load_model(tmp_path / "m.keras")


def test_a_sequential_model_takes_a_dict_keyed_by_its_input_name_only():
    """``predict({"nope": x})`` on a one-input model was taken whatever the key; Keras refuses a key that is not
    the input's name. A Sequential given a named Input (or loaded from a file naming it) checks the key."""
    model = fg.Sequential([fg.layers.Input((5, 3), name="seq"), fg.layers.GRU(4), fg.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict({"seq": x}, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"has one input, 'seq'; the inputs dict is keyed \['nope'\]"):
        model.predict({"nope": x}, verbose=0)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="has one input, 'seq'"):
        model.fit({"nope": x}, np.zeros((2, 2), "float32"), verbose=0)


@pytest.mark.keras
def test_a_loaded_chain_keeps_its_input_name(keras, tmp_path):
    """A chain loaded from a file keeps its Input's name and dtype (``model.inputs``, the dict key, and the name
    written back by ``save``)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 6), name="seq")
    km = keras.Model(i, keras.layers.Dense(2)(keras.layers.GRU(3)(keras.layers.Conv1D(4, 3)(i))))
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(1).normal(size=(4, 12, 6)).astype("float32")
    np.testing.assert_allclose(ours.predict({"seq": x}, verbose=0), km.predict({"seq": x}, verbose=0), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="has one input, 'seq'"):
        ours.predict({"nope": x}, verbose=0)
    assert ours.inputs[0].shape == (None, 12, 6)
    ours.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    assert again.inputs[0].name == "seq" and again.get_config()["layers"][0]["config"]["name"] == "seq"
    np.testing.assert_allclose(again.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_tf_keras_functions_of_the_added_ops_load(tmp_path):
    """tf_keras records ``tf.nn.relu6(h)``, ``tf.cast(...)``, ``h // 2``, ``tf.tile``, ``tf.math.l2_normalize``, ...
    as TFOpLambda layers named after the function; ``tf.cast`` (common: a mask cast to float) and the functions of
    the ops added this session were refused by name. Each now reads as its Keras 3 op, tf_keras's numbers (tf.nn.gelu
    exact by default, leaky_relu's alpha 0.2, l2_normalize's epsilon under the square root, atan2's second tensor
    recorded as ``x``)."""
    tk = pytest.importorskip("tf_keras")
    import tensorflow as tf

    i = tk.Input((6, 4))
    p = tk.layers.GRU(4, return_sequences=True)(i)
    outs = [tf.nn.relu6(p * 4), tf.nn.selu(p), tf.nn.softsign(p), tf.nn.silu(p), tf.math.log_sigmoid(p),
            tf.math.log1p(tf.abs(p)), tf.math.expm1(p), tf.sin(p), tf.cos(p), tf.atan(p), tf.floor(p * 3) * p,
            tf.round(p * 3) * p, tf.math.reciprocal(tf.abs(p) + 0.5), (p * 5) // 2.0, (p * 5) % 2.0, tf.nn.gelu(p),
            tf.nn.gelu(p, approximate=True), tf.nn.leaky_relu(p), tf.nn.leaky_relu(p, alpha=0.1),
            tf.cast(tf.argmax(p, axis=-1), tf.float32), tf.tile(p, [1, 2, 1]), tf.roll(p, shift=1, axis=1),
            tf.repeat(p, 2, axis=1), tf.math.l2_normalize(p, axis=-1), tf.nn.l2_normalize(p * 1e-4, axis=1, epsilon=1e-6),
            tf.cast(p > 0, tf.float32) * p, tf.math.atan2(p, p * p + 0.5)]
    model = tk.Model(i, outs)
    model.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(3, 6, 4)).astype("float32")
    ours = fg.load_model(tmp_path / "m.h5")
    for k, (mine, theirs) in enumerate(zip(ours.predict(x), model.predict(x, verbose=0))):
        np.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=2e-6, err_msg=f"output {k}")


@pytest.mark.keras
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_sequential_nested_in_a_sequential_file_stays_nested(keras, tmp_path, suffix):
    """A Sequential inside a Sequential was flattened on load: ``model.layers[k]`` and ``get_layer("inner")`` were
    not Keras's, and ``Model(model.inputs, model.layers[0].output)`` silently gave the inner GRU's output instead of
    the inner model's. It loads nested now (as the code-built one), its output that of its call, and trains and saves
    to Keras's numbers."""
    L = keras.layers
    keras.utils.set_random_seed(1)
    inner = keras.Sequential([keras.Input((10, 4)), L.GRU(6, return_sequences=True), L.LayerNormalization()],
                             name="inner")
    km = keras.Sequential([keras.Input((10, 4)), inner, L.LSTM(4), L.Dense(1)])
    km.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}")
    assert [layer.name for layer in ours.layers] == [layer.name for layer in km.layers]
    assert ours.layers[0].name == "inner" and len(ours.layers) == 3
    assert [layer.name for layer in ours.get_layer("inner").layers][-2:] == [layer.name for layer in inner.layers]
    x = np.random.default_rng(0).normal(size=(3, 10, 4)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.Model(ours.inputs, ours.layers[0].output).predict(x, verbose=0),
                               keras.Model(km.inputs, km.layers[0].output).predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    y = np.random.default_rng(1).normal(size=(3, 1)).astype("float32")
    for model, lib in ((km, keras), (ours, fg)):
        model.compile(lib.optimizers.SGD(0.1), "mse")
    theirs = km.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    ours.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_tf_keras_sequential_nested_in_a_sequential_stays_nested(tmp_path):
    """The same for a tf_keras .h5 file (Keras 2 config and weight layout)."""
    tk = pytest.importorskip("tf_keras")
    inner = tk.Sequential([tk.layers.GRU(6, return_sequences=True, input_shape=(10, 4)),
                           tk.layers.LayerNormalization()], name="inner")
    model = tk.Sequential([inner, tk.layers.LSTM(4), tk.layers.Dense(1)])
    model.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    assert [layer.name for layer in ours.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(0).normal(size=(3, 10, 4)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.Model(ours.inputs, ours.layers[0].output).predict(x, verbose=0),
                               inner.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_a_code_built_nested_sequential_saves_as_keras_sequential_and_pickles_nested(keras, tmp_path):
    """``Sequential.add(inner_sequential)`` nests it as a Model of its layers: saved, Keras reads a Sequential (its
    weights at Keras's ``layers/sequential/...``); pickled and configured, it comes back nested the same way."""
    import pickle

    F = fg.layers
    inner = fg.Sequential([F.Input((10, 4)), F.GRU(6, return_sequences=True), F.LayerNormalization()], name="inner")
    model = fg.Sequential([F.Input((10, 4)), inner, F.LSTM(4), F.Dense(1)])
    x = np.random.default_rng(0).normal(size=(2, 10, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert [type(layer).__name__ for layer in theirs.layers] == ["Sequential", "LSTM", "Dense"]
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    model.save_weights(tmp_path / "m.weights.h5")
    theirs.set_weights([np.zeros_like(w) for w in theirs.get_weights()])
    theirs.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for copy in (pickle.loads(pickle.dumps(model)), fg.Sequential.from_config(model.get_config())):
        copy.set_weights(model.get_weights())
        assert copy.layers[0]._as_sequential is not None
        np.testing.assert_array_equal(fg.Model(copy.inputs, copy.layers[0].output).predict(x, verbose=0),
                                      fg.Model(model.inputs, model.layers[0].output).predict(x, verbose=0))


def test_symbolic_tensors_take_floor_division_modulo_abs_and_matmul():
    """``h // 2``, ``h % 0.5``, ``abs(h)`` and ``h @ w`` were TypeErrors on fastgru's symbolic tensors (Keras's have
    them); they record the ops a file would hold."""
    x = fg.Input((5, 4))
    h = fg.layers.Dense(4)(x)
    w = np.eye(4, 3, dtype="float32")
    model = fg.Model(x, [h // 0.5, h % 0.5, abs(h), h @ w, 2.0 // (abs(h) + 1), 3.0 % (abs(h) + 1)])
    assert [type(out.node.layer).__name__ for out in model.outputs] == ["KerasOp"] * 6
    a = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    hv = model.layers[1](a)
    for got, want in zip(model.predict(a, verbose=0), [hv // 0.5, hv % 0.5, np.abs(hv), hv @ w,
                                                       2.0 // (np.abs(hv) + 1), 3.0 % (np.abs(hv) + 1)]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_normalize_of_a_zero_vector_is_quiet_and_a_disconnected_twin_input_is_named():
    """``ops.normalize`` of an all-zero vector (a masked step's output) printed NumPy's divide-by-zero warning;
    a graph built from a second copy of a loaded model named "Input 'input_layer'" on both sides of its refusal."""
    import warnings

    from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

    layer = KerasOp("Normalize", {"axis": -1, "order": 2, "epsilon": None})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = layer.call([np.zeros((2, 3, 4), "float32")], template={"args": [{TENSOR_KEY: 0}], "kwargs": {}})
    assert not out.any()
    first = fg.Sequential([fg.layers.Input((5, 3), name="seq"), fg.layers.GRU(4)])
    second = fg.Sequential([fg.layers.Input((5, 3), name="seq"), fg.layers.GRU(4)])
    with pytest.raises(ValueError, match="another Input of that name"):
        fg.Model(first.inputs, second.layers[0].output)


@pytest.mark.keras
def test_a_keras_3_h5_chain_through_an_op_loads_as_a_graph(keras, tmp_path):
    """A Keras 3 legacy ``.h5`` chain ``Dense -> ops.sin -> GRU`` (op entries carry no module there) was refused as
    an unknown layer class 'Sin'; ops are told apart by their config, as in branching graphs, and load."""
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 3))
    km = keras.Model(i, keras.layers.Dense(1)(keras.layers.GRU(4)(keras.ops.sin(keras.layers.Dense(5)(i)))))
    km.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(3, 6, 3)).astype("float32")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
