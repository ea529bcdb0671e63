"""Keras 3 weights paths of TimeDistributed, written by fastgru: a Keras TimeDistributed(Dense) is built as
its inner layer, yet ``save_weights`` and ``save`` name it as Keras does (``layers/time_distributed[_n]/layer/
vars``), next to plain layers, Bidirectional, MultiHeadAttention and nested models, so that Keras reads
fastgru's files (``load_weights``, ``keras.models.load_model``) and fastgru reads Keras's."""

from __future__ import annotations

import json
import zipfile

import h5py
import numpy as np
import pytest

import fastgru as fg

ATOL = 2e-5
T = 5


def _randomize(km, seed=1):
    rng = np.random.default_rng(seed)
    km.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in km.get_weights()])


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _datasets(path) -> set[str]:
    names = []
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return set(names)


def _wrappers(path) -> int:
    """How many TimeDistributed entries the config.json of a .keras file holds (nested models included)."""
    with zipfile.ZipFile(path) as archive:
        text = json.dumps(json.loads(archive.read("config.json")))
    return text.count('"class_name": "TimeDistributed"')


def _sequential(keras):
    L = keras.layers
    inner = keras.Sequential([keras.Input((T, 6)), L.Dense(5), L.TimeDistributed(L.Dense(4))], name="inner")
    return keras.Sequential([keras.Input((T, 3)), L.LSTM(4, return_sequences=True), L.TimeDistributed(L.Dropout(0.2)),
                             L.TimeDistributed(L.Dense(3)), L.Dense(6), inner,
                             L.Bidirectional(L.GRU(3, return_sequences=True)),
                             L.TimeDistributed(L.Activation("tanh")), L.TimeDistributed(L.Dense(2)), L.GRU(2)])


def _functional(keras):
    L = keras.layers
    a, b = keras.Input((T, 3)), keras.Input((T, 2))
    x = L.TimeDistributed(L.Dense(3))(L.LSTM(4, return_sequences=True)(a))
    z = L.Concatenate()([x, L.Dense(3)(b)])
    nested_in = keras.Input((T, 6))
    nested = keras.Model(nested_in, L.TimeDistributed(L.Dense(4))(L.Dense(5)(nested_in)), name="nested")
    z = keras.Sequential([keras.Input((T, 4)), L.TimeDistributed(L.Dense(4)), L.Dense(4)], name="seq")(nested(z))
    z = L.Bidirectional(L.GRU(3, return_sequences=True))(z)
    z = L.MultiHeadAttention(2, 3)(z, z)
    return keras.Model([a, b], L.TimeDistributed(L.Dense(2))(z))


CASES = {"sequential": (_sequential, lambda: _x((4, T, 3))),
         "functional": (_functional, lambda: [_x((4, T, 3)), _x((4, T, 2), 1)])}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("source", ["from_keras", "load_model"])
def test_weights_files_load_into_keras_and_back(keras, tmp_path, case, source):
    build, inputs = CASES[case]
    km = build(keras)
    _randomize(km)
    x = inputs()
    expected = km.predict(x, verbose=0)
    km.save(tmp_path / "k.keras")
    km.save_weights(tmp_path / "k.weights.h5")
    ours = fg.from_keras(km) if source == "from_keras" else fg.load_model(tmp_path / "k.keras", compile=False)
    np.testing.assert_allclose(ours.predict(x), expected, atol=ATOL)

    # save_weights: Keras's own paths, read by Keras's load_weights into the same model
    ours.save_weights(tmp_path / "f.weights.h5")
    assert _datasets(tmp_path / "f.weights.h5") == _datasets(tmp_path / "k.weights.h5")
    other = build(keras)
    other.load_weights(tmp_path / "f.weights.h5")
    np.testing.assert_allclose(other.predict(x, verbose=0), expected, atol=ATOL)

    # save: config.json writes the TimeDistributed wrappers back; Keras and fastgru load the file
    ours.save(tmp_path / "f.keras")
    assert _wrappers(tmp_path / "f.keras") == _wrappers(tmp_path / "k.keras") > 0
    loaded = keras.models.load_model(tmp_path / "f.keras", compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=ATOL)
    np.testing.assert_allclose(fg.load_model(tmp_path / "f.keras").predict(x), expected, atol=ATOL)
    if case == "functional":  # the graph keeps its nested models: the .keras weights fit Keras's model too
        other = build(keras)
        other.load_weights(tmp_path / "f.keras")
        np.testing.assert_allclose(other.predict(x, verbose=0), expected, atol=ATOL)

    # the reverse: Keras's weights file into fastgru (a graph, whose TimeDistributed layers used to miss it, too)
    fresh = fg.load_model(tmp_path / ("f.keras" if case == "functional" else "k.keras"))
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(fresh.predict(x), expected, atol=ATOL)


