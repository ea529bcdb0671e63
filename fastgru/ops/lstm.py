"""LSTM at the array level: prepared weights, inference, the training forward and BPTT, and the
public ``lstm_forward`` / ``lstm_forward_train`` / ``lstm_backward`` with validation.

Shapes: B batch, T steps, D features, H units; Keras's layout (kernel (D, 4H), recurrent_kernel
(H, 4H), bias (4H,)), gates i, f, c, o.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations
from .._kernels import aligned
from .._kernels import lstm as _lstm
from .._kernels import lstm_bptt as _bptt
from .._kernels.activations import fast_code
from .._kernels.atomics import NO_POST
from .._kernels.rnn_common import LoopFlags, empty_array
from .._kernels.task_records import KIND_LSTM
from .._threads import kernel_blas_single_threaded, n_chunks_for, run_chunks
from .common import (
    EMPTY_MASK,
    check_dropout_masks,
    kernel_masks,
    run_shared_projection,
    shared_projection_steps,
    training_activation_codes,
    views_of,
)
from .validation import (
    _as_float_array,
    _check_shape,
    check_backward_args,
    check_flags,
    check_run_args,
    check_train_args,
    validate_lstm_args,
    writable,
)


class PreparedLSTM:
    """LSTM weights laid out for the kernels (once per weight change, not per call)."""

    __slots__ = ("w", "b", "u", "units", "_u4", "_ut", "views")

    def __init__(self, kernel, recurrent_kernel, bias):
        units = recurrent_kernel.shape[0]
        self.units = units
        self.w = np.ascontiguousarray(kernel)
        self.u = np.ascontiguousarray(recurrent_kernel)
        self.b = np.zeros(4 * units, kernel.dtype) if bias is None else np.ascontiguousarray(bias)
        self._u4 = None
        self._ut = None
        #: w, u and b show the given weights' current values (views, no copies); u4 and ut, made on
        #: first use, are copies
        self.views = views_of((self.w, kernel), (self.u, recurrent_kernel),
                               *(() if bias is None else ((self.b, bias),)))

    @property
    def u4(self) -> np.ndarray:
        """(4, H, H): the recurrent kernel's gate blocks, each C-contiguous (recurrent dropout)."""
        if self._u4 is None:
            h = self.units
            self._u4 = np.ascontiguousarray(self.u.reshape(h, 4, h).transpose(1, 0, 2))
        return self._u4

    @property
    def ut(self) -> np.ndarray:
        """(4H, H): ``U^T``, C-contiguous (the backward's step product)."""
        if self._ut is None:
            self._ut = np.ascontiguousarray(self.u.T)
        return self._ut


class LSTMGradients(NamedTuple):
    """Gradients of an LSTM's loss, shaped like their arguments (dbias None without bias)."""

    dx: np.ndarray
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    dh0: np.ndarray
    dc0: np.ndarray


def _allocate(x, units, h0, c0, return_sequences):
    """Zero initial states where none are given, and the outputs: ``(h0, c0, out, h_last, c_last)``."""
    bsz, steps, _ = x.shape
    h0 = np.zeros((bsz, units), x.dtype) if h0 is None else h0
    c0 = np.zeros((bsz, units), x.dtype) if c0 is None else c0
    out = aligned.zeros((bsz, steps if return_sequences else 1, units), x.dtype)
    return h0, c0, out, np.empty((bsz, units), x.dtype), np.empty((bsz, units), x.dtype)


