"""Fixes from the twenty-sixth session (the twenty-seventh and twenty-eighth Keras-parity fuzz rounds; each test
says what was wrong)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastgru as fg


def _val_data(rng, n):
    return rng.normal(size=(n, 5, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


@pytest.mark.keras
def test_fit_validation_steps_and_evaluate_steps_as_keras(keras):
    """``fit(validation_steps=)`` and ``evaluate(steps=)`` were a bare TypeError (unexpected keyword argument).
    Keras 3 validates the first ``validation_steps`` batches every epoch, and ``evaluate(steps=)`` takes the
    first ``steps`` batches (all of them, with a warning, when there are fewer). The same numbers as Keras."""
    rng = np.random.default_rng(0)
    x, y = _val_data(rng, 8)
    val = _val_data(rng, 10)  # (3 batches of 4)
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.from_keras(km)
    km.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"])
    ours.compile(fg.optimizers.Adam(0.01), "mse", metrics=["mae"])
    args = dict(batch_size=4, epochs=4, shuffle=False, verbose=0, validation_data=val, validation_steps=2)
    expected = km.fit(x, y, **args).history
    mine = ours.fit(x, y, **args).history
    assert len(set(mine["val_loss"])) == 4  # (the model changes between epochs: not one value repeated)
    assert mine.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(mine[key], values, rtol=1e-5, err_msg=key)
    for steps in (1, 2):
        np.testing.assert_allclose(ours.evaluate(*val, batch_size=4, steps=steps, verbose=0),
                                   km.evaluate(*val, batch_size=4, steps=steps, verbose=0), rtol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (Keras warns that the data ran out, as fastgru does)
        np.testing.assert_allclose(ours.evaluate(*val, batch_size=4, steps=7, verbose=0),
                                   km.evaluate(*val, batch_size=4, steps=7, verbose=0), rtol=1e-5)


def test_evaluate_steps_counts_batches_and_refuses_bad_values():
    rng = np.random.default_rng(1)
    inputs = fg.Input((5, 3))
    model = fg.Model(inputs, fg.layers.Dense(1)(fg.layers.GRU(3)(inputs)))
    model.compile("adam", "mse")
    x, y = _val_data(rng, 9)
    assert model.evaluate(x, y, batch_size=4, steps=1, verbose=0) == pytest.approx(
        model.evaluate(x[:4], y[:4], verbose=0), rel=1e-6)
    assert model.evaluate(x, y, batch_size=4, steps=2, verbose=0) == pytest.approx(
        model.evaluate(x[:8], y[:8], batch_size=4, verbose=0), rel=1e-6)
    with pytest.warns(UserWarning, match="ran out of batches .* evaluate's steps=4"):
        assert model.evaluate(x, y, batch_size=4, steps=4, verbose=0) == pytest.approx(
            model.evaluate(x, y, batch_size=4, verbose=0), rel=1e-6)
    for bad, error in ((0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="steps"):
            model.evaluate(x, y, steps=bad, verbose=0)
        with pytest.raises(error, match="validation_steps"):
            model.fit(x, y, validation_data=(x, y), validation_steps=bad, verbose=0)
    model.compile(fg.optimizers.SGD(0.0), "mse")  # (the weights stay: every validation sees the same model)
    val_loss = model.fit(x, y, batch_size=4, epochs=2, validation_data=(x, y), validation_steps=1,
                         verbose=0).history["val_loss"]
    np.testing.assert_allclose(val_loss, model.evaluate(x[:4], y[:4], verbose=0), rtol=1e-6)
    with pytest.warns(UserWarning, match="ran out of batches .* validation_steps=5"):
        model.fit(x, y, batch_size=4, validation_data=(x, y), validation_steps=5, verbose=0)


@pytest.mark.keras
def test_sequential_from_config_is_built_as_keras(keras):
    """``from_config(get_config())`` of a model with no Input layer of its own (one made by ``from_keras`` or
    ``build``) gave a model with no weights: its config did not say the input shape. The config now carries
    Keras 3's ``build_input_shape``, and ``from_config`` builds the model for it, as Keras does."""
    L = keras.layers
    i = keras.Input((6, 3))
    km = keras.Model(i, L.Dense(2)(L.Bidirectional(L.LSTM(3))(L.GRU(5, return_sequences=True)(i))))
    x = np.random.default_rng(2).normal(size=(5, 6, 3)).astype("float32")
    built = fg.Sequential([fg.layers.GRU(4), fg.layers.Dense(2)])
    built.build((None, 6, 3))
    for model in (fg.from_keras(km), built):
        config = model.get_config()
        assert config["build_input_shape"] == [None, 6, 3]
        copy = type(model).from_config(config)
        assert copy.built and len(copy.get_weights()) == len(model.get_weights())
        copy.set_weights(model.get_weights())
        np.testing.assert_array_equal(copy.predict(x), model.predict(x))
        theirs = keras.Sequential.from_config(config)  # (Keras builds from the same entry)
        assert len(theirs.get_weights()) == len(model.get_weights())


