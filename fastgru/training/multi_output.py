"""Training a Functional model with several inputs and outputs (Keras 3's bookkeeping).

``compile(loss=..., loss_weights=..., metrics=...)`` takes one loss (used for every output), a list in
output order or a dict keyed by output name; the total loss is ``sum(loss_weight * loss)`` and, with
several outputs, each output's (unweighted) loss is tracked as ``<output>_loss`` and its metrics as
``<output>_<metric>``. Results come in Keras's order: ``loss``, the outputs' losses, then the metrics
output by output. The loops themselves are ``trainer.fit/evaluate/...``: the inputs and targets travel
as a :class:`MultiArray` (one object that slices all arrays of a batch at once).
"""

from __future__ import annotations

import copy

import numpy as np

from .. import activations
from ..eager import plain
from ..logit_source import graph_logits
from . import compile_metrics, regularization
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .apply_step import apply_to_model
from .compiled import float64_model
from .keras_objects import is_serialized
from .metric_base import numbering_kept


class MultiArray:
    """Several arrays with one sample axis, sliced together (``len``, ``[idx]``)."""

    dtype = np.dtype(object)  # data_checks.check_finite_data skips it (check_xy scanned each array)
    size = 0

    def __init__(self, arrays):
        self.arrays = list(arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, idx) -> MultiArray:
        return MultiArray([a[idx] for a in self.arrays])

    @property
    def shape(self) -> tuple:
        return (len(self),)

    @property
    def ndim(self) -> int:
        return 1


def _per_output(model, value, what: str, allow_missing: bool):
    """``value`` (one spec, a list in output order, or a dict keyed by output name) as one entry per output;
    a serialized object (``{"class_name": ..., "config": ...}``, as a ``.keras`` file stores one) is one spec."""
    names = model.output_names
    if isinstance(value, dict) and not is_serialized(value, names):
        extra = [k for k in value if k not in names]
        if extra:
            raise ValueError(f"compile: {what} has keys {extra} that are not outputs of model {model.name!r}; "
                             f"its outputs are {names}")
        if not allow_missing:
            missing = [n for n in names if n not in value]
            if missing:
                raise ValueError(f"compile: {what} misses outputs {missing} (outputs: {names})")
        return [value.get(n) for n in names]
    if isinstance(value, (list, tuple)) and (len(names) > 1 or (what != "metrics" and len(value) == 1)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} lists {len(value)} entries, model {model.name!r} has {len(names)} "
                             f"outputs {names}")
        return list(value)
    return [value] * len(names) if what != "metrics" else [value]


def _metric_specs(model, metrics, multi: bool) -> list[list]:
    """``compile``'s ``metrics`` (or ``weighted_metrics``) as one list of metric specs per output."""
    names = model.output_names
    if metrics is None or (isinstance(metrics, (list, tuple)) and not metrics):  # none, as Keras takes []
        metric_specs = [[] for _ in names]
    elif isinstance(metrics, dict) and not is_serialized(metrics, names):
        metric_specs = _per_output(model, metrics, "metrics", allow_missing=True)
    elif multi:
        # (a list with one entry per output, each a metric or a list of them, as Keras 3 takes it)
        if not isinstance(metrics, (list, tuple)) or len(metrics) != len(names):
            raise ValueError(f"compile: model {model.name!r} has {len(names)} outputs {names}; give metrics as a "
                             "dict keyed by output name or a list with one entry (a metric or a list of them) per "
                             f"output; received {metrics!r:.200}")
        metric_specs = list(metrics)
    elif isinstance(metrics, (list, tuple)) and len(metrics) == 1 and isinstance(metrics[0], (list, tuple)):
        metric_specs = [metrics[0]]  # (metrics=[["mae"]]: Keras's list per output, for one output)
    else:
        metric_specs = [metrics]
    # (None entries: no metric, as tf_keras writes [[null], [...]] for an output compiled without one)
    metric_specs = [[] if m is None else [s for s in (m if isinstance(m, (list, tuple)) else [m]) if s is not None]
                    for m in metric_specs]
    with numbering_kept():
        for spec in (s for specs in metric_specs for s in specs):  # unknown metrics: refused by compile
            metrics_module.get(spec)
    return metric_specs


