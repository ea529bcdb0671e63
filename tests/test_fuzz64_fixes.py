"""Fixes from fuzz round 64 and the session's carried items: TimeDistributed over a Sequential given without an
Input (a video model's per-frame CNN), built on each step's shape; ConvLSTM weights' Keras paths
(``conv_lstm1d/conv_lstm_cell/kernel``)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru import ops
from fastgru.layers import GRU, Conv2D, ConvLSTM1D, Dense, Flatten, Input, MaxPooling2D, TimeDistributed


def _per_frame_model():
    frames = Input((5, 8, 8, 1))
    cnn = fg.Sequential([Conv2D(2, 3, name="conv"), MaxPooling2D(), Flatten(), Dense(4, name="proj")], name="cnn")
    features = TimeDistributed(cnn, name="frames")(frames)
    return fg.Model(frames, Dense(1)(GRU(3)(features)))


def test_time_distributed_builds_an_unbuilt_sequential_on_each_step(rng):
    model = _per_frame_model()
    td = model.layers[1]
    assert td.layer.built and td.layer.input_shape == (None, 8, 8, 1)
    assert [w.path for w in model.weights][:4] == [
        "frames/cnn/conv/kernel", "frames/cnn/conv/bias", "frames/cnn/proj/kernel", "frames/cnn/proj/bias"]
    x = rng.normal(size=(3, 5, 8, 8, 1)).astype("float32")
    per_frame = fg.Sequential([Input((8, 8, 1))] + [type(l).from_config(l.get_config()) for l in td.layer.layers[1:]])
    per_frame.set_weights(td.get_weights())
    np.testing.assert_allclose(td(x)[:, 2], per_frame.predict(x[:, 2], verbose=0), rtol=1e-6)


def test_time_distributed_unbuilt_sequential_trains_and_round_trips(rng, tmp_path):
    model = _per_frame_model()
    x = rng.normal(size=(4, 5, 8, 8, 1)).astype("float32")
    before = [w.copy() for w in model.get_weights()]
    model.compile("adam", "mse")
    model.fit(x, np.ones((4, 1)), epochs=2, verbose=0)
    assert not np.allclose(model.get_weights()[0], before[0])
    model.save(tmp_path / "td.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "td.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_time_distributed_unbuilt_sequential_in_a_sequential(rng):
    model = fg.Sequential([Input((5, 6, 6, 1)), TimeDistributed(fg.Sequential([Conv2D(2, 3), Flatten()])), GRU(2)])
    assert model.predict(rng.normal(size=(2, 5, 6, 6, 1)).astype("float32"), verbose=0).shape == (2, 2)


def test_conv_lstm_weight_paths_hold_keras_cell():
    model = fg.Sequential([Input((4, 6, 2)), ConvLSTM1D(3, 3, padding="same", name="clstm")], name="video")
    assert [w.path for w in model.weights] == ["video/clstm/conv_lstm_cell/kernel",
                                               "video/clstm/conv_lstm_cell/recurrent_kernel",
                                               "video/clstm/conv_lstm_cell/bias"]


@pytest.mark.keras
def test_keras_time_distributed_sequential_both_ways(keras, rng, tmp_path):
    L = keras.layers
    frames = keras.Input((5, 8, 8, 1))
    h = L.TimeDistributed(keras.Sequential([L.Conv2D(2, 3), L.MaxPooling2D(), L.Flatten(), L.Dense(4)]))(frames)
    km = keras.Model(frames, L.Dense(1)(L.GRU(3)(h)))
    x = rng.normal(size=(4, 5, 8, 8, 1)).astype("float32")
    km.save(tmp_path / "k.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k.keras").predict(x, verbose=0), km.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    ours = _per_frame_model()
    ours.set_weights(km.get_weights())
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0),
                               km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_optimizer_variables_before_and_after_a_step(rng):
    model = fg.Sequential([Input((4, 3)), GRU(2), Dense(1)])
    model.compile(fg.optimizers.Adam(amsgrad=True), "mse")
    assert [v.numpy() for v in model.optimizer.variables] == [0, np.float32(0.001)]
    model.fit(rng.normal(size=(4, 4, 3)), np.ones((4, 1)), verbose=0)
    variables = model.optimizer.variables
    assert len(variables) == 2 + 3 * len(model.trainable_weights)
    assert variables[0].numpy() == 1
    assert np.shares_memory(variables[2], model.optimizer.slots[0]["momentum"])  # (live views, as Keras's)
    model.compile(fg.optimizers.SGD(learning_rate=fg.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)), "mse")
    assert len(model.optimizer.variables) == 1  # (a schedule's rate is no variable)


@pytest.mark.keras
@pytest.mark.parametrize("name", ["adam", "rmsprop", "nadam", "adamw", "sgd"])
def test_optimizer_variables_match_keras(keras, rng, name):
    L = keras.layers
    km = keras.Sequential([keras.Input((4, 3)), L.GRU(2), L.Dense(1)])
    ours = fg.Sequential([Input((4, 3)), GRU(2), Dense(1)])
    ours.set_weights(km.get_weights())
    x, y = rng.normal(size=(8, 4, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    km.compile(keras.optimizers.get(name), "mse")
    ours.compile(name, "mse")
    km.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    theirs = [np.asarray(v.numpy()) for v in km.optimizer.variables]
    mine = [np.asarray(v.numpy()) for v in ours.optimizer.variables]
    assert [a.shape for a in mine] == [a.shape for a in theirs]
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-7)


def test_time_distributed_sequential_config_round_trips(rng):
    td = TimeDistributed(fg.Sequential([Conv2D(2, 3), Flatten()]))
    assert type(TimeDistributed.from_config(td.get_config()).layer).__name__ == "Sequential"
    frames = Input((5, 8, 8, 1))
    model = fg.Model(frames, GRU(2)(td(frames)))
    x = rng.normal(size=(2, 5, 8, 8, 1)).astype("float32")
    for copy in (fg.models.clone_model(model), fg.models.model_from_json(model.to_json())):
        copy.set_weights(model.get_weights())
        np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))


def max_abs_err(y_true, y_pred):
    """A script's own metric function (compile(metrics=[max_abs_err]) as in Keras)."""
    return fg.ops.max(fg.ops.abs(y_true - y_pred), axis=-1)


