"""Normalization layers, Keras 3 semantics: ``LayerNormalization`` (axis, epsilon, center, scale,
rms_scaling) and ``BatchNormalization`` (moving statistics at inference; batch statistics, masks and
Keras's moving-average update in training). Each is one pass of NumPy reductions over the array (no
Python loop over the batch or time); both pass masks on, as Keras does.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..random import make_rng
from .base import Layer, compute_dtype
from .registry import (
    ANY,
    Boolean,
    InitializerSpec,
    Integer,
    KerasContract,
    Real,
    register_layer,
    validate_params,
)

#: constraints only matter to Keras's optimizer step (not applied by fastgru: loaded with a warning); the
#: gamma/beta regularizers are applied in training (``regularizer_options``)
_CONSTRAINTS = frozenset({"beta_constraint", "gamma_constraint"})
_REGULARIZER_OPTIONS = {"gamma_regularizer": "gamma", "beta_regularizer": "beta"}


class AxisList:
    """An int axis or a list of them (not the batch axis, 0), stored as a tuple."""

    def accepts(self, value) -> bool:
        items = value if isinstance(value, (list, tuple)) else [value]
        return len(items) > 0 and all(Integer().accepts(a) and a != 0 for a in items)

    def convert(self, value):
        return tuple(int(a) for a in (value if isinstance(value, (list, tuple)) else [value]))

    def is_type_error(self, value) -> bool:
        return not isinstance(value, (list, tuple)) and not Integer().accepts(value)

    def __str__(self) -> str:
        return "an axis other than 0 (the batch axis) or a list of them"


class _OneAxis(AxisList):
    """One axis, or a list of one (tf_keras writes BatchNormalization's resolved axis as ``[2]``); an int."""

    def convert(self, value):
        axes = super().convert(value)
        if len(axes) != 1:  # (tf_keras's BatchNormalization(axis=[1, 2]): statistics per (step, feature))
            raise UnsupportedKerasFeature(f"normalizing over several axes ({list(axes)}) is not supported by fastgru's "
                                          "BatchNormalization (one axis)")
        return axes[0]

    def __str__(self) -> str:
        return "an axis other than 0 (the batch axis), or a list of one"


def _resolve_axes(owner: Layer, axes: tuple, rank: int) -> tuple:
    resolved = []
    for a in axes:
        if not -rank <= a < rank or a % rank == 0:
            raise ValueError(f"{type(owner).__name__} {owner.name!r}: axis {a} is out of bounds (or the batch axis) "
                             f"for inputs of rank {rank}")
        resolved.append(a % rank)
    return tuple(sorted(set(resolved)))


def _input_array(owner: Layer, x) -> np.ndarray:
    """``x`` checked against the built input shape — its rank, and the sizes of the axes the layer's weights
    or statistics are laid out on (``owner.sized_axes()``; the steps axis may differ, as for a layer shared
    between inputs of different lengths) — in the compute dtype."""
    x = np.asarray(x)
    sized = owner.sized_axes() if hasattr(owner, "sized_axes") else range(1, len(owner.input_shape))
    if x.ndim != len(owner.input_shape) or any(owner.input_shape[a] is not None and owner.input_shape[a] != x.shape[a]
                                              for a in sized):
        raise ValueError(f"{type(owner).__name__} {owner.name!r} expects input shape {owner.input_shape}, received "
                         f"shape {x.shape}")
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{type(owner).__name__} {owner.name!r} expects a numeric input array, received dtype "
                        f"{x.dtype}")
    return x.astype(compute_dtype(x, owner), copy=False)


