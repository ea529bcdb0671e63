"""The recurrent layers' one stack, Keras's RNN/cell split: :class:`RecurrentLayer` owns the arguments,
input and mask checks, initial and carried states, Keras's dropout masks, output shapes, config and the
call / forward / backward paths; a cell (GRU, LSTM, SimpleRNN) adds its weights and binds its kernels
through four methods: ``_prepared`` (its weights laid out for the kernel), ``_run`` (inference),
``_run_train`` (training forward) and ``_run_backward`` (BPTT)."""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from .. import activations, ops
from ..random import make_rng
from .base import Layer, compute_dtype
from .cell_view import RecurrentCell
from .recurrent_options import RECURRENT_CONSTRAINTS
from .recurrent_states import CarriedStates
from .registry import validate_params

#: the dtypes the kernels run in (NumPy's own instances: an input's ``dtype is`` one of them when it is one)
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)

class RecurrentTrainCache(NamedTuple):
    """What a recurrent layer's training forward keeps for its backward."""

    x: np.ndarray  # (B, T, D) the inputs, in the compute dtype
    prepared: object  # the cell's weights as the kernels take them (ops.Prepared*)
    saved: np.ndarray  # what the training forward saved per step (layout: the cell's kernel module)
    mask: np.ndarray | None  # (B, T) uint8, or None
    act: int  # kernel codes of the activations
    ract: int
    input_masks: np.ndarray | None  # Keras's dropout masks (layout: the cell's ops module), or None
    recurrent_masks: np.ndarray | None


