"""TimeDistributed around recurrent layers over (batch, sentences, words) tokens: the words' mask of an
Embedding(mask_zero) reaches the inner GRU/LSTM/Bidirectional (each sentence skips its padded words, a fully
padded sentence gives the initial state), as in Keras. The committed file (tests/fixtures/make_layer_fixtures.py)
without TensorFlow; live Keras 3 and tf_keras models, files both ways and training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from keras_parity import assert_fixture_numbers, assert_keras_parity

import fastgru as fg
from fastgru.layers import GRU, Bidirectional, Dense, Embedding, Flatten, Input, TimeDistributed

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def test_td_recurrent_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "td_recurrent.npz")
    model = fg.load_model(FILES / "td_recurrent.keras")
    assert type(model.layers[1].layer).__name__ == "Bidirectional"
    assert_fixture_numbers(model, data, tmp_path)


def test_words_mask_reaches_the_inner_layer(rng):
    tokens = rng.integers(1, 9, size=(2, 3, 5))
    tokens[0, 1, 3:] = 0
    model = fg.Sequential([Input((3, 5)), Embedding(9, 4, mask_zero=True), TimeDistributed(GRU(3)), Flatten(),
                           Dense(1)])
    sentence = fg.Sequential([Input((3,)), Embedding(9, 4), GRU(3)])  # the padded sentence's words alone
    sentence.set_weights(model.layers[0].get_weights() + model.layers[1].get_weights())
    states = model.layers[1](model.layers[0](tokens), mask=tokens != 0)
    np.testing.assert_allclose(states[0, 1], sentence.predict(tokens[0, 1:2, :3])[0], rtol=1e-6, atol=1e-7)
    # (the embedding's output carries its mask, as Keras's tensor does, so a plain array of it is the unmasked case)
    np.testing.assert_allclose(model.layers[1](model.layers[0](tokens)), states)
    assert not np.allclose(states[0, 1], model.layers[1](np.asarray(model.layers[0](tokens)))[0, 1])


@pytest.mark.keras
def test_keras_td_bidirectional_models(keras, rng, tmp_path):
    L = keras.layers
    tokens = rng.integers(1, 20, size=(8, 3, 6))
    tokens[0, 1, 4:] = 0
    tokens[1, 2, :] = 0
    y = rng.integers(0, 2, 8)
    km = keras.Sequential([keras.Input((3, 6)), L.Embedding(20, 5, mask_zero=True),
                           L.TimeDistributed(L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum")),
                           L.TimeDistributed(L.GRU(4)), L.Flatten(), L.Dense(2, activation="softmax")])
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    assert_keras_parity(keras, km, tokens, y, tmp_path, "sparse_categorical_crossentropy", epochs=3)


@pytest.mark.keras
def test_tf_keras_td_bidirectional_h5(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    tokens = rng.integers(0, 20, size=(4, 3, 6))
    km = tf_keras.Sequential([L.Embedding(20, 5, mask_zero=True, input_shape=(3, 6)),
                              L.TimeDistributed(L.Bidirectional(L.GRU(4))), L.Flatten(), L.Dense(2)])
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "m.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(tokens), km.predict(tokens, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_in_code_td_bidirectional_trains(rng):
    model = fg.Sequential([Input((3, 5, 2)), TimeDistributed(Bidirectional(GRU(2))), Flatten(), Dense(1)])
    model.compile("adam", "mse")
    assert model.output_shape == (None, 1) and model.layers[0].compute_output_shape((None, 3, 5, 2)) == (None, 3, 4)
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    assert np.isfinite(model.fit(x, rng.standard_normal((4, 1)), epochs=2, verbose=0).history["loss"]).all()


# ---- TimeDistributed around a model: hierarchical attention networks -------------------------------------
def test_han_file_runs_and_trains_as_keras(tmp_path):
    data = np.load(FILES / "han.npz")
    model = fg.load_model(FILES / "han.keras")
    wrapper = model.layers[1]
    assert getattr(wrapper.layer, "_fg_model", False) and wrapper.layer.name == "sentence_encoder"
    assert_fixture_numbers(model, data, tmp_path)
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(data["x"]), model.predict(data["x"]))


def test_in_code_time_distributed_model(rng, tmp_path):
    words = fg.Input((5,))
    encoder = fg.Model(words, GRU(3)(Embedding(9, 4, mask_zero=True)(words)))
    doc = fg.Input((2, 5))
    wrapper = TimeDistributed(encoder)
    model = fg.Model(doc, Dense(1)(Flatten()(wrapper(doc))))
    tokens = rng.integers(0, 9, size=(4, 2, 5))
    np.testing.assert_allclose(wrapper(tokens)[:, 1], encoder.predict(tokens[:, 1]), rtol=1e-6)
    assert [p.split("/", 1)[1] for p in wrapper.weight_paths] == ["embeddings", "kernel", "recurrent_kernel", "bias"]
    model.compile("adam", "mse")
    before = [w.copy() for w in encoder.get_weights()]
    model.fit(tokens, rng.standard_normal((4, 1)), epochs=2, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))  # the encoder trains
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "m.keras").predict(tokens), model.predict(tokens))
    two_outputs = fg.Model(words, [GRU(2)(Embedding(9, 2)(words)), Dense(1)(words)])
    with pytest.raises(ValueError, match="needs one of each"):
        TimeDistributed(two_outputs)


@pytest.mark.keras
def test_keras_time_distributed_sequential_and_tf_keras_model(keras, rng, tmp_path):
    L = keras.layers
    tokens = rng.integers(0, 20, size=(8, 3, 6))
    tokens[1, 2, :] = 0
    y = rng.integers(0, 2, 8)
    km = keras.Sequential([keras.Input((3, 6)), L.TimeDistributed(keras.Sequential(
        [keras.Input((6,)), L.Embedding(20, 5, mask_zero=True), L.GRU(4)])), L.GRU(3), L.Dense(2, activation="softmax")])
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    assert_keras_parity(keras, km, tokens, y, tmp_path, "sparse_categorical_crossentropy")

    tf_keras = pytest.importorskip("tf_keras")
    K = tf_keras.layers
    words = tf_keras.Input((6,))
    encoder = tf_keras.Model(words, K.Dense(3)(K.Bidirectional(K.GRU(4))(K.Embedding(20, 5, mask_zero=True)(words))))
    doc = tf_keras.Input((3, 6))
    k2 = tf_keras.Model(doc, K.Dense(2)(K.GRU(3)(K.TimeDistributed(encoder)(doc))))
    k2.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in k2.get_weights()])
    k2.save(tmp_path / "k2.h5")
    np.testing.assert_allclose(fg.load_model(tmp_path / "k2.h5").predict(tokens), k2.predict(tokens, verbose=0),
                               rtol=1e-5, atol=1e-6)
