"""Depthwise and depthwise-separable 2-D convolutions, Keras 3's ``DepthwiseConv2D`` and ``SeparableConv2D``:
(B, H, W, C_in) -> (B, H_out, W_out, C_in * depth_multiplier) or (B, H_out, W_out, filters) (``channels_first``:
(B, C, H, W), turned channels last around the same computation). The light convolutional fronts (MobileNet's
blocks) that read a spectrogram or an image before a GRU.

The depthwise step convolves each input channel with its own ``depth_multiplier`` kernels: one multiply-add pass
per kernel tap over the strided positions of the padded input that tap reads, (B, H_out, W_out, C, 1) times the
tap's (C, dm) kernel, no window copies. Output channel ``c * depth_multiplier + m`` is kernel ``m`` of input channel
``c`` (TensorFlow's order). The separable layer follows it with the pointwise (1x1) step, one GEMM
``(B*H_out*W_out, C*dm) @ (C*dm, filters)``. Backward: per tap, the kernel gradient as each channel's sum over every
position (accumulated in float64: sums of up to B*H_out*W_out products) and the input gradient added back onto
the tap's strided positions. Padding as Keras (TensorFlow's split: the extra row or column at the end).

Weights, in Keras's order: DepthwiseConv2D ``kernel`` (kh, kw, C_in, dm), ``bias`` (C_in*dm,); SeparableConv2D
``depthwise_kernel`` (kh, kw, C_in, dm), ``pointwise_kernel`` (1, 1, C_in*dm, filters), ``bias`` (filters,).
"""

from __future__ import annotations

import numpy as np

from .. import activations
from .._threads import threaded_matmul
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .conv import conv_output_length, padding_amounts
from .conv2d import pad_2d, tap_slices
from .conv_depthwise import depthwise_constraints
from .registry import (
    ANY,
    InitializerSpec,
    Integer,
    KerasContract,
    StrOptions,
    register_layer,
    validate_params,
)

_COMMON = {**depthwise_constraints(2, ("channels_last", "channels_first")),
           "padding": [StrOptions(("valid", "same"), lower=True)]}


def depthwise2d_forward(x: np.ndarray, kernel: np.ndarray, strides, padding: str, dilation):
    """The depthwise convolution (B, H_out, W_out, C, dm) of a channels-last (B, H, W, C) ``x`` by a (kh, kw, C, dm)
    ``kernel`` (no bias), and the padded input (kept for :func:`depthwise2d_backward`)."""
    xp, out_hw, _ = pad_2d(x, kernel.shape[:2], strides, padding, dilation)
    z = np.zeros((x.shape[0],) + out_hw + kernel.shape[2:], x.dtype)
    product = np.empty_like(z)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            rows, columns = tap_slices(i, j, strides, dilation, out_hw)
            np.multiply(xp[:, rows, columns, :, None], kernel[i, j], out=product)
            z += product
    return z, xp


def depthwise2d_backward(dz: np.ndarray, xp: np.ndarray, kernel: np.ndarray, x_hw, strides, padding: str, dilation,
                         need_dx: bool = True):
    """(dx (B, H, W, C) or None, dkernel (kh, kw, C, dm)) of :func:`depthwise2d_forward` from the output gradient
    ``dz`` (B, H_out, W_out, C, dm), the padded input it kept and the input's (H, W)."""
    out_hw = dz.shape[1:3]
    dkernel = np.empty(kernel.shape, dz.dtype)
    dxp = np.zeros(xp.shape, dz.dtype) if need_dx else None
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            rows, columns = tap_slices(i, j, strides, dilation, out_hw)
            dkernel[i, j] = np.einsum("bhwc,bhwcm->cm", xp[:, rows, columns], dz, dtype=np.float64,
                                      casting="safe")
            if need_dx:
                dxp[:, rows, columns] += np.einsum("bhwcm,cm->bhwc", dz, kernel[i, j])
    if not need_dx:
        return None, dkernel
    (h, w), window = x_hw, kernel.shape[:2]
    top, _ = padding_amounts(h, window[0], padding, strides[0], dilation[0])
    left, _ = padding_amounts(w, window[1], padding, strides[1], dilation[1])
    return dxp[:, top:top + h, left:left + w], dkernel


