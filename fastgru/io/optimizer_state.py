"""The optimizer's state a Keras 3 ``.keras`` file saves (``model.weights.h5``'s ``optimizer/vars/0..n``), given to
the optimizer of the model loaded from it, so that training goes on where Keras left it: the step count, the
learning rate (as ReduceLROnPlateau left it) and every slot (Adam's moments, ...), as ``keras.models.load_model``
restores them.

Keras names none of those arrays: they follow its optimizer's variables in order (``training/keras_slots.py``
states it, ``KERAS_SLOT_LAYOUT``); every array is checked against the shape of the weight
it belongs to (``model.trainable_weights``, in Keras's order), and a state that does not fit is left out with a
warning (the optimizer then starts from its configuration, as before).
"""

from __future__ import annotations

import math
import warnings

import h5py
import numpy as np

from ..errors import ModelFileError
from ..training.keras_slots import KERAS_SLOT_LAYOUT, keras_variables
from .h5utils import read_dataset, read_list_attr


def read_vars(h5, model, path) -> list[np.ndarray] | None:
    """``optimizer/vars/0..n`` of an open Keras 3 weights file, in order (None when there are none), each read as
    the weights are (:func:`_read_array`)."""
    group = h5.get("optimizer/vars") if "optimizer" in h5 else None
    if group is None or not hasattr(group, "keys"):
        return None
    keys = list(group.keys())
    if not all(k.isdigit() for k in keys) or sorted(int(k) for k in keys) != list(range(len(keys))):
        return _malformed(path)
    if len(keys) > _max_arrays(model):
        return _malformed(path, f"{len(keys)} arrays for {len(model.trainable_weights)} trainable weights")
    arrays = [_read_array(group, str(i), model, path) for i in range(len(keys))]
    if any(a is None for a in arrays):
        bad = [a is None for a in arrays].index(True)
        return _malformed(path, f"not all numeric arrays no larger than a weight (array {bad})")
    return arrays


def _max_arrays(model) -> int:
    """The most arrays an optimizer's state holds: a step count, a rate and a loss-scale optimizer's four, then at
    most six per trainable weight (Adam's three, a moving average, an accumulator, ...)."""
    return 8 + 6 * len(model.trainable_weights)


def _read_array(group, key: str, model, path) -> np.ndarray | None:
    """One optimizer array, read by the checked weight reader (``h5utils.read_dataset``: from this file's own bytes,
    nothing allocated before its header is checked), and only when it is a scalar or no larger than the model's
    largest trainable weight (a slot's size); None (the state then left out, with a warning) for another size or
    a non-numeric array. A hostile layout (external storage, a virtual dataset, a filter other than gzip and
    shuffle, a damaged chunk) is the ModelFileError it is for a weight: the whole load is refused."""
    obj = group.get(key)
    if not isinstance(obj, h5py.Dataset):
        return None
    shape, kind = tuple(int(d) for d in obj.shape or ()), obj.dtype.kind
    largest = max((int(w.size) for w in model.trainable_weights), default=1)
    if kind not in "fiu" or len(shape) > 8 or math.prod(shape) > largest:
        return None
    return read_dataset(group, key, path, expected_shape=shape, integer=kind in "iu")


def _malformed(path, why: str = "not numeric arrays 0..n") -> None:
    warnings.warn(f"{path}: its optimizer/vars are {why}; the optimizer "
                  "starts from its configuration", stacklevel=3)
    return None


