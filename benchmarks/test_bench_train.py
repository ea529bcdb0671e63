"""pytest-benchmark: one fastgru training step (``train_on_batch``: forward, backward, Adam) for the
seed model (B32 T10 D50 H64 + Dense(1, sigmoid), binary crossentropy) and S3 + Dense(1) (mse).

    pytest benchmarks/test_bench_train.py --benchmark-only
    pytest benchmarks/test_bench_train.py --benchmark-only -m "not big"     # the seed model only

Threads: FASTGRU_BENCH_THREADS (default: all cores). Skipped, with the reason, when fastgru's training
API is not available. Keras and PyTorch side by side: python benchmarks/compare.py --mode train
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastgru as fg

CASES = {"seed": (32, 10, 50, 64, "sigmoid", "binary_crossentropy"), "S3": (64, 100, 128, 256, None, "mse")}
fg.set_num_threads(int(os.environ.get("FASTGRU_BENCH_THREADS", fg.get_num_threads())))


def _model(steps, d, units, act, loss):
    try:
        from fastgru.layers import GRU, Dense, Input

        fg.set_random_seed(0)
        model = fg.Sequential([Input((steps, d)), GRU(units), Dense(1, activation=act)])
        model.compile(optimizer="adam", loss=loss)
        model.train_on_batch  # noqa: B018  (the API this benchmark needs)
    except (AttributeError, ImportError, NotImplementedError, TypeError) as exc:
        pytest.skip(f"fastgru's training API is not available yet ({type(exc).__name__}: {exc})")
    return model


@pytest.mark.parametrize("case", [pytest.param("seed"), pytest.param("S3", marks=pytest.mark.big)])
def test_train_step(benchmark, case):
    bsz, steps, d, units, act, loss = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    y = ((rng.random((bsz, 1)) > 0.5) if loss == "binary_crossentropy" else rng.standard_normal((bsz, 1)))
    y = y.astype(np.float32)
    model = _model(steps, d, units, act, loss)
    try:
        first = float(np.ravel(model.train_on_batch(x, y))[0])
    except NotImplementedError as exc:
        pytest.skip(f"fastgru's training API is not available yet (NotImplementedError: {exc})")
    assert np.isfinite(first)
    benchmark.group = f"train step {case} threads={fg.get_num_threads()}"
    benchmark(model.train_on_batch, x, y)
