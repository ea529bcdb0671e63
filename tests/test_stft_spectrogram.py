"""STFTSpectrogram against live Keras (every mode, padding, layout and window kind: the fresh kernels, the
forward, .keras and .h5 files both ways, 5 Adam steps of an STFT -> GRU model, trainable and frozen), float64
finite-difference gradients of each mode, Keras's STFT initializer, and the options and inputs it refuses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gradcheck import assert_layer_gradients

import fastgru as fg
from fastgru import layers as F

# (mode, padding, data_format, expand_dims, window, frame_length, frame_step, fft_length, periodic, scaling)
OPTIONS = [
    ("log", "valid", "channels_last", False, "hann", 16, 8, None, False, "density"),
    ("magnitude", "same", "channels_last", False, "hamming", 16, 5, 32, True, "spectrum"),
    ("psd", "same", "channels_first", False, "hann", 12, 4, None, False, None),
    ("real", "valid", "channels_last", True, None, 8, 3, 8, False, "density"),
    ("imag", "same", "channels_first", True, "hann", 8, 8, 16, True, "density"),
    ("angle", "valid", "channels_last", False, "hann", 10, 5, 16, False, "density"),
    ("stft", "same", "channels_last", False, [0.1 * i for i in range(10)], 10, 3, 16, False, "spectrum"),
    ("log", "same", "channels_last", True, "blackman", 20, 7, None, False, "density"),
]
IDS = [f"{o[0]}-{o[1]}-{o[2][9:]}{'-expand' if o[3] else ''}" for o in OPTIONS]


def _options(case):
    names = ("mode", "padding", "data_format", "expand_dims", "window", "frame_length", "frame_step", "fft_length",
             "periodic", "scaling")
    return dict(zip(names, case))


def _shape(options, channels=2, samples=50):
    return (channels, samples) if options["data_format"] == "channels_first" else (samples, channels)


@pytest.mark.keras
@pytest.mark.parametrize("case", OPTIONS, ids=IDS)
def test_forward_kernels_and_files_match_keras(keras, rng, tmp_path, case):
    options = _options(case)
    shape = _shape(options)
    km = keras.Sequential([keras.Input(shape), keras.layers.STFTSpectrogram(**options)])
    model = fg.Sequential([F.Input(shape), F.STFTSpectrogram(**options)])
    for ours, theirs in zip(model.get_weights(), km.get_weights(), strict=True):  # Keras's STFT initializer
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-7)
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    expected = km.predict(x, verbose=0)
    assert model.output_shape == km.output_shape
    np.testing.assert_allclose(model.predict(x), expected, rtol=2e-5, atol=2e-5)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    for file in ("k.keras", "k.h5"):
        loaded = fg.load_model(tmp_path / file)
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=2e-5, atol=2e-5)
        for a, b in zip(loaded.get_weights(), km.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "ours.keras")  # Keras opens what fastgru writes, options and all
    back = keras.models.load_model(tmp_path / "ours.keras")
    assert back.layers[0].get_config()["window"] == options["window"]
    np.testing.assert_allclose(back.predict(x, verbose=0), expected, rtol=2e-5, atol=2e-5)


@pytest.mark.keras
@pytest.mark.parametrize("mode,padding,data_format,trainable", [
    ("log", "same", "channels_last", True), ("psd", "valid", "channels_first", True),
    ("magnitude", "same", "channels_last", False), ("angle", "valid", "channels_last", True),
    ("stft", "same", "channels_first", True)])
def test_training_an_stft_gru_model_matches_keras(keras, rng, tmp_path, mode, padding, data_format, trainable):
    options = dict(mode=mode, frame_length=8, frame_step=4, padding=padding, data_format=data_format,
                   trainable=trainable)
    shape = _shape(options, samples=40)
    L = keras.layers
    keras.utils.set_random_seed(26)  # (the GRU's and Dense's initial weights: the same run on every order of tests)
    km = keras.Sequential([keras.Input(shape), L.STFTSpectrogram(**options)]
                          + ([L.Permute((2, 1))] if data_format == "channels_first" else [])
                          + [L.GRU(5), L.Dense(3, activation="softmax")])
    km.set_weights([w + (rng.standard_normal(w.shape) * 0.05).astype(w.dtype) for w in km.get_weights()])
    # SGD with momentum, not Adam: Adam's first steps move a weight whose gradient is near zero by about
    # lr * g / (|g| + 3e-6), which turns float32 rounding in the gradient (another summation order) into 1e-5
    # differences in the weights after one step (seen in the imaginary kernel, psd mode, on an AMD EPYC).
    km.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    km.save(tmp_path / "k.keras")
    model = fg.load_model(tmp_path / "k.keras")
    assert len(model.trainable_weights) == len(km.trainable_weights)
    x = rng.standard_normal((16, *shape)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    for _ in range(5):
        np.testing.assert_allclose(model.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["log", "magnitude", "psd", "real", "imag", "angle", "stft"])
@pytest.mark.parametrize("data_format,expand_dims,padding", [("channels_last", False, "same"),
                                                             ("channels_first", True, "valid"),
                                                             ("channels_last", True, "valid"),
                                                             ("channels_first", False, "same")])
def test_gradients_match_finite_differences(rng, mode, data_format, expand_dims, padding):
    layer = F.STFTSpectrogram(mode=mode, frame_length=6, frame_step=4, fft_length=8, padding=padding,
                              data_format=data_format, expand_dims=expand_dims, dtype="float64")
    shape = (2, 3, 13) if data_format == "channels_first" else (2, 13, 3)
    layer.build((None, *shape[1:]))
    layer.set_weights([w + rng.standard_normal(w.shape) * 0.1 for w in layer.get_weights()])
    x = rng.standard_normal(shape)
    assert layer.call(x).shape == layer.compute_output_shape(shape)
    assert len(layer.trainable_weights) == (1 if mode in ("real", "imag") else 2)
    assert_layer_gradients(layer, x, rng, rtol=1e-6, atol=1e-8)


def test_a_frozen_layer_gives_no_weight_gradients(rng):
    layer = F.STFTSpectrogram(frame_length=8, trainable=False)
    layer.build((None, 32, 1))
    y, cache = layer.forward(rng.standard_normal((2, 32, 1)).astype(np.float32))
    dx, grads = layer.backward(np.ones_like(y), cache)
    assert grads == [] and dx.shape == (2, 32, 1)


@pytest.mark.keras
@pytest.mark.parametrize("config", [dict(side="real"), dict(side="imag", window="hamming", periodic=True),
                                    dict(side="real", window=None, scaling=None),
                                    dict(side="imag", window="blackman", scaling="spectrum")])
def test_the_stft_initializer_matches_keras(keras, config):
    theirs = keras.initializers.STFT(**config)
    ours = fg.initializers.STFT(**config)
    np.testing.assert_allclose(ours((12, 1, 9)), np.asarray(theirs((12, 1, 9))), rtol=0, atol=2e-7)
    assert fg.initializers.get(keras.initializers.serialize(theirs))((12, 1, 9), np.float32, None).shape == (12, 1, 9)
    assert ours.get_config() == {**theirs.get_config()}


@pytest.mark.parametrize("options,error,match", [
    (dict(mode="cepstrum"), ValueError, "'mode'"),
    (dict(frame_length=8, frame_step=9), ValueError, "frame_step should be"),
    (dict(frame_length=8, fft_length=4), ValueError, "fft_length should be at least"),
    (dict(window="no-such-window"), ValueError, "scipy.signal.get_window"),
    (dict(frame_length=4, window=[1.0, 0.5]), ValueError, "as many as the frame length"),
    (dict(frame_length=2, window=[1.0, np.nan]), ValueError, "finite"),
    (dict(scaling="energy"), ValueError, "'scaling'"),
    (dict(padding="causal"), ValueError, "'padding'"),
    (dict(frame_length=1), ValueError, "give frame_step"),
])
def test_bad_options_are_refused(options, error, match):
    with pytest.raises(error, match=match):
        F.STFTSpectrogram(**options)


def test_a_fft_length_not_a_power_of_two_warns_as_keras():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        F.STFTSpectrogram(frame_length=8, fft_length=12)
    assert any("power of two" in str(w.message) for w in caught)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="rank 3"):
        fg.Sequential([F.Input((100,)), F.STFTSpectrogram(frame_length=8)])
    with pytest.raises(ValueError, match="leave no output"):
        fg.Sequential([F.Input((6, 1)), F.STFTSpectrogram(frame_length=8)])
    model = fg.Sequential([F.Input((None, 2)), F.STFTSpectrogram(frame_length=8)])
    with pytest.raises(ValueError, match=r"expects input shape \(None, None, 2\)"):
        model.predict(np.zeros((1, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"expects input \(batch, samples, 2\)"):
        model.layers[0](np.zeros((1, 32, 3), np.float32))
    with pytest.raises(ValueError, match="leave no output from inputs of 5 samples"):
        model.predict(np.zeros((1, 5, 2), np.float32))
    with pytest.raises(TypeError, match="real numeric input"):
        model.layers[0](np.zeros((1, 32, 2), np.complex64))
    pcm = np.arange(-32, 32, dtype=np.int16).reshape(1, 32, 2)  # (16-bit samples: a float32 Input casts them)
    np.testing.assert_array_equal(model.predict(pcm), model.predict(pcm.astype(np.float32)))
    assert model.predict(np.zeros((0, 32, 2), np.float32)).shape == (0, 7, 2 * 5)
