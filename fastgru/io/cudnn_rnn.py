"""Keras 2's ``CuDNNGRU`` and ``CuDNNLSTM`` (GPU-only layers of Keras 2.0-2.3 and tf.keras 1.x, in many older
``.h5`` models): loaded as the layers computing the same, ``GRU(reset_after=True, recurrent_activation="sigmoid")``
and ``LSTM(recurrent_activation="sigmoid")``, their weights converted from cuDNN's layout as Keras's own loader
converts them into a GRU or LSTM (tf_keras's ``hdf5_format._convert_rnn_weights``): each gate's input kernel
(D, U) read again in Fortran order, each gate's recurrent kernel transposed, the GRU's biases (6U,) as
(2, 3U) (input and recurrent), the LSTM's two bias halves (8U,) summed into one (4U,)."""

from __future__ import annotations

import numpy as np

#: the Keras 2 class -> the layer class that computes the same
NATIVE = {"CuDNNGRU": "GRU", "CuDNNLSTM": "LSTM"}
_GATES = {"GRU": 3, "LSTM": 4}
#: set on a layer loaded from a cuDNN layer's config: its file weights are in cuDNN's layout
MARK = "_from_cudnn"


def as_native(class_name: str, config: dict) -> tuple[str, dict]:
    """The (class name, config) of the layer that computes as the cuDNN one of ``config`` does."""
    native = NATIVE[class_name]
    config = dict(config, activation="tanh", recurrent_activation="sigmoid", use_bias=True)
    if native == "GRU":
        config["reset_after"] = True
    return native, config


def recurrent_layers(holder) -> list | None:
    """The cuDNN-loaded recurrent layers whose weights ``holder`` (a layer of a weights group) holds, in order
    (a Bidirectional's two halves), or None when it holds none."""
    if not getattr(holder, MARK, False):
        return None
    forward = getattr(holder, "forward_layer", None)
    return [holder] if forward is None else [forward, holder.backward_layer]


def holds_cudnn_weights(holders: list) -> bool:
    return any(recurrent_layers(h) is not None for h in holders)


def file_shapes(layer) -> list[tuple]:
    units, gates = layer.units, _GATES[type(layer).__name__]
    return [tuple(w.shape) for w in layer.weights[:2]] + [(2 * gates * units,)]


def native_weights(layer, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
    gates = _GATES[type(layer).__name__]
    kernel = np.hstack([k.T.reshape(k.shape, order="F") for k in np.hsplit(kernel, gates)])
    recurrent = np.hstack([k.T for k in np.hsplit(recurrent, gates)])
    bias = bias.reshape(2, -1)
    return [kernel, recurrent, bias if gates == 3 else bias[0] + bias[1]]
