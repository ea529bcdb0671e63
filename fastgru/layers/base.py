"""The Layer base class: naming, weights in Keras's order, config round trip, training hooks.

A layer holds its weights as NumPy arrays in ``self._params`` (ordered as Keras orders them),
computes in float32 unless given float64 inputs, and exposes two call paths:

* ``call(x, mask=None, training=False)`` — inference, returns the output array;
* ``forward(x, mask=None, training=True)`` → ``(y, cache)`` and ``backward(dy, cache)`` →
  ``(dx, grads)`` — training, where ``grads`` is aligned with ``trainable_weights``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from .. import initializers, keras_masks
from .._kernels.aligned import aligned_copy
from ..eager import eager
from ..errors import UnsupportedKerasFeature
from ..tracing import layer_expression, tracing
from ..variables import VariableLists, variable_of
from .build_settings import WeightBudgetExceeded, thread_settings
from .custom import frozen_weight_names, is_user_class, keras_add_weight, prepare_user_class
from .dtypes import compute_dtype, layer_dtype  # noqa: F401  (compute_dtype: the layers import it from here)
from .names import _name_counts, snake_case, unique_name  # noqa: F401  (the layers import them from here)
from .registry import without_fixed_options
from .shared_lock import SharedLock
from .weight_options import WeightOptions

#: held while a layer or model builds itself on its first call (threads racing to build build once)
BUILD_LOCK = threading.RLock()


def weights_lock(obj) -> SharedLock:
    """``obj``'s SharedLock (made once, on first use, even when threads race to make it)."""
    lock = obj.__dict__.get("_weights_lock")
    return lock if lock is not None else obj.__dict__.setdefault("_weights_lock", SharedLock())


def checked_name(name, owner: str):
    """``name`` if it is None or a string (as Keras requires: a file stores names as strings), else TypeError."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{owner}: name must be a string, received {type(name).__name__} {name!r}")
    return name


_symbolic_call_hook: list = []


class _PropagatedMask:
    """An entry of an explicit ``mask=`` list that stands for the mask its input carries: a Keras file's mask op that
    fastgru does not compute (Keras 3 records ``Embedding(mask_zero=True)``'s ``x != 0`` so), replayed as the
    propagated mask, which is what it computes."""

    def __repr__(self) -> str:
        return "PROPAGATED_MASK"


PROPAGATED_MASK = _PropagatedMask()

def install_symbolic_call(fn) -> None:
    """fastgru.functional hands the layers its ``symbolic_call`` at import (the layers do not import the
    graph module: no import cycle). Symbolic tensors exist only once it is imported."""
    _symbolic_call_hook[:] = [fn]


def record_symbolic_call(layer, inputs, **kwargs):
    """Record ``layer`` called on symbolic tensors as a node of a Functional graph (fastgru.functional)."""
    if not _symbolic_call_hook:
        raise RuntimeError("symbolic tensors need fastgru.functional (import fastgru)")
    return _symbolic_call_hook[0](layer, inputs, **kwargs)


def _symbolic(x) -> bool:
    """True for a symbolic tensor of the Functional API (or an Input layer), or a list holding one."""
    if getattr(x, "_fg_symbolic", False):
        return True
    return isinstance(x, (list, tuple)) and any(getattr(v, "_fg_symbolic", False) for v in x)


class WrapperTrainable:
    """``trainable`` of a layer or model holding others (``_wrapped``: the attributes holding them, a layer or a
    list of layers): setting it sets theirs too, as Keras's (freezing an encoder freezes its layers, and a frozen
    BatchNormalization inside runs in inference mode during fit). A constructor's value is not passed down:
    a model built from a file keeps each layer's own flag."""

    _wrapped: tuple = ()

    @property
    def trainable(self) -> bool:
        return self.__dict__.get("_trainable", True)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.__dict__["_trainable"] = bool(value)
        for attr in self._wrapped:
            inner = self.__dict__.get(attr)
            for layer in inner if isinstance(inner, list) else [] if inner is None else [inner]:
                layer.trainable = bool(value)


