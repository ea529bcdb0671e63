"""Activation layers with options, Keras 3 semantics: ``ReLU`` (max_value, negative_slope, threshold),
``LeakyReLU``, ``ELU``, ``Softmax`` (axis, masks) and ``PReLU`` (a trained slope, shared_axes). Each
passes masks on, as Keras does."""

from __future__ import annotations

import numpy as np

from ..random import make_rng
from .base import Layer, compute_dtype
from .normalization import AxisList
from .registry import NONE, InitializerSpec, Integer, KerasContract, Real, Shape, register_layer, validate_params


class _Elementwise(Layer):
    supports_masking = True

    def _options(self, **params):
        self.__dict__.update(validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                             params))

    def _array(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{type(self).__name__} {self.name!r} expects a numeric input array, received dtype "
                            f"{x.dtype}")
        fixed = self._fixed_axes()  # (with a weight, its rank and the axes it is laid out on; else any shape, as
        if self.input_shape is not None and fixed and (x.ndim != len(self.input_shape) or any(  # in Keras)
                self.input_shape[a] is not None and self.input_shape[a] != x.shape[a] for a in fixed)):
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input shape {self.input_shape}, received "
                             f"shape {x.shape}")
        return x.astype(compute_dtype(x, self), copy=False)

    def _fixed_axes(self) -> tuple:
        return ()

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]


