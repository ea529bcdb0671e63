"""A Softmax layer (or softmax op) that is a model's output hands a crossentropy its logits, as Keras tags the
output with them: with saturated probabilities the loss is the log-softmax's, not the clipped one's."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

W = [np.array([[30, -30, 0], [0, 0, 0], [0, 0, 0]], "float32"), np.zeros(3, "float32")]
X = np.array([[1.0, 0, 0], [0, 1.0, 0]], "float32")
Y = np.array([[0, 1, 0], [0, 1, 0]], "float32")


def _sequential(mod):
    return mod.Sequential([mod.Input((3,)), mod.layers.Dense(3), mod.layers.Softmax()])


def _functional(mod):
    i = mod.Input((3,))
    return mod.Model(i, mod.layers.Softmax()(mod.layers.Dense(3)(i)))


def _loss_from_logits():
    logits = X @ W[0] + W[1]
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return float(-(Y * log_p).sum(axis=1).mean())


@pytest.mark.parametrize("build", [_sequential, _functional])
def test_softmax_output_loss_and_step_use_the_logits(build):
    model = build(fg)
    model.set_weights(W)
    model.compile(fg.optimizers.SGD(0.1), "categorical_crossentropy")
    assert model.evaluate(X, Y, verbose=0) == pytest.approx(_loss_from_logits(), rel=1e-6)  # 30.0, not 16.1
    before = model.get_weights()[0].copy()
    model.train_on_batch(X, Y)
    probs = np.exp(X @ W[0]) / np.exp(X @ W[0]).sum(axis=1, keepdims=True)
    expected = before - 0.1 * X.T @ (probs - Y) / len(X)  # the logits' gradient, softmax - labels
    np.testing.assert_allclose(model.get_weights()[0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("build", [_sequential, _functional])
def test_softmax_output_against_keras(keras, build):
    km, ours = build(keras), build(fg)
    km.set_weights(W)
    ours.set_weights(W)
    for model, opt in ((km, keras.optimizers.SGD(0.1)), (ours, fg.optimizers.SGD(0.1))):
        model.compile(opt, "categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_allclose(ours.evaluate(X, Y, verbose=0), km.evaluate(X, Y, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(ours.train_on_batch(X, Y), km.train_on_batch(X, Y), rtol=1e-6)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_time_distributed_softmax_output_reads_probabilities_as_keras(keras, tmp_path, kind):
    """Keras's TimeDistributed reshapes its inner Dense's output, which then tags no logits: the crossentropy
    reads the clipped probabilities (fastgru builds the wrapper as the Dense it holds, marked as such)."""
    inner = keras.layers.TimeDistributed(keras.layers.Dense(3, activation="softmax"), name="td")
    if kind == "sequential":
        km = keras.Sequential([keras.Input((2, 3)), inner])
    else:
        i = keras.Input((2, 3))
        km = keras.Model(i, [inner(i), keras.layers.Dense(1, name="side")(i)])
    km.get_layer("td").set_weights(W)
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    x = np.array([[[1.0, 0, 0], [0, 1, 0]]], "float32")
    y = np.array([[[0, 1, 0], [0, 1, 0]]], "float32")
    ys = y if kind == "sequential" else [y, np.zeros((1, 2, 1), "float32")]
    loss = "categorical_crossentropy" if kind == "sequential" else ["categorical_crossentropy", "mse"]
    for model, opt in ((km, keras.optimizers.SGD(0.1)), (ours, fg.optimizers.SGD(0.1))):
        model.compile(opt, loss)
    expected = km.evaluate(x, ys, verbose=0)
    np.testing.assert_allclose(expected if kind == "sequential" else expected[1], (16.118095 + np.log(3)) / 2,
                               rtol=1e-5)  # the clipped probability's -log(1e-7), and -log(1/3)
    np.testing.assert_allclose(ours.evaluate(x, ys, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(ours.train_on_batch(x, ys), km.train_on_batch(x, ys), rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
