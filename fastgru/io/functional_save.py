"""Saving Functional graphs: ``fastgru.Model`` (or a Sequential holding one) -> a Keras 3 config entry
(:func:`functional_config`: layers, nodes with their tensors, masks, states and call options) and a
``.keras`` archive with its weights file that ``keras.models.load_model`` opens. Reading them back is
:mod:`fastgru.io.keras_functional`'s job (where the weights' places, :func:`weight_groups`, live too).
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime

from ..errors import UnsupportedKerasFeature
from ..layers import registry
from ..layers.base import PROPAGATED_MASK
from ..tensor_arguments import TENSORS_KEY
from .graph_masks import may_carry_mask
from .graph_weights import uses_graph, weight_groups
from .keras_config import layer_vars_path
from .keras_graph import key_to_config
from .keras_nodes import INPUT_MASK_KEY, KERAS2_KEY


def _history(tensor, model_nodes) -> list:
    """``[layer name, node index, tensor index]``: the node counted among the layer's calls in this model (an
    Input's one node, also that of an input no output uses)."""
    layer = tensor.node.layer
    if tensor.node.is_input:
        return [layer.name, 0, tensor.index]
    kept = [n for n in layer._inbound_nodes if id(n) in model_nodes]
    return [layer.name, kept.index(tensor.node), tensor.index]


def _tensor_config(tensor, model_nodes) -> dict:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(tensor.shape), "dtype": tensor.dtype,
                       "keras_history": _history(tensor, model_nodes)}}


def _fill_template(obj, tensors: list, key: str):
    """A KerasOp node's arguments with each ``{key: k}`` (``KerasOp.tensor_key``) replaced by the k-th tensor's
    config."""
    if isinstance(obj, dict):
        if set(obj) == {key}:
            return tensors[obj[key]]
        return {k: _fill_template(v, tensors, key) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_fill_template(v, tensors, key) for v in obj]
    return obj


