"""An optimizer's options from a config (a model file's, ``from_config``'s), checked against the kinds its constructor's
defaults have: a number where the default is one (``rho``, ``momentum``, ``epsilon``, ``clipnorm`` where given), true or
false where it is a flag, so that a damaged file is refused when it loads, not inside the first step's arithmetic."""

from __future__ import annotations

import inspect
import math

import numpy as np

#: options whose values may be other than the kind of their default (a schedule's config, a list of names)
_ANY_KIND = frozenset({"learning_rate", "name", "exclude_layers", "exclude_embeddings", "loss_scale_factor"})


def checked_options(cls: type, config: dict) -> dict:
    """``config`` for ``cls(**config)``, each numeric or flag option of a known kind; TypeError naming the first that
    is not (a string, a list or None where ``cls`` takes a number)."""
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - every optimizer class has a signature
        return config
    for key, value in config.items():
        default = parameters[key].default if key in parameters else inspect.Parameter.empty
        if key in _ANY_KIND or default is inspect.Parameter.empty or isinstance(default, str):
            continue
        # (None where the default is None or the annotation says so: Muon's rms_rate and weight_decay)
        none_ok = default is None or "None" in str(parameters[key].annotation)
        if isinstance(default, bool):
            ok = isinstance(value, (bool, np.bool_))
        else:
            ok = (value is None and none_ok) or (
                isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
                and math.isfinite(float(value)))
        if not ok:
            kind = "true or false" if isinstance(default, bool) else "a finite number" + (
                " or None" if none_ok else "")
            raise TypeError(f"{cls.__name__}: option {key!r} should be {kind}, found {value!r:.60}")
    return config
