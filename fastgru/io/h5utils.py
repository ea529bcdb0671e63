"""Small, strict helpers for reading Keras's HDF5 files with h5py (every failure a ModelFileError)."""

from __future__ import annotations

import itertools
import json
import os
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
    except (OSError, RuntimeError, KeyError, UnicodeError, ValueError, OverflowError, TypeError,
            IndexError) as exc:  # RecursionError is a RuntimeError
        raise ModelFileError(path, f"damaged HDF5 data ({type(exc).__name__}: {exc})") from exc


_image_names = itertools.count()


def open_h5(path, source=None) -> h5py.File:
    """Open an HDF5 file, or an HDF5 file held in memory (``source``: bytes, e.g. the weights inside a
    .keras zip), for reading; ModelFileError naming the path when it is not readable HDF5.

    In-memory files are opened as a libhdf5 file image (the core driver), not through h5py's Python
    file-object driver: libhdf5 then reads from one buffer of the file's real size, so a damaged
    offset or length in the file cannot make it request reads of absurd sizes through Python.
    """
    if source is None:
        check_global_heaps(path, path)
    else:
        source = source.getvalue() if hasattr(source, "getvalue") else bytes(source)
        check_global_heaps(path, path, source)
    try:
        if source is None:
            return h5py.File(path, "r")
        data = source
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_fapl_core(backing_store=False)
        fapl.set_file_image(data)
        name = f"fastgru-image-{os.getpid()}-{next(_image_names)}".encode()
        return h5py.File(h5py.h5f.open(name, h5py.h5f.ACC_RDONLY, fapl=fapl))
    except (OSError, ValueError, RuntimeError, OverflowError, TypeError) as exc:
        raise ModelFileError(path, f"not a readable HDF5 file ({exc})") from None


_GCOL = b"GCOL"


def check_global_heaps(path, label, data: bytes | None = None) -> None:
    """Refuse an HDF5 file whose global heap collections (where variable-length strings such as
    ``model_config`` live) are inconsistent, before libhdf5 parses them.

    libhdf5 walks a collection's objects by their stored sizes; a damaged size of 0 in the free-space
    object makes that walk loop forever (a hang, found by the fuzz test: about 1 in 7,000 byte flips of a
    legacy .h5), and a size running past the collection's end makes it read out of bounds. Each
    collection (found by its ``GCOL`` signature and a size that fits the file: libhdf5 refuses one whose
    signature is damaged, or whose size runs past the file, by itself) is walked here the way libhdf5
    walks it, with bounds: every step must advance and stay inside the collection. Bytes that merely look
    like a signature inside other data almost never also carry a size that fits (about 2**-34 per
    occurrence for a 1 GiB file), so valid files are not refused. One pass over the file's bytes
    (memory-mapped, not read into memory).
    """
    import mmap

    if data is not None:
        _check_heaps_in(data, label)
        return
    try:
        with open(path, "rb") as f:
            try:
                view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file: nothing to check (h5py refuses it)
                return
            with view:
                _check_heaps_in(view, label)
    except OSError as exc:
        raise ModelFileError(label, f"cannot be read ({exc})") from None


def _check_heaps_in(buf, label) -> None:
    n = len(buf)
    if n < 16 or bytes(buf[:8]) != b"\x89HDF\r\n\x1a\n":
        return  # not HDF5 at offset 0: h5py decides
    version = buf[8]
    lengths = buf[14] if version <= 1 else buf[10] if version in (2, 3) else 8
    if lengths not in (2, 4, 8):
        raise ModelFileError(label, f"damaged HDF5 superblock (size of lengths {lengths})")
    find = buf.find if hasattr(buf, "find") else bytes(buf).find
    at = find(_GCOL, 0)
    while at != -1:
        _check_collection(buf, at, n, lengths, label)
        at = find(_GCOL, at + 4)


def _check_collection(buf, at: int, n: int, lengths: int, label) -> None:
    header = 8 + lengths
    if at + header > n:
        return  # too short to be a collection libhdf5 could load (it fails on the read)
    size = int.from_bytes(bytes(buf[at + 8 : at + 8 + lengths]), "little")
    if buf[at + 4] != 1:
        return  # not a version-1 collection: libhdf5 refuses it by its version
    if size < header or at + size > n:
        # not a collection (the signature bytes inside other data), or one whose size libhdf5 itself
        # refuses (it reads that many bytes first, past the end of the file); never a false refusal
        return
    obj_header = 8 + lengths
    end, p = at + size, at + header
    while p < end:
        if p + obj_header > end:
            break  # a tail too small for an object header counts as free space
        idx = int.from_bytes(bytes(buf[p : p + 2]), "little")
        obj_size = int.from_bytes(bytes(buf[p + 8 : p + 8 + lengths]), "little")
        need = obj_header + ((obj_size + 7) & ~7) if idx > 0 else obj_size
        if need <= 0 or p + need > end:
            raise ModelFileError(label, f"damaged HDF5 global heap at byte {at}: object {idx} at byte {p} "
                                        f"has size {obj_size}, which does not fit its collection")
        p += need


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
        check_attr_size(group, name, path)
        value = decode(group.attrs[name])
        if isinstance(value, str):  # some writers store the repr of a numpy array of names
            value = [v.strip("'\" ") for v in value.strip("[]").split() if v.strip("'\" ")]
        values = list(value) if isinstance(value, (list, tuple)) else [] if np.size(value) == 0 else [value]
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            check_attr_size(group, f"{name}{i}", path)
            chunk = decode(group.attrs[f"{name}{i}"])
            values.extend(chunk if isinstance(chunk, list) else [chunk])
            i += 1
        if i == 0:
            raise ModelFileError(path, f"HDF5 group {group.name!r} has no attribute {name!r}")
    if not all(isinstance(v, str) for v in values):
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} should list names, "
                                   f"found {values!r:.80}")
    return values


