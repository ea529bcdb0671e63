"""Where a Functional model's layers keep their variables in a Keras 3 weights file: ``weight_groups``
(nested models and a TimeDistributed's model expanded below their own paths), shared by loading
(:mod:`fastgru.io.keras_functional`) and saving (:mod:`fastgru.io.functional_save`); ``uses_graph``, whether
a model is saved and weighted that way."""

from __future__ import annotations

from .keras_config import LayerSpec, _unique, keras_class_name, layer_vars_path, snake_case


def weight_groups(model, prefix: str = "") -> list:
    """[(layer, layer path)] for every layer with weights in Keras 3's layout (nested models expanded)."""
    out = []
    used: dict[str, int] = {}
    layers = model._layers_and_ops
    for layer in layers:
        layer = layer.__dict__.get("_as_sequential") or layer  # (a Sequential nested by Sequential.add)
        cls = type(layer).__name__
        if cls == "InputLayer" and not getattr(model, "_fg_model", False):
            continue
        # (a layer built from a Keras TimeDistributed counts as one: keras_class_name)
        key = _unique(snake_case("Functional" if getattr(layer, "_fg_model", False) else keras_class_name(layer)), used)
        path = f"{prefix}layers/{key}"
        if getattr(layer, "_fg_model", False) or cls == "Sequential":
            out.append((None, path))
            out.extend(weight_groups(layer, path + "/"))
        elif cls == "TimeDistributed" and getattr(layer.layer, "_fg_model", False):  # the model below <path>/layer
            out.extend([(None, path), (None, path + "/layer")] + weight_groups(layer.layer, path + "/layer/"))
        else:
            out.append((layer, path))
    return out


def uses_graph(model) -> bool:
    """True for a Functional model, or a Sequential holding one (saved and weighted by this module)."""
    if getattr(model, "_fg_model", False):
        return True
    return type(model).__name__ == "Sequential" and any(
        uses_graph(layer) or (type(layer).__name__ == "TimeDistributed" and uses_graph(layer.layer))
        for layer in model._layers_and_ops)


def v3_leaves(model) -> tuple[list, list]:
    """(layers, LayerSpecs) where a Functional model's layers find their variables in a Keras 3 weights
    file (``load_weights``): the paths :func:`write_weights` and Keras use."""
    layers, specs = [], []
    for layer, own in weight_groups(model):
        if layer is None:
            continue
        layers.append(layer)
        specs.append(LayerSpec(type(layer).__name__, {}, layer_vars_path(layer, own), layer.name))
    return layers, specs
