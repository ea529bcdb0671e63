"""Crash-safe saving: ``save``, ``save_weights`` and ``ModelCheckpoint`` write a temporary file in the same
folder, fsync it and rename it over the target, so a process killed (SIGKILL) in the middle of a save
loop always leaves the previous file loadable; nothing is overwritten in place."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.io.atomic import atomic_file
from fastgru.layers import GRU, Dense, Input

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import fastgru as fg
    from fastgru.layers import GRU, Dense, Input

    path, mode = sys.argv[1], sys.argv[2]
    model = fg.Sequential([Input(shape=(10, 50)), GRU(192), Dense(4)])
    if mode == "save":
        k = 0
        while True:
            k += 1
            weights = model.get_weights()
            weights[-1][:] = k  # the Dense bias tells which save a file comes from
            model.set_weights(weights)
            model.save(path)
            print(k, flush=True)
    else:  # ModelCheckpoint after every batch
        class Count(fg.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                print(batch, flush=True)

        model.compile(optimizer="sgd", loss="mse")
        x, y = np.ones((4, 10, 50), "float32"), np.ones((4, 4), "float32")
        checkpoint = fg.callbacks.ModelCheckpoint(path, save_freq=1, save_weights_only=mode == "weights")
        model.fit(x, y, epochs=10**6, batch_size=1, verbose=0, shuffle=False, callbacks=[checkpoint, Count()])
""")


def _kill_during_saves(path: Path, mode: str, rng, saves_before_kill: int) -> int:
    """Start a child saving in a loop, SIGKILL it at a random moment after a few saves; the number of
    saves it reported."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = 0
        deadline = time.monotonic() + 120
        while seen < saves_before_kill:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"saving child exited early: {proc.stderr.read()[-2000:]}")
            seen += 1
            assert time.monotonic() < deadline
        time.sleep(float(rng.uniform(0.0, 0.05)))  # somewhere inside a later save, most likely
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        return seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("mode", ["save", "checkpoint"])
def test_killed_mid_save_leaves_a_loadable_file(tmp_path, mode):
    rng = np.random.default_rng(8)
    path = tmp_path / "model.keras"
    for attempt in range(2):
        seen = _kill_during_saves(path, mode, rng, saves_before_kill=3 + 2 * attempt)
        model = fg.load_model(path)  # never a half-written file under the target name
        assert model.count_params() > 0
        if mode == "save":
            k = float(model.layers[-1].get_weights()[-1][0])
            assert k >= seen and k == int(k)  # one of the child's complete saves, at least the last one seen
        x = np.ones((2, 10, 50), "float32")
        assert np.isfinite(model.predict(x)).all()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.keras"]
    assert all(n.startswith(".model.keras.") and n.endswith(".tmp") for n in leftovers), leftovers


def test_killed_mid_checkpoint_of_weights_leaves_loadable_weights(tmp_path):
    path = tmp_path / "ckpt.weights.h5"
    _kill_during_saves(path, "weights", np.random.default_rng(3), saves_before_kill=4)
    model = fg.Sequential([Input(shape=(10, 50)), GRU(192), Dense(4)])
    model.load_weights(path)


def _model():
    return fg.Sequential([Input(shape=(6, 4)), GRU(5), Dense(3)])


def test_save_replaces_the_file_never_writes_in_place(tmp_path):
    path = tmp_path / "m.keras"
    model = _model()
    model.save(path)
    first = path.read_bytes()
    os.link(path, tmp_path / "old.keras")  # a second name for the first file's inode
    weights = model.get_weights()
    weights[-1][:] = 7.0
    model.set_weights(weights)
    model.save(path)
    assert (tmp_path / "old.keras").read_bytes() == first  # the old inode was not rewritten
    assert path.stat().st_ino != (tmp_path / "old.keras").stat().st_ino
    assert float(fg.load_model(path).layers[-1].get_weights()[-1][0]) == 7.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "old.keras"]  # no temporary left


def test_save_weights_is_atomic_too(tmp_path):
    path = tmp_path / "w.weights.h5"
    model = _model()
    model.save_weights(path)
    os.link(path, tmp_path / "old.weights.h5")
    model.save_weights(path)
    assert path.stat().st_ino != (tmp_path / "old.weights.h5").stat().st_ino
    other = _model()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_failing_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.keras"
    model = _model()
    model.save(path)
    before = path.read_bytes()
    from fastgru.io import keras_v3

    def broken(model, target, *args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(keras_v3, "write_weights_h5", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]


def test_atomic_file_keeps_permissions_of_the_replaced_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    with atomic_file(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o640
    with atomic_file(tmp_path / "fresh.bin") as f:
        f.write(b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "fresh.bin").stat().st_mode & 0o777 == 0o666 & ~umask
