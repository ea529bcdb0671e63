"""Training through the recurrent steps of a Functional graph that pass states: a recurrent layer's forward with
initial states in and ``[output, *final states]`` out, and its backward from those outputs' gradients to the
input's and the initial states'; a Bidirectional's two directions, their outputs merged."""

from __future__ import annotations

import numpy as np


def _rnn_forward(layer, x, mask, training, states):
    """A recurrent layer's training forward with states in and [output, *final states] out
    (``RecurrentLayer.forward_with_states``)."""
    return layer.forward_with_states(x, mask=mask, training=training, initial_state=states or None)


def _rnn_backward(layer, d_outputs, cache, need_dx):
    """(dx, [d initial states], grads) from the gradients of [output, *final states] (None for zeros)."""
    return layer.backward_with_states(d_outputs, cache, need_dx)


def _bidirectional_forward(layer, x, mask, training, states):
    from ._threads import side_by_side

    fwd, bwd = layer._split_initial_state(states or None)
    (y, cf), (y_rev, cb) = side_by_side(
        lambda: _rnn_forward(layer.forward_layer, x, mask, training, fwd),
        lambda: _rnn_forward(layer.backward_layer, x, mask, training, bwd),
    )
    from .training.regularization import directions_cache

    if not layer.return_state:
        return layer._merge(y, y_rev), directions_cache(layer, cf, cb, [y], [y_rev])
    out = layer._merge(y[0], y_rev[0])  # merge_mode=None: [forward output, backward output], two outputs
    return (out if isinstance(out, list) else [out]) + list(y[1:]) + list(y_rev[1:]), directions_cache(
        layer, cf, cb, list(y), list(y_rev))


def _merge_gradients(layer, d_outputs, y, y_rev):
    """(d forward output, d backward output in input order) from the merged output's gradient, or, with
    merge_mode=None, from the two outputs' own (None for zeros)."""
    if layer.merge_mode is None:
        return tuple(np.zeros_like(y) if d is None else np.asarray(d, y.dtype) for d in d_outputs[:2])
    dy = d_outputs[0]
    if dy is None:
        dy = np.zeros(layer._merge(y, y_rev).shape, y.dtype)
    if layer.merge_mode == "concat":
        h = y.shape[-1]
        return dy[..., :h], dy[..., h:]
    if layer.merge_mode == "sum":
        return dy, dy
    if layer.merge_mode == "ave":
        return dy / dy.dtype.type(2), dy / dy.dtype.type(2)
    aligned = y_rev[:, ::-1] if layer.return_sequences else y_rev
    return dy * aligned, dy * y


def _bidirectional_backward(layer, d_outputs, cache, need_dx):
    from .training.regularization import with_penalty

    cf, cb, y, y_rev = cache
    n_out = 2 if layer.merge_mode is None else 1
    dy_f, dy_b = _merge_gradients(layer, d_outputs, y, y_rev)
    if layer.return_sequences:
        dy_b = dy_b[:, ::-1]
    n = len(layer.forward_layer.state_names)
    n_states = n + len(layer.backward_layer.state_names)
    ds = list(d_outputs[n_out:]) + [None] * (n_states - len(d_outputs[n_out:]))
    pen_f, pen_b = getattr(cache, "activity_grads", ((), ()))  # (the directions' activity penalties, per output)
    if pen_f or pen_b:
        pen_f, pen_b = list(pen_f) or [None] * (1 + n), list(pen_b) or [None] * (n_states - n + 1)
        dy_f, dy_b = with_penalty(dy_f, pen_f[0]), with_penalty(dy_b, pen_b[0])
        ds = [with_penalty(d, p) for d, p in zip(ds, pen_f[1:] + pen_b[1:])]
    if cf is None:  # inference forward (not training, no states): nothing to differentiate
        raise RuntimeError("internal: backward through an inference-mode Bidirectional")
    dx_f, s_f, g_f = _rnn_backward(layer.forward_layer, [np.ascontiguousarray(dy_f)] + ds[:n], cf, need_dx)
    dx_b, s_b, g_b = _rnn_backward(layer.backward_layer, [np.ascontiguousarray(dy_b)] + ds[n:], cb, need_dx)
    dx = dx_f + dx_b if need_dx else None
    return dx, s_f + s_b, (list(g_f) + list(g_b)) if layer.trainable else []
