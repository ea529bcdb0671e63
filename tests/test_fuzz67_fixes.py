"""Fuzz round 67: a script's cell looped by ``RNN`` — the penalties and constraints of its weights and of the layers it
holds, the loop's own activity regularizer (built in code, and read from a Keras file), the shapes a step returns;
``initializers.get`` giving Keras's initializer objects (the ``get`` / ``serialize`` idiom of a cell's config)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _cell_class(lib, name: str, constraint=None, held_dense_penalty: float = 0.0):
    """keras.io's minimal cell, its kernel penalized (L2 0.1) and optionally constrained, optionally holding a Dense."""

    class PenalizedCell(lib.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = self.state_size = units
            self.head = None if not held_dense_penalty else lib.layers.Dense(
                units, kernel_regularizer=lib.regularizers.L2(held_dense_penalty), name="head")

        def build(self, input_shape):
            self.k = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="k",
                                     regularizer=lib.regularizers.L2(0.1),
                                     constraint=None if constraint is None else constraint(lib))
            self.r = self.add_weight(shape=(self.units, self.units), initializer="orthogonal", name="r")

        def call(self, inputs, states):
            h = lib.ops.tanh(lib.ops.matmul(inputs, self.k) + lib.ops.matmul(states[0], self.r))
            if self.head is not None:
                h = self.head(h)
            return h, [h]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    PenalizedCell.__name__ = PenalizedCell.__qualname__ = name
    return lib.saving.register_keras_serializable(package="fuzz67", name=name)(PenalizedCell)


def _pair(keras, name: str, **options):
    theirs_cell, ours_cell = _cell_class(keras, name, **options), _cell_class(fg, name, **options)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.RNN(theirs_cell(4)), keras.layers.Dense(1)])
    ours = fg.Sequential([fg.Input((5, 3)), fg.layers.RNN(ours_cell(4)), fg.layers.Dense(1)])
    if options.get("held_dense_penalty"):
        ours.predict(np.zeros((1, 5, 3), "float32"))  # (the held Dense built by a first call, as in Keras)
        km.predict(np.zeros((1, 5, 3), "float32"), verbose=0)
    ours.set_weights(km.get_weights())
    return km, ours


def _data():
    rng = np.random.default_rng(67)
    return rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")


@pytest.mark.parametrize("held_dense_penalty", [0.0, 0.2])
def test_a_cells_weight_penalties_count_as_in_keras(keras, held_dense_penalty):
    km, ours = _pair(keras, f"Penalized{int(held_dense_penalty * 10)}", held_dense_penalty=held_dense_penalty)
    x, y = _data()
    for m in (km, ours):
        m.compile(m is km and keras.optimizers.SGD(0.05) or fg.optimizers.SGD(0.05), "mse")
    np.testing.assert_allclose([float(v) for v in ours.losses], [float(v) for v in km.losses], rtol=1e-5)
    assert len(ours.losses) == (2 if held_dense_penalty else 1)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_cells_weight_constraint_applies_after_each_step_as_in_keras(keras):
    km, ours = _pair(keras, "ConstrainedCell", constraint=lambda lib: lib.constraints.MaxNorm(0.5))
    x, y = _data()
    km.compile(keras.optimizers.SGD(0.5), "mse")
    ours.compile(fg.optimizers.SGD(0.5), "mse")
    km.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    ours.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    kernel = ours.layers[0].cell.k
    assert np.linalg.norm(np.asarray(kernel), axis=0).max() <= 0.5 + 1e-6
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_loops_activity_regularizer_applies_in_code_and_from_a_keras_file(keras, tmp_path):
    cell_class = _cell_class(keras, "ActivityCell")
    ours_class = _cell_class(fg, "ActivityCell")
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.RNN(cell_class(4), activity_regularizer="l2"),
                           keras.layers.Dense(1)])
    km.compile("sgd", "mse")
    km.save(tmp_path / "activity.keras")
    loaded = fg.load_model(tmp_path / "activity.keras")
    built = fg.Sequential([fg.Input((5, 3)), fg.layers.RNN(ours_class(4), activity_regularizer="l2"),
                           fg.layers.Dense(1)])
    built.set_weights(km.get_weights())
    built.compile("sgd", "mse")
    x, y = _data()
    expected = km.evaluate(x, y, verbose=0)
    assert loaded.layers[0].activity_regularizer is not None
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert built.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-5)
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(loaded.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


def _shape_cell(state_width: int | None = None, output_width: int | None = None, states: int = 1):
    class BadShapeCell(fg.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.state_size = 2
            if output_width is not None:
                self.output_size = output_width

        def build(self, input_shape):
            self.k = self.add_weight(shape=(input_shape[-1], 2), name="k")

        def call(self, inputs, states_in):
            h = fg.ops.matmul(inputs, self.k)
            state = fg.ops.concatenate([states_in[0], h], axis=-1) if state_width else h
            return h, [state] * states

    return BadShapeCell


@pytest.mark.parametrize("cell, message", [
    (_shape_cell(state_width=4), r"returned state 0 of shape \(4, 4\); its state_size says \(4, 2\)"),
    (_shape_cell(output_width=5), r"returned an output of shape \(4, 2\); its output_size says \(4, 5\)"),
    (_shape_cell(states=2), r"returned 2 state\(s\) for its 1 \(state_size 2\)"),
])
def test_a_step_returning_other_shapes_than_the_cell_declares_is_refused_in_predict_and_fit(cell, message):
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.RNN(cell()), fg.layers.Dense(1)])
    x = np.ones((4, 5, 3), "float32")
    with pytest.raises(ValueError, match=message):
        model.predict(x)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=message):
        model.fit(x, np.zeros((4, 1), "float32"), verbose=0)


