"""Functional graphs built the same way with fastgru and Keras (``mod`` is ``fastgru`` or ``keras``):
each builder returns (inputs, outputs); ``data`` makes inputs and targets for them. Shared by
tests/test_functional*.py and tests/fixtures/make_functional_fixtures.py."""

from __future__ import annotations

import numpy as np

T, D, S = 6, 3, 5  # steps, features, static features


def two_inputs(mod):
    L = mod.layers
    seq = mod.Input(shape=(None, D), name="seq")
    static = mod.Input(shape=(S,), name="static")
    h = L.GRU(4, name="enc")(seq)
    z = L.Concatenate(name="cat")([h, L.Dense(3, activation="relu", name="side")(static)])
    out = L.Dense(1, activation="sigmoid", name="p")(z)
    return [seq, static], out


def pooled_bigru(mod):
    L = mod.layers
    x = mod.Input(shape=(T, D), name="x")
    m = L.Masking(name="mask")(x)
    h = L.Bidirectional(L.GRU(4, return_sequences=True), name="bi")(m)
    a = L.GlobalMaxPooling1D(name="gmax")(h)
    b = L.GlobalAveragePooling1D(name="gavg")(h)
    z = L.Concatenate(name="cat")([a, b])
    return x, L.Dense(2, activation="softmax", name="out")(z)


def residual(mod):
    L = mod.layers
    x = mod.Input(shape=(T, D), name="x")
    p = L.Dense(5, name="proj")(x)
    h = L.GRU(5, return_sequences=True, name="gru")(p)
    r = L.Add(name="res")([p, h])
    h2 = L.LSTM(4, name="lstm")(r)
    return x, L.Dense(1, name="out")(h2)


def siamese(mod):
    L = mod.layers
    a = mod.Input(shape=(T, D), name="left")
    b = mod.Input(shape=(T, D), name="right")
    enc = L.GRU(4, name="shared")
    ea, eb = enc(a), enc(b)
    diff = L.Subtract(name="diff")([ea, eb])
    prod = L.Multiply(name="prod")([ea, eb])
    cos = L.Dot(axes=1, normalize=True, name="cos")([ea, eb])
    z = L.Concatenate(name="cat")([diff, prod, cos])
    return [a, b], L.Dense(1, activation="sigmoid", name="same")(z)


def seq2seq_gru(mod):
    L = mod.layers
    enc_in = mod.Input(shape=(None, D), name="enc_in")
    dec_in = mod.Input(shape=(None, D + 1), name="dec_in")
    _, h = L.GRU(5, return_state=True, name="encoder")(enc_in)
    dec = L.GRU(5, return_sequences=True, name="decoder")(dec_in, initial_state=[h])
    return [enc_in, dec_in], L.Dense(D + 1, activation="softmax", name="next")(dec)


