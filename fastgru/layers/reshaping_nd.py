"""Rows and columns (and frames) added, removed or repeated around a CRNN's 2-D front or a video model's 3-D one,
Keras 3's ``ZeroPadding2D``/``3D``, ``Cropping2D``/``3D`` and ``UpSampling2D`` (nearest)/``3D``: (B, H, W, C) or
(B, D, H, W, C) inputs (``channels_first``: (B, C, H, W), (B, C, D, H, W)). Masks end here, as in Keras."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import UnsupportedKerasFeature
from .channels import ChannelsLayout, data_format_of
from .registry import NONE, Anything, IntTuple, KerasContract, StrOptions, register_layer
from .reshaping import _Rearrange


def edge_pairs(layer, option: str, value, rank: int = 2) -> tuple[tuple[int, int], ...]:
    """Keras's ``n``, ``(n_axis, ...)`` or ``((before, after), ...)`` (one entry per spatial axis) as the last form."""
    def count(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0

    def pair(v) -> bool:
        return isinstance(v, (list, tuple)) and len(v) == 2 and all(count(e) for e in v)

    if count(value):
        return ((int(value),) * 2,) * rank
    if isinstance(value, (list, tuple)) and len(value) == rank:
        if all(count(v) for v in value):
            return tuple((int(v),) * 2 for v in value)
        if all(pair(v) for v in value):
            return tuple((int(v[0]), int(v[1])) for v in value)
    axes = "(rows, columns)" if rank == 2 else "(depth, rows, columns)"
    pairs = "((top, bottom), (left, right))" if rank == 2 else "((front, back), (top, bottom), (left, right))"
    raise ValueError(f"{type(layer).__name__} {layer.name!r}: {option} must be a non-negative integer, one per axis "
                     f"{axes} or a pair per axis {pairs}, received {value!r}")


class _Edges(ChannelsLayout, _Rearrange):
    """What the 2-D and 3-D layers share: ``rank`` spatial axes, channels last or first."""

    parameter_constraints = {"data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}
    contract_example = {"inputs": [(5, 4, 2)]}

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(data_format=data_format)
        self.data_format = data_format_of(self, self.data_format)

    @property
    def _axes(self) -> tuple[int, ...]:
        return self._spatial_axes()

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape, self.rank + 2)
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

    def _index(self, *spatial) -> tuple:
        """The index of an array in the layer's layout that takes ``spatial`` (one slice per spatial axis)."""
        return (slice(None),) * (2 if self._first else 1) + spatial

    def _inner(self, shape, edges) -> tuple:
        """One slice per spatial axis: the positions between the (before, after) ``edges`` of ``shape``."""
        return tuple(slice(before, shape[a] - after) for a, (before, after) in zip(self._axes, edges))


class _ZeroPadding(_Edges):
    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = edge_pairs(self, "padding", padding, self.rank)

    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] + sum(p) for a, p in zip(self._axes, self.padding)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        widths = [(0, 0)] * x.ndim
        for axis, pads in zip(self._axes, self.padding):
            widths[axis] = pads
        return np.pad(x, widths), None

    def backward(self, dy, cache, need_dx: bool = True):
        dy = np.asarray(dy)
        return (dy[self._index(*self._inner(dy.shape, self.padding))] if need_dx else None), []

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class _Cropping(_Edges):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = edge_pairs(self, "cropping", cropping, self.rank)

    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] - sum(c) for a, c in zip(self._axes, self.cropping)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        if any(n <= 0 for n in self._lengths(x.shape)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: cropping {self.cropping} leaves nothing of inputs "
                             f"of shape {x.shape}")
        return x[self._index(*self._inner(x.shape, self.cropping))], x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        dx = np.zeros(cache, dy.dtype)
        dx[self._index(*self._inner(cache, self.cropping))] = dy
        return dx, []

    def get_config(self) -> dict:
        return {**super().get_config(), "cropping": self.cropping, "data_format": self.data_format}


