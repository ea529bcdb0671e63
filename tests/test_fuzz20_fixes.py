"""Fixes from the twentieth Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_same_fit

import fastgru as fg

_RELU_OPTIONS = [
    {},
    {"negative_slope": 0.1},
    {"max_value": 6.0},
    {"max_value": 2.0},
    {"threshold": 0.5},
    {"threshold": 0.5, "negative_slope": 0.2},
    {"threshold": 0.5, "negative_slope": 0.2, "max_value": 2.0},
    {"negative_slope": 0.3, "max_value": 6.0},
]


def _edge_inputs():
    """Values at every edge the options above have (0, the threshold, the bounds) and between them."""
    edges = np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 6.0, 7.0], np.float32)
    return np.stack([edges, -edges[::-1]])[:, :, None] * np.ones((1, 1, 2), np.float32)


def _keras_value_and_gradient(keras, tf, layer, x, dy):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt)
    return y.numpy(), tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()


def _ours_value_and_gradient(layer, x, dy):
    layer.build(x.shape)
    y, cache = layer.forward(x)
    dx, _ = layer.backward(dy, cache)
    return y, dx


@pytest.mark.keras
@pytest.mark.parametrize("options", _RELU_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_relu_values_and_gradients_at_their_edges_are_tensorflows(options):
    """A zero-padded sequence through Dense -> ReLU -> GRU puts exact zeros into the ReLU: Keras (TensorFlow)
    takes relu'(0) = 0 and leaky_relu'(0) = the slope, fastgru took 1, so the layers before it trained
    differently. Also: ``x == threshold`` gives 0 in Keras (fastgru gave the threshold), and a clip at
    ``max_value`` passes the gradient at the bound (relu6 does not)."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    x = _edge_inputs()
    dy = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    ky, kdx = _keras_value_and_gradient(keras, tf, keras.layers.ReLU(**options), x, dy)
    fy, fdx = _ours_value_and_gradient(fg.layers.ReLU(**options), x, dy)
    np.testing.assert_array_equal(fy, ky)
    np.testing.assert_array_equal(fdx, kdx)


@pytest.mark.keras
def test_leaky_relu_and_prelu_gradients_at_zero_are_tensorflows():
    """LeakyReLU's gradient at 0 is its slope and PReLU's (relu(x) - alpha relu(-x)) is 0 (fastgru: 1)."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    x = _edge_inputs()
    dy = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    ky, kdx = _keras_value_and_gradient(keras, tf, keras.layers.LeakyReLU(0.2), x, dy)
    fy, fdx = _ours_value_and_gradient(fg.layers.LeakyReLU(0.2), x, dy)
    np.testing.assert_array_equal(fy, ky)
    np.testing.assert_array_equal(fdx, kdx)
    kp = keras.layers.PReLU(shared_axes=[1])
    kp.build(x.shape)
    kp.set_weights([np.array([[0.25, -0.5]], np.float32)])
    ky, kdx = _keras_value_and_gradient(keras, tf, kp, x, dy)
    fp = fg.layers.PReLU(shared_axes=[1])
    fp.build(x.shape)
    fp.set_weights(kp.get_weights())
    fy, cache = fp.forward(x)
    fdx, (dalpha,) = fp.backward(dy, cache)
    np.testing.assert_array_equal(fy, ky)
    np.testing.assert_array_equal(fdx, kdx)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        y = kp(xt)
    np.testing.assert_allclose(dalpha, tape.gradient(y, kp.trainable_weights[0], output_gradients=tf.constant(dy)),
                               rtol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("name", [row.name for row in fg.activations.TABLE
                                  if row.name not in ("softmax", "log_softmax", "hard_sigmoid_keras2")])
def test_every_activations_value_and_gradient_at_its_kinks_are_tensorflows(name):
    """The table's own tests keep away from the kinks (one-sided derivatives); TensorFlow picks a side
    at each: selu'(0) is the scale (fastgru: scale * alpha), celu'(0) is 2 (its maximum and minimum
    both pass the gradient at the tie; fastgru: 1), hard_tanh' is 1 at -1 and 1 (fastgru: 0). The
    recurrent kernels' derivative (from the output) agrees with the table at 0. (Keras 2's hard sigmoid,
    which Keras 3 does not have, is checked through the tf_keras fixture files of test_io.)"""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    theirs = keras.activations.get(name)
    x = np.array([-7.0, -6.0, -3.0, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0, 6.0, 7.0], np.float32)
    dy = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = theirs(xt)
    expected = tape.gradient(y, xt, output_gradients=tf.constant(dy)).numpy()
    row = fg.activations.BY_NAME[name]
    ours_y = row.forward(x)
    np.testing.assert_allclose(ours_y, y.numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(row.gradient(x, ours_y, dy), expected, rtol=2e-6, atol=1e-6)
    if row.code is not None and row.code in fg._kernels.activations.INVERTIBLE_FROM_OUTPUT:
        d = dy.astype(np.float64)
        fg._kernels.activations.derivative_from_output(row.code, ours_y.astype(np.float64), d)
        at_zero = x == 0
        np.testing.assert_allclose(d[at_zero], expected[at_zero], rtol=2e-6)


@pytest.mark.keras
def test_an_unbuilt_optimizer_state_is_skipped_as_keras_skips_it(tmp_path):
    """A Keras model compiled with Adam(0.01), saved as .h5 and then as .keras before any step: the .keras
    compile config has no optimizer (Keras makes its default RMSprop) and the state holds the step count
    and Adam's rate only. keras.models.load_model builds the RMSprop and skips the state (its variable count
    differs); fastgru restored the 0.01 into the RMSprop and trained differently."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    km = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    km.save(tmp_path / "m.h5")
    km.save(tmp_path / "m.keras")
    with pytest.warns(UserWarning, match="Skipping variable loading"):
        theirs = keras.models.load_model(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    assert type(ours.optimizer).__name__ == type(theirs.optimizer).__name__ == "RMSprop"
    assert ours.optimizer.learning_rate == pytest.approx(float(theirs.optimizer.learning_rate))
    assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=16)


@pytest.mark.keras
def test_a_nested_model_in_a_functional_file_stays_a_model(tmp_path):
    """An encoder built as a Sequential and called inside a Functional model (Input -> encoder -> head):
    a chain, so fastgru spliced the encoder's layers into one Sequential and ``get_layer("encoder")``
    failed (the common way to take the encoder out of a trained model). Now built as a graph holding the
    nested model, as Keras's: its layers, its predictions, training and the file written back."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 3)).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    inp = keras.Input((6, 3))
    encoder = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4, return_sequences=True),
                                keras.layers.GRU(5)], name="encoder")
    km = keras.Model(inp, keras.layers.Dense(2, name="head")(encoder(inp)))
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.keras")
    km.save(tmp_path / "m.h5")
    for ours in (fg.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        assert [layer.name for layer in ours.layers] == [layer.name for layer in km.layers]
        inner = ours.get_layer("encoder")
        assert [type(layer).__name__ for layer in inner.layers] == ["GRU", "GRU"]
        np.testing.assert_allclose(inner.predict(x), encoder.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    ours = fg.load_model(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=4)
    ours.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras")
    assert isinstance(back.get_layer("encoder"), keras.Sequential)
    np.testing.assert_allclose(back.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-6)
