"""GRU inference at the array level: prepare the weights once, allocate, run the kernel on one
chunk of batch rows per thread. Shapes: B batch, T steps, D features, H units; Keras's layout, gates z, r, h."""

from __future__ import annotations

import numpy as np

from .. import activations
from .._kernels import gru as _gru
from .._kernels.activations import fast_code
from .._threads import kernel_blas_single_threaded, n_chunks_for, run_chunks, small_gemm_rows
from .validation import check_flags, check_run_args, validate_gru_args

EMPTY_MASK = np.zeros((0, 0), np.uint8)


class PreparedGRU:
    """GRU weights split and laid out for the kernel (done once per weight change, not per call)."""

    __slots__ = ("w", "b_in", "u", "u_h", "b_rec", "reset_after", "units")

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
    """Run the GRU on validated arrays. Returns ``(outputs, h_last, xp, saved)``.

    outputs (B, T, H) or (B, H); h_last (B, H); xp (B, T, 3H) the input projection; saved
    (B, T, 5H) when ``save`` (training; layout in ``fastgru._kernels.gru``), else an empty array.
    For training prefer :func:`run_gru_train` (dropout masks, and the projection shares the saved
    buffer).
    """
    check_run_args(x, prepared, (h0,), mask)
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    xp = np.empty((bsz, steps, 3 * units), dtype)
    if h0 is None:
        h0 = np.zeros((bsz, units), dtype)
    out = np.zeros((bsz, steps if return_sequences else 1, units), dtype)
    h_last = np.empty((bsz, units), dtype)
    saved = np.empty((bsz, steps, _gru.N_SAVED * units) if save else (0, 0, 0), dtype)
    use_mask = mask is not None
    mask_arr = mask if use_mask else EMPTY_MASK
    n_chunks = n_chunks_for(bsz, bsz * steps * 3 * units * (x.shape[2] + units))
    if bsz * steps > 0:
        kernel_blas_single_threaded()
        args = (
            xp, prepared.u, prepared.u_h, prepared.b_rec, h0, mask_arr, use_mask,
            fast_code(act, dtype), fast_code(ract, dtype),
            prepared.reset_after, go_backwards, return_sequences, zero_output_for_mask,
            out, h_last, saved, save, small_gemm_rows(),
        )
        # the input projection is hoisted out of the time loop (one GEMM over all steps); each
        # thread projects its own batch rows, then runs their time loop
        run_chunks(lambda c, b0, b1: _gru.gru_forward_chunk(x, prepared.w, prepared.b_in, *args, b0, b1),
                   bsz, n_chunks)
    else:
        h_last[:] = h0
    return (out if return_sequences else out[:, 0]), h_last, xp, saved


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
    outputs, h_last, _, _ = run_gru(
        x, prepared, h0, mask, act, ract, return_sequences, go_backwards, zero_output_for_mask
    )
    return outputs, h_last