def _regression(rng):
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    return x, x[:, :, 0].sum(1, keepdims=True)


def test_metric_function_in_compile_fit_save_and_load(rng, tmp_path):
    x, y = _regression(rng)
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("sgd", "mse", metrics=[max_abs_err])
    history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert sorted(history) == ["loss", "max_abs_err"]
    expected = np.mean([np.max(np.abs(y[i:i + 8] - model.predict(x[i:i + 8], verbose=0)), axis=-1)
                        for i in (0, 8)])
    assert model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["max_abs_err"] == pytest.approx(expected,
                                                                                                           rel=1e-5)
    model.save(tmp_path / "m.keras")  # (the function serialized by name, as Keras writes it)
    with pytest.warns(UserWarning, match="max_abs_err.*custom_objects"):
        assert list(fg.load_model(tmp_path / "m.keras").evaluate(x, y, verbose=0, return_dict=True)) == ["loss"]
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"max_abs_err": max_abs_err})
    assert loaded.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["max_abs_err"] == pytest.approx(
        expected, rel=1e-5)
    loaded.save(tmp_path / "again.keras")


def test_registered_metric_function_loads_without_custom_objects(rng, tmp_path):
    @fg.saving.register_keras_serializable(package="fuzz64")
    def worst(y_true, y_pred):
        return fg.ops.max(fg.ops.abs(y_true - y_pred), axis=-1)

    x, y = _regression(rng)
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("sgd", "mse", metrics=[worst])
    model.save(tmp_path / "m.keras")
    assert "worst" in fg.load_model(tmp_path / "m.keras").evaluate(x, y, verbose=0, return_dict=True)


def test_loss_functions_take_keras_options():
    yt = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "float32")
    yp = np.array([[0.2, 2.0, -1.0], [0.5, 0.1, 0.3]], "float32")
    losses = fg.losses
    np.testing.assert_allclose(losses.binary_crossentropy(yt, yp, from_logits=True),
                               losses.BinaryCrossentropy(from_logits=True, reduction=None)(yt, yp))
    np.testing.assert_allclose(losses.huber(yt, yp, delta=0.5), losses.Huber(delta=0.5, reduction=None)(yt, yp))
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(np.array([1, 0]), yp, from_logits=True),
                               losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(
                                   np.array([1, 0]), yp))
    with pytest.raises(TypeError, match="huber.*delta_x"):
        losses.huber(yt, yp, delta_x=0.5)


