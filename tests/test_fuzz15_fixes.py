"""Fixes from the fifteenth Keras-parity fuzz round: frozen layers whose backward returns gradients anyway
(training crashed), layers shared between inputs of different lengths, and others (each test says which)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import (
    GRU,
    Conv1D,
    Conv1DTranspose,
    Dense,
    GroupNormalization,
    Input,
    LayerNormalization,
    RMSNormalization,
)


@pytest.mark.parametrize("frozen", [lambda: Conv1D(6, 3, padding="same"), lambda: Conv1DTranspose(6, 1),
                                    lambda: LayerNormalization(), lambda: GroupNormalization(2),
                                    lambda: RMSNormalization()])
def test_a_frozen_layer_in_a_sequential_trains_the_others(rng, frozen):
    layer = frozen()
    layer.trainable = False
    model = fg.Sequential([Input((10, 4)), layer, GRU(8), Dense(3, activation="softmax")])
    model.compile(fg.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    before = [w.copy() for w in layer.get_weights()]
    others = [w.copy() for w in model.layers[1].get_weights()]
    model.fit(rng.normal(size=(16, 10, 4)).astype(np.float32), rng.integers(0, 3, 16), epochs=1, verbose=0)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a, b) for a, b in zip(others, model.layers[1].get_weights()))


@pytest.mark.keras
def test_frozen_conv_and_nested_encoder_train_as_keras(keras, rng, tmp_path):
    L = keras.layers
    x, y = rng.normal(size=(32, 10, 4)).astype(np.float32), rng.integers(0, 3, size=(32,))
    for direct in (False, True):
        if direct:
            conv = L.Conv1D(6, 3, padding="same")
            conv.trainable = False
            km = keras.Sequential([keras.Input((10, 4)), conv, L.LayerNormalization(), L.GRU(8),
                                   L.Dense(3, activation="softmax")])
        else:
            encoder = keras.Sequential([keras.Input((10, 4)), L.Conv1D(6, 3, padding="same"), L.GRU(8)])
            encoder.trainable = False
            km = keras.Sequential([keras.Input((10, 4)), encoder, L.Dense(3, activation="softmax")])
        km.compile("sgd", "sparse_categorical_crossentropy")
        km.save(tmp_path / "m.keras")
        ours = fg.load_model(tmp_path / "m.keras")
        theirs = km.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"],
                                   theirs, rtol=1e-5)


def test_layers_shared_between_inputs_of_different_lengths(rng):
    a, b = fg.Input((10, 4)), fg.Input((7, 4))
    for shared in (LayerNormalization(), GroupNormalization(2), RMSNormalization(), fg.layers.BatchNormalization(),
                   fg.layers.UnitNormalization(), fg.layers.Normalization(mean=0.5, variance=2.0)):
        gru = GRU(3)
        model = fg.Model([a, b], fg.layers.Concatenate()([gru(shared(a)), gru(shared(b))]))
        xa, xb = rng.normal(size=(2, 10, 4)).astype(np.float32), rng.normal(size=(2, 7, 4)).astype(np.float32)
        out = model.predict([xa, xb])
        np.testing.assert_allclose(out[:, 3:], gru(shared(xb)), rtol=1e-6, atol=1e-7)
    tokens_a, tokens_b = fg.Input((5,)), fg.Input((4,))
    embedding = fg.layers.Embedding(30, 6)
    model = fg.Model([tokens_a, tokens_b], Dense(1)(fg.layers.Concatenate()([GRU(4)(embedding(tokens_a)),
                                                                            GRU(4)(embedding(tokens_b))])))
    model.compile("adam", "mse")
    ids = [rng.integers(0, 30, (6, 5)), rng.integers(0, 30, (6, 4))]
    assert np.isfinite(model.fit(ids, rng.normal(size=(6, 1)), epochs=2, verbose=0).history["loss"]).all()
    layer = LayerNormalization(axis=[1, 2])  # (its weights span the steps: their number is fixed)
    fg.Sequential([Input((10, 4)), layer])
    with pytest.raises(ValueError, match=r"expects input shape \(None, 10, 4\), received shape \(2, 9, 4\)"):
        layer.call(np.zeros((2, 9, 4), np.float32))


@pytest.mark.keras
def test_keras_shared_layers_of_different_lengths(keras, rng, tmp_path):
    L = keras.layers
    a, b = keras.Input((5,), dtype="int32"), keras.Input((4,), dtype="int32")
    embedding, gru = L.Embedding(30, 6, mask_zero=True), L.GRU(4)
    km = keras.Model([a, b], L.Dense(1)(L.Concatenate()([gru(embedding(a)), gru(embedding(b))])))
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    x = [rng.integers(0, 30, (6, 5)), rng.integers(0, 30, (6, 4))]
    y = rng.normal(size=(6, 1)).astype(np.float32)
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = km.fit(x, y, epochs=2, batch_size=3, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=3, shuffle=False, verbose=0).history["loss"], theirs,
                               rtol=1e-5)
    a, b = keras.Input((10, 4)), keras.Input((7, 4))
    for layer in (L.LayerNormalization(), L.BatchNormalization(), L.UnitNormalization(), L.GroupNormalization(2)):
        g = L.GRU(3)
        km = keras.Model([a, b], L.Dot(axes=1)([g(layer(a)), g(layer(b))]))
        km.save(tmp_path / "n.keras")
        x = [rng.normal(size=(3, 10, 4)).astype(np.float32), rng.normal(size=(3, 7, 4)).astype(np.float32)]
        np.testing.assert_allclose(fg.load_model(tmp_path / "n.keras").predict(x), km.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_keras3_h5_graph_with_spatial_dropout(keras, rng, tmp_path):
    """Keras 3 leaves ``trainable`` out of SpatialDropout1D's config: in a legacy .h5 (no module names) it was
    taken for an op layer and refused."""
    L = keras.layers
    inputs = keras.Input((8, 6))
    h = L.SpatialDropout1D(0.1)(inputs)
    km = keras.Model(inputs, L.Concatenate()([L.GlobalAveragePooling1D()(h), L.GlobalMaxPooling1D()(h)]))
    km.save(tmp_path / "m.h5")
    x = rng.normal(size=(4, 8, 6)).astype(np.float32)
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x), km.predict(x, verbose=0), rtol=1e-6)


def test_one_element_structures_of_a_single_input_model(rng):
    """keras.Model([a], [out]) — a plain chain, loaded as a Sequential — takes [x], {name: x}, [y] and a compile
    config of loss=["mse"], metrics=[["mae"]], as Keras (predict([x]) failed, the compile config was refused)."""
    from fastgru.training.structures import single

    model = fg.Sequential([Input((5, 3), name="series"), GRU(4), Dense(1)])
    x, y = rng.normal(size=(6, 5, 3)).astype(np.float32), rng.normal(size=(6, 1)).astype(np.float32)
    expected = model.predict(x)
    np.testing.assert_array_equal(model.predict([x]), expected)
    np.testing.assert_array_equal(model.predict({"series": x}), expected)
    np.testing.assert_allclose(model.predict(x.tolist()), expected, rtol=1e-5, atol=1e-6)  # (a nested list stays)
    model.compile("adam", loss=["mse"], metrics=[["mae"]])
    assert model.evaluate([x], [y], verbose=0) == model.evaluate(x, y, verbose=0)
    model.compile("adam", loss={"out": "mse"}, metrics={"out": ["mae"]})
    assert len(model.evaluate(x, y, verbose=0)) == 2
    assert single([3.0]) == [3.0] and single(["mse"]) == "mse" and single([[1, 2]]) == [[1, 2]]
    with pytest.raises(ValueError, match="the model has one input; received a dict of 2"):
        model.predict({"a": x, "b": x})


@pytest.mark.keras
def test_keras_model_of_one_element_lists(keras, rng, tmp_path):
    inputs = keras.Input((10, 3), name="series")
    km = keras.Model([inputs], [keras.layers.Dense(1)(keras.layers.LSTM(6)(inputs))])
    km.compile(optimizer="adam", loss=["mse"], metrics=[["mae"]])
    km.save(tmp_path / "m.keras")
    x, y = rng.normal(size=(40, 10, 3)).astype(np.float32), rng.normal(size=(40, 1)).astype(np.float32)
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict({"series": x}), km.predict({"series": x}, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.evaluate([x], [y], verbose=0), km.evaluate([x], [y], verbose=0), rtol=1e-5)


@pytest.mark.keras
@pytest.mark.parametrize("kind", ["logical_and", "not_equal_1", "decoder"])
def test_an_explicit_mask_is_applied_over_the_propagated_one(keras, rng, tmp_path, kind):
    """mask=ops.not_equal(ids, 1) and friends on a layer whose input carries an Embedding's mask: Keras replays
    the recorded mask (it was set aside for the propagated one; a chain even dropped its ops)."""
    from keras import layers, ops

    ids = rng.integers(1, 20, size=(8, 10))
    ids[:3, 7:] = 0
    inputs = keras.Input((10,), dtype="int32")
    embedded = layers.Embedding(20, 8, mask_zero=True)(inputs)
    if kind == "decoder":
        h, c = layers.LSTM(6, return_state=True)(embedded)[1:]
        out = layers.LSTM(6, return_sequences=True)(embedded, initial_state=[h, c], mask=ops.not_equal(inputs, 0))
    else:
        mask = (ops.logical_and(ops.not_equal(inputs, 0), ops.not_equal(inputs, 1)) if kind == "logical_and"
                else ops.not_equal(inputs, 1))
        out = layers.GRU(6, return_sequences=True)(embedded, mask=mask)
    km = keras.Model(inputs, out)
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    km.save(tmp_path / "m.keras")
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.keras").predict(ids), km.predict(ids, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_streams_are_refused_by_name_where_they_cannot_be_read(rng):
    """(Since the thirtieth session fit, evaluate and predict read streams: training/streams.py.) A generator has
    no end fit can read up to without a step count (predict and evaluate read it to its end, as Keras's:
    tests/test_fuzz52_fixes.py); targets are not given beside a stream; train_on_batch takes arrays."""
    model = fg.Sequential([Input((5, 3)), GRU(2), Dense(1)])
    model.compile("adam", "mse")

    def batches():
        yield np.zeros((4, 5, 3), np.float32), np.zeros((4, 1), np.float32)

    with pytest.raises(ValueError, match="a generator or iterator has no end"):
        model.fit(batches(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`y` and `sample_weight` are not given beside a stream"):
        model.evaluate(iter([np.zeros((4, 5, 3))]), np.zeros((4, 1)), verbose=0)
    with pytest.raises(TypeError, match="takes arrays .* not a generator: a tf.data.Dataset"):
        model.train_on_batch(batches())
    inputs = fg.Input((5, 3))
    graph = fg.Model(inputs, Dense(1)(GRU(2)(inputs)))
    graph.compile("adam", "mse")
    with pytest.raises(ValueError, match="a generator or iterator has no end"):
        graph.fit(batches(), epochs=1, verbose=0)


@pytest.mark.keras
def test_saved_concatenate_of_masked_tensors_opens_in_a_fresh_keras_session(keras, rng, tmp_path):
    """Keras rebuilds a Concatenate's mask with an op it auto-names "concatenate": a layer of that name in a
    fastgru-written file made keras.models.load_model refuse it in a fresh session (the layer is renamed)."""
    L = keras.layers
    # (in a fresh process Keras's own model below would collide in the same way: this unused layer takes the
    # auto-name "concatenate" first, so that the test does not depend on which tests ran before it)
    L.Concatenate()
    tokens = keras.Input((12,))
    h = L.GRU(8, return_sequences=True)(L.Embedding(50, 8, mask_zero=True)(tokens))
    pooled = L.GlobalAveragePooling1D()(L.Concatenate(name="concatenate")([h, L.Attention()([h, h])]))
    km = keras.Model(tokens, L.Dense(1, activation="sigmoid")(pooled))
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    x = rng.integers(0, 50, (4, 12))
    x[0, 8:] = 0
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    ours.save(tmp_path / "ours.keras")
    np.save(tmp_path / "x.npy", x)
    script = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import numpy as np, keras; "
              "m = keras.models.load_model(sys.argv[1]); print([l.name for l in m.layers]); "
              "np.save(sys.argv[2], m.predict(np.load(sys.argv[3]), verbose=0))")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ours.keras"), str(tmp_path / "y.npy"),
                           str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # (a fresh Keras session: its op names start again)
    assert "concatenate_layer" in done.stdout
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fg.load_model(tmp_path / "ours.keras").predict(x), ours.predict(x))


def test_a_serialized_loss_is_not_a_dict_of_outputs():
    model = fg.Sequential([Input((5, 3)), GRU(2), Dense(1, activation="sigmoid")])
    model.compile("adam", loss={"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 0.1}},
                  metrics=[{"class_name": "AUC", "config": {}}])
    assert model.loss.label_smoothing == 0.1 and type(model.loss).__name__ == "BinaryCrossentropy"


@pytest.mark.keras
def test_tf_keras_per_output_losses_weighted_by_batch_size(rng, tmp_path):
    """tf_keras logs each output's loss as the batch-size-weighted mean over batches (Keras 3: each batch
    once): a two-output model from a tf_keras file evaluates to tf_keras's numbers with a partial last batch."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    a, b = tk.Input((10, 3), name="a"), tk.Input((4,), name="b")
    z = L.concatenate([L.GRU(6)(a), b])
    km = tk.Model([a, b], [L.Dense(1, name="r")(z), L.Dense(3, activation="softmax", name="c")(z)])
    km.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in km.get_weights()])
    km.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"], metrics={"r": ["mae"]})
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    x = [rng.normal(size=(40, 10, 3)).astype(np.float32), rng.normal(size=(40, 4)).astype(np.float32)]
    y = [rng.normal(size=(40, 1)).astype(np.float32), rng.integers(0, 3, size=(40, 1)).astype(np.float32)]
    theirs = km.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    mine = ours.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    for key in ("loss", "r_loss", "c_loss", "r_mae"):
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, err_msg=key)


