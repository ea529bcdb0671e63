"""Fixes from the fifty-second fuzz round (how application code calls a loaded model); each test says what was
wrong."""

from __future__ import annotations

import numpy as np

import fastgru as fg

L = fg.layers


def _token_model():
    tokens, extra = fg.Input((None,), dtype="int32", name="tokens"), fg.Input((2,), name="extra")
    h = L.GRU(3)(L.Embedding(20, 4, mask_zero=True)(tokens))
    return fg.Model([tokens, extra], L.Dense(1)(L.Concatenate()([h, extra])))


def test_a_loaded_functional_model_declares_its_inputs_dtypes(tmp_path):
    """A loaded Functional model's ``model.inputs[i].dtype`` was float32 whatever the file declared (int32 tokens,
    strings): serving code that casts requests by it sent floats. The layer knew (``input_dtype``); the tensor
    did not."""
    _token_model().save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras")
    assert [t.dtype for t in loaded.inputs] == ["int32", "float32"]
    assert loaded.get_layer("tokens").input_dtype == "int32"
    texts = fg.Input((1,), dtype="string", name="text")
    vectorize = L.TextVectorization(max_tokens=10, output_sequence_length=3)
    vectorize.adapt(np.array(["a b", "b c"]))
    fg.Model(texts, L.Dense(1)(L.Embedding(10, 2)(vectorize(texts))[:, 0])).save(tmp_path / "s.keras")
    assert fg.load_model(tmp_path / "s.keras").inputs[0].dtype == "string"


def test_an_input_layer_s_input_is_an_empty_list_and_masks_take_one_argument():
    """``InputLayer.input`` raised IndexError (so ``hasattr(layer, "input")`` raised too, in any loop over
    ``model.layers``); Keras gives ``[]``. ``compute_mask(inputs)`` needed its ``mask`` argument; Keras's
    signature is ``compute_mask(inputs, mask=None)``."""
    model = _token_model()
    assert model.get_layer("tokens").input == []
    assert all(hasattr(layer, "input") for layer in model.layers)
    tokens = np.array([[3, 4, 0, 0], [5, 0, 0, 0]])
    embedding = next(layer for layer in model.layers if isinstance(layer, L.Embedding))
    np.testing.assert_array_equal(embedding.compute_mask(tokens), tokens != 0)
    np.testing.assert_array_equal(L.Masking(0.0).compute_mask(np.ones((2, 3, 1))), np.ones((2, 3), bool))