def run_lstm(
    x: np.ndarray,
    prepared: PreparedLSTM,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    mask: np.ndarray | None,
    act: int,
    ract: int,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool = False,
):
    """LSTM inference on validated arrays: ``(outputs, h_last, c_last)``.

    outputs (B, T, H) with ``return_sequences`` else (B, H); h_last, c_last (B, H).
    """
    x, h0, c0 = writable(x), writable(h0), writable(c0)  # (one compiled signature: read-only inputs copied)
    check_run_args(x, prepared, (h0, c0), mask, 4)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    out = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    h_last, c_last = np.empty((bsz, units), dtype), np.empty((bsz, units), dtype)
    if bsz * steps == 0:
        h_last[:] = 0.0 if h0 is None else h0
        c_last[:] = 0.0 if c0 is None else c0
        return (out if return_sequences else out[:, 0]), h_last, c_last
    use_mask = mask is not None
    work = bsz * steps * 4 * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    kernel_blas_single_threaded()
    # (a state not given: an empty one, which the time loop starts from as zeros)
    no_state = empty_array(dtype, 2)
    args = (x, prepared.w, prepared.b, prepared.u, no_state if h0 is None else h0, no_state if c0 is None else c0,
            mask if use_mask else EMPTY_MASK, use_mask,
            (fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences, zero_output_for_mask),
            out, h_last, c_last)
    block = shared_projection_steps(x, n_chunks, units, 4 * units)
    if block:
        # rows too few to split (one sequence): a worker projects the inputs ahead of the time loop
        run_shared_projection(lambda post, shared: _lstm.lstm_forward_chunk(0, bsz, *args, post, shared),
                              x, prepared.w, prepared.b, block, go_backwards)
    elif n_chunks == 1:
        _lstm.lstm_forward_chunk(0, bsz, *args)
    else:
        run_chunks(lambda c, b0, b1, post=NO_POST: _lstm.lstm_forward_chunk(b0, b1, *args, post), bsz, n_chunks,
                   work=work, posts=True, record_kind=KIND_LSTM if dtype == np.float32 else 0)
    return (out if return_sequences else out[:, 0]), h_last, c_last


def run_lstm_train(
    x, prepared: PreparedLSTM, h0, c0, mask, act: int, ract: int, return_sequences: bool,
    go_backwards: bool, zero_output_for_mask: bool = False, input_masks=None, recurrent_masks=None,
):
    """Training forward on validated arrays: ``(outputs, h_last, c_last, saved)``.

    act/ract from :func:`training_activation_codes`; input_masks None, (B, D) or (4, B, D),
    recurrent_masks None or (4, B, H), scaled by 1/(1 - rate) (Keras's dropout, constant over time).
    saved (B, T, 7H) (layout in ``fastgru._kernels.lstm``): keep it for :func:`run_lstm_backward`.
    """
    x, h0, c0 = writable(x), writable(h0), writable(c0)  # (one compiled signature: read-only inputs copied)
    check_run_args(x, prepared, (h0, c0), mask, 4)
    check_train_args(x, prepared.units, input_masks, recurrent_masks, 4)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    h0, c0, out, h_last, c_last = _allocate(x, units, h0, c0, return_sequences)
    saved = aligned.empty_reused((bsz, steps, _lstm.N_SAVED * units), dtype)
    if bsz * steps == 0:
        h_last[:] = h0
        c_last[:] = c0
        return (out if return_sequences else out[:, 0]), h_last, c_last, saved
    imask, n_imask, rmask, use_rmask = kernel_masks(input_masks, recurrent_masks, dtype)
    u4 = prepared.u4 if use_rmask else np.zeros((0, 0, 0), dtype)
    use_mask = mask is not None
    work = bsz * steps * 4 * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    kernel_blas_single_threaded()
    kw = dict(
        x=x, w=prepared.w, b=prepared.b, imask=imask, n_imask=n_imask, u=prepared.u, u4=u4, rmask=rmask,
        use_rmask=use_rmask, h0=h0, c0=c0, mask=mask if use_mask else EMPTY_MASK, use_mask=use_mask,
        flags=LoopFlags(fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences,
                        zero_output_for_mask),
        out=out, h_last=h_last, c_last=c_last, saved=saved,
    )
    run_chunks(lambda c, b0, b1: _lstm.lstm_forward_train_chunk(b0, b1, **kw), bsz, n_chunks, work=work)
    return (out if return_sequences else out[:, 0]), h_last, c_last, saved


