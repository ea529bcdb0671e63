"""Batches from a data stream — a ``tf.data.Dataset``, a Keras ``PyDataset``, a PyTorch ``DataLoader``, a generator —
collected into the arrays ``fit``, ``evaluate`` and ``predict`` take, the stream's batch boundaries kept.

Each element is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as Keras reads them; ``x`` and ``y`` are
arrays, or lists, tuples or dicts of arrays (several inputs or outputs). Every batch but the last must have the
first one's size (the batches are then the same when the arrays are cut again at that size); a stream without an
end (a generator, a repeated dataset) needs the step count that bounds what is drawn. ``predict`` and ``evaluate``
read a generator to its end, as Keras's do, and ``predict`` takes batches of any sizes, and of any lengths past
the batch axis (``padded_batch``): those it predicts batch by batch. Nothing of TensorFlow or
PyTorch is imported: a dataset is read through its ``as_numpy_iterator``, other elements through ``np.asarray``.
"""

from __future__ import annotations

import collections.abc
import inspect
import itertools
import random
import warnings

import numpy as np

#: a tf.data cardinality that says the dataset repeats forever
_INFINITE = -1


def is_stream(x) -> bool:
    """Whether ``x`` is a data stream rather than arrays."""
    if type(x) is np.ndarray:  # (the common case, on predict's path: no ABC or MRO checks)
        return False
    return (inspect.isgenerator(x) or isinstance(x, collections.abc.Iterator) or hasattr(x, "element_spec")
            or any(c.__name__ in ("PyDataset", "Sequence", "DataLoader") for c in type(x).__mro__))


class RaggedBatches(ValueError):
    """A stream's batches differ past the batch axis (``padded_batch``): they cannot be joined into one array."""


def _elements(data, limit: int | None, where: str, to_end: bool = False):
    """The stream's elements, at most ``limit`` of them (``to_end``: a generator without ``limit`` read until it
    stops, as Keras's ``predict`` and ``evaluate`` read one)."""
    if hasattr(data, "as_numpy_iterator"):  # a tf.data.Dataset
        cardinality = int(data.cardinality()) if hasattr(data, "cardinality") else None
        if cardinality == _INFINITE and limit is None:
            raise ValueError(f"{where}: the dataset repeats forever; give the number of steps to draw from it")
        source = data.as_numpy_iterator()
    elif hasattr(data, "__getitem__") and not isinstance(data, collections.abc.Iterator) and (
            hasattr(data, "__len__") or hasattr(data, "num_batches")):  # (a Keras PyDataset: batch i by index)
        count = getattr(data, "num_batches", None) if not hasattr(data, "__len__") else len(data)
        if count is None and limit is None:
            raise ValueError(f"{where}: the PyDataset has no end (num_batches is None); give the number of steps "
                             "to draw from it")
        source = (data[i] for i in (itertools.count() if count is None else range(count)))
    elif isinstance(data, collections.abc.Iterable) and not isinstance(data, collections.abc.Iterator) \
            and hasattr(data, "__len__"):
        source = iter(data)  # (a DataLoader: a fresh pass)
    else:
        if limit is None and not to_end:
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
    if element is None:
        raise ValueError("a stream's element must be x, (x,), (x, y) or (x, y, sample_weight); received None (a "
                         "generator or PyDataset __getitem__ that returned nothing?)")
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
    arrays = [np.asarray(p) for p in parts]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        raise RaggedBatches(f"a stream's {what} batches have different shapes past the batch axis {sorted(shapes)[:4]} "
                            "(padded_batch pads each batch to its own longest sequence: give padded_shapes one "
                            "length for all)")
    return np.concatenate(arrays, axis=0)


def _leaves(structure) -> list:
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in _leaves(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in _leaves(v)]
    return [] if structure is None else [structure]


def _batch_size(element_parts, where: str) -> int:
    """The one leading size of every array of an element (x's, y's and the weights')."""
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in _leaves(element_parts)}
    if None in sizes:
        raise ValueError(f"{where}: the stream's elements have no batch axis (a scalar); batch it first "
                         "(dataset.batch(n))")
    if len(sizes) != 1:
        raise ValueError(f"{where}: an element of the stream holds batches of sizes {sorted(sizes)} (its x, y and "
                         "sample weights must have one size; zipped datasets batched differently?)")
    return sizes.pop()


def collect(data, where: str, limit: int | None = None, to_end: bool = False) -> tuple:
    """``(x, y, sample_weight, batch_size)`` from a stream's first ``limit`` elements (None: all; ``to_end``: a
    generator's until it stops)."""
    x, y, sample_weight, sizes = _collected(_elements(data, limit, where, to_end), where)
    if any(s != sizes[0] for s in sizes[:-1]) or sizes[-1] > sizes[0]:
        raise ValueError(f"{where}: the stream's batches have sizes {sizes[:8]}{' ...' if len(sizes) > 8 else ''}; "
                         "fastgru takes batches of one size, the last of a pass alone smaller (a dataset batched "
                         "and then repeated has a short batch inside each pass: repeat it before batch(), or "
                         "batch(n, drop_remainder=True))")
    return x, y, sample_weight, sizes[0]


