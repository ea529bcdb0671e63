"""Central finite differences for the layer gradient tests (float64)."""

from __future__ import annotations

import numpy as np


def numeric_gradient(f, x: np.ndarray, coef, eps: float = 1e-6) -> np.ndarray:
    """d/dx of ``sum(f(x) * coef)`` by central differences, one element of ``x`` at a time."""
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = ((f(plus) - f(minus)) * coef).sum() / (2 * eps)
    return out
