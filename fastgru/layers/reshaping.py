"""Shape layers, Keras 3 semantics: ``RepeatVector``, ``Reshape``, ``Permute``, ``ZeroPadding1D``,
``Cropping1D`` and ``UpSampling1D``. Each is a NumPy view or copy, its gradient the inverse
rearrangement; none carries a mask on (as Keras)."""

from __future__ import annotations

import math

import numpy as np

from .base import Layer
from .registry import NONE, Integer, IntTuple, KerasContract, Shape, StrOptions, register_layer, validate_params


class _Rearrange(Layer):
    """A layer without weights that moves values around."""

    def compute_mask(self, x, mask=None):
        return None

    def _options(self, **params):
        self.__dict__.update(validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                             params))

    def _check_rank(self, shape, rank: int) -> None:
        if len(shape) != rank:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank {rank}, received shape "
                             f"{tuple(shape)}")

    def _array(self, x) -> np.ndarray:
        """``x`` of the rank the layer is built for (its sizes may differ, as in Keras: a layer shared by sequences
        of other lengths; the rearrangement itself refuses sizes it cannot take)."""
        x = np.asarray(x)
        if x.ndim != len(self.input_shape):
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input shape {self.input_shape}, received "
                             f"shape {x.shape}")
        return x

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]


@register_layer
class RepeatVector(_Rearrange):
    """(B, D) -> (B, n, D): the vector repeated ``n`` times."""

    keras = KerasContract(names=("RepeatVector",))
    parameter_constraints = {"n": [Integer(1)]}
    contract_example = {"inputs": [(4,)]}

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        self._options(n=n)

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape, 2)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, dy, cache, need_dx: bool = True):
        return (np.asarray(dy).sum(axis=1) if need_dx else None), []

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}


@register_layer
class Reshape(_Rearrange):
    """(B, ...) -> (B, *target_shape); one entry of target_shape may be -1 (inferred)."""

    keras = KerasContract(names=("Reshape",))
    parameter_constraints = {"target_shape": [Shape(allow_minus_one=True)]}
    contract_example = {"kwargs": {"target_shape": (10, 2)}}

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self._options(target_shape=target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape {self.name!r}: at most one entry of target_shape may be -1, received "
                             f"{self.target_shape}")

    def compute_output_shape(self, input_shape: tuple):
        size = None if any(d is None for d in input_shape[1:]) else math.prod(input_shape[1:])
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size is None:
                return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape input shape {tuple(input_shape)} into "
                                 f"{self.target_shape}")
            return (input_shape[0],) + tuple(size // known if d == -1 else d for d in self.target_shape)
        if size is not None and size != known:
            raise ValueError(f"Reshape {self.name!r}: the input's {size} values per sample do not fit "
                             f"target_shape {self.target_shape}")
        return (input_shape[0],) + tuple(self.target_shape)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        try:
            return x.reshape((x.shape[0],) + tuple(self.target_shape)), x.shape
        except ValueError:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape {x.shape} into "
                             f"{self.target_shape}") from None

    def backward(self, dy, cache, need_dx: bool = True):
        return (np.asarray(dy).reshape(cache) if need_dx else None), []

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": self.target_shape}


@register_layer
class Permute(_Rearrange):
    """Reorders the non-batch axes: ``dims`` is a permutation of 1..rank-1 (1-based, as Keras)."""

    keras = KerasContract(names=("Permute",))
    parameter_constraints = {"dims": [Shape()]}
    contract_example = {"kwargs": {"dims": (2, 1)}}

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self._options(dims=dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute {self.name!r}: dims should be a permutation of 1..{len(self.dims)}, received "
                             f"{self.dims}")

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape, len(self.dims) + 1)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        return np.ascontiguousarray(np.transpose(x, (0,) + self.dims)), None

    def backward(self, dy, cache, need_dx: bool = True):
        return (np.ascontiguousarray(np.transpose(dy, np.argsort((0,) + self.dims))) if need_dx else None), []

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": self.dims}


class _TimeEdges(_Rearrange):
    """Layers that add or remove steps at the two ends of the time axis."""

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape, 3)
        super().build(input_shape)


@register_layer
class ZeroPadding1D(_TimeEdges):
    """Zeros added before and after the time axis: ``padding`` = n or (left, right); the time axis is the last
    with ``data_format="channels_first"`` ((B, C, T))."""

    keras = KerasContract(names=("ZeroPadding1D",))
    parameter_constraints = {"padding": [IntTuple(1, low=0), IntTuple(2, low=0)],
                             "data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._options(padding=padding, data_format=data_format)
        self.data_format = self.data_format or "channels_last"
        if len(self.padding) == 1:
            self.padding = self.padding * 2

    @property
    def _time_axis(self) -> int:
        return 2 if self.data_format == "channels_first" else 1

    def compute_output_shape(self, input_shape: tuple):
        shape = list(input_shape)
        steps = shape[self._time_axis]
        shape[self._time_axis] = None if steps is None else steps + sum(self.padding)
        return tuple(shape)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        widths = [(0, 0)] * 3
        widths[self._time_axis] = self.padding
        return np.pad(x, widths), None

    def backward(self, dy, cache, need_dx: bool = True):
        left, right = self.padding
        dy = np.asarray(dy)
        if not need_dx:
            return None, []
        kept = [slice(None)] * 3
        kept[self._time_axis] = slice(left, dy.shape[self._time_axis] - right)
        return dy[tuple(kept)], []

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


@register_layer
class Cropping1D(_TimeEdges):
    """Steps removed from the start and end of the time axis: ``cropping`` = n or (start, end)."""

    keras = KerasContract(names=("Cropping1D",))
    parameter_constraints = {"cropping": [IntTuple(1, low=0), IntTuple(2, low=0)]}

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self._options(cropping=cropping)
        if len(self.cropping) == 1:
            self.cropping = self.cropping * 2

    def compute_output_shape(self, input_shape: tuple):
        steps = input_shape[1]
        if steps is not None and steps - sum(self.cropping) <= 0:
            raise ValueError(f"Cropping1D {self.name!r}: cropping {self.cropping} leaves no steps of {steps}")
        return (input_shape[0], None if steps is None else steps - sum(self.cropping), input_shape[2])

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        start, end = self.cropping
        if x.shape[1] - start - end <= 0:
            raise ValueError(f"Cropping1D {self.name!r}: cropping {self.cropping} leaves no steps of {x.shape[1]}")
        return x[:, start:x.shape[1] - end], x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dx = np.zeros(cache, np.asarray(dy).dtype)
        start = self.cropping[0]
        dx[:, start:start + dy.shape[1]] = dy
        return dx, []

    def get_config(self) -> dict:
        return {**super().get_config(), "cropping": self.cropping}


@register_layer
class UpSampling1D(_TimeEdges):
    """Each step repeated ``size`` times along the time axis."""

    keras = KerasContract(names=("UpSampling1D",))
    parameter_constraints = {"size": [Integer(1)]}

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self._options(size=size)

    def compute_output_shape(self, input_shape: tuple):
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else steps * self.size, input_shape[2])

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        return np.repeat(x, self.size, axis=1), None

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        return dy.reshape(dy.shape[0], dy.shape[1] // self.size, self.size, dy.shape[2]).sum(axis=2), []

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size}
