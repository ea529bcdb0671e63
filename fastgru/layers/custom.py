"""Keras-style custom layers: a subclass of ``fastgru.layers.Layer`` written as for Keras — ``__init__`` passing
``**kwargs`` to ``super().__init__``, ``build(input_shape)`` making weights with ``self.add_weight(shape=...,
initializer=..., trainable=...)``, ``call(self, inputs)`` computing with ``fg.ops`` (or NumPy) — runs in a
``Sequential``, in a Functional graph and on its own, for inference.

:func:`prepare_user_class` (called by ``Layer.__init_subclass__`` for classes defined outside fastgru) adapts such
a class: its ``call`` takes the ``mask``/``training`` arguments fastgru passes only where it declares them, its
``build`` ends as fastgru's (input and output shapes recorded), and its output shape, which Keras finds by tracing
the call, is found by calling it on zeros of two sizes (:func:`probed_output_shape`). fastgru has no gradient for
Python code: training traces the call into a graph of the ops it applies to its input (``custom_training``).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from .. import constraints, initializers, keras_masks, regularizers
from ..eager import eager, plain
from ..errors import UnsupportedKerasFeature
from ..random import make_rng
from ..tensor_arguments import TENSORS_KEY, gathered, unpacked
from ..variables import variable_of
from .batch_totals import add_traced_loss
from .custom_shapes import _shape_only, _spread, build_by_run, probed_output_shape
from .custom_training import backward_traced, forward_traced, traced_logits_activation
from .names import snake_case


def is_user_class(cls) -> bool:
    """A class defined outside the fastgru package (a script's or an application's own layer)."""
    module = cls.__module__ or ""
    return module != "fastgru" and not module.startswith("fastgru.")


def prepare_user_class(cls, base) -> None:
    """Adapt ``cls`` (a user's subclass of ``base``, fastgru's ``Layer``) as the module docstring says."""
    cls._fg_user_layer = True  # (load_model's custom_objects may name it: registry.custom_layers)
    cls._takes_list = True  # (called on a list of tensors, its call receives the list, as in Keras)
    init = cls.__dict__.get("__init__")
    if init is not None and not getattr(init, "_fg_keras_init", False):
        cls.__init__ = _recording_init(init)
    if cls.get_config is base.get_config:  # (Keras's auto-config: the arguments __init__ was given)
        cls.get_config = lambda self: _auto_config(self, base)
    call = cls.__dict__.get("call")
    if call is not None and not getattr(call, "_fg_keras_call", False):
        cls.call = _keras_call(call)
        if "_call_options" not in cls.__dict__:  # (its call's other arguments, given in a graph: kept on the node)
            cls._call_options = tuple(p.name for p in list(inspect.signature(call).parameters.values())[2:]
                                      if p.name not in ("mask", "training") and p.kind in (
                                          inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
            cls._call_options += (TENSORS_KEY,)  # (tensors given to its parameters: tensor_arguments)
        cls.__call__ = _binding_call(cls.__call__, inspect.signature(call))
        cls._fg_own_call = call
    if not getattr(cls.compute_mask, "_fg_keras_compute_mask", False):
        cls.compute_mask = _keras_compute_mask(cls.compute_mask, cls.compute_mask is not base.compute_mask)
    build = cls.__dict__.get("build")
    if build is not None and not getattr(build, "_fg_keras_build", False):
        cls.build = _keras_build(build, base)
    elif cls.build is base.build:
        cls.build = _keras_build(None, base)
    if cls.backward is base.backward:  # (no gradient of its own: its call traced, custom_training)
        cls.forward, cls.backward = forward_traced, backward_traced
        if getattr(cls, "logits_activation", None) is None:
            cls.logits_activation = property(traced_logits_activation)
    if cls.compute_output_shape is base.compute_output_shape:
        cls.compute_output_shape = probed_output_shape
    elif "compute_output_shape" in cls.__dict__ and getattr(cls, "_call_options", ()):  # (Keras's takes the shape)
        cls.compute_output_shape = _shape_only(cls.__dict__["compute_output_shape"])
    if cls.weights is base.weights:  # (Keras's: its own weights, then its sublayers')
        cls.weights = property(lambda self: _own(self) + [w for sub in _sublayers(self, base) for w in sub.weights])
        cls.trainable_weights = property(lambda self: [] if not self.trainable else _own(self, trainable=True) + [
            w for sub in _sublayers(self, base) for w in sub.trainable_weights])
        cls.weight_paths = property(lambda self: [n for n in self.weight_names if n in self._params] + [
            f"{sub.name}/{path}" for sub in _sublayers(self, base) for path in _weight_paths(sub)])
    if getattr(cls, "keras_var_groups", None) is None:
        cls.keras_var_groups = lambda self: keras_var_groups(self, base)
    if getattr(cls, "keras_build_by_run", None) is None:  # (a file's variables for layers it holds: io/keras_v3.py)
        cls.keras_build_by_run = lambda self: self.built and build_by_run(self, self.input_shape)
    if getattr(cls, "keras_build_config", None) is None:
        cls.keras_build_config = _build_config
    if getattr(cls, "add_loss", None) is None:
        cls.add_loss = _add_loss
        cls.losses = property(lambda self: list(self.__dict__.get("_fg_added_losses", ())) + [
            v for sub in _sublayers(self, base) for v in (getattr(sub, "losses", None) or [])])


def _build_config(self) -> dict:
    """Keras's build config: the input's shape; for a call given several tensors (``layer(x, context=c)``) whose
    ``build`` takes a shape each, Keras's ``shapes_dict`` (``inputs_shape``, ``context_shape``), else the first
    tensor's shape, as Keras writes them."""
    names, shape = self.__dict__.get("_fg_tensor_names"), self.input_shape
    if not names or not (shape and isinstance(shape[0], (list, tuple))):
        return {"input_shape": [list(s) for s in shape] if shape and isinstance(shape[0], (list, tuple)) else
                list(shape)}
    takes = [p for p in list(inspect.signature(type(self).build).parameters.values())[1:]
             if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if len(takes) != len(shape):
        return {"input_shape": list(shape[0])}
    first = list(inspect.signature(type(self)._fg_own_call).parameters)[1]
    return {"shapes_dict": {f"{n}_shape": list(s) for n, s in zip([first, *names], shape)}}


def _add_loss(self, loss) -> None:
    """Keras's ``add_loss``: inside a call traced for training, a term of the training's loss
    (``batch_totals``); in an eager call, kept in ``losses`` (with those of the layers it holds) until its next
    call."""
    if add_traced_loss(loss):
        return
    values = loss if isinstance(loss, (list, tuple)) else [loss]
    self.__dict__.setdefault("_fg_added_losses", []).extend(eager(np.asarray(plain(v))) for v in values)


def keras_var_groups(layer, base) -> list[tuple[str, int]]:
    """Where a Keras weights file keeps the layer's variables, below its own path, in ``weights`` order: its own
    in ``vars``, then each layer it holds below the attribute naming it (``inner/vars``, ``rnn/cell/vars``)."""
    own = [n for n in layer.weight_names if n in layer._params]
    groups = [("vars", len(own))] if own or not _sublayers(layer, base) else []
    seen: list = []
    for attr, value in list(vars(layer).items()):
        used: dict = {}
        for item in _items(value):
            if not _holds(layer, item, base) or any(item is s for s in seen):
                continue
            seen.append(item)
            if isinstance(value, (list, tuple, dict)):  # (a list or dict of layers: each below its class's key)
                key = snake_case("Functional" if getattr(item, "_fg_model", False) else type(item).__name__)
                used[key] = used.get(key, -1) + 1
                groups += _groups_of(item, f"{attr}/{key}{'_' + str(used[key]) if used[key] else ''}", layer.name)
            else:
                groups += _groups_of(item, attr, layer.name)
    return groups


def _groups_of(sub, at: str, owner: str) -> list[tuple[str, int]]:
    """The weights-file groups of ``sub`` (a layer or a model a custom layer holds) below ``at``: its own layout, or
    a model's layers below ``layers/<class key>`` (``ffn/layers/dense_1/vars``), as Keras saves them."""
    inner = getattr(sub, "keras_var_groups", None)
    if inner is not None:
        return [(f"{at}/{g}", n) for g, n in inner()]
    if is_model(sub):
        groups, used = [], {}
        for layer in sub._layers_and_ops:
            layer = layer.__dict__.get("_as_sequential") or layer
            kind = type(layer).__name__
            if kind == "InputLayer" and not getattr(sub, "_fg_model", False):
                continue  # (a Sequential lists none; a Functional model's count in the keys)
            key = snake_case("Functional" if getattr(layer, "_fg_model", False) else kind)
            used[key] = used.get(key, -1) + 1
            groups += _groups_of(layer, f"{at}/layers/{key}{'_' + str(used[key]) if used[key] else ''}", owner)
        return groups
    if not sub.weights:
        return []
    if hasattr(sub, "forward_layer") or hasattr(sub, "layer"):
        raise UnsupportedKerasFeature(f"custom layer {owner!r} holds wrapper {sub.name!r}: its Keras file layout is "
                                      "not read or written by fastgru")
    contract = getattr(type(sub), "keras", None)
    return [(f"{at}/{getattr(contract, 'weights', 'vars')}", len(sub.weights))]


def is_model(value) -> bool:
    """A fastgru ``Sequential`` or Functional ``Model`` (held by a custom layer as Keras layers hold them)."""
    return hasattr(value, "_layers_and_ops") and hasattr(value, "trainable_weights")


def _weight_paths(sub) -> list[str]:
    if is_model(sub):
        return [f"{layer.name}/{p}" for layer in sub._layers_and_ops for p in _weight_paths(layer)]
    return list(sub.weight_paths)


def _own(layer, trainable: bool = False) -> list:
    """The layer's own weights (``add_weight``'s), its trainable ones only if ``trainable``."""
    params, frozen = layer._params, frozen_weight_names(layer) if trainable else ()
    return [variable_of(layer, n, params[n]) for n in layer.weight_names if n in params and n not in frozen]


def _sublayers(layer, base) -> list:
    """The layers (and models) a custom layer holds in its attributes (directly, or in a list or dict), in the order
    they were set, as Keras tracks them."""
    found: list = []
    for value in list(vars(layer).values()):
        for item in _items(value):
            if _holds(layer, item, base) and all(item is not f for f in found):
                found.append(item)
    return found


def _items(value) -> list:
    """An attribute's value as the items Keras tracks: a list's or tuple's items, a dict's values, or itself."""
    if isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _holds(layer, item, base) -> bool:
    return (isinstance(item, base) or is_model(item)) and item is not layer


_SERIALIZABLE = (str, int, float, bool, type(None))


def _recording_init(init):
    """``init`` recording the arguments it is given (the outermost call's), as Keras 3's ``Layer.__new__`` does for
    a class without ``get_config``: only if every value is a string, number, bool or None (in lists and dicts)."""
    names = [p.name for p in list(inspect.signature(init).parameters.values())[1:]
             if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]

    @functools.wraps(init)
    def recorded(self, *args, **kwargs):
        if "_fg_auto_config" not in self.__dict__:
            given = {**dict(zip(names, args)), **kwargs}
            self.__dict__["_fg_auto_config"] = given if _plain(given) else None
        init(self, *args, **kwargs)

    recorded._fg_keras_init = True
    return recorded


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, _SERIALIZABLE)


