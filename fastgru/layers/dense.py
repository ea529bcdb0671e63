"""Dense: ``act(x @ kernel + bias)`` on the last axis (works on (B, D) and (B, T, D))."""

from __future__ import annotations

import numpy as np

from .. import activations
from .._threads import get_batch_invariant, threaded_matmul
from ..ops.invariant import matmul_rows
from ..random import make_rng
from .base import Layer, compute_dtype
from .lora import LoraFrozen
from .registry import (
    ANY,
    NONE,
    ActivationName,
    Boolean,
    InitializerSpec,
    Integer,
    KerasContract,
    register_layer,
    validate_params,
)


@register_layer
class Dense(LoraFrozen, Layer):
    """Fully connected layer. Weights: kernel (D, units), bias (units,)."""

    keras = KerasContract(names=("Dense",), fixed={"lora_rank": ANY, "lora_alpha": ANY, "quantization_config": ANY})
    parameter_constraints = {"units": [Integer(1)], "activation": [NONE, ActivationName()], "use_bias": [Boolean()],
                             "kernel_initializer": [InitializerSpec()], "bias_initializer": [InitializerSpec()],
                             "seed": [NONE, Integer(0)]}
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}
    config_lists_activity_regularizer = False
    supports_masking = True
    input_feature_axes = -1  # (reused on any rank from 2, the last axis its kernel's: Keras's input spec)

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.__dict__.update(validate_params(f"Dense {self.name!r}", self.parameter_constraints, dict(
            units=units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer, seed=seed)))
        if self.activation is None:  # (Keras's linear function, as Keras's Dense holds)
            self.activation = activations.canonical_name(None)
        self._rng = make_rng(seed)

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"Dense {self.name!r} expects input of rank >= 2, received input shape {input_shape}")
        self._add_weight("kernel", (int(input_shape[-1]), self.units), self.kernel_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (self.units,), self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return tuple(input_shape[:-1]) + (self.units,)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2 or x.shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"Dense {self.name!r} expects input with last dimension {self.input_shape[-1]}, "
                f"received shape {x.shape}"
            )
        if x.dtype.kind not in "fiub":
            raise TypeError(f"Dense {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        return x.astype(compute_dtype(x, self), copy=False)

    def _linear(self, x: np.ndarray, row_invariant: bool = False) -> np.ndarray:
        kernel = self._params["kernel"].astype(x.dtype, copy=False)
        if row_invariant:
            z = matmul_rows(x, kernel)
        else:  # (a large product's rows split over fastgru's threads)
            z = threaded_matmul(x.reshape(-1, x.shape[-1]), kernel).reshape(x.shape[:-1] + (kernel.shape[1],))
        if self.use_bias:
            z += self._params["bias"].astype(x.dtype, copy=False)
        return z

    def call(self, x, mask=None, training: bool = False):
        x = self._check_input(np.asarray(x))
        return activations.apply(self.activation, self._linear(x, row_invariant=get_batch_invariant()))

    def forward(self, x, mask=None, training: bool = True, skip_activation: bool = False):
        """Training forward. ``skip_activation`` returns the pre-activation (logits) instead."""
        x = self._check_input(np.asarray(x))
        z = self._linear(x)
        y = z if skip_activation else activations.apply(self.activation, z)
        return y, (x, z, y, skip_activation)

    def backward(self, dy, cache, need_dx: bool = True):
        x, z, y, skipped = cache
        dz = dy if skipped else activations.gradient(self.activation, z, y, dy)
        x2 = x.reshape(-1, x.shape[-1])
        dz2 = dz.reshape(-1, dz.shape[-1])
        grads = [(x2.T @ dz2).astype(self.dtype, copy=False)]
        if self.use_bias:
            grads.append(dz2.sum(axis=0).astype(self.dtype, copy=False))
        kernel_t = self._params["kernel"].astype(dz.dtype, copy=False).T
        dx = threaded_matmul(dz2, kernel_t).reshape(dz.shape[:-1] + (x.shape[-1],)) if need_dx else None
        return dx, (self.lora_trainable(grads) if self.trainable else [])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation or "linear",  # (Keras's name for none)
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            **self.lora_config(),
            quantization_config=None,
        )
        return config
