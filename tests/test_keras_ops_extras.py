"""More of ``keras.ops`` on ``fastgru.ops`` (``fastgru.op_extras``) and Keras's result dtypes on arrays
(``fastgru.op_numpy``): each against Keras on arrays, in a graph (saved and loaded back in Keras), and in a custom
layer's training."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature

_INTS = np.array([[1, -2, 4], [3, 3, 8]], np.int32)
_BOOLS = np.array([True, False])

_EAGER_CASES = {
    "floor of int32": lambda o: o.floor(_INTS),
    "ceil of bool": lambda o: o.ceil(_BOOLS),
    "relu of int32": lambda o: o.relu(_INTS),
    "relu6 of int32": lambda o: o.relu6(_INTS * 3),
    "exp of bool": lambda o: o.exp(_BOOLS),
    "sqrt of uint8": lambda o: o.sqrt(np.array([3, 9], np.uint8)),
    "moments of int32": lambda o: o.moments(_INTS, axes=[1]),
    "where with a condition alone": lambda o: o.where(_INTS > 2),
    "one_hot of fractional ids": lambda o: o.one_hot(np.array([1.7, 2.2, -0.5], np.float32), 3),
    "stop_gradient of int32": lambda o: o.stop_gradient(_INTS),
    "square of bool": lambda o: o.square(_BOOLS),
    "top_k indices of int64": lambda o: o.top_k(_INTS.astype(np.int64), 2)[1],
    "sigmoid of float16": lambda o: o.sigmoid(np.array([0.5, -1.0], np.float16)),
    "pad": lambda o: o.pad(_INTS, [[0, 0], [1, 2]], constant_values=7),
    "pad reflecting": lambda o: o.pad(_INTS.astype(np.float32), [[1, 1], [2, 0]], mode="reflect"),
    "slice": lambda o: o.slice(_INTS, [0, 1], [2, 2]),
    "average with weights": lambda o: o.average(_INTS.astype(np.float32), axis=1, weights=[1.0, 2.0, 3.0]),
    "average of int32": lambda o: o.average(_INTS),
    "layer_normalization": lambda o: o.layer_normalization(_INTS.astype(np.float32), gamma=[1.0, 2.0, 0.5],
                                                           beta=[0.1, 0.0, -1.0]),
    "layer_normalization over axis 0": lambda o: o.layer_normalization(_INTS.astype(np.float32), axis=0),
    "rms_normalization": lambda o: o.rms_normalization(_INTS.astype(np.float32), scale=[1.0, 2.0, 3.0]),
    "segment_sum": lambda o: o.segment_sum(_INTS, np.array([0, 2]), num_segments=3),
    "segment_max": lambda o: o.segment_max(_INTS.astype(np.float32), np.array([1, 1])),
    "nn.softmax": lambda o: o.nn.softmax(_INTS.astype(np.float32)),
    "multi_hot": lambda o: o.multi_hot(np.array([[1, 2, 2], [4, 0, 0]], np.int32), 5),
    "nn.multi_hot of one row": lambda o: o.nn.multi_hot(np.array([3, 1], np.int32), 4),
    "one_hot of float64 ids": lambda o: o.one_hot(np.array([1.0, 2.0]), 3),
    "numpy.cumsum": lambda o: o.numpy.cumsum(_INTS, axis=1),
}


@pytest.mark.parametrize("case", sorted(_EAGER_CASES))
def test_ops_on_arrays_give_keras_s_values_and_dtypes(keras, case):
    ours, theirs = (_EAGER_CASES[case](o) for o in (fg.ops, keras.ops))
    ours, theirs = (list(r) if isinstance(r, (list, tuple)) else [r] for r in (ours, theirs))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        b = np.asarray(b)
        assert np.asarray(a).dtype == b.dtype, case
        tolerance = 1e-3 if b.dtype == np.float16 else 1e-6  # (float16: computed in float32, then rounded)
        np.testing.assert_allclose(np.asarray(a, np.float64), b.astype(np.float64), rtol=tolerance, atol=tolerance,
                                   err_msg=case)


def test_relu_with_max_value_keeps_integers_as_keras_s(keras):
    ours, theirs = (k.activations.relu(_INTS, max_value=3) for k in (fg, keras))
    assert np.asarray(ours).dtype == np.asarray(theirs).dtype == np.int32
    np.testing.assert_array_equal(ours, np.asarray(theirs))


def _graph(k):
    inputs = k.Input((6, 4))
    h = k.ops.pad(inputs, [[0, 0], [1, 0], [0, 0]], constant_values=0.5)
    h = k.ops.slice(h, [0, 1, 0], [-1, 5, 3])  # (every sample: size -1 on the batch axis)
    h = k.ops.layer_normalization(h, gamma=np.array([1.0, 2.0, 0.5], np.float32),
                                  beta=np.array([0.1, 0.0, -0.2], np.float32))
    h = k.ops.rms_normalization(h, scale=np.array([0.5, 1.5, 1.0], np.float32))
    return k.Model(inputs, k.ops.average(h, axis=1, weights=np.arange(1.0, 6.0, dtype=np.float32)))


def test_the_ops_in_a_graph_compute_and_save_as_keras_s(keras, tmp_path, rng):
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    ours = _graph(fg)
    theirs = keras.Model.from_config(_graph(keras).get_config())
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "ops.keras")
    again = keras.models.load_model(tmp_path / "ops.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-6)


def _normalized(keras):
    class Normalized(keras.layers.Layer):  # (its own gamma, beta and scale through the normalization ops)
        def build(self, input_shape):
            d = input_shape[-1]
            self.gamma = self.add_weight(shape=(d,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(d,), initializer="zeros", name="beta")
            self.scale = self.add_weight(shape=(d,), initializer="ones", name="scale")

        def call(self, inputs):
            h = keras.ops.layer_normalization(inputs, gamma=self.gamma, beta=self.beta, epsilon=1e-5)
            return keras.ops.rms_normalization(keras.ops.tanh(h), scale=self.scale)

    return keras.Sequential([keras.Input((5, 3)), keras.layers.Dense(4), Normalized(), keras.layers.GRU(2)])


def test_normalization_ops_train_a_custom_layer_s_weights_as_keras_s(keras, rng):
    keras.backend.clear_session()
    fg.backend.clear_session()
    theirs, ours = _normalized(keras), _normalized(fg)
    weights = [w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x, y = rng.standard_normal((16, 5, 3)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    for model in (theirs, ours):
        model.compile("adam", "mse")
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    their_loss = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def test_segments_of_a_symbolic_tensor_are_refused_by_name():
    inputs = fg.Input((3,))
    with pytest.raises(UnsupportedKerasFeature, match="segment_sum of a symbolic tensor"):
        fg.ops.segment_sum(inputs, np.array([0, 1]))
    with pytest.raises(UnsupportedKerasFeature, match="pad with mode='edge' in a graph"):  # (reflect runs now)
        fg.ops.pad(inputs, [[0, 0], [1, 1]], mode="edge")
