"""Keras 3 operations in a Functional graph, run as a layer: ``x + y``, ``h * 2.0``, ``keras.ops.mean(h,
axis=1)``, ``ops.concatenate``, ``ops.matmul``, ``ops.softmax``, ... Keras records each such call as an op
layer (module ``keras.src.ops.*``, its arguments in the node); :class:`KerasOp` is one of them, with its
values and gradients (``op_elementwise``, ``op_shapes``), so a model file that computes with them loads,
runs, trains and saves back as Keras wrote it. fastgru's symbolic tensors make them too (``x * 2.0``).

A node's arguments are kept as Keras writes them (``template``: its ``args`` and ``kwargs`` with each tensor
replaced by ``{TENSOR_KEY: k}``, the k-th tensor of the call), so constants (``2.0`` in ``h * 2.0``) stay
where they were. Ops pass no mask on, as in Keras 3. The batch axis is never reduced, moved or joined
(every sample is computed on its own, as fastgru's batching needs): such an op is refused when the graph
is built.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..tracing import ARRAY_KEY, TENSOR_KEY, is_weight_valued, operand_value, send_gradient, traced_operand
from ..training.row_gradient import RowGradient
from . import registry
from .base import Layer, _symbolic, call_on_list, compute_dtype, record_symbolic_call, snake_case, unique_name
from .op_attention import attention_arguments
from .op_axis import GATHERS
from .op_config import _DEFAULTS, _NODE_KWARGS, _OTHER_OPS, CONFIG_KEYS, MODULES, PRODUCTS, SHAPE_OPS
from .op_elementwise import AXIS_OPS, BINARY, INTEGER_CASTS, TERNARY, UNARY, broadcast_shape, unbroadcast
from .op_shapes import REDUCTIONS, _axes, _reduce_normalize, _reduce_shape, in_whole_batch
from .op_slices import PARAMETERS

SUPPORTED = frozenset(CONFIG_KEYS)
#: products that take a constant operand
_WITH_CONSTANTS = ("Matmul", "Einsum", "Dot", "Tensordot", "DotProductAttention", *GATHERS)
_LIST_OPS = ("Concatenate", "Stack", "Hstack")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _slot(v):
    """The tensor index of a template entry, or None for a constant."""
    return v[TENSOR_KEY] if isinstance(v, dict) and set(v) == {TENSOR_KEY} else None


def _constant(v):
    """A constant operand as an array: a number, or Keras's ``{"class_name": "__numpy__" (or "__tensor__"),
    "config": {"value": nested lists, "dtype": ...}}`` (``x + positions`` with a NumPy array, ``/ ops.sqrt(8.0)``,
    ``+ ops.convert_to_tensor(pe)``), or a plain list of numbers (``ops.take(h, [0, 2], axis=1)``); None when it is
    none of these."""
    if _is_number(v):
        return np.asarray(v)
    if isinstance(v, dict) and set(v) == {ARRAY_KEY}:  # (a layer's weight in an op on arrays: fastgru.op_functions)
        value = v[ARRAY_KEY]  # (a traced custom layer's weight, or a value computed from weights: kept live)
        return value if is_weight_valued(value) else np.asarray(value)
    if isinstance(v, dict) and v.get("class_name") in ("__numpy__", "__tensor__") and isinstance(v.get("config"),
                                                                                   dict):
        v = v["config"].get("value")
    elif not isinstance(v, list):  # (a plain list of numbers: ops.take(h, [0, 2], axis=1))
        return None
    try:
        value = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return value if value.ndim <= 8 else None


def _operand_shapes(operands, is_tensor, shapes) -> list:
    return [tuple(shapes[o]) if t else o.shape for o, t in zip(operands, is_tensor)]


def _short(value, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def numpy_constant(array: np.ndarray) -> dict:
    """A NumPy array as a node's constant operand, the way Keras writes it."""
    return {"class_name": "__numpy__", "config": {"value": np.asarray(array).tolist(), "dtype": str(array.dtype)}}


