"""Activation functions by name: NumPy versions (for Dense) and the integer codes the kernels use.

Names follow Keras 3. ``hard_sigmoid`` is Keras 3's ``clip(x/6 + 0.5, 0, 1)``; Keras 2's
``clip(0.2x + 0.5, 0, 1)`` is available under the name ``hard_sigmoid_keras2`` (files written by
Keras 2 are mapped onto it when loaded).
"""

from __future__ import annotations

import numpy as np

from ._kernels import activations as _k
from .errors import UnsupportedKerasFeature

ALIASES = {"silu": "swish", None: "linear", "None": "linear"}


def _erf(x):
    """scipy.special.erf, imported on first use (scipy.special costs ~0.2 s at import; only gelu needs it)."""
    from scipy.special import erf

    return erf(x)

CODES = {
    "linear": _k.LINEAR,
    "tanh": _k.TANH,
    "sigmoid": _k.SIGMOID,
    "hard_sigmoid": _k.HARD_SIGMOID,
    "hard_sigmoid_keras2": _k.HARD_SIGMOID_KERAS2,
    "relu": _k.RELU,
    "softsign": _k.SOFTSIGN,
    "elu": _k.ELU,
    "selu": _k.SELU,
    "softplus": _k.SOFTPLUS,
    "swish": _k.SWISH,
    "gelu": _k.GELU,
}

#: every name Dense accepts (the recurrent layers accept all but softmax)
SUPPORTED = tuple(sorted(CODES)) + ("softmax",)


def canonical_name(name) -> str:
    """Return the canonical activation name for ``name`` (str, None, or a Keras-style dict)."""
    if isinstance(name, dict):  # Keras serialises some activations as {"class_name": ..., "config": ...}
        config = name.get("config")
        name = config.get("name", name.get("class_name")) if isinstance(config, dict) else name.get("class_name")
    if callable(name) and hasattr(name, "__name__"):
        name = name.__name__
    if name is not None and not isinstance(name, str):
        raise UnsupportedKerasFeature(f"activation {name!r:.80} is not supported: expected an activation name")
    name = ALIASES.get(name, name)
    if name not in CODES and name != "softmax":
        raise UnsupportedKerasFeature(
            f"activation {name!r} is not supported; supported activations: {', '.join(SUPPORTED)}"
        )
    return name


def kernel_code(name) -> int:
    """Integer code of a recurrent activation (softmax is not allowed inside a recurrent cell)."""
    name = canonical_name(name)
    if name == "softmax":
        raise UnsupportedKerasFeature("activation 'softmax' is not supported inside a recurrent cell")
    return CODES[name]


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """Return ``act(x)`` as a new array of x's dtype."""
    name = canonical_name(name)
    dt = x.dtype
    if name == "linear":
        return x
    if name == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return _sigmoid(x)
    if name == "hard_sigmoid":
        return np.clip(x / dt.type(6.0) + dt.type(0.5), 0, 1)
    if name == "hard_sigmoid_keras2":
        return np.clip(dt.type(0.2) * x + dt.type(0.5), 0, 1)
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softsign":
        return x / (1 + np.abs(x))
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    if name == "selu":
        s, a = dt.type(_k.SELU_SCALE), dt.type(_k.SELU_ALPHA)
        return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
    if name == "softplus":
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    if name == "swish":
        return x * _sigmoid(x)
    if name == "gelu":
        return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(dt, copy=False)
    raise AssertionError(name)  # canonical_name already rejected anything else


def gradient(name: str, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Backpropagate ``dy`` through ``y = act(x)``: return ``dL/dx`` (same shape as x)."""
    name = canonical_name(name)
    dt = x.dtype
    if name == "linear":
        return dy
    if name == "softmax":
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    if name == "tanh":
        return dy * (1 - y * y)
    if name == "sigmoid":
        return dy * y * (1 - y)
    if name == "hard_sigmoid":
        return dy * np.where((x > -3) & (x < 3), dt.type(1 / 6), dt.type(0))
    if name == "hard_sigmoid_keras2":
        return dy * np.where((x > -2.5) & (x < 2.5), dt.type(0.2), dt.type(0))
    if name == "relu":
        return dy * (x > 0)
    if name == "softsign":
        return dy / (1 + np.abs(x)) ** 2
    if name == "elu":
        return dy * np.where(x > 0, 1, y + 1)
    if name == "selu":
        s, a = dt.type(_k.SELU_SCALE), dt.type(_k.SELU_ALPHA)
        return dy * np.where(x > 0, s, y + s * a)
    if name == "softplus":
        return dy * _sigmoid(x)
    if name == "swish":
        sg = _sigmoid(x)
        return dy * (sg * (1 + x * (1 - sg)))
    if name == "gelu":
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        cdf = 0.5 * (1 + _erf(x / np.sqrt(2)))
        return (dy * (cdf + x * pdf)).astype(dt, copy=False)
    raise AssertionError(name)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # split by sign so that exp never overflows
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out
