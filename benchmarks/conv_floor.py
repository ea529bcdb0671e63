"""Conv1D against this machine's sgemm floor (issue 15's target: within 1.5x, forward and backward).

    python benchmarks/conv_floor.py                  # 1 and 2 threads, Markdown to stdout
    python benchmarks/conv_floor.py --threads 1 --reps 41 --json out.json

``Conv1D(128, 5)`` on (64, 100, 128) float32 (``padding="valid"``: 96 output steps), in one process
per thread count (``fg.set_num_threads``; NumPy's OpenBLAS gets the same count, as fastgru's policy):

* forward: ``layer.call(x)``; its floor is one OpenBLAS sgemm (NumPy's matmul) with the same
  multiply-adds in a well-shaped product, ``(B*T_out, k*C_in) @ (k*C_in, filters)``;
* backward: ``layer.backward(dy, cache)`` (gradients of input, kernel and bias); its floor is the two
  products of an im2col backward, ``cols^T @ dY`` and ``dY @ W^T``, as two sgemm calls.

Also timed, for comparison: the im2col implementation Conv1D had before (``im2col_*`` below: the
window copy and one GEMM forward; ``cols^T @ dY``, ``dY @ W^T`` and a tap-by-tap scatter backward).

The machine may be shared (other processes' work makes every figure noisy), so the timings are
interleaved — conv forward, floor forward, im2col forward, conv backward, floor backward, im2col
backward, and again — and the report gives the medians and the median of the per-repetition ratios.
Each call's run-queue wait (``/proc/self/task/*/schedstat``: time this process's threads were ready
but another task had the CPU) is recorded; a repetition is *quiet* when no call in it waited more
than 2% of its time, and the quiet repetitions' median ratios are reported beside all of them.
The CPU (``lscpu``'s model and SIMD flags) and the OpenBLAS core types of NumPy and SciPy are
recorded with the numbers.

Spinning BLAS threads: after each call, OpenBLAS's idle worker threads spin for 2^28 cycles (about
0.1 s here) before they sleep, holding a core that fastgru's kernel threads (its own threads, see
``fastgru/_threads.py``) then share. Interleaving would hand every Conv1D call the floor's spinning
threads, so the workers run with ``OPENBLAS_THREAD_TIMEOUT=4`` (2^4 cycles) by default: the floor's
threads then sleep between calls and are woken for each (microseconds against a product of ~10 ms).
``--blas-timeout ""`` keeps OpenBLAS's default, to see the effect (docs/performance.md, Conv1D).
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


def run_queue_wait() -> float:
    """Seconds this process's threads have spent runnable but waiting for a CPU (0 where unknown)."""
    total = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * 1e-9


def timed(fn) -> tuple[float, float]:
    """(wall seconds, run-queue wait seconds) of one call."""
    wait = run_queue_wait()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    return wall, run_queue_wait() - wait


def im2col_forward(x, kernel, bias):
    """What Conv1D did before (valid padding, stride 1, one group): window copy, one GEMM, bias."""
    from fastgru.layers.conv import windows

    b, steps, c = x.shape
    k = kernel.shape[0]
    out = steps - k + 1
    cols = np.ascontiguousarray(windows(x, k, 1, 1, out))
    z = cols.reshape(b * out, k * c) @ kernel.reshape(k * c, -1)
    z += bias
    return z.reshape(b, out, -1), cols


