"""TensorFlow tensor bundles (the checkpoint format of SavedModel ``variables/`` and of
``save_weights(..., save_format="tf")``), read without TensorFlow.

A bundle is ``<prefix>.index`` plus ``<prefix>.data-NNNNN-of-MMMMM`` shards:

* the index is a LevelDB-format table: data blocks of prefix-compressed ``key -> value`` entries, each
  block followed by a compression byte and a masked CRC-32C, an index block pointing at the data blocks,
  and a 48-byte footer (two block handles, padding, magic ``0xdb4775248b80fb57``);
* the entry of key ``""`` is a ``BundleHeaderProto`` (number of shards, endianness); every other key is a
  checkpoint key whose value is a ``BundleEntryProto`` (dtype, shape, shard, offset, size, masked
  CRC-32C of the tensor's bytes, and slices for partitioned variables);
* the data shards hold the tensors' raw bytes (little-endian); string tensors hold varint lengths, a
  masked CRC of the lengths, then the bytes.

Everything is checked before it is trusted: the footer, every block's CRC and bounds, every entry's
fields, each tensor's offset and size against its shard's actual size (before anything is read) and
its CRC after. Compressed blocks, big-endian bundles and sliced (partitioned) variables are refused.
Errors are :class:`~fastgru.errors.ModelFileError` naming the file.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import ModelFileError
from . import protobuf_wire as pw
from .crc32c import crc32c, mask

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5
#: caps on what is read from a bundle's index (a real index of a few thousand variables is kilobytes)
MAX_INDEX_BYTES = 64 << 20
MAX_ENTRIES = 100_000  # a GRU/LSTM model has tens of variables; each entry costs a few hundred bytes here
MAX_SHARDS = 4096
#: data blocks of an index (TensorFlow packs about 256 KiB of entries per block: a handful in practice)
MAX_BLOCKS = 10_000
MAX_RANK = 32
#: cap on a string tensor (the checkpoint's object graph)
MAX_STRING_TENSOR_BYTES = 64 << 20

#: TensorFlow DataType enum values fastgru reads as weights
FLOAT_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 19: np.dtype("<f2")}
INT_DTYPES = {3: np.dtype("<i4"), 9: np.dtype("<i8")}
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
CHECKPOINT_FORMAT = "TensorFlow checkpoint (save_weights(..., save_format='tf'))"
DT_STRING = 7
DTYPE_NAMES = {0: "DT_INVALID", 1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
               7: "string", 8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
               19: "float16", 20: "resource", 21: "variant", 22: "uint32", 23: "uint64"}
#: fixed item sizes of the non-string dtypes (to check an entry's size against its shape)
ITEM_SIZES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 14: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8}


@dataclass(frozen=True)
class Entry:
    key: str
    dtype: int
    shape: tuple
    shard: int
    offset: int
    size: int
    crc: int  # masked CRC-32C of the bytes, as stored
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"dtype #{self.dtype}")


# ---------------------------------------------------------------------------------------------
# files: regular files inside a root folder only
# ---------------------------------------------------------------------------------------------
def open_inside(root_real: str, filename, path, what: str):
    """Open ``filename`` for reading if it is a regular file whose real path lies inside ``root_real``
    (a symlink leaving the folder, a FIFO or a device is refused; O_NONBLOCK so that a FIFO cannot block)."""
    real = os.path.realpath(filename)
    if real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep):
        raise ModelFileError(path, f"{what} ({os.fspath(filename)}) is a link to {real}, outside the folder "
                                   f"{root_real}: refused")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ModelFileError(path, f"{what} ({os.fspath(filename)}) does not exist") from None
    except OSError as exc:
        raise ModelFileError(path, f"{what} ({os.fspath(filename)}) cannot be opened ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(path, f"{what} ({os.fspath(filename)}) is not a regular file")
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_small_file(root_real: str, filename, path, what: str, limit: int) -> bytes:
    """The whole of a (small) file, refused beyond ``limit`` bytes before reading."""
    with open_inside(root_real, filename, path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ModelFileError(path, f"{what} takes {size} bytes, more than the {limit} fastgru reads: "
                                       "damaged or not a Keras model")
        data = _read_exact(f, size, path, what)
    return data


def _read_exact(f, size: int, path, what: str) -> bytearray:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = f.readinto(view[got:])
        if not n:
            raise ModelFileError(path, f"{what}: the file ended after {got} of {size} bytes (it changed while "
                                       "being read?)")
        got += n
    return buf


# ---------------------------------------------------------------------------------------------
# the LevelDB table
# ---------------------------------------------------------------------------------------------
def _block(data, handle: tuple[int, int], limit: int, path, what: str):
    offset, size = handle
    if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER > limit:
        raise ModelFileError(path, f"{what}: a block at {offset}+{size} lies outside the table's "
                                   f"{limit} bytes: damaged index")
    end = offset + size
    stored = struct.unpack_from("<I", data, end + 1)[0]
    if mask(crc32c(memoryview(data)[offset:end + 1])) != stored:
        raise ModelFileError(path, f"{what}: CRC-32C mismatch in the block at byte {offset}: damaged index")
    if data[end] != 0:
        kind = {1: "snappy", 2: "zlib"}.get(data[end], f"type {data[end]}")
        raise ModelFileError(path, f"{what}: the block at byte {offset} is compressed ({kind}); TensorFlow "
                                   "writes uncompressed bundles and fastgru reads only those")
    return offset, end


def _block_entries(data, start: int, end: int, path, what: str, limit_entries: int = MAX_ENTRIES):
    """(key, (value start, value end)) of each entry of the block ``data[start:end]`` (refused beyond
    ``limit_entries``)."""
    if end - start < 4:
        raise ModelFileError(path, f"{what}: a block of {end - start} bytes is too short: damaged index")
    restarts = struct.unpack_from("<I", data, end - 4)[0]
    limit = end - 4 - 4 * restarts
    if restarts == 0 or limit < start:
        raise ModelFileError(path, f"{what}: a block claims {restarts} restart points: damaged index")
    pos = start
    key = b""
    out = []
    try:
        while pos < limit:
            shared, pos = pw.varint(data, pos, limit)
            unshared, pos = pw.varint(data, pos, limit)
            value_len, pos = pw.varint(data, pos, limit)
            if shared > len(key) or unshared > limit - pos or value_len > limit - pos - unshared:
                raise ModelFileError(path, f"{what}: an entry at byte {pos} overruns its block: damaged index")
            key = key[:shared] + bytes(data[pos:pos + unshared])
            pos += unshared
            out.append((key, (pos, pos + value_len)))
            pos += value_len
            if len(out) > limit_entries:
                raise ModelFileError(path, f"{what}: a block of more than {limit_entries} entries: refused")
    except pw.WireError as exc:
        raise ModelFileError(path, f"{what}: {exc} in a block: damaged index") from None
    return out


def _handle(data, pos: int, end: int) -> tuple[tuple[int, int], int]:
    offset, pos = pw.varint(data, pos, end)
    size, pos = pw.varint(data, pos, end)
    return (offset, size), pos


def read_table(data, path, what: str = "the index") -> dict[bytes, tuple[int, int]]:
    """``{key: (value start, value end)}`` of a LevelDB table held in ``data``."""
    n = len(data)
    if n < FOOTER_SIZE:
        raise ModelFileError(path, f"{what}: {n} bytes, shorter than a table footer: damaged or not an index")
    footer = n - FOOTER_SIZE
    if struct.unpack_from("<Q", data, n - 8)[0] != TABLE_MAGIC:
        raise ModelFileError(path, f"{what}: no table magic number at its end: damaged or not a checkpoint index")
    try:
        _, pos = _handle(data, footer, n - 8)  # the metaindex block (empty in TensorFlow's bundles)
        index_handle, _ = _handle(data, pos, n - 8)
    except pw.WireError as exc:
        raise ModelFileError(path, f"{what}: damaged footer ({exc})") from None
    start, end = _block(data, index_handle, footer, path, what)
    entries: dict[bytes, tuple[int, int]] = {}
    last_end = 0
    for _, (vs, ve) in _block_entries(data, start, end, path, what, MAX_BLOCKS):
        try:
            handle, _ = _handle(data, vs, ve)
        except pw.WireError as exc:
            raise ModelFileError(path, f"{what}: damaged index entry ({exc})") from None
        if handle[0] < last_end:  # blocks in file order, each read once: work bounded by the file's size
            raise ModelFileError(path, f"{what}: data blocks out of order or overlapping: damaged index")
        bstart, bend = _block(data, handle, footer, path, what)
        last_end = bend + BLOCK_TRAILER
        for key, span in _block_entries(data, bstart, bend, path, what):
            if key in entries:
                raise ModelFileError(path, f"{what}: key {key[:80]!r} appears twice: damaged index")
            entries[key] = span
            if len(entries) > MAX_ENTRIES:
                raise ModelFileError(path, f"{what}: more than {MAX_ENTRIES} entries")
    return entries


# ---------------------------------------------------------------------------------------------
# the bundle
# ---------------------------------------------------------------------------------------------
def _parse_entry(data, key: str, span, path) -> Entry:
    msg = pw.message(data, *span)
    dtype = pw.get_int(msg, 1)
    shape_msgs = pw.get_messages(data, msg, 2)
    dims = []
    if shape_msgs:
        shape = shape_msgs[-1]
        if pw.get_int(shape, 3):
            raise ModelFileError(path, f"variable {key!r} has an unknown rank")
        for dim in pw.get_messages(data, shape, 2, depth=1):
            size = pw.get_int(dim, 1, signed=True)
            if size < 0:
                raise ModelFileError(path, f"variable {key!r} has a dimension of size {size}")
            dims.append(size)
        if len(dims) > MAX_RANK:
            raise ModelFileError(path, f"variable {key!r} has rank {len(dims)}")
    return Entry(key=key, dtype=dtype, shape=tuple(dims), shard=pw.get_int(msg, 3, signed=True),
                 offset=pw.get_int(msg, 4, signed=True), size=pw.get_int(msg, 5, signed=True),
                 crc=pw.get_int(msg, 6), sliced=bool(msg.get(7)))


class Bundle:
    """The entries of a tensor bundle, and its tensors read on demand (every read checked)."""

    def __init__(self, prefix, path, root_real: str | None = None):
        self.prefix = os.fspath(prefix)
        self.path = path
        self.root_real = root_real or os.path.realpath(os.path.dirname(self.prefix) or ".")
        index = read_small_file(self.root_real, self.prefix + ".index", path, "the checkpoint index",
                                MAX_INDEX_BYTES)
        table = read_table(index, path, "the checkpoint index")
        if b"" not in table:
            raise ModelFileError(path, "the checkpoint index has no header entry: damaged or not a tensor bundle")
        try:
            header = pw.message(index, *table.pop(b""))
            self.num_shards = pw.get_int(header, 1, signed=True)
            endianness = pw.get_int(header, 2)
            self.entries: dict[str, Entry] = {}
            for raw_key, span in table.items():
                try:
                    key = raw_key.decode("utf-8")
                except UnicodeDecodeError:
                    raise ModelFileError(path, f"the checkpoint index has a key that is not UTF-8 text: "
                                               f"{raw_key[:60]!r}") from None
                self.entries[key] = _parse_entry(index, key, span, path)
        except pw.WireError as exc:
            raise ModelFileError(path, f"the checkpoint index holds a damaged entry ({exc})") from None
        if endianness != 0:
            raise ModelFileError(path, "the checkpoint was written on a big-endian machine; fastgru reads "
                                       "little-endian bundles only")
        if not 1 <= self.num_shards <= MAX_SHARDS:
            raise ModelFileError(path, f"the checkpoint index claims {self.num_shards} data shards")
        self._files: dict[int, tuple] = {}

    # ---- data files -------------------------------------------------------------------------
    def shard_name(self, shard: int) -> str:
        return f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"

    def data_bytes(self) -> int:
        """Total size of the data shards that exist (the weight budget of a model built from them)."""
        total = 0
        for shard in range(self.num_shards):
            try:
                total += os.stat(self.shard_name(shard)).st_size
            except OSError:
                pass
        return total

    def _shard(self, shard: int):
        if shard not in self._files:
            name = self.shard_name(shard)
            if not os.path.lexists(name):
                raise ModelFileError(self.path, f"data shard {os.path.basename(name)} of the checkpoint does not "
                                                f"exist (the index names {self.num_shards} shards)")
            f = open_inside(self.root_real, name, self.path, f"data shard {os.path.basename(name)}")
            self._files[shard] = (f, os.fstat(f.fileno()).st_size)
        return self._files[shard]

    def close(self) -> None:
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- tensors ----------------------------------------------------------------------------
    def entry(self, key: str) -> Entry:
        e = self.entries.get(key)
        if e is None:
            raise ModelFileError(self.path, f"the checkpoint has no variable {key!r}")
        if e.sliced:
            raise ModelFileError(self.path, f"variable {key!r} is saved in slices (a partitioned variable); "
                                            "fastgru reads whole variables only")
        if not 0 <= e.shard < self.num_shards:
            raise ModelFileError(self.path, f"variable {key!r} is in shard {e.shard} of {self.num_shards}")
        return e

    def _raw(self, e: Entry) -> bytearray:
        f, file_size = self._shard(e.shard)
        if e.offset < 0 or e.size < 0 or e.offset + e.size > file_size:
            raise ModelFileError(self.path, f"variable {e.key!r} claims bytes {e.offset}..{e.offset + e.size} of "
                                            f"{os.path.basename(self.shard_name(e.shard))}, which has {file_size}: "
                                            "damaged or truncated checkpoint")
        f.seek(e.offset)
        return _read_exact(f, e.size, self.path, f"variable {e.key!r}")

    def read_float(self, key: str, where: str = "", integers: bool = False) -> np.ndarray:
        """A float16/32/64 variable (also int32/64 where ``integers``: a count), its size and CRC-32C checked."""
        e = self.entry(key)
        label = f"variable {key!r}" + (f" ({where})" if where else "")
        dtype = FLOAT_DTYPES.get(e.dtype) or (INT_DTYPES.get(e.dtype) if integers else None)
        if dtype is None:
            raise ModelFileError(self.path, f"{label} holds {e.dtype_name} values, expected "
                                            f"{'numbers' if integers else 'floats'}")
        count = int(np.prod(e.shape, dtype=object)) if e.shape else 1
        if e.size != count * dtype.itemsize:
            raise ModelFileError(self.path, f"{label}: {e.size} bytes for shape {e.shape} of {e.dtype_name}: "
                                            "damaged checkpoint")
        raw = self._raw(e)
        if mask(crc32c(raw)) != e.crc:
            raise ModelFileError(self.path, f"{label}: CRC-32C mismatch: damaged checkpoint data")
        return np.frombuffer(raw, dtype=dtype).reshape(e.shape)

    def read_strings(self, key: str) -> list[bytes]:
        """A string tensor (e.g. the object graph), lengths and CRC-32C checked."""
        e = self.entry(key)
        if e.dtype != DT_STRING:
            raise ModelFileError(self.path, f"variable {key!r} holds {e.dtype_name} values, expected a string")
        count = int(np.prod(e.shape, dtype=object)) if e.shape else 1
        if e.size > MAX_STRING_TENSOR_BYTES or count > e.size:
            raise ModelFileError(self.path, f"variable {key!r}: {count} strings in {e.size} bytes: refused")
        raw = self._raw(e)
        lengths, crc, pos = [], 0, 0
        try:
            for _ in range(count):
                n, pos = pw.varint(raw, pos, len(raw))
                lengths.append(n)
                crc = crc32c(struct.pack("<I" if n <= 0xFFFFFFFF else "<Q", n), crc)
        except pw.WireError as exc:
            raise ModelFileError(self.path, f"variable {key!r}: damaged string lengths ({exc})") from None
        if pos + 4 > len(raw) or struct.unpack_from("<I", raw, pos)[0] != mask(crc):
            raise ModelFileError(self.path, f"variable {key!r}: CRC-32C mismatch in the string lengths")
        crc = crc32c(raw[pos:pos + 4], crc)
        pos += 4
        if pos + sum(lengths) != len(raw):
            raise ModelFileError(self.path, f"variable {key!r}: the string lengths do not add up to its size")
        if mask(crc32c(memoryview(raw)[pos:], crc)) != e.crc:
            raise ModelFileError(self.path, f"variable {key!r}: CRC-32C mismatch: damaged checkpoint data")
        out = []
        for n in lengths:
            out.append(bytes(raw[pos:pos + n]))
            pos += n
        return out


def describe_checkpoint(path) -> list[str]:
    """``fastgru info PREFIX``: the checkpoint's variables and their shapes."""
    bundle = Bundle(path, path)
    with bundle:
        rows = [(k, e.shape, e.dtype_name) for k, e in sorted(bundle.entries.items()) if k != OBJECT_GRAPH_KEY]
    width = max([len(k) for k, _, _ in rows] + [8])
    total = sum(int(np.prod(s)) for k, s, d in rows if d in ("float16", "float32", "float64")
                and not k.startswith(("optimizer/", "keras_api/", "save_counter")))
    return ([f"format: {CHECKPOINT_FORMAT}", "keras_version: (not recorded)",
             "weights only (no model config): build the model, then model.load_weights(prefix)", "",
             f"{'Variable':<{width}}  Shape"] + [f"{k:<{width}}  {s}  {d}" for k, s, d in rows]
            + ["", f"Total params (without optimizer and metric variables): {total:,}"])