def test_initializers_get_gives_keras_initializer_objects(keras):
    for name, expected in [("he_normal", fg.initializers.HeNormal), ("uniform", fg.initializers.RandomUniform),
                           ({"class_name": "Orthogonal", "config": {"gain": 2.0, "seed": 3}}, fg.initializers.Orthogonal),
                           ("OrthogonalInitializer", fg.initializers.Orthogonal)]:
        init = fg.initializers.get(name)
        assert type(init) is expected
        assert fg.initializers.get(init) is init
        config = fg.initializers.serialize(init)
        theirs = keras.initializers.serialize(keras.initializers.get(name))
        assert config["class_name"] == theirs["class_name"] and config["module"] == theirs["module"]
        assert config["config"] == {k: v for k, v in theirs["config"].items() if k in config["config"]}
        assert init((3, 4)).shape == (3, 4)  # (Keras's call; fastgru's call takes the layer's generator)
        assert init((3, 4), np.float64, np.random.default_rng(0)).dtype == np.float64
    seeded = fg.initializers.get({"class_name": "GlorotUniform", "config": {"seed": 5}})
    np.testing.assert_array_equal(seeded((3, 4), "float32", np.random.default_rng(1)),
                                  seeded((3, 4), "float32", np.random.default_rng(2)))  # (its seed wins)
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="initializer 'no_such'"):
        fg.initializers.get("no_such")


