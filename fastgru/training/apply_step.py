"""One optimizer step on a model's trainable weights, and the Keras names and paths of those weights that some
optimizers need (weight decay's exclusions by name, Muon's choice of rule by path)."""

from __future__ import annotations

import weakref

from ..variables import RECURRENT_CELLS


def _owned_paths(model, variables: list) -> dict[int, str]:
    """The id of each weight -> ``<layer name>/<weight path>`` (``gru/gru_cell/kernel``,
    ``bidirectional/forward_gru/gru_cell/kernel``), over the model's layers (nested models and wrappers included)."""
    found: dict[int, str] = {}

    def visit(layer):
        paths = getattr(layer, "weight_paths", None)
        if paths is not None and not getattr(layer, "_fg_model", False):
            for w, path in zip(layer.weights, paths):
                found.setdefault(id(w), f"{layer.name}/{_with_cell(layer, path)}")
            return
        for inner in getattr(layer, "layers", None) or []:
            visit(inner)

    visit(model)
    return found


def _with_cell(layer, path: str) -> str:
    """A recurrent layer's weight path with its cell, as Keras's paths hold it (``kernel`` -> ``gru_cell/kernel``;
    a Bidirectional's ``forward_gru/kernel`` -> ``forward_gru/gru_cell/kernel``)."""
    kind = type(layer).__name__
    inner = type(getattr(layer, "forward_layer", None)).__name__ if kind == "Bidirectional" else kind
    cell = RECURRENT_CELLS.get(inner)
    if cell is None:
        return path
    head, _, name = path.rpartition("/")
    return f"{head}/{cell}/{name}" if head else f"{cell}/{name}"


def variable_names(model, variables: list) -> list | None:
    """Keras's ``variable.name`` (``kernel``, ``bias``, ...) of each array in ``variables`` (a model's trainable
    weights), from its layers' weight paths (nested models and wrappers included); None where not found."""
    found = _owned_paths(model, variables)
    return [found[id(v)].rsplit("/", 1)[-1] if id(v) in found else None for v in variables]


def variable_paths(model, variables: list) -> list:
    """A Keras-like ``variable.path`` of each array in ``variables``: ``<layer name>/<weight path>``, a recurrent
    layer's cell included (Keras's own paths differ between a model built in code and one loaded; the layer's
    name, the cell's and the weight's are in both); None where not found."""
    found = _owned_paths(model, variables)
    return [found.get(id(v)) for v in variables]


#: optimizer -> the model it steps (a weak reference: the first model an optimizer steps is the one it serves)
_STEPPED_FOR: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def apply_to_model(optimizer, grads: list, model) -> None:
    """``optimizer.apply`` to ``model``'s trainable weights (with their names when weight decay excludes some
    by name)."""
    owner = _STEPPED_FOR.get(optimizer)
    if owner is not None and owner() is not None and owner() is not model:
        raise ValueError(f"this optimizer has been stepping model {owner().name!r}'s variables, not model "
                         f"{model.name!r}'s: an optimizer only updates the variables it was built with (as Keras's); "
                         "compile this model with a new optimizer instance")
    _STEPPED_FOR[optimizer] = weakref.ref(model)
    variables = model.trainable_weights
    optimizer.bind_model(model)
    names = variable_names(model, variables) if getattr(optimizer, "_no_decay_pattern", None) is not None else None
    optimizer.apply(grads, variables, names)