@pytest.mark.keras
def test_metric_function_and_loss_options_match_keras(keras, rng):
    x, y = _regression(rng)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    ours.set_weights(km.get_weights())

    def keras_max_abs_err(y_true, y_pred):
        return keras.ops.max(keras.ops.abs(y_true - y_pred), axis=-1)

    keras_max_abs_err.__name__ = "max_abs_err"
    km.compile("sgd", "mse", metrics=[keras_max_abs_err])
    ours.compile("sgd", "mse", metrics=[max_abs_err])
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    mine = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    for key in ("loss", "max_abs_err"):
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5)
    yt, yp = rng.integers(0, 2, (4, 3)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")
    for name, options in [("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}),
                          ("categorical_crossentropy", {"from_logits": True}), ("huber", {"delta": 0.3}),
                          ("binary_focal_crossentropy", {"gamma": 1.0, "from_logits": True})]:
        np.testing.assert_allclose(getattr(fg.losses, name)(yt, yp, **options),
                                   getattr(keras.losses, name)(yt, yp, **options), rtol=1e-5, err_msg=name)


def test_one_frozen_direction_of_a_bidirectional_trains_the_other(rng, tmp_path):
    from fastgru.layers import LSTM, Bidirectional

    x, y = _regression(rng)
    model = fg.Sequential([Input((5, 3)), Bidirectional(LSTM(3)), Dense(1)])
    bidirectional = model.layers[0]
    bidirectional.forward_layer.trainable = False
    assert len(model.trainable_weights) == 5
    forward, backward = bidirectional.forward_layer.get_weights(), bidirectional.backward_layer.get_weights()
    model.compile(fg.optimizers.SGD(0.05), "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(bidirectional.forward_layer.get_weights(), forward))
    assert not np.allclose(bidirectional.backward_layer.get_weights()[0], backward[0])
    model.save(tmp_path / "m.keras")
    assert len(fg.load_model(tmp_path / "m.keras").trainable_weights) == 5


@pytest.mark.keras
def test_one_frozen_direction_trains_as_keras(keras, rng):
    from fastgru.layers import LSTM, Bidirectional

    x, y = _regression(rng)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(keras.layers.LSTM(3)),
                           keras.layers.Dense(1)])
    ours = fg.Sequential([Input((5, 3)), Bidirectional(LSTM(3)), Dense(1)])
    ours.set_weights(km.get_weights())
    km.layers[0].backward_layer.trainable = False
    ours.layers[0].backward_layer.trainable = False
    km.compile(keras.optimizers.SGD(0.05), "mse")
    ours.compile(fg.optimizers.SGD(0.05), "mse")
    theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_seeded_initializer_gives_a_layer_the_same_weights_every_time():
    def kernel(initializer, layer_cls=Dense, shape=(None, 4)):
        layer = layer_cls(3, kernel_initializer=initializer)
        layer.build(shape)
        return layer.get_weights()[0]

    seeded = kernel(fg.initializers.GlorotUniform(seed=1))
    np.testing.assert_array_equal(kernel(fg.initializers.GlorotUniform(seed=1)), seeded)
    np.testing.assert_array_equal(kernel({"class_name": "GlorotUniform", "config": {"seed": 1}}), seeded)
    np.testing.assert_array_equal(fg.initializers.GlorotUniform(seed=1)((4, 3)), seeded)
    assert not np.array_equal(kernel(fg.initializers.GlorotUniform(seed=2)), seeded)
    assert not np.array_equal(kernel(fg.initializers.GlorotUniform()), kernel(fg.initializers.GlorotUniform()))
    np.testing.assert_array_equal(kernel(fg.initializers.Orthogonal(seed=5), GRU, (None, 6, 4)),
                                  kernel(fg.initializers.Orthogonal(seed=5), GRU, (None, 6, 4)))


@pytest.mark.keras
def test_from_config_of_keras_layer_configs(keras, rng):
    L = keras.layers
    km = keras.Sequential([keras.Input((6, 3)), L.Conv1D(4, 2, padding="same"), L.BatchNormalization(),
                           L.GRU(4, return_sequences=True), L.LayerNormalization(), L.Dense(2)])
    km.layers[1].set_weights([w + rng.normal(0, 0.1, w.shape).astype("float32") for w in km.layers[1].get_weights()])
    ours = fg.Sequential.from_config(km.get_config())
    ours.set_weights(km.get_weights())
    x = rng.normal(size=(3, 6, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for keras_layer, ours_cls in [(L.ConvLSTM1D(2, 2), fg.layers.ConvLSTM1D), (L.GRUCell(3), fg.layers.GRUCell),
                                  (L.LSTMCell(3, unit_forget_bias=False), fg.layers.LSTMCell)]:
        assert ours_cls.from_config(keras_layer.get_config()).get_config()["filters" if "Conv" in ours_cls.__name__
                                                                            else "units"] in (2, 3)
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="renorm=True"):
        fg.layers.BatchNormalization.from_config({**km.layers[1].get_config(), "renorm": True})


def _true_positives_class(lib):
    """keras.io's custom-metric example (state in add_variable), written against ``lib`` (keras or fastgru)."""

    class CategoricalTruePositives(lib.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = lib.ops.reshape(lib.ops.argmax(y_pred, axis=1), (-1, 1))
            values = lib.ops.cast(lib.ops.cast(y_true, "int32") == lib.ops.cast(y_pred, "int32"), "float32")
            if sample_weight is not None:
                values = lib.ops.multiply(values, lib.ops.cast(sample_weight, "float32"))
            self.true_positives.assign_add(lib.ops.sum(values))

        def result(self):
            return self.true_positives.value

    return CategoricalTruePositives


def test_keras_style_metric_subclass_with_add_variable(rng, tmp_path):
    metric_cls = _true_positives_class(fg)
    metric = metric_cls()
    probabilities = np.eye(3, dtype="float32")[[0, 1, 2, 0]]
    assert metric(np.array([[0], [1], [0], [0]]), probabilities) == 3.0
    result = metric.result()
    metric.update_state(np.array([[0]]), probabilities[:1])
    assert result == 3.0 and metric.result() == 4.0  # (a result is the value of its time)
    metric.reset_state()  # (Keras's default: the variables back to their initial values)
    assert metric.result() == 0.0 and [v.name for v in metric.variables] == ["ctp"]
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.integers(0, 3, (16, 1))
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[metric_cls()])
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["categorical_true_positives"]
    assert all(isinstance(v, float) and 0 <= v <= 16 for v in history)
    expected = float(np.sum(np.argmax(model.predict(x, verbose=0), axis=1) == y[:, 0]))
    assert model.evaluate(x, y, verbose=0, return_dict=True)["categorical_true_positives"] == expected
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"CategoricalTruePositives": metric_cls})
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["categorical_true_positives"] == expected


