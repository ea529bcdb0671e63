"""LSTM and Bidirectional model files: the committed fixtures (Keras 3 .keras/.h5/.weights.h5 and a
tf_keras .h5, made by tests/fixtures/make_fixtures.py) load and predict like Keras without TensorFlow;
saves round-trip; unsupported or malformed wrappers give specific errors."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Input, Masking

FILES = Path(__file__).parent / "fixtures" / "files"
ATOL = 2e-5


def expected(name):
    with np.load(FILES / f"{name}.npz") as f:
        return f["x"], f["y"]


@pytest.mark.parametrize("filename,name", [
    ("k3_lstm_bidirectional.keras", "k3_lstm_bidirectional"),
    ("k3_lstm_bidirectional.h5", "k3_lstm_bidirectional"),
    ("k2_lstm_bidirectional.h5", "k2_lstm_bidirectional"),
    ("k3_simple_rnn.keras", "k3_simple_rnn"),
    ("k3_simple_rnn.h5", "k3_simple_rnn"),
    ("k2_simple_rnn.h5", "k2_simple_rnn"),
])
def test_fixture_predicts_like_keras(filename, name):
    x, y = expected(name)
    model = fg.load_model(FILES / filename)
    np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


def test_fixture_layers_and_options_survive():
    model = fg.load_model(FILES / "k3_lstm_bidirectional.keras")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Masking", "Bidirectional", "Bidirectional", "Bidirectional", "LSTM", "Bidirectional", "Dense"]
    bi = model.layers[1]
    assert bi.merge_mode == "concat" and isinstance(bi.forward_layer, LSTM) and bi.backward_layer.go_backwards
    assert bi.forward_layer.name == "forward_lstm" and bi.backward_layer.name == "backward_lstm"
    assert model.layers[2].forward_layer.reset_after is False and model.layers[2].merge_mode == "mul"
    assert model.layers[3].forward_layer.use_bias is False
    assert model.layers[4].recurrent_activation == "hard_sigmoid" and model.layers[4].go_backwards
    assert model.layers[1].count_params() == 2 * (3 * 16 + 4 * 16 + 16)


def test_load_weights_into_zeroed_model():
    x, y = expected("k3_lstm_bidirectional")
    model = fg.load_model(FILES / "k3_lstm_bidirectional.keras")
    for source in ("k3_lstm_bidirectional.weights.h5", "k3_lstm_bidirectional.h5"):
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        model.load_weights(FILES / source)
        np.testing.assert_allclose(model.predict(x), y, atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_save_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    model = fg.Sequential([Input((6, 3)), Masking(), Bidirectional(LSTM(4, return_sequences=True)),
                           Bidirectional(GRU(3, reset_after=False), merge_mode="ave"), Dense(2)])
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    x[0, 4:] = 0
    target = tmp_path / f"m{suffix}"
    if suffix == ".keras":
        model.save(target)
        again = fg.load_model(target)
    else:
        model.save_weights(target)
        again = fg.Sequential([Input((6, 3)), Masking(), Bidirectional(LSTM(4, return_sequences=True)),
                               Bidirectional(GRU(3, reset_after=False), merge_mode="ave"), Dense(2)])
        again.load_weights(target)
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def _edit_config(tmp_path, edit) -> Path:
    source = FILES / "k3_lstm_bidirectional.keras"
    target = tmp_path / "edited.keras"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config["config"]["layers"][2]["config"])
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return target


def test_bidirectional_of_an_unsupported_layer_is_refused(tmp_path):
    def edit(cfg):
        cfg["layer"]["class_name"] = "ConvLSTM1D"

    with pytest.raises(fg.UnsupportedKerasFeature, match=r"Bidirectional\(ConvLSTM1D\) is not supported"):
        fg.load_model(_edit_config(tmp_path, edit))


@pytest.mark.parametrize("edit,error,message", [
    (lambda cfg: cfg.update(merge_mode="max"), fg.ModelFileError, "merge_mode should be one of"),
    (lambda cfg: cfg.update(layer=[1, 2]), fg.ModelFileError, "expected a layer entry"),
    (lambda cfg: cfg["layer"]["config"].update(units=-3), fg.ModelFileError, "positive integer"),
    (lambda cfg: cfg["backward_layer"]["config"].update(go_backwards=False), fg.ModelFileError, "go_backwards"),
    (lambda cfg: cfg.update(weird_option=3), fg.UnsupportedKerasFeature, "weird_option"),
])
def test_malformed_bidirectional_configs(tmp_path, edit, error, message):
    with pytest.raises(error, match=message):
        fg.load_model(_edit_config(tmp_path, edit))


def test_missing_backward_weights_is_a_file_error(tmp_path):
    import h5py

    source = FILES / "k3_lstm_bidirectional.keras"
    target = tmp_path / "damaged.keras"
    shutil.copy(source, target)
    with zipfile.ZipFile(source) as zin:
        weights = tmp_path / "w.h5"
        weights.write_bytes(zin.read("model.weights.h5"))
    with h5py.File(weights, "a") as f:
        del f["layers/bidirectional/backward_layer/cell/vars/1"]
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = weights.read_bytes() if item.filename == "model.weights.h5" else zin.read(item.filename)
            zout.writestr(item, data)
    with pytest.raises(fg.ModelFileError, match="backward_layer"):
        fg.load_model(target)


def test_live_keras_opens_what_fastgru_saves(tmp_path, keras):
    rng = np.random.default_rng(1)
    model = fg.Sequential([Input((5, 2)), Bidirectional(LSTM(3, return_sequences=True), merge_mode="mul"),
                           Bidirectional(GRU(2)), Dense(1)])
    model.set_weights([rng.standard_normal(w.shape) * 0.5 for w in model.get_weights()])
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    x = rng.standard_normal((4, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(theirs.predict(x, verbose=0), model.predict(x), atol=2e-6)
    ours = fg.from_keras(theirs)
    np.testing.assert_allclose(ours.predict(x), model.predict(x), atol=1e-7)
