"""Start-up time: a fresh Python process that imports fastgru, loads a ``.keras`` file and predicts once.

    python benchmarks/startup.py                     # warm and cold Numba cache, GRU and LSTM models
    python benchmarks/startup.py --cold-runs 0       # warm cache only (seconds)
    python benchmarks/startup.py --json docs/img/startup.json --markdown startup.md

What is timed is the wall time of ``python -c "import fastgru as fg; m = fg.load_model(PATH);
m.predict(x)"`` from the parent (interpreter start included), for two small models that fastgru itself
saves into a temporary folder: GRU(64) on 10 x 50 + Dense(1) (the S2 problem) and the same with
LSTM(64). Each child also reports its own split (import, load_model, predict) and, from Numba's
``NUMBA_DEBUG_CACHE=1`` output, which kernels it loaded from the cache and which it compiled.

* warm cache: one untimed run fills Numba's cache (``cache=True`` writes ``__pycache__/*.nbi|nbc`` next
  to fastgru's kernel modules, or under ``NUMBA_CACHE_DIR`` when that is set), then the median
  (min–max) of ``--warm-runs`` runs. Issue #6's target: at most 0.6 s.
* cold cache: ``NUMBA_CACHE_DIR`` set to a new empty folder for each of ``--cold-runs`` runs, so every
  kernel on the path is compiled (Python's own bytecode cache stays warm). Target (issue #16): at most 10 s.
* Numba's own floor, always measured: a child that imports numpy and numba and calls one trivial
  ``@njit(cache=True)`` function loaded from a filled cache. No Numba program starts faster than this on the
  machine, so it is the yardstick for fastgru's warm figure.
* reference, when TensorFlow and Keras are installed: ``import tensorflow, keras`` alone, and Keras
  loading and predicting the same file (``--reference-runs`` runs each).

Run it on a quiet machine: every figure is a whole process, so other processes' load adds directly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WARM_TARGET_S = 0.6
COLD_TARGET_S = 10.0

#: the child: import, load, predict once, with its own split printed as one JSON line
CHILD = """
import json, os, time
t0 = time.perf_counter()
compiles, stack = [], []
if os.environ.get("STARTUP_COMPILE_TIMES"):  # Numba's compile events: seconds per compiled function
    from numba.core import event

    class Timer(event.Listener):
        def on_start(self, e):
            stack.append(time.perf_counter())

        def on_end(self, e):
            d = e.data["dispatcher"].py_func
            compiles.append([d.__module__.rsplit(".", 1)[-1] + "." + d.__qualname__, time.perf_counter() - stack.pop(),
                             len(stack)])

    event.register("numba:compile", Timer())
t1 = time.perf_counter()
import numpy as np
import fastgru as fg
t2 = time.perf_counter()
m = fg.load_model({path!r})
t3 = time.perf_counter()
y = m.predict(np.load({x!r}), verbose=0)
t4 = time.perf_counter()
assert y.shape[0] == {batch} and np.all(np.isfinite(y))
print("STARTUP " + json.dumps({{"import_s": t2 - t1, "load_s": t3 - t2, "predict_s": t4 - t3,
                                "compile_times": compiles}}))
"""

KERAS_IMPORT = "import tensorflow, keras"
KERAS_PREDICT = """
import numpy as np
import keras
m = keras.saving.load_model({path!r})
y = m.predict(np.load({x!r}), verbose=0)
"""

#: Numba's floor: one trivial cached kernel in a module of its own (``python -c`` code cannot be cached)
FLOOR_MODULE = """
from numba import njit


@njit(cache=True, nogil=True)
def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s
"""
FLOOR_CHILD = """
import sys
sys.path.insert(0, {folder!r})
import numpy as np
import startup_floor_kernel
assert startup_floor_kernel.total(np.ones(3, np.float32)) == 3.0
"""
FLOOR_NAME = "Numba's floor: import numpy, numba + one cached @njit call"

_CACHE_LINE = re.compile(r"\[cache\] data (saved to|loaded from) '([^']+)'")


def cache_events(text: str) -> dict:
    """Kernels compiled (cache data saved) and loaded (cache data read) from NUMBA_DEBUG_CACHE=1 output,
    as ``module.function-line`` names, plus Numba's 'Cannot cache' warnings."""
    out = {"compiled": [], "loaded": [], "not_cacheable": []}
    for line in text.splitlines():
        m = _CACHE_LINE.search(line)
        if m:
            name = re.sub(r"\.py\d+\.\d+\.nbc$", "", Path(m.group(2)).name)
            out["compiled" if m.group(1) == "saved to" else "loaded"].append(name)
        elif "Cannot cache" in line:
            out["not_cacheable"].append(line.strip())
    return out


