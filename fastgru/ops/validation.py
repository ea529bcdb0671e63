"""Input checks at the public boundary (scikit-learn style: each message names the argument, the
expected and the received value); internals then trust their inputs."""

from __future__ import annotations

import numpy as np


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


def _validate_x(x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have rank 3 (batch, timesteps, features), received shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must be float32 or float64, received dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)


def _validate_weights(x, kernel, recurrent_kernel, bias, n_gates, bias_shape):
    """kernel (D, G*H), recurrent_kernel (H, G*H), bias of ``bias_shape(H)``: checked, converted."""
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
    state = _as_float_array(name, state, dtype)
    _check_shape(name, state, (bsz, units))
    return state


def validate_gru_args(x, kernel, recurrent_kernel, bias, h0, mask, reset_after):
    """Check and convert the GRU arguments; return contiguous arrays in the compute dtype."""
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
