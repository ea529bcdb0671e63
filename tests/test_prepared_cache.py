"""A recurrent layer keeps its prepared weights between inference calls (``_prepared_for_call``) only
while they are views of its current weight arrays: every way the weights can change shows in the next
call's outputs, bit for bit as a fresh layer holding the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from fastgru.layers import GRU, LSTM, SimpleRNN

CELLS = [(GRU, {}), (GRU, {"reset_after": False}), (GRU, {"use_bias": False}), (LSTM, {}), (SimpleRNN, {})]
IDS = ["gru", "gru-reset-before", "gru-no-bias", "lstm", "simple-rnn"]


def _x(dtype=np.float32):
    return np.random.default_rng(0).standard_normal((3, 5, 4)).astype(dtype)


def _fresh_outputs(cell, kwargs, weights, x):
    layer = cell(6, **kwargs)
    layer.build((None, 5, 4))
    layer.set_weights(weights)
    return layer(x)


@pytest.mark.parametrize("cell, kwargs", CELLS, ids=IDS)
def test_in_place_changes_of_each_weight_show_in_the_next_call(cell, kwargs):
    layer, x = cell(6, **kwargs), _x()
    before = layer(x)
    cached = layer.__dict__.get("_call_prepared")
    # kept only when it is made of views: not for reset_after=False (U split into copies)
    assert (cached is not None) == (kwargs.get("reset_after", True))
    for i, weight in enumerate(layer.weights):
        weight[...] = weight * 0.5 + 0.25 * (i + 1)  # in place, as an optimizer step or a user's write
        after = layer(x)
        np.testing.assert_array_equal(after, _fresh_outputs(cell, kwargs, layer.get_weights(), x))
        assert not np.array_equal(after, before)
        before = after


@pytest.mark.parametrize("cell, kwargs", CELLS, ids=IDS)
def test_set_weights_another_dtype_and_replaced_arrays_give_fresh_results(cell, kwargs):
    layer, x = cell(6, **kwargs), _x()
    layer(x)
    new = [w * 1.5 - 0.1 for w in layer.get_weights()]
    layer.set_weights(new)
    np.testing.assert_array_equal(layer(x), _fresh_outputs(cell, kwargs, new, x))
    # a float64 input computes in float64 from copies of the float32 weights: nothing kept
    x64 = _x(np.float64)
    y64 = layer(x64)
    assert y64.dtype == np.float64 and layer.__dict__.get("_call_prepared") is None
    np.testing.assert_array_equal(y64, _fresh_outputs(cell, kwargs, new, x64))
    # the weight arrays replaced by other objects (as a rebuild would): the identity check notices
    layer(x)
    for name in list(layer._params):
        layer._params[name] = layer._params[name] * -1.0
    replaced = [w.copy() for w in layer.weights]
    np.testing.assert_array_equal(layer(x), _fresh_outputs(cell, kwargs, replaced, x))
