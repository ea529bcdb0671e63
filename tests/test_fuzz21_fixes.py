"""Fixes from the twenty-first fuzz round, the public API misused (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _model(compiled: bool = True):
    m = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.BatchNormalization(), fg.layers.Dense(1)])
    if compiled:
        m.compile("adam", "mse")
    return m


def test_set_weights_refuses_values_beyond_the_layers_float32():
    """float64 values past float32's range passed the NaN check and became inf in the copy (predict: NaN)."""
    m = _model(False)
    w = m.get_weights()
    with pytest.raises(ValueError, match=r"weight 'kernel': values up to 1e\+39 do not fit the layer's float32"):
        m.set_weights([np.full(w[0].shape, 1e39)] + w[1:])
    np.testing.assert_array_equal(m.get_weights()[0], w[0])  # nothing copied


def test_set_weights_refuses_a_negative_moving_variance_and_non_lists():
    m = _model(False)
    w = m.get_weights()
    bn = m.layers[1]
    with pytest.raises(ValueError, match="moving_variance must not be negative"):
        bn.set_weights(bn.get_weights()[:3] + [-np.ones_like(bn.get_weights()[3])])
    for bad in (5, "weights", {"kernel": w[0]}):
        with pytest.raises(TypeError, match="set_weights expects a list of arrays"):
            m.set_weights(bad)


def test_training_on_no_samples_is_refused():
    """fit, evaluate and train_on_batch on 0 samples reported a loss of 0.0; a validation_split that left
    no training samples trained nothing and said loss 0.0; empty validation_data said val_loss 0.0."""
    m = _model()
    x0, y0 = np.zeros((0, 5, 3), np.float32), np.zeros((0, 1), np.float32)
    x, y = np.zeros((8, 5, 3), np.float32), np.zeros((8, 1), np.float32)
    for call in (lambda: m.fit(x0, y0, verbose=0), lambda: m.evaluate(x0, y0, verbose=0),
                 lambda: m.train_on_batch(x0, y0), lambda: m.fit(x, y, validation_data=(x0, y0), verbose=0)):
        with pytest.raises(ValueError, match="no samples"):
            call()
    with pytest.raises(ValueError, match="validation_split=0.99 leaves none of the 8 samples"):
        m.fit(x, y, validation_split=0.99, verbose=0)
    inp = fg.layers.Input((5, 3))
    h = fg.layers.GRU(4)(inp)
    two = fg.Model(inp, [fg.layers.Dense(1, name="a")(h), fg.layers.Dense(2, name="b")(h)])
    two.compile("adam", ["mse", "mse"])
    with pytest.raises(ValueError, match="no samples"):
        two.fit(x0, [y0, np.zeros((0, 2), np.float32)], verbose=0)


def test_names_must_be_strings():
    """GRU(4, name=5) and Sequential(name=7) were taken, and save() wrote a file load_model refused."""
    with pytest.raises(TypeError, match="GRU: name must be a string, received int 5"):
        fg.layers.GRU(4, name=5)
    with pytest.raises(TypeError, match="Sequential: name must be a string"):
        fg.Sequential(name=7)


