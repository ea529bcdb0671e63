"""The fused GRU kernels against the slow NumPy reference (no Keras needed), for every option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_gru

import fastgru as fg

# every test runs with the kernels' products through fastgru's loop and through BLAS (conftest)

ACTIVATIONS = ["tanh", "sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "relu", "linear", "softsign", "elu",
               "selu", "softplus", "swish", "gelu", "relu6", "leaky_relu", "hard_tanh", "celu", "log_sigmoid",
               "sparse_plus", "squareplus", "mish", "hard_silu"]  # (exponential overflows over 7 steps)


def make_weights(rng, d, h, reset_after, use_bias=True, dtype=np.float32, scale=0.5):
    w = (rng.standard_normal((d, 3 * h)) * scale).astype(dtype)
    u = (rng.standard_normal((h, 3 * h)) * scale).astype(dtype)
    if not use_bias:
        return w, u, None
    b = rng.standard_normal((2, 3 * h) if reset_after else (3 * h,)).astype(dtype) * dtype(0.5)
    return w, u, b


def check(rng, bsz=5, steps=7, d=4, h=6, dtype=np.float32, atol=2e-5, **opts):
    reset_after = opts.get("reset_after", True)
    w, u, b = make_weights(rng, d, h, reset_after, opts.pop("use_bias", True), dtype)
    x = rng.standard_normal((bsz, steps, d)).astype(dtype)
    out, h_last = fg.ops.gru_forward(x, w, u, b, **opts)
    ref_out, ref_h = reference_gru(x, w, u, b, **opts)
    assert out.dtype == dtype and h_last.dtype == dtype
    np.testing.assert_allclose(out, ref_out, atol=atol, rtol=1e-4)
    np.testing.assert_allclose(h_last, ref_h, atol=atol, rtol=1e-4)


@pytest.mark.parametrize(
    "reset_after,go_backwards,return_sequences,masked,zero_output",
    list(itertools.product([True, False], [False, True], [False, True], [False, True], [False, True])),
)
def test_option_combinations(rng, reset_after, go_backwards, return_sequences, masked, zero_output):
    bsz, steps = 5, 7
    mask = rng.random((bsz, steps)) > 0.35 if masked else None
    if masked:
        mask[0, -2:] = False  # trailing masked steps: last output vs last state differ
        mask[1, :2] = False  # leading masked steps: output before any real step
    h0 = rng.standard_normal((bsz, 6)).astype(np.float32)
    check(rng, bsz, steps, reset_after=reset_after, go_backwards=go_backwards, return_sequences=return_sequences,
          mask=mask, zero_output_for_mask=zero_output, h0=h0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("reset_after", [True, False])
def test_activations(rng, activation, reset_after):
    check(rng, activation=activation, reset_after=reset_after, return_sequences=True)


@pytest.mark.parametrize("recurrent_activation", ["sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "tanh", "softsign"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_recurrent_activations(rng, recurrent_activation, reset_after):
    check(rng, recurrent_activation=recurrent_activation, reset_after=reset_after, return_sequences=True)


def test_hard_sigmoid_variants_differ(rng):
    w, u, b = make_weights(rng, 4, 6, True, scale=2.0)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    k3, _ = fg.ops.gru_forward(x, w, u, b, recurrent_activation="hard_sigmoid")
    k2, _ = fg.ops.gru_forward(x, w, u, b, recurrent_activation="hard_sigmoid_keras2")
    assert np.abs(k3 - k2).max() > 1e-3


@pytest.mark.parametrize("reset_after", [True, False])
def test_no_bias(rng, reset_after):
    check(rng, use_bias=False, reset_after=reset_after, return_sequences=True)


@pytest.mark.parametrize("bsz", [1, 2, 3, 4, 5, 9, 33])
def test_batch_sizes_cross_small_and_blas_paths(rng, bsz):
    check(rng, bsz=bsz, steps=5, d=7, h=16, return_sequences=True)


def test_float64_is_computed_in_float64(rng):
    check(rng, dtype=np.float64, atol=1e-12, return_sequences=True)


def test_threads_give_identical_results(rng):
    """The rows split between two threads, the worker's share run from compiled code (a task record,
    ``_kernels.compiled_tasks``), or through its Python after a post from inside the caller's kernel, or
    handed over the usual way: the same outputs bit for bit as one thread (rows are independent and the
    micro-kernel is row-invariant), GRU, LSTM and SimpleRNN, with masks, initial states and go_backwards,
    and in float64 (never written down as a record)."""
    from fastgru import _threads

    w, u, b = make_weights(rng, 8, 32, True)
    x = rng.standard_normal((16, 9, 8)).astype(np.float32)
    mask = rng.random((16, 9)) > 0.3
    h0, c0 = (rng.standard_normal((16, 32)).astype(np.float32) for _ in range(2))
    cases = [(fg.layers.GRU(32, return_sequences=True), {}),
             (fg.layers.GRU(32, go_backwards=True, reset_after=False), {"mask": mask, "initial_state": h0}),
             (fg.layers.LSTM(32, return_sequences=True), {"mask": mask}),
             (fg.layers.LSTM(32, go_backwards=True), {"initial_state": [h0, c0]}),
             (fg.layers.SimpleRNN(32, return_sequences=True), {"mask": mask, "initial_state": h0})]
    n = fg.get_num_threads()
    modes = (_threads._DEFERRED_POST, _threads._COMPILED_WORKER)
    try:
        fg.set_num_threads(1)
        one, _ = fg.ops.gru_forward(x, w, u, b, return_sequences=True)
        ones = [layer(x, **kw) for layer, kw in cases]
        one64 = cases[0][0](x.astype(np.float64))
        fg.set_num_threads(2)
        for _threads._DEFERRED_POST, _threads._COMPILED_WORKER in ((True, True), (True, False), (False, False)):
            for _ in range(3):
                many, _ = fg.ops.gru_forward(x, w, u, b, return_sequences=True)
                np.testing.assert_array_equal(one, many)
                for (layer, kw), expected in zip(cases, ones):
                    np.testing.assert_array_equal(layer(x, **kw), expected)
                np.testing.assert_array_equal(cases[0][0](x.astype(np.float64)), one64)
    finally:
        fg.set_num_threads(n)
        _threads._DEFERRED_POST, _threads._COMPILED_WORKER = modes


def test_empty_sequence_returns_initial_state(rng):
    w, u, b = make_weights(rng, 3, 4, True)
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    out, h_last = fg.ops.gru_forward(np.zeros((2, 0, 3), np.float32), w, u, b, h0=h0)
    np.testing.assert_array_equal(h_last, h0)
    np.testing.assert_array_equal(out, 0)


def test_empty_sequence_without_initial_state_returns_zeros(rng):
    w, u, b = make_weights(rng, 3, 4, True)
    out, h_last = fg.ops.gru_forward(np.zeros((2, 0, 3), np.float32), w, u, b)
    np.testing.assert_array_equal(h_last, np.zeros((2, 4), np.float32))
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_time_loop_starts_from_zeros_for_an_empty_state_and_checks_a_given_one(rng, kind):
    """Without an initial state the inference loops get an empty (0-row) one and start from zeros: the
    same outputs bit for bit as from a (B, H) array of zeros. A given state whose rows or width do not
    match the chunk's is refused before any row is read."""
    from fastgru._kernels import gru as kgru
    from fastgru._kernels import lstm as klstm
    from fastgru._kernels.rnn_common import empty_array
    from fastgru.ops.common import EMPTY_MASK

    bsz, steps, d, h = 5, 4, 3, 8
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    flags = (12, 13, False, True, False)  # FAST_TANH, FAST_SIGMOID; return_sequences
    n_gates = 3 if kind == "gru" else 4
    w = rng.standard_normal((d, n_gates * h)).astype(np.float32)
    u = rng.standard_normal((h, n_gates * h)).astype(np.float32) * np.float32(0.3)
    bias = rng.standard_normal(n_gates * h).astype(np.float32)

    def run(state):
        out, last = np.zeros((bsz, steps, h), np.float32), np.empty((bsz, h), np.float32)
        if kind == "gru":
            kgru.gru_forward_chunk(0, bsz, x, w, bias, u, empty_array(x.dtype, 2), bias, state, EMPTY_MASK, False,
                                   flags, True, out, last, empty_array(x.dtype, 3), False)
        else:
            c_last = np.empty((bsz, h), np.float32)
            klstm.lstm_forward_chunk(0, bsz, x, w, bias, u, state, state, EMPTY_MASK, False, flags, out, last, c_last)
        return out, last

    out_empty, last_empty = run(empty_array(x.dtype, 2))
    out_zeros, last_zeros = run(np.zeros((bsz, h), np.float32))
    np.testing.assert_array_equal(out_empty, out_zeros)
    np.testing.assert_array_equal(last_empty, last_zeros)
    for bad in (np.zeros((bsz - 1, h), np.float32), np.zeros((bsz, h + 1), np.float32)):
        with pytest.raises(ValueError, match="initial state rows"):
            run(bad)


