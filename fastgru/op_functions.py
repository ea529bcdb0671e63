"""Keras's ``keras.ops`` functions that fastgru runs, on ``fastgru.ops`` (``import fastgru as keras``, then
``keras.ops.mean(h, axis=1)``): on symbolic tensors each records the op node Keras records (a
``fastgru.layers.KerasOp``, saved to and loaded from Keras files as Keras's), on arrays it computes at once with
the same code. Keras's names, argument names, order and defaults (``concatenate``'s axis is 0, as Keras's).

On arrays, as in a model, axis 0 is the batch axis: an op over it (``concatenate`` along axis 0, a reduction with
``axis=None``) raises ValueError (NumPy does those). Ops Keras has but fastgru does not run in a graph
(``arange``, ``shape``, ``einsum``, ...) are not here.
"""

from __future__ import annotations

import inspect

import numpy as np

from .eager import EagerArray, eager, keras_array
from .errors import UnsupportedKerasFeature
from .layers.keras_ops import ARRAY_KEY, TENSOR_KEY, KerasOp, numpy_constant
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
)


#: ops whose values on arrays are Keras's int32 indices and booleans (in a graph, fastgru carries them as floats)
_INDEX_RESULTS = frozenset({"Argmax", "Argmin", "Argsort"})
_BOOL_RESULTS = frozenset({"Greater", "GreaterEqual", "Less", "LessEqual", "Equal", "NotEqual", "LogicalAnd",
                           "LogicalOr", "LogicalXor", "LogicalNot", "Any", "All", "Isnan", "Isinf", "Isfinite",
                           "Signbit"})


def _symbolic(value) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_symbolic(v) for v in value)
    return bool(getattr(value, "_fg_symbolic", False))


def _run(op: str, tensor_args: list, config: dict):
    """``op`` on its tensor arguments: a graph node when one is symbolic, else the values computed now."""
    symbolic, tensors = _symbolic(tensor_args), []
    # on arrays, a layer's weight (a custom layer's ``ops.matmul(inputs, self.kernel)``) is a constant operand, as
    # in Keras's graph: the batch axis is the other operands'
    weights_constant = not symbolic and any(type(v) is not Variable and isinstance(v, np.ndarray) for v in tensor_args)

    def place(value, top: bool):
        if top and op in _LIST_OPS and isinstance(value, (list, tuple)):
            return [place(v, False) for v in value]
        if isinstance(value, (bool, int, float, np.number)) and not isinstance(value, np.ndarray):
            return value.item() if isinstance(value, np.number) else value
        if weights_constant and type(value) is Variable:
            return {ARRAY_KEY: np.asarray(value)}
        if symbolic and not getattr(value, "_fg_symbolic", False):  # (a constant operand in a graph)
            return numpy_constant(np.asarray(value))
        tensors.append(value if symbolic else keras_array(value))  # (Python numbers: float32/int32, as Keras)
        return {TENSOR_KEY: len(tensors) - 1}

    template = [place(v, i == 0) for i, v in enumerate(tensor_args)]
    if not tensors:
        raise TypeError(f"keras.ops {op}: give it a tensor or an array (fastgru runs ops on arrays, not numbers)")
    if symbolic:
        return KerasOp(op, config)(tensors, template={"args": template, "kwargs": {}})
    try:
        result = KerasOp(op, config)(tensors, template={"args": template, "kwargs": {}})
        if op in _INDEX_RESULTS or op in _BOOL_RESULTS:  # (on arrays, Keras's dtypes: a graph carries floats)
            result = result.astype(np.int32 if op in _INDEX_RESULTS else bool)
        return eager(result)
    except UnsupportedKerasFeature as exc:  # (an array's axis 0 is a batch, as a model's tensors')
        raise ValueError(f"{exc} — on arrays, fastgru's ops treat axis 0 as the batch axis, as in a model; use "
                         "NumPy for this one") from None


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
        config = {p: values[p] for p, d in params if d is not _T}
        return _run(op, [values[p] for p in tensor_names], config)

    function.__name__ = function.__qualname__ = name
    function.__signature__ = signature
    function.__doc__ = f"Keras's ``keras.ops.{name}``: the ``{op}`` op (a graph node on symbolic tensors)."
    return function


def convert_to_numpy(x) -> np.ndarray:
    """Keras's ``keras.ops.convert_to_numpy``: ``x`` (an array, a model's output, a weight) as a plain NumPy array."""
    if _symbolic(x):
        raise TypeError("keras.ops convert_to_numpy: a symbolic tensor has no values yet (call the model on data)")
    return np.asarray(x)


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """Keras's ``keras.ops.convert_to_tensor``: ``x`` as an array with ``.numpy()`` (fastgru's tensors are NumPy
    arrays), cast to ``dtype`` when given; a symbolic tensor as it is."""
    if _symbolic(x):
        return x
    if sparse or ragged:
        raise ValueError("keras.ops convert_to_tensor: fastgru has no sparse or ragged tensors")
    return keras_array(x, dtype).view(EagerArray)  # (Python numbers: float32/int32, as Keras's)


def shape(x) -> tuple:
    """Keras's ``keras.ops.shape``: the shape as a tuple (None for a symbolic tensor's unknown sizes)."""
    return tuple(x.shape) if _symbolic(x) else tuple(np.shape(x))


def _creator(name: str, make):
    """Keras's ``keras.ops.<name>`` that makes an array from sizes (``ones``, ``arange``, ...): float32 by default,
    as Keras's floatx (integers for an integer ``arange``), as a constant NumPy array with ``.numpy()``."""

    def function(*args, dtype=None, **kwargs):
        if any(_symbolic(a) for a in (*args, *kwargs.values())):
            raise UnsupportedKerasFeature(f"keras.ops {name} of a symbolic tensor's sizes does not run in a fastgru "
                                          "graph (docs/functional.md lists the ops that do)")
        value = make(*args, **kwargs)
        if dtype is None:
            dtype = np.int32 if value.dtype.kind in "iu" else np.float32
        return value.astype(np.dtype(dtype)).view(EagerArray)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Keras's ``keras.ops.{name}`` (an array, not a graph op)."
    return function


def einsum(subscripts: str, *operands):
    """Keras's ``keras.ops.einsum`` on arrays (NumPy's, full arrays: no batch axis of its own)."""
    if any(_symbolic(o) for o in operands):
        raise UnsupportedKerasFeature("keras.ops einsum of symbolic tensors does not run in a fastgru graph: use "
                                      "layers.EinsumDense, or ops.matmul/ops.dot (docs/functional.md)")
    return eager(np.einsum(subscripts, *[keras_array(o) for o in operands]))


FUNCTIONS = {name: _function(name, params) for params, names in _SPECS for name in names.split()}
FUNCTIONS.update(convert_to_numpy=convert_to_numpy, convert_to_tensor=convert_to_tensor, shape=shape, einsum=einsum,
                 abs=FUNCTIONS["absolute"], swish=FUNCTIONS["silu"],
                 ones=_creator("ones", lambda shape: np.ones(shape)),
                 zeros=_creator("zeros", lambda shape: np.zeros(shape)),
                 full=_creator("full", lambda shape, fill_value: np.full(shape, fill_value)),
                 eye=_creator("eye", lambda N, M=None, k=0: np.eye(N, M, k)),
                 arange=_creator("arange", lambda start, stop=None, step=1: np.arange(start, stop, step)))


def install(module) -> None:
    """Put the functions on ``module`` (``fastgru.ops``), leaving its own names alone."""
    for name, function in FUNCTIONS.items():
        if not hasattr(module, name):
            setattr(module, name, function)