def restore(model, arrays: list[np.ndarray] | None, path, keras2: bool = False) -> bool:
    """Give ``model``'s compiled optimizer the state Keras saved (see the module docstring); True when done.
    ``keras2``: a tf_keras ``.keras`` file, whose optimizer keeps no learning-rate variable (its step count, then the
    slots in Keras 3's order; the rate is the configured one)."""
    compiled = getattr(model, "_compiled", None)
    if not arrays or compiled is None:
        return False
    optimizer = compiled.optimizer
    arrays = arrays[getattr(optimizer, "keras_state_prefix", 0):]  # (a LossScaleOptimizer's own, first)
    layout = KERAS_SLOT_LAYOUT.get(type(optimizer).__name__)
    variables = model.trainable_weights
    scheduled = getattr(optimizer, "_schedule", None) is not None
    if len(arrays) < (1 if scheduled or keras2 else 2):  # (the step count; the rate too where no schedule sets it)
        return False
    if layout is None or getattr(optimizer, "tf_legacy", False) or not variables:
        return _skip(path, f"fastgru does not read {type(optimizer).__name__}'s saved state")
    optimizer.bind_model(model)  # (Muon: which rule, and so which slots, each variable has)
    slots = [optimizer._build_slots(v) for v in variables]  # (new zero arrays: only their names and shapes)
    order = [(i, name) for group in layout for i in range(len(variables)) for name in group if name in slots[i]]
    # (Keras 3's Nadam saves its momentum product last; tf_keras's keeps it out of its variables: it restarts at 1)
    extra = 1 if type(optimizer).__name__ == "Nadam" and not keras2 else 0
    head = 1 if scheduled or keras2 else 2
    # (use_ema's moving averages and gradient_accumulation_steps's accumulators: before the slots, one per weight)
    kept = [variables] * (bool(optimizer.use_ema) + bool(optimizer.gradient_accumulation_steps))
    expected = head + len(variables) * len(kept) + len(order) + extra
    unstepped_wrapper = len(arrays) in (4, 4 + head) and all(a.shape == () for a in arrays)
    if (len(arrays) == head or unstepped_wrapper and len(arrays) != expected) and (order or extra or kept):
        # saved before any step (the optimizer not built: its count and rate only): Keras's load_model builds
        # the optimizer first and skips a state whose count differs, rate included (it matters where the
        # file's compile config has no optimizer and the default RMSprop is made); silently here, as the
        # count is 0 and the rate the configured one in every file Keras writes with its optimizer; likewise a
        # LossScaleOptimizer saved before any step (its own four scalars, and its inner optimizer's count and
        # rate where built: a mixed_float16 model compiled and saved untrained)
        return False
    if len(arrays) == expected + 4 and all(a.shape == () for a in arrays[:4 + head]):
        # a LossScaleOptimizer's own four (step, rate, step counter, scale) first, its compile config naming the
        # inner optimizer (Keras 3.15 writes a mixed_float16 model's auto-wrapped Adam so)
        arrays = arrays[4:]
    if len(arrays) != expected:
        return _skip(path, f"the file holds {len(arrays)} optimizer arrays; {type(optimizer).__name__} over the "
                           f"model's {len(variables)} trainable weights has "
                           f"{head + len(variables) * len(kept) + len(order) + extra}")
    extra_state, arrays = arrays[head:head + len(variables) * len(kept)], \
        arrays[:head] + arrays[head + len(variables) * len(kept):]
    for a, v in zip(extra_state, [v for group in kept for v in group]):
        if a.shape != v.shape:
            return _skip(path, f"an optimizer moving average or gradient accumulator has shape {a.shape}, its weight "
                               f"{v.shape}")
    for (i, name), a in zip(order, arrays[head:]):
        if a.shape != slots[i][name].shape:
            return _skip(path, f"optimizer array {name!r} of weight {i} has shape {a.shape}, the weight "
                               f"{slots[i][name].shape}")
    if not all(np.all(np.isfinite(a)) for a in arrays[head:]):
        return _skip(path, "the optimizer's saved state holds NaN or infinite values")
    if _step_count(arrays[0]) is None:
        return _skip(path, f"the optimizer's step count is {_shown(arrays[0])}")
    if order or extra_state:
        optimizer.build(variables)
    for a, target in zip(extra_state, optimizer.keras_extra_state):
        target[...] = a.astype(target.dtype)
    for (i, name), a in zip(order, arrays[head:]):
        optimizer._slots[i][name][...] = a.astype(optimizer._slots[i][name].dtype)
    optimizer.raw_iterations = _step_count(arrays[0])  # (Keras's count of calls: with gradient accumulation, more)
    if not scheduled and not keras2:
        _restore_rate(optimizer, arrays[1], path)
    if extra:
        optimizer._u_product = type(optimizer._u_product)(arrays[-1])
    return True


