"""Atomic loads and stores on an int64 array, and bounded spin-waits on them: how fastgru's threads
hand each other work without sleeping (``fastgru._spin_pool``).

A thread woken from sleep on a futex reaches its CPU tens of microseconds later on a virtual machine
(an idle vCPU is halted and needs an interrupt through the hypervisor): a hand-off to a sleeping
worker and back cost 75-90 us on the 2-vCPU Xeon of docs/benchmarks.md, as long as the whole GRU
call of S2. A thread that spins on a flag sees it change within a cache-line transfer (well under a
microsecond). The waits here are bounded (``max_spins`` rounds) and release the GIL, so a thread spins
without holding up Python in the other threads; after the bound it goes to sleep the ordinary way.

``publish`` is a release store and the waits read with acquire loads: whatever a thread wrote before
publishing (the task it hands over, the outputs of a finished chunk) is visible to the thread that
sees the new value.

The flags live in an int64 array that the caller owns and keeps alive; every function here takes its
address and length, ``(base, size)`` = ``(flags.ctypes.data, flags.shape[0])``, and checks each index
against the length. (An array passed from Python would be wrapped in a Numba memory record at every
call: an allocation each time, which the training's allocation count would see, and ~0.3 us.)
"""

from __future__ import annotations

from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: the spin loop's ``pause`` (x86: eases the core's pipeline and its hyperthread sibling while waiting;
#: elsewhere nothing is emitted)
_X86 = llvm_binding.get_process_triple().split("-")[0] in ("x86_64", "i386", "i686", "amd64")


def _element_pointer(context, builder, sig, base, idx):
    """``(int64*) base + idx``."""
    i64 = ir.IntType(64)
    return builder.gep(builder.inttoptr(base, i64.as_pointer()), [idx])


@intrinsic
def _load_acquire(typingctx, arr, idx):
    """``base[idx]`` (an int64 array's address) read with an atomic acquire load (never hoisted out of a
    loop); idx unchecked."""
    if not isinstance(arr, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_element_pointer(context, builder, sig, args[0], args[1]), "acquire", 8)

    return types.int64(types.int64, types.intp), codegen


