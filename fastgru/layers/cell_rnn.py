"""Keras's ``RNN`` around a script's own cell: a ``Layer`` subclass with ``state_size`` (an int, or one int per
state), optionally ``output_size``, and ``call(inputs, states)`` returning ``(output, new_states)`` — keras.io's
``MinimalRNNCell``, a layer-normalized GRU cell, a peephole LSTM.

The cell's ``call`` is Python, so the loop is Keras's own: one call per step on the (batch, features) slice and the
list of states (zeros, the cell's ``get_initial_state(batch_size=...)``, the ``initial_state`` given, or a stateful
layer's carried ones); a masked step keeps the states and repeats the previous output (zeros with
``zero_output_for_mask``), as Keras's backend ``rnn`` does; ``go_backwards`` runs the steps last to first and
returns the outputs in that order. Training traces the cell's step once (``custom_training``: its ops into a graph)
and runs that graph forward step by step and back through time, the weights' gradients summed over the steps.
Saved as Keras's ``RNN`` with the cell's class and config (``cell/vars`` holding its variables); loaded given the
cell class in ``custom_objects`` (or registered).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from . import registry
from .base import Layer, WrapperTrainable, record_symbolic_call
from .custom import _sublayers
from .custom_shapes import probed_output_shape
from .names import unique_name
from .recurrent_states import checked_batch_size


def _output_shape(size: int, input_shape, **_options):
    return (tuple(input_shape)[0], size)


def _state_sizes(cell) -> list[int]:
    size = getattr(cell, "state_size", None)
    sizes = [size] if isinstance(size, (int, np.integer)) else list(size) if isinstance(size, (list, tuple)) else None
    if not sizes or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"RNN: the cell {type(cell).__name__} should have a `state_size` attribute, a positive "
                         f"integer or a list of them (one per state; nested sizes are not supported), found {size!r}")
    return [int(s) for s in sizes]


def is_cell(obj) -> bool:
    """A script's own cell: a fastgru ``Layer`` of a script's class with ``state_size``."""
    return getattr(type(obj), "_fg_user_layer", False) and hasattr(obj, "state_size")


class RNN(WrapperTrainable, Layer):
    """The layer looping a script's cell over the steps of (batch, steps, features) inputs (module docstring)."""

    _wrapped = ("cell",)
    supports_masking = True
    accepts_mask_argument = True

    def __init__(self, cell, return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False, **kwargs):
        kwargs.setdefault("name", unique_name("rnn"))
        super().__init__(**kwargs)
        if not is_cell(cell):
            raise TypeError(f"RNN's cell should be a fastgru cell (GRUCell, LSTMCell, SimpleRNNCell) or a Layer "
                            f"subclass with state_size and call(inputs, states), found {type(cell).__name__}")
        self.cell, self.state_sizes = cell, _state_sizes(cell)
        output_size = getattr(cell, "output_size", None)
        self.units = int(output_size) if isinstance(output_size, (int, np.integer)) else self.state_sizes[0]
        self.state_names = tuple(f"state_{i}" for i in range(len(self.state_sizes)))
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), bool(stateful)
        self.unroll, self.zero_output_for_mask = bool(unroll), bool(zero_output_for_mask)
        self.states = None  # (stateful: the states carried from the last batch)
        self._takes_training = _takes_training(cell)
        cell.__dict__["_fg_step_call"] = functools.partial(_traced_step, cell)  # (how custom_training traces it)

    # ---- shapes and weights ---------------------------------------------------------------------
    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"RNN {self.name!r} expects inputs of shape (batch, steps, features), received "
                             f"{tuple(input_shape)}")
        if type(self.cell).compute_output_shape is probed_output_shape:  # (its step's output: no probe on zeros)
            self.cell.__dict__["compute_output_shape"] = functools.partial(_output_shape, self.units)
        # (Keras builds the cell in the layer's name scope, a loaded model's too: sequential/rnn/minimal_cell/kernel)
        scope = "/".join(p for p in (self.__dict__.get("_variable_scope"), self.name) if p)
        self.cell.__dict__["_variable_scope"] = scope
        if not self.cell.built:
            self.cell.build((input_shape[0], input_shape[2]))
        self.keras_build_by_run(input_shape[2])
        super().build(tuple(input_shape))

    def keras_build_by_run(self, features: int | None = None) -> bool:
        """The layers the cell holds that only its call builds (a Dense made in ``__init__``, no ``build`` of the
        cell's own) built by one step on zeros, so that they have their weights (and a file's are read into them)."""
        if all(getattr(sub, "built", True) for sub in _sublayers(self.cell, Layer)):
            return False
        features = features if features is not None else (self.input_shape or (None, None, None))[2]
        if features is None:
            return False
        try:
            self._step(np.zeros((2, features), self.dtype), [np.zeros((2, s), self.dtype) for s in self.state_sizes],
                       False)
        except Exception:  # noqa: BLE001  (a step that fails on zeros: built at the first call, as in Keras)
            return False
        return True

    def compute_output_shape(self, input_shape, **_options):
        batch, steps = input_shape[0], input_shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        return [out] + [(batch, s) for s in self.state_sizes] if self.return_state else out

    def compute_mask(self, x, mask=None):
        out = mask if self.return_sequences and mask is not None else None
        return [out] + [None] * len(self.state_sizes) if self.return_state else out

    @property
    def weights(self) -> list:
        return self.cell.weights

    @property
    def trainable_weights(self) -> list:
        return self.cell.trainable_weights if self.trainable else []

    @property
    def weight_paths(self) -> list[str]:
        return [f"cell/{p}" for p in self.cell.weight_paths]

    def keras_var_groups(self) -> list[tuple[str, int]]:
        """Below the layer's path, in its ``cell`` (Keras's RNN keeps its cell's variables there)."""
        return [(f"cell/{group}", n) for group, n in self.cell.keras_var_groups()]

    def _weights_changed(self) -> None:
        self.cell._weights_changed()

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("batch_input_shape", None)
        return {**config, "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
                "cell": {"module": None, "class_name": type(self.cell).__name__, "config": self.cell.get_config(),
                         "registered_name": None}}

    # ---- states -----------------------------------------------------------------------------------
    def reset_states(self, states=None) -> None:
        """Keras's ``reset_states``: a stateful layer's carried states back to zeros (not to the cell's
        ``get_initial_state``, which starts the first batch only), or set to ``states``."""
        if states is not None:
            self.states = [np.asarray(s) for s in states]
        elif self.states is not None:
            self.states = [np.zeros_like(s) for s in self.states]
        else:
            self.__dict__["_fg_zero_states"] = True  # (reset before the first batch: zeros too)

    reset_state = reset_states

    def get_initial_state(self, batch_size: int) -> list[np.ndarray]:
        """Keras's initial states: the cell's ``get_initial_state(batch_size=...)`` where it has one, else one
        (batch_size, state size) array of zeros per state, in the layer's dtype."""
        batch_size = checked_batch_size(batch_size, self)
        if hasattr(self.cell, "get_initial_state"):
            given = self.cell.get_initial_state(batch_size=batch_size)
            return list(given) if isinstance(given, (list, tuple)) else [given]
        return [np.zeros((batch_size, s), self.dtype) for s in self.state_sizes]

    def _initial(self, x: np.ndarray, initial_state) -> list[np.ndarray]:
        batch = x.shape[0]
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(self.state_sizes):
                raise ValueError(f"RNN {self.name!r} has {len(self.state_sizes)} state(s); initial_state holds "
                                 f"{len(states)}")
        elif self.stateful and self.states is not None:
            states = self.states
        elif not (self.stateful and self.__dict__.get("_fg_zero_states")):
            states = self.get_initial_state(batch)
        else:
            states = [np.zeros((batch, s), x.dtype) for s in self.state_sizes]
        states = [np.asarray(s, x.dtype) for s in states]
        for i, (s, size) in enumerate(zip(states, self.state_sizes)):
            if s.shape != (batch, size):
                raise ValueError(f"RNN {self.name!r}: state {i} must have shape ({batch}, {size}), found {s.shape}")
        return states

    def _check(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or (self.input_shape is not None and self.input_shape[2] not in (None, x.shape[2])):
            raise ValueError(f"RNN {self.name!r} expects inputs of shape (batch, steps, "
                             f"{self.input_shape[2] if self.input_shape else 'features'}), received {x.shape}")
        if x.dtype.kind != "f":
            x = x.astype(self.dtype)
        return x

    def _order(self, x: np.ndarray, mask):
        steps = range(x.shape[1] - 1, -1, -1) if self.go_backwards else range(x.shape[1])
        mask = None if mask is None else np.asarray(mask, bool).reshape(x.shape[:2])
        return list(steps), mask

    def _step(self, x_t, states, training: bool):
        kwargs = {"training": training} if self._takes_training else {}
        out, new = type(self.cell)._fg_own_call(self.cell, x_t, list(states), **kwargs)
        return self._checked_step(out, list(new) if isinstance(new, (list, tuple)) else [new], x_t.shape[0],
                                  x_t.dtype)

    def _checked_step(self, out, new: list, batch: int, dtype):
        """A step's output (batch, units) and new states (batch, state size), each checked (as Keras's loop,
        which refuses a state that changes its shape, and what the next step and the layers after take)."""
        if len(new) != len(self.state_sizes):
            raise ValueError(f"RNN {self.name!r}: the cell returned {len(new)} state(s) for its "
                             f"{len(self.state_sizes)} (state_size {self.cell.state_size!r})")
        out, new = np.asarray(out, dtype), [np.asarray(s, dtype) for s in new]
        for i, (s, size) in enumerate(zip(new, self.state_sizes)):
            if s.shape != (batch, size):
                raise ValueError(f"RNN {self.name!r}: the cell returned state {i} of shape {s.shape}; its state_size "
                                 f"says ({batch}, {size})")
        if out.shape != (batch, self.units):
            raise ValueError(f"RNN {self.name!r}: the cell returned an output of shape {out.shape}; its "
                             f"{'output_size' if hasattr(self.cell, 'output_size') else 'state_size'} says "
                             f"({batch}, {self.units})")
        return out, new

    def _finish(self, outputs: list, last, states: list):
        if self.stateful:
            self.states = [np.array(s) for s in states]
        out = np.stack(outputs, axis=1) if self.return_sequences else last
        return [out, *states] if self.return_state else out

    # ---- calling ----------------------------------------------------------------------------------
    def __call__(self, inputs, mask=None, training: bool = False, initial_state=None, **kwargs):
        if not isinstance(inputs, np.ndarray) and getattr(inputs, "_fg_symbolic", False):
            return record_symbolic_call(self, inputs, mask=mask, training=training, initial_state=initial_state,
                                        **kwargs)
        return super().__call__(inputs, mask=mask, training=training, initial_state=initial_state, **kwargs)

    def _loop(self, x, mask, initial_state, step):
        """``(outputs, last output, final states, steps, mask, caches, checked input)`` of ``step(x_t, states)
        -> (output, new states, cache)`` run over the steps: a masked step keeps the states and repeats the previous
        output (zeros with ``zero_output_for_mask``), as Keras's backend ``rnn``."""
        x = self._check(x)
        states = self._initial(x, initial_state)
        steps, mask = self._order(x, mask)
        previous, outputs, caches = None, [], []
        for t in steps:
            out, new, cache = step(x[:, t], states)
            if previous is None:
                previous = np.zeros_like(out)
            if mask is not None:
                keep = mask[:, t, None]
                out = np.where(keep, out, 0 if self.zero_output_for_mask else previous)
                new = [np.where(keep, n, s) for n, s in zip(new, states)]
            caches.append(cache)
            outputs.append(out)
            previous, states = out, new
        return outputs, previous, states, steps, mask, caches, x

    def call(self, x, mask=None, training: bool = False, initial_state=None):
        outputs, last, states, *_ = self._loop(x, mask, initial_state,
                                               lambda x_t, states: (*self._step(x_t, states, training), None))
        return self._finish(outputs, last, states)

    def forward(self, x, mask=None, training: bool = True, initial_state=None):
        return self.forward_with_states(x, mask=mask, training=training, initial_state=initial_state)

    def forward_with_states(self, x, mask=None, training: bool = True, initial_state=None):
        """Training's forward: the cell's traced step run on each step, its caches kept for :meth:`backward`."""
        def step(x_t, states):
            outs, cache = self.cell.forward([x_t, *states], training=training)
            return (*self._checked_step(outs[0], list(outs[1:]), x_t.shape[0], x_t.dtype), cache)

        outputs, last, states, steps, mask, caches, x = self._loop(x, mask, initial_state, step)
        return self._finish(outputs, last, states), (x.shape, x.dtype, steps, mask, caches, last.shape)

    def backward(self, dy, cache, need_dx: bool = True):
        dx, _, grads = self.backward_with_states([dy], cache, need_dx)
        return dx, grads

    def backward_with_states(self, d_outputs: list, cache, need_dx: bool = True):
        """``(dx, [d initial states], grads)`` from ``[d output, *d final states]`` (None entries: zeros)."""
        shape, dtype, steps, mask, caches, out_shape = cache
        d_out = d_outputs[0]
        d_states = [np.zeros((shape[0], s), dtype) if d is None else np.asarray(d, dtype) for s, d in
                    zip(self.state_sizes, list(d_outputs[1:]) + [None] * len(self.state_sizes))]
        dx = np.zeros(shape, dtype)
        carry = np.zeros(out_shape, dtype)  # (d previous output, through a masked step's repeat)
        grads = None
        for k in range(len(steps) - 1, -1, -1):
            t = steps[k]
            g = carry
            if d_out is not None:
                d = np.asarray(d_out, dtype)
                g = g + (d[:, k] if self.return_sequences else d if k == len(steps) - 1 else 0)
            d_new = d_states
            if mask is not None:
                keep = mask[:, t, None]
                carry = np.zeros_like(g) if self.zero_output_for_mask else np.where(keep, 0, g)
                g = np.where(keep, g, 0)
                d_new = [np.where(keep, d, 0) for d in d_states]
                kept = [np.where(keep, 0, d) for d in d_states]
            else:
                carry = np.zeros_like(g)
                kept = [0] * len(d_states)
            d_inputs, step_grads = self.cell.backward([g, *d_new], caches[k], need_dx=True)
            dx[:, t] = d_inputs[0]
            d_states = [keep_part + (0 if d is None else np.asarray(d, dtype))
                        for keep_part, d in zip(kept, d_inputs[1:])]
            grads = step_grads if grads is None else [a if b is None else b if a is None else a + b
                                                      for a, b in zip(grads, step_grads)]
        d_states = [np.broadcast_to(np.asarray(d, dtype), (shape[0], s)).copy()
                    for d, s in zip(d_states, self.state_sizes)]
        return (dx if need_dx else None), d_states, (list(grads or []) if self.trainable else [])


def _traced_step(cell, inputs: list, training: bool = False):
    """The cell's call on ``[x_t, *states]`` as ``[output, *new states]`` (what ``custom_training`` traces)."""
    kwargs = {"training": training} if _takes_training(cell) else {}
    out, new = type(cell)._fg_own_call(cell, inputs[0], list(inputs[1:]), **kwargs)
    return [out, *(new if isinstance(new, (list, tuple)) else [new])]


registry.register_model("RNN", RNN)  # (how fastgru.io builds one, without importing this module)


def _takes_training(cell) -> bool:
    """Whether the cell's own call takes ``training`` (Keras passes it only then)."""
    takes = inspect.signature(type(cell)._fg_own_call).parameters
    return "training" in takes or any(p.kind is p.VAR_KEYWORD for p in takes.values())
