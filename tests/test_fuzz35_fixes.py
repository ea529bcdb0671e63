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
    exact by default, leaky_relu's alpha 0.2, l2_normalize's epsilon under the square root)."""
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
            tf.cast(p > 0, tf.float32) * p]
    model = tk.Model(i, outs)
    model.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(3, 6, 4)).astype("float32")
    ours = fg.load_model(tmp_path / "m.h5")
    for k, (mine, theirs) in enumerate(zip(ours.predict(x), model.predict(x, verbose=0))):
        np.testing.assert_allclose(mine, theirs, rtol=2e-5, atol=2e-6, err_msg=f"output {k}")
