"""``load_weights``'s ``skip_mismatch``, ``by_name`` and ``objects_to_skip``, and sharded weights
(``save_weights("m.weights.json", max_shard_size=...)``), each as Keras 3's; the sharded map checked as a
hostile file."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import ModelFileError

TINY_SHARDS = 0.000001  # GB: about 1 KiB, so that the small models below take several shards


def _model(features=3, units=2, seed=0):
    model = fg.Sequential([fg.Input((6, features)), fg.layers.GRU(8, return_sequences=True, name="g1"),
                           fg.layers.LSTM(4, name="l1"), fg.layers.Dense(units, name="d")])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_sharded_weights_round_trip(tmp_path):
    source, target = _model(seed=0), _model(seed=1)
    source.save_weights(tmp_path / "m.weights.json", max_shard_size=TINY_SHARDS)
    shards = sorted(p.name for p in tmp_path.glob("m_*.weights.h5"))
    assert len(shards) > 2 and shards[0] == "m_00000.weights.h5"
    weight_map = json.loads((tmp_path / "m.weights.json").read_text())["weight_map"]
    assert set(weight_map) >= {"/layers/gru/cell/vars", "/layers/dense/vars"}  # (Keras: class-name paths)
    target.load_weights(tmp_path / "m.weights.json")
    _same(target.get_weights(), source.get_weights())
    with pytest.raises(ValueError, match="exceeds the maximum shard size"):
        source.save_weights(tmp_path / "n.weights.json", max_shard_size=1e-8)
    with pytest.raises(ValueError, match=r"\.weights\.json"):
        source.save_weights(tmp_path / "n.h5", max_shard_size=1.0)
    with pytest.warns(UserWarning, match="renamed to .*n.weights.json"):  # (as Keras)
        source.save_weights(tmp_path / "n.weights.h5", max_shard_size=1.0)
    assert (tmp_path / "n.weights.json").exists() and (tmp_path / "n_00000.weights.h5").exists()
    with pytest.raises(TypeError, match="list of layers"):
        target.load_weights(tmp_path / "m.weights.json", objects_to_skip=target.layers[0])


def _hostile(tmp_path, edit) -> str:
    _model().save_weights(tmp_path / "m.weights.json", max_shard_size=TINY_SHARDS)
    return _edit_map(tmp_path, edit)


def _edit_map(tmp_path, edit) -> str:
    config = json.loads((tmp_path / "m.weights.json").read_text())
    edit(config)
    (tmp_path / "m.weights.json").write_text(json.dumps(config))
    return str(tmp_path / "m.weights.json")


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["weight_map"].update({"/layers/dense/vars": ["../outside.weights.h5"]}), "in the map's own folder"),
    (lambda c: c["weight_map"].update({"/layers/dense/vars": ["/etc/passwd"]}), "in the map's own folder"),
    (lambda c: c["weight_map"].update({"/layers/dense/vars": ["gone_00009.weights.h5"]}), "missing beside the map"),
    (lambda c: c["weight_map"].update({"/layers/dense/vars": c["weight_map"]["/layers/lstm/cell/vars"][-1]}),
     "missing HDF5 group /layers/dense/vars"),
    (lambda c: c.pop("weight_map"), "no weight_map"),
    (lambda c: c["weight_map"].update({"/layers/dense/vars": [3]}), "should name shard files"),
])
def test_a_hostile_shard_map_is_refused(tmp_path, edit, message):
    """A map naming a file outside its folder (or an absolute path) is refused before anything is opened; the
    model keeps its weights."""
    model = _model(seed=5)
    before = model.get_weights()
    with pytest.raises(ModelFileError, match=message):
        model.load_weights(_hostile(tmp_path, edit))
    _same(model.get_weights(), before)


def test_a_variable_in_two_shards_and_oversized_shards_are_refused(tmp_path):
    def twice(config):  # the Dense's variables also claimed by the shard that now holds a copy of its bias
        config["weight_map"]["/layers/dense/vars"].append(other)

    path = _hostile(tmp_path, lambda c: None)
    import h5py

    other = json.loads((tmp_path / "m.weights.json").read_text())["weight_map"]["/layers/lstm/cell/vars"][-1]
    with h5py.File(tmp_path / other, "a") as f:  # declares 4 GB, holds nothing
        f.create_dataset("layers/lstm/cell/vars/7", shape=(1 << 30,), dtype="float32")
    with pytest.raises(ModelFileError, match="more than the model can need"):
        _model().load_weights(path)
    with h5py.File(tmp_path / other, "a") as f:  # instead, a copy of the Dense's bias
        del f["layers/lstm/cell/vars/7"]
        f.create_dataset("layers/dense/vars/1", data=np.zeros(2, np.float32))
    _edit_map(tmp_path, twice)
    with pytest.raises(ModelFileError, match="more than one shard"):
        _model().load_weights(path)


def test_skip_mismatch_and_by_name_without_keras(tmp_path):
    source = _model(features=3, units=2)
    source.save_weights(tmp_path / "a.weights.h5")
    target = _model(features=5, units=3, seed=7)
    before = target.get_weights()
    with pytest.raises(ModelFileError, match="shape"):
        target.load_weights(tmp_path / "a.weights.h5")
    _same(target.get_weights(), before)
    with pytest.warns(UserWarning, match="skip_mismatch"):
        target.load_weights(tmp_path / "a.weights.h5", skip_mismatch=True)
    got = target.get_weights()  # the GRU's kernel (new features) and the Dense (new head) kept; the LSTM loaded
    _same(got[3:6], source.get_weights()[3:6])
    _same(got[:3] + got[6:], before[:3] + before[6:])
    kept = _model(seed=3)
    kept.load_weights(tmp_path / "a.weights.h5", objects_to_skip=[kept.get_layer("l1")])
    _same(kept.get_weights()[3:6], _model(seed=3).get_weights()[3:6])
    _same(kept.get_weights()[:3] + kept.get_weights()[6:], source.get_weights()[:3] + source.get_weights()[6:])
    for kwargs, message in [({"by_name": True}, "by_name"), ({"objects_to_skip": [1]}, "not a layer"),
                            ({"other": 1}, "Invalid keyword")]:
        with pytest.raises((ValueError, TypeError), match=message):
            target.load_weights(tmp_path / "a.weights.h5", **kwargs)


@pytest.mark.keras
def test_load_weights_options_as_keras(keras, tmp_path):
    """Keras's sharded files load in fastgru and fastgru's in Keras; ``skip_mismatch`` (a new feature count and
    a new head), ``by_name`` and ``objects_to_skip`` leave the same weights as Keras's ``load_weights``."""
    L = keras.layers
    keras.utils.set_random_seed(0)

    def keras_model(features, units, names=("g1", "l1", "d")):
        return keras.Sequential([L.Input((6, features)), L.GRU(8, return_sequences=True, name=names[0]),
                                 L.LSTM(4, name=names[1]), L.Dense(units, name=names[2])])

    source = keras_model(3, 2)
    source.save_weights(tmp_path / "a.weights.h5")
    source.save(tmp_path / "a.h5")
    source.save_weights(tmp_path / "a.weights.json", max_shard_size=TINY_SHARDS)
    mine = fg.load_model(tmp_path / "a.h5")
    mine.set_weights([w * 0 for w in mine.get_weights()])
    mine.load_weights(tmp_path / "a.weights.json")
    _same(mine.get_weights(), source.get_weights())
    mine.save_weights(tmp_path / "f.weights.json", max_shard_size=TINY_SHARDS)
    theirs = keras_model(3, 2)
    theirs.load_weights(tmp_path / "f.weights.json")
    _same(theirs.get_weights(), source.get_weights())
    skip = {"skip_mismatch": True}
    cases = [("a.weights.h5", skip, (5, 3), None), ("a.weights.json", skip, (5, 3), None), ("a.h5", skip, (5, 3), None),
             ("a.h5", {**skip, "by_name": True}, (5, 3), None), ("a.h5", {"by_name": True}, (3, 2), ("g1", "x", "d")),
             ("a.weights.h5", {"objects_to_skip": "l1"}, (3, 2), None)]
    for i, (name, options, (features, units), names) in enumerate(cases):
        _load_into_both(keras_model(features, units, names or ("g1", "l1", "d")), tmp_path / name, options,
                        tmp_path / f"b{i}.keras")


