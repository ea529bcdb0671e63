"""Fixes from the eleventh and twelfth parity fuzz rounds: an Embedding's slices under Adamax (Keras's ``abs``
of the IndexedSlices, densified: per row the sum of the slices' absolute values) and under ``global_clipnorm``
(TensorFlow scales the slices as a dense tensor, so the update rule squares the summed gradient); metric names;
tf_keras's TimeDistributed(BatchNormalization) mask; freezing models and wrappers; tf_keras weights files into
models that nest models; predict_on_batch."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.training.row_gradient import RowGradient

IDS = np.array([1, 1, 2])
VALUES = np.array([[1.0, -2.0], [-3.0, 1.0], [0.5, 0.5]], "float32")


def test_adamax_takes_the_sum_of_the_slices_absolute_values():
    grad = RowGradient(IDS, VALUES, (4, 2))
    var = np.zeros((4, 2), "float32")
    opt = fg.optimizers.Adamax(0.1)
    opt.apply([grad], [var])
    np.testing.assert_array_equal(opt.slots[0]["u"][1], np.abs(VALUES[:2]).sum(axis=0))  # not |sum| = [2, 1]
    np.testing.assert_array_equal(opt.slots[0]["m"][1], np.float32(0.1) * VALUES[:2].sum(axis=0))


def test_global_clipnorm_hands_the_rule_a_dense_gradient():
    grad = RowGradient(IDS, VALUES, (4, 2))
    var, var_dense = np.zeros((4, 2), "float32"), np.zeros((4, 2), "float32")
    clipped, dense = fg.optimizers.Adam(0.1, global_clipnorm=1.0), fg.optimizers.Adam(0.1)
    clipped.apply([grad], [var])
    scale = np.float32(1.0) / np.sqrt(np.sum(VALUES ** 2, dtype=np.float32))  # the norm of the slices
    dense.apply([grad.dense() * scale], [var_dense])
    np.testing.assert_allclose(var, var_dense, rtol=1e-6)
    np.testing.assert_allclose(clipped.slots[0]["velocity"], dense.slots[0]["velocity"], rtol=1e-6)


@pytest.mark.parametrize("optimizer", ["adamax", "adam_global_clipnorm", "rmsprop_global_clipnorm"])
def test_embedding_with_repeated_tokens_trains_as_keras(keras, optimizer):
    make = {"adamax": lambda m: m.optimizers.Adamax(0.01),
            "adam_global_clipnorm": lambda m: m.optimizers.Adam(0.01, global_clipnorm=0.05),
            "rmsprop_global_clipnorm": lambda m: m.optimizers.RMSprop(0.01, global_clipnorm=0.05)}[optimizer]
    keras.utils.set_random_seed(1)
    i = keras.Input((6,), dtype="int32")
    km = keras.Model(i, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(12, 3)(i))))
    ours = fg.from_keras(km)
    km.compile(make(keras), "mse")
    ours.compile(make(fg), "mse")
    x = np.random.default_rng(0).integers(0, 5, (4, 6)).astype("int32")  # tokens repeated within the batch
    y = np.array([[5.0], [-5.0], [5.0], [-5.0]], "float32")  # a row's slices of both signs
    for _ in range(3):
        km.train_on_batch(x, y)
        ours.train_on_batch(x, y)
    np.testing.assert_allclose(ours.get_weights()[0], km.get_weights()[0], rtol=1e-5, atol=1e-7)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 5, 3)).astype("float32"), rng.integers(0, 2, (20, 2)).astype("float32")


def test_two_metrics_of_one_class_log_apart_and_dicts_come_sorted():
    from fastgru.training import metric_base

    metric_base._NAME_UIDS.clear()  # (as in a fresh process: unnamed metrics are numbered over the process)
    x, y = _data()
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy",
                  metrics=[fg.metrics.Precision(), fg.metrics.Precision(thresholds=0.3), "mae"])
    history = model.fit(x, y, epochs=1, verbose=0).history
    assert sorted(history) == ["loss", "mae", "precision", "precision_1"]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == sorted(logs)
    assert logs["precision"] != logs["precision_1"]


def test_metric_names_and_evaluate_order_against_keras(keras):
    x, y = _data()
    i = keras.Input((5, 3))
    km = keras.Model(i, keras.layers.Dense(2, activation="sigmoid")(keras.layers.GRU(4)(i)))
    ours = fg.from_keras(km)
    km.compile("sgd", "binary_crossentropy", metrics=[keras.metrics.Precision(name="p"),
                                                      keras.metrics.Precision(name="p", thresholds=0.3), "mae"])
    ours.compile("sgd", "binary_crossentropy", metrics=[fg.metrics.Precision(name="p"),
                                                        fg.metrics.Precision(name="p", thresholds=0.3), "mae"])
    expected = km.evaluate(x, y, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert list(got) == list(expected)
    np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-5)


def test_tf_keras_time_distributed_batch_normalization_leaves_masked_steps_out(tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    x = rng.integers(1, 25, (6, 8)).astype("int32")
    x[::2, 5:] = 0
    y = rng.integers(0, 3, 6)
    tf_keras.utils.set_random_seed(1)
    L = tf_keras.layers
    km = tf_keras.Sequential([L.Embedding(25, 6, mask_zero=True, input_length=8), L.GRU(8, return_sequences=True),
                              L.TimeDistributed(L.BatchNormalization()), L.LSTM(5), L.Dense(3, activation="softmax")])
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    km.compile(tf_keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    ours.compile(fg.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    for _ in range(2):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_freezing_a_model_or_wrapper_freezes_its_layers():
    """As Keras: ``model.trainable = False`` (or a wrapper's) sets each inner layer's flag, so a frozen
    BatchNormalization inside runs in inference mode during fit (statistics unchanged) and nothing trains."""
    inner = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.Dense(4), fg.layers.BatchNormalization()], name="enc")
    td = fg.layers.TimeDistributed(fg.layers.BatchNormalization())
    bi = fg.layers.Bidirectional(fg.layers.GRU(2, return_sequences=True))
    inner.trainable = td.trainable = bi.trainable = False
    assert not any(layer.trainable for layer in inner.layers) and not td.layer.trainable
    assert not bi.forward_layer.trainable and not bi.backward_layer.trainable
    i = fg.Input((5, 3))
    model = fg.Model(i, fg.layers.Dense(1)(fg.layers.GlobalAveragePooling1D()(bi(td(inner(i))))))
    before = model.get_weights()
    model.compile(fg.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32"), verbose=0)
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before[:-2], after[:-2]))  # only the head's Dense moved
    inner.trainable = True
    assert all(layer.trainable for layer in inner.layers)


def test_frozen_nested_model_with_batch_normalization_trains_as_keras(keras):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")

    def build(mod):
        inner = mod.Sequential([mod.Input((5, 3)), mod.layers.Dense(4), mod.layers.BatchNormalization()], name="enc")
        inner.trainable = False
        i = mod.Input((5, 3))
        return mod.Model(i, mod.layers.Dense(1)(mod.layers.GlobalAveragePooling1D()(inner(i))))

    km, ours = build(keras), build(fg)
    km.get_layer("enc").layers[-1].set_weights([np.ones(4, "f"), np.zeros(4, "f"), np.full(4, 0.5, "f"),
                                                np.full(4, 2.0, "f")])
    ours.set_weights(km.get_weights())
    km.compile(keras.optimizers.SGD(0.1), "mse")
    ours.compile(fg.optimizers.SGD(0.1), "mse")
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_tf_keras_weights_file_into_a_model_that_nests_a_model(tmp_path, kind):
    tf_keras = pytest.importorskip("tf_keras")

    def build(mod):
        if kind == "sequential":
            inner = mod.Sequential([mod.Input((7, 4)), mod.layers.GRU(5)])
        else:
            i = mod.Input((7, 4))
            inner = mod.Model(i, mod.layers.GRU(5)(i))
        x = mod.Input((7, 4))
        return mod.Model(x, mod.layers.Dense(2)(inner(x)))

    km = build(tf_keras)
    km.save_weights(tmp_path / "w.h5")
    ours = build(fg)
    ours.load_weights(tmp_path / "w.h5")
    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.predict_on_batch(x), ours.predict(x))
