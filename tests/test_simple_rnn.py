"""SimpleRNN kernels against the NumPy reference (every option, both dtypes, 1 and 2 threads, both step
product paths) and BPTT against central finite differences in float64 (dropout masks included), plus the
public functions' and the layer's errors (no Keras needed; live Keras parity: test_simple_rnn_keras.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference import reference_simple_rnn

import fastgru as fg
from fastgru import ops
from fastgru.layers import Bidirectional, Dense, Input, SimpleRNN

# every test runs with the kernels' products through fastgru's loop and through BLAS (conftest)

B, T, D, H = 3, 4, 3, 2


def make_problem(rng, dtype=np.float64, scale=0.6, bsz=B, steps=T, units=H):
    x = rng.standard_normal((bsz, steps, D))
    w = rng.standard_normal((D, units)) * scale
    u = rng.standard_normal((units, units)) * scale
    b = rng.standard_normal(units) * scale
    h0 = rng.standard_normal((bsz, units)) * 0.5
    return [a.astype(dtype) for a in (x, w, u, b, h0)]


def sequence_mask(rng, bsz=B, steps=T):
    mask = rng.random((bsz, steps)) > 0.4
    mask[0, -2:] = False  # trailing masked steps
    mask[1, :2] = False  # leading masked steps
    mask[2, 1] = True
    return mask


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    previous = fg.get_num_threads()
    fg.set_num_threads(request.param)
    yield
    fg.set_num_threads(previous)


OPTIONS = [(False, False, False, False), (True, False, False, False), (True, True, False, False),
           (False, True, True, False), (True, False, True, False), (True, True, True, True), (False, False, True, True)]


@pytest.mark.parametrize("return_sequences,go_backwards,use_mask,zero_output", OPTIONS)
def test_forward_matches_reference(rng, threads, return_sequences, go_backwards, use_mask, zero_output):
    x, w, u, b, h0 = make_problem(rng, bsz=5, steps=6, units=7)
    mask = sequence_mask(rng, 5, 6) if use_mask else None
    opts = dict(return_sequences=return_sequences, go_backwards=go_backwards, mask=mask,
                zero_output_for_mask=zero_output)
    expected = reference_simple_rnn(x, w, u, b, h0=h0, **opts)
    got = ops.simple_rnn_forward(x, w, u, b, h0=h0, **opts)
    assert len(got) == 2
    for g, e in zip(got, expected):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, e, atol=1e-12)
    # the training forward computes the same outputs
    got_train = ops.simple_rnn_forward_train(x, w, u, b, h0=h0, **opts)[:2]
    for g, e in zip(got_train, expected):
        np.testing.assert_allclose(g, e, atol=1e-12)
    # float32: the vectorised tanh approximation stays within float32 rounding
    for fn in (ops.simple_rnn_forward, ops.simple_rnn_forward_train):
        got32 = fn(*(a.astype(np.float32) for a in (x, w, u, b)), h0=h0.astype(np.float32), **opts)
        assert got32[0].dtype == np.float32 and got32[1].dtype == np.float32
        np.testing.assert_allclose(got32[0], expected[0], atol=2e-6)
        np.testing.assert_allclose(got32[1], expected[1], atol=2e-6)


@pytest.mark.parametrize("activation", ["relu", "softsign", "elu", "linear", "sigmoid", "hard_sigmoid", "selu",
                                        "softplus", "swish", "gelu"])
def test_activations_match_reference(rng, activation):
    x, w, u, b, h0 = make_problem(rng)
    expected = reference_simple_rnn(x, w, u, b, h0=h0, activation=activation, return_sequences=True)
    for dtype, atol in ((np.float64, 1e-12), (np.float32, 3e-6)):
        got = ops.simple_rnn_forward(*(a.astype(dtype) for a in (x, w, u, b)), h0=h0.astype(dtype),
                                     activation=activation, return_sequences=True)
        np.testing.assert_allclose(got[0], expected[0], atol=atol)
        np.testing.assert_allclose(got[1], expected[1], atol=atol)


def test_no_bias_empty_batch_and_no_steps(rng):
    x, w, u, _, h0 = make_problem(rng)
    out, h = ops.simple_rnn_forward(x, w, u, None)
    np.testing.assert_allclose(out, reference_simple_rnn(x, w, u, None)[0], atol=1e-12)
    out, h = ops.simple_rnn_forward(x[:0], w, u, None, return_sequences=True)
    assert out.shape == (0, T, H) and h.shape == (0, H)
    out, h = ops.simple_rnn_forward(x[:, :0], w, u, None, h0=h0)
    assert out.shape == (B, H) and not out.any()
    np.testing.assert_array_equal(h, h0)
    grads = ops.simple_rnn_backward(x[:, :0], w, u, None, h0=h0, d_h_last=np.ones((B, H)))
    assert grads.dbias is None and not grads.dkernel.any()
    np.testing.assert_array_equal(grads.dh0, np.ones((B, H)))


def test_every_step_masked_keeps_the_initial_state(rng):
    x, w, u, b, h0 = make_problem(rng)
    mask = np.zeros((B, T), bool)
    out, h = ops.simple_rnn_forward(x, w, u, b, h0=h0, mask=mask, return_sequences=True)
    assert not out.any()
    np.testing.assert_array_equal(h, h0)


def test_training_forward_with_dropout_masks_matches_reference(rng, threads):
    x, w, u, b, h0 = make_problem(rng)
    for dmask, rmask in [
        ((rng.random((B, D)) > 0.3) / 0.7, None),
        ((rng.random((B, D)) > 0.3) / 0.7, (rng.random((B, H)) > 0.4) / 0.6),
        (None, (rng.random((B, H)) > 0.4) / 0.6),
    ]:
        for go_backwards in (False, True):
            opts = dict(return_sequences=True, mask=sequence_mask(rng), go_backwards=go_backwards)
            expected = reference_simple_rnn(x, w, u, b, h0=h0, dropout_mask=dmask, recurrent_dropout_mask=rmask,
                                            **opts)
            got = ops.simple_rnn_forward_train(x, w, u, b, h0=h0, dropout_mask=dmask, recurrent_dropout_mask=rmask,
                                               **opts)
            for g, e in zip(got[:2], expected):
                np.testing.assert_allclose(g, e, atol=1e-12)


# ---- gradients against finite differences (float64) ------------------------------------------
def fd_check(rng, args, tol=1e-6, **opts):
    """ops.simple_rnn_backward against central differences of a random linear functional of the outputs
    and the final state, for every argument (x, kernel, recurrent_kernel, bias, h0)."""
    x, w, u, b, h0 = args
    out, h_last, _ = ops.simple_rnn_forward_train(x, w, u, b, h0=h0, **opts)
    coefs = [rng.standard_normal(a.shape) for a in (out, h_last)]
    grads = ops.simple_rnn_backward(x, w, u, b, d_outputs=coefs[0], d_h_last=coefs[1], h0=h0, **opts)

    def loss(values):
        res = ops.simple_rnn_forward_train(*values[:4], h0=values[4], **opts)[:2]
        return sum(float((r * k).sum()) for r, k in zip(res, coefs))

    analytic = [grads.dx, grads.dkernel, grads.drecurrent_kernel, grads.dbias, grads.dh0]
    eps = 1e-6
    for k, a in enumerate(args):
        assert analytic[k].shape == a.shape
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [v.copy() for v in args]
            plus[k][idx] += eps
            minus = [v.copy() for v in args]
            minus[k][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        scale = max(np.abs(numeric).max(), 1e-12)
        assert np.abs(numeric - analytic[k]).max() / scale < tol, (k, opts)


@pytest.mark.parametrize("return_sequences,go_backwards,use_mask,zero_output", OPTIONS)
def test_gradients_match_finite_differences(rng, return_sequences, go_backwards, use_mask, zero_output):
    args = make_problem(rng, units=3)
    mask = sequence_mask(rng) if use_mask else None
    fd_check(rng, args, return_sequences=return_sequences, go_backwards=go_backwards, mask=mask,
             zero_output_for_mask=zero_output)


@pytest.mark.parametrize("activation", ["relu", "softsign", "elu", "linear", "sigmoid", "hard_sigmoid", "selu",
                                        "softplus"])
def test_gradients_for_activations(rng, activation):
    fd_check(rng, make_problem(rng, units=3), activation=activation, return_sequences=True)


@pytest.mark.parametrize("dropout,recurrent_dropout", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("go_backwards,zero_output", [(False, False), (True, True)])
def test_gradients_with_dropout_masks(rng, dropout, recurrent_dropout, go_backwards, zero_output):
    args = make_problem(rng, units=3)
    dmask = (rng.random((B, D)) > 0.3) / 0.7 if dropout else None
    rmask = (rng.random((B, 3)) > 0.4) / 0.6 if recurrent_dropout else None
    for return_sequences in (False, True):
        fd_check(rng, args, return_sequences=return_sequences, go_backwards=go_backwards, mask=sequence_mask(rng),
                 zero_output_for_mask=zero_output, dropout_mask=dmask, recurrent_dropout_mask=rmask)


def test_gradients_without_bias(rng):
    x, w, u, _, h0 = make_problem(rng)
    grads = ops.simple_rnn_backward(x, w, u, None, d_outputs=np.ones((B, H)), h0=h0)
    assert grads.dbias is None
    with_bias = ops.simple_rnn_backward(x, w, u, np.zeros(H), d_outputs=np.ones((B, H)), h0=h0)
    for a, b_ in zip((grads.dx, grads.dkernel, grads.drecurrent_kernel, grads.dh0),
                     (with_bias.dx, with_bias.dkernel, with_bias.drecurrent_kernel, with_bias.dh0)):
        np.testing.assert_allclose(a, b_, atol=1e-14)


def test_gradients_two_threads_equal_one_thread(rng):
    x, w, u, b, h0 = make_problem(rng, bsz=6)
    d_out = rng.standard_normal((6, T, H))
    rmask = (rng.random((6, H)) > 0.4) / 0.6
    previous = fg.get_num_threads()
    for dtype in (np.float64, np.float32):
        opts = dict(return_sequences=True, mask=sequence_mask(rng, 6, T), recurrent_dropout_mask=rmask.astype(dtype))
        results = []
        try:
            for n in (1, 2):
                fg.set_num_threads(n)
                results.append(ops.simple_rnn_backward(*(a.astype(dtype) for a in (x, w, u, b)),
                                                       d_outputs=d_out.astype(dtype), h0=h0.astype(dtype), **opts))
        finally:
            fg.set_num_threads(previous)
        for a, b_ in zip(*results):
            assert a.dtype == dtype
            np.testing.assert_allclose(a, b_, atol=1e-12 if dtype == np.float64 else 2e-6)


def test_float32_gradients_follow_float64(rng):
    x, w, u, b, h0 = make_problem(rng, bsz=4, steps=5, units=3)
    d_out = rng.standard_normal((4, 5, 3))
    opts = dict(return_sequences=True, mask=sequence_mask(rng, 4, 5))
    g64 = ops.simple_rnn_backward(x, w, u, b, d_outputs=d_out, h0=h0, **opts)
    g32 = ops.simple_rnn_backward(*(a.astype(np.float32) for a in (x, w, u, b)), d_outputs=d_out.astype(np.float32),
                                  h0=h0.astype(np.float32), **opts)
    for a, b_ in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b_, atol=2e-5, rtol=1e-4)


# ---- the public functions' errors -----------------------------------------------------------
def test_bad_arguments_raise_clear_errors(rng):
    x, w, u, b, h0 = make_problem(rng)
    with pytest.raises(ValueError, match="kernel must have shape"):
        ops.simple_rnn_forward(x, w[:2], u, b)
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        ops.simple_rnn_forward(x, w, u[:, :1], b)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        ops.simple_rnn_forward(x, w, u, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="h0 must have shape"):
        ops.simple_rnn_forward(x, w, u, b, h0=h0[:1])
    with pytest.raises(ValueError, match="mask must have shape"):
        ops.simple_rnn_forward(x, w, u, b, mask=np.ones((B, T + 1), bool))
    with pytest.raises(ValueError, match="NaN"):
        ops.simple_rnn_forward(x, w, np.full_like(u, np.nan), b)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.simple_rnn_forward(x.astype(int), w, u, b)
    with pytest.raises(ValueError, match="rank 3"):
        ops.simple_rnn_forward(x[0], w, u, b)
    with pytest.raises(TypeError, match="return_sequences must be True or False"):
        ops.simple_rnn_forward(x, w, u, b, return_sequences="yes")
    with pytest.raises(ValueError, match=r"dropout_mask must have shape \(3, 3\)"):
        ops.simple_rnn_forward_train(x, w, u, b, dropout_mask=np.ones((1, B, D)))
    with pytest.raises(ValueError, match=r"recurrent_dropout_mask must have shape \(3, 2\)"):
        ops.simple_rnn_forward_train(x, w, u, b, recurrent_dropout_mask=np.ones((1, B, H)))
    with pytest.raises(ValueError, match="NaN"):
        ops.simple_rnn_forward_train(x, w, u, b, dropout_mask=np.full((B, D), np.inf))
    with pytest.raises(fg.UnsupportedKerasFeature, match="SimpleRNN activation='swish'"):
        ops.simple_rnn_forward_train(x, w, u, b, activation="swish")
    with pytest.raises(fg.UnsupportedKerasFeature, match="no_such_activation"):
        ops.simple_rnn_forward(x, w, u, b, activation="no_such_activation")
    _, _, cache = ops.simple_rnn_forward_train(x, w, u, b)
    with pytest.raises(ValueError, match="d_outputs must have shape"):
        cache.backward(np.ones((B, T, H)))
    with pytest.raises(ValueError, match="d_h_last must have shape"):
        cache.backward(None, np.ones((B, H + 1)))
    cache.backward()
    with pytest.raises(RuntimeError, match="already used"):
        cache.backward()


def test_internal_run_functions_check_what_they_hand_to_the_kernels(rng):
    x, w, u, b, h0 = (a.astype(np.float32) for a in make_problem(rng))
    prepared = ops.PreparedSimpleRNN(w, u, b)
    with pytest.raises(ValueError, match="initial state"):
        ops.run_simple_rnn(x, prepared, h0[:, :1].copy(), None, 1, False, False)
    with pytest.raises(ValueError, match="mask"):
        ops.run_simple_rnn(x, prepared, None, np.ones((B, T - 1), np.uint8), 1, False, False)
    with pytest.raises(ValueError, match="x must be"):
        ops.run_simple_rnn(x.astype(np.int32), prepared, None, None, 1, False, False)
    with pytest.raises(ValueError, match="kernel must be a C-contiguous float64"):
        ops.run_simple_rnn(x.astype(np.float64), prepared, None, None, 1, False, False)
    with pytest.raises(ValueError, match="kernel"):
        ops.run_simple_rnn(x[:, :, :2].copy(), prepared, None, None, 1, False, False)
    bad = ops.PreparedSimpleRNN(w, u, b[:1].copy())
    with pytest.raises(ValueError, match="bias"):
        ops.run_simple_rnn(x, bad, None, None, 1, False, False)
    with pytest.raises(ValueError, match="recurrent dropout mask"):
        ops.run_simple_rnn_train(x, prepared, None, None, 1, False, False, False, None, np.ones((B, H + 1), np.float32))
    with pytest.raises(ValueError, match="dropout mask"):
        ops.run_simple_rnn_train(x, prepared, None, None, 1, False, False, False, np.ones((1, B, D), np.float32))
    _, _, saved = ops.run_simple_rnn_train(x, prepared, None, None, 1, True, False)
    with pytest.raises(ValueError, match="saved"):
        ops.run_simple_rnn_backward(x, prepared, saved[:, :, :H].copy(), None, 1, True, False, False, None)


# ---- the layer: options and errors -------------------------------------------------------------
@pytest.mark.parametrize("kwargs,message", [
    (dict(units=0), "units"),
    (dict(units=2.5), "units"),
    (dict(units=True), "units"),
    (dict(units=3, dropout=1.5), "dropout"),
    (dict(units=3, recurrent_dropout=-0.1), "recurrent_dropout"),
    (dict(units=3, recurrent_activation="sigmoid"), "recurrent_activation"),
    (dict(units=3, reset_after=True), "reset_after"),
    (dict(units=3, dtype="int32"), "dtype"),
])
def test_layer_bad_options(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        SimpleRNN(**kwargs)
    with pytest.raises(fg.UnsupportedKerasFeature, match="no_such_activation"):
        SimpleRNN(3, activation="no_such_activation")


def test_layer_bad_inputs(rng):
    layer = SimpleRNN(H, return_state=True)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    layer(x)
    with pytest.raises(ValueError, match="rank 3"):
        layer(x[0])
    with pytest.raises(ValueError, match="expects 3 features"):
        layer(x[:, :, :2])
    with pytest.raises(TypeError, match="numeric"):
        layer(x.astype(str))
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(x, mask=np.ones((B, T + 1), bool))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        layer(x, mask=np.full((B, T), 2))
    with pytest.raises(ValueError, match="initial state 'h' must have shape"):
        layer(x, initial_state=[np.zeros((B, H + 1), np.float32)])
    with pytest.raises(ValueError, match="has 1 state"):
        layer(x, initial_state=[np.zeros((B, H), np.float32)] * 2)
    with pytest.raises(ValueError, match="return_state=True"):
        layer.forward(x)
    swish = SimpleRNN(H, activation="swish")
    swish(x)  # inference is fine
    with pytest.raises(fg.UnsupportedKerasFeature, match="SimpleRNN activation='swish'"):
        swish.forward(x)
    built = SimpleRNN(H)
    built.build((None, T, D))
    with pytest.raises(ValueError, match="expects 3 weights"):
        built.set_weights(built.get_weights()[:2])
    with pytest.raises(ValueError, match=r"weight 'recurrent_kernel': expected shape \(2, 2\)"):
        built.set_weights([built.get_weights()[0], np.zeros((H, 3 * H)), built.get_weights()[2]])


def test_layer_weights_config_and_dtypes(rng):
    layer = SimpleRNN(5, use_bias=True)
    layer.build((None, T, D))
    assert [w.shape for w in layer.get_weights()] == [(D, 5), (5, 5), (5,)]
    assert not layer.get_weights()[2].any()  # bias zeros
    u = layer.get_weights()[1]
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-5)  # orthogonal recurrent kernel
    nobias = SimpleRNN(5, use_bias=False)
    nobias.build((None, T, D))
    assert len(nobias.get_weights()) == 2
    config = layer.get_config()
    assert "recurrent_activation" not in config and config["units"] == 5 and config["activation"] == "tanh"
    again = SimpleRNN.from_config(config)
    assert again.get_config() == config
    x = rng.standard_normal((B, T, D))
    assert layer(x).dtype == np.float64 and layer(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(layer(x), layer(x.astype(np.float32)), atol=2e-6)
    assert layer.compute_output_shape((None, T, D)) == (None, 5)
    assert SimpleRNN(5, return_sequences=True, return_state=True).compute_output_shape((None, T, D)) == \
        [(None, T, 5), (None, 5)]


def test_layer_training_forward_backward_with_dropout_matches_reference(rng):
    """The layer's dropout masks are Keras's (one (B, D) input mask, one (B, H) recurrent mask): its
    training outputs equal the reference with the masks it drew, and its gradients match finite
    differences with those masks."""
    fg.set_random_seed(5)
    layer = SimpleRNN(3, dropout=0.3, recurrent_dropout=0.4, return_sequences=True, dtype="float64")
    x = rng.standard_normal((B, T, D))
    layer.build((None, T, D))
    layer.set_weights([rng.standard_normal(w.shape) * 0.6 for w in layer.get_weights()])
    y, cache = layer.forward(x, mask=sequence_mask(rng))
    mask, dmask, rmask = cache.mask, cache.input_masks, cache.recurrent_masks
    assert dmask.shape == (B, D) and rmask.shape == (B, 3)
    assert set(np.unique(dmask)) <= {0.0, 1 / 0.7} and set(np.unique(rmask)) <= {0.0, 1 / 0.6}
    w, u, b = layer.get_weights()
    expected = reference_simple_rnn(x, w, u, b, return_sequences=True, mask=mask.astype(bool), dropout_mask=dmask,
                                    recurrent_dropout_mask=rmask)[0]
    np.testing.assert_allclose(y, expected, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(dy, cache)
    want = ops.simple_rnn_backward(x, w, u, b, d_outputs=dy, return_sequences=True, mask=mask.astype(bool),
                                   dropout_mask=dmask, recurrent_dropout_mask=rmask)
    for got, ref in zip([dx] + grads, [want.dx, want.dkernel, want.drecurrent_kernel, want.dbias]):
        np.testing.assert_allclose(got, ref, atol=1e-12)
    # only dropout: one (B, D) mask and no recurrent mask
    only = SimpleRNN(3, dropout=0.5)
    only.build((None, T, D))
    _, cache = only.forward(x.astype(np.float32))
    assert cache.input_masks.shape == (B, D) and cache.recurrent_masks is None


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_simple_rnn_matches_two_reference_directions(rng, merge_mode):
    x = rng.standard_normal((B, T, D))
    mask = sequence_mask(rng)
    layer = Bidirectional(SimpleRNN(H, return_sequences=True), merge_mode=merge_mode, dtype="float64")
    layer.build((None, T, D))
    layer.set_weights([rng.standard_normal(w.shape) * 0.6 for w in layer.get_weights()])
    wf, wb = layer.get_weights()[:3], layer.get_weights()[3:]
    fwd = reference_simple_rnn(x, *wf, return_sequences=True, mask=mask, zero_output_for_mask=True)[0]
    bwd = reference_simple_rnn(x, *wb, return_sequences=True, mask=mask, zero_output_for_mask=True,
                               go_backwards=True)[0][:, ::-1]
    expected = {"concat": np.concatenate([fwd, bwd], -1), "sum": fwd + bwd, "mul": fwd * bwd,
                "ave": (fwd + bwd) / 2, None: [fwd, bwd]}[merge_mode]
    got = layer(x, mask=mask)
    for g, e in zip(got if merge_mode is None else [got], expected if merge_mode is None else [expected]):
        np.testing.assert_allclose(g, e, atol=1e-12)
    assert layer.get_config()["layer"]["class_name"] == "SimpleRNN"
    assert type(Bidirectional.from_config(layer.get_config()).forward_layer) is SimpleRNN


def test_model_train_steps_lower_the_loss_and_are_reproducible(rng):
    x = rng.standard_normal((16, T, D)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.float32)

    def model():
        fg.set_random_seed(3)
        m = fg.Sequential([Input((T, D)), Bidirectional(SimpleRNN(6, dropout=0.2, recurrent_dropout=0.2,
                                                                  return_sequences=True)),
                           SimpleRNN(4, dropout=0.1), Dense(1, activation="sigmoid")])
        m.compile(optimizer=fg.optimizers.Adam(0.02), loss="binary_crossentropy")
        return m

    first, second = model(), model()
    losses = [first.train_on_batch(x, y) for _ in range(25)]
    assert losses == [second.train_on_batch(x, y) for _ in range(25)]
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_every_option_combination_runs_in_a_model(rng):
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    for rs, gb, bias in itertools.product((False, True), repeat=3):
        m = fg.Sequential([Input((T, D)), SimpleRNN(H, return_sequences=rs, go_backwards=gb, use_bias=bias)])
        w = m.get_weights()
        want = reference_simple_rnn(x, *w[:2], w[2] if bias else None, return_sequences=rs, go_backwards=gb)[0]
        np.testing.assert_allclose(m.predict(x), want, atol=2e-6)


def test_pickle_config_round_trip_and_summary(rng):
    import pickle

    model = fg.Sequential([Input((T, D)), Bidirectional(SimpleRNN(4, return_sequences=True), merge_mode="ave"),
                           SimpleRNN(3, activation="relu", go_backwards=True), Dense(2)])
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    rebuilt = fg.Sequential.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    assert [type(l).__name__ for l in rebuilt.layers] == ["Bidirectional", "SimpleRNN", "Dense"]
    np.testing.assert_array_equal(rebuilt.predict(x), model.predict(x))
    assert model.count_params() == 2 * (D * 4 + 16 + 4) + (4 * 3 + 9 + 3) + (3 * 2 + 2)  # "ave": 4 features
