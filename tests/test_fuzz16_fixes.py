"""Fixes from the sixteenth Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature
from fastgru.layers import GRU, Dense, Embedding, Input, TimeDistributed


def test_fastgru_metrics_exports_the_metric_classes():
    for name in ("MeanAbsolutePercentageError", "RootMeanSquaredError", "TopKCategoricalAccuracy", "R2Score",
                 "LogCoshError", "Accuracy", "SparseCategoricalCrossentropy"):
        assert getattr(fg.metrics, name)().name  # (only the string names worked)


def test_time_distributed_of_a_sequential_built_in_code(rng):
    encoder = fg.Sequential([Input((6,)), Embedding(20, 5, mask_zero=True), GRU(4)])
    tokens = fg.Input((3, 6))
    model = fg.Model(tokens, Dense(2)(GRU(3)(TimeDistributed(encoder)(tokens))))
    ids = rng.integers(0, 20, size=(4, 3, 6))
    assert model.predict(ids).shape == (4, 2)
    np.testing.assert_allclose(model.layers[1](ids)[:, 2], encoder.predict(ids[:, 2]), rtol=1e-6)


@pytest.mark.keras
def test_keras_files_of_the_round(keras, rng, tmp_path):
    L, ops = keras.layers, keras.ops
    # TimeDistributed(RNN(GRUCell)) was refused
    x = rng.normal(size=(4, 3, 5, 2)).astype(np.float32)
    km = keras.Sequential([L.Input((3, 5, 2)), L.TimeDistributed(L.RNN(L.GRUCell(4))), L.Flatten(), L.Dense(1)])
    km.save(tmp_path / "td.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "td.keras").predict(x), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    # Bidirectional(RNN([cells])) is refused with a message for the user
    km = keras.Sequential([L.Input((6, 3)), L.Bidirectional(L.RNN([L.GRUCell(4), L.GRUCell(3)])), L.Dense(1)])
    km.save(tmp_path / "bi.keras")
    with pytest.raises(UnsupportedKerasFeature, match="not inside Bidirectional or TimeDistributed"):
        fg.load_model(tmp_path / "bi.keras")
    # a compile config without an optimizer (a .keras saved after an .h5) compiles with Keras's default
    km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    km.save(tmp_path / "m.h5")
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    assert ours.compiled and type(ours.optimizer).__name__ == "RMSprop"
    # a sentence mask given with ops over a TimeDistributed(GRU) of words (a chain was built without it)
    ids = rng.integers(1, 20, size=(4, 3, 5))
    ids[:, :, 3:] = 0
    ids[0, 2] = 0
    inputs = L.Input((3, 5), dtype="int32")
    h = L.TimeDistributed(L.GRU(4))(L.Embedding(20, 6, mask_zero=True)(inputs))
    km = keras.Model(inputs, L.Dense(1)(L.GRU(3)(h, mask=ops.any(ops.not_equal(inputs, 0), axis=-1))))
    km.save(tmp_path / "s.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "s.keras").predict(ids), km.predict(ids, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_tf_keras_files_of_the_round(rng, tmp_path):
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    # Conv1DTranspose: tf_keras writes groups=1 (was refused)
    km = tk.Sequential([L.Input((6, 3)), L.Conv1DTranspose(4, 3, strides=2, padding="same")])
    km.save(tmp_path / "c.h5")
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(fg.load_model(tmp_path / "c.h5").predict(x), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    # tf_keras's TimeDistributed(GRU) reduces the words' mask to the sentences' (any word), for the GRU after it
    ids = rng.integers(1, 20, size=(4, 3, 5))
    ids[:, :, 3:] = 0
    ids[0, 2] = 0
    ids[1, 1:] = 0
    km = tk.Sequential([L.Input((3, 5), dtype="int32"), L.Embedding(20, 6, mask_zero=True),
                        L.TimeDistributed(L.GRU(4)), L.GRU(3), L.Dense(1)])
    km.save(tmp_path / "t.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "t.h5").predict(ids), km.predict(ids, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_a_code_built_model_of_one_element_lists(rng):
    """fg.Model([a], [out]) built in code takes evaluate([x], [y]) and compile(metrics=[["mae"]]), as Keras and as
    the same model loaded from a file (the target list of one was read as one array of one sample)."""
    inputs = fg.Input((5, 3), name="a")
    model = fg.Model([inputs], [Dense(2, name="o")(GRU(4)(inputs))])
    x = rng.normal(size=(8, 5, 3)).astype(np.float32)
    y = x[:, -1, :2]
    model.compile("adam", ["mse"], metrics=[["mae"]])
    assert model.evaluate([x], [y], verbose=0) == model.evaluate(x, y, verbose=0)
    assert len(model.evaluate([x], [y], verbose=0)) == 2


@pytest.mark.keras
def test_explicit_masks_after_a_layer_that_ends_the_mask(keras, rng, tmp_path):
    """Masking -> Conv1D -> GRU(mask=ops...) and Masking over (B, S, W, F) -> TimeDistributed(GRU) -> GRU(mask=
    ops.any(ops.any(...))): Keras applies the recorded mask; fastgru ran unmasked, or failed on the rank-3 mask."""
    L, ops = keras.layers, keras.ops
    x = rng.normal(size=(4, 8, 3)).astype(np.float32)
    x[0, 5:] = 0
    inputs = L.Input((8, 3))
    h = L.Conv1D(4, 3, padding="same")(L.Masking()(inputs))
    km = keras.Model(inputs, L.Dense(1)(L.GRU(4)(h, mask=ops.any(ops.not_equal(inputs, 0.0), axis=-1))))
    km.save(tmp_path / "c.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "c.keras").predict(x), km.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)
    x4 = rng.normal(size=(4, 3, 5, 2)).astype(np.float32)
    x4[:, :, 3:] = 0
    x4[0, 2] = 0
    inputs = L.Input((3, 5, 2))
    h = L.TimeDistributed(L.GRU(4))(L.Masking()(inputs))
    sentences = ops.any(ops.any(ops.not_equal(inputs, 0.0), axis=-1), axis=-1)
    km = keras.Model(inputs, L.Dense(1)(L.GRU(3)(h, mask=sentences)))
    km.save(tmp_path / "s.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "s.keras").predict(x4), km.predict(x4, verbose=0), rtol=1e-5,
                               atol=1e-6)
