"""Keras 3 formats: the ``.keras`` zip (config.json, metadata.json, model.weights.h5) and ``.weights.h5``."""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from datetime import datetime

import h5py
import numpy as np

from ..errors import ModelFileError
from .h5utils import get_group, guard, open_h5, read_dataset
from .keras_config import LayerSpec
from .keras_save import keras3_model_config, keras3_weight_paths


def read_keras_zip(path) -> tuple[dict, str | None, bytes]:
    """(model config, Keras version, bytes of model.weights.h5) of a ``.keras`` file."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(path, f"not a valid .keras (zip) archive ({exc})") from None
    with archive:
        names = set(archive.namelist())
        if "config.json" not in names:
            found = ", ".join(sorted(names)) or "nothing"
            raise ModelFileError(path, f"no config.json in the .keras archive (found: {found})")
        if "model.weights.h5" not in names:
            if "model.weights.npz" in names:
                detail = "weights saved with weights_format='npz' are not supported: save with the default h5"
            elif any(n.endswith(".json") and "weights" in n for n in names):
                detail = "sharded weights are not supported"
            else:
                detail = f"found: {', '.join(sorted(names))}"
            raise ModelFileError(path, f"no model.weights.h5 in the .keras archive ({detail})")
        try:
            config = json.loads(archive.read("config.json"))
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            weights = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, RuntimeError,
                NotImplementedError) as exc:
            raise ModelFileError(path, f"damaged .keras archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict):
        raise ModelFileError(path, "config.json does not hold a model config object")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return config, (version if isinstance(version, str) else None), weights


def assign_v3_weights(layers, specs: list[LayerSpec], root: h5py.Group, path) -> None:
    """Copy ``<spec.v3_path>/0..n`` into each (built) fastgru layer, checking count and shapes."""
    for layer, spec in zip(layers, specs):
        expected = layer.weights
        if not expected:
            continue
        group = get_group(root, spec.v3_path, path)
        arrays = [read_dataset(group, str(i), path) for i in range(len(expected))]
        if len(group.keys()) != len(expected):
            raise ModelFileError(path, f"{spec.v3_path} holds {len(group.keys())} variables, layer "
                                       f"{layer.name!r} ({spec.class_name}) expects {len(expected)}")
        set_checked(layer, arrays, path, where=spec.v3_path)


def set_checked(layer, arrays, path, where: str) -> None:
    for name, have, got in zip(layer.weight_paths, layer.weights, arrays):
        if have.shape != got.shape:
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has shape {got.shape}, "
                                       f"but the config implies {have.shape}")
        if got.dtype.kind != "f":
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has dtype {got.dtype}, expected floats")
        if not np.isfinite(got).all():
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) contains NaN or infinite values")
    layer.set_weights(arrays)


def load_v3_weights(model, specs, h5_source, path) -> None:
    with guard(path), open_h5(path, h5_source) as f:
        assign_v3_weights(model.layers, specs, f, path)


def write_weights_h5(model, target) -> None:
    """Write Keras 3's weights layout (layers/<snake_class>[_n]/vars/i, RNNs under cell/vars)."""
    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        layers_group = f.create_group("layers")
        for layer, vars_path in zip(model.layers, keras3_weight_paths(model)):
            layer_path = vars_path[len("layers/"):].split("/")[0]
            own = layers_group.create_group(layer_path)
            own.create_group("vars").attrs["name"] = layer.name
            group = f.require_group(vars_path)
            if vars_path.endswith("/cell/vars"):
                group.attrs["name"] = f"{type(layer).__name__.lower()}_cell"
            for i, w in enumerate(layer.weights):
                group.create_dataset(str(i), data=w)


def save_keras_zip(model, path) -> None:
    config = keras3_model_config(model)
    metadata = {"keras_version": "3.0.0", "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "producer": "fastgru"}
    buffer = io.BytesIO()
    write_weights_h5(model, buffer)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
