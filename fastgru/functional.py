"""Keras 3's Functional API: ``Input`` (a symbolic tensor), layers called on symbolic tensors (recording
nodes), and ``Model(inputs, outputs)``, a graph of layers with several inputs and outputs.

The graph is put in Keras's order once (``graph.map_graph``, as Keras's: by depth, then by first visit
from the outputs) and flattened into a plan: per node its layer, input and output slots, and the slots
it is the last to read (freed after it). A call walks the plan (``plan_walk``); training keeps each
step's cache and walks it back, summing the gradients of tensors used several times.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import numpy as np

from . import plan_walk
from .eager import eager
from .graph import (  # noqa: F401  (Input, KerasTensor: fastgru.functional's public names)
    Input,
    KerasTensor,
    _fmt,
    _kind,
    _last_masks,
    _Step,
    _tensor,
    is_symbolic,
    map_graph,
    symbolic_call,
)
from .layers import registry
from .layers.base import PROPAGATED_MASK, WrapperTrainable, checked_name, unique_name, weights_list, weights_lock
from .layers.core import InputLayer
from .layers.dtypes import in_layer_dtype
from .model_api import KerasModelAPI, pick_layer
from .model_inputs import checked_inputs


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
def _flatten_io(value, what: str, sort_keys: bool = False):
    """(list of tensors, structure): structure is None (one tensor), 'list', or the dict's keys (sorted with
    ``sort_keys``, as Keras flattens a dict of outputs: that order fixes ``model.layers`` and the weights')."""
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        return [_tensor(value[k], f"{what} {k!r}") for k in keys], keys
    if isinstance(value, (list, tuple)):
        return [_tensor(v, f"{what} {i}") for i, v in enumerate(value)], "list"
    return [_tensor(value, what)], None


def _nesting(value):
    """(template, flat list) of outputs given as nested lists or tuples (``[[seq, state], head]``: Keras's
    feature extractor of ``[layer.output for layer in model.layers]``), the template holding the flat indices;
    (None, ``value``) for anything else."""
    if not isinstance(value, (list, tuple)) or not any(isinstance(v, (list, tuple)) for v in value):
        return None, value
    flat: list = []

    def walk(item):
        if isinstance(item, (list, tuple)):
            return type(item)(walk(v) for v in item)
        flat.append(item)
        return len(flat) - 1

    return walk(value), flat


def _rebuilt(template, values: list):
    """``values`` (flat) in the nested structure of ``template``."""
    if isinstance(template, (list, tuple)):
        return type(template)(_rebuilt(t, values) for t in template)
    return values[template]


