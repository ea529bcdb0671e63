"""Batch invariance (``fg.set_batch_invariant(True)``): a row's prediction is bit-identical whatever
shares its batch, whatever ``batch_size`` and whatever the thread count, for GRU, LSTM and
Bidirectional models with Dense heads, in float32 and float64.

The conftest sets ``FASTGRU_MIN_CHUNK_WORK=0``, so with 2 threads every batch is split over two
kernel chunks of varying sizes: the rows land in different positions of different-sized products.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Embedding, Input, SimpleRNN


@pytest.fixture
def invariant():
    previous = fg.get_batch_invariant()
    fg.set_batch_invariant(True)
    yield
    fg.set_batch_invariant(previous)


@pytest.fixture
def threads():
    previous = fg.get_num_threads()
    yield
    fg.set_num_threads(previous)


def _models():
    return {
        "gru": lambda: [Input(shape=(9, 13)), GRU(24, return_sequences=True), GRU(20), Dense(3)],
        "gru_reset_before": lambda: [Input(shape=(9, 13)), GRU(24, reset_after=False), Dense(2)],
        "lstm": lambda: [Input(shape=(9, 13)), LSTM(24, return_sequences=True), Dense(5, activation="softmax")],
        "bigru": lambda: [Input(shape=(9, 13)), Bidirectional(GRU(16)), Dense(1, activation="sigmoid")],
        "bilstm_sum": lambda: [Input(shape=(9, 13)), Bidirectional(LSTM(16, return_sequences=True),
                                                                   merge_mode="sum"), Dense(4)],
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", sorted(_models()))
def test_a_rows_prediction_does_not_depend_on_its_batch(invariant, threads, kind, dtype):
    fg.set_random_seed(3)
    model = fg.Sequential(_models()[kind]())
    rng = np.random.default_rng(7)
    x = rng.standard_normal((61, 9, 13)).astype(dtype)
    fg.set_num_threads(1)
    alone = np.concatenate([model.predict(x[i:i + 1]) for i in range(len(x))])
    assert alone.dtype == np.dtype(dtype)
    for n_threads in (1, 2):
        fg.set_num_threads(n_threads)
        np.testing.assert_array_equal(model.predict(x), alone)
        for batch_size in (2, 5, 16, 32, 60):
            np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), alone)
        # other batch-mates: the rows in reverse order, and a row among 47 random others
        np.testing.assert_array_equal(model.predict(x[::-1].copy())[::-1], alone)
        mixed = np.concatenate([rng.standard_normal((23, 9, 13)).astype(dtype), x[10:11],
                                rng.standard_normal((24, 9, 13)).astype(dtype)])
        np.testing.assert_array_equal(model.predict(mixed)[23], alone[10])


def test_masked_token_model_is_batch_invariant(invariant, threads):
    fg.set_random_seed(4)
    model = fg.Sequential([Input(shape=(12,), dtype="int32"), Embedding(50, 8, mask_zero=True),
                           GRU(16), Dense(2)])
    rng = np.random.default_rng(8)
    tokens = rng.integers(1, 50, size=(40, 12))
    tokens[:, 8:] *= rng.integers(0, 2, size=(40, 1))  # padded tails on about half the rows
    alone = np.concatenate([model.predict(tokens[i:i + 1]) for i in range(len(tokens))])
    for n_threads in (1, 2):
        fg.set_num_threads(n_threads)
        for batch_size in (None, 3, 17):
            np.testing.assert_array_equal(model.predict(tokens, batch_size=batch_size), alone)


def test_the_switch_changes_paths_not_results_beyond_rounding(threads):
    """The two modes agree to float32 rounding, so the switch never changes what a model computes."""
    fg.set_random_seed(5)
    model = fg.Sequential(_models()["gru"]())
    x = np.random.default_rng(9).standard_normal((50, 9, 13)).astype("float32")
    fast = model.predict(x)
    previous = fg.get_batch_invariant()
    fg.set_batch_invariant(True)
    try:
        slow = model.predict(x)
    finally:
        fg.set_batch_invariant(previous)
    np.testing.assert_allclose(slow, fast, rtol=1e-5, atol=1e-6)


def test_the_switch_and_its_environment_variable(monkeypatch):
    previous = fg.get_batch_invariant()
    try:
        fg.set_batch_invariant(True)
        assert fg.get_batch_invariant()
        fg.set_batch_invariant(False)
        assert not fg.get_batch_invariant()
        with pytest.raises(TypeError, match="True or False"):
            fg.set_batch_invariant("yes")
    finally:
        fg.set_batch_invariant(previous)
    import subprocess
    import sys
    code = "import fastgru as fg; print(fg.get_batch_invariant())"
    for value, expected in (("1", "True"), ("0", "False"), ("", "False")):
        env = dict(__import__("os").environ, FASTGRU_BATCH_INVARIANT=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrent_layers_are_batch_invariant_without_the_switch(threads, dtype):
    """The recurrent kernels' products (projection and step) always sum a row in one fixed order (the
    packed micro-kernel), so recurrent stacks need no switch: a row's outputs are bit-identical
    whatever shares its batch, in tiles of every size (1..9 rows) and at 1 and 2 threads."""
    assert not fg.get_batch_invariant()
    fg.set_random_seed(5)
    model = fg.Sequential([Input(shape=(6, 11)), GRU(21, return_sequences=True), LSTM(18, return_sequences=True),
                           GRU(19, reset_after=False)])
    x = np.random.default_rng(2).standard_normal((23, 6, 11)).astype(dtype)
    fg.set_num_threads(1)
    alone = np.concatenate([model.predict(x[i:i + 1]) for i in range(len(x))])
    for n_threads in (1, 2):
        fg.set_num_threads(n_threads)
        for batch_size in (2, 3, 5, 7, 9, 23):
            np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), alone)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kernels_read_in_place_give_the_packed_kernels_sums(threads, dtype):
    """Widths of whole panels (3H, 4H, 2H and H multiples of 32) with a batch of at least one full
    tile: the time loops read the recurrent and input kernels where they lie (``packed.operand``);
    one sequence at a time they are packed. Both give every row the same sums, bit for bit."""
    from fastgru._kernels import aligned, packed

    fg.set_random_seed(6)
    model = fg.Sequential([Input(shape=(5, 16)), GRU(32, return_sequences=True), LSTM(16, return_sequences=True),
                           GRU(32, reset_after=False, return_sequences=True), SimpleRNN(32)])
    model.build((None, 5, 16))
    for layer in model.layers:  # the layers' kernels start on a cache line (what reading them in place asks)
        assert all(w.ctypes.data % aligned.ALIGN == 0 for w in layer.weights if w.ndim == 2)
    kernel = np.ascontiguousarray(model.layers[0].weights[1], dtype=dtype)  # the first GRU's (32, 96)
    src = aligned.aligned_copy(kernel)
    in_place = packed.operand(src, packed.MR)
    assert in_place[3:] == (packed.panel_width(dtype), 96) and np.shares_memory(in_place[0], src)
    one_row = packed.operand(src, 1)  # (one row at a time: packed)
    assert one_row[3:] == (32 * packed.panel_width(dtype), packed.panel_width(dtype))
    assert not np.shares_memory(one_row[0], src)
    x = np.random.default_rng(3).standard_normal((21, 5, 16)).astype(dtype)
    fg.set_num_threads(1)
    alone = np.concatenate([model.predict(x[i:i + 1]) for i in range(len(x))])
    for n_threads in (1, 2):
        fg.set_num_threads(n_threads)
        for batch_size in (9, 16, 21):
            np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), alone)
