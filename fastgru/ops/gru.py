"""GRU at the array level, inference and training: prepare the weights once, allocate, run the kernels
on one chunk of batch rows per thread. Shapes: B batch, T steps, D features, H units; Keras's layout,
gates z, r, h. The same table of contents as ``ops/lstm.py`` and ``ops/simple_rnn.py``: the prepared
weights, ``run_*`` (validated arrays in, kernels), the result types and the public functions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import activations
from .._kernels import aligned
from .._kernels import gru as _gru
from .._kernels import gru_bptt as _bptt
from .._kernels import gru_train as _train
from .._kernels.activations import fast_code
from .._kernels.atomics import NO_POST
from .._kernels.rnn_common import LoopFlags, empty_array
from .._kernels.task_records import KIND_GRU
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
    validate_gru_args,
    writable,
)


class PreparedGRU:
    """GRU weights split and laid out for the kernel (done once per weight change, not per call)."""

    __slots__ = ("w", "b_in", "u", "u_h", "b_rec", "reset_after", "units", "views")

    def __init__(self, kernel, recurrent_kernel, bias, reset_after: bool):
        dtype = kernel.dtype
        units = recurrent_kernel.shape[0]
        self.units = units
        self.reset_after = bool(reset_after)
        self.w = np.ascontiguousarray(kernel)
        zeros = np.zeros(3 * units, dtype)
        if bias is None:
            self.b_in, self.b_rec = zeros, zeros
        elif reset_after:
            self.b_in, self.b_rec = np.ascontiguousarray(bias[0]), np.ascontiguousarray(bias[1])
        else:
            self.b_in, self.b_rec = np.ascontiguousarray(bias), zeros
        if reset_after:
            self.u = np.ascontiguousarray(recurrent_kernel)
            self.u_h = np.zeros((0, 0), dtype)
        else:
            self.u = np.ascontiguousarray(recurrent_kernel[:, : 2 * units])
            self.u_h = np.ascontiguousarray(recurrent_kernel[:, 2 * units :])
        #: every array here shows the given weights' current values (views, no copies: same dtype,
        #: reset_after), so the object stays valid while those arrays change in place
        biases = () if bias is None else ((self.b_in, bias), (self.b_rec, bias))
        self.views = bool(reset_after) and views_of((self.w, kernel), (self.u, recurrent_kernel), *biases)


def run_gru(
    x: np.ndarray,
    prepared: PreparedGRU,
    h0: np.ndarray | None,
    mask: np.ndarray | None,
    act: int,
    ract: int,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool = False,
    save: bool = False,
):
    """Run the GRU on validated arrays. Returns ``(outputs, h_last, saved)``.

    outputs (B, T, H) or (B, H); h_last (B, H); saved (B, T, 5H) when ``save`` (training; layout in
    ``fastgru._kernels.gru``), else an empty array.
    For training prefer :func:`run_gru_train` (dropout masks, and the projection shares the saved
    buffer).
    """
    x, h0 = writable(x), writable(h0)  # (one compiled signature: read-only inputs copied)
    check_run_args(x, prepared, (h0,), mask)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    out = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    h_last = np.empty((bsz, units), dtype)
    saved = aligned.empty((bsz, steps, _gru.N_SAVED * units), dtype) if save else empty_array(dtype, 3)
    use_mask = mask is not None
    mask_arr = mask if use_mask else EMPTY_MASK
    work = bsz * steps * 3 * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    if bsz * steps > 0:
        kernel_blas_single_threaded()
        # (the loop flags as a plain tuple: a LoopFlags costs ~0.6 us to make)
        # (no initial state: an empty one, which the time loop starts from as zeros)
        args = (x, prepared.w, prepared.b_in, prepared.u, prepared.u_h, prepared.b_rec,
                empty_array(dtype, 2) if h0 is None else h0, mask_arr, use_mask,
                (fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences, zero_output_for_mask),
                prepared.reset_after, out, h_last, saved, save)
        # each thread runs the time loop of its batch rows, projecting their inputs a block of
        # steps at a time (blocks that stay in its L2; never the whole (B, T, 3H) projection)
        block = shared_projection_steps(x, n_chunks, units, 3 * units)
        if block:
            # rows too few to split (one sequence): a worker projects the inputs ahead of the time loop
            run_shared_projection(lambda post, shared: _gru.gru_forward_chunk(0, bsz, *args, post, shared),
                                  x, prepared.w, prepared.b_in, block, go_backwards)
        elif n_chunks == 1:
            _gru.gru_forward_chunk(0, bsz, *args)
        else:
            run_chunks(lambda c, b0, b1, post=NO_POST: _gru.gru_forward_chunk(b0, b1, *args, post), bsz, n_chunks,
                       work=work, posts=True, record_kind=KIND_GRU if dtype == np.float32 else 0)
    else:
        h_last[:] = 0.0 if h0 is None else h0
    return (out if return_sequences else out[:, 0]), h_last, saved


def gru_forward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    *,
    h0=None,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    return_sequences: bool = False,
    go_backwards: bool = False,
    mask=None,
    zero_output_for_mask: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """GRU forward pass over a batch of sequences, with Keras's semantics.

    Args:
        x: (B, T, D) float32 or float64; the computation runs in x's dtype.
        kernel: (D, 3H) input weights, gate order z, r, h.
        recurrent_kernel: (H, 3H) recurrent weights.
        bias: (2, 3H) [input bias, recurrent bias] when ``reset_after``, else (3H,); None for no bias.
        h0: (B, H) initial state (zeros when None).
        reset_after: apply the reset gate after the recurrent product (Keras default, cuDNN style).
        activation: the candidate's activation name (see ``fastgru.activations``).
        recurrent_activation: the gates' activation name.
        return_sequences: return all outputs (B, T, H) instead of the last (B, H).
        go_backwards: process the sequence in reverse; outputs are in processing order, as Keras.
        mask: (B, T) booleans; a masked step keeps the state and repeats the previous output.
        zero_output_for_mask: masked steps output zeros instead of repeating the previous output.

    Returns:
        ``(outputs, h_last)``: outputs (B, T, H) or (B, H), h_last (B, H).
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, mask = validate_gru_args(
        x, kernel, recurrent_kernel, bias, h0, mask, reset_after
    )
    act = activations.kernel_code(activation)
    ract = activations.kernel_code(recurrent_activation)
    prepared = PreparedGRU(kernel, recurrent_kernel, bias, reset_after)
    outputs, h_last, _ = run_gru(
        x, prepared, h0, mask, act, ract, return_sequences, go_backwards, zero_output_for_mask
    )
    return outputs, h_last


