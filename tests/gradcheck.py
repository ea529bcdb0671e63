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


def assert_layer_gradients(layer, x: np.ndarray, rng, rtol: float = 1e-5, atol: float = 1e-7):
    """A built float64 layer's ``backward`` against central differences: the input gradient and every weight's,
    for the loss ``sum(forward(x) * coef)`` with random ``coef``. Returns (cache, coef)."""
    y, cache = layer.forward(x)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    np.testing.assert_allclose(dx, numeric_gradient(layer.call, x, coef), rtol=rtol, atol=atol)
    for w, g in zip(layer.weights, grads):
        def f(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return layer.call(x)
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(f, w.copy(), coef), rtol=rtol, atol=atol)
    return cache, coef
