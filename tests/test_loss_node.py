"""Built-in losses called inside a custom loss (training/loss_node.py): a loss object
(``SparseCategoricalCrossentropy(reduction=None)(y_true, y_pred)``, keras.io's token-classification loss) or a loss
function on the traced symbolic tensors is one node of the trace, with its values and gradient: against float64
central differences, against Keras's training, and refused by name where its targets would need a gradient."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru import ops
from fastgru.errors import UnsupportedKerasFeature

L = fg.losses


def non_padding(y_true, y_pred):  # (keras.io "Named Entity Recognition using Transformers": padding tokens are 0)
    loss = L.SparseCategoricalCrossentropy(reduction=None)(y_true, y_pred)
    mask = ops.cast(y_true > 0, "float64")
    return ops.sum(loss * mask) / ops.sum(mask)


def weighted_by_mask(y_true, y_pred):  # (the mask as the loss object's sample weights)
    return L.SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred, sample_weight=ops.cast(y_true > 0,
                                                                                                   "float64"))


def ignoring_class_zero(y_true, y_pred):
    return (L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)(y_true, y_pred)
            + 0.01 * ops.mean(ops.square(y_pred)))


def huber_and_mae(y_true, y_pred):  # (an object with the default reduction, plus a loss function's values)
    return L.Huber(delta=0.5)(y_true, y_pred) + 0.1 * L.mean_absolute_error(y_true, y_pred)


def doubled_bce(y_true, y_pred):
    return 2.0 * L.binary_crossentropy(y_true, y_pred, from_logits=True)


def summed_mse(y_true, y_pred):
    return L.MeanSquaredError(reduction="sum")(y_true, y_pred)


def _labels(rng, shape):
    return rng.integers(0, 4, shape).astype(np.float64)


CASES = {
    "object_unreduced": (non_padding, lambda r: (_labels(r, (5, 6)), r.dirichlet(np.ones(4), (5, 6)))),
    "tensor_sample_weight": (weighted_by_mask, lambda r: (_labels(r, (5, 6)), r.normal(size=(5, 6, 4)))),
    "ignore_class": (ignoring_class_zero, lambda r: (_labels(r, (5, 6)), r.normal(size=(5, 6, 4)))),
    "object_and_function": (huber_and_mae, lambda r: (r.normal(size=(5, 3)), r.normal(size=(5, 3)))),
    "function_from_logits": (doubled_bce, lambda r: (r.integers(0, 2, (5, 3)).astype(float), r.normal(size=(5, 3)))),
    "sum_reduction": (summed_mse, lambda r: (r.normal(size=(5, 3)), r.normal(size=(5, 3)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_central_differences_in_float64(case, rng):
    fn, make = CASES[case]
    y, p = make(rng)
    loss = L.get(fn)
    value, grad = loss.value_and_grad(y, p)
    assert value == pytest.approx(float(loss(y, p)), rel=1e-12)  # (the trace's value: the call's on arrays)
    expected = numeric_gradient(lambda q: np.float64(loss.value_and_grad(y, q)[0]), p, 1.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-7)


def _tagger(module):
    return module.Sequential([module.Input((7,)), module.layers.Embedding(30, 8, mask_zero=False),
                              module.layers.GRU(8, return_sequences=True),
                              module.layers.Dense(5, activation="softmax")])


def test_token_loss_trains_and_saves(rng, tmp_path):
    x, y = rng.integers(0, 30, (16, 7)), rng.integers(0, 5, (16, 7))
    model = _tagger(fg)
    model.compile("adam", non_padding)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert history[1] < history[0]
    model.save(tmp_path / "tagger.keras")
    loaded = fg.load_model(tmp_path / "tagger.keras", custom_objects={"non_padding": non_padding})
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)


def test_targets_computed_from_the_output_are_refused(rng):
    def self_distance(y_true, y_pred):
        return L.mean_squared_error(y_pred[:, :1], y_pred[:, 1:])

    model = fg.Sequential([fg.Input((4, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    model.compile("sgd", self_distance)
    with pytest.raises(UnsupportedKerasFeature, match="targets are computed from y_pred"):
        model.fit(rng.normal(size=(6, 4, 3)), np.zeros((6, 2)), verbose=0)


def test_a_loss_on_symbolic_tensors_outside_a_custom_loss_is_refused():
    a, b = fg.Input((3,)), fg.Input((3,))
    with pytest.raises(UnsupportedKerasFeature, match="only inside a custom loss's call"):
        L.MeanSquaredError()(a, b)
    with pytest.raises(UnsupportedKerasFeature, match="only inside a custom loss's call"):
        L.mean_squared_error(a, b)


@pytest.mark.keras_graph  # (many steps: faster against the graph)
@pytest.mark.keras
def test_token_classification_loss_trains_as_keras(keras, rng):
    class KerasNonPadding(keras.losses.Loss):  # (keras.io's CustomNonPaddingTokenLoss)
        def call(self, y_true, y_pred):
            loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=False, reduction=None)
            loss = loss_fn(y_true, y_pred)
            mask = keras.ops.cast((y_true > 0), dtype="float32")
            return keras.ops.sum(loss * mask) / keras.ops.sum(mask)

    class NonPadding(L.Loss):
        def call(self, y_true, y_pred):
            loss = L.SparseCategoricalCrossentropy(from_logits=False, reduction=None)(y_true, y_pred)
            mask = ops.cast((y_true > 0), dtype="float32")
            return ops.sum(loss * mask) / ops.sum(mask)

    def keras_mixed(y_true, y_pred):
        return keras.losses.Huber(0.5)(y_true, y_pred) + 0.1 * keras.losses.mean_absolute_error(y_true, y_pred)

    x, y = rng.integers(0, 30, (24, 7)), rng.integers(0, 5, (24, 7))
    km = _tagger(keras)
    model = _tagger(fg)
    model.set_weights(km.get_weights())
    km.compile(keras.optimizers.Adam(0.01), KerasNonPadding())
    model.compile(fg.optimizers.Adam(0.01), NonPadding())
    expected = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    got = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)

    xs, targets = rng.normal(size=(24, 5, 3)).astype("float32"), rng.normal(size=(24, 2)).astype("float32")
    weights = rng.uniform(0.5, 1.5, 24).astype("float32")
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2)])
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    model.set_weights(km.get_weights())
    km.compile(keras.optimizers.Adam(0.01), keras_mixed)
    model.compile(fg.optimizers.Adam(0.01), huber_and_mae)
    expected = km.fit(xs, targets, sample_weight=weights, epochs=3, batch_size=8, shuffle=False,
                      verbose=0).history["loss"]
    got = model.fit(xs, targets, sample_weight=weights, epochs=3, batch_size=8, shuffle=False,
                    verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_built_in_loss_on_y_pred_reads_the_outputs_mask(rng):
    def inner_mean(y_true, y_pred):  # (Keras's loss object reads the mask y_pred carries)
        return L.SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred)

    y, logits = rng.integers(0, 3, (4, 5)).astype(np.float64), rng.normal(size=(4, 5, 3))
    mask = np.ones((4, 5), bool)
    mask[:2, 3:] = False
    values = L.sparse_categorical_crossentropy(y, logits, from_logits=True)
    loss = L.get(inner_mean)
    value, grad = loss.value_and_grad(y, logits, mask=mask)
    assert value == pytest.approx(float(values[mask].mean()), rel=1e-12)  # (the inner mean over unmasked steps)
    assert loss(y, logits, mask=mask) == pytest.approx(value, rel=1e-12)  # (evaluate: the same)
    expected = numeric_gradient(lambda q: np.float64(loss.value_and_grad(y, q, mask=mask)[0]), logits, 1.0)
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


def test_an_endpoint_layer_weighs_its_added_loss_and_a_lambda_rate_saves_its_value(rng, tmp_path):
    class WeightedEndpoint(fg.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.loss_fn = L.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits, sample_weights):
            self.add_loss(self.loss_fn(targets, logits, sample_weights))
            return ops.sigmoid(logits)

    x, t, w = fg.Input((6, 3)), fg.Input((1,)), fg.Input((1,))
    logits = fg.layers.Dense(1)(fg.layers.GRU(4)(x))
    model = fg.Model([x, t, w], WeightedEndpoint()(t, logits, w))
    data = [rng.normal(size=(8, 6, 3)), rng.integers(0, 2, (8, 1)).astype(np.float64), rng.uniform(0.5, 2, (8, 1))]
    model.compile(fg.optimizers.Adam(lambda: 0.01))
    probs = model.predict(data)
    z = np.log(probs / (1 - probs))
    values = np.maximum(z, 0) - z * data[1] + np.log1p(np.exp(-np.abs(z)))
    assert model.evaluate(data, verbose=0) == pytest.approx(float(np.mean(values * data[2])), rel=1e-4)
    model.fit(data, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="function without a name .* its current value 0.01 is written"):
        model.save(tmp_path / "m.keras")
