"""Keras 3's ``AUC`` metric: the area under the ROC or precision-recall curve from weighted confusion
counts at fixed thresholds, accumulated over batches (``keras/src/metrics/confusion_metrics.py`` and
``metrics_utils.update_confusion_matrix_variables``), exported by :mod:`fastgru.training.metrics`.

Evenly spaced thresholds (the default ``num_thresholds`` grid, or given ones that are) take Keras's bucket
path: predictions clipped to [0, 1], bucket ``ceil(p (N - 1)) - 1`` (at least 0), counts by reverse cumulative
sums; other thresholds compare ``p > threshold`` directly (no clipping). Counts are kept in the metric's
dtype (float32), and the result uses TensorFlow's ``divide_no_nan`` (0 where a denominator is 0).
"""

from __future__ import annotations

import numbers

import numpy as np

from .loss_base import _EPSILON, _same_rank
from .metric_base import Metric, auto_name

_CURVES = {"ROC": "ROC", "roc": "ROC", "PR": "PR", "pr": "PR", "PRGAIN": "PRGAIN", "prgain": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "Interpolation": "interpolation", "majoring": "majoring",
               "Majoring": "majoring", "minoring": "minoring", "Minoring": "minoring"}


def _div_no_nan(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``tf.math.divide_no_nan``: ``x / y``, and 0 where ``y == 0``."""
    zero = y == 0
    return np.where(zero, x.dtype.type(0), x / np.where(zero, y.dtype.type(1), y))


def _even(thresholds) -> bool:
    """Keras's ``is_evenly_distributed_thresholds`` of ``[0] + thresholds + [1]``."""
    values = np.array([0.0] + list(thresholds) + [1.0])
    n = len(values)
    return n >= 3 and bool(np.allclose(values, np.arange(n, dtype=np.float32) / (n - 1), atol=_EPSILON))


def _label_weights(value, dtype):
    if value is None:
        return None
    if isinstance(value, dict) and value.get("class_name") == "__tensor__":  # a .keras file's serialized tensor
        value = value.get("config", {}).get("value")
    try:
        weights = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"label_weights must be a list of numbers; received {value!r}") from None
    if weights.ndim != 1:
        raise ValueError(f"label_weights must be one weight per label (a 1-D list); received shape {weights.shape}")
    return weights



def tf_sum(t: np.ndarray) -> np.float32:
    """The float32 sum of a vector added in the order TensorFlow's CPU kernel adds it (Eigen's inner-most
    reduction on 8-float packets: four packet accumulators over blocks of 32 values, the packets left over into
    the first, the accumulators added in order, the values past the last packet summed on their own, then the
    lanes' horizontal sum), so that a Keras AUC's sum of its 199 trapezoids rounds as Keras's does: one float32
    step apart moves EarlyStopping's decisions (1.0 against 0.99999994 on a perfectly separated batch)."""
    t = np.ascontiguousarray(t, dtype=np.float32).reshape(-1)
    lanes, k = 8, 4
    vec = t.size // lanes * lanes
    unroll = t.size // (k * lanes) * k * lanes
    accs = np.zeros((k, lanes), np.float32)
    if unroll:
        accs = np.cumsum(t[:unroll].reshape(-1, k, lanes), axis=0, dtype=np.float32)[-1]
    if vec > unroll:  # (np.cumsum adds in order: one packet after another)
        accs[0] = np.cumsum(np.concatenate([accs[:1], t[unroll:vec].reshape(-1, lanes)]), axis=0, dtype=np.float32)[-1]
    packet = accs[0]
    for a in accs[1:]:
        packet = packet + a
    tail = np.float32(0)
    for v in t[vec:]:
        tail = np.float32(tail + v)
    half = packet[:4] + packet[4:]
    return np.float32(tail + np.float32(np.float32(half[0] + half[2]) + np.float32(half[1] + half[3])))