def _loss_weight(value, name: str) -> float:
    """One output's loss weight: a finite number, else a ValueError naming the output."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise ValueError(f"loss_weights for output {name!r} should be a finite number, received {value!r}")
    return float(value)


class MultiCompiled:
    """What ``compile`` fixed for a Functional model (see the module docstring)."""

    def __init__(self, model, optimizer, loss, loss_weights, metrics, weighted_metrics=None):
        names = model.output_names
        # as given (fastgru.distributed makes per-task copies)
        self.spec = (loss, loss_weights, metrics, weighted_metrics)
        self.multi = len(names) > 1
        self.optimizer = optimizers_module.get(optimizer)
        specs = [None] * len(names) if loss is None else _per_output(model, loss, "loss", allow_missing=True)
        # (no output's loss: the losses its layers add, add_loss, alone; train_step refuses a model with none)
        self.losses = [None if s is None else losses_module.get(s) for s in specs]
        if loss_weights is None:
            self.loss_weights = [1.0] * len(names)
        else:
            weights = _per_output(model, loss_weights, "loss_weights", allow_missing=True)
            self.loss_weights = [1.0 if w is None else _loss_weight(w, n) for w, n in zip(weights, names)]
        self.metric_specs = _metric_specs(model, metrics, self.multi)
        self.weighted_specs = _metric_specs(model, weighted_metrics, self.multi)
        self.names = names
        self.loss_tracker = metrics_module.Mean(name="loss")
        # per-output loss entries when more than one output has a loss (Keras's CompileLoss: len(flat_losses) > 1;
        # tf_keras's LossesContainer: when the model has more than one output)
        several = (self.multi if getattr(model, "_keras2_output_losses", False)
                   else sum(l is not None for l in self.losses) > 1)
        self.output_trackers = [metrics_module.Mean(name=f"{n}_loss") if (several and l is not None) else None
                                for n, l in zip(names, self.losses)]
        # the order of the per-output losses in evaluate's list: Keras's, for a dict of outputs, is the loss
        # dict's key order (a dict of losses) or the outputs dict's given order; else the outputs' order
        self._tracker_order = list(range(len(names)))
        if isinstance(model._output_struct, list):  # a dict of outputs: the loss dict's order, else the given one
            keys = list(loss) if isinstance(loss, dict) and not is_serialized(loss, names) else \
                list(getattr(model, "_output_key_order", None) or names)
            self._tracker_order.sort(key=lambda i: keys.index(names[i]) if names[i] in keys else len(keys))
        self._metrics: list | None = None
        self.keras2_ranks = False  # (set for a model compiled from a tf_keras file: io.restore_compile)
        self.metric_dtype = None  # (float64 for a float64 model: take_dtype)

    def take_dtype(self, model) -> None:
        """As ``Compiled.take_dtype``: a float64 model's trackers and string-named metrics count in float64."""
        if self._metrics is None and float64_model(model):
            self.metric_dtype = np.float64
            if self.loss_tracker.count == 0:
                self.loss_tracker = metrics_module.Mean(name="loss", dtype=np.float64)
                self.output_trackers = [None if t is None else metrics_module.Mean(name=t.name, dtype=np.float64)
                                        for t in self.output_trackers]

    @property
    def metrics(self) -> list:
        trackers = [self.output_trackers[i] for i in self._tracker_order if self.output_trackers[i] is not None]
        made = [m for ms in (self._metrics or []) for m in ms]
        # Keras lists a multi-output model's metrics by name: evaluate's list puts the logs its compiled metrics'
        # own (unprefixed) names do not find in sorted order, after the losses (_flatten_metrics_in_order)
        return trackers + (sorted(made, key=lambda m: m.name) if self.multi else made)

    def ensure_metrics(self, ys, preds) -> list:
        """Each output's metrics then its weighted metrics, named as Keras names them (compile_metrics)."""
        if self._metrics is None:
            plain, weighted = [], []
            for specs, wspecs, y, p in zip(self.metric_specs, self.weighted_specs, ys, preds):
                objs = [self._own(metrics_module.get(spec, y, p, self.metric_dtype), spec) for spec in specs]
                wobjs = [self._own(metrics_module.get(spec, y, p, self.metric_dtype), spec) for spec in wspecs]
                plain.append(objs)
                weighted.append(compile_metrics.own_objects(wobjs, objs))
            prefixes = self.names if self.multi else [None] * len(self.names)
            compile_metrics.name_metrics([(m, o) for ms, o in zip(plain, prefixes) for m in ms],
                                         [(m, o) for ms, o in zip(weighted, prefixes) for m in ms])
            self._metrics = [a + b for a, b in zip(plain, weighted)]
        return self._metrics

    def order(self) -> list[str]:
        """Keras's ``metrics_names`` as its evaluate list reads the logs (``compile_metrics.in_order``): the
        loss, the compiled metrics' own names (all outputs' metrics, then their weighted metrics), then the
        outputs' loss trackers."""
        made = self._metrics or []
        plain = [m for ms, specs in zip(made, self.metric_specs) for m in ms[:len(specs)]]
        weighted = [m for ms, specs in zip(made, self.metric_specs) for m in ms[len(specs):]]
        trackers = [self.output_trackers[i].name for i in self._tracker_order if self.output_trackers[i] is not None]
        if self.keras2_ranks:  # (tf_keras's metrics_names: the losses, then each output's metrics and weighted ones)
            return ["loss"] + trackers + [m.name for ms in made for m in ms]
        return ["loss"] + [getattr(m, "own_name", m.name) for m in plain + weighted] + trackers

    def _own(self, m, spec):
        """With several outputs, the caller's metric object is copied: its name stays as given (saved,
        compiled again) while the copy takes its output's prefix."""
        return copy.deepcopy(m) if (self.multi and m is spec) else m

    def reset(self) -> None:
        self.loss_tracker.reset_state()
        for t in self.output_trackers:
            if t is not None:
                t.reset_state()
        for ms in self._metrics or []:
            for m in ms:
                m.reset_state()

    def logs(self) -> dict:
        logs = {"loss": float(self.loss_tracker.result())}
        for m in self.metrics:
            logs[m.name] = plain(m.result())  # (Python floats and NumPy arrays, as Keras's logs)
        return logs


