"""Matrix products for the time loops.

Measured on the target machine (AVX-512, SciPy's OpenBLAS single-threaded inside the kernels; see
docs/performance.md): a BLAS call beats a register-blocked Numba loop at every size the time loop
meets, even a (1, 64) x (64, 192) GEMV (0.58 us vs 0.91 us), so the step product is always BLAS.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def matmul_into(a, b, out):
    """``out[:] = a @ b`` for C-contiguous a (m, k), b (k, n), out (m, n) (BLAS gemm)."""
    np.dot(a, b, out)


@njit(cache=True, error_model="numpy")
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
