"""Keras model/layer configs (Keras 2 and Keras 3 flavours) <-> fastgru layers.

Loading walks the model config into a flat chain of :class:`LayerSpec` (nested Sequential models
and plain-chain Functional models are flattened), each knowing where its weights live in a Keras 3
weights file (by class-based path, as Keras's saving_lib names them) and in a legacy HDF5 file (by
top-level layer name). Every option that changes the forward math and that fastgru does not have
raises UnsupportedKerasFeature naming the layer class, the layer name and the option; a config that
is malformed (a wrong type, a missing list) raises ModelFileError naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from . import cudnn_rnn
from .config_checks import (
    _COMMON,
    _dtype,
    _regularizer_option,
    _shape,
    _short,
    _trainable,
    build_registered,
)
from .keras_catalog import _KNOWN_UNSUPPORTED, snake_case, weights_key  # noqa: F401 (re-exported)
from .keras_graph import _check_chain_output, _entry, _entry_name, _functional_chain, from_script_config
from .keras_rnn_cells import custom_cell_rnn, is_stacked, rnn_as_layer, stacked_layers

MODEL_CLASSES = ("Sequential", "Functional", "Model")
#: the most layers a model file may have (recurrent models have tens; building a model costs time
#: per layer, so a small file listing 100,000 layers is refused before anything is built)
MAX_LAYERS = 5_000
#: keys every layer config may carry that need no translation
#: layers whose TimeDistributed wrapper computes exactly what the layer does on (B, T, D)
_TIME_DISTRIBUTABLE = {"Dense", "Activation", "Dropout"}
#: wrappers whose weights live in their inner layers: <layer path>/{forward,backward}_layer/cell/vars
_WRAPPER_LAYERS = {"Bidirectional", "TimeDistributed"}  # TimeDistributed's: <layer path>/layer/vars

def weights_subpath(class_name: str) -> str:
    """Where a layer's variables sit below its path in a Keras 3 weights file: ``vars``, or ``cell/vars``
    for a recurrent layer's cell (from the registry's KerasContract; Keras's RNN(cell) keeps its cell's there)."""
    if class_name == "RNN":
        return "cell/vars"
    cls = registry.lookup(class_name)
    if cls is not None:
        return cls.keras.weights
    return "vars"


@dataclass
class LayerSpec:
    class_name: str
    config: dict
    v3_path: str  # e.g. "layers/gru_1/cell/vars"
    legacy_group: str  # top-level layer name: the group of a legacy .h5 holding the weights
    build_config: dict | None = None
    #: a Keras TimeDistributed(Dense/Activation/Dropout) built as its inner layer: {"inner_name": the inner
    #: layer's own name}; the built layer keeps it (TIME_DISTRIBUTED_ATTR) so that saving writes the wrapper back
    time_distributed: dict | None = None


@dataclass
class ModelSpec:
    name: str
    input_batch_shape: tuple | None
    layers: list[LayerSpec] = field(default_factory=list)
    input_dtype: str | None = None
    input_name: str | None = None  # the InputLayer's (a dict of inputs is keyed by it, as in Keras)
    build_input_shape: tuple | None = None  # the model entry's build_config (Keras 3), when given
    functional: bool = False  # a Functional chain (its model.layers in Keras: the InputLayer first, no op nodes)


#: the attribute of a layer built from a Keras TimeDistributed(Dense/Activation/Dropout) as its inner layer
#: (``{"inner_name": ...}``): Keras 3 files name it as the wrapper (``layers/time_distributed[_n]``, its
#: variables under ``layer/vars``) and ``save`` writes the wrapper back in config.json
TIME_DISTRIBUTED_ATTR = "_keras_time_distributed"


def time_distributed_spec(inner_cls: str, inner_cfg: dict, name, layer_path: str, group, build_config) -> LayerSpec:
    """The spec of a Keras TimeDistributed(inner) built as its inner layer (named as the wrapper, its
    variables under ``<layer path>/layer/vars``)."""
    inner_name = inner_cfg.get("name") if isinstance(inner_cfg.get("name"), str) else None
    return LayerSpec(inner_cls, dict(inner_cfg, name=name or inner_cfg.get("name")), layer_path + "/layer/vars",
                     group, build_config, time_distributed={"inner_name": inner_name})


def keras_class_name(layer) -> str:
    """The Keras class a fastgru layer stands for in a Keras 3 file (the key of its weights path): its own
    class, or TimeDistributed for a layer built from a Keras TimeDistributed (TIME_DISTRIBUTED_ATTR)."""
    if getattr(layer, TIME_DISTRIBUTED_ATTR, None) is not None:
        return "TimeDistributed"
    return type(layer).__name__


def layer_vars_path(layer, layer_path: str) -> str:
    """Where the variables of ``layer`` at ``layer_path`` (``layers/<key>``) sit in a Keras 3 weights file:
    ``<path>/vars``, ``<path>/cell/vars`` (an RNN), ``<path>/layer/vars`` (a layer from a Keras
    TimeDistributed), or the path itself for a wrapper (its inner layers' groups below it)."""
    if getattr(layer, TIME_DISTRIBUTED_ATTR, None) is not None:
        return f"{layer_path}/layer/vars"
    class_name = type(layer).__name__
    return layer_path if class_name in _WRAPPER_LAYERS else f"{layer_path}/{weights_subpath(class_name)}"


def keras_major(version: str | None) -> int:
    """3 for Keras 3 files, 2 for tf.keras / tf_keras 2.x ones (unknown versions count as 3)."""
    if not version:
        return 3
    try:
        return int(str(version).strip().split(".")[0])
    except ValueError:
        return 3


# ---------------------------------------------------------------------------------------------
# model configs -> flat chain
# ---------------------------------------------------------------------------------------------
def parse_model(model_config, path, keras_version: str | None) -> ModelSpec:
    """Flatten a Keras model config into the chain of layers fastgru builds."""
    if keras_major(keras_version) < 2:
        raise UnsupportedKerasFeature(
            f"files written by Keras {keras_version} are not supported (fastgru reads Keras 2.x and 3.x files)")
    class_name, config = _entry(model_config, path, "model config")
    if class_name not in MODEL_CLASSES:
        raise UnsupportedKerasFeature(
            f"model class {class_name!r}: fastgru loads Sequential models and Functional plain chains"
        )
    name = config.get("name") if isinstance(config, dict) else None
    entries = config.get("layers") if isinstance(config, dict) else None
    if class_name != "Sequential" and isinstance(entries, list) and any(
            isinstance(e, dict) and e.get("class_name") in ("TFOpLambda", "SlicingOpLambda") for e in entries):
        # tf_keras's op layers (x[:, -1], tf.reduce_mean): their arguments live in the nodes, which the graph
        # loader reads (io/keras_functional.py, io/tf_op_lambda.py)
        raise UnsupportedKerasFeature("a Functional chain with tf_keras op layers is built as a graph")
    spec = ModelSpec(name=name if isinstance(name, str) else "sequential", input_batch_shape=None,
                     functional=class_name != "Sequential")
    build_config = model_config.get("build_config")
    if isinstance(build_config, dict):
        shape = build_config.get("input_shape")
        if (class_name != "Sequential" and isinstance(shape, list) and len(shape) > 1
                and all(isinstance(e, list) for e in shape)):
            # tf_keras writes a Functional model's build_config with one shape per input: not a chain (the
            # graph loader, io/keras_functional.py, builds it from its InputLayers)
            raise UnsupportedKerasFeature("a Functional model with several inputs is not a plain chain")
        spec.build_input_shape = _shape(shape, path, "the model's build_config")
    _collect(class_name, config, "", None, spec, path, top=True)
    if not spec.layers:
        raise ModelFileError(path, "the model has no layers")
    if class_name != "Sequential" and any(s.class_name == "GetItem" for s in spec.layers):
        # x[:, -1] in a chain: its index lives in the node (the graph loader, io/keras_functional.py, reads it)
        raise UnsupportedKerasFeature("a Functional chain with a GetItem op is built as a graph")
    return spec


def _collect(class_name, config, prefix, legacy_group, spec: ModelSpec, path, top=False):
    if class_name == "Sequential":
        entries = config.get("layers") if isinstance(config, dict) else config  # Keras 2.0-2.2: a bare list
        if not isinstance(entries, list):
            raise ModelFileError(path, "Sequential config has no 'layers' list")
        order = list(range(len(entries)))
    else:
        entries = config.get("layers")
        if not isinstance(entries, list):
            raise ModelFileError(path, f"{class_name} model config has no 'layers' list")
    if len(entries) > 2 * MAX_LAYERS:  # cheap early refusal; the exact count is checked as layers are added
        _too_many_layers(path)
    if class_name != "Sequential":
        order = _functional_chain(entries, path)
        _check_chain_output(config, _entry_name(entries[order[-1]]))
    # Keras 3 weight paths count classes in the config's order (operations included); a Sequential's
    # layers exclude its InputLayer, a Functional's include it
    keys: dict[int, str] = {}
    used: dict[str, int] = {}
    for i, entry in enumerate(entries):
        lcls, _ = _entry(entry, path, f"layer {i}")
        if lcls == "InputLayer" and class_name == "Sequential":
            continue
        keys[i] = _unique(weights_key(lcls), used)
    for i in order:
        entry = entries[i]
        lcls, lcfg = _entry(entry, path, f"layer {i}")
        if not isinstance(lcfg, dict):
            raise ModelFileError(path, f"layer {i}: the config of {lcls} is not an object")
        if lcls == "InputLayer":
            if spec.input_batch_shape is None:
                spec.input_batch_shape = _shape(lcfg.get("batch_shape", lcfg.get("batch_input_shape")), path,
                                                f"InputLayer {lcfg.get('name')!r}")
                dtype, input_name = lcfg.get("dtype"), lcfg.get("name")
                spec.input_dtype = dtype if isinstance(dtype, str) else None
                spec.input_name = input_name if isinstance(input_name, str) else None
            continue
        name = lcfg.get("name")
        if name is not None and not isinstance(name, str):
            raise ModelFileError(path, f"layer {i} ({lcls}): its name should be a string, found {_short(name)}")
        layer_path = f"{prefix}layers/{keys[i]}"
        group = legacy_group or name or keys[i]
        if lcls in MODEL_CLASSES:
            _collect(lcls, lcfg, layer_path + "/", group, spec, path)
            continue
        if top and not spec.layers and spec.input_batch_shape is None:
            spec.input_batch_shape = _shape(lcfg.get("batch_shape", lcfg.get("batch_input_shape")), path,
                                            f"layer {name!r} ({lcls})")
        build_config = entry.get("build_config") if isinstance(entry.get("build_config"), dict) else None
        if lcls == "TimeDistributed":
            # TimeDistributed(Dense/Activation/Dropout) is the inner layer on (B, T, D) (weights: <path>/layer/vars)
            inner_cls, inner_cfg = _entry(lcfg.get("layer"), path, f"layer {name!r} (TimeDistributed)")
            wrapper = registry.lookup("TimeDistributed")
            per_step = getattr(wrapper, "inner_layers", ())
            if inner_cls == "RNN" and isinstance(inner_cfg, dict) and not is_stacked(lcfg["layer"]):
                inner_cls = "GRU"  # (RNN(GRUCell(...)) and the others are read as their layer: build_layer)
            # (a custom layer given to load_model or registered: run step by step)
            custom = isinstance(inner_cls, str) and registry.custom_layer(
                (lcfg["layer"].get("registered_name") if isinstance(lcfg.get("layer"), dict) else None) or inner_cls)
            if (inner_cls in per_step and inner_cls not in _TIME_DISTRIBUTABLE or custom) and isinstance(inner_cfg,
                                                                                                          dict):
                # the other per-step layers: the TimeDistributed wrapper layer (layers/time_distributed.py)
                spec.layers.append(LayerSpec(lcls, lcfg, layer_path, group, build_config))
                if len(spec.layers) > MAX_LAYERS:
                    _too_many_layers(path)
                continue
            if inner_cls == "RNN" and is_stacked(lcfg["layer"]):
                raise UnsupportedKerasFeature(f"layer {name!r}: TimeDistributed(RNN([cells])) is not supported (a "
                                              "stack of cells loads only as a layer of its own)")
            if inner_cls not in _TIME_DISTRIBUTABLE or not isinstance(inner_cfg, dict):
                raise UnsupportedKerasFeature(
                    f"layer {name!r}: TimeDistributed({inner_cls}) is not supported "
                    f"(supported inner layers: {', '.join(sorted(set(_TIME_DISTRIBUTABLE) | set(per_step)))})"
                )
            spec.layers.append(time_distributed_spec(inner_cls, inner_cfg, name, layer_path, group, build_config))
            if len(spec.layers) > MAX_LAYERS:
                _too_many_layers(path)
            continue
        if is_stacked(entry):  # RNN([cell, cell, ...]): the stack of recurrent layers (keras_rnn_cells.py)
            cell_keys: dict[str, int] = {}
            for k, (cls, cfg, cell) in enumerate(stacked_layers(lcfg, name or keys[i], path)):
                spec.layers.append(LayerSpec(cls, cfg, f"{layer_path}/cell/cells/{_unique(snake_case(cell), cell_keys)}"
                                             "/vars", group, build_config if k == 0 else None))
            if len(spec.layers) > MAX_LAYERS:
                _too_many_layers(path)
            continue
        if lcls in _WRAPPER_LAYERS:
            vars_path = layer_path  # the inner layers' groups are below it (keras_save.v3_var_groups)
        else:
            vars_path = f"{layer_path}/{weights_subpath(lcls)}"
        spec.layers.append(LayerSpec(lcls, lcfg, vars_path, group, build_config))
        if len(spec.layers) > MAX_LAYERS:
            _too_many_layers(path)


def _too_many_layers(path):
    raise ModelFileError(path, f"the model config lists more than {MAX_LAYERS:,} layers; fastgru loads models of "
                               f"at most {MAX_LAYERS:,} layers")


def _build_bidirectional(spec: LayerSpec, name: str, label: str, major: int, path):
    """Bidirectional(GRU, LSTM or SimpleRNN) from its config: the forward layer's entry ("layer"), the backward
    layer's ("backward_layer", Keras 3 and newer tf_keras) and the merge mode."""
    inner = {}
    for key in ("layer", "backward_layer"):
        entry = spec.config.get(key)
        if entry is None and key == "backward_layer":
            continue
        inner_cls, inner_cfg = _entry(entry, path, f"layer {label}: {key}")
        native = cudnn_rnn.NATIVE.get(inner_cls, inner_cls)
        if weights_subpath(native) != "cell/vars" or native.startswith("ConvLSTM") or not isinstance(inner_cfg, dict):
            raise UnsupportedKerasFeature(f"layer {label}: Bidirectional({inner_cls}) is not supported "
                                          "(fastgru's Bidirectional wraps GRU, LSTM or SimpleRNN)")
        inner[key] = build_layer(LayerSpec(inner_cls, inner_cfg, "", ""), major, path)
    merge_mode = spec.config.get("merge_mode", "concat")
    if merge_mode not in registry.lookup("Bidirectional").merge_modes:
        raise ModelFileError(path, f"layer {label}: merge_mode should be one of concat, sum, mul, ave or null, "
                                   f"found {_short(merge_mode)}")
    for key, value in spec.config.items():
        if key not in _COMMON and key not in ("layer", "backward_layer", "merge_mode") and value is not None:
            raise UnsupportedKerasFeature(f"layer {label}: option {key!r} (= {_short(value)}) is not supported")
    wrapper = registry.lookup(spec.class_name)
    try:
        layer = wrapper(inner["layer"], merge_mode=merge_mode, backward_layer=inner.get("backward_layer"), name=name,
                        trainable=_trainable(spec.config, label, path),
                        dtype=_dtype(spec.config.get("dtype"), label, path))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {label}: {exc}") from None
    if getattr(inner["layer"], cudnn_rnn.MARK, False):  # (its halves' weights in cuDNN's layout in the file)
        setattr(layer, cudnn_rnn.MARK, True)
    return layer


def _build_time_distributed(spec: LayerSpec, name: str, label: str, major: int, path):
    """TimeDistributed(inner) from its config: the inner layer built from its own entry ("layer"), as
    any layer is, and wrapped; the wrapper's own options are its name, trainable and dtype."""
    inner_cls, inner_cfg = _entry(spec.config.get("layer"), path, f"layer {label}: layer")
    if not isinstance(inner_cfg, dict):
        raise ModelFileError(path, f"layer {label}: the config of its inner {inner_cls} is not an object")
    inner = build_layer(LayerSpec(inner_cls, inner_cfg, "", ""), major, path)
    kwargs = {"name": name, "trainable": _trainable(spec.config, label, path),
              "dtype": _dtype(spec.config.get("dtype"), label, path)}
    ignored = []
    for key, value in spec.config.items():
        if key in _COMMON or key == "layer":
            continue
        if not _regularizer_option(registry.lookup("TimeDistributed"), key, value, label, kwargs, ignored, path):
            raise UnsupportedKerasFeature(f"layer {label}: option {key!r} (= {_short(value)}) is not supported")
    if ignored:
        warnings.warn(f"layer {label}: {', '.join(ignored)}: only affect training, not applied by fastgru",
                      stacklevel=3)
    try:
        layer = registry.lookup("TimeDistributed")(inner, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {label}: {exc}") from None
    if major < 3:
        layer.use_keras2_semantics()  # tf_keras runs the inner layer once on all B*T rows
    return layer


def _unique(name: str, used: dict) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def input_shape_of(spec: ModelSpec, path) -> tuple:
    """The batch input shape the model is built for: the InputLayer's, the first layer's declared shape,
    the model's build_config, or the first layer's build_config (Keras 3)."""
    if spec.input_batch_shape is not None:
        return spec.input_batch_shape
    if spec.build_input_shape is not None:
        return spec.build_input_shape
    first = spec.layers[0].build_config
    if first is not None:
        shape = _shape(first.get("input_shape"), path, f"layer {spec.layers[0].config.get('name')!r} build_config")
        if shape is not None:
            return shape
    raise ModelFileError(path, "the model config gives no input shape (no InputLayer, no batch_input_shape, no "
                               "build_config), so its weights cannot be placed")


# ---------------------------------------------------------------------------------------------
# one layer config -> fastgru layer
# ---------------------------------------------------------------------------------------------
def build_custom_layer(cls: type, spec: LayerSpec, name: str, path):
    """A layer of a script's own class (``custom_objects``) from its config, as Keras's ``from_config``."""
    return from_script_config(cls, spec.config, f"layer {name!r}", path)


def build_layer(spec: LayerSpec, major: int, path="<config>"):
    """A fastgru layer (not yet built) from one Keras layer config."""
    name = spec.config.get("name")
    if name is not None and not isinstance(name, str):  # also the inner layers of a wrapper
        raise ModelFileError(path, f"a layer of class {spec.class_name!r}: its name should be a string, "
                                   f"found {_short(name)}")
    name = name or snake_case(spec.class_name)
    label = f"{name} ({spec.class_name})"
    if spec.class_name == "RNN":  # RNN(GRUCell(...)) is GRU(...) (keras_rnn_cells.py); a script's cell, looped
        looped = custom_cell_rnn(spec.config, name, path)
        if looped is not None:
            return looped
        class_name, config = rnn_as_layer(spec.config, label, path)
        spec = LayerSpec(class_name, config, spec.v3_path, spec.legacy_group, spec.build_config, spec.time_distributed)
        label = f"{name} (RNN({class_name}Cell))"
    cudnn = spec.class_name in cudnn_rnn.NATIVE  # (Keras 2's CuDNNGRU/CuDNNLSTM: the GRU/LSTM computing the same)
    if cudnn:
        spec = LayerSpec(*cudnn_rnn.as_native(spec.class_name, spec.config), spec.v3_path, spec.legacy_group,
                         spec.build_config, spec.time_distributed)
    if spec.class_name == "TimeDistributed":
        return _build_time_distributed(spec, name, label, major, path)
    if spec.class_name in _WRAPPER_LAYERS:
        return _build_bidirectional(spec, name, label, major, path)
    registered = registry.lookup(spec.class_name)
    if registered is not None:
        layer = build_registered(registered, spec, name, label, major, path)
        if spec.time_distributed is not None:
            setattr(layer, TIME_DISTRIBUTED_ATTR, dict(spec.time_distributed))
        if major < 3 and hasattr(layer, "use_keras2_semantics"):
            layer.use_keras2_semantics()  # (tf_keras's behaviour: an Embedding's gradient, merges' masks, ...)
        if cudnn:
            setattr(layer, cudnn_rnn.MARK, True)
        return layer
    custom = registry.custom_layer(spec.class_name)
    if custom is not None:  # (a script's own layer class, given in load_model's custom_objects)
        return build_custom_layer(custom, spec, name, path)
    if spec.class_name == "Lambda":  # (its config holds Python code: nothing from a file is ever run)
        raise UnsupportedKerasFeature(
            f"layer {name!r} is a Lambda layer: it holds Python code, which fastgru never runs from a file; rebuild "
            "the model with Keras layers or keras.ops in place of the Lambda (docs/functional.md lists the ops)")
    known = " (a Keras layer fastgru does not implement)" if spec.class_name in _KNOWN_UNSUPPORTED \
        else " (the class custom_objects gives for it is not a fastgru layer: write it as a subclass of " \
             "fastgru.layers.Layer, the same code with `import fastgru as keras`; docs/porting.md)" \
        if registry.passed_over(spec.class_name) \
        else " (a custom or unknown layer class: a layer written for fastgru as for Keras, given in load_model's " \
             "(or from_keras's) custom_objects, builds it; docs/porting.md)"
    raise UnsupportedKerasFeature(
        f"layer {name!r} of class {spec.class_name!r} is not supported by fastgru{known}; "
        f"supported: {', '.join(sorted(set(registry.keras_names()) | _WRAPPER_LAYERS))}, InputLayer, "
        "and nested Sequential or Functional models"
    )


def unique_names(names: list[str]) -> list[str]:
    """tf_keras's output names: the output layers' names, a name already taken given ``_1``, ``_2``, ... (the
    two outputs of one layer, a Bidirectional's halves or a GRU's sequence and state, are ``gru`` and ``gru_1``)."""
    taken: set[str] = set()
    counts: dict[str, int] = {}
    unique = []
    for name in names:
        proposal = name
        while proposal in taken:
            counts[name] = counts.get(name, 1)
            proposal = f"{name}_{counts[name]}"
            counts[name] += 1
        taken.add(proposal)
        unique.append(proposal)
    return unique
