"""The base of fastgru's metrics, :class:`Metric` (Keras's ``update_state``/``result``/``reset_state``), and the
running means most metrics are (:class:`Mean`, :class:`MeanMetricWrapper`), shared by
:mod:`fastgru.training.metrics` (which exports them and finds metrics by name), :mod:`fastgru.training.auc` and
:mod:`fastgru.training.more_metrics`."""

from __future__ import annotations

import functools
from contextlib import contextmanager

import numpy as np

from ..eager import EagerArray, eager
from ..layers.names import snake_case
from .loss_base import _same_rank

_NAME_UIDS: dict[str, int] = {}


def auto_name(default: str) -> str:
    """Keras's name for a metric made without one whose class has no fixed default (AUC, Precision, Recall):
    ``default``, then ``default_1``, ``default_2``... over the process, as Keras numbers them (each of its
    metrics made from a string in ``compile`` takes a number too, then the string as its name)."""
    uid = _NAME_UIDS.get(default, 0)
    _NAME_UIDS[default] = uid + 1
    return f"{default}_{uid}" if uid else default


@contextmanager
def numbering_kept():
    """Metrics made inside (to check a compile's metric names) take no number from :func:`auto_name`."""
    saved = dict(_NAME_UIDS)
    try:
        yield
    finally:
        _NAME_UIDS.clear()
        _NAME_UIDS.update(saved)


class MetricVariable(EagerArray):
    """A state variable of a Keras-style metric (``self.add_variable(shape=(), initializer="zeros")``): a NumPy
    array updated in place by Keras's ``assign``, ``assign_add`` and ``assign_sub``, with ``value`` and
    ``numpy()``."""

    def assign(self, value) -> MetricVariable:
        self[...] = np.asarray(value, dtype=self.dtype)
        return self

    def assign_add(self, value) -> MetricVariable:
        return self.assign(self.view(np.ndarray) + np.asarray(value, dtype=self.dtype))

    def assign_sub(self, value) -> MetricVariable:
        return self.assign(self.view(np.ndarray) - np.asarray(value, dtype=self.dtype))

    @property
    def value(self) -> EagerArray:
        return self.view(EagerArray)

    def __deepcopy__(self, memo=None) -> MetricVariable:  # (a copied metric keeps variables: compile copies them)
        return _variable(np.array(self.view(np.ndarray), copy=True), self.__dict__.get("name"))

    def __reduce__(self):
        return _variable, (np.array(self.view(np.ndarray), copy=True), self.__dict__.get("name"))


def _variable(value: np.ndarray, name: str | None) -> MetricVariable:
    variable = value.view(MetricVariable)
    variable.__dict__["name"] = name
    return variable


def _eager_result(result):
    """``result`` returning its value with Keras's ``.numpy()`` (``metric.result().numpy()``); an array is copied
    (a Keras-style metric's ``return self.total``: a log keeps the value of its time), one value made a float."""

    @functools.wraps(result)
    def wrapped(self):
        value = result(self)
        if isinstance(value, np.ndarray):  # (a copy: a state variable, or a view of one, changes at the next update)
            value = float(value) if value.ndim == 0 else np.array(value.view(np.ndarray))
        return eager(value)

    wrapped.eager = True
    return wrapped


