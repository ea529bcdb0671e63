"""Keras 3's reductions and shape ops as a Functional graph records them (``keras.ops.mean(x, axis=1)``,
``ops.concatenate``, ``ops.reshape``, ``ops.transpose``, ...; the products are in ``op_products.py``):
for each, ``normalize`` (the node's config checked against its operands' ranks: axes made non-negative,
the batch axis refused, since fastgru keeps every sample's computation apart), the output shape, the
values and the gradients (TensorFlow's: a maximum's gradient is shared among ties). Used by
:class:`fastgru.layers.keras_ops.KerasOp`; the configs it passes are already normalised.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager

import numpy as np

from ..errors import UnsupportedKerasFeature


def _axes(value, rank: int, owner: str, allow_none: bool = False) -> tuple | None:
    """``value`` (an int or a list of ints) as sorted non-negative axes of a rank-``rank`` tensor, none the
    batch axis."""
    if value is None and allow_none:
        return None
    if value is None:
        raise UnsupportedKerasFeature(f"{owner}: axis=None takes every axis, the batch axis included; fastgru "
                                      "computes each sample on its own (give the other axes)")
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(a, int) and not isinstance(a, bool) for a in items):
        raise ValueError(f"{owner}: axis must be an integer or a list of integers, found {value!r}")
    out = []
    for a in items:
        if not -rank <= a < rank:
            raise ValueError(f"{owner}: axis {a} is out of range for a tensor of rank {rank}")
        out.append(a % rank)
    if 0 in out:
        raise UnsupportedKerasFeature(f"{owner}: axis {value!r} includes the batch axis; fastgru computes each sample "
                                      "on its own (reduce, reorder or join the other axes)")
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}: repeated axis in {value!r}")
    return tuple(sorted(out))


_whole_batch = threading.local()


@contextmanager
def whole_batch():
    """Within the block, a reduction may take the batch axis (``ops.mean(x)``): the graph a custom loss function is
    traced into, which runs on a whole batch at once (``training/function_loss.py``), never chunked by samples."""
    before = getattr(_whole_batch, "on", False)
    _whole_batch.on = True
    try:
        yield
    finally:
        _whole_batch.on = before


def in_whole_batch() -> bool:
    """Whether a :func:`whole_batch` graph is being traced or run (tensors of several ranks may broadcast there)."""
    return getattr(_whole_batch, "on", False)


def _reduce_axes(value, rank: int, owner: str) -> tuple:
    """A reduction's axes: :func:`_axes`, or within :func:`whole_batch` any axes (None: every one)."""
    if not getattr(_whole_batch, "on", False):
        return _axes(value, rank, owner)
    if value is None:
        return tuple(range(rank))
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(a, int) and not isinstance(a, bool) and -rank <= a < rank for a in items):
        raise ValueError(f"{owner}: axis {value!r} is out of range for a tensor of rank {rank}")
    return tuple(sorted({a % rank for a in items}))