class _Depthwise2D(ChannelsLayout, Layer):
    """What both layers share: options, shapes, input checks, the depthwise step and its backward."""

    _kernel_name = "kernel"

    def _init_options(self, params: dict) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        self.__dict__.update(validate_params(owner, self.parameter_constraints, params))
        self.data_format = data_format_of(self, self.data_format)
        self.activation = activations.canonical_name(self.activation)
        # (strides and dilation_rate may both exceed 1: Keras 3's depthwise convolutions allow it, unlike Conv2D)
        self._rng = make_rng(None)

    def _out_sizes(self, sizes) -> list:
        return [conv_output_length(s, k, self.padding, st, d) for s, k, st, d in
                zip(sizes, self.kernel_size, self.strides, self.dilation_rate)]

    def _out_channels(self, channels):
        raise NotImplementedError

    def compute_output_shape(self, input_shape: tuple):
        out = self._out_sizes(self._sizes(input_shape))
        channels = self._out_channels(self._channels(input_shape))
        return (input_shape[0], channels, *out) if self._first else (input_shape[0], *out, channels)

    def _check_build(self, input_shape: tuple) -> int:
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 4 or self._channels(input_shape) is None:
            raise ValueError(f"{label} expects input of rank 4 ({self._layout}) with a known channel count, received "
                             f"shape {tuple(input_shape)}")
        if 0 in self._out_sizes(self._sizes(input_shape)):
            raise ValueError(f"{label}: a {self.kernel_size} window at dilation {self.dilation_rate} leaves no output "
                             f"from inputs of shape {tuple(input_shape)} (as in Keras, refused)")
        return int(self._channels(input_shape))

    def _check_input(self, x) -> np.ndarray:
        """``x`` checked, in the compute dtype and channels last."""
        shape = np.shape(x)
        x = self._channels_last_input(x, self._params[self._kernel_name].shape[2])
        if 0 in self._out_sizes(x.shape[1:3]) and 0 not in x.shape[1:3]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.kernel_size} window at dilation "
                             f"{self.dilation_rate} leaves no output from inputs of shape {shape}")
        return x

    def _depthwise_kernel(self, dtype) -> np.ndarray:
        kernel = np.asarray(self._params[self._kernel_name], dtype=dtype)
        expected = self.kernel_size + (kernel.shape[2], self.depth_multiplier)
        if kernel.shape != expected:
            raise ValueError(f"{type(self).__name__} {self.name!r}: {self._kernel_name} of shape {kernel.shape}, "
                             f"expected {expected}")
        return kernel

    def _bias(self, dtype, size: int):
        if not self.use_bias:
            return None
        bias = np.asarray(self._params["bias"], dtype=dtype)
        if bias.shape != (size,):
            raise ValueError(f"{type(self).__name__} {self.name!r}: bias of shape {bias.shape}, expected ({size},)")
        return bias

    def _depthwise(self, x: np.ndarray):
        """(B, H_out, W_out, C*dm) depthwise output (no bias) and the padded input."""
        z, xp = depthwise2d_forward(x, self._depthwise_kernel(x.dtype), self.strides, self.padding,
                                    self.dilation_rate)
        return z.reshape(z.shape[:3] + (z.shape[3] * z.shape[4],)), xp

    def _depthwise_backward(self, dz: np.ndarray, xp: np.ndarray, x_shape, need_dx: bool):
        kernel = self._depthwise_kernel(dz.dtype)
        dz5 = np.ascontiguousarray(dz).reshape(dz.shape[:3] + kernel.shape[2:])
        return depthwise2d_backward(dz5, xp, kernel, x_shape[1:3], self.strides, self.padding, self.dilation_rate,
                                    need_dx)

    def compute_mask(self, x, mask=None):
        return None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def _common_config(self) -> dict:
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, strides=self.strides, padding=self.padding,
                      data_format=self.data_format, dilation_rate=self.dilation_rate,
                      depth_multiplier=self.depth_multiplier, activation=self.activation, use_bias=self.use_bias,
                      depthwise_initializer=self.depthwise_initializer, bias_initializer=self.bias_initializer)
        return config


