"""Masks carried on tensors through custom layers, as in Keras 3 (``fastgru.keras_masks``): a layer a custom layer
holds reads the mask its input carries though the custom ``call`` takes no ``mask``; a custom layer that returns
its input, or what a masking layer made of it, passes the mask on to the next layer; a MultiHeadAttention held
reads the masks of its query and value. Checked against Keras on padded sequences, in predict (eager calls) and in
fit (the traced calls), and against the same rows cut to their length (no padding at all)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _classes(keras):
    """The same custom layers written against ``keras`` (Keras itself, or fastgru standing in for it)."""
    layers = keras.layers

    class GRUInside(layers.Layer):  # (no mask parameter: the GRU reads its input's)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gru = layers.GRU(5)

        def call(self, x):
            return self.gru(x)

    class PoolInside(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.pool = layers.GlobalAveragePooling1D()

        def call(self, x):
            return self.pool(x)

    class PassThrough(layers.Layer):  # (returns its input: the mask goes on with it)
        def call(self, x):
            return x

    class Scaled(layers.Layer):  # (an op makes a new tensor: no mask after it)
        def call(self, x):
            return x * 2.0

    class SequenceGRU(layers.Layer):  # (the GRU's output carries the mask; the layer declares no masking)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gru = layers.GRU(4, return_sequences=True)

        def call(self, x, mask=None):
            return self.gru(x, mask=mask)

    class SelfAttention(layers.Layer):  # (keras.io's TransformerBlock, smaller)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.att = layers.MultiHeadAttention(num_heads=2, key_dim=3)
            self.ffn = keras.Sequential([layers.Dense(6, activation="relu"), layers.Dense(6)])
            self.norm1 = layers.LayerNormalization(epsilon=1e-6)
            self.norm2 = layers.LayerNormalization(epsilon=1e-6)
            self.drop = layers.Dropout(0.0)

        def call(self, inputs, training=False):
            h = self.norm1(inputs + self.drop(self.att(inputs, inputs), training=training))
            return self.norm2(h + self.ffn(h))

    class Narrowed(layers.Layer):  # (returns its input; its compute_mask narrows the mask: the graph's mask)
        def call(self, x):
            return x

        def compute_mask(self, x, mask=None):
            return keras.ops.logical_and(mask, x[..., 1] > 0)

    class KeepsMasking(layers.Layer):  # (supports masking: the graph passes its input's mask, not the Masking's)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True
            self.masking = layers.Masking(0.0)

        def call(self, x):
            return self.masking(x)

    class OwnMask(layers.Layer):  # (supports masking; the GRU it holds gets a mask of its own)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True
            self.gru = layers.GRU(4, return_sequences=True)

        def call(self, x):
            return self.gru(x, mask=keras.ops.greater(x[..., 0], 0.0))

    class StartState(layers.Layer):  # (a held GRU given initial_state: two tensors, so Keras passes it no mask)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.start = layers.Dense(4)
            self.gru = layers.GRU(4)

        def call(self, x):
            return self.gru(x, initial_state=[self.start(keras.ops.mean(x, axis=1))])

    class EncoderDecoder(layers.Layer):  # (the decoder's output carries the mask of its input, given no mask)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder = layers.LSTM(4, return_state=True)
            self.decoder = layers.LSTM(4, return_sequences=True)

        def call(self, x):
            _, h, c = self.encoder(x)
            return self.decoder(x, initial_state=[h, c])

    class CausalAttention(layers.Layer):  # (a constant causal mask built with ops.arange, as keras.io's decoder)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.att = layers.MultiHeadAttention(num_heads=2, key_dim=3)

        def call(self, x):
            steps = keras.ops.shape(x)[1]
            causal = keras.ops.arange(steps)[:, None] >= keras.ops.arange(steps)[None, :]
            return self.att(x, x, attention_mask=keras.ops.cast(causal, "int32")[None])

    class OnesState(layers.Layer):  # (a constant initial state sized by the batch: a tensor of the traced graph)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gru = layers.GRU(4)

        def call(self, x):
            return self.gru(x, initial_state=[keras.ops.ones((keras.ops.shape(x)[0], 4))])

    return {c.__name__: c for c in (GRUInside, PoolInside, PassThrough, Scaled, SequenceGRU, SelfAttention, Narrowed,
                                    KeepsMasking, OwnMask, StartState, EncoderDecoder, CausalAttention, OnesState)}


def _ids(rng, n=6, steps=8, vocab=20):
    ids = rng.integers(1, vocab, (n, steps))
    for i, length in enumerate(rng.integers(2, steps, n)):
        ids[i, length:] = 0
    return ids.astype("int32")


def _build(api, classes, case):
    """The model of ``case`` in ``api`` (keras or fastgru): ids -> Embedding(mask_zero) -> the custom layer(s)."""
    layers = api.layers
    inp = api.Input((None,), dtype="int32")
    e = layers.Embedding(20, 6, mask_zero=True)(inp)
    if case == "gru_inside":
        out = layers.Dense(2)(classes["GRUInside"]()(e))
    elif case == "pool_inside":
        out = classes["PoolInside"]()(e)
    elif case == "pass_through":
        out = layers.GRU(4)(classes["PassThrough"]()(e))
    elif case == "op_drops":
        out = layers.GRU(4)(classes["Scaled"]()(e))
    elif case == "sequence_gru":
        out = layers.GRU(3)(classes["SequenceGRU"]()(e))
    elif case in ("narrowed", "keeps_masking", "own_mask"):
        name = {"narrowed": "Narrowed", "keeps_masking": "KeepsMasking", "own_mask": "OwnMask"}[case]
        out = layers.GRU(3)(classes[name]()(e))
    elif case == "ones_state":
        out = classes["OnesState"]()(e)
    elif case == "causal_attention":
        out = layers.GRU(3)(classes["CausalAttention"]()(e))
    elif case == "encoder_decoder":
        out = layers.GRU(3)(classes["EncoderDecoder"]()(e))
    elif case == "start_state":
        out = classes["StartState"]()(e)
    else:  # "transformer"
        out = layers.Dense(2)(layers.GlobalAveragePooling1D()(classes["SelfAttention"]()(e)))
    return api.Model(inp, out)


CASES = ["gru_inside", "pool_inside", "pass_through", "op_drops", "sequence_gru", "transformer", "narrowed",
         "keeps_masking", "own_mask", "start_state", "encoder_decoder", "causal_attention", "ones_state"]


@pytest.mark.keras
@pytest.mark.parametrize("case", CASES)
def test_masks_carried_through_custom_layers_match_keras(keras, rng, case):
    theirs = _build(keras, _classes(keras), case)
    ours = _build(fg, _classes(fg), case)
    weights = [rng.normal(0, 0.5, np.shape(w)).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    x = _ids(rng)
    expected = theirs.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours(x), expected, rtol=1e-4, atol=1e-5)  # (the eager call too)
    y = rng.normal(size=expected.shape).astype("float32")
    for m in (theirs, ours):
        m.compile(optimizer=(keras if m is theirs else fg).optimizers.SGD(0.1), loss="mse")
    history = theirs.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(ours.fit(x, y, batch_size=3, epochs=2, shuffle=False, verbose=0).history["loss"],
                               history["loss"], rtol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("case", ["gru_inside", "pass_through", "sequence_gru"])
def test_padded_rows_give_the_unpadded_numbers(rng, case):
    model = _build(fg, _classes(fg), case)
    x = _ids(rng)
    padded = model.predict(x, verbose=0)
    for row, ids in zip(padded, x):
        length = int(np.count_nonzero(ids))  # (the same model on the row cut to its length: no padding, no mask)
        np.testing.assert_allclose(row, model.predict(ids[None, :length], verbose=0)[0], rtol=1e-5, atol=1e-6)


def test_eager_layers_read_and_leave_masks():
    emb = fg.layers.Embedding(10, 3, mask_zero=True)
    h = emb(np.array([[1, 2, 0, 0]], "int32"))
    np.testing.assert_array_equal(h._keras_mask, [[True, True, False, False]])  # (as Keras's tensor carries it)
    gru = fg.layers.GRU(2, return_sequences=True)
    seq = gru(h)
    np.testing.assert_array_equal(seq._keras_mask, h._keras_mask)
    np.testing.assert_allclose(seq, gru(np.asarray(h), mask=np.array([[True, True, False, False]])))
    assert getattr(fg.layers.GRU(2)(h), "_keras_mask", None) is None  # (no time axis: no mask)
    assert getattr(np.asarray(h) * 2, "_keras_mask", None) is None
