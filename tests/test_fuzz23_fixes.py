"""Fixes from the twenty-third session's review and Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg


def test_negative_token_ids_match_keras(keras, tmp_path):
    """fastgru refused an id below 0; Keras's lookup takes -k as row input_dim - k (and its mask_zero mask sees a
    nonzero id there), in prediction and in training."""
    rng = np.random.default_rng(0)
    x = rng.integers(-6, 6, size=(8, 5))
    x[:, -1] = 0
    y = rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(6, 4, mask_zero=True),
                           keras.layers.GRU(3), keras.layers.Dense(1)])
    assert_keras_parity(keras, km, x, y, tmp_path, "mse", suffixes=(".keras",))


@pytest.mark.parametrize("layer", [fg.layers.GRU(3), fg.layers.LSTM(3, return_sequences=True),
                                   fg.layers.SimpleRNN(3), fg.layers.Bidirectional(fg.layers.GRU(3))])
def test_recurrent_layers_refuse_inputs_without_steps(layer):
    """A (batch, 0, features) input ran no step and answered the initial state (a model then predicted its Dense
    biases), where Keras fails: now a ValueError that names the shape, in predict and in fit."""
    model = fg.Sequential([fg.layers.Input((None, 4)), layer])
    x = np.zeros((2, 0, 4), np.float32)
    with pytest.raises(ValueError, match=r"needs at least one time step, received input shape \(2, 0, 4\)"):
        model.predict(x)
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="needs at least one time step"):
        model.fit(x, np.zeros((2,) + tuple(d or 0 for d in model.output_shape[1:]), np.float32), verbose=0)


def test_files_of_keras_3_0_to_3_5_name_their_initializers_without_a_warning(keras, tmp_path):
    """Keras 3.0-3.5 write a recurrent kernel's initializer as class "OrthogonalInitializer" (and Identity as
    "IdentityInitializer"); fastgru warned on every recurrent layer that it did not know them. The file here is
    a Keras 3.15 file with the names those versions write."""
    import json
    import warnings
    import zipfile

    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, return_sequences=True),
                           keras.layers.SimpleRNN(2, recurrent_initializer="identity")])
    km.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as src, zipfile.ZipFile(tmp_path / "old.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert '"class_name": "Orthogonal"' in text and '"class_name": "Identity"' in text
                data = text.replace('"class_name": "Orthogonal"', '"class_name": "OrthogonalInitializer"').replace(
                    '"class_name": "Identity"', '"class_name": "IdentityInitializer"').encode()
                assert json.loads(data)
            dst.writestr(item, data)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = fg.load_model(tmp_path / "old.keras")
    np.testing.assert_allclose(ours.predict(x), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert ours.layers[-1].recurrent_initializer["class_name"] == "IdentityInitializer"
    fresh = fg.layers.SimpleRNN(3, recurrent_initializer="identity")
    fresh.build((None, 4, 2))
    np.testing.assert_array_equal(fresh.get_weights()[1], np.asarray(keras.initializers.Identity()((3, 3))))


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_a_keras_3_h5_file_resumes_its_optimizer_as_its_keras_file(keras, tmp_path, optimizer):
    """A Keras 3 legacy .h5 file saves the optimizer's variables (optimizer_weights: adam/iteration,
    adam/learning_rate, the slots); fastgru read them from tf_keras files only and started a Keras 3 file's
    optimizer afresh (Keras's own load_model takes the count and the rate, then cannot train: "Unknown
    variable"). Now the .h5 resumes training to the same numbers as the .keras file Keras saved beside it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 5, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(1)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    km.compile(optimizer, "mse")
    km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    km.save(tmp_path / "m.keras")
    km.save(tmp_path / "m.h5")
    from_keras_file = fg.load_model(tmp_path / "m.keras")
    from_h5 = fg.load_model(tmp_path / "m.h5")
    assert from_h5.optimizer.iterations == from_keras_file.optimizer.iterations == 4
    expected = km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
    for ours in (from_keras_file, from_h5):
        got = ours.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"]
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    for a, b in zip(from_h5.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_sequential_models_targets_dict_is_keyed_by_its_output():
    """A Sequential model took targets {"any name": y} (a Functional model named the unknown key); now the key
    must be its output layer's name, as a Functional model's."""
    model = fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(1, name="out")])
    model.compile("sgd", "mse")
    x, y = np.zeros((4, 5, 3), np.float32), np.ones((4, 1), np.float32)
    for call, kwargs in ((model.fit, {"verbose": 0}), (model.evaluate, {"verbose": 0}), (model.train_on_batch, {})):
        with pytest.raises(ValueError, match=r"has one output, 'out'; the targets dict is keyed \['wrong'\]"):
            call(x, {"wrong": y}, **kwargs)
    assert np.isfinite(model.evaluate(x, {"out": y}, verbose=0))


