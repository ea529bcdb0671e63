"""The training loops behind ``Sequential.compile/fit/evaluate/train_on_batch/test_on_batch``.

Keras 3's bookkeeping is reproduced: the reported loss is a running mean weighted by batch size,
computed from the forward pass *before* the optimizer step; metrics reset at each epoch and at each
``train_on_batch``/``test_on_batch``/``evaluate`` call; ``validation_split`` takes the last fraction
before shuffling; when the output layer is a Dense with sigmoid/softmax, the crossentropies are
computed from its pre-activation (what Keras's TensorFlow backend does).
"""

from __future__ import annotations

import math

import numpy as np

from ..logit_source import chain_logits
from . import compile_metrics, regularization
from . import losses as losses_module
from .apply_step import apply_to_model
from .batching import (
    BatchStream,
    batch_indices,
    check_class_weight,
    check_stateful_batches,
    check_stream_epoch,
    checked_batch_size,
    checked_validation_freq,
    class_sample_weight,
    positive_int,
)
from .callbacks import CallbackList
from .compiled import Compiled, compile_model  # noqa: F401  (compile_model: what the models' compile calls)
from .compiled import compiled_of as _compiled
from .data_checks import (
    _check_validation_data,
    _check_xy,
    _take,
    check_finite_data,
)

# ---------------------------------------------------------------------------------------------
# forward / backward through the stack
# ---------------------------------------------------------------------------------------------


def _output_activation(model, training: bool):
    """The activation whose logits the model's output carries (``logit_source``: through pass-through layers and a
    nested model), or None."""
    return chain_logits(model._layers_and_ops, training)[0]


def forward(model, x, training: bool, logits: bool, activity: dict | None = None):
    """Run every layer's training forward. Returns (output, output_mask, caches).

    With ``logits`` the last (Dense) layer returns its pre-activation. With ``activity`` (a dict), the
    activity-regularizer penalties of the layers' outputs are recorded in it: layer index -> (penalty,
    its gradient with respect to the layer's output) (training/regularization.py).
    """
    mask = None
    caches = []
    last = chain_logits(model._layers_and_ops, training)[1]  # (the layer giving the logits: before pass-throughs)
    for i, layer in enumerate(model._layers_and_ops):
        if i == last and logits:
            y, cache = layer.forward(x, mask=mask, training=training, skip_activation=True)
        else:
            y, cache = layer.forward(x, mask=mask, training=training)
        caches.append(cache)
        if activity is not None:
            term = regularization.activity_penalty(
                layer, y, getattr(layer, "activation", None) if i == last and logits else None)
            nested = getattr(cache, "activity_loss", 0.0)  # a Functional model as a layer: its own layers'
            if nested:  # penalties (their gradients are applied inside its backward)
                term = (nested + (term[0] if term else 0.0), term[1] if term else None)
            activity[i] = term
        mask = layer.compute_mask(x, mask)
        x = y
    return x, mask, caches


def backward(model, dy, caches, activity: dict | None = None) -> list[np.ndarray]:
    """Backpropagate ``dy`` through every layer; gradients aligned with ``model.trainable_weights``
    (``activity``: what :func:`forward` recorded; each penalty's gradient joins its layer's output
    gradient). Weight-regularizer gradients are added by the caller (``regularization``)."""
    per_layer = [None] * len(model._layers_and_ops)
    for i in range(len(model._layers_and_ops) - 1, -1, -1):
        if activity and activity.get(i) is not None and activity[i][1] is not None:
            penalty = activity[i][1]
            dy = penalty if dy is None else dy + penalty.astype(np.asarray(dy).dtype, copy=False)
        layer = model._layers_and_ops[i]
        if dy is None:  # (nothing flows back past an op without a gradient, such as isnan: Keras has none either)
            per_layer[i] = [None] * len(layer.trainable_weights)
            continue
        dy, per_layer[i] = layer.backward(dy, caches[i], need_dx=i > 0)
        if not layer.trainable_weights:  # (a frozen layer whose backward still returns its weights' gradients)
            per_layer[i] = []
    return [g for grads in per_layer for g in grads]


