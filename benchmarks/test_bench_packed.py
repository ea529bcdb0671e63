"""pytest-benchmark: the packed micro-kernel (``fastgru._kernels.packed``) on the step products of S1-S5,
next to single-threaded OpenBLAS on the same product.

    pytest benchmarks/test_bench_packed.py --benchmark-only

Not part of the test suite. One benchmark round is 100 products from compiled code (no Python call per
product); before a shape is timed, the two results are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from packed_product import repeat_blas, repeat_packed

import fastgru as fg
from fastgru import _threads
from fastgru._kernels.packed import pack
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


def test_openblas_step_product(benchmark, product):
    a, u, out = product
    benchmark(repeat_blas, a, u, out, REPS)
