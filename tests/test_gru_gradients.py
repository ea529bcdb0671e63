"""BPTT kernels against central finite differences in float64 (no Keras needed), for every option.

The loss is a random linear functional of the outputs and the final state, so its gradients with
respect to them are the functional's coefficients. Shapes are tiny (B=3, T=4, D=3, H=2): one check
is ~170 forward calls. Every check runs in float64 with the same kernels (one compiled signature).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastgru as fg
from fastgru import ops

# every test runs with the kernels' products through fastgru's loop and through BLAS (conftest)

B, T, D, H = 3, 4, 3, 2
EPS = 1e-6
TOL = 1e-6
INVERTIBLE = ["tanh", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "relu", "linear", "softsign", "elu",
              "selu", "softplus", "relu6", "leaky_relu", "hard_tanh", "celu", "log_sigmoid", "sparse_plus", "squareplus",
              "exponential"]


def make_problem(rng, reset_after=True, use_bias=True, dtype=np.float64, scale=0.6):
    x = rng.standard_normal((B, T, D))
    w = rng.standard_normal((D, 3 * H)) * scale
    u = rng.standard_normal((H, 3 * H)) * scale
    b = None
    if use_bias:
        b = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,)) * scale
    h0 = rng.standard_normal((B, H)) * 0.5
    cast = lambda a: None if a is None else a.astype(dtype)  # noqa: E731
    return cast(x), cast(w), cast(u), cast(b), cast(h0)


def sequence_mask(rng):
    mask = rng.random((B, T)) > 0.4
    mask[0, -2:] = False  # trailing masked steps: last output and last state differ
    mask[1, :2] = False  # leading masked steps: outputs before any real step
    mask[2, 1] = True
    return mask


def dropout_masks(rng, rate, shape, dtype=np.float64):
    return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype)


def rel_err(a, b):
    scale = max(np.abs(a).max(), np.abs(b).max(), 1e-12)
    return np.abs(a - b).max() / scale


def fd_check(rng, x, w, u, b, h0, tol=TOL, **opts):
    """Compare ops.gru_backward with central differences of the training forward."""
    out, h_last, _ = ops.gru_forward_train(x, w, u, b, h0=h0, **opts)
    c_out = rng.standard_normal(out.shape)
    c_h = rng.standard_normal(h_last.shape)
    grads = ops.gru_backward(x, w, u, b, d_outputs=c_out, d_h_last=c_h, h0=h0, **opts)
    args = [x, w, u, b, h0]

    def loss():
        o, hl, _ = ops.gru_forward_train(args[0], args[1], args[2], args[3], h0=args[4], **opts)
        return float((o * c_out).sum() + (hl * c_h).sum())

    names = ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0"]
    for k, name in enumerate(names):
        a = args[k]
        got = getattr(grads, name)
        if a is None:  # no bias: no gradient; no h0: the gradient of the zero initial state
            assert (got is None) == (name == "dbias")
            continue
        assert got.shape == a.shape and got.dtype == a.dtype, name
        fd = np.empty_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + EPS
            lp = loss()
            a[idx] = old - EPS
            lm = loss()
            a[idx] = old
            fd[idx] = (lp - lm) / (2 * EPS)
        err = rel_err(got, fd)
        assert err <= tol, f"{name}: relative error {err:.2e}\nanalytic {got}\nnumeric {fd}"
    return grads


@pytest.mark.parametrize(
    "reset_after,go_backwards,return_sequences,masking",
    list(itertools.product([True, False], [False, True], [False, True], ["none", "mask", "zero_output"])),
)
def test_option_grid(rng, reset_after, go_backwards, return_sequences, masking):
    x, w, u, b, h0 = make_problem(rng, reset_after)
    mask = None if masking == "none" else sequence_mask(rng)
    fd_check(rng, x, w, u, b, h0, reset_after=reset_after, go_backwards=go_backwards,
             return_sequences=return_sequences, mask=mask, zero_output_for_mask=masking == "zero_output")


@pytest.mark.parametrize("reset_after", [True, False])
def test_without_bias_and_without_h0(rng, reset_after):
    x, w, u, _, _ = make_problem(rng, reset_after, use_bias=False)
    grads = fd_check(rng, x, w, u, None, None, reset_after=reset_after, return_sequences=True)
    assert grads.dbias is None and grads.dh0.shape == (B, H)


@pytest.mark.parametrize("activation", INVERTIBLE)
@pytest.mark.parametrize("reset_after", [True, False])
def test_activations(rng, activation, reset_after):
    x, w, u, b, h0 = make_problem(rng, reset_after)
    fd_check(rng, x, w, u, b, h0, activation=activation, reset_after=reset_after, return_sequences=True)


@pytest.mark.parametrize("recurrent_activation", ["hard_sigmoid", "hard_sigmoid_keras2", "tanh", "softsign",
                                                  "linear", "relu", "elu", "selu", "softplus"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_recurrent_activations(rng, recurrent_activation, reset_after):
    x, w, u, b, h0 = make_problem(rng, reset_after)
    fd_check(rng, x, w, u, b, h0, recurrent_activation=recurrent_activation, reset_after=reset_after,
             return_sequences=True)


@pytest.mark.parametrize(
    "reset_after,kind,go_backwards,masked",
    [
        (True, "input", False, False),
        (False, "input", True, True),
        (True, "recurrent", False, False),
        (False, "recurrent", False, False),
        (True, "both", True, True),
        (False, "both", False, True),
        (True, "both", False, False),
        (False, "both", True, False),
    ],
)
def test_dropout_fixed_masks(rng, reset_after, kind, go_backwards, masked):
    x, w, u, b, h0 = make_problem(rng, reset_after)
    dmask = rmask = None
    if kind == "input":
        dmask = dropout_masks(rng, 0.3, (B, D))
    if kind in ("recurrent", "both"):
        rmask = dropout_masks(rng, 0.3, (3, B, H))
    if kind == "both":
        dmask = dropout_masks(rng, 0.3, (3, B, D))
    mask = sequence_mask(rng) if masked else None
    fd_check(rng, x, w, u, b, h0, reset_after=reset_after, go_backwards=go_backwards, return_sequences=True,
             mask=mask, dropout_mask=dmask, recurrent_dropout_mask=rmask)


# ---------------------------------------------------------------------------------------------
# the training forward against a NumPy reference with dropout (Keras's equations, one step at a time)
# ---------------------------------------------------------------------------------------------
def reference_dropout_gru(x, w, u, b, h0, dmask, rmask, reset_after, mask, go_backwards):
    """Keras GRUCell.call (implementation 1 when rmask is given, else 2) unrolled in NumPy."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    if b is None:
        b_in, b_rec = np.zeros(3 * H), np.zeros(3 * H)
    elif reset_after:
        b_in, b_rec = b[0], b[1]
    else:
        b_in, b_rec = b, np.zeros(3 * H)
    dm = np.ones((3, B, D)) if dmask is None else np.broadcast_to(dmask, (3, B, D))
    rm = np.ones((3, B, H)) if rmask is None else rmask
    h = h0.copy()
    outs = np.zeros((B, T, H))
    prev = np.zeros((B, H))
    for i in range(T):
        t = T - 1 - i if go_backwards else i
        xz, xr, xh = ((x[:, t] * dm[g]) @ w[:, g * H:(g + 1) * H] + b_in[g * H:(g + 1) * H] for g in range(3))
        z = sig(xz + (h * rm[0]) @ u[:, :H] + b_rec[:H])
        r = sig(xr + (h * rm[1]) @ u[:, H:2 * H] + b_rec[H:2 * H])
        if reset_after:
            hh = np.tanh(xh + r * ((h * rm[2]) @ u[:, 2 * H:] + b_rec[2 * H:]))
        else:
            hh = np.tanh(xh + (r * h * rm[2]) @ u[:, 2 * H:])
        hn = z * h + (1 - z) * hh
        keep = np.ones(B, bool) if mask is None else mask[:, t]
        h = np.where(keep[:, None], hn, h)
        prev = np.where(keep[:, None], hn, prev)
        outs[:, i] = prev
    return outs, h


