"""The batches of ``fit``'s epochs and ``evaluate``'s pass, and the checks of the loops' options (Keras's rules
for ``batch_size``, ``steps``, ``validation_freq`` and ``class_weight``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from ..random import global_rng


def batch_indices(n: int, batch_size: int, order=None):
    index = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield index[start : start + batch_size]


class BatchStream:
    """The batches of ``fit``'s epochs, as Keras's epoch iterator hands them out: each epoch a fresh pass
    over the data (shuffled anew with ``shuffle``); with ``steps_per_epoch``, that many batches an epoch
    from one pass that goes on where the last epoch stopped; an epoch that reaches the pass's end stops
    there, with Keras's warning, and the next begins a new pass. ``one_pass``: the batches a generator yielded,
    which it cannot yield again: when they run out, training is interrupted with Keras's warning, and the epochs
    left run no step (as Keras's, whose logs then hold the metrics' reset values)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, steps_name: str = "fit's steps_per_epoch",
                 sizes: list | None = None, one_pass: bool = False):
        self.n, self.batch_size, self.shuffle, self.steps_name = n, batch_size, shuffle, steps_name
        self.sizes = sizes  # (a stream's own batches, in order: their sizes)
        self.n_batches = math.ceil(n / batch_size) if sizes is None else len(sizes)
        self._pass, self._seen = None, 0
        self.one_pass, self._ran_out = one_pass, False

    @property
    def pass_finished(self) -> bool:
        """Whether the last epoch ran the pass out (the next begins a new one)."""
        return self._pass is None

    def _new_pass(self):
        if self.sizes is not None:
            bounds = np.cumsum([0, *self.sizes])
            return (np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:]))
        return batch_indices(self.n, self.batch_size, global_rng().permutation(self.n) if self.shuffle else None)

    def epoch(self, steps):
        if steps is None:
            yield from self._new_pass()
            return
        if self._ran_out:
            return
        if self._pass is None:
            self._pass, self._seen = self._new_pass(), 0
        for _ in range(steps):
            if self._seen >= self.n_batches and self.one_pass:
                warnings.warn(f"the input ran out of data after {self.n_batches} batches, before {self.steps_name}="
                              f"{steps} times the epochs; training is interrupted (as in Keras: the epochs left run "
                              "no step). Give a generator that yields at least steps_per_epoch * epochs batches",
                              UserWarning, stacklevel=4)
                self._ran_out = True
                return
            if self._seen >= self.n_batches:
                warnings.warn(f"the data ran out of batches ({self.n_batches} a pass) before {self.steps_name}="
                              f"{steps}; this pass stops here and the next begins a new one (as in Keras)",
                              UserWarning, stacklevel=4)
                break
            self._seen += 1
            yield next(self._pass)
        if self._seen >= self.n_batches and not self.one_pass:
            self._pass = None


def checked_validation_freq(value):
    """Keras's ``validation_freq``: validate every ``value`` epochs (an int), or after the epochs listed
    (1-based); returned as an int or a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(positive_int("validation_freq entries", v) for v in value)
    return positive_int("validation_freq", value)


def positive_int(name: str, value) -> int:
    """An integer option (Python or NumPy int; bool and floats such as 2.5 are refused, as Keras refuses them)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, received {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, received {value!r}")
    return int(value)


def checked_batch_size(batch_size, name: str = "batch_size") -> int:
    return 32 if batch_size is None else positive_int(name, batch_size)


def check_class_weight(model, class_weight, sample_weight) -> None:
    """Keras's rules for ``class_weight``: a dict {class index: weight}, for a model with one output, not
    together with ``sample_weight``."""
    if class_weight is None:
        return
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"class_weight must be a dict {{class index: weight}}, received {type(class_weight).__name__}")
    for k, v in class_weight.items():
        integral_float = isinstance(k, (float, np.floating)) and float(k).is_integer()  # (0.0: Keras finds it too)
        if isinstance(k, (bool, np.bool_)) or not (isinstance(k, (int, np.integer)) or integral_float):
            raise TypeError(f"class_weight keys must be class indices (integers), received {k!r}")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v):
            raise ValueError(f"class_weight[{k}] must be a finite number, received {v!r}")
    if sample_weight is not None:
        raise ValueError("class_weight and sample_weight cannot be given together (as in Keras): multiply the "
                         "class weights into sample_weight")
    if len(getattr(model, "output_names", None) or [None]) > 1:
        raise ValueError("class_weight is only supported for models with a single output (as in Keras); give "
                         "sample_weight per output instead")
    shape = getattr(model, "output_shape", None)
    if isinstance(shape, tuple) and len(shape) > 2:
        raise ValueError(f"class_weight weighs whole samples by their class, but the model's output {shape} has "
                         "steps (Keras supports it for targets of rank 2 at most): give (batch, steps) weights — "
                         "each step's class weight — as sample_weight instead")


