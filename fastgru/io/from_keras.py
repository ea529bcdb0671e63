"""``fg.from_keras``: convert a live Keras 3 or tf_keras model. The only place fastgru imports keras,
lazily, inside the function."""

from __future__ import annotations

import json
import warnings

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..layers import registry
from ..training.keras_objects import keras_config as keras_object_config
from . import keras_config, optimizer_state
from .compile_restore import restore_compile


def from_keras(keras_model, compile: bool = True, custom_objects: dict | None = None):  # noqa: A002
    """Convert a live Keras (3, or tf_keras 2) model into a fastgru Sequential (imports keras only here).
    With ``compile`` (default, as ``load_model``) a compiled Keras 3 model comes back compiled the same way,
    its optimizer carrying the Keras optimizer's state: training goes on as the Keras model's would. A compiled
    tf_keras model comes back uncompiled, with a warning (its file, loaded with ``load_model``, keeps the compile).
    ``custom_objects``: as ``load_model``'s, the fastgru classes (and functions) of the model's own layers (and
    losses and metrics), by name."""
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"custom_objects should be a dict (name -> object), received {type(custom_objects).__name__}")
    with registry.custom_layers(custom_objects):
        model = _convert(keras_model)
        if compile:
            _compile_like(model, keras_model)
    return model


def _compile_like(model, keras_model) -> None:
    """Keras 3's compile configuration (what a ``.keras`` file holds as ``compile_config``) and optimizer
    variables (its ``optimizer/vars``), given to ``model`` as ``load_model`` gives a file's."""
    get_config = getattr(keras_model, "get_compile_config", None)
    if not callable(get_config) or not getattr(keras_model, "compiled", False):
        if getattr(keras_model, "_is_compiled", False):  # (tf_keras: its live compile arguments are no saved config)
            warnings.warn("a compiled tf_keras model converts uncompiled: compile the fastgru model, or save the "
                          "tf_keras model (.h5) and fg.load_model the file, which keeps its compile configuration",
                          stacklevel=3)
        return
    try:
        config = json.loads(json.dumps(get_config()))  # (as a file holds it)
    except (TypeError, ValueError) as exc:
        warnings.warn(f"the Keras model's compile configuration cannot be serialised ({exc}); the model is "
                      "converted uncompiled", stacklevel=3)
        return
    live_loss = _live_losses(getattr(keras_model, "loss", None))
    if live_loss is not None:  # (the loss objects themselves: Keras's configs drop their functions' arguments)
        config["loss"] = live_loss
    restore_compile(model, config, "<live keras model>", _keras_version_of(keras_model))
    optimizer = getattr(keras_model, "optimizer", None)
    if getattr(model, "_compiled", None) is not None and optimizer is not None:
        _weight_decay_exclusions(model, keras_model, optimizer)
    if getattr(model, "_compiled", None) is not None:  # (summary() counts the optimizer's variables if Keras's has any)
        model.optimizer.built_by_keras_load = bool(getattr(optimizer, "built", False))
    if getattr(model, "_compiled", None) is not None and optimizer is not None and getattr(optimizer, "built", False):
        optimizer_state.restore(model, [np.asarray(v) for v in optimizer.variables], "<live keras model>")


def _weight_decay_exclusions(model, keras_model, keras_optimizer) -> None:
    """The Keras optimizer's ``exclude_from_weight_decay`` (kept out of its config) on the converted model's optimizer:
    its name patterns, and its variables as the converted model's arrays at their places among the trainable ones."""
    patterns = getattr(keras_optimizer, "_exclude_from_weight_decay_pattern", None) or []
    patterns = [getattr(p, "pattern", p) for p in (patterns if isinstance(patterns, (list, tuple)) else [patterns])]
    excluded = set(getattr(keras_optimizer, "_exclude_from_weight_decay", None) or ())
    theirs = list(getattr(keras_model, "trainable_weights", None) or [])
    ours = model.trainable_weights
    key = getattr(keras_optimizer, "_var_key", None)  # (how Keras keys them: the TensorFlow variable's unique id)
    arrays = [w for k, w in zip(theirs, ours) if excluded and (key(k) if callable(key) else id(k)) in excluded]
    if (patterns or arrays) and len(theirs) == len(ours):
        model.optimizer.exclude_from_weight_decay(var_list=arrays, var_names=patterns or None)