def _bool(value, what: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {what} must be true or false, found {value!r}")
    return value


def _known_product(dims) -> int | None:
    return None if any(d is None for d in dims) else math.prod(dims)


# ---------------------------------------------------------------------------------------------
# reductions (one operand): axis (int or list, never the batch axis), keepdims
# ---------------------------------------------------------------------------------------------
def _reduce_normalize(c, shapes, owner):
    rank = len(shapes[0])
    out = {"axis": _reduce_axes(c.get("axis"), rank, owner),
           "keepdims": _bool(c.get("keepdims", False), "keepdims", owner)}
    if c.get("initial") is not None:
        raise UnsupportedKerasFeature(f"{owner}: initial={c['initial']!r} is not supported (only None)")
    if c.get("dtype") not in (None, "float16", "bfloat16", "float32", "float64"):
        raise UnsupportedKerasFeature(f"{owner}: dtype {c['dtype']!r} (fastgru reduces in the input's float dtype)")
    weights = c.get("weights")
    if weights is not None:  # (ops.average's: Keras's tensordot of x and a vector along the one axis)
        weights = np.asarray(weights)
        if weights.ndim != 1 or len(out["axis"]) != 1 or shapes[0][out["axis"][0]] not in (None, weights.size):
            raise ValueError(f"{owner}: weights of shape {weights.shape} must be a vector as long as the one axis "
                             f"averaged (axis {c.get('axis')!r} of {tuple(shapes[0])})")
        out["weights"] = weights
    order = c.get("ord")
    if order not in (None, 2, "euclidean") and not (order in (1, np.inf, -np.inf) and len(out["axis"]) == 1):
        raise UnsupportedKerasFeature(f"{owner}: the Euclidean norm (ord=None) is supported, and a vector norm of "
                                      f"ord 1, inf or -inf along one axis; found ord={order!r}")
    if order in (1, np.inf, -np.inf):
        out["ord"] = order
    return out


def _reduce_shape(shapes, c):
    shape = shapes[0]
    if c["keepdims"]:
        return tuple(1 if i in c["axis"] else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in c["axis"])


def _kept(a, c):
    """A reduction's output (or gradient) with the reduced axes kept (size 1)."""
    return a if c["keepdims"] else np.expand_dims(a, c["axis"])


def _count(x, c) -> int:
    return math.prod(x.shape[i] for i in c["axis"])


def _extreme_grad(xs, y, dy, c):
    x = xs[0]
    hits = x == _kept(y, c)
    return [hits * (_kept(dy, c) / hits.sum(axis=c["axis"], keepdims=True))]


def _norm(xs, c):
    """The Euclidean norm, or the vector norm of ``ord`` 1 (the absolute values' sum), inf or -inf (their largest or
    smallest) along one axis."""
    order, a = c.get("ord"), xs[0]
    if order is None:
        return np.sqrt((a * a).sum(axis=c["axis"], keepdims=c["keepdims"]))
    pick = np.sum if order == 1 else np.max if order > 0 else np.min
    return pick(np.abs(a), axis=c["axis"], keepdims=c["keepdims"])


def _norm_grad(xs, y, dy, c):
    order, x = c.get("ord"), xs[0]
    if order is None:
        return [np.where(_kept(dy, c) == 0, 0, _kept(dy, c) * x / _kept(y, c))]
    if order == 1:
        return [np.broadcast_to(_kept(dy, c), x.shape) * np.sign(x)]
    return [_extreme_grad([np.abs(x)], y, dy, c)[0] * np.sign(x)]  # (ties share it, as TensorFlow's max)


def _logsumexp(xs, c):
    x = xs[0]
    top = x.max(axis=c["axis"], keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    out = np.log(np.exp(x - top).sum(axis=c["axis"], keepdims=True)) + top
    return out if c["keepdims"] else np.squeeze(out, c["axis"])


def _var_grad(xs, y, dy, c, std=False):
    x = xs[0]
    centred = x - x.mean(axis=c["axis"], keepdims=True)
    n = _count(x, c)
    return [_kept(dy, c) * centred / (n * _kept(y, c)) if std else _kept(dy, c) * 2 * centred / n]


def _along(w, x, c):
    """A weights vector shaped to broadcast along the averaged axis of ``x``."""
    return w.astype(x.dtype).reshape(tuple(-1 if i == c["axis"][0] else 1 for i in range(x.ndim)))


def _average(xs, c):
    x, w = xs[0], c.get("weights")
    if w is None:
        return x.mean(axis=c["axis"])
    if x.shape[c["axis"][0]] != w.size:
        raise ValueError(f"average: weights of {w.size} for an axis of {x.shape[c['axis'][0]]}")
    return np.tensordot(x, w.astype(x.dtype), axes=([c["axis"][0]], [0])) / x.dtype.type(w.sum())


def _average_grad(xs, y, dy, c):
    x, w = xs[0], c.get("weights")
    share = 1 / x.dtype.type(_count(x, c)) if w is None else _along(w, x, c) / x.dtype.type(w.sum())
    return [np.broadcast_to(_kept(dy, c) * share, x.shape).copy()]


REDUCTIONS = {
    "Sum": (lambda xs, c: xs[0].sum(axis=c["axis"], keepdims=c["keepdims"]),
            lambda xs, y, dy, c: [np.broadcast_to(_kept(dy, c), xs[0].shape).copy()]),
    "Mean": (lambda xs, c: xs[0].mean(axis=c["axis"], keepdims=c["keepdims"]),
             lambda xs, y, dy, c: [np.broadcast_to(_kept(dy, c) / _count(xs[0], c), xs[0].shape).copy()]),
    "Average": (_average, _average_grad),
    "Max": (lambda xs, c: xs[0].max(axis=c["axis"], keepdims=c["keepdims"]), _extreme_grad),
    "Min": (lambda xs, c: xs[0].min(axis=c["axis"], keepdims=c["keepdims"]), _extreme_grad),
    "Var": (lambda xs, c: xs[0].var(axis=c["axis"], keepdims=c["keepdims"]), _var_grad),
    "Std": (lambda xs, c: xs[0].std(axis=c["axis"], keepdims=c["keepdims"]),
            lambda xs, y, dy, c: _var_grad(xs, y, dy, c, std=True)),
    "Logsumexp": (_logsumexp, lambda xs, y, dy, c: [_kept(dy, c) * np.exp(xs[0] - _kept(y, c))]),
    "Norm": (_norm, _norm_grad),
    "CountNonzero": (lambda xs, c: (xs[0] != 0).sum(axis=c["axis"], keepdims=c["keepdims"]).astype(xs[0].dtype),
                     lambda xs, y, dy, c: [None]),  # (an integer count, as a float: no gradient)
    # (booleans as 0.0 / 1.0, no gradient)
    "Any": (lambda xs, c: (xs[0] != 0).any(axis=c["axis"], keepdims=c["keepdims"]), lambda xs, y, dy, c: [None]),
    "All": (lambda xs, c: (xs[0] != 0).all(axis=c["axis"], keepdims=c["keepdims"]), lambda xs, y, dy, c: [None]),
}
REDUCTIONS.update(Amax=REDUCTIONS["Max"], Amin=REDUCTIONS["Min"])  # (ops.amax, ops.amin: Max and Min, no initial)


def _prod_grad(xs, y, dy, c):
    """The product of the other elements of each reduced group (exclusive products from both ends: right where
    the group holds zeros, as TensorFlow's), times dy."""
    x = xs[0]
    kept = [i for i in range(x.ndim) if i not in c["axis"]]
    moved = np.transpose(x, kept + list(c["axis"]))
    flat = moved.reshape(moved.shape[:len(kept)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), x.dtype)
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1, dtype=x.dtype)
    after = np.flip(np.cumprod(np.concatenate([ones, np.flip(flat, -1)[..., :-1]], axis=-1), axis=-1,
                               dtype=x.dtype), -1)
    others = np.transpose((before * after).reshape(moved.shape), np.argsort(kept + list(c["axis"])))
    return [others * _kept(dy, c)]


REDUCTIONS["Prod"] = (lambda xs, c: xs[0].prod(axis=c["axis"], keepdims=c["keepdims"]), _prod_grad)


# ---------------------------------------------------------------------------------------------
# shape ops
# ---------------------------------------------------------------------------------------------
def _concat_normalize(c, shapes, owner):
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise ValueError(f"{owner}: the tensors have different ranks {[len(s) for s in shapes]}")
    stack = c.get("_stack", False)
    (axis,) = _axes(c.get("axis", 0), ranks.pop() + stack, owner)
    for s in shapes[1:]:
        for i, (a, b) in enumerate(zip(shapes[0], s)):
            if i and (stack or i != axis) and a is not None and b is not None and a != b:
                raise ValueError(f"{owner}: shapes {shapes[0]} and {s} do not match off axis {axis}")
    return {"axis": axis, "_stack": stack}


def _concat_shape(shapes, c):
    axis = c["axis"]
    if c["_stack"]:
        return tuple(shapes[0][:axis]) + (len(shapes),) + tuple(shapes[0][axis:])
    sizes = [s[axis] for s in shapes]
    return tuple(shapes[0][:axis]) + (None if None in sizes else sum(sizes),) + tuple(shapes[0][axis + 1:])


def _concat_grad(xs, y, dy, c):
    if c["_stack"]:
        return [np.take(dy, i, axis=c["axis"]) for i in range(len(xs))]
    cuts = np.cumsum([x.shape[c["axis"]] for x in xs])[:-1]
    return [np.ascontiguousarray(p) for p in np.split(dy, cuts, axis=c["axis"])]


def _expand_normalize(c, shapes, owner):
    value = c.get("axis")
    n = len(value) if isinstance(value, (list, tuple)) else 1
    return {"axis": _axes(value, len(shapes[0]) + n, owner)}


def _squeeze_normalize(c, shapes, owner):
    shape = shapes[0]
    if c.get("axis") is None:
        axes = tuple(i for i, d in enumerate(shape) if i and d == 1)
    else:
        axes = _axes(c["axis"], len(shape), owner)
        wrong = [i for i in axes if shape[i] not in (1, None)]
        if wrong:
            raise ValueError(f"{owner}: cannot squeeze axis {wrong[0]} of size {shape[wrong[0]]}")
    return {"axis": axes}


def _reshape_normalize(c, shapes, owner):
    new = c.get("newshape")
    if not isinstance(new, (list, tuple)) or not new:
        raise ValueError(f"{owner}: newshape must be a list of sizes, found {new!r}")
    if new[0] not in (-1, None) and (shapes[0][0] is None or new[0] != shapes[0][0]):
        raise UnsupportedKerasFeature(f"{owner}: newshape must start with -1 (the batch axis, kept whole), found "
                                      f"{new!r}")
    rest = list(new[1:])
    size = _known_product(shapes[0][1:])
    if rest.count(-1) == 1 and size is not None:  # ((batch, -1): the one size left to find, as NumPy finds it)
        known = math.prod(d for d in rest if d != -1)
        if isinstance(known, int) and known > 0 and size % known == 0:
            rest[rest.index(-1)] = size // known
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in rest):
        raise ValueError(f"{owner}: newshape's sizes after the batch axis must be positive integers, found {new!r}")
    if size is not None and size != math.prod(rest):
        raise ValueError(f"{owner}: cannot reshape a tensor of shape {shapes[0]} to {tuple(new)}")
    return {"newshape": tuple(rest)}


