"""Keras 3 formats: the ``.keras`` zip (config.json, metadata.json, model.weights.h5) and ``.weights.h5``."""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections import Counter
from datetime import datetime

import h5py
import numpy as np

from ..errors import ModelFileError
from .atomic import atomic_file
from .h5utils import dataset_shape, get_group, guard, open_h5, read_dataset
from .keras_assets import read_named_vars, write_named_vars
from .keras_config import TIME_DISTRIBUTED_ATTR, LayerSpec, snake_case
from .keras_save import keras3_model_config, keras3_weight_paths, v3_var_groups
from .load_options import STRICT, LoadOptions

#: the most bytes config.json may take (a 1,000-layer Keras model's config takes 1-2 MB) and metadata.json
MAX_CONFIG_BYTES = 64 << 20
MAX_METADATA_BYTES = 1 << 20


class KerasZip:
    """An open ``.keras`` archive: its config and Keras version (read, size-capped), and its weights, read
    on demand with a cap that the caller derives from the model the config declares.

    Refused before anything is decompressed: members named twice (which one would count?), a member
    claiming more bytes than its compressed size can produce, a config.json over MAX_CONFIG_BYTES, a
    metadata.json over MAX_METADATA_BYTES, and (in :meth:`read_weights`) a model.weights.h5 larger than
    the declared model's weights can need.
    """

    def __init__(self, path):
        self.path = path
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ModelFileError(path, f"not a valid .keras (zip) archive ({exc})") from None
        try:
            self._open()
        except BaseException:
            self.archive.close()
            raise

    def _open(self):
        path, archive = self.path, self.archive
        listed = archive.namelist()
        counts = Counter(listed)
        twice = sorted(n for n, c in counts.items() if c > 1)
        if twice:
            raise ModelFileError(path, f"the .keras archive holds {', '.join(twice)} twice (duplicate zip members: "
                                       "which one would count is ambiguous): damaged or tampered file")
        self.names = names = set(listed)
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
        self.weights_info = archive.getinfo("model.weights.h5")
        config = _json(self._read("config.json", MAX_CONFIG_BYTES), "config.json", path)
        metadata = _json(self._read("metadata.json", MAX_METADATA_BYTES), "metadata.json", path) \
            if "metadata.json" in names else {}
        if not isinstance(config, dict):
            raise ModelFileError(path, "config.json does not hold a model config object")
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        self.config, self.version = config, (version if isinstance(version, str) else None)

    @property
    def weights_stored_bytes(self) -> int:
        """Bytes the weights take in the archive (compressed): what bounds the weights a config may declare."""
        return int(self.weights_info.compress_size)

    def read_weights(self, max_bytes: int | None = None) -> bytes:
        """The bytes of model.weights.h5; refused, before decompressing, when it claims more than ``max_bytes``."""
        size = self.weights_info.file_size
        if max_bytes is not None and size > max_bytes:
            raise ModelFileError(self.path, f"model.weights.h5 claims {size} bytes, more than the model its config "
                                            f"declares can need ({max_bytes} bytes): refused before decompressing it")
        return self._read("model.weights.h5", size)

    def read_member(self, name: str, max_bytes: int) -> bytes:
        """Another member's bytes (an asset), its declared sizes checked before it is decompressed."""
        _check_member_sizes(self.archive, (name,), self.path)
        return self._read(name, max_bytes)

    def _read(self, name: str, max_bytes: int):
        info = self.archive.getinfo(name)
        if info.file_size > max_bytes:
            raise ModelFileError(self.path, f"{name} claims {info.file_size} bytes, at most {max_bytes} are "
                                            "accepted: refused before decompressing it")
        try:
            with self.archive.open(name) as member:
                data = member.read(max_bytes + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, RuntimeError,
                NotImplementedError, OverflowError, TypeError) as exc:  # RecursionError is a RuntimeError
            raise ModelFileError(self.path, f"damaged .keras archive ({type(exc).__name__}: {exc})") from None
        if len(data) > max_bytes:
            raise ModelFileError(self.path, f"damaged .keras archive: {name} holds more than {max_bytes} bytes")
        return data

    def close(self):
        self.archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _json(data: bytes, name: str, path):
    try:
        return json.loads(data)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ModelFileError(path, f"damaged .keras archive ({name}: {type(exc).__name__}: {exc})") from None


