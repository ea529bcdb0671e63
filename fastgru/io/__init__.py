"""Keras files without TensorFlow: ``load_model``, ``load_weights``, ``save_model``, ``save_weights``,
``from_keras`` and ``describe`` (``fastgru info``).

Formats: Keras 3 ``.keras`` zips and ``.weights.h5`` files; legacy HDF5 full models written by
tf.keras 2.x / tf_keras and by Keras 3's ``model.save("x.h5")``, and legacy ``.h5`` weight files.
The file's content decides the format, not its name.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from ..errors import ModelFileError, UnsupportedKerasFeature
from ..layers import registry
from . import (
    functional_save,
    graph_files,
    graph_weights,
    keras_assets,
    keras_config,
    keras_functional,
    keras_nodes,
    keras_v3,
    legacy_h5,
    legacy_h5_save,
    optimizer_state,
    saved_model,
    sharded_weights,
    tensor_bundle,
)
from .atomic import atomic_write_bytes
from .compile_restore import restore_compile
from .from_keras import from_keras
from .h5utils import (
    dataset_layout,
    dataset_shape,
    get_group,
    guard,
    open_h5,
    read_dataset,
    read_json_attr,
    read_list_attr,
)
from .keras_save import keras3_weight_paths
from .load_options import STRICT, LoadOptions
from .model_builder import build_model

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _sniff(path) -> str:
    """'zip' or 'hdf5' from the file's first bytes, 'savedmodel' for a directory, 'checkpoint' for a
    TensorFlow checkpoint prefix (``prefix.index`` exists); ModelFileError for anything else."""
    p = Path(path)
    if saved_model.is_checkpoint_prefix(p):
        return "checkpoint"
    if not p.exists():
        raise ModelFileError(path, "no such file")
    if p.is_dir():
        return "savedmodel"  # saved_model.read_saved_model refuses a directory that is not a Keras SavedModel
    with open(p, "rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head == _HDF5_MAGIC:
        return "hdf5"
    if not head:
        raise ModelFileError(path, "the file is empty")
    raise ModelFileError(path, f"neither a .keras (zip) nor an HDF5 file (it starts with {head!r})")


def load_model(path, custom_objects: dict | None = None, compile: bool = True,  # noqa: A002  (Keras's name)
               safe_mode: bool = True):
    """A fastgru model (``Sequential`` or ``Model``) from a Keras ``.keras`` or legacy ``.h5`` model file, or a
    tf.keras 2.x SavedModel directory.

    With ``compile`` (default, as Keras) a model saved after ``compile`` comes back compiled with the
    same optimizer configuration, loss and metrics, and — from a ``.keras`` or a tf_keras ``.h5`` file — the
    optimizer's saved state (its step count, learning rate and slots), so that training goes on as Keras's
    loaded model's does.

    ``safe_mode`` as Keras's: fastgru runs no code from a file (always safe). Of ``custom_objects``, the layer
    classes written for fastgru as for Keras (``fastgru.layers.custom``) build the file's layers of their names;
    another custom layer or function is refused by name (a custom metric is left out, with a warning).
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"custom_objects should be a dict (name -> object), received {type(custom_objects).__name__}")
    with registry.custom_layers(custom_objects):
        return _load_model(path, compile)


