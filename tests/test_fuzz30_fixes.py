"""Fixes from the twenty-seventh session (the thirtieth and thirty-first Keras-parity fuzz rounds; each test says what
was wrong)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_metrics_of_several_values_are_float32_arrays_as_keras(keras):
    """Metrics of one value per class or threshold (``F1Score(average=None)``, ``Precision(thresholds=[...])``)
    gave plain Python lists in ``evaluate`` and in ``History``; Keras gives float32 NumPy arrays (code doing
    ``.shape`` or ``.mean()`` on them broke). Same types and values as Keras, in fit, evaluate and return_dict."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 16)]
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((4, 3)), keras.layers.GRU(5), keras.layers.Dense(3, activation="softmax")])
    ours = fg.from_keras(km)
    results = []
    for lib, model in ((keras, km), (fg, ours)):
        model.compile(lib.optimizers.SGD(0.1), "categorical_crossentropy",
                      metrics=[lib.metrics.F1Score(average=None),
                               lib.metrics.Precision(thresholds=[0.3, 0.6], name="precision")])
        history = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0).history
        results.append((history, model.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0, return_dict=True)))
    (k_hist, k_list, k_dict), (f_hist, f_list, f_dict) = results
    for name in ("f1_score", "precision"):
        for theirs, mine in ((k_hist[name][0], f_hist[name][0]), (k_dict[name], f_dict[name])):
            assert isinstance(mine, np.ndarray) and mine.dtype == np.float32 and mine.shape == theirs.shape
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert [type(v) for v in f_list] == [type(v) for v in k_list]
    for theirs, mine in zip(k_list[1:], f_list[1:]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_r2_score_per_output_is_an_adjusted_array_as_keras(keras):
    """``R2Score(class_aggregation=None)`` gave a list, and skipped the ``num_regressors`` adjustment Keras applies to
    each output's score too."""
    rng = np.random.default_rng(1)
    y_true = rng.normal(size=(12, 3)).astype("float32")
    y_pred = (y_true + rng.normal(size=(12, 3)) * 0.5).astype("float32")
    for regressors in (0, 2):
        ours = fg.metrics.R2Score(class_aggregation=None, num_regressors=regressors)
        theirs = keras.metrics.R2Score(class_aggregation=None, num_regressors=regressors)
        ours.update_state(y_true, y_pred)
        theirs.update_state(y_true, y_pred)
        mine = ours.result()
        assert isinstance(mine, np.ndarray) and mine.dtype == np.float32 and mine.shape == (3,)
        np.testing.assert_allclose(mine, np.asarray(theirs.result()), rtol=1e-6)


def _attention_model(lib, masks):
    """Embedding(mask_zero) -> GRU -> Attention([h, h], mask=<masks>) -> pooled -> Dense; ``masks`` entries: "q" (the
    padding mask, computed by an op), None (no mask)."""
    tokens = lib.Input((10,), dtype="int32")
    h = lib.layers.GRU(8, return_sequences=True)(lib.layers.Embedding(50, 8, mask_zero=True)(tokens))
    padding = lib.ops.not_equal(tokens, 0) if lib.__name__ == "keras" else None
    given = [padding if m == "q" else None for m in masks]
    a = lib.layers.Attention()([h, h], mask=given)
    return lib.Model(tokens, lib.layers.Dense(1)(lib.layers.GlobalAveragePooling1D()(a)))


@pytest.mark.keras
@pytest.mark.parametrize("masks", [[None, None], ["q", None]])
def test_explicit_mask_list_entries_of_none_mean_no_mask_as_keras(keras, tmp_path, masks):
    """``Attention()([q, v], mask=[None, None])`` means no masks in Keras (it fills in the propagated masks only when
    ``mask`` itself is None); fastgru filled every None entry with the propagated mask: predictions 44% off, silently.
    Now the same numbers as Keras, from the file and after fastgru saves it again."""
    keras.utils.set_random_seed(1)
    km = _attention_model(keras, masks)
    x = np.zeros((6, 10), "int32")
    for j, n in enumerate([3, 5, 10, 7, 4, 9]):
        x[j, :n] = np.arange(1, n + 1)
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    expected = km.predict(x, verbose=0)
    np.testing.assert_allclose(ours.predict(x), expected, rtol=1e-5, atol=1e-6)
    ours.save(tmp_path / "again.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "again.keras").predict(x, verbose=0), expected,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fg.load_model(tmp_path / "again.keras").predict(x), expected, rtol=1e-5, atol=1e-6)


def test_explicit_none_masks_in_a_fastgru_graph_are_no_masks():
    """The same rule in fastgru's own graphs: after ``mask=[None, None]`` the Attention attends over the padding and
    passes no mask on, as its layers called on the arrays without masks compute."""
    fg.set_random_seed(3)
    explicit = _attention_model(fg, [None, None])
    _, embedding, gru, attention, pooling, dense = explicit.layers
    x = np.zeros((4, 10), "int32")
    x[:, :4] = 3
    h = fg.Model(explicit.inputs, gru(embedding(explicit.inputs[0]))).predict(x)  # (the GRU still masked)
    expected = dense(pooling(attention([h, h])))
    np.testing.assert_allclose(explicit.predict(x), expected, rtol=1e-6)
    tokens = fg.Input((10,), dtype="int32")
    hidden = gru(embedding(tokens))
    propagated = fg.Model(tokens, dense(pooling(attention([hidden, hidden]))))
    assert np.abs(explicit.predict(x) - propagated.predict(x)).max() > 1e-4  # (the mask matters for this input)


@pytest.mark.keras
def test_float64_models_report_float64_losses_and_metrics_as_keras(keras, tmp_path):
    """A float64 model's loss and string-named metrics were accumulated in float32 (``evaluate`` 0.14881868660449982
    where Keras, its floatx float64, gives 0.1488186693132764). Now float64, one- and two-output models alike."""
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # (a process that made a model before keeps its policy otherwise)
    try:
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        x = rng.normal(size=(32, 6, 3))
        y = (x[:, :, 0].mean(1) > 0).astype("float64")[:, None]
        inp = keras.Input((6, 3))
        h = keras.layers.GRU(5)(inp)
        one = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
        one.compile("adam", "binary_crossentropy", metrics=["auc", "accuracy"])
        two = keras.Model(inp, [keras.layers.Dense(1, activation="sigmoid", name="p")(h),
                                keras.layers.Dense(1, name="r")(h)])
        two.compile("adam", ["binary_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
        for km, ys in ((one, y), (two, [y, x[:, 0, :1]])):
            km.save(tmp_path / "m.keras")
            ours = fg.load_model(tmp_path / "m.keras")
            theirs = km.evaluate(x, ys, verbose=0)
            mine = ours.evaluate(x, ys, verbose=0)
            np.testing.assert_allclose(mine, theirs, rtol=1e-8)  # (float32 rounding: ~3e-8 apart)
            assert ours._compiled.loss_tracker.dtype == np.float64 and km.weights[0].dtype == "float64"
            history = ours.fit(x, ys, epochs=1, batch_size=8, shuffle=False, verbose=0).history
            reference = km.fit(x, ys, epochs=1, batch_size=8, shuffle=False, verbose=0).history
            for key, values in reference.items():
                np.testing.assert_allclose(history[key], values, rtol=1e-8)
    finally:
        keras.config.set_floatx("float32")
        keras.config.set_dtype_policy("float32")


@pytest.mark.keras
def test_mixed_float16_optimizer_state_is_restored(keras, tmp_path):
    """Under ``mixed_float16`` Keras wraps ``compile(optimizer="adam")`` in a LossScaleOptimizer whose four variables
    come first in the file, while its compile config says ``Adam``: fastgru dropped the whole state with a warning
    (starting again at step 0). Now the inner Adam's state is read past them: its step count and slots are Keras's."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        x = np.random.default_rng(0).normal(size=(32, 6, 3)).astype("float32")
        y = (x[:, :, 0].mean(1) > 0).astype("float32")[:, None]
        inp = keras.Input((6, 3))
        km = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", dtype="float32")(keras.layers.GRU(4)(inp)))
        km.compile(optimizer="adam", loss="binary_crossentropy")
        km.fit(x, y, epochs=1, batch_size=8, verbose=0)
        assert type(km.optimizer).__name__ == "LossScaleOptimizer"
        km.save(tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the mixed-precision policy's own warning: computed in float32)
        ours = fg.load_model(tmp_path / "m.keras")
    assert ours.optimizer.iterations == int(km.optimizer.iterations) == 4
    inner = km.optimizer.inner_optimizer
    theirs = {v.path: np.asarray(v) for v in inner.variables}
    momentum = [np.asarray(v) for p, v in theirs.items() if "momentum" in p]
    np.testing.assert_allclose(ours.optimizer._slots[0]["momentum"], momentum[0], rtol=1e-6)


@pytest.mark.keras
@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd_momentum"])
def test_tf_keras_keras_files_resume_with_their_optimizer_state(optimizer, tmp_path):
    """A tf_keras ``.keras`` file keeps its optimizer's step count and slots without a learning-rate variable:
    fastgru dropped the state with a warning ("13 optimizer arrays; Adam ... has 14") and resumed from step 0. Now it
    resumes as tf_keras's own ``load_model`` does: the same losses and weights."""
    tf_keras = pytest.importorskip("tf_keras")
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, size=(48, 10))
    y = rng.integers(0, 2, size=(48, 1)).astype("float32")
    tf_keras.utils.set_random_seed(0)
    inp = tf_keras.Input((10,), dtype="int64")
    h = tf_keras.layers.GRU(5)(tf_keras.layers.Embedding(30, 6)(inp))
    km = tf_keras.Model(inp, tf_keras.layers.Dense(1, activation="sigmoid")(h))
    opt = tf_keras.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd_momentum" else optimizer
    km.compile(opt, "binary_crossentropy")
    km.fit(ids, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    km.save(tmp_path / "m.keras")
    theirs = tf_keras.models.load_model(tmp_path / "m.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "state is not restored" warning)
        ours = fg.load_model(tmp_path / "m.keras")
    assert ours.optimizer.iterations == int(theirs.optimizer.iterations) == 3
    expected = theirs.fit(ids, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(ids, y, epochs=2, batch_size=16, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.keras
def test_tf_keras_comparison_ops_make_masks(tmp_path):
    """tf_keras records ``tf.math.not_equal(tokens, 0)`` (the usual way to make an explicit mask there) as a
    TFOpLambda: it was refused as an unknown function; the comparisons now run as Keras 3's ops, with tf_keras's
    numbers."""
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    layers = tf_keras.layers
    tf_keras.utils.set_random_seed(2)
    tokens = layers.Input((10,), dtype="int32")
    h = layers.GRU(8, return_sequences=True)(layers.Embedding(50, 8, mask_zero=True)(tokens))
    keep = tf.math.not_equal(tokens, 0)
    model = tf_keras.Model(tokens, layers.Dense(1)(layers.GlobalAveragePooling1D()(
        layers.Attention()([h, h], mask=[None, keep]))))
    model.save(tmp_path / "m.h5")
    x = np.zeros((5, 10), "int32")
    for j, n in enumerate([3, 10, 6, 1, 8]):
        x[j, :n] = np.arange(1, n + 1)
    np.testing.assert_allclose(fg.load_model(tmp_path / "m.h5").predict(x), model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_multi_head_attention_refuses_a_mask_argument():
    """``MultiHeadAttention(...)(q, v, mask=m)`` is a TypeError in Keras 3; fastgru took ``m`` as the query's mask in
    memory and ``save`` dropped it, so the saved file computed something else, silently. Now refused, naming the
    arguments that do exist."""
    q, v, m = fg.Input((6, 4)), fg.Input((6, 4)), fg.Input((6,), dtype="bool")
    with pytest.raises(TypeError, match="takes no mask=.*value_mask=, key_mask= or attention_mask="):
        fg.layers.MultiHeadAttention(2, 2)(q, v, mask=m)
    with pytest.raises(TypeError, match="takes no mask="):
        fg.layers.MultiHeadAttention(2, 2)(np.zeros((1, 6, 4), "float32"), np.zeros((1, 6, 4), "float32"),
                                           mask=np.ones((1, 6), bool))


def test_mask_argument_refused_where_keras_takes_none():
    """fastgru's graphs took ``mask=`` for any layer; Keras 3 refuses it where the layer's call takes none (Dense, a
    merge), and a file saved with it did not open in Keras. Now a TypeError saying so; the layers whose Keras call
    takes a mask (recurrent layers, Attention, GlobalAveragePooling1D, ...) still take it."""
    x, m = fg.Input((5, 3)), fg.Input((5,), dtype="bool")
    with pytest.raises(TypeError, match="takes no mask="):
        fg.layers.Dense(2)(x, mask=m)
    with pytest.raises(TypeError, match="takes no mask="):
        fg.layers.Concatenate()([x, x], mask=[m, None])
    h = fg.layers.GRU(4, return_sequences=True)(x, mask=m)
    pooled = fg.layers.GlobalAveragePooling1D()(h, mask=m)
    model = fg.Model([x, m], pooled)
    keep = np.ones((2, 5), bool)
    keep[0, 3:] = False
    assert model.predict([np.ones((2, 5, 3), "float32"), keep]).shape == (2, 4)


@pytest.mark.keras
def test_layer_input_and_output_build_feature_extractors_as_keras(keras, tmp_path):
    """``layer.output`` / ``layer.input`` (the tensors of the layer's first call) were AttributeErrors; the Keras
    seq2seq example rebuilds its inference encoder with them, and feature extractors are ``Model(model.input,
    layer.output)``. Now Keras's tensors, on loaded and on fastgru-built models."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 4))
    seq, h, c = keras.layers.LSTM(8, return_state=True, return_sequences=True, name="enc")(inp)
    head = keras.layers.Dense(2, name="head")
    keras.Model(inp, head(keras.layers.GlobalAveragePooling1D()(seq))).save(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    expected = keras.Model(theirs.input, theirs.get_layer("enc").output[1:]).predict(x, verbose=0)
    got = fg.Model(ours.input, ours.get_layer("enc").output[1:]).predict(x)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    pooled = fg.Model(ours.input, ours.get_layer("head").input).predict(x)
    np.testing.assert_allclose(pooled, keras.Model(theirs.input, theirs.get_layer("head").input).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(AttributeError, match="never been called"):
        _ = fg.layers.Dense(3).output
