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


#: (name, the op on a tensor p of shape (B, 6, 4), fastgru's op class name, its config, input domain) of the ops
#: added in the twenty-eighth session: ``more_ops`` makes a model of them, the live test checks each one's values and
#: gradients against TensorFlow's
def _CONSTANT(*shape):  # (a fixed array of the shape, for the ops that take one)
    return np.linspace(-1.0, 1.5, int(np.prod(shape)), dtype="float32").reshape(shape)


MORE_OPS = [
    ("relu6", lambda o, p: o.relu6(p * 4), "Relu6", {}, "any"),
    ("softsign", lambda o, p: o.softsign(p), "Softsign", {}, "any"),
    ("selu", lambda o, p: o.selu(p), "Selu", {}, "any"),
    ("log_sigmoid", lambda o, p: o.log_sigmoid(p), "LogSigmoid", {}, "any"),
    ("hard_silu", lambda o, p: o.hard_silu(p * 3), "HardSilu", {}, "any"),
    ("hard_tanh", lambda o, p: o.hard_tanh(p * 2), "HardTanh", {}, "any"),
    ("celu", lambda o, p: o.celu(p, alpha=0.5), "Celu", {"alpha": 0.5}, "any"),
    ("tanh_shrink", lambda o, p: o.tanh_shrink(p), "TanhShrink", {}, "any"),
    ("squareplus", lambda o, p: o.squareplus(p, b=2), "Squareplus", {"b": 2}, "any"),
    ("sparse_plus", lambda o, p: o.sparse_plus(p * 2), "SparsePlus", {}, "any"),
    ("soft_shrink", lambda o, p: o.soft_shrink(p, threshold=0.3), "SoftShrink", {"threshold": 0.3}, "any"),
    ("hard_shrink", lambda o, p: o.hard_shrink(p), "HardShrink", {"threshold": 0.5}, "any"),
    ("threshold", lambda o, p: o.threshold(p, 0.1, -2.0), "Threshold", {"threshold": 0.1, "default_value": -2.0},
     "any"),
    ("log1p", lambda o, p: o.log1p(o.abs(p)), "Log1p", {}, "positive"),
    ("expm1", lambda o, p: o.expm1(p), "Expm1", {}, "any"),
    ("log2", lambda o, p: o.log2(o.abs(p) + 0.5), "Log2", {}, "positive"),
    ("log10", lambda o, p: o.log10(o.abs(p) + 0.5), "Log10", {}, "positive"),
    ("exp2", lambda o, p: o.exp2(p), "Exp2", {}, "any"),
    ("reciprocal", lambda o, p: o.reciprocal(o.abs(p) + 0.5), "Reciprocal", {}, "positive"),
    ("sin", lambda o, p: o.sin(p), "Sin", {}, "any"),
    ("cos", lambda o, p: o.cos(p), "Cos", {}, "any"),
    ("tan", lambda o, p: o.tan(p * 0.5), "Tan", {}, "any"),
    ("sinh", lambda o, p: o.sinh(p), "Sinh", {}, "any"),
    ("cosh", lambda o, p: o.cosh(p), "Cosh", {}, "any"),
    ("arctan", lambda o, p: o.arctan(p), "Arctan", {}, "any"),
    ("floor", lambda o, p: o.floor(p * 3) * p, "Floor", {}, "any"),
    ("ceil", lambda o, p: o.ceil(p * 3) * p, "Ceil", {}, "any"),
    ("trunc", lambda o, p: o.trunc(p * 3) * p, "Trunc", {}, "any"),
    ("round", lambda o, p: o.round(p * 3) * p, "Round", {"decimals": 0}, "any"),
    ("round_decimals", lambda o, p: o.round(p, decimals=1), "Round", {"decimals": 1}, "any"),
    ("floor_divide", lambda o, p: (p * 5) // 2.0, "FloorDivide", None, "any"),
    ("mod", lambda o, p: (p * 5) % 2.0, "Mod", None, "any"),
    ("logaddexp", lambda o, p: o.logaddexp(p, p * p), "Logaddexp", None, "any"),
    ("arctan2", lambda o, p: o.arctan2(p, p * p + 0.5), "Arctan2", None, "any"),
    ("amax", lambda o, p: o.amax(p, axis=1), "Amax", {"axis": 1, "keepdims": False}, "any"),
    ("amin", lambda o, p: o.amin(p, axis=-1, keepdims=True), "Amin", {"axis": -1, "keepdims": True}, "any"),
    ("argmax", lambda o, p: o.cast(o.argmax(p, axis=-1), "float32"), "Argmax", {"axis": -1, "keepdims": False}, "any"),
    ("argmin", lambda o, p: o.cast(o.argmin(p, axis=1, keepdims=True), "float32"), "Argmin",
     {"axis": 1, "keepdims": True}, "any"),
    ("glu", lambda o, p: o.glu(p, axis=-1), "Glu", {"axis": -1}, "any"),
    ("glu_time", lambda o, p: o.glu(p, axis=1), "Glu", {"axis": 1}, "any"),
    ("normalize", lambda o, p: o.normalize(p, axis=-1), "Normalize", {"axis": -1, "order": 2, "epsilon": None}, "any"),
    ("normalize_l1", lambda o, p: o.normalize(p, axis=1, order=1), "Normalize", {"axis": 1, "order": 1,
                                                                                 "epsilon": None}, "any"),
    ("repeat", lambda o, p: o.repeat(p, 2, axis=1), "Repeat", {"repeats": 2, "axis": 1}, "any"),
    ("tile", lambda o, p: o.tile(p, (1, 2, 3)), "Tile", {"repeats": [1, 2, 3]}, "any"),
    ("tile_short", lambda o, p: o.tile(p, (2,)), "Tile", {"repeats": [2]}, "any"),
    ("roll", lambda o, p: o.roll(p, 2, axis=1), "Roll", {"shift": 2, "axis": 1}, "any"),
    ("roll_two", lambda o, p: o.roll(p, (1, -1), axis=(1, 2)), "Roll", {"shift": [1, -1], "axis": [1, 2]}, "any"),
    ("take", lambda o, p: o.take(p, [0, 2, -1], axis=1), "Take", {"axis": 1}, "any"),
    ("take_array", lambda o, p: o.take(p, np.array([[1, 0], [3, 3]]), axis=-1), "Take", {"axis": -1}, "any"),
    ("sort", lambda o, p: o.sort(p, axis=1), "Sort", {"axis": 1}, "any"),
    ("argsort", lambda o, p: o.cast(o.argsort(p, axis=-1), "float32"), "Argsort", {"axis": -1}, "any"),
    ("top_k_values", lambda o, p: o.top_k(p, 2)[0], "TopK", {"k": 2, "sorted": True}, "any"),
    ("top_k_indices", lambda o, p: o.cast(o.top_k(p, 3)[1], "float32"), "TopK", {"k": 3, "sorted": True}, "any"),
    ("moments", lambda o, p: o.moments(p, axes=[1])[0] + o.moments(p, axes=[1])[1], "Moments",
     {"axes": [1], "keepdims": False, "synchronized": False}, "any"),
    ("take_along_axis", lambda o, p: o.take_along_axis(p, o.argsort(p, axis=1), axis=1), "TakeAlongAxis",
     {"axis": 1}, "any"),
    ("diff", lambda o, p: o.diff(p, axis=1), "Diff", {"n": 1, "axis": 1}, "any"),
    ("diff_twice", lambda o, p: o.diff(p, n=2, axis=-1), "Diff", {"n": 2, "axis": -1}, "any"),
    ("cumprod", lambda o, p: o.cumprod(p, axis=1), "Cumprod", {"axis": 1, "dtype": None}, "any"),
    ("triu", lambda o, p: o.triu(p, k=1), "Triu", {"k": 1}, "any"),
    ("tril", lambda o, p: o.tril(p), "Tril", {"k": 0}, "any"),
    ("causal_scores", lambda o, p: o.where(o.tril(o.ones_like(o.matmul(p, o.transpose(p, (0, 2, 1))))) > 0,
                                           o.matmul(p, o.transpose(p, (0, 2, 1))), -1e9), "Tril", {"k": 0}, "any"),
    ("zeros_like", lambda o, p: o.zeros_like(p) + p, "ZerosLike", {"dtype": None}, "any"),
    ("full_like", lambda o, p: o.full_like(p, 2.5) * p, "FullLike", {"dtype": None}, "any"),
    ("take_along_argmax", lambda o, p: o.take_along_axis(p, o.expand_dims(o.argmax(p, axis=-1), -1), axis=-1),
     "TakeAlongAxis", {"axis": -1}, "any"),
    # (the twenty-ninth session's)
    ("nan_to_num", lambda o, p: o.nan_to_num(o.log(p), nan=-1.0) * p, "NanToNum",
     {"nan": -1.0, "posinf": None, "neginf": None}, "any"),
    ("nan_to_num_inf", lambda o, p: o.nan_to_num(1.0 / o.floor(p), posinf=5.0, neginf=-7.0), "NanToNum",
     {"nan": 0.0, "posinf": 5.0, "neginf": -7.0}, "any"),
    ("isnan", lambda o, p: o.where(o.isnan(o.log(p)), 0.5 * p, p), "Isnan", {}, "any"),
    ("isinf", lambda o, p: o.cast(o.isinf(1.0 / o.floor(p)), "float32") + p, "Isinf", {}, "any"),
    ("isfinite", lambda o, p: o.cast(o.isfinite(o.log(p)), "float32") * p, "Isfinite", {}, "any"),
    ("signbit", lambda o, p: o.cast(o.signbit(p), "float32") * p, "Signbit", {}, "any"),
    ("stop_gradient", lambda o, p: o.stop_gradient(p) * p, "StopGradient", {}, "any"),
    ("fabs", lambda o, p: o.fabs(p), "Fabs", {}, "any"),
    ("erfc", lambda o, p: o.erfc(p), "Erfc", {}, "any"),
    ("erfinv", lambda o, p: o.erfinv(o.tanh(p) * 0.9), "Erfinv", {}, "any"),
    ("arcsin", lambda o, p: o.arcsin(o.tanh(p) * 0.9), "Arcsin", {}, "any"),
    ("arccos", lambda o, p: o.arccos(o.tanh(p) * 0.9), "Arccos", {}, "any"),
    ("arcsinh", lambda o, p: o.arcsinh(p * 2), "Arcsinh", {}, "any"),
    ("arccosh", lambda o, p: o.arccosh(o.abs(p) + 1.1), "Arccosh", {}, "any"),
    ("arctanh", lambda o, p: o.arctanh(o.tanh(p) * 0.9), "Arctanh", {}, "any"),
    ("cbrt", lambda o, p: o.cbrt(p * 3), "Cbrt", {}, "any"),
    ("sinc", lambda o, p: o.sinc(p), "Sinc", {}, "any"),
    ("deg2rad", lambda o, p: o.deg2rad(p * 90), "Deg2rad", {}, "any"),
    ("rad2deg", lambda o, p: o.rad2deg(p), "Rad2deg", {}, "any"),
    ("heaviside", lambda o, p: o.heaviside(o.round(p), p * p) * p, "Heaviside", None, "any"),
    ("fmod", lambda o, p: o.fmod(p * 5, o.full_like(p, 2.0)), "Fmod", None, "any"),
    ("fmax", lambda o, p: o.fmax(p, o.log(p + 0.5)), "Fmax", None, "any"),
    ("fmin", lambda o, p: o.fmin(o.log(p + 0.5), p * p), "Fmin", None, "any"),
    ("hypot", lambda o, p: o.hypot(p, p * p - 0.3), "Hypot", None, "any"),
    ("logaddexp2", lambda o, p: o.logaddexp2(p, p * p), "Logaddexp2", None, "any"),
    ("divide_no_nan", lambda o, p: o.divide_no_nan(p, o.floor(p * 2)), "DivideNoNan", None, "any"),
    ("logical_xor", lambda o, p: o.cast(o.logical_xor(p > 0, p > 0.5), "float32") * p, "LogicalXor", None, "any"),
    ("prod", lambda o, p: o.prod(p, axis=1), "Prod", {"axis": 1, "keepdims": False, "dtype": None}, "any"),
    ("prod_zeros", lambda o, p: o.prod(o.floor(p * 2) * p, axis=[1, 2], keepdims=True), "Prod",
     {"axis": [1, 2], "keepdims": True, "dtype": None}, "any"),
    ("slice", lambda o, p: o.slice(p, [0, 1, 0], [-1, 3, 4]), "Slice", {"shape": [-1, 3, 4]}, "any"),
    ("slice_rest", lambda o, p: o.slice(p, [0, 2, 1], [-1, -1, 2]), "Slice", {"shape": [-1, -1, 2]}, "any"),
    ("unstack", lambda o, p: o.unstack(p, axis=1)[2] * o.unstack(p, axis=1)[0], "Unstack",
     {"num": None, "axis": 1}, "any"),
    ("hstack", lambda o, p: o.hstack([p, p * 2]), "Hstack", {}, "any"),
    ("dot", lambda o, p: o.dot(p, _CONSTANT(4, 3)), "Dot", None, "any"),
    ("dot_vector", lambda o, p: o.dot(p, _CONSTANT(4)), "Dot", None, "any"),
    ("dot_stack", lambda o, p: o.dot(p, _CONSTANT(2, 4, 3)), "Dot", None, "any"),
    ("tensordot", lambda o, p: o.tensordot(p, _CONSTANT(4, 3), axes=1), "Tensordot", {"axes": 1}, "any"),
    ("tensordot_two", lambda o, p: o.tensordot(p, _CONSTANT(6, 4, 3), axes=2), "Tensordot", {"axes": 2}, "any"),
    ("tensordot_pairs", lambda o, p: o.tensordot(p, _CONSTANT(6, 5), axes=([1], [0])), "Tensordot",
     {"axes": [[1], [0]]}, "any"),
    ("tensordot_first", lambda o, p: o.tensordot(_CONSTANT(4), p, axes=([0], [2])), "Tensordot",
     {"axes": [[0], [2]]}, "any"),
    ("layer_norm", lambda o, p: o.layer_normalization(p), "LayerNorm",
     {"axis": -1, "epsilon": None, "rms_scaling": False}, "any"),
    ("layer_norm_affine", lambda o, p: o.layer_normalization(p, _CONSTANT(4) + 1, _CONSTANT(4), epsilon=1e-3),
     "LayerNorm", {"axis": -1, "epsilon": 1e-3, "rms_scaling": False}, "any"),
    ("layer_norm_axes", lambda o, p: o.layer_normalization(p, _CONSTANT(6, 4) + 1, None, axis=[1, 2]), "LayerNorm",
     {"axis": [1, 2], "epsilon": None, "rms_scaling": False}, "any"),
    ("layer_norm_rms", lambda o, p: o.layer_normalization(p, _CONSTANT(4) + 1, rms_scaling=True), "LayerNorm",
     {"axis": -1, "epsilon": None, "rms_scaling": True}, "any"),
    ("average_weighted", lambda o, p: o.average(p, axis=1, weights=_CONSTANT(6) + 2), "Average", {"axis": 1}, "any"),
    ("matmul_rows", lambda o, p: o.matmul(o.mean(p, axis=1), _CONSTANT(4, 3)), "Matmul", None, "any"),
    ("einsum_constant", lambda o, p: o.einsum("btd,de->bte", p, _CONSTANT(4, 2)), "Einsum",
     {"subscripts": "btd,de->bte"}, "any"),
    ("rms_norm", lambda o, p: o.rms_normalization(p), "RMSNorm", {"axis": -1, "epsilon": None}, "any"),
    ("rms_norm_scale", lambda o, p: o.rms_normalization(p, scale=_CONSTANT(4) + 1, epsilon=1e-4), "RMSNorm",
     {"axis": -1, "epsilon": 1e-4}, "any"),
]


def more_ops(keras):
    """(model, output names): input (B, 6, 4); one output per entry of ``MORE_OPS``, after a GRU."""
    x = keras.Input((6, 4), name="x")
    p = x + keras.layers.GRU(4, return_sequences=True, name="gru")(x)
    names = [name for name, *_ in MORE_OPS]
    return keras.Model(x, [f(keras.ops, p) for _, f, *_ in MORE_OPS], name="more_ops"), names


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
