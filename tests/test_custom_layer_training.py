"""Training through Keras-style custom layers (``fastgru.layers.custom_training``): the call is traced into a graph
of the ops it applies to its input, and the model trains as Keras trains the same class — weights, masks, layers
held, list inputs, regularizers, saved files — checked step for step against Keras and against finite differences;
a call whose gradient the trace cannot follow is refused by name, with nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
from custom_layer_checks import assert_fit_refused, gradient_in_place

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature


def _attention(keras):
    """Additive attention over time, with a mask and a scalar weight, written against ``keras``."""

    class Attention(keras.layers.Layer):
        def __init__(self, units=4, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="w")
            self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
            self.u = self.add_weight(shape=(self.units, 1), initializer="glorot_uniform", name="u")
            self.temperature = self.add_weight(shape=(), initializer="ones", name="temperature")

        def call(self, inputs, mask=None):
            e = keras.ops.tanh(keras.ops.matmul(inputs, self.w) + self.b)
            scores = keras.ops.squeeze(keras.ops.matmul(e, self.u), -1) / self.temperature
            if mask is not None:
                scores = keras.ops.where(mask, scores, -1e9)
            weights = keras.ops.softmax(scores, axis=-1)
            return keras.ops.sum(inputs * keras.ops.expand_dims(weights, -1), axis=1)

        def compute_mask(self, inputs, mask=None):
            return None

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return Attention


def _held(keras):
    """A layer holding Dense (regularized, constrained) and LayerNormalization with a regularized weight of its
    own, and one taking two inputs, written against ``keras``."""

    class Block(keras.layers.Layer):
        def __init__(self, units=6, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(units, activation="relu", kernel_regularizer=keras.regularizers.L2(0.05),
                                            kernel_constraint=keras.constraints.MaxNorm(0.5),
                                            activity_regularizer=keras.regularizers.L1(0.01))
            self.norm = keras.layers.LayerNormalization()

        def build(self, input_shape):
            self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma",
                                         regularizer=keras.regularizers.L2(0.01))

        def call(self, inputs, training=False):
            return self.norm(inputs + self.gamma * self.dense(inputs))

    class Gate(keras.layers.Layer):
        def build(self, input_shape):
            self.k = self.add_weight(shape=(input_shape[0][-1], input_shape[1][-1]), name="k")

        def call(self, inputs):
            a, b = inputs
            return keras.ops.concatenate([keras.ops.matmul(a, self.k) * b, a], axis=-1)

    return Block, Gate


def _masked_model(keras, attention):
    tokens = keras.Input((7,), dtype="int32")
    h = keras.layers.Embedding(20, 5, mask_zero=True)(tokens)
    h = keras.layers.GRU(6, return_sequences=True)(h)
    return keras.Model(tokens, keras.layers.Dense(1)(attention(4)(h)))


def _two_input_model(keras, block, gate):
    first, second = keras.Input((5, 6)), keras.Input((5, 3))
    h = keras.layers.GRU(6, return_sequences=True)(block(6)(first))
    h = keras.layers.GlobalAveragePooling1D()(gate()([h, second]))
    return keras.Model([first, second], keras.layers.Dense(2)(h))


def _fresh_names(keras) -> None:
    """Automatic names start afresh in both (the weights' paths are compared)."""
    keras.backend.clear_session()
    fg.backend.clear_session()


def _fit_both(theirs, ours, x, y, optimizer):
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer, "mse")
    ours.compile(optimizer, "mse")
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    their_loss = theirs.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    for a, b, w in zip(ours.get_weights(), theirs.get_weights(), theirs.weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6, err_msg=w.path)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_masked_attention_layer_trains_as_keras_s(keras, rng, optimizer):
    _fresh_names(keras)
    tokens = rng.integers(1, 20, (24, 7)).astype(np.int32)
    tokens[:, 5:] = 0  # (padding: the mask reaches the layer's call)
    y = rng.random((24, 1)).astype(np.float32)
    _fit_both(_masked_model(keras, _attention(keras)), _masked_model(fg, _attention(fg)), tokens, y, optimizer)


