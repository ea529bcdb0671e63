"""The data ``fit``, ``evaluate`` and the batch methods of a Sequential model take, checked before any step (the
Functional trainer, ``multi_output.py``, shares the numeric and finiteness checks): targets beside the inputs, their
kinds and sample counts, the sample weights, validation data."""

from __future__ import annotations

import numpy as np

from .structures import refuse_streams, single


def refuse_empty(n: int) -> None:
    """A clear error for data with no samples (the loss of nothing would read 0.0)."""
    if n == 0:
        raise ValueError("the data has no samples (0 rows): fit, evaluate and train_on_batch need at least one")


def _check_xy(model, x, y, sample_weight=None):
    refuse_streams(x, f"Model {model.name!r}")
    if hasattr(model, "_check_xy"):  # a Functional model checks its lists/dicts of arrays itself
        return model._check_xy(x, y, sample_weight)
    x = model._check_input(x)
    if y is None and getattr(getattr(model, "_compiled", None), "loss", True) is None:
        y = np.zeros((len(x), 0), np.float32)  # (no loss, no targets: as Keras trains on the layers' losses alone)
        if model._compiled.metric_specs or model._compiled.weighted_specs:
            raise ValueError("the compiled metrics need targets y; received y=None")
    if y is None:
        raise ValueError("Training and evaluation need targets y; received y=None")
    y = single(y, "target", model._layers_and_ops[-1].name if model._layers_and_ops else None)
    if isinstance(y, (list, tuple)) and len(y) > 1 and len(y) != len(x) and all(
            isinstance(a, np.ndarray) and a.ndim and len(a) == len(x) for a in y):  # (targets for several outputs)
        raise ValueError(f"Model {model.name!r} has 1 output; received a list of {len(y)} target arrays of shapes "
                         f"{[a.shape for a in y]}")
    y = _numeric("y", y)
    if y.ndim == 0:
        raise ValueError(f"y must have one entry per sample (batch axis first), received a scalar {y!r}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same number of samples, received {len(x)} and {len(y)}")
    refuse_empty(len(x))
    if sample_weight is not None:
        sample_weight = _numeric("sample_weight", sample_weight)
        if sample_weight.ndim == 0 or len(sample_weight) != len(x):
            raise ValueError(f"sample_weight must have {len(x)} entries, received shape {sample_weight.shape}")
    if not model.built:
        model.build((None,) + x.shape[1:])
    return x, y, sample_weight


#: samples checked per step of the up-front NaN scan (bounds its temporary memory)
_SCAN_ROWS = 4096


def check_finite_data(x, y, sample_weight, batch_size: int, where: str = "fit") -> None:
    """Refuse NaN or infinite values in the training data before any weight is updated.

    One pass over ``x``, ``y`` and ``sample_weight`` (in chunks of rows, so the scan's temporary memory
    stays small); the error names the array, the first bad sample, the batch that holds it (in the
    data's order, before any shuffling) and how many samples are affected.
    """
    for name, a in (("x", x), ("y", y), ("sample_weight", sample_weight)):
        if a is None or a.dtype.kind not in "fc" or a.size == 0:
            continue
        bad_rows = []
        for start in range(0, len(a), _SCAN_ROWS):
            chunk = a[start : start + _SCAN_ROWS]
            if np.isfinite(chunk).all():  # (the usual case, in one pass; the rows only when one is bad)
                continue
            finite = np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
            bad_rows.extend((start + np.flatnonzero(~finite)).tolist())
        if bad_rows:
            first = bad_rows[0]
            shown = ", ".join(str(i) for i in bad_rows[:10]) + (", ..." if len(bad_rows) > 10 else "")
            raise ValueError(
                f"{where}: {name} holds NaN or infinite values in sample {first} (batch {first // batch_size} "
                f"with batch_size={batch_size}, counting batches in the data's order before shuffling); "
                f"{len(bad_rows)} sample(s) affected: {shown}. Nothing was trained: remove or impute those "
                f"samples (training on them would turn the weights into NaN)"
            )


def _numeric(name: str, a) -> np.ndarray:
    """``a`` as a numeric array (numbers in an object array are converted), or TypeError naming the dtype."""
    try:
        a = np.asarray(a)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular numeric array ({exc})") from None
    if a.dtype == object:  # (numbers alone are converted; None, strings and the rest are refused, not parsed)
        odd = [v for v in a.flat if isinstance(v, (bool, np.bool_)) or
               not isinstance(v, (int, float, np.integer, np.floating))][:1]
        if odd or not a.size:
            raise TypeError(f"{name} must be numeric; received an object array holding "
                            f"{type(odd[0]).__name__ + ' ' + repr(odd[0])[:40] if odd else 'nothing'}")
        a = a.astype(np.float64)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be numeric (float, int or bool), received dtype {a.dtype}")
    return a


def _take(a, idx):
    return None if a is None else a[idx]


def _check_validation_data(model, validation_data, y):
    """``validation_data`` checked like the training data, before anything is trained: a tuple
    ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight)`` whose targets have the training targets' shape."""
    refuse_streams(validation_data, "fit's validation_data")
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight), "
                         f"received {type(validation_data).__name__}"
                         + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
    x_val, y_val, sw_val = (tuple(validation_data) + (None,))[:3]
    try:
        x_val, y_val, sw_val = _check_xy(model, x_val, y_val, sw_val)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"validation_data: {exc}") from None
    def squeeze(shape):  # (n,) and (n, 1) agree
        return tuple(d for d in shape[1:] if d != 1)

    if squeeze(y_val.shape) != squeeze(y.shape):
        raise ValueError(f"validation_data: y_val has shape {y_val.shape}, which does not match the training "
                         f"targets' shape {y.shape} (same shape after the sample axis expected)")
    return (x_val, y_val) + (() if sw_val is None else (sw_val,))