class AUC(Metric):
    """Area under the ROC (default) or PR curve, as ``keras.metrics.AUC`` (same arguments and defaults).

    ``update_state(y_true, y_pred, sample_weight=None)``: labels (nonzero = positive) and predictions of the
    same shape, e.g. (B, 1), (B, L) or (B, T, 1); with ``multi_label`` (B, L), one AUC per label averaged
    (weighted by ``label_weights``). ``from_logits`` applies a sigmoid first. ``result()`` is a float.
    As Keras's, the output's mask is not applied (Keras passes masks to mean metrics only).
    """

    _direction = "up"

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str | None = None, dtype=None, thresholds=None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights=None, from_logits: bool = False):
        if curve not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]')
        if summation_method not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                             '["interpolation", "majoring", "minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            if not isinstance(thresholds, (list, tuple, np.ndarray)) or not all(
                    isinstance(t, numbers.Real) and not isinstance(t, bool) for t in np.ravel(thresholds).tolist()):
                raise ValueError(f"thresholds must be a list of numbers; received {thresholds!r}")
            inner = sorted(float(t) for t in np.ravel(thresholds).tolist())
            self.num_thresholds = len(inner) + 2
            self._thresholds_distributed_evenly = _even(inner)
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, numbers.Integral) \
                    or num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # endpoints below 0 and above 1, for predictions of exactly 0 or 1
        self._thresholds = np.array([0.0 - _EPSILON] + inner + [1.0 + _EPSILON])
        self.curve = _CURVES[curve]
        self.summation_method = _SUMMATIONS[summation_method]
        if not multi_label and num_labels:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.multi_label = bool(multi_label)
        self.num_labels = num_labels
        self.from_logits = bool(from_logits)
        self._num_labels = int(num_labels) if multi_label and num_labels else None
        dtype = np.float32 if dtype is None else dtype
        self.label_weights = _label_weights(label_weights, dtype)
        super().__init__(name if name is not None else auto_name("auc"), dtype)

    @property
    def thresholds(self) -> list:
        """The thresholds, with Keras's endpoints ``-1e-7`` and ``1 + 1e-7``."""
        return list(self._thresholds)

    def reset_state(self) -> None:
        shape = (self.num_thresholds,) if not self.multi_label else (self.num_thresholds, self._num_labels or 0)
        self.true_positives, self.false_positives, self.true_negatives, self.false_negatives = (
            np.zeros(shape, self.dtype) for _ in range(4))

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        """Add a batch's weighted counts (``mask``, the output's Keras mask, is ignored as Keras does)."""
        dt = self.dtype
        y_pred = np.asarray(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(dt)
        if self.multi_label:
            if y_pred.ndim != 2:
                raise ValueError(f"`y_pred` must have rank 2 when `multi_label=True`. Found rank {y_pred.ndim}. "
                                 f"Full shape received for `y_pred`: {y_pred.shape}")
            if self._num_labels is None:
                self._num_labels = y_pred.shape[1]
                self.reset_state()
            elif y_pred.shape[1] != self._num_labels:
                raise ValueError(f"{self.name}: built for {self._num_labels} labels, received y_pred of shape "
                                 f"{y_pred.shape}")
        if self.from_logits:
            e = np.exp(-np.abs(y_pred))
            y_pred = np.where(y_pred >= 0, 1 / (1 + e), e / (1 + e))
        y_pred = y_pred.astype(dt, copy=False)
        y_true = np.asarray(y_true).astype(dt)
        y_pred, y_true = _same_rank(y_pred, y_true)
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: labels of shape {y_true.shape} do not match predictions of shape "
                             f"{y_pred.shape}")
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=dt)[..., None]
            _, sw = _same_rank(y_true, sw, expand_rank_1=False)
            try:
                sample_weight = np.broadcast_to(sw, y_pred.shape)
            except ValueError:
                raise ValueError(f"{self.name}: sample_weight of shape {np.shape(sample_weight)} does not "
                                 f"broadcast to predictions of shape {y_pred.shape}") from None
        label_weights = None
        if self.label_weights is not None and not self.multi_label:
            label_weights = np.broadcast_to(self.label_weights[None], y_pred.shape)
        counts = (self._bucket_counts if self._thresholds_distributed_evenly else self._threshold_counts)(
            y_true, y_pred, sample_weight, label_weights)
        for name, value in zip(("true_positives", "false_positives", "true_negatives", "false_negatives"), counts):
            setattr(self, name, (getattr(self, name) + value).astype(dt, copy=False))

    def _bucket_counts(self, y_true, y_pred, sample_weight, label_weights):
        """Keras's ``_update_confusion_matrix_variables_optimized``: (tp, fp, tn, fn)."""
        dt, n = self.dtype.type, self.num_thresholds
        weights = dt(1)
        for w in (sample_weight, label_weights):
            if w is not None:
                weights = weights * (w if self.multi_label else w.reshape(-1))
        y_pred = np.clip(y_pred, dt(0), dt(1))
        y_true = (y_true != 0).astype(self.dtype)
        if not self.multi_label:
            y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
        true_labels = y_true * weights
        false_labels = (dt(1) - y_true) * weights
        buckets = np.maximum(np.ceil(y_pred * (dt(n) - dt(1))) - dt(1), dt(0))
        # a NaN prediction has no bucket: Keras's bucket index for it is INT_MIN, which its segment sums
        # drop (it then counts as below every threshold: a false negative or a true negative)
        nan = np.isnan(buckets)
        buckets = np.where(nan, dt(0), buckets).astype(np.int32)
        kept = np.where(nan, dt(0), dt(1))
        if self.multi_label:  # one column per label
            columns = range(y_pred.shape[1])
            tp_b = np.stack([self._segment_sum((true_labels * kept)[:, j], buckets[:, j], n) for j in columns], axis=1)
            fp_b = np.stack([self._segment_sum((false_labels * kept)[:, j], buckets[:, j], n) for j in columns], axis=1)
            total_true, total_false = (np.sum(a, axis=0, dtype=self.dtype) for a in (true_labels, false_labels))
        else:
            tp_b = self._segment_sum(true_labels * kept, buckets, n)
            fp_b = self._segment_sum(false_labels * kept, buckets, n)
            total_true, total_false = (np.sum(a, dtype=self.dtype) for a in (true_labels, false_labels))
        tp = np.cumsum(tp_b[::-1], axis=0, dtype=self.dtype)[::-1]
        fp = np.cumsum(fp_b[::-1], axis=0, dtype=self.dtype)[::-1]
        return tp, fp, total_false - fp, total_true - tp

    def _segment_sum(self, values, segments, n):
        out = np.zeros(n, self.dtype)
        np.add.at(out, segments, np.broadcast_to(values, segments.shape).astype(self.dtype, copy=False))
        return out

    def _threshold_counts(self, y_true, y_pred, sample_weight, label_weights):
        """Keras's general path: ``y_pred > threshold`` for every threshold, weighted sums: (tp, fp, tn, fn)."""
        thresholds = self._thresholds.astype(self.dtype)
        if self.multi_label:
            pred = y_pred[None] > thresholds[:, None, None]  # (N, B, L)
            label = np.broadcast_to((y_true != 0)[None], pred.shape)
        else:
            pred = y_pred.reshape(1, -1) > thresholds[:, None]  # (N, B * L)
            label = np.broadcast_to((y_true != 0).reshape(1, -1), pred.shape)
        weights = None
        for w in (sample_weight, label_weights):
            if w is not None:
                w = w[None] if self.multi_label else w.reshape(1, -1)
                weights = w if weights is None else weights * w

        def total(condition):
            if weights is None:
                return np.sum(condition, axis=1, dtype=self.dtype)
            return np.sum(np.where(condition, weights, self.dtype.type(0)), axis=1, dtype=self.dtype)

        return total(label & pred), total(~label & pred), total(~label & ~pred), total(label & ~pred)

    def _average(self, terms: np.ndarray) -> float:
        if not self.multi_label:
            return float(tf_sum(terms) if terms.dtype == np.float32 else np.sum(terms, dtype=self.dtype))
        by_label = np.sum(terms, axis=0, dtype=self.dtype)
        if self.label_weights is None:
            return float(np.mean(by_label, dtype=self.dtype)) if by_label.size else 0.0
        return float(_div_no_nan(np.sum(by_label * self.label_weights, dtype=self.dtype),
                                 np.sum(self.label_weights, dtype=self.dtype)))

    def interpolate_pr_auc(self) -> float:
        """The PR curve's area with Davis & Goadrich's interpolation of TP and FP (Keras's closed form)."""
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        zero = self.dtype.type(0)
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _div_no_nan(dtp, np.maximum(dp, zero))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0), _div_no_nan(p[:-1], np.maximum(p[1:], zero)),
                         np.ones_like(p[1:]))
        with np.errstate(divide="ignore"):
            terms = _div_no_nan(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], zero))
        return self._average(terms)

    def result(self) -> float:
        if self.multi_label and self._num_labels is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        one = self.dtype.type(1)
        recall = _div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _div_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scaling = _div_no_nan(tp + fn, tn + fp)
            recall_gain = np.where(tp == 0, self.dtype.type(0), one - scaling * _div_no_nan(fn, tp))
            precision_gain = np.where(tp == 0, one, one - scaling * _div_no_nan(fp, tp))
            x, y = np.maximum(recall_gain, self.dtype.type(0)), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / self.dtype.type(2)
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict:
        config = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
                  "summation_method": self.summation_method, "multi_label": self.multi_label,
                  "num_labels": self.num_labels,
                  "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:  # without the endpoints, as Keras
            config["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return config

    def __repr__(self) -> str:
        return f"<AUC name={self.name!r} curve={self.curve} result={self.result():.6g}>"
