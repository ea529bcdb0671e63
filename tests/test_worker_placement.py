"""fastgru's worker threads are kept off the CPU of the thread that hands them a chunk (``_placement``):
woken on the caller's CPU, a worker and the caller took turns on one CPU (docs/performance.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from fastgru import _placement, _threads

linux_affinity = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")


def _chunk_views():
    """Run two chunks through ``run_chunks``; return what each saw: its thread id and its allowed CPUs."""
    seen = {}

    def chunk(c, b0, b1):
        seen[c] = (threading.get_native_id(), frozenset(os.sched_getaffinity(0)), b0, b1)

    _threads.run_chunks(chunk, 10, 2)
    return seen


@linux_affinity
def test_the_worker_runs_on_the_allowed_cpus_less_the_callers():
    allowed = frozenset(os.sched_getaffinity(0))
    seen = _chunk_views()  # the first hand-off may start the worker: placed from the next one on
    seen = _chunk_views()
    placement = _threads._pool["placement"]
    caller_tid, caller_cpus, b0, b1 = seen[0]
    worker_tid, worker_cpus, w0, w1 = seen[1]
    assert (b0, b1, w0, w1) == (0, 5, 5, 10)
    assert caller_tid == threading.get_native_id() and worker_tid != caller_tid
    assert worker_tid in placement.worker_ids()
    assert caller_cpus == allowed  # the caller's own thread is never restricted
    kept_off = placement._kept_off
    assert kept_off in allowed
    expected = allowed - {kept_off} if len(allowed) > 1 else allowed
    assert worker_cpus == expected


@linux_affinity
def test_the_workers_follow_the_caller_to_another_cpu():
    """After the caller moves to another CPU, the next hand-off moves the workers off that one."""
    allowed = sorted(os.sched_getaffinity(0))
    original = set(allowed)
    try:
        for cpu in allowed[:2]:
            os.sched_setaffinity(0, {cpu})  # the caller (this thread) on one CPU
            seen = _chunk_views()
            assert seen[0][1] == {cpu}
            assert _threads._pool["placement"]._kept_off == cpu
            if len(allowed) > 1:
                assert cpu not in seen[1][1]
            else:  # one CPU: nowhere else to go, nothing restricted
                assert seen[1][1] == original
    finally:
        os.sched_setaffinity(0, original)


def test_a_worker_that_is_gone_is_skipped():
    placement = _placement.WorkerPlacement()
    placement._workers.append((2 ** 22 + 12345, frozenset({0})))  # no such thread
    placement.keep_off_caller_cpu()  # no exception


@linux_affinity
def test_worker_affinity_can_be_turned_off():
    code = textwrap.dedent("""
        import os, threading
        from fastgru import _placement, _threads
        assert not _placement.ENABLED and _placement.current_cpu() is None
        allowed = frozenset(os.sched_getaffinity(0))
        seen = {}
        for _ in range(2):
            _threads.run_chunks(lambda c, b0, b1: seen.__setitem__(c, frozenset(os.sched_getaffinity(0))), 4, 2)
        assert seen[1] == allowed, (seen, allowed)
        assert _threads._pool["placement"].worker_ids() == []
        print("ok")
    """)
    env = dict(os.environ, FASTGRU_WORKER_AFFINITY="0")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@linux_affinity
def test_the_spinning_workers_are_kept_off_the_callers_cpu_too():
    """A small call's chunks go to the spinning workers (``run_chunks``'s ``work`` under
    ``SPIN_HANDOFF_WORK``), placed like the sleeping ones."""
    allowed = frozenset(os.sched_getaffinity(0))
    for _ in range(200):  # (until a chunk ran on the worker: the caller takes back one not yet claimed)
        seen = {}

        def chunk(c, b0, b1):
            if c == 0:
                time.sleep(0.005)  # (long enough for a sleeping worker to wake and claim chunk 1)
            seen[c] = (threading.get_native_id(), frozenset(os.sched_getaffinity(0)))

        _threads.run_chunks(chunk, 10, 2, work=1000)
        if seen[1][0] != threading.get_native_id():
            break
    else:
        raise AssertionError("the second chunk never ran on a spinning worker")
    assert seen[1][0] in _threads._pool["spin_placement"].worker_ids()
    assert seen[1][0] in [t.native_id for t in _threads._pool["spin"]._threads]
    kept_off = _threads._pool["spin_placement"]._kept_off
    assert seen[1][1] == (allowed - {kept_off} if len(allowed) > 1 else allowed)