def test_a_cell_keeping_its_initializer_by_get_and_serialize_saves_and_reloads(keras, tmp_path):
    """keras.io's idiom: ``self.init = initializers.get(name)`` in ``__init__``, ``initializers.serialize(self.init)`` in
    ``get_config``: the model saves, Keras reads the file, and fastgru reads it back to the same numbers."""

    def cell_class(lib):
        @lib.saving.register_keras_serializable(package="fuzz67")
        class InitCell(lib.layers.Layer):
            def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
                super().__init__(**kwargs)
                self.units = self.state_size = units
                self.kernel_initializer = lib.initializers.get(kernel_initializer)

            def build(self, input_shape):
                self.kernel = self.add_weight(shape=(input_shape[-1] + self.units, self.units),
                                              initializer=self.kernel_initializer, name="kernel")

            def call(self, inputs, states):
                h = lib.ops.tanh(lib.ops.matmul(lib.ops.concatenate([inputs, states[0]], axis=-1), self.kernel))
                return h, [h]

            def get_config(self):
                return {**super().get_config(), "units": self.units,
                        "kernel_initializer": lib.initializers.serialize(self.kernel_initializer)}

        return InitCell

    cell_class(keras)
    model = fg.Sequential([fg.Input((4, 3)), fg.layers.RNN(cell_class(fg)(2, "he_normal")), fg.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
    model.save(tmp_path / "init.keras")
    theirs = keras.saving.load_model(tmp_path / "init.keras")
    np.testing.assert_allclose(np.asarray(theirs(x)), model.predict(x), rtol=1e-5, atol=1e-6)
    assert theirs.layers[0].cell.get_config()["kernel_initializer"]["class_name"] == "HeNormal"
    np.testing.assert_array_equal(fg.load_model(tmp_path / "init.keras").predict(x), model.predict(x))


# ---- fit, compile and bad input (round 67's API checks) -------------------------------------------------------------
def _small(lib=fg):
    model = lib.Sequential([lib.Input((5, 3)), lib.layers.GRU(4, kernel_initializer="ones",
                                                                recurrent_initializer="zeros"),
                            lib.layers.Dense(2, kernel_initializer="ones")])
    return model


def test_a_generator_running_out_before_steps_per_epoch_times_epochs_interrupts_training_as_keras():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(12, 5, 3)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")
    yielded = []

    def batches():
        for i in range(3):
            yielded.append(i)
            yield x[i * 4:(i + 1) * 4], y[i * 4:(i + 1) * 4]

    model, reference = _small(), _small()
    for m in (model, reference):
        m.compile(fg.optimizers.SGD(0.1), "mse")
    with pytest.warns(UserWarning, match="ran out of data after 3 batches"):
        history = model.fit(batches(), epochs=3, steps_per_epoch=2, verbose=0)
    for i in range(3):
        reference.train_on_batch(x[i * 4:(i + 1) * 4], y[i * 4:(i + 1) * 4])
    assert yielded == [0, 1, 2]
    for a, b in zip(model.get_weights(), reference.get_weights()):  # (three steps, none on a batch seen before)
        np.testing.assert_array_equal(a, b)
    assert history.history["loss"][2] == 0.0  # (as Keras: the epoch that ran no step logs the reset metric)


def test_a_sequential_model_compiles_without_a_loss_and_trains_on_its_layers_losses():
    x = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")
    layers = [fg.layers.GRU(4), fg.layers.Dense(2), fg.layers.ActivityRegularization(l2=0.1)]
    inputs = fg.Input((5, 3))
    h = inputs
    for layer in layers:
        h = layer(h)
    functional = fg.Model(inputs, h)  # (its training without a loss: tests/test_loss_node.py, against Keras)
    sequential = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2),
                                fg.layers.ActivityRegularization(l2=0.1)])
    sequential.set_weights(functional.get_weights())
    histories = []
    for model in (functional, sequential):
        model.compile(fg.optimizers.SGD(0.1))
        histories.append(model.fit(x, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-6)
    assert sequential.evaluate(x, verbose=0) == pytest.approx(functional.evaluate(x, verbose=0), rel=1e-6)
    plain = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4)])
    plain.compile("sgd")  # (compiled for predict alone: fine, as in Keras)
    assert plain.predict(x).shape == (8, 4)
    with pytest.raises(ValueError, match="No loss to compute"):
        plain.fit(x, verbose=0)
    metered = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.ActivityRegularization(l2=0.1)])
    metered.compile("sgd", metrics=["mae"])
    with pytest.raises(ValueError, match="the compiled metrics need targets y"):
        metered.fit(x, verbose=0)


def test_an_optimizer_stepping_one_model_refuses_another_models_variables():
    x, y = np.ones((4, 5, 3), "float32"), np.zeros((4, 2), "float32")
    optimizer = fg.optimizers.Adam(0.01)
    first = _small()
    first.compile(optimizer, "mse")
    first.fit(x, y, verbose=0)
    for second in (_small(), fg.Sequential([fg.Input((5, 3)), fg.layers.LSTM(6), fg.layers.Dense(2)])):
        second.compile(optimizer, "mse")
        before = [w.copy() for w in second.get_weights()]
        with pytest.raises(ValueError, match="has been stepping model .*: an optimizer only updates the variables"):
            second.fit(x, y, verbose=0)
        for a, b in zip(second.get_weights(), before):
            np.testing.assert_array_equal(a, b)
    first.fit(x, y, verbose=0)  # (its own model still trains)
    with pytest.raises(ValueError, match="it can only update the variables it was built with"):
        optimizer.apply_gradients(zip([np.ones((6, 24), "float32")] * 5,
                                      fg.Sequential([fg.Input((5, 6)), fg.layers.LSTM(6)]).trainable_weights + [
                                          np.zeros((6, 2), "float32"), np.zeros(2, "float32")]))


@pytest.mark.parametrize("where", ["y", "sample_weight"])
@pytest.mark.parametrize("odd", [None, "1.5"])
def test_object_targets_and_weights_holding_other_than_numbers_are_refused(where, odd):
    model = _small()
    model.compile("sgd", "mse")
    x, y, sw = np.ones((4, 5, 3), "float32"), np.zeros((4, 2)).astype(object), np.ones(4).astype(object)
    (y if where == "y" else sw)[0, ...] = odd
    with pytest.raises(TypeError, match=f"{where} must be numeric; received an object array holding "
                                        f"{type(odd).__name__}"):
        model.evaluate(x, y, sample_weight=sw, verbose=0)
    np.testing.assert_allclose(model.evaluate(x, np.zeros((4, 2)).astype(object), verbose=0),
                               model.evaluate(x, np.zeros((4, 2)), verbose=0))  # (numbers alone: taken)


