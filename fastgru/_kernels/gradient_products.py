"""The large products of training through the packed micro-kernel rather than BLAS: weight gradients
``A^T B`` (``matmul_tn_into``; ``matmul_tn_rows_into`` when A's rows are windows of a flat array, a
convolution's kernel gradient) and input gradients ``A B^T`` (``matmul_nt_into``).

Shapes: a training chunk's rows R = B_c*T (thousands) against a layer's widths. ``dX = G W^T`` is
(R, n) @ (n, D): W^T is small, so it is packed once and the rows run through ``packed_matmul_into``.
``dW = X^T G`` and ``dU = H^T G`` are (M, R) @ (R, n) with M = D or H: the long dimension is the sum's,
and both operands are row-major (R, .) arrays, the left one read transposed. ``matmul_tn_into`` walks
R in blocks of ``kc`` rows (a panel's block fills ``L1_PANEL_BYTES``, as in ``packed``): it packs the
block of B into panels (a group of panels at a time, half of L2 at most), then runs a transposed tile
(``tiles.tile_full_t``: the MR values of A^T's rows at one k are adjacent in A) over every MR rows
of A^T, adding into the output from the second block on. The rows left over (M % MR) go through
the same tile on a zero-padded copy of their columns, into a small buffer added to the output at
the end. So there is one new tile, and B is read once, A once per group of panels.

Why: these products took 42 of the 66 ms of an S3 training step at one thread on an AVX-512 machine
whose OpenBLAS runs its Haswell kernels (``OPENBLAS_CORETYPE=Haswell``, 114-123 GFLOP/s there, half
the machine's peak; the packed product reaches 255). Measured: docs/performance.md, "Training".

Sums: each output element is the sum over k in blocks of ``kc``, each block's chain of fused
multiply-adds in k order, the blocks added in order: fixed, whatever the other rows and columns.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic, register_jitable

from .aligned import empty_aligned
from .packed import _copy_panel_row, _LoopsSlot, _pointee_size, pack, packed_matmul_into
from .simd import L1_PANEL_BYTES, L2_BYTES, MR, NV, VECTOR_BYTES
from .tiles import tile_full_t


def _tn_loops(ap, lda, bp, ldb, cp, ldc, m, n, k, bufp, ap_rest, cp_rest):
    """``c (m, n) = a^T b`` for ``a (k, m)`` (row stride ``lda``), ``b (k, n)`` (``ldb``), ``c``
    (``ldc``), all on pointers, shapes checked by :func:`matmul_tn_into`; ``bufp`` the packing buffer
    (:func:`_blocks` panels of ``kc`` rows), ``ap_rest`` a (kc, MR) buffer and ``cp_rest`` an (MR, n)
    buffer for the rows left over (m % MR; unused when there are none)."""
    isz = _pointee_size(ap)
    nr = NV * (VECTOR_BYTES // isz)
    kc, group = _blocks(n, k, isz)
    n_panels = (n + nr - 1) // nr
    full = m - m % MR
    rest = m - full
    bflat = carray(bp, ((k - 1) * ldb + n,))
    buf = carray(bufp, (group * kc * nr,))
    aflat = carray(ap, ((k - 1) * lda + m,))
    a_rest = carray(ap_rest, (kc * MR if rest > 0 else 0,))
    pstride = kc * nr
    for k0 in range(0, k, kc):
        kb = min(kc, k - k0)
        acc = 1 if k0 > 0 else 0
        if rest > 0:  # the left-over columns of this block of a, zero-padded to MR
            for i in range(kb):
                row = (k0 + i) * lda + full
                for r in range(MR):
                    a_rest[i * MR + r] = aflat[row + r] if r < rest else 0.0
        for g0 in range(0, n_panels, group):
            g1 = min(n_panels, g0 + group)
            for p in range(g0, g1):  # pack this block's rows of b's panel p
                base = (p - g0) * pstride
                col = p * nr
                ncols = min(nr, n - col)
                if ncols == nr:
                    for i in range(kb):
                        _copy_panel_row(buf, base + i * nr, bflat, (k0 + i) * ldb + col)
                else:
                    for i in range(kb):
                        src = (k0 + i) * ldb + col
                        dst = base + i * nr
                        for j in range(nr):
                            buf[dst + j] = bflat[src + j] if j < ncols else 0.0
            for p in range(g0, g1):
                base = (p - g0) * pstride
                ncols = min(nr, n - p * nr)
                for i in range(0, full, MR):
                    tile_full_t(ap, k0 * lda + i, lda, bufp, base, pstride, nr, kb, cp, i * ldc + p * nr, ldc, ncols,
                                acc)
                if rest > 0:
                    tile_full_t(ap_rest, 0, MR, bufp, base, pstride, nr, kb, cp_rest, p * nr, n, ncols, acc)
    if rest > 0:
        c_rest = carray(cp_rest, (MR * n,))  # (allocated at this size when rest > 0)
        cflat = carray(cp, ((m - 1) * ldc + n,))
        for r in range(rest):
            for j in range(n):
                cflat[(full + r) * ldc + j] = c_rest[r * n + j]


@register_jitable
def _blocks(n, k, isz):
    """``(kc, group)``: rows of a block of B (its panel block fills ``L1_PANEL_BYTES``; at most k) and
    panels packed at a time (their blocks fill at most half of L2)."""
    nr = NV * (VECTOR_BYTES // isz)
    kc = max(1, min(k, max(16, L1_PANEL_BYTES // (nr * isz))))
    n_panels = (n + nr - 1) // nr
    group = max(1, min(n_panels, (L2_BYTES // 2) // (kc * nr * isz)))
    return kc, group


#: the callers' way to ``_tn_loops``, per dtype (compiled once, called through a cell: ``packed._LoopsSlot``)
_TN_LOOPS = {dtype: _LoopsSlot(dtype, _tn_loops, "pipipiiiippp") for dtype in (types.float32, types.float64)}


@intrinsic
def _tn_call(typingctx, a, lda, b, ldb, out, ldc, m, n, k, buf, a_rest, c_rest):
    """A call of ``_tn_loops`` for the arrays' dtype through its cell, on their data pointers. It takes
    the arrays, not pointers: a buffer allocated by the caller and passed only as a pointer would be
    released after its last use as an array, before the call writes into it."""
    arrays = (a, b, out, buf, a_rest, c_rest)
    if not all(isinstance(x, types.Array) for x in arrays) or len({x.dtype for x in arrays}) != 1:
        return None
    slot = _TN_LOOPS.get(a.dtype)
    if slot is None:
        return None
    slot.load()

    def codegen(context, builder, sig, args):
        def data(i):
            return context.make_array(sig.args[i])(context, builder, args[i]).data

        slot.call_codegen(builder, context, [data(0), args[1], data(2), args[3], data(4), args[5], args[6], args[7],
                                             args[8], data(9), data(10), data(11)])
        return context.get_dummy_value()

    return types.void(a, lda, b, ldb, out, ldc, m, n, k, buf, a_rest, c_rest), codegen


@njit(cache=True, nogil=True, error_model="numpy")
def matmul_tn_into(a, b, out):
    """``out[:] = a.T @ b`` for ``a (K, M)``, ``b (K, N)``, ``out (M, N)``: 2-D views with unit column
    strides and any row strides (column blocks of wider buffers). Checks the shapes and strides, then
    runs ``_tn_loops`` (compiled once per dtype)."""
    k, m = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("matmul_tn_into: operand shapes do not match")
    if m == 0 or n == 0:
        return
    if k == 0:
        out[:] = 0.0
        return
    isz = a.itemsize
    if (m > 1 and a.strides[1] != isz) or (n > 1 and (b.strides[1] != isz or out.strides[1] != isz)):
        raise ValueError("matmul_tn_into: operands need unit column strides")
    lda = a.strides[0] // isz
    ldb = b.strides[0] // isz
    ldc = out.strides[0] // isz
    if ((k > 1 and (a.strides[0] % isz != 0 or lda < m or b.strides[0] % isz != 0 or ldb < n))
            or (m > 1 and (out.strides[0] % isz != 0 or ldc < n))):
        raise ValueError("matmul_tn_into: rows of the operands overlap")
    _tn_run(a, lda, b, ldb, out, ldc, m, n, k)


@register_jitable
def _tn_run(a, lda, b, ldb, out, ldc, m, n, k):
    """The packing buffers, then ``_tn_loops`` on ``a``'s, ``b``'s and ``out``'s data (shapes, strides
    and bounds checked by the caller)."""
    isz = a.itemsize
    kc, group = _blocks(n, k, isz)
    nr = NV * (VECTOR_BYTES // isz)
    buf = empty_aligned((group * kc * nr,), a.dtype)
    rest = m % MR
    a_rest = empty_aligned((kc * MR if rest else 1,), a.dtype)
    c_rest = empty_aligned((MR * n if rest else 1,), a.dtype)
    _tn_call(a, lda, b, ldb, out, ldc, m, n, k, buf, a_rest, c_rest)


@njit(cache=True, nogil=True, error_model="numpy")
def matmul_tn_rows_into(a_flat, a0, lda, k, m, b, out):
    """``out[:] = A.T @ b`` where A's row ``r < k`` is ``a_flat[a0 + r*lda : a0 + r*lda + m]``: rows at any
    step, overlapping ones included (a convolution's windows, for its kernel gradient without an
    im2col copy). ``a_flat`` 1-D C-contiguous, ``b (k, N)`` and ``out (m, N)`` unit column strides.
    Every row is checked to lie inside ``a_flat``."""
    n = b.shape[1]
    if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("matmul_tn_rows_into: operand shapes do not match")
    if m == 0 or n == 0:
        return
    if k == 0:
        out[:] = 0.0
        return
    if a0 < 0 or lda < 0 or a0 + (k - 1) * lda + m > a_flat.shape[0]:
        raise ValueError("matmul_tn_rows_into: rows outside the flat operand")
    isz = a_flat.itemsize
    if (a_flat.shape[0] > 1 and a_flat.strides[0] != isz) or (n > 1 and (b.strides[1] != isz
                                                                         or out.strides[1] != isz)):
        raise ValueError("matmul_tn_rows_into: operands need unit column strides")
    ldb = b.strides[0] // isz
    ldc = out.strides[0] // isz
    if (k > 1 and (b.strides[0] % isz != 0 or ldb < n)) or (m > 1 and (out.strides[0] % isz != 0 or ldc < n)):
        raise ValueError("matmul_tn_rows_into: rows of the operands overlap")
    _tn_run(a_flat[a0:], lda, b, ldb, out, ldc, m, n, k)


@njit(cache=True, nogil=True, error_model="numpy")
def matmul_nt_into(a, b, out):
    """``out[:] = a @ b.T`` for ``a (R, K)`` (unit column stride, any row stride), a small ``b (N, K)``
    (any strides: packed here) and ``out (R, N)``."""
    if b.shape[1] != a.shape[1]:
        raise ValueError("matmul_nt_into: operand shapes do not match")
    packed_matmul_into(a, pack(np.ascontiguousarray(b.T)), out)
