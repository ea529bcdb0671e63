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
    """The same values as a C-contiguous float array (float64 stays float64), or None if not numeric."""
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "fiub":
        return None
    return np.ascontiguousarray(a, dtype=np.float64 if a.dtype == np.float64 else np.float32)


def _valid_shape(a) -> bool:
    return a.ndim == 3 and a.shape[-1] == FEATURES


@SETTINGS
@given(x=arrays())
def test_predict_gives_correct_result_or_clear_error(model, x):
    ref = _reference_input(x)
    try:
        got = model.predict(x)
    except (ValueError, TypeError) as exc:
        assert str(exc), "an error without a message"
        assert ref is None or not _valid_shape(ref) or ref.shape[0] == 0, f"valid input refused: {exc}"
        return
    assert ref is not None and _valid_shape(ref), f"invalid input accepted: {np.asarray(x).dtype} {np.shape(x)}"
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
        assert bad_batch or ref is None or not _valid_shape(ref) or ref.shape[0] == 0, f"valid input refused: {exc}"
        return
    assert ref is not None and _valid_shape(ref)
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
        assert ref is not None and _valid_shape(ref) and y_kind in ("ok", "int", "list"), (y_kind, np.shape(x))
        assert all(np.isfinite(w).all() for w in trained)
    elif ref is not None and _valid_shape(ref) and ref.shape[0] > 0 and np.isfinite(ref).all():
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
    ids = a.astype(np.float64)
    assert ((ids >= 0) & (ids < 10) & (ids == np.round(ids))).all()
    np.testing.assert_array_equal(got, token_model.predict(ids.astype(np.int64)))