def read_keras_zip(path, max_weight_bytes: int | None = None) -> tuple[dict, str | None, bytes]:
    """(model config, Keras version, bytes of model.weights.h5) of a ``.keras`` file (see :class:`KerasZip`)."""
    with KerasZip(path) as archive:
        return archive.config, archive.version, archive.read_weights(max_weight_bytes)


def max_weights_file_bytes(model) -> int:
    """The most bytes a Keras model.weights.h5 for ``model`` can take: every weight in float64 six times over
    (the weights and up to five optimizer slots each, which Keras saves in the same file), plus HDF5's
    headers: 64 KiB per weight array and per layer and 1 MiB for the file (Keras's own files take about
    4 KiB per array)."""
    weights = [w for layer in model._layers_and_ops for w in layer.weights]
    return sum(w.size for w in weights) * 8 * 6 + (len(weights) + len(model._layers_and_ops)) * (64 << 10) + (1 << 20)


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


def assign_v3_weights(layers, specs: list[LayerSpec], root: h5py.Group, path, options: LoadOptions = STRICT) -> None:
    """Copy ``<group>/0..n`` into each (built) fastgru layer, checking count and shapes (the groups of
    a layer: :func:`v3_var_groups`, one, or two for a Bidirectional): every layer's arrays are read and checked
    before any layer is changed (``options``: load_weights's ``skip_mismatch`` and ``objects_to_skip``)."""
    plan = []
    for layer, spec in zip(layers, specs):
        if options.skips(layer):
            continue
        with options.layer(f"layer {layer.name!r} ({spec.v3_path})"):
            plan.extend(_layer_plan(layer, spec, root, path))
    for layer, named, arrays in plan:
        if named:
            layer.load_keras_own_variables(named)
        else:
            layer.set_weights(arrays)  # (checked above)


def _layer_plan(layer, spec: LayerSpec, root: h5py.Group, path) -> list:
    """[(layer, named variables or None, arrays or None)]: what one layer takes from the file, read and checked."""
    plan = []
    named = read_named_vars(layer, root, spec.v3_path, path) if getattr(layer, "keras_named_variables", ()) else {}
    if named:
        plan.append((layer, named, None))
    if hasattr(layer, "keras_build_by_run"):  # (a script's own layer, or the RNN looping a script's cell)
        _held_layers_built(layer, root, spec.v3_path, path)
    if not layer.weights:
        return plan
    groups = [(*_var_group(root, where, path), n) for where, n in v3_var_groups(layer, spec.v3_path)]
    shapes = [dataset_shape(group, str(i), path) for group, _, n in groups for i in range(n)]
    check_shapes(layer, shapes, path, where=spec.v3_path)
    for group, where, n in groups:
        if len(group.keys()) != n:
            raise ModelFileError(path, f"{where} holds {len(group.keys())} variables, layer "
                                       f"{layer.name!r} ({spec.class_name}) expects {n}")
    arrays = _read_groups(groups, shapes, path, [w.dtype.kind in "iu" for w in layer.weights])
    check_arrays(layer, arrays, path, where=spec.v3_path)
    return plan + [(layer, None, arrays)]


def _file_var_groups(group: h5py.Group, at: str, depth: int = 0) -> set[str]:
    """The paths of the non-empty ``vars`` groups below ``group`` (at ``at``)."""
    found = set()
    for key in list(group.keys())[:256] if depth < 16 else ():
        item = group.get(key)
        if isinstance(item, h5py.Group):
            if key == "vars" and len(item.keys()):
                found.add(f"{at}/vars")
            elif key != "vars":
                found |= _file_var_groups(item, f"{at}/{key}", depth + 1)
    return found


