"""Conv2D and the 2-D poolings in the recurrent models that use them (CRNNs: a spectrogram or an image read by
convolutions, reshaped into a sequence for a GRU or LSTM; a video's frames through TimeDistributed), against
Keras: predictions from .keras and .h5 files and from the live model, three epochs of training, and the trained
model read back by Keras. (Each layer alone: tests/test_layer_contract.py, float64 gradients included.)"""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg


def test_ocr_style_crnn_matches_keras(keras, tmp_path):
    """Keras's captcha OCR example in small: Conv2D + MaxPooling2D twice over (width, height, 1) images, reshaped
    into a sequence of columns, Dense, two Bidirectional LSTMs, a softmax per step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16, 8, 1)).astype("float32")
    y = np.eye(5, dtype="float32")[rng.integers(0, 5, size=(8, 4))]
    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((16, 8, 1))
    h = L.Conv2D(6, (3, 3), activation="relu", kernel_initializer="he_normal", padding="same")(inp)
    h = L.MaxPooling2D((2, 2))(h)
    h = L.Conv2D(4, (3, 3), activation="relu", padding="same")(h)
    h = L.MaxPooling2D((2, 2))(h)
    h = L.Reshape((4, 2 * 4))(h)
    h = L.Dense(8, activation="relu")(h)
    h = L.Bidirectional(L.LSTM(6, return_sequences=True))(h)
    h = L.Bidirectional(L.GRU(4, return_sequences=True))(h)
    km = keras.Model(inp, L.Dense(5, activation="softmax")(h))
    assert_keras_parity(keras, km, x, y, tmp_path, "categorical_crossentropy", epochs=3)


def test_speech_style_crnn_over_any_length_matches_keras(keras, tmp_path):
    """Keras's speech recognition (DeepSpeech2) example in small: spectrograms of any length reshaped to
    (steps, bins, 1), a strided Conv2D with "same" padding and no bias, BatchNormalization, ReLU, reshaped back
    to a sequence for a Bidirectional GRU; trained (BatchNormalization's statistics too) as Keras trains it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 10, 12)).astype("float32")
    y = rng.normal(size=(6, 5, 3)).astype("float32")
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input((None, 12))
    h = L.Reshape((-1, 12, 1))(inp)
    h = L.Conv2D(4, (3, 5), strides=(2, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Conv2D(2, (3, 3), strides=(1, 2), padding="same", use_bias=False)(h)
    h = L.BatchNormalization()(h)
    h = L.ReLU()(h)
    h = L.Reshape((-1, 3 * 2))(h)
    h = L.Bidirectional(L.GRU(5, return_sequences=True, reset_after=True), merge_mode="concat")(h)
    km = keras.Model(inp, L.Dense(3)(h))
    ours = assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)
    longer = rng.normal(size=(2, 14, 12)).astype("float32")  # (another length: 7 steps out)
    np.testing.assert_allclose(ours.predict(longer), km.predict(longer, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_average_and_global_poolings_train_as_keras(keras, tmp_path, data_format):
    """AveragePooling2D ("same": the mean of a window's real positions), GlobalMaxPooling2D and
    GlobalAveragePooling2D behind a dilated Conv2D, in either data format, merged for a GRU's initial state."""
    rng = np.random.default_rng(2)
    first = data_format == "channels_first"
    shape = (3, 9, 7) if first else (9, 7, 3)
    x = rng.normal(size=(6,) + shape).astype("float32")
    y = rng.normal(size=(6, 2)).astype("float32")
    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input(shape)
    h = L.Conv2D(4, 3, dilation_rate=(2, 1), activation="tanh", data_format=data_format)(inp)
    pooled = L.AveragePooling2D((2, 3), strides=(2, 1), padding="same", data_format=data_format)(h)
    a = L.GlobalMaxPooling2D(data_format=data_format)(pooled)
    b = L.GlobalAveragePooling2D(data_format=data_format)(h)
    state = L.Dense(5)(L.Concatenate()([a, b]))
    seq = L.Reshape((-1, 4))(pooled if not first else L.Permute((2, 3, 1))(pooled))
    km = keras.Model(inp, L.Dense(2)(L.GRU(5)(seq, initial_state=state)))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


def test_video_frames_through_time_distributed_conv2d_match_keras(keras, tmp_path):
    """A video classifier: TimeDistributed Conv2D, MaxPooling2D and GlobalAveragePooling2D on every frame, then
    a GRU over the frames."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 8, 8, 2)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    keras.utils.set_random_seed(3)
    L = keras.layers
    km = keras.Sequential([keras.Input((5, 8, 8, 2)), L.TimeDistributed(L.Conv2D(4, 3, activation="relu")),
                           L.TimeDistributed(L.MaxPooling2D()), L.TimeDistributed(L.GlobalAveragePooling2D()),
                           L.GRU(6), L.Dense(1)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse")


def test_conv2d_in_code_checks_its_options_and_inputs():
    with pytest.raises(ValueError, match="strides > 1 together with dilation_rate > 1"):
        fg.layers.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding"):
        fg.layers.Conv2D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="data_format"):
        fg.layers.MaxPooling2D(data_format="channels_middle")
    model = fg.Sequential([fg.layers.Input((6, 6, 2)), fg.layers.Conv2D(3, (2, 3))])
    assert model.layers[0].get_weights()[0].shape == (2, 3, 2, 3)
    with pytest.raises(ValueError, match=r"expects input \(batch, rows, columns, channels\) with 2 channels, "
                                         r"received shape \(1, 6, 6, 3\)"):
        model.layers[0](np.zeros((1, 6, 6, 3), np.float32))
    with pytest.raises(ValueError, match=r"expects input shape \(None, 6, 6, 2\)"):
        model.predict(np.zeros((1, 6, 6, 3), np.float32))
    with pytest.raises(ValueError, match="rank 4"):
        fg.Sequential([fg.layers.Input((6, 2)), fg.layers.Conv2D(3, 2)])
    with pytest.raises(ValueError, match="leaves no output"):
        fg.Sequential([fg.layers.Input((2, 6, 2)), fg.layers.Conv2D(3, 3)])
    with pytest.raises(ValueError, match="leaves no output"):
        fg.layers.MaxPooling2D(3)(np.zeros((1, 2, 6, 1), np.float32))
    with pytest.raises(ValueError, match="leaves no output"):  # (no rows: refused as Keras refuses it)
        fg.layers.Conv2D(2, 3, padding="same")(np.zeros((1, 0, 4, 1), np.float32))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_padding_cropping_and_upsampling_train_as_keras(keras, tmp_path, data_format):
    """ZeroPadding2D, UpSampling2D and Cropping2D in each of their option forms around a Conv2D, reshaped into a
    sequence for an LSTM; SpatialDropout2D is the identity at inference."""
    rng = np.random.default_rng(4)
    first = data_format == "channels_first"
    shape = (2, 6, 5) if first else (6, 5, 2)
    x = rng.normal(size=(6,) + shape).astype("float32")
    y = rng.normal(size=(6, 1)).astype("float32")
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input(shape)
    h = L.ZeroPadding2D(1, data_format=data_format)(inp)
    h = L.Conv2D(3, 3, data_format=data_format)(h)
    h = L.UpSampling2D((1, 2), data_format=data_format)(h)
    h = L.Cropping2D(((1, 0), (0, 2)), data_format=data_format)(h)
    h = L.ZeroPadding2D(((0, 1), (2, 0)), data_format=data_format)(h)
    h = L.Cropping2D((1, 2), data_format=data_format)(h)
    h = L.Permute((2, 3, 1))(h) if first else h
    km = keras.Model(inp, L.Dense(1)(L.LSTM(4)(L.Reshape((4, -1))(h))))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)
    dropped = keras.Sequential([keras.Input(shape), L.SpatialDropout2D(0.3, data_format=data_format),
                                L.Conv2D(2, 2, data_format=data_format)])
    dropped.save(tmp_path / "dropped.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "dropped.keras").predict(x), dropped.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_spatial_dropout_2d_drops_whole_channels_in_training():
    fg.set_random_seed(0)
    x = np.ones((64, 3, 4, 5), np.float32)
    for data_format, axes in (("channels_last", (1, 2)), ("channels_first", (2, 3))):
        layer = fg.layers.SpatialDropout2D(0.5, data_format=data_format)
        y, _ = layer.forward(x)
        per_channel = y.std(axis=axes)
        assert (per_channel == 0).all()  # (each channel of each image kept or dropped whole)
        assert set(np.unique(y)) <= {0.0, 2.0} and 0.3 < (y == 0).mean() < 0.7
        np.testing.assert_array_equal(layer(x), x)  # (inference: the identity)


def test_rescaled_8_bit_images_through_a_crnn_match_keras(keras, tmp_path):
    """Rescaling (1/255 and an offset; then one scale and offset per feature) around a Conv2D, 8-bit images in."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(6, 8, 6, 2)).astype("uint8")
    y = rng.normal(size=(6, 3)).astype("float32")
    keras.utils.set_random_seed(5)
    L = keras.layers
    inp = keras.Input((8, 6, 2))
    h = L.Conv2D(3, 3, activation="relu")(L.Rescaling(1 / 255.0, offset=-0.5)(inp))
    h = L.Reshape((6, 12))(L.Rescaling([2.0, 1.0, 0.5], offset=[0.0, 1.0, -1.0])(h))
    km = keras.Model(inp, L.Dense(3)(L.GRU(4)(h)))
    ours = assert_keras_parity(keras, km, x.astype("float32"), y, tmp_path, "mse")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)  # (uint8 in)
    with pytest.raises(ValueError, match="scale has 3 values, the input 2 features"):
        fg.Sequential([fg.layers.Input((4, 2)), fg.layers.Rescaling([1.0, 2.0, 3.0])])


def test_time_distributed_image_layers_match_keras(keras, tmp_path):
    """Every frame of a video through TimeDistributed Rescaling, ZeroPadding2D, Conv2D, UpSampling2D, Cropping2D,
    SpatialDropout2D (the identity at inference; not in training here, its draws are fastgru's) and pooling."""
    rng = np.random.default_rng(6)
    x = rng.random(size=(5, 3, 6, 5, 2)).astype("float32")
    y = rng.normal(size=(5, 2)).astype("float32")
    keras.utils.set_random_seed(6)
    L = keras.layers
    frames = [L.Rescaling(2.0, offset=-1.0), L.ZeroPadding2D(1), L.Conv2D(3, 3, activation="tanh"),
              L.UpSampling2D((1, 2)), L.Cropping2D(((0, 1), (1, 1))), L.MaxPooling2D(), L.GlobalAveragePooling2D()]
    km = keras.Sequential([keras.Input((3, 6, 5, 2))] + [L.TimeDistributed(f) for f in frames] +
                          [L.GRU(4), L.Dense(2)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse")
    dropped = keras.Sequential([keras.Input((3, 6, 5, 2)), L.TimeDistributed(L.SpatialDropout2D(0.5)),
                                L.TimeDistributed(L.Flatten()), L.GRU(2)])
    dropped.save(tmp_path / "dropped.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "dropped.keras").predict(x), dropped.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
