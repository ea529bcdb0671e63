"""Which of the variables an optimizer was built for a step updates (``Optimizer._positions``).

An optimizer keeps its slots per variable it was built for. A model compiled again after freezing layers hands it a
part of them (as Keras's optimizer finds each variable's slots by its key), also with the same optimizer instance;
a loaded model's layers frozen before its first step do too. Between two ``compile`` calls the set stays the one of
the last step: Keras's compiled train step keeps training the variables it was traced with until ``compile`` is
called again, so a ``trainable`` changed in between is refused rather than silently ignored. Variables the optimizer
was not built for (layers unfrozen) need a new optimizer, as Keras says.
"""

from __future__ import annotations

import numpy as np


def variable_positions(optimizer, variables: list) -> list[int]:
    """Each of ``variables``' place among those ``optimizer`` was built for, or ValueError saying why it cannot."""
    built = optimizer.__dict__.get("_built_for")
    if len(variables) == len(optimizer._slots):
        if built is not None and any(shape != np.shape(v) for (_, shape), v in zip(built, variables)):
            raise ValueError(f"this optimizer was built for {len(built)} variables of shapes "
                             f"{[shape for _, shape in built][:6]}...; received variables of shapes "
                             f"{[np.shape(v) for v in variables][:6]}...: it can only update the variables it was "
                             "built with (another model's?): compile with a new optimizer instance, as Keras asks")
        return list(range(len(variables)))
    where = {key: k for k, (key, _) in enumerate(built or ())}
    positions = [where.get(id(v), -1) for v in variables]
    n = len(optimizer._slots)
    if built is None or any(k < 0 or built[k][1] != np.shape(v) for k, v in zip(positions, variables)):
        raise ValueError(f"this optimizer was built for {n} variables; received {len(variables)}, some of them not "
                         "among those (layers unfrozen since it was built?): compile the model with a new optimizer "
                         "instance, as Keras asks")
    if optimizer.use_ema:
        raise ValueError(f"this optimizer (use_ema=True) was built for {n} variables; received {len(variables)} of "
                         "them: compile the model with a new optimizer instance")
    if optimizer.__dict__.get("_stepped_with", positions) != positions:
        raise ValueError(f"the model's trainable weights changed since this optimizer's last step ({len(variables)} "
                         f"of its {n} variables now): call compile() again to train the new set (Keras's compiled step "
                         "keeps training the variables it was traced with until then)")
    return positions
