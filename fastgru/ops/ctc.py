"""Connectionist temporal classification, as Keras 3's ``keras.ops.ctc_loss`` and ``keras.ops.ctc_decode``
(TensorFlow's numbers): the loss of a CRNN that reads text or speech (labels shorter than its output, no
alignment given) and the greedy decoding of its output. Every array is checked here before the kernels
(``fastgru._kernels.ctc``) index by it.
"""

from __future__ import annotations

import numpy as np

from .._kernels.ctc import ctc_greedy_decode, ctc_loss_and_grad
from ..errors import UnsupportedKerasFeature
from .validation import writable


def _integers(name: str, a, ndim: int) -> np.ndarray:
    """``a`` as int64 of rank ``ndim`` (whole floats accepted, as labels read from a float array)."""
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}, received shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold whole numbers, received non-integer values")
    elif a.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, received dtype {a.dtype}")
    return a.astype(np.int64)


def _logits(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3:
        raise ValueError(f"{name} must be (batch_size, max_length, num_classes) logits, received shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be a numeric array, received dtype {a.dtype}")
    if a.shape[2] == 0:
        raise ValueError(f"{name} has no classes (shape {a.shape})")
    return a


def _blank(mask_index: int, classes: int) -> int:
    blank = int(mask_index) + (classes if mask_index < 0 else 0)
    if not 0 <= blank < classes:
        raise ValueError(f"mask_index {mask_index} is outside the {classes} classes")
    return blank


def ctc_loss_and_gradient(target, output, target_length, output_length, mask_index: int = 0):
    """(loss (B,), d loss / d output (B, T, C)), both float64: :func:`ctc_loss` and its gradient."""
    logits = _logits("output", output)
    labels = _integers("target", target, 2)
    label_lengths = _integers("target_length", target_length, 1)
    logit_lengths = _integers("output_length", output_length, 1)
    n, steps, classes = logits.shape
    if labels.shape[0] != n or label_lengths.shape[0] != n or logit_lengths.shape[0] != n:
        raise ValueError(f"target {labels.shape}, target_length {label_lengths.shape} and output_length "
                         f"{logit_lengths.shape} must have the output's {n} sequences")
    if np.any(label_lengths < 0) or np.any(label_lengths > labels.shape[1]):
        raise ValueError(f"target_length must lie in [0, {labels.shape[1]}] (the target's length), received "
                         f"{label_lengths.tolist()}")
    if np.any(logit_lengths < 0) or np.any(logit_lengths > steps):
        raise ValueError(f"output_length must lie in [0, {steps}] (the output's steps), received "
                         f"{logit_lengths.tolist()}")
    blank = _blank(mask_index, classes)
    used = np.arange(labels.shape[1])[None, :] < label_lengths[:, None]
    bad = used & ((labels < 0) | (labels >= classes) | (labels == blank))
    if bad.any():
        b, i = np.argwhere(bad)[0]
        raise ValueError(f"target[{b}, {i}] = {labels[b, i]}: labels must lie in [0, {classes}) and not be the blank "
                         f"(mask_index {mask_index}) within target_length")
    if not np.all(np.isfinite(logits)):
        raise ValueError("output holds NaN or infinite values")
    loss = np.empty(n)
    grad = np.empty((n, steps, classes))
    ctc_loss_and_grad(writable(np.ascontiguousarray(logits, dtype=np.float64)), np.ascontiguousarray(labels),
                      label_lengths, logit_lengths, blank, loss, grad)
    return loss, grad


def ctc_loss(target, output, target_length, output_length, mask_index: int = 0) -> np.ndarray:
    """Keras's ``ops.ctc_loss``: ``-log p(target | output)`` per sequence, (B,).

    ``target`` (B, L) integer labels, the first ``target_length[b]`` of row b used; ``output`` (B, T, C) logits
    (a log-softmax is taken of them, as ``tf.nn.ctc_loss`` does; pass a softmax's output and its logarithm's
    log-softmax is what is scored, as in Keras), the first ``output_length[b]`` steps used; ``mask_index`` the
    blank class. A target the output's steps cannot hold gets an infinite loss."""
    dtype = np.result_type(np.asarray(output).dtype, np.float32)
    return ctc_loss_and_gradient(target, output, target_length, output_length, mask_index)[0].astype(dtype)


def ctc_decode(inputs, sequence_lengths, strategy: str = "greedy", beam_width: int = 100, top_paths: int = 1,
               merge_repeated: bool = True, mask_index: int = 0):
    """Keras's ``ops.ctc_decode`` with ``strategy="greedy"``: (decoded (1, B, T) int32, -1 past each sequence's
    labels; scores (B, 1), the negated sum of each step's largest input). ``inputs`` (B, T, C) logits,
    ``sequence_lengths`` (B,) the steps of each sequence to read."""
    if strategy != "greedy":
        raise UnsupportedKerasFeature(f"ctc_decode strategy={strategy!r} is not supported by fastgru (it has "
                                      "'greedy')")
    logits = _logits("inputs", inputs)
    lengths = _integers("sequence_lengths", sequence_lengths, 1)
    n, steps, classes = logits.shape
    if lengths.shape[0] != n or np.any(lengths < 0) or np.any(lengths > steps):
        raise ValueError(f"sequence_lengths must hold {n} lengths in [0, {steps}], received {lengths.tolist()}")
    dtype = np.result_type(logits.dtype, np.float32)
    decoded = np.empty((n, steps), np.int64)
    scores = np.empty(n)
    ctc_greedy_decode(writable(np.ascontiguousarray(logits, dtype=np.float64)), lengths, _blank(mask_index, classes),
                      bool(merge_repeated), decoded, scores)
    return decoded.astype(np.int32)[None], scores.astype(dtype)[:, None]
