"""ConvLSTM1D and ConvLSTM2D against Keras: precipitation-nowcasting and multichannel-series models from .keras and
.h5 files and from live models, three epochs of training, the trained model read back by Keras; float64
gradients with dropout masks held fixed; what is refused. (Each layer alone: tests/test_layer_contract.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from keras_parity import assert_keras_parity

import fastgru as fg


def test_nowcasting_convlstm2d_stack_matches_keras(keras, tmp_path):
    """Frames (steps, rows, columns, 1) through two ConvLSTM2D layers with BatchNormalization between them and
    a Conv2D that draws the next frame (a sigmoid per pixel), as in precipitation nowcasting."""
    rng = np.random.default_rng(0)
    x = rng.random(size=(6, 4, 8, 7, 1)).astype("float32")
    y = (rng.random(size=(6, 8, 7, 1)) > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    L = keras.layers
    km = keras.Sequential([keras.Input((4, 8, 7, 1)),
                           L.ConvLSTM2D(4, (3, 3), padding="same", return_sequences=True),
                           L.BatchNormalization(),
                           L.ConvLSTM2D(3, (3, 3), padding="same", go_backwards=True),
                           L.Conv2D(1, (3, 3), padding="same", activation="sigmoid")])
    assert_keras_parity(keras, km, x, y, tmp_path, "binary_crossentropy", epochs=3)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convlstm1d_over_multichannel_series_matches_keras(keras, tmp_path, data_format):
    """A long series cut into (steps, positions, channels) windows read by a strided ConvLSTM1D, flattened into
    a Dense regression head; and a ConvLSTM1D feeding a GRU through its sequence output."""
    rng = np.random.default_rng(1)
    shape = (5, 9, 2) if data_format == "channels_last" else (5, 2, 9)
    x = rng.normal(size=(8,) + shape).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    keras.utils.set_random_seed(1)
    L = keras.layers
    inp = keras.Input(shape)
    a = L.Flatten()(L.ConvLSTM1D(3, 3, strides=2, data_format=data_format, recurrent_activation="hard_sigmoid")(inp))
    seq = L.ConvLSTM1D(2, 2, dilation_rate=2, padding="same", return_sequences=True, data_format=data_format,
                       unit_forget_bias=False, bias_initializer="random_normal")(inp)
    b = L.GRU(3)(L.Reshape((5, -1))(seq))
    km = keras.Model(inp, L.Dense(2)(L.Concatenate()([a, b])))
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", epochs=3)


@pytest.mark.parametrize("layer_class,shape", [("ConvLSTM2D", (3, 5, 4, 2)), ("ConvLSTM1D", (3, 6, 2))])
def test_gradients_with_dropout_masks_match_finite_differences(layer_class, shape):
    """float64 BPTT through the four gates' masked convolutions (dropout on the inputs, recurrent_dropout on the
    states: the masks held fixed), against central differences."""
    rng = np.random.default_rng(2)
    layer = getattr(fg.layers, layer_class)(2, 2, padding="same", return_sequences=True, dropout=0.3,
                                            recurrent_dropout=0.4, dtype="float64")
    layer.build((None,) + shape)
    for w in layer.weights:
        w[...] = rng.normal(size=w.shape) * 0.5
    x = rng.normal(size=(2,) + shape)
    fixed = {}

    def masks(rate, mask_shape, dtype, training):
        if not training:
            return None
        if (rate, mask_shape) not in fixed:
            fixed[rate, mask_shape] = [((rng.random(mask_shape) >= rate) / (1 - rate)).astype(dtype) for _ in range(4)]
        return fixed[rate, mask_shape]

    layer._gate_masks = masks
    y, cache = layer.forward(x)
    coef = rng.normal(size=y.shape)
    dx, grads = layer.backward(coef, cache)
    forward = lambda: layer.forward(x)[0]  # noqa: E731 (training: the fixed masks apply)
    np.testing.assert_allclose(dx, numeric_gradient(lambda v: layer.forward(v)[0], x, coef), rtol=1e-5, atol=1e-7)
    for w, g in zip(layer.weights, grads):
        def f(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return forward()
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(f, w.copy(), coef), rtol=1e-5, atol=1e-7)
    assert not np.allclose(y, layer.call(x))  # (inference: no dropout)


def test_what_convlstm_refuses(keras, tmp_path):
    with pytest.raises(fg.UnsupportedKerasFeature, match="return_state=True"):
        fg.layers.ConvLSTM2D(2, 3, return_state=True)
    with pytest.raises(fg.UnsupportedKerasFeature, match="stateful=True"):
        fg.layers.ConvLSTM1D(2, 3, stateful=True)
    layer = fg.layers.ConvLSTM1D(2, 3)
    x = np.zeros((1, 4, 5, 2), np.float32)
    layer(x)
    with pytest.raises(fg.UnsupportedKerasFeature, match="masked sequences"):
        layer(x, mask=np.ones((1, 4), bool))
    with pytest.raises(ValueError, match=r"rank 4 with 2 channels, received shape \(1, 4, 5, 3\)"):
        layer(np.zeros((1, 4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="at least one time step"):
        layer(np.zeros((1, 0, 5, 2), np.float32))
    inp = keras.Input((3, 5, 2))
    out, h, c = keras.layers.ConvLSTM1D(2, 3, return_state=True)(inp)
    keras.Model(inp, out).save(tmp_path / "states.keras")
    with pytest.raises(fg.UnsupportedKerasFeature, match="return_state"):
        fg.load_model(tmp_path / "states.keras")


def test_next_frame_prediction_model_matches_keras(keras, tmp_path):
    """Keras's next-frame video prediction example in small: frames of any count through three ConvLSTM2D layers
    (relu, return_sequences) with BatchNormalization between them, and a Conv3D over (frames, rows, columns)
    drawing every next frame."""
    rng = np.random.default_rng(3)
    x = (rng.random(size=(4, 5, 8, 8, 1)) > 0.7).astype("float32")
    y = (rng.random(size=(4, 5, 8, 8, 1)) > 0.7).astype("float32")
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((None, 8, 8, 1))
    h = L.ConvLSTM2D(4, (5, 5), padding="same", return_sequences=True, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    h = L.ConvLSTM2D(4, (3, 3), padding="same", return_sequences=True, activation="relu")(h)
    h = L.BatchNormalization()(h)
    h = L.ConvLSTM2D(4, (1, 1), padding="same", return_sequences=True, activation="relu")(h)
    km = keras.Model(inp, L.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="same")(h))
    ours = assert_keras_parity(keras, km, x, y, tmp_path, "binary_crossentropy", epochs=2)
    more = x[:2, :3]  # (fewer frames)
    np.testing.assert_allclose(ours.predict(more), km.predict(more, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("data_format", [pytest.param("channels_last", marks=pytest.mark.keras_graph),  # eager sums differ
                                         "channels_first"])
def test_video_classifier_with_3d_pooling_matches_keras(keras, tmp_path, data_format):
    """A human-activity video classifier: ConvLSTM2D sequences pooled by MaxPooling3D((1, 2, 2)) (frames kept
    apart) and AveragePooling3D ("same"), then GlobalMaxPooling3D and GlobalAveragePooling3D into a softmax."""
    rng = np.random.default_rng(4)
    first = data_format == "channels_first"
    shape = (4, 2, 8, 7) if first else (4, 8, 7, 2)
    x = rng.random(size=(6,) + shape).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 6)]
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input(shape)
    h = L.ConvLSTM2D(3, 3, padding="same", return_sequences=True, data_format=data_format)(inp)
    h = L.MaxPooling3D((1, 2, 2), padding="same", data_format=data_format)(h)
    h = L.AveragePooling3D((2, 2, 1), strides=(1, 1, 2), padding="same", data_format=data_format)(h)
    pooled = L.Concatenate()([L.GlobalMaxPooling3D(data_format=data_format)(h),
                              L.GlobalAveragePooling3D(data_format=data_format)(h)])
    km = keras.Model(inp, L.Dense(3, activation="softmax")(pooled))
    assert_keras_parity(keras, km, x, y, tmp_path, "categorical_crossentropy", epochs=2)
