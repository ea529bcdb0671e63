"""The Functional API's symbolic side: ``Input`` (a symbolic tensor), layers called on symbolic tensors
(recording nodes), the graph put in Keras's order (``map_graph``) and the steps a plan runs, including
recurrent layers with states in and out. ``fastgru.functional.Model`` builds on it."""

from __future__ import annotations

import itertools
import threading

import numpy as np

from .layers.base import PROPAGATED_MASK, install_symbolic_call
from .layers.build_settings import replaying
from .layers.core import InputLayer
from .layers.keras_ops import apply_op
from .nested_shapes import _compatible, _fmt, nested_model_shapes  # noqa: F401  (_fmt: model_inputs imports it here)
from .tensor_operators import TensorOperators
from .tracing import is_weight_valued, tracing

_ids = itertools.count()
#: the output mask of a nested model's last call in this thread (read by its compute_mask)
_last_masks = threading.local()


# ---------------------------------------------------------------------------------------------
# symbolic tensors and nodes
# ---------------------------------------------------------------------------------------------
def _dtype_name(dtype) -> str:
    """A tensor's dtype name: ``"string"``, NumPy's name of ``dtype``, or float32 for None."""
    return "string" if dtype == "string" else str(np.dtype(dtype)) if dtype is not None else "float32"


