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


def _nested_head(k, sequential: bool):
    head = k.Sequential([k.Input((4,)), k.layers.Dense(3, activation="softmax")], name="head")
    if sequential:
        return k.Sequential([k.Input((5, 2)), k.layers.GRU(4), head])
    inputs = k.Input((5, 2))
    return k.Model(inputs, head(k.layers.GRU(4)(inputs)))


def _passed_through(k, kind: str):
    inputs = k.Input((5, 2))
    h = k.layers.Dense(3, activation="sigmoid" if kind == "dropout" else "softmax")(k.layers.GRU(4)(inputs))
    after = {"dropout": k.layers.Dropout(0.3), "identity": k.layers.Identity(),
             "linear": k.layers.Activation("linear")}[kind]
    return k.Model(inputs, after(h))


@pytest.mark.parametrize("build", [lambda k: _nested_head(k, False), lambda k: _nested_head(k, True),
                                   lambda k: _passed_through(k, "dropout"), lambda k: _passed_through(k, "identity"),
                                   lambda k: _passed_through(k, "linear")],
                         ids=["functional with a head model", "sequential with a head model",
                              "a dropout after a sigmoid", "an identity after a softmax",
                              "a linear activation after a softmax"])
def test_logits_pass_through_nested_models_and_identities_as_keras_s(keras, build, rng):
    """TensorFlow's tag stays on the tensor a nested model or a layer returning its input gives back: Keras reads
    the logits there (at evaluate for a dropout, which drops nothing then), with saturated probabilities too."""
    theirs, ours = build(keras), build(fg)
    weights = [30 * rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.standard_normal((8, 5, 2)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    loss = "binary_crossentropy" if "dropout" in [layer.name.split("_")[0] for layer in ours.layers] else \
        "categorical_crossentropy"
    for model, k in ((theirs, keras), (ours, fg)):
        model.compile(k.optimizers.SGD(1e-3), loss)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(theirs.evaluate(x, y, verbose=0), rel=1e-5)
    if loss == "categorical_crossentropy":  # (no dropout drawing: the steps compare too)
        ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        theirs.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
