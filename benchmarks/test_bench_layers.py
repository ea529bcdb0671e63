"""pytest-benchmark: the layers around the recurrent ones (issue 15's speed targets).

    pytest benchmarks/test_bench_layers.py --benchmark-only

* ``Conv1D(128, 5)`` on (64, 100, 128) float32, forward and backward, with the floor it is judged
  against: its multiply-adds (``B * T_out * k * C_in * filters``, three times that for the backward's
  two products) at this machine's sgemm peak (``benchmarks/floor.py``). The im2col GEMM is one call.
* BatchNormalization (training step), LayerNormalization, Concatenate and Add on (64, 100, 128): one
  pass of NumPy reductions each (no Python loop over the batch or time).

Not part of the test suite (pytest's testpaths is tests/). Threads: FASTGRU_BENCH_THREADS.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import Add, BatchNormalization, Concatenate, Conv1D, LayerNormalization

fg.set_num_threads(int(os.environ.get("FASTGRU_BENCH_THREADS", fg.get_num_threads())))
B, T, C = 64, 100, 128


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((B, T, C)).astype(np.float32)


@pytest.fixture(scope="module")
def conv():
    layer = Conv1D(128, 5)
    layer.build((None, T, C))
    return layer


def test_conv1d_forward(benchmark, conv, x):
    benchmark.extra_info["multiply_adds"] = B * (T - 4) * 5 * C * 128
    benchmark(conv.call, x)


def test_conv1d_forward_and_backward(benchmark, conv, x):
    benchmark.extra_info["multiply_adds"] = 3 * B * (T - 4) * 5 * C * 128
    dy = np.ones((B, T - 4, 128), np.float32)

    def step():
        _, cache = conv.forward(x)
        conv.backward(dy, cache)

    benchmark(step)


def test_batch_normalization_training_step(benchmark, x):
    layer = BatchNormalization()
    layer.build((None, T, C))

    def step():
        y, cache = layer.forward(x, training=True)
        layer.backward(y, cache)

    benchmark(step)


def test_layer_normalization(benchmark, x):
    layer = LayerNormalization()
    layer.build((None, T, C))
    benchmark(layer.call, x)


@pytest.mark.parametrize("merge", [Concatenate, Add], ids=lambda c: c.__name__)
def test_merge(benchmark, x, merge):
    layer = merge()
    layer([x, x])
    benchmark(layer.call, [x, x])
