"""Keras's call takes its input by the keyword ``inputs`` too: ``layer(inputs=x)``, ``model(inputs=x, training=False)``,
eagerly and on symbolic tensors, as Keras's ``Layer.__call__`` binds it to ``call(inputs, ...)``."""

from __future__ import annotations

import numpy as np

import fastgru as fg


def test_layers_and_models_take_their_input_as_inputs_equals(keras):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    inp = keras.Input((5, 3))
    theirs = keras.Model(inp, keras.layers.Dense(2)(inputs=keras.layers.GRU(4)(inp)))
    ours_in = fg.Input((5, 3))
    ours = fg.Model(ours_in, fg.layers.Dense(2)(inputs=fg.layers.GRU(4)(ours_in)))
    ours.set_weights(theirs.get_weights())
    expected = keras.ops.convert_to_numpy(theirs(inputs=x, training=False))
    np.testing.assert_allclose(ours(inputs=x, training=False), expected, rtol=1e-5, atol=1e-6)
    h = rng.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.layers[2](inputs=h), keras.ops.convert_to_numpy(theirs.layers[2](inputs=h)),
                               rtol=1e-5, atol=1e-6)
    chain = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    chain.set_weights(theirs.get_weights())
    np.testing.assert_allclose(chain(inputs=x), expected, rtol=1e-5, atol=1e-6)
    outer = fg.Input((5, 3))
    assert ours(inputs=outer).shape == (None, 2) and chain(inputs=outer).shape == (None, 2)