def test_sgd_under_a_schedule_resumes_its_step_count(keras, tmp_path):
    """A plain SGD (no momentum, so no slots) under a learning-rate schedule saves its step count alone; fastgru
    took fewer than two saved arrays for none and restarted the schedule at step 0 (a rate 100 times larger here)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 3)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(4), keras.layers.Dense(1)])
    km.compile(keras.optimizers.SGD(keras.optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.001])), "mse")
    km.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    km.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    assert ours.optimizer.iterations == 4
    expected = km.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"],
                               expected, rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("optimizer,options,tokens", [
    ("Adam", {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3}, False),
    ("SGD", {"gradient_accumulation_steps": 3, "clipnorm": 0.1, "momentum": 0.5}, True),
    ("Adam", {"gradient_accumulation_steps": 2, "use_ema": True}, False),
    ("RMSprop", {"loss_scale_factor": 128.0}, False),
])
def test_keras_optimizer_averaging_and_accumulation_options(keras, tmp_path, optimizer, options, tokens):
    """use_ema (moving averages, written into the weights every ema_overwrite_frequency steps and at the end of
    fit), gradient_accumulation_steps (an update every n-th batch from the mean gradient; Keras's step count
    counts the batches) and loss_scale_factor were refused, in code and in files (a file compiled with one loaded
    uncompiled). Now they train as Keras, resume from Keras's file and save for Keras to resume."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 9, size=(24, 6)) if tokens else rng.normal(size=(24, 6, 3)).astype("float32")
    y = rng.normal(size=(24, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    head = [keras.Input((6,), dtype="int32"), keras.layers.Embedding(9, 3)] if tokens else [keras.Input((6, 3))]
    km = keras.Sequential(head + [keras.layers.GRU(4), keras.layers.Dense(1)])
    ours = fg.from_keras(km)
    km.compile(getattr(keras.optimizers, optimizer)(0.02, **options), "mse")
    ours.compile(getattr(fg.optimizers, optimizer)(0.02, **options), "mse")

    def fit(model, epochs):
        return model.fit(x, y, epochs=epochs, batch_size=4, shuffle=False, verbose=0).history["loss"]

    np.testing.assert_allclose(fit(ours, 2), fit(km, 2), rtol=1e-5)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    km.save(tmp_path / "keras.keras")
    resumed = fg.load_model(tmp_path / "keras.keras")
    assert resumed.optimizer.get_config()["use_ema"] == options.get("use_ema", False)
    np.testing.assert_allclose(fit(resumed, 1), fit(km, 1), rtol=1e-5)
    for a, b in zip(resumed.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    resumed.save(tmp_path / "ours.keras")
    theirs = keras.saving.load_model(tmp_path / "ours.keras")
    assert int(theirs.optimizer.iterations.numpy()) == resumed.optimizer.iterations
    np.testing.assert_allclose(fit(theirs, 1), fit(resumed, 1), rtol=1e-5)


def test_optimizer_averaging_options_are_checked():
    for bad in ({"use_ema": True, "ema_momentum": 1.5}, {"gradient_accumulation_steps": 1},
                {"ema_overwrite_frequency": 0}, {"loss_scale_factor": -1.0}, {"use_ema": "yes"}):
        with pytest.raises(ValueError, match=next(iter(bad)) if "ema_momentum" not in bad else "ema_momentum"):
            fg.optimizers.Adam(**bad)


def test_metrics_made_without_a_name_are_numbered_as_keras(keras):
    """Keras names an AUC, Precision or Recall made without a name auc, auc_1, ... over the process (a notebook
    cell run twice logs auc_1); fastgru always said auc. A string in compile takes a number too, and keeps the
    string as its name."""
    from fastgru.training import metric_base

    metric_base._NAME_UIDS.clear()
    keras_first = keras.metrics.AUC().name  # (Keras's own count depends on the tests run before)
    assert [fg.metrics.AUC().name, fg.metrics.AUC().name, fg.metrics.Precision().name] == ["auc", "auc_1",
                                                                                            "precision"]
    assert keras.metrics.AUC().name == _numbered(keras_first, 1)
    model = fg.Sequential([fg.layers.Input((3,)), fg.layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["auc", fg.metrics.AUC(name="x")])
    assert sorted(model.fit(np.zeros((4, 3)), np.ones((4, 1)), verbose=0).history) == ["auc", "loss", "x"]
    assert fg.metrics.AUC().name == "auc_3"  # (the string took auc_2)


def _numbered(name: str, more: int) -> str:
    base, _, number = name.rpartition("_")
    if not number.isdigit():
        base, number = name, "0"
    return f"{base}_{int(number) + more}"


def test_a_multi_output_models_flat_metrics_list_gives_one_entry_per_output(keras):
    """Keras 3 takes metrics=["mae", "mse"] for a two-output model as one metric (or list) per output; fastgru
    asked for a dict or a list of lists."""
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    keys = {}
    for lib in (keras, fg):
        inp = lib.Input((3,)) if lib is keras else fg.layers.Input((3,))
        model = (keras.Model if lib is keras else fg.Model)(inp, [lib.layers.Dense(1, name="a")(inp),
                                                                  lib.layers.Dense(1, name="b")(inp)])
        model.compile("adam", "mse", metrics=["mae", ["mse", "mae"]])
        keys[lib.__name__] = sorted(model.fit(x, [x[:, :1], x[:, 1:2]], verbose=0).history)
    with pytest.raises(ValueError, match="one entry .* per output; received \\['mae'\\]"):  # (Keras: at fit)
        model.compile("adam", "mse", metrics=["mae"])
    assert keys["fastgru"] == keys["keras"] == ["a_loss", "a_mae", "b_loss", "b_mae", "b_mse", "loss"]
