"""Keras 3 ops in Functional graphs against live Keras: every op both ways (Keras -> fastgru from a live model,
fastgru -> a .keras file Keras opens), training through ops step for step, a mask not passed on by an op,
fastgru's operators read by Keras; and a multi-output model's evaluate list in Keras's order."""

from __future__ import annotations

import keras_ops_cases as cases
import numpy as np
import pytest

import fastgru as fg


def _inputs(seed=3, n=4):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 6, 4)).astype("float32"), rng.normal(size=(n, 4)).astype("float32")]


def test_every_op_from_a_live_model_and_back_to_keras(keras, tmp_path):
    km, names = cases.every_op(keras)
    cases.randomize(km, 5)
    xs = _inputs()
    expected = km.predict(xs, verbose=0)
    ours = fg.from_keras(km)
    for name, g, e in zip(names, ours.predict(xs), expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6, err_msg=name)
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")
    for name, g, e in zip(names, back.predict(xs, verbose=0), expected):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_through_ops_step_for_step(keras, tmp_path, optimizer):
    km = cases.trainable(keras)
    cases.randomize(km, 7)
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    opts = {"adam": (keras.optimizers.Adam(0.01), fg.optimizers.Adam(0.01)),
            "sgd": (keras.optimizers.SGD(0.05, momentum=0.9), fg.optimizers.SGD(0.05, momentum=0.9))}[optimizer]
    for model, opt in zip((km, ours), opts):
        model.compile(opt, loss=["categorical_crossentropy", "binary_crossentropy"], loss_weights=[1.0, 0.5],
                      metrics=[["accuracy"], ["accuracy", "mse"]])
    xs, ys = cases.data(seed=8)
    theirs = km.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    mine = ours.fit(xs, ys, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs)
    for k in theirs:
        np.testing.assert_allclose(mine[k], theirs[k], rtol=2e-5, atol=1e-6, err_msg=k)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(ours.evaluate(xs, ys, verbose=0), km.evaluate(xs, ys, verbose=0), rtol=2e-5, atol=1e-6)


def test_an_op_passes_no_mask_on(keras, tmp_path):
    """Keras 3 ops drop the mask: a GRU after ``embedded * 2.0`` runs over the padding, in both."""
    inp = keras.Input((5,), dtype="int32")
    e = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    km = keras.Model(inp, keras.layers.GRU(3)(e * 2.0))
    km.save(tmp_path / "m.keras")
    x = np.array([[1, 2, 0, 0, 0], [3, 4, 5, 6, 7]])
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(x), km.predict(x, verbose=0),
                               rtol=1e-5, atol=2e-6)


def test_fastgru_operators_open_in_keras(keras, tmp_path):
    L = fg.layers
    x = fg.Input((6, 4))
    h = L.GRU(4, return_sequences=True)(x)
    out = L.Dense(2)(L.GlobalMaxPooling1D()(2.0 - (h + x) ** 2 / 3.0 * -h))
    ours = fg.Model(x, out)
    xs = np.random.default_rng(0).normal(size=(3, 6, 4)).astype("float32")
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(xs, verbose=0),
                               ours.predict(xs), rtol=1e-5, atol=1e-6)


def test_multi_output_evaluate_lists_metrics_by_name_as_keras(keras):
    def build(mod):
        x = mod.Input((6, 4))
        g = mod.layers.GRU(4)(x)
        return mod.Model(x, [mod.layers.Dense(3, activation="softmax", name="zz")(g),
                             mod.layers.Dense(1, activation="sigmoid", name="aa")(g)])

    km, ours = build(keras), build(fg)
    ours.set_weights(km.get_weights())
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(16, 6, 4)).astype("float32")
    ys = [np.eye(3, dtype="float32")[rng.integers(0, 3, 16)], rng.integers(0, 2, (16, 1)).astype("float32")]
    for model in (km, ours):
        model.compile("adam", loss=["categorical_crossentropy", "binary_crossentropy"],
                      metrics=[["accuracy"], ["accuracy", "mse"]])
    expected = km.evaluate(xs, ys, verbose=0)  # [loss, zz_loss, aa_loss, aa_accuracy, aa_mse, zz_accuracy]
    np.testing.assert_allclose(ours.evaluate(xs, ys, verbose=0), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("axis", [-1, 1])
def test_a_live_chain_ending_in_a_softmax_op(keras, axis):
    """A plain chain whose last step is ``keras.ops.softmax`` (not among the Keras model's layers) converts."""
    i = keras.Input((7, 4))
    km = keras.Model(i, keras.ops.softmax(keras.layers.Dense(3)(keras.layers.GRU(5, return_sequences=True)(i)),
                                          axis=axis))
    x = np.random.default_rng(0).normal(size=(3, 7, 4)).astype("float32")
    np.testing.assert_allclose(fg.from_keras(km).predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["embedding_unmasked", "after_an_op", "pooling"])
def test_a_mask_computed_with_ops_reaches_a_layer_whose_input_has_none(keras, tmp_path, case):
    """``mask=ops.not_equal(tokens, 0)`` where no propagated mask reaches the layer (an Embedding without
    mask_zero, an op that drops the mask, a Dense): computed and applied, as Keras; trained the same."""
    L, O = keras.layers, keras.ops
    keras.utils.set_random_seed(0)
    i = keras.Input((6,), dtype="int32")
    mask = O.not_equal(i, 0)
    if case == "embedding_unmasked":
        h = L.GRU(4)(L.Embedding(10, 3)(i), mask=mask)
    elif case == "after_an_op":
        h = L.GRU(4)(L.Embedding(10, 3, mask_zero=True)(i) * 1.5, mask=mask)
    else:
        h = L.GlobalAveragePooling1D()(L.Dense(4)(L.Embedding(10, 3)(i)), mask=mask)
    km = keras.Model(i, L.Dense(1)(h))
    km.save(tmp_path / "m.keras")
    x = np.array([[3, 4, 5, 0, 0, 0], [7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 9, 0, 0, 0, 0]], "int32")
    y = np.array([[0.5], [-1.0], [0.2], [1.0]], "float32")
    ours = fg.load_model(tmp_path / "m.keras")
    for model in (ours, fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.05), "mse")
    ours.compile(fg.optimizers.Adam(0.05), "mse")
    theirs = km.fit(x, y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=3, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
