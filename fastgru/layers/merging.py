"""Keras 3's merge layers: Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum, Dot.

Each takes a *list* of arrays (batch axis first). Element-wise merges broadcast as Keras does: inputs
of lower rank are expanded at axis 1 until all ranks agree, then NumPy broadcasting applies; the
backward pass sums each gradient back onto its input's shape. Masks follow Keras 3:

* ``compute_mask`` of the element-wise merges is the OR of the inputs' masks (None when any is None);
  ``Concatenate`` expands each mask onto its input (an input without a mask counts as all True),
  concatenates them on ``axis`` and takes ``any`` over the last axis; ``Dot`` passes no mask;
* ``Multiply`` ignores masked entries (they count as 1, the output is zeroed where no input is
  unmasked) when every input has a mask; ``Maximum``/``Minimum`` ignore masked entries the way
  Keras's ``_apply_merge_op_and_or_mask`` does. ``Add``, ``Subtract`` and ``Average`` ignore masks.
"""

from __future__ import annotations

import numpy as np

from .base import BUILD_LOCK, Layer, _symbolic, call_on_list_carrying, compute_dtype, record_symbolic_call
from .op_elementwise import unbroadcast
from .registry import Boolean, Constraint, Integer, KerasContract, register_layer, validate_params


def _as_list(inputs, owner: str) -> list:
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        raise ValueError(f"A merge layer ({owner}) should be called on a list of inputs, received "
                         f"{type(inputs).__name__}")
    return list(inputs)


