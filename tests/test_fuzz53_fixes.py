"""Fixes from the fifty-third fuzz round (everyday Keras scripts run with ``import fastgru as keras``); each test
says what was wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg

L = fg.layers


def _residual_model(K):
    inp = K.Input((6, 3))
    h = K.layers.GRU(8)(inp)
    feat = K.layers.Dense(4, activation="relu", name="feat")(h)
    return K.Model(inp, K.layers.Dense(1, activation="sigmoid")(feat + h[:, :4]))


def test_model_layers_leave_out_operations_as_keras(keras, tmp_path):
    """``model.layers`` listed the nodes ``h[:, :4]`` and ``feat + ...`` record, which Keras 3 leaves out: code that
    picks layers by index (``Model(m.inputs, m.layers[-2].output)``, unfreezing ``m.layers[-2:]``) silently took
    another node in fastgru, for models built in code and loaded from Keras's files alike."""
    theirs, ours = _residual_model(keras), _residual_model(fg)
    ours.set_weights(theirs.get_weights())
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers]
    x = np.random.default_rng(0).standard_normal((5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(fg.Model(ours.inputs, ours.layers[-2].output).predict(x, verbose=0),
                               keras.Model(theirs.inputs, theirs.layers[-2].output).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert ours.get_layer(index=-2).name == "feat"
    for model in (ours, theirs):
        for layer in model.layers:
            layer.trainable = False
        for layer in model.layers[-2:]:
            layer.trainable = True
    assert len(ours.trainable_weights) == len(theirs.trainable_weights) == 4
    theirs.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in theirs.layers]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_operations_still_show_in_the_summary_and_save():
    """The ops stay in the graph: ``summary()`` lists them (as Keras's does), ``get_layer(name)`` finds them, and the
    model saves and reloads with them."""
    model = _residual_model(fg)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(GetItem)" in line for line in lines) and any("(Add)" in line for line in lines)
    op_name = next(layer.name for layer in model._layers_and_ops if getattr(layer, "op", None) == "Add")
    assert model.get_layer(op_name).keras_operation
    clone = fg.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]


def test_keras_utils_match_keras(keras):
    """``keras.utils`` was missing: ``to_categorical``, ``pad_sequences``, ``normalize`` and
    ``timeseries_dataset_from_array`` (used in nearly every recurrent tutorial) now give Keras's arrays."""
    for ids in ([0, 2, 1], np.array([[1], [0]]), np.array([[0, 1], [2, 0]])):
        ours, theirs = fg.utils.to_categorical(ids), keras.utils.to_categorical(ids)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(fg.utils.to_categorical([1, 0], 4), keras.utils.to_categorical([1, 0], 4))
    sequences = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10], []]
    for options in ({}, {"maxlen": 3}, {"maxlen": 4, "padding": "post", "truncating": "post", "value": -1},
                    {"dtype": "float32", "maxlen": 6}):
        ours, theirs = fg.utils.pad_sequences(sequences, **options), keras.utils.pad_sequences(sequences, **options)
        np.testing.assert_array_equal(ours, theirs)
        assert ours.dtype == theirs.dtype
    rows = [np.ones((2, 3)), np.zeros((4, 3))]
    np.testing.assert_array_equal(fg.utils.pad_sequences(rows, dtype="float32"),
                                  keras.utils.pad_sequences(rows, dtype="float32"))
    x = np.random.default_rng(0).random((4, 3))
    np.testing.assert_allclose(fg.utils.normalize(x), keras.utils.normalize(x))
    data, targets = np.arange(300, dtype=np.float32).reshape(100, 3), np.arange(100)
    for options in ({"sequence_length": 10}, {"sequence_length": 5, "sequence_stride": 3, "sampling_rate": 2,
                                              "batch_size": 7},
                    {"sequence_length": 4, "start_index": 10, "end_index": 60, "batch_size": 16},
                    {"sequence_length": 6, "batch_size": None}):
        for y in (targets, None):
            ours = list(fg.utils.timeseries_dataset_from_array(data, y, **options))
            theirs = list(keras.utils.timeseries_dataset_from_array(data, y, **options).as_numpy_iterator())
            assert len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                for u, v in zip(a if y is not None else (a,), b if y is not None else (b,)):
                    np.testing.assert_array_equal(u, v)
    ours = fg.utils.timeseries_dataset_from_array(data, targets, 8, shuffle=True, seed=3, batch_size=1000)[0]
    theirs = next(keras.utils.timeseries_dataset_from_array(data, targets, 8, shuffle=True, seed=3,
                                                            batch_size=1000).as_numpy_iterator())
    np.testing.assert_array_equal(ours[0][np.argsort(ours[1])], theirs[0][np.argsort(theirs[1])])  # (same windows)


