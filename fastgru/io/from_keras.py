"""``fg.from_keras``: convert a live Keras 3 or tf_keras model. The only place fastgru imports keras,
lazily, inside the function."""

from __future__ import annotations

import json

from ..errors import UnsupportedKerasFeature
from . import keras_config


def from_keras(keras_model):
    """Convert a live Keras (3, or tf_keras 2) model into a fastgru Sequential (imports keras only here)."""
    module = type(keras_model).__module__
    if module.startswith("tf_keras") or module.startswith("tensorflow.python.keras"):
        import tf_keras as keras_module  # noqa: F401  (Keras 2 semantics)

        version = keras_module.__version__
    else:
        import keras as keras_module

        version = keras_module.__version__
    try:  # the same JSON config a saved file holds (get_config() may hold live tensors)
        config = json.loads(keras_model.to_json())
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnsupportedKerasFeature(f"cannot serialise the Keras model's config: {exc}") from None
    spec = keras_config.parse_model(config, "<live keras model>", version)
    from . import build_model

    model = build_model(spec, version, "<live keras model>")
    by_name = {}

    def index(m):
        for layer in getattr(m, "layers", []):
            by_name[layer.name] = layer
            index(layer)

    index(keras_model)
    for layer, s in zip(model.layers, spec.layers):
        source = by_name.get(s.config.get("name"))
        if source is None:
            raise UnsupportedKerasFeature(f"layer {s.config.get('name')!r} not found in the Keras model")
        if layer.weights:
            layer.set_weights(source.get_weights())
    model.file_format = "live Keras model"
    return model