def _auto_config(layer, base) -> dict:
    """Keras 3's config of a custom layer that defines no ``get_config``: its name, the arguments its ``__init__``
    was given, its trainable flag and dtype."""
    config = base.get_config(layer)
    given = layer.__dict__.get("_fg_auto_config") or {}
    return {"name": config.pop("name"), **given, **config}


def _keras_call(call):
    params = inspect.signature(call).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    takes = tuple(n for n in ("mask", "training") if takes_all or n in params)

    @functools.wraps(call)
    def adapted(self, inputs, mask=None, training: bool = False, **kwargs):
        if isinstance(inputs, (list, tuple)) and TENSORS_KEY not in kwargs and "_fg_tensor_names" in self.__dict__:
            kwargs[TENSORS_KEY] = self.__dict__["_fg_tensor_names"]
        given_inputs = inputs
        inputs = keras_masks.carrying(inputs, mask)  # (its input carries its mask, as Keras's tensor does)
        inputs, mask, kwargs = unpacked(params, inputs, mask, kwargs)  # (attention(query, values): as given)
        given = {"mask": mask, "training": training}
        self.__dict__.pop("_fg_added_losses", None)  # (losses: the latest call's, as Keras clears them per call)
        out = call(self, inputs, **{k: given[k] for k in takes}, **kwargs)
        keras_masks.record(self, given_inputs, keras_masks.carried(out))  # (what compute_mask then reads)
        out = plain(out)
        return list(out) if isinstance(out, tuple) else out  # (several outputs: a list, as fastgru's layers give)

    adapted._fg_keras_call = True
    adapted._fg_takes = takes
    adapted._fg_wants_masks = "mask" in takes or any(p.endswith("_mask") for p in params)  # (query_mask=...)
    return adapted


