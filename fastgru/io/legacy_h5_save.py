"""``model.save("model.h5")``: the legacy HDF5 model file Keras 3 still writes (with a warning), which
``keras.models.load_model``, tf_keras-era tools and fastgru read.

The layout is Keras 3's ``legacy_h5_format``: root attributes ``model_config`` (the model's Keras config as
JSON), ``training_config`` (the compile arguments, when compiled), ``keras_version`` and ``backend``; a
``model_weights`` group with one group per layer of ``model.layers`` (attribute ``weight_names``, one dataset
per weight, a nested model's weights trainable first, as Keras lists them). The optimizer's state is not
written (Keras's loader then starts the optimizer afresh): a ``.keras`` file keeps it.
"""

from __future__ import annotations

import io
import json
import os
import warnings

import h5py
import numpy as np

from .atomic import atomic_write_bytes
from .legacy_h5 import trainable_first

#: what the file says wrote it (Keras's loaders read a Keras 3 file's configs by this version)
KERAS_VERSION = "3.0.0"


#: loss abbreviations Keras 3.15's legacy loader cannot read back ("Could not deserialize 'keras.metrics.mse'"),
#: written out in full (the same losses)
_LOSS_NAMES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
               "msle": "mean_squared_logarithmic_error"}


def _full_loss_names(loss):
    if isinstance(loss, str):
        return _LOSS_NAMES.get(loss, loss)
    if isinstance(loss, list):
        return [_full_loss_names(v) for v in loss]
    if isinstance(loss, dict) and "class_name" not in loss:  # (per output name)
        return {k: _full_loss_names(v) for k, v in loss.items()}
    return loss


def _training_config(compile_config: dict) -> dict:
    """Keras 3's ``compile_config`` entry as the legacy file's ``training_config`` (``optimizer_config``)."""
    config = {k: v for k, v in compile_config.items() if k != "optimizer"}
    config["loss"] = _full_loss_names(config.get("loss"))
    optimizer = compile_config["optimizer"]
    config["optimizer_config"] = ({"class_name": optimizer["class_name"], "config": optimizer["config"]}
                                  if isinstance(optimizer, dict) else optimizer)
    return config


def _leaves(layer) -> list:
    """The layers holding ``layer``'s weights, in its weight order (a nested model's, recursively)."""
    if hasattr(layer, "weight_paths") or not hasattr(layer, "_layers_and_ops"):
        return [layer]
    return [leaf for inner in layer._layers_and_ops if inner.weights for leaf in _leaves(inner)]


def _layer_weights(layer) -> list[tuple[str, np.ndarray]]:
    """``(name, array)`` of a layer's weights in a legacy file's order (Keras's ``_legacy_weights``)."""
    holders = [leaf for leaf in _leaves(layer) if leaf.weights]
    named = [(f"{leaf.name}/{path}", w) for leaf in holders for path, w in zip(leaf.weight_paths, leaf.weights)]
    return [named[i] for i in trainable_first(holders)]


def _strings(values: list[str]) -> np.ndarray:
    return np.array([v.encode("utf8") for v in values], dtype=h5py.string_dtype() if values else np.float64)


def save_h5(model, path, config: dict) -> None:
    """Write ``model`` (its Keras 3 file ``config``, as a ``.keras`` file's config.json holds it) as a legacy
    HDF5 model file at ``path``, crash-safe (a temporary file renamed over ``path``)."""
    warnings.warn("You are saving your model as an HDF5 file via `model.save()`. This file format is considered "
                  "legacy. We recommend using instead the native Keras format, e.g. `model.save('my_model.keras')`.",
                  UserWarning, stacklevel=4)
    compile_config = config.get("compile_config")
    model_config = {"class_name": config["class_name"], "config": config["config"]}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
        if compile_config is not None:
            f.attrs["training_config"] = json.dumps(_training_config(compile_config)).encode("utf8")
        group = f.create_group("model_weights")
        layers = model.layers
        group.attrs["layer_names"] = _strings([layer.name for layer in layers])
        group.attrs["backend"] = "tensorflow"
        group.attrs["keras_version"] = KERAS_VERSION
        for layer in sorted(layers, key=lambda layer: layer.name):  # (Keras's order: no group name a prefix issue)
            weights = _layer_weights(layer)
            layer_group = group.create_group(layer.name)
            layer_group.attrs["weight_names"] = _strings([name for name, _ in weights])
            for name, value in weights:
                layer_group.create_dataset(name, data=value)
        group.create_group("top_level_model_weights").attrs["weight_names"] = _strings([])
    folder = os.path.dirname(os.fspath(path))
    if folder:  # (as Keras's writer: ModelCheckpoint("checkpoints/best.h5") makes checkpoints/)
        os.makedirs(folder, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
