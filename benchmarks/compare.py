"""Side-by-side GRU timings: fastgru vs PyTorch, ONNX Runtime and Keras (plain and XLA), same machine, same run.

    python benchmarks/compare.py                       # inference, shapes S1-S5, 1 and 2 threads
    python benchmarks/compare.py --mode train          # one training step (forward, backward, Adam)
    python benchmarks/compare.py --shapes S1,S3 --threads 1 --json out.json --plot out.png --markdown out.md
    python benchmarks/compare.py --frameworks fastgru --baseline HEAD~3   # before/after, same run

``--baseline REF`` (a git revision of this repository, or several, comma-separated) adds fastgru as it was
at REF as one more column, ``fastgru@REF``: its package is exported from git into a temporary folder
that the worker finds first on ``PYTHONPATH`` (with a Numba cache of its own there), and it takes its turn
in every round like the peers. It is not a peer: "best peer" ignores it, and its cell's ratio is
REF / today (above 1: today is faster).

Every framework x thread count runs in a fresh subprocess whose environment pins the thread pools
(OMP/MKL/OpenBLAS variables, plus each framework's own setting), so that no framework's threads leak
into another's measurement. The frameworks take turns over several rounds (``--rounds``); each figure
is the median over rounds of the median of repeated timed calls after warm-up calls, reported with the
min and max over all timed calls. The table gives peer / fastgru per peer (above 1: fastgru is faster)
and the figure of merit, fastgru / best peer, against issue #18's target (and issue #6's). During every timed loop the
worker compares /proc/stat's busy time on its CPUs with its own CPU time (over at least 0.25 s); a
figure measured while other processes used more than 10% of a core is marked and listed. The environment (CPU, threadpoolctl's
BLAS libraries and their core types, OPENBLAS_CORETYPE and other variables, versions) is recorded.

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


#: fastgru / best peer must be at most this (issue #18, the open one), per shape and thread count
#: (issue #18 allows 1.1x the floor where 0.85 of the best peer would be below it: benchmarks/floor.py)
INFER_TARGETS = {"S1": 0.85, "S2": 0.85, "S3": 0.85, "S4": 0.85, "S5": 0.85}
TRAIN_TARGETS = {"seed": 0.4, "S3": 0.8}
#: issue #6's earlier targets, reported beside them
INFER_TARGETS_ISSUE6 = {"S1": 0.5, "S2": 0.5, "S3": 0.9, "S4": 0.9, "S5": 0.8}
TRAIN_TARGETS_ISSUE6 = {"seed": 0.5, "S3": 0.8}

#: other processes (and the hypervisor's steal) may use at most this fraction of one core during a
#: timed loop before its figure is flagged as measured on a busy machine
CONTENTION_LIMIT = 0.10
#: the CPU-use window of a timed loop lasts at least this long (/proc/stat counts 10 ms ticks): a
#: shorter loop is followed by untimed calls of the same function until the window is this long
CONTENTION_WINDOW_S = 0.25
#: seconds every worker sleeps between a shape's setup (and its correctness check) and its timed calls:
#: thread pools the setup used go quiet first (OpenBLAS's threads spin ~0.1 s after a multi-threaded
#: call, such as the QR of a GRU's orthogonal initializer; OpenMP teams spin too), which otherwise
#: take a core from the first timed calls (measured: fastgru S5 at 2 threads, its first ~20 calls
#: 2.4-9.7 ms instead of 2.4)
SETTLE_S = 0.3

#: environment variables recorded with the results (those that change what the libraries do)
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS",
            "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "NUMBA_CACHE_DIR", "FASTGRU_VECTOR_BYTES",
            "TF_ENABLE_ONEDNN_OPTS", "KMP_AFFINITY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT")


def cpu_jiffies(cpus, stat_text: str | None = None) -> tuple[int, int] | None:
    """(busy, steal) clock ticks summed over the CPUs ``cpus`` from /proc/stat; None where unreadable.
    Busy is user + nice + system + irq + softirq (guest time is inside user)."""
    if stat_text is None:
        try:
            with open("/proc/stat") as f:
                stat_text = f.read()
        except OSError:
            return None
    busy = steal = 0
    for line in stat_text.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(f) for f in rest.split()] + [0] * 8
            busy += v[0] + v[1] + v[2] + v[5] + v[6]
            steal += v[7]
    return busy, steal


def own_cpu_seconds() -> float:
    """CPU time of this process, all its threads (user + system)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_queue_wait_seconds() -> float | None:
    """Time this process's threads spent runnable but waiting for a CPU (``/proc/self/task/*/schedstat``,
    second field, nanoseconds); None where the kernel does not provide it."""
    total, seen = 0, False
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
                seen = True
        except (OSError, IndexError, ValueError):
            continue
    return total * 1e-9 if seen else None


