"""Array functions of the preprocessing layers (``fastgru.layers.lookup``, ``text_vectorization``,
``category_encoding``): inputs taken as strings or integers, ``adapt``'s batches, vocabulary files, and Keras's
categorical encodings of indices (``one_hot``, ``multi_hot``, ``count``, ``tf_idf``)."""

from __future__ import annotations

import os

import numpy as np


def string_array(x, owner: str) -> np.ndarray:
    """``x`` as a NumPy array of Python ``str`` (dtype object: a fixed-width ``"U"`` array would drop trailing NUL
    characters, which TensorFlow's strings keep; bytes are decoded as UTF-8, as TensorFlow's strings are), or a
    TypeError naming what was found."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x, dtype=object)
    if a.dtype.kind in "USO":
        try:
            flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in a.ravel().tolist()]
        except UnicodeDecodeError as exc:
            raise ValueError(f"{owner} expects UTF-8 text, received bytes that are not UTF-8 ({exc})") from None
        if all(isinstance(v, str) for v in flat):
            return object_array(flat, a.shape)
    raise TypeError(f"{owner} expects strings (a NumPy array of str or bytes), received dtype {a.dtype}"
                    + (" holding other objects" if a.dtype == object else ""))


def object_array(values: list, shape: tuple) -> np.ndarray:
    """Python objects (strings) in an array of ``shape``, each kept as it is."""
    out = np.empty(shape, dtype=object)
    out.reshape(-1)[:] = values
    return out


def string_input(x, expected: tuple | None, owner: str) -> np.ndarray:
    """A model's string input (``Input(..., dtype="string")``, or a first layer taking strings) as a ``str`` array
    of the declared rank: one axis of 1 added or taken off at the end, as Keras adjusts an input's rank (an array
    of texts (B,) for an input declared (None, 1))."""
    a = string_array(x, owner)
    if expected is not None and a.ndim != len(expected):
        if a.ndim == len(expected) - 1 and expected[-1] == 1:
            a = a[..., None]
        elif a.ndim == len(expected) + 1 and a.shape[-1] == 1:
            a = a[..., 0]
        else:
            raise ValueError(f"{owner} expects strings of shape {tuple(expected)}, received shape {a.shape}")
    return a


def integer_array(x, owner: str) -> np.ndarray:
    """``x`` as int64 (floats holding whole numbers are taken, as Keras's cast takes them), or a TypeError."""
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(np.mod(a, 1) == 0):
        return a.astype(np.int64)
    raise TypeError(f"{owner} expects integers, received dtype {a.dtype}"
                    + (" holding fractions or non-finite values" if a.dtype.kind == "f" else ""))


def batches_of(data, steps, owner: str) -> tuple[list, bool]:
    """``adapt``'s data as ``(batches, given as one array)``: one array (a list or an array is one batch), or
    the first ``steps`` batches of an iterable (a generator, a ``PyDataset``-like sequence of batches)."""
    if isinstance(data, (list, tuple, np.ndarray)) or hasattr(data, "__array__"):
        if steps is not None:
            raise ValueError(f"{owner}.adapt(): steps applies to an iterable of batches, not to an array")
        return [data], True
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"{owner}.adapt() expects an array, a list or an iterable of batches, received "
                        f"{type(data).__name__}")
    out = []
    for i, batch in enumerate(data):
        if steps is not None and i >= steps:
            break
        out.append(batch[0] if isinstance(batch, tuple) else batch)  # ((x, y) batches: the inputs)
    return out, False


def token_list(values) -> list:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"a vocabulary should be 1-D, received shape {values.shape}")
        return values.tolist()
    return list(values)


