"""How close fastgru's GRU forward is to this machine's floor, per shape: the evidence behind the
speed targets that are met and those that are not.

    python benchmarks/floor.py                   # S1-S5 at 1 and 2 threads, Markdown to stdout
    python benchmarks/floor.py --json out.json

Measured here, in one process per thread count:
  * the sgemm peak: OpenBLAS (NumPy's) on a 2048^3 product, GFLOP/s, with 1 and 2 threads (best of 5,
    before and after the shapes; the higher is used), and fastgru's own packed product on the same
    2048^3 product (each thread a half of the rows): the floor takes the faster of the two, so that
    an OpenBLAS held to older kernels (``OPENBLAS_CORETYPE=Haswell`` on an AVX-512 CPU) does not
    lower the bar;
  * the step product's floor for one row: ``(1, H) @ (H, 3H)`` repeated (the weights stream from L2
    when they do not fit in L1), as bytes of U per second;
  * fastgru's GRU forward (the layer call ``predict`` makes), median ms.
The compute floor of a shape is its multiply-adds (input projection ``2BTD·3H`` plus recurrence
``2BTH·3H`` flops) at the sgemm peak; for one sequence (S1) the recurrence cannot beat streaming U
once per step, so its floor is ``T · bytes(U) / bandwidth`` plus the projection at the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fastgru.bench import SHAPES  # noqa: E402


def best_s(fn, repeats: int = 7, inner: int = 1) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def median_s(fn, budget: float = 1.0) -> float:
    fn()
    fn()
    start = time.perf_counter()
    fn()
    n = int(max(5, min(200, budget / max(time.perf_counter() - start, 1e-9))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def worker(threads: int) -> dict:
    from numba import njit

    import fastgru as fg
    from fastgru._kernels.packed import pack, packed_matmul_into

    @njit
    def repeat_blas(a, b, out, reps):
        for _ in range(reps):
            np.dot(a, b, out)

    @njit(nogil=True)
    def repeat_packed_given(a, packed_b, out, reps):
        for _ in range(reps):
            packed_matmul_into(a, packed_b, out)

    @njit
    def repeat_packed(a, b, out, reps):
        packed_b = pack(b)
        for _ in range(reps):
            packed_matmul_into(a, packed_b, out)
    from fastgru.layers import GRU

    fg.set_num_threads(threads)
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    out = np.empty_like(a)
    # the peak, best of 5, before and after the shapes: a burst of hypervisor steal during one of the
    # two would lower the peak and so flatter every ratio; the higher of the two is used
    def sgemm_peak() -> float:
        return 2 * 2048 ** 3 / best_s(lambda: np.dot(a, a, out=out), repeats=5) / 1e9

    packed_a = pack(a)
    halves = [(a[i * 2048 // threads:(i + 1) * 2048 // threads], out[i * 2048 // threads:(i + 1) * 2048 // threads])
              for i in range(threads)]

    def packed_product() -> None:
        pool = [threading.Thread(target=repeat_packed_given, args=(rows, packed_a, dst, 1)) for rows, dst in halves]
        for th in pool:
            th.start()
        for th in pool:
            th.join()

    def packed_peak() -> float:
        return 2 * 2048 ** 3 / best_s(packed_product, repeats=5) / 1e9

    peak_before = sgemm_peak()
    packed_before = packed_peak()
    result = {"threads": threads, "shapes": {}}
    for name, (b, t, d, h) in SHAPES.items():
        x = np.random.default_rng(1).standard_normal((b, t, d)).astype(np.float32)
        layer = GRU(h)
        layer.build((None, t, d))
        ms = median_s(lambda: layer(x)) * 1e3
        entry = {"fastgru_ms": ms, "gflop": (2 * b * t * d * 3 * h + 2 * b * t * h * 3 * h) / 1e9}
        if b == 1:  # one sequence: the step product streams U from L2 every step
            u = np.random.default_rng(2).random((h, 3 * h), dtype=np.float32)
            row = np.random.default_rng(3).random((1, h), dtype=np.float32)
            prod = np.empty((1, 3 * h), np.float32)
            per_step = min(best_s(lambda: repeat(row, u, prod, 2000), inner=1) / 2000
                           for repeat in (repeat_blas, repeat_packed))
            entry["u_bytes"] = u.nbytes
            entry["stream_gb_s"] = u.nbytes / per_step / 1e9
            entry["stream_ms"] = t * per_step * 1e3
        result["shapes"][name] = entry
    result["openblas_gflops"] = max(peak_before, sgemm_peak())
    result["packed_gflops"] = max(packed_before, packed_peak())
    peak = max(result["openblas_gflops"], result["packed_gflops"])
    result["sgemm_gflops"] = peak
    for name, (b, t, d, h) in SHAPES.items():
        entry = result["shapes"][name]
        entry["compute_floor_ms"] = entry["gflop"] / peak * 1e3
        if "stream_ms" in entry:  # the recurrence streams U; the projection at the peak
            entry["bandwidth_floor_ms"] = entry["stream_ms"] + 2 * b * t * d * 3 * h / (peak * 1e9) * 1e3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    results = []
    for threads in [int(n) for n in args.threads.split(",")]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   NUMBA_NUM_THREADS=str(threads))
        proc = subprocess.run([sys.executable, __file__, "--worker", str(threads)], env=env, capture_output=True,
                              text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    from fastgru.bench import environment_line

    print(f"Machine: {environment_line()}\n")
    for r in results:
        print(f"{r['threads']} thread(s): 2048^3 sgemm {r['openblas_gflops']:.0f} GFLOP/s in OpenBLAS, "
              f"{r['packed_gflops']:.0f} in fastgru's packed product; the floor uses {r['sgemm_gflops']:.0f}")
    print()
    print("| shape | threads | GFLOP | sgemm peak GFLOP/s | floor ms | fastgru ms | fastgru / floor |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        for name, e in r["shapes"].items():
            floor = max(e["compute_floor_ms"], e.get("bandwidth_floor_ms", 0.0))
            kind = " (U from L2)" if "bandwidth_floor_ms" in e else ""
            print(f"| {name} {SHAPES[name]} | {r['threads']} | {e['gflop']:.3f} | {r['sgemm_gflops']:.0f} | "
                  f"{floor:.3f}{kind} | {e['fastgru_ms']:.3f} | {e['fastgru_ms'] / floor:.2f} |")
    for r in results:
        s1 = r["shapes"].get("S1")
        if s1 and "stream_gb_s" in s1:
            print(f"\n{r['threads']} thread(s): one (1, H) @ (H, 3H) step streams U ({s1['u_bytes'] // 1024} KiB) at "
                  f"{s1['stream_gb_s']:.0f} GB/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
