"""The layer registry: each layer class declares its Keras contract once, in its own module.

A registered class carries

* ``keras = KerasContract(names=..., fixed=..., ignored=..., weights=...)``: the Keras class names it
  answers to (Keras 2 and 3 spellings), the options Keras may write that fastgru fixes
  (``{"time_major": False}``: any other value is refused; ``ANY``: accepted and ignored) or ignores
  because they only shape training, and where its variables live in a ``.keras`` weights file
  (``"vars"``, ``"cell/vars"``);
* ``parameter_constraints = {"filters": [Integer(1)], "padding": [StrOptions({"valid", "same"})], ...}``
  (scikit-learn's ``_parameter_constraints`` idea): the constructor's options and what each accepts.

The constructors validate through :func:`validate_params`, and ``fastgru.io`` loads a Keras config
through the same declaration (``lookup``), re-raising a refusal as a ``ModelFileError`` naming the file:
one strictness for ``Conv1D(4, "3")`` in code and for the same value in a file. ``io`` imports no
concrete layer class; adding a layer is one module in ``layers/`` (decorated with
:func:`register_layer`) plus its tests.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UnsupportedKerasFeature

#: a fixed option that accepts any value (it does not change the math)
ANY = object()


class Constraint:
    """One kind of accepted value. ``convert`` turns an accepted value into the stored one."""

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def convert(self, value):
        return value

    def is_type_error(self, value) -> bool:
        """True when ``value`` is of the wrong type altogether (TypeError), not out of range (ValueError)."""
        return True


class _NoneValue(Constraint):
    def accepts(self, value) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


NONE = _NoneValue()


class Boolean(Constraint):
    def accepts(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def convert(self, value):
        return bool(value)

    def __str__(self) -> str:
        return "True or False"


class Integer(Constraint):
    """An int (not a bool) in ``[low, high]``."""

    def __init__(self, low: int | None = None, high: int | None = None):
        self.low, self.high = low, high

    def accepts(self, value) -> bool:
        return (isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
                and (self.low is None or value >= self.low) and (self.high is None or value <= self.high))

    def is_type_error(self, value) -> bool:
        return not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_))

    def convert(self, value):
        return int(value)

    def __str__(self) -> str:
        if self.low is not None and self.high is None:
            return "a positive integer" if self.low == 1 else f"an integer >= {self.low}"
        if self.low is None or self.high is None:
            return "an integer" if self.high is None else f"an integer <= {self.high}"
        return f"an integer in [{self.low}, {self.high}]"


class Real(Constraint):
    """A finite real number (not a bool) in ``[low, high]`` (``open_low``: ``(low, high]``)."""

    def __init__(self, low: float | None = None, high: float | None = None, open_low: bool = False,
                 open_high: bool = False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high

    def accepts(self, value) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not np.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.open_high else value > self.high))

    def is_type_error(self, value) -> bool:
        return not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_))

    def convert(self, value):
        return float(value)

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            return "a finite number"
        lo = "(" if self.open_low else "["
        hi = ")" if self.open_high else "]"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"a number in {lo}{low}, {high}{hi}"


class StrOptions(Constraint):
    """One of ``options`` (compared lower-cased with ``lower``); ``unsupported``: values Keras takes that fastgru
    does not implement (refused as :class:`UnsupportedKerasFeature`, not as a wrong value)."""

    def __init__(self, options, lower: bool = False, unsupported=()):
        self.options, self.lower, self.unsupported = tuple(options), lower, tuple(unsupported)

    def accepts(self, value) -> bool:
        return isinstance(value, str) and (value.lower() if self.lower else value) in self.options

    def is_type_error(self, value) -> bool:
        return not isinstance(value, str)

    def convert(self, value):
        return value.lower() if self.lower else value

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


class IntTuple(Constraint):
    """An int or a sequence of ``length`` ints, each ``>= low`` (Keras's ``kernel_size=3`` or ``(3,)``);
    stored as a tuple."""

    def __init__(self, length: int, low: int = 1):
        self.length, self.low = length, low

    def _items(self, value):
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value] * self.length  # (Keras's kernel_size=3 for (3, 3))

    def accepts(self, value) -> bool:
        items = self._items(value)
        return len(items) == self.length and all(Integer(self.low).accepts(v) for v in items)

    def convert(self, value):
        return tuple(int(v) for v in self._items(value))

    def is_type_error(self, value) -> bool:
        return not (isinstance(value, (list, tuple)) or Integer().accepts(value))

    def __str__(self) -> str:
        what = "a positive integer" if self.low == 1 else f"an integer >= {self.low}"
        return f"{what} or a tuple of {self.length} such integers"


class Shape(Constraint):
    """A sequence of positive ints and, when ``allow_none``, None entries; stored as a tuple."""

    def __init__(self, allow_none: bool = False, allow_minus_one: bool = False):
        self.allow_none, self.allow_minus_one = allow_none, allow_minus_one

    def accepts(self, value) -> bool:
        if not isinstance(value, (list, tuple)):
            return False
        for d in value:
            if d is None and self.allow_none:
                continue
            if self.allow_minus_one and isinstance(d, numbers.Integral) and not isinstance(d, bool) and d == -1:
                continue
            if not Integer(1).accepts(d):
                return False
        return True

    def convert(self, value):
        return tuple(None if d is None else int(d) for d in value)

    def is_type_error(self, value) -> bool:
        return not isinstance(value, (list, tuple))

    def __str__(self) -> str:
        extra = " or None" if self.allow_none else " (one may be -1)" if self.allow_minus_one else ""
        return f"a tuple of positive integers{extra}"


class ActivationName(Constraint):
    """An activation name, None meaning linear (or a Keras-style dict); a name fastgru does not have is an
    ``UnsupportedKerasFeature`` from ``convert`` (as for Dense), not a type error."""

    def __init__(self, recurrent: bool = False):
        self.recurrent = recurrent

    def accepts(self, value) -> bool:
        return True  # convert() decides, with UnsupportedKerasFeature naming what it received

    def convert(self, value):
        from .. import activations

        return activations.kernel_code_name(value) if self.recurrent else activations.canonical_name(value)

    def __str__(self) -> str:
        return "an activation name"


class InitializerSpec(Constraint):
    """An initializer name, config dict or instance that ``fastgru.initializers.get`` builds."""

    def accepts(self, value) -> bool:
        from .. import initializers

        try:
            initializers.get(value)
        except Exception:  # noqa: BLE001
            return False
        return True

    def __str__(self) -> str:
        return "an initializer name or config"


class Anything(Constraint):
    """Accepted as it is (options whose value the layer checks itself)."""

    def accepts(self, value) -> bool:
        return True

    def __str__(self) -> str:
        return "any value"


def describe(constraints) -> str:
    texts = [str(c) for c in constraints]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def check_value(owner: str, name: str, value, constraints, found: str = "received"):
    """``value`` converted by the first constraint that accepts it; else TypeError (wrong type) or
    ValueError (right type, wrong value) naming ``owner`` and the option (``found``: the word before the
    value in the message, "found" for a value read from a file)."""
    for constraint in constraints:
        if constraint.accepts(value):
            try:
                return constraint.convert(value)
            except UnsupportedKerasFeature as exc:  # a value fastgru knows of but refuses here: say where
                raise UnsupportedKerasFeature(f"{owner}: {name}: {exc}") from None
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    if any(value in getattr(c, "unsupported", ()) for c in constraints if isinstance(value, str)):
        raise UnsupportedKerasFeature(f"{owner}: {name}={text} is not supported (fastgru implements "
                                      f"{describe(constraints)})")
    error = TypeError if all(c.is_type_error(value) for c in constraints) else ValueError
    raise error(f"{owner}: option {name!r} should be {describe(constraints)}, {found} {text}")


def validate_params(owner: str, constraints: Mapping[str, list], params: Mapping[str, Any]) -> dict:
    """Every option of ``params`` checked against ``constraints`` and converted (see :func:`check_value`)."""
    return {name: check_value(owner, name, value, constraints[name]) if name in constraints else value
            for name, value in params.items()}


@dataclass(frozen=True)
class KerasContract:
    """How a fastgru layer class meets Keras's files (see the module docstring)."""

    names: tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    ignored: frozenset = frozenset()
    weights: str = "vars"
    #: values for options a Keras 2 config may leave out where Keras 2's default differs from Keras 3's
    keras2_defaults: Mapping[str, Any] = field(default_factory=dict)


def without_fixed_options(cls, config: dict) -> dict:
    """``config`` without the Keras options ``cls``'s contract fixes or ignores and its constructor does not take,
    given at their fixed value (a Keras 3.15 config's ``renorm=False``, ``lora_rank=None``): what ``from_config``
    builds from a Keras layer's ``get_config()``; one set to another value is refused by name."""
    contract = getattr(cls, "keras", None)
    fixed, ignored = getattr(contract, "fixed", {}) or {}, getattr(contract, "ignored", frozenset())
    takes = getattr(cls, "parameter_constraints", None) or {}
    kept = {}
    for key, value in config.items():
        if key in takes or (key not in fixed and key not in ignored):
            kept[key] = value
        elif key in fixed and fixed[key] is not ANY and value is not None and not _same(value, fixed[key]):
            raise UnsupportedKerasFeature(f"{cls.__name__}: option {key}={value!r:.60} is not supported by fastgru")
    return kept


def _same(value, required) -> bool:
    try:
        return bool(value == required)
    except (TypeError, ValueError):
        return False


_REGISTRY: dict[str, type] = {}


def register_layer(cls):
    """Class decorator: record ``cls`` under each of its ``keras.names``."""
    contract = cls.__dict__.get("keras")
    if not isinstance(contract, KerasContract):
        raise TypeError(f"{cls.__name__} declares no KerasContract (class attribute 'keras')")
    if not isinstance(getattr(cls, "parameter_constraints", None), dict):
        raise TypeError(f"{cls.__name__} declares no parameter_constraints")
    for name in contract.names:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"Keras class name {name!r} is registered twice ({_REGISTRY[name].__name__}, "
                             f"{cls.__name__})")
        _REGISTRY[name] = cls
    return cls


