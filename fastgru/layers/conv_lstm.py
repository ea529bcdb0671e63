"""Convolutional LSTMs, Keras 3's ``ConvLSTM1D`` and ``ConvLSTM2D``: (B, T, W, C) or (B, T, H, W, C) sequences of
images (``channels_first``: channels before the spatial axes), each gate a convolution of the input step plus a
convolution (``same`` padding, stride 1) of the previous state, as Keras's ``ConvLSTMCell``:

    i = σ(x * W_i + h * U_i + b_i)    f = σ(x * W_f + h * U_f + b_f)    o = σ(x * W_o + h * U_o + b_o)
    c = f ⊙ c + i ⊙ act(x * W_c + h * U_c + b_c)    h = o ⊙ act(c)

(σ the ``recurrent_activation``, ``act`` the ``activation``; weights kernel (*window, C, 4F), recurrent_kernel
(*window, F, 4F), bias (4F,) in Keras's gate order i, f, c, o). The input's convolutions run once over all steps;
the recurrent one per step, both through ``conv2d_forward`` (a 1-D layer is the 2-D computation on one column).
Training backpropagates through time; ``dropout``/``recurrent_dropout`` draw Keras's four masks per call (one per
gate, the same for every step) from fastgru's seeded generator. No masks, states in or out, or stateful runs:
those are refused by name.
"""

from __future__ import annotations

import numpy as np

from .. import activations, initializers
from ..errors import UnsupportedKerasFeature
from ..random import make_rng
from .base import Layer, compute_dtype
from .channels import data_format_of
from .conv import _TRAINING_ONLY, conv_output_length
from .conv2d import conv2d_backward, conv2d_forward, conv_constraints
from .registry import (
    ANY,
    NONE,
    ActivationName,
    Boolean,
    InitializerSpec,
    Integer,
    KerasContract,
    Real,
    register_layer,
    validate_params,
)

_UNSUPPORTED = ("return_state", "stateful")


