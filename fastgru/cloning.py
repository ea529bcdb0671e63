"""``fg.models.clone_model``: Keras's ``clone_model``, a model of the same architecture whose layers are made
anew from their configs (so with freshly initialized weights, as Keras's default ``clone_function`` makes them),
compiled as the model was (a fresh optimizer of its configuration), as Keras 3's."""

from __future__ import annotations

from .errors import UnsupportedKerasFeature
from .layers import registry


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive: bool = False,
                **kwargs):
    """A new ``Sequential`` or Functional ``Model`` like ``model``: the same layers, names and options (nested
    models cloned too), new weights from each layer's initializers, compiled as ``model`` was with a fresh
    optimizer (Keras's ``clone_model`` with its defaults). Copy the weights with
    ``clone.set_weights(model.get_weights())``."""
    from .io.functional_save import functional_config
    from .io.keras_functional import model_from_config

    # (the classes through the registry: fastgru.models imports this module to offer clone_model)
    Sequential, Model = registry.model_class("Sequential"), registry.model_class("Functional")

    if input_tensors is not None or clone_function is not None or call_function is not None or kwargs:
        given = [name for name, value in (("input_tensors", input_tensors), ("clone_function", clone_function),
                                          ("call_function", call_function)) if value is not None] + sorted(kwargs)
        raise UnsupportedKerasFeature(f"clone_model: {', '.join(given)} not supported (fastgru clones a model from "
                                      "its config, as clone_model's defaults do)")
    if not isinstance(model, (Sequential, Model)):
        raise TypeError(f"clone_model expects a Sequential or Functional model, received {type(model).__name__}")
    with registry.custom_layers(registry.script_classes(model._layers_and_ops)):  # (a script's own layers, cells)
        clone = (Sequential.from_config(model.get_config()) if isinstance(model, Sequential)
                 else model_from_config(functional_config(model)))
    if getattr(model, "_compiled", None) is not None:  # (Keras 3.15 compiles the clone from the compile config)
        from .io.compile_restore import restore_compile

        restore_compile(clone, model.get_compile_config(), "<clone_model>", "3")
    return clone
