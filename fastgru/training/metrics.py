"""Streaming metrics as Keras 3 computes them (``AUC`` in :mod:`fastgru.training.auc`, exported here).

A metric turns each batch into one value per *sample* (the mean over every non-batch axis, so a
``(B, T)`` grid of per-step accuracies counts as ``B`` samples) and keeps a running ``total`` and
``count`` in float32, as Keras's ``Mean`` does; ``result()`` is ``total / count`` (0 when empty).
"""

from __future__ import annotations

import inspect

import numpy as np

from ..eager import eager_result
from ..layers import registry
from ..layers.names import snake_case
from . import correlation_metrics, f_score, iou_metrics, keras_objects, more_metrics, threshold_metrics
from .auc import AUC
from .correlation_metrics import ConcordanceCorrelation, PearsonCorrelation, Sum  # noqa: F401 (exported)
from .f_score import F1Score, FBetaScore  # noqa: F401 (exported)
from .iou_metrics import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU  # noqa: F401 (exported)
from .keras_objects import keras_config
from .loss_base import _same_rank
from .metric_base import Mean, MeanMetricWrapper, Metric, _reduce_to_samplewise, auto_name  # noqa: F401 (exported)
from .more_metrics import (  # noqa: F401 (fastgru.metrics exports them)
    Accuracy,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Poisson,
    R2Score,
    RootMeanSquaredError,
    SparseCategoricalCrossentropy,
    SparseTopKCategoricalAccuracy,
    SquaredHinge,
    TopKCategoricalAccuracy,
)
from .threshold_metrics import (  # noqa: F401 (exported)
    FalseNegatives,
    FalsePositives,
    PrecisionAtRecall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)


def _float_pred(y_pred):
    return y_pred if np.issubdtype(y_pred.dtype, np.floating) else y_pred.astype(np.float32)


@eager_result
def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """1.0 where ``(y_pred > threshold) == y_true``; shape of the rank-aligned labels."""
    y_true, y_pred = _same_rank(np.asarray(y_true), np.asarray(y_pred))
    pred = (y_pred > threshold).astype(y_true.dtype)
    return (y_true == pred).astype(np.float32)