def _flat_targets(model, y):
    """Targets given in the structure of a model's nested outputs (``functional._nesting``), flattened as its
    outputs are; else ``y``."""
    if getattr(model, "_output_nesting", None) is None or not isinstance(y, (list, tuple)) or \
            not any(isinstance(v, (list, tuple)) for v in y):
        return y
    flat: list = []

    def walk(item):
        for v in item:
            walk(v) if isinstance(v, (list, tuple)) else flat.append(v)

    walk(y)
    return flat


def check_xy(model, x, y, sample_weight=None):
    """Inputs (list/dict/array) and targets (one per output: array, list or dict keyed by output name)
    checked, as MultiArrays, before anything is computed."""
    from .data_checks import _numeric, check_finite_data

    names = model.output_names
    # outputs compiled with loss None need no targets (as Keras): y for the others, or None in their place
    losses = getattr(getattr(model, "_compiled", None), "losses", None) or [True] * len(names)
    lossless = {names[k] for k, loss in enumerate(losses) if loss is None}
    if y is None and len(lossless) < len(names):
        raise ValueError("Training and evaluation need targets y; received y=None")
    y = [None] * len(names) if y is None else _flat_targets(model, y)  # (targets nested as the outputs are)
    if isinstance(x, MultiArray):
        x = x.arrays
    xs = model._input_list(x)
    if isinstance(y, dict):
        y = {**{n: None for n in lossless}, **y}
    elif lossless and len(names) > 1 and not isinstance(y, (list, tuple, MultiArray)) \
            and len(names) - len(lossless) == 1:
        y = [None if n in lossless else y for n in names]
    elif lossless and isinstance(y, (list, tuple)) and len(y) == len(names) - len(lossless):
        given = iter(y)  # (a list for the outputs that have losses, in order, as Keras pairs them)
        y = [None if n in lossless else next(given) for n in names]
    if isinstance(y, MultiArray):  # already one array per output (validation data checked by fit)
        ys = list(y.arrays)
    elif isinstance(y, dict):
        missing = [n for n in names if n not in y]
        extra = [k for k in y if k not in names]
        if extra or missing:
            raise ValueError(f"Model {model.name!r} has outputs {names}; the targets dict "
                             + (f"misses {missing}" if missing else "") + (" and " if missing and extra else "")
                             + (f"has unknown keys {extra}" if extra else ""))
        ys = [y[n] for n in names]
    elif isinstance(y, (list, tuple)) and len(names) > 1:
        if len(y) != len(names):
            raise ValueError(f"Model {model.name!r} has {len(names)} outputs {names}, received {len(y)} target arrays")
        ys = list(y)
    elif len(names) > 1:
        raise ValueError(f"Model {model.name!r} has {len(names)} outputs {names}: give the targets as a list or a dict "
                         "keyed by output name")
    else:
        from .structures import single

        ys = [single(y, "output")]  # ([y]: Keras's one-element list for a single output)
    n = len(xs[0])
    if n == 0:
        raise ValueError("the data has no samples (0 rows): fit, evaluate and train_on_batch need at least one")
    # (no target for a loss-less output: an empty (n, 0) placeholder that slices with the batches)
    for name, a in zip(names, ys):
        if a is None and name not in lossless:
            raise ValueError(f"targets for output {name!r} are None, but that output has a loss: give its targets, "
                             "or compile it with loss None")
    ys = [np.zeros((n, 0), np.float32) if a is None and name in lossless else
          _numeric(f"y[{name!r}]" if len(names) > 1 else "y", a) for name, a in zip(names, ys)]
    for name, a in zip(names, ys):
        if a.ndim == 0:
            raise ValueError(f"targets for output {name!r} must have one entry per sample, received a scalar")
        if len(a) != n:
            raise ValueError(f"x and y must have the same number of samples: the inputs have {n}, the targets for "
                             f"output {name!r} {len(a)}")
    if isinstance(sample_weight, MultiArray):
        pass
    elif isinstance(sample_weight, dict) or (isinstance(sample_weight, (list, tuple)) and len(names) > 1
                                             and not np.isscalar(sample_weight[0])):
        # one array per output (a list in output order, or a dict keyed by output name; None: unweighted)
        if isinstance(sample_weight, dict):
            extra = [k for k in sample_weight if k not in names]
            if extra:
                raise ValueError(f"sample_weight has keys {extra} that are not outputs of model {model.name!r} "
                                 f"({names})")
            given = [sample_weight.get(k) for k in names]
        else:
            if lossless and len(sample_weight) == len(names) - len(lossless):  # (those of the outputs with losses)
                given = iter(sample_weight)
                sample_weight = [None if n in lossless else next(given) for n in names]
            if len(sample_weight) != len(names):
                raise ValueError(f"sample_weight lists {len(sample_weight)} arrays, model {model.name!r} has "
                                 f"{len(names)} outputs {names}")
            given = list(sample_weight)
        checked = []
        for k, w in zip(names, given):
            w = np.ones(n, np.float32) if w is None else _numeric(f"sample_weight[{k!r}]", w)
            if w.ndim == 0 or len(w) != n:
                raise ValueError(f"sample_weight[{k!r}] must have {n} entries, received shape {w.shape}")
            checked.append(w)
        sample_weight = MultiArray(checked)
    elif sample_weight is not None:
        sample_weight = _numeric("sample_weight", sample_weight)
        if sample_weight.ndim == 0 or len(sample_weight) != n:
            raise ValueError(f"sample_weight must have {n} entries, received shape {sample_weight.shape}")
    for k, a in enumerate(xs):
        if a.dtype.kind in "fc":
            check_finite_data(a, None, None, max(n, 1), f"input {model.input_names[k]!r}")
    return MultiArray(xs), MultiArray(ys), sample_weight