@register_layer
class ReLU(_Elementwise):
    """``max_value`` above it, ``x`` from ``threshold``, ``negative_slope * (x - threshold)`` below."""

    keras = KerasContract(names=("ReLU",))
    parameter_constraints = {"max_value": [NONE, Real(0.0)], "negative_slope": [Real(0.0)], "threshold": [Real(0.0)]}

    def __init__(self, max_value=None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self._options(max_value=max_value, negative_slope=negative_slope, threshold=threshold)

    def forward(self, x, mask=None, training: bool = True):
        """Keras 3's composition (``activations.relu``): a leaky ReLU when only the slope is set; else
        ``x`` above the threshold (0 at it), clipped to ``max_value``, less ``negative_slope *
        relu(threshold - x)``: the same values at the edges (``x == threshold`` gives 0)."""
        x = self._array(x)
        zero = x.dtype.type(0)
        slope = x.dtype.type(self.negative_slope)
        if self.negative_slope != 0 and self.max_value is None and self.threshold == 0:
            return np.where(x > 0, x, slope * x), x  # tf.nn.leaky_relu
        t = x.dtype.type(self.threshold)
        y = np.where(x > t, x, zero) if self.threshold != 0 else np.maximum(x, zero)
        if self.max_value is not None:
            y = np.maximum(np.minimum(y, x.dtype.type(self.max_value)), zero)
        if self.negative_slope != 0:
            y = y - slope * np.maximum(t - x, zero)
        return y, x

    def backward(self, dy, cache, need_dx: bool = True):
        """TensorFlow's gradients of that composition: relu' is 0 at 0, relu6' is 0 at 0 and 6 (Keras
        uses relu6 for ``max_value=6`` without a threshold), a clip passes the gradient at its bounds,
        the leaky ReLU's slope applies at 0."""
        x = cache
        dt = x.dtype
        if self.negative_slope != 0 and self.max_value is None and self.threshold == 0:
            return np.asarray(dy) * np.where(x > 0, 1.0, self.negative_slope).astype(dt), []
        t = dt.type(self.threshold)
        if self.threshold != 0:
            d = x > t
        elif self.max_value == 6:
            d = (x > 0) & (x < dt.type(6))
        else:
            d = x > 0
        if self.max_value is not None and not (self.threshold == 0 and self.max_value == 6):
            d = d & (x <= dt.type(self.max_value))  # (min, then max with 0: both pass at their bounds)
        slope = d.astype(dt)
        if self.negative_slope != 0:
            slope = slope + np.where(x < t, dt.type(self.negative_slope), dt.type(0))
        return np.asarray(dy) * slope, []

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


@register_layer
class LeakyReLU(_Elementwise):
    """``x`` for x >= 0, ``negative_slope * x`` below (Keras 2 files call the slope ``alpha``)."""

    keras = KerasContract(names=("LeakyReLU",))
    parameter_constraints = {"negative_slope": [Real(0.0)], "alpha": [Real(0.0)]}

    def __init__(self, negative_slope: float = 0.3, alpha=None, **kwargs):
        super().__init__(**kwargs)
        self._options(negative_slope=negative_slope if alpha is None else alpha)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        return np.where(x > 0, x, x.dtype.type(self.negative_slope) * x), x

    def backward(self, dy, cache, need_dx: bool = True):
        # (tf.nn.leaky_relu's gradient: the slope at 0 too)
        return np.asarray(dy) * np.where(cache > 0, 1.0, self.negative_slope).astype(cache.dtype), []

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


@register_layer
class ELU(_Elementwise):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` below."""

    keras = KerasContract(names=("ELU",))
    parameter_constraints = {"alpha": [Real()]}

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self._options(alpha=alpha)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        a = x.dtype.type(self.alpha)
        return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))), x

    def backward(self, dy, cache, need_dx: bool = True):
        x = cache
        return np.asarray(dy) * np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0))).astype(x.dtype), []

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


@register_layer
class Softmax(_Elementwise):
    """Softmax over ``axis``; with a mask broadcastable to the input, masked positions count as -1e9
    (Keras's large negative), so they get (almost) no weight."""

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    keras = KerasContract(names=("Softmax",))
    parameter_constraints = {"axis": [Integer(), AxisList()]}

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self._options(axis=axis)

    def _axis(self):
        return tuple(self.axis) if isinstance(self.axis, tuple) else self.axis

    @property
    def logits_activation(self) -> str | None:
        """'softmax' over the last axis: Keras tags the output with its logits, which a crossentropy loss of a
        model output reads instead of the probabilities (:meth:`forward`'s ``skip_activation``)."""
        return "softmax" if self.axis == -1 else None

    def forward(self, x, mask=None, training: bool = True, skip_activation: bool = False):
        """Training forward; ``skip_activation`` returns the (masked) logits the softmax would take."""
        x = self._array(x)
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        if any(not -x.ndim <= a < x.ndim for a in axes):
            raise ValueError(f"Softmax {self.name!r}: axis {self.axis} is out of range for an input of rank {x.ndim} "
                             f"(shape {x.shape})")
        if mask is not None:
            mask = np.asarray(mask)
            try:
                keep = np.broadcast_to(mask > 0.5 if mask.dtype != bool else mask, x.shape)
            except ValueError:
                raise ValueError(f"Softmax {self.name!r}: the mask (shape {mask.shape}) must be broadcastable to the "
                                 f"input (shape {x.shape})") from None
            large_negative = x.dtype.type(-1e9 if x.dtype == np.float32 else -1e9)
            x = np.where(keep, x, large_negative)
            if skip_activation:
                return x, ("logits", keep)
        if skip_activation:
            return x, ("logits", None)
        axis = self._axis()
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        y = e / e.sum(axis=axis, keepdims=True)
        return y, y

    def backward(self, dy, cache, need_dx: bool = True):
        if isinstance(cache, tuple):  # the logits passed through (masked positions are constants)
            keep = cache[1]
            dy = np.asarray(dy)
            return (dy if keep is None else np.where(keep, dy, 0).astype(dy.dtype)), []
        y = cache
        dy = np.asarray(dy, y.dtype)
        return y * (dy - (dy * y).sum(axis=self._axis(), keepdims=True)), []

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


@register_layer
class PReLU(_Elementwise):
    """``x`` for x >= 0, ``alpha * x`` below, with a trained ``alpha`` of the input's shape (without the
    batch axis), size 1 along ``shared_axes`` (1-based)."""

    keras = KerasContract(names=("PReLU",), ignored=frozenset({"alpha_constraint"}))
    parameter_constraints = {"alpha_initializer": [InitializerSpec()], "shared_axes": [NONE, Integer(1), Shape()]}
    weight_names = ("alpha",)
    regularizer_options = {"alpha_regularizer": "alpha"}
    config_lists_activity_regularizer = False

    def __init__(self, alpha_initializer="zeros", shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self._options(alpha_initializer=alpha_initializer, shared_axes=shared_axes)
        if isinstance(self.shared_axes, int):
            self.shared_axes = (self.shared_axes,)
        self._rng = make_rng(None)

    def _fixed_axes(self) -> tuple:
        """The axes alpha is laid out on (those not shared)."""
        shared = {a % len(self.input_shape) for a in self.shared_axes or ()}
        return tuple(a for a in range(1, len(self.input_shape)) if a not in shared)

    def build(self, input_shape: tuple) -> None:
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis < len(input_shape):
                raise ValueError(f"PReLU {self.name!r}: shared axis {axis} is out of range for input shape "
                                 f"{tuple(input_shape)}")
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU {self.name!r}: alpha needs known sizes; share the axes of unknown size "
                             f"(shared_axes) for input shape {tuple(input_shape)}")
        self._add_weight("alpha", tuple(shape), self.alpha_initializer, self._rng)
        super().build(input_shape)

    def forward(self, x, mask=None, training: bool = True):
        x = self._array(x)
        alpha = self._params["alpha"].astype(x.dtype, copy=False)
        return np.where(x > 0, x, alpha * x), x

    def backward(self, dy, cache, need_dx: bool = True):
        x = cache
        dy = np.asarray(dy, x.dtype)
        alpha = self._params["alpha"].astype(x.dtype, copy=False)
        neg = x < 0
        d_alpha = np.where(neg, dy * x, 0).sum(axis=0)
        for axis in self.shared_axes or ():
            d_alpha = d_alpha.sum(axis=axis - 1, keepdims=True)
        grads = [d_alpha.astype(self.dtype)] if self.trainable else []
        # Keras 3: relu(x) - alpha * relu(-x), so the gradient at exactly 0 is 0 (relu'(0) = 0)
        dx = np.where(x > 0, dy, np.where(neg, dy * alpha, dy.dtype.type(0))) if need_dx else None
        return dx, grads

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha_initializer": self.alpha_initializer,
                "shared_axes": None if self.shared_axes is None else list(self.shared_axes)}
