"""Activation functions as one table: each row binds a name and its aliases, the kernels' integer code,
the NumPy function (Dense, Activation layers) and its NumPy gradient.

Names follow Keras 3. ``hard_sigmoid`` is Keras 3's ``clip(x/6 + 0.5, 0, 1)``; Keras 2's
``clip(0.2x + 0.5, 0, 1)`` is available under the name ``hard_sigmoid_keras2`` (files written by
Keras 2 are mapped onto it when loaded). The kernels' versions (``fastgru._kernels.activations``:
``activate_inplace`` and ``derivative_from_output``) are tested against each row's NumPy function and
gradient automatically (``tests/test_activations_table.py``), so a new row is checked by adding it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._kernels import activations as _k
from .eager import eager, keras_array
from .errors import UnsupportedKerasFeature
from .tracing import is_weight_valued, tracing


def _erf(x):
    """scipy.special.erf, imported on first use (scipy.special costs ~0.2 s at import; only gelu needs it)."""
    from scipy.special import erf

    return erf(x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows: 1 / (1 + e) where x >= 0, e / (1 + e) below (the same numbers as splitting the
    # array by sign, without its fancy indexing: 2.7x faster)
    e = np.exp(-np.abs(x))
    d = e + x.dtype.type(1)
    out = np.divide(e, d)
    np.divide(x.dtype.type(1), d, out=out, where=x >= 0)
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _selu(x: np.ndarray) -> np.ndarray:
    s, a = x.dtype.type(_k.SELU_SCALE), x.dtype.type(_k.SELU_ALPHA)
    return s * np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def _selu_grad(x, y, dy):
    s, a = x.dtype.type(_k.SELU_SCALE), x.dtype.type(_k.SELU_ALPHA)
    return dy * np.where(x >= 0, s, y + s * a)  # (TensorFlow's SeluGrad: the scale at 0)


def _swish_grad(x, y, dy):
    sg = _sigmoid(x)
    return dy * (sg * (1 + x * (1 - sg)))


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype, copy=False)


def _gelu_grad(x, y, dy):
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    cdf = 0.5 * (1 + _erf(x / np.sqrt(2)))
    return (dy * (cdf + x * pdf)).astype(x.dtype, copy=False)


def _step(x, lo, hi, slope):
    return np.where((x > lo) & (x < hi), x.dtype.type(slope), x.dtype.type(0))


def _c(x, value):
    """``value`` in x's dtype (keeps float32 arithmetic float32)."""
    return x.dtype.type(value)


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _mish_grad(x, y, dy):
    t = np.tanh(_softplus(x))
    return dy * (t + x * (1 - t * t) * _sigmoid(x))


def _hard_sigmoid3(x):
    return np.clip(x / _c(x, 6.0) + _c(x, 0.5), 0, 1)


@dataclass(frozen=True)
class Activation:
    """One activation.

    Attributes:
        name: the canonical (Keras 3) name.
        code: the kernels' integer code (``fastgru._kernels.activations``), or None where no
            recurrent kernel may use it (softmax normalises over units, not per element).
        forward: ``y = act(x)`` in NumPy, x's dtype kept.
        gradient: ``dL/dx`` from ``(x, y, dy)``.
        aliases: other names Keras accepts for it.
    """

    name: str
    code: int | None
    forward: Callable[[np.ndarray], np.ndarray]
    gradient: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    aliases: tuple = ()


