"""``Precision`` and ``Recall`` against Keras's: streamed over batches, with sample weights, several
thresholds and ``class_id``; compiled into a model, the history's values equal Keras's."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg


@pytest.mark.parametrize("name", ["Precision", "Recall"])
@pytest.mark.parametrize("kwargs", [{}, {"thresholds": [0.2, 0.5, 0.9]}, {"class_id": 1}, {"thresholds": 0.3},
                                    {"top_k": 1}, {"top_k": 2, "class_id": 1}, {"top_k": 2, "thresholds": [0.2, 0.6]}])
def test_streamed_values_match_keras(keras, name, kwargs):
    rng = np.random.default_rng(1)
    ours, theirs = getattr(fg.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for _ in range(3):
        y_true = rng.integers(0, 2, (6, 3)).astype(np.float32)
        y_pred = rng.random((6, 3)).astype(np.float32)
        y_pred[0, :2] = 0.7  # (a tie: top_k keeps the lower index, as TensorFlow's top_k)
        weight = rng.random(6).astype(np.float32)
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
    np.testing.assert_allclose(ours.result(), np.asarray(theirs.result()), rtol=1e-6)
    ours.reset_state()
    assert np.shape(ours.result()) == np.shape(theirs.result())  # (several thresholds: an array, as Keras's)
    np.testing.assert_array_equal(ours.result(), np.zeros(np.shape(theirs.result())))


def test_compiled_precision_and_recall_as_keras(keras):
    rng = np.random.default_rng(2)
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(w.dtype) for w in model.get_weights()])
    x = rng.standard_normal((20, 5, 3)).astype(np.float32)
    y = rng.integers(0, 2, (20, 1)).astype(np.float32)
    ours = fg.from_keras(model)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[keras.metrics.Precision(name="precision"),
                                                                         keras.metrics.Recall(name="recall")])
    ours.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[fg.metrics.Precision(name="precision"),
                                                                       fg.metrics.Recall(name="recall")])
    want = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    for key in ("precision", "recall", "loss"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5)
    # Keras's own metric objects given to fastgru's compile: read through their configs
    ours.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[keras.metrics.Precision(thresholds=0.4, name="precision")])
    assert ours.evaluate(x, y, verbose=0, return_dict=True)["precision"] >= 0.0


def test_bad_top_k_and_thresholds_are_refused():
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        fg.metrics.Precision(top_k=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fg.metrics.Recall(thresholds=[0.5, 1.5])


def test_precision_and_recall_ignore_the_outputs_mask_and_take_keras_names():
    """Keras 3 applies an output's mask to its mean metrics only: Precision/Recall count masked steps too; the
    names "precision" and "recall" work in compile, as in Keras."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, (4, 5, 1)).astype("float32")
    y_pred = rng.uniform(size=(4, 5, 1)).astype("float32")
    mask = np.arange(5)[None, :] < np.array([[2], [5], [3], [1]])
    for name in ("precision", "recall"):
        masked, plain = fg.metrics.get(name), fg.metrics.get(name)
        masked.update_state(y_true, y_pred, mask=mask)
        plain.update_state(y_true, y_pred)
        assert masked.name == name and masked.result() == plain.result()


def test_masked_sequence_precision_recall_auc_against_keras(keras):
    rng = np.random.default_rng(0)
    # (Keras's weights seeded: with fresh ones in every run, a prediction now and then fell within a rounding
    # error of one of AUC's 200 thresholds, and the two frameworks' last-bit differences put it in other bins)
    keras.utils.set_random_seed(0)

    def build(mod):
        return mod.Sequential([mod.Input((5, 3)), mod.layers.Masking(0.0), mod.layers.GRU(4, return_sequences=True),
                               mod.layers.Dense(1, activation="sigmoid")])

    km, ours = build(keras), build(fg)
    ours.set_weights(km.get_weights())
    x = rng.normal(size=(6, 5, 3)).astype("float32")
    x[:, 3:] = 0
    y = rng.integers(0, 2, (6, 5, 1)).astype("float32")
    for model in (km, ours):
        model.compile("sgd", "binary_crossentropy", metrics=["precision", "recall", "auc", "accuracy"])
    expected = km.evaluate(x, y, verbose=0, return_dict=True)
    got = ours.evaluate(x, y, verbose=0, return_dict=True)
    assert sorted(got) == sorted(expected)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, err_msg=k)