@pytest.mark.parametrize("reset_after,kind", list(itertools.product([True, False], ["input", "recurrent", "both"])))
def test_dropout_forward_matches_reference(rng, reset_after, kind):
    x, w, u, b, h0 = make_problem(rng, reset_after)
    dmask = dropout_masks(rng, 0.4, (B, D) if kind == "input" else (3, B, D)) if kind != "recurrent" else None
    rmask = dropout_masks(rng, 0.4, (3, B, H)) if kind != "input" else None
    mask = sequence_mask(rng)
    out, h_last, _ = ops.gru_forward_train(x, w, u, b, h0=h0, reset_after=reset_after, return_sequences=True,
                                           go_backwards=True, mask=mask, dropout_mask=dmask,
                                           recurrent_dropout_mask=rmask)
    ref_out, ref_h = reference_dropout_gru(x, w, u, b, h0, dmask, rmask, reset_after, mask, True)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h_last, ref_h, rtol=1e-12, atol=1e-12)


def test_training_forward_equals_inference_forward(rng):
    for reset_after in (True, False):
        x, w, u, b, h0 = make_problem(rng, reset_after)
        mask = sequence_mask(rng)
        opts = dict(h0=h0, reset_after=reset_after, return_sequences=True, mask=mask, go_backwards=True)
        out, h_last = ops.gru_forward(x, w, u, b, **opts)
        out_t, h_last_t, _ = ops.gru_forward_train(x, w, u, b, **opts)
        np.testing.assert_array_equal(out, out_t)
        np.testing.assert_array_equal(h_last, h_last_t)


