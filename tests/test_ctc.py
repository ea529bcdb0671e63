"""CTC: ``fg.ops.ctc_loss`` against every alignment enumerated (no TensorFlow needed), its gradient against
float64 finite differences, both against Keras's ``ops.ctc_loss`` and TensorFlow's gradient; greedy
``fg.ops.ctc_decode`` against Keras's; a CRNN trained with ``loss="ctc"`` as Keras trains it; bad labels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from keras_parity import assert_keras_parity

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature
from fastgru.ops.ctc import ctc_loss_and_gradient


def _collapse(path, blank):
    out, previous = [], None
    for k in path:
        if k != blank and k != previous:
            out.append(k)
        previous = k
    return out


def _enumerated_loss(logits, labels, blank):
    """-log of the summed probability of every path that collapses to ``labels`` (steps^classes paths)."""
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[1]), repeat=logits.shape[0]):
        if _collapse(path, blank) == list(labels):
            total += np.exp(sum(logp[t, k] for t, k in enumerate(path)))
    return -np.log(total) if total else np.inf


@pytest.mark.parametrize("labels", [[1, 2], [2, 2], [], [1, 2, 1], [2]])
@pytest.mark.parametrize("blank", [0, 2])
def test_loss_sums_every_alignment(rng, labels, blank):
    classes = 3
    labels = [k if k != blank else 1 for k in labels]  # (labels are never the blank)
    logits = rng.normal(size=(1, 5, classes))
    target = np.zeros((1, 4), np.int64)
    target[0, :len(labels)] = labels
    loss = fg.ops.ctc_loss(target, logits, [len(labels)], [5], mask_index=blank)
    np.testing.assert_allclose(loss[0], _enumerated_loss(logits[0], labels, blank), rtol=1e-10)


def test_gradient_matches_finite_differences(rng):
    logits = rng.normal(size=(3, 7, 4))
    target = np.array([[1, 2, 2, 0], [3, 0, 0, 0], [1, 3, 1, 3]])
    label_lengths, logit_lengths = np.array([3, 1, 4]), np.array([7, 5, 7])
    loss, grad = ctc_loss_and_gradient(target, logits, label_lengths, logit_lengths)
    assert np.all(grad[1, 5:] == 0)  # (steps past a sequence's length take no gradient)
    eps = 1e-6
    numeric = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (fg.ops.ctc_loss(target, up, label_lengths, logit_lengths)[index[0]]
                          - fg.ops.ctc_loss(target, down, label_lengths, logit_lengths)[index[0]]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_loss_and_gradient_match_keras(keras):
    import tensorflow as tf

    rng = np.random.default_rng(30)
    logits = rng.normal(size=(5, 12, 6)).astype("float32")
    labels = rng.integers(1, 6, size=(5, 5))
    labels[1, 3:] = 0
    labels[2] = 0
    labels[3, 1] = labels[3, 0]  # (a repeated label: a blank must separate them)
    label_lengths = np.count_nonzero(labels, axis=-1)
    logit_lengths = np.array([12, 10, 5, 12, 1])
    labels[4, 1:] = 0
    label_lengths[4] = 1
    expected = keras.ops.convert_to_numpy(keras.ops.ctc_loss(labels, logits, label_lengths, logit_lengths))
    np.testing.assert_allclose(fg.ops.ctc_loss(labels, logits, label_lengths, logit_lengths), expected, rtol=1e-5)
    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(keras.ops.ctc_loss(labels, variable, label_lengths, logit_lengths))
    _, grad = ctc_loss_and_gradient(labels, logits, label_lengths, logit_lengths)
    np.testing.assert_allclose(grad, tape.gradient(total, variable).numpy(), atol=1e-5)


@pytest.mark.parametrize("merge_repeated", [True, False])
@pytest.mark.parametrize("mask_index", [0, 3, -1])
def test_greedy_decode_matches_keras(keras, merge_repeated, mask_index):
    rng = np.random.default_rng(31)
    logits = rng.normal(size=(4, 9, 5)).astype("float32")
    logits[0, 3] = logits[0, 2]  # (the same class twice running)
    lengths = np.array([9, 6, 0, 9])
    decoded, scores = fg.ops.ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index)
    k_decoded, k_scores = keras.ops.ctc_decode(logits, lengths, merge_repeated=merge_repeated, mask_index=mask_index)
    np.testing.assert_array_equal(decoded, keras.ops.convert_to_numpy(k_decoded))
    np.testing.assert_allclose(scores, keras.ops.convert_to_numpy(k_scores), rtol=1e-6)
    assert decoded.dtype == np.int32 and decoded.shape == (1, 4, 9) and scores.shape == (4, 1)


@pytest.mark.parametrize("head", ["logits", "softmax"])
def test_ocr_crnn_trained_with_ctc_matches_keras(keras, tmp_path, head):
    """Keras's captcha OCR example in small, trained with ``loss="ctc"`` (labels padded with 0, the blank): a
    Conv2D front, the image's columns as a sequence, a Bidirectional LSTM, a Dense head of logits (or, as many
    models have it, a softmax, whose output Keras scores as logits)."""
    rng = np.random.default_rng(32)
    x = rng.normal(size=(8, 16, 8, 1)).astype("float32")
    y = rng.integers(1, 5, size=(8, 3)).astype("float32")
    y[1, 2:] = 0
    y[5, 1:] = 0
    keras.utils.set_random_seed(32)
    K = keras.layers
    inp = keras.Input((16, 8, 1))
    h = K.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = K.MaxPooling2D((2, 2))(h)
    h = K.Reshape((8, 4 * 4))(h)
    h = K.Bidirectional(K.LSTM(6, return_sequences=True))(h)
    km = keras.Model(inp, K.Dense(5, activation=None if head == "logits" else "softmax")(h))
    ours = assert_keras_parity(keras, km, x, y, tmp_path, "ctc", epochs=3)
    decoded, _ = fg.ops.ctc_decode(ours.predict(x), np.full(8, 8))
    assert decoded.shape == (1, 8, 8) and decoded.min() >= -1 and decoded.max() < 5


def test_ctc_loss_class_reductions_and_weights(rng):
    logits = rng.normal(size=(3, 6, 4)).astype("float32")
    y = np.array([[1, 2, 0], [3, 3, 0], [2, 0, 0]])
    each = fg.ops.ctc_loss(y, logits, [2, 2, 1], [6, 6, 6])
    assert fg.losses.get("ctc")(y, logits) == pytest.approx(each.mean(), rel=1e-6)
    assert fg.losses.CTC(reduction="sum")(y, logits) == pytest.approx(each.sum(), rel=1e-6)
    weights = np.array([1.0, 0.0, 2.0])
    assert fg.losses.CTC()(y, logits, sample_weight=weights) == pytest.approx((each * weights).mean(), rel=1e-6)
    assert fg.losses.get({"class_name": "CTC", "config": {"name": "ctc", "reduction": "sum"}}).reduction == "sum"


def test_a_target_too_long_for_its_steps_has_an_infinite_loss_and_no_gradient(rng):
    loss, grad = ctc_loss_and_gradient([[1, 1, 1]], rng.normal(size=(1, 4, 3)), [3], [4])
    assert loss[0] == np.inf and not grad.any()  # (1, blank, 1, blank, 1 takes five steps)


def test_bad_labels_lengths_and_shapes(rng):
    logits = rng.normal(size=(2, 5, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"target\[1, 0\] = 3: labels must lie in \[0, 3\)"):
        fg.ops.ctc_loss([[1, 2], [3, 0]], logits, [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"target\[0, 1\] = 0: .*not be the blank"):
        fg.ops.ctc_loss([[1, 0], [2, 0]], logits, [2, 1], [5, 5])
    with pytest.raises(ValueError, match="target_length must lie in"):
        fg.ops.ctc_loss([[1, 2], [2, 0]], logits, [3, 1], [5, 5])
    with pytest.raises(ValueError, match="output_length must lie in"):
        fg.ops.ctc_loss([[1, 2], [2, 0]], logits, [2, 1], [6, 5])
    with pytest.raises(ValueError, match="whole numbers"):
        fg.ops.ctc_loss([[1.5, 2], [2, 0]], logits, [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"\(batch_size, max_length, num_classes\) logits"):
        fg.ops.ctc_decode(logits[0], [5])
    with pytest.raises(UnsupportedKerasFeature, match="strategy='beam_search'"):
        fg.ops.ctc_decode(logits, [5, 5], strategy="beam_search")
    with pytest.raises(ValueError, match=r"expected of shape \(batch_size, max_length\) in integer format"):
        fg.losses.CTC()(np.zeros((2, 5, 3)), logits)