def _load_model(path, compile: bool):
    kind = _sniff(path)
    if kind == "checkpoint":
        raise ModelFileError(path, "a TensorFlow weights checkpoint (save_weights), not a full model: build the "
                                   "model and call model.load_weights(path)")
    if kind == "savedmodel":  # Keras 2 SavedModel: config and weights from the folder, same builder
        with saved_model.read_saved_model(path) as source:
            try:
                spec = _parse(source.config, path, source.version)
            except UnsupportedKerasFeature as exc:
                if not (keras_functional.is_functional(source.config) or saved_model.holds_a_model(source.config)):
                    raise
                raise UnsupportedKerasFeature(
                    f"{exc}; from a SavedModel directory fastgru loads Sequential models and plain chains, without "
                    "nested models: load this model in TensorFlow and save it as .h5 (model.save('model.h5')), which "
                    "fastgru loads") from None
            model = build_model(spec, source.version, path, weight_bytes=source.weight_bytes)
            saved_model.load_into(model, spec, source, path)
        model.file_format = f"{saved_model.FORMAT} written by Keras {source.version}"
        if compile:
            restore_compile(model, source.training_config, path, source.version)
            if getattr(getattr(model, "optimizer", None), "tf_keras_steps", False):
                model.optimizer.first_traces = 1  # (tf_keras traces a SavedModel's train step as a live model's)
        return model
    if kind == "zip":
        # the config first (size-capped); the weights it may declare are bounded by the bytes the weights
        # take in the archive (compressed), checked before anything is allocated; model.weights.h5 is then
        # decompressed only if it claims no more bytes than those declared weights can need
        with keras_v3.KerasZip(path) as archive:
            config, version = archive.config, archive.version
            spec = _parse_or_graph(config, path, version)
            if spec is None:  # a Functional graph that is not a chain (io/keras_functional.py)
                model, weights = graph_files.load_zip_graph(archive, config, version, path)
            else:
                model = build_model(spec, version, path, weight_bytes=archive.weights_stored_bytes)
                weights = archive.read_weights(keras_v3.max_weights_file_bytes(model))
                keras_assets.load_assets(archive, model._layers_and_ops, spec.layers, path)
        if spec is not None:
            keras_v3.load_v3_weights(model, spec.layers, weights, path)
        model.file_format = "Keras v3 format (.keras zip archive)"
        if compile:
            restore_compile(model, config.get("compile_config"), path, version)
            with guard(path), open_h5(path, weights) as f:  # the optimizer's state, where Keras saved it
                optimizer_state.restore(model, optimizer_state.read_vars(f, model, path), path,
                                        keras2=keras_config.keras_major(version) < 3)
        return model
    with guard(path), open_h5(path) as f:
        config = read_json_attr(f, "model_config", path)
        if config is None:
            if _weights_kind(f) is not None:
                raise ModelFileError(path, "a weights-only file, not a full model: build the model and call "
                                           "model.load_weights(path)")
            raise ModelFileError(path, "an HDF5 file without a Keras model_config attribute: not a Keras model file")
        version = legacy_h5.keras_version(f, path)
        spec = _parse_or_graph(config, path, version)
        if spec is None:  # a Functional graph that is not a chain (io/keras_functional.py)
            model = graph_files.load_h5_graph(f, config, version, path)
        else:
            model = build_model(spec, version, path, weight_bytes=os.path.getsize(path))
            legacy_h5.assign_legacy_weights(model._layers_and_ops, spec.layers, legacy_h5.model_weights_group(f, path),
                                            path)
        keras_assets.refuse_missing_vocabulary(model._layers_and_ops, path)
        training_config, saved_state = None, None
        if compile:
            try:
                training_config = read_json_attr(f, "training_config", path)
            except ModelFileError as exc:
                warnings.warn(f"{exc}; the model is loaded uncompiled", stacklevel=2)
            saved_state = optimizer_state.read_tf_keras(f, model, path)  # (bounded by the model's weights)
    restore_compile(model, training_config, path, version, legacy_h5=True)
    if keras_config.keras_major(version) < 3:
        optimizer_state.restore_tf_keras(model, saved_state, path)  # (tf_keras's load_model restores it too)
    elif saved_state is not None:  # Keras 3's variables, in its order (see restore_keras3_h5 on Keras's own load)
        optimizer_state.restore_keras3_h5(model, saved_state, path)
    model.file_format = f"legacy HDF5 (.h5) written by Keras {version or '(unknown version)'}"
    return model


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """A model of the architecture a ``to_json`` string describes (Keras's or fastgru's), its weights freshly
    initialised, as ``keras.models.model_from_json``; the layers and options a model file may hold, refused as
    there (``custom_objects``: as in :func:`load_model`)."""
    import json

    try:
        config = json.loads(json_string)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model_from_json expects a JSON string (model.to_json()'s): {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError("model_from_json expects the JSON of a model config, with 'class_name' and 'config'")
    version = str(config.get("keras_version") or "3")
    spec = _parse_or_graph(config, "<json>", version)
    if spec is None:
        return keras_functional.build_functional(config, "<json>", version)[0]
    return build_model(spec, version, "<json>")


def _parse(config, path, version) -> keras_config.ModelSpec:
    try:
        return keras_config.parse_model(config, path, version)
    except RecursionError:
        raise ModelFileError(path, "the model config is nested too deeply: damaged file") from None


def _parse_or_graph(config, path, version):
    """The chain spec of a model config, or None for a Functional graph that is not a plain chain
    (several inputs or outputs, branches, shared layers) or that holds a nested model: that one is built
    by io/keras_functional.py."""
    if keras_nodes.holds_nested_model(config):
        return None
    try:
        return _parse(config, path, version)
    except UnsupportedKerasFeature:
        if keras_functional.is_functional(config):
            return None
        raise


def _weights_kind(f) -> str | None:
    """'legacy' (a layer_names attribute), 'v3' (layers/ and vars/ groups) or None for an HDF5 weights file."""
    root = f["model_weights"] if "model_weights" in f and isinstance(f["model_weights"], h5py.Group) else f
    if any(isinstance(k, str) and k.startswith("layer_names") for k in root.attrs):
        return "legacy"
    if "layers" in f or "vars" in f:
        return "v3"
    return None


def _v3_specs(model, root) -> list:
    """Where each of ``model``'s layers finds its variables in a Keras 3 weights file: where the Keras
    model the layers came from kept them (nested models, TimeDistributed) when the file has all of those
    paths, else the paths a flat Sequential of these layers has (what fastgru and Keras write for it)."""
    computed = keras3_weight_paths(model)
    stored = getattr(model, "_keras_v3_paths", None)
    paths = computed
    if stored is not None and len(stored) == len(computed) and stored != computed:
        if all(p in root for p, l in zip(stored, model._layers_and_ops) if l.weights):
            paths = stored
    return [keras_config.LayerSpec(type(l).__name__, {}, p, l.name) for l, p in zip(model._layers_and_ops, paths)]


def load_weights(model, path, options: LoadOptions = STRICT) -> None:
    """Load Keras 3 ``.weights.h5`` (or a ``.keras`` file's weights, or sharded ``.weights.json``) or a legacy
    ``.h5`` into ``model``: all of them or none (the layers are filled one by one; a refusal at a later one puts
    the earlier ones back). ``options``: load_weights's ``skip_mismatch``, ``by_name``, ``objects_to_skip``."""
    if not model.built:
        raise ValueError("load_weights() needs a built model: call build(input_shape) first")
    weights = model.weights
    before = [w.copy() for w in weights]
    try:
        _load_weights(model, path, options)
    except BaseException:
        for w, old in zip(weights, before):
            w[...] = old
        raise


def _load_weights(model, path, options: LoadOptions) -> None:
    if sharded_weights.is_map(path):
        with guard(path), sharded_weights.merged(path, keras_v3.max_weights_file_bytes(model)) as f:
            keras_v3.assign_v3_weights(*_v3_targets(model, f), f, path, options)
            optimizer_state.restore_from_weights_file(model, f, path)
        return
    kind = _sniff(path)
    if kind in ("checkpoint", "savedmodel"):  # save_weights(save_format="tf") prefix, SavedModel's variables
        if options != STRICT:
            raise UnsupportedKerasFeature("load_weights of a TensorFlow checkpoint takes no skip_mismatch, "
                                          "by_name or objects_to_skip")
        saved_model.load_checkpoint_weights(model, path)
        return
    if kind == "zip":
        _, _, weights = keras_v3.read_keras_zip(path, keras_v3.max_weights_file_bytes(model))
        with guard(path), open_h5(path, weights) as f:
            keras_v3.assign_v3_weights(*_v3_targets(model, f), f, path, options)
            optimizer_state.restore_from_weights_file(model, f, path)
        return
    with guard(path), open_h5(path) as f:
        weights_kind = _weights_kind(f)
        if weights_kind == "legacy" and options.by_name:
            _load_legacy_by_name(model, legacy_h5.model_weights_group(f, path), path, options)
        elif weights_kind == "legacy":
            _load_legacy_by_order(model, legacy_h5.model_weights_group(f, path), path, options)
        elif weights_kind == "v3":
            keras_v3.assign_v3_weights(*_v3_targets(model, f), f, path, options)
            optimizer_state.restore_from_weights_file(model, f, path)
        else:
            raise ModelFileError(path, "an HDF5 file that holds neither Keras 3 weights (layers/...) nor legacy "
                                       "weights (a layer_names attribute)")


def _v3_targets(model, root) -> tuple[list, list]:
    """(layers, specs) to fill from a Keras 3 weights file: a Functional model's leaves
    (io/keras_functional.py), else the model's layers at the paths of :func:`_v3_specs`."""
    if keras_functional.uses_graph(model):
        return graph_weights.v3_leaves(model)
    return model._layers_and_ops, _v3_specs(model, root)


def _load_legacy_by_name(model, root, path, options: LoadOptions) -> None:
    """``by_name=True``: each of the model's layers takes the file's group of its name (a nested model's group,
    its layers' weights in order); layers without one, and the file's other groups, are left alone."""
    in_file = set(read_list_attr(root, "layer_names", path))
    layers, specs = [], []
    for layer in model._layers_and_ops:
        if layer.weights and layer.name in in_file:
            for leaf in [layer] if hasattr(layer, "weight_paths") else _weighted_leaves([layer]):
                layers.append(leaf)
                specs.append(keras_config.LayerSpec(type(leaf).__name__, {}, "", layer.name))
    legacy_h5.assign_legacy_weights(layers, specs, root, path, options)


def _load_legacy_by_order(model, root, path, options: LoadOptions = STRICT) -> None:
    """Keras's legacy rule: the file's layers that have weights pair with the model's, in order. When a
    group holds several layers' weights (a nested model), the flat lists pair instead, if they agree."""
    groups = []
    for n in read_list_attr(root, "layer_names", path):
        if n in root:
            names = read_list_attr(root[n], "weight_names", path)
            if names:
                groups.append((n, names))
    layers = [l for l in model._layers_and_ops if l.weights]
    if len(groups) == len(layers) and all(hasattr(l, "weight_paths") for l in layers):
        specs = [keras_config.LayerSpec(type(l).__name__, {}, "", n) for l, (n, _) in zip(layers, groups)]
        legacy_h5.assign_legacy_weights(layers, specs, root, path, options)
        return
    if len(groups) == len(layers):  # (a nested model's group lists its trainable weights first: back in model order)
        groups = [(n, legacy_h5.in_model_order(names, _weighted_leaves([l]))) for (n, names), l in zip(groups, layers)]
    layers = _weighted_leaves(layers)  # (a nested model's group holds its layers' weights)
    flat = [(n, w) for n, names in groups for w in names]
    if len(flat) != sum(len(l.weights) for l in layers):
        raise ModelFileError(path, f"the file has weights for {len(groups)} layers "
                                   f"({', '.join(n for n, _ in groups)}), the model has {len(layers)} layers "
                                   f"with weights ({', '.join(l.name for l in layers)})")
    for layer in layers:
        own, flat = flat[:len(layer.weights)], flat[len(layer.weights):]
        groups_of = [get_group(root, n, path) for n, _ in own]
        shapes = [dataset_shape(g, w, path) for g, (_, w) in zip(groups_of, own)]
        keep = legacy_h5.fitting([layer], shapes, own[0][0], path, options.skip_mismatch)
        arrays = [read_dataset(g, w, path, a.shape) if k else a.copy()
                  for g, (_, w), a, k in zip(groups_of, own, layer.weights, keep)]
        keras_v3.set_checked(layer, arrays, path, where=own[0][0])


def _weighted_leaves(layers: list) -> list:
    """The layers with weights, each nested model replaced by its own (recursively, in order)."""
    out = []
    for layer in layers:
        if hasattr(layer, "weight_paths"):
            out.append(layer)
        else:
            out.extend(_weighted_leaves([inner for inner in layer.layers if inner.weights]))
    return out


def save_model(model, path, include_optimizer: bool = True) -> None:
    """Write a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens; a path ending in ``.h5`` (or
    ``.hdf5``) gets the legacy HDF5 model file Keras 3 also writes, with Keras's warning (no optimizer state;
    with ``include_optimizer=False`` no compile arguments either, as Keras's), its folders made as Keras makes them.

    Crash-safe: the file is written under a temporary name in the same folder, fsynced and renamed over
    ``path``, so a process killed mid-save leaves the previous file intact and loadable."""
    if str(path).endswith((".h5", ".hdf5")) and not str(path).endswith(".weights.h5"):
        _warn_non_finite(model, path)
        uses_graph = keras_functional.uses_graph(model)
        config = functional_save.file_config(model) if uses_graph else keras_v3.keras3_model_config(model)
        if not include_optimizer:
            config.pop("compile_config", None)
        legacy_h5_save.save_h5(model, path, config)
        return
    if not str(path).endswith(".keras"):
        raise ValueError(f"save() writes Keras 3 .keras files (or legacy .h5 files); the path must end in .keras, "
                         f"received {str(path)!r}")
    _warn_non_finite(model, path)
    if keras_functional.uses_graph(model):  # a Functional model, or a Sequential holding one
        functional_save.save_functional(model, path)
        return
    keras_v3.save_keras_zip(model, path)


def _warn_non_finite(model, path) -> None:
    """Warn that weights holding NaN or infinities are written as they are (Keras loads them; fastgru's loaders
    refuse them as damage): a training run that diverged, which ``fg.callbacks.TerminateOnNaN`` stops."""
    bad = [w for w in model.weights if w.dtype.kind == "f" and not np.isfinite(w).all()]
    if bad:
        warnings.warn(f"{path}: {len(bad)} of the model's weights hold NaN or infinite values (training diverged?); "
                      "they are saved as they are, and fastgru's load_model and load_weights will refuse the file "
                      "(TerminateOnNaN stops fit at the first NaN loss)", stacklevel=4)


def save_weights(model, path, max_shard_size=None) -> None:
    """Write a Keras 3 ``.weights.h5`` file (``keras_model.load_weights`` reads it), crash-safe; with
    ``max_shard_size`` (GB), Keras's sharded ``.weights.json`` map and its shards (``sharded_weights``)."""
    if max_shard_size is None and not str(path).endswith(".weights.h5"):
        raise ValueError(f"save_weights() writes Keras 3 weights files; the path must end in .weights.h5, "
                         f"received {str(path)!r}")
    _warn_non_finite(model, path)
    buffer = io.BytesIO()
    if keras_functional.uses_graph(model):  # (a compiled model's optimizer state too, as Keras's save_weights)
        functional_save.write_weights(model, buffer, with_optimizer=True)
    else:  # where the Keras model the layers came from kept them (keras_model.load_weights reads the file)
        keras_v3.write_weights_h5(model, buffer, keras_v3.keras_source_paths(model), with_optimizer=True)
    if max_shard_size is not None:
        sharded_weights.write(buffer.getvalue(), path, max_shard_size)
        return
    atomic_write_bytes(path, buffer.getvalue())  # crash-safe, as save_model


def describe(path) -> str:
    """What ``fastgru info FILE`` prints: the file format, the Keras version and the model summary (for a
    weights-only file: its variables and their shapes). Needs no TensorFlow. Each line as
    :func:`fastgru.summary.printable` shows it (names from the file cannot forge lines or move the cursor)."""
    from ..summary import printable

    lines = [f"file: {os.fspath(path)}"]
    kind = _sniff(path)
    weights = None
    if kind == "hdf5":
        with guard(path), open_h5(path) as f:
            if "model_config" not in f.attrs:
                weights = _describe_weights(f, path)
    if kind == "checkpoint":
        lines += tensor_bundle.describe_checkpoint(path)
    elif weights is not None:
        lines += weights
    else:
        model = load_model(path, compile=False)
        lines += [f"format: {model.file_format}",
                  f"keras_version: {getattr(model, 'keras_version', None) or '(not recorded)'}", ""]
        model.summary(print_fn=lines.append)
    return "\n".join(printable(line) for line in lines)


def _describe_weights(f, path) -> list[str]:
    kind = _weights_kind(f)
    version = legacy_h5.keras_version(f, path)
    if kind == "legacy":
        root = legacy_h5.model_weights_group(f, path)
        rows = [(f"{n}/{w}", dataset_shape(get_group(root, n, path), w, path))
                for n in read_list_attr(root, "layer_names", path) if n in root
                for w in read_list_attr(root[n], "weight_names", path)]
        fmt = f"legacy HDF5 weights (.h5) written by Keras {version or '(unknown version)'}"
    elif kind == "v3":
        rows = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                dataset_layout(obj, "/" + name, path)  # refused when its data would not come from this file
                rows.append((name, obj.shape))

        try:
            f.visititems(visit)
        except ModelFileError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelFileError(path, f"the weights file cannot be read ({exc})") from None
        fmt = "Keras 3 weights file (.weights.h5)"
    else:
        raise ModelFileError(path, "an HDF5 file without a Keras model_config attribute nor Keras weights: "
                                   "not a Keras file")
    width = max([len(n) for n, _ in rows] + [8])
    total = sum(math.prod(int(d) for d in s) for _, s in rows)  # Python ints: no overflow for huge shapes
    return [f"format: {fmt}", f"keras_version: {version or '(not recorded)'}",
            "weights only (no model config): build the model, then model.load_weights(path)", "",
            f"{'Variable':<{width}}  Shape"] + [f"{n:<{width}}  {tuple(s)}" for n, s in rows] + \
        ["", f"Total params: {total:,}"]


__all__ = ["describe", "from_keras", "load_model", "load_weights", "save_model", "save_weights"]
