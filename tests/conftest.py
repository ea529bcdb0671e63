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
