"""1-D transposed convolution, Keras 3's ``Conv1DTranspose``: (B, T, C_in) -> (B, T_out, filters)
(``channels_first``: (B, C_in, T) -> (B, filters, T_out), computed channels last in between); the decoder half
of convolutional sequence autoencoders.

Each input step ``i`` adds ``x[i] @ kernel[j]^T`` to output step ``i*stride + j*dilation - pad`` for every
tap ``j`` (the input gradient of a ``Conv1D`` with the same options): one GEMM of the (B·T, C_in) rows
against all taps' kernels at once, then one strided add per tap. Output length and placement as Keras's
TensorFlow backend (``tf.nn.conv_transpose``): ``valid`` gives ``(T - 1)*stride + max(span, stride)``
steps (span = ``dilation*(kernel_size - 1) + 1``), ``same`` gives ``T*stride``; ``output_padding``
(less than the stride) sets ``(T - 1)*stride + span + output_padding`` for ``valid`` and
``(T - 1)*stride + span % 2 + output_padding`` for ``same``. ``same`` drops ``pad = max(0,
(T - 1)*stride + span - T_out) // 2`` steps on the left. Backward: the same taps gathered (dX, one GEMM)
and the kernel gradient as one (C_in, kernel_size·filters) GEMM.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout
from .conv import _TRAINING_ONLY
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


def transpose_output_length(steps: int | None, kernel_size: int, padding: str, stride: int, dilation: int,
                            output_padding: int | None) -> int | None:
    """Output steps of a 1-D transposed convolution (Keras's rule; None for an unknown length)."""
    if steps is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (steps - 1) * stride + span + extra
    if output_padding is None:
        return steps * stride
    return (steps - 1) * stride + span % 2 + output_padding


def _tap_ranges(steps: int, out: int, kernel_size: int, stride: int, dilation: int, left: int):
    """Per tap j: (first input step, last input step + 1, first output step) of the input steps whose
    output step ``i*stride + j*dilation - left`` falls inside [0, out)."""
    ranges = []
    for j in range(kernel_size):
        offset = j * dilation - left
        first = -(offset // stride) if offset < 0 else 0  # ceil(-offset / stride)
        stop = min(steps, (out - 1 - offset) // stride + 1) if out - 1 - offset >= 0 else 0
        ranges.append((first, max(first, stop), first * stride + offset))
    return ranges


@register_layer
class Conv1DTranspose(ChannelsLayout, Layer):
    """Keras 3 ``Conv1DTranspose``. Weights: kernel (kernel_size, filters, C_in), bias (filters,)."""

    keras = KerasContract(names=("Conv1DTranspose", "Convolution1DTranspose"), ignored=_TRAINING_ONLY,
                          fixed={"groups": 1})  # (tf_keras writes groups=1)
    parameter_constraints = {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(1)],
        "strides": [IntTuple(1)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "output_padding": [NONE, IntTuple(1, low=0)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
        "dilation_rate": [IntTuple(1)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "kernel_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}
    rank = 1

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"Conv1DTranspose {self.name!r}", self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding,
            output_padding=output_padding, data_format=data_format, dilation_rate=dilation_rate,
            activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer))
        self.__dict__.update(options)
        self.data_format = self.data_format or "channels_last"
        self.activation = activations.canonical_name(self.activation)
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"Conv1DTranspose {self.name!r}: strides > 1 together with dilation_rate > 1 is not "
                             f"supported (as in Keras), received strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}")
        if self.output_padding is not None and self.output_padding[0] >= self.strides[0]:
            raise ValueError(f"Conv1DTranspose {self.name!r}: output_padding must be less than strides (as in Keras), "
                             f"received output_padding={self.output_padding}, strides={self.strides}")
        self._rng = make_rng(None)

    # ---- shapes and weights ---------------------------------------------------------------
    def _output_steps(self, steps: int | None) -> int | None:
        op = None if self.output_padding is None else self.output_padding[0]
        return transpose_output_length(steps, self.kernel_size[0], self.padding, self.strides[0],
                                       self.dilation_rate[0], op)

    def _left(self, steps: int, out: int) -> int:
        """Output steps dropped on the left (``same``: TensorFlow's split of the padding)."""
        if self.padding == "valid":
            return 0
        span = self.dilation_rate[0] * (self.kernel_size[0] - 1) + 1
        return max(0, (steps - 1) * self.strides[0] + span - out) // 2

    def _check_steps(self, steps: int | None) -> None:
        """TensorFlow's condition: the Conv1D with these options maps the output length back to ``steps``
        (a ``same`` layer with an even span and ``output_padding=0`` does not, and Keras fails to run it)."""
        if steps is None or self.padding == "valid":
            return
        out = self._output_steps(steps)
        if -(-out // self.strides[0]) != steps:
            raise ValueError(f"Conv1DTranspose {self.name!r}: padding='same' with kernel_size={self.kernel_size}, "
                             f"dilation_rate={self.dilation_rate}, strides={self.strides} and output_padding="
                             f"{self.output_padding} gives {out} output steps for {steps} input steps, which the "
                             "Conv1D these options transpose does not map back to the input (Keras's TensorFlow "
                             "backend fails on it, or returns no steps)")

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or self._channels(input_shape) is None:
            raise ValueError(f"Conv1DTranspose {self.name!r} expects input of rank 3 ({self._layout}) with a "
                             f"known channel count, received shape {tuple(input_shape)}")
        self._check_steps(self._sizes(input_shape)[0])
        self._in_channels = int(self._channels(input_shape))
        self._add_weight("kernel", (self.kernel_size[0], self.filters, self._in_channels),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        steps = self._output_steps(self._sizes(input_shape)[0])
        return (input_shape[0], self.filters, steps) if self._first else (input_shape[0], steps, self.filters)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked, in the compute dtype, channels last."""
        x = self._channels_last_input(x, self._in_channels)
        self._check_steps(x.shape[1])
        return x

    def _weights_2d(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        """The kernel as (C_in, kernel_size*filters) (tap-major columns) and the bias (filters,)."""
        k, f, c = self.kernel_size[0], self.filters, self._in_channels
        kernel = np.asarray(self._params["kernel"], dtype=dtype)
        if kernel.shape != (k, f, c):
            raise ValueError(f"Conv1DTranspose {self.name!r}: kernel of shape {kernel.shape}, expected {(k, f, c)}")
        bias = np.asarray(self._params["bias"], dtype=dtype) if self.use_bias else np.zeros(f, dtype)
        if bias.shape != (f,):
            raise ValueError(f"Conv1DTranspose {self.name!r}: bias of shape {bias.shape}, expected ({f},)")
        return np.ascontiguousarray(kernel.transpose(2, 0, 1)).reshape(c, k * f), bias

    def _geometry(self, steps: int):
        out = self._output_steps(steps)
        return out, _tap_ranges(steps, out, self.kernel_size[0], self.strides[0], self.dilation_rate[0],
                                self._left(steps, out))

    # ---- computing --------------------------------------------------------------------------
    def _linear(self, x: np.ndarray) -> np.ndarray:
        b, steps, c = x.shape
        k, f, s = self.kernel_size[0], self.filters, self.strides[0]
        out, ranges = self._geometry(steps)
        kernel_2d, bias = self._weights_2d(x.dtype)
        taps = (x.reshape(b * steps, c) @ kernel_2d).reshape(b, steps, k, f)
        z = np.empty((b, out, f), x.dtype)
        z[...] = bias
        for j, (first, stop, o0) in enumerate(ranges):
            if stop > first:
                z[:, o0:o0 + (stop - first - 1) * s + 1:s] += taps[:, first:stop, j]
        return z

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(np.asarray(x))
        return self._to_layout(activations.apply(self.activation, self._linear(x)))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(np.asarray(x))
        z = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x, z, y = cache
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"Conv1DTranspose {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False))
        b, steps, c = x.shape
        k, f, s = self.kernel_size[0], self.filters, self.strides[0]
        _, ranges = self._geometry(steps)
        kernel_2d, _ = self._weights_2d(dz.dtype)
        d_taps = np.zeros((b, steps, k, f), dz.dtype)  # each input step's share of the output gradient, per tap
        for j, (first, stop, o0) in enumerate(ranges):
            if stop > first:
                d_taps[:, first:stop, j] = dz[:, o0:o0 + (stop - first - 1) * s + 1:s]
        d_taps = d_taps.reshape(b * steps, k * f)
        d_kernel = (x.reshape(b * steps, c).T @ d_taps).reshape(c, k, f).transpose(1, 2, 0)
        grads = [np.ascontiguousarray(d_kernel).astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1)).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        return self._to_layout((d_taps @ kernel_2d.T).reshape(b, steps, c)), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, output_padding=self.output_padding, data_format=self.data_format,
                      dilation_rate=self.dilation_rate, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config
