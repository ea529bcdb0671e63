"""Training with the focal losses, ``ignore_class`` and ``AUC`` against live Keras 3: ``fit`` histories (log
names included), ``evaluate``, weights after training, Keras's own objects given to ``compile``, a Functional
model, and a ``.keras`` file compiled by Keras restored compiled."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

keras = pytest.importorskip("keras")


def randomized(layers, rng, scale=0.3, head_scale=1.0):
    """A Keras model with random weights; ``head_scale`` multiplies the last layer's kernel (saturated outputs,
    where a loss computed from probabilities and one from logits differ)."""
    model = keras.Sequential(layers)
    weights = [rng.standard_normal(w.shape).astype(w.dtype) * scale for w in model.get_weights()]
    weights[-2] *= head_scale
    model.set_weights(weights)
    return model


def assert_history_close(ours, theirs, rtol=1e-4):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=1e-6, err_msg=key)


def assert_weights_close(keras_model, ours, rtol=1e-3):
    for k, o in zip(keras_model.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(o, k, rtol=rtol, atol=rtol * max(np.abs(k).max(), 1e-3))


# (output units, activation, Keras compile args, fastgru compile args)
BINARY_CASES = {
    "focal_sigmoid_auc_objects": (
        "sigmoid",
        lambda k: dict(loss=k.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5),
                       metrics=[k.metrics.AUC(name="auc"), k.metrics.AUC(curve="PR", name="pr_auc")]),
        lambda: dict(loss=fg.losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.5),
                     metrics=[fg.metrics.AUC(name="auc"), fg.metrics.AUC(curve="PR", name="pr_auc")])),
    "focal_from_logits_linear_output": (
        None,
        lambda k: dict(loss=k.losses.BinaryFocalCrossentropy(from_logits=True, label_smoothing=0.1),
                       metrics=[k.metrics.AUC(from_logits=True, name="auc", summation_method="minoring")]),
        lambda: dict(loss=fg.losses.BinaryFocalCrossentropy(from_logits=True, label_smoothing=0.1),
                     metrics=[fg.metrics.AUC(from_logits=True, summation_method="minoring", name="auc")])),
    "focal_from_logits_on_sigmoid_output": (  # Keras applies its sigmoid to the probabilities
        "sigmoid",
        lambda k: dict(loss=k.losses.BinaryFocalCrossentropy(from_logits=True), metrics=["AUC"]),
        lambda: dict(loss=fg.losses.BinaryFocalCrossentropy(from_logits=True), metrics=["AUC"])),
    "names": (
        "sigmoid",
        lambda k: dict(loss="binary_focal_crossentropy", metrics=["auc", "accuracy"]),
        lambda: dict(loss="binary_focal_crossentropy", metrics=["auc", "accuracy"])),
}


@pytest.mark.parametrize("case", list(BINARY_CASES))
def test_binary_focal_and_auc_fit_and_evaluate_match_keras(case):
    rng = np.random.default_rng(11)
    activation, keras_args, our_args = BINARY_CASES[case]
    x = rng.standard_normal((40, 6, 4)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.float32)[:, None]
    km = randomized([keras.Input((6, 4)), keras.layers.GRU(8), keras.layers.Dense(1, activation=activation)], rng,
                    scale=0.8, head_scale=8.0)
    ours = fg.from_keras(km)
    km.compile(optimizer=keras.optimizers.Adam(0.01), **keras_args(keras))
    ours.compile(optimizer=fg.optimizers.Adam(0.01), **our_args())
    kh = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.25, verbose=0).history
    oh = ours.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.25, verbose=0).history
    assert_history_close(oh, kh)
    want = km.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-4, err_msg=key)
    assert_weights_close(km, ours)


def test_categorical_focal_with_multi_label_auc_matches_keras():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((40, 6, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 40)]
    km = randomized([keras.Input((6, 4)), keras.layers.GRU(8), keras.layers.Dense(3, activation="softmax")], rng,
                    scale=0.8)
    ours = fg.from_keras(km)
    km.compile(optimizer="adam", loss=keras.losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5], gamma=1.5),
               metrics=[keras.metrics.AUC(multi_label=True, name="auc"),
                        keras.metrics.AUC(label_weights=[1.0, 2.0, 0.5], name="weighted_auc")])
    # Keras's own objects, read through their configs
    ours.compile(optimizer="adam", loss=keras.losses.CategoricalFocalCrossentropy(alpha=[0.2, 0.3, 0.5], gamma=1.5),
                 metrics=[keras.metrics.AUC(multi_label=True, name="auc"),
                          keras.metrics.AUC(label_weights=[1.0, 2.0, 0.5], name="weighted_auc")])
    assert isinstance(ours.loss, fg.losses.CategoricalFocalCrossentropy)
    kh = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.25, verbose=0).history
    oh = ours.fit(x, y, epochs=3, batch_size=16, shuffle=False, validation_split=0.25, verbose=0).history
    assert_history_close(oh, kh)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-4)
    assert_weights_close(km, ours)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_ignore_class_on_a_sequence_output_matches_keras(from_logits):
    """(B, T) labels with ignored steps: Keras averages the kept steps, from the softmax's probabilities (its
    where() drops the logits; a large output kernel saturates the softmax, where the two would differ)."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal((32, 6, 4)).astype(np.float32)
    y = rng.integers(0, 3, (32, 6))
    y[rng.random((32, 6)) < 0.3] = -1
    activation = None if from_logits else "softmax"
    km = randomized([keras.Input((6, 4)), keras.layers.GRU(8, return_sequences=True),
                     keras.layers.Dense(3, activation=activation)], rng, scale=1.0, head_scale=8.0)
    ours = fg.from_keras(km)
    km.compile(optimizer="adam",
               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1))
    ours.compile(optimizer="adam",
                 loss=fg.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1))
    kh = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, validation_split=0.25, verbose=0).history
    oh = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, validation_split=0.25, verbose=0).history
    assert_history_close(oh, kh)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-4)
    assert_weights_close(km, ours)


