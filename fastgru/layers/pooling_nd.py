"""2-D and 3-D pooling, Keras 3's ``MaxPooling2D``/``3D``, ``AveragePooling2D``/``3D``,
``GlobalAveragePooling2D``/``3D`` and ``GlobalMaxPooling2D``/``3D``: (B, *spatial, C) inputs (``channels_first``:
(B, C, *spatial)), as in a CRNN's convolutional front or after a ConvLSTM2D (``MaxPooling3D(pool_size=(1, 2, 2))``
over (frames, rows, columns)).

A window pass is one strided maximum (or sum) per window position over the (padded) input.
``padding="same"`` pads with -inf for the maximum and averages only the real positions of a window, as
TensorFlow does; a maximum's gradient flows to the first maximum of its window (positions in row-major order).
Masks are not carried on (Keras's pooling layers drop them).
"""

from __future__ import annotations

import itertools

import numpy as np

from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .conv import conv_output_length, padding_amounts
from .registry import NONE, Boolean, IntTuple, KerasContract, StrOptions, register_layer, validate_params


class _Spatial(ChannelsLayout, Layer):
    """What the pooling layers share: ``rank`` spatial axes, channels last or first."""

    def _check(self, x) -> np.ndarray:
        """``x`` as a channels-last array of the compute dtype."""
        return self._channels_last_input(x)

    def _input(self, x) -> np.ndarray:
        """Channels last, with at least one position on each spatial axis."""
        x = self._check(x)
        if 0 in x.shape[1:-1]:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs at least one position to pool, received "
                             f"shape {np.shape(x)}")
        return x

    def _check_rank(self, input_shape: tuple) -> None:
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank {self.rank + 2}, received "
                             f"shape {tuple(input_shape)}")

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        super().build(input_shape)

    def compute_mask(self, x, mask=None):
        return None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]


class _Pooling(_Spatial):
    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints, dict(
            pool_size=pool_size, strides=strides, padding=padding, data_format=data_format))
        self.pool_size = options["pool_size"]
        self.strides = options["strides"] if options["strides"] is not None else self.pool_size
        self.padding = options["padding"]
        self.data_format = data_format_of(self, options["data_format"])

    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        if 0 in self.compute_output_shape(input_shape)[1:]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.pool_size} window leaves no output from "
                             f"inputs of shape {tuple(input_shape)} (as in Keras, refused)")
        super().build(input_shape)

    def _out_sizes(self, sizes) -> list:
        return [conv_output_length(s, k, self.padding, st, 1) for s, k, st in zip(sizes, self.pool_size, self.strides)]

    def compute_output_shape(self, input_shape: tuple):
        shape = list(input_shape)
        axes = self._spatial_axes()
        for axis, size in zip(axes, self._out_sizes([input_shape[a] for a in axes])):
            shape[axis] = size
        return tuple(shape)

    def _padded(self, x: np.ndarray, fill: float):
        """(padded input, output sizes, leading padding per axis) of a channels-last input."""
        sizes = x.shape[1:-1]
        out = self._out_sizes(sizes)
        if 0 in out and 0 not in sizes:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.pool_size} window leaves no output from "
                             f"inputs of shape {x.shape}")
        widths = [padding_amounts(s, k, self.padding, st, 1) for s, k, st in zip(sizes, self.pool_size, self.strides)]
        if any(a or b for a, b in widths):
            x = np.pad(x, [(0, 0), *widths, (0, 0)], constant_values=fill)
        return x, out, [a for a, _ in widths]

    def _taps(self, out):
        """Per window position (row-major), the index of the padded input it reads for every output position."""
        return [(slice(None), *(slice(t, t + s * (o - 1) + 1, s) for t, s, o in zip(taps, self.strides, out)),
                 slice(None)) for taps in itertools.product(*(range(k) for k in self.pool_size))]

    @staticmethod
    def _crop(dxp: np.ndarray, x_shape, lead) -> np.ndarray:
        return dxp[(slice(None), *(slice(a, a + s) for a, s in zip(lead, x_shape[1:-1])), slice(None))]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      data_format=self.data_format)
        return config


