"""Keras's ``keras.ops`` functions that fastgru runs, on ``fastgru.ops`` (``import fastgru as keras``, then
``keras.ops.mean(h, axis=1)``): on symbolic tensors each records the op node Keras records (a
``fastgru.layers.KerasOp``, saved to and loaded from Keras files as Keras's), on arrays it computes at once with
the same code. Keras's names, argument names, order and defaults (``concatenate``'s axis is 0, as Keras's).

On arrays every axis is an axis, as in Keras: where the graph op refuses the arrays (an op over axis 0, which a
graph keeps whole as the batch axis: ``concatenate`` along axis 0, a reduction with ``axis=None``, an op on a
layer's weights alone) NumPy's function computes it (:func:`fastgru.op_numpy.numpy_result`).
"""

from __future__ import annotations

import inspect

import numpy as np

from . import activations
from .eager import EagerArray, eager, keras_array, plain
from .errors import UnsupportedKerasFeature
from .layers import batch_totals
from .layers.batch_totals import BatchTotal
from .layers.keras_ops import TENSOR_KEY, KerasOp, numpy_constant
from .op_numpy import flat, numpy_result
from .tracing import (
    ARRAY_KEY,
    WeightExpression,
    is_weight_valued,
    op_expression,
    operand_value,
    refuse_while_traced,
    traced_operand,
    tracing,
)
from .variables import Variable

_T, _R = object(), inspect.Parameter.empty  # (a tensor argument; a required option)
_LIST_OPS = ("Concatenate", "Stack", "Hstack")  # (their first argument: a list of tensors)

#: (parameters: (name, default; _T for a tensor, _R for a required option), the functions taking them)
_SPECS = (
    ((('x', _T),),
     "absolute arccos arccosh arcsin arcsinh arctan arctanh cbrt ceil cos cosh deg2rad erf "
     "erfc erfinv exp exp2 expm1 fabs floor hard_sigmoid hard_silu hard_tanh isfinite isinf "
     "isnan log log10 log1p log2 log_sigmoid logical_not negative rad2deg reciprocal relu "
     "relu6 rsqrt selu sigmoid sign signbit silu sin sinc sinh softplus softsign sparse_plus "
     "sqrt square tan tanh tanh_shrink trunc"),
    ((('x1', _T), ('x2', _T)),
     "add arctan2 divide divide_no_nan dot equal floor_divide fmax fmin fmod greater "
     "greater_equal heaviside hypot less less_equal logaddexp logaddexp2 logical_and "
     "logical_or logical_xor matmul maximum minimum mod multiply not_equal power subtract "
     "true_divide"),
    ((('x', _T), ('axis', None), ('keepdims', False)),
     "all amax amin any argmax argmin logsumexp mean std sum var"),
    ((('x', _T), ('axis', -1)),
     "argsort glu log_softmax softmax sort"),
    ((('x', _T), ('dtype', _R)),
     "cast"),
    ((('x', _T), ('alpha', 1.0)),
     "celu elu"),
    ((('x', _T), ('x_min', _R), ('x_max', _R)),
     "clip"),
    ((('xs', _T), ('axis', 0)),
     "concatenate"),
    ((('x', _T), ('axis', None), ('dtype', None)),
     "cumprod cumsum"),
    ((('a', _T), ('n', 1), ('axis', -1)),
     "diff"),
    ((('x', _T), ('axis', _R)),
     "expand_dims"),
    ((('x', _T), ('axis', None)),
     "flip squeeze"),
    ((('x', _T), ('fill_value', _T), ('dtype', None)),
     "full_like"),
    ((('x', _T), ('approximate', True)),
     "gelu"),
    ((('x', _T), ('threshold', 0.5)),
     "hard_shrink soft_shrink"),
    ((('xs', _T),),
     "hstack"),
    ((('x', _T), ('negative_slope', 0.2)),
     "leaky_relu"),
    ((('x', _T), ('axis', None), ('keepdims', False), ('initial', None)),
     "max min"),
    ((('x', _T), ('source', _R), ('destination', _R)),
     "moveaxis"),
    ((('x', _T), ('nan', 0.0), ('posinf', None), ('neginf', None)),
     "nan_to_num"),
    ((('x', _T), ('ord', None), ('axis', None), ('keepdims', False)),
     "norm"),
    ((('x', _T), ('axis', None)),
     "count_nonzero"),
    ((('x', _T), ('axis', -1), ('order', 2), ('epsilon', None)),
     "normalize"),
    ((('x', _T), ('num_classes', _R), ('axis', -1), ('dtype', None), ('sparse', False)),
     "one_hot"),
    ((('x', _T), ('dtype', None)),
     "ones_like zeros_like"),
    ((('x', _T), ('axis', None), ('keepdims', False), ('dtype', None)),
     "prod"),
    ((('x', _T), ('repeats', _R), ('axis', None)),
     "repeat"),
    ((('x', _T), ('newshape', _R)),
     "reshape"),
    ((('x', _T), ('shift', _R), ('axis', None)),
     "roll"),
    ((('x', _T), ('decimals', 0)),
     "round"),
    ((('x', _T), ('b', 4)),
     "squareplus"),
    ((('x', _T), ('axis', 0)),
     "stack"),
    ((('variable', _T),),
     "stop_gradient"),
    ((('x', _T), ('axis1', _R), ('axis2', _R)),
     "swapaxes"),
    ((('x', _T), ('indices', _T), ('axis', None)),
     "take take_along_axis"),
    ((('x1', _T), ('x2', _T), ('axes', 2)),
     "tensordot"),
    ((('x', _T), ('threshold', _R), ('default_value', _R)),
     "threshold"),
    ((('x', _T), ('repeats', _R)),
     "tile"),
    ((('x', _T), ('axes', None)),
     "transpose"),
    ((('x', _T), ('k', 0)),
     "tril triu"),
    ((('condition', _T), ('x1', _T), ('x2', _T)),
     "where"),
    ((('x', _T), ('indices_or_sections', _R), ('axis', 0)),
     "split"),
    ((('x', _T), ('num', None), ('axis', 0)),
     "unstack"),
    ((('x', _T), ('k', _R), ('sorted', True)),
     "top_k"),
    ((('x', _T), ('axes', _R), ('keepdims', False), ('synchronized', False)),
     "moments"),
)