def test_layers_held_list_inputs_and_regularizers_train_as_keras_s(keras, rng):
    _fresh_names(keras)
    theirs, ours = _two_input_model(keras, *_held(keras)), _two_input_model(fg, *_held(fg))
    x = [rng.random((16, 5, 6)).astype(np.float32), rng.random((16, 5, 3)).astype(np.float32)]
    _fit_both(theirs, ours, x, rng.random((16, 2)).astype(np.float32), "adam")
    _fresh_names(keras)
    theirs, ours = ([k.Input((5, 6)), _held(k)[0](6), k.layers.GRU(3), k.layers.Dense(1)] for k in (keras, fg))
    _fit_both(keras.Sequential(theirs), fg.Sequential(ours), x[0], rng.random((16, 1)).astype(np.float32), "sgd")


def _encoder(keras):
    class Encoder(keras.layers.Layer):  # (a GRU and a BatchNormalization held; two outputs)
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.gru = keras.layers.GRU(4, return_sequences=True)
            self.norm = keras.layers.BatchNormalization()

        def call(self, inputs, training=False):
            h = self.gru(inputs)
            return [self.norm(h, training=training), keras.ops.mean(h, axis=1)]

    inputs = keras.Input((6, 3))
    steps, summary = Encoder()(inputs)
    h = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling1D()(steps), summary])
    return keras.Model(inputs, keras.layers.Dense(1)(h))


def test_a_layer_holding_a_gru_with_two_outputs_trains_as_keras_s(keras, rng):
    _fresh_names(keras)
    x, y = rng.random((16, 6, 3)).astype(np.float32), rng.random((16, 1)).astype(np.float32)
    _fit_both(_encoder(keras), _encoder(fg), x, y, "adam")  # (the moving statistics too)