@pytest.mark.keras_graph  # eagerly, TensorFlow fails to make the metric's variables
@pytest.mark.keras
def test_keras_style_metric_subclass_matches_keras_both_ways(keras, rng, tmp_path):
    x, y = rng.normal(size=(32, 6, 3)).astype("float32"), rng.integers(0, 3, (32, 1))
    weights = rng.uniform(0.5, 1.5, 32).astype("float32")
    theirs_cls, ours_cls = _true_positives_class(keras), _true_positives_class(fg)
    km = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4), keras.layers.Dense(3, activation="softmax")])
    ours = fg.Sequential([Input((6, 3)), GRU(4), Dense(3, activation="softmax")])
    ours.set_weights(km.get_weights())
    logs = []
    for model, cls in ((km, theirs_cls), (ours, ours_cls)):
        model.compile("sgd", "sparse_categorical_crossentropy", metrics=[cls()], weighted_metrics=[cls(name="w")])
        logs.append(model.fit(x, y, sample_weight=weights, epochs=2, batch_size=8, shuffle=False,
                              verbose=0).history)
    for key in ("loss", "categorical_true_positives", "w"):
        np.testing.assert_allclose(logs[1][key], logs[0][key], rtol=1e-5)
    km.save(tmp_path / "k.keras")
    ours.save(tmp_path / "ours.keras")
    mine = fg.load_model(tmp_path / "k.keras", custom_objects={"CategoricalTruePositives": ours_cls})
    back = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"CategoricalTruePositives": theirs_cls})
    for model in (mine, back):
        result = model.evaluate(x, y, verbose=0, return_dict=True)
        assert result["categorical_true_positives"] == km.evaluate(x, y, verbose=0, return_dict=True)[
            "categorical_true_positives"]


