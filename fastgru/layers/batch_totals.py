"""Totals over the batch in a call traced for training (``custom_training``), for ``add_loss``.

``ops.sum(x)`` and ``ops.mean(x)`` with ``axis=None`` take the batch axis too, which a fastgru graph keeps whole
(every sample computed on its own). Inside a traced call such a total is a :class:`BatchTotal`: per-sample sums (a
graph tensor of shape (batch,), the sum of ``x`` over its other axes) times a coefficient (1, or ``1 / x.size`` for
a mean), plus values computed from weights alone (their elements summed) and a constant. What ``add_loss`` is given
is made of such terms — ``self.add_loss(0.01 * ops.sum(ops.square(y)))``, a VAE's ``-0.5 * ops.mean(1 + log_var -
ops.square(mu) - ops.exp(log_var))`` — so sums, differences and multiples by numbers are defined on them, and
anything else refuses by name. ``add_loss`` of a traced call records them (:func:`add_traced_loss`); the training
adds them to the loss and sends their gradient (the coefficient, for every sample) back through the traced graph.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..tracing import TENSOR_KEY, is_weight_valued, operand_value, tracing
from . import registry

_state = threading.local()

#: the Keras ops that combine a total with numbers (``ops.multiply(0.5, ops.mean(x))``), as its operators
_OPERATORS = {"Add": lambda a, b: a + b, "Subtract": lambda a, b: a - b, "Multiply": lambda a, b: a * b,
              "TrueDivide": lambda a, b: a / b, "Divide": lambda a, b: a / b, "Negative": lambda a: -a}


def _refuse(what: str):
    raise UnsupportedKerasFeature(
        f"custom layer {tracing()!r}: its call computes {what} of a total over the batch (ops.sum or ops.mean with "
        "axis=None of a tensor), which fastgru's traced graph keeps per sample; such totals can only be added, "
        "subtracted and multiplied or divided by numbers, and given to add_loss (reduce over the other axes, e.g. "
        "ops.mean(x, axis=-1), to compute per sample)")


def _number(value) -> bool:
    if isinstance(value, (bool, int, float, np.number)):
        return True
    return isinstance(value, np.ndarray) and not is_weight_valued(value) and value.size == 1 and \
        value.dtype.kind in "biuf"  # (an array of one number: ops.cast(ops.shape(x)[0], "float32"))


class BatchTotal:
    """``sum(c * sum(s)) + sum(k * sum(e)) + constant`` over its ``terms`` [(graph tensor s of shape (batch,),
    c)] and ``expressions`` [(e: a weight or a value computed from weights, k)]: a 0-d float value."""

    __array_ufunc__ = None  # (``np.float32(0.5) * total``: the total's __rmul__)
    shape, ndim = (), 0

    def __init__(self, terms=(), expressions=(), constant: float = 0.0):
        self.terms, self.expressions, self.constant = list(terms), list(expressions), float(constant)

    @property
    def dtype(self):
        return np.dtype(self.terms[0][0].dtype) if self.terms else np.dtype("float32")

    def scaled(self, factor: float) -> BatchTotal:
        return BatchTotal([(s, c * factor) for s, c in self.terms], [(e, k * factor) for e, k in self.expressions],
                          self.constant * factor)

    def _plus(self, other) -> BatchTotal:
        if isinstance(other, BatchTotal):
            return BatchTotal(self.terms + other.terms, self.expressions + other.expressions,
                              self.constant + other.constant)
        if _number(other):
            return BatchTotal(self.terms, self.expressions, self.constant + float(other))
        if is_weight_valued(other) and np.size(operand_value(other)) == 1:
            return BatchTotal(self.terms, self.expressions + [(other, 1.0)], self.constant)
        return _refuse("a sum with a tensor or an array")

    def _times(self, other, inverse: bool = False) -> BatchTotal:
        if not _number(other):
            return _refuse("a product or quotient with a tensor, an array or a weight")
        return self.scaled(1.0 / float(other) if inverse else float(other))

    def __add__(self, other):
        return self._plus(other)

    __radd__ = __add__

    def __sub__(self, other):
        return self._plus(other.scaled(-1.0) if isinstance(other, BatchTotal) else
                          -float(other) if _number(other) else _negated(other))

    def __rsub__(self, other):
        return self.scaled(-1.0)._plus(other)

    def __mul__(self, other):
        return self._times(other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        return self._times(other, inverse=True)

    def __rtruediv__(self, other):
        return _refuse("a number divided by it")

    def __neg__(self):
        return self.scaled(-1.0)

    def __pos__(self):
        return self

    def __array__(self, dtype=None, copy=None):
        return _refuse("NumPy's conversion")

    def __float__(self):
        return _refuse("Python's float()")

    def __bool__(self):
        return _refuse("a Python branch on the value")

    def __repr__(self) -> str:
        return f"<BatchTotal of {len(self.terms)} per-sample sum(s) and {len(self.expressions)} weight term(s)>"


def _negated(value):
    if is_weight_valued(value) and np.size(operand_value(value)) == 1:
        return BatchTotal([], [(value, -1.0)])
    return _refuse("a difference with a tensor or an array")


def total(op: str, x, config: dict):
    """``ops.sum(x)``/``ops.mean(x)`` (``op`` "Sum"/"Mean") of the symbolic ``x`` in a traced call, or None where
    that is not a total over every axis (the graph op's own rules apply then)."""
    axis = config.get("axis")
    axes = None if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    if tracing() is None or config.get("keepdims") or op not in ("Sum", "Mean") or getattr(x, "ndim", 0) < 1:
        return None
    if axes is not None and sorted(int(a) % x.ndim for a in axes) != list(range(x.ndim)):
        return None
    if x.shape[0] is None:
        _refuse(f"keras.ops {op.lower()} over an unknown batch size")
    per_sample = x
    if x.ndim > 1:
        op_layer = registry.model_class("KerasOp")  # (keras_ops imports custom layers' module: no import here)
        per_sample = op_layer("Sum", {"axis": tuple(range(1, x.ndim)), "keepdims": False})(
            [x], template={"args": [{TENSOR_KEY: 0}], "kwargs": {}})
    count = int(np.prod(x.shape)) if op == "Mean" else 1
    return BatchTotal([(per_sample, 1.0 / count)])


def apply_op(op: str, args: list):
    """The Keras op ``op`` on arguments of which one is a :class:`BatchTotal` (its operators, or refused)."""
    if op in _OPERATORS:
        return _OPERATORS[op](*args)
    if op in ("Sum", "Mean", "Cast") and len(args) == 1:  # (a 0-d value: itself)
        return args[0]
    return _refuse(f"keras.ops {op}")


@contextmanager
def collecting():
    """Within the block, ``add_loss`` in a traced call records its values in the :class:`BatchTotal` yielded."""
    before = getattr(_state, "added", None)
    added = _state.added = BatchTotal()
    try:
        yield added
    finally:
        _state.added = before


def add_traced_loss(loss) -> bool:
    """``add_loss(loss)`` inside a traced call: ``loss`` (a total, a symbolic tensor — summed, as Keras sums what
    ``add_loss`` gets —, a weight or a value from weights, a number; or a list of them) joins the recorded losses;
    False outside a trace (the loss is eager then)."""
    added = getattr(_state, "added", None)
    if added is None or tracing() is None:
        return False
    for value in loss if isinstance(loss, (list, tuple)) else [loss]:
        if getattr(value, "_fg_symbolic", False):
            value = total("Sum", value, {"axis": None, "keepdims": False})
        if isinstance(value, BatchTotal):
            part = value
        elif is_weight_valued(value):
            part = BatchTotal([], [(value, 1.0)])
        elif _number(value) or isinstance(value, np.ndarray):
            part = BatchTotal([], [], float(np.sum(value)))
        else:
            raise UnsupportedKerasFeature(f"custom layer {tracing()!r}: add_loss was given {type(value).__name__}, "
                                          "not a tensor")
        merged = added._plus(part)
        added.terms, added.expressions, added.constant = merged.terms, merged.expressions, merged.constant
    return True
