"""Functional graphs in Keras files: a Keras 2 or 3 ``Functional`` config -> ``fastgru.Model`` (layers by
``keras_config.build_layer``, nodes replayed in config order), where each layer's
weights live (Keras 3 ``layers/<snake_class>[_n]/...`` in the config's order, operations included, nested models below
their own path; legacy HDF5: the top-level layer's group), and ``fastgru.Model`` -> a Keras 3 config
and weights file that ``keras.models.load_model`` opens.

Keras 3 records ``Embedding(mask_zero=True)``'s mask as op layers (``NotEqual``, ``Any``) passed as ``mask=``:
set aside, as for chains.
"""

from __future__ import annotations

import json
from contextlib import nullcontext

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from ..layers.base import PROPAGATED_MASK
from ..layers.build_settings import replaying_file
from ..variables import unscoped
from . import tf_op_lambda
from .config_checks import _dtype, _shape, _trainable
from .graph_masks import computable_mask_ops, makes_masks, mask_only_ops, may_carry_mask
from .graph_weights import uses_graph, weight_groups  # noqa: F401 (used by saving, io/__init__)
from .keras_config import (
    _WRAPPER_LAYERS,
    MAX_LAYERS,
    LayerSpec,
    ModelSpec,
    _collect,
    _unique,
    build_layer,
    keras_major,
    snake_case,
    time_distributed_spec,
    unique_names,
    weights_key,
    weights_subpath,
)
from .keras_graph import GRAPH_CLASSES, _entry, _entry_name, _is_op
from .keras_nodes import INPUT_MASK_KEY, KERAS2_KEY, RUNTIME_MASK_KEY, _io_refs, call_options
from .keras_rnn_cells import is_stacked, stacked_layers


