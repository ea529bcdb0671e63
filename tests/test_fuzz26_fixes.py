"""Fixes from the twenty-fifth session's Keras-parity fuzz round (each test says what was wrong)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.keras
def test_auc_counts_a_nan_prediction_below_every_threshold_as_keras(keras):
    """AUC raised IndexError on a NaN prediction (its bucket index was the cast of NaN to int32): Keras drops that
    index from its bucket sums, so the example counts as below every threshold."""
    rng = np.random.default_rng(0)
    y = (rng.random((12, 3)) > 0.5).astype("float32")
    p = rng.random((12, 3)).astype("float32")
    p[[0, 3, 7], [0, 2, 1]] = np.nan
    for kwargs in ({}, {"multi_label": True}, {"thresholds": [0.2, 0.5, 0.7]}, {"curve": "PR"},
                   {"summation_method": "minoring", "num_thresholds": 7}):
        theirs, ours = keras.metrics.AUC(**kwargs), fg.metrics.AUC(**kwargs)
        theirs.update_state(y, p)
        ours.update_state(y, p)
        np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-6, err_msg=str(kwargs))


@pytest.mark.keras
def test_fit_with_auc_over_an_all_padding_row_reports_keras_numbers(keras):
    """A masked mean over an all-padding row is NaN in Keras and in fastgru; fit then crashed in AUC."""
    L = keras.layers
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 9, size=(8, 7))
    tokens[0] = 0
    y = (rng.random((8, 1)) > 0.5).astype("float32")
    keras.utils.set_random_seed(9)
    inputs = keras.Input((7,), dtype="int32")
    pooled = L.GlobalAveragePooling1D()(L.GRU(5, return_sequences=True)(L.Embedding(9, 4, mask_zero=True)(inputs)))
    km = keras.Model(inputs, L.Dense(1, activation="sigmoid")(pooled))
    km.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=[keras.metrics.AUC()])
    ours = fg.from_keras(km)
    theirs = km.fit(tokens, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history
    mine = ours.fit(tokens, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history
    key = next(k for k in theirs if k.startswith("auc"))  # ("auc_1" after another AUC in this session)
    np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-6)
    assert np.isnan(mine["loss"]).all() and np.isnan(theirs["loss"]).all()


@pytest.mark.keras
@pytest.mark.parametrize("name", ["Lamb", "Adafactor"])
def test_lamb_and_adafactor_train_as_keras(keras, tmp_path, name):
    """Keras 3's Lamb and Adafactor were missing (``fg.optimizers.Lamb`` an AttributeError, a file compiled with
    them loaded uncompiled). Trained alongside Keras: an Embedding with repeated ids (row gradients), a Conv1D
    (a 3-D kernel: Adafactor factors its last two axes), a GRU and a Dense (2-D kernels, 1-D biases); from a
    compiled file and from the live model, with clipping and a schedule."""
    L, O = keras.layers, keras.optimizers
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 6, size=(10, 8))
    y = rng.normal(size=(10, 2)).astype("float32")
    for options in ({}, {"clipnorm": 0.5}, {"learning_rate": O.schedules.ExponentialDecay(0.02, 2, 0.8)}):
        keras.utils.set_random_seed(3)
        km = keras.Sequential([keras.Input((8,), dtype="int32"), L.Embedding(6, 4), L.Conv1D(5, 3, padding="same"),
                               L.GRU(4), L.Dense(2)])
        km.compile(getattr(O, name)(**{"learning_rate": 0.02, **options}), "mse")
        km.save(tmp_path / "m.keras")
        ours = fg.load_model(tmp_path / "m.keras")
        assert type(ours.optimizer).__name__ == name
        live = fg.from_keras(km)
        theirs = km.fit(tokens, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
        for model in (ours, live):
            mine = model.fit(tokens, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, err_msg=str(options))
            for a, b in zip(model.get_weights(), km.get_weights()):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        if not options:  # written back with its state, Keras goes on from where fastgru left off
            ours.save(tmp_path / "back.keras")
            again = keras.models.load_model(tmp_path / "back.keras")
            assert int(again.optimizer.iterations) == 9
            np.testing.assert_allclose(ours.fit(tokens, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"],
                                       again.fit(tokens, y, epochs=1, batch_size=4, shuffle=False, verbose=0).history["loss"],
                                       rtol=1e-5)


def test_keras_optimizers_fastgru_lacks_are_named():
    """``fg.optimizers.Muon`` was a bare AttributeError; it now says that Keras's optimizer is not implemented
    and what fastgru has (Muon and ScheduleFreeAdamW since the thirtieth session: MultiOptimizer)."""
    with pytest.raises(AttributeError, match="Keras's MultiOptimizer is not implemented in fastgru .*Lamb.*Muon"):
        getattr(fg.optimizers, "MultiOptimizer")  # noqa: B009
    with pytest.raises(AttributeError, match="has no attribute 'Nonesuch'"):
        getattr(fg.optimizers, "Nonesuch")  # noqa: B009
    assert isinstance(fg.optimizers.get("lamb"), fg.optimizers.Lamb)
    assert fg.optimizers.get({"class_name": "Adafactor", "config": {"learning_rate": 0.1}}).get_config()[
        "relative_step"] is True


@pytest.mark.keras
@pytest.mark.parametrize("cell", ["GRU", "LSTM", "SimpleRNN"])
def test_saturated_gates_give_keras_gradients_for_large_inputs(keras, cell):
    """float32's rational tanh and sigmoid stopped 1-2 ulps short of 1 (and 0) beyond their clamps, where
    TensorFlow's reach it exactly; BPTT takes the derivative from the output (1 - y^2, y (1 - y)), so a
    saturated unit had a derivative of ~1e-7 instead of 0, and an input of 1e8 made the input kernel's
    gradient wrong by ~5 (1e30: NaN losses). Now exactly saturated: Keras's gradients and losses."""
    import tensorflow as tf

    L = keras.layers
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(4, 6, 3)).astype("float32")
    y = rng.normal(size=(4, 1)).astype("float32")
    for magnitude in (1e5, 1e8, 1e30):
        x = x0.copy()
        x[2, 3, 0] = magnitude
        keras.utils.set_random_seed(0)
        km = keras.Sequential([keras.Input((6, 3)), getattr(L, cell)(5), L.Dense(1)])
        before = km.get_weights()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((km(x) - y) ** 2)
        expected = [g.numpy() for g in tape.gradient(loss, km.trainable_variables)]
        ours = fg.from_keras(km)
        ours.compile(fg.optimizers.SGD(1.0), "mse")
        ours.train_on_batch(x, y)
        for w0, w1, g in zip(before, ours.get_weights(), expected):
            np.testing.assert_allclose(w0 - w1, g, rtol=1e-4, atol=2e-6, err_msg=f"{cell} {magnitude:g}")


