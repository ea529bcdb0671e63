"""The packed micro-kernel (``fastgru._kernels.packed``): every product of the recurrent kernels' time
loops and input projections goes through it.

Checked against NumPy in float32 and float64 over every tile shape (1..MR+3 rows: the one-row tile over
4 or 6 panels, the two-row tile over 2, the full tiles and their tails), partial last panels, K blocks
(K above one L1 block accumulates), strided row blocks of wider buffers, and row invariance (a row's
result is bit-identical whatever rows are computed beside it). The tile layout of the other CPU kind
(32-byte vectors vs 64-byte AVX-512 ones) runs in a child process, so both layouts are exercised on
every machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fastgru._kernels import packed

ROOT = Path(__file__).resolve().parent.parent
DTYPES = [np.float32, np.float64]


def u_bytes(dtype) -> int:
    return np.dtype(dtype).itemsize


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 5, 64, 300])
def test_products_match_numpy_for_every_tile_and_panel_shape(dtype, k):
    rng = np.random.default_rng(k)
    nr = packed.panel_width(dtype)
    for n in (1, nr - 1, nr, nr + 3, 4 * nr, 5 * nr + 1, 8 * nr, 150):
        u = rng.standard_normal((k, n)).astype(dtype)
        up = packed.pack(u)
        assert up.shape == packed.packed_shape(k, n, dtype)
        assert np.all(up[-1][:, n - (len(up) - 1) * nr:] == 0), "the last panel's padding columns are zero"
        np.testing.assert_array_equal(np.concatenate(list(up), axis=1)[:, :n], u)
        for m in list(range(0, packed.MR + 4)) + [2 * packed.MR + 1, 61]:
            a = rng.standard_normal((m, k)).astype(dtype)
            out = np.full((m, n), np.nan, dtype)
            packed.packed_matmul_into(a, up, out)
            np.testing.assert_allclose(out, a.astype(np.float64) @ u.astype(np.float64), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_rows_result_does_not_depend_on_the_rows_beside_it(dtype):
    rng = np.random.default_rng(3)
    k, n = 300, 70  # two K blocks, a partial last panel
    a = rng.standard_normal((2 * packed.MR + 3, k)).astype(dtype)
    up = packed.pack(rng.standard_normal((k, n)).astype(dtype))
    alone = np.empty((len(a), n), dtype)
    for i in range(len(a)):
        packed.packed_matmul_into(a[i:i + 1], up, alone[i:i + 1])
    for m in range(1, len(a) + 1):
        for start in (0, len(a) - m):
            out = np.empty((m, n), dtype)
            packed.packed_matmul_into(a[start:start + m], up, out)
            np.testing.assert_array_equal(out, alone[start:start + m])


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_rows_take_row_blocks_outermost_with_the_same_sums(dtype):
    """A product with many rows (an input projection) whose K block of panels fits in L2 runs its row
    blocks outermost: same results as NumPy, and each row bit-identical to that row computed alone
    (its sums over the same K blocks in the same order), strided output included."""
    rng = np.random.default_rng(5)
    nr = packed.panel_width(dtype)
    isz = np.dtype(dtype).itemsize
    kc = max(16, packed.L1_PANEL_BYTES // (nr * isz))
    m, k, n = 701, kc + 44, 30  # two K blocks of one panel: the order is taken from a 128 KiB L2 up
    mc = max(packed.MR, packed.L2_ROWS_BYTES // (kc * isz) // packed.MR * packed.MR)
    assert k > kc and m - m % packed.MR > mc, "several K blocks and several row blocks"
    assert min(k, kc) * -(-n // nr) * nr * isz <= packed.L2_BYTES // 2, "the row-blocks-outer order is taken"
    a = rng.standard_normal((m, k)).astype(dtype)
    u = rng.standard_normal((k, n)).astype(dtype)
    up = packed.pack(u)
    wide = np.full((m, n + 5), 3.0, dtype)
    packed.packed_matmul_into(a, up, wide[:, 2:2 + n])
    out = wide[:, 2:2 + n]
    np.testing.assert_allclose(out, a.astype(np.float64) @ u.astype(np.float64), **_tol(dtype))
    assert np.all(wide[:, :2] == 3.0) and np.all(wide[:, 2 + n:] == 3.0)
    for i in (0, 1, mc - 1, mc, m // 2, m - 2, m - 1):
        alone = np.empty((1, n), dtype)
        packed.packed_matmul_into(a[i:i + 1], up, alone)
        np.testing.assert_array_equal(out[i], alone[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_row_blocks_are_read_and_written_in_place(dtype):
    """a and out may be column blocks of wider buffers (the projection writes into the saved buffer);
    nothing outside the block is touched."""
    rng = np.random.default_rng(4)
    k, n = 37, 29
    wide_a = rng.standard_normal((9, k + 11)).astype(dtype)
    wide_out = np.full((9, n + 13), 7.0, dtype)
    u = rng.standard_normal((k, n)).astype(dtype)
    packed.packed_matmul_into(wide_a[:, 5:5 + k], packed.pack(u), wide_out[:, 6:6 + n])
    np.testing.assert_allclose(wide_out[:, 6:6 + n], wide_a[:, 5:5 + k] @ u, **_tol(dtype))
    assert np.all(wide_out[:, :6] == 7.0) and np.all(wide_out[:, 6 + n:] == 7.0)


def test_mismatched_operands_are_refused():
    u = np.ones((8, 20), np.float32)
    up = packed.pack(u)
    with pytest.raises(ValueError, match="shapes do not match"):
        packed.packed_matmul_into(np.ones((3, 9), np.float32), up, np.empty((3, 20), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        packed.packed_matmul_into(np.ones((3, 8), np.float32), up, np.empty((4, 20), np.float32))
    with pytest.raises(ValueError, match="shapes do not match"):
        packed.packed_matmul_into(np.ones((3, 8), np.float32), up, np.empty((3, 40), np.float32))
    with pytest.raises(ValueError, match="unit column strides"):
        packed.packed_matmul_into(np.ones((3, 16), np.float32)[:, ::2], up, np.empty((3, 20), np.float32))
    for value, cache, message in (("48", "/tmp", "must be 16, 32 or 64"), ("64", "", "needs its own NUMBA_CACHE_DIR")):
        res = subprocess.run([sys.executable, "-c", "import fastgru._kernels.packed"], capture_output=True, text=True,
                             env=dict(os.environ, FASTGRU_VECTOR_BYTES=value, NUMBA_CACHE_DIR=cache), cwd=ROOT)
        assert res.returncode != 0 and message in res.stderr


@pytest.mark.parametrize("dtype", DTYPES)
def test_operands_read_in_place_give_the_packed_products(dtype):
    """``packed.operand``: a small operand of whole panels that starts on a cache line, multiplied by
    at least MR rows at a time, is read where it lies (no copy), unless its rows are a multiple of
    512 bytes; any other is packed. The products
    (``operand_matmul_into``) are bit-identical to the packed ones for every row count either way."""
    from fastgru._kernels import aligned

    rng = np.random.default_rng(11)
    nr = packed.panel_width(dtype)
    for k, n in ((1, nr), (5, 3 * nr), (64, 6 * nr), (300, 2 * nr), (7, nr + 3), (8, 512 // u_bytes(dtype))):
        u = aligned.aligned_copy(rng.standard_normal((k, n)).astype(dtype))
        # (rows of a multiple of 512 bytes stay packed: a panel's rows would fall into few L1 sets)
        in_place = n % nr == 0 and (n * u.itemsize) % 512 != 0 and u.nbytes <= packed.UNPACKED_MAX_BYTES
        for rows in (1, packed.MR - 1, packed.MR, 3 * packed.MR):
            b = packed.operand(u, rows)
            read_in_place = in_place and rows >= packed.MR
            assert np.shares_memory(b[0], u) == read_in_place
            assert b[1:] == ((k, n, nr, n) if read_in_place else (k, n, k * nr, nr))
        b = packed.operand(u, packed.MR)
        up = packed.pack(u)
        for m in list(range(0, packed.MR + 4)) + [2 * packed.MR + 1, 61]:
            a = rng.standard_normal((m, k)).astype(dtype)
            got, expected = np.full((m, n), np.nan, dtype), np.full((m, n), np.nan, dtype)
            packed.operand_matmul_into(a, b, got)
            packed.packed_matmul_into(a, up, expected)
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_allclose(got, a.astype(np.float64) @ u.astype(np.float64), **_tol(dtype))
    # off a cache line, or too large to stay in cache: packed
    raw = aligned.aligned_copy(np.zeros(64 * 4 * nr + 1, dtype))
    off_line = raw[1:].reshape(64, 4 * nr)
    assert not np.shares_memory(packed.operand(off_line, packed.MR)[0], raw)
    wide = aligned.aligned_copy(rng.standard_normal((8, 4 * nr)).astype(dtype))
    strided = wide[:, ::2]  # (8, 2 NR), not contiguous
    b = packed.operand(strided, packed.MR)
    assert not np.shares_memory(b[0], wide)
    a = rng.standard_normal((packed.MR, 8)).astype(dtype)
    got = np.empty((packed.MR, 2 * nr), dtype)
    packed.operand_matmul_into(a, b, got)
    np.testing.assert_allclose(got, a.astype(np.float64) @ strided.astype(np.float64), **_tol(dtype))
    big_k = packed.UNPACKED_MAX_BYTES // (nr * np.dtype(dtype).itemsize) + 1
    big = aligned.aligned_copy(np.ones((big_k, nr), dtype))
    assert not np.shares_memory(packed.operand(big, packed.MR)[0], big)


def test_operand_products_refuse_panels_outside_their_array():
    """A forged or mismatched operand never reaches the loops: every panel row they would read must lie
    inside its flat array."""
    from fastgru._kernels import aligned

    nr = packed.panel_width(np.float32)
    u = aligned.aligned_copy(np.ones((8, 2 * nr), np.float32))
    flat, k, n, pstride, bstep = packed.operand(u, packed.MR)
    a, out = np.ones((packed.MR, 8), np.float32), np.empty((packed.MR, 2 * nr), np.float32)
    packed.operand_matmul_into(a, (flat, k, n, pstride, bstep), out)
    np.testing.assert_array_equal(out, np.full_like(out, 8.0))
    for forged in ((flat[:-1], k, n, pstride, bstep), (flat, k, n, pstride, bstep + 1), (flat, k, n, -1, bstep),
                   (flat, k, n, pstride, -nr), (flat, k + 1, n, pstride, bstep)):
        with pytest.raises(ValueError, match="outside its array|shapes do not match"):
            packed.operand_matmul_into(np.ones((packed.MR, forged[1]), np.float32), forged, out)
    with pytest.raises(ValueError, match="shapes do not match"):
        packed.operand_matmul_into(np.ones((3, 9), np.float32), (flat, k, n, pstride, bstep), out[:3])
    with pytest.raises(ValueError, match="shapes do not match"):
        packed.operand_matmul_into(a, (flat, k, n, pstride, bstep), np.empty((packed.MR, nr), np.float32))
    with pytest.raises(ValueError, match="unit column strides"):
        packed.operand_matmul_into(np.ones((packed.MR, 16), np.float32)[:, ::2], (flat, k, n, pstride, bstep), out)


def _planned_product():
    """A compiled caller of ``packed.step_plan`` and ``step_matmul_into`` (register_jitable: they run
    only inside compiled code), made once per session."""
    from numba import njit

    @njit(cache=True)
    def planned(a, b, out, a2, b2, out2):
        plan = packed.step_plan(a, b, out)
        packed.step_matmul_into(a2, b2, out2, plan)

    return planned


def test_a_time_loops_planned_product_runs_only_on_the_planned_arrays():
    """``step_plan`` makes ``operand_matmul_into``'s checks once for a time loop's repeated product;
    ``step_matmul_into`` then gives the same product, bit for bit, and refuses any array whose shape,
    strides or operand size is not the planned one (the loops never see an unchecked shape)."""
    from fastgru._kernels import aligned

    planned = _planned_product()
    rng = np.random.default_rng(5)
    nr = packed.panel_width(np.float32)
    u = aligned.aligned_copy(rng.standard_normal((64, 6 * nr)).astype(np.float32))
    for rows in (1, 3, packed.MR + 1):
        b = packed.operand(u, rows)
        a = rng.standard_normal((rows, 64)).astype(np.float32)
        got, expected = np.full((rows, 6 * nr), np.nan, np.float32), np.empty((rows, 6 * nr), np.float32)
        planned(a, b, got, a, b, got)
        packed.operand_matmul_into(a, b, expected)
        np.testing.assert_array_equal(got, expected)
    b = packed.operand(u, 1)
    a, out = np.ones((1, 64), np.float32), np.empty((1, 6 * nr), np.float32)
    other = packed.operand(aligned.aligned_copy(np.ones((64, 5 * nr), np.float32)), 1)
    for a2, b2, out2 in ((np.ones((2, 64), np.float32), b, out), (np.ones((1, 63), np.float32), b, out),
                         (a, b, np.empty((2, 6 * nr), np.float32)), (a, (other[0],) + b[1:], out)):
        with pytest.raises(ValueError, match="not the planned ones"):
            planned(a, b, out, a2, b2, out2)
    flat, k, n, pstride, bstep = b
    with pytest.raises(ValueError, match="outside its array"):
        planned(a, (flat[:-1], k, n, pstride, bstep), out, a, b, out)
    with pytest.raises(ValueError, match="shapes do not match"):
        planned(a, b, np.empty((1, 5 * nr), np.float32), a, b, out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_tile_loops_are_compiled_once_and_called_through_their_cell(dtype):
    """The loops over tiles are one C-callable function per dtype; callers read its address from a cell
    registered with LLVM under a symbol of this package, and hold no tile of their own (inlined, every
    time loop recompiled all the tiles: the first GRU call of a fresh install took 1.6x as long)."""
    import ctypes

    from llvmlite import binding
    from numba import njit, types

    slot = packed._LOOPS[types.float32 if dtype == np.float32 else types.float64]
    assert slot.symbol.startswith("fastgru._kernels.packed.")
    assert binding.address_of_symbol(slot.symbol) == ctypes.addressof(slot.cell)
    a, up, out = np.ones((3, 5), dtype), packed.pack(np.ones((5, 7), dtype)), np.empty((3, 7), dtype)
    packed.packed_matmul_into(a, up, out)
    np.testing.assert_array_equal(out, 5.0)
    assert slot.compiled is not None and slot.cell.value == slot.compiled.address

    # a caller compiled here (not loaded from a cache, so its IR is at hand) calls through the cell
    @njit
    def twice(a, up, out, out2):
        packed.packed_matmul_into(a, up, out)
        packed.packed_matmul_into(out[:, :5], up, out2)

    out2 = np.empty_like(out)
    twice(a, up, out, out2)
    np.testing.assert_array_equal(out2, 25.0)
    caller = twice.inspect_llvm(twice.signatures[0])
    assert re.search(r'= load [^\n]*@"?' + re.escape(slot.symbol), caller) and "fmuladd" not in caller


FIRST_PRODUCT = textwrap.dedent("""
    import numpy as np
    from numba import types
    import fastgru
    from fastgru._kernels import packed
    slots = packed._LOOPS
    assert all(s.compiled is None for s in slots.values())  # importing compiles (and loads) nothing
    a = np.ones((3, 5), np.float32)
    out = np.empty((3, 7), np.float32)
    packed.packed_matmul_into(a, packed.pack(np.ones((5, 7), np.float32)), out)
    assert np.all(out == 5.0)
    assert slots[types.float32].compiled is not None and slots[types.float64].compiled is None
    assert slots[types.float32].cell.value == slots[types.float32].compiled.address
