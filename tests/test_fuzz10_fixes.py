"""Fixes from the tenth parity fuzz round: tf_keras (Keras 2) files whose graphs call nested models (their node
references start after the model's own first node), tf_keras's merge masks (AND of the masks present) and
SpatialDropout1D config, an Embedding trained from a tf_keras file (its optimizers sum duplicate rows first),
and a multi-output model with one loss (no per-output loss entries, as Keras)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastgru as fg


@pytest.fixture
def tf_keras():
    return pytest.importorskip("tf_keras")


def test_one_loss_among_several_outputs_reports_only_the_total():
    x = fg.Input((6, 3))
    h = fg.layers.GRU(4, return_sequences=True)(x)
    model = fg.Model(x, [fg.layers.Dense(1, name="o1")(fg.layers.GRU(2)(h)), fg.layers.Dense(2, name="aux")(h)])
    model.compile("sgd", loss=["mse", None])
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(20, 6, 3)).astype("float32")
    ys = [rng.normal(size=(20, 1)).astype("float32"), rng.normal(size=(20, 6, 2)).astype("float32")]
    assert sorted(model.fit(xs, ys, epochs=1, batch_size=8, verbose=0).history) == ["loss"]
    assert np.ndim(model.evaluate(xs, ys, verbose=0)) == 0
    assert np.ndim(model.train_on_batch(xs, ys)) == 0


def test_one_loss_among_several_outputs_against_keras(keras):
    rng = np.random.default_rng(0)
    i = keras.Input((6, 3))
    h = keras.layers.GRU(4, return_sequences=True)(i)
    km = keras.Model(i, [keras.layers.Dense(1, name="o1")(keras.layers.GRU(2)(h)), keras.layers.Dense(2, name="aux")(h)])
    ours = fg.from_keras(km)
    xs = rng.normal(size=(20, 6, 3)).astype("float32")
    ys = [rng.normal(size=(20, 1)).astype("float32"), rng.normal(size=(20, 6, 2)).astype("float32")]
    for model in (km, ours):
        model.compile(optimizer="sgd", loss=["mse", None])
    theirs = km.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    mine = ours.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs) == ["loss"]
    np.testing.assert_allclose(mine["loss"], theirs["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours.evaluate(xs, ys, verbose=0), km.evaluate(xs, ys, verbose=0), rtol=1e-5)


def test_keras2_merges_and_the_masks_present():
    add = fg.layers.Add()
    concat = fg.layers.Concatenate()
    m1, m2 = np.array([[True, True, False]]), np.array([[True, False, False]])
    xs = [np.zeros((1, 3, 2), "float32")] * 2
    assert add.compute_mask(xs, [m1, None]) is None  # Keras 3: None when any input has none
    np.testing.assert_array_equal(add.compute_mask(xs, [m1, m2]), m1 | m2)  # Keras 3: OR
    add.use_keras2_semantics()
    concat.use_keras2_semantics()
    np.testing.assert_array_equal(add.compute_mask(xs, [m1, None]), m1)  # tf_keras: AND of the masks present
    np.testing.assert_array_equal(add.compute_mask(xs, [m1, m2]), m1 & m2)
    np.testing.assert_array_equal(concat.compute_mask(xs, [m1, None]), m1)  # all() over features
    np.testing.assert_array_equal(concat.compute_mask(xs, [m1, m2]), m1 & m2)


def test_keras2_embedding_hands_its_optimizer_the_summed_gradient():
    emb = fg.layers.Embedding(6, 2)
    emb.build((None, 3))
    ids = np.array([[1, 1, 2]])
    _, cache = emb.forward(ids)
    dy = np.ones((1, 3, 2), "float32")
    (rows,) = emb.backward(dy, cache)[1]
    assert type(rows).__name__ == "RowGradient" and len(rows.values) == 3
    emb.use_keras2_semantics()
    (marked,) = emb.backward(dy, cache)[1]  # (slices, summed by the optimizer after clipping, as tf_keras)
    assert marked.sum_first and not rows.sum_first
    np.testing.assert_array_equal(marked.dense(), rows.dense())
    opt = fg.optimizers.Adam(0.1)
    table = emb.get_weights()[0].copy()
    opt.apply([marked], [table])
    reference, fresh = emb.get_weights()[0].copy(), fg.optimizers.Adam(0.1)
    fresh.apply([rows.dense()], [reference])  # the update rule of the summed (dense) gradient
    np.testing.assert_array_equal(table, reference)
    back = pickle.loads(pickle.dumps(fg.Sequential([fg.layers.Input((3,), dtype="int32"), emb])))
    assert back.layers[0].keras2_semantics


def _nested(T, which):
    L = T.layers
    if which == "residual_once":
        bi = T.Input((8, 6))
        block = T.Model(bi, L.Add()([bi, L.GRU(6, return_sequences=True)(bi)]), name="block")
        s = T.Input((8, 6))
        return T.Model(s, L.GRU(3, name="top")(block(s)))
    if which == "functional_twice":
        bi = T.Input((8, 6))
        block = T.Model(bi, L.GRU(6, return_sequences=True)(bi), name="block")
        s = T.Input((8, 6))
        return T.Model(s, L.GRU(3, name="top")(block(block(s))))
    if which == "two_outputs":
        bi = T.Input((8, 6))
        g = L.GRU(6, return_sequences=True)(bi)
        block = T.Model(bi, [g, L.GlobalAveragePooling1D()(g)], name="block")
        s = T.Input((8, 6))
        seq, pooled = block(s)
        return T.Model(s, L.Concatenate()([L.GRU(3)(seq), pooled]))
    enc = T.Sequential([T.Input((8, 6)), L.GRU(6)], name="enc")  # a Sequential encoder used twice
    a, b = T.Input((8, 6)), T.Input((8, 6))
    return T.Model([a, b], L.Add()([enc(a), enc(b)]))


@pytest.mark.parametrize("which", ["residual_once", "functional_twice", "two_outputs", "siamese_sequential"])
def test_tf_keras_graphs_calling_nested_models(tf_keras, tmp_path, which):
    km = _nested(tf_keras, which)
    rng = np.random.default_rng(0)
    km.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in km.get_weights()])
    x = rng.normal(size=(2, 8, 6)).astype("float32")
    xs = [x, x[::-1].copy()] if which == "siamese_sequential" else x
    expected = km.predict(xs, verbose=0)
    km.save(tmp_path / "m.h5")
    for model in (fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(xs), expected, rtol=1e-5, atol=2e-6)


def test_tf_keras_merges_combine_masks_as_tf_keras(tf_keras, tmp_path):
    L = tf_keras.layers
    a, b = tf_keras.Input((6,), dtype="int32"), tf_keras.Input((6,), dtype="int32")
    f = tf_keras.Input((6, 3))
    ea, eb = L.Embedding(10, 3, mask_zero=True)(a), L.Embedding(10, 3, mask_zero=True)(b)
    outs = [L.GRU(2)(L.Add()([ea, eb])), L.GRU(2)(L.Add()([ea, f])), L.GRU(2)(L.Multiply()([ea, eb])),
            L.GRU(2)(L.Concatenate()([ea, f])), L.GRU(2)(L.Concatenate()([ea, eb])),
            L.GRU(2)(L.Concatenate(axis=1)([ea, eb]))]
    km = tf_keras.Model([a, b, f], outs)
    rng = np.random.default_rng(0)
    km.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in km.get_weights()])
    xs = [np.array([[1, 2, 3, 0, 0, 0], [4, 5, 6, 7, 8, 9]], "int32"),
          np.array([[1, 2, 3, 4, 5, 0], [4, 5, 0, 0, 0, 0]], "int32"), rng.normal(size=(2, 6, 3)).astype("float32")]
    expected = km.predict(xs, verbose=0)
    km.save(tmp_path / "m.h5")
    loaded = fg.load_model(tmp_path / "m.h5")
    for model in (loaded, fg.from_keras(km), pickle.loads(pickle.dumps(loaded))):
        for got, want in zip(model.predict(xs), expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)


def test_tf_keras_spatial_dropout_loads(tf_keras, tmp_path):
    km = tf_keras.Sequential([tf_keras.Input((10, 4)), tf_keras.layers.GRU(8, return_sequences=True),
                              tf_keras.layers.SpatialDropout1D(0.2), tf_keras.layers.GRU(4)])
    assert km.layers[1].get_config()["noise_shape"] is None
    km.save(tmp_path / "m.h5")
    x = np.random.default_rng(0).normal(size=(3, 10, 4)).astype("float32")
    for model in (fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_tf_keras_embedding_trains_as_tf_keras(tf_keras, tmp_path, optimizer):
    x = np.array([[1, 1, 2, 3], [1, 2, 2, 2]], "int32")  # tokens repeated within the batch
    y = np.array([[0.5], [-1.0]], "float32")
    weights = [np.arange(24, dtype="float32").reshape(6, 4) / 24 - 0.5,
               np.linspace(-1, 1, 16, dtype="float32").reshape(16, 1), np.zeros(1, "float32")]
    km = tf_keras.Sequential([tf_keras.Input((4,), dtype="int32"), tf_keras.layers.Embedding(6, 4),
                              tf_keras.layers.Flatten(), tf_keras.layers.Dense(1)])
    km.set_weights(weights)
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5", compile=False)
    make = {"adam": lambda m: m.Adam(0.1), "rmsprop": lambda m: m.RMSprop(0.1), "adagrad": lambda m: m.Adagrad(0.1)}
    km.compile(make[optimizer](tf_keras.optimizers), loss="mse")
    ours.compile(make[optimizer](fg.optimizers), loss="mse")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    np.testing.assert_allclose(ours.get_weights()[0], km.get_weights()[0], rtol=1e-5, atol=1e-6)
