"""Optimizers with Keras 3's exact update rules, updating NumPy arrays in place.

``apply(grads, variables)`` does what ``keras.optimizers.Optimizer.apply`` does, in this order:
skip ``None`` gradients; clip (``clipnorm`` per tensor, else ``global_clipnorm``, else
``clipvalue``); decoupled weight decay ``var -= var * weight_decay * lr``; the update step; then
``iterations += 1``. An Embedding's gradient arrives as a :class:`RowGradient` (its slices, as
TensorFlow's IndexedSlices), and the rules square slices as Keras does (see ``row_gradient``). Slots
(momenta, velocities...) are created on the first call and keyed by the variable's position. Arithmetic
runs in each variable's dtype. For float64 variables Keras rounds some hyperparameters through float32
(the learning rate is a float32 variable, and ``ops.cast`` of a Python float makes a float32 tensor
first: SGD's momentum, Adam's betas inside the bias
correction, weight decay, Adagrad's initial accumulator) while others mix in at full precision;
this module does the same (see ``_kcast``).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from .._kernels.optim import adam_update
from . import schedules
from .keras_objects import keras_config
from .row_gradient import RowGradient

_NAME_UIDS: defaultdict = defaultdict(int)


def _kcast(value: float, dtype: np.dtype):
    """``keras.ops.cast(python_float, dtype)``: the value goes through float32 first."""
    return np.dtype(dtype).type(np.float32(value))


def _auto_name(cls_name: str) -> str:
    """Keras's ``auto_name``: snake_case class name, uniquified with ``_1``, ``_2``..."""
    name = re.sub(r"\W+", "", cls_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    uid = _NAME_UIDS[name]
    _NAME_UIDS[name] += 1
    return f"{name}_{uid}" if uid else name


class Optimizer:
    """Base class. Subclasses define ``_build_slots(var)`` and ``_update(i, grad, var, lr)``."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, **kwargs):
        unsupported = {k: v for k, v in kwargs.items() if k in ("use_ema", "loss_scale_factor",
                                                                 "gradient_accumulation_steps") and v}
        for key in ("use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                    "gradient_accumulation_steps", "decay", "jit_compile", "is_legacy_optimizer"):
            kwargs.pop(key, None)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if unsupported:
            raise ValueError(f"unsupported optimizer option(s): {unsupported}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}"
            )
        self.name = name or _auto_name(type(self).__name__)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self.built = False
        self._slots: list[dict[str, np.ndarray]] = []

    # -- learning rate (stored as float32, like Keras's learning-rate variable; or a schedule of the step) ----
    @property
    def learning_rate(self) -> float:
        return float(self._learning_rate)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if getattr(self, "_schedule", None) is not None:
            raise TypeError("This optimizer was created with a LearningRateSchedule object as its `learning_rate` "
                            "constructor argument, hence its learning rate is not settable.")
        if schedules.is_schedule(value):
            self._schedule = schedules.get(value)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ValueError(f"Argument `learning_rate` should be a float. Received: learning_rate={value!r}")
        self._fixed_rate = np.float32(value)

    @property
    def _learning_rate(self) -> np.float32:
        """The rate of the next update: the schedule at the step count, or the fixed rate."""
        schedule = getattr(self, "_schedule", None)
        return np.float32(schedule(self.iterations)) if schedule is not None else self._fixed_rate

    # -- public API ---------------------------------------------------------------------------
    def build(self, variables: list[np.ndarray]) -> None:
        """Create the slots for ``variables`` (called by the first :meth:`apply`)."""
        self._slots = [self._build_slots(v) for v in variables]
        self.built = True

    def apply(self, grads: list, variables: list[np.ndarray]) -> None:
        """One step: update each array in ``variables`` in place from the matching gradient."""
        if len(grads) != len(variables):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if not self.built:
            self.build(variables)
        elif len(variables) != len(self._slots):
            raise ValueError(
                f"this optimizer was built for {len(self._slots)} variables; received {len(variables)}"
            )
        for v in variables:
            if not isinstance(v, np.ndarray) or not v.flags.writeable:
                raise TypeError("variables must be writeable numpy arrays (they are updated in place)")
        pairs = [(i, g if isinstance(g, RowGradient) else np.asarray(g), v)
                 for i, (g, v) in enumerate(zip(grads, variables)) if g is not None]
        if pairs:
            rate = self._learning_rate  # (a schedule: evaluated once per step)
            for (i, _, v), g_clipped in zip(pairs, self._clip([g for _, g, _ in pairs])):
                if g_clipped.shape != v.shape:
                    raise ValueError(f"gradient {i} has shape {g_clipped.shape}; its variable has {v.shape}")
                lr = v.dtype.type(rate)
                if self.weight_decay is not None:
                    v -= v * _kcast(self.weight_decay, v.dtype) * lr
                g_clipped = g_clipped.astype(v.dtype, copy=False)
                if isinstance(g_clipped, RowGradient):
                    self._update(i, g_clipped.dense(), v, lr, g_clipped.squares())
                else:
                    self._update(i, g_clipped, v, lr, None)
        self.iterations += 1

    @property
    def slots(self) -> list[dict[str, np.ndarray]]:
        """Per variable (by position), its state arrays by Keras's names ("momentum", "velocity"...)."""
        return self._slots

    def get_config(self) -> dict:
        """Keras 3's config dict for this optimizer."""
        return {
            "name": self.name,
            "learning_rate": (schedules.serialize(self._schedule) if getattr(self, "_schedule", None) is not None
                              else float(self._learning_rate)),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**dict(config))  # (a schedule's config dict as learning_rate: the setter reads it)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate:.6g}>"

    # -- internals ----------------------------------------------------------------------------
    def _clip(self, grads: list) -> list:
        if self.clipnorm and self.clipnorm > 0:
            return [self._clip_by_norm(g) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return _clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            c = self.clipvalue
            return [_map_values(g, lambda a: np.clip(a, a.dtype.type(-c), a.dtype.type(c))) for g in grads]
        return grads

    def _clip_by_norm(self, g):
        dt = g.dtype.type
        l2norm = np.sqrt(_sum_squares(g))
        clip = dt(self.clipnorm)
        return _map_values(g, lambda a: (a * clip) / np.maximum(l2norm, clip))

    def _build_slots(self, var: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _update(self, i: int, grad: np.ndarray, var: np.ndarray, lr, grad_sq) -> None:  # pragma: no cover
        """One variable's step: ``grad`` dense; ``grad_sq`` its square as Keras computes it (the
        summed squared slices of a RowGradient), or None for ``grad ** 2``."""
        raise NotImplementedError


def _sum_squares(g):
    return g.sum_squares() if isinstance(g, RowGradient) else np.sum(np.square(g), dtype=g.dtype)


def _map_values(g, fn):
    """``fn`` applied to a dense gradient, or to the slices of a RowGradient."""
    return g.with_values(fn(g.values)) if isinstance(g, RowGradient) else fn(g)


def _flat_kernel_operands(*arrays) -> bool:
    """Whether the arrays can go to a compiled update as flat views: one float dtype, one shape,
    C-contiguous (a reshape to (n,) is then a view, so the update lands in the variable)."""
    first = arrays[0]
    return (first.dtype in (np.float32, np.float64)
            and all(a.dtype == first.dtype and a.shape == first.shape and a.flags.c_contiguous for a in arrays))


def _square(g, g_sq):
    return np.square(g) if g_sq is None else g_sq


def _clip_by_global_norm(grads: list, clip_norm: float) -> list:
    dtype = np.result_type(*[g.dtype for g in grads])
    sq = np.array([_sum_squares(g) for g in grads], dtype=dtype)
    use_norm = np.sqrt(np.sum(sq, dtype=dtype))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = dtype.type(clip_norm) * np.minimum(dtype.type(1) / use_norm, dtype.type(1.0 / clip_norm))
        scale = scale + (use_norm - use_norm)  # NaN for a non-finite norm, as Keras
    return [_map_values(g, lambda a: a * a.dtype.type(scale)) for g in grads]


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

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        s = self._slots[i]
        rho = dt(self.rho)
        vel = s["velocity"]
        vel[...] = rho * vel + dt(1 - self.rho) * _square(g, g_sq)
        if self.centered:
            ag = s["average_gradient"]
            ag[...] = rho * ag + dt(1 - self.rho) * g
            denominator = vel - np.square(ag) + dt(self.epsilon)
        else:
            denominator = vel + dt(self.epsilon)
        increment = (lr * g) / np.sqrt(denominator)
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
    is advanced once per step before the variables are updated."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._u_product = None

    def build(self, variables: list[np.ndarray]) -> None:
        super().build(variables)
        self._u_product = (variables[0].dtype if variables else np.dtype(np.float32)).type(1.0)

    def apply(self, grads: list, variables: list[np.ndarray]) -> None:
        if not self.built:
            self.build(variables)
        dt = type(self._u_product)
        power = np.power(dt(0.96), dt(self.iterations + 1))
        # (python floats times a tensor: converted to its dtype directly, not through float32)
        self._u_product = dt(self._u_product * dt(self.beta_1) * (dt(1.0) - dt(0.5) * power))
        super().apply(grads, variables)

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        s = self._slots[i]
        m, v = s["momentum"], s["velocity"]
        local_step, next_step = dt(self.iterations + 1), dt(self.iterations + 2)
        beta_1, beta_2 = _kcast(self.beta_1, var.dtype), _kcast(self.beta_2, var.dtype)
        decay = _kcast(0.96, var.dtype)
        u_t = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, local_step))
        u_t_1 = beta_1 * (dt(1.0) - dt(0.5) * np.power(decay, next_step))
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

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        s = self._slots[i]
        m, u = s["m"], s["u"]
        beta_1_power = np.power(_kcast(self.beta_1, var.dtype), dt(self.iterations + 1))
        m += (g - m) * dt(1 - self.beta_1)
        np.maximum(dt(self.beta_2) * u, np.abs(g), out=u)
        var -= (lr * m) / ((dt(1) - beta_1_power) * (u + dt(self.epsilon)))

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_CLASSES = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, "adagrad": Adagrad, "adamw": AdamW, "nadam": Nadam,
            "adamax": Adamax}


def get(identifier) -> Optimizer:
    """Return an Optimizer for ``"adam"``/``"sgd"``/``"rmsprop"``/``"adagrad"``/``"adamw"``/``"nadam"``/``"adamax"``
    (any case), a Keras
    config dict ``{"class_name": "Adam", "config": {...}}`` or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    converted = keras_config(identifier)  # a Keras object: its config, as a .keras file stores it
    if converted is not None:
        return get(converted)
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _CLASSES:
        return _CLASSES[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _CLASSES:
        return _CLASSES[identifier["class_name"].lower()].from_config(identifier.get("config") or {})
    raise ValueError(
        f"could not interpret optimizer identifier {identifier!r}; supported: {', '.join(_CLASSES)}"
    )
