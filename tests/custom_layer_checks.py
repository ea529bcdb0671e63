"""Checks shared by the custom-layer training tests: central finite differences of a loss with respect to an
array changed in place, and a model with a custom layer whose ``fit`` must be refused by name, nothing changed."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature


def gradient_in_place(loss, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d loss() / d array by central differences, ``array`` (a weight or an input) changed in place and restored."""
    flat, numeric = array.reshape(-1), np.zeros(array.size)
    for i in range(array.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = loss()
        flat[i] = keep - eps
        numeric[i] = (up - loss()) / (2 * eps)
        flat[i] = keep
    return numeric


def assert_fit_refused(layer, what: str, rng) -> None:
    """``Dense -> layer (named 'custom') -> GRU`` predicts, and its ``fit`` is refused naming the layer and
    ``what`` (a regular expression), with no weight changed."""
    x, y = rng.standard_normal((8, 6, 3)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    model = fg.Sequential([fg.Input((6, 3)), fg.layers.Dense(3), layer, fg.layers.GRU(3)])
    assert model.predict(x).shape == (8, 3)  # (inference runs the call as it is)
    model.compile("sgd", "mse")
    before = model.get_weights()
    with pytest.raises(UnsupportedKerasFeature, match=f"custom layer 'custom'.*{what}"):
        model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # (nothing changed)