def _transpose_normalize(c, shapes, owner):
    rank, axes = len(shapes[0]), c.get("axes")
    if axes is None:  # (numpy's default: every axis reversed, the batch axis moved last)
        raise UnsupportedKerasFeature(f"{owner}: axes=None reverses every axis and moves the batch axis; fastgru "
                                      "keeps it first (give axes, e.g. (0, 2, 1))")
    if not isinstance(axes, (list, tuple)) or sorted(a % rank if isinstance(a, int) and -rank <= a < rank else -1
                                                     for a in axes) != list(range(rank)):
        raise ValueError(f"{owner}: axes must be a permutation of the {rank} axes, found {axes!r}")
    perm = tuple(a % rank for a in axes)
    if perm[0] != 0:
        raise UnsupportedKerasFeature(f"{owner}: axes {axes!r} move the batch axis; fastgru keeps it first")
    return {"axes": perm}


def _pair_normalize(first: str, second: str):
    def normalize(c, shapes, owner):
        rank = len(shapes[0])
        a, b = c.get(first), c.get(second)
        if isinstance(a, (list, tuple)) != isinstance(b, (list, tuple)) or (
                isinstance(a, (list, tuple)) and len(a) != len(b)):
            raise ValueError(f"{owner}: {first} {a!r} and {second} {b!r} do not pair up")
        pa, pb = (list(v) if isinstance(v, (list, tuple)) else [v] for v in (a, b))
        unordered = [_axes([v], rank, owner)[0] for v in pa], [_axes([v], rank, owner)[0] for v in pb]
        return {first: tuple(unordered[0]), second: tuple(unordered[1])}
    return normalize


