"""BinaryFocalCrossentropy, CategoricalFocalCrossentropy and SparseCategoricalCrossentropy(ignore_class=...):
float64 NumPy references of the formulas and finite differences, values computed by Keras committed inline,
bad arguments; then values and tf.GradientTape gradients against live Keras 3 over many argument combinations,
sample weights, masks and sequence outputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.training import losses

RTOL = 1e-6
BF, CF, SCCE = losses.BinaryFocalCrossentropy, losses.CategoricalFocalCrossentropy, losses.SparseCategoricalCrossentropy


def _fd_grad(f, x):
    """d/dx of the scalar ``f(x)`` by central differences (tests/gradcheck.py)."""
    return numeric_gradient(lambda q: np.asarray(f(q), dtype=np.float64), x, 1.0)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------ float64 references -------------
def _ref_binary_focal(t, x, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                      label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = 1 / (1 + np.exp(-x))
        bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    else:
        p = x
        pc = np.clip(x, 1e-7, 1 - 1e-7)
        bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    elem = (1 - p_t) ** gamma * bce
    if apply_class_balancing:
        elem = elem * (t * alpha + (1 - t) * (1 - alpha))
    return elem.mean(-1)


def _ref_categorical_focal(t, x, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    y = _softmax(x) if from_logits else x
    o = np.clip(y / y.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
    return np.sum(np.asarray(alpha) * (1 - o) ** gamma * (-t * np.log(o)), axis=-1)


BINARY_ARGS = [{}, {"gamma": 0.0}, {"gamma": 3.0, "apply_class_balancing": True, "alpha": 0.4},
               {"label_smoothing": 0.2, "gamma": 1.5}, {"from_logits": True},
               {"from_logits": True, "label_smoothing": 0.1, "apply_class_balancing": True, "alpha": 0.7}]
CATEGORICAL_ARGS = [{}, {"gamma": 0.0}, {"alpha": [0.1, 0.2, 0.3, 0.4], "gamma": 0.5}, {"label_smoothing": 0.2},
                    {"from_logits": True}, {"from_logits": True, "gamma": 1.5, "label_smoothing": 0.1, "alpha": 0.6}]


@pytest.mark.parametrize("kw", BINARY_ARGS, ids=str)
@pytest.mark.parametrize("shape", [(6, 1), (5, 3), (3, 4, 1)])
def test_binary_focal_matches_float64_reference_and_finite_differences(kw, shape, rng):
    t = (rng.random(shape) > 0.5).astype(np.float64)
    x = rng.normal(size=shape) * 2 if kw.get("from_logits") else rng.uniform(0.05, 0.95, shape)
    loss = BF(**kw)
    value, grad = loss.value_and_grad(t, x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert value == pytest.approx(_ref_binary_focal(t, x, **kw).mean(), rel=1e-12)
    np.testing.assert_allclose(grad, _fd_grad(lambda q: loss(t, q), x), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("kw", CATEGORICAL_ARGS, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)])
def test_categorical_focal_matches_float64_reference_and_finite_differences(kw, shape, rng):
    t = np.eye(4)[rng.integers(0, 4, shape[:-1])]
    x = rng.normal(size=shape) * 2 if kw.get("from_logits") else rng.uniform(0.05, 0.95, shape)
    loss = CF(**kw)
    value, grad = loss.value_and_grad(t, x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert value == pytest.approx(_ref_categorical_focal(t, x, **kw).mean(), rel=1e-12)
    np.testing.assert_allclose(grad, _fd_grad(lambda q: loss(t, q), x), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("cls,kw", [(BF, {"gamma": 1.0}), (CF, {"gamma": 1.0, "alpha": [0.2, 0.3, 0.5]})])
def test_logits_form_is_from_logits(cls, kw, rng):
    t = np.eye(3)[rng.integers(0, 3, 5)]
    z = rng.normal(size=(5, 3)) * 2
    value, grad = cls(**kw).value_and_grad_from_logits(t, z)
    v2, g2 = cls(from_logits=True, **kw).value_and_grad(t, z)
    assert value == pytest.approx(v2, rel=1e-12)
    np.testing.assert_allclose(grad, g2, rtol=1e-12)


def test_focal_sample_weight_mask_and_reductions_follow_the_loss_base(rng):
    t = (rng.random((4, 5, 1)) > 0.5).astype(np.float64)
    x = rng.uniform(0.05, 0.95, (4, 5, 1))
    per_pos = _ref_binary_focal(t, x)
    sw = rng.random((4, 5))
    mask = rng.random((4, 5)) > 0.3
    mask[0, 0] = True
    assert BF()(t, x, sample_weight=sw) == pytest.approx((per_pos * sw).mean(), rel=1e-12)
    assert BF(reduction="sum")(t, x) == pytest.approx(per_pos.sum(), rel=1e-12)
    assert BF()(t, x, mask=mask) == pytest.approx(per_pos[mask].mean(), rel=1e-12)
    value, grad = BF(gamma=1.5).value_and_grad(t, x, mask=mask)
    assert np.all(grad[~mask] == 0)
    np.testing.assert_allclose(grad, _fd_grad(lambda q: BF(gamma=1.5)(t, q, mask=mask), x), rtol=1e-5, atol=1e-9)


# values computed by Keras 3.15 (TensorFlow backend, float32) for these inputs
_YT = np.array([[0, 1], [0, 0], [1, 1]], np.float32)
_YP = np.array([[0.6, 0.4], [0.4, 0.6], [0.9, 0.2]], np.float32)
_SW = np.array([0.5, 2.0, 1.0])
_CT = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float32)
_CP = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05], [0.5, 0.3, 0.2]], np.float32)


@pytest.mark.parametrize("kw,plain,weighted", [
    ({}, 0.3504033386707306, 0.364025354385376),
    ({"gamma": 3.0, "apply_class_balancing": True, "alpha": 0.4}, 0.11099014431238174, 0.1175580844283104),
    ({"label_smoothing": 0.2, "gamma": 0.5}, 0.6268882155418396, 0.6864431500434875),
    ({"from_logits": True}, 0.2374311238527298, 0.32112917304039),
], ids=str)
def test_binary_focal_values_computed_by_keras(kw, plain, weighted):
    assert BF(**kw)(_YT, _YP) == pytest.approx(plain, rel=RTOL)
    assert BF(**kw)(_YT, _YP, sample_weight=_SW) == pytest.approx(weighted, rel=RTOL)


@pytest.mark.parametrize("kw,mean,total", [
    ({}, 0.23983240127563477, 0.7194972038269043),
    ({"alpha": [0.1, 0.3, 0.6], "gamma": 1.0}, 0.5817952156066895, 1.7453856468200684),
    ({"label_smoothing": 0.1}, 0.2485547810792923, 0.7456643581390381),
    ({"from_logits": True, "gamma": 3.0}, 0.07722380757331848, 0.23167142271995544),
], ids=str)
def test_categorical_focal_values_computed_by_keras(kw, mean, total):
    assert CF(**kw)(_CT, _CP) == pytest.approx(mean, rel=RTOL)
    assert CF(reduction="sum", **kw)(_CT, _CP) == pytest.approx(total, rel=RTOL)


def test_sparse_ignore_class_against_reference_and_keras_values(rng):
    st = np.array([[1, -1, 2], [0, 0, -1]])
    sp = np.array([[[0.2, 0.7, 0.1], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]],
                   [[0.6, 0.2, 0.2], [0.5, 0.25, 0.25], [0.05, 0.05, 0.9]]], np.float32)
    assert SCCE(ignore_class=-1)(st, sp) == pytest.approx(0.4459477961063385, rel=RTOL)  # Keras
    assert SCCE(ignore_class=-1, reduction="sum")(st, sp) == pytest.approx(1.783791184425354, rel=RTOL)
    # float64: the mean of -log p[label] over the kept positions; zero gradient at the ignored ones
    labels = rng.integers(0, 4, (3, 6))
    labels[rng.random((3, 6)) < 0.4] = 255
    labels[0, 0] = 1
    p = _softmax(rng.normal(size=(3, 6, 4)))
    kept = labels != 255
    expected = -np.log(np.take_along_axis(p, np.where(kept, labels, 0)[..., None], -1)[..., 0])[kept].mean()
    loss = SCCE(ignore_class=255)
    value, grad = loss.value_and_grad(labels, p)
    assert value == pytest.approx(expected, rel=1e-12)
    assert np.all(grad[~kept] == 0)
    np.testing.assert_allclose(grad, _fd_grad(lambda q: loss(labels, q), p), rtol=1e-5, atol=1e-9)
    # with the output's mask too: positions kept by both
    mask = rng.random((3, 6)) > 0.3
    both = kept & mask
    assert loss(labels, p, mask=mask) == pytest.approx(
        -np.log(np.take_along_axis(p, np.where(kept, labels, 0)[..., None], -1)[..., 0])[both].mean(), rel=1e-12)
    # every position ignored: 0, as Keras's divide_no_nan
    assert SCCE(ignore_class=-1).value_and_grad(np.full(4, -1), np.full((4, 3), 1 / 3))[0] == 0.0
    # labels (B, 1), from logits
    z = rng.normal(size=(5, 3))
    lab = np.array([[0], [2], [-1], [1], [-1]])
    keep = lab[:, 0] != -1
    ref = -np.log(_softmax(z)[np.arange(5), np.where(keep, lab[:, 0], 0)])[keep].mean()
    assert SCCE(from_logits=True, ignore_class=-1)(lab, z) == pytest.approx(ref, rel=1e-12)


def test_uses_logits_rules_of_the_new_losses():
    assert losses.uses_logits(BF(), "sigmoid") and not losses.uses_logits(BF(from_logits=True), "sigmoid")
    assert not losses.uses_logits(BF(), "softmax") and not losses.uses_logits(BF(), None)
    assert not losses.uses_logits(CF(), "softmax") and not losses.uses_logits(CF(), "sigmoid")
    assert losses.uses_logits(SCCE(), "softmax") and not losses.uses_logits(SCCE(ignore_class=-1), "softmax")
    assert not losses.uses_logits(BF(), "sigmoid", (4, 7), (4, 7, 1))  # Keras squeezed the output


@pytest.mark.parametrize("identifier,cls,name", [
    ("binary_focal_crossentropy", BF, "binary_focal_crossentropy"),
    ("BinaryFocalCrossentropy", BF, "binary_focal_crossentropy"),
    ("categorical_focal_crossentropy", CF, "categorical_focal_crossentropy"),
    ("CategoricalFocalCrossentropy", CF, "categorical_focal_crossentropy"),
])
def test_get_by_name(identifier, cls, name):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.name == name and loss.gamma == 2.0 and loss.alpha == 0.25


def test_configs_round_trip_and_public_names():
    assert fg.losses.BinaryFocalCrossentropy is BF and fg.losses.CategoricalFocalCrossentropy is CF
    for loss in (BF(apply_class_balancing=True, alpha=0.3, gamma=1.5, from_logits=True, label_smoothing=0.1,
                    reduction="sum", name="bf"),
                 CF(alpha=[0.2, 0.8], gamma=0.5, label_smoothing=0.2, reduction="mean", name="cf"),
                 SCCE(from_logits=True, ignore_class=-1, reduction="sum")):
        config = loss.get_config()
        again = type(loss).from_config(config)
        assert again.get_config() == config
        assert losses.get({"class_name": type(loss).__name__, "config": config}).get_config() == config
    assert BF().get_config() == {"name": "binary_focal_crossentropy", "reduction": "sum_over_batch_size",
                                 "from_logits": False, "label_smoothing": 0.0, "axis": -1,
                                 "apply_class_balancing": False, "alpha": 0.25, "gamma": 2.0}
    assert SCCE(ignore_class=3).get_config()["ignore_class"] == 3


@pytest.mark.parametrize("make,match", [
    (lambda: BF(axis=1), "axis"),
    (lambda: CF(axis=0), "axis"),
    (lambda: BF(gamma="2"), "gamma"),
    (lambda: BF(alpha=None), "alpha"),
    (lambda: CF(alpha=[]), "alpha"),
    (lambda: CF(alpha=["a", 1.0]), "alpha"),
    (lambda: CF(label_smoothing="0.1"), "label_smoothing"),
    (lambda: BF(reduction="median"), "reduction"),
    (lambda: SCCE(ignore_class=1.5), "ignore_class"),
    (lambda: SCCE(ignore_class=True), "ignore_class"),
])
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_shapes_and_labels_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        CF()(np.zeros((2, 3)), np.full((2, 4), 0.25))
    with pytest.raises(ValueError, match="per-class weights"):
        CF(alpha=[0.5, 0.5])(np.eye(3), np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"sparse labels.*ignore_class=-1"):
        SCCE(ignore_class=-1)(np.array([0, -1, 3]), np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="sparse labels"):
        SCCE()(np.array([0, -1]), np.full((2, 3), 1 / 3))


# ------------------------------------------------------------------ live Keras -------------
@pytest.fixture(scope="module")
def tf(keras):
    return pytest.importorskip("tensorflow")


def _keras_value_and_grad(tf, kloss, y_true, x, transform=None, sample_weight=None, mask=None):
    xv = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xv)
        out = transform(xv) if transform is not None else tf.identity(xv)
        if mask is not None:
            out._keras_mask = tf.constant(mask)
        value = kloss(y_true, out, sample_weight=sample_weight)
    return float(value), tape.gradient(value, xv).numpy()


def _assert_close(value, grad, kvalue, kgrad):
    np.testing.assert_allclose(value, kvalue, rtol=RTOL)
    np.testing.assert_allclose(grad, kgrad, rtol=RTOL, atol=1e-6 * float(np.nanmax(np.abs(kgrad))))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kw", BINARY_ARGS + [{"gamma": 0.5}, {"reduction": "sum", "gamma": 2.5}], ids=str)
@pytest.mark.parametrize("shape", [(6, 1), (5, 3), (3, 4, 1)])
def test_binary_focal_matches_keras(keras, tf, kw, shape, weighted, rng):
    t = (rng.random(shape) > 0.5).astype(np.float32)
    if kw.get("from_logits"):
        x = (rng.normal(size=shape) * 3).astype(np.float32)
    else:  # with saturated probabilities: the clip, and 0 ** (gamma - 1) in TF's pow gradient (NaN/inf as TF)
        x = rng.uniform(0.02, 0.98, shape).astype(np.float32)
        x.reshape(-1)[:2] = [0.0, 1.0]
    sw = rng.random(shape[:-1]).astype(np.float32) if weighted else None
    value, grad = BF(**kw).value_and_grad(t, x, sample_weight=sw)
    _assert_close(value, grad, *_keras_value_and_grad(tf, keras.losses.BinaryFocalCrossentropy(**kw), t, x,
                                                      sample_weight=sw))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kw", CATEGORICAL_ARGS + [{"reduction": "sum", "alpha": [1.0, 0.5, 0.25, 0.1]}], ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 4)])
def test_categorical_focal_matches_keras(keras, tf, kw, shape, weighted, rng):
    t = np.eye(4, dtype=np.float32)[rng.integers(0, 4, shape[:-1])]
    if kw.get("from_logits"):
        x = (rng.normal(size=shape) * 3).astype(np.float32)
    else:  # unnormalized probabilities, some outside the clip range
        x = rng.uniform(0.0, 1.0, shape).astype(np.float32)
        x.reshape(-1)[:3] = [0.0, 1.0, 1e-9]
    sw = rng.random(shape[:-1]).astype(np.float32) if weighted else None
    value, grad = CF(**kw).value_and_grad(t, x, sample_weight=sw)
    _assert_close(value, grad, *_keras_value_and_grad(tf, keras.losses.CategoricalFocalCrossentropy(**kw), t, x,
                                                      sample_weight=sw))


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis -1")
@pytest.mark.parametrize("activation,cls,kw", [
    ("sigmoid", BF, {}), ("sigmoid", BF, {"from_logits": True, "gamma": 1.0}), ("softmax", BF, {"from_logits": True}),
    ("softmax", CF, {}), ("softmax", CF, {"from_logits": True}), ("sigmoid", CF, {"alpha": [0.2, 0.3, 0.5]}),
    ("softmax", SCCE, {"ignore_class": -1}), ("softmax", SCCE, {"ignore_class": -1, "from_logits": True}),
])
def test_outputs_of_a_sigmoid_or_softmax_as_keras_reads_them(keras, tf, activation, cls, kw, rng):
    """``uses_logits`` decides as Keras's TensorFlow backend: the pre-activation, or the probabilities."""
    if cls is SCCE:
        t = rng.integers(0, 3, 6)
        t[:2] = -1
    else:
        t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 6)]
    z = (rng.normal(size=(6, 3)) * 6).astype(np.float32)  # saturates: probabilities and logits would differ
    act = getattr(keras.activations, activation)
    kvalue, kgrad = _keras_value_and_grad(tf, getattr(keras.losses, cls.__name__)(**kw), t, z, transform=act)
    loss = cls(**kw)
    if losses.uses_logits(loss, activation, t, z):
        value, grad = loss.value_and_grad_from_logits(t, z)
    else:
        p = keras.ops.convert_to_numpy(act(z))
        value, g_p = loss.value_and_grad(t, p)
        if activation == "sigmoid":
            grad = g_p * p * (1 - p)
        else:
            grad = (g_p - np.sum(g_p * p, axis=-1, keepdims=True)) * p
    np.testing.assert_allclose(value, kvalue, rtol=1e-5)
    np.testing.assert_allclose(grad, kgrad, rtol=1e-5, atol=1e-5 * float(np.max(np.abs(kgrad))))


