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


@pytest.mark.keras
def test_more_tf_keras_op_layers(keras, tmp_path):
    """tf_keras op layers fastgru refused by name: ``tf.where(c, x, y)``, ``tf.math.is_nan``/``is_inf``/
    ``is_finite``, ``tf.stop_gradient``, the inverse trigonometric functions, ``erfc``, ``erfinv``,
    ``reduce_prod``/``_any``/``_all``, ``cumsum``, ``cumprod``, ``divide_no_nan``, ``logical_xor``/``_not``,
    ``zeros_like``/``ones_like``. Run as the Keras 3 ops, trained as tf_keras trains them, written back for Keras."""
    tk = pytest.importorskip("tf_keras")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    inp = tk.Input((6, 4))
    h = tk.layers.Dense(4)(inp)
    t = tf.math.tanh(h) * 0.9
    outs = [tf.where(h > 0, h, 0.1 * h), tf.where(tf.math.is_nan(tf.math.log(h)), tf.zeros_like(h), h),
            tf.cast(tf.math.is_inf(1.0 / tf.math.floor(h)), "float32"),
            tf.cast(tf.math.is_finite(tf.math.log(h)), "float32") * h, tf.stop_gradient(h) * h, tf.math.asin(t),
            tf.math.acos(t), tf.math.asinh(h), tf.math.acosh(tf.abs(h) + tf.ones_like(h) * 1.1), tf.math.atanh(t),
            tf.math.erfc(h), tf.math.erfinv(t), tf.math.reduce_prod(h, axis=1),
            tf.cast(tf.math.reduce_any(h > 1, axis=-1), "float32"),
            tf.cast(tf.math.reduce_all(h > -1, axis=-1), "float32"), tf.math.cumsum(h, axis=1),
            tf.math.cumprod(h, axis=-1), tf.math.divide_no_nan(h, tf.math.floor(h)),
            tf.cast(tf.math.logical_xor(h > 0, h > 0.5), "float32"), tf.cast(tf.math.logical_not(h > 0), "float32")]
    km = tk.Model(inp, outs)
    km.save(tmp_path / "ops.h5")
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    expected = km.predict(x, verbose=0)
    ours = fg.load_model(tmp_path / "ops.h5")
    for got, want in zip(ours.predict(x), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "back.keras")
    for got, want in zip(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # trained: the differentiable ones, one loss
    tk.utils.set_random_seed(0)
    inp = tk.Input((6, 4))
    h = tk.layers.GRU(4, return_sequences=True)(inp)
    mixed = tf.concat([tf.where(h > 0, h, 0.1 * h), tf.stop_gradient(h) * h, tf.math.asinh(h * 3),
                       tf.math.cumsum(h, axis=1), tf.math.erfc(h)], axis=-1)
    km = tk.Model(inp, tk.layers.Dense(1)(tf.concat([tf.math.reduce_prod(h + 1.0, axis=1),
                                                      tk.layers.GlobalAveragePooling1D()(mixed)], axis=-1)))
    km.compile(tk.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "train.h5")
    ours = fg.load_model(tmp_path / "train.h5")
    y = rng.normal(size=(3, 1)).astype("float32")
    theirs = km.fit(x, y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
