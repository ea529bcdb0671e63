"""Fixes from the thirteenth parity fuzz round (real-world Keras examples): models with a variable number of
steps train (and hand a softmax's logits to the crossentropy, as Keras), a (B, 1, T) attention mask broadcasts
over the query steps, layers called with keyword tensors load, GlobalAveragePooling1D(data_format=
"channels_first") pools the features."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


def _variable_steps(mod, functional: bool):
    L = mod.layers
    i = mod.Input((None, 6))
    if not functional:
        return mod.Sequential([i, L.GRU(4, return_sequences=True), L.Dense(3, activation="softmax")])
    h, _ = L.GRU(4, return_sequences=True, return_state=True)(i)
    return mod.Model(i, L.Dense(3, activation="softmax")(h))


@pytest.mark.parametrize("functional", [False, True])
def test_variable_steps_train_from_the_logits(functional):
    """With all-zero target rows (padding), the logits' gradient (softmax - labels) differs from the clipped
    probabilities' one: the same as a model with a fixed number of steps, which takes the logits."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (4, 5))]
    y[:, -1] = 0.0
    variable = _variable_steps(fg, functional)
    fixed = fg.Sequential([fg.Input((5, 6)), fg.layers.GRU(4, return_sequences=True),
                           fg.layers.Dense(3, activation="softmax")]) if not functional else None
    if fixed is None:
        i = fg.Input((5, 6))
        h, _ = fg.layers.GRU(4, return_sequences=True, return_state=True)(i)
        fixed = fg.Model(i, fg.layers.Dense(3, activation="softmax")(h))
    fixed.set_weights(variable.get_weights())
    for model in (variable, fixed):
        model.compile(fg.optimizers.SGD(1.0), "categorical_crossentropy")
        model.train_on_batch(x, y)
    for a, b in zip(variable.get_weights(), fixed.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("functional", [False, True])
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_variable_steps_train_as_keras(keras, functional, loss):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5, 6)).astype("float32")
    labels = rng.integers(0, 3, (4, 5))
    y = np.eye(3, dtype="float32")[labels] if loss.startswith("categorical") else labels
    keras.utils.set_random_seed(0)
    km = _variable_steps(keras, functional)
    w = km.get_weights()
    w[-2] = w[-2] * 40  # a saturated softmax: logits and clipped probabilities part ways
    km.set_weights(w)
    ours = fg.from_keras(km)
    km.compile(keras.optimizers.SGD(0.5), loss)
    ours.compile(fg.optimizers.SGD(0.5), loss)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_padding_mask_of_one_query_step_broadcasts_in_multi_head_attention(keras, tmp_path):
    """keras.io's Transformer builds its padding mask as ``ops.cast(mask[:, None, :], "int32")`` (batch, 1, T):
    Keras broadcasts it over the query steps; so does fastgru, in predict and in training."""
    O = keras.ops
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(4, 6)).astype("int32")
    tokens[0, 4:] = 0
    tokens[2, 2:] = 0
    t = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 8)(t)
    pad = O.cast(O.not_equal(t, 0)[:, None, :], "int32")
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x, attention_mask=pad)
    km = keras.Model(t, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(h)))
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(tokens), km.predict(tokens, verbose=0), rtol=1e-5, atol=1e-6)
    y = rng.normal(size=(4, 1)).astype("float32")
    km.compile(keras.optimizers.Adam(0.01), "mse")
    ours.compile(fg.optimizers.Adam(0.01), "mse")
    theirs = km.fit(tokens, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(tokens, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


@pytest.mark.parametrize("cls", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_channels_first_global_pooling_pools_the_last_axis(cls, keepdims):
    layer = getattr(fg.layers, cls)(data_format="channels_first", keepdims=keepdims)
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    reduce = np.mean if cls.startswith("GlobalAverage") else np.max
    np.testing.assert_allclose(layer(x), reduce(x, axis=2, keepdims=keepdims), rtol=1e-6)
    y, cache = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and np.isclose(dx.sum(), y.size)


@pytest.mark.parametrize("keepdims", [False, True])
def test_keras_io_timeseries_transformer_pooling_trains_as_keras(keras, tmp_path, keepdims):
    """keras.io's "Timeseries classification with a Transformer" ends in GlobalAveragePooling1D(
    data_format="channels_first"): the mean over each step's features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6, 5)).astype("float32")
    i = keras.Input((6, 5))
    h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)(i, i) + i
    pooled = keras.layers.GlobalAveragePooling1D(data_format="channels_first", keepdims=keepdims)(h)
    km = keras.Model(i, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(pooled)))
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    y = rng.integers(0, 2, 4)
    km.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours.compile(fg.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    theirs = km.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


@pytest.mark.parametrize("how", ["query_value", "query_value_key", "attention_inputs", "gru_sequences"])
def test_layers_called_with_keyword_tensors(keras, tmp_path, how):
    """keras.io's English-to-Spanish Transformer calls ``mha(query=x, value=x, key=x)``: Keras 3 writes the
    node with no positional arguments; so do ``Attention()(inputs=[q, v])`` and ``GRU(...)(sequences=x)``."""
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    i = keras.Input((5, 8))
    if how.startswith("query"):
        mha = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        o = mha(query=i, value=i, key=i) if how.endswith("key") else mha(query=i, value=i)
    elif how == "attention_inputs":
        o = keras.layers.Attention()(inputs=[i, i])
    else:
        o = keras.layers.GRU(3)(sequences=i)
    km = keras.Model(i, o)
    km.save(tmp_path / "m.keras")
    for model in (fg.load_model(tmp_path / "m.keras"), fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_tf_keras_nested_sequentials_without_an_input_shape(tmp_path):
    """Keras 2's babi_memnn example: Embedding encoders as nested Sequential models with no input shape
    (tf_keras records their output as (None, None, d)); the graph takes each call's own shapes."""
    tf_keras = pytest.importorskip("tf_keras")
    L = tf_keras.layers
    story, question = tf_keras.Input((12,), dtype="int32"), tf_keras.Input((4,), dtype="int32")

    def encoder(dim):
        return tf_keras.Sequential([L.Embedding(30, dim)])

    m, c, q = encoder(16)(story), encoder(4)(story), encoder(16)(question)
    match = L.Activation("softmax")(L.dot([m, q], axes=(2, 2)))
    answer = L.concatenate([L.Permute((2, 1))(L.add([match, c])), q])
    km = tf_keras.Model([story, question], L.Dense(3)(L.LSTM(8)(answer)))
    rng = np.random.default_rng(0)
    xs = [rng.integers(1, 30, (3, 12)), rng.integers(1, 30, (3, 4))]
    km.save(tmp_path / "m.h5")
    for model in (fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(xs), km.predict(xs, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("where", ["initial_state", "attention_mask"])
def test_a_constant_where_a_graph_tensor_goes_is_refused_by_name(keras, tmp_path, where):
    """A constant array as a GRU's initial_state or an attention mask (Keras records it as __numpy__ in the node)
    is refused naming the argument, never dropped (it was: the GRU then ran from zeros)."""
    inp = keras.Input((5, 4), batch_size=1)
    if where == "initial_state":
        out = keras.layers.GRU(4)(inp, initial_state=np.full((1, 4), 0.7, "float32"))
    else:
        causal = np.tril(np.ones((5, 5), "float32"))
        out = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2)(inp, inp, attention_mask=causal)
    km = keras.Model(inp, out)
    km.save(tmp_path / "m.keras")
    for load in (lambda: fg.load_model(tmp_path / "m.keras"), lambda: fg.from_keras(km)):
        with pytest.raises(fg.UnsupportedKerasFeature, match=f"{where}: a constant array"):
            load()


def _two_heads(mod):
    i = mod.Input((6, 3))
    h = mod.layers.GRU(4, return_sequences=True)(i)
    return mod.Model(i, [mod.layers.Dense(1, name="value")(mod.layers.GRU(2)(h)),
                         mod.layers.Dense(2, name="aux")(h)])


def test_an_output_without_a_loss_needs_no_target():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 6, 3)).astype("float32"), rng.normal(size=(10, 1)).astype("float32")
    model = _two_heads(fg)
    model.compile(fg.optimizers.SGD(0.1), loss=["mse", None])
    start = model.get_weights()
    results = []
    for targets in (y, [y, None], {"value": y}):
        model.set_weights(start)
        model.compile(fg.optimizers.SGD(0.1), loss=["mse", None])
        history = model.fit(x, targets, epochs=2, batch_size=4, shuffle=False, verbose=0).history
        results.append((history["loss"], model.evaluate(x, targets, verbose=0)))
    assert results[0] == results[1] == results[2]


def test_an_output_without_a_loss_trains_as_keras(keras):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 6, 3)).astype("float32"), rng.normal(size=(10, 1)).astype("float32")
    km = _two_heads(keras)
    ours = fg.from_keras(km)
    km.compile(keras.optimizers.SGD(0.1), loss=["mse", None])
    ours.compile(fg.optimizers.SGD(0.1), loss=["mse", None])
    theirs = km.fit(x, [y, None], epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, [y, None], epochs=2, batch_size=4, shuffle=False, verbose=0)
                               .history["loss"], theirs, rtol=1e-5)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("inner", ["GRU", "LSTM", "SimpleRNN", "Conv1D"])
