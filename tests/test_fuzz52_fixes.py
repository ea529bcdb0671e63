"""Fixes from the fifty-second fuzz round (how application code calls a loaded model); each test says what was
wrong."""

from __future__ import annotations

import numpy as np
import pytest

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


def test_predict_reads_streams_as_keras_does():
    """predict refused three streams Keras's predict reads: a finite generator without ``steps`` (read to its
    end), batches of different sizes, and ``padded_batch``'s batches of different lengths (predicted one by one,
    their outputs joined); evaluate reads a generator to its end too."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 6, 3)).astype("float32"), rng.normal(size=(20, 1)).astype("float32")
    model = fg.Sequential([fg.Input((None, 3)), L.GRU(4), L.Dense(1)])
    model.compile("sgd", "mse")
    expected = model.predict(x)
    np.testing.assert_allclose(model.predict(x[i:i + 5] for i in range(0, 20, 5)), expected, rtol=1e-6)
    uneven = [x[:5], x[5:12], x[12:]]  # (5, 7 and 8 rows)
    np.testing.assert_allclose(model.predict(iter(uneven)), expected, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(((x[i:i + 5], y[i:i + 5]) for i in range(0, 20, 5)), verbose=0),
                               model.evaluate(x, y, batch_size=5, verbose=0), rtol=1e-6)
    padded = [np.pad(x[:8, :4], ((0, 0), (0, 0), (0, 0))), x[8:]]  # (4 steps, then 6)
    np.testing.assert_allclose(model.predict(iter(padded)),
                               np.concatenate([model.predict(x[:8, :4]), model.predict(x[8:])]), rtol=1e-6)
    inputs = fg.Input((None, 3))
    graph = fg.Model(inputs, L.Dense(1)(L.GRU(4)(inputs)))
    np.testing.assert_allclose(graph.predict(iter([x[:8, :4], x[8:]])),
                               np.concatenate([graph.predict(x[:8, :4]), graph.predict(x[8:])]), rtol=1e-6)
    sequences = fg.Sequential([fg.Input((None, 3)), L.GRU(4, return_sequences=True)])
    with pytest.raises(ValueError, match="differ past the batch axis .* pad every batch to one length"):
        sequences.predict(iter([x[:8, :4], x[8:]]))


@pytest.mark.keras
def test_a_dict_structured_model_keeps_its_structure(keras, tmp_path):
    """A model built on dicts of inputs and outputs gave ``model.input``/``model.output`` as lists (so
    ``model.output["cls"]`` raised TypeError, and a feature extractor ``Model(m.input, m.output)`` predicted a list)
    and its inputs in the order declared, where Keras sorts a dict's keys."""
    K = keras.layers
    seq, meta = keras.Input((8, 4), name="seq"), keras.Input((3,), name="meta")
    h = K.Concatenate()([K.GRU(5)(seq), meta])
    km = keras.Model({"seq": seq, "meta": meta}, {"score": K.Dense(1, name="score")(h),
                                                  "cls": K.Dense(2, activation="softmax", name="cls")(h)})
    km.save(tmp_path / "d.keras")
    ours = fg.load_model(tmp_path / "d.keras")
    assert sorted(ours.input) == ["meta", "seq"] and list(ours.output) == list(km.output)
    assert ours.input_shape == [tuple(t.shape) for t in km.inputs] and ours.output["cls"].shape == (None, 2)
    rng = np.random.default_rng(0)
    data = {"seq": rng.normal(size=(4, 8, 4)).astype("float32"), "meta": rng.normal(size=(4, 3)).astype("float32")}
    expected = km.predict(data, verbose=0)
    extractor = fg.Model(ours.input, ours.output)
    for got in (ours.predict(data), extractor.predict(data), ours.predict([data["meta"], data["seq"]])):
        assert isinstance(got, dict) and list(got) == list(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6)


def test_clone_model_as_keras():
    """``keras.models.clone_model`` had no counterpart: the same architecture, fresh weights, compiled as the model
    was with a fresh optimizer (as Keras 3.15's; fuzz round 54 found the clone left uncompiled)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    chain = fg.Sequential([fg.Input((5, 3)), L.GRU(4), L.Dense(2)], name="chain")
    chain.compile("adam", "mse")
    seq_in, tokens = fg.Input((5, 3), name="seq"), fg.Input((None,), dtype="int32", name="tokens")
    h = L.Concatenate()([L.GRU(4)(seq_in), L.GRU(3)(L.Embedding(10, 2, mask_zero=True)(tokens))])
    graph = fg.Model({"seq": seq_in, "tokens": tokens}, {"y": L.Dense(1, name="y")(h + 1.0)})
    data = {"seq": x, "tokens": np.array([[1, 2, 0], [3, 0, 0]])}
    for model, inputs in ((chain, x), (graph, data)):
        clone = fg.models.clone_model(model)
        assert type(clone) is type(model) and clone is not model
        assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
        assert (getattr(clone, "_compiled", None) is not None) == (model is chain)  # (compiled as the model was)
        if model is chain:
            assert clone.optimizer is not chain.optimizer and int(clone.optimizer.iterations) == 0
        assert any((a != b).any() for a, b in zip(clone.get_weights(), model.get_weights()))  # (fresh weights)
        clone.set_weights(model.get_weights())
        got, expected = clone.predict(inputs), model.predict(inputs)
        for a, b in zip(*(list(o.values()) if isinstance(o, dict) else [o] for o in (got, expected))):
            np.testing.assert_array_equal(a, b)
    assert fg.models.clone_model(graph).inputs[1].dtype == "int32"
    with pytest.raises(fg.UnsupportedKerasFeature, match="clone_function not supported"):
        fg.models.clone_model(chain, clone_function=lambda layer: layer)
    with pytest.raises(TypeError, match="expects a Sequential or Functional model"):
        fg.models.clone_model(L.Dense(2))
