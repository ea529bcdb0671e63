"""``get_initial_state(batch_size)`` of the recurrent layers, as Keras's: one (batch, units) array of zeros per
state in the layer's dtype (GRU, LSTM, SimpleRNN), and an RNN around a script's cell asks the cell when it has
its own ``get_initial_state``; a batch size that is not a whole number 0 or more is refused."""

from __future__ import annotations

import numpy as np
import pytest
from test_cell_rnn import _cells

import fastgru as fg


@pytest.mark.parametrize("name,dtype", [("GRU", "float32"), ("LSTM", "float32"), ("SimpleRNN", "float64")])
def test_built_in_layers_start_from_zeros_as_keras(keras, name, dtype):
    ours = getattr(fg.layers, name)(5, dtype=dtype).get_initial_state(3)
    theirs = getattr(keras.layers, name)(5, dtype=dtype).get_initial_state(3)
    assert len(ours) == len(theirs) == (2 if name == "LSTM" else 1)
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape) == (3, 5) and a.dtype == np.dtype(b.dtype.name) and not a.any()
    assert [s.shape for s in fg.layers.GRU(4).get_initial_state(0)] == [(0, 4)]


def test_a_script_cell_gives_its_own_initial_state_as_keras(keras):
    def with_start(module):
        minimal, gated = _cells(module)

        class StartsAtHalf(minimal):
            def get_initial_state(self, batch_size=None):
                return [module.ops.ones((batch_size, self.units)) * 0.5]
        return StartsAtHalf(3), gated(2)

    for ours_cell, theirs_cell in zip(with_start(fg), with_start(keras)):
        ours = fg.layers.RNN(ours_cell).get_initial_state(4)
        theirs = keras.layers.RNN(theirs_cell).get_initial_state(4)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = np.random.default_rng(0).standard_normal((4, 5, 2)).astype("float32")
    starts, _ = with_start(fg)
    rnn = fg.layers.RNN(starts)
    np.testing.assert_allclose(np.asarray(rnn(x)), np.asarray(rnn(x, initial_state=rnn.get_initial_state(4))),
                               rtol=1e-6)


@pytest.mark.parametrize("bad", [-1, 2.0, "3", None, True])
def test_a_bad_batch_size_is_refused(bad):
    minimal, _ = _cells(fg)
    for layer in (fg.layers.GRU(2), fg.layers.LSTM(2), fg.layers.RNN(minimal(2))):
        with pytest.raises(ValueError, match="get_initial_state.batch_size. takes a whole number"):
            layer.get_initial_state(bad)
