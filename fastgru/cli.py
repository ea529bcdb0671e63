"""The ``fastgru`` command: demo | bench | info FILE | predict FILE INPUT.npy -o OUT.npy."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import fastgru as fg
    from fastgru.data import CLASS_NAMES, load_waveforms
    from fastgru.layers import GRU, Dense, Input

    if args.threads:
        fg.set_num_threads(args.threads)
    fg.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_waveforms()
    print(f"fastgru {fg.__version__} demo: classify noisy {', '.join(CLASS_NAMES)} signals "
          f"({len(x_train)} training, {len(x_test)} test sequences of {x_train.shape[1]} steps)\n")
    model = fg.Sequential([Input(shape=x_train.shape[1:]), GRU(32), Dense(len(CLASS_NAMES), activation="softmax")])
    model.summary()
    model.compile(optimizer=fg.optimizers.Adam(learning_rate=0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1, verbose=1)
    train_s = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"\ntraining: {train_s:.1f} s for {args.epochs} epochs (first run includes Numba's one-off compile)")
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo.keras"
        model.save(path)
        reloaded = fg.load_model(path)
        same = np.allclose(reloaded.predict(x_test), model.predict(x_test), atol=1e-6)
        print(f"saved as a Keras 3 .keras file and reloaded: predictions identical = {same}")

    model.predict(x_test)
    runs = [time.perf_counter()]
    for _ in range(10):
        model.predict(x_test)
        runs.append(time.perf_counter())
    per_call = float(np.median(np.diff(runs)))
    print(f"predict on {len(x_test)} sequences: {per_call * 1e3:.2f} ms (median of 10, "
          f"{fg.get_num_threads()} threads)")
    labels = model.predict(x_test[:5]).argmax(axis=1)
    print("first five test sequences:", ", ".join(
        f"{CLASS_NAMES[p]} (true {CLASS_NAMES[t]})" for p, t in zip(labels, y_test[:5])))
    return 0 if accuracy > 0.8 else 1


def _bench(args: argparse.Namespace) -> int:
    from fastgru import bench

    shapes = args.shapes.split(",") if args.shapes else None
    threads = [int(t) for t in args.threads.split(",")]
    env = bench.environment()
    results = bench.run(shapes, threads, args.repeats)
    if args.json:
        print(json.dumps({"environment": env, "results": results}, indent=2))
        return 0
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"{'shape':<6}{'B x T x D -> H':<22}{'threads':>8}{'median ms':>12}")
    for r in results:
        print(f"{r['shape']:<6}{r['dims']:<22}{r['threads']:>8}{r['median_ms']:>12.3f}")
    print("\nPeers side by side (PyTorch, ONNX Runtime, Keras): python benchmarks/compare.py")
    return 0


def _info(args: argparse.Namespace) -> int:
    from fastgru.io import describe

    print(describe(args.file))
    return 0


def _predict(args: argparse.Namespace) -> int:
    import fastgru as fg

    model = fg.load_model(args.file)
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"fastgru predict: cannot read {args.input} as a .npy array: {exc}") from None
    y = model.predict(x, batch_size=args.batch_size)
    np.save(args.output, y)
    print(f"wrote {args.output}: shape {tuple(np.shape(y))}, dtype {np.asarray(y).dtype}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgru", description="Fast CPU GRU inference and training.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train a GRU on the bundled waveform data set, save, reload, predict")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_demo)
    p = sub.add_parser("bench", help="time fastgru's GRU forward on the reference shapes S1-S5")
    p.add_argument("--shapes", default=None, help="comma-separated subset of S1,S2,S3,S4,S5")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_bench)
    p = sub.add_parser("info", help="summary, Keras version and format of a .keras / .h5 model file")
    p.add_argument("file")
    p.set_defaults(func=_info)
    p = sub.add_parser("predict", help="run a model file on a .npy input and save the outputs")
    p.add_argument("file")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--batch-size", type=int, default=None)
    p.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from fastgru.errors import FastGRUError

    try:
        return args.func(args)
    except FastGRUError as exc:
        print(f"fastgru {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
