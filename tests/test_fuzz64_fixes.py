"""Fixes from fuzz round 64 and the session's carried items: TimeDistributed over a Sequential given without an
Input (a video model's per-frame CNN), built on each step's shape; ConvLSTM weights' Keras paths
(``conv_lstm1d/conv_lstm_cell/kernel``)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Conv2D, ConvLSTM1D, Dense, Flatten, Input, MaxPooling2D, TimeDistributed


def _per_frame_model():
    frames = Input((5, 8, 8, 1))
    cnn = fg.Sequential([Conv2D(2, 3, name="conv"), MaxPooling2D(), Flatten(), Dense(4, name="proj")], name="cnn")
    features = TimeDistributed(cnn, name="frames")(frames)
    return fg.Model(frames, Dense(1)(GRU(3)(features)))


def test_time_distributed_builds_an_unbuilt_sequential_on_each_step(rng):
    model = _per_frame_model()
    td = model.layers[1]
    assert td.layer.built and td.layer.input_shape == (None, 8, 8, 1)
    assert [w.path for w in model.weights][:4] == [
        "frames/cnn/conv/kernel", "frames/cnn/conv/bias", "frames/cnn/proj/kernel", "frames/cnn/proj/bias"]
    x = rng.normal(size=(3, 5, 8, 8, 1)).astype("float32")
    per_frame = fg.Sequential([Input((8, 8, 1))] + [type(l).from_config(l.get_config()) for l in td.layer.layers[1:]])
    per_frame.set_weights(td.get_weights())
    np.testing.assert_allclose(td(x)[:, 2], per_frame.predict(x[:, 2], verbose=0), rtol=1e-6)


def test_time_distributed_unbuilt_sequential_trains_and_round_trips(rng, tmp_path):
    model = _per_frame_model()
    x = rng.normal(size=(4, 5, 8, 8, 1)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    model.compile("adam", "mse")
    model.fit(x, np.ones((4, 1)), epochs=2, verbose=0)
    assert not np.allclose(model.get_weights()[0], before[0])
    model.save(tmp_path / "td.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "td.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_time_distributed_unbuilt_sequential_in_a_sequential(rng):
    model = fg.Sequential([Input((5, 6, 6, 1)), TimeDistributed(fg.Sequential([Conv2D(2, 3), Flatten()])), GRU(2)])
    assert model.predict(rng.normal(size=(2, 5, 6, 6, 1)).astype("float32"), verbose=0).shape == (2, 2)


def test_conv_lstm_weight_paths_hold_keras_cell():
    model = fg.Sequential([Input((4, 6, 2)), ConvLSTM1D(3, 3, padding="same", name="clstm")], name="video")
    assert [w.path for w in model.weights] == ["video/clstm/conv_lstm_cell/kernel",
                                               "video/clstm/conv_lstm_cell/recurrent_kernel",
                                               "video/clstm/conv_lstm_cell/bias"]


@pytest.mark.keras
def test_keras_time_distributed_sequential_both_ways(keras, rng, tmp_path):
    L = keras.layers
    frames = keras.Input((5, 8, 8, 1))
    h = L.TimeDistributed(keras.Sequential([L.Conv2D(2, 3), L.MaxPooling2D(), L.Flatten(), L.Dense(4)]))(frames)
    km = keras.Model(frames, L.Dense(1)(L.GRU(3)(h)))
    x = rng.normal(size=(4, 5, 8, 8, 1)).astype("float32")
    km.save(tmp_path / "k.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k.keras").predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ours = _per_frame_model()
    ours.set_weights(km.get_weights())
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_optimizer_variables_before_and_after_a_step(rng):
    model = fg.Sequential([Input((4, 3)), GRU(2), Dense(1)])
    model.compile(fg.optimizers.Adam(amsgrad=True), "mse")
    assert [v.numpy() for v in model.optimizer.variables] == [0, np.float32(0.001)]
    model.fit(rng.normal(size=(4, 4, 3)), np.ones((4, 1)), verbose=0)
    variables = model.optimizer.variables
    assert len(variables) == 2 + 3 * len(model.trainable_weights)
    assert variables[0].numpy() == 1
    assert np.shares_memory(variables[2], model.optimizer.slots[0]["momentum"])  # (live views, as Keras's)
    model.compile(fg.optimizers.SGD(learning_rate=fg.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse")
    assert len(model.optimizer.variables) == 1  # (a schedule's rate is no variable)


@pytest.mark.keras
@pytest.mark.parametrize("name", ["adam", "rmsprop", "nadam", "adamw", "sgd"])
def test_optimizer_variables_match_keras(keras, rng, name):
    L = keras.layers
    km = keras.Sequential([keras.Input((4, 3)), L.GRU(2), L.Dense(1)])
    ours = fg.Sequential([Input((4, 3)), GRU(2), Dense(1)])
    ours.set_weights(km.get_weights())
    x, y = rng.normal(size=(8, 4, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    km.compile(keras.optimizers.get(name), "mse")
    ours.compile(name, "mse")
    km.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    theirs = [np.asarray(v.numpy()) for v in km.optimizer.variables]
    mine = [np.asarray(v.numpy()) for v in ours.optimizer.variables]
    assert [a.shape for a in mine] == [a.shape for a in theirs]
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)


def test_time_distributed_sequential_config_round_trips(rng):
    td = TimeDistributed(fg.Sequential([Conv2D(2, 3), Flatten()]))
    assert type(TimeDistributed.from_config(td.get_config()).layer).__name__ == "Sequential"
    frames = Input((5, 8, 8, 1))
    model = fg.Model(frames, GRU(2)(td(frames)))
    x = rng.normal(size=(2, 5, 8, 8, 1)).astype("float32")
    for copy in (fg.models.clone_model(model), fg.models.model_from_json(model.to_json())):
        copy.set_weights(model.get_weights())
        np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
