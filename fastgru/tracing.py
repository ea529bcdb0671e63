"""A custom layer's ``call`` traced for its gradient (``fastgru.layers.custom_training``): the trace's state, its
weights as live operands of the traced graph, values computed from weights alone, and the weight gradients its
backward pass collects.

While a call is traced, an op between the input's symbolic tensors and a weight records a graph node whose
operand is the weight itself (:func:`traced_operand`): each run reads its current values, and the backward pass
adds the operand's gradient to the weight's (:func:`collected_gradients`). A value computed from weights alone —
``ops.exp(self.log_scale)``, ``self.table[:n]``, ``self.w * 2``, ``self.positions(ids)`` — is a
:class:`WeightExpression`: its operations (NumPy's semantics, as Keras's on tensors) are computed again from the
live weights at every run, and a gradient reaching it flows on to the weights.
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager

import numpy as np

from .errors import UnsupportedKerasFeature

#: marks a tensor's place in a graph node's arguments (``{TENSOR_KEY: k}``: the call's k-th tensor)
TENSOR_KEY = "__fastgru_tensor__"
#: a graph node's operand given as it is (``{ARRAY_KEY: array}``): a weight, or a value computed from weights
ARRAY_KEY = "__fastgru_array__"

_state = threading.local()
_weight_classes: list = []
_made = itertools.count()


def register_weight_class(cls) -> None:
    """``cls`` (``fastgru.variables.Variable``) is a weight's view: in a traced call it is a live operand."""
    _weight_classes.append(cls)


@contextmanager
def traced_call(layer_name: str | None):
    """Within the block, ``layer_name``'s call is being traced on symbolic tensors (None: no trace, e.g. for a
    layer's output-shape probe on zeros inside one)."""
    before = getattr(_state, "layer", None)
    _state.layer = layer_name
    try:
        yield
    finally:
        _state.layer = before


_generation = [0]


def retrace() -> None:
    """Every traced call is traced again at its next use (``compile``: as Keras builds its train function anew,
    reading the layers' Python attributes again)."""
    _generation[0] += 1


def generation() -> int:
    return _generation[0]


@contextmanager
def drawing(batch: int):
    """Within the block (a call traced on inputs of ``batch`` rows), ``keras.random`` draws become inputs of the
    traced graph (:func:`record_draw`); yields the list of (input tensor, draw: a function giving its values)."""
    before = getattr(_state, "draws", None)
    draws: list = []
    _state.draws = (batch, draws)
    try:
        yield draws
    finally:
        _state.draws = before


def record_draw(tensor, draw) -> bool:
    """Record ``tensor`` (an input made for a random draw) as drawn by ``draw()`` at each run of the traced graph;
    False where its first axis is not the batch's (or no trace records draws)."""
    found = getattr(_state, "draws", None)
    if found is None or getattr(_state, "layer", None) is None or not tensor.shape or tensor.shape[0] != found[0]:
        return False
    found[1].append((tensor, draw))
    return True


def tracing() -> str | None:
    """The name of the custom layer whose call is being traced, or None."""
    return getattr(_state, "layer", None)


def refuse_while_traced(what: str) -> None:
    """Raise while a call is traced: ``what`` would make a constant of a value that depends on the weights."""
    name = getattr(_state, "layer", None)
    if name is not None:
        raise UnsupportedKerasFeature(
            f"custom layer {name!r}: its call computes {what}, which fastgru cannot differentiate (it would be a "
            "constant in the traced graph, and no gradient would reach the weights)")


def _weight_array(value):
    """The layer's own array behind a weight's view, or None for anything else."""
    if isinstance(value, TracedWeight):
        value = value.variable
    if _weight_classes and type(value) in _weight_classes:
        return value.__dict__.get("_fg_array")
    return None


def is_weight_valued(value) -> bool:
    """A weight's view or a :class:`WeightExpression`: an operand whose gradient goes to weights."""
    return isinstance(value, WeightExpression) or (bool(_weight_classes) and type(value) in _weight_classes)


def traced_operand(value) -> dict | None:
    """While a call is traced: a weight's view or a :class:`WeightExpression` as a graph node's live operand
    (``{ARRAY_KEY: value}``); None for anything else, or outside a trace. A view made from a weight (``w.T``,
    ``w.reshape(...)``: not the layer's array) is refused."""
    if getattr(_state, "layer", None) is None or not is_weight_valued(value):
        return None
    if not isinstance(value, WeightExpression):
        array = _weight_array(value)
        if array is None or value.shape != array.shape:
            refuse_while_traced("a NumPy view or reshape of a weight (use keras.ops.reshape/transpose on it)")
    _mark_read(value)
    return {ARRAY_KEY: value}