def run_lstm_backward(
    x, prepared: PreparedLSTM, saved, mask, act: int, ract: int, return_sequences: bool,
    go_backwards: bool, zero_output_for_mask: bool, d_out, d_h_last=None, d_c_last=None,
    input_masks=None, recurrent_masks=None, need_dx: bool = True,
):
    """BPTT on validated arrays: ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``.

    Arguments as given to :func:`run_lstm_train`, plus the gradients of the outputs (like the
    outputs; None for zeros) and of the final states (B, H) (None for zeros). Overwrites ``saved``
    (one backward per forward). dx is None when ``need_dx`` is False (one GEMM less).
    """
    x = writable(x)
    check_run_args(x, prepared, (), mask, 4)
    check_train_args(x, prepared.units, input_masks, recurrent_masks, 4)
    check_backward_args(x, prepared.units, saved, _lstm.N_SAVED, return_sequences, d_out, (d_h_last, d_c_last))
    bsz, steps, d = x.shape
    units = prepared.units
    dtype = x.dtype
    zeros = np.zeros((bsz, units), dtype)
    d_h_last = zeros if d_h_last is None else np.ascontiguousarray(d_h_last, dtype)
    d_c_last = zeros if d_c_last is None else np.ascontiguousarray(d_c_last, dtype)
    if d_out is None:
        d_out3 = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    else:
        d_out3 = np.ascontiguousarray(d_out if return_sequences else d_out[:, None, :], dtype)
    dh0 = np.empty((bsz, units), dtype)
    dc0 = np.empty((bsz, units), dtype)
    if bsz * steps == 0:
        dh0[:] = d_h_last
        dc0[:] = d_c_last
        return (np.zeros_like(x) if need_dx else None), np.zeros_like(prepared.w), np.zeros_like(
            prepared.u), np.zeros(4 * units, dtype), dh0, dc0
    imask, n_imask, rmask, use_rmask = kernel_masks(input_masks, recurrent_masks, dtype)
    use_mask = mask is not None
    work = 2 * bsz * steps * 4 * units * (x.shape[2] + units)  # BPTT: ~2x the forward
    n_chunks = n_chunks_for(bsz, work)
    dx = aligned.empty(x.shape, x.dtype) if need_dx else aligned.empty((0, 0, d), dtype)
    dw_part = aligned.empty((n_chunks,) + prepared.w.shape, dtype)
    du_part = aligned.empty((n_chunks,) + prepared.u.shape, dtype)
    db_part = np.empty((n_chunks, 4 * units), np.float64)
    kw = dict(
        saved=saved, ut=prepared.ut, rmask=rmask, use_rmask=use_rmask, d_out=d_out3, dh_last=d_h_last,
        dc_last=d_c_last, mask=mask if use_mask else EMPTY_MASK, use_mask=use_mask,
        flags=LoopFlags(fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences,
                        zero_output_for_mask),
        x=x, w=prepared.w, imask=imask, n_imask=n_imask, dx=dx, dh0=dh0, dc0=dc0,
    )
    kernel_blas_single_threaded()
    run_chunks(lambda c, b0, b1: _bptt.lstm_backward_chunk(b0, b1, dw=dw_part[c], du=du_part[c], db=db_part[c],
                                                           **kw), bsz, n_chunks, work=work)
    dbias = db_part.sum(axis=0).astype(dtype)
    return (dx if need_dx else None), dw_part.sum(axis=0), du_part.sum(axis=0), dbias, dh0, dc0


