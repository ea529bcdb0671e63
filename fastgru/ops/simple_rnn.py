"""SimpleRNN at the array level: prepared weights, inference, the training forward and BPTT, and the
public ``simple_rnn_forward`` / ``simple_rnn_forward_train`` / ``simple_rnn_backward`` with validation.

Shapes: B batch, T steps, D features, H units; Keras's layout (kernel (D, H), recurrent_kernel (H, H),
bias (H,)); ``h_t = act((x_t m_x) W + b + (h_{t-1} m_h) U)`` (Keras 3's ``SimpleRNNCell``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations
from .._kernels import aligned
from .._kernels import simple_rnn as _srnn
from .._kernels.activations import fast_code
from .._kernels.atomics import NO_POST
from .._kernels.rnn_common import LoopFlags
from .._kernels.task_records import KIND_SIMPLE_RNN
from .._threads import kernel_blas_single_threaded, n_chunks_for, run_chunks
from .common import EMPTY_MASK, training_activation_codes, views_of
from .validation import (
    _as_float_array,
    _check_finite,
    _check_mask,
    _check_shape,
    _internal,
    _validate_state,
    _validate_weights,
    _validate_x,
    check_backward_args,
    check_flags,
    writable,
)

_EMPTY2 = {np.dtype(np.float32): np.zeros((0, 0), np.float32), np.dtype(np.float64): np.zeros((0, 0), np.float64)}


class PreparedSimpleRNN:
    """SimpleRNN weights laid out for the kernels (once per weight change, not per call)."""

    __slots__ = ("w", "b", "u", "units", "_ut", "views")

    def __init__(self, kernel, recurrent_kernel, bias):
        units = recurrent_kernel.shape[0]
        self.units = units
        self.w = np.ascontiguousarray(kernel)
        self.u = np.ascontiguousarray(recurrent_kernel)
        self.b = np.zeros(units, kernel.dtype) if bias is None else np.ascontiguousarray(bias)
        self._ut = None
        #: w, u and b show the given weights' current values (views, no copies); ut, made on first
        #: use, is a copy
        self.views = views_of((self.w, kernel), (self.u, recurrent_kernel),
                               *(() if bias is None else ((self.b, bias),)))

    @property
    def ut(self) -> np.ndarray:
        """(H, H): ``U^T``, C-contiguous (the backward's step product)."""
        if self._ut is None:
            self._ut = np.ascontiguousarray(self.u.T)
        return self._ut


class SimpleRNNGradients(NamedTuple):
    """Gradients of a SimpleRNN's loss, shaped like their arguments (dbias None without bias)."""

    dx: np.ndarray
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    dh0: np.ndarray


# ---- the kernels' guard (Numba does no bounds checking) -------------------------------------------
def _check_run_args(x, prepared: PreparedSimpleRNN, h0, mask) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.dtype not in (np.float32, np.float64) \
            or not x.flags.c_contiguous:
        found = f"shape {x.shape}, dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a C-contiguous float32/float64 array of rank 3, found {found}")
    bsz, steps, d = x.shape
    h, dtype = prepared.units, x.dtype
    _internal("kernel", prepared.w, (d, h), dtype)
    _internal("bias", prepared.b, (h,), dtype)
    _internal("recurrent_kernel", prepared.u, (h, h), dtype)
    if h0 is not None:
        _internal("initial state", h0, (bsz, h), dtype)
    if mask is not None:
        _internal("mask", mask, (bsz, steps), np.uint8)


def _check_masks(x, units: int, input_mask, recurrent_mask) -> None:
    bsz, _, d = x.shape
    if input_mask is not None:
        _internal("dropout mask", input_mask, (bsz, d), x.dtype)
    if recurrent_mask is not None:
        _internal("recurrent dropout mask", recurrent_mask, (bsz, units), x.dtype)


def _kernel_masks(x, input_mask, recurrent_mask):
    """The masks as the kernels take them: imask (n, B, D) with n 0 or 1, rmask (B, H) or (0, 0)."""
    dtype = x.dtype
    imask = np.zeros((0, 0, 0), dtype) if input_mask is None else input_mask[None]
    rmask = _EMPTY2[dtype] if recurrent_mask is None else recurrent_mask
    return imask, imask.shape[0], rmask, recurrent_mask is not None


def _allocate(x, units, h0, return_sequences):
    bsz, steps, _ = x.shape
    h0 = np.zeros((bsz, units), x.dtype) if h0 is None else h0
    out = aligned.zeros((bsz, steps if return_sequences else 1, units), x.dtype)
    return h0, out, np.empty((bsz, units), x.dtype)


