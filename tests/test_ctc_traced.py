"""``ops.ctc_loss`` inside what training traces, as keras.io's speech (DeepSpeech2: a custom loss function) and OCR
(a custom layer's ``add_loss``) examples write it: the ``CTCLoss`` graph node, trained as Keras trains it; and
the CTC, Dice and Tversky loss objects given to ``compile``."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from keras_parity import assert_same_fit

import fastgru as fg
from fastgru.errors import UnsupportedKerasFeature
from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp


def _ctc_loss_function(ops):
    def ctc_loss(y_true, y_pred):  # (keras.io's speech recognition example)
        input_length = ops.cast(ops.ones_like(y_true[:, 0]), "int32") * ops.shape(y_pred)[1]
        label_length = ops.sum(ops.cast(ops.not_equal(y_true, 0), "int32"), axis=-1)
        return ops.ctc_loss(ops.cast(y_true, "int32"), y_pred, label_length, input_length)

    return ctc_loss


def _speech_model(lib, head: str):
    return lib.Sequential([lib.Input((10, 6)), lib.layers.Bidirectional(lib.layers.GRU(8, return_sequences=True)),
                           lib.layers.Dense(5, activation=head)])


def _labels(rng, n: int = 8):
    y = rng.integers(1, 5, size=(n, 3))
    y[1, 2:] = 0
    y[4, 1:] = 0
    return y


@pytest.mark.parametrize("head", ["softmax", None])
def test_a_custom_loss_computing_ops_ctc_loss_trains_as_keras(keras, head):
    rng = np.random.default_rng(67)
    x, y = rng.normal(size=(8, 10, 6)).astype("float32"), _labels(rng)
    km, ours = _speech_model(keras, head), _speech_model(fg, head)
    ours.set_weights(km.get_weights())
    km.compile(keras.optimizers.Adam(0.01), _ctc_loss_function(keras.ops))
    ours.compile(fg.optimizers.Adam(0.01), _ctc_loss_function(fg.ops))
    assert_same_fit(ours, km, x, y)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert ours.evaluate(x, y, verbose=0) == pytest.approx(km.evaluate(x, y, verbose=0), rel=1e-5)


def _ocr_model(lib):
    ops = lib.ops

    class CTCLayer(lib.layers.Layer):  # (keras.io's captcha OCR example: the loss added, the predictions passed on)
        def call(self, y_true, y_pred):
            input_length = ops.ones_like(y_true[:, 0]) * ops.shape(y_pred)[1]
            label_length = ops.sum(ops.cast(ops.not_equal(y_true, 0), "int32"), axis=-1)
            self.add_loss(ops.mean(ops.ctc_loss(y_true, y_pred, label_length, input_length, mask_index=0)))
            return y_pred

    image, label = lib.Input((16, 8), name="image"), lib.Input((3,), name="label", dtype="int32")
    h = lib.layers.Bidirectional(lib.layers.GRU(8, return_sequences=True))(image)
    h = lib.layers.Dense(7, activation="softmax")(h)
    return lib.Model({"image": image, "label": label}, CTCLayer(name="ctc")(label, h))


def test_a_custom_layer_adding_ops_ctc_loss_trains_as_keras(keras):
    rng = np.random.default_rng(68)
    data = {"image": rng.normal(size=(8, 16, 8)).astype("float32"), "label": _labels(rng).astype("int32")}
    km, ours = _ocr_model(keras), _ocr_model(fg)
    ours.set_weights(km.get_weights())
    np.testing.assert_allclose(ours.predict(data, verbose=0), km.predict(data, verbose=0), rtol=1e-5, atol=1e-6)
    km.compile(keras.optimizers.Adam(0.01))
    ours.compile(fg.optimizers.Adam(0.01))
    assert_same_fit(ours, km, data, None)
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_ctc_node_gradient_matches_finite_differences():
    """d(weighted sum of the losses)/d output through the graph node, in float64."""
    rng = np.random.default_rng(69)
    node = KerasOp("CTCLoss", {"mask_index": 0})
    template = {"args": [{TENSOR_KEY: k} for k in range(4)], "kwargs": {}}
    y, x, lengths, steps = np.array([[1, 2, 2], [3, 0, 0]]), rng.normal(size=(2, 6, 4)), np.array([3, 1]), [6, 5]

    def weighted(logits):
        return weights @ node.forward([y, logits, lengths, steps], template=template)[0]

    weights = np.array([0.7, -1.3])
    out, cache = node.forward([y, x, lengths, steps], template=template)
    dx = node.backward(weights, cache)[0]
    assert dx[0] is None and dx[2] is None and dx[3] is None and not dx[1][1, 5:].any()
    np.testing.assert_allclose(dx[1], numeric_gradient(weighted, x, 1.0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(out, fg.ops.ctc_loss(y, x, lengths, steps), rtol=1e-12)


def test_ops_ctc_loss_refuses_what_it_cannot_take():
    target, logits = fg.Input((3,), dtype="int32"), fg.Input((6, 4))
    with pytest.raises(ValueError, match=r"target_length must have one value per sequence"):
        fg.ops.ctc_loss(target, logits, fg.ops.ones_like(logits[:, :, :1]), fg.ops.ones_like(logits[:, 0, 0]))
    with pytest.raises(ValueError, match=r"expects target \(batch_size, max_label_length\) and output"):
        fg.ops.ctc_loss(logits, target, target[:, 0], target[:, 0])
    with pytest.raises(UnsupportedKerasFeature, match="a constant operand is not supported"):
        fg.ops.ctc_loss(target, logits, np.array([3, 3]), np.array([6, 6]))
    values = fg.ops.ctc_loss([[1, 2, 0]], np.zeros((1, 6, 4), "float32"), [2], [6])  # (on arrays: computed now)
    assert values.shape == (1,) and values.dtype == np.float32 and np.isfinite(values).all()


@pytest.mark.parametrize("name", ["CTC", "Dice", "Tversky"])
def test_loss_objects_computing_on_their_own_compile_as_their_names(name):
    """The CTC, Dice and Tversky objects (computed by their own ``_run``, not per sample) train as their strings."""
    rng = np.random.default_rng(70)
    x = rng.normal(size=(8, 10, 6)).astype("float32")
    y = _labels(rng) if name == "CTC" else (rng.random((8, 10, 5)) > 0.5).astype("float32")
    histories = []
    for loss in (getattr(fg.losses, name)(), name.lower()):
        model = _speech_model(fg, "softmax" if name == "CTC" else "sigmoid")
        model.set_weights([np.full(w.shape, 0.05, w.dtype) for w in model.get_weights()])
        model.compile(fg.optimizers.SGD(0.1), loss)
        histories.append(model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_array_equal(histories[0], histories[1])
    assert np.all(np.isfinite(histories[0]))
