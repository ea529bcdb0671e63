"""The options every recurrent layer (GRU, LSTM, SimpleRNN) takes, as their ``parameter_constraints``
(:mod:`fastgru.layers.registry`), and those Keras may write that fastgru fixes or ignores."""

from __future__ import annotations

from .registry import ANY, NONE, ActivationName, Boolean, InitializerSpec, Integer, Real

#: the options every recurrent layer takes, as ``parameter_constraints`` (fastgru.layers.registry)
RECURRENT_CONSTRAINTS = {
    "units": [Integer(1)],
    "activation": [NONE, ActivationName(recurrent=True)],
    "recurrent_activation": [NONE, ActivationName(recurrent=True)],
    "use_bias": [Boolean()],
    "kernel_initializer": [InitializerSpec()],
    "recurrent_initializer": [InitializerSpec()],
    "bias_initializer": [InitializerSpec()],
    "dropout": [Real(0.0, 1.0)],
    "recurrent_dropout": [Real(0.0, 1.0)],
    "return_sequences": [Boolean()],
    "return_state": [Boolean()],
    "go_backwards": [Boolean()],
    "stateful": [Boolean()],
    "unroll": [Boolean()],
    "seed": [NONE, Integer(0)],
    "zero_output_for_mask": [Boolean()],
}
#: options Keras may write for a recurrent layer that fastgru fixes (time_major) or ignores (how Keras ran it)
RECURRENT_FIXED = {"time_major": False, "implementation": ANY, "use_cudnn": ANY}
