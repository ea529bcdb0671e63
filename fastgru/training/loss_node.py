"""A built-in loss called on symbolic tensors inside a custom loss's call — Keras's
``SparseCategoricalCrossentropy(from_logits=True, reduction=None)(y_true, y_pred)`` or
``keras.losses.mean_squared_error(y_true, y_pred)`` — as one node of the loss's traced graph
(``training/function_loss.py``): its values (reduced as the loss object's ``reduction`` says, the sample weights
and its own mask applied; a loss *function* gives the unreduced values) and their gradient in ``y_pred``, from the
loss's own ``_values``. ``y_true`` takes no gradient, as targets: a custom loss whose targets come from ``y_pred``
is refused when traced. The whole-batch graph of a loss trace (``op_shapes.whole_batch``) records such a node; a custom
layer's traced call (``self.add_loss(self.loss_fn(targets, logits))``, keras.io's endpoint layer), whose graph keeps
each sample on its own, records the values per sample and reduces them with ``ops.mean`` (a total ``add_loss``
takes)."""

from __future__ import annotations

import contextvars

import numpy as np

from ..errors import UnsupportedKerasFeature
from ..layers.base import Layer, record_symbolic_call
from ..layers.op_shapes import in_whole_batch
from ..op_functions import FUNCTIONS as OPS
from ..tracing import tracing
from .loss_base import Loss, _sum_to_shape, _weights

#: the ``y_pred`` Input of the loss trace under way (set by ``function_loss._trace``)
traced_prediction: contextvars.ContextVar = contextvars.ContextVar("fastgru_traced_prediction", default=None)


def _symbolic(x) -> bool:
    return bool(getattr(x, "_fg_symbolic", False))


def _depends_on(tensor, target) -> bool:
    """Whether the symbolic ``tensor`` is computed from the symbolic ``target`` (a walk up its graph's nodes)."""
    seen, todo = set(), [tensor]
    while todo:
        t = todo.pop()
        if t is target:
            return True
        node = getattr(t, "node", None)
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        todo.extend(node.inputs)
    return False


def symbolic_loss(loss, y_true, y_pred, sample_weight=None, function: bool = False):
    """``loss(y_true, y_pred, sample_weight)`` recorded on symbolic operands (``function``: Keras's loss function of
    that class, its unreduced values), or an error naming why it cannot be."""
    what = f"fg.losses.{loss.name}" if function else f"loss {loss.name!r}"
    if not in_whole_batch():
        if tracing() is not None:  # (a custom layer's call traced: its values per sample, reduced by add_loss's ops)
            return _per_sample_call(loss, y_true, y_pred, sample_weight, function, what)
        raise UnsupportedKerasFeature(
            f"{what} on symbolic tensors: a built-in loss runs on symbolic tensors only inside a custom loss's call "
            "(compile(loss=fn), a Loss subclass) or a custom layer's (self.add_loss(loss(targets, logits))), where "
            "training traces it; elsewhere call it on arrays")
    if not _symbolic(y_pred):
        raise UnsupportedKerasFeature(f"{what}: y_pred must come from the custom loss's y_pred (a symbolic tensor); "
                                      "received a constant")
    prediction, traced_mask = traced_prediction.get() or (None, None)
    if _symbolic(y_true) and prediction is not None and _depends_on(y_true, prediction):
        raise UnsupportedKerasFeature(
            f"{what}: its targets are computed from y_pred, and fastgru gives a built-in loss's targets no gradient "
            "(write that term with fg.ops: ops.mean(ops.square(a - b), axis=-1) for mean_squared_error)")
    tensors = [y_pred]
    target = None
    if _symbolic(y_true):
        tensors.insert(0, y_true)
    else:
        target = np.asarray(y_true)
    weight = None
    if _symbolic(sample_weight):
        tensors.append(sample_weight)
    elif sample_weight is not None:
        weight = np.asarray(sample_weight)
    masked = traced_mask is not None and y_pred is prediction and not function  # (Keras: the mask y_pred carries)
    node = BuiltinLossValues(loss, function=function, target=target, sample_weight=weight,
                             weighted=_symbolic(sample_weight), masked=masked)
    return record_symbolic_call(node, tensors + ([traced_mask] if masked else []))