@settings(max_examples=25, deadline=None)
@given(
    bsz=st.integers(1, 6), steps=st.integers(1, 6), d=st.integers(1, 5), h=st.integers(1, 9),
    reset_after=st.booleans(), go_backwards=st.booleans(), seed=st.integers(0, 2**16),
)
def test_random_shapes_property(bsz, steps, d, h, reset_after, go_backwards, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((bsz, steps)) > 0.3
    check(rng, bsz, steps, d, h, reset_after=reset_after, go_backwards=go_backwards, mask=mask,
          return_sequences=True)


@pytest.mark.parametrize(
    "go_backwards,return_sequences,masked,zero_output", list(itertools.product([False, True], repeat=4))
)
def test_float32_default_activations_one_pass_loop(rng, go_backwards, return_sequences, masked, zero_output):
    """float32 with Keras's default gates (reset_after, tanh, sigmoid) takes the one-pass gate loop.
    H=37 gives that loop a vector body and a remainder at 8 and at 16 lanes. Inference and the
    training forward (which also saves the gates) agree bit for bit, and both match the float64
    computation (the general gate path, exact tanh and sigmoid), masked steps included."""
    bsz, steps, d, h = 6, 9, 5, 37
    w, u, b = make_weights(rng, d, h, True, scale=0.3)
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    h0 = (rng.standard_normal((bsz, h)) * 0.5).astype(np.float32)
    mask = None
    if masked:
        mask = rng.random((bsz, steps)) > 0.35
        mask[0, -2:] = False
        mask[1, :2] = False
    opts = dict(go_backwards=go_backwards, return_sequences=return_sequences, mask=mask,
                zero_output_for_mask=zero_output)
    out, h_last = fg.ops.gru_forward(x, w, u, b, h0=h0, **opts)
    out_t, h_last_t, _ = fg.ops.gru_forward_train(x, w, u, b, h0=h0, **opts)
    np.testing.assert_array_equal(out, out_t)
    np.testing.assert_array_equal(h_last, h_last_t)
    f64 = [a.astype(np.float64) for a in (x, w, u, b, h0)]
    ref_out, ref_h = fg.ops.gru_forward(*f64[:4], h0=f64[4], **opts)
    np.testing.assert_allclose(out, ref_out, atol=3e-6, rtol=1e-5)
    np.testing.assert_allclose(h_last, ref_h, atol=3e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after,go_backwards", list(itertools.product([True, False], repeat=2)))
def test_projection_in_the_loop_matches_the_whole_sequence_projection(rng, dtype, reset_after, go_backwards):
    """Inference projects the inputs inside the time loop, a block of steps at a time (one product per
    step when the rows outnumber the block's steps, else one per row). Every block size gives the
    loop the same projection as one product over all steps, bit for bit: outputs, last state and the
    saved gates, masked steps included, with the rows split in two slices (two threads' shares)."""
    from fastgru._kernels.activations import FAST_SIGMOID, FAST_TANH, SIGMOID, TANH
    from fastgru._kernels.atomics import NO_POST
    from fastgru._kernels.gru import gru_forward_slice
    from fastgru._kernels.rnn_common import project_train_slice
    from fastgru._kernels.shared_projection import DONE, NO_PROGRESS, n_blocks, project_shared

    for bsz, steps, d, h in ((5, 23, 4, 7), (20, 9, 3, 5)):
        x = rng.standard_normal((bsz, steps, d)).astype(dtype)
        w, u_full, b = make_weights(rng, d, h, True, scale=0.5)
        w, u_full = w.astype(dtype), u_full.astype(dtype)
        b_in = b[0].astype(dtype)
        if reset_after:
            u, u_h, b_rec = u_full, np.zeros((0, 0), dtype), b[1].astype(dtype)
        else:
            u, u_h = np.ascontiguousarray(u_full[:, :2 * h]), np.ascontiguousarray(u_full[:, 2 * h:])
            b_rec = np.zeros(3 * h, dtype)
        h0 = rng.standard_normal((bsz, h)).astype(dtype)
        mask = (rng.random((bsz, steps)) > 0.3).astype(np.uint8)
        act, ract = (FAST_TANH, FAST_SIGMOID) if dtype == np.float32 else (TANH, SIGMOID)
        xp = np.empty((bsz, steps, 3 * h), dtype)
        project_train_slice(x, w, b_in, np.zeros((0, 0, 0), dtype), 0, xp, 0, bsz)  # all steps at once
        results = []
        for block, shared in ((0, 0), (1, 0), (2, 0), (3, 0), (7, 0), (steps, 0), (2, 1), (3, 2), (steps, 2)):
            out = np.zeros((bsz, steps, h), dtype)
            h_last = np.empty((bsz, h), dtype)
            saved = np.zeros((bsz, steps, 5 * h), dtype)
            given_xp = xp if block == 0 else np.empty((0, 0, 0), dtype)
            for b0, b1 in ((0, 2), (2, bsz)):
                progress = NO_PROGRESS
                if shared:  # the projection shared (shared_projection): no worker, or one that did every block
                    given_xp, progress = np.empty((steps, b1 - b0, 3 * h), dtype), np.zeros(n_blocks(steps, block), np.int64)
                    if shared == 2:
                        project_shared(x, w, b_in, given_xp, progress, block, b0, b1 - b0, go_backwards)
                gru_forward_slice(given_xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, True, act, ract, reset_after,
                                  go_backwards, True, False, out, h_last, saved, True, b0, b1, NO_POST, progress)
                assert (progress == DONE).all()
            results.append((out, h_last, saved))
        assert np.isfinite(results[0][0]).all() and np.abs(results[0][0]).max() > 0
        for other in results[1:]:
            for expected, got in zip(results[0], other):
                np.testing.assert_array_equal(got, expected)


def test_projection_block_refuses_a_bias_of_another_width(rng):
    """The in-loop projection adds the bias over the buffer's width: a bias of any other length (but
    none) is refused before anything is read."""
    from fastgru._kernels.packed import operand
    from fastgru._kernels.rnn_common import project_block

    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((4, 6))
    wp = operand(w, 3)
    xpc = np.zeros((3, 2, 6))
    project_block(x, wp, np.zeros(0), xpc, 0, 2, 0, 3)  # no bias
    np.testing.assert_allclose(xpc.transpose(1, 0, 2), x @ w, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="bias length"):
        project_block(x, wp, np.zeros(5), xpc, 0, 2, 0, 3)


_NO_BIAS = np.zeros(0, np.float32)  # (the fused gate rows' input bias, when the projection has it)


def test_gate_row_against_numpy_for_every_tail_with_and_without_saving(rng):
    """``fused_gates.gru_gate_row`` (the fused float32 gate math as explicit vectors): each unit against the
    GRU equations in float64 (true tanh and sigmoid; the rational approximation is within 3.4e-7), for
    widths below, at and around the vector width (full vectors then a scalar tail), saving the gates or
    not, updating h in place, and with the saved row over the input row (as the training forward); and
    given the projection without its input bias and the bias (the inference loops): the same values
    bit for bit as given the projection with the bias added."""
    from numba import njit

    from fastgru._kernels.fused_gates import gru_gate_row as gate_row
    from fastgru._kernels.packed import _data

    @njit(cache=False)
    def run(x, rec, b, h, out, saved, save, in_place, b_in):
        hdim = h.shape[0]
        target = h if in_place else out
        has_bin = 1 if b_in.shape[0] > 0 else 0
        gate_row(_data(x), _data(rec), _data(b), _data(b_in) if has_bin else _data(b), _data(h), _data(target),
                 _data(out), _data(saved), hdim, has_bin, save)

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    for hdim in (1, 5, 8, 15, 16, 17, 40, 64):
        x, rec, b = (rng.standard_normal(3 * hdim).astype(np.float32) * 2 for _ in range(3))
        h = rng.standard_normal(hdim).astype(np.float32)
        x64, r64, b64, h64 = (v.astype(np.float64) for v in (x, rec, b, h))
        z = sigmoid(x64[:hdim] + r64[:hdim] + b64[:hdim])
        r = sigmoid(x64[hdim:2 * hdim] + r64[hdim:2 * hdim] + b64[hdim:2 * hdim])
        c = r64[2 * hdim:] + b64[2 * hdim:]
        hh = np.tanh(x64[2 * hdim:] + r * c)
        h_new = z * h64 + (1 - z) * hh
        for save, in_place, saved_over_x in ((0, False, False), (1, False, False), (1, True, True)):
            hx, out = h.copy(), np.full(hdim, np.nan, np.float32)
            saved = np.full(5 * hdim, np.nan, np.float32)
            if saved_over_x:
                saved[:3 * hdim] = x
                run(saved, rec, b, hx, out, saved, save, in_place, _NO_BIAS)
            else:
                run(x.copy(), rec, b, hx, out, saved, save, in_place, _NO_BIAS)
            np.testing.assert_allclose(out, h_new, rtol=2e-6, atol=2e-6)
            np.testing.assert_array_equal(hx, out if in_place else h)
            if save:
                np.testing.assert_allclose(saved, np.concatenate([z, r, hh, c, h64]), rtol=2e-6, atol=2e-6)
            else:
                assert np.isnan(saved).all()
            # the projection without its bias, and the bias: bit for bit the same
            b_in = rng.standard_normal(3 * hdim).astype(np.float32)
            hx2, out2, saved2 = h.copy(), np.full(hdim, np.nan, np.float32), np.full(5 * hdim, np.nan, np.float32)
            run(x - b_in, rec, b, hx2, out2, saved2, save, in_place, b_in)
            hx3, out3, saved3 = h.copy(), np.full(hdim, np.nan, np.float32), np.full(5 * hdim, np.nan, np.float32)
            run((x - b_in) + b_in, rec, b, hx3, out3, saved3, save, in_place, _NO_BIAS)
            for got, expected in ((hx2, hx3), (out2, out3), (saved2, saved3)):
                np.testing.assert_array_equal(got, expected)


def test_rational_sigmoid_is_the_halved_tanh_and_the_gate_row_uses_both_bit_for_bit():
    """float32's sigmoid is tanh(x / 2) / 2 + 1/2 with the halving folded into the rational function's
    coefficients (``activations.sigmoid_rational``, one multiply fewer): the same value bit for bit as
    the halved ``tanh_rational`` for every float32 (all 2^32 were checked once; here every 509th bit
    pattern and the special values; both exactly saturated from their clamps on). The fused gate row's z and r gates and candidate (saved, with a
    zero recurrent term and bias) are the element functions' values bit for bit."""
    from numba import njit

    from fastgru._kernels.activations import FMA_ONLY, sigmoid_rational, tanh_rational
    from fastgru._kernels.fused_gates import gru_gate_row
    from fastgru._kernels.packed import _data

    half = np.float32(0.5)

    @njit(cache=False, fastmath=FMA_ONLY)
    def mismatches(stride):
        bad = 0
        for k in range(0, 1 << 32, stride):
            v = np.array([k], np.uint32).view(np.float32)[0]
            a = sigmoid_rational(v)
            b = half * tanh_rational(half * v) + half
            if a != b and not (a != a and b != b):
                bad += 1
        return bad

    assert mismatches(509) == 0

    @njit(cache=False, fastmath=FMA_ONLY)
    def elementwise(v):
        s, t = np.empty_like(v), np.empty_like(v)
        for i in range(v.shape[0]):
            s[i] = sigmoid_rational(v[i])
            t[i] = tanh_rational(v[i])
        return s, t

    @njit(cache=False)
    def gate_row(x, rec, b, h, out, saved):
        gru_gate_row(_data(x), _data(rec), _data(b), _data(b), _data(h), _data(h), _data(out), _data(saved), h.shape[0],
                     0, 1)

    specials = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, 1e-20, 15.8, 15.82, -15.82, 40.0, -40.0, np.inf, -np.inf],
                        np.float32)
    v = np.concatenate([specials, (np.random.default_rng(3).standard_normal(1018) * 6).astype(np.float32)])
    hdim = v.shape[0]  # 1031: whole vectors, then a tail of scalars on both CPU kinds
    x = np.concatenate([v, v, v]).astype(np.float32)
    zeros = np.zeros(3 * hdim, np.float32)
    saved = np.full(5 * hdim, np.nan, np.float32)
    gate_row(x, zeros, zeros, np.zeros(hdim, np.float32), np.empty(hdim, np.float32), saved)
    s, t = elementwise(v)
    # from the clamp on exactly 1 and 0 (tanh: 1 and -1), as TensorFlow's: 15.82, 40, inf; -15.82, -40, -inf
    assert (s[[7, 9, 11]] == 1.0).all() and (s[[8, 10, 12]] == 0.0).all()
    assert (t[[7, 9, 11]] == 1.0).all() and (t[[8, 10, 12]] == -1.0).all()
    np.testing.assert_array_equal(saved[:hdim], s)
    np.testing.assert_array_equal(saved[hdim:2 * hdim], s)
    np.testing.assert_array_equal(saved[2 * hdim:3 * hdim], t)


