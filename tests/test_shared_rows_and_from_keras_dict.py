"""A layer shared by two inputs whose gradient is a RowGradient (an Embedding in a siamese model)
trains as Keras does; ``fg.from_keras`` pairs a Functional model's weights by layer name (dict outputs)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.training.row_gradient import RowGradient

OPTIMIZERS = {
    "adam": (lambda k: k.optimizers.Adam(0.01), lambda: fg.optimizers.Adam(0.01)),
    "sgd": (lambda k: k.optimizers.SGD(0.1), lambda: fg.optimizers.SGD(0.1)),
    "sgd_momentum": (lambda k: k.optimizers.SGD(0.1, momentum=0.9), lambda: fg.optimizers.SGD(0.1, momentum=0.9)),
    "rmsprop_clipnorm": (lambda k: k.optimizers.RMSprop(0.01, clipnorm=0.2),
                         lambda: fg.optimizers.RMSprop(0.01, clipnorm=0.2)),
}


def test_row_gradients_sum_by_concatenating_their_slices():
    a = RowGradient(np.array([2, 0]), np.array([[1.0, 2.0], [3.0, 4.0]]), (4, 2))
    b = RowGradient(np.array([2]), np.array([[5.0, 6.0]]), (4, 2))
    total = a + b
    assert isinstance(total, RowGradient)
    np.testing.assert_array_equal(total.dense(), a.dense() + b.dense())
    np.testing.assert_array_equal(total.squares(), [[9, 16], [0, 0], [26, 40], [0, 0]])  # squared per slice
    dense = np.ones((4, 2))
    np.testing.assert_array_equal(a + dense, a.dense() + 1)
    np.testing.assert_array_equal(dense + a, a.dense() + 1)
    with pytest.raises(ValueError):
        a + RowGradient(np.array([0]), np.ones((1, 3)), (4, 3))


@pytest.mark.parametrize("mask_zero,optimizer", [(False, "adam"), (True, "adam"), (False, "sgd"),
                                                 (True, "sgd_momentum"), (True, "rmsprop_clipnorm")])
def test_shared_embedding_trains_as_keras(keras, rng, mask_zero, optimizer):
    L = keras.layers
    a, b = keras.Input((7,), dtype="int32"), keras.Input((7,), dtype="int32")
    emb = L.Embedding(30, 4, mask_zero=mask_zero)
    km = keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.GRU(3)(emb(a)), L.GRU(3)(emb(b))])))
    km.set_weights([rng.normal(scale=0.3, size=w.shape).astype(w.dtype) for w in km.get_weights()])
    ours = fg.from_keras(km)
    xa, xb = rng.integers(0, 12, size=(4, 7)), rng.integers(0, 12, size=(4, 7))  # tokens repeat across inputs
    xa[0, 5:] = 0
    y = rng.normal(size=(4, 1)).astype("float32")
    km.compile(optimizer=OPTIMIZERS[optimizer][0](keras), loss="mse")
    ours.compile(optimizer=OPTIMIZERS[optimizer][1](), loss="mse")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch([xa, xb], y), km.train_on_batch([xa, xb], y), rtol=1e-5)
    for layer in km.layers:
        for k, o in zip(layer.get_weights(), ours.get_layer(layer.name).get_weights()):
            np.testing.assert_allclose(o, k, atol=1e-5)


def test_from_keras_dict_outputs_pairs_weights_by_name(keras, rng):
    L = keras.layers
    x_in = keras.Input((7, 5))
    h = L.GRU(6, return_sequences=True)(x_in)
    inner = keras.Sequential([keras.Input((7, 6)), L.Dense(4, name="inner_dense")], name="inner")
    km = keras.Model(x_in, {"seq": L.Dense(3, name="seq")(h), "last": L.GRU(2, name="last")(h),
                            "nested": L.GRU(5, name="after_inner")(inner(h))})
    km.set_weights([rng.normal(scale=0.3, size=w.shape).astype(w.dtype) for w in km.get_weights()])
    ours = fg.from_keras(km)
    x = rng.normal(size=(4, 7, 5)).astype("float32")
    want, got = km.predict(x, verbose=0), ours.predict(x)
    assert isinstance(got, dict) and list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=2e-5)


def test_dict_outputs_order_layers_and_weights_as_keras(keras, tmp_path):
    """Keras flattens a dict of outputs in sorted key order, which fixes ``model.layers``, the order of
    ``get_weights()`` and the Keras 3 weight paths (``dense``, ``dense_1``): fastgru's models follow it,
    whether loaded, converted or saved, and return the dict with the keys in the order given."""
    L = keras.layers
    x = keras.Input((5, 4))
    h = L.GRU(6, return_sequences=True, name="g")(x)
    model = keras.Model(x, {"zeta": L.Dense(2, name="dz")(L.GRU(3, name="gz")(h)),
                            "alpha": L.Dense(5, name="da")(h)})
    rng = np.random.default_rng(3)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    data = rng.standard_normal((2, 5, 4)).astype(np.float32)
    want = model.predict(data, verbose=0)
    model.save(tmp_path / "m.keras")
    names = [layer.name for layer in model.layers]
    for ours in (fg.load_model(tmp_path / "m.keras"), fg.from_keras(model)):
        assert [layer.name for layer in ours.layers] == names
        for a, b in zip(ours.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        got = ours.predict(data)
        assert list(got) == list(want) == ["zeta", "alpha"]
        for k in want:
            np.testing.assert_allclose(got[k], want[k], atol=2e-5)
    # fastgru's own model of the same graph, saved: Keras reads each Dense's weights from its own path
    fg_x = fg.Input((5, 4))
    fg_h = fg.layers.GRU(6, return_sequences=True, name="g")(fg_x)
    ours = fg.Model(fg_x, {"zeta": fg.layers.Dense(2, name="dz")(fg.layers.GRU(3, name="gz")(fg_h)),
                           "alpha": fg.layers.Dense(5, name="da")(fg_h)})
    assert [layer.name for layer in ours.layers][1:] == names[1:]  # (the InputLayers' own names differ)
    ours.set_weights(model.get_weights())
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    again = back.predict(data, verbose=0)
    for k in want:
        np.testing.assert_allclose(again[k], want[k], atol=2e-5)
    import pickle

    assert list(pickle.loads(pickle.dumps(ours)).predict(data)) == ["zeta", "alpha"]
