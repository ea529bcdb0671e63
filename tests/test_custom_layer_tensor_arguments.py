"""A custom layer whose call takes several tensors — the TensorFlow NMT tutorial's ``attention(query, values)``,
``layer(x, context=c)`` — built, trained, loaded and saved as Keras's (``fastgru.tensor_arguments``): given
by position or by keyword, with each tensor's mask as ``<name>_mask``."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature


def _bahdanau(keras):
    class Bahdanau(keras.layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.w1, self.w2, self.v = (keras.layers.Dense(units), keras.layers.Dense(units), keras.layers.Dense(1))

        def call(self, query, values, values_mask=None):
            score = self.v(keras.ops.tanh(self.w1(keras.ops.expand_dims(query, 1)) + self.w2(values)))
            if values_mask is not None:
                score = keras.ops.where(keras.ops.expand_dims(values_mask, -1), score, -1e9)
            weights = keras.ops.softmax(score, axis=1)
            return keras.ops.sum(weights * values, axis=1)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return Bahdanau


def _model(keras, attention, by_keyword: bool):
    tokens = keras.Input((6,), dtype="int32")
    sequence, state = keras.layers.GRU(5, return_sequences=True, return_state=True)(
        keras.layers.Embedding(12, 3, mask_zero=True)(tokens))
    layer = attention(name="attention")
    context = layer(state, values=sequence) if by_keyword else layer(state, sequence)
    return keras.Model(tokens, keras.layers.Dense(1)(context))


def _data(rng):
    tokens = rng.integers(1, 12, (16, 6)).astype(np.int32)
    tokens[:6, 4:] = 0  # (padding: the values' mask reaches values_mask)
    return tokens, rng.standard_normal((16, 1)).astype(np.float32)


@pytest.mark.parametrize("by_keyword", [False, True], ids=["by position", "by keyword"])
def test_a_call_on_two_tensors_builds_and_trains_as_keras_s(keras, rng, by_keyword):
    keras.backend.clear_session()
    fg.backend.clear_session()
    theirs, ours = _model(keras, _bahdanau(keras), by_keyword), _model(fg, _bahdanau(fg), by_keyword)
    ours.set_weights(theirs.get_weights())
    x, y = _data(rng)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for model, k in ((theirs, keras), (ours, fg)):
        model.compile(k.optimizers.Adam(), "mse")
    their_loss = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


@pytest.mark.parametrize("by_keyword", [False, True], ids=["by position", "by keyword"])
def test_a_keras_file_calling_on_two_tensors_loads_trains_and_saves_back(keras, tmp_path, rng, by_keyword):
    attention = keras.saving.register_keras_serializable(package="nmt")(_bahdanau(keras))
    theirs = _model(keras, attention, by_keyword)
    theirs.compile("adam", "mse")
    theirs.save(tmp_path / "nmt.keras")
    ours = fg.load_model(tmp_path / "nmt.keras", custom_objects={"Bahdanau": _bahdanau(fg)})
    x, y = _data(rng)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    their_loss = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    ours.save(tmp_path / "ours.keras")
    layers = json.loads(zipfile.ZipFile(tmp_path / "ours.keras").read("config.json"))["config"]["layers"]
    node = next(entry for entry in layers if entry["class_name"] == "Bahdanau")["inbound_nodes"][0]
    assert len(node["args"]) == 1 and set(node["kwargs"]) == {"values"}  # (each tensor to its parameter)
    again = keras.models.load_model(tmp_path / "ours.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-6)


def test_tensors_beside_a_list_or_to_a_built_in_layer_are_refused_by_name():
    a, b, c = fg.Input((3,)), fg.Input((3,)), fg.Input((3,))

    class Takes(fg.layers.Layer):
        def call(self, inputs, other):
            return inputs[0] + other

    with pytest.raises(UnsupportedKerasFeature, match="called on a list of tensors and on tensors given"):
        Takes()([a, b], other=c)
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        fg.layers.Dense(2)(a, other=b)


def _context(keras):
    class Context(keras.layers.Layer):  # (a build taking one shape per tensor: Keras's shapes_dict)
        def build(self, inputs_shape, context_shape):
            self.w = self.add_weight(shape=(context_shape[-1], inputs_shape[-1]), initializer="glorot_uniform",
                                     name="w")

        def call(self, inputs, context):
            return inputs + keras.ops.expand_dims(keras.ops.matmul(context, self.w), 1)

    return Context


def test_a_build_of_one_shape_per_tensor_saves_keras_s_shapes_dict(keras, tmp_path, rng):
    models = []
    for k in (keras, fg):
        sequence, context = k.Input((6, 5)), k.Input((3,))
        models.append(k.Model([sequence, context], _context(k)()(sequence, context=context)))
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    ours.save(tmp_path / "ours.keras")
    layers = json.loads(zipfile.ZipFile(tmp_path / "ours.keras").read("config.json"))["config"]["layers"]
    entry = next(e for e in layers if e["class_name"] == "Context")
    assert entry["build_config"] == {"shapes_dict": {"inputs_shape": [None, 6, 5], "context_shape": [None, 3]}}
    again = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"Context": _context(keras)})
    x = [rng.standard_normal((2, 6, 5)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)]
    np.testing.assert_allclose(again.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-6)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-6)
