"""The Python operators of a symbolic tensor (``fastgru.graph.KerasTensor``), each recording the Keras 3 op node Keras
records for it (``x + y``: Add, ``2.0 * x``: Multiply, ``h // 2``: FloorDivide, ``abs(h)``: Absolute, ``a @ b``:
Matmul; layers/keras_ops.py)."""

from __future__ import annotations

from .layers.keras_ops import apply_op


class TensorOperators:
    """Arithmetic and comparisons on symbolic tensors, as Keras's ``KerasTensor`` has them."""

    def __add__(self, other):
        return apply_op("Add", self, other)

    def __radd__(self, other):
        return apply_op("Add", other, self)

    def __sub__(self, other):
        return apply_op("Subtract", self, other)

    def __rsub__(self, other):
        return apply_op("Subtract", other, self)

    def __mul__(self, other):
        return apply_op("Multiply", self, other)

    def __rmul__(self, other):
        return apply_op("Multiply", other, self)

    def __truediv__(self, other):
        return apply_op("TrueDivide", self, other)

    def __rtruediv__(self, other):
        return apply_op("TrueDivide", other, self)

    def __pow__(self, other):
        return apply_op("Power", self, other)

    def __neg__(self):
        return apply_op("Negative", self)

    # comparisons give 1.0 / 0.0 tensors (``ops.where(h > 0, h, 0.0)`` in Keras); == and != keep Python's
    # identity meaning (graphs look tensors up in lists and dicts)
    def __gt__(self, other):
        return apply_op("Greater", self, other)

    def __ge__(self, other):
        return apply_op("GreaterEqual", self, other)

    def __lt__(self, other):
        return apply_op("Less", self, other)

    def __le__(self, other):
        return apply_op("LessEqual", self, other)

    def __floordiv__(self, other):
        return apply_op("FloorDivide", self, other)

    def __rfloordiv__(self, other):
        return apply_op("FloorDivide", other, self)

    def __mod__(self, other):
        return apply_op("Mod", self, other)

    def __rmod__(self, other):
        return apply_op("Mod", other, self)

    def __abs__(self):
        return apply_op("Absolute", self)

    def __matmul__(self, other):
        return apply_op("Matmul", self, other)

    def __rmatmul__(self, other):
        return apply_op("Matmul", other, self)
