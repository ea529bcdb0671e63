"""Depthwise and depthwise-separable 1-D convolutions, Keras 3's ``DepthwiseConv1D`` and
``SeparableConv1D``: (B, T, C_in) -> (B, T_out, C_in * depth_multiplier) or (B, T_out, filters)
(``channels_first``: (B, C_in, T) -> (B, channels, T_out), computed channels last in between).

The depthwise step convolves each input channel with its own ``depth_multiplier`` kernels: one batched
GEMM over the channels, ``(C, B*T_out, k) @ (C, k, depth_multiplier)``, on the im2col view of
``conv.py`` (windows by NumPy strides, no Python loop over the batch or time). Output channel
``c * depth_multiplier + m`` is kernel ``m`` of input channel ``c`` (TensorFlow's order). The separable
layer follows it with the pointwise step, one GEMM ``(B*T_out, C*dm) @ (C*dm, filters)``.
Backward: the transposed GEMMs, and the input gradient scattered back onto the taps (one strided add
per tap, as ``Conv1D``).

Weights, in Keras's order: DepthwiseConv1D ``kernel`` (k, C_in, dm), ``bias`` (C_in*dm,);
SeparableConv1D ``depthwise_kernel`` (k, C_in, dm), ``pointwise_kernel`` (1, C_in*dm, filters),
``bias`` (filters,). Padding: ``valid`` and ``same`` (Keras 3 allows no other); ``SeparableConv1D``
also reads ``causal`` from Keras 2 (tf_keras) files, which had it. Masks end here, as in Keras.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout
from .conv import conv_output_length, padding_amounts, windows
from .registry import (
    ANY,
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


def depthwise_constraints(rank: int, data_formats: tuple) -> dict:
    """The options the ``rank``-D depthwise and separable convolutions share, as Keras 3 names them."""
    return {
        "kernel_size": [IntTuple(rank)],
        "strides": [IntTuple(rank)],
        "data_format": [NONE, StrOptions(data_formats)],
        "dilation_rate": [IntTuple(rank)],
        "depth_multiplier": [Integer(1)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "depthwise_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }


_COMMON = depthwise_constraints(1, ("channels_last", "channels_first"))


class _Depthwise(ChannelsLayout, Layer):
    """What both layers share: options, geometry, the depthwise forward and backward (channels last)."""

    _kernel_name = "kernel"
    rank = 1

    def _init_options(self, params: dict) -> None:
        owner = f"{type(self).__name__} {self.name!r}"
        self.__dict__.update(validate_params(owner, self.parameter_constraints, params))
        self.data_format = self.data_format or "channels_last"
        self.activation = activations.canonical_name(self.activation)
        # (strides and dilation_rate may both exceed 1: Keras 3's depthwise convolutions allow it, unlike Conv1D)
        self._rng = make_rng(None)

    def _check_build(self, input_shape: tuple) -> int:
        owner = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != 3 or self._channels(input_shape) is None:
            raise ValueError(f"{owner} expects input of rank 3 ({self._layout}) with a known channel count, "
                             f"received shape {tuple(input_shape)}")
        if self._out_steps(input_shape) == 0:
            raise ValueError(f"{owner}: a window of {self.kernel_size[0]} steps at dilation {self.dilation_rate[0]} "
                             f"leaves no output steps from inputs of {self._sizes(input_shape)[0]} steps (as in "
                             "Keras, refused)")
        return int(self._channels(input_shape))

    def _out_steps(self, input_shape: tuple):
        return conv_output_length(self._sizes(input_shape)[0], self.kernel_size[0], self.padding, self.strides[0],
                                  self.dilation_rate[0])

    def _output_shape(self, input_shape: tuple, channels):
        """The output shape in the layer's layout, of ``channels`` channels."""
        steps = self._out_steps(input_shape)
        return (input_shape[0], channels, steps) if self._first else (input_shape[0], steps, channels)

    def _check_input(self, x) -> np.ndarray:
        """``x`` checked, in the compute dtype, channels last."""
        return self._channels_last_input(x, self._channels(self.input_shape))

    def compute_mask(self, x, mask=None):
        return None

    def _geometry(self, steps: int):
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        out = conv_output_length(steps, k, self.padding, s, d)
        left, right = padding_amounts(steps, k, self.padding, s, d)
        return k, s, d, out, left, right

    def _depthwise(self, x: np.ndarray):
        """(B, T_out, C*dm) depthwise output (no bias) and the (C, B*T_out, k) columns it used."""
        k, s, d, out, left, right = self._geometry(x.shape[1])
        b, c = x.shape[0], x.shape[2]
        xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x
        cols = np.ascontiguousarray(windows(xp, k, s, d, out).transpose(3, 0, 1, 2)).reshape(c, b * out, k)
        kernel = self._params[self._kernel_name].astype(x.dtype, copy=False).transpose(1, 0, 2)  # (C, k, dm)
        z = np.matmul(cols, kernel)  # (C, B*T_out, dm): one batched GEMM over the channels
        return z.transpose(1, 0, 2).reshape(b, out, c * self.depth_multiplier), cols

    def _depthwise_backward(self, dz: np.ndarray, cols: np.ndarray, x_shape, need_dx: bool):
        """Gradients of the depthwise step: (dkernel (k, C, dm), dx or None) from dz (B, T_out, C*dm)."""
        b, steps, c = x_shape
        k, s, d, out, left, right = self._geometry(steps)
        dm = self.depth_multiplier
        dz3 = np.ascontiguousarray(dz.reshape(b * out, c, dm).transpose(1, 0, 2))  # (C, B*T_out, dm)
        dkernel = np.matmul(cols.transpose(0, 2, 1), dz3).transpose(1, 0, 2)  # (k, C, dm)
        if not need_dx:
            return dkernel, None
        kernel = self._params[self._kernel_name].astype(dz.dtype, copy=False).transpose(1, 2, 0)  # (C, dm, k)
        dcols = np.matmul(dz3, kernel).transpose(1, 2, 0).reshape(b, out, k, c)  # (B, T_out, k, C)
        dxp = np.zeros((b, steps + left + right, c), dz.dtype)
        for j in range(k):  # one strided add per tap
            start = j * d
            dxp[:, start:start + s * (out - 1) + 1:s, :] += dcols[:, :, j, :]
        return dkernel, dxp[:, left:left + steps, :]

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
class DepthwiseConv1D(_Depthwise):
    """Keras 3 ``DepthwiseConv1D``: each input channel convolved with ``depth_multiplier`` kernels of its
    own. Weights: kernel (kernel_size, C_in, depth_multiplier), bias (C_in * depth_multiplier,)."""

    keras = KerasContract(names=("DepthwiseConv1D",),
                          ignored=frozenset({"depthwise_regularizer", "bias_regularizer", "activity_regularizer",
                                             "depthwise_constraint", "bias_constraint"}),
                          fixed={"groups": 1})  # tf_keras writes Conv's groups (always 1 here)
    parameter_constraints = {**_COMMON, "padding": [StrOptions(("valid", "same"), lower=True)]}
    weight_names = ("kernel", "bias")
    regularizer_options = {"depthwise_regularizer": "kernel", "bias_regularizer": "bias"}

    def __init__(self, kernel_size, strides=1, padding: str = "valid", depth_multiplier: int = 1, data_format=None,
                 dilation_rate=1, activation=None, use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._init_options(dict(kernel_size=kernel_size, strides=strides, padding=padding,
                                depth_multiplier=depth_multiplier, data_format=data_format,
                                dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                                depthwise_initializer=depthwise_initializer, bias_initializer=bias_initializer))

    def build(self, input_shape: tuple) -> None:
        channels = self._check_build(input_shape)
        self._add_weight("kernel", (self.kernel_size[0], channels, self.depth_multiplier), self.depthwise_initializer,
                        self._rng)
        if self.use_bias:
            self._add_weight("bias", (channels * self.depth_multiplier,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        channels = self._channels(input_shape)
        return self._output_shape(input_shape, None if channels is None else channels * self.depth_multiplier)

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z, cols = self._depthwise(x)
        if self.use_bias:
            z += self._params["bias"].astype(x.dtype, copy=False)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, cols, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, cols, z, y = cache
        dz = activations.gradient(self.activation, z, y, self._from_layout(np.asarray(dy, dtype=z.dtype)))
        dkernel, dx = self._depthwise_backward(dz, cols, x_shape, need_dx)
        grads = [dkernel.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.reshape(-1, dz.shape[-1]).sum(axis=0).astype(self.dtype, copy=False))
        return (None if dx is None else self._to_layout(dx)), (grads if self.trainable else [])

    def get_config(self) -> dict:
        return self._common_config()


@register_layer
class SeparableConv1D(_Depthwise):
    """Keras 3 ``SeparableConv1D``: the depthwise step (no bias), then a pointwise (1x1) convolution to
    ``filters`` channels, bias and activation. Weights: depthwise_kernel (kernel_size, C_in,
    depth_multiplier), pointwise_kernel (1, C_in * depth_multiplier, filters), bias (filters,)."""

    keras = KerasContract(names=("SeparableConv1D", "SeparableConvolution1D"),
                          ignored=frozenset({"depthwise_regularizer", "pointwise_regularizer", "bias_regularizer",
                                             "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                                             "bias_constraint"}),
                          # tf_keras writes its Conv base's groups (always 1 here) and kernel_initializer (unused)
                          fixed={"groups": 1, "kernel_initializer": ANY})
    parameter_constraints = {**_COMMON, "filters": [Integer(1)],
                             # causal: Keras 2 (tf_keras) had it; Keras 3 refuses it
                             "padding": [StrOptions(("valid", "same", "causal"), lower=True)],
                             "pointwise_initializer": [InitializerSpec()]}
    weight_names = ("depthwise_kernel", "pointwise_kernel", "bias")
    regularizer_options = {"depthwise_regularizer": "depthwise_kernel", "pointwise_regularizer": "pointwise_kernel",
                           "bias_regularizer": "bias"}
    _kernel_name = "depthwise_kernel"

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, depth_multiplier: int = 1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self._init_options(dict(filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
                                depth_multiplier=depth_multiplier, data_format=data_format,
                                dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                                depthwise_initializer=depthwise_initializer,
                                pointwise_initializer=pointwise_initializer, bias_initializer=bias_initializer))

    def build(self, input_shape: tuple) -> None:
        channels = self._check_build(input_shape)
        dm = self.depth_multiplier
        self._add_weight("depthwise_kernel", (self.kernel_size[0], channels, dm), self.depthwise_initializer,
                        self._rng)
        self._add_weight("pointwise_kernel", (1, channels * dm, self.filters), self.pointwise_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return self._output_shape(input_shape, self.filters)

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        mid, cols = self._depthwise(x)
        b, out, cm = mid.shape
        pointwise = self._params["pointwise_kernel"].astype(x.dtype, copy=False).reshape(cm, self.filters)
        z = mid.reshape(b * out, cm) @ pointwise
        if self.use_bias:
            z += self._params["bias"].astype(x.dtype, copy=False)
        z = z.reshape(b, out, self.filters)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, cols, mid, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, cols, mid, z, y = cache
        dz = activations.gradient(self.activation, z, y, self._from_layout(np.asarray(dy, dtype=z.dtype)))
        b, out, cm = mid.shape
        dz2 = dz.reshape(b * out, self.filters)
        pointwise = self._params["pointwise_kernel"].astype(dz.dtype, copy=False).reshape(cm, self.filters)
        dpointwise = (mid.reshape(b * out, cm).T @ dz2).reshape(1, cm, self.filters)
        dmid = (dz2 @ pointwise.T).reshape(b, out, cm)
        ddepthwise, dx = self._depthwise_backward(dmid, cols, x_shape, need_dx)
        grads = [ddepthwise.astype(self.dtype, copy=False), dpointwise.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz2.sum(axis=0).astype(self.dtype, copy=False))
        return (None if dx is None else self._to_layout(dx)), (grads if self.trainable else [])

    def get_config(self) -> dict:
        config = self._common_config()
        config.update(filters=self.filters, pointwise_initializer=self.pointwise_initializer)
        return config
