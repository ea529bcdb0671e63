"""Array-level API: validate inputs once, allocate outputs, pick and run the kernel.

Public: :func:`gru_forward`, :func:`gru_forward_train`, :func:`gru_backward` (and the results
:class:`GRUGradients`, :class:`GRUTrainCache`). The ``run_*`` functions and :class:`PreparedGRU` take
already-validated arrays; the layers call them.
"""

from .gru import PreparedGRU, gru_forward, run_gru
from .training import (
    GRUGradients,
    GRUTrainCache,
    gru_backward,
    gru_forward_train,
    run_gru_backward,
    run_gru_train,
    training_activation_codes,
)
from .validation import validate_gru_args

__all__ = [
    "GRUGradients",
    "GRUTrainCache",
    "PreparedGRU",
    "gru_backward",
    "gru_forward",
    "gru_forward_train",
    "run_gru",
    "run_gru_backward",
    "run_gru_train",
    "training_activation_codes",
    "validate_gru_args",
]
