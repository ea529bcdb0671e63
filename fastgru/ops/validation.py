"""Input checks at the public boundary (scikit-learn style: each message names the argument, the
expected and the received value); internals then trust their inputs."""

from __future__ import annotations

import numpy as np


def writable(a):
    """``a`` as a writeable array for a kernel that reads it (a copy where it is read-only; None stays None). Numba
    types a read-only array apart and compiles a kernel again for it: a read-only input (``np.frombuffer`` of a
    request's bytes, a memory map, a frozen array) would cost a second compile of the time loop at its first call,
    after a warm-up too. The copy is of the input alone, a fraction of the work of the layer that reads it."""
    return a if a is None or a.flags.writeable else a.copy()


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
    if mask.dtype != np.bool_ and mask.dtype.kind not in "fiu":  # (0/1 numbers as the layers take them)
        raise TypeError(f"mask must be a boolean (or 0/1 numeric) array, received dtype {mask.dtype}")
    if mask.dtype != np.bool_ and not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must hold only 0 and 1 (or booleans); received other values")
    return np.ascontiguousarray(mask != 0, dtype=np.uint8)


def _validate_x(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have rank 3 (batch, timesteps, features), received shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be float32 or float64, received dtype {x.dtype}")
    return writable(np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32))


def _validate_weights(x, kernel, recurrent_kernel, bias, n_gates, bias_shape):
    """Kernel (D, G*H), recurrent_kernel (H, G*H), bias of ``bias_shape(H)``: checked, converted."""
    dtype = x.dtype
    d = x.shape[2]
    kernel = _as_float_array("kernel", kernel, dtype)
    if kernel.ndim != 2 or kernel.shape[1] % n_gates != 0:
        raise ValueError(f"kernel must have shape (features, {n_gates} * units), received shape {kernel.shape}")
    units = kernel.shape[1] // n_gates
    _check_shape("kernel", kernel, (d, n_gates * units))
    recurrent_kernel = _as_float_array("recurrent_kernel", recurrent_kernel, dtype)
    _check_shape("recurrent_kernel", recurrent_kernel, (units, n_gates * units))
    if bias is not None:
        bias = _as_float_array("bias", bias, dtype)
        _check_shape("bias", bias, bias_shape(units))
    for name, w in (("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("bias", bias)):
        if w is not None:
            _check_finite(name, w)
    return kernel, recurrent_kernel, bias, units


def _validate_state(name, state, bsz, units, dtype):
    if state is None:
        return None
    state = writable(_as_float_array(name, state, dtype))
    _check_shape(name, state, (bsz, units))
    return state


def validate_gru_args(x, kernel, recurrent_kernel, bias, h0, mask, reset_after):
    """Check and convert the GRU arguments; return contiguous arrays in the compute dtype."""
    reset_after = as_flag("reset_after", reset_after)
    x = _validate_x(x)
    bsz, steps, _ = x.shape
    kernel, recurrent_kernel, bias, units = _validate_weights(
        x, kernel, recurrent_kernel, bias, 3, lambda h: (2, 3 * h) if reset_after else (3 * h,)
    )
    h0 = _validate_state("h0", h0, bsz, units, x.dtype)
    if mask is not None:
        mask = _check_mask(mask, bsz, steps)
    return x, kernel, recurrent_kernel, bias, h0, mask


def validate_lstm_args(x, kernel, recurrent_kernel, bias, h0, c0, mask):
    """Check and convert the LSTM arguments (bias (4H,)); contiguous arrays in the compute dtype."""
    x = _validate_x(x)
    bsz, steps, _ = x.shape
    kernel, recurrent_kernel, bias, units = _validate_weights(
        x, kernel, recurrent_kernel, bias, 4, lambda h: (4 * h,)
    )
    h0 = _validate_state("h0", h0, bsz, units, x.dtype)
    c0 = _validate_state("c0", c0, bsz, units, x.dtype)
    if mask is not None:
        mask = _check_mask(mask, bsz, steps)
    return x, kernel, recurrent_kernel, bias, h0, c0, mask


def as_flag(name: str, value) -> bool:
    """A boolean option (True/False, or 0/1); anything else is a TypeError (it would reach a kernel)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, received {value!r} ({type(value).__name__})")


def check_flags(return_sequences, go_backwards, zero_output_for_mask) -> tuple[bool, bool, bool]:
    return (as_flag("return_sequences", return_sequences), as_flag("go_backwards", go_backwards),
            as_flag("zero_output_for_mask", zero_output_for_mask))


# ---- the kernels' own guard ------------------------------------------------------------------------
# Numba does no bounds checking: every array a kernel indexes must have the shape and dtype it assumes.
# The ``run_*`` functions (called by the layers with arrays they built) check them here with a few tuple
# comparisons (well under a microsecond), so a kernel never trusts a shape that was not checked.


def _internal(name: str, a, shape: tuple, dtype) -> None:
    if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
        found = f"shape {a.shape}, dtype {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, found {found}")


#: the dtypes the kernels run in (dtype instances: comparing a dtype with a scalar type converts it first)
_RUN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_run_args(x, prepared, states=(), mask=None, n_gates: int = 3) -> None:
    """What the ``run_*`` functions hand to the kernels: x (B, T, D) float32/64 C-contiguous; the prepared
    weights consistent with x's D and dtype; each state (B, H); the mask (B, T) uint8."""
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.dtype not in _RUN_DTYPES or not x.flags.c_contiguous:
        found = f"shape {x.shape}, dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a C-contiguous float32/float64 array of rank 3, found {found}")
    bsz, steps, d = x.shape
    h, dtype = prepared.units, x.dtype
    _internal("kernel", prepared.w, (d, n_gates * h), dtype)
    if n_gates == 3:
        _internal("input bias", prepared.b_in, (3 * h,), dtype)
        _internal("recurrent bias", prepared.b_rec, (3 * h,), dtype)
        if prepared.reset_after:
            _internal("recurrent_kernel", prepared.u, (h, 3 * h), dtype)
        else:
            _internal("recurrent_kernel", prepared.u, (h, 2 * h), dtype)
            _internal("recurrent_kernel", prepared.u_h, (h, h), dtype)
    else:
        _internal("bias", prepared.b, (4 * h,), dtype)
        _internal("recurrent_kernel", prepared.u, (h, 4 * h), dtype)
    for i, s in enumerate(states):
        if s is not None:
            _internal(f"initial state {i}", s, (bsz, h), dtype)
    if mask is not None:
        _internal("mask", mask, (bsz, steps), np.uint8)


def check_train_args(x, units: int, input_masks, recurrent_masks, n_gates: int) -> None:
    """The dropout masks of the training forward and backward: None, (B, D) or (G, B, D); None or (G, B, H)."""
    bsz, _, d = x.shape
    if input_masks is not None and (not isinstance(input_masks, np.ndarray)
                                    or input_masks.shape not in ((bsz, d), (n_gates, bsz, d))):
        raise ValueError(f"dropout mask must have shape {(bsz, d)} or {(n_gates, bsz, d)}, "
                         f"found {getattr(input_masks, 'shape', type(input_masks).__name__)}")
    if recurrent_masks is not None and (not isinstance(recurrent_masks, np.ndarray)
                                        or recurrent_masks.shape != (n_gates, bsz, units)):
        raise ValueError(f"recurrent dropout mask must have shape {(n_gates, bsz, units)}, "
                         f"found {getattr(recurrent_masks, 'shape', type(recurrent_masks).__name__)}")


def check_backward_args(x, units: int, saved, n_saved: int, return_sequences: bool, d_out, finals=()) -> None:
    """The backward's inputs: the forward's saved buffer (B, T, n_saved*H), d_out like the outputs, and the
    final states' gradients (B, H)."""
    bsz, steps, _ = x.shape
    _internal("saved", saved, (bsz, steps, n_saved * units), x.dtype)
    out_shape = (bsz, steps, units) if return_sequences else (bsz, units)
    if d_out is not None and np.shape(d_out) != out_shape:
        raise ValueError(f"d_outputs must have shape {out_shape}, found {np.shape(d_out)}")
    for d in finals:
        if d is not None and np.shape(d) != (bsz, units):
            raise ValueError(f"the final state's gradient must have shape {(bsz, units)}, found {np.shape(d)}")
