"""The step product alone: fastgru's packed micro-kernel against single-threaded OpenBLAS (SciPy's, the
BLAS Numba's ``np.dot`` calls inside kernels) on the step products of S1-S5, in GFLOP/s.

    python benchmarks/packed_product.py              # float32, Markdown to stdout
    python benchmarks/packed_product.py --repeats 9 --dtype float64

Each figure is the best of ``--repeats`` timed loops of the product called from compiled code (no Python
call per product), after one warm-up loop; the two are interleaved per repetition. The 1-thread sgemm
peak (NumPy's OpenBLAS on 2048^3) is measured in the same run, and the CPU flags and OpenBLAS core are
printed with the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from numba import njit  # noqa: E402

import fastgru as fg  # noqa: E402
from fastgru import _threads  # noqa: E402
from fastgru._kernels.packed import MR, VECTOR_BYTES, pack, packed_matmul_into  # noqa: E402
from fastgru.bench import SHAPES  # noqa: E402


@njit
def repeat_packed(a, packed_u, out, reps):
    for _ in range(reps):
        packed_matmul_into(a, packed_u, out)


@njit
def repeat_blas(a, u, out, reps):
    for _ in range(reps):
        np.dot(a, u, out)


def cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "no avx2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    fg.set_num_threads(1)
    _threads.kernel_blas_single_threaded()
    dtype = np.dtype(args.dtype)
    big = np.random.default_rng(0).random((2048, 2048)).astype(dtype)
    sq = np.empty_like(big)
    np.dot(big, big, out=sq)
    start = time.perf_counter()
    np.dot(big, big, out=sq)
    peak = 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9
    print(f"CPU flags: {cpu_flags()}; OpenBLAS core (SciPy): {_threads.kernel_blas_core()}; "
          f"tile {MR} rows x {2 * VECTOR_BYTES // dtype.itemsize} columns; {dtype}, 1 thread; "
          f"sgemm/dgemm peak {peak:.0f} GFLOP/s\n")
    print("| step product | packed GFLOP/s | OpenBLAS GFLOP/s | packed / OpenBLAS time |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(1)
    for name, (b, _, _, h) in SHAPES.items():
        a = rng.standard_normal((b, h)).astype(dtype)
        u = rng.standard_normal((h, 3 * h)).astype(dtype)
        out = np.empty((b, 3 * h), dtype)
        packed_u = pack(u)
        reps = max(1, int(1e8 / (b * h * 3 * h)))
        best = {"packed": np.inf, "blas": np.inf}
        for fn in (repeat_packed, repeat_blas):
            fn(a, packed_u if fn is repeat_packed else u, out, 1)
        for _ in range(args.repeats):
            for key, fn, right in (("packed", repeat_packed, packed_u), ("blas", repeat_blas, u)):
                start = time.perf_counter()
                fn(a, right, out, reps)
                best[key] = min(best[key], (time.perf_counter() - start) / reps)
        flops = 2 * b * h * 3 * h
        print(f"| {name}: ({b}, {h}) @ ({h}, {3 * h}) | {flops / best['packed'] / 1e9:.1f} | "
              f"{flops / best['blas'] / 1e9:.1f} | {best['packed'] / best['blas']:.2f} |")


if __name__ == "__main__":
    main()
