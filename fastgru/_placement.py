"""Keeping fastgru's worker threads off the CPU of the thread that hands them work (Linux).

A kernel call split over two threads runs one chunk in the calling thread and hands the other to a
sleeping worker. Woken that way, Linux's scheduler often places the worker on the caller's own CPU
(it expects the waker to sleep soon; it does not: it runs chunk 0), and the two chunks then take
turns on one CPU while the other CPU idles, until the load balancer moves one of them, milliseconds
later. Measured on a 2-vCPU VM (docs/performance.md, "Where the worker threads run"): an 8 x 1000-step
GRU call at 2 threads took 2.4 ms in some processes and 4.7 ms, its 1-thread time, in 40-100% of
the calls of others, the two chunks running one after the other.

So before each hand-off the caller asks which CPU it is on (``sched_getcpu``, ~0.2 us) and, when that
changed since the last hand-off, restricts the workers to the CPUs they were allowed at their start
less that one (one ``sched_setaffinity`` per worker, on its thread id). The caller's own thread is
never touched; where it is the only CPU allowed, or the call is not available (not Linux), nothing is
restricted. ``FASTGRU_WORKER_AFFINITY=0`` turns this off.
"""

from __future__ import annotations

import ctypes
import os
import threading

ENABLED = os.environ.get("FASTGRU_WORKER_AFFINITY", "1").strip().lower() not in ("0", "false", "no", "off")


def _find_sched_getcpu():
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):  # pragma: no cover  (no C library symbol: not glibc/musl Linux)
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = []
    return fn if fn() >= 0 else None


_sched_getcpu = _find_sched_getcpu() if ENABLED else None


def current_cpu() -> int | None:
    """The CPU the calling thread runs on now, or None where that cannot be asked."""
    if _sched_getcpu is None:
        return None
    cpu = _sched_getcpu()
    return cpu if cpu >= 0 else None


class WorkerPlacement:
    """The worker threads of one pool (their thread ids and the CPUs each was allowed at its start)
    and the CPU they were last kept off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[tuple[int, frozenset[int]]] = []
        self._kept_off: int | None = None

    def register_current_thread(self) -> None:
        """Record the calling thread as a worker (the pool's thread initializer)."""
        if _sched_getcpu is None:
            return
        try:
            allowed = frozenset(os.sched_getaffinity(0))
        except OSError:  # pragma: no cover
            return
        with self._lock:
            self._workers.append((threading.get_native_id(), allowed))
            self._kept_off = None  # the new worker has not been placed yet

    def keep_off_caller_cpu(self) -> None:
        """Restrict the workers to their allowed CPUs less the caller's current one (when it changed)."""
        cpu = current_cpu()
        if cpu is None or cpu == self._kept_off:
            return
        with self._lock:
            workers = list(self._workers)
            self._kept_off = cpu
        for tid, allowed in workers:
            others = allowed - {cpu}
            try:
                os.sched_setaffinity(tid, others or allowed)
            except OSError:  # the thread is gone, or the CPUs changed under us: leave it where it is
                pass

    def worker_ids(self) -> list[int]:
        """The registered workers' thread ids (for tests and diagnostics)."""
        with self._lock:
            return [tid for tid, _ in self._workers]
