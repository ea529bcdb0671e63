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


def test_models_compute_output_shape_and_predict_step_as_keras(keras):
    """``model.compute_output_shape`` (the given batch and step counts kept; several outputs a list) and
    ``model.predict_step`` (x, or a tuple led by x) give Keras's answers; a shape the model does not take is refused."""
    rng = np.random.default_rng(1)

    def chain(lib):
        return lib.Sequential([lib.Input((None, 3)), lib.layers.GRU(4, return_sequences=True), lib.layers.Dense(2)])

    def graph(lib):
        inp = lib.Input((5, 3))
        return lib.Model(inp, [lib.layers.Dense(2)(lib.layers.GRU(4)(inp)), lib.layers.Dense(1)(inp)])

    for make in (chain, graph):
        ours, theirs = make(fg), make(keras)
        ours.set_weights(theirs.get_weights())
        for shape in ((None, 5, 3), (8, 5, 3)):
            expected = theirs.compute_output_shape(shape)
            got = ours.compute_output_shape(shape)
            assert got == (list(map(tuple, expected)) if isinstance(expected, list) else tuple(expected)), (shape, got)
        x = rng.standard_normal((2, 5, 3)).astype(np.float32)
        for data in (x, (x,), (x, np.zeros(2))):
            got, expected = ours.predict_step(data), theirs.predict_step(data)
            for g, e in zip(*((got, expected) if isinstance(got, list) else ([got], [expected]))):
                np.testing.assert_allclose(g, keras.ops.convert_to_numpy(e), rtol=1e-5, atol=1e-6)
    with np.testing.assert_raises_regex(ValueError, "expects shape"):
        graph(fg).compute_output_shape((None, 5, 4))
    assert chain(fg).compute_output_shape((None, 7, 3)) == (None, 7, 2)
