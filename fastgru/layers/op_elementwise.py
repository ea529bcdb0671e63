"""Keras 3's elementwise ops as a Functional graph records them (``x + y``, ``x * 2.0``, ``keras.ops.tanh(x)``,
``keras.ops.softmax(x, axis=-1)``, ...): each op's values as Keras's TensorFlow backend computes them, its
gradient (TensorFlow's, where a choice exists: ties of ``maximum`` go to the first operand, ``abs`` and
``relu`` have zero slope at 0) and its output shape. Used by :class:`fastgru.layers.keras_ops.KerasOp`.

An operand is an array (a tensor of the graph) or a Python number (a constant of the node, cast to the
tensors' dtype, as Keras casts it). Binary ops broadcast as NumPy does (axes aligned from the right).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------
def broadcast_shape(a: tuple, b: tuple, owner: str) -> tuple:
    """NumPy's broadcast of two shapes aligned from the right; None is a size known only at run time."""
    n = max(len(a), len(b))
    out = []
    for i, j in zip((1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)):
        if i == j:
            out.append(i)
        elif i == 1:
            out.append(j)
        elif j == 1:
            out.append(i)
        elif i is None or j is None:
            out.append(j if i is None else i)
        else:
            raise ValueError(f"{owner}: operands of shapes {a} and {b} cannot be broadcast together")
    return tuple(out)


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """``g`` summed down to ``shape`` (the inverse of NumPy broadcasting)."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# ---------------------------------------------------------------------------------------------
# binary ops: forward(a, b) and (da, db) from (a, b, y, dy); a and b arrays or numbers of one dtype
# ---------------------------------------------------------------------------------------------
def _power_grads(a, b, y, dy):
    da = dy * b * np.power(a, b - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = dy * y * np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)  # TensorFlow: zero where a <= 0
    return da, db


BINARY = {
    "Add": (np.add, lambda a, b, y, dy: (dy, dy)),
    "Subtract": (np.subtract, lambda a, b, y, dy: (dy, -dy)),
    "Multiply": (np.multiply, lambda a, b, y, dy: (dy * b, dy * a)),
    "TrueDivide": (np.true_divide, lambda a, b, y, dy: (dy / b, -dy * a / (b * b))),
    "Divide": (np.true_divide, lambda a, b, y, dy: (dy / b, -dy * a / (b * b))),
    # (TensorFlow selects: an infinite or NaN gradient reaches only the operand that won; a NaN operand loses
    # the comparison, so the other one takes the gradient)
    "Maximum": (np.maximum, lambda a, b, y, dy: (_select(a >= b, dy), _select(~(a >= b), dy))),
    "Minimum": (np.minimum, lambda a, b, y, dy: (_select(a <= b, dy), _select(~(a <= b), dy))),
    "Power": (np.power, _power_grads),
}


def _select(keep, dy):
    """``dy`` where ``keep``, else 0 (TensorFlow's select: an infinite or NaN dy elsewhere does not leak)."""
    return np.where(keep, dy, dy.dtype.type(0))


def _unless_zero(dy, grad):
    """``grad``, but 0 where ``dy`` is 0 (TensorFlow's sqrt, rsqrt and reciprocal gradients, so that an unused
    NaN or infinite slope stays out)."""
    return np.where(dy == 0, dy.dtype.type(0), grad)


def _no_gradient(a, b, y, dy):  # comparisons and logic: nothing flows back (TensorFlow's gradient is None)
    return None, None


# comparisons and logic give booleans, carried as 0.0 / 1.0 in the graph's dtype (every consumer takes a
# nonzero value for True, and Keras casts a boolean to 1.0 / 0.0 when it meets a float)
BINARY.update({op: (fn, _no_gradient) for op, fn in (
    ("Greater", np.greater), ("GreaterEqual", np.greater_equal), ("Less", np.less), ("LessEqual", np.less_equal),
    ("Equal", np.equal), ("NotEqual", np.not_equal), ("LogicalAnd", np.logical_and), ("LogicalOr", np.logical_or))})


def _where_grads(condition, a, b, y, dy):
    keep = condition != 0
    return None, np.where(keep, dy, 0), np.where(keep, 0, dy)


#: three operands (tensors or constants): forward(c, a, b) and (dc, da, db) from (c, a, b, y, dy)
TERNARY = {"Where": (lambda c, a, b: np.where(c != 0, a, b), _where_grads)}


# ---------------------------------------------------------------------------------------------
# unary ops: forward(x, config) and dx from (x, y, dy, config)
# ---------------------------------------------------------------------------------------------
def _gelu(x, c):
    if c["approximate"]:
        inner = x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x ** 3)
        return x.dtype.type(0.5) * x * (1 + np.tanh(inner))
    return x.dtype.type(0.5) * x * (1 + special.erf(x / x.dtype.type(math.sqrt(2.0))))


