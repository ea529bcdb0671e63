"""Keras 3's ``FBetaScore`` and ``F1Score`` (``keras/src/metrics/f_score_metrics.py``): the F-beta score of
``(B, C)`` predictions against ``(B, C)`` labels (one-hot or multi-label), from weighted true positives, false
positives and false negatives accumulated in the metric's dtype (float32) over batches.

A prediction counts as positive when it is above ``threshold``, or, with ``threshold=None``, when it is its row's
largest (ties all count) and not within 1e-9 of 0. ``average``: None (one score per class, a list), ``"micro"``
(over all entries), ``"macro"`` (the classes' mean) or ``"weighted"`` (weighted by each class's label total).
Keras's epsilons (1e-7) are added to each denominator. Like Keras's, the output's mask is ignored.
"""

from __future__ import annotations

import numbers

import numpy as np

from .auc import tf_sum
from .loss_base import _EPSILON
from .metric_base import Metric
from .threshold_metrics import _float_dtype

_AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """``(1 + beta²) · precision · recall / (beta² · precision + recall)``, as ``keras.metrics.FBetaScore``
    (``average=None``, ``beta=1.0``, ``threshold=None``, name ``"fbeta_score"``).

    ``update_state(y_true, y_pred, sample_weight=None)``: ``y_true`` and ``y_pred`` of shape ``(B, C)``,
    ``sample_weight`` ``(B,)``. ``result()``: a float, or a list of ``C`` floats with ``average=None``.
    """

    _direction = "up"

    def __init__(self, average: str | None = None, beta: float = 1.0, threshold: float | None = None,
                 name: str = "fbeta_score", dtype=None):
        if average not in _AVERAGES:
            raise ValueError("Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                             f"'weighted'}}. Received: average={average!r}")
        if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not beta > 0.0:
            raise ValueError(f"Invalid `beta` argument value: expected a float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, numbers.Real) or isinstance(threshold, bool)
                                      or not 0.0 < threshold <= 1.0):
            raise ValueError("Invalid `threshold` argument value: expected None or a float with 0 < threshold <= 1. "
                             f"Received: threshold={threshold!r}")
        self.average = average
        self.beta = float(beta)
        self.threshold = None if threshold is None else float(threshold)
        self.axis = None if average == "micro" else 0
        self._num_classes: int | None = None
        super().__init__(name, _float_dtype(dtype))

    def reset_state(self) -> None:
        shape = None if self._num_classes is None else (() if self.average == "micro" else (self._num_classes,))
        (self.true_positives, self.false_positives, self.false_negatives, self.intermediate_weights) = (
            (None,) * 4 if shape is None else tuple(np.zeros(shape, self.dtype) for _ in range(4)))

    def _build(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        if y_pred.ndim != 2 or y_true.ndim != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim). Received "
                             f"input shapes: y_pred.shape={y_pred.shape} and y_true.shape={y_true.shape}.")
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__}: expected y_true of the shape of y_pred {y_pred.shape} (one "
                             f"column per class); received y_true of shape {y_true.shape}")
        if self._num_classes is None:
            self._num_classes = y_pred.shape[1]
            self.reset_state()
        elif y_pred.shape[1] != self._num_classes:
            raise ValueError(f"{self.name}: built for {self._num_classes} classes, received y_pred of shape "
                             f"{y_pred.shape}")

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        """Add a batch's weighted counts (``mask``, the output's Keras mask, is ignored as Keras does)."""
        dt = self.dtype
        y_true = np.asarray(y_true).astype(dt, copy=False)
        y_pred = np.asarray(y_pred).astype(dt, copy=False)
        self._build(y_true, y_pred)
        if self.threshold is None:
            top = np.max(y_pred, axis=-1, keepdims=True)
            positive = (y_pred >= top) & (np.abs(y_pred) > dt.type(1e-9))
        else:
            positive = y_pred > dt.type(self.threshold)
        pred = positive.astype(dt)
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dt)
            if weight.ndim == 2 and weight.shape[1] == 1:
                weight = weight[:, 0]
            if weight.shape not in ((), (y_pred.shape[0],)):
                raise ValueError(f"{self.name}: expected a sample_weight of shape ({y_pred.shape[0]},); received "
                                 f"shape {weight.shape}")
            weight = np.broadcast_to(weight, (y_pred.shape[0],))[:, None]
        one = dt.type(1)

        def weighted_sum(values):
            if weight is not None:
                values = values * weight
            if self.axis is None:
                return self._sum(values)
            return np.sum(values, axis=0, dtype=dt)

        self.true_positives = (self.true_positives + weighted_sum(pred * y_true)).astype(dt)
        self.false_positives = (self.false_positives + weighted_sum(pred * (one - y_true))).astype(dt)
        self.false_negatives = (self.false_negatives + weighted_sum((one - pred) * y_true)).astype(dt)
        self.intermediate_weights = (self.intermediate_weights + weighted_sum(y_true)).astype(dt)

    def result(self):
        if self._num_classes is None:
            return np.zeros(0, self.dtype) if self.average is None else 0.0
        dt = self.dtype.type
        eps, beta2 = dt(_EPSILON), dt(self.beta ** 2)
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        score = precision * recall / (beta2 * precision + recall + eps) * dt(1 + self.beta ** 2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (self._sum(self.intermediate_weights) + eps)
            return float(self._sum(score * weights))
        if self.average is not None:
            return float(self._sum(score) / dt(score.size))
        return np.asarray(score, self.dtype)  # (one per class: an array, as Keras's evaluate gives)

    def _sum(self, values: np.ndarray):
        """A sum in the metric's dtype, added in TensorFlow's order for float32."""
        return tf_sum(values) if self.dtype == np.float32 else np.sum(values, dtype=self.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "average": self.average, "beta": self.beta, "threshold": self.threshold}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} average={self.average!r} result={self.result()}>"


class F1Score(FBetaScore):
    """The F-1 score, ``2 · precision · recall / (precision + recall)``, as ``keras.metrics.F1Score``
    (``FBetaScore`` with ``beta=1``; name ``"f1_score"``)."""

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str = "f1_score",
                 dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["beta"]
        return config


CLASSES = (FBetaScore, F1Score)
#: Keras's string names for them (its snake-case class names)
NAMES = {"f_beta_score": FBetaScore, "f1_score": F1Score}