def test_a_keras_file_with_a_custom_layer_trains_as_in_keras(keras, tmp_path, rng):
    theirs = _masked_model(keras, keras.saving.register_keras_serializable(package="t")(_attention(keras)))
    theirs.compile("adam", "mse")
    theirs.save(tmp_path / "attention.keras")
    ours = fg.load_model(tmp_path / "attention.keras", custom_objects={"Attention": _attention(fg)})
    tokens = rng.integers(0, 20, (16, 7)).astype(np.int32)
    y = rng.random((16, 1)).astype(np.float32)
    their_loss = theirs.fit(tokens, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(tokens, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    np.testing.assert_allclose(ours.predict(tokens), theirs.predict(tokens, verbose=0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("which", ["attention with a mask", "values from weights alone"])
def test_the_traced_gradient_matches_finite_differences_in_float64(rng, which):
    if which == "attention with a mask":
        layer, x = _attention(fg)(3, dtype="float64"), rng.standard_normal((4, 5, 2))
        mask = rng.random((4, 5)) < 0.7
        mask[:, 0] = True
    else:
        layer, x, mask = _from_weights(fg)[2](dtype="float64"), rng.standard_normal((3, 4, 5)), None
    layer.build((None,) + x.shape[1:])
    for w in layer.weights:
        w.assign(rng.standard_normal(w.shape))
    dy = rng.standard_normal(layer(x, mask=mask).shape)
    y, cache = layer.forward(x, mask=mask)
    np.testing.assert_allclose(y, layer(x, mask=mask).numpy(), rtol=1e-12)  # (the trace computes the call's values)
    dx, grads = layer.backward(dy, cache)

    def loss() -> float:
        return float(np.sum(layer.call(x, mask=mask) * dy))

    for w, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g.reshape(-1), gradient_in_place(loss, w), rtol=1e-6, atol=1e-8, err_msg=w.name)
    np.testing.assert_allclose(dx.reshape(-1), gradient_in_place(loss, x), rtol=1e-6, atol=1e-8)


def _from_weights(keras):
    """Layers computing from their weights alone before meeting the input (a WeightExpression in the trace): a
    token-and-position embedding (an Embedding called on ``arange``), a lookup into a table of its own
    (``ops.take``: slices, as TensorFlow's IndexedSlices), and a scale, a weight-normalised kernel, a softmax
    mixture, slices and a transpose of its weights."""

    class TokenAndPosition(keras.layers.Layer):
        def __init__(self, steps=6, vocab=20, dim=5, **kwargs):
            super().__init__(**kwargs)
            self.steps = steps
            self.tokens = keras.layers.Embedding(vocab, dim)
            self.positions = keras.layers.Embedding(steps, dim)

        def call(self, inputs):
            return self.tokens(inputs) + self.positions(keras.ops.arange(0, self.steps, 1))

    class Lookup(keras.layers.Layer):
        def build(self, input_shape):
            self.table = self.add_weight(shape=(20, 5), initializer="random_normal", name="table")

        def call(self, inputs):
            return keras.ops.take(self.table, keras.ops.cast(inputs, "int32"), axis=0)

    class Mixed(keras.layers.Layer):
        def build(self, input_shape):
            d = input_shape[-1]
            self.log_scale = self.add_weight(shape=(d,), initializer="random_normal", name="log_scale")
            self.v = self.add_weight(shape=(d, 4), initializer="glorot_uniform", name="v")
            self.g = self.add_weight(shape=(4,), initializer="ones", name="g")
            self.mix = self.add_weight(shape=(4, 3), initializer="random_normal", name="mix")
            self.table = self.add_weight(shape=(10, 3), initializer="random_normal", name="table")

        def call(self, inputs):
            ops = keras.ops
            h = inputs * ops.exp(self.log_scale)
            kernel = self.v / ops.sqrt(ops.sum(ops.square(self.v), axis=0, keepdims=True))
            h = ops.matmul(ops.tanh(ops.matmul(h, kernel * self.g)), ops.softmax(self.mix, axis=0))
            steps = ops.shape(inputs)[1]
            h = h + self.table[:steps] + ops.take(self.table, ops.arange(steps), axis=0) * 0.5
            return h + ops.expand_dims(ops.transpose(self.mix)[:, 0], 0) * (self.g[0] + 1.0)

    return TokenAndPosition, Lookup, Mixed


def _weights_model(keras, lookup_first: bool):
    embedding, lookup, mixed = _from_weights(keras)
    tokens = keras.Input((6,), dtype="int32")
    h = mixed()(lookup()(tokens) if lookup_first else embedding()(tokens))
    h = keras.layers.Bidirectional(keras.layers.GRU(4))(h)
    return keras.Model(tokens, keras.layers.Dense(1)(h))


@pytest.mark.parametrize("lookup_first", [False, True])
def test_values_computed_from_weights_alone_train_as_keras_s(keras, rng, lookup_first):
    _fresh_names(keras)
    tokens = rng.integers(0, 20, (16, 6)).astype(np.int32)
    tokens[:4, :3] = 7  # (a token looked up several times in a batch: Adam squares its slices one by one, as Keras)
    y = rng.random((16, 1)).astype(np.float32)
    _fit_both(_weights_model(keras, lookup_first), _weights_model(fg, lookup_first), tokens, y, "adam")


class _SummedByNumPy(fg.layers.Layer):  # (NumPy's reduction of a weight: no gradient fastgru can follow)
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * np.sum(self.w)


class _SplitWeight(fg.layers.Layer):  # (an op on a weight alone with several outputs: no gradient here)
    def build(self, input_shape):
        self.w = self.add_weight(shape=(2 * input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * fg.ops.split(self.w, 2)[0]


class _NumPyCall(fg.layers.Layer):  # (no weights; its call runs NumPy on its input: not traced)
    def call(self, inputs):
        return np.asarray(inputs)[:, ::-1]


@pytest.mark.parametrize("layer_class, what", [(_SummedByNumPy, "NumPy's add.reduce of a weight"),
                                               (_SplitWeight, "keras.ops split of a weight")])
def test_a_call_the_trace_cannot_differentiate_is_refused_by_name(rng, layer_class, what):
    assert_fit_refused(layer_class(name="custom"), f"{what}.*cannot differentiate", rng)


def test_an_untraceable_layer_without_weights_trains_at_the_start_only(rng):
    x, y = rng.standard_normal((8, 6, 3)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)
    front = fg.Sequential([fg.Input((6, 3)), _NumPyCall(), fg.layers.GRU(3)])
    front.compile("sgd", "mse")
    assert np.isfinite(front.fit(x, y, epochs=1, verbose=0).history["loss"][0])
    inside = fg.Sequential([fg.Input((6, 3)), fg.layers.Dense(3), _NumPyCall(name="flip"), fg.layers.GRU(3)])
    inside.compile("sgd", "mse")
    with pytest.raises(UnsupportedKerasFeature, match="custom layer 'flip'.*could not be traced"):
        inside.fit(x, y, epochs=1, verbose=0)


def _found_by_fuzzing(keras):
    """Patterns of fuzz round 57: a Sequential held (the Keras tutorial's transformer feed-forward net), activations
    and ``.value`` of weights, numbers given to ops, a value from weights used twice, a lookup with repeated
    constant ids (Adam squares each slice), a mask read unguarded and two outputs returned as a tuple."""
    ops = keras.ops

    class FeedForward(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.ffn = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(5)])
            self.norm = keras.layers.LayerNormalization(epsilon=1e-6)
            self.supports_masking = True  # (the mask passes on to MaskedPool)

        def call(self, inputs):
            return self.norm(inputs + self.ffn(inputs))

    class Positions(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.positions = keras.layers.Embedding(6, 5)
            self.supports_masking = True

        def build(self, input_shape):
            self.table = self.add_weight(shape=(4, 5), initializer="random_normal", name="table")
            self.gate = self.add_weight(shape=(5,), initializer="zeros", name="gate")

        def call(self, inputs):
            p = self.positions(ops.arange(0, 6, 1))
            p = p - ops.mean(p, axis=0)
            scale = keras.activations.sigmoid(self.gate.value) / ops.sqrt(4.0)
            rows = ops.take(self.table, [0, 1, 1, 2, 2, 3], axis=0)
            return keras.activations.gelu(inputs) * scale + p + rows

    class MaskedPool(keras.layers.Layer):
        def call(self, inputs, mask=None):
            m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            return ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0), ops.max(inputs, axis=1)

        def compute_mask(self, inputs, mask=None):
            return None

    tokens = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(20, 5, mask_zero=True)(tokens)
    h = FeedForward()(Positions()(h))
    mean, top = MaskedPool()(h)
    return keras.Model(tokens, keras.layers.Dense(1)(keras.layers.Concatenate()([mean, top])))


def test_patterns_found_by_fuzzing_train_as_keras_s(keras, tmp_path, rng):
    _fresh_names(keras)
    tokens = rng.integers(1, 20, (16, 6)).astype(np.int32)
    tokens[:, 4:] = 0
    theirs, ours = _found_by_fuzzing(keras), _found_by_fuzzing(fg)
    _fit_both(theirs, ours, tokens, rng.random((16, 1)).astype(np.float32), "adam")
    ours.save(tmp_path / "fuzzed.keras")  # (the Sequential's weights below ffn/layers/dense..., as Keras keeps them)
    classes = {type(layer).__name__: type(layer) for layer in theirs.layers}
    again = keras.models.load_model(tmp_path / "fuzzed.keras", custom_objects=classes)
    np.testing.assert_allclose(again.predict(tokens, verbose=0), ours.predict(tokens), rtol=1e-5, atol=1e-6)


def _cls_token(keras):
    ops = keras.ops

    class ClassToken(keras.layers.Layer):  # (a weight broadcast to the batch, joined to the sequence in front)
        def build(self, input_shape):
            self.token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="random_normal", name="token")

        def call(self, inputs):
            batch, features = ops.shape(inputs)[0], ops.shape(inputs)[-1]
            return ops.concatenate([ops.broadcast_to(self.token, (batch, 1, features)), inputs,
                                    ops.tile(self.token, [batch, 1, 1]) * 2.0], axis=1)

    inputs = keras.Input((5, 4))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(3)(ClassToken()(inputs))))


def test_a_class_token_trains_as_keras_s(keras, rng):
    _fresh_names(keras)
    x, y = rng.random((10, 5, 4)).astype(np.float32), rng.random((10, 1)).astype(np.float32)
    _fit_both(_cls_token(keras), _cls_token(fg), x, y, "adam")  # (batches of 8 and 2: one trace each)


def _einsums(keras):
    ops = keras.ops

    class Bilinear(keras.layers.Layer):  # (ops.einsum with a weight, then of two tensors)
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 3), name="w")

        def call(self, inputs):
            h = ops.einsum("btd,dk->btk", inputs, self.w)
            return ops.einsum("btk,btk->bt", h, h)

    inputs = keras.Input((5, 4))
    return keras.Model(inputs, keras.layers.Dense(1)(ops.einsum("bt->bt", Bilinear()(inputs))))


