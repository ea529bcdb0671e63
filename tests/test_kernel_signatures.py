"""Compile counts: no kernel is compiled for a ``Literal[...]`` argument type.

A constant passed from one compiled function to another (``gemm(a, b, c, True, False, False)``, a
first row index ``0``, ``save=True``) makes Numba compile a separate copy of the callee for that
literal value, which costs seconds of first-use compile for nothing (docs/benchmarks.md, start-up).
"""

from __future__ import annotations

import sys

import numpy as np
from numba.core.registry import CPUDispatcher

import fastgru as fg
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Input, SimpleRNN


def _fastgru_dispatchers():
    for name, module in list(sys.modules.items()):
        if name.startswith("fastgru"):
            for attr, value in vars(module).items():
                if isinstance(value, CPUDispatcher) and value.__module__ == name:
                    yield f"{name}.{attr}", value


def test_no_kernel_is_compiled_for_a_literal_argument():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3)).astype("float32")
    y = rng.standard_normal((6, 2)).astype("float32")
    for cell in (GRU, LSTM, SimpleRNN):
        kwargs = {"reset_after": False} if cell is GRU else {}
        for first in (cell(4, return_sequences=True, **kwargs), Bidirectional(cell(4, return_sequences=True))):
            model = fg.Sequential([Input(shape=(4, 3)), first, cell(4, recurrent_dropout=0.2), Dense(2)])
            model.compile("adam", "mse")
            model.fit(x, y, epochs=1, batch_size=3, verbose=0)
            model.predict(x, verbose=0)
    # kernels loaded from Numba's cache list only their own signatures (their callees' code comes with
    # them); in a fresh process with an empty cache (CI) every callee compiled so far is listed too
    checked = set()
    for name, dispatcher in _fastgru_dispatchers():
        for signature in dispatcher.signatures:
            checked.add(name.rsplit(".", 1)[-1])
            assert not any("Literal" in str(arg) for arg in signature), f"{name} compiled for {signature}"
    for cell in ("gru", "lstm", "simple_rnn"):
        assert {f"{cell}_forward_slice", f"{cell}_backward_slice", f"{cell}_grads_slice"} <= checked
    assert {"project_train_slice", "gru_forward_rdrop_slice"} <= checked
    # project_block is called only from compiled time loops: its signatures are listed when one of
    # them was compiled in this process (an empty cache, as CI's), not when all came from the cache
    loops = {name.rsplit(".", 1)[-1]: d for name, d in _fastgru_dispatchers() if name.endswith("_forward_slice")}
    if any(d.stats.cache_misses for d in loops.values()):
        assert "project_block" in checked
    else:
        assert all(d.stats.cache_hits for d in loops.values()), "every time loop loaded from Numba's cache"
