"""Recurrent models with a convolutional front, fastgru against Keras (TensorFlow, ``tf.function``), inference.

    python benchmarks/crnn_vs_keras.py                   # prints a Markdown table
    python benchmarks/crnn_vs_keras.py --json out.json   # also the raw figures

Models (Keras's examples at their sizes): ``ocr`` — the captcha OCR model, 16 images 200×50: Conv2D(32) +
MaxPooling2D, Conv2D(64) + MaxPooling2D, Reshape, Dense(64), two Bidirectional LSTMs (128, 64), a softmax per
step; ``nowcast`` — next-frame prediction, 4 sequences of 10 frames 32×32: three ConvLSTM2D(16) with
BatchNormalization, Conv3D(1). Each (framework, threads) runs in its own subprocess with its thread pools
pinned; the same weights (made in Keras, given to fastgru with ``fg.from_keras``), outputs compared before
timing; medians of repeated calls after warm-up, over interleaved rounds (the median of the per-round medians).
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

MODELS = ("ocr", "nowcast")


def median_ms(fn, budget_s: float = 2.0, repeats: int = 20) -> float:
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


def build(keras, name: str):
    """(Keras model, input batch) of ``name``, seeded."""
    keras.utils.set_random_seed(0)
    L = keras.layers
    rng = np.random.default_rng(0)
    if name == "ocr":
        inp = keras.Input((200, 50, 1))
        h = L.MaxPooling2D()(L.Conv2D(32, 3, activation="relu", padding="same")(inp))
        h = L.MaxPooling2D()(L.Conv2D(64, 3, activation="relu", padding="same")(h))
        h = L.Dense(64, activation="relu")(L.Reshape((50, 12 * 64))(h))
        h = L.Bidirectional(L.LSTM(128, return_sequences=True))(h)
        h = L.Bidirectional(L.LSTM(64, return_sequences=True))(h)
        return keras.Model(inp, L.Dense(20, activation="softmax")(h)), rng.random((16, 200, 50, 1)).astype("float32")
    inp = keras.Input((None, 32, 32, 1))
    h = inp
    for k in (5, 3, 1):
        h = L.BatchNormalization()(L.ConvLSTM2D(16, k, padding="same", return_sequences=True, activation="relu")(h))
    model = keras.Model(inp, L.Conv3D(1, 3, activation="sigmoid", padding="same")(h))
    return model, (rng.random((4, 10, 32, 32, 1)) > 0.8).astype("float32")


def worker(framework: str, threads: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import fastgru as fg

    fg.set_num_threads(threads)
    out = {}
    for name in MODELS:
        km, x = build(keras, name)
        if framework == "keras":
            fn = tf.function(lambda a, km=km: km(a, training=False))
            call = lambda fn=fn, x=x: fn(x).numpy()  # noqa: E731
        else:
            ours = fg.from_keras(km)
            call = lambda ours=ours, x=x: ours.predict(x)  # noqa: E731
        diff = float(np.abs(np.asarray(call()) - km.predict(x, verbose=0)).max())
        out[name] = {"ms": median_ms(call), "max_diff": diff}
    return out


def run(framework: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads),
               TF_NUM_INTEROP_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--worker", framework, str(threads)], env=env,
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
            for framework in ("fastgru", "keras"):
                for name, fig in run(framework, threads).items():
                    runs.setdefault((framework, threads, name), []).append(fig)
    results = [{"framework": f, "threads": t, "model": m, "ms": float(np.median([r["ms"] for r in figs])),
                "max_diff": max(r["max_diff"] for r in figs)} for (f, t, m), figs in runs.items()]
    from fastgru.bench import environment_line

    print(f"Machine: {environment_line()}; {args.rounds} rounds\n")
    print("| model | threads | fastgru ms | Keras ms | fastgru / Keras | largest output difference |")
    print("|---|---|---|---|---|---|")
    index = {(r["framework"], r["threads"], r["model"]): r for r in results}
    for name in MODELS:
        for threads in thread_counts:
            ours, theirs = index[("fastgru", threads, name)], index[("keras", threads, name)]
            print(f"| {name} | {threads} | {ours['ms']:.1f} | {theirs['ms']:.1f} | {ours['ms'] / theirs['ms']:.2f} | "
                  f"{max(ours['max_diff'], theirs['max_diff']):.1e} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
