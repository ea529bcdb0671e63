"""Compiling a loaded (or converted) model as Keras had compiled it: its saved training configuration
(``load_model``, ``from_keras``)."""

from __future__ import annotations

import warnings

from ..layers import registry
from . import keras2_training, keras_config

#: metric names Keras 3's legacy ``.h5`` loader turns into its metric functions, named after them
_H5_METRIC_FUNCTIONS = {"mae": "mean_absolute_error", "mse": "mean_squared_error",
                        "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error"}


def _keras3_h5_metric_names(metrics):
    """A Keras 3 legacy ``.h5`` file's metrics as Keras's loader compiles them: ``"mae"`` becomes its function,
    logged as ``mean_absolute_error`` (``"accuracy"`` and the like stay as given)."""
    if isinstance(metrics, str):
        return _H5_METRIC_FUNCTIONS.get(metrics, metrics)
    if isinstance(metrics, list):
        return [_keras3_h5_metric_names(m) for m in metrics]
    if isinstance(metrics, dict) and "class_name" not in metrics:  # (per output, by name)
        return {k: _keras3_h5_metric_names(v) for k, v in metrics.items()}
    return metrics


def restore_compile(model, training_config: dict | None, path, version: str | None = None,
                    legacy_h5: bool = False) -> None:
    """Compile ``model`` as the file's model was (optimizer, loss, loss_weights, metrics, weighted
    metrics), as Keras's load_model does: each of them one entry, a list in output order or a dict keyed by
    output name, and a serialized loss or metric object (``{"class_name": ..., "config": ...}``) one entry,
    not a dict of outputs.

    The optimizer starts from its configuration (``load_model`` then gives it the state a ``.keras`` file or a
    tf_keras ``.h5`` file saved: ``io/optimizer_state.py``). A metric fastgru cannot compute (a custom Python
    function, ``def rmse(y_true, y_pred)``, which Keras itself loads only given ``custom_objects``) is left out with a
    warning naming it, the rest compiled: training goes on with the saved optimizer state, its history without
    that metric. A configuration fastgru cannot otherwise reproduce (a custom loss, a learning-rate schedule
    fastgru lacks) leaves the model uncompiled, with a warning: predicting needs no compile.
    """
    if not isinstance(training_config, dict):
        return
    # tf_keras weights each output's loss in evaluate's log by the batch size, as the total (Keras 3 counts each
    # batch once): kept for a model from a tf_keras file (training/multi_output.py)
    model._keras2_output_losses = version is not None and keras_config.keras_major(version) < 3
    # tf_keras 2.11+ writes its optimizers as "Custom>Adam" and named metrics as MeanMetricWrapper, in
    # .h5 files as in SavedModel directories
    training_config = keras2_training.training_config(training_config, getattr(model, "output_names", None))
    optimizer = training_config.get("optimizer", training_config.get("optimizer_config"))
    loss = training_config.get("loss")
    loss_weights = training_config.get("loss_weights")
    metrics = training_config.get("metrics")  # null (none compiled) stays None
    if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
        metrics = metrics[0]  # Keras nests metrics per output
    weighted = training_config.get("weighted_metrics") or None
    if legacy_h5 and keras_config.keras_major(version) >= 3:
        metrics, weighted = _keras3_h5_metric_names(metrics), _keras3_h5_metric_names(weighted)
    if isinstance(weighted, list) and len(weighted) == 1 and isinstance(weighted[0], list):
        weighted = weighted[0]
    if loss is None:
        return
    dropped: list[str] = []
    metrics, weighted = _computable(metrics, dropped), _computable(weighted, dropped)
    if dropped:
        warnings.warn(f"{path}: the model was compiled with metrics fastgru cannot compute, left out: "
                      f"{'; '.join(dropped)}; the loss, the optimizer and its state are kept", stacklevel=3)
    optimizer = "rmsprop" if optimizer is None else optimizer  # (Keras's compile default, as its load_model)
    kwargs = {"optimizer": optimizer, "loss": loss, "metrics": metrics}
    if weighted is not None:
        kwargs["weighted_metrics"] = weighted
    try:
        if loss_weights is not None:
            kwargs["loss_weights"] = loss_weights
        model.compile(**kwargs)
        # tf_keras's compiled metrics take a target of rank 1 against an output of rank 2 as (batch, 1), and its
        # Nadam advances its momentum product as its compiled train step does (training/optimizers.Nadam)
        model._compiled.keras2_ranks = model._keras2_output_losses
        if model._keras2_output_losses and hasattr(model.optimizer, "tf_keras_steps"):
            model.optimizer.tf_keras_steps = True
        model.optimizer.keras2_ema = model._keras2_output_losses  # (tf_keras's use_ema averages)
        model.optimizer.built_by_keras_load = True  # (Keras's load_model builds it: summary() counts its variables)
    except Exception as exc:  # noqa: BLE001  (predicting needs no compile: never fail the load for it)
        model._uncompiled_reason = f" (its file's training configuration is not supported by fastgru: {exc})"
        warnings.warn(f"{path}: the model's training configuration is not supported by fastgru ({exc}); "
                      "the model is loaded uncompiled", stacklevel=3)


def _computable(metrics, dropped: list[str]):
    """``metrics`` (an entry, a list, per-output lists or a dict of outputs) without the entries fastgru cannot
    make a metric of, each reason appended to ``dropped``."""
    from ..training import metrics as metric_registry

    if isinstance(metrics, list):
        kept = [_computable(m, dropped) for m in metrics]
        return [m for m, entry in zip(kept, metrics) if m is not None or entry is None]
    if isinstance(metrics, dict) and "class_name" not in metrics:  # (per output, by name)
        kept = {k: _computable(v, dropped) for k, v in metrics.items()}
        return {k: v for k, v in kept.items() if v is not None or metrics[k] is None}
    if metrics is None:
        return None
    try:
        metric = metric_registry.get(metrics)
    except (ValueError, TypeError) as exc:
        dropped.append(str(exc).split("; supported")[0])  # (without the list of every supported name)
        return None
    if isinstance(metrics, dict) and metrics.get("class_name") == "function" and \
            getattr(metric, "_fn", None) is registry.custom_function(metrics.get("config")):
        return metric._fn  # (the script's own function, from custom_objects: kept past the load's scope)
    if isinstance(metrics, dict) and not type(metric).__module__.startswith("fastgru."):
        return metric  # (the script's own Metric subclass, built from the file's config)
    return metrics
