"""Optimizers with Keras 3's exact update rules, updating NumPy arrays in place: SGD, Adam, RMSprop,
Adagrad, AdamW, Nadam, Adamax here, Adadelta, Lion, Ftrl, Lamb and Adafactor in ``more_optimizers``, all on
``optimizer_base.Optimizer`` (clipping, weight decay, schedules); ``get`` reads any of them by name,
Keras config dict or Keras object."""

from __future__ import annotations

import numpy as np

from .._kernels.optim import adam_update
from ..layers import registry
from . import (
    keras_objects,
    schedules,  # noqa: F401  (fg.optimizers.schedules, as keras.optimizers.schedules)
)
from .keras_objects import keras_config
from .more_optimizers import Adadelta, Adafactor, Ftrl, Lamb, Lion, ScheduleFreeAdamW
from .muon import Muon
from .optimizer_base import Optimizer, _kcast, _square


def _flat_kernel_operands(*arrays) -> bool:
    """Whether the arrays can go to a compiled update as flat views: one float dtype, one shape,
    C-contiguous (a reshape to (n,) is then a view, so the update lands in the variable)."""
    first = arrays[0]
    return (first.dtype in (np.float32, np.float64)
            and all(a.dtype == first.dtype and a.shape == first.shape and a.flags.c_contiguous for a in arrays))


