"""Fixes from the twenty-second Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg


def _padded_sequences(rng, bsz: int = 8, steps: int = 6, features: int = 3) -> np.ndarray:
    """Rows padded with zeros (Masking's value) after their end, before their start, and in holes."""
    x = rng.normal(size=(bsz, steps, features)).astype("float32")
    x[0, 3:] = x[1, :2] = x[2, 2:4] = x[3, 5:] = x[4, [0, 2, 4]] = 0.0
    return x


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "SimpleRNN"])
def test_unrolled_backwards_masked_sequences_match_keras(keras, tmp_path, cell):
    """Keras's unrolled loop (``unroll=True``) going backwards over a masked sequence with
    ``return_sequences`` and ``zero_output_for_mask`` (what a Bidirectional's backward layer is) repeats the
    previous output at masked steps and then zeroes the outputs, in processing order, where the mask in
    *time* order is off. fastgru ran the while loop's semantics (each masked step zeroed itself): 0.47 to
    0.99 off in predictions, other losses in training. Now the layer alone and inside a Bidirectional
    predict, train and save back as Keras does; and Keras's numbers do depend on ``unroll`` here."""
    rng = np.random.default_rng(0)
    x = _padded_sequences(rng)
    y = rng.normal(size=(len(x), 1)).astype("float32")
    layer = getattr(keras.layers, cell)
    keras.utils.set_random_seed(0)
    inp = keras.Input((x.shape[1], x.shape[2]))
    masked = keras.layers.Masking()(inp)
    alone = layer(4, return_sequences=True, unroll=True, go_backwards=True, zero_output_for_mask=True)(masked)
    both = keras.layers.Bidirectional(layer(3, return_sequences=True, unroll=True))(masked)
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Concatenate()([alone, both]))
    km = keras.Model(inp, [alone, keras.layers.Dense(1)(pooled)])
    rolled = keras.models.clone_model(km)
    rolled.set_weights(km.get_weights())
    for layer_config in rolled.layers:  # (the same weights without unroll: Keras's other numbers)
        inner = getattr(layer_config, "backward_layer", None)
        for rnn in (layer_config, inner, getattr(layer_config, "forward_layer", None)):
            if rnn is not None and hasattr(rnn, "unroll"):
                rnn.unroll = False
    assert np.abs(km.predict(x, verbose=0)[0] - rolled.predict(x, verbose=0)[0]).max() > 1e-2
    ours = fg.from_keras(km)
    np.testing.assert_allclose(ours.predict(x)[0], km.predict(x, verbose=0)[0], rtol=1e-5, atol=1e-6)
    head = keras.Model(inp, km.outputs[1])
    assert_keras_parity(keras, head, x, y, tmp_path, "mse")


def _token_batch(rng, vocab: int = 20, steps: int = 8, bsz: int = 12) -> np.ndarray:
    ids = rng.integers(1, vocab, size=(bsz, steps))
    for i in range(bsz):
        ids[i, rng.integers(1, steps + 1):] = 0
    return ids


@pytest.mark.parametrize("case", ["attention_beside_mha", "two_mha", "additive_after_mha", "cross_after_self"])
def test_attention_layers_see_the_masks_a_multi_head_attention_left(keras, tmp_path, case):
    """Keras 3's MultiHeadAttention deletes the masks of the tensors it is called on as it runs, and
    Attention, AdditiveAttention and MultiHeadAttention read the masks their tensors carry at run time
    (their nodes record no ``mask=``), in the order Keras runs the nodes of a depth. fastgru ran the nodes
    of a depth in another order and gave Attention and AdditiveAttention the masks of the graph's
    construction: 0.005-0.07 off in predictions, other losses in training. (Layers that take one tensor
    and a ``mask``, the RNNs and poolings, keep the recorded masks: the GlobalAveragePooling1D head.)"""
    rng = np.random.default_rng(3)
    ids = _token_batch(rng)
    y = (rng.random((len(ids), 1)) > 0.5).astype("float32")
    L = keras.layers
    keras.utils.set_random_seed(11)
    tokens = keras.Input((ids.shape[1],), dtype="int32")
    e = L.Embedding(20, 4, mask_zero=True)(tokens)
    h = L.GRU(4, return_sequences=True)(e)
    if case == "attention_beside_mha":
        a, m = L.Attention()([e, e]), L.MultiHeadAttention(2, 2)(e, e)
    elif case == "two_mha":
        a, m = L.MultiHeadAttention(2, 2, name="mha_a")(e, e), L.MultiHeadAttention(2, 2, name="mha_b")(e, e)
    elif case == "additive_after_mha":
        m = L.MultiHeadAttention(2, 2)(h, h)
        a = L.AdditiveAttention()([h, m])
    else:
        m = L.Dense(4)(L.MultiHeadAttention(2, 2)(e, e))
        a = L.Attention()([m, h])
    # (Flatten keeps the masked steps of ``a``: where an attention layer zeroes its query's masked steps)
    pooled = L.Concatenate()([L.Flatten()(a), L.GlobalAveragePooling1D()(m)])
    km = keras.Model(tokens, L.Dense(1, activation="sigmoid")(pooled))
    assert_keras_parity(keras, km, ids, y, tmp_path, "binary_crossentropy", suffixes=(".keras",))


