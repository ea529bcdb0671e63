"""Fixes from the fifteenth Keras-parity fuzz round: frozen layers whose backward returns gradients anyway
(training crashed), layers shared between inputs of different lengths, and others (each test says which)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import (
    GRU,
    Conv1D,
    Conv1DTranspose,
    Dense,
    GroupNormalization,
    Input,
    LayerNormalization,
    RMSNormalization,
)


@pytest.mark.parametrize("frozen", [lambda: Conv1D(6, 3, padding="same"), lambda: Conv1DTranspose(6, 1),
                                    lambda: LayerNormalization(), lambda: GroupNormalization(2),
                                    lambda: RMSNormalization()])
def test_a_frozen_layer_in_a_sequential_trains_the_others(rng, frozen):
    layer = frozen()
    layer.trainable = False
    model = fg.Sequential([Input((10, 4)), layer, GRU(8), Dense(3, activation="softmax")])
    model.compile(fg.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    before = [w.copy() for w in layer.get_weights()]
    others = [w.copy() for w in model.layers[1].get_weights()]
    model.fit(rng.normal(size=(16, 10, 4)).astype(np.float32), rng.integers(0, 3, 16), epochs=1, verbose=0)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(others, model.layers[1].get_weights()))


@pytest.mark.keras
def test_frozen_conv_and_nested_encoder_train_as_keras(keras, rng, tmp_path):
    L = keras.layers
    x, y = rng.normal(size=(32, 10, 4)).astype(np.float32), rng.integers(0, 3, size=(32,))
    for direct in (False, True):
        if direct:
            conv = L.Conv1D(6, 3, padding="same")
            conv.trainable = False
            km = keras.Sequential([keras.Input((10, 4)), conv, L.LayerNormalization(), L.GRU(8),
                                   L.Dense(3, activation="softmax")])
        else:
            encoder = keras.Sequential([keras.Input((10, 4)), L.Conv1D(6, 3, padding="same"), L.GRU(8)])
            encoder.trainable = False
            km = keras.Sequential([keras.Input((10, 4)), encoder, L.Dense(3, activation="softmax")])
        km.compile("sgd", "sparse_categorical_crossentropy")
        km.save(tmp_path / "m.keras")
        ours = fg.load_model(tmp_path / "m.keras")
        theirs = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"],
                                   theirs, rtol=1e-5)
