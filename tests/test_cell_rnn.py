"""Keras's RNN around a script's own cell (layers/cell_rnn.py): keras.io's MinimalRNNCell and a two-state cell,
looped step by step with masks, go_backwards, zero_output_for_mask, return_state, initial states and stateful
carrying; gradients against float64 central differences; prediction, training and files (both ways) against Keras."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature


def _cells(module):
    """keras.io's MinimalRNNCell (with a tanh) and a two-state gated cell, written against ``module``."""
    ops_ = module.ops

    class MinimalRNNCell(module.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size = units, units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform",
                                          name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="orthogonal",
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            output = ops_.tanh(ops_.matmul(inputs, self.kernel) + ops_.matmul(states[0], self.recurrent_kernel))
            return output, [output]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class GatedCell(module.layers.Layer):  # (two states of the layer's size, one gate: an LSTM-like cell)
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size, self.output_size = units, [units, units], units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2 * self.units), initializer="glorot_uniform", name="w")
            self.u = self.add_weight(shape=(self.units, 2 * self.units), initializer="glorot_uniform", name="u")
            self.b = self.add_weight(shape=(2 * self.units,), initializer="zeros", name="b")

        def call(self, inputs, states, training=None):
            h, c = states
            z = ops_.matmul(inputs, self.w) + ops_.matmul(h, self.u) + self.b
            gate, candidate = ops_.sigmoid(z[:, :self.units]), ops_.tanh(z[:, self.units:])
            c = gate * c + (1.0 - gate) * candidate
            h = ops_.tanh(c) * gate
            return h, [h, c]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    for cls in (MinimalRNNCell, GatedCell):
        cls.__qualname__ = cls.__name__  # (module-level names: pickled by reference)
    return MinimalRNNCell, GatedCell


MinimalRNNCell, GatedCell = _cells(fg)


def _graph(module, minimal, gated, **options):
    layers = module.layers
    inputs = module.Input((7, 3))
    masked = layers.Masking()(inputs)
    seq = layers.RNN(minimal(4), return_sequences=True, **options)(masked)
    last, h, c = layers.RNN(gated(3), return_state=True, go_backwards=True)(seq)
    again = layers.RNN(gated(3), return_sequences=True)(seq, initial_state=[h, c])
    merged = layers.Concatenate()([last, c, layers.GlobalAveragePooling1D()(again)])
    return module.Model(inputs, layers.Dense(1)(merged))


def _data(rng):
    x = rng.normal(size=(6, 7, 3)).astype(np.float32)
    x[:2, 5:] = 0  # (masked steps: the states kept, the previous output repeated)
    return x, rng.normal(size=(6, 1)).astype(np.float32)


def test_cell_rnn_trains_saves_pickles_and_clones(rng, tmp_path):
    x, y = _data(rng)
    model = _graph(fg, MinimalRNNCell, GatedCell)
    rnn = model.layers[2]
    assert type(rnn).__name__ == "RNN" and isinstance(rnn.cell, MinimalRNNCell)
    assert [w.shape for w in rnn.weights] == [(3, 4), (4, 4)]
    model.compile(fg.optimizers.Adam(0.01), "mse")
    history = model.fit(x, y, epochs=3, batch_size=3, verbose=0).history["loss"]
    assert history[-1] < history[0]
    expected = model.predict(x)
    custom = {"MinimalRNNCell": MinimalRNNCell, "GatedCell": GatedCell}
    for suffix in (".keras", ".h5"):
        model.save(tmp_path / f"m{suffix}")
        np.testing.assert_array_equal(fg.load_model(tmp_path / f"m{suffix}", custom_objects=custom).predict(x),
                                      expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x), expected)
    clone = fg.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x), expected)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(RNN)" in line for line in lines)
    with pytest.raises(UnsupportedKerasFeature, match="RNN\\(MinimalRNNCell\\) is not supported.*custom_objects"):
        fg.load_model(tmp_path / "m.keras")  # (the cell's class not given: no code runs from a file)


def test_cell_rnn_gradients_match_central_differences_in_float64(rng):
    cell = GatedCell(3, dtype="float64")
    layer = fg.layers.RNN(cell, return_sequences=True, go_backwards=True, dtype="float64")
    x = rng.normal(size=(2, 5, 2))
    mask = np.ones((2, 5), bool)
    mask[1, 3:] = False
    layer.build(x.shape)
    dy = rng.normal(size=(2, 5, 3))
    _, cache = layer.forward(x, mask=mask, training=True)
    dx, grads = layer.backward(dy, cache)
    np.testing.assert_allclose(dx, numeric_gradient(lambda v: np.float64(np.sum(layer.call(v, mask=mask) * dy)), x, 1.0),
                               rtol=1e-6, atol=1e-8)
    for weight, grad in zip(layer.trainable_weights, grads):
        def loss(value, weight=weight):
            saved = np.array(weight)
            weight.assign(value)
            out = np.float64(np.sum(layer.call(x, mask=mask) * dy))
            weight.assign(saved)
            return out
        np.testing.assert_allclose(grad, numeric_gradient(loss, np.array(weight), 1.0), rtol=1e-6, atol=1e-8)


