"""Keras 3's ``Precision`` and ``Recall``: weighted counts of true and false positives (negatives) of
``y_pred > threshold`` against ``y_true != 0``, over every entry of the batch (or one class's column with
``class_id``), kept in float32; ``result()`` is TP / (TP + FP) (or TP / (TP + FN)), 0 when empty, one
value per threshold when several are given."""

from __future__ import annotations

import numpy as np

from .metrics import Metric


class _Confusion(Metric):
    _direction = "up"
    _other = "fp"  # the count beside the true positives in the result's denominator

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=np.float32):
        if top_k is not None:
            raise ValueError(f"{type(self).__name__}: top_k is not supported by fastgru (received top_k={top_k})")
        values = [0.5] if thresholds is None else (list(thresholds) if isinstance(thresholds, (list, tuple))
                                                   else [thresholds])
        for t in values:
            if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not 0.0 <= t <= 1.0:
                raise ValueError(f"Threshold values must be in [0, 1]. Received: {thresholds}")
        self.init_thresholds = thresholds
        self.thresholds = np.asarray(values, np.float32)
        self.top_k = top_k
        self.class_id = class_id
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        self.true_positives = np.zeros(len(self.thresholds), np.float32)
        self.other = np.zeros(len(self.thresholds), np.float32)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, dtype=np.float32)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"{self.name}: targets of shape {y_true.shape} do not match predictions of shape "
                                 f"{y_pred.shape}")
            y_true = y_true.reshape(y_pred.shape)
        weight = np.ones(y_pred.shape, np.float32)
        for w in (sample_weight, mask):
            if w is not None:
                w = np.asarray(w, np.float32)
                w = w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim))
                weight = weight * np.broadcast_to(w, y_pred.shape)
        truth = y_true.astype(bool)
        if self.class_id is not None:
            truth, y_pred, weight = (a[..., self.class_id] for a in (truth, y_pred, weight))
        for k, threshold in enumerate(self.thresholds):
            predicted = y_pred > threshold
            self.true_positives[k] += np.float32(np.sum(weight * (predicted & truth), dtype=np.float32))
            # FP: predicted, not true; FN: true, not predicted
            other = (predicted & ~truth) if self._other == "fp" else (~predicted & truth)
            self.other[k] += np.float32(np.sum(weight * other, dtype=np.float32))

    def result(self):
        denominator = self.true_positives + self.other
        values = np.where(denominator > 0, self.true_positives / np.where(denominator > 0, denominator, 1), 0.0)
        return float(values[0]) if len(values) == 1 else [float(v) for v in values]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result()}>"

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_Confusion):
    """TP / (TP + FP) of ``y_pred > thresholds`` (0.5 by default)."""

    _other = "fp"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision", dtype=np.float32):
        super().__init__(thresholds, top_k, class_id, name, dtype)


class Recall(_Confusion):
    """TP / (TP + FN) of ``y_pred > thresholds`` (0.5 by default)."""

    _other = "fn"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall", dtype=np.float32):
        super().__init__(thresholds, top_k, class_id, name, dtype)