def class_sample_weight(y, class_weight) -> np.ndarray:
    """Keras's ``class_weight_to_sample_weights``: each sample weighted by its class's weight (1 for a class
    not listed); the class of a one-hot or probability row is its argmax, of an (n, 1) column its rounded
    value. float32 (n,)."""
    target = np.asarray(y.arrays[0] if hasattr(y, "arrays") else y)
    if target.ndim > 1:
        target = np.argmax(target, axis=-1) if target.shape[-1] != 1 else np.squeeze(target, axis=-1)
    if target.ndim != 1:
        raise ValueError(f"class_weight needs one class per sample (targets of shape (n,), (n, 1) or (n, classes)), "
                         f"received targets of shape {np.shape(y.arrays[0] if hasattr(y, 'arrays') else y)}")
    classes = np.round(target).astype(np.int64)
    weights = np.ones(len(classes), np.float32)
    for cls, weight in class_weight.items():
        weights[classes == int(cls)] = weight
    return weights


def check_stream_epoch(model, n: int, sizes: list) -> None:
    """A stream's epoch, ``n`` samples in batches of ``sizes``: every batch one a stateful layer can take."""
    if sum(sizes) != n:
        raise ValueError(f"fit: the stream's batches hold {sum(sizes)} samples, its arrays {n}")
    for size in sorted(set(sizes)):
        check_stateful_batches(model, size, size, "fit (a batch of the stream)")


def check_stateful_batches(model, n: int, batch_size: int, what: str, batches: int | None = None) -> None:
    """Refuse, before anything runs, batches a stateful recurrent layer built for a fixed batch size cannot take:
    ``n`` samples in batches of ``batch_size``, ``batches`` of them drawn (None: one whole pass), must all be that
    size (Keras fails at the first other batch, after the batches before it have trained; here nothing changes).
    A last, shorter batch counts only when that many batches reach it."""
    if batches == 0:
        return
    size = min(batch_size, n)  # (one batch of all the samples when they are fewer)
    reaches_last = batches is None or batches >= math.ceil(n / batch_size)
    layers, seen = list(getattr(model, "layers", ())), set()
    while layers:
        layer = layers.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        layers.extend(getattr(layer, "layers", ()) or ())
        shape = getattr(layer, "input_shape", None) if getattr(layer, "stateful", False) is True else None
        declared = shape[0] if isinstance(shape, tuple) and shape else None
        if not isinstance(declared, int):
            continue
        if size != declared:
            raise ValueError(f"{what}: stateful {type(layer).__name__} {layer.name!r} was built for batches of "
                             f"{declared} (its batch_shape), but {n} samples with batch_size={batch_size} give it "
                             f"batches of {size}: pass batch_size={declared} and a multiple of {declared} samples")
        if n % declared and reaches_last:
            raise ValueError(f"{what}: stateful {type(layer).__name__} {layer.name!r} was built for batches of "
                             f"{declared} (its batch_shape), but {n} samples with batch_size={batch_size} give it a "
                             f"last batch of {n % declared}: pass a multiple of {declared} samples (or fewer steps)")
