"""Keras 3's ``EinsumDense``: ``act(einsum(equation, x, kernel) + bias)``, a dense layer over any axes (the
projections of attention blocks, per-head or per-feature dense layers around a GRU).

The equation takes Keras's three forms: ``ab,bc->ac`` (every axis named), ``...b,bc->...c`` (leading axes
elided) and ``ab...,bc->ac...`` (trailing axes elided). The kernel's shape is read off the equation as Keras
reads it: each kernel axis takes its size from the output (``output_shape``, the batch axis and elided axes
added) where it names an output axis, else from the input. ``bias_axes`` names the output axes the bias
varies along; it spans the output from the first of them on (size 1 on the others), broadcast over the rest.
Computed with the ellipsis spelled out for the input's rank: the forward ``np.einsum`` (two operands: BLAS),
backward ``dX = einsum(Y,K->X)`` and ``dK = einsum(X,Y->K)`` (an input axis the equation sums out without the
kernel gets its gradient broadcast back). Masks end here, as in Keras.
"""

from __future__ import annotations

import math
import re
import string

import numpy as np

from .. import activations
from ..random import make_rng
from .base import Layer, compute_dtype
from .lora import LoraFrozen
from .registry import (
    ANY,
    NONE,
    ActivationName,
    Anything,
    InitializerSpec,
    KerasContract,
    register_layer,
    validate_params,
)

