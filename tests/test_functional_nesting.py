"""A Sequential model holding a Functional model: loaded from Keras 3 .keras / .h5 and tf_keras .h5
files and from live models, saved as a .keras Keras opens, weights files both ways."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _build(mod, with_input: bool):
    L = mod.layers
    a = mod.Input(shape=(6, 3))
    h = L.GRU(4, return_sequences=True, name="g")(a)
    block = mod.Model(a, L.Add(name="res")([L.Dense(4, name="p")(a), h]), name="block")
    head = [L.LSTM(3, name="top"), L.Dense(1, name="out")]
    return mod.Sequential(([mod.Input(shape=(6, 3))] if with_input else []) + [block] + head, name="outer")


@pytest.mark.parametrize("with_input", [True, False])
def test_sequential_holding_a_functional_model_both_ways(keras, tmp_path, with_input):
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    km = _build(keras, with_input)
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    for model in (fg.load_model(tmp_path / "k.keras"), fg.load_model(tmp_path / "k.h5"), fg.from_keras(km)):
        assert isinstance(model, fg.Sequential)
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=2e-6)
    tf_keras = pytest.importorskip("tf_keras")
    k2 = _build(tf_keras, with_input)
    k2.set_weights(km.get_weights())
    k2.save(tmp_path / "k2.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k2.h5").predict(x), expected, rtol=1e-5, atol=2e-6)
    ours = _build(fg, True)
    ours.set_weights(km.get_weights())
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-6, atol=1e-7)
    ours.save_weights(tmp_path / "ours.weights.h5")
    other = _build(keras, True)
    other.load_weights(tmp_path / "ours.weights.h5")
    np.testing.assert_allclose(other.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-7)
    km.save_weights(tmp_path / "k.weights.h5")
    fresh = _build(fg, True)
    fresh.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(fresh.predict(x), expected, rtol=1e-5, atol=2e-6)
