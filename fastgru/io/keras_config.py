"""Keras model/layer configs (Keras 2 and Keras 3 flavours) <-> fastgru layers.

Loading walks the model config into a flat chain of :class:`LayerSpec` (nested Sequential models
and plain-chain Functional models are flattened), each knowing where its weights live in a Keras 3
weights file (by class-based path, as Keras's saving_lib names them) and in a legacy HDF5 file (by
top-level layer name). Every option that changes the forward math and that fastgru does not have
raises UnsupportedKerasFeature naming the layer class, the layer name and the option.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from .. import activations
from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import GRU, Activation, Dense, Dropout, Embedding, InputLayer, Masking

MODEL_CLASSES = ("Sequential", "Functional", "Model")
#: keys every layer config may carry that need no translation
_COMMON = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape", "batch_size",
           "input_dim", "input_length"}
#: options that only shape training (fastgru ignores them at load, with a warning when set)
_TRAINING_ONLY = {"kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                  "embeddings_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint",
                  "embeddings_constraint"}
#: per class: the fastgru arguments taken over as they are, and options accepted with a required value
_LAYERS = {
    "GRU": (GRU, {"units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                  "recurrent_initializer", "bias_initializer", "dropout", "recurrent_dropout", "return_sequences",
                  "return_state", "go_backwards", "stateful", "unroll", "reset_after", "seed",
                  "zero_output_for_mask"},
            {"time_major": False, "implementation": None, "use_cudnn": None}),
    "Dense": (Dense, {"units", "activation", "use_bias", "kernel_initializer", "bias_initializer"},
              {"lora_rank": None, "lora_alpha": None, "quantization_config": None}),
    "Dropout": (Dropout, {"rate", "noise_shape", "seed"}, {}),
    "Masking": (Masking, {"mask_value"}, {}),
    "Activation": (Activation, {"activation"}, {}),
    "Embedding": (Embedding, {"input_dim", "output_dim", "embeddings_initializer", "mask_zero"},
                  {"lora_rank": None, "lora_alpha": None, "sparse": False, "quantization_config": None}),
}
#: layers whose TimeDistributed wrapper computes exactly what the layer does on (B, T, D)
_TIME_DISTRIBUTABLE = {"Dense", "Activation", "Dropout"}
#: Keras weights live in the RNN cell: <layer path>/cell/vars in Keras 3 files
_CELL_LAYERS = {"GRU"}


def snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (the rule behind weight paths in .keras files)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


@dataclass
class LayerSpec:
    class_name: str
    config: dict
    v3_path: str  # e.g. "layers/gru_1/cell/vars"
    legacy_group: str  # top-level layer name: the group of a legacy .h5 holding the weights


@dataclass
class ModelSpec:
    name: str
    input_batch_shape: tuple | None
    layers: list[LayerSpec] = field(default_factory=list)
    input_dtype: str | None = None


def keras_major(version: str | None) -> int:
    """3 for Keras 3 files, 2 for tf.keras / tf_keras 2.x ones (unknown versions count as 3)."""
    if not version:
        return 3
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 3


# ---------------------------------------------------------------------------------------------
# model configs -> flat chain
# ---------------------------------------------------------------------------------------------
def _entry(entry, path, where: str) -> tuple[str, dict]:
    if not isinstance(entry, dict) or "class_name" not in entry:
        raise ModelFileError(path, f"{where}: expected a layer entry with 'class_name' and 'config', found {entry!r:.80}")
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(path, f"{where}: layer config of {entry['class_name']} is not a dict")
    return entry["class_name"], config


def _batch_shape(config: dict):
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    return None if shape is None else tuple(shape)


def _inbound_names(entry: dict) -> list[str]:
    """Names of the layers feeding ``entry`` in a Functional config (Keras 2 or 3 node format)."""
    names = []

    def walk(obj):
        if isinstance(obj, dict):
            history = obj.get("config", {}).get("keras_history") if obj.get("class_name") == "__keras_tensor__" else None
            if history:
                names.append(history[0])
                return
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):  # Keras 2: [name, 0, 0, {}]
                names.append(obj[0])
                return
            for v in obj:
                walk(v)

    walk(entry.get("inbound_nodes", []))
    return names


def _functional_chain(config: dict, path) -> list[dict]:
    """Order a Functional config's layers as a chain, or refuse a graph that is not a plain chain."""
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ModelFileError(path, "Functional model config has no 'layers' list")
    by_name = {e.get("config", {}).get("name", e.get("name")): e for e in entries}
    inputs = [e for e in entries if e.get("class_name") == "InputLayer"]
    if len(inputs) != 1:
        raise UnsupportedKerasFeature(
            f"Functional model with {len(inputs)} inputs: fastgru loads models that are a plain chain of layers"
        )
    consumers: dict[str, list[str]] = {}
    for e in entries:
        name = e.get("config", {}).get("name", e.get("name"))
        sources = _inbound_names(e)
        if e.get("class_name") != "InputLayer" and len(sources) != 1:
            raise UnsupportedKerasFeature(
                f"layer {name!r} ({e.get('class_name')}) has {len(sources)} inputs: fastgru loads models "
                "that are a plain chain of layers"
            )
        for s in sources:
            consumers.setdefault(s, []).append(name)
    chain = [inputs[0]]
    current = inputs[0].get("config", {}).get("name")
    while consumers.get(current):
        nexts = consumers[current]
        if len(nexts) != 1:
            raise UnsupportedKerasFeature(
                f"layer {current!r} feeds {len(nexts)} layers ({', '.join(nexts)}): fastgru loads models that are "
                "a plain chain of layers"
            )
        current = nexts[0]
        chain.append(by_name[current])
    if len(chain) != len(entries):
        raise UnsupportedKerasFeature("Functional model is not a plain chain of layers (some layers are off the chain)")
    return chain