@pytest.mark.keras
@pytest.mark.parametrize("inner", ["flatten_bn", "gru_bn_pool"])
def test_time_distributed_nested_model_with_batchnorm_trains_as_keras(keras, inner):
    """``TimeDistributed(Sequential([... BatchNormalization ...]))`` trained on all B*T rows at once: Keras 3 calls
    the inner model once per step, so a training BatchNormalization inside takes each step's statistics (and
    moves its moving statistics once per step). fastgru did that for a BatchNormalization directly inside only;
    a nested model holding one now runs step by step too. Loss history, weights and moving statistics as Keras's."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3, 5, 4)).astype("float32")
    y = rng.integers(0, 3, 8)
    keras.utils.set_random_seed(0)
    body = ([L.Flatten(), L.BatchNormalization()] if inner == "flatten_bn" else
            [L.GRU(6, return_sequences=True), L.BatchNormalization(), L.GlobalMaxPooling1D()])
    km = keras.Sequential([keras.Input((3, 5, 4)), L.TimeDistributed(keras.Sequential([keras.Input((5, 4))] + body)),
                           L.GRU(4), L.Dense(3, activation="softmax")])
    ours = fg.from_keras(km)
    km.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    ours.compile(fg.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    expected = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, expected, rtol=2e-6)
    for a, b in zip(ours.get_weights(), km.get_weights(), strict=True):  # (the moving statistics among them)
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(ours.predict(x), np.asarray(km(x, training=False)), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_tf_keras_masked_outputs_weight_every_compiled_metric_by_the_mask(tmp_path):
    """A model compiled in a tf_keras file, its output masked (Masking -> GRU(return_sequences)): tf_keras gives
    the output's mask to every compiled metric as its sample_weight (times the samples' weights for the
    weighted metrics); fastgru left the masked steps in AUC, the IoU, confusion-count and RootMeanSquaredError
    metrics (Keras 3's rule: only the mean-of-values metrics take the mask). Now tf_keras's numbers, in
    evaluate, with sample weights, and through fit."""
    tk = pytest.importorskip("tf_keras")
    L, M = tk.layers, tk.metrics
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6, 3)).astype("float32")
    x[:, 5:] = 0
    x[3, 2:] = 0
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, (12, 6))]
    weights = rng.uniform(0.5, 2.0, 12).astype("float32")
    tk.utils.set_random_seed(0)
    km = tk.Sequential([L.Input((6, 3)), L.Masking(0.0), L.GRU(5, return_sequences=True),
                        L.Dense(3, activation="softmax")])
    km.compile(tk.optimizers.Adam(0.01), "categorical_crossentropy",
               metrics=["categorical_accuracy", M.AUC(name="auc"), M.OneHotMeanIoU(3, name="miou"),
                        M.Precision(thresholds=0.3, name="p"), M.RootMeanSquaredError(name="rmse")],
               weighted_metrics=[M.AUC(name="wauc"), M.Recall(thresholds=0.3, name="wr")])
    km.save(tmp_path / "m.h5")
    ours = fg.load_model(tmp_path / "m.h5")
    for sw in (None, weights):
        theirs = km.evaluate(x, y, batch_size=4, sample_weight=sw, verbose=0, return_dict=True)
        mine = ours.evaluate(x, y, batch_size=4, sample_weight=sw, verbose=0, return_dict=True)
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            np.testing.assert_allclose(mine[key], value, rtol=2e-5, err_msg=key)
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    mine = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history
    for key, values in theirs.items():
        np.testing.assert_allclose(mine[key], values, rtol=2e-5, err_msg=key)


@pytest.mark.keras
def test_a_nested_models_call_as_an_output_loads_and_saves_as_keras(keras, tmp_path):
    """Keras 3 numbers a nested Functional model's calls from 1 in ``output_layers`` (node 0 is the one its own
    making left) but from 0 in the layers' inbound nodes. fastgru read both from 0: an output that was a nested
    model's first call took its second call's values (silently wrong), a single call was refused as a missing
    node; and fastgru wrote the output from 0, so Keras read its files' outputs from the wrong call."""
    L = keras.layers
    rng = np.random.default_rng(1)
    keras.utils.set_random_seed(1)
    inner_in = keras.Input((None, 3))
    enc = keras.Model(inner_in, L.GRU(4)(inner_in), name="enc")
    a, b = keras.Input((8, 3)), keras.Input((5, 3))
    x = [rng.normal(size=(3, 8, 3)).astype("float32"), rng.normal(size=(3, 5, 3)).astype("float32")]
    models = {"twice": keras.Model([a, b], [enc(a), L.Dense(2)(enc(b))]),
              "once": keras.Model(a, enc(a)),
              "both": keras.Model([a, b], [enc(b), enc(a)])}
    for name, km in models.items():
        expected = km.predict(x if len(km.inputs) == 2 else x[0], verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        for ext in ("keras", "h5"):
            km.save(tmp_path / f"{name}.{ext}")
            ours = fg.load_model(tmp_path / f"{name}.{ext}")
            mine = ours.predict(x if len(km.inputs) == 2 else x[0])
            for got, want in zip(mine if isinstance(mine, list) else [mine], expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name}.{ext}")
        ours = fg.from_keras(km)
        ours.save(tmp_path / f"{name}_fg.keras")  # fastgru's file, read by Keras: the same outputs
        again = keras.models.load_model(tmp_path / f"{name}_fg.keras").predict(
            x if len(km.inputs) == 2 else x[0], verbose=0)
        for got, want in zip(again if isinstance(again, list) else [again], expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{name} saved by fastgru")


def test_a_model_with_an_unused_input_saves_and_loads(tmp_path):
    """``save`` of a Functional model with an input no output uses raised an internal "Node ... is not in list"
    (the unused Input's node is outside the graph walked from the outputs)."""
    a, unused = fg.Input((5, 3), name="a"), fg.Input((2,), name="unused")
    model = fg.Model([a, unused], fg.layers.GRU(4)(a))
    x = [np.ones((2, 5, 3), np.float32), np.ones((2, 2), np.float32)]
    model.save(tmp_path / "m.keras")
    again = fg.load_model(tmp_path / "m.keras")
    assert again.input_names == model.input_names == ["a", "unused"]
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


@pytest.mark.keras
def test_tf_keras_multi_output_metric_objects_keep_their_names(tmp_path):
    """A tf_keras file of a two-output model compiled with metric objects (``{"c": [AUC(), Precision(name=...)]}``
    or the list-of-lists form) logged ``c_c_auc``: tf_keras stores such a metric as ``c_auc`` and fastgru
    added the output's prefix again (it stripped it from the functions' wrappers only). Now tf_keras's keys and
    values, so that callbacks monitoring ``val_c_auc`` find it."""
    tk = pytest.importorskip("tf_keras")
    L = tk.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5, 3)).astype("float32")
    y = [(rng.uniform(size=(16, 1)) > 0.5).astype("float32"), rng.normal(size=(16, 2)).astype("float32")]
    for metrics in ({"c": ["accuracy", tk.metrics.AUC(), tk.metrics.Precision(name="prec")], "r": "mae"},
                    [["accuracy", tk.metrics.Recall()], [tk.metrics.RootMeanSquaredError()]]):
        tk.utils.set_random_seed(0)
        i = tk.Input((5, 3))
        g = L.GRU(4)(i)
        km = tk.Model(i, [L.Dense(1, activation="sigmoid", name="c")(g), L.Dense(2, name="r")(g)])
        km.compile("adam", ["binary_crossentropy", "mse"], metrics=metrics)
        km.save(tmp_path / "m.h5")
        ours = fg.load_model(tmp_path / "m.h5")
        theirs = tk.models.load_model(tmp_path / "m.h5").fit(x, y, batch_size=8, shuffle=False, verbose=0).history
        mine = ours.fit(x, y, batch_size=8, shuffle=False, verbose=0).history
        assert sorted(mine) == sorted(theirs)
        for key, values in theirs.items():
            np.testing.assert_allclose(mine[key], values, rtol=2e-5, err_msg=key)


