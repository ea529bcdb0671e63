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
        "top_k": lambda x, k, sorted=True: _top_k(np.asarray(x), int(k)),
        # (integers keep their dtype in these, as in Keras; a graph would carry them as floats)
        "relu": lambda x: np.maximum(x, 0).astype(x.dtype), "relu6": lambda x: np.clip(x, 0, 6).astype(x.dtype),
        "stop_gradient": lambda variable: variable, "square": lambda x: np.square(x.astype(np.int32)
                                                                                  if x.dtype.kind == "b" else x),
        "moments": lambda x, axes, keepdims=False, synchronized=False: _moments(x, axes, keepdims),
        # (a NaN never wins, as in TensorFlow: the graph op's rule, op_axis._arg)
        "argmax": lambda x, axis=None, keepdims=False: np.argmax(_nan_as(x, -np.inf), axis=axis, keepdims=keepdims),
        "argmin": lambda x, axis=None, keepdims=False: np.argmin(_nan_as(x, np.inf), axis=axis, keepdims=keepdims)}


def _nan_as(x, value):
    x = np.asarray(x)
    return np.where(np.isnan(x), x.dtype.type(value), x) if x.dtype.kind == "f" else x


def _top_k(x: np.ndarray, k: int) -> list:
    """The ``k`` largest along the last axis, largest first (the first of equal ones first), and their int32
    indices."""
    order = np.argsort(-x if x.dtype.kind != "b" else ~x, axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, order, axis=-1), order.astype(np.int32)]


def _moments(x: np.ndarray, axes, keepdims: bool) -> list:
    """Mean and variance over ``axes``; of integers in their dtype, each mean truncated as TensorFlow divides them."""
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else (axes,)
    if x.dtype.kind not in "biu":
        mean = np.mean(x, axis=axes, keepdims=True)
        return [np.squeeze(mean, axes) if not keepdims else mean,
                np.mean(np.square(x - mean), axis=axes, keepdims=keepdims)]
    n = int(np.prod([x.shape[a] for a in axes]))
    mean = np.trunc(np.sum(x, axis=axes, keepdims=True, dtype=np.int64) / n).astype(x.dtype)
    var = np.trunc(np.sum(np.square(x - mean), axis=axes, keepdims=keepdims, dtype=np.int64) / n).astype(x.dtype)
    return [mean if keepdims else np.squeeze(mean, axes), var]


#: ops whose result is Keras's floatx (float32) for integer and boolean arguments (the others keep their dtype)
FLOAT_RESULTS = frozenset({"floor", "ceil"})
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
    small = np.asarray(result[0] if isinstance(result, (list, tuple)) else result).dtype
    if small.kind == "f" and small.itemsize < 4 and all(d.kind in "biu" for d in dtypes):  # (exp of a bool: float16
        widened = {p: np.asarray(values[p], np.float32) for p in tensor_names if not isinstance(values[p], list)}
        return numpy_result(name, {**values, **widened}, tensor_names, out_dtype)  # in NumPy; Keras's is float32)
    if name in FLOAT_RESULTS and out_dtype is None and all(d.kind in "biu" for d in dtypes):
        out_dtype = np.float32
    if isinstance(result, (list, tuple)):  # (split, unstack: several arrays)
        return eager([keras_dtype(np.asarray(r), out_dtype, dtypes) for r in result])
    return eager(keras_dtype(np.asarray(result), out_dtype, dtypes))


def keras_dtype(result: np.ndarray, out_dtype, dtypes: list) -> np.ndarray:
    """``result`` (NumPy's) in Keras's dtype: ``out_dtype`` when given, float32 where NumPy widened to float64 and
    int32 where it widened to int64 (a mean or sum of int32: Keras's floatx and int32)."""
    if out_dtype is not None:
        return result.astype(out_dtype)
    if result.dtype.kind == "f" and dtypes and all(d.kind in "biu" for d in dtypes):
        return result.astype(np.float32)  # (exp of a bool, sqrt of uint8: Keras's floatx, not NumPy's float16)
    for wide, narrow in ((np.float64, np.float32), (np.int64, np.int32)):
        if result.dtype == wide and all(d != wide for d in dtypes):
            return result.astype(narrow)
    return result
