"""Keras 3's segmentation-style losses, ``Dice`` and ``Tversky``, and ``CategoricalGeneralizedCrossEntropy``.

Dice and Tversky score the overlap of ``y_true`` and ``y_pred`` summed over ``axis`` (None: every axis, the batch's
too, one value for the batch; ``(1, 2, ...)``: one value per sample), with Keras's formulas and epsilon:

* Dice: ``1 - 2·Σ t·p / (Σ t + Σ p + ε)``;
* Tversky: ``1 - Σ t·p / (Σ t·p + α·Σ (1 - p)·t + β·Σ p·(1 - t) + ε)`` (Keras's α weighs the first of those, β the
  second).

Their values are reduced as Keras reduces a loss's values (a sample weight broadcast against them). The
generalized crossentropy takes integer labels and probabilities: ``(1 - p_label**q) / q``, broadcast as Keras's
``one_hot`` of the labels against the prediction.
"""

from __future__ import annotations

import numbers

import numpy as np

from .loss_base import _EPSILON, Loss, _float_dtype, _same_rank, _sum_to_shape


class _Overlap(Loss):
    """What Dice and Tversky share: ``axis``, the values over it, Keras's reduction of them."""

    def __init__(self, reduction: str, name: str, axis):
        super().__init__(name, reduction)
        if axis is not None and not (isinstance(axis, numbers.Integral) or (
                isinstance(axis, (list, tuple)) and all(isinstance(a, numbers.Integral) for a in axis))):
            raise ValueError(f"{type(self).__name__}: axis must be None, an int or a tuple of ints; received {axis!r}")
        self.axis = None if axis is None else tuple(int(a) for a in np.atleast_1d(axis))

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": None if self.axis is None else list(self.axis)}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**{k: v for k, v in config.items() if k not in ("dtype", "fn")})

    def _overlap(self, t: np.ndarray, p: np.ndarray, axis):
        """(values over ``axis``, d value / d p at every position of ``p``)."""
        raise NotImplementedError

    def _run(self, y_true, y_pred, logits, sample_weight, mask, grad):
        y_pred = np.asarray(y_pred)
        dtype = _float_dtype(y_pred)
        t, p = _same_rank(np.asarray(y_true), y_pred.astype(dtype, copy=False))
        try:
            shape = np.broadcast_shapes(t.shape, p.shape)
        except ValueError:
            raise ValueError(f"{type(self).__name__}: targets of shape {np.shape(y_true)} do not fit the model's "
                             f"output of shape {y_pred.shape}") from None
        if self.axis is not None and any(not -len(shape) <= a < len(shape) for a in self.axis):
            raise ValueError(f"{type(self).__name__}: axis {self.axis} is outside the output's {len(shape)} axes")
        t = np.broadcast_to(t.astype(dtype, copy=False), shape)
        pb = np.broadcast_to(p, shape)
        values, dvalue = self._overlap(t, pb, self.axis)
        weight = np.ones((), dtype)
        if sample_weight is not None:
            weight, values_r = _same_rank(np.asarray(sample_weight, dtype), values)
            weight = weight if values_r.shape == values.shape else weight.reshape(weight.shape + (1,))
        if mask is not None:
            raise ValueError(f"{type(self).__name__}: the model's output carries a mask; the loss sums over whole "
                             "samples and takes none")
        try:
            weighted = values * weight
        except ValueError:
            raise ValueError(f"{type(self).__name__}: sample_weight of shape {np.shape(sample_weight)} does not "
                             f"broadcast to the loss values of shape {values.shape}") from None
        count = weighted.size if self.reduction != "sum" else 1
        loss = np.sum(weighted, dtype=dtype) / dtype.type(count) if count else dtype.type(0)
        if not grad:
            return float(loss), None
        upstream = _sum_to_shape(np.broadcast_to(weight / dtype.type(count), weighted.shape).astype(dtype),
                                 values.shape).reshape(values.shape)
        kept = upstream if self.axis is None else np.expand_dims(upstream, self.axis)
        g = (dvalue * kept).astype(dtype, copy=False)
        return float(loss), _sum_to_shape(g, y_pred.shape).reshape(y_pred.shape)