def _live_losses(loss):
    """The compiled loss (one object, or a list or dict of them) as configs that keep what Keras's own configs
    drop (Huber's ``delta``: ``keras_objects.keras_config``), or None where it holds anything else."""
    if isinstance(loss, dict):
        parts = {k: _live_losses(v) for k, v in loss.items()}
        return None if any(v is None for v in parts.values()) else parts
    if isinstance(loss, (list, tuple)):
        parts = [_live_losses(v) for v in loss]
        return None if any(v is None for v in parts) else parts
    if loss is None or isinstance(loss, str) or not getattr(loss, "_fn_kwargs", None):
        return loss if isinstance(loss, str) else None
    try:
        return json.loads(json.dumps(keras_object_config(loss)))
    except (TypeError, ValueError):
        return None


def _convert(keras_model):
    if getattr(keras_model, "built", True) is False:
        raise ValueError(f"the Keras model {getattr(keras_model, 'name', '')!r} is not built, so it has no weights "
                         "to convert: call its build(input_shape) (or call it on data) first")
    version = _keras_version_of(keras_model)
    try:  # the same JSON config a saved file holds (get_config() may hold live tensors)
        config = json.loads(keras_model.to_json())
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnsupportedKerasFeature(f"cannot serialise the Keras model's config: {exc}") from None
    _restore_causal(keras_model, config)
    from .keras_nodes import holds_nested_model

    if holds_nested_model(config):  # (built as a graph: the nested model stays one)
        return _from_keras_graph(keras_model, config, version)
    try:
        spec = keras_config.parse_model(config, "<live keras model>", version)
    except UnsupportedKerasFeature:
        from . import keras_functional

        if not keras_functional.is_functional(config):
            raise
        return _from_keras_graph(keras_model, config, version)  # a Functional graph, not a chain
    from .model_builder import build_model

    model = build_model(spec, version, "<live keras model>")
    sources = _leaf_layers(keras_model)
    if [getattr(k, "name", None) for k in sources] != [s.config.get("name") for s in spec.layers]:
        by_name = {k.name: k for k in sources}  # a Functional chain listed out of order: pair by name
        sources = [by_name.get(s.config.get("name")) for s in spec.layers]
    for layer, source, s in zip(model._layers_and_ops, sources, spec.layers):
        if not layer.weights:
            continue  # (also a Keras op run as a layer, keras.ops.softmax: not in the Keras model's layers)
        if source is None:
            raise UnsupportedKerasFeature(f"layer {s.config.get('name')!r} not found in the Keras model")
        weights = _source_weights(source)
        try:
            layer.set_weights(weights)
        except (TypeError, ValueError) as exc:
            raise UnsupportedKerasFeature(
                f"layer {source.name!r} ({s.class_name}): its Keras weights "
                f"{[tuple(w.shape) for w in weights]} do not fit fastgru's {s.class_name} ({exc})") from None
    _take_vocabularies(model, keras_model)
    model.file_format = f"live Keras model (Keras {version})"
    return model


def _take_vocabularies(model, keras_model) -> None:
    """Preprocessing layers whose vocabulary the Keras config leaves out (adapted: Keras keeps it in a lookup
    table) take it, and a TF-IDF layer its weights, from the Keras layer of the same name."""
    by_name, stack = {}, [keras_model]
    while stack:
        for k in getattr(stack.pop(), "layers", None) or []:
            by_name.setdefault(getattr(k, "name", None), k)
            stack.append(k)
    stack = list(model._layers_and_ops)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", None) or [] if getattr(layer, "_fg_model", False) else [])
        source = by_name.get(layer.name)
        if not getattr(layer, "needs_vocabulary", lambda: False)() or source is None:
            continue
        layer.take_vocabulary(list(source.get_vocabulary(include_special_tokens=True)))
        idf = getattr(getattr(source, "_lookup_layer", source), "idf_weights_const", None)
        if idf is not None:
            layer.load_keras_own_variables({"idf_weights": np.asarray(idf)})


def _source_weights(source) -> list:
    """A Keras layer's weights in fastgru's order (bfloat16 ones widened to float32, exactly); with LoRA enabled
    (a Dense or an Embedding), the kernel Keras computes with (its ``kernel``/``embeddings`` property: the frozen
    kernel plus the scaled LoRA product)."""
    if not getattr(source, "lora_enabled", False):
        return [w.astype(np.float32) if str(w.dtype) == "bfloat16" else w for w in source.get_weights()]
    kind = type(source).__name__
    if kind == "Dense":
        return [np.asarray(source.kernel)] + ([np.asarray(source.bias)] if source.use_bias else [])
    if kind == "Embedding":
        return [np.asarray(source.embeddings)]
    raise UnsupportedKerasFeature(f"layer {source.name!r} ({kind}): LoRA is enabled; save the model to a .keras file "
                                  "(Keras merges the LoRA weights into the kernel) and load that file")


