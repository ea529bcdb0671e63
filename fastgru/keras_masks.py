"""Masks carried on arrays, as Keras 3's tensors carry theirs (``_keras_mask``).

In Keras a padding mask travels on the tensor itself: a layer called eagerly (or inside a custom layer's
``call``) reads its input's mask when it is given none, and a layer that supports masking leaves its output's on
the tensor it returns. So a custom layer whose ``call`` takes no ``mask`` still masks the GRU it holds, and a
custom layer that returns its input (or what a masking layer made of it) passes the mask on to the next layer.
fastgru's eager calls do the same with :class:`~fastgru.eager.EagerArray` views that carry the mask
(:func:`carrying`); the graph walkers learn a custom layer's carried output mask from :func:`record` (read back by
its ``compute_mask``, ``layers/custom.py``).
"""

from __future__ import annotations

import threading

import numpy as np

from .eager import EagerArray

_ATTRIBUTE = "_keras_mask"
#: the masks a custom layer's outputs carried after its latest call in this thread: (layer, its input, masks)
_recorded = threading.local()


def carried(x):
    """The mask ``x`` carries (a list of them for a list or tuple; None where none is carried)."""
    if isinstance(x, (list, tuple)):
        masks = [getattr(a, _ATTRIBUTE, None) for a in x]
        return masks if any(m is not None for m in masks) else None
    return getattr(x, _ATTRIBUTE, None)


def carrying(x, mask):
    """``x`` carrying ``mask``: a view of each array with the mask attached (x itself when ``mask`` is None; lists
    and tuples item by item, with a list of masks)."""
    if mask is None:
        return x
    if isinstance(x, (list, tuple)):
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask]
        return type(x)(carrying(a, m) for a, m in zip(x, masks + [None] * (len(x) - len(masks))))
    if not isinstance(x, np.ndarray) or x.dtype == object:
        return x
    view = x.view(EagerArray)
    setattr(view, _ATTRIBUTE, np.asarray(mask))
    return view


def drop(x) -> None:
    """Remove the masks ``x`` carries (Keras's ``set_keras_mask(x, None)``, as its MultiHeadAttention does to the
    tensors it is called on)."""
    for a in x if isinstance(x, (list, tuple)) else (x,):
        if isinstance(a, EagerArray) and _ATTRIBUTE in a.__dict__:
            del a.__dict__[_ATTRIBUTE]


def merged(first, second):
    """Output by output, the mask of ``first`` where it has one, else the mask of ``second`` (each a mask, None, or
    a list of them for several outputs)."""
    if not isinstance(first, (list, tuple)) and not isinstance(second, (list, tuple)):
        return first if first is not None else second
    n = max(len(v) for v in (first, second) if isinstance(v, (list, tuple)))

    def items(v):
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return v + [None] * (n - len(v))

    masks = [a if a is not None else b for a, b in zip(items(first), items(second))]
    return masks if any(m is not None for m in masks) else None


def record(layer, inputs, masks) -> None:
    """Note the masks a custom layer's call on ``inputs`` left on its outputs (None where none)."""
    _recorded.value = (layer, inputs, masks)  # (the objects, not their ids, which a later object may reuse)


def recorded(layer, inputs):
    """``(True, masks)`` when :func:`record` noted ``layer``'s latest call on ``inputs`` (this thread), else
    ``(False, None)``."""
    kept = getattr(_recorded, "value", None)
    if kept is not None and kept[0] is layer and kept[1] is inputs:
        return True, kept[2]
    return False, None
