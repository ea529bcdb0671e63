"""Keras 3 ops along one axis of a tensor that change what lies there (``keras.ops.glu``, ``ops.normalize``,
``ops.repeat``, ``ops.tile``, ``ops.roll``, ``ops.argmax``/``argmin``, ``ops.split``), in :mod:`op_shapes`'s
form: per op ``normalize`` (the node's config checked, axes made non-negative, the batch axis refused), the
output shape, the values and TensorFlow's gradients. Used by :class:`fastgru.layers.keras_ops.KerasOp`.
``Split``, ``TopK`` and ``Moments`` have several outputs: the shape is a list of shapes, the value a list of
arrays, and the gradient takes one per output (None for an output nothing used). ``GATHERS`` (``ops.take`` with
constant indices, ``ops.take_along_axis``) take two operands, in :mod:`op_shapes`'s products' form.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import UnsupportedKerasFeature
from .op_shapes import _axes, _bool

#: Keras's backend.epsilon(), ops.normalize's default
_EPSILON = 1e-7


def _int(value, what: str, owner: str, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{owner}: {what} must be an integer of at least {low}, found {value!r}")
    return int(value)


def _one_axis(c, shapes, owner) -> int:
    axis = c.get("axis")
    if isinstance(axis, (list, tuple)):
        raise UnsupportedKerasFeature(f"{owner}: one axis is supported, found axis={axis!r}")
    return _axes(axis, len(shapes[0]), owner)[0]


# ---- glu: the first half of the axis gated by the sigmoid of the second ------------------------------
def _glu_normalize(c, shapes, owner):
    axis = _one_axis({"axis": c.get("axis", -1)}, shapes, owner)
    size = shapes[0][axis]
    if size is not None and size % 2:
        raise ValueError(f"{owner}: axis {axis} of size {size} cannot be split in halves")
    return {"axis": axis}


def _glu(xs, c):
    a, b = np.split(xs[0], 2, axis=c["axis"])
    return a * special.expit(b)


def _glu_grad(xs, y, dy, c):
    a, b = np.split(xs[0], 2, axis=c["axis"])
    s = special.expit(b)
    return [np.concatenate([dy * s, dy * a * s * (1 - s)], axis=c["axis"])]


# ---- normalize: x over its order-p norm along the axis (Keras: 1/norm capped at 1/epsilon) ------------
def _normalize_normalize(c, shapes, owner):
    epsilon = c.get("epsilon")
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon <= 0):
        raise ValueError(f"{owner}: epsilon must be a positive number or None, found {epsilon!r}")
    return {"axis": _one_axis({"axis": c.get("axis", -1)}, shapes, owner),
            "order": _int(c.get("order", 2), "order", owner, 1),
            "epsilon": _EPSILON if epsilon is None else float(epsilon)}


def _norm(x, c):
    if c["order"] == 2:
        return np.sqrt((x * x).sum(axis=c["axis"], keepdims=True))
    return (np.abs(x) ** c["order"]).sum(axis=c["axis"], keepdims=True) ** (1.0 / c["order"])


def _normalize(xs, c):
    x = xs[0]
    norm = _norm(x, c)
    eps = x.dtype.type(c["epsilon"])
    if c["order"] == 2:  # (x * min(rsqrt(sum x²), 1/eps), as Keras: a zero vector stays zero, quietly)
        with np.errstate(divide="ignore"):
            return x * np.minimum(1 / norm, 1 / eps)
    return x / np.maximum(norm, eps)


def _normalize_grad(xs, y, dy, c):
    x, p = xs[0], c["order"]
    norm = _norm(x, c)
    scaled = norm > c["epsilon"]  # (where the norm, not epsilon, divides)
    denom = np.where(scaled, norm, c["epsilon"])
    with np.errstate(divide="ignore", invalid="ignore"):
        dnorm = np.sign(x) * np.abs(x) ** (p - 1) / np.where(scaled, norm, 1) ** (p - 1)  # d norm / dx
    inner = (dy * x).sum(axis=c["axis"], keepdims=True)
    return [dy / denom - np.where(scaled, inner / (denom * denom), 0) * dnorm]


# ---- repeat, tile, roll ------------------------------------------------------------------------------
def _repeat_normalize(c, shapes, owner):
    axis, repeats = _one_axis(c, shapes, owner), c.get("repeats")
    if isinstance(repeats, (list, tuple)) and len(repeats) == 1:
        repeats = repeats[0]
    if not isinstance(repeats, (list, tuple)):
        return {"repeats": _int(repeats, "repeats", owner, 0), "axis": axis}
    counts = tuple(_int(r, "repeats", owner, 0) for r in repeats)  # (one count per entry along the axis)
    if shapes[0][axis] != len(counts):
        raise UnsupportedKerasFeature(f"{owner}: {len(counts)} repeats for axis {axis} of size {shapes[0][axis]} "
                                      "(a list of counts needs one per entry of an axis of known size)")
    return {"repeats": counts, "axis": axis}


def _repeat_shape(shapes, c):
    r = c["repeats"]
    return _shape_along(shapes, c, lambda d: sum(r) if isinstance(r, tuple) else None if d is None else d * r)


def _repeat_grad(xs, y, dy, c):
    x, a, r = xs[0], c["axis"], c["repeats"]
    if isinstance(r, tuple):  # (each entry's copies summed back onto it)
        dx = np.zeros(x.shape, dy.dtype)
        np.add.at(np.moveaxis(dx, a, 0), np.repeat(np.arange(len(r)), r), np.moveaxis(dy, a, 0))
        return [dx]
    return [dy.reshape(x.shape[:a] + (x.shape[a], r) + x.shape[a + 1:]).sum(axis=a + 1)]


def _tile_normalize(c, shapes, owner):
    reps, rank = c.get("repeats"), len(shapes[0])
    reps = [reps] if isinstance(reps, (int, np.integer)) and not isinstance(reps, bool) else reps
    if not isinstance(reps, (list, tuple)) or not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool)
                                                      and r >= 0 for r in reps):
        raise ValueError(f"{owner}: repeats must be a list of counts, found {c.get('repeats')!r}")
    if len(reps) > rank:
        raise UnsupportedKerasFeature(f"{owner}: {len(reps)} repeats for a tensor of rank {rank} add axes before the "
                                      "batch axis; fastgru keeps it first")
    reps = (1,) * (rank - len(reps)) + tuple(int(r) for r in reps)
    if reps[0] != 1:
        raise UnsupportedKerasFeature(f"{owner}: repeats {c.get('repeats')!r} tile the batch axis; fastgru keeps "
                                      "it whole")
    return {"repeats": reps}


def _tile_grad(xs, y, dy, c):
    x = xs[0]
    pairs = [v for r, d in zip(c["repeats"], x.shape) for v in (r, d)]
    return [dy.reshape(pairs).sum(axis=tuple(range(0, 2 * x.ndim, 2)))]


def _roll_normalize(c, shapes, owner):
    shift, axis = c.get("shift"), c.get("axis")
    shifts = list(shift) if isinstance(shift, (list, tuple)) else [shift]
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if axis is None:
        _axes(None, len(shapes[0]), owner)  # (refused: a roll of the flattened tensor crosses samples)
    if len(shifts) != len(axes) or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                           for s in shifts):
        raise ValueError(f"{owner}: shift {shift!r} and axis {axis!r} do not pair up as integers")
    return {"shift": tuple(int(s) for s in shifts), "axis": tuple(_axes(a, len(shapes[0]), owner)[0] for a in axes)}


# ---- argmax, argmin: the index along the axis (no gradient), carried as a float -----------------------
def _arg_normalize(c, shapes, owner):
    return {"axis": _one_axis(c, shapes, owner), "keepdims": _bool(c.get("keepdims", False), "keepdims", owner)}


def _arg_shape(shapes, c):
    shape = list(shapes[0])
    if c["keepdims"]:
        shape[c["axis"]] = 1
    else:
        del shape[c["axis"]]
    return tuple(shape)


def _arg(pick, nan_as: float):
    """``pick`` (argmax, argmin) skipping NaNs as TensorFlow's does (a NaN never wins; a row of NaNs gives 0)."""
    def values(xs, c):
        x = xs[0]
        if x.dtype.kind == "f" and np.isnan(x).any():
            x = np.where(np.isnan(x), x.dtype.type(nan_as), x)
        return pick(x, axis=c["axis"], keepdims=c["keepdims"])
    return values


