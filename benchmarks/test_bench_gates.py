"""pytest-benchmark: the fused GRU gate rows (``fastgru._kernels.fused_gates.gru_gate_row``, explicit
full-width vectors) on the rows of one step of S1-S5, next to the element loop they replaced (the same
formulas written per unit, which LLVM vectorises only 8 floats wide on AVX-512 CPUs).

    pytest benchmarks/test_bench_gates.py --benchmark-only

Not part of the test suite. One benchmark round is 100 steps' gate math from compiled code; before a
shape is timed, the two results are compared (they are bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastgru._kernels.activations import FMA_ONLY, ONE_F32, sigmoid_rational, tanh_rational
from fastgru._kernels.fused_gates import gru_gate_row
from fastgru._kernels.packed import _data
from fastgru.bench import SHAPES

REPS = 100


@njit(cache=True, fastmath=FMA_ONLY, error_model="numpy")
def element_loop(x, rec, b, h, out, reps):
    """The element loop (``gru_unit`` over each row) the vector rows replaced."""
    nb, hdim = h.shape
    h2 = 2 * hdim
    for _ in range(reps):
        for bb in range(nb):
            xrow, rrow, hrow, orow = x[bb], rec[bb], h[bb], out[bb]
            for j in range(hdim):
                z = sigmoid_rational(xrow[j] + rrow[j] + b[j])
                r = sigmoid_rational(xrow[hdim + j] + rrow[hdim + j] + b[hdim + j])
                hh = tanh_rational(xrow[h2 + j] + r * (rrow[h2 + j] + b[h2 + j]))
                hn = z * hrow[j] + (ONE_F32 - z) * hh
                hrow[j] = hn
                orow[j] = hn


@njit(cache=True)
def vector_rows(x, rec, b, h, out, reps):
    nb, hdim = h.shape
    for _ in range(reps):
        for bb in range(nb):
            hp = _data(h[bb])
            gru_gate_row(_data(x[bb]), _data(rec[bb]), _data(b), _data(b), hp, hp, _data(out[bb]), hp, hdim, 0, 0)


@pytest.fixture(scope="module", params=list(SHAPES))
def rows(request):
    bsz, _, _, units = SHAPES[request.param]
    rng = np.random.default_rng(0)
    x, rec = (rng.standard_normal((bsz, 3 * units)).astype(np.float32) for _ in range(2))
    b = rng.standard_normal(3 * units).astype(np.float32)
    h = (0.5 * rng.standard_normal((bsz, units))).astype(np.float32)
    ours, theirs = h.copy(), h.copy()
    out = np.empty_like(h)
    vector_rows(x, rec, b, ours, out, 3)
    element_loop(x, rec, b, theirs, out, 3)
    np.testing.assert_array_equal(ours, theirs)
    return x, rec, b, h, out


def test_gate_rows_vector(benchmark, rows):
    x, rec, b, h, out = rows
    benchmark(vector_rows, x, rec, b, h.copy(), out, REPS)


def test_gate_rows_element_loop(benchmark, rows):
    x, rec, b, h, out = rows
    benchmark(element_loop, x, rec, b, h.copy(), out, REPS)
