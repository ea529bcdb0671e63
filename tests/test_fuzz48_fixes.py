"""Fixes from the forty-eighth Keras-parity fuzz round and the thirty-first session (each test says what was
wrong)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


def _nested_cases(keras):
    L = keras.layers

    def inner():  # one branch reaches the output only through stop_gradient
        i = L.Input((5, 3))
        dead = L.Dense(4, name="dead")(i)
        return keras.Model(i, L.Add()([L.Dense(4, name="used")(i), keras.ops.stop_gradient(dead)]))

    def inner_rows():
        i = L.Input((3,))
        return keras.Model(i, L.Add()([L.Dense(4)(i), keras.ops.stop_gradient(L.Dense(4)(i))]))

    yield "sequential", keras.Sequential([L.Input((5, 3)), inner(), L.GRU(3), L.Dense(1)])
    i = L.Input((5, 3))
    yield "functional", keras.Model(i, L.Dense(1)(L.GRU(3)(inner()(i))))
    yield "time_distributed", keras.Sequential([L.Input((5, 3)), L.TimeDistributed(inner_rows()), L.GRU(3),
                                                L.Dense(1)])
    i = L.Input((5, 3))
    used, _unused = keras.Model(i, [L.Dense(4)(i), L.Dense(2)(i)])(i)  # the second output feeds nothing
    yield "unused_output", keras.Model(i, L.Dense(1)(L.GRU(3)(used)))


@pytest.mark.keras
def test_weights_no_gradient_reaches_inside_a_nested_model_are_left_alone(keras, tmp_path):
    """Inside a nested model (in a Sequential, a graph, or a TimeDistributed), a weight no gradient reached got
    a zero gradient, which weight decay and momentum moved, where Keras has none and leaves it alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    for name, km in _nested_cases(keras):
        km.compile(keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=0.1) if name == "time_distributed"
                   else keras.optimizers.AdamW(0.01, weight_decay=0.1), loss="mse")
        path = tmp_path / f"{name}.keras"
        km.save(path)
        ours, km = fg.load_model(path), keras.models.load_model(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (Keras: "Gradients do not exist for variables ...")
            theirs = km.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
        mine = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, err_msg=name)
        for a, b, v in zip(ours.get_weights(), km.get_weights(), km.weights):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}: {v.path}")


def _stream_model():
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    model.compile(fg.optimizers.SGD(0.1), "mse")
    return model


class _Loader:
    """A DataLoader-like stream (iterable, with a length) that draws a new order at each pass, as
    ``DataLoader(shuffle=True)`` does."""

    def __init__(self, x, y, batch_size, seed):
        self.x, self.y, self.batch_size, self.rng, self.passes = x, y, batch_size, np.random.default_rng(seed), 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        self.passes += 1
        order = self.rng.permutation(len(self.x))
        for i in range(0, len(order), self.batch_size):
            yield self.x[order[i:i + self.batch_size]], self.y[order[i:i + self.batch_size]]


_Loader.__name__ = "DataLoader"  # (streams.py knows a PyTorch DataLoader by its class name)


