"""Array-level API: validate inputs once, allocate outputs, pick and run the kernel.

Public: :func:`gru_forward`, :func:`gru_forward_train`, :func:`gru_backward` (and the results
:class:`GRUGradients`, :class:`GRUTrainCache`), and the same for LSTM (:func:`lstm_forward`,
:func:`lstm_forward_train`, :func:`lstm_backward`, :class:`LSTMGradients`). The ``run_*`` functions
and the ``Prepared*`` classes take already-validated arrays; the layers call them.
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
from .lstm import (
    LSTMGradients,
    LSTMTrainCache,
    PreparedLSTM,
    lstm_backward,
    lstm_forward,
    lstm_forward_train,
    run_lstm,
    run_lstm_backward,
    run_lstm_train,
)
from .validation import validate_gru_args, validate_lstm_args

__all__ = [
    "GRUGradients",
    "GRUTrainCache",
    "LSTMGradients",
    "LSTMTrainCache",
    "PreparedGRU",
    "PreparedLSTM",
    "gru_backward",
    "gru_forward",
    "gru_forward_train",
    "lstm_backward",
    "lstm_forward",
    "lstm_forward_train",
    "run_gru",
    "run_gru_backward",
    "run_gru_train",
    "run_lstm",
    "run_lstm_backward",
    "run_lstm_train",
    "training_activation_codes",
    "validate_gru_args",
    "validate_lstm_args",
]
