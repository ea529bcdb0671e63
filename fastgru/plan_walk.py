"""Walking a Functional model's plan (``fastgru.graph``: one step per layer call, in Keras's order):
inference (:func:`run`), the training forward that keeps each step's cache and the activity regularizers'
terms (:func:`forward`), and the backward pass that adds up the gradients of tensors used several times
and of shared layers' weights (:func:`backward`). ``fastgru.functional.Model`` calls them.
"""

from __future__ import annotations

import numpy as np

from .graph import (
    _explicit_masks,
    call_mask,
)
from .graph_states import _bidirectional_backward, _bidirectional_forward, _rnn_backward, _rnn_forward
from .logit_source import chain_logits, graph_logits


def _step_inputs(step, vals: list, msk: list):
    """A step's input(s) and mask(s) from the slots (``run`` and ``forward`` alike): one value or a list
    (``step.list_args``), the masks None when none is set, explicit ``mask=`` arguments applied."""
    if step.list_args:
        x = [vals[s] for s in step.args]
        m = [msk[s] for s in step.args]
        m = None if all(v is None for v in m) else m
    else:
        x = vals[step.args[0]]
        m = msk[step.args[0]]
    if step.masks is not None:
        m = _explicit_masks(step, vals, m)
    return x, m


def _deletes_masks(model) -> bool:
    """Whether a layer of the plan removes its inputs' masks as it runs (Keras 3's MultiHeadAttention): then
    the walks keep each tensor's runtime mask apart from the one recorded when the graph was built."""
    return any(getattr(st.layer, "drops_input_masks", False) for st in model._steps)


def _reads_runtime(step) -> bool:
    """Keras's Attention, AdditiveAttention and MultiHeadAttention take the masks their input tensors carry
    when they run (no ``mask=`` is recorded in their nodes), so one that runs after a MultiHeadAttention
    on the same tensor sees it unmasked; the layers that take one tensor and a ``mask`` (RNNs, pooling)
    keep the masks recorded when the graph was built — but for a Keras 3 file's call recorded with
    ``"mask": null`` (its input had no mask when the graph was built: a nested model's output), which Keras
    fills in with the masks the tensors carry at run time (``Node.mask_at_run_time``). An explicit ``mask=``
    wins either way."""
    if step.masks is not None:
        return False
    return getattr(step.layer, "reads_runtime_masks", False) or step.mask_at_run_time


def _call_masks(step, rt: list, recorded, deleting: bool):
    """The mask(s) a step's layer runs with: the run-time ones (``rt``) where Keras reads those
    (:func:`_reads_runtime`) and a layer of the plan deletes masks (else they are the recorded ones)."""
    return _masks_of(step, rt) if deleting and _reads_runtime(step) else recorded


def _masks_of(step, masks: list):
    if step.list_args:
        m = [masks[a] for a in step.args]
        return None if all(v is None for v in m) else m
    return masks[step.args[0]]


def _update_runtime_masks(step, kind, layer, x, vals, m, rt: list, oms: list, n_out: int) -> None:
    """The runtime masks of a step's outputs (``rt``): Keras computes a layer's output mask from the masks
    its inputs carry when it runs (the recorded ones for the RNNs, whose nodes keep their ``mask=``), and
    a MultiHeadAttention removes those of the tensors it is called on (``set_keras_mask(x, None)``)."""
    rts = list(oms)
    if kind == "layer":
        m_rt = _masks_of(step, rt)
        if step.masks is not None:
            m_rt = _explicit_masks(step, vals, m_rt)
        rts = _output_masks(layer, x, m_rt, n_out)
    elif kind in ("rnn", "bidirectional"):
        rts = _output_masks(layer, x, m, n_out)
    if getattr(layer, "drops_input_masks", False):
        for a in step.args:
            rt[a] = None
    for j, out_slot in enumerate(step.outs):
        rt[out_slot] = rts[j] if j < len(rts) else None


def _output_masks(layer, x, m, n: int) -> list:
    om = layer.compute_mask(x, m)
    return (om if isinstance(om, list) else [om]) + [None] * n


