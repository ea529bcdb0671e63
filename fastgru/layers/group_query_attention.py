"""Keras 3's ``GroupedQueryAttention`` (exported, and written in its configs, as ``GroupQueryAttention``):
multi-head attention whose ``num_query_heads`` share ``num_key_value_heads`` key and value heads, each key/value
head serving ``num_query_heads // num_key_value_heads`` query heads in turn (Keras's ``repeat`` along the heads).

Computed by :class:`~fastgru.layers.multi_head_attention.MultiHeadAttention` (masks, ``use_causal_mask``,
``sliding_window``, ``dropout``, ``return_attention_scores``, both of Keras's softmax paths) with key and value
projected to their own heads and repeated before the scores; their gradients are summed back over the query
heads that shared them. Weights, in Keras's order: query/kernel (D, Hq, head_dim), query/bias (Hq, head_dim),
key/kernel (D, Hkv, head_dim), key/bias, value/kernel, value/bias (the same shapes), attention_output/kernel
(Hq, head_dim, D), attention_output/bias (D,). The output has the query's shape. ``use_gate`` and
``flash_attention=True`` are refused by name.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from .multi_head_attention import MultiHeadAttention
from .registry import ANY, Integer, KerasContract, register_layer


@register_layer
class GroupedQueryAttention(MultiHeadAttention):
    """Grouped-query attention (see the module docstring)."""

    keras = KerasContract(names=("GroupedQueryAttention", "GroupQueryAttention"),
                          fixed={"use_gate": False, "flash_attention": ANY})
    #: unlike MultiHeadAttention's, Keras's call leaves its inputs' masks on them for the layers after it
    drops_input_masks = False
    #: the class name Keras writes in its configs (its weight paths take the Python class's)
    keras_config_name = "GroupQueryAttention"
    parameter_constraints = {**MultiHeadAttention.parameter_constraints, "head_dim": [Integer(1)],
                             "num_query_heads": [Integer(1)], "num_key_value_heads": [Integer(1)]}
    contract_example = {"kwargs": {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2},
                        "inputs": [(5, 4), (6, 4)]}

    def __init__(self, head_dim: int, num_query_heads: int, num_key_value_heads: int, dropout: float = 0.0,
                 use_bias: bool = True, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_constraint=None,
                 bias_constraint=None, use_gate: bool = False, seed=None, **kwargs):
        owner = f"GroupedQueryAttention {kwargs.get('name')!r}"
        for option, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                              ("num_key_value_heads", num_key_value_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {option} must be a positive integer, received {value!r}")
        if num_query_heads % num_key_value_heads:
            raise ValueError(f"{owner}: num_query_heads ({num_query_heads}) must be divisible by num_key_value_heads "
                             f"({num_key_value_heads})")
        if use_gate:
            raise UnsupportedKerasFeature(f"{owner}: option use_gate=True is not supported")
        super().__init__(num_query_heads, head_dim, head_dim, dropout=dropout, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_constraint=kernel_constraint, bias_constraint=bias_constraint,
                         sliding_window=sliding_window, flash_attention=flash_attention, seed=seed, **kwargs)
        self.head_dim, self.num_query_heads, self.num_key_value_heads = head_dim, num_query_heads, num_key_value_heads

    def _label(self) -> str:
        return f"GroupedQueryAttention {self.name!r}"

    def _check_shapes(self, shapes) -> None:
        super()._check_shapes(shapes)
        if shapes[0][-1] != shapes[1][-1]:
            raise ValueError(f"{self._label()}: the query's and the value's last dimensions must be equal (as in "
                             f"Keras), received shapes {[tuple(s) for s in shapes]}")

    def _heads(self, projection: str) -> int:
        return self.num_key_value_heads if projection in ("key", "value") else self.num_query_heads

    def _project(self, x, name, invariant):
        projected = super()._project(x, name, invariant)
        if name in ("key", "value"):  # (each key/value head serves its group of query heads in turn)
            projected = np.repeat(projected, self.num_query_heads // self.num_key_value_heads, axis=1)
        return projected

    def _fold_heads(self, projection: str, d_projected: np.ndarray) -> np.ndarray:
        if projection not in ("key", "value"):
            return d_projected
        b, _, steps, width = d_projected.shape
        group = self.num_query_heads // self.num_key_value_heads
        return d_projected.reshape(b, self.num_key_value_heads, group, steps, width).sum(axis=2)

    def keras_var_groups(self) -> list[tuple[str, int]]:
        """Keras 3's weights-file groups: the sublayers keep their attributes' leading underscores here."""
        n = 2 if self.use_bias else 1
        if not self.weights:  # (never built: a layer held and not called writes no groups, as Keras's)
            return []
        return [(f"_{group}/vars", n) for group in ("query_dense", "key_dense", "value_dense", "output_dense")]

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes"):
            config.pop(key, None)
        config.update(head_dim=self.head_dim, num_query_heads=self.num_query_heads,
                      num_key_value_heads=self.num_key_value_heads, use_gate=False,
                      sliding_window=self.sliding_window)
        return config