def _step_count(a: np.ndarray) -> int | None:
    """A saved step count as an int: a scalar whole number in [0, 2**62) (a float one included, as Keras casts
    it), else None."""
    if a.shape != () or a.dtype.kind not in "iuf" or not np.isfinite(a):
        return None
    value = float(a) if a.dtype.kind == "f" else int(a)
    return int(value) if value == int(value) and 0 <= value < 2 ** 62 else None


def _shown(a) -> str:
    """A saved scalar's value (a small array's values; a large one's shape) for a message."""
    a = np.asarray(a)
    return repr(a.tolist()) if a.size <= 4 and a.dtype.kind in "biuf" else f"an array of shape {a.shape}"


def _restore_rate(optimizer, a: np.ndarray, path) -> None:
    """The saved learning rate, where it is a finite scalar number (else a warning, and the configured one kept)."""
    if a.shape != () or a.dtype.kind not in "iuf" or not np.isfinite(a):
        warnings.warn(f"{path}: the optimizer's saved learning rate {_shown(a)} is not a number; the configured "
                      "rate is kept", stacklevel=4)
    else:
        optimizer.learning_rate = float(a)


def restore_keras3_h5(model, saved, path) -> bool:
    """Give ``model``'s optimizer the state a Keras 3 legacy ``.h5`` file saved (``optimizer_weights``: the
    optimizer's variables under their names — ``adam/iteration``, ``adam/learning_rate``, then the slots — in
    the order :func:`restore` reads). Keras 3's own ``load_model`` builds the optimizer over no variables there,
    so it takes the step count and the rate and then fails to train ("Unknown variable"); fastgru restores the
    whole state, as from a ``.keras`` file, so that training goes on where it stopped."""
    names, arrays = saved
    if not names or getattr(model, "_compiled", None) is None:
        return False
    # (the step count first; a LossScaleOptimizer's own variables come before its inner optimizer's)
    if not any(n.split("/")[-1] == "iteration" for n in names[:4]):
        return _skip(path, f"its optimizer weights start with {names[0]!r}, not Keras 3's iteration count")
    return restore(model, arrays, path)


def restore_from_weights_file(model, h5, path) -> None:
    """``load_weights`` of a Keras 3 weights file (``.weights.h5``, sharded, a ``.keras`` file's) into a compiled
    model: its ``optimizer/vars`` restored as Keras's ``load_weights`` restores them — into an optimizer that has
    stepped (built), or a step count and rate alone into one that has not; other state for an unbuilt optimizer
    is skipped with Keras's warning."""
    compiled = getattr(model, "_compiled", None)
    if compiled is None or "optimizer" not in h5:
        return
    arrays = read_vars(h5, model, path)
    if not arrays:
        return
    optimizer = compiled.optimizer
    if optimizer.built:
        restore(model, arrays, path)
        return
    head = 1 if getattr(optimizer, "_schedule", None) is not None else 2
    if len(arrays) != head:
        warnings.warn(f"{path}: skipping the optimizer's saved state ({len(arrays)} arrays): the model's optimizer "
                      "has not stepped yet, as Keras's load_weights skips it (train a step first, or load the "
                      "model file with load_model)", stacklevel=4)
        return
    step = _step_count(np.asarray(arrays[0]))
    if step is None:
        _skip(path, f"the optimizer's step count is {_shown(arrays[0])}")
        return
    optimizer.raw_iterations = step
    if head == 2:
        _restore_rate(optimizer, np.asarray(arrays[1]), path)


def _skip(path, why: str) -> bool:
    warnings.warn(f"{path}: the optimizer's saved state is not restored ({why}); training starts from the "
                  "optimizer's configuration", stacklevel=4)
    return False


