"""Keras 3's threshold counts and the metrics read from them (``keras/src/metrics/confusion_metrics.py``):
``TruePositives``, ``TrueNegatives``, ``FalsePositives``, ``FalseNegatives`` (the weighted count of one cell of
the confusion matrix of ``y_pred > threshold`` against ``y_true != 0``, one per threshold) and the ``*At*``
metrics (the best of one rate where the other reaches a target, over ``num_thresholds`` evenly spaced
thresholds; ``class_id`` reads one column of ``(B, C)`` predictions).

Counts are kept in the metric's dtype (float32). Thresholds spread evenly over [0, 1] (``[0, 0.5, 1]``, and always
the ``*At*`` metrics' grid) take Keras's bucketed path: predictions clipped to [0, 1], bucket
``ceil(p (N - 1)) - 1`` (a prediction of 0 falls in none), counts by reverse cumulative sums; other thresholds
compare ``p > t`` directly. ``sample_weight`` broadcasts against the labels as Keras's does (``(B,)`` against
``(B, C)``). Like Keras's, these metrics ignore the output's mask.
"""

from __future__ import annotations

import numbers

import numpy as np

from .auc import _div_no_nan, tf_sum
from .loss_base import _EPSILON, _same_rank
from .metric_base import Metric, auto_name

_CELLS = ("tp", "fp", "tn", "fn")


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype must be a float type such as 'float32'; received {dtype!r}")
    return dt


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def threshold_list(thresholds, default: float = 0.5) -> list[float]:
    """``thresholds`` (a number or a list of numbers in [0, 1], None for ``default``) as a list of floats."""
    values = [default] if thresholds is None else (
        list(np.ravel(thresholds).tolist()) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds])
    if not values:
        raise ValueError("thresholds must hold at least one number in [0, 1]; received an empty list")
    for t in values:
        if not _is_number(t) or not 0.0 <= t <= 1.0:
            raise ValueError(f"Threshold values must be numbers in [0, 1]. Received: thresholds={thresholds!r}")
    return [float(t) for t in values]


def evenly_spaced(thresholds: list[float]) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``: at least 3 values, each within 1e-7 (and numpy's default
    relative tolerance) of ``k / (n - 1)``, in the given order."""
    n = len(thresholds)
    return n >= 3 and bool(np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=_EPSILON))


def _aligned(y_true, y_pred, sample_weight, class_id, dtype, name):
    """(labels as bool, predictions, weights broadcast to them or None), each of the predictions' shape."""
    y_pred = np.asarray(y_pred).astype(dtype, copy=False)
    y_true = np.asarray(y_true).astype(dtype, copy=False)
    y_pred, y_true = _same_rank(y_pred, y_true)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: expected y_true of the shape of y_pred {y_pred.shape}; received y_true of shape "
                         f"{y_true.shape}")
    weight = None
    if sample_weight is not None:
        weight = np.asarray(sample_weight, dtype=dtype)[..., None]
        _, weight = _same_rank(y_true, weight, expand_rank_1=False)
    if class_id is not None:
        if y_pred.ndim < 2:
            raise ValueError(f"{name}: with class_id, y_pred must be (num_samples, num_classes); found shape "
                             f"{y_pred.shape}")
        if not -y_pred.shape[-1] <= class_id < y_pred.shape[-1]:
            raise ValueError(f"{name}: class_id must be a class index below {y_pred.shape[-1]} for y_pred of shape "
                             f"{y_pred.shape}; received class_id={class_id}")
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
    if weight is not None:
        try:
            weight = np.broadcast_to(weight, y_pred.shape)
        except ValueError:
            raise ValueError(f"{name}: expected a sample_weight that broadcasts to {y_pred.shape}; received shape "
                             f"{np.shape(sample_weight)}") from None
    return y_true != 0, y_pred, weight


