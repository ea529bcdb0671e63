"""fastgru's spinning worker threads: each waits for its next chunk spinning on a flag for a short
while, then asleep (``_threads.run_chunks`` hands them the chunks of calls under ``SPIN_HANDOFF_WORK``).

A kernel call split over two threads runs one chunk in the calling thread and hands the other to a
worker. With an ordinary thread pool both ends of that hand-off sleep on a futex (the worker until
the task comes, the caller until the worker is done), and on a virtual machine each wake-up costs
tens of microseconds (``_kernels.atomics``): 75-100 us a call on the 2-vCPU Xeon, as long as a small
call's whole work. Here each worker has a mailbox: a task slot and three sequence numbers in a shared
int64 array (the task posted, claimed and done; a cache-line pair each):

* the caller posts a task and spins, without the GIL, until the worker claims it (a compare-and-swap),
  then ``GRACE_US`` more while the worker's Python reaches its compiled kernel: two threads that want
  the GIL at once put one of them to sleep, and its wake-up costs what the spinning saved;
* or (``submit_deferred``) the caller does not post at all: its own compiled kernel publishes the task as
  its first step, with the GIL released, so neither thread waits for the other (the inference forwards,
  whose chunk is one compiled call);
* after a task a worker publishes it done and spins for the next (``SPIN_US``, the GIL released; 0:
  never spin), then sleeps on its condition; a caller waiting for a result spins as long, then sleeps;
* a task the worker has not claimed when the caller asks for its result (the worker asleep, or its CPU
  taken by another process) is claimed and run by the caller: a busy core costs at most one thread's time.

A pool serves several calling threads: ``submit`` takes an idle worker, and runs the task in the caller
when every worker is busy (it would otherwise wait in a queue for one).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np

from ._kernels.atomics import (
    claim,
    finish_and_claim_next,
    post_and_wait_claim,
    publish_holding_gil,
    wait_until_equal,
    wait_while_equal,
)
from ._kernels.task_records import KIND_PYTHON, R_ERROR, R_KIND, RECORD_LEN

#: int64 slots between two flags: 128 bytes (the adjacent-line prefetcher fetches lines in pairs)
_STRIDE = 16
#: microseconds a worker spins for its next task, and a caller for a worker's result, before sleeping
SPIN_US = max(0.0, float(os.environ.get("FASTGRU_SPIN_US", "1000")))
#: microseconds the caller spins on after the worker marked its task started, while the worker's Python
#: reaches its compiled kernel (which releases the GIL)
GRACE_US = float(os.environ.get("FASTGRU_SPIN_GRACE_US", "12"))
#: microseconds the caller spins for a worker to claim a task before it goes on with its own share
CLAIM_US = 20.0
_calibration: dict = {"spins_per_us": None}


def spins_for(microseconds: float) -> int:
    """Spin rounds that take about ``microseconds`` on this machine (measured once per process)."""
    if microseconds <= 0:
        return 0
    if _calibration["spins_per_us"] is None:
        flags = np.zeros(1, np.int64)
        wait_while_equal(flags.ctypes.data, 1, 0, 0, 10)  # (compiled or loaded from the cache first)
        rounds = 4000
        start = time.perf_counter()
        wait_while_equal(flags.ctypes.data, 1, 0, 0, rounds)
        elapsed_us = max((time.perf_counter() - start) * 1e6, 1.0)
        _calibration["spins_per_us"] = max(rounds / elapsed_us, 0.01)
    return max(1, int(microseconds * _calibration["spins_per_us"]))


def _load_compiled() -> None:
    """Call every compiled wait and store once (each is compiled, or loaded from Numba's cache, at its
    first call: here, not in the middle of a hand-off)."""
    flags = np.zeros(3 * _STRIDE, np.int64)
    at = (flags.ctypes.data, flags.shape[0])
    publish_holding_gil(*at, 0, 1)
    claim(*at, 1, 0, 0)
    post_and_wait_claim(*at, 0, 1, 0, 0, 0)
    finish_and_claim_next(*at, 0, 1, 2, 1, 0)
    wait_until_equal(*at, 0, 1, 0)
    wait_while_equal(*at, 0, 0, 0)


class Task:
    """One task handed to a worker (or run in the caller): ``result()`` waits for it."""

    __slots__ = ("fn", "args", "value", "error", "_pool", "_worker", "_seq")

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args = fn, args
        self.value = self.error = None
        self._pool = None
        self._worker = -1
        self._seq = 0

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001  (handed to whoever waits for the task)
            self.error = exc

    def result(self):
        """The task's return value (its exception re-raised), once it has run."""
        if self._pool is not None:
            self._pool._wait_done(self._worker, self._seq)
            self._pool = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.value