TABLE: tuple[Activation, ...] = (
    Activation("linear", _k.LINEAR, lambda x: x, lambda x, y, dy: dy, aliases=(None, "None")),
    Activation("tanh", _k.TANH, np.tanh, lambda x, y, dy: dy * (1 - y * y)),
    Activation("sigmoid", _k.SIGMOID, _sigmoid, lambda x, y, dy: dy * y * (1 - y)),
    Activation("hard_sigmoid", _k.HARD_SIGMOID,
               lambda x: np.clip(x / x.dtype.type(6.0) + x.dtype.type(0.5), 0, 1),
               lambda x, y, dy: dy * _step(x, -3, 3, 1 / 6)),
    Activation("hard_sigmoid_keras2", _k.HARD_SIGMOID_KERAS2,
               lambda x: np.clip(x.dtype.type(0.2) * x + x.dtype.type(0.5), 0, 1),
               lambda x, y, dy: dy * _step(x, -2.5, 2.5, 0.2)),
    Activation("relu", _k.RELU, lambda x: np.maximum(x, 0), lambda x, y, dy: dy * (x > 0)),
    Activation("softsign", _k.SOFTSIGN, lambda x: x / (1 + np.abs(x)), lambda x, y, dy: dy / (1 + np.abs(x)) ** 2),
    Activation("elu", _k.ELU, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
               lambda x, y, dy: dy * np.where(x > 0, 1, y + 1)),
    Activation("selu", _k.SELU, _selu, _selu_grad),
    Activation("softplus", _k.SOFTPLUS, lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
               lambda x, y, dy: dy * _sigmoid(x)),
    Activation("swish", _k.SWISH, lambda x: x * _sigmoid(x), _swish_grad, aliases=("silu",)),
    Activation("gelu", _k.GELU, _gelu, _gelu_grad),
    Activation("softmax", None, _softmax, lambda x, y, dy: y * (dy - np.sum(dy * y, axis=-1, keepdims=True))),
    # Keras 3's other activations: those with a code run inside a recurrent cell too (mish and hard_silu for
    # inference only: their derivative does not follow from their output); code None, not inside one
    Activation("relu6", _k.RELU6, lambda x: np.clip(x, 0, 6), lambda x, y, dy: dy * ((x > 0) & (x < 6))),
    Activation("leaky_relu", _k.LEAKY_RELU, lambda x: np.where(x > 0, x, _c(x, 0.2) * x),
               lambda x, y, dy: dy * np.where(x > 0, _c(x, 1.0), _c(x, 0.2))),
    Activation("mish", _k.MISH, lambda x: x * np.tanh(_softplus(x)), _mish_grad),
    Activation("log_softmax", None, _log_softmax,
               lambda x, y, dy: dy - np.exp(y) * np.sum(dy, axis=-1, keepdims=True)),
    Activation("exponential", _k.EXPONENTIAL, np.exp, lambda x, y, dy: dy * y),
    # (TensorFlow's clip passes the gradient at its bounds, and its maximum and minimum both at a tie:
    # celu'(0) is 1 + 1)
    Activation("hard_tanh", _k.HARD_TANH, lambda x: np.clip(x, -1, 1), lambda x, y, dy: dy * ((x >= -1) & (x <= 1))),
    Activation("celu", _k.CELU, lambda x: np.maximum(x, 0) + np.expm1(np.minimum(x, 0)),
               lambda x, y, dy: dy * ((x >= 0).astype(x.dtype) + np.where(x <= 0, np.exp(np.minimum(x, 0)),
                                                                          _c(x, 0.0)))),
    Activation("hard_silu", _k.HARD_SILU, lambda x: x * _hard_sigmoid3(x),
               lambda x, y, dy: dy * (_hard_sigmoid3(x) + x * _step(x, -3, 3, 1 / 6)), aliases=("hard_swish",)),
    Activation("sparse_plus", _k.SPARSE_PLUS,
               lambda x: np.where(x <= -1, _c(x, 0), np.where(x < 1, _c(x, 0.25) * (x + 1) ** 2, x)),
               lambda x, y, dy: dy * np.where(x <= -1, _c(x, 0), np.where(x < 1, _c(x, 0.5) * (x + 1), _c(x, 1)))),
    Activation("squareplus", _k.SQUAREPLUS, lambda x: (x + np.sqrt(x * x + _c(x, 4.0))) / _c(x, 2.0),
               lambda x, y, dy: dy * _c(x, 0.5) * (1 + x / np.sqrt(x * x + _c(x, 4.0)))),
    Activation("tanh_shrink", None, lambda x: x - np.tanh(x), lambda x, y, dy: dy * np.tanh(x) ** 2),
    Activation("log_sigmoid", _k.LOG_SIGMOID, lambda x: -_softplus(-x), lambda x, y, dy: dy * _sigmoid(-x)),
    Activation("soft_shrink", None,
               lambda x: np.where(x > 0.5, x - _c(x, 0.5), np.where(x < -0.5, x + _c(x, 0.5), _c(x, 0))),
               lambda x, y, dy: dy * (np.abs(x) > 0.5)),
    Activation("hard_shrink", None, lambda x: np.where(np.abs(x) > 0.5, x, _c(x, 0)),
               lambda x, y, dy: dy * (np.abs(x) > 0.5)),
    Activation("sparse_sigmoid", None,
               lambda x: np.where(x <= -1, _c(x, 0), np.where(x >= 1, _c(x, 1), _c(x, 0.5) * (x + 1))),
               lambda x, y, dy: dy * _step(x, -1, 1, 0.5)),
)