def test_a_py_dataset_subclass_and_windows_feed_fit_and_predict():
    """``keras.utils.PyDataset`` (and Keras 2's ``Sequence``) is the base of a user's batch loader; fastgru's
    is read by ``fit`` as Keras's is, with ``on_epoch_end`` after each epoch."""
    ends = []

    class Batches(fg.utils.Sequence):
        def __init__(self):
            super().__init__(workers=2, use_multiprocessing=False)

        def __len__(self):
            return 3

        def __getitem__(self, index):
            return np.full((4, 5, 2), index, np.float32), np.ones((4, 1), np.float32)

        def on_epoch_end(self):
            ends.append(True)

    model = fg.Sequential([fg.Input((5, 2)), L.GRU(3), L.Dense(1)])
    model.compile("adam", "mse")
    assert len(model.fit(Batches(), epochs=2, verbose=0).history["loss"]) == 2
    assert len(ends) == 3  # (as Keras 3.15's fit: after each epoch, and once more as training ends)
    windows = fg.utils.timeseries_dataset_from_array(np.ones((50, 2), np.float32), None, 5, batch_size=8)
    assert model.predict(windows, verbose=0).shape == (46, 1)
    with pytest.raises(ValueError, match="class ids from 0"):
        fg.utils.to_categorical([-1, 2])
    with pytest.raises(ValueError, match="integer class ids"):
        fg.utils.to_categorical([0.5])


def test_models_and_saving_namespaces_and_model_from_json(keras, tmp_path):
    """``keras.models.load_model`` / ``model_from_json`` / ``Model`` and ``keras.saving`` had no fastgru spelling,
    and ``load_model`` refused Keras's ``custom_objects`` and ``safe_mode`` keywords."""
    assert fg.models.Model is fg.Model and fg.models.Sequential is fg.Sequential
    assert fg.models.load_model is fg.saving.load_model and fg.models.clone_model
    inp = keras.Input((5, 3))
    theirs = keras.Model(inp, keras.layers.Dense(1)(keras.layers.LSTM(4)(inp) + 1.0))
    ours = fg.models.model_from_json(theirs.to_json())
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(1).random((2, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    chain = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2)])
    assert isinstance(fg.models.model_from_json(chain.to_json()), fg.Sequential)
    assert isinstance(fg.models.model_from_json(ours.to_json()), fg.Model)
    with pytest.raises(ValueError, match="JSON string"):
        fg.models.model_from_json("{not json")
    fg.saving.save_model(ours, tmp_path / "m.keras")
    with pytest.raises(FileExistsError):
        fg.models.save_model(ours, tmp_path / "m.keras", overwrite=False)
    loaded = fg.models.load_model(tmp_path / "m.keras", custom_objects={}, compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), ours.predict(x, verbose=0))
    with pytest.raises(TypeError, match="custom_objects"):
        fg.load_model(tmp_path / "m.keras", custom_objects=["f"])


