"""``Precision`` and ``Recall`` against Keras's: streamed over batches, with sample weights, several
thresholds and ``class_id``; compiled into a model, the history's values equal Keras's."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.parametrize("name", ["Precision", "Recall"])
@pytest.mark.parametrize("kwargs", [{}, {"thresholds": [0.2, 0.5, 0.9]}, {"class_id": 1}, {"thresholds": 0.3}])
def test_streamed_values_match_keras(keras, name, kwargs):
    rng = np.random.default_rng(1)
    ours, theirs = getattr(fg.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for _ in range(3):
        y_true = rng.integers(0, 2, (6, 3)).astype(np.float32)
        y_pred = rng.random((6, 3)).astype(np.float32)
        weight = rng.random(6).astype(np.float32)
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-6)
    ours.reset_state()
    assert ours.result() == (0.0 if np.ndim(theirs.result()) == 0 else [0.0] * 3)


def test_compiled_precision_and_recall_as_keras(keras):
    rng = np.random.default_rng(2)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])
    x = rng.standard_normal((20, 5, 3)).astype(np.float32)
    y = rng.integers(0, 2, (20, 1)).astype(np.float32)
    ours = fg.from_keras(model)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[keras.metrics.Precision(name="precision"),
                                                                         keras.metrics.Recall(name="recall")])
    ours.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[fg.metrics.Precision(), fg.metrics.Recall()])
    want = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    for key in ("precision", "recall", "loss"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5)
    # Keras's own metric objects given to fastgru's compile: read through their configs
    ours.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[keras.metrics.Precision(thresholds=0.4, name="precision")])
    assert ours.evaluate(x, y, verbose=0, return_dict=True)["precision"] >= 0.0


def test_top_k_and_bad_thresholds_are_refused():
    with pytest.raises(ValueError, match="top_k"):
        fg.metrics.Precision(top_k=2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fg.metrics.Recall(thresholds=[0.5, 1.5])