class SGD(Optimizer):
    """``v = momentum * v - lr * g; var += v`` (nesterov: ``var += momentum * v - lr * g``)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        momentum = float(momentum)
        if momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var)} if self.momentum != 0 else {}

    @property
    def legacy_lazy_rows(self) -> bool:  # (optimizer_v2's ResourceSparseApplyKerasMomentum)
        return self.tf_legacy and self.momentum != 0

    def _update(self, i, g, var, lr, g_sq):
        if self.momentum == 0:
            var -= g * lr
            return
        m = self._slots[i]["momentum"]
        mom = _kcast(self.momentum, var.dtype)
        m[...] = m * mom - g * lr
        if self.nesterov:
            var += m * mom - g * lr
        else:
            var += m

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras 3's Adam: ``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)``;
    ``var -= alpha * m / (sqrt(v) + epsilon)`` (epsilon outside the bias correction)."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, bool(amsgrad)

    def _build_slots(self, var):
        slots = {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}
        if self.amsgrad:
            slots["velocity_hat"] = np.zeros_like(var)
        return slots

    def _step_scalars(self, dtype: np.dtype, lr) -> tuple:
        """``(alpha, 1 - beta_1, 1 - beta_2, epsilon)`` in ``dtype`` for this step, computed once per
        step and dtype (the same for every variable: a small model's step updates several)."""
        key = (self.iterations, dtype, lr, self.beta_1, self.beta_2, self.epsilon)
        cached = getattr(self, "_scalars", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        dt = dtype.type
        step = dt(self.iterations + 1)
        b1_power = np.power(_kcast(self.beta_1, dtype), step)
        b2_power = np.power(_kcast(self.beta_2, dtype), step)
        alpha = dt(lr * np.sqrt(dt(1) - b2_power) / (dt(1) - b1_power))
        scalars = (alpha, dt(1 - self.beta_1), dt(1 - self.beta_2), dt(self.epsilon))
        self._scalars = (key, scalars)
        return scalars

    def _update(self, i, g, var, lr, g_sq):
        s = self._slots[i]
        m, v = s["momentum"], s["velocity"]
        alpha, one_minus_beta_1, one_minus_beta_2, epsilon = self._step_scalars(var.dtype, lr)
        if g_sq is None and not self.amsgrad and _flat_kernel_operands(var, g, m, v):
            # one pass over the elements, bit-identical to the expressions below (a few microseconds
            # instead of ten NumPy calls and their temporaries: a third of a small model's step)
            adam_update(var.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), alpha,
                        one_minus_beta_1, one_minus_beta_2, epsilon)
            return
        m += (g - m) * one_minus_beta_1
        v += (_square(g, g_sq) - v) * one_minus_beta_2
        if self.amsgrad:
            v_hat = s["velocity_hat"]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        var -= (m * alpha) / (np.sqrt(v) + epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; ``var -= lr g / sqrt(v + eps)`` (centered: ``v - mg^2 + eps``),
    through a momentum accumulator when ``momentum > 0``."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, bool(centered)

    def _build_slots(self, var):
        slots = {"velocity": np.zeros_like(var)}
        if self.momentum > 0:
            slots["momentum"] = np.zeros_like(var)
        if self.centered:
            slots["average_gradient"] = np.zeros_like(var)
        return slots

    @property
    def legacy_lazy_rows(self) -> bool:  # (optimizer_v2's ResourceSparseApplyRMSProp; without momentum: dense decay)
        return self.tf_legacy and self.momentum > 0

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        s = self._slots[i]
        rho = dt(self.rho)
        vel = s["velocity"]
        vel[...] = rho * vel + dt(1 - self.rho) * _square(g, g_sq)
        if self.centered:
            ag = s["average_gradient"]
            ag[...] = rho * ag + dt(1 - self.rho) * g
            base = vel - np.square(ag)
        else:
            base = vel
        if self.tf_legacy and self.momentum == 0:  # optimizer_v2 without momentum: epsilon outside the root
            var -= (lr * g) / (np.sqrt(base) + dt(self.epsilon))
            return
        increment = (lr * g) / np.sqrt(base + dt(self.epsilon))
        if self.momentum > 0:
            mom = s["momentum"]
            mom[...] = dt(self.momentum) * mom + increment
            var -= mom
        else:
            var -= increment

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """``acc += g^2``; ``var -= lr g / sqrt(acc + eps)``; ``acc`` starts at ``initial_accumulator_value``."""

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _build_slots(self, var):
        return {"accumulator": np.full_like(var, _kcast(self.initial_accumulator_value, var.dtype))}

    def _update(self, i, g, var, lr, g_sq):
        acc = self._slots[i]["accumulator"]
        acc += _square(g, g_sq)
        if self.tf_legacy:  # (optimizer_v2's Adagrad: epsilon outside the root)
            var -= (lr * g) / (np.sqrt(acc) + var.dtype.type(self.epsilon))
            return
        var -= (lr * g) / np.sqrt(acc + var.dtype.type(self.epsilon))

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Keras 3's AdamW: Adam with decoupled weight decay, ``var -= var * weight_decay * lr`` before each
    step (``weight_decay`` 0.004 by default, and required)."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Keras 3's Nadam: Adam with Nesterov momentum and the momentum schedule
    ``u_t = beta_1 * (1 - 0.5 * 0.96^t)``, whose running product (one scalar, in the first variable's dtype)
    is advanced once per step before the variables are updated.

    ``tf_keras_steps`` (set for a model compiled from a tf_keras file): the product as tf_keras's Nadam
    advances it in its compiled train step, where the check meant to advance it once per step compares
    the step with a count that grew by one per variable at each trace of the step: the k-th variable
    updated (from 0) advances it by its own ``u_t`` unless ``k + 1 + traces · variables`` is the step
    number plus two, and reads it after that. A model tf_keras loads from a file traces its train step
    once at its first call (its optimizer's variables exist by then; a model compiled in the same process
    traces twice, the first trace making them), and once more at the first batch of another size (one
    relaxed trace for every other size): ``batch_size`` (the trainer sets it before each step) picks the
    trace.
    """

    tf_keras_steps = False
    batch_size: int | None = None
    #: traces before the first one a step runs: 0 for a model tf_keras loads from an .h5 file, 1 from a
    #: SavedModel directory (whose train step tf_keras traces twice, as a model compiled in code)
    first_traces = 0
    legacy_decays_rate = False  # (optimizer_v2's Nadam reads its decay as the schedule's, not the rate's)

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._u_product = None
        self._k = 0

    def build(self, variables: list[np.ndarray]) -> None:
        super().build(variables)
        self._u_product = (variables[0].dtype if variables else np.dtype(np.float32)).type(1.0)

    @property
    def legacy_lazy_rows(self) -> bool:
        return self.tf_legacy

    def _update_looked_up_rows(self, i, grad, var, lr):
        """optimizer_v2's sparse Nadam: m and v decay everywhere (the dense rule, zero elsewhere), the variable moves
        at the looked-up rows only."""
        rows, _ = grad.unique_rows()
        moved = var.copy()
        self._update(i, grad.dense().astype(var.dtype, copy=False), moved, lr, None)
        var[rows] = moved[rows]

    def apply(self, grads: list, variables: list[np.ndarray], names=None) -> None:
        if not self.built:
            self.build(variables)
        if self.tf_legacy:  # optimizer_v2's Nadam: its momentum cache advanced once per step, in _update_legacy
            self._legacy_step = None
            super().apply(grads, variables, names)
            return
        if self.tf_keras_steps:  # (advanced variable by variable: _update)
            sizes = self.__dict__.setdefault("_trace_sizes", [])
            if not sizes:
                sizes.append(self.batch_size)
            self._traced = (0 if self.batch_size == sizes[0] else 1) + self.first_traces  # (traces before this one)
            self._k, self._n_updated = 0, sum(g is not None for g in grads)
            super().apply(grads, variables, names)
            return
        if self.gradient_accumulation_steps and self._pending_calls + 1 < self.gradient_accumulation_steps:
            super().apply(grads, variables, names)  # (a call that only accumulates: Keras's update step does not run)
            return
        dt = type(self._u_product)
        power = np.power(dt(0.96), dt(self.iterations + 1))
        # (python floats times a tensor: converted to its dtype directly, not through float32)
        self._u_product = dt(self._u_product * dt(self.beta_1) * (dt(1.0) - dt(0.5) * power))
        super().apply(grads, variables, names)

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}

    def _update_legacy(self, i, g, var, lr, g_sq):
        """TensorFlow's optimizer_v2 Nadam (tf_keras.optimizers.legacy, TF <= 2.10): Dozat's schedule
        ``u_t = beta_1 (1 - 0.5 * 0.96^(decay * t))`` (``decay`` its 0.004 by default; unlike its other
        optimizers, it does not decay the rate), the product advanced once per step, ``g / (1 - u-product)``
        and ``m / (1 - next u-product)``."""
        dt = var.dtype.type
        s = self._slots[i]
        m, v = s["momentum"], s["velocity"]
        beta_1, beta_2 = dt(self.beta_1), dt(self.beta_2)
        if self._legacy_step is None:  # (once per step: _prepare_local's coefficients, the cache advanced)
            decay = dt(self.legacy_decay)
            local_step, next_step = dt(self.iterations + 1), dt(self.iterations + 2)
            cache_t = beta_1 * (dt(1) - dt(0.5) * np.power(dt(0.96), decay * local_step))
            cache_t_1 = beta_1 * (dt(1) - dt(0.5) * np.power(dt(0.96), decay * next_step))
            schedule_new = dt(self._u_product) * cache_t
            self._u_product = type(self._u_product)(schedule_new)
            self._legacy_step = (cache_t, cache_t_1, schedule_new, schedule_new * cache_t_1,
                                 dt(1) - np.power(beta_2, local_step))
        cache_t, cache_t_1, schedule_new, schedule_next, v_correction = self._legacy_step
        g_prime = g / (dt(1) - schedule_new)
        m[...] = beta_1 * m + (dt(1) - beta_1) * g
        v[...] = beta_2 * v + (dt(1) - beta_2) * _square(g, g_sq)
        m_bar = (dt(1) - cache_t) * g_prime + cache_t_1 * (m / (dt(1) - schedule_next))
        var -= lr * m_bar / (np.sqrt(v / v_correction) + dt(self.epsilon))

    def _update(self, i, g, var, lr, g_sq):
        if self.tf_legacy:
            return self._update_legacy(i, g, var, lr, g_sq)
        dt = var.dtype.type
        s = self._slots[i]
        m, v = s["momentum"], s["velocity"]
        local_step, next_step = dt(self.iterations + 1), dt(self.iterations + 2)
        beta_1, beta_2 = _kcast(self.beta_1, var.dtype), _kcast(self.beta_2, var.dtype)
        decay = _kcast(0.96, var.dtype)
        u_t = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, local_step))
        u_t_1 = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, next_step))
        if self.tf_keras_steps:
            if self._k != self.iterations + 1 - self._traced * self._n_updated:
                self._u_product = type(self._u_product)(self._u_product * u_t)
            self._k += 1
        u_product_t = dt(self._u_product)
        u_product_t_1 = u_product_t * u_t_1
        beta_2_power = np.power(beta_2, local_step)
        m += (g - m) * (dt(1) - beta_1)  # (Keras: 1 minus the cast beta, in the variable's dtype)
        v += (_square(g, g_sq) - v) * (dt(1) - beta_2)
        m_hat = (u_t_1 * m) / (dt(1) - u_product_t_1) + ((dt(1) - u_t) * g) / (dt(1) - u_product_t)
        v_hat = v / (dt(1) - beta_2_power)
        var -= (m_hat * lr) / (np.sqrt(v_hat) + dt(self.epsilon))

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Keras 3's Adamax: ``m += (g - m)(1 - beta_1)``, ``u = max(beta_2 u, |g|)``,
    ``var -= lr m / ((1 - beta_1^t)(u + epsilon))``."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _build_slots(self, var):
        return {"m": np.zeros_like(var), "u": np.zeros_like(var)}

    @property
    def legacy_lazy_rows(self) -> bool:  # (optimizer_v2's Adamax: m, u and the variable updated at the rows)
        return self.tf_legacy

    def _update(self, i, g, var, lr, g_sq, g_abs=None):
        dt = var.dtype.type
        s = self._slots[i]
        m, u = s["m"], s["u"]
        beta_1_power = np.power(_kcast(self.beta_1, var.dtype), dt(self.iterations + 1))
        m += (g - m) * dt(1 - self.beta_1)
        np.maximum(dt(self.beta_2) * u, np.abs(g) if g_abs is None else g_abs, out=u)
        var -= (lr * m) / ((dt(1) - beta_1_power) * (u + dt(self.epsilon)))

    def _update_rows(self, i, grad, var, lr):
        """An Embedding's slices: ``|g|`` is Keras's ``abs`` of the IndexedSlices, densified by the maximum: per
        row the sum of the slices' absolute values."""
        self._update(i, grad.dense(), var, lr, None, g_abs=grad.with_values(np.abs(grad.values)).dense())

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_CLASSES = {c.__name__.lower(): c for c in (Adam, SGD, RMSprop, Adagrad, AdamW, Nadam, Adamax, Adadelta, Lion, Ftrl,
                                              Lamb, Adafactor, Muon, ScheduleFreeAdamW)}


def _keep_weight_decay_exclusions(keras_optimizer, optimizer: Optimizer) -> None:
    """A Keras optimizer's ``exclude_from_weight_decay(var_names=...)`` (kept out of its config) on ``optimizer``;
    its ``var_list`` (variables of a Keras model) cannot apply to a fastgru model's arrays: refused, not dropped."""
    if getattr(keras_optimizer, "_exclude_from_weight_decay", None):
        raise ValueError("the Keras optimizer excludes variables of a Keras model from weight decay "
                         "(exclude_from_weight_decay(var_list=...)); give var_names=, or call the fastgru optimizer's "
                         "exclude_from_weight_decay with the fastgru model's arrays")
    patterns = getattr(keras_optimizer, "_exclude_from_weight_decay_pattern", None) or []
    patterns = [getattr(p, "pattern", p) for p in (patterns if isinstance(patterns, (list, tuple)) else [patterns])]
    if patterns:
        optimizer.exclude_from_weight_decay(var_names=patterns)


def get(identifier) -> Optimizer:
    """Return an Optimizer for a class name in any case (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
    ``"adamw"``, ``"nadam"``, ``"adamax"``, ``"adadelta"``, ``"lion"``, ``"ftrl"``, ``"lamb"``,
    ``"adafactor"``, ``"muon"``, ``"schedulefreeadamw"``), a Keras config dict
    ``{"class_name": "Adam", "config": {...}}`` (a mixed-precision ``LossScaleOptimizer``'s: its inner optimizer),
    Keras's own optimizer object or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    converted = keras_config(identifier)  # a Keras object: its config, as a .keras file stores it
    if converted is not None:
        optimizer = get(converted)
        _keep_weight_decay_exclusions(identifier, optimizer)
        return optimizer
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).startswith("LossScaleOptimizer"):
        # mixed precision's wrapper: fastgru trains in float32, where its loss scaling changes nothing
        inner = (identifier.get("config") or {}).get("inner_optimizer")
        if isinstance(inner, (dict, str)):
            optimizer = get(inner)
            optimizer.keras_state_prefix = 4  # (its own step, rate, step counter and scale precede the inner state)
            return optimizer
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).startswith("Custom>"):
        identifier = {**identifier, "class_name": identifier["class_name"][len("Custom>"):]}  # (tf_keras 2.11+'s name)
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _CLASSES:
        return _CLASSES[identifier["class_name"].lower()].from_config(identifier.get("config") or {})
    raise ValueError(
        f"could not interpret optimizer identifier {identifier!r}; supported: {', '.join(_CLASSES)}"
    )


#: Keras 3 optimizers fastgru does not implement: ``fg.optimizers.<name>`` says so by name
_NOT_IMPLEMENTED = ("MultiOptimizer", "LossScaleOptimizer")


def __getattr__(name: str):
    if name in _NOT_IMPLEMENTED:
        raise AttributeError(f"fastgru.optimizers has no {name}: Keras's {name} is not implemented in fastgru (it has "
                             f"{', '.join(sorted(c.__name__ for c in _CLASSES.values()))})")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serialize(optimizer) -> dict | str | None:
    """Keras's ``keras.optimizers.serialize``: the optimizer's config, as a ``.keras`` file holds it."""
    return keras_objects.serialize(optimizer, "optimizers")


def deserialize(config, custom_objects: dict | None = None):
    """Keras's ``keras.optimizers.deserialize``: the optimizer of a config (or name); ``custom_objects``: a script's
    own classes and functions, by name."""
    with registry.custom_layers(custom_objects):
        return get(config)