def test_einsums_train_and_save_as_keras_s(keras, tmp_path, rng):
    _fresh_names(keras)
    x, y = rng.random((10, 5, 4)).astype(np.float32), rng.random((10, 1)).astype(np.float32)
    theirs, ours = _einsums(keras), _einsums(fg)
    _fit_both(theirs, ours, x, y, "adam")
    ours.save(tmp_path / "einsum.keras")  # (the graph's Einsum op as Keras records it)
    again = keras.models.load_model(tmp_path / "einsum.keras", custom_objects={"Bilinear": type(theirs.layers[1])})
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-6)


def _round_58(keras):
    """Fuzz round 58: layers held in a dict and a list (saved below ``heads/dense``...), an ``__init__`` argument
    and no ``get_config`` (Keras's auto-config), a learned initial state of a held GRU."""
    ops = keras.ops

    class Heads(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.heads = {"b": keras.layers.Dense(units), "a": keras.layers.Dense(units)}
            self.stack = [keras.layers.Dense(units), keras.layers.Dense(units)]
            self.gru = keras.layers.GRU(units, return_sequences=True)

        def build(self, input_shape):
            self.h0 = self.add_weight(shape=(1, self.units), initializer="random_normal", name="h0")

        def call(self, inputs):
            h = self.heads["a"](inputs) + self.heads["b"](inputs)
            for dense in self.stack:
                h = dense(h)
            start = ops.tile(self.h0, (ops.shape(inputs)[0], 1))
            return self.gru(h, initial_state=[start])

    inputs = keras.Input((5, 3))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(2)(Heads(3)(inputs)))), Heads


