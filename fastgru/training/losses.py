"""Losses with analytic gradients, matching Keras 3 (TensorFlow backend) value for value.

Every loss reduces one value per sample position (the last axis is reduced: averaged for the
regression losses and BCE, summed over classes for the categorical ones) and then applies Keras's
default reduction ``"sum_over_batch_size"``: the sum of those values divided by their count. For a
``(B, T, C)`` output that is the mean over batch *and* time.

Probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras does, with a zero gradient outside that
range. :meth:`Loss.value_and_grad_from_logits` computes the crossentropies from pre-activations:
Keras 3 silently does this whenever the model output comes from a ``sigmoid`` or ``softmax``
activation (see :func:`uses_logits`).
"""

from __future__ import annotations

import numpy as np

_EPSILON = 1e-7  # keras.backend.epsilon()


def _float_dtype(a: np.ndarray) -> np.dtype:
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)


def _same_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True):
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank difference of one trailing 1-dim."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _weights(values_shape, dtype, sample_weight, mask, reduction):
    """Per-value weights (mask merged into sample weight as Keras's ``apply_mask``) or None."""
    w = None
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if reduction in ("sum_over_batch_size", "mean"):
            total, valid = dtype.type(mask.size), dtype.type(mask.sum())
            scale = total / valid if valid else dtype.type(0)
            w = np.where(mask, scale, dtype.type(0)).astype(dtype)
        else:
            w = mask.astype(dtype)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=dtype)
        if w is not None:
            w, sw = _same_rank(w, sw)
            sw = sw * w
        w = sw
    if w is None:
        return None
    v2, w2 = _same_rank(np.empty(values_shape, dtype=bool), w)
    try:
        return np.broadcast_to(w2, v2.shape).reshape(values_shape)
    except ValueError:
        raise ValueError(
            f"sample_weight/mask of shape {w.shape} does not broadcast to the per-sample loss "
            f"values of shape {values_shape}"
        ) from None


class Loss:
    """Base class. Subclasses implement ``_values(y_true, y_pred, logits)``.

    ``_values`` gets ``y_true`` (already aligned, in the compute dtype; integer labels for SCCE)
    and ``y_pred`` of shape ``(..., C)`` and returns ``(values, dvalues)``: ``values`` of shape
    ``y_pred.shape[:-1]`` and ``dvalues[..., j] = d values[...] / d y_pred[..., j]``.
    """

    #: activation whose pre-activation Keras uses as logits ("sigmoid", "softmax" or None)
    logits_activation: str | None = None
    #: whether :meth:`value_and_grad_from_logits` is defined (the three crossentropies)
    supports_logits: bool = False
    from_logits: bool = False

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "mean", "sum"):
            raise ValueError(f"reduction must be 'sum_over_batch_size', 'mean' or 'sum'; received {reduction!r}")
        self.name = name or type(self).__name__
        self.reduction = reduction

    # -- public API ---------------------------------------------------------------------------
    def __call__(self, y_true, y_pred, sample_weight=None, mask=None) -> float:
        """Reduced loss as a Python float."""
        return self._run(y_true, y_pred, self.from_logits, sample_weight, mask, grad=False)[0]

    def value_and_grad(self, y_true, y_pred, sample_weight=None, mask=None) -> tuple[float, np.ndarray]:
        """Return ``(loss, dloss/dy_pred)``; the gradient has y_pred's shape and float dtype.

        ``mask`` (bool, shape ``y_pred.shape[:-1]`` e.g. ``(B, T)``) drops masked positions and
        averages over the valid ones, as Keras does when the output carries a Keras mask.
        """
        return self._run(y_true, y_pred, self.from_logits, sample_weight, mask, grad=True)

    def value_and_grad_from_logits(self, y_true, logits, sample_weight=None, mask=None):
        """Like :meth:`value_and_grad` but treating the input as logits (``from_logits=True``)."""
        if not self.supports_logits:
            raise TypeError(f"{type(self).__name__} has no logits form")
        return self._run(y_true, logits, True, sample_weight, mask, grad=True)

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        config = {k: v for k, v in config.items() if k not in ("dtype", "fn")}
        if config.get("axis", -1) not in (-1, None):
            raise ValueError(f"only axis=-1 is supported; received axis={config['axis']}")
        config.pop("axis", None)
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # -- internals ----------------------------------------------------------------------------
    def _align(self, y_true, y_pred):
        """Return (y_true, y_pred) aligned as Keras's LossFunctionWrapper does."""
        y_true, y_pred = _same_rank(y_true, y_pred)
        return y_true.astype(y_pred.dtype, copy=False), y_pred

    def _run(self, y_true, y_pred, logits, sample_weight, mask, grad):
        y_pred = np.asarray(y_pred)
        dtype = _float_dtype(y_pred)
        orig_shape = y_pred.shape
        yp = y_pred.astype(dtype, copy=False)
        yt, yp = self._align(np.asarray(y_true), yp)
        if yp.ndim == 0:
            raise ValueError(f"y_pred must have at least one dimension; received shape {orig_shape}")
        values, dvalues = self._values(yt, yp, logits)
        w = _weights(values.shape, dtype, sample_weight, mask, self.reduction)
        weighted = values if w is None else values * w
        n = weighted.size if self.reduction != "sum" else 1
        divisor = dtype.type(n)
        loss = np.sum(weighted, dtype=dtype) / divisor if n else dtype.type(0)
        if not grad:
            return float(loss), None
        upstream = np.full(values.shape, dtype.type(1) / divisor if n else 0, dtype=dtype)
        if w is not None:
            upstream = upstream * w
        g = (dvalues * upstream[..., None]).astype(dtype, copy=False)
        return float(loss), g.reshape(orig_shape)

    def _values(self, y_true, y_pred, logits):  # pragma: no cover - abstract
        raise NotImplementedError