def write_vars(h5, model) -> None:
    """``optimizer/vars/0..n`` of a compiled model, in Keras 3's order (the inverse of :func:`restore`), so that
    Keras's ``load_model`` (and fastgru's) resume training from the file; nothing for an uncompiled model or an
    optimizer without a known layout."""
    optimizer = getattr(getattr(model, "_compiled", None), "optimizer", None)
    arrays = None if optimizer is None else keras_variables(optimizer, model)
    if arrays is None:
        return
    if getattr(optimizer, "tf_legacy", False):
        warnings.warn(f"model {model.name!r}: its optimizer is tf_keras's legacy (optimizer_v2) "
                      f"{type(optimizer).__name__}, which Keras 3 does not have; the file holds Keras 3's "
                      f"{type(optimizer).__name__}, whose update rule can differ (RMSprop without momentum, Adagrad, "
                      "Nadam, a decay of the rate): training resumed from it follows Keras 3's", stacklevel=4)
    group = h5.require_group("optimizer/vars")
    for i, a in enumerate(arrays):
        group.create_dataset(str(i), data=a)


#: a tf_keras .h5 file's slot names (``optimizer_weights``' weight_names: ``Adam/m/dense/kernel:0``, or for
#: TensorFlow's optimizer_v2 ``Adam/dense/kernel/m:0``), per optimizer class: fastgru's slot -> tf_keras's
_TF_KERAS_KINDS = {
    "SGD": {"momentum": "m"}, "Adam": {"momentum": "m", "velocity": "v", "velocity_hat": "vhat"},
    "AdamW": {"momentum": "m", "velocity": "v", "velocity_hat": "vhat"}, "Nadam": {"momentum": "m", "velocity": "v"},
    "RMSprop": {"velocity": "velocity", "momentum": "momentum", "average_gradient": "average_gradient"},
    "Adagrad": {"accumulator": "accumulator"}, "Adamax": {"m": "m", "u": "u"},
    "Adadelta": {"accumulated_grad": "accumulated_grad", "accumulated_delta_var": "accumulated_delta_var"},
    "Lion": {"momentum": "m"}, "Ftrl": {"accumulator": "accumulator", "linear": "linear"},
}
_TF_LEGACY_KINDS = {
    "SGD": {"momentum": "momentum"}, "Adam": {"momentum": "m", "velocity": "v", "velocity_hat": "vhat"},
    "Nadam": {"momentum": "m", "velocity": "v"},
    "RMSprop": {"velocity": "rms", "momentum": "momentum", "average_gradient": "mg"},
    "Adagrad": {"accumulator": "accumulator"}, "Adamax": {"m": "m", "u": "v"},
    "Adadelta": {"accumulated_grad": "accum_grad", "accumulated_delta_var": "accum_var"},
    "Ftrl": {"accumulator": "accumulator", "linear": "linear"},
}


def read_tf_keras(h5, model, path) -> tuple[list[str], list[np.ndarray]] | None:
    """(names, arrays) of a tf_keras ``.h5`` model file's ``optimizer_weights`` (None when it has none, or when they
    do not fit the model), each read as the weights are (:func:`_read_array`)."""
    group = h5.get("optimizer_weights") if "optimizer_weights" in h5 else None
    if group is None or not hasattr(group, "attrs"):
        return None
    if "weight_names" not in group.attrs and "weight_names0" not in group.attrs:  # (a long list: in chunks)
        return None
    try:
        names = read_list_attr(group, "weight_names", path)
    except ModelFileError as exc:
        return _skip(path, str(exc)) or None
    if len(names) > _max_arrays(model):
        return _skip(path, f"{len(names)} optimizer arrays for {len(model.trainable_weights)} trainable "
                           "weights") or None
    arrays = [_read_array(group, name, model, path) for name in names]
    if any(a is None for a in arrays):
        bad = names[[a is None for a in arrays].index(True)]
        return _skip(path, f"optimizer array {bad!r} is not a numeric array no larger than a weight") or None
    return names, arrays