#: ops whose values on arrays are Keras's int32 indices and booleans (in a graph, fastgru carries them as floats)
_INDEX_RESULTS = frozenset({"Argmax", "Argmin", "Argsort", "CountNonzero"})
_BOOL_RESULTS = frozenset({"Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd",
                           "LogicalOr", "LogicalXor", "LogicalNot", "Any", "All", "Isnan", "Isinf", "Isfinite",
                           "Signbit"})


def _symbolic(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_symbolic(v) for v in value)
    return bool(getattr(value, "_fg_symbolic", False))


def _run(op: str, tensor_args: list, config: dict, numpy_call=None, expression=None):
    """``op`` on its tensor arguments: a graph node when one is symbolic, else the values computed now (by
    ``numpy_call()`` where the graph op refuses the arrays: an op over axis 0, which a graph keeps as the batch); on
    weights alone inside a call traced for training, ``expression()`` (a ``fastgru.tracing.WeightExpression``)."""
    if any(isinstance(v, BatchTotal) for v in flat(tensor_args)):  # (ops.mean(x) of a traced call, for add_loss)
        return batch_totals.apply_op(op, list(tensor_args))
    symbolic, tensors = _symbolic(tensor_args), []
    # on arrays, a layer's weight (a custom layer's ``ops.matmul(inputs, self.kernel)``) is a constant operand, as
    # in Keras's graph: the batch axis is the other operands'
    weights_constant = not symbolic and any(type(v) is not Variable and isinstance(v, np.ndarray) for v in tensor_args)
    if not symbolic and tracing() is not None and any(is_weight_valued(v) for v in flat(tensor_args)):
        if expression is None:
            refuse_while_traced(f"keras.ops {op} of a weight")
        return expression()

    def place(value, top: bool):
        if top and op in _LIST_OPS and isinstance(value, (list, tuple)):
            return [place(v, False) for v in value]
        if isinstance(value, (bool, int, float, np.number)) and not isinstance(value, np.ndarray):
            return value.item() if isinstance(value, np.number) else value
        if weights_constant and type(value) is Variable:
            return {ARRAY_KEY: np.asarray(value)}
        if symbolic and traced_operand(value) is not None:  # (a custom layer's weight, its call traced to train it)
            return traced_operand(value)
        if symbolic and not getattr(value, "_fg_symbolic", False):  # (a constant operand in a graph)
            return numpy_constant(np.asarray(value))
        tensors.append(value if symbolic else keras_array(value))  # (Python numbers: float32/int32, as Keras)
        return {TENSOR_KEY: len(tensors) - 1}

    template = [place(v, i == 0) for i, v in enumerate(tensor_args)]
    if not tensors:  # (numbers alone, ``ops.sqrt(8.0)``: Keras's 0-d tensors of them)
        numbers = [keras_array(v) if isinstance(v, (bool, int, float, np.number)) else v for v in tensor_args]
        if any(isinstance(v, np.ndarray) for v in numbers):
            return _run(op, numbers, config, numpy_call, expression)
        raise TypeError(f"keras.ops {op}: give it a tensor, an array or a number")
    if symbolic:
        whole = batch_totals.total(op, tensor_args[0], config) if op in ("Sum", "Mean") else None
        return whole if whole is not None else KerasOp(op, config)(tensors, template={"args": template, "kwargs": {}})
    if op == "Squeeze" and config.get("axis") is None and numpy_call is not None:
        return numpy_call()  # (an array's axis 0 of size 1 goes too, as in Keras; a graph keeps its batch axis)
    if numpy_call is not None and all(np.asarray(t).dtype.kind in "biu" for t in tensors):
        result = numpy_call()  # (integers and booleans: exact, in their dtype, as Keras computes them; a graph
        if result is not None:  # carries them as floats)
            return result
    try:
        result = KerasOp(op, config)(tensors, template={"args": template, "kwargs": {}})
        if isinstance(result, list):  # (several outputs: split, unstack, top_k's values and int32 indices, moments)
            return eager([np.asarray(r).astype(np.int32) if op == "TopK" and k else np.asarray(r)
                          for k, r in enumerate(result)])
        if op in _INDEX_RESULTS or op in _BOOL_RESULTS:  # (on arrays, Keras's dtypes: a graph carries floats)
            result = result.astype(np.int32 if op in _INDEX_RESULTS else bool)
        elif op in ("Cast", "OneHot"):  # (one_hot: Keras's floatx unless a dtype is given, whatever the ids')
            return eager(result.astype(np.dtype(config.get("dtype") or "float32")))
        floats = [v.dtype.itemsize for v in flat(tensor_args) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
        widest = max(floats, default=0)
        if result.dtype.kind == "f" and result.dtype.itemsize < widest and numpy_call is not None:
            return numpy_call()  # (a float64 table taken from by int32 ids: float64, as Keras promotes dtypes)
        if result.dtype == np.float32 and widest == 2:  # (float16 arguments: a float16 result, as Keras's)
            result = result.astype(np.float16)
        return eager(result)
    except (UnsupportedKerasFeature, ValueError) as exc:  # (the graph op keeps axis 0 whole: Keras's arrays don't)
        result = None if numpy_call is None else numpy_call()
        if result is None:
            result = _on_a_leading_axis(op, tensors, template, config)
        if result is None:
            raise type(exc)(str(exc)) from None
        return result


def _on_a_leading_axis(op: str, arrays: list, template: list, config: dict):
    """The op on arrays as Keras computes it (``ops.normalize(w, axis=0)``, which NumPy has no function for): the
    graph op on the arrays with a batch axis of one put in front, its ``axis`` moved with them; None where that
    does not apply."""
    key = "axes" if op == "Moments" else "axis"
    axis = config.get(key)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not axes or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes) or \
            not all(np.ndim(a) for a in arrays):
        return None
    moved = [a + 1 if a >= 0 else a for a in axes]
    try:
        result = KerasOp(op, {**config, key: moved if isinstance(axis, (list, tuple)) else moved[0]})(
            [np.asarray(a)[None] for a in arrays], template={"args": template, "kwargs": {}})
    except (UnsupportedKerasFeature, ValueError):
        return None
    return eager([np.asarray(r)[0] for r in result] if isinstance(result, list) else np.asarray(result)[0])