class _Merge(Layer):
    """What the merge layers share: list inputs, shape checks, the call paths for lists."""

    supports_masking = True
    parameter_constraints: dict = {}
    #: how tests/test_layer_contract.py builds one (two inputs of one shape)
    contract_example = {"inputs": [(5, 4), (5, 4)]}
    min_inputs = 1
    exact_inputs: int | None = None
    #: tf_keras's merges (a Keras 2 file): the AND of the masks present, and no mask applied in the call
    keras2_semantics = False

    def use_keras2_semantics(self) -> None:
        self.keras2_semantics = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._reshape_required = False

    # ---- shapes -----------------------------------------------------------------------------
    def _check_count(self, shapes) -> None:
        kind = type(self).__name__
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"{kind} {self.name!r} should be called on a list of inputs, received input shape "
                             f"{shapes!r}")
        if self.exact_inputs is not None and len(shapes) != self.exact_inputs:
            raise ValueError(f"{kind} {self.name!r} should be called on exactly {self.exact_inputs} inputs, "
                             f"received {len(shapes)}")
        if len(shapes) < self.min_inputs:
            raise ValueError(f"{kind} {self.name!r} should be called on at least {self.min_inputs} inputs, "
                             f"received {len(shapes)}")

    def _elementwise_shape(self, shape1, shape2):
        if len(shape1) < len(shape2):
            return self._elementwise_shape(shape2, shape1)
        if not shape2:
            return tuple(shape1)
        out = list(shape1[: len(shape1) - len(shape2)])
        for i, j in zip(shape1[len(shape1) - len(shape2):], shape2):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1:
                out.append(i)
            elif i != j:
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs have incompatible shapes; received "
                                 f"shapes {tuple(shape1)} and {tuple(shape2)} (after the batch axis)")
            else:
                out.append(i)
        return tuple(out)

    def compute_output_shape(self, input_shape):
        self._check_count(input_shape)
        shapes = [tuple(s) for s in input_shape]
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = self._elementwise_shape(out, s[1:])
        batches = {s[0] for s in shapes} - {None}
        return ((batches.pop() if len(batches) == 1 else None),) + tuple(out)

    def build(self, input_shape) -> None:
        self._check_count(input_shape)
        shapes = [tuple(s) for s in input_shape]
        batches = {s[0] for s in shapes} - {None}
        if len(batches) > 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: cannot merge inputs with different batch sizes, "
                             f"received shapes {shapes}")
        self.output_shape = self.compute_output_shape(shapes)
        self._reshape_required = len({len(s) for s in shapes}) != 1
        self.input_shape = shapes
        self.built = True

    # ---- calling ----------------------------------------------------------------------------
    def _arrays(self, inputs) -> list[np.ndarray]:
        arrays = [np.asarray(x) for x in _as_list(inputs, f"{type(self).__name__} {self.name!r}")]
        self._check_count([a.shape for a in arrays])
        for a in arrays:
            if a.dtype == object or a.dtype.kind not in "fiub":
                raise TypeError(f"{type(self).__name__} {self.name!r} expects numeric arrays, received dtype "
                                f"{a.dtype}")
        dtype = np.result_type(*[compute_dtype(a, self) for a in arrays])
        arrays = [a.astype(dtype, copy=False) for a in arrays]
        if self.built:  # the ranks as built (the lengths may vary, as in Keras: a layer shared by calls of other
            for k, (a, s) in enumerate(zip(arrays, self.input_shape)):  # lengths; NumPy checks that they join)
                if a.ndim != len(s):
                    raise ValueError(f"{type(self).__name__} {self.name!r} input {k} should have shape {s}, "
                                     f"received {a.shape}")
        return arrays

    def __call__(self, inputs, mask=None, training: bool = False, **kwargs):
        if _symbolic(inputs):
            return record_symbolic_call(self, inputs, mask=mask, training=training, **kwargs)
        return call_on_list_carrying(self, inputs, self._arrays(inputs), mask=mask, training=training)

    def ensure_built(self, x_shape) -> None:
        if not self.built:
            with BUILD_LOCK:
                if not self.built:
                    self.build([(None,) + tuple(s[1:]) for s in x_shape])

    def _masks(self, arrays, mask) -> list:
        if mask is None:
            return [None] * len(arrays)
        mask = _as_list(mask, f"{type(self).__name__} {self.name!r} mask")
        if len(mask) != len(arrays):
            raise ValueError(f"{type(self).__name__} {self.name!r}: {len(arrays)} inputs but {len(mask)} masks")
        return [None if m is None else np.asarray(m).astype(bool, copy=False) for m in mask]

    def _expanded(self, arrays):
        """Lower-rank inputs expanded at axis 1 until every input has the largest rank (as Keras)."""
        if not any(a.ndim != arrays[0].ndim for a in arrays):
            return arrays
        top = max(a.ndim for a in arrays)
        return [a.reshape(a.shape[:1] + (1,) * (top - a.ndim) + a.shape[1:]) for a in arrays]

    def call(self, inputs, mask=None, training: bool = False):
        return self.forward(inputs, mask=mask, training=training)[0]

    def forward(self, inputs, mask=None, training: bool = True):
        arrays = self._arrays(inputs)
        y, cache = self._fw(self._expanded(arrays), None if self.keras2_semantics else mask)
        return y, (cache, [a.shape for a in arrays])

    def backward(self, dy, cache, need_dx: bool = True):
        inner, shapes = cache
        return [d.reshape(s) for d, s in zip(self._bw(np.asarray(dy), inner), shapes)], []

    def compute_mask(self, inputs, mask=None):
        """Keras's ``Merge.compute_mask``: the OR of the masks, None when any input has none (tf_keras's: the
        AND of the masks present, None when none is)."""
        if mask is None:
            return None
        masks = list(mask)
        if self.keras2_semantics:
            present = [np.asarray(m).astype(bool) for m in masks if m is not None]
            return np.logical_and.reduce(present) if present else None
        if any(m is None for m in masks):
            return None
        out = np.asarray(masks[0]).astype(bool)
        for m in masks[1:]:
            out = out | np.asarray(m).astype(bool)
        return out

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("batch_input_shape", None)
        return config


@register_layer
class Add(_Merge):
    """Element-wise sum of the inputs."""

    keras = KerasContract(names=("Add",))

    def _fw(self, arrays, mask):
        y = arrays[0]
        for a in arrays[1:]:
            y = y + a
        return y, [a.shape for a in arrays]

    def _bw(self, dy, cache):
        return [unbroadcast(dy, s) for s in cache]