class _Tape(list):
    """A training walk's per-step caches, plus the activity regularizers' terms: their summed penalty
    (``activity_loss``) and, per step index, {output index: gradient of the penalty}."""

    def __init__(self):
        super().__init__()
        self.activity_loss = 0.0
        self.activity_grads: dict[int, dict[int, np.ndarray]] = {}


def _activity_terms(layer, ys: list, logits: bool):
    """Keras 3 adds ``activity_regularizer(output) / batch size`` for every output of a layer's call (an
    RNN's sequence and its states alike); a Bidirectional's directions count as calls of their own, their
    penalties kept in its cache (``regularization.directions_cache``). ``logits``: ys[0] is the pre-activation of
    a Dense/Activation whose activation the loss folds in. Returns (penalty, {output index: its gradient}) or None."""
    from .training import regularization

    if getattr(layer, "activity_regularizer", None) is None:
        return None  # (a Bidirectional's directions' penalties: in its cache, regularization.directions_cache)
    total, grads = 0.0, {}
    for j, y in enumerate(ys):
        term = regularization.activity_penalty(layer, y, getattr(layer, "activation", None) if logits and j == 0
                                               else None)
        if term is not None:
            total += term[0]
            grads[j] = term[1]
    return total, grads


def _sequential_run(model, x, mask, training):
    model._ensure_built(np.asarray(x))
    for layer in model._layers:
        y = layer.call(x, mask=mask, training=training)
        mask = layer.compute_mask(x, mask)
        x = y
    return [x], [mask]


def _sequential_forward(model, x, mask, training, logits: bool = False):
    caches = []
    last = chain_logits(model._layers, training)[1] if logits else -1  # (the layer giving its pre-activation)
    for i, layer in enumerate(model._layers):
        extra = {"skip_activation": True} if i == last else {}
        y, cache = layer.forward(x, mask=mask, training=training, **extra)
        caches.append(cache)
        mask = layer.compute_mask(x, mask)
        x = y
    return [x], [mask], caches


def add_grads(a: list | None, b: list) -> list:
    """Two gradient lists summed where both have one; None (no gradient reached the weight) where neither."""
    if a is None:
        return list(b)
    return [y if x is None else x if y is None else x + y for x, y in zip(a, b)]


def _sequential_backward(model, d_outs, caches, need_dx):
    dy = d_outs[0]
    per = [None] * len(model._layers)
    for i in range(len(model._layers) - 1, -1, -1):
        if dy is None:  # (no gradient flows back past this point: none for the weights before it, as Keras)
            per[i] = [None] * len(model._layers[i].trainable_weights)
            continue
        dy, per[i] = model._layers[i].backward(dy, caches[i], need_dx=need_dx or i > 0)
        if not model._layers[i].trainable_weights:  # (a frozen layer whose backward still returns gradients)
            per[i] = []
    grads = [g for gs in per for g in gs] if model.trainable else []
    return dy, grads


def run(model, xs: list, masks: list | None = None, training: bool = False):
    """Inference walk of the plan: (outputs, output masks)."""
    vals: list = [None] * model._n_slots
    msk: list = [None] * model._n_slots
    for i, s in enumerate(model._input_slots):
        vals[s] = xs[i]
        msk[s] = None if masks is None else masks[i]
    deleting = _deletes_masks(model)
    rt: list = list(msk) if deleting else msk  # the masks as the tensors carry them at run time
    for step in model._steps:
        layer = step.layer
        x, m = _step_inputs(step, vals, msk)
        m_call = _call_masks(step, rt, m, deleting)  # (what the layer runs with; ``m`` propagates)
        kind = step.kind
        if kind == "layer":
            y = layer.call(x, mask=m_call, training=training, **step.call_kwargs)
            ys = y if isinstance(y, list) else [y]
            om = layer.compute_mask(x, m)
            oms = om if isinstance(om, list) else [om] + [None] * (len(ys) - 1)
        elif kind in ("rnn", "bidirectional"):
            states = [vals[s] for s in step.states] or None
            y = layer.call(x, mask=call_mask(step, m_call), training=training, initial_state=states)
            ys = y if isinstance(y, list) else [y]
            om = layer.compute_mask(x, m)
            oms = (om if isinstance(om, list) else [om]) + [None] * len(ys)
        elif kind == "sequential":
            ys, oms = _sequential_run(layer, x, m_call, training)
        else:
            ys, oms = layer._run(x if step.list_args else [x], m_call if step.list_args else [m_call], training)
        if deleting:
            _update_runtime_masks(step, kind, layer, x, vals, m, rt, oms, len(ys))
        for j, s in enumerate(step.outs):
            vals[s] = ys[j]
            msk[s] = oms[j] if j < len(oms) else None
        for s in step.free:
            vals[s] = None
            msk[s] = None
            rt[s] = None
    # (the outputs' masks as their tensors carry them, as ``forward`` gives them: a nested model whose
    # MultiHeadAttention deleted a mask its merge then lacks hands the outer layers no mask, in predict too)
    return [vals[s] for s in model._output_slots], [rt[s] for s in model._output_slots]


