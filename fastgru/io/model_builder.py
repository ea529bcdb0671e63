"""A parsed Keras model config -> the fastgru model that receives the file's weights (the one builder
every source of config and weights feeds: .keras, .h5, SavedModel directories, live Keras models)."""

from __future__ import annotations

from contextlib import nullcontext

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from ..layers.build_settings import WeightBudgetExceeded, placeholder_weights, weight_budget
from ..variables import unscoped
from . import keras_config


def build_model(spec: keras_config.ModelSpec, version: str | None, path, weight_bytes: int | None = None):
    """The fastgru Sequential for a parsed Keras model config (weights not yet loaded).

    ``weight_bytes``: the bytes the weights take in the file as stored (for a .keras zip: the compressed
    size of model.weights.h5, not what it inflates to). The layers may then create at most one weight
    element per 2 of those bytes (float16 being the smallest float a file can hold), so a config whose
    sizes were damaged (units=10**9), or a small file that inflates to a large one, is refused before
    it allocates anything.
    """
    Sequential = registry.model_class("Sequential")

    major = keras_config.keras_major(version)
    layers = [keras_config.build_layer(s, major, path) for s in spec.layers]
    seen: set[str] = set()
    for layer in layers:  # flattening nested models may repeat a name; Sequential needs unique ones
        if layer.name in seen:
            k = 1
            while f"{layer.name}_{k}" in seen:
                k += 1
            layer.name = f"{layer.name}_{k}"
        seen.add(layer.name)
    shape = keras_config.input_shape_of(spec, path)
    budget = weight_bytes // 2 if weight_bytes is not None else None
    try:
        # every weight is about to come from the file: zeros instead of running the initializers
        with weight_budget(budget) if budget is not None else nullcontext(), placeholder_weights(), unscoped():
            model = Sequential(name=spec.name)
            if spec.input_name is not None:  # (named as in the file: model.inputs, a dict of inputs keyed by it)
                model.add(registry.model_class("InputLayer")(batch_shape=tuple(shape), name=spec.input_name,
                                                             dtype=spec.input_dtype))
            for layer in layers:
                model.add(layer)
            if not model.built:
                model.build(tuple(shape))
    except (ModelFileError, UnsupportedKerasFeature):
        raise
    except WeightBudgetExceeded as exc:
        raise ModelFileError(path, f"the config implies more weights than the file can hold ({exc}; the weights "
                                   f"take {weight_bytes} bytes in the file): damaged or inconsistent file") from None
    except Exception as exc:  # noqa: BLE001  (whatever the layers say about a bad config, it is the file's fault)
        raise ModelFileError(path, f"the layer configs do not fit together ({type(exc).__name__}: {exc})") from exc
    model.keras_version = version
    model._keras_functional = spec.functional  # (model.layers as Keras's Functional lists them: models.py)
    model._file_input_dtype = spec.input_dtype  # (written back by save: a float64 model's input stays float64)
    model._keras_v3_paths = [s.v3_path for s in spec.layers]  # where the file's Keras model kept each layer
    model._keras_v3_layers = list(model._layers_and_ops)  # (the layers those paths are for: save_weights checks them)
    return model
