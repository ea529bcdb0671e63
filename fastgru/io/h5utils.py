"""Small, strict helpers for reading Keras's HDF5 files with h5py (every failure a ModelFileError)."""

from __future__ import annotations

import itertools
import json
import math
import os
import zlib
from contextlib import contextmanager

import h5py
import numpy as np

from ..errors import FastGRUError, ModelFileError
from .h5_heaps import check_global_heaps


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
    .keras zip), for reading; ModelFileError naming the path when it is not readable HDF5, or when it
    holds a link to another file (:func:`check_links`).

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
            f = h5py.File(path, "r")
        else:
            fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
            fapl.set_fapl_core(backing_store=False)
            fapl.set_file_image(source)
            name = f"fastgru-image-{os.getpid()}-{next(_image_names)}".encode()
            f = h5py.File(h5py.h5f.open(name, h5py.h5f.ACC_RDONLY, fapl=fapl))
    except (OSError, ValueError, RuntimeError, OverflowError, TypeError) as exc:
        raise ModelFileError(path, f"not a readable HDF5 file ({exc})") from None
    try:
        check_links(f, path)
    except BaseException:
        f.close()
        raise
    return f


def check_links(f: h5py.File, path) -> None:
    """Refuse a file that links to another file: an external link (or a user-defined link) anywhere in it.

    A model file is the only source of a model. Every link of every group is visited from the link
    tables (no link is followed, no other file is opened) before anything is looked up by name, so no
    lookup can leave the file afterwards: a soft link's path then resolves to objects of this file only.
    """
    def visit(name, info):
        return name if info.type not in (h5py.h5l.TYPE_HARD, h5py.h5l.TYPE_SOFT) else None

    try:
        bad = f.id.links.visit(visit, info=True)
    except (OSError, ValueError, RuntimeError, KeyError, OverflowError, TypeError) as exc:
        raise ModelFileError(path, f"damaged HDF5 data: its links cannot be listed ({exc})") from None
    if bad is None:
        return
    where = "/" + bad.decode("utf-8", "replace")
    kind = "an external link"
    try:
        info = f.id.links.get_info(bad)
        if info.type == h5py.h5l.TYPE_EXTERNAL:
            target, obj = f.id.links.get_val(bad)
            kind += f" (to {obj.decode('utf-8', 'replace')} in {target.decode('utf-8', 'replace')!r})"
        else:
            kind = f"a user-defined link (type {info.type})"
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):
        pass
    raise ModelFileError(path, f"HDF5 object {where} is {kind}: a model file must hold its weights itself, "
                               "links to other files are refused")


def decode(value):
    """Bytes -> str (Keras writes attributes as bytes or str depending on version)."""
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