def test_cell_rnn_stateful_and_refusals(rng):
    model = fg.Sequential([fg.Input(batch_shape=(2, 5, 3)), fg.layers.RNN(MinimalRNNCell(4), stateful=True)])
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    first, second = model.predict(x), model.predict(x)
    assert not np.allclose(first, second)  # (the second batch starts from the first's final state)
    model.layers[0].reset_states()
    np.testing.assert_array_equal(model.predict(x), first)

    class NoStateSize(fg.layers.Layer):
        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(TypeError, match="Layer subclass with state_size and call\\(inputs, states\\)"):
        fg.layers.RNN(NoStateSize())
    bad = MinimalRNNCell(4)
    bad.state_size = [4, [2, 2]]
    with pytest.raises(ValueError, match="nested sizes are not supported"):
        fg.layers.RNN(bad)
    with pytest.raises(ValueError, match="initial_state holds 1"):
        fg.layers.RNN(GatedCell(3))(x, initial_state=[np.zeros((2, 3), np.float32)])


@pytest.mark.keras
def test_cell_rnn_matches_keras(keras, rng, tmp_path):
    KerasMinimal, KerasGated = _cells(keras)
    KerasMinimal.__name__, KerasGated.__name__ = "KerasMinimal", "KerasGated"
    theirs = {"MinimalRNNCell": KerasMinimal, "GatedCell": KerasGated}
    x, y = _data(rng)
    for options in ({}, {"zero_output_for_mask": True}):
        km, model = _graph(keras, KerasMinimal, KerasGated, **options), _graph(fg, MinimalRNNCell, GatedCell, **options)
        assert [w.shape for w in model.get_weights()] == [w.shape for w in km.get_weights()]
        model.set_weights(km.get_weights())
        np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        km.compile(keras.optimizers.Adam(0.01), "mse")
        model.compile(fg.optimizers.Adam(0.01), "mse")
        expected = km.fit(x, y, epochs=3, batch_size=3, shuffle=False, verbose=0).history["loss"]
        got = model.fit(x, y, epochs=3, batch_size=3, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        for a, b in zip(model.get_weights(), km.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    km.save(tmp_path / "k.keras")
    # (Keras names the script's classes by theirs: the file's cells are KerasMinimal and KerasGated)
    loaded = fg.load_model(tmp_path / "k.keras", custom_objects={"KerasMinimal": MinimalRNNCell,
                                                                  "KerasGated": GatedCell})
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras", custom_objects=theirs)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.from_keras(km, custom_objects={"KerasMinimal": MinimalRNNCell,
                                                                 "KerasGated": GatedCell}).predict(x),
                               km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _lazy_cell_class(module):
    class LazyCell(module.layers.Layer):  # (a Dense made in __init__, no build: built by the first step)
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size = units, units
            self.dense = module.layers.Dense(units)

        def call(self, inputs, states):
            h = module.ops.tanh(self.dense(module.ops.concatenate([inputs, states[0]], axis=-1)))
            return h, [h]

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return LazyCell


class Holder(fg.layers.Layer):  # (a custom layer holding the RNN of a script's cell)
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rnn = fg.layers.RNN(MinimalRNNCell(3))

    def call(self, x):
        return self.rnn(x)