def _pooling_constraints(rank: int) -> dict:
    return {"pool_size": [IntTuple(rank)], "strides": [NONE, IntTuple(rank)],
            "padding": [StrOptions(("valid", "same"), lower=True)],
            "data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}


class _MaxPooling(_Pooling):
    """The maximum over each window (a gradient flows to the first maximum of its window)."""

    def forward(self, x, mask=None, training: bool = True):
        x = self._check(x)
        xp, out, lead = self._padded(x, -np.inf)
        y = None
        for index in self._taps(out):  # (one strided maximum per window position)
            y = xp[index].copy() if y is None else np.maximum(y, xp[index], out=y)
        return self._to_layout(y), (x.shape, xp, y, out, lead)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xp, y, out, lead = cache
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        dy = np.moveaxis(dy, 1, -1) if self.data_format == "channels_first" else dy
        dxp = np.zeros(xp.shape, dy.dtype)
        taken = np.zeros(y.shape, bool)
        for index in self._taps(out):  # (the first maximum of each window takes the gradient)
            first = (xp[index] == y) & ~taken
            dxp[index] += np.where(first, dy, dy.dtype.type(0))
            taken |= first
        return self._to_layout(self._crop(dxp, x_shape, lead)), []


class _AveragePooling(_Pooling):
    """The mean over each window; with ``padding="same"`` the mean of the window's real positions."""

    def __init__(self, pool_size, strides=None, padding: str = "valid", data_format=None, **kwargs):
        # pool_size has no default here, as in Keras
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)

    def _counts(self, x_shape, out, dtype) -> np.ndarray:
        """(1, *out, 1): the real positions in each window."""
        ones, _, _ = self._padded(np.ones((1, *x_shape[1:-1], 1), dtype), 0.0)
        return sum(ones[index] for index in self._taps(out))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check(x)
        xp, out, lead = self._padded(x, 0.0)
        total = None
        for index in self._taps(out):
            total = xp[index].copy() if total is None else np.add(total, xp[index], out=total)
        counts = self._counts(x.shape, out, x.dtype)
        return self._to_layout(total / counts), (x.shape, xp.shape, counts, out, lead)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, padded_shape, counts, out, lead = cache
        if not need_dx:
            return None, []
        dy = np.asarray(dy)
        share = (np.moveaxis(dy, 1, -1) if self.data_format == "channels_first" else dy) / counts
        dxp = np.zeros(padded_shape, share.dtype)
        for index in self._taps(out):
            dxp[index] += share
        return self._to_layout(self._crop(dxp, x_shape, lead)), []


@register_layer
class MaxPooling2D(_MaxPooling):
    """The maximum over each (rows, columns) window."""

    keras = KerasContract(names=("MaxPooling2D", "MaxPool2D"))
    parameter_constraints = _pooling_constraints(2)
    contract_example = {"kwargs": {"pool_size": (2, 3), "strides": (1, 2), "padding": "same"}, "inputs": [(5, 6, 2)]}


@register_layer
class AveragePooling2D(_AveragePooling):
    """The mean over each (rows, columns) window."""

    keras = KerasContract(names=("AveragePooling2D", "AvgPool2D"))
    parameter_constraints = _pooling_constraints(2)
    contract_example = MaxPooling2D.contract_example


@register_layer
class MaxPooling3D(_MaxPooling):
    """The maximum over each (depth, rows, columns) window (``pool_size=(1, 2, 2)``: frames kept apart)."""

    keras = KerasContract(names=("MaxPooling3D", "MaxPool3D"))
    rank = 3
    parameter_constraints = _pooling_constraints(3)
    contract_example = {"kwargs": {"pool_size": (1, 2, 3), "strides": (1, 2, 2), "padding": "same"},
                        "inputs": [(3, 5, 6, 2)]}

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding: str = "valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


