"""Keras's data utilities that recurrent-model scripts call around the model (``keras.utils``), in NumPy:
``to_categorical``, ``pad_sequences``, ``normalize``, ``set_random_seed``, the ``PyDataset`` base class that
``fit``, ``evaluate`` and ``predict`` read batch by batch, and ``timeseries_dataset_from_array``."""

from __future__ import annotations

import math

import numpy as np

from .random import set_random_seed
from .saving import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
)

__all__ = ["CustomObjectScope", "PyDataset", "Sequence", "custom_object_scope", "get_custom_objects",
           "get_registered_name", "get_registered_object", "normalize", "pad_sequences",
           "register_keras_serializable", "set_random_seed", "timeseries_dataset_from_array",
           "to_categorical"]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """Class ids (any shape; a trailing axis of 1 is dropped, as Keras) as one-hot float64 rows of ``num_classes``
    (default: the largest id + 1)."""
    x = np.asarray(x)
    if x.dtype.kind == "f" and not np.all(np.isfinite(x) & (x == np.round(x))):
        raise ValueError("to_categorical takes integer class ids; received non-integer values")
    ids = x.astype(np.int64)
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids.reshape(ids.shape[:-1])
    if ids.size and ids.min() < 0:
        raise ValueError(f"to_categorical takes class ids from 0; received {int(ids.min())}")
    classes = int(ids.max()) + 1 if num_classes is None and ids.size else int(num_classes or 0)
    if ids.size and ids.max() >= classes:
        raise ValueError(f"to_categorical: class id {int(ids.max())} does not fit num_classes={classes}")
    out = np.zeros(ids.shape + (classes,))  # (float64, as Keras's)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """``x`` divided by its ``order``-norm along ``axis`` (zero vectors stay zero), as ``keras.utils.normalize``."""
    x = np.asarray(x)
    x = x if x.dtype.kind == "f" else x.astype(np.float64)  # (integers: float64, as Keras's)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def pad_sequences(sequences, maxlen: int | None = None, dtype="int32", padding: str = "pre",
                  truncating: str = "pre", value=0.0) -> np.ndarray:
    """A list of sequences (lists or arrays of numbers, or of equal-shaped feature rows) as one
    (count, maxlen, ...) array, padded with ``value`` and cut to ``maxlen`` at the start (``"pre"``) or the end
    (``"post"``) of each, as ``keras.utils.pad_sequences`` (default maxlen: the longest)."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding and truncating are 'pre' or 'post'; received {padding!r}, {truncating!r}")
    if not hasattr(sequences, "__len__"):
        raise ValueError("pad_sequences takes a list of sequences (iterables with a length)")
    rows = [np.asarray(s) for s in sequences]
    if any(r.ndim == 0 for r in rows):
        raise ValueError("pad_sequences: every sequence should be a list or array, found a scalar")
    longest = max((len(r) for r in rows), default=0)
    maxlen = longest if maxlen is None else int(maxlen)
    features = next((r.shape[1:] for r in rows if len(r)), ())
    is_text = np.dtype(dtype).kind in "SUO"
    if isinstance(value, str) and not is_text:
        raise ValueError(f"pad_sequences: dtype {dtype!r} cannot hold the padding value {value!r}")
    out = np.full((len(rows), maxlen) + tuple(features), value, dtype=dtype)
    for i, row in enumerate(rows):
        if not len(row) or not maxlen:
            continue
        if row.shape[1:] != tuple(features):
            raise ValueError(f"pad_sequences: sequence {i} has items of shape {row.shape[1:]}, the others "
                             f"{tuple(features)}")
        row = row[-maxlen:] if truncating == "pre" else row[:maxlen]
        limits = np.iinfo(out.dtype) if out.dtype.kind in "iu" and row.dtype.kind in "iu" else None
        if limits is not None and row.size and (row.min() < limits.min or row.max() > limits.max):
            raise OverflowError(f"pad_sequences: sequence {i} holds values that dtype {out.dtype} cannot hold")
        if padding == "post":
            out[i, :len(row)] = row
        else:
            out[i, maxlen - len(row):] = row
    return out


class PyDataset:
    """Keras's base class for data that ``fit``/``evaluate``/``predict`` read one batch at a time: a subclass
    defines ``__len__`` (the number of batches) and ``__getitem__(index)`` (one batch: ``x``, ``(x, y)`` or
    ``(x, y, sample_weight)``), and may define ``on_epoch_end``. ``workers``, ``use_multiprocessing`` and
    ``max_queue_size`` are accepted as Keras's (fastgru reads the batches in order, in this process)."""

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self._workers, self._use_multiprocessing, self._max_queue_size = workers, use_multiprocessing, max_queue_size

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def use_multiprocessing(self) -> bool:
        return self._use_multiprocessing

    @property
    def max_queue_size(self) -> int:
        return self._max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def num_batches(self) -> int | None:
        return len(self) if hasattr(self, "__len__") else None

    def on_epoch_begin(self) -> None:
        pass

    def on_epoch_end(self) -> None:
        pass


