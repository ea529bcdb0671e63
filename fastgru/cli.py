"""The ``fastgru`` command: ``demo``, ``predict``, ``info``, ``bench``.

Exit codes, as ``diff`` and ``grep`` use them: 0 success; 1 the command ran but its check failed
(``demo``: accuracy target missed or reloaded predictions differ); 2 trouble: bad arguments, a
missing or unreadable file, an input whose shape does not fit the model.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import CLIError, FastGRUError


def _demo(args: argparse.Namespace) -> int:
    from .cli_demo import run_demo

    return run_demo(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                    learning_rate=args.learning_rate, seed=args.seed, out=args.out, threads=args.threads)


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.compare:
        return _bench_compare(args)
    if args.compare_args or args.mode:
        raise CLIError("--mode and arguments after -- are for benchmarks/compare.py; add --compare")
    shapes = args.shapes.split(",") if args.shapes else None
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        raise CLIError(f"--threads expects comma-separated integers such as 1,2; got {args.threads!r}") from None
    unknown = sorted(set(shapes or ()) - set(bench.SHAPES))
    if unknown:
        raise CLIError(f"unknown shape(s) {', '.join(unknown)}; expected a subset of {','.join(bench.SHAPES)}")
    env = bench.environment()
    results = bench.run(shapes, threads, args.repeats or 20)
    if args.json:
        print(json.dumps({"environment": env, "results": results}, indent=2))
        return 0
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"{'shape':<6}{'B x T x D -> H':<22}{'threads':>8}{'median ms':>12}")
    for r in results:
        print(f"{r['shape']:<6}{r['dims']:<22}{r['threads']:>8}{r['median_ms']:>12.3f}")
    print("\nPeers side by side (PyTorch, ONNX Runtime, Keras): fastgru bench --compare "
          "(runs python benchmarks/compare.py in a source checkout)")
    return 0


def _bench_compare(args: argparse.Namespace) -> int:
    """``fastgru bench --compare``: the checkout's ``benchmarks/compare.py`` (fastgru against PyTorch, ONNX
    Runtime and Keras), which is not part of the installed package; its exit code is returned."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"
    if not script.is_file():
        raise CLIError("--compare runs benchmarks/compare.py from a source checkout of fastgru (an editable "
                       f"install), and there is none next to this fastgru ({script.parent} is missing); "
                       "without --compare, fastgru bench times fastgru alone")
    if args.json:
        raise CLIError("with --compare, give compare.py's own --json FILE after --, e.g. "
                       "fastgru bench --compare -- --json out.json --plot out.png")
    cmd = [sys.executable, str(script)]
    for option in ("mode", "shapes", "threads", "repeats"):
        if getattr(args, option) is not None:
            cmd += [f"--{option}", str(getattr(args, option))]
    cmd += args.compare_args
    return subprocess.call(cmd)


def _info(args: argparse.Namespace) -> int:
    from .io import describe

    print(describe(args.file))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .cli_predict import predict_file

    predict_file(args.model, args.input, args.output, batch_size=args.batch_size, key=args.key,
                 timesteps=args.timesteps, quiet=args.quiet)
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastgru`` command."""
    parser = argparse.ArgumentParser(prog="fastgru", description="Fast CPU GRU inference and training.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,predict,info,bench}")

    p = sub.add_parser("demo", help="train a GRU on a real bundled data set, save, reload, time inference",
                       description="Train the classic Keras GRU classifier on a bundled UCR/UEA data set, "
                                   "print its test accuracy, save it as demo.keras, reload it and time inference.")
    p.add_argument("--dataset", default="italy-power-demand", choices=["italy-power-demand", "japanese-vowels"],
                   help="ItalyPowerDemand (univariate, length 24, 2 classes; default) or JapaneseVowels "
                        "(12 features, length 7-29, 9 speakers)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="default: 100 (italy), 60 (vowels)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="default: 16 (italy), 32 (vowels)")
    p.add_argument("--learning-rate", type=_positive_float, default=None,
                   help="Adam's learning rate (default: 1e-3 italy, 2e-3 vowels)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="where demo.keras, demo_x_test.npy and (with matplotlib) demo_training.png go "
                        "(default: the current directory)")
    p.add_argument("--threads", type=_positive_int, default=None, help="threads for Numba and BLAS")
    p.set_defaults(func=_demo)

    p = sub.add_parser("predict", help="batch inference: run a model file on a .npy/.npz/.csv input",
                       description="Run a .keras / .h5 model on every sequence of INPUT and write the outputs.")
    p.add_argument("model", metavar="MODEL", help="a .keras or .h5 model file")
    p.add_argument("input", metavar="INPUT",
                   help=".npy array (batch, timesteps, features); .npz (one array, or --key NAME; a model of several "
                        "inputs: one array per input, named after it); "
                        ".csv with one sequence per row (timesteps*features values, time-major); "
                        ".txt with one text per line, or a .npy/.npz of strings, for a model that takes text")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="where to write the predictions, by suffix: .npy, .npz (array 'predictions') or .csv")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="sequences per forward pass (default: all at once)")
    p.add_argument("--key", default=None, help="the array to read from an .npz input")
    p.add_argument("--timesteps", type=_positive_int, default=None,
                   help="steps per sequence of a .csv input (default: the model's, when fixed)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=_predict)

    p = sub.add_parser("info", help="summary, Keras version and format of a .keras / .h5 model file, a Keras 2 "
                                     "SavedModel directory or a TensorFlow checkpoint prefix")
    p.add_argument("file", help="a .keras / .h5 file, a SavedModel directory, or a save_weights checkpoint prefix")
    p.set_defaults(func=_info)

    p = sub.add_parser("bench", help="time fastgru's GRU forward on the reference shapes S1-S5",
                       description="Time fastgru's GRU forward on S1-S5. With --compare: run the source "
                                   "checkout's benchmarks/compare.py, fastgru side by side with PyTorch, ONNX "
                                   "Runtime and Keras (arguments after -- go to compare.py).")
    p.add_argument("--shapes", default=None, help="comma-separated subset of S1,S2,S3,S4,S5 "
                                                  "(--compare --mode train: seed,S3)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=_positive_int, default=None, help="timed calls per figure (default 20; "
                                                                       "--compare: compare.py's default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--compare", action="store_true",
                   help="run benchmarks/compare.py (fastgru vs PyTorch, ONNX Runtime, Keras); needs a source "
                        "checkout and the bench extra")
    p.add_argument("--mode", choices=["infer", "train"], default=None, help="with --compare: compare.py's --mode")
    p.add_argument("compare_args", nargs="*", metavar="-- COMPARE_ARGS",
                   help="with --compare: further compare.py options, e.g. -- --json out.json --plot out.png")
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``fastgru`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), message already printed
        return int(exc.code or 0)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fastgru {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FastGRUError as exc:
        print(f"fastgru {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastgru {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastgru {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m fastgru.cli
    sys.exit(main())