def restore_tf_keras(model, saved, path) -> bool:
    """Give ``model``'s optimizer the state a tf_keras ``.h5`` file saved, as tf_keras's ``load_model`` restores
    it: the step count and the slots (tf_keras saves no learning rate, and no Nadam momentum product: those
    start from the configuration there too). New optimizers interleave each variable's slots (Adam: ``m``,
    ``v``, then every ``vhat``; RMSprop groups each kind), optimizer_v2's group each kind; every array is
    matched by its kind, in the order of the model's trainable weights, and checked against its shape."""
    compiled = getattr(model, "_compiled", None)
    if saved is None or compiled is None:
        return False
    names, arrays = saved
    if not names:
        return False
    optimizer = compiled.optimizer
    cls = type(optimizer).__name__
    legacy = getattr(optimizer, "tf_legacy", False)
    kinds = (_TF_LEGACY_KINDS if legacy else _TF_KERAS_KINDS).get(cls)
    variables = model.trainable_weights
    if kinds is None or not variables:
        return _skip(path, f"fastgru does not read tf_keras's {cls} state")
    slots = [optimizer._build_slots(v) for v in variables]
    if legacy and cls != "Ftrl":  # each kind for every variable in turn, in the order optimizer_v2 makes them
        order = [(i, name) for name in kinds for i in range(len(variables)) if name in slots[i]]
    elif legacy:  # (optimizer_v2's Ftrl makes both slots of a variable in turn)
        order = [(i, name) for i in range(len(variables)) for name in kinds if name in slots[i]]
    else:
        order = [(i, name) for group in KERAS_SLOT_LAYOUT[cls] for i in range(len(variables)) for name in group
                 if name in slots[i]]
    head = [k for k, n in enumerate(names) if n.split("/")[-1].startswith(("iter", "momentum_cache"))]
    # (use_ema: tf_keras's moving averages, one per variable in their order, before the slots)
    averages = [k for k, n in enumerate(names) if not legacy and n.count("/") > 1 and n.split("/")[1] == "average"]
    body = [k for k in range(len(names)) if k not in head and k not in averages]
    if cls == "SGD" and not order:  # (tf_keras's SGD keeps its momentum slots at zero without momentum)
        body = []
    if not body:  # (saved before any step, or no slots: the step count only)
        order = []
    if len(body) != len(order) or not head or names[head[0]].split("/")[-1].split(":")[0] not in ("iteration", "iter"):
        return _skip(path, f"the file holds {len(body)} optimizer slot arrays; {cls} over the model's "
                           f"{len(variables)} trainable weights has {len(order)}")
    for k, (i, name) in zip(body, order):
        token = names[k].split("/")[-1].split(":")[0] if legacy else names[k].split("/")[1]
        if token != kinds[name] or arrays[k].shape != slots[i][name].shape or not np.all(np.isfinite(arrays[k])):
            return _skip(path, f"optimizer array {names[k]!r} does not fit slot {name!r} of weight {i} "
                               f"{slots[i][name].shape}")
    if averages and (not optimizer.use_ema or [arrays[k].shape for k in averages] != [v.shape for v in variables]
                     or not all(np.all(np.isfinite(arrays[k])) for k in averages)):
        return _skip(path, f"the file holds {len(averages)} moving averages (use_ema) that do not fit {cls}"
                           f"{'' if optimizer.use_ema else ' without use_ema'} over the model's trainable weights")
    step = arrays[head[0]]
    if step.shape != () or not 0 <= int(step) < 2 ** 62:
        return _skip(path, f"the optimizer's step count is {step!r}")
    if order or averages:
        optimizer.build(variables)
    for k, (i, name) in zip(body, order):
        optimizer._slots[i][name][...] = arrays[k].astype(optimizer._slots[i][name].dtype)
    for k, average in zip(averages, optimizer._averages):
        average[...] = arrays[k].astype(average.dtype)
    optimizer.iterations = int(step)
    cache = [k for k in head if names[k].split("/")[-1].startswith("momentum_cache")]
    if cache and cls == "Nadam" and arrays[cache[0]].shape == ():  # (optimizer_v2's Nadam: its product)
        optimizer._u_product = type(optimizer._u_product)(arrays[cache[0]])
    return True
