"""Fixes from the forty-eighth Keras-parity fuzz round and the thirty-first session (each test says what was
wrong)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


def _nested_cases(keras):
    L = keras.layers

    def inner():  # one branch reaches the output only through stop_gradient
        i = L.Input((5, 3))
        dead = L.Dense(4, name="dead")(i)
        return keras.Model(i, L.Add()([L.Dense(4, name="used")(i), keras.ops.stop_gradient(dead)]))

    def inner_rows():
        i = L.Input((3,))
        return keras.Model(i, L.Add()([L.Dense(4)(i), keras.ops.stop_gradient(L.Dense(4)(i))]))

    yield "sequential", keras.Sequential([L.Input((5, 3)), inner(), L.GRU(3), L.Dense(1)])
    i = L.Input((5, 3))
    yield "functional", keras.Model(i, L.Dense(1)(L.GRU(3)(inner()(i))))
    yield "time_distributed", keras.Sequential([L.Input((5, 3)), L.TimeDistributed(inner_rows()), L.GRU(3),
                                                L.Dense(1)])
    i = L.Input((5, 3))
    used, _unused = keras.Model(i, [L.Dense(4)(i), L.Dense(2)(i)])(i)  # the second output feeds nothing
    yield "unused_output", keras.Model(i, L.Dense(1)(L.GRU(3)(used)))


@pytest.mark.keras
def test_weights_no_gradient_reaches_inside_a_nested_model_are_left_alone(keras, tmp_path):
    """Inside a nested model (in a Sequential, a graph, or a TimeDistributed), a weight no gradient reached got
    a zero gradient, which weight decay and momentum moved, where Keras has none and leaves it alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    for name, km in _nested_cases(keras):
        km.compile(keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=0.1) if name == "time_distributed"
                   else keras.optimizers.AdamW(0.01, weight_decay=0.1), loss="mse")
        path = tmp_path / f"{name}.keras"
        km.save(path)
        ours, km = fg.load_model(path), keras.models.load_model(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (Keras: "Gradients do not exist for variables ...")
            theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
        mine = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, err_msg=name)
        for a, b, v in zip(ours.get_weights(), km.get_weights(), km.weights):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {v.path}")
