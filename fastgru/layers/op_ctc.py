"""Keras's ``ops.ctc_loss`` as a graph op (``CTCLoss``): the per-sequence loss of a CRNN computed inside a custom
loss or a custom layer's ``add_loss`` (keras.io's OCR and speech examples), so training differentiates through it.

Operands: ``target`` (B, L) integer labels, ``output`` (B, T, C) logits, ``target_length`` and ``output_length``
(B,); one value per sequence, (B,). The gradient flows to ``output`` alone
(the labels and lengths are integers). Values and gradients are ``fastgru.ops.ctc``'s (TensorFlow's numbers).
"""

from __future__ import annotations

import numpy as np

from ..ops.ctc import ctc_loss_and_gradient

#: where the forward leaves its gradient for the backward (the normalised config is the call's own dict)
_GRADIENT = "_output_gradient"


def _normalize(c: dict, shapes: list, owner: str) -> dict:
    mask_index = c.get("mask_index", 0)
    if isinstance(mask_index, bool) or not isinstance(mask_index, (int, np.integer)):
        raise ValueError(f"{owner}: mask_index must be an integer, found {mask_index!r}")
    target, output = shapes[0], shapes[1]
    if len(target) != 2 or len(output) != 3:
        raise ValueError(f"{owner}: expects target (batch_size, max_label_length) and output (batch_size, steps, "
                         f"classes), found shapes {tuple(target)} and {tuple(output)}")
    for name, shape in zip(("target_length", "output_length"), shapes[2:]):
        if len(shape) != 1:
            raise ValueError(f"{owner}: {name} must have one value per sequence (batch_size,), found shape "
                             f"{tuple(shape)}")
    return {"mask_index": int(mask_index)}


def _forward(xs: list, c: dict) -> np.ndarray:
    target, output = xs[0], xs[1]
    loss, grad = ctc_loss_and_gradient(target, output, *xs[2:], c["mask_index"])
    c[_GRADIENT] = grad
    return loss.astype(output.dtype)


def _gradient(xs: list, y, dy, c: dict) -> list:
    grad = c.get(_GRADIENT)
    if grad is None:
        grad = ctc_loss_and_gradient(xs[0], xs[1], *xs[2:], c["mask_index"])[1]
    d_output = (np.asarray(dy, dtype=np.float64)[:, None, None] * grad).astype(xs[1].dtype)
    return [None, d_output, None, None]


#: (normalize(config, shapes, owner), shape, forward, gradient), as op_axis.AXIS_SHAPE_OPS
CTC_OPS = {"CTCLoss": (_normalize, lambda s, c: (s[1][0],), _forward, _gradient)}
