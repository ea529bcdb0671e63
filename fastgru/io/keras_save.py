"""fastgru model -> Keras 3 config and weight paths (what ``save`` writes into .keras files)."""

from __future__ import annotations

from ..errors import UnsupportedKerasFeature
from .keras_config import _WRAPPER_LAYERS, _unique, snake_case, weights_subpath


# ---------------------------------------------------------------------------------------------
# fastgru model -> Keras 3 config (for .keras files)
# ---------------------------------------------------------------------------------------------
def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def keras3_layer_config(layer) -> dict:
    """The Keras 3 config entry (module, class_name, config, build_config) of a fastgru layer."""
    class_name = type(layer).__name__
    config = layer.get_config()
    config.pop("batch_input_shape", None)
    config["dtype"] = _policy(config.get("dtype", "float32"))
    for key in ("activation", "recurrent_activation"):
        if config.get(key) == "hard_sigmoid_keras2":
            raise UnsupportedKerasFeature(
                f"layer {layer.name!r}: Keras 2's hard_sigmoid has no Keras 3 equivalent; cannot save as .keras"
            )
    if class_name == "SeparableConv1D" and config.get("padding") == "causal":
        raise UnsupportedKerasFeature(
            f"layer {layer.name!r}: SeparableConv1D with padding='causal' (from a Keras 2 file) has no Keras 3 "
            "equivalent (Keras 3 refuses it); cannot save as .keras"
        )
    if class_name == "Dropout" and config.get("noise_shape") is not None:
        config["noise_shape"] = list(config["noise_shape"])
    if class_name == "TimeDistributed":
        config["layer"] = keras3_layer_config(layer.layer)
    if class_name == "Bidirectional":
        config["layer"] = keras3_layer_config(layer.forward_layer)
        config["backward_layer"] = keras3_layer_config(layer.backward_layer)
    entry = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if hasattr(layer, "keras_build_config") and layer.input_shape is not None:
        entry["build_config"] = layer.keras_build_config()
    elif layer.input_shape is not None:
        entry["build_config"] = {"input_shape": list(layer.input_shape)}
    return entry


def _serialized(obj, module: str):
    """A Keras 3 serialised object: plain names stay names, objects become class + config."""
    if isinstance(obj, str) or not hasattr(obj, "get_config"):
        return obj
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(), "registered_name": None}


def keras3_compile_config(model) -> dict | None:
    """The ``compile_config`` entry Keras 3 writes for a compiled model (None when not compiled), so
    that ``load_model`` (Keras's or fastgru's) returns the model compiled the same way."""
    compiled = getattr(model, "_compiled", None)
    if compiled is None:
        return None
    return {
        "optimizer": _serialized(compiled.optimizer, "keras.optimizers"),
        "loss": _serialized(compiled.loss, "keras.losses"),
        "loss_weights": None,
        "metrics": [_serialized(m, "keras.metrics") for m in compiled.metric_specs],
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def keras3_model_config(model) -> dict:
    if not model.built or model.input_shape is None:
        raise ValueError("save() needs a built model: call build(input_shape) or predict once first")
    input_entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                   "config": {"batch_shape": list(model.input_shape),
                              "dtype": "int32" if type(model.layers[0]).__name__ == "Embedding" else "float32",
                              "sparse": False, "ragged": False, "name": "input_layer", "optional": False}}
    config = {
        "module": "keras", "class_name": "Sequential", "registered_name": None,
        "config": {"name": model.name, "trainable": model.trainable, "dtype": _policy("float32"),
                   "layers": [input_entry] + [keras3_layer_config(l) for l in model.layers]},
        "build_config": {"input_shape": list(model.input_shape)},
    }
    compile_config = keras3_compile_config(model)
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def keras3_weight_paths(model) -> list[str]:
    """Where each layer's variables go in a Keras 3 weights file (same rule Keras uses); a
    Bidirectional layer's path is its group, which holds ``forward_layer`` and ``backward_layer``."""
    used: dict[str, int] = {}
    paths = []
    for layer in model.layers:
        class_name = type(layer).__name__
        key = _unique(snake_case(class_name), used)
        if class_name in _WRAPPER_LAYERS:
            paths.append(f"layers/{key}")
        else:
            paths.append(f"layers/{key}/{weights_subpath(class_name)}")
    return paths


def v3_var_groups(layer, path: str) -> list[tuple[str, int]]:
    """The Keras 3 weights-file groups holding ``layer``'s variables, with how many each holds, in
    the layer's weight order: ``[(path, n)]``, or the two inner layers' ``cell/vars`` of a Bidirectional."""
    groups = getattr(layer, "keras_var_groups", None)
    if groups is not None:  # variables in sublayers below the layer's own path (MultiHeadAttention's)
        own = path[: -len("/vars")] if path.endswith("/vars") else path
        return [(f"{own}/{group}", n) for group, n in groups()]
    if type(layer).__name__ == "TimeDistributed":
        return [(f"{path}/layer/vars", len(layer.weights))]
    if type(layer).__name__ in _WRAPPER_LAYERS:
        return [(f"{path}/{side}/cell/vars", len(inner.weights))
                for side, inner in (("forward_layer", layer.forward_layer), ("backward_layer", layer.backward_layer))]
    return [(path, len(layer.weights))]
