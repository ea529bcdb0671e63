"""Keras 3's sharded weights: ``save_weights("m.weights.json", max_shard_size=GB)`` writes a JSON map
(``{"metadata": {"total_size": bytes}, "weight_map": {"/layers/dense/vars": ["m_00000.weights.h5", ...]}}``)
and shards ``m_00000.weights.h5``, ``m_00001.weights.h5``, ... beside it, each an ordinary weights file holding
some of the variable groups (a group may span shards).

Reading merges the mapped groups of the shards into one HDF5 file in memory, which the ``.weights.h5`` loader
then reads as usual. The map is hostile until checked: a shard is a plain file name in the map's own folder
(no path; a symlink whose target lies elsewhere, or a FIFO or device, is refused), each shard is checked as any
weights file (no links to other files, no external storage), a variable found twice is refused, a group path
is at most ``MAX_GROUP_DEPTH`` names deep and exists in the merged file only where a shard holds it, and the
arrays' declared sizes, summed from their headers before anything is read, are bounded by what the model can
need.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import re
import stat
import warnings
from pathlib import Path

import h5py

from ..errors import ModelFileError
from .atomic import atomic_write_bytes
from .h5utils import dataset_layout, open_h5, read_dataset

MAX_MAP_BYTES = 16 << 20
MAX_SHARDS = 100_000
#: names in a variable group path ("/layers/functional/layers/dense/vars" is 5 deep; Keras's nesting of models in
#: models adds two a level)
MAX_GROUP_DEPTH = 256
_SHARD_NAME = re.compile(r"[^/\\\x00]+\.weights\.h5")
_merged_names = itertools.count()


def is_map(path) -> bool:
    """Whether ``path`` names a sharded weights map (Keras: a name ending in ``.json``)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(".json")