def _keras_compute_mask(compute_mask, own: bool):
    """``compute_mask`` after Keras's rules for a custom layer's output masks (``keras_masks``). In a model (Keras's
    graph records each call's mask as it is built, on new symbolic outputs): the mask ``compute_mask`` gives where
    the layer supports masking (``supports_masking``, or a ``compute_mask`` of its own) and that mask is not None,
    else the one its outputs carry when it runs (its input returned, or what a masking layer it holds made of it).
    ``eager`` (a call on arrays, Keras's ``_set_mask_metadata``): the masks its outputs carry first."""

    @functools.wraps(compute_mask)
    def adapted(self, inputs, mask=None, eager: bool = False):
        found, carried = keras_masks.recorded(self, inputs)
        if not found:
            return compute_mask(self, inputs, mask)
        computed = compute_mask(self, inputs, mask) if own or self.supports_masking else None
        return keras_masks.merged(carried, computed) if eager else keras_masks.merged(computed, carried)

    adapted._fg_keras_compute_mask = True
    return adapted


def _keras_build(build, base):
    def adapted(self, input_shape):
        _scope_sublayers(self, base)  # (the layers it holds build in its name scope: block/sequential/dense/kernel)
        self.__dict__["_fg_building"] = True  # (a super().build() inside: no output shape yet)
        try:
            if build is not None:
                build(self, *_spread(build, input_shape, {}))
        finally:
            self.__dict__["_fg_building"] = False
        _scope_sublayers(self, base)  # (and those its build made)
        if build is None and type(self).compute_output_shape is not probed_output_shape and any(
                not getattr(sub, "built", True) for sub in _sublayers(self, base)):
            build_by_run(self, input_shape)  # (Keras's _build_by_run: no probe to build the layers it holds)
        base.build(self, tuple(input_shape))  # (the output shape probed: the layers it holds are built now)

    adapted._fg_keras_build = True
    return adapted if build is None else functools.wraps(build)(adapted)