def _moved_shape(shapes, c):
    return np.moveaxis(np.broadcast_to(np.empty((), np.int8), _probe(shapes[0])), c["source"],
                       c["destination"]).shape


def _probe(shape):
    return tuple(1_000_003 if d is None else d for d in shape)


def _unprobe(shape):
    return tuple(None if d >= 1_000_003 else d for d in shape)


def _pad_normalize(c, shapes, owner):
    rank, width = len(shapes[0]), c.get("pad_width")
    ok = isinstance(width, (list, tuple)) and len(width) == rank and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                             for v in p) for p in width)
    if not ok:
        raise ValueError(f"{owner}: pad_width must give (before, after) for each of the {rank} axes, found {width!r}")
    if list(width[0]) != [0, 0]:
        raise UnsupportedKerasFeature(f"{owner}: pad_width {width!r} pads the batch axis; fastgru keeps it whole")
    mode = c.get("mode", "constant")
    if mode not in ("constant", "reflect", "symmetric"):  # (TensorFlow's: its MirrorPad, NumPy's modes of that name)
        raise UnsupportedKerasFeature(f"{owner}: mode {mode!r} (Keras's TensorFlow backend pads with 'constant', "
                                      "'reflect' or 'symmetric')")
    value = c.get("constant_values")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or mode != "constant"):
        raise ValueError(f"{owner}: constant_values must be a number, with mode 'constant', found {value!r}")
    for (before, after), n in zip(width, shapes[0]):
        if mode != "constant" and n is not None and max(before, after) > n - (mode == "reflect"):
            raise ValueError(f"{owner}: {mode} padding of ({before}, {after}) is more than an axis of {n} allows")
    if mode != "constant":
        return {"pad_width": tuple(tuple(p) for p in width), "mode": mode}
    return {"pad_width": tuple(tuple(p) for p in width), "constant_values": 0 if value is None else value}


