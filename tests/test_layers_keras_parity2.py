"""SeparableConv1D, DepthwiseConv1D, UnitNormalization, Normalization, AlphaDropout,
ActivityRegularization, layer regularizers and TimeDistributed against live Keras, from one table (as
tests/test_layers_keras_parity.py): forward in a model around GRUs (masked where the layer sees masks),
.keras and Keras 3 .h5 files both ways, 5 Adam steps of training, and float64 finite-difference
gradients of each layer alone; then tf_keras .h5 files and bad options."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import fastgru as fg
from fastgru import layers as F

T, D = 9, 4


def _case(name, ours, theirs, first=False, masked=False, train=True, fd=True):
    return pytest.param(ours, theirs, first, masked, train, fd, id=name)


# (fastgru factory, keras factory (L = keras.layers), the layer right after the input (else after a GRU),
#  masked input, train parity, finite-difference check)
CASES = [
    _case("DepthwiseConv1D", lambda: F.DepthwiseConv1D(3), lambda L: L.DepthwiseConv1D(3), first=True),
    _case("DepthwiseConv1D-same-dm", lambda: F.DepthwiseConv1D(2, padding="same", depth_multiplier=3,
                                                                activation="tanh"),
          lambda L: L.DepthwiseConv1D(2, padding="same", depth_multiplier=3, activation="tanh"), first=True),
    _case("DepthwiseConv1D-strides", lambda: F.DepthwiseConv1D(3, strides=2, padding="same", use_bias=False),
          lambda L: L.DepthwiseConv1D(3, strides=2, padding="same", use_bias=False)),
    _case("DepthwiseConv1D-dilation", lambda: F.DepthwiseConv1D(3, dilation_rate=2, depth_multiplier=2,
                                                                 activation="relu"),
          lambda L: L.DepthwiseConv1D(3, dilation_rate=2, depth_multiplier=2, activation="relu")),
    _case("SeparableConv1D", lambda: F.SeparableConv1D(5, 3), lambda L: L.SeparableConv1D(5, 3), first=True),
    _case("SeparableConv1D-same-dm", lambda: F.SeparableConv1D(4, 2, padding="same", depth_multiplier=2,
                                                                activation="relu"),
          lambda L: L.SeparableConv1D(4, 2, padding="same", depth_multiplier=2, activation="relu"), first=True),
    _case("SeparableConv1D-strides", lambda: F.SeparableConv1D(3, 4, strides=3, use_bias=False),
          lambda L: L.SeparableConv1D(3, 4, strides=3, use_bias=False)),
    _case("SeparableConv1D-dilation", lambda: F.SeparableConv1D(6, 2, dilation_rate=3, activation="sigmoid"),
          lambda L: L.SeparableConv1D(6, 2, dilation_rate=3, activation="sigmoid")),
    _case("UnitNormalization", lambda: F.UnitNormalization(), lambda L: L.UnitNormalization(), masked=True),
    _case("UnitNormalization-axes", lambda: F.UnitNormalization(axis=[1, 2]), lambda L: L.UnitNormalization(axis=[1, 2])),
    _case("Normalization", lambda: F.Normalization(), lambda L: L.Normalization(), first=True, masked=True),
    _case("Normalization-axes", lambda: F.Normalization(axis=(1, 2)), lambda L: L.Normalization(axis=(1, 2))),
    _case("Normalization-given-invert", lambda: F.Normalization(mean=[0.5, -1, 2, 0, 1, 0.2], variance=[1, 4, 2, 0, 1, 3],
                                                                invert=True),
          lambda L: L.Normalization(mean=[0.5, -1, 2, 0, 1, 0.2], variance=[1, 4, 2, 0, 1, 3], invert=True)),
    _case("Normalization-none", lambda: F.Normalization(axis=None, mean=2.0, variance=4.0),
          lambda L: L.Normalization(axis=None, mean=2.0, variance=4.0), first=True),
    _case("AlphaDropout", lambda: F.AlphaDropout(0.2), lambda L: L.AlphaDropout(0.2), masked=True, train=False),
    _case("AlphaDropout-noise-shape", lambda: F.AlphaDropout(0.3, noise_shape=(None, 1, 6)),
          lambda L: L.AlphaDropout(0.3, noise_shape=(None, 1, 6)), train=False),
    _case("ActivityRegularization", lambda: F.ActivityRegularization(l1=0.01, l2=0.05),
          lambda L: L.ActivityRegularization(l1=0.01, l2=0.05), masked=True),
    _case("TimeDistributed-Dense", lambda: F.TimeDistributed(F.Dense(4, activation="relu")),
          lambda L: L.TimeDistributed(L.Dense(4, activation="relu")), masked=True),
    _case("TimeDistributed-BatchNormalization", lambda: F.TimeDistributed(F.BatchNormalization(momentum=0.8)),
          lambda L: L.TimeDistributed(L.BatchNormalization(momentum=0.8)), masked=True),
    _case("TimeDistributed-LayerNormalization", lambda: F.TimeDistributed(F.LayerNormalization()),
          lambda L: L.TimeDistributed(L.LayerNormalization())),
    _case("TimeDistributed-PReLU", lambda: F.TimeDistributed(F.PReLU()), lambda L: L.TimeDistributed(L.PReLU()),
          masked=True),
    _case("TimeDistributed-Softmax", lambda: F.TimeDistributed(F.Softmax()), lambda L: L.TimeDistributed(L.Softmax())),
    _case("TimeDistributed-UnitNormalization", lambda: F.TimeDistributed(F.UnitNormalization()),
          lambda L: L.TimeDistributed(L.UnitNormalization())),
    _case("TimeDistributed-ActivityRegularization", lambda: F.TimeDistributed(F.ActivityRegularization(0.02, 0.01)),
          lambda L: L.TimeDistributed(L.ActivityRegularization(0.02, 0.01))),
    _case("TimeDistributed-Dropout", lambda: F.TimeDistributed(F.Dropout(0.3)),
          lambda L: L.TimeDistributed(L.Dropout(0.3)), masked=True, train=False),
]


def _data(rng, masked):
    x = rng.standard_normal((16, T, D)).astype(np.float32)
    if masked:
        x[0, -3:] = 0.0
        x[1, :2] = 0.0
        x[5, 4:] = 0.0
    return x, rng.integers(0, 3, len(x))


def _stack(mod, layer, first, masked):
    """The same model in fastgru or Keras: [Masking] [GRU] -> layer -> GRU -> Dense(softmax)."""
    head = [mod.Masking()] if masked else []
    feed = [] if first else [mod.GRU(6, return_sequences=True)]
    return head + feed + [layer, mod.GRU(5), mod.Dense(3, activation="softmax")]


def _random_weights(km, rng):
    return [rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path
            else (rng.standard_normal(w.shape) * 0.5).astype(w.dtype) if w.dtype.kind == "f" else w
            for w, v in zip(km.get_weights(), km.weights)]


@pytest.mark.keras
@pytest.mark.parametrize("ours,theirs,first,masked,train,fd", CASES)
def test_forward_files_and_training_match_keras(keras, rng, tmp_path, ours, theirs, first, masked, train, fd):
    L = keras.layers
    x, y = _data(rng, masked)
    km = keras.Sequential([keras.Input((T, D))] + _stack(L, theirs(L), first, masked))
    km.set_weights(_random_weights(km, rng))
    for layer in km.layers:  # Keras's Normalization reads its variables into its statistics only here
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()
    model = fg.Sequential([F.Input((T, D))] + _stack(F, ours(), first, masked))
    model.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    for file in ("k.keras", "k.h5"):
        loaded = fg.load_model(tmp_path / file)
        np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-4, atol=2e-5)
        for a, b in zip(loaded.get_weights(), km.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "ours.keras")  # Keras opens what fastgru writes
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    if not train:
        return
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(5):
        np.testing.assert_allclose(model.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def _numeric(f, x, coef, eps=1e-6):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = ((f(plus) - f(minus)) * coef).sum() / (2 * eps)
    return out


@pytest.mark.parametrize("ours,theirs,first,masked,train,fd", CASES)
def test_gradients_match_finite_differences(rng, ours, theirs, first, masked, train, fd):
    if not fd:
        pytest.skip("no gradient of its own (checked in its own test)")
    layer = ours()
    shape = (2, T, 6)
    for sub in (layer, getattr(layer, "layer", layer)):  # a wrapper's inner layer too
        sub.dtype = np.dtype("float64")
    layer.build((None,) + shape[1:])
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.weights])
    x = rng.standard_normal(shape)
    mask = None
    if masked:
        mask = np.ones(shape[:2], bool)
        mask[0, 3:] = False
    y, cache = layer.forward(x, mask=mask, training=train)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)
    assert dx.dtype == np.float64

    def f(value):
        return layer.forward(value, mask=mask, training=train)[0]

    np.testing.assert_allclose(dx, _numeric(f, x, coef), rtol=1e-5, atol=1e-7)
    assert len(grads) == len(layer.trainable_weights)
    for w, g in zip(layer.trainable_weights, grads):
        def fw(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return f(x)
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, _numeric(fw, w.copy(), coef), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
def test_depthwise_float64_matches_keras(keras, rng):
    for theirs, ours in ((keras.layers.SeparableConv1D(4, 3, padding="same", depth_multiplier=2, dtype="float64"),
                          F.SeparableConv1D(4, 3, padding="same", depth_multiplier=2, dtype="float64")),
                         (keras.layers.DepthwiseConv1D(3, depth_multiplier=3, dtype="float64"),
                          F.DepthwiseConv1D(3, depth_multiplier=3, dtype="float64"))):
        x = rng.standard_normal((3, 10, 3))
        theirs(x)
        theirs.set_weights([rng.standard_normal(w.shape) for w in theirs.get_weights()])
        ours.build((None, 10, 3))
        ours.set_weights(theirs.get_weights())
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-9, atol=1e-12)


@pytest.mark.keras
def test_tf_keras_h5_depthwise_and_separable_load(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    km = tf_keras.Sequential([tf_keras.Input((12, 4)), L.SeparableConv1D(6, 3, padding="causal", depth_multiplier=2,
                                                                          activation="relu"),
                              L.DepthwiseConv1D(2, padding="same", depth_multiplier=2), L.GRU(5), L.Dense(2)])
    km.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "k2.h5")
    x = rng.standard_normal((4, 12, 4)).astype(np.float32)
    loaded = fg.load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-4, atol=2e-5)
    for a, b in zip(loaded.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(fg.UnsupportedKerasFeature, match="padding='causal'.*no Keras 3 equivalent"):
        loaded.save(tmp_path / "causal.keras")


@pytest.mark.parametrize("make,error,message", [
    (lambda: F.DepthwiseConv1D(0), ValueError, "'kernel_size'"),
    (lambda: F.DepthwiseConv1D(3, padding="causal"), ValueError, "'padding' should be one of 'valid', 'same'"),
    (lambda: F.DepthwiseConv1D(3, depth_multiplier=0), ValueError, "'depth_multiplier'"),
    (lambda: F.DepthwiseConv1D(3, data_format="channels_middle"), ValueError, "'data_format' should be"),
    (lambda: F.SeparableConv1D(0, 3), ValueError, "'filters'"),
    (lambda: F.SeparableConv1D(2, 3, depth_multiplier=1.5), TypeError, "'depth_multiplier'"),
    (lambda: F.SeparableConv1D(2, 3, activation="sparsemax"), fg.UnsupportedKerasFeature, "activation 'sparsemax'"),
    (lambda: F.SeparableConv1D(2, 3, use_bias="yes"), TypeError, "'use_bias'"),
])
def test_bad_options_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_shapes_are_refused(rng):
    with pytest.raises(ValueError, match="rank 3"):
        fg.Sequential([F.Input((5,)), F.SeparableConv1D(2, 3)])
    with pytest.raises(ValueError, match="no output steps"):
        fg.Sequential([F.Input((2, 3)), F.DepthwiseConv1D(3)])
    model = fg.Sequential([F.Input((5, 3)), F.DepthwiseConv1D(2)])
    with pytest.raises(ValueError, match=r"expects input \(batch, steps, channels\) with 3 channels"):
        model.layers[0].call(np.ones((2, 5, 4), np.float32))


def _write_keras_zip(path, layer_entry, shape=(6, 3)):
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, *shape],
                                                                          "name": "in"}},
        layer_entry]}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.5.0"}))
        z.writestr("model.weights.h5", b"")


@pytest.mark.parametrize("class_name,config,error,match", [
    ("DepthwiseConv1D", {"kernel_size": [2], "padding": "causal"}, fg.ModelFileError, "padding"),
    ("DepthwiseConv1D", {"kernel_size": [2], "depth_multiplier": 0}, fg.ModelFileError, "depth_multiplier"),
    ("SeparableConv1D", {"filters": 2, "kernel_size": [2], "groups": 2}, fg.UnsupportedKerasFeature, "groups"),
    ("SeparableConv1D", {"filters": 2, "kernel_size": [2], "new_option": 1}, fg.UnsupportedKerasFeature,
     "new_option"),
])
def test_bad_values_in_a_file_are_refused(tmp_path, class_name, config, error, match):
    _write_keras_zip(tmp_path / "bad.keras", {"module": "keras.layers", "class_name": class_name,
                                              "config": {"name": "x", **config}})
    with pytest.raises(error, match=match):
        fg.load_model(tmp_path / "bad.keras")


@pytest.mark.keras
def test_normalization_adapt_matches_keras(keras, rng):
    x = (rng.standard_normal((50, T, D)) * 3 + 2).astype(np.float32)
    for axis in (-1, (1, 2), None):
        theirs, ours = keras.layers.Normalization(axis=axis), F.Normalization(axis=axis)
        theirs.adapt(x)
        ours.adapt(x)
        for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    batches = [x[:20], x[20:35], x[35:]]  # an iterable of batches: Keras's running combination
    theirs, ours = keras.layers.Normalization(), F.Normalization()
    theirs.adapt(batches)
    ours.adapt(iter(batches))
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    inverted = F.Normalization(invert=True)
    inverted.adapt(x)
    np.testing.assert_allclose(inverted(ours(x)), x, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        ours.adapt(np.ones((4, T, D + 1), np.float32))
    with pytest.raises(ValueError, match="given mean and variance"):
        F.Normalization(mean=1.0, variance=2.0).adapt(x)


@pytest.mark.keras
def test_normalization_float64_matches_keras(keras, rng):
    x = rng.standard_normal((3, T, D)) * 2
    for theirs, ours in ((keras.layers.UnitNormalization(dtype="float64"), F.UnitNormalization(dtype="float64")),
                         (keras.layers.Normalization(mean=[1, 2, 3, 4], variance=[1, 0.5, 2, 3], dtype="float64"),
                          F.Normalization(mean=[1, 2, 3, 4], variance=[1, 0.5, 2, 3], dtype="float64"))):
        ours.build((None, T, D))
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-9, atol=1e-12)


@pytest.mark.keras
def test_tf_keras_h5_normalization_loads(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    x = (rng.standard_normal((20, T, D)) * 2 + 1).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(x)  # tf_keras counts the values seen (Keras 3 leaves count 0)
    km = tf_keras.Sequential([tf_keras.Input((T, D)), norm, L.UnitNormalization(), L.GRU(5), L.Dense(2)])
    km.save(tmp_path / "k2.h5")
    loaded = fg.load_model(tmp_path / "k2.h5")
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-4, atol=2e-5)
    for a, b in zip(loaded.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.layers[0].get_weights()[2] == len(x) * T


@pytest.mark.parametrize("make,error,message", [
    (lambda: F.UnitNormalization(axis=0), ValueError, "axis"),
    (lambda: F.UnitNormalization(axis="x"), TypeError, "axis"),
    (lambda: F.Normalization(axis=1.5), TypeError, "'axis'"),
    (lambda: F.Normalization(mean=1.0), ValueError, "both mean and variance"),
    (lambda: F.Normalization(mean=[1, 2], variance=[1, 2, 3]), ValueError, "same shape"),
    (lambda: F.Normalization(mean=[[1, 2]], variance=[[1, 2]]), ValueError, "rank 2"),
    (lambda: F.Normalization(mean=1.0, variance=-1.0), ValueError, "negative"),
    (lambda: F.Normalization(mean="a", variance="b"), TypeError, "mean should be a number"),
    (lambda: F.Normalization(invert=1), TypeError, "'invert'"),
])
def test_bad_normalization_options_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_normalization_shapes_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        fg.Sequential([F.Input((T, D)), F.Normalization(mean=[1, 2], variance=[1, 2])])
    with pytest.raises(ValueError, match="out of range"):
        fg.Sequential([F.Input((T, D)), F.Normalization(axis=3)])
    with pytest.raises(ValueError, match="axis 3 is out of bounds"):
        fg.Sequential([F.Input((T, D)), F.UnitNormalization(axis=3)])


def test_alpha_dropout_formula_statistics_and_seed(rng):
    x = rng.standard_normal((200, 10, 8)).astype(np.float32)
    a, b = F.AlphaDropout(0.2, seed=3), F.AlphaDropout(0.2, seed=3)
    for layer in (a, b):
        layer.build((None, 10, 8))
    np.testing.assert_array_equal(a(x), x)  # identity at inference
    ya, yb = a.forward(x, training=True)[0], b.forward(x, training=True)[0]
    np.testing.assert_array_equal(ya, yb)
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    scale = ((1 - 0.2) * (1 + 0.2 * alpha_p ** 2)) ** -0.5
    shift = -scale * alpha_p * 0.2
    dropped = np.isclose(ya, scale * alpha_p + shift, rtol=0, atol=1e-6)
    assert 0.17 < dropped.mean() < 0.23
    np.testing.assert_allclose(ya[~dropped], scale * x[~dropped] + shift, rtol=1e-5, atol=1e-6)
    assert abs(ya.mean()) < 0.05 and abs(ya.var() - 1) < 0.05  # SELU's fixed point kept
    shared = F.AlphaDropout(0.5, noise_shape=(None, 1, 8), seed=1)
    shared.build((None, 10, 8))
    y = shared.forward(x, training=True)[0]
    scale = ((1 - 0.5) * (1 + 0.5 * alpha_p ** 2)) ** -0.5
    shift = -scale * alpha_p * 0.5
    dropped = np.isclose(y, scale * alpha_p + shift, rtol=0, atol=1e-6).all(axis=1)  # (B, C): all steps or none
    kept = np.isclose(y, scale * x + shift, rtol=1e-5, atol=1e-6).all(axis=1)
    assert (dropped | kept).all() and 0.4 < dropped.mean() < 0.6


def _assert_trains_as_keras(keras, km, models, x, y, loss: str) -> None:
    """evaluate, then 5 Adam(0.01) steps: each model's losses and weights equal Keras's (``km``)."""
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    for model in models:
        model.compile(optimizer=fg.optimizers.Adam(0.01), loss=loss)
    expected_eval = km.evaluate(x, y, verbose=0)
    expected = [km.train_on_batch(x, y) for _ in range(5)]
    for model in models:
        np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected_eval, rtol=1e-5)
        np.testing.assert_allclose([model.train_on_batch(x, y) for _ in range(5)], expected, rtol=1e-3)
        for k, o in zip(km.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def _regularized(mod, R, embedding=False):
    head = [mod.Embedding(20, 4, embeddings_regularizer=R.L2(0.02), activity_regularizer=R.L1(0.01))] if embedding \
        else [mod.Conv1D(5, 3, kernel_regularizer=R.L2(0.01), bias_regularizer=R.L1(0.02),
                         activity_regularizer=R.L1L2(l1=0.01, l2=0.02))]
    return head + [
        mod.GRU(6, return_sequences=True, kernel_regularizer=R.L1L2(l1=0.01, l2=0.01),
                recurrent_regularizer=R.L2(0.03), bias_regularizer=R.L2(0.1)),
        mod.LSTM(5, kernel_regularizer=R.L1(0.01), recurrent_regularizer=R.L2(0.02), bias_regularizer=R.L1(0.05),
                 activity_regularizer=R.L2(0.05)),
        mod.Dense(3, activation="softmax", kernel_regularizer=R.L2(0.05), bias_regularizer=R.L2(0.1),
                  activity_regularizer=R.L1(0.01))]


@pytest.mark.keras
@pytest.mark.parametrize("embedding", [False, True], ids=["conv", "embedding"])
def test_layer_regularizers_train_as_keras(keras, rng, tmp_path, embedding):
    """kernel/bias/recurrent/embeddings/activity regularizers: the loss Keras reports (train and evaluate)
    and the weights after 5 Adam steps, from constructors and from Keras's files."""
    if embedding:
        x, shape = rng.integers(0, 20, (16, T)), (T,)
    else:
        x, shape = rng.standard_normal((16, T, D)).astype(np.float32), (T, D)
    y = rng.integers(0, 3, len(x))
    km = keras.Sequential([keras.Input(shape, dtype="int32" if embedding else "float32")]
                          + _regularized(keras.layers, keras.regularizers, embedding))
    km.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "k.keras")
    km.save(tmp_path / "k.h5")
    models = [fg.Sequential([F.Input(shape)] + _regularized(F, fg.regularizers, embedding)),
              fg.load_model(tmp_path / "k.keras"), fg.load_model(tmp_path / "k.h5")]
    models[0].set_weights(km.get_weights())
    _assert_trains_as_keras(keras, km, models, x, y, "sparse_categorical_crossentropy")
    models[0].save(tmp_path / "ours.keras")  # Keras reads the regularizers back
    back = keras.models.load_model(tmp_path / "ours.keras")
    assert back.layers[1].cell.recurrent_regularizer.get_config() == {"l2": pytest.approx(0.03)}
    assert back.layers[-1].activity_regularizer.get_config() == {"l1": pytest.approx(0.01)}