def _function(name: str, params: tuple):
    op = "".join(part.capitalize() for part in name.split("_"))
    signature = inspect.Signature([inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                     default=inspect.Parameter.empty if d is _T else d)
                                   for p, d in params])
    tensor_names = [p for p, d in params if d is _T]

    def function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        if values.get("dtype") is not None and not isinstance(values["dtype"], str):  # (np.float32: "float32")
            values["dtype"] = np.dtype(values["dtype"]).name
        config = {p: values[p] for p, d in params if d is not _T}
        dtype = np.int32 if op in _INDEX_RESULTS else bool if op in _BOOL_RESULTS else \
            np.dtype(values["dtype"]) if op == "Cast" else None
        return _run(op, [values[p] for p in tensor_names], config,
                    lambda: numpy_result(name, values, tensor_names, dtype),
                    lambda: _expression(op, name, values, tensor_names, config, dtype))

    function.__name__ = function.__qualname__ = name
    function.__signature__ = signature
    function.__doc__ = f"Keras's ``keras.ops.{name}``: the ``{op}`` op (a graph node on symbolic tensors)."
    return function


def _expression(op: str, name: str, values: dict, tensor_names: list, config: dict, dtype):
    """``keras.ops.<name>`` of weights inside a call traced for training: a value computed again from the live
    weights at each run, its gradient sent back to them (``fastgru.tracing.op_expression``)."""
    listed = [op in _LIST_OPS and isinstance(values[p], (list, tuple)) for p in tensor_names]  # (concatenate's list)
    flat = [v for p, many in zip(tensor_names, listed) for v in (values[p] if many else [values[p]])]
    owner = tracing()

    def forward(*arrays):
        rebuilt, at = dict(values), 0
        for p, many in zip(tensor_names, listed):
            n = len(values[p]) if many else 1
            rebuilt[p] = list(arrays[at:at + n]) if many else arrays[at]
            at += n
        result = numpy_result(name, rebuilt, tensor_names, dtype)
        if result is None or isinstance(result, list):  # (computed eagerly, outside the trace's state: raised here)
            raise UnsupportedKerasFeature(f"custom layer {owner!r}: its call computes keras.ops {name} of a weight "
                                          "with these arguments, which fastgru cannot differentiate")
        return plain(result)

    try:
        return op_expression(op, name, flat, forward, config)
    except UnsupportedKerasFeature:
        expression = _graph_op_expression(op, name, flat, config)
        if expression is None:
            raise
        return expression


