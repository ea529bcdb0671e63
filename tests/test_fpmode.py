"""Subnormal floats in the BPTT loops (``fastgru._kernels.fpmode``): gradients that vanish over a long
sequence are flushed to zero inside the kernels (as TensorFlow's kernels do) instead of running through
the slow subnormal path, and the caller's floating-point mode is left as it was."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastgru import ops
from fastgru._kernels import fpmode

TINY32 = np.finfo(np.float32).tiny  # the smallest normal float32


@njit(cache=True)
def _product_with_and_without_flush(a, b):
    old = fpmode.flush_denormals()
    flushed = a * b
    fpmode.restore_fp_mode(old)
    return flushed, a * b


def _assert_python_mode_unchanged():
    # NumPy runs in this thread's floating-point mode: 1e-20 * 1e-20 is a subnormal float32
    assert np.float32(1e-20) * np.float32(1e-20) > 0


def test_flush_and_restore():
    a = np.full(1, 1e-20, np.float32)
    flushed, kept = _product_with_and_without_flush(a, a)
    assert kept[0] > 0, "restored: the product is the subnormal 1e-40"
    assert (flushed[0] == 0) if fpmode.X86 else (flushed[0] == kept[0])
    _assert_python_mode_unchanged()


def _vanishing_problem(rng, gates, steps, bsz=3, d=4, h=9):
    """Weights so small that the gradient reaching the first steps underflows float32."""
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    w = (rng.standard_normal((d, gates * h)) * 0.3).astype(np.float32)
    u = (rng.standard_normal((h, gates * h)) * 0.02).astype(np.float32)
    b = np.zeros((2, 3 * h) if gates == 3 else gates * h, np.float32)
    d_last = rng.standard_normal((bsz, h)).astype(np.float32)
    return x, w, u, b, d_last


BACKWARD = {"gru": ops.gru_backward, "lstm": ops.lstm_backward, "simple_rnn": ops.simple_rnn_backward}


@pytest.mark.parametrize("cell", ["gru", "lstm", "simple_rnn"])
def test_vanishing_gradients_flush_to_zero_and_leave_the_callers_mode(cell):
    gates = {"gru": 3, "lstm": 4, "simple_rnn": 1}[cell]
    backward = BACKWARD[cell]
    # the sequence length at which the initial state's gradient (float64) lies in float32's subnormal
    # range: computed in float32 without flushing it would be subnormal there, not zero
    for steps in range(5, 400):
        x, w, u, b, d_last = _vanishing_problem(np.random.default_rng(7), gates, steps)
        ref = backward(*(a.astype(np.float64) for a in (x, w, u, b)), d_outputs=d_last.astype(np.float64))
        largest = np.abs(ref.dh0).max()
        if 1e-43 < largest < TINY32 / 2:
            break
    else:
        pytest.fail("no sequence length puts the initial state's gradient in float32's subnormal range")
    grads = backward(x, w, u, b, d_outputs=d_last)
    _assert_python_mode_unchanged()
    if fpmode.X86:
        assert np.all(grads.dh0 == 0), "the state gradient is flushed to zero, not carried as a subnormal"
    for got, want in zip(grads, ref):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