def _causal_self_attention(lib):
    """keras.io's Transformer decoder's causal mask: built with ops.arange and tiled to the batch."""
    ops = lib.ops

    class CausalSelfAttention(lib.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.attention = lib.layers.MultiHeadAttention(num_heads=2, key_dim=4)

        def call(self, x):
            batch, steps = ops.shape(x)[0], ops.shape(x)[1]
            mask = ops.cast(ops.arange(steps)[:, None] >= ops.arange(steps), "int32")
            mask = ops.tile(ops.reshape(mask, (1, steps, steps)), (batch, 1, 1))
            return self.attention(x, x, attention_mask=mask)

    return CausalSelfAttention


def _causal_model(lib):
    inputs = lib.Input((6, 4))
    h = _causal_self_attention(lib)()(inputs)
    return lib.Model(inputs, lib.layers.Dense(1)(lib.layers.GlobalAveragePooling1D()(h)))


def test_a_causal_mask_tiled_to_the_batch_trains_and_evaluates(rng):
    x, y = rng.normal(size=(16, 6, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    model = _causal_model(fg)
    model.compile("adam", "mse")
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y)).history
    assert np.isfinite(history["val_loss"]).all()
    assert model.evaluate(x, y, batch_size=8, verbose=0) == pytest.approx(
        float(np.mean((model.predict(x, verbose=0) - y) ** 2)), rel=1e-5)


def test_evaluate_runs_a_custom_layer_whose_call_cannot_be_traced(rng):
    class NumpyScale(fg.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones")

        def call(self, x):
            return np.asarray(x) * np.asarray(self.scale)  # (NumPy: no trace, no gradient)

    model = fg.Sequential([Input((3,)), NumpyScale(), Dense(1)])
    model.compile("sgd", "mse")
    x, y = rng.normal(size=(8, 3)).astype("float32"), np.zeros((8, 1), "float32")
    expected = float(np.mean(model.predict(x, verbose=0) ** 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.test_on_batch(x, y) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="cannot be trained"):
        model.fit(x, y, verbose=0)


@pytest.mark.keras
def test_a_causal_mask_tiled_to_the_batch_trains_as_keras(keras, rng):
    x, y = rng.normal(size=(16, 6, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    km, ours = _causal_model(keras), _causal_model(fg)
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.01), "mse")
    ours.compile(fg.optimizers.Adam(0.01), "mse")
    theirs = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)


def test_tf_keras_odds_and_ends(rng):
    # a mixed-precision SavedModel's LossScaleOptimizerV3 around tf_keras 2.11+'s "Custom>Adam"
    optimizer = fg.optimizers.get({"class_name": "LossScaleOptimizerV3", "config": {
        "inner_optimizer": {"class_name": "Custom>Adam", "config": {"learning_rate": 0.003}}}})
    assert type(optimizer).__name__ == "Adam" and float(optimizer.learning_rate) == pytest.approx(0.003)
    # tf_keras's metric aliases, named as given
    for alias, cls in (("kullback_leibler_divergence", "KLDivergence"), ("kld", "KLDivergence"),
                       ("log_cosh", "LogCoshError")):
        metric = fg.metrics.get(alias)
        assert type(metric).__name__ == cls and metric.name == alias
    # a rate handle a tf_keras callback logs (ReduceLROnPlateau's backend.get_value(optimizer.lr)) is a float in History
    class LogsRate(fg.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["lr"] = self.model.optimizer.lr

    model = fg.Sequential([Input((3,)), Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(rng.normal(size=(4, 3)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[LogsRate()])
    assert [type(v) for v in history.history["lr"]] == [float, float]
    # Keras 2's own layers fastgru lacks are named as such, not as custom classes
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "dtype": "float32"}},
        {"class_name": "ThresholdedReLU", "config": {"name": "t", "theta": 1.0}}]}}
    import json

    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="a Keras layer fastgru does not implement"):
        fg.models.model_from_json(json.dumps(config))


@pytest.mark.keras
def test_from_keras_takes_custom_objects(keras, rng):
    def scaled(lib):
        class Scaled(lib.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

            def call(self, x):
                return x * self.w

        return Scaled

    theirs, ours = scaled(keras), scaled(fg)
    km = keras.Sequential([keras.Input((4,)), theirs(), keras.layers.Dense(2)])
    x = rng.normal(size=(3, 4)).astype("float32")
    converted = fg.from_keras(km, custom_objects={"Scaled": ours})
    np.testing.assert_allclose(converted.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-6)
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="from_keras's"):
        fg.from_keras(km)


