"""Array-level API: validate inputs once, allocate outputs, pick and run the kernel.

Public (``__all__``): :func:`gru_forward`, :func:`gru_forward_train`, :func:`gru_backward` (and the results
:class:`GRUGradients`, :class:`GRUTrainCache`), and the same for LSTM (:func:`lstm_forward`,
:func:`lstm_forward_train`, :func:`lstm_backward`, :class:`LSTMGradients`, :class:`LSTMTrainCache`) and SimpleRNN
(:func:`simple_rnn_forward`, :func:`simple_rnn_forward_train`, :func:`simple_rnn_backward`, :class:`SimpleRNNGradients`,
:class:`SimpleRNNTrainCache`), and Keras's :func:`ctc_loss` and :func:`ctc_decode` (greedy); each
validates every array it takes. The ``run_*`` functions and the ``Prepared*`` classes are internal (the
layers call them with arrays they built); they still check every shape and dtype a kernel indexes by
(``validation.check_run_args``) and raise ``ValueError`` rather than let a kernel read out of bounds.
"""

# PreparedGRU, PreparedLSTM, run_*, training_activation_codes, validate_*: internal (the layers call them
# with arrays they built; they check what the kernels index by)
from .common import training_activation_codes  # noqa: F401
from .ctc import ctc_decode, ctc_loss
from .gru import (  # noqa: F401
    GRUGradients,
    GRUTrainCache,
    PreparedGRU,
    gru_backward,
    gru_forward,
    gru_forward_train,
    run_gru,
    run_gru_backward,
    run_gru_train,
)
from .lstm import (  # noqa: F401
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
from .simple_rnn import (  # noqa: F401
    PreparedSimpleRNN,
    SimpleRNNGradients,
    SimpleRNNTrainCache,
    run_simple_rnn,
    run_simple_rnn_backward,
    run_simple_rnn_train,
    simple_rnn_backward,
    simple_rnn_forward,
    simple_rnn_forward_train,
)
from .validation import validate_gru_args, validate_lstm_args  # noqa: F401

__all__ = [
    "GRUGradients",
    "GRUTrainCache",
    "LSTMGradients",
    "LSTMTrainCache",
    "SimpleRNNGradients",
    "SimpleRNNTrainCache",
    "ctc_decode",
    "ctc_loss",
    "gru_backward",
    "gru_forward",
    "gru_forward_train",
    "lstm_backward",
    "lstm_forward",
    "lstm_forward_train",
    "simple_rnn_backward",
    "simple_rnn_forward",
    "simple_rnn_forward_train",
]
