"""The optimizers' base class: Keras 3's ``apply``, updating NumPy arrays in place.

``apply(grads, variables)`` does what ``keras.optimizers.Optimizer.apply`` does, in this order:
skip ``None`` gradients; clip (``clipnorm`` per tensor, else ``global_clipnorm``, else
``clipvalue``); decoupled weight decay ``var -= var * weight_decay * lr``; the update step; then
``iterations += 1``. An Embedding's gradient arrives as a :class:`RowGradient` (its slices, as
TensorFlow's IndexedSlices), and the rules square slices as Keras does (see ``row_gradient``; a rule
whose Keras arithmetic keeps more of the slices apart overrides ``_update_rows``). Slots
(momenta, velocities...) are created on the first call and keyed by the variable's position. Arithmetic
runs in each variable's dtype; for float64 variables some hyperparameters go through float32 as in Keras
(its float32 rate; ``ops.cast`` of a Python float: SGD's momentum, Adam's betas in the bias
correction, weight decay, Adagrad's initial accumulator: ``_kcast``).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict

import numpy as np

from ..variables import Variable, array_of
from . import schedules
from .keras_slots import KerasVariables
from .optimizer_handles import LearningRate, StepCount, _RateHandle
from .optimizer_options import checked_options
from .optimizer_positions import variable_positions
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


#: the optimizer-config key io/keras2_training.py sets for a tf_keras legacy (optimizer_v2) optimizer
LEGACY_KEY = "fastgru_tf_legacy"


class Optimizer(KerasVariables):
    """Base class. Subclasses define ``_build_slots(var)`` and ``_update(i, grad, var, lr)``."""

    #: whether optimizer_v2's ``decay`` decays this optimizer's rate (its Nadam uses it for its schedule only)
    legacy_decays_rate = True
    #: arrays before this optimizer's own in a Keras file's optimizer state (4 for a LossScaleOptimizer's)
    keras_state_prefix = 0

    def __init__(self, learning_rate: float = 0.001, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None, **kwargs):
        #: TensorFlow's optimizer_v2 rules (a tf_keras file's legacy optimizer: io/keras2_training.py), and its
        #: time-inverse decay of the rate, ``lr / (1 + decay * iterations)``
        self.tf_legacy = bool(kwargs.pop(LEGACY_KEY, False))
        decay = kwargs.pop("decay", None)
        self.legacy_decay = float(decay or 0.0) if self.tf_legacy else 0.0
        if decay is not None and not self.tf_legacy:  # (Keras 3's warning: tf_keras's decay is not applied)
            warnings.warn("Argument `decay` is no longer supported and will be ignored (as in Keras 3; tf_keras's "
                          "decay of the rate is fg.optimizers.schedules.InverseTimeDecay)", stacklevel=3)
        self._averaging_options(kwargs.pop("use_ema", False), kwargs.pop("ema_momentum", 0.99),
                                kwargs.pop("ema_overwrite_frequency", None), kwargs.pop("loss_scale_factor", None),
                                kwargs.pop("gradient_accumulation_steps", None))
        for key in ("jit_compile", "is_legacy_optimizer"):
            kwargs.pop(key, None)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
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

    #: set for an optimizer compiled from a tf_keras file: tf_keras's moving averages (io/compile_restore.py)
    keras2_ema = False

    def _averaging_options(self, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
                           gradient_accumulation_steps) -> None:
        """Keras's ``use_ema`` (a moving average of each variable, written into the model every
        ``ema_overwrite_frequency`` steps and at the end of ``fit``), ``gradient_accumulation_steps`` (the
        variables updated every n-th call, from the mean of the n gradients) and ``loss_scale_factor`` (the loss
        scaled up and the gradients down again: the same gradients here, computed unscaled)."""
        if not isinstance(use_ema, (bool, np.bool_)):
            raise ValueError(f"`use_ema` must be a boolean, received {use_ema!r}")
        if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float)) or \
                not 0 <= ema_momentum <= 1:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1], received {ema_momentum!r}")
        for key, value, low in (("ema_overwrite_frequency", ema_overwrite_frequency, 1),
                                ("gradient_accumulation_steps", gradient_accumulation_steps, 2)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < low):
                raise ValueError(f"`{key}` must be None or an integer >= {low}, received {value!r}")
        if loss_scale_factor is not None and (isinstance(loss_scale_factor, bool) or not isinstance(
                loss_scale_factor, (int, float)) or not np.isfinite(loss_scale_factor) or loss_scale_factor <= 0):
            raise ValueError(f"`loss_scale_factor` must be None or a positive number, received {loss_scale_factor!r}")
        self.use_ema, self.ema_momentum = bool(use_ema), float(ema_momentum)
        self.ema_overwrite_frequency = None if ema_overwrite_frequency is None else int(ema_overwrite_frequency)
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = (None if gradient_accumulation_steps is None
                                            else int(gradient_accumulation_steps))
        self._averages: list[np.ndarray] = []  # (use_ema: one per variable)
        self._accumulators: list[np.ndarray] = []  # (gradient_accumulation_steps: one per variable)
        self._pending_calls = 0  # (calls accumulated since the last update)

    @property
    def raw_iterations(self) -> int:
        """The calls to :meth:`apply` so far, as Keras's ``iteration`` variable counts them (``iterations``, the
        updates made, times ``gradient_accumulation_steps``, plus the calls accumulated since)."""
        return self.iterations * (self.gradient_accumulation_steps or 1) + self._pending_calls

    @raw_iterations.setter
    def raw_iterations(self, value: int) -> None:
        self.iterations, self._pending_calls = divmod(int(value), self.gradient_accumulation_steps or 1)

    def finalize_variable_values(self, variables: list[np.ndarray]) -> None:
        """The end of ``fit``: with ``use_ema``, the moving averages written into the variables (as Keras)."""
        if self.use_ema and self._averages:
            for v, average in zip(variables, self._averages):
                v[...] = average

    # -- learning rate (stored as float32, like Keras's learning-rate variable; or a schedule of the step) ----
    @property
    def iterations(self) -> StepCount:
        """The updates made so far (an int with Keras's ``.numpy()`` and ``.assign()``)."""
        return StepCount(self._iterations, self)

    @iterations.setter
    def iterations(self, value) -> None:
        self._iterations = int(value)

    @property
    def learning_rate(self) -> LearningRate:
        """The rate of the next update (a float with Keras's ``.numpy()`` and ``.assign()``)."""
        return LearningRate(float(self._learning_rate), self)

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if schedules.is_schedule(value) or callable(value):  # (a function of no arguments: called at each step)
            self._schedule = schedules.get(value) if schedules.is_schedule(value) else schedules.FunctionRate(value)
            return
        if getattr(self, "_schedule", None) is not None:
            raise TypeError("This optimizer was created with a LearningRateSchedule object (or a function) as its "
                            "`learning_rate` constructor argument, hence its learning rate is not settable to a "
                            "number.")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ValueError(f"Argument `learning_rate` should be a float. Received: learning_rate={value!r}")
        if not np.isfinite(value):  # (every weight would turn NaN at the next step)
            raise ValueError(f"Argument `learning_rate` should be a finite number. Received: learning_rate={value!r}")
        self._fixed_rate = np.float32(value)

    @property
    def lr(self) -> _RateHandle:
        """The rate as tf_keras's callbacks reach it (``backend.get_value/set_value(optimizer.lr)``: its
        ReduceLROnPlateau and LearningRateScheduler), a handle that reads and sets ``learning_rate``."""
        handle = np.asarray(np.float32(self.learning_rate)).view(_RateHandle)
        handle._optimizer = self
        return handle

    @property
    def _learning_rate(self) -> np.float32:
        """The rate of the next update: the schedule at the step count (the calls to :meth:`apply`, with gradient
        accumulation: Keras's schedules read its "real" iterations), or the fixed rate."""
        schedule = getattr(self, "_schedule", None)
        rate = np.float32(schedule(self.raw_iterations)) if schedule is not None else self._fixed_rate
        if self.legacy_decay and self.legacy_decays_rate:  # (optimizer_v2's _decayed_lr, in float32)
            rate = rate / (np.float32(1) + np.float32(self.legacy_decay) * np.float32(self.iterations))
        return rate

    # -- public API ---------------------------------------------------------------------------
    def build(self, variables: list[np.ndarray]) -> None:
        """Create the slots for ``variables`` (called by the first :meth:`apply`)."""
        variables = [array_of(v) for v in variables]  # (a model's variables: their layers' arrays)
        # (tf_keras's averages start as copies of the variables; Keras 3's take the variables at the first step)
        self._averages = ([np.array(v, copy=True) if self.keras2_ema else np.zeros_like(v) for v in variables]
                          if self.use_ema else [])
        self._accumulators = [np.zeros_like(v) for v in variables] if self.gradient_accumulation_steps else []
        self._slots = [self._build_slots(v) for v in variables]
        self._built_for = [(id(v), np.shape(v)) for v in variables]  # (see _positions)
        self.built = True

    def _positions(self, variables: list[np.ndarray]) -> list[int]:
        """Each variable's place among those it was built for (``optimizer_positions``)."""
        return variable_positions(self, variables)

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Keras's: no weight decay for the arrays in ``var_list`` nor for the variables whose name (Keras's
        ``variable.name``: ``kernel``, ``recurrent_kernel``, ``bias``, ``gamma``, ...) one of the patterns in
        ``var_names`` matches (``re.search``). Before the optimizer's first step."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the optimizer is built.")
        self._no_decay_ids = {id(array_of(v)) for v in var_list or []}
        self._no_decay_pattern = re.compile("|".join(sorted(set(map(str, var_names))))) if var_names else None

    def _decays(self, variables: list, names) -> list[bool]:
        """Per variable, whether weight decay applies (:meth:`exclude_from_weight_decay`)."""
        ids, pattern = getattr(self, "_no_decay_ids", ()), getattr(self, "_no_decay_pattern", None)
        if pattern is not None and names is None:
            raise ValueError("exclude_from_weight_decay(var_names=...) needs the variables' names: train with fit "
                             "or pass names= to apply")
        return [id(v) not in ids and (pattern is None or pattern.search(str(n)) is None)
                for v, n in zip(variables, names or [None] * len(variables))]

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras's ``apply_gradients(zip(grads, variables))``: :meth:`apply` on the pairs."""
        pairs = list(grads_and_vars)
        self.apply([_dense(g, v) for g, v in pairs], [v for _, v in pairs])

    def apply(self, grads: list, variables: list[np.ndarray], names=None) -> None:
        """One step: update each array in ``variables`` in place from the matching gradient (``names``: the
        variables' Keras names, for :meth:`exclude_from_weight_decay`'s patterns; a model's variables carry theirs)."""
        if names is None and variables and all(isinstance(v, Variable) for v in variables):
            names = [v.name for v in variables]
        variables = [array_of(v) for v in variables]  # (the layers' arrays themselves: no views in the kernels)
        if len(grads) != len(variables):
            raise ValueError(f"got {len(grads)} gradients for {len(variables)} variables")
        if not self.built:
            self.build(variables)
        positions = self._positions(variables)
        if len(self.__dict__.get("_decay_flags", ())) != len(self._slots):  # (once: built here or by loading)
            flags = self._decays(variables, names)
            self._decay_flags = [True] * len(self._slots)
            for k, flag in zip(positions, flags):
                self._decay_flags[k] = flag
        for v in variables:
            if not isinstance(v, np.ndarray) or not v.flags.writeable:
                raise TypeError("variables must be writeable numpy arrays (they are updated in place)")
        pairs = [(i, g if isinstance(g, RowGradient) else np.asarray(g), v)
                 for i, g, v in zip(positions, grads, variables) if g is not None]
        updating = True
        if self.gradient_accumulation_steps and pairs:  # (Keras: every n-th call, the mean of the n gradients)
            n = self.gradient_accumulation_steps
            updating = self._pending_calls + 1 == n
            for i, g, v in pairs:
                if g.shape != v.shape:
                    raise ValueError(f"gradient {i} has shape {g.shape}; its variable has {v.shape}")
            dense = [(i, (g.dense() if isinstance(g, RowGradient) else g).astype(v.dtype, copy=False), v)
                     for i, g, v in pairs]
            if updating:
                pairs = [(i, (g + self._accumulators[i]) / g.dtype.type(n), v) for i, g, v in dense]
                for a in self._accumulators:
                    a[...] = 0
            else:
                for i, g, _ in dense:
                    self._accumulators[i] += g
        if pairs and updating:
            rate = self._learning_rate  # (a schedule: evaluated once per step)
            for (i, _, v), g_clipped in zip(pairs, self._clip([g for _, g, _ in pairs])):
                if g_clipped.shape != v.shape:
                    raise ValueError(f"gradient {i} has shape {g_clipped.shape}; its variable has {v.shape}")
                lr = v.dtype.type(rate)
                decay = self._weight_decay_of(i, v)
                if decay is not None and self._decay_flags[i]:
                    v -= v * _kcast(decay, v.dtype) * lr
                if isinstance(g_clipped, RowGradient) and g_clipped.sum_first and self.legacy_lazy_rows:
                    self._update_looked_up_rows(i, g_clipped, v, lr)
                    continue
                if isinstance(g_clipped, RowGradient) and g_clipped.sum_first:
                    g_clipped = g_clipped.dense()  # (tf_keras: duplicate rows summed after clipping)
                g_clipped = g_clipped.astype(v.dtype, copy=False)
                if isinstance(g_clipped, RowGradient):
                    self._update_rows(i, g_clipped, v, lr)
                else:
                    self._update(i, g_clipped, v, lr, None)
        if self.use_ema:
            self._update_averages(variables)
        self.raw_iterations += 1
        self._stepped_with = positions

    #: whether a tf_keras legacy (optimizer_v2) optimizer updates an Embedding lazily: its sparse rule touches only
    #: the rows a batch looked up (their slots too), where its dense rule would move every row (momentum, moments)
    legacy_lazy_rows = False

    def _update_looked_up_rows(self, i: int, grad: RowGradient, var: np.ndarray, lr) -> None:
        """optimizer_v2's sparse update: the duplicate slices summed, then the dense rule on those rows alone."""
        rows, values = grad.unique_rows()
        slots = self._slots[i]
        picked = {name: a[rows] for name, a in slots.items()}
        part = var[rows]
        self._slots[i] = picked
        try:
            self._update(i, values.astype(var.dtype, copy=False), part, lr, None)
        finally:
            self._slots[i] = slots
        for name, a in picked.items():
            slots[name][rows] = a
        var[rows] = part

    def _update_averages(self, variables: list[np.ndarray]) -> None:
        """Keras's moving average after each call (the variable itself at the first; tf_keras's from the start
        values, ``keras2_ema``), written into the variables every ``ema_overwrite_frequency`` steps."""
        for v, average in zip(variables, self._averages):
            momentum = v.dtype.type(self.ema_momentum if self.iterations != 0 or self.keras2_ema else 0.0)
            average[...] = momentum * average + (v.dtype.type(1) - momentum) * v
        if self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0:
            for v, average in zip(variables, self._averages):
                v[...] = average

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
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        return cls(**checked_options(cls, dict(config)))  # (a schedule's config as learning_rate: the setter reads it)

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

    def _weight_decay_of(self, i: int, var: np.ndarray) -> float | None:
        """The weight decay of variable ``i`` (Muon's differs between its two rules)."""
        return self.weight_decay

    def bind_model(self, model) -> None:
        """Called with the model before its variables are updated or their state is read or written (Muon picks
        its rule per variable from the variables' Keras paths); nothing by default."""

    def _build_slots(self, var: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _update(self, i: int, grad: np.ndarray, var: np.ndarray, lr, grad_sq) -> None:  # pragma: no cover
        """One variable's step: ``grad`` dense; ``grad_sq`` its square as Keras computes it (the
        summed squared slices of a RowGradient), or None for ``grad ** 2``."""
        raise NotImplementedError

    def _update_rows(self, i: int, grad: RowGradient, var: np.ndarray, lr) -> None:
        """One variable's step from an Embedding's row gradient: the dense rule on the summed slices,
        with the squared slices summed per row (Keras's IndexedSlices arithmetic in Adam, RMSprop...)."""
        self._update(i, grad.dense(), var, lr, grad.squares())


def _dense(grad, var):
    """TensorFlow's ``IndexedSlices`` (an Embedding's ``tape.gradient``) as fastgru's row gradient, which the update
    rules treat as Keras's treat the slices (duplicate rows included); anything else as it is."""
    if all(hasattr(grad, a) for a in ("indices", "values", "dense_shape")):
        return RowGradient(np.asarray(grad.indices), np.asarray(grad.values), np.shape(var))
    return grad


def _sum_squares(g):
    return g.sum_squares() if isinstance(g, RowGradient) else np.sum(np.square(g), dtype=g.dtype)


def _map_values(g, fn):
    """``fn`` applied to a dense gradient, or to the slices of a RowGradient."""
    return g.with_values(fn(g.values)) if isinstance(g, RowGradient) else fn(g)


def _square(g, g_sq):
    return np.square(g) if g_sq is None else g_sq


def _clip_by_global_norm(grads: list, clip_norm: float) -> list:
    dtype = np.result_type(*[g.dtype for g in grads])
    sq = np.array([_sum_squares(g) for g in grads], dtype=dtype)
    use_norm = np.sqrt(np.sum(sq, dtype=dtype))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = dtype.type(clip_norm) * np.minimum(dtype.type(1) / use_norm, dtype.type(1.0 / clip_norm))
        scale = scale + (use_norm - use_norm)  # NaN for a non-finite norm, as Keras
    # (TensorFlow multiplies an Embedding's IndexedSlices by the scale as a dense tensor, the slices summed: the
    # update rule then sees a dense gradient, squared as a whole)
    return [(g.dense() if isinstance(g, RowGradient) else g) * g.dtype.type(scale) for g in grads]