def _gelu_grad(x, y, dy, c):
    if c["approximate"]:
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
        t = np.tanh(inner)
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
    else:
        slope = 0.5 * (1 + special.erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return dy * slope.astype(x.dtype)


def _softmax(x, c):
    z = np.exp(x - x.max(axis=c["axis"], keepdims=True))
    return z / z.sum(axis=c["axis"], keepdims=True)


def _log_softmax(x, c):
    shifted = x - x.max(axis=c["axis"], keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=c["axis"], keepdims=True))


def _sigmoid_grad(x, y, dy, c):
    return dy * y * (1 - y)


def _silu_grad(x, y, dy, c):
    s = special.expit(x)
    return dy * (s * (1 + x * (1 - s)))


def _hard_sigmoid(x, c):
    return np.clip(x + x.dtype.type(3.0), 0, 6) / x.dtype.type(6.0)


#: casts to integers and booleans keep the graph's float dtype, with the values they take (integers truncate
#: toward zero, booleans are 1.0 / 0.0) and no gradient, as TensorFlow's
INTEGER_CASTS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"})


def _integer_values(x, dtype: str):
    """The values a cast of floats ``x`` to the integer ``dtype`` gives in TensorFlow (x86): truncated; a narrower
    type wraps around (300.2 -> uint8 44) through int32, whose out-of-range values (and NaN, inf) become -2**31;
    int64's, -2**63. As floats of x's dtype (a graph carries integers so)."""
    t = np.trunc(x)
    if dtype in ("int64", "uint64"):
        ok = (t >= -2.0 ** 63) & (t < 2.0 ** 63)
        return np.where(ok, t, -2.0 ** 63).astype(x.dtype)
    if dtype == "uint32":  # (through int64, as TensorFlow converts to it)
        ok = (t >= -2.0 ** 31) & (t < 2.0 ** 32)
        return np.where(ok, np.mod(np.where(ok, t, 0), 2.0 ** 32), 2.0 ** 31).astype(x.dtype)
    wide = np.where((t >= -2.0 ** 31) & (t < 2.0 ** 31), t, -2.0 ** 31).astype(np.int64)
    return wide.astype(np.int32).astype(dtype).astype(x.dtype)


def _cast(x, c):
    if c["dtype"] == "bool":
        return (x != 0).astype(x.dtype)
    if c["dtype"] in INTEGER_CASTS:
        return _integer_values(x, c["dtype"]) if x.dtype.kind == "f" else x.astype(c["dtype"]).astype(x.dtype)
    return x.astype(c["dtype"])


def _cast_grad(x, y, dy, c):  # (to integers or booleans: no gradient, as TensorFlow's Cast)
    return None if c["dtype"] in INTEGER_CASTS else dy.astype(x.dtype)


