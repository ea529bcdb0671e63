"""2-D pooling, Keras 3's ``MaxPooling2D``, ``AveragePooling2D``, ``GlobalAveragePooling2D`` and
``GlobalMaxPooling2D``: (B, H, W, C) inputs (``channels_first``: (B, C, H, W)), as in a CRNN's convolutional front.

A window pass is one strided maximum (or sum) per window position over the (padded) input.
``padding="same"`` pads with -inf for the maximum and averages only the real positions of a window, as
TensorFlow does; a maximum's gradient flows to the first maximum of its window (row by row). Masks are not
carried on (Keras's pooling layers drop them).
"""

from __future__ import annotations

import numpy as np

from .base import Layer, compute_dtype
from .conv2d import (
    data_format_of,
    from_channels_last,
    output_shape_2d,
    pad_2d,
    spatial_shape,
    tap_slices,
    to_channels_last,
)
from .registry import NONE, Boolean, IntTuple, KerasContract, StrOptions, register_layer, validate_params


def _check_rank4(layer: Layer, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects input of rank 4 (batch, rows, columns, "
                         f"channels; channels first with data_format='channels_first'), received shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{type(layer).__name__} {layer.name!r} expects a numeric input array, received dtype "
                        f"{x.dtype}")
    return x.astype(compute_dtype(x), copy=False)


class _Pooling2D(Layer):
    parameter_constraints = {
        "pool_size": [IntTuple(2)],
        "strides": [NONE, IntTuple(2)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
    }
    contract_example = {"kwargs": {"pool_size": (2, 3), "strides": (1, 2), "padding": "same"}, "inputs": [(5, 6, 2)]}

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints, dict(
            pool_size=pool_size, strides=strides, padding=padding, data_format=data_format))
        self.pool_size = options["pool_size"]
        self.strides = options["strides"] if options["strides"] is not None else self.pool_size
        self.padding = options["padding"]
        self.data_format = data_format_of(self, options["data_format"])

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank 4, received shape "
                             f"{tuple(input_shape)}")
        if 0 in self.compute_output_shape(input_shape)[1:]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.pool_size} window leaves no output from "
                             f"inputs of shape {tuple(input_shape)} (as in Keras, refused)")
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        channels = spatial_shape(input_shape, self.data_format)[2]
        return output_shape_2d(input_shape, self.data_format, self.pool_size, self.strides, self.padding, (1, 1),
                               channels)

    def compute_mask(self, x, mask):
        return None

    def _padded(self, x: np.ndarray, fill: float):
        """(padded input, (H_out, W_out), (top, left)) of a channels-last input."""
        if 0 in self.compute_output_shape(x.shape)[1:3] and 0 not in x.shape[1:3]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.pool_size} window leaves no output from "
                             f"inputs of shape {x.shape}")
        return pad_2d(x, self.pool_size, self.strides, self.padding, (1, 1), fill)

    def _taps(self, out_hw):
        """Per window position (row by row), the strided (rows, columns) of the padded input it reads."""
        return [tap_slices(i, j, self.strides, (1, 1), out_hw)
                for i in range(self.pool_size[0]) for j in range(self.pool_size[1])]

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      data_format=self.data_format)
        return config


@register_layer
class MaxPooling2D(_Pooling2D):
    """The maximum over each window (a gradient flows to the first maximum of its window)."""

    keras = KerasContract(names=("MaxPooling2D", "MaxPool2D"))

    def forward(self, x, mask=None, training: bool = True):
        x = to_channels_last(_check_rank4(self, x), self.data_format)
        xp, out_hw, corner = self._padded(x, -np.inf)
        y = None
        for rows, columns in self._taps(out_hw):  # (one strided maximum per window position)
            y = xp[:, rows, columns, :].copy() if y is None else np.maximum(y, xp[:, rows, columns, :], out=y)
        return from_channels_last(y, self.data_format), (x.shape, xp, y, out_hw, corner)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xp, y, out_hw, (top, left) = cache
        if not need_dx:
            return None, []
        dy = to_channels_last(np.asarray(dy), self.data_format)
        dxp = np.zeros(xp.shape, dy.dtype)
        taken = np.zeros(y.shape, bool)
        for rows, columns in self._taps(out_hw):  # (the first maximum of each window, row by row, takes it)
            first = (xp[:, rows, columns, :] == y) & ~taken
            dxp[:, rows, columns, :] += np.where(first, dy, dy.dtype.type(0))
            taken |= first
        return from_channels_last(dxp[:, top:top + x_shape[1], left:left + x_shape[2]], self.data_format), []


