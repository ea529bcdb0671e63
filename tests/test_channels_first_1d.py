"""``data_format="channels_first"`` on the 1-D layers around a sequence model ported from PyTorch: inputs and outputs
(batch, channels, steps). Each layer computes its ``channels_last`` self on the moved arrays (checked here on the
values and every gradient, without Keras), and a model of them predicts, trains and saves as Keras's."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg
from fastgru.layers.base import Layer

F = fg.layers

# (layer name, options): every option the layer's channels-last path has its own code for
CASES = [
    ("MaxPooling1D", {"pool_size": 2}),
    ("MaxPooling1D", {"pool_size": 3, "strides": 1, "padding": "same"}),
    ("AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("ZeroPadding1D", {"padding": (1, 2)}),
    ("Conv1DTranspose", {"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}),
    ("DepthwiseConv1D", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same", "activation": "tanh"}),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 3, "padding": "same", "depth_multiplier": 2}),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 3, "dilation_rate": 2}),
    ("Flatten", {}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]
# Keras 3.15 with TensorFlow on a CPU gives a channels_first SeparableConv1D with dilation_rate > 1 a wrong bias
# gradient (its channels_last twin's, and the sum of the output gradient, differ from it: docs/deploy.md); that
# case is checked above against the channels_last layer, which is checked against Keras elsewhere
KERAS_CASES = [(case, i) for case, i in zip(CASES, IDS) if case[0] != "Flatten" and "dilation_rate" not in case[1]]


def _moved(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_channels_first_is_the_channels_last_layer_on_moved_arrays(name, options):
    rng = np.random.default_rng(0)
    x_first = rng.normal(size=(3, 4, 9)).astype(np.float32)  # (batch, channels, steps)
    last: Layer = getattr(F, name)(**options, data_format="channels_last")
    first: Layer = getattr(F, name)(**options, data_format="channels_first")
    last.build((None, 9, 4))
    first.build((None, 4, 9))
    first.set_weights(last.get_weights())
    swapped = last.output_shape if name == "Flatten" else (None, last.output_shape[2], last.output_shape[1])
    assert first.output_shape == swapped
    y_last, cache_last = last.forward(_moved(x_first))
    y_first, cache_first = first.forward(x_first)
    if name == "Flatten":  # Keras's channels_first Flatten moves the channels last, then flattens
        np.testing.assert_array_equal(y_first, y_last)
    else:
        np.testing.assert_allclose(y_first, _moved(y_last), rtol=1e-6, atol=1e-7)
        assert first(x_first).shape == first.compute_output_shape(x_first.shape)
    dy = rng.normal(size=y_last.shape).astype(np.float32)
    dx_last, grads_last = last.backward(dy, cache_last)
    dx_first, grads_first = first.backward(dy if name == "Flatten" else _moved(dy), cache_first)
    np.testing.assert_allclose(dx_first, _moved(dx_last), rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_first, grads_last, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert first.get_config()["data_format"] == "channels_first"
    assert type(first).from_config(first.get_config()).data_format == "channels_first"


@pytest.mark.parametrize(("name", "options"), CASES[:-1], ids=IDS[:-1])
def test_channels_first_input_is_checked_in_its_own_layout(name, options):
    layer = getattr(F, name)(**options, data_format="channels_first")
    layer.build((None, 4, 9))
    with pytest.raises(ValueError, match=r"\(batch, channels, steps\)|expects input|rank 3"):
        layer(np.zeros((2, 9), np.float32))
    if name not in ("MaxPooling1D", "AveragePooling1D", "ZeroPadding1D"):  # (the layers with weights know C)
        with pytest.raises(ValueError, match="4 channels|expects input"):
            layer(np.zeros((2, 9, 4), np.float32))


@pytest.mark.keras
@pytest.mark.parametrize(("name", "options"), [c for c, _ in KERAS_CASES], ids=[i for _, i in KERAS_CASES])
def test_channels_first_layers_as_keras(keras, tmp_path, name, options):
    """Each of these layers refused ``channels_first`` (UnsupportedKerasFeature); now a channels-first model of
    it (its channels-first Flatten included) predicts, trains and saves as Keras's."""
    L = keras.layers
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 4, 9)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([L.Input((4, 9)), L.Conv1D(3, 2, data_format="channels_first"),
                           getattr(L, name)(**options, data_format="channels_first"),
                           L.Flatten(data_format="channels_first"), L.Dense(2)])
    ours = assert_keras_parity(keras, km, x, y, tmp_path, "mse")
    for a, b in zip(ours.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
