"""The NumPy baseline computes the same GRU as fastgru (a normal test, not a benchmark):

    pytest benchmarks/test_numpy_gru.py
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy_gru import numpy_gru

import fastgru as fg
from fastgru.bench import random_gru_problem


@pytest.mark.parametrize("dtype, atol", [(np.float32, 2e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("dims", [(3, 7, 5, 6), (1, 20, 4, 9), (5, 3, 8, 16)])
def test_numpy_gru_agrees_with_fastgru(dims, dtype, atol):
    x, w, u, b = random_gru_problem(*dims, dtype=dtype)
    expected = fg.ops.gru_forward(x, w, u, b)[0]
    got = numpy_gru(x, w, u, b)
    assert got.dtype == expected.dtype == dtype
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
