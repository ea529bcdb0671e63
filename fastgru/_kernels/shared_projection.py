"""The input projection of a time loop shared with a second thread: the worker projects blocks of steps
ahead while the loop's own thread runs the recurrence (a batch of one sequence, which has no rows to
split between threads).

A time loop projects its inputs ``x @ W + b`` a block of steps at a time (``rnn_common.project_block``).
With rows to spare, two threads each take a share of the batch rows; one sequence cannot be split that
way. Here its projection goes into one buffer for the whole sequence, ``xp (T, rows, n)``, in blocks of
``block`` steps, each with a progress flag in ``progress`` (int64, one per block): 0 free, 1 claimed,
2 done. Either thread claims a free block with a compare-and-swap and projects it; the loop's thread,
reaching a block, projects it itself if no one has claimed it, else waits for the worker to finish it
(and prefetches the next one: the worker's lines are in the other core's cache). So the worker may
start late (asleep, or its CPU taken) or not at all: the loop's thread then projects every block, as
it would alone. Each block is ``project_block``'s product of the same rows, so the values are
bit-identical to the one-thread loop's.

When it pays (measured on the 2-vCPU Xeon, docs/performance.md): the loop's thread reads every value
the worker wrote from the other core (~0.5 ns an element there, even prefetched), and the hand-off
costs ~5 us of Python; against that it saves D multiply-adds an element. One sequence of S1's
1x100x50->64 ran 0.062 ms alone and 0.068 shared; (1, 100, 256 -> 256) 0.93 -> 0.72 ms, (1, 200,
128 -> 128) 0.46 -> 0.38. So only calls with ``MIN_FEATURES`` features and ``MIN_UNITS`` units share.

Blocks are numbered in processing order (``go_backwards``: block 0 holds the last steps).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from .aligned import _address
from .atomics import _load_acquire, _pause, claim, publish
from .packed import operand
from .rnn_common import project_block

FREE, CLAIMED, DONE = 0, 1, 2
#: a time loop's ``progress`` when its projection is not shared (no blocks)
NO_PROGRESS = np.zeros(0, np.int64)
#: multiply-adds of one block's projection (~0.6 us of work), small enough that the loop's thread waits
#: little for the first blocks, large enough that a block is one product
BLOCK_WORK = 65536
#: the projection's multiply-adds below which a call does not share it (the hand-off costs ~5 us)
MIN_WORK = 1_000_000
#: features and units below which sharing does not pay (measured: (1, 100, 64 -> 128) and (1, 100, 96
#: -> 96) 0.95x the time shared, (1, 100, 128 -> 64) 1.09x, S1's (1, 100, 50 -> 64) 1.10x)
MIN_FEATURES, MIN_UNITS = 64, 96
#: bytes of the shared projection buffer above which a call does not share it (the one-thread loop
#: projects into blocks that stay in L2 instead of holding the whole sequence's projection)
MAX_BYTES = 8 << 20


def shared_block_steps(rows: int, steps: int, d: int, units: int, n: int, itemsize: int) -> int:
    """Steps per shared block for a call of ``rows`` sequences (x (rows, steps, d) @ W (d, n), ``units``
    the layer's), or 0 when sharing the projection would not pay or would take too much memory."""
    work = rows * steps * d * n
    if d < MIN_FEATURES or units < MIN_UNITS or work < MIN_WORK or rows * steps * n * itemsize > MAX_BYTES:
        return 0
    return max(1, min(steps, BLOCK_WORK // max(1, rows * d * n)))


def n_blocks(steps: int, block: int) -> int:
    """Blocks of ``block`` steps that cover ``steps``."""
    return (steps + block - 1) // block


@register_jitable
def block_steps_range(k, block, steps, go_backwards):
    """``(t_lo, t_hi)``: the time steps of block ``k`` (processing order; with go_backwards, falling t)."""
    i0 = k * block
    i1 = min(steps, i0 + block)
    if go_backwards:
        return steps - i1, steps - i0
    return i0, i1


@intrinsic
def _prefetch_lines(typingctx, arr, start, stop):
    """Prefetch (for reading, into every cache level) the cache lines of a C-contiguous array's
    flat elements ``start:stop`` (unchecked: a prefetch of any address is harmless)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        intp = context.get_value_type(types.intp)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        itemsize = context.get_abi_sizeof(context.get_data_type(sig.args[0].dtype))
        step = ir.Constant(intp, max(1, 64 // itemsize))
        with cgutils.for_range_slice(builder, args[1], args[2], step, intp=intp) as (idx, _):
            ptr = builder.bitcast(builder.gep(ary.data, [idx]), i8p)
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, types.intp, types.intp), codegen


@register_jitable
def prefetch_block(progress, k, xp, block, go_backwards):
    """Start fetching block ``k`` of the shared projection into this core's caches when it is done: the
    worker wrote it, so each of its lines is in the other core's cache, and read one step at a time the
    time loop would wait for each step's lines in turn (S1: 79 against 62 us a call)."""
    if k < 0 or k >= progress.shape[0] or _load_acquire(_address(progress), k) != DONE:
        return
    t_lo, t_hi = block_steps_range(k, block, xp.shape[0], go_backwards)
    row = xp.shape[1] * xp.shape[2]
    _prefetch_lines(xp, t_lo * row, t_hi * row)


@register_jitable
def check_shared(x, w, b, xp, progress, block, b0, nb):
    """The shapes a shared projection relies on: xp (T, nb, n) for x (B, T, D) rows ``b0:b0+nb`` and
    w (D, n), b empty or (n,), one progress flag per block, C-contiguous flags."""
    steps = x.shape[1]
    n = w.shape[1]
    if (block < 1 or nb < 1 or b0 < 0 or b0 + nb > x.shape[0] or w.shape[0] != x.shape[2]
            or xp.shape[0] != steps or xp.shape[1] != nb or xp.shape[2] != n
            or (b.shape[0] != 0 and b.shape[0] != n)
            or progress.shape[0] != (steps + block - 1) // block or not progress.flags.c_contiguous):
        raise ValueError("shared projection: buffer, progress flags or rows do not match the input")


@register_jitable
def try_project_block(progress, k, x, wp, b, xp, b0, nb, block, go_backwards):
    """Claim block ``k`` and project it into ``xp`` (True), or False when another thread has claimed it."""
    base = _address(progress)
    size = progress.shape[0]
    # (the states as int64 values: a module constant passed to a compiled function would compile it anew for
    # that literal, Literal[int](2), beside its int64 signature)
    if not claim(base, size, k, np.int64(FREE), np.int64(CLAIMED)):
        return False
    t_lo, t_hi = block_steps_range(k, block, x.shape[1], go_backwards)
    project_block(x, wp, b, xp[t_lo:t_hi], b0, nb, t_lo, t_hi)
    publish(base, size, k, np.int64(DONE))
    return True


@register_jitable
def await_block(progress, k, x, wp, b, xp, b0, nb, block, go_backwards):
    """Block ``k`` in ``xp``: projected here if no thread has claimed it, else waited for (the thread
    that claimed it finishes it: a block's product raises nothing once ``check_shared`` has passed),
    then fetched into this core's caches with the next block when that is done (``prefetch_block``)."""
    if not try_project_block(progress, k, x, wp, b, xp, b0, nb, block, go_backwards):
        if k < 0 or k >= progress.shape[0]:
            raise IndexError("await_block: block index out of range")
        base = _address(progress)
        while _load_acquire(base, k) != DONE:
            _pause()
        prefetch_block(progress, k, xp, block, go_backwards)
    prefetch_block(progress, k + 1, xp, block, go_backwards)


@njit(cache=True, nogil=True, error_model="numpy")
def project_shared(x, w, b, xp, progress, block, b0, nb, go_backwards):
    """The worker's side: project every block no thread has claimed yet, in processing order.
    x (B, T, D), w (D, n), b (n,) or empty, xp (T, nb, n), progress (blocks,) int64; rows ``b0:b0+nb``."""
    check_shared(x, w, b, xp, progress, block, b0, nb)
    wp = operand(w, max(nb, block))
    for k in range(progress.shape[0]):
        try_project_block(progress, k, x, wp, b, xp, b0, nb, block, go_backwards)
