"""The data a model's ``fit``, ``evaluate`` and ``predict`` take: Keras's one-element structures around a
single input or output (:func:`single`), and a clear refusal of the streams fastgru does not take
(:func:`refuse_streams`: a ``tf.data.Dataset``, a generator, a Keras ``PyDataset``)."""

from __future__ import annotations

import numpy as np


def refuse_streams(x, where: str) -> None:
    """TypeError for a data stream where fastgru takes arrays (numpy arrays, or lists or dicts of them)."""
    from .streams import is_stream

    if is_stream(x):
        raise TypeError(f"{where} takes arrays here (numpy arrays, or lists or dicts of them), not a "
                        f"{type(x).__name__}: a tf.data.Dataset, generator, PyDataset or DataLoader is read by fit, "
                        "evaluate and predict only; collect its batches into arrays (np.concatenate)")


def single(value, what: str = "input", key: str | None = None):
    """Keras's one-element structures around a single model's input, target, loss or metrics: ``[v]``,
    ``(v,)`` (of an array, a name or an object — not of a number or a nested list of numbers) and ``{name: v}`` are
    ``v``, as a Keras model built with ``inputs=[a]``, ``outputs=[b]`` takes and saves them. ``key``: the name
    the dict's one key must be (a Sequential model's output layer, for its targets)."""
    if isinstance(value, dict) and "class_name" not in value:  # (not a serialized Keras object: {class_name, config})
        if len(value) != 1:
            raise ValueError(f"the model has one {what}; received a dict of {len(value)}: {sorted(map(str, value))}")
        if key is not None and next(iter(value)) != key:
            one = "output" if what == "target" else what
            raise ValueError(f"the model has one {one}, {key!r}; the {what}s dict is keyed {sorted(map(str, value))}")
        return next(iter(value.values()))
    if (isinstance(value, (list, tuple)) and len(value) == 1 and not isinstance(value[0], (list, tuple))
            and (isinstance(value[0], str) or not np.isscalar(value[0]))):
        return value[0]
    return value