def run_simple_rnn(
    x: np.ndarray,
    prepared: PreparedSimpleRNN,
    h0: np.ndarray | None,
    mask: np.ndarray | None,
    act: int,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool = False,
):
    """SimpleRNN inference on validated arrays: ``(outputs, h_last)``.

    outputs (B, T, H) with ``return_sequences`` else (B, H); h_last (B, H).
    """
    x, h0 = writable(x), writable(h0)  # (one compiled signature: read-only inputs copied)
    _check_run_args(x, prepared, h0, mask)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    h0, out, h_last = _allocate(x, units, h0, return_sequences)
    if bsz * steps == 0:
        h_last[:] = h0
        return (out if return_sequences else out[:, 0]), h_last
    use_mask = mask is not None
    work = bsz * steps * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    kernel_blas_single_threaded()
    args = (x, prepared.w, prepared.b, prepared.u, h0, mask if use_mask else EMPTY_MASK, use_mask,
            (fast_code(act, dtype), 0, go_backwards, return_sequences, zero_output_for_mask), out, h_last)
    if n_chunks == 1:
        _srnn.simple_rnn_forward_chunk(0, bsz, *args)
    else:
        run_chunks(lambda c, b0, b1, post=NO_POST: _srnn.simple_rnn_forward_chunk(b0, b1, *args, post), bsz,
                   n_chunks, work=work, posts=True, record_kind=KIND_SIMPLE_RNN if dtype == np.float32 else 0)
    return (out if return_sequences else out[:, 0]), h_last


def run_simple_rnn_train(
    x, prepared: PreparedSimpleRNN, h0, mask, act: int, return_sequences: bool, go_backwards: bool,
    zero_output_for_mask: bool = False, input_mask=None, recurrent_mask=None,
):
    """Training forward on validated arrays: ``(outputs, h_last, saved)``.

    act from :func:`training_activation_codes`; input_mask None or (B, D), recurrent_mask None or
    (B, H), scaled by 1/(1 - rate) (Keras's dropout, constant over time). saved (B, T, 2H) (layout in
    ``fastgru._kernels.simple_rnn``): keep it for :func:`run_simple_rnn_backward`.
    """
    x, h0 = writable(x), writable(h0)  # (one compiled signature: read-only inputs copied)
    _check_run_args(x, prepared, h0, mask)
    _check_masks(x, prepared.units, input_mask, recurrent_mask)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    h0, out, h_last = _allocate(x, units, h0, return_sequences)
    saved = aligned.empty_reused((bsz, steps, _srnn.N_SAVED * units), dtype)
    if bsz * steps == 0:
        h_last[:] = h0
        return (out if return_sequences else out[:, 0]), h_last, saved
    imask, n_imask, rmask, use_rmask = _kernel_masks(x, input_mask, recurrent_mask)
    use_mask = mask is not None
    work = bsz * steps * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    kernel_blas_single_threaded()
    kw = dict(
        x=x, w=prepared.w, b=prepared.b, imask=imask, n_imask=n_imask, u=prepared.u, rmask=rmask,
        use_rmask=use_rmask, h0=h0, mask=mask if use_mask else EMPTY_MASK, use_mask=use_mask,
        flags=LoopFlags(fast_code(act, dtype), 0, go_backwards, return_sequences, zero_output_for_mask),
        out=out, h_last=h_last, saved=saved,
    )
    run_chunks(lambda c, b0, b1: _srnn.simple_rnn_forward_train_chunk(b0, b1, **kw), bsz, n_chunks, work=work)
    return (out if return_sequences else out[:, 0]), h_last, saved


