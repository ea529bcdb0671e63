"""Legacy HDF5: full models saved by tf.keras 2.x / tf_keras and by Keras 3's ``model.save("x.h5")``,
and weight-only ``.h5`` files. Layer groups are found by layer name; each group's ``weight_names``
attribute lists its weights in order (never hard-coded names)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ModelFileError
from . import cudnn_rnn
from .h5utils import dataset_shape, get_group, read_attr, read_dataset, read_list_attr
from .keras_v3 import check_shapes, set_checked
from .load_options import STRICT, LoadOptions


def keras_version(group, path="<file>") -> str | None:
    value = read_attr(group, "keras_version", path)
    return None if value is None else str(value)


def assign_legacy_weights(layers, specs, weights_root, path, options: LoadOptions = STRICT) -> None:
    """Fill the fastgru layers from a ``model_weights``-style group (or a weights file's root). With
    ``options.skip_mismatch`` (Keras's legacy rule) a weight of another shape keeps its value, with a warning,
    and with ``options.by_name`` so does a layer whose count of weights differs."""
    layer_names = read_list_attr(weights_root, "layer_names", path)
    # the layers that read from each group, in order (a nested model's group feeds several layers)
    by_group: dict[str, list] = {}
    config_of, stacked = {}, set()
    for layer, spec in zip(layers, specs):
        by_group.setdefault(spec.legacy_group, []).append(layer)
        config_of[id(layer)] = getattr(spec, "config", None) or {}
        if "/cell/cells/" in (getattr(spec, "v3_path", None) or ""):
            stacked.add(spec.legacy_group)
    for group_name, group_layers in by_group.items():
        if group_name in stacked:  # (tf_keras's StackedRNNCells lists its trainable cells' weights first)
            group_layers = [l for l in group_layers if l.trainable] + [l for l in group_layers if not l.trainable]
        needed = sum(len(l.weights) for l in group_layers)
        if needed == 0:
            continue
        if group_name not in layer_names:
            raise ModelFileError(path, f"no weights for layer {group_name!r} (the file has: {', '.join(layer_names)})")
        group = get_group(weights_root, group_name, path)
        names = read_list_attr(group, "weight_names", path)
        if len(group_layers) == 1 and any(_base(n).startswith("lora_") for n in names):
            _assign_lora_merged(group_layers[0], config_of[id(group_layers[0])], group, names, path)
            continue
        if len(names) != needed:
            message = f"layer {group_name!r} has {len(names)} weights in the file, the config implies {needed}"
            if not (options.skip_mismatch and options.by_name):
                raise ModelFileError(path, message)
            warnings.warn(f"load_weights(by_name=True, skip_mismatch=True): skipping the weights of {message}",
                          stacklevel=5)
            continue
        shapes = [dataset_shape(group, n, path) for n in names]
        # the group's layers that hold weights (a nested model's group may end in a Dropout)
        holders = [layer for layer in group_layers if layer.weights]
        current = [w for l in holders for w in l.weights]
        if len(holders) > 1:  # a nested model's group lists its trainable weights first (Keras's _legacy_weights)
            names, shapes = in_model_order(names, holders), in_model_order(shapes, holders)
        if cudnn_rnn.holds_cudnn_weights(holders):  # (Keras 2's CuDNNGRU/CuDNNLSTM: converted as Keras converts)
            _assign_cudnn(holders, group, names, path, group_name)
            continue
        keep = fitting(holders, shapes, group_name, path, options.skip_mismatch)
        integer = [w.dtype.kind in "iu" for w in current]
        arrays = [read_dataset(group, n, path, w.shape, integer=i) if k else w.copy()
                  for n, w, i, k in zip(names, current, integer, keep)]
        for layer in holders:
            n = len(layer.weights)
            set_checked(layer, arrays[:n], path, where=group_name)
            arrays, names = arrays[n:], names[n:]


def _assign_cudnn(holders: list, group, names: list[str], path, where: str) -> None:
    """Fill ``holders`` (a weights group's layers) from ``group``'s arrays ``names``, in cuDNN's layout where a
    holder was loaded from a cuDNN layer; each array's shape checked against its header before it is read."""
    for holder in holders:
        layers = cudnn_rnn.recurrent_layers(holder)
        count = len(holder.weights)
        mine, names = names[:count], names[count:]
        if layers is None:
            set_checked(holder, [read_dataset(group, n, path, w.shape) for n, w in zip(mine, holder.weights)],
                        path, where=where)
            continue
        arrays = []
        for i, layer in enumerate(layers):
            file_arrays = [read_dataset(group, n, path, shape)
                           for n, shape in zip(mine[3 * i:3 * i + 3], cudnn_rnn.file_shapes(layer))]
            arrays += cudnn_rnn.native_weights(layer, *file_arrays)
        set_checked(holder, arrays, path, where=where)


def trainable_first(layers) -> list[int]:
    """The positions of ``layers``' weights (taken layer by layer) in the order a legacy ``.h5`` file lists a
    nested model's: the trainable ones first, then the others (a BatchNormalization's moving statistics, a frozen
    layer's weights), each part in model order, as Keras's and tf_keras's ``trainable_weights +
    non_trainable_weights``."""
    flat = [(w, id(w) in {id(t) for t in layer.trainable_weights}) for layer in layers for w in layer.weights]
    return [i for i, (_, t) in enumerate(flat) if t] + [i for i, (_, t) in enumerate(flat) if not t]


def in_model_order(entries: list, layers) -> list:
    """A legacy group's ``entries`` (its weights' names or shapes, trainable first) in ``layers``' weight order;
    as they are when their count is not those layers' (the caller refuses that)."""
    order = trainable_first(layers)
    if len(entries) != len(order):
        return list(entries)
    return [entries[order.index(i)] for i in range(len(order))]


def fitting(holders, shapes, group_name: str, path, skip_mismatch: bool) -> list[bool]:
    """Which of a group's weights the file's shapes fit (from the headers: nothing is read for a wrong one):
    all, or a refusal; with ``skip_mismatch``, those that fit (each other one kept, with a warning)."""
    keep, i = [], 0
    for layer in holders:
        got = shapes[i:i + len(layer.weights)]
        i += len(layer.weights)
        if not skip_mismatch:
            check_shapes(layer, got, path, where=group_name)
            keep += [True] * len(got)
            continue
        for name, w, shape in zip(layer.weight_paths, layer.weights, got):
            keep.append(w.shape == tuple(shape))
            if not keep[-1]:
                warnings.warn(f"load_weights(skip_mismatch=True): skipping weight {group_name} ({layer.name!r}."
                              f"{name}): shape {tuple(shape)} in the file, {w.shape} in the model", stacklevel=5)
    return keep


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(":")[0]


def _assign_lora_merged(layer, config: dict, group, names, path) -> None:
    """A Dense's or Embedding's weights with LoRA enabled (Keras 3's legacy ``.h5`` keeps the factors, its
    trainable weights first: bias, lora_*_a, lora_*_b, then the frozen kernel): the kernel Keras computes with,
    ``kernel + (lora_alpha / lora_rank) * lora_a @ lora_b`` in float32, then the layer's own order."""
    where = f"{group.name} ({type(layer).__name__} with LoRA)"
    by_base = {_base(n): n for n in names}
    main = "kernel" if "kernel" in by_base else "embeddings"
    wanted = {main, f"lora_{main}_a", f"lora_{main}_b"} | ({"bias"} if "bias" in by_base else set())
    rank = config.get("lora_rank")
    if set(by_base) != wanted or len(by_base) != len(names) or len(layer.weights) != len(wanted) - 2 or \
            not isinstance(rank, int) or rank < 1:
        raise ModelFileError(path, f"{where}: weights {list(names)} with lora_rank={rank!r} are not a LoRA layer "
                                   f"fastgru can merge (it expects {sorted(wanted)})")
    alpha = config.get("lora_alpha")
    scale = np.float32((rank if alpha is None else alpha) / rank)
    shapes = {b: dataset_shape(group, n, path) for b, n in by_base.items()}
    out_shape = layer.weights[0].shape
    if shapes[main] != out_shape or shapes[f"lora_{main}_a"] != (out_shape[0], rank) or \
            shapes[f"lora_{main}_b"] != (rank, out_shape[1]):
        raise ModelFileError(path, f"{where}: shapes {shapes} do not fit a {out_shape} {main} of rank {rank}")
    arrays = {b: read_dataset(group, n, path, shapes[b]) for b, n in by_base.items()}
    a, b = (arrays[f"lora_{main}_{k}"].astype(np.float32, copy=False) for k in "ab")
    merged = arrays[main].astype(np.float32, copy=False) + scale * (a @ b)
    set_checked(layer, [merged] + ([arrays["bias"]] if "bias" in arrays else []), path, where=where)


def model_weights_group(f, path):
    return get_group(f, "model_weights", path) if "model_weights" in f else f