def predict_inputs(data, limit: int | None) -> tuple:
    """``(x, batch size)`` for ``predict`` from a stream's first ``limit`` elements (None: all; a generator's until it
    stops), batches of any sizes; or ``(the batches' x, None)`` when they differ past the batch axis
    (``padded_batch``), to be predicted one by one."""
    elements = _elements(data, limit, "predict", to_end=True)
    if not elements:
        raise ValueError("predict: the stream yielded no batches")
    xs = [_parts(e)[0] for e in elements]
    sizes = [_batch_size(x, "predict") for x in xs]
    try:
        return _joined(xs, "x"), max(sizes)
    except RaggedBatches:
        return xs, None


def _collected(elements: list, where: str) -> tuple:
    """``(x, y, sample_weight, batch sizes)`` of a stream's elements."""
    if not elements:
        raise ValueError(f"{where}: the stream yielded no batches")
    parts = [_parts(e) for e in elements]
    sizes = [_batch_size(p, where) for p in parts]
    x, y, sample_weight = (_joined([p[i] for p in parts], what) for i, what in enumerate(("x", "y", "sample_weight")))
    return x, y, sample_weight, sizes


def rereadable(data) -> bool:
    """Whether ``fit`` can read ``data`` anew each epoch, as Keras's fit iterates it: a finite ``tf.data``
    dataset, a PyTorch ``DataLoader``, a Keras ``PyDataset`` with a number of batches (not a generator)."""
    if hasattr(data, "as_numpy_iterator"):
        return not hasattr(data, "cardinality") or int(data.cardinality()) != _INFINITE
    if _is_py_dataset(data):
        return (len(data) if hasattr(data, "__len__") else getattr(data, "num_batches", None)) is not None
    return isinstance(data, collections.abc.Iterable) and not isinstance(data, collections.abc.Iterator) \
        and hasattr(data, "__len__")


def _unknown_length(data) -> bool:
    """Whether a tf.data dataset's number of batches is unknown (after ``filter``)."""
    return hasattr(data, "cardinality") and int(data.cardinality()) < 0


def _is_py_dataset(data) -> bool:
    return any(c.__name__ in ("PyDataset", "Sequence") for c in type(data).__mro__)


class EpochReader:
    """A stream ``fit`` reads anew, as Keras's fit does: each epoch, or with ``steps_per_epoch`` (``passes``) each
    time a pass runs out. A ``tf.data`` dataset then reshuffles as it does in Keras (``shuffle()``'s default), a
    ``DataLoader(shuffle=True)`` draws a new order, and a ``PyDataset`` has its ``on_epoch_begin``/``on_epoch_end``
    called around each epoch and, with fit's ``shuffle``, each pass's batches taken in an order from Python's
    ``random.shuffle``, as Keras's adapter takes them."""

    def __init__(self, data, shuffle: bool, passes: bool = False):
        self.data, self.shuffle, self.py_dataset, self.passes = data, shuffle, _is_py_dataset(data), passes
        self.reads = 0
        self.end_epoch()  # (Keras's epoch iterator calls on_epoch_end once as it starts, before the first epoch)
        if any(c.__name__ == "DataLoader" for c in type(data).__mro__):
            # (Keras's adapter reads a DataLoader's first 2 batches for their shapes before training: with
            # shuffle=True that draws an order from torch's generator, so the first epoch takes the next one)
            list(itertools.islice(data, 2))

    def begin_epoch(self) -> None:
        if self.py_dataset and hasattr(self.data, "on_epoch_begin"):
            self.data.on_epoch_begin()

    def read(self) -> tuple:
        """The next pass's ``(x, y, sample_weight, batch sizes)``."""
        data = self.data
        self.reads += 1
        if hasattr(data, "as_numpy_iterator") and self.reads > 1 and not self.passes and not _unknown_length(data):
            data.as_numpy_iterator()  # (Keras's epoch iterator makes one more pass's iterator at each epoch's end,
            # unused: a seeded shuffle() then gives the next epoch the order after it, in Keras and here; a dataset
            # of unknown length, after filter(), reshuffles each epoch too, in another order than Keras's)
        if not self.py_dataset:
            return _collected(_elements(data, None, "fit"), "fit")
        order = list(range(len(data) if hasattr(data, "__len__") else data.num_batches))
        if self.shuffle:
            random.shuffle(order)
        return _collected([data[i] for i in order], "fit")

    def end_epoch(self) -> None:
        if self.py_dataset and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()


def warn_unshuffled(data, shuffle) -> None:
    """An endless PyDataset (``num_batches`` None) is read once, for the steps drawn, in index order (Keras
    shuffles the batch order of a pass with ``shuffle=True``)."""
    if shuffle and _is_py_dataset(data):
        warnings.warn("fit reads an endless PyDataset once, in the order of its indices: Keras's fit shuffles its "
                      "batch order (shuffle=True, the default) and calls its on_epoch_begin/end; pass shuffle=False "
                      "for Keras's numbers", stacklevel=3)


def check_no_targets(y, sample_weight, where: str) -> None:
    """Keras's rule: a stream carries its own targets and weights."""
    if y is not None or sample_weight is not None:
        raise ValueError(f"{where}: `y` and `sample_weight` are not given beside a stream (a dataset, generator or "
                         "PyDataset): its elements carry them, as (x, y) or (x, y, sample_weight)")
