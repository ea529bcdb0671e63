"""Keras's ``RNN(cell)`` layers: the committed files (tests/fixtures/make_rnn_cell_fixtures.py) loaded as GRU,
LSTM and SimpleRNN layers, run and trained to Keras's numbers without TensorFlow; live Keras models (graphs
passing states, files written back); fastgru's own ``RNN(GRUCell(...))``; the cells fastgru refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from keras_parity import assert_fixture_numbers, assert_keras_parity, assert_same_fit

import fastgru as fg
from fastgru.errors import ModelFileError, UnsupportedKerasFeature
from fastgru.io.keras_rnn_cells import rnn_as_layer

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def test_rnn_cells_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "rnn_cells.npz")
    model = fg.load_model(FILES / "rnn_cells.keras")
    assert [type(layer).__name__ for layer in model.layers] == ["Masking", "GRU", "Bidirectional", "SimpleRNN",
                                                                "Dense"]
    assert [layer.name for layer in model.layers][1:4] == ["rnn", "bidirectional", "rnn_2"]
    gru = model.layers[1]
    assert (gru.reset_after, gru.go_backwards, gru.return_sequences) == (False, True, True)
    assert_fixture_numbers(model, data, tmp_path)


def test_rnn_cells_legacy_h5_runs_as_tf_keras():
    data = np.load(FILES / "rnn_cells_k2.npz")
    model = fg.load_model(FILES / "rnn_cells_k2.h5")
    assert isinstance(model.layers[2].forward_layer, fg.layers.LSTM)
    np.testing.assert_allclose(model.predict(data["x"]), data["pred"], rtol=1e-5, atol=1e-6)


def test_rnn_cells_saved_back_as_layers(tmp_path):
    data = np.load(FILES / "rnn_cells.npz")
    model = fg.load_model(FILES / "rnn_cells.keras")
    model.save(tmp_path / "back.keras")
    again = fg.load_model(tmp_path / "back.keras")
    assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in model.layers]
    np.testing.assert_array_equal(again.predict(data["x"]), model.predict(data["x"]))


def test_fastgru_rnn_of_a_cell_is_the_layer(rng):
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)
    for cell, layer in [(fg.layers.GRUCell(6, reset_after=False), fg.layers.GRU(6, reset_after=False,
                                                                                 return_sequences=True)),
                        (fg.layers.LSTMCell(6, unit_forget_bias=False), fg.layers.LSTM(6, return_sequences=True)),
                        (fg.layers.SimpleRNNCell(6, activation="relu"), fg.layers.SimpleRNN(6, activation="relu",
                                                                                             return_sequences=True))]:
        rnn = fg.layers.RNN(cell, return_sequences=True, name="looped")
        assert type(rnn) is type(layer) and rnn.name == "looped"
        assert rnn.get_config()["activation"] == layer.get_config()["activation"]
        ours = fg.Sequential([fg.layers.Input((5, 4)), rnn])
        ref = fg.Sequential([fg.layers.Input((5, 4)), layer])
        ref.set_weights(ours.get_weights())
        np.testing.assert_array_equal(ours.predict(x), ref.predict(x))
    assert repr(fg.layers.GRUCell(3)) == "GRUCell(units=3)"
    for option in ("return_state", "go_backwards"):
        with pytest.raises(ValueError, match=f"RNN over a list of cells with {option}=True is not supported"):
            fg.layers.RNN([fg.layers.GRUCell(3), fg.layers.GRUCell(3)], **{option: True})
    with pytest.raises(TypeError, match=r"found \['GRUCell', 'GRU'\]"):
        fg.layers.RNN([fg.layers.GRUCell(3), fg.layers.GRU(3)])
    with pytest.raises(TypeError, match=r"SimpleRNNCell, or a Layer subclass with state_size .*, found GRU"):
        fg.layers.RNN(fg.layers.GRU(3))


def _cell(class_name, **config):
    return {"class_name": class_name, "config": {"name": "c", "units": 3, **config}}


def test_rnn_configs_fastgru_refuses():
    config, where = {"name": "rnn", "return_sequences": True}, "rnn (RNN)"
    assert rnn_as_layer({**config, "cell": _cell("LSTMCell", unit_forget_bias=False)}, where, "f.keras") == (
        "LSTM", {"units": 3, "unit_forget_bias": False, "name": "rnn", "return_sequences": True})
    assert rnn_as_layer({**config, "cell": _cell("GRUCell", trainable=False)}, where, "f.keras")[1]["trainable"] is False
    with pytest.raises(UnsupportedKerasFeature, match=r"RNN\(StackedRNNCells\) is not supported here \(a stack"):
        rnn_as_layer({**config, "cell": {"class_name": "StackedRNNCells", "config": {"cells": []}}}, where, "f")
    with pytest.raises(UnsupportedKerasFeature, match=r"RNN\(MinimalRNNCell\) is not supported .* custom_objects"):
        rnn_as_layer({**config, "cell": _cell("MinimalRNNCell")}, where, "f.keras")
    with pytest.raises(UnsupportedKerasFeature, match="RNN over a list of cells"):
        rnn_as_layer({**config, "cell": [_cell("GRUCell")]}, where, "f.keras")
    with pytest.raises(ModelFileError, match="option 'units' is given both by the RNN and by its GRUCell"):
        rnn_as_layer({**config, "units": 4, "cell": _cell("GRUCell")}, where, "f.keras")
    with pytest.raises(ModelFileError, match="expected a layer entry"):
        rnn_as_layer({**config, "cell": None}, where, "f.keras")
    with pytest.raises(ModelFileError, match="cell: the config of GRUCell is not an object"):
        rnn_as_layer({**config, "cell": {"class_name": "GRUCell", "config": []}}, where, "f.keras")


def test_keras_rnn_graph_passing_states_and_stacked_cells_refused(keras, rng, tmp_path):
    layers = keras.layers
    inputs = keras.Input((7, 5))
    out, state = layers.RNN(layers.GRUCell(4), return_state=True)(inputs)
    seq = layers.RNN(layers.GRUCell(4), return_sequences=True)(inputs, initial_state=state)
    graph = keras.Model(inputs, [out, layers.RNN(layers.LSTMCell(2), go_backwards=True)(seq)])
    graph.save(tmp_path / "g.keras")
    x = rng.normal(size=(3, 7, 5)).astype(np.float32)
    for model in (fg.load_model(tmp_path / "g.keras"), fg.from_keras(graph)):
        for ours, theirs in zip(model.predict(x), graph.predict(x, verbose=0)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    fg.load_model(tmp_path / "g.keras").save(tmp_path / "back.keras")  # written back as GRU/LSTM layers
    for ours, theirs in zip(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0),
                            graph.predict(x, verbose=0)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_stacked_cells_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "rnn_stacked.npz")
    model = fg.load_model(FILES / "rnn_stacked.keras")
    assert [type(layer).__name__ for layer in model.layers] == ["Masking", "GRU", "LSTM", "SimpleRNN", "Dense"]
    assert [layer.return_sequences for layer in model.layers[1:4]] == [True, True, False]
    assert_fixture_numbers(model, data, tmp_path)


def test_stacked_cells_refusals():
    from fastgru.io.keras_rnn_cells import stacked_layers

    cells = {"class_name": "StackedRNNCells", "config": {"cells": [_cell("GRUCell"), _cell("GRUCell", name="d")]}}
    layers = stacked_layers({"name": "rnn", "go_backwards": False, "cell": cells}, "rnn", "f.keras")
    assert [(c, cfg["name"], cfg["return_sequences"]) for c, cfg, _ in layers] == [("GRU", "rnn_c", True),
                                                                                    ("GRU", "rnn", False)]
    for option in ("return_state", "go_backwards"):
        with pytest.raises(UnsupportedKerasFeature, match=f"a stack of cells with {option}=True is not supported"):
            stacked_layers({"name": "rnn", option: True, "cell": cells}, "rnn", "f.keras")
    with pytest.raises(ModelFileError, match="two cells are named 'c'"):
        stacked_layers({"cell": [_cell("GRUCell"), _cell("LSTMCell")]}, "rnn", "f.keras")
    with pytest.raises(ModelFileError, match="has no list of cells"):
        stacked_layers({"cell": {"class_name": "StackedRNNCells", "config": {}}}, "rnn", "f.keras")


@pytest.mark.keras
def test_keras_stacked_cells_in_graphs(keras, rng, tmp_path):
    layers = keras.layers
    x = rng.normal(size=(6, 7, 5)).astype(np.float32)
    x[1, 5:] = 0
    inputs = keras.Input((7, 5))
    masked = layers.Masking()(inputs)
    stacked = layers.RNN([layers.GRUCell(4), layers.LSTMCell(3)], return_sequences=True)(masked)
    merged = layers.Add()([stacked, layers.GRU(3, return_sequences=True)(masked)])
    graph = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling1D()(merged)))
    graph.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in graph.get_weights()])
    assert_keras_parity(keras, graph, x, rng.normal(size=(6, 2)).astype(np.float32), tmp_path, "mse", batch_size=3)
    cell_model = keras.Sequential([keras.Input((7, 5)), layers.RNN([layers.GRUCell(3), layers.GRUCell(2)])])
    np.testing.assert_allclose(fg.from_keras(cell_model).predict(x), cell_model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    states = [keras.Input((3,)), keras.Input((2,))]
    given = keras.Model([inputs, *states], layers.RNN([layers.GRUCell(3), layers.GRUCell(2)])(inputs,
                                                                                              initial_state=states))
    given.save(tmp_path / "s.keras")
    with pytest.raises(UnsupportedKerasFeature, match="a stack of cells given initial states"):
        fg.load_model(tmp_path / "s.keras")


def _stack_in(module, **options):
    layers = module.layers
    return module.Sequential([module.Input((7, 3)), layers.Masking(),
                              layers.RNN([layers.GRUCell(4), layers.LSTMCell(3), layers.SimpleRNNCell(2)], **options),
                              layers.Dense(1)])


def test_fastgru_rnn_of_a_list_of_cells_is_their_stack(rng, tmp_path):
    x = rng.normal(size=(4, 7, 3)).astype(np.float32)
    x[1, 5:] = 0
    model = _stack_in(fg, return_sequences=True, name="stack")
    stack = model.layers[1]
    assert stack.name == "stack" and [type(layer).__name__ for layer in stack.layers] == ["GRU", "LSTM", "SimpleRNN"]
    assert [layer.return_sequences for layer in stack.layers] == [True, True, True]
    assert model.predict(x).shape == (4, 7, 1)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("stack (Sequential)" in line for line in lines)
    model.save(tmp_path / "stack.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "stack.keras").predict(x), model.predict(x))


@pytest.mark.keras
def test_fastgru_rnn_of_a_list_of_cells_matches_keras(keras, rng, tmp_path):
    x = rng.normal(size=(6, 7, 3)).astype(np.float32)
    x[:2, 5:] = 0  # (masked steps, which every cell skips)
    y = rng.normal(size=(6, 1)).astype(np.float32)
    km, model = _stack_in(keras), _stack_in(fg)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in km.get_weights()]
    model.set_weights(km.get_weights())
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.01), "mse")
    model.compile(fg.optimizers.Adam(0.01), "mse")
    assert_same_fit(model, km, x, y, epochs=3, batch_size=3)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "ours.keras")  # (a nested Sequential of the layers, which Keras reads to the same numbers)
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