def _scope_sublayers(layer, base) -> None:
    """The layers ``layer`` holds take its name scope (Keras builds them inside it: ``block/dense/kernel``)."""
    scope = "/".join(p for p in (layer.__dict__.get("_variable_scope"), layer.name) if p)
    for sub in _sublayers(layer, base):
        sub.__dict__.setdefault("_variable_scope", scope)
        for inner in getattr(sub, "_layers_and_ops", ()) if type(sub).__name__ == "Sequential" else ():
            inner.__dict__.setdefault("_variable_scope", f"{scope}/{sub.name}")  # (also when a file is loaded)


def _binding_call(inherited, signature):
    """``layer(x, 0.25)``: the values after the input bound to the call's parameters by position, as Keras binds
    them (``temperature=0.25``; ``layer(x, mask, True)``: ``mask=``, ``training=``)."""

    def __call__(self, inputs, *args, **kwargs):
        if args:
            bound = signature.bind_partial(self, inputs, *args).arguments
            kwargs = {**dict(list(bound.items())[2:]), **kwargs}
        inputs, kwargs = gathered(self, inputs, kwargs)  # (symbolic tensors given to its parameters: a list input)
        if kwargs.get(TENSORS_KEY):  # (its build's probe and eager calls on the list unpack it so too)
            self.__dict__["_fg_tensor_names"] = kwargs[TENSORS_KEY]
        return inherited(self, inputs, **kwargs)

    return __call__