def parse_model(model_config, path, keras_version: str | None) -> ModelSpec:
    """Flatten a Keras model config into the chain of layers fastgru builds."""
    class_name, config = _entry(model_config, path, "model config")
    if class_name not in MODEL_CLASSES:
        raise UnsupportedKerasFeature(
            f"model class {class_name!r}: fastgru loads Sequential models and Functional plain chains"
        )
    spec = ModelSpec(name=config.get("name", "sequential"), input_batch_shape=None)
    _collect(class_name, config, "", None, spec, path, top=True)
    if not spec.layers:
        raise ModelFileError(path, "the model has no layers")
    return spec


def _collect(class_name, config, prefix, legacy_group, spec: ModelSpec, path, top=False):
    if class_name == "Sequential":
        entries = config.get("layers") if isinstance(config, dict) else config
        if not isinstance(entries, list):
            raise ModelFileError(path, "Sequential config has no 'layers' list")
    else:
        entries = _functional_chain(config, path)
    used: dict[str, int] = {}
    for i, entry in enumerate(entries):
        lcls, lcfg = _entry(entry, path, f"layer {i}")
        key = snake_case(lcls)
        if lcls == "InputLayer":
            if class_name != "Sequential":  # Functional.layers includes its InputLayer (a saveable)
                _unique(key, used)
            if spec.input_batch_shape is None:
                spec.input_batch_shape = _batch_shape(lcfg)
                spec.input_dtype = lcfg.get("dtype") if isinstance(lcfg.get("dtype"), str) else None
            continue
        name_key = _unique(key, used)
        layer_path = f"{prefix}layers/{name_key}"
        group = legacy_group or lcfg.get("name", name_key)
        if lcls in MODEL_CLASSES:
            _collect(lcls, lcfg, layer_path + "/", group, spec, path)
            continue
        if lcls == "TimeDistributed":
            # TimeDistributed(Dense/Activation/Dropout) is the inner layer applied on the last axis:
            # the same math as the inner layer on (B, T, D); its weights live under <path>/layer/vars
            inner_cls, inner_cfg = _entry(lcfg.get("layer"), path, f"layer {lcfg.get('name')!r} (TimeDistributed)")
            if inner_cls not in _TIME_DISTRIBUTABLE:
                raise UnsupportedKerasFeature(
                    f"layer {lcfg.get('name')!r}: TimeDistributed({inner_cls}) is not supported "
                    f"(supported inner layers: {', '.join(sorted(_TIME_DISTRIBUTABLE))})"
                )
            inner_cfg = dict(inner_cfg, name=lcfg.get("name", inner_cfg.get("name")))
            spec.layers.append(LayerSpec(inner_cls, inner_cfg, layer_path + "/layer/vars", group))
            continue
        if top and not spec.layers and spec.input_batch_shape is None:
            spec.input_batch_shape = _batch_shape(lcfg)
        vars_path = layer_path + ("/cell/vars" if lcls in _CELL_LAYERS else "/vars")
        spec.layers.append(LayerSpec(lcls, lcfg, vars_path, group))