class GRUGradients(NamedTuple):
    """Gradients of a GRU's loss, each shaped like the argument it belongs to.

    dbias is None when the GRU has no bias (only from the public functions; ``run_gru_backward``
    always returns it); dh0 is the gradient of the initial state (of the zero state when none was given).
    """

    dx: np.ndarray
    dkernel: np.ndarray
    drecurrent_kernel: np.ndarray
    dbias: np.ndarray | None
    dh0: np.ndarray


def _full_recurrent_kernel(prepared: PreparedGRU) -> np.ndarray:
    """The (H, 3H) recurrent kernel back from its prepared blocks."""
    if prepared.reset_after:
        return prepared.u
    return np.concatenate([prepared.u, prepared.u_h], axis=1)


def run_gru_train(
    x: np.ndarray,
    prepared: PreparedGRU,
    h0: np.ndarray | None,
    mask: np.ndarray | None,
    act: int,
    ract: int,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool = False,
    input_masks: np.ndarray | None = None,
    recurrent_masks: np.ndarray | None = None,
):
    """Training forward on validated arrays. Returns ``(outputs, h_last, saved)``.

    Arguments as :func:`run_gru` (act/ract the plain codes of ``activations.kernel_code``, checked
    with :func:`training_activation_codes`), plus the dropout masks, already scaled by
    1/(1 - rate) and in x's dtype: input_masks None, (B, D) (``dropout`` alone, one mask for every
    gate and step) or (3, B, D) (one per gate, when ``recurrent_dropout`` > 0 as in Keras);
    recurrent_masks None or (3, B, H), applied to h_prev before each gate's recurrent product.
    saved (B, T, 5H) holds the projection, then the gates (``fastgru._kernels.gru``); keep it, with
    x, prepared, mask and the masks, for :func:`run_gru_backward`, which overwrites it.
    """
    x, h0 = writable(x), writable(h0)  # (one compiled signature: read-only inputs copied)
    check_run_args(x, prepared, (h0,), mask)
    check_train_args(x, prepared.units, input_masks, recurrent_masks, 3)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    if h0 is None:
        h0 = np.zeros((bsz, units), dtype)
    out = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    h_last = np.empty((bsz, units), dtype)
    saved = aligned.empty_reused((bsz, steps, _gru.N_SAVED * units), dtype)
    use_mask = mask is not None
    mask_arr = mask if use_mask else EMPTY_MASK
    work = bsz * steps * 3 * units * (x.shape[2] + units)
    n_chunks = n_chunks_for(bsz, work)
    if bsz * steps > 0:
        imask, n_imask, rmask, use_rmask = kernel_masks(input_masks, recurrent_masks, dtype)
        u3 = np.zeros((0, 0, 0), dtype)
        if use_rmask:
            u = _full_recurrent_kernel(prepared)
            u3 = np.ascontiguousarray(u.reshape(units, 3, units).transpose(1, 0, 2))
        kernel_blas_single_threaded()
        kw = dict(
            x=x, w=prepared.w, b_in=prepared.b_in, imask=imask, n_imask=n_imask, u=prepared.u, u_h=prepared.u_h,
            u3=u3, b_rec=prepared.b_rec, rmask=rmask, use_rmask=use_rmask, h0=h0, mask=mask_arr, use_mask=use_mask,
            flags=LoopFlags(fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences,
                            zero_output_for_mask),
            reset_after=prepared.reset_after, out=out, h_last=h_last, saved=saved,
        )
        # one thread per chunk of batch rows does its projection and its time loop: only fastgru's
        # threads run (NumPy's multi-threaded BLAS next to them would oversubscribe the cores)
        run_chunks(lambda c, b0, b1: _train.gru_forward_train_chunk(b0, b1, **kw), bsz, n_chunks, work=work)
    else:
        h_last[:] = h0
    return (out if return_sequences else out[:, 0]), h_last, saved