class RecurrentLayer(CarriedStates, Layer):
    """Base of the recurrent layers. Subclasses set ``n_gates`` (3 GRU, 4 LSTM) and ``state_names``.

    Stateful layers carry their final states from one call to the next (``states``, a list of
    (B, H) arrays, or None before the first call and after ``reset_states()``). A stateful layer's
    calls must not overlap: one from a second thread while one runs raises ``RuntimeError``.
    """

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    supports_masking = True
    n_gates = 3
    state_names: tuple[str, ...] = ("h",)
    regularizer_options = {"kernel_regularizer": "kernel", "recurrent_regularizer": "recurrent_kernel",
                           "bias_regularizer": "bias"}

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
        seed: int | None = None,
        zero_output_for_mask: bool = False,
        **kwargs,
    ):
        for how in ("implementation", "use_cudnn"):  # (Keras's choice of how to compute: the same numbers)
            kwargs.pop(how, None)
        super().__init__(**kwargs)
        options = validate_params(f"{type(self).__name__} {self.name!r}", RECURRENT_CONSTRAINTS, dict(
            units=units, activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
            kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer, dropout=dropout, recurrent_dropout=recurrent_dropout,
            return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
            stateful=stateful, unroll=unroll, seed=seed, zero_output_for_mask=zero_output_for_mask))
        self.__dict__.update(options)  # unroll: the same math; accepted for compatibility
        self._act = activations.kernel_code(self.activation)
        self._ract = activations.kernel_code(self.recurrent_activation)
        self._rng = make_rng(seed)
        self._states: list[np.ndarray] | None = None
        self._state_lock = threading.Lock()

    @property
    def cell(self) -> RecurrentCell:
        """Keras's ``layer.cell``: the step's weights and options (``layer.cell.kernel``), the layer's own."""
        return self.__dict__.setdefault("_cell", RecurrentCell(self))

    # ---- shapes -----------------------------------------------------------------------------
    def _check_rank(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects input of rank 3 (batch, timesteps, features), "
                f"received input shape {tuple(input_shape)}"
            )

    def compute_output_shape(self, input_shape: tuple):
        batch, steps = input_shape[0], input_shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * len(self.state_names)
        return out

    def compute_mask(self, x, mask=None):
        return mask if self.return_sequences else None

    # ---- states (carried ones: recurrent_states.CarriedStates) -------------------------------
    def _initial_states(self, x: np.ndarray, initial_state) -> list | None:
        """The initial states (B, H) each in x's dtype: given, carried (stateful) or None (zeros)."""
        kind, bsz, n = type(self).__name__, x.shape[0], len(self.state_names)
        if initial_state is not None:
            if isinstance(initial_state, np.ndarray) or not isinstance(initial_state, (list, tuple)):
                initial_state = [initial_state]
            if len(initial_state) != n:
                raise ValueError(f"{kind} {self.name!r} has {n} state(s) ({', '.join(self.state_names)}); "
                                 f"received {len(initial_state)} initial states")
            states = []
            for name, s in zip(self.state_names, initial_state):
                s = np.asarray(s)
                if s.dtype.kind not in "fiub":
                    raise TypeError(f"{kind} {self.name!r} initial state {name!r} must be numeric, received {s.dtype}")
                s = np.ascontiguousarray(s, dtype=x.dtype)
                if s.shape != (bsz, self.units):
                    raise ValueError(f"{kind} {self.name!r} initial state {name!r} must have shape "
                                     f"{(bsz, self.units)}, received {s.shape}")
                states.append(s)
            return states
        declared = self.input_shape[0] if self.stateful and self.input_shape else None
        if declared is not None and bsz != declared:  # (Keras refuses it too: the states are laid out per row)
            raise ValueError(f"stateful {kind} {self.name!r} was built for batches of {declared} (its batch_shape); "
                             f"received a batch of {bsz} (pass batch_size={declared} and a multiple of {declared} "
                             "samples)")
        if self.stateful and self._states is not None:
            if any(s.shape != (bsz, self.units) for s in self._states):
                raise ValueError(
                    f"stateful {kind} {self.name!r} holds states for batch size {self._states[0].shape[0]}, "
                    f"received a batch of {bsz}; call reset_states() first"
                )
            return [np.ascontiguousarray(s, dtype=x.dtype) for s in self._states]
        return None

    def _keep_states(self, *states) -> None:
        if self.stateful:
            self._states = [s.astype(self.dtype) for s in states]

    # ---- inputs -----------------------------------------------------------------------------
    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 3 and x.shape[2] == self.input_shape[-1] and x.shape[1] and x.dtype.kind in "fiub":
            if (x.dtype is _FLOAT64 or x.dtype is _FLOAT32 and self.dtype != _FLOAT64) and x.flags.c_contiguous:
                return x  # (what the conversion below returns for it, without its ~0.3 us)
            return np.ascontiguousarray(x, dtype=compute_dtype(x, self))
        kind = type(self).__name__
        if x.ndim != 3:
            raise ValueError(
                f"{kind} {self.name!r} expects input of rank 3 (batch, timesteps, features), received shape {x.shape}"
            )
        if x.shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"{kind} {self.name!r} expects {self.input_shape[-1]} features, received input shape {x.shape}"
            )
        if not x.shape[1]:  # (Keras fails on it too; the last state of no steps would be the initial state)
            raise ValueError(f"{kind} {self.name!r} needs at least one time step, received input shape {x.shape}")
        raise TypeError(f"{kind} {self.name!r} expects a numeric input array, received dtype {x.dtype}")

    def _mask(self, x: np.ndarray, mask):
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"{type(self).__name__} {self.name!r} mask must have shape (batch, timesteps) = "
                             f"{x.shape[:2]}, received {mask.shape}")
        if mask.dtype != np.bool_:
            if mask.dtype.kind not in "fiu":
                raise TypeError(f"{type(self).__name__} {self.name!r} mask must be a boolean (or 0/1 numeric) array, "
                                f"received dtype {mask.dtype}")
            if not ((mask == 0) | (mask == 1)).all():
                raise ValueError(f"{type(self).__name__} {self.name!r} mask must hold only 0 and 1 (or booleans); "
                                 f"received other values")
        return np.ascontiguousarray(mask != 0, dtype=np.uint8)

    def _dropout_masks(self, x: np.ndarray):
        """Keras 3's variational dropout masks, drawn once per batch and constant over time.

        ``dropout`` alone: one (B, D) input mask for every gate. With ``recurrent_dropout`` Keras
        switches to its implementation 1: one (B, D) input mask per gate and one (B, H) recurrent
        mask per gate, (G, B, ·). Kept values are scaled by 1 / (1 - rate) (inverted dropout).
        """
        bsz, _, d = x.shape
        g = self.n_gates

        def draw(rate, shape):
            if rate >= 1.0:
                return np.zeros(shape, x.dtype)
            return ((self._rng.random(shape) >= rate) / (1.0 - rate)).astype(x.dtype)

        input_masks = recurrent_masks = None
        if self.recurrent_dropout > 0.0:
            recurrent_masks = draw(self.recurrent_dropout, (g, bsz, self.units))
            if self.dropout > 0.0:
                input_masks = draw(self.dropout, (g, bsz, d))
        elif self.dropout > 0.0:
            input_masks = draw(self.dropout, (bsz, d))
        return input_masks, recurrent_masks

    # ---- the cell binding (subclasses) ---------------------------------------------------------
    #: the ops class holding the cell's weights laid out for its kernels (``ops.PreparedGRU``, ...)
    prepared_class: type

    def _prepared(self, dtype):
        """The cell's weights as its kernels take them, in ``dtype`` (views when the dtype matches)."""
        p = self._params
        bias = np.ascontiguousarray(p["bias"], dtype=dtype) if self.use_bias else None
        return self.prepared_class(np.ascontiguousarray(p["kernel"], dtype=dtype),
                                   np.ascontiguousarray(p["recurrent_kernel"], dtype=dtype), bias,
                                   **self._prepared_options())

    def _prepared_options(self) -> dict:
        return {}

    def _prepared_for_call(self, dtype):
        """:meth:`_prepared` for an inference call, kept between calls while it is made only of views of
        the layer's current weight arrays (same objects, same dtype): in-place changes of the weights
        (an optimizer step, ``set_weights``, a user's write) then show through it. A layer's weight
        arrays replaced, a different dtype or options, or a prepared object holding copies (a dtype
        conversion, ``reset_after=False``'s split): made anew. Saves ~1.6 us of a call; training
        makes its own (its lazily made ``U^T`` is a copy)."""
        p = self._params
        cached = self.__dict__.get("_call_prepared")
        if cached is not None:
            c_dtype, c_options, (c_kernel, c_recurrent, c_bias), c_prepared = cached
            if (c_dtype == dtype and c_kernel is p.get("kernel") and c_recurrent is p.get("recurrent_kernel")
                    and c_bias is p.get("bias") and c_options == self._prepared_options()):
                return c_prepared
        sources = (p.get("kernel"), p.get("recurrent_kernel"), p.get("bias"))
        options = self._prepared_options()
        prepared = self._prepared(dtype)
        # views of the layer's arrays: no dtype conversion or copy on the way in, none inside
        as_given = all(s is None or (s.dtype == dtype and s.flags.c_contiguous) for s in sources)
        self.__dict__["_call_prepared"] = (dtype, options, sources, prepared) if as_given and prepared.views else None
        return prepared

    def _run(self, x, prepared, states, mask) -> tuple[np.ndarray, list]:
        """Inference: ``(outputs, last states)``; ``states`` the initial states (a list) or None."""
        raise NotImplementedError

    def _run_train(self, x, prepared, states, mask, act, ract, input_masks, recurrent_masks):
        """Training forward: ``(outputs, last states, saved)``."""
        raise NotImplementedError

    def _run_backward(self, cache: RecurrentTrainCache, dy: np.ndarray, d_last: list, need_dx: bool):
        """BPTT: ``(dx or None, dkernel, drecurrent_kernel, dbias, [d initial states])`` from dL/doutputs
        ``dy`` and ``d_last``, the gradients of the final states (None entries: zero)."""
        raise NotImplementedError

    # ---- Keras's unrolled loop ------------------------------------------------------------------
    @property
    def _unrolled_backwards_zeroing(self) -> bool:
        """Keras's unrolled loop (``unroll=True``) with ``go_backwards``, ``return_sequences`` and
        ``zero_output_for_mask`` (a Bidirectional's backward layer sets the last two) repeats the previous
        output at masked steps, then zeroes the outputs, which are in processing order, where the mask
        *in time order* is off (keras/src/backend/tensorflow/rnn.py, its ``unroll`` branch; the
        ``while_loop`` it runs otherwise zeroes each masked step itself). The kernels then repeat
        (``_kernel_zero_output``) and :meth:`_unrolled_zeroing` applies Keras's mask: its numbers, in
        predictions and gradients alike."""
        return self.unroll and self.go_backwards and self.return_sequences and self.zero_output_for_mask

    @property
    def _kernel_zero_output(self) -> bool:
        """``zero_output_for_mask`` as the kernels run it (see :attr:`_unrolled_backwards_zeroing`)."""
        return self.zero_output_for_mask and not self._unrolled_backwards_zeroing

    def _unrolled_zeroing(self, y: np.ndarray, mask) -> np.ndarray:
        """``y`` (B, T, H): the outputs or their gradient, zeroed where the (B, T) mask is off when
        :attr:`_unrolled_backwards_zeroing` applies."""
        if mask is None or not self._unrolled_backwards_zeroing:
            return y
        return y * mask[:, :, None].astype(y.dtype)

    # ---- calling ------------------------------------------------------------------------------
    def call(self, x, mask=None, training: bool = False, initial_state=None):
        if training and (self.dropout or getattr(self, "recurrent_dropout", 0)):
            # (Keras draws new dropout masks at every training call: Monte Carlo dropout) the training forward's
            return self.forward_with_states(x, mask=mask, training=True, initial_state=initial_state)[0]
        x = self._check_input(np.asarray(x))
        if mask is None and initial_state is None and not self.stateful:
            # the common call (no states carried or given, no mask): the same run without the steps
            # that would find nothing to do (~0.5 us of a short sequence's call)
            outputs, last = self._run(x, self._prepared_for_call(x.dtype), None, None)
            return [outputs, *last] if self.return_state else outputs
        with self._exclusive():
            states = self._initial_states(x, initial_state)
            mask = self._mask(x, mask)
            outputs, last = self._run(x, self._prepared_for_call(x.dtype), states, mask)
            self._keep_states(*last)
        outputs = self._unrolled_zeroing(outputs, mask)
        return [outputs, *last] if self.return_state else outputs

    def forward(self, x, mask=None, training: bool = True, initial_state=None):
        """Training forward: saves what :meth:`backward` needs (dropout active when ``training``)."""
        self._check_trainable_call()
        return self.forward_with_states(x, mask=mask, training=training, initial_state=initial_state)

    def forward_with_states(self, x, mask=None, training: bool = True, initial_state=None):
        """The training forward of a Functional graph's state passing: ``[outputs, *final states]`` when
        ``return_state`` (else the outputs), and the cache :meth:`backward_with_states` takes. Without
        ``training`` (evaluation) no dropout masks are drawn."""
        if not training and not self.return_state:
            return self.call(x, mask=mask, initial_state=initial_state), None
        x = self._check_input(np.asarray(x))
        act, ract = ops.training_activation_codes(self.activation, getattr(self, "recurrent_activation", "sigmoid"),
                                                  type(self).__name__)
        mask = self._mask(x, mask)
        input_masks, recurrent_masks = self._dropout_masks(x) if training else (None, None)
        prepared = self._prepared(x.dtype)
        with self._exclusive():
            states = self._initial_states(x, initial_state)
            outputs, last, saved = self._run_train(x, prepared, states, mask, act, ract, input_masks,
                                                   recurrent_masks)
            self._keep_states(*last)
        outputs = self._unrolled_zeroing(outputs, mask)
        cache = RecurrentTrainCache(x, prepared, saved, mask, act, ract, input_masks, recurrent_masks)
        return ([outputs, *last] if self.return_state else outputs), cache

    def backward(self, dy, cache: RecurrentTrainCache, need_dx: bool = True):
        """BPTT: ``(dL/dx, [dkernel, drecurrent_kernel, dbias])`` from ``dy`` = dL/doutputs (dL/dx is
        None when ``need_dx`` is False: one GEMM less for a model's first layer)."""
        dx, _, grads = self.backward_with_states([dy], cache, need_dx)
        return dx, grads

    def backward_with_states(self, d_outputs: list, cache: RecurrentTrainCache, need_dx: bool = True):
        """``(dL/dx, [dL/d initial states], grads)`` from ``d_outputs`` = [dL/doutputs, *dL/d final states]
        (None entries, or missing final states, count as zero)."""
        dtype = cache.x.dtype
        d_out = d_outputs[0]
        if d_out is None:
            bsz, steps = cache.x.shape[:2]
            d_out = np.zeros((bsz, steps, self.units) if self.return_sequences else (bsz, self.units), dtype)
        d_out = self._unrolled_zeroing(d_out, cache.mask)
        d_last = [None if d is None else np.ascontiguousarray(d, dtype=dtype) for d in d_outputs[1:]]
        d_last += [None] * (len(self.state_names) - len(d_last))
        dx, dw, du, db, d_states = self._run_backward(cache, np.ascontiguousarray(d_out, dtype=dtype), d_last,
                                                      need_dx)
        dx, grads = self._gradients(dx, dw, du, db)
        return dx, d_states, grads

    def _gradients(self, dx, dkernel, drecurrent_kernel, dbias):
        """``(dx, grads)`` as ``backward`` returns them: the weights' gradients in Keras's order, in
        the layer's dtype (none when the layer is frozen; no bias gradient without a bias)."""
        if not self.trainable:
            return dx, []
        grads = [dkernel, drecurrent_kernel] + ([dbias] if self.use_bias else [])
        return dx, [g.astype(self.dtype, copy=False) for g in grads]

    def _check_trainable_call(self) -> None:
        if self.return_state:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} has return_state=True: training passes one array between layers"
            )

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
            seed=self.seed,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        return config
