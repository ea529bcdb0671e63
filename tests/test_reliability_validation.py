"""Input validation across the public API, property-tested: random shapes, dtypes (int, bool, float16, complex,
object arrays, strings, lists) and layouts (non-contiguous, Fortran order, views, broadcast views) give
either the correct result (the one the same values give as a C-contiguous float array) or a clear
ValueError/TypeError, never another exception or a silently wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastgru as fg
from fastgru.layers import GRU, Dense, Input

SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))
FEATURES = 3
DTYPES = ["float32", "float64", "float16", "int8", "int32", "int64", "uint8", "bool", "complex64", "object", "str",
          "datetime64[s]"]
LAYOUTS = ["c", "fortran", "strided", "reversed", "broadcast", "list", "tuple_of_lists", "scalar_int"]


@pytest.fixture(scope="module")
def model():
    fg.set_random_seed(3)
    m = fg.Sequential([Input(shape=(None, FEATURES)), GRU(4, return_sequences=True), GRU(5), Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    return m


@st.composite
def arrays(draw):
    rank = draw(st.sampled_from([3, 3, 3, 3, 0, 1, 2, 4]))  # mostly the valid rank
    shape = [draw(st.integers(0, 4)) for _ in range(rank)]
    if rank >= 3 and draw(st.integers(0, 3)):
        shape[-1] = FEATURES  # mostly the right feature count, so that valid inputs are common
        shape[0] = max(shape[0], 1)
    dtype = draw(st.sampled_from(DTYPES + ["float32", "float64", "int32"]))  # numeric ones more often
    layout = draw(st.sampled_from(LAYOUTS))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).normal(0, 2, size=[2 * d for d in shape])
    base = np.asarray(values[tuple(slice(None, None, 2) for _ in shape)])  # a strided view of the right shape
    if dtype == "str":
        arr = base.astype(str)
    elif dtype == "object":
        arr = base.astype(object)
    elif dtype.startswith("datetime"):
        arr = base.astype("int64").astype(dtype)
    else:
        arr = base.astype(dtype)
    if layout == "c":
        x = np.ascontiguousarray(arr)
    elif layout == "fortran":
        x = np.asfortranarray(arr)
    elif layout == "strided":
        big = np.repeat(arr[..., None], 2, axis=-1) if arr.ndim else arr
        x = big[..., 0] if arr.ndim else big
    elif layout == "reversed":
        x = arr[::-1] if arr.ndim else arr
    elif layout == "broadcast":
        x = np.broadcast_to(arr[:1], arr.shape) if arr.ndim and arr.shape[0] else arr
    elif layout == "list":
        x = arr.tolist()
    elif layout == "tuple_of_lists":
        x = tuple(arr.tolist()) if arr.ndim else arr.tolist()
    else:
        x = 3
    return x


def _reference_input(x):
    """The same values as a C-contiguous float array (a float64 array stays float64; Python lists of floats are
    float32, as Keras's), or None if not numeric."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "fiub":
        return None
    keeps64 = a.dtype == np.float64 and not isinstance(x, (list, tuple))
    return np.ascontiguousarray(a, dtype=np.float64 if keeps64 else np.float32)


def _valid_shape(a) -> bool:
    return a.ndim == 3 and a.shape[-1] == FEATURES


def _valid_model_input(a) -> bool:
    """What a model's GRU takes: (batch, steps, FEATURES) with at least one step (no steps: refused, as Keras)."""
    return _valid_shape(a) and a.shape[1] > 0


@SETTINGS
@given(x=arrays())
def test_predict_gives_correct_result_or_clear_error(model, x):
    ref = _reference_input(x)
    try:
        got = model.predict(x)
    except (ValueError, TypeError) as exc:
        assert str(exc), "an error without a message"
        assert ref is None or not _valid_model_input(ref) or ref.shape[0] == 0, f"valid input refused: {exc}"
        return
    assert ref is not None and _valid_model_input(ref), f"invalid input accepted: {np.asarray(x).dtype} {np.shape(x)}"
    want = model.predict(ref)
    assert got.shape == (ref.shape[0], 2) and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(x=arrays(), batch_size=st.one_of(st.none(), st.integers(-2, 5), st.sampled_from([0.5, 2.0, "2", True])))
def test_call_and_batched_predict_validate_too(model, x, batch_size):
    ref = _reference_input(x)
    try:
        got = model.predict(x, batch_size=batch_size)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        bad_batch = batch_size is not None and (isinstance(batch_size, (bool, float, str)) or batch_size <= 0)
        assert bad_batch or ref is None or not _valid_model_input(ref) or ref.shape[0] == 0, f"valid input refused: {exc}"
        return
    assert ref is not None and _valid_model_input(ref)
    np.testing.assert_allclose(got, model(ref), rtol=1e-5, atol=1e-6)


@SETTINGS
@given(x=arrays(), y_kind=st.sampled_from(["ok", "wrong_len", "str", "object", "int", "nan", "list"]))
def test_fit_and_evaluate_validate_inputs(model, x, y_kind):
    ref = _reference_input(x)
    n = np.shape(x)[0] if np.ndim(x) else 0
    y = {"ok": np.zeros((n, 2), np.float32), "wrong_len": np.zeros((n + 1, 2), np.float32),
         "str": np.full((n, 2), "a"), "object": np.empty((n, 2), object), "int": np.zeros((n, 2), np.int64),
         "nan": np.full((n, 2), np.nan, np.float32), "list": [[0.0, 0.0]] * n}[y_kind]
    weights = model.get_weights()
    try:
        model.fit(x, y, epochs=1, batch_size=2, verbose=0, shuffle=False)
        fitted = True
    except (ValueError, TypeError) as exc:
        assert str(exc)
        fitted = False
    finally:
        trained = model.get_weights()
        model.set_weights(weights)  # keep the shared model as it was
    if fitted:
        assert ref is not None and _valid_model_input(ref) and y_kind in ("ok", "int", "list"), (y_kind, np.shape(x))
        assert all(np.isfinite(w).all() for w in trained)
    elif ref is not None and _valid_model_input(ref) and ref.shape[0] > 0 and np.isfinite(ref).all():
        assert y_kind not in ("ok", "int", "list"), "valid data refused"
    try:
        model.evaluate(x, y, verbose=0)
    except (ValueError, TypeError) as exc:
        assert str(exc)


@SETTINGS
@given(data=st.data())
def test_set_weights_validates(model, data):
    weights = model.get_weights()
    i = data.draw(st.integers(0, len(weights) - 1))
    kind = data.draw(st.sampled_from(["shape", "dtype_str", "object", "nan", "int", "fortran", "float16", "count"]))
    new = [w.copy() for w in weights]
    if kind == "shape":
        new[i] = np.zeros(weights[i].shape + (1,), np.float32)
    elif kind == "dtype_str":
        new[i] = weights[i].astype(str)
    elif kind == "object":
        new[i] = weights[i].astype(object)
    elif kind == "nan":
        new[i] = np.full_like(weights[i], np.nan)
    elif kind == "int":
        new[i] = np.ones(weights[i].shape, np.int32)
    elif kind == "fortran":
        new[i] = np.asfortranarray(weights[i] * 2)
    elif kind == "float16":
        new[i] = weights[i].astype(np.float16)
    else:
        new = new[:-1]
    try:
        model.set_weights(new)
    except (ValueError, TypeError) as exc:
        assert kind in ("shape", "dtype_str", "object", "nan", "count"), f"{kind} refused: {exc}"
    else:
        assert kind in ("int", "fortran", "float16"), f"{kind} accepted"
        for got, want in zip(model.get_weights(), new):
            np.testing.assert_array_equal(got, np.asarray(want, dtype=got.dtype))
    finally:
        model.set_weights(weights)


@SETTINGS
@given(x=arrays(), kernel_kind=st.sampled_from(["ok", "fortran", "float64", "int", "nan", "wrong", "object"]))
def test_ops_gru_forward_validates(x, kernel_kind):
    rng = np.random.default_rng(0)
    units = 4
    kernel = rng.standard_normal((FEATURES, 3 * units)).astype(np.float32)
    recurrent = rng.standard_normal((units, 3 * units)).astype(np.float32)
    bias = rng.standard_normal((2, 3 * units)).astype(np.float32)
    k = {"ok": kernel, "fortran": np.asfortranarray(kernel), "float64": kernel.astype(np.float64),
         "int": kernel.astype(np.int32), "nan": np.full_like(kernel, np.nan), "wrong": kernel[:, :-1],
         "object": kernel.astype(object)}[kernel_kind]
    ref = _reference_input(x)
    try:
        out, h = fg.ops.gru_forward(x, k, recurrent, bias)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert ref is not None and _valid_shape(ref), f"invalid input accepted: {np.asarray(x).dtype} {np.shape(x)}"
    assert kernel_kind in ("ok", "fortran", "float64", "int"), f"kernel {kernel_kind} accepted"
    assert np.isfinite(out).all() or not np.isfinite(ref).all()
    want, _ = fg.ops.gru_forward(np.ascontiguousarray(ref), np.ascontiguousarray(k, dtype=ref.dtype), recurrent,
                                 bias)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def token_model():
    from fastgru.layers import Embedding

    fg.set_random_seed(4)
    return fg.Sequential([Input(shape=(None,), dtype="int32"), Embedding(10, 4, mask_zero=True), GRU(3)])


@SETTINGS
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       low=st.integers(-3, 0), high=st.integers(1, 13),
       dtype=st.sampled_from(["int8", "int32", "int64", "uint8", "float32", "float64", "bool", "object", "str"]),
       fractional=st.booleans())