def run_child(code: str, env: dict, timeout: float) -> dict:
    """Wall time of one fresh ``python -c code`` and what it printed."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"the child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    # the child's CPU time (all its threads) depends less on other processes' load than its wall time
    out = {"wall_s": wall, "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}
    for line in proc.stdout.splitlines():
        if line.startswith("STARTUP "):
            out.update(json.loads(line[len("STARTUP "):]))
    events = cache_events(proc.stdout + "\n" + proc.stderr)
    out["compiled"], out["loaded"] = events["compiled"], len(events["loaded"])
    if events["not_cacheable"]:
        out["not_cacheable"] = events["not_cacheable"]
    return out


def stats(runs: list[dict], key: str = "wall_s") -> dict:
    v = np.array([r[key] for r in runs if key in r])
    if not len(v):
        return {}
    return {"median_s": float(np.median(v)), "min_s": float(v.min()), "max_s": float(v.max()), "runs": len(v)}


def make_models(folder: Path, cells=("GRU", "LSTM")) -> dict:
    """Small models saved by fastgru (S2's problem: batch 32, 10 steps, 50 features, 64 units, Dense(1))
    and the input they predict on."""
    import fastgru as fg
    from fastgru.layers import GRU, LSTM, Dense, Input

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 10, 50)).astype(np.float32)
    np.save(folder / "x.npy", x)
    paths = {}
    for cell in cells:
        layer = {"GRU": GRU, "LSTM": LSTM}[cell](64)
        model = fg.Sequential([Input(shape=(10, 50)), layer, Dense(1)])
        path = folder / f"{cell.lower()}.keras"
        model.save(str(path))
        paths[cell] = path
    return {"x": folder / "x.npy", "batch": len(x), "models": paths}


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def fmt(st: dict) -> str:
    return f"{st['median_s']:.2f} ({st['min_s']:.2f}–{st['max_s']:.2f})" if st else "—"


def split(runs: list[dict]) -> str:
    parts = [f"{k[:-2]} {np.median([r[k] for r in runs]):.2f}" for k in ("import_s", "load_s", "predict_s")
             if runs and all(k in r for r in runs)]
    return ", ".join(parts) or "—"


def report(result: dict) -> str:
    lines = ["| model | Numba cache | wall s, median (min–max) | CPU s (median) | in the child, s (median) | "
             "kernels compiled | target (wall) | met |", "|---|---|---|---|---|---|---|---|"]
    for cell, r in result["models"].items():
        for kind, target in (("warm", WARM_TARGET_S), ("cold", COLD_TARGET_S)):
            if not r.get(kind):
                continue
            st = stats(r[kind])
            compiled = int(np.median([len(x["compiled"]) for x in r[kind]]))
            met = "yes" if st["median_s"] <= target else "**no**"
            cpu = stats(r[kind], "cpu_s")
            cpu_cell = f"{cpu['median_s']:.2f}" if cpu else "—"
            lines.append(f"| {cell}(64) + Dense(1), 32×10×50 | {kind} | {fmt(st)} | {cpu_cell} | {split(r[kind])} | "
                         f"{compiled} | ≤ {target:g} | {met} |")
    for name, runs in result.get("reference", {}).items():
        cpu = stats(runs, "cpu_s")
        lines.append(f"| reference: `{name}` | — | {fmt(stats(runs))} | "
                     + (f"{cpu['median_s']:.2f}" if cpu else "—") + " | — | — | — | — |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-runs", type=int, default=5, help="timed runs with a filled cache (default 5)")
    parser.add_argument("--cold-runs", type=int, default=3, help="timed runs, each with an empty cache (default 3)")
    parser.add_argument("--reference-runs", type=int, default=3,
                        help="runs of `import tensorflow, keras` and of Keras's load + predict (0: none)")
    parser.add_argument("--models", default="GRU,LSTM", help="comma-separated: GRU, LSTM")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per child process")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--markdown", default=None, help="also write the printed table here")
    args = parser.parse_args()
    cells = args.models.split(",")
    if set(cells) - {"GRU", "LSTM"}:
        parser.error(f"--models: GRU and/or LSTM, got {args.models!r}")

    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["KERAS_BACKEND"] = "tensorflow"
    debug_env = {**env, "NUMBA_DEBUG_CACHE": "1"}
    result = {"environment": {"python": sys.version.split()[0], "cores": os.cpu_count(),
                              "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "(unset: __pycache__ next to "
                                                                                      "the kernel modules)")},
              "targets_s": {"warm": WARM_TARGET_S, "cold": COLD_TARGET_S}, "models": {}}
    try:
        result["environment"]["loadavg_at_start"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        files = make_models(Path(tmp), cells)
        for cell, path in files["models"].items():
            code = CHILD.format(path=str(path), x=str(files["x"]), batch=files["batch"])
            r = result["models"][cell] = {}
            print(f"{cell}: filling the cache ...", file=sys.stderr, flush=True)
            r["fill"] = run_child(code, debug_env, args.timeout)
            r["warm"] = []
            for i in range(args.warm_runs):
                print(f"{cell}: warm run {i + 1}/{args.warm_runs} ...", file=sys.stderr, flush=True)
                r["warm"].append(run_child(code, debug_env, args.timeout))
            r["cold"] = []
            for i in range(args.cold_runs):
                print(f"{cell}: cold run {i + 1}/{args.cold_runs} (empty NUMBA_CACHE_DIR) ...", file=sys.stderr,
                      flush=True)
                with tempfile.TemporaryDirectory() as cache:
                    r["cold"].append(run_child(code, {**debug_env, "NUMBA_CACHE_DIR": cache,
                                                      "STARTUP_COMPILE_TIMES": "1"}, args.timeout))
        (Path(tmp) / "startup_floor_kernel.py").write_text(FLOOR_MODULE)
        floor_code = FLOOR_CHILD.format(folder=tmp)
        run_child(floor_code, env, args.timeout)  # fills its cache
        floor = result.setdefault("reference", {})[FLOOR_NAME] = []
        for i in range(max(args.warm_runs, 1)):
            print(f"Numba's floor: run {i + 1} ...", file=sys.stderr, flush=True)
            floor.append(run_child(floor_code, env, args.timeout))
        if args.reference_runs and _have("tensorflow") and _have("keras"):
            ref = result["reference"]
            ref[KERAS_IMPORT] = []
            first = next(iter(files["models"].values()))
            predict = KERAS_PREDICT.format(path=str(first), x=str(files["x"]))
            ref[f"keras.saving.load_model + predict ({first.stem.upper()})"] = []
            for i in range(args.reference_runs):
                print(f"reference run {i + 1}/{args.reference_runs} ...", file=sys.stderr, flush=True)
                for name, code in ((KERAS_IMPORT, KERAS_IMPORT), (f"keras.saving.load_model + predict "
                                                                   f"({first.stem.upper()})", predict)):
                    ref[name].append(run_child(code, env, args.timeout))
    try:
        result["environment"]["loadavg_at_end"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    text = report(result)
    print("environment: " + ", ".join(f"{k}={v}" for k, v in result["environment"].items()))
    floor_runs = result.get("reference", {}).get(FLOOR_NAME)
    if floor_runs:
        floor_s = stats(floor_runs)["median_s"]
        above = [f"{cell} {stats(r['warm'])['median_s'] - floor_s:+.2f} s" for cell, r in result["models"].items()
                 if r.get("warm")]
        text += (f"\n\nwarm start above Numba's floor ({floor_s:.2f} s, median): " + ", ".join(above)
                 + (f"; the warm target {WARM_TARGET_S:g} s is below the floor on this machine"
                    if floor_s > WARM_TARGET_S else ""))
    print("\n" + text)
    for cell, r in result["models"].items():
        warm_compiled = sorted({k for x in r["warm"] for k in x["compiled"]})
        print(f"\n{cell}: kernels compiled in a warm-cache run (should be none): {', '.join(warm_compiled) or 'none'}")
        if r["cold"]:
            cold = r["cold"][0]
            print(f"{cell}: kernels compiled in a cold-cache run ({len(cold['compiled'])}): "
                  + ", ".join(cold["compiled"]))
            top = [c for c in cold.get("compile_times", []) if c[2] == 0]  # outermost compiles (inclusive)
            if top:
                print(f"{cell}: compile seconds of the outermost compiled functions (callees included), cold run 1: "
                      + ", ".join(f"{n} {t:.1f}" for n, t, _ in sorted(top, key=lambda c: -c[1])))
        for x in r["warm"] + r["cold"]:
            for warning in x.get("not_cacheable", []):
                print(f"{cell}: {warning}")
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
