"""Training behaviour that needs no Keras: convergence, reproducibility, dropout, callbacks, errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Dropout, Input


def sign_task(n=256, steps=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.float32)[:, None]
    return x, y


def small_model(dropout=0.0, recurrent_dropout=0.0):
    return fg.Sequential([Input((8, 2)), GRU(16, dropout=dropout, recurrent_dropout=recurrent_dropout),
                          Dense(1, activation="sigmoid")])


def test_fit_converges_on_a_learnable_task():
    fg.set_random_seed(0)
    x, y = sign_task()
    model = small_model()
    model.compile(optimizer=fg.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    x_test, y_test = sign_task(seed=1)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9


def test_seed_makes_training_reproducible():
    x, y = sign_task(64)
    runs = []
    for _ in range(2):
        fg.set_random_seed(42)
        model = small_model(dropout=0.2, recurrent_dropout=0.2)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        runs.append((history.history["loss"], model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_train_on_batch_returns_the_loss_before_the_update():
    fg.set_random_seed(1)
    x, y = sign_task(32)
    model = small_model()
    model.compile(optimizer=fg.optimizers.SGD(0.5), loss="binary_crossentropy", metrics=["accuracy"])
    before = model.test_on_batch(x, y)
    returned = model.train_on_batch(x, y)
    after = model.test_on_batch(x, y)
    np.testing.assert_allclose(returned, before, rtol=1e-6)
    assert after[0] < before[0]
    assert isinstance(model.train_on_batch(x, y, return_dict=True), dict)


def test_dropout_only_in_training():
    layer = Dropout(0.5, seed=3)
    x = np.ones((2000, 10), np.float32)
    assert (layer(x) == x).all()
    y, cache = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert abs(y.mean() - 1.0) < 0.05
    dx, grads = layer.backward(np.ones_like(x), cache)
    assert grads == [] and (dx == y).all()


def test_gru_dropout_masks_are_variational_and_inference_is_deterministic():
    fg.set_random_seed(0)
    layer = GRU(32, dropout=0.5, recurrent_dropout=0.3)
    layer.build((None, 4, 6))
    x = np.random.default_rng(0).standard_normal((3, 4, 6)).astype(np.float32)
    masks_in, masks_rec = layer._dropout_masks(x)
    assert masks_in.shape == (3, 3, 6) and masks_rec.shape == (3, 3, 32)  # one mask per gate (Keras impl. 1)
    assert set(np.unique(masks_in)) <= {0.0, 2.0}
    np.testing.assert_array_equal(layer(x), layer(x))
    y1, _ = layer.forward(x)
    y2, _ = layer.forward(x)
    assert np.abs(y1 - y2).max() > 0  # fresh masks per batch
    only_input = GRU(4, dropout=0.25)
    only_input.build((None, 4, 6))
    assert only_input._dropout_masks(x)[0].shape == (3, 6)  # one mask shared by the gates


class Recorder(fg.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin_{epoch}")

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append("batch")
        assert "loss" in logs

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end_{epoch}")
        assert {"loss", "val_loss"} <= set(logs)

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_user_callbacks_early_stopping_and_initial_epoch():
    fg.set_random_seed(0)
    x, y = sign_task(64)
    model = small_model()
    model.compile(optimizer=fg.optimizers.SGD(0.0), loss="binary_crossentropy")  # loss never improves
    recorder = Recorder()
    stop = fg.callbacks.EarlyStopping(monitor="loss", patience=1)
    history = model.fit(x, y, epochs=10, batch_size=32, verbose=0, callbacks=[recorder, stop],
                        validation_data=(x[:8], y[:8]), initial_epoch=1)
    assert history.epoch == [1, 2]
    assert recorder.calls[:2] == ["train_begin", "epoch_begin_1"] and recorder.calls[-1] == "train_end"
    assert recorder.calls.count("batch") == 4 and model.history is history


def test_progress_bar_shows_loss_and_metrics(capsys):
    x, y = sign_task(64)
    model = small_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=32, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "2/2" in out
    assert "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_training_errors():
    x, y = sign_task(8)
    model = small_model()
    with pytest.raises(RuntimeError, match="must call compile"):
        model.fit(x, y)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="same number of samples, received 8 and 7"):
        model.fit(x, y[:7])
    with pytest.raises(ValueError, match="validation_split must be in"):
        model.fit(x, y, validation_split=1.5)
    with pytest.raises(ValueError, match="could not interpret optimizer|unknown optimizer|optimizer"):
        model.compile(optimizer="adadelta-nope", loss="mse")
    swish = fg.Sequential([Input((8, 2)), GRU(3, activation="swish"), Dense(1)])
    swish.compile(optimizer="sgd", loss="mse")
    with pytest.raises(fg.UnsupportedKerasFeature, match="inference only"):
        swish.train_on_batch(x, y)