@register_layer
class Subtract(_Merge):
    """``inputs[0] - inputs[1]``."""

    keras = KerasContract(names=("Subtract",))
    exact_inputs = 2

    def _fw(self, arrays, mask):
        a, b = arrays
        return a - b, (a.shape, b.shape)

    def _bw(self, dy, cache):
        return [unbroadcast(dy, cache[0]), -unbroadcast(dy, cache[1])]


@register_layer
class Average(_Merge):
    """Element-wise mean of the inputs."""

    keras = KerasContract(names=("Average",))

    def _fw(self, arrays, mask):
        y = arrays[0]
        for a in arrays[1:]:
            y = y + a
        return y / y.dtype.type(len(arrays)), [a.shape for a in arrays]

    def _bw(self, dy, cache):
        g = dy / dy.dtype.type(len(cache))
        return [unbroadcast(g, s) for s in cache]


def _mask_like(m, x):
    return None if m is None else np.broadcast_to(m[..., None], x.shape)


@register_layer
class Multiply(_Merge):
    """Element-wise product; with a mask on every input, masked entries count as 1 and positions that no
    input keeps are zeroed (Keras 3)."""

    keras = KerasContract(names=("Multiply",))

    def _fw(self, arrays, mask):
        masks = [_mask_like(m, a) for m, a in zip(self._masks(arrays, mask), arrays)]
        all_masked = all(m is not None for m in masks)
        factors = [a if m is None else np.where(m, a, a.dtype.type(1)) for a, m in zip(arrays, masks)]
        y = factors[0]
        for f in factors[1:]:
            y = y * f
        out_mask = None
        if all_masked:
            out_mask = masks[0]
            for m in masks[1:]:
                out_mask = out_mask | m
            y = np.where(out_mask, y, y.dtype.type(0))
        return y, (factors, masks, out_mask)

    def _bw(self, dy, cache):
        factors, masks, out_mask = cache
        if out_mask is not None:
            dy = np.where(out_mask, dy, dy.dtype.type(0))
        n = len(factors)
        prefix = [None] * n  # product of the factors before i
        acc = None
        for i in range(n):
            prefix[i] = acc
            acc = factors[i] if acc is None else acc * factors[i]
        dxs = [None] * n
        acc = None
        for i in range(n - 1, -1, -1):
            others = prefix[i] if acc is None else (acc if prefix[i] is None else prefix[i] * acc)
            g = dy if others is None else dy * others
            if masks[i] is not None:
                g = np.where(masks[i], g, g.dtype.type(0))
            dxs[i] = unbroadcast(g, factors[i].shape)
            acc = factors[i] if acc is None else acc * factors[i]
        return dxs


class _Extremum(_Merge):
    """Maximum / Minimum, with Keras's handling of masked entries (``_apply_merge_op_and_or_mask``)."""

    _pick_new = staticmethod(np.greater)

    def _fw(self, arrays, mask):
        masks = [_mask_like(m, a) for m, a in zip(self._masks(arrays, mask), arrays)]
        shape = np.broadcast_shapes(*[a.shape for a in arrays])
        output = np.broadcast_to(arrays[0], shape)
        owner = np.zeros(shape, np.int32)
        out_mask = None if masks[0] is None else np.broadcast_to(masks[0], shape)
        for i in range(1, len(arrays)):
            x = np.broadcast_to(arrays[i], shape)
            x_owner = np.full(shape, i, np.int32)
            m = None if masks[i] is None else np.broadcast_to(masks[i], shape)
            if m is not None:
                x = np.where(m, x, output)
                x_owner = np.where(m, x_owner, owner)
            if out_mask is not None:
                output = np.where(out_mask, output, x)
                owner = np.where(out_mask, owner, x_owner)
            out_mask = (out_mask | m) if (m is not None and out_mask is not None) else None
            take = self._pick_new(x, output)  # ties go to the first argument, as TensorFlow's gradient
            output = np.where(take, x, output)
            owner = np.where(take, x_owner, owner)
        return np.array(output), (owner, [a.shape for a in arrays])

    def _bw(self, dy, cache):
        owner, shapes = cache
        zero = dy.dtype.type(0)
        return [unbroadcast(np.where(owner == i, dy, zero), s) for i, s in enumerate(shapes)]