def _from_keras_graph(keras_model, config, version):
    """A fastgru Model for a live Keras Functional graph: built from its config, each layer's weights
    from the Keras layer of the same name (the two models may list their layers in different orders:
    Keras sorts dict outputs by key)."""
    from . import keras_functional

    model, _ = keras_functional.build_functional(config, "<live keras model>", version)
    weights = _weights_by_name(model, keras_model)
    try:
        model.set_weights(weights)
    except (TypeError, ValueError) as exc:
        raise UnsupportedKerasFeature(f"the Keras model's weights do not fit the fastgru model built from its config "
                                      f"({exc})") from None
    _take_vocabularies(model, keras_model)
    model.file_format = f"live Keras model (Keras {version})"
    return model


def _restore_causal(keras_model, config) -> None:
    """tf_keras's Attention and AdditiveAttention take ``causal=True`` in their constructor but leave it out of
    their config: put it back from the live layers (by name), so that the converted model is causal too."""
    causal = set()
    stack = [keras_model]
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", None) or [])
        inner = getattr(layer, "layer", None)
        if inner is not None:
            stack.append(inner)
        if type(layer).__name__ in ("Attention", "AdditiveAttention") and getattr(layer, "causal", False) is True:
            causal.add(layer.name)
    if not causal:
        return

    def walk(obj):
        if isinstance(obj, dict):
            cfg = obj.get("config")
            if (obj.get("class_name") in ("Attention", "AdditiveAttention") and isinstance(cfg, dict)
                    and cfg.get("name") in causal and "causal" not in cfg):
                cfg["causal"] = True
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(config)


def _is_model(layer) -> bool:
    return type(layer).__name__ in keras_config.MODEL_CLASSES and hasattr(layer, "layers")


def _weights_by_name(model, keras_model) -> list:
    """The Keras model's weight arrays in the order of the fastgru ``model.get_weights()``: each weighted
    fastgru layer takes those of the Keras layer of its name (nested models paired the same way)."""
    by_name = {getattr(k, "name", None): k for k in getattr(keras_model, "layers", [])}
    weights = []
    for layer in model._layers_and_ops:
        if not layer.weights:
            continue
        source = by_name.get(layer.name)
        if source is None:
            raise UnsupportedKerasFeature(f"layer {layer.name!r} not found in the Keras model "
                                          f"{getattr(keras_model, 'name', '')!r}")
        if _is_model(layer) and _is_model(source):
            weights.extend(_weights_by_name(layer, source))
        else:
            weights.extend(_source_weights(source))
    return weights


class _CellSource:
    """One cell of a Keras RNN over a stack of cells, as the source of the fastgru layer built for it
    (keras_rnn_cells.stacked_layers names it)."""

    def __init__(self, name: str, cell):
        self.name, self._cell = name, cell

    def get_weights(self) -> list:
        return self._cell.get_weights()


def _leaf_layers(keras_model) -> list:
    """The Keras layers that become fastgru layers, in order: nested models flattened, InputLayers
    skipped (a TimeDistributed stays itself: its get_weights are the inner layer's)."""
    leaves = []
    for layer in getattr(keras_model, "layers", []):
        if type(layer).__name__ == "InputLayer":
            continue
        if type(layer).__name__ in keras_config.MODEL_CLASSES and hasattr(layer, "layers"):
            leaves.extend(_leaf_layers(layer))
        elif type(getattr(layer, "cell", None)).__name__ == "StackedRNNCells":  # one fastgru layer per cell
            cells = layer.cell.cells
            leaves.extend(_CellSource(layer.name if k == len(cells) - 1 else f"{layer.name}_{cell.name}", cell)
                          for k, cell in enumerate(cells))
        else:
            leaves.append(layer)
    return leaves


def _keras_version_of(keras_model) -> str:
    """The version of the Keras that defines the model's class (its base classes for a subclass)."""
    for cls in type(keras_model).__mro__:
        module = cls.__module__ or ""
        if module.startswith("tf_keras"):
            import tf_keras

            return tf_keras.__version__
        if module.startswith("tensorflow.python.keras"):
            return "2 (tensorflow.python.keras)"
        if module.startswith("keras"):
            import keras

            return keras.__version__
    raise UnsupportedKerasFeature(f"{type(keras_model).__name__} is not a Keras model (keras, tf_keras or tf.keras)")
