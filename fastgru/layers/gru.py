"""The GRU layer: Keras 3's arguments and weights, computed by the fused kernels in ``fastgru.ops``."""

from __future__ import annotations

import numpy as np

from .. import activations, ops
from ..random import make_rng
from .base import Layer, compute_dtype


class GRU(Layer):
    """Gated Recurrent Unit layer (Keras 3 semantics; gate order z, r, h).

    Input (B, T, D); output (B, T, H) with ``return_sequences`` else (B, H); with ``return_state``
    a list ``[output, h_last]``. Weights: kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H)
    when ``reset_after`` else (3H,).
    """

    weight_names = ("kernel", "recurrent_kernel", "bias")
    supports_masking = True

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
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"GRU units must be a positive integer, received {units!r}")
        self.units = int(units)
        self.activation = activations.canonical_name(activation)
        self.recurrent_activation = activations.canonical_name(recurrent_activation)
        self._act = activations.kernel_code(self.activation)
        self._ract = activations.kernel_code(self.recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"GRU {name} must be in [0, 1], received {rate!r}")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)  # same math; accepted for compatibility
        self.reset_after = bool(reset_after)
        self.seed = seed
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self._rng = make_rng(seed)
        self._states: np.ndarray | None = None

    # ---- building ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"GRU {self.name!r} expects input of rank 3 (batch, timesteps, features), "
                f"received input shape {tuple(input_shape)}"
            )
        d, h = int(input_shape[-1]), self.units
        self.add_weight("kernel", (d, 3 * h), self.kernel_initializer, self._rng)
        self.add_weight("recurrent_kernel", (h, 3 * h), self.recurrent_initializer, self._rng)
        if self.use_bias:
            shape = (2, 3 * h) if self.reset_after else (3 * h,)
            self.add_weight("bias", shape, self.bias_initializer, self._rng)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple):
        batch, steps = input_shape[0], input_shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out, (batch, self.units)]
        return out

    def compute_mask(self, x, mask):
        return mask if self.return_sequences else None

    # ---- state ------------------------------------------------------------------------------
    def reset_states(self, states=None) -> None:
        """Forget the carried state of a ``stateful`` layer (or set it to ``states``, (B, H))."""
        self._states = None if states is None else np.array(states, dtype=self.dtype)

    @property
    def states(self):
        return self._states

    # ---- inference --------------------------------------------------------------------------
    def _prepared(self, dtype) -> ops.PreparedGRU:
        p = self._params
        cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731  (a view when dtype matches)
        bias = cast(p["bias"]) if self.use_bias else None
        return ops.PreparedGRU(cast(p["kernel"]), cast(p["recurrent_kernel"]), bias, self.reset_after)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3:
            raise ValueError(
                f"GRU {self.name!r} expects input of rank 3 (batch, timesteps, features), received shape {x.shape}"
            )
        if x.shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"GRU {self.name!r} expects {self.input_shape[-1]} features, received input shape {x.shape}"
            )
        if x.dtype.kind not in "fiub":
            raise TypeError(f"GRU {self.name!r} expects a numeric input array, received dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=compute_dtype(x))

    def _initial_state(self, x: np.ndarray, initial_state) -> np.ndarray | None:
        bsz = x.shape[0]
        if initial_state is not None:
            if isinstance(initial_state, (list, tuple)):
                if len(initial_state) != 1:
                    raise ValueError(f"GRU {self.name!r} has one state; received {len(initial_state)} initial states")
                initial_state = initial_state[0]
            h0 = np.ascontiguousarray(initial_state, dtype=x.dtype)
            if h0.shape != (bsz, self.units):
                raise ValueError(
                    f"GRU {self.name!r} initial_state must have shape {(bsz, self.units)}, received {h0.shape}"
                )
            return h0
        if self.stateful and self._states is not None:
            if self._states.shape != (bsz, self.units):
                raise ValueError(
                    f"stateful GRU {self.name!r} holds states for batch size {self._states.shape[0]}, "
                    f"received a batch of {bsz}; call reset_states() first"
                )
            return np.ascontiguousarray(self._states, dtype=x.dtype)
        return None

    def _mask(self, x: np.ndarray, mask):
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(
                f"GRU {self.name!r} mask must have shape (batch, timesteps) = {x.shape[:2]}, received {mask.shape}"
            )
        return np.ascontiguousarray(mask != 0, dtype=np.uint8)

    def call(self, x, mask=None, training: bool = False, initial_state=None):
        x = self._check_input(np.asarray(x))
        h0 = self._initial_state(x, initial_state)
        outputs, h_last, _, _ = ops.run_gru(
            x, self._prepared(x.dtype), h0, self._mask(x, mask), self._act, self._ract,
            self.return_sequences, self.go_backwards, self.zero_output_for_mask,
        )
        if self.stateful:
            self._states = h_last.astype(self.dtype)
        return [outputs, h_last] if self.return_state else outputs

    # ---- training ---------------------------------------------------------------------------
    def _dropout_masks(self, x: np.ndarray):
        """Keras 3's variational dropout masks, drawn once per batch and constant over time.

        ``dropout`` alone: one (B, D) input mask for every gate. With ``recurrent_dropout`` Keras
        switches to its implementation 1: one (B, D) input mask per gate and one (B, H) recurrent
        mask per gate. Kept values are scaled by 1 / (1 - rate) (inverted dropout).
        """
        bsz, _, d = x.shape

        def draw(rate, shape):
            if rate >= 1.0:
                return np.zeros(shape, x.dtype)
            return ((self._rng.random(shape) >= rate) / (1.0 - rate)).astype(x.dtype)

        input_masks = recurrent_masks = None
        if self.recurrent_dropout > 0.0:
            recurrent_masks = draw(self.recurrent_dropout, (3, bsz, self.units))
            if self.dropout > 0.0:
                input_masks = draw(self.dropout, (3, bsz, d))
        elif self.dropout > 0.0:
            input_masks = draw(self.dropout, (bsz, d))
        return input_masks, recurrent_masks

    def forward(self, x, mask=None, training: bool = True, initial_state=None):
        """Training forward: saves the gates for :meth:`backward` (dropout active when ``training``)."""
        if self.return_state:
            raise ValueError(
                f"GRU {self.name!r} has return_state=True: training passes one array between layers"
            )
        if not training:
            return self.call(x, mask=mask, initial_state=initial_state), None
        x = self._check_input(np.asarray(x))
        act, ract = ops.training_activation_codes(self.activation, self.recurrent_activation)
        h0 = self._initial_state(x, initial_state)
        mask = self._mask(x, mask)
        input_masks, recurrent_masks = self._dropout_masks(x)
        prepared = self._prepared(x.dtype)
        outputs, h_last, saved = ops.run_gru_train(
            x, prepared, h0, mask, act, ract, self.return_sequences, self.go_backwards,
            self.zero_output_for_mask, input_masks, recurrent_masks,
        )
        if self.stateful:
            self._states = h_last.astype(self.dtype)
        return outputs, (x, prepared, saved, mask, act, ract, input_masks, recurrent_masks)

    def backward(self, dy, cache, need_dx: bool = True):
        """BPTT: ``(dL/dx, [dkernel, drecurrent_kernel, dbias])`` from ``dy`` = dL/doutputs
        (dL/dx is None when ``need_dx`` is False: one GEMM less for a model's first layer)."""
        x, prepared, saved, mask, act, ract, input_masks, recurrent_masks = cache
        dx, dw, du, db, _ = ops.run_gru_backward(
            x, prepared, saved, mask, act, ract, self.return_sequences, self.go_backwards,
            self.zero_output_for_mask, np.ascontiguousarray(dy, dtype=x.dtype), None, input_masks, recurrent_masks,
            need_dx,
        )
        if not self.trainable:
            return dx, []
        grads = [dw, du] + ([db] if self.use_bias else [])
        return dx, [g.astype(self.dtype, copy=False) for g in grads]

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            recurrent_initializer=self.recurrent_initializer,
            bias_initializer=self.bias_initializer,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            reset_after=self.reset_after,
            seed=self.seed,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config
