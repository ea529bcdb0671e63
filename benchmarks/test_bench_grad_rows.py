"""pytest-benchmark: the LSTM's BPTT gate gradients of one step's rows as explicit full-width vectors
(``fastgru._kernels.fused_gates.lstm_grad_row``), next to the element loop they replaced (the same
formulas per unit; LLVM left that loop scalar, unable to prove its rows do not overlap), on the rows of
S2 and S3.

    pytest benchmarks/test_bench_grad_rows.py --benchmark-only

Not part of the test suite. One benchmark round is 100 steps' gate gradients from compiled code;
before a shape is timed, the two results are compared (they are bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from fastgru._kernels.activations import ONE_F32
from fastgru._kernels.fpmode import flush_denormals, restore_fp_mode
from fastgru._kernels.fused_gates import lstm_grad_row
from fastgru._kernels.packed import _data
from fastgru.bench import SHAPES

REPS = 100


@njit(cache=True, error_model="numpy")
def element_loop(saved, gout, dh, dc, gb, carry, reps):
    """The one-pass element loop of ``lstm_backward_slice`` that the vector rows replaced."""
    hdim = dh.shape[1]
    h2, h3, h4 = 2 * hdim, 3 * hdim, 4 * hdim
    fp_mode = flush_denormals()  # as in the BPTT loop: the rounds feed gradients back in as gates
    for _ in range(reps):
        for bb in range(saved.shape[0]):
            crow, srow, grow, dhrow, dcrow = carry[bb], saved[bb], gb[bb], dh[bb], dc[bb]
            for j in range(hdim):
                crow[j] = 0.0
                gh = dhrow[j] + gout[j]
                ig, fg, gg, og, tc = srow[j], srow[hdim + j], srow[h2 + j], srow[h3 + j], srow[h4 + j]
                dct = dcrow[j] + gh * og * (ONE_F32 - tc * tc)
                dai = dct * gg * (ig * (ONE_F32 - ig))
                daf = dct * srow[5 * hdim + j] * (fg * (ONE_F32 - fg))
                dag = dct * ig * (ONE_F32 - gg * gg)
                dao = gh * tc * (og * (ONE_F32 - og))
                dcrow[j] = dct * fg
                dhrow[j] = 0.0
                grow[j], grow[hdim + j], grow[h2 + j], grow[h3 + j] = dai, daf, dag, dao
                srow[j], srow[hdim + j], srow[h2 + j], srow[h3 + j] = dai, daf, dag, dao
    restore_fp_mode(fp_mode)


@njit(cache=True)
def vector_rows(saved, gout, dh, dc, gb, carry, reps):
    hdim = dh.shape[1]
    fp_mode = flush_denormals()
    for _ in range(reps):
        for bb in range(saved.shape[0]):
            lstm_grad_row(_data(saved[bb]), _data(gout), _data(dh[bb]), _data(dc[bb]), _data(gb[bb]),
                          _data(carry[bb]), hdim)
    restore_fp_mode(fp_mode)


def _problem(name):
    bsz, _, _, units = SHAPES[name]
    rng = np.random.default_rng(0)
    saved = rng.random((bsz, 7 * units)).astype(np.float32)
    return (saved, rng.standard_normal(units).astype(np.float32), *(rng.standard_normal((bsz, units)).astype(
        np.float32) for _ in range(2)), np.empty((bsz, 4 * units), np.float32), np.empty((bsz, units), np.float32))


@pytest.fixture(scope="module", params=["S2", "S3"])
def rows(request):
    ours, theirs = _problem(request.param), _problem(request.param)
    vector_rows(*ours, 1)
    element_loop(*theirs, 1)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    return _problem(request.param)


def test_lstm_grad_rows_vector(benchmark, rows):
    benchmark(vector_rows, *rows, REPS)


def test_lstm_grad_rows_element_loop(benchmark, rows):
    benchmark(element_loop, *rows, REPS)
