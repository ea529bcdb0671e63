"""Keras 3's less common activations inside GRU, LSTM and SimpleRNN cells (relu6, leaky_relu, hard_tanh, celu,
log_sigmoid, sparse_plus, squareplus; mish and hard_silu for inference): Keras files load, predict, train and
write back as Keras's; training with an activation whose derivative does not follow from its output is refused
clearly. (Each activation's kernel values and output derivatives: tests/test_activations_table.py; GRU forward,
float64 gradients and Keras's training steps: test_gru_kernel.py, test_gru_gradients.py,
test_gru_gradients_keras.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg


@pytest.mark.parametrize("gru,lstm,rnn", [
    ("relu6", ("leaky_relu", "hard_sigmoid"), "hard_tanh"),
    ("celu", ("log_sigmoid", "sigmoid"), "sparse_plus"),
    ("squareplus", ("hard_tanh", "sigmoid"), "leaky_relu"),
])
def test_keras_files_with_these_activations_predict_and_train_as_keras(keras, tmp_path, gru, lstm, rnn):
    rng = np.random.default_rng(3)
    L = keras.layers
    km = keras.Sequential([keras.Input((6, 3)), L.GRU(5, activation=gru, return_sequences=True),
                           L.LSTM(4, activation=lstm[0], recurrent_activation=lstm[1], return_sequences=True),
                           L.SimpleRNN(3, activation=rnn), L.Dense(1)])
    x = rng.standard_normal((8, 6, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    assert_keras_parity(keras, km, x, y, tmp_path, "mse")


@pytest.mark.parametrize("activation", ["mish", "hard_silu"])
def test_mish_and_hard_silu_predict_as_keras_and_refuse_training(keras, tmp_path, activation):
    rng = np.random.default_rng(4)
    km = keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(4, activation=activation),
                           keras.layers.Dense(1)])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    x = rng.standard_normal((6, 5, 2)).astype("float32")
    np.testing.assert_allclose(ours.predict(x), np.asarray(km(x)), rtol=1e-5, atol=1e-6)
    ours.compile("adam", "mse")
    with pytest.raises(fg.UnsupportedKerasFeature, match=f"activation='{activation}' is supported for inference only"):
        ours.fit(x, np.zeros((6, 1), "float32"), verbose=0)
