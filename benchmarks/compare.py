"""Side-by-side GRU timings: fastgru vs PyTorch, ONNX Runtime and Keras, on the same machine, same run.

    python benchmarks/compare.py                       # inference, shapes S1-S5, 1 and 2 threads
    python benchmarks/compare.py --mode train          # one training step (forward, backward, Adam)
    python benchmarks/compare.py --shapes S1,S3 --threads 1 --json out.json --plot out.png

Every framework x thread count runs in a fresh subprocess whose environment pins the thread pools
(OMP/MKL/OpenBLAS variables, plus each framework's own setting), so that no framework's threads leak
into another's measurement. The frameworks take turns over several rounds (``--rounds``); each figure
is the median over rounds of the median of repeated timed calls after warm-up calls;
the ratio column is peer / fastgru (above 1: fastgru is faster).

Same function everywhere: the weights are made once in Keras's layout and converted for each peer.
Inference: before timing a shape, each worker compares its output with a float64 NumPy reference
(``numpy_gru.py``) and does not time a shape that is off by more than ``--tolerance``; the report then
gives every framework's largest difference from the reference and from fastgru. Training: all start
from the same weights, and the losses of their first two steps (the second one after an Adam update)
are compared with fastgru's before the timed steps.
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


def median_ms(run, repeats: int, budget_s: float, warmup: int = 2) -> tuple[float, int]:
    """Median of up to ``repeats`` timed calls (fewer when one call is slow, at least 3), after warm-ups."""
    for _ in range(max(0, warmup - 1)):
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
def train_problem(name: str):
    """x, y and the initial weights of a training shape, identical in every worker."""
    import peers

    bsz, steps, d, units, _, loss = TRAIN_SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    if loss == "binary_crossentropy":
        y = (rng.random((bsz, 1)) > 0.5).astype(np.float32)
    else:
        y = rng.standard_normal((bsz, 1)).astype(np.float32)
    return x, y, peers.initial_weights(d, units)


def worker(args) -> None:
    import peers

    results, version = [], None
    for name in args.shapes.split(","):
        try:
            if args.mode == "infer":
                from fastgru.bench import random_gru_problem

                x, w, u, b = random_gru_problem(*INFER_SHAPES[name])
                run, version = peers.INFER[args.worker](x, w, u, b, args.threads)
                out = np.asarray(run(), dtype=np.float32)
                np.save(Path(args.outdir) / f"{args.worker}-{name}-{args.threads}.npy", out)
                ref = np.load(Path(args.outdir) / f"ref-{name}.npy")
                diff = float(np.abs(out.astype(np.float64) - ref).max()) if out.shape == ref.shape else float("inf")
                check = {"max_abs_diff_ref": diff}
                if not diff <= args.tolerance:  # checked before timing: a wrong function is not timed
                    results.append({"shape": name, **check, "error": f"output differs from the float64 NumPy "
                                    f"reference by {diff:.2e} (> {args.tolerance:g}); not timed"})
                    continue
            else:
                act, loss = TRAIN_SHAPES[name][4:]
                x, y, weights = train_problem(name)
                run, version = peers.TRAIN[args.worker](x, y, weights, act, loss, args.threads)
                losses = [run(), run()]  # the two warm-up steps, from the shared initial weights
                check = {"first_losses": losses}
                if not np.all(np.isfinite(losses)):
                    results.append({"shape": name, **check, "error": f"non-finite loss {losses}; not timed"})
                    continue
        except peers.Unavailable as exc:
            print(json.dumps({"framework": args.worker, "threads": args.threads, "skipped": str(exc)}))
            return
        ms, n = median_ms(run, args.repeats, args.budget, warmup=0 if args.mode == "train" else 2)
        results.append({"shape": name, "median_ms": ms, "calls": n, **check})
    print(json.dumps({"framework": args.worker, "version": version, "threads": args.threads, "results": results}))


def run_worker(framework, threads, args, outdir) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["KERAS_BACKEND"] = "tensorflow"
    cmd = [sys.executable, __file__, "--worker", framework, "--threads", str(threads), "--mode", args.mode,
           "--shapes", args.shapes, "--repeats", str(args.repeats), "--budget", str(args.budget), "--outdir", outdir,
           "--tolerance", str(args.tolerance)]
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
        env["cpu"] = platform.processor() or platform.machine()
    try:
        env["loadavg_at_start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    return env


def merge_rounds(runs: list[dict]) -> list[dict]:
    """One entry per framework and thread count; each figure the median of its rounds' medians.
    A shape that failed its check in any round is reported as failed (with the largest difference)."""
    merged: dict = {}
    for r in runs:
        key = (r["framework"], r["threads"])
        entry = merged.setdefault(key, {"framework": r["framework"], "threads": r["threads"], "shapes": {}})
        for k in ("version", "skipped", "error"):
            if k in r:
                entry.setdefault(k, r[k])
        for s in r.get("results", []):
            acc = entry["shapes"].setdefault(s["shape"], {"shape": s["shape"], "round_medians_ms": []})
            if "median_ms" in s:
                acc["round_medians_ms"].append(s["median_ms"])
            if "error" in s:
                acc.setdefault("error", s["error"])
            if "max_abs_diff_ref" in s:
                acc["max_abs_diff_ref"] = max(acc.get("max_abs_diff_ref", 0.0), s["max_abs_diff_ref"])
            if "first_losses" in s:
                acc.setdefault("first_losses", s["first_losses"])
    out = []
    for entry in merged.values():
        shapes = entry.pop("shapes")
        if shapes:
            entry.pop("error", None)  # some round worked
            entry["results"] = []
            for acc in shapes.values():
                if acc["round_medians_ms"] and "error" not in acc:
                    acc["median_ms"] = float(np.median(acc["round_medians_ms"]))
                entry["results"].append(acc)
        out.append(entry)
    return out


def _index(results) -> dict:
    return {(r["framework"], r["threads"], s["shape"]): s for r in results for s in r.get("results", [])}


def table(results, frameworks, shape_names, thread_counts, mode) -> str:
    index = _index(results)
    skipped = {(r["framework"], r["threads"]) for r in results if "skipped" in r}
    failed = {(r["framework"], r["threads"]) for r in results if "error" in r and "results" not in r}
    header = "| shape | threads | " + " | ".join(f"{f} ms" + ("" if f == "fastgru" else " (× fastgru)")
                                                 for f in frameworks) + " |"
    lines = [header, "|" + "---|" * (2 + len(frameworks))]
    shapes = INFER_SHAPES if mode == "infer" else TRAIN_SHAPES
    for name in shape_names:
        dims = "×".join(map(str, shapes[name][:3])) + f"→{shapes[name][3]}"
        for n in thread_counts:
            base = index.get(("fastgru", n, name), {}).get("median_ms")
            cells = []
            for f in frameworks:
                entry = index.get((f, n, name), {})
                v = entry.get("median_ms")
                if "error" in entry:
                    cells.append("FAILED CHECK")
                elif (f, n) in skipped:
                    cells.append("skipped")
                elif (f, n) in failed:
                    cells.append("FAILED")
                elif v is None:
                    cells.append("—")
                elif f == "fastgru" or base is None:
                    cells.append(f"{v:.3f}")
                else:
                    cells.append(f"{v:.3f} ({v / base:.1f}×)")
            lines.append(f"| {name} {dims} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement(results, outdir, frameworks, shape_names, thread_counts, mode, tolerance) -> list[str]:
    """Inference: largest |output - float64 reference| and |output - fastgru|. Training: the first two
    losses (from the same initial weights) and their largest difference from fastgru's."""
    index = _index(results)
    notes = []
    for name in shape_names:
        for n in thread_counts:
            if mode == "infer":
                ref_path = Path(outdir) / f"fastgru-{name}-{n}.npy"
                fg_out = np.load(ref_path) if ref_path.exists() else None
                for f in frameworks:
                    entry = index.get((f, n, name), {})
                    if "max_abs_diff_ref" not in entry:
                        continue
                    d_ref = entry["max_abs_diff_ref"]
                    line = f"{name} {n}t {f:12s} max|out - ref64| = {d_ref:.2e}"
                    p = Path(outdir) / f"{f}-{name}-{n}.npy"
                    if f != "fastgru" and fg_out is not None and p.exists():
                        d_fg = float(np.abs(np.load(p) - fg_out).max())
                        line += f"   max|out - fastgru| = {d_fg:.2e}"
                        d_ref = max(d_ref, d_fg)
                    notes.append(line + ("" if d_ref <= tolerance else "   <-- DISAGREES"))
            else:
                base = index.get(("fastgru", n, name), {}).get("first_losses")
                for f in frameworks:
                    losses = index.get((f, n, name), {}).get("first_losses")
                    if losses is None:
                        continue
                    line = f"{name} {n}t {f:12s} losses of steps 1, 2 = {losses[0]:.6f}, {losses[1]:.6f}"
                    if f != "fastgru" and base is not None:
                        # step 1: same forward and loss; step 2: the same Adam update, judged relative
                        # to the change one update makes (PyTorch places Adam's epsilon differently)
                        d1, d2 = abs(losses[0] - base[0]), abs(losses[1] - base[1])
                        ok = d1 <= tolerance * max(1.0, abs(base[0])) and d2 <= tolerance + 0.05 * abs(base[1] - base[0])
                        line += (f"   |Δ step 1| = {d1:.1e}, |Δ step 2| = {d2:.1e} "
                                 f"({d2 / max(abs(base[1] - base[0]), 1e-30):.1%} of the step's change)")
                        line += "" if ok else "   <-- DISAGREES"
                    notes.append(line)
    return notes


