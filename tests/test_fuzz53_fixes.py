"""Fixes from the fifty-third fuzz round (everyday Keras scripts run with ``import fastgru as keras``); each test
says what was wrong."""

from __future__ import annotations

import numpy as np

import fastgru as fg

L = fg.layers


def _residual_model(K):
    inp = K.Input((6, 3))
    h = K.layers.GRU(8)(inp)
    feat = K.layers.Dense(4, activation="relu", name="feat")(h)
    return K.Model(inp, K.layers.Dense(1, activation="sigmoid")(feat + h[:, :4]))


def test_model_layers_leave_out_operations_as_keras(keras, tmp_path):
    """``model.layers`` listed the nodes ``h[:, :4]`` and ``feat + ...`` record, which Keras 3 leaves out: code that
    picks layers by index (``Model(m.inputs, m.layers[-2].output)``, unfreezing ``m.layers[-2:]``) silently took
    another node in fastgru, for models built in code and loaded from Keras's files alike."""
    theirs, ours = _residual_model(keras), _residual_model(fg)
    ours.set_weights(theirs.get_weights())
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers]
    x = np.random.default_rng(0).standard_normal((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(fg.Model(ours.inputs, ours.layers[-2].output).predict(x, verbose=0),
                               keras.Model(theirs.inputs, theirs.layers[-2].output).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert ours.get_layer(index=-2).name == "feat"
    for model in (ours, theirs):
        for layer in model.layers:
            layer.trainable = False
        for layer in model.layers[-2:]:
            layer.trainable = True
    assert len(ours.trainable_weights) == len(theirs.trainable_weights) == 4
    theirs.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in theirs.layers]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_operations_still_show_in_the_summary_and_save():
    """The ops stay in the graph: ``summary()`` lists them (as Keras's does), ``get_layer(name)`` finds them, and the
    model saves and reloads with them."""
    model = _residual_model(fg)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(GetItem)" in line for line in lines) and any("(Add)" in line for line in lines)
    op_name = next(layer.name for layer in model._layers_and_ops if getattr(layer, "op", None) == "Add")
    assert model.get_layer(op_name).keras_operation
    clone = fg.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
