"""pytest-benchmark: fastgru's GRU forward vs the batched NumPy baseline on the shapes S1-S5.

    pytest benchmarks/test_bench_forward.py --benchmark-only --benchmark-group-by=param:shape

Not part of the test suite (pytest's testpaths is tests/). Thread count: FASTGRU_BENCH_THREADS
(default: all cores).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgru as fg
from fastgru.bench import SHAPES, random_gru_problem
from numpy_gru import numpy_gru

fg.set_num_threads(int(os.environ.get("FASTGRU_BENCH_THREADS", fg.get_num_threads())))


@pytest.fixture(scope="module", params=list(SHAPES), ids=list(SHAPES))
def shape(request):
    return request.param


@pytest.fixture(scope="module")
def problem(shape):
    return random_gru_problem(*SHAPES[shape])


def test_numpy_baseline_agrees_with_fastgru():
    x, w, u, b = random_gru_problem(3, 7, 5, 6)
    np.testing.assert_allclose(numpy_gru(x, w, u, b), fg.ops.gru_forward(x, w, u, b)[0], atol=2e-6)


def test_fastgru(benchmark, problem, shape):
    benchmark.group = shape
    x, w, u, b = problem
    benchmark(fg.ops.gru_forward, x, w, u, b)


def test_numpy(benchmark, problem, shape):
    benchmark.group = shape
    x, w, u, b = problem
    benchmark(numpy_gru, x, w, u, b)
