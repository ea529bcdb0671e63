"""Round 66 of the Keras parity fuzzing: custom layers holding layers they build only when called (built with the
layer, as Keras's _build_by_run; a file's variables for them read, never left behind), a custom layer's several
outputs given by a tuple of shapes, a model trained on its add_loss terms alone (keras.io's endpoint layer, a loss
object inside the layer's call), and sample weights listed for the outputs that have losses."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

import fastgru as fg
from fastgru import ops
from fastgru.errors import ModelFileError


def _held_class(module, own_build: bool):
    class Held(module.layers.Layer):  # (keras.io's attention style: layers made in __init__, no build for them)
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.proj = module.layers.Dense(units, activation="tanh")
            self.score = module.layers.Dense(1)

        def call(self, x):
            h = self.proj(x)
            weights = module.ops.softmax(self.score(h), axis=1)
            return module.ops.sum(h * weights, axis=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], self.units)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class HeldBuilt(Held):  # (its own build makes only its own weight)
        def build(self, input_shape):
            self.alpha = self.add_weight(shape=(), initializer="ones", name="alpha")

        def call(self, x):
            return super().call(x) * self.alpha

    return HeldBuilt if own_build else Held


def _pool_model(module, cls):
    inputs = module.Input((5, 3))
    return module.Model(inputs, module.layers.Dense(1)(cls(name="pool")(inputs)))


def test_held_layers_of_a_layer_with_compute_output_shape_build_with_it(rng, tmp_path):
    held = _held_class(fg, own_build=False)
    model = _pool_model(fg, held)
    assert len(model.weights) == 6  # (proj and score built with the layer, as Keras builds them by running the call)
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    expected = model.predict(x)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "m.keras", custom_objects={"Held": held}).predict(x),
                                  expected)


def test_a_files_variables_for_layers_built_at_the_first_call_are_read(rng, tmp_path):
    held = _held_class(fg, own_build=True)
    model = _pool_model(fg, held)
    assert len(model.weights) == 3  # (its own build: alpha; proj and score wait for the first call, as in Keras)
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    expected = model.predict(x)
    assert len(model.weights) == 7
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras", custom_objects={"HeldBuilt": held})
    np.testing.assert_array_equal(loaded.predict(x), expected)  # (not fresh random proj/score weights)
    with zipfile.ZipFile(tmp_path / "m.keras") as z:  # (a stray variable group the layer has no place for)
        members = {n: z.read(n) for n in z.namelist()}
    (tmp_path / "weights.h5").write_bytes(members["model.weights.h5"])
    with h5py.File(tmp_path / "weights.h5", "a") as f:
        f["layers/held_built"].create_group("stray/vars").create_dataset("0", data=np.zeros(3, np.float32))
    members["model.weights.h5"] = (tmp_path / "weights.h5").read_bytes()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ModelFileError, match="has no weights for"):
        fg.load_model(tmp_path / "bad.keras", custom_objects={"HeldBuilt": held})


def test_a_tuple_of_shapes_gives_a_custom_layer_several_outputs(rng):
    class Gated(fg.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 4), initializer="glorot_uniform", name="w")

        def call(self, x):
            gate = ops.sigmoid(ops.matmul(x, self.w))
            return ops.tanh(ops.matmul(x, self.w)) * gate, gate

    def compute_output_shape(self, input_shape):  # (set after the class is made, as a script may)
        shape = tuple(input_shape[:-1]) + (4,)
        return shape, shape

    Gated.compute_output_shape = compute_output_shape
    inputs = fg.Input((5, 6))
    h, gate = Gated()(inputs)
    assert h.shape == gate.shape == (None, 5, 4)
    model = fg.Model(inputs, fg.layers.Add()([h, gate]))
    assert model.predict(rng.normal(size=(2, 5, 6))).shape == (2, 5, 4)


class LogisticEndpoint(fg.layers.Layer):  # (keras.io's "endpoint layer": the loss added inside the call)
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_fn = fg.losses.BinaryCrossentropy(from_logits=True)

    def call(self, targets, logits):
        self.add_loss(self.loss_fn(targets, logits))
        return ops.sigmoid(logits)


def _endpoint_model(module, endpoint):
    x, t = module.Input((6, 3), name="inputs"), module.Input((1,), name="targets")
    logits = module.layers.Dense(1)(module.layers.GRU(4)(x))
    return module.Model([x, t], endpoint(name="predictions")(t, logits))


def _endpoint_data(rng):
    return {"inputs": rng.normal(size=(16, 6, 3)).astype(np.float32),
            "targets": rng.integers(0, 2, (16, 1)).astype(np.float32)}


def test_a_model_trained_on_its_added_losses_alone(rng):
    data = _endpoint_data(rng)
    model = _endpoint_model(fg, LogisticEndpoint)
    model.compile(fg.optimizers.Adam(0.01))  # (no loss: the endpoint's add_loss is the training's loss)
    start = model.get_weights()
    history = model.fit(data, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    assert history[-1] < history[0]
    model.set_weights(start)
    probs = model.predict(data)
    logits = np.log(probs / (1 - probs))
    t = data["targets"]
    expected = np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))))
    assert model.evaluate(data, verbose=0) == pytest.approx(float(expected), rel=1e-4)
    plain = fg.Model(model.inputs[0], model.layers[3].output)  # (the logits: no output loss, no add_loss)
    plain.compile("adam")
    with pytest.raises(ValueError, match="No loss to compute"):
        plain.fit(data["inputs"], epochs=1, verbose=0)


def test_sample_weights_listed_for_the_outputs_with_losses(rng):
    inputs = fg.Input((5, 3))
    h = fg.layers.GRU(4)(inputs)
    model = fg.Model(inputs, [fg.layers.Dense(1, name=n)(h) for n in ("a", "b", "c")])
    model.compile("sgd", loss=["mse", "mse", None])
    x, ya, yb = rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 1)), rng.normal(size=(8, 1))
    wa, wb = rng.uniform(0.5, 1.5, 8), rng.uniform(0.5, 1.5, 8)
    start = model.get_weights()
    two = model.fit(x, [ya, yb], sample_weight=[wa, wb], epochs=1, batch_size=8, verbose=0).history
    model.set_weights(start)
    three = model.fit(x, [ya, yb], sample_weight=[wa, wb, None], epochs=1, batch_size=8, verbose=0).history
    assert two["loss"] == pytest.approx(three["loss"])


@pytest.mark.keras
def test_held_layers_endpoint_and_tuple_outputs_match_keras(keras, rng, tmp_path):
    x = rng.normal(size=(4, 5, 3)).astype(np.float32)
    for own_build in (False, True):
        theirs, ours = _held_class(keras, own_build), _held_class(fg, own_build)
        km = _pool_model(keras, theirs)
        expected = km.predict(x, verbose=0)
        km.save(tmp_path / "k.keras")
        loaded = fg.load_model(tmp_path / "k.keras", custom_objects={theirs.__name__: ours})
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-5, atol=1e-6)
        model = _pool_model(fg, ours)
        model.predict(x)
        model.set_weights(km.get_weights())
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)

    class KerasEndpoint(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits):
            self.add_loss(self.loss_fn(targets, logits))
            return keras.ops.sigmoid(logits)

    data = _endpoint_data(rng)
    km, model = _endpoint_model(keras, KerasEndpoint), _endpoint_model(fg, LogisticEndpoint)
    model.set_weights(km.get_weights())
    km.compile(keras.optimizers.Adam(0.01))
    model.compile(fg.optimizers.Adam(0.01))
    expected = km.fit(data, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    got = model.fit(data, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(model.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_normalization_mean_and_variance_attributes(rng):
    data = rng.normal(size=(20, 5)).astype(np.float32)
    layer = fg.layers.Normalization()
    layer.adapt(data)
    assert layer.mean.shape == layer.variance.shape == (1, 5)  # (broadcast to the input's rank, as Keras's)
    np.testing.assert_allclose(layer.mean[0], data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.variance[0], data.var(axis=0), rtol=1e-5)
    given = fg.layers.Normalization(mean=[1.0, 2.0], variance=[1.0, 4.0])
    assert given.mean == [1.0, 2.0]  # (before it is built: the value given)
    given.build((None, 2))
    np.testing.assert_array_equal(given.mean, [[1.0, 2.0]])
    assert given.get_config()["mean"] == [1.0, 2.0]


@pytest.mark.keras
def test_normalization_attributes_match_keras(keras, rng):
    data = rng.normal(size=(20, 3, 4)).astype(np.float32)
    ours, theirs = fg.layers.Normalization(axis=-1), keras.layers.Normalization(axis=-1)
    ours.adapt(data)
    theirs.adapt(data)
    for name in ("mean", "variance"):
        np.testing.assert_allclose(getattr(ours, name), np.asarray(getattr(theirs, name)), rtol=1e-5, atol=1e-7)


def _gru_classifier(module):
    return module.Sequential([module.Input((5, 3)), module.layers.GRU(4), module.layers.Dense(2)])


def test_compile_again_with_the_same_optimizer_after_freezing(rng):
    x, y = rng.normal(size=(11, 5, 3)).astype(np.float32), rng.integers(0, 2, 11)
    model = _gru_classifier(fg)
    optimizer = fg.optimizers.Adam(0.05)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    model.layers[0].trainable = False
    with pytest.raises(ValueError, match=r"trainable weights changed since this optimizer's last step .*compile\(\)"):
        model.fit(x, y, verbose=0)  # (Keras's traced step would train the frozen layer still: refused)
    model.compile(optimizer, "sparse_categorical_crossentropy")  # (the same instance: its slots found per variable)
    frozen = [w.copy() for w in model.layers[0].get_weights()]
    model.fit(x, y, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.layers[0].get_weights(), frozen))
    model.layers[0].trainable = True  # (back to all it was built for: trained again)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(x, y, verbose=0)
    assert not np.array_equal(model.layers[0].get_weights()[0], frozen[0])
    started_frozen = _gru_classifier(fg)
    started_frozen.layers[0].trainable = False
    optimizer = fg.optimizers.Adam(0.05)
    started_frozen.compile(optimizer, "sparse_categorical_crossentropy")
    started_frozen.fit(x, y, verbose=0)
    started_frozen.layers[0].trainable = True
    started_frozen.compile(optimizer, "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="new optimizer instance"):  # (variables it was not built for: as Keras)
        started_frozen.fit(x, y, verbose=0)


def test_keras_3_calls_and_errors(rng):
    model = _gru_classifier(fg)
    text = []
    model.summary(print_fn=text.append)
    assert len(text) == 1 and text[0].startswith('Model: "') and text[0].endswith("\n")  # (once, as Keras 3)
    with pytest.warns(UserWarning, match="`decay` is no longer supported and will be ignored"):
        fg.optimizers.Adam(decay=1e-6)
    with pytest.raises(ValueError, match="You must call compile"):  # (Keras's ValueError)
        model.fit(rng.normal(size=(4, 5, 3)), np.zeros(4), verbose=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x, y = rng.normal(size=(11, 5, 3)).astype(np.float32), rng.integers(0, 2, 11)
    with pytest.raises(ValueError, match="takes 1 input of shape .*received a list of 2 arrays"):
        model.predict([x, x])
    with pytest.raises(ValueError, match="has 1 output; received a list of 2 target arrays"):
        model.fit(x, [y, y], verbose=0)


@pytest.mark.keras
def test_compile_again_with_the_same_optimizer_matches_keras(keras, rng):
    x, y = rng.normal(size=(11, 5, 3)).astype(np.float32), rng.integers(0, 2, 11)
    km, model = _gru_classifier(keras), _gru_classifier(fg)
    model.set_weights(km.get_weights())
    for m, module in ((km, keras), (model, fg)):
        optimizer = module.optimizers.Adam(0.01)
        m.compile(optimizer, "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        m.layers[0].trainable = False
        m.compile(optimizer, "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), km.get_weights()):  # (float32 Adam steps of two libraries: ~1e-6 apart)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