def forward(model, xs: list, masks: list | None, training: bool, logits: list | None = None):
    """Training walk: (outputs, output masks, tape). ``logits[k]``: the k-th output's Dense/Activation
    returns its pre-activation (the loss takes logits)."""
    vals: list = [None] * model._n_slots
    msk: list = [None] * model._n_slots
    for i, s in enumerate(model._input_slots):
        vals[s] = xs[i]
        msk[s] = None if masks is None else masks[i]
    # The masks the loss sees (``rt``, _update_runtime_masks): Keras computes each output's mask from the
    # masks its inputs carry when the layer runs, and a MultiHeadAttention deletes those of the tensors it
    # is called on, so a layer that runs after it on the same tensor gives its output a mask from an
    # unmasked input (checked against Keras: a merge of a MultiHeadAttention's input and output leaves the
    # loss unmasked); the layers themselves receive the recorded masks (``msk``), but for the attention
    # layers, which read the runtime ones (_reads_runtime).
    deleting = _deletes_masks(model)
    rt: list = list(msk) if deleting else msk
    skip = set()
    if logits:  # (the slot whose producer gives its pre-activation: through pass-through layers, logit_source)
        for k, flag in enumerate(logits):
            if flag:
                skip.add(graph_logits(model, k, training)[1])
    tape = _Tape()
    for index, step in enumerate(model._steps):
        layer = step.layer
        x, m = _step_inputs(step, vals, msk)
        m_call = _call_masks(step, rt, m, deleting)  # (what the layer runs with; ``m`` propagates)
        kind = step.kind
        logits_out = False
        if kind == "layer":
            if step.outs[0] in skip:
                logits_out = True
                y, cache = layer.forward(x, mask=m, training=training, skip_activation=True, **step.call_kwargs)
            else:
                y, cache = layer.forward(x, mask=m_call, training=training, **step.call_kwargs)
            ys = y if isinstance(y, list) else [y]
            om = layer.compute_mask(x, m)
            oms = om if isinstance(om, list) else [om] + [None] * (len(ys) - 1)
            tape.activity_loss += getattr(cache, "activity_loss", 0.0)  # (a custom layer's held layers' penalties)
        elif kind in ("rnn", "bidirectional"):
            states = [vals[s] for s in step.states]
            run = _rnn_forward if kind == "rnn" else _bidirectional_forward
            y, cache = run(layer, x, call_mask(step, m_call), training, states)
            tape.activity_loss += getattr(cache, "activity_loss", 0.0)  # (a Bidirectional's directions' penalties)
            ys = y if isinstance(y, list) else [y]
            om = layer.compute_mask(x, m)
            oms = (om if isinstance(om, list) else [om]) + [None] * len(ys)
        elif kind == "sequential":
            ys, oms, cache = _sequential_forward(layer, x, m_call, training, step.outs[0] in skip)
        else:
            ys, oms, cache = layer._forward(x if step.list_args else [x], m_call if step.list_args else [m_call],
                                            training, [True] if step.outs[0] in skip else None)  # (its logits)
            tape.activity_loss += cache.activity_loss  # a nested Functional model's own layers' penalties
        tape.append(cache)
        if deleting:
            _update_runtime_masks(step, kind, layer, x, vals, m, rt, oms, len(ys))
        if kind in ("layer", "rnn", "bidirectional"):
            terms = _activity_terms(layer, ys, logits_out)
            if terms is not None:
                tape.activity_loss += terms[0]
                tape.activity_grads[index] = terms[1]
        for j, s in enumerate(step.outs):
            vals[s] = ys[j]
            msk[s] = oms[j] if j < len(oms) else None
        for s in step.free:
            vals[s] = None
            msk[s] = None
            rt[s] = None
    outs = [vals[s] for s in model._output_slots]
    return outs, [rt[s] for s in model._output_slots], tape