class CPUWatch:
    """Did anything but this process use the CPUs we run on during a timed loop?

    /proc/stat's busy ticks on this process's CPUs (``sched_getaffinity``) minus this process's own CPU
    time (``getrusage``, all its threads) is what other processes (and the kernel for them) used; steal
    is time the hypervisor gave our virtual CPUs to someone else. /proc/stat counts whole ticks per CPU,
    so one tick per CPU is allowed as slack and the window is at least ``CONTENTION_WINDOW_S`` long
    (see ``timed_loop``). A loop is flagged when others + steal exceed ``CONTENTION_LIMIT`` of one core.
    Also recorded, not flagged: the run-queue wait of this process's threads (schedstat), time they were
    ready to run but another task had the CPU — which may be one of this process's own threads when a
    framework runs more busy threads than there are cores — and this process's CPU time / wall time."""

    def __init__(self):
        try:
            self.cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpus = set(range(os.cpu_count() or 1))
        self.tick = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01

    def start(self) -> None:
        self.w0 = run_queue_wait_seconds()
        self.j0, self.own0 = cpu_jiffies(self.cpus), own_cpu_seconds()
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def stop(self) -> dict:
        wall = time.perf_counter() - self.t0
        j1, own1, w1 = cpu_jiffies(self.cpus), own_cpu_seconds(), run_queue_wait_seconds()
        wait = None if self.w0 is None or w1 is None else max(0.0, w1 - self.w0)
        if self.j0 is None or j1 is None:
            return contention(wall, None, 0.0, own1 - self.own0, len(self.cpus), self.tick, wait)
        return contention(wall, (j1[0] - self.j0[0]) * self.tick, (j1[1] - self.j0[1]) * self.tick,
                          own1 - self.own0, len(self.cpus), self.tick, wait)


def contention(wall_s: float, busy_s: float | None, steal_s: float, own_s: float, n_cpus: int, tick_s: float,
               wait_s: float | None = None) -> dict:
    """Others' CPU use (and steal), our own CPU use and our threads' run-queue wait as shares of one core
    over a window of ``wall_s`` seconds; flagged when others + steal exceed ``CONTENTION_LIMIT`` of a core
    (with one tick per CPU of slack). Windows under 10 ticks are not judged (``others_core`` None)."""
    wall = max(wall_s, 1e-9)
    out = {"wall_s": round(wall_s, 4), "own_core": round(own_s / wall, 3), "others_core": None, "steal_core": None}
    flagged = False
    if busy_s is not None and wall_s >= 10 * tick_s:
        others_s = max(0.0, busy_s - own_s)
        out["others_core"], out["steal_core"] = round(others_s / wall, 3), round(steal_s / wall, 3)
        flagged = others_s + steal_s > CONTENTION_LIMIT * wall + n_cpus * tick_s
    if wait_s is not None:
        out["wait_core"] = round(wait_s / wall, 3)
    out["flagged"] = bool(flagged)
    return out


