"""Functional graphs in files: committed Keras-made files load without TensorFlow (fixtures made by
tests/fixtures/make_functional_fixtures.py); with Keras: every graph of functional_cases.py both ways
(.keras, Keras 3 legacy .h5, tf_keras .h5, fg.from_keras, Keras opening fastgru's .keras); bad graph
files are ModelFileError naming what is missing."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import functional_cases as fc
import numpy as np
import pytest

import fastgru as fg

FILES = Path(__file__).resolve().parent / "fixtures" / "files"
CASES = ("two_inputs", "siamese", "seq2seq_lstm", "two_outputs", "masked_merges", "bidirectional_states")


def _listed(a):
    return a if isinstance(a, list) else [a]


def _expected(case):
    data = np.load(FILES / f"fn_{case}.npz")
    xs = [data[k] for k in sorted(k for k in data.files if k.startswith("x"))]
    ys = [data[k] for k in sorted(k for k in data.files if k.startswith("y"))]
    return xs, ys


@pytest.mark.parametrize("suffix", [".keras", ".h5", "_k2.h5"])
@pytest.mark.parametrize("case", CASES)
def test_committed_functional_files_load_and_compute_as_keras(case, suffix):
    xs, ys = _expected(case)
    model = fg.load_model(FILES / f"fn_{case}{suffix}")
    assert isinstance(model, fg.Model)
    got = _listed(model.predict(xs if len(xs) > 1 else xs[0]))
    assert len(got) == len(ys)
    for g, y in zip(got, ys):
        np.testing.assert_allclose(g, y, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("case", CASES)
def test_save_load_config_and_pickle_round_trips(case, tmp_path):
    xs, ys = _expected(case)
    x = xs if len(xs) > 1 else xs[0]
    model = fg.load_model(FILES / f"fn_{case}.keras")
    model.save(tmp_path / "again.keras")
    again = fg.load_model(tmp_path / "again.keras")
    assert [l.name for l in again.layers] == [l.name for l in model.layers]
    for g, y in zip(_listed(again.predict(x)), ys):
        np.testing.assert_allclose(g, y, rtol=1e-5, atol=2e-6)
    for g, y in zip(_listed(pickle.loads(pickle.dumps(model)).predict(x)), ys):
        np.testing.assert_allclose(g, y, rtol=1e-5, atol=2e-6)
    rebuilt = fg.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    for g, y in zip(_listed(rebuilt.predict(x)), ys):
        np.testing.assert_allclose(g, y, rtol=1e-5, atol=2e-6)
    model.save_weights(tmp_path / "w.weights.h5")


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    change(config["config"])
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return dst


def test_graph_files_referring_to_missing_layers_or_nodes_are_model_file_errors(tmp_path):
    src = FILES / "fn_two_inputs.keras"

    def missing_layer(config):
        config["layers"][-1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "ghost"

    def missing_node(config):
        config["layers"][-1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][1] = 3

    def missing_output(config):
        config["output_layers"] = ["nowhere", 0, 0]

    def bad_reference(config):
        config["layers"][-1]["inbound_nodes"][0]["args"][0] = {"class_name": "__keras_tensor__", "config": {}}

    def cycle(config):  # the GRU 'enc' takes its input from the output layer 'p', which depends on 'enc'
        enc = next(e for e in config["layers"] if e["name"] == "enc")
        enc["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["p", 0, 0]

    for change, message in ((missing_layer, "'ghost', which the config does not define"),
                            (cycle, r"layer\(s\) 'enc', 'cat', 'p' wait for tensors that no layer makes \(a cycle"),
                            (missing_node, "wait for tensors that no layer makes"),
                            (missing_output, "output_layers: refers to node 0 of layer 'nowhere'"),
                            (bad_reference, "expected a tensor reference")):
        with pytest.raises(fg.ModelFileError, match=message):
            fg.load_model(_rewrite(src, tmp_path / f"{change.__name__}.keras", change))


# ---- with Keras --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(fc.BUILDERS))
def test_every_graph_round_trips_with_keras(keras, name, tmp_path):
    km = fc.make(keras, name)
    xs, _ = fc.data(name)
    x = xs if len(xs) > 1 else xs[0]
    expected = _listed(km.predict(x, verbose=0))

    def check(model):
        for g, e in zip(_listed(model.predict(x)), expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6)

    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    check(fg.load_model(tmp_path / "k.keras"))
    check(fg.load_model(tmp_path / "k.h5"))
    check(fg.from_keras(km))
    ours = fc.make(fg, name)
    ours.set_weights(km.get_weights())
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    for g, e in zip(_listed(back.predict(x, verbose=0)), expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
    km.save_weights(tmp_path / "k.weights.h5")  # weights files both ways
    fresh = fc.make(fg, name)
    fresh.load_weights(tmp_path / "k.weights.h5")
    check(fresh)
    ours.save_weights(tmp_path / "ours.weights.h5")
    other = fc.make(keras, name)
    other.load_weights(tmp_path / "ours.weights.h5")
    for g, e in zip(_listed(other.predict(x, verbose=0)), expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["two_inputs", "seq2seq_gru", "siamese", "two_outputs", "masked_merges"])
def test_tf_keras_graphs_load(keras, name, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    km = fc.make(tf_keras, name)
    xs, _ = fc.data(name)
    x = xs if len(xs) > 1 else xs[0]
    expected = _listed(km.predict(x, verbose=0))
    km.save(tmp_path / "k2.h5")
    km.save(tmp_path / "k2.keras")  # tf_keras's .keras: a build_config with one shape per input
    for model in (fg.load_model(tmp_path / "k2.h5"), fg.load_model(tmp_path / "k2.keras"), fg.from_keras(km)):
        for g, e in zip(_listed(model.predict(x)), expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["siamese", "seq2seq_lstm", "nested", "masked_merges"])
def test_get_config_round_trips_with_keras(keras, name):
    import copy

    km = fc.make(keras, name)
    xs, _ = fc.data(name)
    x = xs if len(xs) > 1 else xs[0]
    ours = fg.Model.from_config(km.get_config())  # Keras's config (live: tuples) -> fastgru
    ours.set_weights(km.get_weights())
    back = keras.Model.from_config(copy.deepcopy(ours.get_config()))  # fastgru's config -> Keras
    back.set_weights(ours.get_weights())
    for a, b, c in zip(_listed(ours.predict(x)), _listed(km.predict(x, verbose=0)), _listed(back.predict(x, verbose=0))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)
        np.testing.assert_allclose(c, b, rtol=1e-5, atol=2e-6)
    assert "Connected to" in fg.io.describe(FILES / "fn_two_inputs.keras")


@pytest.mark.parametrize("op", ["times a constant", "plus a constant", "keras.ops.tanh"])
def test_a_chain_computing_with_keras_ops_loads_as_a_graph(keras, op, tmp_path):
    """``h * 2.0`` in a chain is Keras's op layer Multiply, not the merge layer of that name: built as a graph
    with the op (layers/keras_ops.py), the values Keras's."""
    inp = keras.Input((10, 4))
    h = keras.layers.GRU(5)(inp)
    h = {"times a constant": lambda: h * 2.0, "plus a constant": lambda: h + 1.0,
         "keras.ops.tanh": lambda: keras.ops.tanh(h)}[op]()
    km = keras.Model(inp, keras.layers.Dense(1)(h))
    km.save(tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((3, 10, 4)).astype(np.float32)
    loaded = fg.load_model(tmp_path / "m.keras")
    assert any(type(layer).__name__ == "KerasOp" for layer in loaded._layers_and_ops)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in km.layers]  # (Keras's: no ops)
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=2e-6)


def test_a_keras_op_fastgru_lacks_is_refused_by_name(keras, tmp_path):
    inp = keras.Input((10, 4))
    h = keras.ops.searchsorted(keras.ops.convert_to_tensor([0.0, 0.5]), keras.layers.GRU(5)(inp))
    keras.Model(inp, keras.layers.Dense(1)(keras.ops.cast(h, "float32"))).save(tmp_path / "m.keras")
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match=r"computes with Keras op layer\(s\) 'search_sorted' "
                                                                r"\(SearchSorted\)"):
        fg.load_model(tmp_path / "m.keras")


def test_a_chain_with_keras_softmax_op_loads(keras, tmp_path):
    inp = keras.Input((10, 4))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.ops.softmax(keras.layers.GRU(5, return_sequences=True)(inp))))
    model.save(tmp_path / "m.keras")
    x = np.random.default_rng(0).standard_normal((3, 10, 4)).astype(np.float32)
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), model.predict(x, verbose=0), atol=1e-6)
