"""Keras's tensors and variables in a Keras script run on fastgru: ``model(x).numpy()``, ``loss(y, p).numpy()``,
``metric.result().numpy()``, ``keras.ops.convert_to_numpy``, and the weights as variables (``model.weights[0]
.path``, ``.numpy()``, ``.assign()``; ``optimizer.apply_gradients(zip(grads, model.trainable_variables))``),
each compared with Keras's."""

from __future__ import annotations

import copy
import itertools
import json
import pickle

import numpy as np
import pytest

import fastgru as fg
from fastgru.eager import EagerArray, EagerScalar
from fastgru.variables import Variable

L = fg.layers


def _models(module):
    """The same architectures built in ``module`` (keras or fastgru): a Sequential with an Input, a Sequential
    built by ``build``, a Functional model, wrappers and BatchNormalization."""
    layers = module.layers
    seq = module.Sequential([module.Input((5, 3)), layers.Bidirectional(layers.GRU(4)), layers.Dense(2)])
    built = module.Sequential([layers.Dense(2)])
    built.build((None, 3))
    inputs = module.Input((5, 3))
    h = layers.LSTM(4)(inputs)
    h = layers.BatchNormalization()(h)
    functional = module.Model(inputs, layers.Dense(1, name="out")(h))
    td = module.Sequential([module.Input((5, 3)), layers.TimeDistributed(layers.Dense(2)), layers.SimpleRNN(2)])
    return [seq, built, functional, td]


def _paths(model) -> list:
    """Variable paths without the numbers Keras's and fastgru's name counters add (``dense_3`` -> ``dense``)."""
    import re

    return [(re.sub(r"_\d+(?=/|$)", "", w.path), w.name, bool(w.trainable)) for w in model.weights]


def test_variables_have_keras_s_names_paths_and_trainable_flags(keras):
    for theirs, ours in zip(_models(keras), _models(fg)):
        assert _paths(ours) == _paths(theirs)
        assert all(type(w) is Variable for w in ours.weights)


def test_variables_are_the_live_weights_and_the_same_objects():
    model = _models(fg)[0]
    dense = model.layers[-1]
    assert dense.kernel is model.weights[-2] is model.trainable_variables[-2] is dense.weights[0]
    assert model.layers[0].forward_layer.cell.kernel is model.weights[0]
    before = model.weights[-1]
    model.set_weights([np.full_like(w, 0.5) for w in model.get_weights()])
    assert model.weights[-1] is before and (before == 0.5).all()  # (set_weights keeps the arrays)
    dense.bias[...] = 2.0  # (writing into a variable writes the weight)
    assert (dense.get_weights()[1] == 2.0).all()
    assert all(type(w) is np.ndarray for w in model.get_weights())


