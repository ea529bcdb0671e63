"""Fixes from the fiftieth fuzz round, a red team of hostile model files against the newer loaders (sharded weights
maps, LoRA factors in legacy files, optimizer state in weights files, nested models, ``fastgru info``); each test
says what was wrong. No TensorFlow needed: the files are fastgru's own, damaged with h5py, zipfile and json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
import zipfile

import h5py
import numpy as np
import pytest

import fastgru as fg

L = fg.layers


def _dense_model(value: float = 0.0):
    model = fg.Sequential([L.Input((3,)), L.Dense(2, name="dense")])
    model.set_weights([np.full(w.shape, value, w.dtype) for w in model.get_weights()])
    return model


def _sharded(folder, value: float = 0.5):
    """A sharded weights map of a Dense model in ``folder`` and the shard holding its variables."""
    os.makedirs(folder, exist_ok=True)
    _dense_model(value).save_weights(folder / "m.weights.json", max_shard_size=1e-6)
    weight_map = json.loads((folder / "m.weights.json").read_text())["weight_map"]
    return folder / "m.weights.json", folder / weight_map["/layers/dense/vars"][0]


def test_a_shard_linking_outside_the_map_s_folder_is_refused(tmp_path):
    """A shard that was a symlink to a weights file elsewhere was followed: the weights came from another file."""
    _dense_model(7.0).save_weights(tmp_path / "secret.weights.h5")
    map_path, shard = _sharded(tmp_path / "downloaded")
    shard.unlink()
    shard.symlink_to(tmp_path / "secret.weights.h5")
    model = _dense_model()
    with pytest.raises(fg.ModelFileError, match="is a link to .*secret.weights.h5, outside the map's folder"):
        model.load_weights(map_path)
    assert not model.get_weights()[0].any()
    os.mkfifo(tmp_path / "fifo")
    shard.unlink()
    shard.symlink_to(tmp_path / "downloaded" / "x.weights.h5")  # (a dangling link: missing)
    with pytest.raises(fg.ModelFileError, match="is missing beside the map"):
        model.load_weights(map_path)
    shard.unlink()
    os.rename(tmp_path / "fifo", shard)  # (a FIFO named as the shard: refused without opening it)
    with pytest.raises(fg.ModelFileError, match="is not a regular file"):
        model.load_weights(map_path)


def test_a_shard_linking_inside_the_folder_loads(tmp_path):
    map_path, shard = _sharded(tmp_path)
    os.rename(shard, tmp_path / "real.weights.h5")
    shard.symlink_to("real.weights.h5")
    model = _dense_model()
    model.load_weights(map_path)
    np.testing.assert_array_equal(model.get_weights()[0], 0.5)


def test_a_deep_group_path_in_a_map_is_refused_at_once(tmp_path):
    """A weight_map key a million groups deep ("/a/a/.../a", 2 MB of JSON) made a million groups in memory: minutes
    and gigabytes, then the load succeeded. Keys are at most 256 deep, and groups exist only where a shard has them."""
    map_path, shard = _sharded(tmp_path)
    config = json.loads(map_path.read_text())
    config["weight_map"]["/a" * 1_000_000] = [shard.name]
    map_path.write_text(json.dumps(config))
    start = time.perf_counter()
    with pytest.raises(fg.ModelFileError, match="1000000 groups deep"):
        _dense_model().load_weights(map_path)
    assert time.perf_counter() - start < 10
    del config["weight_map"]["/a" * 1_000_000]
    config["weight_map"].update({f"/layers/missing_{i}/vars": [shard.name] for i in range(20_000)})
    map_path.write_text(json.dumps(config))
    model = _dense_model()
    model.load_weights(map_path)  # (groups no shard holds are left out, as before; nothing is made for them)
    np.testing.assert_array_equal(model.get_weights()[0], 0.5)


def test_an_opaque_array_in_a_shard_is_refused(tmp_path):
    """A shard's kernel stored as a 4-byte opaque type of shape (4, 1) was read as if it were bfloat16 and loaded
    as a (4, 2) float kernel; the same dataset in a plain weights file was refused."""
    map_path, shard = _sharded(tmp_path)
    raw = np.zeros((3, 1), "V4")
    with h5py.File(shard, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", data=raw)
    with pytest.raises(fg.ModelFileError, match="has dtype |V4, expected numbers"):
        _dense_model().load_weights(map_path)


def _lora_legacy_file(path, rank: int, written: bool) -> None:
    """A Keras 3 legacy .h5 model whose Dense has ``lora_rank`` and factors of that rank (chunked; their data
    written or not)."""
    model = fg.Sequential([fg.Input((4,)), L.Dense(3, name="dense")])
    model.save(path.with_suffix(".keras"))
    config = json.loads(zipfile.ZipFile(path.with_suffix(".keras")).read("config.json"))
    config["config"]["layers"][-1]["config"]["lora_rank"] = rank
    with h5py.File(path, "w") as f:
        f.attrs.update(model_config=json.dumps(config), keras_version="3.5.0", backend="tensorflow")
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [b"dense"]
        group = weights.create_group("dense")
        names = ["dense/bias:0", "dense/lora_kernel_a:0", "dense/lora_kernel_b:0", "dense/kernel:0"]
        group.attrs["weight_names"] = [n.encode() for n in names]
        group.create_dataset(names[0], data=np.zeros(3, "f"))
        if written:
            group.create_dataset(names[1], data=np.ones((4, rank), "f"), chunks=(4, 1), compression="gzip")
            group.create_dataset(names[2], data=np.ones((rank, 3), "f"), chunks=(1, 3), compression="gzip")
        else:
            group.create_dataset(names[1], shape=(4, rank), dtype="f", chunks=(4, 1024))
            group.create_dataset(names[2], shape=(rank, 3), dtype="f", chunks=(1024, 3))
        group.create_dataset(names[3], data=np.ones((4, 3), "f"))


@pytest.mark.parametrize("rank", [10 ** 11, 10 ** 8])
def test_a_lora_rank_the_file_does_not_back_allocates_nothing(tmp_path, rank):
    """A 12 KB legacy file with ``lora_rank=10**11`` and its factors declared, never written, failed with a bare
    MemoryError (1.46 TiB); with 10**8, 1.6 GB were allocated before the refusal. Every weight read now checks,
    before allocating, that the file can hold what the shape declares and that its data are stored."""
    _lora_legacy_file(tmp_path / "lora.h5", rank, written=False)
    with pytest.raises(fg.ModelFileError, match="far more data than the file holds"):
        fg.load_model(tmp_path / "lora.h5")


def test_unwritten_chunks_are_refused_before_the_array_is_allocated(tmp_path, monkeypatch):
    _lora_legacy_file(tmp_path / "lora.h5", 40_000, written=False)  # (640 KB of factors: within the size bound)
    sizes = []
    real_empty = np.empty
    monkeypatch.setattr("fastgru.io.h5utils.np.empty", lambda shape, *a, **k: sizes.append(shape) or
                        real_empty(shape, *a, **k))
    with pytest.raises(fg.ModelFileError, match="its data were never written"):
        fg.load_model(tmp_path / "lora.h5")
    assert (4, 40_000) not in sizes


def test_a_lora_file_with_its_factors_still_loads(tmp_path):
    _lora_legacy_file(tmp_path / "lora.h5", 2, written=True)
    model = fg.load_model(tmp_path / "lora.h5")
    np.testing.assert_allclose(model.layers[-1].get_weights()[0], 1.0 + 1.0 * 2)  # kernel + (alpha/rank) a @ b


def _with_optimizer_state(path, step, rate=0.001) -> None:
    with h5py.File(path, "a") as f:
        if "optimizer" in f:
            del f["optimizer"]
        group = f.create_group("optimizer/vars")
        group.create_dataset("0", data=step)
        group.create_dataset("1", data=np.float32(rate))


def _compiled():
    model = fg.Sequential([fg.Input((6, 3)), L.LSTM(4), L.Dense(2)])
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize("step", [np.int64(-5), np.float64(1e30), np.float64(2.5), np.float64(np.nan),
                                  np.array([1, 2, 3])])
def test_a_bad_step_count_for_an_optimizer_that_has_not_stepped_is_left_out(tmp_path, step):
    """Loading a weights file into a compiled model whose optimizer had not stepped took the file's step count
    unchecked: -5 trained to NaN weights, 1e30 made the model unsavable (bare OverflowError), [1, 2, 3] gave a
    generic damaged-data error. Now the count is checked as for an optimizer that has stepped: left out, with
    the warning the module's rule gives."""
    path = tmp_path / "w.weights.h5"
    _compiled().save_weights(path)
    _with_optimizer_state(path, step)
    model = _compiled()
    with pytest.warns(UserWarning, match="optimizer's saved state is not restored .the optimizer's step count"):
        model.load_weights(path)
    assert model.optimizer.iterations == 0
    x, y = np.ones((4, 6, 3), "f"), np.ones((4, 2), "f")
    model.fit(x, y, epochs=2, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    model.save_weights(tmp_path / "again.weights.h5")


def test_a_good_step_count_and_a_bad_rate(tmp_path):
    path = tmp_path / "w.weights.h5"
    _compiled().save_weights(path)
    _with_optimizer_state(path, np.float64(12.0), np.float32(np.inf))
    model = _compiled()
    with pytest.warns(UserWarning, match="saved learning rate inf is not a number; the configured rate is kept"):
        model.load_weights(path)
    assert model.optimizer.iterations == 12 and model.optimizer.learning_rate == pytest.approx(0.001)
    _with_optimizer_state(path, np.int64(7), np.float32(0.25))
    model = _compiled()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.load_weights(path)
    assert model.optimizer.iterations == 7 and model.optimizer.learning_rate == 0.25


def _nested_sequential_file(tmp_path, edit):
    inputs = fg.Input((4,), name="b")
    inner = fg.Sequential([fg.Input((4,)), L.Dense(3, name="in1"), L.Dense(4, name="in2")], name="inner")
    fg.Model(inputs, L.Dense(2, name="out")(inner(inputs)), name="outer").save(tmp_path / "base.keras")
    source = zipfile.ZipFile(tmp_path / "base.keras")
    config = json.loads(source.read("config.json"))
    edit(next(e for e in config["config"]["layers"] if e["class_name"] == "Sequential")["config"])
    with zipfile.ZipFile(tmp_path / "case.keras", "w") as z:
        for name in source.namelist():
            z.writestr(name, json.dumps(config) if name == "config.json" else source.read(name))
    return tmp_path / "case.keras"


@pytest.mark.parametrize("edit", [
    lambda c: c["layers"].__setitem__(0, None),
    lambda c: c["layers"].__setitem__(0, "x"),
    lambda c: c["layers"][0]["config"].__setitem__("batch_shape", [None, None]),
    lambda c: c["layers"][0]["config"].__setitem__("batch_shape", [4]),
    lambda c: c["layers"].insert(1, c["layers"][1]),
], ids=["null", "string", "unknown-features", "rank-1", "twice"])
def test_damage_inside_a_nested_sequential_is_a_model_file_error(tmp_path, edit):
    """The same damage at the top level was refused as ModelFileError; inside a Functional model's nested
    Sequential it raised bare AttributeError, TypeError or ValueError (and ``fastgru info`` exited 1 with a
    traceback)."""
    path = _nested_sequential_file(tmp_path, edit)
    with pytest.raises(fg.ModelFileError):
        fg.load_model(path)


def test_names_from_a_file_cannot_forge_lines_or_drive_the_terminal(tmp_path, capsys):
    """``fastgru info`` printed layer names verbatim: a name with ESC sequences retitled or cleared the terminal,
    one with a newline forged summary lines ("Total params: 0"), and a lone surrogate crashed it (and
    ``model.summary()``) with UnicodeEncodeError. Names are shown with such characters escaped."""
    hostile = "\x1b]0;PWNED\x07\x1b[2J\nTotal params: 0\nlegit"
    model = fg.Sequential([fg.Input((3,)), L.Dense(2, name="dense"), L.Dense(1, name="tail")], name="m\u2028x")
    model.save(tmp_path / "m.keras")
    source = zipfile.ZipFile(tmp_path / "m.keras")
    config = json.loads(source.read("config.json"))
    config["config"]["layers"][1]["config"]["name"] = hostile
    config["config"]["layers"][2]["config"]["name"] = "\ud800"
    with zipfile.ZipFile(tmp_path / "hostile.keras", "w") as z:
        for name in source.namelist():
            z.writestr(name, json.dumps(config) if name == "config.json" else source.read(name))
    loaded = fg.load_model(tmp_path / "hostile.keras")
    assert [layer.name for layer in loaded.layers] == [hostile, "\ud800"]  # (the names themselves are kept)
    loaded.summary()
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "Total params: 0" not in shown.splitlines()
    assert r"\x1b]0;PWNED\x07\x1b[2J\nTotal params: 0\nlegit (Dense)" in shown and r"\ud800 (Dense)" in shown
    assert r'Model: "m\u2028x"' in shown
    result = subprocess.run([sys.executable, "-m", "fastgru.cli", "info", str(tmp_path / "hostile.keras")],
                            capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout and b"\nTotal params: 0\n" not in result.stdout
    assert rb"\ud800 (Dense)" in result.stdout
    assert fg.summary.printable("plain names, \u00e9t\u00e9 \u6f22\u5b57 (Dense)") == \
        "plain names, \u00e9t\u00e9 \u6f22\u5b57 (Dense)"
