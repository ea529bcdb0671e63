"""Matrix products for the time loop: BLAS for real GEMMs, a register-friendly loop for tiny batches."""

from __future__ import annotations

import numpy as np
from numba import njit

#: at or below this many rows a per-step BLAS call costs more than the arithmetic (measured; see
#: docs/performance.md): use the vectorised axpy loop, which keeps the weights streaming from L2.
SMALL_ROWS = 4


@njit(cache=True)
def matmul_into(a, b, out):
    """``out[:] = a @ b`` for C-contiguous a (m, k), b (k, n), out (m, n)."""
    m, k = a.shape
    n = b.shape[1]
    if m > SMALL_ROWS:
        np.dot(a, b, out)
        return
    for i in range(m):
        row = out[i]
        for j in range(n):
            row[j] = 0.0
        for p in range(k):
            aip = a[i, p]
            brow = b[p]
            for j in range(n):
                row[j] += aip * brow[j]


@njit(cache=True)
def matmul_acc(a, b, out):
    """``out[:] += a @ b`` for C-contiguous a (m, k), b (k, n), out (m, n) (small-m loop)."""
    m, k = a.shape
    n = b.shape[1]
    for i in range(m):
        row = out[i]
        for p in range(k):
            aip = a[i, p]
            brow = b[p]
            for j in range(n):
                row[j] += aip * brow[j]