class _ConvLSTM(Layer):

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)
    rank = 2
    weight_names = ("kernel", "recurrent_kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "recurrent_regularizer": "recurrent_kernel",
                           "bias_regularizer": "bias"}

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, dropout: float = 0.0, recurrent_dropout: float = 0.0, seed=None,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, **kwargs):
        super().__init__(**kwargs)
        label = f"{type(self).__name__} {self.name!r}"
        options = validate_params(label, self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias, dropout=dropout,
            recurrent_dropout=recurrent_dropout, seed=seed, return_sequences=return_sequences,
            return_state=return_state, go_backwards=go_backwards, stateful=stateful))
        self.__dict__.update(options)
        self.data_format = data_format_of(self, self.data_format)
        self.activation = activations.canonical_name(self.activation)
        self.recurrent_activation = activations.canonical_name(self.recurrent_activation)
        for option in _UNSUPPORTED:
            if options[option]:
                raise UnsupportedKerasFeature(f"{label}: {option}=True is not supported by fastgru")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{label}: strides > 1 together with dilation_rate > 1 is not supported (as in Keras), "
                             f"received strides={self.strides}, dilation_rate={self.dilation_rate}")
        self._rng = make_rng(seed)

    # ---- geometry: every computation is 2-D and channels last --------------------------------
    def _window(self):
        pad = (1,) * (2 - self.rank)
        return self.kernel_size + pad, self.strides + pad, self.dilation_rate + pad

    def _spatial(self, shape) -> tuple:
        """(spatial sizes..., channels) of a (B, T, ...) shape."""
        inner = tuple(shape[2:])
        return inner[1:] + inner[:1] if self.data_format == "channels_first" else inner

    def _to_internal(self, x: np.ndarray) -> np.ndarray:
        """(B, T, ...) in the layer's layout -> (B, T, H, W, C)."""
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 2, -1)
        return np.ascontiguousarray(x if self.rank == 2 else x[:, :, :, None, :])

    def _to_layout(self, y: np.ndarray) -> np.ndarray:
        """(..., H, W, F) -> the layer's layout (1-D: W dropped; channels_first: F before the spatial axes)."""
        y = y if self.rank == 2 else y[..., 0, :]
        return np.ascontiguousarray(np.moveaxis(y, -1, -1 - self.rank)) if self.data_format == "channels_first" else y

    def _from_layout(self, dy: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_first":
            dy = np.moveaxis(dy, -1 - self.rank, -1)
        return np.ascontiguousarray(dy if self.rank == 2 else dy[..., None, :])

    def compute_output_shape(self, input_shape: tuple):
        *sizes, _ = self._spatial(input_shape)
        out = [conv_output_length(s, k, self.padding, st, d)
               for s, k, st, d in zip(sizes, self.kernel_size, self.strides, self.dilation_rate)]
        step = (self.filters, *out) if self.data_format == "channels_first" else (*out, self.filters)
        return (input_shape[0], input_shape[1], *step) if self.return_sequences else (input_shape[0], *step)

    # ---- weights ----------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != self.rank + 3 or self._spatial(input_shape)[-1] is None:
            raise ValueError(f"{label} expects input of rank {self.rank + 3} (batch, steps, {self.rank} spatial axes "
                             f"and channels) with a known channel count, received shape {tuple(input_shape)}")
        if 0 in self.compute_output_shape(input_shape)[1:]:
            raise ValueError(f"{label}: a {self.kernel_size} window leaves no output from inputs of shape "
                             f"{tuple(input_shape)} (as in Keras, refused)")
        channels, f = int(self._spatial(input_shape)[-1]), self.filters
        self._add_weight("kernel", self.kernel_size + (channels, 4 * f), self.kernel_initializer, self._rng)
        self._add_weight("recurrent_kernel", self.kernel_size + (f, 4 * f), self.recurrent_initializer, self._rng)
        if self.use_bias:
            bias = self._add_weight("bias", (4 * f,), self.bias_initializer, self._rng)
            if self.unit_forget_bias:  # (Keras: [init(F), ones(F), init(2F)])
                init = initializers.get(self.bias_initializer)
                bias[:f] = init((f,), self.dtype, self._rng)
                bias[f:2 * f] = 1.0
                bias[2 * f:] = init((2 * f,), self.dtype, self._rng)
        super().build(input_shape)

    def _weights(self, dtype):
        """Kernel (kh, kw, C, 4F) and recurrent_kernel (kh, kw, F, 4F) as 2-D kernels, bias (4F,) or None."""
        window = self._window()[0]
        kernel = np.asarray(self._params["kernel"], dtype=dtype)
        recurrent = np.asarray(self._params["recurrent_kernel"], dtype=dtype)
        f = self.filters
        if kernel.shape[:self.rank] != self.kernel_size or kernel.shape[-1] != 4 * f or \
                recurrent.shape != self.kernel_size + (f, 4 * f):
            raise ValueError(f"{type(self).__name__} {self.name!r}: weights of shapes {kernel.shape} and "
                             f"{recurrent.shape} do not fit kernel_size {self.kernel_size} and {f} filters")
        bias = np.asarray(self._params["bias"], dtype=dtype) if self.use_bias else None
        if bias is not None and bias.shape != (4 * f,):
            raise ValueError(f"{type(self).__name__} {self.name!r}: bias of shape {bias.shape}, expected ({4 * f},)")
        return (kernel.reshape(window + kernel.shape[-2:]), recurrent.reshape(window + recurrent.shape[-2:]), bias)

    def _check_input(self, x, mask) -> np.ndarray:
        label = f"{type(self).__name__} {self.name!r}"
        if mask is not None:
            raise UnsupportedKerasFeature(f"{label}: masked sequences are not supported by fastgru's ConvLSTM")
        x = np.asarray(x)
        channels = self._params["kernel"].shape[-2]
        if x.ndim != self.rank + 3 or self._spatial(x.shape)[-1] != channels:
            raise ValueError(f"{label} expects input of rank {self.rank + 3} with {channels} channels, received "
                             f"shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{label} expects a numeric input array, received dtype {x.dtype}")
        if x.shape[1] == 0:
            raise ValueError(f"{label} needs at least one time step, received input shape {x.shape}")
        if 0 in self.compute_output_shape(x.shape)[1:] and 0 not in x.shape[2:]:
            raise ValueError(f"{label}: a {self.kernel_size} window leaves no output from inputs of shape {x.shape}")
        return self._to_internal(x.astype(compute_dtype(x, self), copy=False))

    # ---- computing --------------------------------------------------------------------------
    def _gate_masks(self, rate: float, shape: tuple, dtype, training: bool):
        """Keras's four dropout masks (one per gate, kept entries scaled by 1/(1-rate)), or None."""
        if not training or not 0.0 < rate < 1.0:
            return None
        return [((self._rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype) for _ in range(4)]

    def _gates_conv(self, x: np.ndarray, kernel: np.ndarray, masks, strides, padding: str, dilation):
        """The four gates' convolutions (…, 4F) of ``x`` (its masked copy per gate when masks are given) and what
        their backward needs: the padded input(s)."""
        if masks is None:
            return conv2d_forward(x, kernel, strides, padding, dilation)
        f = self.filters
        parts = [conv2d_forward(x * m, kernel[..., k * f:(k + 1) * f], strides, padding, dilation)
                 for k, m in enumerate(masks)]
        return np.concatenate([z for z, _ in parts], axis=-1), [xp for _, xp in parts]

    def _gates_conv_backward(self, dz, padded, kernel, masks, x_hw, strides, padding: str, dilation):
        """(dx, dkernel) of :meth:`_gates_conv`."""
        if masks is None:
            return conv2d_backward(dz, padded, kernel, x_hw, strides, padding, dilation)
        f = self.filters
        dx, dkernel = None, np.empty_like(kernel)
        for k, m in enumerate(masks):
            dxk, dkernel[..., k * f:(k + 1) * f] = conv2d_backward(
                np.ascontiguousarray(dz[..., k * f:(k + 1) * f]), padded[k], kernel[..., k * f:(k + 1) * f], x_hw,
                strides, padding, dilation)
            dx = dxk * m if dx is None else dx + dxk * m
        return dx, dkernel

    def _run(self, x: np.ndarray, training: bool, keep: bool):
        """The outputs (B, T, H', W', F) or (B, H', W', F) of internal (B, T, H, W, C) ``x``, and (when ``keep``)
        what the backward needs."""
        kernel, recurrent, bias = self._weights(x.dtype)
        window, strides, dilation = self._window()
        b, t = x.shape[:2]
        in_masks = self._gate_masks(self.dropout, (b, 1) + x.shape[2:], x.dtype, training)
        zx, x_padded = self._gates_conv(x.reshape((b * t,) + x.shape[2:]), kernel,
                                        None if in_masks is None else [np.broadcast_to(m, x.shape).reshape(
                                            (b * t,) + x.shape[2:]) for m in in_masks],
                                        strides, self.padding, dilation)
        zx = zx.reshape((b, t) + zx.shape[1:])
        if bias is not None:
            zx += bias
        f = self.filters
        h = np.zeros((b,) + zx.shape[2:4] + (f,), x.dtype)
        c = np.zeros_like(h)
        rec_masks = self._gate_masks(self.recurrent_dropout, h.shape, x.dtype, training)
        outputs, saved = [], []
        for step in (range(t - 1, -1, -1) if self.go_backwards else range(t)):
            zr, h_padded = self._gates_conv(h, recurrent, rec_masks, (1, 1), "same", (1, 1))
            z = zx[:, step] + zr
            i = activations.apply(self.recurrent_activation, z[..., :f])
            fg = activations.apply(self.recurrent_activation, z[..., f:2 * f])
            g = activations.apply(self.activation, z[..., 2 * f:3 * f])
            o = activations.apply(self.recurrent_activation, z[..., 3 * f:])
            c_prev = c
            c = fg * c + i * g
            act_c = activations.apply(self.activation, c)
            h = o * act_c
            if keep:
                saved.append((z, i, fg, g, o, c_prev, c, act_c, h_padded))
            if self.return_sequences:
                outputs.append(h)
        y = np.stack(outputs, axis=1) if self.return_sequences else h
        cache = (x.shape, x_padded, in_masks, rec_masks, saved) if keep else None
        return y, cache

    def call(self, x, mask=None, training: bool = False):
        return self._to_layout(self._run(self._check_input(x, mask), False, keep=False)[0])

    def forward(self, x, mask=None, training: bool = True):
        y, cache = self._run(self._check_input(x, mask), training, keep=True)
        return self._to_layout(y), cache

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, x_padded, in_masks, rec_masks, saved = cache
        dtype = saved[0][0].dtype
        kernel, recurrent, _ = self._weights(dtype)
        window, strides, dilation = self._window()
        dy = self._from_layout(np.asarray(dy)).astype(dtype, copy=False)
        b, t = x_shape[:2]
        f = self.filters
        state_shape = saved[0][1].shape
        expected = (b, t) + state_shape[1:] if self.return_sequences else state_shape
        if dy.shape != expected:
            raise ValueError(f"{type(self).__name__} {self.name!r}: output gradient of shape {dy.shape}, expected "
                             f"{expected}")
        order = list(range(t - 1, -1, -1)) if self.go_backwards else list(range(t))
        dzx = np.empty((b, t) + state_shape[1:3] + (4 * f,), dtype)
        d_recurrent = np.zeros_like(recurrent)
        dh = np.zeros(state_shape, dtype) if self.return_sequences else dy
        dc = np.zeros(state_shape, dtype)
        for k in range(t - 1, -1, -1):  # (k: the k-th step processed)
            z, i, fg, g, o, c_prev, c, act_c, h_padded = saved[k]
            if self.return_sequences:
                dh = dh + dy[:, k]
            do = dh * act_c
            dc = dc + activations.gradient(self.activation, c, act_c, dh * o)
            dz = np.concatenate([
                activations.gradient(self.recurrent_activation, z[..., :f], i, dc * g),
                activations.gradient(self.recurrent_activation, z[..., f:2 * f], fg, dc * c_prev),
                activations.gradient(self.activation, z[..., 2 * f:3 * f], g, dc * i),
                activations.gradient(self.recurrent_activation, z[..., 3 * f:], o, do)], axis=-1)
            dzx[:, order[k]] = dz
            dc = dc * fg
            dh, d_rec_step = self._gates_conv_backward(dz, h_padded, recurrent, rec_masks, state_shape[1:3], (1, 1),
                                                       "same", (1, 1))
            d_recurrent += d_rec_step
        flat = dzx.reshape((b * t,) + dzx.shape[2:])
        masks = None if in_masks is None else [np.broadcast_to(m, x_shape).reshape((b * t,) + x_shape[2:])
                                               for m in in_masks]
        dx, d_kernel = self._gates_conv_backward(flat, x_padded, kernel, masks, x_shape[2:4], strides, self.padding,
                                                 dilation)
        grads = [d_kernel.reshape(self._params["kernel"].shape).astype(self.dtype, copy=False),
                 d_recurrent.reshape(self._params["recurrent_kernel"].shape).astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(flat.sum(axis=(0, 1, 2)).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        return self._to_layout(dx.reshape(x_shape)), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({k: getattr(self, k) for k in self.parameter_constraints}, unroll=False,
                      zero_output_for_mask=False)  # (Keras's, at the values it runs)
        return config


def _constraints(rank: int) -> dict:
    """A ConvLSTM's options: a convolution's (without groups), a recurrent layer's."""
    options = {k: v for k, v in conv_constraints(rank).items() if k != "groups"}
    options.update({
        "recurrent_activation": [NONE, ActivationName()],
        "recurrent_initializer": [InitializerSpec()],
        "unit_forget_bias": [Boolean()],
        "dropout": [Real(0.0, 1.0)],
        "recurrent_dropout": [Real(0.0, 1.0)],
        "seed": [NONE, Integer(0)],
        "return_sequences": [Boolean()],
        "return_state": [Boolean()],
        "go_backwards": [Boolean()],
        "stateful": [Boolean()],
    })
    return options


_FIXED = {"unroll": ANY, "zero_output_for_mask": ANY, "time_major": False}


@register_layer
class ConvLSTM2D(_ConvLSTM):
    """Keras 3 ``ConvLSTM2D``: (B, T, H, W, C) -> (B, [T,] H', W', filters) (see the module docstring)."""

    rank = 2
    keras = KerasContract(names=("ConvLSTM2D",), ignored=_TRAINING_ONLY, fixed=_FIXED, weights="cell/vars")
    parameter_constraints = _constraints(2)
    contract_example = {"kwargs": {"filters": 2, "kernel_size": (2, 3), "padding": "same",
                                   "return_sequences": True}, "inputs": [(3, 4, 5, 2)]}


@register_layer
class ConvLSTM1D(_ConvLSTM):
    """Keras 3 ``ConvLSTM1D``: (B, T, W, C) -> (B, [T,] W', filters) (see the module docstring)."""

    rank = 1
    keras = KerasContract(names=("ConvLSTM1D",), ignored=_TRAINING_ONLY, fixed=_FIXED, weights="cell/vars")
    parameter_constraints = _constraints(1)
    contract_example = {"kwargs": {"filters": 2, "kernel_size": 3, "strides": 2}, "inputs": [(3, 7, 2)]}