def test_initializer_objects_and_keras_style_functions(keras, tmp_path):
    """A Keras initializer object (``Constant(matrix)``, the pretrained-embedding idiom; ``GlorotUniform(seed=1)``)
    or a function written as Keras documents it, ``f(shape, dtype=None)``, failed with a confusing TypeError;
    fastgru now has Keras's initializer classes too, and saves them as Keras's configs."""
    matrix = np.random.default_rng(2).random((20, 4)).astype(np.float32)
    for initializer in (keras.initializers.Constant(matrix), fg.initializers.Constant(matrix),
                        lambda shape, dtype=None: matrix):
        layer = L.Embedding(20, 4, embeddings_initializer=initializer)
        layer.build((None, 5))
        np.testing.assert_array_equal(layer.embeddings, matrix)
    dense = L.Dense(3, kernel_initializer=keras.initializers.Orthogonal(gain=2.0, seed=1),
                    bias_initializer=fg.initializers.RandomNormal(0.0, 0.5))
    dense.build((None, 3))
    np.testing.assert_allclose(dense.kernel.T @ dense.kernel, 4 * np.eye(3), atol=1e-5)  # (gain 2: orthogonal, x2)
    with pytest.raises(ValueError, match="returned shape"):
        L.Dense(2, kernel_initializer=lambda shape, dtype=None: np.ones((1, 1))).build((None, 3))
    with pytest.raises(ValueError, match="value has shape"):
        L.Embedding(3, 4, embeddings_initializer=fg.initializers.Constant(matrix)).build((None, 5))
    with pytest.raises(TypeError, match="stdev"):
        fg.initializers.RandomNormal(stdev=1.0)
    assert fg.initializers.GlorotUniform(seed=4)((3, 5)).shape == (3, 5)
    model = fg.Sequential([fg.Input((5,)), L.Embedding(20, 4, embeddings_initializer=fg.initializers.Constant(matrix),
                                                        trainable=False), L.GRU(3), L.Dense(1)])
    model.save(tmp_path / "glove.keras")
    theirs = keras.models.load_model(tmp_path / "glove.keras")
    assert type(theirs.layers[0].embeddings_initializer).__name__ == "Constant"
    tokens = np.random.default_rng(3).integers(0, 20, (4, 5))
    np.testing.assert_allclose(theirs.predict(tokens, verbose=0), model.predict(tokens, verbose=0), rtol=1e-5,
                               atol=1e-6)
    with warnings.catch_warnings():  # (Keras's own Constant config, an array: usable, no warning)
        warnings.simplefilter("error")
        fg.load_model(tmp_path / "glove.keras")
    with pytest.raises(ValueError, match="Python function"):
        fg.Sequential([fg.Input((3,)), L.Dense(1, kernel_initializer=lambda shape, dtype=None: np.ones(shape))]).save(
            tmp_path / "f.keras")



def test_regularizer_and_constraint_objects_train_as_keras(keras):
    """``keras.regularizers.l2(0.01)`` and Keras's constraint objects were refused (TypeError), and fastgru had no
    lower-case ``l1``/``l2``/``max_norm``: both now train as Keras trains them."""
    def build(K, regularizer, constraint):
        return K.Sequential([K.Input((6, 3)), K.layers.GRU(4, kernel_regularizer=regularizer),
                             K.layers.Dense(1, kernel_constraint=constraint)])

    theirs = build(keras, keras.regularizers.l2(0.05), keras.constraints.max_norm(0.5))
    ours = [build(fg, keras.regularizers.l2(0.05), keras.constraints.MaxNorm(0.5)),
            build(fg, fg.regularizers.l2(0.05), fg.constraints.max_norm(0.5))]
    rng = np.random.default_rng(4)
    x, y = rng.random((16, 6, 3)).astype(np.float32), rng.random((16, 1)).astype(np.float32)
    start = theirs.get_weights()
    for model in [theirs] + ours:
        model.set_weights(start)
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for model in ours:
        for a, b in zip(model.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_metric_and_loss_functions_compile_as_keras_s(keras):
    """``metrics=[fg.metrics.mean_absolute_error]`` (fastgru's own function) was refused by fastgru's compile, and
    ``fg.losses`` had no function forms (``mean_squared_error(y_true, y_pred)``)."""
    rng = np.random.default_rng(5)
    y_true, y_pred = rng.random((4, 3)).astype(np.float32), rng.random((4, 3)).astype(np.float32)
    for name in ("mean_squared_error", "mean_absolute_error", "binary_crossentropy", "huber", "log_cosh"):
        np.testing.assert_allclose(getattr(fg.losses, name)(y_true, y_pred),
                                   np.asarray(getattr(keras.losses, name)(y_true, y_pred)), rtol=1e-5, atol=1e-7)
    model = fg.Sequential([fg.Input((3,)), L.Dense(1)])
    model.compile("adam", loss=fg.losses.mean_squared_error,
                  metrics=[fg.metrics.mean_absolute_error, fg.metrics.binary_accuracy])
    history = model.fit(y_true, y_pred[:, :1], epochs=1, verbose=0).history
    assert list(history) == ["binary_accuracy", "loss", "mean_absolute_error"]


def test_constructor_keywords_keras_takes(keras):
    """``Embedding(weights=[matrix])`` and ``GRU/LSTM(implementation=...)`` (Keras 3 takes both) raised
    TypeError."""
    matrix = np.random.default_rng(6).random((10, 3)).astype(np.float32)
    for weights in ([matrix], matrix):
        ours = fg.Sequential([fg.Input((4,)), L.Embedding(10, 3, weights=weights), L.LSTM(2, implementation=1),
                              L.Dense(1)])
        np.testing.assert_array_equal(ours.layers[0].embeddings, matrix)
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Embedding(10, 3, weights=[matrix]),
                               keras.layers.LSTM(2, implementation=1), keras.layers.Dense(1)])
    ours.set_weights(theirs.get_weights())
    tokens = np.array([[1, 2, 3, 4], [0, 9, 8, 7]])
    np.testing.assert_allclose(ours.predict(tokens, verbose=0), theirs.predict(tokens, verbose=0), rtol=1e-5,
                               atol=1e-6)
    assert "weights" not in ours.layers[0].get_config()  # (as Keras's: the weights travel with the weights)
    with pytest.raises(ValueError, match="expected shape"):
        fg.Sequential([fg.Input((4,)), L.Embedding(10, 2, weights=[matrix])])