@register_layer
class DepthwiseConv2D(_Depthwise2D):
    """Keras 3 ``DepthwiseConv2D``: each input channel convolved with ``depth_multiplier`` kernels of its own.
    Weights: kernel (kh, kw, C_in, depth_multiplier), bias (C_in * depth_multiplier,)."""

    keras = KerasContract(names=("DepthwiseConv2D",),
                          ignored=frozenset({"depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                                             "depthwise_constraint", "bias_constraint"}),
                          fixed={"groups": 1})  # tf_keras writes Conv's groups (always 1 here)
    parameter_constraints = _COMMON
    weight_names = ("kernel", "bias")
    regularizer_options = {"depthwise_regularizer": "kernel", "bias_regularizer": "bias"}
    contract_example = {"kwargs": {"kernel_size": (2, 3), "depth_multiplier": 2, "padding": "same",
                                   "strides": (1, 2)}, "inputs": [(4, 5, 3)]}

    def __init__(self, kernel_size, strides=(1, 1), padding: str = "valid", depth_multiplier: int = 1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._init_options(dict(kernel_size=kernel_size, strides=strides, padding=padding,
                                depth_multiplier=depth_multiplier, data_format=data_format,
                                dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                                depthwise_initializer=depthwise_initializer, bias_initializer=bias_initializer))

    def _out_channels(self, channels):
        return None if channels is None else channels * self.depth_multiplier

    def build(self, input_shape: tuple) -> None:
        channels = self._check_build(input_shape)
        self._add_weight("kernel", self.kernel_size + (channels, self.depth_multiplier), self.depthwise_initializer,
                        self._rng)
        if self.use_bias:
            self._add_weight("bias", (channels * self.depth_multiplier,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z, xp = self._depthwise(x)
        bias = self._bias(x.dtype, z.shape[-1])
        if bias is not None:
            z += bias
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, xp, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xp, z, y = cache
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"DepthwiseConv2D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False))
        dx, dkernel = self._depthwise_backward(dz, xp, x_shape, need_dx)
        grads = [dkernel.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1, 2)).astype(self.dtype, copy=False))
        return (self._to_layout(dx) if need_dx else None), (grads if self.trainable else [])

    def get_config(self) -> dict:
        return self._common_config()


@register_layer
class SeparableConv2D(_Depthwise2D):
    """Keras 3 ``SeparableConv2D``: the depthwise step (no bias), then a pointwise (1x1) convolution to ``filters``
    channels, bias and activation. Weights: depthwise_kernel (kh, kw, C_in, depth_multiplier), pointwise_kernel
    (1, 1, C_in * depth_multiplier, filters), bias (filters,)."""

    keras = KerasContract(names=("SeparableConv2D", "SeparableConvolution2D"),
                          ignored=frozenset({"depthwise_regularizer", "pointwise_regularizer", "bias_regularizer",
                                             "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                                             "bias_constraint"}),
                          # tf_keras writes its Conv base's groups (always 1 here) and kernel_initializer (unused)
                          fixed={"groups": 1, "kernel_initializer": ANY})
    parameter_constraints = {**_COMMON, "filters": [Integer(1)], "pointwise_initializer": [InitializerSpec()]}
    weight_names = ("depthwise_kernel", "pointwise_kernel", "bias")
    regularizer_options = {"depthwise_regularizer": "depthwise_kernel", "pointwise_regularizer": "pointwise_kernel",
                           "bias_regularizer": "bias"}
    contract_example = {"kwargs": {"filters": 3, "kernel_size": (3, 2), "depth_multiplier": 2,
                                   "dilation_rate": (1, 2)}, "inputs": [(5, 6, 2)]}
    _kernel_name = "depthwise_kernel"

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier: int = 1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._init_options(dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                                depth_multiplier=depth_multiplier, data_format=data_format,
                                dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                                depthwise_initializer=depthwise_initializer,
                                pointwise_initializer=pointwise_initializer, bias_initializer=bias_initializer))

    def _out_channels(self, channels):
        return self.filters

    def build(self, input_shape: tuple) -> None:
        channels = self._check_build(input_shape)
        dm = self.depth_multiplier
        self._add_weight("depthwise_kernel", self.kernel_size + (channels, dm), self.depthwise_initializer, self._rng)
        self._add_weight("pointwise_kernel", (1, 1, channels * dm, self.filters), self.pointwise_initializer,
                        self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def _pointwise_kernel(self, dtype, mid_channels: int) -> np.ndarray:
        kernel = np.asarray(self._params["pointwise_kernel"], dtype=dtype)
        if kernel.shape != (1, 1, mid_channels, self.filters):
            raise ValueError(f"SeparableConv2D {self.name!r}: pointwise_kernel of shape {kernel.shape}, expected "
                             f"{(1, 1, mid_channels, self.filters)}")
        return kernel.reshape(mid_channels, self.filters)

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        mid, xp = self._depthwise(x)
        rows = mid.reshape(int(np.prod(mid.shape[:3])), mid.shape[-1])
        z = threaded_matmul(rows, self._pointwise_kernel(x.dtype, mid.shape[-1]))
        bias = self._bias(x.dtype, self.filters)
        if bias is not None:
            z += bias
        z = z.reshape(mid.shape[:3] + (self.filters,))
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, xp, mid, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xp, mid, z, y = cache
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"SeparableConv2D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False))
        cm = mid.shape[-1]
        dz2 = np.ascontiguousarray(dz).reshape(int(np.prod(dz.shape[:3])), self.filters)
        pointwise = self._pointwise_kernel(dz.dtype, cm)
        dpointwise = (mid.reshape(dz2.shape[0], cm).T @ dz2).reshape(1, 1, cm, self.filters)
        dmid = threaded_matmul(dz2, np.ascontiguousarray(pointwise.T)).reshape(mid.shape)
        dx, ddepthwise = self._depthwise_backward(dmid, xp, x_shape, need_dx)
        grads = [ddepthwise.astype(self.dtype, copy=False), dpointwise.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz2.sum(axis=0).astype(self.dtype, copy=False))
        return (self._to_layout(dx) if need_dx else None), (grads if self.trainable else [])

    def get_config(self) -> dict:
        config = self._common_config()
        config.update(filters=self.filters, pointwise_initializer=self.pointwise_initializer)
        return config
