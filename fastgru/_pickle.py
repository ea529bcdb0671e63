"""Pickling of models and layers as configuration + weights (``Sequential.__reduce__``, ``Layer.__reduce__``).

What travels (for a layer): its class (by reference), ``get_config()``, whether it was built and for
which input shape, its weights (``get_weights()``, Keras order, exact bytes) and its random generator
(dropout draws continue where they were). For a ``Sequential``: its name, ``trainable``, its input
layer and layers (each pickled as above), its input shape, and when compiled the compile
configuration: the optimizer (with its state: slots and step count, so training goes on where it was, as
after ``load_model`` of a saved file and as a pickled Functional model's), the loss object and the metric
specs given to ``compile``.

What does not travel: compiled Numba code (each process loads it from Numba's on-disk cache or
compiles it on first use), metric running totals, the history, a stateful layer's carried state (it starts
from zeros, as after ``reset_states()``), thread settings.

Unpickling builds each layer (running its initializers on the layer's own generator) and then
copies the weights in; the library's global generator (``fg.set_random_seed``) is left exactly as it
was, so unpickling never changes a seeded run's random stream.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from . import random as _random

_FORMAT = 1  # bumped if the pickled layout changes; older layouts stay readable


@contextmanager
def _global_rng_untouched():
    """Restore the global generator's state after constructors that draw from it (``make_rng``)."""
    rng = _random.global_rng()
    state = rng.bit_generator.state
    try:
        yield
    finally:
        rng.bit_generator.state = state


# ---- layers ---------------------------------------------------------------------------------


def layer_state(layer) -> dict[str, Any]:
    """The picklable description of ``layer``: class, config, build shape, weights, generator."""
    state: dict[str, Any] = {
        "format": _FORMAT,
        "config": layer.get_config(),
        "built": bool(layer.built),
        "input_shape": None if layer.input_shape is None else tuple(layer.input_shape),
        "weights": layer.get_weights() if layer.built else [],
    }
    rng = getattr(layer, "_rng", None)
    if isinstance(rng, np.random.Generator):
        state["rng"] = rng.bit_generator.state
    if getattr(layer, "keras2_semantics", False):  # (a layer from a tf_keras file keeps tf_keras's behaviour)
        state["keras2_semantics"] = True
    return state


def reduce_layer(layer) -> tuple:
    """``Layer.__reduce__``: ``(rebuild_layer, (cls, state))``."""
    return rebuild_layer, (type(layer), layer_state(layer))


def rebuild_layer(cls: type, state: dict[str, Any]):
    """Recreate a layer from :func:`layer_state`'s description (the inverse of :func:`reduce_layer`)."""
    with _global_rng_untouched():
        layer = cls.from_config(dict(state["config"]))
    if state["built"] and not layer.built:
        layer.build(tuple(state["input_shape"]))
    if state["weights"]:
        layer.set_weights(state["weights"])
    if "rng" in state and isinstance(getattr(layer, "_rng", None), np.random.Generator):
        layer._rng.bit_generator.state = state["rng"]
    if state.get("keras2_semantics") and hasattr(layer, "use_keras2_semantics"):
        layer.use_keras2_semantics()
    return layer


# ---- models ---------------------------------------------------------------------------------


def _compile_state(model) -> dict[str, Any] | None:
    compiled = getattr(model, "_compiled", None)
    if compiled is None:
        return None
    optimizer = compiled.optimizer
    return {
        "optimizer": optimizer,  # (the object: its state, slots and step count, travels, as a Functional model's)
        "loss": compiled.loss_spec if isinstance(compiled.loss_spec, str) else compiled.loss,  # ("mse" as given)
        "metrics": list(compiled.metric_specs),
        "weighted_metrics": list(compiled.weighted_specs),
        "loss_weights": compiled.loss_weights_spec,
    }


def model_state(model) -> dict[str, Any]:
    """The picklable description of a ``Sequential`` (see the module docstring)."""
    return {
        "format": _FORMAT,
        "name": model.name,
        "trainable": model.trainable,
        "input_layer": model._input_layer,
        "layers": [layer.__dict__.get("_as_sequential") or layer for layer in model._layers],  # (nested: as added)
        "built": bool(model.built),
        "input_shape": None if model.input_shape is None else tuple(model.input_shape),
        "compile": _compile_state(model),
        "keras_functional": bool(model.__dict__.get("_keras_functional")),  # (a file's Functional chain)
    }


def reduce_model(model) -> tuple:
    """``Sequential.__reduce__``: ``(rebuild_model, (cls, state))``."""
    return rebuild_model, (type(model), model_state(model))


def rebuild_model(cls: type, state: dict[str, Any]):
    """Recreate a ``Sequential`` from :func:`model_state`'s description (layers already unpickled)."""
    model = cls(name=state["name"], trainable=state["trainable"])
    if state["input_layer"] is not None:
        model.add(state["input_layer"])
    for layer in state["layers"]:
        model.add(layer)
    if state["built"] and not model.built:
        model.build(tuple(state["input_shape"]))
    model._keras_functional = state.get("keras_functional", False)
    compile_state = state["compile"]
    if compile_state is not None:
        optimizer = compile_state["optimizer"]
        if isinstance(optimizer, tuple):  # (pickled before 2026-12-06: the class and its config, no state)
            optimizer = optimizer[0].from_config(dict(optimizer[1]))
        weighted = compile_state.get("weighted_metrics") or None  # (not in states pickled before 2026-12)
        for spec in compile_state["metrics"] + (weighted or []):  # running totals do not travel
            if hasattr(spec, "reset_state"):
                spec.reset_state()
        model.compile(optimizer=optimizer, loss=compile_state["loss"],
                      metrics=compile_state["metrics"], weighted_metrics=weighted,
                      loss_weights=compile_state.get("loss_weights"))
    return model