def lookup(keras_class_name: str) -> type | None:
    """The registered fastgru layer class for a Keras class name, or None."""
    return _REGISTRY.get(keras_class_name)


_custom_scope = threading.local()


@contextmanager
def custom_layers(custom_objects: dict | None):
    """Within the block, the fastgru layer classes of a script's own in ``custom_objects`` (``load_model``'s:
    ``{"Linear": Linear}``, ``"MyPackage>Linear"`` too; written for fastgru as for Keras, ``fastgru.layers.custom``)
    build a file's layers of their class names. Nothing else in it is taken: fastgru runs no code from a file."""
    classes = {str(k).rpartition(">")[2]: v for k, v in (custom_objects or {}).items() if isinstance(v, type)}
    functions = {str(k).rpartition(">")[2]: v for k, v in (custom_objects or {}).items() if callable(v)}
    before, passed_over = getattr(_custom_scope, "classes", {}), getattr(_custom_scope, "passed_over", set())
    functions_before = getattr(_custom_scope, "functions", {})
    _custom_scope.classes = {**before, **{k: v for k, v in classes.items() if getattr(v, "_fg_user_layer", False)}}
    _custom_scope.passed_over = passed_over | {k for k, v in classes.items() if not getattr(v, "_fg_user_layer", False)}
    _custom_scope.functions = {**functions_before, **functions}
    try:
        yield
    finally:
        _custom_scope.classes, _custom_scope.passed_over = before, passed_over
        _custom_scope.functions = functions_before


