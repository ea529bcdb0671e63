"""Crossentropy metrics of a sigmoid or softmax output read its logits, as Keras's do (TensorFlow's
crossentropies take the tag the activation leaves on its output, whether a loss or a metric calls them): with
saturated probabilities the clipped and the exact values differ by far more than rounding. Checked against
the formulas without TensorFlow, and against Keras's fit and evaluate with a loss of the probabilities (the
logits are then computed for the metrics only, and the loss backpropagates through the activation)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import compile_metrics, metrics


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_metrics_from_logits_are_exact():
    logits = np.array([[40.0, 0.0, -40.0], [0.0, 30.0, 0.0]], dtype=np.float32)
    labels = np.array([2, 1])
    expected = -_log_softmax(logits.astype(np.float64))[np.arange(2), labels].mean()  # 80 and ~0: not clipped at 16.1
    cce = metrics.get("categorical_crossentropy")
    cce.update_state_from_logits(np.eye(3)[labels], logits)
    np.testing.assert_allclose(cce.result(), expected, rtol=1e-5)
    clipped = metrics.get("categorical_crossentropy")
    clipped.update_state(np.eye(3)[labels], np.exp(_log_softmax(logits)))
    assert clipped.result() < 0.25 * expected  # (why the logits matter)
    bce = metrics.get("binary_crossentropy")
    bce.update_state_from_logits(np.array([[1.0], [0.0]]), np.array([[-50.0], [0.0]], dtype=np.float32))
    np.testing.assert_allclose(bce.result(), (50 + np.log1p(np.exp(-50)) + np.log(2)) / 2, rtol=1e-5)


def test_which_metrics_read_logits():
    cce, kld, acc = (metrics.get(n) for n in ("categorical_crossentropy", "kl_divergence", "categorical_accuracy"))
    assert compile_metrics.reads_logits([cce], "softmax") and compile_metrics.reads_logits([kld, cce], "sigmoid")
    assert not compile_metrics.reads_logits([kld, acc], "softmax")
    assert not compile_metrics.reads_logits([cce], "relu") and not compile_metrics.reads_logits([cce], None)
    ignoring = metrics.get({"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 0}})
    assert not compile_metrics.reads_logits([ignoring], "softmax")  # (Keras's where drops the tag)


def _compare(keras, km, fm, x, y, loss, metric_list, weighted=None):
    """Compile both alike, train two epochs, evaluate: the same histories, weights and evaluation."""
    for m in (km, fm):
        m.compile(optimizer=keras.optimizers.SGD(0.05) if m is km else fg.optimizers.SGD(0.05), loss=loss,
                  metrics=metric_list, weighted_metrics=weighted)
    sw = np.linspace(0.5, 1.5, len(x)).astype("float32") if weighted else None
    theirs = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, sample_weight=sw).history
    ours = fm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, sample_weight=sw).history
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=2e-4, atol=1e-5, err_msg=name)
    for a, b in zip(fm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    expected = km.evaluate(x, y, verbose=0, return_dict=True)
    got = fm.evaluate(x, y, verbose=0, return_dict=True)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=2e-4, atol=1e-5, err_msg=name)


@pytest.mark.keras
@pytest.mark.parametrize("head", ["dense", "softmax_layer", "activation_layer"])
def test_softmax_output_metrics_match_keras(keras, rng, head):
    L = keras.layers
    x = rng.normal(size=(32, 6, 4)).astype("float32")  # (a binary crossentropy of a softmax: of its logits)
    labels = rng.integers(0, 3, 32)
    tail = {"dense": [L.Dense(3, activation="softmax")], "softmax_layer": [L.Dense(3), L.Softmax()],
            "activation_layer": [L.Dense(3), L.Activation("softmax")]}[head]
    km = keras.Sequential([keras.Input((6, 4)), L.GRU(5), *tail])
    _compare(keras, km, fg.from_keras(km), x, np.eye(3, dtype="float32")[labels], "mse",
             ["categorical_crossentropy", keras.metrics.CategoricalCrossentropy(label_smoothing=0.1, name="smooth"),
              "binary_crossentropy", "accuracy"], weighted=["categorical_crossentropy"])


@pytest.mark.keras
def test_sigmoid_output_and_sparse_labels_match_keras(keras, rng):
    L = keras.layers
    x = (rng.normal(size=(32, 4)) * 30).astype("float32")
    km = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="sigmoid")])
    y = (rng.random((32, 3)) > 0.5).astype("float32")
    _compare(keras, km, fg.from_keras(km), x, y, "mae", ["binary_crossentropy", "categorical_crossentropy"])
    km = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="softmax")])
    labels = rng.integers(0, 3, 32)
    _compare(keras, km, fg.from_keras(km), x, labels, keras.losses.SparseCategoricalCrossentropy(),
             ["sparse_categorical_crossentropy"])


@pytest.mark.keras
def test_functional_outputs_metrics_match_keras(keras, rng):
    L = keras.layers
    inp = keras.Input((4,))
    probs = L.Dense(3, activation="softmax", name="probs")(inp)
    flag = L.Dense(1, activation="sigmoid", name="flag")(L.Dense(5, name="hidden")(inp))
    km = keras.Model(inp, [probs, flag])
    x = (rng.normal(size=(32, 4)) * 30).astype("float32")
    y = [np.eye(3, dtype="float32")[rng.integers(0, 3, 32)], (rng.random((32, 1)) > 0.5).astype("float32")]
    _compare(keras, km, fg.from_keras(km), x, y, ["mse", "mse"],
             [["categorical_crossentropy"], ["binary_crossentropy", "accuracy"]])


@pytest.mark.keras
def test_tf_keras_file_metrics_read_logits(rng, tmp_path):
    tk = pytest.importorskip("tf_keras")
    x = (rng.normal(size=(32, 4)) * 30).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 32)]
    tk.utils.set_random_seed(0)
    km = tk.Sequential([tk.Input((4,)), tk.layers.Dense(3, activation="softmax")])
    km.compile("sgd", "mse", metrics=["categorical_crossentropy", "binary_crossentropy"])
    km.save(tmp_path / "m.h5")
    fm = fg.load_model(tmp_path / "m.h5")
    for ours, theirs in ((fm.evaluate(x, y, verbose=0, return_dict=True), km.evaluate(x, y, verbose=0, return_dict=True)),
                         (fm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history,
                          km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history)):
        for name, value in theirs.items():
            np.testing.assert_allclose(ours[name], value, rtol=2e-4, err_msg=name)


@pytest.mark.keras
def test_a_float32_cast_of_the_output_keeps_its_logits(keras, rng):
    """TensorFlow's cast to the tensor's own dtype returns the tensor: Keras's loss and metrics still read the
    logits of a sigmoid output cast to float32 (mixed-precision-style code ends models so)."""
    inputs = keras.Input((4,))
    probs = keras.layers.Dense(1, activation="sigmoid",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=30.0, seed=1))(inputs)
    km = keras.Model(inputs, keras.ops.cast(probs, "float32"))
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (rng.random((32, 1)) > 0.5).astype("float32")
    _compare(keras, km, fg.from_keras(km), x, y, "binary_crossentropy", ["binary_crossentropy"])
