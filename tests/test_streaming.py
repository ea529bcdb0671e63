"""Stateful GRU streaming: a long sequence fed in chunks equals one call on the whole sequence."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input, Masking

STREAMS, STEPS, FEATURES, UNITS = 3, 40, 4, 6


def _pair(dtype="float32", masking=False, **gru_kwargs):
    fg.set_random_seed(1)
    head = [Masking(0.0)] if masking else []
    full = fg.Sequential([Input(shape=(None, FEATURES), dtype=dtype), *head,
                          GRU(UNITS, return_sequences=True, dtype=dtype, **gru_kwargs), Dense(2, dtype=dtype)])
    head = [Masking(0.0)] if masking else []
    live = fg.Sequential([Input(batch_shape=(STREAMS, None, FEATURES), dtype=dtype), *head,
                          GRU(UNITS, return_sequences=True, stateful=True, dtype=dtype, **gru_kwargs),
                          Dense(2, dtype=dtype)])
    live.set_weights(full.get_weights())
    return full, live


def _x(dtype=np.float32):
    return np.random.default_rng(0).normal(size=(STREAMS, STEPS, FEATURES)).astype(dtype)


def _stream(live, x, sizes):
    out, t = [], 0
    for n in sizes:
        out.append(live.predict(x[:, t:t + n]))
        t += n
    assert t == x.shape[1]
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("sizes", [[1] * STEPS, [7] * 5 + [5], [STEPS], [3, 17, 1, 19]], ids=["1", "7", "all", "mixed"])
def test_chunks_equal_the_whole_sequence(sizes):
    full, live = _pair()
    x = _x()
    np.testing.assert_allclose(_stream(live, x, sizes), full.predict(x), atol=1e-5)


@pytest.mark.parametrize("kwargs", [{"reset_after": False}, {"activation": "relu"}], ids=["reset_before", "relu"])
def test_chunks_with_gru_options(kwargs):
    full, live = _pair(**kwargs)
    x = _x()
    np.testing.assert_allclose(_stream(live, x, [10, 10, 20]), full.predict(x), atol=1e-5)


def test_chunks_in_float64():
    full, live = _pair(dtype="float64")
    x = _x(np.float64)
    y = _stream(live, x, [13, 27])
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, full.predict(x), atol=1e-12)


def test_masked_steps_carry_the_state_across_chunks():
    """The state carries over a masked gap that straddles a chunk boundary, so every unmasked step
    matches the whole-sequence output. Masked steps at the start of a chunk output zeros (there is no
    previous output in that call): Keras 3 does the same."""
    full, live = _pair(masking=True)
    x = _x()
    x[0, 8:14] = 0.0  # a gap straddling the chunk boundary at step 10
    x[2, 30:] = 0.0   # a stream that ends early
    expected = full.predict(x)
    streamed = _stream(live, x, [10, 10, 20])
    kept = np.any(x != 0, axis=2)
    np.testing.assert_allclose(streamed[kept], expected[kept], atol=1e-5)
    np.testing.assert_allclose(streamed[0, :10], expected[0, :10], atol=1e-5)  # masked 8, 9 repeat step 7
    np.testing.assert_allclose(streamed[2, 30:], expected[2, 30:], atol=1e-5)  # within one chunk: repeats
    assert np.all(streamed[0, 10:14] == 0)


def test_reset_states_starts_a_new_stream():
    full, live = _pair()
    x = _x()
    expected = full.predict(x)
    _stream(live, x, [20, 20])
    gru = live.layers[0]
    assert gru.states[0].shape == (STREAMS, UNITS) and np.abs(gru.states[0]).sum() > 0
    live.reset_states()
    assert gru.states is None or np.all(gru.states[0] == 0)  # Keras 3 keeps zeros; None means the same
    np.testing.assert_allclose(live.predict(x[:, :5]), expected[:, :5], atol=1e-5)
    gru.reset_states()
    np.testing.assert_allclose(live.predict(x[:, :5]), expected[:, :5], atol=1e-5)


def test_last_output_per_chunk():
    fg.set_random_seed(2)
    clf = fg.Sequential([Input(shape=(None, FEATURES)), GRU(UNITS), Dense(3, activation="softmax")])
    online = fg.Sequential([Input(batch_shape=(STREAMS, None, FEATURES)), GRU(UNITS, stateful=True),
                            Dense(3, activation="softmax")])
    online.set_weights(clf.get_weights())
    x = _x()
    for t in range(0, STEPS, 10):
        p = online.predict(x[:, t:t + 10])
        np.testing.assert_allclose(p, clf.predict(x[:, :t + 10]), atol=1e-5)


def test_the_stateful_model_round_trips_through_a_keras_file(tmp_path):
    full, live = _pair()
    x = _x()
    live.save(tmp_path / "live.keras")
    again = fg.load_model(tmp_path / "live.keras")
    assert again.layers[0].stateful
    np.testing.assert_allclose(_stream(again, x, [25, 15]), full.predict(x), atol=1e-5)
