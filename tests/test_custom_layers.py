"""Keras-style custom layers (``class Linear(keras.layers.Layer)`` with ``add_weight`` and ``call(self, inputs)``)
written against fastgru (``import fastgru as keras``): they run as Keras's, eagerly, in a Sequential and in a
Functional graph, with Keras's weights (names, order, trainable flags). Training through them:
tests/test_custom_layer_training.py."""

from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature


def _classes(keras):
    """The same custom layers written against ``keras`` (Keras itself, or fastgru standing in for it)."""

    class Linear(keras.layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal",
                                     trainable=True)
            self.scale = self.add_weight(shape=(), initializer="ones", trainable=False, name="scale")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros")

        def call(self, inputs):
            return keras.ops.tanh(keras.ops.matmul(inputs, self.w) + self.b) * self.scale

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    class MeanOverTime(keras.layers.Layer):  # (no weights; takes a mask and a training flag)
        def call(self, inputs, mask=None, training=None):
            return keras.ops.mean(inputs, axis=1)

    return Linear, MeanOverTime


def test_custom_layers_run_as_keras_s(keras, rng):
    their_linear, their_mean = _classes(keras)
    our_linear, our_mean = _classes(fg)
    theirs = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(5, return_sequences=True), their_linear(4),
                               their_mean()])
    ours = fg.Sequential([fg.Input((6, 3)), fg.layers.GRU(5, return_sequences=True), our_linear(4), our_mean()])
    assert [(w.name, w.trainable, w.shape) for w in ours.weights] == \
        [(w.name, w.trainable, tuple(w.shape)) for w in theirs.weights]
    assert [w.path.split("/", 1)[1] for w in ours.weights][3:] == ["linear/variable", "linear/variable_1",
                                                                  "linear/scale"]
    weights = [rng.standard_normal(np.shape(w)).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    expected = theirs.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert ours.output_shape == (None, 4) and ours.layers[1].output_shape == (None, 6, 4)
    inputs = fg.Input((None, 3))  # (a Functional graph, steps unknown: the probe finds the axis that follows them)
    h = our_linear(2, name="lin")(inputs)
    assert h.shape == (None, None, 2)
    graph = fg.Model(inputs, our_mean()(h))
    assert graph.predict(x).shape == (3, 2)
    twin = copy.deepcopy(ours)  # (as pickling: config + weights, get_config as Keras asks of a custom layer)
    np.testing.assert_allclose(twin.predict(x), expected, rtol=1e-5, atol=1e-6)


def test_add_weight_follows_keras_s_signature():
    layer = fg.layers.Layer(name="holder")
    w = layer.add_weight((2, 3), "ones")
    assert w.name == "variable" and w.shape == (2, 3) and (w.numpy() == 1).all()
    count = layer.add_weight(shape=(), dtype="int32", trainable=False, name="count")
    assert count.dtype == np.int32 and count.numpy() == 0 and not count.trainable
    assert [v.name for v in layer.weights] == ["variable", "count"] and len(layer.trainable_weights) == 1
    with pytest.raises(ValueError, match="`name` must be passed as a keyword argument"):
        layer.add_weight("kernel", (2, 2))
    with pytest.raises(ValueError, match="fully defined"):
        layer.add_weight(shape=(None, 2))


def _block(keras):
    class ResidualBlock(keras.layers.Layer):  # (sublayers made in __init__, called in call)
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(units, activation="relu")
            self.norm = keras.layers.LayerNormalization()

        def call(self, inputs):
            return self.norm(inputs + self.inner(inputs))

    return ResidualBlock


def test_a_custom_layer_s_sublayers_are_its_weights_as_in_keras(keras, rng):
    theirs = keras.Sequential([keras.Input((6, 4)), keras.layers.GRU(4, return_sequences=True), _block(keras)(4)])
    ours = fg.Sequential([fg.Input((6, 4)), fg.layers.GRU(4, return_sequences=True), _block(fg)(4)])
    assert [(w.name, tuple(w.shape)) for w in ours.weights] == [(w.name, tuple(w.shape)) for w in theirs.weights]
    weights = [rng.standard_normal(np.shape(w)).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert ours.count_params() == theirs.count_params()
    assert ours.layers[-1].weight_paths[:2] == [f"{ours.layers[-1].inner.name}/kernel",
                                                f"{ours.layers[-1].inner.name}/bias"]
    assert [re.sub(r"_\d+(?=/|$)", "", w.path.split("/", 1)[1]) for w in ours.weights][3:6] == [
                                                                  "residual_block/dense/kernel",
                                                                  "residual_block/dense/bias",
                                                                  "residual_block/layer_normalization/gamma"]


def _scaled(keras):
    class ScaledLinear(keras.layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
            self.s = self.add_weight(shape=(), initializer="ones", trainable=False, name="scale")
            self.b = self.add_weight(shape=(self.units,), initializer="random_normal")

        def call(self, inputs):
            return keras.ops.tanh(keras.ops.matmul(inputs, self.w) + self.b) * self.s

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return ScaledLinear


def test_keras_files_with_a_custom_layer_load_given_the_class_and_save_for_keras(keras, tmp_path, rng):
    """A Keras model holding a custom layer loads in fastgru given the layer written for fastgru in
    ``custom_objects`` (by class name or ``package>name``), .keras and .h5, Sequential and Functional; fastgru writes
    it back as Keras does (Keras loads it given its own class). Without the class it is refused by name."""
    theirs_cls = keras.saving.register_keras_serializable(package="demo")(_scaled(keras))
    ours_cls = _scaled(fg)
    chain = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(5, return_sequences=True), theirs_cls(4),
                              keras.layers.GlobalAveragePooling1D()])
    chain.layers[1].s.assign(2.0)
    inputs = keras.Input((6, 3))
    h = keras.layers.GRU(5, return_sequences=True)(inputs)
    graph = keras.Model(inputs, keras.layers.Add()([theirs_cls(5)(h), h]))
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    for model, name in ((chain, "chain.keras"), (chain, "chain.h5"), (graph, "graph.keras")):
        model.save(tmp_path / name)
        ours = fg.load_model(tmp_path / name, custom_objects={"demo>ScaledLinear": ours_cls})
        np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6, err_msg=name)
    with pytest.raises(UnsupportedKerasFeature, match="custom or unknown layer class.*custom_objects"):
        fg.load_model(tmp_path / "chain.keras")
    ours = fg.load_model(tmp_path / "chain.keras", custom_objects={"ScaledLinear": ours_cls})
    for name in ("back.keras", "back.h5"):
        ours.save(tmp_path / name)
        again = keras.models.load_model(tmp_path / name, custom_objects={"ScaledLinear": theirs_cls})
        np.testing.assert_allclose(again.predict(x, verbose=0), chain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = keras.Sequential([keras.Input((6, 4)), _block(keras)(4), keras.layers.Dense(1)])  # (layers held)
    theirs.save(tmp_path / "block.keras")
    ours = fg.load_model(tmp_path / "block.keras", custom_objects={"ResidualBlock": _block(fg)})
    x = rng.standard_normal((2, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "block_back.keras")
    again = keras.models.load_model(tmp_path / "block_back.keras", custom_objects={"ResidualBlock": _block(keras)})
    np.testing.assert_allclose(again.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


class ModuleLinear(fg.layers.Layer):  # (at module level: pickled by reference, as any class)
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units))

    def call(self, inputs):
        return fg.ops.matmul(inputs, self.w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_models_with_a_custom_layer_copy_pickle_and_clone(rng):
    inputs = fg.Input((5, 3))
    graph = fg.Model(inputs, ModuleLinear(2)(fg.layers.GRU(4, return_sequences=True)(inputs)))
    chain = fg.Sequential([fg.Input((5, 3)), ModuleLinear(2)])
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    for model in (graph, chain):
        for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            np.testing.assert_array_equal(twin.predict(x), model.predict(x))
        clone = fg.models.clone_model(model)
        clone.set_weights(model.get_weights())
        np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_a_keras_custom_layer_without_init_loads(keras, tmp_path, rng):
    """Keras's base config holds ``autocast`` (and ``activity_regularizer``): a layer passing them to fastgru's
    Layer loads (it was refused as an unexpected keyword)."""

    def make(k):
        class ScaleBias(k.layers.Layer):
            def build(self, input_shape):
                self.scale = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")
                self.bias = self.add_weight(shape=(input_shape[-1],), initializer="random_normal")

            def call(self, inputs):
                return inputs * self.scale + self.bias

        return ScaleBias

    theirs = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4, return_sequences=True), make(keras)()])
    theirs.save(tmp_path / "sb.keras")
    ours = fg.load_model(tmp_path / "sb.keras", custom_objects={"ScaleBias": make(fg)})
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_array_making_ops_a_custom_layer_uses(keras, rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    for name, args in (("arange", (0, 5)), ("arange", (0.0, 1.0, 0.25)), ("ones", ((2, 3),)), ("zeros", ((3,),)),
                       ("eye", (3,)), ("full", ((2,), 7.0)), ("abs", (x,)), ("swish", (x,)),
                       ("ones", ((1, 2), "int32")), ("full", ((2,), 3.0, "int32")), ("eye", (3, 4, 1, "int32")),
                       ("full", ((2,), 3)),  # (an integer fill: floatx, as Keras's)
                       ("linspace", (np.array(0.0), np.array(1.0), 4)),  # (float64 endpoints: float64)
                       ("tri", (4,)), ("tri", (3, 5, -1, "int32")), ("identity", (3,)), ("linspace", (0, 1, 5)),
                       ("logspace", (0.0, 2.0, 3)), ("geomspace", (1.0, 8.0, 4)), ("hard_swish", (x,))):
        ours, theirs = getattr(fg.ops, name)(*args), getattr(keras.ops, name)(*args)
        assert ours.dtype == theirs.numpy().dtype, name
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, err_msg=name)
    for ours, theirs in zip(fg.ops.meshgrid(np.arange(3.0), np.arange(2.0)), keras.ops.meshgrid(np.arange(3.0),
                                                                                               np.arange(2.0))):
        np.testing.assert_array_equal(ours, theirs.numpy())
    assert fg.ops.shape(x) == (2, 3) and fg.ops.shape(fg.Input((5, 3))) == (None, 5, 3)
    np.testing.assert_allclose(fg.ops.einsum("ij,kj->ik", x, x).numpy(), keras.ops.einsum("ij,kj->ik", x, x).numpy(),
                               rtol=1e-6)


