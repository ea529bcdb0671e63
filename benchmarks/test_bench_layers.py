"""pytest-benchmark: the layers around the recurrent ones (issue 15's speed targets).

    pytest benchmarks/test_bench_layers.py --benchmark-only

* ``Conv1D(128, 5)`` on (64, 100, 128) float32: forward, backward (input, kernel and bias gradients)
  and both, beside the floor they are judged against (group ``conv1d``): one OpenBLAS sgemm (NumPy's
  matmul) with the forward's multiply-adds in a well-shaped product, ``(B*T_out, k*C_in) @ (k*C_in,
  filters)``, and the backward's two, ``cols^T @ dY`` and ``dY @ W^T``. The target (issue 15) is 1.5x
  the floor; ``benchmarks/conv_floor.py`` measures the ratios interleaved (shared machines), at 1 and 2
  threads, with the machine description.
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


ROWS, DEPTH = B * (T - 4), 5 * C  # the im2col product's rows and depth (valid padding: 96 steps)


@pytest.fixture(scope="module")
def floor_operands():
    rng = np.random.default_rng(1)
    cols = rng.standard_normal((ROWS, DEPTH)).astype(np.float32)
    w = rng.standard_normal((DEPTH, 128)).astype(np.float32)
    dy = rng.standard_normal((ROWS, 128)).astype(np.float32)
    return cols, w, dy


@pytest.mark.benchmark(group="conv1d")
def test_conv1d_forward(benchmark, conv, x):
    benchmark.extra_info["multiply_adds"] = ROWS * DEPTH * 128
    benchmark(conv.call, x)


@pytest.mark.benchmark(group="conv1d")
def test_conv1d_backward(benchmark, conv, x):
    benchmark.extra_info["multiply_adds"] = 2 * ROWS * DEPTH * 128
    _, cache = conv.forward(x)
    dy = np.random.default_rng(2).standard_normal((B, T - 4, 128)).astype(np.float32)
    benchmark(conv.backward, dy, cache)


@pytest.mark.benchmark(group="conv1d")
def test_conv1d_forward_and_backward(benchmark, conv, x):
    benchmark.extra_info["multiply_adds"] = 3 * ROWS * DEPTH * 128
    dy = np.ones((B, T - 4, 128), np.float32)

    def step():
        _, cache = conv.forward(x)
        conv.backward(dy, cache)

    benchmark(step)


@pytest.mark.benchmark(group="conv1d")
def test_sgemm_floor_forward(benchmark, floor_operands):
    cols, w, _ = floor_operands
    out = np.empty((ROWS, 128), np.float32)
    benchmark.extra_info["multiply_adds"] = ROWS * DEPTH * 128
    benchmark(np.matmul, cols, w, out=out)


@pytest.mark.benchmark(group="conv1d")
def test_sgemm_floor_backward(benchmark, floor_operands):
    cols, w, dy = floor_operands
    dw, dcols = np.empty((DEPTH, 128), np.float32), np.empty((ROWS, DEPTH), np.float32)
    benchmark.extra_info["multiply_adds"] = 2 * ROWS * DEPTH * 128

    def both():
        np.matmul(cols.T, dy, out=dw)
        np.matmul(dy, w.T, out=dcols)

    benchmark(both)


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
