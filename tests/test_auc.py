"""``fg.metrics.AUC``: float64 references of the curves, values computed by Keras committed inline, names,
configs and bad arguments; then streamed over batches against live ``keras.metrics.AUC`` for every curve,
summation method, threshold layout, ``multi_label``, ``label_weights``, ``from_logits`` and sample weights."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import fastgru as fg
from fastgru.training import metrics

AUC = fg.metrics.AUC


def _ref_roc_auc(y, p, thresholds):
    """Float64 ROC AUC by the trapezoid rule over ``p > threshold`` at the thresholds (with Keras's endpoints)."""
    th = np.array([-1e-7] + list(thresholds) + [1 + 1e-7])
    pos = p[None] > th[:, None]
    tp, fp = (pos & (y[None] == 1)).sum(1), (pos & (y[None] == 0)).sum(1)
    tpr, fpr = tp / max((y == 1).sum(), 1), fp / max((y == 0).sum(), 1)
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


def test_keras_docstring_example():
    m = AUC(num_thresholds=3)
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    assert m.thresholds == [-1e-7, 0.5, 1 + 1e-7]
    assert m.result() == pytest.approx(0.75)
    np.testing.assert_array_equal(m.true_positives, [2, 1, 0])
    np.testing.assert_array_equal(m.false_positives, [2, 0, 0])
    m.reset_state()
    m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert m.result() == 1.0


@pytest.mark.parametrize("thresholds", [None, [0.1, 0.35, 0.5, 0.9]])
def test_roc_matches_a_float64_trapezoid_reference(thresholds, rng):
    y = rng.integers(0, 2, 300)
    p = rng.random(300).astype(np.float32)
    m = AUC(num_thresholds=11) if thresholds is None else AUC(thresholds=thresholds)
    for part in np.array_split(np.arange(300), 4):
        m.update_state(y[part], p[part])
    inner = [(i + 1) / 10 for i in range(9)] if thresholds is None else thresholds
    assert m.result() == pytest.approx(_ref_roc_auc(y, p.astype(np.float64), inner), rel=1e-6)


_Y = np.array([0, 0, 1, 1, 1, 0, 1, 0], np.float32)
_P = np.array([0.1, 0.4, 0.35, 0.8, 0.65, 0.7, 0.2, 0.05], np.float32)
_W = np.array([1, 2, 1, 0.5, 1], np.float32)
_YM = np.array([[0, 1], [1, 1], [1, 0], [0, 0], [1, 1]], np.float32)
_PM = np.array([[0.2, 0.9], [0.7, 0.4], [0.6, 0.3], [0.1, 0.8], [0.4, 0.6]], np.float32)


# computed by keras.metrics.AUC (Keras 3.15): update_state(_Y, _P), then update_state(_Y[:5], _P[:5], _W)
@pytest.mark.parametrize("kw,expected", [
    ({}, 0.692307710647583),
    ({"num_thresholds": 5}, 0.7472527623176575),
    ({"curve": "PR"}, 0.7025114893913269),
    ({"curve": "PR", "summation_method": "minoring"}, 0.41727399826049805),
    ({"summation_method": "majoring", "num_thresholds": 4}, 0.8241758346557617),
    ({"thresholds": [0.3, 0.5, 0.66]}, 0.7087912559509277),
    ({"curve": "PRGAIN", "num_thresholds": 10}, 0.5095856189727783),
], ids=str)
def test_values_computed_by_keras(kw, expected):
    m = AUC(**kw)
    m.update_state(_Y, _P)
    m.update_state(_Y[:5], _P[:5], sample_weight=_W)
    assert m.result() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kw,expected", [
    ({"multi_label": True}, 0.8333333730697632),
    ({"multi_label": True, "label_weights": [1.0, 3.0]}, 0.75),
    ({"label_weights": [1.0, 3.0]}, 0.71875),
    ({"multi_label": True, "curve": "PR", "num_thresholds": 7}, 0.8844754695892334),
], ids=str)
def test_multi_label_values_computed_by_keras(kw, expected):
    m = AUC(**kw)
    m.update_state(_YM, _PM)
    assert m.result() == pytest.approx(expected, rel=1e-6)


def test_state_shapes_reset_and_empty_result():
    m = AUC(multi_label=True)
    assert m.result() == 0.0  # nothing seen yet (Keras builds its variables on the first update)
    m.update_state(_YM, _PM)
    assert m.true_positives.shape == (200, 2) and m.true_positives.dtype == np.float32
    m.reset_state()
    assert m.result() == 0.0 and not m.true_positives.any()
    assert AUC(multi_label=True, num_labels=3).false_negatives.shape == (200, 3)
    assert AUC().true_negatives.shape == (200,) and AUC().result() == 0.0