def _logit_flags(model, compiled: MultiCompiled, ys, training: bool) -> tuple[list[bool], list[bool], list]:
    """Per output: whether its loss reads logits, whether its logits are computed (its loss or one of its
    metrics reads them: ``compile_metrics.reads_logits``), and its activation (``logit_source``, through
    pass-through layers and nested models, as TensorFlow's tag stays on the tensor)."""
    shapes = [(len(ys[k]),) + tuple(out.shape[1:]) for k, out in enumerate(model._outputs)]
    compiled.take_dtype(model)  # (before the metrics are made: a float64 model's count in float64)
    metrics = compiled.ensure_metrics(ys, shapes)
    flags, wanted, acts = [], [], []
    for k, (slot, loss) in enumerate(zip(model._output_slots, compiled.losses)):
        producer = model._outputs[k].node
        act = graph_logits(model, k, training)[0]
        sole = (model._consumers.get(slot, 0) == 0 and model._output_slots.count(slot) == 1
                and not producer.is_input and len(producer.outputs) == 1)
        flags.append(bool(loss is not None and sole and act is not None
                          and losses_module.uses_logits(loss, act, ys[k], shapes[k])))
        wanted.append(flags[-1] or (sole and compile_metrics.reads_logits(metrics[k], act)))
        acts.append(act)
    return flags, wanted, acts


