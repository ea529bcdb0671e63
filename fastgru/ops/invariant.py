"""Products whose rows do not depend on each other's presence: the batch-invariant mode's matmul.

BLAS sums a row of ``a @ b`` in an order that depends on where the row falls in its tiles (OpenBLAS's
Haswell sgemm, for one, gives a row different last bits in a tile of 12 rows than in a tail of 5), so
the same row can come out differently in batches of different sizes. fastgru's own loop
(``_kernels.packed.packed_matmul_into``) sums every row in one fixed order.
"""

from __future__ import annotations

import numpy as np

from .._kernels.packed import pack, packed_matmul_into


def matmul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a (..., K) float array and b (K, N) of a's dtype, each output row computed alone
    (bit-identical whatever the other rows of ``a``)."""
    if a.dtype != b.dtype or a.dtype.kind != "f" or b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul_rows expects a (..., K) and b (K, N) of one float dtype, received "
                         f"{a.shape} {a.dtype} and {b.shape} {b.dtype}")
    a2 = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    out = np.empty((a2.shape[0], b.shape[1]), a.dtype)
    packed_matmul_into(a2, pack(np.ascontiguousarray(b)), out)
    return out.reshape(a.shape[:-1] + (b.shape[1],))
