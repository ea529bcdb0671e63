"""A layer built on one sequence length runs on another, as in Keras (a seq2seq model's one-step inference model
rebuilt from the training model's layers; a layer shared by branches of different lengths): only the axes its
weights are laid out on must match, and those are checked."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg

_ONE_INPUT = {
    "Softmax": lambda k: k.layers.Softmax(),
    "ReLU": lambda k: k.layers.ReLU(max_value=1.0),
    "LeakyReLU": lambda k: k.layers.LeakyReLU(),
    "ELU": lambda k: k.layers.ELU(),
    "PReLU shared over time": lambda k: k.layers.PReLU(shared_axes=[1]),
    "Permute": lambda k: k.layers.Permute((2, 1)),
    "Reshape": lambda k: k.layers.Reshape((-1, 2)),
    "Cropping1D": lambda k: k.layers.Cropping1D((1, 0)),
    "ZeroPadding1D": lambda k: k.layers.ZeroPadding1D(1),
    "UpSampling1D": lambda k: k.layers.UpSampling1D(2),
    "EinsumDense": lambda k: k.layers.EinsumDense("btd,de->bte", output_shape=(None, 3), bias_axes="e"),
}
_TWO_INPUTS = {name: (lambda n: lambda k: getattr(k.layers, n)())(name)
               for name in ("Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")}


@pytest.mark.parametrize("name", sorted(_ONE_INPUT) + sorted(_TWO_INPUTS))
def test_a_layer_built_on_five_steps_runs_on_three_as_keras_s(keras, tmp_path, rng, name):
    make = _ONE_INPUT.get(name) or _TWO_INPUTS[name]
    n = 1 if name in _ONE_INPUT else 2
    a, b = keras.Input((5, 4)), keras.Input((5, 4))
    layer = make(keras)
    built = keras.Model([a, b], layer([a, b]) if n == 2 else layer(a))
    for w in built.weights:
        w.assign(rng.standard_normal(w.shape).astype(np.float32))
    built.save(tmp_path / "built.keras")
    loaded = fg.load_model(tmp_path / "built.keras")
    x = [rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(2)]
    outputs = []
    for k, model in ((keras, built), (fg, loaded)):
        shared = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"][0]
        a1, b1 = k.Input((3, 4)), k.Input((3, 4))
        step = k.Model([a1, b1], shared([a1, b1]) if n == 2 else shared(a1))
        outputs.append(step.predict(x, verbose=0))
    assert outputs[1].shape == outputs[0].shape
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)


def test_a_weight_laid_out_along_time_still_checks_its_length(rng):
    inputs = fg.Input((5, 4))
    prelu = fg.layers.PReLU()  # (an alpha per step and feature: five steps)
    fg.Model(inputs, prelu(inputs))
    with pytest.raises(ValueError, match="PReLU 'p_re_lu.*' expects input shape"):
        prelu(rng.standard_normal((2, 3, 4)).astype(np.float32))
    dense = fg.layers.EinsumDense("btd,de->bte", output_shape=(None, 3))  # (its kernel: four features)
    fg.Model(inputs, dense(inputs))
    with pytest.raises(ValueError, match="EinsumDense .* expects input shape"):
        dense(rng.standard_normal((2, 3, 5)).astype(np.float32))


def test_shared_attention_dense_of_another_rank_and_permute_of_another_width_run_as_keras_s(keras, rng):
    """A seq2seq inference model reuses the training model's Attention (the same shapes, or one decoder step), a
    Dense built on (None, 5) runs on (None, 4, 5) (its kernel's axis alike), a Permute on another last axis."""
    outputs = []
    x = [rng.standard_normal((2, 1, 8)).astype(np.float32), rng.standard_normal((2, 7, 8)).astype(np.float32),
         rng.standard_normal((2, 4, 5)).astype(np.float32), rng.standard_normal((2, 16, 1)).astype(np.float32)]
    for k in (keras, fg):
        attention, dense, permute = k.layers.Attention(), k.layers.Dense(3), k.layers.Permute((2, 1))
        attention([k.Input((5, 8)), k.Input((7, 8))])
        attention([k.Input((5, 8)), k.Input((7, 8))])
        dense(k.Input((5,)))
        permute(k.Input((16, 5)))
        inputs = [k.Input((1, 8)), k.Input((7, 8)), k.Input((4, 5)), k.Input((16, 1))]
        model = k.Model(inputs, [attention([inputs[0], inputs[1]]), dense(inputs[2]), permute(inputs[3])])
        if k is keras:
            weights = model.get_weights()
        model.set_weights(weights)
        outputs.append(model.predict(x, verbose=0))
    for a, b in zip(outputs[1], outputs[0]):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_ops_slice_takes_minus_one_as_to_the_end_on_arrays(keras):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for start, size in (([0, 0, 0], [-1, 2, -1]), ([1, 0, 2], [-1, -1, 2])):
        ours, theirs = fg.ops.slice(a, start, size), keras.ops.slice(a, start, size)
        np.testing.assert_array_equal(ours, np.asarray(theirs))
