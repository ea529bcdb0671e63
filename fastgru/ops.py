"""Array-level API: validate inputs once, allocate outputs, pick and run the kernel.

Shapes: B batch, T steps, D features, H units. Weights use Keras's layout and gate order (z, r, h).
"""

from __future__ import annotations

import numpy as np

from . import activations
from ._kernels import gru as _gru
from ._kernels.activations import fast_code
from ._threads import get_num_threads, kernel_blas_single_threaded

_EMPTY_MASK = np.zeros((0, 0), np.uint8)


# ---------------------------------------------------------------------------------------------
# validation helpers (scikit-learn style: name the argument, the expected and the received value)
# ---------------------------------------------------------------------------------------------
def _as_float_array(name: str, a, dtype=None) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a real numeric array, received dtype {a.dtype}")
    if dtype is None:
        dtype = np.float64 if a.dtype == np.float64 else np.float32
    if a.dtype.kind != "f" and name != "x":
        raise TypeError(f"{name} must be a floating-point array, received dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=dtype)


def _check_shape(name: str, a: np.ndarray, expected: tuple) -> None:
    if a.shape != expected:
        raise ValueError(f"{name} must have shape {expected}, received shape {a.shape}")


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values ({int((~np.isfinite(a)).sum())} of {a.size})")


def _check_mask(mask, batch: int, steps: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (batch, steps):
        raise ValueError(f"mask must have shape (batch, timesteps) = {(batch, steps)}, received shape {mask.shape}")
    if mask.dtype != np.bool_ and mask.dtype.kind not in "iu":
        raise TypeError(f"mask must be a boolean array, received dtype {mask.dtype}")
    return np.ascontiguousarray(mask != 0, dtype=np.uint8)


def validate_gru_args(x, kernel, recurrent_kernel, bias, h0, mask, reset_after):
    """Check and convert the GRU arguments; return contiguous arrays in the compute dtype."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have rank 3 (batch, timesteps, features), received shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be float32 or float64, received dtype {x.dtype}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    x = np.ascontiguousarray(x, dtype=dtype)
    bsz, steps, d = x.shape
    kernel = _as_float_array("kernel", kernel, dtype)
    if kernel.ndim != 2 or kernel.shape[1] % 3 != 0:
        raise ValueError(f"kernel must have shape (features, 3 * units), received shape {kernel.shape}")
    units = kernel.shape[1] // 3
    _check_shape("kernel", kernel, (d, 3 * units))
    recurrent_kernel = _as_float_array("recurrent_kernel", recurrent_kernel, dtype)
    _check_shape("recurrent_kernel", recurrent_kernel, (units, 3 * units))
    if bias is not None:
        bias = _as_float_array("bias", bias, dtype)
        _check_shape("bias", bias, (2, 3 * units) if reset_after else (3 * units,))
    for name, w in (("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("bias", bias)):
        if w is not None:
            _check_finite(name, w)
    if h0 is not None:
        h0 = _as_float_array("h0", h0, dtype)
        _check_shape("h0", h0, (bsz, units))
    if mask is not None:
        mask = _check_mask(mask, bsz, steps)
    return x, kernel, recurrent_kernel, bias, h0, mask


# ---------------------------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------------------------
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
    (5, T, B, H) when ``save`` (training), else an empty array.
    """
    bsz, steps, _ = x.shape
    units = prepared.units
    dtype = x.dtype
    xp = np.empty((bsz, steps, 3 * units), dtype)
    if h0 is None:
        h0 = np.zeros((bsz, units), dtype)
    out = np.zeros((bsz, steps if return_sequences else 1, units), dtype)
    h_last = np.empty((bsz, units), dtype)
    saved = np.empty((_gru.N_SAVED, steps, bsz, units) if save else (0, 0, 0, 0), dtype)
    use_mask = mask is not None
    mask_arr = mask if use_mask else _EMPTY_MASK
    n_chunks = min(get_num_threads(), bsz)
    if bsz * steps > 0:
        kernel_blas_single_threaded()
        args = (
            xp, prepared.u, prepared.u_h, prepared.b_rec, h0, mask_arr, use_mask,
            fast_code(act, dtype), fast_code(ract, dtype),
            prepared.reset_after, go_backwards, return_sequences, zero_output_for_mask,
            out, h_last, saved, save,
        )
        # the input projection is hoisted out of the time loop (one GEMM over all steps), split by
        # batch rows like the recurrence so that only Numba's threads ever run
        if n_chunks > 1:
            _gru.project_inputs_parallel(x, prepared.w, prepared.b_in, xp, n_chunks)
            _gru.gru_forward_parallel(*args, n_chunks)
        else:
            _gru.project_inputs(x, prepared.w, prepared.b_in, xp)
            _gru.gru_forward_slice(*args, 0, bsz)
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
        activation, recurrent_activation: activation names (see ``fastgru.activations``).
        return_sequences: return all outputs (B, T, H) instead of the last (B, H).
        go_backwards: process the sequence in reverse; outputs are in processing order, as Keras.
        mask: (B, T) booleans; a masked step keeps the state and repeats the previous output.
        zero_output_for_mask: masked steps output zeros instead of repeating the previous output.

    Returns:
        ``(outputs, h_last)``: outputs (B, T, H) or (B, H), h_last (B, H).
    """
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
