"""fastgru's worker pool (``fastgru._spin_pool``): tasks run and hand back their values and exceptions,
whether the workers spin or sleep between tasks, with several calling threads at once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fastgru as fg
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
            assert len(post) == 6 and post[0] == pool._flags.ctypes.data and post[4] == 0  # (no record asked for)
            if i % 3:  # (every third post is never published)
                publish_post((*post, 0, 0))  # (the worker's rows: no record here)
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
        assert all(p is not None and len(p) == 8 for p in posts)
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


def _chunk_args(kind, rng, bsz=6, steps=4, d=3, h=8, dtype=np.float32):
    """``(driver, positional arguments, out)`` of a small GRU, LSTM or SimpleRNN inference chunk
    (``_kernels.*.*_forward_chunk``) with a mask and given initial states, in float32 (or float64)."""
    from fastgru._kernels import gru as kgru
    from fastgru._kernels import lstm as klstm
    from fastgru._kernels import simple_rnn as ksrnn
    from fastgru._kernels.rnn_common import empty_array

    gates = {"gru": 3, "lstm": 4, "simple_rnn": 1}[kind]
    x = rng.standard_normal((bsz, steps, d)).astype(dtype)
    w = rng.standard_normal((d, gates * h)).astype(dtype)
    u = (rng.standard_normal((h, gates * h)) * 0.3).astype(dtype)
    bias = rng.standard_normal(gates * h).astype(dtype)
    h0, c0 = (rng.standard_normal((bsz, h)).astype(dtype) for _ in range(2))
    mask = (rng.random((bsz, steps)) > 0.3).astype(np.uint8)
    flags = (12, 13, False, True, False) if dtype == np.float32 else (1, 2, False, True, False)
    out, last = np.zeros((bsz, steps, h), dtype), np.empty((bsz, h), dtype)
    if kind == "gru":
        args = (x, w, bias, u, empty_array(x.dtype, 2), bias, h0, mask, True, flags, True, out, last,
                empty_array(x.dtype, 3), False)
        return kgru.gru_forward_chunk, args, out
    if kind == "lstm":
        args = (x, w, bias, u, h0, c0, mask, True, flags, out, last, np.empty((bsz, h), dtype))
        return klstm.lstm_forward_chunk, args, out
    return ksrnn.simple_rnn_forward_chunk, (x, w, bias, u, h0, mask, True, flags, out, last), out


@pytest.mark.parametrize("kind", ["gru", "lstm", "simple_rnn"])
def test_a_task_record_round_trip_runs_the_worker_rows_from_compiled_code(rng, kind):
    """The caller's kernel writes the worker's rows down as a record (float32, C-contiguous arrays only)
    and ``serve_next`` claims the posted task, runs the record and publishes it done: the worker's rows
    come out as one call over all rows gives them (masked steps and initial states included). A float64
    call leaves the record to Python."""
    from fastgru._kernels import compiled_tasks
    from fastgru._kernels.task_records import (
        KIND_GRU,
        KIND_LSTM,
        KIND_PYTHON,
        KIND_SIMPLE_RNN,
        R_ERROR,
        R_KIND,
        RECORD_LEN,
    )

    code = {"gru": KIND_GRU, "lstm": KIND_LSTM, "simple_rnn": KIND_SIMPLE_RNN}[kind]
    driver, args, out = _chunk_args(kind, rng)
    driver(0, 6, *args)
    expected = out.copy()
    out[:] = 0.0
    compiled_tasks.ready(code)
    flags = np.zeros(3 * 16, np.int64)
    record = np.zeros(RECORD_LEN, np.int64)
    post = (flags.ctypes.data, flags.shape[0], 0, 1, record.ctypes.data, RECORD_LEN, 2, 6)
    driver(0, 2, *args, post)  # rows 0:2 here; rows 2:6 written down and posted
    assert flags[0] == 1 and record[R_KIND] == code and not out[2:].any()
    status, last = compiled_tasks.serve_next(flags.ctypes.data, flags.shape[0], 0, 16, 32, 0, 0, record.ctypes.data,
                                             RECORD_LEN)
    assert (status, last, flags[16], flags[32], record[R_ERROR]) == (0, 1, 1, 1, 0)
    np.testing.assert_array_equal(out, expected)

    driver64, args64, _ = _chunk_args(kind, rng, dtype=np.float64)
    record[:] = -1
    driver64(0, 2, *args64, (0, 0, 0, 0, record.ctypes.data, RECORD_LEN, 2, 6))
    assert record[R_KIND] == KIND_PYTHON


def test_a_failed_compiled_task_is_run_again_by_the_caller(rng):
    """A worker's compiled run that fails (here: rows past the batch, refused before any is read) is
    reported through the record, and the caller runs the task's Python, which raises or returns as it
    would have on the worker."""
    import fastgru._kernels.compiled_tasks as compiled_tasks
    from fastgru._kernels import gru as kgru
    from fastgru._kernels.task_records import KIND_GRU, R_ERROR

    compiled_tasks.ready(KIND_GRU)
    pool = SpinPool(1, spin_us=200_000.0, serve=compiled_tasks.serve_next)
    caller = threading.get_ident()
    try:
        _, args, _ = _chunk_args("gru", rng)
        ran = []
        for _ in range(300):
            task, post = pool.submit_deferred(lambda: ran.append(threading.get_ident()) or "python", record=True)
            if post is None:  # (the worker was asleep: it runs the task's Python)
                assert task.result() == "python"
                continue
            kgru.gru_forward_chunk(0, 6, *args, (*post, 3, 99))  # the worker's rows 3:99 of a batch of 6
            # (the caller's share is tiny: give the worker time to claim it before asking for the result,
            # which would take the task back; on a busy machine the worker may not be running just now)
            wait_until_equal(*pool._at_flags, pool._at(0, 2), post[3], spins_for(20_000.0))
            assert task.result() == "python"
            if pool._records[0, R_ERROR]:  # the worker ran the record (else the caller took the task back)
                assert ran[-1] == caller
                break
            time.sleep(0.001)
        else:
            pytest.fail("the worker never ran the recorded task")
    finally:
        pool.shutdown()


def test_fastgrus_workers_run_split_forwards_without_python():
    """With two threads, a small GRU call's second share runs on the spinning worker from compiled code:
    at least one call in a few hundred completes with no task's Python run at all (neither the worker's
    nor the caller's taking it back), and each output is the one-thread output."""
    from fastgru import _spin_pool, _threads

    # (32 rows of 50 steps: each share takes a few hundred microseconds, time for the worker to claim its
    # own before the caller, done with its share, would take it back; still under SPIN_HANDOFF_WORK)
    x = np.random.default_rng(0).standard_normal((32, 50, 50)).astype(np.float32)
    layer = fg.layers.GRU(64)
    n = fg.get_num_threads()
    runs = []
    original = _spin_pool.Task.run
    try:
        fg.set_num_threads(1)
        expected = layer(x)
        fg.set_num_threads(2)
        _spin_pool.Task.run = lambda task: (runs.append(1), original(task))[1]
        for _ in range(300):
            runs.clear()
            np.testing.assert_array_equal(layer(x), expected)
            if not runs and _threads._pool["spin"] is not None:
                break  # (no pause between calls: a worker idle for SPIN_US sleeps, and a sleeping one is woken
                # with the task's Python)
        else:
            pytest.fail("every call ran the worker's share through Python")
    finally:
        _spin_pool.Task.run = original
        fg.set_num_threads(n)