def test_a_reshuffling_stream_is_read_anew_each_epoch():
    """fit read a stream once and trained every epoch on its first order; Keras reads a dataset, a DataLoader
    or a PyDataset anew each epoch (the DataLoader after its first 2 batches, which Keras's adapter reads for
    their shapes)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 5, 3)).astype("float32"), rng.normal(size=(20, 1)).astype("float32")
    loader, model = _Loader(x, y, 8, seed=1), _stream_model()
    initial = model.get_weights()
    model.fit(loader, epochs=3, verbose=0)
    assert loader.passes == 4  # (the shapes' pass, then one per epoch)
    replay, orders = _stream_model(), np.random.default_rng(1)
    replay.set_weights(initial)
    orders.permutation(20)  # (the shapes' pass)
    for _ in range(3):
        order = orders.permutation(20)
        replay.fit(x[order], y[order], batch_size=8, shuffle=False, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), replay.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.keras_graph  # (many steps: faster against the graph)
@pytest.mark.keras
def test_py_datasets_and_shuffled_datasets_train_as_in_keras(keras, tmp_path):
    """A PyDataset whose on_epoch_end reshuffles its samples (Keras calls it once before the first epoch too);
    fit(shuffle=True) over a PyDataset's batches, the order from Python's ``random`` as Keras's adapter draws it,
    a short batch landing anywhere; a ``tf.data`` dataset's seeded ``shuffle()``, a new order each epoch."""
    import random

    import tensorflow as tf

    L = keras.layers
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 5, 3)).astype("float32"), rng.normal(size=(50, 1)).astype("float32")

    class Batches(keras.utils.PyDataset):
        def __init__(self, batch_size, reshuffle):
            super().__init__()
            self.batch_size, self.reshuffle, self.index, self.rng = batch_size, reshuffle, np.arange(50), \
                np.random.default_rng(5)

        def __len__(self):
            return -(-50 // self.batch_size)

        def __getitem__(self, i):
            rows = self.index[i * self.batch_size:(i + 1) * self.batch_size]
            return x[rows], y[rows]

        def on_epoch_end(self):
            if self.reshuffle:
                self.index = self.rng.permutation(50)

    keras.utils.set_random_seed(0)
    km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(1)])
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.keras")
    cases = [("on_epoch_end", lambda: Batches(8, True), False), ("shuffle", lambda: Batches(8, False), True),
             ("short batch", lambda: Batches(16, False), True),
             ("tf.data", lambda: tf.data.Dataset.from_tensor_slices((x, y)).shuffle(50, seed=3).batch(8), True)]
    cases += [("steps on_epoch_end", lambda: Batches(8, True), False, 7), ("steps shuffle", lambda: Batches(8, False),
                                                                           True, 3),
              ("steps tf.data", lambda: tf.data.Dataset.from_tensor_slices((x, y)).shuffle(50, seed=3).batch(16),
               True, 2)]  # (with steps_per_epoch: a new pass, read anew, each time one runs out)
    for name, stream, shuffle, *steps in cases:
        theirs, mine = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
        options = {"epochs": 4 if steps else 3, "shuffle": shuffle, "verbose": 0, "steps_per_epoch": (steps or [None])[0]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            random.seed(7)
            expected = theirs.fit(stream(), **options).history["loss"]
            random.seed(7)
            got = mine.fit(stream(), **options).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=name)
        for a, b in zip(mine.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_tuple_of_outputs_comes_back_as_a_tuple():
    """Keras returns a model's tuple of outputs as a tuple (a list after a file round trip, in Keras too)."""
    inputs = fg.Input((5, 3))
    h = fg.layers.GRU(4)(inputs)
    model = fg.Model(inputs, (fg.layers.Dense(1)(h), fg.layers.Dense(2)(h)))
    x = np.ones((2, 5, 3), np.float32)
    out = model.predict(x)
    assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 1), (2, 2)]
    assert isinstance(model(x), tuple)
    assert isinstance(fg.Model(inputs, [h, h]).predict(x), list)


@pytest.mark.keras
def test_attention_weight_constraints_train_as_keras(keras, tmp_path):
    """MultiHeadAttention's and GroupQueryAttention's ``kernel_constraint`` and ``bias_constraint`` (Keras
    projects each of the four projections' kernels and biases after every step) were ignored from a file, with a
    warning, and refused in code; now applied, and saved back for Keras."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 4)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    cases = [(lambda **kw: L.MultiHeadAttention(2, 3, **kw), {"kernel_constraint": keras.constraints.MaxNorm(0.5)}),
             (lambda **kw: L.GroupQueryAttention(3, 4, 2, **kw),
              {"kernel_constraint": "non_neg", "bias_constraint": keras.constraints.MinMaxNorm(0.1, 0.3)})]
    for make, options in cases:
        keras.utils.set_random_seed(0)
        inputs = L.Input((6, 4))
        km = keras.Model(inputs, L.Dense(1)(L.GlobalAveragePooling1D()(make(**options)(inputs, inputs))))
        km.compile(keras.optimizers.SGD(0.1, momentum=0.9), "mse")
        km.set_weights([w + 0.3 * rng.normal(size=w.shape).astype("float32") for w in km.get_weights()])
        km.save(tmp_path / "m.keras")
        theirs, mine = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
        expected = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
        got = mine.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        for a, b, v in zip(mine.get_weights(), theirs.get_weights(), theirs.weights):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=v.path)
        mine.save(tmp_path / "back.keras")
        back = keras.models.load_model(tmp_path / "back.keras")
        np.testing.assert_allclose(back.predict(x, verbose=0), mine.predict(x), rtol=1e-5, atol=1e-6)
        assert type(back.layers[1].get_config()["kernel_constraint"]) is dict  # (saved: Keras applies it too)


@pytest.mark.keras
def test_softmax_over_negative_axes(keras, tmp_path):
    """``Softmax(axis=(-1, -2))`` (valid Keras) was refused as a malformed file; now it predicts and trains as
    Keras."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 7, 5)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([L.Input((7, 5)), L.Dense(5), L.Softmax(axis=(-1, -2)), L.Flatten(), L.Dense(1)])
    km.compile(keras.optimizers.SGD(0.5), "mse")
    _predicts_and_trains_as_keras(keras, km, x, y, tmp_path, atol=1e-7)
    assert fg.layers.Softmax(axis=[-1, -2]).axis == (-1, -2)


