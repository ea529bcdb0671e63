"""Every array a public entry point hands to a Numba kernel is checked first (Numba does no bounds checking,
so an unchecked shape is a memory-safety bug: a crash, or garbage read past an array's end).

The tests are generated from tables: for each public function of ``fastgru.ops`` and each layer/model entry
point that takes arrays (``initial_state=``, ``mask=``, ``reset_states``, ``set_weights``, ``predict``), every
array argument is made one row short and one column short (and, for 3-D arrays, one step short), and the
call must raise ValueError/TypeError, never crash nor return garbage. The internal ``run_*`` functions guard
the kernels the same way.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fastgru as fg
from fastgru import ops
from fastgru.layers import GRU, LSTM, Bidirectional, Dense, Input, SimpleRNN

B, T, D, H = 3, 4, 5, 2
RNG = np.random.default_rng(7)


def _f32(*shape, ones=False):
    return np.ones(shape, np.float32) if ones else RNG.standard_normal(shape).astype(np.float32)


def _gru_args(reset_after, return_sequences, train=False, backward=False):
    args = {"x": _f32(B, T, D), "kernel": _f32(D, 3 * H), "recurrent_kernel": _f32(H, 3 * H),
            "bias": _f32(2, 3 * H) if reset_after else _f32(3 * H), "h0": _f32(B, H),
            "mask": np.array([[1, 1, 0, 1]] * B, bool)}
    if train or backward:
        args.update(dropout_mask=_f32(3, B, D, ones=True), recurrent_dropout_mask=_f32(3, B, H, ones=True))
    if backward:
        args.update(d_outputs=_f32(B, T, H) if return_sequences else _f32(B, H), d_h_last=_f32(B, H))
    return args


def _lstm_args(return_sequences, train=False, backward=False):
    args = {"x": _f32(B, T, D), "kernel": _f32(D, 4 * H), "recurrent_kernel": _f32(H, 4 * H), "bias": _f32(4 * H),
            "h0": _f32(B, H), "c0": _f32(B, H), "mask": np.array([[1, 0, 1, 1]] * B, bool)}
    if train or backward:
        args.update(dropout_mask=_f32(B, D, ones=True), recurrent_dropout_mask=_f32(4, B, H, ones=True))
    if backward:
        args.update(d_outputs=_f32(B, T, H) if return_sequences else _f32(B, H), d_h_last=_f32(B, H),
                    d_c_last=_f32(B, H))
    return args


def _simple_rnn_args(return_sequences, train=False, backward=False):
    args = {"x": _f32(B, T, D), "kernel": _f32(D, H), "recurrent_kernel": _f32(H, H), "bias": _f32(H),
            "h0": _f32(B, H), "mask": np.array([[1, 0, 1, 1]] * B, bool)}
    if train or backward:
        args.update(dropout_mask=_f32(B, D, ones=True), recurrent_dropout_mask=_f32(B, H, ones=True))
    if backward:
        args.update(d_outputs=_f32(B, T, H) if return_sequences else _f32(B, H), d_h_last=_f32(B, H))
    return args


def _positional(fn, args, **flags):
    args = dict(args)
    pos = [args.pop(k) for k in ("x", "kernel", "recurrent_kernel", "bias")]
    return fn(*pos, **args, **flags)


def _gru_cache_backward(args, return_sequences, reset_after):
    args = dict(args)
    d_out, d_h = args.pop("d_outputs"), args.pop("d_h_last")
    _, _, cache = _positional(ops.gru_forward_train, args, return_sequences=return_sequences, reset_after=reset_after)
    return cache.backward(d_out, d_h)


def _lstm_cache_backward(args, return_sequences):
    args = dict(args)
    d_out, d_h, d_c = args.pop("d_outputs"), args.pop("d_h_last"), args.pop("d_c_last")
    _, _, _, cache = _positional(ops.lstm_forward_train, args, return_sequences=return_sequences)
    return cache.backward(d_out, d_h, d_c)


def _simple_rnn_cache_backward(args, return_sequences):
    args = dict(args)
    d_out, d_h = args.pop("d_outputs"), args.pop("d_h_last")
    _, _, cache = _positional(ops.simple_rnn_forward_train, args, return_sequences=return_sequences)
    return cache.backward(d_out, d_h)


#: (name, make the valid arguments, call) for every public function of fastgru.ops
OPS_TABLE = []
for _rs in (False, True):
    for _ra in (True, False):
        OPS_TABLE += [
            (f"gru_forward[rs={_rs},reset_after={_ra}]", lambda rs=_rs, ra=_ra: _gru_args(ra, rs),
             lambda a, rs=_rs, ra=_ra: _positional(ops.gru_forward, a, return_sequences=rs, reset_after=ra)),
            (f"gru_forward_train[rs={_rs},reset_after={_ra}]", lambda rs=_rs, ra=_ra: _gru_args(ra, rs, train=True),
             lambda a, rs=_rs, ra=_ra: _positional(ops.gru_forward_train, a, return_sequences=rs, reset_after=ra)),
            (f"gru_backward[rs={_rs},reset_after={_ra}]", lambda rs=_rs, ra=_ra: _gru_args(ra, rs, backward=True),
             lambda a, rs=_rs, ra=_ra: _positional(ops.gru_backward, a, return_sequences=rs, reset_after=ra)),
            (f"GRUTrainCache.backward[rs={_rs},reset_after={_ra}]",
             lambda rs=_rs, ra=_ra: _gru_args(ra, rs, backward=True),
             lambda a, rs=_rs, ra=_ra: _gru_cache_backward(a, rs, ra)),
        ]
    OPS_TABLE += [
        (f"lstm_forward[rs={_rs}]", lambda rs=_rs: _lstm_args(rs),
         lambda a, rs=_rs: _positional(ops.lstm_forward, a, return_sequences=rs)),
        (f"lstm_forward_train[rs={_rs}]", lambda rs=_rs: _lstm_args(rs, train=True),
         lambda a, rs=_rs: _positional(ops.lstm_forward_train, a, return_sequences=rs)),
        (f"lstm_backward[rs={_rs}]", lambda rs=_rs: _lstm_args(rs, backward=True),
         lambda a, rs=_rs: _positional(ops.lstm_backward, a, return_sequences=rs)),
        (f"LSTMTrainCache.backward[rs={_rs}]", lambda rs=_rs: _lstm_args(rs, backward=True),
         lambda a, rs=_rs: _lstm_cache_backward(a, rs)),
        (f"simple_rnn_forward[rs={_rs}]", lambda rs=_rs: _simple_rnn_args(rs),
         lambda a, rs=_rs: _positional(ops.simple_rnn_forward, a, return_sequences=rs)),
        (f"simple_rnn_forward_train[rs={_rs}]", lambda rs=_rs: _simple_rnn_args(rs, train=True),
         lambda a, rs=_rs: _positional(ops.simple_rnn_forward_train, a, return_sequences=rs)),
        (f"simple_rnn_backward[rs={_rs}]", lambda rs=_rs: _simple_rnn_args(rs, backward=True),
         lambda a, rs=_rs: _positional(ops.simple_rnn_backward, a, return_sequences=rs)),
        (f"SimpleRNNTrainCache.backward[rs={_rs}]", lambda rs=_rs: _simple_rnn_args(rs, backward=True),
         lambda a, rs=_rs: _simple_rnn_cache_backward(a, rs)),
    ]


def _shortened(a: np.ndarray):
    """``a`` one row short, one column short and (3-D) one step short: (label, array); a 1-D array's row
    and column are its one axis."""
    if a.ndim == 1:
        return [("one row short", a[:-1]), ("one column short", a[:-1])]
    labels = {0: "row", a.ndim - 1: "column"}
    if a.ndim == 3:
        labels[1] = "step"
    return [(f"one {label} short", np.delete(a, -1, axis=axis)) for axis, label in sorted(labels.items())]


def _cases():
    for name, make, _call in OPS_TABLE:
        for arg, value in make().items():
            for label, _ in _shortened(value):
                yield pytest.param(name, arg, label, id=f"{name}-{arg}-{label.replace(' ', '_')}")


def _entry(name):
    return next((make, call) for n, make, call in OPS_TABLE if n == name)


@pytest.mark.parametrize("name", [n for n, _, _ in OPS_TABLE])
def test_the_valid_arguments_of_the_table_run(name):
    make, call = _entry(name)
    result = call(make())
    arrays = [r for r in (result if isinstance(result, tuple) else [result]) if isinstance(r, np.ndarray)]
    assert arrays and all(np.isfinite(r).all() for r in arrays)


@pytest.mark.parametrize("name,arg,label", list(_cases()))
def test_ops_refuse_every_array_one_row_or_column_short(name, arg, label):
    make, call = _entry(name)
    args = make()
    args[arg] = dict(_shortened(args[arg]))[label]
    with pytest.raises((ValueError, TypeError)) as info:
        call(args)
    assert re.search(r"shape|features|must", str(info.value)), str(info.value)


def test_ops_all_holds_the_documented_functions_and_result_types_only():
    public = set(ops.__all__)
    assert public == {"gru_forward", "gru_forward_train", "gru_backward", "GRUGradients", "GRUTrainCache",
                      "lstm_forward", "lstm_forward_train", "lstm_backward", "LSTMGradients", "LSTMTrainCache",
                      "simple_rnn_forward", "simple_rnn_forward_train", "simple_rnn_backward", "SimpleRNNGradients",
                      "SimpleRNNTrainCache", "ctc_loss", "ctc_decode"}
    api = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    for name in public:
        assert f"fastgru.ops.{name}" in api, f"fastgru.ops.{name} is public but not in docs/api.md"


# ---- the internal run_* functions guard the kernels too ---------------------------------------------

def _prepared_gru(reset_after=True):
    a = _gru_args(reset_after, False)
    return a, ops.PreparedGRU(a["kernel"], a["recurrent_kernel"], a["bias"], reset_after)


@pytest.mark.parametrize("what", ["h0 row", "h0 column", "mask row", "mask column", "mask dtype", "x features",
                                  "x dtype", "bias", "recurrent_kernel"])
def test_run_gru_checks_what_it_hands_to_the_kernel(what):
    a, prepared = _prepared_gru()
    x, h0 = a["x"], a["h0"]
    mask = np.ascontiguousarray(a["mask"], np.uint8)
    if what.startswith("h0"):
        h0 = dict(_shortened(h0))["one " + what.split()[1] + " short"]
    elif what.startswith("mask") and what != "mask dtype":
        mask = dict(_shortened(mask))["one " + what.split()[1] + " short"]
    elif what == "mask dtype":
        mask = mask.astype(np.float64)
    elif what == "x features":
        x = x[:, :, :-1].copy()
    elif what == "x dtype":
        x = x.astype(np.float64)
    elif what == "bias":  # a bias one element short: the kernel would read past its end
        prepared.b_in = prepared.b_in[:-1].copy()
    else:
        prepared.u = prepared.u[:-1].copy()
    with pytest.raises(ValueError):
        ops.run_gru(x, prepared, h0, mask, 1, 2, False, False)


@pytest.mark.parametrize("state", [0, 1])
def test_run_lstm_checks_both_states(state):
    a = _lstm_args(False)
    prepared = ops.PreparedLSTM(a["kernel"], a["recurrent_kernel"], a["bias"])
    states = [a["h0"], a["c0"]]
    states[state] = states[state][:, :-1].copy()
    with pytest.raises(ValueError, match="initial state"):
        ops.run_lstm(a["x"], prepared, *states, None, 1, 2, False, False)


# ---- layers and models ---------------------------------------------------------------------------

LAYERS = {
    "GRU": lambda **kw: GRU(H, **kw),
    "GRU(reset_after=False)": lambda **kw: GRU(H, reset_after=False, **kw),
    "LSTM": lambda **kw: LSTM(H, **kw),
    "Bidirectional(GRU)": lambda **kw: Bidirectional(GRU(H, **kw)),
    "Bidirectional(LSTM)": lambda **kw: Bidirectional(LSTM(H, **kw)),
    "SimpleRNN": lambda **kw: SimpleRNN(H, **kw),
    "Bidirectional(SimpleRNN)": lambda **kw: Bidirectional(SimpleRNN(H, **kw)),
}


def _n_states(layer):
    inner = layer.forward_layer if isinstance(layer, Bidirectional) else layer
    n = len(inner.state_names)
    return 2 * n if isinstance(layer, Bidirectional) else n


def _built(kind, **kw):
    layer = LAYERS[kind](**kw)
    layer.build((None, T, D))
    return layer


def _layer_array_cases():
    for kind, make in LAYERS.items():
        n = _n_states(make())
        for label in ("one row short", "one column short"):
            for i in range(n):
                yield pytest.param(kind, "initial_state", i, label, id=f"{kind}-initial_state[{i}]-{label}")
                yield pytest.param(kind, "reset_states", i, label, id=f"{kind}-reset_states[{i}]-{label}")
            yield pytest.param(kind, "mask", 0, label, id=f"{kind}-mask-{label}")
            n_weights = len(make().weight_names) * (2 if kind.startswith("Bi") else 1)
            for i in range(n_weights):
                yield pytest.param(kind, "set_weights", i, label, id=f"{kind}-set_weights[{i}]-{label}")


@pytest.mark.parametrize("kind,entry,index,label", list(_layer_array_cases()))
def test_layer_entry_points_refuse_arrays_one_row_or_column_short(kind, entry, index, label):
    x = _f32(B, T, D)
    stateful = entry == "reset_states"
    layer = _built(kind, stateful=stateful)
    reference = layer(x)  # the same layer called with valid arrays
    if stateful:
        layer.reset_states()
        reference = layer(x)
        layer.reset_states()
    states = [_f32(B, H) for _ in range(_n_states(layer))]
    if entry == "set_weights":
        weights = layer.get_weights()
        before = [w.copy() for w in weights]
        weights[index] = dict(_shortened(weights[index]))[label]
        with pytest.raises((ValueError, TypeError)):
            layer.set_weights(weights)
        assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), before)), "a refused call changed weights"
        return
    if entry == "mask":
        bad = dict(_shortened(np.ones((B, T), bool)))[label]
        with pytest.raises(ValueError, match="mask"):
            layer(x, mask=bad)
        return
    states[index] = dict(_shortened(states[index]))[label]
    if entry == "initial_state":
        with pytest.raises(ValueError, match="state"):
            layer(x, initial_state=states)
        return
    # reset_states: refused at once, or (all states one row short: a valid set for a batch of B - 1)
    # refused by the call; never a call that reads past the end of a state
    try:
        layer.reset_states(states)
    except (ValueError, TypeError):
        assert layer.states is None, "a refused reset_states set some states"
    else:
        with pytest.raises(ValueError, match="batch size|reset_states"):
            layer(x)
    layer.reset_states()
    np.testing.assert_array_equal(layer(x), reference)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_reset_states_with_every_state_one_row_short_is_refused_by_the_call(kind):
    layer = _built(kind, stateful=True)
    layer.reset_states([_f32(B - 1, H) for _ in range(_n_states(layer))])
    with pytest.raises(ValueError, match="batch size"):
        layer(_f32(B, T, D))
    assert np.isfinite(layer(_f32(B - 1, T, D))).all()


@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("label", ["one row short", "one column short"])
def test_model_set_weights_and_predict_refuse_short_arrays(kind, label):
    model = fg.Sequential([Input(shape=(T, D)), LAYERS[kind](), Dense(1)])
    x = _f32(B, T, D)
    reference = model.predict(x)
    weights = model.get_weights()
    for i in range(len(weights)):
        bad = list(weights)
        bad[i] = dict(_shortened(weights[i]))[label]
        with pytest.raises((ValueError, TypeError)):
            model.set_weights(bad)
    if label == "one column short":  # a row (sequence) or a step fewer is a valid input
        with pytest.raises(ValueError, match="features|shape"):
            model.predict(x[:, :, :-1])
    np.testing.assert_array_equal(model.predict(x), reference)
