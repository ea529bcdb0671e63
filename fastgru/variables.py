"""Keras's variables over fastgru's weight arrays: what ``model.weights``, ``layer.trainable_weights``,
``layer.kernel`` and the like hand out.

A :class:`Variable` is a view of the layer's live array (a NumPy array: NumPy functions take it, and writing
into it writes the weight) with Keras's ``name``, ``path``, ``trainable``, ``numpy()``, ``value`` and
``assign``/``assign_add``/``assign_sub`` (checked as ``set_weights`` checks). A layer keeps one view per weight
(:func:`variable_of`), so a weight is the same object wherever it is listed. Arithmetic on a variable gives
arrays with ``.numpy()`` (:class:`fastgru.eager.EagerArray`), as Keras's gives tensors. The kernels never see
these views: the layers compute from their arrays, and the optimizer steps take ``np.asarray`` of them.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager

import numpy as np

from .eager import EagerArray, eager
from .tracing import item_expression, refuse_while_traced, register_weight_class, tracing, ufunc_expression

#: the cell whose variables a recurrent layer's are in Keras (``gru/gru_cell/kernel``)
RECURRENT_CELLS = {"GRU": "gru_cell", "LSTM": "lstm_cell", "SimpleRNN": "simple_rnn_cell",
                   "ConvLSTM1D": "conv_lstm_cell", "ConvLSTM2D": "conv_lstm_cell", "ConvLSTM3D": "conv_lstm_cell"}


class Variable(np.ndarray):
    """One weight of a layer, as Keras's ``keras.Variable``: the live array with ``name`` (``"kernel"``),
    ``path`` (``"sequential/gru/gru_cell/kernel"``), ``trainable``, ``numpy()``, ``value`` and ``assign``."""

    @property
    def name(self) -> str | None:
        """The weight's name within its layer (``"kernel"``, ``"moving_mean"``)."""
        weight = self.__dict__.get("_fg_weight")
        return None if weight is None else weight.rsplit("/", 1)[-1]

    @property
    def path(self) -> str | None:
        """Keras's path: the model that built the layer (a ``Sequential``'s, a wrapper's), the layer, a
        recurrent layer's cell and the weight's name (``"sequential/bidirectional/forward_gru/gru_cell/kernel"``)."""
        layer, weight = self._owner(), self.__dict__.get("_fg_weight")
        if layer is None or weight is None:
            return None
        cell = RECURRENT_CELLS.get(type(layer).__name__)
        parts = [layer.__dict__.get("_variable_scope"), layer.name, cell, weight]
        return "/".join(p for p in parts if p)

    @property
    def trainable(self) -> bool:
        """Whether training updates it (False for a frozen layer's, BatchNormalization's moving statistics)."""
        layer = self._owner()
        return layer is not None and any(w is self for w in layer.trainable_weights)

    @trainable.setter
    def trainable(self, value) -> None:
        raise AttributeError("fastgru freezes layers, not single variables: set `layer.trainable = False` "
                             f"(variable {self.path!r})")

    @property
    def regularizer(self):
        """The weight's regularizer (a ``fastgru.regularizers`` object), or None."""
        layer = self._owner()
        return None if layer is None else (getattr(layer, "weight_regularizers", None) or {}).get(self._fg_weight)

    @property
    def constraint(self):
        """The weight's constraint (a ``fastgru.constraints`` object), or None."""
        layer = self._owner()
        return None if layer is None else (getattr(layer, "weight_constraints", None) or {}).get(self._fg_weight)

    #: Keras's defaults (fastgru runs on one device: nothing to aggregate or synchronise)
    aggregation, synchronization, overwrite_with_gradient, autocast = "none", "auto", False, True

    @property
    def value(self) -> EagerArray:
        """The live values (a view with ``.numpy()``; the variable itself in a call traced for training, where Keras's
        value is differentiable too)."""
        if tracing() is not None:
            return self
        return self.view(np.ndarray).view(EagerArray)

    def numpy(self) -> np.ndarray | np.generic:
        """A copy of the values as a plain NumPy array (a NumPy scalar for a 0-d weight)."""
        refuse_while_traced(f"numpy() of weight {self.name!r}")
        value = np.array(self.view(np.ndarray), copy=True)
        return value[()] if value.ndim == 0 else value

    def assign(self, value) -> Variable:
        """Write ``value`` (this shape; real, finite numbers) into the weight, as Keras's ``assign``; the layer's
        calls running in other threads finish with the old values first."""
        if tracing() is not None:  # (a weight the traced layer does not keep as its own attribute)
            refuse_while_traced(f"an assignment to the weight {self.name!r} of a layer it holds")
        value = np.asarray(value)
        if value.shape != self.shape:
            raise ValueError("The shape of the target variable and the shape of the target value in "
                             f"`variable.assign(value)` must match. variable.shape={self.shape}, Received: "
                             f"value.shape={value.shape}. Target variable: {self.path or self.name}")
        layer, weight = self._owner(), self.__dict__.get("_fg_weight")
        if layer is None or weight is None:  # (a view made from a variable, e.g. by reshape: a plain copy)
            np.copyto(self.view(np.ndarray), value, casting="unsafe")
        else:
            layer._assign_weight(weight, value)
        return self

    def assign_add(self, value) -> Variable:
        return self.assign(self.view(np.ndarray) + np.asarray(value))

    def assign_sub(self, value) -> Variable:
        return self.assign(self.view(np.ndarray) - np.asarray(value))

    def _owner(self):
        ref = self.__dict__.get("_fg_layer")
        return None if ref is None else ref()

    # ---- as an array: results are plain (with .numpy()), never more variables ----------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if tracing() is not None:  # (in a call traced for training: a value computed from weights, differentiable)
            return ufunc_expression(ufunc, method, inputs, kwargs)
        inputs = tuple(i.view(np.ndarray) if isinstance(i, Variable) else i for i in inputs)
        out = kwargs.get("out")
        if out:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, Variable) else o for o in out)
        result = getattr(ufunc, method)(*inputs, **kwargs)
        if out:  # (in place, ``v += 1``: the variable itself)
            return out[0] if len(out) == 1 else out
        return eager(result)

    def __getitem__(self, key):
        if tracing() is not None:
            return item_expression(self, key)
        return eager(self.view(np.ndarray)[key])

    def __reduce__(self):  # pickled (and deep-copied) as the plain values
        return np.array(self.view(np.ndarray)).__reduce__()

    def __deepcopy__(self, memo=None) -> np.ndarray:
        return np.array(self.view(np.ndarray), copy=True)

    def __copy__(self) -> np.ndarray:
        return np.array(self.view(np.ndarray), copy=True)

    def copy(self, order="C") -> np.ndarray:
        """A plain copy of the values (``ndarray.copy``)."""
        return self.view(np.ndarray).copy(order)

    def __repr__(self) -> str:
        values = np.array2string(self.view(np.ndarray), separator=" ")
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, value={values}>"

    __str__ = __repr__


