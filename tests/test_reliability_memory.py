"""Bounded memory: ``predict(x, batch_size=...)`` allocates the output once and holds one batch's temporaries
at a time, so its peak memory does not grow with the number of sequences; 10,000 repeated ``predict``
calls do not grow the process.

The documented RSS figure for 10**6 sequences of S2's shape (10 steps x 50 features, GRU(64)) comes from
running this file as a script: ``python tests/test_reliability_memory.py``.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

MiB = 1 << 20


def _s2_model():
    fg.set_random_seed(0)
    return fg.Sequential([Input(shape=(10, 50)), GRU(64)])


def _rows(n):
    """n sequences of (10, 50) without n * 2 KB of input: a broadcast view (predict copies batch by batch)."""
    one = np.random.default_rng(0).standard_normal((1, 10, 50)).astype(np.float32)
    return np.broadcast_to(one, (n, 10, 50))


def _peak_beyond_output(model, n, batch_size):
    x = _rows(n)
    model.predict(x[:batch_size], batch_size=batch_size)  # warm: compile, first-call measurements
    gc.collect()
    tracemalloc.start()
    try:
        y = model.predict(x, batch_size=batch_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - y.nbytes, y


@pytest.mark.parametrize("batch_invariant", [False, True])
def test_batched_predict_peak_memory_does_not_grow_with_the_number_of_sequences(batch_invariant, monkeypatch):
    from fastgru import _threads

    monkeypatch.setitem(_threads._state, "batch_invariant", batch_invariant)
    model = _s2_model()
    small, y_small = _peak_beyond_output(model, 4_000, 512)
    large, y_large = _peak_beyond_output(model, 60_000, 512)
    if batch_invariant:  # the rows of the partial last batch (4,000 = 7 x 512 + 416) are bit-identical
        np.testing.assert_array_equal(y_large[:4_000], y_small)
    else:  # BLAS sums a row in an order that depends on its place in its tiles: equal to rounding
        np.testing.assert_allclose(y_large[:4_000], y_small, rtol=1e-5, atol=1e-6)
    # one batch: x (512x10x50) + projection (512x10x192) + outputs, float32: about 5 MiB
    assert large < 12 * MiB, f"{large / MiB:.1f} MiB beyond the output for 60,000 sequences"
    assert large < small + 2 * MiB, f"peak grows with n: {small / MiB:.1f} -> {large / MiB:.1f} MiB"


def test_batched_predict_with_a_dense_head_and_list_outputs():
    fg.set_random_seed(0)
    model = fg.Sequential([Input(shape=(10, 50)), GRU(32, return_sequences=True), Dense(3)])
    x = _rows(3_000)
    whole = model.predict(np.ascontiguousarray(x[:700]))
    np.testing.assert_allclose(model.predict(x, batch_size=256)[:700], whole, rtol=1e-6, atol=1e-6)
    state_model = fg.Sequential([Input(shape=(10, 50)), GRU(8, return_state=True)])
    out, h = state_model.predict(x[:300], batch_size=64)
    assert out.shape == (300, 8) and h.shape == (300, 8)
    np.testing.assert_array_equal(out, h)


REPEAT = textwrap.dedent("""
    import gc, os
    import numpy as np
    import fastgru as fg
    from fastgru.layers import GRU, Dense, Input

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    fg.set_num_threads(1)  # quick on a busy machine (no parallel region waiting for a descheduled thread)
    model = fg.Sequential([Input(shape=(10, 50)), GRU(64), Dense(1, activation="sigmoid")])
    x = np.random.default_rng(1).standard_normal((4, 10, 50)).astype(np.float32)
    for i in range(500):  # warm: caches, allocator pools
        model.predict(x, batch_size=3 if i % 2 else None)
    gc.collect()
    before = rss()
    for _ in range(10_000):
        model.predict(x)
    gc.collect()
    print(rss() - before)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")
def test_ten_thousand_predict_calls_do_not_grow_memory():
    """In a fresh process (nothing else allocating), RSS before and after 10,000 predict calls."""
    res = subprocess.run([sys.executable, "-c", REPEAT], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    growth = int(res.stdout.split()[-1])
    assert growth < 4 * MiB, f"RSS grew by {growth / MiB:.1f} MiB over 10,000 predict calls"


MEASURE = textwrap.dedent("""
    import resource, sys, time
    import numpy as np
    import fastgru as fg
    from fastgru.layers import GRU, Input

    n, batch_size = int(sys.argv[1]), int(sys.argv[2])
    model = fg.Sequential([Input(shape=(10, 50)), GRU(64)])
    one = np.random.default_rng(0).standard_normal((1, 10, 50)).astype(np.float32)
    x = np.broadcast_to(one, (n, 10, 50))  # the input is not what is measured
    model.predict(np.ascontiguousarray(x[:8]))  # compile/warm on a tiny batch: the peak so far stays small
    with open("/proc/self/statm") as f:
        base = int(f.read().split()[1]) * resource.getpagesize()
    start = time.perf_counter()
    y = model.predict(x, batch_size=batch_size)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(n, batch_size, base, peak, y.nbytes, took)
""")


def measure_rss(n: int = 10**6, batch_sizes=(1024, 32768)) -> None:  # pragma: no cover - run by hand
    """Peak RSS of predict on n sequences of (10, 50) through GRU(64), per batch size, each in a fresh process."""
    for batch_size in batch_sizes:
        out = subprocess.run([sys.executable, "-c", MEASURE, str(n), str(batch_size)], capture_output=True,
                             text=True, check=True).stdout.split()
        _, _, base, peak, out_bytes, took = out
        base, peak, out_bytes = int(base), int(peak), int(out_bytes)
        print(f"n={n:,} batch_size={batch_size}: peak RSS {peak / MiB:.0f} MiB = start {base / MiB:.0f} MiB "
              f"+ output {out_bytes / MiB:.0f} MiB + {(peak - base - out_bytes) / MiB:.0f} MiB "
              f"({float(took):.1f} s, {n / float(took):,.0f} sequences/s)")


if __name__ == "__main__":
    measure_rss()
