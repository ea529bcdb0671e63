"""SimpleRNN (and Bidirectional(SimpleRNN)) against live Keras 3: forward parity for every option, masks and
merge mode, states / initial states / stateful, files both ways (.keras, Keras 3 .h5, a tf_keras .h5; Keras
opens what fastgru saves), weights after 5 Adam steps, and batch invariance."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Bidirectional, Dense, Embedding, Input, Masking, SimpleRNN

T, D = 6, 3


@pytest.fixture(scope="module")
def L(keras):
    return keras.layers


def padded(rng, bsz=5, dtype=np.float32):
    x = rng.standard_normal((bsz, T, D)).astype(dtype)
    x[0, -2:] = 0.0  # trailing padding
    x[1, :2] = 0.0  # leading padding
    x[3, 2] = 0.0  # a gap
    return x


def randomize(model, rng, scale=0.5):
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) * scale for w in model.get_weights()])


def twins(keras, rng, keras_layers, our_layers, shape=(T, D), scale=0.5, dtype="float32"):
    km = keras.Sequential([keras.Input(shape, dtype=dtype)] + keras_layers)
    randomize(km, rng, scale)
    ours = fg.Sequential([Input(shape, dtype=dtype)] + our_layers)
    ours.set_weights(km.get_weights())
    return km, ours


def assert_close(theirs, ours, atol=3e-6, rtol=1e-4):
    if isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs)
        for t, o in zip(theirs, ours):
            np.testing.assert_allclose(o, np.asarray(t), atol=atol, rtol=rtol)
    else:
        np.testing.assert_allclose(ours, np.asarray(theirs), atol=atol, rtol=rtol)


# ---- forward parity ---------------------------------------------------------------------------
OPTIONS = [
    {},
    {"return_sequences": True},
    {"go_backwards": True},
    {"go_backwards": True, "return_sequences": True},
    {"activation": "relu", "return_sequences": True},
    {"activation": "softsign", "use_bias": False, "return_sequences": True},
    {"activation": "elu", "go_backwards": True},
    {"activation": "sigmoid"},
    {"activation": "hard_sigmoid", "return_sequences": True},
    {"activation": "selu"},
    {"activation": "softplus"},
    {"activation": "swish"},
    {"activation": "gelu", "return_sequences": True},
    {"activation": "relu6", "return_sequences": True},
    {"activation": "hard_silu"},
    {"activation": None, "return_sequences": True},
    {"return_sequences": True, "zero_output_for_mask": True},
    {"go_backwards": True, "return_sequences": True, "zero_output_for_mask": True},
    {"dropout": 0.3, "recurrent_dropout": 0.2, "unroll": True},  # dropout: inactive at inference
]


def _id(options):
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("options", OPTIONS, ids=_id)
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masking"])
def test_forward_matches_keras(keras, L, rng, options, masked):
    x = padded(rng)
    head_k, head_o = ([L.Masking()], [Masking()]) if masked else ([], [])
    km, ours = twins(keras, rng, head_k + [L.SimpleRNN(4, **options)], head_o + [SimpleRNN(4, **options)])
    assert_close(km(x), ours.predict(x))


@pytest.mark.parametrize("options", [{}, {"return_sequences": True, "go_backwards": True}], ids=_id)
def test_float64_forward_matches_keras(keras, L, rng, options):
    x = padded(rng, dtype=np.float64)
    km = keras.Sequential([keras.Input((T, D), dtype="float64"), L.Masking(dtype="float64"),
                           L.SimpleRNN(4, dtype="float64", **options)])
    randomize(km, rng)
    ours = fg.Sequential([Input((T, D), dtype="float64"), Masking(), SimpleRNN(4, dtype="float64", **options)])
    ours.set_weights(km.get_weights())
    got = ours.predict(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np.asarray(km(x)), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "masking"])
def test_bidirectional_forward_matches_keras(keras, L, rng, merge_mode, return_sequences, masked):
    x = padded(rng)
    head_k, head_o = ([L.Masking()], [Masking()]) if masked else ([], [])
    km, ours = twins(
        keras, rng, head_k + [L.Bidirectional(L.SimpleRNN(3, return_sequences=return_sequences), merge_mode=merge_mode)],
        head_o + [Bidirectional(SimpleRNN(3, return_sequences=return_sequences), merge_mode=merge_mode)],
    )
    assert_close(km(x), ours.predict(x))


def test_bidirectional_with_its_own_backward_layer_matches_keras(keras, L, rng):
    x = padded(rng)
    km, ours = twins(
        keras, rng, [L.Masking(), L.Bidirectional(L.SimpleRNN(3, return_sequences=True), backward_layer=L.SimpleRNN(
            3, activation="relu", go_backwards=True, return_sequences=True))],
        [Masking(), Bidirectional(SimpleRNN(3, return_sequences=True), backward_layer=SimpleRNN(
            3, activation="relu", go_backwards=True, return_sequences=True))],
    )
    assert_close(km(x), ours.predict(x))


def test_bidirectional_states_and_initial_states_match_keras(keras, L, rng):
    x = padded(rng)
    layer_k = L.Bidirectional(L.SimpleRNN(3, return_state=True, return_sequences=True))
    inp = keras.Input((T, D))
    states_in = [keras.Input((3,)) for _ in range(2)]
    km = keras.Model([inp] + states_in, list(layer_k(inp, initial_state=states_in)))
    randomize(km, rng)
    ours = Bidirectional(SimpleRNN(3, return_state=True, return_sequences=True))
    ours.build((None, T, D))
    ours.set_weights(km.get_weights())
    states = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(2)]
    got = ours(x, initial_state=states)
    assert len(got) == 3
    assert_close(km([x] + states), got)
    assert ours.compute_output_shape((None, T, D)) == [(None, T, 6), (None, 3), (None, 3)]


def test_return_state_initial_state_and_stateful_match_keras(keras, L, rng):
    x = padded(rng)
    inp, h_in = keras.Input((T, D)), keras.Input((4,))
    km = keras.Model([inp, h_in], list(L.SimpleRNN(4, return_state=True, return_sequences=True)(inp, initial_state=h_in)))
    randomize(km, rng)
    ours = SimpleRNN(4, return_state=True, return_sequences=True)
    ours.build((None, T, D))
    ours.set_weights(km.get_weights())
    h0 = rng.standard_normal((5, 4)).astype(np.float32)
    assert_close(km([x, h0]), ours(x, initial_state=[h0]))
    assert_close(km([x, h0]), ours(x, initial_state=h0))  # a bare array for the one state
    # stateful: two halves carry h over, as Keras's stateful SimpleRNN does
    ks = keras.Sequential([keras.Input((3, D), batch_size=5), L.Masking(),
                           L.SimpleRNN(4, stateful=True, return_sequences=True)])
    ks.set_weights(km.get_weights())
    fs = fg.Sequential([Input((3, D), batch_size=5), Masking(), SimpleRNN(4, stateful=True, return_sequences=True)])
    fs.set_weights(km.get_weights())
    for half in (x[:, :3], x[:, 3:]):
        assert_close(ks(half), fs.predict(half))
    np.testing.assert_allclose(fs.layers[-1].states[0], np.asarray(ks.layers[-1].states[0].value), atol=3e-6)
    ks.layers[-1].reset_states()
    fs.reset_states()
    assert not np.any(fs.layers[-1].states)  # (zeros, as Keras's)
    assert_close(ks(x[:, 3:]), fs.predict(x[:, 3:]))


def test_weights_summary_and_initializers_match_keras(keras, L, rng):
    km, ours = twins(keras, rng, [L.Bidirectional(L.SimpleRNN(5, return_sequences=True)), L.SimpleRNN(4, use_bias=False),
                                  L.Dense(2)],
                     [Bidirectional(SimpleRNN(5, return_sequences=True)), SimpleRNN(4, use_bias=False), Dense(2)])
    assert ours.count_params() == km.count_params()
    assert [l.count_params() for l in ours.layers] == [l.count_params() for l in km.layers]
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    fresh = SimpleRNN(4)
    fresh.build((None, T, D))
    theirs = L.SimpleRNN(4)
    theirs.build((None, T, D))
    assert [w.shape for w in fresh.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    bound = np.sqrt(6 / (D + 4))
    assert np.abs(fresh.get_weights()[0]).max() <= bound and not fresh.get_weights()[2].any()


# ---- files both ways ----------------------------------------------------------------------------
def _file_model(keras, L, rng):
    km = keras.Sequential([keras.Input((T, D)), L.Masking(), L.Bidirectional(L.SimpleRNN(4, return_sequences=True),
                                                                             merge_mode="sum"),
                           L.SimpleRNN(3, activation="relu", go_backwards=True, return_sequences=True),
                           L.SimpleRNN(3, use_bias=False), L.Dense(2)])
    randomize(km, rng)
    return km


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_files_load(keras, L, rng, tmp_path, suffix):
    km = _file_model(keras, L, rng)
    x = padded(rng)
    km.save(tmp_path / f"k{suffix}")
    ours = fg.load_model(tmp_path / f"k{suffix}")
    assert [type(l).__name__ for l in ours.layers] == ["Masking", "Bidirectional", "SimpleRNN", "SimpleRNN", "Dense"]
    assert isinstance(ours.layers[1].forward_layer, SimpleRNN) and ours.layers[1].merge_mode == "sum"
    assert ours.layers[2].activation == "relu" and ours.layers[2].go_backwards and not ours.layers[3].use_bias
    assert_close(km.predict(x, verbose=0), ours.predict(x), atol=2e-5)
    assert_close(km.predict(x, verbose=0), fg.from_keras(km).predict(x), atol=2e-5)
    # a later checkpoint's weights into the loaded model
    randomize(km, rng)
    km.save_weights(tmp_path / "k.weights.h5")
    ours.load_weights(tmp_path / "k.weights.h5")
    assert_close(km.predict(x, verbose=0), ours.predict(x), atol=2e-5)


def test_tf_keras_h5_loads(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L2 = tf_keras.layers
    km = tf_keras.Sequential([tf_keras.Input((T, D)), L2.Masking(),
                              L2.Bidirectional(L2.SimpleRNN(4, return_sequences=True)),
                              L2.SimpleRNN(3, activation="relu", go_backwards=True), L2.Dense(2)])
    randomize(km, rng)
    km.save(tmp_path / "k2.h5")
    x = padded(rng)
    ours = fg.load_model(tmp_path / "k2.h5")
    assert isinstance(ours.layers[2], SimpleRNN) and ours.layers[2].go_backwards
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-4, atol=2e-5)


def test_keras_opens_what_fastgru_saves(keras, rng, tmp_path):
    model = fg.Sequential([Input((T, D)), Masking(), Bidirectional(SimpleRNN(4, return_sequences=True),
                                                                   merge_mode="mul"),
                           SimpleRNN(3, activation="elu", return_sequences=True, zero_output_for_mask=True),
                           Bidirectional(SimpleRNN(2, use_bias=False)), Dense(1)])
    randomize(model, rng)
    x = padded(rng)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert type(theirs.layers[2]).__name__ == "SimpleRNN"
    assert_close(theirs.predict(x, verbose=0), model.predict(x), atol=2e-5)
    again = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    # weights only, both ways
    model.save_weights(tmp_path / "m.weights.h5")
    randomize(theirs, rng)
    theirs.load_weights(tmp_path / "m.weights.h5")
    assert_close(theirs.predict(x, verbose=0), model.predict(x), atol=2e-5)


def test_file_options_fastgru_does_not_have_are_refused(keras, L, rng, tmp_path):
    import json
    import warnings
    import zipfile

    km = keras.Sequential([keras.Input((T, D)), L.SimpleRNN(3)])
    km.save(tmp_path / "k.keras")

    def edited(edit, name):
        target = tmp_path / name
        with zipfile.ZipFile(tmp_path / "k.keras") as zin, zipfile.ZipFile(target, "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "config.json":
                    config = json.loads(data)
                    edit(config["config"]["layers"][1]["config"])
                    data = json.dumps(config).encode()
                zout.writestr(item, data)
        return target

    with pytest.raises(fg.UnsupportedKerasFeature, match="time_major"):
        fg.load_model(edited(lambda c: c.update(time_major=True), "a.keras"))
    with pytest.raises(fg.UnsupportedKerasFeature, match="recurrent_activation"):
        fg.load_model(edited(lambda c: c.update(recurrent_activation="sigmoid"), "b.keras"))
    with pytest.raises(fg.ModelFileError, match="units"):
        fg.load_model(edited(lambda c: c.update(units=-2), "c.keras"))
    # a regularizer only shapes training: the model loads and predicts as Keras does
    x = padded(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regularized = fg.load_model(edited(
            lambda c: c.update(kernel_regularizer={"module": "keras.regularizers", "class_name": "L2",
                                                   "config": {"l2": 0.1}, "registered_name": None}), "d.keras"))
    assert_close(km.predict(x, verbose=0), regularized.predict(x), atol=2e-5)


# ---- training parity ----------------------------------------------------------------------------
def assert_weights_close(keras_model, ours, rtol):
    for k, o in zip(keras_model.get_weights(), ours.get_weights()):
        scale = max(np.abs(k).max(), 1e-3)
        np.testing.assert_allclose(o, k, atol=rtol * scale, rtol=rtol)


def train_both(keras, km, ours, x, y, loss, steps=5):
    km.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss=loss)
    ours.compile(optimizer=fg.optimizers.Adam(learning_rate=0.01), loss=loss)
    np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for _ in range(steps - 1):
        k_loss, o_loss = km.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(o_loss, k_loss, rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


@pytest.mark.parametrize("options", [
    {}, {"go_backwards": True, "activation": "softsign"}, {"use_bias": False, "zero_output_for_mask": True},
    {"activation": "relu"}, {"activation": "elu", "go_backwards": True, "zero_output_for_mask": True},
    {"activation": "leaky_relu"},
], ids=_id)
def test_stack_training_matches_keras(keras, L, rng, options):
    x = padded(rng, 12)
    y = rng.standard_normal((12, 2)).astype(np.float32)
    km, ours = twins(keras, rng, [L.Masking(), L.SimpleRNN(5, return_sequences=True, **options), L.SimpleRNN(4),
                                  L.Dense(2)],
                     [Masking(), SimpleRNN(5, return_sequences=True, **options), SimpleRNN(4), Dense(2)], scale=0.4)
    train_both(keras, km, ours, x, y, "mse")


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_training_matches_keras(keras, L, rng, merge_mode):
    x = padded(rng, 16)
    y = rng.integers(0, 3, 16)
    km, ours = twins(
        keras, rng, [L.Masking(), L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode=merge_mode),
                     L.Bidirectional(L.SimpleRNN(3)), L.Dense(3, activation="softmax")],
        [Masking(), Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode=merge_mode),
         Bidirectional(SimpleRNN(3)), Dense(3, activation="softmax")], scale=0.4)
    train_both(keras, km, ours, x, y, "sparse_categorical_crossentropy")


def test_simple_rnn_around_a_gru_on_tokens_training_matches_keras(keras, L, rng):
    tokens = rng.integers(1, 20, (16, 9))
    for row, n in zip(tokens, rng.integers(2, 10, 16)):
        row[n:] = 0
    y = (rng.random((16, 1)) > 0.5).astype(np.float32)
    km = keras.Sequential([keras.Input((9,), dtype="int32"), L.Embedding(20, 4, mask_zero=True),
                           L.SimpleRNN(5, return_sequences=True), L.GRU(3, return_sequences=True),
                           L.SimpleRNN(3, go_backwards=True), L.Dense(1, activation="sigmoid")])
    randomize(km, rng)
    ours = fg.Sequential([Input((9,), dtype="int32"), Embedding(20, 4, mask_zero=True),
                          SimpleRNN(5, return_sequences=True), GRU(3, return_sequences=True),
                          SimpleRNN(3, go_backwards=True), Dense(1, activation="sigmoid")])
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(tokens), np.asarray(km(tokens)), atol=3e-6)
    train_both(keras, km, ours, tokens, y, "binary_crossentropy")


# ---- batch invariance ---------------------------------------------------------------------------
@pytest.fixture
def invariant():
    previous, threads = fg.get_batch_invariant(), fg.get_num_threads()
    fg.set_batch_invariant(True)
    yield
    fg.set_batch_invariant(previous)
    fg.set_num_threads(threads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["stack", "bidirectional"])
def test_a_rows_prediction_does_not_depend_on_its_batch(invariant, kind, dtype):
    fg.set_random_seed(3)
    layers = {"stack": [Input((9, 13)), SimpleRNN(24, return_sequences=True), SimpleRNN(20), Dense(3)],
              "bidirectional": [Input((9, 13)), Masking(), Bidirectional(SimpleRNN(16, return_sequences=True),
                                                                         merge_mode="sum"), Dense(2)]}[kind]
    model = fg.Sequential(layers)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((41, 9, 13)).astype(dtype)
    x[::3, 6:] = 0.0  # masked tails (the bidirectional model)
    fg.set_num_threads(1)
    alone = np.concatenate([model.predict(x[i:i + 1]) for i in range(len(x))])
    assert alone.dtype == np.dtype(dtype)
    for n_threads in (1, 2):
        fg.set_num_threads(n_threads)
        np.testing.assert_array_equal(model.predict(x), alone)
        for batch_size in (2, 5, 16, 40):
            np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), alone)
        np.testing.assert_array_equal(model.predict(x[::-1].copy())[::-1], alone)
        mixed = np.concatenate([rng.standard_normal((23, 9, 13)).astype(dtype), x[10:11]])
        np.testing.assert_array_equal(model.predict(mixed)[23], alone[10])


# ---- Functional models: state passing and Bidirectional(SimpleRNN) ----------------------------------
def _seq2seq(mod):
    L_ = mod.layers
    enc_in = mod.Input(shape=(T, D), name="enc_in")
    dec_in = mod.Input(shape=(T, D + 1), name="dec_in")
    m = L_.Masking(name="mask")(enc_in)
    out, fh, bh = L_.Bidirectional(L_.SimpleRNN(3, return_state=True), merge_mode="sum", name="bienc")(m)
    _, h = L_.SimpleRNN(3, return_state=True, go_backwards=True, name="enc2")(enc_in, initial_state=[fh])
    state = L_.Concatenate(name="state")([h, bh])
    dec = L_.SimpleRNN(6, return_sequences=True, name="dec")(dec_in, initial_state=[state])
    pooled = L_.GlobalAveragePooling1D(name="pool")(dec)
    return mod.Model([enc_in, dec_in], L_.Dense(2, name="out")(L_.Concatenate(name="cat")([pooled, out])),
                     name="srnn_seq2seq")


def test_functional_state_passing_forward_and_training_match_keras(keras, rng):
    km, ours = _seq2seq(keras), _seq2seq(fg)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    randomize(km, rng, 0.4)
    ours.set_weights(km.get_weights())
    xs = [padded(rng, 8), rng.standard_normal((8, T, D + 1)).astype(np.float32)]
    y = rng.standard_normal((8, 2)).astype(np.float32)
    assert_close(km.predict(xs, verbose=0), ours.predict(xs), atol=5e-6)
    km.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    ours.compile(optimizer=fg.optimizers.Adam(learning_rate=0.01), loss="mse")
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(xs, y), km.train_on_batch(xs, y), rtol=1e-4)
    assert_weights_close(km, ours, rtol=1e-3)


def test_weight_regularizers_from_a_keras_file_train_as_keras(keras, L, rng, tmp_path):
    """kernel/recurrent/bias regularizers (L2, L1, L1L2) read from the file enter the training loss as in
    Keras (Keras 3's SimpleRNN drops activity_regularizer: its config writes null)."""
    reg = dict(kernel_regularizer=keras.regularizers.L2(0.01), recurrent_regularizer=keras.regularizers.L1(0.01),
               bias_regularizer=keras.regularizers.L1L2(0.01, 0.02))
    km = keras.Sequential([keras.Input((T, D)), L.Masking(), L.Bidirectional(L.SimpleRNN(4, return_sequences=True,
                                                                                         **reg)),
                           L.SimpleRNN(3, go_backwards=True, **reg), L.Dense(2)])
    randomize(km, rng, 0.4)
    km.save(tmp_path / "reg.keras")
    ours = fg.load_model(tmp_path / "reg.keras")
    assert sorted(ours.layers[2].weight_regularizers) == ["bias", "kernel", "recurrent_kernel"]
    x, y = padded(rng, 8), rng.standard_normal((8, 2)).astype(np.float32)
    train_both(keras, km, ours, x, y, "mse")