UNARY = {
    "Negative": (lambda x, c: -x, lambda x, y, dy, c: -dy),
    "Absolute": (lambda x, c: np.abs(x), lambda x, y, dy, c: dy * np.sign(x)),
    "Square": (lambda x, c: x * x, lambda x, y, dy, c: dy * 2 * x),
    "Sqrt": (lambda x, c: np.sqrt(x), lambda x, y, dy, c: _unless_zero(dy, dy * 0.5 / y)),
    "Rsqrt": (lambda x, c: 1 / np.sqrt(x), lambda x, y, dy, c: _unless_zero(dy, dy * -0.5 * y * y * y)),
    "Exp": (lambda x, c: np.exp(x), lambda x, y, dy, c: dy * y),
    "Log": (lambda x, c: np.log(x), lambda x, y, dy, c: dy / x),
    "Tanh": (lambda x, c: np.tanh(x), lambda x, y, dy, c: dy * (1 - y * y)),
    "Sigmoid": (lambda x, c: special.expit(x), _sigmoid_grad),
    "Relu": (lambda x, c: np.maximum(x, 0), lambda x, y, dy, c: dy * (x > 0)),
    "Gelu": (_gelu, _gelu_grad),
    "Silu": (lambda x, c: x * special.expit(x), _silu_grad),
    "Softplus": (lambda x, c: np.logaddexp(x.dtype.type(0), x), lambda x, y, dy, c: dy * special.expit(x)),
    "Elu": (lambda x, c: np.where(x > 0, x, x.dtype.type(c["alpha"]) * np.expm1(np.minimum(x, 0))),
            lambda x, y, dy, c: np.where(x > 0, dy, np.where(y < 0, dy * (y + x.dtype.type(c["alpha"])),
                                                            dy * x.dtype.type(c["alpha"])))),
    "LeakyRelu": (lambda x, c: np.where(x > 0, x, x.dtype.type(c["negative_slope"]) * x),
                  lambda x, y, dy, c: np.where(x > 0, dy, dy * x.dtype.type(c["negative_slope"]))),
    "HardSigmoid": (_hard_sigmoid, lambda x, y, dy, c: dy * ((x > -3) & (x < 3)) / x.dtype.type(6.0)),
    "Erf": (lambda x, c: special.erf(x), lambda x, y, dy, c: dy * (_TWO_OVER_SQRT_PI * np.exp(-x * x)).astype(x.dtype)),
    "Sign": (lambda x, c: np.sign(x), lambda x, y, dy, c: np.zeros_like(dy)),
    "Softmax": (_softmax, lambda x, y, dy, c: y * (dy - (dy * y).sum(axis=c["axis"], keepdims=True))),
    "LogSoftmax": (_log_softmax, lambda x, y, dy, c: dy - np.exp(y) * dy.sum(axis=c["axis"], keepdims=True)),
    "Clip": (lambda x, c: np.clip(x, x.dtype.type(c["x_min"]), x.dtype.type(c["x_max"])),
             lambda x, y, dy, c: _select((x >= c["x_min"]) & (x <= c["x_max"]), dy)),
    "Cast": (_cast, _cast_grad),
    "LogicalNot": (lambda x, c: np.logical_not(x), lambda x, y, dy, c: None),
}

# the other activations of keras.ops.nn and the math of keras.ops.numpy, each as TensorFlow computes it and its
# gradient (where TensorFlow's formula picks a side at a kink, the same side)
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _hard_silu_grad(x, y, dy, c):
    return dy * (_hard_sigmoid(x, c) + x * ((x > -3) & (x < 3)) / x.dtype.type(6.0))


def _selu(x, c):
    return _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def _celu(x, c):
    alpha = x.dtype.type(c["alpha"])
    return np.maximum(x, 0) + alpha * np.expm1(np.minimum(x, 0) / alpha)


def _sparse_plus(x, c):
    return np.where(x <= -1, 0, np.where(x < 1, (x + 1) ** 2 / x.dtype.type(4.0), x))


def _zero_grad(x, y, dy, c):
    """No gradient (floor, round, isnan, stop_gradient, ...: TensorFlow registers none): None, so nothing flows
    back — not a zero that an upstream op's NaN or infinite slope would turn into NaN."""
    return None


def _round(x, c):
    if c["decimals"] == 0:
        return np.round(x)  # (half to even, as TensorFlow)
    factor = x.dtype.type(10.0 ** c["decimals"])
    return np.round(x * factor) / factor


