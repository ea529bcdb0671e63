"""``fastgru demo``: the classic Keras GRU classifier on a real bundled data set, end to end.

Builds and trains the model, prints its test accuracy against the published Keras figures, saves it
as a Keras 3 ``.keras`` file, reloads it with ``fastgru.load_model``, checks the predictions are
identical, and reports inference throughput and training time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DemoSetup:
    """A demo data set and the defaults measured to reach its accuracy target (docs/quickstart.md)."""

    dataset: str
    title: str
    task: str
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    target: float
    reference: str


SETUPS = {
    "italy-power-demand": DemoSetup(
        "italy_power_demand", "ItalyPowerDemand (UCR archive)",
        "was this day's 24-hour Italian electricity demand curve recorded in Oct-Mar or in Apr-Sep?",
        epochs=100, batch_size=16, learning_rate=1e-3, seed=0, target=0.95,
        reference="Keras 0.953-0.964 with this model, 1-NN DTW 0.950"),
    "japanese-vowels": DemoSetup(
        "japanese_vowels", "JapaneseVowels (UCI / UEA archive)",
        "which of 9 speakers uttered this vowel? (12 LPC cepstra per frame, 7-29 frames, zero-padded)",
        epochs=60, batch_size=32, learning_rate=2e-3, seed=0, target=0.92,
        reference="Keras 0.930-0.938 with GRU(64) in 60 epochs"),
}


def build_model(dataset: str, x_shape: tuple, n_classes: int, prefix: str = ""):
    """The demo's model, compiled later: the Keras example's GRU(64) classifier for ``dataset``.

    ``prefix`` names the layers explicitly (the warm-up model), leaving Keras-style automatic names
    (``gru``, ``dense``) to the model that is shown and saved.
    """
    import fastgru as fg
    from fastgru.layers import GRU, Dense, Masking

    names = {k: f"{prefix}{k}" if prefix else None for k in ("masking", "gru", "dense", "model")}
    if dataset == "italy_power_demand":
        layers = [GRU(64, input_shape=x_shape, name=names["gru"]), Dense(1, activation="sigmoid", name=names["dense"])]
    else:
        layers = [Masking(mask_value=0.0, input_shape=x_shape, name=names["masking"]), GRU(64, name=names["gru"]),
                  Dense(n_classes, activation="softmax", name=names["dense"])]
    return fg.Sequential(layers, name=names["model"])


def _compile(model, dataset: str, learning_rate: float) -> None:
    import fastgru as fg

    loss = "binary_crossentropy" if dataset == "italy_power_demand" else "sparse_categorical_crossentropy"
    model.compile(optimizer=fg.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=["accuracy"])


def _warm_up(dataset: str, x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Compile (or load from Numba's cache) every kernel the demo uses; returns the seconds it took."""
    start = time.perf_counter()
    model = build_model(dataset, x.shape[1:], n_classes, prefix="warmup_")
    _compile(model, dataset, 1e-3)
    model.train_on_batch(x[:4], y[:4])
    model.evaluate(x[:4], y[:4], verbose=0)
    model.predict(x[:4])
    return time.perf_counter() - start


def _epoch_bar(epochs: int):
    """A callback drawing one progress bar over the epochs (fastgru's Progbar) with the latest metrics."""
    from fastgru.training.callbacks import Callback
    from fastgru.training.progress import Progbar

    class EpochBar(Callback):
        def __init__(self):
            super().__init__()
            self.bar = Progbar(target=epochs, unit_name="epoch", stateless_metrics=set())

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(epoch + 1, [(k, float(v)) for k, v in (logs or {}).items()])

    return EpochBar()


def _throughput(model, x: np.ndarray, repeats: int = 7) -> float:
    """Sequences per second of ``model.predict(x)``, median over ``repeats`` calls."""
    model.predict(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x)
        times.append(time.perf_counter() - start)
    return len(x) / float(np.median(times))


def _plot(history: dict, path: Path, title: str) -> bool:
    """Write the training curves to ``path`` when matplotlib is installed; False when it is not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[key], label=f"training {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    fig.suptitle(f"fastgru demo: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def run_demo(dataset: str = "italy-power-demand", epochs: int | None = None, batch_size: int | None = None,
             learning_rate: float | None = None, seed: int | None = None, out: str | Path = ".",
             threads: int | None = None) -> int:
    """Run the demo (see ``fastgru demo -h``); returns the exit code (1 when a check failed)."""
    import fastgru as fg
    from fastgru import datasets

    from .errors import CLIError

    setup = SETUPS[dataset]
    epochs = setup.epochs if epochs is None else epochs
    batch_size = setup.batch_size if batch_size is None else batch_size
    learning_rate = setup.learning_rate if learning_rate is None else learning_rate
    seed = setup.seed if seed is None else seed
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        fg.set_num_threads(threads)
    demo_start = time.perf_counter()

    (x_train, y_train), (x_test, y_test) = datasets.load(setup.dataset)
    n_classes = datasets.info(setup.dataset).n_classes
    print(f"fastgru {fg.__version__} demo on {setup.title}: {setup.task}")
    print(f"{len(x_train)} training and {len(x_test)} test sequences of {x_train.shape[1]} steps x "
          f"{x_train.shape[2]} feature(s), {n_classes} classes; {fg.get_num_threads()} threads\n")

    print("Numba kernels: compiled on the first run (tens of seconds), loaded from the cache afterwards ...",
          end=" ", flush=True)
    compile_s = _warm_up(setup.dataset, x_train, y_train, n_classes)
    print(f"{compile_s:.1f} s\n")

    fg.set_random_seed(seed)
    model = build_model(setup.dataset, x_train.shape[1:], n_classes)
    _compile(model, setup.dataset, learning_rate)
    model.summary()
    print(f"\nTraining: {epochs} epochs, batch size {batch_size}, Adam(learning_rate={learning_rate:g}), seed {seed}")
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0,
                        callbacks=[_epoch_bar(epochs)])
    train_s = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    met = accuracy >= setup.target
    print(f"\nTest accuracy: {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} sequences; target "
          f">= {setup.target:.2f} {'met' if met else 'NOT met'} ({setup.reference})")

    path = out / "demo.keras"
    model.save(path)
    reloaded = fg.load_model(path)
    before, after = model.predict(x_test), reloaded.predict(x_test)
    identical = bool(np.array_equal(before, after))
    print(f"Saved {path} (a Keras 3 file: keras.models.load_model opens it); reloaded with fg.load_model: "
          f"predictions {'identical' if identical else 'DIFFERENT (max abs diff %.3g)' % np.abs(before - after).max()}")

    per_s = _throughput(reloaded, x_test)
    np.save(out / "demo_x_test.npy", x_test)
    plotted = _plot(history.history, out / "demo_training.png", setup.title)
    print(f"Inference: {per_s:,.0f} sequences/s (predict on all {len(x_test)} test sequences at once)")
    print(f"Training: {train_s:.2f} s for {epochs} epochs ({train_s / epochs * 1e3:.1f} ms/epoch); "
          f"kernel compile/load {compile_s:.1f} s; whole demo {time.perf_counter() - demo_start:.1f} s")
    if plotted:
        print(f"Training curves: {out / 'demo_training.png'}")
    print(f"\nNext: fastgru info {path}\n      fastgru predict {path} {out / 'demo_x_test.npy'} -o predictions.npy")
    return 0 if (met and identical) else 1
