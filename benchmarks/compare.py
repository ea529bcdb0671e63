"""Side-by-side GRU timings: fastgru vs PyTorch, ONNX Runtime and Keras, on the same machine, same run.

    python benchmarks/compare.py                       # inference, shapes S1-S5, 1 and 2 threads
    python benchmarks/compare.py --mode train          # one training step (forward, backward, Adam)
    python benchmarks/compare.py --shapes S1,S3 --threads 1 --json out.json --plot out.png

Every framework x thread count runs in a fresh subprocess whose environment pins the thread pools
(OMP/MKL/OpenBLAS variables, plus each framework's own setting), so that no framework's threads leak
into another's measurement. The frameworks take turns over several rounds (``--rounds``); each figure
is the median over rounds of the median of repeated timed calls after warm-up calls;
the ratio column is peer / fastgru (above 1: fastgru is faster). Before timing, every peer's output is
compared with fastgru's on the same weights and inputs, and the maximum difference is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fastgru.bench import SHAPES as INFER_SHAPES  # noqa: E402  (batch, steps, features, units)

TRAIN_SHAPES = {  # batch, steps, features, units, head activation, loss
    "seed": (32, 10, 50, 64, "sigmoid", "binary_crossentropy"),
    "S3": (64, 100, 128, 256, None, "mse"),
}


def median_ms(run, repeats: int, budget_s: float) -> tuple[float, int]:
    """Median of up to ``repeats`` timed calls (fewer when one call is slow), after two warm-ups."""
    run()
    start = time.perf_counter()
    run()
    one = time.perf_counter() - start
    n = int(max(3, min(repeats, budget_s / max(one, 1e-9))))
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3), n


# ---------------------------------------------------------------------------------------------
# worker: one framework, one thread count, in its own process
# ---------------------------------------------------------------------------------------------
def worker(args) -> None:
    import peers

    results = []
    for name in args.shapes.split(","):
        if args.mode == "infer":
            from fastgru.bench import random_gru_problem

            x, w, u, b = random_gru_problem(*INFER_SHAPES[name])
            setup = peers.INFER[args.worker]
            try:
                run, version = setup(x, w, u, b, args.threads)
            except ImportError as exc:
                print(json.dumps({"skipped": f"{args.worker} not installed ({exc})"}))
                return
            out = np.asarray(run())
            np.save(Path(args.outdir) / f"{args.worker}-{name}-{args.threads}.npy", out)
        else:
            bsz, steps, d, units, act, loss = TRAIN_SHAPES[name]
            rng = np.random.default_rng(0)
            x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
            y = (rng.random((bsz, 1)) > 0.5).astype(np.float32) if loss == "binary_crossentropy" \
                else rng.standard_normal((bsz, 1)).astype(np.float32)
            setup = peers.TRAIN[args.worker]
            try:
                run, version = setup(x, y, units, act, loss, args.threads)
            except ImportError as exc:
                print(json.dumps({"skipped": f"{args.worker} not installed ({exc})"}))
                return
        ms, n = median_ms(run, args.repeats, args.budget)
        results.append({"shape": name, "median_ms": ms, "calls": n})
    print(json.dumps({"framework": args.worker, "version": version, "threads": args.threads, "results": results}))


def run_worker(framework, threads, args, outdir) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["KERAS_BACKEND"] = "tensorflow"
    cmd = [sys.executable, __file__, "--worker", framework, "--threads", str(threads), "--mode", args.mode,
           "--shapes", args.shapes, "--repeats", str(args.repeats), "--budget", str(args.budget), "--outdir", outdir]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"framework": framework, "threads": threads, "error": (proc.stderr or proc.stdout)[-800:]}
    result = json.loads(lines[-1])
    result.setdefault("framework", framework)
    result.setdefault("threads", threads)
    return result


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def environment() -> dict:
    import platform

    from fastgru.bench import environment as fg_env

    env = fg_env()
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        env["cpu"] = platform.processor()
    return env


def merge_rounds(runs: list[dict]) -> list[dict]:
    """One entry per framework and thread count; each figure the median of its rounds' medians."""
    merged: dict = {}
    for r in runs:
        key = (r["framework"], r["threads"])
        if "results" not in r:
            merged.setdefault(key, r)
            continue
        entry = merged.setdefault(key, {k: v for k, v in r.items() if k != "results"} | {"per_shape": {}})
        if "per_shape" not in entry:  # an earlier round failed: keep the successful ones
            entry = merged[key] = {k: v for k, v in r.items() if k != "results"} | {"per_shape": {}}
        for s in r["results"]:
            entry["per_shape"].setdefault(s["shape"], []).append(s["median_ms"])
    out = []
    for entry in merged.values():
        if "per_shape" in entry:
            per_shape = entry.pop("per_shape")
            entry["results"] = [{"shape": k, "median_ms": float(np.median(v)), "round_medians_ms": v}
                                for k, v in per_shape.items()]
        out.append(entry)
    return out


