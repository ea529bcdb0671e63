"""BPTT gradients against Keras 3 (tf.GradientTape) on random weights with non-zero biases, float32.

Skipped cleanly when keras (with TensorFlow) is not installed; CI installs both.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from fastgru import ops  # noqa: E402

B, T, D, H = 4, 7, 5, 6
# max |ours - keras| relative to max |keras|, per gradient; most cases are below 6e-6, the largest
# (1.5e-5) come from tanh as recurrent activation, where float32 runs a rational tanh (abs error
# 3.4e-7) and Keras the exact one
REL = 3e-5


def keras_gradients(rng, keras_kwargs, mask=None, training=False, masks=None):
    """Build a Keras GRU with random weights; return (weights, x, h0, c_out, c_h, grads, outputs)."""
    layer = keras.layers.GRU(units=H, return_state=True, **keras_kwargs)
    layer.build((None, T, D))
    weights = [(rng.standard_normal(v.shape) * 0.5).astype(np.float32) for v in layer.get_weights()]
    layer.set_weights(weights)
    if masks is not None:
        # the cell draws its masks here (once per call); hand it ours instead, keyed by the rate
        layer.cell._create_dropout_mask = lambda step_input, rate: masks[rate]
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    h0 = (rng.standard_normal((B, H)) * 0.5).astype(np.float32)
    out_shape = (B, T, H) if keras_kwargs.get("return_sequences") else (B, H)
    c_out = rng.standard_normal(out_shape).astype(np.float32)
    c_h = rng.standard_normal((B, H)).astype(np.float32)
    xt, h0t = tf.constant(x), tf.constant(h0)
    with tf.GradientTape() as tape:
        tape.watch([xt, h0t])
        out, h_last = layer(xt, initial_state=h0t, mask=None if mask is None else tf.constant(mask),
                            training=training)
        loss = tf.reduce_sum(out * c_out) + tf.reduce_sum(h_last * c_h)
    grads = tape.gradient(loss, [xt] + list(layer.trainable_variables) + [h0t])
    grads = [np.asarray(g) for g in grads]
    return weights, x, h0, c_out, c_h, grads, np.asarray(out)


def check(rng, mask=None, dropout_mask=None, recurrent_dropout_mask=None, masks=None, **kw):
    training = masks is not None
    weights, x, h0, c_out, c_h, expected, k_out = keras_gradients(rng, kw, mask, training, masks)
    opts = {k: v for k, v in kw.items() if k not in ("use_bias", "dropout", "recurrent_dropout")}
    w, u = weights[0], weights[1]
    b = weights[2] if kw.get("use_bias", True) else None
    out, _, cache = ops.gru_forward_train(x, w, u, b, h0=h0, mask=mask, dropout_mask=dropout_mask,
                                          recurrent_dropout_mask=recurrent_dropout_mask, **opts)
    np.testing.assert_allclose(out, k_out, atol=2e-5, rtol=1e-4)
    got = cache.backward(c_out, c_h)
    ours = [got.dx, got.dkernel, got.drecurrent_kernel] + ([got.dbias] if b is not None else []) + [got.dh0]
    assert len(ours) == len(expected)
    for name, a, e in zip(["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"][: len(ours) - 1] + ["dh0"],
                          ours, expected):
        assert a.shape == e.shape and a.dtype == np.float32, name
        err = np.abs(a - e).max() / max(np.abs(e).max(), 1e-3)
        assert err <= REL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize(
    "reset_after,go_backwards,return_sequences,masked",
    list(itertools.product([True, False], [False, True], [False, True], [False, True])),
)
def test_option_grid(rng, reset_after, go_backwards, return_sequences, masked):
    mask = None
    if masked:
        mask = rng.random((B, T)) > 0.3
        mask[0, -2:] = False
        mask[1, :2] = False
        mask[:, 3] = True
    check(rng, mask=mask, reset_after=reset_after, go_backwards=go_backwards, return_sequences=return_sequences)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_zero_output_for_mask(rng, return_sequences):
    mask = np.array([[1, 1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 1, 1, 0], [1, 0, 1, 0, 1, 0, 0], [1] * 7], bool)
    check(rng, mask=mask, return_sequences=return_sequences, zero_output_for_mask=True)


@pytest.mark.parametrize(
    "activation,recurrent_activation",
    [("relu", "hard_sigmoid"), ("softsign", "sigmoid"), ("elu", "tanh"), ("selu", "softsign"),
     ("softplus", "sigmoid"), ("linear", "hard_sigmoid"), ("sigmoid", "sigmoid"), ("relu6", "hard_tanh"),
     ("leaky_relu", "hard_sigmoid"), ("sparse_plus", "sigmoid"), ("squareplus", "tanh"), ("celu", "sigmoid"),
     ("log_sigmoid", "sigmoid")],
)
@pytest.mark.parametrize("reset_after", [True, False])
def test_activations(rng, activation, recurrent_activation, reset_after):
    check(rng, activation=activation, recurrent_activation=recurrent_activation, reset_after=reset_after,
          return_sequences=True)


@pytest.mark.parametrize("reset_after", [True, False])
def test_without_bias(rng, reset_after):
    check(rng, use_bias=False, reset_after=reset_after, return_sequences=True)


def _mask(rng, rate, shape):
    return ((rng.random(shape) >= rate) / (1 - rate)).astype(np.float32)


@pytest.mark.parametrize("reset_after", [True, False])
def test_dropout_only(rng, reset_after):
    """``dropout`` alone: one (B, D) input mask for every gate and step (Keras implementation 2)."""
    m = _mask(rng, 0.3, (B, D))
    check(rng, dropout=0.3, reset_after=reset_after, return_sequences=True, dropout_mask=m,
          masks={0.3: tf.constant(m)})


@pytest.mark.parametrize("reset_after,with_dropout,go_backwards", [(True, True, False), (False, True, True),
                                                                   (True, False, True), (False, False, False)])
def test_recurrent_dropout(rng, reset_after, with_dropout, go_backwards):
    """``recurrent_dropout``: implementation 1, three recurrent masks (and three input masks)."""
    rm = _mask(rng, 0.2, (3, B, H))
    dm = _mask(rng, 0.3, (3, B, D)) if with_dropout else None
    masks = {0.2: [tf.constant(m) for m in rm]}
    if with_dropout:
        masks[0.3] = [tf.constant(m) for m in dm]
    mask = rng.random((B, T)) > 0.25
    mask[:, 0] = True
    check(rng, mask=mask, dropout=0.3 if with_dropout else 0.0, recurrent_dropout=0.2, reset_after=reset_after,
          go_backwards=go_backwards, return_sequences=True, dropout_mask=dm, recurrent_dropout_mask=rm, masks=masks)