def _normalized(mod, R):
    return [mod.GRU(6, return_sequences=True),
            mod.LayerNormalization(gamma_regularizer=R.L2(0.05), beta_regularizer=R.L1(0.02)),
            mod.BatchNormalization(gamma_regularizer=R.L1L2(l1=0.01, l2=0.03), beta_regularizer=R.L2(0.04)),
            mod.PReLU(alpha_regularizer=R.L2(0.1), shared_axes=[1]),
            mod.GlobalAveragePooling1D(), mod.Dense(3, activation="softmax")]


@pytest.mark.keras
def test_normalization_and_prelu_weight_regularizers_train_as_keras(keras, rng, tmp_path):
    """gamma/beta regularizers of LayerNormalization and BatchNormalization, PReLU's alpha_regularizer: the
    loss Keras reports and the weights after 5 Adam steps, from constructors and from Keras's files."""
    x = rng.standard_normal((16, T, D)).astype(np.float32)
    y = rng.integers(0, 3, len(x))
    km = keras.Sequential([keras.Input((T, D))] + _normalized(keras.layers, keras.regularizers))
    km.set_weights([(np.abs(rng.standard_normal(w.shape)) + 0.5 if "variance" in w.path  # positive variances
                     else rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.weights])
    km.save(tmp_path / "n.keras")
    km.save(tmp_path / "n.h5")
    models = [fg.Sequential([F.Input((T, D))] + _normalized(F, fg.regularizers)),
              fg.load_model(tmp_path / "n.keras"), fg.load_model(tmp_path / "n.h5")]
    models[0].set_weights(km.get_weights())
    for model in models:
        assert model.layers[1].weight_regularizers["gamma"].get_config() == {"l2": pytest.approx(0.05)}
    _assert_trains_as_keras(keras, km, models, x, y, "sparse_categorical_crossentropy")
    models[0].save(tmp_path / "ours.keras")  # Keras reads the regularizers back
    back = keras.models.load_model(tmp_path / "ours.keras")
    assert back.layers[2].gamma_regularizer.get_config() == {"l1": pytest.approx(0.01), "l2": pytest.approx(0.03)}
    assert back.layers[3].alpha_regularizer.get_config() == {"l2": pytest.approx(0.1)}


@pytest.mark.keras
def test_tf_keras_h5_regularizers_train_as_tf_keras(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L, R = tf_keras.layers, tf_keras.regularizers
    km = tf_keras.Sequential([tf_keras.Input((T, D)), L.GRU(6, kernel_regularizer="l2", recurrent_regularizer=R.l1(0.02),
                                                           activity_regularizer=R.l1_l2(0.01, 0.02)),
                              L.Dense(3, kernel_regularizer=R.L1L2(l1=0.01, l2=0.03))])
    km.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "k2.h5")
    loaded = fg.load_model(tmp_path / "k2.h5")
    assert loaded.layers[0].weight_regularizers["kernel"].get_config() == {"l2": pytest.approx(0.01)}
    x, y = rng.standard_normal((8, T, D)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    loaded.compile(optimizer="sgd", loss="mse")
    penalty = sum(float(r(w)) for layer in loaded.layers for n, r in layer.weight_regularizers.items()
                  for w in [layer._params[n]])
    activity = loaded.layers[0].activity_regularizer(loaded.layers[0](x)) / len(x)
    mse = float(np.mean((loaded.predict(x) - y) ** 2))
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), mse + penalty + activity, rtol=1e-5)