def _clip_and_mask(p, dtype):
    lo, hi = dtype.type(_EPSILON), dtype.type(1.0 - _EPSILON)
    inside = (p >= lo) & (p <= hi)  # tf.clip_by_value passes the gradient at the bounds
    return np.clip(p, lo, hi), inside


class BinaryCrossentropy(Loss):
    """``mean_last_axis(-(t log p + (1 - t) log(1 - p)))``; labels smoothed toward 0.5."""

    logits_activation = "sigmoid"
    supports_logits = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "binary_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(0.5 * self.label_smoothing)
        d = dt(x.shape[-1])
        if logits:  # tf.nn.sigmoid_cross_entropy_with_logits, and its autodiff gradient
            pos = x >= 0
            neg_abs = np.where(pos, -x, x)
            e = np.exp(neg_abs)
            elem = np.where(pos, x, dt(0)) - x * t + np.log1p(e)
            s = e / (dt(1) + e)
            delem = (pos.astype(x.dtype) - t) + np.where(pos, -s, s)
        else:
            p, inside = _clip_and_mask(x, x.dtype)
            one_m = dt(1) - p
            elem = -(t * np.log(p) + (dt(1) - t) * np.log(one_m))
            delem = np.where(inside, -(t / p) + (dt(1) - t) / one_m, dt(0))
        return np.sum(elem, axis=-1, dtype=x.dtype) / d, delem / d