def test_a_stateful_layers_states_are_zeros_before_its_first_call_and_after_a_reset(rng):
    model = fg.Sequential([Input((6, 3), batch_size=4), GRU(2, stateful=True)])
    gru = model.layers[0]
    np.testing.assert_array_equal(gru.states[0], np.zeros((4, 2), np.float32))
    model.predict(rng.normal(size=(4, 6, 3)).astype("float32"), verbose=0)
    assert np.abs(gru.states[0]).sum() > 0
    gru.reset_states()
    np.testing.assert_array_equal(gru.states[0], np.zeros((4, 2), np.float32))
    assert GRU(2).states is None  # (not stateful: nothing carried)


@pytest.mark.keras
@pytest.mark.parametrize("stack_inside", [False, True], ids=["stack_in_outer", "stack_in_nested"])
def test_stacked_cells_beside_a_nested_model_load(keras, rng, tmp_path, stack_inside):
    tf_keras = pytest.importorskip("tf_keras")
    x = rng.normal(size=(4, 12, 3)).astype("float32")
    for lib, suffix in ((tf_keras, ".h5"), (keras, ".keras")):
        L = lib.layers
        if stack_inside:
            nested = lib.Sequential([L.InputLayer((12, 3)), L.RNN([L.GRUCell(3), L.GRUCell(2)], return_sequences=True)],
                                    name="nested")
            km = lib.Sequential([L.InputLayer((12, 3)), nested, L.GRU(2)])
        else:
            nested = lib.Sequential([L.InputLayer((12, 3)), L.Dense(4)], name="nested")
            km = lib.Sequential([L.InputLayer((12, 3)), nested, L.RNN([L.LSTMCell(3), L.SimpleRNNCell(2)])])
        km.save(tmp_path / f"m{suffix}")
        np.testing.assert_allclose(fg.load_model(tmp_path / f"m{suffix}").predict(x, verbose=0),
                                   km.predict(x, verbose=0), rtol=1e-5, atol=1e-6, err_msg=suffix)


def test_batch_normalization_over_several_axes_is_refused_by_name():
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match=r"several axes \(\[1, 2\]\)"):
        fg.layers.BatchNormalization(axis=[1, 2])
    assert fg.layers.BatchNormalization(axis=[2]).get_config()["axis"] == 2  # (tf_keras's resolved axis)


def test_serialize_and_deserialize_as_keras():
    import json

    optimizer = fg.optimizers.deserialize(json.loads(json.dumps(fg.optimizers.serialize(fg.optimizers.Adam(0.003)))))
    assert type(optimizer).__name__ == "Adam" and float(optimizer.learning_rate) == pytest.approx(0.003)
    assert fg.losses.deserialize(fg.losses.serialize(fg.losses.Huber(delta=0.5))).delta == 0.5
    assert fg.metrics.deserialize(fg.metrics.serialize(fg.metrics.Precision(thresholds=0.3))).init_thresholds == 0.3
    dense = fg.layers.deserialize(fg.layers.serialize(Dense(3, activation="relu", name="head")))
    assert (type(dense).__name__, dense.units, dense.name) == ("Dense", 3, "head")
    assert fg.losses.deserialize("mse").name == "mse"
    entry = fg.losses.serialize(fg.losses.LossFunctionWrapper(max_abs_err))
    assert fg.losses.deserialize(entry, custom_objects={"max_abs_err": max_abs_err}).fn is max_abs_err