class _UpSampling(_Edges):
    def _lengths(self, shape):
        return [None if shape[a] is None else shape[a] * s for a, s in zip(self._axes, self.size)]

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        for axis, size in zip(self._axes, self.size):
            x = np.repeat(x, size, axis=axis)
        return x, None

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        shape = list(dy.shape)
        for axis, size in sorted(zip(self._axes, self.size), reverse=True):  # (from the last: earlier axes stay put)
            shape[axis:axis + 1] = [dy.shape[axis] // size, size]
        summed = tuple(axis + i + 1 for i, axis in enumerate(self._axes))
        return dy.reshape(shape).sum(axis=summed), []

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


@register_layer
class ZeroPadding2D(_ZeroPadding):
    """Zero rows and columns around each image: ``padding`` = n, (rows, columns) or ((top, bottom), (left, right))."""

    keras = KerasContract(names=("ZeroPadding2D",))
    parameter_constraints = {**_Edges.parameter_constraints, "padding": [Anything()]}
    contract_example = {"kwargs": {"padding": ((1, 0), (2, 1))}, "inputs": [(5, 4, 2)]}

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


@register_layer
class ZeroPadding3D(_ZeroPadding):
    """Zero frames, rows and columns around each volume: ``padding`` = n, (depth, rows, columns) or a (before,
    after) pair per axis."""

    rank = 3
    keras = KerasContract(names=("ZeroPadding3D",))
    parameter_constraints = ZeroPadding2D.parameter_constraints
    contract_example = {"kwargs": {"padding": ((1, 0), (0, 2), (1, 1))}, "inputs": [(2, 3, 2, 2)]}

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


@register_layer
class Cropping2D(_Cropping):
    """Rows and columns removed at the edges: ``cropping`` = n, (rows, columns) or ((top, bottom), (left, right))."""

    keras = KerasContract(names=("Cropping2D",))
    parameter_constraints = {**_Edges.parameter_constraints, "cropping": [Anything()]}
    contract_example = {"kwargs": {"cropping": ((1, 0), (0, 2))}, "inputs": [(5, 4, 2)]}

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


@register_layer
class Cropping3D(_Cropping):
    """Frames, rows and columns removed at the edges: ``cropping`` = n, (depth, rows, columns) or a (before,
    after) pair per axis."""

    rank = 3
    keras = KerasContract(names=("Cropping3D",))
    parameter_constraints = Cropping2D.parameter_constraints
    contract_example = {"kwargs": {"cropping": ((1, 0), (0, 1), (1, 1))}, "inputs": [(3, 3, 4, 2)]}

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


@register_layer
class UpSampling2D(_UpSampling):
    """Each row repeated ``size[0]`` times and each column ``size[1]`` times (``interpolation="nearest"``)."""

    keras = KerasContract(names=("UpSampling2D",))
    parameter_constraints = {**_Edges.parameter_constraints, "size": [IntTuple(2)], "interpolation": [Anything()]}
    contract_example = {"kwargs": {"size": (2, 3)}, "inputs": [(3, 2, 2)]}

    def __init__(self, size=(2, 2), data_format=None, interpolation: str = "nearest", **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self._options(size=size, interpolation=interpolation)
        if interpolation != "nearest":
            raise UnsupportedKerasFeature(f"UpSampling2D {self.name!r}: interpolation={interpolation!r} is not "
                                          "supported (fastgru has 'nearest')")

    def get_config(self) -> dict:
        return {**super().get_config(), "interpolation": self.interpolation}


@register_layer
class UpSampling3D(_UpSampling):
    """Each frame, row and column repeated ``size`` = (depth, rows, columns) times."""

    rank = 3
    keras = KerasContract(names=("UpSampling3D",))
    parameter_constraints = {**_Edges.parameter_constraints, "size": [IntTuple(3)]}
    contract_example = {"kwargs": {"size": (1, 2, 3)}, "inputs": [(2, 3, 2, 2)]}

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self._options(size=size)
