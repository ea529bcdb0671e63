"""Timing of fastgru's GRU forward on the project's reference shapes (used by ``fastgru bench``).

Every figure is the median of ``repeats`` timed calls after one warm-up call; the environment
(threads, OPENBLAS_CORETYPE, CPU) is recorded with the results because it changes them.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np

from . import ops
from ._threads import get_num_threads, set_num_threads

#: name -> (batch, timesteps, features, units)
SHAPES: dict[str, tuple[int, int, int, int]] = {
    "S1": (1, 100, 50, 64),
    "S2": (32, 10, 50, 64),
    "S3": (64, 100, 128, 256),
    "S4": (256, 50, 256, 512),
    "S5": (8, 1000, 32, 128),
}


def _cpuinfo() -> dict:
    """The first processor's ``model name``, ``cpu family``, ``model`` and ``flags`` from /proc/cpuinfo
    (Linux; empty elsewhere)."""
    found: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "flags") and key not in found:
                    found[key] = value.strip()
                if not line.strip() and found:
                    break
    except OSError:
        pass
    return found


#: the vector extensions recorded with every timing (what the kernels and OpenBLAS can use)
SIMD_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx2", "fma")


def environment() -> dict:
    """What the timings depend on: the CPU (model, family, its vector extensions from lscpu's flags),
    cores, the vector width fastgru's kernels were laid out for, OpenBLAS's kernel set (SciPy's, the
    one inside the kernels, as it reports itself) and ``OPENBLAS_CORETYPE``, library versions."""
    import numba

    from ._kernels.simd import VECTOR_BYTES
    from ._threads import kernel_blas_core

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    env = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_family_model": f"{info['cpu family']}/{info['model']}" if "cpu family" in info and "model" in info
        else "-",
        "cpu_simd": " ".join(f for f in SIMD_FLAGS if f in flags) or "-",
        "cores": os.cpu_count(),
        "fastgru_vector_bytes": VECTOR_BYTES,
        "openblas_core": kernel_blas_core() or "-",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
    }
    return env


def environment_line() -> str:
    """:func:`environment` as one line, for the head of a benchmark's output."""
    return ", ".join(f"{k}={v}" for k, v in environment().items())


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def random_gru_problem(batch: int, steps: int, features: int, units: int, seed: int = 0, dtype=np.float32):
    """X and Keras-layout weights (kernel, recurrent_kernel, bias (2, 3H)) with a realistic scale."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, steps, features)).astype(dtype)
    kernel = (rng.standard_normal((features, 3 * units)) / np.sqrt(features)).astype(dtype)
    recurrent = (rng.standard_normal((units, 3 * units)) / np.sqrt(units)).astype(dtype)
    bias = (0.1 * rng.standard_normal((2, 3 * units))).astype(dtype)
    return x, kernel, recurrent, bias


def run(shape_names=None, threads=(1, 2), repeats: int = 20) -> list[dict]:
    """Median forward time of fastgru per shape and thread count."""
    results = []
    previous = get_num_threads()
    try:
        for n in threads:
            set_num_threads(n)
            for name in shape_names or SHAPES:
                b, t, d, h = SHAPES[name]
                x, w, u, bias = random_gru_problem(b, t, d, h)
                reps = repeats if b * t * h < 2_000_000 else max(3, repeats // 4)
                sec = median_seconds(lambda: ops.gru_forward(x, w, u, bias), reps)
                results.append({"shape": name, "dims": f"{b}x{t}x{d}->{h}", "threads": n, "median_ms": sec * 1e3})
    finally:
        set_num_threads(previous)
    return results