def _loss_and_outputs(model, compiled: Compiled, x, y, sample_weight, training: bool):
    """Forward and loss. Returns (loss value, dloss/doutput, (probabilities, logits) for the metrics, mask,
    caches, activity penalties). The loss value includes the regularization penalties, as Keras's. The output's
    logits (``(pre-activation, activation)``, else None) are computed when the loss or a metric reads them: a
    crossentropy of a sigmoid/softmax output, as TensorFlow's; a loss of the probabilities then backpropagates
    through the activation here."""
    from .. import activations

    act = _output_activation(model, training)
    shape = (len(x),) + tuple(model.output_shape[1:])
    loss_logits = compiled.loss is not None and losses_module.uses_logits(compiled.loss, act, y, shape)
    compiled.take_dtype(model)  # (before the metrics are made: a float64 model's count in float64)
    metric_logits = compile_metrics.reads_logits(compiled.ensure_metrics(y, shape), act)
    activity: dict = {}
    out, mask, caches = forward(model, x, training, loss_logits or metric_logits, activity)
    sample_weight = compile_metrics.keras2_weights_over_steps(compiled, sample_weight, mask)
    logits = None
    y_pred = out
    if loss_logits or metric_logits:
        logits, y_pred = (out, act), activations.apply(act, out)
    if compiled.loss is None:  # (compiled without a loss: the penalties below and the layers' add_loss alone)
        value, grad = np.asarray(y_pred).dtype.type(0), np.zeros_like(y_pred)
    elif loss_logits:
        value, grad = compiled.loss.value_and_grad_from_logits(y, out, sample_weight=sample_weight, mask=mask)
    else:
        value, grad = compiled.loss.value_and_grad(y, y_pred, sample_weight=sample_weight, mask=mask)
        if logits is not None:
            grad = activations.gradient(act, out, y_pred, grad)
    if compiled.loss_weight != 1.0:  # (Keras: the loss times its weight, in the loss's dtype)
        w = np.asarray(grad).dtype.type(compiled.loss_weight)
        value, grad = value * w, grad * w
    penalty = sum(p[0] for p in activity.values() if p is not None)
    penalty += regularization.weight_penalty(model._layers_and_ops, model.trainable_weights)
    if penalty:
        value = value + penalty
    if compiled.loss is None and not any(activity.values()) and not any(
            getattr(c, "added_loss", None) is not None for c in caches) and \
            not regularization.weight_regularizers(model._layers_and_ops):
        raise ValueError("No loss to compute. Provide a `loss` argument in `compile()` (the model has no loss of "
                         "its layers: no add_loss, no regularizer)")
    return value, grad, (y_pred, logits), mask, caches, activity


def _update_metrics(compiled: Compiled, value, y, preds: tuple, sample_weight, mask) -> None:
    y_pred, logits = preds
    compiled.loss_tracker.update_state(value, sample_weight=len(y_pred))
    # Keras 3 weights the loss by sample_weight, and the weighted metrics, not the compiled ``metrics``
    compile_metrics.update(compiled.ensure_metrics(y, y_pred), len(compiled.metric_specs), y, y_pred, sample_weight,
                           mask, compiled.keras2_ranks, logits)


def train_step(model, x, y, sample_weight=None) -> None:
    if hasattr(model, "_train_step"):  # a Functional model: several inputs/outputs (training/multi_output.py)
        return model._train_step(x, y, sample_weight)
    compiled = _compiled(model)
    value, grad, preds, mask, caches, activity = _loss_and_outputs(model, compiled, x, y, sample_weight,
                                                                   training=True)
    compiled.take_dtype(model)
    _update_metrics(compiled, value, y, preds, sample_weight, mask)
    grads = backward(model, grad, caches, activity)
    grads = regularization.add_weight_gradients(model._layers_and_ops, model.trainable_weights, grads)
    compiled.optimizer.batch_size = len(preds[0])  # (tf_keras's Nadam steps: optimizers.Nadam)
    apply_to_model(compiled.optimizer, grads, model)
    regularization.apply_constraints(model._layers_and_ops, model.trainable_weights)


def test_step(model, x, y, sample_weight=None) -> None:
    if hasattr(model, "_test_step"):
        return model._test_step(x, y, sample_weight)
    compiled = _compiled(model)
    value, _, preds, mask, _, _ = _loss_and_outputs(model, compiled, x, y, sample_weight, training=False)
    compiled.take_dtype(model)
    _update_metrics(compiled, value, y, preds, sample_weight, mask)


