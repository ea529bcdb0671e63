"""A model's input converted to the dtype its ``Input`` declares, as Keras converts it before the first layer
(``ops.convert_to_tensor(x, dtype=input.dtype)``)."""

from __future__ import annotations

import numpy as np


def cast_to_declared(a: np.ndarray, declared, label: str) -> np.ndarray:
    """``a`` in the declared dtype where Keras would change it: an integer ``Input`` takes a float array's values
    truncated toward zero (TensorFlow's cast) and another integer or bool array's values, a bool ``Input`` whether
    each value is nonzero, a float16 ``Input`` the values rounded to float16. A value an integer dtype cannot hold
    (NaN, infinite, out of its range) is a ValueError: Keras would wrap it around silently. Float ``Input``s are
    left as they are (a float64 array keeps its precision: see docs/reliability.md)."""
    if not isinstance(declared, str) or declared == "string":
        return a
    try:
        dtype = np.dtype(declared)
    except TypeError:
        return a
    if dtype.kind == "b":
        return a if a.dtype == dtype else a != 0
    if dtype.kind in "iu" and a.dtype != dtype:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{label} is declared {declared}: it cannot take NaN or infinite values")
        values = np.trunc(a) if a.dtype.kind == "f" else a
        info = np.iinfo(dtype)
        if values.size:
            low, high = values.min().item(), values.max().item()  # (Python numbers: exact comparisons)
            # (a float's bound is the first integer past the range: float(info.max) itself may round up to it)
            too_high = high >= info.max + 1 if isinstance(high, float) else high > info.max
            if low < info.min or too_high:
                raise ValueError(f"{label} is declared {declared}: its values must lie in [{info.min}, "
                                 f"{info.max}], received values in [{low}, {high}]")
        return values.astype(dtype)
    if dtype == np.float16 and a.dtype.kind == "f" and a.dtype != dtype:
        return a.astype(dtype)
    return a
