"""Bidirectional without Keras: the two directions side by side on two threads give the same numbers
as one after the other, survive a fork, and its API (states, weights, config) behaves."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Input


@pytest.mark.parametrize("cell", [GRU, LSTM])
def test_two_threads_equal_one_thread_inference_and_training(rng, cell):
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    y = rng.standard_normal((5, 2)).astype(np.float32)
    previous = fg.get_num_threads()
    results = []
    for threads in (1, 2):
        fg.set_num_threads(threads)
        fg.set_random_seed(0)
        model = fg.Sequential([Input((7, 3)), Bidirectional(cell(4, return_sequences=True)),
                               Bidirectional(cell(3), merge_mode="mul"), Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        losses = [model.train_on_batch(x, y) for _ in range(3)]
        results.append((model.predict(x), losses, model.get_weights()))
    fg.set_num_threads(previous)
    np.testing.assert_allclose(results[0][0], results[1][0], atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)
    for a, b in zip(results[0][2], results[1][2]):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_side_thread_is_remade_in_a_forked_child():
    code = textwrap.dedent("""
        import os, numpy as np, fastgru as fg
        from fastgru.layers import GRU, Bidirectional
        fg.set_num_threads(2)
        layer = Bidirectional(GRU(4))
        x = np.random.default_rng(0).random((2, 3, 2)).astype("float32")
        first = layer(x)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.array_equal(layer(x), first) else 3)
        _, status = os.waitpid(pid, 0)
        raise SystemExit(os.waitstatus_to_exitcode(status))
    """)
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_states_weights_and_config_round_trip(rng):
    layer = Bidirectional(LSTM(3, return_state=True, return_sequences=True), merge_mode=None)
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    out_f, out_b, h_f, c_f, h_b, c_b = layer(x)
    assert out_f.shape == out_b.shape == (2, 4, 3) and h_f.shape == c_b.shape == (2, 3)
    np.testing.assert_array_equal(out_f[:, -1], h_f)
    np.testing.assert_array_equal(out_b[:, 0], h_b)  # the backward outputs are flipped back to input order
    assert [w.shape for w in layer.get_weights()] == [(5, 12), (3, 12), (12,)] * 2
    again = Bidirectional.from_config(layer.get_config())
    again.build((None, 4, 5))
    again.set_weights(layer.get_weights())
    for a, b in zip(again(x), layer(x)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="expects 4 initial states"):
        layer(x, initial_state=[h_f])
    with pytest.raises(ValueError, match="merge_mode=None or return_state=True"):
        layer.forward(x)


def test_bad_constructions_raise():
    with pytest.raises(ValueError, match="wraps a recurrent layer"):
        Bidirectional(Dense(3))
    with pytest.raises(ValueError, match="Invalid merge mode"):
        Bidirectional(GRU(3), merge_mode="max")
    with pytest.raises(ValueError, match="different go_backwards"):
        Bidirectional(GRU(3, go_backwards=True))
    with pytest.raises(ValueError, match="same return_sequences"):
        Bidirectional(GRU(3), backward_layer=GRU(3, go_backwards=True, return_sequences=True))


def test_stateful_bidirectional_carries_both_directions(rng):
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    layer = Bidirectional(GRU(4, stateful=True))
    layer.build((2, 3, 3))
    assert [s.tolist() for s in layer.states] == [np.zeros((2, 4)).tolist()] * 2  # (zeros before a call, as Keras)
    layer(x[:, :3])
    assert len(layer.states) == 2 and layer.states[0].shape == (2, 4) and np.abs(layer.states[0]).sum() > 0
    carried = layer(x[:, 3:])
    layer.reset_states()
    assert [s.tolist() for s in layer.states] == [np.zeros((2, 4)).tolist()] * 2
    assert not np.allclose(layer(x[:, 3:]), carried)
