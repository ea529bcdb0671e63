"""Keras's ``keras.ops`` functions on arrays with NumPy's semantics (``fastgru.op_functions``): where a graph op
refuses arrays (an op over axis 0, which a graph keeps whole as the batch axis) or its values would be a graph's
(integers and booleans, which a graph carries as floats), NumPy's (or SciPy's) function of the same name computes
them, in the dtypes Keras gives."""

from __future__ import annotations

import numpy as np

from .eager import eager, keras_array


def flat(values) -> list:
    """``values`` with the lists in it (``concatenate``'s tensors) spread out."""
    return [v for value in values for v in (value if isinstance(value, (list, tuple)) else (value,))]


#: Keras's functions NumPy (or SciPy) has under another name, or with other argument names
_NUMPY_NAMES = {"norm": "linalg.norm", "absolute": "absolute"}
_SCIPY_NAMES = {"softmax", "log_softmax", "logsumexp"}
_OWN = {"cast": lambda x, dtype: np.asarray(x).astype(np.dtype(dtype)),
        "unstack": lambda x, num=None, axis=0: list(np.moveaxis(x, axis, 0)),
        "top_k": lambda x, k, sorted=True: _top_k(np.asarray(x), int(k))}


def _top_k(x: np.ndarray, k: int) -> list:
    """The ``k`` largest along the last axis, largest first (the first of equal ones first), and their indices."""
    order = np.argsort(-x if x.dtype.kind != "b" else ~x, axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, order, axis=-1), order]
_POSITIONAL = {"reshape", "tile", "clip"}  # (their second argument is named differently in NumPy)


def numpy_result(name: str, values: dict, tensor_names: list, out_dtype):
    """Keras's ``ops.<name>`` on arrays with NumPy's semantics (every axis an axis, as Keras computes on arrays):
    NumPy's (SciPy's) function of that name on the same arguments, with Keras's result dtypes; None where there is
    none or it refuses the arguments (the graph op's error stands then)."""
    if name in _SCIPY_NAMES:
        import scipy.special

        function = getattr(scipy.special, name)
    elif name in _OWN:
        function = _OWN[name]
    else:
        function = np
        for part in _NUMPY_NAMES.get(name, name).split("."):
            function = getattr(function, part, None)
    if function is None:
        return None
    arrays = [[keras_array(a) for a in values[p]] if isinstance(values[p], (list, tuple)) else keras_array(values[p])
              for p in tensor_names]
    options = {p: v for p, v in values.items() if p not in tensor_names}
    try:
        with np.errstate(all="ignore"):
            if name in _POSITIONAL:
                result = function(*arrays, *options.values())
            else:
                result = function(*arrays, **{k: v for k, v in options.items() if v is not None or k == "axis"})
    except (TypeError, ValueError, np.exceptions.AxisError):
        return None
    dtypes = [np.asarray(a).dtype for a in flat(arrays)]
    if isinstance(result, (list, tuple)):  # (split, unstack: several arrays)
        return eager([_keras_dtype(np.asarray(r), out_dtype, dtypes) for r in result])
    return eager(_keras_dtype(np.asarray(result), out_dtype, dtypes))


def _keras_dtype(result: np.ndarray, out_dtype, dtypes: list) -> np.ndarray:
    """``result`` (NumPy's) in Keras's dtype: ``out_dtype`` when given, float32 where NumPy widened to float64 and
    int32 where it widened to int64 (a mean or sum of int32: Keras's floatx and int32)."""
    if out_dtype is not None:
        return result.astype(out_dtype)
    for wide, narrow in ((np.float64, np.float32), (np.int64, np.int32)):
        if result.dtype == wide and all(d != wide for d in dtypes):
            return result.astype(narrow)
    return result