#: Keras 2's name of the same base class
Sequence = PyDataset


class TimeseriesDataset:
    """The windows of ``timeseries_dataset_from_array``, gathered batch by batch: ``len()`` batches, ``[i]``, and a
    dataset's ``as_numpy_iterator()``, so that ``fit`` reads it in order every epoch, as it reads Keras's
    ``tf.data`` dataset (``shuffle=True`` reorders a ``PyDataset``'s batches, not a dataset's)."""

    element_spec = None  # (a dataset, to fit and predict)

    def __init__(self, data, targets, starts, offsets, batch_size):
        self.data, self.targets, self.starts, self.offsets, self.batch_size = data, targets, starts, offsets, batch_size

    def __len__(self) -> int:
        return len(self.starts) if self.batch_size is None else math.ceil(len(self.starts) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        if self.batch_size is None:  # (one window)
            starts = self.starts[index]
        else:
            starts = self.starts[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.data[starts[..., None] + self.offsets]
        return x if self.targets is None else (x, self.targets[starts])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def as_numpy_iterator(self):
        return iter(self)


def timeseries_dataset_from_array(data, targets, sequence_length: int, sequence_stride: int = 1,
                                  sampling_rate: int = 1, batch_size: int | None = 128, shuffle: bool = False,
                                  seed: int | None = None, start_index: int | None = None,
                                  end_index: int | None = None) -> TimeseriesDataset:
    """The sliding windows over ``data`` (a (T, ...) array) as Keras's ``timeseries_dataset_from_array`` makes
    them: window i takes ``sequence_length`` rows ``sampling_rate`` apart from start ``i · sequence_stride``
    (within ``data[start_index:end_index]``), its target the ``targets`` row at that start; batches of
    ``batch_size`` (None: one window at a time), a dataset that ``fit``/``predict`` read in order, as Keras's
    ``tf.data`` dataset (``fit``'s ``shuffle`` does not reorder it). With ``shuffle``,
    the windows' order is Keras's (NumPy's ``RandomState(seed)``); Keras then shuffles again within a buffer of
    TensorFlow's, which this does not."""
    data = np.asarray(data)
    start = int(start_index or 0)
    end = len(data) if end_index is None else int(end_index)
    for name, value in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                        ("sampling_rate", sampling_rate)):
        if int(value) <= 0 or (name != "sequence_length" and int(value) >= len(data)):
            raise ValueError(f"`{name}` must be higher than 0 and lower than the length of the data ({len(data)}); "
                             f"received {value}")
    if not 0 <= start < end <= len(data):
        raise ValueError(f"start_index ({start_index}) and end_index ({end_index}) should satisfy "
                         f"0 <= start_index < end_index <= {len(data)}")
    count = end - start - (int(sequence_length) - 1) * int(sampling_rate)
    if targets is not None:
        targets = np.asarray(targets)[start:end]
        count = min(count, len(targets))
    starts = np.arange(0, max(count, 0), int(sequence_stride), dtype=np.int64)
    if shuffle:
        np.random.RandomState(np.random.randint(1e6) if seed is None else seed).shuffle(starts)
    offsets = np.arange(int(sequence_length), dtype=np.int64) * int(sampling_rate)
    return TimeseriesDataset(data[start:end], targets, starts, offsets, None if batch_size is None else int(batch_size))
