"""Fixes from the twenty-ninth session (the thirty-eighth Keras-parity fuzz round and the session's own list; each
test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_tf_keras_matmul_with_transposes_runs_trains_and_saves_back(keras, tmp_path):
    """``tf.matmul(q, k, transpose_b=True)``, the scores of a hand-written attention in tf_keras, was refused
    ("called with argument(s) ['transpose_b']"). Two tensors now multiply as Keras 3's
    ``einsum("...ij,...kj->...ik")``; a constant operand is transposed when the file is read."""
    tk = pytest.importorskip("tf_keras")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    q, k = tk.Input((6, 4)), tk.Input((5, 4))
    hq, hk = tk.layers.Dense(4)(q), tk.layers.Dense(4)(k)
    scores = tf.matmul(hq, hk, transpose_b=True)
    context = tf.matmul(tf.nn.softmax(scores / 2.0, axis=-1), hk)
    gram = tf.matmul(hq, hq, transpose_a=True)
    both = tf.matmul(hk, scores, transpose_a=True, transpose_b=True)  # (B, 4, 6)
    constant = tf.matmul(hq, np.linspace(-1, 1, 12).reshape(3, 4).astype("float32"), transpose_b=True)
    km = tk.Model([q, k], [tk.layers.GRU(3)(context), scores, gram, both, constant])
    km.compile(tk.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "mm.h5")
    x = [rng.normal(size=(4, 6, 4)).astype("float32"), rng.normal(size=(4, 5, 4)).astype("float32")]
    expected = km.predict(x, verbose=0)
    ours = fg.load_model(tmp_path / "mm.h5")
    for got, want in zip(ours.predict(x), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "back.keras")
    for got, want in zip(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    y = [rng.normal(size=e.shape).astype("float32") for e in expected]
    theirs = km.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


@pytest.mark.keras
def test_keras_einsum_with_an_ellipsis(keras, tmp_path):
    """``keras.ops.einsum("...ij,...kj->...ik", a, b)`` was refused ("letters only"): the ellipsis now stands for
    the axes the letters leave, as in NumPy and TensorFlow."""
    K, ops = keras.layers, keras.ops
    keras.utils.set_random_seed(1)
    a, b = keras.Input((6, 4)), keras.Input((5, 4))
    ha, hb = K.Dense(4)(a), K.Dense(4)(b)
    scores = ops.einsum("...ij,...kj->...ik", ha, hb)
    moved = ops.einsum("b...d->bd...", ha)
    km = keras.Model([a, b], [K.GRU(3)(ops.einsum("...ik,...kd->...id", ops.softmax(scores), hb)), moved])
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "e.keras")
    rng = np.random.default_rng(2)
    x = [rng.normal(size=(3, 6, 4)).astype("float32"), rng.normal(size=(3, 5, 4)).astype("float32")]
    expected = km.predict(x, verbose=0)
    ours = fg.load_model(tmp_path / "e.keras")
    for got, want in zip(ours.predict(x), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    y = [rng.normal(size=e.shape).astype("float32") for e in expected]
    theirs = km.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