def test_keras_style_metric_in_a_model_of_several_outputs_and_keras_names(rng):
    metric_cls = _true_positives_class(fg)
    inputs = fg.Input((5, 3))
    h = GRU(4)(inputs)
    model = fg.Model(inputs, [Dense(3, activation="softmax", name="cls")(h), Dense(1, name="reg")(h)])
    model.compile("adam", {"cls": "sparse_categorical_crossentropy", "reg": "mse"}, metrics={"cls": [metric_cls()]},
                  weighted_metrics={"cls": [metric_cls(name="weighted_hits")]})
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    history = model.fit(x, {"cls": rng.integers(0, 3, (16, 1)), "reg": np.zeros((16, 1))}, epochs=1, verbose=0)
    assert "cls_categorical_true_positives" in history.history and "cls_weighted_hits" in history.history

    def RMSE(y_true, y_pred):  # noqa: N802  (a script's name, logged in Keras's snake case)
        return fg.ops.sqrt(fg.ops.mean(fg.ops.square(y_true - y_pred), axis=-1))

    class MyR2(fg.metrics.Metric):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.total = self.add_variable(shape=(), initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.total.assign_add(fg.ops.sum(y_pred))

        def result(self):
            return self.total

    single = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    single.compile("sgd", "mse", metrics=[RMSE, MyR2()])
    logged = single.fit(x, np.zeros((16, 1)), epochs=1, verbose=0, validation_split=0.25).history
    assert sorted(logged) == ["loss", "my_r2", "rmse", "val_loss", "val_my_r2", "val_rmse"]

    class ForeignMetric:  # (a metric object of no fastgru class, such as a script's own keras.metrics.Metric)
        name = "foreign"

        def update_state(self, y_true, y_pred, sample_weight=None):
            pass

        def result(self):
            return 0.0

        def __call__(self, y_true, y_pred):
            return 0.0

    with pytest.raises(ValueError, match="'ForeignMetric' is a metric object fastgru cannot run"):
        fg.metrics.get(ForeignMetric())


def test_classes_registered_under_another_name_load(rng, tmp_path):
    @fg.saving.register_keras_serializable(package="fuzz65", name="Sq_r")
    class Squared(fg.losses.Loss):
        def call(self, y_true, y_pred):
            return fg.ops.mean(fg.ops.square(y_true - y_pred), axis=-1)

    @fg.saving.register_keras_serializable(package="fuzz65", name="Count_r")
    class Count(fg.metrics.Metric):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seen = self.add_variable(shape=(), initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.seen.assign_add(fg.ops.cast(fg.ops.shape(y_pred)[0], "float32"))

        def result(self):
            return self.seen

    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), np.zeros((8, 1), "float32")
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(1)])
    model.compile("sgd", Squared(), metrics=[Count()])
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras")
    assert type(loaded.loss).__name__ == "Squared"
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["count"] == 8.0


def test_a_held_attention_layer_never_called_saves_and_loads(rng, tmp_path):
    class Block(fg.layers.Layer):
        def __init__(self, use_attention=False, **kwargs):
            super().__init__(**kwargs)
            self.use_attention = use_attention
            self.gru = GRU(6, return_sequences=True)
            self.attention = fg.layers.MultiHeadAttention(2, 3)

        def call(self, x):
            h = self.gru(x)
            return h + self.attention(h, h) if self.use_attention else h

        def get_config(self):
            return {**super().get_config(), "use_attention": self.use_attention}

    inputs = fg.Input((5, 3))
    model = fg.Model(inputs, Block()(inputs))
    x = rng.normal(size=(4, 5, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"Block": Block})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_loss_object_called_inside_a_custom_loss_trains_as_the_ops_it_stands_for(rng):
    def non_padding(y_true, y_pred):  # (keras.io's NER loss calls a loss object on the tensors: training/loss_node.py)
        return fg.losses.SparseCategoricalCrossentropy(reduction=None)(y_true, y_pred)

    def with_ops(y_true, y_pred):
        return ops.sparse_categorical_crossentropy(y_true, y_pred)

    x, y = rng.normal(size=(8, 5, 3)), rng.integers(0, 3, (8, 1))
    histories, start = [], None
    for loss in (non_padding, with_ops):
        model = fg.Sequential([Input((5, 3)), GRU(4), Dense(3, activation="softmax")])
        start = model.get_weights() if start is None else start
        model.set_weights(start)
        model.compile("sgd", loss)
        histories.append(model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-6)


@pytest.mark.keras
def test_from_keras_keeps_weight_decay_exclusions(keras, rng):
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    for exclude in ("names", "variables"):
        km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
        optimizer = keras.optimizers.AdamW(0.01, weight_decay=0.5)
        if exclude == "names":
            optimizer.exclude_from_weight_decay(var_names=["bias"])
        else:
            optimizer.exclude_from_weight_decay(var_list=[km.layers[1].kernel])
        km.compile(optimizer, "mse")
        ours = fg.from_keras(km)
        theirs = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
        mine = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, err_msg=exclude)
        for a, b in zip(ours.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=exclude)