@pytest.mark.parametrize("ignore_class,kw", list(itertools.product([-1, 0, 255], [{}, {"from_logits": True},
                                                                                   {"reduction": "sum"}])), ids=str)
@pytest.mark.parametrize("labels_shape,pred_shape,masked", [((8,), (8, 4), False), ((8, 1), (8, 4), False),
                                                            ((3, 5), (3, 5, 4), False), ((3, 5), (3, 5, 4), True)])
def test_sparse_ignore_class_matches_keras(keras, tf, ignore_class, kw, labels_shape, pred_shape, masked, rng):
    t = rng.integers(0, 4, labels_shape)
    t[rng.random(labels_shape) < 0.3] = ignore_class
    x = (rng.normal(size=pred_shape) * 2).astype(np.float32)
    if not kw.get("from_logits"):
        x = _softmax(x).astype(np.float32)
    mask = rng.random(pred_shape[:-1]) > 0.3 if masked else None
    klass = keras.losses.SparseCategoricalCrossentropy(ignore_class=ignore_class, **kw)
    for sw in (None, rng.random(labels_shape[:1] if len(pred_shape) == 2 else labels_shape).astype(np.float32)):
        value, grad = SCCE(ignore_class=ignore_class, **kw).value_and_grad(t, x, sample_weight=sw, mask=mask)
        _assert_close(value, grad, *_keras_value_and_grad(tf, klass, t, x, sample_weight=sw, mask=mask))


def test_keras_objects_and_configs_are_read(keras):
    k = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.1, gamma=4.0, label_smoothing=0.05)
    ours = losses.get(k)
    assert isinstance(ours, BF) and ours.get_config() == {**k.get_config(), "label_smoothing": 0.05}
    k = keras.losses.CategoricalFocalCrossentropy(alpha=[0.5, 0.25], from_logits=True)
    ours = losses.get(k)
    assert isinstance(ours, CF) and ours.alpha == [0.5, 0.25] and ours.from_logits
    ours = losses.get(keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))
    assert isinstance(ours, SCCE) and ours.ignore_class == -1
    # Keras's names are its functions, with the classes' defaults
    t, p = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]], np.full((4, 3), 0.2, np.float32) + np.eye(3)[[0, 1, 1, 2]] * 0.4
    for name in ("binary_focal_crossentropy", "categorical_focal_crossentropy"):
        want = float(keras.ops.mean(keras.losses.get(name)(t, p)))
        assert losses.get(name)(t, p) == pytest.approx(want, rel=RTOL)