def test_grad_row_matches_the_element_formulas_bit_for_bit():
    """``fused_gates.gru_grad_row`` (the BPTT gate gradients of a float32 row as explicit vectors,
    reset_after) against the element loop's formulas evaluated by NumPy in float32, one operation at
    a time in the same order: bit-identical, for widths around the vector width; the gradients also
    overwrite the saved gates (h_prev kept), the state gradient is updated in place."""
    from numba import njit

    from fastgru._kernels.fused_gates import gru_grad_row
    from fastgru._kernels.packed import _data

    @njit(cache=False)
    def run(saved, gout, dh, g, carry):
        gru_grad_row(_data(saved), _data(gout), _data(dh), _data(g), _data(carry), dh.shape[0])

    rng = np.random.default_rng(9)
    one = np.float32(1.0)
    for hdim in (1, 5, 8, 15, 16, 17, 40, 64):
        saved = rng.random(5 * hdim).astype(np.float32)
        saved[3 * hdim:] = rng.standard_normal(2 * hdim).astype(np.float32)  # c, h_prev
        gout, dh = (rng.standard_normal(hdim).astype(np.float32) for _ in range(2))
        z, r, hh, c, hp = (saved[k * hdim:(k + 1) * hdim].copy() for k in range(5))
        gg = dh + gout
        daz = gg * (hp - hh) * (z * (one - z))
        dah = gg * (one - z) * (one - hh * hh)
        dar = dah * c * (r * (one - r))
        g, carry = np.full(3 * hdim, np.nan, np.float32), np.full(hdim, np.nan, np.float32)
        run(saved, gout, dh, g, carry)
        np.testing.assert_array_equal(g, np.concatenate([daz, dar, dah * r]))
        np.testing.assert_array_equal(saved[:4 * hdim], np.concatenate([daz, dar, dah, dah * r]))
        np.testing.assert_array_equal(saved[4 * hdim:], hp)
        np.testing.assert_array_equal(dh, gg * z)
        assert not carry.any()