def _mark_read(value) -> None:
    """The traced weights ``value`` reads, marked as read by the graph (an assignment after that is refused)."""
    if isinstance(value, TracedWeight):
        value.__dict__["_fg_read"] = True
    elif isinstance(value, WeightExpression):
        for operand in value.operands:
            _mark_read(operand)


@contextmanager
def updating():
    """Within the block (a traced call), assignments to the layer's weights are recorded, not made; yields the list
    of (variable, "assign"/"assign_add"/"assign_sub", value) each run makes before the graph runs."""
    before = getattr(_state, "updates", None)
    updates = _state.updates = []
    try:
        yield updates
    finally:
        _state.updates = before


def operand_value(value) -> np.ndarray:
    """A live operand's current values (a weight's array, a :class:`WeightExpression` computed again)."""
    if isinstance(value, WeightExpression):
        return value.compute()
    if _weight_classes and type(value) in _weight_classes:
        return value.view(np.ndarray)
    return np.asarray(value)


def send_gradient(value, grad) -> None:
    """Add ``grad`` (``value``'s shape) to the gradient of the weights ``value`` is or is computed from."""
    if isinstance(value, TracedWeight):
        value = value.variable
    if isinstance(value, WeightExpression):  # (summed over its uses, then sent on once: collected_gradients)
        pending = getattr(_state, "pending", None)
        if pending is not None:
            known = pending.get(id(value))
            pending[id(value)] = (value, grad if known is None else add_gradients(known[1], grad))
        return
    sink = getattr(_state, "sink", None)
    array = _weight_array(value)
    if sink is None or array is None:
        return
    key = id(array)
    if not hasattr(grad, "dense"):  # (a row gradient, an Embedding's or a take's, stays slices: Keras's IndexedSlices)
        grad = np.asarray(grad, dtype=array.dtype)
    sink[key] = grad if key not in sink else add_gradients(sink[key], grad)


def add_gradients(a, b):
    """``a + b`` as TensorFlow sums a variable's gradients: row gradients (``training.row_gradient``, Keras's
    IndexedSlices) joined slice by slice, dense otherwise."""
    if hasattr(a, "dense") and hasattr(b, "dense"):
        return type(a)(np.concatenate([a.indices, b.indices]), np.concatenate([a.values, b.values]), a.shape,
                       a.sum_first)
    return (a.dense() if hasattr(a, "dense") else a) + (b.dense() if hasattr(b, "dense") else b)


@contextmanager
def collected_gradients():
    """Within the block, gradients sent to weights (:func:`send_gradient`) are summed into the dict yielded, keyed
    by the id of the layer's array (``fastgru.variables.array_of``); those sent to values computed from weights are
    summed per value and sent on to the weights when the block ends."""
    before = getattr(_state, "sink", None), getattr(_state, "pending", None)
    sink: dict = {}
    _state.sink, _state.pending = sink, {}
    try:
        yield sink
        pending = _state.pending  # (values from weights: the latest made first, each once with its summed gradient,
        while pending:  # as TensorFlow sums a tensor's gradients before going on to what it was computed from)
            key = max(pending, key=lambda k: pending[k][0].order)
            expression, grad = pending.pop(key)
            expression.backprop(grad.dense() if hasattr(grad, "dense") else grad)
    finally:
        _state.sink, _state.pending = before


def _unbroadcast(grad, shape) -> np.ndarray:
    from .layers.op_elementwise import unbroadcast

    return unbroadcast(np.asarray(grad), tuple(shape))