def plot(results, frameworks, shape_names, thread_counts, path, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = _index(results)
    groups = [(s, n) for s in shape_names for n in thread_counts]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups)), 4))
    width = 0.8 / len(frameworks)
    for i, f in enumerate(frameworks):
        vals = [index.get((f, n, s), {}).get("median_ms", np.nan) for s, n in groups]
        ax.bar(np.arange(len(groups)) + i * width, vals, width, label=f)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{s}\n{n} thr" for s, n in groups])
    ax.set_yscale("log")
    ax.set_ylabel("median ms (log scale, lower is better)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_references(outdir, shape_names) -> None:
    """The float64 NumPy GRU's last state for each inference shape, for the workers' checks."""
    from fastgru.bench import random_gru_problem
    from numpy_gru import numpy_gru

    for name in shape_names:
        x, w, u, b = (a.astype(np.float64) for a in random_gru_problem(*INFER_SHAPES[name]))
        np.save(Path(outdir) / f"ref-{name}.npy", numpy_gru(x, w, u, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["infer", "train"], default="infer")
    parser.add_argument("--shapes", default=None, help="comma-separated (default: all of the mode's shapes)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--frameworks", default=None, help="default: fastgru,torch,onnxruntime,keras (train: no ORT)")
    parser.add_argument("--repeats", type=int, default=30, help="at most this many timed calls per figure")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timed calls per figure and round, about")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians over rounds")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |output - reference| accepted before timing; train: on the step-1 loss")
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
    known = list((peers_module().INFER if args.mode == "infer" else peers_module().TRAIN))
    frameworks = (args.frameworks or ",".join(known)).split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    shape_names = args.shapes.split(",")
    for what, given, allowed in (("shape", shape_names, list(shapes)), ("framework", frameworks, known)):
        bad = [g for g in given if g not in allowed]
        if bad:
            parser.error(f"unknown {what}(s) {bad} for --mode {args.mode}; choose from {allowed}")
    if any(n < 1 or n > (os.cpu_count() or 1) for n in thread_counts):
        parser.error(f"--threads must be between 1 and {os.cpu_count()}, got {thread_counts}")
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    runs = []
    with tempfile.TemporaryDirectory() as outdir:
        if args.mode == "infer":
            write_references(outdir, shape_names)
        # rounds interleave the frameworks, so that a noisy stretch of the machine hits all of them
        for round_ in range(args.rounds):
            for n in thread_counts:
                for f in frameworks:
                    print(f"  round {round_ + 1}/{args.rounds}: {f} with {n} thread(s) ...", file=sys.stderr, flush=True)
                    runs.append(run_worker(f, n, args, outdir))
        results = merge_rounds(runs)
        notes = agreement(results, outdir, frameworks, shape_names, thread_counts, args.mode, args.tolerance)
    versions = {r["framework"]: r["version"] for r in results if r.get("version")}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    problems = []
    for r in results:
        if "skipped" in r:
            problems.append(f"{r['framework']} ({r['threads']} thr): skipped: {r['skipped']}")
        elif "error" in r:
            problems.append(f"{r['framework']} ({r['threads']} thr): FAILED: {r['error']}")
        for s in r.get("results", []):
            if "error" in s:
                problems.append(f"{r['framework']} ({r['threads']} thr) {s['shape']}: FAILED CHECK: {s['error']}")
    if problems:
        print("\n".join(problems))
    what = ("GRU forward (last state)" if args.mode == "infer"
            else "one training step (forward, backward, Adam)")
    print(f"\n{what}, median ms over {args.rounds} round(s)\n")
    print(table(results, frameworks, shape_names, thread_counts, args.mode))
    if notes:
        print("\noutput agreement:\n" + "\n".join(notes))
        if args.mode == "train" and "torch" in frameworks:
            print("(step 2 follows one Adam update; PyTorch adds Adam's epsilon after the bias correction, "
                  "Keras and fastgru before it, so PyTorch's step-2 loss differs by a fraction of a percent "
                  "of the step's change; a difference above 5% is flagged)")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"mode": args.mode, "environment": env, "versions": versions, "command": sys.argv[1:],
             "settings": {k: getattr(args, k) for k in ("repeats", "budget", "rounds", "tolerance")},
             "results": results, "agreement": notes}, indent=2))
    if args.plot:
        title = f"{what}; {env['cpu']}, OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}"
        plot(results, frameworks, shape_names, thread_counts, args.plot, title)


def peers_module():
    import peers

    return peers


if __name__ == "__main__":
    main()
