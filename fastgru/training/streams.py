"""Batches from a data stream — a ``tf.data.Dataset``, a Keras ``PyDataset``, a PyTorch ``DataLoader``, a generator —
collected into the arrays ``fit``, ``evaluate`` and ``predict`` take, the stream's batch boundaries kept.

Each element is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as Keras reads them; ``x`` and ``y`` are
arrays, or lists, tuples or dicts of arrays (several inputs or outputs). Every batch but the last must have the
first one's size (the batches are then the same when the arrays are cut again at that size); a stream without an
end (a generator, a repeated dataset) needs the step count that bounds what is drawn. Nothing of TensorFlow or
PyTorch is imported: a dataset is read through its ``as_numpy_iterator``, other elements through ``np.asarray``.
"""

from __future__ import annotations

import collections.abc
import inspect
import itertools

import numpy as np

#: a tf.data cardinality that says the dataset repeats forever
_INFINITE = -1


def is_stream(x) -> bool:
    """Whether ``x`` is a data stream rather than arrays."""
    if type(x) is np.ndarray:  # (the common case, on predict's path: no ABC or MRO checks)
        return False
    return (inspect.isgenerator(x) or isinstance(x, collections.abc.Iterator) or hasattr(x, "element_spec")
            or any(c.__name__ in ("PyDataset", "Sequence", "DataLoader") for c in type(x).__mro__))


def _elements(data, limit: int | None, where: str):
    """The stream's elements, at most ``limit`` of them."""
    if hasattr(data, "as_numpy_iterator"):  # a tf.data.Dataset
        cardinality = int(data.cardinality()) if hasattr(data, "cardinality") else None
        if cardinality == _INFINITE and limit is None:
            raise ValueError(f"{where}: the dataset repeats forever; give the number of steps to draw from it")
        source = data.as_numpy_iterator()
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, collections.abc.Iterator):
        source = (data[i] for i in range(len(data)))  # (a Keras PyDataset: batch i by index)
    elif isinstance(data, collections.abc.Iterable) and not isinstance(data, collections.abc.Iterator) \
            and hasattr(data, "__len__"):
        source = iter(data)  # (a DataLoader: a fresh pass)
    else:
        if limit is None:
            raise ValueError(f"{where}: a generator or iterator has no end fastgru can see; give the number of steps "
                             "to draw from it (steps_per_epoch, validation_steps or steps)")
        source = data
    return list(itertools.islice(source, limit))


def _parts(element) -> tuple:
    """(x, y, sample_weight) of one element."""
    if isinstance(element, tuple) or (isinstance(element, list) and 1 <= len(element) <= 3
                                      and not all(np.isscalar(e) for e in element)):
        if not 1 <= len(element) <= 3:
            raise ValueError(f"a stream's element must be x, (x, y) or (x, y, sample_weight); received a tuple of "
                             f"{len(element)}")
        return tuple(element) + (None,) * (3 - len(element))
    return element, None, None


def _joined(parts: list, what: str):
    """One structure of arrays from the batches' structures of arrays (concatenated along the batch axis)."""
    first = parts[0]
    if first is None:
        if any(p is not None for p in parts):
            raise ValueError(f"a stream's {what} is present in some batches only")
        return None
    if isinstance(first, dict):
        if any(not isinstance(p, dict) or set(p) != set(first) for p in parts):
            raise ValueError(f"a stream's {what} changes its keys between batches")
        return {k: _joined([p[k] for p in parts], f"{what} {k!r}") for k in first}
    if isinstance(first, (list, tuple)):  # (several inputs or outputs)
        if any(not isinstance(p, (list, tuple)) or len(p) != len(first) for p in parts):
            raise ValueError(f"a stream's {what} changes its structure between batches")
        return [_joined([p[i] for p in parts], f"{what} {i}") for i in range(len(first))]
    try:
        return np.concatenate([np.asarray(p) for p in parts], axis=0)
    except ValueError as exc:
        raise ValueError(f"a stream's {what} batches do not stack ({exc})") from None


def _leading(structure) -> int:
    while isinstance(structure, (dict, list, tuple)):
        structure = next(iter(structure.values())) if isinstance(structure, dict) else structure[0]
    return len(structure)


def collect(data, where: str, limit: int | None = None) -> tuple:
    """``(x, y, sample_weight, batch_size)`` from a stream's first ``limit`` elements (None: all)."""
    elements = _elements(data, limit, where)
    if not elements:
        raise ValueError(f"{where}: the stream yielded no batches")
    parts = [_parts(e) for e in elements]
    sizes = [_leading(p[0]) for p in parts]
    if any(s != sizes[0] for s in sizes[:-1]) or sizes[-1] > sizes[0]:
        raise ValueError(f"{where}: the stream's batches have sizes {sizes[:8]}{' ...' if len(sizes) > 8 else ''}; "
                         "fastgru takes batches of one size (the last may be smaller)")
    x, y, sample_weight = (_joined([p[i] for p in parts], what) for i, what in enumerate(("x", "y", "sample_weight")))
    return x, y, sample_weight, sizes[0]


def check_no_targets(y, sample_weight, where: str) -> None:
    """Keras's rule: a stream carries its own targets and weights."""
    if y is not None or sample_weight is not None:
        raise ValueError(f"{where}: `y` and `sample_weight` are not given beside a stream (a dataset, generator or "
                         "PyDataset): its elements carry them, as (x, y) or (x, y, sample_weight)")
