"""The benchmark harness's own logic (benchmarks/compare.py, benchmarks/startup.py) on made-up figures:
busy-CPU detection, merging rounds, best peer and target, the tables, Numba cache log parsing.
Nothing is timed here and no peer framework is needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

compare = pytest.importorskip("compare")
startup = pytest.importorskip("startup")

STAT = """cpu  300 0 30 900 0 0 0 7 0 0
cpu0 100 0 10 300 0 0 0 3 0 0
cpu1 200 0 20 600 0 1 2 4 0 0
intr 12 0 0
"""


def test_cpu_jiffies_sums_busy_and_steal_of_the_given_cpus():
    assert compare.cpu_jiffies({0, 1}, STAT) == (100 + 10 + 200 + 20 + 1 + 2, 7)
    assert compare.cpu_jiffies({1}, STAT) == (223, 4)
    assert compare.cpu_jiffies({5}, STAT) == (0, 0)


def test_contention_flags_other_processes_and_steal():
    quiet = compare.contention(1.0, busy_s=1.02, steal_s=0.0, own_s=1.0, n_cpus=2, tick_s=0.01, wait_s=0.001)
    assert not quiet["flagged"] and quiet["others_core"] == pytest.approx(0.02) and quiet["own_core"] == 1.0
    busy = compare.contention(1.0, busy_s=1.5, steal_s=0.0, own_s=1.0, n_cpus=2, tick_s=0.01, wait_s=0.0)
    assert busy["flagged"] and busy["others_core"] == pytest.approx(0.5)
    stolen = compare.contention(1.0, busy_s=1.0, steal_s=0.3, own_s=1.0, n_cpus=2, tick_s=0.01)
    assert stolen["flagged"] and "wait_core" not in stolen
    # the run-queue wait is recorded, not judged (it may be the process's own threads)
    waited = compare.contention(1.0, busy_s=1.0, steal_s=0.0, own_s=1.0, n_cpus=2, tick_s=0.01, wait_s=0.5)
    assert not waited["flagged"] and waited["wait_core"] == pytest.approx(0.5)
    # a window shorter than 10 ticks is not judged
    short = compare.contention(0.05, busy_s=0.1, steal_s=0.0, own_s=0.0, n_cpus=2, tick_s=0.01)
    assert not short["flagged"] and short["others_core"] is None


def test_timed_loop_reports_median_min_max_and_cpu():
    calls = [0]

    def run():
        calls[0] += 1

    t = compare.timed_loop(run, repeats=5, budget_s=1.0, warmup=2)
    assert t["calls"] == 5 and t["cpu"]["untimed_calls"] > 0 and calls[0] == 7 + t["cpu"]["untimed_calls"]
    assert t["min_ms"] <= t["median_ms"] <= t["max_ms"]
    assert {"wall_s", "flagged", "own_core"} <= set(t["cpu"]) and t["cpu"]["wall_s"] >= compare.CONTENTION_WINDOW_S


def _run(framework, threads, shape, median, lo, hi, flagged=False):
    cpu = {"wall_s": 1.0, "others_core": 0.5 if flagged else 0.0, "steal_core": 0.0, "flagged": flagged}
    return {"framework": framework, "threads": threads, "version": "1",
            "results": [{"shape": shape, "median_ms": median, "min_ms": lo, "max_ms": hi, "calls": 3, "cpu": cpu}]}


def test_merge_summary_and_tables():
    runs = [_run("fastgru", 1, "S2", 1.0, 0.9, 1.2), _run("torch", 1, "S2", 3.0, 2.9, 3.5),
            _run("onnxruntime", 1, "S2", 2.5, 2.4, 2.6, flagged=True),
            _run("fastgru", 1, "S2", 1.2, 1.1, 1.3), _run("torch", 1, "S2", 2.8, 2.0, 4.0),
            _run("onnxruntime", 1, "S2", 2.3, 2.2, 2.4),
            {"framework": "keras-xla", "threads": 1, "skipped": "not installed"}]
    results = compare.merge_rounds(runs)
    fg = next(r for r in results if r["framework"] == "fastgru")["results"][0]
    assert fg["median_ms"] == pytest.approx(1.1) and (fg["min_ms"], fg["max_ms"]) == (0.9, 1.3)
    ort = next(r for r in results if r["framework"] == "onnxruntime")["results"][0]
    assert ort["busy_rounds"] == [1]
    frameworks = ["fastgru", "torch", "onnxruntime", "keras-xla"]
    (row,) = compare.summary(results, frameworks, ["S2"], [1], "infer")
    assert row["best_peer"] == "onnxruntime" and row["ratio"] == pytest.approx(1.1 / 2.4)
    assert row["target"] == 0.85 and row["met"] is True  # issue #18
    assert row["target_issue6"] == 0.5 and row["met_issue6"] is True
    text = compare.table(results, frameworks, ["S2"], [1], "infer")
    assert "| onnxruntime | 0.46 | ≤ 0.85 | yes | ≤ 0.5 | yes |" in text and "2.400† (2.2×)" in text and "skipped" in text
    assert "0.900–1.300" in compare.spread_table(results, frameworks, ["S2"], [1], "infer")
    assert "fastgru 1t" in compare.cores_used([{"framework": "fastgru", "threads": 1, "results": [
        {"shape": "S2", "cpu": [{"own_core": 0.98, "wall_s": 0.5}, {"own_core": 1.01, "wall_s": 0.5}]}]}])[0]
    (note,) = compare.busy_notes(results)
    assert note.startswith("S2 1t onnxruntime: round 1") and "50% of a core" in note


def test_summary_marks_a_missed_target():
    results = compare.merge_rounds([_run("fastgru", 2, "seed", 1.0, 1.0, 1.0), _run("torch", 2, "seed", 1.5, 1.5, 1.5)])
    (row,) = compare.summary(results, ["fastgru", "torch"], ["seed"], [2], "train")
    assert row["met"] is False and row["target"] == compare.TRAIN_TARGETS["seed"] == 0.4
    assert row["met_issue6"] is False
    assert "| torch | 0.67 | ≤ 0.4 | **no** | ≤ 0.5 | **no** |" in compare.table(results, ["fastgru", "torch"], ["seed"], [2], "train")


def test_startup_parses_numba_cache_log():
    log = ("[cache] index loaded from '/x/__pycache__/gru.gru_forward_parallel-137.py311.nbi'\n"
           "[cache] data loaded from '/x/__pycache__/gru.gru_forward_parallel-137.py311.1.nbc'\n"
           "[cache] data saved to '/c/fastgru/_kernels/linalg.matmul_into-19.py311.2.nbc'\n"
           "NumbaWarning: Cannot cache compiled function \"f\" as it uses dynamic globals\n")
    events = startup.cache_events(log)
    assert events["loaded"] == ["gru.gru_forward_parallel-137"]
    assert events["compiled"] == ["linalg.matmul_into-19"]
    assert len(events["not_cacheable"]) == 1


def test_startup_report_table():
    run = {"wall_s": 0.5, "cpu_s": 0.4, "import_s": 0.3, "load_s": 0.05, "predict_s": 0.1, "compiled": [], "loaded": 9}
    cold = {**run, "wall_s": 20.0, "compiled": ["a", "b"]}
    text = startup.report({"models": {"GRU": {"warm": [run, run], "cold": [cold]}},
                           "reference": {"import tensorflow, keras": [{"wall_s": 2.0}]}})
    assert ("| GRU(64) + Dense(1), 32×10×50 | warm | 0.50 (0.50–0.50) | 0.40 "
            "| import 0.30, load 0.05, predict 0.10 | 0 | ≤ 0.6 | yes |") in text
    assert "| cold | 20.00 (20.00–20.00) |" in text and "| 2 | ≤ 10 | **no** |" in text
    assert "`import tensorflow, keras`" in text


def test_cli_bench_compare_arguments(capsys):
    from fastgru.cli import main

    assert main(["bench", "--mode", "train"]) == 2
    assert "add --compare" in capsys.readouterr().err
    assert main(["bench", "--compare", "--json"]) == 2
    assert "compare.py's own --json FILE after --" in capsys.readouterr().err
