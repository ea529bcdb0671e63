"""The Bidirectional wrapper (Keras 3 semantics) around a GRU, LSTM or SimpleRNN."""

from __future__ import annotations

import numpy as np

from .._threads import side_by_side
from ..errors import UnsupportedKerasFeature
from ..variables import built_within
from . import registry
from .base import Layer, WrapperTrainable, weights_lock
from .recurrent import RecurrentLayer
from .registry import Anything, KerasContract, register_layer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


@register_layer
class Bidirectional(WrapperTrainable, Layer):
    """Runs a recurrent layer forwards and a copy backwards over the sequence and merges the outputs.

    Input (B, T, D). Outputs (H the inner layer's units): ``concat`` (B, [T,] 2H); ``sum``, ``mul``,
    ``ave`` (B, [T,] H); None a list ``[forward, backward]``. With ``return_sequences`` the
    backward outputs are flipped back to input order before merging. With ``return_state`` the
    forward layer's states then the backward layer's follow the output. Weights: the forward
    layer's, then the backward layer's. As in Keras, masked steps output zeros inside
    (``zero_output_for_mask`` = ``return_sequences`` on both layers). When fastgru may use two
    threads the two directions run side by side.
    """

    accepts_mask_argument = True  # (its Keras call takes mask=: graph.symbolic_call)

    _wrapped = ("forward_layer", "backward_layer")

    #: a wrapper: its weights live in its inner layers (forward_layer/, backward_layer/ in a .keras file);
    #: fastgru.io builds it from its inner layers' configs
    keras = KerasContract(names=("Bidirectional",), weights="wrapper")
    merge_modes = MERGE_MODES
    #: how tests/test_layer_contract.py builds one
    contract_example = {"kwargs": {"layer": lambda dtype: registry.lookup("GRU")(3, return_sequences=True,
                                                                                 dtype=dtype)}}
    parameter_constraints = {"layer": [Anything()], "backward_layer": [Anything()], "merge_mode": [Anything()]}
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, RecurrentLayer):
            what = ("RNN over a list of cells (wrap each recurrent layer in its own Bidirectional)"
                    if getattr(layer, "_fg_stacked_cells", False) else "the RNN of a script's own cell (not supported "
                    "yet: run the cell forward and backward in two RNN layers, go_backwards=True on one)"
                    if hasattr(layer, "state_sizes") else repr(layer))
            raise ValueError(f"Bidirectional wraps a recurrent layer (GRU, LSTM or SimpleRNN), received {what}")
        if backward_layer is not None and not isinstance(backward_layer, RecurrentLayer):
            raise ValueError(f"backward_layer must be a recurrent layer (GRU, LSTM or SimpleRNN), "
                             f"received {backward_layer!r}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Invalid merge mode {merge_mode!r}; expected one of concat, sum, mul, ave, None")
        if kwargs.get("input_shape") is None and kwargs.get("batch_input_shape") is None \
                and layer._declared_input_shape is not None:
            kwargs["batch_input_shape"] = layer._declared_input_shape
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        config["name"] = "forward_" + _strip(layer.name, "forward_")
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = layer.get_config()
            config.pop("batch_input_shape", None)
            config["go_backwards"] = True
            config["name"] = "backward_" + _strip(layer.name, "backward_")
            backward_layer = type(layer).from_config(config)
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("Forward layer and backward layer should have different go_backwards values, received "
                             f"{self.forward_layer.go_backwards} for both")
        if self.forward_layer.units != self.backward_layer.units:  # (Keras allows it with concat or None)
            raise UnsupportedKerasFeature(
                f"Bidirectional {self.name!r}: a backward_layer of {self.backward_layer.units} units beside a forward "
                f"layer of {self.forward_layer.units} is not supported by fastgru (give both the same units)")
        for attr in ("stateful", "return_sequences", "return_state"):
            if getattr(self.forward_layer, attr) != getattr(self.backward_layer, attr):
                raise ValueError(f"Forward layer and backward layer must have the same {attr}, received "
                                 f"{getattr(self.forward_layer, attr)} and {getattr(self.backward_layer, attr)}")
        for inner in (self.forward_layer, self.backward_layer):
            inner.zero_output_for_mask = inner.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = self.forward_layer.stateful
        self._initial_weights = list(weights) if weights else None

    @property
    def layers(self) -> tuple[RecurrentLayer, RecurrentLayer]:
        return self.forward_layer, self.backward_layer

    # ---- building ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        for inner in self.layers:
            built_within(inner, self)
            inner.build(input_shape)
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape: tuple):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        if self.merge_mode == "concat":
            shape = tuple(shape[:-1]) + (None if shape[-1] is None else 2 * shape[-1],)
        outputs = [shape, shape] if self.merge_mode is None else [shape]
        if self.return_state:  # (the backward layer's own states: an LSTM forward, a GRU backward)
            return outputs + states + list(self.backward_layer.compute_output_shape(input_shape)[1:])
        return outputs if self.merge_mode is None else shape

    def compute_mask(self, x, mask=None):
        """Keras's: the input's mask on the (merged) sequence output, on both outputs with merge_mode=None
        (a list); none on the last states or on the states themselves."""
        if not self.return_sequences:
            return None
        return [mask, mask] if self.merge_mode is None else mask

    # ---- weights ----------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return self.forward_layer.weights + self.backward_layer.weights

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """Both layers', a direction frozen on its own (``forward_layer.trainable = False``) left out, as Keras's."""
        return self.forward_layer.trainable_weights + self.backward_layer.trainable_weights if self.trainable else []

    @property
    def weight_paths(self) -> list[str]:
        return [f"{inner.name}/{p}" for inner in self.layers for p in inner.weight_paths]

    def _check_weights(self, weights) -> list[np.ndarray]:
        weights = list(weights)
        n = len(self.forward_layer.weights)  # (the backward layer may have other options: use_bias=False)
        expected = n + len(self.backward_layer.weights)
        if len(weights) != expected:
            raise ValueError(f"Layer {self.name!r} expects {expected} weights ({n} of the forward layer, then the "
                             f"backward layer's), but received {len(weights)}")
        return self.forward_layer._check_weights(weights[:n]) + self.backward_layer._check_weights(weights[n:])

    def _copy_weights(self, checked) -> None:
        n = len(self.forward_layer.weights)
        with weights_lock(self).exclusive:
            self.forward_layer._copy_weights(checked[:n])
            self.backward_layer._copy_weights(checked[n:])

    def count_params(self) -> int:
        return self.forward_layer.count_params() + self.backward_layer.count_params()

    # ---- states -----------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Keras 3's name of :meth:`reset_states` (without states: forget them)."""
        self.reset_states()

    def reset_states(self, states=None) -> None:
        """Forget (or set: forward states then backward states) the carried states."""
        if states is None:
            for inner in self.layers:
                inner.reset_states()
            return
        if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)):
            states = [states]
        n = len(self.forward_layer.state_names)  # (an LSTM forward and a GRU backward: 2 and 1)
        if len(states) != n + len(self.backward_layer.state_names):
            raise ValueError(f"Bidirectional {self.name!r} has {n + len(self.backward_layer.state_names)} states "
                             f"(forward then backward), received {len(states)}")
        forward = self.forward_layer._checked_states(list(states[:n]))  # both checked before either is set
        backward = self.backward_layer._checked_states(list(states[n:]))
        if forward[0].shape != backward[0].shape:
            raise ValueError(f"Bidirectional {self.name!r} forward and backward states must have one shape, "
                             f"received {forward[0].shape} and {backward[0].shape}")
        self.forward_layer._states, self.backward_layer._states = forward, backward

    @property
    def states(self):
        if self.forward_layer.states is None:
            return None
        return list(self.forward_layer.states) + list(self.backward_layer.states)

    def _split_initial_state(self, initial_state):
        if initial_state is None:
            return None, None
        initial_state = list(initial_state)
        n = len(self.forward_layer.state_names)
        if len(initial_state) != n + len(self.backward_layer.state_names):
            raise ValueError(f"Bidirectional {self.name!r} expects {n + len(self.backward_layer.state_names)} "
                             "initial states (forward then backward), "
                             f"received {len(initial_state)}")
        return initial_state[:n], initial_state[n:]

    # ---- merging ----------------------------------------------------------------------------
    def _merge(self, y, y_rev):
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            return np.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / y.dtype.type(2)
        if self.merge_mode == "mul":
            return y * y_rev
        return [y, np.ascontiguousarray(y_rev)]

    # ---- inference --------------------------------------------------------------------------
    def call(self, x, mask=None, training: bool = False, initial_state=None):
        fwd_state, bwd_state = self._split_initial_state(initial_state)
        kept = self.forward_layer._states, self.backward_layer._states
        try:
            y, y_rev = side_by_side(
                lambda: self.forward_layer.call(x, mask=mask, training=training, initial_state=fwd_state),
                lambda: self.backward_layer.call(x, mask=mask, training=training, initial_state=bwd_state),
            )
        except BaseException:
            if self.stateful:  # one direction may have finished: a failed call changes no state
                self.forward_layer._states, self.backward_layer._states = kept
            raise
        if not self.return_state:
            return self._merge(y, y_rev)
        output = self._merge(y[0], y_rev[0])
        output = output if isinstance(output, list) else [output]
        return output + list(y[1:]) + list(y_rev[1:])

    # ---- training ---------------------------------------------------------------------------
    def forward(self, x, mask=None, training: bool = True, initial_state=None):
        """Training forward of both directions; the cache keeps both layers' caches and outputs."""
        if self.merge_mode is None or self.return_state:
            raise ValueError(f"Bidirectional {self.name!r} with merge_mode=None or return_state=True returns several "
                             "arrays: training passes one array between layers")
        fwd_state, bwd_state = self._split_initial_state(initial_state)
        (y, cache_f), (y_rev, cache_b) = side_by_side(
            lambda: self.forward_layer.forward(x, mask=mask, training=training, initial_state=fwd_state),
            lambda: self.backward_layer.forward(x, mask=mask, training=training, initial_state=bwd_state),
        )
        from ..training.regularization import directions_cache

        return self._merge(y, y_rev), directions_cache(self, cache_f, cache_b, [y], [y_rev])

    def backward(self, dy, cache, need_dx: bool = True):
        """``(dL/dx, grads)``: dy split by the merge mode, the backward half flipped back to
        processing order, each direction's BPTT; grads forward layer's then backward layer's."""
        from ..graph_states import _merge_gradients

        cache_f, cache_b, y, y_rev = cache
        dy_f, dy_b = _merge_gradients(self, [np.asarray(dy)], y, y_rev)  # (the graph walk's split, one rule)
        if self.return_sequences:
            dy_b = dy_b[:, ::-1]
        penalties = getattr(cache, "activity_grads", ((), ()))  # (the directions' activity penalties)
        if any(penalties):
            from ..training.regularization import with_penalty

            dy_f, dy_b = (with_penalty(d, (p or (None,))[0]) for d, p in zip((dy_f, dy_b), penalties))
        dy_f, dy_b = np.ascontiguousarray(dy_f), np.ascontiguousarray(dy_b)
        (dx_f, grads_f), (dx_b, grads_b) = side_by_side(
            lambda: self.forward_layer.backward(dy_f, cache_f, need_dx),
            lambda: self.backward_layer.backward(dy_b, cache_b, need_dx),
        )
        dx = dx_f + dx_b if need_dx else None
        if not self.trainable:
            return dx, []
        return dx, list(grads_f) + list(grads_b)

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            merge_mode=self.merge_mode,
            layer={"module": "keras.layers", "class_name": type(self.forward_layer).__name__,
                   "config": self.forward_layer.get_config(), "registered_name": None},
            backward_layer={"module": "keras.layers", "class_name": type(self.backward_layer).__name__,
                            "config": self.backward_layer.get_config(), "registered_name": None},
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        classes = {cls.__name__: cls for cls in registry.registered() if cls.keras.weights == "cell/vars"}
        config = dict(config)

        def make(entry):
            if isinstance(entry, Layer) or entry is None:
                return entry
            if not isinstance(entry, dict) or entry.get("class_name") not in classes:
                raise ValueError(f"Bidirectional wraps GRU, LSTM or SimpleRNN; received layer config {entry!r}")
            return classes[entry["class_name"]].from_config(entry["config"])

        config["layer"] = make(config.get("layer"))
        config["backward_layer"] = make(config.get("backward_layer"))
        return cls(**config)
