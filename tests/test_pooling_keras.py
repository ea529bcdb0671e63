"""GlobalAveragePooling1D (with masks), GlobalMaxPooling1D and Flatten after recurrent layers: forward
and training parity with live Keras, gradients by finite differences, and file loading."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Input,
    Masking,
)

T, D = 6, 3


def padded(rng, bsz=8):
    x = rng.standard_normal((bsz, T, D)).astype(np.float32)
    x[0, -2:] = 0.0
    x[1, :3] = 0.0
    return x


@pytest.mark.parametrize("layer", [GlobalAveragePooling1D(), GlobalAveragePooling1D(keepdims=True),
                                   GlobalMaxPooling1D(), Flatten()], ids=lambda l: type(l).__name__)
def test_gradients_match_finite_differences(rng, layer):
    x = rng.standard_normal((3, 5, 4))
    mask = np.ones((3, 5), bool)
    mask[0, 3:] = False
    use_mask = mask if isinstance(layer, GlobalAveragePooling1D) else None
    layer.build((None, 5, 4))
    y, cache = layer.forward(x, mask=use_mask)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    assert grads == []
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += 1e-6
        minus[idx] -= 1e-6
        numeric[idx] = ((layer.call(plus, mask=use_mask) - layer.call(minus, mask=use_mask)) * coef).sum() / 2e-6
    np.testing.assert_allclose(dx, numeric, atol=1e-6)
    if use_mask is not None:
        assert not dx[0, 3:].any()  # masked steps get no gradient


def test_flatten_data_format_is_checked():
    """(channels_first: tests/test_channels_first_1d.py; the global poolings': tests/test_fuzz13_fixes.py.)"""
    with pytest.raises(ValueError, match="'data_format' should be None or one of 'channels_last', 'channels_first'"):
        Flatten(data_format="channels_middle")
    assert Flatten().get_config()["data_format"] == "channels_last"


def test_shapes_and_summary():
    model = fg.Sequential([Input((T, D)), GRU(4, return_sequences=True), GlobalMaxPooling1D(), Dense(1)])
    assert model.output_shape == (None, 1)
    model = fg.Sequential([Input((T, D)), LSTM(4, return_sequences=True), Flatten(), Dense(2)])
    assert model.layers[1].output_shape == (None, T * 4) and model.count_params() > 0


keras_cases = [
    ("GlobalAveragePooling1D", {}), ("GlobalAveragePooling1D", {"keepdims": True}), ("GlobalMaxPooling1D", {}),
    ("Flatten", {}),
]


@pytest.mark.parametrize("name,options", keras_cases, ids=[f"{n}{o}" for n, o in keras_cases])
def test_forward_training_and_files_match_keras(rng, tmp_path, name, options):
    keras = pytest.importorskip("keras")
    L = keras.layers
    x = padded(rng)
    y = rng.integers(0, 3, len(x))
    head_k = [L.Flatten()] if options.get("keepdims") else []
    km = keras.Sequential([keras.Input((T, D)), L.Masking(), L.Bidirectional(L.GRU(4, return_sequences=True)),
                           getattr(L, name)(**options)] + head_k + [L.Dense(3, activation="softmax")])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    ours_pool = {"GlobalAveragePooling1D": GlobalAveragePooling1D, "GlobalMaxPooling1D": GlobalMaxPooling1D,
                 "Flatten": Flatten}[name](**options)
    ours = fg.Sequential([Input((T, D)), Masking(), Bidirectional(GRU(4, return_sequences=True)), ours_pool]
                         + ([Flatten()] if options.get("keepdims") else []) + [Dense(3, activation="softmax")])
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=2e-6)
    km.save(tmp_path / "m.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), km.predict(x, verbose=0), atol=2e-6)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-4)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, atol=1e-4 * max(np.abs(k).max(), 1e-3), rtol=1e-3)
