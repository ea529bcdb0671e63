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


@pytest.mark.keras
def test_tf_keras_saved_model_with_stacked_cells_and_adapted_normalization(tmp_path):
    """Two SavedModel directories fastgru loads from .h5 were refused as if damaged: an ``RNN`` over a stack of
    cells (one layer in the checkpoint, its variables the cells' in turn: "the checkpoint has 2 layers with
    weights, the model has 3") and an adapted ``Normalization`` (its ``count`` an int64 variable: "holds int64
    values, expected floats")."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(6, 5, 3)).astype("float32")
    norm = tk.layers.Normalization()
    norm.adapt(x.reshape(-1, 3))
    cells = tk.layers.StackedRNNCells([tk.layers.GRUCell(4), tk.layers.LSTMCell(3)])
    km = tk.Sequential([tk.layers.Input((5, 3)), norm, tk.layers.RNN(cells, return_sequences=True),
                        tk.layers.GRU(2)])
    km.save(tmp_path / "sm", save_format="tf")
    ours = fg.load_model(tmp_path / "sm")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert int(ours.layers[0].weights[2]) == 30  # (the adapted count, as tf_keras keeps it)
