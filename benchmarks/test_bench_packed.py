"""pytest-benchmark: the packed micro-kernel (``fastgru._kernels.packed``) on the step products of S1-S5,
next to single-threaded OpenBLAS on the same product, and the same tiles reading the recurrent kernel
where it lies (``packed.operand``: row-major, on a cache line; what the time loops do for small kernels
of whole panels multiplied by full tiles of rows) instead of packed panels.

    pytest benchmarks/test_bench_packed.py --benchmark-only

Not part of the test suite. One benchmark round is 100 products from compiled code (no Python call per
product); before a shape is timed, the two results are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from packed_product import repeat_blas, repeat_packed

import fastgru as fg
from fastgru import _threads
from fastgru._kernels.aligned import aligned_copy
from fastgru._kernels.packed import operand_matmul_into, pack, panel_width
from fastgru.bench import SHAPES

REPS = 100


#: (rows, H) per case: the step product of S1-S5, and 3 to 7 rows against S5's recurrent kernel (the
#: rows left over after the full tiles, or a thread's share of a small batch: S5 at 2 threads has 4;
#: the tiles of ``tiles.tile_rest``)
CASES = {**{name: (b, h) for name, (b, _, _, h) in SHAPES.items()}, **{f"{m}rows": (m, 128) for m in range(3, 8)}}


@pytest.fixture(scope="module", params=list(CASES))
def product(request):
    fg.set_num_threads(1)
    _threads.kernel_blas_single_threaded()
    b, h = CASES[request.param]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((b, h)).astype(np.float32)
    u = rng.standard_normal((h, 3 * h)).astype(np.float32)
    ours, theirs = np.empty((b, 3 * h), np.float32), np.empty((b, 3 * h), np.float32)
    repeat_packed(a, pack(u), ours, 1)
    repeat_blas(a, u, theirs, 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    return a, u, ours


def test_packed_step_product(benchmark, product):
    a, u, out = product
    packed_u = pack(u)
    benchmark(repeat_packed, a, packed_u, out, REPS)


@njit(cache=True, nogil=True)
def repeat_operand(a, b, out, reps):
    for _ in range(reps):
        operand_matmul_into(a, b, out)


def test_in_place_step_product(benchmark, product):
    """The kernel read where it lies (row-major, on a cache line) whatever its size and the row count:
    the time loops take this layout only for kernels up to L2/8 bytes and from MR rows up (fewer rows
    are bound by their loads, faster from packed panels). The results are checked to be the packed
    product's, bit for bit."""
    a, u, out = product
    k, n = u.shape
    nr = panel_width(u.dtype)
    assert n % nr == 0  # (3H of every case is a whole number of panels)
    u_line = aligned_copy(u)
    b = (u_line.reshape(k * n), k, n, nr, n)  # operand_matmul_into checks it
    repeat_operand(a, b, out, 1)
    packed_out = np.empty_like(out)
    repeat_packed(a, pack(u), packed_out, 1)
    np.testing.assert_array_equal(out, packed_out)
    benchmark(repeat_operand, a, b, out, REPS)


def test_openblas_step_product(benchmark, product):
    a, u, out = product
    benchmark(repeat_blas, a, u, out, REPS)