@pytest.mark.keras
def test_numbered_concatenates_of_masked_tensors_open_in_keras_whatever_its_counter(keras, rng, tmp_path):
    """The ops Keras makes when it rebuilds masks take the next free number of its counter, which may be any layer's
    (``concatenate_2``): every layer named ``concatenate`` or ``concatenate_<n>`` is renamed in a masked model."""
    L = keras.layers
    a, b = keras.Input((10,)), keras.Input((6,))
    joined = L.Concatenate(axis=1)([L.Embedding(30, 8, mask_zero=True)(a), L.Embedding(30, 8)(b)])
    h = L.GRU(5, return_sequences=True)(joined)
    h2 = L.LSTM(4)(L.Average()([h, L.Dense(5)(joined)]))
    km = keras.Model([a, b], L.Dense(1)(L.Concatenate()([L.GlobalAveragePooling1D()(h), h2])))
    x = [rng.integers(0, 30, (4, 10)), rng.integers(1, 30, (4, 6))]
    x[0][0, 7:] = 0
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    ours.save(tmp_path / "ours.keras")
    ours.save(tmp_path / "ours.h5")
    np.save(tmp_path / "a.npy", x[0])
    np.save(tmp_path / "b.npy", x[1])
    script = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import numpy as np, keras; "
              "keras.layers.Concatenate(); d = sys.argv[1]; x = [np.load(d + '/a.npy'), np.load(d + '/b.npy')]; "
              "[np.save(d + f'/y_{f}.npy', keras.models.load_model(d + f'/ours.{f}', compile=False).predict(x, "
              "verbose=0)) for f in ('keras', 'h5')]")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for f in ("keras", "h5"):
        np.testing.assert_allclose(np.load(tmp_path / f"y_{f}.npy"), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
