"""Training through a custom layer (``layers.custom``): fastgru has no gradient for Python code, so the layer's
``call`` is traced — called once on symbolic tensors of the batch's shapes — into a small Functional graph of the
``fastgru.ops`` (and operators, and layers it holds) that it applies to its input, and training runs that graph
forward and back. The layer's weights enter the graph as live operands (``variables.traced_operand``): every run
reads their current values, and the backward pass collects their gradients (``variables.collected_gradients``),
which are returned with those of the layers it holds, in ``trainable_weights`` order.

Inference keeps calling ``call`` on arrays (the same ops: the same values). A call that cannot be traced — it
computes from a weight alone, converts its input to NumPy, branches on its values — trains nothing and says why
(:class:`~fastgru.errors.UnsupportedKerasFeature`); a layer without trainable weights at the model's start, which
needs no gradient, still runs eagerly then.
"""

from __future__ import annotations

import numpy as np

from .. import keras_masks
from ..eager import plain
from ..errors import UnsupportedKerasFeature
from ..tracing import (
    add_gradients,
    collected_gradients,
    drawing,
    generation,
    is_weight_valued,
    operand_value,
    send_gradient,
    swapped_weights,
    traced_call,
    updating,
)
from ..variables import array_of
from . import registry
from .batch_totals import collecting
from .names import names_kept

#: traces kept per layer (one per input signature: shapes, dtypes, mask, training)
_MAX_TRACES = 8


class _Trace:
    """One traced call: ``model`` (inputs: the layer's, its mask, then its random draws; outputs: the layer's,
    then the per-sample sums of what its ``add_loss`` was given), whether the layer takes and returns lists, and
    the weight arrays the trace read (a replaced array retraces)."""

    def __init__(self, model, n_inputs: int, list_inputs: bool, list_outputs: bool, arrays: tuple, added=None,
                 draws=(), updates=()):
        self.model, self.n_inputs, self.list_inputs, self.list_outputs = model, n_inputs, list_inputs, list_outputs
        self.arrays = arrays
        self.draws = list(draws)  # (keras.random draws: functions giving the values of the model's last inputs)
        self.generation = generation()  # (compile retraces: tracing.retrace)
        self.updates = list(updates)  # (assignments to its weights, made at each run: tracing.updating)
        self.added = added  # (add_loss's terms, a batch_totals.BatchTotal: its per-sample sums the last outputs)


class _Cache:
    """A traced call's training cache: the trace and the graph's tape; ``activity_loss``, the activity penalties of
    the layers it holds and the losses its ``add_loss`` was given (counted in the loss by the trainers; their
    gradients are applied inside the graph); ``loss_sums``, the per-sample sums of the latter (shapes, dtypes)."""

    def __init__(self, trace: _Trace, tape, added_loss: float = 0.0, loss_sums: tuple = ()):
        self.trace, self.tape, self.added_loss, self.loss_sums = trace, tape, added_loss, loss_sums

    @property
    def activity_loss(self) -> float:
        return self.tape.activity_loss + self.added_loss


def _masks(mask) -> list:
    """The masks given to the call as a list (one per input of a list input, None where an input has none)."""
    return [] if mask is None else list(mask) if isinstance(mask, (list, tuple)) else [mask]


def _signature(xs: list, mask, training: bool, options: dict) -> tuple:
    return (tuple((a.shape, a.dtype.str) for a in xs), isinstance(mask, (list, tuple)),
            tuple(None if m is None else np.shape(m) for m in _masks(mask)), bool(training),
            tuple(sorted((k, repr(v)) for k, v in options.items())))


def _weight_arrays(layer) -> tuple:
    return tuple(id(array_of(w)) for w in layer.weights)


