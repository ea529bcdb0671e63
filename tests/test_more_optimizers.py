"""Adadelta, Lion, Ftrl and the CosineDecayRestarts schedule: against live Keras 3 (steps, row gradients,
configs, schedule values, ``fit``, ``.keras`` files), then without Keras (values Keras computed, committed
here; a float64 transcription of the rules; argument checks)."""

from __future__ import annotations

import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import GRU, Dense, Input
from fastgru.training import optimizers, schedules
from fastgru.training.row_gradient import RowGradient

# Keras's own noise when reading its variables back under NumPy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")

SHAPES = [(5, 6), (2, 6), (6,)]
RESTARTS = ("CosineDecayRestarts", {"initial_learning_rate": 0.05, "first_decay_steps": 2, "t_mul": 1.5,
                                    "m_mul": 0.8, "alpha": 0.1})
EXPONENTIAL = ("ExponentialDecay", {"initial_learning_rate": 0.5, "decay_steps": 2, "decay_rate": 0.7})

CONFIGS = [
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-5, "weight_decay": 0.01}),
    ("Adadelta", {"learning_rate": 0.5, "clipnorm": 1.0}),
    ("Adadelta", {"learning_rate": RESTARTS, "global_clipnorm": 2.0}),
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.7, "beta_2": 0.9, "weight_decay": 0.1}),
    ("Lion", {"learning_rate": 0.02, "beta_1": 1.0, "clipvalue": 0.5}),
    ("Lion", {"learning_rate": RESTARTS, "clipnorm": 1.0}),
    ("Ftrl", {}),
    ("Ftrl", {"learning_rate": 0.1, "l1_regularization_strength": 0.01, "l2_regularization_strength": 0.02,
              "l2_shrinkage_regularization_strength": 0.03, "beta": 0.5, "learning_rate_power": -0.7}),
    ("Ftrl", {"learning_rate": 0.1, "learning_rate_power": 0.0, "initial_accumulator_value": 0.0,
              "global_clipnorm": 1.0}),
    ("Ftrl", {"learning_rate": RESTARTS, "l1_regularization_strength": 0.05, "weight_decay": 0.01}),
    ("Ftrl", {"learning_rate": EXPONENTIAL, "l2_regularization_strength": 0.1, "clipnorm": 0.5}),
]
IDS = [f"{c}-{'-'.join(f'{k}={v[0] if isinstance(v, tuple) else v}' for k, v in kw.items()) or 'default'}"
       for c, kw in CONFIGS]


def _make(module, cls_name: str, kw: dict):
    """``module.optimizers.<cls_name>(**kw)`` (``module``: fastgru or keras), a ``(name, config)`` learning rate
    made into that module's schedule."""
    kw = dict(kw)
    if isinstance(kw.get("learning_rate"), tuple):
        name, config = kw["learning_rate"]
        kw["learning_rate"] = getattr(module.optimizers.schedules, name)(**config)
    return getattr(module.optimizers, cls_name)(**kw)


def _problem(rng, dtype, steps=6):
    init = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    grads = [[(rng.normal(size=s) * rng.choice([0.05, 1.0, 3.0])).astype(dtype) for s in SHAPES]
             for _ in range(steps)]
    return init, grads


def _run_ours(opt, init, grads):
    variables = [w.copy() for w in init]
    snapshots = []
    for g in grads:
        opt.apply(g, variables)
        snapshots.append([v.copy() for v in variables])
    return snapshots


def _run_keras(keras, opt, init, grads, to_tensor=None):
    to_tensor = to_tensor or keras.ops.convert_to_tensor
    variables = [keras.Variable(w, dtype=str(w.dtype)) for w in init]
    opt.build(variables)
    snapshots = []
    for g in grads:
        opt.apply([to_tensor(x) for x in g], variables)
        snapshots.append([keras.ops.convert_to_numpy(v) for v in variables])
    return snapshots


# fastgru's slot name: Keras's attribute holding that slot per variable
KERAS_SLOTS = {"accumulated_grad": "_accumulated_grads", "accumulated_delta_var": "_accumulated_delta_vars",
               "momentum": "_momentums", "accumulator": "_accumulators", "linear": "_linears"}


