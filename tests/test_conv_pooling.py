"""Conv1D, MaxPooling1D and AveragePooling1D: every option against live Keras (forward, files both
ways, 5 training steps in a model around a GRU), gradients by finite differences in float64, and
clear errors for bad options and inputs, in code and in files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from gradcheck import assert_layer_gradients, numeric_gradient

import fastgru as fg
from fastgru.layers import GRU, AveragePooling1D, Conv1D, Dense, Input, MaxPooling1D

CONV_CASES = [
    dict(filters=4, kernel_size=3),
    dict(filters=5, kernel_size=2, padding="same", activation="relu"),
    dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2, activation="tanh"),
    dict(filters=6, kernel_size=4, strides=2, padding="same", use_bias=False),
    dict(filters=3, kernel_size=1, strides=3),
    dict(filters=4, kernel_size=3, groups=2, padding="same", activation="sigmoid"),
    dict(filters=4, kernel_size=4, padding="valid", dilation_rate=3),
]
POOL_CASES = [
    ("MaxPooling1D", dict()), ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling1D", dict(pool_size=2, strides=1)), ("AveragePooling1D", dict(pool_size=2)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same")),
    ("AveragePooling1D", dict(pool_size=4, strides=3, padding="valid")),
]
POOLS = {"MaxPooling1D": MaxPooling1D, "AveragePooling1D": AveragePooling1D}


@pytest.mark.parametrize("options", CONV_CASES, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_conv1d_gradients_match_finite_differences(rng, options):
    layer = Conv1D(dtype="float64", **options)
    layer.build((None, 11, 4))
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.weights])
    x = rng.standard_normal((2, 11, 4))
    assert_layer_gradients(layer, x, rng)


@pytest.mark.parametrize("name,options", POOL_CASES, ids=[f"{n}{o}" for n, o in POOL_CASES])
def test_pooling_gradients_match_finite_differences(rng, name, options):
    layer = POOLS[name](**options)
    layer.build((None, 9, 3))
    x = rng.standard_normal((2, 9, 3))
    y, cache = layer.forward(x)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    assert grads == [] and dx.dtype == np.float64
    np.testing.assert_allclose(dx, numeric_gradient(layer.call, x, coef), rtol=1e-6, atol=1e-8)


def _keras_conv_model(keras, options, steps=12, channels=4):
    L = keras.layers
    return keras.Sequential([keras.Input((steps, channels)), L.Conv1D(**options), L.MaxPooling1D(2, padding="same"),
                             L.GRU(5), L.Dense(3, activation="softmax")])


def _ours_conv_model(options, steps=12, channels=4):
    return fg.Sequential([Input((steps, channels)), Conv1D(**options), MaxPooling1D(2, padding="same"), GRU(5),
                          Dense(3, activation="softmax")])


@pytest.mark.keras
@pytest.mark.parametrize("options", CONV_CASES, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_conv1d_forward_files_and_training_match_keras(keras, rng, tmp_path, options):
    x = rng.standard_normal((8, 12, 4)).astype(np.float32)
    y = rng.integers(0, 3, len(x))
    km = _keras_conv_model(keras, options)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = _ours_conv_model(options)
    ours.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    for file in ("k.keras", "k.h5"):
        loaded = fg.load_model(tmp_path / file)
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-4, atol=2e-5)
        for a, b in zip(loaded.get_weights(), km.get_weights()):
            np.testing.assert_array_equal(a, b)
    ours.save(tmp_path / "ours.keras")  # Keras opens what fastgru writes
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


@pytest.mark.keras
def test_conv1d_float64_matches_keras(keras, rng):
    options = dict(filters=4, kernel_size=3, padding="same", dilation_rate=2, activation="elu")
    km = keras.Sequential([keras.Input((10, 3), dtype="float64"), keras.layers.Conv1D(**options, dtype="float64")])
    km.set_weights([rng.standard_normal(w.shape) for w in km.get_weights()])
    ours = fg.Sequential([Input((10, 3)), Conv1D(**options, dtype="float64")])
    ours.set_weights(km.get_weights())
    x = rng.standard_normal((3, 10, 3))
    # km(x), not km.predict(x): Keras's predict feeds float32 batches
    np.testing.assert_allclose(ours.predict(x), np.asarray(km(x)), rtol=1e-9, atol=1e-12)


@pytest.mark.keras
@pytest.mark.parametrize("name,options", POOL_CASES, ids=[f"{n}{o}" for n, o in POOL_CASES])
def test_pooling_forward_files_and_training_match_keras(keras, rng, tmp_path, name, options):
    L = keras.layers
    x = rng.standard_normal((8, 11, 3)).astype(np.float32)
    y = rng.integers(0, 3, len(x))
    km = keras.Sequential([keras.Input((11, 3)), L.GRU(4, return_sequences=True), getattr(L, name)(**options),
                           L.GRU(4), L.Dense(3, activation="softmax")])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours = fg.Sequential([Input((11, 3)), GRU(4, return_sequences=True), POOLS[name](**options), GRU(4),
                          Dense(3, activation="softmax")])
    ours.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k.keras").predict(x), expected, rtol=1e-4, atol=2e-5)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


@pytest.mark.keras
def test_tf_keras_h5_conv_model_loads(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    km = tf_keras.Sequential([tf_keras.Input((12, 4)), L.Conv1D(6, 3, padding="causal", activation="relu"),
                              L.AveragePooling1D(2), L.GRU(5), L.Dense(2)])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "k2.h5")
    x = rng.standard_normal((4, 12, 4)).astype(np.float32)
    np.testing.assert_allclose(fg.load_model(tmp_path / "k2.h5").predict(x), km.predict(x, verbose=0),
                               rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(filters=True, kernel_size=3), TypeError, "'filters' should be a positive integer"),
    (dict(filters=0, kernel_size=3), ValueError, "'filters' should be a positive integer"),
    (dict(filters=4, kernel_size="3"), TypeError, "'kernel_size' should be"),
    (dict(filters=4, kernel_size=(3, 3)), ValueError, "'kernel_size' should be"),
    (dict(filters=4, kernel_size=3, padding="full"), ValueError, "'padding' should be one of"),
    (dict(filters=4, kernel_size=3, data_format="channels_middle"), ValueError, "'data_format' should be"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ValueError, "strides > 1 together with"),
    (dict(filters=5, kernel_size=3, groups=2), ValueError, "divisible by groups"),
    (dict(filters=4, kernel_size=3, activation="sparsemax"), fg.UnsupportedKerasFeature, "activation 'sparsemax'"),
    (dict(filters=4, kernel_size=3, activation=3), fg.UnsupportedKerasFeature, "activation 3 is not supported"),
    (dict(filters=4, kernel_size=3, use_bias="yes"), TypeError, "'use_bias' should be True or False"),
])
def test_conv1d_bad_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        Conv1D(**kwargs)


def test_bad_inputs_and_pool_options(rng):
    with pytest.raises(ValueError, match="divisible by groups"):
        fg.Sequential([Input((5, 3)), Conv1D(4, 2, groups=2)])
    with pytest.raises(ValueError, match="rank 3"):
        fg.Sequential([Input((5,)), MaxPooling1D()])
    with pytest.raises(ValueError, match="no output steps"):
        fg.Sequential([Input((5, 3)), Conv1D(4, 3, dilation_rate=3)])
    with pytest.raises(ValueError, match="no output steps"):
        fg.Sequential([Input((2, 3)), MaxPooling1D(3)])
    with pytest.raises(ValueError, match="'pool_size' should be"):
        AveragePooling1D(pool_size=0)
    model = fg.Sequential([Input((5, 3)), Conv1D(4, 2)])
    with pytest.raises(ValueError, match=r"expects input shape|expects input \(batch"):
        model.predict(rng.standard_normal((2, 5, 4)).astype(np.float32))


def _write_keras_zip(path, layer_entry):
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 6, 3], "name": "in"}},
        layer_entry]}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("model.weights.h5", b"")


@pytest.mark.parametrize("option,value,error", [
    ("kernel_size", "three", fg.ModelFileError), ("strides", [0], fg.ModelFileError),
    ("padding", "full", fg.ModelFileError), ("filters", 2.5, fg.ModelFileError),
    ("some_new_option", 1, fg.UnsupportedKerasFeature),
])
def test_the_same_bad_values_in_a_file_are_refused(tmp_path, option, value, error):
    config = {"name": "c", "filters": 2, "kernel_size": [2], "strides": [1], "padding": "valid",
              "dilation_rate": [1], "groups": 1, "activation": "linear", "use_bias": True, option: value}
    _write_keras_zip(tmp_path / "bad.keras", {"module": "keras.layers", "class_name": "Conv1D", "config": config})
    with pytest.raises(error, match=option):
        fg.load_model(tmp_path / "bad.keras")