def _per_sample_call(loss, y_true, y_pred, sample_weight, function: bool, what: str):
    """In a custom layer's traced call, whose graph keeps every sample on its own: the loss's values per sample, and
    for a reducing loss object their mean (``sum``: their sum) over the batch — an ``ops`` total, which ``add_loss``
    takes (``layers/batch_totals``)."""
    reducing = not function and loss.reduction not in ("none", None)
    if type(loss)._valid_positions is not Loss._valid_positions and getattr(loss, "ignore_class", None) is not None \
            or (sample_weight is not None and loss.reduction == "mean_with_sample_weight"):
        raise UnsupportedKerasFeature(f"{what} with ignore_class or mean_with_sample_weight inside a custom layer's "
                                      "call (weight its per-sample values, reduction=None, with ops instead)")
    node = record_symbolic_call(BuiltinLossValues(loss, function=True, target=None, sample_weight=None,
                                                  weighted=False), [y_true, y_pred])
    if not node.shape or node.shape[0] != y_pred.shape[0]:
        raise UnsupportedKerasFeature(f"{what} inside a custom layer's call gives no value per sample "
                                      f"(values of shape {node.shape})")
    if sample_weight is not None and not function:  # (Keras's weights: brought to the values' rank, multiplied)
        weight = sample_weight if _symbolic(sample_weight) else np.asarray(sample_weight, np.float32)
        if len(weight.shape) == len(node.shape) + 1 and weight.shape[-1] == 1:
            weight = OPS["squeeze"](weight, axis=-1)
        elif len(weight.shape) + 1 == len(node.shape) and node.shape[-1] == 1:
            weight = OPS["expand_dims"](weight, axis=-1)
        node = OPS["multiply"](node, weight)
    if not reducing:
        return node
    return OPS["sum"](node) if loss.reduction == "sum" else OPS["mean"](node)


class BuiltinLossValues(Layer):
    """The node of :func:`symbolic_loss`: called on ``[y_true, y_pred]`` (``[y_pred]`` when the targets are a
    constant), then the sample weights where they are a tensor; gives the loss's reduced value (shape ``()``) or its
    values (``y_pred.shape[:-1]`` for most losses)."""

    _takes_list = True
    supports_masking = False

    def __init__(self, loss, function: bool, target, sample_weight, weighted: bool, masked: bool = False):
        super().__init__(name=f"{loss.name}_values")
        self.loss, self.function = loss, function
        self.target, self.constant_weight, self.weighted, self.masked = target, sample_weight, weighted, masked

    def build(self, input_shape) -> None:
        self.input_shape = [tuple(s) for s in input_shape]
        self.built = True

    def _operands(self, arrays: list):
        """``(y_true, y_pred, sample_weight, mask)`` of the node's arrays."""
        arrays = list(arrays)
        y_true = self.target if self.target is not None else arrays.pop(0)
        y_pred = arrays.pop(0)
        weight = arrays.pop(0) if self.weighted else self.constant_weight
        mask = np.asarray(arrays.pop(0), bool) if self.masked else None
        return y_true, y_pred, weight, mask

    def compute_output_shape(self, input_shape):
        shapes = [tuple(1 if n is None else n for n in s) for s in input_shape]
        arrays = [np.zeros(s, np.float32) for s in shapes]  # (the values' shape, from a run on zeros)
        y, _ = self.forward(arrays)
        return tuple(y.shape)

    def call(self, inputs, mask=None, training: bool = False):
        return self.forward(inputs)[0]

    def forward(self, inputs, mask=None, training: bool = True):
        y_true, y_pred, weight, mask = self._operands(inputs)
        y_pred = np.asarray(y_pred)
        loss = self.loss
        yt, values, dvalues, dtype, orig_shape, out_shape = loss._aligned_values(y_true, y_pred, loss.from_logits)
        if self.function:  # (Keras's loss function: the values, unweighted and unreduced)
            return values, (dvalues, None, dtype, orig_shape, out_shape)
        valid = loss._valid_positions(yt)
        if mask is not None:  # (the output's mask, ANDed with the loss's own, as Keras's Loss.__call__)
            valid = mask if valid is None else np.logical_and(mask, valid)
        reduction = loss.reduction
        if reduction in ("none", None):
            w = _weights(values.shape, dtype, weight, valid, reduction)
            out = values if w is None else values * w
            if out.ndim == 1 and np.ndim(weight) == 2 and np.shape(weight)[-1] == 1:
                out = out[:, None]  # (Keras expands one value per sample to the weights' (batch, 1))
            return out.astype(dtype, copy=False), (dvalues, w, dtype, orig_shape, out_shape)
        value, upstream = loss._reduced(values, dtype, weight, valid, True)
        return np.asarray(value, dtype), (dvalues, upstream, dtype, orig_shape, out_shape)

    def backward(self, dy, cache, need_dx: bool = True):
        dvalues, upstream, dtype, orig_shape, out_shape = cache
        values_shape = dvalues.shape[:-1]
        dy = np.asarray(dy, dtype)
        if dy.ndim and dy.shape != values_shape:  # ((batch, 1) values of (batch,) ones: back to the values' shape)
            dy = dy.reshape(values_shape)
        d = dy if upstream is None else dy * upstream
        g = (dvalues * np.broadcast_to(d, values_shape)[..., None]).astype(dtype, copy=False)
        if g.shape != out_shape:  # (the targets broadcast against the output: the gradient summed back)
            g = _sum_to_shape(g, out_shape)
        dx = [None, g.reshape(orig_shape)] if self.target is None else [g.reshape(orig_shape)]
        return dx + [None] * (self.weighted + self.masked), []


Loss._symbolic_call = staticmethod(symbolic_loss)