def test_token_models_validate_ids(token_model, shape, low, high, dtype, fractional):
    values = np.random.default_rng(len(shape) + high).integers(low, high, size=shape).astype(np.float64)
    if fractional and values.size:
        values.flat[0] += 0.5
    x = values.astype(dtype) if dtype not in ("object", "str") else values.astype(dtype)
    try:
        got = token_model.predict(x)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    a = np.asarray(x)
    assert a.ndim == 2 and a.dtype.kind in "fiub", (a.dtype, a.shape)
    # the Input is declared int32: a fractional id is truncated toward zero first, as Keras converts it
    ids = np.trunc(a.astype(np.float64))
    assert ((ids >= -10) & (ids < 10)).all()  # (a negative id counts from the end)
    np.testing.assert_array_equal(got, token_model.predict(ids.astype(np.int64)))
    if fractional and a.size and a.dtype.kind == "f":  # (without a declared integer Input, it is refused)
        plain = fg.Sequential([token_model.layers[0], token_model.layers[1]])
        with pytest.raises(ValueError):
            plain.predict(a)


# ---- every fit argument is checked before anything is trained ----------------------------------------------

def _small_model(**dense):
    fg.set_random_seed(21)
    m = fg.Sequential([Input(shape=(5, FEATURES)), GRU(4), Dense(2, **dense)])
    m.compile(optimizer="adam", loss="mse")
    return m