def run_gru_backward(
    x: np.ndarray,
    prepared: PreparedGRU,
    saved: np.ndarray,
    mask: np.ndarray | None,
    act: int,
    ract: int,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool,
    d_out: np.ndarray | None,
    d_h_last: np.ndarray | None = None,
    input_masks: np.ndarray | None = None,
    recurrent_masks: np.ndarray | None = None,
    need_dx: bool = True,
):
    """BPTT on validated arrays: ``(dx, dkernel, drecurrent_kernel, dbias, dh0)``.

    With ``need_dx=False`` the input gradient is not computed (one GEMM less) and dx is None.

    x, prepared, mask, act, ract, the flags and the dropout masks exactly as given to
    :func:`run_gru_train`; saved its buffer, which this overwrites with the gate gradients (one
    backward per forward). d_out the gradient of the outputs ((B, T, H) or (B, H), like the
    outputs; None for zeros), d_h_last that of the final state (B, H) (None for zeros), both in x's
    dtype. dbias has the bias's shape, (2, 3H) when reset_after else (3H,) (the caller drops it when
    the layer has no bias); dh0 (B, H).

    One chunk of batch rows per thread (``fastgru._threads.run_chunks``): each runs the reverse
    time loop over them (single-threaded BLAS for the step products), then the large GEMMs over its
    B_c*T rows (its rows of dx, its partial dW, dU and bias sums, added up here). Only fastgru's
    threads run: NumPy's multi-threaded BLAS beside them would oversubscribe the cores.
    """
    x = writable(x)
    check_run_args(x, prepared, (), mask)
    check_train_args(x, prepared.units, input_masks, recurrent_masks, 3)
    check_backward_args(x, prepared.units, saved, _gru.N_SAVED, return_sequences, d_out, (d_h_last,))
    bsz, steps, d = x.shape
    units = prepared.units
    dtype = x.dtype
    n = 3 * units
    if d_h_last is None:
        d_h_last = np.zeros((bsz, units), dtype)
    if d_out is None:
        d_out3 = aligned.zeros((bsz, steps if return_sequences else 1, units), dtype)
    else:
        d_out3 = np.ascontiguousarray(d_out if return_sequences else d_out[:, None, :], dtype)
    u = _full_recurrent_kernel(prepared)
    dh0 = np.empty((bsz, units), dtype)
    if bsz * steps == 0:
        dh0[:] = d_h_last
        dbias = np.zeros((2, n) if prepared.reset_after else (n,), dtype)
        return np.zeros_like(x), np.zeros_like(prepared.w), np.zeros_like(u), dbias, dh0
    imask, n_imask, rmask, use_rmask = kernel_masks(input_masks, recurrent_masks, dtype)
    use_mask = mask is not None
    work = 2 * bsz * steps * 3 * units * (x.shape[2] + units)  # BPTT: ~2x the forward
    n_chunks = n_chunks_for(bsz, work)
    dx = aligned.empty(x.shape, x.dtype) if need_dx else aligned.empty((0, 0, d), dtype)
    dw_part = aligned.empty((n_chunks,) + prepared.w.shape, dtype)
    du_part = aligned.empty((n_chunks,) + u.shape, dtype)
    db_part = np.empty((n_chunks, 2, n), np.float64)
    kw = dict(
        saved=saved, ut=np.ascontiguousarray(u.T), rmask=rmask, use_rmask=use_rmask, d_out=d_out3,
        dh_last=np.ascontiguousarray(d_h_last, dtype), mask=mask if use_mask else EMPTY_MASK, use_mask=use_mask,
        flags=LoopFlags(fast_code(act, dtype), fast_code(ract, dtype), go_backwards, return_sequences,
                        zero_output_for_mask),
        reset_after=prepared.reset_after, x=x, w=prepared.w, imask=imask, n_imask=n_imask, dx=dx, dh0=dh0,
    )
    kernel_blas_single_threaded()
    # each thread: the reverse time loop over its batch rows, then the large GEMMs over the same
    # rows' B_c*T steps giving its partial dW, dU, bias sums (summed below) and its rows of dX
    run_chunks(lambda c, b0, b1: _bptt.gru_backward_chunk(b0, b1, dw=dw_part[c], du=du_part[c], db=db_part[c], **kw),
               bsz, n_chunks, work=work)
    dkernel = dw_part.sum(axis=0)
    du = du_part.sum(axis=0)
    db = db_part.sum(axis=0)
    dbias = db.astype(dtype) if prepared.reset_after else db[0].astype(dtype)
    return (dx if need_dx else None), dkernel, du, dbias, dh0