class VariableLists:
    """Keras's lists derived from ``weights`` and ``trainable_weights``, for layers and models alike."""

    @property
    def non_trainable_weights(self) -> list:
        """The weights that training leaves alone (a frozen layer's, BatchNormalization's moving statistics)."""
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def variables(self) -> list:
        return self.weights

    @property
    def trainable_variables(self) -> list:
        return self.trainable_weights

    @property
    def non_trainable_variables(self) -> list:
        return self.non_trainable_weights


def variable_of(layer, weight: str, array: np.ndarray) -> Variable:
    """The layer's :class:`Variable` for ``array``, its weight named ``weight`` (made once, then the same object
    while the layer holds that array)."""
    views = layer.__dict__.get("_variable_views")
    if views is None:
        views = layer.__dict__["_variable_views"] = {}
    variable = views.get(weight)
    if variable is None or variable.__dict__["_fg_array"] is not array:
        variable = array.view(Variable)
        variable.__dict__.update(_fg_array=array, _fg_layer=weakref.ref(layer), _fg_weight=weight)
        views[weight] = variable
    return variable


_loading = threading.local()


@contextmanager
def unscoped():
    """Within the block (a model built from a file), layers take no container's name in their paths: Keras
    builds a loaded model's layers outside any name scope (``gru/gru_cell/kernel``, ``forward_gru/...``)."""
    before = getattr(_loading, "active", False)
    _loading.active = True
    try:
        yield
    finally:
        _loading.active = before


def built_within(layer, container) -> None:
    """Note that ``container`` (a ``Sequential``, a wrapper) builds ``layer``: Keras builds it in the container's
    name scope, so its variables' paths start with the container's (``sequential/dense/kernel``)."""
    if getattr(_loading, "active", False):
        return
    scope = container.__dict__.get("_variable_scope")
    layer.__dict__["_variable_scope"] = f"{scope}/{container.name}" if scope else container.name


def array_of(value):
    """The layer's own array behind a :class:`Variable` (the same object at every call: optimizers key their
    state by it); anything else as it is."""
    if type(value) is Variable:
        return value.__dict__.get("_fg_array", value)
    return value



register_weight_class(Variable)  # (fastgru.tracing: a weight's operand in a traced call)
