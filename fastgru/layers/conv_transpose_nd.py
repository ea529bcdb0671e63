"""2-D and 3-D transposed convolutions, Keras 3's ``Conv2DTranspose`` and ``Conv3DTranspose``: (B, *S, C_in) ->
(B, *S_out, filters) (``channels_first``: (B, C, *S), turned channels last around the computation). The decoder of
a convolutional autoencoder, or the head that draws frames back to full size after a ConvLSTM2D.

Each input position ``p`` adds ``x[p] @ kernel[t]^T`` to output position ``p*stride + t*dilation - pad`` for every
kernel tap ``t`` (the input gradient of the ``Conv2D``/``Conv3D`` with the same options): one GEMM of the
(B·prod(S), C_in) rows against every tap's kernel at once, then one strided add per tap into an output buffer that
covers every position a tap reaches, cropped to the output. Per axis, the output length and placement are those
of ``Conv1DTranspose`` (Keras's TensorFlow backend: ``conv_transpose.transpose_output_length``, the padding split as
TensorFlow splits it). Backward: the taps gathered from the output gradient (the input gradient, one GEMM) and
the kernel gradient as one (C_in, taps·filters) GEMM.

Weights, in Keras's order: ``kernel`` (*kernel_size, filters, C_in), ``bias`` (filters,).
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import activations
from .._threads import threaded_matmul
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .conv import _TRAINING_ONLY
from .conv_transpose import transpose_output_length
from .registry import (
    NONE,
    ActivationName,
    Boolean,
    InitializerSpec,
    Integer,
    IntTuple,
    KerasContract,
    StrOptions,
    register_layer,
    validate_params,
)


def _constraints(rank: int) -> dict:
    return {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(rank)],
        "strides": [IntTuple(rank)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "output_padding": [NONE, IntTuple(rank, low=0)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
        "dilation_rate": [IntTuple(rank)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "kernel_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }


class _ConvTransposeND(ChannelsLayout, Layer):
    """What Conv2DTranspose and Conv3DTranspose share (``rank`` spatial axes)."""

    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        label = f"{type(self).__name__} {self.name!r}"
        self.__dict__.update(validate_params(label, self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
            output_padding=output_padding, data_format=data_format, dilation_rate=dilation_rate,
            activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer)))
        self.data_format = data_format_of(self, self.data_format)
        self.activation = activations.canonical_name(self.activation)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{label}: strides > 1 together with dilation_rate > 1 is not supported (as in Keras), "
                             f"received strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"{label}: output_padding must be less than strides on every axis (as in Keras), "
                             f"received output_padding={self.output_padding}, strides={self.strides}")
        self._rng = make_rng(None)

    # ---- geometry, per spatial axis ------------------------------------------------------------
    def _out_sizes(self, sizes) -> list:
        pads = self.output_padding or (None,) * self.rank
        return [transpose_output_length(n, k, self.padding, s, d, p) for n, k, s, d, p in
                zip(sizes, self.kernel_size, self.strides, self.dilation_rate, pads)]

    def _geometry(self, sizes):
        """(output sizes, the positions dropped before each axis's output, the full buffer's sizes)."""
        out = self._out_sizes(sizes)
        left, full = [], []
        for n, o, k, s, d in zip(sizes, out, self.kernel_size, self.strides, self.dilation_rate):
            reach = (n - 1) * s + d * (k - 1) + 1
            lead = 0 if self.padding == "valid" else max(0, reach - o) // 2
            left.append(lead)
            full.append(max(reach, lead + o))
        return out, left, full

    def _check_sizes(self, sizes, shape) -> None:
        """TensorFlow's condition, per axis: the convolution with these options maps the output size back to the
        input's (a ``same`` layer with an even span and ``output_padding=0`` does not, and Keras fails on it)."""
        if self.padding == "valid":
            return
        for axis, (n, o, s) in enumerate(zip(sizes, self._out_sizes(sizes), self.strides)):
            if n is not None and -(-o // s) != n:
                raise ValueError(f"{type(self).__name__} {self.name!r}: padding='same' with kernel_size="
                                 f"{self.kernel_size}, dilation_rate={self.dilation_rate}, strides={self.strides} and "
                                 f"output_padding={self.output_padding} gives {o} positions on spatial axis {axis} "
                                 f"for {n} of inputs of shape {tuple(shape)}, which the convolution these options "
                                 "transpose does not map back to the input (Keras's TensorFlow backend fails on it)")

    def compute_output_shape(self, input_shape: tuple):
        out = self._out_sizes(self._sizes(input_shape))
        return (input_shape[0], self.filters, *out) if self._first else (input_shape[0], *out, self.filters)

    def build(self, input_shape: tuple) -> None:
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != self.rank + 2 or self._channels(input_shape) is None:
            raise ValueError(f"{label} expects input of rank {self.rank + 2} ({self._layout}) with a known channel "
                             f"count, received shape {tuple(input_shape)}")
        self._check_sizes(self._sizes(input_shape), input_shape)
        self._add_weight("kernel", self.kernel_size + (self.filters, int(self._channels(input_shape))),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def _check_input(self, x) -> np.ndarray:
        shape = np.shape(x)
        x = self._channels_last_input(x, self._params["kernel"].shape[-1])
        self._check_sizes(x.shape[1:-1], shape)
        return x

    def _weights_2d(self, dtype) -> tuple[np.ndarray, np.ndarray | None]:
        """The kernel as (C_in, taps*filters) (tap-major columns, taps in row-major order) and the bias."""
        label = f"{type(self).__name__} {self.name!r}"
        kernel = np.asarray(self._params["kernel"], dtype=dtype)
        channels = kernel.shape[-1]
        if kernel.shape != self.kernel_size + (self.filters, channels):
            raise ValueError(f"{label}: kernel of shape {kernel.shape}, expected "
                             f"{self.kernel_size + (self.filters, channels)}")
        bias = np.asarray(self._params["bias"], dtype=dtype) if self.use_bias else None
        if bias is not None and bias.shape != (self.filters,):
            raise ValueError(f"{label}: bias of shape {bias.shape}, expected ({self.filters},)")
        flat = np.moveaxis(kernel, -1, 0).reshape(channels, -1)
        return np.ascontiguousarray(flat), bias

    def _tap_slices(self, tap, sizes) -> tuple:
        """The strided positions of the full output buffer that kernel tap ``tap`` writes, one per input position."""
        return (slice(None),) + tuple(slice(t * d, t * d + s * (n - 1) + 1, s) for t, d, s, n in
                                      zip(tap, self.dilation_rate, self.strides, sizes))

    # ---- computing --------------------------------------------------------------------------
    def _linear(self, x: np.ndarray) -> np.ndarray:
        b, sizes, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
        out, left, full = self._geometry(sizes)
        flat, bias = self._weights_2d(x.dtype)
        taps = threaded_matmul(x.reshape(-1, channels), flat).reshape(
            (b,) + sizes + self.kernel_size + (self.filters,))
        z_full = np.zeros((b, *full, self.filters), x.dtype)
        lead = (slice(None),) * (self.rank + 1)
        for tap in itertools.product(*(range(k) for k in self.kernel_size)):
            z_full[self._tap_slices(tap, sizes)] += taps[lead + tap]
        z = np.ascontiguousarray(z_full[(slice(None),) + tuple(slice(a, a + o) for a, o in zip(left, out))])
        if bias is not None:
            z += bias
        return z

    def call(self, x, mask=None, training: bool = False):
        return self._to_layout(activations.apply(self.activation, self._linear(self._check_input(x))))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x, z, y = cache
        label = f"{type(self).__name__} {self.name!r}"
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"{label}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False))
        b, sizes, channels = x.shape[0], x.shape[1:-1], x.shape[-1]
        out, left, full = self._geometry(sizes)
        flat, _ = self._weights_2d(dz.dtype)
        dz_full = np.zeros((b, *full, self.filters), dz.dtype)
        dz_full[(slice(None),) + tuple(slice(a, a + o) for a, o in zip(left, out))] = dz
        d_taps = np.empty((b,) + sizes + self.kernel_size + (self.filters,), dz.dtype)
        lead = (slice(None),) * (self.rank + 1)
        for tap in itertools.product(*(range(k) for k in self.kernel_size)):
            d_taps[lead + tap] = dz_full[self._tap_slices(tap, sizes)]
        d_taps = d_taps.reshape(x.shape[0] * int(np.prod(sizes)), -1)
        d_flat = x.reshape(-1, channels).T @ d_taps  # (C_in, taps*filters)
        d_kernel = np.moveaxis(d_flat.reshape((channels,) + self.kernel_size + (self.filters,)), 0, -1)
        grads = [np.ascontiguousarray(d_kernel).astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.reshape(-1, self.filters).sum(axis=0).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        dx = threaded_matmul(d_taps, np.ascontiguousarray(flat.T)).reshape(x.shape)
        return self._to_layout(dx), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, output_padding=self.output_padding, data_format=self.data_format,
                      dilation_rate=self.dilation_rate, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config


@register_layer
class Conv2DTranspose(_ConvTransposeND):
    """Keras 3 ``Conv2DTranspose``. Weights: kernel (kh, kw, filters, C_in), bias (filters,)."""

    rank = 2
    keras = KerasContract(names=("Conv2DTranspose", "Convolution2DTranspose"), ignored=_TRAINING_ONLY,
                          fixed={"groups": 1})  # (tf_keras writes groups=1)
    parameter_constraints = _constraints(2)
    contract_example = {"kwargs": {"filters": 3, "kernel_size": (2, 3), "strides": (2, 1), "padding": "same"},
                        "inputs": [(3, 4, 2)]}

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, **kwargs)


@register_layer
class Conv3DTranspose(_ConvTransposeND):
    """Keras 3 ``Conv3DTranspose``. Weights: kernel (kd, kh, kw, filters, C_in), bias (filters,)."""

    rank = 3
    keras = KerasContract(names=("Conv3DTranspose", "Convolution3DTranspose"), ignored=_TRAINING_ONLY,
                          fixed={"groups": 1})
    parameter_constraints = _constraints(3)
    contract_example = {"kwargs": {"filters": 2, "kernel_size": (2, 2, 3), "strides": (1, 2, 1),
                                   "output_padding": (0, 1, 0)}, "inputs": [(2, 3, 3, 2)]}

    def __init__(self, filters: int, kernel_size, strides=(1, 1, 1), padding: str = "valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1, 1), activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, **kwargs)
