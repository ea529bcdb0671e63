"""Losses: values and gradients against live Keras 3 / tf.GradientTape, and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

from fastgru.errors import UnsupportedKerasFeature
from fastgru.training import losses

RTOL = 1e-6


def _probs(rng, shape, dtype=np.float32):
    return rng.uniform(0.05, 0.95, size=shape).astype(dtype)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _onehot(rng, shape, dtype=np.float32):
    return np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], shape[:-1])]


# (factory, y_true maker, y_pred maker) over a few shapes; y_pred in the probability domain
def _cases():
    def binary(shape_true, shape_pred):
        return lambda rng, dt: ((rng.random(shape_true) > 0.5).astype(dt), _probs(rng, shape_pred, dt))

    def soft_binary(shape):
        return lambda rng, dt: (rng.random(shape).astype(dt), _probs(rng, shape, dt))

    def categorical(shape):
        return lambda rng, dt: (_onehot(rng, shape, dt), _softmax(rng.normal(size=shape)).astype(dt))

    def sparse(shape_true, shape_pred):
        return lambda rng, dt: (rng.integers(0, shape_pred[-1], shape_true),
                                _softmax(rng.normal(size=shape_pred)).astype(dt))

    def regression(shape_true, shape_pred):
        return lambda rng, dt: (rng.normal(size=shape_true).astype(dt), rng.normal(size=shape_pred).astype(dt))

    def positive(shape):
        return lambda rng, dt: (rng.uniform(0.1, 3.0, shape).astype(dt), rng.uniform(0.1, 3.0, shape).astype(dt))

    def signs(shape):
        return lambda rng, dt: (rng.choice([-1.0, 1.0], shape).astype(dt), rng.normal(size=shape).astype(dt))

    bce, cce, scce = losses.BinaryCrossentropy, losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy
    mse, mae, hub = losses.MeanSquaredError, losses.MeanAbsoluteError, losses.Huber
    return [
        ("bce", bce, {}, binary((6, 1), (6, 1))),
        ("bce_rank1_labels", bce, {}, binary((6,), (6, 1))),
        ("bce_multilabel", bce, {}, soft_binary((5, 3))),
        ("bce_seq", bce, {}, binary((4, 7, 1), (4, 7, 1))),
        ("bce_seq_squeezed_labels", bce, {}, binary((4, 7), (4, 7, 1))),
        ("bce_smoothing", bce, {"label_smoothing": 0.2}, binary((6, 1), (6, 1))),
        ("cce", cce, {}, categorical((6, 4))),
        ("cce_seq", cce, {}, categorical((3, 5, 4))),
        ("cce_smoothing", cce, {"label_smoothing": 0.1}, categorical((6, 4))),
        ("scce", scce, {}, sparse((6,), (6, 4))),
        ("scce_col", scce, {}, sparse((6, 1), (6, 4))),
        ("scce_seq", scce, {}, sparse((3, 5), (3, 5, 4))),
        ("mse", mse, {}, regression((6, 3), (6, 3))),
        ("mse_rank1", mse, {}, regression((6,), (6, 1))),
        ("mse_seq", mse, {}, regression((3, 5, 2), (3, 5, 2))),
        ("mae", mae, {}, regression((6, 3), (6, 3))),
        ("huber", hub, {}, regression((6, 3), (6, 3))),
        ("huber_delta", hub, {"delta": 0.3}, regression((3, 5, 2), (3, 5, 2))),
        ("msle", losses.MeanSquaredLogarithmicError, {}, positive((6, 3))),
        ("mape", losses.MeanAbsolutePercentageError, {}, regression((3, 5, 2), (3, 5, 2))),
        ("log_cosh", losses.LogCosh, {}, regression((6, 3), (6, 3))),
        ("kld", losses.KLDivergence, {}, categorical((6, 4))),
        ("poisson", losses.Poisson, {}, positive((3, 5, 2))),
        ("cosine", losses.CosineSimilarity, {}, regression((6, 3), (6, 3))),
        ("hinge_01", losses.Hinge, {}, binary((6, 3), (6, 3))),
        ("hinge_pm1", losses.Hinge, {}, signs((6, 3))),
        ("squared_hinge", losses.SquaredHinge, {}, binary((3, 5, 2), (3, 5, 2))),
        ("categorical_hinge", losses.CategoricalHinge, {}, categorical((6, 4))),
    ]


CASES = _cases()
IDS = [c[0] for c in CASES]
LOGIT_CASES = [c for c in CASES if c[1]().supports_logits]
LOGIT_IDS = [c[0] for c in LOGIT_CASES]


def _fd_grad(f, x):
    """d/dx of the scalar ``f(x)`` by central differences (tests/gradcheck.py)."""
    return numeric_gradient(lambda q: np.asarray(f(q), dtype=np.float64), x, 1.0)


# ---------------------------------------------------------------- pure NumPy ---------
@pytest.mark.parametrize("name,cls,kw,make", CASES, ids=IDS)
def test_gradient_matches_finite_differences(name, cls, kw, make, rng):
    loss = cls(**kw)
    y_true, y_pred = make(rng, np.float64)
    value, grad = loss.value_and_grad(y_true, y_pred)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    assert value == pytest.approx(loss(y_true, y_pred))
    np.testing.assert_allclose(grad, _fd_grad(lambda p: loss(y_true, p), y_pred), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name,cls,kw,make", LOGIT_CASES, ids=LOGIT_IDS)
def test_logits_gradient_matches_finite_differences(name, cls, kw, make, rng):
    loss = cls(**kw)
    y_true, y_pred = make(rng, np.float64)
    z = rng.normal(size=y_pred.shape) * 2
    value, grad = loss.value_and_grad_from_logits(y_true, z)
    np.testing.assert_allclose(value, cls(from_logits=True, **kw)(y_true, z), rtol=1e-12)
    fd = _fd_grad(lambda q: cls(from_logits=True, **kw)(y_true, q), z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-9)


def test_float32_in_float32_out(rng):
    y = (rng.random((4, 1)) > 0.5).astype(np.float32)
    p = _probs(rng, (4, 1))
    _, g = losses.BinaryCrossentropy().value_and_grad(y, p)
    assert g.dtype == np.float32


def test_bce_clips_probabilities_with_zero_gradient_outside():
    y = np.array([[1.0], [0.0], [1.0]])
    p = np.array([[0.0], [1.0], [0.5]])
    value, grad = losses.BinaryCrossentropy().value_and_grad(y, p)
    expected = np.mean([-np.log(1e-7), -np.log(1 - (1 - 1e-7)), -np.log(0.5)])
    assert value == pytest.approx(expected, rel=1e-6)
    assert grad[0, 0] == 0 and grad[1, 0] == 0 and grad[2, 0] != 0


def test_bce_of_known_values():
    # keras.losses.binary_crossentropy docstring example ([0.916, 0.714]), averaged over the batch
    value = losses.get("binary_crossentropy")([[0, 1], [0, 0]], np.array([[0.6, 0.4], [0.4, 0.6]]))
    sample_1 = -np.log(0.4)
    sample_2 = -(np.log(0.6) + np.log(0.4)) / 2
    assert value == pytest.approx((sample_1 + sample_2) / 2, rel=1e-12)


def test_mask_averages_over_valid_positions(rng):
    y = rng.normal(size=(3, 4, 2))
    p = rng.normal(size=(3, 4, 2))
    mask = rng.random((3, 4)) > 0.4
    mask[0, 0] = True
    loss = losses.MeanSquaredError()
    per_pos = np.mean((y - p) ** 2, axis=-1)
    value, grad = loss.value_and_grad(y, p, mask=mask)
    assert value == pytest.approx(per_pos[mask].mean(), rel=1e-12)
    assert np.all(grad[~mask] == 0)
    np.testing.assert_allclose(grad, _fd_grad(lambda q: loss(y, q, mask=mask), p), rtol=1e-5, atol=1e-9)


def test_sparse_labels_out_of_range_raise():
    with pytest.raises(ValueError, match="sparse labels"):
        losses.SparseCategoricalCrossentropy()(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_categorical_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        losses.CategoricalCrossentropy()(np.zeros((2, 3)), np.full((2, 4), 0.25))


def test_regression_losses_have_no_logits_form():
    with pytest.raises(TypeError):
        losses.MeanSquaredError().value_and_grad_from_logits(np.zeros((2, 1)), np.zeros((2, 1)))


@pytest.mark.parametrize(
    "identifier,cls,name",
    [
        ("binary_crossentropy", losses.BinaryCrossentropy, "binary_crossentropy"),
        ("bce", losses.BinaryCrossentropy, "bce"),
        ("BinaryCrossentropy", losses.BinaryCrossentropy, "binary_crossentropy"),
        ("categorical_crossentropy", losses.CategoricalCrossentropy, "categorical_crossentropy"),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"),
        ("mse", losses.MeanSquaredError, "mse"),
        ("MSE", losses.MeanSquaredError, "MSE"),
        ("mean_squared_error", losses.MeanSquaredError, "mean_squared_error"),
        ("mae", losses.MeanAbsoluteError, "mae"),
        ("mean_absolute_error", losses.MeanAbsoluteError, "mean_absolute_error"),
        ("huber", losses.Huber, "huber"),
        ("Huber", losses.Huber, "huber_loss"),
    ],
)
def test_get_by_name(identifier, cls, name):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.name == name


def test_get_config_dicts_and_instances():
    loss = losses.get({"class_name": "BinaryCrossentropy",
                       "config": {"from_logits": True, "label_smoothing": 0.1, "axis": -1,
                                  "reduction": "sum_over_batch_size", "name": "bce"}})
    assert loss.from_logits and loss.label_smoothing == 0.1 and loss.name == "bce"
    assert losses.get({"class_name": "function", "config": "mse"}).name == "mse"
    inst = losses.Huber(delta=2.0)
    assert losses.get(inst) is inst
    assert losses.get(losses.BinaryCrossentropy).name == "binary_crossentropy"
    rebuilt = losses.CategoricalCrossentropy.from_config(losses.CategoricalCrossentropy(label_smoothing=0.3).get_config())
    assert rebuilt.label_smoothing == 0.3
    assert isinstance(losses.get("hinge"), losses.Hinge) and isinstance(losses.get("msle"), losses.MeanSquaredLogarithmicError)
    assert isinstance(losses.get({"class_name": "LogCosh", "config": {}}), losses.LogCosh)
    with pytest.raises(ValueError, match="could not interpret"):
        losses.get("circle")
    with pytest.raises(ValueError, match="unsupported loss class"):
        losses.get({"class_name": "Circle", "config": {}})


def test_logits_attributes_and_uses_logits():
    assert losses.BinaryCrossentropy().logits_activation == "sigmoid"
    assert losses.CategoricalCrossentropy().logits_activation == "softmax"
    assert losses.SparseCategoricalCrossentropy().logits_activation == "softmax"
    assert losses.MeanSquaredError().logits_activation is None
    assert losses.uses_logits(losses.BinaryCrossentropy(), "sigmoid")
    assert losses.uses_logits(losses.CategoricalCrossentropy(), "sigmoid")  # Keras does this too
    assert not losses.uses_logits(losses.BinaryCrossentropy(), "tanh")
    assert not losses.uses_logits(losses.MeanSquaredError(), "sigmoid")
    bce = losses.BinaryCrossentropy()
    assert losses.uses_logits(bce, "sigmoid", (4, 7, 1), (4, 7, 1))
    assert losses.uses_logits(bce, "sigmoid", np.zeros(4), np.zeros((4, 1)))  # labels expanded
    assert not losses.uses_logits(bce, "sigmoid", (4, 7), (4, 7, 1))  # prediction squeezed
    assert losses.uses_logits(losses.SparseCategoricalCrossentropy(), "softmax", (4, 7), (4, 7, 5))


# ---------------------------------------------------------------- live Keras ---------
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _keras_loss(keras, cls, kw, from_logits=None):
    kcls = getattr(keras.losses, cls.__name__)
    kw = dict(kw)
    if from_logits is not None:
        kw["from_logits"] = from_logits
    return kcls(**kw)


def _keras_value_and_grad(tf, kloss, y_true, x, transform=None):
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        out = transform(xv) if transform is not None else xv
        value = kloss(y_true, out)
    return float(value), tape.gradient(value, xv).numpy()


def _assert_grad_close(g, gk):
    np.testing.assert_allclose(g, gk, rtol=RTOL, atol=1e-7 * float(np.max(np.abs(gk))))


@pytest.mark.keras
@pytest.mark.parametrize("name,cls,kw,make", CASES, ids=IDS)
def test_value_and_grad_match_keras(keras, tf, name, cls, kw, make, rng):
    y_true, y_pred = make(rng, np.float32)
    if name.startswith("bce"):  # include saturated probabilities: the clip region
        y_pred.reshape(-1)[:2] = [0.0, 1.0]
    value, grad = cls(**kw).value_and_grad(y_true, y_pred)
    kvalue, kgrad = _keras_value_and_grad(tf, _keras_loss(keras, cls, kw), y_true, y_pred)
    np.testing.assert_allclose(value, kvalue, rtol=RTOL)
    _assert_grad_close(grad, kgrad)


@pytest.mark.keras
@pytest.mark.parametrize("name,cls,kw,make", LOGIT_CASES, ids=LOGIT_IDS)
def test_from_logits_matches_keras(keras, tf, name, cls, kw, make, rng):
    y_true, y_pred = make(rng, np.float32)
    z = (rng.normal(size=y_pred.shape) * 3).astype(np.float32)
    kvalue, kgrad = _keras_value_and_grad(tf, _keras_loss(keras, cls, kw, from_logits=True), y_true, z)
    for loss in (cls(from_logits=True, **kw), cls(**kw)):
        value, grad = loss.value_and_grad_from_logits(y_true, z)
        np.testing.assert_allclose(value, kvalue, rtol=RTOL)
        _assert_grad_close(grad, kgrad)
    value, grad = cls(from_logits=True, **kw).value_and_grad(y_true, z)
    np.testing.assert_allclose(value, kvalue, rtol=RTOL)
    _assert_grad_close(grad, kgrad)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
@pytest.mark.parametrize("name,cls,kw,make", LOGIT_CASES, ids=LOGIT_IDS)
def test_keras_uses_logits_of_sigmoid_and_softmax_outputs(keras, tf, activation, name, cls, kw, make, rng):
    """Keras computes every crossentropy from the logits of a sigmoid/softmax output."""
    y_true, y_pred = make(rng, np.float32)
    z = (rng.normal(size=y_pred.shape) * 8).astype(np.float32)  # saturates: clipping would differ
    act = getattr(keras.activations, activation)
    kvalue, kgrad = _keras_value_and_grad(tf, _keras_loss(keras, cls, kw), y_true, z, transform=act)
    loss = cls(**kw)
    if losses.uses_logits(loss, activation, y_true, z):
        value, grad = loss.value_and_grad_from_logits(y_true, z)
    else:  # Keras squeezed the output to the labels' rank, which drops the logits: probabilities
        assert name == "bce_seq_squeezed_labels"
        p = keras.ops.convert_to_numpy(act(z))
        value, g_p = loss.value_and_grad(y_true, p)
        if activation == "sigmoid":
            grad = g_p * p * (1 - p)
        else:  # softmax over a size-1 axis is constant
            grad = np.zeros_like(z)
    np.testing.assert_allclose(value, kvalue, rtol=RTOL)
    _assert_grad_close(grad, kgrad)


@pytest.mark.keras
def test_mask_matches_keras(keras, tf, rng):
    y = rng.normal(size=(3, 4, 2)).astype(np.float32)
    p = rng.normal(size=(3, 4, 2)).astype(np.float32)
    mask = rng.random((3, 4)) > 0.4
    xv = tf.constant(p)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        out = tf.identity(xv)
        out._keras_mask = tf.constant(mask)
        kvalue = keras.losses.MeanSquaredError()(y, out)
    kgrad = tape.gradient(kvalue, xv).numpy()
    value, grad = losses.MeanSquaredError().value_and_grad(y, p, mask=mask)
    np.testing.assert_allclose(value, float(kvalue), rtol=RTOL)
    _assert_grad_close(grad, kgrad)


def test_a_custom_loss_that_cannot_be_traced_is_refused_by_name_when_training():
    class NonPaddingLoss:  # (a callable whose values do not come from its inputs: no gradient to find)
        def __call__(self, y_true, y_pred):
            return 0.0

    def my_loss(y_true, y_pred):
        return float(np.sum(np.asarray(y_pred)))  # (NumPy on the output: fastgru cannot differentiate it)

    y, p = np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)
    for identifier, name, value in ((NonPaddingLoss(), "NonPaddingLoss", 0.0), (my_loss, "my_loss", 6.0)):
        loss = losses.get(identifier)
        assert loss(y, p) == value  # (its values: the call on arrays)
        with pytest.raises(UnsupportedKerasFeature, match=f"custom loss '{name}' cannot be trained in fastgru"):
            loss.value_and_grad(y, p)