def seq2seq_lstm(mod):
    L = mod.layers
    enc_in = mod.Input(shape=(None, D), name="enc_in")
    dec_in = mod.Input(shape=(None, D + 1), name="dec_in")
    _, h, c = L.LSTM(5, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(5, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    return [enc_in, dec_in], L.Dense(D + 1, activation="softmax", name="next")(dec)


def two_outputs(mod):
    L = mod.layers
    x = mod.Input(shape=(T, D), name="x")
    h = L.GRU(4, return_sequences=True, name="gru")(x)
    last = L.GRU(3, name="last")(h)
    cls = L.Dense(1, activation="sigmoid", name="cls")(last)
    reg = L.Dense(2, name="reg")(L.GlobalAveragePooling1D(name="pool")(h))
    return x, [cls, reg]


def masked_merges(mod):
    L = mod.layers
    tok = mod.Input(shape=(T,), name="tok")
    e = L.Embedding(9, 4, mask_zero=True, name="emb")(tok)
    a = L.GRU(4, return_sequences=True, name="ga")(e)
    b = L.LSTM(4, return_sequences=True, name="lb")(e)
    s = L.Add(name="add")([a, b])
    mx = L.Maximum(name="max")([a, b])
    mn = L.Minimum(name="min")([a, b])
    mu = L.Multiply(name="mul")([a, b])
    av = L.Average(name="avg")([a, b])
    z = L.Concatenate(name="cat")([s, mx, mn, mu, av])
    h = L.GRU(3, name="top")(z)
    return tok, L.Dense(1, name="out")(h)


def attention_dot(mod):
    L = mod.layers
    q = mod.Input(shape=(T, D), name="q")
    v = mod.Input(shape=(T + 1, D), name="v")
    hq = L.GRU(4, return_sequences=True, name="gq")(q)
    hv = L.GRU(4, return_sequences=True, name="gv")(v)
    scores = L.Dot(axes=(2, 2), name="scores")([hq, hv])
    weights = L.Softmax(name="attn")(scores)
    ctx = L.Dot(axes=(2, 1), name="ctx")([weights, hv])
    z = L.Concatenate(name="cat")([ctx, hq])
    return [q, v], L.Dense(2, name="out")(L.GlobalAveragePooling1D(name="pool")(z))


def nested(mod):
    L = mod.layers
    inner_in = mod.Input(shape=(T, D), name="inner_in")
    inner_out = L.GRU(4, return_sequences=True, name="inner_gru")(inner_in)
    inner = mod.Model(inner_in, inner_out, name="inner")
    seq = mod.Sequential([L.GRU(3, name="seq_gru"), L.Dense(2, name="seq_dense")], name="head")
    x = mod.Input(shape=(T, D), name="x")
    return x, seq(inner(x))


def bidirectional_states(mod):
    L = mod.layers
    enc_in = mod.Input(shape=(T, D), name="enc_in")
    dec_in = mod.Input(shape=(T, D), name="dec_in")
    out, fh, bh = L.Bidirectional(L.GRU(3, return_state=True), name="bienc")(enc_in)
    state = L.Concatenate(name="state")([fh, bh])
    dec = L.GRU(6, name="dec")(dec_in, initial_state=[state])
    return [enc_in, dec_in], L.Dense(1, name="out")(L.Concatenate(name="cat")([dec, out]))


def bidirectional_initial_state(mod):
    L = mod.layers
    enc_in = mod.Input(shape=(T, D), name="enc_in")
    dec_in = mod.Input(shape=(T - 1, D), name="dec_in")
    _, h, c = L.LSTM(3, return_state=True, name="enc")(enc_in)
    seq = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum", name="bidec")(
        dec_in, initial_state=[h, c, c, h])
    return [enc_in, dec_in], L.Dense(1, name="out")(L.GlobalMaxPooling1D(name="pool")(seq))


def explicit_mask(mod):
    L = mod.layers
    x = mod.Input(shape=(T, D), name="x")
    m = mod.Input(shape=(T,), dtype="bool", name="m")
    h = L.GRU(4, return_sequences=True, name="g")(x, mask=m)
    return [x, m], L.Dense(1, name="out")(L.LSTM(2, name="l")(h))


BUILDERS = {f.__name__: f for f in (explicit_mask, two_inputs, pooled_bigru, residual, siamese, seq2seq_gru, seq2seq_lstm,
                                     two_outputs, masked_merges, attention_dot, nested, bidirectional_states,
                                     bidirectional_initial_state)}


def make(mod, name):
    inputs, outputs = BUILDERS[name](mod)
    return mod.Model(inputs, outputs, name=name)


def data(name, n=7, seed=0):
    """(inputs list, targets list) for the builder ``name``."""
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.normal(size=shape).astype("float32")  # noqa: E731
    if name == "two_inputs":
        return [f(n, T, D), f(n, S)], [rng.integers(0, 2, (n, 1)).astype("float32")]
    if name == "pooled_bigru":
        x = f(n, T, D)
        x[1, 4:] = 0.0
        x[3, 2:] = 0.0
        return [x], [np.eye(2, dtype="float32")[rng.integers(0, 2, n)]]
    if name in ("residual", "nested"):
        return [f(n, T, D)], [f(n, 1 if name == "residual" else 2)]
    if name == "siamese":
        return [f(n, T, D), f(n, T, D)], [rng.integers(0, 2, (n, 1)).astype("float32")]
    if name.startswith("seq2seq"):
        return [f(n, T, D), f(n, T - 1, D + 1)], [np.eye(D + 1, dtype="float32")[rng.integers(0, D + 1, (n, T - 1))]]
    if name == "two_outputs":
        return [f(n, T, D)], [rng.integers(0, 2, (n, 1)).astype("float32"), f(n, 2)]
    if name == "masked_merges":
        tok = rng.integers(1, 9, (n, T))
        tok[0, 3:] = 0
        tok[2, 1:] = 0
        tok[-1, 5:] = 0
        return [tok], [f(n, 1)]
    if name == "attention_dot":
        return [f(n, T, D), f(n, T + 1, D)], [f(n, 2)]
    if name == "bidirectional_states":
        return [f(n, T, D), f(n, T, D)], [f(n, 1)]
    if name == "explicit_mask":
        return [f(n, T, D), rng.random((n, T)) > 0.3], [f(n, 1)]
    if name == "bidirectional_initial_state":
        return [f(n, T, D), f(n, T - 1, D)], [f(n, 1)]
    raise KeyError(name)
