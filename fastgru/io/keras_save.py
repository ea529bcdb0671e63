"""fastgru model -> Keras 3 config and weight paths (what ``save`` writes into .keras files)."""

from __future__ import annotations

from .. import initializers
from ..errors import UnsupportedKerasFeature
from ..layers import registry
from .keras_config import (
    _WRAPPER_LAYERS,
    TIME_DISTRIBUTED_ATTR,
    _unique,
    keras_class_name,
    layer_vars_path,
    snake_case,
)


# ---------------------------------------------------------------------------------------------
# fastgru model -> Keras 3 config (for .keras files)
# ---------------------------------------------------------------------------------------------
def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def keras3_layer_config(layer, *, rewrap: bool = True) -> dict:
    """The Keras 3 config entry (module, class_name, config, build_config) of a fastgru layer. A layer built
    from a Keras TimeDistributed (``keras_config.TIME_DISTRIBUTED_ATTR``) is written inside that wrapper
    again (unless ``rewrap`` is False), as the Keras model had it and as its weights path names it."""
    marker = getattr(layer, TIME_DISTRIBUTED_ATTR, None)
    if rewrap and marker is not None:
        return _time_distributed_entry(layer, marker)
    class_name = getattr(type(layer), "keras_config_name", type(layer).__name__)  # (GroupQueryAttention's)
    config = layer.get_config()
    config.pop("batch_input_shape", None)
    for key in [k for k in config if k.endswith("_initializer")]:  # (an initializer object: Keras's config of it)
        config[key] = initializers.serialize(config[key])
    config["dtype"] = _policy(config.get("dtype", "float32"))
    for key in ("activation", "recurrent_activation"):
        if config.get(key) == "hard_sigmoid_keras2":
            raise UnsupportedKerasFeature(
                f"layer {layer.name!r}: Keras 2's hard_sigmoid has no Keras 3 equivalent; cannot save it in a Keras 3 "
                "file (.keras or .h5): pickle the model, or save its weights (model.save_weights)"
            )
    if class_name == "SeparableConv1D" and config.get("padding") == "causal":
        raise UnsupportedKerasFeature(
            f"layer {layer.name!r}: SeparableConv1D with padding='causal' (from a Keras 2 file) has no Keras 3 "
            "equivalent (Keras 3 refuses it); cannot save it in a Keras 3 file (.keras or .h5): pickle the model, or "
            "save its weights (model.save_weights)"
        )
    if class_name == "Dropout" and config.get("noise_shape") is not None:
        config["noise_shape"] = list(config["noise_shape"])
    if class_name == "TimeDistributed" and not getattr(layer.layer, "_fg_model", False):  # (a model: functional_save)
        config["layer"] = keras3_layer_config(layer.layer)
    if class_name == "RNN":  # (a script's own cell, looped: layers/cell_rnn.py)
        config["cell"] = keras3_layer_config(layer.cell)
    if class_name == "Bidirectional":
        config["layer"] = keras3_layer_config(layer.forward_layer)
        config["backward_layer"] = keras3_layer_config(layer.backward_layer)
        if not layer.trainable:  # (a frozen wrapper's directions are frozen: Keras 3 writes them so, tf_keras did not)
            config["layer"]["config"]["trainable"] = config["backward_layer"]["config"]["trainable"] = False
    entry = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if getattr(type(layer), "_fg_user_layer", False):  # (a script's own layer: Keras loads it from custom_objects)
        entry.update(module=None, class_name=type(layer).__name__, registered_name=layer.__dict__.get(
            "_fg_registered_name") or type(layer).__dict__.get("_fg_registered_name") or type(layer).__name__)
    if hasattr(layer, "keras_build_config") and layer.input_shape is not None:
        entry["build_config"] = layer.keras_build_config()
    elif layer.input_shape is not None:
        entry["build_config"] = {"input_shape": list(layer.input_shape)}
    return entry


def _time_distributed_entry(layer, marker: dict) -> dict:
    """Keras's TimeDistributed entry around ``layer`` (built from one): the wrapper takes the layer's name,
    the inner layer its own name from the Keras model and a build_config of one step (Keras builds it so)."""
    inner = keras3_layer_config(layer, rewrap=False)
    inner_name = marker.get("inner_name") if isinstance(marker, dict) else None
    inner["config"]["name"] = inner_name if isinstance(inner_name, str) else snake_case(type(layer).__name__)
    entry = {"module": "keras.layers", "class_name": "TimeDistributed", "registered_name": None,
             "config": {"name": layer.name, "trainable": layer.trainable, "dtype": inner["config"]["dtype"],
                        "layer": inner}}
    shape = layer.input_shape
    if shape is not None and len(shape) >= 3:
        inner["build_config"] = {"input_shape": [shape[0], *shape[2:]]}
        entry["build_config"] = {"input_shape": list(shape)}
    return entry


