"""fastgru's worker pool (``fastgru._spin_pool``): tasks run and hand back their values and exceptions,
whether the workers spin or sleep between tasks, with several calling threads at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fastgru import _threads
from fastgru._kernels.atomics import (
    NO_POST,
    claim,
    finish_and_claim_next,
    post_and_wait_claim,
    publish,
    publish_post,
    wait_until_equal,
    wait_while_equal,
)
from fastgru._spin_pool import SpinPool, spins_for


@pytest.fixture(params=[0.0, 50.0, 5000.0], ids=["sleep", "short-spin", "long-spin"])
def pool(request):
    p = SpinPool(2, spin_us=request.param)
    yield p
    p.shutdown()


def test_every_task_runs_exactly_once_and_returns_its_value(pool):
    """A task runs on its worker, or in the caller when the worker has not claimed it by the time the
    caller asks for the result (asleep, or its CPU busy): never both, never neither."""
    runs = np.zeros(400, np.int64)
    threads = set()

    def task(i):
        runs[i] += 1
        threads.add(threading.get_ident())
        return i * i

    for i in range(0, 400, 2):
        a, b = pool.submit(task, i), pool.submit(task, i + 1)
        assert (a.result(), b.result()) == (i * i, (i + 1) ** 2)
    np.testing.assert_array_equal(runs, 1)
    assert len(threads) >= 1


def test_a_spinning_worker_takes_tasks_it_is_handed():
    """Tasks do reach the worker (how many depends on where the scheduler puts the two threads: on one
    CPU, the caller takes most back; fastgru's own pool keeps its workers off the caller's CPU)."""
    pool = SpinPool(1, spin_us=200_000.0)
    try:
        caller = threading.get_ident()
        idents = []
        for _ in range(200):
            idents.append(pool.submit(threading.get_ident).result())
            if idents[-1] != caller:
                break
            time.sleep(0.001)
        assert idents[-1] == pool._threads[0].ident
    finally:
        pool.shutdown()


def test_a_task_left_unclaimed_is_run_by_the_caller():
    """A worker that sleeps between tasks (no spinning) is woken for each; the result asked for at once
    is often the caller's own run of the task (taken back before the worker woke): either way, each runs
    once, on one of the two threads."""
    pool = SpinPool(1, spin_us=0.0)
    try:
        caller = threading.get_ident()
        idents = {pool.submit(threading.get_ident).result() for _ in range(50)}
        assert idents <= {caller} | {t.ident for t in pool._threads}
    finally:
        pool.shutdown()


def test_a_task_exception_is_raised_by_result(pool):
    def fail():
        raise ZeroDivisionError("inside the worker")

    task = pool.submit(fail)
    with pytest.raises(ZeroDivisionError, match="inside the worker"):
        task.result()
    assert pool.submit(lambda: 7).result() == 7  # the worker is free again


def test_with_every_worker_busy_a_task_runs_in_the_caller():
    pool = SpinPool(1, spin_us=0.0)
    try:
        release = threading.Event()
        blocked = pool.submit(release.wait, 10.0)
        caller = threading.get_ident()
        inline = pool.submit(threading.get_ident)
        assert inline.result() == caller
        release.set()
        assert blocked.result() is True
    finally:
        pool.shutdown()


def test_many_calling_threads_share_a_pool(pool):
    results = np.zeros((8, 100), np.int64)

    def caller(t):
        for i in range(100):
            results[t, i] = pool.submit(lambda v: v + 1, t * 1000 + i).result()

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not any(th.is_alive() for th in threads)
    np.testing.assert_array_equal(results, np.arange(8)[:, None] * 1000 + np.arange(100)[None, :] + 1)


def test_shutdown_stops_the_workers():
    pool = SpinPool(2, spin_us=100.0)
    assert pool.submit(lambda: 1).result() == 1
    pool.shutdown()
    for th in pool._threads:
        th.join(10)
        assert not th.is_alive()


@pytest.mark.parametrize("work", [0.0, 1000.0], ids=["sleeping-workers", "spinning-workers"])
def test_run_chunks_covers_every_row_once_and_raises_a_chunk_error(work):
    seen = []
    _threads.run_chunks(lambda c, b0, b1: seen.append((c, b0, b1)), 10, 3, work=work)
    assert sorted(seen) == [(0, 0, 3), (1, 3, 6), (2, 6, 10)]

    def fail_second(c, b0, b1):
        if c == 1:
            raise RuntimeError("chunk 1")

    with pytest.raises(RuntimeError, match="chunk 1"):
        _threads.run_chunks(fail_second, 4, 2, work=work)


def test_a_deferred_task_runs_once_whether_its_post_is_published_or_not(pool):
    """``submit_deferred``: the caller publishes the post from a compiled call (as a kernel's first step
    does) and the task runs once, on the worker or taken back by the caller; a post never published (the
    caller's chunk failed before its kernel) is run by the caller when it asks for the result. A sleeping
    worker is woken at once and leaves nothing to publish."""
    runs = np.zeros(300, np.int64)

    def task(i):
        runs[i] += 1
        return -i

    for i in range(300):
        task_i, post = pool.submit_deferred(task, i)
        if post is not None:
            assert len(post) == 4 and post[0] == pool._flags.ctypes.data
            if i % 3:  # (every third post is never published)
                publish_post(post)
        assert task_i.result() == -i
    np.testing.assert_array_equal(runs, 1)
    publish_post(NO_POST)  # publishes nothing (base 0)


@pytest.mark.parametrize("work", [0.0, 1000.0], ids=["sleeping-workers", "spinning-workers"])
def test_run_chunks_hands_chunk_zero_the_post_to_publish(work):
    """``posts=True``: chunk 0 is called with the post its kernel publishes (``NO_POST`` when there is
    none: a single chunk, the sleeping workers, a worker woken from sleep); the other chunks with three
    arguments. Every row is covered once, also when chunk 0 publishes nothing, and a chunk's error is
    raised."""
    for publishes in (True, False):
        seen, posts = [], []

        def chunk(c, b0, b1, post=None, publishes=publishes):
            if c == 0:
                posts.append(post)
                if publishes:
                    publish_post(post)
            else:
                assert post is None
            seen.append((c, b0, b1))

        for _ in range(20):
            seen.clear()
            _threads.run_chunks(chunk, 9, 2, work=work, posts=True)
            assert sorted(seen) == [(0, 0, 4), (1, 4, 9)]
        assert all(p is not None and len(p) == 4 for p in posts)
        if work == 0.0:
            assert set(posts) == {NO_POST}
    seen.clear()
    _threads.run_chunks(chunk, 5, 1, work=work, posts=True)
    assert seen == [(0, 0, 5)] and posts[-1] == NO_POST

    def fail_second(c, b0, b1, post=NO_POST):
        publish_post(post)
        if c == 1:
            raise RuntimeError("chunk 1")

    with pytest.raises(RuntimeError, match="chunk 1"):
        _threads.run_chunks(fail_second, 4, 2, work=work, posts=True)


def test_spin_waits_and_publish():
    flags = np.zeros(4, np.int64)
    at = (flags.ctypes.data, flags.shape[0])
    assert wait_while_equal(*at, 1, 0, 100) == 0  # the bound ran out
    assert not wait_until_equal(*at, 1, 5, 100)
    publish(*at, 1, 5)
    assert flags[1] == 5 and wait_while_equal(*at, 1, 0, 100) == 5 and wait_until_equal(*at, 1, 5, 0)
    assert claim(*at, 1, 5, 6) and not claim(*at, 1, 5, 7) and flags[1] == 6
    for bad in (-1, 4):
        for call in (lambda: publish(*at, bad, 1), lambda: wait_while_equal(*at, bad, 0, 1),
                     lambda: wait_until_equal(*at, bad, 0, 1), lambda: claim(*at, bad, 0, 1),
                     lambda: post_and_wait_claim(*at, bad, 0, 1, 0, 0),
                     lambda: finish_and_claim_next(*at, 0, bad, 2, 1, 0)):
            with pytest.raises(IndexError):
                call()
    assert spins_for(0) == 0 and spins_for(10.0) >= 1


def test_a_pool_hands_work_over_without_numba_allocations():
    """The compiled waits take the flags' address, not the array: no Numba memory record per call (the
    training's allocation count, tests/test_gru_gradients.py, must not depend on the hand-offs)."""
    from numba.core.runtime import _nrt_python, rtsys

    if not hasattr(_nrt_python, "memsys_enable_stats"):
        pytest.skip("this Numba has no allocation statistics")
    pool = SpinPool(1, spin_us=1000.0)
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        pool.submit(int).result()
        before = rtsys.get_allocation_stats().alloc
        for _ in range(100):
            pool.submit(int).result()
        assert rtsys.get_allocation_stats().alloc == before
    finally:
        if not enabled:
            _nrt_python.memsys_disable_stats()
        pool.shutdown()
