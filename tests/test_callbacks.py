"""Callbacks and the progress bar, with fake models; EarlyStopping/ModelCheckpoint also against Keras."""

from __future__ import annotations

import io
import os
import re
import sys

import numpy as np
import pytest

from fastgru.training import callbacks as cb
from fastgru.training import metrics
from fastgru.training.progress import Progbar


class FakeModel:
    """Just what the callbacks use: weights, stop_training, save/save_weights, metrics."""

    def __init__(self, metric_objs=()):
        self.weights = [np.zeros(2)]
        self.stop_training = False
        self.saved: list[str] = []
        self.metrics = list(metric_objs)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        self.weights = [np.array(w) for w in ws]

    def save(self, path, **kwargs):
        self.saved.append(path)
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path, **kwargs):
        self.save(path)


def run_epochs(callback, model, logs_per_epoch):
    """Drive one fit-like loop; returns the epochs run. Weights are set to [epoch, epoch]."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    ran = []
    for epoch, logs in enumerate(logs_per_epoch):
        callback.on_epoch_begin(epoch)
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_end(epoch, dict(logs))
        ran.append(epoch)
        if model.stop_training:
            break
    callback.on_train_end()
    return ran


EARLY_STOPPING_CASES = [
    ({"patience": 0}, [{"val_loss": v} for v in (1.0, 0.9, 0.95, 0.8)]),
    ({"patience": 2}, [{"val_loss": v} for v in (1.0, 0.9, 0.95, 0.96, 0.97, 0.5)]),
    ({"patience": 1, "min_delta": 0.2}, [{"val_loss": v} for v in (1.0, 0.9, 0.85, 0.7, 0.6)]),
    ({"monitor": "val_accuracy", "patience": 1}, [{"val_accuracy": v} for v in (0.5, 0.6, 0.55, 0.58, 0.7)]),
    ({"monitor": "loss", "mode": "max", "patience": 1}, [{"loss": v} for v in (1.0, 0.9, 0.8, 0.7)]),
    ({"patience": 1, "baseline": 0.5}, [{"val_loss": v} for v in (1.0, 0.9, 0.8, 0.4, 0.45, 0.46)]),
    ({"patience": 0, "start_from_epoch": 2}, [{"val_loss": v} for v in (1.0, 2.0, 3.0, 2.5, 2.6)]),
    ({"patience": 1, "restore_best_weights": True}, [{"val_loss": v} for v in (1.0, 0.5, 0.7, 0.8, 0.9)]),
    ({"monitor": "val_mae", "patience": 0, "restore_best_weights": True}, [{"val_mae": v} for v in (3, 2, 2.5)]),
]


def _model_for(kw):
    return FakeModel([metrics.get("accuracy"), metrics.get("mae")])


# ---------------------------------------------------------------- pure NumPy ---------
@pytest.mark.parametrize("kw,logs", EARLY_STOPPING_CASES)
def test_early_stopping_stops_after_patience(kw, logs):
    es = cb.EarlyStopping(**kw)
    model = _model_for(kw)
    ran = run_epochs(es, model, logs)
    assert len(ran) <= len(logs)
    if len(ran) < len(logs):
        assert model.stop_training and es.stopped_epoch == ran[-1]
    if kw.get("restore_best_weights"):
        assert np.all(model.weights[0] == es.best_epoch)


def test_early_stopping_by_hand():
    es = cb.EarlyStopping(patience=2, restore_best_weights=True)
    model = FakeModel()
    ran = run_epochs(es, model, [{"val_loss": v} for v in (1.0, 0.5, 0.6, 0.7, 0.1)])
    assert ran == [0, 1, 2, 3] and es.stopped_epoch == 3 and es.best == 0.5 and es.best_epoch == 1
    assert np.all(model.weights[0] == 1.0)  # restored to the best epoch's weights


def test_early_stopping_mode_from_metric_direction_and_name():
    es = cb.EarlyStopping(monitor="val_accuracy", patience=0)
    run_epochs(es, FakeModel([metrics.get("accuracy")]), [{"val_accuracy": 0.5}, {"val_accuracy": 0.6}])
    assert es.monitor_op is np.greater
    es = cb.EarlyStopping(monitor="val_acc")  # no metrics listed on the model: judged by its name
    run_epochs(es, FakeModel(), [{"val_acc": 0.5}])
    assert es.monitor_op is np.greater
    es = cb.EarlyStopping(monitor="val_weird")
    with pytest.raises(ValueError, match="mode='max'"):
        run_epochs(es, FakeModel(), [{"val_weird": 0.5}])


def test_early_stopping_warns_when_monitor_missing():
    es = cb.EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="not available"):
        ran = run_epochs(es, FakeModel(), [{"loss": 1.0}, {"loss": 2.0}])
    assert ran == [0, 1]


def test_model_checkpoint_formats_paths_and_saves(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "ckpt" / "m-{epoch:02d}-{val_loss:.2f}.keras")
    mc = cb.ModelCheckpoint(path)
    run_epochs(mc, model, [{"val_loss": 0.5}, {"val_loss": 0.25}])
    assert [os.path.basename(p) for p in model.saved] == ["m-01-0.50.keras", "m-02-0.25.keras"]
    assert all(os.path.exists(p) for p in model.saved)


def test_model_checkpoint_best_only_and_weights(tmp_path):
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_best_only=True, save_weights_only=True)
    run_epochs(mc, model, [{"val_loss": v} for v in (0.5, 0.6, 0.4, 0.45)])
    assert [os.path.basename(p) for p in model.saved] == ["w1.weights.h5", "w3.weights.h5"]
    assert mc.best == 0.4


def test_model_checkpoint_save_freq_in_batches(tmp_path):
    model = FakeModel()
    mc = cb.ModelCheckpoint(str(tmp_path / "e{epoch}b{batch}.keras"), save_freq=3)
    mc.set_model(model)
    mc.on_train_begin()
    for epoch in range(2):
        mc.on_epoch_begin(epoch)
        for batch in range(4):
            mc.on_train_batch_end(batch, {"loss": 1.0})
        mc.on_epoch_end(epoch, {"loss": 1.0})
    assert [os.path.basename(p) for p in model.saved] == ["e1b3.keras", "e2b2.keras"]


def test_model_checkpoint_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match=".weights.h5"):
        cb.ModelCheckpoint(str(tmp_path / "w.h5"), save_weights_only=True)
    with pytest.raises(ValueError, match=".keras"):
        cb.ModelCheckpoint(str(tmp_path / "m.pt"))
    with pytest.raises(ValueError, match="save_freq"):
        cb.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq="batch")
    mc = cb.ModelCheckpoint(str(tmp_path / "m{nope}.keras"))
    mc.set_model(FakeModel())
    with pytest.raises(KeyError, match="Failed to format"):
        mc.on_epoch_end(0, {"loss": 1.0})


class Recorder(cb.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name.startswith("on_") and callable(attr):
            calls = super().__getattribute__("calls")

            def record(*args, **kwargs):
                calls.append((name, args, kwargs))
                return attr(*args, **kwargs)
            return record
        return attr


def test_callback_list_forwards_every_hook_with_sorted_python_logs():
    rec = Recorder()
    model = FakeModel()
    cbl = cb.CallbackList([rec], add_history=True, model=model, epochs=1, steps=2, verbose=0)
    assert rec.model is model and rec.params == {"epochs": 1, "steps": 2, "verbose": 0}
    assert isinstance(model.history, cb.History)
    hooks = ["on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
             "on_test_batch_begin", "on_test_batch_end", "on_test_end", "on_epoch_end", "on_train_end",
             "on_predict_begin", "on_predict_batch_begin", "on_predict_batch_end", "on_predict_end"]
    for hook in hooks:
        if "batch" in hook or "epoch" in hook:
            getattr(cbl, hook)(0, {"loss": np.float32(0.5), "accuracy": np.float64(1.0)})
        else:
            getattr(cbl, hook)({"loss": np.float32(0.5)})
    called = [c[0] for c in rec.calls]
    for hook in hooks:
        assert hook in called
    assert "on_batch_end" in called  # on_train_batch_end's default forwards to it, as Keras
    epoch_end = next(c for c in rec.calls if c[0] == "on_epoch_end")
    logs = epoch_end[1][1]
    assert list(logs) == ["accuracy", "loss"] and type(logs["loss"]) is float
    assert model.history.history == {"accuracy": [1.0], "loss": [0.5]} and model.history.epoch == [0]


def test_history_accumulates_over_epochs():
    h = cb.History()
    model = FakeModel()
    run_epochs(h, model, [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "val_loss": 1.5}])
    assert h.history == {"loss": [1.0, 0.5], "val_loss": [2.0, 1.5]} and h.epoch == [0, 1]
    assert model.history is h


# ---------------------------------------------------------------- progress bar --------
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_progbar_non_terminal_prints_only_the_final_line(capsys):
    bar = Progbar(target=32, stateless_metrics=set())
    for step in range(1, 33):
        bar.update(step, [("accuracy", 0.5), ("loss", 0.69314)])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\r" not in out and not ANSI.search(out)
    assert re.fullmatch(r"32/32 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.5000 - loss: 0\.6931\n", out)


def test_progbar_terminal_redraws_in_place(monkeypatch):
    buf = io.StringIO()
    buf.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", buf)
    bar = Progbar(target=4, interval=0.0)
    for step in range(1, 5):
        bar.update(step, [("loss", 1.0 / step)])
    out = buf.getvalue()
    assert out.count("\r") == 4 and out.endswith("\n") and ANSI.search(out)
    last = ANSI.sub("", out.split("\r")[-1])
    # Keras's default averages plain metrics over steps: (1 + 1/2 + 1/3) / 3 then the final value
    assert re.match(r"4/4 ━{20} \d+s \d+(us|ms|s)/step - loss: 0\.2500", last)
    first = ANSI.sub("", out.split("\r")[1])
    assert re.match(r"1/4 ━{5}━{15} \d+s \d+(us|ms|s)/step - loss: 1\.0000", first)


def test_progbar_verbose_2_and_small_values(capsys):
    bar = Progbar(target=10, verbose=2, stateful_metrics=["mse"])
    bar.update(5, [("mse", 0.5)])
    assert capsys.readouterr().out == ""
    bar.update(10, [("mse", 0.0001)])
    out = capsys.readouterr().out
    assert re.fullmatch(r"10/10 - \d+s - \d+(us|ms|s)/step - mse: 1\.0000e-04\n", out)


def test_progbar_unknown_target(capsys):
    bar = Progbar(target=None)
    bar.update(3, [("loss", 0.25)], finalize=True)
    assert re.fullmatch(r"\s+3/Unknown \d+s \d+(us|ms|s)/step - loss: 0\.2500\n", capsys.readouterr().out)


def test_progbar_logger_prints_epochs(capsys):
    cbl = cb.CallbackList([], add_progbar=True, model=FakeModel(), verbose=1, epochs=2, steps=3)
    cbl.on_train_begin()
    for epoch in range(2):
        cbl.on_epoch_begin(epoch)
        for b in range(3):
            cbl.on_train_batch_end(b, {"loss": 0.5})
        cbl.on_test_begin()
        cbl.on_test_batch_end(0, {"loss": 9.0})  # validation inside fit is silent
        cbl.on_test_end({"loss": 9.0})
        cbl.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.75})
    cbl.on_train_end()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert re.fullmatch(r"3/3 ━{20} \d+s \d+(us|ms|s)/step - loss: 0\.5000 - val_loss: 0\.7500", lines[1])
    assert len(lines) == 4


# ---------------------------------------------------------------- live Keras ---------
def _trace(callback, model, logs_per_epoch):
    """Per epoch: (stop_training, wait, best, best_epoch) while driving ``callback``."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    trace = []
    for epoch, logs in enumerate(logs_per_epoch):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, dict(logs))
        best = None if callback.best is None else float(callback.best)
        trace.append((bool(model.stop_training), callback.wait, best, callback.best_epoch))
        if model.stop_training:
            break
    callback.on_train_end()
    return trace, [w.tolist() for w in model.weights]


