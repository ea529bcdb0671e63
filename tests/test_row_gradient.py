"""An Embedding's gradient as slices (RowGradient): Keras's update rules square the slices, not
their sum. Checked here against hand-written Keras rules (tests/test_lstm_keras.py checks live Keras)."""

from __future__ import annotations

import numpy as np

import fastgru as fg
from fastgru.layers import Embedding
from fastgru.training.row_gradient import RowGradient


def test_dense_and_squares_keep_duplicates_apart():
    g = RowGradient(np.array([2, 0, 2]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), (4, 2))
    np.testing.assert_array_equal(g.dense(), [[3, 4], [0, 0], [6, 8], [0, 0]])
    np.testing.assert_array_equal(g.squares(), [[9, 16], [0, 0], [26, 40], [0, 0]])
    assert g.sum_squares() == 1 + 4 + 9 + 16 + 25 + 36


def test_adam_velocity_takes_the_summed_squared_slices():
    rng = np.random.default_rng(0)
    var = rng.standard_normal((5, 3))
    idx = np.array([1, 1, 3, 1, 4])
    vals = rng.standard_normal((5, 3))
    g = RowGradient(idx, vals, var.shape)
    ours = var.copy()
    opt = fg.optimizers.Adam(learning_rate=0.1, clipnorm=0.7)
    opt.apply([g], [ours])
    # Keras: tf.clip_by_norm on the slices, m from the summed gradient, v from the summed squares
    scale = 0.7 / max(np.sqrt((vals ** 2).sum()), 0.7)
    dense = np.zeros_like(var)
    sq = np.zeros_like(var)
    np.add.at(dense, idx, vals * scale)
    np.add.at(sq, idx, (vals * scale) ** 2)
    m = 0.1 * dense
    v = 0.001 * sq
    alpha = np.float32(0.1) * np.sqrt(1 - np.float32(0.999)) / (1 - np.float32(0.9))
    np.testing.assert_allclose(ours, var - m * alpha / (np.sqrt(v) + 1e-7), rtol=1e-6)


def test_embedding_backward_gives_one_slice_per_token():
    layer = Embedding(6, 2)
    layer.build((None, 3))
    tokens = np.array([[1, 1, 0], [5, 1, 2]])
    _, cache = layer.forward(tokens)
    _, (grad,) = layer.backward(np.ones((2, 3, 2), np.float32), cache)
    assert isinstance(grad, RowGradient) and grad.values.shape == (6, 2)
    np.testing.assert_array_equal(grad.dense()[:, 0], [1, 3, 1, 0, 0, 1])