def test_merge_functions_backend_and_lambda_callback():
    """``layers.concatenate``/``add``/``dot`` (the functional spellings), ``backend.clear_session`` and
    ``callbacks.LambdaCallback`` were missing."""
    a, b = fg.Input((3,)), fg.Input((3,))
    merged = L.concatenate([L.add([a, b]), L.multiply([a, b]), L.dot([a, b], axes=1, normalize=True)])
    model = fg.Model([a, b], L.Dense(1)(merged))
    assert [type(layer).__name__ for layer in model.layers[2:]] == ["Add", "Multiply", "Dot", "Concatenate", "Dense"]
    np.testing.assert_allclose(L.average([np.ones((2, 3)), np.zeros((2, 3))]), 0.5)
    epochs, batches = [], []
    callback = fg.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(logs["loss"]),
                                           on_batch_end=lambda batch, logs: batches.append(batch))
    model.compile("adam", "mse")
    model.fit([np.ones((4, 3)), np.ones((4, 3))], np.ones((4, 1)), epochs=2, batch_size=2, verbose=0,
              callbacks=[callback])
    assert len(epochs) == 2 and batches == [0, 1, 0, 1]
    with pytest.raises(TypeError, match="unknown hooks"):
        fg.callbacks.LambdaCallback(on_epoch_finish=print)
    fg.optimizers.Adam()
    fg.backend.clear_session()  # (layer and optimizer names afresh, as Keras's)
    assert L.GRU(2).name == "gru" and fg.optimizers.Adam().get_config()["name"] == "adam"
    assert fg.backend.floatx() == "float32" and fg.backend.epsilon() == 1e-7