def _held_layers_built(layer, root: h5py.Group, vars_path: str, path) -> None:
    """A script's own layer whose file holds variables of layers it holds that are not built yet (built by Keras's
    first call, after its own ``build``): its call run once to build them (``keras_build_by_run``); variables it
    still has no place for are refused by name, not left behind (its first call would make fresh ones)."""
    own = vars_path[: -len("/vars")] if vars_path.endswith("/vars") else vars_path
    own = own[: -len("/cell")] if type(layer).__name__ == "RNN" and own.endswith("/cell") else own
    try:
        held = _file_var_groups(root[own], own) if own in root else set()
    except (OSError, ValueError, KeyError):
        return  # (get_group reports the damage)
    expected = {where for where, n in v3_var_groups(layer, vars_path) if n}
    if held <= expected:
        return
    layer.keras_build_by_run()
    missing = sorted(held - {where for where, n in v3_var_groups(layer, vars_path) if n})
    if missing:
        raise ModelFileError(path, f"layer {layer.name!r} ({type(layer).__name__}): the file holds variables at "
                                   f"{', '.join(missing[:4])} that the layer has no weights for, even after its call "
                                   "ran once (layers it holds that its build and call do not make)")


def _var_group(root: h5py.Group, where: str, path) -> tuple[h5py.Group, str]:
    """``(group, its path)`` of a layer's variables. tf_keras's .keras files name a layer's sublayers by
    their attributes (MultiHeadAttention's ``_query_dense``, not Keras 3's ``query_dense``): that
    spelling is read when Keras 3's is missing."""
    try:
        missing = where not in root
    except (OSError, ValueError):
        missing = False  # (get_group reports the damage)
    parts = where.split("/")
    if missing and len(parts) >= 2 and parts[-1] == "vars" and not parts[-2].startswith("_"):
        alt = "/".join(parts[:-2] + ["_" + parts[-2], "vars"])
        try:
            if alt in root:
                return get_group(root, alt, path), alt
        except (OSError, ValueError):
            pass
    return get_group(root, where, path), where


def _read_groups(groups, shapes, path, integer) -> list:
    arrays = []
    for group, _, n in groups:
        for i in range(n):
            arrays.append(read_dataset(group, str(i), path, shapes[len(arrays)], integer=integer[len(arrays)]))
    return arrays


def check_shapes(layer, shapes, path, where: str) -> None:
    """Refuse weights whose shapes (read from the file's headers, before any data) differ from the layer's."""
    for name, have, got in zip(layer.weight_paths, layer.weights, shapes):
        if have.shape != tuple(got):
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has shape {tuple(got)}, "
                                       f"but the config implies {have.shape}")


def set_checked(layer, arrays, path, where: str) -> None:
    check_arrays(layer, arrays, path, where)
    layer.set_weights(arrays)


def check_arrays(layer, arrays, path, where: str) -> None:
    """Refuse arrays of another shape or dtype kind than the layer's weights, or holding NaN or infinities."""
    check_shapes(layer, [a.shape for a in arrays], path, where)
    for name, have, got in zip(layer.weight_paths, layer.weights, arrays):
        if have.dtype.kind in "iu":  # an integer weight (Normalization's count)
            if got.dtype.kind not in "iu":
                raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has dtype {got.dtype}, "
                                           "expected integers")
        elif got.dtype.kind != "f":
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) has dtype {got.dtype}, expected floats")
        if not np.isfinite(got).all():
            raise ModelFileError(path, f"weight {where} ({layer.name!r}.{name}) contains NaN or infinite values")


def load_v3_weights(model, specs, h5_source, path) -> None:
    """Fill ``model`` from a Keras 3 weights file (``h5_source``: its bytes, or a path)."""
    with guard(path), open_h5(path, h5_source) as f:
        assign_v3_weights(model._layers_and_ops, specs, f, path)