def is_functional(model_config) -> bool:
    """True for a Functional config, or a Sequential one holding a model (built as a Sequential holding a
    fastgru Model)."""
    if not isinstance(model_config, dict):
        return False
    if model_config.get("class_name") in GRAPH_CLASSES:
        return True
    if model_config.get("class_name") != "Sequential":
        return False
    config = model_config.get("config")
    entries = config.get("layers") if isinstance(config, dict) else config
    try:
        return isinstance(entries, list) and any(is_functional(e) or _wraps_model(e) or (
            isinstance(e, dict) and e.get("class_name") == "Sequential") for e in entries[:MAX_LAYERS])
    except RecursionError:  # a damaged config nested absurdly deep: the chain loader's error stands
        return False


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def _build_graph(model_config, path, major: int, prefix: str, group: str | None, leaves: list, counter: list):
    """A fastgru Model for a Functional config entry; appends (layer, LayerSpec) weight leaves."""
    Input, Model = registry.model_class("Input"), registry.model_class("Functional")

    class_name, config = _entry(model_config, path, "model config")
    entries = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        raise ModelFileError(path, f"{class_name} model config has no 'layers' list")
    entries = [tf_op_lambda.translate(e, path) for e in entries]  # (tf_keras's op layers as Keras 3's)
    counter[0] += len(entries)
    if counter[0] > MAX_LAYERS:
        raise ModelFileError(path, f"the model config lists more than {MAX_LAYERS:,} layers")
    names = []
    for i, e in enumerate(entries):
        _entry(e, path, f"layer {i}")
        name = _entry_name(e)
        if name is None:
            raise ModelFileError(path, f"layer {i} ({e['class_name']}) of the Functional model has no name")
        names.append(name)
    if len(set(names)) != len(names):
        raise ModelFileError(path, f"the Functional model config names some layers twice: "
                                   f"{sorted({n for n in names if names.count(n) > 1})}")
    parsed, mask_only = mask_only_ops(entries, names, config, path)
    computable_masks = computable_mask_ops(entries, names, parsed, mask_only)
    makes_masks_ = major < 3 and makes_masks(entries)
    used: dict[str, int] = {}
    objects: dict[str, object] = {}
    tensors: dict[tuple, list] = {}  # (layer name, node index) -> output tensors
    mask_ops = mask_only
    calls = []  # (layer name, node list) in config order
    for i, (entry, name) in enumerate(zip(entries, names)):
        lcls, lcfg = _entry(entry, path, f"layer {i}")
        if name in mask_only and name not in computable_masks:
            continue  # (a mask fastgru cannot compute: taken as the one propagated)
        key = _unique(weights_key(lcls), used)
        layer_path = f"{prefix}layers/{key}"
        top = group or name
        if lcls == "InputLayer":
            shape = _shape(lcfg.get("batch_shape", lcfg.get("batch_input_shape")), path, f"InputLayer {name!r}")
            if shape is None:
                raise ModelFileError(path, f"InputLayer {name!r} has no batch_shape")
            dtype = lcfg.get("dtype")
            dtype = dtype if isinstance(dtype, str) else None
            tensor = Input(batch_shape=shape, dtype=dtype if dtype in (None, "float32", "float64") else None,
                           name=name)
            tensor.layer.input_dtype = dtype
            tensor.declare_dtype(dtype)  # (model.inputs[i].dtype: "int32" for tokens, as Keras's)
            tensors[(name, 0)] = [tensor]
            objects[name] = tensor.layer
            continue
        keras2 = isinstance(lcfg, dict) and lcfg.pop(KERAS2_KEY, False) is True  # (fastgru's own configs only)
        build_config = entry.get("build_config") if isinstance(entry.get("build_config"), dict) else None
        if lcls == "GetItem" and name in parsed:
            objects[name] = registry.model_class("GetItem")(name=name)
            calls.append((name, parsed[name]))
            continue
        if _is_op(entry):  # x + y, ops.mean(h, axis=1), ...: a KerasOp layer (mask-only ops were set aside)
            if not isinstance(lcfg, dict):
                raise ModelFileError(path, f"op layer {name!r}: its config is not an object")
            objects[name] = registry.model_class("KerasOp")(lcls, lcfg, name=name)
            calls.append((name, parsed[name]))
            continue
        if lcls in GRAPH_CLASSES:
            objects[name] = _build_graph(entry, path, major, layer_path + "/", top, leaves, counter)
        elif lcls == "Sequential" and is_functional(entry):
            objects[name] = _build_sequential(entry, path, major, layer_path + "/", top, leaves, counter)
        elif lcls == "Sequential":
            spec = ModelSpec(name=name, input_batch_shape=None)
            _collect("Sequential", lcfg, layer_path + "/", top, spec, path)
            Sequential = registry.model_class("Sequential")

            layers = [build_layer(s, major, path) for s in spec.layers]
            seq = Sequential(name=name)
            try:
                if spec.input_batch_shape is not None:
                    seq.add(_input_layer(spec.input_batch_shape))
                for layer in layers:
                    seq.add(layer)
            except (TypeError, ValueError) as exc:
                if isinstance(exc, ModelFileError):
                    raise
                raise ModelFileError(path, f"the layers of the nested Sequential model {name!r} do not fit together "
                                           f"({exc})") from None
            leaves.extend(zip(layers, spec.layers))
            objects[name] = seq
        elif _wraps_model(entry):
            objects[name] = _time_distributed_model(lcfg, name, path, major, layer_path, top, leaves, counter)
        elif is_stacked(entry):  # RNN([cell, cell, ...]): a Sequential of the recurrent layers
            objects[name] = _stacked(lcfg, name, path, major, layer_path, top, leaves)
        else:
            inner_cls, inner_cfg = (_entry(lcfg.get("layer"), path, f"layer {name!r} (TimeDistributed)")
                                    if lcls == "TimeDistributed" else (None, None))
            if inner_cls in ("Dense", "Activation", "Dropout") and isinstance(inner_cfg, dict):
                # (built as the inner layer: the same math on (B, T, D))
                spec = time_distributed_spec(inner_cls, inner_cfg, name, layer_path, top, build_config)
            else:  # (another TimeDistributed: the wrapper layer, which checks its inner class)
                vars_path = layer_path if lcls in _WRAPPER_LAYERS else f"{layer_path}/{weights_subpath(lcls)}"
                spec = LayerSpec(lcls, lcfg, vars_path, top, build_config)
            layer = build_layer(spec, major, path)
            if (major < 3 or keras2) and hasattr(layer, "use_keras2_semantics"):
                layer.use_keras2_semantics()  # tf_keras's merges and MultiHeadAttention mask differently
            objects[name] = layer
            leaves.append((layer, spec))
        calls.append((name, parsed[name]))
    # tf_keras numbers a nested model's calls after the node its own construction made (its config skips that
    # node: tf_keras's _should_skip_first_node), so their references start at 1
    entry_of = dict(zip(names, entries))
    first_node = {name: 1 for name, _ in calls if major < 3 and _skips_first_node(entry_of[name])}
    # replay the calls: a layer's k-th node after its (k-1)-th, each once its inputs exist
    done = {name: 0 for name, _ in calls}
    progress = True
    while progress:
        progress = False
        for name, nodes in calls:
            while done[name] < len(nodes):
                refs, list_args, states, masks, options = nodes[done[name]]
                for r in refs + states:
                    if r[0] not in objects:
                        raise ModelFileError(path, f"layer {name!r} takes its input from {r[0]!r}, which the config "
                                                   "does not define")
                for r in masks:
                    if r is not None and r[0] not in objects and r[0] not in mask_ops:
                        raise ModelFileError(path, f"layer {name!r} takes its mask from {r[0]!r}, which the config "
                                                   "does not define")
                if not all((r[0], r[1]) in tensors for r in refs + states):
                    break
                args = [_take(tensors, r, path, name) for r in refs]
                # a mask= computed by mask ops (Keras 3 records Embedding(mask_zero)'s x != 0 so, or a user's own
                # mask) is computed, as Keras replays it; one fastgru cannot compute is taken as the propagated one
                explicit = [PROPAGATED_MASK if r is not None and r[0] in mask_ops and r[0] not in objects else r
                            for r in masks]
                if all(r is PROPAGATED_MASK for r in explicit):
                    explicit = []
                if not all((r[0], r[1]) in tensors for r in explicit if isinstance(r, (list, tuple))):
                    break
                st = [_take(tensors, r, path, name) for r in states]
                layer = objects[name]
                options = dict(options)
                # tf_keras passed a recurrent layer called with initial_state its input's mask; Keras 3 does not
                mask_at_run_time = options.pop(RUNTIME_MASK_KEY, False)
                input_mask = bool(st) and (options.pop(INPUT_MASK_KEY, False) or (
                    major < 3 and makes_masks_ and bool(args) and may_carry_mask(args[0])))
                if st and type(layer).__name__ == "Sequential":  # (an RNN over a stack of cells)
                    raise UnsupportedKerasFeature(f"layer {name!r}: a stack of cells given initial states")
                try:
                    extra = {"initial_state": st} if st else {}
                    positional = call_options(layer, name, options)  # (options checked; those by position)
                    extra.update(options)
                    if explicit:  # an explicit mask= from a tensor of the graph (not an op computing a mask)
                        given = [e if not isinstance(e, (list, tuple)) else _take(tensors, e, path, name)
                                 for e in explicit]
                        extra["mask"] = given if list_args else given[0]
                    out = layer(args if list_args else args[0], *positional, **extra)
                except (ModelFileError, UnsupportedKerasFeature):
                    raise
                except (TypeError, ValueError) as exc:
                    raise ModelFileError(path, f"layer {name!r} cannot be called on its inputs ({exc})") from None
                outs = out if isinstance(out, list) else [out]
                if input_mask:
                    outs[0].node.mask_from_inputs = True
                if mask_at_run_time:
                    outs[0].node.mask_at_run_time = True
                tensors[(name, done[name] + first_node.get(name, 0))] = outs
                done[name] += 1
                progress = True
    stuck = [name for name, nodes in calls if done[name] < len(nodes)]
    if stuck:
        raise ModelFileError(path, f"the graph cannot be computed: layer(s) {', '.join(map(repr, stuck))} wait for "
                                   "tensors that no layer makes (a cycle or a reference to a missing node)")
    in_refs, in_struct = _io_refs(config.get("input_layers"), path, "input_layers")
    out_refs, out_struct = _io_refs(config.get("output_layers"), path, "output_layers")
    if major < 3:  # Keras 2 writes lists of one for single inputs/outputs
        in_struct = None if in_struct == "list" and len(in_refs) == 1 else in_struct
        out_struct = None if out_struct == "list" and len(out_refs) == 1 else out_struct
    ins = [_take(tensors, r, path, "input_layers") for r in in_refs]
    # Keras 3's output_layers count a nested Functional model's calls from 1 (its node 0: its own making), its
    # inbound nodes from 0 (functional_from_config's get_tensor takes 1 off)
    if major >= 3:
        out_refs = [(r[0], r[1] - 1, r[2]) if _nested_functional(entry_of.get(r[0])) else r for r in out_refs]
    outs = [_take(tensors, r, path, "output_layers") for r in out_refs]
    name = config.get("name") if isinstance(config.get("name"), str) else None
    try:
        model = Model(_structure(ins, in_struct), _structure(outs, out_struct), name=name,
                      trainable=bool(config.get("trainable", True)))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"the Functional graph is not valid ({exc})") from None
    order = {_entry_name(e): i for i, e in enumerate(entries)}  # (model.layers, weights: the file's order)
    if all(layer.name in order for layer in model._all_layers):
        model._all_layers.sort(key=lambda layer: order[layer.name])
    return model