class KerasTensor(TensorOperators):
    """A symbolic tensor: its batch shape, dtype, and the layer call (node) that makes it."""

    _fg_symbolic = True
    __array_ufunc__ = None  # ``array + tensor`` calls ``tensor.__radd__`` (a Keras op with a constant operand)

    def __init__(self, shape, dtype="float32", layer=None, node=None, index: int = 0, name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = _dtype_name(dtype)
        self.layer, self.node, self.index = layer, node, index
        self.name = name or (layer.name if layer is not None else "tensor")
        self._id = next(_ids)

    def declare_dtype(self, dtype) -> None:
        """An input's dtype as a file declares it (``"int32"`` tokens, ``"string"``); one NumPy does not know stays
        float32 (the model's ``predict`` refuses data it cannot cast to it)."""
        try:
            self.dtype = _dtype_name(dtype)
        except TypeError:
            pass

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_history(self):
        return self.layer, self.layer._inbound_nodes.index(self.node), self.index

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __getitem__(self, key):
        """``x[:, -1]`` and the like: a GetItem node, as Keras 3 records one (the batch axis stays whole)."""
        from .layers.getitem import GetItem

        return GetItem()(self, key=key if isinstance(key, tuple) else (key,))

    def __reduce__(self):
        raise TypeError("a symbolic KerasTensor cannot be pickled; pickle the Model built from it")

    # a symbolic tensor holds no values: what would read them raises (the exception types Keras 3 raises)
    def __bool__(self):
        raise TypeError(f"a symbolic KerasTensor ({self.name!r}) cannot be used as a boolean: it holds no values "
                        "until the model runs (compare inside the graph with >, <, ... and fg.layers ops)")

    def __array__(self, dtype=None, copy=None):
        raise ValueError(f"a symbolic KerasTensor ({self.name!r}, shape {self.shape}) holds no values and cannot be "
                         "converted to a NumPy array: build a Model from it and call predict on arrays")

    def __iter__(self):
        raise NotImplementedError(f"iterating over a symbolic KerasTensor ({self.name!r}, shape {self.shape}) is not "
                                  "supported: its batch axis has no length; index another axis, e.g. x[:, 0]")


class Node:
    """One call of a layer on symbolic tensors."""

    def __init__(self, layer, args, states, outputs_shapes, list_args: bool, list_outputs: bool):
        self.layer = layer
        self.args = list(args)  # the positional input tensors (one, or the list a merge layer takes)
        self.states = list(states)  # initial_state tensors (recurrent layers)
        #: whether the call receives the mask its input carries. Keras 3 passes the propagated mask only to
        #: a call with one tensor argument: a recurrent layer given initial_state tensors runs unmasked
        #: (unless mask= is given), while its output still carries the input's mask; tf_keras applied it
        #: (``io.keras_functional`` sets this for such calls in Keras 2 files)
        self.mask_from_inputs = not self.states
        self.mask_at_run_time = False  # (a Keras 3 file's "mask": null: io/keras_nodes.RUNTIME_MASK_KEY)
        self.masks: list = []  # an explicit mask= (one tensor, or one per input of a merge; None entries)
        self.call_kwargs: dict = {}  # the call options the layer declares (``_call_options``)
        self.list_args = list_args
        self.list_outputs = list_outputs
        self.is_input = isinstance(layer, InputLayer)
        inbound = layer.__dict__.setdefault("_inbound_nodes", [])
        inbound.append(self)
        dtype = getattr(layer, "input_dtype", None) if self.is_input else None
        dtype = dtype or getattr(layer, "dtype", "float32")
        self.outputs = [KerasTensor(s, dtype, layer, self, i, name=layer.name if len(outputs_shapes) == 1
                                    else f"{layer.name}_{i}") for i, s in enumerate(outputs_shapes)]

    @property
    def inputs(self) -> list:
        return self.args + self.states + [m for m in self.masks if m is not None and m is not PROPAGATED_MASK]

    @property
    def parent_nodes(self) -> list:
        return [t.node for t in self.inputs]


def is_symbolic(x) -> bool:
    if getattr(x, "_fg_symbolic", False) or isinstance(x, InputLayer):
        return True
    return isinstance(x, (list, tuple)) and any(is_symbolic(v) for v in x)


def input_tensor(layer: InputLayer) -> KerasTensor:
    """The symbolic tensor an InputLayer makes (``fg.layers.Input`` returns the layer itself)."""
    nodes = layer.__dict__.get("_inbound_nodes")
    if not nodes:
        Node(layer, [], [], [tuple(layer.batch_shape)], False, False)
        nodes = layer._inbound_nodes
    return nodes[0].outputs[0]


def _tensor(x, what: str) -> KerasTensor:
    if isinstance(x, InputLayer):
        return input_tensor(x)
    if not isinstance(x, KerasTensor):
        raise TypeError(f"{what}: expected a symbolic tensor (from fg.Input or a layer called on one), received "
                        f"{type(x).__name__}")
    return x


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, sparse=None,  # noqa: N802
          tensor=None, optional=False):
    """Keras 3's ``keras.Input``: a symbolic tensor of batch shape ``(batch_size,) + shape``."""
    if sparse or tensor is not None or optional:
        raise ValueError("fg.Input: sparse, tensor and optional inputs are not supported")
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, batch_shape=batch_shape)
    return input_tensor(layer)


def build_error(context: str, shape, exc: Exception) -> Exception:
    """The error of a layer's ``build`` on ``shape`` (one shape or a list), said in ``context``: a TypeError met on
    an axis of unknown size (None) where the weights need one becomes a ValueError saying so, as Keras's ('should
    be defined'), not Python's ``int(None)``; another keeps its type."""
    shapes = shape if shape and isinstance(shape[0], (list, tuple)) else [shape]
    if isinstance(exc, TypeError) and any(d is None for s in shapes for d in tuple(s)[1:]):
        return ValueError(f"{context}: its weights are sized by its input's axes, and an axis it needs has no known "
                          "size (None); give the Input that size, as Keras requires ('should be defined')")
    return type(exc)(f"{context}: {exc}")


def _layer_kind(layer) -> str:
    return type(layer).__name__