# ---------------------------------------------------------------------------------------------
# loops
# ---------------------------------------------------------------------------------------------


def fit(model, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto", callbacks=None,
        validation_split: float = 0.0, validation_data=None, shuffle: bool = True, class_weight=None,
        sample_weight=None, initial_epoch: int = 0, validation_batch_size=None, validation_freq=1,
        steps_per_epoch=None, validation_steps=None, _reader=None, _sizes=None, _one_pass=False):
    """Keras's ``fit`` (``Model.fit``); ``_reader``: a stream read anew each epoch (``streams.EpochReader``), whose
    first epoch's data are ``x``, ``y``, ``sample_weight`` in batches of ``_sizes``."""
    compiled = _compiled(model)
    # every argument is checked before anything is trained (docs/reliability.md, "Input validation")
    epochs = 0 if epochs == 0 else positive_int("epochs", 1 if epochs is None else epochs)
    initial_epoch = 0 if initial_epoch == 0 else positive_int("initial_epoch", initial_epoch)
    batch_size = checked_batch_size(batch_size)
    if validation_batch_size is not None:
        validation_batch_size = checked_batch_size(validation_batch_size, "validation_batch_size")
    validation_freq = checked_validation_freq(validation_freq)
    if steps_per_epoch is not None:
        steps_per_epoch = positive_int("steps_per_epoch", steps_per_epoch)
    if validation_steps is not None:
        validation_steps = positive_int("validation_steps", validation_steps)
    if isinstance(validation_split, (bool, np.bool_)) or not isinstance(validation_split, (int, float, np.number)):
        raise TypeError(f"validation_split must be a number in [0, 1), received {validation_split!r}")
    check_class_weight(model, class_weight, sample_weight)
    x, y, sample_weight = _check_xy(model, x, y, sample_weight)
    if validation_data is not None:
        validation_data = _check_validation_data(model, validation_data, y)
    elif validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in (0, 1), received {validation_split}")
        split_at = int(math.floor(len(x) * (1.0 - validation_split)))
        if split_at == 0:
            raise ValueError(f"validation_split={validation_split} leaves none of the {len(x)} samples to train on")
        validation_data = (x[split_at:], y[split_at:]) + (() if sample_weight is None else (sample_weight[split_at:],))
        x, y = x[:split_at], y[:split_at]
        sample_weight = None if sample_weight is None else sample_weight[:split_at]
    if class_weight is not None:  # the training samples' weights only (the validation data stays unweighted)
        sample_weight = class_sample_weight(y, class_weight)
    check_finite_data(x, y, sample_weight, batch_size, "fit")
    if _sizes is not None:
        check_stream_epoch(model, len(x), _sizes)
    runs = max(epochs - initial_epoch, 0)  # (the epochs that run: their batches, checked before the first)
    drawn = 0 if runs == 0 else None if steps_per_epoch is None else steps_per_epoch * runs
    check_stateful_batches(model, len(x), batch_size, "fit", drawn)
    if validation_data is not None and runs:
        check_stateful_batches(model, len(validation_data[0]), validation_batch_size or batch_size,
                               "fit's validation data", validation_steps)
    steps = steps_per_epoch or (len(_sizes) if _sizes is not None else math.ceil(len(x) / batch_size))
    verbose = 1 if verbose == "auto" else verbose
    cbs = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                       verbose=verbose, epochs=epochs, steps=steps)
    model.stop_training = False
    model._initial_epoch = None
    cbs.on_train_begin()
    # (Keras's BackupAndRestore resumes an interrupted fit by setting the model's _initial_epoch there)
    initial_epoch = getattr(model, "_initial_epoch", None) or initial_epoch
    logs = {}
    stream = BatchStream(len(x), batch_size, shuffle, sizes=_sizes, one_pass=_one_pass)
    for epoch in range(initial_epoch, epochs):
        compiled.reset()
        cbs.on_epoch_begin(epoch)
        if _reader is not None and epoch > initial_epoch:  # (a stream read anew, as Keras's fit reads it)
            _reader.begin_epoch()
        if _reader is not None and epoch > initial_epoch and (steps_per_epoch is None or stream.pass_finished):
            x, y, sample_weight, sizes = _reader.read()
            x, y, sample_weight = _check_xy(model, x, y, sample_weight)
            sample_weight = sample_weight if class_weight is None else class_sample_weight(y, class_weight)
            check_finite_data(x, y, sample_weight, batch_size, "fit")
            check_stream_epoch(model, len(x), sizes)
            stream = BatchStream(len(x), batch_size, False, sizes=sizes)
        for step, idx in enumerate(stream.epoch(steps_per_epoch)):
            cbs.on_train_batch_begin(step)
            train_step(model, x[idx], y[idx], _take(sample_weight, idx))
            logs = compiled.logs()
            cbs.on_train_batch_end(step, logs)
            if model.stop_training:
                break
        if _reader is not None:
            _reader.end_epoch()
        logs = compiled.logs()
        if validation_data is not None and (epoch + 1 in validation_freq if isinstance(validation_freq, tuple)
                                            else (epoch + 1) % validation_freq == 0):
            val = _validation_logs(model, validation_data, validation_batch_size or batch_size, validation_steps, cbs)
            logs.update({f"val_{k}": v for k, v in val.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    if epochs > 0:  # (Keras: use_ema's averages become the weights)
        compiled.optimizer.finalize_variable_values(model.trainable_weights)
    cbs.on_train_end(logs)
    return model.history


def _validation_logs(model, validation_data, batch_size, steps, cbs) -> dict:
    """The validation pass at the end of an epoch: ``evaluate`` with fit's callbacks, which get its
    ``on_test_*`` hooks, as Keras calls them (the progress bar stays silent in fit); with ``validation_steps``,
    the first that many batches each time (as Keras 3)."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
    return evaluate(model, *validation_data[:2], batch_size=batch_size, verbose=0, return_dict=True,
                    sample_weight=validation_data[2] if len(validation_data) == 3 else None, callbacks=cbs,
                    steps=steps, _in_fit=True)


def _result(compiled: Compiled, return_dict: bool):
    logs = compiled.logs()
    if return_dict:
        return dict(sorted(logs.items()))  # (Keras's evaluate/train_on_batch dicts: keys sorted)
    values = compile_metrics.in_order(logs, compiled.order())
    return values[0] if len(values) == 1 else values


def evaluate(model, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None, callbacks=None,
             return_dict: bool = False, _in_fit: bool = False):
    compiled = _compiled(model)
    if steps is not None:
        steps = positive_int("steps", steps)
    x, y, sample_weight = _check_xy(model, x, y, sample_weight)
    batch_size = checked_batch_size(batch_size)
    check_stateful_batches(model, len(x), batch_size, "evaluate", steps)
    verbose = 1 if verbose == "auto" else verbose
    n_batches = math.ceil(len(x) / batch_size)
    cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
        callbacks, add_progbar=verbose != 0 and not _in_fit, model=model, verbose=verbose, epochs=1,
        steps=n_batches if steps is None else min(steps, n_batches))
    # with steps: the first that many batches (Keras: a fresh unshuffled pass each call, a warning past the end)
    steps_name = "validation_steps" if _in_fit else "evaluate's steps"
    batches = (batch_indices(len(x), batch_size) if steps is None else
               BatchStream(len(x), batch_size, False, steps_name).epoch(steps))
    compiled.reset()
    cbs.on_test_begin()
    for step, idx in enumerate(batches):
        cbs.on_test_batch_begin(step)
        test_step(model, x[idx], y[idx], _take(sample_weight, idx))
        cbs.on_test_batch_end(step, compiled.logs())
    cbs.on_test_end(compiled.logs())
    return _result(compiled, return_dict)


def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
    compiled = _compiled(model)
    check_class_weight(model, class_weight, sample_weight)
    x, y, sample_weight = _check_xy(model, x, y, sample_weight)
    if class_weight is not None:
        sample_weight = class_sample_weight(y, class_weight)
    check_finite_data(x, y, sample_weight, max(len(x), 1), "train_on_batch")
    compiled.reset()
    train_step(model, x, y, sample_weight)
    return _result(compiled, return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, return_dict: bool = False):
    compiled = _compiled(model)
    x, y, sample_weight = _check_xy(model, x, y, sample_weight)
    compiled.reset()
    test_step(model, x, y, sample_weight)
    return _result(compiled, return_dict)