def _unique(name: str, used: dict) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


# ---------------------------------------------------------------------------------------------
# one layer config -> fastgru layer
# ---------------------------------------------------------------------------------------------
def _dtype(value, layer: str) -> str:
    if isinstance(value, dict):
        value = value.get("config", {}).get("name", "float32")
    value = value or "float32"
    if value not in ("float32", "float64"):
        raise UnsupportedKerasFeature(f"layer {layer}: dtype policy {value!r} (fastgru computes in float32 or float64)")
    return value


def _activation(value, layer: str, option: str, major: int) -> str:
    try:
        name = activations.canonical_name(value)
    except UnsupportedKerasFeature as exc:
        raise UnsupportedKerasFeature(f"layer {layer}: {option}: {exc}") from None
    if name == "hard_sigmoid" and major < 3:
        return "hard_sigmoid_keras2"  # Keras 2 defined it as clip(0.2x + 0.5, 0, 1)
    return name


def build_layer(spec: LayerSpec, major: int):
    """A fastgru layer (not yet built) from one Keras layer config."""
    if spec.class_name not in _LAYERS:
        raise UnsupportedKerasFeature(
            f"layer {spec.config.get('name', '?')!r} of class {spec.class_name!r} is not supported by fastgru "
            f"(supported: {', '.join(sorted(_LAYERS))}, InputLayer, and nested Sequential models)"
        )
    cls, taken, fixed = _LAYERS[spec.class_name]
    name = spec.config.get("name", snake_case(spec.class_name))
    label = f"{name} ({spec.class_name})"
    kwargs = {"name": name, "trainable": bool(spec.config.get("trainable", True)),
              "dtype": _dtype(spec.config.get("dtype"), label)}
    ignored = []
    for key, value in spec.config.items():
        if key in _COMMON and key not in taken:
            continue
        if key in taken:
            if key in ("activation", "recurrent_activation"):
                value = _activation(value, label, key, major)
            if key == "noise_shape" and value is not None:
                value = tuple(value)
            kwargs[key] = value
        elif key in _TRAINING_ONLY:
            if value is not None:
                ignored.append(key)
        elif key in fixed:
            if fixed[key] is not None and value not in (fixed[key], None, 0):
                raise UnsupportedKerasFeature(f"layer {label}: option {key}={value!r} is not supported")
        else:
            raise UnsupportedKerasFeature(f"layer {label}: option {key!r} (= {value!r:.60}) is not supported")
    if ignored:
        warnings.warn(f"layer {label}: {', '.join(ignored)} only affect training and are not applied by fastgru",
                      stacklevel=3)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UnsupportedKerasFeature(f"layer {label}: {exc}") from None


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
    if class_name == "Dropout" and config.get("noise_shape") is not None:
        config["noise_shape"] = list(config["noise_shape"])
    entry = {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}
    if layer.input_shape is not None:
        entry["build_config"] = {"input_shape": list(layer.input_shape)}
    return entry


def keras3_model_config(model) -> dict:
    if not model.built or model.input_shape is None:
        raise ValueError("save() needs a built model: call build(input_shape) or predict once first")
    input_entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                   "config": {"batch_shape": list(model.input_shape),
                              "dtype": "int32" if type(model.layers[0]).__name__ == "Embedding" else "float32",
                              "sparse": False, "ragged": False, "name": "input_layer", "optional": False}}
    return {
        "module": "keras", "class_name": "Sequential", "registered_name": None,
        "config": {"name": model.name, "trainable": model.trainable, "dtype": _policy("float32"),
                   "layers": [input_entry] + [keras3_layer_config(l) for l in model.layers]},
        "build_config": {"input_shape": list(model.input_shape)},
    }


def keras3_weight_paths(model) -> list[str]:
    """Where each layer's variables go in a Keras 3 weights file (same rule Keras uses)."""
    used: dict[str, int] = {}
    paths = []
    for layer in model.layers:
        class_name = type(layer).__name__
        key = _unique(snake_case(class_name), used)
        paths.append(f"layers/{key}" + ("/cell/vars" if class_name in _CELL_LAYERS else "/vars"))
    return paths


__all__ = ["InputLayer", "LayerSpec", "ModelSpec", "build_layer", "keras3_model_config", "keras3_weight_paths",
           "keras_major", "parse_model", "snake_case"]
