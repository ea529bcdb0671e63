"""CRC-32C (Castagnoli), as TensorFlow's checkpoints and LevelDB tables use it, without a dependency.

Small buffers (table blocks, metadata) go through a byte-at-a-time table loop in Python; large ones
(tensor data: a 70 MB checkpoint) through a slicing-by-8 Numba kernel, compiled once and cached on disk
like fastgru's other kernels (about 1-2 GB/s, so checking every tensor costs tens of milliseconds).
"""

from __future__ import annotations

import numpy as np

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
#: below this many bytes the Python loop is used (at most ~15 ms): small models never wait for Numba
_SMALL = 1 << 16


def _tables() -> np.ndarray:
    table = np.zeros((8, 256), dtype=np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[0, i] = c
    for k in range(1, 8):
        prev = table[k - 1]
        table[k] = (prev >> 8) ^ table[0, prev & 0xFF]
    return table


_TABLES = _tables()
_TABLE0 = [int(v) for v in _TABLES[0]]
_kernel = None


def _get_kernel():
    global _kernel
    if _kernel is None:
        from numba import njit

        @njit(cache=True, nogil=True)
        def crc32c_kernel(data, table, crc):  # pragma: no cover - compiled
            crc = (~crc) & 0xFFFFFFFF
            n = data.size
            i = 0
            while i + 8 <= n:
                lo = crc ^ (np.int64(data[i]) | (np.int64(data[i + 1]) << 8) | (np.int64(data[i + 2]) << 16)
                            | (np.int64(data[i + 3]) << 24))
                crc = (table[7, lo & 0xFF] ^ table[6, (lo >> 8) & 0xFF] ^ table[5, (lo >> 16) & 0xFF]
                       ^ table[4, (lo >> 24) & 0xFF] ^ table[3, np.int64(data[i + 4])]
                       ^ table[2, np.int64(data[i + 5])] ^ table[1, np.int64(data[i + 6])]
                       ^ table[0, np.int64(data[i + 7])])
                i += 8
            while i < n:
                crc = table[0, (crc ^ np.int64(data[i])) & 0xFF] ^ (crc >> 8)
                i += 1
            return (~crc) & 0xFFFFFFFF

        _kernel = crc32c_kernel
    return _kernel


def crc32c(data, crc: int = 0) -> int:
    """CRC-32C of ``data`` (bytes-like), continuing from ``crc`` (0 to start)."""
    view = memoryview(data).cast("B")
    if len(view) < _SMALL:
        table = _TABLE0
        c = crc ^ 0xFFFFFFFF
        for b in view:
            c = table[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF
    return int(_get_kernel()(np.frombuffer(view, dtype=np.uint8), _TABLES, np.int64(crc)))


def mask(crc: int) -> int:
    """LevelDB's and TensorFlow's masked CRC (stored so that a CRC of data holding CRCs stays strong)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
