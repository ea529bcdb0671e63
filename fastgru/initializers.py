"""Weight initializers by name, with Keras 3's shapes, fans and distributions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import UnsupportedKerasFeature

Initializer = Callable[[tuple, np.dtype, np.random.Generator], np.ndarray]


def _fans(shape: tuple) -> tuple[float, float]:
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def _variance_scaling(scale: float, mode: str, distribution: str):
    def init(shape, dtype, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        s = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * s)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        if distribution == "normal":
            return (rng.standard_normal(shape) * math.sqrt(s)).astype(dtype)
        # truncated normal: stddev corrected for the truncation at 2 sigma, as Keras does
        std = math.sqrt(s) / 0.87962566103423978
        return _truncated(rng, shape, std).astype(dtype)

    return init


def _truncated(rng, shape, std):
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return out * std


def _orthogonal(gain: float = 1.0):
    def init(shape, dtype, rng):
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = (max(rows, cols), min(rows, cols))
        a = rng.standard_normal(flat)
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (gain * q.reshape(shape)).astype(dtype)

    return init


def _identity(gain: float = 1.0):
    def init(shape, dtype, rng):
        if len(shape) != 2:
            raise ValueError(f"the identity initializer makes 2-D weights only, asked for shape {tuple(shape)}")
        return (gain * np.eye(*shape)).astype(dtype)

    return init


def _constant(value: float):
    return lambda shape, dtype, rng: np.full(shape, value, dtype=dtype)


_FACTORIES: dict[str, Callable[..., Initializer]] = {
    "zeros": lambda: _constant(0.0),
    "ones": lambda: _constant(1.0),
    "constant": lambda value=0.0: _constant(value),
    "glorot_uniform": lambda: _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": lambda: _variance_scaling(1.0, "fan_avg", "truncated"),
    "he_uniform": lambda: _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": lambda: _variance_scaling(2.0, "fan_in", "truncated"),
    "lecun_uniform": lambda: _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": lambda: _variance_scaling(1.0, "fan_in", "truncated"),
    "variance_scaling": lambda scale=1.0, mode="fan_in", distribution="truncated_normal": _variance_scaling(
        scale, mode, {"truncated_normal": "truncated", "untruncated_normal": "normal"}.get(distribution, distribution)
    ),
    "orthogonal": lambda gain=1.0: _orthogonal(gain),
    "identity": lambda gain=1.0: _identity(gain),
    "random_normal": lambda mean=0.0, stddev=0.05: (
        lambda shape, dtype, rng: (mean + stddev * rng.standard_normal(shape)).astype(dtype)
    ),
    "random_uniform": lambda minval=-0.05, maxval=0.05: (
        lambda shape, dtype, rng: rng.uniform(minval, maxval, shape).astype(dtype)
    ),
    "truncated_normal": lambda mean=0.0, stddev=0.05: (
        lambda shape, dtype, rng: (mean + _truncated(rng, shape, stddev)).astype(dtype)
    ),
}

#: Keras's class names ("GlorotUniform", "RandomNormal", ...) and its short aliases -> the names above
_CAMEL = {"".join(p.capitalize() for p in k.split("_")): k for k in _FACTORIES}
_CAMEL.update(uniform="random_uniform", normal="random_normal")  # Embedding's default is "uniform"
# (the class names Keras 3.0-3.5 wrote in files; later versions write "Orthogonal" and "Identity")
_CAMEL.update(OrthogonalInitializer="orthogonal", IdentityInitializer="identity")


def get(identifier) -> Initializer:
    """Initializer from a name ("glorot_uniform"), a Keras config dict, or a callable(shape, dtype, rng)."""
    if callable(identifier):
        return identifier
    config: dict = {}
    name = identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        raw = identifier.get("config") or {}
        if not isinstance(raw, dict):
            raise UnsupportedKerasFeature(f"initializer {identifier!r:.80}: its config is not a dict")
        config = {k: v for k, v in raw.items() if k != "seed" and v is not None}
    if not isinstance(name, str):
        raise UnsupportedKerasFeature(f"initializer {identifier!r:.80} is not supported: expected a name or a config")
    name = _CAMEL.get(name, name)
    if name not in _FACTORIES:
        raise UnsupportedKerasFeature(
            f"initializer {identifier!r} is not supported; supported: {', '.join(sorted(_FACTORIES))}"
        )
    try:
        return _FACTORIES[name](**config)
    except TypeError as exc:
        raise UnsupportedKerasFeature(f"initializer {name!r} with options {config} is not supported: {exc}") from None

