"""Layer and Sequential API behaviour that needs no Keras: config round trips, naming, shapes, state."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Activation, Dense, Dropout, Embedding, Input, Masking


@pytest.mark.parametrize(
    "layer",
    [
        GRU(5, activation="relu", recurrent_activation="hard_sigmoid", use_bias=False, return_sequences=True,
            go_backwards=True, reset_after=False, dropout=0.1, recurrent_dropout=0.2, seed=3),
        Dense(4, activation="softmax", use_bias=False),
        Dropout(0.3, seed=1),
        Masking(-1.0),
        Embedding(10, 3, mask_zero=True),
        Activation("softmax"),
    ],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_sequential_config_round_trip_and_weights():
    fg.set_random_seed(0)
    model = fg.Sequential([Input(shape=(6, 3)), GRU(4, return_sequences=True), GRU(2), Dense(1)])
    clone = fg.Sequential.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((3, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_automatic_names_are_unique_and_keras_style():
    a, b = GRU(2), GRU(2)
    assert a.name.startswith("gru") and b.name.startswith("gru_") and a.name != b.name


def test_output_shapes_and_build_order():
    model = fg.Sequential()
    model.add(GRU(8, return_sequences=True, input_shape=(None, 5)))
    model.add(Dense(3))
    assert model.built and model.output_shape == (None, None, 3)
    assert model.layers[0].get_weights()[2].shape == (2, 24)
    model.pop()
    assert model.output_shape == (None, None, 8)


def test_unbuilt_model_builds_on_first_predict():
    model = fg.Sequential([GRU(3), Dense(2)])
    assert not model.built
    out = model.predict(np.zeros((4, 7, 5), np.float32))
    assert out.shape == (4, 2) and model.input_shape == (None, 7, 5)
    assert model.count_params() == (5 * 9 + 3 * 9 + 2 * 9) + (3 * 2 + 2)


def test_weights_are_live_arrays_and_set_weights_keeps_identity():
    model = fg.Sequential([Input(shape=(2, 3)), Dense(2)])
    live = model.weights[0]
    model.set_weights([np.ones((3, 2)), np.zeros(2)])
    assert model.weights[0] is live and live.dtype == np.float32 and (live == 1).all()


def test_stateful_gru_continues_the_sequence():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 3)).astype(np.float32)
    whole = GRU(4)
    whole.build((None, 8, 3))
    stateful = GRU(4, stateful=True)
    stateful.build((2, 4, 3))
    stateful.set_weights(whole.get_weights())
    stateful(x[:, :4])
    np.testing.assert_allclose(stateful(x[:, 4:]), whole(x), atol=1e-6)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x[:, :4]), whole(x[:, :4]), atol=1e-6)


def test_return_state_and_initial_state():
    rng = np.random.default_rng(1)
    layer = GRU(3, return_sequences=True, return_state=True)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    seq, h = layer(x)
    np.testing.assert_array_equal(seq[:, -1], h)
    seq2, _ = layer(x[:, 3:], initial_state=layer(x[:, :3])[1])
    np.testing.assert_allclose(seq2[:, -1], h, atol=1e-6)


def test_dropout_is_identity_at_inference_and_masking_zeroes():
    x = np.ones((2, 3, 2), np.float32)
    assert Dropout(0.5)(x) is not None and (Dropout(0.5)(x) == x).all()
    x[0, 1] = 0.0
    m = Masking(0.0)
    assert (m(x)[0, 1] == 0).all() and m.compute_mask(x, None).tolist() == [[True, False, True], [True] * 3]


def test_embedding_token_errors():
    emb = Embedding(5, 2)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 5\) .*received values in \[0, 7\]"):
        emb(np.array([[0, 7]]))
    with pytest.raises(ValueError, match=r"\[-5, 0\).*received values in \[-6, 0\]"):
        emb(np.array([[0, -6]]))
    with pytest.raises(TypeError, match="expects integer token ids"):
        emb(np.array([[0.5]]))


def test_embedding_negative_ids_count_from_the_end_as_keras():
    """Keras's lookup takes id -k as row input_dim - k (its mask still sees a nonzero id), in training too."""
    emb = Embedding(5, 2, mask_zero=True)
    emb.build((None, 3))
    table = emb.get_weights()[0]
    ids = np.array([[-1, -5, 2]])
    np.testing.assert_array_equal(emb(ids), table[[[4, 0, 2]]])
    assert emb.compute_mask(ids, None).tolist() == [[True, True, True]]
    _, cache = emb.forward(ids)
    (grad,) = emb.backward(np.ones((1, 3, 2), np.float32), cache)[1]
    assert sorted(np.asarray(grad.indices).tolist()) == [0, 2, 4]


def test_summary_format(capsys):
    model = fg.Sequential([Input(shape=(10, 50)), GRU(64, name="gru_x"), Dense(1, activation="sigmoid", name="out")],
                          name="seed_model")
    model.summary()
    text = capsys.readouterr().out
    assert 'Model: "seed_model"' in text
    assert "gru_x (GRU)" in text and "(None, 64)" in text and "22,272" in text
    assert "Total params: 22,337 (87.25 KB)" in text and "Non-trainable params: 0 (0.00 B)" in text
