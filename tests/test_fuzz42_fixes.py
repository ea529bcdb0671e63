"""Fixes from the forty-second Keras-parity fuzz round and the thirtieth session (each test says what was
wrong)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_tf_keras_keras_file_restores_nadam_state(tmp_path):
    """tf_keras's Nadam keeps its momentum product out of its variables, so its ``.keras`` file holds the step
    count and the moments only: fastgru looked for Keras 3's product after them, warned that the state did not
    fit and trained from a fresh optimizer. Now the state is restored (the product restarts at 1, as in
    tf_keras) and training goes on as tf_keras's does, a last batch of another size included."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    km = tk.Sequential([tk.layers.Input((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.compile(tk.optimizers.Nadam(0.01), "mse")
    x = rng.normal(size=(14, 5, 3)).astype("float32")
    y = rng.normal(size=(14, 2)).astype("float32")
    km.fit(x, y, epochs=2, batch_size=4, verbose=0)
    km.save(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fg.load_model(tmp_path / "m.keras")
    assert ours.optimizer.iterations == 8
    km = tk.models.load_model(tmp_path / "m.keras")
    theirs = km.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