@register_layer
class AveragePooling3D(_AveragePooling):
    """The mean over each (depth, rows, columns) window."""

    keras = KerasContract(names=("AveragePooling3D", "AvgPool3D"))
    rank = 3
    parameter_constraints = _pooling_constraints(3)
    contract_example = MaxPooling3D.contract_example


class _GlobalPooling(_Spatial):
    parameter_constraints = {"data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
                             "keepdims": [Boolean()]}

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                  {"data_format": data_format, "keepdims": keepdims})
        self.data_format = data_format_of(self, options["data_format"])
        self.keepdims = options["keepdims"]

    def compute_output_shape(self, input_shape: tuple):
        axes = self._spatial_axes()
        if self.keepdims:
            return tuple(1 if k in axes else d for k, d in enumerate(input_shape))
        return tuple(d for k, d in enumerate(input_shape) if k not in axes)

    def _pooled(self, y: np.ndarray) -> np.ndarray:
        """(B, C) in the layer's output shape (``keepdims``: ones for the spatial axes)."""
        if not self.keepdims:
            return y
        return y.reshape((y.shape[0], y.shape[1]) + (1,) * self.rank) if self.data_format == "channels_first" else \
            y.reshape((y.shape[0],) + (1,) * self.rank + (y.shape[1],))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


class _GlobalAveragePooling(_GlobalPooling):
    """The mean over the spatial axes: (B, *spatial, C) -> (B, C)."""

    def forward(self, x, mask=None, training: bool = True):
        x = self._input(x)
        return self._pooled(x.mean(axis=tuple(range(1, self.rank + 1)))), x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        x_shape = cache
        count = int(np.prod(x_shape[1:-1]))
        dy = np.asarray(dy).reshape(x_shape[0], 1, x_shape[-1])
        dx = np.broadcast_to(dy / count, (x_shape[0], count, x_shape[-1])).reshape(x_shape)
        return self._to_layout(dx), []


class _GlobalMaxPooling(_GlobalPooling):
    """The maximum over the spatial axes (a gradient flows to the first maximum, in row-major order)."""

    def forward(self, x, mask=None, training: bool = True):
        last = self._input(x)
        flat = last.reshape(last.shape[0], -1, last.shape[-1])
        arg = flat.argmax(axis=1)  # (B, C)
        y = np.take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]
        return self._pooled(y), (last.shape, arg)

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        shape, arg = cache
        dy = np.asarray(dy).reshape(shape[0], shape[-1])
        flat = np.zeros((shape[0], int(np.prod(shape[1:-1])), shape[-1]), dy.dtype)
        np.put_along_axis(flat, arg[:, None, :], dy[:, None, :], axis=1)
        return self._to_layout(flat.reshape(shape)), []


@register_layer
class GlobalAveragePooling2D(_GlobalAveragePooling):
    """The mean over rows and columns: (B, H, W, C) -> (B, C) (``keepdims``: (B, 1, 1, C))."""

    keras = KerasContract(names=("GlobalAveragePooling2D", "GlobalAvgPool2D"))
    contract_example = {"inputs": [(3, 4, 2)]}


@register_layer
class GlobalMaxPooling2D(_GlobalMaxPooling):
    """The maximum over rows and columns: (B, H, W, C) -> (B, C)."""

    keras = KerasContract(names=("GlobalMaxPooling2D", "GlobalMaxPool2D"))
    contract_example = {"inputs": [(3, 4, 2)]}


@register_layer
class GlobalAveragePooling3D(_GlobalAveragePooling):
    """The mean over depth, rows and columns: (B, D, H, W, C) -> (B, C)."""

    keras = KerasContract(names=("GlobalAveragePooling3D", "GlobalAvgPool3D"))
    rank = 3
    contract_example = {"inputs": [(2, 3, 4, 2)]}


@register_layer
class GlobalMaxPooling3D(_GlobalMaxPooling):
    """The maximum over depth, rows and columns: (B, D, H, W, C) -> (B, C)."""

    keras = KerasContract(names=("GlobalMaxPooling3D", "GlobalMaxPool3D"))
    rank = 3
    contract_example = {"inputs": [(2, 3, 4, 2)]}
