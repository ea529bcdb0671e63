"""The LSTM layer: Keras 3's arguments and weights, computed by the fused kernels in ``fastgru.ops``."""

from __future__ import annotations

from .. import initializers, ops
from .recurrent import RecurrentLayer
from .recurrent_options import RECURRENT_CONSTRAINTS, RECURRENT_FIXED
from .registry import Boolean, KerasContract, register_layer, validate_params


@register_layer
class LSTM(RecurrentLayer):
    """Long Short-Term Memory layer (Keras 3 semantics; gate order i, f, c, o).

    Input (B, T, D); output (B, T, H) with ``return_sequences`` else (B, H); with ``return_state``
    a list ``[output, h_last, c_last]``. Weights: kernel (D, 4H), recurrent_kernel (H, 4H),
    bias (4H,). ``unit_forget_bias`` initialises the forget gate's bias to ones (Keras's default).
    """

    keras = KerasContract(names=("LSTM",), fixed=RECURRENT_FIXED, weights="cell/vars")
    parameter_constraints = {**RECURRENT_CONSTRAINTS, "unit_forget_bias": [Boolean()]}
    weight_names = ("kernel", "recurrent_kernel", "bias")
    n_gates = 4
    state_names = ("h", "c")

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
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
        super().__init__(
            units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, dropout=dropout, recurrent_dropout=recurrent_dropout,
            return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
            stateful=stateful, unroll=unroll, seed=seed, zero_output_for_mask=zero_output_for_mask, **kwargs,
        )
        self.unit_forget_bias = validate_params(f"LSTM {self.name!r}", self.parameter_constraints,
                                          {"unit_forget_bias": unit_forget_bias})["unit_forget_bias"]

    # ---- building ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        d, h = int(input_shape[-1]), self.units
        self._add_weight("kernel", (d, 4 * h), self.kernel_initializer, self._rng)
        self._add_weight("recurrent_kernel", (h, 4 * h), self.recurrent_initializer, self._rng)
        if self.use_bias:
            bias = self._add_weight("bias", (4 * h,), self.bias_initializer, self._rng)
            if self.unit_forget_bias:
                # Keras: [init(H), ones(H), init(2H)]; the i and c|o blocks drawn separately
                init = initializers.get(self.bias_initializer)
                bias[:h] = init((h,), self.dtype, self._rng)
                bias[h:2 * h] = 1.0
                bias[2 * h:] = init((2 * h,), self.dtype, self._rng)
        super().build(input_shape)

    # ---- the cell binding ---------------------------------------------------------------------
    prepared_class = ops.PreparedLSTM

    def _run(self, x, prepared, states, mask):
        h0, c0 = states or (None, None)
        outputs, h_last, c_last = ops.run_lstm(
            x, prepared, h0, c0, mask, self._act, self._ract, self.return_sequences, self.go_backwards,
            self._kernel_zero_output,
        )
        return outputs, [h_last, c_last]

    def _run_train(self, x, prepared, states, mask, act, ract, input_masks, recurrent_masks):
        h0, c0 = states or (None, None)
        outputs, h_last, c_last, saved = ops.run_lstm_train(
            x, prepared, h0, c0, mask, act, ract, self.return_sequences, self.go_backwards,
            self._kernel_zero_output, input_masks, recurrent_masks,
        )
        return outputs, [h_last, c_last], saved

    def _run_backward(self, cache, dy, d_last, need_dx):
        dx, dw, du, db, dh0, dc0 = ops.run_lstm_backward(
            cache.x, cache.prepared, cache.saved, cache.mask, cache.act, cache.ract, self.return_sequences,
            self.go_backwards, self._kernel_zero_output, dy, d_last[0], d_last[1], cache.input_masks,
            cache.recurrent_masks, need_dx,
        )
        return dx, dw, du, db, [dh0, dc0]

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config