""")


def test_a_process_resolves_the_loops_at_its_first_product_of_that_dtype():
    """A fresh process (callers loaded from Numba's cache when there is one) resolves the cell at the
    first product of a dtype, not at import, and leaves the other dtype's loops uncompiled."""
    res = subprocess.run([sys.executable, "-c", FIRST_PRODUCT], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr


LOOPS_FAIL = textwrap.dedent("""
    import numpy as np
    import fastgru
    from fastgru._kernels import packed

    def unavailable(self):
        raise RuntimeError("no compiler here")

    packed._LoopsSlot.load = unavailable
    out = np.full((3, 7), -1.0, np.float32)
    packed.packed_matmul_into(np.ones((3, 5), np.float32), packed.pack(np.ones((5, 7), np.float32)), out)
    print("returned", out[0, 0])
""")


def test_loops_that_cannot_be_had_stop_the_call_loudly(tmp_path):
    """If the loops cannot be compiled or loaded, the product does not return unwritten: a caller being
    compiled fails with the error; a cached caller's first product (the resolver, a ctypes callback that
    cannot raise into the kernel) aborts the process with the reason."""
    def child(code, cache):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                              timeout=300)

    cached, empty = tmp_path / "cached", tmp_path / "empty"
    filled = child(LOOPS_FAIL.replace("packed._LoopsSlot.load = unavailable", ""), cached)
    assert filled.returncode == 0 and "returned 5.0" in filled.stdout, filled.stderr
    for cache in (empty, cached):  # the caller compiled now, then loaded from the cache
        res = child(LOOPS_FAIL, cache)
        assert res.returncode != 0 and "returned" not in res.stdout
        assert "no compiler here" in res.stderr
        if cache is cached and os.name == "posix":
            assert res.returncode == -signal.SIGABRT and "compiling the packed product's loops" in res.stderr


OTHER_LAYOUT = textwrap.dedent("""
    import sys
    import numpy as np
    import fastgru as fg
    from fastgru._kernels import packed
    assert packed.VECTOR_BYTES == int(sys.argv[1]), packed.VECTOR_BYTES
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for k, n in ((300, 70), (5, 33)):
            u = rng.standard_normal((k, n)).astype(dtype)
            up = packed.pack(u)
            for m in range(0, packed.MR + 4):
                a = rng.standard_normal((m, k)).astype(dtype)
                out = np.empty((m, n), dtype)
                packed.packed_matmul_into(a, up, out)
                tol = 2e-5 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(out, a.astype(np.float64) @ u, rtol=tol, atol=tol)
    # operands read in place (whole panels, on a cache line, full tiles of rows) against packed ones
    from fastgru._kernels import aligned
    for dtype in (np.float32, np.float64):
        nr = packed.panel_width(dtype)
        u = aligned.aligned_copy(rng.standard_normal((40, 3 * nr)).astype(dtype))
        b = packed.operand(u, packed.MR)
        assert np.shares_memory(b[0], u) and b[3:] == (nr, 3 * nr)
        for m in (packed.MR, 2 * packed.MR + 3):
            a = rng.standard_normal((m, 40)).astype(dtype)
            got, expected = np.empty((m, 3 * nr), dtype), np.empty((m, 3 * nr), dtype)
            packed.operand_matmul_into(a, b, got)
            packed.packed_matmul_into(a, packed.pack(u), expected)
            np.testing.assert_array_equal(got, expected)
    # many rows (an input projection): the row-blocks-outer order
    a = rng.standard_normal((701, 300)).astype(np.float32)
    u = rng.standard_normal((300, 70)).astype(np.float32)
    out = np.empty((701, 70), np.float32)
    packed.packed_matmul_into(a, packed.pack(u), out)
    np.testing.assert_allclose(out, a.astype(np.float64) @ u, rtol=2e-5, atol=2e-5)
    # a GRU through the kernels (float64): forward against the NumPy reference, gradients against
    # central differences
    from tests.reference import reference_gru
    x = rng.standard_normal((9, 4, 3))
    w, u3, b = 0.5 * rng.standard_normal((3, 21)), 0.5 * rng.standard_normal((7, 21)), rng.standard_normal((2, 21))
    r = rng.standard_normal((9, 4, 7))
    out, _ = fg.ops.gru_forward(x, w, u3, b, return_sequences=True)
    ref, _ = reference_gru(x, w, u3, b, return_sequences=True)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    # and a GRU whose kernels the time loop reads in place (16 units: 3H of whole panels in both
    # layouts, rows of 384 bytes, on a cache line, 9 rows), against the reference and bit for bit
    # against the same rows one at a time (packed)
    w16 = aligned.aligned_copy(0.5 * rng.standard_normal((3, 48)))
    u16 = aligned.aligned_copy(0.5 * rng.standard_normal((16, 48)))
    b16 = rng.standard_normal((2, 48))
    assert np.shares_memory(packed.operand(u16, packed.MR)[0], u16)
    out16, _ = fg.ops.gru_forward(x, w16, u16, b16, return_sequences=True)
    np.testing.assert_allclose(out16, reference_gru(x, w16, u16, b16, return_sequences=True)[0], rtol=1e-10,
                               atol=1e-10)
    one_by_one = np.concatenate([fg.ops.gru_forward(x[i:i + 1], w16, u16, b16, return_sequences=True)[0]
                                 for i in range(len(x))])
    np.testing.assert_array_equal(out16, one_by_one)
    grads = fg.ops.gru_backward(x, w, u3, b, d_outputs=r, return_sequences=True)
    for arg, grad in ((w, grads[1]), (u3, grads[2]), (b, grads[3])):
        for idx in [(0, 0), (1, 9), (2, 20)] if arg.shape[0] > 2 else [(0, 3), (1, 17)]:
            saved = arg[idx]
            arg[idx] = saved + 1e-6
            up_ = (fg.ops.gru_forward(x, w, u3, b, return_sequences=True)[0] * r).sum()
            arg[idx] = saved - 1e-6
            down = (fg.ops.gru_forward(x, w, u3, b, return_sequences=True)[0] * r).sum()
            arg[idx] = saved
            np.testing.assert_allclose(grad[idx], (up_ - down) / 2e-6, rtol=1e-6, atol=1e-8)
    # float32 with Keras's default activations: the fused gate rows (fused_gates.gru_gate_row and
    # lstm_gate_row) at this layout's vector width, 21 units (full vectors and a scalar tail), masked steps
    x32 = rng.standard_normal((5, 6, 3)).astype(np.float32)
    w32, u32 = (0.5 * rng.standard_normal((3, 63))).astype(np.float32), (0.5 * rng.standard_normal((21, 63))).astype(
        np.float32)
    b32 = rng.standard_normal((2, 63)).astype(np.float32)
    mask = rng.random((5, 6)) > 0.3
    out32, _ = fg.ops.gru_forward(x32, w32, u32, b32, return_sequences=True, mask=mask)
    ref32, _ = reference_gru(x32.astype(np.float64), w32.astype(np.float64), u32.astype(np.float64),
                             b32.astype(np.float64), return_sequences=True, mask=mask)
    np.testing.assert_allclose(out32, ref32, rtol=2e-5, atol=2e-5)
    from tests.reference import reference_lstm
    wl, ul = (0.5 * rng.standard_normal((3, 84))).astype(np.float32), (0.5 * rng.standard_normal((21, 84))).astype(
        np.float32)
    bl = rng.standard_normal(84).astype(np.float32)
    outl = fg.ops.lstm_forward(x32, wl, ul, bl, return_sequences=True, mask=mask)[0]
    refl = reference_lstm(*(v.astype(np.float64) for v in (x32, wl, ul, bl)), return_sequences=True, mask=mask)[0]
    np.testing.assert_allclose(outl, refl, rtol=2e-5, atol=2e-5)
    # and their BPTT gate gradients at this width (fused_gates.gru_grad_row, lstm_grad_row): float32
    # gradients against the float64 ones (the general path), masked steps included
    r32 = rng.standard_normal(out32.shape)
    for backward, weights in ((fg.ops.gru_backward, (w32, u32, b32)), (fg.ops.lstm_backward, (wl, ul, bl))):
        g32 = backward(x32, *weights, d_outputs=r32.astype(np.float32), return_sequences=True, mask=mask)
        g64 = backward(x32.astype(np.float64), *(v.astype(np.float64) for v in weights), d_outputs=r32,
                       return_sequences=True, mask=mask)
        for got, expected in zip(g32, g64):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=3e-5)
    # the weight-gradient products A^T B (gradient_products: the transposed tile, rows left over,
    # a partial last panel) at this layout, against float64
    from fastgru._kernels import gradient_products as gp
    for dtype in (np.float32, np.float64):
        for k, m, n in ((1, 1, 1), (37, 2 * packed.MR + 3, 70), (700, packed.MR, 2 * packed.NV * 16 + 5)):
            a = rng.standard_normal((k, m + 2)).astype(dtype)[:, 1:m + 1]
            bb = rng.standard_normal((k, n)).astype(dtype)
            got = np.full((m, n), np.nan, dtype)
            gp.matmul_tn_into(a, bb, got)
            tol = 3e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, a.astype(np.float64).T @ bb, rtol=tol, atol=tol * np.sqrt(k))
    # Conv1D's packed paths (one group, no dilation, stride 1: forward, kernel and input gradients over
    # windows read in place) at this layout, against the sums written out in NumPy
    conv = fg.layers.Conv1D(5, 3, use_bias=False, dtype="float64")
    conv.build((None, 11, 4))
    kern = conv.weights[0]
    xc = rng.standard_normal((3, 11, 4))
    yc, cache = conv.forward(xc)
    zc = sum(np.einsum("btc,cf->btf", xc[:, j:j + 9], kern[j]) for j in range(3))
    np.testing.assert_allclose(yc, zc, rtol=1e-12, atol=1e-12)
    dzc = rng.standard_normal(yc.shape)
    dxc, (dkc,) = conv.backward(dzc, cache)
    np.testing.assert_allclose(dkc, np.stack([np.einsum("btc,btf->cf", xc[:, j:j + 9], dzc) for j in range(3)]),
                               rtol=1e-12, atol=1e-12)
    dx_ref = np.zeros_like(xc)
    for j in range(3):
        dx_ref[:, j:j + 9] += dzc @ kern[j].T
    np.testing.assert_allclose(dxc, dx_ref, rtol=1e-12, atol=1e-12)
    # tanh and sigmoid exactly saturated in the fused rows at this width (21 units: full vectors and a tail):
    # one step from a zero state, z pushed to 0 (out = tanh(+-400) = +-1) or to 1 (out = 0)
    for z_in, h_in, expected in ((-400.0, 400.0, 1.0), (-400.0, -400.0, -1.0), (400.0, 400.0, 0.0)):
        ws = np.full((1, 63), h_in, np.float32)
        ws[0, :21] = z_in
        sat, _ = fg.ops.gru_forward(np.ones((1, 1, 1), np.float32), ws, np.zeros((21, 63), np.float32),
                                    np.zeros((2, 63), np.float32))
        assert (sat == np.float32(expected)).all(), (z_in, h_in, sat)
    # one sequence at two threads with its projection shared with the worker (thresholds off): the
    # one-thread outputs bit for bit
    from fastgru._kernels import shared_projection as sp
    sp.MIN_WORK, sp.MIN_FEATURES, sp.MIN_UNITS, sp.BLOCK_WORK = 0, 1, 1, 3 * 3 * 63
    fg.set_num_threads(1)
    alone = fg.ops.gru_forward(x32[:1], w32, u32, b32, return_sequences=True)[0]
    fg.set_num_threads(2)
    for _ in range(3):
        np.testing.assert_array_equal(fg.ops.gru_forward(x32[:1], w32, u32, b32, return_sequences=True)[0], alone)
    # every product above went through the loops compiled for this layout, reached through their cells
    for slot in (*packed._LOOPS.values(), *gp._TN_LOOPS.values()):
        assert slot.compiled is not None and slot.cell.value == slot.compiled.address, slot.dtype
    print("ok", packed.MR)
""")


def test_the_other_cpu_kinds_tile_layout(tmp_path):
    """The layout this machine does not pick by itself, in a child with its own Numba cache: 64-byte
    vectors and 8-row tiles on an AVX2 machine (LLVM splits each vector in two), 32-byte ones and
    6-row tiles on an AVX-512 one."""
    other = 32 if packed.VECTOR_BYTES == 64 else 64
    env = dict(os.environ, FASTGRU_VECTOR_BYTES=str(other), NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", OTHER_LAYOUT, str(other)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split() == ["ok", "8" if other == 64 else "6"]


def test_packed_panels_and_kernel_buffers_start_on_a_cache_line():
    """Numba aligns its buffers to 32 bytes and NumPy to 16: the packed panels (read by 64-byte vector
    loads at every step) and the Python-side outputs are allocated on 64-byte boundaries instead
    (``fastgru._kernels.aligned``), in compiled code and from Python, for every size and both dtypes."""
    from numba import njit

    from fastgru._kernels import aligned

    @njit(cache=False)
    def compiled(n, dtype_probe):
        a = aligned.empty_aligned((n, 3), dtype_probe.dtype)
        z = aligned.zeros_aligned((2, n), dtype_probe.dtype)
        return a, z, packed.pack(np.ones((n, 5), dtype_probe.dtype))

    for dtype in DTYPES:
        for n in (0, 1, 7, 33, 1000):
            a, z, up = compiled(n, np.zeros(1, dtype))
            for arr in (a, z, up):
                assert arr.dtype == dtype and arr.flags.c_contiguous
                assert arr.ctypes.data % aligned.ALIGN == 0 or arr.size == 0
            assert a.shape == (n, 3) and z.shape == (2, n) and not z.any()
            up_py = packed.pack(np.ones((n, 5), dtype))  # plain Python (register_jitable) path
            assert (up_py.ctypes.data % aligned.ALIGN == 0 or up_py.size == 0) and np.array_equal(up_py, up)
        for shape in ((4096,), (3, 700, 9), (64, 100, 1280)):  # (tuples: what the callers pass)
            for make in (aligned.empty, aligned.zeros):
                arr = make(shape, dtype)
                assert arr.shape == shape and arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.writeable
                assert arr.ctypes.data % aligned.ALIGN == 0
            assert not aligned.zeros(shape, dtype).any()
        small = aligned.zeros((2, 3), dtype)  # under PY_ALIGN_MIN_BYTES: NumPy's own array
        assert small.shape == (2, 3) and not small.any()


def test_large_training_buffers_reuse_memory_only_once_nothing_refers_to_it():
    """``aligned.empty_reused`` (the training's saved gates): a block of the same size is reused only
    when no array (any view of it) refers to it any more; while one does, a new block; aligned; at
    most ``_POOL_BLOCKS`` unused blocks are kept; small sizes are plain ``aligned.empty``."""
    from fastgru._kernels import aligned

    shape = (2, aligned.REUSE_MIN_BYTES // 8 + 16, 2)  # just over the threshold in float32
    a = aligned.empty_reused(shape, np.float32)
    assert a.ctypes.data % aligned.ALIGN == 0 and a.shape == shape and a.flags.c_contiguous
    block = id(a.base)
    view = a.reshape(-1)[5:]  # a view outlives the array it came from
    del a
    b = aligned.empty_reused(shape, np.float32)
    assert id(b.base) != block, "a block still viewed is not handed out again"
    view[:] = 1.0
    del view
    c = aligned.empty_reused(shape, np.float32)
    assert id(c.base) == block, "a block nothing refers to is reused"
    assert id(b.base) != id(c.base)
    del b, c
    for extra in range(aligned._POOL_BLOCKS + 3):  # other sizes, each dropped at once
        aligned.empty_reused((shape[0], shape[1] + 16 * (extra + 1), 2), np.float32)
    assert len(aligned._pool) <= aligned._POOL_BLOCKS
    small = aligned.empty_reused((4, 4), np.float32)
    assert small.shape == (4, 4) and all(small.base is not block for block in aligned._pool)