def im2col_backward(dz, cols, kernel, x_shape):
    """The matching backward: ``cols^T @ dY``, ``dY @ W^T`` and the tap-by-tap scatter."""
    b, steps, c = x_shape
    k, _, f = kernel.shape
    out = steps - k + 1
    dz2 = dz.reshape(b * out, f)
    dw = (cols.reshape(b * out, k * c).T @ dz2).reshape(kernel.shape)
    dcols = (dz2 @ kernel.reshape(k * c, f).T).reshape(b, out, k, c)
    db = dz2.sum(axis=0)
    dxp = np.zeros((b, steps, c), dz.dtype)
    for j in range(k):
        dxp[:, j:j + out, :] += dcols[:, :, j, :]
    return dxp, dw, db


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

    kernel, bias = layer.weights
    _, old_cols = im2col_forward(x, kernel, bias)

    def im2col_fwd():
        im2col_forward(x, kernel, bias)

    def im2col_bwd():
        im2col_backward(dy, old_cols, kernel, x.shape)

    calls = {"conv_forward": conv_forward, "floor_forward": floor_forward, "im2col_forward": im2col_fwd,
             "conv_backward": conv_backward, "floor_backward": floor_backward, "im2col_backward": im2col_bwd}
    for fn in calls.values():  # compile, warm caches
        fn()
        fn()
    wall = {k: [] for k in calls}
    wait = {k: [] for k in calls}
    for _ in range(reps):  # interleaved: contention hits conv and floor alike
        for name, fn in calls.items():
            w, q = timed(fn)
            wall[name].append(w)
            wait[name].append(q)
    wall = {k: np.array(v) for k, v in wall.items()}
    quiet = np.all([np.array(wait[k]) <= 0.02 * wall[k] for k in calls], axis=0)

    def ratios(mask):
        if not mask.any():
            return None
        return {f"{impl}_{d}": float(np.median(wall[f"{impl}_{d}"][mask] / wall[f"floor_{d}"][mask]))
                for impl in ("conv", "im2col") for d in ("forward", "backward")}

    med = {k: float(np.median(v)) * 1e3 for k, v in wall.items()}
    macs = rows * depth * FILTERS
    sq = rng.random((2048, 2048), dtype=np.float32)
    sq_out = np.empty_like(sq)
    peak = 2 * 2048 ** 3 / min(timed(lambda: np.matmul(sq, sq, out=sq_out))[0] for _ in range(5)) / 1e9
    return {"threads": threads, "reps": reps, "median_ms": med, "median_ratio": ratios(np.ones(reps, bool)),
            "quiet_reps": int(quiet.sum()), "quiet_median_ratio": ratios(quiet),
            "median_wait_share": {k: float(np.median(np.array(wait[k]) / wall[k])) for k in calls},
            "gflops_floor": {"forward": 2 * macs / med["floor_forward"] / 1e6,
                             "backward": 4 * macs / med["floor_backward"] / 1e6},
            "gflops_conv": {"forward": 2 * macs / med["conv_forward"] / 1e6,
                            "backward": 4 * macs / med["conv_backward"] / 1e6},
            "sgemm_peak_gflops": peak,
            "load_avg": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=31)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--blas-timeout", default="4", help='OPENBLAS_THREAD_TIMEOUT for the workers ("": unset)')
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.reps)))
        return
    results = []
    for threads in [int(n) for n in args.threads.split(",")]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   NUMBA_NUM_THREADS=str(max(threads, 1)))
        env.pop("OPENBLAS_THREAD_TIMEOUT", None)
        if args.blas_timeout:
            env["OPENBLAS_THREAD_TIMEOUT"] = args.blas_timeout
        proc = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--reps", str(args.reps)],
                              env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    m = machine()
    cores = openblas_cores()
    print(f"{m['model']}, {m['cores']} cores{' (' + m['hypervisor'] + ' guest)' if m.get('hypervisor') else ''}, "
          f"SIMD: {' '.join(m['simd'])}; OpenBLAS cores: "
          + ", ".join(f"{k} {v}" for k, v in cores.items())
          + f"; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
          + f"; OPENBLAS_THREAD_TIMEOUT={args.blas_timeout or '(unset)'}\n")
    print(f"Conv1D({FILTERS}, {K}) on ({B}, {T}, {C}) float32, valid padding; {args.reps} interleaved repetitions; "
          "ratio = median of conv / floor per repetition (quiet repetitions only in brackets)")

    def fmt(r, key):
        q = r["quiet_median_ratio"]
        return f"{r['median_ratio'][key]:.2f}" + (f" ({q[key]:.2f})" if q else "")

    for r in results:
        print(f"\n{r['threads']} thread(s): sgemm peak (2048^3, best of 5) {r['sgemm_peak_gflops']:.0f} GFLOP/s; "
              f"Conv1D forward {r['gflops_conv']['forward']:.0f}, backward {r['gflops_conv']['backward']:.0f} GFLOP/s "
              f"(medians); median run-queue wait per call: "
              + ", ".join(f"{k} {v:.0%}" for k, v in r["median_wait_share"].items()))
    print()
    print("| threads | pass | Conv1D ms | sgemm floor ms | ratio | im2col (before) ms | ratio | quiet reps | "
          "load avg |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        md = r["median_ms"]
        for d in ("forward", "backward"):
            print(f"| {r['threads']} | {d} | {md['conv_' + d]:.2f} | {md['floor_' + d]:.2f} | {fmt(r, 'conv_' + d)} | "
                  f"{md['im2col_' + d]:.2f} | {fmt(r, 'im2col_' + d)} | {r['quiet_reps']}/{r['reps']} | "
                  f"{r['load_avg'][0]:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "openblas": cores, "blas_timeout": args.blas_timeout,
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
