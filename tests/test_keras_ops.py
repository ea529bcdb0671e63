"""Keras 3 ops in Functional graphs (layers/keras_ops.py), without TensorFlow: every op's gradient against
central differences in float64; the committed Keras files (tests/fixtures/make_op_fixtures.py) loaded and
compared with Keras's outputs, trained and compared with Keras's history and weights; fastgru's own
operators on symbolic tensors; saving, pickling; the ops that would mix samples refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru.errors import ModelFileError, UnsupportedKerasFeature
from fastgru.layers.keras_ops import TENSOR_KEY, KerasOp

FILES = Path(__file__).resolve().parent / "fixtures" / "files"


def T(k):  # noqa: N802  (a tensor's place in a node's arguments)
    return {TENSOR_KEY: k}


X = (2, 3, 4)
#: (op, config, template args, input shapes, input domain)
def _NUMBERS(shape):  # (a constant operand, as Keras writes a NumPy array)
    values = np.linspace(0.5, 1.5, int(np.prod(shape))).reshape(shape)
    return {"class_name": "__numpy__", "config": {"value": values.tolist(), "dtype": "float64"}}


GRAD_CASES = [
    ("Add", {}, [T(0), T(1)], [X, (2, 1, 4)], "any"),
    ("Pad", {"pad_width": [[0, 0], [2, 1], [1, 3]], "mode": "reflect"}, [T(0)], [X], "any"),
    ("DotProductAttention", {"is_causal": True}, [T(0), T(1), T(2)], [(2, 3, 4, 2), (2, 3, 2, 2), (2, 3, 2, 2)],
     "any"),  # (grouped heads: two query heads per key head)
    ("DotProductAttention", {}, [T(0), T(1), T(2), T(3), None, 0.5], [(2, 3, 2, 2), (2, 4, 2, 2), (2, 4, 2, 3),
                                                                     (2, 1, 3, 4)], "any"),  # (a bias, a scale)
    ("Pad", {"pad_width": [[0, 0], [3, 1], [4, 2]], "mode": "symmetric"}, [T(0)], [X], "any"),
    ("Add", {}, [T(0), T(1)], [X, (1, 1, 4)], "any"),  # (tensors of one rank: other ranks are refused)
    ("Subtract", {}, [2.0, T(0)], [X], "any"),
    ("Multiply", {}, [T(0), T(1)], [X, X], "any"),
    ("TrueDivide", {}, [T(0), T(1)], [X, (2, 3, 1)], "positive"),
    ("TrueDivide", {}, [1.5, T(0)], [X], "positive"),
    ("Divide", {}, [T(0), T(1)], [X, X], "positive"),
    ("Maximum", {}, [T(0), 0.1], [X], "any"),
    ("Minimum", {}, [T(0), T(1)], [X, X], "any"),
    ("Power", {}, [T(0), 3], [X], "any"),
    ("Power", {}, [T(0), T(1)], [X, X], "positive"),
    *[(op, {}, [T(0)], [X], "positive" if op in ("Sqrt", "Log", "Rsqrt") else "any")
      for op in ("Negative", "Absolute", "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Tanh", "Sigmoid", "Relu", "Silu",
                 "Softplus", "HardSigmoid", "Erf", "Sign")],
    ("Gelu", {"approximate": True}, [T(0)], [X], "any"),
    ("Gelu", {"approximate": False}, [T(0)], [X], "any"),
    ("Elu", {"alpha": 0.5}, [T(0)], [X], "any"),
    ("LeakyRelu", {"negative_slope": 0.3}, [T(0)], [X], "any"),
    ("Softmax", {"axis": 1}, [T(0)], [X], "any"),
    ("LogSoftmax", {"axis": -1}, [T(0)], [X], "any"),
    ("Clip", {"x_min": -0.5, "x_max": 0.7}, [T(0)], [X], "any"),
    ("Cast", {"dtype": "float64"}, [T(0)], [X], "any"),
    ("Cast", {"dtype": "int32"}, [T(0)], [X], "positive"),
    ("Cast", {"dtype": "bool"}, [T(0)], [X], "any"),
    *[(op, {"axis": axis, "keepdims": keep}, [T(0)], [X], "any")
      for op in ("Sum", "Mean", "Max", "Min", "Var", "Std", "Logsumexp") for axis, keep in ((1, False), ([1, 2], True))],
    ("Average", {"axis": 2}, [T(0)], [X], "any"),
    ("Norm", {"ord": None, "axis": -1, "keepdims": False}, [T(0)], [X], "any"),
    ("Concatenate", {"axis": 1}, [[T(0), T(1)]], [X, (2, 5, 4)], "any"),
    ("Stack", {"axis": -1}, [[T(0), T(1)]], [X, X], "any"),
    ("ExpandDims", {"axis": [1, -1]}, [T(0)], [X], "any"),
    ("Squeeze", {"axis": 2}, [T(0)], [(2, 3, 1, 4)], "any"),
    ("Reshape", {"newshape": [-1, 2, 6]}, [T(0)], [X], "any"),
    ("Transpose", {"axes": [0, 2, 1]}, [T(0)], [X], "any"),
    ("Swapaxes", {"axis1": 1, "axis2": -1}, [T(0)], [X], "any"),
    ("Moveaxis", {"source": 1, "destination": 2}, [T(0)], [X], "any"),
    ("Flip", {"axis": [1, 2]}, [T(0)], [X], "any"),
    ("Cumsum", {"axis": 1, "dtype": None}, [T(0)], [X], "any"),
    ("Pad", {"pad_width": [[0, 0], [1, 2], [0, 1]], "mode": "constant"}, [T(0)], [X], "any"),
    ("Matmul", {}, [T(0), T(1)], [X, (2, 4, 5)], "any"),
    ("Einsum", {"subscripts": "btd,bsd->bts"}, [T(0), T(1)], [X, (2, 5, 4)], "any"),
    ("Einsum", {"subscripts": "bij,bjk->bki"}, [T(0), T(1)], [X, (2, 4, 2)], "any"),
    ("Add", {}, [T(0), {"class_name": "__numpy__", "config": {"value": [[1.0, 2.0, 3.0, 4.0]] * 3,
                                                                 "dtype": "float32"}}], [X], "any"),
    ("Where", {}, [T(0), T(1), T(2)], [X, X, (2, 1, 4)], "any"),
    ("Where", {}, [T(0), T(1), 0.5], [X, X], "any"),
    ("Greater", {}, [T(0), T(1)], [X, X], "any"),
    ("LogicalAnd", {}, [T(0), T(1)], [X, X], "any"),
    ("LogicalNot", {}, [T(0)], [X], "any"),
    ("Any", {"axis": -1, "keepdims": False}, [T(0)], [X], "any"),
    ("TrueDivide", {}, [T(0), {"class_name": "__tensor__", "config": {"value": 2.5, "dtype": "float32"}}], [X], "any"),
    ("Matmul", {}, [T(0), {"class_name": "__numpy__", "config": {"value": [[1.0, -2.0], [0.5, 3.0], [2.0, 1.0],
                                                                           [-1.0, 0.0]], "dtype": "float32"}}],
     [X], "any"),
    ("Matmul", {}, [{"class_name": "__numpy__", "config": {"value": [[1.0, -2.0, 0.5]], "dtype": "float32"}}, T(0)],
     [X], "any"),
    ("Einsum", {"subscripts": "btd->bd"}, [T(0)], [X], "any"),
    ("Einsum", {"subscripts": "btd->bdt"}, [T(0)], [X], "any"),
    ("Einsum", {"subscripts": "...ij,...kj->...ik"}, [T(0), T(1)], [X, (2, 5, 4)], "any"),
    ("Einsum", {"subscripts": "b...d,b...->b...d"}, [T(0), T(1)], [X, (2, 3)], "any"),
    ("Einsum", {"subscripts": "b...d->bd..."}, [T(0)], [X], "any"),
    # (the ops added in the twenty-eighth session, tests/test_keras_ops_more.py)
    *[(op, {}, [T(0)], [X], "positive" if op in ("Log1p", "Log2", "Log10", "Reciprocal") else "any")
      for op in ("Relu6", "Softsign", "Selu", "LogSigmoid", "HardSilu", "HardTanh", "TanhShrink", "SparsePlus",
                 "Log1p", "Expm1", "Log2", "Log10", "Exp2", "Reciprocal", "Sin", "Cos", "Tan", "Sinh", "Cosh",
                 "Arctan", "Floor", "Ceil", "Trunc")],
    ("Celu", {"alpha": 0.7}, [T(0)], [X], "any"),
    ("Squareplus", {"b": 3}, [T(0)], [X], "any"),
    ("SoftShrink", {"threshold": 0.3}, [T(0)], [X], "any"),
    ("HardShrink", {"threshold": 0.3}, [T(0)], [X], "any"),
    ("Threshold", {"threshold": 0.1, "default_value": 2.0}, [T(0)], [X], "any"),
    ("Round", {"decimals": 1}, [T(0)], [X], "any"),
    ("FloorDivide", {}, [T(0), 0.7], [X], "any"),
    ("Mod", {}, [T(0), T(1)], [X, X], "positive"),
    ("Logaddexp", {}, [T(0), T(1)], [X, (2, 1, 4)], "any"),
    ("Arctan2", {}, [T(0), T(1)], [X, X], "any"),
    ("Amax", {"axis": [1, 2], "keepdims": True}, [T(0)], [X], "any"),
    ("Amin", {"axis": 1, "keepdims": False}, [T(0)], [X], "any"),
    ("Argmax", {"axis": -1, "keepdims": False}, [T(0)], [X], "any"),
    ("Argmin", {"axis": 1, "keepdims": True}, [T(0)], [X], "any"),
    ("Glu", {"axis": -1}, [T(0)], [X], "any"),
    ("Glu", {"axis": 1}, [T(0)], [(2, 4, 3)], "any"),
    ("Normalize", {"axis": -1, "order": 2, "epsilon": None}, [T(0)], [X], "any"),
    ("Normalize", {"axis": 1, "order": 3, "epsilon": 1e-3}, [T(0)], [X], "any"),
    ("Repeat", {"repeats": 3, "axis": 1}, [T(0)], [X], "any"),
    ("Tile", {"repeats": [2, 1]}, [T(0)], [X], "any"),
    ("Roll", {"shift": [1, -2], "axis": [1, 2]}, [T(0)], [X], "any"),
    ("Diff", {"n": 2, "axis": 1}, [T(0)], [X], "any"),
    ("Cumprod", {"axis": -1, "dtype": None}, [T(0)], [X], "any"),
    ("Argsort", {"axis": 1}, [T(0)], [X], "any"),
    ("OneHot", {"num_classes": 3, "axis": 1}, [T(0)], [X], "positive"),
    ("Triu", {"k": 1}, [T(0)], [X], "any"),
    ("Tril", {"k": -1}, [T(0)], [X], "any"),
    ("OnesLike", {"dtype": None}, [T(0)], [X], "any"),
    ("FullLike", {"dtype": None}, [T(0), 2.5], [X], "any"),
    # (the twenty-ninth session's)
    # (StopGradient, and the inverse functions of a narrower domain, against TensorFlow's gradients in
    # test_keras_ops_more.py)
    *[(op, {}, [T(0)], [X], "any") for op in ("Fabs", "Erfc", "Arcsinh", "Cbrt", "Sinc", "Deg2rad", "Rad2deg",
                                               "Isnan", "Signbit", "NanToNum")],
    ("Hypot", {}, [T(0), T(1)], [X, (2, 1, 4)], "any"),
    ("Fmod", {}, [T(0), T(1)], [X, X], "positive"),
    ("Fmod", {}, [T(0), 0.7], [X], "any"),
    ("Fmax", {}, [T(0), T(1)], [X, X], "any"),
    ("Fmin", {}, [T(0), 0.1], [X], "any"),
    ("Logaddexp2", {}, [T(0), T(1)], [X, X], "any"),
    ("DivideNoNan", {}, [T(0), T(1)], [X, X], "positive"),
    ("Heaviside", {}, [T(0), T(1)], [X, X], "any"),
    ("Prod", {"axis": 1, "keepdims": False, "dtype": None}, [T(0)], [X], "any"),
    ("Prod", {"axis": [1, 2], "keepdims": True, "dtype": None}, [T(0)], [X], "any"),
    ("Slice", {"shape": [-1, 2, -1]}, [T(0), [0, 1, 1]], [X], "any"),
    ("Hstack", {}, [[T(0), T(1)]], [X, (2, 2, 4)], "any"),
    ("Dot", {}, [T(0), _NUMBERS((4, 3))], [X], "any"),
    ("Tensordot", {"axes": [[1, 2], [1, 0]]}, [T(0), _NUMBERS((4, 3, 2))], [X], "any"),
    ("LayerNorm", {"axis": -1, "epsilon": None, "rms_scaling": False}, [T(0), _NUMBERS((4,)), _NUMBERS((4,))], [X],
     "any"),
    ("LayerNorm", {"axis": [1, 2], "epsilon": 1e-3, "rms_scaling": True}, [T(0), _NUMBERS((3, 4)), None], [X], "any"),
    ("RMSNorm", {"axis": 1, "epsilon": None}, [T(0)], [X], "any"),
    ("Matmul", {}, [T(0), _NUMBERS((4, 3))], [(2, 4)], "any"),
    ("Einsum", {"subscripts": "btd,de->bte"}, [T(0), _NUMBERS((4, 2))], [X], "any"),
    ("Einsum", {"subscripts": "de,btd->bet"}, [_NUMBERS((4, 2)), T(0)], [X], "any"),
]


def _inputs(shapes, domain, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 2.0, s) if domain == "positive" else rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRAD_CASES)])
def test_gradient_matches_central_differences_in_float64(case):
    op, config, args, shapes, domain = case
    layer = KerasOp(op, config)
    template = {"args": args, "kwargs": {}}
    xs = _inputs(shapes, domain, seed=len(op))
    y, cache = layer.forward(xs, template=template)
    assert y.dtype == np.float64
    assert y.shape == layer.compute_output_shape([s for s in shapes], template=template)
    w = np.random.default_rng(1).normal(size=y.shape)
    dxs, grads = layer.backward(w, cache)
    assert grads == []
    eps = 1e-6
    for k, x in enumerate(xs):
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            up, down = [a.copy() for a in xs], [a.copy() for a in xs]
            up[k][i] += eps
            down[k][i] -= eps
            numeric[i] = ((layer.call(up, template=template) * w).sum()
                          - (layer.call(down, template=template) * w).sum()) / (2 * eps)
        got = np.zeros_like(x) if dxs[k] is None else dxs[k]  # (None: no gradient, as TensorFlow's)
        np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7, err_msg=f"{op}: input {k}")


def test_one_tensor_used_twice_gets_both_gradients():
    layer = KerasOp("Multiply")
    x = np.random.default_rng(0).normal(size=X)
    y, cache = layer.forward([x, x], template={"args": [T(0), T(1)], "kwargs": {}})
    np.testing.assert_array_equal(y, x * x)
    dxs, _ = layer.backward(np.ones_like(x), cache)
    np.testing.assert_allclose(dxs[0] + dxs[1], 2 * x)


def _npz(name):
    data = np.load(FILES / f"{name}.npz")
    xs = [data[k] for k in sorted(k for k in data.files if k.startswith("x"))]
    ys = [data[f"y{j}"] for j in range(sum(k.startswith("y") for k in data.files))]
    return data, xs, ys


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_every_op_in_a_keras_file_gives_keras_outputs(suffix):
    _, xs, expected = _npz("ops_every")
    model = fg.load_model(FILES / f"ops_every{suffix}")
    got = model.predict(xs)
    assert len(got) == len(expected) == 67
    for k, (g, e) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6, err_msg=f"output {k} ({model.output_names[k]})")


def test_every_op_saves_and_loads_back(tmp_path):
    _, xs, expected = _npz("ops_every")
    model = fg.load_model(FILES / "ops_every.keras")
    model.save(tmp_path / "again.keras")
    again = fg.load_model(tmp_path / "again.keras")
    for g, e in zip(again.predict(xs), model.predict(xs)):
        np.testing.assert_array_equal(g, e)
    back = pickle.loads(pickle.dumps(model))
    for g, e in zip(back.predict(xs), expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=2e-6)


def test_training_through_ops_matches_keras_history_and_weights():
    data, _, _ = _npz("ops_train")
    model = fg.load_model(FILES / "ops_train.keras")  # compiled as Keras saved it: Adam(0.01), two losses
    xs, ys = [data["x0"], data["x1"]], [data["y0"], data["y1"]]
    history = model.fit(xs, ys, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    keys = sorted(k[len("history_"):] for k in data.files if k.startswith("history_"))
    assert sorted(history) == keys
    for k in keys:
        np.testing.assert_allclose(history[k], data[f"history_{k}"], rtol=2e-5, atol=1e-6, err_msg=k)
    for j, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, data[f"w{j}"], rtol=1e-4, atol=2e-6, err_msg=f"weight {j}")


def test_operators_on_fastgru_tensors_build_the_same_ops(tmp_path):
    L = fg.layers
    x = fg.Input((6, 4))
    h = L.GRU(4, return_sequences=True)(x)
    y = (h + x) * 0.5 - 1.0
    positions = np.linspace(0, 1, 24, dtype="float32").reshape(6, 4)
    z = -y / 2.0 + y ** 2 + 1.0 / (h * h + 1.0) + positions
    model = fg.Model(x, L.Dense(1)(L.GlobalAveragePooling1D()(z)))
    assert [type(layer).__name__ for layer in model._layers_and_ops].count("KerasOp") == 12
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "GRU", "GlobalAveragePooling1D", "Dense"]
    xs = np.random.default_rng(0).normal(size=(5, 6, 4)).astype("float32")
    hv = model.layers[1](xs)
    yv = (hv + xs) * np.float32(0.5) - np.float32(1.0)
    zv = -yv / np.float32(2.0) + yv ** 2 + np.float32(1.0) / (hv * hv + np.float32(1.0)) + positions
    dense = model.layers[-1]
    expected = zv.mean(axis=1) @ dense.get_weights()[0] + dense.get_weights()[1]
    np.testing.assert_allclose(model.predict(xs), expected, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "ops.keras")
    np.testing.assert_array_equal(fg.load_model(tmp_path / "ops.keras").predict(xs), model.predict(xs))
    model.compile("adam", "mse")
    losses = model.fit(xs, np.ones((5, 1), "float32"), epochs=3, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    left = fg.Model(x, positions * h - 1.0)  # an array on the left: the tensor's reflected operator
    np.testing.assert_allclose(left.predict(xs), positions * model.layers[1](xs) - 1.0, rtol=1e-6)
    gates = fg.Model(x, [h > 0.1, h >= 0.1, 0.1 < h, h <= -0.2])  # comparisons: 1.0 / 0.0
    hv = model.layers[1](xs)  # (trained above)
    for got, want in zip(gates.predict(xs), [hv > 0.1, hv >= 0.1, hv > 0.1, hv <= -0.2]):
        np.testing.assert_array_equal(got, want.astype("float32"))


@pytest.mark.parametrize("op, config, args, shape, error, kind", [
    ("Mean", {"axis": None, "keepdims": False}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("Sum", {"axis": 0, "keepdims": False}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("Transpose", {"axes": [1, 0, 2]}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("Reshape", {"newshape": [6, 4]}, [T(0)], X, "must start with -1", UnsupportedKerasFeature),
    ("Reshape", {"newshape": [-1, 5]}, [T(0)], X, "cannot reshape", ValueError),
    ("Concatenate", {"axis": 0}, [[T(0)]], X, "batch axis", UnsupportedKerasFeature),
    ("Matmul", {}, [T(0), T(1)], (2, 4), "batches of matrices", UnsupportedKerasFeature),
    ("Matmul", {}, [T(0), T(1)], X, "do not multiply", ValueError),
    ("Einsum", {"subscripts": "bij,bjk"}, [T(0), T(1)], X, "explicit", ValueError),
    ("Einsum", {"subscripts": "bij,cjk->bik"}, [T(0), T(1)], X, "batch axis must come first", UnsupportedKerasFeature),
    ("Einsum", {"subscripts": "...ij,...jk->ik"}, [T(0), T(1)], X, "hold the ellipsis", ValueError),
    ("Einsum", {"subscripts": "...i...j,...jk->...ik"}, [T(0), T(1)], X, "do not match", ValueError),
    ("Einsum", {"subscripts": "bcij,bjk->bik"}, [T(0), T(1)], X, "do not match", ValueError),
    ("Softmax", {"axis": 0}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("Add", {}, [T(0), "two"], X, "tensors or constants", ValueError),
    ("Tanh", {}, [T(0), T(1)], X, "1 operand", ValueError),
    ("Pad", {"pad_width": [[1, 0], [0, 0], [0, 0]], "mode": "constant"}, [T(0)], X, "batch axis",
     UnsupportedKerasFeature),
    ("Pad", {"pad_width": [[0, 0], [0, 0]], "mode": "constant"}, [T(0)], X, "for each of the 3 axes", ValueError),
    ("Einsum", {"subscripts": "btd,bd->bt"}, [T(0), _NUMBERS((2, 4))], X, "in no constant", UnsupportedKerasFeature),
    ("Matmul", {}, [_NUMBERS((3, 2)), T(0)], (2, 3), "batches of matrices", UnsupportedKerasFeature),
    ("Slice", {"shape": [2, 3, 4]}, [T(0), [0, 0, 0]], X, "cuts the batch axis", UnsupportedKerasFeature),
    ("Slice", {"shape": [-1, 3, 4]}, [T(0), [0, 1, 0]], X, "cannot be sliced from 1 for 3", ValueError),
    ("Slice", {"shape": [-1, 3]}, [T(0), [0, 0, 0]], X, "one entry per axis", ValueError),
    ("Slice", {"shape": [-1, 1, 1]}, [T(0), [0, 0.5, 0]], X, "must be integers", ValueError),
    ("Unstack", {"num": None, "axis": 0}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("Unstack", {"num": 4, "axis": 1}, [T(0)], X, "num=4 for an axis of size 3", ValueError),
    ("Dot", {}, [T(0), T(1)], X, "pairs the samples", UnsupportedKerasFeature),
    ("Dot", {}, [_NUMBERS((2, 3)), T(0)], X, "moves the batch axis", UnsupportedKerasFeature),
    ("Dot", {}, [T(0), _NUMBERS((3, 2))], X, "differ", ValueError),
    ("Tensordot", {"axes": [[0], [0]]}, [T(0), _NUMBERS((2, 3))], X, "batch axis", UnsupportedKerasFeature),
    ("Tensordot", {"axes": 4}, [T(0), _NUMBERS((2, 3))], X, "axes=4", ValueError),
    ("Tensordot", {"axes": [[1], [0, 1]]}, [T(0), _NUMBERS((3, 2))], X, "one length", ValueError),
    ("LayerNorm", {"axis": -1}, [T(0), T(1), None], X, "gamma computed from the graph", UnsupportedKerasFeature),
    ("LayerNorm", {"axis": -1}, [T(0), _NUMBERS((3,)), None], X, "gamma of shape", ValueError),
    ("LayerNorm", {"axis": 0}, [T(0)], X, "batch axis", UnsupportedKerasFeature),
    ("RMSNorm", {"axis": -1, "epsilon": -1.0}, [T(0)], X, "epsilon", ValueError),
])
def test_ops_that_would_mix_samples_or_are_malformed_are_refused(op, config, args, shape, error, kind):
    layer = KerasOp(op, config)
    n = sum(1 for a in (args[0] if isinstance(args[0], list) else args) if isinstance(a, dict) and TENSOR_KEY in a)
    with pytest.raises(kind, match=error):
        layer.compute_output_shape([shape] * n, template={"args": args, "kwargs": {}})


def test_unknown_ops_and_options_and_casts_to_integers_are_unsupported():
    with pytest.raises(UnsupportedKerasFeature, match="'Bincount' is not supported"):
        KerasOp("Bincount")
    with pytest.raises(UnsupportedKerasFeature, match="option"):
        KerasOp("Mean", {"axis": 1, "where": True})
    with pytest.raises(UnsupportedKerasFeature, match="complex64"):
        KerasOp("Cast", {"dtype": "complex64"}).compute_output_shape([X], template={"args": [T(0)], "kwargs": {}})
    layer = KerasOp("Cast", {"dtype": "int32"})  # integers keep the float dtype, truncated toward zero
    got = layer.call([np.array([[1.7, -1.7, 0.2]], "float32")], template={"args": [T(0)], "kwargs": {}})
    assert got.dtype == np.float32 and got.tolist() == [[1.0, -1.0, 0.0]]


def test_a_damaged_op_node_in_a_file_is_a_model_file_error(tmp_path):
    import json
    import zipfile

    src = zipfile.ZipFile(FILES / "ops_every.keras")
    config = json.loads(src.read("config.json"))
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Mean":
            layer["inbound_nodes"][0]["args"].append(["junk"])
    target = tmp_path / "damaged.keras"
    with zipfile.ZipFile(target, "w") as out:
        for item in src.infolist():
            out.writestr(item, json.dumps(config) if item.filename == "config.json" else src.read(item.filename))
    src.close()
    with pytest.raises(ModelFileError, match="mean"):
        fg.load_model(target)
