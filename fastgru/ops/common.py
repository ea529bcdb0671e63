"""What the recurrent cells' ops share: the empty mask, the training activation check, Keras's dropout
masks as the kernels take them, the public functions' dropout-mask checks, and the shared projection of
one sequence at two threads."""

from __future__ import annotations

import numpy as np

from .. import activations
from .._kernels import activations as _kact
from .._kernels import aligned
from .._kernels.shared_projection import n_blocks, project_shared, shared_block_steps
from .._kernels.task_records import KIND_PROJECTION
from .._threads import kernel_threads, run_beside
from ..errors import UnsupportedKerasFeature
from .validation import _as_float_array, _check_finite, _check_shape

#: the ``mask`` argument of a kernel call without a mask
EMPTY_MASK = np.zeros((0, 0), np.uint8)


def views_of(*pairs) -> bool:
    """Whether each ``(derived, source)`` pair's derived array is ``source`` or a view into it (not a
    copy): a prepared-weights object made only of views shows in-place changes of its sources."""
    return all(d.size > 0 and np.may_share_memory(d, s) for d, s in pairs)


def training_activation_codes(activation, recurrent_activation, layer: str = "GRU") -> tuple[int, int]:
    """Kernel codes of the two activations, checked to have a derivative BPTT can take.

    The backward recovers each derivative from the activation's saved *output*; swish and gelu are
    not invertible that way, so training a GRU with them raises ``UnsupportedKerasFeature`` (a
    ``NotImplementedError``) here, before any kernel runs.
    """
    codes = []
    for arg, name in (("activation", activation), ("recurrent_activation", recurrent_activation)):
        code = activations.kernel_code(name)
        if code not in _kact.INVERTIBLE_FROM_OUTPUT:
            raise UnsupportedKerasFeature(
                f"{layer} {arg}={activations.canonical_name(name)!r} is supported for inference only: "
                "training (backward) needs an activation whose derivative follows from its output"
            )
        codes.append(code)
    return codes[0], codes[1]


def kernel_masks(input_masks, recurrent_masks, dtype):
    """Dropout masks as the kernels take them: (n, B, D) with n in {0, 1, G}, and (G, B, H) (G gates)."""
    if input_masks is None:
        imask = np.zeros((0, 0, 0), dtype)
    elif input_masks.ndim == 2:
        imask = input_masks[None]
    else:
        imask = input_masks
    rmask = np.zeros((0, 0, 0), dtype) if recurrent_masks is None else recurrent_masks
    return np.ascontiguousarray(imask, dtype), imask.shape[0], np.ascontiguousarray(rmask, dtype), rmask.shape[0] > 0


def check_dropout_masks(dropout_mask, recurrent_dropout_mask, bsz, d, units, dtype, n_gates=3):
    """Validate the public functions' dropout masks (values already scaled by 1/(1 - rate)):
    dropout_mask (B, D) or (n_gates, B, D), recurrent_dropout_mask (n_gates, B, H)."""
    if dropout_mask is not None:
        dropout_mask = _as_float_array("dropout_mask", dropout_mask, dtype)
        if dropout_mask.shape not in ((bsz, d), (n_gates, bsz, d)):
            raise ValueError(
                f"dropout_mask must have shape (batch, features) = {(bsz, d)} or ({n_gates}, batch, features) = "
                f"{(n_gates, bsz, d)}, received shape {dropout_mask.shape}"
            )
        _check_finite("dropout_mask", dropout_mask)
    if recurrent_dropout_mask is not None:
        recurrent_dropout_mask = _as_float_array("recurrent_dropout_mask", recurrent_dropout_mask, dtype)
        _check_shape("recurrent_dropout_mask", recurrent_dropout_mask, (n_gates, bsz, units))
        _check_finite("recurrent_dropout_mask", recurrent_dropout_mask)
    return dropout_mask, recurrent_dropout_mask


def shared_projection_steps(x: np.ndarray, n_chunks: int, units: int, n: int) -> int:
    """Steps per block when an inference call of ``x`` (B, T, D), as ``n_chunks`` chunks of rows, shares its
    projection onto ``n`` gate columns with a worker (one chunk, two threads or more, a layer wide enough:
    ``_kernels.shared_projection``), else 0."""
    if n_chunks > 1 or kernel_threads() < 2:
        return 0
    return shared_block_steps(x.shape[0], x.shape[1], x.shape[2], units, n, x.itemsize)


def run_shared_projection(chunk, x: np.ndarray, w: np.ndarray, b: np.ndarray, block: int, go_backwards: bool) -> None:
    """``chunk(post, shared)`` (a time loop over all of x's rows, ``shared = (xp, progress, block)``) in this
    thread while a worker projects ``x @ w + b`` into ``xp`` ahead of it, block by block (``run_beside``;
    the worker's share runs from compiled code for float32)."""
    bsz, steps = x.shape[0], x.shape[1]
    xp = aligned.empty((steps, bsz, w.shape[1]), x.dtype)
    progress = np.zeros(n_blocks(steps, block), np.int64)
    run_beside(lambda post: chunk(post, (xp, progress, block)),
               lambda: project_shared(x, w, b, xp, progress, block, 0, bsz, go_backwards),
               record_kind=KIND_PROJECTION if x.dtype == np.float32 else 0)
