"""Keras 3's adaptive pooling layers (1D, 2D, 3D; mean and maximum) against Keras: windows that overlap or
repeat (an axis shorter than the output), channels first, and a trained recurrent model pooling its steps to a
fixed number of segments."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers.adaptive_pooling import windows


def test_windows_cover_the_axis_as_keras_computes_them():
    assert windows(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert windows(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert windows(2, 5) == [(0, 1), (0, 1), (0, 2), (1, 2), (1, 2)]
    assert windows(6, 6) == [(k, k + 1) for k in range(6)]


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["Average", "Max"])
@pytest.mark.parametrize("rank, shape, size, data_format", [
    (1, (11, 3), 4, "channels_last"), (1, (3, 2), 5, "channels_last"), (1, (3, 9), (4,), "channels_first"),
    (2, (7, 5, 2), (3, 4), "channels_last"), (2, (2, 6, 5), 2, "channels_first"),
    (3, (5, 4, 3, 2), (2, 3, 2), "channels_last")])
def test_values_and_gradients_match_keras(keras, kind, rank, shape, size, data_format):
    import tensorflow as tf

    name = f"Adaptive{kind}Pooling{rank}D"
    x = np.random.default_rng(rank).normal(size=(2, *shape)).astype("float32")
    theirs = getattr(keras.layers, name)(size, data_format=data_format)
    ours = getattr(fg.layers, name).from_config(theirs.get_config())
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = theirs(xt)
        w = tf.constant(np.random.default_rng(5).normal(size=y.shape).astype("float32"))
        loss = tf.reduce_sum(y * w)
    mine, cache = ours.forward(x)
    np.testing.assert_allclose(mine, y.numpy(), rtol=1e-6, atol=1e-7)
    dx, _ = ours.backward(w.numpy(), cache)
    np.testing.assert_allclose(dx, tape.gradient(loss, xt).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.keras
def test_a_recurrent_model_pooling_its_steps_trains_as_keras(keras, tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((13, 3))
    h = L.GRU(6, return_sequences=True)(L.Conv1D(4, 3, padding="same")(inp))
    pooled = L.Concatenate()([L.Flatten()(L.AdaptiveAveragePooling1D(4)(h)), L.Flatten()(L.AdaptiveMaxPooling1D(3)(h))])
    km = keras.Model(inp, L.Dense(1)(pooled))
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.keras")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 13, 3)).astype("float32"), rng.normal(size=(10, 1)).astype("float32")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = km.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_an_empty_axis_and_a_bad_output_size_are_refused():
    layer = fg.layers.AdaptiveAveragePooling1D(3)
    with pytest.raises(ValueError, match="at least one position"):
        layer(np.zeros((2, 0, 3), "float32"))
    with pytest.raises((ValueError, TypeError), match="output_size"):
        fg.layers.AdaptiveMaxPooling2D((2, 0))