def _read_map(path) -> dict[str, list[str]]:
    """The map's ``weight_map``: variable group -> shard file names, checked."""
    p = Path(path)
    if not p.is_file():
        raise ModelFileError(path, "no such file" if not p.exists() else "not a file")
    if p.stat().st_size > MAX_MAP_BYTES:
        raise ModelFileError(path, f"a sharded weights map of {p.stat().st_size} bytes (at most {MAX_MAP_BYTES})")
    try:
        config = json.loads(p.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(path, f"not a sharded weights map: not valid JSON ({exc})") from None
    weight_map = config.get("weight_map") if isinstance(config, dict) else None
    if not isinstance(weight_map, dict):
        raise ModelFileError(path, "not a sharded weights map (Keras's save_weights(max_shard_size=...)): no "
                                   "weight_map object")
    out = {}
    for group, files in weight_map.items():
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise ModelFileError(path, f"weight_map[{group!r}] should name shard files, found {files!r}")
        if not group.startswith("/") or "//" in group or ".." in group.split("/"):
            raise ModelFileError(path, f"weight_map key {group!r} is not a variable group path")
        if group.count("/") > MAX_GROUP_DEPTH:
            raise ModelFileError(path, f"weight_map key {group[:80]!r}... is {group.count('/')} groups deep (at most "
                                       f"{MAX_GROUP_DEPTH})")
        for name in files:
            if not _SHARD_NAME.fullmatch(name) or name in (".", "..") or name.startswith("."):
                raise ModelFileError(path, f"weight_map[{group!r}] names {name!r}: a shard must be a file name "
                                           "ending in .weights.h5 in the map's own folder")
        out[group] = files
    if len({f for files in out.values() for f in files}) > MAX_SHARDS:
        raise ModelFileError(path, f"the map names more than {MAX_SHARDS} shards")
    return out


@contextlib.contextmanager
def merged(path, max_bytes: int):
    """An in-memory HDF5 file holding every mapped group of the shards beside the map at ``path``."""
    weight_map = _read_map(path)
    folder = Path(path).parent
    folder_real = os.path.realpath(folder)
    out = h5py.File(f"fastgru-shards-{os.getpid()}-{next(_merged_names)}", "w", driver="core",
                    backing_store=False)
    try:
        shards: dict[str, h5py.File] = {}
        total = 0
        with contextlib.ExitStack() as stack:
            for group_path, files in weight_map.items():
                for name in files:
                    shard_path = folder / name
                    if name not in shards:
                        shards[name] = stack.enter_context(open_h5(_shard_inside(folder_real, shard_path, path,
                                                                                 group_path)))
                    source = shards[name].get(group_path.strip("/"))
                    if source is None:
                        continue
                    if not isinstance(source, h5py.Group):
                        raise ModelFileError(shard_path, f"{group_path} should be a group of variables")
                    target = out.require_group(group_path.strip("/"))  # (only groups a shard holds)
                    for key in source:
                        obj = source[key]
                        if not isinstance(obj, h5py.Dataset):
                            raise ModelFileError(shard_path, f"{group_path}/{key} should be a weight array")
                        if key in target:
                            raise ModelFileError(path, f"variable {group_path}/{key} is in more than one shard: "
                                                       "which one would count is ambiguous")
                        dataset_layout(obj, f"{group_path}/{key}", shard_path)
                        total += math.prod(int(d) for d in obj.shape or ()) * max(obj.dtype.itemsize, 1)
                        if total > max_bytes:
                            raise ModelFileError(path, f"the shards declare more than {max_bytes} bytes of "
                                                       "variables, more than the model can need")
                        target.create_dataset(key, data=read_dataset(source, key, shard_path))
        yield out
    finally:
        out.close()


def _shard_inside(folder_real: str, shard_path: Path, path, group_path: str) -> str:
    """The real path of a shard the map names: a regular file in the map's own folder (a symlink to a file
    elsewhere, and anything but a regular file, refused before it is opened)."""
    real = os.path.realpath(shard_path)
    if os.path.dirname(real) != folder_real:
        raise ModelFileError(path, f"shard {shard_path.name} (of {group_path}) is a link to {real}, outside the "
                                   f"map's folder {folder_real}: refused")
    try:
        mode = os.stat(real).st_mode
    except OSError:
        raise ModelFileError(path, f"shard {shard_path.name} (of {group_path}) is missing beside the map") from None
    if not stat.S_ISREG(mode):
        raise ModelFileError(path, f"shard {shard_path.name} (of {group_path}) is not a regular file")
    return real


def write(weights_h5: bytes, path, max_shard_size: float) -> None:
    """Split a ``.weights.h5`` image into Keras's shards of at most ``max_shard_size`` GB beside the map at
    ``path`` (a new shard once the current one would pass the limit; an array larger than it is refused, as
    Keras refuses it), then write the map. An old map is removed first: a save interrupted midway leaves no map
    (loading it fails), never a map whose shards come from two saves; each file is written crash-safe."""
    name = os.fspath(path)
    if name.endswith(".weights.h5"):  # (as Keras: the map takes the .json name, with a warning)
        path = name[:-len(".h5")] + ".json"
        warnings.warn(f"Saving sharded weights requires `*.json` as the extension. The original path: {name} will "
                      f"be renamed to {path}.", stacklevel=4)
    elif not name.endswith(".weights.json"):
        raise ValueError(f"The filename must end in `.weights.json` when `max_shard_size` is specified. Received: "
                         f"filepath={name}")
    limit = float(max_shard_size) * 1024 ** 3
    if not limit > 0:
        raise ValueError(f"max_shard_size must be a positive size in GB, received {max_shard_size!r}")
    base = Path(path).name[:-len(".weights.json")]
    arrays = []
    with h5py.File(io.BytesIO(weights_h5), "r") as f:
        f.visititems(lambda name, obj: arrays.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    shards, size, weight_map = [[]], 0.0, {}
    for name, value in arrays:
        if value.nbytes > limit:
            raise ValueError(f"The size of {name} is {value.nbytes} bytes, which exceeds the maximum shard size "
                             f"{limit:.0f} bytes: increase max_shard_size")
        size += value.nbytes
        if size > limit and shards[-1]:
            shards.append([])
            size = value.nbytes
        shards[-1].append((name, value))
        group = "/" + name.rsplit("/", 1)[0]
        files = weight_map.setdefault(group, [])
        shard_name = f"{base}_{len(shards) - 1:05}.weights.h5"
        if shard_name not in files:
            files.append(shard_name)
    if os.path.lexists(path):  # (a save interrupted past here leaves no map, never one naming two saves' shards)
        os.remove(path)
    for i, content in enumerate(shards):
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as f:
            for name, value in content:
                f.create_dataset(name, data=value)
        atomic_write_bytes(Path(path).with_name(f"{base}_{i:05}.weights.h5"), buffer.getvalue())
    total = float(sum(value.nbytes for _, value in arrays))
    text = json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=4)
    atomic_write_bytes(path, text.encode())
