"""A Functional config loads as a chain (a Sequential) only when it really is one: one output, tensor 0 of
the last layer, every layer fed tensor 0 of one layer, no returned states, keyword tensors counted as inputs.
Anything else is built as a graph and must predict what Keras predicts (outputs, order, shapes, values)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastgru as fg
from fastgru.io.keras_config import parse_model

X = np.random.default_rng(0).standard_normal((4, 7, 5)).astype(np.float32)
TOKENS = np.random.default_rng(1).integers(1, 30, (4, 7)).astype(np.int32)


def _randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.3).astype(w.dtype) for w in model.get_weights()])
    return model


def _listed(y):
    if isinstance(y, dict):
        return [np.asarray(y[k]) for k in sorted(y)]
    return [np.asarray(a) for a in (y if isinstance(y, (list, tuple)) else [y])]


def _loaded(model, how, tmp_path):
    if how == "live":
        return fg.from_keras(model)
    model.save(tmp_path / f"m.{how}")
    return fg.load_model(tmp_path / f"m.{how}")


def _assert_matches(model, x, tmp_path, ways=("keras", "h5", "live")):
    expected = _listed(model.predict(x, verbose=0))
    for how in ways:
        got = _listed(_loaded(model, how, tmp_path).predict(x))
        assert [g.shape for g in got] == [e.shape for e in expected], how
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, atol=2e-5, rtol=0, err_msg=how)


def _state_to_dense(k):
    inp = k.Input((7, 5))
    _, h = k.layers.GRU(8, return_state=True)(inp)
    return k.Model(inp, k.layers.Dense(2)(h))


def _stacked_states(k):
    inp = k.Input((7, 5))
    seq, h = k.layers.GRU(8, return_sequences=True, return_state=True)(inp)
    out, _, c = k.layers.LSTM(6, return_state=True)(seq)
    return k.Model(inp, [k.layers.Dense(2)(out), h, c])


def _cell_state_only(k):
    inp = k.Input((7, 5))
    _, _, c = k.layers.LSTM(6, return_state=True)(inp)
    return k.Model(inp, c)


def _state_before_sequence(k):
    inp = k.Input((7, 5))
    seq, h = k.layers.GRU(6, return_sequences=True, return_state=True)(inp)
    return k.Model(inp, [h, seq])


def _bidirectional_forward_state(k):
    inp = k.Input((7, 5))
    _, fh, _ = k.layers.Bidirectional(k.layers.GRU(4, return_state=True))(inp)
    return k.Model(inp, fh)


def _output_along_the_chain(k):
    inp = k.Input((7, 5))
    g = k.layers.GRU(6)(inp)
    return k.Model(inp, [k.layers.Dense(2)(g), g])


def _sequence_along_the_chain(k):
    inp = k.Input((7, 5))
    g = k.layers.GRU(6, return_sequences=True)(inp)
    return k.Model(inp, [k.layers.GRU(3)(g), g])


def _dict_of_one(k):
    inp = k.Input((7, 5))
    return k.Model(inp, {"out": k.layers.Dense(2)(k.layers.GRU(3)(inp))})


GRAPHS = [_state_to_dense, _stacked_states, _cell_state_only, _state_before_sequence, _bidirectional_forward_state,
          _output_along_the_chain, _sequence_along_the_chain, _dict_of_one]


@pytest.mark.parametrize("build", GRAPHS, ids=[b.__name__.strip("_") for b in GRAPHS])
def test_chain_shaped_graphs_predict_like_keras(keras, build, tmp_path):
    model = _randomized(build(keras))
    _assert_matches(model, X, tmp_path)
    assert isinstance(fg.load_model(tmp_path / "m.keras"), fg.Model)  # a graph, not a Sequential


def test_dict_of_one_output_keeps_its_key(keras, tmp_path):
    model = _randomized(_dict_of_one(keras))
    model.save(tmp_path / "m.keras")
    assert list(fg.load_model(tmp_path / "m.keras").predict(X)) == ["out"]


@pytest.mark.parametrize("listed", [False, True])
def test_real_chains_still_load_as_sequential(keras, listed, tmp_path):
    L = keras.layers
    inp = keras.Input((7, 5))
    out = L.Dense(2)(L.GRU(3, return_sequences=True)(inp))
    model = _randomized(keras.Model(inp, [out] if listed else out))
    _assert_matches(model, X, tmp_path)
    assert isinstance(fg.load_model(tmp_path / "m.keras"), fg.Sequential)


@pytest.mark.parametrize("build", [_state_to_dense, _cell_state_only, _output_along_the_chain],
                         ids=["state_to_dense", "cell_state_only", "output_along_the_chain"])
def test_tf_keras_chain_shaped_graphs(build, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    _assert_matches(_randomized(build(tf_keras)), X, tmp_path, ways=("h5", "live"))


def test_tf_keras_multi_head_attention_value_keyword(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    t = L.Input((7,), dtype="int32")
    h = L.GRU(8, return_sequences=True)(L.Embedding(30, 6)(t))
    model = _randomized(tf_keras.Model(t, L.MultiHeadAttention(num_heads=2, key_dim=4)(h, h)))
    # (its .keras file names the projections' groups _query_dense, ...: io.keras_v3._var_group)
    _assert_matches(model, TOKENS, tmp_path, ways=("h5", "live", "keras"))


def test_tf_keras_multi_head_attention_in_a_graph_from_its_keras_file(tmp_path):
    """A graph (two outputs) with tf_keras's MultiHeadAttention, from its .keras file: the projections'
    weights sit under ``_query_dense/vars`` and the like there."""
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    t = L.Input((7,), dtype="int32")
    h = L.GRU(8, return_sequences=True)(L.Embedding(30, 6)(t))
    a = L.MultiHeadAttention(num_heads=2, key_dim=4)(h, h)
    model = _randomized(tf_keras.Model(t, [a, L.GRU(2)(a)]))
    _assert_matches(model, TOKENS, tmp_path, ways=("keras", "h5"))


# ---- configs alone (no Keras) --------------------------------------------------------------------
def _k2_config(output=("dense", 0, 0)):
    """A tf_keras-style chain: input -> GRU -> Dense."""
    return {"class_name": "Functional", "config": {
        "name": "m", "input_layers": [["x", 0, 0]], "output_layers": [list(output)],
        "layers": [
            {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
             "config": {"name": "x", "batch_input_shape": [None, 7, 5], "dtype": "float32"}},
            {"class_name": "GRU", "name": "gru", "inbound_nodes": [[["x", 0, 0, {}]]],
             "config": {"name": "gru", "units": 3}},
            {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["gru", 0, 0, {}]]],
             "config": {"name": "dense", "units": 2}}]}}


def _refused(config):
    with pytest.raises(fg.UnsupportedKerasFeature):
        parse_model(config, "<test>", "2.15.0")


def test_config_chain_detection():
    assert [s.class_name for s in parse_model(_k2_config(), "<test>", "2.15.0").layers] == ["GRU", "Dense"]
    _refused(_k2_config(output=("gru", 0, 0)))
    _refused(_k2_config(output=("dense", 0, 1)))
    several = _k2_config()
    several["config"]["output_layers"] = [["dense", 0, 0], ["gru", 0, 0]]
    _refused(several)
    as_dict = _k2_config()
    as_dict["config"]["output_layers"] = {"y": ["dense", 0, 0]}
    _refused(as_dict)
    state = _k2_config()
    state["config"]["layers"][1]["config"]["return_state"] = True
    _refused(state)
    second_tensor = _k2_config()
    second_tensor["config"]["layers"][2]["inbound_nodes"] = [[["gru", 0, 1, {}]]]
    _refused(second_tensor)
    keyword = _k2_config()  # tf_keras records MultiHeadAttention's value= in the node's keywords
    keyword["config"]["layers"][2]["inbound_nodes"] = [[["gru", 0, 0, {"value": ["x", 0, 0]}]]]
    _refused(keyword)
    wrapped = copy.deepcopy(_k2_config())
    gru = wrapped["config"]["layers"][1]
    wrapped["config"]["layers"][1] = {"class_name": "Bidirectional", "name": "gru", "inbound_nodes": gru["inbound_nodes"],
                                      "config": {"name": "gru", "layer": {"class_name": "GRU", "config": dict(
                                          gru["config"], return_state=True)}}}
    _refused(wrapped)
    wrapped["config"]["layers"][1]["config"]["layer"]["config"]["return_state"] = False
    assert [s.class_name for s in parse_model(wrapped, "<test>", "2.15.0").layers] == ["Bidirectional", "Dense"]