def test_cells_holding_layers_held_rnns_registered_cells_and_resets(rng, tmp_path):
    lazy = _lazy_cell_class(fg)
    model = fg.Sequential([fg.Input((5, 2)), fg.layers.RNN(lazy(3)), fg.layers.Dense(1)])
    assert len(model.weights) == 4  # (the cell's Dense built with the layer: its weights read from a file)
    x = rng.normal(size=(4, 5, 2)).astype(np.float32)
    model.save(tmp_path / "lazy.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "lazy.keras", custom_objects={"LazyCell": lazy})
                                  .predict(x), model.predict(x))
    held = fg.Sequential([fg.Input((5, 2)), Holder(name="holder")])
    assert held.layers[0].keras_var_groups() == [("rnn/cell/vars", 2)]  # (Keras's holder/rnn/cell/vars)
    held.save(tmp_path / "held.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "held.keras", custom_objects={
        "Holder": Holder, "MinimalRNNCell": MinimalRNNCell}).predict(x), held.predict(x))

    @fg.saving.register_keras_serializable(package="tests")
    class RegisteredCell(MinimalRNNCell):
        pass

    registered = fg.Sequential([fg.Input((5, 2)), fg.layers.RNN(RegisteredCell(3))])
    registered.save(tmp_path / "registered.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "registered.keras").predict(x), registered.predict(x))

    class StartsAtOne(MinimalRNNCell):
        def get_initial_state(self, batch_size=None):
            return [np.ones((batch_size, self.units), np.float32)]

    cell = StartsAtOne(3)
    stateful, plain = fg.layers.RNN(cell, stateful=True), fg.layers.RNN(cell)  # (plain: the same cell's weights)
    first = np.asarray(stateful(x))
    np.testing.assert_allclose(first, _from(plain, x, 1.0), rtol=1e-6)  # (the first batch: get_initial_state)
    stateful.reset_states()  # (back to zeros, as Keras's: get_initial_state starts the first batch only)
    np.testing.assert_allclose(np.asarray(stateful(x)), _from(plain, x, 0.0), rtol=1e-6)


def _from(layer, x, value: float):
    """The layer's output from states filled with ``value``."""
    return np.asarray(layer(x, initial_state=[np.full((len(x), s), value, np.float32) for s in layer.state_sizes]))


@pytest.mark.keras
def test_lazy_cells_and_held_rnns_read_keras_files(keras, rng, tmp_path):
    x = rng.normal(size=(4, 5, 2)).astype(np.float32)
    theirs = _lazy_cell_class(keras)
    km = keras.Sequential([keras.Input((5, 2)), keras.layers.RNN(theirs(3)), keras.layers.Dense(1)])
    expected = km.predict(x, verbose=0)  # (Keras builds the cell's Dense at this first call)
    km.save(tmp_path / "lazy.keras")  # (Keras cannot read it back: its RNN builds the cell without a call)
    loaded = fg.load_model(tmp_path / "lazy.keras", custom_objects={"LazyCell": _lazy_cell_class(fg)})
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-5, atol=1e-6)
    keras_minimal, _ = _cells(keras)

    class KerasHolder(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.rnn = keras.layers.RNN(keras_minimal(3))

        def call(self, x):
            return self.rnn(x)

    KerasHolder.__name__ = "Holder"  # (Keras keys a layer's variables by its class's name)

    km = keras.Sequential([keras.Input((5, 2)), KerasHolder(name="holder")])
    km.save(tmp_path / "held.keras")
    loaded = fg.load_model(tmp_path / "held.keras", custom_objects={"Holder": Holder,
                                                                     "MinimalRNNCell": MinimalRNNCell})
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    loaded.save(tmp_path / "back.keras")
    back = keras.models.load_model(tmp_path / "back.keras", custom_objects={"Holder": KerasHolder,
                                                                            "MinimalRNNCell": keras_minimal})
    np.testing.assert_allclose(back.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_rnn_is_a_class_for_isinstance_from_config_and_clones(rng):
    model = fg.Sequential([fg.Input((5, 2)), fg.layers.RNN(MinimalRNNCell(3)), fg.layers.Dense(1)])
    rnn = model.layers[0]
    for layer in (rnn, fg.layers.GRU(2), fg.layers.RNN(fg.layers.LSTMCell(2)),
                  fg.layers.RNN([fg.layers.GRUCell(2), fg.layers.GRUCell(2)])):
        assert isinstance(layer, fg.layers.RNN)  # (as Keras's GRU, LSTM and SimpleRNN are RNNs)
    assert not isinstance(fg.layers.Dense(2), fg.layers.RNN)
    with pytest.raises(ValueError, match="neither a fastgru cell nor a script's cell class"):
        fg.layers.RNN.from_config(rnn.get_config())  # (the cell's class not given: no code from a config)
    with fg.saving.custom_object_scope({"MinimalRNNCell": MinimalRNNCell}):
        again = fg.layers.RNN.from_config(rnn.get_config())
    assert isinstance(again.cell, MinimalRNNCell) and again.get_config()["cell"] == rnn.get_config()["cell"]
    assert type(fg.layers.RNN.from_config({"cell": {"class_name": "GRUCell", "config": {"units": 4}},
                                           "return_sequences": True})).__name__ == "GRU"
    x = rng.normal(size=(3, 5, 2)).astype(np.float32)
    clone = fg.models.clone_model(model)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    rebuilt = fg.Sequential.from_config(model.get_config(), custom_objects={"MinimalRNNCell": MinimalRNNCell})
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))


def test_bidirectional_refuses_cell_loops_by_name():
    with pytest.raises(ValueError, match="received the RNN of a script's own cell"):
        fg.layers.Bidirectional(fg.layers.RNN(MinimalRNNCell(3)))
    with pytest.raises(ValueError, match="received RNN over a list of cells"):
        fg.layers.Bidirectional(fg.layers.RNN([fg.layers.GRUCell(2), fg.layers.GRUCell(2)]))
