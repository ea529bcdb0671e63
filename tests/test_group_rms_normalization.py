"""GroupNormalization, RMSNormalization and Identity: gradients against central differences (float64); the
committed file (tests/fixtures/make_layer_fixtures.py) run and trained to Keras's numbers without TensorFlow;
options, masks, training and files both ways against live Keras; bad options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradcheck import assert_layer_gradients
from keras_parity import assert_fixture_numbers

import fastgru as fg
from fastgru.layers import GRU, Dense, GroupNormalization, Identity, Input, Masking, RMSNormalization

FILES = Path(__file__).resolve().parent / "fixtures" / "files"

CASES = [
    (GroupNormalization, dict(groups=2)),
    (GroupNormalization, dict(groups=-1, center=False)),
    (GroupNormalization, dict(groups=5, axis=1, scale=False)),
    (GroupNormalization, dict(groups=1, epsilon=0.1)),
    (RMSNormalization, dict()),
    (RMSNormalization, dict(axis=[1, 2], epsilon=1e-2)),
    (RMSNormalization, dict(axis=1)),  # a (5,) scale against (2, 5, 5)... only where T == C, as Keras
    (Identity, dict()),
]


@pytest.mark.parametrize("cls,options", CASES, ids=[f"{c.__name__}-{o}" for c, o in CASES])
def test_gradients_match_finite_differences(rng, cls, options):
    layer = cls(dtype="float64", **options)
    channels = 5 if options.get("axis") == 1 and cls is RMSNormalization else 4
    layer.build((None, 5, channels))
    layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
    x = rng.standard_normal((2, 5, channels)) * 2 + 0.5
    cache, coef = assert_layer_gradients(layer, x, rng)
    assert layer.backward(coef, cache, need_dx=False)[0] is None


def test_norm_layers_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "norm_layers.npz")
    model = fg.load_model(FILES / "norm_layers.keras")
    assert [type(layer).__name__ for layer in model.layers][1:7] == [
        "GroupNormalization", "GRU", "RMSNormalization", "Identity", "GroupNormalization", "RMSNormalization"]
    again = assert_fixture_numbers(model, data, tmp_path)
    # (Keras writes the resolved group count of groups=-1, and the axis list)
    assert again.layers[5].get_config()["groups"] == 7 and again.layers[6].get_config()["axis"] == [1, 2]


def test_masks_and_bad_options(rng):
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    for layer, keeps in [(GroupNormalization(3), True), (Identity(), True), (RMSNormalization(), False)]:
        layer.build((None, 4, 6))
        assert (layer.compute_mask(x, mask) is mask) == keeps
    with pytest.raises(ValueError, match="6 channels cannot be split into 4 groups"):
        fg.Sequential([Input((4, 6)), GroupNormalization(4)])
    with pytest.raises(ValueError, match="6 channels cannot be split into 8 groups"):
        fg.Sequential([Input((4, 6)), GroupNormalization(8)])
    with pytest.raises(ValueError, match="'groups'"):
        GroupNormalization(0)
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        fg.Sequential([Input((4, 6)), GroupNormalization(2, axis=3)])
    with pytest.raises(ValueError, match=r"a scale of shape \(4,\) .* does not broadcast"):
        fg.Sequential([Input((4, 6)), RMSNormalization(axis=1)])
    with pytest.raises(ValueError, match="needs a known size"):
        fg.Sequential([Input((None, 6)), GroupNormalization(2, axis=1)])
    model = fg.Sequential([Input((4, 6)), RMSNormalization()])
    with pytest.raises(ValueError, match=r"expects input shape \(None, 4, 6\), received shape \(2, 4, 5\)"):
        model.layers[0].call(np.zeros((2, 4, 5), np.float32))


@pytest.mark.keras
@pytest.mark.parametrize("case", range(6))
def test_training_and_files_match_keras(keras, rng, tmp_path, case):
    L = keras.layers
    middle = [lambda L: [L.GroupNormalization(4)], lambda L: [L.GroupNormalization(-1, center=False)],
              lambda L: [L.GroupNormalization(7, axis=1, scale=False)], lambda L: [L.RMSNormalization()],
              lambda L: [L.RMSNormalization(axis=[1, 2], epsilon=1e-3)], lambda L: [L.Identity()]][case]
    km = keras.Sequential([keras.Input((7, 8)), L.Masking(), *middle(L), L.GRU(5), L.Dense(3)])
    km.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in km.get_weights()])
    x = (rng.standard_normal((6, 7, 8)) * 2 + 1).astype(np.float32)
    x[1, 4:] = 0  # padded steps: GroupNormalization and Identity pass the mask on, RMSNormalization drops it
    y = rng.standard_normal((6, 3)).astype(np.float32)
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.01), "mse")
    ours.compile(fg.optimizers.Adam(0.01), "mse")
    theirs = km.fit(x, y, epochs=3, batch_size=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=3, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-4, atol=1e-5)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               ours.predict(x), rtol=1e-5, atol=1e-6)


def test_in_code_models(rng):
    model = fg.Sequential([Input((5, 4)), Masking(), GroupNormalization(2), GRU(3, return_sequences=True),
                           RMSNormalization(), Identity(), Dense(1)])
    model.compile("adam", "mse")
    x = rng.standard_normal((4, 5, 4)).astype(np.float32)
    losses = model.fit(x, rng.standard_normal((4, 5, 1)), epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    assert [w.shape for w in model.layers[1].weights] == [(4,), (4,)]
    assert [w.shape for w in model.layers[3].weights] == [(3,)]