def test_registered_classes_load_without_custom_objects_and_keep_their_registered_name(keras, tmp_path, rng,
                                                                                         request):
    request.addfinalizer(lambda: fg.utils.get_custom_objects().pop("MyPkg>ScaleShift", None))
    def scale_shift(k):
        class ScaleShift(k.layers.Layer):
            def build(self, input_shape):
                self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

            def call(self, inputs):
                return inputs * self.scale + 1.0

        return ScaleShift

    theirs_class = keras.saving.register_keras_serializable(package="MyPkg")(scale_shift(keras))
    inputs = keras.Input((3,))
    theirs = keras.Model(inputs, theirs_class()(inputs))
    theirs.layers[-1].set_weights([np.array([1.0, 2.0, 3.0], np.float32)])
    theirs.save(tmp_path / "registered.keras")
    with pytest.raises(UnsupportedKerasFeature, match="custom or unknown layer class"):
        fg.load_model(tmp_path / "registered.keras")  # (nothing registered in fastgru yet)
    given = fg.load_model(tmp_path / "registered.keras", custom_objects={"MyPkg>ScaleShift": scale_shift(fg)})
    given.save(tmp_path / "given.keras")  # (the file's registered name kept: Keras finds its class again)
    ours_class = fg.saving.register_keras_serializable(package="MyPkg")(scale_shift(fg))
    assert fg.saving.get_registered_name(ours_class) == "MyPkg>ScaleShift"
    assert fg.utils.get_custom_objects()["MyPkg>ScaleShift"] is ours_class
    ours = fg.load_model(tmp_path / "registered.keras")
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-6)
    assert type(ours.layers[-1]) is ours_class
    with fg.saving.custom_object_scope({"ScaleShift": scale_shift(fg)}):  # (a scope's class wins)
        assert type(fg.load_model(tmp_path / "registered.keras").layers[-1]) is not ours_class
    for model, name in ((given, "given"), (ours, "ours")):
        if name == "ours":
            model.save(tmp_path / "ours.keras")
        again = keras.models.load_model(tmp_path / f"{name}.keras")
        np.testing.assert_allclose(again.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-6)


