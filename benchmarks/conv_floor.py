"""Conv1D against this machine's sgemm floor (issue 15's target: within 1.5x, forward and backward).

    python benchmarks/conv_floor.py                  # 1 and 2 threads, Markdown to stdout
    python benchmarks/conv_floor.py --threads 1 --reps 41 --json out.json

``Conv1D(128, 5)`` on (64, 100, 128) float32 (``padding="valid"``: 96 output steps), in one process
per thread count (``fg.set_num_threads``; NumPy's OpenBLAS gets the same count, as fastgru's policy):

* forward: ``layer.call(x)``; its floor is one OpenBLAS sgemm (NumPy's matmul) with the same
  multiply-adds in a well-shaped product, ``(B*T_out, k*C_in) @ (k*C_in, filters)``;
* backward: ``layer.backward(dy, cache)`` (gradients of input, kernel and bias); its floor is the two
  products of an im2col backward, ``cols^T @ dY`` and ``dY @ W^T``, as two sgemm calls.

The machine may be shared (other processes' work makes every figure noisy), so the four timings are
interleaved — conv forward, floor forward, conv backward, floor backward, and again — and the
report gives the medians and the median of the per-repetition ratios. The CPU (``lscpu``'s model and
SIMD flags) and the OpenBLAS core types of NumPy and SciPy are recorded with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

B, T, C, FILTERS, K = 64, 100, 128, 128, 5
SIMD = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")


def machine() -> dict:
    """CPU model, core count and SIMD flags (lscpu, or /proc/cpuinfo where lscpu is missing)."""
    info = {"cores": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["model"] = fields.get("Model name", "?")
        flags = fields.get("Flags", "").split()
        info["hypervisor"] = fields.get("Hypervisor vendor")
    except (OSError, subprocess.CalledProcessError, ValueError):
        info["model"], flags = "?", []
    info["simd"] = [f for f in SIMD if f in flags]
    return info


def openblas_cores() -> dict:
    """The CPU kernel sets NumPy's and SciPy's bundled OpenBLAS libraries picked."""
    import ctypes
    import glob
    import importlib.util

    cores = {}
    for name in ("numpy", "scipy"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        libdir = os.path.join(os.path.dirname(list(spec.submodule_search_locations)[0]), name + ".libs")
        for path in glob.glob(os.path.join(libdir, "*openblas*")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for sym in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
                if hasattr(lib, sym):
                    fn = getattr(lib, sym)
                    fn.restype = ctypes.c_char_p
                    cores[name] = (fn() or b"?").decode()
                    break
    return cores


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(threads: int, reps: int) -> dict:
    import fastgru as fg
    from fastgru.layers import Conv1D

    fg.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    layer = Conv1D(FILTERS, K)
    layer.build((None, T, C))
    out_steps = T - K + 1
    dy = rng.standard_normal((B, out_steps, FILTERS)).astype(np.float32)
    _, cache = layer.forward(x)

    rows, depth = B * out_steps, K * C
    cols = rng.standard_normal((rows, depth)).astype(np.float32)
    w2 = rng.standard_normal((depth, FILTERS)).astype(np.float32)
    dy2 = dy.reshape(rows, FILTERS)
    out_f = np.empty((rows, FILTERS), np.float32)
    out_dw = np.empty((depth, FILTERS), np.float32)
    out_dc = np.empty((rows, depth), np.float32)

    def floor_forward():
        np.matmul(cols, w2, out=out_f)

    def floor_backward():
        np.matmul(cols.T, dy2, out=out_dw)
        np.matmul(dy2, w2.T, out=out_dc)

    def conv_forward():
        layer.call(x)

    def conv_backward():
        layer.backward(dy, cache)

    for fn in (conv_forward, floor_forward, conv_backward, floor_backward):  # compile, warm caches
        fn()
        fn()
    t = {"conv_forward": [], "floor_forward": [], "conv_backward": [], "floor_backward": []}
    for _ in range(reps):  # interleaved: contention hits conv and floor alike
        t["conv_forward"].append(timed(conv_forward))
        t["floor_forward"].append(timed(floor_forward))
        t["conv_backward"].append(timed(conv_backward))
        t["floor_backward"].append(timed(floor_backward))
    med = {k: float(np.median(v)) * 1e3 for k, v in t.items()}
    ratio = {d: float(np.median(np.array(t[f"conv_{d}"]) / np.array(t[f"floor_{d}"])))
             for d in ("forward", "backward")}
    macs = rows * depth * FILTERS
    return {"threads": threads, "reps": reps, "median_ms": med, "median_ratio": ratio,
            "gflops_floor": {"forward": 2 * macs / med["floor_forward"] / 1e6,
                             "backward": 4 * macs / med["floor_backward"] / 1e6},
            "load_avg": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=31)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.reps)))
        return
    results = []
    for threads in [int(n) for n in args.threads.split(",")]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   NUMBA_NUM_THREADS=str(max(threads, 1)))
        proc = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--reps", str(args.reps)],
                              env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    m = machine()
    cores = openblas_cores()
    print(f"{m['model']}, {m['cores']} cores{' (' + m['hypervisor'] + ' guest)' if m.get('hypervisor') else ''}, "
          f"SIMD: {' '.join(m['simd'])}; OpenBLAS cores: "
          + ", ".join(f"{k} {v}" for k, v in cores.items())
          + f"; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}\n")
    print(f"Conv1D({FILTERS}, {K}) on ({B}, {T}, {C}) float32, valid padding; {args.reps} interleaved repetitions\n")
    print("| threads | forward ms | floor ms | ratio | backward ms | floor ms | ratio | floor GFLOP/s | load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        md, rt = r["median_ms"], r["median_ratio"]
        print(f"| {r['threads']} | {md['conv_forward']:.2f} | {md['floor_forward']:.2f} | {rt['forward']:.2f} | "
              f"{md['conv_backward']:.2f} | {md['floor_backward']:.2f} | {rt['backward']:.2f} | "
              f"{r['gflops_floor']['forward']:.0f} | {r['load_avg'][0]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "openblas": cores, "results": results}, indent=1))


if __name__ == "__main__":
    main()