class GRUTrainCache:
    """What :func:`gru_forward_train` keeps for the backward; call :meth:`backward` once.

    Holds x, the prepared weights, the options, the dropout masks and the (B, T, 5H) saved buffer
    (the only per-step memory of a training step; see docs/training-memory.md).
    """

    __slots__ = ("x", "prepared", "mask", "act", "ract", "return_sequences", "go_backwards",
                 "zero_output_for_mask", "input_masks", "recurrent_masks", "saved", "has_bias",
                 "out_shape")

    def backward(self, d_outputs=None, d_h_last=None) -> GRUGradients:
        """Gradients given ``d_outputs`` (shaped like the outputs) and ``d_h_last`` (B, H).

        Either may be None (zeros). Consumes the cache: a second call raises ``RuntimeError``.
        """
        if self.saved is None:
            raise RuntimeError("this GRU training cache was already used by a backward pass; run the forward again")
        dtype = self.x.dtype
        if d_outputs is not None:
            d_outputs = _as_float_array("d_outputs", d_outputs, dtype)
            _check_shape("d_outputs", d_outputs, self.out_shape)
        if d_h_last is not None:
            d_h_last = _as_float_array("d_h_last", d_h_last, dtype)
            _check_shape("d_h_last", d_h_last, (self.x.shape[0], self.prepared.units))
        saved, self.saved = self.saved, None
        dx, dw, du, db, dh0 = run_gru_backward(
            self.x, self.prepared, saved, self.mask, self.act, self.ract, self.return_sequences,
            self.go_backwards, self.zero_output_for_mask, d_outputs, d_h_last, self.input_masks,
            self.recurrent_masks,
        )
        return GRUGradients(dx, dw, du, db if self.has_bias else None, dh0)


