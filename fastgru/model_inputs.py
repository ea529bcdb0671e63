"""The inputs a Functional model is called with, checked: one array, a list in input order, or a dict keyed by
input name, each array's kind, rank, feature sizes and sample count against the model's ``Input``s, cast to the
dtype each declares (token ids, strings)."""

from __future__ import annotations

import numpy as np

from .graph import _fmt
from .input_casts import cast_to_declared
from .ops.categorical import string_input


def _array_of(value) -> np.ndarray:
    """An input as an array: nested Python lists (or tuples) of floats as float32, as Keras's ``convert_to_tensor``
    makes them (NumPy's float64 would compute the model in float64); arrays and pandas frames keep their dtype."""
    a = np.asarray(value)
    return a.astype(np.float32) if a.dtype == np.float64 and isinstance(value, (list, tuple)) else a


def inputs_of_dict(model, x: dict, label: str) -> list:
    """The values of ``x`` in ``model``'s input order. A model whose inputs were given as a dict of ``Input``s is
    keyed by that dict's keys (Keras's key); otherwise, and where the dict has an Input's name for every input
    instead, by Input name. Keys that name no input are left aside, as Keras's Functional does (an "id" column
    beside the features); a misspelt key shows as the input it misses."""
    names = model.input_names
    keys = model._input_struct if isinstance(model._input_struct, list) else names
    for candidate in (keys, names):
        if all(k in x for k in candidate):
            return [x[k] for k in candidate]
    missing = [k for k in keys if k not in x]
    extra = [k for k in x if k not in keys]
    named = f" (the inputs' names: {names})" if keys != names else ""
    raise ValueError(f"{label} expects inputs {keys}{named}; the dict misses {missing}"
                     + (f" (its other keys: {extra})" if extra else ""))


def checked_inputs(model, x) -> list[np.ndarray]:
    """``x`` for ``model`` (a Functional ``Model``) as a list of checked arrays, one per input in its order."""
    from .training.structures import refuse_streams

    names = model.input_names
    refuse_streams(x, f"Model {model.name!r}")
    if isinstance(x, dict):
        xs = inputs_of_dict(model, x, f"Model {model.name!r}")
    elif len(names) == 1 and isinstance(x, (list, tuple)) and x and all(isinstance(v, (str, bytes)) for v in x):
        xs = [x]  # (one string input, given as a list of strings)
    elif isinstance(x, (list, tuple)):
        if len(x) != len(names):
            raise ValueError(f"Model {model.name!r} expects {len(names)} input(s) {names}, received a list of "
                             f"{len(x)}")
        xs = list(x)
    else:
        if len(names) != 1:
            raise ValueError(f"Model {model.name!r} expects {len(names)} inputs {names} (a list or a dict keyed by "
                             f"input name), received one array")
        xs = [x]
    out = []
    n = None
    for name, t, a in zip(names, model._inputs, xs):
        if getattr(t.layer, "input_dtype", None) == "string":  # (TextVectorization, StringLookup)
            a = string_input(a, t.shape, f"Model {model.name!r} input {name!r}")
        elif isinstance(a, np.ndarray) and a.dtype != object:
            pass
        else:
            try:
                a = _array_of(a)
            except ValueError as exc:  # (ragged lists; a symbolic tensor says what it is itself)
                what = exc if getattr(a, "_fg_symbolic", False) else f"not a rectangular array ({exc})"
                raise ValueError(f"Model {model.name!r} input {name!r}: {what}") from None
        strings = getattr(t.layer, "input_dtype", None) == "string"
        if not strings and (a.dtype == object or a.dtype.kind not in "fiub"):
            raise TypeError(f"Model {model.name!r} input {name!r} must be a numeric array, received dtype {a.dtype}"
                            + (" (an input of strings is declared with Input(..., dtype='string'))"
                               if a.dtype.kind in "USO" else ""))
        if a.ndim != len(t.shape) or any(e is not None and e != r for e, r in zip(t.shape[1:], a.shape[1:])):
            raise ValueError(f"Model {model.name!r} input {name!r} expects shape {_fmt(t.shape)}, received "
                             f"{a.shape}")
        a = cast_to_declared(a, getattr(t.layer, "input_dtype", None), f"Model {model.name!r} input {name!r}")
        if n is None:
            n = len(a)
        elif len(a) != n:
            raise ValueError(f"Model {model.name!r}: all inputs need the same number of samples; input {name!r} has "
                             f"{len(a)}, the first has {n}")
        out.append(a)
    return out


def sequential_input(model, x) -> np.ndarray:
    """``x`` for a Sequential ``model``: one array of its input's kind, rank and feature sizes, cast to the
    dtype its Input declares (token ids, strings)."""
    from .training.structures import refuse_streams, single

    refuse_streams(x, f"Model {model.name!r}")
    if not model._layers:
        raise ValueError(f"Sequential {model.name!r} has no layers: add some before calling, predicting or training")
    texts = model._takes_strings()
    if not (texts and isinstance(x, (list, tuple)) and all(isinstance(v, (str, bytes)) for v in x)):
        # ([x] and {name: x}: Keras's one-input structures, the name the Input's; not a list of texts)
        x = single(x, "input", getattr(model._input_layer, "name", None))
    if texts:
        return string_input(x, model.input_shape if model.built else None, f"Model {model.name!r}")
    if isinstance(x, (list, tuple)) and len(x) > 1 and model.built and model.input_shape is not None and all(
            isinstance(a, np.ndarray) and a.ndim == len(model.input_shape) for a in x):  # (several inputs' arrays)
        raise ValueError(f"Model {model.name!r} takes 1 input of shape {model.input_shape}; received a list of "
                         f"{len(x)} arrays of shapes {[a.shape for a in x]}")
    try:
        x = _array_of(x)
    except ValueError as exc:  # (nested lists of unequal lengths)
        raise ValueError(f"Model {model.name!r} expects a rectangular numeric array as x; received nested lists of "
                         f"unequal lengths ({exc})") from None
    if x.dtype == object or x.dtype.kind not in "fiub":
        raise TypeError(f"Model {model.name!r} expects a numeric numpy array, received dtype {x.dtype}")
    if model.built and model.input_shape is not None:
        expected = model.input_shape
        if x.ndim != len(expected):
            raise ValueError(
                f"Model {model.name!r} expects input of rank {len(expected)} with shape {expected}, "
                f"received shape {x.shape}"
            )
        # the time axis may vary (recurrent layers take any length); feature axes must match
        for axis in range(2, x.ndim):
            if expected[axis] is not None and x.shape[axis] != expected[axis]:
                raise ValueError(
                    f"Model {model.name!r} expects input shape {expected} (axis {axis} = {expected[axis]}), "
                    f"received shape {x.shape}"
                )
    declared = getattr(model._input_layer, "input_dtype", None) or getattr(model, "_file_input_dtype", None)
    return cast_to_declared(x, declared, f"the input of Model {model.name!r}")