#: reductions whose ``axis=None`` takes every axis (on a leading batch axis of one: every axis after it)
_ALL_AXES = frozenset({"Sum", "Mean", "Max", "Min", "Amax", "Amin", "Norm", "Logsumexp", "Var", "Std", "Prod", "Any",
                       "All", "Flip", "CountNonzero"})


def _graph_op_expression(op: str, name: str, flat: list, config: dict):
    """``keras.ops.<name>`` of weights alone in a traced call, as the graph op (its values and TensorFlow's
    gradients) on the weights with a batch axis of one put in front and the op's axes moved with them
    (``ops.norm(self.v, axis=0)``, ``ops.max``, ``ops.logsumexp``, ``ops.cumsum``, ``ops.sort``...); None where
    that does not apply (an operand that is not a weight, an axis that cannot move, several outputs)."""
    if not flat or not all(is_weight_valued(o) for o in flat):
        return None
    key = "axes" if op == "Moments" else "axis"
    axis, ndim = config.get(key), np.ndim(operand_value(flat[0]))
    if axis is None and key in config:
        if op not in _ALL_AXES:
            return None
        axis = list(range(ndim))
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if key in config and not all(isinstance(a, int) and not isinstance(a, bool) for a in axes):
        return None
    moved = [a + 1 if a >= 0 else a for a in axes]
    node_config = {**config, key: moved if isinstance(axis, (list, tuple)) else moved[0]} if key in config else config
    try:
        node = KerasOp(op, node_config)
    except UnsupportedKerasFeature:
        return None
    slots = [{TENSOR_KEY: k} for k in range(len(flat))]
    template = {"args": [slots] if op in _LIST_OPS else slots, "kwargs": {}}

    def forward(*arrays):
        return node.forward([np.asarray(a)[None] for a in arrays], template=template)[0][0]

    def backward(values, y, g):
        _, cache = node.forward([np.asarray(v)[None] for v in values], template=template)
        dx, _ = node.backward(np.asarray(g)[None], cache)
        return [None if d is None else d[0] for d in dx]

    try:
        if isinstance(node.forward([operand_value(o)[None] for o in flat], template=template)[0], list):
            return None  # (several outputs: split, top_k, moments)
        return WeightExpression(forward, backward, flat, f"keras.ops {name} of a weight")
    except (UnsupportedKerasFeature, ValueError):
        return None


