"""1-D convolution, Keras 3's ``Conv1D``: (B, T, C_in) -> (B, T_out, filters), ``channels_last``.

The convolution is one GEMM per group over an im2col view: the (padded) input is viewed as
(B, T_out, kernel_size, C_in) windows with NumPy strides (no Python loop over the batch or time),
copied once into rows of ``kernel_size * C_in``, and multiplied by the kernel reshaped to
(kernel_size * C_in/groups, filters/groups). Backward: ``dW = cols^T @ dY`` and the input gradient
scatters ``dY @ W^T`` back onto the taps (one strided add per tap).

Padding as Keras: ``valid``; ``same`` (TensorFlow's split, the extra step on the right);
``causal`` (``dilation_rate * (kernel_size - 1)`` zeros on the left, then ``valid``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import activations
from ..random import make_rng
from .base import Layer, compute_dtype
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

_TRAINING_ONLY = frozenset({"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                            "bias_constraint"})


def conv_output_length(steps: int | None, kernel_size: int, padding: str, stride: int, dilation: int) -> int | None:
    """Output steps of a 1-D convolution or pooling window (None for an unknown length)."""
    if steps is None:
        return None
    span = dilation * (kernel_size - 1) + 1
    if padding == "same":
        return -(-steps // stride)
    if padding == "causal":
        steps += span - 1
    return max(0, (steps - span) // stride + 1)


def padding_amounts(steps: int, kernel_size: int, padding: str, stride: int, dilation: int) -> tuple[int, int]:
    """Zeros added (left, right) on the time axis before a ``valid`` window pass."""
    span = dilation * (kernel_size - 1) + 1
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = -(-steps // stride)
        total = max((out - 1) * stride + span - steps, 0)
        return total // 2, total - total // 2
    return 0, 0


def windows(xp: np.ndarray, kernel_size: int, stride: int, dilation: int, out_steps: int) -> np.ndarray:
    """The (B, T_out, kernel_size, C) view of windows of a padded (B, T_pad, C) array (no copy)."""
    b, _, c = xp.shape
    sb, st, sc = xp.strides
    return as_strided(xp, shape=(b, out_steps, kernel_size, c), strides=(sb, st * stride, st * dilation, sc),
                      writeable=False)


@register_layer
class Conv1D(Layer):
    """Keras 3 ``Conv1D``. Weights: kernel (kernel_size, C_in/groups, filters), bias (filters,)."""

    keras = KerasContract(names=("Conv1D", "Convolution1D"), ignored=_TRAINING_ONLY, fixed={"lora_rank": None})
    parameter_constraints = {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(1)],
        "strides": [IntTuple(1)],
        "padding": [StrOptions(("valid", "same", "causal"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last",))],
        "dilation_rate": [IntTuple(1)],
        "groups": [Integer(1)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "kernel_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        options = validate_params(f"Conv1D {self.name!r}", self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer))
        self.__dict__.update(options)
        self.activation = activations.canonical_name(self.activation)
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"Conv1D {self.name!r}: strides > 1 together with dilation_rate > 1 is not supported "
                             f"(as in Keras), received strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.filters % self.groups:
            raise ValueError(f"Conv1D {self.name!r}: filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        self._rng = make_rng(None)

    # ---- shapes and weights ---------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Conv1D {self.name!r} expects input of rank 3 (batch, steps, channels) with a known "
                             f"channel count, received shape {tuple(input_shape)}")
        channels = int(input_shape[-1])
        if channels % self.groups:
            raise ValueError(f"Conv1D {self.name!r}: the input's channels ({channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.compute_output_shape(input_shape)[1] == 0:
            raise ValueError(f"Conv1D {self.name!r}: a window of {self.kernel_size[0]} steps at dilation "
                             f"{self.dilation_rate[0]} leaves no output steps from inputs of {input_shape[1]} steps "
                             "(as in Keras, refused)")
        self.add_weight("kernel", (self.kernel_size[0], channels // self.groups, self.filters),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        steps = conv_output_length(input_shape[1], self.kernel_size[0], self.padding, self.strides[0],
                                   self.dilation_rate[0])
        return (input_shape[0], steps, self.filters)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[-1] != self.input_shape[-1]:
            raise ValueError(f"Conv1D {self.name!r} expects input (batch, steps, {self.input_shape[-1]}), "
                             f"received shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Conv1D {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        return x.astype(compute_dtype(x), copy=False)

    # ---- computing --------------------------------------------------------------------------
    def _geometry(self, steps: int):
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        out = conv_output_length(steps, k, self.padding, s, d)
        left, right = padding_amounts(steps, k, self.padding, s, d)
        return k, s, d, out, left, right

    def _columns(self, x: np.ndarray):
        k, s, d, out, left, right = self._geometry(x.shape[1])
        xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x
        cols = np.ascontiguousarray(windows(xp, k, s, d, out))  # (B, T_out, k, C_in)
        return cols, out

    def _linear(self, x: np.ndarray):
        cols, out = self._columns(x)
        b, c_in = x.shape[0], x.shape[2]
        kernel = self._params["kernel"].astype(x.dtype, copy=False)
        g, cg, fg = self.groups, c_in // self.groups, self.filters // self.groups
        k = self.kernel_size[0]
        if g == 1:
            z = cols.reshape(b * out, k * c_in) @ kernel.reshape(k * c_in, self.filters)
        else:
            z = np.empty((b * out, self.filters), x.dtype)
            grouped = cols.reshape(b * out, k, g, cg)
            for gi in range(g):  # one GEMM per group
                z[:, gi * fg:(gi + 1) * fg] = grouped[:, :, gi, :].reshape(b * out, k * cg) @ \
                    kernel[:, :, gi * fg:(gi + 1) * fg].reshape(k * cg, fg)
        if self.use_bias:
            z += self._params["bias"].astype(x.dtype, copy=False)
        return z.reshape(b, out, self.filters), cols

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(np.asarray(x))
        return activations.apply(self.activation, self._linear(x)[0])

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(np.asarray(x))
        z, cols = self._linear(x)
        y = activations.apply(self.activation, z)
        return y, (x.shape, cols, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, cols, z, y = cache
        dz = activations.gradient(self.activation, z, y, np.asarray(dy, dtype=z.dtype))
        b, steps, c_in = x_shape
        k, s, d, out, left, right = self._geometry(steps)
        g, cg, fg = self.groups, c_in // self.groups, self.filters // self.groups
        kernel = self._params["kernel"].astype(dz.dtype, copy=False)
        dz2 = dz.reshape(b * out, self.filters)
        dcols = np.empty((b * out, k, c_in), dz.dtype) if need_dx else None
        if g == 1:
            dw = (cols.reshape(b * out, k * c_in).T @ dz2).reshape(kernel.shape)
            if need_dx:
                dcols[:] = (dz2 @ kernel.reshape(k * c_in, self.filters).T).reshape(b * out, k, c_in)
        else:
            dw = np.empty_like(kernel)
            grouped = cols.reshape(b * out, k, g, cg)
            for gi in range(g):
                dzg = dz2[:, gi * fg:(gi + 1) * fg]
                wg = kernel[:, :, gi * fg:(gi + 1) * fg]
                dw[:, :, gi * fg:(gi + 1) * fg] = (grouped[:, :, gi, :].reshape(b * out, k * cg).T @ dzg
                                                   ).reshape(k, cg, fg)
                if need_dx:
                    dcols[:, :, gi * cg:(gi + 1) * cg] = (dzg @ wg.reshape(k * cg, fg).T).reshape(b * out, k, cg)
        grads = [dw.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz2.sum(axis=0).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        dxp = np.zeros((b, steps + left + right, c_in), dz.dtype)
        dcols = dcols.reshape(b, out, k, c_in)
        for j in range(k):  # one strided add per tap
            start = j * d
            dxp[:, start:start + s * (out - 1) + 1:s, :] += dcols[:, :, j, :]
        return dxp[:, left:left + steps, :], grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format="channels_last", dilation_rate=self.dilation_rate,
                      groups=self.groups, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config