UNARY.update({
    "Relu6": (lambda x, c: np.clip(x, 0, 6), lambda x, y, dy, c: dy * ((x > 0) & (x < 6))),
    "Softsign": (lambda x, c: x / (1 + np.abs(x)), lambda x, y, dy, c: dy / (1 + np.abs(x)) ** 2),
    "Selu": (_selu, lambda x, y, dy, c: np.where(y < 0, dy * (y + _SELU_SCALE * _SELU_ALPHA), dy * _SELU_SCALE)),
    "LogSigmoid": (lambda x, c: -np.logaddexp(x.dtype.type(0), -x), lambda x, y, dy, c: dy * special.expit(-x)),
    "HardSilu": (lambda x, c: x * _hard_sigmoid(x, c), _hard_silu_grad),
    "HardTanh": (lambda x, c: np.clip(x, -1, 1), lambda x, y, dy, c: _select((x >= -1) & (x <= 1), dy)),
    "Celu": (_celu, lambda x, y, dy, c: _select(x >= 0, dy) + _select(x <= 0, dy * np.exp(np.minimum(x, 0) /
                                                                                              c["alpha"]))),
    "TanhShrink": (lambda x, c: x - np.tanh(x), lambda x, y, dy, c: dy * np.tanh(x) ** 2),
    "Squareplus": (lambda x, c: (x + np.sqrt(x * x + x.dtype.type(c["b"]))) / 2,
                   lambda x, y, dy, c: dy * (1 + x / np.sqrt(x * x + c["b"])) / 2),
    "SparsePlus": (_sparse_plus, lambda x, y, dy, c: dy * np.where(x <= -1, 0, np.where(x < 1, (x + 1) / 2, 1))),
    "SoftShrink": (lambda x, c: np.where(x > c["threshold"], x - x.dtype.type(c["threshold"]),
                                         np.where(x < -c["threshold"], x + x.dtype.type(c["threshold"]), 0)),
                   lambda x, y, dy, c: _select(np.abs(x) > c["threshold"], dy)),
    "HardShrink": (lambda x, c: np.where(np.abs(x) > c["threshold"], x, 0),
                   lambda x, y, dy, c: _select(np.abs(x) > c["threshold"], dy)),
    "Threshold": (lambda x, c: np.where(x > c["threshold"], x, x.dtype.type(c["default_value"])),
                  lambda x, y, dy, c: _select(x > c["threshold"], dy)),
    "Log1p": (lambda x, c: np.log1p(x), lambda x, y, dy, c: dy / (1 + x)),
    "Expm1": (lambda x, c: np.expm1(x), lambda x, y, dy, c: dy * (y + 1)),
    "Log2": (lambda x, c: np.log2(x), lambda x, y, dy, c: dy / (x * math.log(2.0))),
    "Log10": (lambda x, c: np.log10(x), lambda x, y, dy, c: dy / (x * math.log(10.0))),
    "Exp2": (lambda x, c: np.exp2(x), lambda x, y, dy, c: dy * y * math.log(2.0)),
    "Reciprocal": (lambda x, c: 1 / x, lambda x, y, dy, c: _unless_zero(dy, -dy * y * y)),
    "Sin": (lambda x, c: np.sin(x), lambda x, y, dy, c: dy * np.cos(x)),
    "Cos": (lambda x, c: np.cos(x), lambda x, y, dy, c: -dy * np.sin(x)),
    "Tan": (lambda x, c: np.tan(x), lambda x, y, dy, c: dy * (1 + y * y)),
    "Sinh": (lambda x, c: np.sinh(x), lambda x, y, dy, c: dy * np.cosh(x)),
    "Cosh": (lambda x, c: np.cosh(x), lambda x, y, dy, c: dy * np.sinh(x)),
    "Arctan": (lambda x, c: np.arctan(x), lambda x, y, dy, c: dy / (1 + x * x)),
    "Floor": (lambda x, c: np.floor(x), _zero_grad),
    "Ceil": (lambda x, c: np.ceil(x), _zero_grad),
    "Trunc": (lambda x, c: np.trunc(x), _zero_grad),
    "Round": (_round, _zero_grad),
    "OnesLike": (lambda x, c: np.ones_like(x), _zero_grad),
    "ZerosLike": (lambda x, c: np.zeros_like(x), _zero_grad),
})


def _logaddexp_base(scale):
    """Keras's TensorFlow logaddexp (``scale`` 1) or logaddexp2 (``scale`` log 2): max(a, b) +
    log1p(exp(-|a - b| scale)) / scale, or a + b where a - b is NaN (two infinities of one sign); the values
    and TensorFlow's gradients of that graph (a tie's gradient all to a, as TensorFlow's maximum gives it)."""
    def values(a, b):
        delta = a - b
        return np.where(np.isnan(delta), a + b, np.maximum(a, b) + np.log1p(np.exp(-np.abs(delta) * scale)) / scale)

    def grads(a, b, y, dy):
        delta = a - b
        summed = np.isnan(delta)
        rest = _select(~summed, dy)
        t = np.exp(-np.abs(delta) * scale)
        g_delta = rest * (-t / (1 + t)) * np.sign(delta)  # (NaN where a - b is: 0 times TensorFlow's NaN slope)
        first = a >= b
        return (_select(summed, dy) + _select(first, rest) + g_delta,
                _select(summed, dy) + _select(~first, rest) - g_delta)
    return values, grads


