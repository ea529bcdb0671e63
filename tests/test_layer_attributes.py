"""A layer's weights by their Keras names (``layer.kernel``, ``layer.cell.recurrent_kernel``): the live arrays,
``None`` for a weight the options leave out, as Keras's attributes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastgru as fg

L = fg.layers

#: (layer factory taking the library's layers module, input shape, attributes to read, where: layer or cell)
CASES = [
    (lambda m: m.Dense(3), (None, 4), ("kernel", "bias"), "layer"),
    (lambda m: m.Dense(3, use_bias=False), (None, 4), ("kernel", "bias"), "layer"),
    (lambda m: m.Embedding(7, 3), (None, 5), ("embeddings",), "layer"),
    (lambda m: m.BatchNormalization(), (None, 4), ("gamma", "beta", "moving_mean", "moving_variance"), "layer"),
    (lambda m: m.LayerNormalization(scale=False), (None, 4), ("gamma", "beta"), "layer"),
    (lambda m: m.Conv1D(3, 2), (None, 6, 4), ("kernel", "bias"), "layer"),
    (lambda m: m.SeparableConv1D(3, 2), (None, 6, 4), ("depthwise_kernel", "pointwise_kernel", "bias"), "layer"),
    (lambda m: m.PReLU(), (None, 4), ("alpha",), "layer"),
    (lambda m: m.GRU(3), (None, 5, 4), ("kernel", "recurrent_kernel", "bias"), "cell"),
    (lambda m: m.GRU(3, use_bias=False), (None, 5, 4), ("kernel", "recurrent_kernel", "bias"), "cell"),
    (lambda m: m.LSTM(3), (None, 5, 4), ("kernel", "recurrent_kernel", "bias"), "cell"),
    (lambda m: m.SimpleRNN(3), (None, 5, 4), ("kernel", "recurrent_kernel", "bias"), "cell"),
]


def _built(factory, shape, module):
    layer = factory(module)
    layer.build(shape)
    return layer


@pytest.mark.parametrize("factory, shape, names, where", CASES)
def test_weight_attributes_match_keras(keras, factory, shape, names, where):
    """Each attribute holds what Keras's does (the same values once the weights are shared; None where Keras's is)."""
    theirs, ours = _built(factory, shape, keras.layers), _built(factory, shape, L)
    ours.set_weights(theirs.get_weights())
    their_owner, our_owner = (theirs.cell, ours.cell) if where == "cell" else (theirs, ours)
    for name in names:
        their_value, our_value = getattr(their_owner, name), getattr(our_owner, name)
        if their_value is None:
            assert our_value is None, name
        else:
            np.testing.assert_array_equal(our_value, np.asarray(their_value), err_msg=name)


def test_attributes_are_the_live_weights_and_the_cell_is_the_layer_s():
    """``layer.kernel`` is the array ``weights`` holds: set_weights shows through it, and the cell's weights,
    units and state sizes are the layer's."""
    gru = _built(lambda m: m.GRU(3), (None, 5, 4), L)
    assert gru.kernel is gru.weights[0] and gru.cell.recurrent_kernel is gru.weights[1] and gru.cell is gru.cell
    gru.set_weights([np.ones_like(w) for w in gru.get_weights()])
    assert (gru.cell.bias == 1).all()
    assert (gru.cell.units, gru.cell.state_size, gru.cell.output_size) == (3, 3, 3)
    assert _built(lambda m: m.LSTM(2), (None, 5, 4), L).cell.state_size == [2, 2]
    gru.cell.set_weights([np.zeros_like(w) for w in gru.get_weights()])  # (the layer's checks)
    assert not gru.kernel.any()
    with pytest.raises(ValueError, match="expected shape"):
        gru.cell.set_weights([np.zeros((1, 1))] * 3)
    with pytest.raises(AttributeError, match="on the layer"):
        gru.cell.units = 4
    with pytest.raises(AttributeError, match="return_sequences"):
        _ = gru.cell.return_sequences
    bidirectional = L.Bidirectional(L.GRU(2))
    bidirectional.build((None, 5, 4))
    assert bidirectional.backward_layer.cell.kernel is bidirectional.weights[3]


def test_unbuilt_and_unknown_attributes_raise_attribute_errors():
    """Before build, a weight attribute says when it will exist; an unknown name is a plain AttributeError (so
    ``hasattr`` and ``getattr(layer, name, default)`` work, and pickling is unaffected)."""
    dense = L.Dense(2)
    with pytest.raises(AttributeError, match="when it is built"):
        _ = dense.kernel
    assert not hasattr(dense, "bias") and getattr(dense, "no_such_thing", 5) == 5
    dense.build((None, 3))
    copy = pickle.loads(pickle.dumps(dense))
    np.testing.assert_array_equal(copy.kernel, dense.kernel)
    with pytest.raises(AttributeError, match="'Dense' object has no attribute 'kernal'"):
        _ = dense.kernal
    with pytest.raises(AttributeError, match="never been called in a graph"):  # (a property's own message)
        _ = dense.output


def test_compute_and_variable_dtypes_as_keras(keras):
    """``layer.compute_dtype`` and ``layer.variable_dtype`` (read by mixed-precision and export code) were missing."""
    for dtype in ("float32", "float64"):
        theirs, ours = keras.layers.GRU(2, dtype=dtype), L.GRU(2, dtype=dtype)
        assert (ours.compute_dtype, ours.variable_dtype) == (theirs.compute_dtype, theirs.variable_dtype)


ACTIVATION_CASES = [
    (lambda m: m.Dense(3), "activation"),
    (lambda m: m.Dense(3, activation="softmax"), "activation"),
    (lambda m: m.Conv1D(3, 2, activation="relu"), "activation"),
    (lambda m: m.Activation("gelu"), "activation"),
    (lambda m: m.GRU(3), "activation"),
    (lambda m: m.GRU(3, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
    (lambda m: m.LSTM(3, activation="relu"), "activation"),
]


@pytest.mark.parametrize("factory, attribute", ACTIVATION_CASES)
def test_a_layers_activation_is_a_function_named_as_keras_s(keras, factory, attribute):
    """``layer.activation`` is Keras's function: called on an array it gives Keras's values, its ``__name__`` is
    Keras's; it stays the name where a string is read (the config, comparisons) and through a pickle."""
    ours, theirs = getattr(factory(L), attribute), getattr(factory(keras.layers), attribute)
    x = np.linspace(-4, 4, 24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_allclose(np.asarray(ours(x)), keras.ops.convert_to_numpy(theirs(x)), rtol=1e-6, atol=1e-6)
    assert ours.__name__ == theirs.__name__
    assert ours == theirs.__name__ and isinstance(ours, str) and {ours: 1}[theirs.__name__] == 1
    again = pickle.loads(pickle.dumps(ours))
    assert again == ours and again.__name__ == ours.__name__ and callable(again)
    assert factory(L).get_config()[attribute] == factory(keras.layers).get_config()[attribute]
