"""GRU vs LSTM in fastgru: parameters, inference and one training step, at the S2 and S3 shapes.

    python benchmarks/gru_vs_lstm.py                     # prints a Markdown table
    python benchmarks/gru_vs_lstm.py --json out.json     # also the raw figures

Each (cell, threads) runs in its own subprocess with the thread pools pinned. Inference times a
layer call on the batch (what ``predict`` runs); training times ``train_on_batch`` of
``Sequential([Input, cell(H), Dense(1)])`` with Adam and mse. Medians of repeated calls after
warm-up, over several interleaved rounds (the median of the per-round medians is reported).
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

SHAPES = {"S2": (32, 10, 50, 64), "S3": (64, 100, 128, 256)}  # batch, steps, features, units


def median_ms(fn, budget_s: float = 1.0, repeats: int = 30) -> float:
    fn()
    fn()
    start = time.perf_counter()
    fn()
    one = time.perf_counter() - start
    n = int(max(3, min(repeats, budget_s / max(one, 1e-9))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def worker(cell: str, threads: int) -> dict:
    import fastgru as fg
    from fastgru.layers import GRU, LSTM, Dense, Input

    fg.set_num_threads(threads)
    layer_cls = {"GRU": GRU, "LSTM": LSTM}[cell]
    out = {}
    for name, (b, t, d, h) in SHAPES.items():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((b, t, d)).astype(np.float32)
        y = rng.standard_normal((b, 1)).astype(np.float32)
        fg.set_random_seed(0)
        layer = layer_cls(h)
        layer.build((None, t, d))
        infer = median_ms(lambda: layer(x))
        model = fg.Sequential([Input((t, d)), layer_cls(h), Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        train = median_ms(lambda: model.train_on_batch(x, y))
        out[name] = {"params": layer.count_params(), "infer_ms": infer, "train_ms": train}
    return out


def run(cell: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(max(threads, 1)))
    proc = subprocess.run([sys.executable, __file__, "--worker", cell, str(threads)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return
    thread_counts = [int(n) for n in args.threads.split(",")]
    runs: dict = {}
    for _ in range(args.rounds):
        for threads in thread_counts:
            for cell in ("GRU", "LSTM"):
                for shape, fig in run(cell, threads).items():
                    runs.setdefault((cell, threads, shape), []).append(fig)
    results = []
    for (cell, threads, shape), figs in runs.items():
        results.append({"cell": cell, "threads": threads, "shape": shape, "params": figs[0]["params"],
                        "infer_ms": float(np.median([f["infer_ms"] for f in figs])),
                        "train_ms": float(np.median([f["train_ms"] for f in figs]))})
    from fastgru.bench import environment_line

    print(f"Machine: {environment_line()}; {args.rounds} rounds\n")
    print("| shape | threads | GRU params | LSTM params | GRU infer ms | LSTM infer ms | LSTM/GRU | "
          "GRU train ms | LSTM train ms | LSTM/GRU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    index = {(r["cell"], r["threads"], r["shape"]): r for r in results}
    for shape, (b, t, d, h) in SHAPES.items():
        for threads in thread_counts:
            g, lstm = index[("GRU", threads, shape)], index[("LSTM", threads, shape)]
            print(f"| {shape} {b}×{t}×{d}→{h} | {threads} | {g['params']:,} | {lstm['params']:,} | "
                  f"{g['infer_ms']:.3f} | {lstm['infer_ms']:.3f} | {lstm['infer_ms'] / g['infer_ms']:.2f} | "
                  f"{g['train_ms']:.2f} | {lstm['train_ms']:.2f} | {lstm['train_ms'] / g['train_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
