"""The SimpleRNN layer: Keras 3's arguments and weights, computed by the fused kernels in ``fastgru.ops``."""

from __future__ import annotations

import numpy as np

from .. import ops
from .recurrent import RecurrentLayer
from .recurrent_options import RECURRENT_CONSTRAINTS
from .registry import KerasContract, register_layer


@register_layer
class SimpleRNN(RecurrentLayer):
    """Fully-connected RNN whose output is fed back as the next state (Keras 3 semantics):
    ``h_t = activation(x_t W + b + h_{t-1} U)``.

    Input (B, T, D); output (B, T, H) with ``return_sequences`` else (B, H); with ``return_state`` a
    list ``[output, h_last]``. Weights: kernel (D, H), recurrent_kernel (H, H), bias (H,) (Keras 3 keeps
    them in the cell: ``cell/vars`` in ``.keras`` files). In training, ``dropout`` multiplies the inputs
    by one (B, D) mask and ``recurrent_dropout`` the previous state by one (B, H) mask, drawn once per
    batch as Keras's ``SimpleRNNCell`` does.
    """

    keras = KerasContract(names=("SimpleRNN",), fixed={"time_major": False}, weights="cell/vars")
    #: GRU's options less recurrent_activation (Keras's SimpleRNN has one activation and refuses the key)
    parameter_constraints = {k: v for k, v in RECURRENT_CONSTRAINTS.items() if k != "recurrent_activation"}
    weight_names = ("kernel", "recurrent_kernel", "bias")
    n_gates = 1
    state_names = ("h",)

    def __init__(
        self,
        units: int,
        activation="tanh",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        seed: int | None = None,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        if "recurrent_activation" in kwargs:
            raise TypeError("SimpleRNN got an unexpected keyword argument 'recurrent_activation' (a SimpleRNN has "
                            "one activation)")
        super().__init__(
            units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer, dropout=dropout,
            recurrent_dropout=recurrent_dropout, return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll, seed=seed,
            zero_output_for_mask=zero_output_for_mask, **kwargs,
        )

    # ---- building ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        d, h = int(input_shape[-1]), self.units
        self._add_weight("kernel", (d, h), self.kernel_initializer, self._rng)
        self._add_weight("recurrent_kernel", (h, h), self.recurrent_initializer, self._rng)
        if self.use_bias:
            self._add_weight("bias", (h,), self.bias_initializer, self._rng)
        super().build(input_shape)

    # ---- the cell binding ---------------------------------------------------------------------
    prepared_class = ops.PreparedSimpleRNN

    def _run(self, x, prepared, states, mask):
        outputs, h_last = ops.run_simple_rnn(
            x, prepared, states and states[0], mask, self._act, self.return_sequences, self.go_backwards,
            self._kernel_zero_output,
        )
        return outputs, [h_last]

    # ---- training ---------------------------------------------------------------------------
    def _dropout_masks(self, x: np.ndarray):
        """Keras 3's SimpleRNNCell masks: one (B, D) input mask and one (B, H) recurrent mask, each
        scaled by 1 / (1 - rate), constant over time (None when the rate is 0)."""
        input_masks, recurrent_masks = super()._dropout_masks(x)
        if input_masks is not None and input_masks.ndim == 3:
            input_masks = np.ascontiguousarray(input_masks[0])
        if recurrent_masks is not None:
            recurrent_masks = np.ascontiguousarray(recurrent_masks[0])
        return input_masks, recurrent_masks

    def _run_train(self, x, prepared, states, mask, act, ract, input_masks, recurrent_masks):
        outputs, h_last, saved = ops.run_simple_rnn_train(
            x, prepared, states and states[0], mask, act, self.return_sequences, self.go_backwards,
            self._kernel_zero_output, input_masks, recurrent_masks,
        )
        return outputs, [h_last], saved

    def _run_backward(self, cache, dy, d_last, need_dx):
        dx, dw, du, db, dh0 = ops.run_simple_rnn_backward(
            cache.x, cache.prepared, cache.saved, cache.mask, cache.act, self.return_sequences, self.go_backwards,
            self._kernel_zero_output, dy, d_last[0], cache.input_masks, cache.recurrent_masks, need_dx,
        )
        return dx, dw, du, db, [dh0]

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("recurrent_activation", None)  # Keras's SimpleRNN has none (and refuses the key)
        return config
