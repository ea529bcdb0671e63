"""Models trained under Keras's half-precision dtype policies (``mixed_float16``, ``mixed_bfloat16``,
``float16``): loaded with a warning and run in float32 from the stored weights — the numbers of the same
weights in a float32 Keras model — with the LossScaleOptimizer of their compile config read as its inner
optimizer. The committed file (tests/fixtures/make_layer_fixtures.py) without TensorFlow; live Keras 3 and
tf_keras files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import optimizers

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def _load_warned(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fg.load_model(path)
    return model, [str(w.message) for w in caught]


def test_mixed_float16_file_runs_in_float32():
    data = np.load(FILES / "mixed_float16.npz")
    model, messages = _load_warned(FILES / "mixed_float16.keras")
    assert any("dtype policy 'mixed_float16': fastgru computes these layers in float32" in m for m in messages)
    assert all(layer.dtype == "float32" for layer in model.layers)
    pred = model.predict(data["x"])
    np.testing.assert_allclose(pred, data["pred32"], rtol=1e-5, atol=1e-6)  # Keras's float32 numbers
    np.testing.assert_allclose(pred, data["pred16"], atol=5e-3)  # and near Keras's float16 ones
    assert isinstance(model.optimizer, optimizers.Adam) and np.isclose(model.optimizer.learning_rate, 0.01)


def test_loss_scale_optimizer_config_is_its_inner_optimizer():
    inner = {"module": "keras.optimizers", "class_name": "RMSprop", "config": {"learning_rate": 0.02, "rho": 0.8}}
    for wrapper in ({"class_name": "LossScaleOptimizer", "config": {"inner_optimizer": inner, "initial_scale": 2.0}},
                    {"class_name": "LossScaleOptimizerV3", "config": {"inner_optimizer": "sgd", "dynamic": True}}):
        opt = optimizers.get(wrapper)
        assert type(opt).__name__ == ("RMSprop" if wrapper["class_name"] == "LossScaleOptimizer" else "SGD")
    assert optimizers.get({"class_name": "LossScaleOptimizer", "config": {"inner_optimizer": inner}}).rho == 0.8
    with pytest.raises(ValueError, match="could not interpret optimizer identifier"):
        optimizers.get({"class_name": "LossScaleOptimizer", "config": {}})


@pytest.mark.keras
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16", "float16"])
def test_keras_half_precision_models_run_as_float32_keras(keras, rng, tmp_path, policy):
    L = keras.layers

    def build():
        return keras.Sequential([keras.Input((6, 4)), L.Bidirectional(L.GRU(5, return_sequences=True)),
                                 L.Conv1D(4, 3, padding="same"), L.LSTM(3), L.Dense(2, activation="softmax")])

    keras.mixed_precision.set_global_policy(policy)
    try:
        km = build()
        km.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(w.dtype) for w in km.get_weights()])
    reference = build()
    reference.set_weights([w.astype(np.float32) for w in km.get_weights()])
    x = rng.standard_normal((5, 6, 4)).astype(np.float32)
    for suffix in (".keras", ".h5"):
        km.save(tmp_path / f"m{suffix}")
        ours, messages = _load_warned(tmp_path / f"m{suffix}")
        assert any(f"dtype policy {policy!r}" in m for m in messages)
        np.testing.assert_allclose(ours.predict(x), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        assert ours.optimizer is not None
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 5)]
    assert np.isfinite(ours.fit(x, y, epochs=1, verbose=0).history["loss"][0])
    ours.save(tmp_path / "back.keras")  # written back as a float32 model
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0),
                               ours.predict(x), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_tf_keras_mixed_precision_h5(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    tf_keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        km = tf_keras.Sequential([L.GRU(4, input_shape=(7, 5)), L.Dense(2), L.Activation("softmax", dtype="float32")])
        km.compile(tf_keras.optimizers.Adam(0.01), "categorical_crossentropy")
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")
    reference = tf_keras.Sequential([L.GRU(4, input_shape=(7, 5)), L.Dense(2), L.Activation("softmax")])
    reference.set_weights(km.get_weights())
    km.save(tmp_path / "m.h5")
    ours, _ = _load_warned(tmp_path / "m.h5")
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), reference.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert isinstance(ours.optimizer, optimizers.Adam)
