"""What the kernels' layouts follow on this CPU: the vector width (from LLVM's host features, or
``FASTGRU_VECTOR_BYTES`` for the other CPU kind's layout in tests), the vector register count, the rows
of a full register tile, and the L1 and L2 cache sizes (from Linux's /sys)."""

from __future__ import annotations

import os

import llvmlite.binding as llvm_binding
import numpy as np

#: vectors per tile row
NV = 2


def _vector_bytes() -> int:
    """64 with AVX-512F, else 32; ``FASTGRU_VECTOR_BYTES`` (16, 32 or 64) picks the tile layout of
    another CPU kind (tests run both on one machine; use a separate ``NUMBA_CACHE_DIR`` with it, as
    Numba's cache does not know this setting)."""
    override = os.environ.get("FASTGRU_VECTOR_BYTES", "").strip()
    if override:
        if override not in ("16", "32", "64"):
            raise ValueError(f"FASTGRU_VECTOR_BYTES must be 16, 32 or 64, received {override!r}")
        if not os.environ.get("NUMBA_CACHE_DIR"):
            raise ValueError("FASTGRU_VECTOR_BYTES needs its own NUMBA_CACHE_DIR (Numba's cache does not know it)")
        return int(override)
    try:
        features = llvm_binding.get_host_cpu_features()
    except RuntimeError:  # pragma: no cover  (LLVM cannot tell: assume the common AVX2 width)
        return 32
    return 64 if features.get("avx512f", False) else 32


VECTOR_BYTES = _vector_bytes()
N_REGS = 32 if VECTOR_BYTES == 64 else 16
#: rows per full tile: accumulators (MR * NV) + one panel row (NV) + a broadcast fit the registers
#: (6 with 16 vector registers, 8 with 32)
MR = 8 if N_REGS >= 32 else 6
#: panels of a one-row tile (a batch of one, or the row left over): 6 (12 accumulators) with 32 vector
#: registers; 4 (8) with 16. (1, 64) @ (64, 192) in one (1, 6) tile rather than (1, 4) + a
#: latency-bound (1, 2): see docs/performance.md
ONE_ROW_PANELS = 6 if N_REGS >= 32 else 4


def _cache_bytes(level: int, fallback: int) -> int:
    """This CPU's data (or unified) cache of ``level`` per core in bytes, from Linux's /sys, else
    ``fallback``."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            with open(os.path.join(path, "level")) as f:
                found = f.read().strip()
            with open(os.path.join(path, "type")) as f:
                kind = f.read().strip()
            if found == str(level) and kind in ("Unified", "Data"):
                with open(os.path.join(path, "size")) as f:
                    size = f.read().strip().upper()
                scale = {"K": 1024, "M": 1 << 20}.get(size[-1:], 1)
                value = int(size.rstrip("KM")) * scale
                if value > 0:
                    return value
    except (OSError, ValueError):
        pass
    return fallback


#: L1 data cache per core (bytes), else 32 KiB (the smallest of the machines fastgru is measured on)
L1D_BYTES = _cache_bytes(1, 1 << 15)
#: L2 per core (bytes), else 512 KiB (AMD Zen 3): decides the loop order of products with many rows
#: (``packed_matmul_into``) and the inference loops' projection blocks (``rnn_common``)
L2_BYTES = _cache_bytes(2, 1 << 19)
#: bytes of one packed panel's K block, kept in L1 while the row tiles pass over it: L1 less 16 KiB
#: for the rows' broadcasts and the output tile (16 KiB of 32 on Zen 3; 32 of 48 on Sapphire Rapids,
#: where the step products with K = 256 and 512 measured 1.05-1.2x faster than with 16 KiB)
L1_PANEL_BYTES = min(65536, max(8192, L1D_BYTES - 16384))
#: bytes of the left operand's (rows, K block) block kept in L2 while the panels pass over it
L2_ROWS_BYTES = max(131072, L2_BYTES // 8)


def lanes(itemsize: int) -> int:
    """Vector lanes for an element size (8 float32 / 4 float64 with 32-byte vectors)."""
    return VECTOR_BYTES // itemsize


def panel_width(dtype) -> int:
    """``NR``: columns per packed panel for ``dtype``."""
    return NV * lanes(np.dtype(dtype).itemsize)
