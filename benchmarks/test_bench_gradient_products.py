"""pytest-benchmark: the training's gradient products through the packed micro-kernel
(``fastgru._kernels.gradient_products``) next to the single-threaded BLAS call they replaced
(``linalg.gemm``), on the shapes of one training chunk of S2, S3 and S5 at one thread.

    pytest benchmarks/test_bench_gradient_products.py --benchmark-only

Not part of the test suite. The operands are laid out as in training: G the gate gradients, a column
block of the (B*T, 5H) saved buffer, h_prev another; x the (B*T, D) inputs. Before a case is timed,
the two results are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import fastgru as fg
from fastgru import _threads
from fastgru._kernels.gradient_products import matmul_nt_into, matmul_tn_into
from fastgru._kernels.linalg import gemm
from fastgru.bench import SHAPES


@njit(cache=True)
def _tn_ours(a, b, out, reps):
    for _ in range(reps):
        matmul_tn_into(a, b, out)


@njit(cache=True)
def _tn_blas(a, b, out, reps):
    for _ in range(reps):
        gemm(a, b, out, True, False, False)


@njit(cache=True)
def _nt_ours(a, b, out, reps):
    for _ in range(reps):
        matmul_nt_into(a, b, out)


@njit(cache=True)
def _nt_blas(a, b, out, reps):
    for _ in range(reps):
        gemm(a, b, out, False, True, False)


#: (name, which product): dW = x^T G, dU = h_prev^T G, dX = G W^T
CASES = [(shape, kind) for shape in ("S2", "S3", "S5") for kind in ("dW", "dU", "dX")]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def problem(request):
    fg.set_num_threads(1)
    _threads.kernel_blas_single_threaded()
    shape, kind = request.param
    b, t, d, h = SHAPES[shape]
    rng = np.random.default_rng(0)
    saved = rng.standard_normal((b * t, 5 * h)).astype(np.float32)
    g = saved[:, :3 * h]
    if kind == "dX":
        w = rng.standard_normal((d, 3 * h)).astype(np.float32)
        ours, theirs = np.empty((b * t, d), np.float32), np.empty((b * t, d), np.float32)
        args, fns = (g, w), (_nt_ours, _nt_blas)
    else:
        a = rng.standard_normal((b * t, d)).astype(np.float32) if kind == "dW" else saved[:, 4 * h:]
        ours, theirs = np.empty((a.shape[1], 3 * h), np.float32), np.empty((a.shape[1], 3 * h), np.float32)
        args, fns = (a, g), (_tn_ours, _tn_blas)
    fns[0](*args, ours, 1)
    fns[1](*args, theirs, 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    reps = max(1, int(2e8 // (b * t * 3 * h * max(d, h))))
    return args, fns, ours, reps


def test_packed_gradient_product(benchmark, problem):
    args, fns, out, reps = problem
    benchmark(fns[0], *args, out, reps)


def test_blas_gradient_product(benchmark, problem):
    args, fns, out, reps = problem
    benchmark(fns[1], *args, out, reps)