def run_simple_rnn_backward(
    x, prepared: PreparedSimpleRNN, saved, mask, act: int, return_sequences: bool, go_backwards: bool,
    zero_output_for_mask: bool, d_out, d_h_last=None, input_mask=None, recurrent_mask=None,
    need_dx: bool = True,
):
    """BPTT on validated arrays: ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``.

    Arguments as given to :func:`run_simple_rnn_train`, plus the gradients of the outputs (like the
    outputs; None for zeros) and of the final state (B, H) (None for zeros). Overwrites ``saved`` (one
    backward per forward). dx is None when ``need_dx`` is False (one GEMM less).
    """
    x = writable(x)
    _check_run_args(x, prepared, None, mask)
    _check_masks(x, prepared.units, input_mask, recurrent_mask)
    check_backward_args(x, prepared.units, saved, _srnn.N_SAVED, return_sequences, d_out, (d_h_last,))
    bsz, steps, d = x.shape
    units = prepared.units
    dtype = x.dtype
    d_h_last = np.zeros((bsz, units), dtype) if d_h_last is None else np.ascontiguousarray(d_h_last, dtype)
    if d_out is None:
        d_out3 = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    else:
        d_out3 = np.ascontiguousarray(d_out if return_sequences else d_out[:, None, :], dtype)
    dh0 = np.empty((bsz, units), dtype)
    if bsz * steps == 0:
        dh0[:] = d_h_last
        return (np.zeros_like(x) if need_dx else None), np.zeros_like(prepared.w), np.zeros_like(
            prepared.u), np.zeros(units, dtype), dh0
    imask, n_imask, rmask, use_rmask = _kernel_masks(x, input_mask, recurrent_mask)
    use_mask = mask is not None
    work = 2 * bsz * steps * units * (x.shape[2] + units)  # BPTT: ~2x the forward
    n_chunks = n_chunks_for(bsz, work)
    dx = aligned.empty(x.shape, x.dtype) if need_dx else aligned.empty((0, 0, d), dtype)
    dw_part = aligned.empty((n_chunks,) + prepared.w.shape, dtype)
    du_part = aligned.empty((n_chunks,) + prepared.u.shape, dtype)
    db_part = np.empty((n_chunks, units), np.float64)
    kw = dict(
        saved=saved, ut=prepared.ut, rmask=rmask, use_rmask=use_rmask, d_out=d_out3, dh_last=d_h_last,
        mask=mask if use_mask else EMPTY_MASK, use_mask=use_mask,
        flags=LoopFlags(fast_code(act, dtype), 0, go_backwards, return_sequences, zero_output_for_mask),
        x=x, w=prepared.w, imask=imask, n_imask=n_imask, dx=dx, dh0=dh0,
    )
    kernel_blas_single_threaded()
    run_chunks(lambda c, b0, b1: _srnn.simple_rnn_backward_chunk(b0, b1, dw=dw_part[c], du=du_part[c],
                                                                 db=db_part[c], **kw), bsz, n_chunks, work=work)
    dbias = db_part.sum(axis=0).astype(dtype)
    return (dx if need_dx else None), dw_part.sum(axis=0), du_part.sum(axis=0), dbias, dh0


# ---- the public functions -------------------------------------------------------------------------
def validate_simple_rnn_args(x, kernel, recurrent_kernel, bias, h0, mask):
    """Check and convert the SimpleRNN arguments (kernel (D, H), recurrent_kernel (H, H), bias (H,));
    contiguous arrays in the compute dtype."""
    x = _validate_x(x)
    bsz, steps, _ = x.shape
    kernel, recurrent_kernel, bias, units = _validate_weights(
        x, kernel, recurrent_kernel, bias, 1, lambda h: (h,)
    )
    h0 = _validate_state("h0", h0, bsz, units, x.dtype)
    if mask is not None:
        mask = _check_mask(mask, bsz, steps)
    return x, kernel, recurrent_kernel, bias, h0, mask


def _check_dropout_masks(dropout_mask, recurrent_dropout_mask, bsz, d, units, dtype):
    masks = []
    for name, m, shape in (("dropout_mask", dropout_mask, (bsz, d)),
                           ("recurrent_dropout_mask", recurrent_dropout_mask, (bsz, units))):
        if m is not None:
            m = _as_float_array(name, m, dtype)
            _check_shape(name, m, shape)
            _check_finite(name, m)
        masks.append(m)
    return masks


