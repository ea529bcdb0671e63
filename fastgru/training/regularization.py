"""Regularization losses in training, as Keras 3's trainer adds them (``Model.compute_loss``: the
compiled loss plus ``sum(model.losses)``):

* weight penalties: ``regularizer(w)`` for every *trainable* weight that has a regularizer (a layer's
  ``weight_regularizers``, weight name -> regularizer; a wrapper's inner layers too), added to the
  loss, and ``regularizer.gradient(w)`` added to that weight's gradient;
* activity penalties: a layer's ``activity_regularizer`` applied to its output, **divided by the batch
  size** (Keras 3 ``Layer.__call__``; ``ActivityRegularization`` is a layer whose only job is this),
  added to the loss, and its gradient added to the gradient flowing into that layer's output.

Both count in the reported loss, in training and in ``evaluate``/``test_on_batch`` (Keras computes
the same total there). These helpers take layers and weight lists, not a model class: the Sequential
trainer (``trainer.py``) and a graph trainer call the same three functions.
"""

from __future__ import annotations

import numpy as np

from .. import activations
from ..variables import array_of
from .row_gradient import RowGradient


def activity_penalty(layer, y, activation: str | None = None):
    """``(penalty, d penalty / d y)`` of ``layer``'s activity regularizer on its output ``y`` (batch axis
    first), or None when the layer has none. ``activation``: ``y`` is the pre-activation (logits) of a last
    layer whose activation the loss folds in; the penalty is taken on the activated output and its
    gradient brought back through the activation."""
    reg = getattr(layer, "activity_regularizer", None)
    if not isinstance(y, np.ndarray) or reg is None:
        return None  # (a Bidirectional's directions' penalties: its training cache, ``directions_cache``)
    out = y if activation is None else activations.apply(activation, y)
    batch = y.shape[0] if y.ndim > 0 else 1
    scale = 1.0 / batch if batch else 0.0  # Keras: divide_no_nan(loss, batch_size)
    value = float(reg(out)) * scale
    grad = reg.gradient(out) * out.dtype.type(scale)
    if activation is not None:
        grad = activations.gradient(activation, y, out, grad)
    return value, grad


class DirectionsCache(tuple):
    """A Bidirectional's training cache ``(forward cache, backward cache, forward output, backward output)`` with
    its directions' activity penalties: ``activity_loss`` (their sum, which the training walks add to the loss as a
    nested model's) and ``activity_grads`` (per direction, the gradients of its outputs ``[output, *states]``, None
    where none), which the Bidirectional's backward adds to what reaches each direction."""

    activity_loss = 0.0
    activity_grads = ((), ())


def directions_cache(layer, cache_f, cache_b, outs_f: list, outs_b: list) -> tuple:
    """The cache of a Bidirectional's training forward, with the activity penalties of its directions: Keras calls
    each direction as a layer, whose ``activity_regularizer`` counts on each of its outputs (the sequence or last
    output, and with ``return_state`` each state), divided by the batch size; whatever the merge mode.
    ``outs_*``: each direction's outputs, ``[output, *states]`` (the backward one's in its processing order)."""
    cache = DirectionsCache((cache_f, cache_b, outs_f[0], outs_b[0]))
    subs = (layer.forward_layer, layer.backward_layer)
    if all(getattr(sub, "activity_regularizer", None) is None for sub in subs):
        return cache
    total, grads = 0.0, []
    for sub, outs in zip(subs, (outs_f, outs_b)):
        terms = [activity_penalty(sub, out) for out in outs]
        total += sum(t[0] for t in terms if t is not None)
        grads.append(tuple(None if t is None else t[1] for t in terms))
    cache.activity_loss, cache.activity_grads = total, tuple(grads)
    return cache


def with_penalty(d, penalty):
    """An output's gradient ``d`` (None: none reached it) with its activity penalty's gradient added."""
    if penalty is None:
        return d
    return penalty if d is None else d + penalty.astype(np.asarray(d).dtype, copy=False)


def _owners(layer):
    """``layer`` and the layers whose weights it holds (a Bidirectional's two directions, a wrapper's inner
    layer, the loop's cell of ``RNN(cell)``, the layers a custom layer holds)."""
    yield layer
    if getattr(type(layer), "_fg_user_layer", False):  # (a custom layer: the layers it holds in its attributes)
        for value in list(vars(layer).values()):
            for sub in value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) \
                    else (value,):
                if sub is not layer and (hasattr(sub, "_params") or hasattr(sub, "_layers_and_ops")) and \
                        hasattr(sub, "trainable_weights"):  # (a layer, or a Sequential or Model it holds)
                    yield from _owners(sub)
        return
    for attr in ("layers", "layer", "cell"):
        inner = getattr(layer, attr, None)
        if inner is None or inner is layer:
            continue
        for sub in (inner if isinstance(inner, (list, tuple)) else [inner]):
            if hasattr(sub, "weight_regularizers") or hasattr(sub, "layers"):
                yield from _owners(sub)
        break


def weight_regularizers(layers) -> dict[int, tuple]:
    """``id(weight array) -> (regularizer, array)`` for every weight of ``layers`` with a regularizer."""
    found = {}
    for top in layers:
        for layer in _owners(top):
            regs = getattr(layer, "weight_regularizers", None)
            params = getattr(layer, "_params", None)
            if not regs or params is None:
                continue
            for name, reg in regs.items():
                w = params.get(name)
                if w is not None:
                    found[id(w)] = (reg, w)
    return found


def weight_penalty(layers, trainable_weights) -> float:
    """Sum of the weight penalties of the trainable weights (Keras: ``_get_regularization_losses``)."""
    regs = weight_regularizers(layers)
    trainable_weights = [array_of(w) for w in trainable_weights]  # (the layers' arrays, not their variables)
    return float(sum(float(regs[id(w)][0](w)) for w in trainable_weights if id(w) in regs))


def add_weight_gradients(layers, trainable_weights, grads: list) -> list:
    """``grads`` (aligned with ``trainable_weights``) with each regularized weight's penalty gradient
    added (an Embedding's row gradient becomes dense, as TensorFlow adds slices to a dense gradient)."""
    regs = weight_regularizers(layers)
    if not regs:
        return grads
    out = list(grads)
    for i, w in enumerate(map(array_of, trainable_weights)):
        entry = regs.get(id(w))
        if entry is None:
            continue
        g = out[i]
        if g is None:  # (no gradient from the loss: the penalty's alone)
            out[i] = entry[0].gradient(w).astype(w.dtype, copy=False)
            continue
        if isinstance(g, RowGradient):
            g = g.dense()
        out[i] = (g + entry[0].gradient(w).astype(g.dtype, copy=False)).astype(w.dtype, copy=False)
    return out


def apply_constraints(layers, trainable_weights) -> None:
    """Each constrained trainable weight projected in place (Keras's optimizer assigns ``constraint(w)``
    after its update): ``layer.weight_constraints``, weight name -> fastgru.constraints object."""
    constrained = {}
    for top in layers:
        for layer in _owners(top):
            params = getattr(layer, "_params", None) or {}
            for name, constraint in (getattr(layer, "weight_constraints", None) or {}).items():
                w = params.get(name)
                if w is not None:
                    constrained[id(w)] = constraint
    for w in map(array_of, trainable_weights):
        constraint = constrained.get(id(w))
        if constraint is not None:
            w[...] = constraint(w)