@register_layer
class LayerNormalization(Layer):
    """``(x - mean) / sqrt(var + epsilon) * gamma + beta`` over ``axis`` of each sample. With
    ``rms_scaling`` (Keras's definition): ``x / sqrt(var + epsilon) * gamma``, no beta."""

    keras = KerasContract(names=("LayerNormalization",), ignored=_CONSTRAINTS)
    parameter_constraints = {
        "axis": [AxisList()],
        "epsilon": [Real(0.0, open_low=True)],
        "center": [Boolean()],
        "scale": [Boolean()],
        "rms_scaling": [Boolean()],
        "beta_initializer": [InitializerSpec()],
        "gamma_initializer": [InitializerSpec()],
    }
    weight_names = ("gamma", "beta")
    regularizer_options = _REGULARIZER_OPTIONS
    config_lists_activity_regularizer = False
    supports_masking = True

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"LayerNormalization {self.name!r}", self.parameter_constraints, dict(
            axis=axis, epsilon=epsilon, center=center, scale=scale, rms_scaling=rms_scaling,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer)))
        self._rng = make_rng(None)

    def build(self, input_shape: tuple) -> None:
        self._axes = _resolve_axes(self, self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in self._axes)
        if any(d is None for d in shape):
            raise ValueError(f"LayerNormalization {self.name!r}: the normalized axes need known sizes, received "
                             f"input shape {tuple(input_shape)}")
        self._param_shape = tuple(input_shape[a] if a in self._axes else 1 for a in range(1, len(input_shape)))
        if self.scale or self.rms_scaling:
            self._add_weight("gamma", shape, self.gamma_initializer, self._rng)
        if self.center and not self.rms_scaling:
            self._add_weight("beta", shape, self.beta_initializer, self._rng)
        super().build(input_shape)

    def sized_axes(self) -> tuple:
        return self._axes

    def _param(self, name, dtype):
        p = self._params.get(name)
        return None if p is None else p.astype(dtype, copy=False).reshape((1,) + self._param_shape)

    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        gamma, beta = self._param("gamma", x.dtype), self._param("beta", x.dtype)
        mean = x.mean(axis=self._axes, keepdims=True)
        centered = x - mean
        var = np.square(centered).mean(axis=self._axes, keepdims=True)
        r = 1.0 / np.sqrt(var + x.dtype.type(self.epsilon))
        if self.rms_scaling:
            y = x * r if gamma is None else x * r * gamma
        else:
            inv = r if gamma is None else r * gamma
            y = x * inv + (-mean * inv if beta is None else beta - mean * inv)
        return y, (x, centered, r, gamma)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        x, centered, r, gamma = cache
        dy = np.asarray(dy, x.dtype)
        axes = self._axes
        n = x.dtype.type(np.prod([x.shape[a] for a in axes]))
        other = tuple(a for a in range(x.ndim) if a not in axes)
        grads = []
        g_dy = dy if gamma is None else dy * gamma
        if self.rms_scaling:
            if gamma is not None:
                grads.append((dy * x * r).sum(axis=other).reshape(self._params["gamma"].shape).astype(self.dtype))
            s = (g_dy * x).sum(axis=axes, keepdims=True)
            dx = g_dy * r - r ** 3 * centered * s / n
            return (dx if need_dx else None), grads
        if gamma is not None:
            grads.append((dy * centered * r).sum(axis=other).reshape(self._params["gamma"].shape).astype(self.dtype))
        if "beta" in self._params:
            grads.append(dy.sum(axis=other).reshape(self._params["beta"].shape).astype(self.dtype))
        if not need_dx:
            return None, grads
        s1 = g_dy.sum(axis=axes, keepdims=True)
        s2 = (g_dy * centered).sum(axis=axes, keepdims=True)
        dx = r * (g_dy - s1 / n - centered * r * r * s2 / n)
        return dx, grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(axis=list(self.axis) if len(self.axis) > 1 else self.axis[0], epsilon=self.epsilon,
                      center=self.center, scale=self.scale, rms_scaling=self.rms_scaling,
                      beta_initializer=self.beta_initializer, gamma_initializer=self.gamma_initializer)
        return config


