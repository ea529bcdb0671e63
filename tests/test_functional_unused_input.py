"""A model input that no output uses: Keras accepts it (the caller still passes it), so does fastgru."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def test_native_model_with_an_unused_input_predicts_and_trains():
    L = fg.layers
    a, b = fg.Input((5, 3)), fg.Input((2,))
    model = fg.Model([a, b], L.Dense(1)(L.GRU(4)(a)))
    assert [layer.name for layer in model.layers if type(layer).__name__ == "InputLayer"] == [a.node.layer.name,
                                                                                             b.node.layer.name]
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((3, 5, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    out = model.predict([xa, xb])
    np.testing.assert_array_equal(out, model.predict([xa, np.zeros_like(xb)]))  # b changes nothing
    with pytest.raises(ValueError):
        model.predict([xa])  # but it is still an input to give
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch([xa, xb], np.zeros((3, 1), np.float32))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_model_with_an_unused_input_loads_and_trains_like_keras(tmp_path, keras, suffix):
    L = keras.layers
    a, b = keras.Input((5, 3)), keras.Input((2,))
    model = keras.Model([a, b], L.Dense(1)(L.GRU(4)(a)))
    rng = np.random.default_rng(1)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    xa, xb = rng.standard_normal((3, 5, 3)).astype(np.float32), rng.standard_normal((3, 2)).astype(np.float32)
    y = rng.standard_normal((3, 1)).astype(np.float32)
    model.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}")
    np.testing.assert_allclose(ours.predict([xa, xb]), model.predict([xa, xb], verbose=0), atol=2e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch([xa, xb], y)
    ours.train_on_batch([xa, xb], y)
    for got, want in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, want, atol=2e-6)