def _trace(layer, xs: list, list_inputs: bool, mask, training: bool, options: dict) -> _Trace:
    """``layer.call`` traced on symbolic inputs like ``xs`` (and ``mask``): its graph as a Functional model."""
    Input, Model = registry.model_class("Input"), registry.model_class("Functional")  # (no import of functional)
    inbound = {id(sub): (sub, len(sub.__dict__.get("_inbound_nodes", ()))) for sub in _held_layers(layer)}
    try:
        with traced_call(layer.name), names_kept(), swapped_weights(layer), collecting() as added, updating() as \
                updates, drawing(xs[0].shape[0] if xs and xs[0].ndim else -1) as draws:  # (names: none of the user's)
            inputs = [Input(batch_shape=a.shape, dtype=a.dtype.name) for a in xs]  # (the batch's size: ops.shape(x)[0])
            mask_inputs = [None if m is None else Input(batch_shape=np.shape(m), dtype="bool") for m in _masks(mask)]
            given = inputs if list_inputs else inputs[0]
            listed = isinstance(mask, (list, tuple))
            kwargs = {} if mask is None else {"mask": mask_inputs if listed else mask_inputs[0]}
            step = layer.__dict__.get("_fg_step_call")  # (a cell looped by an RNN: [x, *states] in, out cell_rnn.py)
            outputs = step(given, training) if step is not None else \
                type(layer).call(layer, given, training=training, **kwargs, **options)
            list_outputs = isinstance(outputs, (list, tuple))
            outs = list(outputs) if list_outputs else [outputs]
            if not outs or not all(getattr(o, "_fg_symbolic", False) for o in outs):
                raise UnsupportedKerasFeature("its call returned values that do not come from its input")
            loss_sums = [t for t, _ in added.terms]
            model = Model(inputs + [m for m in mask_inputs if m is not None] + [t for t, _ in draws], outs + loss_sums,
                          name=f"{layer.name}_traced_call")
    except UnsupportedKerasFeature as exc:
        raise UnsupportedKerasFeature(_untraceable(layer, exc)) from None
    except (TypeError, ValueError, NotImplementedError, AttributeError, IndexError) as exc:
        raise UnsupportedKerasFeature(_untraceable(layer, exc)) from None
    finally:
        for sub, n in inbound.values():  # (the layers it holds keep only the nodes of the user's own graphs)
            if "_inbound_nodes" in sub.__dict__:
                del sub.__dict__["_inbound_nodes"][n:]
    return _Trace(model, len(inputs), list_inputs, list_outputs, _weight_arrays(layer),
                  added if added.terms or added.expressions or added.constant else None, [d for _, d in draws],
                  updates)


def _held_layers(layer, seen=None) -> list:
    """The layers ``layer`` holds in its attributes (directly or in lists), and theirs, once each."""
    seen = {id(layer)} if seen is None else seen
    found = []
    for value in list(vars(layer).values()):
        value = list(value.values()) if isinstance(value, dict) else value
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if (hasattr(item, "_params") or hasattr(item, "_layers_and_ops")) and hasattr(item, "trainable_weights") \
                    and id(item) not in seen:  # (a layer, or a model it holds)
                seen.add(id(item))
                found += [item] + _held_layers(item, seen)
    return found


def _untraceable(layer, exc) -> str:
    reason = str(exc) if isinstance(exc, UnsupportedKerasFeature) else f"{type(exc).__name__}: {exc}"
    return (f"custom layer {layer.name!r} ({type(layer).__name__}) cannot be trained in fastgru: its call could not "
            f"be traced on symbolic tensors to find its gradient ({reason}). fastgru differentiates the fastgru.ops, "
            "operators and layers a call applies to its input; train the model in Keras and load it, or build it "
            "from fastgru's layers")


def traced(layer, xs: list, list_inputs: bool, mask, training: bool, options: dict) -> _Trace:
    """The layer's trace for this input signature (made on first use, kept while its weight arrays stay)."""
    traces = layer.__dict__.setdefault("_fg_traces", {})
    key = _signature(xs, mask, training, options)
    hit = traces.get(key)
    if hit is not None and hit.arrays == _weight_arrays(layer) and hit.generation == generation():
        return hit
    if len(traces) >= _MAX_TRACES:
        traces.pop(next(iter(traces)))
    trace = traces[key] = _trace(layer, xs, list_inputs, mask, training, options)
    return trace


def traced_logits_activation(self) -> str | None:
    """"sigmoid"/"softmax" when the traced call's one output comes from such an op (or a Dense or Activation of it)
    used nowhere else: its output tags the logits a crossentropy reads, as TensorFlow's tensor does in Keras."""
    trace = next(reversed(list((self.__dict__.get("_fg_traces") or {}).values())), None)
    if trace is None and self.built and self.input_shape is not None:  # (traced on a batch of one to see)
        listed = bool(self.input_shape) and isinstance(self.input_shape[0], (list, tuple))
        shapes = self.input_shape if listed else [self.input_shape]
        try:
            trace = traced(self, [np.zeros((1,) + tuple(1 if d is None else d for d in s[1:]), self.dtype)
                                  for s in shapes], listed, None, True, {})
        except UnsupportedKerasFeature:
            return None
    if trace is None or trace.list_outputs or trace.added is not None or len(trace.model._outputs) != 1:
        return None
    out = trace.model._outputs[0]
    layer = out.node.layer
    if trace.model._consumers.get(trace.model._output_slots[0], 0) or len(out.node.outputs) != 1:
        return None
    return (getattr(layer, "activation", None) if type(layer).__name__ in ("Dense", "Activation")
            else getattr(layer, "logits_activation", None))