@register_layer
class AveragePooling2D(_Pooling2D):
    """The mean over each window; with ``padding="same"`` the mean of the window's real positions."""

    keras = KerasContract(names=("AveragePooling2D", "AvgPool2D"))

    def __init__(self, pool_size, strides=None, padding: str = "valid", data_format=None, **kwargs):
        # pool_size has no default here, as in Keras
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)

    def _counts(self, x_shape, out_hw, dtype) -> np.ndarray:
        """(1, H_out, W_out, 1): the real positions in each window."""
        ones = np.ones((1,) + tuple(x_shape[1:3]) + (1,), dtype)
        pp, _, _ = pad_2d(ones, self.pool_size, self.strides, self.padding, (1, 1))
        return sum(pp[:, rows, columns, :] for rows, columns in self._taps(out_hw))

    def forward(self, x, mask=None, training: bool = True):
        x = to_channels_last(_check_rank4(self, x), self.data_format)
        xp, out_hw, corner = self._padded(x, 0.0)
        total = None
        for rows, columns in self._taps(out_hw):
            total = xp[:, rows, columns, :].copy() if total is None else np.add(total, xp[:, rows, columns, :],
                                                                                out=total)
        counts = self._counts(x.shape, out_hw, x.dtype)
        return from_channels_last(total / counts, self.data_format), (x.shape, xp.shape, counts, out_hw, corner)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, padded_shape, counts, out_hw, (top, left) = cache
        if not need_dx:
            return None, []
        share = to_channels_last(np.asarray(dy), self.data_format) / counts
        dxp = np.zeros(padded_shape, share.dtype)
        for rows, columns in self._taps(out_hw):
            dxp[:, rows, columns, :] += share
        return from_channels_last(dxp[:, top:top + x_shape[1], left:left + x_shape[2]], self.data_format), []


class _GlobalPooling2D(Layer):
    parameter_constraints = {"data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
                             "keepdims": [Boolean()]}
    contract_example = {"inputs": [(3, 4, 2)]}

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                  {"data_format": data_format, "keepdims": keepdims})
        self.data_format = data_format_of(self, options["data_format"])
        self.keepdims = options["keepdims"]

    @property
    def _axes(self) -> tuple[int, int]:
        return (2, 3) if self.data_format == "channels_first" else (1, 2)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank 4, received shape "
                             f"{tuple(input_shape)}")
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        if self.keepdims:
            return tuple(1 if k in self._axes else d for k, d in enumerate(input_shape))
        return tuple(d for k, d in enumerate(input_shape) if k not in self._axes)

    def compute_mask(self, x, mask):
        return None

    def _input(self, x) -> np.ndarray:
        x = _check_rank4(self, x)
        if 0 in (x.shape[self._axes[0]], x.shape[self._axes[1]]):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs at least one position to pool, received "
                             f"shape {x.shape}")
        return x

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


@register_layer
class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean over rows and columns: (B, H, W, C) -> (B, C) (``keepdims``: (B, 1, 1, C))."""

    keras = KerasContract(names=("GlobalAveragePooling2D", "GlobalAvgPool2D"))

    def forward(self, x, mask=None, training: bool = True):
        x = self._input(x)
        return x.mean(axis=self._axes, keepdims=self.keepdims), x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        x_shape = cache
        dy = np.asarray(dy)
        count = x_shape[self._axes[0]] * x_shape[self._axes[1]]
        dy = dy.reshape(tuple(1 if k in self._axes else d for k, d in enumerate(x_shape)))
        return np.broadcast_to(dy / count, x_shape).copy(), []


@register_layer
class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum over rows and columns (a gradient flows to the first maximum, row by row)."""

    keras = KerasContract(names=("GlobalMaxPooling2D", "GlobalMaxPool2D"))

    def forward(self, x, mask=None, training: bool = True):
        x = self._input(x)
        last = to_channels_last(x, self.data_format)
        flat = last.reshape(last.shape[0], -1, last.shape[3])
        arg = flat.argmax(axis=1)  # (B, C)
        y = np.take_along_axis(flat, arg[:, None, :], axis=1)[:, 0, :]
        if self.keepdims:
            y = y[:, None, None, :] if self.data_format == "channels_last" else y[:, :, None, None]
        return y, (last.shape, arg)

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        shape, arg = cache
        dy = np.asarray(dy).reshape(shape[0], shape[3])
        flat = np.zeros((shape[0], shape[1] * shape[2], shape[3]), dy.dtype)
        np.put_along_axis(flat, arg[:, None, :], dy[:, None, :], axis=1)
        return from_channels_last(flat.reshape(shape), self.data_format), []
