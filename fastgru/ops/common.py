"""What the recurrent cells' ops share: the empty mask, the training activation check, Keras's dropout
masks as the kernels take them, and the public functions' dropout-mask checks."""

from __future__ import annotations

import numpy as np

from .. import activations
from .._kernels import activations as _kact
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