def functional_config(model) -> dict:
    """The Keras 3 config entry of a fastgru Model (module, class_name, config, build_config)."""
    from .keras_save import _policy, keras3_model_config

    InputLayer = registry.model_class("InputLayer")

    model_nodes = {id(n) for n in model._nodes}
    layers = []
    for layer in model._layers_and_ops:
        nodes = [n for n in layer.__dict__.get("_inbound_nodes", []) if id(n) in model_nodes and not n.is_input]
        if isinstance(layer, InputLayer):
            entry = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                     "config": {"batch_shape": list(layer.batch_shape), "dtype": layer.input_dtype or "float32",
                                "sparse": False, "ragged": False, "name": layer.name, "optional": False}}
        elif layer.__dict__.get("_as_sequential") is not None:  # (a Sequential nested by Sequential.add)
            entry = _nested_sequential_config(layer._as_sequential)
        elif getattr(layer, "_fg_model", False):
            entry = functional_config(layer)
        elif type(layer).__name__ == "Sequential":
            entry = keras3_model_config(layer)
            entry.pop("compile_config", None)
        elif type(layer).__name__ == "KerasOp":  # x + y, ops.mean(...): its arguments go in each node
            entry = {"module": layer.modules[layer.op], "class_name": layer.op,
                     "config": {"name": layer.name, **layer.op_config}, "registered_name": layer.op}
        elif type(layer).__name__ == "GetItem":  # a Keras op: its index goes in each node's arguments
            entry = {"module": "keras.src.ops.numpy", "class_name": "GetItem", "config": {"name": layer.name},
                     "registered_name": "GetItem"}
        else:
            entry = _layer_entry(layer)
            if getattr(layer, "_check_count", None) is not None:  # merge layers are built on a list of shapes
                entry["build_config"] = {"input_shape": [list(s) for s in layer.input_shape]}
        entry["name"] = layer.name
        if getattr(layer, "keras2_semantics", False) and isinstance(entry.get("config"), dict):
            entry["config"][KERAS2_KEY] = True  # (kept by get_config and pickling, stripped from a .keras file)
        inbound = []
        for node in nodes:
            args = [_tensor_config(t, model_nodes) for t in node.args]
            kwargs = {}
            if node.states:
                kwargs["initial_state"] = [_tensor_config(t, model_nodes) for t in node.states]
                if node.mask_from_inputs:  # (a tf_keras graph's call: see keras_nodes.INPUT_MASK_KEY)
                    kwargs[INPUT_MASK_KEY] = True
            if node.masks and not all(m is PROPAGATED_MASK for m in node.masks):  # (all propagated: Keras's default)
                # (a propagated entry beside given ones is written as None: Keras's mask= has no spelling for it)
                given = [None if m is None or m is PROPAGATED_MASK else _tensor_config(m, model_nodes)
                         for m in node.masks]
                kwargs["mask"] = given if node.list_args else given[0]
            elif node.mask_at_run_time:  # (Keras's "mask": null, kept: the masks its tensors carry at run time)
                kwargs["mask"] = None
            if type(layer).__name__ == "KerasOp":
                inbound.append(_fill_template(node.call_kwargs["template"], args, layer.tensor_key))
                continue
            if type(layer).__name__ == "GetItem":
                inbound.append({"args": [args[0], key_to_config(node.call_kwargs["key"])], "kwargs": {}})
                continue
            if hasattr(layer, "keras_call_arguments"):  # called with keywords (MultiHeadAttention)
                masks = [None if m is None or m is PROPAGATED_MASK else _tensor_config(m, model_nodes)
                         for m in node.masks]
                positional, keywords = layer.keras_call_arguments(args, masks, node.call_kwargs)
                inbound.append({"args": positional, "kwargs": keywords})
                continue
            kwargs.update(node.call_kwargs if getattr(type(layer), "_fg_user_layer", False) else  # (its options)
                          {k: True for k, v in node.call_kwargs.items() if v is True})  # Attention's flags
            names = kwargs.pop(TENSORS_KEY, None)  # (a custom layer's call given tensors: each to its parameter)
            if names:
                kwargs.update(zip(names, args[1:]))
                kwargs["mask"] = kwargs["mask"][0] if isinstance(kwargs.get("mask"), list) else kwargs.get("mask")
                inbound.append({"args": [args[0]], "kwargs": {k: v for k, v in kwargs.items() if v is not None}})
                continue
            if getattr(layer, "causal", False) is True and not getattr(type(layer), "_fg_user_layer", False):
                # (tf_keras's Attention(causal=True): Keras 3 takes it per call; a custom layer's own option stays)
                kwargs["use_causal_mask"] = True
                entry.get("config", {}).pop("causal", None)
            inbound.append({"args": [args if node.list_args else args[0]], "kwargs": kwargs})
        entry["inbound_nodes"] = inbound
        layers.append(entry)

    def refs(tensors, struct, order=None):
        items = [_history(t, model_nodes) for t in tensors]  # (a shared layer's output: its node's index)
        for item, t in zip(items, tensors):  # (Keras 3 counts a nested Functional's calls from 1 there)
            item[1] += 1 if getattr(t.node.layer, "_fg_model", False) and t.node.layer.__dict__.get(
                "_as_sequential") is None else 0
        if struct is None:
            return items[0]
        if isinstance(struct, list):
            by_key = dict(zip(struct, items))
            return {k: by_key[k] for k in order or struct}  # (a dict of outputs: the keys in the order given)
        return items

    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": model.name, "trainable": model.trainable, "dtype": _policy("float32"),
                       "layers": layers, "input_layers": refs(model._inputs, model._input_struct),
                       "output_layers": refs(model._outputs, model._output_struct,
                                             getattr(model, "_output_key_order", None))},
            "build_config": {"input_shape": None}}