def lstm_forward(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, c0=None, activation: str = "tanh",
    recurrent_activation: str = "sigmoid", return_sequences: bool = False, go_backwards: bool = False,
    mask=None, zero_output_for_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LSTM forward pass over a batch of sequences, with Keras's semantics.

    Args:
        x: (B, T, D) float32 or float64; the computation runs in x's dtype.
        kernel: (D, 4H) input weights, gate order i, f, c, o.
        recurrent_kernel: (H, 4H) recurrent weights.
        bias: (4H,) or None.
        h0: (B, H) initial hidden state (zeros when None).
        c0: (B, H) initial cell state (zeros when None).
        activation: the cell activation's name (see ``fastgru.activations``).
        recurrent_activation: the gates' activation name.
        return_sequences: all outputs (B, T, H) instead of the last (B, H).
        go_backwards: process the sequence in reverse; outputs in processing order, as Keras.
        mask: (B, T) booleans; a masked step keeps both states and repeats the previous output.
        zero_output_for_mask: masked steps output zeros instead.

    Returns:
        ``(outputs, h_last, c_last)``.
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, c0, mask = validate_lstm_args(
        x, kernel, recurrent_kernel, bias, h0, c0, mask
    )
    return run_lstm(
        x, PreparedLSTM(kernel, recurrent_kernel, bias), h0, c0, mask, activations.kernel_code(activation),
        activations.kernel_code(recurrent_activation), return_sequences, go_backwards, zero_output_for_mask,
    )


class LSTMTrainCache:
    """What :func:`lstm_forward_train` keeps for the backward; call :meth:`backward` once."""

    def __init__(self, x, prepared, mask, act, ract, flags, masks, saved, has_bias, out_shape):
        self.x, self.prepared, self.mask, self.act, self.ract = x, prepared, mask, act, ract
        self.flags, self.masks, self.saved = flags, masks, saved
        self.has_bias, self.out_shape = has_bias, out_shape

    def backward(self, d_outputs=None, d_h_last=None, d_c_last=None) -> LSTMGradients:
        """Gradients given those of the outputs (like the outputs) and of the final states (B, H);
        any may be None (zeros). A second call raises ``RuntimeError``."""
        if self.saved is None:
            raise RuntimeError("this LSTM training cache was already used by a backward pass; run the forward again")
        dtype = self.x.dtype
        state_shape = (self.x.shape[0], self.prepared.units)
        checked = []
        for name, arr, shape in (("d_outputs", d_outputs, self.out_shape), ("d_h_last", d_h_last, state_shape),
                                 ("d_c_last", d_c_last, state_shape)):
            if arr is not None:
                arr = _as_float_array(name, arr, dtype)
                _check_shape(name, arr, shape)
            checked.append(arr)
        saved, self.saved = self.saved, None
        dx, dw, du, db, dh0, dc0 = run_lstm_backward(
            self.x, self.prepared, saved, self.mask, self.act, self.ract, *self.flags, *checked, *self.masks
        )
        return LSTMGradients(dx, dw, du, db if self.has_bias else None, dh0, dc0)


def lstm_forward_train(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, c0=None, activation: str = "tanh",
    recurrent_activation: str = "sigmoid", return_sequences: bool = False, go_backwards: bool = False,
    mask=None, zero_output_for_mask: bool = False, dropout_mask=None, recurrent_dropout_mask=None,
):
    """LSTM forward in training mode: ``(outputs, h_last, c_last, cache)``; ``cache.backward(...)``
    gives :class:`LSTMGradients`.

    Arguments as :func:`lstm_forward`, plus dropout as explicit masks scaled by 1/(1 - rate):
    dropout_mask None, (B, D) for every gate or (4, B, D) one per gate; recurrent_dropout_mask
    None or (4, B, H), applied to h_prev before each gate's recurrent product.
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, c0, mask = validate_lstm_args(
        x, kernel, recurrent_kernel, bias, h0, c0, mask
    )
    act, ract = training_activation_codes(activation, recurrent_activation, "LSTM")
    bsz, _, d = x.shape
    units = recurrent_kernel.shape[0]
    masks = check_dropout_masks(dropout_mask, recurrent_dropout_mask, bsz, d, units, x.dtype, n_gates=4)
    prepared = PreparedLSTM(kernel, recurrent_kernel, bias)
    flags = (return_sequences, go_backwards, zero_output_for_mask)
    outputs, h_last, c_last, saved = run_lstm_train(x, prepared, h0, c0, mask, act, ract, *flags, *masks)
    cache = LSTMTrainCache(x, prepared, mask, act, ract, flags, masks, saved, bias is not None, outputs.shape)
    return outputs, h_last, c_last, cache


def lstm_backward(
    x, kernel, recurrent_kernel, bias=None, *, d_outputs=None, d_h_last=None, d_c_last=None, h0=None,
    c0=None, activation: str = "tanh", recurrent_activation: str = "sigmoid", return_sequences: bool = False,
    go_backwards: bool = False, mask=None, zero_output_for_mask: bool = False, dropout_mask=None,
    recurrent_dropout_mask=None,
) -> LSTMGradients:
    """Gradients of an LSTM by BPTT: the training forward (same arguments as
    :func:`lstm_forward_train`) then its backward for the given output and final-state gradients.

    Returns :class:`LSTMGradients` ``(dx, dkernel, drecurrent_kernel, dbias, dh0, dc0)``.
    """
    _, _, _, cache = lstm_forward_train(
        x, kernel, recurrent_kernel, bias, h0=h0, c0=c0, activation=activation,
        recurrent_activation=recurrent_activation, return_sequences=return_sequences,
        go_backwards=go_backwards, mask=mask, zero_output_for_mask=zero_output_for_mask,
        dropout_mask=dropout_mask, recurrent_dropout_mask=recurrent_dropout_mask,
    )
    return cache.backward(d_outputs, d_h_last, d_c_last)
