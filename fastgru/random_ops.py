"""Keras's ``keras.random`` on ``fastgru.random`` (``import fastgru as keras``, then ``keras.random.normal(...)``):
``SeedGenerator``, ``normal``, ``uniform``, ``truncated_normal``, ``randint``, ``categorical``, ``dropout``,
``shuffle``, ``gamma``, ``binomial`` and ``beta``, with Keras's arguments, defaults and seed rules — an integer seed
draws the same values at every call, a ``SeedGenerator`` new ones each call (its state ``[seed, counter]``
advances), ``seed=None`` the library's generator (``fg.set_random_seed``). The values are NumPy's, not
TensorFlow's: the same distributions, other numbers.

In a custom layer's call traced for training (``layers.custom_training``), a draw whose first axis is the batch's
(``keras.random.normal(ops.shape(x))``, a VAE's ``normal(shape=(batch, dim))``, ``dropout(x, 0.1)``) is an input of
the traced graph, drawn anew at every training step; other draws inside a traced call are refused by name.
"""

from __future__ import annotations

import itertools

import numpy as np

from .errors import UnsupportedKerasFeature
from .layers import registry
from .op_functions import FUNCTIONS as OPS
from .random import global_rng
from .tracing import record_draw, tracing

_names = itertools.count()


class SeedGenerator:
    """Keras's ``keras.random.SeedGenerator``: ``state`` is ``[seed, counter]``; each draw takes ``next()``, the
    state before the counter advances (the seed drawn from the library's generator when None)."""

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs):
        kwargs.pop("backend", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed!r}")
        self._initial_seed = seed
        self.name = name or f"seed_generator{'' if (n := next(_names)) == 0 else f'_{n}'}"
        self.state = np.array([int(global_rng().integers(1, 10**9)) if seed is None else int(seed), 0], np.int64)

    def next(self, ordered: bool = True) -> np.ndarray:
        seed = self.state.copy()
        self.state[1] += 1
        return seed

    def get_config(self) -> dict:
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        return cls(**config)


def _generator(seed) -> np.random.Generator:
    """The NumPy generator of one draw: Keras's seed rules (module docstring)."""
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng([int(s) % 2**32 for s in seed.next()])
    if seed is None:
        return np.random.default_rng(int(global_rng().integers(0, 2**63)))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, a keras.random.SeedGenerator or None, received {seed!r}")
    return np.random.default_rng([int(seed) % 2**32, 0])


def _shape(shape) -> tuple:
    if getattr(shape, "_fg_symbolic", False):
        raise UnsupportedKerasFeature("keras.random: a shape given as a symbolic tensor (give ops.shape(x), a tuple)")
    return tuple(int(d) for d in (shape if isinstance(shape, (list, tuple)) else np.reshape(shape, -1)))


def _float(dtype) -> np.dtype:
    return np.dtype("float32" if dtype is None else dtype)


def _draw(shape: tuple, dtype, seed, values, what: str):
    """``values(generator)`` (an array of ``shape``) in ``dtype``: now, or in a traced call an input of the graph
    drawn at each step (its first axis must be the batch's)."""
    if tracing() is None:
        return np.asarray(values(_generator(seed)), dtype=dtype)
    tensor = registry.model_class("Input")(batch_shape=shape, dtype=np.dtype(dtype).name)
    if not record_draw(tensor, lambda: np.asarray(values(_generator(seed)), dtype=dtype)):
        raise UnsupportedKerasFeature(
            f"custom layer {tracing()!r}: its call draws keras.random {what} of shape {shape}, whose first axis is "
            "not the batch's; fastgru's traced graph draws only values with one row per sample (give "
            "ops.shape(x)[0] as the first size, or draw it outside the layer's call)")
    return tensor


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    shape = _shape(shape)
    return _draw(shape, _float(dtype), seed, lambda g: g.normal(mean, stddev, shape), "normal")


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    shape = _shape(shape)
    return _draw(shape, _float(dtype), seed, lambda g: g.uniform(minval, maxval, shape), "uniform")


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal values within two standard deviations of the mean (the others drawn again), as Keras's."""
    shape = _shape(shape)

    def values(g):
        z = g.standard_normal(shape)
        while np.any(far := np.abs(z) > 2.0):
            z[far] = g.standard_normal(int(far.sum()))
        return mean + stddev * z

    return _draw(shape, _float(dtype), seed, values, "truncated_normal")


def randint(shape, minval, maxval, dtype="int32", seed=None):
    shape = _shape(shape)
    return _draw(shape, np.dtype(dtype), seed, lambda g: g.integers(minval, maxval, shape), "randint")


def gamma(shape, alpha, dtype=None, seed=None):
    shape = _shape(shape)
    return _draw(shape, _float(dtype), seed, lambda g: g.gamma(alpha, 1.0, shape), "gamma")


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    shape = _shape(shape)
    return _draw(shape, _float(dtype), seed,
                 lambda g: g.binomial(np.asarray(counts).astype(np.int64), probabilities, shape), "binomial")


def beta(shape, alpha, beta, dtype=None, seed=None):  # noqa: A002  (Keras's argument name)
    shape = _shape(shape)
    return _draw(shape, _float(dtype), seed, lambda g: g.beta(alpha, beta, shape), "beta")


def _eager_only(what: str, *values):
    if tracing() is not None or any(getattr(v, "_fg_symbolic", False) for v in values):
        raise UnsupportedKerasFeature(f"keras.random {what} of a symbolic tensor (fastgru draws it on arrays only)")


def categorical(logits, num_samples, dtype="int32", seed=None):
    """``num_samples`` class indices per row of ``logits`` (batch, classes), drawn from its softmax."""
    _eager_only("categorical", logits)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"keras.random.categorical: `logits` must be 2-D (batch, classes), received {logits.shape}")
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    g = _generator(seed)
    return np.stack([g.choice(p.shape[1], size=int(num_samples), p=row) for row in p]).astype(dtype)


def shuffle(x, axis=0, seed=None):
    _eager_only("shuffle", x)
    x = np.asarray(x)
    return np.take(x, _generator(seed).permutation(x.shape[axis]), axis=axis)


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Keras's ``keras.random.dropout``: each value kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)`` (kept where a uniform draw is at least ``rate``), the draw broadcast over ``noise_shape``'s
    axes of size 1."""
    shape = tuple(inputs.shape)
    noise = shape if noise_shape is None else tuple(s if n is None else int(n) for s, n in zip(shape, noise_shape))
    u = uniform(noise, dtype=np.dtype(getattr(inputs, "dtype", "float32")).name, seed=seed)
    keep = OPS["cast"](OPS["greater_equal"](u, rate), u.dtype)
    return OPS["multiply"](OPS["multiply"](inputs, 1.0 / (1.0 - rate)), keep)


FUNCTIONS = {f.__name__: f for f in (normal, uniform, truncated_normal, randint, categorical, dropout, shuffle,
                                     gamma, binomial, beta)}


def install(module) -> None:
    """Put Keras's ``keras.random`` names on ``module`` (``fastgru.random``)."""
    module.SeedGenerator = SeedGenerator
    for name, function in FUNCTIONS.items():
        setattr(module, name, function)