def test_names_config_round_trip_and_registry():
    assert metrics.get("auc").name == "auc" and isinstance(metrics.get("auc"), AUC)
    assert metrics.get("AUC").name == "AUC" and isinstance(metrics.get("AUC"), AUC)
    first, second = AUC().name, AUC().name  # (numbered over the process, as Keras: auc, auc_1, ...)
    assert re.fullmatch(r"auc(_\d+)?", first) and second == f"auc_{int(first.partition('_')[2] or 0) + 1}"
    assert AUC(name="val").name == "val" and AUC._direction == "up"
    m = AUC(num_thresholds=50, curve="PR", summation_method="minoring", name="pr", thresholds=[0.7, 0.2],
            multi_label=True, num_labels=2, label_weights=[0.5, 1.5], from_logits=True)
    config = m.get_config()
    assert config == {"name": "pr", "dtype": "float32", "num_thresholds": 4, "curve": "PR",
                      "summation_method": "minoring", "multi_label": True, "num_labels": 2,
                      "label_weights": [0.5, 1.5], "from_logits": True, "thresholds": [0.2, 0.7]}
    assert AUC.from_config(config).get_config() == config
    assert metrics.get({"class_name": "AUC", "config": config}).get_config() == config
    # a .keras file stores label_weights as a serialized tensor
    stored = {**config, "label_weights": {"class_name": "__tensor__", "config": {"value": [0.5, 1.5],
                                                                                 "dtype": "float32"}}}
    assert metrics.get({"class_name": "AUC", "config": stored}).get_config() == config
    assert "thresholds" not in AUC().get_config() and AUC(curve="roc").curve == "ROC"


@pytest.mark.parametrize("make,match", [
    (lambda: AUC(num_thresholds=1), "num_thresholds"),
    (lambda: AUC(num_thresholds=2.5), "num_thresholds"),
    (lambda: AUC(curve="AP"), "curve"),
    (lambda: AUC(summation_method="trapezoid"), "summation method"),
    (lambda: AUC(num_labels=3), "num_labels"),
    (lambda: AUC(thresholds=0.5), "thresholds"),
    (lambda: AUC(thresholds=["a"]), "thresholds"),
    (lambda: AUC(label_weights=[[1.0, 2.0]]), "label_weights"),
    (lambda: AUC(label_weights=["x"]), "label_weights"),
])
def test_bad_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_updates_are_refused():
    with pytest.raises(ValueError, match="rank 2"):
        AUC(multi_label=True).update_state(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)))
    m = AUC(multi_label=True, num_labels=2)
    with pytest.raises(ValueError, match="2 labels"):
        m.update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="do not match"):
        AUC().update_state(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="sample_weight"):
        AUC().update_state(np.zeros((4, 2)), np.zeros((4, 2)), sample_weight=np.ones(3))


# ------------------------------------------------------------------ live Keras -------------
_OPTIONS = [{}, {"num_thresholds": 7}, {"thresholds": [0.1, 0.35, 0.5, 0.9]}, {"thresholds": [0.25, 0.5, 0.75]},
            {"label_weights": [0.2, 1.0, 3.0]}, {"from_logits": True}]


@pytest.mark.parametrize("extra", _OPTIONS, ids=str)
@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("curve,summation_method", list(itertools.product(
    ["ROC", "PR", "PRGAIN"], ["interpolation", "minoring", "majoring"])))
def test_streamed_values_match_keras(keras, curve, summation_method, multi_label, extra):
    rng = np.random.default_rng(7)
    kw = dict(curve=curve, summation_method=summation_method, multi_label=multi_label, **extra)
    ours, theirs = AUC(**kw), keras.metrics.AUC(**kw)
    for step in range(3):
        y_true = rng.integers(0, 2, (8, 3)).astype(np.float32)
        y_pred = rng.random((8, 3)).astype(np.float32)
        if kw.get("from_logits"):
            y_pred = (y_pred - 0.5) * 8
        else:  # the endpoints, and a value exactly on the 0.5 threshold
            y_pred.reshape(-1)[:3] = [0.0, 1.0, 0.5]
        weight = None if step == 1 else rng.random(8).astype(np.float32)
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
    for name in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
        np.testing.assert_allclose(getattr(ours, name), np.asarray(getattr(theirs, name)), rtol=1e-6, atol=1e-5)
    # PRGAIN's gains nearly cancel (float32 sums in another order): a looser tolerance there
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-5 if curve == "PRGAIN" else 1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("labels_shape,pred_shape,weight_shape", [
    ((10,), (10, 1), (10,)), ((10, 1), (10, 1), (10, 1)), ((4, 5, 1), (4, 5, 1), (4, 5)), ((4, 5), (4, 5, 1), None),
    ((6, 3), (6, 3), ()),
])
def test_label_and_weight_shapes_match_keras(keras, labels_shape, pred_shape, weight_shape):
    rng = np.random.default_rng(3)
    ours, theirs = AUC(), keras.metrics.AUC()
    for _ in range(2):
        y_true = rng.integers(0, 2, labels_shape).astype(np.float32)
        y_pred = rng.random(pred_shape).astype(np.float32)
        weight = None if weight_shape is None else rng.random(weight_shape).astype(np.float32)
        ours.update_state(y_true, y_pred, sample_weight=weight)
        theirs.update_state(y_true, y_pred, sample_weight=weight)
    np.testing.assert_allclose(ours.result(), float(theirs.result()), rtol=1e-6)