def _wraps_model(entry) -> bool:
    """A TimeDistributed around a nested model (a hierarchical model's sentence encoder)."""
    if not isinstance(entry, dict):
        return False
    config = entry.get("config")
    inner = config.get("layer") if entry.get("class_name") == "TimeDistributed" and isinstance(config, dict) else None
    return isinstance(inner, dict) and inner.get("class_name") in (*GRAPH_CLASSES, "Sequential")


def _time_distributed_model(config: dict, name, path, major, layer_path, top, leaves, counter):
    """TimeDistributed(model): the model built as a nested one, its variables below <layer path>/layer/ (as
    Keras 3 keeps them), a Sequential as the Functional model of its layers; then wrapped."""
    inner = config["layer"]
    if inner["class_name"] in GRAPH_CLASSES:
        model = _build_graph(inner, path, major, layer_path + "/layer/", top, leaves, counter)
    else:
        seq = _build_sequential(inner, path, major, layer_path + "/layer/", top, leaves, counter)
        x = registry.model_class("Input")(batch_shape=seq.input_shape)
        model = registry.model_class("Functional")(x, seq(x), name=seq.name)
    try:
        return registry.lookup("TimeDistributed")(model, name=name, trainable=_trainable(config, name, path),
                                                  dtype=_dtype(config.get("dtype"), name, path))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(path, f"layer {name!r} (TimeDistributed): {exc}") from None


