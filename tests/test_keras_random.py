"""Keras's ``keras.random`` on ``fastgru.random`` (``fastgru.random_ops``): Keras's seed rules and distributions on
arrays, and draws inside a custom layer's call traced for training — inputs of the traced graph drawn at each step
(a VAE's sampling layer, dropout) — checked against finite differences in float64, against Keras's file and
training, and refused by name where a draw has no row per sample."""

from __future__ import annotations

import numpy as np
import pytest
from custom_layer_checks import assert_fit_refused, gradient_in_place

import fastgru as fg


def test_seed_rules_are_keras_s():
    a, b = fg.random.normal((3, 4), seed=7), fg.random.normal((3, 4), seed=7)
    np.testing.assert_array_equal(a, b)  # (an integer seed: the same values at every call)
    assert a.dtype == np.float32 and a.shape == (3, 4)
    first, second = fg.random.SeedGenerator(5), fg.random.SeedGenerator(5)
    draws = [fg.random.uniform((4,), seed=first) for _ in range(2)]
    assert not np.array_equal(*draws)  # (a generator: new values each call, its state advancing)
    np.testing.assert_array_equal(draws[0], fg.random.uniform((4,), seed=second))
    np.testing.assert_array_equal(first.state, [5, 2])
    fg.set_random_seed(3)
    unseeded = fg.random.normal((5,))
    fg.set_random_seed(3)
    np.testing.assert_array_equal(unseeded, fg.random.normal((5,)))  # (seed=None: the library's generator)
    with pytest.raises(ValueError, match="seed"):
        fg.random.normal((2,), seed="7")
    assert fg.random.SeedGenerator.from_config(first.get_config()).get_config() == first.get_config()


def test_distributions_have_keras_s_moments_and_ranges():
    n = 200_000
    z = fg.random.normal((n,), mean=1.0, stddev=2.0, seed=1, dtype="float64")
    assert z.dtype == np.float64 and abs(z.mean() - 1.0) < 0.02 and abs(z.std() - 2.0) < 0.02
    t = fg.random.truncated_normal((n,), stddev=3.0, seed=2)
    assert np.abs(t).max() <= 6.0 and abs(t.std() - 3.0 * 0.8796) < 0.02  # (a normal cut at two deviations)
    u = fg.random.uniform((n,), minval=-1.0, maxval=3.0, seed=3)
    assert u.min() >= -1.0 and u.max() < 3.0 and abs(u.mean() - 1.0) < 0.02
    k = fg.random.randint((n,), 2, 6, seed=4)
    assert k.dtype == np.int32 and set(np.unique(k)) == {2, 3, 4, 5}
    g = fg.random.gamma((n,), alpha=2.0, seed=5)
    assert abs(g.mean() - 2.0) < 0.03
    assert abs(fg.random.binomial((n,), counts=10, probabilities=0.3, seed=6).mean() - 3.0) < 0.03
    assert abs(fg.random.beta((n,), alpha=2.0, beta=6.0, seed=7).mean() - 0.25) < 0.01
    picks = fg.random.categorical(np.log([[0.7, 0.2, 0.1]]), 50_000, seed=8)
    assert picks.shape == (1, 50_000) and abs(np.mean(picks == 0) - 0.7) < 0.01
    assert sorted(fg.random.shuffle(np.arange(10), seed=9)) == list(range(10))
    x = np.ones((400, 500), np.float32)
    dropped = fg.random.dropout(x, 0.25, seed=10)
    assert set(np.unique(dropped)) == {0.0, np.float32(1 / 0.75)} and abs(np.mean(dropped == 0) - 0.25) < 0.01
    rows = fg.random.dropout(x, 0.5, noise_shape=(400, 1), seed=11)  # (one draw per row, broadcast)
    assert all(len(np.unique(r)) == 1 for r in rows)


