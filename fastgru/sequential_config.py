"""``Sequential.from_config``: a Sequential model from its config, each layer from its own class's config (a
nested Sequential or Functional model too)."""

from __future__ import annotations

from .layers import registry
from .layers.core import _dimensions


def sequential_from_config(cls, config: dict, custom_objects: dict | None = None):
    """``cls`` (a Sequential class) built from ``config``'s ``layers`` list and ``build_input_shape`` (a script's
    own classes given in ``custom_objects``, as Keras's ``from_config`` takes them)."""
    with registry.custom_layers(custom_objects):
        return _from_config(cls, config)


def _from_config(cls, config: dict):
    from . import layers as layer_module

    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("Sequential.from_config expects a dict with a 'layers' list (as get_config returns), "
                         f"received {type(config).__name__}"
                         + (f" with keys {sorted(map(str, config))}" if isinstance(config, dict) else ""))
    model = cls(name=config.get("name"), trainable=config.get("trainable", True))
    for i, entry in enumerate(config["layers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise ValueError(f"Sequential.from_config: layer {i} should be a dict with 'class_name' and a 'config' "
                             f"dict, received {entry!r:.80}")
        name = entry.get("class_name")
        layer_cls = (registry.model_class("Functional") if name in ("Functional", "Model") else
                     registry.model_class("Sequential") if name == "Sequential" else
                     registry.lookup(name) or registry.custom_layer(name) or getattr(layer_module, str(name), None))
        if layer_cls is None:
            raise ValueError(f"Sequential.from_config: unknown layer class {name!r}")
        model.add(layer_cls.from_config(entry["config"]))
    shape = config.get("build_input_shape")
    if not model.built and isinstance(shape, (list, tuple)) and model._layers:
        model.build(_dimensions(shape, "build_input_shape", batch=True))
    return model