def _nested_functional(entry) -> bool:
    return isinstance(entry, dict) and entry.get("class_name") in GRAPH_CLASSES


def _skips_first_node(entry) -> bool:
    """A tf_keras nested model built on an Input (a Functional model, or a Sequential whose config starts with
    its InputLayer): its first node, made when it was built, is not in the outer config."""
    cls, config = entry.get("class_name"), entry.get("config")
    if cls in GRAPH_CLASSES:
        return True
    layers = config.get("layers") if isinstance(config, dict) else None
    return (cls == "Sequential" and isinstance(layers, list) and bool(layers) and isinstance(layers[0], dict)
            and layers[0].get("class_name") == "InputLayer")


def _build_sequential(model_config, path, major: int, prefix: str, group, leaves: list, counter: list):
    """A Sequential config holding a Functional model: a fastgru Sequential whose entries are layers and
    nested models (weights at ``<prefix>layers/<snake_class>[_n]``, InputLayers not counted)."""
    _, config = _entry(model_config, path, "Sequential model config")
    entries = config.get("layers") if isinstance(config, dict) else config
    if not isinstance(entries, list):
        raise ModelFileError(path, "Sequential config has no 'layers' list")
    counter[0] += len(entries)
    if counter[0] > MAX_LAYERS:
        raise ModelFileError(path, f"the model config lists more than {MAX_LAYERS:,} layers")
    name = config.get("name") if isinstance(config, dict) and isinstance(config.get("name"), str) else None
    seq = registry.model_class("Sequential")(name=name)
    used: dict[str, int] = {}
    first_shape = None
    for i, entry in enumerate(entries):
        lcls, lcfg = _entry(entry, path, f"layer {i}")
        if not isinstance(lcfg, dict):
            raise ModelFileError(path, f"layer {i}: the config of {lcls} is not an object")
        if lcls == "InputLayer":
            shape = _shape(lcfg.get("batch_shape", lcfg.get("batch_input_shape")), path, f"InputLayer {i}")
            if shape is None:
                raise ModelFileError(path, f"InputLayer {i} of the Sequential model has no batch_shape")
            named, dtype = (v if isinstance(v, str) else None for v in (lcfg.get("name"), lcfg.get("dtype")))
            seq.add(registry.model_class("InputLayer")(batch_shape=shape, name=named, dtype=dtype))
            continue
        key = _unique(weights_key(lcls), used)
        layer_path = f"{prefix}layers/{key}"
        lname = lcfg.get("name") if isinstance(lcfg.get("name"), str) else key
        top = group or lname
        if lcls in GRAPH_CLASSES:
            layer = _build_graph(entry, path, major, layer_path + "/", top, leaves, counter)
            first_shape = first_shape or ((None,) + tuple(layer.input_shape[1:]) if not seq._layers else None)
        elif lcls == "Sequential":
            layer = _build_sequential(entry, path, major, layer_path + "/", top, leaves, counter)
        elif _wraps_model(entry):
            layer = _time_distributed_model(lcfg, lname, path, major, layer_path, top, leaves, counter)
        elif is_stacked(entry):  # RNN([cell, cell, ...]): its recurrent layers, one after the other
            layer = _stacked(lcfg, lname, path, major, layer_path, top, leaves)
        else:
            vars_path = layer_path if lcls in _WRAPPER_LAYERS else f"{layer_path}/{weights_subpath(lcls)}"
            build_config = entry.get("build_config") if isinstance(entry.get("build_config"), dict) else None
            spec = LayerSpec(lcls, lcfg, vars_path, top, build_config)
            layer = build_layer(spec, major, path)
            leaves.append((layer, spec))
        try:
            seq.add(layer)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(path, f"layer {lname!r} does not fit the Sequential model ({exc})") from None
    if not seq.built and first_shape is not None:
        try:
            seq.build(first_shape)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(path, f"the layer configs do not fit together ({exc})") from None
    if not seq.built:
        raise ModelFileError(path, "the Sequential model config gives no input shape, so its weights cannot be "
                                   "placed")
    return seq


