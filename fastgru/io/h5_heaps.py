"""HDF5 global heaps, checked before libhdf5 parses them: a damaged collection of variable-length strings
(where ``model_config`` lives) can make libhdf5 loop forever or read out of bounds. One bounded pass over
the file's bytes, never memory-mapped (:func:`check_global_heaps`); used by
:func:`fastgru.io.h5utils.open_h5` on every file it opens.
"""

from __future__ import annotations

import os

from ..errors import ModelFileError

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
    occurrence for a 1 GiB file), so valid files are not refused. One pass over the file's bytes, read in
    chunks of 1 MiB (never memory-mapped: a file that another process truncates meanwhile then reads
    short, and is refused, instead of killing the process with SIGBUS).
    """
    if data is not None:
        _check_heaps_in(_Bytes(data), label)
        return
    try:
        with open(path, "rb") as f:
            _check_heaps_in(_File(f, label), label)
    except OSError as exc:
        raise ModelFileError(label, f"cannot be read ({exc})") from None


class _Bytes:
    """Bounded reads from bytes held in memory (the weights inside a .keras zip)."""

    def __init__(self, data: bytes):
        self.data, self.size = data, len(data)

    def read(self, at: int, n: int) -> bytes:
        return bytes(self.data[at:at + n])


class _File:
    """Bounded reads from an open file (``os.pread`` where available); a read past the current end of the
    file (the file shrank since its size was taken) is a ModelFileError, never a crash."""

    def __init__(self, f, label):
        self.f, self.label = f, label
        self.size = os.fstat(f.fileno()).st_size

    def read(self, at: int, n: int) -> bytes:
        n = max(0, min(n, self.size - at))
        if hasattr(os, "pread"):
            data = os.pread(self.f.fileno(), n, at)
        else:  # pragma: no cover  (Windows)
            self.f.seek(at)
            data = self.f.read(n)
        if len(data) != n:
            raise ModelFileError(self.label, f"the file changed while it was being read (it holds fewer than "
                                              f"{at + n} bytes now, {self.size} before)")
        return data


_SCAN_CHUNK = 1 << 20


def _check_heaps_in(reader, label) -> None:
    n = reader.size
    head = reader.read(0, 16)
    if n < 16 or head[:8] != b"\x89HDF\r\n\x1a\n":
        return  # not HDF5 at offset 0: h5py decides
    version = head[8]
    lengths = head[14] if version <= 1 else head[10] if version in (2, 3) else 8
    if lengths not in (2, 4, 8):
        raise ModelFileError(label, f"damaged HDF5 superblock (size of lengths {lengths})")
    start = 0
    while start < n:  # chunks overlapping by 3 bytes, so that a signature across a boundary is found once
        block = reader.read(start, _SCAN_CHUNK + 3)
        at = block.find(_GCOL)
        while at != -1:
            if at < _SCAN_CHUNK or start + _SCAN_CHUNK >= n:
                _check_collection(reader, start + at, n, lengths, label)
            at = block.find(_GCOL, at + 4)
        start += _SCAN_CHUNK


def _check_collection(reader, at: int, n: int, lengths: int, label) -> None:
    header = 8 + lengths
    if at + header > n:
        return  # too short to be a collection libhdf5 could load (it fails on the read)
    head = reader.read(at, header)
    size = int.from_bytes(head[8:8 + lengths], "little")
    if head[4] != 1:
        return  # not a version-1 collection: libhdf5 refuses it by its version
    if size < header or at + size > n:
        # not a collection (the signature bytes inside other data), or one whose size libhdf5 itself
        # refuses (it reads that many bytes first, past the end of the file); never a false refusal
        return
    obj_header = 8 + lengths
    end, p = at + size, at + header
    whole = reader.read(at, size) if size <= _SCAN_CHUNK else None  # small collections: one read
    while p < end:
        if p + obj_header > end:
            break  # a tail too small for an object header counts as free space
        obj = whole[p - at:p - at + obj_header] if whole is not None else reader.read(p, obj_header)
        idx = int.from_bytes(obj[:2], "little")
        obj_size = int.from_bytes(obj[8:8 + lengths], "little")
        need = obj_header + ((obj_size + 7) & ~7) if idx > 0 else obj_size
        if need <= 0 or p + need > end:
            raise ModelFileError(label, f"damaged HDF5 global heap at byte {at}: object {idx} at byte {p} "
                                        f"has size {obj_size}, which does not fit its collection")
        p += need
