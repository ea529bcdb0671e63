"""Every row of the activation table (``fastgru.activations.TABLE``), checked without being listed by
hand: the kernels' activation against the NumPy function, the kernels' derivative (from the output)
against the NumPy gradient, and the NumPy gradient against finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from fastgru import activations
from fastgru._kernels import activations as kact

ROWS = [row.name for row in activations.TABLE]
KERNEL_ROWS = [row.name for row in activations.TABLE if row.code is not None]
# points away from the kinks of relu / hard_sigmoid, where a derivative is one-sided
X = np.concatenate([np.linspace(-6.1, 6.1, 57), [-40.0, -12.3, 0.37, 12.3, 40.0]])


def _no_kinks(x):
    """x (n,) without the points within 1e-3 of a kink."""
    kinks = np.array([0.0, -3.0, 3.0, -2.5, 2.5, -1.0, 1.0, -0.5, 0.5, 6.0])
    return x[np.all(np.abs(x[:, None] - kinks) > 1e-3, axis=1)]


@pytest.mark.parametrize("name", KERNEL_ROWS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_activation_matches_numpy(name, dtype):
    row = activations.BY_NAME[name]
    x = X.astype(dtype)
    v = x.copy()
    kact.activate_inplace(kact.fast_code(row.code, dtype), v)
    tol = 1e-12 if dtype == np.float64 else 4e-7
    np.testing.assert_allclose(v, row.forward(x), rtol=tol * 10, atol=tol)


@pytest.mark.parametrize("name", [n for n in KERNEL_ROWS if activations.BY_NAME[n].code in kact.INVERTIBLE_FROM_OUTPUT])
def test_kernel_derivative_from_output_matches_numpy_gradient(name):
    row = activations.BY_NAME[name]
    x = _no_kinks(X)
    y = row.forward(x)
    dy = np.random.default_rng(0).standard_normal(x.shape)
    d = dy.copy()
    kact.derivative_from_output(row.code, y, d)
    np.testing.assert_allclose(d, row.gradient(x, y, dy), rtol=1e-9, atol=1e-12)


def test_codes_without_an_output_derivative_are_the_ones_bptt_refuses():
    """swish, gelu, mish and hard_silu cannot be differentiated from their output: the training ops refuse them."""
    no_inverse = {row.name for row in activations.TABLE
                  if row.code is not None and row.code not in kact.INVERTIBLE_FROM_OUTPUT}
    assert no_inverse == {"swish", "gelu", "mish", "hard_silu"}


@pytest.mark.parametrize("name", ROWS)
def test_numpy_gradient_matches_finite_differences(name):
    row = activations.BY_NAME[name]
    rng = np.random.default_rng(1)
    x = _no_kinks(X)[None, :8] if name in ("softmax", "log_softmax") else _no_kinks(X)
    x = x + 0.0
    dy = rng.standard_normal(x.shape)
    analytic = row.gradient(x, row.forward(x), dy)
    eps = 1e-6
    numeric = np.empty_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        xp, xm = flat.copy(), flat.copy()
        xp[i] += eps
        xm[i] -= eps
        numeric.reshape(-1)[i] = np.sum(dy.reshape(-1) * (row.forward(xp.reshape(x.shape)).reshape(-1)
                                                          - row.forward(xm.reshape(x.shape)).reshape(-1))) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_functions_keep_the_dtype(name, dtype):
    row = activations.BY_NAME[name]
    x = X.astype(dtype)[None]
    y = row.forward(x)
    assert y.dtype == dtype
    assert row.gradient(x, y, np.ones_like(x)).dtype == dtype


def test_names_aliases_and_refusals():
    assert activations.canonical_name("silu") == "swish"
    assert activations.canonical_name(None) == activations.canonical_name("None") == "linear"
    assert activations.canonical_name({"class_name": "function", "config": {"name": "relu"}}) == "relu"
    assert activations.kernel_code("tanh") == kact.TANH
    with pytest.raises(activations.UnsupportedKerasFeature, match="inside a recurrent cell"):
        activations.kernel_code("softmax")
    with pytest.raises(activations.UnsupportedKerasFeature, match="supported activations: celu, elu"):
        activations.canonical_name("sparsemax")
    assert activations.canonical_name("hard_swish") == "hard_silu"
    with pytest.raises(activations.UnsupportedKerasFeature,
                       match="'tanh_shrink' is not supported inside a recurrent cell"):
        activations.kernel_code("tanh_shrink")
    numpy_only = {"softmax", "log_softmax", "tanh_shrink", "soft_shrink", "hard_shrink", "sparse_sigmoid"}
    assert set(activations.CODES) == set(activations.SUPPORTED) - numpy_only
    codes = [row.code for row in activations.TABLE if row.code is not None]
    assert len(codes) == len(set(codes))