def test_functional_model_with_focal_ignore_class_and_auc_matches_keras():
    rng = np.random.default_rng(14)
    inp = keras.Input((5, 3))
    h = keras.layers.GRU(6)(inp)
    km = keras.Model(inp, {"a": keras.layers.Dense(1, activation="sigmoid", name="a")(h),
                           "b": keras.layers.Dense(4, activation="softmax", name="b")(h)})
    km.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * 0.5 for w in km.get_weights()])
    ours = fg.from_keras(km)
    x = rng.standard_normal((24, 5, 3)).astype(np.float32)
    ya = (rng.random((24, 1)) > 0.5).astype(np.float32)
    yb = rng.integers(0, 4, 24)
    yb[:6] = 9
    km.compile(optimizer="sgd", loss={"a": keras.losses.BinaryFocalCrossentropy(),
                                      "b": keras.losses.SparseCategoricalCrossentropy(ignore_class=9)},
               metrics={"a": [keras.metrics.AUC(name="auc")]})
    ours.compile(optimizer="sgd", loss={"a": fg.losses.BinaryFocalCrossentropy(),
                                        "b": fg.losses.SparseCategoricalCrossentropy(ignore_class=9)},
                 metrics={"a": [fg.metrics.AUC(name="auc")]})
    want = km.evaluate(x, {"a": ya, "b": yb}, verbose=0, return_dict=True)
    got = ours.evaluate(x, {"a": ya, "b": yb}, verbose=0, return_dict=True)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)


def test_keras_file_compiled_with_them_restores_compiled(tmp_path):
    rng = np.random.default_rng(15)
    x = rng.standard_normal((30, 6, 4)).astype(np.float32)
    y = (rng.random((30, 1)) > 0.5).astype(np.float32)
    km = randomized([keras.Input((6, 4)), keras.layers.GRU(8), keras.layers.Dense(1, activation="sigmoid")], rng)
    km.compile(optimizer="adam", loss=keras.losses.BinaryFocalCrossentropy(gamma=3.0, apply_class_balancing=True),
               metrics=[keras.metrics.AUC(curve="PR", label_weights=[2.0], name="pr_auc"),
                        keras.metrics.AUC(thresholds=[0.2, 0.5, 0.8], name="coarse"), "auc"])
    path = tmp_path / "m.keras"
    km.save(path)
    ours = fg.load_model(path)
    assert ours.compiled and isinstance(ours.loss, fg.losses.BinaryFocalCrossentropy)
    assert ours.loss.get_config() == km.loss.get_config()
    want = km.evaluate(x, y, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want) == ["auc", "coarse", "loss", "pr_auc"]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
    # and a model whose loss is SparseCategoricalCrossentropy(ignore_class=...)
    km2 = randomized([keras.Input((6, 4)), keras.layers.GRU(8), keras.layers.Dense(3, activation="softmax")], rng)
    km2.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
                metrics=["accuracy"])
    km2.save(tmp_path / "s.keras")
    ours2 = fg.load_model(tmp_path / "s.keras")
    assert ours2.compiled and ours2.loss.ignore_class == -1
    ys = rng.integers(0, 3, 30)
    ys[::4] = -1
    np.testing.assert_allclose(ours2.evaluate(x, ys, verbose=0), km2.evaluate(x, ys, verbose=0), rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_fastgru_file_compiled_with_them_loads_compiled_in_keras_and_fastgru(tmp_path):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((20, 5, 3)).astype(np.float32)
    y = (rng.random((20, 1)) > 0.5).astype(np.float32)
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss=fg.losses.BinaryFocalCrossentropy(gamma=1.0, apply_class_balancing=True),
                  metrics=[fg.metrics.AUC(curve="PR", label_weights=[2.0], thresholds=[0.3, 0.6], name="auc"), "AUC"])
    path = tmp_path / "ours.keras"
    model.save(path)
    want = model.evaluate(x, y, verbose=0, return_dict=True)
    for loaded in (fg.load_model(path), keras.models.load_model(path)):
        got = loaded.evaluate(x, y, verbose=0, return_dict=True)
        assert sorted(got) == ["AUC", "auc", "loss"]
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
    assert keras.models.load_model(path).loss.get_config() == model.loss.get_config()