@pytest.mark.parametrize("library", ["keras", "tf_keras"])
@pytest.mark.parametrize("frozen", [False, True])
def test_a_nested_model_with_non_trainable_weights_loads_from_a_legacy_h5_file(keras, tmp_path, library, frozen):
    """A legacy ``.h5`` file lists a nested model's weights trainable first (Keras's ``trainable_weights +
    non_trainable_weights``): with a BatchNormalization (or a frozen layer) inside, fastgru read them in model
    order and refused the file (a moving mean of the next layer's kernel shape)."""
    K = keras if library == "keras" else pytest.importorskip("tf_keras")
    inner = K.Sequential([K.Input((4,)), K.layers.Dense(3), K.layers.BatchNormalization(), K.layers.Dense(2)],
                         name="inner")
    inner.layers[0].trainable = not frozen
    inputs = K.Input((5, 4))
    theirs = K.Model(inputs, inner(K.layers.GRU(4)(inputs)))
    rng = np.random.default_rng(7)
    theirs.set_weights([rng.random(w.shape).astype(np.float32) + 0.5 for w in theirs.get_weights()])
    theirs.save(tmp_path / "nested.h5")
    x = rng.random((3, 5, 4)).astype(np.float32)
    ours = fg.load_model(tmp_path / "nested.h5")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_save_writes_a_legacy_h5_file_that_keras_and_fastgru_load(keras, tmp_path):
    """``model.save("model.h5")`` (and ``ModelCheckpoint("best.h5")``) raised ValueError: Keras 3 still writes
    legacy HDF5 files, with a warning, and tutorials save them everywhere. The file holds the config, the weights
    (a nested model's trainable first) and the compile arguments; Keras's loader reads it (a loss given as "mse",
    which Keras 3.15 cannot read back from its own files, is written out in full)."""
    rng = np.random.default_rng(8)
    x, y = rng.random((8, 5, 3)).astype(np.float32), rng.random((8, 1)).astype(np.float32)
    inner = fg.Sequential([fg.Input((4,)), L.Dense(3), L.BatchNormalization(), L.Dense(1)], name="inner")
    inner.layers[0].trainable = False
    inputs = fg.Input((5, 3))
    graph = fg.Model(inputs, inner(L.Bidirectional(L.GRU(2))(inputs)) + 1.0)
    chain = fg.Sequential([fg.Input((5, 3)), L.LSTM(4), L.BatchNormalization(), L.Dense(1)])
    for model in (graph, chain):
        model.compile(fg.optimizers.Adam(1e-3), "mse", metrics=["mae"])
        model.fit(x, y, epochs=1, verbose=0)
        with pytest.warns(UserWarning, match="legacy"):
            model.save(tmp_path / "m.h5")
        theirs, ours = keras.models.load_model(tmp_path / "m.h5"), fg.load_model(tmp_path / "m.h5")
        expected = model.predict(x, verbose=0)
        np.testing.assert_allclose(theirs.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ours.predict(x, verbose=0), expected)
        assert type(theirs.optimizer).__name__ == type(ours.optimizer).__name__ == "Adam"
        their_loss = theirs.fit(x, y, epochs=1, shuffle=False, verbose=0).history["loss"]
        our_loss = ours.fit(x, y, epochs=1, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(our_loss, their_loss, rtol=1e-4)
    checkpoint = fg.callbacks.ModelCheckpoint(str(tmp_path / "best.h5"))
    with pytest.warns(UserWarning, match="legacy"):
        chain.fit(x, y, epochs=1, verbose=0, callbacks=[checkpoint])
    np.testing.assert_array_equal(fg.load_model(tmp_path / "best.h5").predict(x, verbose=0),
                                  chain.predict(x, verbose=0))
    with pytest.raises(ValueError, match="must end in .keras"):
        chain.save(tmp_path / "m.txt")


def _attention_pooling(K):
    ops = K.ops
    inputs = K.Input((6, 4))
    h = K.layers.GRU(8, return_sequences=True)(inputs)
    weights = ops.softmax(ops.squeeze(K.layers.Dense(1)(h), axis=-1), axis=-1)
    context = ops.sum(h * ops.expand_dims(weights, -1), axis=1)
    pooled = ops.concatenate([context, ops.mean(h, axis=1), ops.max(h, axis=1), ops.tanh(h[:, -1])], axis=-1)
    return K.Model(inputs, K.layers.Dense(1)(pooled))


def test_keras_ops_build_graph_nodes_and_compute_on_arrays(keras, tmp_path):
    """``keras.ops.mean(h, axis=1)`` and the like had no fastgru spelling (``fg.ops`` held only the kernels): the
    keras.io way of writing attention pooling or residual blocks. They now record Keras's op nodes on symbolic
    tensors (trained and saved as Keras's) and compute on arrays."""
    theirs, ours = _attention_pooling(keras), _attention_pooling(fg)
    assert [type(layer).__name__ for layer in ours.layers] == [type(layer).__name__ for layer in theirs.layers]
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(9)
    x, y = rng.random((8, 6, 4)).astype(np.float32), rng.random((8, 1)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for model in (ours, theirs):
        model.compile("adam", "mse")
    np.testing.assert_allclose(ours.fit(x, y, epochs=2, shuffle=False, verbose=0).history["loss"],
                               theirs.fit(x, y, epochs=2, shuffle=False, verbose=0).history["loss"], rtol=1e-4)
    ours.save(tmp_path / "ops.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "ops.keras").predict(x, verbose=0),
                               ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    for name, args, kwargs in [("argmax", (x,), {"axis": -1}), ("softmax", (x,), {}), ("mean", (x,), {"axis": 1}),
                               ("concatenate", ([x, x],), {"axis": -1}), ("where", (x > 0.5, x, 0.0), {}),
                               ("clip", (x, 0.2, 0.8), {}), ("transpose", (x, (0, 2, 1)), {})]:
        np.testing.assert_allclose(getattr(fg.ops, name)(*args, **kwargs),
                                   np.asarray(getattr(keras.ops, name)(*args, **kwargs)), rtol=1e-6, err_msg=name)
    for name, args, kwargs in [("concatenate", ([x, x],), {}), ("sum", (x,), {}), ("squeeze", (x[:1],), {}),
                               ("expand_dims", (x[0], 0), {}), ("take", (x, [2, 0]), {"axis": 0})]:
        # (over axis 0, which a graph keeps as the batch axis: on arrays, Keras's (NumPy's) result)
        np.testing.assert_allclose(getattr(fg.ops, name)(*args, **kwargs),
                                   np.asarray(getattr(keras.ops, name)(*args, **kwargs)), rtol=1e-6, err_msg=name)
    assert fg.ops.gru_forward is not None  # (the kernels keep their names)


def test_load_weights_reads_a_nested_model_s_legacy_h5_group_in_model_order(keras, tmp_path):
    """``model.load_weights("m.h5")`` (the by-order path) paired a nested model's weights with the file's
    trainable-first list as they came: with a frozen first layer of equal shapes, two layers' kernels were
    silently swapped (fuzz round 54)."""
    def build(K):
        inner = K.Sequential([K.Input((4,)), K.layers.Dense(4, name="frozen", activation="tanh"),
                              K.layers.Dense(4, name="second")], name="inner")
        inner.get_layer("frozen").trainable = False
        inputs = K.Input((4,))
        return K.Model(inputs, K.layers.Dense(1, name="head")(inner(inputs)))

    theirs = build(keras)
    theirs.save(tmp_path / "m.h5")
    x = np.random.default_rng(10).random((5, 4)).astype(np.float32)
    for by_name in (False, True):
        ours = build(fg)
        ours.load_weights(tmp_path / "m.h5", by_name=by_name)
        np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_fit_reads_timeseries_windows_in_order_as_keras_s_dataset(keras):
    """``fg.utils.timeseries_dataset_from_array`` gave a PyDataset, whose batches ``fit``'s default ``shuffle=True``
    reorders each epoch; Keras's is a tf.data dataset, which fit reads in order: the same windows trained to other
    numbers (fuzz round 54)."""
    series = np.sin(np.arange(200, dtype=np.float32) / 10)[:, None]

    def build(K):
        inputs = K.Input((12, 1))
        return K.Model(inputs, K.layers.Dense(1)(K.layers.LSTM(4)(inputs)))

    theirs, ours = build(keras), build(fg)
    ours.set_weights(theirs.get_weights())
    losses = []
    for K, model in ((keras, theirs), (fg, ours)):
        model.compile(K.optimizers.Adam(1e-2), "mean_squared_error")
        windows = K.utils.timeseries_dataset_from_array(series[:-12], series[12:, 0], sequence_length=12, batch_size=32)
        losses.append(model.fit(windows, epochs=3, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_a_keras3_h5_file_s_metrics_keep_keras_s_names_and_save_options(keras, tmp_path):
    """Keras 3's loader of a legacy ``.h5`` file compiles ``metrics=["mae"]`` as its function, logged as
    ``mean_absolute_error``: fastgru kept ``mae``, so history keys and monitored names differed. ``save("m.h5",
    include_optimizer=False)`` wrote the compile arguments anyway, and a missing folder was refused where Keras
    makes it (fuzz round 54)."""
    rng = np.random.default_rng(11)
    x, y = rng.random((16, 4, 2)).astype(np.float32), rng.random((16, 1)).astype(np.float32)
    theirs = keras.Sequential([keras.Input((4, 2)), keras.layers.GRU(3), keras.layers.Dense(1)])
    theirs.compile("adam", "mean_squared_error", metrics=["mae", "mse"])
    theirs.save(tmp_path / "k.h5")
    expected = keras.models.load_model(tmp_path / "k.h5").evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(fg.load_model(tmp_path / "k.h5").evaluate(x, y, verbose=0, return_dict=True)) == sorted(expected)
    ours = fg.load_model(tmp_path / "k.h5")
    with pytest.warns(UserWarning, match="legacy"):
        ours.save(tmp_path / "new" / "folder" / "m.h5", include_optimizer=False)
    assert keras.models.load_model(tmp_path / "new" / "folder" / "m.h5").compiled is False
    assert not getattr(fg.load_model(tmp_path / "new" / "folder" / "m.h5"), "compiled", False)


def test_a_functional_chain_from_a_file_lists_its_layers_as_keras(keras, tmp_path):
    """A Keras Functional chain loads as a Sequential, whose ``model.layers`` had no InputLayer: every positive
    index was one off Keras's (freezing ``layers[:2]`` froze another layer), silently (fuzz round 54)."""
    import pickle

    inputs = keras.Input((5, 3), name="seq")
    h = keras.layers.GRU(4, name="gru")(inputs)
    theirs = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(3, name="hidden")(h)))
    rng = np.random.default_rng(12)
    x, y = rng.random((8, 5, 3)).astype(np.float32), rng.random((8, 1)).astype(np.float32)
    for suffix in (".keras", ".h5"):
        theirs.save(tmp_path / f"chain{suffix}")
        ours = fg.load_model(tmp_path / f"chain{suffix}", compile=False)
        assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
        assert ours.get_layer(index=1).name == "gru"
        assert [layer.name for layer in pickle.loads(pickle.dumps(ours)).layers] == ["seq", "gru", "hidden", "out"]
        for layer in ours.layers[:2]:
            layer.trainable = False
        assert len(ours.trainable_weights) == 4
        ours.compile("adam", "mse")
        ours.fit(x, y, epochs=1, verbose=0)
        np.testing.assert_array_equal(ours.get_layer("gru").get_weights()[0], theirs.get_layer("gru").get_weights()[0])


def test_utils_edge_cases_and_a_frozen_bidirectional_saved_for_keras(keras, tmp_path):
    """``pad_sequences`` wrapped values its dtype cannot hold (Keras raises OverflowError); ``normalize`` gave
    integers back as float32 (Keras: float64). A frozen Bidirectional from a tf_keras file (its directions marked
    trainable) was written to ``.h5`` so that Keras could not load it (fuzz round 54)."""
    with pytest.raises(OverflowError, match="cannot hold"):
        fg.utils.pad_sequences([[2**40, 1]])
    integers = np.array([[3, 4], [1, 0]])
    assert fg.utils.normalize(integers).dtype == keras.utils.normalize(integers).dtype
    tf_keras = pytest.importorskip("tf_keras")
    inner = tf_keras.Sequential([tf_keras.layers.Bidirectional(tf_keras.layers.GRU(3, return_sequences=True),
                                                               name="bi", input_shape=(6, 3)),
                                 tf_keras.layers.LSTM(2)], name="inner")
    inner.get_layer("bi").trainable = False
    original = tf_keras.Sequential([tf_keras.layers.InputLayer((6, 3)), inner, tf_keras.layers.Dense(1)])
    original.save(tmp_path / "tfk.h5")
    ours = fg.load_model(tmp_path / "tfk.h5", compile=False)
    with pytest.warns(UserWarning, match="legacy"):
        ours.save(tmp_path / "fg.h5")
    x = np.random.default_rng(13).random((4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "fg.h5", compile=False).predict(x, verbose=0),
                               ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_ops_on_integer_arrays_keep_keras_s_dtypes_and_several_outputs_stay_lists(keras):
    """Fuzz round 58: ``fg.ops`` on int32 and bool arrays computed in float32 (``add`` of 16777217 lost its last
    bit), and ``split``/``unstack`` along axis 0 stacked their parts into one array."""
    ints = np.array([[16777217, 1, 3], [4, 16777215, 2]], np.int32)
    flags = np.array([[True, False, True], [False, False, True]])
    for name, args, kwargs in [("add", (ints, 0), {}), ("sum", (ints,), {"axis": 1}), ("cumsum", (ints,), {}),
                               ("maximum", (ints, 2), {}), ("clip", (ints, -2, 2), {}), ("full_like", (ints, 2.5), {}),
                               ("max", (flags,), {"axis": 1}), ("concatenate", ([flags, flags],), {"axis": 1}),
                               ("cast", (ints, "float64"), {}), ("top_k", (ints, 2), {}), ("split", (ints, 2), {}),
                               ("unstack", (ints,), {}), ("split", (ints.T, [1, 2]), {})]:
        theirs = getattr(keras.ops, name)(*args, **kwargs)
        ours = getattr(fg.ops, name)(*args, **kwargs)
        theirs, ours = (list(theirs), ours) if isinstance(theirs, (list, tuple)) else ([theirs], [ours])
        assert isinstance(ours, list) and len(ours) == len(theirs), name
        for t, o in zip(theirs, ours):
            assert np.asarray(o).dtype == np.asarray(t).dtype, name
            np.testing.assert_array_equal(np.asarray(o), np.asarray(t), err_msg=name)
