"""Fixes from the seventeenth Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_same_fit

import fastgru as fg


@pytest.mark.keras
def test_tf_keras_layer_called_with_a_mask_input(tmp_path):
    """keras.io's "Video classification with a CNN-RNN" in tf_keras: ``GRU(...)(features, mask=mask_input)``
    (the node's kwargs hold the mask's reference, ``{'mask': ['input_2', 0, 0]}``) was run unmasked."""
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    tk.utils.set_random_seed(0)
    feat, mask = tk.Input((6, 3)), tk.Input((6,), dtype="bool")
    km = tk.Model([feat, mask], tk.layers.GRU(3)(tk.layers.GRU(4, return_sequences=True)(feat, mask=mask)))
    km.set_weights([w + rng.normal(0, 0.3, w.shape) for w in km.get_weights()])
    valid = np.arange(6)[None, :] < np.array([6, 4, 2, 5])[:, None]
    x = (rng.normal(size=(4, 6, 3)) * valid[..., None]).astype("float32")
    km.save(tmp_path / "m.h5")
    expected = km.predict([x, valid], verbose=0)
    for ours in (fg.load_model(tmp_path / "m.h5"), fg.from_keras(km)):
        np.testing.assert_allclose(ours.predict([x, valid]), expected, rtol=1e-5, atol=1e-6)


class _Recorder(fg.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def __getattribute__(self, name):
        if name.startswith("on_") and name != "on_":
            events = object.__getattribute__(self, "events")
            return lambda *args, **kwargs: events.append((name,) + tuple(a for a in args if not isinstance(a, dict)))
        return object.__getattribute__(self, name)


def test_fit_runs_the_test_hooks_of_its_validation_pass_and_predict_takes_callbacks(rng):
    """Keras calls fit's callbacks' on_test_begin / on_test_batch_* / on_test_end in the validation pass of
    each epoch (fastgru called none), and predict takes callbacks (it refused the argument), calling
    on_predict_begin, on_predict_batch_begin/end per batch of 32 (Keras's default) and on_predict_end."""
    x = rng.normal(size=(24, 4, 3)).astype(np.float32)
    y = rng.normal(size=(24, 1)).astype(np.float32)
    model = fg.Sequential([fg.layers.Input((4, 3)), fg.layers.GRU(3), fg.layers.Dense(1)])
    model.compile("adam", "mse")
    rec = _Recorder()
    model.fit(x, y, epochs=1, batch_size=8, validation_data=(x[:10], y[:10]), verbose=0, shuffle=False,
              callbacks=[rec])
    names = [e[0] for e in rec.events]
    assert names == ["on_train_begin", "on_epoch_begin"] + ["on_train_batch_begin", "on_train_batch_end"] * 3 + [
        "on_test_begin"] + ["on_test_batch_begin", "on_test_batch_end"] * 2 + [
        "on_test_end", "on_epoch_end", "on_train_end"]
    rec = _Recorder()
    x70 = np.concatenate([x, x, x])[:70]
    out = model.predict(x70, callbacks=[rec])
    assert [e[0] for e in rec.events] == ["on_predict_begin"] + [
        "on_predict_batch_begin", "on_predict_batch_end"] * 3 + ["on_predict_end"]
    # (the same batches of 32 without callbacks: the same numbers; one batch of 70 may round a Dense row otherwise,
    # NumPy's BLAS having other kernels for a matrix's last rows, docs/dask.md)
    np.testing.assert_array_equal(out, model.predict(x70, batch_size=32))
    # steps: the first steps batches, as Keras predicts arrays
    assert model.predict(x70, batch_size=8, steps=2).shape == (16, 1)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        model.predict(x70, steps=0)


def test_predict_batch_end_hands_the_batch_outputs():
    seen = []

    class Outputs(fg.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(logs["outputs"])

    inputs = fg.Input((3, 2))
    h = fg.layers.GRU(2)(inputs)
    model = fg.Model(inputs, [fg.layers.Dense(1)(h), fg.layers.Dense(2)(h)])
    x = np.random.default_rng(0).normal(size=(5, 3, 2)).astype(np.float32)
    a, b = model.predict(x, batch_size=2, callbacks=[Outputs()])
    assert len(seen) == 3 and all(isinstance(s, list) and len(s) == 2 for s in seen)
    np.testing.assert_array_equal(np.concatenate([s[1] for s in seen]), b)


@pytest.mark.keras
def test_tf_keras_loss_object_and_accuracy_of_a_model_saved_untrained(tmp_path):
    """A tf_keras model compiled with ``SparseCategoricalCrossentropy(from_logits=True)`` (its config's
    ``reduction: "auto"``, Keras 2's name, made fastgru load it uncompiled) and ``metrics=["accuracy"]``,
    saved before training: tf_keras stores the accuracy it guessed then (categorical_accuracy) and its loaded
    model computes that one on the labels made (batch, 1) — fastgru resolved "accuracy" from the shapes."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    km = tk.Sequential([tk.layers.Input((8, 3)), tk.layers.GRU(4), tk.layers.Dense(3)])
    km.compile(tk.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
               tk.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    km.save(tmp_path / "m.h5")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 8, 3)).astype("float32")
    y = np.arange(10) % 3
    ours = fg.load_model(tmp_path / "m.h5")
    theirs = tk.models.load_model(tmp_path / "m.h5").fit(x, y, epochs=3, batch_size=4, shuffle=False,
                                                            verbose=0).history
    mine = ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history
    assert sorted(mine) == sorted(theirs) == ["accuracy", "loss"]
    for key in theirs:
        np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, err_msg=key)


@pytest.mark.keras_graph  # tf_keras's Nadam steps otherwise eagerly
@pytest.mark.keras
def test_tf_keras_nadam_trains_as_tf_keras(tmp_path):
    """tf_keras's Nadam advances its momentum product by a count fixed when its train step was traced (not once
    per step, as Keras 3's): a model from a tf_keras file compiled with Nadam trained differently from the same
    file loaded and trained by tf_keras. Two outputs and a last batch of another size (which tf_keras traces once
    more)."""
    tk = pytest.importorskip("tf_keras")
    tk.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    inputs = tk.Input((6, 3))
    h = tk.layers.GRU(5)(inputs)
    km = tk.Model(inputs, [tk.layers.Dense(1, name="a")(h), tk.layers.Dense(2, name="b")(h)])
    km.compile(optimizer=tk.optimizers.Nadam(2e-2), loss=["mse", "mae"])
    x = rng.normal(size=(10, 6, 3)).astype("float32")
    y = [rng.normal(size=(10, 1)).astype("float32"), rng.normal(size=(10, 2)).astype("float32")]
    km.save(tmp_path / "m.h5")
    ours, km = fg.load_model(tmp_path / "m.h5"), tk.models.load_model(tmp_path / "m.h5")
    theirs = km.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=4, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.keras
def test_cnn_lstm_over_subsequences(keras, tmp_path):
    """The CNN-LSTM of many tutorials (each subsequence through TimeDistributed(Conv1D), (MaxPooling1D),
    (Flatten), then an LSTM over the subsequences) was refused: TimeDistributed takes the pooling, flattening,
    reshaping, padding and other convolution layers too. Keras 3 and tf_keras files, predicted and trained."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4, 8, 3)).astype("float32")
    y = rng.normal(size=(6, 1)).astype("float32")
    km = keras.Sequential([L.Input((4, 8, 3)), L.TimeDistributed(L.Conv1D(5, 3, activation="relu")),
                           L.TimeDistributed(L.MaxPooling1D(2)), L.TimeDistributed(L.SeparableConv1D(4, 2, padding="same")),
                           L.TimeDistributed(L.ZeroPadding1D(1)), L.TimeDistributed(L.GlobalAveragePooling1D()),
                           L.TimeDistributed(L.RepeatVector(2)), L.TimeDistributed(L.Flatten()), L.LSTM(6), L.Dense(1)])
    km.compile("adam", "mse")
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)
    ours.save(tmp_path / "back.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "back.keras").predict(x, verbose=0), ours.predict(x),
                               rtol=1e-5, atol=1e-6)
    tk = pytest.importorskip("tf_keras")
    K = tk.layers
    tm = tk.Sequential([K.InputLayer((4, 8, 3)), K.TimeDistributed(K.Conv1D(5, 3, activation="relu")),
                        K.TimeDistributed(K.MaxPooling1D(2)), K.TimeDistributed(K.Flatten()), K.LSTM(6), K.Dense(1)])
    tm.compile(tk.optimizers.Adam(0.01), "mse")
    tm.save(tmp_path / "t.h5")
    ours = fg.load_model(tmp_path / "t.h5")
    np.testing.assert_allclose(ours.predict(x), tm.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = tm.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


@pytest.mark.keras
def test_tf_keras_op_layers(keras, tmp_path):
    """tf_keras records TensorFlow functions called on graph tensors as TFOpLambda layers (``x + inputs`` in a
    Transformer block, ``tf.reduce_mean``, ``tf.concat``) and indexing as SlicingOpLambda: they were refused (a
    two-operand one with a message that read as a damaged file). Run as the Keras 3 ops of the same math; with
    an Embedding mask through them, trained; written back, Keras 3 reads them."""
    tk = pytest.importorskip("tf_keras")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    inp, b2 = tk.Input((10, 3)), tk.Input((10, 3))
    h = tk.layers.Dense(3)(inp)
    outs = [h - b2, h / (b2 * b2 + 1.0), -h, 1.0 - h, h ** 2, 2.0 * h, tf.reduce_sum(h, axis=-1, keepdims=True),
            tf.nn.softmax(h, axis=1), tf.squeeze(tf.expand_dims(h, -1), axis=-1), tf.reshape(h, (-1, 30)),
            tf.matmul(h, tf.transpose(b2, perm=[0, 2, 1])), tf.math.tanh(h), tf.nn.relu(h), tf.sigmoid(h),
            tf.math.sqrt(tf.abs(h)), tf.stack([h, b2], axis=1), tf.maximum(h, b2), tf.reduce_max(h, 1),
            tf.math.reduce_std(h, 1), tf.exp(h), tf.square(h), tf.math.reduce_min(h, axis=[1, 2]), h[:, 2:5:1, :],
            h[:, -1], h[..., 0], tf.concat([tf.reduce_mean(h, axis=1), h[:, 0, :]], axis=-1),
            tk.layers.GlobalAveragePooling1D()(h + inp)]
    km = tk.Model([inp, b2], outs)
    km.set_weights([w + rng.normal(0, 0.3, w.shape) for w in km.get_weights()])
    x = [rng.normal(size=(4, 10, 3)).astype("float32") for _ in range(2)]
    km.save(tmp_path / "ops.h5")
    expected = km.predict(x, verbose=0)
    for ours in (fg.load_model(tmp_path / "ops.h5"), fg.from_keras(km)):
        for got, want in zip(ours.predict(x), expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "ops_back.keras")
    for got, want in zip(keras.models.load_model(tmp_path / "ops_back.keras").predict(x, verbose=0), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # masked, trained
    tk.utils.set_random_seed(0)
    tokens = tk.Input((8,), dtype="int32")
    e = tk.layers.Embedding(20, 6, mask_zero=True)(tokens)
    h = tk.layers.GRU(6, return_sequences=True)(e)
    g = tk.layers.GRU(4)(tk.layers.LayerNormalization()(h + e) * 0.5)
    km = tk.Model(tokens, tk.layers.Dense(1)(tf.concat([g, tf.reduce_mean(h, axis=1)], axis=-1)))
    km.compile(tk.optimizers.Adam(0.01), "mse")
    ids = rng.integers(1, 20, size=(9, 8))
    ids[::2, 5:] = 0
    y = rng.normal(size=(9, 1)).astype("float32")
    km.save(tmp_path / "masked.h5")
    ours = fg.load_model(tmp_path / "masked.h5")
    np.testing.assert_allclose(ours.predict(ids), km.predict(ids, verbose=0), rtol=1e-5, atol=1e-6)
    theirs = km.fit(ids, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(ids, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               theirs, rtol=1e-5)


def test_tf_keras_op_layer_fastgru_does_not_run_is_refused_by_name():
    from fastgru.errors import UnsupportedKerasFeature
    from fastgru.io.tf_op_lambda import translate

    entry = {"class_name": "TFOpLambda", "config": {"name": "tf.math.bincount", "function": "math.bincount"},
             "inbound_nodes": [["dense", 0, 0, {"minlength": 1}]]}
    with pytest.raises(UnsupportedKerasFeature, match="computes 'math.bincount', which fastgru does not run"):
        translate(entry, "m.h5")
    entry = {"class_name": "TFOpLambda", "config": {"name": "tf.linalg.matmul", "function": "linalg.matmul"},
             "inbound_nodes": [["dense", 0, 0, {"b": [[1.0, 2.0]], "transpose_a": True}]]}
    with pytest.raises(UnsupportedKerasFeature, match="transposes a tensor multiplied by a constant"):
        translate(entry, "m.h5")
    # tf_keras records tf.einsum's equation and drops its operands (what tf_keras 2.21 writes)
    entry = {"class_name": "TFOpLambda", "config": {"name": "tf.einsum", "function": "einsum"},
             "inbound_nodes": [["_CONSTANT_VALUE", -1, "btf,btg->bfg", {}]]}
    with pytest.raises(UnsupportedKerasFeature, match="equation without its operands"):
        translate(entry, "m.h5")


def test_malformed_tf_keras_op_layers_are_file_errors():
    from fastgru.errors import ModelFileError
    from fastgru.io.tf_op_lambda import translate

    deep = [0]
    for _ in range(3000):
        deep = [deep]
    for node in (deep, [[[[["a"]]]]], 5, []):
        with pytest.raises(ModelFileError, match="malformed op node"):
            translate({"class_name": "TFOpLambda", "config": {"name": "x", "function": "__operators__.add"},
                       "inbound_nodes": [node]}, "m.h5")


@pytest.mark.keras
def test_sequential_compile_takes_loss_weights(keras, tmp_path):
    """Keras 3's Sequential.compile takes loss_weights (the loss scaled): fastgru's refused the argument, and a
    file compiled with one loaded uncompiled."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 5, 3)).astype("float32")
    y = rng.normal(size=(9, 2)).astype("float32")
    km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    km.compile(keras.optimizers.Adam(0.01), "mse", loss_weights=[2.5], metrics=["mae"])
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    code = fg.from_keras(km)
    code.compile(fg.optimizers.Adam(0.01), "mse", loss_weights=2.5, metrics=["mae"])
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    for model in (ours, code):
        mine = model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
        for key in theirs:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-5, err_msg=key)
    ours.save(tmp_path / "back.keras")
    assert fg.load_model(tmp_path / "back.keras")._compiled.loss_weight == 2.5
    with pytest.raises(ValueError, match="loss_weights should be a number"):
        code.compile("adam", "mse", loss_weights=[1.0, 2.0])


@pytest.mark.keras
def test_targets_that_broadcast_against_the_output_train_as_keras(keras):
    """Targets of shape (B, 2) for a Dense(1) output: Keras's loss broadcasts them against the output (and sums the
    gradient back); fastgru failed inside NumPy with "cannot reshape array of size 14 into shape (7,1)". Targets
    that do not broadcast are named in the error."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5, 3)).astype("float32")
    y = rng.normal(size=(7, 2)).astype("float32")
    for loss in ("mse", "mae"):
        km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(1)])
        km.compile(keras.optimizers.SGD(0.1), loss)
        ours = fg.from_keras(km)
        ours.compile(fg.optimizers.SGD(0.1), loss)
        theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"],
                                   theirs, rtol=1e-5)
    ours = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(3)])
    ours.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"targets of shape \(7, 2\) do not fit the model's output of shape"):
        ours.fit(x, y, verbose=0)