def _assert_slots_match(keras, opt, kopt, exact: bool) -> None:
    for i, slots in enumerate(opt.slots):
        for name, value in slots.items():
            theirs = keras.ops.convert_to_numpy(getattr(kopt, KERAS_SLOTS[name])[i])
            if exact:
                np.testing.assert_array_equal(value, theirs, err_msg=name)
            # Ftrl's linear slot sums ``(n'^p - n^p) / lr * var``, a difference of close powers: their last
            # bits (TensorFlow's vectorized pow) show up a few decimals earlier there than in the variables
            rtol = 1e-4 if name == "linear" else 1e-6
            np.testing.assert_allclose(value, theirs, rtol=rtol, atol=1e-7, err_msg=name)


def _bit_exact(cls_name: str, kw: dict) -> bool:
    """Adadelta and Lion agree with Keras to the bit (elementwise IEEE operations in the same order) unless
    a norm is clipped (NumPy and TensorFlow sum the squares in different orders); Ftrl's powers differ in
    the last bit (TensorFlow's vectorized ``pow`` against the C library's)."""
    return cls_name != "Ftrl" and not {"clipnorm", "global_clipnorm"} & set(kw)


# ---------------------------------------------------------------- live Keras ---------
@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=IDS)
def test_steps_match_keras_float32(keras, cls_name, kw, rng):
    init, grads = _problem(rng, np.float32)
    opt, kopt = _make(fg, cls_name, kw), _make(keras, cls_name, kw)
    ours, theirs = _run_ours(opt, init, grads), _run_keras(keras, kopt, init, grads)
    for step, (after_ours, after_theirs) in enumerate(zip(ours, theirs)):
        for a, b in zip(after_ours, after_theirs):
            if _bit_exact(cls_name, kw):
                np.testing.assert_array_equal(a, b, err_msg=f"step {step}")
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
    _assert_slots_match(keras, opt, kopt, _bit_exact(cls_name, kw))
    assert opt.iterations == int(kopt.iterations) == len(grads)
    assert not np.allclose(ours[-1][0], init[0])
    np.testing.assert_allclose(opt.learning_rate, float(kopt.learning_rate), rtol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", [CONFIGS[i] for i in (1, 3, 5, 9, 11)], ids=[IDS[i] for i in (1, 3, 5, 9, 11)])
def test_steps_match_keras_float64(keras, cls_name, kw, rng):
    """float64 variables: the float32 learning rate cast up, Lion's betas through float32, the other
    hyperparameters straight into float64, as Keras does."""
    init, grads = _problem(rng, np.float64)
    ours = _run_ours(_make(fg, cls_name, kw), init, grads)
    theirs = _run_keras(keras, _make(keras, cls_name, kw), init, grads)
    for a, b in zip(ours[-1], theirs[-1]):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", [
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", {"learning_rate": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    ("Lion", {"learning_rate": 0.1, "beta_1": 0.8}),
    ("Ftrl", {"learning_rate": 0.5, "l1_regularization_strength": 0.01, "l2_shrinkage_regularization_strength": 0.1}),
], ids=["adadelta", "adadelta-decay", "lion", "ftrl"])
def test_row_gradients_match_keras_indexed_slices(keras, cls_name, kw, rng):
    """An Embedding's gradient, slices with repeated rows, as TensorFlow's IndexedSlices: Keras scales and
    squares the slices before summing them (Adadelta: every product per slice; Lion: ``(1 - beta) g``)."""
    import tensorflow as tf

    shape = (7, 3)
    init = [rng.normal(size=shape).astype(np.float32)]
    indices = [rng.integers(0, 4, 6) for _ in range(4)]  # rows 4-6 never looked up
    slices = [rng.normal(size=(6, 3)).astype(np.float32) for _ in range(4)]
    opt, kopt = _make(fg, cls_name, kw), _make(keras, cls_name, kw)
    ours = _run_ours(opt, init, [[RowGradient(i, v, shape)] for i, v in zip(indices, slices)])
    theirs = _run_keras(keras, kopt, init, [[(i, v)] for i, v in zip(indices, slices)],
                        to_tensor=lambda iv: tf.IndexedSlices(tf.constant(iv[1]), tf.constant(iv[0]), shape))
    _assert_slots_match(keras, opt, kopt, exact=cls_name != "Ftrl")
    for step, (a, b) in enumerate(zip(ours, theirs)):
        if cls_name != "Ftrl":
            np.testing.assert_array_equal(a[0], b[0], err_msg=f"step {step}")
        np.testing.assert_allclose(a[0], b[0], rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
    if cls_name != "Ftrl" and "weight_decay" not in kw:  # (Ftrl rewrites every row from its slots)
        np.testing.assert_array_equal(ours[-1][0][4:], init[0][4:])
    # the dense sum of the same slices takes another path: other numbers where rows repeat
    dense_opt = _make(fg, cls_name, kw)
    dense = _run_ours(dense_opt, init, [[RowGradient(i, v, shape).dense()] for i, v in zip(indices, slices)])
    if cls_name == "Lion":  # (a rounding apart: the signs of the updates agree)
        assert not np.array_equal(dense_opt.slots[0]["momentum"], opt.slots[0]["momentum"])
    else:
        assert not np.allclose(dense[-1][0], ours[-1][0], rtol=1e-4)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_adadelta_without_epsilon_matches_keras_nans_for_untouched_rows(keras, rng):
    """epsilon=0: rows never looked up divide 0 by 0 (Keras's sparse division adds them to the slices)."""
    import tensorflow as tf

    shape, init = (5, 2), [rng.normal(size=(5, 2)).astype(np.float32)]
    grads = [(np.array([0, 3]), rng.normal(size=(2, 2)).astype(np.float32)) for _ in range(2)]
    ours = _run_ours(fg.optimizers.Adadelta(1.0, epsilon=0.0), init, [[RowGradient(i, v, shape)] for i, v in grads])
    theirs = _run_keras(keras, keras.optimizers.Adadelta(1.0, epsilon=0.0), init, [[g] for g in grads],
                        to_tensor=lambda iv: tf.IndexedSlices(tf.constant(iv[1]), tf.constant(iv[0]), shape))
    np.testing.assert_array_equal(ours[-1][0], theirs[-1][0])
    assert np.isnan(ours[-1][0][1]).all() and not np.isnan(ours[-1][0][[0, 3]]).any()


@pytest.mark.keras
@pytest.mark.parametrize("cls_name,kw", CONFIGS, ids=IDS)
def test_config_matches_keras(keras, cls_name, kw):
    ours, theirs = _make(fg, cls_name, dict(kw, name="opt")), _make(keras, cls_name, dict(kw, name="opt"))
    assert ours.get_config() == theirs.get_config()
    again = getattr(optimizers, cls_name).from_config(theirs.get_config())  # Keras's config read back
    assert again.get_config() == ours.get_config()
    from_keras = optimizers.get(theirs)  # Keras's own object, as compile takes it
    assert type(from_keras) is type(ours) and from_keras.get_config() == ours.get_config()
    rebuilt = keras.optimizers.get({"class_name": cls_name, "config": ours.get_config()})
    assert rebuilt.get_config() == theirs.get_config()


@pytest.mark.keras
def test_default_names_match_keras(keras):
    for cls_name in ("Adadelta", "Lion", "Ftrl"):
        assert getattr(optimizers, cls_name)().name.split("_")[0] == getattr(keras.optimizers, cls_name)().name.split(
            "_")[0] == cls_name.lower()


RESTART_CASES = [
    {"initial_learning_rate": 0.1, "first_decay_steps": 10},
    {"initial_learning_rate": 0.1, "first_decay_steps": 10, "t_mul": 1.5, "m_mul": 0.7, "alpha": 0.1},
    {"initial_learning_rate": 0.05, "first_decay_steps": 7, "t_mul": 1.0, "m_mul": 0.9},
    {"initial_learning_rate": 1.0, "first_decay_steps": 3, "t_mul": 3.0, "alpha": 0.2, "name": "sgdr"},
    {"initial_learning_rate": 0.3, "first_decay_steps": 5, "t_mul": 0.8},  # shrinking periods: NaN past their sum
    {"initial_learning_rate": 0.1, "first_decay_steps": 1, "t_mul": 1.1, "m_mul": 0.95},
    {"initial_learning_rate": 0.02, "first_decay_steps": 4.5, "t_mul": 2.0, "m_mul": 1.2, "alpha": 0.5},
]


@pytest.mark.keras
@pytest.mark.parametrize("config", RESTART_CASES, ids=[str(i) for i in range(len(RESTART_CASES))])
def test_cosine_decay_restarts_values_match_keras(keras, config):
    """Every step up to 400, restarts included: the same float32 values (to the bit where the C math library,
    whose logf/cosf/powf TensorFlow's scalar kernels call, is found)."""
    ours = schedules.CosineDecayRestarts(**config)
    theirs = keras.optimizers.schedules.CosineDecayRestarts(**config)
    got = np.array([ours(step) for step in range(400)])
    want = np.array([float(theirs(step)) for step in range(400)], np.float32)
    assert got.dtype == np.float32
    if schedules._c_float_functions() is not None:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-12)
    assert np.isnan(got).any() == (config.get("t_mul", 2.0) < 1)
    serialized = keras.optimizers.schedules.serialize(theirs)
    assert schedules.get(serialized).get_config() == ours.get_config() == theirs.get_config()
    assert schedules.get(theirs).get_config() == ours.get_config()  # Keras's own schedule object
    assert keras.optimizers.schedules.deserialize(schedules.serialize(ours)).get_config() == theirs.get_config()