@register_layer
class Maximum(_Extremum):
    """Element-wise maximum of the inputs."""

    keras = KerasContract(names=("Maximum",))
    _pick_new = staticmethod(np.greater)


@register_layer
class Minimum(_Extremum):
    """Element-wise minimum of the inputs."""

    keras = KerasContract(names=("Minimum",))
    _pick_new = staticmethod(np.less)


class _Axes(Constraint):
    """Dot's ``axes``: an int or a pair of ints."""

    def accepts(self, value) -> bool:
        ints = value if isinstance(value, (list, tuple)) else [value]
        return (len(ints) == (2 if isinstance(value, (list, tuple)) else 1)
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in ints))

    def convert(self, value):
        return [int(v) for v in value] if isinstance(value, (list, tuple)) else int(value)

    def is_type_error(self, value) -> bool:
        return not isinstance(value, (list, tuple, int, np.integer)) or isinstance(value, (bool, np.bool_))

    def __str__(self) -> str:
        return "an integer or a list of two integers"


@register_layer
class Concatenate(_Merge):
    """Concatenation of the inputs along ``axis`` (every other axis must agree)."""

    keras = KerasContract(names=("Concatenate",))
    parameter_constraints = {"axis": [Integer()]}

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = validate_params(f"Concatenate {self.name!r}", self.parameter_constraints, {"axis": axis})["axis"]

    def _norm_axis(self, rank: int) -> int:
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 < axis < rank:  # the batch axis is never concatenated
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is out of range for inputs of rank {rank}")
        return axis

    def compute_output_shape(self, input_shape):
        self._check_count(input_shape)
        shapes = [tuple(s) for s in input_shape]
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"Concatenate {self.name!r} requires inputs of one rank; received shapes {shapes}")
        axis = self._norm_axis(len(shapes[0]))
        out = list(shapes[0])
        for s in shapes[1:]:
            for k, (a, b) in enumerate(zip(out, s)):
                if k == axis or k == 0:
                    continue
                if a is not None and b is not None and a != b:
                    raise ValueError(f"Concatenate {self.name!r} requires inputs with matching shapes except on the "
                                     f"concatenation axis {self.axis}; received shapes {shapes}")
                if a is None:
                    out[k] = b
        out[axis] = None if any(s[axis] is None for s in shapes) else sum(s[axis] for s in shapes)
        out[0] = None
        return tuple(out)

    def forward(self, inputs, mask=None, training: bool = True):
        arrays = self._arrays(inputs)
        axis = self._norm_axis(arrays[0].ndim)
        return np.concatenate(arrays, axis=axis), (axis, [a.shape[axis] for a in arrays])

    def backward(self, dy, cache, need_dx: bool = True):
        axis, sizes = cache
        return np.split(dy, np.cumsum(sizes)[:-1], axis=axis), []

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        masks = list(mask)
        if all(m is None for m in masks):
            return None
        arrays = list(inputs)
        full = []
        for x, m in zip(arrays, masks):
            if m is None:
                full.append(np.ones(x.shape, bool))
            else:
                m = np.asarray(m).astype(bool)
                full.append(np.broadcast_to(m[..., None], x.shape) if m.ndim < len(x.shape) else m)
        axis = self._norm_axis(len(arrays[0].shape))
        joined = np.concatenate(full, axis=axis)
        return joined.all(axis=-1) if self.keras2_semantics else joined.any(axis=-1)  # (tf_keras: all)

    def get_config(self) -> dict:
        config = super().get_config()
        config["axis"] = self.axis
        return config