def _data(n=12):
    rng = np.random.default_rng(5)
    return rng.standard_normal((n, 5, FEATURES)).astype(np.float32), rng.standard_normal((n, 2)).astype(np.float32)


@pytest.mark.parametrize("validation_data", [
    "y_val of the wrong shape", "x_val with the wrong features", "x_val and y_val of different lengths",
    "a dict", "a 1-tuple", "string targets", "sample weights of the wrong length",
])
def test_fit_refuses_bad_validation_data_before_training(validation_data):
    model = _small_model()
    x, y = _data()
    xv, yv = _data(4)
    bad = {"y_val of the wrong shape": (xv, np.zeros((4, 3), np.float32)),
           "x_val with the wrong features": (xv[:, :, :2], yv),
           "x_val and y_val of different lengths": (xv, yv[:3]),
           "a dict": {"x": xv, "y": yv},
           "a 1-tuple": (xv,),
           "string targets": (xv, np.full((4, 2), "a")),
           "sample weights of the wrong length": (xv, yv, np.ones(3, np.float32))}[validation_data]
    before = model.get_weights()
    with pytest.raises((ValueError, TypeError), match="validation_data"):
        model.fit(x, y, epochs=2, batch_size=4, verbose=0, validation_data=bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before)), "weights changed before refusing"