def _step(model, x: MultiArray, y: MultiArray, sample_weight, training: bool):
    compiled = model._compiled
    ys = y.arrays
    flags, wanted, acts = _logit_flags(model, compiled, ys, training)
    if training:
        _refuse_activity_regularizers(model)
    outs, masks, tape = model._forward(x.arrays, None, training, wanted)
    compiled.take_dtype(model)
    # the weight regularizers' and the activity regularizers' penalties join the loss, as Keras's
    # compute_loss (training/regularization.py); the activity terms' gradients are in the tape
    total = regularization.weight_penalty(model._layers_and_ops, model.trainable_weights) + tape.activity_loss
    d_outs, preds, logits = [], [], []
    for k, (loss, w, out, mask, yk) in enumerate(zip(compiled.losses, compiled.loss_weights, outs, masks, ys)):
        act = acts[k]
        sw = sample_weight.arrays[k] if isinstance(sample_weight, MultiArray) else sample_weight
        sw = compile_metrics.keras2_weights_over_steps(compiled, sw, mask)
        pred = activations.apply(act, out) if wanted[k] else out  # (the logits are computed: the probabilities)
        if flags[k]:
            value, grad = loss.value_and_grad_from_logits(yk, out, sample_weight=sw, mask=mask)
        elif loss is not None:
            value, grad = loss.value_and_grad(yk, pred, sample_weight=sw, mask=mask)
            if wanted[k]:  # (a metric's logits: the loss's gradient through the activation)
                grad = activations.gradient(act, out, pred, grad)
        else:
            value, grad = None, None
        if value is not None:
            total += w * float(value)
            if compiled.output_trackers[k] is not None:
                # Keras weights these by y_pred.shape[0], which is None inside its compiled train step:
                # each batch counts once (unlike the total loss, weighted by batch size); tf_keras by batch size
                by_size = getattr(model, "_keras2_output_losses", False)
                compiled.output_trackers[k].update_state(value, sample_weight=len(out) if by_size else None)
            if grad is not None and w != 1.0:
                grad = grad * grad.dtype.type(w)
        d_outs.append(grad)
        preds.append(pred)
        logits.append((out, act) if wanted[k] else None)
    compiled.loss_tracker.update_state(total, sample_weight=len(preds[0]))
    for k, (ms, yk, pred, mask) in enumerate(zip(compiled.ensure_metrics(ys, preds), ys, preds, masks)):
        # the compiled metrics take no sample_weight, the weighted metrics do (Keras 3)
        sw = sample_weight.arrays[k] if isinstance(sample_weight, MultiArray) else sample_weight
        compile_metrics.update(ms, len(compiled.metric_specs[k]), yk, pred, sw, mask, compiled.keras2_ranks,
                               logits[k])
    return d_outs, tape


def _refuse_activity_regularizers(model) -> None:
    """The graph applies the activity regularizers of the layers it calls (``Model._forward``), and of
    a nested Functional model's layers; a Sequential model nested in a graph does not yet: refused rather
    than trained without them."""
    for step in model._steps:
        if step.kind != "sequential":
            continue
        for top in step.layer._layers_and_ops:
            for layer in regularization._owners(top):
                if getattr(layer, "activity_regularizer", None) is not None:
                    raise NotImplementedError(
                        f"layer {layer.name!r}: an activity_regularizer inside a Sequential model nested in a "
                        "Functional model is not applied in training yet")
        if getattr(step.layer, "activity_regularizer", None) is not None:
            raise NotImplementedError(f"model {step.layer.name!r}: an activity_regularizer on a nested model is "
                                      "not applied in training yet")


def train_step(model, x, y, sample_weight=None) -> None:
    d_outs, tape = _step(model, x, y, sample_weight, training=True)
    _, grads = model._backward(d_outs, tape)  # (None: Keras leaves such weights alone)
    if all(loss is None for loss in model._compiled.losses) and all(g is None for g in grads):
        raise ValueError("No loss to compute. Provide a `loss` argument in `compile()` (no output has a loss, and "
                         "no layer adds one with add_loss)")
    grads = regularization.add_weight_gradients(model._layers_and_ops, model.trainable_weights, grads)
    model._compiled.optimizer.batch_size = len(x)  # (tf_keras's Nadam steps: optimizers.Nadam)
    apply_to_model(model._compiled.optimizer, grads, model)
    regularization.apply_constraints(model._layers_and_ops, model.trainable_weights)


def test_step(model, x, y, sample_weight=None) -> None:
    _step(model, x, y, sample_weight, training=False)