@pytest.mark.parametrize("n_gates", [3, 4])
def test_training_projection_in_row_blocks_matches_one_product(n_gates):
    """The training projection runs in blocks of rows (each one's bias added while it is in cache): for
    more rows than one block, the result is bit for bit one packed product over all rows plus the
    bias, and the saved columns past the projection are untouched."""
    from fastgru._kernels.packed import pack, packed_matmul_into
    from fastgru._kernels.rnn_common import project_train_slice

    rng = np.random.default_rng(4)
    bsz, steps, d, h = 6, 70, 20, 96  # 420 rows; blocks of 80 (3H) or 64 (4H) rows on AVX-512
    n = n_gates * h
    x = rng.standard_normal((bsz, steps, d)).astype(np.float32)
    w = rng.standard_normal((d, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    saved = np.full((bsz, steps, n + 2 * h), 7.0, np.float32)
    project_train_slice(x, w, b, np.zeros((0, 0, 0), np.float32), 0, saved, 1, bsz)
    whole = np.empty(((bsz - 1) * steps, n), np.float32)
    packed_matmul_into(x[1:].reshape(-1, d), pack(w), whole)
    np.testing.assert_array_equal(saved[1:, :, :n].reshape(-1, n), whole + b)
    assert (saved[0] == 7.0).all() and (saved[:, :, n:] == 7.0).all()
