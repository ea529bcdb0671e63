"""Keras 3's focal crossentropies, ``BinaryFocalCrossentropy`` and ``CategoricalFocalCrossentropy``: the
values and their gradients as Keras's TensorFlow backend computes them (its ``tf.pow`` gradient
``gamma * x ** (gamma - 1)``, its clipping). :mod:`fastgru.training.losses` exports them and finds them by
name ("binary_focal_crossentropy", "categorical_focal_crossentropy").
"""

from __future__ import annotations

import numbers

import numpy as np

from .loss_base import Loss, _clip_and_mask, _sigmoid_xent


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number; received {value!r}")
    return float(value)


def _pow_and_grad(u: np.ndarray, gamma: float):
    """``u ** gamma`` and TensorFlow's gradient of ``tf.pow`` in ``u``: ``gamma * u ** (gamma - 1)``."""
    dt = u.dtype.type
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.power(u, dt(gamma)), dt(gamma) * np.power(u, dt(gamma) - dt(1))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    dt = x.dtype.type
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, dt(1) / (dt(1) + e), e / (dt(1) + e)).astype(x.dtype, copy=False)


class BinaryFocalCrossentropy(Loss):
    """``mean_last_axis(w * (1 - p_t) ** gamma * bce)``, ``p_t = t p + (1 - t)(1 - p)``; with
    ``apply_class_balancing`` ``w = t alpha + (1 - t)(1 - alpha)``, else 1; labels smoothed toward 0.5.

    Values of shape ``y_pred.shape[:-1]`` from ``y_pred`` (B, ..., D). As Keras's TensorFlow backend, the
    crossentropy comes from the logits whenever there are some (``from_logits``, or a sigmoid output),
    the focal factor from the (unclipped) probabilities. Not reproduced: on a *softmax* output without
    ``from_logits``, Keras takes the crossentropy from the softmax's logits read as sigmoid logits; fastgru
    computes it from the probabilities.
    """

    logits_activation = "sigmoid"
    supports_logits = True
    same_shape = True  # (as Keras's binary crossentropy: targets of another width are refused)

    def __init__(self, apply_class_balancing: bool = False, alpha: float = 0.25, gamma: float = 2.0,
                 from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str = "sum_over_batch_size", name: str = "binary_focal_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha = _real("alpha", alpha)
        self.gamma = _real("gamma", gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _real("label_smoothing", label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis, "apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma}

    def uses_output_logits(self, output_activation: str | None) -> bool:
        # from_logits: Keras applies its own sigmoid to the output (and uses that sigmoid's logits)
        return not self.from_logits and output_activation == "sigmoid"

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(0.5 * self.label_smoothing)
        if logits:  # ops.sigmoid tags its output: the crossentropy is TF's from the logits
            p = _sigmoid(x)
            bce, dbce = _sigmoid_xent(x, t)
            dp = p * (dt(1) - p)
        else:
            p = x
            pc, inside = _clip_and_mask(x, x.dtype)
            one_m = dt(1) - pc
            bce = -(t * np.log(pc) + (dt(1) - t) * np.log(one_m))
            dbce = np.where(inside, -(t / pc) + (dt(1) - t) / one_m, dt(0))
            dp = None
        p_t = t * p + (dt(1) - t) * (dt(1) - p)
        focal, dfocal = _pow_and_grad(dt(1) - p_t, self.gamma)
        elem = focal * bce
        g_pt = -(bce * dfocal)  # then through p_t term by term, as autodiff (0 * inf stays NaN, as in TF)
        g_p = g_pt * t - g_pt * (dt(1) - t)
        delem = focal * dbce + (g_p if dp is None else g_p * dp)
        if self.apply_class_balancing:
            weight = t * dt(self.alpha) + (dt(1) - t) * dt(1.0 - self.alpha)
            elem, delem = weight * elem, weight * delem
        d = dt(x.shape[-1])
        return np.sum(elem, axis=-1, dtype=x.dtype) / d, (delem / d).astype(x.dtype, copy=False)


class CategoricalFocalCrossentropy(Loss):
    """``sum_c alpha_c (1 - o_c) ** gamma * (-t_c log o_c)`` with ``o = clip(y_pred / sum(y_pred))``.

    ``y_true`` one-hot, of ``y_pred``'s shape (B, ..., C); values of shape ``y_pred.shape[:-1]``. ``alpha``
    is a number or one weight per class. ``from_logits`` applies a softmax first. Keras computes this
    loss from the probabilities even on a softmax output (it never reads an activation's logits).
    """

    logits_activation = "softmax"
    supports_logits = True

    def __init__(self, alpha: float | list = 0.25, gamma: float = 2.0, from_logits: bool = False,
                 label_smoothing: float = 0.0, axis: int = -1, reduction: str = "sum_over_batch_size",
                 name: str = "categorical_focal_crossentropy"):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(f"only axis=-1 is supported; received axis={axis}")
        if isinstance(alpha, (list, tuple, np.ndarray)):
            alpha = [_real("alpha", float(a) if isinstance(a, np.floating) else a) for a in np.ravel(alpha).tolist()]
            if not alpha:
                raise ValueError("alpha must be a number or a non-empty list of per-class weights")
        else:
            alpha = _real("alpha", alpha)
        self.alpha = alpha
        self.gamma = _real("gamma", gamma)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _real("label_smoothing", label_smoothing)
        self.axis = axis

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis, "alpha": self.alpha, "gamma": self.gamma}

    def uses_output_logits(self, output_activation: str | None) -> bool:
        return False

    def _align(self, y_true, y_pred):
        y_true, y_pred = super()._align(y_true, y_pred)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                "categorical_focal_crossentropy needs y_true and y_pred of the same shape; "
                f"received y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}"
            )
        if isinstance(self.alpha, list) and len(self.alpha) not in (1, y_pred.shape[-1]):
            raise ValueError(f"alpha has {len(self.alpha)} per-class weights for {y_pred.shape[-1]} classes")
        return y_true, y_pred

    def _values(self, t, x, logits):
        dt = x.dtype.type
        if self.label_smoothing:
            t = t * dt(1.0 - self.label_smoothing) + dt(self.label_smoothing) / dt(x.shape[-1])
        if logits:  # ops.softmax, as TensorFlow: exp(x - max) times the reciprocal of its sum
            e = np.exp(x - np.max(x, axis=-1, keepdims=True))
            y = e * (dt(1) / np.sum(e, axis=-1, keepdims=True, dtype=x.dtype))
        else:
            y = x
        s = np.sum(y, axis=-1, keepdims=True, dtype=x.dtype)
        o, inside = _clip_and_mask(y / s, x.dtype)
        cce = -t * np.log(o)
        modulating, dmodulating = _pow_and_grad(dt(1) - o, self.gamma)
        alpha = np.asarray(self.alpha, dtype=x.dtype)
        weighting = modulating * alpha
        values = np.sum(weighting * cce, axis=-1, dtype=x.dtype)
        g_o = np.where(inside, (-dmodulating * alpha) * cce + weighting * (-(t / o)), dt(0))
        g_y = g_o / s + np.sum(g_o * ((-y / s) / s), axis=-1, keepdims=True, dtype=x.dtype)
        if logits:  # TensorFlow's softmax gradient
            g_y = (g_y - np.sum(g_y * y, axis=-1, keepdims=True, dtype=x.dtype)) * y
        return values, g_y.astype(x.dtype, copy=False)