def backward(model, d_outputs: list, tape: list, need_dx: bool = False):
    """(d inputs or None, grads aligned with ``trainable_weights``) from the outputs' gradients. A weight no
    gradient reaches (its layer feeds only an output without a loss, or only ops without a gradient such as
    argmax; also inside a nested model) gets None: Keras has no gradient for it, and its optimizer leaves it
    alone (no weight decay, no momentum step)."""
    grads: list = [None] * model._n_slots
    for s, d in zip(model._output_slots, d_outputs):
        if d is not None:
            grads[s] = d if grads[s] is None else grads[s] + d
    input_slots = set(model._input_slots)
    per_layer: dict[int, list] = {}
    activity = getattr(tape, "activity_grads", {})
    for index in range(len(model._steps) - 1, -1, -1):
        step, cache = model._steps[index], tape[index]
        d_outs = [grads[s] for s in step.outs]
        for j, g in activity.get(index, {}).items():  # the activity penalties' gradients join here
            d_outs[j] = g if d_outs[j] is None else d_outs[j] + g
        for s in step.outs:
            grads[s] = None
        layer = step.layer
        if all(d is None for d in d_outs) and not getattr(cache, "loss_sums", ()):
            continue  # nothing downstream depends on this call (a custom layer's add_loss terms still send theirs)
        in_slots = step.args + step.states
        want_dx = need_dx or any(s not in input_slots for s in in_slots)
        kind = step.kind
        d_states = []
        if kind == "layer":
            if len(d_outs) != 1 and not getattr(layer, "_call_options", None) and \
                    not getattr(layer, "_fg_user_layer", False):  # (a custom layer's traced call takes a list)
                raise ValueError(f"training through layer {layer.name!r}, which returns several outputs, is not "
                                 "supported")
            dx, g = layer.backward(d_outs[0] if len(d_outs) == 1 else d_outs, cache, need_dx=want_dx)
        elif kind == "rnn":
            if cache is None:
                raise ValueError(f"internal: {layer.name!r} ran without a training cache")
            dx, d_states, g = _rnn_backward(layer, d_outs, cache, want_dx)
        elif kind == "bidirectional":
            dx, d_states, g = _bidirectional_backward(layer, d_outs, cache, want_dx)
        elif kind == "sequential":
            dx, g = _sequential_backward(layer, d_outs, cache, want_dx)
        else:
            d_inputs, g = layer._backward(d_outs, cache, need_dx=True)
            dx = d_inputs if step.list_args else d_inputs[0]
        if g:
            per_layer[id(layer)] = add_grads(per_layer.get(id(layer)), g)
        if want_dx and dx is not None:
            dxs = dx if step.list_args else [dx]
            for s, d in zip(step.args, dxs):
                if d is not None:
                    grads[s] = d if grads[s] is None else grads[s] + d
        for s, d in zip(step.states, d_states):
            if d is not None:
                grads[s] = d if grads[s] is None else grads[s] + d
    out = []
    if model.trainable:
        for layer in model._weighted_layers:
            tw = layer.trainable_weights
            if not tw:
                continue
            g = per_layer.get(id(layer))
            out.extend(g if g is not None else [None] * len(tw))
    d_inputs = [grads[s] for s in model._input_slots] if need_dx else None
    return d_inputs, out