@pytest.mark.keras
def test_keras_options_fastgru_lacks_are_unsupported_features_not_damaged_files(keras, tmp_path):
    """An int8-quantized Dense (Keras 3.15 writes its policy as ``QuantizedDTypePolicy`` with ``mode`` and
    ``source_name``, no name) was read as float32 and failed on its variable count (ModelFileError). It is valid
    Keras that fastgru does not implement: ``UnsupportedKerasFeature``, naming the option. (The 1-D layers'
    ``data_format="channels_first"``, refused here once, is implemented: tests/test_channels_first_1d.py.)"""
    L = keras.layers
    i = keras.Input((6, 3))
    km = keras.Model(i, L.Dense(4)(L.GRU(8)(i)))
    km.quantize("int8")
    km.save(tmp_path / "q.keras")
    with pytest.raises(fg.UnsupportedKerasFeature, match="dtype='int8_from_float32' is not supported .a quantized"):
        fg.load_model(tmp_path / "q.keras")
    policy = {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy",
              "config": {"mode": "int8", "source_name": "float32"}}
    with pytest.raises(fg.UnsupportedKerasFeature, match="quantized dtype policy"):
        fg.layers.Dense(3, dtype=policy)


@pytest.mark.keras
@pytest.mark.parametrize("case", ["legacy_rmsprop", "legacy_nadam", "ema_every_2", "ema"])
def test_tf_keras_optimizers_train_as_tf_keras(tmp_path, case):
    """tf_keras's legacy optimizers (``tf_keras.optimizers.legacy``) saved in a ``.keras`` file were read as
    Keras 3's (the legacy mark was looked for under the .h5 files' key only): RMSprop trained to other numbers
    and Nadam's ``decay`` (0.004, its legacy learning-rate decay) was refused. tf_keras's ``use_ema`` averages
    start from the variables' values and always take ``ema_momentum`` (Keras 3's take the variables at the first
    step): with ``ema_overwrite_frequency`` the losses, and after ``fit`` the weights, differed."""
    tk = pytest.importorskip("tf_keras")
    O = tk.optimizers
    make = {"legacy_rmsprop": lambda: O.legacy.RMSprop(0.01), "legacy_nadam": lambda: O.legacy.Nadam(0.01),
            "ema_every_2": lambda: O.Adam(0.01, use_ema=True, ema_overwrite_frequency=2),
            "ema": lambda: O.Adam(0.01, use_ema=True)}[case]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6, 3)).astype("float32")
    y = (rng.random((12, 1)) > 0.5).astype("float32")
    ext = "keras" if case.startswith("legacy") else "h5"
    tk.utils.set_random_seed(0)
    km = tk.Sequential([tk.layers.Input((6, 3)), tk.layers.GRU(5), tk.layers.Dense(1, activation="sigmoid")])
    km.compile(make(), "binary_crossentropy")
    km.save(tmp_path / f"m.{ext}")
    ours = fg.load_model(tmp_path / f"m.{ext}")
    theirs = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, theirs, rtol=2e-6)
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: fg.layers.GRU(5, dropout=0.5), lambda: fg.layers.LSTM(5, recurrent_dropout=0.5),
    lambda: fg.layers.Bidirectional(fg.layers.SimpleRNN(5, dropout=0.5))], ids=["gru", "lstm", "bidirectional"])
