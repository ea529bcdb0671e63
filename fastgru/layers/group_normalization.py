"""Keras 3's ``GroupNormalization`` and ``RMSNormalization``: per-sample normalizations (no running
statistics), NumPy reductions with their gradients.

``GroupNormalization(groups, axis=-1)``: the channels of ``axis`` split into ``groups`` consecutive groups;
each sample's group normalized over all its other axes (the steps too: Keras ignores masks in the statistics,
and passes the mask on), then ``* gamma + beta`` per channel. ``groups=-1`` is one group per channel
(instance normalization).

``RMSNormalization(axis=-1)``: ``x * rsqrt(mean(x², axis) + epsilon) * scale`` (``keras.ops.rms_normalization``),
the scale of the normalized axes' shape broadcast against the input as Keras's multiplication does.
Masks end here, as in Keras.
"""

from __future__ import annotations

import numpy as np

from ..random import make_rng
from .base import Layer
from .normalization import _CONSTRAINTS, _REGULARIZER_OPTIONS, AxisList, _input_array, _resolve_axes
from .registry import Boolean, InitializerSpec, Integer, KerasContract, Real, register_layer, validate_params


class _Groups(Integer):
    """A positive group count, or -1 (one group per channel)."""

    def __init__(self):
        super().__init__(-1)

    def accepts(self, value) -> bool:
        return super().accepts(value) and value != 0

    def __str__(self) -> str:
        return "a positive int or -1 (one group per channel)"


