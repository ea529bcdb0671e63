"""Fixes from the thirty-seventh Keras-parity fuzz round (twenty-eighth session): Keras's own callbacks and
optimizer settings on fastgru models, and learning-rate schedules with gradient accumulation. Each test says what
was wrong."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _data(seed=3, n=24):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 3)).astype("float32")
    return x, (x[:, -1, 0] > 0).astype("float32")


def _pair(keras, tmp_path, name="m"):
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1, activation="sigmoid")])
    km.save(tmp_path / f"{name}.keras")
    return km, fg.load_model(tmp_path / f"{name}.keras")


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["early_stopping", "checkpoint", "reduce_lr"])
def test_keras_monitor_callbacks_in_auto_mode_find_a_metrics_direction(keras, tmp_path, kind):
    """Keras's EarlyStopping/ModelCheckpoint/ReduceLROnPlateau monitoring ``val_accuracy`` with mode "auto" look the
    metric up in Keras's own metrics containers, which a fastgru model has not: they raised "isn't able to
    automatically determine whether that metric should be maximized". The direction is decided for them."""
    x, y = _data()
    make = {"early_stopping": lambda: keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=1),
            "checkpoint": lambda: keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"),
                                                                  monitor="val_accuracy", save_best_only=True,
                                                                  save_weights_only=True),
            "reduce_lr": lambda: keras.callbacks.ReduceLROnPlateau(monitor="val_auc", patience=1, factor=0.5)}[kind]
    km, ours = _pair(keras, tmp_path)
    histories = []
    for model in (km, ours):
        model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(
            name="auc")])
        callback = make()
        histories.append(model.fit(x, y, epochs=4, batch_size=8, validation_split=0.25, shuffle=False, verbose=0,
                                   callbacks=[callback]).history)
        assert callback.monitor_op is not None
    assert histories[1].keys() == histories[0].keys()
    for key in histories[0]:
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-4, atol=1e-6, err_msg=key)


@pytest.mark.keras
def test_a_keras_optimizers_weight_decay_exclusions_are_kept(keras, tmp_path):
    """``keras.optimizers.AdamW(...).exclude_from_weight_decay(var_names=["bias"])`` handed to compile: the exclusions
    live outside the optimizer's config and were dropped silently (every bias decayed). Kept now; a ``var_list`` of a
    Keras model's variables cannot apply to fastgru's arrays and is refused."""
    x, y = _data(6, 30)
    km, ours = _pair(keras, tmp_path)
    for model in (km, ours):
        optimizer = keras.optimizers.AdamW(0.02, weight_decay=0.2)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        model.compile(optimizer, "binary_crossentropy")
    theirs = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for mine, want in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-6)
    optimizer = keras.optimizers.AdamW(0.02, weight_decay=0.2)
    optimizer.exclude_from_weight_decay(var_list=[km.layers[-1].bias])
    with pytest.raises(ValueError, match="var_names"):
        ours.compile(optimizer, "binary_crossentropy")


@pytest.mark.keras
def test_a_schedule_with_gradient_accumulation_reads_the_batch_count(keras, tmp_path):
    """With ``gradient_accumulation_steps``, Keras evaluates a learning-rate schedule at its "real" iterations (the
    batches); fastgru evaluated it at the updates made, so the rate decayed n times slower."""
    x, y = _data(5, 24)
    km, ours = _pair(keras, tmp_path)
    for model, lib in ((km, keras), (ours, fg)):
        schedule = lib.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5)
        model.compile(lib.optimizers.Adam(schedule, gradient_accumulation_steps=2), "binary_crossentropy")
    theirs = km.fit(x, y, epochs=3, batch_size=6, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=6, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    assert int(ours.optimizer.iterations) == int(km.optimizer.iterations) == 6
    np.testing.assert_allclose(float(ours.optimizer.learning_rate), float(km.optimizer.learning_rate), rtol=1e-6)
    for mine, want in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
def test_keras_backup_and_restore_resumes_an_interrupted_fit(keras, tmp_path):
    """``keras.callbacks.BackupAndRestore`` resumes by setting the model's ``_initial_epoch`` at train begin, which
    fastgru's fit did not read: it ran every epoch again."""
    x, y = _data(12)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    km, ours = _pair(keras, tmp_path)
    epochs = []
    for tag, model in (("keras", km), ("ours", ours)):
        model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
        backup = str(tmp_path / f"backup_{tag}")
        with pytest.raises(RuntimeError, match="interrupted"):
            model.fit(x, y, epochs=4, batch_size=8, verbose=0, shuffle=False,
                      callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()])
        epochs.append(model.fit(x, y, epochs=4, batch_size=8, verbose=0, shuffle=False,
                                callbacks=[keras.callbacks.BackupAndRestore(backup)]).epoch)
    assert epochs[1] == epochs[0] == [2, 3]
    for mine, want in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("swap_on_epoch", [False, True])
def test_swap_ema_weights_keras_and_fastgru(keras, tmp_path, swap_on_epoch):
    """``keras.callbacks.SwapEMAWeights`` reaches into a Keras optimizer's variables and raised a self-contradicting
    "must be used when use_ema=True is set ... Received: use_ema=True"; fastgru has the callback (``fg.callbacks.
    SwapEMAWeights``) and runs Keras's as it: validation on the moving averages, the same history and weights."""
    x, y = _data(12)
    km, ours = _pair(keras, tmp_path)
    results = []
    for model, callback in ((km, keras.callbacks.SwapEMAWeights(swap_on_epoch)),
                            (ours, keras.callbacks.SwapEMAWeights(swap_on_epoch)),):
        model.compile(keras.optimizers.Adam(0.05, use_ema=True), "binary_crossentropy")
        results.append(model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, validation_data=(x, y),
                                 callbacks=[callback]).history)
    for key in results[0]:
        np.testing.assert_allclose(results[1][key], results[0][key], rtol=1e-5, err_msg=key)
    for mine, want in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(mine, want, rtol=1e-4, atol=1e-6)
    fresh = fg.load_model(tmp_path / "m.keras")
    fresh.compile(fg.optimizers.Adam(0.05, use_ema=True), "binary_crossentropy")
    mine = fresh.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, validation_data=(x, y),
                     callbacks=[fg.callbacks.SwapEMAWeights(swap_on_epoch)]).history
    np.testing.assert_allclose(mine["val_loss"], results[0]["val_loss"], rtol=1e-5)
    fresh.compile(fg.optimizers.Adam(0.05), "binary_crossentropy")
    with pytest.raises(ValueError, match="use_ema=True"):
        fresh.evaluate(x, y, verbose=0, callbacks=[fg.callbacks.SwapEMAWeights()])


def test_class_weight_takes_integral_float_keys_as_keras():
    """``class_weight={0.0: 0.5, 1.0: 2.0}`` (keys read back from JSON or NumPy) was refused; Keras looks classes up
    as ``class_weight.get(int(c))``, which finds 0.0 and 1.0: the same training as integer keys. 0.5 is still no
    class index."""
    x, y = _data(8, 16)
    histories = []
    for weights in ({0: 0.5, 1: 2.0}, {0.0: 0.5, 1.0: 2.0}, {np.float32(0): 0.5, np.float64(1): 2.0}):
        model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(3, seed=1), fg.layers.Dense(1, seed=2)])
        model.compile(fg.optimizers.SGD(0.1), "mse")
        histories.append(model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0,
                                   class_weight=weights).history["loss"])
    assert histories[1] == histories[0] and histories[2] == histories[0]
    with pytest.raises(TypeError, match="class indices"):
        model.fit(x, y, epochs=1, verbose=0, class_weight={0.5: 1.0})