def test_all_ones_dropout_masks_change_nothing(rng):
    x, w, u, b, h0 = make_problem(rng, False)
    c = rng.standard_normal((B, H))
    plain = ops.gru_backward(x, w, u, b, d_outputs=c, h0=h0, reset_after=False)
    ones = ops.gru_backward(x, w, u, b, d_outputs=c, h0=h0, reset_after=False, dropout_mask=np.ones((3, B, D)),
                            recurrent_dropout_mask=np.ones((3, B, H)))
    for p, q in zip(plain, ones):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reset_after,dropout", [(True, None), (False, "input"), (True, "both"), (False, "both")])
def test_larger_batch_splits_across_threads(rng, reset_after, dropout):
    """Many rows (several per thread chunk, BLAS inside the step) against one row at a time: the
    chunks' partial weight gradients add up, and each chunk reads its own rows of every mask."""
    bsz, steps, d, h = 37, 6, 5, 9
    x = rng.standard_normal((bsz, steps, d))
    w, u = rng.standard_normal((d, 3 * h)) * 0.4, rng.standard_normal((h, 3 * h)) * 0.4
    b = rng.standard_normal((2, 3 * h) if reset_after else (3 * h,)) * 0.4
    mask = rng.random((bsz, steps)) > 0.2
    d_out = rng.standard_normal((bsz, steps, h))
    dmask = rmask = None
    if dropout == "input":
        dmask = dropout_masks(rng, 0.3, (bsz, d))
    elif dropout == "both":
        dmask, rmask = dropout_masks(rng, 0.3, (3, bsz, d)), dropout_masks(rng, 0.3, (3, bsz, h))
    opts = dict(return_sequences=True, go_backwards=True, reset_after=reset_after)
    full = ops.gru_backward(x, w, u, b, d_outputs=d_out, mask=mask, dropout_mask=dmask, recurrent_dropout_mask=rmask,
                            **opts)
    sums = [np.zeros_like(w), np.zeros_like(u), np.zeros_like(b)]
    for i in range(bsz):
        rows = slice(i, i + 1)
        one = ops.gru_backward(x[rows], w, u, b, d_outputs=d_out[rows], mask=mask[rows],
                               dropout_mask=None if dmask is None else dmask[..., rows, :],
                               recurrent_dropout_mask=None if rmask is None else rmask[:, rows], **opts)
        np.testing.assert_allclose(one.dx, full.dx[rows], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(one.dh0, full.dh0[rows], rtol=1e-10, atol=1e-12)
        for acc, g in zip(sums, (one.dkernel, one.drecurrent_kernel, one.dbias)):
            acc += g
    for acc, g in zip(sums, (full.dkernel, full.drecurrent_kernel, full.dbias)):
        np.testing.assert_allclose(acc, g, rtol=1e-10, atol=1e-12)


def test_float32_matches_float64(rng):
    x, w, u, b, h0 = make_problem(rng, True)
    c = rng.standard_normal((B, T, H))
    g64 = ops.gru_backward(x, w, u, b, d_outputs=c, h0=h0, return_sequences=True)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    g32 = ops.gru_backward(f32(x), f32(w), f32(u), f32(b), d_outputs=f32(c), h0=f32(h0), return_sequences=True)
    for p, q in zip(g64, g32):
        assert q.dtype == np.float32
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def test_empty_sequence(rng):
    x = np.zeros((2, 0, D))
    w, u = rng.standard_normal((D, 3 * H)), rng.standard_normal((H, 3 * H))
    dh = rng.standard_normal((2, H))
    g = ops.gru_backward(x, w, u, None, d_h_last=dh, return_sequences=True, d_outputs=np.zeros((2, 0, H)))
    assert g.dx.shape == x.shape and not g.dkernel.any() and not g.drecurrent_kernel.any()
    np.testing.assert_array_equal(g.dh0, dh)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["swish", "silu", "gelu"])