def _shape_along(shapes, c, size):
    shape = list(shapes[0])
    shape[c["axis"]] = size(shape[c["axis"]])
    return tuple(shape)


# ---- split: several outputs --------------------------------------------------------------------------
def _split_normalize(c, shapes, owner):
    axis = _one_axis({"axis": c.get("axis", 0)}, shapes, owner)
    sections, size = c.get("indices_or_sections"), shapes[0][axis]
    if isinstance(sections, (int, np.integer)) and not isinstance(sections, bool):
        sections = _int(sections, "indices_or_sections", owner, 1)
        if size is not None and size % sections:
            raise ValueError(f"{owner}: axis {axis} of size {size} does not split in {sections} equal parts")
        return {"axis": axis, "sections": sections, "cuts": None}
    if not isinstance(sections, (list, tuple)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in sections) or list(
            sections) != sorted(sections) or (size is not None and sections and sections[-1] > size):
        raise ValueError(f"{owner}: indices_or_sections must be a number of equal parts or increasing indices "
                         f"within the axis, found {sections!r}")
    return {"axis": axis, "sections": None, "cuts": tuple(int(v) for v in sections)}


def _split_shape(shapes, c):
    size = shapes[0][c["axis"]]
    if c["cuts"] is None:
        sizes = [None if size is None else size // c["sections"]] * c["sections"]
    else:
        edges = [0, *c["cuts"]]
        sizes = [b - a for a, b in zip(edges, edges[1:])] + [None if size is None else size - edges[-1]]
    return [_shape_along(shapes, c, lambda d, n=n: n) for n in sizes]


def _split(xs, c):
    parts = np.split(xs[0], c["sections"] if c["cuts"] is None else list(c["cuts"]), axis=c["axis"])
    return [np.ascontiguousarray(p) for p in parts]


def _split_grad(xs, y, dys, c):
    return [np.concatenate([np.zeros_like(p) if d is None else d for p, d in zip(y, dys)], axis=c["axis"])]


# ---- sorting: sort, argsort, top_k (the last axis: values and indices) ----------------------------------
def _sort_normalize(c, shapes, owner):
    return {"axis": _one_axis({"axis": c.get("axis", -1)}, shapes, owner)}


def _sort_grad(xs, y, dy, c):
    dx = np.empty_like(dy)
    np.put_along_axis(dx, np.argsort(xs[0], axis=c["axis"], kind="stable"), dy, axis=c["axis"])
    return [dx]


def _top_k_normalize(c, shapes, owner):
    k, size = _int(c.get("k", 1), "k", owner, 1), shapes[0][-1]
    if len(shapes[0]) < 2:
        raise UnsupportedKerasFeature(f"{owner}: top_k of a tensor of rank 1 ranks the batch axis")
    if size is not None and k > size:
        raise ValueError(f"{owner}: k={k} exceeds the last axis's size {size}")
    if c.get("sorted", True) is not True:
        raise UnsupportedKerasFeature(f"{owner}: sorted=False is not supported (its order is TensorFlow's choice)")
    return {"k": k}


def _top_k_indices(x, c):
    return np.argsort(-x, axis=-1, kind="stable")[..., :c["k"]]  # (ties: the lower index first, as TensorFlow)


def _top_k(xs, c):
    picked = _top_k_indices(xs[0], c)
    return [np.take_along_axis(xs[0], picked, axis=-1), picked]


def _top_k_grad(xs, y, dys, c):
    if dys[0] is None:  # (the indices have no gradient: only the values pass one back)
        return [None]
    dx = np.zeros_like(xs[0])
    np.put_along_axis(dx, _top_k_indices(xs[0], c), dys[0], axis=-1)
    return [dx]


# ---- moments: mean and variance over axes --------------------------------------------------------------
def _moments_normalize(c, shapes, owner):
    return {"axis": _axes(c.get("axes"), len(shapes[0]), owner),
            "keepdims": _bool(c.get("keepdims", False), "keepdims", owner)}


def _moments(xs, c):
    return [xs[0].mean(axis=c["axis"], keepdims=c["keepdims"]), xs[0].var(axis=c["axis"], keepdims=c["keepdims"])]


def _moments_grad(xs, y, dys, c):
    x = xs[0]
    n = np.prod([x.shape[a] for a in c["axis"]])
    kept = (lambda a: a) if c["keepdims"] else (lambda a: np.expand_dims(a, c["axis"]))
    dx = np.zeros_like(x)
    if dys[0] is not None:
        dx += kept(dys[0]) / n
    if dys[1] is not None:
        dx += kept(dys[1]) * 2 * (x - x.mean(axis=c["axis"], keepdims=True)) / n
    return [dx]


# ---- gathers: take (constant indices), take_along_axis ----------------------------------------------------
def _take_normalize(c, shapes, owner, is_tensor=(True, False)):
    if not is_tensor[0] and is_tensor[1]:  # (rows of a constant table per sample: an embedding lookup)
        axis, rank = c.get("axis"), len(shapes[0])
        if isinstance(axis, bool) or not isinstance(axis, int) or rank == 0 or axis % rank != 0 or axis >= rank:
            raise UnsupportedKerasFeature(f"{owner}: a constant table is taken from along its axis 0 by a tensor of "
                                          f"indices (an embedding lookup), found axis={axis!r}")
        return {"axis": 0}
    if is_tensor[1] or not is_tensor[0]:
        raise UnsupportedKerasFeature(f"{owner}: indices must be constants (tensor indices of a batch would gather "
                                      "across samples), or a tensor of indices into a constant table")
    axis = _one_axis(c, shapes[:1], owner)
    return {"axis": axis}


def _take_indices(x, indices, c):
    size = x.shape[c["axis"]]
    idx = np.asarray(indices)
    if idx.size and ((idx != np.round(idx)).any() or idx.min() < -size or idx.max() >= size):
        raise ValueError(f"take: indices must be integers within [-{size}, {size}) for an axis of size {size}, found "
                         f"{idx.min()}..{idx.max()}")
    return idx.astype(np.int64) % size


def _take_grad(xs, y, dy, c):
    x, a = xs[0], c["axis"]
    dx = np.zeros_like(x)
    idx = _take_indices(x, xs[1], c)
    np.add.at(np.moveaxis(dx, a, 0), idx, np.moveaxis(dy, tuple(range(a, a + idx.ndim)), tuple(range(idx.ndim))))
    return [dx, None]


def _along_normalize(c, shapes, owner, is_tensor=(True, True)):
    x, idx = shapes
    if not is_tensor[0] or len(x) != len(idx):
        raise UnsupportedKerasFeature(f"{owner}: fastgru takes along an axis with indices of the tensor's rank (one "
                                      f"set a sample); found shapes {x} and {idx}")
    axis = _one_axis(c, shapes[:1], owner)
    for i, (a, b) in enumerate(zip(x, idx)):
        if i != axis and a is not None and b is not None and a != b and 1 not in (a, b):
            raise ValueError(f"{owner}: shapes {x} and {idx} do not broadcast off axis {axis}")
    return {"axis": axis}


def _along_indices(xs, c):
    x, idx = xs
    size = x.shape[c["axis"]]
    if idx.size and (idx.min() < -size or idx.max() >= size):
        raise ValueError(f"take_along_axis: indices must lie within [-{size}, {size}), found {idx.min()}..{idx.max()}")
    idx = idx.astype(np.int64) % size
    shape = [max(a, b) for a, b in zip(x.shape, idx.shape)]
    shape[c["axis"]] = idx.shape[c["axis"]]
    return np.broadcast_to(idx, shape)


def _along(xs, c):
    idx = _along_indices(xs, c)
    shape = list(idx.shape)
    shape[c["axis"]] = xs[0].shape[c["axis"]]
    return np.take_along_axis(np.broadcast_to(xs[0], shape), idx, axis=c["axis"])


def _along_grad(xs, y, dy, c):
    x, idx = xs[0], _along_indices(xs, c)
    shape = list(idx.shape)
    shape[c["axis"]] = x.shape[c["axis"]]
    dx = np.zeros(shape, x.dtype)
    grid = list(np.ix_(*[np.arange(n) for n in idx.shape]))
    grid[c["axis"]] = idx
    np.add.at(dx, tuple(grid), dy)
    extra = tuple(i for i, (a, b) in enumerate(zip(x.shape, shape)) if a == 1 and b != 1)
    return [dx.sum(axis=extra, keepdims=True) if extra else dx, None]


def _gather_shape(shapes, c):
    x, idx = shapes
    a = c["axis"]
    return tuple(x[:a]) + tuple(idx) + tuple(x[a + 1:])


def _along_shape(shapes, c):
    x, idx = shapes
    out = [b if a in (1, None) else a for a, b in zip(x, idx)]
    out[c["axis"]] = idx[c["axis"]]
    return tuple(out)


# ---- diff (n-th differences along an axis), cumprod ---------------------------------------------------------
def _diff_normalize(c, shapes, owner):
    axis, n = _one_axis({"axis": c.get("axis", -1)}, shapes, owner), _int(c.get("n", 1), "n", owner, 0)
    size = shapes[0][axis]
    if size is not None and n > size:
        raise ValueError(f"{owner}: n={n} differences of an axis of size {size}")
    return {"axis": axis, "n": n}


def _diff_grad(xs, y, dy, c):
    a = c["axis"]
    for _ in range(c["n"]):  # (the transpose of one difference: dx[i] = dy[i - 1] - dy[i])
        width = [(0, 0)] * dy.ndim
        width[a] = (1, 0)
        before = np.pad(dy, width)
        width[a] = (0, 1)
        dy = before - np.pad(dy, width)
    return [dy]


def _cumprod_grad(xs, y, dy, c):  # (TensorFlow's: the reversed cumulative sum of y * dy, over x)
    a = c["axis"]
    with np.errstate(divide="ignore", invalid="ignore"):
        summed = np.flip(np.cumsum(np.flip(y * dy, a), axis=a), a)  # (TensorFlow's div_no_nan: 0 where x is 0)
        return [np.where(xs[0] == 0, 0, summed / xs[0]).astype(xs[0].dtype, copy=False)]


# ---- triu, tril: the last two axes (a batch of matrices) ----------------------------------------------------
def _triangle_normalize(c, shapes, owner):
    k = c.get("k", 0)
    if len(shapes[0]) < 3:
        raise UnsupportedKerasFeature(f"{owner}: a triangle of a tensor of rank {len(shapes[0])} takes the batch axis "
                                      "as a row axis; fastgru takes batches of matrices (rank 3 or more)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"{owner}: k must be an integer, found {k!r}")
    return {"k": int(k)}


# ---- one_hot: class ids to indicator vectors (ids outside [0, num_classes) give zeros, as TensorFlow) --------
def _one_hot_normalize(c, shapes, owner):
    if c.get("sparse"):
        raise UnsupportedKerasFeature(f"{owner}: sparse=True is not supported")
    if c.get("dtype") not in (None, "float32", "float64", "float16", "bfloat16"):
        raise UnsupportedKerasFeature(f"{owner}: dtype {c.get('dtype')!r}; fastgru carries the indicators as floats")
    axis = c.get("axis", -1)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"{owner}: axis must be an integer, found {axis!r}")
    (axis,) = _axes(axis if axis >= 0 else len(shapes[0]) + 1 + axis, len(shapes[0]) + 1, owner)
    return {"num_classes": _int(c.get("num_classes"), "num_classes", owner, 1), "axis": axis}


def _one_hot(xs, c):
    ids = xs[0]  # (fractional ids truncated, as Keras casts them to integers)
    hot = (np.expand_dims(np.trunc(ids), -1) == np.arange(c["num_classes"], dtype=ids.dtype)).astype(ids.dtype)
    return np.moveaxis(hot, -1, c["axis"])


#: (normalize(config, shapes, owner, is_tensor), shape, forward, gradient), as op_products.PRODUCTS
GATHERS = {
    "Take": (_take_normalize, _gather_shape, lambda xs, c: np.take(xs[0], _take_indices(xs[0], xs[1], c),
                                                                  axis=c["axis"]), _take_grad),
    "TakeAlongAxis": (_along_normalize, _along_shape, _along, _along_grad),
}


AXIS_SHAPE_OPS = {
    "Glu": (_glu_normalize, lambda s, c: _shape_along(s, c, lambda d: None if d is None else d // 2), _glu, _glu_grad),
    "Normalize": (_normalize_normalize, lambda s, c: tuple(s[0]), _normalize, _normalize_grad),
    "Repeat": (_repeat_normalize, _repeat_shape, lambda xs, c: np.repeat(xs[0], c["repeats"], axis=c["axis"]),
               _repeat_grad),
    "Tile": (_tile_normalize, lambda s, c: tuple(None if d is None else d * r for d, r in zip(s[0], c["repeats"])),
             lambda xs, c: np.tile(xs[0], c["repeats"]), _tile_grad),
    "Roll": (_roll_normalize, lambda s, c: tuple(s[0]), lambda xs, c: np.roll(xs[0], c["shift"], axis=c["axis"]),
             lambda xs, y, dy, c: [np.roll(dy, tuple(-s for s in c["shift"]), axis=c["axis"])]),
    "Argmax": (_arg_normalize, _arg_shape, _arg(np.argmax, -np.inf), lambda xs, y, dy, c: [None]),  # (no gradient)
    "Argmin": (_arg_normalize, _arg_shape, _arg(np.argmin, np.inf), lambda xs, y, dy, c: [None]),
    "Split": (_split_normalize, _split_shape, _split, _split_grad),
    "Sort": (_sort_normalize, lambda s, c: tuple(s[0]), lambda xs, c: np.sort(xs[0], axis=c["axis"], kind="stable"),
             _sort_grad),
    "Argsort": (_sort_normalize, lambda s, c: tuple(s[0]),
                lambda xs, c: np.argsort(xs[0], axis=c["axis"], kind="stable"), lambda xs, y, dy, c: [None]),
    "TopK": (_top_k_normalize, lambda s, c: [tuple(s[0][:-1]) + (c["k"],)] * 2, _top_k, _top_k_grad),
    "Moments": (_moments_normalize, lambda s, c: [_reduced_shape(s[0], c)] * 2, _moments, _moments_grad),
    "Diff": (_diff_normalize, lambda s, c: _shape_along(s, c, lambda d: None if d is None else d - c["n"]),
             lambda xs, c: np.diff(xs[0], n=c["n"], axis=c["axis"]), _diff_grad),
    "Cumprod": (lambda c, s, o: {"axis": _one_axis({"axis": c.get("axis")}, s, o)}, lambda s, c: tuple(s[0]),
                lambda xs, c: np.cumprod(xs[0], axis=c["axis"], dtype=xs[0].dtype), _cumprod_grad),
    "Triu": (_triangle_normalize, lambda s, c: tuple(s[0]), lambda xs, c: np.triu(xs[0], c["k"]),
             lambda xs, y, dy, c: [np.triu(dy, c["k"])]),
    "Tril": (_triangle_normalize, lambda s, c: tuple(s[0]), lambda xs, c: np.tril(xs[0], c["k"]),
             lambda xs, y, dy, c: [np.tril(dy, c["k"])]),
    "OneHot": (_one_hot_normalize, lambda s, c: tuple(s[0][:c["axis"]]) + (c["num_classes"],) + tuple(s[0][c["axis"]:]),
               _one_hot, lambda xs, y, dy, c: [None]),
}


def _reduced_shape(shape, c):
    return tuple(1 if i in c["axis"] else d for i, d in enumerate(shape)) if c["keepdims"] else tuple(
        d for i, d in enumerate(shape) if i not in c["axis"])