@pytest.mark.keras
def test_keras_model_attributes_and_config_interop(keras, rng):
    """Keras 3's model attributes training code uses (the variable lists, metrics_names, reset_metrics,
    get_metrics_result, get_compile_config, to_json) were missing; a Keras Sequential config did not go through
    fg.Sequential.from_config (InputLayer's optional/ragged/sparse, Dense's quantization_config), and Keras could
    not rebuild a fastgru Bidirectional's config (its inner layers had no module)."""
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.BatchNormalization(),
                           fg.layers.Dense(2)])
    model.layers[0].trainable = False
    model.compile("adam", "mse", metrics=["mae"])
    assert model.variables == model.weights and model.trainable_variables == model.trainable_weights
    assert len(model.non_trainable_variables) == 3 + 2  # the frozen GRU's, the moving statistics
    x, y = rng.normal(size=(6, 5, 3)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert model.metrics_names == ["loss", "mae"]  # (the metrics are made at the first step, from the shapes)
    assert model.get_metrics_result() == pytest.approx(logs)
    model.reset_metrics()
    assert model.get_metrics_result()["loss"] == 0.0
    assert model.get_compile_config()["loss"] == "mse"
    km = keras.models.model_from_json(model.to_json())
    km.set_weights(model.get_weights())
    np.testing.assert_allclose(km.predict(x, verbose=0), model.predict(x), rtol=1e-5, atol=1e-6)
    L = keras.layers
    ks = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    np.testing.assert_array_equal(fg.Sequential.from_config(ks.get_config()).predict(x).shape, (6, 2))
    bi = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.Bidirectional(fg.layers.GRU(4))])
    assert keras.Sequential.from_config(bi.get_config()).output_shape == (None, 8)


