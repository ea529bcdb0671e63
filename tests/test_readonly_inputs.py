"""Read-only inputs (``np.frombuffer`` of a request's bytes, a memory map, an array whose writeable flag is off) run
on the kernels compiled for writeable ones: Numba types a read-only array apart, and would compile the time loop
again at the first such call (seconds of latency, after a warm-up too). The boundary copies them instead."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher

import fastgru as fg

L = fg.layers


def _signatures() -> int:
    """How many signatures the kernels have compiled (or loaded) in this process."""
    return sum(len(obj.signatures) for name, mod in list(sys.modules.items()) if name.startswith("fastgru._kernels")
               for obj in list(vars(mod).values()) if isinstance(obj, CPUDispatcher) and obj.__module__ == name)


def _read_only(a: np.ndarray) -> np.ndarray:
    frozen = np.frombuffer(a.tobytes(), a.dtype).reshape(a.shape)
    assert not frozen.flags.writeable
    return frozen


@pytest.mark.parametrize("first", [lambda: L.GRU(3, return_sequences=True), lambda: L.LSTM(3), lambda: L.SimpleRNN(3),
                                   lambda: L.Conv1D(3, 2)], ids=["GRU", "LSTM", "SimpleRNN", "Conv1D"])
def test_a_read_only_input_runs_on_the_kernels_already_compiled(first):
    x = np.random.default_rng(0).standard_normal((4, 6, 2)).astype(np.float32)
    model = fg.Sequential([fg.Input((6, 2)), first(), L.Flatten(), L.Dense(1)])
    expected = model.predict(x, verbose=0)
    model(x)
    before = _signatures()
    np.testing.assert_array_equal(model.predict(_read_only(x), verbose=0), expected)
    np.testing.assert_array_equal(model(_read_only(x)), expected)
    assert _signatures() == before


def test_the_ops_take_read_only_inputs_and_states_on_the_same_kernels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 2)).astype(np.float32)
    h0 = rng.standard_normal((3, 4)).astype(np.float32)
    w, u = rng.standard_normal((2, 12)).astype(np.float32), rng.standard_normal((4, 12)).astype(np.float32)
    b = rng.standard_normal((2, 12)).astype(np.float32)
    expected = fg.ops.gru_forward(x, w, u, b, h0=h0, return_sequences=True)[0]
    wl, ul = rng.standard_normal((2, 16)).astype(np.float32), rng.standard_normal((4, 16)).astype(np.float32)
    lstm = fg.ops.lstm_forward(x, wl, ul, np.zeros(16, np.float32), h0=h0, c0=h0)[0]
    before = _signatures()
    got = fg.ops.gru_forward(_read_only(x), w, u, b, h0=_read_only(h0), return_sequences=True)[0]
    np.testing.assert_array_equal(got, expected)
    got = fg.ops.lstm_forward(_read_only(x), wl, ul, np.zeros(16, np.float32), h0=_read_only(h0), c0=_read_only(h0))
    np.testing.assert_array_equal(got[0], lstm)
    assert _signatures() == before
