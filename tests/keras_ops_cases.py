"""Keras models that compute with Keras 3 ops (``x + y``, ``keras.ops.mean``, ``ops.matmul``, ...) around a GRU,
shared by tests/fixtures/make_op_fixtures.py (files loaded without TensorFlow) and tests/test_keras_ops_keras.py
(live Keras). ``every_op``: one output per op fastgru runs; ``trainable``: two heads (a softmax op and a
sigmoid op) over a residual, dot-product attention written with ops, trained in both."""

from __future__ import annotations

import numpy as np


def every_op(keras):
    """(model, output names): inputs (B, 6, 4) and (B, 4); one output per op."""
    ops = keras.ops
    x, v = keras.Input((6, 4), name="x"), keras.Input((4,), name="v")
    g = keras.layers.GRU(4, return_sequences=True, name="gru")(x)
    p = x + g
    cases = {
        "add_broadcast": p + v[:, None, :], "sub_const": p - 1.0, "rsub": 2.0 - p, "mul": p * g, "div": p / 3.0,
        "rdiv": 1.0 / (ops.abs(p) + 5.0), "neg": -p, "abs": ops.abs(p), "square": ops.square(p),
        "sqrt": ops.sqrt(ops.abs(p) + 0.1), "exp": ops.exp(p), "log": ops.log(ops.abs(p) + 1), "tanh": ops.tanh(p),
        "sigmoid": ops.sigmoid(p), "relu": ops.relu(p), "gelu": ops.gelu(p), "gelu_exact": ops.gelu(p, approximate=False),
        "silu": ops.silu(p), "softplus": ops.softplus(p), "softmax": ops.softmax(p, axis=-1),
        "softmax_time": ops.softmax(p, axis=1), "log_softmax": ops.log_softmax(p), "mean": ops.mean(p, axis=1),
        "sum": ops.sum(p, axis=[1, 2], keepdims=True), "max": ops.max(p, axis=-1), "min": ops.min(p, axis=1),
        "concatenate": ops.concatenate([p, g], axis=1), "stack": ops.stack([p, g], axis=1),
        "expand_dims": ops.expand_dims(p, -1), "squeeze": ops.squeeze(ops.expand_dims(p, 2), axis=2),
        "reshape": ops.reshape(p, (-1, 24)), "transpose": ops.transpose(p, (0, 2, 1)),
        "matmul": ops.matmul(p, ops.transpose(g, (0, 2, 1))), "maximum": ops.maximum(p, 0.5),
        "minimum": ops.minimum(p, v[:, None, :]), "power": ops.power(p, 2), "cast": ops.cast(p, "float32"),
        "clip": ops.clip(p, -1, 1), "einsum": ops.einsum("btd,bsd->bts", p, g), "elu": ops.elu(p),
        "elu_alpha": ops.elu(p, alpha=0.5), "leaky_relu": ops.leaky_relu(p), "hard_sigmoid": ops.hard_sigmoid(p),
        "erf": ops.erf(p), "norm": ops.norm(p, axis=-1), "cumsum": ops.cumsum(p, axis=1), "flip": ops.flip(p, axis=1),
        "average": ops.average(p, axis=1), "var": ops.var(p, axis=1), "std": ops.std(p, axis=1),
        "rsqrt": ops.rsqrt(ops.abs(p) + 1), "swapaxes": ops.swapaxes(p, 1, 2), "moveaxis": ops.moveaxis(p, 1, 2),
        "logsumexp": ops.logsumexp(p, axis=1), "pad": ops.pad(p, ((0, 0), (1, 1), (0, 0))),
        "divide": ops.divide(p, g + 3.0), "sign": ops.sign(p),
        "add_array": p + np.linspace(-1, 1, 24, dtype="float32").reshape(6, 4), "where": ops.where(p > 0, p, 0.1 * p),
        "logic": ops.where(ops.logical_and(p > -0.1, p < 0.3), p, -p), "not": ops.where(ops.logical_not(p < 0), p, 0.0),
        "compare_cast": ops.cast(ops.greater_equal(p, 0.1), "float32") * p, "any": ops.cast(ops.any(p > 0.2, axis=-1),
                                                                                          "float32"),
        "scaled": p / ops.sqrt(8.0), "tensor_constant": p + ops.convert_to_tensor(np.full((6, 4), 0.25, "float32")),
        "matmul_constant": ops.matmul(p, np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3)),
        "einsum_one": ops.einsum("btd->bd", p),
    }
    names = list(cases)
    return keras.Model([x, v], [cases[n] for n in names], name="every_op"), names


def trainable(keras):
    """Inputs (B, 6, 4) and (B, 3); outputs: 3 classes (softmax op), one probability (sigmoid op)."""
    ops, L = keras.ops, keras.layers
    x, v = keras.Input((6, 4), name="x"), keras.Input((3,), name="v")
    g = L.GRU(4, return_sequences=True, name="gru")(x)
    h = L.LayerNormalization(name="norm")(g + L.Dense(4, name="skip")(x))
    attention = ops.softmax(ops.matmul(h, ops.transpose(h, (0, 2, 1))) / 2.0, axis=-1)
    context = ops.matmul(attention, h)
    pooled = ops.concatenate([ops.mean(context, axis=1), ops.max(h * 0.5, axis=1), ops.tanh(v) ** 2], axis=-1)
    classes = ops.softmax(L.Dense(3, name="logits")(ops.relu(pooled) - 0.1))
    leaky = ops.where(context > 0, context, 0.1 * context) + np.linspace(0, 1, 24, dtype="float32").reshape(6, 4)
    flag = ops.sigmoid(L.Dense(1, name="flag")(ops.reshape(leaky, (-1, 24))))
    return keras.Model([x, v], [classes, flag], name="trainable")


def data(seed: int = 0, n: int = 16):
    """Inputs and targets of ``trainable`` (also the inputs of ``every_op``, with its second input cut to 4)."""
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, 6, 4)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")]
    ys = [np.eye(3, dtype="float32")[rng.integers(0, 3, n)], rng.integers(0, 2, (n, 1)).astype("float32")]
    return xs, ys


def randomize(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])
