"""Fuzz round 72 (Keras-made graphs of unusual structure, compared with Keras 3): a nested model built on open step
counts and called on known ones, a mask given beside it, and one MultiHeadAttention called with a key and without."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _both(keras, km, tmp_path, x, rtol=1e-5, atol=1e-6):
    """``km`` saved as .keras and .h5: fastgru's predictions of each file are Keras's."""
    expected = km.predict(x, verbose=0)
    for name in ("m.keras", "m.h5"):
        km.save(tmp_path / name)
        got = fg.load_model(tmp_path / name).predict(x, verbose=0)
        for g, e in zip(*((got, expected) if isinstance(expected, list) else ([got], [expected]))):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.keras
@pytest.mark.parametrize("head", ["GRU", "Dense", "Bidirectional"])
def test_a_nested_model_on_open_steps_called_on_known_ones_has_the_calls_shape(keras, rng, tmp_path, head):
    """A nested model built on ``Input((None, 4))`` called on a (batch, 7, 4) tensor outputs (batch, 7, 4), as
    Keras's symbolic call says: a product over its steps then has 7 features, which the layer after it is built
    on (was: an unknown feature count, the file refused)."""
    L, ops = keras.layers, keras.ops
    x = keras.Input((7, 4))
    inner_in = keras.Input((None, 4))
    h = keras.Model(inner_in, L.Dense(4)(inner_in))(x)
    scores = ops.matmul(x, ops.transpose(h, (0, 2, 1)))
    layer = {"GRU": L.GRU(2), "Dense": L.Dense(2), "Bidirectional": L.Bidirectional(L.GRU(2))}[head]
    _both(keras, keras.Model(x, layer(scores)), tmp_path, rng.standard_normal((3, 7, 4)).astype(np.float32))
    # and in code: the shape of the nested call
    inner = fg.Model(i := fg.Input((None, 4)), fg.layers.Dense(4)(i))
    outer_in = fg.Input((7, 4))
    assert inner(outer_in).shape == (None, 7, 4)
    assert inner.compute_output_shape((5, 7, 4)) == (5, 7, 4)


@pytest.mark.keras
def test_a_mask_of_known_steps_fits_a_nested_models_output_of_open_ones(keras, tmp_path):
    """``GRU(h, mask=not_equal(tokens, 0))``, h from a nested model built on open steps: the (batch, 7) mask fits
    (was: refused as not fitting (None, None, 3)); padded rows give Keras's numbers."""
    L, ops = keras.layers, keras.ops
    tokens = keras.Input((7,), dtype="int32")
    inner_in = keras.Input((None, 3))
    h = keras.Model(inner_in, L.Dense(3)(inner_in))(L.Embedding(20, 3)(tokens))
    km = keras.Model(tokens, L.GRU(2)(h, mask=ops.not_equal(tokens, 0)))
    ids = np.array([[1, 2, 3, 0, 0, 0, 0], [4, 5, 6, 7, 8, 9, 1], [3, 0, 0, 0, 0, 0, 0]], "int32")
    _both(keras, km, tmp_path, ids)


@pytest.mark.keras
def test_one_multi_head_attention_called_with_a_key_and_without(keras, rng, tmp_path):
    """One MultiHeadAttention called as ``mha(a, b, key=b)`` and ``mha(b, a)`` (the value its key): both calls run
    with its one set of weights, from either file and in code (was: 'built for input shape ... incompatible')."""
    L = keras.layers
    a, b = keras.Input((5, 4)), keras.Input((5, 4))
    mha = L.MultiHeadAttention(num_heads=2, key_dim=2)
    km = keras.Model([a, b], [mha(a, b, key=b), mha(b, a)])
    x = [rng.standard_normal((2, 5, 4)).astype(np.float32) for _ in range(2)]
    _both(keras, km, tmp_path, x)
    fa, fb = fg.Input((5, 4)), fg.Input((5, 4))
    ours = fg.layers.MultiHeadAttention(num_heads=2, key_dim=2)
    model = fg.Model([fa, fb], [ours(fb, fa), ours(fa, fb, key=fb)])  # (the call without a key first)
    model.set_weights(km.get_weights())
    got = model.predict(x, verbose=0)
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(got[0], expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], expected[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: fg.layers.Dense(2), lambda: fg.layers.GRU(2),
                                  lambda: fg.layers.Bidirectional(fg.layers.LSTM(2)),
                                  lambda: fg.layers.TimeDistributed(fg.layers.Dense(2))])
def test_a_layer_built_on_an_axis_of_unknown_size_says_so(make):
    """A layer whose weights need an axis that has no known size (``Input((7, None))``) is refused with a
    ValueError saying so, as Keras's 'should be defined' — in a graph, a Sequential and ``build`` alike (was:
    Python's TypeError from ``int(None)``)."""
    expected = r"\(None, 7, None\): its weights are sized by its input's axes, and an axis it needs has no known size"
    with pytest.raises(ValueError, match=expected):
        make()(fg.Input((7, None)))
    with pytest.raises(ValueError, match=expected):
        fg.Sequential([fg.Input((7, None)), make()])
    with pytest.raises(ValueError, match=expected):
        fg.Sequential([make()]).build((None, 7, None))