def _arctan2_grads(a, b, y, dy):
    r = a * a + b * b
    return dy * b / r, -dy * a / r


BINARY.update({
    "FloorDivide": (np.floor_divide, _no_gradient),
    "Mod": (np.mod, lambda a, b, y, dy: (dy, -dy * np.floor_divide(a, b))),
    "Logaddexp": _logaddexp_base(1.0),
    "Arctan2": (np.arctan2, _arctan2_grads),
    "FullLike": (lambda a, b: np.zeros_like(a) + b, _no_gradient),  # (ops.full_like(x, fill_value))
})

#: the ops whose config names an axis of their input (normalised and checked by the layer)
AXIS_OPS = {"Softmax", "LogSoftmax"}


# ---------------------------------------------------------------------------------------------
# the twenty-ninth session's ops: NaN handling, inverse trigonometry, more binary math
# ---------------------------------------------------------------------------------------------
def _nan_to_num(x, c):
    info = np.finfo(x.dtype)
    posinf = info.max if c["posinf"] is None else c["posinf"]
    neginf = info.min if c["neginf"] is None else c["neginf"]
    x = np.where(np.isnan(x), x.dtype.type(c["nan"]), x)
    return np.where(np.isinf(x), np.where(x > 0, x.dtype.type(posinf), x.dtype.type(neginf)), x).astype(x.dtype)


def _cbrt(x, c):  # (TensorFlow's formula: sign(x) |x|^(1/3), not the correctly rounded cube root)
    return np.sign(x) * np.power(np.abs(x), x.dtype.type(1.0 / 3.0))


def _cbrt_grad(x, y, dy, c):  # (NaN at 0, as TensorFlow's)
    return dy * np.sign(x) * np.sign(x) * (np.power(np.abs(x), x.dtype.type(-2.0 / 3.0)) / x.dtype.type(3.0))


def _sinc(x, c):
    px = x * x.dtype.type(math.pi)
    return np.where(x == 0, x.dtype.type(1.0), np.sin(px) / px)


def _sinc_grad(x, y, dy, c):  # (NaN at 0, as TensorFlow's gradient of its where)
    px = x * x.dtype.type(math.pi)
    return np.where(x == 0, 0, dy) * x.dtype.type(math.pi) * (np.cos(px) / px - np.sin(px) / (px * px))


def _degrees(factor):
    return lambda x, c: x * (x.dtype.type(factor[0]) / x.dtype.type(factor[1]))


def _degrees_grad(factor):
    return lambda x, y, dy, c: dy * (x.dtype.type(factor[0]) / x.dtype.type(factor[1]))


def _inverse_sqrt(x, sign, shift):
    return 1 / np.sqrt(sign * x * x + shift)


UNARY.update({
    "NanToNum": (_nan_to_num, lambda x, y, dy, c: _select(np.isfinite(x), dy)),
    "StopGradient": (lambda x, c: x.copy(), _zero_grad),
    "Isnan": (lambda x, c: np.isnan(x), _zero_grad),
    "Isinf": (lambda x, c: np.isinf(x), _zero_grad),
    "Isfinite": (lambda x, c: np.isfinite(x), _zero_grad),
    "Signbit": (lambda x, c: np.signbit(x), _zero_grad),
    "Fabs": UNARY["Absolute"],
    "Erfc": (lambda x, c: special.erfc(x),
             lambda x, y, dy, c: -dy * (_TWO_OVER_SQRT_PI * np.exp(-x * x)).astype(x.dtype)),
    "Erfinv": (lambda x, c: special.erfinv(x),
               lambda x, y, dy, c: dy * (math.sqrt(math.pi) / 2 * np.exp(y.astype(np.float64) ** 2)).astype(x.dtype)),
    "Arcsin": (lambda x, c: np.arcsin(x), lambda x, y, dy, c: dy * _inverse_sqrt(x, -1, 1)),
    "Arccos": (lambda x, c: np.arccos(x), lambda x, y, dy, c: -dy * _inverse_sqrt(x, -1, 1)),
    "Arcsinh": (lambda x, c: np.arcsinh(x), lambda x, y, dy, c: dy / np.cosh(y)),  # (TensorFlow's forms)
    "Arccosh": (lambda x, c: np.arccosh(x), lambda x, y, dy, c: dy / np.sinh(y)),
    "Arctanh": (lambda x, c: np.arctanh(x), lambda x, y, dy, c: dy / (1 - x * x)),
    "Cbrt": (_cbrt, _cbrt_grad),
    "Sinc": (_sinc, _sinc_grad),
    "Deg2rad": (_degrees((math.pi, 180.0)), _degrees_grad((math.pi, 180.0))),
    "Rad2deg": (_degrees((180.0, math.pi)), _degrees_grad((180.0, math.pi))),
})


