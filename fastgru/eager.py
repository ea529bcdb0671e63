"""What fastgru's eager calls hand back where Keras hands back a tensor: NumPy values that also answer
TensorFlow's ``.numpy()``, so a Keras script's ``model(x).numpy()``, ``loss_fn(y, p).numpy()`` or
``metric.result().numpy()`` runs unchanged.

:class:`EagerArray` is a NumPy array (a view: nothing is copied; arithmetic on it gives EagerArrays) and
:class:`EagerScalar` a Python float. The library's own paths never see them: the public entry points take
``np.asarray`` of their inputs, which is the plain array again.
"""

from __future__ import annotations

import numpy as np


class EagerArray(np.ndarray):
    """A NumPy array with TensorFlow's ``numpy()``: what ``model(x)``, ``layer(x)`` and ``fg.ops.*`` on arrays
    return (Keras returns a tensor there)."""

    def numpy(self) -> np.ndarray | np.generic:
        """A copy as a plain NumPy array (a NumPy scalar for a 0-d value), as TensorFlow's ``Tensor.numpy()``."""
        value = np.array(self.view(np.ndarray), copy=True)
        return value[()] if value.ndim == 0 else value

    def __reduce__(self):  # pickled (and deep-copied) as the plain array: loading needs nothing of fastgru
        return np.asarray(self).__reduce__()

    def __deepcopy__(self, memo=None) -> np.ndarray:
        return np.array(self.view(np.ndarray), copy=True)


class EagerScalar(float):
    """A Python float with TensorFlow's ``numpy()``: what a loss object, a loss function and ``metric.result()``
    return for one value (Keras returns a scalar tensor there)."""

    def numpy(self) -> np.float32:
        """The value as Keras's float32 scalar."""
        return np.float32(self)

    def __reduce__(self):
        return float, (float(self),)


def eager_result(function):
    """``function`` (a public function of arrays: a loss or metric function) returning :func:`eager` values."""
    import functools

    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        return eager(function(*args, **kwargs))

    return wrapped


def keras_array(value, dtype=None) -> np.ndarray:
    """``value`` as an array the way Keras converts it: a Python number or list of floats as float32, of ints as
    int32 (NumPy would make them 64-bit); an array keeps its dtype."""
    if dtype is not None or isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return np.asarray(value, dtype=None if dtype is None else np.dtype(dtype))
    array = np.asarray(value)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64:
        return array.astype(np.int32)
    return array


def eager(value):
    """``value`` with arrays as :class:`EagerArray` views and floats as :class:`EagerScalar` (lists, tuples and
    dicts of them too); anything else as it is."""
    kind = type(value)
    if kind is np.ndarray:  # (the common case first: one output)
        return value.view(EagerArray)
    if kind is float or kind is np.float32 or kind is np.float64:
        return EagerScalar(value)
    return _mapped(value, eager)


def plain(value):
    """The inverse of :func:`eager`: EagerArrays as plain arrays (views), EagerScalars as floats (for logs and
    histories, which hold Keras's types)."""
    kind = type(value)
    if kind is EagerArray:
        return value.view(np.ndarray)
    if kind is EagerScalar:
        return float(value)
    return _mapped(value, plain)


def _mapped(value, convert):
    """A list, tuple or dict with ``convert`` applied to its items; anything else as it is."""
    kind = type(value)
    if kind is list or kind is tuple:
        return kind(convert(v) for v in value)
    if kind is dict:
        return {k: convert(v) for k, v in value.items()}
    return value