def write_weights(model, target, with_optimizer: bool = False) -> None:
    """A Keras 3 weights file for a Functional model (nested models below their own path); ``with_optimizer``
    (a model file's): the compiled optimizer's state too (``optimizer_state.write_vars``)."""
    import h5py

    from .keras_v3 import write_layer_vars
    from .optimizer_state import write_vars

    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for layer, own in weight_groups(model):
            f.require_group(own + "/vars")
            if layer is not None:  # (a layer from a Keras TimeDistributed: its variables under <own>/layer/vars)
                write_layer_vars(f, layer, own, layer_vars_path(layer, own))
        if with_optimizer:
            write_vars(f, model)


def _wraps_model(layer) -> bool:
    return type(layer).__name__ == "TimeDistributed" and getattr(layer.layer, "_fg_model", False)


def _layer_entry(layer) -> dict:
    """A layer's Keras 3 entry; a TimeDistributed around a model holds the model's Functional entry."""
    from .keras_save import keras3_layer_config

    entry = keras3_layer_config(layer)
    if _wraps_model(layer):
        entry["config"]["layer"] = functional_config(layer.layer)
    return entry


def _sequential_config(model) -> dict:
    """Keras 3's config of a Sequential model whose layers include Functional models."""
    from .keras_save import keras3_model_config

    config = keras3_model_config(model)
    config.pop("compile_config", None)
    entries = config["config"]["layers"]
    offset = len(entries) - len(model._layers_and_ops)  # the InputLayer entry first
    for i, layer in enumerate(model._layers_and_ops):
        if layer.__dict__.get("_as_sequential") is not None:  # (a Sequential nested by Sequential.add)
            entries[offset + i] = _nested_sequential_config(layer._as_sequential)
        elif getattr(layer, "_fg_model", False):
            entries[offset + i] = dict(functional_config(layer), name=layer.name)
        elif _wraps_model(layer):
            entries[offset + i] = _layer_entry(layer)
        elif uses_graph(layer):
            entries[offset + i] = _sequential_config(layer)
    return config


def _nested_sequential_config(model) -> dict:
    """A Sequential model's Keras 3 config entry, as a layer of another model."""
    from .keras_save import keras3_model_config

    if uses_graph(model):
        return dict(_sequential_config(model), name=model.name)
    config = keras3_model_config(model)
    config.pop("compile_config", None)
    return dict(config, name=model.name)


#: Keras ops that Keras 3 makes, auto-named, when it rebuilds the masks of a loaded graph (a Concatenate of masked
#: tensors concatenates their masks): a layer of the same name would clash with them in a fresh Keras session
_MASK_OP_NAMES = ("concatenate",)


def _avoid_mask_op_names(config) -> None:
    """Rename (in place, with every reference to it) a layer of a Functional config named as an op Keras makes
    when it rebuilds masks, in a model that has masks: ``keras.models.load_model`` would otherwise refuse the file
    ("the name 'concatenate' is used 2 times in the model"). Nested Functional configs too."""
    if isinstance(config, list):
        for item in config:
            _avoid_mask_op_names(item)
        return
    if not isinstance(config, dict):
        return
    for value in config.values():
        _avoid_mask_op_names(value)
    layers = config.get("config", {}).get("layers") if config.get("class_name") == "Functional" else None
    text = json.dumps(layers) if isinstance(layers, list) else ""
    if not ('"mask_zero": true' in text or '"class_name": "Masking"' in text):
        return
    names = {e.get("name") for e in layers}
    renames = {}
    for entry in layers:  # (its name or a numbered one: Keras's counter in the loading process may be anywhere)
        if re.fullmatch(rf"({'|'.join(_MASK_OP_NAMES)})(_\d+)?", str(entry.get("name"))):
            new = next(f"{entry['name']}_layer{'' if k == 0 else f'_{k}'}" for k in range(len(names) + 1)
                       if f"{entry['name']}_layer{'' if k == 0 else f'_{k}'}" not in names)
            renames[entry["name"]] = new
            names.add(new)
            entry["name"] = entry["config"]["name"] = new
    if renames:
        _rename_history(config["config"], renames)