def confusion_counts(y_true, y_pred, thresholds: list[float], *, evenly: bool = False, sample_weight=None,
                     class_id: int | None = None, dtype=np.float32, name: str = "metric") -> dict:
    """One batch's weighted counts ``{"tp", "fp", "tn", "fn"}``, each an array ``(len(thresholds),)`` of
    ``dtype``, as Keras's ``update_confusion_matrix_variables``: ``y_true`` (nonzero = positive) and ``y_pred`` of
    one shape (up to a trailing 1), ``(B, ...)``; ``evenly`` takes the bucketed path described above."""
    dt = np.dtype(dtype)
    label, pred, weight = _aligned(y_true, y_pred, sample_weight, class_id, dt, name)

    def total(values):  # a float32 sum in TensorFlow's order
        return tf_sum(values) if dt == np.float32 else np.sum(values, dtype=dt)

    if evenly:
        n = len(thresholds)
        p = np.clip(pred.reshape(-1), dt.type(0), dt.type(1))
        truth = label.reshape(-1).astype(dt)
        w = dt.type(1) if weight is None else weight.reshape(-1)
        true_w = np.broadcast_to(truth * w, truth.shape)
        false_w = np.broadcast_to((dt.type(1) - truth) * w, truth.shape)
        with np.errstate(invalid="ignore"):
            bucket = np.ceil(p * (dt.type(n) - dt.type(1))) - dt.type(1)
        keep = bucket >= 0  # (TensorFlow's segment sum drops a negative bucket: p == 0, or NaN)
        index = bucket[keep].astype(np.int64)
        tp_b, fp_b = np.zeros(n, dt), np.zeros(n, dt)
        np.add.at(tp_b, index, true_w[keep])
        np.add.at(fp_b, index, false_w[keep])
        tp = np.cumsum(tp_b[::-1], dtype=dt)[::-1]
        fp = np.cumsum(fp_b[::-1], dtype=dt)[::-1]
        return {"tp": tp, "fp": fp, "tn": total(false_w) - fp, "fn": total(true_w) - tp}
    t = np.asarray(thresholds, dt)[:, None]
    positive = pred.reshape(1, -1) > t  # (T, N)
    truth = label.reshape(1, -1)
    cells = {"tp": truth & positive, "fp": ~truth & positive, "tn": ~truth & ~positive, "fn": truth & ~positive}
    if weight is None:
        return {k: np.sum(c, axis=1).astype(dt) for k, c in cells.items()}
    w = weight.reshape(1, -1)
    return {k: np.array([total(row) for row in np.where(c, w, dt.type(0))], dt) for k, c in cells.items()}


class _ConditionCount(Metric):
    """One confusion cell's weighted count per threshold (``result()``: a float, a list for several)."""

    _cell = "tp"
    _default_name = ""

    def __init__(self, thresholds=None, name: str | None = None, dtype=None):
        self.init_thresholds = thresholds
        self.thresholds = threshold_list(thresholds)
        self._evenly = evenly_spaced(self.thresholds)
        super().__init__(name if name is not None else auto_name(self._default_name), _float_dtype(dtype))

    def reset_state(self) -> None:
        self.accumulator = np.zeros(len(self.thresholds), self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        """Add a batch's count (``mask``, the output's Keras mask, is ignored as Keras does)."""
        counts = confusion_counts(y_true, y_pred, self.thresholds, evenly=self._evenly, sample_weight=sample_weight,
                                  dtype=self.dtype, name=self.name)
        self.accumulator = (self.accumulator + counts[self._cell]).astype(self.dtype, copy=False)

    def result(self):
        values = np.asarray(self.accumulator, self.dtype)
        return float(values[0]) if len(values) == 1 else values  # (one per threshold: an array, as Keras's)

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result()}>"


class TruePositives(_ConditionCount):
    """Weighted count of ``y_true != 0`` with ``y_pred > threshold`` (Keras 3's; ``thresholds`` 0.5 by default)."""

    _cell, _default_name = "tp", "true_positives"


class TrueNegatives(_ConditionCount):
    """Weighted count of ``y_true == 0`` with ``y_pred <= threshold`` (Keras 3's)."""

    _cell, _default_name = "tn", "true_negatives"


class FalsePositives(_ConditionCount):
    """Weighted count of ``y_true == 0`` with ``y_pred > threshold`` (Keras 3's)."""

    _cell, _default_name = "fp", "false_positives"


class FalseNegatives(_ConditionCount):
    """Weighted count of ``y_true != 0`` with ``y_pred <= threshold`` (Keras 3's)."""

    _cell, _default_name = "fn", "false_negatives"


def _rates(c: dict, which: str) -> np.ndarray:
    """Recall (= sensitivity), precision or specificity at each threshold; 0 where undefined."""
    if which == "precision":
        return _div_no_nan(c["tp"], c["tp"] + c["fp"])
    if which == "specificity":
        return _div_no_nan(c["tn"], c["tn"] + c["fp"])
    return _div_no_nan(c["tp"], c["tp"] + c["fn"])