def _fmod(a, b):  # (TensorFlow's: sign(a) * floormod(|a|, |b|))
    return np.sign(a) * np.mod(np.abs(a), np.abs(b))


def _fmod_grads(a, b, y, dy):
    return dy * np.sign(a) * np.sign(a), -dy * np.sign(a) * np.floor_divide(np.abs(a), np.abs(b)) * np.sign(b)


def _nan_extreme(first_wins):
    """The gradients of fmax / fmin: TensorFlow's maximum (minimum) gives a tie to the first operand, and a NaN
    operand's place goes to the other one."""
    def grads(a, b, y, dy):
        pick_a = first_wins(a, b) | (np.isnan(b) & ~np.isnan(a))
        return _select(pick_a, dy), _select(~pick_a, dy)
    return grads


def _hypot(a, b):  # (TensorFlow's formula, which does not overflow)
    big, small = np.maximum(np.abs(a), np.abs(b)), np.minimum(np.abs(a), np.abs(b))
    ratio = np.where(big == 0, 0, small / big)
    return big * np.sqrt(1 + ratio * ratio)


def _hypot_grads(a, b, y, dy):
    """TensorFlow's gradients of Keras's big * sqrt(1 + ratio^2) (big, small: the larger and smaller of |a|,
    |b|; ratio = small / big, 0 where big is 0): at a tie of |a| and |b| both go to a, as TensorFlow's maximum
    and minimum give them."""
    abs_a, abs_b = np.abs(a), np.abs(b)
    big, small = np.maximum(abs_a, abs_b), np.minimum(abs_a, abs_b)
    ratio = _divide_no_nan(small, big)
    root = np.sqrt(1 + ratio * ratio)
    g_ratio = dy * big * _unless_zero(dy * big, ratio / root)
    g_big = dy * root - _divide_no_nan(_divide_no_nan(g_ratio * small, big), big)
    g_small = _divide_no_nan(g_ratio, big)
    to_a_big, to_a_small = abs_a >= abs_b, abs_a <= abs_b
    g_abs_a = _select(to_a_big, g_big) + _select(to_a_small, g_small)
    g_abs_b = _select(~to_a_big, g_big) + _select(~to_a_small, g_small)
    return g_abs_a * np.sign(a), g_abs_b * np.sign(b)


def _divide_no_nan(a, b):
    return np.where(b == 0, 0, np.true_divide(a, b))


def _divide_no_nan_grads(a, b, y, dy):
    return _divide_no_nan(dy, b), -dy * _divide_no_nan(_divide_no_nan(a, b), b)


BINARY.update({
    "Heaviside": (lambda a, b: np.where(a < 0, 0, np.where(a > 0, 1, b)),
                  lambda a, b, y, dy: (None, _select(~(np.asarray(a) < 0) & ~(np.asarray(a) > 0), dy))),  # (NaN: b)
    "Fmod": (_fmod, _fmod_grads),
    "Fmax": (np.fmax, _nan_extreme(np.greater_equal)),
    "Fmin": (np.fmin, _nan_extreme(np.less_equal)),
    "Hypot": (_hypot, _hypot_grads),
    "Logaddexp2": _logaddexp_base(math.log(2.0)),
    "DivideNoNan": (_divide_no_nan, _divide_no_nan_grads),
    "LogicalXor": (lambda a, b: np.logical_xor(a != 0, b != 0), _no_gradient),
})
