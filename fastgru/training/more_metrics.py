"""Keras 3's other streaming metrics, beside the accuracies, MSE/MAE, Precision/Recall and AUC of
:mod:`fastgru.training.metrics` (which exports them all and finds them by name): the means of the losses'
per-sample values (``MeanAbsolutePercentageError``, ``MeanSquaredLogarithmicError``, ``LogCoshError``,
``KLDivergence``, ``Poisson``, ``CosineSimilarity``, the hinges and the crossentropies — the same functions
as the losses, as in Keras), ``RootMeanSquaredError``, ``TopKCategoricalAccuracy`` and
``SparseTopKCategoricalAccuracy`` (TensorFlow's ``in_top_k``: ties at the k-th score count as in),
``Accuracy`` (exact equality) and ``R2Score``.
"""

from __future__ import annotations

import numpy as np

from . import losses, more_losses
from .loss_base import _float_dtype, _same_rank
from .metric_base import Mean, MeanMetricWrapper, Metric


def _loss_values(loss, negate: bool = False, from_logits: bool | None = None):
    """The per-sample values of ``loss`` (its ``_values``, without the reduction), as a metric function
    (``from_logits``: taking logits whatever the loss's own option)."""
    def values(y_true, y_pred):
        y_pred = np.asarray(y_pred)
        t, x = loss._align(np.asarray(y_true), y_pred.astype(_float_dtype(y_pred), copy=False))
        v = loss._values(t, x, loss.from_logits if from_logits is None else from_logits)[0]
        return -v if negate else v
    return values


class _LossMetric(MeanMetricWrapper):
    """The running mean of a loss's per-sample values (``loss_class`` built with the metric's options)."""

    loss_class: type
    default_name = ""
    negate = False
    _direction = "down"

    def __init__(self, name: str | None = None, dtype=np.float32, **options):
        if options.get("axis", -1) != -1:
            raise ValueError(f"{type(self).__name__}: only axis=-1 is supported; received axis={options['axis']}")
        options.pop("axis", None)
        self._options = options
        self._loss = self.loss_class(**options)
        super().__init__(_loss_values(self._loss, self.negate), name or self.default_name, dtype)

    def reads_logits(self, output_activation: str | None) -> bool:
        """Whether Keras computes this metric from the logits that a sigmoid or softmax output carries, as the
        crossentropy losses do (``losses.uses_logits``): TensorFlow's crossentropies read the tag whether loss
        or metric calls them, and a metric never reshapes the prediction first."""
        return self._loss.uses_output_logits(output_activation)

    def update_state_from_logits(self, y_true, logits, sample_weight=None, mask=None) -> None:
        """``update_state`` from the output's logits (:meth:`reads_logits`): unclipped, as Keras's."""
        values = _loss_values(self._loss, self.negate, from_logits=True)(np.asarray(y_true), np.asarray(logits))
        self._update_values(values, sample_weight, mask)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._options}


def _loss_metric(class_name: str, loss_class: type, name: str, direction: str = "down", negate: bool = False):
    return type(class_name, (_LossMetric,), {"loss_class": loss_class, "default_name": name, "negate": negate,
                                             "_direction": direction, "__doc__": f"Keras 3's ``{class_name}``."})


MeanAbsolutePercentageError = _loss_metric("MeanAbsolutePercentageError", more_losses.MeanAbsolutePercentageError,
                                           "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_metric("MeanSquaredLogarithmicError", more_losses.MeanSquaredLogarithmicError,
                                           "mean_squared_logarithmic_error")
LogCoshError = _loss_metric("LogCoshError", more_losses.LogCosh, "logcosh")
KLDivergence = _loss_metric("KLDivergence", more_losses.KLDivergence, "kl_divergence")
Poisson = _loss_metric("Poisson", more_losses.Poisson, "poisson")
CosineSimilarity = _loss_metric("CosineSimilarity", more_losses.CosineSimilarity, "cosine_similarity", "up",
                                negate=True)
