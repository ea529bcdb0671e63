"""Dice, Tversky and CategoricalGeneralizedCrossEntropy against Keras (values and TensorFlow's gradients, every
axis form, sample weights, reductions), in float64 against finite differences, a sequence-labelling GRU trained
with Dice as Keras trains it, their configs from Keras files; a file's loss fastgru lacks says so at fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg

CASES = [
    ("Dice", {}), ("Dice", {"axis": (1, 2)}), ("Dice", {"axis": 1, "reduction": "sum"}),
    ("Tversky", {"alpha": 0.3, "beta": 0.7}), ("Tversky", {"alpha": 0.8, "beta": 0.1, "axis": (1, 2)}),
]


def _data(rng, dtype="float32"):
    t = (rng.random((4, 5, 3)) > 0.5).astype(dtype)
    p = rng.random((4, 5, 3)).astype(dtype)
    return t, p, rng.random(4).astype(dtype)


@pytest.mark.parametrize("name,options", CASES, ids=lambda v: str(v))
def test_overlap_losses_match_keras(keras, name, options):
    import tensorflow as tf

    t, p, sw = _data(np.random.default_rng(40))
    ours, theirs = getattr(fg.losses, name)(**options), getattr(keras.losses, name)(**options)
    for weight in (None, sw if options.get("axis") != 1 else sw[:, None]):  # (axis=1: values (B, C))
        variable = tf.Variable(p)
        with tf.GradientTape() as tape:
            expected = theirs(t, variable, sample_weight=weight)
        loss, grad = ours.value_and_grad(t, p, sample_weight=weight)
        assert loss == pytest.approx(float(expected), rel=1e-6)
        np.testing.assert_allclose(grad, tape.gradient(expected, variable).numpy(), rtol=1e-5, atol=1e-8)
    assert fg.losses.get(theirs).get_config() == ours.get_config()


@pytest.mark.parametrize("labels_shape", [(6,), (6, 1)])
def test_generalized_crossentropy_matches_keras(keras, labels_shape):
    """Integer labels (B,) or, as Keras broadcasts its one-hot against the prediction, (B, 1)."""
    import tensorflow as tf

    rng = np.random.default_rng(41)
    labels = rng.integers(0, 4, size=labels_shape)
    p = (rng.random((6, 4)) + 0.05).astype("float32")
    variable = tf.Variable(p)
    with tf.GradientTape() as tape:
        expected = keras.losses.CategoricalGeneralizedCrossEntropy(q=0.3)(labels, variable)
    loss, grad = fg.losses.CategoricalGeneralizedCrossEntropy(q=0.3).value_and_grad(labels, p)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    np.testing.assert_allclose(grad, tape.gradient(expected, variable).numpy(), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss", [fg.losses.Dice(axis=(1, 2)), fg.losses.Tversky(0.2, 0.6),
                                  fg.losses.CategoricalGeneralizedCrossEntropy(0.4)], ids=lambda v: v.name)
def test_gradients_match_finite_differences(rng, loss):
    if loss.name.startswith("categorical"):
        t, p = rng.integers(0, 3, size=(4,)), rng.random((4, 3)) + 0.1
    else:
        t, p, _ = _data(rng, "float64")
    _, grad = loss.value_and_grad(t, p)
    eps, numeric = 1e-6, np.zeros_like(p)
    for index in np.ndindex(p.shape):
        up, down = p.copy(), p.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (loss(t, up) - loss(t, down)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_sequence_labelling_trained_with_dice_matches_keras(keras, tmp_path):
    """Per-step sigmoid masks from a Bidirectional GRU, trained with Dice over each sample's steps and channels;
    the loss restored from the Keras file's compile config."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(8, 7, 3)).astype("float32")
    y = (rng.random((8, 7, 2)) > 0.6).astype("float32")
    keras.utils.set_random_seed(42)
    K = keras.layers
    km = keras.Sequential([keras.Input((7, 3)), K.Bidirectional(K.GRU(4, return_sequences=True)),
                           K.Dense(2, activation="sigmoid")])
    assert_keras_parity(keras, km, x, y, tmp_path, "dice", epochs=3)
    km.compile(keras.optimizers.Adam(0.01), keras.losses.Tversky(0.3, 0.7, axis=(1, 2)))
    km.save(tmp_path / "tversky.keras")
    loaded = fg.load_model(tmp_path / "tversky.keras")
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)


def test_a_files_loss_fastgru_lacks_is_named_at_fit(keras, tmp_path):
    km = keras.Sequential([keras.Input((4, 3)), keras.layers.GRU(2)])
    km.compile("adam", keras.losses.Circle())
    km.save(tmp_path / "circle.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fg.load_model(tmp_path / "circle.keras")
    with pytest.raises(RuntimeError, match="You must call compile.*training configuration is not supported.*Circle"):
        model.fit(np.zeros((2, 4, 3), np.float32), np.zeros((2,)), verbose=0)


def test_bad_options():
    with pytest.raises(ValueError, match="axis must be None, an int or a tuple"):
        fg.losses.Dice(axis="1")
    with pytest.raises(ValueError, match=r"q must lie in \(0, 1\)"):
        fg.losses.CategoricalGeneralizedCrossEntropy(q=1.5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        fg.losses.CategoricalGeneralizedCrossEntropy()(np.array([0, 3]), np.full((2, 3), 0.3))
    with pytest.raises(ValueError, match="axis .* is outside"):
        fg.losses.Dice(axis=3)(np.zeros((2, 3)), np.zeros((2, 3)))
