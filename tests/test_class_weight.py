"""``fit(class_weight=...)`` and ``train_on_batch(class_weight=...)`` as Keras: each training sample weighted
by its class's weight (validation data unweighted), for class-index, (n, 1) and one-hot targets."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _data(kind: str):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((24, 6, 3)).astype(np.float32)
    labels = rng.integers(0, 3 if kind != "binary" else 2, 24)
    if kind == "binary":
        return x, labels.reshape(-1, 1).astype(np.float32), {0: 1.0, 1: 3.5}
    if kind == "sparse":
        return x, labels, {0: 0.5, 2: 4.0}  # class 1 unlisted: weight 1
    return x, np.eye(3, dtype=np.float32)[labels], {0: 2.0, 1: 0.25, 2: 1.5}


def _models(keras, kind: str):
    L = keras.layers
    head = (L.Dense(1, activation="sigmoid") if kind == "binary" else L.Dense(3, activation="softmax"))
    model = keras.Sequential([keras.Input((6, 3)), L.GRU(5), head])
    rng = np.random.default_rng(8)
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    loss = {"binary": "binary_crossentropy", "sparse": "sparse_categorical_crossentropy",
            "onehot": "categorical_crossentropy"}[kind]
    ours = fg.from_keras(model)
    model.compile(optimizer=keras.optimizers.SGD(0.2), loss=loss)
    ours.compile(optimizer=fg.optimizers.SGD(0.2), loss=loss)
    return model, ours


@pytest.mark.parametrize("kind", ["binary", "sparse", "onehot"])
def test_fit_with_class_weight_trains_as_keras(keras, kind):
    x, y, class_weight = _data(kind)
    model, ours = _models(keras, kind)
    want = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0, class_weight=class_weight,
                     validation_split=0.25).history
    got = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0, class_weight=class_weight,
                   validation_split=0.25).history
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_train_on_batch_with_class_weight_as_keras(keras):
    x, y, class_weight = _data("sparse")
    model, ours = _models(keras, "sparse")
    want = float(model.train_on_batch(x, y, class_weight=class_weight))
    got = float(np.ravel(ours.train_on_batch(x, y, class_weight=class_weight))[0])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_class_weight_refusals():
    L = fg.layers
    model = fg.Sequential([fg.layers.Input((6, 3)), L.GRU(4), L.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y, _ = _data("sparse")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="cannot be given together"):
        model.fit(x, y, class_weight={0: 2.0}, sample_weight=np.ones(len(x)), verbose=0)
    with pytest.raises(TypeError, match="class indices"):
        model.fit(x, y, class_weight={"0": 2.0}, verbose=0)
    with pytest.raises(ValueError, match="finite number"):
        model.fit(x, y, class_weight={0: float("nan")}, verbose=0)
    with pytest.raises(TypeError, match="dict"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    for a, b in zip(model.get_weights(), before):  # refused before any step
        np.testing.assert_array_equal(a, b)
    seq = fg.Sequential([fg.layers.Input((6, 3)), L.GRU(4, return_sequences=True), L.Dense(3, activation="softmax")])
    seq.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight weighs whole samples"):  # targets per step: several classes
        seq.fit(x, np.eye(3, dtype=np.float32)[np.zeros((len(x), 6), np.int64)], class_weight={0: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight weighs whole samples"):  # (sparse ones too)
        seq.fit(x, np.zeros((len(x), 6), np.int64), class_weight={0: 2.0}, verbose=0)
    a = fg.Input((6, 3))
    h = L.GRU(4)(a)
    two = fg.Model(a, [L.Dense(1)(h), L.Dense(2)(h)])
    two.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="single output"):
        two.fit(x, [np.zeros((24, 1)), np.zeros((24, 2))], class_weight={0: 2.0}, verbose=0)