def table(results, frameworks, shape_names, thread_counts, mode) -> str:
    index = {(r["framework"], r["threads"], s["shape"]): s["median_ms"]
             for r in results if "results" in r for s in r["results"]}
    header = "| shape | threads | " + " | ".join(f"{f} ms" + ("" if f == "fastgru" else " (× fastgru)")
                                                 for f in frameworks) + " |"
    lines = [header, "|" + "---|" * (2 + len(frameworks))]
    shapes = INFER_SHAPES if mode == "infer" else TRAIN_SHAPES
    for name in shape_names:
        dims = "×".join(map(str, shapes[name][:3])) + f"→{shapes[name][3]}"
        for n in thread_counts:
            base = index.get(("fastgru", n, name))
            cells = []
            for f in frameworks:
                v = index.get((f, n, name))
                if v is None:
                    cells.append("—")
                elif f == "fastgru" or base is None:
                    cells.append(f"{v:.3f}")
                else:
                    cells.append(f"{v:.3f} ({v / base:.1f}×)")
            lines.append(f"| {name} {dims} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement(outdir, frameworks, shape_names, thread_counts) -> list[str]:
    notes = []
    for name in shape_names:
        for n in thread_counts:
            ref_path = Path(outdir) / f"fastgru-{name}-{n}.npy"
            if not ref_path.exists():
                continue
            ref = np.load(ref_path)
            for f in frameworks:
                p = Path(outdir) / f"{f}-{name}-{n}.npy"
                if f != "fastgru" and p.exists():
                    diff = float(np.abs(np.load(p) - ref).max())
                    notes.append(f"{name} {n}t {f}: max |output - fastgru| = {diff:.2e}"
                                 + ("" if diff < 1e-4 else "  <-- DISAGREES"))
    return notes


def plot(results, frameworks, shape_names, thread_counts, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {(r["framework"], r["threads"], s["shape"]): s["median_ms"]
             for r in results if "results" in r for s in r["results"]}
    groups = [(s, n) for s in shape_names for n in thread_counts]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups)), 4))
    width = 0.8 / len(frameworks)
    for i, f in enumerate(frameworks):
        vals = [index.get((f, n, s), np.nan) for s, n in groups]
        ax.bar(np.arange(len(groups)) + i * width, vals, width, label=f)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{s}\n{n} thr" for s, n in groups])
    ax.set_yscale("log")
    ax.set_ylabel("median ms (log scale, lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["infer", "train"], default="infer")
    parser.add_argument("--shapes", default=None, help="comma-separated (default: all of the mode's shapes)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--frameworks", default=None, help="default: fastgru,torch,onnxruntime,keras (train: no ORT)")
    parser.add_argument("--repeats", type=int, default=30, help="at most this many timed calls per figure")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timed calls per figure and round, about")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians over rounds")
    parser.add_argument("--json", default=None, help="write results here")
    parser.add_argument("--plot", default=None, help="write a log-scale bar chart here (PNG)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = INFER_SHAPES if args.mode == "infer" else TRAIN_SHAPES
    args.shapes = args.shapes or ",".join(shapes)
    if args.worker:
        args.threads = int(args.threads)
        worker(args)
        return
    frameworks = (args.frameworks or ("fastgru,torch,onnxruntime,keras" if args.mode == "infer"
                                      else "fastgru,torch,keras")).split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    shape_names = args.shapes.split(",")
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as outdir:
        # rounds interleave the frameworks, so that a noisy stretch of the machine hits all of them
        for round_ in range(args.rounds):
            for n in thread_counts:
                for f in frameworks:
                    print(f"  round {round_ + 1}/{args.rounds}: {f} with {n} thread(s) ...", file=sys.stderr, flush=True)
                    runs.append(run_worker(f, n, args, outdir))
        notes = agreement(outdir, frameworks, shape_names, thread_counts) if args.mode == "infer" else []
    results = merge_rounds(runs)
    versions = {r["framework"]: r.get("version") for r in results if "version" in r}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for r in results:
        if "error" in r or "skipped" in r:
            print(f"{r['framework']} ({r['threads']} thr): {r.get('skipped') or 'FAILED: ' + r['error']}")
    what = "GRU forward (last state)" if args.mode == "infer" else "one training step (forward, backward, Adam)"
    print(f"\n{what}, median ms\n")
    print(table(results, frameworks, shape_names, thread_counts, args.mode))
    if notes:
        print("\noutput agreement:\n" + "\n".join(notes))
    if args.json:
        Path(args.json).write_text(json.dumps({"mode": args.mode, "environment": env, "results": results,
                                               "agreement": notes}, indent=2))
    if args.plot:
        plot(results, frameworks, shape_names, thread_counts, args.plot)


if __name__ == "__main__":
    main()
