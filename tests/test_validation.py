"""Bad input gets a specific error naming what was expected and what was received."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

D, H = 4, 3


@pytest.fixture
def weights(rng):
    return (rng.standard_normal((D, 3 * H)).astype(np.float32), rng.standard_normal((H, 3 * H)).astype(np.float32),
            rng.standard_normal((2, 3 * H)).astype(np.float32))


def x_of(shape=(2, 5, D), dtype=np.float32):
    return np.zeros(shape, dtype)


def test_rank(weights):
    with pytest.raises(ValueError, match=r"rank 3 .*received shape \(5, 4\)"):
        fg.ops.gru_forward(x_of((5, D)), *weights)


def test_feature_mismatch(weights):
    with pytest.raises(ValueError, match=r"kernel must have shape \(7, 9\), received shape \(4, 9\)"):
        fg.ops.gru_forward(x_of((2, 5, 7)), *weights)


def test_kernel_not_multiple_of_three(weights):
    with pytest.raises(ValueError, match=r"kernel must have shape \(features, 3 \* units\), received shape \(4, 8\)"):
        fg.ops.gru_forward(x_of(), weights[0][:, :8], weights[1], weights[2])


def test_recurrent_kernel_shape(weights):
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(3, 9\), received shape \(4, 9\)"):
        fg.ops.gru_forward(x_of(), weights[0], np.zeros((4, 9), np.float32), weights[2])


def test_bias_shape_depends_on_reset_after(weights):
    with pytest.raises(ValueError, match=r"bias must have shape \(9,\), received shape \(2, 9\)"):
        fg.ops.gru_forward(x_of(), *weights, reset_after=False)
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 9\), received shape \(9,\)"):
        fg.ops.gru_forward(x_of(), weights[0], weights[1], weights[2][0])


def test_input_dtype(weights):
    with pytest.raises(TypeError, match="x must be float32 or float64, received dtype int64"):
        fg.ops.gru_forward(np.zeros((2, 5, D), np.int64), *weights)


def test_weight_dtype(weights):
    with pytest.raises(TypeError, match="kernel must be a floating-point array, received dtype int32"):
        fg.ops.gru_forward(x_of(), weights[0].astype(np.int32), weights[1], weights[2])


@pytest.mark.parametrize("index,name", [(0, "kernel"), (1, "recurrent_kernel"), (2, "bias")])
def test_non_finite_weights(weights, index, name):
    bad = list(weights)
    bad[index] = bad[index].copy()
    bad[index].flat[3] = np.nan
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinite values"):
        fg.ops.gru_forward(x_of(), *bad)


def test_mask_shape_and_dtype(weights):
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, timesteps\) = \(2, 5\), received shape \(2, 4\)"):
        fg.ops.gru_forward(x_of(), *weights, mask=np.ones((2, 4), bool))
    # 0/1 numbers are taken as the layers take them (docs/reliability.md); other values and dtypes are refused
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 1, 1, 1]], bool)
    np.testing.assert_array_equal(fg.ops.gru_forward(x_of(), *weights, mask=mask.astype(np.float32))[0],
                                  fg.ops.gru_forward(x_of(), *weights, mask=mask)[0])
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        fg.ops.gru_forward(x_of(), *weights, mask=np.full((2, 5), 0.5, np.float32))
    with pytest.raises(TypeError, match=r"mask must be a boolean \(or 0/1 numeric\) array, received dtype complex64"):
        fg.ops.gru_forward(x_of(), *weights, mask=np.ones((2, 5), np.complex64))


def test_h0_shape(weights):
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 3\), received shape \(2, 4\)"):
        fg.ops.gru_forward(x_of(), *weights, h0=np.zeros((2, 4), np.float32))


def test_unknown_activation(weights):
    with pytest.raises(fg.UnsupportedKerasFeature, match="activation 'tanh_shrink' is not supported"):
        fg.ops.gru_forward(x_of(), *weights, activation="tanh_shrink")
    with pytest.raises(fg.UnsupportedKerasFeature, match="softmax"):
        GRU(3, recurrent_activation="softmax")


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match="option 'units' should be a positive integer, received 0"):
        GRU(0)
    with pytest.raises(ValueError, match=r"option 'dropout' should be a number in \[0.0, 1.0\], received 1.5"):
        GRU(3, dropout=1.5)
    # one strictness for code and files (the same values in a file: tests/test_io.py)
    with pytest.raises(TypeError, match="option 'return_sequences' should be True or False, received 'false'"):
        GRU(4, return_sequences="false")
    with pytest.raises(TypeError, match="option 'units' should be a positive integer, received True"):
        Dense(True)
    with pytest.raises(TypeError, match="option 'mask_zero' should be True or False"):
        fg.layers.Embedding(5, 3, mask_zero=1)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments: \['colour'\]"):
        Dense(3, colour="red")


def test_model_input_errors():
    model = fg.Sequential([Input(shape=(5, D)), GRU(H), Dense(1)])
    with pytest.raises(ValueError, match=r"expects input of rank 3 .*received shape \(5, 4\)"):
        model.predict(np.zeros((5, D), np.float32))
    with pytest.raises(ValueError, match=r"received shape \(2, 5, 6\)"):
        model.predict(np.zeros((2, 5, 6), np.float32))
    with pytest.raises(TypeError, match="expects a numeric numpy array, received dtype <U1"):
        model.predict(np.array([[["a"]]]))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(np.zeros((3, 5, D), np.float32), batch_size=0)


def test_set_weights_errors():
    model = fg.Sequential([Input(shape=(5, D)), GRU(H), Dense(1)])
    ws = model.get_weights()
    with pytest.raises(ValueError, match="expects 5 weight arrays, received 4"):
        model.set_weights(ws[:4])
    ws[1] = np.zeros((H + 1, 3 * H))
    with pytest.raises(ValueError, match=r"weight 'recurrent_kernel': expected shape \(3, 9\), received \(4, 9\)"):
        model.set_weights(ws)
    ws = model.get_weights()
    ws[0][0, 0] = np.inf
    with pytest.raises(ValueError, match="weight 'kernel' contains NaN or infinite values"):
        model.set_weights(ws)


def test_stateful_batch_change_is_an_error():
    layer = GRU(H, stateful=True)
    layer(np.zeros((2, 5, D), np.float32))
    with pytest.raises(ValueError, match="holds states for batch size 2, received a batch of 3"):
        layer(np.zeros((3, 5, D), np.float32))


def test_threads_setting():
    with pytest.raises(ValueError, match="num_threads must be between 1 and"):
        fg.set_num_threads(0)


@pytest.mark.parametrize("bad", [{"class_name": "Activation", "config": "relu"}, ["relu"], 3])
def test_malformed_activation_configs_are_named_errors(bad):
    with pytest.raises(fg.UnsupportedKerasFeature, match="activation"):
        GRU(3, activation=bad)


@pytest.mark.parametrize("bad", [{"class_name": "GlorotUniform", "config": "x"}, {"config": {}}, ["zeros"]])
def test_malformed_initializer_configs_are_named_errors(bad):
    with pytest.raises(fg.UnsupportedKerasFeature, match="initializer"):
        fg.initializers.get(bad)