class Metric:
    """Base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        result = cls.__dict__.get("result")
        if result is not None and not getattr(result, "eager", False):  # (each class's own result, wrapped once)
            cls.result = _eager_result(result)

    #: "up" when larger is better, "down" when smaller is better, None when unknown (as Keras)
    _direction: str | None = None

    def __init__(self, name: str | None = None, dtype=np.float32):
        own = not type(self).__module__.startswith("fastgru.")  # (a script's class: Keras's automatic name)
        self.name = name or (auto_name(snake_case(type(self).__name__)) if own else type(self).__name__)
        self.dtype = np.dtype(dtype)
        self._fg_variables: list = []
        if type(self).reset_state is not Metric.reset_state:  # (fastgru's metrics make their state there)
            try:
                self.reset_state()
            except AttributeError:  # (a Keras-style subclass: its add_variable state comes after this __init__)
                if type(self).__module__.startswith("fastgru."):
                    raise

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation: str = "sum",
                     name: str | None = None) -> MetricVariable:
        """Keras's: a state variable (:class:`MetricVariable`) of ``shape``, set to ``initializer``'s values, which
        the default :meth:`reset_state` sets it back to."""
        from .. import initializers

        dtype = np.dtype(dtype or self.dtype)
        initial = np.asarray(initializers.get(initializer)(tuple(shape), dtype, np.random.default_rng(0)), dtype)
        variable = _variable(np.array(initial), name)
        self.__dict__.setdefault("_fg_variables", []).append((variable, initial))
        return variable

    add_weight = add_variable  # (Keras 2's name)

    @property
    def variables(self) -> list[MetricVariable]:
        """The state variables :meth:`add_variable` made."""
        return [v for v, _ in self.__dict__.get("_fg_variables", [])]

    def reset_state(self) -> None:
        """Keras's default: every state variable back to its initial values."""
        for variable, initial in self.__dict__.get("_fg_variables", []):
            variable[...] = initial

    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError

    def result(self) -> float:
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """Keras's ``metric(y_true, y_pred)``: ``update_state`` with the arguments, then the ``result()``."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        """The metric of a ``get_config()`` dict (or of Keras's config of the same class)."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.6g}>"


def _mean_over(values: np.ndarray, axes) -> np.ndarray:
    return np.mean(values, axis=tuple(axes), dtype=values.dtype) if axes else values


def _reduce_to_samplewise(values, sample_weight, dtype):
    """Keras's ``reduce_to_samplewise_values`` with ``reduce_fn=mean``: (values (B,), weights or None)."""
    values = np.asarray(values).astype(dtype, copy=False)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=dtype)
        values, sw = _same_rank(values, sw)
        if values.ndim > sw.ndim:
            values = _mean_over(values, range(sw.ndim, values.ndim))
        sw = np.broadcast_to(sw, values.shape)
        values = values * sw
        if sw.ndim > 1:
            sw = _mean_over(sw, range(1, sw.ndim))
        sample_weight = sw
    if values.ndim > 1:
        values = _mean_over(values, range(1, values.ndim))
    return values, sample_weight


class Mean(Metric):
    """Weighted running mean of values: ``update_state(values, sample_weight=None)``.

    Values of shape ``(B, ...)`` count as ``B`` samples (each the mean over its other axes); a
    scalar counts as one, or as ``sample_weight`` (e.g. the batch size, as Keras's loss tracker).
    """

    def __init__(self, name: str = "mean", dtype=np.float32):
        super().__init__(name, dtype)

    def reset_state(self) -> None:
        self.total = self.dtype.type(0)
        self.count = self.dtype.type(0)

    def update_state(self, values, sample_weight=None) -> None:
        if np.ndim(values) == 0 and np.ndim(sample_weight) == 0:
            # a scalar (the loss tracker, once per step): the same float32 operations as below without
            # the array plumbing (~25 us of a small model's training step)
            dt = self.dtype.type
            value = dt(values)
            if sample_weight is None:
                n = dt(1)
            else:
                n = dt(sample_weight)
                value = dt(value * n)
            self.total = dt(self.total + value)
            self.count = dt(self.count + n)
            return
        values, sample_weight = _reduce_to_samplewise(values, sample_weight, self.dtype)
        self.total = self.dtype.type(self.total + np.sum(values, dtype=self.dtype))
        if sample_weight is not None:
            n = np.sum(sample_weight, dtype=self.dtype)
        elif values.ndim >= 1:
            n = values.shape[0]
        else:
            n = 1
        self.count = self.dtype.type(self.count + self.dtype.type(n))

    def result(self) -> float:
        return float(self.total / self.count) if self.count else 0.0


class MeanMetricWrapper(Mean):
    """Mean of a per-sample function ``fn(y_true, y_pred) -> values``.

    ``update_state(y_true, y_pred, sample_weight=None, mask=None)``; ``mask`` (the output's Keras
    mask, e.g. ``(B, T)``) zeroes the weight of masked positions as Keras does.
    """

    def __init__(self, fn, name: str | None = None, dtype=np.float32, **fn_kwargs):
        self._fn = fn
        self._fn_kwargs = fn_kwargs
        super().__init__(name or fn.__name__, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None, mask=None) -> None:
        self._update_values(self._fn(np.asarray(y_true), np.asarray(y_pred), **self._fn_kwargs), sample_weight, mask)

    def _update_values(self, values, sample_weight=None, mask=None) -> None:
        """Add per-sample ``values``, weighted by ``sample_weight`` times ``mask``."""
        if mask is not None:
            m = np.asarray(mask).astype(self.dtype)
            if sample_weight is not None:
                m, sw = _same_rank(m, np.asarray(sample_weight, dtype=self.dtype))
                sample_weight = sw * m
            else:
                sample_weight = m
        super().update_state(values, sample_weight)
