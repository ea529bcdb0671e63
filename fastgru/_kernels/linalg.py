"""Matrix products for the time loops: BLAS gemm, or a register-friendly loop for few rows.

Per step the recurrent product is (rows, H) x (H, 3H) with rows = one thread's batch rows. For few
rows OpenBLAS's speed depends on the kernel it picked for the CPU (``OPENBLAS_CORETYPE``): on the
target machine (AVX-512) its SkylakeX kernel does (4, 128) x (128, 384) in 3.5 us, its Haswell kernel
in 28 us, and :func:`small_matmul_into` in 5 us whatever the environment. The kernels therefore take
``small_rows``: at or below that many rows they use the loop, above it BLAS. ``fastgru._threads``
measures both once per process and sets it (see docs/performance.md).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable


@njit(cache=True, nogil=True, error_model="numpy")
def _rows4(a, b, out, i):
    """out[i:i+4] = a[i:i+4] @ b: four rows and four steps of k per pass over b's columns, so each
    pass does 16 multiply-adds per column for 4 loads of b and 4 of out (vectorised over columns)."""
    k = a.shape[1]
    n = b.shape[1]
    o0, o1, o2, o3 = out[i], out[i + 1], out[i + 2], out[i + 3]
    for j in range(n):
        o0[j] = 0.0
        o1[j] = 0.0
        o2[j] = 0.0
        o3[j] = 0.0
    p = 0
    while p + 4 <= k:
        b0, b1, b2, b3 = b[p], b[p + 1], b[p + 2], b[p + 3]
        a00, a01, a02, a03 = a[i, p], a[i, p + 1], a[i, p + 2], a[i, p + 3]
        a10, a11, a12, a13 = a[i + 1, p], a[i + 1, p + 1], a[i + 1, p + 2], a[i + 1, p + 3]
        a20, a21, a22, a23 = a[i + 2, p], a[i + 2, p + 1], a[i + 2, p + 2], a[i + 2, p + 3]
        a30, a31, a32, a33 = a[i + 3, p], a[i + 3, p + 1], a[i + 3, p + 2], a[i + 3, p + 3]
        for j in range(n):
            x0, x1, x2, x3 = b0[j], b1[j], b2[j], b3[j]
            o0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
            o1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
            o2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
            o3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        p += 4
    while p < k:
        brow = b[p]
        a0, a1, a2, a3 = a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p]
        for j in range(n):
            x = brow[j]
            o0[j] += a0 * x
            o1[j] += a1 * x
            o2[j] += a2 * x
            o3[j] += a3 * x
        p += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _row1(a, b, out, i):
    k = a.shape[1]
    n = b.shape[1]
    row = out[i]
    for j in range(n):
        row[j] = 0.0
    p = 0
    while p + 4 <= k:
        b0, b1, b2, b3 = b[p], b[p + 1], b[p + 2], b[p + 3]
        a0, a1, a2, a3 = a[i, p], a[i, p + 1], a[i, p + 2], a[i, p + 3]
        for j in range(n):
            row[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        p += 4
    while p < k:
        brow = b[p]
        aip = a[i, p]
        for j in range(n):
            row[j] += aip * brow[j]
        p += 1


@njit(cache=True, nogil=True, error_model="numpy")
def small_matmul_into(a, b, out):
    """``out[:] = a @ b`` for a (m, k), b (k, n), out (m, n), without BLAS (meant for small m)."""
    m = a.shape[0]
    full = m - m % 4
    # row indices computed, never a constant: a literal first index (``i = 0``) would make Numba
    # compile _rows4 a second time for the argument type Literal[int](0)
    for blk in range(full // 4):
        _rows4(a, b, out, 4 * blk)
    for i in range(full, m):
        _row1(a, b, out, i)


@njit(cache=True, nogil=True, error_model="numpy")
def matmul_into(a, b, out, small_rows):
    """``out[:] = a @ b`` (C-contiguous): the loop for at most ``small_rows`` rows, else BLAS gemm."""
    if a.shape[0] <= small_rows:
        small_matmul_into(a, b, out)
    else:
        np.dot(a, b, out)


@njit(cache=True, nogil=True, error_model="numpy")
def blas_matmul_into(a, b, out):
    """``out[:] = a @ b`` through BLAS (what ``matmul_into`` calls above ``small_rows``)."""
    np.dot(a, b, out)


@njit(cache=True, nogil=True, error_model="numpy")
def repeat_matmul(a, b, out, reps, use_blas):
    """``reps`` products through BLAS or the loop (for timing the two, see ``fastgru._threads``)."""
    for _ in range(reps):
        if use_blas:
            np.dot(a, b, out)
        else:
            small_matmul_into(a, b, out)


# ---------------------------------------------------------------------------------------------
# BLAS gemm on strided operands, inside the kernels
# ---------------------------------------------------------------------------------------------
@intrinsic
def _address(typingctx, arr):
    """The address of an array view's first element, as ``void*``."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.bitcast(ary.data, cgutils.voidptr_t)

    return types.voidptr(arr), codegen


#: Numba's own wrapper of SciPy's BLAS ?gemm (what ``np.dot`` calls inside kernels; single-threaded
#: there by fastgru's thread policy): column-major, with leading dimensions and beta.
_xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
    types.int8, types.int8, types.int8, types.intp, types.intp, types.intp, types.voidptr, types.voidptr,
    types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr, types.intp,
))


@register_jitable
def gemm(a, b, c, trans_a, trans_b, accumulate):
    """``c = op(a) @ op(b)`` (``+= `` when accumulate) for 2-D float32/float64 views whose rows may
    be strided (unit column stride, any row stride: column blocks of a wider buffer), op = transpose
    when trans_*. One BLAS call, no copy, unlike ``np.dot`` on a non-contiguous view.

    Kernels only (``register_jitable``: compiled into its callers). Unlike an ``njit`` callee it is
    typed with plain ``bool`` flags: call sites pass constants, and a dispatcher would compile one
    copy per combination of ``Literal[bool]`` values (and array layouts).
    """
    isz = c.itemsize
    if trans_a:
        m = a.shape[1]
        k = a.shape[0]
    else:
        m = a.shape[0]
        k = a.shape[1]
    n = b.shape[0] if trans_b else b.shape[1]
    if m == 0 or n == 0:
        return
    coef = np.empty(2, c.dtype)
    coef[0] = 1.0
    coef[1] = 1.0 if accumulate else 0.0
    kind = np.int8(115) if isz == 4 else np.int8(100)  # 's' or 'd'
    tr = np.int8(116)  # 't'
    nt = np.int8(110)  # 'n'
    lda = max(a.strides[0] // isz, 1)
    ldb = max(b.strides[0] // isz, 1)
    ldc = max(c.strides[0] // isz, 1)
    # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
    err = _xxgemm(kind, tr if trans_b else nt, tr if trans_a else nt, n, m, k, _address(coef), _address(b), ldb,
                  _address(a), lda, _address(coef[1:]), _address(c), ldc)
    if err != 0:
        raise RuntimeError("BLAS gemm failed")