def _unary_config(op: str, c: dict, rank: int, owner: str) -> dict:
    c = {**_DEFAULTS.get(op, {}), **c}
    if op in AXIS_OPS:
        axis = c["axis"]
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ValueError(f"{owner}: axis must be an integer, found {axis!r}")
        c["axis"] = _axes(axis, rank, owner)[0]
    if op == "Gelu" and not isinstance(c["approximate"], bool):
        raise ValueError(f"{owner}: approximate must be true or false, found {c['approximate']!r}")
    for key in ("alpha", "negative_slope", "x_min", "x_max", "b", "threshold", "default_value"):
        if key in CONFIG_KEYS[op] and not _is_number(c.get(key)):
            raise ValueError(f"{owner}: {key} must be a number, found {c.get(key)!r}")
    for key in ("nan", "posinf", "neginf"):
        if key in CONFIG_KEYS[op] and not (_is_number(c.get(key)) or (key != "nan" and c.get(key) is None)):
            raise ValueError(f"{owner}: {key} must be a number{'' if key == 'nan' else ' or None'}, found "
                             f"{c.get(key)!r}")
    if op == "Celu" and c["alpha"] == 0:
        raise ValueError(f"{owner}: alpha must not be 0")
    if op == "Round" and (not isinstance(c["decimals"], int) or isinstance(c["decimals"], bool)):
        raise ValueError(f"{owner}: decimals must be an integer, found {c['decimals']!r}")
    if op == "Cast" and c.get("dtype") not in ("float32", "float64", *INTEGER_CASTS):
        raise UnsupportedKerasFeature(f"{owner}: a cast to {c.get('dtype')!r}; fastgru computes in float32/float64 "
                                      "(integers and booleans as their float values)")
    return c