def test_a_nan_loss_weight_or_learning_rate_is_refused():
    """A two-output model took loss_weights=[nan, 1.0] and a LearningRateScheduler could set a NaN rate:
    every weight turned NaN at the next step."""
    inp = fg.layers.Input((5, 3))
    h = fg.layers.GRU(4)(inp)
    two = fg.Model(inp, [fg.layers.Dense(1, name="a")(h), fg.layers.Dense(2, name="b")(h)])
    for bad in ([float("nan"), 1.0], ["a", 1.0]):
        with pytest.raises(ValueError, match="loss_weights for output 'a' should be a finite number"):
            two.compile("adam", ["mse", "mse"], loss_weights=bad)
    with pytest.raises(ValueError, match="should be a finite number"):
        fg.optimizers.Adam(float("nan"))
    m = _model()
    before = m.get_weights()
    with pytest.raises(ValueError, match="should be a finite number"):
        m.fit(np.zeros((8, 5, 3), np.float32), np.zeros((8, 1), np.float32), verbose=0,
              callbacks=[fg.callbacks.LearningRateScheduler(lambda epoch: float("nan"))])
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_built_conv1d_refuses_inputs_shorter_than_its_window():
    """Refused at the first call, but once built a Conv1D (and a model on Input((None, 3))) returned an
    empty (B, 0, filters) output for 2 steps under a window of 3."""
    conv = fg.layers.Conv1D(4, 3)
    conv(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(ValueError, match="a window of 3 steps at dilation 1 leaves no output steps from inputs of 2"):
        conv(np.zeros((2, 2, 3), np.float32))
    m = fg.Sequential([fg.layers.Input((None, 3)), fg.layers.Conv1D(4, 3)])
    with pytest.raises(ValueError, match="leaves no output steps"):
        m.predict(np.zeros((2, 2, 3), np.float32))
    assert m.predict(np.zeros((2, 3, 3), np.float32)).shape == (2, 1, 4)


def test_callbacks_that_are_not_callbacks_and_a_single_callback():
    """callbacks=[5] raised AttributeError ('int' object has no attribute 'set_model'), callbacks=5 'int'
    object is not iterable; one callback not in a list was refused (Keras takes it)."""
    m = _model()
    x, y = np.zeros((8, 5, 3), np.float32), np.zeros((8, 1), np.float32)
    with pytest.raises(TypeError, match=r"callbacks\[0\] is not a callback .* received int 5"):
        m.fit(x, y, verbose=0, callbacks=[5])
    with pytest.raises(TypeError, match="callbacks must be a list of callbacks"):
        m.fit(x, y, verbose=0, callbacks=5)
    with pytest.raises(TypeError, match="callbacks must be a list of callbacks"):
        m.predict(x, callbacks=5)
    history = fg.callbacks.History()
    assert m.fit(x, y, epochs=2, verbose=0, callbacks=history) is history
    assert len(history.history["loss"]) == 2


def test_from_config_of_malformed_configs_and_an_empty_sequential():
    """KeyError('layers'), KeyError('config'), AttributeError, TypeError before; an empty Sequential's
    predict returned its input, its fit an IndexError, its pop an IndexError."""
    with pytest.raises(ValueError, match="expects a dict with a 'layers' list"):
        fg.Sequential.from_config({})
    with pytest.raises(ValueError, match="layer 0 should be a dict with 'class_name' and a 'config' dict"):
        fg.Sequential.from_config({"layers": [1, 2]})
    with pytest.raises(ValueError, match="layer 0 should be a dict"):
        fg.Sequential.from_config({"layers": [{"class_name": "Dense"}]})
    with pytest.raises(ValueError, match="Model.from_config expects a dict"):
        fg.Model.from_config(None)
    empty = fg.Sequential()
    empty.compile("adam", "mse")
    x = np.zeros((2, 5, 3), np.float32)
    for call in (lambda: empty.predict(x), lambda: empty(x), lambda: empty.fit(x, np.zeros((2, 1)), verbose=0)):
        with pytest.raises(ValueError, match="has no layers: add some"):
            call()
    with pytest.raises(ValueError, match="has no layers to pop"):
        empty.pop()


def test_stateful_batch_shape_is_enforced_and_states_of_a_non_stateful_layer_refused():
    """A stateful GRU built on Input(batch_shape=(8, 5, 3)) predicted 16 rows (Keras refuses: its states are
    laid out per row); reset_states(states) on a layer that is not stateful was silently ignored."""
    x = np.random.default_rng(0).normal(size=(16, 5, 3)).astype(np.float32)
    m = fg.Sequential([fg.layers.Input(batch_shape=(8, 5, 3)), fg.layers.GRU(4, stateful=True)])
    with pytest.raises(ValueError, match=r"was built for batches of 8 \(its batch_shape\); received a batch of 16"):
        m.predict(x)
    assert m.predict(x, batch_size=8).shape == (16, 4)
    layer = fg.layers.GRU(4)
    layer(x)
    with pytest.raises(ValueError, match="is not stateful"):
        layer.reset_states(np.ones((16, 4), np.float32))
    layer.reset_states()  # (no states given: nothing to set, as Keras)


def test_input_shapes_are_checked_where_they_are_given():
    """Input(shape=(-1, 3)), shape='abc' and (5, 3.5) were taken (failing later with confusing messages);
    shape together with batch_shape silently used batch_shape (Keras refuses both)."""
    for bad in ((-1, 3), "abc", (5, 3.5), (0, 3)):
        with pytest.raises(ValueError, match="Input shape must be a tuple of positive integers or None"):
            fg.Input(shape=bad)
    with pytest.raises(ValueError, match="shape or batch_shape, not both"):
        fg.Input(shape=(5, 3), batch_shape=(2, 5, 3))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        fg.Input(shape=(5, 3), batch_size=0)
    assert fg.Input(shape=3).shape == (None, 3) and fg.Input(shape=(None, 3)).shape == (None, None, 3)


def test_seeds_threads_data_set_names_and_softmax_axes_are_named():
    with pytest.raises(ValueError, match="GRU 'seeded': option 'seed' should be None or an integer >= 0"):
        fg.layers.GRU(4, seed=-1, name="seeded")
    with pytest.raises(ValueError, match="set_random_seed's seed must be a non-negative integer"):
        fg.set_random_seed(-1)
    for bad in ("2", 1.9, None, True):
        with pytest.raises(TypeError, match="set_num_threads expects an integer"):
            fg.set_num_threads(bad)
    with pytest.raises(TypeError, match="datasets.load expects a data set name"):
        fg.datasets.load(None)
    with pytest.raises(ValueError, match="axis 9 is out of range for an input of rank 2"):
        fg.layers.Softmax(axis=9)(np.zeros((2, 3), np.float32))


def test_global_pooling_names_a_wrong_mask_and_no_steps():
    """A mask of the wrong length gave NumPy's bare broadcasting error; no steps gave NaN (average) or
    NumPy's "zero-size array to reduction operation maximum"."""
    x = np.zeros((8, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"the mask must have shape \(batch, steps\) = \(8, 5\), received \(8, 4\)"):
        fg.layers.GlobalAveragePooling1D()(x, mask=np.ones((8, 4), bool))
    for layer in (fg.layers.GlobalAveragePooling1D(), fg.layers.GlobalMaxPooling1D()):
        with pytest.raises(ValueError, match="at least one step"):
            layer(np.zeros((8, 0, 3), np.float32))


def test_cells_check_their_options_and_ops_take_0_1_masks():
    """GRUCell(3, bogus=1) was taken and the error came at RNN(cell), naming GRU; fg.ops refused a 0/1
    float mask the layers take (and docs/reliability.md promises)."""
    for cell in (fg.layers.GRUCell, fg.layers.LSTMCell, fg.layers.SimpleRNNCell):
        with pytest.raises(TypeError, match=f"{cell.__name__}: .* unexpected keyword arguments: \\['bogus'\\]"):
            cell(3, bogus=1)
    fg.set_random_seed(3)
    expected = fg.random.global_rng().integers(0, 1000, 4)
    fg.set_random_seed(3)
    fg.layers.GRUCell(3)  # (checking the options draws nothing from the global generator)
    np.testing.assert_array_equal(fg.random.global_rng().integers(0, 1000, 4), expected)
