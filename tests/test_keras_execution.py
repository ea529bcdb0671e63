"""The suite's Keras runs eagerly unless a test is marked ``keras_graph`` (tests/conftest.py), and
``FASTGRU_TEST_KERAS_GRAPH=1`` runs every test against Keras's compiled graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import _KERAS_GRAPH_ALWAYS


def _fit_runs_eagerly(keras) -> bool:
    """Whether Keras's own ``fit`` ran its step eagerly (a Python side effect in ``call`` runs at every step
    eagerly, once per trace in a graph)."""
    calls = []

    class Counting(keras.layers.Layer):
        def call(self, x):
            calls.append(1)
            return x

    model = keras.Sequential([keras.Input((2,)), Counting(), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    before = len(calls)  # (the model's symbolic build called it too)
    model.fit(np.ones((8, 2), "float32"), np.ones((8, 1), "float32"), batch_size=2, epochs=1, verbose=0)
    return len(calls) - before == 4  # four batches; a graph traces the step once


def test_keras_runs_eagerly_unless_marked(keras):
    import tensorflow as tf

    assert tf.config.functions_run_eagerly() is not _KERAS_GRAPH_ALWAYS
    assert _fit_runs_eagerly(keras) is not _KERAS_GRAPH_ALWAYS


@pytest.mark.keras_graph
def test_a_marked_test_compares_against_the_compiled_graph(keras):
    import tensorflow as tf

    assert tf.config.functions_run_eagerly() is False
    assert _fit_runs_eagerly(keras) is False