def keras_add_weight(layer, *args, shape=None, initializer=None, dtype=None, trainable: bool = True,
                     autocast: bool = True, regularizer=None, constraint=None, aggregation="none",
                     overwrite_with_gradient: bool = False, name: str | None = None):
    """Keras 3's ``Layer.add_weight``: a weight of ``shape`` (``()`` if None), initialised by ``initializer``
    (``"glorot_uniform"`` for floats, ``"zeros"`` otherwise, as Keras's), named ``name`` (``"variable"``, then
    ``"variable_1"``...); trainable weights are listed before the others, as Keras lists them. Returns the
    :class:`fastgru.variables.Variable`."""
    if args:
        if len(args) > 3:
            raise TypeError(f"add_weight() takes at most 3 positional arguments but {len(args)} were given.")
        if isinstance(args[0], str):
            raise ValueError("`name` must be passed as a keyword argument. Received: add_weight(" f"{args[0]!r}, ...)")
        shape, initializer, dtype = (list(args) + [shape, initializer, dtype][len(args):])[:3]
    try:
        dims = () if shape is None else tuple(int(d) for d in (shape if np.iterable(shape) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"layer {layer.name!r}: add_weight's shape must be fully defined (integers), received "
                         f"{shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"layer {layer.name!r}: add_weight's shape {dims} has a negative size")
    dtype = layer.dtype if dtype is None else np.dtype(getattr(dtype, "name", dtype))
    if initializer is None:
        initializer = "glorot_uniform" if dtype.kind == "f" else "zeros"
    base, k = name or "variable", 0
    weight = base
    while weight in layer._params:
        k += 1
        weight = f"{base}_{k}"
    rng = layer.__dict__.get("_rng")
    if not isinstance(rng, np.random.Generator):
        rng = layer.__dict__["_rng"] = make_rng(None)
    initializer = initializers.get(initializer)
    array = layer._add_weight(weight, dims, initializer, rng)
    if array.dtype != dtype:
        array = layer._params[weight] = array.astype(dtype)
    lists = layer.__dict__.setdefault("_keras_weight_lists", ([], []))
    lists[0 if trainable else 1].append(weight)
    layer.weight_names = tuple(lists[0] + lists[1])
    if regularizer is not None:
        layer.weight_regularizers = {**getattr(layer, "weight_regularizers", {}), weight: regularizers.get(regularizer)}
    if constraint is not None:
        layer.weight_constraints = {**getattr(layer, "weight_constraints", {}), weight: constraints.get(constraint)}
    return variable_of(layer, weight, array)


def frozen_weight_names(layer) -> list:
    """The weights a custom layer made with ``trainable=False`` (kept out of ``trainable_weights``)."""
    lists = layer.__dict__.get("_keras_weight_lists")
    return lists[1] if lists else []