@pytest.mark.keras
def test_a_sequential_as_a_layer_of_a_sequential(keras, rng, tmp_path):
    """Keras takes a Sequential as a layer of a Sequential (a pretrained encoder); fastgru's add refused it. It
    nests as the model of its layers under its name (get_layer, freezing by name), trains and saves for Keras."""
    encoder = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4)], name="enc")
    model = fg.Sequential([encoder, fg.layers.Dense(1)])
    assert [layer.name for layer in model.layers] == ["enc", model.layers[1].name]
    model.get_layer("enc").trainable = False
    model.compile("adam", "mse")
    x, y = rng.normal(size=(6, 5, 3)).astype("float32"), rng.normal(size=(6, 1)).astype("float32")
    before = [w.copy() for w in encoder.get_weights()]
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(encoder.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    model.save(tmp_path / "m.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "m.keras").predict(x, verbose=0), model.predict(x),
                               rtol=1e-5, atol=1e-6)
    unbuilt = fg.Sequential([fg.layers.GRU(4)], name="enc2")
    outer = fg.Sequential([fg.layers.Input((5, 3)), unbuilt, fg.layers.Dense(1)])
    assert outer.predict(x).shape == (6, 1)
    with pytest.raises(ValueError, match="give one of them an Input"):
        fg.Sequential([fg.Sequential([fg.layers.GRU(4)])])


@pytest.mark.parametrize("name,options", [("RMSprop", {}), ("RMSprop", {"centered": True}), ("Adagrad", {}),
                                          ("Nadam", {}), ("Adam", {"decay": 0.05}), ("SGD", {"momentum": 0.9})])
@pytest.mark.keras
def test_tf_keras_legacy_optimizers_train_by_their_rules(tmp_path, name, options):
    """A file compiled with one of TensorFlow's optimizer_v2 optimizers (tf_keras.optimizers.legacy, and every
    TF <= 2.10 file) trained by Keras 3's rules: legacy RMSprop without momentum and Adagrad put epsilon outside
    the root, legacy Nadam has its own schedule, and ``decay`` decays the rate (it was dropped)."""
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    km = tk.Sequential([tk.layers.Input((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.set_weights([np.random.default_rng(1).normal(0, 0.3, size=w.shape).astype("float32")
                    for w in km.get_weights()])
    km.compile(getattr(tk.optimizers.legacy, name)(learning_rate=0.01, **options), "mse")
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    for _ in range(4):
        np.testing.assert_allclose(ours.train_on_batch(x, y), km.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
def test_auc_sums_its_trapezoids_as_tensorflow(keras):
    """fastgru's AUC was one float32 step from Keras's on some batches (1.0 against 0.99999994 on perfectly
    separated scores), which moved EarlyStopping(monitor="val_auc") by an epoch: its sum of trapezoids now adds
    them in TensorFlow's order, bit for bit."""
    rng = np.random.default_rng(0)
    for trial in range(80):
        n = int(rng.integers(6, 60))
        y = (rng.random(n) > 0.5).astype("float32")
        p = (np.where(y > 0, rng.uniform(0.5, 1, n), rng.uniform(0, 0.5, n)) if trial % 2 else rng.random(n))
        theirs, ours = keras.metrics.AUC(), fg.metrics.AUC()
        theirs.update_state(y[:, None], p[:, None].astype("float32"))
        ours.update_state(y[:, None], p[:, None].astype("float32"))
        assert float(ours.result()) == float(theirs.result()), trial


def test_tensorflow_order_sum():
    """``auc.tf_sum`` against the order it documents, written out one addition at a time."""
    from fastgru.training.auc import tf_sum

    def reference(t):
        f = np.float32
        accs = [[f(0)] * 8 for _ in range(4)]
        vec, unroll = len(t) // 8 * 8, len(t) // 32 * 32
        for j in range(0, unroll, 32):
            for k in range(4):
                for lane in range(8):
                    accs[k][lane] = f(accs[k][lane] + t[j + 8 * k + lane])
        for j in range(unroll, vec, 8):
            for lane in range(8):
                accs[0][lane] = f(accs[0][lane] + t[j + lane])
        packet = [f(f(f(accs[0][i] + accs[1][i]) + accs[2][i]) + accs[3][i]) for i in range(8)]
        tail = f(0)
        for v in t[vec:]:
            tail = f(tail + v)
        half = [f(packet[i] + packet[i + 4]) for i in range(4)]
        return f(tail + f(f(half[0] + half[2]) + f(half[1] + half[3])))

    rng = np.random.default_rng(3)
    for n in (1, 7, 8, 31, 32, 33, 47, 199, 200):
        t = (rng.normal(size=n) * 10.0 ** rng.integers(-3, 4, size=n)).astype(np.float32)
        assert tf_sum(t) == reference(t), n


@pytest.mark.parametrize("make", ["adam_amsgrad", "rmsprop", "nadam", "sgd", "schedule", "lamb", "adafactor"])
@pytest.mark.keras
def test_training_goes_on_from_a_keras_file_with_its_optimizer_state(keras, tmp_path, make):
    """A model trained in Keras and saved: keras.models.load_model resumes its optimizer (step count, learning
    rate, Adam's moments, ...); fastgru started the optimizer afresh, so continued training differed. A graph
    (GRU, BatchNormalization, GRU) and a Sequential."""
    L, O = keras.layers, keras.optimizers
    opt = {"adam_amsgrad": lambda: O.Adam(0.01, amsgrad=True),
           "rmsprop": lambda: O.RMSprop(0.01, momentum=0.5, centered=True), "nadam": lambda: O.Nadam(0.01),
           "sgd": lambda: O.SGD(0.05, momentum=0.9, nesterov=True),
           "schedule": lambda: O.Adam(O.schedules.ExponentialDecay(0.01, 3, 0.9)),
           "lamb": lambda: O.Lamb(0.01), "adafactor": lambda: O.Adafactor(0.05)}[make]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(11, 5, 3)).astype("float32")
    y = rng.normal(size=(11, 2)).astype("float32")
    inputs = L.Input((5, 3))
    graph = keras.Model(inputs, L.Dense(2)(L.GRU(3)(L.BatchNormalization()(L.GRU(4, return_sequences=True)(inputs)))))
    chain = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    for km in (graph, chain):
        km.compile(opt(), "mse")
        km.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
        km.save(tmp_path / "m.keras")
        theirs, ours = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
        assert ours.optimizer.iterations == 6
        history = theirs.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"]
        np.testing.assert_allclose(ours.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"],
                                   history, rtol=1e-5)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_an_optimizer_state_that_does_not_fit_is_left_out_with_a_warning(tmp_path):
    import h5py

    from fastgru.io import optimizer_state

    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    model.compile(fg.optimizers.Adam(0.01), "mse")
    shapes = [w.shape for w in model.trainable_weights]
    good = [np.array(7), np.float32(0.005)] + [np.ones(s, np.float32) for s in shapes for _ in range(2)]
    with h5py.File(tmp_path / "w.h5", "w") as f:
        for i, a in enumerate(good):
            f.create_dataset(f"optimizer/vars/{i}", data=a)
    with h5py.File(tmp_path / "w.h5") as f:
        arrays = optimizer_state.read_vars(f, model, "w.h5")
    assert optimizer_state.restore(model, arrays, "w.h5")
    assert model.optimizer.iterations == 7 and model.optimizer.learning_rate == pytest.approx(0.005)
    assert all((s["momentum"] == 1).all() for s in model.optimizer.slots)
    for bad in (good[:-1], good[:2] + [np.ones((9, 9), np.float32)] + good[3:],
                good[:2] + [np.full(shapes[0], np.nan, np.float32)] + good[3:]):
        model.compile(fg.optimizers.Adam(0.01), "mse")
        with pytest.warns(UserWarning, match="optimizer's saved state is not restored"):
            assert not optimizer_state.restore(model, bad, "w.h5")
        assert model.optimizer.iterations == 0


@pytest.mark.keras
def test_a_file_fastgru_saves_resumes_its_optimizer_in_keras_and_fastgru(keras, tmp_path, rng):
    """save writes the optimizer's state where Keras keeps it, so Keras's load_model (and fastgru's) go on training
    as the saved model would (both started their optimizer afresh)."""
    x, y = rng.normal(size=(11, 5, 3)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    inputs = fg.Input((5, 3))
    graph = fg.Model(inputs, fg.layers.Dense(2)(fg.layers.GRU(3)(fg.layers.GRU(4, return_sequences=True)(inputs))))
    chain = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)])
    for model, optimizer in ((graph, fg.optimizers.Adam(0.01, amsgrad=True)), (chain, fg.optimizers.Nadam(0.01))):
        model.compile(optimizer, "mse")
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
        model.save(tmp_path / "m.keras")
        theirs, again = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
        expected = model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False).history["loss"]
        for other in (theirs, again):
            np.testing.assert_allclose(other.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
                                       .history["loss"], expected, rtol=1e-5)


@pytest.mark.keras
def test_tf_keras_chains_with_op_layers_and_constant_operands(tmp_path):
    """A plain chain with a tf_keras op layer (Embedding -> tf.reduce_mean -> Dense; LSTM -> x[:, -1, :]) was
    refused by the chain loader, and an op with a constant array operand (a positional encoding computed when
    the model was built) by the op layer: both load as graphs, predict and train as tf_keras."""
    tk = pytest.importorskip("tf_keras")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    tk.utils.set_random_seed(0)
    tokens = tk.Input((6,), dtype="int32")
    mean = tk.Model(tokens, tk.layers.Dense(1)(tf.reduce_mean(tk.layers.Embedding(20, 4)(tokens), axis=1)))
    seq = tk.Input((5, 3))
    last = tk.Model(seq, tk.layers.Dense(1)(tk.layers.LSTM(4, return_sequences=True)(seq)[:, -1, :]))
    const = tk.Model(seq, tk.layers.Dense(1)(tk.layers.GRU(3)(seq + rng.normal(size=(5, 3)).astype("float32"))))
    data = {mean: rng.integers(0, 20, size=(7, 6)), last: rng.normal(size=(7, 5, 3)).astype("float32"),
            const: rng.normal(size=(7, 5, 3)).astype("float32")}
    y = rng.normal(size=(7, 1)).astype("float32")
    for km, x in data.items():
        km.compile(tk.optimizers.Adam(0.01), "mse")
        km.save(tmp_path / "m.h5")
        ours, theirs = fg.load_model(tmp_path / "m.h5"), tk.models.load_model(tmp_path / "m.h5")
        np.testing.assert_allclose(ours.predict(x), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=4)


@pytest.mark.parametrize("make", ["adam", "sgd", pytest.param("nadam", marks=pytest.mark.keras_graph),
                                  "rmsprop_centered", "legacy_adam", "legacy_rmsprop",
                                  "legacy_nadam"])
@pytest.mark.keras
def test_a_tf_keras_file_saved_after_training_resumes_its_optimizer(tmp_path, make):
    """tf_keras's load_model restores the optimizer weights an .h5 file saved (the step count and the slots):
    fastgru started afresh, so training a model saved after training went elsewhere."""
    tk = pytest.importorskip("tf_keras")
    O = tk.optimizers
    opt = {"adam": lambda: O.Adam(0.01, amsgrad=True), "sgd": lambda: O.SGD(0.05, momentum=0.9),
           "nadam": lambda: O.Nadam(0.01), "rmsprop_centered": lambda: O.RMSprop(0.01, momentum=0.5, centered=True),
           "legacy_adam": lambda: O.legacy.Adam(0.01), "legacy_rmsprop": lambda: O.legacy.RMSprop(0.01, centered=True),
           "legacy_nadam": lambda: O.legacy.Nadam(0.01)}[make]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(11, 5, 3)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    tk.utils.set_random_seed(0)
    km = tk.Sequential([tk.layers.InputLayer((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.compile(opt(), "mse")
    km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    km.save(tmp_path / "m.h5")
    theirs, ours = tk.models.load_model(tmp_path / "m.h5"), fg.load_model(tmp_path / "m.h5")
    assert ours.optimizer.iterations == 6
    assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras_graph  # tf_keras's Nadam steps otherwise eagerly
@pytest.mark.keras
def test_tf_keras_savedmodel_with_nadam_trains_as_tf_keras(tmp_path):
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(11, 5, 3)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    km = tk.Sequential([tk.layers.InputLayer((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    km.compile(tk.optimizers.Nadam(0.01), "mse")
    km.save(tmp_path / "sm")
    theirs, ours = tk.models.load_model(tmp_path / "sm"), fg.load_model(tmp_path / "sm")
    assert_same_fit(ours, theirs, x, y, epochs=3, batch_size=4)


@pytest.mark.keras
def test_sequential_from_config_with_a_nested_model(keras):
    """Sequential.from_config of a config holding a nested Sequential or Functional model (fastgru's own, or
    Keras's) failed with a bare AttributeError; an unknown class is named."""
    x = np.random.default_rng(0).normal(size=(3, 6, 3)).astype("float32")
    encoder = fg.Sequential([fg.layers.Input((6, 3)), fg.layers.GRU(4)], name="enc")
    model = fg.Sequential([fg.layers.Input((6, 3)), encoder, fg.layers.Dense(2)])
    again = fg.Sequential.from_config(model.get_config())
    again.set_weights(model.get_weights())
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)
    L = keras.layers
    km = keras.Sequential([L.Input((6, 3)), keras.Sequential([L.Input((6, 3)), L.GRU(4)], name="enc"), L.Dense(2)])
    ours = fg.Sequential.from_config(km.get_config())
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown layer class 'Mystery'"):
        fg.Sequential.from_config({"name": "m", "layers": [{"class_name": "Mystery", "config": {}}]})


@pytest.mark.keras
def test_tf_keras_learning_rate_callbacks_drive_a_fastgru_optimizer(rng):
    """tf_keras's ReduceLROnPlateau and LearningRateScheduler read and set ``optimizer.lr`` through its backend;
    fastgru's optimizers had no ``lr`` (a bare AttributeError, or "Optimizer must have a 'lr' attribute")."""
    tk = pytest.importorskip("tf_keras")
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(3), fg.layers.Dense(1)])
    model.compile(fg.optimizers.Adam(0.01), "mse")
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[
        tk.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)]).history
    np.testing.assert_allclose(history["lr"], [0.005, 0.0025, 0.00125], rtol=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.00125)
    model.fit(x, y * 0, epochs=3, verbose=0, callbacks=[
        tk.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.1, patience=0, min_delta=10.0)])
    assert model.optimizer.learning_rate == pytest.approx(0.00125 * 1e-2)  # (epochs 2 and 3: no better by 10)


@pytest.mark.keras
def test_rate_callbacks_log_lr_for_a_tf_keras_file(tmp_path, rng):
    """fastgru's ReduceLROnPlateau and LearningRateScheduler log the rate as ``lr`` for a model compiled from a
    tf_keras file, as tf_keras's do (``learning_rate``, Keras 3's key, otherwise)."""
    tk = pytest.importorskip("tf_keras")
    km = tk.Sequential([tk.layers.InputLayer((5, 3)), tk.layers.GRU(3), tk.layers.Dense(1)])
    km.compile(tk.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.h5")
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    ours = fg.load_model(tmp_path / "m.h5")
    history = ours.fit(x, y, epochs=2, verbose=0, callbacks=[fg.callbacks.ReduceLROnPlateau("loss")]).history
    assert sorted(history) == ["loss", "lr"]
    code = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(3), fg.layers.Dense(1)])
    code.compile("adam", "mse")
    assert "learning_rate" in code.fit(x, y, verbose=0, callbacks=[fg.callbacks.ReduceLROnPlateau("loss")]).history


def test_a_metric_whose_targets_do_not_fit_is_named():
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4, return_sequences=True),
                           fg.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=[fg.metrics.CategoricalAccuracy()])
    with pytest.raises(ValueError, match=r"metric 'categorical_accuracy': targets of shape \(7, 5\) do not fit"):
        model.evaluate(np.zeros((7, 5, 3), np.float32), np.zeros((7, 5), np.float32), verbose=0)


def test_summary_takes_keras_options(capsys):
    """summary(show_trainable=True) and summary(expand_nested=True) raised TypeError; layer_range too."""
    encoder = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4, name="gru_s")], name="enc")
    model = fg.Sequential([fg.layers.Input((5, 3)), encoder, fg.layers.Dropout(0.1, name="drop"),
                           fg.layers.Dense(2, name="out")])
    model.get_layer("out").trainable = False
    model.summary(show_trainable=True, expand_nested=True)
    text = capsys.readouterr().out
    assert "Trainable" in text and "gru_s (GRU)" in text
    rows = {line.split()[1]: line.split("│")[-2].strip() for line in text.splitlines()
            if line.startswith("│") and "(" in line}
    assert rows["out"] == "N" and rows["drop"] == "-"
    inputs = fg.Input((5, 3))
    graph = fg.Model(inputs, fg.layers.Dense(1, name="d")(fg.layers.GRU(4, name="g")(inputs)))
    graph.summary(layer_range=("g", "g"), show_trainable=True)
    text = capsys.readouterr().out
    assert "g (GRU)" in text and "d (Dense)" not in text
    with pytest.raises(ValueError, match="layer_range"):
        graph.summary(layer_range=("g", "nope"))


