"""Pieces the GRU and LSTM training kernels share: the input projection with dropout masks, the
input-side gradients, and bias column sums, each over one chunk of batch rows (B_c*T rows at once).

Shapes: B batch, T steps, D features, n = G*H gate columns (G = 3 for GRU, 4 for LSTM), the gate
blocks side by side in Keras's order. Input dropout masks ``imask`` are (n_imask, B, D), already
scaled by 1/(1 - rate): n_imask 0 no dropout, 1 one mask for every gate (Keras's implementation 2),
G one mask per gate (implementation 1, which Keras uses when ``recurrent_dropout`` > 0).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numba.extending import register_jitable

from .aligned import empty_aligned
from .gradient_products import matmul_nt_into, matmul_tn_into
from .packed import operand, operand_matmul_into, pack, packed_matmul_into
from .simd import L2_BYTES, MR


class LoopFlags(NamedTuple):
    """The options every recurrent time loop takes, as one value: ``fastgru.ops`` builds it once per call
    and passes it, with the arrays, to a ``*_chunk`` driver (positionally for inference, by keyword for
    training); the driver hands the fields to the compiled loops (plain ints and bools there, so a loop
    is compiled once whatever their values)."""

    act: int  #: the candidate's / output's activation code (``fast_code`` applied)
    ract: int  #: the gates' activation code (SimpleRNN has none: 0)
    go_backwards: bool
    return_sequences: bool
    zero_output_for_mask: bool


#: zero-size arrays for a time loop's unused array arguments (never written; shared, as allocating
#: them cost ~0.3 us each of a short layer call)
_EMPTY = {(np.dtype(dt), nd): np.zeros((0,) * nd, dt) for dt in (np.float32, np.float64) for nd in (2, 3)}


def empty_array(dtype, ndim: int) -> np.ndarray:
    """A shared zero-size float array of ``dtype`` with ``ndim`` (2 or 3) dimensions."""
    return _EMPTY[dtype, ndim]


def projection_block_steps(rows: int, steps: int, n: int, itemsize: int) -> int:
    """Steps per block of the inference loops' in-loop input projection: as many as keep one block
    (steps, rows, n) within a quarter of L2 (at least 1, at most ``steps``), so that the block is
    still in cache when the time loop reads it, and the (B, T, n) projection is never allocated."""
    block = (L2_BYTES // 4) // (rows * n * itemsize or 1)  # (plain operations: called once per layer call)
    if block > steps:
        block = steps
    return block if block > 1 else 1


@register_jitable
def block_projection_buffers(w, block, rows, dtype):
    """``(operand(w), (block, rows, n) buffer)`` for a loop that projects ``block`` steps at a time
    (``packed.operand``: w read in place or packed); an empty operand and buffer of the same types when
    ``block`` is 0 (the loop reads a given projection instead)."""
    if block > 0:
        return operand(w, max(rows, block)), empty_aligned((block, rows, w.shape[1]), dtype)
    return (np.empty(0, dtype), 0, 0, 0, 0), np.empty((0, 0, 0), dtype)  # (the operand of no product)


@njit(cache=True, nogil=True, error_model="numpy")
def project_block(x, wp, b, xpc, b0, nb, t_lo, t_hi):
    """``xpc[t - t_lo, bb] = x[b0 + bb, t] @ w + b`` for steps ``t_lo <= t < t_hi`` and rows ``bb < nb``.

    x (B, T, D); wp = ``operand(w, rows)`` for w (D, n) (``packed.operand``); b (n,); xpc
    (>= t_hi - t_lo, >= nb, n). One product per step (nb rows) when the rows are at least as many as
    the steps, else one per row (its steps are consecutive rows of x): either way each output row is
    the same fixed-order sum as in the one product over all B*T rows (the micro-kernel is
    row-invariant), so the result is bit-identical to projecting the whole sequence at once.
    """
    n = xpc.shape[2]
    nt = t_hi - t_lo
    if b.shape[0] != 0 and b.shape[0] != n:
        raise ValueError("project_block: the bias length does not match the projection's width")
    if nb >= nt:
        for c in range(nt):
            operand_matmul_into(x[b0:b0 + nb, t_lo + c], wp, xpc[c, 0:nb])
    else:
        for bb in range(nb):
            operand_matmul_into(x[b0 + bb, t_lo:t_hi], wp, xpc[0:nt, bb])
    if b.shape[0] > 0:
        for c in range(nt):
            for bb in range(nb):
                row = xpc[c, bb]
                for j in range(n):
                    row[j] += b[j]


@njit(cache=True, nogil=True, error_model="numpy")
def mask_rows(src, m, steps, dst):
    """``dst[r] = src[r] * m[r // steps]``: a per-sequence mask (rows of m) over (rows, n) rows."""
    for r in range(src.shape[0]):
        mrow = m[r // steps]
        srow = src[r]
        drow = dst[r]
        for j in range(src.shape[1]):
            drow[j] = srow[j] * mrow[j]


@njit(cache=True, nogil=True, error_model="numpy")
def project_train_slice(x, w, b_in, imask, n_imask, saved, b0, b1):
    """``saved[b0:b1, :, 0:n] = (x * m_g) @ W_g + b_in`` for rows ``b0:b1`` (one product per mask).

    x (B, T, D), w (D, n), b_in (n,), saved (B, T, >= n); imask as in the module docstring. The
    products run through the packed micro-kernel, as the inference projection's do
    (:func:`project_block`): training and inference forwards give bit-identical outputs.
    """
    steps = x.shape[1]
    d = x.shape[2]
    n = w.shape[1]
    width = n // n_imask if n_imask > 1 else n
    rows = (b1 - b0) * steps
    x2 = x[b0:b1].reshape(rows, d)
    s2 = saved[b0:b1].reshape(rows, saved.shape[2])
    xp = s2[:, 0:n]
    if b_in.shape[0] != n or saved.shape[2] < n:
        raise ValueError("project_train_slice: bias or saved rows do not match the kernel's width")
    if n_imask == 0:
        # blocks of rows whose (rows, n) projection stays in L2 until the bias is added to it (one
        # more pass over the whole projection from memory cost LSTM's S3 training projection ~30%);
        # row-invariant products: the same sums as one product over all rows
        wp = pack(w)
        block = max(MR, (L2_BYTES // 8) // (n * x.itemsize) // MR * MR)
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            packed_matmul_into(x2[r0:r1], wp, xp[r0:r1])
            add_bias_rows(s2, r0, r1, b_in, n)
        return
    xm = empty_aligned((rows, d), x.dtype)
    for g in range(n_imask):
        mask_rows(x2, imask[g, b0:b1], steps, xm)
        lo = g * width
        packed_matmul_into(xm, pack(np.ascontiguousarray(w[:, lo:lo + width])), xp[:, lo:lo + width])
    add_bias_rows(s2, 0, rows, b_in, n)


@register_jitable
def add_bias_rows(s2, r0, r1, b, n):
    """``s2[r, 0:n] += b[0:n]`` for rows ``r0 <= r < r1``."""
    for r in range(r0, r1):
        row = s2[r]  # a C-contiguous row (a column block's rows have a stride unknown at compile time: no vectors)
        for j in range(n):
            row[j] += b[j]


@njit(cache=True, nogil=True, error_model="numpy")
def input_grads_slice(x, w, g, imask, n_imask, dx, dw, b0, b1):
    """``dW = (x m)^T G`` and ``dX = (G W^T) m`` for rows ``b0:b1`` of one chunk.

    x (B, T, D); w (D, n); g (B_c*T, n) the chunk's pre-activation gradients (a strided view is
    fine); dw (D, n) written (this chunk's partial sum); dx (B, T, D) rows b0:b1 written, or an
    empty (0, 0, D) array to skip the input gradient.
    """
    steps = x.shape[1]
    d = x.shape[2]
    n = w.shape[1]
    rows = (b1 - b0) * steps
    x2 = x[b0:b1].reshape(rows, d)
    need_dx = dx.shape[0] > 0
    dx2 = dx[b0:b1].reshape(rows, d) if need_dx else dx.reshape(0, d)
    if n_imask == 0:
        matmul_tn_into(x2, g, dw)
        if need_dx:
            matmul_nt_into(g, w, dx2)
        return
    width = n // n_imask if n_imask > 1 else n
    xm = empty_aligned((rows, d), x.dtype)
    tmp = empty_aligned((rows if n_imask > 1 and need_dx else 0, d), x.dtype)
    for gi in range(n_imask):
        m = imask[gi, b0:b1]
        mask_rows(x2, m, steps, xm)
        lo = gi * width
        hi = lo + width
        matmul_tn_into(xm, g[:, lo:hi], dw[:, lo:hi])
        if not need_dx:
            continue
        if n_imask == 1:
            matmul_nt_into(g, w, dx2)
            mask_rows(dx2, m, steps, dx2)
        elif gi == 0:
            matmul_nt_into(g[:, lo:hi], w[:, lo:hi], tmp)
            mask_rows(tmp, m, steps, dx2)
        else:
            matmul_nt_into(g[:, lo:hi], w[:, lo:hi], tmp)
            mask_rows(tmp, m, steps, tmp)
            for r in range(rows):
                for j in range(d):
                    dx2[r, j] += tmp[r, j]


@register_jitable
def column_sums(s, c0, out):
    """``out[:] = s[:, c0:c0 + n].sum(axis=0)`` (n = len(out)) accumulated in out's dtype (float64 for
    the bias gradients), row after row. ``s`` is the whole C-contiguous (rows, width) buffer and c0
    the block's first column, not a column-block view: through a view (a non-contiguous array type)
    each row's elements have a stride unknown at compile time and the loop does not vectorise
    ((320, 192) of a (320, 320) buffer: 29 us that way, 8.4 us this way; same sums). Compiled into
    its callers (``register_jitable``: a dispatcher would compile one copy per literal ``c0``)."""
    n = out.shape[0]
    if c0 < 0 or c0 + n > s.shape[1]:
        raise ValueError("column_sums: the column block is outside the buffer")
    out[:] = 0.0
    for r in range(s.shape[0]):
        row = s[r]
        for j in range(n):
            out[j] += row[c0 + j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask):
    """The output of a masked step (the state is kept): zeros, or (return_sequences) the previous
    step's output, zeros before any step. out (B, T or 1, H); i the processing step, oi its output row."""
    hdim = out.shape[2]
    if zero_output_for_mask:
        for j in range(hdim):
            out[b, oi, j] = 0.0
    elif return_sequences:
        for j in range(hdim):
            out[b, i, j] = out[b, i - 1, j] if i > 0 else 0.0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def step_output_grad(carry_row, d_out, b, i, return_sequences, gout):
    """``gout`` = dL/d(output of step i) of row b: what repeated outputs carried back, plus the
    outputs' own gradient at step i (return_sequences). d_out (B, T or 1, H)."""
    if return_sequences:
        orow = d_out[b, i]
        for j in range(gout.shape[0]):
            gout[j] = carry_row[j] + orow[j]
    else:
        for j in range(gout.shape[0]):
            gout[j] = carry_row[j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def initial_rows(s0, b0, dst, n):
    """``dst[0:n] = s0[b0:b0+n]``, or zeros when ``s0`` is empty (0 rows: no initial state given, and
    the caller skipped a (B, H) array of zeros). Checks that the rows lie inside ``s0``."""
    if s0.shape[0] == 0:
        for r in range(n):
            drow = dst[r]
            for j in range(drow.shape[0]):
                drow[j] = 0.0
        return
    if b0 < 0 or s0.shape[0] < b0 + n or s0.shape[1] != dst.shape[1]:
        raise ValueError("initial state rows do not match the batch or the units")
    copy_rows(s0, b0, dst, 0, n)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def copy_rows(src, s0, dst, d0, n):
    """``dst[d0:d0+n] = src[s0:s0+n]`` for 2-D arrays, element by element (a whole-row assignment
    would compile Numba's shape-mismatch error path into every time-loop kernel)."""
    for r in range(n):
        srow = src[s0 + r]
        drow = dst[d0 + r]
        for j in range(drow.shape[0]):
            drow[j] = srow[j]