def read_dataset(group, key: str, path, expected_shape: tuple | None = None, integer: bool = False) -> np.ndarray:
    """A weight array, read by fastgru from this file's own bytes (:func:`dataset_layout`).

    With ``expected_shape``, a dataset of another shape or of a non-float dtype (with ``integer``: a
    non-integer dtype, for the integer weights a layer holds, e.g. Normalization's ``count``) is refused
    from its header. Either way, before anything is allocated or read, a dataset declaring far more bytes than
    the whole file holds (more than gzip could have packed into it) is refused, and so is one whose stored data
    do not cover its shape (bytes of a contiguous dataset, chunks of a chunked one): a shape the config implies
    (a LoRA rank, a vocabulary size) allocates nothing the file does not back. Memory: the array, plus one
    chunk of a chunked dataset."""
    try:
        obj = group[key]
    except KeyError:
        raise ModelFileError(path, f"missing weight {group.name}/{key}") from None
    if not isinstance(obj, h5py.Dataset):
        raise ModelFileError(path, f"{group.name}/{key} should be a weight array, found a group")
    where = f"{group.name}/{key}"
    try:
        shape, dtype = tuple(int(d) for d in obj.shape or ()), obj.dtype
    except (OSError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ModelFileError(path, f"weight {where} cannot be read ({exc})") from None
    if expected_shape is not None:
        if shape != tuple(expected_shape):
            raise ModelFileError(path, f"weight {where} has shape {shape}, but the config implies "
                                       f"{tuple(expected_shape)}")
        if integer:
            if dtype.kind not in "iu" or dtype.itemsize not in (1, 2, 4, 8):
                raise ModelFileError(path, f"weight {where} has dtype {dtype}, expected integers")
        elif _is_bfloat16(obj, dtype, path):
            pass
        elif dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
            raise ModelFileError(path, f"weight {where} has dtype {dtype}, expected floats")
    elif dtype.kind not in "fiub" and not _is_bfloat16(obj, dtype, path):  # (opaque, compound, strings, ...)
        raise ModelFileError(path, f"weight {where} has dtype {dtype}, expected numbers")
    limit = file_size(obj)
    nbytes = math.prod(shape) * max(dtype.itemsize, 1)
    if limit is not None and nbytes > max(limit, 1 << 20) * 1024:
        raise ModelFileError(path, f"weight {where} declares shape {shape}, far more data than "
                                   f"the file holds ({limit} bytes): damaged file")
    layout, filters = dataset_layout(obj, where, path)
    try:
        if dtype.kind == "f" and not any(obj.id.get_type().equal(t) for t in _IEEE_FLOATS):
            raise ModelFileError(path, f"weight {where} has a non-standard HDF5 float type: damaged file")
        if nbytes == 0:
            return _widened(obj, np.empty(shape, dtype))
        if layout == h5py.h5d.CHUNKED:
            chunk = _checked_chunks(obj, shape, dtype.itemsize, where, path)
            out = np.empty(shape, dtype)
            _read_chunks(obj, out, chunk, filters, where, path)
            return _widened(obj, out)
        stored = obj.id.get_storage_size()
        if stored == 0:
            raise ModelFileError(path, f"weight {where}: its data were never written (the dataset holds no "
                                       "data, only a fill value)")
        if stored != nbytes:
            raise ModelFileError(path, f"weight {where} stores {stored} bytes for {nbytes} bytes of data: "
                                       "damaged file")
        out = np.empty(shape, dtype)
        obj.id.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
        return _widened(obj, out)
    except (OSError, ValueError, RuntimeError, TypeError, OverflowError, KeyError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(path, f"weight {where} cannot be read ({exc})") from None


def _is_bfloat16(obj, dtype, path) -> bool:
    """Keras 3 writes a bfloat16 variable as a 2-byte opaque dataset with the attribute ``dtype="bfloat16"``."""
    if dtype.kind != "V" or dtype.itemsize != 2 or dtype.fields is not None or "dtype" not in obj.attrs:
        return False
    check_attr_size(obj, "dtype", path)
    return decode(obj.attrs["dtype"]) == "bfloat16"


def _widened(obj, out: np.ndarray) -> np.ndarray:
    """A bfloat16 dataset's bytes as the float32 values they stand for (the 16 high bits of each); else ``out``."""
    if out.dtype.kind != "V":
        return out
    return (out.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


_IEEE_FLOATS = (h5py.h5t.IEEE_F16LE, h5py.h5t.IEEE_F16BE, h5py.h5t.IEEE_F32LE, h5py.h5t.IEEE_F32BE,
                h5py.h5t.IEEE_F64LE, h5py.h5t.IEEE_F64BE)
#: the HDF5 filters fastgru decodes itself (gzip and shuffle: what h5py and h5repack write by default)
_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle"}


def dataset_layout(obj: h5py.Dataset, where: str, path) -> tuple[int, list]:
    """(layout, filters) of a dataset whose data live in this file, from its header (nothing read).

    Refused: external storage (raw data in another file: any file on disk, a FIFO), virtual datasets
    (data mapped from other datasets or files), and filters other than gzip and shuffle, which fastgru
    decodes itself (libhdf5 never runs a filter: its deflate filter grows its buffer to whatever a
    chunk's stream inflates to). ``filters``: (id, cd_values) in pipeline order."""
    try:
        dcpl = obj.id.get_create_plist()
        layout = dcpl.get_layout()
        if layout == h5py.h5d.VIRTUAL:
            raise ModelFileError(path, f"weight {where} is a virtual dataset (its data are mapped from other "
                                       "datasets or files): a model file must hold its weights itself")
        if dcpl.get_external_count() > 0:
            target = dcpl.get_external(0)[0].decode("utf-8", "replace")
            raise ModelFileError(path, f"weight {where} has external storage (its data would be read from "
                                       f"{target!r}, a file outside the model file): refused")
        filters = []
        for i in range(dcpl.get_nfilters()):
            code, _flags, values, name = dcpl.get_filter(i)
            if code not in _FILTERS:
                label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
                raise ModelFileError(path, f"weight {where} is stored with HDF5 filter {code} ({label or 'unknown'}"
                                           f"), which is not supported (fastgru decodes gzip and shuffle): "
                                           "re-save the weights uncompressed or with gzip")
            filters.append((code, tuple(int(v) for v in values)))
    except ModelFileError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError, OverflowError, KeyError) as exc:
        raise ModelFileError(path, f"weight {where}: its storage cannot be read ({exc})") from None
    if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED) or (
            filters and layout != h5py.h5d.CHUNKED):
        raise ModelFileError(path, f"weight {where} has an invalid HDF5 storage layout ({layout}): damaged file")
    return layout, filters


def _checked_chunks(obj, shape: tuple, itemsize: int, where: str, path) -> tuple:
    """The chunk shape of a chunked dataset of ``shape``, from its header and chunk index (nothing read): refused
    when chunks are larger than the data, or when the file holds fewer or more chunks than the shape needs."""
    chunk = tuple(int(c) for c in obj.id.get_create_plist().get_chunk())
    if len(chunk) != len(shape) or min(chunk, default=1) < 1:
        raise ModelFileError(path, f"weight {where} has chunks of shape {chunk} for shape {shape}: damaged file")
    if math.prod(chunk) * itemsize > max(math.prod(shape) * itemsize, 1 << 20):
        raise ModelFileError(path, f"weight {where} has chunks of shape {chunk}, larger than its data "
                                   f"{shape}: refused")
    expected = math.prod(-(-s // c) for s, c in zip(shape, chunk))
    count = obj.id.get_num_chunks()
    if count < expected:
        raise ModelFileError(path, f"weight {where}: its data were never written (it holds {count} of its "
                                   f"{expected} chunks; the rest would be fill values)")
    if count > expected:
        raise ModelFileError(path, f"weight {where} holds {count} chunks, {expected} expected: damaged file")
    return chunk


def _read_chunks(obj, out: np.ndarray, chunk: tuple, filters, where: str, path) -> None:
    """Fill ``out`` from the dataset's chunks (of shape ``chunk``, checked by :func:`_checked_chunks`), read raw
    and decoded here (bounded by the chunk's size)."""
    shape = out.shape
    chunk_bytes = math.prod(chunk) * out.itemsize
    expected = math.prod(-(-s // c) for s, c in zip(shape, chunk))
    limit = file_size(obj) or 0
    infos = []
    obj.id.chunk_iter(infos.append)
    seen = set()
    for info in infos:
        offset = tuple(int(o) for o in info.chunk_offset)
        if (len(offset) != len(shape) or offset in seen or info.size > limit
                or any(o % c or o >= s for o, c, s in zip(offset, chunk, shape))):
            raise ModelFileError(path, f"weight {where} has a damaged chunk index (chunk at {offset})")
        seen.add(offset)
        mask, raw = obj.id.read_direct_chunk(offset)
        data = _unfilter(raw, filters, int(mask), chunk_bytes, out.itemsize, where, path)
        block = np.frombuffer(data, out.dtype).reshape(chunk)
        region = tuple(slice(o, min(o + c, s)) for o, c, s in zip(offset, chunk, shape))
        out[region] = block[tuple(slice(0, r.stop - r.start) for r in region)]
    if len(seen) != expected:
        raise ModelFileError(path, f"weight {where}: its data were never written (it holds {len(seen)} of its "
                                   f"{expected} chunks)")


def _unfilter(data: bytes, filters, mask: int, chunk_bytes: int, itemsize: int, where: str, path) -> bytes:
    """Undo a chunk's filter pipeline (last filter first; a bit set in ``mask`` skips that filter)."""
    for i in reversed(range(len(filters))):
        if mask & (1 << i):
            continue
        code, values = filters[i]
        if code == h5py.h5z.FILTER_DEFLATE:
            # at most the chunk's size (+ deflate's own overhead where filters are stacked), plus one byte
            # to see a stream that inflates to more: a deflate bomb is never inflated beyond that
            bound = chunk_bytes + (chunk_bytes >> 8) + 1024 if i > 0 else chunk_bytes
            inflater = zlib.decompressobj()
            try:
                result = inflater.decompress(data, bound + 1)
            except zlib.error as exc:
                raise ModelFileError(path, f"weight {where}: a gzip chunk is damaged ({exc})") from None
            if len(result) > bound:
                raise ModelFileError(path, f"weight {where}: a gzip chunk inflates to more than its {chunk_bytes} "
                                           "bytes (a decompression bomb or a damaged file): refused")
            if not inflater.eof:
                raise ModelFileError(path, f"weight {where}: a gzip chunk is truncated: damaged file")
            data = result
        else:  # shuffle: the bytes of each element were grouped by byte position
            size = values[0] if values else itemsize
            count = len(data) // size if size > 1 else 0
            if count > 1:
                body = np.frombuffer(data, np.uint8, count * size).reshape(size, count).T.tobytes()
                data = body + data[count * size:]
    if len(data) != chunk_bytes:
        raise ModelFileError(path, f"weight {where}: a chunk holds {len(data)} bytes, {chunk_bytes} expected: "
                                   "damaged file")
    return data


def dataset_shape(group, key: str, path) -> tuple:
    """A dataset's shape from its header (nothing read); refused when its data would not come from this file
    (:func:`dataset_layout`)."""
    try:
        obj = group[key]
        if not isinstance(obj, h5py.Dataset):
            raise ModelFileError(path, f"{group.name}/{key} should be a weight array, found a group")
        dataset_layout(obj, f"{group.name}/{key}", path)
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