class Dice(_Overlap):
    """``1 - 2·Σ t·p / (Σ t + Σ p + ε)`` over ``axis``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "dice", axis=None):
        super().__init__(reduction, name, axis)

    def _overlap(self, t, p, axis):
        dt = p.dtype.type
        intersection = np.sum(t * p, axis=axis, dtype=p.dtype, keepdims=True)
        denominator = np.sum(t, axis=axis, dtype=p.dtype, keepdims=True) + np.sum(
            p, axis=axis, dtype=p.dtype, keepdims=True) + dt(_EPSILON)
        values = dt(1) - dt(2) * intersection / denominator
        dvalue = -dt(2) * t / denominator + dt(2) * intersection / np.square(denominator)
        return _squeeze(values, axis), dvalue


class Tversky(_Overlap):
    """``1 - Σ t·p / (Σ t·p + α·Σ (1 - p)·t + β·Σ p·(1 - t) + ε)`` over ``axis``."""

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, reduction: str = "sum_over_batch_size",
                 name: str = "tversky", axis=None):
        super().__init__(reduction, name, axis)
        self.alpha, self.beta = float(alpha), float(beta)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}

    def _overlap(self, t, p, axis):
        dt = p.dtype.type
        alpha, beta = dt(self.alpha), dt(self.beta)
        intersection = np.sum(t * p, axis=axis, dtype=p.dtype, keepdims=True)
        missed = np.sum((dt(1) - p) * t, axis=axis, dtype=p.dtype, keepdims=True)
        spurious = np.sum(p * (dt(1) - t), axis=axis, dtype=p.dtype, keepdims=True)
        denominator = intersection + missed * alpha + spurious * beta + dt(_EPSILON)
        values = dt(1) - intersection / denominator
        d_denominator = t - alpha * t + beta * (dt(1) - t)
        dvalue = -(t * denominator - intersection * d_denominator) / np.square(denominator)
        return _squeeze(values, axis), dvalue


def _squeeze(values: np.ndarray, axis) -> np.ndarray:
    return values.reshape(()) if axis is None else np.squeeze(values, axis=axis)


class CategoricalGeneralizedCrossEntropy(Loss):
    """``(1 - p**q) / q`` of the probability ``p`` of each integer label (Keras: ``one_hot`` of the labels times the
    prediction, summed over the classes, with NumPy's broadcasting)."""

    def __init__(self, q: float = 0.5, reduction: str = "sum_over_batch_size",
                 name: str = "categorical_generalized_cross_entropy"):
        super().__init__(name, reduction)
        if not 0.0 < float(q) < 1.0:
            raise ValueError(f"q must lie in (0, 1); received q={q}")
        self.q = float(q)

    def get_config(self) -> dict:
        return {**super().get_config(), "q": self.q}

    def _align(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        labels = y_true.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[-1]):
            raise ValueError(f"{type(self).__name__}: labels must lie in [0, {y_pred.shape[-1]}); received values "
                             f"from {labels.min()} to {labels.max()}")
        return labels, y_pred

    def _values(self, labels, x, logits):
        dt = x.dtype.type
        onehot = np.eye(x.shape[-1], dtype=bool)[labels]  # (labels' shape, C)
        try:
            shape = np.broadcast_shapes(onehot.shape, x.shape)
        except ValueError:
            raise ValueError(f"labels of shape {onehot.shape[:-1]} against probabilities of shape {x.shape}") from None
        xb = np.broadcast_to(x, shape)
        p = np.sum(np.where(onehot, xb, dt(0)), axis=-1, dtype=x.dtype)
        q = dt(self.q)
        values = (dt(1) - np.power(p, q)) / q
        with np.errstate(divide="ignore", invalid="ignore"):
            dp = -np.power(p, q - dt(1))
        return values, np.where(onehot, dp[..., None], dt(0)).astype(x.dtype)