def test_paths_of_the_wrappers(keras, tmp_path):
    L = keras.layers
    km = keras.Sequential([keras.Input((T, 3)), L.GRU(4, return_sequences=True), L.TimeDistributed(L.Dense(3)),
                           L.Dense(2), L.TimeDistributed(L.Dense(2))])
    ours = fg.from_keras(km)
    assert [type(layer).__name__ for layer in ours.layers] == ["GRU", "Dense", "Dense", "Dense"]
    ours.save_weights(tmp_path / "w.weights.h5")
    assert _datasets(tmp_path / "w.weights.h5") == {
        "layers/gru/cell/vars/0", "layers/gru/cell/vars/1", "layers/gru/cell/vars/2",
        "layers/time_distributed/layer/vars/0", "layers/time_distributed/layer/vars/1",
        "layers/dense/vars/0", "layers/dense/vars/1",
        "layers/time_distributed_1/layer/vars/0", "layers/time_distributed_1/layer/vars/1"}
    with h5py.File(tmp_path / "w.weights.h5") as f:
        assert f["layers/time_distributed/vars"].attrs["name"] == km.layers[1].name
        assert f["layers/time_distributed/layer/vars"].attrs["name"] == km.layers[1].layer.name
    # a new model of these layers (no Keras model behind it) writes the paths its own .keras config names
    again = fg.Sequential(list(ours.layers))
    again.save_weights(tmp_path / "again.weights.h5")
    assert _datasets(tmp_path / "again.weights.h5") == _datasets(tmp_path / "w.weights.h5")


def test_model_checkpoint_weights_load_into_keras(keras, tmp_path):
    L = keras.layers
    km = keras.Sequential([keras.Input((T, 3)), L.GRU(4, return_sequences=True), L.TimeDistributed(L.Dense(2)),
                           L.Dense(1)])
    _randomize(km)
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras", compile=False)
    ours.compile(optimizer="adam", loss="mse")
    x, y = _x((8, T, 3)), _x((8, T, 1), 2)
    path = str(tmp_path / "ckpt.weights.h5")
    ours.fit(x, y, epochs=1, batch_size=4, verbose=0,
             callbacks=[fg.callbacks.ModelCheckpoint(path, save_weights_only=True)])
    km.load_weights(path)
    np.testing.assert_allclose(km.predict(x, verbose=0), ours.predict(x), atol=ATOL)


def test_graph_with_a_time_distributed_layer_normalization(keras, tmp_path):
    """In a Functional graph (not only in a chain), TimeDistributed around a layer other than Dense, Activation
    and Dropout loads as the wrapper layer: predictions as Keras's from .keras and .h5, and saved back."""
    L = keras.layers
    inp = keras.Input((6, 4))
    h = L.GRU(5, return_sequences=True)(inp)
    model = keras.Model(inp, [L.TimeDistributed(L.LayerNormalization())(h), L.TimeDistributed(L.Dense(3))(h)])
    rng = np.random.default_rng(0)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    want = model.predict(x, verbose=0)
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"m{suffix}")
        ours = fg.load_model(tmp_path / f"m{suffix}")
        for got, exp in zip(ours.predict(x), want):
            np.testing.assert_allclose(got, exp, atol=2e-6)
    ours.save(tmp_path / "again.keras")
    for got, exp in zip(keras.models.load_model(tmp_path / "again.keras").predict(x, verbose=0), want):
        np.testing.assert_allclose(got, exp, atol=2e-6)