def test_a_training_call_draws_recurrent_dropout_as_keras(make):
    """``model(x, training=True)`` (Monte Carlo dropout) ran a recurrent layer's inference path: its ``dropout``
    and ``recurrent_dropout`` were skipped (Keras draws new masks at every training call). Now each training
    call is the training forward's, with fresh masks; inference calls are unchanged."""
    x = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
    for functional in (False, True):
        fg.set_random_seed(3)
        if functional:
            inputs = fg.Input((6, 3))
            model = fg.Model(inputs, make()(inputs))
        else:
            model = fg.Sequential([fg.Input((6, 3)), make()])
        inference = model.predict(x)
        draws = [np.asarray(model(x, training=True)) for _ in range(6)]
        assert all(not np.allclose(d, inference) for d in draws)
        assert np.std(draws, axis=0).mean() > 1e-3
        np.testing.assert_array_equal(np.asarray(model(x, training=False)), inference)
    # the training forward's numbers: two layers of one seed and weights, one called, one run forward
    a, b = (fg.layers.GRU(5, dropout=0.5, recurrent_dropout=0.3, seed=11) for _ in range(2))
    for layer in (a, b):
        layer.build((None, 6, 3))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(np.asarray(a(x, training=True)), b.forward(x, training=True)[0])


def test_training_after_a_trainable_change_asks_for_compile():
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4, name="g"), fg.layers.Dense(1)])
    model.compile("adam", "mse")
    x, y = np.zeros((4, 5, 3), np.float32), np.zeros((4, 1), np.float32)
    model.fit(x, y, verbose=0)
    model.get_layer("g").trainable = False
    with pytest.raises(ValueError, match=r"trainable weights changed .*call compile\(\) again"):
        model.fit(x, y, verbose=0)
    model.compile("adam", "mse")
    model.fit(x, y, verbose=0)


