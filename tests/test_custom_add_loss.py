"""``add_loss`` in Keras-style custom layers (``fastgru.layers.batch_totals``): in a call traced for training, the
losses it is given — totals over the batch (``ops.mean(x)``, ``ops.sum(x)`` with axis=None), their multiples and
sums, values of weights alone, numbers — join the training's loss and send their gradients back through the traced
graph, as Keras adds ``sum(model.losses)``; checked against Keras (fit, evaluate, a saved file) and against finite
differences in float64; what a per-sample graph cannot compute is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
from custom_layer_checks import assert_fit_refused, gradient_in_place

import fastgru as fg


def _layers(keras):
    """A projection adding an activity loss, a weight penalty, a KL-like term and a constant; a layer without
    weights that adds an L1 penalty divided by the batch size (Keras's ActivityRegularization, written by hand)."""

    class Project(keras.layers.Layer):
        def __init__(self, units=3, rate=0.01, **kwargs):
            super().__init__(**kwargs)
            self.units, self.rate = units, rate

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

        def call(self, inputs):
            y = keras.ops.matmul(inputs, self.w) + self.b
            self.add_loss(self.rate * keras.ops.mean(keras.ops.square(y)))
            self.add_loss(keras.ops.multiply(0.001, keras.ops.sum(keras.ops.square(self.w))))
            self.add_loss(-0.5 * keras.ops.mean(1.0 + y - keras.ops.exp(0.1 * y)) + 0.2)
            return y

        def get_config(self):
            return {**super().get_config(), "units": self.units, "rate": self.rate}

    class Sparse(keras.layers.Layer):
        def call(self, inputs):
            batch = keras.ops.cast(keras.ops.shape(inputs)[0], "float32")
            self.add_loss(0.02 * keras.ops.sum(keras.ops.abs(inputs)) / batch)
            return inputs

    return Project, Sparse


def _sequential(keras):
    project, sparse = _layers(keras)
    return keras.Sequential([keras.Input((5, 4)), keras.layers.GRU(6, return_sequences=True, name="gru"),
                             sparse(name="sparse"), project(name="project")])


def _functional(keras, project, sparse):
    inputs = keras.Input((5, 4))
    h = keras.layers.GRU(6, return_sequences=True)(sparse()(inputs))
    pooled = keras.layers.GlobalAveragePooling1D()(project(4, rate=0.05)(h))
    return keras.Model(inputs, keras.layers.Dense(2)(pooled))


def _fit_and_evaluate(model, x, y) -> list:
    return [model.evaluate(x, y, verbose=0),
            *model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
            model.evaluate(x, y, verbose=0)]


def test_added_losses_train_and_evaluate_as_keras_s(keras, rng):
    keras.backend.clear_session()
    fg.backend.clear_session()
    x, y = rng.standard_normal((16, 5, 4)).astype(np.float32), rng.standard_normal((16, 5, 3)).astype(np.float32)
    theirs, ours = _sequential(keras), _sequential(fg)
    weights = [w + 0.1 * rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    for model in (theirs, ours):
        model.compile(model is theirs and keras.optimizers.Adam(0.01) or fg.optimizers.Adam(0.01), "mse")
    np.testing.assert_allclose(_fit_and_evaluate(ours, x, y), _fit_and_evaluate(theirs, x, y), rtol=2e-6)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_keras_file_with_added_losses_trains_as_in_keras(keras, tmp_path, rng):
    project, sparse = (keras.saving.register_keras_serializable(package="added")(c) for c in _layers(keras))
    theirs = _functional(keras, project, sparse)
    theirs.compile("adam", "mse")
    theirs.save(tmp_path / "added.keras")
    ours = fg.load_model(tmp_path / "added.keras", custom_objects=dict(zip(("Project", "Sparse"), _layers(fg))))
    x, y = rng.standard_normal((16, 5, 4)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    np.testing.assert_allclose(_fit_and_evaluate(ours, x, y), _fit_and_evaluate(theirs, x, y), rtol=2e-5)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-6)


def test_the_added_losses_gradient_matches_finite_differences_in_float64(rng):
    layer, x = _layers(fg)[0](3, rate=0.3, dtype="float64"), rng.standard_normal((4, 5, 2))
    layer.build((None, 5, 2))
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape))
    dy = rng.standard_normal((4, 5, 3))
    y, cache = layer.forward(x)
    added = -0.5 * np.mean(1.0 + y - np.exp(0.1 * y)) + 0.2
    expected = 0.3 * np.mean(y ** 2) + 0.001 * np.sum(np.asarray(layer.w) ** 2) + added
    np.testing.assert_allclose(cache.activity_loss, expected, rtol=1e-12)
    dx, grads = layer.backward(dy, cache)

    def loss() -> float:
        y, cache = layer.forward(x)
        return float(np.sum(y * dy)) + cache.activity_loss

    for w, g in [*zip(layer.trainable_weights, grads), (x, dx)]:
        np.testing.assert_allclose(np.reshape(g, -1), gradient_in_place(loss, w), rtol=1e-6, atol=1e-8)