def gru_forward_train(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    *,
    h0=None,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    return_sequences: bool = False,
    go_backwards: bool = False,
    mask=None,
    zero_output_for_mask: bool = False,
    dropout_mask=None,
    recurrent_dropout_mask=None,
):
    """GRU forward in training mode: ``(outputs, h_last, cache)``; ``cache.backward(...)`` gives the
    gradients (:class:`GRUGradients`).

    Arguments as :func:`gru_forward`, plus Keras's dropout as explicit masks (draw them, e.g. as
    ``(rng.random(shape) >= rate) / (1 - rate)``, once per batch: they are constant over time):

        dropout_mask: None, (B, D) applied to x for every gate (Keras with ``dropout`` only), or
            (3, B, D), one per gate z, r, h (Keras with ``recurrent_dropout`` > 0).
        recurrent_dropout_mask: None or (3, B, H), applied to h_prev before each gate's recurrent
            product; the interpolation ``z*h_prev + (1-z)*hh`` uses the undropped h_prev.

    Without masks the outputs equal :func:`gru_forward`'s. Raises ``UnsupportedKerasFeature`` for
    activations whose derivative the backward cannot take (swish, gelu).
    """
    return_sequences, go_backwards, zero_output_for_mask = check_flags(return_sequences, go_backwards,
                                                                       zero_output_for_mask)
    x, kernel, recurrent_kernel, bias, h0, mask = validate_gru_args(
        x, kernel, recurrent_kernel, bias, h0, mask, reset_after
    )
    act, ract = training_activation_codes(activation, recurrent_activation)
    bsz, steps, d = x.shape
    units = recurrent_kernel.shape[0]
    dropout_mask, recurrent_dropout_mask = check_dropout_masks(
        dropout_mask, recurrent_dropout_mask, bsz, d, units, x.dtype
    )
    prepared = PreparedGRU(kernel, recurrent_kernel, bias, reset_after)
    outputs, h_last, saved = run_gru_train(
        x, prepared, h0, mask, act, ract, return_sequences, go_backwards, zero_output_for_mask,
        dropout_mask, recurrent_dropout_mask,
    )
    cache = GRUTrainCache()
    cache.x, cache.prepared, cache.mask, cache.act, cache.ract = x, prepared, mask, act, ract
    cache.return_sequences, cache.go_backwards = return_sequences, go_backwards
    cache.zero_output_for_mask = zero_output_for_mask
    cache.input_masks, cache.recurrent_masks = dropout_mask, recurrent_dropout_mask
    cache.saved, cache.has_bias, cache.out_shape = saved, bias is not None, outputs.shape
    return outputs, h_last, cache


def gru_backward(
    x,
    kernel,
    recurrent_kernel,
    bias=None,
    *,
    d_outputs=None,
    d_h_last=None,
    h0=None,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    return_sequences: bool = False,
    go_backwards: bool = False,
    mask=None,
    zero_output_for_mask: bool = False,
    dropout_mask=None,
    recurrent_dropout_mask=None,
) -> GRUGradients:
    """Gradients of a GRU by backpropagation through time.

    Runs the training forward (:func:`gru_forward_train`, same arguments) and its backward for the
    loss whose gradients with respect to the outputs and the final state are ``d_outputs``
    ((B, T, H) when ``return_sequences`` else (B, H), outputs in processing order as
    :func:`gru_forward` returns them) and ``d_h_last`` (B, H); either may be None (zeros).

    Returns:
        :class:`GRUGradients` ``(dx, dkernel, drecurrent_kernel, dbias, dh0)`` shaped like x, kernel,
        recurrent_kernel, bias (None when bias is None) and the initial state (B, H).
    """
    _, _, cache = gru_forward_train(
        x, kernel, recurrent_kernel, bias, h0=h0, reset_after=reset_after, activation=activation,
        recurrent_activation=recurrent_activation, return_sequences=return_sequences,
        go_backwards=go_backwards, mask=mask, zero_output_for_mask=zero_output_for_mask,
        dropout_mask=dropout_mask, recurrent_dropout_mask=recurrent_dropout_mask,
    )
    return cache.backward(d_outputs, d_h_last)
