"""Task records: the worker's share of an inference forward written down as its arrays' addresses and
shapes and its scalar options, so that a worker thread runs it from compiled code without any Python
(``compiled_tasks.serve_next``).

A forward split between two threads runs chunk 0 in the calling thread; its kernel's first step writes
the worker's record (the same arrays, the worker's rows ``post[6]:post[7]``) into the row of int64 the
pool keeps for that worker (``post[4]``, ``post[5]``: its address and length), then publishes the post
(``atomics.publish_post``). The worker, spinning, claims it, reads the record, rebuilds the arrays with
``numba.carray`` and calls the same kernel. Only float32 calls whose arrays are all C-contiguous are
written down (the types ``serve_next`` was compiled for); anything else leaves ``KIND_PYTHON``, and
the worker runs the task's Python instead. The arrays stay alive meanwhile: the caller waits for the
worker's result before it returns (``_threads.run_chunks``).

Record layout: ``[kind, error, b0, b1, fields...]``, the fields in the kernel's argument order, each array
as its address then its shape, each scalar as one int64 (booleans 0 / 1).
"""

from __future__ import annotations

from numba import carray, types
from numba.extending import intrinsic, register_jitable

from .aligned import _address

KIND_PYTHON, KIND_GRU, KIND_LSTM, KIND_SIMPLE_RNN, KIND_PROJECTION = 0, 1, 2, 3, 4
R_KIND, R_ERROR, R_B0, R_B1, R_FIELDS = 0, 1, 2, 3, 4
#: int64 slots of one worker's record (the longest, the LSTM's, takes 60)
RECORD_LEN = 64


def _pointer_intrinsic(dtype):
    @intrinsic
    def at(typingctx, addr):
        if not isinstance(addr, types.Integer):
            return None

        def codegen(context, builder, sig, args):
            return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

        return types.CPointer(dtype)(types.int64), codegen

    return at


#: ``(dtype*) addr`` for the record's addresses
i64_at, f32_at, u8_at = (_pointer_intrinsic(t) for t in (types.int64, types.float32, types.uint8))


@register_jitable
def record_row(post):
    """The record a post points at, as an int64 array (empty when the post has none)."""
    if post[4] == 0 or post[5] < RECORD_LEN:
        return carray(i64_at(post[4]), (0,))
    return carray(i64_at(post[4]), (post[5],))


@register_jitable
def _put(rec, pos, a):
    rec[pos] = _address(a)
    for d in range(a.ndim):
        rec[pos + 1 + d] = a.shape[d]
    return pos + 1 + a.ndim


@register_jitable
def _put_scalars(rec, pos, values):
    for v in values:
        rec[pos] = v
        pos += 1
    return pos


@register_jitable
def _head_contiguous(xp, x, w, b_in, u, mask, out, h_last, saved):
    """The arrays every cell's record holds, C-contiguous (as ``compiled_tasks`` rebuilds them)."""
    return (xp.flags.c_contiguous and x.flags.c_contiguous and w.flags.c_contiguous and b_in.flags.c_contiguous
            and u.flags.c_contiguous and mask.flags.c_contiguous and out.flags.c_contiguous
            and h_last.flags.c_contiguous and saved.flags.c_contiguous)


@register_jitable
def _put_head(rec, xp, x, w, b_in, block, u):
    """The fields every cell's record starts with: xp, x, w, b_in, block, u; returns the next position."""
    p = _put(rec, R_FIELDS, xp)
    p = _put(rec, p, x)
    p = _put(rec, p, w)
    p = _put(rec, p, b_in)
    p = _put_scalars(rec, p, (block,))
    return _put(rec, p, u)


@register_jitable
def _start(rec, post, x, arrays_contiguous):
    """Mark the record as the Python task (what stays if it cannot be written down); True when the
    record may be written (a record given, float32, every array C-contiguous)."""
    if rec.shape[0] == 0:
        return False
    rec[R_KIND] = KIND_PYTHON
    if x.itemsize != 4 or not arrays_contiguous:
        return False
    rec[R_ERROR] = 0
    rec[R_B0] = post[6]
    rec[R_B1] = post[7]
    return True


