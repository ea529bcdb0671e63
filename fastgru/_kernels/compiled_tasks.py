"""A worker thread's loop in compiled code: it spins for its next task and runs the inference forwards
written down as task records (``task_records``) itself, without returning to Python; any other task
goes back to the worker's Python (``fastgru._spin_pool``).

Handed over through Python, a worker's chunk reached its kernel ~5 us after it was posted (its
interpreter loop, the chunk's driver, the unboxing of the kernel's 23 arguments), and the caller's own
Python ran slower meanwhile (it reached ``run_chunks`` at 11.8 us into an S2 call, 10.6 with the worker
in compiled code; the Python of two threads touches the same objects' reference counts). Here the
worker reads the record and calls the kernel directly: compiled code all the way, the GIL never taken
(docs/performance.md, "Handing chunks to the workers").
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

from .atomics import claim_next, publish
from .gru import gru_forward_slice
from .lstm import lstm_forward_slice
from .packed import _LoopsSlot
from .shared_projection import project_shared
from .simple_rnn import simple_rnn_forward_slice
from .task_records import (
    KIND_GRU,
    KIND_LSTM,
    KIND_PROJECTION,
    KIND_PYTHON,
    KIND_SIMPLE_RNN,
    R_B0,
    R_B1,
    R_ERROR,
    R_FIELDS,
    R_KIND,
    RECORD_LEN,
    f32_at,
    i64_at,
    u8_at,
)


@njit(inline="always")
def _no_post():
    """``atomics.NO_POST`` typed as the Python callers' post (int64, not literal zeros: a tuple of
    literals would compile the kernels once more)."""
    z = np.int64(0)
    return (z, z, z, z, z, z, z, z)


@njit(inline="always")
def _f32_1(rec, p):
    return carray(f32_at(rec[p]), (rec[p + 1],)), p + 2


@njit(inline="always")
def _f32_2(rec, p):
    return carray(f32_at(rec[p]), (rec[p + 1], rec[p + 2])), p + 3


@njit(inline="always")
def _f32_3(rec, p):
    return carray(f32_at(rec[p]), (rec[p + 1], rec[p + 2], rec[p + 3])), p + 4


@njit(inline="always")
def _u8_2(rec, p):
    return carray(u8_at(rec[p]), (rec[p + 1], rec[p + 2])), p + 3


@njit(inline="always")
def _head(rec):
    """The fields every cell's record starts with (``task_records._put_head``), and the next position."""
    xp, p = _f32_3(rec, R_FIELDS)
    x, p = _f32_3(rec, p)
    w, p = _f32_2(rec, p)
    b_in, p = _f32_1(rec, p)
    block = rec[p]
    u, p = _f32_2(rec, p + 1)
    return xp, x, w, b_in, block, u, p


@njit(nogil=True)
def _run_gru(rec):
    xp, x, w, b_in, block, u, p = _head(rec)
    u_h, p = _f32_2(rec, p)
    b_rec, p = _f32_1(rec, p)
    h0, p = _f32_2(rec, p)
    mask, p = _u8_2(rec, p)
    use_mask, act, ract, reset_after, go_backwards, return_sequences, zero_output = (
        rec[p] != 0, rec[p + 1], rec[p + 2], rec[p + 3] != 0, rec[p + 4] != 0, rec[p + 5] != 0, rec[p + 6] != 0)
    out, p = _f32_3(rec, p + 7)
    h_last, p = _f32_2(rec, p)
    saved, p = _f32_3(rec, p)
    save = rec[p] != 0
    if not (0 <= rec[R_B0] <= rec[R_B1] <= x.shape[0]):
        return False
    gru_forward_slice(xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, use_mask, act, ract, reset_after, go_backwards,
                      return_sequences, zero_output, out, h_last, saved, save, rec[R_B0], rec[R_B1], _no_post(),
                      np.empty(0, np.int64))
    return True


@njit(nogil=True)
def _run_lstm(rec):
    xp, x, w, b_in, block, u, p = _head(rec)
    u4, p = _f32_3(rec, p)
    rmask, p = _f32_3(rec, p)
    use_rmask = rec[p] != 0
    h0, p = _f32_2(rec, p + 1)
    c0, p = _f32_2(rec, p)
    mask, p = _u8_2(rec, p)
    use_mask, act, ract, go_backwards, return_sequences, zero_output = (
        rec[p] != 0, rec[p + 1], rec[p + 2], rec[p + 3] != 0, rec[p + 4] != 0, rec[p + 5] != 0)
    out, p = _f32_3(rec, p + 6)
    h_last, p = _f32_2(rec, p)
    c_last, p = _f32_2(rec, p)
    saved, p = _f32_3(rec, p)
    save = rec[p] != 0
    if not (0 <= rec[R_B0] <= rec[R_B1] <= x.shape[0]):
        return False
    lstm_forward_slice(xp, x, w, b_in, block, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, act, ract, go_backwards,
                       return_sequences, zero_output, out, h_last, c_last, saved, save, rec[R_B0], rec[R_B1],
                       _no_post(), np.empty(0, np.int64))
    return True


@njit(nogil=True)
def _run_simple_rnn(rec):
    xp, x, w, b_in, block, u, p = _head(rec)
    rmask, p = _f32_2(rec, p)
    use_rmask = rec[p] != 0
    h0, p = _f32_2(rec, p + 1)
    mask, p = _u8_2(rec, p)
    use_mask, act, go_backwards, return_sequences, zero_output = (
        rec[p] != 0, rec[p + 1], rec[p + 2] != 0, rec[p + 3] != 0, rec[p + 4] != 0)
    out, p = _f32_3(rec, p + 5)
    h_last, p = _f32_2(rec, p)
    saved, p = _f32_3(rec, p)
    save = rec[p] != 0
    if not (0 <= rec[R_B0] <= rec[R_B1] <= x.shape[0]):
        return False
    simple_rnn_forward_slice(xp, x, w, b_in, block, u, rmask, use_rmask, h0, mask, use_mask, act, go_backwards,
                             return_sequences, zero_output, out, h_last, saved, save, rec[R_B0], rec[R_B1], _no_post())
    return True