def _rename_history(obj, renames: dict) -> None:
    """Every ``keras_history`` (and input/output reference) naming a renamed layer, renamed."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "keras_history" and isinstance(value, list) and value and value[0] in renames:
                value[0] = renames[value[0]]
            elif key in ("input_layers", "output_layers"):
                _rename_refs(value, renames)
            else:
                _rename_history(value, renames)
    elif isinstance(obj, list):
        for value in obj:
            _rename_history(value, renames)


def _rename_refs(refs, renames: dict) -> None:
    if isinstance(refs, list) and refs and isinstance(refs[0], str):
        refs[0] = renames.get(refs[0], refs[0])
    elif isinstance(refs, list):
        for r in refs:
            _rename_refs(r, renames)
    elif isinstance(refs, dict):
        for r in refs.values():
            _rename_refs(r, renames)


def _strip_key(obj, key: str) -> None:
    if isinstance(obj, dict):
        obj.pop(key, None)
        for v in obj.values():
            _strip_key(v, key)
    elif isinstance(obj, list):
        for v in obj:
            _strip_key(v, key)


def _keras2_masked_layers(model) -> list[str]:
    """The layers of a graph (nested ones too) that mask as tf_keras's (``use_keras2_semantics``) and may be
    given a mask."""
    found = []
    for node in getattr(model, "_nodes", ()):
        layer = node.layer
        if getattr(layer, "_fg_model", False):
            found += _keras2_masked_layers(layer)
        elif type(layer).__name__ != "Embedding" and getattr(layer, "keras2_semantics", False) and \
                any(may_carry_mask(t) for t in node.args):
            found.append(f"{type(layer).__name__} {layer.name!r}")
    return found


def file_config(model) -> dict:
    """The config a Keras 3 file holds for a graph model (config.json of a ``.keras`` file, with its
    ``compile_config``; the ``model_config`` of a legacy ``.h5`` file)."""
    from .keras_save import keras3_compile_config

    config = functional_config(model) if getattr(model, "_fg_model", False) else _sequential_config(model)
    if INPUT_MASK_KEY in json.dumps(config):
        raise UnsupportedKerasFeature(
            "the model (from a tf_keras file) calls a recurrent layer with initial_state on a masked input: "
            "tf_keras applied the mask in that call, Keras 3 does not, so a Keras 3 file would compute "
            "differently")
    masked = _keras2_masked_layers(model)
    if masked:
        raise UnsupportedKerasFeature(
            f"the model (from a tf_keras file) gives masked inputs to {', '.join(masked)}, whose masks tf_keras "
            "combined otherwise than Keras 3 does (a merge: the AND of the masks present, not applied in the call; "
            "MultiHeadAttention, TimeDistributed), so a Keras 3 file would compute differently: pickle the model, "
            "or save its weights (model.save_weights)")
    _strip_key(config, KERAS2_KEY)  # (Keras's layers take no such option; the file computes as Keras 3 does)
    _avoid_mask_op_names(config)
    compile_config = keras3_compile_config(model)
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def save_functional(model, path) -> None:
    import zipfile

    from .atomic import atomic_file

    config = file_config(model)
    metadata = {"keras_version": "3.0.0", "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "producer": "fastgru"}
    buffer = io.BytesIO()
    write_weights(model, buffer, with_optimizer=True)
    with atomic_file(path) as f, zipfile.ZipFile(f, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())


def rebuild_functional(config, weights, compile_args=None, custom_classes=None):
    """Unpickle a Functional ``Model`` (``Model.__reduce__``): the model from its Keras config (its custom layers
    from ``custom_classes``, Keras class name -> class), its weights, and its compile arguments (the optimizer
    object as it was, losses, loss_weights, metrics, weighted metrics)."""
    from ..layers import registry
    from .keras_functional import model_from_config

    with registry.custom_layers(custom_classes):
        model = model_from_config(config)
    model.set_weights(weights)
    if compile_args is not None:
        optimizer, loss, loss_weights, metrics, *weighted = compile_args  # (weighted_metrics: since 2026-12)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics,
                      weighted_metrics=weighted[0] if weighted else None)
    return model