@register_jitable
def record_gru(post, xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, use_mask, act, ract, reset_after, go_backwards,
               return_sequences, zero_output_for_mask, out, h_last, saved, save):
    """Write the worker's GRU record (``gru.gru_forward_slice``'s arguments) when the post has one."""
    if post[4] == 0:
        return
    rec = record_row(post)
    contiguous = (_head_contiguous(xp, x, w, b_in, u, mask, out, h_last, saved) and u_h.flags.c_contiguous
                  and b_rec.flags.c_contiguous and h0.flags.c_contiguous)
    if not _start(rec, post, x, contiguous):
        return
    p = _put_head(rec, xp, x, w, b_in, block, u)
    p = _put(rec, p, u_h)
    p = _put(rec, p, b_rec)
    p = _put(rec, p, h0)
    p = _put(rec, p, mask)
    p = _put_scalars(rec, p, (int(use_mask), act, ract, int(reset_after), int(go_backwards), int(return_sequences),
                              int(zero_output_for_mask)))
    p = _put(rec, p, out)
    p = _put(rec, p, h_last)
    p = _put(rec, p, saved)
    _put_scalars(rec, p, (int(save),))
    rec[R_KIND] = KIND_GRU


@register_jitable
def record_lstm(post, xp, x, w, b_in, block, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, act, ract, go_backwards,
                return_sequences, zero_output_for_mask, out, h_last, c_last, saved, save):
    """Write the worker's LSTM record (``lstm.lstm_forward_slice``'s arguments) when the post has one."""
    if post[4] == 0:
        return
    rec = record_row(post)
    contiguous = (_head_contiguous(xp, x, w, b_in, u, mask, out, h_last, saved) and u4.flags.c_contiguous
                  and rmask.flags.c_contiguous and h0.flags.c_contiguous and c0.flags.c_contiguous
                  and c_last.flags.c_contiguous)
    if not _start(rec, post, x, contiguous):
        return
    p = _put_head(rec, xp, x, w, b_in, block, u)
    p = _put(rec, p, u4)
    p = _put(rec, p, rmask)
    p = _put_scalars(rec, p, (int(use_rmask),))
    p = _put(rec, p, h0)
    p = _put(rec, p, c0)
    p = _put(rec, p, mask)
    p = _put_scalars(rec, p, (int(use_mask), act, ract, int(go_backwards), int(return_sequences),
                              int(zero_output_for_mask)))
    p = _put(rec, p, out)
    p = _put(rec, p, h_last)
    p = _put(rec, p, c_last)
    p = _put(rec, p, saved)
    _put_scalars(rec, p, (int(save),))
    rec[R_KIND] = KIND_LSTM


@register_jitable
def record_simple_rnn(post, xp, x, w, b_in, block, u, rmask, use_rmask, h0, mask, use_mask, act, go_backwards,
                      return_sequences, zero_output_for_mask, out, h_last, saved, save):
    """Write the worker's SimpleRNN record (``simple_rnn.simple_rnn_forward_slice``'s arguments) when the
    post has one."""
    if post[4] == 0:
        return
    rec = record_row(post)
    contiguous = (_head_contiguous(xp, x, w, b_in, u, mask, out, h_last, saved) and rmask.flags.c_contiguous
                  and h0.flags.c_contiguous)
    if not _start(rec, post, x, contiguous):
        return
    p = _put_head(rec, xp, x, w, b_in, block, u)
    p = _put(rec, p, rmask)
    p = _put_scalars(rec, p, (int(use_rmask),))
    p = _put(rec, p, h0)
    p = _put(rec, p, mask)
    p = _put_scalars(rec, p, (int(use_mask), act, int(go_backwards), int(return_sequences), int(zero_output_for_mask)))
    p = _put(rec, p, out)
    p = _put(rec, p, h_last)
    p = _put(rec, p, saved)
    _put_scalars(rec, p, (int(save),))
    rec[R_KIND] = KIND_SIMPLE_RNN


@register_jitable
def record_projection(post, x, w, b_in, xp, progress, block, b0, nb, go_backwards):
    """Write the worker's share of a shared input projection (``shared_projection.project_shared``'s
    arguments) when the post has one."""
    if post[4] == 0:
        return
    rec = record_row(post)
    contiguous = (x.flags.c_contiguous and w.flags.c_contiguous and b_in.flags.c_contiguous
                  and xp.flags.c_contiguous and progress.flags.c_contiguous)
    if not _start(rec, post, x, contiguous):
        return
    p = _put(rec, R_FIELDS, x)
    p = _put(rec, p, w)
    p = _put(rec, p, b_in)
    p = _put(rec, p, xp)
    p = _put(rec, p, progress)
    _put_scalars(rec, p, (block, b0, nb, int(go_backwards)))
    rec[R_KIND] = KIND_PROJECTION
