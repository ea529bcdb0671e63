"""Keras 3 Functional models whose mask travels as a ``mask=`` keyword (Keras records
Embedding(mask_zero)'s ``x != 0`` as an op layer feeding it): they load as chains and predict like Keras."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def randomized(keras, model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * 0.4 for w in model.get_weights()])
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("wrapper", ["Bidirectional(LSTM)", "GRU", "Bidirectional(GRU)+GlobalAveragePooling1D"])
def test_embedding_mask_passed_as_keyword(tmp_path, keras, suffix, wrapper):
    L = keras.layers
    inp = keras.Input((12,), dtype="int32")
    h = L.Embedding(30, 8, mask_zero=True)(inp)
    if wrapper == "GRU":
        h = L.GRU(5)(h)
    elif wrapper == "Bidirectional(LSTM)":
        h = L.Bidirectional(L.LSTM(6))(h)
    else:
        h = L.GlobalAveragePooling1D()(L.Bidirectional(L.GRU(4, return_sequences=True))(h))
    model = randomized(keras, keras.Model(inp, L.Dense(3, activation="softmax")(h)), 1)
    tokens = np.random.default_rng(2).integers(1, 30, (4, 12))
    tokens[0, 7:] = 0
    tokens[2, :3] = 0
    model.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}")
    np.testing.assert_allclose(ours.predict(tokens), model.predict(tokens, verbose=0), atol=2e-6)


def test_masking_layer_in_a_functional_model(tmp_path, keras):
    L = keras.layers
    inp = keras.Input((9, 4))
    h = L.Bidirectional(L.LSTM(5, return_sequences=True))(L.Masking()(inp))
    model = randomized(keras, keras.Model(inp, L.Dense(2)(L.LSTM(3)(h))), 3)
    x = np.random.default_rng(4).standard_normal((3, 9, 4)).astype(np.float32)
    x[0, 6:] = 0
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), model.predict(x, verbose=0), atol=2e-6)


def test_a_loaded_graph_lists_its_layers_and_weights_in_the_file_s_order(keras, tmp_path):
    """Keras orders a masked graph's layers with the mask ops it records (``a, ea, b, eb``): a loaded model lists
    them, and its weights, in the file's order, as Keras's loaded model does."""
    L = keras.layers
    a, b = keras.Input((10,), name="a"), keras.Input((6,), name="b")
    joined = L.Concatenate(axis=1, name="c")([L.Embedding(30, 8, mask_zero=True, name="ea")(a),
                                              L.Embedding(30, 8, name="eb")(b)])
    h = L.GRU(5, return_sequences=True, name="g")(joined)
    h2 = L.LSTM(4, name="l")(L.Average(name="avg")([h, L.Dense(5, name="d5")(joined)]))
    theirs = keras.Model([a, b], L.Dense(1, name="out")(L.Concatenate(name="c2")(
        [L.GlobalAveragePooling1D(name="gap")(h), h2])))
    theirs.save(tmp_path / "order.keras")
    ours = fg.load_model(tmp_path / "order.keras")
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
