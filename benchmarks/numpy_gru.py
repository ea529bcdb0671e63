"""A straightforward batched NumPy GRU (Keras semantics, reset_after=True, gates z, r, h): the
baseline fastgru is measured against in the pytest-benchmark suite, and (in float64) the reference
``compare.py`` checks every framework's output against. Vectorised over the batch, a Python loop over
time; the input projection for all steps is one product, as in any sensible NumPy implementation."""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_gru(x, kernel, recurrent_kernel, bias):
    """Last hidden state (B, H) of a reset_after GRU starting from zeros.

    x (B, T, D); kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H) [input bias, recurrent bias]:
    Keras's layout. Computed in x's dtype.
    """
    bsz, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    xp = x @ kernel + bias[0]  # (B, T, 3H): the input projection for all steps at once
    h = np.zeros((bsz, units), x.dtype)
    for t in range(steps):
        rec = h @ recurrent_kernel + bias[1]
        z = _sigmoid(xp[:, t, :units] + rec[:, :units])
        r = _sigmoid(xp[:, t, units:2 * units] + rec[:, units:2 * units])
        hh = np.tanh(xp[:, t, 2 * units:] + r * rec[:, 2 * units:])
        h = z * h + (1.0 - z) * hh
    return h