@pytest.mark.keras
@pytest.mark.parametrize("name,config", [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.7}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "power": 0.7, "cycle": True}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 300, "alpha": 0.1}),
    ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 200, "warmup_target": 0.2, "warmup_steps": 30}),
])
def test_other_schedules_are_bit_exact_with_the_c_math_library(keras, name, config):
    """The powers and cosines of the other schedules go through the same C functions as TensorFlow's."""
    ours, theirs = getattr(schedules, name)(**config), getattr(keras.optimizers.schedules, name)(**config)
    got = np.array([ours(step) for step in range(500)])
    want = np.array([float(theirs(step)) for step in range(500)], np.float32)
    if schedules._c_float_functions() is not None:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, want, rtol=2e-6)


FIT_CASES = {
    "adadelta": lambda m: m.optimizers.Adadelta(learning_rate=1.0, clipnorm=1.0),
    "lion": lambda m: m.optimizers.Lion(learning_rate=m.optimizers.schedules.CosineDecayRestarts(0.003, 3),
                                        weight_decay=0.05),
    "ftrl": lambda m: m.optimizers.Ftrl(learning_rate=0.2, l1_regularization_strength=0.001,
                                        l2_regularization_strength=0.01, beta=0.1),
}


def _keras_gru(keras, rng):
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.GRU(5), keras.layers.Dense(2)])
    model.set_weights([(rng.standard_normal(w.shape) * 0.4).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.mark.keras
@pytest.mark.parametrize("optimizer", list(FIT_CASES))
def test_fit_matches_keras_and_keras_files_restore_compiled(keras, optimizer, tmp_path, rng):
    """A GRU model compiled in Keras with the optimizer, saved as .keras, loads compiled in fastgru (the
    optimizer from the file's compile config); both then fit the same data to the same losses and weights."""
    model = _keras_gru(keras, rng)
    x, y = rng.standard_normal((20, 6, 3)).astype(np.float32), rng.standard_normal((20, 2)).astype(np.float32)
    model.compile(optimizer=FIT_CASES[optimizer](keras), loss="mse")
    model.save(tmp_path / "m.keras")
    ours = fg.load_model(tmp_path / "m.keras")
    assert type(ours.optimizer) is getattr(fg.optimizers, type(model.optimizer).__name__)
    assert ours.optimizer.get_config() == model.optimizer.get_config()
    want = model.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(x, y, epochs=3, batch_size=4, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert ours.optimizer.iterations == int(model.optimizer.iterations) == 15


@pytest.mark.keras
@pytest.mark.parametrize("optimizer", ["adadelta", "lion", "ftrl"])
def test_compile_by_name_trains_like_keras(keras, optimizer, rng):
    model = _keras_gru(keras, rng)
    ours = fg.from_keras(model)
    x, y = rng.standard_normal((12, 6, 3)).astype(np.float32), rng.standard_normal((12, 2)).astype(np.float32)
    model.compile(optimizer=optimizer, loss="mse")
    ours.compile(optimizer=optimizer, loss="mse")
    assert ours.optimizer.get_config() == dict(model.optimizer.get_config(), name=ours.optimizer.name)
    for _ in range(3):
        np.testing.assert_allclose(ours.train_on_batch(x, y), model.train_on_batch(x, y), rtol=1e-5)
    for a, b in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # (fastgru saves no slots)
def test_fastgru_file_with_these_optimizers_loads_compiled_in_keras(keras, tmp_path):
    model = fg.Sequential([Input((4, 2)), GRU(3), Dense(1)])
    opt = fg.optimizers.Ftrl(fg.optimizers.schedules.CosineDecayRestarts(0.1, 5, t_mul=1.5), beta=0.3)
    model.compile(optimizer=opt, loss="mse")
    model.save(tmp_path / "m.keras")
    theirs = keras.models.load_model(tmp_path / "m.keras")
    assert type(theirs.optimizer).__name__ == "Ftrl" and theirs.optimizer.beta == 0.3
    assert theirs.optimizer.get_config() == opt.get_config()
    again = fg.load_model(tmp_path / "m.keras")
    assert again.optimizer.get_config() == opt.get_config()


# ---------------------------------------------------------------- without Keras ------
VAR0 = np.array([0.5, -1.0, 2.0, 0.0, 0.25], np.float32)
GRADS = np.array([[0.1, -0.2, 0.3, 0.0, 0.0], [-0.5, 0.25, 1.0, 0.0, 0.05], [0.75, 0.5, -2.0, 1.5, -0.01]],
                 np.float32)
# variables after each step, computed by Keras 3.13 (TensorFlow 2.21) from VAR0 and GRADS
KERAS_STEPS = {
    "Adadelta": ({"learning_rate": 1.0, "rho": 0.9}, [
        [0.49900004267692566, -0.9990000128746033, 1.9989999532699585, 0.0, 0.25],
        [0.5003894567489624, -1.0001264810562134, 1.997639775276184, 0.0, 0.2490002065896988],
        [0.49874383211135864, -1.0016560554504395, 1.9993765354156494, -0.0009999996982514858, 0.24929185211658478]]),
    "Lion": ({"learning_rate": 0.1, "beta_1": 0.8, "weight_decay": 0.1}, [
        [0.39500001072883606, -0.8899999856948853, 1.8799999952316284, 0.0, 0.2475000023841858],
        [0.49105000495910645, -0.9811000227928162, 1.761199951171875, 0.0, 0.14502501487731934],
        [0.38613951206207275, -1.0712890625, 1.8435879945755005, -0.10000000149011612, 0.24357476830482483]]),
    "Ftrl": ({"learning_rate": 0.5, "l1_regularization_strength": 0.01, "l2_regularization_strength": 0.1,
              "l2_shrinkage_regularization_strength": 0.05, "beta": 0.2}, [
        [-0.09860114753246307, 0.12914039194583893, -0.007712741382420063, 0.0, -0.012170825153589249],
        [0.17354334890842438, -0.03280229866504669, -0.3669223487377167, 0.0, -0.05150197818875313],
        [-0.12291555851697922, -0.28813764452934265, 0.024188807234168053, -0.4064440131187439,
         -0.03929022699594498]]),
}


@pytest.mark.parametrize("cls_name", list(KERAS_STEPS))
def test_steps_match_values_computed_by_keras(cls_name):
    kw, want = KERAS_STEPS[cls_name]
    var = VAR0.copy()
    opt = getattr(optimizers, cls_name)(**kw)
    for g, expected in zip(GRADS, want):
        opt.apply([g], [var])
        if cls_name == "Ftrl":
            np.testing.assert_allclose(var, np.float32(expected), rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(var, np.float32(expected))
    assert opt.iterations == 3


# an Embedding-like (4, 3) variable, slices for rows 2, 0, 2, 2 (then twice these values), by Keras 3.13 with
# tf.IndexedSlices gradients
E0 = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
ROWS = np.array([2, 0, 2, 2])
SLICES = np.array([[0.5, -0.25, 1.0], [0.125, 0.0, -1.5], [-0.75, 0.5, 0.25], [2.0, 1.0, -0.5]], np.float32)
KERAS_ROWS = {
    "Adadelta": [[-0.5032119154930115, -0.4000000059604645, -0.29678794741630554],
                 [-0.19999998807907104, -0.09999999403953552, 0.0],
                 [0.09743766486644745, 0.19649533927440643, 0.29789724946022034],
                 [0.3999999761581421, 0.5, 0.6000000238418579]],
    "Lion": [[-0.7000000476837158, -0.4000000059604645, -0.10000001639127731],
             [-0.19999998807907104, -0.09999999403953552, 0.0],
             [-0.09999997913837433, -1.4901161193847656e-08, 0.10000001639127731],
             [0.3999999761581421, 0.5, 0.6000000238418579]],
}


@pytest.mark.parametrize("cls_name,learning_rate", [("Adadelta", 1.0), ("Lion", 0.1)])
def test_row_gradient_steps_match_values_computed_by_keras(cls_name, learning_rate):
    var = E0.copy()
    opt = getattr(optimizers, cls_name)(learning_rate)
    for scale in (1, 2):
        opt.apply([RowGradient(ROWS, SLICES * scale, var.shape)], [var])
    np.testing.assert_array_equal(var, np.float32(KERAS_ROWS[cls_name]))


def _reference_float64(cls_name: str, kw: dict, var: np.ndarray, grads: list) -> np.ndarray:
    """Keras's rules written out in float64, the learning rate (a float32 variable in Keras) rounded to
    float32, as are Lion's betas (``ops.cast`` of a Python float)."""
    lr = float(np.float32(kw.get("learning_rate", 0.001)))
    var = var.astype(np.float64)
    a, b = np.zeros_like(var), np.zeros_like(var)
    if cls_name == "Ftrl":
        a[:] = float(np.float32(kw.get("initial_accumulator_value", 0.1)))
    for g in grads:
        if cls_name == "Adadelta":
            rho, eps = kw.get("rho", 0.95), kw.get("epsilon", 1e-7)
            a = rho * a + (1 - rho) * g**2
            delta = -np.sqrt(b + eps) * g / np.sqrt(a + eps)
            b = rho * b + (1 - rho) * delta**2
            var = var + lr * delta
        elif cls_name == "Lion":
            b1, b2 = (float(np.float32(kw.get(k, d))) for k, d in (("beta_1", 0.9), ("beta_2", 0.99)))
            var = var - lr * np.sign(b1 * a + (1 - b1) * g)
            a = b2 * a + (1 - b2) * g
        else:
            p = -kw.get("learning_rate_power", -0.5)
            l1, l2 = kw.get("l1_regularization_strength", 0.0), kw.get("l2_regularization_strength", 0.0)
            shrink, beta = kw.get("l2_shrinkage_regularization_strength", 0.0), kw.get("beta", 0.0)
            n = a + g**2
            b = b + g + 2 * shrink * var - (n**p - a**p) / lr * var
            var = (np.clip(b, -l1, l1) - b) / (n**p / lr + 2 * (l2 + beta / (2 * lr)))
            a = n
    return var


@pytest.mark.parametrize("cls_name,kw", [
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.8, "epsilon": 1e-6}),
    ("Lion", {"learning_rate": 0.05, "beta_1": 0.85, "beta_2": 0.95}),
    ("Ftrl", {"learning_rate": 0.3, "learning_rate_power": -0.6, "l1_regularization_strength": 0.02,
              "l2_regularization_strength": 0.05, "l2_shrinkage_regularization_strength": 0.01, "beta": 0.4}),
])
def test_float64_variables_follow_the_rules_written_out(cls_name, kw, rng):
    init, grads = _problem(rng, np.float64, steps=5)
    ours = _run_ours(getattr(optimizers, cls_name)(**kw), init, grads)[-1]
    for i, w in enumerate(init):
        want = _reference_float64(cls_name, kw, w, [g[i] for g in grads])
        np.testing.assert_allclose(ours[i], want, rtol=1e-10, atol=1e-12)


def test_names_strings_configs_and_compile():
    for name, cls in (("adadelta", optimizers.Adadelta), ("Lion", optimizers.Lion), ("FTRL", optimizers.Ftrl)):
        assert type(optimizers.get(name)) is cls
        assert fg.optimizers.get(name).get_config()["learning_rate"] == pytest.approx(0.001)
    lion = fg.optimizers.Lion(0.01, beta_2=0.95, clipvalue=1.0, name="lion_a")
    config = lion.get_config()
    assert config["beta_1"] == 0.9 and config["beta_2"] == 0.95 and config["clipvalue"] == 1.0
    assert optimizers.get({"class_name": "Lion", "config": config}).get_config() == config
    ftrl = optimizers.Ftrl(schedules.CosineDecayRestarts(0.1, 4, m_mul=0.5), l1_regularization_strength=0.1)
    again = optimizers.Ftrl.from_config(ftrl.get_config())
    assert again.get_config() == ftrl.get_config()
    assert again._schedule.get_config() == {"initial_learning_rate": 0.1, "first_decay_steps": 4, "t_mul": 2.0,
                                            "m_mul": 0.5, "alpha": 0.0, "name": "SGDRDecay"}
    assert optimizers.Adadelta().get_config()["rho"] == 0.95 and optimizers.Adadelta().epsilon == 1e-7
    model = fg.Sequential([Input((4, 2)), GRU(3), Dense(1)])
    model.compile(optimizer="adadelta", loss="mse")
    assert isinstance(model.optimizer, fg.optimizers.Adadelta)
    model.compile(optimizer={"class_name": "Ftrl", "config": {"beta": 0.5}}, loss="mse")
    assert isinstance(model.optimizer, fg.optimizers.Ftrl) and model.optimizer.beta == 0.5
    history = model.fit(np.ones((4, 4, 2), np.float32), np.ones((4, 1), np.float32), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.optimizer.iterations == 2


def test_slots_carry_keras_names():
    var = [np.ones((2, 3), np.float32)]
    for opt, names in ((optimizers.Adadelta(), {"accumulated_grad", "accumulated_delta_var"}),
                       (optimizers.Lion(), {"momentum"}), (optimizers.Ftrl(), {"accumulator", "linear"})):
        opt.apply([np.ones((2, 3), np.float32)], [v.copy() for v in var])
        assert set(opt.slots[0]) == names
    ftrl = optimizers.Ftrl(initial_accumulator_value=0.3)
    ftrl.build([np.zeros(2, np.float64)])
    assert ftrl.slots[0]["accumulator"][0] == np.float64(np.float32(0.3))  # Keras's Constant: through float32


def test_bad_arguments_raise_like_keras():
    with pytest.raises(ValueError, match="`beta_1` must be in the \\[0, 1\\] range"):
        optimizers.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="beta_1=1.5"):
        optimizers.Lion(beta_1=1.5)
    with pytest.raises(ValueError, match="`initial_accumulator_value` needs to be positive or zero"):
        optimizers.Ftrl(initial_accumulator_value=-0.1)
    with pytest.raises(ValueError, match="`learning_rate_power` needs to be negative or zero"):
        optimizers.Ftrl(learning_rate_power=0.5)
    for name in ("l1_regularization_strength", "l2_regularization_strength", "l2_shrinkage_regularization_strength"):
        with pytest.raises(ValueError, match=f"`{name}` needs to be positive or zero. Received: {name}=-1"):
            optimizers.Ftrl(**{name: -1.0})
    with pytest.raises(ValueError, match="Argument\\(s\\) not recognized"):
        optimizers.Adadelta(momentum=0.9)
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.Adadelta(clipnorm=1.0, global_clipnorm=1.0)
    assert optimizers.get({"class_name": "Lion", "config": {"use_ema": True}}).use_ema  # (Keras's EMA)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.get({"class_name": "Lion", "config": {"use_ema": True, "ema_momentum": 2.0}})
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Ftrl(learning_rate="fast")
    with pytest.raises(ValueError, match="first_decay_steps` must be > 0"):
        schedules.CosineDecayRestarts(0.1, 0)
    with pytest.raises(ValueError, match="CosineDecayRestarts"):
        schedules.get({"class_name": "CosineDecayRestarts", "config": {"initial_learning_rate": 0.1}})


# CosineDecayRestarts(0.1, 10, t_mul=1.5, m_mul=0.7, alpha=0.1) at these steps, by Keras 3.13
RESTART_STEPS = [0, 5, 9, 10, 11, 24, 25, 26, 47, 48, 100]
KERAS_RESTART_VALUES = [0.10000000149011612, 0.05499999597668648, 0.012202458456158638, 0.07300000637769699,
                        0.0723116472363472, 0.010688348673284054, 0.054100003093481064, 0.053885411471128464,
                        0.01005371194332838, 0.04085328429937363, 0.025083942338824272]


def test_cosine_decay_restarts_values_computed_by_keras():
    schedule = fg.optimizers.schedules.CosineDecayRestarts(0.1, 10, t_mul=1.5, m_mul=0.7, alpha=0.1)
    got = [schedule(step) for step in RESTART_STEPS]
    np.testing.assert_allclose(got, np.float32(KERAS_RESTART_VALUES), rtol=2e-6)
    # restarts at 10 and 25 (periods of 10 and 15 steps), from 0.7 and 0.49 times the decaying part
    assert got[3] == pytest.approx(0.1 * (0.9 * 0.7 + 0.1)) and got[6] == pytest.approx(0.1 * (0.9 * 0.49 + 0.1))


def _restarts_float64(step: int, initial: float, first: float, t_mul: float, m_mul: float, alpha: float) -> float:
    """SGDR by walking the periods: period i lasts ``first * t_mul**i`` steps and starts from ``m_mul**i``."""
    start, length, i = 0.0, first, 0
    while step >= start + length:
        start, length, i = start + length, length * t_mul, i + 1
    fraction = (step - start) / length
    return initial * ((1 - alpha) * 0.5 * m_mul**i * (1 + np.cos(np.pi * fraction)) + alpha)


@pytest.mark.parametrize("config", [(0.1, 10, 2.0, 1.0, 0.0), (0.2, 4, 1.0, 0.8, 0.05), (0.05, 3, 3.0, 0.9, 0.2)])
def test_cosine_decay_restarts_follows_the_periods(config):
    schedule = schedules.CosineDecayRestarts(*config)
    for step in range(200):
        want = _restarts_float64(step, *config)
        assert schedule(step) == pytest.approx(want, rel=2e-5, abs=1e-7), step
    assert schedules.serialize(schedule)["class_name"] == "CosineDecayRestarts"


@pytest.mark.parametrize("c_library", [True, False])
def test_c_math_functions_or_their_fallback_give_float32(c_library, monkeypatch):
    if not c_library:  # no C math library: the double-precision values rounded to float32
        monkeypatch.setattr(schedules, "_c_float_functions", lambda: None)
    for name, args, want in (("log", (4.0,), np.log(4.0)), ("cos", (0.5,), np.cos(0.5)), ("pow", (1.5, 3.0), 3.375)):
        value = schedules._scalar_f32(name, *(np.float32(a) for a in args))
        assert type(value) is np.float32 and value == pytest.approx(want, rel=1e-7)
    assert np.isnan(schedules._scalar_f32("log", np.float32(-1.0)))
    schedule = schedules.CosineDecayRestarts(0.1, 10, t_mul=1.5, m_mul=0.7, alpha=0.1)
    np.testing.assert_allclose([schedule(step) for step in RESTART_STEPS], np.float32(KERAS_RESTART_VALUES), rtol=2e-6)
