"""Learning-rate schedules (``fg.optimizers.schedules``) against Keras's: the same rate at every step, the
same training, Keras's schedule objects and configs read, and written back in Keras's form."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

S = fg.optimizers.schedules

CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5, staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.2, decay_steps=2, decay_rate=0.7, staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[2, 5], values=[0.1, 0.05, 0.01])),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4, end_learning_rate=0.01, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=4, power=0.5, cycle=True)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=5, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=5, warmup_target=0.2, warmup_steps=3)),
]


@pytest.mark.parametrize("name,config", CASES)
def test_schedule_values_match_keras(keras, name, config):
    ours, theirs = getattr(S, name)(**config), getattr(keras.optimizers.schedules, name)(**config)
    for step in range(12):
        np.testing.assert_allclose(float(ours(step)), float(theirs(step)), rtol=2e-6, atol=1e-9, err_msg=str(step))
    assert S.get(keras.optimizers.schedules.serialize(theirs)).get_config() == ours.get_config()
    assert S.serialize(ours)["class_name"] == name


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_training_with_a_schedule_matches_keras(keras, optimizer):
    rng = np.random.default_rng(2)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    x, y = rng.standard_normal((16, 5, 3)).astype(np.float32), rng.standard_normal((16, 1)).astype(np.float32)
    ours = fg.from_keras(model)
    config = dict(initial_learning_rate=0.05, decay_steps=2, decay_rate=0.6)
    model.compile(optimizer=getattr(keras.optimizers, optimizer)(keras.optimizers.schedules.ExponentialDecay(
        **config)), loss="mse")
    # Keras's own optimizer object, with its schedule, given to fastgru's compile
    ours.compile(optimizer=getattr(keras.optimizers, optimizer)(keras.optimizers.schedules.ExponentialDecay(
        **config)), loss="mse")
    assert isinstance(ours.optimizer._schedule, S.ExponentialDecay)
    want = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
    np.testing.assert_allclose(ours.optimizer.learning_rate, float(model.optimizer.learning_rate), rtol=1e-6)


def test_schedule_optimizer_config_and_refusals():
    opt = fg.optimizers.Adam(S.CosineDecay(0.1, 10))
    config = opt.get_config()
    assert config["learning_rate"]["class_name"] == "CosineDecay"
    again = fg.optimizers.Adam.from_config(config)
    assert again._schedule.get_config() == opt._schedule.get_config()
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.5
    with pytest.raises(ValueError, match="not supported"):
        fg.optimizers.SGD({"class_name": "WarmupThenDecay", "config": {}})  # (a custom schedule)
    with pytest.raises(ValueError, match="decay_steps"):
        S.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="1 less than"):
        S.PiecewiseConstantDecay([1, 2], [0.1])