def forward_traced(self, x, mask=None, training: bool = True, skip_activation: bool = False, **options):
    """Training's forward pass of a custom layer: its traced call run as a graph, the graph's tape as the cache;
    a layer with nothing to train whose call cannot be traced runs eagerly (no input gradient then). ``options``:
    the call's other arguments given in the graph (``layer(x, temperature=0.5)``), traced with their values."""
    list_inputs = isinstance(x, (list, tuple))
    xs = [np.asarray(a) for a in (x if list_inputs else [x])]
    incoming, mask = mask, (mask if getattr(type(self).call, "_fg_wants_masks", False) else None)
    try:
        trace = traced(self, xs, list_inputs, mask, training, options)
    except UnsupportedKerasFeature as exc:
        if self.trainable_weights and training:  # (evaluating needs no gradient: its call runs, as predict's)
            raise
        out = self.call(x, mask=incoming, training=training, **options)
        if self.__dict__.get("_fg_added_losses"):  # (a loss the training would leave out)
            raise
        return out, str(exc)
    for variable, kind, value in trace.updates:  # (a step counter's assign_add: made at every step, as in Keras)
        getattr(variable, kind)(operand_value(value) if is_weight_valued(value) else plain(value))
    inputs = xs + [np.asarray(m, dtype=bool) for m in _masks(mask) if m is not None] + [d() for d in trace.draws]
    logits = [skip_activation] + [False] * (len(trace.model._outputs) - 1)  # (its output's logits: the loss's)
    # (the masks its inputs carry reach the layers it holds, as Keras's tensors carry them: keras_masks)
    masks = None
    if incoming is not None:
        given = list(incoming) if isinstance(incoming, (list, tuple)) else [incoming] + [None] * (len(xs) - 1)
        masks = given[:len(xs)] + [None] * (len(inputs) - len(xs))
    outs, out_masks, tape = trace.model._forward(inputs, masks, training, logits if skip_activation else None)
    outs = list(outs)
    kept = list(out_masks[:len(outs) - (len(trace.added.terms) if trace.added is not None else 0)])
    keras_masks.record(self, x, (kept if any(m is not None for m in kept) else None) if trace.list_outputs
                       else kept[0])
    added, sums = trace.added, ()
    if added is not None:  # (add_loss's terms: the last outputs, summed over the batch times their coefficients)
        n = len(outs) - len(added.terms)
        outs, sums = outs[:n], [np.asarray(s) for s in outs[n:]]
        value = added.constant + sum(c * float(np.sum(s, dtype=s.dtype)) for s, (_, c) in zip(sums, added.terms))
        value += sum(k * float(np.sum(operand_value(e))) for e, k in added.expressions)
        return (outs if trace.list_outputs else outs[0]), _Cache(trace, tape, value,
                                                                  tuple((s.shape, s.dtype) for s in sums))
    return (outs if trace.list_outputs else outs[0]), _Cache(trace, tape)


def backward_traced(self, dy, cache, need_dx: bool = True):
    """(d input, gradients of ``trainable_weights``; None for one no gradient reaches, as Keras has none)."""
    if isinstance(cache, str):  # (nothing to train, call not traced: no gradient for the layers before it)
        if need_dx:
            raise UnsupportedKerasFeature(cache)
        return None, []
    trace, tape = cache.trace, cache.tape
    dys = list(dy) if trace.list_outputs else [dy]
    added = trace.added
    if added is not None:  # (d loss / d per-sample sum: its coefficient, for every sample)
        dys += [np.full(shape, c, dtype) if dtype.kind == "f" else None
                for (shape, dtype), (_, c) in zip(cache.loss_sums, added.terms)]
    with collected_gradients() as grads:
        d_inputs, inner = trace.model._backward(dys, tape, need_dx=True)
        for expression, k in added.expressions if added is not None else ():  # (add_loss of weights alone)
            value = operand_value(expression)
            send_gradient(expression, np.full(np.shape(value), k, np.asarray(value).dtype))
    at = 0
    for layer in trace.model._weighted_layers:  # (the layers the call holds, as plan_walk lists their gradients)
        for w in layer.trainable_weights:
            g = inner[at]
            at += 1
            if g is not None:
                key = id(array_of(w))
                grads[key] = g if key not in grads else add_gradients(grads[key], g)
    weight_grads = [grads.get(id(array_of(w))) for w in self.trainable_weights]
    dx = d_inputs[:trace.n_inputs]
    return (dx if trace.list_inputs else dx[0]), weight_grads