@register_layer
class Dot(_Merge):
    """Batch dot product of two inputs over ``axes`` (Keras's ``batch_dot``), optionally of L2-normalised
    inputs (``normalize``)."""

    keras = KerasContract(names=("Dot",))
    parameter_constraints = {"axes": [_Axes()], "normalize": [Boolean()]}
    contract_example = {"kwargs": {"axes": -1}, "inputs": [(5, 4), (5, 4)]}
    exact_inputs = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"Dot {self.name!r}", self.parameter_constraints,
                                  {"axes": axes, "normalize": normalize})
        self.axes, self.normalize = options["axes"], options["normalize"]

    def _axes(self, rank1: int, rank2: int) -> tuple[int, int]:
        if isinstance(self.axes, int):
            a = (self.axes % rank1, self.axes % rank2) if self.axes < 0 else (self.axes, self.axes)
        else:
            a = tuple(ax % r if ax < 0 else ax for ax, r in zip(self.axes, (rank1, rank2)))
        return a

    def compute_output_shape(self, input_shape):
        self._check_count(input_shape)
        s1, s2 = (list(s) for s in input_shape)
        if len(s1) not in (2, 3) or len(s2) not in (2, 3):
            raise ValueError(f"Dot {self.name!r}: fastgru computes Dot on inputs of rank 2 or 3, received shapes "
                             f"{tuple(s1)} and {tuple(s2)}")
        a1, a2 = self._axes(len(s1), len(s2))
        if not (0 < a1 < len(s1) and 0 < a2 < len(s2)):
            raise ValueError(f"Dot {self.name!r}: axes {self.axes} are out of range (or the batch axis) for shapes "
                             f"{tuple(s1)} and {tuple(s2)}")
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(f"Dot {self.name!r}: incompatible input shapes {tuple(s1)} and {tuple(s2)}: axis {a1} of "
                             f"the first ({s1[a1]}) and axis {a2} of the second ({s2[a2]}) must be equal")
        s1.pop(a1)
        s2.pop(a2)
        s2.pop(0)
        out = s1 + s2
        if len(out) == 1:
            out += [1]
        out[0] = None
        return tuple(out)

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self._reshape_required = False

    @staticmethod
    def _l2(x, axis):
        square_sum = np.sum(x * x, axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(square_sum)
        limit = x.dtype.type(1e7)
        clipped = inv >= limit
        inv = np.minimum(inv, limit).astype(x.dtype)
        return x * inv, inv, clipped

    def forward(self, inputs, mask=None, training: bool = True):
        x1, x2 = self._arrays(inputs)
        a1, a2 = self._axes(x1.ndim, x2.ndim)
        n1 = n2 = None
        if self.normalize:
            x1n, inv1, c1 = self._l2(x1, a1)
            x2n, inv2, c2 = self._l2(x2, a2)
            n1, n2 = (x1, x1n, inv1, c1), (x2, x2n, inv2, c2)
            x1, x2 = x1n, x2n
        # contracted axis last for x1, first-after-batch for x2: (B, M, K) @ (B, K, N)
        p = np.moveaxis(x1, a1, -1)
        q = np.moveaxis(x2, a2, 1)
        p3 = p.reshape(p.shape[0], -1, p.shape[-1])
        q3 = q.reshape(q.shape[0], q.shape[1], -1)
        y3 = np.matmul(p3, q3)
        y = y3.reshape(p.shape[:-1] + q.shape[2:])
        if y.ndim == 1:
            y = y[:, None]
        return y, (p3, q3, p.shape, q.shape, a1, a2, n1, n2)

    @staticmethod
    def _l2_backward(g, saved, axis):
        x, xn, inv, clipped = saved
        # y = x * inv with inv = (sum x^2)^-1/2 unless clipped (then constant)
        dot = np.sum(g * x, axis=axis, keepdims=True)
        dinv = np.where(clipped, 0, -(inv ** 3)).astype(g.dtype)
        return g * inv + x * (dot * dinv)

    def backward(self, dy, cache, need_dx: bool = True):
        p3, q3, p_shape, q_shape, a1, a2, n1, n2 = cache
        dy3 = dy.reshape(p3.shape[0], p3.shape[1], q3.shape[2])
        dp3 = np.matmul(dy3, np.swapaxes(q3, 1, 2))
        dq3 = np.matmul(np.swapaxes(p3, 1, 2), dy3)
        dx1 = np.moveaxis(dp3.reshape(p_shape), -1, a1)
        dx2 = np.moveaxis(dq3.reshape(q_shape), 1, a2)
        if n1 is not None:
            dx1 = self._l2_backward(dx1, n1, a1)
            dx2 = self._l2_backward(dx2, n2, a2)
        return [dx1, dx2], []

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(axes=self.axes, normalize=self.normalize)
        return config
