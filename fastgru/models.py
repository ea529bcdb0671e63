"""Sequential: a stack of layers with Keras's model API (build, predict, summary, weights, fit, save)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import numpy as np

from ._threads import held_or_refused
from .eager import eager
from .graph import Input, build_error, input_tensor
from .layers import registry
from .layers.base import (
    BUILD_LOCK,
    Layer,
    WrapperTrainable,
    checked_name,
    record_symbolic_call,
    unique_name,
    weights_list,
    weights_lock,
)
from .layers.core import InputLayer
from .layers.dtypes import in_layer_dtype
from .model_api import KerasModelAPI, pick_layer
from .model_inputs import sequential_input
from .summary import print_summary
from .variables import built_within


class Sequential(KerasModelAPI, WrapperTrainable):
    """A linear stack of layers, called in order; masks flow from the layer that makes them."""

    accepts_mask_argument = True  # (Keras's Sequential.call takes mask=)

    _wrapped = ("_layers",)  # (``trainable = False`` freezes every layer, as Keras)

    def __init__(self, layers: list | None = None, name: str | None = None, trainable: bool = True):
        self.name = checked_name(name, "Sequential") or unique_name("sequential")
        self._trainable = bool(trainable)  # (as given: the layers keep their own flags)
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.input_shape: tuple | None = None
        self.output_shape = None
        self.built = False
        self._graph: list | None = None  # the symbolic input, then each layer's output (_graph_start)
        self.stop_training = False
        self.history = None
        self.optimizer = None
        self.loss = None
        self.compiled = False
        for layer in layers or []:
            self.add(layer)

    # ---- structure --------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; an ``Input``/``InputLayer`` first fixes the input shape and builds the model. A
        Sequential (a pretrained encoder) nests as the Functional model of its layers, under its name."""
        if getattr(layer, "_fg_symbolic", False) and not isinstance(layer, InputLayer):  # fg.Input(...)'s tensor
            if not getattr(getattr(layer, "node", None), "is_input", False):
                raise TypeError("Sequential takes an Input tensor only as its first entry, received a tensor made by "
                                f"layer {layer.layer.name!r}")
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("An Input layer can only be the first layer of a Sequential model")
            self._input_layer = layer
            self.build(layer.batch_shape)
            return
        if isinstance(layer, Sequential):  # a Sequential as a layer (as Keras): nested as the Model of its layers
            layer = self._nested_sequential(layer)
        if not isinstance(layer, Layer) and not getattr(layer, "_fg_model", False):  # a Functional Model nests
            raise TypeError(f"Sequential.add expects a fastgru layer, received {type(layer).__name__}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names; {layer.name!r} repeats")
        self._layers.append(layer)
        declared = getattr(layer, "_declared_input_shape", None)
        if len(self._layers) == 1 and declared is not None and self._input_layer is None:
            self.build(declared)
        elif self.built:
            self._build_layer(layer, self.output_shape)
            self.output_shape = layer.output_shape
            self._graph_add(layer)

    def _nested_sequential(self, inner):
        """A Sequential added to this one, as the Functional model of its layers under its name (a built
        one; an unbuilt one is built for this model's output first)."""
        if not inner.built:
            if not self.built:
                raise ValueError(f"Sequential {inner.name!r} added to Sequential {self.name!r}: give one of them an "
                                 "Input first, so that the nested model can be built")
            inner.build(self.output_shape)
        x = h = registry.model_class("Input")(batch_shape=inner.input_shape)
        for layer in inner._layers_and_ops:  # (its layers, as Keras's nested Sequential lists them)
            h = layer(h)
        nested = registry.model_class("Functional")(x, h, name=inner.name)
        # (the Sequential it is: its input and output those of its call here, as Keras's, functional.py; saved,
        # weighted and configured as that Sequential, io/functional_save.py, io/graph_weights.py)
        nested._as_sequential = inner
        return nested

    def pop(self) -> Layer:
        if not self._layers:
            raise ValueError(f"Sequential {self.name!r} has no layers to pop")
        layer = self._layers.pop()
        self.output_shape = self._layers[-1].output_shape if self._layers else self.input_shape
        if self._graph is not None:
            del self._graph[len(self._layers) + 1:]
        elif self.built:
            self._graph_start()  # (the popped layer may have been the one that left the model without a graph)
        return layer

    @property
    def layers(self) -> list[Layer]:
        """The layers (Keras's ``model.layers``); for a Keras Functional chain loaded from a file, as Keras lists a
        Functional model's: its InputLayer first, no op nodes (``h[:, -1]``), so indices match Keras's."""
        if not self.__dict__.get("_keras_functional"):
            return list(self._layers)
        return [self._input_layer] * (self._input_layer is not None) + [
            layer for layer in self._layers if not getattr(layer, "keras_operation", False)]

    @property
    def _layers_and_ops(self) -> list[Layer]:
        """The layers as a Keras config lists them (a Functional model's include its operations)."""
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            return pick_layer(self.layers, name, index, self.name)
        # (a Keras Functional chain's InputLayer too, which its ``layers`` lists first)
        first = [self._input_layer] if self.__dict__.get("_keras_functional") and self._input_layer is not None else []
        return pick_layer(first + list(self._layers), name, index, self.name)

    def _build_layer(self, layer: Layer, input_shape) -> None:
        if isinstance(input_shape, list):
            raise ValueError(
                f"Layer {layer.name!r} follows a layer with several outputs (return_state=True); "
                "a Sequential model passes one array between layers"
            )
        if not layer.built:
            built_within(layer, self)  # (its variables' paths start with the model's name, as Keras's)
            try:
                layer.build(tuple(input_shape))
            except TypeError as exc:
                raise build_error(f"building layer {layer.name!r} on input shape {tuple(input_shape)}",
                                  tuple(input_shape), exc) from None
        elif tuple(layer.input_shape[1:]) != tuple(input_shape[1:]):
            raise ValueError(
                f"Layer {layer.name!r} was built for input shape {layer.input_shape}, "
                f"but receives {tuple(input_shape)}"
            )

    def build(self, input_shape: tuple | None = None) -> None:
        """Create every layer's weights for ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            if self.input_shape is None:
                raise ValueError("build() needs an input_shape, e.g. model.build((None, timesteps, features))")
            input_shape = self.input_shape
        shape = tuple(input_shape)
        self.input_shape = shape
        for layer in self._layers:
            self._build_layer(layer, shape)
            shape = layer.output_shape
        self.output_shape = shape
        self.built = True
        graph = self._graph
        if not graph or len(graph) != len(self._layers) + 1 or graph[0].shape != shape:
            self._graph_start()  # (not again for the same layers and input: their first nodes stay the model's)

    # ---- the symbolic graph (Keras 3 builds a Sequential as a Functional graph of its layers) ----
    def _graph_start(self) -> None:
        """Call the layers on a symbolic input, so that the model's and its layers' ``input`` and ``output``
        are defined (``Model(model.inputs, model.layers[-2].output)``: a feature extractor)."""
        if self._input_layer is not None:
            x = input_tensor(self._input_layer)
        else:
            x = Input(batch_shape=self.input_shape, dtype="string" if self._layers and self._takes_strings() else None)
        self._graph = [x]
        for layer in self._layers:
            self._graph_add(layer)

    def _graph_add(self, layer) -> None:
        if self._graph is None:
            return
        try:
            self._graph.append(layer(self._graph[-1]))
        except (TypeError, ValueError, NotImplementedError):
            self._graph = None  # (as Keras: a layer that takes no symbolic call leaves the model without a graph)

    def _graph_tensors(self, what: str) -> list:
        if not self._graph:
            raise AttributeError(f"Sequential model {self.name!r} has no defined {what} yet: give it an Input first "
                                 "(or build it)")
        return self._graph

    @property
    def inputs(self) -> list:
        return [self._graph_tensors("inputs")[0]]

    @property
    def input(self):
        """Keras's: the tensor of its first call in another model's graph (a nested encoder's ``input``, for a
        feature extractor ``Model(model.inputs, model.get_layer("encoder").output)``), else its own Input's."""
        node = self._first_call()
        if node is not None:
            return node.args[0]
        return self._graph_tensors("input")[0]

    @property
    def outputs(self) -> list:
        return [self._graph_tensors("outputs")[-1]]

    @property
    def output(self):
        """Keras's: the output of its first call in another model's graph (see ``input``), else its own graph's."""
        node = self._first_call()
        if node is not None:
            return node.outputs[0]
        return self._graph_tensors("output")[-1]

    def _first_call(self):
        nodes = self.__dict__.get("_inbound_nodes")
        return nodes[0] if nodes else None

    def _ensure_built(self, x: np.ndarray) -> None:
        if not self.built:
            with BUILD_LOCK:  # threads racing on the first predict build the layers once
                if not self.built:
                    self.build((None,) + tuple(x.shape[1:]))

    # ---- weights ----------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, in Keras's order (layer by layer, each layer's own order)."""
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (Keras order) into the layers. Every array is checked before any is copied (a
        refused call changes nothing); the copy waits for running ``predict`` / ``model(x)`` calls and
        holds new ones back, so each call computes with one weight set, the old or the new."""
        weights = weights_list(weights, f"Model {self.name!r}")
        expected = sum(len(layer.weights) for layer in self._layers)
        if len(weights) != expected:
            raise ValueError(f"Model {self.name!r} expects {expected} weight arrays, received {len(weights)}")
        checked, i = [], 0
        for layer in self._layers:
            n = len(layer.weights)
            checked.append(layer._check_weights(weights[i : i + n]))
            i += n
        with weights_lock(self).exclusive:
            for layer, arrays in zip(self._layers, checked):
                layer._copy_weights(arrays)

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"You tried to call count_params on model {self.name!r}, but it isn't built: give it an "
                             "Input, build it, or call it on data first")
        return int(sum(layer.count_params() for layer in self._layers))

    def reset_states(self) -> None:
        """Forget the carried state of every stateful layer."""
        with self._stateful_guard():
            for layer in self._layers:
                if hasattr(layer, "reset_states"):
                    layer.reset_states()

    # ---- inference --------------------------------------------------------------------------
    def _check_input(self, x) -> np.ndarray:
        return sequential_input(self, x)

    def _takes_strings(self) -> bool:
        """Whether the input is text: declared ``Input(..., dtype="string")``, or taken by the first layer
        (``TextVectorization``, ``StringLookup``)."""
        declared = getattr(self._input_layer, "input_dtype", None) or getattr(self, "_file_input_dtype", None)
        return declared == "string" or (declared is None and getattr(self._layers[0], "takes_strings", False))

    def _call(self, x: np.ndarray, training: bool = False, mask=None) -> np.ndarray:
        self._ensure_built(x)
        given = getattr(x, "dtype", None)
        for layer in self._layers:
            y = layer.call(x, mask=mask, training=training)
            mask = layer.compute_mask(x, mask)
            x = y
        return in_layer_dtype(x, self._layers[-1], given) if self._layers else x

    def __call__(self, inputs, training: bool = False, mask=None, **kwargs):
        x = inputs  # (Keras's name for it: model(inputs=x) as model(x))
        if not isinstance(x, np.ndarray) and getattr(x, "_fg_symbolic", False):  # used as a Functional layer
            return record_symbolic_call(self, x, training=training, **({"mask": mask} if mask is not None else {}),
                                        **kwargs)
        if kwargs:
            raise TypeError(f"Sequential.__call__ got unexpected keyword arguments {sorted(kwargs)}")
        x = self._check_input(x)
        self._ensure_built(x)
        if mask is not None:  # (Keras's: the first layer's input mask, one bool per sample and step)
            mask = np.asarray(mask)
            if mask.dtype != bool or mask.shape != x.shape[:2]:
                raise ValueError(f"Sequential {self.name!r}: mask must be a bool array of shape {x.shape[:2]} "
                                 f"(samples, steps), received {mask.dtype} {mask.shape}")
        with self._stateful_guard(), weights_lock(self).shared, self._states_kept_on_failure():
            return eager(self._call(x, training=training, mask=mask))  # (an array with Keras's .numpy())

    def predict_on_batch(self, x) -> np.ndarray:
        """``predict`` on ``x`` as one batch (Keras's ``predict_on_batch``)."""
        from .training.structures import refuse_streams

        refuse_streams(x, f"predict_on_batch of Model {self.name!r}")  # (as Keras: one batch of arrays)
        return self.predict(x)

    def predict(self, x, batch_size: int | None = None, verbose=0, steps=None, callbacks=None) -> np.ndarray:
        """Outputs for ``x`` (numpy, batch first), computed ``batch_size`` samples at a time (None: all;
        32 with ``callbacks`` or ``verbose``, as Keras, whose predict hooks the callbacks get).

        With ``batch_size`` the output is allocated once and filled batch by batch: beyond ``x`` and the
        output, memory is that of one batch. Several threads may call ``predict`` on one model at once
        (the kernels release the GIL); a model with a ``stateful`` layer raises RuntimeError instead
        (see :meth:`_stateful_guard`). With ``steps``, only the first ``steps`` batches, as Keras.
        """
        from .predict_loop import check_batch_size, collect_inputs, predict_batches, rows_for_steps

        x, batch_size, ragged = collect_inputs(self, x, batch_size, steps)  # (a stream's batches, as arrays)
        if ragged is not None:  # (padded_batch's batches of different lengths, predicted one by one)
            return ragged
        x = self._check_input(x)
        batch_size = check_batch_size(batch_size)
        x = x[:rows_for_steps(steps, len(x), batch_size)]
        self._ensure_built(x)
        listed = []

        def run(lo, hi):
            part = self._call(x if (lo, hi) == (0, len(x)) else x[lo:hi])
            listed[:] = [isinstance(part, list)]
            return part if listed[0] else [part]

        # set_weights waits for this call (one weight set throughout); a failed call leaves the states as they were
        with self._stateful_guard(), weights_lock(self).shared, self._states_kept_on_failure():
            out = predict_batches(self, len(x), batch_size, run, verbose, callbacks)
        return out if listed and listed[0] else out[0]

    def _stateful_layers(self) -> list:
        inner = [l for layer in self._layers for l in getattr(layer, "layers", (layer,))]  # Bidirectional's two
        return [l for l in inner if getattr(l, "stateful", False) and hasattr(l, "_states")]

    def _states_kept_on_failure(self):
        """Stateful layers: the carried states change only when the whole call succeeds (a call that raises,
        e.g. on its second batch, puts back the states it started from)."""
        if not any(getattr(layer, "stateful", False) for layer in self._layers):
            return contextlib.nullcontext()
        return self._restoring_states(self._stateful_layers())

    @staticmethod
    @contextlib.contextmanager
    def _restoring_states(layers):
        kept = [layer._states for layer in layers]  # states are replaced, never written in place
        try:
            yield
        except BaseException:
            for layer, states in zip(layers, kept):
                layer._states = states
            raise

    def _stateful_guard(self):
        """Thread-safety rule of stateful models: a ``stateful`` layer carries its state from one call to
        the next, so two threads calling one stateful model would interleave (and corrupt) each other's
        states. Such calls are refused: the second one raises RuntimeError while the first runs. Models
        without stateful layers need (and take) no lock."""
        if not any(getattr(layer, "stateful", False) for layer in self._layers):
            return contextlib.nullcontext()
        lock = self.__dict__.setdefault("_state_lock", threading.Lock())  # setdefault: one lock, even if raced
        return held_or_refused(
            lock,
            f"Model {self.name!r} has stateful layers and is already being called from another thread: "
            "a stateful layer carries its state between calls, so concurrent calls would mix their states. "
            "Give each thread its own model (e.g. load it once per thread), or serialize the calls",
        )

    # ---- description ------------------------------------------------------------------------
    def summary(self, line_length: int | None = None, print_fn: Callable[[str], None] | None = None,
                expand_nested: bool = False, show_trainable: bool = False, layer_range=None, positions=None) -> None:
        """Print a Keras-style table: Layer (type), Output Shape, Param #, and the totals; Keras's options:
        ``show_trainable`` (a Trainable column: Y, N, or - for a layer without weights), ``expand_nested``
        (a nested model's layers below it), ``layer_range`` (the rows from one layer name to another);
        ``positions`` (Keras's column proportions) is accepted and the columns fit their contents."""
        print_summary(self, line_length=line_length, print_fn=print_fn, expand_nested=expand_nested,
                      show_trainable=show_trainable, layer_range=layer_range)

    def get_config(self) -> dict:
        layers = []
        if self._input_layer is not None:
            layers.append({"class_name": "InputLayer", "config": self._input_layer.get_config()})
        layers += [{"class_name": "Sequential", "config": l._as_sequential.get_config()}
                   if l.__dict__.get("_as_sequential") is not None else
                   {"class_name": type(l).__name__, "config": l.get_config()} for l in self._layers]
        config = {"name": self.name, "trainable": self.trainable, "layers": layers}
        if self.built and self.input_shape is not None:  # (Keras 3: from_config builds the model for it)
            config["build_input_shape"] = list(self.input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        """A Sequential from its config (``get_config``'s, fastgru's or Keras's), layer by layer."""
        from .sequential_config import sequential_from_config

        return sequential_from_config(cls, config, custom_objects)

    # ---- training (fastgru.training.trainer) ----------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None, loss_weights=None,
                **execution) -> None:
        """Set the optimizer (name or instance), the loss, the metrics, the weighted metrics (those that
        weigh each sample by ``sample_weight`` or ``class_weight``) and the loss's weight (a number, or
        one in a list or a dict: the loss is multiplied by it), as Keras's compile. Keras's ``run_eagerly``,
        ``steps_per_execution``, ``jit_compile`` and ``auto_scale_loss`` are taken and change nothing."""
        from .training import trainer
        from .training.compiled import check_execution_options

        check_execution_options(**execution)
        trainer.compile_model(self, optimizer, loss, metrics, weighted_metrics, loss_weights)

    @property
    def metrics(self) -> list:
        """The loss tracker and the compiled metrics (as Keras's ``model.metrics``)."""
        compiled = getattr(self, "_compiled", None)
        return [] if compiled is None else [compiled.loss_tracker] + list(compiled.metrics or [])

    # ---- files (fastgru.io) -----------------------------------------------------------------
    def __reduce__(self):
        """Pickle as configuration + weights (+ compile configuration), never compiled code (fastgru._pickle)."""
        from ._pickle import reduce_model

        return reduce_model(self)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={[l.name for l in self._layers]}>"


registry.register_model("Sequential", Sequential)


from .cloning import clone_model  # noqa: E402,F401  (fg.models.clone_model, as keras.models.clone_model)
from .saving import load_model, model_from_json, save_model  # noqa: E402,F401  (keras.models' names)


def __getattr__(name: str):  # fg.models.Model, keras.models.Model: the Functional class (from the registry)
    if name == "Model":
        return registry.model_class("Functional")
    raise AttributeError(f"module 'fastgru.models' has no attribute {name!r}")