class CategoricalCrossentropy(Loss):
    """``-sum_c t_c log p_c`` after renormalising p to sum to 1; labels smoothed by ``ls / C``."""

    logits_activation = "softmax"
    supports_logits = True

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}

    def _align(self, y_true, y_pred):
        y_true, y_pred = super()._align(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                "categorical_crossentropy needs y_true and y_pred of the same shape; "
                f"received y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )
        return y_true, y_pred

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(self.label_smoothing) / dt(x.shape[-1])
        if logits:  # tf.nn.softmax_cross_entropy_with_logits; its gradient is softmax - labels
            return _softmax_xent(x, t)
        s = np.sum(x, axis=-1, keepdims=True, dtype=x.dtype)
        p, inside = _clip_and_mask(x / s, x.dtype)
        values = -np.sum(t * np.log(p), axis=-1, dtype=x.dtype)
        gp = np.where(inside, -(t / p), dt(0))  # d/d(x / s)
        gs = np.sum(gp * ((-x / s) / s), axis=-1, keepdims=True, dtype=x.dtype)
        return values, gp / s + gs


def _softmax_xent(z, onehot):
    """TF's fused softmax crossentropy: (loss, softmax - labels)."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    sum_e = np.sum(e, axis=-1, keepdims=True, dtype=z.dtype)
    values = np.sum(onehot * (np.log(sum_e) - shifted), axis=-1, dtype=z.dtype)
    return values, e / sum_e - onehot


class SparseCategoricalCrossentropy(Loss):
    """Categorical crossentropy with integer labels of shape ``y_pred.shape[:-1]`` (or ``+ (1,)``)."""

    logits_activation = "softmax"
    supports_logits = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "sparse_categorical_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        if ignore_class is not None:
            raise ValueError("ignore_class is not supported")
        self.from_logits = bool(from_logits)
        self.ignore_class = None
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}

    def _align(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                "sparse_categorical_crossentropy needs y_true of shape y_pred.shape[:-1] (or with a "
                f"trailing 1); received y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )
        labels = y_true.astype(np.int64)
        n_classes = y_pred.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(
                f"sparse labels must lie in [0, {n_classes}); received values from "
                f"{labels.min()} to {labels.max()}"
            )
        return labels, y_pred

    def _values(self, labels, x, logits):
        onehot = np.zeros(x.shape, dtype=x.dtype)
        np.put_along_axis(onehot, labels[..., None], 1, axis=-1)
        if logits:
            return _softmax_xent(x, onehot)
        # Keras: clip, take the log, then sparse softmax crossentropy of those "logits"
        p, inside = _clip_and_mask(x, x.dtype)
        values, dlog = _softmax_xent(np.log(p), onehot)
        return values, np.where(inside, dlog * (x.dtype.type(1) / p), x.dtype.type(0))


class MeanSquaredError(Loss):
    """``mean_last_axis((y_true - y_pred) ** 2)``."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_squared_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        d = x.dtype.type(x.shape[-1])
        diff = t - x
        return np.sum(np.square(diff), axis=-1, dtype=x.dtype) / d, (x.dtype.type(-2) * diff) / d


class MeanAbsoluteError(Loss):
    """``mean_last_axis(|y_true - y_pred|)``; gradient 0 where they are equal."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "mean_absolute_error"):
        super().__init__(name, reduction)

    def _values(self, t, x, logits):
        d = x.dtype.type(x.shape[-1])
        diff = t - x
        return np.sum(np.abs(diff), axis=-1, dtype=x.dtype) / d, -np.sign(diff) / d


class Huber(Loss):
    """``mean_last_axis(0.5 e^2 if |e| <= delta else delta |e| - 0.5 delta^2)``, ``e = y_pred - y_true``."""

    def __init__(self, delta: float = 1.0, reduction: str = "sum_over_batch_size", name: str = "huber_loss"):
        super().__init__(name, reduction)
        self.delta = float(delta)

    def get_config(self) -> dict:  # Keras's Huber.get_config omits delta
        return super().get_config()

    def _values(self, t, x, logits):
        dt = x.dtype.type
        delta, half = dt(self.delta), dt(0.5)
        err = x - t
        a = np.abs(err)
        quad = a <= delta
        elem = np.where(quad, half * np.square(err), delta * a - half * np.square(delta))
        d = dt(x.shape[-1])
        return np.sum(elem, axis=-1, dtype=x.dtype) / d, np.where(quad, err, delta * np.sign(err)) / d


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
        nt, nx = t * rt, x * rx
        dot = np.sum(nt * nx, axis=-1, keepdims=True, dtype=x.dtype)
        clamped = rx >= cap
        grad = np.where(clamped, -nt * cap, -rx * (nt - nx * dot))
        return -dot[..., 0], grad


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


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError, "msle": MeanSquaredLogarithmicError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError, "mape": MeanAbsolutePercentageError,
    "log_cosh": LogCosh, "logcosh": LogCosh,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "poisson": Poisson, "cosine_similarity": CosineSimilarity,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
}
_CLASSES = {c.__name__: c for c in (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                    MeanSquaredError, MeanAbsoluteError, Huber, MeanSquaredLogarithmicError,
                                    MeanAbsolutePercentageError, LogCosh, KLDivergence, Poisson, CosineSimilarity,
                                    Hinge, SquaredHinge, CategoricalHinge)}


def get(identifier) -> Loss:
    """Return a Loss for a name (``"mse"``, ``"binary_crossentropy"``, ``"Huber"``...), a Keras
    config dict (``{"class_name": "BinaryCrossentropy", "config": {...}}``) or a Loss instance.

    Names of loss *functions* give an instance named by the string, as Keras does (``"mse"`` reports
    as ``"mse"``); class names give the class's default name.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        cls_name, config = identifier.get("class_name"), identifier.get("config") or {}
        if cls_name == "function":  # a serialised loss function, e.g. {"config": "mse", ...}
            return get(config if isinstance(config, str) else identifier.get("registered_name"))
        if cls_name not in _CLASSES:
            raise ValueError(f"unsupported loss class {cls_name!r}; supported: {', '.join(sorted(_CLASSES))}")
        return _CLASSES[cls_name].from_config(config)
    if isinstance(identifier, str):
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key](name=identifier)
        if key == "huber_loss":
            return Huber()
    raise ValueError(
        f"could not interpret loss identifier {identifier!r}; supported names: {', '.join(sorted(_BY_NAME))}"
    )


def uses_logits(loss: Loss, output_activation: str | None, y_true=None, y_pred=None) -> bool:
    """True when Keras 3 computes ``loss`` from the pre-activation of the model's output.

    Keras's ``sigmoid`` and ``softmax`` activations tag their output with the logits, and all three
    crossentropies then use those logits (``from_logits`` set or not), even across kinds: a
    categorical crossentropy on a sigmoid output becomes a *softmax* crossentropy of the sigmoid's
    input, and a binary one on a softmax output a sigmoid crossentropy of the softmax's input.
    The tag is lost when Keras reshapes the prediction to the labels' rank (e.g. labels ``(B, T)``
    against a ``(B, T, 1)`` output): pass ``y_true`` and ``y_pred`` (arrays or shapes) to account
    for that; the probabilities are then used, clipped.
    """
    if not (loss.supports_logits and output_activation in ("sigmoid", "softmax")):
        return False
    if y_true is None or y_pred is None:
        return True
    t_shape = tuple(getattr(y_true, "shape", y_true))
    p_shape = tuple(getattr(y_pred, "shape", y_pred))
    p_probe = np.empty(p_shape, dtype=bool)
    _, aligned = _same_rank(np.empty(t_shape, dtype=bool), p_probe)
    return aligned.shape == p_shape
