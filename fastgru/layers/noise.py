"""Regularization layers that only act in training, Keras 3 semantics: ``SpatialDropout1D`` and
``SpatialDropout2D`` (whole feature channels dropped per sample), ``GaussianNoise`` (additive), ``GaussianDropout``
(multiplicative). At inference each is the identity. Their random draws come from fastgru's seeded
generators (``fg.set_random_seed`` or ``seed=``), not TensorFlow's: the same statistics as Keras,
not the same numbers. Each passes masks on."""

from __future__ import annotations

import numpy as np

from ..random import make_rng
from .base import Layer, compute_dtype
from .registry import NONE, Integer, KerasContract, Real, StrOptions, register_layer, validate_params


class _Noise(Layer):
    supports_masking = True

    def __init__(self, seed=None, **params):
        layer_kwargs = {k: params.pop(k) for k in list(params) if k not in self.parameter_constraints}
        super().__init__(**layer_kwargs)
        self.__dict__.update(validate_params(f"{type(self).__name__} {self.name!r}", self.parameter_constraints,
                                             dict(params, seed=seed)))
        self._rng = make_rng(self.seed)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0] if training else np.asarray(x)

    def forward(self, x, mask=None, training: bool = True):
        x = np.asarray(x)
        x = x.astype(compute_dtype(x, self), copy=False)
        if not training:
            return x, None
        factor, shift = self._noise(x)
        y = x if factor is None else x * factor
        return (y if shift is None else y + shift), factor

    def backward(self, dy, cache, need_dx: bool = True):
        return (np.asarray(dy) if cache is None else np.asarray(dy) * cache), []

    def get_config(self) -> dict:
        return {**super().get_config(), **{k: getattr(self, k) for k in self.parameter_constraints}}


@register_layer
class SpatialDropout1D(_Noise):
    """Drops whole channels of each sample (noise shape (B, 1, C)), scaling the kept ones by 1/(1-rate)."""

    keras = KerasContract(names=("SpatialDropout1D",), fixed={"noise_shape": None})  # (tf_keras writes None)
    parameter_constraints = {"rate": [Real(0.0, 1.0, open_high=True)], "seed": [NONE, Integer(0)]}
    contract_example = {"inputs": [(5, 12)]}  # (as SpatialDropout2D's: noise too small to repeat by chance)

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(seed=seed, rate=rate, **kwargs)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"SpatialDropout1D {self.name!r} expects input of rank 3, received shape "
                             f"{tuple(input_shape)}")
        super().build(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("trainable", None)  # Keras's SpatialDropout1D takes rate, seed, name and dtype only
        return config

    def _noise(self, x):
        if self.rate == 0:
            return None, None
        keep = self._rng.random((x.shape[0], 1, x.shape[2])) >= self.rate
        return (keep / (1.0 - self.rate)).astype(x.dtype), None


@register_layer
class SpatialDropout2D(_Noise):
    """Drops whole channels of each image (noise shape (B, 1, 1, C); ``channels_first``: (B, C, 1, 1)), scaling the
    kept ones by 1/(1-rate)."""

    keras = KerasContract(names=("SpatialDropout2D",), fixed={"noise_shape": None})
    parameter_constraints = {"rate": [Real(0.0, 1.0, open_high=True)], "seed": [NONE, Integer(0)],
                             "data_format": [NONE, StrOptions(("channels_last", "channels_first"))]}
    # (12 channels: two draws of the (batch, 1, 1, 12) noise agree by chance once in ~10^5, where the contract test
    # would take the layer for deterministic)
    contract_example = {"kwargs": {"rate": 0.25}, "inputs": [(2, 3, 12)]}

    def __init__(self, rate: float, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, rate=rate, data_format=data_format, **kwargs)
        self.data_format = self.data_format or "channels_last"

    rank = 2

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of rank {self.rank + 2}, received "
                             f"shape {tuple(input_shape)}")
        super().build(input_shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("trainable", None)  # (as SpatialDropout1D: rate, data_format, seed, name and dtype)
        return config

    def _noise(self, x):
        if self.rate == 0:
            return None, None
        ones = (1,) * self.rank
        first = self.data_format == "channels_first"
        shape = (x.shape[0], x.shape[1]) + ones if first else (x.shape[0],) + ones + (x.shape[-1],)
        keep = self._rng.random(shape) >= self.rate
        return (keep / (1.0 - self.rate)).astype(x.dtype), None


@register_layer
class SpatialDropout3D(SpatialDropout2D):
    """Drops whole channels of each volume (noise shape (B, 1, 1, 1, C); ``channels_first``: (B, C, 1, 1, 1)),
    scaling the kept ones by 1/(1-rate)."""

    rank = 3
    keras = KerasContract(names=("SpatialDropout3D",), fixed={"noise_shape": None})
    contract_example = {"kwargs": {"rate": 0.25}, "inputs": [(2, 2, 3, 12)]}


@register_layer
class GaussianNoise(_Noise):
    """Adds N(0, stddev^2) noise in training."""

    keras = KerasContract(names=("GaussianNoise",))
    parameter_constraints = {"stddev": [Real(0.0)], "seed": [NONE, Integer(0)]}

    def __init__(self, stddev: float, seed=None, **kwargs):
        super().__init__(seed=seed, stddev=stddev, **kwargs)

    def _noise(self, x):
        return None, (self._rng.standard_normal(x.shape) * self.stddev).astype(x.dtype)


@register_layer
class GaussianDropout(_Noise):
    """Multiplies by N(1, rate / (1 - rate)) noise in training."""

    keras = KerasContract(names=("GaussianDropout",))
    parameter_constraints = {"rate": [Real(0.0, 1.0, open_high=True)], "seed": [NONE, Integer(0)]}

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(seed=seed, rate=rate, **kwargs)

    def _noise(self, x):
        if self.rate == 0:
            return None, None
        std = np.sqrt(self.rate / (1.0 - self.rate))
        return (1.0 + self._rng.standard_normal(x.shape) * std).astype(x.dtype), None