@pytest.mark.parametrize("make,error,message", [
    (lambda: F.Dense(3, kernel_regularizer="my_regularizer"), fg.UnsupportedKerasFeature, "is unknown"),
    (lambda: F.Dense(3, kernel_regularizer=5), TypeError, "'kernel_regularizer'"),
    (lambda: F.GRU(3, recurrent_regularizer={"class_name": "L2", "config": {"l3": 1}}), fg.UnsupportedKerasFeature,
     "l3"),
    (lambda: fg.regularizers.L2(-1.0), ValueError, "l2 should be >= 0"),
    (lambda: fg.regularizers.L1("a"), TypeError, "l1 should be a finite number"),
    (lambda: F.Dense(3, recurrent_regularizer="l2"), TypeError, "recurrent_regularizer"),
    (lambda: F.ActivityRegularization(l1=-1), ValueError, "'l1'"),
    (lambda: F.AlphaDropout(1.0), ValueError, "'rate'"),
    (lambda: F.AlphaDropout(0.1, noise_shape=(0, 1)), ValueError, "'noise_shape'"),
])
def test_bad_regularization_options_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_unimplemented_regularizer_in_a_file_loads_with_a_warning(tmp_path):
    orthogonal = {"module": "my_project", "class_name": "MyRegularizer",  # (a custom one)
                  "config": {"factor": 0.01}, "registered_name": "MyRegularizer"}
    _write_keras_zip(tmp_path / "o.keras", {"module": "keras.layers", "class_name": "Dense", "config": {
        "name": "d", "units": 2, "kernel_regularizer": orthogonal, "bias_regularizer": {"class_name": "L2",
                                                                                       "config": {"l2": 0.5}}}})
    with pytest.raises(fg.ModelFileError):  # (the zip has no weights: the config is what this test reads)
        with pytest.warns(UserWarning, match="kernel_regularizer .*MyRegularizer.* is unknown"):
            fg.load_model(tmp_path / "o.keras")
    _write_keras_zip(tmp_path / "bad.keras", {"module": "keras.layers", "class_name": "Dense", "config": {
        "name": "d", "units": 2, "kernel_regularizer": {"class_name": "L2", "config": {"l2": "x"}}}})
    with pytest.raises(fg.ModelFileError, match="kernel_regularizer"):
        fg.load_model(tmp_path / "bad.keras")