def test_assign_matches_keras_and_is_checked(keras, rng):
    theirs, ours = _models(keras)[2], _models(fg)[2]
    ours.set_weights(theirs.get_weights())
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    for their_var, our_var in zip(theirs.weights, ours.weights):
        value = rng.standard_normal(our_var.shape).astype(np.float32)
        if "variance" in our_var.path:
            value = np.abs(value) + 0.5
        their_var.assign(value)
        assert our_var.assign(value) is our_var
    their_var, our_var = theirs.weights[-1], ours.weights[-1]
    their_var.assign_add(np.ones(1, np.float32))
    our_var.assign_add(np.ones(1, np.float32))
    their_var.assign_sub(np.full(1, 0.25, np.float32))
    our_var.assign_sub(np.full(1, 0.25, np.float32))
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for their_var, our_var in zip(theirs.weights, ours.weights):
        np.testing.assert_array_equal(our_var.numpy(), their_var.numpy())
    kernel = ours.weights[0]
    with pytest.raises(ValueError, match=r"must match. variable.shape=\(3, 16\), Received: value.shape=\(2, 16\)"):
        kernel.assign(np.zeros((2, 16)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        kernel.assign(np.full(kernel.shape, np.nan))
    with pytest.raises(ValueError, match="variance"):  # (the layer's own checks: no negative variance)
        ours.get_layer(index=2).moving_variance.assign(-np.ones(4))
    with pytest.raises(AttributeError, match="layer.trainable"):
        kernel.trainable = False
    assert np.isfinite(kernel).all()  # (nothing was written by the refused calls)


def test_variable_values_are_plain_numpy():
    kernel = _models(fg)[1].weights[0]
    assert type(kernel.numpy()) is np.ndarray and not np.shares_memory(kernel.numpy(), kernel)
    for derived in (kernel * 2, kernel[0], kernel + kernel, np.tanh(kernel), kernel.value):
        assert type(derived) is EagerArray
    assert type(kernel.sum()) is EagerScalar and type(np.asarray(kernel)) is np.ndarray
    assert type(pickle.loads(pickle.dumps(kernel))) is np.ndarray
    assert type(copy.deepcopy(kernel)) is np.ndarray and type(kernel.copy()) is np.ndarray
    assert repr(kernel).startswith("<Variable path=sequential") and "shape=(3, 2), dtype=float32" in repr(kernel)
    kernel += 1.0  # (in place: still the variable, the weight changed)
    assert type(kernel) is Variable


def test_eager_results_have_numpy_as_keras_s_tensors(keras, rng):
    theirs, ours = _models(keras)[0], _models(fg)[0]
    ours.set_weights(theirs.get_weights())
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    expected = theirs(x).numpy()
    for value in (ours(x), ours.layers[-1](ours.layers[0](x))):
        assert type(value) is EagerArray and type(value.numpy()) is np.ndarray
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.ops.softmax(x).numpy(), keras.ops.softmax(x).numpy(), rtol=1e-6)
    assert type(fg.ops.convert_to_numpy(ours(x))) is np.ndarray
    assert fg.ops.convert_to_tensor([1, 2], dtype="float32").numpy().dtype == np.float32
    assert type(ours.predict(x)) is np.ndarray  # (predict: NumPy, as Keras's)
    assert type(pickle.loads(pickle.dumps(ours(x)))) is np.ndarray
    inputs = {"a": fg.Input((3,), name="a"), "b": fg.Input((3,), name="b")}
    two = fg.Model(inputs, {"sum": L.Add()([inputs["a"], inputs["b"]]), "a": L.Dense(2)(inputs["a"])})
    out = two({"a": x[:, 0], "b": x[:, 1]})
    assert all(type(v) is EagerArray for v in out.values())


def test_losses_and_metrics_answer_numpy_and_history_holds_floats(keras, rng):
    y, p = rng.random((6, 3)).astype(np.float32), rng.random((6, 3)).astype(np.float32)
    ours, theirs = fg.losses.MeanSquaredError()(y, p), keras.losses.MeanSquaredError()(y, p)
    assert type(ours) is EagerScalar and ours.numpy() == pytest.approx(float(theirs.numpy()), rel=1e-6)
    assert json.loads(json.dumps(ours)) == ours and type(pickle.loads(pickle.dumps(ours))) is float
    our_metric, their_metric = fg.metrics.MeanAbsoluteError(), keras.metrics.MeanAbsoluteError()
    our_metric.update_state(y, p)
    their_metric.update_state(y, p)
    assert our_metric.result().numpy() == pytest.approx(float(their_metric.result().numpy()), rel=1e-6)
    model = fg.Sequential([fg.Input((3,)), L.Dense(3)])
    model.compile("adam", "mse", metrics=["mae"])
    history = model.fit(y, p, epochs=2, verbose=0)
    assert all(type(v) is float for values in history.history.values() for v in values)


@pytest.mark.parametrize("name, options", [("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
                                           ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1})])