def _predicts_and_trains_as_keras(keras, km, x, y, tmp_path, atol: float = 1e-6):
    """fastgru's model of the compiled Keras model ``km`` (through a .keras file): its predictions, 2 epochs of fit
    (the losses and the weights after them) and its saved file (read back by Keras), as Keras's."""
    km.save(tmp_path / "m.keras")
    mine = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(mine.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=atol)
    expected = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               expected, rtol=1e-5)
    for a, b in zip(mine.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    mine.save(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), mine.predict(x),
                               rtol=1e-5, atol=atol)


@pytest.mark.keras
def test_orthogonal_regularizer_as_keras(keras, tmp_path):
    """``OrthogonalRegularizer`` was not implemented (ignored from a file with a warning, so training differed);
    now its penalty and gradient are Keras's (rows and columns, a zero row included), on weights and activities."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for shape, mode in [((4, 12), "rows"), ((6, 3), "columns"), ((5, 5), "rows")]:
        w = rng.normal(size=shape).astype("float32")
        w[1] = 0.0  # (Keras's normalize leaves a zero row zero)
        variable = tf.Variable(w)
        with tf.GradientTape() as tape:
            penalty = keras.regularizers.OrthogonalRegularizer(0.5, mode)(variable)
        ours = fg.regularizers.get({"class_name": "OrthogonalRegularizer", "config": {"factor": 0.5, "mode": mode}})
        np.testing.assert_allclose(ours(w), float(penalty), rtol=1e-5)
        np.testing.assert_allclose(ours.gradient(w), tape.gradient(penalty, variable).numpy(), rtol=1e-4, atol=1e-7)
    L = keras.layers
    x, y = rng.normal(size=(32, 5, 6)).astype("float32"), rng.normal(size=(32, 3)).astype("float32")
    for mode in ("rows", "columns"):
        def reg():
            return keras.regularizers.OrthogonalRegularizer(0.5, mode=mode)

        keras.utils.set_random_seed(1)
        km = keras.Sequential([L.Input((5, 6)), L.GRU(4, kernel_regularizer=reg(), recurrent_regularizer=reg()),
                               L.Dense(4, kernel_regularizer=reg(), activity_regularizer=reg()), L.Dense(3)])
        # (off the orthogonal initializer's rows, whose cosines are 0 up to rounding: |.|'s kink, where the
        # gradient's sign is the rounding's)
        km.set_weights([w + 0.3 * rng.normal(size=w.shape).astype("float32") for w in km.get_weights()])
        km.compile(keras.optimizers.SGD(0.1), "mse")
        km.save(tmp_path / "m.keras")
        theirs, mine = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
        expected = theirs.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
        got = mine.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=mode)
        for a, b, v in zip(mine.get_weights(), theirs.get_weights(), theirs.weights):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"{mode}: {v.path}")
        mine.save(tmp_path / "back.keras")
        assert keras.models.load_model(tmp_path / "back.keras").layers[1].kernel_regularizer.get_config() == {
            "factor": 0.5, "mode": mode}


def test_a_model_s_output_has_its_last_layer_s_dtype():
    """One float64 layer in a float32 model made predict return float64; Keras casts the next float32 layer's
    input down, so its output is float32."""
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    chain = fg.Sequential([fg.Input((6,)), fg.layers.Dense(4, dtype="float64"), fg.layers.Dense(3)])
    assert chain.predict(x).dtype == np.float32 and chain(x).dtype == np.float32
    assert fg.Sequential([fg.Input((6,)), fg.layers.Dense(4), fg.layers.Dense(3, dtype="float64")]).predict(
        x).dtype == np.float64
    inputs = fg.Input((6,))
    wide = fg.layers.Dense(4, dtype="float64")(inputs)
    graph = fg.Model(inputs, [wide, fg.layers.Dense(2)(wide)])
    assert [o.dtype for o in graph.predict(x)] == [np.float64, np.float32]
    last = fg.Sequential([fg.Input((6,)), fg.layers.Dense(4), fg.layers.Activation("relu", dtype="float64")])
    assert last.predict(x).dtype == np.float64  # (a weightless float64 layer last: Keras casts its input up)


@pytest.mark.keras
@pytest.mark.parametrize("options", [{"padding": "same"}, {"padding": "causal", "dilation_rate": 2},
                                     {"strides": 2, "groups": 2}])
def test_conv1d_channels_first_as_keras(keras, tmp_path, options):
    """``Conv1D(data_format="channels_first")`` (inputs and outputs (batch, channels, steps), as a model ported
    from PyTorch has them) was refused; now it predicts, trains and saves as Keras's."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 4, 9)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([L.Input((4, 9)), L.Conv1D(6, 3, data_format="channels_first", activation="relu",
                                                     **options),
                           L.Permute((2, 1)), L.GRU(3), L.Dense(1)])
    km.compile(keras.optimizers.SGD(0.1), "mse")
    _predicts_and_trains_as_keras(keras, km, x, y, tmp_path)
