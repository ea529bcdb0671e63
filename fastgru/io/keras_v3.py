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
from .atomic import atomic_file
from .h5utils import dataset_shape, get_group, guard, open_h5, read_dataset
from .keras_config import LayerSpec
from .keras_save import keras3_model_config, keras3_weight_paths, v3_var_groups


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
        _check_member_sizes(archive, ("config.json", "metadata.json", "model.weights.h5"), path)
        try:
            config = json.loads(archive.read("config.json"))
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            weights = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, RuntimeError,
                NotImplementedError, OverflowError, TypeError) as exc:  # RecursionError is a RuntimeError
            raise ModelFileError(path, f"damaged .keras archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict):
        raise ModelFileError(path, "config.json does not hold a model config object")
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return config, (version if isinstance(version, str) else None), weights


#: deflate expands at most ~1032x; a member claiming more is damaged (or a zip bomb)
_MAX_DEFLATE_RATIO = 1100


def _check_member_sizes(archive: zipfile.ZipFile, names, path) -> None:
    """Refuse members whose sizes, as the zip's headers declare them, cannot be true for this file, before
    anything is decompressed (no allocation from a size read out of the file)."""
    try:
        total = archive.fp.seek(0, 2) if archive.fp is not None else None
    except (OSError, ValueError):
        total = None
    for info in archive.infolist():
        if info.filename not in names:
            continue
        if total is not None and info.compress_size > total:
            raise ModelFileError(path, f"damaged .keras archive: {info.filename} claims {info.compress_size} "
                                       f"compressed bytes in a {total}-byte file")
        limit = info.compress_size if info.compress_type == zipfile.ZIP_STORED \
            else info.compress_size * _MAX_DEFLATE_RATIO + 1024
        if info.file_size > limit:
            raise ModelFileError(path, f"damaged .keras archive: {info.filename} claims {info.file_size} bytes "
                                       f"from {info.compress_size} compressed bytes")


def assign_v3_weights(layers, specs: list[LayerSpec], root: h5py.Group, path) -> None:
    """Copy ``<group>/0..n`` into each (built) fastgru layer, checking count and shapes (the groups of
    a layer: :func:`v3_var_groups`, one, or two for a Bidirectional)."""
    for layer, spec in zip(layers, specs):
        if not layer.weights:
            continue
        groups = [(get_group(root, where, path), where, n) for where, n in v3_var_groups(layer, spec.v3_path)]
        shapes = [dataset_shape(group, str(i), path) for group, _, n in groups for i in range(n)]
        check_shapes(layer, shapes, path, where=spec.v3_path)
        for group, where, n in groups:
            if len(group.keys()) != n:
                raise ModelFileError(path, f"{where} holds {len(group.keys())} variables, layer "
                                           f"{layer.name!r} ({spec.class_name}) expects {n}")
        arrays = _read_groups(groups, shapes, path)
        set_checked(layer, arrays, path, where=spec.v3_path)


def _read_groups(groups, shapes, path) -> list:
    arrays = []
    for group, _, n in groups:
        for i in range(n):
            arrays.append(read_dataset(group, str(i), path, shapes[len(arrays)]))
    return arrays


def check_shapes(layer, shapes, path, where: str) -> None:
    """Refuse weights whose shapes (read from the file's headers, before any data) differ from the layer's."""
    for name, have, got in zip(layer.weight_paths, layer.weights, shapes):
        if have.shape != tuple(got):
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has shape {tuple(got)}, "
                                       f"but the config implies {have.shape}")


def set_checked(layer, arrays, path, where: str) -> None:
    check_shapes(layer, [a.shape for a in arrays], path, where)
    for name, have, got in zip(layer.weight_paths, layer.weights, arrays):
        if got.dtype.kind != "f":
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has dtype {got.dtype}, expected floats")
        if not np.isfinite(got).all():
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) contains NaN or infinite values")
    layer.set_weights(arrays)


def load_v3_weights(model, specs, h5_source, path) -> None:
    """Fill ``model`` from a Keras 3 weights file (``h5_source``: its bytes, or a path)."""
    with guard(path), open_h5(path, h5_source) as f:
        assign_v3_weights(model.layers, specs, f, path)


def write_weights_h5(model, target) -> None:
    """Write Keras 3's weights layout (layers/<snake_class>[_n]/vars/i, RNNs under cell/vars, a
    Bidirectional's two layers under forward_layer/ and backward_layer/)."""
    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for layer, layer_path in zip(model.layers, keras3_weight_paths(model)):
            own = layer_path[: -len("/cell/vars")] if layer_path.endswith("/cell/vars") else layer_path
            own = own[: -len("/vars")] if own.endswith("/vars") else own
            f.require_group(own + "/vars").attrs["name"] = layer.name
            inner = getattr(layer, "layers", None) if type(layer).__name__ == "Bidirectional" else None
            if inner is not None:
                for side, sub in zip(("forward_layer", "backward_layer"), inner):
                    f.require_group(f"{own}/{side}/vars").attrs["name"] = sub.name
            weights = iter(layer.weights)
            for group_path, n in v3_var_groups(layer, layer_path):
                group = f.require_group(group_path)
                if group_path.endswith("/cell/vars"):
                    cls = type(layer.forward_layer if inner is not None else layer).__name__
                    group.attrs["name"] = f"{cls.lower()}_cell"
                for i in range(n):
                    group.create_dataset(str(i), data=next(weights))


def save_keras_zip(model, path) -> None:
    config = keras3_model_config(model)
    metadata = {"keras_version": "3.0.0", "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "producer": "fastgru"}
    buffer = io.BytesIO()
    write_weights_h5(model, buffer)
    with atomic_file(path) as f, zipfile.ZipFile(f, "w") as archive:  # crash-safe: temp file, fsync, rename
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