def test_an_eager_call_keeps_its_added_losses_until_the_next_call(rng):
    project, sparse = _layers(fg)
    inner = sparse(name="inner")

    class Holder(fg.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, inputs):
            self.add_loss(fg.ops.sum(inputs))
            return self.inner(inputs)

    holder, x = Holder(), rng.standard_normal((3, 2)).astype(np.float32)
    holder(x)
    np.testing.assert_allclose([float(v) for v in holder.losses], [np.sum(x), 0.02 * np.sum(np.abs(x)) / 3],
                               rtol=1e-6)
    holder(2 * x)
    np.testing.assert_allclose(float(holder.losses[0]), 2 * np.sum(x), rtol=1e-6)
    assert len(holder.losses) == 2


class _Root(fg.layers.Layer):  # (the square root of a total over the batch: not a per-sample graph)
    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, inputs):
        self.add_loss(fg.ops.sqrt(fg.ops.mean(fg.ops.square(inputs))))
        return inputs * self.scale


class _TimesTensor(fg.layers.Layer):  # (a total times a tensor)
    def call(self, inputs):
        self.add_loss(fg.ops.mean(inputs) * inputs[:, 0])
        return inputs


class _WeightTimesTotal(fg.layers.Layer):  # (a weight times a total: not a multiple by a number)
    def build(self, input_shape):
        self.a = self.add_weight(shape=(), initializer="ones", name="a")

    def call(self, inputs):
        self.add_loss(self.a * fg.ops.mean(fg.ops.square(inputs)))
        return inputs * self.a


class _NumPyLoss(fg.layers.Layer):  # (no weights, a call NumPy computes: untraced, its loss would be lost)
    def call(self, inputs):
        self.add_loss(np.mean(np.asarray(inputs) ** 2))
        return np.asarray(inputs)[:, ::-1]


@pytest.mark.parametrize("layer_class, what", [
    (_Root, "keras.ops Sqrt of a total over the batch"),
    (_TimesTensor, "a product or quotient with a tensor"),
    (_WeightTimesTotal, "a product or quotient with a tensor, an array or a weight of a total"),
    (_NumPyLoss, "could not be traced")])
def test_a_loss_the_trace_cannot_compute_is_refused_by_name(rng, layer_class, what):
    assert_fit_refused(layer_class(name="custom"), what, rng)


def test_model_losses_are_keras_s(keras, rng):
    """``model.losses``: the latest call's added losses (its layers'), then the regularization penalties of its
    trainable weights, as Keras lists them."""
    models = []
    for k in (keras, fg):
        project, sparse = _layers(k)
        inputs = k.Input((5, 4))
        h = k.layers.Dense(4, kernel_regularizer=k.regularizers.L2(0.1))(sparse()(inputs))
        models.append(k.Model(inputs, project(3)(h)))
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    theirs(x)
    ours(x)
    assert len(ours.losses) == len(theirs.losses) == 5
    np.testing.assert_allclose(sorted(float(v) for v in ours.losses), sorted(float(v) for v in theirs.losses),
                               rtol=1e-5)
