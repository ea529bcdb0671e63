"""Conv1D's shifted-GEMM kernels (fastgru/_kernels/conv1d.py) against an independent im2col reference
in NumPy: every padding, strides (lengths that are and are not multiples of the stride), dilation,
groups, bias or none, float32 and float64, shapes spanning several row blocks and both threads'
chunks, the input gradient skipped, and the checks on what reaches the kernels."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import fastgru as fg
from fastgru.layers import Conv1D
from fastgru.layers.conv import conv_output_length, padding_amounts, windows


def reference(x, kernel, bias, strides, padding, dilation, groups):
    """(z, dz -> (dx, dkernel, dbias)) by im2col and a tap-by-tap scatter, in float64."""
    b, steps, c_in = x.shape
    k, cg, f = kernel.shape
    out = conv_output_length(steps, k, padding, strides, dilation)
    left, right = padding_amounts(steps, k, padding, strides, dilation)
    xp = np.pad(x.astype(np.float64), ((0, 0), (left, right), (0, 0)))
    cols = np.ascontiguousarray(windows(xp, k, strides, dilation, out))  # (B, T_out, k, C_in)
    fg_ = f // groups
    z = np.empty((b, out, f))
    for g in range(groups):
        cg_cols = cols[..., g * cg:(g + 1) * cg].reshape(b * out, k * cg)
        z[..., g * fg_:(g + 1) * fg_] = (cg_cols @ kernel[..., g * fg_:(g + 1) * fg_].reshape(k * cg, fg_)
                                         ).reshape(b, out, fg_)
    z += 0 if bias is None else bias

    def grads(dz):
        dz = dz.astype(np.float64)
        dk = np.empty(kernel.shape)
        dcols = np.empty((b, out, k, c_in))
        for g in range(groups):
            dzg = dz[..., g * fg_:(g + 1) * fg_].reshape(b * out, fg_)
            cg_cols = cols[..., g * cg:(g + 1) * cg].reshape(b * out, k * cg)
            dk[..., g * fg_:(g + 1) * fg_] = (cg_cols.T @ dzg).reshape(k, cg, fg_)
            dcols[..., g * cg:(g + 1) * cg] = (dzg @ kernel[..., g * fg_:(g + 1) * fg_].reshape(k * cg, fg_).T
                                              ).reshape(b, out, k, cg)
        dxp = np.zeros(xp.shape)
        for j in range(k if out else 0):
            dxp[:, j * dilation:j * dilation + strides * (out - 1) + 1:strides] += dcols[:, :, j]
        return dxp[:, left:left + steps], dk, dz.sum(axis=(0, 1))

    return z, grads


CASES = [
    dict(filters=8, kernel_size=5),
    dict(filters=6, kernel_size=3, padding="same"),
    dict(filters=6, kernel_size=4, padding="same"),
    dict(filters=5, kernel_size=3, padding="causal", dilation_rate=3),
    dict(filters=4, kernel_size=3, strides=2),  # 37 steps: not a multiple of the stride
    dict(filters=4, kernel_size=2, strides=3, padding="same", use_bias=False),
    dict(filters=3, kernel_size=1, strides=5),  # stride beyond the window
    dict(filters=8, kernel_size=3, groups=4, padding="causal"),
    dict(filters=6, kernel_size=2, groups=2, strides=2, padding="same"),
    dict(filters=4, kernel_size=7, dilation_rate=5),  # one output step
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("options", CASES, ids=lambda o: "-".join(f"{k}{v}" for k, v in o.items()))
def test_forward_and_backward_match_the_im2col_reference(rng, options, threads, dtype):
    before = fg.get_num_threads()
    fg.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        steps, c_in = 37, 8
        layer = Conv1D(dtype=dtype, **options)
        layer.build((None, steps, c_in))
        layer.set_weights([rng.standard_normal(w.shape) for w in layer.weights])
        x = rng.standard_normal((13, steps, c_in)).astype(dtype)  # 13*37 rows: several blocks, two chunks
        bias = layer.weights[1] if layer.use_bias else None
        z_ref, grads = reference(x, layer.weights[0], bias, layer.strides[0], layer.padding,
                                 layer.dilation_rate[0], layer.groups)
        tol = dict(rtol=2e-4, atol=2e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
        y, cache = layer.forward(x)
        assert y.dtype == dtype and y.shape == z_ref.shape
        np.testing.assert_allclose(y, z_ref, **tol)
        np.testing.assert_allclose(layer.call(x), z_ref, **tol)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, got = layer.backward(dy, cache)
        dx_ref, dk_ref, db_ref = grads(dy)
        np.testing.assert_allclose(dx, dx_ref, **tol)
        np.testing.assert_allclose(got[0], dk_ref, **tol)
        if layer.use_bias:
            np.testing.assert_allclose(got[1], db_ref, **tol)
        none, got2 = layer.backward(dy, cache, need_dx=False)
        assert none is None
        for a, b in zip(got, got2):
            np.testing.assert_array_equal(a, b)
    finally:
        fg.set_num_threads(before)


def test_the_benchmark_shape_and_a_strided_input(rng):
    layer = Conv1D(16, 5, padding="same", activation="relu")
    layer.build((None, 300, 24))
    x = rng.standard_normal((3, 300, 48)).astype(np.float32)[:, :, ::2]  # not contiguous
    z_ref, grads = reference(x, layer.weights[0], layer.weights[1], 1, "same", 1, 1)
    y, cache = layer.forward(x)
    np.testing.assert_allclose(y, np.maximum(z_ref, 0), rtol=2e-4, atol=2e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, (dk, db) = layer.backward(dy, cache)
    dx_ref, dk_ref, db_ref = grads(dy * (z_ref > 0))
    np.testing.assert_allclose(dx, dx_ref, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(dk, dk_ref, rtol=2e-4, atol=2e-3)


def test_shapes_are_checked_before_the_kernels(rng):
    layer = Conv1D(4, 3)
    layer.build((None, 10, 2))
    y, cache = layer.forward(rng.standard_normal((2, 10, 2)))
    with pytest.raises(ValueError, match="output gradient of shape"):
        layer.backward(np.ones((2, 7, 4)), cache)
    with pytest.raises(ValueError, match="expects input"):
        layer.call(np.ones((2, 10, 3)))
    with pytest.raises(ValueError):  # a kernel of another shape never reaches the kernels
        layer.set_weights([np.ones((3, 3, 4)), np.ones(4)])


def test_the_packed_paths_refuse_a_packed_kernel_that_does_not_fit():
    """The windows path of the compiled kernels takes the packed kernel only for one group, no dilation
    and k*C_in rows (stride 1 and k*F rows for the input gradient), so a wrong one is an error, never a
    silently different sum."""
    from fastgru._kernels import conv1d as _conv
    from fastgru._kernels.packed import pack

    xf = np.ones((20, 4))
    w = np.ones((3, 4, 5))
    out = np.zeros((2, 8, 5))
    scratch = np.zeros((_conv.BLOCK, 5))
    bias = np.zeros(5)
    good = pack(w.reshape(12, 5))
    _conv.conv1d_forward_chunk(xf, w, good, bias, False, out, 10, 1, 1, 1, scratch, 0, 20)
    np.testing.assert_array_equal(out, 12.0)
    for wp, dilation in ((pack(np.ones((8, 5))), 1), (good, 2)):
        with pytest.raises(ValueError, match="packed kernel does not match"):
            _conv.conv1d_forward_chunk(xf, w, wp, bias, False, out, 10, 1, dilation, 1, scratch, 0, 20)
    dzp = np.zeros((22, 5))
    dxf = np.empty((20, 4))
    for wtp in (pack(np.ones((10, 4))), pack(np.ones((15, 4)))):  # 10 rows: not k*F
        args = (xf, dzp[2:], w, dxf, np.zeros((3, 4, 5)), np.empty((0, 12)), True, 10, 1, 1, 1, 0, 20, 0, 20, dzp,
                wtp)
        if wtp.shape[1] == 15:
            _conv.conv1d_backward_chunk(*args)
            np.testing.assert_array_equal(dxf, 0.0)
        else:
            with pytest.raises(ValueError, match="padded output gradient does not match"):
                _conv.conv1d_backward_chunk(*args)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_short_and_empty_inputs(rng, padding):
    """Fewer steps than the window (no output steps for ``valid``: refused, as Keras refuses them; zero
    steps give zero output steps), one step, no sequences."""
    for steps in (0, 1, 2, 4, 5, 6):
        for strides, dilation in ((1, 1), (2, 1), (1, 2), (3, 1)):
            for batch in (0, 1, 3):
                layer = Conv1D(4, 3, strides=strides, dilation_rate=dilation, padding=padding, dtype="float64")
                layer.build((None, 20, 2))
                x = rng.standard_normal((batch, steps, 2))
                if padding == "valid" and 0 < steps < 2 * dilation + 1:
                    with pytest.raises(ValueError, match="leaves no output steps"):
                        layer.forward(x)
                    continue
                y, cache = layer.forward(x)
                z, grads = reference(x, layer.weights[0], layer.weights[1], strides, padding, dilation, 1)
                assert y.shape == z.shape
                np.testing.assert_allclose(y, z, atol=1e-12)
                dy = rng.standard_normal(y.shape)
                dx, (dk, db) = layer.backward(dy, cache)
                for got, want in zip((dx, dk, db), grads(dy)):
                    assert got.shape == want.shape
                    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("options", [dict(padding="same"), dict(strides=2, padding="causal"),
                                     dict(dilation_rate=3, groups=2)], ids=str)
def test_one_long_sequence_is_split_across_tasks(rng, options):
    """Tasks split flat rows, not sequences: one sequence runs on both threads, same numbers each time."""
    before = fg.get_num_threads()
    fg.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        layer = Conv1D(6, 4, **options)
        layer.build((None, None, 4))
        x = rng.standard_normal((1, 3000, 4)).astype(np.float32)
        z_ref, grads = reference(x, layer.weights[0], layer.weights[1], layer.strides[0], layer.padding,
                                 layer.dilation_rate[0], layer.groups)
        y, cache = layer.forward(x)
        np.testing.assert_allclose(y, z_ref, rtol=2e-4, atol=2e-4)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx, (dk, db) = layer.backward(dy, cache)
        dx_ref, dk_ref, db_ref = grads(dy)
        np.testing.assert_allclose(dx, dx_ref, rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(dk, dk_ref, rtol=1e-4, atol=1e-2)
        for _ in range(3):
            np.testing.assert_array_equal(layer.backward(dy, cache)[1][0], dk)
    finally:
        fg.set_num_threads(before)