@register_layer
class BatchNormalization(Layer):
    """Keras 3 ``BatchNormalization`` over ``axis`` (the features). Weights, in Keras's order: gamma
    (when ``scale``), beta (when ``center``), moving_mean, moving_variance (not trained).

    Inference uses the moving statistics. Training (``fit``, ``train_on_batch``; a trainable layer)
    normalises with the batch's mean and (biased) variance over every other axis, weighted by the mask
    when there is one (as Keras: ``sum / (count + 1e-7)``), and updates the moving statistics by
    ``moving = moving * momentum + batch * (1 - momentum)``.
    """

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    keras = KerasContract(names=("BatchNormalization",), ignored=_CONSTRAINTS,
                          # renorm's own settings matter only with renorm (refused); synchronized only across
                          # devices; fused was a TensorFlow implementation choice (Keras 2)
                          fixed={"renorm": False, "renorm_clipping": ANY, "renorm_momentum": ANY,
                                 "synchronized": ANY, "fused": ANY, "virtual_batch_size": None,
                                 "adjustment": None})
    parameter_constraints = {
        "axis": [Integer(), _OneAxis()],
        "momentum": [Real(0.0, 1.0)],
        "epsilon": [Real(0.0, open_low=True)],
        "center": [Boolean()],
        "scale": [Boolean()],
        "beta_initializer": [InitializerSpec()],
        "gamma_initializer": [InitializerSpec()],
        "moving_mean_initializer": [InitializerSpec()],
        "moving_variance_initializer": [InitializerSpec()],
    }
    weight_names = ("gamma", "beta", "moving_mean", "moving_variance")

    def _check_weight_values(self, named: dict) -> None:
        variance = named.get("moving_variance")
        if variance is not None and variance.size and float(np.min(variance)) < 0:
            raise ValueError(f"BatchNormalization {self.name!r}: moving_variance must not be negative, received a "
                             f"minimum of {float(np.min(variance)):.3g}")
    regularizer_options = _REGULARIZER_OPTIONS
    config_lists_activity_regularizer = False
    supports_masking = True
    _MASK_EPSILON = 1e-7  # Keras's backend.epsilon(), added to the masked count

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"BatchNormalization {self.name!r}", self.parameter_constraints, dict(
            axis=axis, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
            moving_mean_initializer=moving_mean_initializer,
            moving_variance_initializer=moving_variance_initializer)))
        self._rng = make_rng(None)

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return [w for n, w in zip(self.weight_paths, self.weights) if n in ("gamma", "beta")] if self.trainable else []

    def build(self, input_shape: tuple) -> None:
        (self._axis,) = _resolve_axes(self, (self.axis,), len(input_shape))
        channels = input_shape[self._axis]
        if channels is None:
            raise ValueError(f"BatchNormalization {self.name!r}: axis {self.axis} needs a known size, received input "
                             f"shape {tuple(input_shape)}")
        if self.scale:
            self._add_weight("gamma", (channels,), self.gamma_initializer, self._rng)
        if self.center:
            self._add_weight("beta", (channels,), self.beta_initializer, self._rng)
        self._add_weight("moving_mean", (channels,), self.moving_mean_initializer, self._rng)
        self._add_weight("moving_variance", (channels,), self.moving_variance_initializer, self._rng)
        super().build(input_shape)


    def sized_axes(self) -> tuple:
        return (self._axis,)
    def _shaped(self, name, x):
        p = self._params.get(name)
        if p is None:
            return None
        shape = [1] * x.ndim
        shape[self._axis] = p.shape[0]
        return p.astype(x.dtype, copy=False).reshape(shape)

    def _other_axes(self, x) -> tuple:
        return tuple(a for a in range(x.ndim) if a != self._axis)

    def _check_mask(self, x, mask):
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"BatchNormalization {self.name!r}: a mask must have the input's shape without its last "
                             f"(feature) axis, received mask shape {mask.shape} for input shape {x.shape}")
        # (Keras: the mask along the last axis, broadcast to the input, whichever axis is normalized)
        return np.broadcast_to(mask.astype(bool)[..., None], x.shape)

    def _normalize(self, x, mean, variance):
        r = 1.0 / np.sqrt(variance + x.dtype.type(self.epsilon))
        gamma, beta = self._shaped("gamma", x), self._shaped("beta", x)
        inv = r if gamma is None else r * gamma
        return x * inv + (-mean * inv if beta is None else beta - mean * inv), r

    def call(self, x, mask=None, training: bool = False):
        if training and self.trainable:
            return self.forward(x, mask, training)[0]
        x = _input_array(self, x)
        return self._normalize(x, self._shaped("moving_mean", x), self._shaped("moving_variance", x))[0]

    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        if not (training and self.trainable):
            y, r = self._normalize(x, self._shaped("moving_mean", x), self._shaped("moving_variance", x))
            return y, (x, None, None, r, None)
        axes = self._other_axes(x)
        w = self._check_mask(x, mask)
        if w is None:
            mean = x.mean(axis=axes, keepdims=True)
            variance = np.square(x - mean).mean(axis=axes, keepdims=True)
            count = None
        else:
            count = w.sum(axis=axes, keepdims=True).astype(x.dtype) + x.dtype.type(self._MASK_EPSILON)
            mean = np.where(w, x, 0).sum(axis=axes, keepdims=True) / count
            variance = np.square(np.where(w, x - mean, 0)).sum(axis=axes, keepdims=True) / count
        y, r = self._normalize(x, mean, variance)
        m = self.momentum
        for name, batch in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self._params[name]
            moving[...] = (moving * m + batch.reshape(-1).astype(moving.dtype) * (1.0 - m)).astype(moving.dtype)
        return y, (x, mean, w, r, count)

    def backward(self, dy, cache, need_dx: bool = True):
        x, mean, w, r, count = cache
        dy = np.asarray(dy, x.dtype)
        axes = self._other_axes(x)
        gamma = self._shaped("gamma", x)
        grads = []
        if mean is None:  # inference statistics: a fixed affine map
            centered = x - self._shaped("moving_mean", x)
        else:
            centered = x - mean
        if gamma is not None:
            grads.append((dy * centered * r).sum(axis=axes).astype(self.dtype))
        if self.center:
            grads.append(dy.sum(axis=axes).astype(self.dtype))
        if not self.trainable:
            grads = []
        if not need_dx:
            return None, grads
        g = r if gamma is None else r * gamma
        if mean is None:
            return dy * g, grads
        s1 = dy.sum(axis=axes, keepdims=True)
        s2 = (dy * centered).sum(axis=axes, keepdims=True)
        if w is None:
            n = x.dtype.type(x.size // x.shape[self._axis])
            return g * (dy - s1 / n - centered * r * r * s2 / n), grads
        wf = w.astype(x.dtype)
        s3 = (wf * centered).sum(axis=axes, keepdims=True)  # mean * 1e-7 (Keras's epsilon in the count)
        dx = g * (dy - wf * s1 / count - r * r * s2 * wf * (centered - s3 / count) / count)
        return dx, grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
                      scale=self.scale, beta_initializer=self.beta_initializer,
                      gamma_initializer=self.gamma_initializer, moving_mean_initializer=self.moving_mean_initializer,
                      moving_variance_initializer=self.moving_variance_initializer, synchronized=False,
                      renorm=False, renorm_clipping=None, renorm_momentum=0.99)  # (Keras's, at the only values here)
        return config