#: canonical name -> row
BY_NAME: dict[str, Activation] = {row.name: row for row in TABLE}
#: every accepted spelling (canonical names and aliases) -> canonical name
ALIASES: dict = {alias: row.name for row in TABLE for alias in row.aliases}
#: kernel code of every activation a recurrent kernel may use
CODES: dict[str, int] = {row.name: row.code for row in TABLE if row.code is not None}
#: every name Dense accepts (the recurrent layers accept all but softmax)
SUPPORTED = tuple(sorted(BY_NAME))


class NamedActivation(str):
    """An activation's canonical name that is also its function, as Keras's ``layer.activation`` is one: the name
    everywhere a string is read (configs, comparisons, dict keys), ``layer.activation(x)`` and
    ``layer.activation.__name__`` as on Keras's function."""

    __slots__ = ()

    @property
    def __name__(self) -> str:  # (an instance's: the class keeps its own)
        return str(self)

    def __call__(self, x, **options):
        return globals()[str(self)](x, **options)

    def __reduce__(self):
        return NamedActivation, (str(self),)


_NAMED = {name: NamedActivation(name) for name in BY_NAME}


def canonical_name(name) -> str:
    """Return the canonical activation name for ``name`` (str, None, a function, or a Keras-style dict), as a
    :class:`NamedActivation` (a str that calls the activation)."""
    if isinstance(name, dict):  # Keras serialises some activations as {"class_name": ..., "config": ...}
        config = name.get("config")
        name = config.get("name", name.get("class_name")) if isinstance(config, dict) else name.get("class_name")
    if callable(name) and hasattr(name, "__name__"):
        name = name.__name__
    if name is not None and not isinstance(name, str):
        raise UnsupportedKerasFeature(f"activation {name!r:.80} is not supported: expected an activation name")
    name = ALIASES.get(name, name)
    if name not in BY_NAME:
        raise UnsupportedKerasFeature(
            f"activation {name!r} is not supported; supported activations: {', '.join(SUPPORTED)}"
        )
    return _NAMED[name]


def kernel_code(name) -> int:
    """Integer code of a recurrent activation (softmax is not allowed inside a recurrent cell)."""
    row = BY_NAME[canonical_name(name)]
    if row.code is None:
        raise UnsupportedKerasFeature(f"activation {row.name!r} is not supported inside a recurrent cell")
    return row.code


def kernel_code_name(name) -> str:
    """The canonical name of an activation a recurrent kernel may use (refuses softmax)."""
    kernel_code(name)
    return canonical_name(name)


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """Return ``act(x)`` as an array of x's dtype (x itself for linear)."""
    return BY_NAME[canonical_name(name)].forward(x)


