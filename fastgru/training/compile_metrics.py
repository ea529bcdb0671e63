"""The names and the updates of compiled ``metrics`` and ``weighted_metrics``, as Keras 3's CompileMetrics.

``compile(metrics=[...], weighted_metrics=[...])``: the metrics are updated without the samples' weights,
the weighted metrics with them (``sample_weight`` given to ``fit``/``evaluate``/``train_on_batch``, or the
weights ``class_weight`` gives each training sample). Names as Keras's ``CompileMetrics.result``: an
output's prefix (``<output>_``, models of several outputs), a repeated metric name suffixed ``_1``,
``_2``, ...; a weighted metric whose name is taken becomes ``weighted_<name>`` (``mae`` and
``weighted_mae`` for ``metrics=["mae"], weighted_metrics=["mae"]``). ``evaluate``'s list follows Keras's
lookup of the logs by the metrics' own names (:func:`in_order`).
"""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np


def name_metrics(plain: list, weighted: list) -> None:
    """Give the metric objects their logged names, in place (Keras 3's ``CompileMetrics.result``).

    ``plain`` and ``weighted``: ``(metric, output prefix or None)`` pairs in Keras's order (output by
    output, each output's metrics in the given order); each metric's ``name`` is its own name on entry."""
    counters: dict[str, int] = {}

    def claim(name: str) -> str:  # the name, or name_<k> when taken (the k-th repeat)
        if name not in counters:
            counters[name] = 1
            return name
        index = counters[name]
        counters[name] += 1
        return f"{name}_{index}"

    for m, _ in plain + weighted:
        m.own_name = m.name  # (Keras's evaluate list looks the logs up by these: ``in_order``)
    for m, prefix in plain:
        m.name = claim(f"{prefix}_{m.name}" if prefix else m.name)
    for m, prefix in weighted:
        name = f"{prefix}_{m.name}" if prefix else m.name
        m.name = claim(name) if name not in counters else claim(
            f"{prefix}_weighted_{m.name}" if prefix else f"weighted_{m.name}")


def own_objects(metrics: list, taken: list) -> list:
    """``metrics`` with each object that is also in ``taken`` (the same metric instance given as a metric
    and as a weighted metric, or twice) replaced by a copy: each name and state is its own."""
    seen = {id(m) for m in taken}
    out = []
    for m in metrics:
        if id(m) in seen:
            m = copy.deepcopy(m)
        seen.add(id(m))
        out.append(m)
    return out


def reads_logits(metrics: list, output_activation: str | None) -> bool:
    """Whether any of ``metrics`` is computed from the logits of an output made by ``output_activation``
    (a crossentropy metric on a sigmoid or softmax output: ``_LossMetric.reads_logits``)."""
    return output_activation is not None and any(
        getattr(m, "reads_logits", None) is not None and m.reads_logits(output_activation) for m in metrics)


def update(metrics: list, n_plain: int, y, y_pred, sample_weight, mask, keras2_ranks: bool = False,
           logits: tuple | None = None) -> None:
    """Update one output's metrics: the first ``n_plain`` without the samples' weights, the others (the
    weighted metrics) with ``sample_weight``; both with the output's mask. ``logits``: ``(pre-activation,
    activation name)`` of the output, which the metrics that read logits take (:func:`reads_logits`, as
    Keras's crossentropy metrics read the tag TensorFlow's sigmoid and softmax leave). ``keras2_ranks`` (a model
    compiled from a tf_keras file): targets of rank 1 against outputs of rank 2 become (batch, 1) first, as tf_keras's
    compiled metrics take them (``match_dtype_and_rank``: a categorical accuracy of (batch,) labels then
    compares each row's argmax with 0)."""
    if keras2_ranks and np.ndim(y) == 1 and np.ndim(y_pred) == 2:
        y = np.asarray(y)[:, None]
    if keras2_ranks and mask is not None:
        _update_keras2_masked(metrics, n_plain, y, y_pred, sample_weight, mask)
        return
    for i, m in enumerate(metrics):
        weights = {} if i < n_plain or sample_weight is None else {"sample_weight": sample_weight}
        try:
            if logits is not None and reads_logits([m], logits[1]):
                m.update_state_from_logits(y, logits[0], mask=mask, **weights)
            else:
                m.update_state(y, y_pred, **({"mask": mask} if _takes_mask(type(m)) else {}), **weights)
        except ValueError as exc:  # (NumPy's broadcasting error, named)
            raise _named_error(m, y, y_pred, exc) from None


@functools.cache
def _takes_mask(cls) -> bool:
    """Whether ``cls.update_state`` takes the output's mask (fastgru's metrics do; a Keras-style subclass's
    ``update_state(y_true, y_pred, sample_weight=None)`` does not: Keras's tensor carries it, unread)."""
    try:
        parameters = inspect.signature(cls.update_state).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "mask" or p.kind is p.VAR_KEYWORD for p in parameters)


def _named_error(m, y, y_pred, exc: ValueError) -> ValueError:
    """A metric's refusal of its inputs, naming it (and the shapes, where they do not fit each other)."""
    if np.shape(y) == np.shape(y_pred):
        return ValueError(f"metric {m.name!r}: {exc}")
    return ValueError(f"metric {m.name!r}: targets of shape {np.shape(y)} do not fit the output of shape "
                      f"{np.shape(y_pred)} ({exc})")


def keras2_weights_over_steps(compiled, sample_weight, mask):
    """tf_keras's ``apply_mask``: a model compiled from a tf_keras file takes (B,) sample weights for an output
    masked over its steps, each weight spread over its sample's steps ((B, 1)); Keras 3 refuses them."""
    if (compiled.keras2_ranks and mask is not None and sample_weight is not None
            and np.ndim(sample_weight) == np.ndim(mask) - 1):
        return np.asarray(sample_weight)[..., None]
    return sample_weight


def _update_keras2_masked(metrics: list, n_plain: int, y, y_pred, sample_weight, mask) -> None:
    """tf_keras's ``MetricsContainer`` with a masked output: the mask is every compiled metric's
    ``sample_weight`` (the weighted metrics': the mask times the samples' weights, (B,) weights spread over
    the mask's steps), so every metric — a confusion-matrix or an AUC one too — leaves the masked steps out."""
    weights = np.asarray(mask).astype(np.float32)
    weighted = weights
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)
        while sw.ndim < weights.ndim:
            sw = sw[..., None]
        if sw.ndim == weights.ndim + 1 and sw.shape[-1] == 1:
            sw = sw[..., 0]
        weighted = weights * sw
    for i, m in enumerate(metrics):
        try:
            m.update_state(y, y_pred, sample_weight=weights if i < n_plain or sample_weight is None else weighted)
        except ValueError as exc:  # (NumPy's broadcasting error, named)
            raise _named_error(m, y, y_pred, exc) from None


def in_order(logs: dict, names: list[str]) -> list:
    """``evaluate``'s (and ``train_on_batch``'s) list, as Keras 3's ``Trainer._flatten_metrics_in_order``:
    the logs found under ``names`` (the loss tracker's, the compiled metrics' own names before the
    renaming above, then the outputs' loss trackers'), in that order — a name found twice is listed
    twice — then every other log in sorted order."""
    values = [logs[n] for n in names if n in logs]
    listed = set(names)
    return values + [logs[k] for k in sorted(logs) if k not in listed]
