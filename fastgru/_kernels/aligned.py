"""Buffers whose first element starts a cache line (64 bytes), for compiled code and for Python.

Numba's ``np.empty`` aligns its data to 32 bytes and NumPy's to 16 (large NumPy arrays, taken from
``mmap``, start 16 bytes past a page), so half of Numba's buffers and most of NumPy's start mid-line:
then every 64-byte (AVX-512) vector load or store of a row spans two cache lines. The step product
``(1, 64) @ (64, 192)`` against packed panels ran 0.30 us with the panels on a line boundary and 0.53
us 32 or 16 bytes past one, and ``(1, 128) @ (128, 384)`` 1.63 against 2.81 us (same process,
AVX-512 Xeon): which of the two a process got depended on where ``malloc`` put the buffer, so the
same program ran S1 in 90 us in one process and 122 us in the next. Every buffer the kernels stream
with vector loads or stores (packed panels, the time loops' scratch rows, the layers' outputs and the
training's saved gates) is allocated here instead.

``empty_aligned`` (compiled into its callers) and ``empty`` / ``zeros`` (Python) over-allocate by
64 bytes and return the aligned C-contiguous view (its ``base`` keeps the allocation alive); the
Python ones leave arrays under 16 KiB to NumPy (aligning them would cost more than it saves).
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading

import numpy as np
from numba import types
from numba.extending import intrinsic, overload

#: bytes: one cache line, and one AVX-512 vector
ALIGN = 64


@intrinsic
def _address(typingctx, arr):
    """``arr``'s data pointer as an integer."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, context.get_value_type(types.intp))

    return types.intp(arr), codegen


def starts_on_line(arr: np.ndarray) -> bool:
    """Whether ``arr``'s first element starts a cache line (from Python and from compiled code)."""
    return arr.ctypes.data % ALIGN == 0


@overload(starts_on_line, jit_options={"nogil": True})
def _starts_on_line_compiled(arr):
    def impl(arr):
        return _address(arr) % ALIGN == 0

    return impl


def _nbytes(shape: tuple, dtype) -> tuple[tuple, np.dtype, int]:
    dtype = np.dtype(dtype)
    return shape, dtype, dtype.itemsize * math.prod(shape)


def _aligned_view(shape, dtype, nbytes, raw=None) -> np.ndarray:
    raw = np.empty(nbytes + ALIGN, np.uint8) if raw is None else raw
    offset = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % ALIGN
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


def empty_aligned(shape, dtype) -> np.ndarray:
    """A new uninitialised C-contiguous array of ``shape`` (a tuple) and ``dtype`` starting on a
    64-byte boundary, whatever its size (compiled code: see the overload below)."""
    shape, dtype, nbytes = _nbytes(shape, dtype)
    return _aligned_view(shape, dtype, nbytes)


@overload(empty_aligned, jit_options={"nogil": True})
def _empty_aligned_compiled(shape, dtype):
    def impl(shape, dtype):
        n = 1
        for s in shape:
            n *= s
        raw = np.empty(n + ALIGN // 4, dtype)  # 64 bytes more, whatever the item size (4 or 8)
        offset = ((-_address(raw)) % ALIGN) // raw.itemsize
        return raw[offset:offset + n].reshape(shape)

    return impl


def zeros_aligned(shape, dtype) -> np.ndarray:
    """:func:`empty_aligned` filled with zeros."""
    out = empty_aligned(shape, dtype)
    out.fill(0)
    return out


@overload(zeros_aligned, jit_options={"nogil": True})
def _zeros_aligned_compiled(shape, dtype):
    def impl(shape, dtype):
        out = empty_aligned(shape, dtype)
        out[...] = 0
        return out

    return impl


def aligned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` starting on a cache line (``a`` itself when it holds no elements or is
    0-d): the layers' weights, which the inference loops may read in place (``packed.operand``)."""
    if a.ndim == 0 or a.size == 0:
        return a
    out = _aligned_view(a.shape, a.dtype, a.nbytes)
    out[...] = a
    return out


#: arrays smaller than this come straight from NumPy: aligning costs ~1.3 us of Python (about what a
#: whole small layer call spends in its kernel's gate math), and a few vector rows gain nothing
PY_ALIGN_MIN_BYTES = 16384


def empty(shape: tuple, dtype) -> np.ndarray:
    """NumPy's ``empty`` (``shape`` a tuple), the data on a 64-byte boundary from ``PY_ALIGN_MIN_BYTES`` up."""
    dtype = np.dtype(dtype)  # (inline, not _nbytes: every layer call makes its outputs here)
    nbytes = dtype.itemsize * math.prod(shape)
    return np.empty(shape, dtype) if nbytes < PY_ALIGN_MIN_BYTES else _aligned_view(shape, dtype, nbytes)


def zeros(shape: tuple, dtype) -> np.ndarray:
    """NumPy's ``zeros`` (``shape`` a tuple), the data on a 64-byte boundary from ``PY_ALIGN_MIN_BYTES`` up."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < PY_ALIGN_MIN_BYTES:
        return np.zeros(shape, dtype)
    out = _aligned_view(shape, dtype, nbytes)
    out.fill(0)
    return out


#: buffers from this size up are taken from ``mmap`` at every allocation (glibc's malloc keeps freed
#: memory for reuse only up to 32 MiB), so their pages are faulted in and zeroed by the kernel on first
#: touch, every time: an LSTM's saved gates at S3 (46 MB) cost 4.2 ms of page faults per training step
REUSE_MIN_BYTES = 32 << 20
#: large blocks kept for reuse, most recently used first (at most ``_POOL_BLOCKS``)
_pool: list[np.ndarray] = []
_POOL_BLOCKS = 8
_pool_lock = threading.Lock()


def _refs(pool: list, i: int) -> int:
    return sys.getrefcount(pool[i])


#: ``_refs`` of a pooled block that no array outside the pool refers to (measured, not assumed: it
#: depends on the interpreter)
_FREE_REFS = _refs([np.empty(1, np.uint8)], 0)


def empty_reused(shape: tuple, dtype) -> np.ndarray:
    """:func:`empty` for a large scratch buffer that lives for one training step (the recurrent layers'
    saved gates): from ``REUSE_MIN_BYTES`` up, the memory of an earlier buffer of the same size is
    reused once no array refers to it any more (every view of a block keeps it as its ``base``, so its
    reference count says when it is free), instead of fresh pages from ``mmap``. Up to ``_POOL_BLOCKS``
    free blocks stay allocated between steps (what the training step used at its peak anyway)."""
    shape, dtype, nbytes = _nbytes(shape, dtype)
    if nbytes < REUSE_MIN_BYTES:
        return empty(shape, dtype)
    size = nbytes + ALIGN
    with _pool_lock:
        free = [i for i in range(len(_pool)) if _pool[i].nbytes == size and _refs(_pool, i) == _FREE_REFS]
        chosen = _pool.pop(free[0]) if free else np.empty(size, np.uint8)
        _pool.insert(0, chosen)
        # beyond the cap, forget the least recently used blocks that no array uses
        for i in range(len(_pool) - 1, _POOL_BLOCKS - 1, -1):
            if _refs(_pool, i) == _FREE_REFS:
                del _pool[i]
        return _aligned_view(shape, dtype, nbytes, chosen)