#: the most elements an attribute fastgru reads may declare (a model config is one string; layer name
#: lists have one entry per layer or weight)
MAX_ATTR_ELEMENTS = 1 << 20


def check_attr_size(group, name: str, path) -> None:
    """Refuse, before reading it, an attribute whose header (read from the file) is absurd: a datatype
    other than strings or numbers (libhdf5 can crash converting a damaged variable-length type), more
    than MAX_ATTR_ELEMENTS elements, or more bytes than the whole file."""
    try:
        aid = h5py.h5a.open(group.id, name.encode("utf-8"))
        shape = aid.shape or ()
        atype = aid.get_type()
        # an empty attribute (a layer without weights: weight_names = []) has no storage, and libhdf5
        # reports its size as an error
        storage = 0 if 0 in shape else aid.get_storage_size()
    except (KeyError, OSError, ValueError, RuntimeError, OverflowError, TypeError) as exc:
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} cannot be read ({exc})") \
            from None
    if not isinstance(atype, (h5py.h5t.TypeStringID, h5py.h5t.TypeIntegerID, h5py.h5t.TypeFloatID)):
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} has an HDF5 datatype of "
                                   f"class {atype.get_class()} ({type(atype).__name__}), expected strings: "
                                   "damaged file")
    count = 1
    for d in shape:
        count *= int(d)
    if count > MAX_ATTR_ELEMENTS:
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} declares {count} elements "
                                   f"(at most {MAX_ATTR_ELEMENTS} expected): damaged file")
    limit = file_size(group)
    if limit is not None and storage > limit:
        raise ModelFileError(path, f"attribute {name!r} of HDF5 group {group.name!r} declares {storage} bytes, "
                                   f"more than the whole file ({limit} bytes): damaged file")


def read_attr(group, name: str, path, default=None):
    """An attribute's value (bytes/str decoded), checked by :func:`check_attr_size` first."""
    if name not in group.attrs:
        return default
    check_attr_size(group, name, path)
    return decode(group.attrs[name])


def file_size(obj) -> int | None:
    """Bytes in the HDF5 file that holds ``obj`` (its image, for an in-memory file), or None."""
    try:
        return int(obj.file.id.get_filesize())
    except (OSError, ValueError, RuntimeError, AttributeError):
        return None


def read_json_attr(group, name: str, path) -> dict | None:
    """A JSON-valued attribute (``model_config``), or None when absent."""
    if name not in group.attrs:
        return None
    check_attr_size(group, name, path)
    text = decode(group.attrs[name])
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ModelFileError(path, f"attribute {name!r} is not valid JSON ({type(exc).__name__}: {exc})") from None


def read_dataset(group, key: str, path, expected_shape: tuple | None = None) -> np.ndarray:
    """A weight array. With ``expected_shape``, a dataset of another shape or of a non-float dtype is
    refused from its header, before anything is read or allocated; without, a dataset declaring more
    bytes than the whole file holds is refused."""
    try:
        obj = group[key]
    except KeyError:
        raise ModelFileError(path, f"missing weight {group.name}/{key}") from None
    if not isinstance(obj, h5py.Dataset):
        raise ModelFileError(path, f"{group.name}/{key} should be a weight array, found a group")
    try:
        shape, dtype = tuple(int(d) for d in obj.shape or ()), obj.dtype
    except (OSError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ModelFileError(path, f"weight {group.name}/{key} cannot be read ({exc})") from None
    if expected_shape is not None:
        if shape != tuple(expected_shape):
            raise ModelFileError(path, f"weight {group.name}/{key} has shape {shape}, but the config implies "
                                       f"{tuple(expected_shape)}")
        if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            raise ModelFileError(path, f"weight {group.name}/{key} has dtype {dtype}, expected floats")
    else:
        count = 1
        for d in shape:
            count *= d
        limit = file_size(obj)
        if limit is not None and count * max(dtype.itemsize, 1) > max(limit, 1 << 20) * 1024:
            raise ModelFileError(path, f"weight {group.name}/{key} declares shape {shape}, far more data than "
                                       f"the file holds ({limit} bytes): damaged file")
    try:
        return np.asarray(obj[()])
    except (OSError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ModelFileError(path, f"weight {group.name}/{key} cannot be read ({exc})") from None


def dataset_shape(group, key: str, path) -> tuple:
    """A dataset's shape from its header (nothing read)."""
    try:
        obj = group[key]
        if not isinstance(obj, h5py.Dataset):
            raise ModelFileError(path, f"{group.name}/{key} should be a weight array, found a group")
        return tuple(int(d) for d in obj.shape or ())
    except KeyError:
        raise ModelFileError(path, f"missing weight {group.name}/{key}") from None


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