@pytest.mark.parametrize("option", [{"clipnorm": 0.1}, {"clipvalue": 0.02}, {"global_clipnorm": 0.1}])
@pytest.mark.keras
def test_tf_keras_clips_an_embeddings_slices_before_summing_them(tmp_path, option):
    """tf_keras clips an Embedding's gradient as slices (one per looked-up token), then sums duplicate tokens;
    fastgru clipped the summed gradient of a tf_keras model's Embedding."""
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 6, size=(12, 7))  # (few tokens: many duplicates)
    y = rng.normal(size=(12, 1)).astype("float32")
    km = tk.Sequential([tk.layers.InputLayer((7,)), tk.layers.Embedding(6, 4), tk.layers.GRU(3), tk.layers.Dense(1)])
    km.compile(tk.optimizers.SGD(0.5, **option), "mse")
    km.save(tmp_path / "m.h5")
    ours, theirs = fg.load_model(tmp_path / "m.h5"), tk.models.load_model(tmp_path / "m.h5")
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(tokens, y), theirs.train_on_batch(tokens, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
def test_a_nested_sequential_with_a_frozen_layer_trains_in_a_graph(keras, tmp_path):
    """A Functional model whose nested Sequential has a frozen layer and feeds a merge: fit raised "got 7
    gradients for 5 variables" (the nested model handed back its frozen layer's gradients)."""
    L = keras.layers
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 6, 3)).astype("float32"), rng.normal(size=(20, 2)).astype("float32")
    inner = keras.Sequential([keras.Input((6, 3)), L.Conv1D(4, 2, padding="same"), L.LSTM(4, return_sequences=True)],
                             name="inner")
    inner.layers[0].trainable = False
    inputs = keras.Input((6, 3))
    h = inner(inputs)
    km = keras.Model(inputs, L.Dense(2)(L.GlobalMaxPooling1D()(L.Add()([h, h]))))
    km.compile(keras.optimizers.Adam(0.01), "mse")
    km.save(tmp_path / "m.keras")
    theirs, ours = keras.models.load_model(tmp_path / "m.keras"), fg.load_model(tmp_path / "m.keras")
    assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=7)