@pytest.mark.parametrize("kwargs", [{"batch_size": 2.5}, {"batch_size": 2.0}, {"batch_size": True},
                                    {"batch_size": "4"}, {"batch_size": 0}, {"epochs": 1.5},
                                    {"validation_batch_size": 1.5, "validation_split": 0.25},
                                    {"initial_epoch": 0.5}])
def test_fit_takes_integer_sizes_only(kwargs):
    model = _small_model()
    x, y = _data()
    before = model.get_weights()
    with pytest.raises((TypeError, ValueError), match=next(iter(kwargs))):
        model.fit(x, y, verbose=0, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    with pytest.raises((TypeError, ValueError), match="batch_size"):
        model.evaluate(x, y, batch_size=2.5, verbose=0)
    model.fit(x, y, batch_size=np.int64(4), epochs=np.int32(1), verbose=0)  # NumPy integers are integers


# ---- Dropout noise_shape ------------------------------------------------------------------------------

@pytest.mark.parametrize("noise_shape", [(None, 7, 1), (None, 5), (None, 5, FEATURES, 1), (None, 5, 2),
                                         (None, -1, 1), (None, 2.5, 1), (None, True, 1), "abc", 3])
def test_dropout_noise_shape_is_checked_at_build(noise_shape):
    from fastgru.layers import Dropout

    with pytest.raises(ValueError, match="noise_shape"):
        fg.Sequential([Input(shape=(5, FEATURES)), Dropout(0.5, noise_shape=noise_shape), GRU(2)])


def test_dropout_noise_shape_on_an_axis_of_unknown_size_is_checked_before_allocating():
    from fastgru.layers import Dropout

    model = fg.Sequential([Input(shape=(5, FEATURES)), Dropout(0.5, noise_shape=(10**9, 1, 1)), GRU(2)])
    model.compile(optimizer="sgd", loss="mse")
    before = model.get_weights()
    x = np.ones((4, 5, FEATURES), np.float32)
    with pytest.raises(ValueError, match="noise_shape"):
        model.fit(x, np.zeros((4, 2), np.float32), verbose=0)  # would allocate 7.45 GiB before the check
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    ok = fg.Sequential([Input(shape=(5, FEATURES)), Dropout(0.5, noise_shape=(None, 1, FEATURES)), GRU(2)])
    ok.compile(optimizer="sgd", loss="mse")
    ok.fit(x, np.zeros((4, 2), np.float32), verbose=0)


@pytest.mark.parametrize("noise_shape", [[None, 999999, 1], [None, 5], [None, 5, -3], [None, 5, "x"]])
def test_dropout_noise_shape_from_a_file_is_a_model_file_error(tmp_path, noise_shape):
    import json
    import zipfile

    from fastgru.layers import Dropout

    path = tmp_path / "m.keras"
    fg.Sequential([Input(shape=(5, FEATURES)), Dropout(0.5, noise_shape=(None, 1, FEATURES)), GRU(2)]).save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    layers = config["config"]["layers"]
    next(l for l in layers if l["class_name"] == "Dropout")["config"]["noise_shape"] = noise_shape
    members["config.json"] = json.dumps(config).encode()
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises((fg.ModelFileError, fg.UnsupportedKerasFeature), match="noise_shape"):
        fg.load_model(bad)


# ---- no raw Numba errors: flags and dtypes -------------------------------------------------------------

def _ops_calls():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, FEATURES)).astype(np.float32)
    g = (x, rng.standard_normal((FEATURES, 6)).astype(np.float32), rng.standard_normal((2, 6)).astype(np.float32),
         np.zeros((2, 6), np.float32))
    l4 = (x, rng.standard_normal((FEATURES, 8)).astype(np.float32), rng.standard_normal((2, 8)).astype(np.float32),
          np.zeros(8, np.float32))
    return {"gru_forward": (fg.ops.gru_forward, g), "gru_forward_train": (fg.ops.gru_forward_train, g),
            "gru_backward": (fg.ops.gru_backward, g), "lstm_forward": (fg.ops.lstm_forward, l4),
            "lstm_forward_train": (fg.ops.lstm_forward_train, l4), "lstm_backward": (fg.ops.lstm_backward, l4)}