def read_vocabulary_file(path, owner: str, kind: str) -> list:
    """A vocabulary file given to the constructor: one token per line (Keras's ``TextFileInitializer``)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ValueError(f"{owner}: vocabulary file {os.fspath(path)!r} cannot be read ({exc})") from None
    while lines and lines[-1] == "":
        lines.pop()
    try:
        return lines if kind == "string" else [int(v) for v in lines]
    except ValueError:
        raise ValueError(f"{owner}: vocabulary file {os.fspath(path)!r} should hold one integer per line") from None


def encoded_shape(shape: tuple, output_mode: str, depth: int | None) -> tuple:
    """The shape :func:`encode` gives indices of ``shape`` (Keras's ``compute_output_shape`` of its categorical
    layers): the same in ``"int"`` mode; one-hot rows appended (a last axis of 1 replaced); else the last axis
    replaced by ``depth``."""
    shape = tuple(shape)
    if output_mode == "int":
        return shape
    if not shape:
        return (depth,)
    if output_mode == "one_hot":
        return (shape[:-1] if len(shape) > 1 and shape[-1] == 1 else shape) + (depth,)
    return shape[:-1] + (depth,)


def encode(idx: np.ndarray, output_mode: str, depth: int, idf=None) -> np.ndarray:
    """Indices ``idx`` (int64) in Keras's ``output_mode`` (``encode_categorical_inputs``): ``"int"`` as they are;
    ``"one_hot"`` a row of ``depth`` per index (a last axis of 1 replaced by the row); ``"multi_hot"``, ``"count"``
    and ``"tf_idf"`` one row per sample, the last axis being its tokens (a 1-D array is one sample): whether each
    index occurs, how often, or how often times ``idf`` (depth,). Indices outside [0, depth) count nowhere, as
    TensorFlow's bincount drops them. int64, or ``idf``'s dtype for ``"tf_idf"``."""
    if output_mode == "int":
        return idx
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if output_mode == "one_hot":
        if idx.ndim > 1 and idx.shape[-1] == 1:
            idx = idx[..., 0]
        return (idx[..., None] == np.arange(depth)).astype(np.int64)
    rows = idx.reshape(int(np.prod(idx.shape[:-1])), idx.shape[-1])
    counts = np.zeros((len(rows), depth), np.int64)
    which = np.repeat(np.arange(len(rows)), rows.shape[1])
    cols = rows.ravel()
    kept = (cols >= 0) & (cols < depth)
    np.add.at(counts, (which[kept], cols[kept]), 1)
    counts = counts.reshape(idx.shape[:-1] + (depth,))
    if output_mode == "multi_hot":
        return np.minimum(counts, 1)
    if output_mode == "count":
        return counts
    if output_mode == "tf_idf":
        return counts.astype(idf.dtype) * idf
    raise ValueError(f"unknown output_mode {output_mode!r}")


def ranked_tokens(counts: dict, limit: int | None) -> list:
    """The tokens of ``counts`` (token -> count) by count, ties by the token, both descending (Keras's
    ``np.lexsort((tokens, counts))[::-1]``; strings compare by code point, as their UTF-8 bytes do), the first
    ``limit`` of them."""
    ranked = [token for token, _ in sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)]
    return ranked[:limit] if limit is not None else ranked


def inverse_document_frequency(document_counts, n_documents: int, dtype) -> np.ndarray:
    """Keras's ``log(1 + documents / (1 + documents holding the token))``, computed in float64, then in ``dtype``."""
    return np.log(1 + n_documents / (1 + np.asarray(document_counts, np.float64))).astype(dtype)


def quantile_summary(values: np.ndarray, epsilon: float) -> np.ndarray:
    """Keras's ``Discretization`` summary of a batch: (2, n) sorted values taken every ``len / (1 / epsilon)``
    places (every one when fewer), each with that step as its weight."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(np.size(values) / (1.0 / epsilon), 1)
    kept = values[int(step - 1)::int(step)]
    return np.stack([kept, np.ones_like(kept) * step])


def merge_summaries(new: np.ndarray, old: np.ndarray, epsilon: float) -> np.ndarray:
    """Two summaries merged by value (Keras's order: the new batch's first, NumPy's default sort), compressed."""
    merged = np.concatenate((new, old), axis=1)
    return compress_summary(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


def compress_summary(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """A summary brought to ``1 / epsilon`` points by interpolating its cumulative weights (kept as it is when it
    is that small already), float32, as Keras compresses it."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    fractions = cumulative / cumulative[-1]
    points = np.interp(percents, fractions, summary[0])
    cumulative = np.interp(percents, fractions, cumulative)
    weights = cumulative - np.concatenate((np.array([0]), cumulative[:-1]))
    return np.stack((points, weights)).astype("float32")


def bin_boundaries(summary: np.ndarray, num_bins: int) -> np.ndarray:
    """The ``num_bins - 1`` inner boundaries of a summary's ``num_bins`` equal-weight bins."""
    return compress_summary(summary, 1.0 / num_bins)[0, :-1]
