"""Rows and columns added, removed or repeated around a CRNN's 2-D front, Keras 3's ``ZeroPadding2D``,
``Cropping2D`` and ``UpSampling2D`` (nearest): (B, H, W, C) inputs (``channels_first``: (B, C, H, W)). Masks end
here, as in Keras."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import UnsupportedKerasFeature
from .channels import data_format_of
from .registry import NONE, Anything, IntTuple, KerasContract, StrOptions, register_layer
from .reshaping import _Rearrange


def edge_pairs(layer, option: str, value) -> tuple[tuple[int, int], tuple[int, int]]:
    """Keras's ``n``, ``(rows, columns)`` or ``((top, bottom), (left, right))`` as the last form."""
    def count(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    if count(value):
        return (int(value),) * 2, (int(value),) * 2
    if isinstance(value, (list, tuple)) and len(value) == 2:
        if all(count(v) for v in value):
            return (int(value[0]),) * 2, (int(value[1]),) * 2
        if all(isinstance(v, (list, tuple)) and len(v) == 2 and all(count(e) for e in v) for v in value):
            return (int(value[0][0]), int(value[0][1])), (int(value[1][0]), int(value[1][1]))
    raise ValueError(f"{type(layer).__name__} {layer.name!r}: {option} must be a non-negative integer, a pair of them "
                     f"(rows, columns) or a pair of pairs ((top, bottom), (left, right)), received {value!r}")


class _Edges2D(_Rearrange):
    parameter_constraints = {"data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}
    contract_example = {"inputs": [(5, 4, 2)]}

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(data_format=data_format)
        self.data_format = data_format_of(self, self.data_format)

    @property
    def _axes(self) -> tuple[int, int]:
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape, 4)
        for axis, length in zip(self._axes, self._lengths(input_shape)):
            if length is not None and length <= 0:
                raise ValueError(f"{type(self).__name__} {self.name!r} leaves no positions on axis {axis} of inputs "
                                 f"of shape {tuple(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        shape = list(input_shape)
        for axis, length in zip(self._axes, self._lengths(input_shape)):
            shape[axis] = length
        return tuple(shape)

    def _index(self, rows, columns) -> tuple:
        return (slice(None), slice(None), rows, columns) if self.data_format == "channels_first" else \
            (slice(None), rows, columns, slice(None))


@register_layer
class ZeroPadding2D(_Edges2D):
    """Zero rows and columns around each image: ``padding`` = n, (rows, columns) or ((top, bottom), (left, right))."""

    keras = KerasContract(names=("ZeroPadding2D",))
    parameter_constraints = {**_Edges2D.parameter_constraints, "padding": [Anything()]}

    contract_example = {"kwargs": {"padding": ((1, 0), (2, 1))}, "inputs": [(5, 4, 2)]}

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = edge_pairs(self, "padding", padding)

    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] + sum(p) for a, p in zip(self._axes, self.padding)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        widths = [(0, 0)] * 4
        widths[self._axes[0]], widths[self._axes[1]] = self.padding
        return np.pad(x, widths), None

    def backward(self, dy, cache, need_dx: bool = True):
        dy = np.asarray(dy)
        (top, bottom), (left, right) = self.padding
        h, w = dy.shape[self._axes[0]], dy.shape[self._axes[1]]
        return (dy[self._index(slice(top, h - bottom), slice(left, w - right))] if need_dx else None), []

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


@register_layer
class Cropping2D(_Edges2D):
    """Rows and columns removed at the edges: ``cropping`` = n, (rows, columns) or ((top, bottom), (left, right))."""

    keras = KerasContract(names=("Cropping2D",))
    parameter_constraints = {**_Edges2D.parameter_constraints, "cropping": [Anything()]}

    contract_example = {"kwargs": {"cropping": ((1, 0), (0, 2))}, "inputs": [(5, 4, 2)]}

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = edge_pairs(self, "cropping", cropping)

    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] - sum(c) for a, c in zip(self._axes, self.cropping)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        (top, bottom), (left, right) = self.cropping
        h, w = x.shape[self._axes[0]], x.shape[self._axes[1]]
        if h - top - bottom <= 0 or w - left - right <= 0:
            raise ValueError(f"Cropping2D {self.name!r}: cropping {self.cropping} leaves nothing of inputs of shape "
                             f"{x.shape}")
        return x[self._index(slice(top, h - bottom), slice(left, w - right))], x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        (top, bottom), (left, right) = self.cropping
        dx = np.zeros(cache, dy.dtype)
        h, w = cache[self._axes[0]], cache[self._axes[1]]
        dx[self._index(slice(top, h - bottom), slice(left, w - right))] = dy
        return dx, []

    def get_config(self) -> dict:
        return {**super().get_config(), "cropping": self.cropping, "data_format": self.data_format}


@register_layer
class UpSampling2D(_Edges2D):
    """Each row repeated ``size[0]`` times and each column ``size[1]`` times (``interpolation="nearest"``)."""

    keras = KerasContract(names=("UpSampling2D",))
    parameter_constraints = {**_Edges2D.parameter_constraints, "size": [IntTuple(2)], "interpolation": [Anything()]}

    contract_example = {"kwargs": {"size": (2, 3)}, "inputs": [(3, 2, 2)]}

    def __init__(self, size=(2, 2), data_format=None, interpolation: str = "nearest", **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self._options(size=size, interpolation=interpolation)
        if interpolation != "nearest":
            raise UnsupportedKerasFeature(f"UpSampling2D {self.name!r}: interpolation={interpolation!r} is not "
                                          "supported (fastgru has 'nearest')")

    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] * s for a, s in zip(self._axes, self.size)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        return np.repeat(np.repeat(x, self.size[0], axis=self._axes[0]), self.size[1], axis=self._axes[1]), None

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        a, b = self._axes
        shape = list(dy.shape)
        shape[a:a + 1] = [dy.shape[a] // self.size[0], self.size[0]]
        shape[b + 1:b + 2] = [dy.shape[b] // self.size[1], self.size[1]]
        return dy.reshape(shape).sum(axis=(a + 1, b + 2)), []

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}