def _keras_fake_model(keras):
    """A FakeModel whose metrics Keras's MonitorCallback can read (it looks inside MetricsList)."""
    from keras.src.trainers.compile_utils import MetricsList

    return FakeModel([MetricsList([keras.metrics.BinaryAccuracy(name="accuracy"),
                                   keras.metrics.MeanAbsoluteError(name="mae")])])


@pytest.mark.keras
@pytest.mark.parametrize("kw,logs", EARLY_STOPPING_CASES)
def test_early_stopping_matches_keras(keras, kw, logs):
    theirs = _trace(keras.callbacks.EarlyStopping(**kw), _keras_fake_model(keras), logs)
    ours = _trace(cb.EarlyStopping(**kw), _model_for(kw), logs)
    assert ours == theirs


@pytest.mark.keras
@pytest.mark.parametrize("kw", [{}, {"save_best_only": True}, {"save_best_only": True, "mode": "max"},
                                {"save_best_only": True, "monitor": "val_accuracy"}])
def test_model_checkpoint_matches_keras(keras, tmp_path, kw):
    logs = [{"val_loss": v, "val_accuracy": a} for v, a in ((0.5, 0.6), (0.6, 0.7), (0.4, 0.65), (0.45, 0.8))]
    saved = []
    for name, module in (("keras", keras.callbacks), ("ours", cb)):
        model = _keras_fake_model(keras) if name == "keras" else _model_for(kw)
        path = str(tmp_path / name / "m{epoch:02d}_{val_loss:.3f}.keras")
        run_epochs(module.ModelCheckpoint(path, **kw), model, logs)
        saved.append([os.path.basename(p) for p in model.saved])
    assert saved[0] == saved[1]
