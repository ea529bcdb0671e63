"""DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, Conv3DTranspose and the 3-D reshaping layers (ZeroPadding3D,
Cropping3D, UpSampling3D, SpatialDropout3D) in the recurrent models that use them, against Keras: predictions from
.keras and .h5 files and the live model, three epochs of training, the trained model read back by Keras; the
committed file (tests/fixtures/make_layer_fixtures.py) to Keras's numbers without TensorFlow; bad options and inputs.
(Each layer alone: tests/test_layer_contract.py, float64 gradients included.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from keras_parity import assert_fixture_numbers, assert_keras_parity

import fastgru as fg

FILES = Path(__file__).resolve().parent / "fixtures" / "files"
L = fg.layers


def test_mobilenet_style_crnn_matches_keras(keras, tmp_path):
    """A keyword spotter's light front: strided DepthwiseConv2D (two kernels per channel), BatchNormalization, ReLU,
    a dilated SeparableConv2D, then the spectrogram's columns as a sequence for a Bidirectional GRU."""
    rng = np.random.default_rng(10)
    x = rng.normal(size=(8, 12, 10, 3)).astype("float32")
    y = np.eye(4, dtype="float32")[rng.integers(0, 4, size=8)]
    keras.utils.set_random_seed(10)
    K = keras.layers
    inp = keras.Input((12, 10, 3))
    h = K.DepthwiseConv2D((3, 3), strides=(2, 1), padding="same", depth_multiplier=2, use_bias=False)(inp)
    h = K.ReLU()(K.BatchNormalization()(h))
    h = K.SeparableConv2D(4, (3, 2), dilation_rate=(1, 2), padding="same", activation="relu")(h)
    h = K.DepthwiseConv2D(2, activation="tanh")(h)
    h = K.Reshape((5, 9 * 4))(h)
    h = K.Bidirectional(K.GRU(5))(h)
    km = keras.Model(inp, K.Dense(4, activation="softmax")(h))
    assert_keras_parity(keras, km, x, y, tmp_path, "categorical_crossentropy", epochs=3)


def test_next_frame_autoencoder_matches_keras(keras, tmp_path):
    """A next-frame model: frames shrunk by a strided TimeDistributed Conv2D, a ConvLSTM2D over them, drawn back to
    full size by a TimeDistributed Conv2DTranspose and a Conv3DTranspose, through ZeroPadding3D, Cropping3D,
    UpSampling3D and SpatialDropout3D (the identity at inference)."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(6, 4, 8, 8, 1)).astype("float32")
    y = rng.normal(size=(6, 4, 8, 8, 1)).astype("float32")
    keras.utils.set_random_seed(11)
    K = keras.layers
    inp = keras.Input((4, 8, 8, 1))
    h = K.TimeDistributed(K.Conv2D(3, 3, strides=2, padding="same", activation="relu"))(inp)
    h = K.ConvLSTM2D(4, 3, padding="same", return_sequences=True)(h)
    h = K.SpatialDropout3D(0.0)(h)
    h = K.TimeDistributed(K.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"))(h)
    h = K.ZeroPadding3D(((0, 1), (1, 0), (0, 2)))(h)
    h = K.Cropping3D(((0, 1), (0, 1), (1, 1)))(h)
    h = K.UpSampling3D((1, 1, 1))(h)
    h = K.Conv3DTranspose(2, (2, 3, 3), padding="same")(h)
    h = K.Conv3DTranspose(1, (1, 2, 2), strides=(1, 1, 1), dilation_rate=(1, 1, 1))(h)
    km = keras.Model(inp, K.Cropping3D(((0, 0), (0, 1), (0, 1)))(h))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_volumes_upsampled_and_transposed_match_keras(keras, tmp_path):
    """Conv3DTranspose with strides and output_padding, UpSampling3D by (1, 2, 2), ZeroPadding3D and Cropping3D in
    their integer forms, Conv2DTranspose with output_padding under TimeDistributed, an LSTM over the frames."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(6, 3, 4, 3, 2)).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    keras.utils.set_random_seed(12)
    K = keras.layers
    inp = keras.Input((3, 4, 3, 2))
    h = K.Conv3DTranspose(3, (1, 3, 2), strides=(1, 2, 2), output_padding=(0, 1, 0), activation="tanh")(inp)
    h = K.UpSampling3D((1, 2, 2))(h)
    h = K.ZeroPadding3D(1)(h)
    h = K.Cropping3D(1)(h)
    h = K.TimeDistributed(K.Conv2DTranspose(2, 2, strides=2, output_padding=1, use_bias=False))(h)
    h = K.TimeDistributed(K.GlobalAveragePooling2D())(h)
    km = keras.Model(inp, K.Dense(2)(K.LSTM(4)(h)))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


