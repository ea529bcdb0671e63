"""Keras 3's learning-rate schedules (``keras.optimizers.schedules``): an optimizer given one evaluates it at
its step count before every update, in float32 as Keras does. ``get`` reads a schedule object, a Keras
config dict (as a ``.keras`` file's optimizer config holds it) or Keras's own live schedule."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import warnings

import numpy as np

from ..layers import registry
from .keras_objects import keras_config

_F32 = np.float32


@functools.cache
def _c_float_functions() -> dict | None:
    """``logf``, ``cosf`` and ``powf`` from the C math library, or None where it cannot be loaded."""
    try:
        library = ctypes.CDLL("libm.so.6")
    except OSError:
        path = ctypes.util.find_library("m")
        if path is None:
            return None
        try:
            library = ctypes.CDLL(path)
        except OSError:
            return None
    functions = {}
    for name, arity in (("log", 1), ("cos", 1), ("pow", 2)):
        function = getattr(library, name + "f")
        function.restype, function.argtypes = ctypes.c_float, [ctypes.c_float] * arity
        functions[name] = function
    return functions


def _scalar_f32(name: str, *args) -> np.float32:
    """``log``, ``cos`` or ``pow`` of float32 scalars as TensorFlow computes them for scalar tensors: with the
    C library's ``logf``/``cosf``/``powf`` (NumPy's float32 versions differ in the last bit for about one value
    in eight); without a C library, the double-precision value rounded to float32."""
    functions = _c_float_functions()
    if functions is not None:
        return _F32(functions[name](*(float(a) for a in args)))
    with np.errstate(all="ignore"):
        return _F32(getattr(np, "power" if name == "pow" else name)(*(np.float64(a) for a in args)))


class LearningRateSchedule:
    """Base class: ``schedule(step)`` -> the learning rate (float32) for optimizer step ``step``."""

    def __call__(self, step) -> np.float32:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)


def _check_decay_steps(decay_steps) -> None:
    if decay_steps <= 0:
        raise ValueError(f"Argument `decay_steps` must be > 0. Received: decay_steps={decay_steps}")


class _RatioDecay(LearningRateSchedule):
    """A rate of ``p = step / decay_steps`` (floored with staircase): ExponentialDecay, InverseTimeDecay."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps, self.decay_rate = initial_learning_rate, decay_steps, decay_rate
        self.staircase, self.name = staircase, name or type(self).__name__

    def _ratio(self, step):
        p = _F32(step) / _F32(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_RatioDecay):
    """``initial_learning_rate * decay_rate ** p``."""

    def __call__(self, step):
        return _F32(self.initial_learning_rate) * _scalar_f32("pow", _F32(self.decay_rate), self._ratio(step))


