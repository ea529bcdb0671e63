"""A compiled model saved as .keras comes back compiled (optimizer configuration, loss, metrics) in
fastgru and in Keras, as Keras's own files do."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import LSTM, Dense, Input


def compiled_model():
    model = fg.Sequential([Input((5, 3)), LSTM(4), Dense(3, activation="softmax")])
    model.compile(optimizer=fg.optimizers.RMSprop(learning_rate=0.02, momentum=0.5),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fastgru_reloads_the_compile_configuration(tmp_path, rng):
    model = compiled_model()
    x = rng.standard_normal((8, 5, 3)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = fg.load_model(tmp_path / "m.keras")
    opt = again._compiled.optimizer
    assert isinstance(opt, fg.optimizers.RMSprop) and opt.learning_rate == pytest.approx(0.02) and opt.momentum == 0.5
    assert type(again._compiled.loss).__name__ == "SparseCategoricalCrossentropy"
    names = list(again.evaluate(x, y, verbose=0, return_dict=True))
    assert names == ["accuracy", "loss"]  # (a dict's keys sorted, as Keras's)
    assert fg.load_model(tmp_path / "m.keras", compile=False).__dict__.get("_compiled") is None


def test_uncompiled_model_saves_no_compile_configuration(tmp_path):
    model = fg.Sequential([Input((5, 3)), LSTM(4)])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert "compile_config" not in json.loads(z.read("config.json"))


def test_keras_loads_it_compiled(tmp_path, keras):
    model = compiled_model()
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert type(theirs.optimizer).__name__ == "RMSprop"
    assert float(theirs.optimizer.learning_rate) == pytest.approx(0.02)
    assert theirs.optimizer.momentum == 0.5


def test_a_loss_name_and_no_metrics_are_written_as_keras_writes_them(tmp_path):
    """compile(loss="name") writes the name, metrics=None writes null (Keras's compile_config for the same call)."""
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        written = json.loads(z.read("config.json"))["compile_config"]
    assert written["loss"] == "sparse_categorical_crossentropy" and written["metrics"] is None
    again = fg.load_model(tmp_path / "m.keras")
    again.save(tmp_path / "again.keras")
    with zipfile.ZipFile(tmp_path / "again.keras") as z:
        assert json.loads(z.read("config.json"))["compile_config"] == written
