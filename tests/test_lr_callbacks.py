"""``fg.callbacks.ReduceLROnPlateau`` and ``fg.callbacks.LearningRateScheduler`` against Keras's own: the
same learning rates epoch by epoch (in the history, as ``learning_rate``), losses and final weights."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _pair(keras, lr=0.3):
    rng = np.random.default_rng(4)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    ours = fg.from_keras(model)
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(lr), loss="mse")
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    return model, ours, x, y


def _fit_both(model, ours, x, y, theirs_cb, ours_cb, epochs=8):
    want = model.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0, validation_split=0.25,
                     callbacks=[theirs_cb]).history
    got = ours.fit(x, y, epochs=epochs, batch_size=8, shuffle=False, verbose=0, validation_split=0.25,
                   callbacks=[ours_cb]).history
    np.testing.assert_allclose(got["learning_rate"], want["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    return got


@pytest.mark.parametrize("kwargs", [dict(monitor="loss", factor=0.5, patience=0, min_delta=10.0),
                                    dict(monitor="val_loss", factor=0.2, patience=1, cooldown=1, min_lr=0.02,
                                         min_delta=1.0)])
def test_reduce_lr_on_plateau_as_keras(keras, kwargs):
    model, ours, x, y = _pair(keras)
    got = _fit_both(model, ours, x, y, keras.callbacks.ReduceLROnPlateau(**kwargs),
                    fg.callbacks.ReduceLROnPlateau(**kwargs))
    assert len(set(got["learning_rate"])) > 1  # the rate did change


def test_learning_rate_scheduler_as_keras(keras):
    model, ours, x, y = _pair(keras)

    def schedule(epoch, lr):
        return lr if epoch < 2 else float(lr * np.exp(-0.3))

    got = _fit_both(model, ours, x, y, keras.callbacks.LearningRateScheduler(schedule),
                    fg.callbacks.LearningRateScheduler(schedule), epochs=5)
    assert got["learning_rate"][-1] < got["learning_rate"][0]


def test_learning_rate_callbacks_refuse_bad_arguments():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        fg.callbacks.ReduceLROnPlateau(factor=1.5)
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(2), fg.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((4, 5, 3), np.float32), np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[fg.callbacks.LearningRateScheduler(lambda e, lr: "fast")])
    assert model.optimizer.learning_rate == pytest.approx(0.01)  # (SGD's default, untouched)
    # the one-argument schedule of older Keras
    model.fit(x, y, epochs=2, verbose=0, callbacks=[fg.callbacks.LearningRateScheduler(lambda e: 0.05 / (e + 1))])
    assert model.optimizer.learning_rate == pytest.approx(0.025)