def test_non_invertible_activation_raises_before_any_kernel(rng, name):
    x, w, u, b, h0 = make_problem(rng)
    with pytest.raises(fg.UnsupportedKerasFeature, match="inference only"):
        ops.gru_backward(x, w, u, b, activation=name)
    with pytest.raises(NotImplementedError):
        ops.gru_forward_train(x, w, u, b, recurrent_activation=name)


def test_bad_arguments(rng):
    x, w, u, b, h0 = make_problem(rng)
    with pytest.raises(ValueError, match=r"d_outputs must have shape \(3, 2\)"):
        ops.gru_backward(x, w, u, b, d_outputs=np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="d_h_last must have shape"):
        ops.gru_backward(x, w, u, b, d_h_last=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="dropout_mask must have shape"):
        ops.gru_backward(x, w, u, b, dropout_mask=np.ones((3, 2)))
    with pytest.raises(ValueError, match="recurrent_dropout_mask must have shape"):
        ops.gru_backward(x, w, u, b, recurrent_dropout_mask=np.ones((B, H)))
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        ops.gru_backward(x, w, u[:, :3], b)
    _, _, cache = ops.gru_forward_train(x, w, u, b)
    cache.backward(np.ones((B, H)))
    with pytest.raises(RuntimeError, match="already used"):
        cache.backward(np.ones((B, H)))


def test_run_gru_save_matches_training_forward(rng):
    """``run_gru(save=True)`` writes the same (B, T, 5H) saved buffer as ``run_gru_train``."""
    x, w, u, b, h0 = make_problem(rng, False)
    prepared = ops.PreparedGRU(w, u, b, False)
    codes = ops.training_activation_codes("tanh", "sigmoid")
    mask = ops.validate_gru_args(x, w, u, b, h0, sequence_mask(rng), False)[-1]
    _, _, saved = ops.run_gru(x, prepared, h0, mask, *codes, True, True, False, save=True)
    _, _, saved_t = ops.run_gru_train(x, prepared, h0, mask, *codes, True, True)
    np.testing.assert_allclose(saved, saved_t, rtol=1e-13, atol=1e-14)


