"""3-D convolution, Keras 3's ``Conv3D``: (B, D, H, W, C_in) -> (B, D_out, H_out, W_out, filters) (``channels_first``:
(B, C, D, H, W), transposed to channels last around the computation): the head that draws the next frames after a
ConvLSTM2D stack (Keras's next-frame video prediction), or a video's front.

Computed as ``kd`` 2-D convolutions (``conv2d_forward``), one per depth tap, each over the strided depth slices of
the padded input that tap reads, their outputs summed; the backward the same way (``conv2d_backward`` per tap, its
input gradient added back onto the slices). Padding as Keras (TensorFlow's split on every axis).
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..random import make_rng
from .base import Layer, compute_dtype
from .conv import _TRAINING_ONLY, conv_output_length, padding_amounts
from .conv2d import conv2d_backward, conv2d_forward, data_format_of
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


@register_layer
class Conv3D(Layer):
    """Keras 3 ``Conv3D``. Weights: kernel (kd, kh, kw, C_in/groups, filters), bias (filters,)."""

    keras = KerasContract(names=("Conv3D", "Convolution3D"), ignored=_TRAINING_ONLY, fixed={"lora_rank": None})
    parameter_constraints = {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(3)],
        "strides": [IntTuple(3)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
        "dilation_rate": [IntTuple(3)],
        "groups": [Integer(1)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "kernel_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}
    contract_example = {"kwargs": {"filters": 2, "kernel_size": (2, 3, 2), "padding": "same", "strides": (2, 1, 1)},
                        "inputs": [(3, 4, 5, 2)]}

    def __init__(self, filters: int, kernel_size, strides=(1, 1, 1), padding: str = "valid", data_format=None,
                 dilation_rate=(1, 1, 1), groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"Conv3D {self.name!r}", self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer))
        self.__dict__.update(options)
        self.data_format = data_format_of(self, self.data_format)
        self.activation = activations.canonical_name(self.activation)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"Conv3D {self.name!r}: strides > 1 together with dilation_rate > 1 is not supported "
                             f"(as in Keras), received strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.filters % self.groups:
            raise ValueError(f"Conv3D {self.name!r}: filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        self._rng = make_rng(None)

    # ---- shapes and weights ---------------------------------------------------------------
    def _spatial(self, shape) -> tuple:
        """(D, H, W, C) of a (B, ...) rank-5 shape."""
        return tuple(shape[2:]) + (shape[1],) if self.data_format == "channels_first" else tuple(shape[1:])

    def compute_output_shape(self, input_shape: tuple):
        *sizes, _ = self._spatial(input_shape)
        out = [conv_output_length(s, k, self.padding, st, d)
               for s, k, st, d in zip(sizes, self.kernel_size, self.strides, self.dilation_rate)]
        return (input_shape[0], self.filters, *out) if self.data_format == "channels_first" else \
            (input_shape[0], *out, self.filters)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 5 or self._spatial(input_shape)[3] is None:
            raise ValueError(f"Conv3D {self.name!r} expects input of rank 5 (batch, 3 spatial axes and channels) "
                             f"with a known channel count, received shape {tuple(input_shape)}")
        channels = int(self._spatial(input_shape)[3])
        if channels % self.groups:
            raise ValueError(f"Conv3D {self.name!r}: the input's channels ({channels}) must be divisible by groups "
                             f"({self.groups})")
        if 0 in self.compute_output_shape(input_shape)[1:]:
            raise ValueError(f"Conv3D {self.name!r}: a {self.kernel_size} window leaves no output from inputs of "
                             f"shape {tuple(input_shape)} (as in Keras, refused)")
        self.add_weight("kernel", self.kernel_size + (channels // self.groups, self.filters),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        channels = self._params["kernel"].shape[3] * self.groups
        if x.ndim != 5 or self._spatial(x.shape)[3] != channels:
            raise ValueError(f"Conv3D {self.name!r} expects input of rank 5 with {channels} channels, received "
                             f"shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Conv3D {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        if 0 in self.compute_output_shape(x.shape)[1:]:
            raise ValueError(f"Conv3D {self.name!r}: a {self.kernel_size} window leaves no output from inputs of "
                             f"shape {x.shape}")
        x = x.astype(compute_dtype(x), copy=False)
        return np.ascontiguousarray(np.moveaxis(x, 1, -1)) if self.data_format == "channels_first" else x

    def _weights(self, dtype):
        kernel = np.asarray(self._params["kernel"], dtype=dtype)
        expected = self.kernel_size + (kernel.shape[3], self.filters)
        if kernel.shape != expected:
            raise ValueError(f"Conv3D {self.name!r}: kernel of shape {kernel.shape}, expected {expected}")
        bias = np.asarray(self._params["bias"], dtype=dtype) if self.use_bias else None
        if bias is not None and bias.shape != (self.filters,):
            raise ValueError(f"Conv3D {self.name!r}: bias of shape {bias.shape}, expected ({self.filters},)")
        return kernel, bias

    def _out_layout(self, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(y, -1, 1)) if self.data_format == "channels_first" else y

    # ---- computing --------------------------------------------------------------------------
    def _depth_geometry(self, depth: int):
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        return conv_output_length(depth, k, self.padding, s, d), padding_amounts(depth, k, self.padding, s, d)

    def _tap_rows(self, xp: np.ndarray, tap: int, out_depth: int) -> np.ndarray:
        """(B*D_out, H, W, C): the depth slices of the padded input that depth tap ``tap`` reads."""
        s, d = self.strides[0], self.dilation_rate[0]
        rows = xp[:, tap * d:tap * d + s * (out_depth - 1) + 1:s]
        return np.ascontiguousarray(rows).reshape((-1,) + xp.shape[2:])

    def _linear(self, x: np.ndarray):
        kernel, bias = self._weights(x.dtype)
        out_depth, (front, back) = self._depth_geometry(x.shape[1])
        xp = np.pad(x, ((0, 0), (front, back), (0, 0), (0, 0), (0, 0))) if front or back else x
        z, padded = None, []
        for tap in range(self.kernel_size[0]):
            part, kept = conv2d_forward(self._tap_rows(xp, tap, out_depth), kernel[tap], self.strides[1:],
                                        self.padding, self.dilation_rate[1:], self.groups)
            z = part if z is None else z + part
            padded.append(kept)
        z = z.reshape((x.shape[0], out_depth) + z.shape[1:])
        if bias is not None:
            z += bias
        return z, (x.shape, xp.shape, padded)

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(x)
        return self._out_layout(activations.apply(self.activation, self._linear(x)[0]))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z, kept = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._out_layout(y), (kept, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        (x_shape, xp_shape, padded), z, y = cache
        dy = np.asarray(dy)
        dy = np.moveaxis(dy, 1, -1) if self.data_format == "channels_first" else dy
        if dy.shape != z.shape:
            raise ValueError(f"Conv3D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = np.ascontiguousarray(activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False)))
        kernel, _ = self._weights(dz.dtype)
        out_depth = z.shape[1]
        flat = dz.reshape((-1,) + dz.shape[2:])
        s, d = self.strides[0], self.dilation_rate[0]
        dkernel = np.empty(kernel.shape, dz.dtype)
        dxp = np.zeros(xp_shape, dz.dtype) if need_dx else None
        for tap in range(self.kernel_size[0]):
            dx_tap, dkernel[tap] = conv2d_backward(flat, padded[tap], kernel[tap], xp_shape[2:4], self.strides[1:],
                                                   self.padding, self.dilation_rate[1:], self.groups, need_dx)
            if need_dx:
                dxp[:, tap * d:tap * d + s * (out_depth - 1) + 1:s] += dx_tap.reshape(
                    (xp_shape[0], out_depth) + dx_tap.shape[1:])
        grads = [dkernel.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1, 2, 3)).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        front = self._depth_geometry(x_shape[1])[1][0]
        dx = dxp[:, front:front + x_shape[1]]
        return (np.ascontiguousarray(np.moveaxis(dx, -1, 1)) if self.data_format == "channels_first" else dx), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate,
                      groups=self.groups, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config
