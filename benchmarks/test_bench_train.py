"""pytest-benchmark: one fastgru training step (forward, backward, Adam) for the seed model
(B32 T10 D50 H64 + Dense(1, sigmoid), binary crossentropy) and S3 + Dense(1) (mse).

    pytest benchmarks/test_bench_train.py --benchmark-only

Keras and PyTorch side by side: python benchmarks/compare.py --mode train
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

CASES = {"seed": (32, 10, 50, 64, "sigmoid", "binary_crossentropy"), "S3": (64, 100, 128, 256, None, "mse")}


@pytest.mark.parametrize("case", list(CASES))
def test_train_step(benchmark, case):
    bsz, steps, d, units, act, loss = CASES[case]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    y = (rng.random((bsz, 1)) > 0.5).astype(np.float32)
    fg.set_random_seed(0)
    model = fg.Sequential([Input((steps, d)), GRU(units), Dense(1, activation=act)])
    model.compile(optimizer="adam", loss=loss)
    benchmark.group = case
    benchmark(model.train_on_batch, x, y)