@pytest.mark.keras
def test_tf_keras_h5_time_distributed_loads(rng, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    km = tf_keras.Sequential([tf_keras.Input((T, D)), L.GRU(6, return_sequences=True),
                              L.TimeDistributed(L.BatchNormalization()), L.TimeDistributed(L.LayerNormalization()),
                              L.TimeDistributed(L.Dense(3)), L.GRU(4)])
    km.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "k2.h5")
    x = rng.standard_normal((5, T, D)).astype(np.float32)
    loaded = fg.load_model(tmp_path / "k2.h5")
    assert [type(layer).__name__ for layer in loaded.layers] == ["GRU", "TimeDistributed", "TimeDistributed", "Dense",
                                                                 "GRU"]
    np.testing.assert_allclose(loaded.predict(x), km.predict(x, verbose=0), rtol=1e-4, atol=2e-5)
    for a, b in zip(loaded.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_time_distributed_round_trips_and_refusals(rng, tmp_path):
    import pickle

    model = fg.Sequential([F.Input((T, D)), F.TimeDistributed(F.BatchNormalization()), F.GRU(3)])
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in model.get_weights()])
    x = rng.standard_normal((4, T, D)).astype(np.float32)
    expected = model.predict(x)
    for other in (pickle.loads(pickle.dumps(model)), fg.Sequential.from_config(model.get_config())):
        if not other.built:
            other.build((None, T, D))
        other.set_weights(model.get_weights())
        np.testing.assert_array_equal(other.predict(x), expected)
    model.save(tmp_path / "td.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "td.keras").predict(x), expected)
    assert model.layers[0].weight_paths == ["gamma", "beta", "moving_mean", "moving_variance"]
    with pytest.raises(ValueError, match=r"TimeDistributed\(Masking\) is not supported"):
        F.TimeDistributed(F.Masking())  # (Conv1D and the recurrent layers are supported: test_fuzz13_fixes.py)
    with pytest.raises(TypeError, match="'layer' should be a fastgru layer"):
        F.TimeDistributed(3)
    with pytest.raises(ValueError, match="rank 3 or more"):
        fg.Sequential([F.Input((D,)), F.TimeDistributed(F.Dense(2))])
    with pytest.raises(ValueError, match="expects input shape"):
        model.layers[0].call(np.ones((2, T, D + 1), np.float32))


@pytest.mark.keras
def test_activity_regularizer_inside_bidirectional_trains_as_keras(keras, rng, tmp_path):
    """Keras calls each direction as a layer: each direction's activity penalty of its own output counts
    (merge_mode concat: the two halves of the merged output; the other merge modes below)."""
    L, R = keras.layers, keras.regularizers
    x, y = _data(rng, masked=True)
    km = keras.Sequential([keras.Input((T, D)), L.Masking(),
                           L.Bidirectional(L.GRU(5, return_sequences=True, activity_regularizer=R.L1(0.05))),
                           L.Bidirectional(L.LSTM(4, activity_regularizer=R.L2(0.1))),
                           L.Dense(3, activation="softmax")])
    km.set_weights(_random_weights(km, rng))
    km.save(tmp_path / "b.keras")
    ours = fg.load_model(tmp_path / "b.keras")
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def _fit_side_by_side(keras, km, ours, x, y, steps: int = 4):
    """SGD with momentum on both: the losses of each step (the penalties in them) and the weights after."""
    km.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    ours.compile(optimizer=fg.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(steps):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-4)
    for k, o in zip(km.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_allclose(o, k, rtol=1e-4, atol=1e-5)


@pytest.mark.keras
@pytest.mark.parametrize("merge_mode", ["sum", "ave", "mul"])
def test_activity_regularizer_inside_bidirectional_of_any_merge_mode_trains_as_keras(keras, rng, tmp_path,
                                                                                     merge_mode):
    """Each direction's penalty is taken on its own output before the merge (which sum, ave and mul lose), in a
    Sequential model (the layer's own training forward) and a Functional one (the graph's)."""
    L, R = keras.layers, keras.regularizers
    keras.utils.set_random_seed(1)
    x, _ = _data(rng, masked=True)
    y = rng.standard_normal((len(x), 2)).astype(np.float32)
    chain = keras.Sequential([keras.Input((T, D)), L.Masking(),
                              L.Bidirectional(L.GRU(5, return_sequences=True, activity_regularizer=R.L1(0.05)),
                                              merge_mode=merge_mode),
                              L.Bidirectional(L.LSTM(4, activity_regularizer=R.L2(0.1)), merge_mode=merge_mode),
                              L.Dense(2)])
    inp = keras.Input((T, D))
    graph = keras.Model(inp, L.Dense(2)(L.Bidirectional(L.SimpleRNN(3, activity_regularizer=R.L2(0.2)),
                                                        merge_mode=merge_mode)(L.Masking()(inp))))
    for km in (chain, graph):
        km.save(tmp_path / "b.keras")
        _fit_side_by_side(keras, km, fg.load_model(tmp_path / "b.keras"), x, y)


@pytest.mark.keras
@pytest.mark.parametrize("rnn", ["GRU", "LSTM"])
def test_activity_regularizer_inside_bidirectional_returning_states_trains_as_keras(keras, rng, tmp_path, rnn):
    """With ``return_state=True`` Keras's penalty of each direction covers its output and each of its states;
    ``merge_mode=None`` gives each direction's output apart (was: refused in training)."""
    L, R = keras.layers, keras.regularizers
    keras.utils.set_random_seed(2)
    x, _ = _data(rng, masked=False)
    y = rng.standard_normal((len(x), 2)).astype(np.float32)
    inp = keras.Input((T, D))
    layer = getattr(L, rnn)
    for merge_mode in ("concat", None):
        outs = L.Bidirectional(layer(4, return_state=True, activity_regularizer=R.L2(0.1)),
                               merge_mode=merge_mode)(inp)
        heads = outs[:2] if merge_mode is None else outs[:1]
        km = keras.Model(inp, L.Dense(2)(L.Concatenate()(list(heads) + list(outs[len(heads):]))))
        km.save(tmp_path / "s.keras")
        _fit_side_by_side(keras, km, fg.load_model(tmp_path / "s.keras"), x, y)


@pytest.mark.keras
def test_weight_regularizers_in_a_functional_model_train_as_keras(keras, rng, tmp_path):
    L, R = keras.layers, keras.regularizers
    a, b = keras.Input((T, D)), keras.Input((T, 3))
    h1 = L.GRU(5, kernel_regularizer=R.L2(0.05), recurrent_regularizer=R.L1(0.01))(a)
    h2 = L.Bidirectional(L.LSTM(3, bias_regularizer=R.L2(0.1)))(b)
    out = L.Dense(3, activation="softmax", kernel_regularizer=R.L1L2(0.01, 0.02))(L.Concatenate()([h1, h2]))
    km = keras.Model([a, b], out)
    km.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "f.keras")
    ours = fg.load_model(tmp_path / "f.keras")
    x = [rng.standard_normal((16, T, D)).astype(np.float32), rng.standard_normal((16, T, 3)).astype(np.float32)]
    y = rng.integers(0, 3, 16)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def _activity_graph(keras_like, L, R):
    """Two inputs; activity regularizers on a Conv1D, an RNN returning its states (each output counts),
    a Bidirectional's direction (concat), a merge, a nested Functional model's layer and the softmax output
    (whose penalty is taken on the activated output while the loss takes logits)."""
    a, b = keras_like.Input((T, D)), keras_like.Input((T, 3))
    c = L.Conv1D(4, 3, padding="same", activity_regularizer=R.L1(0.02))(a)
    seq, state = L.GRU(5, return_sequences=True, return_state=True, activity_regularizer=R.L2(0.05))(c)
    h1 = L.GRU(5, activity_regularizer=R.L1L2(l1=0.01, l2=0.02))(seq, initial_state=[state])
    h2 = L.Bidirectional(L.GRU(3, activity_regularizer=R.L1(0.03)))(b)
    inner_in = keras_like.Input((8,))
    inner = keras_like.Model(inner_in, L.Dense(6, activation="tanh", activity_regularizer=R.L2(0.04))(inner_in))
    merged = L.Add(activity_regularizer=R.L1(0.01))([L.Dense(8)(h1), L.Dense(8)(h2)])
    out = L.Dense(3, activation="softmax", activity_regularizer=R.L1(0.02))(inner(merged))
    return keras_like.Model([a, b], out)


@pytest.mark.keras
def test_activity_regularizers_in_a_functional_model_train_as_keras(keras, rng, tmp_path):
    """Keras adds activity_regularizer(output) / batch for every output of every call in the graph; the loss
    Keras reports (evaluate and 5 Adam steps) and the weights after them, from code and from Keras's file."""
    km = _activity_graph(keras, keras.layers, keras.regularizers)
    km.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "act.keras")
    built = _activity_graph(fg, F, fg.regularizers)
    built.set_weights(km.get_weights())
    models = [fg.load_model(tmp_path / "act.keras"), built]
    x = [rng.standard_normal((16, T, D)).astype(np.float32), rng.standard_normal((16, T, 3)).astype(np.float32)]
    y = rng.integers(0, 3, 16)
    _assert_trains_as_keras(keras, km, models, x, y, "sparse_categorical_crossentropy")


