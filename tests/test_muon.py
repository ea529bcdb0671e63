"""Keras 3's Muon optimizer: its two rules against Keras's numbers (trained, resumed from a saved state, saved
back), and against a direct NumPy transcription of Keras's update without TensorFlow."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


def _keras_muon_step(g, var, m, lr, momentum=0.95, a=3.4445, b=-4.7750, c=2.0315, steps=5, rms_rate=0.2):
    """Keras's Muon step on a matrix, transcribed in float64."""
    m = m + (g + m * (momentum - 1))
    x = g + momentum * m
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    x = x.T if tall else x
    return var - lr * x * float(np.sqrt(np.float32(max(var.shape)))) * rms_rate, m  # (Keras: a float32 sqrt)


def test_muon_steps_matrices_by_newton_schulz_and_the_rest_by_adam():
    rng = np.random.default_rng(0)
    model = fg.Sequential([fg.layers.Input((4,), dtype="int32"), fg.layers.Embedding(10, 3), fg.layers.Flatten(),
                           fg.layers.Dense(5, name="hidden", dtype="float64"),
                           fg.layers.Dense(2, name="out", dtype="float64")])
    optimizer = fg.optimizers.Muon(0.01, weight_decay=None, adam_weight_decay=None, exclude_layers=["out"])
    model.compile(optimizer, "mse")
    model.build((None, 4))
    x, y = rng.integers(0, 10, size=(6, 4)), rng.normal(size=(6, 2))
    kernel = model.get_layer("hidden").weights[0]
    before = kernel.copy()
    model.train_on_batch(x, y)
    assert [sorted(s) for s in optimizer.slots] == [["momentum", "velocity"], ["momentum"], ["momentum", "velocity"],
                                                    ["momentum", "velocity"], ["momentum", "velocity"]]
    # (the embedding, hidden's bias and both of out's weights take Adam; hidden's kernel Muon)
    g = optimizer.slots[1]["momentum"] / 1.0  # m = g after the first step (m starts at 0)
    expected, _ = _keras_muon_step(g, before, np.zeros_like(before), float(np.float32(0.01)))  # (a float32 rate)
    np.testing.assert_allclose(kernel, expected, rtol=1e-10, atol=1e-12)
    config = optimizer.get_config()
    assert config["exclude_layers"] == ["out"] and config["ns_steps"] == 5 and config["rms_rate"] == 0.2
    assert type(fg.optimizers.get({"class_name": "Muon", "config": config})).__name__ == "Muon"
    with pytest.raises(ValueError, match="exclude_layers"):
        fg.optimizers.Muon(exclude_layers="out")


@pytest.mark.keras
@pytest.mark.parametrize("options", [{}, {"nesterov": False, "rms_rate": None, "adam_lr_ratio": 0.1},
                                     {"exclude_layers": ["out"], "weight_decay": None, "exclude_embeddings": False}])
def test_muon_trains_resumes_and_saves_as_keras(keras, tmp_path, options):
    L = keras.layers
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = L.Input((6,), dtype="int32")
    h = L.GRU(7)(L.Embedding(12, 5)(tokens))
    km = keras.Model(tokens, L.Dense(3, name="out")(L.Dense(9, activation="tanh")(h)))
    km.compile(keras.optimizers.Muon(0.01, **options), "mse")
    km.save(tmp_path / "m.keras")
    x, y = rng.integers(0, 12, size=(32, 6)), rng.normal(size=(32, 3)).astype("float32")
    ours, km = fg.load_model(tmp_path / "m.keras"), keras.models.load_model(tmp_path / "m.keras")
    theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    # (Newton-Schulz pushes a matrix's small singular values towards 1: float32 sums in NumPy's order, not
    # TensorFlow's, come out ~1e-5 apart there)
    for a, b, v in zip(ours.get_weights(), km.get_weights(), km.weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5, err_msg=v.path)
    km.save(tmp_path / "trained.keras")
    ours, km = fg.load_model(tmp_path / "trained.keras"), keras.models.load_model(tmp_path / "trained.keras")
    assert ours.optimizer.iterations == 8
    theirs = km.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    ours.save(tmp_path / "back.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (Keras: "Skipping variable loading for optimizer ...")
        back = keras.models.load_model(tmp_path / "back.keras")
    assert [v.shape for v in back.optimizer.variables] == [v.shape for v in km.optimizer.variables]
    assert int(back.optimizer.iterations) == int(km.optimizer.iterations) == 12
    for a, b in zip(back.optimizer.variables[2:], km.optimizer.variables[2:]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=2e-5)


@pytest.mark.keras_graph  # eager Keras steps schedule-free AdamW otherwise
@pytest.mark.keras
@pytest.mark.parametrize("options", [{}, {"warmup_steps": 3, "weight_decay": 0.01, "beta_1": 0.8}])
def test_schedule_free_adamw_trains_resumes_and_saves_as_keras(keras, tmp_path, options):
    """Keras 3's ScheduleFreeAdamW (its ``z`` sequence in the ``momentum`` slot, at zero when ``fit`` builds it on
    TensorFlow). Trained from the same weights as a Keras model trained in code: ``load_model`` of an untrained
    compiled file builds Keras's optimizer over the layers' fresh random values."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    tokens = L.Input((6,), dtype="int32")
    h = L.GRU(7)(L.Embedding(12, 5)(tokens))
    km = keras.Model(tokens, L.Dense(3)(h))
    km.compile(keras.optimizers.ScheduleFreeAdamW(0.01, **options), "mse")
    km.save(tmp_path / "m.keras")
    x, y = rng.integers(0, 12, size=(32, 6)), rng.normal(size=(32, 3)).astype("float32")
    ours = fg.load_model(tmp_path / "m.keras")
    theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for a, b, v in zip(ours.get_weights(), km.get_weights(), km.weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=v.path)
    km.save(tmp_path / "trained.keras")
    ours, km = fg.load_model(tmp_path / "trained.keras"), keras.models.load_model(tmp_path / "trained.keras")
    theirs = km.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    ours.save(tmp_path / "back.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        back = keras.models.load_model(tmp_path / "back.keras")
    for a, b in zip(back.optimizer.variables[2:], km.optimizer.variables[2:]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
