"""Losses a script computes itself: a Python function given to ``compile`` (``loss=my_loss``: Keras's
``LossFunctionWrapper``) or a ``Loss`` subclass with its own ``call(y_true, y_pred)``.

As Keras's ``Loss.__call__``, both operands are cast to the output's float dtype (integer labels too) — the
wrapper also brings them to one rank (``squeeze_or_expand_to_same_rank``), a subclass's call takes them as given —
and the call's values are weighted by the sample weights and the output's mask and reduced
(``sum_over_batch_size``: their mean; a value per sample, per step or a scalar the function already reduced).
fastgru has no gradient for Python code, so training traces the call — once per batch shape, on symbolic tensors —
into a small Functional graph of the ``fastgru.ops`` (and operators) it applies, which runs forward and
back on the whole batch (a reduction over the batch axis, ``ops.mean(x)``, and tensors of several ranks broadcast
against each other, ``x - ops.mean(x, axis=0)``, are allowed there: ``op_shapes.whole_batch``).
Its values outside training come from calling it on the arrays.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..layers import registry
from ..layers.names import names_kept
from ..layers.op_shapes import whole_batch
from ..tracing import generation
from .loss_base import Loss, _float_dtype, _same_rank, _sum_to_shape
from .loss_node import traced_prediction

#: traces kept per loss (one per batch shape and dtype)
_MAX_TRACES = 8


class LossFunctionWrapper(Loss):
    """Keras's ``LossFunctionWrapper``: the loss of ``fn(y_true, y_pred, **kwargs)`` (values per sample, per step,
    or one value), reduced as Keras reduces a loss's values (see the module docstring)."""

    def __init__(self, fn, reduction: str = "sum_over_batch_size", name: str | None = None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper takes a function, received {fn!r:.60}")
        super().__init__(name=name or "loss_function_wrapper", reduction=reduction)  # (Keras's default name)
        self.fn, self._fn_kwargs = fn, dict(kwargs)

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        """Keras's: the function as Keras serializes one (by its registered name, else its name) and its options."""
        fn = {"module": "builtins", "class_name": "function", "config": registry.function_name(self.fn),
              "registered_name": "function"}
        return {**super().get_config(), "fn": fn, **self._fn_kwargs}


def _values_of(loss, yt: np.ndarray, yp: np.ndarray, dtype) -> np.ndarray:
    values = np.asarray(loss.call(yt, yp))
    if values.dtype.kind not in "fiub":
        raise TypeError(f"loss {loss.name!r}: its call returned values of dtype {values.dtype}, not numbers")
    return values.astype(dtype, copy=False)


def _trace(loss, yt: np.ndarray, yp: np.ndarray, mask=None):
    """``loss.call`` traced on symbolic tensors like ``yt`` and ``yp`` (and the output's ``mask``, which a built-in
    loss called on ``y_pred`` reads, as Keras's reads the mask its tensor carries): a Functional model of them (kept
    per shapes and dtypes on the loss)."""
    traces = loss.__dict__.setdefault("_fg_loss_traces", {})
    if traces.get("generation") != generation():  # (compile traces anew: the loss's attributes read again)
        traces.clear()
        traces["generation"] = generation()
    key = (yt.shape, yt.dtype.str, yp.shape, yp.dtype.str, None if mask is None else np.shape(mask))
    if key in traces:
        return traces[key]
    Input, Model = registry.model_class("Input"), registry.model_class("Functional")  # (no import of functional)
    try:
        with names_kept(), whole_batch():  # (names: none of the user's layer numbering used up)
            t, p = Input(batch_shape=yt.shape, dtype=yt.dtype.name), Input(batch_shape=yp.shape, dtype=yp.dtype.name)
            m = None if mask is None else Input(batch_shape=np.shape(mask), dtype="bool")
            token = traced_prediction.set((p, m))  # (a built-in loss called in it: its targets must not come from p)
            try:
                out = loss.call(t, p)
            finally:
                traced_prediction.reset(token)
            if not getattr(out, "_fg_symbolic", False):
                raise UnsupportedKerasFeature("it returned values that do not come from y_true and y_pred")
            model = Model([t, p] + ([] if m is None else [m]), out, name=f"{loss.name}_traced_loss")
    except UnsupportedKerasFeature as exc:
        raise UnsupportedKerasFeature(_untraceable(loss, exc)) from None
    except (TypeError, ValueError, NotImplementedError, AttributeError, IndexError) as exc:
        raise UnsupportedKerasFeature(_untraceable(loss, exc)) from None
    if len(traces) > _MAX_TRACES:
        traces.pop(next(k for k in traces if k != "generation"))
    traces[key] = model
    return model


def _untraceable(loss, exc) -> str:
    reason = str(exc) if isinstance(exc, UnsupportedKerasFeature) else f"{type(exc).__name__}: {exc}"
    fn = getattr(loss, "fn", None)  # (a wrapper: its function's name)
    name = loss.name if fn is None else getattr(fn, "__name__", None) or type(fn).__name__
    return (f"custom loss {name!r} cannot be trained in fastgru: its call could not be traced on symbolic tensors "
            f"to find its gradient ({reason}). fastgru differentiates the fastgru.ops and operators a loss applies to "
            "y_true and y_pred (import fastgru as keras; keras.ops...), not NumPy or TensorFlow code")


def run(loss, y_true, y_pred, sample_weight, mask, grad: bool):
    """``(loss value, d loss / d y_pred or None)`` of a loss computing its values in ``call`` (Loss._run's)."""
    y_pred = np.asarray(y_pred)
    dtype = _float_dtype(y_pred)
    orig_shape = y_pred.shape
    yt, yp = np.asarray(y_true).astype(dtype), y_pred.astype(dtype, copy=False)
    if isinstance(loss, LossFunctionWrapper):  # (Keras's wrapper brings both to one rank; a Loss subclass's call
        yt, yp = _same_rank(yt, yp)  # takes them as they are, as in Keras: (B,) against (B, 1) broadcasts to (B, B))
    model = None
    if grad:
        model = _trace(loss, yt, yp, mask)
    elif mask is not None:  # (a built-in loss inside reads the output's mask: the trace's values, where it traces)
        try:
            model = _trace(loss, yt, yp, mask)
        except UnsupportedKerasFeature:
            model = None
    if model is not None:
        with whole_batch():
            outs, _, tape = model._forward([yt, yp] + ([] if mask is None else [np.asarray(mask, bool)]), None, grad)
        values = np.asarray(outs[0]).astype(dtype, copy=False)
    else:
        values = _values_of(loss, yt, yp, dtype)
    shape = values.shape
    if values.ndim == 0 and (sample_weight is not None or mask is not None):  # (Keras: the value times each weight)
        values = np.broadcast_to(values, np.shape(sample_weight if sample_weight is not None else mask))
    value, upstream = loss._reduced(values, dtype, sample_weight, mask, grad)
    if not grad:
        return value, None
    upstream = _sum_to_shape(upstream, shape).reshape(shape).astype(dtype, copy=False)
    with whole_batch():
        d_inputs, _ = model._backward([upstream], tape, need_dx=True)
    g = d_inputs[1]
    g = np.zeros(yp.shape, dtype) if g is None else np.asarray(g, dtype)
    return value, g.reshape(orig_shape)


Loss._run_call = staticmethod(run)