@pytest.mark.keras
def test_loss_scale_optimizer_state_and_legacy_ftrl_state_resume(keras, tmp_path):
    """A mixed-precision model's .keras file holds its LossScaleOptimizer's four arrays before Adam's (the state
    was left out with a warning), and tf_keras's legacy Ftrl saves each variable's two slots in turn (refused)."""
    tk = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(11, 5, 3)).astype("float32"), rng.normal(size=(11, 2)).astype("float32")
    L = keras.layers
    km = keras.Sequential([L.Input((5, 3)), L.GRU(4), L.Dense(2)])
    km.compile(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01)), "mse")
    km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    km.save(tmp_path / "lso.keras")
    tm = tk.Sequential([tk.layers.InputLayer((5, 3)), tk.layers.GRU(4), tk.layers.Dense(2)])
    tm.compile(tk.optimizers.legacy.Ftrl(0.1), "mse")
    tm.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    tm.save(tmp_path / "ftrl.h5")
    for path, load in ((tmp_path / "lso.keras", keras.models.load_model), (tmp_path / "ftrl.h5", tk.models.load_model)):
        theirs, ours = load(path), fg.load_model(path)
        assert ours.optimizer.iterations == 6
        assert_same_fit(ours, theirs, x, y, epochs=2, batch_size=4)
        if path.suffix == ".h5":
            with pytest.warns(UserWarning, match="legacy \\(optimizer_v2\\) Ftrl"):
                ours.save(tmp_path / "back.keras")
