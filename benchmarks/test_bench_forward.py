"""pytest-benchmark: fastgru's GRU forward vs the batched NumPy baseline (``numpy_gru.py``) on S1-S5.

    pytest benchmarks/test_bench_forward.py --benchmark-only                 # all shapes
    pytest benchmarks/test_bench_forward.py --benchmark-only -m "not big"    # S1, S2, S5 only (seconds)
    FASTGRU_BENCH_THREADS=1 pytest benchmarks/test_bench_forward.py --benchmark-only

Not part of the test suite (pytest's testpaths is tests/). Threads: FASTGRU_BENCH_THREADS (default:
all cores) goes to ``fg.set_num_threads``, which also sets NumPy's OpenBLAS threads, so the NumPy
baseline runs on the same number of threads. Before a shape is timed, the two outputs are compared.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from numpy_gru import numpy_gru

import fastgru as fg
from fastgru.bench import SHAPES, random_gru_problem

BIG = {"S3", "S4"}
fg.set_num_threads(int(os.environ.get("FASTGRU_BENCH_THREADS", fg.get_num_threads())))


@pytest.fixture(scope="module", params=[pytest.param(s, marks=pytest.mark.big) if s in BIG else s for s in SHAPES])
def shape(request):
    return request.param


@pytest.fixture(scope="module")
def problem(shape):
    x, w, u, b = random_gru_problem(*SHAPES[shape])
    ours = fg.ops.gru_forward(x, w, u, b)[0]
    np.testing.assert_allclose(ours, numpy_gru(x, w, u, b), atol=1e-4, rtol=0,
                               err_msg=f"fastgru and the NumPy baseline disagree on {shape}")
    return x, w, u, b


def test_fastgru(benchmark, problem, shape):
    benchmark.group = f"{shape} {SHAPES[shape]} threads={fg.get_num_threads()}"
    x, w, u, b = problem
    benchmark(fg.ops.gru_forward, x, w, u, b)


def test_numpy(benchmark, problem, shape):
    benchmark.group = f"{shape} {SHAPES[shape]} threads={fg.get_num_threads()}"
    x, w, u, b = problem
    benchmark(numpy_gru, x, w, u, b)