def test_layers_in_dicts_auto_configs_and_learned_states_train_and_save_as_keras_s(keras, tmp_path, rng):
    _fresh_names(keras)
    (theirs, their_class), (ours, our_class) = _round_58(keras), _round_58(fg)
    x, y = rng.random((10, 5, 3)).astype(np.float32), rng.random((10, 1)).astype(np.float32)
    _fit_both(theirs, ours, x, y, "adam")
    assert ours.layers[1].get_config()["units"] == 3  # (the argument __init__ was given, as Keras records it)
    ours.save(tmp_path / "ours.keras")
    again = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"Heads": their_class})
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-6)
    theirs.save(tmp_path / "theirs.keras")
    loaded = fg.load_model(tmp_path / "theirs.keras", custom_objects={"Heads": our_class})
    np.testing.assert_allclose(loaded.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _weight_reductions(keras):
    ops = keras.ops

    class WeightNormalised(keras.layers.Layer):  # (norms, maxima, sums, sorts of weights alone: the graph ops')
        def build(self, input_shape):
            self.v = self.add_weight(shape=(input_shape[-1], 4), name="v")
            self.g = self.add_weight(shape=(4,), initializer="ones", name="g")

        def call(self, inputs):
            kernel = self.v / ops.norm(self.v, axis=0, keepdims=True) * self.g
            shift = ops.logsumexp(self.v, axis=0) + ops.max(self.v, axis=0) + ops.var(self.v) + ops.norm(self.v) * 0.1
            shift = shift + ops.cumsum(self.v, axis=0)[-1] + ops.sort(self.g) + ops.prod(self.g * 0.5 + 1.0)
            return ops.matmul(inputs, kernel) + shift

    inputs = keras.Input((5, 3))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(2)(WeightNormalised()(inputs))))


def test_reductions_of_weights_alone_train_as_keras_s(keras, rng):
    _fresh_names(keras)
    x, y = rng.random((10, 5, 3)).astype(np.float32), rng.random((10, 1)).astype(np.float32)
    _fit_both(_weight_reductions(keras), _weight_reductions(fg), x, y, "sgd")