def symbolic_call(layer, inputs, mask=None, training=False, initial_state=None, **kwargs):
    """Record ``layer`` called on symbolic ``inputs``: shapes checked and the layer built now, the
    output tensors (one, or a list for several outputs) returned."""
    label = f"{_layer_kind(layer)} {layer.name!r}"
    # call options a layer declares (``_call_options``: MultiHeadAttention's use_causal_mask, ...) are kept
    # on the node and passed to each call of the plan
    allowed = getattr(layer, "_call_options", ())
    call_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in allowed}
    if kwargs:
        raise TypeError(f"{label}: unexpected keyword arguments {sorted(kwargs)} in a call on symbolic tensors")
    masks = []
    if mask is not None:  # an explicit mask= overrides the propagated one, as in Keras
        listed = isinstance(mask, (list, tuple))
        masks = [m if m is None or m is PROPAGATED_MASK else _tensor(m, f"{label} mask")
                 for m in (mask if listed else [mask])]
    if masks and not getattr(layer, "accepts_mask_argument", False) and not replaying():
        raise TypeError(f"{label} takes no mask= (its Keras call takes none: Keras 3 refuses it too, and a file saved "
                        "with it would not open in Keras); the mask of its input passes on by itself")
    list_args = isinstance(inputs, (list, tuple))
    args = [_tensor(t, f"{label} input {i}") for i, t in enumerate(inputs)] if list_args else [_tensor(inputs, label)]
    states = []
    if initial_state is not None:
        if not hasattr(layer, "return_state") or not (hasattr(layer, "units") or hasattr(layer, "forward_layer")):
            raise TypeError(f"{label} takes no initial_state")
        states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        states = [_tensor(_state_of_weights(s, args[0]), f"{label} initial_state {i}") for i, s in enumerate(states)]
    in_shape = [t.shape for t in args] if list_args else args[0].shape
    if hasattr(layer, "node_input_shapes"):  # the shapes it is built on (not an attention mask's)
        in_shape = layer.node_input_shapes(in_shape, call_kwargs)
    if getattr(layer, "_fg_model", False) or _layer_kind(layer) == "Sequential":
        out_shapes = nested_model_shapes(layer, args, list_args, label)
    else:
        if list_args and not getattr(layer, "_takes_list", False) and not hasattr(layer, "_check_count"):
            if len(args) != 1:
                raise ValueError(f"{label} takes one input, received a list of {len(args)}")
            in_shape = args[0].shape
            list_args = False
        if layer.built:
            built = layer.input_shape
            axes = getattr(layer, "input_feature_axes", 1)
            listed = bool(built) and isinstance(built[0], (list, tuple))  # (no weights: any shape, as Keras)
            ok = not layer.weights or (listed and len(built) == len(in_shape) and all(
                _compatible(b, s, axes) for b, s in zip(built, in_shape)) if list_args else
                _compatible(built, in_shape, axes))
            if not ok:
                raise ValueError(f"{label} was built for input shape {_fmt(built)} and is called on a tensor of "
                                 f"incompatible shape {_fmt(in_shape)}")
        else:
            try:
                layer.build(list(in_shape) if list_args else tuple(in_shape))
            except (TypeError, ValueError) as exc:
                raise build_error(f"calling {label} on a tensor of shape {_fmt(in_shape)}", in_shape, exc) from None
        try:
            out = layer.compute_output_shape(list(in_shape) if list_args else tuple(in_shape), **call_kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"calling {label} on a tensor of shape {_fmt(in_shape)}: {exc}") from None
        if isinstance(out, tuple) and out and all(isinstance(s, (tuple, list)) for s in out):
            out = list(out)  # (a tuple of shapes: a custom layer's several outputs, as Keras reads it)
        out_shapes = out if isinstance(out, list) else [out]
        out_shapes = [tuple(s) for s in out_shapes]
    if states:
        n = _n_states(layer)
        if len(states) != n:
            raise ValueError(f"{label} has {n} state(s); initial_state holds {len(states)} tensors")
        units = layer.forward_layer.units if hasattr(layer, "forward_layer") else layer.units
        sizes = getattr(layer, "state_sizes", None) or [units] * n  # (a script's cell: its state_size, cell_rnn.py)
        for i, (s, size) in enumerate(zip(states, sizes)):
            if len(s.shape) != 2 or s.shape[1] not in (None, size):
                raise ValueError(f"{label}: initial_state {i} must have shape (batch, {size}), received "
                                 f"{_fmt(s.shape)}")
    if masks:
        if len(masks) < len(args) and getattr(layer, "_masks_may_omit_key", False):
            masks = masks + [None] * (len(args) - len(masks))  # Attention([q, v, k], mask=[q_mask, v_mask])
        if len(masks) != len(args):
            raise ValueError(f"{label}: {len(args)} input(s) but {len(masks)} mask(s)")
        for i, (m, a) in enumerate(zip(masks, args)):
            if m is not None and m is not PROPAGATED_MASK and (len(m.shape) > len(a.shape) or any(
                    d is not None and e is not None and d != e for d, e in zip(m.shape[1:], a.shape[1:len(m.shape)]))):
                raise ValueError(f"{label}: mask {i} of shape {_fmt(m.shape)} does not fit its input of shape "
                                 f"{_fmt(a.shape)} (expected the input's leading axes, e.g. (batch, timesteps))")
    node = Node(layer, args, states, out_shapes, list_args, len(out_shapes) > 1 or getattr(layer, "_fg_model", False)
                and layer._list_outputs)
    node.masks = masks
    node.call_kwargs = call_kwargs
    return node.outputs if node.list_outputs else node.outputs[0]