class SpinPool:
    """``n`` daemon worker threads with spin-then-sleep mailboxes (see the module docstring).
    ``initializer`` runs first in each worker thread; ``spin_us`` (default ``SPIN_US``) is how long a
    worker spins for its next task, and a caller for a worker's result, before sleeping. ``serve``: the
    workers' compiled loop that runs tasks written down as records itself (``_kernels.compiled_tasks
    .serve_next``); None, every task runs its Python."""

    def __init__(self, n: int, initializer: Callable[[], None] | None = None, name: str = "fastgru-kernel",
                 spin_us: float | None = None, serve: Callable | None = None) -> None:
        if n < 1:
            raise ValueError(f"a pool needs at least one worker, received {n}")
        self.n = n
        # worker w's flags, a line pair each: the last task posted, claimed (by the worker, or by the caller
        # taking it back) and done (by the worker)
        self._flags = np.zeros(3 * n * _STRIDE, np.int64)
        self._at_flags = (self._flags.ctypes.data, self._flags.shape[0])  # (what the compiled waits take)
        self._tasks: list[Task | None] = [None] * n
        self._posted = [0] * n  # the caller side's last posted sequence number, per worker
        self._busy = [False] * n
        self._lock = threading.Lock()  # guards _busy and _posted
        self._conds = [threading.Condition() for _ in range(n)]
        self._sleeping = [False] * n  # the worker is asleep on its condition
        self._waiting = [False] * n  # a caller is asleep on it, waiting for the worker's result
        spin_us = SPIN_US if spin_us is None else spin_us
        self._spins = spins_for(spin_us)
        self._claim_spins = spins_for(min(spin_us, CLAIM_US))
        self._grace_spins = spins_for(min(spin_us, GRACE_US))
        # one task record per worker (``_kernels.task_records``; its kind stays KIND_PYTHON unless a kernel
        # writes the task down)
        self._records = np.zeros((n, RECORD_LEN), np.int64)
        self._records_base = self._records.ctypes.data  # (``.ctypes`` makes an object: ~0.8 us a call)
        self._serve_next = serve
        _load_compiled()
        if serve is not None:  # (compiled, or loaded from the cache, here rather than in a hand-off)
            flags = np.zeros(3 * _STRIDE, np.int64)
            serve(flags.ctypes.data, flags.shape[0], 0, _STRIDE, 2 * _STRIDE, 0, 0, self._record_at(0), RECORD_LEN)
        self._threads = []
        for w in range(n):
            thread = threading.Thread(target=self._serve, args=(w, initializer), name=f"{name}-{w}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _at(self, worker: int, which: int) -> int:  # which: 0 posted, 1 claimed, 2 done
        return (3 * worker + which) * _STRIDE

    def _record_at(self, worker: int) -> int:
        return self._records_base + worker * RECORD_LEN * self._records.itemsize

    # -- caller side --------------------------------------------------------------------------------
    def submit(self, fn: Callable, *args) -> Task:
        """Hand ``fn(*args)`` to an idle worker (run it here when none is idle); returns its Task.

        With the worker awake, this thread waits (spinning, without the GIL) until the worker has claimed
        the task, and a little longer (``GRACE_US``) while the worker's Python goes into its compiled
        kernel: if both threads wanted the GIL at once, the one left waiting would sleep, and its wake-up
        costs what the spinning saves. A task not claimed within ``CLAIM_US`` (the worker asleep, or its
        CPU taken by another process) stays posted; :meth:`Task.result` takes it back and runs it in the
        caller if the worker has still not claimed it by then."""
        task, post = self.submit_deferred(fn, *args)
        if post is not None:
            worker = task._worker
            post_and_wait_claim(*self._at_flags, self._at(worker, 0), self._at(worker, 1), task._seq,
                                self._claim_spins, self._grace_spins)
        return task

    def submit_deferred(self, fn: Callable, *args, record: bool = False) -> tuple[Task, tuple | None]:
        """:meth:`submit` without posting to an awake worker: returns ``(task, post)``, where ``post`` =
        ``(base, size, idx, seq, record base, record size)`` is what the caller's own compiled kernel
        publishes as its first step (``_kernels.atomics.publish_post``, with the worker's rows appended),
        once the GIL is released: the worker then finds the GIL free, and this thread waits for nothing.
        With ``record`` (and a pool with a compiled ``serve``) the kernel may first write the worker's
        share down as a task record, which the worker then runs without Python; record base 0: none.
        ``post`` is None when there is nothing left to publish (the task handed to a sleeping worker, or
        run here). A post never published (the caller's chunk failed before its kernel) is taken back by
        :meth:`Task.result` and run in the caller."""
        task = Task(fn, args)
        with self._lock:
            worker = next((w for w in range(self.n) if not self._busy[w]), -1)
            if worker >= 0:
                self._busy[worker] = True
                self._posted[worker] += 1
                seq = self._posted[worker]
        if worker < 0:
            task.run()
            return task, None
        task._pool, task._worker, task._seq = self, worker, seq
        self._tasks[worker] = task
        self._records[worker, R_KIND] = KIND_PYTHON  # (until a kernel writes the task down)
        cond = self._conds[worker]
        with cond:
            asleep = self._sleeping[worker]
            if asleep:
                publish_holding_gil(*self._at_flags, self._at(worker, 0), seq)
                cond.notify()
        if asleep:
            return task, None
        with_record = record and self._serve_next is not None
        return task, (*self._at_flags, self._at(worker, 0), seq, self._record_at(worker) if with_record else 0,
                      RECORD_LEN if with_record else 0)

    def _wait_done(self, worker: int, seq: int) -> None:
        task = self._tasks[worker]
        if claim(*self._at_flags, self._at(worker, 1), seq - 1, seq):
            task.run()  # the worker never claimed it: run here (the worker skips it)
        else:
            done_at = self._at(worker, 2)
            if not wait_until_equal(*self._at_flags, done_at, seq, self._spins):
                cond = self._conds[worker]
                with cond:
                    self._waiting[worker] = True
                    while self._flags[done_at] != seq:
                        # (a timeout: the worker publishes its result without the lock, and may have read
                        # _waiting just before it was set)
                        cond.wait(0.002)
                    self._waiting[worker] = False
            if self._records[worker, R_KIND] != KIND_PYTHON and self._records[worker, R_ERROR]:
                task.run()  # the worker's compiled run failed: the task's Python raises the error, with its message
        self._tasks[worker] = None
        with self._lock:
            self._busy[worker] = False

    def shutdown(self) -> None:
        """Stop the workers (each finishes its current task first)."""
        for w in range(self.n):
            with self._conds[w]:
                publish_holding_gil(*self._at_flags, self._at(w, 0), -1)
                self._conds[w].notify()

    # -- worker side --------------------------------------------------------------------------------
    def _serve(self, worker: int, initializer: Callable[[], None] | None) -> None:
        if initializer is not None:
            initializer()
        posted_at, claimed_at, done_at = self._at(worker, 0), self._at(worker, 1), self._at(worker, 2)
        cond = self._conds[worker]
        record_at = self._record_at(worker)
        seq = 0
        while True:
            # the last task's result published (the GIL already released: the caller, spinning for it,
            # finds the GIL free), then the next task waited for and claimed (with a compiled serve, the
            # tasks written down as records run there, and only a task that needs Python comes back)
            if self._serve_next is None:
                claimed = finish_and_claim_next(*self._at_flags, posted_at, claimed_at, done_at, seq, self._spins)
                status = 1 if claimed > 0 else claimed
            else:
                status, claimed = self._serve_next(*self._at_flags, posted_at, claimed_at, done_at, seq, self._spins,
                                                   record_at, RECORD_LEN)
                if status == 0:
                    seq = claimed  # (the last task it ran and published done)
            if status < 0:
                return
            if status == 0:  # nothing within the spin: sleep until a task is posted
                with cond:
                    self._sleeping[worker] = True
                    while 0 <= self._flags[posted_at] <= max(seq, self._flags[claimed_at]):
                        cond.wait()
                    self._sleeping[worker] = False
                continue
            seq = claimed
            task = self._tasks[worker]
            if task is not None:
                task.run()
            if self._waiting[worker]:
                with cond:
                    publish_holding_gil(*self._at_flags, done_at, seq)
                    cond.notify()