class WeightExpression:
    """A value computed from weights alone inside a traced call: ``forward(*operand values)`` computes it,
    ``backward(operand values, value, grad)`` gives each operand's gradient (None where none flows);
    ``operands`` are weights, other expressions and constants; ``compute()`` gives its current value. ``shape``,
    ``dtype`` and ``ndim`` are its trace-time value's (the weights' shapes do not change)."""

    def __init__(self, forward, backward, operands: list, what: str):
        self._forward, self._backward, self.operands, self.what = forward, backward, list(operands), what
        self.order = next(_made)  # (made after its operands: gradients go back latest first)
        value = self.compute()
        self.shape, self.dtype, self.ndim, self.size = value.shape, value.dtype, value.ndim, value.size

    def compute(self) -> np.ndarray:
        with np.errstate(all="ignore"), traced_call(None):  # (computed eagerly, also while a call is traced)
            return np.asarray(self._forward(*[operand_value(o) for o in self.operands]))

    def backprop(self, grad) -> None:
        values = [operand_value(o) for o in self.operands]
        with np.errstate(all="ignore"), traced_call(None):
            y = np.asarray(self._forward(*values))
            grads = self._backward(values, y, np.asarray(grad, dtype=y.dtype))
        for operand, value, g in zip(self.operands, values, grads):
            if g is not None and is_weight_valued(operand):
                send_gradient(operand, g if hasattr(g, "dense") else _unbroadcast(g, np.shape(value)))

    def __repr__(self) -> str:
        return f"<WeightExpression {self.what}, shape={self.shape}, dtype={self.dtype}>"

    # ---- NumPy and Python arithmetic: more expressions (an op with a symbolic tensor: the tensor's) --------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(getattr(i, "_fg_symbolic", False) for i in inputs):
            return NotImplemented
        return ufunc_expression(ufunc, method, inputs, kwargs)

    def __array__(self, dtype=None, copy=None):
        refuse_while_traced(f"NumPy's conversion of {self.what} to an array")
        return self.compute() if dtype is None else self.compute().astype(dtype)

    def _binary(self, name: str, a, b):
        if any(getattr(v, "_fg_symbolic", False) or type(v).__name__ == "BatchTotal" for v in (a, b)):
            return NotImplemented  # (the tensor's or the total's operator)
        return elementwise_expression(name, [a, b])

    def __add__(self, other):
        return self._binary("Add", self, other)

    def __radd__(self, other):
        return self._binary("Add", other, self)

    def __sub__(self, other):
        return self._binary("Subtract", self, other)

    def __rsub__(self, other):
        return self._binary("Subtract", other, self)

    def __mul__(self, other):
        return self._binary("Multiply", self, other)

    def __rmul__(self, other):
        return self._binary("Multiply", other, self)

    def __truediv__(self, other):
        return self._binary("TrueDivide", self, other)

    def __rtruediv__(self, other):
        return self._binary("TrueDivide", other, self)

    def __pow__(self, other):
        return self._binary("Power", self, other)

    def __rpow__(self, other):
        return self._binary("Power", other, self)

    def __neg__(self):
        return elementwise_expression("Negative", [self])

    def __matmul__(self, other):
        if getattr(other, "_fg_symbolic", False):
            return NotImplemented
        return matmul_expression(self, other)

    def __rmatmul__(self, other):
        return matmul_expression(other, self)

    def __getitem__(self, key):
        return item_expression(self, key)

    @property
    def T(self):  # noqa: N802  (NumPy's name)
        return WeightExpression(np.transpose, lambda v, y, g: [np.transpose(g)], [self], "a transpose")

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return WeightExpression(lambda x: np.reshape(x, shape), lambda v, y, g: [np.reshape(g, np.shape(v[0]))],
                                [self], "a reshape")


# ---- the expressions ----------------------------------------------------------------------------------------------
#: NumPy ufuncs as the Keras ops whose values and gradients fastgru has (``layers.op_elementwise``)
_UFUNC_OPS = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "divide": "TrueDivide",
              "true_divide": "TrueDivide", "power": "Power", "maximum": "Maximum", "minimum": "Minimum",
              "negative": "Negative", "exp": "Exp", "log": "Log", "tanh": "Tanh", "sqrt": "Sqrt", "square": "Square",
              "absolute": "Absolute", "sin": "Sin", "cos": "Cos", "log1p": "Log1p", "expm1": "Expm1",
              "reciprocal": "Reciprocal", "exp2": "Exp2", "log2": "Log2", "log10": "Log10", "sinh": "Sinh",
              "cosh": "Cosh", "arctan": "Arctan", "sign": "Sign", "floor": "Floor", "ceil": "Ceil"}


def ufunc_expression(ufunc, method: str, inputs: tuple, kwargs: dict):
    """NumPy's ``ufunc`` on weights inside a traced call (``self.w * 2``, ``np.exp(self.w)``)."""
    op = _UFUNC_OPS.get(ufunc.__name__)
    if ufunc.__name__ == "matmul" and method == "__call__" and not kwargs:
        return matmul_expression(*inputs)
    if method != "__call__" or kwargs or op is None:
        refuse_while_traced(f"NumPy's {ufunc.__name__}{'' if method == '__call__' else '.' + method} of a weight")
    return elementwise_expression(op, list(inputs))