def gradient(name: str, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Backpropagate ``dy`` through ``y = act(x)``: return ``dL/dx`` (same shape as x)."""
    return BY_NAME[canonical_name(name)].gradient(x, y, dy)


#: the ``keras.ops`` functions (``fastgru.op_functions`` puts them here): an activation of a symbolic tensor is one
OPS_FUNCTIONS: dict = {}
#: activations whose keras.ops function has another name or other defaults
_AS_OPS = {"exponential": ("exp", {}), "swish": ("silu", {}), "hard_swish": ("hard_silu", {}),
           "gelu": ("gelu", {"approximate": False})}


def _as_op(name: str, x):
    if name == "linear":
        return x
    op, options = _AS_OPS.get(name, (name, {}))
    function = OPS_FUNCTIONS.get(op)
    if function is None:
        raise UnsupportedKerasFeature(f"keras.activations.{name} of a symbolic tensor (or a weight in a custom layer's "
                                      "call traced for training) has no keras.ops counterpart in fastgru: use the "
                                      "activation's formula in keras.ops")
    return function(x, **options)


def _relu_with_options(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras's ``activations.relu`` with options, composed of ``keras.ops`` as Keras composes it (``ReLU.static_call``):
    on arrays, symbolic tensors and a traced call's weights alike."""
    op = OPS_FUNCTIONS
    x = keras_array(x) if not (getattr(x, "_fg_symbolic", False) or is_weight_valued(x)) else x
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return op["leaky_relu"](x, negative_slope=negative_slope)
        negative_part = op["relu"](op["add"](op["negative"](x), threshold) if threshold != 0 else op["negative"](x))
    if threshold != 0:
        dtype = str(x.dtype)
        x = op["multiply"](x, op["cast"](op["greater"](x, np.asarray(threshold, dtype)), dtype))
    elif max_value == 6:
        x, max_value = op["relu6"](x), None
    else:
        x = op["relu"](x)
    if max_value is not None:  # (integers stay integers, as Keras's)
        whole = np.dtype(str(x.dtype)).kind in "iu"
        x = op["clip"](x, 0 if whole else 0.0, int(max_value) if whole else float(max_value))
    if negative_slope != 0.0:
        x = op["subtract"](x, op["multiply"](negative_part, negative_slope))
    return x


def _keras_function(name: str):
    """Keras's ``keras.activations.<name>(x)``: the activation of an array at once (with Keras's ``.numpy()``)."""

    def function(x, **options):
        if name == "relu" and options:  # (negative_slope, max_value, threshold: Keras's composition of ops)
            return _relu_with_options(x, **options)
        if options and not (set(options) == {"axis"} and options["axis"] == -1):
            op, fixed = _AS_OPS.get(name, (name, {}))
            ops_function = OPS_FUNCTIONS.get(op)
            if ops_function is None or not set(options) <= set(inspect.signature(ops_function).parameters):
                raise UnsupportedKerasFeature(f"keras.activations.{name} with options {options}: fastgru has the "
                                              "activation at Keras's defaults, or as its keras.ops function")
            return ops_function(x, **{**fixed, **options})  # (softmax(x, axis=1), elu(x, alpha=0.5), ...)
        if getattr(x, "_fg_symbolic", False) or (tracing() is not None and is_weight_valued(x)):
            return _as_op(name, x)  # (a graph's tensor, a weight in a traced call: the keras.ops function)
        x = keras_array(x)
        return eager(BY_NAME[name].forward(x if x.dtype.kind == "f" else x.astype(np.float32)))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Keras's ``keras.activations.{name}(x)``, on an array."
    return function


# fg.activations.relu(x), as keras.activations.relu (a name the module has already wins)
for _alias, _name in {**{n: n for n in BY_NAME}, **ALIASES}.items():
    if isinstance(_alias, str) and _alias.isidentifier() and _alias not in globals():
        globals()[_alias] = _keras_function(_name)


def get(identifier):
    """Keras's ``keras.activations.get``: the activation function for a name (``"relu"``), a Keras dict, or None
    (``linear``); a callable as it is."""
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    return globals()[canonical_name(identifier)]


def serialize(activation) -> str:
    """Keras's ``keras.activations.serialize``: the activation's name (Keras's: ``silu`` for ``swish``)."""
    name = canonical_name(activation)
    return {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name)


def deserialize(config, custom_objects=None):
    """Keras's ``keras.activations.deserialize``: the function for a name or a Keras dict."""
    if custom_objects and isinstance(config, str) and config in custom_objects:
        return custom_objects[config]
    return get(config)