install_symbolic_call(symbolic_call)


def _state_of_weights(state, inputs):
    """A learned initial state (a weight, or a value computed from weights, in a custom layer's call traced for
    training; or a constant, ``ops.ones((ops.shape(x)[0], units))``) as a tensor of the graph:
    ``zeros_like(inputs[:, 0, :1]) + state``, one row per sample (gradients reach the weights); else as it is."""
    if tracing() is None or not (is_weight_valued(state) or isinstance(state, np.ndarray)) or \
            getattr(inputs, "ndim", 0) != 3:
        return state
    return apply_op("Add", apply_op("ZerosLike", inputs[:, 0, :1]), state)


def _n_states(layer) -> int:
    if hasattr(layer, "forward_layer"):
        return 2 * len(layer.forward_layer.state_names)
    return len(layer.state_names)


# ---------------------------------------------------------------------------------------------
# the graph: Keras's order, checks, the flat plan
# ---------------------------------------------------------------------------------------------
def map_graph(inputs: list, outputs: list):
    """(nodes in execution order, layers in Keras's ``model.layers`` order); refuses cycles and
    disconnected graphs with the tensor and layer named."""
    finished, in_progress = set(), set()
    ordered_nodes, op_index = [], {}
    input_ids = {id(t) for t in inputs}

    def visit(tensor, via):
        node = tensor.node
        if id(node) in finished:
            return
        if id(tensor) in input_ids and not node.is_input:
            finished.add(id(node))
            return
        if id(node) in in_progress:
            raise ValueError(f"the graph has a cycle: tensor {tensor.name!r} of layer {node.layer.name!r} depends on "
                             "itself")
        op_index.setdefault(id(node.layer), (len(op_index), node.layer))
        in_progress.add(id(node))
        if not node.is_input:
            for t in node.inputs:
                visit(t, node)
        in_progress.discard(id(node))
        finished.add(id(node))
        ordered_nodes.append(node)

    for t in outputs:
        visit(t, None)
    in_graph = {id(n) for n in ordered_nodes}
    node_depth, op_depth = {}, {}
    for node in reversed(ordered_nodes):
        depth = node_depth.setdefault(id(node), 0)
        depth = max(depth, op_depth.get(id(node.layer), 0))
        op_depth[id(node.layer)] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:  # unused inputs: kept in the layer list, as Keras does
        if id(t.node.layer) not in op_depth:
            op_depth[id(t.node.layer)] = 0
            op_index[id(t.node.layer)] = (-1, t.node.layer)
    layers = sorted(op_index.values(), key=lambda v: (-op_depth[id(v[1])], v[0]))
    # check that every tensor is computable from the inputs
    computable = set(input_ids)
    # within a depth, Keras runs the nodes in the order its depth pass above first met them (its dict's
    # insertion order): that order decides which of two MultiHeadAttention-sharing layers sees the masks
    nodes_by_id = {id(n): n for n in ordered_nodes}
    by_depth = sorted((nodes_by_id[i] for i in node_depth if i in nodes_by_id), key=lambda n: -node_depth[id(n)])
    for node in by_depth:
        for t in node.inputs:
            if id(t) not in computable:
                raise ValueError(f"Graph disconnected: layer {node.layer.name!r} needs tensor {t.name!r} (made by "
                                 f"{_layer_kind(t.node.layer)} {t.node.layer.name!r}), which cannot be computed from "
                                 f"the model's inputs {[x.name for x in inputs]}")
        if node.is_input and id(node.outputs[0]) not in computable:
            twin = " (another Input of that name: from another model or load)" * any(
                x.name == node.layer.name for x in inputs)
            raise ValueError(f"Graph disconnected: the outputs need Input {node.layer.name!r}{twin}, which is not one "
                             f"of the model's inputs {[x.name for x in inputs]}")
        computable.update(id(t) for t in node.outputs)
    return by_depth, [layer for _, layer in layers]


