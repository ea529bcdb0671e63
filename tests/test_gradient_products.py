"""The training's gradient products through the packed micro-kernel (``_kernels.gradient_products``):
``A^T B`` (weight gradients) and ``A B^T`` (input gradients), against float64 NumPy, on strided
views, every kind of left-over rows and columns, both dtypes; their checks; and the buffers they
allocate staying alive through a call that first has to load its loops (a cached caller)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fastgru._kernels import gradient_products as gp
from fastgru._kernels.simd import MR, NV, VECTOR_BYTES

ROOT = Path(__file__).resolve().parent.parent
TOL = {np.float32: 3e-5, np.float64: 1e-12}


def _nr(dtype):
    return NV * (VECTOR_BYTES // np.dtype(dtype).itemsize)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tn_product_against_numpy_on_strided_views(dtype):
    rng = np.random.default_rng(0)
    nr = _nr(dtype)
    kc, _ = gp._blocks(4 * nr, 10 ** 6, np.dtype(dtype).itemsize)
    for k in (1, 5, kc - 1, kc, kc + 1, 2 * kc + 7):
        for m in (1, MR - 1, MR, MR + 1, 3 * MR + 5):
            for n in (1, nr - 3, nr, nr + 1, 3 * nr + 2):
                wide_a = rng.standard_normal((k, m + 5)).astype(dtype)
                wide_b = rng.standard_normal((k, n + 3)).astype(dtype)
                a, b = wide_a[:, 2:m + 2], wide_b[:, 3:]  # column blocks of wider buffers (row strides)
                wide_out = np.full((m, n + 4), np.nan, dtype)
                out = wide_out[:, 1:n + 1]
                gp.matmul_tn_into(a, b, out)
                tol = TOL[dtype] * np.sqrt(k)
                np.testing.assert_allclose(out, a.astype(np.float64).T @ b, rtol=TOL[dtype], atol=tol)
                assert np.isnan(wide_out[:, 0]).all() and np.isnan(wide_out[:, n + 1:]).all()  # nothing outside


def test_tn_product_with_many_panels_packed_a_group_at_a_time(monkeypatch):
    """More panels than fit half of L2 in one block: several groups per block of rows."""
    rng = np.random.default_rng(1)
    k, m, n = 300, 13, 2000
    a = rng.standard_normal((k, m)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    kc, group = gp._blocks(n, k, 4)
    assert group * _nr(np.float32) < n  # (on every machine: 2000 columns of 256+ rows exceed half of L2)
    out = np.empty((m, n), np.float32)
    gp.matmul_tn_into(a, b, out)
    np.testing.assert_allclose(out, a.astype(np.float64).T @ b, rtol=3e-5, atol=5e-4)


def test_tn_product_sums_do_not_depend_on_the_other_rows_or_columns():
    """Each output element: blocks of kc terms in order, whatever else is in the product."""
    rng = np.random.default_rng(2)
    k, m, n = 700, 21, 70
    a = rng.standard_normal((k, m)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    whole = np.empty((m, n), np.float32)
    gp.matmul_tn_into(a, b, whole)
    part = np.empty((5, 9), np.float32)
    gp.matmul_tn_into(a[:, 3:8], b[:, 40:49], part)
    np.testing.assert_array_equal(part, whole[3:8, 40:49])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nt_product_against_numpy(dtype):
    rng = np.random.default_rng(3)
    for rows, kdim, n in ((1, 1, 1), (37, 70, 5), (200, 96, 33)):
        g = rng.standard_normal((rows, kdim + 4)).astype(dtype)[:, 4:]
        w = rng.standard_normal((n + 2, kdim)).astype(dtype)[1:n + 1]  # any strides: packed inside
        out = np.empty((rows, n), dtype)
        gp.matmul_nt_into(g, w, out)
        np.testing.assert_allclose(out, g.astype(np.float64) @ w.T, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(kdim))


def test_empty_products():
    a = np.zeros((0, 3), np.float32)
    b = np.zeros((0, 4), np.float32)
    out = np.full((3, 4), np.nan, np.float32)
    gp.matmul_tn_into(a, b, out)  # K = 0: zeros
    np.testing.assert_array_equal(out, 0.0)
    gp.matmul_tn_into(np.zeros((5, 0), np.float32), np.ones((5, 4), np.float32), np.zeros((0, 4), np.float32))


def test_tn_product_checks_its_operands():
    a = np.ones((6, 3), np.float32)
    with pytest.raises(ValueError, match="shapes do not match"):
        gp.matmul_tn_into(a, np.ones((5, 4), np.float32), np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        gp.matmul_tn_into(a, np.ones((6, 4), np.float32), np.empty((4, 4), np.float32))
    with pytest.raises(ValueError, match="unit column strides"):
        gp.matmul_tn_into(np.ones((6, 6), np.float32)[:, ::2], np.ones((6, 4), np.float32), np.empty((3, 4), np.float32))
    overlapping = np.lib.stride_tricks.as_strided(np.ones(40, np.float32), shape=(6, 4), strides=(8, 4))
    with pytest.raises(ValueError, match="overlap"):
        gp.matmul_tn_into(a, overlapping, np.empty((3, 4), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        gp.matmul_nt_into(np.ones((4, 3), np.float32), np.ones((2, 5), np.float32), np.empty((4, 2), np.float32))


CACHED_CALLER = textwrap.dedent("""
    import numpy as np
    from numba import types
    from fastgru._kernels import gradient_products as gp
    rng = np.random.default_rng(0)
    k, m, n = 27, 37, 148  # rows left over and a partial panel: both buffers in use
    a = rng.standard_normal((k, m)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    slot = gp._TN_LOOPS[types.float32]
    print("resolved before the call:", slot.compiled is not None)
    for _ in range(3):
        gp.matmul_tn_into(a, b, out)
        junk = [np.empty(100) for _ in range(2000)]  # allocations over anything freed too early
    assert np.allclose(out, a.astype(np.float64).T @ b, rtol=3e-5, atol=3e-4)
    print("ok")
""")


def test_buffers_outlive_a_call_that_loads_its_loops(tmp_path):
    """A cached ``matmul_tn_into`` in a fresh process reaches its loops through the cell's resolver,
    which compiles or loads them (Python code, allocations) inside the call: the packing buffers the
    caller allocated must still be its own then (they were released at their last use as arrays,
    before the call, when passed as bare pointers: heap corruption)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=str(ROOT))
    outputs = []
    for _ in range(2):  # the first run fills the cache, the second loads the caller from it
        res = subprocess.run([sys.executable, "-c", CACHED_CALLER], env=env, capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        outputs.append(res.stdout.split())
    assert outputs[1][-1] == "ok" and "False" in outputs[1]  # the second one did go through the resolver


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_over_overlapping_rows_of_a_flat_array(dtype):
    """A convolution's windows as rows of one flat array (row step = stride x channels, width = taps x
    channels, overlapping when the stride is under the taps): ``packed_rows_into`` (the forward) and
    ``matmul_tn_rows_into`` (the kernel gradient) against the same windows copied out."""
    from fastgru._kernels.packed import pack, packed_rows_into

    rng = np.random.default_rng(4)
    for n_flat, step, width, f in ((400, 8, 40, 24), (97, 3, 9, 70), (50, 12, 12, 5), (30, 1, 1, 1)):
        flat = rng.standard_normal(n_flat).astype(dtype)
        a0 = 5
        rows = (n_flat - a0 - width) // step + 1
        windows = np.stack([flat[a0 + r * step:a0 + r * step + width] for r in range(rows)]).astype(np.float64)
        u = rng.standard_normal((width, f)).astype(dtype)
        out = np.full((rows, f), np.nan, dtype)
        packed_rows_into(flat, a0, step, rows, pack(u), out)
        tol = TOL[dtype] * np.sqrt(width)
        np.testing.assert_allclose(out, windows @ u, rtol=TOL[dtype], atol=tol)
        dz = rng.standard_normal((rows, f)).astype(dtype)
        dw = np.full((width, f), np.nan, dtype)
        gp.matmul_tn_rows_into(flat, a0, step, rows, width, dz, dw)
        np.testing.assert_allclose(dw, windows.T @ dz, rtol=TOL[dtype], atol=TOL[dtype] * np.sqrt(rows))


def test_rows_of_a_flat_array_are_checked_to_lie_inside_it():
    from fastgru._kernels.packed import pack, packed_rows_into

    flat = np.ones(100, np.float32)
    up = pack(np.ones((10, 4), np.float32))
    packed_rows_into(flat, 0, 10, 10, up, np.empty((10, 4), np.float32))  # the last row ends at 100: fine
    for a0, step, rows in ((1, 10, 10), (-1, 10, 2), (0, 11, 10), (0, -1, 3)):
        with pytest.raises(ValueError, match="rows outside the flat operand"):
            packed_rows_into(flat, a0, step, rows, up, np.empty((rows, 4), np.float32))
    dz = np.ones((10, 4), np.float32)
    gp.matmul_tn_rows_into(flat, 0, 10, 10, 10, dz, np.empty((10, 4), np.float32))
    with pytest.raises(ValueError, match="rows outside the flat operand"):
        gp.matmul_tn_rows_into(flat, 1, 10, 10, 10, dz, np.empty((10, 4), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        gp.matmul_tn_rows_into(flat, 0, 10, 9, 10, dz, np.empty((10, 4), np.float32))
