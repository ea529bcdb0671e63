"""``predict``'s loop over batches, shared by ``Sequential`` and the Functional ``Model``: the output arrays
allocated once and filled batch by batch, and Keras's predict hooks for ``callbacks`` (and a progress bar
with ``verbose``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Keras's predict batch size when none is given and batches are needed (callbacks, a progress bar)
KERAS_PREDICT_BATCH = 32


def check_batch_size(batch_size) -> int | None:
    """``predict``'s ``batch_size``: a positive integer, or None."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer or None, received {batch_size!r}")
    return int(batch_size)


def predict_batches(model, n: int, batch_size: int | None, run: Callable[[int, int], list], verbose=0,
                    callbacks=None) -> list:
    """The outputs (a list of arrays of ``n`` rows) of ``run(lo, hi)`` — the list of outputs of samples
    ``lo:hi`` — over batches of ``batch_size`` samples (None: one call, or Keras's 32 with callbacks or a
    progress bar). Callbacks get ``on_predict_begin``, ``on_predict_batch_begin(i)``,
    ``on_predict_batch_end(i, {"outputs": ...})`` and ``on_predict_end``, as Keras calls them."""
    hooks = callbacks is not None or verbose not in (0, False)
    if batch_size is None and hooks:
        batch_size = KERAS_PREDICT_BATCH
    if not hooks and (batch_size is None or batch_size >= n):
        return run(0, n)
    cbs = None
    if hooks:
        from .training.callbacks import CallbackList

        verbose = 1 if verbose == "auto" else verbose
        cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            callbacks, add_progbar=verbose not in (0, False), model=model, verbose=verbose, epochs=1,
            steps=math.ceil(n / batch_size))
        cbs.on_predict_begin()
    full = None
    for step, i in enumerate(range(0, n, batch_size)):
        if cbs is not None:
            cbs.on_predict_batch_begin(step)
        part = run(i, min(n, i + batch_size))
        if full is None:
            full = [np.empty((n,) + p.shape[1:], dtype=p.dtype) for p in part]
        for o, p in zip(full, part):
            o[i: i + len(p)] = p
        if cbs is not None:
            cbs.on_predict_batch_end(step, {"outputs": part[0] if len(part) == 1 else part})
        del part  # no batch's temporaries outlive its iteration
    if cbs is not None:
        cbs.on_predict_end()
    return full if full is not None else run(0, n)



def rows_for_steps(steps, n: int, batch_size: int | None) -> int:
    """The samples ``predict`` covers: all ``n``, or with Keras's ``steps`` only its first ``steps`` batches
    (of ``batch_size``, or Keras's 32), as Keras predicts arrays."""
    if steps is None:
        return n
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"steps must be a positive integer or None, received {steps!r}")
    return min(n, int(steps) * (batch_size or KERAS_PREDICT_BATCH))


def collect_inputs(model, x, batch_size, steps) -> tuple:
    """``(x, batch_size, None)`` for ``model.predict``: a stream's inputs as arrays and its largest batch's size, or
    arrays as given; ``(None, None, outputs)`` for a stream of batches of different lengths (``padded_batch``), which
    :func:`predict_ragged` has predicted one by one."""
    from .training import streams

    if not streams.is_stream(x):
        return x, batch_size, None
    x, size = streams.predict_inputs(x, steps)
    return (x, size, None) if size is not None else (None, None, predict_ragged(model, x))


def predict_ragged(model, batches: list):
    """``model.predict`` of each batch, the outputs joined along the batch axis (as Keras's predict joins its batches'
    outputs: a sequence output over batches of different lengths cannot be, as in Keras)."""
    parts = [model.predict(batch) for batch in batches]

    def joined(items, what):
        if isinstance(items[0], dict):
            return {k: joined([p[k] for p in items], f"output {k!r}") for k in items[0]}
        if isinstance(items[0], (list, tuple)):
            return [joined([p[i] for p in items], f"output {i}") for i in range(len(items[0]))]
        shapes = {np.shape(p)[1:] for p in items}
        if len(shapes) > 1:
            raise ValueError(f"predict: the {what} of the stream's batches differ past the batch axis "
                             f"{sorted(shapes)[:4]} (a sequence output over batches padded to different lengths): "
                             "pad every batch to one length (padded_batch's padded_shapes)")
        return np.concatenate(items, axis=0)

    return joined(parts, "outputs")