Hinge = _loss_metric("Hinge", more_losses.Hinge, "hinge")
SquaredHinge = _loss_metric("SquaredHinge", more_losses.SquaredHinge, "squared_hinge")
CategoricalHinge = _loss_metric("CategoricalHinge", more_losses.CategoricalHinge, "categorical_hinge")
BinaryCrossentropy = _loss_metric("BinaryCrossentropy", losses.BinaryCrossentropy, "binary_crossentropy")
CategoricalCrossentropy = _loss_metric("CategoricalCrossentropy", losses.CategoricalCrossentropy,
                                       "categorical_crossentropy")
SparseCategoricalCrossentropy = _loss_metric("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy,
                                             "sparse_categorical_crossentropy")


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running mean of the squared errors (each sample's mean over its other axes), as
    Keras's; the output's mask is not applied (Keras passes masks to its mean-wrapper metrics only)."""

    _direction = "down"

    def __init__(self, name: str = "root_mean_squared_error", dtype=np.float32):
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        y_pred = np.asarray(y_pred).astype(self.dtype, copy=False)
        y_true, y_pred = _same_rank(np.asarray(y_true).astype(self.dtype, copy=False), y_pred)
        super().update_state(np.square(y_pred - y_true), sample_weight)

    def result(self) -> float:
        return float(np.sqrt(self.dtype.type(self.total / self.count))) if self.count else 0.0


class R2Score(Metric):
    """The coefficient of determination over everything seen (Keras 3's ``R2Score``: per output column
    ``1 - residual / total`` from float32 running sums, then ``class_aggregation`` — "uniform_average",
    "variance_weighted_average" or None, one score per column — and the adjusted score with ``num_regressors``)."""

    _direction = "up"

    def __init__(self, class_aggregation="uniform_average", num_regressors: int = 0, name: str = "r2_score",
                 dtype=np.float32):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"R2Score: class_aggregation should be None, 'uniform_average' or "
                             f"'variance_weighted_average', received {class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors should be >= 0, received {num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        sums = getattr(self, "sums", None)  # (sum, squared sum, residual, count) per column, float32: zeros once
        self.sums = None if sums is None else np.zeros_like(sums)  # built, as Keras's variables (its result: NaN)
        self.num_samples = np.float32(0)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        f = np.float32
        y_pred = np.asarray(y_pred).astype(f, copy=False)
        y_true, y_pred = _same_rank(np.asarray(y_true).astype(f, copy=False), y_pred)
        if y_pred.ndim != 2:
            raise ValueError(f"R2Score expects 2D inputs (batch_size, output_dim), received y_pred of shape "
                             f"{y_pred.shape}")
        w = np.ones((), f) if sample_weight is None else np.asarray(sample_weight, f)
        w = np.broadcast_to(w[:, None] if w.ndim == 1 else w, y_true.shape)
        weighted = y_true * w
        batch = np.stack([weighted.sum(0, dtype=f), (y_true * weighted).sum(0, dtype=f),
                          ((y_true - y_pred) ** 2 * w).sum(0, dtype=f), w.sum(0, dtype=f)])
        self.sums = batch if self.sums is None else (self.sums + batch).astype(f)
        self.num_samples = f(self.num_samples + f(y_true.size))

    def result(self):
        if self.sums is None:
            return 0.0
        total_sum, squared, residual, count = self.sums
        with np.errstate(divide="ignore", invalid="ignore"):
            total = squared - total_sum * (total_sum / count)
            raw = np.float32(1) - residual / total
        raw = np.where(np.isinf(raw), np.float32(0), raw)
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw, dtype=np.float32)
        elif self.class_aggregation == "variance_weighted_average":
            score = np.sum(total * raw, dtype=np.float32) / np.sum(total, dtype=np.float32)
        else:
            score = raw.astype(np.float32)  # (one per output: an array, as Keras's evaluate gives)
        n, p = float(self.num_samples), self.num_regressors
        if p and p < n - 1:
            score = np.float32(1) - (np.float32(1) - score) * np.float32(n - 1) / np.float32(n - p - 1)
        return float(score) if np.ndim(score) == 0 else score

    def get_config(self) -> dict:
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


def _in_top_k(targets: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """TensorFlow's ``in_top_k``: the target's score has fewer than ``k`` scores above it (ties at the boundary
    count as in); False for a row with a non-finite score or a target out of range."""
    rows = np.arange(len(targets))
    valid = (targets >= 0) & (targets < scores.shape[-1]) & np.isfinite(scores).all(axis=-1)
    target_scores = scores[rows, np.clip(targets, 0, scores.shape[-1] - 1)]
    above = np.sum(scores > target_scores[:, None], axis=-1)
    return valid & (above < k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true).astype(np.int64)
    shape = y_true.shape
    scores = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 2 else y_pred
    matches = _in_top_k(y_true.reshape(-1), scores, k).astype(np.float32)
    return matches.reshape(shape) if y_true.ndim > 1 else matches


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    return sparse_top_k_categorical_accuracy(np.argmax(np.asarray(y_true), axis=-1), y_pred, k)


class _TopK(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, fn, k: int, name: str, dtype):
        self.k = int(k)
        super().__init__(fn, name, dtype, k=self.k)

    def get_config(self) -> dict:
        return {**super().get_config(), "k": self.k}


class TopKCategoricalAccuracy(_TopK):
    """How often the one-hot target is among the ``k`` highest predictions (Keras 3's)."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype=np.float32):
        super().__init__(top_k_categorical_accuracy, k, name, dtype)


class SparseTopKCategoricalAccuracy(_TopK):
    """How often the integer target is among the ``k`` highest predictions (Keras 3's)."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype=np.float32,
                 from_sorted_ids: bool = False):
        if from_sorted_ids:
            raise ValueError("SparseTopKCategoricalAccuracy: from_sorted_ids=True is not supported by fastgru")
        super().__init__(sparse_top_k_categorical_accuracy, k, name, dtype)


def accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``y_true == y_pred`` (Keras's ``Accuracy``: exact equality)."""
    y_pred = np.asarray(y_pred)
    y_true, y_pred = _same_rank(np.asarray(y_true).astype(y_pred.dtype, copy=False), y_pred)
    return (y_true == y_pred).astype(np.float32)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal the targets exactly (Keras 3's ``Accuracy``; ``"accuracy"`` as a string
    picks the binary/categorical/sparse accuracy instead, as in Keras)."""

    _direction = "up"

    def __init__(self, name: str = "accuracy", dtype=np.float32):
        super().__init__(accuracy, name, dtype)


CLASSES = (MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError, KLDivergence, Poisson,
           CosineSimilarity, Hinge, SquaredHinge, CategoricalHinge, BinaryCrossentropy, CategoricalCrossentropy,
           SparseCategoricalCrossentropy, RootMeanSquaredError, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
           Accuracy, R2Score)
#: Keras's string names for them (snake-case class names and aliases)
NAMES = {"mape": MeanAbsolutePercentageError, "msle": MeanSquaredLogarithmicError, "bce": BinaryCrossentropy,
         "log_cosh_error": LogCoshError, "logcosh": LogCoshError, "kl_divergence": KLDivergence, "poisson": Poisson,
         # (tf_keras's aliases, in its files' compile configs)
         "log_cosh": LogCoshError, "kullback_leibler_divergence": KLDivergence, "kld": KLDivergence,
         "cosine_similarity": CosineSimilarity, "hinge": Hinge,
         "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
         "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
         "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
         "root_mean_squared_error": RootMeanSquaredError, "r2_score": R2Score,
         "top_k_categorical_accuracy": TopKCategoricalAccuracy,
         "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
         "mean_absolute_percentage_error": MeanAbsolutePercentageError,
         "mean_squared_logarithmic_error": MeanSquaredLogarithmicError}
