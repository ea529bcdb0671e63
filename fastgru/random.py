"""The library's random state: one NumPy Generator, reseeded by ``fg.set_random_seed``."""

from __future__ import annotations

import numpy as np

_state = {"rng": np.random.default_rng()}


def checked_seed(seed, owner: str = "seed"):
    """``seed`` if it is None or a non-negative integer (NumPy's seeds), else a ValueError naming ``owner``."""
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ValueError(f"{owner} must be a non-negative integer or None, received {seed!r}")
    return seed


def set_random_seed(seed: int) -> None:
    """Make weight initialisation, shuffling and dropout reproducible (like keras.utils.set_random_seed)."""
    _state["rng"] = np.random.default_rng(checked_seed(seed, "set_random_seed's seed"))


def global_rng() -> np.random.Generator:
    return _state["rng"]


def make_rng(seed: int | None) -> np.random.Generator:
    """A generator for a layer: its own seed if given, else one drawn from the global generator."""
    if seed is not None:
        return np.random.default_rng(checked_seed(seed))
    return np.random.default_rng(global_rng().integers(0, 2**63 - 1))