@pytest.mark.parametrize("fn,flag", [(fn, flag) for fn in _ops_calls() for flag in
                                     ("return_sequences", "go_backwards", "zero_output_for_mask", "reset_after")
                                     if flag != "reset_after" or fn.startswith("gru")])
@pytest.mark.parametrize("value", [object(), {"a": 1}, "yes", None, 2, np.array([True, False])],
                         ids=["object", "dict", "str", "None", "2", "array"])
def test_ops_flags_are_checked_never_a_numba_typing_error(fn, flag, value):
    func, args = _ops_calls()[fn]
    with pytest.raises(TypeError, match=flag):
        func(*args, **{flag: value})
    func(*args, **{flag: np.bool_(True) if flag != "reset_after" else True})


@pytest.mark.parametrize("dtype", ["float16", "int32", "bool", "object", "complex64", "U1", ">f4", "0-d",
                                   "fortran"])
def test_ops_and_predict_odd_dtypes_and_layouts_give_clear_errors_or_results(model, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, FEATURES))
    a = {"0-d": np.asarray(1.0), "fortran": np.asfortranarray(x.astype(np.float32))}.get(dtype)
    if a is None:
        a = x.astype(dtype)
    for call in (lambda: model.predict(a), lambda: fg.ops.gru_forward(a, *_ops_calls()["gru_forward"][1][1:]),
                 lambda: fg.ops.lstm_backward(a, *_ops_calls()["lstm_backward"][1][1:])):
        try:
            call()
        except (ValueError, TypeError) as exc:
            assert str(exc)


def test_cli_predict_refuses_npy_files_with_huge_headers_or_shapes(tmp_path, capsys):
    from fastgru.cli import main

    model_path = tmp_path / "m.keras"
    fg.Sequential([Input(shape=(5, FEATURES)), GRU(2)]).save(model_path)
    data = np.ones((2, 5, FEATURES), np.float32).tobytes()

    def npy(name, header: dict, pad: int, version=(1, 0)):
        text = repr(header).encode("latin1")
        text += b" " * (pad - len(text) - 1) + b"\n"
        size = len(text).to_bytes(2 if version == (1, 0) else 4, "little")
        path = tmp_path / name
        path.write_bytes(b"\x93NUMPY" + bytes(version) + size + text + data)
        return path

    huge_header = npy("huge_header.npy", {"descr": "<f4", "fortran_order": False, "shape": (2, 5, FEATURES)},
                      20032, (2, 0))
    huge_shape = npy("huge_shape.npy", {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6, FEATURES)},
                     118)
    for path, words in ((huge_header, "header"), (huge_shape, "declares shape")):
        capsys.readouterr()
        assert main(["predict", str(model_path), str(path), "-o", str(tmp_path / "out.npy"), "-q"]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, err
    good = tmp_path / "good.npy"
    np.save(good, np.asfortranarray(np.arange(2 * 5 * FEATURES, dtype=np.float32).reshape(2, 5, FEATURES)))
    assert main(["predict", str(model_path), str(good), "-o", str(tmp_path / "out.npy"), "-q"]) == 0
    model = fg.load_model(model_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), model.predict(np.load(good)))


# ---- small ones: masks, set_weights dtypes, failed stateful calls, NaN in predict ------------------------

@pytest.mark.parametrize("mask,error", [(np.full((2, 5), "a"), TypeError), (np.full((2, 5), None, object), TypeError),
                                        (np.full((2, 5), 2), ValueError), (np.full((2, 5), 0.5), ValueError),
                                        (np.ones((2, 5), complex), TypeError)])