@pytest.mark.parametrize("rank", [1, 2])
def test_depthwise_strides_with_dilation_match_keras(keras, tmp_path, rank):
    """Keras 3's depthwise and separable convolutions (unlike Conv1D/Conv2D) take strides and dilation_rate both
    above 1, in 1-D and 2-D, valid and same padding."""
    rng = np.random.default_rng(16)
    shape = (13, 3) if rank == 1 else (13, 12, 3)
    x = rng.normal(size=(6,) + shape).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    keras.utils.set_random_seed(16)
    K = keras.layers
    depthwise, separable = (K.DepthwiseConv1D, K.SeparableConv1D) if rank == 1 else (K.DepthwiseConv2D,
                                                                                    K.SeparableConv2D)
    km = keras.Sequential([keras.Input(shape), depthwise(3, strides=2, dilation_rate=2, depth_multiplier=2),
                           separable(3, 2, strides=2, dilation_rate=2, padding="same", activation="tanh"),
                           K.Flatten(), K.Dense(2)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_time_distributed_separable_front_matches_keras(keras, tmp_path):
    """Every frame of a video through TimeDistributed SeparableConv2D and DepthwiseConv2D, then a GRU."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(5, 3, 6, 6, 2)).astype("float32")
    y = rng.normal(size=(5, 1)).astype("float32")
    keras.utils.set_random_seed(13)
    K = keras.layers
    km = keras.Sequential([keras.Input((3, 6, 6, 2)),
                           K.TimeDistributed(K.SeparableConv2D(4, 3, depth_multiplier=2, activation="relu")),
                           K.TimeDistributed(K.DepthwiseConv2D(2, strides=2)),
                           K.TimeDistributed(K.Flatten()), K.GRU(3), K.Dense(1)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse")


@pytest.mark.parametrize("make", [
    lambda f: L.DepthwiseConv2D((3, 2), depth_multiplier=2, padding="same", strides=2, data_format=f),
    lambda f: L.SeparableConv2D(3, 2, dilation_rate=2, activation="relu", data_format=f),
    lambda f: L.Conv2DTranspose(3, (3, 2), strides=(2, 1), padding="same", data_format=f),
], ids=["depthwise", "separable", "transpose"])
def test_channels_first_is_the_channels_last_layer_transposed(make):
    """channels_first computes the channels_last layer's numbers (forward and every gradient) on transposed arrays."""
    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 7, 6, 3))
    last, first = make("channels_last"), make("channels_first")
    last.build((None, 7, 6, 3))
    first.build((None, 3, 7, 6))
    first.set_weights(last.get_weights())
    x_first = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    y_last, cache_last = last.forward(x)
    y_first, cache_first = first.forward(x_first)
    np.testing.assert_allclose(y_first, y_last.transpose(0, 3, 1, 2), rtol=1e-6, atol=1e-6)
    assert first.compute_output_shape((None, 3, 7, 6)) == (None,) + y_first.shape[1:]
    dy = rng.normal(size=y_last.shape).astype("float32")
    dx_last, grads_last = last.backward(dy, cache_last)
    dx_first, grads_first = first.backward(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)), cache_first)
    np.testing.assert_allclose(dx_first, dx_last.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_first, grads_last):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_spatial_layers_file_runs_and_trains_as_keras(tmp_path):
    """The committed model (DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, Conv3DTranspose, the 3-D reshaping
    layers, a ConvLSTM2D and a GRU) predicts and trains to Keras's numbers, no TensorFlow needed."""
    data = np.load(FILES / "spatial_layers.npz")
    model = fg.load_model(FILES / "spatial_layers.keras")
    names = {type(getattr(layer, "layer", layer)).__name__ for layer in model.layers}  # (TimeDistributed's inner)
    assert {"DepthwiseConv2D", "SeparableConv2D", "Conv3DTranspose", "ZeroPadding3D", "Cropping3D",
            "UpSampling3D", "SpatialDropout3D", "ConvLSTM2D"} <= names
    assert_fixture_numbers(model, data, tmp_path)


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="strides > 1 together with dilation_rate > 1"):
        L.Conv2DTranspose(3, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="'depth_multiplier'"):
        L.SeparableConv2D(2, 3, depth_multiplier=0)
    with pytest.raises(ValueError, match="output_padding must be less than strides on every axis"):
        L.Conv2DTranspose(2, 3, strides=(2, 1), output_padding=(1, 1))
    with pytest.raises(ValueError, match="'padding'"):
        L.Conv3DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="gives 4 positions on spatial axis 0 for 5"):
        fg.Sequential([L.Input((5, 4, 3)), L.Conv2DTranspose(2, 2, padding="same", output_padding=0)])
    model = fg.Sequential([L.Input((6, 6, 2)), L.DepthwiseConv2D(3)])
    with pytest.raises(ValueError, match=r"expects input \(batch, rows, columns, channels\) with 2 channels, "
                                         r"received shape \(1, 6, 6, 3\)"):
        model.layers[0](np.zeros((1, 6, 6, 3), np.float32))
    with pytest.raises(TypeError, match="numeric input array"):
        model.layers[0](np.full((1, 6, 6, 2), "a"))
    with pytest.raises(ValueError, match="leaves no output"):
        fg.Sequential([L.Input((2, 6, 2)), L.SeparableConv2D(3, 3)])
    with pytest.raises(ValueError, match="rank 4"):
        fg.Sequential([L.Input((6, 2)), L.DepthwiseConv2D(2)])
    with pytest.raises(ValueError, match="rank 5"):
        fg.Sequential([L.Input((6, 6, 2)), L.Conv3DTranspose(2, 2)])
    with pytest.raises(ValueError, match="a pair per axis"):
        L.ZeroPadding3D(((1, 1), (1, 1)))
    with pytest.raises(ValueError, match="leaves no positions"):
        fg.Sequential([L.Input((2, 4, 4, 1)), L.Cropping3D(1)])
    with pytest.raises(ValueError, match="rank 5"):
        fg.Sequential([L.Input((4, 4, 1)), L.SpatialDropout3D(0.5)])
    layer = fg.Sequential([L.Input((3, 3, 2)), L.Conv2DTranspose(2, 2)]).layers[0]
    with pytest.raises(ValueError, match=r"output gradient of shape \(1, 3, 3, 2\), expected \(1, 4, 4, 2\)"):
        layer.backward(np.zeros((1, 3, 3, 2)), layer.forward(np.zeros((1, 3, 3, 2), np.float32))[1])