_FORMS = ((r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", None), (r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", "left"),
          (r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", "right"))


def parse_equation(owner: str, equation) -> tuple[str, str, str, str | None]:
    """(input spec, kernel spec, output spec, where the ellipsis is: None, "left" or "right")."""
    text = re.sub(r"\.\.\.", "0", str(equation))
    for pattern, elided in _FORMS:
        found = re.fullmatch(pattern, text)
        if found:
            return found.group(1), found.group(2), found.group(3), elided
    raise ValueError(f"{owner}: equation {equation!r} is not of Keras's forms [X],[Y]->[Z], ...[X],[Y]->...[Z] or "
                     "[X]...,[Y]->[Z]...")


def add_kernel_with_fans(layer: Layer, name: str, shape: tuple, input_axes, initializer, rng) -> None:
    """A kernel whose ``input_axes`` are its inputs (the rest its outputs): a variance-scaling initializer (glorot,
    he, lecun) draws with the fans of those axes, as Keras 3's EinsumDense does; others draw the shape itself."""
    kind = initializer if isinstance(initializer, str) else initializer.get("class_name") \
        if isinstance(initializer, dict) else type(initializer).__name__
    kind = re.sub(r"(?<!^)(?=[A-Z])", "_", str(kind)).lower()
    if kind.split("_")[0] in ("glorot", "he", "lecun", "variance"):
        fan_in = math.prod(shape[a] for a in input_axes)
        layer._add_weight(name, (fan_in, math.prod(shape) // max(1, fan_in)), initializer, rng)
        layer._params[name] = layer._params[name].reshape(shape)
    else:
        layer._add_weight(name, shape, initializer, rng)


@register_layer
class EinsumDense(LoraFrozen, Layer):
    """Keras 3 ``EinsumDense``. Weights: kernel (from the equation), bias (from ``bias_axes``) where given."""

    keras = KerasContract(names=("EinsumDense",),
                          ignored=frozenset({"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                             "kernel_constraint", "bias_constraint"}),
                          fixed={"lora_rank": ANY, "lora_alpha": ANY, "quantization_config": None,
                                 "gptq_unpacked_column_size": ANY})
    parameter_constraints = {"equation": [Anything()], "output_shape": [Anything()],
                             "activation": [NONE, ActivationName()], "bias_axes": [NONE, Anything()],
                             "kernel_initializer": [InitializerSpec()], "bias_initializer": [InitializerSpec()]}
    weight_names = ("kernel", "bias")
    regularizer_options = {"kernel_regularizer": "kernel", "bias_regularizer": "bias"}
    contract_example = {"kwargs": {"equation": "abc,cde->abde", "output_shape": (None, 2, 3), "bias_axes": "de",
                                   "activation": "tanh"}, "inputs": [(5, 4)]}

    def __init__(self, equation: str, output_shape, activation=None, bias_axes: str | None = None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        owner = f"EinsumDense {self.name!r}"
        self.__dict__.update(validate_params(owner, self.parameter_constraints, dict(
            equation=equation, output_shape=output_shape, activation=activation, bias_axes=bias_axes,
            kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)))
        self._specs = parse_equation(owner, equation)
        shape = (output_shape,) if isinstance(output_shape, int) else output_shape
        if not isinstance(shape, (list, tuple)) or not all(d is None or (isinstance(d, int) and d > 0)
                                                           for d in shape):
            raise ValueError(f"{owner}: output_shape must be a positive integer or a tuple of them (None for an axis "
                             f"the input gives), received {output_shape!r}")
        self.partial_output_shape = tuple(shape)
        if bias_axes is not None and (not isinstance(bias_axes, str) or set(bias_axes) - set(self._specs[2])):
            raise ValueError(f"{owner}: bias_axes must name axes of the output spec {self._specs[2]!r}, received "
                             f"{bias_axes!r}")
        self.activation = activations.canonical_name(self.activation)
        self._rng = make_rng(None)

    # ---- shapes ------------------------------------------------------------------------------
    def _analyze(self, input_shape: tuple):
        """(kernel shape, bias shape or None, full output shape, the kernel's input axes), as Keras 3 reads them."""
        owner = f"EinsumDense {self.name!r}"
        x_spec, k_spec, y_spec, elided_side = self._specs
        elided = len(input_shape) - len(x_spec)
        if elided < 0 or (elided_side is None and elided):
            raise ValueError(f"{owner}: the equation {self.equation!r} takes inputs of rank {len(x_spec)}"
                             f"{' or more' if elided_side else ''}, received shape {tuple(input_shape)}")
        out = [input_shape[0]] + list(self.partial_output_shape)
        if elided and elided_side == "left":
            out[1:1] = list(input_shape[1:elided])
        elif elided:
            out += list(input_shape[len(input_shape) - elided:])
        shift = elided if elided_side == "left" else 0
        x_at = {d: i + shift for i, d in enumerate(x_spec)}
        y_at = {d: i + shift for i, d in enumerate(y_spec)}
        if len(out) < len(y_spec) + shift:
            raise ValueError(f"{owner}: output_shape {self.partial_output_shape} does not fit the output spec "
                             f"{y_spec!r} for inputs of shape {tuple(input_shape)}")
        size = {d: out[y_at[d]] for d in y_spec}  # (Keras reads the sizes at these places; entries past them unused)
        for d in x_spec:
            if d in size and size[d] is not None and size[d] != input_shape[x_at[d]]:
                raise ValueError(f"{owner}: input shape and output shape do not match at shared dimension {d!r}: "
                                 f"{input_shape[x_at[d]]} against {size[d]}")
            if d in size and size[d] is None:
                size[d] = input_shape[x_at[d]]
        if elided_side == "left":
            out = list(input_shape[:elided]) + [size[d] for d in y_spec]
        else:
            out = [size[d] for d in y_spec] + list(input_shape[len(input_shape) - elided:])
        for d in y_spec:
            if d not in x_spec and d not in k_spec:
                raise ValueError(f"{owner}: output dimension {d!r} is in neither the input spec {x_spec!r} nor the "
                                 f"kernel spec {k_spec!r}")
        kernel, input_axes = [], []
        for i, d in enumerate(k_spec):
            if d in size:
                kernel.append(size[d])
            elif d in x_at:
                kernel.append(input_shape[x_at[d]])
                input_axes.append(i)
            else:
                raise ValueError(f"{owner}: kernel dimension {d!r} is in neither the input spec {x_spec!r} nor the "
                                 f"output spec {y_spec!r}")
        if any(k is None for k in kernel):
            raise ValueError(f"{owner}: the kernel's shape {tuple(kernel)} is not fully known from inputs of shape "
                             f"{tuple(input_shape)} and output_shape {self.partial_output_shape}")
        bias = None
        if self.bias_axes:
            first = min(y_spec.find(d) for d in self.bias_axes)
            bias = [size[d] if d in self.bias_axes else 1 for d in y_spec[first:]]
            bias += [1] * (elided if elided_side == "right" else 0)
        return tuple(int(k) for k in kernel), (None if bias is None else tuple(int(b) for b in bias)), tuple(out), \
            tuple(input_axes)

    def build(self, input_shape: tuple) -> None:
        kernel, bias, _, input_axes = self._analyze(tuple(input_shape))
        add_kernel_with_fans(self, "kernel", kernel, input_axes, self.kernel_initializer, self._rng)
        if bias is not None:
            self._add_weight("bias", bias, self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        return self._analyze(tuple(input_shape))[2]

    def _concrete(self, ndim: int) -> tuple[str, str, str]:
        """The (input, kernel, output) subscripts with the ellipsis spelled out for inputs of rank ``ndim``."""
        x_spec, k_spec, y_spec, elided_side = self._specs
        free = [c for c in string.ascii_letters if c not in x_spec + k_spec + y_spec]
        extra = "".join(free[:ndim - len(x_spec)])
        if elided_side == "left":
            return extra + x_spec, k_spec, extra + y_spec
        return x_spec + extra, k_spec, y_spec + extra

    # ---- computing --------------------------------------------------------------------------
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"EinsumDense {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        expected = self.input_shape  # (the rank, and the axes its kernel is laid out on: the others may vary)
        x_spec, k_spec = self._concrete(len(expected))[:2]
        k_spec += self.bias_axes or ""  # (and a bias along an input axis)
        if x.ndim != len(expected) or any(e is not None and e != s for e, s, c in zip(expected[1:], x.shape[1:],
                                                                                    x_spec[1:]) if c in k_spec):
            raise ValueError(f"EinsumDense {self.name!r} expects input shape {tuple(expected)}, received shape "
                             f"{x.shape}")
        return x.astype(compute_dtype(x, self), copy=False)

    def _weights(self, dtype):
        kernel, bias, _, _ = self._analyze((None,) + tuple(self.input_shape[1:]))
        k = np.asarray(self._params["kernel"], dtype=dtype)
        if k.shape != kernel:
            raise ValueError(f"EinsumDense {self.name!r}: kernel of shape {k.shape}, expected {kernel}")
        b = None
        if bias is not None:
            b = np.asarray(self._params["bias"], dtype=dtype)
            if b.shape != bias:
                raise ValueError(f"EinsumDense {self.name!r}: bias of shape {b.shape}, expected {bias}")
        return k, b

    def forward(self, x, mask=None, training: bool = True):
        x = self._check_input(x)
        kernel, bias = self._weights(x.dtype)
        xs, ks, ys = self._concrete(x.ndim)
        z = np.einsum(f"{xs},{ks}->{ys}", x, kernel, optimize=True).astype(x.dtype, copy=False)
        if bias is not None:
            z = z + bias
        y = activations.apply(self.activation, z)
        return y, (x, z, y)

    def call(self, x, mask=None, training: bool = False):
        return self.forward(x, mask, training)[0]

    def backward(self, dy, cache, need_dx: bool = True):
        x, z, y = cache
        dy = np.asarray(dy)
        if dy.shape != z.shape:
            raise ValueError(f"EinsumDense {self.name!r}: output gradient of shape {dy.shape}, expected {z.shape}")
        dz = activations.gradient(self.activation, z, y, dy.astype(z.dtype, copy=False))
        kernel, bias = self._weights(dz.dtype)
        xs, ks, ys = self._concrete(x.ndim)
        grads = [np.einsum(f"{xs},{ys}->{ks}", x, dz, optimize=True).astype(self.dtype, copy=False)]
        if bias is not None:
            lead = dz.ndim - bias.ndim
            summed = dz.sum(axis=tuple(range(lead))) if lead else dz
            keep = tuple(i for i, n in enumerate(bias.shape) if n == 1 and summed.shape[i] != 1)
            grads.append(summed.sum(axis=keep, keepdims=True).reshape(bias.shape).astype(self.dtype, copy=False))
        grads = self.lora_trainable(grads)  # (a file's LoRA layer: its merged kernel frozen, layers/lora.py)
        if not need_dx:
            return None, grads
        reached = "".join(d for d in xs if d in ys or d in ks)
        dx = np.einsum(f"{ys},{ks}->{reached}", dz, kernel, optimize=True)
        if reached != xs:  # (an input axis summed out by the equation alone: its gradient the same at every index)
            dx = np.broadcast_to(np.expand_dims(dx, tuple(i for i, d in enumerate(xs) if d not in reached)), x.shape)
        return np.ascontiguousarray(dx, dtype=x.dtype), grads

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(output_shape=self.partial_output_shape, equation=self.equation, activation=self.activation,
                      bias_axes=self.bias_axes, kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer, **self.lora_config(), quantization_config=None)
        return config
