"""Fixes from the seventeenth Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_tf_keras_layer_called_with_a_mask_input(tmp_path):
    """keras.io's "Video classification with a CNN-RNN" in tf_keras: ``GRU(...)(features, mask=mask_input)``
    (the node's kwargs hold the mask's reference, ``{'mask': ['input_2', 0, 0]}``) was run unmasked."""
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    tk.utils.set_random_seed(0)
    feat, mask = tk.Input((6, 3)), tk.Input((6,), dtype="bool")
    km = tk.Model([feat, mask], tk.layers.GRU(3)(tk.layers.GRU(4, return_sequences=True)(feat, mask=mask)))
    km.set_weights([w + rng.normal(0, 0.3, w.shape) for w in km.get_weights()])
    valid = np.arange(6)[None, :] < np.array([6, 4, 2, 5])[:, None]
    x = (rng.normal(size=(4, 6, 3)) * valid[..., None]).astype("float32")
    km.save(tmp_path / "m.h5")
    expected = km.predict([x, valid], verbose=0)
    for ours in (fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(ours.predict([x, valid]), expected, rtol=1e-5, atol=1e-6)
