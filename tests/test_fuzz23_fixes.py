"""Fixes from the twenty-third session's review and Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg


def test_negative_token_ids_match_keras(keras, tmp_path):
    """fastgru refused an id below 0; Keras's lookup takes -k as row input_dim - k (and its mask_zero mask sees a
    nonzero id there), in prediction and in training."""
    rng = np.random.default_rng(0)
    x = rng.integers(-6, 6, size=(8, 5))
    x[:, -1] = 0
    y = rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(6, 4, mask_zero=True),
                           keras.layers.GRU(3), keras.layers.Dense(1)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", suffixes=(".keras",))


@pytest.mark.parametrize("layer", [fg.layers.GRU(3), fg.layers.LSTM(3, return_sequences=True),
                                   fg.layers.SimpleRNN(3), fg.layers.Bidirectional(fg.layers.GRU(3))])
def test_recurrent_layers_refuse_inputs_without_steps(layer):
    """A (batch, 0, features) input ran no step and answered the initial state (a model then predicted its Dense
    biases), where Keras fails: now a ValueError that names the shape, in predict and in fit."""
    model = fg.Sequential([fg.layers.Input((None, 4)), layer])
    x = np.zeros((2, 0, 4), np.float32)
    with pytest.raises(ValueError, match=r"needs at least one time step, received input shape \(2, 0, 4\)"):
        model.predict(x)
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="needs at least one time step"):
        model.fit(x, np.zeros((2,) + tuple(d or 0 for d in model.output_shape[1:]), np.float32), verbose=0)