def test_recurrent_layers_take_boolean_or_0_1_masks_only(mask, error):
    from fastgru.layers import LSTM

    x = np.ones((2, 5, FEATURES), np.float32)
    for layer in (GRU(3), LSTM(3)):
        with pytest.raises(error, match="mask"):
            layer(x, mask=mask)
        bools = np.array([[1, 1, 0, 1, 0]] * 2, bool)
        for numeric in (bools.astype(np.float32), bools.astype(np.int8)):
            np.testing.assert_array_equal(layer(x, mask=numeric), layer(x, mask=bools))


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "object", "U3", "bool"])
def test_set_weights_refuses_non_real_dtypes_naming_the_weight(model, dtype):
    weights = model.get_weights()
    bad = list(weights)
    bad[1] = weights[1].astype(dtype)
    if dtype.startswith("complex"):
        bad[1] = bad[1] + 1j
    with pytest.raises(TypeError, match=f"recurrent_kernel.*{np.dtype(dtype).name if dtype != 'U3' else '<U3'}"):
        model.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def test_a_refused_model_set_weights_changes_no_layer(model):
    weights = model.get_weights()
    bad = [w + 1 for w in weights]
    bad[-1] = np.full_like(weights[-1], np.nan)  # the last layer's bias is refused
    with pytest.raises(ValueError, match="NaN"):
        model.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def test_a_failed_stateful_predict_leaves_the_states_unchanged():
    from fastgru.layers import Embedding

    fg.set_random_seed(8)
    model = fg.Sequential([Input(batch_shape=(2, 4), dtype="int32"), Embedding(10, 3),
                           GRU(3, stateful=True, return_sequences=True),
                           last := GRU(2, stateful=True)])
    ok = np.array([[1, 2, 3, 4], [4, 3, 2, 1]])
    model.predict(ok)
    kept = [s.copy() for layer in model.layers[1:] for s in layer.states]
    bad = np.concatenate([ok, [[1, 2, 3, 99], [1, 1, 1, 1]]])  # the second batch has an id out of range
    with pytest.raises(ValueError, match="token ids"):
        model.predict(bad, batch_size=2)
    after = [s for layer in model.layers[1:] for s in layer.states]
    assert all(np.array_equal(a, b) for a, b in zip(after, kept)), "the failed call advanced the states"
    model.reset_states()
    with pytest.raises(ValueError):
        model.predict(bad, batch_size=2)
    assert not np.any(last.states) and not np.any(model.layers[1].states)  # (zeros: nothing carried)


def test_a_failed_stateful_bidirectional_call_leaves_both_directions_unchanged(monkeypatch):
    from fastgru.layers import Bidirectional

    layer = Bidirectional(GRU(3, stateful=True))
    x = np.ones((2, 4, FEATURES), np.float32)
    layer(x)
    kept = [s.copy() for s in layer.states]

    def fail(*args, **kwargs):
        raise ValueError("backward direction failed")

    monkeypatch.setattr(layer.backward_layer, "call", fail)
    with pytest.raises(ValueError, match="backward direction failed"):
        layer(x)
    assert all(np.array_equal(a, b) for a, b in zip(layer.states, kept))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["GRU", "LSTM", "Bidirectional", "GRU sequences"])
def test_nan_in_predict_input_reaches_that_rows_outputs_only(kind, dtype):
    """Documented (docs/reliability.md): predict does not scan for NaN; a NaN at step t of a row makes that row's
    outputs NaN from step t on, and every other row is bit-identical to a run without it."""
    from fastgru.layers import LSTM, Bidirectional

    fg.set_random_seed(13)
    inner = {"GRU": lambda: [GRU(6), Dense(2)], "LSTM": lambda: [LSTM(6)],
             "Bidirectional": lambda: [Bidirectional(LSTM(4)), Dense(3, activation="sigmoid")],
             "GRU sequences": lambda: [GRU(5, return_sequences=True)]}[kind]()
    m = fg.Sequential([Input(shape=(7, FEATURES))] + inner)
    x = np.random.default_rng(4).standard_normal((5, 7, FEATURES)).astype(dtype)
    clean = m.predict(x)
    x[2, 3, 1] = np.nan
    got = m.predict(x)
    np.testing.assert_array_equal(np.delete(got, 2, axis=0), np.delete(clean, 2, axis=0))
    if kind == "GRU sequences":
        assert np.isfinite(got[2, :3]).all() and np.isnan(got[2, 3:]).all()
        np.testing.assert_array_equal(got[2, :3], clean[2, :3])
    else:
        assert np.isnan(got[2]).all()