@pytest.mark.parametrize("options", [{"validation_freq": 2}, {"validation_freq": [1, 3]}, {"steps_per_epoch": 2},
                                     {"steps_per_epoch": 5}, {"steps_per_epoch": 2, "validation_freq": 2}],
                         ids=["freq-2", "freq-list", "steps-2", "steps-5", "steps-and-freq"])
def test_fit_takes_validation_freq_and_steps_per_epoch_as_keras(keras, options):
    """``fit(validation_freq=, steps_per_epoch=)`` raised "unexpected keyword argument". Now: validation every
    N epochs (or after the listed ones), the ``val_`` entries only for those; ``steps_per_epoch`` batches an
    epoch from a pass over the data that goes on across epochs, an epoch that reaches the pass's end
    stopping there with Keras's warning. The same History as Keras's, numbers and lengths."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 5, 3)).astype("float32"), rng.normal(size=(10, 1)).astype("float32")
    val = (rng.normal(size=(6, 5, 3)).astype("float32"), rng.normal(size=(6, 1)).astype("float32"))
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.from_keras(km)
    km.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"])
    ours.compile(fg.optimizers.Adam(0.01), "mse", metrics=["mae"])
    args = dict(batch_size=4, epochs=4, shuffle=False, verbose=0, validation_data=val, **options)
    if "steps_per_epoch" in options:  # (3 batches a pass: an epoch runs out of them, in Keras as here)
        with pytest.warns(UserWarning, match="ran out of"):
            expected = km.fit(x, y, **args).history
        with pytest.warns(UserWarning, match="ran out of batches"):
            mine = ours.fit(x, y, **args).history
    else:
        expected = km.fit(x, y, **args).history
        mine = ours.fit(x, y, **args).history
    assert mine.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(mine[key], values, rtol=1e-5, err_msg=key)


def test_fit_refuses_bad_validation_freq_and_steps_per_epoch():
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(2), fg.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = np.zeros((4, 5, 3), np.float32), np.zeros((4, 1), np.float32)
    for bad in ({"validation_freq": 0}, {"validation_freq": [1, 0]}, {"steps_per_epoch": 0}):
        with pytest.raises(ValueError, match="validation_freq|steps_per_epoch"):
            model.fit(x, y, verbose=0, **bad)
    for bad in ({"validation_freq": 1.5}, {"validation_freq": "2"}, {"steps_per_epoch": 2.0}):
        with pytest.raises(TypeError, match="validation_freq|steps_per_epoch"):
            model.fit(x, y, verbose=0, **bad)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop-momentum", "sgd-nesterov"])
def test_from_keras_keeps_a_compiled_models_compile_state(keras, optimizer):
    """``fg.from_keras`` of a compiled, trained Keras model came back uncompiled ("You must call compile()").
    Now it comes back compiled the same way with the optimizer's state, as ``load_model`` restores a file's:
    training goes on as the Keras model's does; ``compile=False`` and an uncompiled model give an uncompiled
    one."""
    make = {"adam": lambda: keras.optimizers.Adam(0.01),
            "rmsprop-momentum": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5),
            "sgd-nesterov": lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)}[optimizer]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 5, 3)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    assert getattr(fg.from_keras(km), "_compiled", None) is None
    km.compile(make(), "mse", metrics=["mae"])
    km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert getattr(fg.from_keras(km, compile=False), "_compiled", None) is None
    ours = fg.from_keras(km)
    expected = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    mine = ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    assert mine.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(mine[key], values, rtol=1e-5, err_msg=key)