def _load_into_both(theirs, path, options: dict, saved) -> None:
    """The Keras model ``theirs`` and fastgru's model of it load ``path`` with ``options`` (``objects_to_skip``: a
    layer name): the same weights in both afterwards."""
    theirs.save(saved)
    mine = fg.load_model(saved)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model in (theirs, mine):
            given = dict(options)
            if "objects_to_skip" in given:
                given["objects_to_skip"] = [model.get_layer(given["objects_to_skip"])]
            model.load_weights(path, **given)
    _same(mine.get_weights(), theirs.get_weights())


@pytest.mark.keras
def test_load_weights_options_on_a_graph_with_a_nested_model_as_keras(keras, tmp_path):
    L = keras.layers
    keras.utils.set_random_seed(1)

    def graph(features, units):
        i, j, inner_in = L.Input((6, features)), L.Input((4,)), L.Input((6, features))
        encoder = keras.Model(inner_in, L.GRU(5, name="ig")(inner_in), name="enc")
        return keras.Model([i, j], L.Dense(units, name="head")(L.Concatenate()([encoder(i), L.Dense(3)(j)])))

    source = graph(3, 2)
    source.save_weights(tmp_path / "a.weights.h5")
    source.save(tmp_path / "a.h5")
    cases = [("a.weights.h5", {"skip_mismatch": True}, (5, 2)), ("a.weights.h5", {"skip_mismatch": True}, (3, 4)),
             ("a.weights.h5", {"objects_to_skip": "enc"}, (3, 2)), ("a.h5", {"skip_mismatch": True}, (5, 4)),
             ("a.h5", {"skip_mismatch": True, "by_name": True}, (5, 4))]
    for i, (name, options, shape) in enumerate(cases):
        _load_into_both(graph(*shape), tmp_path / name, options, tmp_path / f"b{i}.keras")


