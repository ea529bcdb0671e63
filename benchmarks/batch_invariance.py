"""What batch-invariant mode (``fg.set_batch_invariant(True)``) costs, per benchmark shape.

    python benchmarks/batch_invariance.py            # S1-S5, 1 and 2 threads, Markdown to stdout

``model.predict`` of GRU(H) + Dense(H) on (B, T, D) float32 (the recurrent kernels are row-invariant in
both modes; the switch changes the Dense head's product), both modes interleaved over rounds in one
process per thread count; medians, and invariant / default. Run it on a quiet machine
(nothing else using the CPU). Records the CPU flags and SciPy's OpenBLAS kernel set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fastgru.bench import SHAPES  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import median_s  # noqa: E402


def worker(threads: int, rounds: int) -> dict:
    import fastgru as fg
    from fastgru import _threads
    from fastgru.layers import GRU, Dense, Input

    fg.set_num_threads(threads)
    times: dict = {name: {False: [], True: []} for name in SHAPES}
    models = {}
    for name, (b, t, d, h) in SHAPES.items():
        fg.set_random_seed(0)
        models[name] = (fg.Sequential([Input(shape=(t, d)), GRU(h), Dense(h)]),
                        np.random.default_rng(0).standard_normal((b, t, d)).astype(np.float32))
    for _ in range(rounds):
        for name, (model, x) in models.items():
            for invariant in (False, True):
                fg.set_batch_invariant(invariant)
                times[name][invariant].append(median_s(lambda: model.predict(x), budget=0.4))
    fg.set_batch_invariant(False)
    return {"threads": threads, "blas_core": _threads.kernel_blas_core(),
            "ms": {n: {str(k): 1e3 * float(np.median(v)) for k, v in d.items()} for n, d in times.items()}}


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    simd = sorted(f for f in flags if f.startswith(("avx512", "avx2", "fma")))
    return f"{model}; {' '.join(simd)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rounds)))
        return
    results = []
    for threads in (1, 2):
        out = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--rounds", str(args.rounds)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"CPU: {cpu_flags()}; SciPy OpenBLAS kernels: {results[0]['blas_core']}\n")
    print("| shape | threads | default ms | batch-invariant ms | invariant / default |")
    print("| --- | --- | --- | --- | --- |")
    for res in results:
        for name, ms in res["ms"].items():
            b, t, d, h = SHAPES[name]
            print(f"| {name} {b}×{t}×{d}→{h} | {res['threads']} | {ms['False']:.3f} | {ms['True']:.3f} | "
                  f"{ms['True'] / ms['False']:.2f} |")


if __name__ == "__main__":
    main()