def test_a_held_sequential_s_weight_paths_after_loading_are_keras_s(keras, tmp_path):
    def block(k):
        class Block(k.layers.Layer):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.ff = k.Sequential([k.layers.Dense(8, activation="relu"), k.layers.Dense(4)])
                self.proj = k.layers.Dense(4)

            def call(self, inputs):
                return self.proj(inputs) + self.ff(inputs)

        return Block

    inputs = keras.Input((5, 3))
    keras.Model(inputs, block(keras)()(inputs)).save(tmp_path / "block.keras")
    theirs = keras.models.load_model(tmp_path / "block.keras", custom_objects={"Block": block(keras)})
    ours = fg.load_model(tmp_path / "block.keras", custom_objects={"Block": block(fg)})

    def strip(path):
        return re.sub(r"_\d+(?=/|$)", "", path)

    assert [strip(w.path) for w in ours.weights] == [strip(w.path) for w in theirs.weights]
    assert strip(ours.weights[0].path) == "block/sequential/dense/kernel"


def _causal_option(keras):
    class Shifted(keras.layers.Layer):  # (an option named causal: the class's own, kept in its config)
        def __init__(self, causal=False, **kwargs):
            super().__init__(**kwargs)
            self.causal = causal

        def call(self, inputs):
            return inputs * (2.0 if self.causal else 1.0)

        def get_config(self):
            return {**super().get_config(), "causal": self.causal}

    return Shifted


def test_a_custom_layer_s_causal_option_is_saved_as_its_own(keras, tmp_path, rng):
    ours_cls, theirs_cls = _causal_option(fg), _causal_option(keras)
    inputs = fg.Input((3,))
    model = fg.Model(inputs, ours_cls(causal=True)(inputs))
    model.save(tmp_path / "m.keras")
    x = rng.standard_normal((2, 3)).astype(np.float32)
    again = fg.load_model(tmp_path / "m.keras", custom_objects={"Shifted": ours_cls})
    theirs = keras.models.load_model(tmp_path / "m.keras", custom_objects={"Shifted": theirs_cls})
    for loaded in (again, theirs):
        np.testing.assert_allclose(np.asarray(loaded.predict(x, verbose=0)), 2 * x, rtol=1e-6)
