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


def _shared_outputs(mod):
    """A nested model whose outputs are a shared GRU's second and first calls, and an outer model whose
    output is a shared Dense's second call: each output names its layer's node."""
    L = mod.layers
    a, b = mod.Input(shape=(5, 3)), mod.Input(shape=(5, 3))
    g = L.GRU(4, name="g")
    inner = mod.Model([a, b], [g(b), g(a)], name="inner")
    x1, x2 = mod.Input(shape=(5, 3)), mod.Input(shape=(5, 3))
    o1, o2 = inner([x1, x2])
    d = L.Dense(2, name="d")
    d(o2)
    return mod.Model([x1, x2], [L.Subtract(name="sub")([o1, o2]), d(o1)], name="outer")


def test_outputs_of_a_shared_layers_later_call_keep_their_node_on_save(tmp_path):
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(3, 5, 3)).astype("float32") for _ in range(2)]
    ours = _shared_outputs(fg)
    ours.set_weights([rng.normal(size=w.shape).astype("float32") for w in ours.get_weights()])
    expected = ours.predict(xs)
    assert np.abs(expected[0]).max() > 0.01  # the two GRU calls differ: a swapped node would show
    ours.save(tmp_path / "ours.keras")
    back = fg.load_model(tmp_path / "ours.keras")
    for got, want in zip(back.predict(xs), expected):
        np.testing.assert_array_equal(got, want)


def test_shared_layer_outputs_both_ways_with_keras(keras, tmp_path):
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(3, 5, 3)).astype("float32") for _ in range(2)]
    km = _shared_outputs(keras)
    km.set_weights([rng.normal(size=w.shape).astype("float32") for w in km.get_weights()])
    expected = km.predict(xs, verbose=0)
    km.save(tmp_path / "k.keras")
    loaded = fg.load_model(tmp_path / "k.keras")
    for got, want in zip(loaded.predict(xs), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
    loaded.save(tmp_path / "ours.keras")
    for got, want in zip(keras.models.load_model(tmp_path / "ours.keras").predict(xs, verbose=0), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
