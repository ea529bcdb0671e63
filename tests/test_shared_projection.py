"""One sequence at two threads: the input projection shared with a worker (``_kernels.shared_projection``)
gives the one-thread outputs bit for bit, whichever thread projects which block, and never waits for a
worker that does not come."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru import _threads
from fastgru._kernels import aligned
from fastgru._kernels import gru as _gru
from fastgru._kernels import shared_projection as sp
from fastgru._kernels.activations import FAST_SIGMOID, FAST_TANH
from fastgru._kernels.atomics import NO_POST
from fastgru._kernels.rnn_common import empty_array
from fastgru._kernels.task_records import KIND_PROJECTION, R_ERROR, R_KIND
from fastgru.ops import gru_forward, lstm_forward
from fastgru.ops.common import EMPTY_MASK

T, D, H = 23, 6, 8


@pytest.fixture
def share_every_call(monkeypatch):
    """Every call of one sequence at two threads shares its projection (the thresholds off), blocks of a
    few steps; the thread count restored afterwards."""
    monkeypatch.setattr(sp, "MIN_WORK", 0)
    monkeypatch.setattr(sp, "MIN_FEATURES", 1)
    monkeypatch.setattr(sp, "MIN_UNITS", 1)
    monkeypatch.setattr(sp, "BLOCK_WORK", 3 * D * 3 * H)  # 3 steps a block: 8 blocks
    before = fg.get_num_threads()
    yield
    fg.set_num_threads(before)


def _weights(rng, dtype, gates, reset_after=True):
    kernel = rng.standard_normal((D, gates * H)).astype(dtype) * 0.4
    recurrent = rng.standard_normal((H, gates * H)).astype(dtype) * 0.4
    if gates == 3 and reset_after:
        bias = rng.standard_normal((2, 3 * H)).astype(dtype) * 0.1
    else:
        bias = rng.standard_normal(gates * H).astype(dtype) * 0.1
    return kernel, recurrent, bias


def _one_and_two_threads(fn):
    fg.set_num_threads(1)
    alone = fn()
    fg.set_num_threads(2)
    shared = [fn() for _ in range(3)]  # (the worker spinning, or not yet)
    return alone, shared


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gru_and_lstm_of_one_sequence_share_the_projection_bit_for_bit(share_every_call, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, T, D)).astype(dtype)
    mask = rng.random((1, T)) > 0.3
    h0 = rng.standard_normal((1, H)).astype(dtype)
    assert sp.shared_block_steps(1, T, D, H, 3 * H, x.itemsize) == 3
    cases = []
    for reset_after in (True, False):
        w = _weights(rng, dtype, 3, reset_after)
        for options in ({}, {"go_backwards": True, "return_sequences": True}, {"mask": mask, "h0": h0},
                        {"activation": "relu", "return_sequences": True}):
            cases.append(lambda w=w, ra=reset_after, o=options: gru_forward(x, *w, reset_after=ra, **o))
    w4 = _weights(rng, dtype, 4)
    for options in ({}, {"go_backwards": True, "return_sequences": True}, {"mask": mask, "h0": h0, "c0": h0}):
        cases.append(lambda o=options: lstm_forward(x, *w4, **o))
    for case in cases:
        alone, shared = _one_and_two_threads(case)
        for result in shared:
            for a, b in zip(alone, result):
                np.testing.assert_array_equal(a, b)


def test_the_worker_runs_its_blocks_from_compiled_code(share_every_call):
    """float32: the caller's kernel writes the worker's task down as a projection record, which the
    worker runs without Python; every block ends done."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, T, D)).astype(np.float32)
    w, u, b = _weights(rng, np.float32, 3)
    out, h_last = np.zeros((1, 1, H), np.float32), np.empty((1, H), np.float32)
    e2, e3 = empty_array(x.dtype, 2), empty_array(x.dtype, 3)
    args = (x, w, b[0], u, e2, b[1], e2, EMPTY_MASK, False, (FAST_TANH, FAST_SIGMOID, False, False, False), True,
            out, h_last, e3, False)
    block = sp.shared_block_steps(1, T, D, H, 3 * H, 4)
    fg.set_num_threads(2)
    xp = aligned.empty((T, 1, 3 * H), np.float32)
    recorded = 0
    for _ in range(500):  # (a worker found asleep is handed the task the ordinary way, without a record)
        progress = np.zeros(sp.n_blocks(T, block), np.int64)
        _threads.run_beside(lambda post: _gru.gru_forward_chunk(0, 1, *args, post, (xp, progress, block)),
                            lambda: sp.project_shared(x, w, b[0], xp, progress, block, 0, 1, False),
                            record_kind=KIND_PROJECTION)
        assert (progress == sp.DONE).all()
        records = _threads._pool["spin"]._records
        assert records[0, R_ERROR] == 0
        recorded += records[0, R_KIND] == KIND_PROJECTION
        if recorded >= 3:
            break
    assert recorded >= 3
    expected = (x[0] @ w + b[0]).astype(np.float64)
    np.testing.assert_allclose(xp[:, 0], expected, rtol=1e-5, atol=1e-5)
    # no worker at all: the loop's thread projects every block itself, the same outputs
    alone_out = out.copy()
    progress = np.zeros(sp.n_blocks(T, block), np.int64)
    _gru.gru_forward_chunk(0, 1, *args, NO_POST, (aligned.empty((T, 1, 3 * H), np.float32), progress, block))
    assert (progress == sp.DONE).all()
    np.testing.assert_array_equal(out, alone_out)


def test_a_shared_projection_refuses_buffers_that_do_not_match():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, T, D)).astype(np.float32)
    w = rng.standard_normal((D, 3 * H)).astype(np.float32)
    b = np.zeros(3 * H, np.float32)
    good = np.empty((T, 1, 3 * H), np.float32)
    blocks = sp.n_blocks(T, 3)
    for xp, progress, block, b0, nb in ((np.empty((T - 1, 1, 3 * H), np.float32), np.zeros(blocks, np.int64), 3, 0, 1),
                                        (np.empty((T, 2, 3 * H), np.float32), np.zeros(blocks, np.int64), 3, 0, 1),
                                        (good, np.zeros(blocks - 1, np.int64), 3, 0, 1),
                                        (good, np.zeros(blocks, np.int64), 0, 0, 1),
                                        (good, np.zeros(blocks, np.int64), 3, 1, 1)):
        with pytest.raises(ValueError, match="shared projection"):
            sp.project_shared(x, w, b, xp, progress, block, b0, nb, False)
    with pytest.raises(ValueError, match="shared projection"):
        sp.project_shared(x, w, np.zeros(5, np.float32), good, np.zeros(blocks, np.int64), 3, 0, 1, False)


def test_which_calls_share_their_projection():
    """Only where it was measured to pay: enough features and units (the values the loop's thread reads
    from the other core cost more than narrow inputs' projection saves), within the memory bound."""
    assert sp.shared_block_steps(1, 100, 50, 64, 192, 4) == 0  # S1
    assert sp.shared_block_steps(1, 100, 256, 256, 768, 4) == 1
    assert sp.shared_block_steps(1, 200, 128, 128, 384, 4) == 1
    assert sp.shared_block_steps(1, 100, 64, 128, 384, 4) == 2
    assert sp.shared_block_steps(1, 10, 128, 128, 384, 4) == 0  # too little work for the hand-off
    assert sp.shared_block_steps(1, 100_000, 128, 128, 384, 4) == 0  # the buffer over MAX_BYTES