@njit(nogil=True)
def _run_projection(rec):
    x, p = _f32_3(rec, R_FIELDS)
    w, p = _f32_2(rec, p)
    b_in, p = _f32_1(rec, p)
    xp, p = _f32_3(rec, p)
    progress = carray(i64_at(rec[p]), (rec[p + 1],))
    block, b0, nb, go_backwards = rec[p + 2], rec[p + 3], rec[p + 4], rec[p + 5] != 0
    project_shared(x, w, b_in, xp, progress, block, b0, nb, go_backwards)
    return True


@njit(inline="always")
def _record_outcome(rec, ok):
    rec[R_ERROR] = 0 if ok else 1


# each kind's C-callable entry, ``void(int64* record)``: the outcome in the record's error slot (0: done;
# 1: the kernel raised or the rows were out of range, and the caller runs the task's Python, which
# raises the same error with its message)
def _task_gru(recp):
    rec = carray(recp, (RECORD_LEN,))
    ok = False
    try:
        ok = _run_gru(rec)
    except Exception:  # noqa: BLE001  (reported through the record)
        ok = False
    _record_outcome(rec, ok)


def _task_lstm(recp):
    rec = carray(recp, (RECORD_LEN,))
    ok = False
    try:
        ok = _run_lstm(rec)
    except Exception:  # noqa: BLE001
        ok = False
    _record_outcome(rec, ok)


def _task_simple_rnn(recp):
    rec = carray(recp, (RECORD_LEN,))
    ok = False
    try:
        ok = _run_simple_rnn(rec)
    except Exception:  # noqa: BLE001
        ok = False
    _record_outcome(rec, ok)


def _task_projection(recp):
    rec = carray(recp, (RECORD_LEN,))
    ok = False
    try:
        ok = _run_projection(rec)
    except Exception:  # noqa: BLE001
        ok = False
    _record_outcome(rec, ok)


#: each kind's runner, compiled once as a C-callable function and called through a cell
#: (``packed._LoopsSlot``): serve_next's own code stays small, and a kind is compiled only once a call
#: of that kind is split (``ready``), not every kernel for a GRU's first split call
_SLOTS = {kind: _LoopsSlot(types.int64, entry, "p")
          for kind, entry in ((KIND_GRU, _task_gru), (KIND_LSTM, _task_lstm), (KIND_SIMPLE_RNN, _task_simple_rnn),
                              (KIND_PROJECTION, _task_projection))}


def ready(kind: int) -> None:
    """Compile (or load from Numba's cache) the runner of ``kind`` now, in the caller's thread, before the
    first task of that kind is posted (else the worker compiles it, through the cell's resolver)."""
    slot = _SLOTS[kind]
    if slot.compiled is None:
        slot.load()


def _slot_call(kind):
    slot = _SLOTS[kind]

    @intrinsic
    def call(typingctx, recp):
        if recp != types.CPointer(types.int64):
            return None

        def codegen(context, builder, sig, args):
            slot.call_codegen(builder, context, [args[0]])
            return context.get_dummy_value()

        return types.void(recp), codegen

    return call


_call_gru, _call_lstm, _call_simple_rnn, _call_projection = (
    _slot_call(k) for k in (KIND_GRU, KIND_LSTM, KIND_SIMPLE_RNN, KIND_PROJECTION))


@njit(cache=True, nogil=True)
def _run_record(record_base, kind):
    """Run the record's task through its kind's cell; returns whether it ran without error."""
    recp = i64_at(record_base)
    if kind == KIND_GRU:
        _call_gru(recp)
    elif kind == KIND_LSTM:
        _call_lstm(recp)
    elif kind == KIND_SIMPLE_RNN:
        _call_simple_rnn(recp)
    elif kind == KIND_PROJECTION:
        _call_projection(recp)
    else:
        return False
    return carray(recp, (RECORD_LEN,))[R_ERROR] == 0


@njit(cache=True, nogil=True)
def serve_next(base, size, posted_at, claimed_at, done_at, done_seq, max_spins, record_base, record_size):
    """The worker's side of ``fastgru._spin_pool`` with compiled tasks: publish task ``done_seq`` done,
    then spin for tasks (``atomics.claim_next``, ``max_spins`` rounds after each) and run every one whose
    record (``record_base``, ``record_size`` int64) is an inference forward, publishing each done.
    Returns ``(1, seq)`` for a claimed task that needs Python, ``(0, last done)`` when none came within
    the spin, ``(-1, last done)`` to stop. Releases the GIL."""
    if (posted_at < 0 or posted_at >= size or claimed_at < 0 or claimed_at >= size or done_at < 0 or done_at >= size
            or (record_base != 0 and record_size < RECORD_LEN)):
        raise IndexError("serve_next: flag index or record length out of range")
    publish(base, size, done_at, done_seq)
    last = done_seq
    while True:
        got = claim_next(base, size, posted_at, claimed_at, last, max_spins)
        if got <= 0:
            return got, last
        if record_base == 0:
            return 1, got
        rec = carray(i64_at(record_base), (record_size,))
        kind = rec[R_KIND]
        if kind == KIND_PYTHON:
            return 1, got
        if not _run_record(record_base, kind):
            rec[R_ERROR] = 1
        publish(base, size, done_at, got)
        last = got
