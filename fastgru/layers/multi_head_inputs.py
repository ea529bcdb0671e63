"""MultiHeadAttention's call inputs and options: the options' constraints (``output_shape``,
``attention_axes``), gathering a call's tensors and masks whichever way it is made (keywords as Keras, a
list, a Functional node's ``layout``), and checking the arrays against the built shapes while combining
the masks as Keras 3 does. The layer itself is :mod:`fastgru.layers.multi_head_attention`.
"""

from __future__ import annotations

import numpy as np

from .. import keras_masks
from .base import compute_dtype
from .keras_ops import apply_op
from .registry import Anything, Integer

#: the names of the entries of a list call (``layout``)
_ROLES = ("query", "value", "key", "attention_mask")


def _normalise_output_shape(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if not value:
            return None  # Keras: an empty output_shape is "not given"
        return tuple(int(v) for v in value)
    return (int(value),)


class _OutputShape(Anything):
    def accepts(self, value) -> bool:
        items = value if isinstance(value, (list, tuple)) else [value]
        return all(Integer(1).accepts(v) for v in items)

    def is_type_error(self, value) -> bool:
        return not isinstance(value, (list, tuple)) and not Integer().accepts(value)

    def convert(self, value):
        return _normalise_output_shape(value)

    def __str__(self) -> str:
        return "None, a positive integer or a tuple of positive integers"


class _AttentionAxes(Anything):
    def accepts(self, value) -> bool:
        items = value if isinstance(value, (list, tuple)) else [value]
        return all(Integer().accepts(v) for v in items)

    def is_type_error(self, value) -> bool:
        return True

    def convert(self, value):
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(int(v) for v in items)

    def __str__(self) -> str:
        return "None, an integer or a tuple of integers"


def gather_call(layer, query, value, key, value_mask, key_mask, attention_mask, mask, layout):
    """(inputs list, layout: the role of each entry, masks aligned with the inputs)."""
    if isinstance(query, (list, tuple)) and value is None:  # layer([query, value(, key)]) or a graph's list
        inputs = list(query)
        layout = tuple(layout) if layout is not None else _ROLES[:len(inputs)]
        if len(layout) != len(inputs) or len(inputs) < 2:
            raise ValueError(f"{layer._label()} is called on query and value (and key), received a list of "
                             f"{len(inputs)}")
    else:
        if value is None:
            raise ValueError(f"{layer._label()} is called on query and value (and key): value is missing")
        inputs, layout = [query, value], ["query", "value"]
        if key is not None:
            inputs.append(key)
            layout.append("key")
        if attention_mask is not None:
            inputs.append(attention_mask)
            layout.append("attention_mask")
        layout = tuple(layout)
    if mask is not None:
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
        masks = (masks + [None] * len(inputs))[:len(inputs)]
    else:
        masks = [None] * len(inputs)
    for role, given in (("value", value_mask), ("key", key_mask)):  # explicit masks win, as in Keras
        if given is not None and role in layout:
            masks[layout.index(role)] = given
    return inputs, tuple(layout), masks

def carried_masks(inputs: list, layout, masks: list) -> list:
    """An eager call's masks as Keras's MultiHeadAttention reads them: those the query, value and key carry where
    none is given (``keras_masks``); the inputs then carry none (Keras's ``set_keras_mask(x, None)`` on them)."""
    masks = [keras_masks.carried(a) if m is None and r != "attention_mask" else m
             for a, r, m in zip(inputs, layout, masks)]
    keras_masks.drop([a for a, r in zip(inputs, layout) if r != "attention_mask"])
    return masks


def constant_attention_mask(inputs: list, layout) -> list:
    """``inputs`` with a constant ``attention_mask`` given beside symbolic tensors (a causal mask a custom layer
    builds with ``ops.arange``) made a tensor of the query's batch: ``zeros_like(query[:, :, :1]) + mask``, (B, T, S),
    as ``graph._state_of_weights`` makes a constant initial state one."""
    if "attention_mask" not in layout or not getattr(inputs[0], "_fg_symbolic", False):
        return inputs
    at = layout.index("attention_mask")
    given = inputs[at]
    if getattr(given, "_fg_symbolic", False) or type(given).__name__ == "InputLayer" or len(inputs[0].shape) != 3:
        return inputs
    constant = np.asarray(given)
    if constant.ndim == 3 and constant.shape[0] == inputs[0].shape[0] and (constant == constant[:1]).all():
        constant = constant[:1]  # (keras.io's causal mask tiled to the batch, ops.tile(mask, (batch_size, 1, 1)))
    if constant.ndim not in (2, 3) or (constant.ndim == 3 and constant.shape[0] != 1):
        raise ValueError(f"a constant attention_mask must be of shape (T, S) or (1, T, S), or the same (T, S) for "
                         f"every sample of the batch, found {constant.shape}")
    inputs = list(inputs)
    inputs[at] = apply_op("Add", apply_op("ZerosLike", inputs[0][:, :, :1]), (constant != 0).astype(np.float32))
    return inputs


def call_arrays(layer, inputs, mask, layout):
    """(q, v, k or None, keep mask (B, T|1, S) or None, attention mask or None, layout): the call's arrays
    checked against the layer's built shapes, in the compute dtype; the masks combined as Keras does."""
    label = layer._label()
    layout = tuple(layout) if layout is not None else _ROLES[:len(inputs)]
    if not isinstance(inputs, (list, tuple)) or len(inputs) != len(layout):
        raise ValueError(f"{label} is called on query and value (and key), received {type(inputs).__name__}")
    named = dict(zip(layout, inputs))
    masks = list(mask) if isinstance(mask, (list, tuple)) else [None] * len(inputs)
    masks = dict(zip(layout, (masks + [None] * len(inputs))[:len(inputs)]))
    arrays = [np.asarray(named[r]) for r in ("query", "value", "key") if r in named]
    for a in arrays:
        if a.dtype.kind not in "fiub":
            raise TypeError(f"{label} expects numeric arrays, received dtype {a.dtype}")
    layer._check_shapes([a.shape for a in arrays])
    expected = layer.input_shape
    want = [expected[0], expected[1], expected[2] if len(expected) == 3 else expected[1]]
    got = [arrays[0].shape, arrays[1].shape, arrays[2].shape if len(arrays) == 3 else arrays[1].shape]
    for role, w, g in zip(("query", "value", "key"), want, got):
        if w[-1] is not None and g[-1] != w[-1]:
            raise ValueError(f"{label} was built for a {role} with last dimension {w[-1]}, received shape {g}")
    if not arrays[0].shape[0] == arrays[1].shape[0] == got[2][0]:
        raise ValueError(f"{label}: query, value and key must have the same batch size, received shapes "
                         f"{[tuple(s) for s in got]}")
    dtype = np.result_type(*[compute_dtype(a, layer) for a in arrays])
    q, v = arrays[0].astype(dtype, copy=False), arrays[1].astype(dtype, copy=False)
    k = arrays[2].astype(dtype, copy=False) if len(arrays) == 3 else None
    b, t, s = q.shape[0], q.shape[1], v.shape[1]

    def as_mask(m, shape, what):
        if m is None:
            return None
        m = np.asarray(m)
        if m.shape != shape:
            raise ValueError(f"{label}: the {what} mask must have shape {shape}, received {m.shape}")
        return m.astype(bool)

    q_mask = as_mask(masks.get("query"), (b, t), "query")
    keep = None if q_mask is None else q_mask[:, :, None]
    for role in ("value", "key"):
        m = as_mask(masks.get(role), (b, s), role) if role in named else None
        if m is not None:
            keep = m[:, None, :] if keep is None else keep & m[:, None, :]
    attention = named.get("attention_mask")
    if attention is not None:
        attention = np.asarray(attention)
        # (1 on the query or key axis broadcasts: a (batch, 1, T_k) padding mask, as Keras takes it)
        if attention.ndim not in (2, 3, 4) or attention.shape[-2] not in (1, t) or \
                attention.shape[-1] not in (1, s) or (attention.ndim >= 3 and attention.shape[0] not in (1, b)) or \
                (attention.ndim == 4 and attention.shape[1] not in (1, layer.num_heads)):
            raise ValueError(f"{label}: attention_mask must have shape (batch, {t}, {s}) (or broadcast to "
                             f"(batch, {layer.num_heads}, {t}, {s})), received {attention.shape}")
        if attention.dtype.kind not in "fiub":
            raise TypeError(f"{label}: attention_mask must be boolean or numeric, received dtype "
                            f"{attention.dtype}")
        attention = attention.astype(bool)
        attention = attention.reshape((1,) * (3 - attention.ndim) + attention.shape) if attention.ndim < 3 \
            else attention
    return q, v, k, keep, attention, layout
