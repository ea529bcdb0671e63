"""Small, strict helpers for reading Keras's HDF5 files with h5py (every failure a ModelFileError)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import h5py
import numpy as np

from ..errors import FastGRUError, ModelFileError


@contextmanager
def guard(path):
    """Turn what h5py raises on a damaged file (anywhere: an attribute check, a link lookup, a read)
    into a ModelFileError naming the path; fastgru's own errors pass through."""
    try:
        yield
    except FastGRUError:
        raise
    except (OSError, RuntimeError, KeyError, UnicodeError) as exc:
        raise ModelFileError(path, f"damaged HDF5 data ({type(exc).__name__}: {exc})") from exc


def open_h5(path, source=None) -> h5py.File:
    """Open an HDF5 file (or file-like) for reading, or raise ModelFileError naming the path."""
    try:
        return h5py.File(source if source is not None else path, "r")
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"not a readable HDF5 file ({exc})") from None


def decode(value):
    """bytes -> str (Keras writes attributes as bytes or str depending on version)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [decode(v) for v in value.tolist()]
    if isinstance(value, np.bytes_):
        return bytes(value).decode("utf-8")
    return value


def read_list_attr(group, name: str, path) -> list[str]:
    """A list of names that Keras may have split into ``name0``, ``name1``, ... chunks (bytes or str)."""
    if name in group.attrs:
        value = decode(group.attrs[name])
        if isinstance(value, str):  # some writers store the repr of a numpy array of names
            value = [v.strip("'\" ") for v in value.strip("[]").split() if v.strip("'\" ")]
        values = list(value) if isinstance(value, (list, tuple)) else [] if np.size(value) == 0 else [value]
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunk = decode(group.attrs[f"{name}{i}"])
            values.extend(chunk if isinstance(chunk, list) else [chunk])
            i += 1
        if i == 0:
            raise ModelFileError(path, f"HDF5 group {group.name!r} has no attribute {name!r}")
    if not all(isinstance(v, str) for v in values):
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} should list names, "
                                   f"found {values!r:.80}")
    return values


def read_json_attr(group, name: str, path) -> dict | None:
    """A JSON-valued attribute (``model_config``), or None when absent."""
    if name not in group.attrs:
        return None
    text = decode(group.attrs[name])
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"attribute {name!r} is not valid JSON ({exc})") from None


def read_dataset(group, key: str, path) -> np.ndarray:
    try:
        obj = group[key]
    except KeyError:
        raise ModelFileError(path, f"missing weight {group.name}/{key}") from None
    if not isinstance(obj, h5py.Dataset):
        raise ModelFileError(path, f"{group.name}/{key} should be a weight array, found a group")
    try:
        return np.asarray(obj[()])
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"weight {group.name}/{key} cannot be read ({exc})") from None


def get_group(parent, key: str, path) -> h5py.Group:
    try:
        obj = parent[key]
    except KeyError:
        raise ModelFileError(path, f"missing HDF5 group {parent.name.rstrip('/')}/{key}") from None
    except (OSError, ValueError) as exc:
        raise ModelFileError(path, f"HDF5 group {key!r} cannot be read ({exc})") from None
    if not isinstance(obj, h5py.Group):
        raise ModelFileError(path, f"{parent.name.rstrip('/')}/{key} should be a group, found a dataset")
    return obj
