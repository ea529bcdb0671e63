"""Weight constraints, Keras 3's ``MaxNorm``, ``MinMaxNorm``, ``NonNeg`` and ``UnitNorm``: a projection
applied to a weight after every optimizer step (Keras's optimizer assigns ``constraint(variable)`` after
its update), as ``fastgru.training`` does.

A layer takes them as Keras's options, one per weight it regularizes (``kernel_constraint=``,
``recurrent_constraint=``, ``bias_constraint=``, ``embeddings_constraint=``, ``gamma_constraint=``, ...):
a constraint object, a name (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``, with
Keras's defaults) or a config as Keras serializes it (``{"class_name": "MaxNorm", "config": {"max_value": 3,
"axis": 0}}``). Custom constraints are refused (``UnsupportedKerasFeature``: ``fastgru.io`` then loads the
model for inference and warns that the constraint is not applied).

Norms are over ``axis`` (0 by default: each unit's incoming weights of a (D, units) kernel), with Keras's
``epsilon`` (1e-7) in the division.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import UnsupportedKerasFeature

#: Keras's ``backend.epsilon()``
EPSILON = 1e-7


def _axis(value):
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in items):
        raise TypeError(f"a constraint's axis should be an int or a list of ints, received {value!r}")
    return int(items[0]) if not isinstance(value, (list, tuple)) else tuple(int(a) for a in items)


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"a constraint's {name} should be a finite number, received {value!r}")
    return float(value)


class Constraint:
    keras_name = ""

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MaxNorm(Constraint):
    """``w * clip(norm, 0, max_value) / (epsilon + norm)``, the norm over ``axis``."""

    keras_name = "MaxNorm"

    def __init__(self, max_value: float = 2.0, axis=0):
        self.max_value, self.axis = _real("max_value", max_value), _axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        desired = np.clip(norms, 0, w.dtype.type(self.max_value))
        return w * (desired / (w.dtype.type(EPSILON) + norms))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """``w * (rate * clip(norm, min_value, max_value) + (1 - rate) * norm) / (epsilon + norm)``."""

    keras_name = "MinMaxNorm"

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis=0):
        self.min_value, self.max_value = _real("min_value", min_value), _real("max_value", max_value)
        self.rate, self.axis = _real("rate", rate), _axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        t = w.dtype.type
        norms = np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True))
        desired = t(self.rate) * np.clip(norms, t(self.min_value), t(self.max_value)) + t(1 - self.rate) * norms
        return w * (desired / (t(EPSILON) + norms))

    def get_config(self) -> dict:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """The negative weights set to zero."""

    keras_name = "NonNeg"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """``w / (epsilon + norm)``, the norm over ``axis``."""

    keras_name = "UnitNorm"

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w / (w.dtype.type(EPSILON) + np.sqrt(np.sum(np.square(w), axis=self.axis, keepdims=True)))

    def get_config(self) -> dict:
        return {"axis": self.axis}


#: Keras's lower-case spellings of the classes (``keras.constraints.max_norm(2)``)
max_norm, min_max_norm, non_neg, unit_norm = MaxNorm, MinMaxNorm, NonNeg, UnitNorm

_CLASSES = {c.keras_name: c for c in (MaxNorm, MinMaxNorm, NonNeg, UnitNorm)}
_BY_NAME = {"max_norm": MaxNorm, "min_max_norm": MinMaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
            **{name.lower(): cls for name, cls in _CLASSES.items()}, **_CLASSES}


def get(identifier):
    """A constraint from an object, a name or a Keras config dict (None stays None)."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if hasattr(identifier, "get_config") and not isinstance(identifier, (str, dict)):  # Keras's object: its config
        return get({"class_name": type(identifier).__name__, "config": dict(identifier.get_config())})
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]()
        raise UnsupportedKerasFeature(f"constraint {identifier!r} is unknown to fastgru (it has max_norm, "
                                      "min_max_norm, non_neg, unit_norm)")
    if isinstance(identifier, dict):
        name, config = identifier.get("class_name"), identifier.get("config") or {}
        if not isinstance(name, str) or not isinstance(config, dict):
            raise TypeError(f"a constraint config needs a class_name string and a config dict, received "
                            f"{str(identifier)[:80]}")
        if name not in _CLASSES:
            raise UnsupportedKerasFeature(f"constraint class {name!r} is not implemented by fastgru (a custom "
                                          "constraint: its code cannot be loaded)")
        try:
            return _CLASSES[name](**config)
        except TypeError as exc:
            raise UnsupportedKerasFeature(f"constraint {name}: {exc}") from None
    raise TypeError(f"a constraint should be a name ('max_norm', ...), a Keras config dict or a fastgru.constraints "
                    f"object, received {type(identifier).__name__}")


def serialize(constraint) -> dict | None:
    """The Keras 3 config of a constraint (what ``save`` writes; Keras reads it back)."""
    if constraint is None:
        return None
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in constraint.get_config().items()}
    return {"module": "keras.constraints", "class_name": constraint.keras_name, "config": config,
            "registered_name": None}
