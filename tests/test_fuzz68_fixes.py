"""Fuzz round 68 (hostile files): a Functional chain's ``inbound_nodes`` of the wrong kinds, and optimizer options of
the wrong kinds in a file's training configuration, are the file's fault, said by name (never a bare TypeError from
inside the loader or the first training step)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import ModelFileError


def _rewritten(path, out, edit):
    """A copy of the ``.keras`` file ``path`` at ``out`` with its config.json passed through ``edit``."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    return out


@pytest.fixture(scope="module")
def chain_file(tmp_path_factory):
    inputs = fg.Input((5, 3))
    model = fg.Model(inputs, fg.layers.Dense(1)(fg.layers.GRU(4)(inputs)))
    model.compile(fg.optimizers.RMSprop(0.01, momentum=0.5), "mse")
    model.fit(np.ones((4, 5, 3), "float32"), np.zeros((4, 1), "float32"), verbose=0)
    path = tmp_path_factory.mktemp("fuzz68") / "chain.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("where, value", [
    ((0, "inbound_nodes"), 5), ((1, "inbound_nodes", 0, "args"), 5), ((1, "inbound_nodes", 0, "args"), {"a": 1}),
    ((1, "inbound_nodes", 0, "kwargs"), "x"), ((1, "inbound_nodes", 0, "kwargs"), [1, 2]),
])
def test_a_chains_inbound_nodes_of_other_kinds_are_the_files_fault(chain_file, tmp_path, where, value):
    def edit(config):
        target = config["config"]["layers"]
        for key in where[:-1]:
            target = target[key]
        target[where[-1]] = value

    damaged = _rewritten(chain_file, tmp_path / "damaged.keras", edit)
    with pytest.raises(ModelFileError, match="its inbound_nodes should be a list of nodes with 'args'"):
        fg.load_model(damaged)
    text = json.dumps(json.load(zipfile.ZipFile(damaged).open("config.json")))
    with pytest.raises(ModelFileError, match="its inbound_nodes should be a list"):
        fg.models.model_from_json(text)


@pytest.mark.parametrize("option, value", [("rho", "x"), ("momentum", None), ("momentum", []), ("centered", 2),
                                           ("epsilon", float("nan"))])
def test_optimizer_options_of_other_kinds_leave_the_model_uncompiled_saying_which(chain_file, tmp_path, option,
                                                                                   value):
    def edit(config):
        config["compile_config"]["optimizer"]["config"][option] = value

    damaged = _rewritten(chain_file, tmp_path / "damaged.keras", edit)
    with pytest.warns(UserWarning, match=f"RMSprop: option '{option}' should be"):
        model = fg.load_model(damaged)
    assert model.predict(np.ones((2, 5, 3), "float32")).shape == (2, 1)  # (predicting needs no compile)
    with pytest.raises(fg.errors.NotCompiledError, match=f"option '{option}' should be"):
        model.train_on_batch(np.ones((2, 5, 3), "float32"), np.zeros((2, 1), "float32"))
    with pytest.raises(TypeError, match=f"option '{option}' should be"):
        fg.optimizers.RMSprop.from_config({option: value})
    assert fg.load_model(chain_file).optimizer.momentum == 0.5  # (the file as written: compiled, its state kept)