@eager_result
def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` over the last axis."""
    y_pred = _float_pred(np.asarray(y_pred))
    y_true = np.argmax(np.asarray(y_true), axis=-1).astype(y_pred.dtype)
    org_shape = y_true.shape
    squeezed = y_true.ndim == y_pred.ndim
    if squeezed:
        y_true = y_true[..., 0]
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(np.float32)
    return matches.reshape(org_shape) if squeezed else matches


@eager_result
def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``y_true == argmax(y_pred)``; labels ``(B,)``, ``(B, 1)`` or ``(B, T)``."""
    y_pred = _float_pred(np.asarray(y_pred))
    y_true = np.asarray(y_true).astype(y_pred.dtype)
    org_shape = y_true.shape
    squeezed = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if squeezed:
        y_true = y_true[..., 0]
    matches = (y_true == np.argmax(y_pred, axis=-1).astype(y_true.dtype)).astype(np.float32)
    if squeezed:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches[..., 0]
    return matches


@eager_result
def mean_squared_error(y_true, y_pred) -> np.ndarray:
    """``mean((y_true - y_pred) ** 2, axis=-1)`` in y_pred's dtype."""
    y_pred = _float_pred(np.asarray(y_pred))
    y_true, y_pred = _same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return np.mean(np.square(y_true - y_pred), axis=-1, dtype=y_pred.dtype)


@eager_result
def mean_absolute_error(y_true, y_pred) -> np.ndarray:
    """``mean(|y_true - y_pred|, axis=-1)`` in y_pred's dtype."""
    y_pred = _float_pred(np.asarray(y_pred))
    y_true, y_pred = _same_rank(np.asarray(y_true).astype(y_pred.dtype), y_pred)
    return np.mean(np.abs(y_true - y_pred), axis=-1, dtype=y_pred.dtype)


class BinaryAccuracy(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, name: str = "binary_accuracy", dtype=np.float32, threshold: float = 0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, name: str = "categorical_accuracy", dtype=np.float32):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype=np.float32):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class MeanSquaredError(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name: str = "mean_squared_error", dtype=np.float32):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    _direction = "down"

    def __init__(self, name: str = "mean_absolute_error", dtype=np.float32):
        super().__init__(mean_absolute_error, name, dtype)


def accuracy_class(y_true_shape, y_pred_shape) -> type:
    """The accuracy Keras 3 picks for ``metrics=["accuracy"]`` from the first batch's shapes
    (``compile_utils.get_metric``): binary when the output's last dim is 1; sparse when the labels
    have lower rank, or a last dim of 1 against a wider output; categorical otherwise."""
    t, p = tuple(y_true_shape), tuple(y_pred_shape)
    if p[-1] == 1:
        return BinaryAccuracy
    if len(t) < len(p) or (t[-1] == 1 and p[-1] > 1):
        return SparseCategoricalAccuracy
    return CategoricalAccuracy


class AutoAccuracy(Metric):
    """``"accuracy"``: becomes binary/sparse/categorical accuracy on the first ``update_state``."""

    _direction = "up"

    def __init__(self, name: str = "accuracy", dtype=np.float32):
        self.metric: MeanMetricWrapper | None = None
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        if self.metric is not None:
            self.metric.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        if self.metric is None:
            cls = accuracy_class(np.shape(y_true), np.shape(y_pred))
            self.metric = cls(name=self.name, dtype=self.dtype)
        self.metric.update_state(y_true, y_pred, sample_weight, mask)

    def result(self) -> float:
        return 0.0 if self.metric is None else self.metric.result()


_NEG_INF = -1e10  # Keras's metrics_utils.NEG_INF

# Keras 3's Precision and Recall: weighted counts of true and false positives (negatives) of
# ``y_pred > threshold`` against ``y_true != 0`` over every entry of the batch (or one class's column with
# ``class_id``), kept in float32; the result TP / (TP + FP) (or TP / (TP + FN)), 0 when empty, one value per
# threshold when several are given; with ``top_k``, only each row's k largest predictions can count as positive.
class _Confusion(Metric):
    _direction = "up"
    _other = "fp"  # the count beside the true positives in the result's denominator

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=np.float32):
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
            raise ValueError(f"{type(self).__name__}: top_k must be a positive integer, received top_k={top_k!r}")
        # (with top_k, Keras's default threshold is its -1e10: every prediction among a row's top k counts)
        default = [0.5] if top_k is None else [_NEG_INF]
        values = default if thresholds is None else (list(thresholds) if isinstance(thresholds, (list, tuple))
                                                      else [thresholds])
        for t in values if thresholds is not None else ():
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
        """Add a batch's weighted counts (``mask``, the output's Keras mask, is ignored as Keras 3 does)."""
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, dtype=np.float32)
        if y_true.shape != y_pred.shape:
            if y_true.size != y_pred.size:
                raise ValueError(f"{self.name}: targets of shape {y_true.shape} do not match predictions of shape "
                                 f"{y_pred.shape}")
            y_true = y_true.reshape(y_pred.shape)
        weight = np.ones(y_pred.shape, np.float32)
        # (the output's mask is not applied: Keras 3 passes masks to its mean metrics only, not to these)
        for w in (sample_weight,):
            if w is not None:
                w = np.asarray(w, np.float32)
                w = w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim))
                weight = weight * np.broadcast_to(w, y_pred.shape)
        truth = y_true.astype(bool)
        if self.top_k is not None:  # (Keras: all but each row's top k set to -1e10; ties keep the lower index)
            order = np.argsort(-y_pred, axis=-1, kind="stable")[..., :self.top_k]
            kept = np.zeros(y_pred.shape, bool)
            np.put_along_axis(kept, order, True, axis=-1)
            y_pred = np.where(kept, y_pred, np.float32(_NEG_INF))
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
        return float(values[0]) if len(values) == 1 else values.astype(self.dtype)  # (one per threshold)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result()}>"

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_Confusion):
    """TP / (TP + FP) of ``y_pred > thresholds`` (0.5 by default)."""

    _other = "fp"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=np.float32):
        super().__init__(thresholds, top_k, class_id, name if name is not None else auto_name("precision"), dtype)


class Recall(_Confusion):
    """TP / (TP + FN) of ``y_pred > thresholds`` (0.5 by default)."""

    _other = "fn"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=np.float32):
        super().__init__(thresholds, top_k, class_id, name if name is not None else auto_name("recall"), dtype)


_CLASSES = {c.__name__: c for c in (Mean, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                    MeanSquaredError, MeanAbsoluteError, Precision, Recall, AUC, *more_metrics.CLASSES,
                                    *threshold_metrics.CLASSES, *f_score.CLASSES, *iou_metrics.CLASSES,
                                    *correlation_metrics.CLASSES)}
_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "auc": AUC, "precision": Precision, "recall": Recall, **more_metrics.NAMES,
    **threshold_metrics.NAMES, **f_score.NAMES, **iou_metrics.NAMES, **correlation_metrics.NAMES,
}


def unique_names(metrics: list) -> list:
    """``metrics`` with a repeated name suffixed ``_1``, ``_2``, ... (two ``Precision()`` in one compile log
    ``precision`` and ``precision_1``, as Keras names the second object it makes); renamed in place."""
    seen: set = set()
    for m in metrics:
        base, k = m.name, 0
        while m.name in seen:
            k += 1
            m.name = f"{base}_{k}"
        seen.add(m.name)
    return metrics


def get(identifier, y_true=None, y_pred=None, dtype=None) -> Metric:
    """Return a Metric for a name, a Keras config dict or a Metric instance.

    ``"accuracy"``/``"acc"`` (any case) resolve to binary, sparse or categorical accuracy from the
    shapes of ``y_true``/``y_pred`` (arrays or shapes) when given, else on the first update; like
    Keras, the choice depends on shapes only, not on the loss. A string gives a metric *named by
    that string* (``"mae"`` is reported as ``"mae"``), as in Keras's history, in ``dtype`` when given
    (Keras makes it in its floatx: float64 for a float64 model's compile).
    """
    typed = {} if dtype is None else {"dtype": dtype}
    if isinstance(identifier, Metric):
        return identifier
    if inspect.isfunction(identifier) and identifier.__module__.startswith("fastgru.training."):
        return get(identifier.__name__, y_true, y_pred, dtype)  # (fastgru's metric or loss function: by its name)
    converted = keras_config(identifier)  # a Keras object: its config, as a .keras file stores it
    if converted is not None:
        return get(converted, y_true, y_pred)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, dict):
        cls_name, config = identifier.get("class_name"), identifier.get("config") or {}
        if cls_name == "function":  # a serialised metric function: Keras's own, by its name ("mean_absolute_error")
            name = config if isinstance(config, str) else identifier.get("registered_name")
            try:
                return get(name, y_true, y_pred, dtype)
            except ValueError:
                function = registry.custom_function(name)  # (the script's own: load_model's custom_objects)
                if function is not None:
                    return get(function, y_true, y_pred, dtype)
                raise ValueError(f"metric {name!r} is a custom Python function, which fastgru cannot run from a "
                                 "file (give it in load_model's custom_objects, as Keras asks)") from None
        if not isinstance(config, dict):
            raise ValueError(f"metric {cls_name!r}: its config should be an object, found {config!r}")
        names = (identifier.get("registered_name"), cls_name)  # (its registered name may differ from its class's)
        own = None if cls_name in _CLASSES else next(
            (c for n in names if n and (c := registry.custom_function(n, Metric))), None)
        if own is not None:  # (a script's own Metric subclass: load_model's custom_objects, or registered)
            return own.from_config(dict(config))
        if cls_name not in _CLASSES:
            raise ValueError(f"unsupported metric class {cls_name!r} (a script's own is given in load_model's "
                             f"custom_objects); supported: {', '.join(sorted(_CLASSES))}")
        return _CLASSES[cls_name].from_config(dict(config))  # (a copy: the caller's config stays as it was)
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            if y_true is not None and y_pred is not None:
                shape_t = tuple(getattr(y_true, "shape", y_true))
                shape_p = tuple(getattr(y_pred, "shape", y_pred))
                return accuracy_class(shape_t, shape_p)(name=identifier, **typed)
            return AutoAccuracy(name=identifier, **typed)
        cls = _CLASSES.get(identifier) or _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls in (AUC, Precision, Recall):  # (Keras makes one without a name, which takes a number, then names it)
            metric = cls(**typed)
            metric.name = identifier
            return metric
        if cls is not None:
            return cls(name=identifier, **typed)
    if callable(getattr(identifier, "update_state", None)) and callable(getattr(identifier, "result", None)):
        raise ValueError(f"metric {type(identifier).__name__!r} is a metric object fastgru cannot run (Keras's own "
                         "class of a script: write it as a subclass of fastgru.metrics.Metric, the same code with "
                         "`import fastgru as keras`)")
    if callable(identifier) and not isinstance(identifier, type):  # (a Python function: its mean, as Keras's)
        return MeanMetricWrapper(identifier, snake_case(getattr(identifier, "__name__", None) or
                                                        type(identifier).__name__), **typed)
    raise ValueError(
        f"could not interpret metric identifier {identifier!r}; supported names: accuracy, acc, "
        + ", ".join(sorted(k for k in _BY_NAME if k.islower()))
    )


def serialize(metric) -> dict | str | None:
    """Keras's ``keras.metrics.serialize``: the metric's config, as a ``.keras`` file holds it."""
    return keras_objects.serialize(metric, "metrics")


def deserialize(config, custom_objects: dict | None = None):
    """Keras's ``keras.metrics.deserialize``: the metric of a config (or name); ``custom_objects``: a script's
    own classes and functions, by name."""
    with registry.custom_layers(custom_objects):
        return get(config)
