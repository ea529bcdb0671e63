"""Keras 3's ``optimizer.variables``, in its order: what a ``.keras`` file saves as ``optimizer/vars/0..n`` and
what ``optimizer.variables`` lists.

Keras names none of those arrays in a file: they follow its optimizer's variables in order — ``iteration``, then
``learning_rate`` (absent under a schedule), then ``use_ema``'s moving averages and gradient accumulation's
accumulators, then the slots as its ``build`` makes them, which differs per optimizer: Adam interleaves each
variable's momentum and velocity and appends the AMSGrad maxima after all of them, RMSprop groups each kind
(every velocity, then every momentum, then every average gradient), Nadam appends its momentum product.
``KERAS_SLOT_LAYOUT`` states each.
"""

from __future__ import annotations

import numpy as np

from ..eager import EagerArray

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
    "Lamb": (("momentum", "velocity"),),
    "Adafactor": (("r", "c", "velocity"),),
    "Muon": (("momentum", "velocity"),),  # (a velocity only for the variables it steps with AdamW)
    "ScheduleFreeAdamW": (("momentum", "velocity"),),
}


def keras_variables(optimizer, model=None, as_loaded: bool = False) -> list[np.ndarray] | None:
    """Keras 3's ``optimizer.variables`` as arrays, in its order: the step count (int64), the rate (float32,
    unless a schedule sets it), the moving averages and gradient accumulators, each variable's slots in
    ``KERAS_SLOT_LAYOUT``'s order, Nadam's momentum product (the slots are the optimizer's live arrays). An
    optimizer not built yet holds the first two only, or with ``as_loaded`` the zero arrays Keras's holds once a
    file has built it for ``model``'s trainable weights; None for an optimizer without a known layout."""
    layout = KERAS_SLOT_LAYOUT.get(type(optimizer).__name__)
    if layout is None:
        return None
    arrays = [np.int64(optimizer.raw_iterations)]
    if getattr(optimizer, "_schedule", None) is None:
        arrays.append(np.float32(optimizer.learning_rate))
    built = optimizer.built  # (for every variable it was built for: layers frozen since keep their slots, as Keras's)
    if not (built or (as_loaded and model is not None)):
        return arrays
    if built:
        slots, extra = optimizer._slots, optimizer.keras_extra_state
    else:
        variables = model.trainable_weights
        optimizer.bind_model(model)  # (Muon: which rule, and so which slots, each variable has)
        slots = [optimizer._build_slots(v) for v in variables]
        extra = [np.zeros_like(v) for v in variables] * (bool(optimizer.use_ema)
                                                         + bool(optimizer.gradient_accumulation_steps))
    arrays += extra
    arrays += [slots[i][name] for group in layout for i in range(len(slots)) for name in group if name in slots[i]]
    if type(optimizer).__name__ == "Nadam":
        dtype = next((np.asarray(a).dtype for s in slots for a in s.values()), np.dtype(np.float32))
        arrays.append(np.asarray(optimizer._u_product if built else 1.0, dtype))
    return arrays


class KerasVariables:
    """The optimizer's state as Keras lists it (mixed into ``Optimizer``)."""

    @property
    def keras_extra_state(self) -> list[np.ndarray]:
        """The moving averages and gradient accumulators, as Keras's variables list has them before the slots."""
        return [*self._averages, *self._accumulators]

    @property
    def variables(self) -> list[EagerArray]:
        """Keras's ``optimizer.variables``: the step count, the rate (unless a schedule sets it), then the moving
        averages, accumulators and slots in Keras's order (:func:`keras_variables`), each with ``.numpy()``; the
        slots are views of the live arrays. Before the first step, the step count and rate only, as in Keras."""
        arrays = keras_variables(self)
        if arrays is None:  # (no known layout: each variable's slots in turn)
            arrays = [np.int64(self.raw_iterations), np.float32(self.learning_rate), *self.keras_extra_state,
                      *(a for slots in (self._slots if self.built else []) for a in slots.values())]
        return [np.asarray(a).view(EagerArray) for a in arrays]
