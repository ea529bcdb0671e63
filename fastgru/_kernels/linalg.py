"""BLAS gemm on strided operands, called from inside the kernels (the large products of training:
weight gradients, input gradients; Conv1D's shifted products).

The time loops' step products and the input projections do not go through BLAS: they use the packed
micro-kernel of :mod:`fastgru._kernels.packed`.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable


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