class InverseTimeDecay(_RatioDecay):
    """``initial_learning_rate / (1 + decay_rate * p)``."""

    def __call__(self, step):
        return _F32(self.initial_learning_rate) / (_F32(1) + _F32(self.decay_rate) * self._ratio(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]`` (values has one entry more)."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError("The length of boundaries should be 1 less than the length of values. Received: "
                             f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of length "
                             f"{len(values)}.")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return _F32(value)
        return _F32(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps`` as ``(1 - p) ** power``
    (``cycle``: the decay restarts at each multiple of ``decay_steps``)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle, self.name = end_learning_rate, power, cycle, name

    def __call__(self, step):
        initial, end = _F32(self.initial_learning_rate), _F32(self.end_learning_rate)
        step_f, steps = _F32(step), _F32(self.decay_steps)
        if self.cycle:
            steps = steps * (_F32(1) if step_f == 0 else np.ceil(step_f / steps))
        else:
            step_f = min(step_f, steps)
        p = step_f / steps
        return (initial - end) * _scalar_f32("pow", _F32(1) - p, _F32(self.power)) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate (or, after ``warmup_steps`` of linear warm-up, from
    ``warmup_target``) to ``alpha`` times it over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        _check_decay_steps(decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def _decay(self, step, decay_steps, decay_from):
        cosine = _F32(0.5) * (_F32(1) + _scalar_f32("cos", _F32(math.pi) * (step / decay_steps)))
        return decay_from * ((_F32(1) - _F32(self.alpha)) * cosine + _F32(self.alpha))

    def __call__(self, step):
        initial, steps = _F32(self.initial_learning_rate), _F32(self.decay_steps)
        step_f = _F32(step)
        if self.warmup_target is None:
            return self._decay(min(step_f, steps), steps, initial)
        target, warmup = _F32(self.warmup_target), _F32(self.warmup_steps)
        step_f = min(step_f, steps + warmup)
        if step_f < warmup:
            return (target - initial) * (step_f / warmup) + initial
        return self._decay(step_f - warmup, steps, target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay from the initial rate to ``alpha`` times it over ``first_decay_steps``, then warm restarts:
    each period ``t_mul`` times longer than the last, starting from ``m_mul`` times the last start (SGDR)."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        if first_decay_steps <= 0:
            raise ValueError("Argument `first_decay_steps` must be > 0. Received: "
                             f"first_decay_steps={first_decay_steps}")
        self.initial_learning_rate, self.first_decay_steps = initial_learning_rate, first_decay_steps
        self.t_mul, self.m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        one = _F32(1)
        t_mul, alpha = _F32(self.t_mul), _F32(self.alpha)
        fraction = _F32(step) / _F32(self.first_decay_steps)
        if t_mul == one:
            restarts = np.floor(fraction)
            fraction = fraction - restarts
        else:  # the restart whose geometric series of period lengths has passed the step
            restarts = np.floor(_scalar_f32("log", one - fraction * (one - t_mul)) / _scalar_f32("log", t_mul))
            period_scale = _scalar_f32("pow", t_mul, restarts)
            fraction = (fraction - (one - period_scale) / (one - t_mul)) / period_scale
        restart_scale = _scalar_f32("pow", _F32(self.m_mul), restarts)
        cosine = _F32(0.5) * restart_scale * (one + _scalar_f32("cos", _F32(math.pi) * fraction))
        return _F32(self.initial_learning_rate) * ((one - alpha) * cosine + alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}


class FunctionRate(LearningRateSchedule):
    """A function of no arguments given as the learning rate (Keras's callable ``learning_rate``): its value,
    in float32, at each step."""

    def __init__(self, function):
        self.function = function

    def __call__(self, step) -> np.float32:
        return _F32(self.function())

    def get_config(self) -> dict:
        return {"function": registry.function_name(self.function)}


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay,
                                    CosineDecay, CosineDecayRestarts)}


def is_schedule(value) -> bool:
    """A schedule object, Keras's own, or a Keras config dict of one."""
    if isinstance(value, LearningRateSchedule):
        return True
    if isinstance(value, dict):
        return "class_name" in value and "config" in value
    converted = keras_config(value)
    return isinstance(converted, dict)


def get(value) -> LearningRateSchedule:
    """A schedule from a schedule object, a Keras config dict or Keras's live schedule object."""
    if isinstance(value, LearningRateSchedule):
        return value
    converted = keras_config(value)
    if converted is not None:
        value = converted
    if isinstance(value, dict):
        name = value.get("class_name")
        if name == "function":  # (a script's function as the rate: given in custom_objects or registered)
            function = registry.custom_function(str(value.get("config")))
            if function is None:
                raise ValueError(f"the learning rate is the function {value.get('config')!r}: pass it in "
                                 "custom_objects (fastgru runs no code from a file)")
            return FunctionRate(function)
        cls = _CLASSES.get(name) or registry.custom_function(str(value.get("registered_name") or name),
                                                             LearningRateSchedule)
        if cls is None:
            raise ValueError(f"learning-rate schedule {name!r} is not supported; supported: {', '.join(_CLASSES)}, "
                             "or a script's own LearningRateSchedule subclass given in custom_objects or registered")
        try:
            return cls.from_config(dict(value.get("config") or {}))
        except TypeError as exc:
            raise ValueError(f"learning-rate schedule {value.get('class_name')}: {exc}") from None
    raise ValueError(f"could not interpret learning-rate schedule {value!r}")


def serialize(schedule: LearningRateSchedule) -> dict:
    """Keras 3's serialized form (what a ``.keras`` file's optimizer config holds): a function as Keras writes one
    (by its name), a script's own class by its registered name."""
    if isinstance(schedule, FunctionRate):
        name = schedule.get_config()["function"]
        if name.startswith("<"):  # (a lambda: Keras writes its bytecode, fastgru never)
            warnings.warn(f"the learning rate is a function without a name ({name}): its current value "
                          f"{float(schedule(0)):.6g} is written in its place (name the function, or use a schedule, "
                          "to save it as a function)", stacklevel=3)
            return float(schedule(0))
        return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    if not type(schedule).__module__.startswith("fastgru."):
        return {"module": None, "class_name": type(schedule).__name__, "config": schedule.get_config(),
                "registered_name": getattr(type(schedule), "_fg_registered_name", None) or type(schedule).__name__}
    return {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config(), "registered_name": None}