def convert_to_numpy(x) -> np.ndarray:
    """Keras's ``keras.ops.convert_to_numpy``: ``x`` (an array, a model's output, a weight) as a plain NumPy array."""
    if _symbolic(x):
        raise TypeError("keras.ops convert_to_numpy: a symbolic tensor has no values yet (call the model on data)")
    if is_weight_valued(x):
        refuse_while_traced("ops.convert_to_numpy of a weight")
    return np.asarray(x)


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """Keras's ``keras.ops.convert_to_tensor``: ``x`` as an array with ``.numpy()`` (fastgru's tensors are NumPy
    arrays), cast to ``dtype`` when given; a symbolic tensor as it is."""
    if _symbolic(x):
        return x
    if is_weight_valued(x):
        if tracing() is not None:
            return x  # (a weight in a traced call stays one: differentiable, as Keras's tensor of it)
    if sparse or ragged:
        raise ValueError("keras.ops convert_to_tensor: fastgru has no sparse or ragged tensors")
    return keras_array(x, dtype).view(EagerArray)  # (Python numbers: float32/int32, as Keras's)


def ndim(x) -> int:
    """Keras's ``keras.ops.ndim``: the number of axes."""
    return len(shape(x))


def size(x):
    """Keras's ``keras.ops.size``: the number of items (None for a symbolic tensor's unknown sizes)."""
    dims = shape(x)
    return None if any(d is None for d in dims) else np.int32(np.prod(dims, dtype=np.int64))


def broadcast_to(x, shape):
    """Keras's ``keras.ops.broadcast_to`` on arrays (a weight in a call traced for training: a value from it)."""
    if _symbolic(x):
        raise UnsupportedKerasFeature("keras.ops broadcast_to of a symbolic tensor does not run in a fastgru graph "
                                      "(broadcasting operators do: x + zeros)")
    if is_weight_valued(x) and tracing() is not None:
        return op_expression("BroadcastTo", "broadcast_to", [x], lambda a: np.broadcast_to(a, shape), {})
    return eager(np.array(np.broadcast_to(keras_array(x), shape)))


def shape(x) -> tuple:
    """Keras's ``keras.ops.shape``: the shape as a tuple (None for a symbolic tensor's unknown sizes)."""
    return tuple(x.shape) if _symbolic(x) else tuple(np.shape(x))


