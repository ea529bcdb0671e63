"""A Sequential's symbolic graph (Keras 3 builds one as a Functional graph of its layers): ``model.inputs``,
``model.outputs`` (and tf.keras's ``model.input``, ``model.output``), ``layer.output`` of its layers, and feature extractors ``Model(model.inputs, layer.output)``."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

L = fg.layers


def _stack():
    return fg.Sequential([L.Input((6, 3)), L.GRU(5, return_sequences=True, name="g1"), L.GRU(4, name="g2"),
                          L.Dense(2, name="head")])


def test_inputs_outputs_and_layer_outputs_follow_the_stack():
    model = _stack()
    assert model.input.shape == (None, 6, 3) and model.inputs[0] is model.input
    assert model.output.shape == (None, 2) and model.outputs[0] is model.output
    assert [l.output.shape for l in model.layers] == [(None, 6, 5), (None, 4), (None, 2)]
    assert model.layers[1].input is model.layers[0].output
    x = np.random.default_rng(0).normal(size=(3, 6, 3)).astype("float32")
    features = fg.Model(model.inputs, model.get_layer("g2").output)
    expected = model.layers[1](model.layers[0](x))
    np.testing.assert_array_equal(features.predict(x, verbose=0), expected)
    np.testing.assert_array_equal(fg.Model(model.input, model.output).predict(x, verbose=0), model.predict(x))


def test_graph_grows_with_add_and_shrinks_with_pop():
    model = _stack()
    model.pop()
    assert model.output.shape == (None, 4) and model.output is model.layers[-1].output
    model.add(L.Dense(7, name="new_head"))
    assert model.output.shape == (None, 7) and model.output is model.get_layer("new_head").output


def test_an_unbuilt_model_has_no_graph_until_it_is_built():
    model = fg.Sequential([L.GRU(4), L.Dense(2)])
    with pytest.raises(AttributeError, match="has no defined output yet"):
        _ = model.output
    with pytest.raises(AttributeError, match="never been called"):
        _ = model.layers[0].output
    model.predict(np.zeros((2, 5, 3), "float32"), verbose=0)  # (builds it for (None, 5, 3))
    assert model.input.shape == (None, 5, 3) and model.output.shape == (None, 2)


def test_a_feature_extractor_keeps_the_embedding_mask_and_shares_the_weights():
    model = fg.Sequential([L.Input((5,), dtype="int32"), L.Embedding(9, 4, mask_zero=True, name="emb"),
                           L.GRU(3, name="gru"), L.Dense(1, name="out")])
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    features = fg.Model(model.inputs, model.get_layer("gru").output)
    emb = model.layers[0]
    expected = model.layers[1](emb(ids), mask=emb.compute_mask(ids, None))
    np.testing.assert_allclose(features.predict(ids, verbose=0), expected, rtol=1e-6)
    model.get_layer("gru").set_weights([w + 0.1 for w in model.get_layer("gru").get_weights()])
    moved = features.predict(ids, verbose=0)
    assert not np.allclose(moved, expected)
    np.testing.assert_allclose(moved, model.layers[1](emb(ids), mask=emb.compute_mask(ids, None)), rtol=1e-6)


@pytest.mark.keras
def test_feature_extractors_of_a_keras_file_match_keras(keras, tmp_path):
    """The common pattern ``Model(model.inputs, model.layers[k].output)`` on a loaded Keras Sequential gives
    Keras's numbers for every k."""
    keras.utils.set_random_seed(3)
    km = keras.Sequential([keras.Input((8, 4)), keras.layers.Conv1D(6, 3, padding="same", activation="relu"),
                           keras.layers.LayerNormalization(), keras.layers.GRU(5, return_sequences=True),
                           keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax")])
    path = tmp_path / "seq.keras"
    km.save(path)
    ours = fg.load_model(path)
    x = np.random.default_rng(1).normal(size=(4, 8, 4)).astype("float32")
    for k in range(len(km.layers)):
        theirs = keras.Model(km.inputs, km.layers[k].output).predict(x, verbose=0)
        mine = fg.Model(ours.inputs, ours.layers[k].output).predict(x, verbose=0)
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert ours.inputs[0].shape == tuple(km.inputs[0].shape) and ours.outputs[0].shape == tuple(km.outputs[0].shape)