def test_class_weight_on_a_sequence_output_is_refused_by_name():
    """``class_weight`` with a (batch, steps) output failed on a sample weight the user never gave (Keras fails
    too, with a graph error): refused first, saying what to give instead."""
    model = fg.Sequential([fg.Input((6, 3)), fg.layers.LSTM(4, return_sequences=True),
                           fg.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = np.zeros((8, 6, 3), np.float32), np.zeros((8, 6), np.int64)
    with pytest.raises(ValueError, match="class_weight weighs whole samples .* as sample_weight instead"):
        model.fit(x, y, class_weight={0: 1.0, 1: 2.0}, verbose=0)


def test_save_and_load_weights_take_keras_arguments(tmp_path):
    """``save(include_optimizer=...)``, ``save(zipped=...)`` and ``load_weights(skip_mismatch=...)`` were a bare
    TypeError. Keras 3 ignores ``include_optimizer`` for a .keras file, and so does fastgru; ``zipped=False`` (a
    directory) is refused by name; other arguments as Keras (``skip_mismatch`` and sharded weights are now
    supported: tests/test_load_weights_options.py)."""
    model = fg.Sequential([fg.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1)])
    x = np.ones((2, 5, 3), np.float32)
    model.save(tmp_path / "a.keras", include_optimizer=False, zipped=True)
    model.save(tmp_path / "b.keras", save_format="keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "a.keras").predict(x), model.predict(x))
    with pytest.raises(fg.UnsupportedKerasFeature, match="zipped=False"):
        model.save(tmp_path / "c.keras", zipped=False)
    with pytest.raises(ValueError, match=r"not supported: \['compression'\]"):
        model.save(tmp_path / "d.keras", compression=True)
    model.save_weights(tmp_path / "m.weights.h5")
    model.load_weights(tmp_path / "m.weights.h5", skip_mismatch=False)
    with pytest.raises(ValueError, match=r"\.weights\.json"):  # (Keras: sharded weights need a .json map)
        model.save_weights(tmp_path / "n.h5", max_shard_size=1)
    assert not (tmp_path / "c.keras").exists() and not (tmp_path / "d.keras").exists()


@pytest.mark.keras
def test_exclude_from_weight_decay_as_keras(keras):
    """``AdamW(...).exclude_from_weight_decay(var_list=, var_names=)`` was an AttributeError. Now Keras's rule: no
    decay for the listed arrays nor for the variables whose Keras name (``kernel``, ``recurrent_kernel``,
    ``bias``, ``gamma``, ...) a pattern matches; configured before the first step. Trained beside Keras."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    y = rng.normal(size=(16, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((6, 3)), L.GRU(5, name="g"), L.LayerNormalization(name="n"),
                           L.Dense(2, name="d")])
    ours = fg.from_keras(km)
    theirs_opt = keras.optimizers.AdamW(0.01, weight_decay=0.2)
    theirs_opt.exclude_from_weight_decay(var_list=[km.get_layer("d").kernel], var_names=["bias", "gamma"])
    mine_opt = fg.optimizers.AdamW(0.01, weight_decay=0.2)
    mine_opt.exclude_from_weight_decay(var_list=[ours.get_layer("d").weights[0]], var_names=["bias", "gamma"])
    km.compile(theirs_opt, "mse")
    ours.compile(mine_opt, "mse")
    expected = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    mine = ours.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(mine, expected, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        mine_opt.exclude_from_weight_decay(var_names=["kernel"])
    bare = fg.optimizers.SGD(0.1, weight_decay=0.5)
    bare.exclude_from_weight_decay(var_names=["bias"])
    with pytest.raises(ValueError, match="needs the variables' names"):
        bare.apply([np.ones(2, np.float32)], [np.ones(2, np.float32)])
    kept = np.ones(2, np.float32)
    bare.apply([np.zeros(2, np.float32)], [kept], names=["bias"])  # (no gradient, no decay: unchanged)
    np.testing.assert_array_equal(kept, np.ones(2, np.float32))


@pytest.mark.keras
def test_a_float64_model_saved_by_fastgru_keeps_its_float64_input(keras, tmp_path):
    """A float64 Keras file loaded and saved again by fastgru wrote its InputLayer as float32: Keras, reloading
    it, cast the inputs to float32 first (differences of ~1e-8 where the model agrees to 1e-16). The file's input
    dtype is kept, and a fastgru-built Sequential of float64 layers writes float64."""
    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 10, 3))
    km = keras.Sequential([keras.Input((10, 3), dtype="float64"), L.GRU(8, dtype="float64"), L.Dense(1, dtype="float64")])
    km.save(tmp_path / "k.keras")
    ours = fg.load_model(tmp_path / "k.keras")
    built = fg.Sequential([fg.layers.GRU(8, dtype="float64"), fg.layers.Dense(1, dtype="float64")])
    built.build((None, 10, 3))
    built.set_weights(km.get_weights())
    expected = km.predict(x, verbose=0)
    for i, model in enumerate((ours, built)):
        model.save(tmp_path / f"fg{i}.keras")
        again = keras.models.load_model(tmp_path / f"fg{i}.keras")
        assert again.inputs[0].dtype == "float64"
        # (Keras's float64 GRU under a float32 floatx is ~1e-8 from an exact float64 one, fastgru's: the
        # reloaded Keras model is compared with the original Keras model, which the float32 input missed by as much)
        np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-13, atol=1e-15)
