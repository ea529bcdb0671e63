"""Shared test fixtures. Keras-dependent tests use the ``keras`` fixture, which skips cleanly
when keras (with TensorFlow) is not installed; CI installs both, so they run there."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# kernels split even tiny batches over the threads, so the multi-chunk path is what tests exercise
os.environ.setdefault("FASTGRU_MIN_CHUNK_WORK", "0")
sys.path.insert(0, os.path.dirname(__file__))  # for tests/reference.py


@pytest.fixture(scope="session")
def keras():
    """The keras module (Keras 3 on TensorFlow), or a clean skip when it is not installed."""
    return pytest.importorskip("keras")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["loop", "blas"])
def step_product_path(request, monkeypatch):
    """Run a test once with every product of the recurrent kernels through fastgru's own loop and once
    through BLAS, whatever this machine would pick (an AVX-512 machine picks BLAS for every row count,
    an AVX2 one the loop for small products): no machine kind hides a failure of the other path."""
    from fastgru import _threads

    monkeypatch.setitem(_threads._state, "batch_invariant", False)
    rows = _threads.BATCH_INVARIANT_ROWS if request.param == "loop" else 0
    monkeypatch.setitem(_threads._state, "small_rows", rows)
    return request.param
