"""``x[:, -1]`` in Functional models: Keras 3's GetItem op, run as a layer (fastgru/layers/getitem.py), read
from and written to Keras files, trained, and checked against Keras."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.layers.getitem import GetItem

KEYS = [(slice(None), -1, slice(None)), (Ellipsis, 0), (slice(None), 2), (slice(None), None),
        (slice(None), slice(-3, None)), (slice(None), slice(1, 5, 2), slice(1, None))]


def _outputs(h):
    return [h[k] for k in KEYS]


@pytest.mark.keras
def test_indexing_in_files_and_in_code_matches_keras(keras, rng, tmp_path):
    L = keras.layers
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    x[0, 4:] = 0.0
    inp = keras.Input((6, 3))
    h = L.GRU(4, return_sequences=True)(L.Masking()(inp))
    km = keras.Model(inp, [L.Dense(2)(h[:, -1, :])] + _outputs(h)[1:])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    fi = fg.Input((6, 3))
    fh = fg.layers.GRU(4, return_sequences=True)(fg.layers.Masking()(fi))
    built = fg.Model(fi, [fg.layers.Dense(2)(fh[:, -1, :])] + _outputs(fh)[1:])
    built.set_weights(km.get_weights())
    for model in (fg.load_model(tmp_path / "k.keras"), fg.load_model(tmp_path / "k.h5"), built):
        for got, want in zip(model.predict(x), expected, strict=True):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    import pickle

    for copy in (pickle.loads(pickle.dumps(built)), fg.Model.from_config(built.get_config())):
        copy.set_weights(built.get_weights())
        for got, want in zip(copy.predict(x), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    built.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    for got, want in zip(back.predict(x, verbose=0), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [t.shape for t in built.outputs] == [tuple(t.shape) for t in km.outputs]


@pytest.mark.keras
def test_a_plain_chain_with_indexing_loads(keras, rng, tmp_path):
    """Input -> GRU -> h[:, -1] -> Dense is a chain, but its index lives in the node: built as a graph."""
    L = keras.layers
    inp = keras.Input((6, 3))
    km = keras.Model(inp, L.Dense(2)(L.GRU(4, return_sequences=True)(inp)[:, -1, :]))
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    for ext in ("keras", "h5"):
        km.save(tmp_path / f"c.{ext}")
        np.testing.assert_allclose(fg.load_model(tmp_path / f"c.{ext}").predict(x), km.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_last_step_of_attention_trains_as_keras(keras, rng, tmp_path):
    """The common pattern: self-attention over GRU outputs, then the last step (a[:, -1, :]) into the head.
    (SGD: the attention's key bias has a zero true gradient, whose rounding noise Adam would blow up.)"""
    x = rng.standard_normal((8, 7, 3)).astype(np.float32)
    y = rng.integers(0, 3, 8)

    def build(mod, layers):
        inp = mod.Input((7, 3))
        h = layers.GRU(5, return_sequences=True)(inp)
        a = layers.MultiHeadAttention(num_heads=2, key_dim=3)(h, h)
        return mod.Model(inp, layers.Dense(3, activation="softmax")(a[:, -1, :]))

    km = build(keras, keras.layers)
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "k.keras")
    models = [fg.load_model(tmp_path / "k.keras"), build(fg, fg.layers)]
    models[1].set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    for model in models:
        model.compile(optimizer=fg.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    expected = [km.train_on_batch(x, y) for _ in range(5)]
    for model in models:
        np.testing.assert_allclose([model.train_on_batch(x, y) for _ in range(5)], expected, rtol=1e-3)
        for k, o in zip(km.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


@pytest.mark.parametrize("key", KEYS, ids=[str(k) for k in KEYS])
def test_gradient_matches_finite_differences(rng, key):
    layer = GetItem()
    x = rng.standard_normal((2, 6, 3))
    layer.build((None, 6, 3))
    y, cache = layer.forward(x, key=key)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    assert grads == []
    np.testing.assert_allclose(dx, numeric_gradient(lambda v: layer.call(v, key=key), x, coef), atol=1e-8)


def test_bad_indices_are_refused():
    h = fg.Input((6, 3))
    with pytest.raises(ValueError, match="batch axis"):
        h[0]
    with pytest.raises(ValueError, match="batch axis"):
        h[1:, -1]
    with pytest.raises(ValueError, match="too many indices"):
        h[:, 0, 0, 0]
    with pytest.raises(TypeError, match="integers, slices"):
        h[:, "a"]
    with pytest.raises(TypeError, match="slice bounds"):
        h[:, 0.5:]
    with pytest.raises(ValueError, match="single ellipsis"):
        h[..., 0, ...]
    model = fg.Model(h, h[:, -1])
    with pytest.raises(ValueError, match="expects input shape"):
        model._layers_and_ops[-1].call(np.ones((2, 5, 3)), key=(slice(None), -1))