def call_mask(step, mask):
    """The mask a recurrent step's layer runs with: ``mask`` (explicit or propagated, ``_step_inputs``),
    or None for a call that Keras 3 gives no propagated mask (``Node.mask_from_inputs``)."""
    return mask if step.mask_from_inputs or step.masks is not None else None


def _explicit_masks(step, vals, propagated):
    """The mask(s) a step's layer gets when its node has an explicit mask=: as given, None entries meaning no mask
    (Keras 3 and tf_keras fill in the propagated masks only when ``mask`` itself is None). A layer called with
    keyword tensors (``call_roles``: MultiHeadAttention's ``value_mask=``, ``key_mask=``) has one mask argument per
    tensor, each None one filled in from that tensor, as Keras fills them. So is a nested model's: Keras 3's
    Functional ``call`` sets the masks given on its inputs and leaves the others with the masks their tensors carry
    (a Keras 3 file records ``mask=[None, None]`` for ``decoder([target, encoder(ids)])``, whose second tensor is
    masked when the model runs)."""
    per_argument = getattr(step.layer, "call_roles", None) is not None or step.kind in ("model", "sequential")
    prop = propagated if step.list_args else [propagated]
    prop = prop if prop is not None else [None] * len(step.masks)
    given = [p if s is PROPAGATED_MASK or (s is None and per_argument) else None if s is None else vals[s]
             for s, p in zip(step.masks, prop)]
    return given if step.list_args else given[0]


class _Step:
    __slots__ = ("layer", "node", "args", "states", "outs", "list_args", "free", "kind", "logits", "masks",
                 "call_kwargs", "mask_from_inputs", "mask_at_run_time")

    def __init__(self, layer, node, args, states, outs, list_args, kind):
        self.layer, self.node, self.args, self.states, self.outs = layer, node, args, states, outs
        self.list_args, self.kind, self.free, self.logits = list_args, kind, [], False
        self.masks = None  # slots of an explicit mask= (see _explicit_masks)
        self.call_kwargs = dict(getattr(node, "call_kwargs", None) or {})  # the node's call options
        self.mask_from_inputs = getattr(node, "mask_from_inputs", True)  # (Node.mask_from_inputs)
        self.mask_at_run_time = getattr(node, "mask_at_run_time", False)


def _kind(layer) -> str:
    name = _layer_kind(layer)
    if name == "Sequential":
        return "sequential"
    if getattr(layer, "_fg_model", False):
        return "model"
    if name in ("GRU", "LSTM", "SimpleRNN", "RNN"):  # (RNN: a script's own cell looped, layers/cell_rnn.py)
        return "rnn"
    if name == "Bidirectional":
        return "bidirectional"
    return "layer"
