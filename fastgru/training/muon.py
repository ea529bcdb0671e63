"""Keras 3's Muon: momentum orthogonalized by a Newton-Schulz iteration for the matrices of a model, AdamW for the
rest.

A variable of two axes whose path names no embedding (with ``exclude_embeddings``) and matches none of
``exclude_layers`` takes the Muon step: ``m += g + (momentum - 1) m``; with ``nesterov`` the direction
``g + momentum m``, else ``m``; that direction through ``ns_steps`` quintic Newton-Schulz iterations (``x`` over its
Frobenius norm plus 1e-7, transposed first when it has more rows than columns; then ``x = a x + (b A + c A A) x``
with ``A = x xᵀ``); ``var -= lr · update · sqrt(max(rows, columns)) · rms_rate``. Every other variable (a bias, a
recurrent layer's vectors, an Embedding) takes Adam's step at ``learning_rate · adam_lr_ratio`` with
``adam_beta_1``, ``adam_beta_2`` and ``epsilon``; weight decay is ``weight_decay`` for the first kind,
``adam_weight_decay`` for the second, at the full rate. Keras's order of operations and float32 casts; the
matrix products are NumPy's (float32 sums in another order than TensorFlow's: ~1e-7 apart).

The path a variable is matched by is ``<layer name>/<weight path>`` (``dense_2/kernel``, ``embedding/embeddings``,
``gru/gru_cell/kernel``, ``bidirectional/forward_gru/gru_cell/kernel``), which holds the layer's, the cell's and the
weight's names as Keras's ``variable.path`` does (Keras's also holds a nested model's name where the model was
built in code, not where it was loaded). An Embedding's row gradient
takes the base class's rule (its slices summed, their squares summed per row for Adam's velocity, as Keras's
IndexedSlices arithmetic).
"""

from __future__ import annotations

import re

import numpy as np

from ..variables import array_of
from .apply_step import variable_paths
from .optimizer_base import Optimizer, _kcast


class Muon(Optimizer):
    """Keras 3's ``Muon`` (see the module docstring), its arguments and defaults."""

    def __init__(self, learning_rate: float = 0.001, adam_beta_1: float = 0.9, adam_beta_2: float = 0.999,
                 adam_weight_decay: float | None = 0.004, epsilon: float = 1e-7, weight_decay: float | None = 0.004,
                 exclude_layers=None, exclude_embeddings: bool = True, muon_a: float = 3.4445,
                 muon_b: float = -4.7750, muon_c: float = 2.0315, adam_lr_ratio: float = 1, momentum: float = 0.95,
                 ns_steps: int = 5, nesterov: bool = True, rms_rate: float | None = 0.2, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        if isinstance(exclude_layers, str) or not all(isinstance(p, str) for p in exclude_layers or []):
            raise ValueError(f"`exclude_layers` must be a list of regular expressions, received {exclude_layers!r}")
        if isinstance(ns_steps, bool) or not isinstance(ns_steps, (int, np.integer)) or ns_steps < 0:
            raise ValueError(f"`ns_steps` must be a non-negative integer, received {ns_steps!r}")
        self.adam_beta_1, self.adam_beta_2, self.adam_weight_decay = adam_beta_1, adam_beta_2, adam_weight_decay
        self.epsilon, self.exclude_layers, self.exclude_embeddings = epsilon, list(exclude_layers or []), \
            bool(exclude_embeddings)
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio, self.momentum, self.ns_steps = adam_lr_ratio, momentum, int(ns_steps)
        self.nesterov, self.rms_rate = bool(nesterov), rms_rate
        self._adam_rule: dict[int, bool] = {}  # id(variable) -> whether it takes the AdamW step

    def bind_model(self, model) -> None:
        variables = model.trainable_weights
        if all(id(array_of(v)) in self._adam_rule for v in variables):
            return
        for v, path in zip(variables, variable_paths(model, variables)):
            self._adam_rule[id(array_of(v))] = self._uses_adam(v, path or "")

    def _uses_adam(self, var, path: str) -> bool:
        """Keras's ``_should_use_adamw``: not a matrix, an embedding, or a layer ``exclude_layers`` names."""
        if var.ndim != 2 or (self.exclude_embeddings and "embedding" in path.lower()):
            return True
        return any(re.search(pattern, path) for pattern in self.exclude_layers)

    def _adam(self, var) -> bool:
        rule = self._adam_rule.get(id(array_of(var)))
        return var.ndim != 2 if rule is None else rule  # (a variable outside a model: by its axes alone)

    def _build_slots(self, var):
        if self._adam(var):
            return {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}
        return {"momentum": np.zeros_like(var)}

    def _weight_decay_of(self, i, var):
        return self.adam_weight_decay if "velocity" in self._slots[i] else self.weight_decay

    def _update(self, i, g, var, lr, g_sq):
        s = self._slots[i]
        if "velocity" in s:
            self._adam_update(s["momentum"], s["velocity"], g, var, lr, g_sq)
            return
        dt = var.dtype.type
        m = s["momentum"]
        m += g + m * dt(self.momentum - 1)
        direction = g + dt(self.momentum) * m if self.nesterov else m
        update = self._newton_schulz(direction)
        step = lr * update
        if self.rms_rate is not None:
            step = step * dt(np.sqrt(np.float32(max(var.shape[0], var.shape[1])))) * dt(self.rms_rate)
        var -= step

    def _adam_update(self, m, v, g, var, lr, g_sq):
        dt = var.dtype.type
        lr = dt(lr * dt(self.adam_lr_ratio))
        step = dt(self.iterations + 1)
        b1_power = np.power(_kcast(self.adam_beta_1, var.dtype), step)
        b2_power = np.power(_kcast(self.adam_beta_2, var.dtype), step)
        alpha = lr * np.sqrt(dt(1) - b2_power) / (dt(1) - b1_power)
        m += (g - m) * dt(1 - self.adam_beta_1)
        v += ((np.square(g) if g_sq is None else g_sq) - v) * dt(1 - self.adam_beta_2)
        var -= (m * alpha) / (np.sqrt(v) + dt(self.epsilon))

    def _newton_schulz(self, x: np.ndarray) -> np.ndarray:
        """Keras's ``zeropower_via_newtonschulz5`` of a matrix, in its dtype."""
        dt = x.dtype.type
        a, b, c = dt(self.muon_a), dt(self.muon_b), dt(self.muon_c)
        tall = x.shape[0] > x.shape[1]
        if tall:
            x = x.T
        x = x / (np.sqrt(np.sum(np.square(x), dtype=x.dtype)) + dt(1e-7))
        for _ in range(self.ns_steps):
            gram = x @ x.T
            x = a * x + (b * gram + (c * gram) @ gram) @ x
        return np.ascontiguousarray(x.T if tall else x)

    def get_config(self) -> dict:
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1, "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon, "exclude_layers": list(self.exclude_layers), "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c, "adam_lr_ratio": self.adam_lr_ratio,
                "momentum": self.momentum, "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings, "adam_weight_decay": self.adam_weight_decay,
                "rms_rate": self.rms_rate}
