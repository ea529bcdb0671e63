"""The layer contract, checked for every layer in the registry (``fastgru.layers.registry``) without a
hand-kept list: a new registered layer is tested here by being registered.

For each class: config round trip, get/set_weights order, pickle, a ``.keras`` save/load round trip,
float64 finite-difference gradients of its input and trainable weights, and (with Keras installed)
Keras opening fastgru's file and computing the same numbers, and one Adam step giving the same weights.

A layer is built from its required options filled in from its ``parameter_constraints`` (a positive
integer 2, a rate 0.25, an activation ``tanh``), or from its class attribute ``contract_example``
(``{"kwargs": {...}, "inputs": [shape, ...], "tokens": vocabulary, "strings": [text, ...]}``) where that cannot
work (a wrapper, a target shape, several inputs, integer token inputs, string inputs drawn from the texts given).
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
from gradcheck import numeric_gradient

import fastgru as fg
from fastgru.layers import registry
from fastgru.layers.registry import ActivationName, Integer, IntTuple, Real, StrOptions

CLASSES = registry.registered()
DEFAULT_INPUT = (5, 4)  # (steps, features)


def _value_for(constraints):
    for c in constraints:
        if isinstance(c, Integer):
            return max(c.low or 0, 1) + 1
        if isinstance(c, IntTuple):
            return 2
        if isinstance(c, Real):
            lo = c.low if c.low is not None else 0.0
            hi = c.high if c.high is not None else lo + 1.0
            return lo + (hi - lo) * 0.25
        if isinstance(c, ActivationName):
            return "tanh"
        if isinstance(c, StrOptions):
            return c.options[0]
    raise LookupError("no value can be derived")


def example(cls):
    """(kwargs, input shapes without the batch axis, token vocabulary or None) for ``cls``."""
    declared = getattr(cls, "contract_example", None) or {}
    kwargs = dict(declared.get("kwargs", {}))
    params = inspect.signature(cls.__init__).parameters
    for name, p in params.items():
        if name in ("self", "kwargs") or p.default is not inspect.Parameter.empty or name in kwargs:
            continue
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        try:
            kwargs[name] = _value_for(cls.parameter_constraints.get(name, []))
        except LookupError:
            pytest.fail(f"{cls.__name__}: cannot derive option {name!r} from its parameter_constraints; declare "
                        "contract_example = {'kwargs': {...}} on the class")
    return kwargs, [tuple(s) for s in declared.get("inputs", [DEFAULT_INPUT])], declared.get("tokens")


def make_layer(cls, dtype="float32"):
    kwargs, _, _ = example(cls)
    # a factory (a lambda taking the dtype) makes a fresh object per layer, e.g. a wrapper's inner layer
    kwargs = {k: (v(dtype) if isinstance(v, type(lambda: 0)) else v) for k, v in kwargs.items()}
    return cls(dtype=dtype, **kwargs)


def _strings(cls):
    return (getattr(cls, "contract_example", None) or {}).get("strings")


def make_model(cls, dtype="float32"):
    """The layer alone in a model: Sequential for one input, a Functional Model for several."""
    _, shapes, tokens = example(cls)
    layer = make_layer(cls, dtype)
    if len(shapes) == 1:
        inp = fg.layers.Input(shape=shapes[0], dtype="string" if _strings(cls) else "int32" if tokens else dtype)
        return fg.Sequential([inp, layer]), layer
    inputs = [fg.Input(shape=s, dtype=dtype) for s in shapes]
    return fg.Model(inputs, layer(inputs)), layer


def inputs_for(cls, batch=3, dtype="float32", seed=0):
    _, shapes, tokens = example(cls)
    rng = np.random.default_rng(seed)
    if _strings(cls):
        return [rng.choice(np.array(_strings(cls)), size=(batch,) + s) for s in shapes]
    if tokens:
        return [rng.integers(0, tokens, size=(batch,) + s) for s in shapes]
    return [rng.standard_normal((batch,) + s).astype(dtype) for s in shapes]


def _one(xs):
    return xs[0] if len(xs) == 1 else xs


def _randomize(layer, rng, dtype="float32"):
    weights = [np.asarray(rng.integers(0, 100, w.shape), dtype=w.dtype) if w.dtype.kind in "iu"  # a count
               else np.asarray(rng.uniform(0.5, 1.5, w.shape) if np.all(w >= 0) and "variance" in name
                               else rng.standard_normal(w.shape) * 0.5, dtype=dtype)
               for w, name in zip(layer.get_weights(), layer.weight_paths)]
    layer.set_weights(weights)
    return weights


# (GroupedQueryAttention compares against Keras's compiled graph: eager Keras's sums differ in the 5th digit)
@pytest.fixture(params=[pytest.param(c, marks=pytest.mark.keras_graph) if c.__name__ == "GroupedQueryAttention" else c
                        for c in CLASSES], ids=[c.__name__ for c in CLASSES])
def cls(request):
    return request.param


def test_every_registered_class_declares_its_contract(cls):
    assert isinstance(cls.keras, registry.KerasContract) and cls.keras.names
    assert cls.keras.weights in ("vars", "cell/vars", "wrapper")
    assert all(registry.lookup(n) is cls for n in cls.keras.names)
    assert getattr(fg.layers, cls.__name__) is cls  # exported (Sequential.from_config resolves by name)


def test_config_round_trip(cls):
    layer = make_layer(cls)
    config = layer.get_config()
    again = cls.from_config(dict(config))
    assert again.get_config() == config


def test_weights_order_pickle_and_keras_file_round_trip(cls, tmp_path):
    model, layer = make_model(cls)
    rng = np.random.default_rng(1)
    weights = _randomize(layer, rng)
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    xs = inputs_for(cls)
    expected = model.predict(_one(xs))
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(_one(xs)), expected)
    model.save(tmp_path / "m.keras")
    loaded = fg.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(_one(xs)), expected)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_float64_gradients_match_finite_differences(cls):
    _, shapes, tokens = example(cls)
    model, layer = make_model(cls, dtype="float64")
    _randomize(layer, np.random.default_rng(2), "float64")
    xs = inputs_for(cls, batch=2, dtype="float64", seed=3)
    x = _one(xs)
    y1 = layer.forward(x, training=True)[0]
    y2 = layer.forward(x, training=True)[0]
    training = all(np.array_equal(a, b) for a, b in zip(np.atleast_1d(y1), np.atleast_1d(y2))) \
        if not isinstance(y1, list) else all(np.array_equal(a, b) for a, b in zip(y1, y2))
    if hasattr(layer, "momentum"):
        layer.momentum = 1.0  # BatchNormalization: keep the moving statistics still
    y, cache = layer.forward(x, training=training)
    ys = y if isinstance(y, list) else [y]
    coefs = [np.random.default_rng(4).standard_normal(np.shape(v)) for v in ys]
    dx, grads = layer.backward(coefs if isinstance(y, list) else coefs[0], cache)

    def loss_of(value_x):
        out = layer.forward(value_x, training=training)[0]
        outs = out if isinstance(out, list) else [out]
        return outs

    def total(value_x, coefs=coefs):
        return sum((o * c).sum() for o, c in zip(loss_of(value_x), coefs))

    if not tokens and not _strings(cls):
        dxs = dx if isinstance(dx, list) else [dx]
        for i, xi in enumerate(xs):
            def fi(v, i=i):
                args = list(xs)
                args[i] = v
                return np.array(total(_one(args)))
            np.testing.assert_allclose(dxs[i], numeric_gradient(fi, xi, np.array(1.0)), rtol=1e-5, atol=1e-7)
    for w, g in zip(layer.trainable_weights, grads):
        g = g.dense() if hasattr(g, "dense") else g  # an Embedding's gradient comes as row slices
        def fw(value, w=w):
            saved = w.copy()
            w[...] = value
            try:
                return np.array(total(x))
            finally:
                w[...] = saved
        np.testing.assert_allclose(g, numeric_gradient(fw, w.copy(), np.array(1.0)), rtol=1e-5, atol=1e-7)


@pytest.mark.keras
def test_keras_opens_the_file_and_trains_the_same(cls, keras, tmp_path):
    model, layer = make_model(cls)
    _randomize(layer, np.random.default_rng(5))
    xs = inputs_for(cls, batch=4)
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    expected = model.predict(_one(xs))
    if _strings(cls):  # (Keras's predict takes no NumPy strings: its model is called on a tf.string tensor)
        import tensorflow as tf

        got = np.asarray(theirs(tf.constant(xs[0])))
    else:
        got = theirs.predict(_one(xs), verbose=0)
    for a, b in zip(expected if isinstance(expected, list) else [expected], got if isinstance(got, list) else [got]):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-4, atol=2e-5)
    if not layer.trainable_weights:
        return
    y = model.predict(_one(xs))
    target = np.zeros_like(y) + 0.1 if not isinstance(y, list) else None
    if target is None:
        return
    model.compile(optimizer=fg.optimizers.Adam(0.01), loss="mse")
    theirs.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    np.testing.assert_allclose(model.train_on_batch(_one(xs), target), theirs.train_on_batch(_one(xs), target),
                               rtol=1e-3)
    for o, k in zip(model.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(o, k, rtol=1e-3, atol=1e-5)