def passed_over(keras_class_name: str) -> bool:
    """Whether ``custom_objects`` gave a class for ``keras_class_name`` that is not a fastgru layer (Keras's own,
    say), which :func:`custom_layers` leaves out."""
    return str(keras_class_name).rpartition(">")[2] in getattr(_custom_scope, "passed_over", set())


#: Keras's global custom objects (``keras.saving.get_custom_objects()``): what ``register_keras_serializable``
#: registers, under ``"package>Name"`` (and what a script puts there itself, under any name)
CUSTOM_OBJECTS: dict[str, Any] = {}


def custom_layer(keras_class_name: str) -> type | None:
    """The script's own layer class given for ``keras_class_name`` (:func:`custom_layers`; else registered, by its
    ``"package>Name"`` or its name), or None."""
    name = str(keras_class_name)
    found = getattr(_custom_scope, "classes", {}).get(name.rpartition(">")[2])
    if found is None:
        found = CUSTOM_OBJECTS.get(name) or next(
            (c for k, c in CUSTOM_OBJECTS.items() if k.rpartition(">")[2] == name.rpartition(">")[2]), None)
    return found if isinstance(found, type) and getattr(found, "_fg_user_layer", False) else None


def script_classes(layers) -> dict:
    """The script's own classes among ``layers`` and the cells they loop (Keras class name -> class): what a model
    rebuilt from its config (a clone, an unpickled copy) takes as ``custom_objects``."""
    return {type(obj).__name__: type(obj) for layer in layers for obj in (layer, layer.__dict__.get("cell"))
            if getattr(type(obj), "_fg_user_layer", False)}