def call_on_list_carrying(layer, inputs: list, arrays: list, mask=None, training: bool = False, **kwargs):
    """:func:`call_on_list` of an eager call on the list ``inputs`` (``arrays``: as arrays): the masks the inputs
    carry read when none is given, the output carrying the mask :meth:`Layer.compute_mask` gives (``keras_masks``)."""
    mask = keras_masks.carried(inputs) if mask is None else mask
    out = call_on_list(layer, arrays, mask=mask, training=training, **kwargs)
    return out if mask is None else keras_masks.carrying(out, layer.compute_mask(arrays, mask))


def call_on_list(layer, arrays: list, mask=None, training: bool = False, **kwargs):
    """The eager call of a layer taking a list of arrays (merges, attention, Keras ops): built from the arrays'
    shapes on first use (batch axis unknown), then ``layer.call`` under the weights' shared lock."""
    if not layer.built:
        with BUILD_LOCK:
            if not layer.built:
                layer.build([(None,) + a.shape[1:] for a in arrays])
    with weights_lock(layer).shared:
        return layer.call(arrays, mask=mask, training=training, **kwargs)


#: options Keras 3's get_config writes that change nothing at these values (a Keras config given to from_config)
_KERAS_DEFAULT_KEYS = {"quantization_config": None, "optional": False, "ragged": False, "sparse": False,
                      "autocast": True}



def weights_list(weights, owner: str) -> list:
    """``list(weights)``, or a TypeError naming the owner when ``weights`` is not a list of arrays."""
    if not hasattr(weights, "__iter__") or isinstance(weights, (str, bytes, dict)):
        raise TypeError(f"{owner}: set_weights expects a list of arrays (as get_weights returns), received "
                        f"{type(weights).__name__}")
    return list(weights)

