"""Weight constraints (fastgru.constraints): Keras's formulas, options and configs; the committed file
(tests/fixtures/make_layer_fixtures.py) trained to Keras's numbers without TensorFlow (the constraints applied
after each optimizer step); live Keras files both ways; what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru import constraints
from fastgru.errors import UnsupportedKerasFeature
from fastgru.layers import GRU, Dense, Embedding, Input

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def test_formulas(rng):
    w = rng.standard_normal((4, 3)) * 2
    norms = np.sqrt((w ** 2).sum(axis=0, keepdims=True))
    np.testing.assert_allclose(constraints.MaxNorm(1.5)(w), w * np.clip(norms, 0, 1.5) / (1e-7 + norms))
    np.testing.assert_allclose(constraints.UnitNorm(axis=1)(w),
                               w / (1e-7 + np.sqrt((w ** 2).sum(axis=1, keepdims=True))))
    np.testing.assert_array_equal(constraints.NonNeg()(w), np.where(w >= 0, w, 0))
    mm = constraints.MinMaxNorm(0.5, 1.0, rate=0.3)(w)
    np.testing.assert_allclose(mm, w * (0.3 * np.clip(norms, 0.5, 1.0) + 0.7 * norms) / (1e-7 + norms))
    both = constraints.MaxNorm(2.0, axis=[0, 1])(w)
    np.testing.assert_allclose(np.sqrt((both ** 2).sum()), 2.0, rtol=1e-6)
    assert constraints.MaxNorm(2.0)(w.astype(np.float32)).dtype == np.float32


def test_names_configs_and_refusals():
    assert isinstance(constraints.get("max_norm"), constraints.MaxNorm)
    assert constraints.get("unit_norm").axis == 0 and constraints.get(None) is None
    c = constraints.get({"class_name": "MaxNorm", "config": {"max_value": 3, "axis": [0, 1]}})
    assert (c.max_value, c.axis) == (3.0, (0, 1))
    assert constraints.serialize(c) == {"module": "keras.constraints", "class_name": "MaxNorm",
                                        "config": {"max_value": 3.0, "axis": [0, 1]}, "registered_name": None}
    with pytest.raises(UnsupportedKerasFeature, match="constraint class 'Clip' is not implemented"):
        constraints.get({"class_name": "Clip", "config": {}})
    with pytest.raises(UnsupportedKerasFeature, match="'clip' is unknown"):
        constraints.get("clip")
    with pytest.raises(UnsupportedKerasFeature, match="MaxNorm: .*'limit'"):
        constraints.get({"class_name": "MaxNorm", "config": {"limit": 3}})
    with pytest.raises(TypeError, match="max_value should be a finite number"):
        constraints.MaxNorm("big")
    with pytest.raises(TypeError, match="option 'kernel_constraint'"):
        Dense(2, kernel_constraint=3)
    layer = GRU(3, kernel_constraint="non_neg", recurrent_constraint=constraints.UnitNorm())
    assert set(layer.weight_constraints) == {"kernel", "recurrent_kernel"}
    assert layer.get_config()["kernel_constraint"]["class_name"] == "NonNeg"
    assert GRU.from_config(layer.get_config()).weight_constraints["recurrent_kernel"].axis == 0


def test_constrained_file_trains_as_keras(tmp_path):
    data = np.load(FILES / "constraints.npz")
    model = fg.load_model(FILES / "constraints.keras")
    assert set(model.layers[0].weight_constraints) == {"kernel", "recurrent_kernel", "bias"}
    np.testing.assert_allclose(model.predict(data["x"]), data["pred"], rtol=1e-5, atol=1e-6)
    history = model.fit(data["x"], data["y"], epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(history, data["loss"], rtol=1e-5)
    for i, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, data[f"w{i}"], rtol=1e-4, atol=2e-5)
    assert (model.layers[0].get_weights()[2] >= 0).all()  # NonNeg held after every step
    model.save(tmp_path / "back.keras")
    again = fg.load_model(tmp_path / "back.keras")
    assert type(again.layers[1].weight_constraints["gamma"]).__name__ == "MinMaxNorm"


def test_in_code_training_keeps_the_constraint(rng):
    model = fg.Sequential([Input((5,)), Embedding(10, 4, embeddings_constraint=constraints.MaxNorm(0.1, axis=1)),
                           GRU(3), Dense(1, kernel_constraint="non_neg")])
    model.compile(fg.optimizers.SGD(0.5), "mse")
    model.fit(rng.integers(0, 10, (8, 5)), rng.standard_normal((8, 1)) * 5, epochs=3, verbose=0)
    emb = model.layers[0].get_weights()[0]
    assert (np.sqrt((emb ** 2).sum(axis=1)) <= 0.1 + 1e-6).all() and (model.layers[2].get_weights()[0] >= 0).all()


@pytest.mark.keras_graph  # eager Keras's sums differ in the last digits
@pytest.mark.keras
def test_keras_constrained_models(keras, rng, tmp_path):
    L, C = keras.layers, keras.constraints
    km = keras.Sequential([keras.Input((6,)), L.Embedding(12, 4, embeddings_constraint=C.UnitNorm(axis=1)),
                           L.Conv1D(4, 3, kernel_constraint=C.MaxNorm(0.8, axis=[0, 1])),
                           L.SimpleRNN(3, recurrent_constraint=C.NonNeg()), L.Dense(1)])
    km.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in km.get_weights()])
    km.compile(keras.optimizers.RMSprop(0.05), "mse")
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    x, y = rng.integers(0, 12, (8, 6)), rng.standard_normal((8, 1)).astype(np.float32)
    theirs = km.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for k, o in zip(km.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-4, atol=2e-5)
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    assert type(back.layers[2].cell.recurrent_constraint).__name__ == "NonNeg"
