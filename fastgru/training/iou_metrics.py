"""Keras 3's intersection-over-union metrics (``keras/src/metrics/iou_metrics.py``): ``IoU``, ``MeanIoU``,
``BinaryIoU``, ``OneHotIoU`` and ``OneHotMeanIoU``, from a ``(num_classes, num_classes)`` confusion matrix
(rows: true class, columns: predicted class) accumulated over batches.

As Keras's, the matrix is kept in the metric's dtype, **int64 by default**: labels, predictions and
``sample_weight`` are cast to it (a float weight is truncated, with Keras's warning; pass ``dtype="float32"`` for
fractional weights). Entries whose label or prediction is outside ``[0, num_classes)``, or whose label is
``ignore_class``, are left out. The result is the mean IoU, ``TP / (TP + FP + FN)`` in float32 with Keras's 1e-7
epsilons, over the ``target_class_ids`` that occur. Like Keras's, these metrics ignore the output's mask.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .loss_base import _EPSILON
from .metric_base import Metric, auto_name


def _int(value, what: str, cls_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{cls_name}: {what} must be an integer; received {value!r}")
    return int(value)


class IoU(Metric):
    """The mean IoU over ``target_class_ids``, as ``keras.metrics.IoU``.

    ``update_state(y_true, y_pred, sample_weight=None)``: class ids of any shape ``(B, ...)`` (flattened), or,
    with ``sparse_y_true=False`` / ``sparse_y_pred=False``, scores whose argmax over ``axis`` is the class;
    ``sample_weight`` of the labels' shape (or broadcasting to it). ``result()``: a float.
    """

    _direction = "up"
    _default_name = "io_u"

    def __init__(self, num_classes: int | None = None, target_class_ids=None, name: str | None = None, dtype=None,
                 ignore_class: int | None = None, sparse_y_true: bool = True, sparse_y_pred: bool = True,
                 axis: int = -1):
        cls_name = type(self).__name__
        if num_classes is None:
            raise ValueError(f"{cls_name} needs `num_classes` (an integer > 0); a name alone cannot give it")
        self.num_classes = _int(num_classes, "num_classes", cls_name)
        if self.num_classes < 1:
            raise ValueError(f"{cls_name}: num_classes must be > 0; received {num_classes}")
        if target_class_ids is None:
            raise ValueError(f"{cls_name} needs `target_class_ids` (a list of class ids in [0, {num_classes}))")
        ids = [target_class_ids] if isinstance(target_class_ids, numbers.Integral) else list(target_class_ids)
        ids = [_int(i, "target_class_ids", cls_name) for i in ids]
        if not ids or min(ids) < 0 or max(ids) >= self.num_classes:
            raise ValueError(f"{cls_name}: target_class_ids must be class ids in the range [0, {self.num_classes}); "
                             f"received {target_class_ids!r}")
        self.target_class_ids = ids
        self.ignore_class = None if ignore_class is None else _int(ignore_class, "ignore_class", cls_name)
        self.sparse_y_true, self.sparse_y_pred = bool(sparse_y_true), bool(sparse_y_pred)
        self.axis = _int(axis, "axis", cls_name)
        dtype = np.dtype("int64" if dtype is None or dtype == "int" else dtype)
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
            raise ValueError(f"{cls_name}: dtype must be an integer or float type; received {dtype}")
        super().__init__(name if name is not None else auto_name(self._default_name), dtype)

    def reset_state(self) -> None:
        self.total_cm = np.zeros((self.num_classes, self.num_classes), self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        """Add a batch to the confusion matrix (``mask``, the output's Keras mask, is ignored as Keras does)."""
        dt, k = self.dtype, self.num_classes
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if not self.sparse_y_true:
            y_true = np.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = np.argmax(y_pred, axis=self.axis)
        with np.errstate(invalid="ignore"):
            y_true, y_pred = y_true.astype(dt).reshape(-1), y_pred.astype(dt).reshape(-1)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: expected as many labels as predictions; received {y_true.size} labels "
                             f"and {y_pred.size} predictions (shapes {np.shape(y_true)}, {np.shape(y_pred)} flattened)")
        if sample_weight is None:
            weight = np.ones(y_true.shape, dt)
        else:
            if np.issubdtype(getattr(sample_weight, "dtype", np.dtype(int)), np.floating) \
                    and np.issubdtype(dt, np.integer):
                warnings.warn("You are passing weight as `float`, but dtype is `int`. This may result in an incorrect "
                              "weight due to type casting Consider using integer weights.", stacklevel=2)
            weight = np.asarray(sample_weight).astype(dt)
            weight = weight.reshape(-1) if weight.ndim > 1 else weight
            try:
                weight = np.broadcast_to(weight, y_true.shape)
            except ValueError:
                raise ValueError(f"{self.name}: expected a sample_weight of {y_true.size} values (or broadcasting to "
                                 f"them); received shape {np.shape(sample_weight)}") from None
        keep = (y_true >= 0) & (y_true < k) & (y_pred >= 0) & (y_pred < k)
        if self.ignore_class is not None:
            keep &= y_true != dt.type(self.ignore_class)
        zero = dt.type(0)
        rows, cols = np.where(keep, y_true, zero).astype(np.int64), np.where(keep, y_pred, zero).astype(np.int64)
        batch = np.zeros((k, k), dt)
        np.add.at(batch, (rows, cols), np.where(keep, weight, zero))
        self.total_cm = (self.total_cm + batch).astype(dt, copy=False)

    def result(self) -> float:
        cm = self.total_cm
        f = np.float32
        tp = np.diag(cm)
        denominator = (np.sum(cm, axis=0, dtype=cm.dtype) + np.sum(cm, axis=1, dtype=cm.dtype) - tp)
        ids = np.asarray(self.target_class_ids)
        tp, denominator = tp[ids].astype(f), denominator[ids].astype(f)
        valid = denominator > f(1e-9)
        iou = np.where(valid, tp / (denominator + f(_EPSILON)), f(0))
        return float(np.sum(iou, dtype=f) / (np.sum(valid, dtype=f) + f(_EPSILON)))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of two classes, ``y_pred >= threshold`` against ``y_true`` (0 or 1), as ``keras.metrics.BinaryIoU``
    (``target_class_ids=(0, 1)``: the mean of both classes' IoU; ``[1]`` for the positive class's alone)."""

    _default_name = "binary_io_u"

    def __init__(self, target_class_ids=(0, 1), threshold: float = 0.5, name: str | None = None, dtype=None):
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise ValueError(f"BinaryIoU: threshold must be a number; received {threshold!r}")
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        self.threshold = float(threshold)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        with np.errstate(invalid="ignore"):
            y_true = np.asarray(y_true).astype(self.dtype)
        y_pred = (np.asarray(y_pred).astype(np.float32) >= np.float32(self.threshold)).astype(self.dtype)
        super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict:
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold, "name": self.name,
                "dtype": self.dtype.name}


class MeanIoU(IoU):
    """The mean IoU over all ``num_classes`` classes, as ``keras.metrics.MeanIoU``."""

    _default_name = "mean_io_u"

    def __init__(self, num_classes: int | None = None, name: str | None = None, dtype=None,
                 ignore_class: int | None = None, sparse_y_true: bool = True, sparse_y_pred: bool = True,
                 axis: int = -1):
        if num_classes is None:
            raise ValueError(f"{type(self).__name__} needs `num_classes` (an integer > 0); a name alone cannot "
                             "give it")
        ids = list(range(num_classes)) if isinstance(num_classes, numbers.Integral) else num_classes
        super().__init__(num_classes, ids, name, dtype, ignore_class, sparse_y_true, sparse_y_pred, axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """``IoU`` of one-hot labels (their argmax over ``axis``), as ``keras.metrics.OneHotIoU``; predictions are
    scores too unless ``sparse_y_pred=True``."""

    _default_name = "one_hot_io_u"

    def __init__(self, num_classes: int | None = None, target_class_ids=None, name: str | None = None, dtype=None,
                 ignore_class: int | None = None, sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, target_class_ids, name, dtype, ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """``MeanIoU`` of one-hot labels (their argmax over ``axis``), as ``keras.metrics.OneHotMeanIoU``."""

    _default_name = "one_hot_mean_io_u"

    def __init__(self, num_classes: int | None = None, name: str | None = None, dtype=None,
                 ignore_class: int | None = None, sparse_y_pred: bool = False, axis: int = -1):
        super().__init__(num_classes, name, dtype, ignore_class, sparse_y_true=False, sparse_y_pred=sparse_y_pred,
                         axis=axis)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["sparse_y_true"]
        return config


CLASSES = (IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU)
#: Keras's string names for them (its snake-case class names; all but ``BinaryIoU`` need ``num_classes``, so
#: a name alone is refused with a ValueError saying so, where Keras raises a TypeError)
NAMES = {c._default_name: c for c in CLASSES}
