"""pytest-benchmark: fastgru's LSTM kernels (forward; training forward + BPTT) and Bidirectional GRU,
on S1-S5, next to the GRU forward on the same shapes.

    pytest benchmarks/test_bench_lstm.py --benchmark-only -m "not big"

Not part of the test suite. Threads: FASTGRU_BENCH_THREADS (default: all cores).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgru as fg
from fastgru.bench import SHAPES
from fastgru.layers import GRU, Bidirectional

BIG = {"S3", "S4"}
fg.set_num_threads(int(os.environ.get("FASTGRU_BENCH_THREADS", fg.get_num_threads())))


@pytest.fixture(scope="module", params=[pytest.param(s, marks=pytest.mark.big) if s in BIG else s for s in SHAPES])
def shape(request):
    return request.param


@pytest.fixture(scope="module")
def lstm_problem(shape):
    b, t, d, h = SHAPES[shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, t, d)).astype(np.float32)
    w = (rng.standard_normal((d, 4 * h)) / np.sqrt(d)).astype(np.float32)
    u = (rng.standard_normal((h, 4 * h)) / np.sqrt(h)).astype(np.float32)
    bias = np.zeros(4 * h, np.float32)
    return x, w, u, bias


def group(shape):
    return f"{shape} {SHAPES[shape]} threads={fg.get_num_threads()}"


def test_lstm_forward(benchmark, lstm_problem, shape):
    benchmark.group = group(shape)
    benchmark(fg.ops.lstm_forward, *lstm_problem)


def test_lstm_forward_and_bptt(benchmark, lstm_problem, shape):
    benchmark.group = group(shape) + " training"
    x, w, u, b = lstm_problem
    d_out = np.ones((x.shape[0], u.shape[0]), np.float32)
    benchmark(lambda: fg.ops.lstm_backward(x, w, u, b, d_outputs=d_out))


def test_bidirectional_gru(benchmark, shape):
    benchmark.group = group(shape)
    b, t, d, h = SHAPES[shape]
    layer = Bidirectional(GRU(h))
    layer.build((None, t, d))
    x = np.random.default_rng(0).standard_normal((b, t, d)).astype(np.float32)
    benchmark(layer, x)
