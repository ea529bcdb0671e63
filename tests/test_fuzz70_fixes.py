"""Fuzz round 70 (an application builder's calls, compared with Keras 3): a model whose inputs were given as a dict
is keyed by that dict's keys, as Keras's is."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _trained_file_loaded(keras, km, tmp_path):
    """``km`` compiled (SGD with momentum, mse), saved, and loaded by fastgru."""
    km.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    km.save(tmp_path / "m.keras")
    return fg.load_model(tmp_path / "m.keras")


def _padded_tokens(rng, vocab: int, steps: int):
    """Six rows of token ids, the second and third padded with zeros from two thirds and one third on; targets."""
    tokens = rng.integers(1, vocab, (6, steps))
    tokens[1, 2 * steps // 3:] = 0
    tokens[2, steps // 3:] = 0
    return tokens, rng.standard_normal((6, 1)).astype(np.float32)


@pytest.mark.keras
def test_a_model_built_on_a_dict_of_inputs_is_keyed_by_the_dicts_keys(keras, rng, tmp_path):
    """Keys other than the Inputs' names ("series" for Input "seq_in"), in another order than the names sort in:
    predict, evaluate and fit take the keys, as Keras's do; a dict keyed by the Inputs' names is taken too."""
    L = keras.layers
    seq, aux = keras.Input((6, 3), name="seq_in"), keras.Input((2,), name="a_aux")
    out = L.Dense(1)(L.Concatenate()([L.GRU(4)(seq), aux]))
    km = keras.Model({"series": seq, "aux": aux}, out)
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    km.save(tmp_path / "d.keras")
    model = fg.load_model(tmp_path / "d.keras")
    x = {"series": rng.standard_normal((10, 6, 3)).astype(np.float32),
         "aux": rng.standard_normal((10, 2)).astype(np.float32)}
    y = rng.standard_normal((10, 1)).astype(np.float32)
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict({"seq_in": x["series"], "a_aux": x["aux"], "id": np.arange(10)}),
                               expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    ours = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    with pytest.raises(ValueError, match=r"expects inputs \['aux', 'series'\] \(the inputs' names: .*the dict "
                                         r"misses \['series'\] \(its other keys: \['seq'\]\)"):
        model.predict({"aux": x["aux"], "seq": x["series"]})


def test_a_model_built_in_code_on_a_dict_of_inputs_takes_its_keys(rng):
    inputs = {"tokens": fg.Input((5,), dtype="int32", name="ids"), "extra": fg.Input((3,), name="more")}
    h = fg.layers.GRU(4)(fg.layers.Embedding(9, 3, mask_zero=True)(inputs["tokens"]))
    model = fg.Model(inputs, fg.layers.Dense(2)(fg.layers.Concatenate()([h, inputs["extra"]])))
    tokens, extra = rng.integers(0, 9, (6, 5)), rng.standard_normal((6, 3)).astype(np.float32)
    by_key = model.predict({"tokens": tokens, "extra": extra})
    np.testing.assert_array_equal(model.predict({"ids": tokens, "more": extra}), by_key)
    np.testing.assert_array_equal(model.predict([extra, tokens]), by_key)  # (a list: the keys' sorted order)


def _listed(value):
    return list(value) if isinstance(value, tuple) else value


CONFIG_CASES = {
    "GRU": dict(units=4), "LSTM": dict(units=4), "SimpleRNN": dict(units=4), "Dense": dict(units=3),
    "Conv1D": dict(filters=2, kernel_size=3), "Conv2D": dict(filters=2, kernel_size=3),
    "Conv3D": dict(filters=2, kernel_size=3), "Conv1DTranspose": dict(filters=2, kernel_size=3),
    "Conv2DTranspose": dict(filters=2, kernel_size=3), "SeparableConv1D": dict(filters=2, kernel_size=3),
    "SeparableConv2D": dict(filters=2, kernel_size=3), "DepthwiseConv1D": dict(kernel_size=3),
    "DepthwiseConv2D": dict(kernel_size=3), "ConvLSTM1D": dict(filters=2, kernel_size=3),
    "Embedding": dict(input_dim=5, output_dim=2), "EinsumDense": dict(equation="ab,bc->ac", output_shape=3),
    "MultiHeadAttention": dict(num_heads=2, key_dim=2),
    "GroupQueryAttention": dict(head_dim=2, num_query_heads=2, num_key_value_heads=1),
    "LayerNormalization": {}, "BatchNormalization": {}, "GroupNormalization": dict(groups=1), "PReLU": {},
    "InputLayer": dict(shape=(3,)),
}


@pytest.mark.keras
@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_a_layers_config_lists_keras_keys_and_keras_rebuilds_it(keras, name):
    """Every key of Keras's ``get_config()`` is in fastgru's (unset regularizers and constraints as None: reading
    ``config["kernel_regularizer"]`` is no KeyError), each at Keras's value where fastgru has no other (Keras
    lists MultiHeadAttention's sliding_window from 3.15 on: fastgru writes it only when set), and Keras builds
    the same layer from fastgru's config."""
    theirs = getattr(keras.layers, name)(**CONFIG_CASES[name]).get_config()
    layer = getattr(fg.layers, name)(**CONFIG_CASES[name])
    ours = layer.get_config()
    assert set(theirs) - set(ours) <= {"sliding_window"}
    for key in set(theirs) & set(ours) - {"dtype", "name", "seed"}:
        value = theirs[key]
        if key.endswith("_initializer") and isinstance(value, dict):
            continue  # (Keras serializes initializer objects, fastgru writes their names: same initializers)
        assert _listed(ours[key]) == _listed(value), key
    again = getattr(keras.layers, name).from_config(ours).get_config()
    assert {k: v for k, v in again.items() if k != "name"} == {k: v for k, v in theirs.items() if k != "name"}
    assert type(layer).from_config(ours).get_config() == ours