def _serialized(obj, module: str):
    """A Keras 3 serialised object: plain names stay names, objects become module + class + config (Keras's
    own objects through their configs, ``training/keras_objects.py``; a config dict gets Keras's keys)."""
    from ..training.keras_objects import keras_config

    if obj is None or isinstance(obj, str):
        return obj
    if type(obj).__name__ == "LossFunctionWrapper":  # (a script's loss function: by name, with its options)
        if not obj._fn_kwargs:
            obj = obj.fn
        else:  # (where Keras's deserializer finds its class)
            return {"module": "keras.src.losses.losses", "class_name": "LossFunctionWrapper",
                    "config": obj.get_config(), "registered_name": "LossFunctionWrapper"}
    converted = keras_config(obj)  # a Keras object given to compile: its name or class + config
    if isinstance(converted, str):
        return converted
    if converted is None and isinstance(obj, dict):  # already serialized (a file's compile_config compiled again)
        if "class_name" not in obj or "config" not in obj:
            return obj
        converted = obj
    if converted is None:
        if callable(obj) and not hasattr(obj, "get_config") and not isinstance(obj, type):  # a script's function
            return {"module": "builtins", "class_name": "function", "config": registry.function_name(obj),
                    "registered_name": "function"}
        if not hasattr(obj, "get_config"):
            return obj
        if not type(obj).__module__.startswith("fastgru."):  # (a script's own class: found by its registered name)
            return {"module": None, "class_name": type(obj).__name__, "config": obj.get_config(),
                    "registered_name": getattr(type(obj), "_fg_registered_name", None) or type(obj).__name__}
        config = obj.get_config()
        if module == "keras.losses" and getattr(obj, "delta", 1.0) != 1.0 and "delta" not in config:
            config = dict(config, delta=obj.delta)  # (Keras's Huber.get_config omits delta; from_config takes it)
        converted = {"class_name": type(obj).__name__, "config": config}
    return {"module": converted.get("module", module), "class_name": converted["class_name"],
            "config": converted["config"], "registered_name": converted.get("registered_name")}