def timed_loop(run, repeats: int, budget_s: float, warmup: int = 2) -> dict:
    """Up to ``repeats`` timed calls (fewer when one call is slow, at least 3) after ``warmup`` calls:
    their median, min and max in ms, and what other processes used of the CPUs meanwhile (over a window
    of at least ``CONTENTION_WINDOW_S``: untimed calls follow a shorter loop)."""
    for _ in range(max(0, warmup - 1)):
        run()
    start = time.perf_counter()
    run()
    one = time.perf_counter() - start
    n = int(max(3, min(repeats, budget_s / max(one, 1e-9))))
    times = []
    watch = CPUWatch()
    watch.start()
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    padding = 0
    while watch.elapsed() < CONTENTION_WINDOW_S:  # untimed: the same work, so that /proc/stat can judge
        run()
        padding += 1
    cpu = watch.stop()
    cpu["untimed_calls"] = padding
    ms = np.asarray(times) * 1e3
    return {"median_ms": float(np.median(ms)), "min_ms": float(ms.min()), "max_ms": float(ms.max()), "calls": n,
            "cpu": cpu}


def threadpools() -> list[dict] | str:
    """threadpoolctl's view of the native thread pools loaded in this process (BLAS, OpenMP), compacted."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl)"
    keep = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads")
    return [{**{k: p[k] for k in keep if p.get(k) is not None}, "library": Path(p.get("filepath", "?")).parent.name
             + "/" + Path(p.get("filepath", "?")).name} for p in threadpool_info()]


def describe_pools(pools) -> str:
    if isinstance(pools, str):
        return pools
    return "; ".join(f"{p.get('internal_api', p.get('user_api'))} {p.get('version', '')} "
                     + (f"{p['architecture']} " if "architecture" in p else "")
                     + f"threads={p.get('num_threads')} ({p['library']})" for p in pools) or "none loaded"


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
        setup_name = args.worker.split("@")[0]  # fastgru@REF runs fastgru's setup on REF's package
        try:
            if args.mode == "infer":
                from fastgru.bench import random_gru_problem

                x, w, u, b = random_gru_problem(*INFER_SHAPES[name])
                run, version = peers.INFER[setup_name](x, w, u, b, args.threads)
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
                run, version = peers.TRAIN[setup_name](x, y, weights, act, loss, args.threads)
                losses = [run(), run()]  # the two warm-up steps, from the shared initial weights
                check = {"first_losses": losses}
                if not np.all(np.isfinite(losses)):
                    results.append({"shape": name, **check, "error": f"non-finite loss {losses}; not timed"})
                    continue
        except peers.Unavailable as exc:
            print(json.dumps({"framework": args.worker, "threads": args.threads, "skipped": str(exc)}))
            return
        time.sleep(SETTLE_S)
        timing = timed_loop(run, args.repeats, args.budget, warmup=0 if args.mode == "train" else 2)
        results.append({"shape": name, **timing, **check})
    extra = {"threadpools": threadpools()}
    if setup_name == "fastgru":
        import fastgru

        extra["fastgru_path"] = str(Path(fastgru.__file__).parent)
        try:
            import numba

            extra["numba_threading_layer"] = numba.threading_layer()
        except (ImportError, ValueError):
            pass
    if "@" in args.worker:
        version = f"{version} at {args.worker.split('@', 1)[1]}"
    print(json.dumps({"framework": args.worker, "version": version, "threads": args.threads, "results": results,
                      **extra}))


def export_baseline(ref: str, into: Path) -> Path:
    """fastgru's package as of git revision ``ref``, exported under ``into/ref`` (for ``--baseline``)."""
    folder = into / "".join(c if c.isalnum() else "_" for c in ref)
    folder.mkdir(parents=True)
    repo = HERE.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, "fastgru"], capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"--baseline {ref}: git archive failed: {archive.stderr.decode(errors='replace')[-400:]}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def run_worker(framework, threads, args, outdir) -> dict:
    env = dict(os.environ)
    if "@" in framework:  # a --baseline revision of fastgru, found first on the path
        folder = args.baselines[framework]
        env["PYTHONPATH"] = str(folder) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
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
    from fastgru.bench import environment as fg_env

    env = fg_env()
    try:
        env["cores"] = f"{len(os.sched_getaffinity(0))} usable of {os.cpu_count()}"
    except (AttributeError, OSError):
        pass
    try:
        env["loadavg_at_start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    for var in ENV_VARS[1:]:
        if var in os.environ:
            env[var] = os.environ[var]
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one fastgru's kernels call)
    except ImportError:
        pass
    env["threadpools"] = threadpools()
    return env


def merge_rounds(runs: list[dict]) -> list[dict]:
    """One entry per framework and thread count; each figure the median of its rounds' medians, with the
    min and max over all timed calls of all rounds, and the rounds whose loop shared the CPU (``busy_rounds``).
    A shape that failed its check in any round is reported as failed (with the largest difference)."""
    merged: dict = {}
    for r in runs:
        key = (r["framework"], r["threads"])
        entry = merged.setdefault(key, {"framework": r["framework"], "threads": r["threads"], "shapes": {}})
        for k in ("version", "skipped", "error", "threadpools", "numba_threading_layer"):
            if k in r:
                entry.setdefault(k, r[k])
        for s in r.get("results", []):
            acc = entry["shapes"].setdefault(s["shape"], {"shape": s["shape"], "round_medians_ms": [], "cpu": []})
            if "median_ms" in s:
                acc["round_medians_ms"].append(s["median_ms"])
                acc["min_ms"] = min(acc.get("min_ms", np.inf), s.get("min_ms", s["median_ms"]))
                acc["max_ms"] = max(acc.get("max_ms", -np.inf), s.get("max_ms", s["median_ms"]))
                acc["cpu"].append(s.get("cpu", {}))
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
                acc["busy_rounds"] = [i + 1 for i, c in enumerate(acc["cpu"]) if c.get("flagged")]
                entry["results"].append(acc)
        out.append(entry)
    return out


def summary(results, frameworks, shape_names, thread_counts, mode) -> list[dict]:
    """Per shape and thread count: the best (lowest median) peer, fastgru / best peer, the target, met?"""
    index = _index(results)
    targets = INFER_TARGETS if mode == "infer" else TRAIN_TARGETS
    targets6 = INFER_TARGETS_ISSUE6 if mode == "infer" else TRAIN_TARGETS_ISSUE6
    rows = []
    for name in shape_names:
        for n in thread_counts:
            row = {"shape": name, "threads": n, "target": targets.get(name), "target_issue6": targets6.get(name)}
            base = index.get(("fastgru", n, name), {}).get("median_ms")
            peer_ms = {f: index.get((f, n, name), {}).get("median_ms") for f in frameworks
                       if not f.startswith("fastgru")}  # fastgru@REF (--baseline) is not a peer
            peer_ms = {f: v for f, v in peer_ms.items() if v is not None}
            if peer_ms:
                row["best_peer"] = min(peer_ms, key=peer_ms.get)
                row["best_peer_ms"] = peer_ms[row["best_peer"]]
            if base is not None and peer_ms:
                row["ratio"] = base / row["best_peer_ms"]
                if row["target"] is not None:
                    row["met"] = bool(row["ratio"] <= row["target"])
                if row["target_issue6"] is not None:
                    row["met_issue6"] = bool(row["ratio"] <= row["target_issue6"])
            rows.append(row)
    return rows


def _index(results) -> dict:
    return {(r["framework"], r["threads"], s["shape"]): s for r in results for s in r.get("results", [])}


def _dims(name, mode) -> str:
    shapes = INFER_SHAPES if mode == "infer" else TRAIN_SHAPES
    return "×".join(map(str, shapes[name][:3])) + f"→{shapes[name][3]}"


def table(results, frameworks, shape_names, thread_counts, mode) -> str:
    """Medians (peer / fastgru in brackets), then the best peer, fastgru / best peer, the target and
    whether it is met. A figure whose timed loop shared the CPU with another process in some round is
    marked †."""
    index = _index(results)
    skipped = {(r["framework"], r["threads"]) for r in results if "skipped" in r}
    failed = {(r["framework"], r["threads"]) for r in results if "error" in r and "results" not in r}
    rows = {(r["shape"], r["threads"]): r for r in summary(results, frameworks, shape_names, thread_counts, mode)}
    header = ("| shape | threads | " + " | ".join(f"{f} ms" + ("" if f == "fastgru" else " (× fastgru)")
                                                  for f in frameworks)
              + " | best peer | fastgru / best peer | target (#18) | met | target (#6) | met |")
    lines = [header, "|" + "---|" * (8 + len(frameworks))]
    for name in shape_names:
        for n in thread_counts:
            base = index.get(("fastgru", n, name), {}).get("median_ms")
            cells = []
            for f in frameworks:
                entry = index.get((f, n, name), {})
                v = entry.get("median_ms")
                mark = "†" if entry.get("busy_rounds") else ""
                if "error" in entry:
                    cells.append("FAILED CHECK")
                elif (f, n) in skipped:
                    cells.append("skipped")
                elif (f, n) in failed:
                    cells.append("FAILED")
                elif v is None:
                    cells.append("—")
                elif f == "fastgru" or base is None:
                    cells.append(f"{v:.3f}{mark}")
                else:
                    cells.append(f"{v:.3f}{mark} ({v / base:.1f}×)")
            row = rows[(name, n)]
            target = f"≤ {row['target']:g}" if row.get("target") is not None else "—"
            met = "—" if "met" not in row else ("yes" if row["met"] else "**no**")
            target6 = f"≤ {row['target_issue6']:g}" if row.get("target_issue6") is not None else "—"
            met6 = "—" if "met_issue6" not in row else ("yes" if row["met_issue6"] else "**no**")
            cells += [row.get("best_peer", "—"), f"{row['ratio']:.2f}" if "ratio" in row else "—", target, met,
                      target6, met6]
            lines.append(f"| {name} {_dims(name, mode)} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(results, frameworks, shape_names, thread_counts, mode) -> str:
    """min–max ms over every timed call of every round (the medians' spread)."""
    index = _index(results)
    lines = ["| shape | threads | " + " | ".join(f"{f} min–max ms" for f in frameworks) + " |",
             "|" + "---|" * (2 + len(frameworks))]
    for name in shape_names:
        for n in thread_counts:
            cells = []
            for f in frameworks:
                e = index.get((f, n, name), {})
                cells.append(f"{e['min_ms']:.3f}–{e['max_ms']:.3f}" if "min_ms" in e and "median_ms" in e else "—")
            lines.append(f"| {name} {_dims(name, mode)} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cores_used(results) -> list[str]:
    """Per framework and thread count: the range of its CPU time / wall time over its timed loops, which
    shows whether its thread setting held (a 1-thread worker near 1.0). Only loops of 0.1 s and more: the
    kernel brings a running thread's CPU time up to date at scheduler ticks, which blurs shorter loops."""
    out = []
    for r in results:
        v = [c["own_core"] for s in r.get("results", []) for c in s.get("cpu", [])
             if "own_core" in c and c.get("wall_s", 0) >= 0.1]  # (every window is, unless made by hand)
        if v:
            out.append(f"{r['framework']} {r['threads']}t {min(v):.2f}–{max(v):.2f}")
    return out


def busy_notes(results) -> list[str]:
    """One line per figure whose timed loop, in some round, ran while other processes used the CPU."""
    notes = []
    for r in results:
        for s in r.get("results", []):
            for i in s.get("busy_rounds", []):
                c = s["cpu"][i - 1]
                what = []
                if c.get("others_core") is not None:
                    what.append(f"other processes used {c['others_core']:.0%} of a core (steal {c['steal_core']:.0%})")
                if c.get("wait_core") is not None:
                    what.append(f"its threads waited for a CPU {c['wait_core']:.0%} of the time")
                notes.append(f"{s['shape']} {r['threads']}t {r['framework']}: round {i}, over {c['wall_s']:.2f} s: "
                             + ", ".join(what))
    return notes


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
        entries = [index.get((f, n, s), {}) for s, n in groups]
        vals = np.array([e.get("median_ms", np.nan) for e in entries])
        lo = np.array([e.get("min_ms", np.nan) if "median_ms" in e else np.nan for e in entries])
        hi = np.array([e.get("max_ms", np.nan) if "median_ms" in e else np.nan for e in entries])
        ax.bar(np.arange(len(groups)) + i * width, vals, width, label=f,
               yerr=np.nan_to_num([vals - lo, hi - vals]), error_kw={"elinewidth": 0.6, "capsize": 1.5})
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{s}\n{n} thr" for s, n in groups])
    ax.set_yscale("log")
    ax.set_ylabel("median ms (whiskers: min–max; log scale)\nlower is better")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_references(outdir, shape_names) -> None:
    """The float64 NumPy GRU's last state for each inference shape, for the workers' checks."""
    from numpy_gru import numpy_gru

    from fastgru.bench import random_gru_problem

    for name in shape_names:
        x, w, u, b = (a.astype(np.float64) for a in random_gru_problem(*INFER_SHAPES[name]))
        np.save(Path(outdir) / f"ref-{name}.npy", numpy_gru(x, w, u, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["infer", "train"], default="infer")
    parser.add_argument("--shapes", default=None, help="comma-separated (default: all of the mode's shapes)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--frameworks", default=None,
                        help="default: fastgru,torch,onnxruntime,keras,keras-xla (train: no onnxruntime)")
    parser.add_argument("--repeats", type=int, default=30, help="at most this many timed calls per figure")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of timed calls per figure and round, about")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians over rounds")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |output - reference| accepted before timing; train: on the step-1 loss")
    parser.add_argument("--json", default=None, help="write results here")
    parser.add_argument("--plot", default=None, help="write a log-scale bar chart here (PNG)")
    parser.add_argument("--markdown", default=None, help="also write the printed Markdown report here")
    parser.add_argument("--baseline", default=None,
                        help="git revision(s) of fastgru to time beside today's, comma-separated (before/after)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = INFER_SHAPES if args.mode == "infer" else TRAIN_SHAPES
    args.shapes = args.shapes or ",".join(shapes)
    if args.worker:
        args.threads = int(args.threads)
        worker(args)
        return
    known = list(peers_module().INFER if args.mode == "infer" else peers_module().TRAIN)
    frameworks = (args.frameworks or ",".join(known)).split(",")
    thread_counts = [int(t) for t in args.threads.split(",")]
    shape_names = args.shapes.split(",")
    for what, given, allowed in (("shape", shape_names, list(shapes)), ("framework", frameworks, known)):
        bad = [g for g in given if g not in allowed]
        if bad:
            parser.error(f"unknown {what}(s) {bad} for --mode {args.mode}; choose from {allowed}")
    if any(n < 1 or n > (os.cpu_count() or 1) for n in thread_counts):
        parser.error(f"--threads must be between 1 and {os.cpu_count()}, got {thread_counts}")
    args.baselines = {}
    baseline_dir = tempfile.TemporaryDirectory()
    for ref in (args.baseline.split(",") if args.baseline else []):
        name = f"fastgru@{ref}"
        args.baselines[name] = export_baseline(ref, Path(baseline_dir.name))
        frameworks.insert(frameworks.index("fastgru") + 1 if "fastgru" in frameworks else 0, name)
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if k != "threadpools"), flush=True)
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
    try:
        env["loadavg_at_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    versions = {r["framework"]: r["version"] for r in results if r.get("version")}
    text = report(results, env, versions, notes, frameworks, shape_names, thread_counts, args)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"mode": args.mode, "environment": env, "versions": versions, "command": sys.argv[1:],
             "settings": {k: getattr(args, k) for k in ("repeats", "budget", "rounds", "tolerance")},
             "targets": INFER_TARGETS if args.mode == "infer" else TRAIN_TARGETS,
             "targets_issue6": INFER_TARGETS_ISSUE6 if args.mode == "infer" else TRAIN_TARGETS_ISSUE6,
             "summary": summary(results, frameworks, shape_names, thread_counts, args.mode),
             "busy": busy_notes(results), "results": results, "agreement": notes}, indent=2))
    if args.plot:
        title = f"{_what(args.mode)}; {env['cpu']}, OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']}"
        plot(results, frameworks, shape_names, thread_counts, args.plot, title)
    baseline_dir.cleanup()


