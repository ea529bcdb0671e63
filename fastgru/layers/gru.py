"""The GRU layer: Keras 3's arguments and weights, computed by the fused kernels in ``fastgru.ops``."""

from __future__ import annotations

from .. import ops
from .recurrent import RecurrentLayer
from .recurrent_options import RECURRENT_CONSTRAINTS, RECURRENT_FIXED
from .registry import Boolean, KerasContract, register_layer, validate_params


@register_layer
class GRU(RecurrentLayer):
    """Gated Recurrent Unit layer (Keras 3 semantics; gate order z, r, h).

    Input (B, T, D); output (B, T, H) with ``return_sequences`` else (B, H); with ``return_state``
    a list ``[output, h_last]``. Weights: kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H)
    when ``reset_after`` else (3H,).
    """

    # Keras before 2.1.3 had no reset_after: a Keras 2 config without it computed the reset gate first
    keras = KerasContract(names=("GRU",), fixed=RECURRENT_FIXED, weights="cell/vars",
                          keras2_defaults={"reset_after": False})
    parameter_constraints = {**RECURRENT_CONSTRAINTS, "reset_after": [Boolean()]}
    weight_names = ("kernel", "recurrent_kernel", "bias")
    n_gates = 3
    state_names = ("h",)

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
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
        reset_after: bool = True,
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
        self.reset_after = validate_params(f"GRU {self.name!r}", self.parameter_constraints,
                                          {"reset_after": reset_after})["reset_after"]

    # ---- building ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self._check_rank(input_shape)
        d, h = int(input_shape[-1]), self.units
        self._add_weight("kernel", (d, 3 * h), self.kernel_initializer, self._rng)
        self._add_weight("recurrent_kernel", (h, 3 * h), self.recurrent_initializer, self._rng)
        if self.use_bias:
            shape = (2, 3 * h) if self.reset_after else (3 * h,)
            self._add_weight("bias", shape, self.bias_initializer, self._rng)
        super().build(input_shape)

    # ---- the cell binding ---------------------------------------------------------------------
    prepared_class = ops.PreparedGRU

    def _prepared_options(self) -> dict:
        return {"reset_after": self.reset_after}

    def _run(self, x, prepared, states, mask):
        outputs, h_last, _ = ops.run_gru(
            x, prepared, states and states[0], mask, self._act, self._ract, self.return_sequences,
            self.go_backwards, self._kernel_zero_output,
        )
        return outputs, [h_last]

    def _run_train(self, x, prepared, states, mask, act, ract, input_masks, recurrent_masks):
        outputs, h_last, saved = ops.run_gru_train(
            x, prepared, states and states[0], mask, act, ract, self.return_sequences, self.go_backwards,
            self._kernel_zero_output, input_masks, recurrent_masks,
        )
        return outputs, [h_last], saved

    def _run_backward(self, cache, dy, d_last, need_dx):
        dx, dw, du, db, dh0 = ops.run_gru_backward(
            cache.x, cache.prepared, cache.saved, cache.mask, cache.act, cache.ract, self.return_sequences,
            self.go_backwards, self._kernel_zero_output, dy, d_last[0], cache.input_masks, cache.recurrent_masks,
            need_dx,
        )
        return dx, dw, du, db, [dh0]

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config
