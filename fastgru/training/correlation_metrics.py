"""Keras 3's correlation metrics and ``Sum`` (``keras/src/metrics/correlation_metrics.py`` and
``reduction_metrics.py``): metrics that reduce per-sample values rather than count classes.

``PearsonCorrelation`` and ``ConcordanceCorrelation`` are running means (as ``MeanMetricWrapper``: the output's
mask and ``sample_weight`` apply as for the other mean metrics) of one coefficient per sample, computed over
``axis`` (the features, -1 by default) of ``(B, F)`` targets and predictions. ``Sum`` adds values:
``update_state(values, sample_weight=None)``, each sample's values summed over its other axes.
"""

from __future__ import annotations

import numpy as np

from .loss_base import _EPSILON, _same_rank
from .metric_base import MeanMetricWrapper, Metric
from .threshold_metrics import _float_dtype


def _pair(y_true, y_pred):
    y_pred = np.asarray(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float32)
    y_true = np.asarray(y_true).astype(y_pred.dtype, copy=False)
    y_true, y_pred = _same_rank(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"expected y_true of the shape of y_pred {y_pred.shape}; received y_true of shape "
                         f"{y_true.shape}")
    return y_true, y_pred


def _mean(x: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(x, axis=axis, keepdims=True, dtype=x.dtype)


def _var(x: np.ndarray, axis: int) -> np.ndarray:
    """TensorFlow's ``reduce_variance``: the mean squared deviation from the mean (no Bessel correction)."""
    return _mean(np.square(x - _mean(x, axis)), axis)


def pearson_correlation(y_true, y_pred, axis: int = -1) -> np.ndarray:
    """Pearson's coefficient of each sample over ``axis``, as Keras's ``pearson_correlation``: ``(B, F)`` ->
    ``(B,)``; NaN for a constant sample, as in Keras."""
    y_true, y_pred = _pair(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = y_true - _mean(y_true, axis)
        p = y_pred - _mean(y_pred, axis)
        t = t / np.sqrt(_var(t, axis))
        p = p / np.sqrt(_var(p, axis))
        return np.mean(t * p, axis=axis, dtype=t.dtype)


def concordance_correlation(y_true, y_pred, axis: int = -1) -> np.ndarray:
    """Lin's concordance coefficient of each sample over ``axis``, as Keras 3's ``concordance_correlation``
    computes it (its covariance term centres ``y_true`` on the *predictions'* mean, reproduced here so that the
    numbers are Keras's): ``(B, F)`` -> ``(B,)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    dt = y_pred.dtype.type
    true_mean, pred_mean = _mean(y_true, axis), _mean(y_pred, axis)
    true_var, pred_var = _var(y_true - true_mean, axis), _var(y_pred - pred_mean, axis)
    covar = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + np.square(true_mean - pred_mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(dt(2) * covar / (norm + dt(_EPSILON)), axis=axis, dtype=y_pred.dtype)


class _Correlation(MeanMetricWrapper):
    _direction = "up"

    def __init__(self, fn, name: str, dtype, axis: int):
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: axis must be an integer; received {axis!r}")
        self.axis = int(axis)
        super().__init__(fn, name, _float_dtype(dtype), axis=self.axis)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class PearsonCorrelation(_Correlation):
    """The running mean of each sample's Pearson coefficient over ``axis`` (Keras 3's)."""

    def __init__(self, name: str = "pearson_correlation", dtype=None, axis: int = -1):
        super().__init__(pearson_correlation, name, dtype, axis)


class ConcordanceCorrelation(_Correlation):
    """The running mean of each sample's concordance coefficient over ``axis`` (Keras 3's)."""

    def __init__(self, name: str = "concordance_correlation", dtype=None, axis: int = -1):
        super().__init__(concordance_correlation, name, dtype, axis)


_NOT_GIVEN = object()


class Sum(Metric):
    """The running (weighted) sum of values, as ``keras.metrics.Sum``: ``update_state(values,
    sample_weight=None)``; values ``(B, ...)`` are weighted per sample (``sample_weight`` ``(B,)`` or of their
    shape) and added up in the metric's dtype. Not a compiled metric (it takes values, not targets and
    predictions), as in Keras."""

    def __init__(self, name: str = "sum", dtype=None):
        super().__init__(name, _float_dtype(dtype))

    def reset_state(self) -> None:
        self.total = self.dtype.type(0)

    def update_state(self, values, sample_weight=None, mask=_NOT_GIVEN) -> None:
        if mask is not _NOT_GIVEN:
            raise ValueError(f"{self.name}: Sum adds values, update_state(values, sample_weight=None); it cannot be "
                             "compiled as a metric of (y_true, y_pred)")
        dt = self.dtype
        values = np.asarray(values).astype(dt, copy=False)
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dt)
            values, weight = _same_rank(values, weight)
            if values.ndim > weight.ndim:
                values = np.sum(values, axis=tuple(range(weight.ndim, values.ndim)), dtype=dt)
            try:
                values = values * np.broadcast_to(weight, values.shape)
            except ValueError:
                raise ValueError(f"{self.name}: expected a sample_weight that broadcasts to the values' shape "
                                 f"{values.shape}; received shape {np.shape(sample_weight)}") from None
        if values.ndim > 1:  # (each sample's sum first, as Keras's ``reduce_to_samplewise_values``)
            values = np.sum(values, axis=tuple(range(1, values.ndim)), dtype=dt)
        self.total = dt.type(self.total + np.sum(values, dtype=dt))

    def result(self) -> float:
        return float(self.total)


CLASSES = (PearsonCorrelation, ConcordanceCorrelation, Sum)
#: Keras's string names for them (its snake-case class names)
NAMES = {"pearson_correlation": PearsonCorrelation, "concordance_correlation": ConcordanceCorrelation,
         "sum": Sum}
