"""A script's own loss: a Python function given to ``compile`` (Keras's LossFunctionWrapper) or a ``Loss`` subclass
with its own ``call``, traced for its gradient (training/function_loss.py): values and gradients against direct
computation and float64 central differences (per-sample values, a value the function reduced over the batch itself,
sample weights, masks); training and files against Keras."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru import ops
from fastgru.errors import UnsupportedKerasFeature
from fastgru.layers import GRU, Dense, Input


def quantile(y_true, y_pred):
    error = y_true - y_pred
    return ops.mean(ops.maximum(0.8 * error, (0.8 - 1.0) * error), axis=-1)


def log_cosh_mean(y_true, y_pred):  # (reduced over the batch too: one value, as many scripts write it)
    return ops.mean(ops.log(ops.cosh(y_pred - y_true)))


def smooth_sum(y_true, y_pred):
    return ops.sum(ops.square(y_true - y_pred)) / 8.0 + 0.01 * ops.mean(ops.sqrt(ops.square(y_pred) + 1.0))


def per_step(y_true, y_pred):  # (B, T): a value per step, which the output's mask weighs
    return ops.sum(ops.abs(y_true - y_pred) * ops.sigmoid(y_pred), axis=-1)


class ScaledSquare(fg.losses.Loss):
    def __init__(self, scale=2.0, name="scaled_square", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * ops.square(y_true - y_pred)  # (per element: Keras reduces all of them)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _value(loss, y, p, sample_weight=None, mask=None):
    return fg.losses.get(loss).value_and_grad(y, p, sample_weight=sample_weight, mask=mask)[0]


@pytest.mark.parametrize("loss", [quantile, log_cosh_mean, smooth_sum, ScaledSquare()],
                         ids=["quantile", "batch_mean", "batch_sum", "subclass"])
def test_gradient_matches_central_differences_in_float64(loss, rng):
    y, p = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    weights = rng.uniform(0.5, 1.5, (5, 1))  # (per sample, broadcast over a per-element loss's values, as Keras)
    for sample_weight in (None, weights):
        value, grad = fg.losses.get(loss).value_and_grad(y, p, sample_weight=sample_weight)
        assert grad.dtype == np.float64 and grad.shape == p.shape
        assert value == pytest.approx(float(fg.losses.get(loss)(y, p, sample_weight=sample_weight)), rel=1e-12)
        expected = numeric_gradient(lambda q: np.float64(_value(loss, y, q, sample_weight)), p, 1.0)
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-9)


def test_values_are_reduced_as_keras_reduces_them(rng):
    y, p = rng.normal(size=(4, 6, 2)).astype("float32"), rng.normal(size=(4, 6, 2)).astype("float32")
    mask = rng.random((4, 6)) > 0.3
    weights = rng.uniform(0.5, 1.5, (4, 6)).astype("float32")
    values = np.sum(np.abs(y - p) / (1 + np.exp(-p)), axis=-1)
    # (sum_over_batch_size with a mask: the mean over the unmasked steps; sample weights times the mask)
    assert _value(per_step, y, p, mask=mask) == pytest.approx(values[mask].mean(), rel=1e-5)
    assert _value(per_step, y, p, sample_weight=weights) == pytest.approx(np.mean(values * weights), rel=1e-5)
    grad = fg.losses.get(per_step).value_and_grad(y, p, mask=mask)[1]
    assert np.all(grad[~mask] == 0)
    summed = fg.losses.LossFunctionWrapper(per_step, reduction="sum")
    assert summed(y, p) == pytest.approx(values.sum(), rel=1e-5)
    np.testing.assert_allclose(fg.losses.LossFunctionWrapper(per_step, reduction=None)(y, p), values, rtol=1e-6)
    # integer labels arrive as the output's floats, as Keras casts them
    labels = rng.integers(0, 2, (4, 1))
    assert _value(quantile, labels, p[:, 0, :1]) == pytest.approx(
        float(np.mean(quantile(labels.astype("float32"), p[:, 0, :1]))), rel=1e-6)


def test_fit_with_a_loss_function_and_a_subclass_saves_and_loads(rng, tmp_path):
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = x[:, :, 0].sum(1, keepdims=True)
    for loss, custom in ((quantile, {"quantile": quantile}), (ScaledSquare(0.5), {"ScaledSquare": ScaledSquare})):
        model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
        model.compile(fg.optimizers.Adam(0.01), loss)
        history = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]
        assert history[-1] < history[0]
        model.save(tmp_path / "m.keras")
        loaded = fg.load_model(tmp_path / "m.keras", custom_objects=custom)
        assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    with pytest.warns(UserWarning, match="custom_objects"):
        fg.load_model(tmp_path / "m.keras")  # (loaded uncompiled, saying what it needs)


def test_a_loss_fastgru_cannot_trace_is_refused_when_training_starts(rng):
    def numpy_loss(y_true, y_pred):
        return np.mean(np.square(np.asarray(y_true) - np.asarray(y_pred)), axis=-1)

    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("adam", numpy_loss)
    before = model.get_weights()
    with pytest.raises(UnsupportedKerasFeature, match="custom loss 'numpy_loss' cannot be trained in fastgru"):
        model.fit(rng.normal(size=(8, 5, 3)), np.zeros((8, 1)), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert fg.losses.get(numpy_loss)(np.zeros((2, 1)), np.ones((2, 1))) == 1.0  # (its values: the call on arrays)


@pytest.mark.keras
def test_training_with_custom_losses_matches_keras(keras, rng, tmp_path):
    x = rng.normal(size=(24, 6, 3)).astype("float32")
    y = (x[:, :, 0].sum(1, keepdims=True) + rng.normal(size=(24, 1))).astype("float32")
    weights = rng.uniform(0.5, 1.5, 24).astype("float32")
    ko = keras.ops

    def keras_quantile(y_true, y_pred):
        error = y_true - y_pred
        return ko.mean(ko.maximum(0.8 * error, (0.8 - 1.0) * error), axis=-1)

    def keras_log_cosh_mean(y_true, y_pred):
        return ko.mean(ko.log(ko.cosh(y_pred - y_true)))

    class KerasScaledSquare(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return 0.5 * ko.square(y_true - y_pred)

    keras_quantile.__name__ = "quantile"
    km = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    start = km.get_weights()
    for theirs, ours, sample_weight in ((keras_quantile, quantile, weights), (keras_log_cosh_mean, log_cosh_mean, None),
                                        (KerasScaledSquare(), ScaledSquare(0.5), weights)):
        km.set_weights(start)
        model = fg.Sequential([Input((6, 3)), GRU(4), Dense(1)])
        model.set_weights(start)
        km.compile(keras.optimizers.Adam(0.01), theirs)
        model.compile(fg.optimizers.Adam(0.01), ours)
        expected = km.fit(x, y, sample_weight=sample_weight, epochs=3, batch_size=8, shuffle=False,
                          verbose=0).history["loss"]
        got = model.fit(x, y, sample_weight=sample_weight, epochs=3, batch_size=8, shuffle=False,
                        verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        for a, b in zip(model.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.01), keras_quantile)
    km.save(tmp_path / "k.keras")  # (Keras writes the function by name; each library loads it given it)
    mine = fg.load_model(tmp_path / "k.keras", custom_objects={"quantile": quantile})
    assert mine.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)
    mine.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"quantile": keras_quantile})
    assert back.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)


def pearson(y_true, y_pred):  # (over the batch: each sample against the batch's mean)
    centred_true = y_true - ops.mean(y_true, axis=0)
    centred_pred = y_pred - ops.mean(y_pred, axis=0)
    r = ops.sum(centred_true * centred_pred, axis=0) / ops.sqrt(
        ops.sum(centred_true * centred_true, axis=0) * ops.sum(centred_pred * centred_pred, axis=0) + 1e-12)
    return 1.0 - ops.mean(r)


def test_a_loss_over_the_batch_broadcasting_its_statistics(rng):
    y, p = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    value, grad = fg.losses.get(pearson).value_and_grad(y, p)
    assert value == pytest.approx(float(pearson(y, p)), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_gradient(lambda q: np.float64(_value(pearson, y, q)), p, 1.0),
                               rtol=1e-6, atol=1e-9)


def test_compile_traces_a_changed_loss_anew(rng):
    class Pinball(fg.losses.Loss):
        def __init__(self, tau=0.1, **kwargs):
            super().__init__(**kwargs)
            self.tau = tau

        def call(self, y_true, y_pred):
            error = y_true - y_pred
            return ops.mean(ops.maximum(self.tau * error, (self.tau - 1.0) * error), axis=-1)

    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), np.full((8, 1), 3.0, "float32")
    loss = Pinball()
    assert loss.name == "pinball"  # (Keras's automatic name of a script's class)
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("sgd", loss)
    low = model.evaluate(x, y, verbose=0)
    loss.tau = 0.9
    model.compile("sgd", loss)  # (as Keras builds its train function anew: the attribute read again)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(9 * low, rel=1e-4)


def test_loss_function_wrapper_options_and_loss_functions_inside_a_loss(rng, tmp_path):
    def tilted(y_true, y_pred, tau=0.5):
        error = y_true - y_pred
        return ops.mean(ops.maximum(tau * error, (tau - 1.0) * error), axis=-1)

    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("sgd", fg.losses.LossFunctionWrapper(tilted, tau=0.8))
    model.fit(x, y, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"tilted": tilted})
    assert loaded.loss._fn_kwargs == {"tau": 0.8}
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)

    def with_mse(y_true, y_pred):
        return fg.losses.mean_squared_error(y_true, y_pred) + 0.1

    model.compile("sgd", with_mse)  # (a loss function inside a loss: one node of its trace, training/loss_node.py)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(
        float(np.mean((model.predict(x, verbose=0) - y) ** 2)) + 0.1, rel=1e-5)
    model.fit(x, y, verbose=0)


@pytest.mark.keras
def test_loss_subclass_and_wrapper_files_and_ranks_as_keras(keras, rng, tmp_path):
    ko = keras.ops

    def keras_tilted(y_true, y_pred, tau=0.5):
        error = y_true - y_pred
        return ko.mean(ko.maximum(tau * error, (tau - 1.0) * error), axis=-1)

    def tilted(y_true, y_pred, tau=0.5):
        error = y_true - y_pred
        return ops.mean(ops.maximum(tau * error, (tau - 1.0) * error), axis=-1)

    keras_tilted.__name__ = "tilted"
    from keras.src.losses.losses import LossFunctionWrapper as KerasWrapper

    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    ours.set_weights(km.get_weights())
    km.compile("sgd", KerasWrapper(keras_tilted, tau=0.8))
    ours.compile("sgd", fg.losses.LossFunctionWrapper(tilted, tau=0.8))
    km.save(tmp_path / "k.keras")
    ours.save(tmp_path / "ours.keras")
    expected = km.evaluate(x, y, verbose=0)
    assert fg.load_model(tmp_path / "k.keras", custom_objects={"tilted": tilted}).evaluate(x, y, verbose=0) == \
        pytest.approx(expected, rel=1e-5)
    assert keras.models.load_model(tmp_path / "ours.keras", custom_objects={"tilted": keras_tilted}).evaluate(
        x, y, verbose=0) == pytest.approx(expected, rel=1e-5)

    class KerasSquare(keras.losses.Loss):  # (targets (B,) against outputs (B, 1): Keras broadcasts to (B, B))
        def call(self, y_true, y_pred):
            return ko.square(y_true - y_pred)

    class Square(fg.losses.Loss):
        def call(self, y_true, y_pred):
            return ops.square(y_true - y_pred)

    km.compile(keras.optimizers.SGD(0.05), KerasSquare())
    ours.compile(fg.optimizers.SGD(0.05), Square())
    theirs = km.fit(x, y[:, 0], batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y[:, 0], batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)


def test_mean_with_sample_weight_divides_by_the_weights_before_broadcasting(rng):
    y, p = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    weights = rng.uniform(0.5, 1.5, (4, 1)).astype("float32")
    per_element = fg.losses.LossFunctionWrapper(lambda t, q: ops.square(t - q), reduction="mean_with_sample_weight")
    # (Keras's reduce_values: the weighted (B, C) values' sum over the sum of the (B, 1) weights)
    expected = float(np.sum((y - p) ** 2 * weights) / np.sum(weights))
    assert per_element(y, p, sample_weight=weights) == pytest.approx(expected, rel=1e-5)
    assert per_element.value_and_grad(y, p, sample_weight=weights)[0] == pytest.approx(expected, rel=1e-5)


def test_ops_crossentropies_train_inside_a_custom_loss(rng):
    def focal_like(y_true, y_pred):  # (a focal loss written with ops.binary_crossentropy, as scripts write it)
        bce = ops.binary_crossentropy(y_true, y_pred)
        return ops.mean(ops.square(1.0 - ops.exp(-bce)) * bce, axis=-1)

    y = rng.integers(0, 2, (6, 3)).astype(np.float64)
    p = rng.uniform(0.05, 0.95, (6, 3))
    value, grad = fg.losses.get(focal_like).value_and_grad(y, p)
    assert value == pytest.approx(float(np.mean(focal_like(y, p))), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_gradient(lambda q: np.float64(_value(focal_like, y, q)), p, 1.0),
                               rtol=1e-6, atol=1e-9)
    labels = rng.integers(0, 3, (6, 1)).astype(np.float64)
    sparse = fg.losses.LossFunctionWrapper(lambda t, q: ops.sparse_categorical_crossentropy(t, q, from_logits=True))
    logits = rng.normal(size=(6, 3))
    _, grad = sparse.value_and_grad(labels, logits)
    np.testing.assert_allclose(grad, numeric_gradient(lambda q: np.float64(_value(sparse, labels, q)), logits, 1.0),
                               rtol=1e-6, atol=1e-9)


@pytest.mark.keras
def test_ops_crossentropies_match_keras(keras, rng):
    t = rng.integers(0, 2, (4, 3)).astype("float32")
    p = rng.uniform(0.05, 0.95, (4, 3)).astype("float32")
    x = rng.normal(size=(4, 3)).astype("float32")
    one_hot = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    labels = np.array([0, 1, 2, 0])
    for name, target in (("binary_crossentropy", t), ("categorical_crossentropy", one_hot),
                         ("sparse_categorical_crossentropy", labels)):
        for output, from_logits in ((p, False), (x, True)):
            np.testing.assert_allclose(getattr(ops, name)(target, output, from_logits=from_logits),
                                       getattr(keras.ops, name)(target, output, from_logits=from_logits),
                                       rtol=1e-5, atol=1e-6, err_msg=f"{name} from_logits={from_logits}")
