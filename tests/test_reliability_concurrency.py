"""Concurrency: the kernels release the GIL, a model shared by 8 Python threads calling ``predict`` at once
gives exactly the serial results, and a stateful model refuses concurrent calls with a clear RuntimeError.

Throughput with 2 threads (documented in docs/reliability.md) is measured by running this file as a
script: ``python tests/test_reliability_concurrency.py``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

N_THREADS = 8


def _model(**gru):
    fg.set_random_seed(11)
    return fg.Sequential([Input(shape=(10, 50)), GRU(64, return_sequences=True, **gru), GRU(32), Dense(4)])


def _run_threads(target, n):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a predict thread hung"
    return errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eight_threads_predict_exactly_like_serial_calls(dtype):
    model = _model()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((int(rng.integers(1, 70)), int(rng.integers(1, 15)), 50)).astype(dtype)
              for _ in range(N_THREADS * 3)]
    serial = {(k, bs): model.predict(x, batch_size=bs) for k, x in enumerate(inputs) for bs in (None, 16)}
    results = {}
    barrier = threading.Barrier(N_THREADS)

    def work(i):
        barrier.wait()
        for rep in range(3):
            k = (i * 3 + rep) % len(inputs)
            bs = 16 if rep == 1 else None
            results[(i, rep)] = ((k, bs), model.predict(inputs[k], batch_size=bs))

    assert not _run_threads(work, N_THREADS)
    assert len(results) == N_THREADS * 3
    for key, y in results.values():
        np.testing.assert_array_equal(y, serial[key])  # bit-identical to the same call made serially


def test_kernels_release_the_gil():
    """While one thread runs a long GRU kernel, another thread keeps running Python code."""
    model = fg.Sequential([Input(shape=(None, 64)), GRU(128)])
    x = np.random.default_rng(1).standard_normal((1, 20000, 64)).astype(np.float32)
    model.predict(x[:, :10])  # warm
    start = time.perf_counter()
    model.predict(x)
    alone = time.perf_counter() - start
    ticks = []
    done = threading.Event()

    def python_work():
        while not done.is_set():
            ticks.append(time.perf_counter())
            sum(range(200))

    t = threading.Thread(target=python_work)
    t.start()
    time.sleep(0.01)
    start = time.perf_counter()
    model.predict(x)
    end = time.perf_counter()
    done.set()
    t.join()
    during = [s for s in ticks if start <= s <= end]
    # with the GIL held by the kernel, the Python thread could not run at all during the call
    gaps = np.diff(during) if len(during) > 1 else np.array([end - start])
    assert len(during) > 100 and gaps.max() < 0.5 * max(alone, end - start), (len(during), gaps.max(), alone)


def test_stateful_model_refuses_concurrent_calls(monkeypatch):
    model = fg.Sequential([Input(batch_shape=(4, None, 8)), GRU(16, stateful=True), Dense(2)])
    x = np.ones((4, 5, 8), np.float32)
    model.predict(x)
    model.reset_states()
    reference = model.predict(x)
    model.reset_states()
    # hold the first call inside the model (in its last layer) until the second call has been tried
    dense = model.layers[-1]
    original_call = dense.call
    inside, release = threading.Event(), threading.Event()

    def slow_call(*args, **kwargs):
        inside.set()
        release.wait(30)
        return original_call(*args, **kwargs)

    monkeypatch.setattr(dense, "call", slow_call)
    first = {}
    t = threading.Thread(target=lambda: first.setdefault("y", model.predict(x)))
    t.start()
    assert inside.wait(30)
    for call in (lambda: model.predict(x), lambda: model(x), model.reset_states):
        with pytest.raises(RuntimeError, match="stateful layers and is already being called from another thread"):
            call()
    release.set()
    t.join(30)
    monkeypatch.setattr(dense, "call", original_call)
    np.testing.assert_array_equal(first["y"], reference)  # the refused calls did not disturb the state
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x), reference)  # serial use afterwards works


def test_stateful_model_serial_calls_from_several_threads_are_fine():
    model = fg.Sequential([Input(batch_shape=(2, None, 3)), GRU(4, stateful=True)])
    x = np.ones((2, 5, 3), np.float32)
    lock = threading.Lock()
    outs = []

    def work(i):
        with lock:  # the documented rule: serialize calls on a stateful model
            outs.append(model.predict(x))

    assert not _run_threads(work, 4)
    assert len(outs) == 4


def test_predict_concurrent_with_set_weights_uses_one_weight_set():
    """Threads hammer ``set_weights`` between two weight sets while others predict: every result equals one
    of the two serial answers bit for bit (set_weights waits for running calls; a call sees one weight set)."""
    fg.set_random_seed(5)
    model = fg.Sequential([Input(shape=(40, 16)), GRU(48, return_sequences=True), GRU(32), Dense(3)])
    x = np.random.default_rng(1).standard_normal((24, 40, 16)).astype(np.float32)
    first = model.get_weights()
    second = [w * np.float32(0.5) + np.float32(0.01) for w in first]
    answers = []
    for weights in (first, second):
        model.set_weights(weights)
        answers.append(model.predict(x))
    assert not np.array_equal(answers[0], answers[1])
    stop = time.perf_counter() + 2.0
    outcomes = {"first": 0, "second": 0, "torn": 0}

    def work(i):
        if i < 2:  # writers
            k = i
            while time.perf_counter() < stop:
                model.set_weights((first, second)[k % 2])
                k += 1
        else:
            while time.perf_counter() < stop:
                y = model.predict(x) if i % 2 else model(x)
                key = ("first" if np.array_equal(y, answers[0]) else
                       "second" if np.array_equal(y, answers[1]) else "torn")
                outcomes[key] += 1

    assert not _run_threads(work, 6)
    assert outcomes["torn"] == 0, outcomes
    assert outcomes["first"] + outcomes["second"] > 0


def test_layer_call_concurrent_with_layer_set_weights_uses_one_weight_set():
    layer = GRU(32, return_sequences=True)
    x = np.random.default_rng(2).standard_normal((16, 60, 8)).astype(np.float32)
    layer(x)
    first = layer.get_weights()
    second = [w * np.float32(-0.7) for w in first]
    answers = []
    for weights in (first, second):
        layer.set_weights(weights)
        answers.append(layer(x))
    stop = time.perf_counter() + 1.5
    torn = []

    def work(i):
        k = 0
        while time.perf_counter() < stop:
            if i == 0:
                layer.set_weights((first, second)[k % 2])
                k += 1
            else:
                y = layer(x)
                if not (np.array_equal(y, answers[0]) or np.array_equal(y, answers[1])):
                    torn.append(1)

    assert not _run_threads(work, 3)
    assert not torn


def test_threads_making_the_first_predict_on_an_unbuilt_model_build_it_once(monkeypatch):
    """Racing first calls build the layers once (under a lock): every thread gets the same answer."""
    fg.set_random_seed(9)
    model = fg.Sequential([GRU(8), Dense(2)])
    gru = model.layers[0]
    builds = []
    original = GRU.build

    def slow_build(self, input_shape):
        builds.append(self.name)
        time.sleep(0.05)  # widen the race
        original(self, input_shape)

    monkeypatch.setattr(GRU, "build", slow_build)
    x = np.random.default_rng(3).standard_normal((4, 6, 5)).astype(np.float32)
    barrier = threading.Barrier(6)
    results = [None] * 6

    def work(i):
        barrier.wait()
        results[i] = model.predict(x)

    assert not _run_threads(work, 6)
    assert builds == [gru.name], f"built {len(builds)} times"
    assert all(np.array_equal(r, results[0]) for r in results)
    np.testing.assert_array_equal(model.predict(x), results[0])


def measure_throughput(seconds: float = 3.0) -> None:  # pragma: no cover - a measurement, run by hand
    """Sequences/s of GRU(64) on S2's shape (batch 32, 10 steps, 50 features) from 1 and 2 Python threads."""
    model = fg.Sequential([Input(shape=(10, 50)), GRU(64)])
    x = np.random.default_rng(0).standard_normal((32, 10, 50)).astype(np.float32)
    for kernel_threads in (1, 2):
        fg.set_num_threads(kernel_threads)
        for n_threads in (1, 2):
            model.predict(x)
            counts = [0] * n_threads
            stop = time.perf_counter() + seconds

            def work(i):
                while time.perf_counter() < stop:
                    model.predict(x)
                    counts[i] += 1

            _run_threads(work, n_threads)
            print(f"fg.set_num_threads({kernel_threads}), {n_threads} Python thread(s): "
                  f"{sum(counts) * len(x) / seconds:,.0f} sequences/s ({sum(counts) / seconds:,.0f} calls/s)")


if __name__ == "__main__":
    measure_throughput()