def test_compile_takes_keras_execution_options():
    """``compile(run_eagerly=True)`` (or ``jit_compile``, ``steps_per_execution``, ``auto_scale_loss``) was a
    bare TypeError; Keras scripts pass them. They change nothing in fastgru (its steps are always eager), and
    are checked as Keras checks them."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(8, 5, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")
    inputs = fg.layers.Input((5, 3))
    histories = []
    for make in (lambda: fg.Sequential([fg.layers.Input((5, 3)), fg.layers.GRU(4), fg.layers.Dense(2)]),
                 lambda: fg.Model(inputs, fg.layers.Dense(2)(fg.layers.GRU(4)(inputs)))):
        for options in ({}, {"run_eagerly": True, "jit_compile": False, "steps_per_execution": 2,
                             "auto_scale_loss": True}):
            model = make()
            model.set_weights([np.full(w.shape, 0.1, w.dtype) for w in model.get_weights()])
            model.compile("adam", "mse", **options)
            histories.append(model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
        with pytest.raises(ValueError, match="steps_per_execution` must be a positive integer"):
            model.compile("adam", "mse", steps_per_execution=0)
        with pytest.raises(TypeError, match="run_eagerly` must be True or False"):
            model.compile("adam", "mse", run_eagerly="yes")
        with pytest.raises(TypeError, match="unexpected keyword argument 'run_eagerley'"):
            model.compile("adam", "mse", run_eagerley=True)
    for history in histories[1:]:
        np.testing.assert_array_equal(history, histories[0])
