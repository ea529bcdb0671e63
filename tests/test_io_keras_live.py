"""Live round trips with Keras (skipped cleanly without keras; CI installs it): Keras -> file ->
fastgru, fastgru -> .keras -> keras.models.load_model, and from_keras."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Dropout, Embedding, Input, Masking

keras = pytest.importorskip("keras")
ATOL = 2e-5


def randomize(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])


def data(seed=0, shape=(3, 6, 4)):
    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    x[0, -2:] = 0.0
    return x


def keras_models():
    L = keras.layers
    yield "options", keras.Sequential([
        keras.Input((6, 4)), L.Masking(),
        L.GRU(5, return_sequences=True, reset_after=False, go_backwards=True, recurrent_activation="hard_sigmoid"),
        L.GRU(3, use_bias=False, activation="elu"), L.Dense(2, activation="softmax")])
    inputs = keras.Input((6, 4))
    outputs = L.Dense(1)(L.GRU(4)(L.GRU(3, return_sequences=True)(inputs)))
    yield "functional", keras.Model(inputs, outputs)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_file_to_fastgru(tmp_path, suffix):
    for name, km in keras_models():
        randomize(km, 1)
        x = data()
        km.save(tmp_path / f"{name}{suffix}")
        ours = fg.load_model(tmp_path / f"{name}{suffix}")
        np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4, err_msg=name)
        np.testing.assert_allclose(fg.from_keras(km).predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)


def our_models():
    yield fg.Sequential([Input((6, 4)), Masking(), GRU(5, return_sequences=True, go_backwards=True),
                         GRU(4, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True),
                         GRU(3, activation="relu", use_bias=False), Dropout(0.2), Dense(2, activation="softmax")])
    yield fg.Sequential([Input((6,)), Embedding(15, 4, mask_zero=True), GRU(3), Dense(1, activation="sigmoid")])


def test_fastgru_file_to_keras(tmp_path):
    for i, model in enumerate(our_models()):
        model.set_weights([w + 0.3 * np.random.default_rng(i).standard_normal(w.shape).astype(w.dtype)
                           for w in model.get_weights()])
        x = data(i) if i == 0 else np.random.default_rng(0).integers(0, 15, (3, 6)).astype("int32")
        model.save(tmp_path / f"m{i}.keras")
        km = keras.models.load_model(tmp_path / f"m{i}.keras")
        np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), atol=ATOL, rtol=1e-4)
        assert [l.name for l in km.layers] == [l.name for l in model.layers]
        model.save_weights(tmp_path / f"m{i}.weights.h5")
        km.set_weights([np.zeros_like(w) for w in km.get_weights()])
        km.load_weights(tmp_path / f"m{i}.weights.h5")
        np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), atol=ATOL, rtol=1e-4)


def test_trained_fastgru_model_round_trips_through_keras(tmp_path):
    fg.set_random_seed(0)
    x = data(3, (32, 6, 4))
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    model = fg.Sequential([Input((6, 4)), GRU(8), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "trained.keras")
    km = keras.models.load_model(tmp_path / "trained.keras")
    np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), atol=ATOL, rtol=1e-4)
    back = fg.load_model(tmp_path / "trained.keras")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))


def test_model_checkpoint_writes_a_keras_file(tmp_path):
    fg.set_random_seed(0)
    x = data(4, (16, 6, 4))
    y = x[:, -1, :2]
    model = fg.Sequential([Input((6, 4)), GRU(4), Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    checkpoint = fg.callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.keras"))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep01.keras", "ep02.keras"]
    km = keras.models.load_model(tmp_path / "ep02.keras")
    np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), atol=ATOL, rtol=1e-4)


def test_from_keras_tf_keras_model_uses_keras2_hard_sigmoid():
    tf_keras = pytest.importorskip("tf_keras")
    km = tf_keras.Sequential([tf_keras.layers.GRU(4, recurrent_activation="hard_sigmoid", input_shape=(5, 3)),
                              tf_keras.layers.Dense(1)])
    randomize(km, 2)
    x = data(5, (3, 5, 3)) * 3
    ours = fg.from_keras(km)
    assert ours.layers[0].recurrent_activation == "hard_sigmoid_keras2"
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_tf_keras_files_to_fastgru(tmp_path, suffix):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    km = tf_keras.Sequential([L.Masking(input_shape=(6, 4)),
                              L.GRU(5, recurrent_activation="hard_sigmoid", return_sequences=True, go_backwards=True),
                              L.GRU(3, reset_after=False, use_bias=False), L.Dense(2, activation="softmax")])
    randomize(km, 4)
    x = data(9, (3, 6, 4)) * 3
    km.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}")
    assert ours.layers[1].recurrent_activation == "hard_sigmoid_keras2"
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)
    km.save_weights(tmp_path / "w.h5")  # tf_keras's legacy weights file
    ours.set_weights([np.zeros_like(w) for w in ours.get_weights()])
    ours.load_weights(tmp_path / "w.h5")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)


def test_nested_keras_model_files_and_from_keras(tmp_path):
    L = keras.layers
    inner = keras.Sequential([L.GRU(4, return_sequences=True), L.Dropout(0.1)])
    km = keras.Sequential([keras.Input((5, 3)), inner, L.GRU(3), L.Dense(2)])
    randomize(km, 5)
    x = data(10, (2, 5, 3))
    want = km.predict(x, verbose=0)
    km.save(tmp_path / "n.keras")
    ours = fg.load_model(tmp_path / "n.keras")
    np.testing.assert_allclose(ours.predict(x), want, atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(fg.from_keras(km).predict(x), want, atol=ATOL, rtol=1e-4)
    randomize(km, 6)  # new weights: a later checkpoint of the same Keras model
    km.save_weights(tmp_path / "n.weights.h5")
    ours.load_weights(tmp_path / "n.weights.h5")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)


def test_from_keras_refuses_unsupported_layers():
    km = keras.Sequential([keras.Input((6, 5, 4, 3, 2)), keras.layers.ConvLSTM3D(3, 2)])
    with pytest.raises(fg.UnsupportedKerasFeature, match="'ConvLSTM3D' is not supported .*does not implement"):
        fg.from_keras(km)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_time_distributed_dense_loads_as_dense(tmp_path, suffix):
    L = keras.layers
    km = keras.Sequential([keras.Input((5, 3)), L.GRU(4, return_sequences=True),
                           L.TimeDistributed(L.Dense(2, activation="relu"))])
    randomize(km, 3)
    km.save(tmp_path / f"td{suffix}")
    ours = fg.load_model(tmp_path / f"td{suffix}")
    assert type(ours.layers[1]).__name__ == "Dense"
    x = data(6, (3, 5, 3))
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), atol=ATOL, rtol=1e-4)
    if suffix == ".keras":  # the same file with an inner layer fastgru cannot distribute over time
        import json
        import zipfile

        with zipfile.ZipFile(tmp_path / "td.keras") as src, zipfile.ZipFile(tmp_path / "bad.keras", "w") as dst:
            for item in src.namelist():
                payload = src.read(item)
                if item == "config.json":
                    config = json.loads(payload)
                    config["config"]["layers"][2]["config"]["layer"]["class_name"] = "Masking"
                    payload = json.dumps(config)
                dst.writestr(item, payload)
        with pytest.raises(fg.UnsupportedKerasFeature, match=r"TimeDistributed\(Masking\) is not supported"):
            fg.load_model(tmp_path / "bad.keras")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_compiled_keras_model_loads_compiled(tmp_path, suffix):
    km = keras.Sequential([keras.Input((6, 4)), keras.layers.GRU(4), keras.layers.Dense(1, activation="sigmoid")])
    randomize(km, 7)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    km.save(tmp_path / f"c{suffix}")
    x = data(8, (16, 6, 4))
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    ours = fg.load_model(tmp_path / f"c{suffix}")
    assert ours.compiled and abs(ours.optimizer.learning_rate - 0.01) < 1e-8
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    assert not fg.load_model(tmp_path / f"c{suffix}", compile=False).compiled


def test_legacy_h5_nested_group_ending_in_a_layer_without_weights(keras, tmp_path):
    """A nested model's .h5 group whose last layer has no weights (GRU then Dropout) loads (it raised
    IndexError, reported as damaged data, before)."""
    L = keras.layers
    inner = keras.Sequential([keras.Input((5, 3)), L.GRU(4), L.Dropout(0.2)], name="inner")
    km = keras.Sequential([keras.Input((5, 3)), inner, L.Dense(2)])
    km.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x), km.predict(x, verbose=0), rtol=1e-5,
                               atol=2e-6)


def test_from_keras_keeps_the_arguments_keras_loss_configs_drop():
    """Keras 3's Huber.get_config() has no ``delta`` (so a .keras file loses it, in Keras too); a live model's loss
    objects keep it, and from_keras compiles with them."""
    L = keras.layers
    x, y = data(5), np.random.default_rng(5).normal(size=(3, 2)).astype(np.float32) * 3
    km = keras.Sequential([keras.Input((6, 4)), L.GRU(4), L.Dense(2)])
    km.compile("sgd", loss=keras.losses.Huber(delta=2.0))
    assert fg.from_keras(km).evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)