def _weights(value):
    """loss_weights as JSON: a number, a list or a dict keyed by output name (None kept)."""
    if isinstance(value, dict):
        return {str(k): None if v is None else float(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [None if v is None else float(v) for v in value]
    return None if value is None else float(value)


def _metrics_tree(value, names):
    """Metrics as given to compile (one, a list, a list per output, a dict keyed by output name), serialized."""
    from ..training.keras_objects import is_serialized

    if isinstance(value, (list, tuple)):
        return [_metrics_tree(v, names) for v in value]
    if isinstance(value, dict) and not is_serialized(value, names):
        return {str(k): _metrics_tree(v, names) for k, v in value.items()}
    return _serialized(value, "keras.metrics")


def _functional_losses(compiled):
    """A Functional model's losses in the form given to compile (one, a list in output order, a dict keyed by
    output name), each object written as the loss fastgru resolved it to."""
    from ..training.keras_objects import is_serialized

    loss, names = compiled.spec[0], compiled.names

    def leaf(value, k):
        return value if value is None or isinstance(value, str) else _serialized(compiled.losses[k], "keras.losses")

    if isinstance(loss, dict) and not is_serialized(loss, names):
        return {str(key): leaf(value, names.index(key)) for key, value in loss.items()}
    if isinstance(loss, (list, tuple)) and len(loss) == len(names) and (len(names) > 1 or len(loss) == 1):
        return [leaf(value, k) for k, value in enumerate(loss)]
    return leaf(loss, 0)


def keras3_compile_config(model) -> dict | None:
    """The ``compile_config`` entry Keras 3 writes for a compiled model (None when not compiled), so
    that ``load_model`` (Keras's or fastgru's) returns the model compiled the same way. A Functional
    model's losses, loss_weights and metrics keep the form given to compile (one, a list in output order,
    a dict keyed by output name), as Keras writes them."""
    compiled = getattr(model, "_compiled", None)
    if compiled is None:
        return None
    if hasattr(compiled, "losses"):  # a Functional model (training/multi_output.MultiCompiled)
        _, loss_weights, metrics, weighted = compiled.spec
        loss, loss_weights = _functional_losses(compiled), _weights(loss_weights)
        metrics = _metrics_tree(metrics, compiled.names) if metrics is not None else None
        weighted = _metrics_tree(weighted, compiled.names) if weighted is not None else None
    else:
        spec = getattr(compiled, "loss_spec", None)
        loss = _serialized(spec if isinstance(spec, str) else compiled.loss, "keras.losses")
        loss_weights = _weights(getattr(compiled, "loss_weights_spec", None))
        metrics = ([_serialized(m, "keras.metrics") for m in compiled.metric_specs]
                   if getattr(compiled, "metrics_given", True) else None)
        weighted = [_serialized(m, "keras.metrics") for m in compiled.weighted_specs] or None
    return {
        "optimizer": _serialized(compiled.optimizer, "keras.optimizers"),
        "loss": loss,
        "loss_weights": loss_weights,
        "metrics": metrics,
        "weighted_metrics": weighted,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _input_dtype(model) -> str:
    """The Sequential's input dtype as Keras's InputLayer holds it: its Input's, or the file's it came from; else
    int32 before an Embedding, float64 before a float64 layer, float32."""
    given = getattr(model._input_layer, "input_dtype", None) or getattr(model, "_file_input_dtype", None)
    if isinstance(given, str):
        return given
    first = model._layers_and_ops[0]
    if type(first).__name__ == "Embedding":
        return "int32"
    return "float64" if getattr(first, "dtype", None) == "float64" else "float32"


def keras3_model_config(model) -> dict:
    if not model.built or model.input_shape is None:
        raise ValueError("save() needs a built model: call build(input_shape) or predict once first")
    input_entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                   "config": {"batch_shape": list(model.input_shape), "dtype": _input_dtype(model),
                              "sparse": False, "ragged": False,
                              "name": getattr(model._input_layer, "name", "input_layer"), "optional": False}}
    config = {
        "module": "keras", "class_name": "Sequential", "registered_name": None,
        "config": {"name": model.name, "trainable": model.trainable, "dtype": _policy("float32"),
                   "layers": [input_entry] + [keras3_layer_config(l) for l in model._layers_and_ops]},
        "build_config": {"input_shape": list(model.input_shape)},
    }
    compile_config = keras3_compile_config(model)
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def keras3_weight_paths(model) -> list[str]:
    """Where each layer's variables go in a Keras 3 weights file of a flat Sequential of ``model``'s layers
    (the config ``save`` writes; same rule Keras uses): a wrapper's path is its group, which holds
    ``forward_layer`` and ``backward_layer`` (a Bidirectional) or ``layer``; a layer built from a Keras
    TimeDistributed is named as that wrapper, its variables under ``layer/vars``."""
    used: dict[str, int] = {}
    return [layer_vars_path(layer, f"layers/{_unique(snake_case(keras_class_name(layer)), used)}")
            for layer in model._layers_and_ops]


def v3_var_groups(layer, path: str) -> list[tuple[str, int]]:
    """The Keras 3 weights-file groups holding ``layer``'s variables, with how many each holds, in
    the layer's weight order: ``[(path, n)]``, or the two inner layers' ``cell/vars`` of a Bidirectional."""
    groups = getattr(layer, "keras_var_groups", None)
    if groups is not None:  # variables in sublayers below the layer's own path (MultiHeadAttention's)
        own = path[: -len("/vars")] if path.endswith("/vars") else path
        if type(layer).__name__ == "RNN" and own.endswith("/cell"):  # (a script's cell looped: its groups name cell/)
            own = own[: -len("/cell")]
        return [(f"{own}/{group}", n) for group, n in groups()]
    if type(layer).__name__ == "TimeDistributed":  # the inner layer's groups below <path>/layer
        return v3_var_groups(layer.layer, layer_vars_path(layer.layer, f"{path}/layer"))
    if type(layer).__name__ in _WRAPPER_LAYERS:
        return [(f"{path}/{side}/cell/vars", len(inner.weights))
                for side, inner in (("forward_layer", layer.forward_layer), ("backward_layer", layer.backward_layer))]
    return [(path, len(layer.weights))]