@pytest.mark.parametrize("options", [{"max_value": 6.0}, {"threshold": 0.3}, {"negative_slope": 0.2},
                                     {"negative_slope": 0.1, "max_value": 0.8, "threshold": -0.2},
                                     {"negative_slope": 0.3, "max_value": 6}])
def test_relu_with_options_computes_and_trains_as_keras_s(keras, rng, options):
    x = np.linspace(-8, 9, 35, dtype=np.float32)
    np.testing.assert_allclose(fg.activations.relu(x, **options), keras.activations.relu(x, **options), rtol=1e-6)

    def clipped(k):
        class Clipped(k.layers.Layer):
            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], 4), initializer="glorot_uniform", name="w")

            def call(self, inputs):
                return k.activations.relu(k.ops.matmul(inputs, self.w) * 3.0, **options)

        return k.Sequential([k.Input((5, 3)), Clipped(), k.layers.GRU(2)])

    _fresh_names(keras)
    x, y = rng.standard_normal((16, 5, 3)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    _fit_both(clipped(keras), clipped(fg), x, y, "adam")


def _per_step(keras):
    class Gated(keras.layers.Layer):  # (on each step's (B, 4) slice, with its (B,) mask)
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 3), initializer="glorot_uniform", name="w")
            self.g = self.add_weight(shape=(3,), initializer="ones", name="g")

        def call(self, inputs, mask=None):
            h = keras.ops.tanh(keras.ops.matmul(inputs, self.w)) * keras.ops.sigmoid(self.g)
            if mask is not None:
                h = h * keras.ops.expand_dims(keras.ops.cast(mask, h.dtype), -1)
            return h

        def compute_output_shape(self, input_shape):  # (Keras's TimeDistributed asks for it)
            return tuple(input_shape[:-1]) + (3,)

    return Gated


def _distributed_model(keras, gated):
    tokens = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(12, 4, mask_zero=True)(tokens)
    h = keras.layers.TimeDistributed(gated(), name="per_step")(h)
    return keras.Model(tokens, keras.layers.Dense(1)(keras.layers.GRU(5)(h)))