def test_training_memory(rng):
    """docs/training-memory.md: no allocation per step, and 5 numbers per (b, t, unit) saved."""
    import tracemalloc

    from numba.core.runtime import _nrt_python, rtsys

    bsz, d, h = 16, 8, 32
    w, u = rng.standard_normal((d, 3 * h)) * 0.3, rng.standard_normal((h, 3 * h)) * 0.3
    b = rng.standard_normal((2, 3 * h)) * 0.3
    prepared = ops.PreparedGRU(w, u, b, True)
    codes = ops.training_activation_codes("tanh", "sigmoid")

    def step(steps):
        x = rng.standard_normal((bsz, steps, d))
        d_out = rng.standard_normal((bsz, steps, h))
        out, _, saved = ops.run_gru_train(x, prepared, None, None, *codes, True, False)
        ops.run_gru_backward(x, prepared, saved, None, *codes, True, False, False, d_out, None)
        return x, d_out

    if hasattr(_nrt_python, "memsys_enable_stats"):  # a private Numba API: only where it exists
        counts = {}
        enabled = _nrt_python.memsys_stats_enabled()
        _nrt_python.memsys_enable_stats()
        try:
            # 80 and 160 steps (any difference is an allocation per step)
            for steps in (80, 160):
                step(steps)  # warm
                before = rtsys.get_allocation_stats().alloc
                step(steps)
                counts[steps] = rtsys.get_allocation_stats().alloc - before
        finally:
            if not enabled:
                _nrt_python.memsys_disable_stats()
        assert counts[80] == counts[160], counts

    steps = 50
    x = rng.standard_normal((bsz, steps, d))
    d_out = rng.standard_normal((bsz, steps, h))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out, _, saved = ops.run_gru_train(x, prepared, None, None, *codes, True, False)
        ops.run_gru_backward(x, prepared, saved, None, *codes, True, False, False, d_out, None)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    s = x.itemsize
    per_step = 5 * bsz * steps * h + bsz * steps * h + bsz * steps * d  # saved, outputs, dx
    weight_sized = (fg.get_num_threads() + 4) * (d + h) * 3 * h  # U^T, partial and summed gradients
    # each thread's block of the gradient products' right operand, packed (kc rows of whole panels)
    from fastgru._kernels.gradient_products import _blocks
    from fastgru._kernels.simd import MR, NV, VECTOR_BYTES
    nr = NV * VECTOR_BYTES // s
    kc, _ = _blocks(3 * h, bsz * steps, s)
    packing = fg.get_num_threads() * (kc * -(-3 * h // nr) * nr + MR * 3 * h + kc * MR)
    bound = s * (per_step + weight_sized + packing) + 64 * 1024
    assert peak <= bound, (peak, bound)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_float32_one_pass_gates_gradients_match_float64(rng, go_backwards):
    """The float32 training forward with Keras's default gates saves them from its one-pass loop
    (vector body and remainder: H=37); the gradients it leads to match float64's, masked steps included."""
    bsz, steps, d, h = 5, 7, 4, 37
    x = rng.standard_normal((bsz, steps, d))
    w, u = rng.standard_normal((d, 3 * h)) * 0.3, rng.standard_normal((h, 3 * h)) * 0.2
    b = rng.standard_normal((2, 3 * h)) * 0.3
    h0 = rng.standard_normal((bsz, h)) * 0.5
    mask = rng.random((bsz, steps)) > 0.3
    mask[0, -2:] = False
    mask[1, :2] = False
    c = rng.standard_normal((bsz, steps, h))
    opts = dict(mask=mask, return_sequences=True, go_backwards=go_backwards)
    g64 = ops.gru_backward(x, w, u, b, d_outputs=c, h0=h0, **opts)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    g32 = ops.gru_backward(f32(x), f32(w), f32(u), f32(b), d_outputs=f32(c), h0=f32(h0), **opts)
    for p, q in zip(g64, g32):
        assert q.dtype == np.float32
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=2e-5)
