"""EinsumDense in the models that use it, against Keras: every equation form (all axes named, leading or trailing
axes elided), bias_axes over one or several output axes, an input axis summed out by the equation alone; files
both ways and three epochs of training; float64 gradients; bad equations and shapes."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_layer_gradients
from keras_parity import assert_keras_parity

import fastgru as fg
from fastgru.layers import EinsumDense

# (equation, output_shape, bias_axes, input shape without the batch axis)
CASES = [
    ("ab,bc->ac", 4, "c", (6,)),
    ("abc,cd->abd", (None, 5), "d", (7, 3)),
    ("...b,bc->...c", 5, None, (7, 3)),
    ("abc,cde->abde", (None, 2, 3), "de", (7, 4)),
    ("abc,cde->abde", (None, 2, 3), "e", (7, 4)),
    ("ab...,bc->ac...", (5,), "c", (3, 4)),
    ("abc,bcd->ad", (5,), "d", (3, 4)),
    ("abcd,cde->abe", (None, 5), "e", (3, 4, 2)),
    ("abc,cd->ad", (5,), None, (6, 3)),
]


def _id(case):
    return f"{case[0]}-{case[2]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_gradients_match_finite_differences(rng, case):
    equation, output_shape, bias_axes, shape = case
    layer = EinsumDense(equation, output_shape, bias_axes=bias_axes, activation="tanh", dtype="float64")
    layer.build((None,) + shape)
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.weights])
    x = rng.standard_normal((2,) + shape)
    assert layer.call(x).shape == (2,) + layer.compute_output_shape((None,) + shape)[1:]
    assert_layer_gradients(layer, x, rng)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_each_form_matches_keras(keras, tmp_path, case):
    equation, output_shape, bias_axes, shape = case
    rng = np.random.default_rng(20)
    x = rng.normal(size=(6,) + shape).astype("float32")
    keras.utils.set_random_seed(20)
    km = keras.Sequential([keras.Input(shape), keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes,
                                                                        activation="tanh")])
    km.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in km.get_weights()])
    y = rng.normal(size=km.predict(x, verbose=0).shape).astype("float32")
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_per_head_projection_around_a_gru_matches_keras(keras, tmp_path):
    """An attention block's shape of projection: features to (heads, width) per step, merged back by another
    EinsumDense, a GRU over the steps."""
    rng = np.random.default_rng(21)
    x = rng.normal(size=(8, 6, 5)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    keras.utils.set_random_seed(21)
    K = keras.layers
    inp = keras.Input((6, 5))
    heads = K.EinsumDense("btd,dhk->bthk", (None, 3, 4), bias_axes="hk", activation="relu")(inp)
    merged = K.EinsumDense("bthk,hkd->btd", (None, 6), bias_axes="d")(heads)
    h = K.GRU(5)(K.Add()([merged, K.EinsumDense("...d,de->...e", 6)(inp)]))
    km = keras.Model(inp, K.Dense(2)(h))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_bad_equations_and_shapes():
    with pytest.raises(ValueError, match="is not of Keras's forms"):
        EinsumDense("ab,bc", 3)
    with pytest.raises(ValueError, match="bias_axes must name axes of the output spec 'ac'"):
        EinsumDense("ab,bc->ac", 3, bias_axes="b")
    with pytest.raises(ValueError, match="output_shape must be a positive integer"):
        EinsumDense("ab,bc->ac", "3")
    with pytest.raises(ValueError, match="takes inputs of rank 2, received shape"):
        fg.Sequential([fg.layers.Input((3, 4)), EinsumDense("ab,bc->ac", 3)])
    with pytest.raises(ValueError, match="do not match at shared dimension 'b': 3 against 5"):
        fg.Sequential([fg.layers.Input((3, 4)), EinsumDense("abc,cd->abd", (5, 2))])
    with pytest.raises(ValueError, match="output dimension 'c' is in neither"):
        fg.Sequential([fg.layers.Input((4,)), EinsumDense("ab,be->ac", 3)])
    with pytest.raises(ValueError, match="kernel dimension 'e' is in neither"):
        fg.Sequential([fg.layers.Input((4,)), EinsumDense("ab,bce->ac", 3)])
    model = fg.Sequential([fg.layers.Input((3, 4)), EinsumDense("abc,cd->abd", (None, 2))])
    with pytest.raises(ValueError, match=r"expects input shape \(None, 3, 4\), received shape \(1, 3, 5\)"):
        model.layers[0].call(np.zeros((1, 3, 5), np.float32))
    with pytest.raises(TypeError, match="numeric input array"):
        model.layers[0].call(np.full((1, 3, 4), "a"))