@pytest.mark.keras
def test_activity_regularizers_of_a_graph_nested_in_a_sequential_train_as_keras(keras, rng, tmp_path):
    L, R = keras.layers, keras.regularizers
    inner_in = keras.Input((T, D))
    inner = keras.Model(inner_in, L.GRU(5, return_sequences=True, activity_regularizer=R.L2(0.05))(inner_in))
    km = keras.Sequential([keras.Input((T, D)), inner, L.GRU(4), L.Dense(2, activity_regularizer=R.L1(0.02))])
    km.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "nested.keras")
    ours = fg.load_model(tmp_path / "nested.keras")
    x, y = rng.standard_normal((16, T, D)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    ours.compile(optimizer=fg.optimizers.Adam(0.01), loss="mse")
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    for _ in range(5):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


def test_activity_regularizer_in_a_sequential_nested_in_a_graph_is_refused_in_training():
    inp = fg.Input((T, D))
    nested = fg.Sequential([F.Input((T, D)), F.GRU(3, activity_regularizer="l2")])
    graph = fg.Model(inp, F.Dense(1)(nested(inp)))
    graph.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="activity_regularizer inside a Sequential model nested"):
        graph.train_on_batch(np.ones((4, T, D), np.float32), np.zeros((4, 1), np.float32))