def elementwise_expression(op: str, operands: list, config: dict | None = None) -> WeightExpression:
    """The elementwise Keras op ``op`` (``"Add"``, ``"Exp"``, ``"Softmax"`` with its config) of ``operands``."""
    from .layers.op_elementwise import AXIS_OPS, BINARY, TERNARY, UNARY

    config = dict(config or {})
    if op in UNARY:
        value_of, grad_of = UNARY[op]
        first = operand_value(operands[0])
        if op in AXIS_OPS:
            config["axis"] = int(config.get("axis", -1)) % max(first.ndim, 1)

        def forward(x):
            return value_of(x, config)

        def backward(values, y, g):
            return [grad_of(values[0], y, g, config)]
    elif op in BINARY or op in TERNARY:
        value_of, grad_of = {**BINARY, **TERNARY}[op]
        dtype = np.result_type(*[operand_value(o).dtype for o in operands if is_weight_valued(o)])

        def cast(values):
            return [v.astype(dtype, copy=False) if isinstance(v, np.ndarray) else dtype.type(v) for v in values]

        def forward(*values):
            return value_of(*cast(values))

        def backward(values, y, g):
            return grad_of(*cast(values), y, g)
    else:
        refuse_while_traced(f"keras.ops {op} of a weight")
    return WeightExpression(forward, backward, operands, f"{op} of a weight")


def matmul_expression(a, b) -> WeightExpression:
    """``a @ b`` (NumPy's matmul, 1-D operands included) of weights."""

    def backward(values, y, g):
        x, w = (np.asarray(v) for v in values)
        x2, w2 = (x[None] if x.ndim == 1 else x), (w[:, None] if w.ndim == 1 else w)
        g2 = np.asarray(g).reshape(np.matmul(x2, w2).shape)
        dx = np.matmul(g2, np.swapaxes(w2, -1, -2))
        dw = np.matmul(np.swapaxes(x2, -1, -2), g2)
        return [dx.reshape(x.shape) if x.ndim == 1 else dx, dw.reshape(w.shape) if w.ndim == 1 else dw]

    return WeightExpression(np.matmul, backward, [a, b], "a matmul of a weight")


def item_expression(value, key) -> WeightExpression:
    """``value[key]`` of a weight (or an expression): its gradient scattered back where the items came from."""
    if any(is_weight_valued(k) or getattr(k, "_fg_symbolic", False)
           for k in (key if isinstance(key, tuple) else (key,))):
        refuse_while_traced("an index computed from weights or the input")

    def backward(values, y, g):
        full = np.zeros(np.shape(values[0]), dtype=np.asarray(g).dtype)
        np.add.at(full, key, g)
        return [full]

    return WeightExpression(lambda x: x[key], backward, [value], "an item or slice of a weight")


def layer_expression(layer, x) -> WeightExpression:
    """``layer(x)`` inside a traced call, where ``x`` is a constant (``self.positions(ops.arange(n))``): the layer's
    weights' gradients come from its own backward pass."""
    x = np.asarray(x)

    def forward(*_weights):
        return layer.call(x)

    def backward(values, y, g):
        _, cache = layer.forward(x, training=True)
        _, grads = layer.backward(g, cache, need_dx=False)
        for weight, grad in zip(layer.trainable_weights, grads):
            if grad is not None:
                send_gradient(weight, grad)
        return [None] * len(values)

    return WeightExpression(forward, backward, list(layer.weights), f"layer {layer.name!r} on a constant")


#: ``keras.ops`` functions that only move, repeat or pick their operands' items: their gradient is scattered back
#: to the items each output item came from (found by running the function on the items' indices)
_GATHERS = frozenset({"expand_dims", "squeeze", "reshape", "transpose", "swapaxes", "moveaxis", "flip", "roll",
                      "tile", "repeat", "take", "take_along_axis", "concatenate", "stack", "hstack", "broadcast_to"})


