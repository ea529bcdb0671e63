"""Optimizer update rules as one pass over a variable's elements (no temporaries).

The arithmetic is NumPy's ufunc sequence written per element, in the same order and the variable's
dtype, with no fused multiply-adds (Numba's default: no ``fastmath``, so LLVM contracts nothing):
the results are bit-identical to the array expressions they replace
(``fastgru.training.optimizers``), which match Keras's update rules.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def adam_update(var, g, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    """Keras 3's Adam step on flat arrays of one dtype (``var``, ``g``, ``m``, ``v`` (n,), updated in
    place but ``g``; the scalars in the same dtype):

        m += (g - m) * (1 - beta_1);  v += (g * g - v) * (1 - beta_2)
        var -= (m * alpha) / (sqrt(v) + epsilon)
    """
    for i in range(var.shape[0]):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_beta_1
        vi = v[i] + (gi * gi - v[i]) * one_minus_beta_2
        m[i] = mi
        v[i] = vi
        var[i] = var[i] - (mi * alpha) / (math.sqrt(vi) + epsilon)
