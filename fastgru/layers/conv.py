"""1-D convolution, Keras 3's ``Conv1D``: (B, T, C_in) -> (B, T_out, filters), ``channels_last``.

No im2col copy: the convolution is ``kernel_size`` accumulated GEMMs per group on shifted views of
the flattened, zero-padded input (``fastgru/_kernels/conv1d.py``): flat output row ``o`` is
``sum_k xf[o*stride + k*dilation] @ W[k]``, so one strided view per tap covers many sequences; the rows
that straddle two sequences are discarded. Backward: the kernel gradient per block of rows over a
small im2col block held in cache, the input gradient gathered per input row (``dY @ W[k]^T`` per tap,
accumulated in place, no col2im scatter). A call is split into tasks (ranges of flat rows) that
fastgru's threads take as they come free (``fastgru._threads.run_chunks``; SciPy's BLAS
single-threaded inside, as for the recurrent kernels); see docs/performance.md, Conv1D.

Padding as Keras: ``valid``; ``same`` (TensorFlow's split, the extra step on the right);
``causal`` (``dilation_rate * (kernel_size - 1)`` zeros on the left, then ``valid``).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import activations
from .._kernels import aligned
from .._kernels import conv1d as _conv
from .._kernels.packed import pack
from .._threads import kernel_blas_single_threaded, n_chunks_for, run_chunks
from ..ops.validation import writable
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


#: tasks per thread when a call is split: a thread slowed by another process's work (a shared machine)
#: takes fewer of them instead of holding up the call with a fixed share of the batch
TASKS_PER_THREAD = 4


def _task_bounds(n_tasks: int, *sizes: int) -> list[tuple[int, ...]]:
    """For each task, its contiguous share ``(start, stop)`` of each of ``sizes`` (flat row counts),
    concatenated: a fixed split for given sizes and task count (the kernel gradient is summed over
    tasks in this order: the same numbers whichever thread ran which task)."""
    return [tuple(v for size in sizes for v in (i * size // n_tasks, (i + 1) * size // n_tasks))
            for i in range(n_tasks)]


def _n_tasks(rows: int, n_threads: int) -> int:
    return 1 if n_threads <= 1 else max(1, min(rows, TASKS_PER_THREAD * n_threads))


def _run_tasks(task, bounds: list[tuple[int, ...]], n_threads: int) -> None:
    """Call ``task(c, i, *bounds[i])`` for every task ``i`` on ``n_threads`` threads (``run_chunks``;
    ``c`` is the thread's slot, for its own scratch buffers): each thread takes the next task until
    none is left."""
    if n_threads <= 1 or len(bounds) == 1:
        for i, b in enumerate(bounds):
            task(0, i, *b)
        return
    counter = itertools.count()  # next() on it is atomic under the GIL

    def worker(c, _b0, _b1):
        for i in iter(counter.__next__, None):
            if i >= len(bounds):
                return
            task(c, i, *bounds[i])

    run_chunks(worker, n_threads, n_threads)


@register_layer
class Conv1D(Layer):
    """Keras 3 ``Conv1D``. Weights: kernel (kernel_size, C_in/groups, filters), bias (filters,)."""

    keras = KerasContract(names=("Conv1D", "Convolution1D"), ignored=_TRAINING_ONLY, fixed={"lora_rank": None})
    parameter_constraints = {
        "filters": [Integer(1)],
        "kernel_size": [IntTuple(1)],
        "strides": [IntTuple(1)],
        "padding": [StrOptions(("valid", "same", "causal"), lower=True)],
        "data_format": [NONE, StrOptions(("channels_last", "channels_first"))],
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
        self.data_format = self.data_format or "channels_last"
        self.activation = activations.canonical_name(self.activation)
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"Conv1D {self.name!r}: strides > 1 together with dilation_rate > 1 is not supported "
                             f"(as in Keras), received strides={self.strides}, dilation_rate={self.dilation_rate}")
        if self.filters % self.groups:
            raise ValueError(f"Conv1D {self.name!r}: filters ({self.filters}) must be divisible by groups "
                             f"({self.groups})")
        self._rng = make_rng(None)

    # ---- shapes and weights ---------------------------------------------------------------
    @property
    def _first(self) -> bool:
        """channels_first: inputs and outputs (batch, channels, steps), computed channels last in between."""
        return self.data_format == "channels_first"

    def _layout(self) -> str:
        return "(batch, channels, steps)" if self._first else "(batch, steps, channels)"

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or input_shape[1 if self._first else -1] is None:
            raise ValueError(f"Conv1D {self.name!r} expects input of rank 3 {self._layout()} with a known "
                             f"channel count, received shape {tuple(input_shape)}")
        channels = self._in_channels = int(input_shape[1 if self._first else -1])
        if channels % self.groups:
            raise ValueError(f"Conv1D {self.name!r}: the input's channels ({channels}) must be divisible by groups "
                             f"({self.groups})")
        if self.compute_output_shape(input_shape)[2 if self._first else 1] == 0:
            raise ValueError(f"Conv1D {self.name!r}: a window of {self.kernel_size[0]} steps at dilation "
                             f"{self.dilation_rate[0]} leaves no output steps from inputs of {input_shape[1]} steps "
                             "(as in Keras, refused)")
        self._add_weight("kernel", (self.kernel_size[0], channels // self.groups, self.filters),
                        self.kernel_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        steps = conv_output_length(input_shape[2 if self._first else 1], self.kernel_size[0], self.padding,
                                   self.strides[0], self.dilation_rate[0])
        return (input_shape[0], self.filters, steps) if self._first else (input_shape[0], steps, self.filters)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` checked, in the compute dtype, channels last."""
        if x.ndim != 3 or x.shape[1 if self._first else -1] != self._in_channels:
            expected = f"(batch, {self._in_channels}, steps)" if self._first else f"(batch, steps, {self._in_channels})"
            raise ValueError(f"Conv1D {self.name!r} expects input {expected}, received shape {x.shape}")
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Conv1D {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        if self._first:
            x = np.ascontiguousarray(x.transpose(0, 2, 1))
        if x.shape[1] > 0 and self._geometry(x.shape[1])[3] <= 0:  # (as build refuses it for a known length)
            raise ValueError(f"Conv1D {self.name!r}: a window of {self.kernel_size[0]} steps at dilation "
                             f"{self.dilation_rate[0]} leaves no output steps from inputs of {x.shape[1]} steps")
        return x.astype(compute_dtype(x, self), copy=False)

    # ---- computing --------------------------------------------------------------------------
    def _geometry(self, steps: int):
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        out = conv_output_length(steps, k, self.padding, s, d)
        left, right = padding_amounts(steps, k, self.padding, s, d)
        return k, s, d, out, left, right

    def _flat_geometry(self, steps: int):
        """Geometry plus T_p, the padded length rounded up to a multiple of the stride (the flat layout
        of ``_kernels.conv1d``)."""
        k, s, d, out, left, right = self._geometry(steps)
        t_p = steps + left + right
        t_p += (-t_p) % s
        return k, s, d, out, left, t_p

    @staticmethod
    def _flat_input(x: np.ndarray, left: int, t_p: int) -> np.ndarray:
        """(B*T_p, C_in): x with ``left`` zero steps before it and zeros after it up to T_p steps (x's
        own rows, no copy, when no padding is needed)."""
        b, steps, c = x.shape
        if left == 0 and t_p == steps:
            return np.ascontiguousarray(x).reshape(b * steps, c)
        xp = np.empty((b, t_p, c), x.dtype)
        xp[:, :left] = 0
        xp[:, left + steps:] = 0
        xp[:, left:left + steps] = x
        return xp.reshape(b * t_p, c)

    def _kernel_array(self, dtype) -> np.ndarray:
        kernel = np.ascontiguousarray(self._params["kernel"], dtype=dtype)
        if kernel.shape != (self.kernel_size[0], self._in_channels // self.groups, self.filters):
            raise ValueError(f"Conv1D {self.name!r}: kernel of shape {kernel.shape}, expected "
                             f"{(self.kernel_size[0], self._in_channels // self.groups, self.filters)}")
        return kernel

    def _linear(self, x: np.ndarray):
        """The pre-activation conv(x) + bias (B, T_out, filters) and the flat padded input (kept for the backward)."""
        b, steps, c_in = x.shape
        k, s, d, out, left, t_p = self._flat_geometry(steps)
        xf = writable(self._flat_input(x, left, t_p))  # (read-only: copied, one compiled signature)
        kernel = self._kernel_array(x.dtype)
        bias = (np.ascontiguousarray(self._params["bias"], dtype=x.dtype) if self.use_bias
                else np.zeros(self.filters, x.dtype))
        if bias.shape != (self.filters,):
            raise ValueError(f"Conv1D {self.name!r}: bias of shape {bias.shape}, expected ({self.filters},)")
        z = np.empty((b, out, self.filters), x.dtype)
        if b * out == 0:
            return z, xf
        # tasks split the flat output rows (a few sequences each, or parts of one long sequence)
        n_threads = n_chunks_for(b * out, b * out * k * c_in * self.filters // self.groups)
        scratch = aligned.empty((n_threads, _conv.BLOCK, self.filters), x.dtype)
        # one group, no dilation: each block of output rows is one packed product over the windows
        # (the kernel packed once per call); otherwise one BLAS gemm per tap
        if self.groups == 1 and d == 1:
            packed_kernel = pack(kernel.reshape(k * c_in, self.filters))
        else:
            packed_kernel = np.zeros((0, 0, 0), x.dtype)
        kernel_blas_single_threaded()
        _run_tasks(lambda c, i, o0, o1: _conv.conv1d_forward_chunk(xf, kernel, packed_kernel, bias, self.use_bias, z,
                                                                   t_p, s, d, self.groups, scratch[c], o0, o1),
                   _task_bounds(_n_tasks(b * out, n_threads), b * (t_p // s)), n_threads)
        return z, xf

    def _to_layout(self, y: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(y.transpose(0, 2, 1)) if self._first else y

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(np.asarray(x))
        return self._to_layout(activations.apply(self.activation, self._linear(x)[0]))

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(np.asarray(x))
        z, xf = self._linear(x)
        y = activations.apply(self.activation, z)
        return self._to_layout(y), (x.shape, xf, z, y)

    def backward(self, dy, cache, need_dx: bool = True):
        x_shape, xf, z, y = cache
        dy = np.asarray(dy)
        if self._first:
            dy = np.ascontiguousarray(dy.transpose(0, 2, 1))
        if dy.shape != z.shape:
            raise ValueError(f"Conv1D {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = np.ascontiguousarray(activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False)))
        b, steps, c_in = x_shape
        k, s, d, out, left, t_p = self._flat_geometry(steps)
        if xf.shape != (b * t_p, c_in) or xf.dtype != dz.dtype:
            raise ValueError(f"Conv1D {self.name!r}: the forward cache does not match this layer's geometry")
        kernel = self._kernel_array(dz.dtype)
        t_q = t_p // s
        # one group, no dilation, stride 1: the input gradient is one packed product over windows of the
        # output gradient after k - 1 zero rows, against the taps' kernels transposed in reverse order
        windows_dx = need_dx and self.groups == 1 and d == 1 and s == 1
        if windows_dx:
            dzp = np.empty((k - 1 + b * t_q, self.filters), dz.dtype)
            dzp[:k - 1] = 0
            dzf = dzp[k - 1:]
            reversed_t = np.ascontiguousarray(kernel[::-1].transpose(0, 2, 1))  # (k, F, C_in), last tap first
            packed_kernel_t = pack(reversed_t.reshape(k * self.filters, c_in))
        else:
            dzp = np.zeros((0, self.filters), dz.dtype)
            dzf = np.empty((b * t_q, self.filters), dz.dtype)
            packed_kernel_t = np.zeros((0, 0, 0), dz.dtype)
        dxf = np.empty((b * t_p, c_in), dz.dtype) if need_dx else np.empty((0, c_in), dz.dtype)
        n_threads = n_chunks_for(b * out, 2 * b * out * k * c_in * self.filters // self.groups)
        # each task: a share of the flat output rows (kernel gradient) and of the input rows (dx)
        bounds = _task_bounds(_n_tasks(b * out, n_threads), b * t_q, b * t_p)
        dw_part = np.zeros((len(bounds),) + kernel.shape, dz.dtype)  # one per task, summed in task order
        width = k * (c_in // self.groups)
        if self.groups == 1 and d == 1:  # the kernel gradient reads the windows in place: no im2col blocks
            cols = np.empty((n_threads, 0, width), dz.dtype)
        else:
            block = max(_conv.DW_MIN_ROWS, min(_conv.DW_BLOCK, _conv.DW_BLOCK_BYTES // (width * dz.itemsize)))
            cols = np.empty((n_threads, block, width), dz.dtype)
        if b * out > 0:
            _conv.flat_output_gradient(dz, dzf, t_q)
            kernel_blas_single_threaded()
            _run_tasks(lambda c, i, o0, o1, i0, i1: _conv.conv1d_backward_chunk(
                xf, dzf, kernel, dxf, dw_part[i], cols[c], need_dx, t_p, s, d, self.groups, o0, o1, i0, i1, dzp,
                packed_kernel_t),
                bounds, n_threads)
        else:
            dxf[:] = 0
        dw = dw_part[0] if len(bounds) == 1 else dw_part.sum(axis=0)
        grads = [dw.astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz.reshape(b * out, self.filters).sum(axis=0).astype(self.dtype, copy=False))
        if not need_dx:
            return None, grads
        return self._to_layout(dxf.reshape(b, t_p, c_in)[:, left:left + steps, :]), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format=self.data_format, dilation_rate=self.dilation_rate,
                      groups=self.groups, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer)
        return config