def test_spatial_dropout_3d_drops_whole_channels_in_training():
    fg.set_random_seed(0)
    x = np.ones((64, 2, 3, 4, 5), np.float32)
    for data_format, axes in (("channels_last", (1, 2, 3)), ("channels_first", (2, 3, 4))):
        layer = L.SpatialDropout3D(0.5, data_format=data_format)
        y, _ = layer.forward(x)
        assert (y.std(axis=axes) == 0).all()  # (each channel of each volume kept or dropped whole)
        assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7
        np.testing.assert_array_equal(layer(x), x)


def test_keras_aliases_name_the_same_classes():
    assert L.MaxPool2D is L.MaxPooling2D and L.AvgPool1D is L.AveragePooling1D
    assert L.GlobalAvgPool3D is L.GlobalAveragePooling3D and L.GlobalMaxPool1D is L.GlobalMaxPooling1D
    assert L.Convolution2DTranspose is L.Conv2DTranspose and L.SeparableConvolution2D is L.SeparableConv2D
    assert {"MaxPool3D", "Convolution3D", "DepthwiseConv2D", "ZeroPadding3D"} <= set(L.__all__)


def test_tf_keras_h5_file_loads(tmp_path):
    """The same layers written by Keras 2 (tf_keras) to a legacy .h5 file: its configs (groups=1 and the unused
    kernel_initializer of its separable convolution) and weight order."""
    tf_keras = pytest.importorskip("tf_keras")
    K = tf_keras.layers
    rng = np.random.default_rng(15)
    inp = tf_keras.Input((3, 8, 8, 2))
    h = K.TimeDistributed(K.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2))(inp)
    h = K.TimeDistributed(K.SeparableConv2D(3, (2, 3), padding="same", activation="relu"))(h)
    h = K.ZeroPadding3D(((0, 1), (1, 1), (0, 0)))(h)
    h = K.Cropping3D(((1, 0), (0, 1), (1, 0)))(h)
    h = K.UpSampling3D((1, 2, 1))(h)
    h = K.SpatialDropout3D(0.3)(h)
    h = K.Conv3DTranspose(2, (2, 2, 3), strides=(1, 1, 2), padding="same", activation="tanh")(h)
    h = K.TimeDistributed(K.Conv2DTranspose(2, 2, strides=(1, 2), output_padding=(0, 1)))(h)
    h = K.TimeDistributed(K.Flatten())(h)
    km = tf_keras.Model(inp, K.Dense(2)(K.GRU(4)(h)))
    km.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in km.get_weights()])
    x = rng.normal(size=(4, 3, 8, 8, 2)).astype("float32")
    km.save(tmp_path / "m.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("make", [lambda: L.DepthwiseConv2D(3, depth_multiplier=2), lambda: L.SeparableConv2D(3, 3),
                                  lambda: L.Conv2DTranspose(3, 3), lambda: L.Flatten(), lambda: L.ZeroPadding2D(1)],
                         ids=["depthwise", "separable", "transpose", "flatten", "padding"])
def test_an_empty_batch_gives_an_empty_output(make):
    model = fg.Sequential([L.Input((6, 6, 2)), make()])
    out = model.predict(np.zeros((0, 6, 6, 2), np.float32))
    assert out.shape == (0,) + model.layers[0].compute_output_shape((None, 6, 6, 2))[1:]


def test_a_keras_layer_fastgru_lacks_is_named_as_one(keras, tmp_path):
    km = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.RandomCrop(6, 6), keras.layers.Conv2D(2, 3)])
    km.save(tmp_path / "augmented.keras")
    with pytest.raises(fg.UnsupportedKerasFeature, match="'RandomCrop' is not supported by fastgru \\(a Keras layer "
                                                          "fastgru does not implement\\)"):
        fg.load_model(tmp_path / "augmented.keras")
