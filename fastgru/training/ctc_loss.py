"""Keras 3's ``CTC`` loss (``"ctc"``): connectionist temporal classification for CRNNs that read text or speech,
``y_true`` (B, L) integer labels with 0 the blank and the padding (each row's labels are its first ``count_nonzero``
entries), ``y_pred`` (B, T, C) logits, every step of every sequence used (``fastgru.ops.ctc_loss``)."""

from __future__ import annotations

import numpy as np

from ..ops.ctc import ctc_loss_and_gradient
from .loss_base import Loss, _float_dtype, _weights


class CTC(Loss):
    """``-log p(y_true | y_pred)`` per sequence, reduced as Keras's losses are (sample weights (B,))."""

    def __init__(self, reduction: str = "sum_over_batch_size", name: str = "ctc"):
        super().__init__(name=name, reduction=reduction)

    def _run(self, y_true, y_pred, logits, sample_weight, mask, grad):
        y_pred = np.asarray(y_pred)
        y_true = np.asarray(y_true)
        if y_true.ndim != 2:
            raise ValueError(f"CTC: targets y_true are expected of shape (batch_size, max_length) in integer format, "
                             f"received shape {y_true.shape}")
        if y_pred.ndim != 3:
            raise ValueError(f"CTC: the model's output is expected of shape (batch_size, max_length, num_classes) "
                             f"(logits), received shape {y_pred.shape}")
        if mask is not None:
            raise ValueError("CTC: the model's output carries a mask (its per-step losses cannot take one: CTC scores "
                             "whole sequences); end the mask before the output")
        dtype = _float_dtype(y_pred)
        n, steps = y_pred.shape[:2]
        values, dvalues = ctc_loss_and_gradient(y_true, y_pred, np.count_nonzero(y_true != 0, axis=-1),
                                                np.full(n, steps), 0)
        values = values.astype(dtype)
        w = _weights(values.shape, dtype, sample_weight, None, self.reduction)
        weighted = values if w is None else values * w
        count = weighted.size if self.reduction != "sum" else 1
        loss = np.sum(weighted, dtype=dtype) / dtype.type(count) if count else dtype.type(0)
        if not grad:
            return float(loss), None
        upstream = np.full(n, 1.0 / count if count else 0.0)
        if w is not None:
            upstream = upstream * w
        return float(loss), (dvalues * upstream[:, None, None]).astype(dtype)

    @classmethod
    def from_config(cls, config: dict) -> CTC:
        return cls(**{k: v for k, v in config.items() if k not in ("dtype", "fn")})
