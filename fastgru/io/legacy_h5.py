"""Legacy HDF5: full models saved by tf.keras 2.x / tf_keras and by Keras 3's ``model.save("x.h5")``,
and weight-only ``.h5`` files. Layer groups are found by layer name; each group's ``weight_names``
attribute lists its weights in order (never hard-coded names)."""

from __future__ import annotations

from ..errors import ModelFileError
from .h5utils import dataset_shape, get_group, read_attr, read_dataset, read_list_attr
from .keras_v3 import check_shapes, set_checked


def keras_version(group, path="<file>") -> str | None:
    value = read_attr(group, "keras_version", path)
    return None if value is None else str(value)


def assign_legacy_weights(layers, specs, weights_root, path) -> None:
    """Fill the fastgru layers from a ``model_weights``-style group (or a weights file's root)."""
    layer_names = read_list_attr(weights_root, "layer_names", path)
    # the layers that read from each group, in order (a nested model's group feeds several layers)
    by_group: dict[str, list] = {}
    for layer, spec in zip(layers, specs):
        by_group.setdefault(spec.legacy_group, []).append(layer)
    for group_name, group_layers in by_group.items():
        needed = sum(len(l.weights) for l in group_layers)
        if needed == 0:
            continue
        if group_name not in layer_names:
            raise ModelFileError(path, f"no weights for layer {group_name!r} (the file has: {', '.join(layer_names)})")
        group = get_group(weights_root, group_name, path)
        names = read_list_attr(group, "weight_names", path)
        if len(names) != needed:
            raise ModelFileError(path, f"layer {group_name!r} has {len(names)} weights in the file, "
                                       f"the config implies {needed}")
        shapes = [dataset_shape(group, n, path) for n in names]
        expected = [w.shape for l in group_layers for w in l.weights]
        # the group's layers that hold weights (a nested model's group may end in a Dropout)
        holders = [layer for layer in group_layers if layer.weights]
        i = 0
        for layer in holders:  # shapes first, from the headers: nothing is read for a wrong one
            check_shapes(layer, shapes[i:i + len(layer.weights)], path, where=f"{group_name}/{names[i]}")
            i += len(layer.weights)
        integer = [w.dtype.kind in "iu" for l in holders for w in l.weights]
        arrays = [read_dataset(group, n, path, shape, integer=i) for n, shape, i in zip(names, expected, integer)]
        for layer in holders:
            n = len(layer.weights)
            set_checked(layer, arrays[:n], path, where=f"{group_name}/{names[0]}")
            arrays, names = arrays[n:], names[n:]


def model_weights_group(f, path):
    return get_group(f, "model_weights", path) if "model_weights" in f else f
