"""RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast and RandomBrightness: the identity at
inference (a CNN-RNN saved by Keras with them in front predicts as Keras); in training, transformations drawn
from ranges of one value are Keras's own (every fill mode and interpolation); backward is the transformation's
adjoint; flips are drawn per image; bad options."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

F = fg.layers


def _pairs(K):
    return [
        (K.RandomTranslation((0.5, 0.5), (0.2, 0.2), fill_mode="wrap", interpolation="nearest"),
         F.RandomTranslation((0.5, 0.5), (0.2, 0.2), fill_mode="wrap", interpolation="nearest")),
        (K.RandomTranslation((0.3, 0.3), (-0.3, -0.3)), F.RandomTranslation((0.3, 0.3), (-0.3, -0.3))),
        (K.RandomTranslation((0.3, 0.3), (-0.1, -0.1), fill_mode="constant", fill_value=7.0),
         F.RandomTranslation((0.3, 0.3), (-0.1, -0.1), fill_mode="constant", fill_value=7.0)),
        (K.RandomTranslation((-0.2, -0.2), (0.4, 0.4), fill_mode="nearest"),
         F.RandomTranslation((-0.2, -0.2), (0.4, 0.4), fill_mode="nearest")),
        (K.RandomRotation((0.25, 0.25)), F.RandomRotation((0.25, 0.25))),
        (K.RandomRotation((0.05, 0.05), fill_mode="constant", interpolation="nearest"),
         F.RandomRotation((0.05, 0.05), fill_mode="constant", interpolation="nearest")),
        (K.RandomZoom((-0.5, -0.5)), F.RandomZoom((-0.5, -0.5))),
        (K.RandomZoom((0.4, 0.4), (0.2, 0.2), fill_mode="wrap"), F.RandomZoom((0.4, 0.4), (0.2, 0.2), fill_mode="wrap")),
        (K.RandomContrast((-0.5, 0.5)), F.RandomContrast((-0.5, 0.5))),
        (K.RandomBrightness((0.1, 0.1)), F.RandomBrightness((0.1, 0.1))),
    ]


def test_training_transformations_of_one_value_are_keras_own(keras):
    x = (np.random.default_rng(60).random((2, 6, 5, 2)) * 255).astype("float32")
    for theirs, ours in _pairs(keras.layers):
        ours.build((None, 6, 5, 2))
        expected = np.asarray(theirs(x, training=True))
        np.testing.assert_allclose(ours.forward(x, training=True)[0], expected, rtol=1e-5, atol=1e-3,
                                   err_msg=type(ours).__name__)


def _augmented_crnn(keras, brightness: bool):
    K = keras.layers
    inp = keras.Input((8, 8, 1))
    h = K.RandomFlip("horizontal", seed=1)(inp)
    front = [K.RandomTranslation(0.1, 0.1), K.RandomRotation(0.05), K.RandomZoom(0.1), K.RandomContrast(0.2)]
    for layer in front + ([K.RandomBrightness(0.1)] if brightness else []) + [K.Rescaling(1 / 255.0)]:
        h = layer(h)
    h = K.Conv2D(3, 3, activation="relu")(h)
    return keras.Model(inp, K.Dense(2)(K.GRU(4)(K.Reshape((6, 18))(h))))


def test_augmented_crnn_from_keras_predicts_as_keras_and_trains(keras, tmp_path):
    rng = np.random.default_rng(61)
    x = (rng.random((6, 8, 8, 1)) * 255).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    legacy = _augmented_crnn(keras, brightness=False)  # (Keras 3.15 cannot write RandomBrightness to .h5)
    legacy.save(tmp_path / "augmented.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "augmented.h5").predict(x), legacy.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    km = _augmented_crnn(keras, brightness=True)
    km.save(tmp_path / "augmented.keras")
    model = fg.load_model(tmp_path / "augmented.keras")
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    model.compile("adam", "mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=2, batch_size=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    model.save(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0),
                               model.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: F.RandomFlip(seed=2), lambda: F.RandomTranslation(0.3, (-0.2, 0.4), seed=2),
    lambda: F.RandomRotation(0.3, seed=2, fill_mode="wrap"), lambda: F.RandomZoom((-0.4, 0.3), seed=2),
    lambda: F.RandomZoom(0.3, interpolation="nearest", fill_mode="constant", seed=2, data_format="channels_first"),
    lambda: F.RandomContrast(0.6, value_range=(-1e9, 1e9), seed=2),
], ids=["flip", "translation", "rotation", "zoom", "zoom-nearest-first", "contrast"])
def test_backward_is_the_adjoint_of_the_training_transformation(make):
    """<T x, dy> = <x, T^T dy> for the transformation drawn in the forward (each is linear)."""
    rng = np.random.default_rng(62)
    layer = make()
    layer.build((None, 6, 5, 3))
    x, dy = rng.normal(size=(4, 6, 5, 3)), rng.normal(size=(4, 6, 5, 3))
    y, cache = layer.forward(x, training=True)
    dx, grads = layer.backward(dy, cache)
    assert grads == [] and dx.shape == x.shape
    assert np.sum(y * dy) == pytest.approx(np.sum(x * dx), rel=1e-10)


def test_brightness_passes_the_gradient_where_nothing_was_clipped():
    layer = F.RandomBrightness(0.5, value_range=(0.0, 1.0), seed=3)
    layer.build((None, 4, 4, 1))
    x = np.random.default_rng(63).random((8, 4, 4, 1))
    y, cache = layer.forward(x, training=True)
    dx, _ = layer.backward(np.ones_like(y), cache)
    inside = (y > 0) & (y < 1)
    assert np.all(dx[inside] == 1) and np.all(dx[(y == 0) | (y == 1)] == 0) and 0 < inside.mean() < 1


def test_flips_are_drawn_per_image():
    layer = F.RandomFlip("horizontal_and_vertical", seed=4)
    layer.build((None, 3, 4, 1))
    x = np.random.default_rng(64).random((200, 3, 4, 1)).astype("float32")
    y = layer.forward(x, training=True)[0]
    flipped = np.array([np.array_equal(y[i], x[i, ::-1, ::-1]) for i in range(200)])
    kept = np.array([np.array_equal(y[i], x[i]) for i in range(200)])
    assert np.all(flipped | kept) and 0.35 < flipped.mean() < 0.65  # (both axes at once, as Keras: one draw)
    np.testing.assert_array_equal(layer(x), x)


def test_bad_options():
    with pytest.raises(ValueError, match="'mode'"):
        F.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="height_factor must lie in"):
        F.RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match="'fill_mode'"):
        F.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="factor must lie in"):
        F.RandomContrast(-0.2)
    with pytest.raises(ValueError, match="value_range must be a"):
        F.RandomBrightness(0.1, value_range=(0, 1, 2))
    with pytest.raises(fg.UnsupportedKerasFeature, match="rank 4"):
        fg.Sequential([F.Input((5, 3)), F.RandomZoom(0.1)])
