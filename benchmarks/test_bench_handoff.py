"""pytest-benchmark: handing a chunk of batch rows to a worker thread (``fastgru._threads.run_chunks``).

    pytest benchmarks/test_bench_handoff.py --benchmark-only

* Two empty chunks through the spinning workers (``fastgru._spin_pool``, what calls under
  ``SPIN_HANDOFF_WORK`` use) and through the sleeping executor (larger calls): the fixed cost of a split
  call. On a 2-vCPU VM the sleeping hand-off costs two wake-ups of tens of microseconds each.
* The S2 GRU forward (32x10x50->64) at 2 threads: one chunk; split over the spinning workers with the
  worker's share written down by the caller's kernel and run from compiled code (today's default,
  ``_kernels.compiled_tasks``), with the worker's task posted from inside the caller's kernel but run
  through its Python, and posted the usual way (the caller spins until the worker reaches its kernel);
  and split over the sleeping executor.
* One sequence of a wide GRU and LSTM (1x200x128->128) at 2 threads, its input projection shared with the
  worker (``_kernels.shared_projection``) or run on one thread.

Needs 2 threads (``fg.set_num_threads(2)``); not part of the test suite (pytest's testpaths is tests/).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru import _threads

fg.set_num_threads(2)


def _nothing(c, b0, b1):
    return None


@pytest.mark.benchmark(group="handoff-empty")
def test_empty_chunks_spinning_workers(benchmark):
    benchmark(_threads.run_chunks, _nothing, 2, 2, 1000)


@pytest.mark.benchmark(group="handoff-empty")
def test_empty_chunks_sleeping_workers(benchmark):
    benchmark(_threads.run_chunks, _nothing, 2, 2, 0)


@pytest.fixture(scope="module")
def s2():
    x = np.random.default_rng(0).standard_normal((32, 10, 50)).astype(np.float32)
    layer = fg.layers.GRU(64)
    layer(x)
    return layer, x


@pytest.mark.parametrize("split", ["one-chunk", "spinning-compiled", "spinning-deferred-post", "spinning", "sleeping"])
@pytest.mark.benchmark(group="handoff-s2")
def test_s2_forward_two_threads(benchmark, s2, split, monkeypatch):
    layer, x = s2
    monkeypatch.setattr(_threads, "MIN_CHUNK_WORK", 10 ** 12 if split == "one-chunk" else 2_500_000)
    monkeypatch.setattr(_threads, "SPIN_HANDOFF_WORK", 0 if split == "sleeping" else 40_000_000)
    monkeypatch.setattr(_threads, "_DEFERRED_POST", split in ("spinning-compiled", "spinning-deferred-post"))
    monkeypatch.setattr(_threads, "_COMPILED_WORKER", split == "spinning-compiled")
    benchmark(layer, x)


@pytest.fixture(scope="module")
def one_wide_sequence():
    x = np.random.default_rng(0).standard_normal((1, 200, 128)).astype(np.float32)
    layers = {"gru": fg.layers.GRU(128), "lstm": fg.layers.LSTM(128)}
    for layer in layers.values():
        layer(x)
    return layers, x


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("projection", ["shared", "one-thread"])
@pytest.mark.benchmark(group="handoff-one-sequence")
def test_one_wide_sequence_two_threads(benchmark, one_wide_sequence, cell, projection, monkeypatch):
    from fastgru._kernels import shared_projection

    layers, x = one_wide_sequence
    monkeypatch.setattr(shared_projection, "MIN_WORK", 1_000_000 if projection == "shared" else 10 ** 15)
    benchmark(layers[cell], x)
