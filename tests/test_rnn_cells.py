"""Keras's ``RNN(cell)`` layers: the committed files (tests/fixtures/make_rnn_cell_fixtures.py) loaded as GRU,
LSTM and SimpleRNN layers, run and trained to Keras's numbers without TensorFlow; live Keras models (graphs
passing states, files written back); fastgru's own ``RNN(GRUCell(...))``; the cells fastgru refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import ModelFileError, UnsupportedKerasFeature
from fastgru.io.keras_rnn_cells import rnn_as_layer

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def test_rnn_cells_file_runs_and_trains_as_keras():
    data = np.load(FILES / "rnn_cells.npz")
    model = fg.load_model(FILES / "rnn_cells.keras")
    assert [type(layer).__name__ for layer in model.layers] == ["Masking", "GRU", "Bidirectional", "SimpleRNN",
                                                                "Dense"]
    assert [layer.name for layer in model.layers][1:4] == ["rnn", "bidirectional", "rnn_2"]
    gru = model.layers[1]
    assert (gru.reset_after, gru.go_backwards, gru.return_sequences) == (False, True, True)
    np.testing.assert_allclose(model.predict(data["x"]), data["pred"], rtol=1e-5, atol=1e-6)
    history = model.fit(data["x"], data["y"], epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(history, data["loss"], rtol=1e-5)
    np.testing.assert_allclose(model.predict(data["x"]), data["pred_after"], rtol=1e-4, atol=1e-5)


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
    with pytest.raises(ValueError, match="StackedRNNCells"):
        fg.layers.RNN([fg.layers.GRUCell(3), fg.layers.GRUCell(3)])
    with pytest.raises(TypeError, match="GRUCell, LSTMCell or SimpleRNNCell, found GRU"):
        fg.layers.RNN(fg.layers.GRU(3))


def _cell(class_name, **config):
    return {"class_name": class_name, "config": {"name": "c", "units": 3, **config}}


def test_rnn_configs_fastgru_refuses():
    config, where = {"name": "rnn", "return_sequences": True}, "rnn (RNN)"
    assert rnn_as_layer({**config, "cell": _cell("LSTMCell", unit_forget_bias=False)}, where, "f.keras") == (
        "LSTM", {"units": 3, "unit_forget_bias": False, "name": "rnn", "return_sequences": True})
    assert rnn_as_layer({**config, "cell": _cell("GRUCell", trainable=False)}, where, "f.keras")[1]["trainable"] is False
    with pytest.raises(UnsupportedKerasFeature, match=r"RNN\(StackedRNNCells\) is not supported \(stack GRU"):
        rnn_as_layer({**config, "cell": {"class_name": "StackedRNNCells", "config": {"cells": []}}}, where, "f")
    with pytest.raises(UnsupportedKerasFeature, match=r"RNN\(MinimalRNNCell\) is not supported .* custom cell"):
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
    stacked = keras.Sequential([keras.Input((7, 5)), layers.RNN([layers.GRUCell(3), layers.GRUCell(2)])])
    stacked.save(tmp_path / "s.keras")
    with pytest.raises(UnsupportedKerasFeature, match=r"layer rnn_\d+ \(RNN\): RNN\(StackedRNNCells\)"):
        fg.load_model(tmp_path / "s.keras")