@intrinsic
def _store_release(typingctx, arr, idx, value):
    """``base[idx] = value`` as an atomic release store; idx unchecked."""
    if not isinstance(arr, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        builder.store_atomic(args[2], _element_pointer(context, builder, sig, args[0], args[1]), "release", 8)
        return context.get_dummy_value()

    return types.void(types.int64, types.intp, types.int64), codegen


@intrinsic
def _pause(typingctx):
    """x86's ``pause`` (nothing elsewhere)."""

    def codegen(context, builder, sig, args):
        if _X86:
            fn = builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(fn, [])
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _compare_exchange(typingctx, arr, idx, expected, value):
    """``base[idx] = value`` if it holds ``expected`` (atomically, acquire-release); returns whether it did."""
    if not isinstance(arr, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig, args[0], args[1])
        pair = builder.cmpxchg(ptr, args[2], args[3], "acq_rel", "acquire")
        return builder.extract_value(pair, 1)

    return types.boolean(types.int64, types.intp, types.int64, types.int64), codegen


@njit(cache=True, nogil=True)
def publish(base, size, idx, value):
    """``flags[idx] = value`` (a release store)."""
    if idx < 0 or idx >= size:
        raise IndexError("publish: flag index out of range")
    _store_release(base, idx, value)


#: a kernel's ``post`` argument when it has no task to publish (:func:`publish_post`): ``(flags base,
#: flags size, index, value, record base, record size, worker's first row, worker's row end)``
NO_POST = (0, 0, 0, 0, 0, 0, 0, 0)


@njit(cache=True, nogil=True)
def publish_post(post):
    """A kernel's first step when it runs a chunk of a call split between threads: ``post`` (8 int64,
    :data:`NO_POST`'s layout) publishes another thread's task (``flags[idx] = value``, a release store)
    from inside the kernel, once this thread has released the GIL (``_spin_pool``'s deferred hand-off;
    the task's record, when there is one, written first: ``task_records``); base 0 publishes nothing."""
    base, size, idx, value = post[0], post[1], post[2], post[3]
    if base != 0:
        publish(base, size, idx, value)


@njit(cache=True, nogil=True)
def wait_while_equal(base, size, idx, value, max_spins):
    """Spin while ``flags[idx] == value``, at most ``max_spins`` rounds; returns the value last read
    (``value`` itself when the bound ran out). Releases the GIL."""
    if idx < 0 or idx >= size:
        raise IndexError("wait_while_equal: flag index out of range")
    seen = _load_acquire(base, idx)
    spins = 0
    while seen == value and spins < max_spins:
        _pause()
        spins += 1
        seen = _load_acquire(base, idx)
    return seen


@njit(cache=True, nogil=True)
def wait_until_equal(base, size, idx, value, max_spins):
    """Spin until ``flags[idx] == value``, at most ``max_spins`` rounds; returns whether it got there.
    Releases the GIL."""
    if idx < 0 or idx >= size:
        raise IndexError("wait_until_equal: flag index out of range")
    spins = 0
    while _load_acquire(base, idx) != value:
        if spins >= max_spins:
            return False
        _pause()
        spins += 1
    return True


@njit(cache=True)
def publish_holding_gil(base, size, idx, value):
    """``publish`` without releasing the GIL (a compiled call that releases it gives another thread the
    chance to take it, and this one then sleeps until it is handed back)."""
    if idx < 0 or idx >= size:
        raise IndexError("publish_holding_gil: flag index out of range")
    _store_release(base, idx, value)


@njit(cache=True, nogil=True)
def claim(base, size, idx, expected, value):
    """Set ``flags[idx]`` from ``expected`` to ``value`` atomically; returns whether this call did (a task's
    claim: exactly one of the threads that try it gets it). Releases the GIL."""
    if idx < 0 or idx >= size:
        raise IndexError("claim: flag index out of range")
    return _compare_exchange(base, idx, expected, value)


@njit(cache=True, nogil=True)
def post_and_wait_claim(base, size, posted_at, claimed_at, seq, max_spins, grace_spins):
    """The caller's hand-off: publish task ``seq`` at ``posted_at``, spin until it is claimed
    (``flags[claimed_at] == seq``; at most ``max_spins`` rounds), then ``grace_spins`` rounds more while
    the worker's Python reaches its compiled kernel. Returns whether the task was claimed. Releases the
    GIL for all of it, so the worker takes the GIL without waiting for it."""
    if posted_at < 0 or posted_at >= size or claimed_at < 0 or claimed_at >= size:
        raise IndexError("post_and_wait_claim: flag index out of range")
    _store_release(base, posted_at, seq)
    if not wait_until_equal(base, size, claimed_at, seq, max_spins):
        return False
    for _ in range(grace_spins):
        _pause()
    return True


@njit(cache=True, nogil=True)
def claim_next(base, size, posted_at, claimed_at, last, max_spins):
    """Spin for a task posted past ``last`` (at most ``max_spins`` rounds) and claim it: returns the task
    claimed, 0 when none came, or -1 when the value posted is negative (stop). A task the caller took
    back meanwhile is skipped (its claim fails; the loop goes on). Indexes unchecked: the callers check."""
    spins = 0
    while True:  # (the flag is read at least once, also with max_spins 0)
        posted = _load_acquire(base, posted_at)
        if posted < 0:
            return -1
        if posted > last:
            if _compare_exchange(base, claimed_at, posted - 1, posted):
                return posted
            last = posted  # (the caller took it back and ran it itself)
        if spins >= max_spins:
            return 0
        _pause()
        spins += 1


@njit(cache=True, nogil=True)
def finish_and_claim_next(base, size, posted_at, claimed_at, done_at, done_seq, max_spins):
    """The worker's side: publish task ``done_seq`` done, spin for the next task (``flags[posted_at]``
    past ``done_seq``; at most ``max_spins`` rounds) and claim it. Returns the task claimed, 0 when
    none came, or -1 when the value posted is negative (stop). A task the caller took back meanwhile is
    skipped (its claim fails; the loop goes on). Releases the GIL before publishing, so the caller,
    spinning for the result, finds the GIL free."""
    if (posted_at < 0 or posted_at >= size or claimed_at < 0 or claimed_at >= size
            or done_at < 0 or done_at >= size):
        raise IndexError("finish_and_claim_next: flag index out of range")
    _store_release(base, done_at, done_seq)
    return claim_next(base, size, posted_at, claimed_at, done_seq, max_spins)
