"""The dtypes a layer computes in: float32 or float64, a Keras half-precision policy run in float32."""

from __future__ import annotations

import warnings

import numpy as np

#: Keras's half-precision dtype policies, which fastgru's layers run in float32
HALF_PRECISION = ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16")


def layer_dtype(dtype, name: str) -> np.dtype:
    """A layer's ``dtype`` argument (a name, a NumPy dtype, or a Keras ``DTypePolicy``'s name) as float32 or
    float64; a half-precision policy runs in float32, with a warning."""
    if isinstance(dtype, str) and dtype in HALF_PRECISION:
        warnings.warn(f"{name}: dtype {dtype!r}: fastgru computes in float32 (Keras computes such a layer in half "
                      "precision: expect differences of about 1e-3 relative in predictions; training, which Keras "
                      "rounds at every step, can drift much further)", stacklevel=4)
        return np.dtype(np.float32)
    try:
        value = np.dtype(dtype or "float32")
    except TypeError:
        value = None
    if value not in (np.float32, np.float64):
        raise TypeError(f"{name}: dtype must be 'float32' or 'float64' (or a Keras dtype policy name such as "
                        f"'mixed_float16'), received {dtype!r}")
    return value


def compute_dtype(x: np.ndarray, layer=None) -> np.dtype:
    """float64 inputs compute in float64, and so does a ``layer`` of dtype float64 (Keras's float64 policy casts
    its inputs up); everything else in float32."""
    if x.dtype == np.float64 or getattr(layer, "dtype", None) == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def in_layer_dtype(y, layer, inputs_dtype):
    """A model's output ``y`` in the dtype Keras gives it when a float64 layer made the float64 (its inputs,
    ``inputs_dtype``, were not float64: fastgru then computes in float64 throughout): the dtype of ``layer``, the
    layer that made it (Keras casts a layer's float inputs to its dtype, so a float32 layer after a float64 one
    computes and returns float32; fastgru keeps float64 through such a layer, and casts what it returns); and a
    float64 layer's float32 output (a weightless one passes its input's dtype) in float64, as Keras's."""
    if not isinstance(y, np.ndarray):
        return y
    dtype = getattr(layer, "dtype", None)
    if y.dtype == np.float64 and inputs_dtype != np.float64 and dtype == np.float32:
        return y.astype(np.float32)
    if y.dtype == np.float32 and dtype == np.float64:  # (a weightless float64 layer: Keras casts its input up)
        return y.astype(np.float64)
    return y
