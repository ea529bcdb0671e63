"""Compile (or load from Numba's cache) every kernel a model may need, ahead of the first request.

    python -m fastgru.warmup               # inference kernels, float32 and float64
    python -m fastgru.warmup --training    # and the training kernels (forward with saved gates, BPTT)

Numba writes what it compiles next to fastgru's kernel modules (``__pycache__``), or under
``NUMBA_CACHE_DIR`` when that is set. Run this once where the cache will live — for example as a
``RUN`` step of a container image, after ``pip install fastgru`` — and every later process loads the
kernels instead of compiling them (docs/deploy.md).

It also byte-compiles fastgru's own modules (``compileall``), which an editable install, or an
environment with ``PYTHONDONTWRITEBYTECODE=1``, never does: without the ``.pyc`` files every process
compiles fastgru's Python source again on import (0.15-0.3 s of each start on a 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def warm_kernels(training: bool = False, dtypes: tuple[str, ...] = ("float32", "float64")) -> float:
    """Run tiny GRU, LSTM, SimpleRNN, Bidirectional and Conv1D models (masked and not, both GRU variants,
    batch-invariant and default products) so that every kernel signature is compiled or loaded. Returns
    seconds taken."""
    import fastgru as fg
    from fastgru.layers import GRU, LSTM, Bidirectional, Conv1D, Dense, Embedding, Input, SimpleRNN

    start = time.perf_counter()
    previous = fg.get_batch_invariant()
    try:
        for dtype in dtypes:
            x = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(dtype)
            y = np.zeros((4, 1), dtype)
            tokens = np.array([[1, 2, 0], [3, 0, 0], [1, 1, 1], [2, 0, 0]])
            stacks = [
                [Input(shape=(3, 2)), GRU(2, return_sequences=True), GRU(2, reset_after=False), Dense(1)],
                [Input(shape=(3, 2)), LSTM(2), Dense(1)],
                [Input(shape=(3, 2)), Bidirectional(GRU(2)), Dense(1)],
                [Input(shape=(3,), dtype="int32"), Embedding(4, 2, mask_zero=True), GRU(2), Dense(1)],
                [Input(shape=(3,), dtype="int32"), Embedding(4, 2, mask_zero=True), LSTM(2), Dense(1)],
                [Input(shape=(3, 2)), SimpleRNN(2, return_sequences=True), Bidirectional(SimpleRNN(2)), Dense(1)],
                [Input(shape=(3,), dtype="int32"), Embedding(4, 2, mask_zero=True), SimpleRNN(2), Dense(1)],
                [Input(shape=(3, 2)), Conv1D(2, 2, padding="same"), GRU(2), Dense(1)],
            ]
            for layers in stacks:
                model = fg.Sequential(layers)
                inputs = tokens if isinstance(layers[1], Embedding) else x
                for invariant in (False, True):
                    fg.set_batch_invariant(invariant)
                    model.predict(inputs)
                fg.set_batch_invariant(False)
                if training and dtype == "float32":
                    model.compile(optimizer="adam", loss="mse")
                    model.train_on_batch(inputs, y)
    finally:
        fg.set_batch_invariant(previous)
    return time.perf_counter() - start


def compile_bytecode() -> bool:
    """Byte-compile every module of the installed fastgru package (Python's ``__pycache__``).
    Returns False when the package folder is not writable (nothing is compiled then)."""
    import compileall
    import os
    from pathlib import Path

    import fastgru

    folder = Path(fastgru.__file__).resolve().parent
    if not os.access(folder, os.W_OK):
        return False
    return bool(compileall.compile_dir(str(folder), quiet=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastgru.warmup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training", action="store_true", help="also the training kernels")
    args = parser.parse_args(argv)
    seconds = warm_kernels(training=args.training)
    print(f"fastgru kernels ready ({seconds:.1f} s)")
    if not compile_bytecode():
        print("fastgru's modules were not byte-compiled: its package folder is not writable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
