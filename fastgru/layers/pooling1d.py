"""Windowed 1-D pooling, Keras 3's ``MaxPooling1D`` and ``AveragePooling1D``: (B, T, C) -> (B, T_out, C)
(``data_format="channels_first"``: (B, C, T) -> (B, C, T_out), pooled channels last in between).

A window pass is one reduction over a (B, T_out, pool_size, C) strided view of the (padded) input.
``padding="same"`` pads with -inf for the maximum and averages only the real steps of a window, as
TensorFlow does. Masks are not carried on (Keras's pooling layers drop them).
"""

from __future__ import annotations

import numpy as np

from .base import Layer
from .channels import ChannelsLayout
from .conv import conv_output_length, padding_amounts, windows
from .registry import NONE, IntTuple, KerasContract, StrOptions, register_layer, validate_params


class _Pooling1D(ChannelsLayout, Layer):
    rank = 1
    parameter_constraints = {
        "pool_size": [IntTuple(1)],
        "strides": [NONE, IntTuple(1)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
    }

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints, dict(
            pool_size=pool_size, strides=strides, padding=padding, data_format=data_format))
        self.pool_size = options["pool_size"]
        self.strides = options["strides"] if options["strides"] is not None else self.pool_size
        self.padding = options["padding"]
        self.data_format = options["data_format"] or "channels_last"

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank 3 ({self._layout}), "
                             f"received shape {tuple(input_shape)}")
        if self._sizes(self.compute_output_shape(input_shape)) == (0,):
            raise ValueError(f"{type(self).__name__} {self.name!r}: a window of {self.pool_size[0]} steps leaves no "
                             f"output steps from inputs of {self._sizes(input_shape)[0]} steps (as in Keras, refused)")
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        steps = conv_output_length(self._sizes(input_shape)[0], self.pool_size[0], self.padding, self.strides[0], 1)
        channels = self._channels(input_shape)
        return (input_shape[0], channels, steps) if self._first else (input_shape[0], steps, channels)

    def compute_mask(self, x, mask=None):
        return None

    def _windows(self, x: np.ndarray, fill: float):
        k, s = self.pool_size[0], self.strides[0]
        steps = x.shape[1]
        out = conv_output_length(steps, k, self.padding, s, 1)
        left, right = padding_amounts(steps, k, self.padding, s, 1)
        xp = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=fill) if left or right else x
        return windows(xp, k, s, 1, out), out, left, right

    def _check_input(self, x) -> np.ndarray:
        """``x`` checked (rank 3, numeric), in the compute dtype, channels last."""
        return self._channels_last_input(x)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def _scatter(self, dwin: np.ndarray, x_shape, left: int, right: int) -> np.ndarray:
        """Add window gradients (B, T_out, k, C) back onto the input steps they came from."""
        b, steps, c = x_shape
        k, s = self.pool_size[0], self.strides[0]
        out = dwin.shape[1]
        dxp = np.zeros((b, steps + left + right, c), dwin.dtype)
        for j in range(k):  # one strided add per window position
            dxp[:, j:j + s * (out - 1) + 1:s, :] += dwin[:, :, j, :]
        return dxp[:, left:left + steps, :]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      data_format=self.data_format)
        return config


@register_layer
class MaxPooling1D(_Pooling1D):
    """The maximum over each window (a gradient flows to the first maximum of its window)."""

    keras = KerasContract(names=("MaxPooling1D", "MaxPool1D"))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        win, out, left, right = self._windows(x, -np.inf)
        arg = win.argmax(axis=2)  # (B, T_out, C)
        y = np.take_along_axis(win, arg[:, :, None, :], axis=2)[:, :, 0, :]
        return self._to_layout(np.ascontiguousarray(y)), (x.shape, arg, left, right)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, arg, left, right = cache
        if not need_dx:
            return None, []
        dy = self._from_layout(np.asarray(dy))
        k = self.pool_size[0]
        dwin = (np.arange(k)[None, None, :, None] == arg[:, :, None, :]) * dy[:, :, None, :]
        return self._to_layout(self._scatter(dwin.astype(dy.dtype, copy=False), x_shape, left, right)), []


@register_layer
class AveragePooling1D(_Pooling1D):
    """The mean over each window; with ``padding="same"`` the mean of the window's real steps."""

    keras = KerasContract(names=("AveragePooling1D", "AvgPool1D"))

    def __init__(self, pool_size, strides=None, padding: str = "valid", data_format=None, **kwargs):
        # pool_size has no default here, as in Keras
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        win, out, left, right = self._windows(x, 0.0)
        if left or right:
            ones = np.ones((1, x.shape[1], 1), x.dtype)
            counts = windows(np.pad(ones, ((0, 0), (left, right), (0, 0))), self.pool_size[0], self.strides[0], 1,
                             out).sum(axis=2)  # (1, T_out, 1): the real steps in each window
        else:
            counts = np.full((1, out, 1), self.pool_size[0], x.dtype)
        y = win.sum(axis=2) / counts
        return self._to_layout(y), (x.shape, counts, left, right)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, counts, left, right = cache
        if not need_dx:
            return None, []
        share = self._from_layout(np.asarray(dy)) / counts  # (B, T_out, C)
        dwin = np.broadcast_to(share[:, :, None, :], share.shape[:2] + (self.pool_size[0],) + share.shape[2:])
        return self._to_layout(self._scatter(dwin, x_shape, left, right)), []
