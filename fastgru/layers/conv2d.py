"""2-D convolution, Keras 3's ``Conv2D``: (B, H, W, C_in) -> (B, H_out, W_out, filters) (``channels_first``:
(B, C, H, W), transposed to channels last around the same computation).

The front end of a CRNN (a spectrogram or an image read by a few convolutions, then reshaped into a sequence
for a GRU or LSTM: Keras's speech recognition and OCR examples). Computed as blocked im2col products: the
windows of the padded input are a strided view (B, H_out, W_out, kh, kw, C); a block of output rows copies
its windows into a (rows, kh*kw*C) matrix, bounded to ``BLOCK_BYTES``, and multiplies it by the kernel
reshaped to (kh*kw*C, filters) (NumPy's BLAS). Backward: the kernel gradient from the same blocks
(``cols^T @ dZ``), the input gradient as one product per kernel tap added onto the strided input positions it
read. Padding as Keras (TensorFlow's split: the extra row or column at the end).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import activations
from .._threads import kernel_blas_single_threaded, kernel_threads, n_chunks_for, run_chunks
from ..random import make_rng
from .base import Layer
from .channels import ChannelsLayout, data_format_of
from .conv import _TRAINING_ONLY, conv_output_length, padding_amounts
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

#: the most bytes one block of copied windows (im2col rows) may take
BLOCK_BYTES = 16 << 20


def pad_2d(x: np.ndarray, window, strides, padding: str, dilation, fill: float = 0.0):
    """The (B, H_pad, W_pad, C) padded input, the output (H_out, W_out) and the (top, left) padding."""
    _, h, w, _ = x.shape
    ho = conv_output_length(h, window[0], padding, strides[0], dilation[0])
    wo = conv_output_length(w, window[1], padding, strides[1], dilation[1])
    top, bottom = padding_amounts(h, window[0], padding, strides[0], dilation[0])
    left, right = padding_amounts(w, window[1], padding, strides[1], dilation[1])
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    return x, (ho, wo), (top, left)


def tap_slices(i: int, j: int, strides, dilation, out_hw) -> tuple:
    """The strided (rows, columns) of a padded input that kernel tap (i, j) reads for every output position."""
    return (slice(i * dilation[0], i * dilation[0] + strides[0] * (out_hw[0] - 1) + 1, strides[0]),
            slice(j * dilation[1], j * dilation[1] + strides[1] * (out_hw[1] - 1) + 1, strides[1]))


def row_blocks(batch: int, rows: int, row_bytes: int, budget: int = BLOCK_BYTES):
    """(b0, b1, h0, h1) blocks of output rows whose copied windows take at most ``budget`` bytes (at least one
    row): whole images where they fit, else parts of one image."""
    per_block = max(1, budget // max(1, row_bytes))
    if per_block >= rows:
        images = max(1, per_block // max(1, rows))
        for b0 in range(0, batch, images):
            yield b0, min(batch, b0 + images), 0, rows
        return
    for b in range(batch):
        for h0 in range(0, rows, per_block):
            yield b, b + 1, h0, min(rows, h0 + per_block)


def _blocks(xp: np.ndarray, window, out_hw) -> list:
    """(b0, b1, h0, h1) blocks of output rows whose copied windows take at most ``BLOCK_BYTES``, at least two
    per thread where the call is large enough to split (fastgru's threads take them as they come free)."""
    row_bytes = out_hw[1] * window[0] * window[1] * xp.shape[3] * xp.itemsize
    threads = kernel_threads()
    total = xp.shape[0] * out_hw[0] * row_bytes
    budget = min(BLOCK_BYTES, max(row_bytes, total // (2 * threads))) if threads > 1 else BLOCK_BYTES
    return list(row_blocks(xp.shape[0], out_hw[0], row_bytes, budget))


def _window_cols(xp: np.ndarray, window, strides, dilation, out_hw, groups: int, block, scratch) -> list:
    """The windows of one block of output rows copied into a (rows, kh*kw*C/groups) matrix per group (filled
    one kernel row at a time: its kw windows side by side, contiguous in the input without dilation), in the
    thread's ``scratch`` (1-D, large enough for the call's largest block: no allocation per block)."""
    kh, kw = window
    b0, b1, h0, h1 = block
    channels = xp.shape[3]
    c_group = channels // groups
    shape = (b1 - b0, h1 - h0, out_hw[1], kh, kw, channels)
    buf = scratch[:int(np.prod(shape))].reshape(shape)
    s0, s1, s2, s3 = xp.strides
    for i in range(kh):
        first = xp[b0:b1, h0 * strides[0] + i * dilation[0]:]
        buf[:, :, :, i] = as_strided(first, shape=(b1 - b0, h1 - h0, out_hw[1], kw, channels),
                                     strides=(s0, s1 * strides[0], s2 * strides[1], s2 * dilation[1], s3),
                                     writeable=False)
    if groups == 1:
        return [buf.reshape(-1, kh * kw * channels)]
    return [buf[..., g * c_group:(g + 1) * c_group].reshape(-1, kh * kw * c_group) for g in range(groups)]


def _run_blocks(task, blocks: list, work: float, xp: np.ndarray, window, out_hw) -> None:
    """``task(i, scratch)`` for every block, on fastgru's threads (a thread takes the next block as it comes free;
    each block's copies and products release the GIL), each thread with one scratch buffer for its window
    matrices; the BLAS single-threaded underneath."""
    kernel_blas_single_threaded()
    chunks = n_chunks_for(len(blocks), work)
    largest = max((b1 - b0) * (h1 - h0) for b0, b1, h0, h1 in blocks) * out_hw[1] * window[0] * window[1]
    scratch = np.empty((chunks, largest * xp.shape[3]), xp.dtype)
    if chunks <= 1:
        for i in range(len(blocks)):
            task(i, scratch[0])
        return
    counter = itertools.count()  # (next() on it is atomic under the GIL)

    def worker(c, _b0, _b1):
        for i in iter(counter.__next__, None):
            if i >= len(blocks):
                return
            task(i, scratch[c])

    run_chunks(worker, chunks, chunks)


def conv2d_forward(x: np.ndarray, kernel: np.ndarray, strides, padding: str, dilation, groups: int = 1):
    """The convolution (B, H_out, W_out, F) of a channels-last (B, H, W, C) ``x`` by a (kh, kw, C/groups, F)
    ``kernel`` (no bias), and the padded input (kept for :func:`conv2d_backward`)."""
    window = kernel.shape[:2]
    xp, out_hw, _ = pad_2d(x, window, strides, padding, dilation)
    filters = kernel.shape[3]
    f_group = filters // groups
    flat = [np.ascontiguousarray(kernel[..., g * f_group:(g + 1) * f_group]).reshape(-1, f_group)
            for g in range(groups)]
    z = np.empty((x.shape[0],) + out_hw + (filters,), x.dtype)
    if not z.size:
        return z, xp
    blocks = _blocks(xp, window, out_hw)

    def task(i, scratch):
        b0, b1, h0, h1 = blocks[i]
        out = z[b0:b1, h0:h1].reshape(-1, filters)
        for g, c in enumerate(_window_cols(xp, window, strides, dilation, out_hw, groups, blocks[i], scratch)):
            if groups == 1:
                np.matmul(c, flat[g], out=out)
            else:
                out[:, g * f_group:(g + 1) * f_group] = c @ flat[g]

    _run_blocks(task, blocks, z.size * flat[0].shape[0], xp, window, out_hw)
    return z, xp


def conv2d_backward(dz: np.ndarray, xp: np.ndarray, kernel: np.ndarray, x_hw, strides, padding: str, dilation,
                    groups: int = 1, need_dx: bool = True):
    """(dx (B, H, W, C) or None, dkernel) of :func:`conv2d_forward` from the output gradient ``dz`` (B, H_out,
    W_out, F), the padded input it kept and the input's (H, W). The kernel gradient is summed over the blocks in
    their order (the same numbers whatever thread ran which)."""
    window, filters = kernel.shape[:2], kernel.shape[3]
    out_hw = dz.shape[1:3]
    f_group, c_group = filters // groups, kernel.shape[2]
    dw = np.zeros((groups, window[0] * window[1] * c_group, f_group), dz.dtype)
    work = dz.size * window[0] * window[1] * c_group
    if dz.size:
        blocks = _blocks(xp, window, out_hw)
        parts = [None] * len(blocks)

        def task(i, scratch):
            b0, b1, h0, h1 = blocks[i]
            dz_block = dz[b0:b1, h0:h1].reshape(-1, filters)
            cols = _window_cols(xp, window, strides, dilation, out_hw, groups, blocks[i], scratch)
            parts[i] = [c.T @ dz_block[:, g * f_group:(g + 1) * f_group] for g, c in enumerate(cols)]

        _run_blocks(task, blocks, work, xp, window, out_hw)
        for part in parts:
            for g in range(groups):
                dw[g] += part[g]
    dkernel = np.concatenate([dw[g].reshape(kernel.shape[:3] + (f_group,)) for g in range(groups)], axis=3)
    if not need_dx:
        return None, dkernel
    dxp = np.zeros(xp.shape, dz.dtype)

    def images(_c, b0, b1):  # (each thread its own images, every tap: no two threads add onto one position)
        for i in range(window[0]):
            for j in range(window[1]):
                rows, columns = tap_slices(i, j, strides, dilation, out_hw)
                for g in range(groups):
                    f0, f1 = g * f_group, (g + 1) * f_group
                    dxp[b0:b1, rows, columns, g * c_group:(g + 1) * c_group] += dz[b0:b1, ..., f0:f1] @ kernel[i, j, :,
                                                                                                                 f0:f1].T

    kernel_blas_single_threaded()
    run_chunks(images, dz.shape[0], n_chunks_for(dz.shape[0], work))
    h, w = x_hw
    top, _ = padding_amounts(h, window[0], padding, strides[0], dilation[0])
    left, _ = padding_amounts(w, window[1], padding, strides[1], dilation[1])
    return dxp[:, top:top + h, left:left + w], dkernel


def conv_constraints(rank: int) -> dict:
    """The options of a ``rank``-D convolution (Conv2D, Conv3D), as Keras 3 names them."""
    return {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(rank)],
        "strides": [IntTuple(rank)],
        "padding": [StrOptions(("valid", "same"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
        "dilation_rate": [IntTuple(rank)],
        "groups": [Integer(1)],
        "activation": [NONE, ActivationName()],
        "use_bias": [Boolean()],
        "kernel_initializer": [InitializerSpec()],
        "bias_initializer": [InitializerSpec()],
    }


class SpatialConv(ChannelsLayout, Layer):
    """What Conv2D and Conv3D share: options, shapes, weights kernel (*window, C_in/groups, filters) and bias
    (filters,), inputs checked and turned channels last. Subclasses compute ``_linear`` and its backward."""

    rank = 2
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, groups: int = 1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        label = f"{type(self).__name__} {self.name!r}"
        options = validate_params(label, self.parameter_constraints, dict(
            filters=filters, kernel_size=kernel_size, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate, groups=groups, activation=activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer))
        self.__dict__.update(options)
        self.data_format = data_format_of(self, self.data_format)
        self.activation = activations.canonical_name(self.activation)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{label}: strides > 1 together with dilation_rate > 1 is not supported (as in Keras), "
                             f"received strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.filters % self.groups:
            raise ValueError(f"{label}: filters ({self.filters}) must be divisible by groups ({self.groups})")
        self._rng = make_rng(None)

    # ---- shapes and weights ---------------------------------------------------------------
    def _out_sizes(self, sizes) -> list:
        return [conv_output_length(s, k, self.padding, st, d) for s, k, st, d in
                zip(sizes, self.kernel_size, self.strides, self.dilation_rate)]

    def compute_output_shape(self, input_shape: tuple):
        out = self._out_sizes(self._sizes(input_shape))
        return (input_shape[0], self.filters, *out) if self.data_format == "channels_first" else \
            (input_shape[0], *out, self.filters)

    def build(self, input_shape: tuple) -> None:
        label = f"{type(self).__name__} {self.name!r}"
        if len(input_shape) != self.rank + 2 or self._channels(input_shape) is None:
            raise ValueError(f"{label} expects input of rank {self.rank + 2} ({self._layout}) with a known channel "
                             f"count, received shape {tuple(input_shape)}")
        channels = int(self._channels(input_shape))
        if channels % self.groups:
            raise ValueError(f"{label}: the input's channels ({channels}) must be divisible by groups ({self.groups})")
        if 0 in self.compute_output_shape(input_shape)[1:]:
            raise ValueError(f"{label}: a {self.kernel_size} window at dilation {self.dilation_rate} leaves no output "
                             f"from inputs of shape {tuple(input_shape)} (as in Keras, refused)")
        self._add_weight("kernel", self.kernel_size + (channels // self.groups, self.filters),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def _check_input(self, x) -> np.ndarray:
        """``x`` checked, in the compute dtype and channels last."""
        shape = np.shape(x)
        x = self._channels_last_input(x, self._params["kernel"].shape[-2] * self.groups)
        if 0 in self._out_sizes(x.shape[1:-1]) and 0 not in x.shape[1:-1]:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a {self.kernel_size} window at dilation "
                             f"{self.dilation_rate} leaves no output from inputs of shape {shape}")
        return x

    def _weights(self, dtype):
        label = f"{type(self).__name__} {self.name!r}"
        kernel = np.asarray(self._params["kernel"], dtype=dtype)
        expected = self.kernel_size + (kernel.shape[-2], self.filters)
        if kernel.shape != expected:
            raise ValueError(f"{label}: kernel of shape {kernel.shape}, expected {expected}")
        bias = np.asarray(self._params["bias"], dtype=dtype) if self.use_bias else None
        if bias is not None and bias.shape != (self.filters,):
            raise ValueError(f"{label}: bias of shape {bias.shape}, expected ({self.filters},)")
        return kernel, bias

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate,
                      groups=self.groups, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config


@register_layer
class Conv2D(SpatialConv):
    """Keras 3 ``Conv2D``. Weights: kernel (kh, kw, C_in/groups, filters), bias (filters,)."""

    keras = KerasContract(names=("Conv2D", "Convolution2D"), ignored=_TRAINING_ONLY, fixed={"lora_rank": None})
    parameter_constraints = conv_constraints(2)
    contract_example = {"kwargs": {"filters": 3, "kernel_size": (2, 3), "padding": "same", "strides": (1, 2)},
                        "inputs": [(5, 6, 2)]}

    # ---- computing --------------------------------------------------------------------------
    def _linear(self, x: np.ndarray):
        """The pre-activation (B, H_out, W_out, filters), channels last, and the padded input."""
        kernel, bias = self._weights(x.dtype)
        z, xp = conv2d_forward(x, kernel, self.strides, self.padding, self.dilation_rate, self.groups)
        if bias is not None:
            z += bias
        return z, xp

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(x)
        return self._to_layout(activations.apply(self.activation, self._linear(x)[0]))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        z, xp = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, xp, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xp, z, y = cache
        dy = self._from_layout(np.asarray(dy))
        if dy.shape != z.shape:
            raise ValueError(f"Conv2D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = np.ascontiguousarray(activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False)))
        kernel, _ = self._weights(dz.dtype)
        dx, dkernel = conv2d_backward(dz, xp, kernel, x_shape[1:3], self.strides, self.padding, self.dilation_rate,
                                      self.groups, need_dx)
        grads = [dkernel.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.sum(axis=(0, 1, 2)).astype(self.dtype, copy=False))
        return (self._to_layout(dx) if need_dx else None), grads
