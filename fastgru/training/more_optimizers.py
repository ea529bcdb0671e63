"""Keras 3's Adadelta, Lion, Ftrl, Lamb, Adafactor and ScheduleFreeAdamW with its exact update rules: Keras's casts
(hyperparameters in the variable's dtype, Lion's betas through float32 first), its order of operations and, for an
Embedding's row gradient, its IndexedSlices arithmetic (which slices are scaled or squared before they are summed).
Clipping, weight decay and learning-rate schedules come from the shared base class."""

from __future__ import annotations

import numpy as np

from .optimizer_base import Optimizer, _kcast, _square
from .row_gradient import RowGradient


class Adadelta(Optimizer):
    """Keras 3's Adadelta: ``acc_g = rho acc_g + (1 - rho) g^2``;
    ``delta = -sqrt(acc_d + epsilon) g / sqrt(acc_g + epsilon)``; ``acc_d = rho acc_d + (1 - rho) delta^2``;
    ``var += lr delta`` (``learning_rate=1.0`` is the paper's form)."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _build_slots(self, var):
        return {"accumulated_grad": np.zeros_like(var), "accumulated_delta_var": np.zeros_like(var)}

    @property
    def legacy_lazy_rows(self) -> bool:  # (optimizer_v2's ResourceSparseApplyAdadelta)
        return self.tf_legacy

    def _scalars(self, dtype: np.dtype) -> tuple:
        """``(rho, 1 - rho, epsilon)``: Python floats, so converted to ``dtype`` directly (no float32 first)."""
        dt = dtype.type
        return dt(self.rho), dt(1 - self.rho), dt(self.epsilon)

    def _update(self, i, g, var, lr, g_sq):
        rho, one_minus_rho, epsilon = self._scalars(var.dtype)
        s = self._slots[i]
        acc_grad, acc_delta = s["accumulated_grad"], s["accumulated_delta_var"]
        acc_grad[...] = rho * acc_grad + one_minus_rho * _square(g, g_sq)
        delta = -((np.sqrt(acc_delta + epsilon) * g) / np.sqrt(acc_grad + epsilon))
        acc_delta[...] = rho * acc_delta + one_minus_rho * np.square(delta)
        var += lr * delta

    def _update_rows(self, i, grad: RowGradient, var, lr):
        """Keras keeps the slices apart throughout: ``(1 - rho) g^2`` and ``delta`` per slice, ``delta^2`` per
        slice into ``acc_d``, and ``lr delta`` added slice by slice into the variable."""
        rho, one_minus_rho, epsilon = self._scalars(var.dtype)
        s = self._slots[i]
        acc_grad, acc_delta = s["accumulated_grad"], s["accumulated_delta_var"]
        acc_grad[...] = rho * acc_grad + grad.with_values(one_minus_rho * np.square(grad.values)).dense()
        product = np.sqrt(acc_delta + epsilon)[grad.indices] * grad.values.reshape(grad.indices.shape + var.shape[1:])
        rms_grad = np.sqrt(acc_grad + epsilon)
        # rows where the divisor has a zero or a NaN join the slices, with zero products (Keras's sparse division;
        # its union of indices then also sums the positions of repeated rows, which is not reproduced)
        zero_or_nan = ((rms_grad == 0) | np.isnan(rms_grad)).reshape(len(rms_grad), -1).any(axis=1)
        zero_or_nan[grad.indices] = False
        extra = np.flatnonzero(zero_or_nan)
        rows = np.concatenate([grad.indices, extra])
        product = np.concatenate([product, np.zeros((len(extra),) + var.shape[1:], var.dtype)])
        delta = -(product / rms_grad[rows])
        acc_delta[...] = rho * acc_delta + RowGradient(rows, one_minus_rho * np.square(delta), var.shape).dense()
        np.add.at(var, rows, lr * delta)  # (TensorFlow's scatter_add: slice by slice)

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Lion(Optimizer):
    """Keras 3's Lion: ``var -= lr sign(beta_1 m + (1 - beta_1) g)``; ``m = beta_2 m + (1 - beta_2) g``."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                             f"to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var)}

    def _update(self, i, g, var, lr, g_sq):
        self._step(i, var, lr, lambda scale: g * scale)

    def _update_rows(self, i, grad: RowGradient, var, lr):
        """Keras scales each slice by ``1 - beta`` before summing them into the dense momentum."""
        self._step(i, var, lr, lambda scale: grad.with_values(grad.values * scale).dense())

    def _step(self, i, var, lr, scaled_gradient) -> None:
        """The update, given ``scaled_gradient(c)``: the gradient times ``c`` as Keras computes it."""
        one = var.dtype.type(1.0)
        beta_1, beta_2 = _kcast(self.beta_1, var.dtype), _kcast(self.beta_2, var.dtype)
        m = self._slots[i]["momentum"]
        var -= lr * np.sign(m * beta_1 + scaled_gradient(one - beta_1))
        m[...] = m * beta_2 + scaled_gradient(one - beta_2)

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Keras 3's FTRL-Proximal: with ``p = -learning_rate_power``, ``n' = n + g^2``,
    ``z += g + 2 l2_shrinkage var - (n'^p - n^p) / lr * var``,
    ``var = (clip(z, -l1, l1) - z) / (n'^p / lr + 2 (l2 + beta / (2 lr)))``."""

    def __init__(self, learning_rate: float = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0, l2_shrinkage_regularization_strength: float = 0.0,
                 beta: float = 0.0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if initial_accumulator_value < 0.0:
            raise ValueError("`initial_accumulator_value` needs to be positive or zero. Received: "
                             f"initial_accumulator_value={initial_accumulator_value}.")
        if learning_rate_power > 0.0:
            raise ValueError("`learning_rate_power` needs to be negative or zero. Received: "
                             f"learning_rate_power={learning_rate_power}.")
        for name, value in (("l1_regularization_strength", l1_regularization_strength),
                            ("l2_regularization_strength", l2_regularization_strength),
                            ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength)):
            if value < 0.0:
                raise ValueError(f"`{name}` needs to be positive or zero. Received: {name}={value}.")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _build_slots(self, var):
        return {"accumulator": np.full_like(var, _kcast(self.initial_accumulator_value, var.dtype)),
                "linear": np.zeros_like(var)}

    @property
    def legacy_lazy_rows(self) -> bool:  # (optimizer_v2's ResourceSparseApplyFtrl)
        return self.tf_legacy

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        s = self._slots[i]
        accum, linear = s["accumulator"], s["linear"]
        power = dt(-self.learning_rate_power)
        with np.errstate(divide="ignore", invalid="ignore"):  # (a zero rate: inf and NaN, as in Keras)
            l2_reg = dt(self.l2_regularization_strength) + dt(self.beta) / (dt(2.0) * lr)
            grad_to_use = g + dt(2 * self.l2_shrinkage_regularization_strength) * var
            new_accum = accum + _square(g, g_sq)
            new_accum_power = np.power(new_accum, power)
            linear += grad_to_use - ((new_accum_power - np.power(accum, power)) / lr) * var
            quadratic = new_accum_power / lr + dt(2) * l2_reg
            l1 = self.l1_regularization_strength
            var[...] = (np.clip(linear, dt(-l1), dt(l1)) - linear) / quadratic
        accum[...] = new_accum

    def get_config(self) -> dict:
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}


class Lamb(Optimizer):
    """Keras 3's Lamb: Adam's moments and bias corrections, ``update = m_hat / (sqrt(v_hat) + epsilon)``,
    then ``var -= r lr update`` with the layer-wise trust ratio ``r = ||var|| / ||update||`` (1 where either
    norm is 0)."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        step = dt(self.iterations + 1)
        beta_1_power = np.power(_kcast(self.beta_1, var.dtype), step)
        beta_2_power = np.power(_kcast(self.beta_2, var.dtype), step)
        s = self._slots[i]
        m, v = s["momentum"], s["velocity"]
        m += (g - m) * dt(1 - self.beta_1)
        v += (_square(g, g_sq) - v) * dt(1 - self.beta_2)
        update = (m / (dt(1) - beta_1_power)) / (np.sqrt(v / (dt(1) - beta_2_power)) + dt(self.epsilon))
        w_norm = np.sqrt(np.sum(np.square(var), dtype=var.dtype))
        u_norm = np.sqrt(np.sum(np.square(update), dtype=var.dtype))
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else dt(1)
        var -= ratio * lr * update

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adafactor(Optimizer):
    """Keras 3's Adafactor: the second moment of a weight of two or more dimensions kept factored, as its
    row means ``r`` and column means ``c`` of ``g^2 + epsilon_1`` (``v = (r / mean(r)) c``), a vector's in
    full; ``beta_2 = 1 - t^beta_2_decay``; the update ``g / sqrt(v)`` divided by ``max(1, rms / clip_threshold)``
    and scaled by ``max(epsilon_2, rms(var)) min(lr, 1 / sqrt(t))``."""

    def __init__(self, learning_rate: float = 0.001, beta_2_decay: float = -0.8, epsilon_1: float = 1e-30,
                 epsilon_2: float = 1e-3, clip_threshold: float = 1.0, relative_step: bool = True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, bool(relative_step)

    def _build_slots(self, var):
        if var.ndim < 2:  # (Keras keeps a vector's r and c as scalars it never updates, and saves them)
            return {"r": np.zeros((), var.dtype), "c": np.zeros((), var.dtype), "velocity": np.zeros_like(var)}
        return {"r": np.zeros(var.shape[:-1], var.dtype), "c": np.zeros(var.shape[:-2] + var.shape[-1:], var.dtype),
                "velocity": np.zeros_like(var)}

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        step = dt(self.iterations + 1)
        rho = np.minimum(lr, dt(1) / np.sqrt(step))  # (relative_step's cap on the rate is this same minimum)
        alpha = np.maximum(dt(self.epsilon_2), _rms(var)) * rho
        g2 = _square(g, g_sq) + dt(self.epsilon_1)  # (an Embedding's: its squared slices summed per row, as Keras)
        beta_2 = dt(1) - np.power(step, dt(self.beta_2_decay))
        s = self._slots[i]
        if var.ndim >= 2:
            r, c = s["r"], s["c"]
            r[...] = beta_2 * r + (dt(1) - beta_2) * np.mean(g2, axis=-1, dtype=var.dtype)
            c[...] = beta_2 * c + (dt(1) - beta_2) * np.mean(g2, axis=-2, dtype=var.dtype)
            s["velocity"][...] = (r / np.mean(r, axis=-1, keepdims=True, dtype=var.dtype))[..., None] * c[..., None, :]
        else:
            v = s["velocity"]
            v[...] = beta_2 * v + (dt(1) - beta_2) * g2
        u = g / np.sqrt(s["velocity"])
        # (an Embedding's: Keras divides each slice and squares the quotients before it sums them per row)
        rms = _rms(u) if g_sq is None else np.sqrt(np.mean(g_sq / s["velocity"], dtype=var.dtype))
        u = u / np.maximum(dt(1), rms / dt(self.clip_threshold))
        var -= alpha * u

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}


def _rms(x: np.ndarray):
    return np.sqrt(np.mean(np.square(x), dtype=x.dtype))


class ScheduleFreeAdamW(Optimizer):
    """Keras 3's ScheduleFreeAdamW (Defazio et al., 2024): Adam's second moment, its step taken on a sequence
    ``z`` (the ``momentum`` slot) and the variable set to the interpolation ``y = (1 - beta_1) z + beta_1 x`` of
    ``z`` and the running average ``x`` of the ``z`` so far (``x`` recovered from the variable each step); the rate
    ramps up linearly over ``warmup_steps``. No schedule is needed (one may still be given).

    ``z`` starts at zero, as Keras's ``fit`` on TensorFlow leaves it: its ``build`` copies the variables into it,
    but run inside the traced train step that copy does not happen, so the first step sets every weight to
    ``-lr g / (|g| + epsilon)`` (about ``±lr``) whatever it was. (A Keras optimizer built outside ``fit`` does copy
    them: ``load_model`` of an untrained compiled file copies the layers' fresh random values, before the file's
    weights replace them, which no other run can reproduce.) And the ``x`` it recovers from the variable takes the
    ``z`` just updated, where the paper takes the one before (Keras's ``momentum.value`` is the variable itself,
    read after the update)."""

    def __init__(self, learning_rate: float = 0.0025, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, warmup_steps: int = 0, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be a non-negative integer, received {warmup_steps!r}")
        self.beta_1, self.beta_2, self.epsilon, self.warmup_steps = beta_1, beta_2, epsilon, int(warmup_steps)

    def _build_slots(self, var):
        return {"momentum": np.zeros_like(var), "velocity": np.zeros_like(var)}

    def _update(self, i, g, var, lr, g_sq):
        dt = var.dtype.type
        step = dt(self.iterations + 1)
        beta_1, beta_2, epsilon = (_kcast(v, var.dtype) for v in (self.beta_1, self.beta_2, self.epsilon))
        if self.warmup_steps > 0:
            lr = lr * np.minimum(step / dt(self.warmup_steps), dt(1.0))
        s = self._slots[i]
        z, v = s["momentum"], s["velocity"]
        correction = dt(1) - np.power(beta_2, step)
        v += (_square(g, g_sq) - v) * (dt(1) - beta_2)
        z -= (lr * g) / (np.sqrt(v / correction) + epsilon)
        weight = dt(1.0) / step
        # (Keras's "old" z is its variable itself, read after the step above: the new z)
        x_old = (var - (dt(1) - beta_1) * z) / beta_1
        x_new = (dt(1) - weight) * x_old + weight * z
        var[...] = (dt(1) - beta_1) * z + beta_1 * x_new

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "warmup_steps": self.warmup_steps}
