"""Keras 3's slicing and stacking ops as a Functional graph records them (``ops.slice``, ``ops.unstack``,
``ops.hstack``) and its normalization ops (``ops.layer_normalization``,
``ops.rms_normalization``): for each, ``normalize(config, shapes, owner)``, the output shape (a list for
``unstack``'s several outputs), the values and the gradients, as ``op_shapes.SHAPE_OPS``. The batch axis is
never sliced or unstacked. Arguments Keras records beside the tensor (``slice``'s start indices,
the normalizations' gamma, beta and scale) reach ``normalize`` in the config (:data:`PARAMETERS`), as
constant arrays or None. Used by :class:`fastgru.layers.keras_ops.KerasOp`.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from .op_axis import _EPSILON, _int, _one_axis
from .op_shapes import _axes, _bool, _concat_grad, _concat_normalize, _concat_shape

#: per op, the names of the arguments after its tensor that Keras records in the node (positional, or keyword
#: where Keras passes them so), moved into the config
PARAMETERS = {"Slice": ("start_indices",), "LayerNorm": ("gamma", "beta"), "RMSNorm": ("scale",)}


def _integers(value, what, owner) -> list:
    values = np.asarray(value, dtype=float).ravel() if value is not None else np.array([np.nan])
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise ValueError(f"{owner}: {what} must be integers, found {value!r}")
    return [int(v) for v in values]


# ---- slice: a static box of every sample -------------------------------------------------------------
def _slice_normalize(c, shapes, owner):
    shape, rank = shapes[0], len(shapes[0])
    start = _integers(c.get("start_indices"), "start_indices", owner)
    size = _integers(c.get("shape"), "shape", owner)
    if len(start) != rank or len(size) != rank:
        raise ValueError(f"{owner}: start_indices {start} and shape {size} must have one entry per axis of the "
                         f"rank-{rank} input")
    if start[0] != 0 or size[0] != -1:
        raise UnsupportedKerasFeature(f"{owner}: the slice cuts the batch axis (start {start[0]}, size {size[0]}); "
                                      "fastgru takes every sample (start 0, size -1)")
    for axis, (s, n, d) in enumerate(zip(start, size, shape)):
        if s < 0 or n < -1 or (d is not None and (s > d or (n >= 0 and s + n > d))):
            raise ValueError(f"{owner}: axis {axis} of size {d} cannot be sliced from {s} for {n}")
    return {"start": tuple(start), "size": tuple(size)}


def _slice_shape(shapes, c):
    return tuple(n if n >= 0 else (None if d is None else d - s)
                 for s, n, d in zip(c["start"], c["size"], shapes[0]))


def _slice_index(x, c):
    for axis, (s, n, d) in enumerate(zip(c["start"], c["size"], x.shape)):
        if s > d or (n >= 0 and s + n > d):
            raise ValueError(f"slice: axis {axis} of size {d} cannot be sliced from {s} for {n}")
    return tuple(slice(s, None if n < 0 else s + n) for s, n in zip(c["start"], c["size"]))


def _slice_grad(xs, y, dy, c):
    dx = np.zeros_like(xs[0])
    dx[_slice_index(xs[0], c)] = dy
    return [dx]


# ---- unstack: one output per position along an axis --------------------------------------------------
def _unstack_normalize(c, shapes, owner):
    axis = _one_axis({"axis": c.get("axis", 0)}, shapes, owner)
    size = shapes[0][axis]
    num = c.get("num")
    if num is not None:
        num = _int(num, "num", owner, 1)
    if size is None and num is None:
        raise ValueError(f"{owner}: axis {axis} has no fixed size, and no num is given")
    if size is not None and num is not None and num != size:
        raise ValueError(f"{owner}: num={num} for an axis of size {size}")
    return {"axis": axis, "num": size if size is not None else num}


def _unstack_values(xs, c):
    if xs[0].shape[c["axis"]] != c["num"]:
        raise ValueError(f"unstack: axis {c['axis']} holds {xs[0].shape[c['axis']]} entries, {c['num']} expected")
    return [np.ascontiguousarray(np.take(xs[0], i, axis=c["axis"])) for i in range(c["num"])]


def _unstack_grad(xs, y, dys, c):
    return [np.stack([np.zeros_like(p) if d is None else d for p, d in zip(y, dys)], axis=c["axis"])]


# ---- layer_normalization and rms_normalization (keras.ops.nn), gamma/beta/scale constants or None --------
def _norm_normalize(c, shapes, owner, rms=False):
    rank = len(shapes[0])
    axis = _axes(c.get("axis", -1), rank, owner)
    epsilon = _EPSILON if c.get("epsilon") is None else c["epsilon"]
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(f"{owner}: epsilon must be a non-negative number, found {epsilon!r}")
    params = {}
    for name in ("scale",) if rms else ("gamma", "beta"):
        value = c.get(name)
        if value is not None:
            value = np.asarray(value)
            if value.ndim != rank and axis != (rank - 1,):  # (Keras reshapes it onto the normalised axes)
                kept = [shapes[0][i] for i in axis]
                fits = None in kept or value.size == int(np.prod(kept))
            else:
                fits = value.ndim <= rank and (value.ndim < rank or value.shape[0] == 1) and all(
                    v == 1 or d is None or v == d for v, d in zip(value.shape[::-1], shapes[0][::-1]))
            if not fits:
                raise ValueError(f"{owner}: {name} of shape {value.shape} does not fit axes {axis} of {shapes[0]}")
        params[name] = value
    out = {"axis": axis, "epsilon": float(epsilon), **params}
    if not rms:
        out["rms_scaling"] = _bool(c.get("rms_scaling", False), "rms_scaling", owner)
    return out


def _param(value, x, c):
    """A gamma/beta/scale constant shaped to broadcast against ``x`` (Keras's reshape onto the normalised axes)."""
    if value is None:
        return None
    value = value.astype(x.dtype)
    if value.ndim != x.ndim and not (len(c["axis"]) == 1 and c["axis"][0] == x.ndim - 1):
        value = value.reshape(tuple(x.shape[i] if i in c["axis"] else 1 for i in range(x.ndim)))
    return value


def _layer_norm(xs, c):
    x, eps = xs[0], xs[0].dtype.type(c["epsilon"])
    gamma, beta = _param(c["gamma"], x, c), _param(c["beta"], x, c)
    variance = x.var(axis=c["axis"], keepdims=True)
    inv = 1 / np.sqrt(variance + eps)
    if c["rms_scaling"]:  # (Keras's: the variance, not the mean square, and no beta)
        y = x * inv
        return y if gamma is None else y * gamma
    if gamma is not None:
        inv = inv * gamma
    y = x * inv - x.mean(axis=c["axis"], keepdims=True) * inv
    return y if beta is None else y + beta


def _layer_norm_grad(xs, y, dy, c):
    x = xs[0]
    gamma = _param(c["gamma"], x, c)
    g = dy if gamma is None else dy * gamma
    n = np.prod([x.shape[i] for i in c["axis"]])
    centred = x - x.mean(axis=c["axis"], keepdims=True)
    inv = 1 / np.sqrt(x.var(axis=c["axis"], keepdims=True) + x.dtype.type(c["epsilon"]))
    normed = centred * inv
    dx = inv * (g - (normed * g).sum(axis=c["axis"], keepdims=True) * normed / n)
    if c["rms_scaling"]:  # (x * inv: x itself, not centred, multiplies inv's derivative)
        return [inv * g - centred * inv ** 3 * (x * g).sum(axis=c["axis"], keepdims=True) / n]
    return [dx - inv * g.sum(axis=c["axis"], keepdims=True) / n]


def _rms_norm(xs, c):
    x = xs[0]
    y = x / np.sqrt((x * x).mean(axis=c["axis"], keepdims=True) + x.dtype.type(c["epsilon"]))
    scale = _param(c["scale"], x, c)
    return y if scale is None else y * scale


def _rms_norm_grad(xs, y, dy, c):
    x = xs[0]
    scale = _param(c["scale"], x, c)
    g = dy if scale is None else dy * scale
    n = np.prod([x.shape[i] for i in c["axis"]])
    inv = 1 / np.sqrt((x * x).mean(axis=c["axis"], keepdims=True) + x.dtype.type(c["epsilon"]))
    return [inv * g - x * inv ** 3 * (x * g).sum(axis=c["axis"], keepdims=True) / n]


SLICE_OPS = {
    "Slice": (_slice_normalize, _slice_shape, lambda xs, c: xs[0][_slice_index(xs[0], c)].copy(), _slice_grad),
    "Unstack": (_unstack_normalize, lambda s, c: [tuple(d for i, d in enumerate(s[0]) if i != c["axis"])] * c["num"],
                _unstack_values, _unstack_grad),
    "Hstack": (lambda c, s, o: _concat_normalize({"axis": 1}, s, o), _concat_shape,
               lambda xs, c: np.concatenate(xs, axis=1), _concat_grad),
    "LayerNorm": (_norm_normalize, lambda s, c: tuple(s[0]), _layer_norm, _layer_norm_grad),
    "RMSNorm": (lambda c, s, o: _norm_normalize(c, s, o, rms=True), lambda s, c: tuple(s[0]), _rms_norm,
                _rms_norm_grad),
}