def _what(mode) -> str:
    return "GRU forward (last state)" if mode == "infer" else "one training step (forward, backward, Adam)"


def report(results, env, versions, notes, frameworks, shape_names, thread_counts, args) -> str:
    """The Markdown report: environment, thread pools, problems, the tables, busy-CPU and agreement notes."""
    out = ["Environment: " + ", ".join(f"{k}={v}" for k, v in env.items() if k != "threadpools") + ".",
           "", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
           "Thread pools (threadpoolctl), compare.py's process: " + describe_pools(env.get("threadpools", [])) + "."]
    for r in results:
        if "threadpools" in r:
            layer = f", Numba threading layer {r['numba_threading_layer']}" if "numba_threading_layer" in r else ""
            out.append(f"* {r['framework']}, {r['threads']} thread(s): {describe_pools(r['threadpools'])}{layer}")
    used = cores_used(results)
    if used:
        out += ["", "Cores each worker kept busy during its timed loops (its CPU time / wall time, lowest–highest "
                    "over shapes and rounds; spinning threads count): " + ", ".join(used) + "."]
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
        out += ["", "Problems:", ""] + [f"* {p}" for p in problems]
    out += ["", f"{_what(args.mode)}, median ms over {args.rounds} round(s); fastgru / best peer: below 1, "
                f"fastgru is faster; targets from issue #18 (and issue #6's)", "",
            table(results, frameworks, shape_names, thread_counts, args.mode), "",
            "Spread: fastest and slowest timed call over all rounds", "",
            spread_table(results, frameworks, shape_names, thread_counts, args.mode)]
    busy = busy_notes(results)
    if busy:
        out += ["", f"† measured while other processes used the CPU: during the timed loop (in the round given; "
                    f"the window is at least {CONTENTION_WINDOW_S:g} s, untimed calls of the same function "
                    f"following a shorter loop) other processes plus steal used more than {CONTENTION_LIMIT:.0%} "
                    "of a core (/proc/stat's busy time on the worker's CPUs less the worker's own CPU time); "
                    "also given, the worker's threads' run-queue wait (schedstat):", ""]
        out += [f"* {b}" for b in busy]
    else:
        out += ["", f"No timed loop shared the CPU with another process (other processes plus steal under "
                    f"{CONTENTION_LIMIT:.0%} of a core by /proc/stat less the worker's own CPU time, over windows "
                    f"of at least {CONTENTION_WINDOW_S:g} s)."]
    if notes:
        out += ["", "Output agreement:", "", "```"] + notes + ["```"]
        if args.mode == "train" and "torch" in frameworks:
            out.append("(step 2 follows one Adam update; PyTorch adds Adam's epsilon after the bias correction, "
                       "Keras and fastgru before it, so PyTorch's step-2 loss differs by a fraction of a percent "
                       "of the step's change; a difference above 5% is flagged)")
    return "\n".join(out)


def peers_module():
    import peers

    return peers


if __name__ == "__main__":
    main()