def _pad(xs, c):
    if c.get("mode") is not None:
        return np.pad(xs[0], c["pad_width"], mode=c["mode"])
    return np.pad(xs[0], c["pad_width"], constant_values=c["constant_values"])


def _pad_grad(xs, y, dy, c):
    if c.get("mode") is None:
        return [dy[tuple(slice(b, b + n) for (b, _), n in zip(c["pad_width"], xs[0].shape))].copy()]
    for axis, ((before, after), n) in enumerate(zip(c["pad_width"], xs[0].shape)):  # (mirrored entries summed back)
        if before or after:
            back = np.zeros(dy.shape[:axis] + (n,) + dy.shape[axis + 1:], dy.dtype)
            sources = np.pad(np.arange(n), (before, after), mode=c["mode"])
            np.add.at(np.moveaxis(back, axis, 0), sources, np.moveaxis(dy, axis, 0))
            dy = back
    return [dy]


SHAPE_OPS = {
    "Concatenate": (_concat_normalize, _concat_shape, lambda xs, c: np.concatenate(xs, axis=c["axis"]), _concat_grad),
    "Stack": (lambda c, s, o: _concat_normalize({**c, "_stack": True}, s, o), _concat_shape,
              lambda xs, c: np.stack(xs, axis=c["axis"]), _concat_grad),
    "ExpandDims": (_expand_normalize,
                   lambda s, c: _unprobe(np.expand_dims(np.broadcast_to(np.empty((), np.int8), _probe(s[0])),
                                                        c["axis"]).shape),
                   lambda xs, c: np.expand_dims(xs[0], c["axis"]), lambda xs, y, dy, c: [dy.reshape(xs[0].shape)]),
    "Squeeze": (_squeeze_normalize, lambda s, c: tuple(d for i, d in enumerate(s[0]) if i not in c["axis"]),
                lambda xs, c: np.squeeze(xs[0], c["axis"]), lambda xs, y, dy, c: [dy.reshape(xs[0].shape)]),
    "Reshape": (_reshape_normalize, lambda s, c: (s[0][0],) + c["newshape"],
                lambda xs, c: xs[0].reshape((xs[0].shape[0],) + c["newshape"]),
                lambda xs, y, dy, c: [dy.reshape(xs[0].shape)]),
    "Transpose": (_transpose_normalize, lambda s, c: tuple(s[0][a] for a in c["axes"]),
                  lambda xs, c: np.ascontiguousarray(np.transpose(xs[0], c["axes"])),
                  lambda xs, y, dy, c: [np.ascontiguousarray(np.transpose(dy, np.argsort(c["axes"])))]),
    "Swapaxes": (_pair_normalize("axis1", "axis2"),
                 lambda s, c: _unprobe(np.swapaxes(np.broadcast_to(np.empty((), np.int8), _probe(s[0])),
                                                   c["axis1"][0], c["axis2"][0]).shape),
                 lambda xs, c: np.ascontiguousarray(np.swapaxes(xs[0], c["axis1"][0], c["axis2"][0])),
                 lambda xs, y, dy, c: [np.ascontiguousarray(np.swapaxes(dy, c["axis1"][0], c["axis2"][0]))]),
    "Moveaxis": (_pair_normalize("source", "destination"), lambda s, c: _unprobe(_moved_shape(s, c)),
                 lambda xs, c: np.ascontiguousarray(np.moveaxis(xs[0], c["source"], c["destination"])),
                 lambda xs, y, dy, c: [np.ascontiguousarray(np.moveaxis(dy, c["destination"], c["source"]))]),
    "Flip": (lambda c, s, o: {"axis": _axes(c.get("axis"), len(s[0]), o)}, lambda s, c: tuple(s[0]),
             lambda xs, c: np.flip(xs[0], c["axis"]).copy(), lambda xs, y, dy, c: [np.flip(dy, c["axis"]).copy()]),
    "Cumsum": (lambda c, s, o: {"axis": _axes(c.get("axis"), len(s[0]), o)}, lambda s, c: tuple(s[0]),
               lambda xs, c: np.cumsum(xs[0], axis=c["axis"][0], dtype=xs[0].dtype),
               lambda xs, y, dy, c: [np.flip(np.cumsum(np.flip(dy, c["axis"]), axis=c["axis"][0]), c["axis"]).copy()]),
    "Pad": (_pad_normalize, lambda s, c: tuple(None if d is None else d + b + a for d, (b, a) in
                                               zip(s[0], c["pad_width"])),
            _pad, _pad_grad),
}