def write_weights_h5(model, target, paths: list[str] | None = None, with_optimizer: bool = False) -> None:
    """Write Keras 3's weights layout (layers/<snake_class>[_n]/vars/i, RNNs under cell/vars, a
    Bidirectional's two layers under forward_layer/ and backward_layer/, a TimeDistributed's under layer/).
    ``paths``: where each layer's variables go (by default those of a flat Sequential of the model's layers,
    :func:`keras3_weight_paths`, which the config ``save`` writes names; ``save_weights`` passes
    :func:`keras_source_paths`). ``with_optimizer`` (a model file's): the compiled optimizer's state too
    (``optimizer_state.write_vars``)."""
    with h5py.File(target, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        for layer, layer_path in zip(model._layers_and_ops, keras3_weight_paths(model) if paths is None else paths):
            write_layer_vars(f, layer, _own_path(layer, layer_path), layer_path)
        if with_optimizer:
            from .optimizer_state import write_vars

            write_vars(f, model)


def keras_source_paths(model) -> list[str]:
    """Where ``save_weights`` puts each layer's variables: where the Keras model the layers came from (a
    Keras file, ``from_keras``) kept them (nested models, TimeDistributed), so that this Keras model's
    ``load_weights`` reads the file, while the model still holds those very layers; else
    :func:`keras3_weight_paths`."""
    stored = getattr(model, "_keras_v3_paths", None)
    source_layers = getattr(model, "_keras_v3_layers", None)
    layers = model._layers_and_ops
    if (stored is None or source_layers is None or len(stored) != len(layers) or len(source_layers) != len(layers)
            or any(a is not b for a, b in zip(source_layers, layers))):
        return keras3_weight_paths(model)
    return list(stored)


def _own_path(layer, vars_path: str) -> str:
    """A layer's own group (``layers/<key>``, which holds its ``vars``) from where its variables are."""
    suffixes = ("/layer/vars",) if getattr(layer, TIME_DISTRIBUTED_ATTR, None) is not None else ()
    for suffix in suffixes + ("/cell/vars", "/vars"):
        if vars_path.endswith(suffix):
            return vars_path[: -len(suffix)]
    return vars_path  # a wrapper: its inner layers' groups are below its own


def write_layer_vars(f: h5py.Group, layer, own: str, vars_path: str) -> None:
    """One layer's groups as Keras 3 writes them: ``<own>/vars`` named after the layer, the groups of a
    wrapper's inner layers named after them, and its variables in the groups of :func:`v3_var_groups`."""
    _name_groups(f, layer, own)
    marker = getattr(layer, TIME_DISTRIBUTED_ATTR, None)
    if marker is not None:
        inner_name = marker.get("inner_name") if isinstance(marker, dict) else None
        f.require_group(f"{own}/layer/vars").attrs["name"] = inner_name or snake_case(type(layer).__name__)
    weights = iter(layer.weights)
    for group_path, n in v3_var_groups(layer, vars_path):
        group = f.require_group(group_path)
        if group_path.endswith("/cell/vars"):
            group.attrs["name"] = f"{type(_recurrent_of(layer)).__name__.lower()}_cell"
        for i in range(n):
            group.create_dataset(str(i), data=next(weights))
    write_named_vars(f, layer, own)


def _name_groups(f: h5py.Group, layer, own: str) -> None:
    """``<own>/vars`` named after the layer, and the same for a wrapper's inner layers below it."""
    f.require_group(own + "/vars").attrs["name"] = layer.name
    class_name = type(layer).__name__
    if class_name == "Bidirectional":
        for side, sub in zip(("forward_layer", "backward_layer"), layer.layers):
            f.require_group(f"{own}/{side}/vars").attrs["name"] = sub.name
    elif class_name == "TimeDistributed":
        _name_groups(f, layer.layer, f"{own}/layer")


def _recurrent_of(layer):
    """The recurrent layer inside wrappers (whose cell names a ``cell/vars`` group)."""
    while type(layer).__name__ in ("Bidirectional", "TimeDistributed"):
        layer = layer.forward_layer if type(layer).__name__ == "Bidirectional" else layer.layer
    return layer


def save_keras_zip(model, path) -> None:
    config = keras3_model_config(model)
    metadata = {"keras_version": "3.0.0", "date_saved": datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "producer": "fastgru"}
    buffer = io.BytesIO()
    write_weights_h5(model, buffer, with_optimizer=True)
    with atomic_file(path) as f, zipfile.ZipFile(f, "w") as archive:  # crash-safe: temp file, fsync, rename
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
