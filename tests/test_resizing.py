"""Resizing (bilinear and nearest, crop or pad to the aspect ratio) and CenterCrop against Keras's TensorFlow
backend, shrinking and growing, in either data format; a CRNN reading resized images trained as Keras trains it;
the backward the transpose of the resize (float64 finite differences: tests/test_layer_contract.py); bad options."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg

RESIZE = [dict(height=5, width=4), dict(height=13, width=10), dict(height=5, width=4, interpolation="nearest"),
          dict(height=13, width=5, interpolation="nearest"), dict(height=6, width=6, crop_to_aspect_ratio=True),
          dict(height=6, width=3, pad_to_aspect_ratio=True, fill_value=3.0),
          dict(height=3, width=8, pad_to_aspect_ratio=True)]


@pytest.mark.parametrize("shape", [(9, 7, 2), (4, 11, 3)])
def test_resizing_and_center_crop_match_keras(keras, shape):
    x = (np.random.default_rng(70).random((2,) + shape) * 255).astype("float32")
    for first in (False, True):
        data_format = "channels_first" if first else "channels_last"
        xs = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if first else x
        layers = [(keras.layers.Resizing(**kw, data_format=data_format), fg.layers.Resizing(**kw, data_format=data_format))
                  for kw in RESIZE]
        layers += [(keras.layers.CenterCrop(*hw, data_format=data_format),
                    fg.layers.CenterCrop(*hw, data_format=data_format)) for hw in ((5, 4), (12, 12), (6, 3))]
        for theirs, ours in layers:
            ours.build((None,) + xs.shape[1:])
            expected = np.asarray(theirs(xs))
            got = ours(xs)
            assert got.shape == expected.shape == (2,) + ours.compute_output_shape((None,) + xs.shape[1:])[1:]
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-4, err_msg=str(ours.get_config()))


def test_crnn_on_resized_images_trains_as_keras(keras, tmp_path):
    rng = np.random.default_rng(71)
    x = rng.random((6, 10, 9, 1)).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    keras.utils.set_random_seed(71)
    K = keras.layers
    inp = keras.Input((10, 9, 1))
    h = K.Conv2D(3, 3, activation="relu")(K.Resizing(8, 12)(K.CenterCrop(9, 8)(inp)))
    km = keras.Model(inp, K.Dense(2)(K.GRU(4)(K.Reshape((6, 30))(h))))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_bad_options():
    with pytest.raises(fg.UnsupportedKerasFeature, match="interpolation='bicubic' is not supported"):
        fg.layers.Resizing(4, 4, interpolation="bicubic")
    with pytest.raises(ValueError, match="only one of pad_to_aspect_ratio and crop_to_aspect_ratio"):
        fg.layers.Resizing(4, 4, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(fg.UnsupportedKerasFeature, match="antialias=True"):
        fg.layers.Resizing(4, 4, antialias=True)
    with pytest.raises(ValueError, match="'height'"):
        fg.layers.CenterCrop(0, 4)
    with pytest.raises(ValueError, match="rank 4"):
        fg.Sequential([fg.layers.Input((5, 3)), fg.layers.Resizing(2, 2)])
