"""Keras 3's ``GetItem`` operation: ``h[:, -1, :]``, ``h[..., 0]``, ``h[:, 2:5]`` on a tensor of a
Functional model (Keras records it as an op layer, ``keras.src.ops.numpy.GetItem``, with the index in its
node's arguments).

The index is a call option of the graph's node (``key``, a tuple of ints, slices, ``Ellipsis`` and
``None``), so one layer object serves one node, as in Keras. It must keep the batch axis whole. The output
carries no mask (a Keras op does not pass masks on); the backward pass scatters the gradient into zeros.
"""

from __future__ import annotations

import numpy as np

from . import registry
from .base import Layer

#: stands for a dimension of unknown size when the output shape is worked out (any result this large is
#: unknown too)
_UNKNOWN = 1_000_003


def check_key(key, rank: int, owner: str) -> tuple:
    """``key`` as a tuple of int / slice / Ellipsis / None, checked to leave the batch axis (axis 0) whole."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        ok = item is None or item is Ellipsis or isinstance(item, slice) or (
            isinstance(item, (int, np.integer)) and not isinstance(item, bool))
        if not ok:
            raise TypeError(f"{owner}: an index may hold integers, slices, ... and None, received {item!r}")
        if isinstance(item, slice) and not all(v is None or (isinstance(v, (int, np.integer)) and not isinstance(
                v, bool)) for v in (item.start, item.stop, item.step)):
            raise TypeError(f"{owner}: slice bounds must be integers or None, received {item!r}")
    if sum(item is Ellipsis for item in items) > 1:
        raise ValueError(f"{owner}: an index can only have a single ellipsis, received {items!r}")
    indexing = [i for i in items if i is not None]
    if len(indexing) - (Ellipsis in indexing) > rank:
        raise ValueError(f"{owner}: too many indices ({len(indexing)}) for a tensor of rank {rank}")
    first = next((i for i in items if i is not None), Ellipsis)
    if first is Ellipsis:
        fills = rank - (len(indexing) - 1)
        touches_batch = fills == 0
    else:
        touches_batch = not (isinstance(first, slice) and first == slice(None))
    if touches_batch:
        raise ValueError(f"{owner}: the index {items!r} selects along the batch axis; fastgru keeps it whole "
                         "(index the other axes, e.g. x[:, -1])")
    return items


def output_shape(shape: tuple, key: tuple) -> tuple:
    """The shape of ``x[key]`` for ``x`` of ``shape`` (None: unknown size)."""
    dims = tuple(_UNKNOWN if d is None else int(d) for d in shape)
    probe = np.broadcast_to(np.empty((), np.int8), dims)[key]  # no memory: a zero-stride view
    return tuple(None if d >= _UNKNOWN // 2 else int(d) for d in probe.shape)


class GetItem(Layer):
    """``x[key]`` on the axes after the batch axis (``key`` given per call, by the graph's node)."""

    keras_operation = True

    _call_options = ("key",)
    supports_masking = False

    def compute_output_shape(self, input_shape, key=()):
        items = check_key(key, len(input_shape), f"GetItem {self.name!r}")
        return output_shape(tuple(input_shape), items)

    def compute_mask(self, x, mask=None):
        return None

    def _array(self, x, key):
        x = np.asarray(x)
        built = self.input_shape
        if built is not None and (x.ndim != len(built) or any(b is not None and b != s for b, s in
                                                               zip(built[1:], x.shape[1:]))):
            raise ValueError(f"GetItem {self.name!r} expects input shape {built}, received shape {x.shape}")
        return x, check_key(key, x.ndim, f"GetItem {self.name!r}")

    def call(self, x, mask=None, training: bool = False, key=()):
        x, items = self._array(x, key)
        return np.array(x[items])

    def forward(self, x, mask=None, training: bool = True, key=()):
        x, items = self._array(x, key)
        return np.array(x[items]), (x.shape, x.dtype, items)

    def backward(self, dy, cache, need_dx: bool = True):
        shape, dtype, items = cache
        if not need_dx:
            return None, []
        dx = np.zeros(shape, dtype)
        dx[items] = np.asarray(dy, dtype)  # ints and slices select each element at most once
        return dx, []


registry.register_model("GetItem", GetItem)  # fastgru.io builds it for a file's GetItem op (no import)
