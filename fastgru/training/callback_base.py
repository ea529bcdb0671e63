"""The base of every callback: ``Callback`` (Keras's hooks, all no-ops) and ``_MonitorCallback`` (Keras's
MonitorCallback: whether a monitored value improved), shared by ``callbacks`` and ``lr_callbacks``."""

from __future__ import annotations

import warnings

import numpy as np


class Callback:
    """Base class; every hook is a no-op. ``self.model`` and ``self.params`` are set by ``fit``."""

    def __init__(self):
        self.params: dict | None = None
        self._model = None

    @property
    def model(self):
        return self._model

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model) -> None:
        self._model = model

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)  # backwards compatibility, as Keras

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...


class LambdaCallback(Callback):
    """Keras's callback made of functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_train_begin(logs)``, ``on_train_end(logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)``, and any other hook by its name (``on_batch_end=...``)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(k for k in kwargs if not (k.startswith("on_") and hasattr(Callback, k)))
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hooks {unknown}")
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for hook, function in hooks.items():
            if function is not None:
                if not callable(function):
                    raise TypeError(f"LambdaCallback: {hook} should be a function, received {function!r:.60}")
                setattr(self, hook, function)


_MAXIMISED = ("acc", "auc", "precision", "recall")


def _all_metrics(model):
    for m in getattr(model, "metrics", None) or []:
        yield m
        yield from getattr(m, "metrics", None) or []


def monitor_direction(model, monitor: str, listed_only: bool = False) -> str | None:
    """``"max"`` or ``"min"`` for a monitored quantity (``val_accuracy``, ``loss``, ...) as Keras's ``mode="auto"``
    decides it: a loss goes down, a metric the model lists goes its ``_direction``; one whose object does not say is
    judged by its name. None when undecided, and (``listed_only``, once the model has trained: Keras's check) for a
    quantity that is not the loss and not among the model's ``metrics_names``, such as a misspelt one."""
    name = monitor.removeprefix("val_")
    if listed_only and name != "loss" and name not in (getattr(model, "metrics_names", None) or [name]):
        return None
    direction = "min" if name == "loss" else None
    for m in _all_metrics(model):
        if getattr(m, "name", None) == name and getattr(m, "_direction", None):
            direction = "max" if m._direction == "up" else "min"
    if direction is None:  # the model does not list its metrics: judge by the name
        lowered = name.lower()
        if any(w in lowered for w in _MAXIMISED):
            direction = "max"
        elif "loss" in lowered or "error" in lowered or lowered in ("mae", "mse", "mape", "msle"):
            direction = "min"
    return direction


class _MonitorCallback(Callback):
    """Keras's MonitorCallback: decides whether a monitored value improved."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            direction = monitor_direction(self.model, self.monitor, listed_only=True)
            self.monitor_op = {"max": np.greater, "min": np.less}.get(direction)
            if self.monitor_op is None:
                names = getattr(self.model, "metrics_names", None)
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but fastgru isn't "
                    "able to automatically determine whether that metric should be maximized or "
                    "minimized. Pass `mode='max'` in order to monitor based on the highest metric "
                    "value, or pass `mode='min'` in order to use the lowest value."
                    + (f" (The model reports {names}, each also with a val_ prefix.)" if names else "")
                )
        if self.monitor_op is np.less:
            self.min_delta *= -1

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))
