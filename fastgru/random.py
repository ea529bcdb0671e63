"""The library's random state: one NumPy Generator, reseeded by ``fg.set_random_seed``."""

from __future__ import annotations

import numpy as np

_state = {"rng": np.random.default_rng()}


def set_random_seed(seed: int) -> None:
    """Make weight initialisation, shuffling and dropout reproducible (like keras.utils.set_random_seed)."""
    _state["rng"] = np.random.default_rng(seed)


def global_rng() -> np.random.Generator:
    return _state["rng"]


def make_rng(seed: int | None) -> np.random.Generator:
    """A generator for a layer: its own seed if given, else one drawn from the global generator."""
    if seed is not None:
        return np.random.default_rng(seed)
    return np.random.default_rng(global_rng().integers(0, 2**63 - 1))
