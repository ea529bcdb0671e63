"""Keras files without TensorFlow: ``load_model``, ``load_weights``, ``save_model``, ``save_weights``,
``from_keras`` and ``describe`` (``fastgru info``).

Formats: Keras 3 ``.keras`` zips and ``.weights.h5`` files; legacy HDF5 full models written by
tf.keras 2.x / tf_keras and by Keras 3's ``model.save("x.h5")``, and legacy ``.h5`` weight files.
The file's content decides the format, not its name.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

from ..errors import ModelFileError
from . import keras_config, keras_v3, legacy_h5
from .from_keras import from_keras
from .h5utils import open_h5, read_json_attr, read_list_attr

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _sniff(path) -> str:
    """'zip' or 'hdf5' from the file's first bytes; ModelFileError for anything else."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(path, "no such file")
    if p.is_dir():
        raise ModelFileError(path, "is a directory (TensorFlow SavedModel directories are not supported; "
                                   "save the model as .keras or .h5)")
    with open(p, "rb") as f:
        head = f.read(8)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if head == _HDF5_MAGIC:
        return "hdf5"
    if not head:
        raise ModelFileError(path, "the file is empty")
    raise ModelFileError(path, f"neither a .keras (zip) nor an HDF5 file (it starts with {head!r})")


def build_model(spec: keras_config.ModelSpec, version: str | None, path):
    from ..models import Sequential

    major = keras_config.keras_major(version)
    layers = [keras_config.build_layer(s, major) for s in spec.layers]
    shape = spec.input_batch_shape
    if shape is None:
        build_config = spec.layers[0].config.get("build_config") or {}
        shape = build_config.get("input_shape")
    if shape is None:
        raise ModelFileError(path, "the model config gives no input shape, so its weights cannot be placed")
    model = Sequential(layers, name=spec.name)
    try:
        model.build(tuple(shape))
    except ValueError as exc:
        raise ModelFileError(path, f"the layer configs do not fit together: {exc}") from None
    model.keras_version = version
    return model


def restore_compile(model, training_config: dict | None, path) -> None:
    """Compile ``model`` as the file's model was (optimizer, loss, metrics), as Keras's load_model does.

    The optimizer starts from its configuration, not from the file's optimizer state. A configuration
    fastgru cannot reproduce (a custom loss, a learning-rate schedule, several outputs) leaves the
    model uncompiled, with a warning: predicting needs no compile.
    """
    if not isinstance(training_config, dict):
        return
    optimizer = training_config.get("optimizer", training_config.get("optimizer_config"))
    loss = training_config.get("loss")
    metrics = training_config.get("metrics") or []
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        metrics = metrics[0]  # Keras nests metrics per output
    if optimizer is None or loss is None:
        return
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (TypeError, ValueError, KeyError, NotImplementedError) as exc:
        warnings.warn(f"{path}: the model's training configuration is not supported by fastgru ({exc}); "
                      "the model is loaded uncompiled", stacklevel=3)


def load_model(path, compile: bool = True):  # noqa: A002  (Keras's argument name)
    """A fastgru ``Sequential`` from a Keras ``.keras`` or legacy ``.h5`` model file.

    With ``compile`` (default, as Keras) a model saved after ``compile`` comes back compiled with the
    same optimizer configuration, loss and metrics (the optimizer's state is not restored).
    """
    kind = _sniff(path)
    if kind == "zip":
        config, version, weights = keras_v3.read_keras_zip(path)
        spec = keras_config.parse_model(config, path, version)
        model = build_model(spec, version, path)
        keras_v3.load_v3_weights(model, spec.layers, io.BytesIO(weights), path)
        model.file_format = "Keras 3 .keras archive"
        if compile:
            restore_compile(model, config.get("compile_config"), path)
        return model
    with open_h5(path) as f:
        config = read_json_attr(f, "model_config", path)
        if config is None:
            if "layer_names" in f.attrs or "layers" in f:
                raise ModelFileError(path, "a weights-only file, not a full model: build the model and call "
                                           "model.load_weights(path)")
            raise ModelFileError(path, "an HDF5 file without a Keras model_config attribute: not a Keras model file")
        version = legacy_h5.keras_version(f)
        spec = keras_config.parse_model(config, path, version)
        model = build_model(spec, version, path)
        legacy_h5.assign_legacy_weights(model.layers, spec.layers, legacy_h5.model_weights_group(f, path), path)
        training_config = read_json_attr(f, "training_config", path) if compile else None
    restore_compile(model, training_config, path)
    model.file_format = f"legacy HDF5 (.h5) written by Keras {version or '(unknown version)'}"
    return model


def load_weights(model, path) -> None:
    """Load Keras 3 ``.weights.h5`` (or a ``.keras`` file's weights) or a legacy ``.h5`` into ``model``."""
    if not model.built:
        raise ValueError("load_weights() needs a built model: call build(input_shape) first")
    kind = _sniff(path)
    specs = [keras_config.LayerSpec(type(l).__name__, {}, p, l.name)
             for l, p in zip(model.layers, keras_config.keras3_weight_paths(model))]
    if kind == "zip":
        _, _, weights = keras_v3.read_keras_zip(path)
        keras_v3.load_v3_weights(model, specs, io.BytesIO(weights), path)
        return
    with open_h5(path) as f:
        root = legacy_h5.model_weights_group(f, path)
        if "layer_names" in root.attrs or any(k.startswith("layer_names") for k in root.attrs):
            _load_legacy_by_order(model, root, path)
        elif "layers" in f or "vars" in f:
            keras_v3.assign_v3_weights(model.layers, specs, f, path)
        else:
            raise ModelFileError(path, "an HDF5 file that holds neither Keras 3 weights (layers/...) nor legacy "
                                       "weights (a layer_names attribute)")


def _load_legacy_by_order(model, root, path) -> None:
    """Keras's legacy rule: the file's layers that have weights pair with the model's, in order."""
    names = [n for n in read_list_attr(root, "layer_names", path)
             if n in root and len(read_list_attr(root[n], "weight_names", path)) > 0]
    layers = [l for l in model.layers if l.weights]
    if len(names) != len(layers):
        raise ModelFileError(path, f"the file has weights for {len(names)} layers ({', '.join(names)}), the model "
                                   f"has {len(layers)} layers with weights ({', '.join(l.name for l in layers)})")
    specs = [keras_config.LayerSpec(type(l).__name__, {}, "", n) for l, n in zip(layers, names)]
    legacy_h5.assign_legacy_weights(layers, specs, root, path)


def save_model(model, path) -> None:
    """Write a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"save() writes Keras 3 .keras files; the path must end in .keras, received {str(path)!r}")
    keras_v3.save_keras_zip(model, path)


def save_weights(model, path) -> None:
    """Write a Keras 3 ``.weights.h5`` file (``keras_model.load_weights`` reads it)."""
    if not str(path).endswith(".weights.h5"):
        raise ValueError(f"save_weights() writes Keras 3 weights files; the path must end in .weights.h5, "
                         f"received {str(path)!r}")
    keras_v3.write_weights_h5(model, path)


def describe(path) -> str:
    """What ``fastgru info FILE`` prints: format, Keras version and the model summary."""
    model = load_model(path)
    lines = [f"file: {os.fspath(path)}", f"format: {model.file_format}",
             f"keras_version: {getattr(model, 'keras_version', None) or '(not recorded)'}", ""]
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


__all__ = ["describe", "from_keras", "load_model", "load_weights", "save_model", "save_weights"]
