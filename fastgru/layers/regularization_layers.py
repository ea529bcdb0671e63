"""Regularization layers, Keras 3 semantics: ``AlphaDropout`` (dropout that keeps a SELU network's
mean and variance) and ``ActivityRegularization`` (the identity, whose L1/L2 penalty of its output,
divided by the batch size, joins the training loss). Both are the identity at inference and pass
masks on. AlphaDropout's draws come from fastgru's seeded generators (``fg.set_random_seed`` or
``seed=``), not TensorFlow's: Keras's formula and statistics, not the same numbers."""

from __future__ import annotations

import numpy as np

from .. import regularizers
from .base import Layer, compute_dtype
from .noise import _Noise
from .registry import NONE, Integer, KerasContract, Real, Shape, register_layer, validate_params

#: SELU's constants (Keras's AlphaDropout)
_ALPHA = 1.6732632423543772848170429916717
_SCALE = 1.0507009873554804934193349852946


@register_layer
class AlphaDropout(_Noise):
    """In training: with ``keep = uniform(noise_shape) >= rate``, ``a * (x * keep + alpha_p * (1 - keep)) + b``
    where ``alpha_p = -alpha * scale`` (SELU's), ``a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5`` and
    ``b = -a * alpha_p * rate``; ``noise_shape`` (None entries: the input's size) shares a draw along
    its axes of size 1, as Keras."""

    keras = KerasContract(names=("AlphaDropout",))
    parameter_constraints = {"rate": [Real(0.0, 1.0, open_high=True)], "noise_shape": [NONE, Shape(allow_none=True)],
                             "seed": [NONE, Integer(0)]}

    def __init__(self, rate: float, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, rate=rate, noise_shape=noise_shape, **kwargs)

    def build(self, input_shape: tuple) -> None:
        if self.noise_shape is not None:
            self._check_noise_shape(tuple(input_shape))
        super().build(input_shape)

    def _check_noise_shape(self, shape: tuple) -> None:
        if len(self.noise_shape) != len(shape) or any(
                n is not None and n != 1 and d is not None and n != d for n, d in zip(self.noise_shape, shape)):
            raise ValueError(f"AlphaDropout {self.name!r}: noise_shape {self.noise_shape} does not fit the input "
                             f"shape {tuple(shape)}: it needs one entry per axis, each None, 1 or the input's size")

    def _noise(self, x):
        if self.rate == 0:
            return None, None
        shape = x.shape
        if self.noise_shape is not None:
            self._check_noise_shape(x.shape)
            shape = tuple(x.shape[i] if n is None else n for i, n in enumerate(self.noise_shape))
        keep = (self._rng.random(shape) >= self.rate).astype(x.dtype)
        alpha_p = -_ALPHA * _SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        factor = np.broadcast_to(x.dtype.type(a) * keep, x.shape)
        shift = np.broadcast_to(x.dtype.type(a * alpha_p) * (1 - keep) + x.dtype.type(b), x.shape)
        return factor, shift

    def get_config(self) -> dict:
        config = super().get_config()
        config["noise_shape"] = None if self.noise_shape is None else list(self.noise_shape)
        return config


@register_layer
class ActivityRegularization(Layer):
    """The identity; in training its ``L1L2(l1, l2)`` penalty of the output, divided by the batch size
    (Keras 3), joins the loss and its gradient the output's gradient (fastgru.training.regularization)."""

    keras = KerasContract(names=("ActivityRegularization",))
    parameter_constraints = {"l1": [Real(0.0)], "l2": [Real(0.0)]}
    supports_masking = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs):
        if kwargs.get("activity_regularizer") is not None:
            raise TypeError("ActivityRegularization takes l1 and l2, not activity_regularizer")
        kwargs.pop("activity_regularizer", None)
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"ActivityRegularization {self.name!r}", self.parameter_constraints,
                                             {"l1": l1, "l2": l2}))
        self.activity_regularizer = regularizers.L1L2(l1=self.l1, l2=self.l2)

    def forward(self, x, mask=None, training: bool = True):
        x = np.asarray(x)
        return x.astype(compute_dtype(x, self), copy=False), None

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        return np.asarray(dy), []

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("activity_regularizer", None)  # as Keras: the penalty is l1 and l2
        return {**config, "l1": self.l1, "l2": self.l2}