class Model(KerasModelAPI, WrapperTrainable):
    """Keras 3's Functional model: ``Model(inputs, outputs, name=...)`` on symbolic tensors."""

    _wrapped = ("_all_layers",)  # (``trainable = False`` freezes every layer, as Keras)

    _fg_model = True
    accepts_mask_argument = True  # (Keras's Functional.call takes mask=)

    def __init__(self, inputs=None, outputs=None, name: str | None = None, trainable: bool = True):
        if inputs is None or outputs is None:
            raise TypeError("fg.Model needs inputs and outputs: Model(inputs=fg.Input(...), outputs=...); "
                            "subclassed models are not supported")
        self.name = checked_name(name, "Model") or unique_name("functional")
        self._trainable = bool(trainable)  # (as given: the layers keep their own flags)
        self._inputs, self._input_struct = _flatten_io(inputs, "Model input", sort_keys=True)  # (as Keras)
        self._output_nesting, outputs = _nesting(outputs)  # (nested lists of outputs: predicted so, kept flat)
        self._outputs, self._output_struct = _flatten_io(outputs, "Model output", sort_keys=True)
        #: a dict of outputs comes back with the keys in the order given (Keras's too)
        self._output_key_order = list(outputs) if isinstance(outputs, dict) else None
        self._tuple_outputs = isinstance(outputs, tuple)  # (Keras returns a tuple of outputs as a tuple)
        self._list_outputs = self._output_struct is not None
        for t in self._inputs:
            if not t.node.is_input:
                raise ValueError(f"Model {self.name!r}: input {t.name!r} is not made by fg.Input (it comes from "
                                 f"layer {t.node.layer.name!r}); a model's inputs must be Input tensors")
        if len({id(t) for t in self._inputs}) != len(self._inputs):
            raise ValueError(f"Model {self.name!r}: an input tensor is listed twice")
        # (an input no output uses is accepted, as by Keras: given and checked at each call, then unused)
        nodes, layers = map_graph(self._inputs, self._outputs)
        names = [layer.name for layer in layers]
        if len(set(names)) < len(names):
            raise ValueError(f"Model {self.name!r}: layer names must be unique, "
                             f"{sorted({n for n in names if names.count(n) > 1})} repeat")
        self._all_layers = layers  # InputLayers included, as Keras's model.layers
        self._nodes = nodes
        self._build_plan()
        self.built = True
        self.stop_training = False
        self.history = None
        self.optimizer = None
        self.loss = None
        self.compiled = False

    # ---- plan ---------------------------------------------------------------------------------
    def _build_plan(self) -> None:
        slot_of: dict[int, int] = {}
        for t in self._inputs:
            slot_of[id(t)] = len(slot_of)
        self._input_slots = [slot_of[id(t)] for t in self._inputs]
        steps = []
        for node in self._nodes:
            if node.is_input:
                continue
            args = [slot_of[id(t)] for t in node.args]
            states = [slot_of[id(t)] for t in node.states]
            outs = []
            for t in node.outputs:
                slot_of[id(t)] = len(slot_of)
                outs.append(slot_of[id(t)])
            step = _Step(node.layer, node, args, states, outs, node.list_args, _kind(node.layer))
            if node.masks:
                step.masks = [m if m is None or m is PROPAGATED_MASK else slot_of[id(m)] for m in node.masks]
            steps.append(step)
        self._n_slots = len(slot_of)
        self._output_slots = [slot_of[id(t)] for t in self._outputs]
        keep = set(self._output_slots)
        last_use: dict[int, int] = {}
        for i, step in enumerate(steps):
            for s in step.args + step.states + [m for m in step.masks or () if isinstance(m, int)]:
                last_use[s] = i
        for s, i in last_use.items():
            if s not in keep:
                steps[i].free.append(s)
        consumers: dict[int, int] = {}
        for step in steps:
            for s in step.args + step.states:
                consumers[s] = consumers.get(s, 0) + 1
        self._consumers = consumers
        self._steps = steps

    # ---- structure ----------------------------------------------------------------------------
    @property
    def layers(self) -> list:
        """The model's layers in graph order, InputLayers included, as Keras 3's ``model.layers``: the operations
        recorded by ``h[:, -1]``, ``a + b`` or ``keras.ops`` calls (``GetItem``, ``KerasOp``) are not layers there and
        are left out, so ``model.layers[-2]`` is the same layer in both (``summary()`` shows them, as Keras's)."""
        return [layer for layer in self._layers_and_ops if not getattr(layer, "keras_operation", False)]

    @property
    def _layers_and_ops(self) -> list:
        """Every node's layer in graph order, operations included (what a Keras config lists)."""
        if getattr(self, "_as_sequential", None) is not None:  # (a nested Sequential lists no InputLayer, as Keras's)
            return [layer for layer in self._all_layers if not isinstance(layer, InputLayer)]
        return list(self._all_layers)

    @property
    def _weighted_layers(self) -> list:
        return [layer for layer in self._all_layers if not isinstance(layer, InputLayer)]

    @property
    def inputs(self) -> list:
        return list(self._inputs)

    @property
    def outputs(self) -> list:
        return list(self._outputs)

    @property
    def input_names(self) -> list[str]:
        return [t.node.layer.name for t in self._inputs]

    @property
    def output_names(self) -> list[str]:
        if isinstance(self._output_struct, list):
            return list(self._output_struct)
        return list(self.__dict__.get("_file_output_names") or [t.node.layer.name for t in self._outputs])

    @property
    def input_shape(self):
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if self._input_struct is None or len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if self._output_struct is None or len(shapes) == 1 else shapes

    @property
    def input(self):
        node = self._first_call()
        if node is not None:
            return list(node.args) if node.list_args else node.args[0]
        if isinstance(self._input_struct, list):  # (inputs given as a dict: the dict, as Keras's)
            return dict(zip(self._input_struct, self._inputs))
        return self._inputs[0] if self._input_struct is None else list(self._inputs)

    @property
    def output(self):
        node = self._first_call()
        if node is not None:
            return node.outputs if node.list_outputs else node.outputs[0]
        if isinstance(self._output_struct, list):  # (outputs given as a dict: the dict, in its order, as Keras's)
            by_key = dict(zip(self._output_struct, self._outputs))
            return {k: by_key[k] for k in self._output_key_order or self._output_struct}
        return self._outputs[0] if self._output_struct is None else list(self._outputs)

    def _first_call(self):
        """The node of the first call in a graph of a Sequential nested as this Model (``Sequential.add``), whose
        ``input``/``output`` are that call's, as Keras's nested Sequential's (a Functional's are its own)."""
        nodes = self.__dict__.get("_inbound_nodes") if self.__dict__.get("_as_sequential") else None
        return nodes[0] if nodes else None

    def get_layer(self, name: str | None = None, index: int | None = None):
        """A layer by name (an operation too) or by its index in ``layers``, as Keras's."""
        return pick_layer(self._all_layers if index is None else self.layers, name, index, self.name)

    def build(self, input_shape=None) -> None:
        """A Functional model is built when it is made."""

    # ---- weights ------------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self._weighted_layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        if not self.trainable:
            return []
        return [w for layer in self._weighted_layers for w in layer.trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights in Keras's order (``model.layers`` order, each layer's own order)."""
        return [w for layer in self._weighted_layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (Keras's order, as ``get_weights``) into the layers; all are checked first."""
        weights = weights_list(weights, f"Model {self.name!r}")
        layers = self._weighted_layers
        expected = sum(len(layer.weights) for layer in layers)
        if len(weights) != expected:
            raise ValueError(f"Model {self.name!r} expects {expected} weight arrays, received {len(weights)}")
        checked, i = [], 0
        for layer in layers:
            n = len(layer.weights)
            checked.append(layer._check_weights(weights[i: i + n]) if hasattr(layer, "_check_weights")
                           else weights[i: i + n])
            i += n
        with weights_lock(self).exclusive:
            for layer, arrays in zip(layers, checked):
                if hasattr(layer, "_copy_weights"):
                    layer._copy_weights(arrays)
                else:
                    layer.set_weights(arrays)

    def _check_weights(self, weights) -> list:
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise ValueError(f"Model {self.name!r} expects {len(self.weights)} weight arrays, received {len(weights)}")
        return weights

    def _copy_weights(self, arrays) -> None:
        self.set_weights(arrays)

    def count_params(self) -> int:
        return int(sum(layer.count_params() for layer in self._weighted_layers))

    def reset_states(self) -> None:
        for layer in self._weighted_layers:
            if hasattr(layer, "reset_states"):
                layer.reset_states()

    # ---- inputs -------------------------------------------------------------------------------
    def _input_list(self, x) -> list[np.ndarray]:
        """``x`` (one array, a list in input order, or a dict keyed by input names) as a checked list
        (:func:`fastgru.model_inputs.checked_inputs`)."""
        return checked_inputs(self, x)

    def _structured(self, outs: list, xs: list | None = None):
        if xs is not None:
            given = np.float64 if any(getattr(x, "dtype", None) == np.float64 for x in xs) else None
            outs = [in_layer_dtype(o, t.node.layer, given) for o, t in zip(outs, self._outputs)]
        if getattr(self, "_output_nesting", None) is not None:
            return _rebuilt(self._output_nesting, outs)
        if self._output_struct is None or (self._output_struct == "list" and len(outs) == 1):
            return outs[0]  # Keras returns a list of one output as the array itself (unpack_singleton)
        if isinstance(self._output_struct, list):
            by_key = dict(zip(self._output_struct, outs))
            return {k: by_key[k] for k in self._output_key_order or self._output_struct}
        return tuple(outs) if getattr(self, "_tuple_outputs", False) else outs

    # ---- running ------------------------------------------------------------------------------
    def _run(self, xs: list, masks: list | None = None, training: bool = False):
        """Inference walk of the plan: (outputs, output masks) (``fastgru.plan_walk.run``)."""
        return plan_walk.run(self, xs, masks, training)

    def _forward(self, xs: list, masks: list | None, training: bool, logits: list | None = None):
        """Training walk: (outputs, output masks, tape) (``fastgru.plan_walk.forward``)."""
        return plan_walk.forward(self, xs, masks, training, logits)

    def _backward(self, d_outputs: list, tape: list, need_dx: bool = False):
        """(d inputs or None, grads aligned with ``trainable_weights``, None for a weight no gradient reaches)
        (``fastgru.plan_walk.backward``)."""
        return plan_walk.backward(self, d_outputs, tape, need_dx)

    # ---- as a layer of a Sequential model (one input, one output) ---------------------------------
    def _single(self) -> None:
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            raise ValueError(f"Model {self.name!r} has {len(self._inputs)} inputs and {len(self._outputs)} outputs: "
                             "inside a Sequential model it needs one of each")

    def call(self, x, mask=None, training: bool = False):
        self._single()
        outs, oms = self._run([x], [mask], training)
        _last_masks.value = (id(self), oms[0])
        return outs[0]

    def compute_mask(self, x, mask=None):
        kept = getattr(_last_masks, "value", None)
        if kept is not None and kept[0] == id(self):
            return kept[1]
        return None

    def forward(self, x, mask=None, training: bool = True, skip_activation: bool = False):
        self._single()
        outs, oms, tape = self._forward([x], [mask], training, [True] if skip_activation else None)
        _last_masks.value = (id(self), oms[0])
        return outs[0], tape

    def backward(self, dy, cache, need_dx: bool = True):
        """As a layer: (d input, grads; None for a weight no gradient reaches, as Keras has none for it)."""
        d_inputs, grads = self._backward([dy], cache, need_dx=True)
        return d_inputs[0], grads

    # ---- public calls ---------------------------------------------------------------------------
    def __call__(self, inputs, training: bool = False, mask=None, **kwargs):
        x = inputs  # (Keras's name for it: model(inputs=x) as model(x))
        if is_symbolic(x):
            return symbolic_call(self, x, mask=mask, training=training, **kwargs)
        xs = self._input_list(x)
        with self._stateful_guard(), weights_lock(self).shared:
            outs, _ = self._run(xs, training=training)
        return eager(self._structured(outs, xs))  # (arrays with Keras's .numpy())

    def predict_on_batch(self, x):
        """``predict`` on ``x`` as one batch (Keras's ``predict_on_batch``)."""
        from .training.structures import refuse_streams

        refuse_streams(x, f"predict_on_batch of Model {self.name!r}")  # (as Keras: one batch of arrays)
        return self.predict(x)

    def predict(self, x, batch_size: int | None = None, verbose=0, steps=None, callbacks=None):
        """Outputs for ``x`` (one array, a list or a dict keyed by input name), ``batch_size`` samples at a time
        (as ``Sequential.predict``: callbacks get Keras's predict hooks)."""
        from .predict_loop import check_batch_size, collect_inputs, predict_batches, rows_for_steps

        x, batch_size, ragged = collect_inputs(self, x, batch_size, steps)  # (a stream's batches, as arrays)
        if ragged is not None:  # (padded_batch's batches of different lengths, predicted one by one)
            return ragged
        xs = self._input_list(x)
        batch_size = check_batch_size(batch_size)
        n = rows_for_steps(steps, len(xs[0]), batch_size)
        xs = xs if n == len(xs[0]) else [a[:n] for a in xs]

        def run(lo, hi):
            return self._run(xs if (lo, hi) == (0, n) else [a[lo:hi] for a in xs])[0]

        with self._stateful_guard(), weights_lock(self).shared:
            full = predict_batches(self, n, batch_size, run, verbose, callbacks)
        return self._structured(full, xs)

    def _stateful_guard(self):
        """As Sequential's: calls of a model with stateful layers must not overlap (a second thread's call
        raises RuntimeError while one runs); a call that fails puts the carried states back."""
        inner = [l for layer in self._weighted_layers for l in getattr(layer, "layers", (layer,))
                 if not isinstance(l, InputLayer)]
        stateful = [l for l in inner if getattr(l, "stateful", False) and hasattr(l, "_states")]
        if not stateful:
            return contextlib.nullcontext()
        from ._threads import held_or_refused
        from .models import Sequential

        lock = self.__dict__.setdefault("_state_lock", threading.Lock())
        stack = contextlib.ExitStack()
        stack.enter_context(held_or_refused(
            lock, f"Model {self.name!r} has stateful layers and is already being called from another thread: "
                  "a stateful layer carries its state between calls, so concurrent calls would mix their states"))
        stack.enter_context(Sequential._restoring_states(stateful))
        return stack

    # ---- description ----------------------------------------------------------------------------
    def summary(self, line_length: int | None = None, print_fn: Callable[[str], None] | None = None,
                positions=None, **options) -> None:
        """Keras's Functional table: Layer (type), Output Shape, Param #, Connected to (``expand_nested``,
        ``show_trainable``, ``layer_range`` as ``Sequential.summary``)."""
        from .summary import print_functional_summary

        print_functional_summary(self, line_length=line_length, print_fn=print_fn, **options)

    def get_config(self) -> dict:
        """Keras 3's Functional config: name, trainable, layers (with their inbound nodes), input_layers,
        output_layers (``from_config`` and ``keras.Model.from_config`` rebuild the graph from it)."""
        from .io.functional_save import functional_config

        return functional_config(self)["config"]

    @classmethod
    def from_config(cls, config: dict) -> Model:
        """A model from Keras's Functional config (``get_config`` of fastgru or of Keras)."""
        from .io.keras_functional import model_from_config

        if not isinstance(config, dict):
            raise ValueError(f"Model.from_config expects a dict (get_config's), received {type(config).__name__}")
        return model_from_config(config)

    # ---- training ---------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                **execution) -> None:
        """Optimizer, per-output losses (one, a list or a dict keyed by output name), loss_weights, metrics
        and weighted metrics (given as the metrics are); Keras's execution options as ``Sequential.compile``."""
        from .training.compiled import check_execution_options
        from .training.multi_output import MultiCompiled

        check_execution_options(**execution)
        self._compiled = MultiCompiled(self, optimizer, loss, loss_weights, metrics, weighted_metrics)
        self.optimizer = self._compiled.optimizer
        self.optimizer.__dict__.pop("_stepped_with", None)  # (the trainable set of now: optimizer_positions)
        self.loss = loss
        self.compiled = True

    @property
    def metrics(self) -> list:
        compiled = getattr(self, "_compiled", None)
        return [] if compiled is None else [compiled.loss_tracker] + list(compiled.metrics or [])

    def _check_xy(self, x, y, sample_weight=None):
        from .training.multi_output import check_xy

        return check_xy(self, x, y, sample_weight)

    def _train_step(self, x, y, sample_weight=None) -> None:
        from .training.multi_output import train_step

        train_step(self, x, y, sample_weight)

    def _test_step(self, x, y, sample_weight=None) -> None:
        from .training.multi_output import test_step

        test_step(self, x, y, sample_weight)

    # ---- files ------------------------------------------------------------------------------------
    def __reduce__(self):
        from .io.functional_save import functional_config, rebuild_functional

        compiled = getattr(self, "_compiled", None)
        compile_args = None if compiled is None else (compiled.optimizer,) + tuple(compiled.spec)
        custom = registry.script_classes(self._layers_and_ops)
        return (rebuild_functional, (functional_config(self), self.get_weights(), compile_args, custom or None))

    def __repr__(self) -> str:
        return f"<Functional name={self.name!r} inputs={self.input_names} outputs={self.output_names}>"


# ---------------------------------------------------------------------------------------------
# a Sequential used as a layer of a Functional model
# ---------------------------------------------------------------------------------------------
registry.register_model("Functional", Model)
registry.register_model("Input", Input)