def simple_rnn_forward(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, activation: str = "tanh", return_sequences: bool = False,
    go_backwards: bool = False, mask=None, zero_output_for_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """SimpleRNN forward pass over a batch of sequences, with Keras's semantics.

    Args:
        x: (B, T, D) float32 or float64; the computation runs in x's dtype.
        kernel: (D, H) input weights.
        recurrent_kernel: (H, H) recurrent weights.
        bias: (H,) or None.
        h0: (B, H) initial state (zeros when None).
        activation: the activation's name (see ``fastgru.activations``).
        return_sequences: all outputs (B, T, H) instead of the last (B, H).
        go_backwards: process the sequence in reverse; outputs in processing order, as Keras.
        mask: (B, T) booleans; a masked step keeps the state and repeats the previous output.
        zero_output_for_mask: masked steps output zeros instead.

    Returns:
        ``(outputs, h_last)``.
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, mask = validate_simple_rnn_args(x, kernel, recurrent_kernel, bias, h0,
                                                                           mask)
    return run_simple_rnn(x, PreparedSimpleRNN(kernel, recurrent_kernel, bias), h0, mask,
                          activations.kernel_code(activation), return_sequences, go_backwards, zero_output_for_mask)


class SimpleRNNTrainCache:
    """What :func:`simple_rnn_forward_train` keeps for the backward; call :meth:`backward` once."""

    def __init__(self, x, prepared, mask, act, flags, masks, saved, has_bias, out_shape):
        self.x, self.prepared, self.mask, self.act = x, prepared, mask, act
        self.flags, self.masks, self.saved = flags, masks, saved
        self.has_bias, self.out_shape = has_bias, out_shape

    def backward(self, d_outputs=None, d_h_last=None) -> SimpleRNNGradients:
        """Gradients given those of the outputs (like the outputs) and of the final state (B, H); either
        may be None (zeros). A second call raises ``RuntimeError``."""
        if self.saved is None:
            raise RuntimeError("this SimpleRNN training cache was already used by a backward pass; "
                               "run the forward again")
        dtype = self.x.dtype
        checked = []
        for name, arr, shape in (("d_outputs", d_outputs, self.out_shape),
                                 ("d_h_last", d_h_last, (self.x.shape[0], self.prepared.units))):
            if arr is not None:
                arr = _as_float_array(name, arr, dtype)
                _check_shape(name, arr, shape)
            checked.append(arr)
        saved, self.saved = self.saved, None
        dx, dw, du, db, dh0 = run_simple_rnn_backward(
            self.x, self.prepared, saved, self.mask, self.act, *self.flags, *checked, *self.masks
        )
        return SimpleRNNGradients(dx, dw, du, db if self.has_bias else None, dh0)


def simple_rnn_forward_train(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, activation: str = "tanh", return_sequences: bool = False,
    go_backwards: bool = False, mask=None, zero_output_for_mask: bool = False, dropout_mask=None,
    recurrent_dropout_mask=None,
):
    """SimpleRNN forward in training mode: ``(outputs, h_last, cache)``; ``cache.backward(...)`` gives
    :class:`SimpleRNNGradients`.

    Arguments as :func:`simple_rnn_forward`, plus Keras's dropout as explicit masks scaled by
    1/(1 - rate), constant over time: dropout_mask None or (B, D), multiplying the inputs;
    recurrent_dropout_mask None or (B, H), multiplying h_prev before the recurrent product. Raises
    ``UnsupportedKerasFeature`` for activations whose derivative the backward cannot take (swish, gelu).
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, mask = validate_simple_rnn_args(x, kernel, recurrent_kernel, bias, h0,
                                                                           mask)
    act, _ = training_activation_codes(activation, "sigmoid", "SimpleRNN")
    bsz, _, d = x.shape
    units = recurrent_kernel.shape[0]
    masks = _check_dropout_masks(dropout_mask, recurrent_dropout_mask, bsz, d, units, x.dtype)
    prepared = PreparedSimpleRNN(kernel, recurrent_kernel, bias)
    flags = (return_sequences, go_backwards, zero_output_for_mask)
    outputs, h_last, saved = run_simple_rnn_train(x, prepared, h0, mask, act, *flags, *masks)
    cache = SimpleRNNTrainCache(x, prepared, mask, act, flags, masks, saved, bias is not None, outputs.shape)
    return outputs, h_last, cache


def simple_rnn_backward(
    x, kernel, recurrent_kernel, bias=None, *, d_outputs=None, d_h_last=None, h0=None, activation: str = "tanh",
    return_sequences: bool = False, go_backwards: bool = False, mask=None, zero_output_for_mask: bool = False,
    dropout_mask=None, recurrent_dropout_mask=None,
) -> SimpleRNNGradients:
    """Gradients of a SimpleRNN by BPTT: the training forward (same arguments as
    :func:`simple_rnn_forward_train`) then its backward for the given output and final-state gradients.

    Returns :class:`SimpleRNNGradients` ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``.
    """
    _, _, cache = simple_rnn_forward_train(
        x, kernel, recurrent_kernel, bias, h0=h0, activation=activation, return_sequences=return_sequences,
        go_backwards=go_backwards, mask=mask, zero_output_for_mask=zero_output_for_mask,
        dropout_mask=dropout_mask, recurrent_dropout_mask=recurrent_dropout_mask,
    )
    return cache.backward(d_outputs, d_h_last)
