"""What ``Sequential.compile`` fixes (``trainer.compile_model``): the optimizer, the loss and its weight, the
metric specs and weighted metric specs (the metric objects are made at the first step, from the shapes:
``compile_metrics``), and Keras's one-output forms of each (``[loss]``, ``{"out": [...]}``, ``[[...]]``)."""

from __future__ import annotations

import numpy as np

from ..eager import plain
from ..errors import NotCompiledError
from ..tracing import retrace
from . import compile_metrics
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .metric_base import numbering_kept
from .structures import single


class Compiled:
    """What ``compile`` fixed: optimizer, loss, metric specs (metric objects are made per shape)."""

    def __init__(self, optimizer, loss, metrics, weighted_metrics=None, loss_weights=None):
        self.loss_weights_spec = loss_weights  # (as given, saved as given)
        self.loss_weight = _one_loss_weight(loss_weights)
        self.optimizer = optimizers_module.get(optimizer)
        loss = single(loss, "output")  # (loss=["mse"] or {"out": "mse"}: Keras's for one output)
        metrics, weighted_metrics = _one_output_metrics(metrics), _one_output_metrics(weighted_metrics)
        # (None: the layers' own losses alone, as Keras trains a model compiled without one: trainer.py)
        self.loss = None if loss is None else losses_module.get(loss)
        # (as given: a saved compile_config writes a loss name as the name, and metrics=None as null, as Keras)
        self.loss_spec, self.metrics_given = loss, metrics is not None
        self.metric_specs = list(metrics or [])
        self.weighted_specs = list(weighted_metrics or [])
        with numbering_kept():
            for spec in self.metric_specs + self.weighted_specs:  # an unknown metric is refused by compile
                metrics_module.get(spec)
        self.loss_tracker = metrics_module.Mean(name="loss")
        self.metrics: list | None = None  # the metrics, then the weighted metrics (compile_metrics)
        self.keras2_ranks = False  # (set for a model compiled from a tf_keras file: io.restore_compile)
        self.metric_dtype = None  # (float64 for a float64 model: take_dtype)

    def take_dtype(self, model) -> None:
        """At the first step: a float64 model's loss tracker and the metrics named by strings count in float64, as
        Keras's made in its floatx (float64) count, not rounded to float32 (a float32 model given float64 data, which
        fastgru computes in float64, keeps float32's, as Keras's)."""
        if self.metrics is None and float64_model(model):
            self.metric_dtype = np.float64
            if self.loss_tracker.count == 0:
                self.loss_tracker = metrics_module.Mean(name="loss", dtype=np.float64)

    def ensure_metrics(self, y, y_pred) -> list:
        if self.metrics is None:
            dt = self.metric_dtype
            plain = [metrics_module.get(m, y, y_pred, dt) for m in self.metric_specs]
            weighted = compile_metrics.own_objects([metrics_module.get(m, y, y_pred, dt) for m in self.weighted_specs],
                                                   plain)
            compile_metrics.name_metrics([(m, None) for m in plain], [(m, None) for m in weighted])
            self.metrics = plain + weighted
        return self.metrics

    def order(self) -> list[str]:
        """Keras's ``metrics_names`` as its evaluate list reads the logs (``compile_metrics.in_order``; a tf_keras
        model's: the metrics' names, a weighted metric's ``weighted_`` one once)."""
        return ["loss"] + [m.name if self.keras2_ranks else getattr(m, "own_name", m.name) for m in self.metrics or []]

    def reset(self) -> None:
        self.loss_tracker.reset_state()
        for m in self.metrics or []:
            m.reset_state()

    def logs(self) -> dict:
        logs = {"loss": float(self.loss_tracker.result())}
        for m in self.metrics or []:
            logs[m.name] = plain(m.result())  # (Python floats and NumPy arrays, as Keras's logs)
        return logs


def float64_model(model) -> bool:
    """Whether every layer with weights computes in float64 (a model built under Keras's floatx float64)."""
    weighted = [layer for layer in model.layers if getattr(layer, "weights", None)]
    return bool(weighted) and all(getattr(layer, "dtype", None) == np.float64 for layer in weighted)


def _one_output_metrics(metrics):
    """A one-output model's metrics as a list (or None): ``{"out": [...]}`` and ``[[...]]``, Keras's forms
    per output, give their one list."""
    if isinstance(metrics, dict) and "class_name" not in metrics:
        metrics = single(metrics, "output")  # (metrics={"out": ["mae"]} or {"out": "mae"})
    elif isinstance(metrics, (list, tuple)) and len(metrics) == 1 and isinstance(metrics[0], (list, tuple)):
        metrics = metrics[0]  # (metrics=[["mae"]])
    if metrics is None or isinstance(metrics, (list, tuple)):
        return metrics
    return [metrics]  # (one metric: a name, an object or a serialized one)


def _one_loss_weight(loss_weights) -> float:
    """A one-output model's loss weight: a number, ``[w]`` or ``{name: w}`` (Keras's forms), 1.0 for None."""
    value = loss_weights
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    elif isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if value is None:
        return 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
        raise ValueError(f"loss_weights should be a number (or one in a list or a dict) for a model with one output, "
                         f"received {loss_weights!r}")
    return float(value)


def compiled_of(model) -> Compiled:
    """What ``model.compile`` fixed, or a RuntimeError (saying why where a file's configuration was refused)."""
    compiled = getattr(model, "_compiled", None)
    if compiled is None:  # (a file's training configuration fastgru could not restore: why, from load_model)
        why = getattr(model, "_uncompiled_reason", None)
        raise NotCompiledError("You must call compile() before training or evaluating the model" + (why or ""))
    return compiled


def compile_model(model, optimizer="rmsprop", loss=None, metrics=None, weighted_metrics=None,
                  loss_weights=None) -> None:
    model._compiled = Compiled(optimizer, loss, metrics, weighted_metrics, loss_weights)
    model.optimizer = model._compiled.optimizer
    model.optimizer.__dict__.pop("_stepped_with", None)  # (the trainable set of now: optimizer_positions)
    model.loss = loss if isinstance(loss, str) or loss is None else model._compiled.loss  # ("mse" stays "mse")
    model.compiled = True


def check_execution_options(run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True,
                            **unknown) -> None:
    """Keras 3's ``compile`` options about how it executes its graph, taken so that a Keras script's
    ``compile`` call runs unchanged: fastgru's steps are always eager (NumPy and compiled kernels, no graph),
    so none changes a number; callbacks still see every batch with ``steps_per_execution`` > 1. Checked as
    Keras checks them."""
    if unknown:
        raise TypeError(f"compile() got an unexpected keyword argument {next(iter(unknown))!r}")
    retrace()  # (every compile: custom layers' calls traced again, as Keras builds its train function anew)
    for name, value in (("run_eagerly", run_eagerly), ("auto_scale_loss", auto_scale_loss)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"compile: `{name}` must be True or False, received {value!r}")
    if not (jit_compile == "auto" or isinstance(jit_compile, (bool, np.bool_))):
        raise ValueError(f"compile: `jit_compile` must be True, False or 'auto', received {jit_compile!r}")
    if (isinstance(steps_per_execution, (bool, np.bool_)) or not isinstance(steps_per_execution, (int, np.integer))
            or steps_per_execution < 1):
        raise ValueError(f"compile: `steps_per_execution` must be a positive integer, received {steps_per_execution!r}")
