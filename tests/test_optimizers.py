"""Optimizers: variables after 1 and 5 steps against live Keras 3, plus NumPy-only behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from fastgru.training import losses, metrics, optimizers

# Keras's own noise when reading its variables back under NumPy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

SHAPES = [(5, 6), (2, 6), (6,)]  # a kernel, a (2, 3H)-style bias, a vector

CONFIGS = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"learning_rate": 0.1, "clipnorm": 1.0}),
    ("SGD", {"clipvalue": 0.5}),
    ("SGD", {"momentum": 0.5, "global_clipnorm": 1.0}),
    ("SGD", {"momentum": 0.9, "weight_decay": 0.01}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("Adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}),
    ("Adam", {"clipnorm": 1.0}),
    ("Adam", {"global_clipnorm": 0.5, "amsgrad": True}),
    ("Adam", {"clipvalue": 0.1}),
    ("Adam", {"weight_decay": 0.004}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "clipnorm": 1.0}),
    ("RMSprop", {"rho": 0.8, "global_clipnorm": 1.0}),
    ("RMSprop", {"clipvalue": 0.2}),
    ("Adagrad", {}),
    ("Adagrad", {"initial_accumulator_value": 0.5, "epsilon": 1e-5}),
    ("Adagrad", {"clipnorm": 0.5}),
    ("Adagrad", {"learning_rate": 0.1, "weight_decay": 0.01}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True, "clipnorm": 1.0}),
    ("Nadam", {}),
    ("Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5, "global_clipnorm": 1.0}),
    ("Adamax", {}),
    ("Adamax", {"learning_rate": 0.02, "beta_1": 0.8, "weight_decay": 0.01, "clipvalue": 0.5}),
]
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for c, kw in CONFIGS]


def _problem(rng, dtype, steps=5):
    init = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [[(rng.normal(size=s) * rng.choice([0.05, 1.0, 3.0])).astype(dtype) for s in SHAPES]
             for _ in range(steps)]
    return init, grads


def _run_ours(cls_name, kw, init, grads):
    opt = getattr(optimizers, cls_name)(**kw)
    variables = [w.copy() for w in init]
    ids = [id(v) for v in variables]
    snapshots = []
    for g in grads:
        opt.apply(g, variables)
        snapshots.append([v.copy() for v in variables])
    assert [id(v) for v in variables] == ids
    return snapshots, opt


def _run_keras(keras, cls_name, kw, init, grads):
    opt = getattr(keras.optimizers, cls_name)(**kw)
    variables = [keras.Variable(w, dtype=str(w.dtype)) for w in init]
    opt.build(variables)
    snapshots = []
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(x) for x in g], variables)
        snapshots.append([keras.ops.convert_to_numpy(v) for v in variables])
    return snapshots, opt


# ---------------------------------------------------------------- live Keras ---------
@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=IDS)
def test_steps_match_keras_float32(keras, cls_name, kw, rng):
    init, grads = _problem(rng, np.float32)
    ours, opt = _run_ours(cls_name, kw, init, grads)
    theirs, kopt = _run_keras(keras, cls_name, kw, init, grads)
    for step in (0, 4):  # after 1 and after 5 steps
        for a, b in zip(ours[step], theirs[step]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert opt.iterations == int(kopt.iterations) == 5


@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", [CONFIGS[i] for i in (1, 8, 17, 23, 25, 27, 29)],
                         ids=[IDS[i] for i in (1, 8, 17, 23, 25, 27, 29)])
def test_steps_match_keras_float64(keras, cls_name, kw, rng):
    """float64 variables: Keras casts its float32 learning rate up, and so must we."""
    init, grads = _problem(rng, np.float64)
    ours, _ = _run_ours(cls_name, kw, init, grads)
    theirs, _ = _run_keras(keras, cls_name, kw, init, grads)
    for a, b in zip(ours[-1], theirs[-1]):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=IDS)
def test_config_matches_keras(keras, cls_name, kw):
    ours = getattr(optimizers, cls_name)(name="opt", **kw).get_config()
    theirs = getattr(keras.optimizers, cls_name)(name="opt", **kw).get_config()
    assert ours == theirs


@pytest.mark.keras
def test_default_names_match_keras(keras):
    import re

    def stem(name):  # drop the uniquifying suffix ("adam_3" -> "adam")
        return re.sub(r"_\d+$", "", name)

    for cls_name in ("Adam", "SGD", "RMSprop", "Adagrad"):
        assert stem(getattr(optimizers, cls_name)().name) == stem(getattr(keras.optimizers, cls_name)().name)
    assert stem(optimizers.RMSprop().name) == "rm_sprop"  # sic, Keras's snake_case of the class name


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_none_gradients_are_skipped_like_keras(keras, rng):
    init, grads = _problem(rng, np.float32, steps=2)
    grads = [[g[0], None, g[2]] for g in grads]
    ours, _ = _run_ours("Adam", {"global_clipnorm": 1.0}, init, grads)
    opt = keras.optimizers.Adam(global_clipnorm=1.0)
    variables = [keras.Variable(w) for w in init]
    opt.build(variables)
    for g in grads:
        opt.apply(g, variables)
    for a, b in zip(ours[-1], variables):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ours[-1][1], init[1])


# ---------------------------------------------------------------- pure NumPy ---------
def test_sgd_by_hand():
    var = np.array([1.0, 2.0])
    opt = optimizers.SGD(learning_rate=0.5, momentum=0.5)
    opt.apply([np.array([1.0, -1.0])], [var])  # m = -0.5 g ; var += m
    np.testing.assert_allclose(var, [0.5, 2.5])
    opt.apply([np.array([1.0, -1.0])], [var])  # m = 0.5 m - 0.5 g = -0.75 g
    np.testing.assert_allclose(var, [-0.25, 3.25])


def test_adam_first_step_is_about_lr_times_sign():
    var = np.zeros(3, dtype=np.float32)
    optimizers.Adam(learning_rate=0.01).apply([np.array([2.0, -0.5, 0.1], np.float32)], [var])
    np.testing.assert_allclose(var, [-0.01, 0.01, -0.01], rtol=1e-3)


def test_variables_updated_in_place_and_dtype_kept():
    var = np.ones((2, 2), dtype=np.float32)
    view = var
    opt = optimizers.RMSprop()
    opt.apply([np.ones((2, 2), dtype=np.float64)], [var])
    assert view is var and var.dtype == np.float32 and np.all(var < 1)
    assert set(opt.slots[0]) == {"velocity"}


def test_clip_options_are_exclusive():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


def test_clipnorm_and_global_clipnorm():
    g = [np.array([3.0, 4.0]), np.array([0.0])]
    opt = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    v = [np.zeros(2), np.zeros(1)]
    opt.apply(g, v)
    np.testing.assert_allclose(v[0], [-0.6, -0.8])
    opt = optimizers.SGD(learning_rate=1.0, global_clipnorm=2.5)
    v = [np.zeros(2), np.zeros(1)]
    opt.apply(g, v)
    np.testing.assert_allclose(v[0], [-1.5, -2.0])


def test_learning_rate_is_settable_and_held_as_float32():
    opt = optimizers.Adam()
    assert opt.learning_rate == float(np.float32(0.001))
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5 and opt.get_config()["learning_rate"] == 0.5
    with pytest.raises(ValueError):
        opt.learning_rate = "fast"


def test_iterations_and_variable_count_check():
    opt = optimizers.Adagrad()
    v = [np.zeros(2)]
    opt.apply([np.ones(2)], v)
    opt.apply([np.ones(2)], v)
    assert opt.iterations == 2
    with pytest.raises(ValueError, match="built for 1"):
        opt.apply([np.ones(2), np.ones(2)], [np.zeros(2), np.zeros(2)])
    with pytest.raises(TypeError, match="writeable numpy"):
        optimizers.SGD().apply([np.ones(2)], [[0.0, 0.0]])


def test_get_identifiers():
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert isinstance(optimizers.get("SGD"), optimizers.SGD)
    assert isinstance(optimizers.get("RMSprop"), optimizers.RMSprop)
    assert isinstance(optimizers.get("adagrad"), optimizers.Adagrad)
    assert isinstance(optimizers.get("AdamW"), optimizers.AdamW) and optimizers.get("adamw").weight_decay == 0.004
    assert isinstance(optimizers.get("nadam"), optimizers.Nadam)
    assert isinstance(optimizers.get("Adamax"), optimizers.Adamax)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    inst = optimizers.SGD(momentum=0.9)
    assert optimizers.get(inst) is inst
    cfg = optimizers.Adam(learning_rate=0.02, amsgrad=True, clipnorm=2.0).get_config()
    rebuilt = optimizers.get({"class_name": "Adam", "config": cfg})
    assert rebuilt.get_config() == cfg
    with pytest.raises(ValueError, match="could not interpret"):
        optimizers.get("lbfgs")
    assert optimizers.get({"class_name": "Adam", "config": {"use_ema": True}}).use_ema  # (Keras's EMA)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.get({"class_name": "Adam", "config": {"use_ema": True, "ema_momentum": 2.0}})


# ------------------------------------------------- the pieces together vs keras.fit ----
def _dense_sigmoid_epoch(W, b, x, y, batch_size, loss, opt=None):
    """One pass of a Dense(1, sigmoid) model the way Keras's fit/evaluate book-keep it: loss from
    the logits, the loss tracker weighted by batch size, metrics on the pre-update predictions."""
    tracker, acc = metrics.Mean(name="loss"), metrics.get("accuracy")
    for s in range(0, len(x), batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        z = xb @ W + b
        value, dz = loss.value_and_grad_from_logits(yb, z)
        tracker.update_state(np.float32(value), sample_weight=len(xb))
        acc.update_state(yb, 1 / (1 + np.exp(-z)))
        if opt is not None:
            opt.apply([xb.T @ dz, dz.sum(axis=0)], [W, b])
    return {"accuracy": acc.result(), "loss": tracker.result()}


@pytest.mark.keras
def test_training_bookkeeping_matches_keras_fit(keras, rng):
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = (rng.random((20, 1)) > 0.5).astype(np.float32)
    w0, b0 = (rng.normal(size=(4, 1)) * 2).astype(np.float32), np.zeros(1, np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.set_weights([w0, b0])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=6, epochs=3, shuffle=False, verbose=0, validation_split=0.2).history
    on_batch = model.train_on_batch(x[:5], y[:5])
    evaluated = model.evaluate(x, y, batch_size=6, verbose=0)

    W, b = w0.copy(), b0.copy()
    opt, loss = optimizers.Adam(0.05), losses.get("binary_crossentropy")
    ours: dict[str, list] = {}
    for _ in range(3):  # validation_split takes the *last* 20% before any shuffling
        logs = _dense_sigmoid_epoch(W, b, x[:16], y[:16], 6, loss, opt)
        logs.update({f"val_{k}": v for k, v in _dense_sigmoid_epoch(W, b, x[16:], y[16:], 6, loss).items()})
        for k, v in logs.items():
            ours.setdefault(k, []).append(v)
    assert list(history) == sorted(history) == sorted(ours)  # Keras sorts the log keys
    for k in history:
        np.testing.assert_allclose(ours[k], history[k], rtol=1e-5)
    tob = _dense_sigmoid_epoch(W, b, x[:5], y[:5], 5, loss, opt)  # metrics reset per call
    np.testing.assert_allclose([tob["loss"], tob["accuracy"]], on_batch, rtol=1e-5)
    ev = _dense_sigmoid_epoch(W, b, x, y, 6, loss)
    np.testing.assert_allclose([ev["loss"], ev["accuracy"]], evaluated, rtol=1e-5)  # [loss, *metrics]
    np.testing.assert_allclose(W, model.get_weights()[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_compiled_update_is_bit_identical_to_the_array_expressions(dtype, rng, monkeypatch):
    """Adam updates dense, C-contiguous variables in one compiled pass (``_kernels/optim.py``); the
    others (and row gradients, amsgrad) take the NumPy expressions. Both give the same bits at every
    step, weight decay and clipping in front."""
    shapes = [(7, 13), (5,), (), (3, 4, 2)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) * 10.0 ** rng.integers(-3, 2) for s in shapes] for _ in range(6)]
    kw = dict(learning_rate=0.01, beta_1=0.8, beta_2=0.95, epsilon=1e-6, weight_decay=0.01, clipnorm=5.0)
    takes_compiled_path = optimizers._flat_kernel_operands
    assert takes_compiled_path(*init[:1] * 4) and takes_compiled_path(*init[2:3] * 4)
    assert not takes_compiled_path(np.asfortranarray(init[0]), init[0])

    def run(flat_path: bool):
        monkeypatch.setattr(optimizers, "_flat_kernel_operands", lambda *a: flat_path)
        variables, opt, steps = [w.copy() for w in init], optimizers.Adam(**kw), []
        for g in grads:
            opt.apply(g, variables)
            steps.append([w.copy() for w in variables])
        return steps

    compiled, expressions = run(True), run(False)
    for after_compiled, after_expressions in zip(compiled, expressions):
        for a, b in zip(after_compiled, after_expressions):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(compiled[-1][0], init[0])


def test_adam_compiled_update_flushes_subnormals_to_zero_as_tensorflow_does():
    """A slot whose gradient stays zero decays geometrically into the subnormal range, where x86 runs
    every operation on a slow microcode path (20x the update's time, measured). The compiled update
    reads subnormal inputs as zero and flushes subnormal results to zero, as TensorFlow's kernels do,
    and puts the thread's floating-point mode back afterwards."""
    from fastgru._kernels.optim import adam_update

    tiny = np.finfo(np.float32).tiny
    var = np.ones(3, np.float32)
    g = np.zeros(3, np.float32)
    m = np.array([tiny / 4, tiny * 2, 0.5], np.float32)  # a subnormal, a small normal, a large value
    v = np.array([tiny / 4, tiny * 2, 0.25], np.float32)
    assert 0 < m[0] < tiny
    adam_update(var, g, m, v, np.float32(1e-3), np.float32(0.1), np.float32(0.001), np.float32(1e-7))
    assert m[0] == 0.0 and v[0] == 0.0  # subnormal inputs read as zero (NumPy: tiny / 4 * 0.9)
    # the step (0 - m) * 0.1 = -0.2 tiny is below the normal range: flushed, so m keeps its value
    # (NumPy: 1.8 tiny; TensorFlow 2.21, flushing too, keeps 2 tiny as here: checked by hand)
    assert m[1] == np.float32(tiny * 2) and v[1] == np.float32(tiny * 2)
    np.testing.assert_array_equal(m[2], np.float32(0.5) + (np.float32(0) - np.float32(0.5)) * np.float32(0.1))
    assert var[0] == 1.0 and var[2] < 1.0
    assert np.float32(tiny) * np.float32(0.5) > 0  # NumPy, after the call, still makes subnormals