def _stacked(lcfg: dict, name: str, path, major: int, layer_path: str, top: str, leaves: list):
    """An ``RNN([cell, cell, ...])`` entry as a Sequential of its recurrent layers (``keras_rnn_cells``), each
    cell's variables at ``<layer path>/cell/cells/<cell>/vars``."""
    seq = registry.model_class("Sequential")(name=name)
    cell_keys: dict[str, int] = {}
    for cls, cfg, cell in stacked_layers(lcfg, name, path):
        cell_path = f"{layer_path}/cell/cells/{_unique(snake_case(cell), cell_keys)}/vars"
        leaves.append((build_layer(spec := LayerSpec(cls, cfg, cell_path, top), major, path), spec))
        seq.add(leaves[-1][0])
    return seq


def _input_layer(batch_shape):
    return registry.model_class("InputLayer")(batch_shape=batch_shape)


def _take(tensors, ref, path, where):
    name, node, index = ref
    outs = tensors.get((name, node))
    if outs is None:
        raise ModelFileError(path, f"{where}: refers to node {node} of layer {name!r}, which does not exist")
    if not 0 <= index < len(outs):
        raise ModelFileError(path, f"{where}: refers to output {index} of layer {name!r}, which has {len(outs)}")
    return outs[index]


def _structure(items, struct):
    if struct is None:
        return items[0]
    if isinstance(struct, list):
        return dict(zip(struct, items))
    return items


def build_functional(model_config, path, version, weight_bytes=None):
    """(fastgru Model, [(layer, LayerSpec)] weight leaves) for a Functional model config."""
    from ..layers.build_settings import WeightBudgetExceeded, weight_budget

    major = keras_major(version)
    leaves: list = []
    budget = weight_bytes // 2 if weight_bytes is not None else None
    try:
        build = _build_sequential if model_config.get("class_name") == "Sequential" else _build_graph
        with replaying_file(), unscoped(), weight_budget(budget) if budget is not None else nullcontext():
            model = build(model_config, path, major, "", None, leaves, [0])
    except WeightBudgetExceeded as exc:
        raise ModelFileError(path, f"the config implies more weights than the file can hold ({exc}): damaged or "
                                   "inconsistent file") from None
    except RecursionError:
        raise ModelFileError(path, "the model config is nested too deeply: damaged file") from None
    model.keras_version = version
    if major < 3 and getattr(model, "_fg_model", False):  # (tf_keras names two outputs of one layer gru, gru_1)
        model._file_output_names = unique_names(model.output_names)
    model._weight_leaves = leaves
    return model, leaves


# ---------------------------------------------------------------------------------------------
# weights' places (loading and saving)
# ---------------------------------------------------------------------------------------------
def model_from_config(config: dict):
    """``Model.from_config``: a Keras 3 Functional config (as ``get_config`` returns) -> fastgru Model."""
    config = json.loads(json.dumps(config))  # a live Keras config holds tuples; never change the caller's dict
    entry = config if "class_name" in config else {"class_name": "Functional", "config": config}
    model, _ = build_functional(entry, "<config>", "3")
    return model