def test_a_stream_element_of_none_and_a_ragged_list_are_named():
    model = _small()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"received None \(a generator or PyDataset __getitem__ that returned"):
        model.evaluate((None for _ in range(2)), verbose=0)
    with pytest.raises(ValueError, match="expects a rectangular numeric array as x; received nested lists of unequal"):
        model.predict([[[1.0, 2.0, 3.0]] * 5, [[1.0, 2.0]] * 5])


# ---- messages and Keras's model attributes ---------------------------------------------------------------------------
def test_a_script_cells_weights_take_the_loops_path_as_keras_s(keras, tmp_path):
    paths = []
    for lib in (keras, fg):
        cell = _cell_class(lib, "PathCell", held_dense_penalty=0.1)(2)
        model = lib.Sequential([lib.Input((5, 3)), lib.layers.RNN(cell, name="loop", return_sequences=True),
                                lib.layers.GRU(2, name="gru")], name="seq")
        model.predict(np.ones((1, 5, 3), "float32"), verbose=0)  # (Keras builds the held Dense at the first call)
        paths.append([w.path for w in model.weights])
    assert paths[1] == paths[0] and paths[1][:3] == ["seq/loop/path_cell/k", "seq/loop/path_cell/r",
                                                      "seq/loop/path_cell/head/kernel"]
    model.save(tmp_path / "paths.keras")
    loaded = fg.load_model(tmp_path / "paths.keras", custom_objects={"PathCell": type(cell)})
    assert loaded.weights[0].path == "loop/path_cell/k"  # (a loaded model's layers: outside any scope, as Keras's)


def test_refused_cells_of_a_file_say_why(keras, tmp_path):
    theirs = _cell_class(keras, "RefusedCell")
    keras.Sequential([keras.Input((5, 3)), keras.layers.RNN(theirs(2))]).save(tmp_path / "one.keras")
    keras.Sequential([keras.Input((5, 3)), keras.layers.RNN([theirs(2), theirs(2)])]).save(tmp_path / "stack.keras")
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match="the class custom_objects gives for it is not a "
                                                                "fastgru cell: write it as a subclass"):
        fg.load_model(tmp_path / "one.keras", custom_objects={"RefusedCell": theirs})
    ours = _cell_class(fg, "RefusedCell")
    with pytest.raises(fg.errors.UnsupportedKerasFeature, match=r"not in a stack of cells, RNN\(\[cell, cell\]\)"):
        fg.load_model(tmp_path / "stack.keras", custom_objects={"RefusedCell": ours})
    assert fg.load_model(tmp_path / "one.keras", custom_objects={"RefusedCell": ours}).predict(
        np.ones((1, 5, 3), "float32")).shape == (1, 2)


def test_model_loss_build_and_compile_configs_as_keras_s(keras):
    ours, theirs = _small(), _small(keras)
    for m, lib in ((ours, fg), (theirs, keras)):
        m.compile(lib.optimizers.Adam(0.01), "mse", metrics=["mae"])
    assert ours.loss == theirs.loss == "mse"
    assert ours.get_build_config() == {"input_shape": (None, 5, 3)} == theirs.get_build_config()
    again = _small()
    again.compile_from_config(ours.get_compile_config())
    assert again.loss == "mse" and again.optimizer.learning_rate == pytest.approx(0.01)
    x, y = np.ones((2, 5, 3), "float32"), np.ones((2, 2), "float32")
    np.testing.assert_allclose(again.evaluate(x, y, verbose=0), ours.evaluate(x, y, verbose=0))
    with pytest.raises(TypeError, match="compile_from_config expects the dict"):
        again.compile_from_config("mse")
    r2 = fg.metrics.R2Score()
    r2.update_state(np.array([[1.0], [2.0], [3.0]]), np.array([[1.1], [2.0], [2.8]]))
    r2.reset_state()
    assert np.isnan(r2.result())  # (as Keras's: its zeroed sums give 0 / 0)


def test_count_params_before_a_build_is_refused_as_keras_s(keras):
    for lib in (keras, fg):
        with pytest.raises(ValueError, match="count_params`? on layer 'd', but the layer isn't built"):
            lib.layers.Dense(2, name="d").count_params()
    with pytest.raises(ValueError, match="count_params on model 'unbuilt'.*isn't built"):
        fg.Sequential([fg.layers.Dense(2)], name="unbuilt").count_params()
    built = fg.Sequential([fg.Input((4,)), fg.layers.Dense(2, name="d")])
    assert built.count_params() == built.layers[0].count_params() == 10
