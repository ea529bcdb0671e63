"""Conv1DTranspose: gradients against central differences (float64); the committed autoencoder file
(tests/fixtures/make_layer_fixtures.py) run and trained to Keras's numbers without TensorFlow;
every option against live Keras (output lengths and values, files both ways, training steps); bad options."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_layer_gradients
from keras_parity import assert_fixture_numbers

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature
from fastgru.io.keras_config import LayerSpec, build_layer
from fastgru.layers import Conv1DTranspose, Dense, Input

FILES = Path(__file__).resolve().parent / "fixtures" / "files"

CASES = [
    dict(filters=3, kernel_size=3),
    dict(filters=2, kernel_size=3, strides=2, padding="same", activation="tanh"),
    dict(filters=3, kernel_size=2, strides=3, output_padding=2, use_bias=False),
    dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=1),
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", activation="relu"),
    dict(filters=2, kernel_size=1, strides=3),
]


def _id(options):
    return "-".join(f"{k}{v}" for k, v in options.items())


@pytest.mark.parametrize("options", CASES, ids=_id)
def test_conv1d_transpose_gradients_match_finite_differences(rng, options):
    layer = Conv1DTranspose(dtype="float64", **options)
    layer.build((None, 5, 4))
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.weights])
    x = rng.standard_normal((2, 5, 4))
    assert layer.call(x).shape == layer.compute_output_shape((2, 5, 4))
    cache, coef = assert_layer_gradients(layer, x, rng)
    assert layer.backward(coef, cache, need_dx=False)[0] is None


def test_autoencoder_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "conv_transpose.npz")
    model = fg.load_model(FILES / "conv_transpose.keras")
    assert [type(layer).__name__ for layer in model.layers].count("Conv1DTranspose") == 3
    again = assert_fixture_numbers(model, data, tmp_path)
    assert again.layers[3].get_config()["output_padding"] == (1,)


def test_bad_options_and_inputs(rng):
    with pytest.raises(ValueError, match="output_padding must be less than strides"):
        Conv1DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="strides > 1 together with dilation_rate > 1"):
        Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="'padding'"):
        Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="'data_format' should be None or one of"):  # (channels_first: elsewhere)
        Conv1DTranspose(2, 3, data_format="channels_middle")
    with pytest.raises(ValueError, match="gives 4 output steps for 5 input steps"):
        fg.Sequential([Input((5, 3)), Conv1DTranspose(2, 2, padding="same", output_padding=0)])
    model = fg.Sequential([Input((None, 3)), Conv1DTranspose(2, 2, padding="same", output_padding=0)])
    with pytest.raises(ValueError, match="gives 6 output steps for 7 input steps"):
        model.predict(np.zeros((1, 7, 3), np.float32))
    with pytest.raises(ValueError, match=r"expects input \(batch, steps, channels\) with 3 channels, received shape "
                                         r"\(1, 7, 2\)"):
        model.layers[0].call(np.zeros((1, 7, 2), np.float32))
    with pytest.raises(TypeError, match="numeric input array, received dtype <U1"):
        model.layers[0].call(np.full((1, 7, 3), "a"))
    with pytest.raises(ValueError, match="rank 3"):
        fg.Sequential([Input((3,)), Conv1DTranspose(2, 2)])
    layer = fg.Sequential([Input((None, 3)), Conv1DTranspose(2, 2)]).layers[0]
    with pytest.raises(ValueError, match=r"output gradient of shape \(1, 4, 2\), expected \(1, 3, 2\)"):
        layer.backward(np.zeros((1, 4, 2)), layer.forward(np.zeros((1, 2, 3), np.float32))[1])


@pytest.mark.keras
def test_every_option_matches_keras(keras, rng):
    """Output lengths and values over kernel sizes, strides, dilations, paddings, output paddings and input
    lengths, against Keras: every combination Keras runs (those it refuses, fastgru refuses too)."""
    checked = 0
    for k, s, d, padding, op, steps in itertools.product([1, 2, 3, 4], [1, 2, 3], [1, 2], ["valid", "same"],
                                                         [None, 0, 1, 2], [2, 5]):
        if (s > 1 and d > 1) or (op is not None and op >= s):
            continue
        options = dict(filters=3, kernel_size=k, strides=s, padding=padding, output_padding=op, dilation_rate=d)
        x = rng.standard_normal((2, steps, 4)).astype(np.float32)
        layer = keras.layers.Conv1DTranspose(**options)
        layer.build((None, steps, 4))
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in layer.get_weights()])
        try:
            expected = np.asarray(layer(x))  # (eager: no graph traced per case)
        except Exception:  # noqa: BLE001 (TensorFlow's error: its transposed convolution cannot produce that length)
            with pytest.raises(ValueError, match="output steps for"):
                fg.Sequential([Input((steps, 4)), Conv1DTranspose(**options)])
            continue
        ours = fg.Sequential([Input((steps, 4)), Conv1DTranspose(**options)])
        ours.set_weights(layer.get_weights())
        np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-5, err_msg=str(options))
        checked += 1
    assert checked > 100


@pytest.mark.keras
@pytest.mark.parametrize("options", CASES[:4], ids=_id)
def test_files_and_training_match_keras(keras, rng, tmp_path, options):
    L = keras.layers
    x = rng.standard_normal((8, 6, 4)).astype(np.float32)
    km = keras.Sequential([keras.Input((6, 4)), L.GRU(5, return_sequences=True), L.Conv1DTranspose(**options),
                           L.GlobalAveragePooling1D(), L.Dense(2)])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    y = rng.standard_normal((8, 2)).astype(np.float32)
    expected = km.predict(x, verbose=0)
    for file in ("k.keras", "k.h5"):
        km.save(tmp_path / file)
        loaded = fg.load_model(tmp_path / file)
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-4, atol=2e-5)
    ours = fg.from_keras(km)
    ours.save(tmp_path / "ours.keras")  # Keras opens what fastgru writes
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="mse")
    for _ in range(4):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-4)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def test_in_a_graph_and_unsupported_file_options(tmp_path, rng):
    inputs = fg.Input((4, 3))
    up = Conv1DTranspose(3, 2, strides=2)(inputs)
    model = fg.Model(inputs, Dense(1)(up))
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    assert model.predict(x).shape == (2, 8, 1)
    model.save(tmp_path / "g.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "g.keras").predict(x), model.predict(x))
    config = Conv1DTranspose(2, 3).get_config()
    with pytest.raises(UnsupportedKerasFeature, match=r"\(Conv1DTranspose\): option groups=2 is not supported"):
        build_layer(LayerSpec("Conv1DTranspose", {**config, "groups": 2}, "", ""), 3)
