"""The optimizer's state a Keras 3 ``.keras`` file saves (``model.weights.h5``'s ``optimizer/vars/0..n``), given to
the optimizer of the model loaded from it, so that training goes on where Keras left it: the step count, the
learning rate (as ReduceLROnPlateau left it) and every slot (Adam's moments, ...), as ``keras.models.load_model``
restores them.

Keras names none of those arrays: they follow its optimizer's variables in order — ``iteration``, then
``learning_rate`` (absent under a schedule), then the slots as its ``build`` makes them, which differs per
optimizer: Adam interleaves each variable's momentum and velocity and appends the AMSGrad maxima after all of
them, RMSprop groups each kind (every velocity, then every momentum, then every average gradient), Nadam appends
its momentum product. ``KERAS_SLOT_LAYOUT`` states each; every array is checked against the shape of the weight
it belongs to (``model.trainable_weights``, in Keras's order), and a state that does not fit is left out with a
warning (the optimizer then starts from its configuration, as before).
"""

from __future__ import annotations

import warnings

import numpy as np

#: per optimizer class, the slot groups in Keras 3's variable order: each group is a tuple of slot names
#: emitted for each trainable variable in turn (a name missing from fastgru's slots, such as the momentum
#: of an SGD without momentum, is skipped); fastgru's slot name first where it differs from Keras's
KERAS_SLOT_LAYOUT = {
    "SGD": (("momentum",),),
    "Adam": (("momentum", "velocity"), ("velocity_hat",)),
    "AdamW": (("momentum", "velocity"), ("velocity_hat",)),
    "RMSprop": (("velocity",), ("momentum",), ("average_gradient",)),
    "Nadam": (("momentum", "velocity"),),
    "Adagrad": (("accumulator",),),
    "Adamax": (("m", "u"),),
    "Adadelta": (("accumulated_grad", "accumulated_delta_var"),),
    "Lion": (("momentum",),),
    "Ftrl": (("accumulator", "linear"),),
}


def read_vars(h5) -> list[np.ndarray] | None:
    """``optimizer/vars/0..n`` of an open Keras 3 weights file, in order (None when there are none)."""
    group = h5.get("optimizer/vars") if "optimizer" in h5 else None
    if group is None or not hasattr(group, "keys"):
        return None
    keys = list(group.keys())
    if not all(k.isdigit() for k in keys) or sorted(int(k) for k in keys) != list(range(len(keys))):
        return None
    arrays = []
    for i in range(len(keys)):
        item = group[str(i)]
        if not hasattr(item, "shape") or item.dtype.kind not in "fiu":
            return None
        arrays.append(np.asarray(item[()]))
    return arrays


def restore(model, arrays: list[np.ndarray] | None, path) -> bool:
    """Give ``model``'s compiled optimizer the state Keras saved (see the module docstring); True when done."""
    compiled = getattr(model, "_compiled", None)
    if not arrays or compiled is None or len(arrays) < 2:
        return False
    optimizer = compiled.optimizer
    layout = KERAS_SLOT_LAYOUT.get(type(optimizer).__name__)
    variables = model.trainable_weights
    scheduled = getattr(optimizer, "_schedule", None) is not None
    if layout is None or getattr(optimizer, "tf_legacy", False) or not variables:
        return _skip(path, f"fastgru does not read {type(optimizer).__name__}'s saved state")
    slots = [optimizer._build_slots(v) for v in variables]  # (new zero arrays: only their names and shapes)
    order = [(i, name) for group in layout for i in range(len(variables)) for name in group if name in slots[i]]
    extra = 1 if type(optimizer).__name__ == "Nadam" else 0  # (its momentum product, last)
    head = 1 if scheduled else 2
    if len(arrays) == head:  # (saved before any step: the optimizer not built yet, its rate and count only)
        order, extra = [], 0
    if len(arrays) != head + len(order) + extra:
        return _skip(path, f"the file holds {len(arrays)} optimizer arrays; {type(optimizer).__name__} over the "
                           f"model's {len(variables)} trainable weights has {head + len(order) + extra}")
    for (i, name), a in zip(order, arrays[head:]):
        if a.shape != slots[i][name].shape:
            return _skip(path, f"optimizer array {name!r} of weight {i} has shape {a.shape}, the weight "
                               f"{slots[i][name].shape}")
    if not all(np.all(np.isfinite(a)) for a in arrays[head:]):
        return _skip(path, "the optimizer's saved state holds NaN or infinite values")
    if arrays[0].shape != () or not 0 <= int(arrays[0]) < 2 ** 62:
        return _skip(path, f"the optimizer's step count is {arrays[0]!r}")
    if order:
        optimizer.build(variables)
    for (i, name), a in zip(order, arrays[head:]):
        optimizer._slots[i][name][...] = a.astype(optimizer._slots[i][name].dtype)
    optimizer.iterations = int(arrays[0])
    if not scheduled and arrays[1].shape == () and np.isfinite(arrays[1]):
        optimizer.learning_rate = float(arrays[1])
    if extra:
        optimizer._u_product = type(optimizer._u_product)(arrays[-1])
    return True


def _skip(path, why: str) -> bool:
    warnings.warn(f"{path}: the optimizer's saved state is not restored ({why}); training starts from the "
                  "optimizer's configuration", stacklevel=4)
    return False


def write_vars(h5, model) -> None:
    """``optimizer/vars/0..n`` of a compiled model, in Keras 3's order (the inverse of :func:`restore`), so that
    Keras's ``load_model`` (and fastgru's) resume training from the file; nothing for an uncompiled model or an
    optimizer without a known layout."""
    compiled = getattr(model, "_compiled", None)
    optimizer = getattr(compiled, "optimizer", None)
    layout = KERAS_SLOT_LAYOUT.get(type(optimizer).__name__)
    if optimizer is None or layout is None:
        return
    arrays = [np.int64(optimizer.iterations)]
    if getattr(optimizer, "_schedule", None) is None:
        arrays.append(np.float32(optimizer.learning_rate))
    variables = model.trainable_weights
    if optimizer.built and len(optimizer._slots) == len(variables):
        slots = optimizer._slots
        arrays += [slots[i][name] for group in layout for i in range(len(variables)) for name in group
                   if name in slots[i]]
        if type(optimizer).__name__ == "Nadam":
            arrays.append(np.asarray(optimizer._u_product))
    group = h5.require_group("optimizer/vars")
    for i, a in enumerate(arrays):
        group.create_dataset(str(i), data=a)