def _creator(name: str, make, dtype_at: int):
    """Keras's ``keras.ops.<name>`` that makes an array from sizes (``ones``, ``arange``, ...): float32 by default,
    as Keras's floatx (integers for an integer ``arange``), as a constant NumPy array with ``.numpy()``
    (``dtype_at``: the position of its ``dtype`` among Keras's arguments, which may give it positionally)."""

    def function(*args, dtype=None, **kwargs):
        if len(args) > dtype_at:
            args, dtype = args[:dtype_at], args[dtype_at]
        if any(_symbolic(a) for a in (*args, *kwargs.values())):
            raise UnsupportedKerasFeature(f"keras.ops {name} of a symbolic tensor's sizes does not run in a fastgru "
                                          "graph (docs/functional.md lists the ops that do)")
        value = make(*args, **kwargs)
        if dtype is None:  # (Keras's floatx; an arange of integers int32; a range between float64 arrays float64)
            dtype = np.int32 if value.dtype.kind in "iu" and name == "arange" else np.float32
            if name.endswith("space") and any(getattr(a, "dtype", None) == np.float64 for a in args[:2]):
                dtype = np.float64
        return value.astype(np.dtype(dtype)).view(EagerArray)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Keras's ``keras.ops.{name}`` (an array, not a graph op)."
    return function


def _no_step(values):
    if isinstance(values, tuple):
        raise UnsupportedKerasFeature("keras.ops linspace with retstep=True (fastgru returns the values alone)")
    return values


def meshgrid(*x, indexing: str = "xy") -> list:
    """Keras's ``keras.ops.meshgrid`` of constant vectors (arrays, not graph ops): NumPy's grids."""
    if any(_symbolic(a) for a in x):
        raise UnsupportedKerasFeature("keras.ops meshgrid of symbolic tensors does not run in a fastgru graph")
    return [eager(g) for g in np.meshgrid(*[keras_array(a) for a in x], indexing=indexing)]


def einsum(subscripts: str, *operands):
    """Keras's ``keras.ops.einsum``: on symbolic tensors the ``Einsum`` op (one or two operands, explicit ``->``, the
    batch axis kept first), on arrays NumPy's (every axis an axis)."""
    if any(_symbolic(o) for o in operands):
        return _run("Einsum", list(operands), {"subscripts": subscripts})
    if tracing() is not None and any(is_weight_valued(o) for o in operands):
        refuse_while_traced("keras.ops einsum of weights alone")
    return eager(np.einsum(subscripts, *[keras_array(o) for o in operands]))


FUNCTIONS = {name: _function(name, params) for params, names in _SPECS for name in names.split()}
FUNCTIONS.update(convert_to_numpy=convert_to_numpy, convert_to_tensor=convert_to_tensor, shape=shape, einsum=einsum,
                 meshgrid=meshgrid, ndim=ndim, size=size, broadcast_to=broadcast_to,
                 abs=FUNCTIONS["absolute"], swish=FUNCTIONS["silu"],
                 hard_swish=FUNCTIONS["hard_silu"],
                 ones=_creator("ones", lambda shape: np.ones(shape), 1),
                 zeros=_creator("zeros", lambda shape: np.zeros(shape), 1),
                 full=_creator("full", lambda shape, fill_value: np.full(shape, fill_value), 2),
                 eye=_creator("eye", lambda N, M=None, k=0: np.eye(N, M, k), 3),
                 identity=_creator("identity", lambda n: np.identity(n), 1),
                 tri=_creator("tri", lambda N, M=None, k=0: np.tri(N, M, k), 3),  # (a causal mask's lower triangle)
                 arange=_creator("arange", lambda start, stop=None, step=1: np.arange(start, stop, step), 3),
                 linspace=_creator("linspace", lambda start, stop, num=50, endpoint=True, retstep=False, axis=0:
                                   _no_step(np.linspace(start, stop, num, endpoint, retstep, axis=axis)), 5),
                 logspace=_creator("logspace", lambda start, stop, num=50, endpoint=True, base=10, axis=0:
                                   np.logspace(start, stop, num, endpoint, base, axis=axis), 5),
                 geomspace=_creator("geomspace", lambda start, stop, num=50, endpoint=True, axis=0:
                                    np.geomspace(start, stop, num, endpoint, axis=axis), 4))


activations.OPS_FUNCTIONS.update(FUNCTIONS)  # (keras.activations.relu(h) of a symbolic tensor: ops.relu)


def install(module) -> None:
    """Put the functions on ``module`` (``fastgru.ops``), leaving its own names alone."""
    for name, function in FUNCTIONS.items():
        if not hasattr(module, name):
            setattr(module, name, function)
