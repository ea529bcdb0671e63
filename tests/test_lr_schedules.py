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


def _warmup_class(module):
    """keras.io's transformer schedule, written against ``module`` (fastgru or Keras)."""

    class Warmup(module.optimizers.schedules.LearningRateSchedule):
        def __init__(self, d_model=16, warmup_steps=4):
            self.d_model, self.warmup_steps = d_model, warmup_steps

        def __call__(self, step):
            step = module.ops.cast(step, "float32") + 1
            ramp = step * (self.warmup_steps ** -1.5)
            return module.ops.rsqrt(module.ops.cast(self.d_model, "float32")) * module.ops.minimum(
                module.ops.rsqrt(step), ramp)

        def get_config(self):
            return {"d_model": self.d_model, "warmup_steps": self.warmup_steps}

    return Warmup


def test_a_function_as_the_learning_rate_is_called_at_each_step(rng, tmp_path):
    rates = iter([0.1, 0.0, 0.2])
    opt = fg.optimizers.SGD(lambda: next(rates))
    var = np.ones(2, np.float32)
    for expected in ([0.9, 0.9], [0.9, 0.9], [0.7, 0.7]):
        opt.apply([np.ones(2, np.float32)], [var])
        np.testing.assert_allclose(var, expected, rtol=1e-6)
    assert len(opt.variables) == 1  # (no rate variable, as Keras's: the step count alone)

    def half_rate():
        return 0.05

    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    model.compile(fg.optimizers.SGD(half_rate), "mse")
    assert model.optimizer.get_config()["learning_rate"] == {
        "module": "builtins", "class_name": "function", "config": "half_rate", "registered_name": "function"}
    x, y = rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 1))
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"half_rate": half_rate})
    assert loaded.optimizer.learning_rate == pytest.approx(0.05)
    with pytest.warns(UserWarning, match="pass it in custom_objects"):  # (no code runs from a file)
        assert fg.load_model(tmp_path / "m.keras").optimizer is None
    opt = fg.optimizers.Adam(0.01)
    opt.learning_rate = S.ExponentialDecay(0.1, 10, 0.5)  # (a schedule or function set later, as Keras allows)
    assert opt.learning_rate == pytest.approx(0.1)


def test_a_scripts_schedule_class_trains_saves_and_loads(rng, tmp_path):
    warmup = _warmup_class(fg)
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    model.compile(fg.optimizers.Adam(warmup()), "mse")
    model.fit(rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 1)), batch_size=4, verbose=0)
    assert model.optimizer.learning_rate == pytest.approx(16 ** -0.5 * 3 * 4 ** -1.5, rel=1e-6)
    assert model.optimizer.get_config()["learning_rate"] == {
        "module": None, "class_name": "Warmup", "config": {"d_model": 16, "warmup_steps": 4},
        "registered_name": "Warmup"}
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"Warmup": warmup})
    assert loaded.optimizer.learning_rate == pytest.approx(model.optimizer.learning_rate, rel=1e-7)
    with pytest.warns(UserWarning, match="'Warmup' is not supported"):
        assert fg.load_model(tmp_path / "m.keras").optimizer is None


@pytest.mark.keras
def test_scripts_schedules_and_rate_functions_match_keras(keras, rng, tmp_path):
    x, y = rng.random((16, 5, 3)).astype("float32"), rng.random((16, 1)).astype("float32")
    theirs, ours = _warmup_class(keras), _warmup_class(fg)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    start = km.get_weights()
    for their_rate, our_rate in ((theirs(), ours()), (lambda: 0.05, lambda: 0.05)):
        km.set_weights(start)
        model.set_weights(start)
        km.compile(keras.optimizers.Adam(their_rate), "mse")
        model.compile(fg.optimizers.Adam(our_rate), "mse")
        expected = km.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
        got = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        for a, b in zip(model.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    km.set_weights(start)
    km.compile(keras.optimizers.Adam(theirs()), "mse")
    km.fit(x, y, epochs=1, batch_size=4, verbose=0)
    km.save(tmp_path / "k.keras")
    mine = fg.load_model(tmp_path / "k.keras", custom_objects={"Warmup": ours})
    assert float(mine.optimizer.learning_rate) == pytest.approx(float(km.optimizer.learning_rate), rel=1e-6)
    mine.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"Warmup": theirs})
    assert float(back.optimizer.learning_rate) == pytest.approx(float(km.optimizer.learning_rate), rel=1e-6)
    expected = km.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               expected, rtol=1e-5)
