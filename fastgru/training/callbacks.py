"""Keras-3-compatible callbacks: the ``Callback`` hooks, ``CallbackList``, ``History``,
``EarlyStopping``, ``ModelCheckpoint``, ``TerminateOnNaN`` and ``ProgbarLogger`` (the callback that drives
:class:`fastgru.training.progress.Progbar` in ``fit``/``evaluate``/``predict``, as Keras's
``callbacks/progbar_logger.py`` drives ``utils/progbar.py``). ``CSVLogger`` (``csv_logger.py``) and the
learning-rate callbacks (``lr_callbacks.py``) are exported here too.

The model a callback sees needs ``stop_training`` (EarlyStopping sets it), ``get_weights()`` /
``set_weights()`` (EarlyStopping's ``restore_best_weights``), ``save(path)`` / ``save_weights(path)``
(ModelCheckpoint) and, optionally, ``metrics``: Metric objects with a ``name`` and ``_direction``
(``"up"``/``"down"``) used by ``mode="auto"`` as in Keras.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .callback_base import (  # noqa: F401  (fastgru.callbacks' public names)
    Callback,
    LambdaCallback,
    _MonitorCallback,
    monitor_direction,
)
from .csv_logger import CSVLogger  # noqa: F401
from .ema_callback import SwapEMAWeights
from .keras_objects import is_keras_object
from .lr_callbacks import LearningRateScheduler, ReduceLROnPlateau  # noqa: F401
from .progress import Progbar


def pythonify_logs(logs) -> dict:
    """Keras's ``pythonify_logs``: keys sorted, nested dicts flattened, values made Python floats."""
    result = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


_HOOKS_WITH_INDEX = ("on_batch_begin", "on_batch_end", "on_epoch_begin", "on_epoch_end",
                     "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
                     "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end")
_HOOKS = ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
          "on_predict_end")


def _callback_list(callbacks) -> list:
    """``callbacks`` as a list: a list or tuple of callbacks, one callback alone (as Keras takes it), or None;
    anything else, or an entry that is not a callback (no ``set_model``), is a TypeError."""
    if callbacks is None:
        return []
    if hasattr(callbacks, "set_model"):
        return _callback_list([callbacks])
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of callbacks (fastgru's or Keras's), received "
                        f"{type(callbacks).__name__}")
    for i, c in enumerate(callbacks):
        if not hasattr(c, "set_model"):
            raise TypeError(f"callbacks[{i}] is not a callback (a Callback subclass, with set_model and the on_* "
                            f"hooks), received {type(c).__name__} {c!r:.60}")
    # (Keras's SwapEMAWeights reaches into a Keras optimizer's variables: fastgru's does the same on its own)
    return [SwapEMAWeights(c.swap_on_epoch) if is_keras_object(c) and type(c).__name__ == "SwapEMAWeights" else c
            for c in callbacks]


def _resolve_keras_auto_mode(callback, model) -> None:
    """A Keras monitoring callback (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau) with ``mode="auto"`` finds a
    metric's direction in Keras's own metrics containers, which a fastgru model has not: its mode is decided here,
    as Keras would decide it (fastgru's metrics carry Keras's ``_direction``)."""
    if (is_keras_object(callback) and getattr(callback, "mode", None) == "auto"
            and getattr(callback, "monitor_op", None) is None and isinstance(getattr(callback, "monitor", None), str)):
        direction = monitor_direction(model, callback.monitor, listed_only=True)
        if direction is not None:  # (else Keras's own check raises, as it does for a metric the model has not)
            callback.mode = direction


class CallbackList(Callback):
    """Forwards every hook to ``callbacks`` in order, with logs passed through :func:`pythonify_logs`.

    ``add_history``/``add_progbar`` append a :class:`History`/:class:`ProgbarLogger` unless one is
    given; ``params`` (e.g. ``verbose``, ``epochs``, ``steps``) go to every callback's ``set_params``.
    """

    def __init__(self, callbacks=None, add_history: bool = False, add_progbar: bool = False, model=None,
                 **params):

        super().__init__()
        self.callbacks: list = _callback_list(callbacks)
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def set_params(self, params: dict) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model) -> None:
        if not model:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def _call(self, hook: str, *args, logs=None):
        logs = pythonify_logs(logs)
        for cb in self.callbacks:
            if hook == "on_epoch_end" and self.model is not None:  # (the model's metrics are all known by then)
                _resolve_keras_auto_mode(cb, self.model)
            getattr(cb, hook)(*args, logs)


def _make_forwarder(hook: str, with_index: bool):
    if with_index:
        def forward(self, index: int, logs: dict | None = None) -> None:
            self._call(hook, index, logs=logs)
    else:
        def forward(self, logs: dict | None = None) -> None:
            self._call(hook, logs=logs)
    forward.__name__ = hook
    return forward


for _hook in _HOOKS_WITH_INDEX:
    setattr(CallbackList, _hook, _make_forwarder(_hook, True))
for _hook in _HOOKS:
    setattr(CallbackList, _hook, _make_forwarder(_hook, False))


class History(Callback):
    """Records each epoch's logs: ``history`` maps a name to its per-epoch values; ``epoch`` lists
    the epoch indices. ``fit`` returns it and also sets it as ``model.history``."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():  # (a 0-d array, tf_keras's ReduceLROnPlateau's rate handle: a float)
            self.history.setdefault(k, []).append(float(v) if isinstance(v, np.ndarray) and v.ndim == 0 else v)
        if self.model is not None:
            self.model.history = self


class EarlyStopping(_MonitorCallback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs
    (Keras 3 semantics, including ``baseline``, ``start_from_epoch`` and
    ``restore_best_weights``, which restores at the end of training)."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs)}", stacklevel=2)
        return value


class ModelCheckpoint(_MonitorCallback):
    """Save the model (``.keras``/``.h5``) or its weights (``.weights.h5``) after every epoch, or every
    ``save_freq`` batches. ``filepath`` may hold ``{epoch:02d}``, ``{batch}`` and log names
    (``{val_loss:.2f}``); epochs and batches are 1-based in the name, as Keras. Every save is crash-safe
    (``model.save``/``save_weights`` write a temporary file, fsync it and rename it over the target), so a
    process killed mid-save leaves the previous checkpoint intact."""

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)):
            raise ValueError(f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer values")
        if save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided "
                             f"must end in `.weights.h5` (Keras weights format). Received: filepath={self.filepath}")
        if not save_weights_only and not self.filepath.endswith((".keras", ".h5")):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format). "
                             f"Received: filepath={self.filepath}")

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add_batches = batch + 1  # a new epoch
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise OSError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        if not self._should_save_model(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from None


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite (Keras 3's callback and messages).

    By default training stops gracefully (``model.stop_training = True``, so ``on_train_end`` still runs
    on every callback); with ``raise_error=True`` a RuntimeError is raised at once. The loss checked is
    the running mean ``fit`` logs after each batch, as in Keras: the update of that batch has been applied.
    (NaN or infinite values in ``x``/``y`` never get that far: ``fit`` refuses them before training.)
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class ProgbarLogger(Callback):
    """Prints ``Epoch i/n`` and a :class:`~fastgru.training.progress.Progbar` per epoch (silent
    during the validation inside ``fit``). Needs params ``verbose``, ``epochs`` and ``steps``."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = Progbar(target=self.target, verbose=self.verbose, stateless_metrics=set())

    def _update_progbar(self, batch, logs):
        if self.progbar is None:
            self._reset_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        if self.progbar is None:
            self._reset_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)