class _RateAtRate(Metric):
    """The largest ``_dependent`` rate over the thresholds whose ``_constrained`` rate is at least the target
    (0 when none is), as Keras's ``SensitivitySpecificityBase``: counts at ``num_thresholds`` thresholds, ``[0,
    1/(N-1), ..., 1]`` (bucketed), or 0.5 alone for ``num_thresholds=1``."""

    _direction = "up"
    _constrained = "recall"
    _dependent = "precision"
    _default_name = ""

    def __init__(self, value, num_thresholds: int = 200, class_id: int | None = None, name: str | None = None,
                 dtype=None):
        key = self._constrained
        if not _is_number(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{type(self).__name__}: argument `{key}` must be a number in the range [0, 1]. "
                             f"Received: {key}={value!r}")
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral) \
                or num_thresholds <= 0:
            raise ValueError(f"{type(self).__name__}: argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds!r}")
        if class_id is not None and (isinstance(class_id, bool) or not isinstance(class_id, numbers.Integral)):
            raise ValueError(f"{type(self).__name__}: class_id must be an integer or None; received {class_id!r}")
        self.value = value
        self.num_thresholds = int(num_thresholds)
        self.class_id = class_id
        n = self.num_thresholds
        if n == 1:
            self.thresholds, self._evenly = [0.5], False
        else:
            self.thresholds = [0.0] + [(i + 1) * 1.0 / (n - 1) for i in range(n - 2)] + [1.0]
            self._evenly = True
        super().__init__(name if name is not None else auto_name(self._default_name), _float_dtype(dtype))

    def reset_state(self) -> None:
        self.counts = {k: np.zeros(len(self.thresholds), self.dtype) for k in _CELLS}

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        """Add a batch's counts (``mask``, the output's Keras mask, is ignored as Keras does)."""
        batch = confusion_counts(y_true, y_pred, self.thresholds, evenly=self._evenly, sample_weight=sample_weight,
                                 class_id=self.class_id, dtype=self.dtype, name=self.name)
        self.counts = {k: (self.counts[k] + batch[k]).astype(self.dtype, copy=False) for k in _CELLS}

    def result(self) -> float:
        feasible = _rates(self.counts, self._constrained) >= self.dtype.type(self.value)
        dependent = _rates(self.counts, self._dependent)
        return float(np.max(np.where(feasible, dependent, self.dtype.type(0)), initial=self.dtype.type(0)))

    def get_config(self) -> dict:
        return {**super().get_config(), "class_id": self.class_id, "num_thresholds": self.num_thresholds,
                self._constrained: self.value}


def _required(cls_name: str, key: str, value):
    if value is None:
        raise ValueError(f"{cls_name} needs `{key}` (a number in [0, 1]); a name alone cannot give it")
    return value


class PrecisionAtRecall(_RateAtRate):
    """The best precision where recall >= ``recall`` (Keras 3's)."""

    _constrained, _dependent, _default_name = "recall", "precision", "precision_at_recall"

    def __init__(self, recall: float | None = None, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype=None):
        super().__init__(_required("PrecisionAtRecall", "recall", recall), num_thresholds, class_id, name, dtype)
        self.recall = recall


class RecallAtPrecision(_RateAtRate):
    """The best recall where precision >= ``precision`` (Keras 3's)."""

    _constrained, _dependent, _default_name = "precision", "recall", "recall_at_precision"

    def __init__(self, precision: float | None = None, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype=None):
        super().__init__(_required("RecallAtPrecision", "precision", precision), num_thresholds, class_id, name,
                         dtype)
        self.precision = precision


class SensitivityAtSpecificity(_RateAtRate):
    """The best sensitivity (recall) where specificity >= ``specificity`` (Keras 3's)."""

    _constrained, _dependent, _default_name = "specificity", "sensitivity", "sensitivity_at_specificity"

    def __init__(self, specificity: float | None = None, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype=None):
        super().__init__(_required("SensitivityAtSpecificity", "specificity", specificity), num_thresholds,
                         class_id, name, dtype)
        self.specificity = specificity


class SpecificityAtSensitivity(_RateAtRate):
    """The best specificity where sensitivity (recall) >= ``sensitivity`` (Keras 3's)."""

    _constrained, _dependent, _default_name = "sensitivity", "specificity", "specificity_at_sensitivity"

    def __init__(self, sensitivity: float | None = None, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype=None):
        super().__init__(_required("SpecificityAtSensitivity", "sensitivity", sensitivity), num_thresholds,
                         class_id, name, dtype)
        self.sensitivity = sensitivity


CLASSES = (TruePositives, TrueNegatives, FalsePositives, FalseNegatives, PrecisionAtRecall, RecallAtPrecision,
           SensitivityAtSpecificity, SpecificityAtSensitivity)
#: Keras's string names for them (its snake-case class names; the ``*At*`` ones need their target, so a name
#: alone is refused with a ValueError saying so, where Keras raises a TypeError)
NAMES = {c._default_name: c for c in CLASSES}