def test_apply_gradients_on_trainable_variables_matches_keras(keras, rng, name, options):
    """A custom loop's step, ``optimizer.apply_gradients(zip(grads, model.trainable_variables))``, as Keras's
    (AdamW's ``exclude_from_weight_decay(var_list=[layer.bias])`` by variable, and by name)."""
    theirs, ours = _models(keras)[0], _models(fg)[0]
    ours.set_weights(theirs.get_weights())
    their_opt, our_opt = getattr(keras.optimizers, name)(**options), getattr(fg.optimizers, name)(**options)
    if name == "AdamW":
        their_opt.exclude_from_weight_decay(var_list=[theirs.layers[-1].bias], var_names=["recurrent"])
        our_opt.exclude_from_weight_decay(var_list=[ours.layers[-1].bias], var_names=["recurrent"])
    for _ in range(3):
        grads = [rng.standard_normal(w.shape).astype(np.float32) for w in ours.trainable_variables]
        their_opt.apply_gradients(zip(grads, theirs.trainable_variables))
        our_opt.apply_gradients(zip(grads, ours.trainable_variables))
    assert int(our_opt.iterations) == int(their_opt.iterations.numpy()) == 3
    for their_var, our_var in zip(theirs.weights, ours.weights):
        np.testing.assert_allclose(our_var.numpy(), their_var.numpy(), rtol=1e-5, atol=1e-6, err_msg=our_var.path)
    assert all(type(s) is np.ndarray for slots in our_opt.slots for s in slots.values())  # (no views kept)


def test_functions_layers_metrics_and_ops_answer_as_keras(keras, rng):
    """Loss, metric and activation functions answer ``.numpy()``; layers have Keras's variable lists; a metric is
    callable; Python numbers convert to float32/int32; an RNN over a cell is named ``rnn``."""
    y, p = rng.random((4, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)
    for name in ("mean_squared_error", "categorical_crossentropy", "huber"):
        np.testing.assert_allclose(getattr(fg.losses, name)(y, p).numpy(), getattr(keras.losses, name)(y, p).numpy(),
                                   rtol=1e-5)
    np.testing.assert_array_equal(fg.metrics.categorical_accuracy(y, p).numpy(),
                                  keras.metrics.categorical_accuracy(y, p).numpy())
    for name in ("relu", "softmax", "silu", "gelu", "log_softmax"):
        np.testing.assert_allclose(getattr(fg.activations, name)(p).numpy(), getattr(keras.activations, name)(p).numpy(),
                                   rtol=1e-5, atol=1e-7)
    for name, options in (("softmax", {"axis": 0}), ("elu", {"alpha": 0.5}), ("gelu", {"approximate": True})):
        np.testing.assert_allclose(getattr(fg.activations, name)(p - 0.5, **options).numpy(),
                                   getattr(keras.activations, name)(p - 0.5, **options).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fg.activations.relu(p, max_value=0.5).numpy(),
                               keras.activations.relu(p, max_value=0.5).numpy())
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="at Keras's defaults, or as its keras.ops"):
        fg.activations.softmax(p, temperature=2.0)
    ours, theirs = fg.metrics.MeanSquaredError(), keras.metrics.MeanSquaredError()
    assert ours(y, p).numpy() == pytest.approx(float(theirs(y, p)), rel=1e-6)
    for layer_module, shape in ((L, (None, 4)), (keras.layers, (None, 4))):
        bn = layer_module.BatchNormalization()
        bn.build(shape)
        assert [w.name for w in bn.non_trainable_variables] == ["moving_mean", "moving_variance"]
        assert [w.name for w in bn.trainable_variables] == ["gamma", "beta"] and len(bn.variables) == 4
    for value in ([1.0, 2.0], 3.0, [1, 2]):
        assert fg.ops.convert_to_tensor(value).dtype == keras.ops.convert_to_tensor(value).dtype
    assert fg.ops.tanh([0.5, 1.0]).dtype == np.float32 and fg.ops.tanh(np.ones(2)).dtype == np.float64
    dense = L.Dense(2, kernel_regularizer="l2", kernel_constraint="non_neg")
    dense.build((None, 3))
    assert type(dense.kernel.regularizer).__name__ == "L2" and dense.bias.regularizer is None
    assert type(dense.kernel.constraint).__name__ == "NonNeg" and dense.kernel.aggregation == "none"
    inputs = fg.Input((5, 3))
    model = fg.Model(inputs, L.RNN(L.GRUCell(2))(inputs))
    assert model.layers[1].name.startswith("rnn") and model.weights[0].path.endswith("/gru_cell/kernel")