def op_expression(op: str, name: str, operands: list, forward, config: dict) -> WeightExpression:
    """``keras.ops.<name>`` (the Keras op ``op``) of weights inside a traced call: ``operands`` are its tensor
    arguments in order (a list argument's items one by one), ``forward(*operand values)`` its value (NumPy's
    semantics); refused where fastgru has no gradient for it."""
    from .layers.op_elementwise import BINARY, TERNARY, UNARY

    if op in UNARY or op in BINARY or op in TERNARY:
        return elementwise_expression(op, operands, config)
    ranks = [np.ndim(operand_value(o)) for o in operands]
    if name == "matmul" or (name == "dot" and len(operands) == 2 and max(ranks) <= 2):
        return matmul_expression(*operands)
    if name == "take" and len(operands) == 2 and _weight_array(operands[0]) is not None and config.get("axis") in (
            0, -np.ndim(operand_value(operands[0]))):  # (rows of a weight: slices, as TensorFlow's IndexedSlices)
        def rows(values, y, g):
            from .training.row_gradient import RowGradient

            table, ids = values
            ids = np.asarray(ids).astype(np.int64).reshape(-1) % table.shape[0]
            return [RowGradient(ids, np.asarray(g).reshape(ids.size, -1), table.shape), None]

        return WeightExpression(forward, rows, operands, "keras.ops take of a weight")
    if name in _GATHERS:
        return WeightExpression(forward, _gather_backward(forward), operands, f"keras.ops {name} of a weight")
    if name in ("sum", "mean") and len(operands) == 1:
        axis, keepdims = config.get("axis"), config.get("keepdims", False)

        def backward(values, y, g):
            shape = np.shape(values[0])
            g = np.asarray(g)
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            g = np.broadcast_to(g, shape)
            return [g / max(1, int(np.prod(shape)) // max(1, np.size(y))) if name == "mean" else g]

        return WeightExpression(forward, backward, operands, f"keras.ops {name} of a weight")
    refuse_while_traced(f"keras.ops {name} of a weight")
    raise AssertionError("unreachable")  # (refuse_while_traced raised: a call is being traced)


def _gather_backward(forward):
    def backward(values, y, g):
        sizes = [np.size(v) for v in values]
        offsets = np.cumsum([0] + sizes[:-1])
        indices = [np.arange(off, off + n, dtype=np.int64).reshape(np.shape(v)) if isinstance(v, np.ndarray)
                   and v.dtype.kind == "f" else v for v, off, n in zip(values, offsets, sizes)]
        source = np.asarray(forward(*indices)).reshape(-1)
        flat_g = np.asarray(g).reshape(-1)
        grads = []
        for v, off, n in zip(values, offsets, sizes):
            if not (isinstance(v, np.ndarray) and v.dtype.kind == "f"):
                grads.append(None)
                continue
            mine = (source >= off) & (source < off + n)
            grad = np.zeros(n, dtype=flat_g.dtype)
            np.add.at(grad, source[mine] - off, flat_g[mine])
            grads.append(grad.reshape(np.shape(v)))
        return grads

    return backward


class TracedWeight(WeightExpression):
    """A custom layer's weight as its call sees it while traced (``self.w``: put in the layer's attributes for the
    trace, ``swapped_weights``): the weight's values and gradient, and the variable's other attributes (``name``,
    ``path``, ...); NumPy's conversions of it (``np.asarray(self.w)``, which would make a constant) are refused."""

    def __init__(self, variable):
        self.variable = variable
        super().__init__(lambda w: w, lambda values, y, g: [g], [variable], f"weight {variable.name!r}")

    def __getattr__(self, name):
        if name == "variable" or name.startswith("__"):  # (not set yet; NumPy's __array_interface__: no values)
            raise AttributeError(name)
        return getattr(self.variable, name)

    def __len__(self) -> int:
        return len(self.variable)

    @property
    def value(self):
        return self

    def numpy(self):
        refuse_while_traced(f"numpy() of {self.what}")
        return self.variable.numpy()

    def assign(self, value, kind: str = "assign"):
        """Recorded, made at each run of the trace before its graph (a step counter, a value from weights:
        :func:`updating`); a value from the input, or after the graph has read the weight, refused."""
        if getattr(value, "_fg_symbolic", False) or type(value).__name__ == "BatchTotal" or \
                getattr(_state, "updates", None) is None:
            refuse_while_traced(f"an assignment to {self.what} of a value from its input")
        if self.__dict__.get("_fg_read"):
            refuse_while_traced(f"an assignment to {self.what} after reading it (fastgru makes a traced call's "
                                "assignments before the rest of the call)")
        _state.updates.append((self.variable, kind, value))
        return self

    def assign_add(self, value):
        return self.assign(value, "assign_add")

    def assign_sub(self, value):
        return self.assign(value, "assign_sub")


@contextmanager
def swapped_weights(layer):
    """Within the block, the weights ``layer`` keeps in its attributes (directly or in lists) are traced weights
    (:class:`TracedWeight`): its call, traced, computes with them."""
    swaps = []
    for name, value in list(vars(layer).items()):
        if _weight_array(value) is not None and not isinstance(value, TracedWeight):
            swaps.append((name, value))
            layer.__dict__[name] = TracedWeight(value)
        elif isinstance(value, list) and any(_weight_array(v) is not None for v in value):
            swaps.append((name, value))
            layer.__dict__[name] = [TracedWeight(v) if _weight_array(v) is not None else v for v in value]
    try:
        yield
    finally:
        for name, value in swaps:
            layer.__dict__[name] = value