def custom_function(name: str, base: type | None = None):
    """The script's own function for a file's serialized function ``name`` (a metric's: ``"rmse"``,
    ``"package>rmse"``), or with ``base`` its own subclass of ``base`` of that class name (a Keras-style
    ``Metric``): given in ``load_model``'s ``custom_objects``, else registered; or None."""
    short = str(name).rpartition(">")[2]
    found = getattr(_custom_scope, "functions", {}).get(short) or CUSTOM_OBJECTS.get(str(name)) or next(
        (f for k, f in CUSTOM_OBJECTS.items() if k.rpartition(">")[2] == short), None)
    if base is not None:
        return found if isinstance(found, type) and issubclass(found, base) else None
    return found if callable(found) and not isinstance(found, type) else None


def function_name(fn) -> str:
    """How Keras serializes the function ``fn``: its registered name (``"package>rmse"``), else its name."""
    return next((k for k, f in CUSTOM_OBJECTS.items() if f is fn), getattr(fn, "__name__", type(fn).__name__))


def registered() -> list[type]:
    """Every registered class, once each, in registration order."""
    return list(dict.fromkeys(_REGISTRY.values()))


def keras_names() -> list[str]:
    return sorted(_REGISTRY)


#: the model classes and the Input factory, by Keras name ("Sequential", "Functional", "Input"): what
#: fastgru.io builds models with, without importing fastgru.models or fastgru.functional (no import cycle)
_MODELS: dict[str, Any] = {}


def register_model(name: str, obj) -> None:
    """Record a model class (or the ``Input`` factory) under its Keras name."""
    _MODELS[name] = obj


def model_class(name: str):
    """The model class (or ``Input`` factory) recorded under ``name`` by fastgru.models / fastgru.functional."""
    try:
        return _MODELS[name]
    except KeyError:
        raise RuntimeError(f"fastgru's {name!r} is not loaded (import fastgru)") from None


def constraint_options(cls) -> dict:
    """Keras's weight-constraint options of a layer class, option -> weight name: one per weight it
    regularizes (``kernel_constraint`` for ``kernel_regularizer``'s kernel, ...), none where the class says
    ``applies_constraints = False`` (it refuses them itself)."""
    if not getattr(cls, "applies_constraints", True):
        return {}
    return {option.replace("_regularizer", "_constraint"): weight
            for option, weight in getattr(cls, "regularizer_options", {}).items()}