def test_an_embedding_s_indexed_slices_gradient_steps_as_keras(keras, rng):
    """``tape.gradient`` of an Embedding is TensorFlow's IndexedSlices: ``apply_gradients`` sums it into the table,
    as TensorFlow does (it was refused with a shape error)."""
    import tensorflow as tf

    theirs = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(10, 2)])
    ours = fg.Sequential([fg.Input((3,), dtype="int32"), L.Embedding(10, 2)])
    ours.set_weights(theirs.get_weights())
    tokens = np.array([[1, 2, 1], [4, 1, 0]], np.int32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(theirs(tokens) ** 2)
    grads = tape.gradient(loss, theirs.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices)
    for optimizer, variables in ((keras.optimizers.Adam(0.1), theirs.trainable_variables),
                                 (fg.optimizers.Adam(0.1), ours.trainable_variables)):
        optimizer.apply_gradients(zip(grads, variables))
    np.testing.assert_allclose(ours.get_weights()[0], theirs.get_weights()[0], rtol=1e-6, atol=1e-7)


def test_a_loaded_model_s_paths_are_keras_s(keras, tmp_path, rng):
    """Keras builds a loaded model's layers outside any name scope: no model or wrapper prefix."""
    import re

    theirs = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.GRU(4)),
                               keras.layers.Dense(2)])
    theirs.save(tmp_path / "m.keras")
    loaded, ours = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")

    def strip(w):
        return re.sub(r"_\d+(?=/|$)", "", w.path)

    assert [strip(w) for w in ours.weights] == [strip(w) for w in loaded.weights]
    assert strip(ours.weights[0]) == "forward_gru/gru_cell/kernel"


def test_unreduced_losses_are_keras_s_and_refused_in_training(keras, rng):
    y, p = rng.random((4, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)
    weights = np.array([1.0, 2.0, 0.0, 0.5], np.float32)
    for reduction, given in itertools.product((None, "none"), (weights, weights[:, None])):  # ((4, 1): (4, 1) out)
        ours = fg.losses.MeanSquaredError(reduction=reduction)(y, p, sample_weight=given)
        theirs = keras.losses.MeanSquaredError(reduction=reduction)(y, p, sample_weight=given)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    model = fg.Sequential([fg.Input((3,)), L.Dense(3)])
    model.compile("sgd", fg.losses.MeanSquaredError(reduction=None))
    for run in (model.fit, model.evaluate):
        with pytest.raises(fg.errors.UnsupportedKerasFeature, match="fit and evaluate need a reduced loss"):
            run(y, p, verbose=0)


def test_index_and_boolean_ops_on_arrays_have_keras_s_dtypes(keras, rng):
    p = rng.random((3, 4)).astype(np.float32)
    for name, args in (("argmax", (p, -1)), ("argmin", (p, 1)), ("argsort", (p,)), ("greater", (p, 0.5)),
                       ("isnan", (p,)), ("logical_not", (p > 0.5,))):
        ours, theirs = getattr(fg.ops, name)(*args), getattr(keras.ops, name)(*args)
        assert ours.dtype == theirs.numpy().dtype, name
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)


def test_mean_with_sample_weight_reduction_is_keras_s_in_values_and_training(keras, rng):
    y, p = rng.random((8, 3)).astype(np.float32), rng.random((8, 3)).astype(np.float32)
    weights = rng.random(8).astype(np.float32)
    for name in ("MeanSquaredError", "CategoricalCrossentropy", "Huber"):
        ours = getattr(fg.losses, name)(reduction="mean_with_sample_weight")(y, p, sample_weight=weights)
        theirs = getattr(keras.losses, name)(reduction="mean_with_sample_weight")(y, p, sample_weight=weights)
        assert float(ours) == pytest.approx(float(theirs), rel=1e-5), name
    theirs = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    ours = fg.Sequential([fg.Input((3,)), L.Dense(3)])
    ours.set_weights(theirs.get_weights())
    for lib, model in ((keras, theirs), (fg, ours)):
        model.compile(lib.optimizers.SGD(0.1), lib.losses.MeanSquaredError(reduction="mean_with_sample_weight"))
        model.fit(y, p, sample_weight=weights, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
