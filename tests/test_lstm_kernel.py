"""LSTM kernels against the NumPy reference (every option, both dtypes, 1 and 2 threads) and BPTT
against central finite differences in float64 (no Keras needed)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference import reference_lstm

import fastgru as fg
from fastgru import ops

# every test runs with the kernels' products through fastgru's loop and through BLAS (conftest)

B, T, D, H = 3, 4, 3, 2


def make_problem(rng, dtype=np.float64, scale=0.6, bsz=B, steps=T):
    x = rng.standard_normal((bsz, steps, D))
    w = rng.standard_normal((D, 4 * H)) * scale
    u = rng.standard_normal((H, 4 * H)) * scale
    b = rng.standard_normal(4 * H) * scale
    h0 = rng.standard_normal((bsz, H)) * 0.5
    c0 = rng.standard_normal((bsz, H)) * 0.5
    return [a.astype(dtype) for a in (x, w, u, b, h0, c0)]


def sequence_mask(rng, bsz=B, steps=T):
    mask = rng.random((bsz, steps)) > 0.4
    mask[0, -2:] = False  # trailing masked steps
    mask[1, :2] = False  # leading masked steps
    mask[2, 1] = True
    return mask


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    previous = fg.get_num_threads()
    fg.set_num_threads(min(request.param, previous if previous > 1 else 2))
    yield
    fg.set_num_threads(previous)


@pytest.mark.parametrize("return_sequences,go_backwards,use_mask,zero_output", [
    (False, False, False, False), (True, False, False, False), (True, True, False, False),
    (False, True, True, False), (True, False, True, False), (True, True, True, True), (False, False, True, True),
])
def test_forward_matches_reference(rng, threads, return_sequences, go_backwards, use_mask, zero_output):
    x, w, u, b, h0, c0 = make_problem(rng, bsz=5, steps=6)
    mask = sequence_mask(rng, 5, 6) if use_mask else None
    opts = dict(return_sequences=return_sequences, go_backwards=go_backwards, mask=mask,
                zero_output_for_mask=zero_output)
    expected = reference_lstm(x, w, u, b, h0=h0, c0=c0, **opts)
    got = ops.lstm_forward(x, w, u, b, h0=h0, c0=c0, **opts)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-12)
    # the training forward computes the same outputs
    got_train = ops.lstm_forward_train(x, w, u, b, h0=h0, c0=c0, **opts)[:3]
    for g, e in zip(got_train, expected):
        np.testing.assert_allclose(g, e, atol=1e-12)
    # float32: the vectorised tanh/sigmoid approximation stays within float32 rounding
    got32 = ops.lstm_forward(*(a.astype(np.float32) for a in (x, w, u, b)), h0=h0.astype(np.float32),
                             c0=c0.astype(np.float32), **opts)
    assert got32[0].dtype == np.float32
    np.testing.assert_allclose(got32[0], expected[0], atol=2e-6)


@pytest.mark.parametrize("activation,recurrent_activation", [
    ("relu", "hard_sigmoid"), ("softsign", "sigmoid"), ("elu", "hard_sigmoid_keras2"), ("linear", "tanh"),
    ("swish", "sigmoid"), ("gelu", "sigmoid"),
])
def test_activations_match_reference(rng, activation, recurrent_activation):
    x, w, u, b, h0, c0 = make_problem(rng)
    opts = dict(activation=activation, recurrent_activation=recurrent_activation, return_sequences=True)
    expected = reference_lstm(x, w, u, b, **opts)
    got = ops.lstm_forward(x, w, u, b, **opts)
    np.testing.assert_allclose(got[0], expected[0], atol=1e-12)
    np.testing.assert_allclose(got[2], expected[2], atol=1e-12)


def test_no_bias_and_empty_batch(rng):
    x, w, u, _, _, _ = make_problem(rng)
    out, h, c = ops.lstm_forward(x, w, u, None)
    np.testing.assert_allclose(out, reference_lstm(x, w, u, None)[0], atol=1e-12)
    out, h, c = ops.lstm_forward(x[:0], w, u, None, return_sequences=True)
    assert out.shape == (0, T, H) and h.shape == (0, H) and c.shape == (0, H)


def test_training_forward_with_dropout_masks_matches_reference(rng, threads):
    x, w, u, b, h0, c0 = make_problem(rng)
    for dmask, rmask in [
        ((rng.random((B, D)) > 0.3) / 0.7, None),
        ((rng.random((4, B, D)) > 0.3) / 0.7, (rng.random((4, B, H)) > 0.4) / 0.6),
        (None, (rng.random((4, B, H)) > 0.4) / 0.6),
    ]:
        opts = dict(return_sequences=True, mask=sequence_mask(rng))
        expected = reference_lstm(x, w, u, b, h0=h0, c0=c0, dropout_mask=dmask, recurrent_dropout_mask=rmask, **opts)
        got = ops.lstm_forward_train(x, w, u, b, h0=h0, c0=c0, dropout_mask=dmask, recurrent_dropout_mask=rmask,
                                     **opts)
        for g, e in zip(got[:3], expected):
            np.testing.assert_allclose(g, e, atol=1e-12)


# ---- gradients against finite differences (float64) ------------------------------------------
def fd_check(rng, args, tol=1e-6, **opts):
    """ops.lstm_backward against central differences of a random linear functional of the outputs
    and both final states."""
    x, w, u, b, h0, c0 = args
    out, h_last, c_last, _ = ops.lstm_forward_train(x, w, u, b, h0=h0, c0=c0, **opts)
    coefs = [rng.standard_normal(a.shape) for a in (out, h_last, c_last)]
    grads = ops.lstm_backward(x, w, u, b, d_outputs=coefs[0], d_h_last=coefs[1], d_c_last=coefs[2], h0=h0,
                              c0=c0, **opts)

    def loss(values):
        res = ops.lstm_forward_train(*values[:4], h0=values[4], c0=values[5], **opts)[:3]
        return sum(float((r * k).sum()) for r, k in zip(res, coefs))

    analytic = [grads.dx, grads.dkernel, grads.drecurrent_kernel, grads.dbias, grads.dh0, grads.dc0]
    eps = 1e-6
    for k, a in enumerate(args):
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [v.copy() for v in args]
            plus[k][idx] += eps
            minus = [v.copy() for v in args]
            minus[k][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        scale = max(np.abs(numeric).max(), 1e-12)
        assert np.abs(numeric - analytic[k]).max() / scale < tol, (k, opts)


@pytest.mark.parametrize("return_sequences,go_backwards,use_mask,zero_output", [
    (False, False, False, False), (True, True, False, False), (True, False, True, False), (False, True, True, False),
    (True, True, True, True),
])
def test_gradients_match_finite_differences(rng, return_sequences, go_backwards, use_mask, zero_output):
    args = make_problem(rng)
    mask = sequence_mask(rng) if use_mask else None
    fd_check(rng, args, return_sequences=return_sequences, go_backwards=go_backwards, mask=mask,
             zero_output_for_mask=zero_output)


@pytest.mark.parametrize("activation,recurrent_activation", list(itertools.product(
    ["relu", "softsign", "elu", "linear"], ["hard_sigmoid", "sigmoid"]))[::2])
def test_gradients_for_activations(rng, activation, recurrent_activation):
    fd_check(rng, make_problem(rng), activation=activation, recurrent_activation=recurrent_activation,
             return_sequences=True)


@pytest.mark.parametrize("per_gate", [False, True])
def test_gradients_with_dropout_masks(rng, per_gate):
    args = make_problem(rng)
    dmask = (rng.random((4, B, D) if per_gate else (B, D)) > 0.3) / 0.7
    rmask = (rng.random((4, B, H)) > 0.4) / 0.6 if per_gate else None
    fd_check(rng, args, return_sequences=True, mask=sequence_mask(rng), dropout_mask=dmask,
             recurrent_dropout_mask=rmask)


def test_gradients_two_threads_equal_one_thread(rng):
    x, w, u, b, h0, c0 = make_problem(rng, bsz=6)
    opts = dict(return_sequences=True, mask=sequence_mask(rng, 6, T))
    d_out = rng.standard_normal((6, T, H))
    previous = fg.get_num_threads()
    results = []
    for n in (1, 2):
        fg.set_num_threads(n)
        results.append(ops.lstm_backward(x, w, u, b, d_outputs=d_out, h0=h0, c0=c0, **opts))
    fg.set_num_threads(previous)
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, atol=1e-12)


# ---- the public functions' errors -----------------------------------------------------------
def test_bad_arguments_raise_clear_errors(rng):
    x, w, u, b, h0, c0 = make_problem(rng)
    with pytest.raises(ValueError, match=r"kernel must have shape \(features, 4 \* units\)"):
        ops.lstm_forward(x, w[:, :7], u, b)
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        ops.lstm_forward(x, w, u[:, :4], b)
    with pytest.raises(ValueError, match=r"bias must have shape \(8,\)"):
        ops.lstm_forward(x, w, u, np.zeros((2, 8)))
    with pytest.raises(ValueError, match="c0 must have shape"):
        ops.lstm_forward(x, w, u, b, c0=c0[:1])
    with pytest.raises(ValueError, match="NaN"):
        ops.lstm_forward(x, w, np.full_like(u, np.nan), b)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.lstm_forward(x.astype(int), w, u, b)
    with pytest.raises(ValueError, match=r"recurrent_dropout_mask must have shape \(4, 3, 2\)"):
        ops.lstm_forward_train(x, w, u, b, recurrent_dropout_mask=np.ones((3, B, H)))
    with pytest.raises(fg.UnsupportedKerasFeature, match="LSTM activation='swish'"):
        ops.lstm_forward_train(x, w, u, b, activation="swish")
    _, _, _, cache = ops.lstm_forward_train(x, w, u, b)
    cache.backward()
    with pytest.raises(RuntimeError, match="already used"):
        cache.backward()


@pytest.mark.parametrize("go_backwards,return_sequences,masked,zero_output",
                         list(itertools.product([False, True], repeat=4)))
def test_float32_default_activations_one_pass_loop(rng, go_backwards, return_sequences, masked, zero_output):
    """float32 with Keras's default activations (tanh, sigmoid) takes the one-pass gate loop. H=37 gives
    that loop a vector body and a remainder at 8 and at 16 lanes. Inference and the training forward
    (which also saves the gates) agree bit for bit, both match the float64 computation (the general
    gate path, exact tanh and sigmoid), and so do the gradients, masked steps included."""
    bsz, steps, d, h = 6, 9, 5, 37
    x = rng.standard_normal((bsz, steps, d))
    w, u = rng.standard_normal((d, 4 * h)) * 0.3, rng.standard_normal((h, 4 * h)) * 0.2
    b = rng.standard_normal(4 * h) * 0.3
    h0, c0 = rng.standard_normal((bsz, h)) * 0.5, rng.standard_normal((bsz, h)) * 0.5
    mask = sequence_mask(rng, bsz, steps) if masked else None
    opts = dict(go_backwards=go_backwards, return_sequences=return_sequences, mask=mask,
                zero_output_for_mask=zero_output)
    f32 = [a.astype(np.float32) for a in (x, w, u, b, h0, c0)]
    got = ops.lstm_forward(*f32[:4], h0=f32[4], c0=f32[5], **opts)
    got_train = ops.lstm_forward_train(*f32[:4], h0=f32[4], c0=f32[5], **opts)
    expected = ops.lstm_forward(x, w, u, b, h0=h0, c0=c0, **opts)
    for g, t, e in zip(got, got_train[:3], expected):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, t)
        np.testing.assert_allclose(g, e, atol=3e-6, rtol=1e-5)
    d_out = rng.standard_normal(got[0].shape)
    g64 = ops.lstm_backward(x, w, u, b, d_outputs=d_out, h0=h0, c0=c0, **opts)
    g32 = got_train[3].backward(d_out.astype(np.float32), None, None)
    for p, q in zip(g64, g32):
        assert q.dtype == np.float32
        np.testing.assert_allclose(q, p, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_projection_in_the_loop_matches_the_whole_sequence_projection(rng, dtype, go_backwards):
    """Inference projects the inputs inside the time loop a block of steps at a time (as the GRU's);
    every block size gives the same outputs, states and saved gates bit for bit as one projection
    over all steps, masked steps included, the rows split in two slices."""
    from fastgru._kernels.activations import FAST_SIGMOID, FAST_TANH, SIGMOID, TANH
    from fastgru._kernels.atomics import NO_POST
    from fastgru._kernels.lstm import lstm_forward_slice
    from fastgru._kernels.rnn_common import project_train_slice
    from fastgru._kernels.shared_projection import DONE, NO_PROGRESS, n_blocks, project_shared

    empty3 = np.zeros((0, 0, 0), dtype)
    for bsz, steps, d, h in ((5, 23, 4, 7), (20, 9, 3, 5)):
        x = rng.standard_normal((bsz, steps, d)).astype(dtype)
        w = (rng.standard_normal((d, 4 * h)) * 0.5).astype(dtype)
        u = (rng.standard_normal((h, 4 * h)) * 0.5).astype(dtype)
        b = rng.standard_normal(4 * h).astype(dtype)
        h0, c0 = (rng.standard_normal((bsz, h)).astype(dtype) for _ in range(2))
        mask = (rng.random((bsz, steps)) > 0.3).astype(np.uint8)
        act, ract = (FAST_TANH, FAST_SIGMOID) if dtype == np.float32 else (TANH, SIGMOID)
        xp = np.empty((bsz, steps, 4 * h), dtype)
        project_train_slice(x, w, b, empty3, 0, xp, 0, bsz)  # all steps at once
        results = []
        for block, shared in ((0, 0), (1, 0), (2, 0), (3, 0), (7, 0), (steps, 0), (2, 1), (3, 2), (steps, 2)):
            out = np.zeros((bsz, steps, h), dtype)
            h_last, c_last = np.empty((bsz, h), dtype), np.empty((bsz, h), dtype)
            saved = np.zeros((bsz, steps, 7 * h), dtype)
            given_xp = xp if block == 0 else empty3
            for b0, b1 in ((0, 2), (2, bsz)):
                progress = NO_PROGRESS
                if shared:  # the projection shared (shared_projection): no worker, or one that did every block
                    given_xp, progress = np.empty((steps, b1 - b0, 4 * h), dtype), np.zeros(n_blocks(steps, block), np.int64)
                    if shared == 2:
                        project_shared(x, w, b, given_xp, progress, block, b0, b1 - b0, go_backwards)
                lstm_forward_slice(given_xp, x, w, b, block, u, empty3, empty3, False, h0, c0, mask, True, act, ract,
                                   go_backwards, True, False, out, h_last, c_last, saved, True, b0, b1, NO_POST, progress)
                assert (progress == DONE).all()
            results.append((out, h_last, c_last, saved))
        assert np.isfinite(results[0][0]).all() and np.abs(results[0][0]).max() > 0
        for other in results[1:]:
            for expected, got in zip(results[0], other):
                np.testing.assert_array_equal(got, expected)


def test_lstm_gate_row_against_numpy_for_every_tail_with_and_without_saving():
    """``fused_gates.lstm_gate_row`` (the fused float32 LSTM gate math as explicit vectors): each unit
    against the LSTM equations in float64, for widths around the vector width (full vectors then a
    scalar tail), saving or not, states updated in place, the saved row over the input row."""
    from numba import njit

    from fastgru._kernels.fused_gates import lstm_gate_row
    from fastgru._kernels.packed import _data

    @njit(cache=False)
    def run(x, rec, c, h, c_new, h_new, out, saved, save, b_in):
        has_bin = 1 if b_in.shape[0] > 0 else 0
        lstm_gate_row(_data(x), _data(rec), _data(b_in) if has_bin else _data(c), _data(c), _data(h), _data(c_new),
                      _data(h_new), _data(out), _data(saved), h.shape[0], has_bin, save)

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    rng = np.random.default_rng(5)
    for hdim in (1, 5, 8, 15, 16, 17, 40, 64):
        x, rec = (rng.standard_normal(4 * hdim).astype(np.float32) * 2 for _ in range(2))
        c, h = rng.standard_normal(hdim).astype(np.float32), rng.standard_normal(hdim).astype(np.float32)
        a = x.astype(np.float64) + rec
        ig, fg, og = sigmoid(a[:hdim]), sigmoid(a[hdim:2 * hdim]), sigmoid(a[3 * hdim:])
        gg = np.tanh(a[2 * hdim:3 * hdim])
        c_ref = fg * c + ig * gg
        h_ref = og * np.tanh(c_ref)
        for save, in_place in ((0, False), (1, False), (1, True)):
            cx, hx, out = c.copy(), h.copy(), np.full(hdim, np.nan, np.float32)
            saved = np.full(7 * hdim, np.nan, np.float32)
            saved[:4 * hdim] = x
            xin = saved if in_place else x.copy()
            c_new = cx if in_place else np.empty(hdim, np.float32)
            h_new = hx if in_place else np.empty(hdim, np.float32)
            run(xin, rec, cx, hx, c_new, h_new, out, saved, save, np.zeros(0, np.float32))
            np.testing.assert_allclose(out, h_ref, rtol=2e-6, atol=2e-6)
            np.testing.assert_allclose(c_new, c_ref, rtol=2e-6, atol=2e-6)
            np.testing.assert_array_equal(h_new, out)
            if save:
                expected = np.concatenate([ig, fg, gg, og, np.tanh(c_ref), c, h])
                np.testing.assert_allclose(saved, expected, rtol=2e-6, atol=2e-6)
            else:
                np.testing.assert_array_equal(saved[:4 * hdim], x)
                assert np.isnan(saved[4 * hdim:]).all()
            # the projection without its bias, and the bias (the inference loops): bit for bit the same
            b_in = rng.standard_normal(4 * hdim).astype(np.float32)
            results = []
            for args in (((x - b_in) + b_in, np.zeros(0, np.float32)), (x - b_in, b_in)):
                c2, h2, o2, s2 = c.copy(), h.copy(), np.full(hdim, np.nan, np.float32), np.full(7 * hdim, np.nan,
                                                                                                np.float32)
                run(args[0].copy(), rec, c2, h2, c2, h2, o2, s2, save, *args[1:])
                results.append((c2, h2, o2, s2))
            for got, expected in zip(*results):
                np.testing.assert_array_equal(got, expected)


def test_lstm_grad_row_matches_the_element_formulas_bit_for_bit():
    """``fused_gates.lstm_grad_row`` (the BPTT gate gradients of a float32 row as explicit vectors)
    against the element loop's formulas evaluated by NumPy in float32, one operation at a time in the
    same order (no fused multiply-adds on either side): bit-identical, for widths around the vector
    width (full vectors then a scalar tail); the gradients also overwrite the saved gates, and the
    carried state gradients are updated in place."""
    from numba import njit

    from fastgru._kernels.fused_gates import lstm_grad_row
    from fastgru._kernels.packed import _data

    @njit(cache=False)
    def run(saved, gout, dh, dc, g, carry):
        lstm_grad_row(_data(saved), _data(gout), _data(dh), _data(dc), _data(g), _data(carry), dh.shape[0])

    rng = np.random.default_rng(9)
    one = np.float32(1.0)
    for hdim in (1, 5, 8, 15, 16, 17, 40, 64):
        saved = rng.random(7 * hdim).astype(np.float32)
        saved[4 * hdim:6 * hdim] = rng.standard_normal(2 * hdim).astype(np.float32)  # tanh(c), c_prev
        gout, dh, dc = (rng.standard_normal(hdim).astype(np.float32) for _ in range(3))
        ig, fg, gg, og, tc, cp = (saved[k * hdim:(k + 1) * hdim].copy() for k in range(6))
        gh = dh + gout
        dct = dc + gh * og * (one - tc * tc)
        expected = [dct * gg * (ig * (one - ig)), dct * cp * (fg * (one - fg)), dct * ig * (one - gg * gg),
                    gh * tc * (og * (one - og))]
        tail = saved[4 * hdim:].copy()
        g, carry = np.full(4 * hdim, np.nan, np.float32), np.full(hdim, np.nan, np.float32)
        run(saved, gout, dh, dc, g, carry)
        np.testing.assert_array_equal(g, np.concatenate(expected))
        np.testing.assert_array_equal(saved[:4 * hdim], g)
        np.testing.assert_array_equal(saved[4 * hdim:], tail)
        np.testing.assert_array_equal(dc, dct * fg)
        assert not dh.any() and not carry.any()