def _sampling(keras):
    """A VAE's sampling layer (keras.io's), its KL divergence added as a loss."""

    class Sampling(keras.layers.Layer):
        def __init__(self, seed=1337, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch, dim = keras.ops.shape(z_mean)[0], keras.ops.shape(z_mean)[1]
            epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
            self.add_loss(-0.5 * keras.ops.mean(keras.ops.sum(
                1 + z_log_var - keras.ops.square(z_mean) - keras.ops.exp(z_log_var), axis=1)))
            return z_mean + keras.ops.exp(0.5 * z_log_var) * epsilon

    return Sampling


class _Noisy(fg.layers.Layer):  # (a fixed seed: the same draws at every step, so finite differences apply)
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 3), initializer="glorot_uniform", name="w")

    def call(self, inputs, training=False):
        h = fg.ops.matmul(inputs, self.w)
        if training:
            h = h + fg.random.normal(fg.ops.shape(h), stddev=0.5, seed=3, dtype="float64")
            h = fg.random.dropout(h, 0.4, seed=4)
        return fg.ops.tanh(h)


def test_draws_in_a_traced_call_match_finite_differences_in_float64(rng):
    layer, x = _Noisy(dtype="float64"), rng.standard_normal((4, 5, 2))
    layer.build((None, 5, 2))
    layer.w.assign(rng.standard_normal((2, 3)))
    y, cache = layer.forward(x, training=True)
    noise = fg.random.normal((4, 5, 3), stddev=0.5, seed=3, dtype="float64")
    keep = fg.random.uniform((4, 5, 3), seed=4, dtype="float64") >= 0.4
    np.testing.assert_allclose(y, np.tanh((x @ layer.w + noise) / 0.6 * keep), rtol=1e-12)  # (drawn as eagerly)
    dy = rng.standard_normal(y.shape)
    dx, (dw,) = layer.backward(dy, cache)

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=True)[0] * dy))

    for array, grad in ((layer.w, dw), (x, dx)):
        np.testing.assert_allclose(np.reshape(grad, -1), gradient_in_place(loss, array), rtol=1e-6, atol=1e-8)


def _vae(keras, sampling):
    inputs = keras.Input((6, 3))
    h = keras.layers.GRU(8)(inputs)
    z = sampling(name="sampling")([keras.layers.Dense(2)(h), keras.layers.Dense(2)(h)])
    h = keras.layers.GRU(8, return_sequences=True)(keras.layers.RepeatVector(6)(z))
    return keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.Dense(3))(h))


@pytest.mark.keras_graph  # (many steps: faster against the graph)
def test_a_keras_vae_file_loads_predicts_and_trains(keras, tmp_path, rng):
    theirs = _vae(keras, keras.saving.register_keras_serializable(package="vae")(_sampling(keras)))
    theirs.compile("adam", "mse")
    theirs.save(tmp_path / "vae.keras")
    ours = fg.load_model(tmp_path / "vae.keras", custom_objects={"Sampling": _sampling(fg)})
    x = rng.standard_normal((32, 6, 3)).astype(np.float32)
    first, second = ours.predict(x), ours.predict(x)
    assert first.shape == (32, 6, 3) and not np.array_equal(first, second)  # (a new draw at each call)
    draws = [np.array([m.predict(x, verbose=0) for _ in range(100)]) for m in (ours, theirs)]
    z = (draws[0].mean(0) - draws[1].mean(0)) / np.sqrt((draws[0].var(0) + draws[1].var(0)) / 100)
    assert np.mean(np.abs(z)) < 1.1 and np.max(np.abs(z)) < 5  # (the same distribution: means equal within noise)
    np.testing.assert_allclose(draws[0].std(0).mean(), draws[1].std(0).mean(), rtol=0.1)
    their_loss = theirs.evaluate(x, x, verbose=0)
    our_losses = [ours.evaluate(x, x, verbose=0) for _ in range(20)]
    assert abs(np.mean(our_losses) - their_loss) < 0.1 * their_loss  # (the KL term counted, as Keras counts it)
    history = ours.fit(x, x, epochs=15, batch_size=8, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


class _NotPerSample(fg.layers.Layer):
    def call(self, inputs):
        return inputs + fg.random.normal((fg.ops.shape(inputs)[-1],), seed=1)


class _Shuffled(fg.layers.Layer):
    def call(self, inputs):
        return fg.random.shuffle(inputs, seed=1)


@pytest.mark.parametrize("layer_class, what", [(_NotPerSample, "first axis is not the batch"),
                                               (_Shuffled, "keras.random shuffle of a symbolic tensor")])
def test_a_draw_the_trace_cannot_make_is_refused_by_name(rng, layer_class, what):
    assert_fit_refused(layer_class(name="custom"), what, rng)