def test_a_custom_layer_in_time_distributed_runs_and_trains_as_keras_s(keras, tmp_path, rng):
    gated = keras.saving.register_keras_serializable(package="td")(_per_step(keras))
    theirs = _distributed_model(keras, gated)
    theirs.compile("adam", "mse")
    theirs.save(tmp_path / "per_step.keras")
    ours = fg.load_model(tmp_path / "per_step.keras", custom_objects={"Gated": _per_step(fg)})
    tokens = rng.integers(1, 12, (16, 6)).astype(np.int32)
    tokens[:5, 4:] = 0
    y = rng.random((16, 1)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(tokens), theirs.predict(tokens, verbose=0), rtol=1e-5, atol=1e-6)
    their_loss = theirs.fit(tokens, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(tokens, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)
    ours.save(tmp_path / "ours.keras")  # (and back into Keras, given its class)
    again = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"Gated": gated})
    np.testing.assert_allclose(again.predict(tokens, verbose=0), ours.predict(tokens), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_custom_layer_in_time_distributed_in_a_sequential_file(keras, tmp_path, rng, suffix):
    gated = keras.saving.register_keras_serializable(package="td")(_per_step(keras))
    theirs = keras.Sequential([keras.Input((6, 4)), keras.layers.TimeDistributed(gated()), keras.layers.GRU(5),
                               keras.layers.Dense(1)])
    theirs.compile(keras.optimizers.SGD(0.1), "mse")
    theirs.save(tmp_path / f"m{suffix}")
    ours = fg.load_model(tmp_path / f"m{suffix}", custom_objects={"Gated": _per_step(fg)})
    x, y = rng.standard_normal((16, 6, 4)).astype(np.float32), rng.random((16, 1)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    their_loss = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"],
                               their_loss, rtol=2e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def _stateful(keras):
    class Counted(keras.layers.Layer):  # (a step counter and a decayed scale, updated in the call at every step)
        def __init__(self, alpha=1.0, **kwargs):
            super().__init__(**kwargs)
            self.alpha = alpha

        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")
            self.decay = self.add_weight(shape=(), initializer="ones", trainable=False, name="decay")
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, inputs, training=None):
            if training:
                self.count.assign_add(1.0)
                self.decay.assign(self.decay * 0.9)
            return inputs * self.w * self.decay * self.alpha

    return Counted


def test_assignments_in_a_traced_call_run_at_every_step_and_compile_retraces(keras, rng):
    x, y = rng.standard_normal((16, 3)).astype(np.float32), rng.standard_normal((16, 3)).astype(np.float32)
    results = []
    for k in (keras, fg):
        layer = _stateful(k)()
        inputs = k.Input((3,))
        model = k.Model(inputs, layer(inputs))
        model.compile(k.optimizers.SGD(0.05), "mse")
        losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
        losses += model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
        layer.alpha = 2.0  # (read again once compile has rebuilt the train function)
        model.compile(k.optimizers.SGD(0.05), "mse")
        losses.append(float(model.train_on_batch(x, y)))
        results.append((losses, [float(np.asarray(layer.count)), float(np.asarray(layer.decay))], model.get_weights()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)
    assert results[1][1][0] == 8.0
    for a, b in zip(results[1][2], results[0][2]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


class _ReadThenCount(fg.layers.Layer):
    def build(self, input_shape):
        self.count = self.add_weight(shape=(), initializer="ones", trainable=False, name="count")
        self.w = self.add_weight(shape=(), initializer="ones", name="w")

    def call(self, inputs):
        y = inputs * self.count * self.w
        self.count.assign_add(1.0)
        return y


class _AssignsFromInput(fg.layers.Layer):
    def build(self, input_shape):
        self.last = self.add_weight(shape=(), initializer="zeros", trainable=False, name="last")
        self.w = self.add_weight(shape=(), initializer="ones", name="w")

    def call(self, inputs):
        self.last.assign(fg.ops.mean(inputs))  # (the batch's mean: a value from the input)
        return inputs * self.w


@pytest.mark.parametrize("layer_class, what", [(_ReadThenCount, "assignment to weight 'count' after reading it"),
                                               (_AssignsFromInput, "assignment to weight 'last' of a value from")])
def test_an_assignment_the_trace_cannot_make_is_refused_by_name(rng, layer_class, what):
    assert_fit_refused(layer_class(name="custom"), what, rng)


def _tempered(keras):
    class Tempered(keras.layers.Layer):  # (called with options in the graph: temperature=0.25)
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 4), initializer="glorot_uniform", name="w")

        def call(self, inputs, temperature=1.0, shift=0.0):
            return keras.ops.softmax(keras.ops.matmul(inputs, self.w) / temperature + shift, axis=-1)

    return Tempered


def test_a_custom_layer_s_call_options_load_train_and_save_as_keras_s(keras, tmp_path, rng):
    tempered = keras.saving.register_keras_serializable(package="opt")(_tempered(keras))
    inputs = keras.Input((5,))
    theirs = keras.Model(inputs, tempered()(inputs, temperature=0.25))
    theirs.compile("adam", "categorical_crossentropy")  # (from its softmax's logits, as Keras's tagged output)
    theirs.save(tmp_path / "tempered.keras")
    ours = fg.load_model(tmp_path / "tempered.keras", custom_objects={"Tempered": _tempered(fg)})
    x, y = rng.standard_normal((16, 5)).astype(np.float32), np.eye(4, dtype=np.float32)[rng.integers(0, 4, 16)]
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-7)
    their_loss = theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    our_loss = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(our_loss, their_loss, rtol=2e-5)
    ours.save(tmp_path / "ours.keras")
    again = keras.models.load_model(tmp_path / "ours.keras", custom_objects={"Tempered": tempered})
    np.testing.assert_allclose(again.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-7)
    built = fg.Input((5,))  # (built in fastgru, options by keyword or by position, as the call binds them)
    by_name = fg.Model(built, _tempered(fg)()(built, temperature=0.5, shift=1.0))
    by_position = fg.Model(built, by_name.layers[-1](built, 0.5, 1.0))
    np.testing.assert_allclose(by_position.predict(x), by_name.predict(x), rtol=1e-6)
    with pytest.raises(ValueError, match="was built for input shape"):  # (a tensor as the temperature: a list)
        by_name.layers[-1](built, temperature=built)