def test_regularizers_and_constraints_of_an_embedding_survive_from_config():
    """``Embedding.from_config`` (``model_from_json``, ``clone_model``) keeps the weight options a file keeps."""
    layer = fg.layers.Embedding(5, 2, embeddings_regularizer="l2", embeddings_constraint="non_neg",
                                activity_regularizer="l1")
    again = fg.layers.Embedding.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert set(again.weight_regularizers) == set(again.weight_constraints) == {"embeddings"}
    assert again.activity_regularizer is not None


@pytest.mark.keras
def test_a_masked_tensor_given_in_a_list_to_a_nested_model_keeps_its_mask(keras, rng, tmp_path):
    """``decoder([target, encoder(ids)])``: Keras 3's file records the call's ``mask=[None, None]`` (the encoder's
    symbolic output carries no mask), and its Functional call leaves each None input with the mask its tensor
    carries when the model runs: the padding of ``ids`` reaches the decoder's GRU and Attention. Was: no mask
    (the padded rows differed). Predict, and three SGD steps' losses and weights."""
    L = keras.layers
    steps, vocab = 7, 20
    ids_in = keras.Input((steps,), dtype="int32")
    seq, state = L.GRU(5, return_sequences=True, return_state=True)(L.Embedding(vocab, 6, mask_zero=True)(ids_in))
    encoder = keras.Model(ids_in, [seq, state], name="encoder")
    tgt, h0, memory = keras.Input((steps, 3)), keras.Input((5,)), keras.Input((steps, 5))
    dec_seq = L.GRU(5, return_sequences=True)(tgt, initial_state=h0)
    context = L.Attention()([dec_seq, memory])
    summary = L.GRU(4)(memory)  # (the memory's own mask, inside the nested model)
    decoder = keras.Model([tgt, h0, memory], L.Concatenate()([L.GlobalAveragePooling1D()(context), summary]),
                          name="decoder")
    ids, target = keras.Input((steps,), dtype="int32"), keras.Input((steps, 3))
    enc_seq, enc_state = encoder(ids)
    km = keras.Model([ids, target], L.Dense(1)(decoder([target, enc_state, enc_seq])))
    model = _trained_file_loaded(keras, km, tmp_path)
    tokens, y = _padded_tokens(rng, vocab, steps)
    x = [tokens, rng.standard_normal((6, steps, 3)).astype(np.float32)]
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for _ in range(3):
        np.testing.assert_allclose(model.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("forward,backward", [("gru", "gru_no_bias"), ("lstm_no_bias", "lstm"), ("lstm", "gru")])
def test_a_bidirectional_whose_backward_layer_has_other_weights_or_states(keras, rng, tmp_path, forward, backward):
    """``backward_layer`` with another weight count (``use_bias=False`` on one side) or other weights and states (an
    LSTM forward, a GRU backward): loaded (was: "expects 6 weights ... received 5", called damaged HDF5 data),
    predicted with its states, and trained as Keras. (An LSTM and a GRU returning their states: Keras's graph
    counts the forward layer's states twice and cannot run the model; fastgru's has the 2 + 1 it returns.)"""
    L = keras.layers
    with_states = forward[:3] == backward[:3]

    def make(kind, backwards):
        cls = L.LSTM if kind.startswith("lstm") else L.GRU
        return cls(4, return_sequences=True, return_state=with_states, go_backwards=backwards,
                   use_bias=not kind.endswith("no_bias"))

    x_in = keras.Input((6, 3))
    outs = L.Bidirectional(make(forward, False), backward_layer=make(backward, True))(x_in)
    seq, *states = outs if with_states else [outs]
    out = L.Dense(1)(L.Concatenate()([L.GlobalAveragePooling1D()(seq), *states]))
    km = keras.Model(x_in, out)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    km.save(tmp_path / "b.keras")
    model = fg.load_model(tmp_path / "b.keras")
    assert len(model.get_weights()) == len(km.get_weights())
    x = rng.standard_normal((5, 6, 3)).astype(np.float32)
    y = rng.standard_normal((5, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for _ in range(3):
        np.testing.assert_allclose(model.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_a_bidirectional_of_an_lstm_and_a_gru_returns_each_layers_states(rng):
    x_in = fg.Input((6, 3))
    outs = fg.layers.Bidirectional(fg.layers.LSTM(4, return_state=True),
                                   backward_layer=fg.layers.GRU(4, return_state=True, go_backwards=True))(x_in)
    assert len(outs) == 4  # (the merged output, the LSTM's h and c, the GRU's h)
    model = fg.Model(x_in, outs)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    y, h_f, c_f, h_b = model.predict(x)
    bidi = model.layers[1]
    np.testing.assert_allclose(y[:, :4], h_f, rtol=1e-6)
    np.testing.assert_allclose(y[:, 4:], h_b, rtol=1e-6)
    with pytest.raises(ValueError, match="expects 3 initial states"):
        bidi._split_initial_state([h_f, c_f])


@pytest.mark.keras
def test_a_feature_extractor_cut_at_a_nested_sequential(keras, rng, tmp_path):
    """``Model(model.inputs, model.get_layer("encoder").output)`` where the encoder is a Sequential called in the
    model's graph: its ``output`` (and ``input``) are its call's, as Keras's (was: its own graph's, "Graph
    disconnected"); in code too."""
    encoder = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(3, name="g2")], name="encoder")
    inp = keras.Input((6, 3), name="inp")
    keras.Model(inp, keras.layers.Dense(2, name="head")(encoder(inp))).save(tmp_path / "n.keras")
    loaded, theirs = fg.load_model(tmp_path / "n.keras"), keras.models.load_model(tmp_path / "n.keras")
    x = rng.standard_normal((4, 6, 3)).astype(np.float32)
    expected = keras.Model(theirs.inputs, theirs.get_layer("encoder").output).predict(x, verbose=0)
    assert loaded.get_layer("encoder").input is loaded.inputs[0]
    extractor = fg.Model(loaded.inputs, loaded.get_layer("encoder").output)
    np.testing.assert_allclose(extractor.predict(x), expected, rtol=1e-5, atol=1e-6)
    inner = fg.Sequential([fg.Input((6, 3)), fg.layers.GRU(3)])
    own_output = inner.output  # (before any call: its own graph's)
    outer_in = fg.Input((6, 3))
    model = fg.Model(outer_in, fg.layers.Dense(2)(inner(outer_in)))
    assert inner.output is not own_output
    np.testing.assert_array_equal(fg.Model(model.inputs, inner.output).predict(x), inner.predict(x))


@pytest.mark.keras
def test_calling_a_sequential_with_a_mask_as_keras(keras, rng):
    """``model(x, training=False, mask=m)``: the mask reaches the first layer, as Keras's Sequential passes it (was:
    a TypeError on ``mask``); ``mask=None`` is the call without one."""
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, return_sequences=True), keras.layers.GRU(2)])
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4, return_sequences=True), fg.layers.GRU(2)])
    model.set_weights(km.get_weights())
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_allclose(model(x, training=False, mask=mask), km(x, training=False, mask=mask), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(model(x, mask=None), km(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"mask must be a bool array of shape \(3, 5\)"):
        model(x, mask=mask[:, :4])


def test_python_lists_of_floats_compute_in_float32():
    """Nested Python lists are float32 input, as Keras's ``convert_to_tensor`` makes them (NumPy's float64 made the
    model compute and return float64); a float64 array still computes in float64."""
    model = fg.Sequential([fg.Input((2, 3)), fg.layers.GRU(2)])
    rows = [[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]]
    assert model.predict(rows).dtype == model(rows).dtype == model.predict_on_batch(rows).dtype == np.float32
    np.testing.assert_array_equal(model.predict(rows), model.predict(np.asarray(rows, np.float32)))
    assert model.predict(np.asarray(rows)).dtype == np.float64
    inp = fg.Input((3,))
    two = fg.Model([inp, fg.Input((3,))], fg.layers.Dense(1)(inp))
    assert two.predict([[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]]).dtype == np.float32


@pytest.mark.keras
def test_an_untrained_mixed_precision_model_loads_without_an_optimizer_warning(keras, tmp_path):
    """Compiled under mixed_float16 and saved before any step, the file holds only the LossScaleOptimizer's own
    four scalars: nothing to restore, so no "saved state is not restored" warning (the dtype warning stays)."""
    import warnings

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        km = keras.Sequential([keras.Input((4, 3)), keras.layers.GRU(2), keras.layers.Dense(1)])
        km.compile("adam", "mse")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    km.save(tmp_path / "m.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fg.load_model(tmp_path / "m.keras")
    messages = [str(w.message) for w in caught]
    assert any("dtype policy 'mixed_float16'" in m for m in messages)
    assert not any("optimizer" in m for m in messages), messages
    assert model.optimizer.iterations == 0


@pytest.mark.keras
@pytest.mark.parametrize("normalized", [False, True])
def test_a_nested_model_whose_attention_deleted_a_mask_predicts_as_it_trains(keras, rng, tmp_path, normalized):
    """Inside the nested model, ``Add()([h, MultiHeadAttention(h, h)])``: Keras's attention deletes ``h``'s mask, so
    the merge, and the nested model's output, carry none, and the outer pooling averages every step. predict and
    ``model(x)`` hand the outer layers the masks the nested outputs carry, as training did (was: the mask recorded
    before the deletion, in predict only: predict disagreed with evaluate on padded rows)."""
    L = keras.layers
    steps, vocab = 9, 20
    inner_in = keras.Input((steps, 8))
    h = L.GRU(8, return_sequences=True)(inner_in)
    merged = L.Add()([h, L.MultiHeadAttention(2, 4)(h, h)])
    inner = keras.Model(inner_in, L.LayerNormalization()(merged) if normalized else merged)
    ids = keras.Input((steps,), dtype="int32")
    pooled = L.GlobalAveragePooling1D()(inner(L.Embedding(vocab, 8, mask_zero=True)(ids)))
    km = keras.Model(ids, L.Dense(1)(pooled))
    model = _trained_file_loaded(keras, km, tmp_path)
    tokens, y = _padded_tokens(rng, vocab, steps)
    expected = km.predict(tokens, verbose=0)
    np.testing.assert_allclose(model.predict(tokens), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(tokens), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(tokens, y, verbose=0), np.mean((expected - y) ** 2), rtol=1e-5)


@pytest.mark.keras
@pytest.mark.parametrize("between", ["none", "layer_norm"])
def test_a_nested_models_output_after_attention_deleted_its_mask(keras, rng, tmp_path, between):
    """``z = encoder(embedded)``; ``Add()([z, MultiHeadAttention(z, z)])``; pooling. The encoder's symbolic output
    has no mask, so Keras records the pooling's call with ``"mask": null`` and fills it in at run time with the
    mask the tensor then carries: none, as the attention deleted ``z``'s. fastgru gives such a call the run-time
    masks too (was: the recorded ones, pooling over the unpadded steps only). Predict, evaluate, three SGD steps."""
    L = keras.layers
    steps, vocab = 10, 20
    inner_in = keras.Input((steps, 8))
    encoder = keras.Model(inner_in, L.Dense(8)(inner_in))
    ids = keras.Input((steps,), dtype="int32")
    z = encoder(L.Embedding(vocab, 8, mask_zero=True)(ids))
    if between == "layer_norm":
        z = L.LayerNormalization()(z)
    merged = L.Add()([z, L.MultiHeadAttention(2, 4)(z, z)])
    km = keras.Model(ids, L.Dense(1)(L.GlobalAveragePooling1D()(merged)))
    model = _trained_file_loaded(keras, km, tmp_path)
    tokens, y = _padded_tokens(rng, vocab, steps)
    np.testing.assert_allclose(model.predict(tokens), km.predict(tokens, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.evaluate(tokens, y, verbose=0), km.evaluate(tokens, y, verbose=0), rtol=1e-5)
    for _ in range(3):
        np.testing.assert_allclose(model.train_on_batch(tokens, y), km.train_on_batch(tokens, y), rtol=1e-5)
    for ours, theirs in zip(model.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "again.keras")  # (fastgru's file keeps the "mask": null, and so the numbers)
    np.testing.assert_allclose(fg.load_model(tmp_path / "again.keras").predict(tokens), km.predict(tokens, verbose=0),
                               rtol=1e-5, atol=1e-6)
