"""Keras 3's other losses, beside the crossentropies and the common regression losses of
:mod:`fastgru.training.losses` (which exports them all and finds them by name): logarithmic and
percentage errors, log-cosh, Poisson, KL divergence, cosine similarity and the hinge losses. Each gives
its per-position values and their gradient as :class:`fastgru.training.losses.Loss` expects, with
Keras's clipping and epsilons.
"""

from __future__ import annotations

import numpy as np

from .loss_base import _EPSILON, Loss, _sum_to_shape


class MeanSquaredLogarithmicError(Loss):
    """``mean_last_axis((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2)``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_squared_logarithmic_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        eps = dt(_EPSILON)
        xm = np.maximum(x, eps)
        diff = np.log(xm + dt(1)) - np.log(np.maximum(t, eps) + dt(1))
        d = dt(x.shape[-1])
        grad = np.where(x >= eps, dt(2) * diff / (xm + dt(1)), dt(0)) / d
        return np.sum(np.square(diff), axis=-1, dtype=x.dtype) / d, grad


class MeanAbsolutePercentageError(Loss):
    """``100 * mean_last_axis(|(y_true - y_pred) / max(|y_true|, eps)|)``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_absolute_percentage_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        scale = np.maximum(np.abs(t), dt(_EPSILON))
        u = (t - x) / scale
        d = dt(x.shape[-1])
        return dt(100) * (np.sum(np.abs(u), axis=-1, dtype=x.dtype) / d), dt(100) * (-np.sign(u) / scale) / d


class LogCosh(Loss):
    """``mean_last_axis(log(cosh(y_pred - y_true)))``, computed as Keras: ``e + softplus(-2e) - log(2)``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "log_cosh"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        e = x - t
        z = dt(-2) * e
        softplus = np.maximum(z, dt(0)) + np.log1p(np.exp(-np.abs(z)))
        log2 = dt(np.log(np.float32(2.0)))  # Keras: ops.log(2.0) in float32, then cast
        d = dt(x.shape[-1])
        sig = np.exp(-np.logaddexp(dt(0), -z)).astype(x.dtype)  # sigmoid(z)
        return np.sum(e + softplus - log2, axis=-1, dtype=x.dtype) / d, (dt(1) - dt(2) * sig) / d


class KLDivergence(Loss):
    """``sum_last_axis(t * log(t / p))`` with both clipped to ``[eps, 1]``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "kl_divergence"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        tc = np.clip(t, dt(_EPSILON), dt(1))
        xc = np.clip(x, dt(_EPSILON), dt(1))
        inside = (x >= dt(_EPSILON)) & (x <= dt(1))
        return np.sum(tc * np.log(tc / xc), axis=-1, dtype=x.dtype), np.where(inside, -tc / xc, dt(0))


class Poisson(Loss):
    """``mean_last_axis(y_pred - y_true * log(y_pred + eps))``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "poisson"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        eps = dt(_EPSILON)
        d = dt(x.shape[-1])
        return (np.sum(x - t * np.log(x + eps), axis=-1, dtype=x.dtype) / d, (dt(1) - t / (x + eps)) / d)


class CosineSimilarity(Loss):
    """``-sum_last_axis(l2_normalize(y_true) * l2_normalize(y_pred))``, Keras's normalization
    ``x * min(rsqrt(sum x^2), 1 / eps)``."""

    broadcasts_output = False  # (targets of another width: each normalized first, then broadcast, as Keras)

    def __init__(self, axis: int = -1, reduction: str = "sum_over_batch_size", name: str = "cosine_similarity"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}

    def _values(self, t, x, logits):
        dt = x.dtype.type
        cap = dt(1.0 / _EPSILON)

        def inv_norm(a):
            with np.errstate(divide="ignore"):
                return np.minimum(dt(1) / np.sqrt(np.sum(np.square(a), axis=-1, keepdims=True, dtype=a.dtype)), cap)

        rt, rx = inv_norm(t), inv_norm(x)
        nt, nx = t * rt, x * rx  # (each normalized along its own last axis, then broadcast, as Keras)
        values = -np.sum(nt * nx, axis=-1, dtype=x.dtype)
        full = np.broadcast_shapes(nt.shape, nx.shape)
        s = _sum_to_shape(np.broadcast_to(nt, full), nx.shape)  # (what multiplies each normalized output entry)
        clamped = rx >= cap
        grad = np.where(clamped, -s * cap, -rx * (s - nx * np.sum(s * nx, axis=-1, keepdims=True, dtype=x.dtype)))
        return values, grad


def _hinge_labels(t):
    """Keras's convert_binary_labels_to_hinge: 0/1 labels become -1/+1 (any other labels are kept)."""
    dt = t.dtype.type
    return dt(2) * t - dt(1) if np.all((t == 0) | (t == 1)) else t


class Hinge(Loss):
    """``mean_last_axis(max(1 - t * y_pred, 0))``, 0/1 labels taken as -1/+1."""

    squared = False

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "hinge"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        t = _hinge_labels(t)
        margin = dt(1) - t * x
        m = np.maximum(margin, dt(0))
        d = dt(x.shape[-1])
        if self.squared:
            return np.sum(np.square(m), axis=-1, dtype=x.dtype) / d, dt(2) * m * (-t) / d
        return np.sum(m, axis=-1, dtype=x.dtype) / d, np.where(margin >= 0, -t, dt(0)) / d


class SquaredHinge(Hinge):
    """``mean_last_axis(max(1 - t * y_pred, 0) ** 2)``, 0/1 labels taken as -1/+1."""

    squared = True

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "squared_hinge"):
        super().__init__(reduction, name)


class CategoricalHinge(Loss):
    """``max(max((1 - t) * y_pred) - sum(t * y_pred) + 1, 0)`` over the last axis."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "categorical_hinge"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        dt = x.dtype.type
        pos = np.sum(t * x, axis=-1, dtype=x.dtype)
        other = (dt(1) - t) * x
        neg = other.max(axis=-1)
        at_max = other == neg[..., None]  # the max's gradient is shared by ties, as TensorFlow's
        share = at_max / at_max.sum(axis=-1, keepdims=True).astype(x.dtype)
        arg = neg - pos + dt(1)
        grad = np.where((arg >= 0)[..., None], share * (dt(1) - t) - t, dt(0))
        return np.maximum(arg, dt(0)), grad.astype(x.dtype, copy=False)
