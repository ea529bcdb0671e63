"""``compile`` with Keras's own optimizer, loss and metric objects (read through their configs, Keras
never imported by fastgru): the same training as with fastgru's names, and against live Keras."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input
from fastgru.training import keras_objects, losses, metrics, optimizers


def _model(weights=None):
    model = fg.Sequential([Input((5, 3)), GRU(4), Dense(2)])
    if weights is not None:
        model.set_weights(weights)
    return model


def test_keras_objects_compile_to_the_same_training_as_fastgru_names(keras, rng):
    x = rng.standard_normal((8, 5, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)
    start = _model().get_weights()
    ours = _model(start)
    ours.compile(optimizer=optimizers.Adam(0.01, clipnorm=1.0), loss=losses.Huber(delta=0.3), metrics=["mae"])
    from_keras = _model(start)
    from_keras.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0), loss=keras.losses.Huber(delta=0.3),
                       metrics=[keras.metrics.MeanAbsoluteError()])
    assert type(from_keras.optimizer).__name__ == "Adam" and from_keras.optimizer.clipnorm == 1.0
    assert from_keras.loss.delta == 0.3  # Keras's Huber.get_config leaves delta out: read from the wrapper
    for _ in range(3):
        a = ours.train_on_batch(x, y)
        b = from_keras.train_on_batch(x, y)
        np.testing.assert_array_equal(np.ravel(a), np.ravel(b))
    for wa, wb in zip(ours.get_weights(), from_keras.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # and Keras itself, compiled with the same objects, trains to the same weights
    k = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(2)])
    k.set_weights(start)
    k.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0), loss=keras.losses.Huber(delta=0.3))
    for _ in range(3):
        k.train_on_batch(x, y)
    for wk, wb in zip(k.get_weights(), from_keras.get_weights()):
        np.testing.assert_allclose(wb, wk, rtol=1e-4, atol=1e-5)


def test_keras_functions_and_classes_map_to_fastgru_ones(keras):
    assert isinstance(losses.get(keras.losses.mean_squared_error), losses.MeanSquaredError)
    bce = losses.get(keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1))
    assert bce.from_logits and bce.label_smoothing == pytest.approx(0.1)
    sgd = optimizers.get(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True))
    assert isinstance(sgd, optimizers.SGD) and sgd.momentum == pytest.approx(0.9) and sgd.nesterov
    assert isinstance(metrics.get(keras.metrics.BinaryAccuracy(threshold=0.3)), metrics.BinaryAccuracy)
    auc = metrics.get(keras.metrics.AUC(curve="PR", label_weights=[1.0, 2.0], name="pr_auc"))
    assert isinstance(auc, metrics.AUC) and auc.curve == "PR" and auc.label_weights.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="unsupported metric class 'MeanMetricWrapper'"):
        metrics.get(keras.metrics.MeanMetricWrapper(keras.metrics.mean_squared_error))
    with pytest.raises(ValueError, match="unsupported loss class 'Circle'"):
        losses.get(keras.losses.Circle())


def test_objects_from_elsewhere_are_not_taken_for_keras_ones():
    assert keras_objects.keras_config(np.float32(1.0)) is None
    assert keras_objects.keras_config(lambda a, b: a) is None
    with pytest.raises(ValueError, match="could not interpret loss identifier"):
        losses.get(object())
