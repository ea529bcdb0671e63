"""Normalization, shape, activation and noise layers against live Keras, from one table: forward in a
model around GRUs (masked where the layer sees masks), .keras files both ways, 5 Adam steps of
training, and float64 finite-difference gradients of each layer alone."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru import layers as F

T, D = 8, 4


def _case(name, ours, theirs, before="seq", masked=False, train=True):
    return pytest.param(ours, theirs, before, masked, train, id=name)


# (fastgru factory, keras factory (L = keras.layers), what feeds the layer, masked input, train parity)
CASES = [
    _case("LayerNormalization", lambda: F.LayerNormalization(), lambda L: L.LayerNormalization()),
    _case("LayerNormalization-axes", lambda: F.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False),
          lambda L: L.LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False)),
    _case("LayerNormalization-rms", lambda: F.LayerNormalization(rms_scaling=True),
          lambda L: L.LayerNormalization(rms_scaling=True)),
    _case("BatchNormalization", lambda: F.BatchNormalization(), lambda L: L.BatchNormalization()),
    _case("BatchNormalization-masked", lambda: F.BatchNormalization(momentum=0.5, epsilon=1e-2),
          lambda L: L.BatchNormalization(momentum=0.5, epsilon=1e-2), masked=True),
    _case("BatchNormalization-noscale", lambda: F.BatchNormalization(scale=False, center=False),
          lambda L: L.BatchNormalization(scale=False, center=False)),
    _case("RepeatVector", lambda: F.RepeatVector(5), lambda L: L.RepeatVector(5), before="vec"),
    _case("Reshape", lambda: F.Reshape((T * 6 // 3, 3)), lambda L: L.Reshape((T * 6 // 3, 3))),
    _case("Reshape-minus-one", lambda: F.Reshape((-1, 2)), lambda L: L.Reshape((-1, 2))),
    _case("Permute", lambda: F.Permute((2, 1)), lambda L: L.Permute((2, 1))),
    _case("ZeroPadding1D", lambda: F.ZeroPadding1D((1, 2)), lambda L: L.ZeroPadding1D((1, 2))),
    _case("Cropping1D", lambda: F.Cropping1D((2, 1)), lambda L: L.Cropping1D((2, 1))),
    _case("UpSampling1D", lambda: F.UpSampling1D(3), lambda L: L.UpSampling1D(3)),
    _case("ReLU", lambda: F.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.1),
          lambda L: L.ReLU(max_value=0.6, negative_slope=0.1, threshold=0.1), masked=True),
    _case("LeakyReLU", lambda: F.LeakyReLU(0.2), lambda L: L.LeakyReLU(0.2), masked=True),
    _case("ELU", lambda: F.ELU(0.7), lambda L: L.ELU(0.7), masked=True),
    _case("Softmax", lambda: F.Softmax(), lambda L: L.Softmax()),
    _case("PReLU", lambda: F.PReLU(alpha_initializer="ones", shared_axes=[1]),
          lambda L: L.PReLU(alpha_initializer="ones", shared_axes=[1]), masked=True),
    _case("SpatialDropout1D", lambda: F.SpatialDropout1D(0.3), lambda L: L.SpatialDropout1D(0.3), masked=True,
          train=False),
    _case("GaussianNoise", lambda: F.GaussianNoise(0.2), lambda L: L.GaussianNoise(0.2), masked=True, train=False),
    _case("GaussianDropout", lambda: F.GaussianDropout(0.2), lambda L: L.GaussianDropout(0.2), masked=True,
          train=False),
]


def _data(rng, masked):
    x = rng.standard_normal((16, T, D)).astype(np.float32)
    if masked:
        x[0, -3:] = 0.0
        x[1, :2] = 0.0
        x[5, 4:] = 0.0
    return x, rng.integers(0, 3, len(x))


def _stack(mod, layer, before, masked, extra_input=()):
    """The same model in fastgru or Keras: [Masking] GRU -> layer -> GRU -> Dense(softmax)."""
    head = [mod.Masking()] if masked else []
    feed = [mod.GRU(6, return_sequences=before == "seq")]
    return head + feed + [layer, mod.GRU(5), mod.Dense(3, activation="softmax")]


@pytest.mark.keras
@pytest.mark.parametrize("ours,theirs,before,masked,train", CASES)
def test_forward_files_and_training_match_keras(keras, rng, tmp_path, ours, theirs, before, masked, train):
    L = keras.layers
    x, y = _data(rng, masked)
    km = keras.Sequential([keras.Input((T, D))] + _stack(L, theirs(L), before, masked))
    km.set_weights([(rng.standard_normal(w.shape) * 0.5 + (1.0 if "variance" in v.path else 0.0)).astype(np.float32)
                    if "variance" not in v.path else rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                    for w, v in zip(km.get_weights(), km.weights)])
    model = fg.Sequential([F.Input((T, D))] + _stack(F, ours(), before, masked))
    model.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=2e-5)
    km.save(tmp_path / "k.keras")
    loaded = fg.load_model(tmp_path / "k.keras")
    np.testing.assert_allclose(loaded.predict(x), expected, rtol=1e-4, atol=2e-5)
    for a, b in zip(loaded.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), expected,
                               rtol=1e-4, atol=2e-5)
    if not train:
        return
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.compile(optimizer=fg.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    for _ in range(5):
        np.testing.assert_allclose(model.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-3)
    for k, o in zip(km.get_weights(), model.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-4 * max(np.abs(k).max(), 1e-3))


@pytest.mark.parametrize("ours,theirs,before,masked,train", CASES)
def test_gradients_match_finite_differences(rng, ours, theirs, before, masked, train):
    layer = ours()
    shape = (3, 6) if before == "vec" else (2, T, 6)
    layer.dtype = np.dtype("float64")
    layer.build((None,) + shape[1:])
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.weights])
    x = rng.standard_normal(shape)
    mask = None
    if masked and len(shape) == 3:
        mask = np.ones(shape[:2], bool)
        mask[0, 3:] = False
    y, cache = layer.forward(x, mask=mask, training=True)
    if isinstance(layer, F.BatchNormalization):  # the forward above moved the moving statistics: freeze them
        layer.momentum = 1.0
        y, cache = layer.forward(x, mask=mask, training=True)
    if not train:  # noise layers: a fixed draw, the gradient of that draw
        y, cache = layer.forward(x, mask=mask, training=False)
    coef = rng.standard_normal(y.shape)
    dx, grads = layer.backward(coef, cache)

    def f(value):
        return layer.forward(value, mask=mask, training=train)[0]

    np.testing.assert_allclose(dx, numeric_gradient(f, x, coef), rtol=1e-5, atol=1e-7)
    for w, g in zip(layer.trainable_weights, grads):
        def fw(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return f(x)
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(fw, w.copy(), coef), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
def test_softmax_with_a_mask_of_the_inputs_shape_matches_keras(keras, rng):
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    mask = rng.random((2, 3, 5)) > 0.3
    ours = F.Softmax(axis=-1)
    ours.build((None, 3, 5))
    np.testing.assert_allclose(ours(x, mask=mask), np.asarray(keras.layers.Softmax()(x, mask=mask)), rtol=1e-6,
                               atol=1e-7)
    with pytest.raises(ValueError, match="broadcastable"):
        ours(x, mask=np.ones((2, 3), bool))  # a (batch, steps) mask does not fit (batch, steps, features), as in Keras


def test_batch_normalization_moving_statistics_and_inference(rng):
    layer = F.BatchNormalization(momentum=0.9)
    layer.build((None, 5, 3))
    x = rng.standard_normal((4, 5, 3)).astype(np.float32) * 2 + 1
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.get_weights()[2], 0.1 * x.mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(layer.get_weights()[3], 0.9 + 0.1 * x.var(axis=(0, 1)), rtol=1e-5)
    mean, var = layer.get_weights()[2:]
    np.testing.assert_allclose(layer(x), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-5, atol=1e-6)
    assert len(layer.trainable_weights) == 2 and len(layer.weights) == 4


def test_noise_layers_are_identity_at_inference_and_seeded_in_training(rng):
    x = rng.standard_normal((64, 10, 8)).astype(np.float32)
    for cls, kwargs in ((F.SpatialDropout1D, {"rate": 0.5}), (F.GaussianNoise, {"stddev": 0.5}),
                        (F.GaussianDropout, {"rate": 0.5})):
        a, b = cls(seed=3, **kwargs), cls(seed=3, **kwargs)
        for layer in (a, b):
            layer.build((None, 10, 8))
        np.testing.assert_array_equal(a(x), x)
        ya, yb = a.forward(x, training=True)[0], b.forward(x, training=True)[0]
        np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(ya, x)
        assert abs(ya.mean() - x.mean()) < 0.05
    dropped = F.SpatialDropout1D(0.5, seed=1)
    dropped.build((None, 10, 8))
    y = dropped.forward(x, training=True)[0]
    zero_channels = np.all(y == 0, axis=1)  # (B, C): whole channels are dropped per sample
    assert 0.3 < zero_channels.mean() < 0.7
    np.testing.assert_allclose(y[~np.all(y == 0, axis=1)[:, None, :].repeat(10, 1)],
                               2 * x[~np.all(y == 0, axis=1)[:, None, :].repeat(10, 1)], rtol=1e-6)


@pytest.mark.parametrize("make,error,message", [
    (lambda: F.LayerNormalization(axis=0), ValueError, "axis"),
    (lambda: F.LayerNormalization(epsilon=0), ValueError, "'epsilon'"),
    (lambda: F.BatchNormalization(momentum=1.5), ValueError, "'momentum'"),
    (lambda: F.BatchNormalization(center="no"), TypeError, "'center'"),
    (lambda: F.RepeatVector(0), ValueError, "'n'"),
    (lambda: F.Reshape((-1, -1)), ValueError, "at most one entry"),
    (lambda: F.Permute((1, 3)), ValueError, "permutation"),
    (lambda: F.ZeroPadding1D(-1), ValueError, "'padding'"),
    (lambda: F.UpSampling1D(True), TypeError, "'size'"),
    (lambda: F.ReLU(negative_slope=-1), ValueError, "'negative_slope'"),
    (lambda: F.SpatialDropout1D(1.0), ValueError, "'rate'"),
    (lambda: F.GaussianNoise("a"), TypeError, "'stddev'"),
])
def test_bad_options_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="rank 2"):
        fg.Sequential([F.Input((T, D)), F.RepeatVector(3)])
    with pytest.raises(ValueError, match="do not fit"):
        fg.Sequential([F.Input((T, D)), F.Reshape((5, 5))])
    with pytest.raises(ValueError, match="leaves no steps"):
        fg.Sequential([F.Input((3, D)), F.Cropping1D((2, 1))])
    model = fg.Sequential([F.Input((T, D)), F.LayerNormalization()])
    with pytest.raises(ValueError, match="expects input shape"):
        model.layers[0].call(np.ones((2, T, D + 1), np.float32))