@pytest.mark.keras
def test_weights_files_carry_the_optimizer_state_as_keras(keras, tmp_path):
    """Keras's save_weights writes a compiled model's optimizer state (optimizer/vars, also in a sharded map) and
    its load_weights restores it into an optimizer that has stepped; fastgru wrote none and read none."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 5)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")
    keras.utils.set_random_seed(3)
    km = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    km.compile("adam", "mse")
    km.fit(x, y, epochs=1, batch_size=8, verbose=0)
    km.save(tmp_path / "base.keras")
    theirs, mine = keras.models.load_model(tmp_path / "base.keras"), fg.load_model(tmp_path / "base.keras")
    for model in (theirs, mine):
        model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    theirs.save_weights(tmp_path / "k.weights.h5")
    mine.save_weights(tmp_path / "f.weights.h5")
    mine.save_weights(tmp_path / "f.weights.json", max_shard_size=TINY_SHARDS)
    for source in ("k.weights.h5", "f.weights.h5", "f.weights.json"):
        k2, f2 = keras.models.load_model(tmp_path / "base.keras"), fg.load_model(tmp_path / "base.keras")
        for model in (k2, f2):
            model.load_weights(tmp_path / source)
        assert int(k2.optimizer.iterations.numpy()) == int(f2.optimizer.iterations) == 8, source
        expected = k2.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
        got = f2.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=source)


def test_an_optimizer_that_has_not_stepped_skips_a_saved_state(tmp_path):
    x, y = np.ones((8, 6, 3), np.float32), np.ones((8, 2), np.float32)
    trained = _model()
    trained.compile("adam", "mse")
    trained.fit(x, y, epochs=1, batch_size=4, verbose=0)
    trained.save_weights(tmp_path / "m.weights.h5")
    fresh = _model(seed=2)
    fresh.compile("adam", "mse")
    with pytest.warns(UserWarning, match="has not stepped yet"):
        fresh.load_weights(tmp_path / "m.weights.h5")
    _same(fresh.get_weights(), trained.get_weights())
    assert int(fresh.optimizer.iterations) == 0
    resumed = _model(seed=3)
    resumed.compile("adam", "mse")
    resumed.fit(x, y, epochs=1, batch_size=8, verbose=0)  # (one step: built)
    resumed.load_weights(tmp_path / "m.weights.h5")
    assert int(resumed.optimizer.iterations) == 2


@pytest.mark.keras
def test_a_nested_sequential_lists_its_layers_as_keras(keras, tmp_path):
    """A nested Sequential (loaded as the Functional model of its layers) listed its InputLayer first in
    ``.layers``, where Keras's Sequential lists none: ``m.layers[0].layers[1]`` named another layer than in Keras,
    and ``objects_to_skip`` built from it skipped another layer."""
    L = keras.layers

    def build():
        inner = keras.Sequential([keras.Input((6, 3)), L.Conv1D(5, 2, name="c"),
                                  L.GRU(4, return_sequences=True, name="g")], name="inner")
        return keras.Sequential([keras.Input((6, 3)), inner, L.LSTM(3, name="l"), L.Dense(3, name="h")])

    keras.utils.set_random_seed(0)
    build().save_weights(tmp_path / "src.weights.h5")
    keras.utils.set_random_seed(1)
    theirs = build()
    theirs.save(tmp_path / "target.keras")
    mine = fg.load_model(tmp_path / "target.keras")
    assert [layer.name for layer in mine.layers[0].layers] == [layer.name for layer in theirs.layers[0].layers]
    for model in (theirs, mine):
        model.load_weights(tmp_path / "src.weights.h5", objects_to_skip=[model.layers[0].layers[1]])
    _same(mine.get_weights(), theirs.get_weights())