class KerasOp(Layer):
    """One Keras 3 operation of a Functional graph (``op``: Keras's class name, ``config``: its config
    without the name). Called on the list of the node's tensors with the node's ``template``."""

    keras_operation = True

    _call_options = ("template",)
    _takes_list = True
    supports_masking = False
    #: (for fastgru.io, which finds this class through the registry) the ops run, the tensors' marker in a
    #: node's template, each op's Keras module
    supported_ops = SUPPORTED
    tensor_key = TENSOR_KEY
    modules = MODULES

    def __init__(self, op: str, config: dict | None = None, name: str | None = None, **kwargs):
        if op not in SUPPORTED:
            raise UnsupportedKerasFeature(f"Keras op {op!r} is not supported; fastgru runs the ops "
                                          f"{', '.join(sorted(SUPPORTED))}")
        config = {k: v for k, v in dict(config or {}).items() if k != "name"}
        unknown = sorted(set(config) - set(CONFIG_KEYS[op]))
        if unknown:
            raise UnsupportedKerasFeature(f"Keras op {op} with option(s) {', '.join(unknown)} is not supported")
        super().__init__(name=name or unique_name(snake_case(op)), **kwargs)
        self.op, self.op_config = op, config

    @property
    def logits_activation(self) -> str | None:
        """'sigmoid' / 'softmax' when the op is one (its output tags the logits a crossentropy reads, as in Keras)."""
        if self.op == "Sigmoid" or (self.op == "Softmax" and self.op_config.get("axis", -1) == -1):
            return self.op.lower()
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "op": self.op, "config": dict(self.op_config)}

    # ---- the node's arguments ------------------------------------------------------------------
    def _parts(self, template, shapes: list):
        """(operands: per argument a tensor index or a constant, which are tensors, the tensors' shapes in
        argument order, the normalised config) of a call on tensors of ``shapes``."""
        owner = f"Keras op {self.op} {self.name!r}"
        if not isinstance(template, dict) or not isinstance(template.get("args"), list):
            raise ValueError(f"{owner}: malformed call arguments {template!r}")
        args, kwargs = template["args"], template.get("kwargs") or {}
        if not isinstance(kwargs, dict) or set(kwargs) - _NODE_KWARGS.get(self.op, set()):
            raise ValueError(f"{owner}: unexpected keyword arguments {kwargs!r}")
        if self.op == "Average":  # (ops.average's weights: a constant vector along the axis, or None)
            kwargs = {**kwargs, "weights": self._parameter(kwargs.get("weights"), "weights", owner)}
        params = {}
        if self.op == "DotProductAttention":  # (query, key, value, then the bias and mask given; the scale a number)
            args, params = attention_arguments(args, kwargs, owner)
            kwargs = {}
        if self.op in PARAMETERS:  # (slice's start indices, a normalization's gamma/beta/scale: into the config)
            names = PARAMETERS[self.op]
            if not 1 <= len(args) <= 1 + len(names):
                raise ValueError(f"{owner}: expects a tensor and at most {len(names)} more argument(s), found "
                                 f"{_short(args)}")
            given = {**dict(zip(names, args[1:])), **{k: v for k, v in kwargs.items() if k in names}}
            params = {name: self._parameter(given.get(name), name, owner) for name in names}
            args, kwargs = args[:1], {k: v for k, v in kwargs.items() if k not in names}
        if self.op in _LIST_OPS:
            if len(args) != 1 or not isinstance(args[0], list) or not args[0]:
                raise ValueError(f"{owner}: expects one list of tensors, found {args!r}")
            items = args[0]
        else:
            items = args
            n = 4 if self.op == "CTCLoss" else 3 if self.op in TERNARY else 2 if self.op in BINARY or \
                self.op in PRODUCTS else 1
            if (self.op == "Einsum" and len(args) == 1) or self.op == "DotProductAttention":
                n = len(args)  # (one tensor: a permutation, sums; attention: its given operands)
            if len(args) != n:
                raise ValueError(f"{owner}: expects {n} operand(s), found {args!r}")
        constants = self.op in BINARY or self.op in TERNARY or self.op in _WITH_CONSTANTS
        operands, is_tensor = [], []
        for a in items:
            slot = _slot(a)
            value = None if slot is not None else self._constant(a)
            traced = self.op in _LIST_OPS and is_weight_valued(value)  # (a CLS token's weight in a traced call)
            if slot is None and not ((constants or traced) and value is not None):
                if value is not None or a is None:  # (None: ops.where(condition) alone)
                    raise UnsupportedKerasFeature(f"{owner}: " + ("an operand is None (ops.where needs both values)"
                                                  if a is None else "a constant operand is not supported (tensors)"))
                raise ValueError(f"{owner}: operands must be tensors{' or constants' if constants else ''}, "
                                 f"found {_short(a)}")
            operands.append(value if slot is None else slot)
            is_tensor.append(slot is not None)
        slots = [o for o, t in zip(operands, is_tensor) if t]
        if not slots or sorted(slots) != list(range(len(shapes))):
            raise ValueError(f"{owner}: the call's {len(shapes)} tensor(s) do not match its arguments {_short(args)}")
        tensor_shapes = [tuple(shapes[o]) for o in slots]
        if self.op in _LIST_OPS and not all(is_tensor):  # (every item's shape, in order)
            tensor_shapes = [tuple(s) for s in _operand_shapes(operands, is_tensor, shapes)]
        config = {**self.op_config, **kwargs, **params}
        if self.op in UNARY:
            norm = _unary_config(self.op, config, len(tensor_shapes[0]), owner)
        elif self.op in REDUCTIONS:
            norm = _reduce_normalize(config, tensor_shapes, owner)
        elif self.op in PRODUCTS:  # (Matmul may multiply by a constant matrix)
            norm = PRODUCTS[self.op][0](config, _operand_shapes(operands, is_tensor, shapes), owner, is_tensor)
        elif self.op in SHAPE_OPS:
            norm = SHAPE_OPS[self.op][0](config, tensor_shapes, owner)
        else:
            norm = {}
        return operands, is_tensor, tensor_shapes, norm

    def _parameter(self, entry, name: str, owner: str):
        """A parameter argument (:data:`op_slices.PARAMETERS`) as a constant array, or None."""
        if entry is None:
            return None
        if _slot(entry) is not None:
            raise UnsupportedKerasFeature(f"{owner}: {name} computed from the graph's tensors is not supported "
                                          "(a constant or None)")
        value = self._constant(entry)
        if value is None:
            raise ValueError(f"{owner}: {name} must be an array of numbers, found {_short(entry)}")
        return value

    def _constant(self, entry):
        """:func:`_constant` of a template entry, kept per entry (a positional encoding is read once, not per call)."""
        if not isinstance(entry, dict):
            return _constant(entry)
        cache = self.__dict__.setdefault("_constants", {})
        hit = cache.get(id(entry))
        if hit is None or hit[0] is not entry:
            hit = cache[id(entry)] = (entry, _constant(entry))
        return hit[1]

    # ---- shapes ---------------------------------------------------------------------------------
    def build(self, input_shape) -> None:
        self.input_shape = [tuple(s) for s in input_shape]
        self.built = True

    def compute_output_shape(self, input_shape, template=None):
        operands, is_tensor, tensor_shapes, norm = self._parts(template, [tuple(s) for s in input_shape])
        owner = f"Keras op {self.op} {self.name!r}"
        if self.op in BINARY or self.op in TERNARY:
            if len({len(s) for s in tensor_shapes}) > 1 and not in_whole_batch():  # (right-aligned: a batch axis
                # against another axis; in a custom loss's graph, on the whole batch, as NumPy's broadcasting)
                raise UnsupportedKerasFeature(f"{owner}: tensors of shapes {tensor_shapes} have different ranks, so "
                                              "broadcasting them mixes the batch's samples; expand_dims first")
            full = iter(tensor_shapes)
            shape = ()
            for o, t in zip(operands, is_tensor):
                shape = broadcast_shape(shape, next(full) if t else o.shape, owner)
            return shape
        if self.op in UNARY:
            return tensor_shapes[0]
        if self.op in REDUCTIONS:
            return _reduce_shape(tensor_shapes, norm)
        if self.op in PRODUCTS:
            return tuple(PRODUCTS[self.op][1](_operand_shapes(operands, is_tensor, input_shape), norm))
        shape = SHAPE_OPS[self.op][1](tensor_shapes, norm)
        return shape if isinstance(shape, list) else tuple(shape)  # (a list: one shape per output, as Split's)

    def compute_mask(self, x, mask=None):
        return None

    # ---- calling --------------------------------------------------------------------------------
    def __call__(self, inputs, mask=None, training: bool = False, **kwargs):
        if _symbolic(inputs):
            return record_symbolic_call(self, inputs, mask=mask, training=training, **kwargs)
        return call_on_list(self, self._arrays(inputs), mask=mask, training=training, **kwargs)

    def _arrays(self, inputs) -> list:
        arrays = [np.asarray(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        for a in arrays:
            if a.dtype == object or a.dtype.kind not in "fiub":
                raise TypeError(f"Keras op {self.op} {self.name!r} expects numeric arrays, received dtype {a.dtype}")
        dtype = np.result_type(*[compute_dtype(a, self) for a in arrays])
        return [a.astype(dtype, copy=False) for a in arrays]

    def _run(self, x, template):
        xs = self._arrays(x)
        operands, is_tensor, _, norm = self._parts(template, [a.shape for a in xs])
        dtype = xs[0].dtype
        values = [xs[o] if t else _cast(operand_value(o) if is_weight_valued(o) else o, dtype)
                  for o, t in zip(operands, is_tensor)]
        with np.errstate(all="ignore"):  # (log(-1), x / 0: NaN and inf as TensorFlow's, which does not warn)
            if self.op in BINARY or self.op in TERNARY:
                y = {**BINARY, **TERNARY}[self.op][0](*values)
            elif self.op in UNARY:
                y = UNARY[self.op][0](values[0], norm)
            elif self.op in REDUCTIONS:
                y = REDUCTIONS[self.op][0](values, norm)
            else:
                y = _OTHER_OPS[self.op][2](values, norm)
        if isinstance(y, list):  # (several outputs: Split, TopK, Moments)
            return [part.astype(dtype, copy=False) for part in y], (values, operands, is_tensor, norm, xs)
        y = np.asarray(y)
        floats = self.op == "Cast" and norm["dtype"] in ("float32", "float64")  # (a float cast keeps its dtype)
        return (y if floats else y.astype(dtype, copy=False)), (values, operands, is_tensor, norm, xs)

    def call(self, x, mask=None, training: bool = False, template=None):
        return self._run(x, template)[0]

    def forward(self, x, mask=None, training: bool = True, template=None, skip_activation: bool = False):
        """Training forward; ``skip_activation`` (a Sigmoid or Softmax op at an output whose loss reads
        logits) passes the input through."""
        if skip_activation and self.logits_activation is not None:
            return self._arrays(x)[0], None
        y, parts = self._run(x, template)
        return y, (y, parts)

    def backward(self, dy, cache, need_dx: bool = True):
        if not need_dx:
            return None, []
        if cache is None:  # (the logits passed through)
            return [np.asarray(dy)], []
        y, (values, operands, is_tensor, norm, xs) = cache
        if isinstance(y, list):  # (one gradient per output, None for an output nothing used)
            dy = [None if d is None else np.asarray(d, dtype=part.dtype) for part, d in zip(y, dy)]
        else:
            dy = np.asarray(dy, dtype=y.dtype if self.op != "Cast" else xs[0].dtype)
        with np.errstate(all="ignore"):
            if self.op in BINARY or self.op in TERNARY:
                grads = {**BINARY, **TERNARY}[self.op][1](*values, y, dy)
                grads = [unbroadcast(np.asarray(g), v.shape) if (t or is_weight_valued(o)) and g is not None else None
                         for g, v, t, o in zip(grads, values, is_tensor, operands)]
            elif self.op in UNARY:
                grads = [UNARY[self.op][1](values[0], y, dy, norm)]
            elif self.op in REDUCTIONS:
                grads = REDUCTIONS[self.op][1](values, y, dy, norm)
            elif self.op == "Take" and not is_tensor[0]:  # (rows of a weight: slices, as TensorFlow's IndexedSlices)
                rows = values[1].astype(np.int64).reshape(-1) % values[0].shape[0]
                grads = [RowGradient(rows, dy.reshape(rows.size, -1), values[0].shape), None]
            else:
                grads = _OTHER_OPS[self.op][3](values, y, dy, norm)
        dx = [None] * len(xs)
        tensors = iter(g for g, t in zip(grads, is_tensor) if t)
        for o, t, g in zip(operands, is_tensor, grads):
            if g is not None and is_weight_valued(o):  # (a traced custom layer's weight: fastgru.tracing)
                send_gradient(o, g if isinstance(g, RowGradient) else
                              unbroadcast(np.asarray(g), o.shape).astype(o.dtype, copy=False))
            if t:
                g = next(tensors)
                if g is None:  # (no gradient, as TensorFlow's None: nothing flows back to this operand)
                    continue
                g = np.broadcast_to(np.asarray(g, dtype=xs[o].dtype), xs[o].shape)
                dx[o] = np.array(g) if dx[o] is None else dx[o] + g
        return dx, []


def _cast(value: np.ndarray, dtype):
    return dtype.type(value) if value.ndim == 0 else value.astype(dtype)


def apply_op(op: str, *args, **config):
    """``op`` (a Keras op class name) on ``args`` (symbolic tensors, or numbers for a binary op's constant):
    the node Keras would record (``x + 2.0`` -> ``apply_op("Add", x, 2.0)``)."""
    tensors, template_args = [], []
    for a in args:
        if getattr(a, "_fg_symbolic", False):
            template_args.append({TENSOR_KEY: len(tensors)})
            tensors.append(a)
        elif _is_number(a):
            template_args.append(float(a) if isinstance(a, (float, np.floating)) else int(a))
        elif traced_operand(a) is not None:  # (a custom layer's weight while its call is traced for training)
            template_args.append(traced_operand(a))
        elif isinstance(a, np.ndarray) and a.dtype.kind in "fiub":
            template_args.append(numpy_constant(a))
        else:
            raise TypeError(f"Keras op {op}: an operand must be a symbolic tensor or a number, received "
                            f"{type(a).__name__}")
    return KerasOp(op, config)(tensors, template={"args": template_args, "kwargs": {}})


registry.register_model("KerasOp", KerasOp)  # fastgru.io builds it for a file's op layers (no import)