class _WeightAttribute:
    """``layer.kernel`` and the like: the live weight of that Keras name (what ``weights`` holds), None where the
    options leave it out (``Dense(use_bias=False).bias``, as Keras's). A non-data descriptor, so an instance
    attribute of the same name (an option) wins, and a missing attribute costs nothing more than before."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        params = layer.__dict__.get("_params", {})
        if self.name in params:
            return variable_of(layer, self.name, params[self.name])
        if layer.__dict__.get("built"):
            return None
        raise AttributeError(f"Layer {layer.__dict__.get('name')!r} has no {self.name!r} yet: its weights are made "
                             f"when it is built (on its first call, or by build(input_shape))")


class Layer(VariableLists, WeightOptions):
    """Base class of fastgru layers (see the module docstring for the contract)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if is_user_class(cls):  # a script's own layer, written as for Keras (fastgru.layers.custom)
            prepare_user_class(cls, Layer)
        for name in cls.weight_names:  # Keras's attributes for the weights (``_WeightAttribute``)
            if name.isidentifier() and not any(name in vars(c) for c in cls.__mro__):
                setattr(cls, name, _WeightAttribute(name))

    #: names of the weights in Keras's get_weights order; subclasses override
    weight_names: tuple[str, ...] = ()
    #: a Keras operation (``h[:, -1]``, ``a + b``, ``keras.ops.mean``) rather than a layer: left out of
    #: ``model.layers``, as Keras 3 leaves its operations out
    keras_operation = False
    supports_masking = False
    #: Keras's weight-regularizer options this layer takes, option -> weight name
    #: (``{"kernel_regularizer": "kernel"}``); every layer also takes ``activity_regularizer``
    #: (fastgru.regularizers; applied in training by fastgru.training.regularization)
    regularizer_options: dict = {}

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype=None,
        trainable: bool = True,
        input_shape: tuple | None = None,
        batch_input_shape: tuple | None = None,
        batch_size: int | None = None,
        input_dim: int | None = None,
        **kwargs: Any,
    ):
        kwargs.pop("input_length", None)  # accepted for Keras 2 compatibility
        for key, default in _KERAS_DEFAULT_KEYS.items():  # (Keras 3 configs: options at a value that changes nothing)
            if key in kwargs and kwargs[key] == default:
                del kwargs[key]
        self._take_regularizers(kwargs)
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments: {sorted(kwargs)}")
        self.name = checked_name(name, type(self).__name__) or unique_name(snake_case(type(self).__name__))
        if isinstance(dtype, dict):  # Keras 3 DTypePolicy config (a quantized one refused, as in a file)
            policy = dtype.get("config") if isinstance(dtype.get("config"), dict) else {}
            if "Quantized" in str(dtype.get("class_name")) or "mode" in policy:
                raise UnsupportedKerasFeature(f"{type(self).__name__}: a quantized dtype policy "
                                              f"({dtype.get('class_name')}) is not supported")
            dtype = policy.get("name", "float32")
        self.dtype = layer_dtype(getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype, self.name)
        self.trainable = trainable
        self.built = False
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self._params: dict[str, np.ndarray] = {}
        if batch_input_shape is not None:
            self._declared_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._declared_input_shape = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            self._declared_input_shape = (batch_size, input_dim)
        else:
            self._declared_input_shape = None

    # ---- building -------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: tuple):
        return tuple(input_shape)

    def add_weight(self, *args, **kwargs):
        """Keras 3's ``add_weight(shape=None, initializer=None, dtype=None, trainable=True, regularizer=None,
        constraint=None, name=None)``, for a custom layer's ``build``: the new weight's variable
        (``fastgru.layers.custom.keras_add_weight``)."""
        return keras_add_weight(self, *args, **kwargs)

    def _add_weight(self, name: str, shape: tuple, initializer, rng: np.random.Generator) -> np.ndarray:
        left = getattr(thread_settings, "left", None)
        if left is not None:
            count = math.prod(int(d) for d in shape)
            if count > left:
                raise WeightBudgetExceeded(f"layer {self.name!r} weight {name!r} of shape {tuple(shape)} exceeds "
                                           f"the weight budget ({left} elements left)")
            thread_settings.left = left - count
        if getattr(thread_settings, "placeholder", False):
            value = np.zeros(tuple(shape), self.dtype)
        else:
            # np.array, not np.ascontiguousarray: a scalar weight (shape ()) stays 0-d, as Keras's
            value = np.array(initializers.get(initializer)(tuple(shape), self.dtype, rng), dtype=self.dtype, order="C")
        # on a cache line: the inference loops read small kernels in place (``_kernels.packed.operand``)
        value = aligned_copy(value)
        self._params[name] = value
        return value

    # ---- weights --------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """The live weights as Keras's variables (``fastgru.variables.Variable``: views of the arrays the
        optimizers update in place, with ``name``, ``path``, ``numpy()`` and ``assign``), in Keras's order."""
        params = self._params
        return [variable_of(self, n, params[n]) for n in self.weight_names if n in params]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        frozen = frozen_weight_names(self) if self.trainable else ()  # (a custom layer's add_weight(trainable=False))
        return [] if not self.trainable else [w for w in self.weights if w.__dict__["_fg_weight"] not in frozen]

    @property
    def weight_paths(self) -> list[str]:
        """Names of the weights present, aligned with ``weights``."""
        return [n for n in self.weight_names if n in self._params]

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in (Keras's ``layer.compute_dtype``; float64 inputs compute in float64)."""
        return self.dtype.name

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layer's weights (Keras's ``layer.variable_dtype``)."""
        return self.dtype.name

    def get_weights(self) -> list[np.ndarray]:
        return [np.array(w, copy=True) for w in self.weights]  # (plain arrays, not variables)

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (Keras order, same shapes) into the layer; arrays keep their identity.

        Every array is checked before any is copied (a refused call changes nothing), and the copy
        waits for calls of this layer (``layer(x)``) that are running, so each call uses one weight set.
        """
        self._copy_weights(self._check_weights(weights))

    def _check_weights(self, weights) -> list[np.ndarray]:
        """``weights`` checked against this layer's (count, shape, real numeric dtype, finite); nothing copied."""
        current = self.weights
        weights = weights_list(weights, f"Layer {self.name!r}")
        if len(weights) != len(current):
            raise ValueError(
                f"Layer {self.name!r} expects {len(current)} weights "
                f"({', '.join(self.weight_paths)}), but received {len(weights)}"
            )
        checked = []
        for name, dst, src in zip(self.weight_paths, current, weights):
            src = np.asarray(src)
            if src.shape != dst.shape:
                raise ValueError(
                    f"Layer {self.name!r} weight {name!r}: expected shape {dst.shape}, received {src.shape}"
                )
            if src.dtype.kind not in "fiu":
                raise TypeError(f"Layer {self.name!r} weight {name!r}: expected a real numeric array (float or "
                                f"integer), received dtype {src.dtype}")
            if not np.all(np.isfinite(src)):
                raise ValueError(f"Layer {self.name!r} weight {name!r} contains NaN or infinite values")
            if src.dtype.kind == "f" and dst.dtype.kind == "f" and src.size and src.dtype.itemsize > dst.dtype.itemsize:
                largest, limit = float(np.max(np.abs(src))), float(np.finfo(dst.dtype).max)
                if largest > limit:  # (infinite once copied)
                    raise ValueError(f"Layer {self.name!r} weight {name!r}: values up to {largest:.3g} do not fit the "
                                     f"layer's {dst.dtype} (largest {limit:.3g})")
            checked.append(src)
        self._check_weight_values(dict(zip(self.weight_paths, checked)))
        return checked

    def _assign_weight(self, weight: str, value: np.ndarray) -> None:
        """``Variable.assign``: ``value`` into the weight named ``weight``, checked as by ``set_weights``."""
        paths = self.weight_paths
        values = [value if path == weight else w for path, w in zip(paths, self.weights)]
        checked = self._check_weights(values)
        with weights_lock(self).exclusive:
            np.copyto(self._params[weight], checked[paths.index(weight)], casting="unsafe")
            self._weights_changed()

    def _check_weight_values(self, named: dict) -> None:
        """Hook: refuse values a layer cannot hold (e.g. a negative variance), by weight name."""

    def _copy_weights(self, checked: list[np.ndarray]) -> None:
        with weights_lock(self).exclusive:
            for dst, src in zip(self.weights, checked):
                np.copyto(dst, src, casting="unsafe")
            self._weights_changed()

    def _weights_changed(self) -> None:
        """Hook for layers that cache derived weight arrays."""

    def count_params(self) -> int:
        """The number of scalars in the layer's weights; a ValueError before it is built, as Keras's."""
        if not self.built:
            raise ValueError(f"You tried to call count_params on layer {self.name!r}, but the layer isn't built: build "
                             "it first (layer.build(input_shape), or call it on data)")
        return int(sum(w.size for w in self.weights))

    # ---- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras 3 style config: every constructor argument, so ``from_config`` rebuilds the layer."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        if self._declared_input_shape is not None:
            config["batch_input_shape"] = list(self._declared_input_shape)
        config.update(self._regularizer_config())
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**without_fixed_options(cls, config))

    # ---- calling ----------------------------------------------------------------------------
    def ensure_built(self, x_shape: tuple) -> None:
        if not self.built:
            with BUILD_LOCK:  # threads racing on the first call build once
                if not self.built:
                    self.build((None,) + tuple(x_shape[1:]))

    def __call__(self, inputs, mask=None, training: bool = False, **kwargs):
        x = inputs  # (Keras's name for it: layer(inputs=x) as layer(x))
        if not isinstance(x, np.ndarray) and _symbolic(x):  # Functional API: record a node (fastgru.functional)
            return record_symbolic_call(self, x, mask=mask, training=training, **kwargs)
        if tracing() is not None and self.weights:  # (in a traced call, on a constant: a value from its weights)
            return layer_expression(self, x)
        # (its input's mask, as Keras reads it: given to the call where it gets one tensor only, not beside an
        # initial_state; its output's mask computed from it either way)
        previous = keras_masks.carried(x) if mask is None else mask
        if not any(isinstance(v, np.ndarray) or (isinstance(v, (list, tuple)) and any(
                isinstance(a, np.ndarray) for a in v)) for v in kwargs.values()):  # (initial_state=[h]: a tensor)
            mask = previous
        if isinstance(x, (list, tuple)) and getattr(self, "_fg_user_layer", False):  # (a custom layer's list input)
            x = [np.asarray(a) for a in x]
            return self._eager_output(x, previous, call_on_list(self, x, mask=mask, training=training, **kwargs))
        x = x if getattr(self, "takes_strings", False) else np.asarray(x)  # (strings: kept whole, as objects)
        self.ensure_built(np.shape(x))
        with weights_lock(self).shared:  # set_weights waits: the call uses one weight set
            return self._eager_output(x, previous, self.call(x, mask=mask, training=training, **kwargs))

    def _eager_output(self, x, mask, out):
        """An eager call's output as arrays with Keras's ``.numpy()``, carrying the mask :meth:`compute_mask` gives
        (Keras's layers leave theirs on the tensors they return: ``keras_masks``)."""
        if getattr(self, "_fg_user_layer", False):  # (Keras's _set_mask_metadata: the masks its outputs carry first)
            return keras_masks.carrying(eager(out), self.compute_mask(x, mask, eager=True))
        if mask is None and type(self).compute_mask is Layer.compute_mask:
            return eager(out)
        return keras_masks.carrying(eager(out), self.compute_mask(x, mask))

    @property
    def output(self):
        """The symbolic output of the layer's first call in a graph (Keras's ``Layer.output``: a tensor, or the list
        of its outputs), e.g. to build a feature extractor ``Model(model.input, layer.output)``."""
        node = self._first_node("output")
        return node.outputs if node.list_outputs else node.outputs[0]

    @property
    def input(self):
        """The symbolic input of the layer's first call in a graph (Keras's ``Layer.input``: a tensor, or a list)."""
        node = self._first_node("input")
        return list(node.args) if node.list_args or not node.args else node.args[0]  # (an InputLayer's: [])

    def _first_node(self, what: str):
        nodes = self.__dict__.get("_inbound_nodes")
        if not nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called in a graph and thus has no defined {what}")
        return nodes[0]

    def call(self, x: np.ndarray, mask=None, training: bool = False):
        raise NotImplementedError

    def compute_mask(self, x: np.ndarray, mask=None):
        """Mask passed to the next layer: the incoming one if the layer supports masking, else None."""
        return mask if self.supports_masking else None

    # ---- training -----------------------------------------------------------------------------
    def forward(self, x: np.ndarray, mask=None, training: bool = True):
        """Training forward: return ``(y, cache)``; the default keeps nothing (no weights)."""
        return self.call(x, mask=mask, training=training), None

    def backward(self, dy: np.ndarray, cache, need_dx: bool = True) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Return ``(dL/dx, [dL/dw for w in trainable_weights])``; layers may return dL/dx = None
        when ``need_dx`` is False (the model's first layer: nobody needs the input gradient)."""
        raise NotImplementedError(f"{type(self).__name__} has no backward pass")

    def __reduce__(self):
        """Pickle as class + config + weights (fastgru._pickle); subclasses need nothing more."""
        from .._pickle import reduce_layer

        return reduce_layer(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