@register_layer
class GroupNormalization(Layer):
    """Keras 3 ``GroupNormalization``. Weights: gamma (C,), beta (C,) for the C channels of ``axis``."""

    keras = KerasContract(names=("GroupNormalization",), ignored=_CONSTRAINTS)
    parameter_constraints = {
        "groups": [_Groups()],
        "axis": [Integer()],
        "epsilon": [Real(0.0, open_low=True)],
        "center": [Boolean()],
        "scale": [Boolean()],
        "beta_initializer": [InitializerSpec()],
        "gamma_initializer": [InitializerSpec()],
    }
    weight_names = ("gamma", "beta")
    regularizer_options = _REGULARIZER_OPTIONS
    config_lists_activity_regularizer = False
    supports_masking = True
    contract_example = {"kwargs": {"groups": 2}}  # (tests/test_layer_contract.py: the default 32 needs 32 channels)

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"GroupNormalization {self.name!r}", self.parameter_constraints, dict(
            groups=groups, axis=axis, epsilon=epsilon, center=center, scale=scale,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer)))
        self._rng = make_rng(None)

    def build(self, input_shape: tuple) -> None:
        (self._axis,) = _resolve_axes(self, (self.axis,), len(input_shape))
        channels = input_shape[self._axis]
        if channels is None:
            raise ValueError(f"GroupNormalization {self.name!r}: axis {self.axis} needs a known size, received input "
                             f"shape {tuple(input_shape)}")
        groups = channels if self.groups == -1 else self.groups
        if groups > channels or channels % groups:
            raise ValueError(f"GroupNormalization {self.name!r}: {channels} channels cannot be split into {groups} "
                             "groups of equal size (as in Keras, refused)")
        self._groups = groups
        if self.scale:
            self._add_weight("gamma", (channels,), self.gamma_initializer, self._rng)
        if self.center:
            self._add_weight("beta", (channels,), self.beta_initializer, self._rng)
        super().build(input_shape)


    def sized_axes(self) -> tuple:
        return (self._axis,)
    def _grouped(self, a: np.ndarray) -> np.ndarray:
        """(B, M, G, C/G) view of ``a`` with the channel axis last (M: the other axes' elements)."""
        a = np.moveaxis(a, self._axis, -1)
        return a.reshape(a.shape[0], -1, self._groups, a.shape[-1] // self._groups)

    def _ungrouped(self, g: np.ndarray, shape: tuple) -> np.ndarray:
        moved = list(shape)
        moved.append(moved.pop(self._axis))
        return np.moveaxis(g.reshape(moved), -1, self._axis)

    def _param(self, name: str, dtype) -> np.ndarray | None:
        p = self._params.get(name)
        return None if p is None else p.astype(dtype, copy=False).reshape(self._groups, -1)

    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        g = self._grouped(x)
        mean = g.mean(axis=(1, 3), keepdims=True)
        r = 1.0 / np.sqrt(np.square(g - mean).mean(axis=(1, 3), keepdims=True) + x.dtype.type(self.epsilon))
        gamma, beta = self._param("gamma", x.dtype), self._param("beta", x.dtype)
        inv = r if gamma is None else r * gamma  # Keras's order: x * inv + (beta - mean * inv)
        shift = -mean * inv if beta is None else beta - mean * inv
        y = self._ungrouped(g * inv + shift, x.shape)
        return y, (x.shape, (g - mean) * r, r, gamma)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        shape, normalized, r, gamma = cache
        dy = np.asarray(dy, normalized.dtype)
        if dy.shape != shape:
            raise ValueError(f"GroupNormalization {self.name!r}: output gradient of shape {dy.shape}, expected {shape}")
        dg = self._grouped(dy)
        grads = []
        if gamma is not None:
            grads.append((dg * normalized).sum(axis=(0, 1)).reshape(-1).astype(self.dtype))
        if self.center:
            grads.append(dg.sum(axis=(0, 1)).reshape(-1).astype(self.dtype))
        if not need_dx:
            return None, grads
        d_norm = dg if gamma is None else dg * gamma
        dx = r * (d_norm - d_norm.mean(axis=(1, 3), keepdims=True)
                  - normalized * (d_norm * normalized).mean(axis=(1, 3), keepdims=True))
        return self._ungrouped(dx, shape), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(groups=self.groups, axis=self.axis, epsilon=self.epsilon, center=self.center,
                      scale=self.scale, beta_initializer=self.beta_initializer,
                      gamma_initializer=self.gamma_initializer)
        return config


@register_layer
class RMSNormalization(Layer):
    """Keras 3 ``RMSNormalization``. Weights: scale, of the normalized axes' sizes."""

    keras = KerasContract(names=("RMSNormalization",))
    parameter_constraints = {"axis": [AxisList()], "epsilon": [Real(0.0)]}
    weight_names = ("scale",)

    def __init__(self, axis=-1, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"RMSNormalization {self.name!r}", self.parameter_constraints,
                                             dict(axis=axis, epsilon=epsilon)))
        self._rng = make_rng(None)

    def build(self, input_shape: tuple) -> None:
        self._axes = _resolve_axes(self, self.axis, len(input_shape))
        shape = tuple(input_shape[a] for a in self._axes)
        if any(d is None for d in shape):
            raise ValueError(f"RMSNormalization {self.name!r}: the normalized axes need known sizes, received input "
                             f"shape {tuple(input_shape)}")
        known = tuple(1 if d is None else d for d in input_shape)
        try:  # Keras multiplies by the scale as it is: it must broadcast against the input
            np.broadcast_shapes(known, shape)
        except ValueError:
            raise ValueError(f"RMSNormalization {self.name!r}: a scale of shape {shape} (the sizes of axes "
                             f"{self.axis}) does not broadcast against inputs of shape {tuple(input_shape)} (Keras "
                             "fails on it too)") from None
        if np.broadcast_shapes(known, shape) != known:
            raise ValueError(f"RMSNormalization {self.name!r}: a scale of shape {shape} would grow inputs of shape "
                             f"{tuple(input_shape)}")
        self._add_weight("scale", shape, "ones", self._rng)
        super().build(input_shape)


    def sized_axes(self) -> tuple:
        return self._axes
    def forward(self, x, mask=None, training: bool = True):
        x = _input_array(self, x)
        scale = self._params["scale"].astype(x.dtype, copy=False)
        r = 1.0 / np.sqrt(np.square(x).mean(axis=self._axes, keepdims=True) + x.dtype.type(self.epsilon))
        normalized = x * r
        return normalized * scale, (x, r, normalized, scale)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        x, r, normalized, scale = cache
        dy = np.asarray(dy, x.dtype)
        if dy.shape != x.shape:
            raise ValueError(f"RMSNormalization {self.name!r}: output gradient of shape {dy.shape}, expected {x.shape}")
        d_scale = dy * normalized
        lead = d_scale.ndim - scale.ndim
        d_scale = d_scale.sum(axis=tuple(range(lead)))
        d_scale = d_scale.sum(axis=tuple(i for i, n in enumerate(scale.shape) if n == 1), keepdims=True)
        grads = [d_scale.reshape(scale.shape).astype(self.dtype)]
        if not need_dx:
            return None, grads
        d_norm = dy * scale
        n = x.dtype.type(np.prod([x.shape[a] for a in self._axes]))
        dx = r * d_norm - r ** 3 * x * (d_norm * x).sum(axis=self._axes, keepdims=True) / n
        return dx, grads

    def get_config(self) -> dict:
        config = super().get_config()
        axis = list(self.axis) if len(self.axis) > 1 else self.axis[0]
        config.update(axis=axis, epsilon=self.epsilon)
        return config
