"""``python -m fastgru.warmup`` fills Numba's cache: a later process that loads and runs a GRU, LSTM,
SimpleRNN or Bidirectional model compiles nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cache_entries(log: str, action: str) -> set[str]:
    """The cache files a process's ``NUMBA_DEBUG_CACHE`` log says it ``action`` ("loaded from", "saved to")."""
    return {line.split("'")[1] for line in log.splitlines() if f"[cache] data {action} '" in line}


def test_warmup_fills_the_cache_for_later_processes():
    """Both processes use the suite's own cache (the package's ``__pycache__``), which the test workers may be
    filling at the same time: what the warm-up compiles, they load, instead of each compiling it again. So
    the check is not "the warm-up saved everything" (a worker may have been first) but "every kernel the
    later process runs is one the warm-up compiled or loaded, and the later process compiles nothing"."""
    # float32 only, to keep the test short (the command warms float64 too, the same way)
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    warm = "from fastgru.warmup import warm_kernels; warm_kernels(dtypes=('float32',))"
    done = subprocess.run([sys.executable, "-c", warm], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    warm_log = done.stdout + done.stderr
    warmed = _cache_entries(warm_log, "loaded from") | _cache_entries(warm_log, "saved to")
    code = textwrap.dedent("""
        import numpy as np
        import fastgru as fg
        from fastgru.layers import GRU, LSTM, Bidirectional, Conv1D, Dense, Input, SimpleRNN
        x = np.ones((3, 5, 4), "float32")
        for layer in (GRU(6), GRU(6, reset_after=False), LSTM(6), Bidirectional(GRU(6)), SimpleRNN(6),
                      Bidirectional(SimpleRNN(6))):
            fg.Sequential([Input(shape=(5, 4)), layer, Dense(2)]).predict(x)
        fg.Sequential([Input(shape=(5, 4)), Conv1D(3, 3, padding="causal"), GRU(6), Dense(2)]).predict(x)
        fg.set_batch_invariant(True)
        fg.Sequential([Input(shape=(5, 4)), LSTM(6), Dense(2)]).predict(x)
        fg.Sequential([Input(shape=(5, 4)), SimpleRNN(6), Dense(2)]).predict(x)
    """)
    later = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert later.returncode == 0, later.stderr[-2000:]
    log = later.stdout + later.stderr
    assert "data saved" not in log, "a kernel was compiled after the warm-up:\n" + log[-3000:]
    loaded = _cache_entries(log, "loaded from")
    assert loaded, log[-3000:]
    assert loaded <= warmed, f"kernels the warm-up neither compiled nor loaded: {sorted(loaded - warmed)}"


def test_warmup_command_line(capsys, monkeypatch):
    from fastgru import warmup

    seen = {}
    monkeypatch.setattr(warmup, "warm_kernels", lambda training: seen.setdefault("training", training) and 0.0)
    monkeypatch.setattr(warmup, "compile_bytecode", lambda: seen.setdefault("bytecode", True))
    assert warmup.main(["--training"]) == 0
    assert seen == {"training": True, "bytecode": True}
    assert capsys.readouterr().out.startswith("fastgru kernels ready")


def test_warmup_rejects_unknown_arguments():
    done = subprocess.run([sys.executable, "-m", "fastgru.warmup", "--nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr


def test_warmup_byte_compiles_fastgru(tmp_path, monkeypatch):
    """Every module of the package gets its .pyc (what PYTHONDONTWRITEBYTECODE=1 imports never write)."""
    import importlib.util
    import shutil

    import fastgru
    from fastgru import warmup

    copy = tmp_path / "fastgru"
    shutil.copytree(Path(fastgru.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__", "*.nb?"))
    monkeypatch.setattr(fastgru, "__file__", str(copy / "__init__.py"))
    assert warmup.compile_bytecode() is True
    sources = sorted(copy.rglob("*.py"))
    assert len(sources) > 50
    for source in sources:
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source
    # a read-only installation (root writes anyway, so the check is simulated): nothing, and False
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert warmup.compile_bytecode() is False