def test_time_distributed_recurrent_and_conv_layers(inner):
    """TimeDistributed(GRU/LSTM/SimpleRNN/Conv1D) (a hierarchical RNN) runs the inner layer on each step's
    sequence: the same as calling it step by step; gradients flow to the shared weights."""
    layer = getattr(fg.layers, inner)(3, 2) if inner == "Conv1D" else getattr(fg.layers, inner)(3)
    td = fg.layers.TimeDistributed(layer)
    x = np.random.default_rng(0).normal(size=(2, 4, 6, 5)).astype("float32")
    y = td(x)
    np.testing.assert_allclose(y, np.stack([layer(x[:, t]) for t in range(4)], axis=1), rtol=1e-6, atol=1e-7)
    out, cache = td.forward(x)
    dx, grads = td.backward(np.ones_like(out), cache)
    assert dx.shape == x.shape and len(grads) == len(layer.weights) and all(np.abs(g).sum() > 0 for g in grads)


@pytest.mark.parametrize("inner", ["GRU", "LSTM", "SimpleRNN", "Conv1D"])
def test_time_distributed_recurrent_layers_against_keras(keras, tmp_path, inner):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 6, 2)).astype("float32")
    make = {"GRU": lambda: keras.layers.GRU(5), "LSTM": lambda: keras.layers.LSTM(5),
            "SimpleRNN": lambda: keras.layers.SimpleRNN(5), "Conv1D": lambda: keras.layers.Conv1D(3, 2)}[inner]
    i = keras.Input((4, 6, 2))
    h = keras.layers.TimeDistributed(make())(i)
    if len(h.shape) == 4:
        h = keras.layers.Reshape((4, -1))(h)
    km = keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(3)(h)))
    km.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in km.get_weights()])
    km.save(tmp_path / "m.keras")
    km.save(tmp_path / "m.h5")
    expected = km.predict(x, verbose=0)
    for model in (fg.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    ours = fg.load_model(tmp_path / "m.keras")
    y = rng.normal(size=(3, 1)).astype("float32")
    km.compile(keras.optimizers.SGD(0.05), "mse")
    ours.compile(fg.optimizers.SGD(0.05), "mse")
    theirs = km.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    ours.save(tmp_path / "ours.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ours.keras").predict(x, verbose=0), ours.predict(x),
                               rtol=1e-5, atol=1e-6)
