"""A slow, obvious NumPy GRU: the oracle for kernel options, written straight from Keras's equations."""

from __future__ import annotations

import numpy as np

from fastgru import activations


def reference_gru(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, reset_after=True, activation="tanh",
    recurrent_activation="sigmoid", return_sequences=False, go_backwards=False, mask=None,
    zero_output_for_mask=False,
):
    """Return (outputs, h_last) computed one sample, one step at a time in float64."""
    x = np.asarray(x, np.float64)
    bsz, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    W = np.asarray(kernel, np.float64)
    U = np.asarray(recurrent_kernel, np.float64)
    if bias is None:
        b_in = b_rec = np.zeros(3 * units)
    elif reset_after:
        b_in, b_rec = np.asarray(bias[0], np.float64), np.asarray(bias[1], np.float64)
    else:
        b_in, b_rec = np.asarray(bias, np.float64), np.zeros(3 * units)

    def f(name, v):
        return activations.apply(name, np.asarray(v, np.float64))

    H = units
    outs = np.zeros((bsz, steps, H))
    last = np.zeros((bsz, H))
    h_last = np.zeros((bsz, H))
    for b in range(bsz):
        h = np.zeros(H) if h0 is None else np.asarray(h0[b], np.float64).copy()
        prev_out = np.zeros(H)
        order = range(steps - 1, -1, -1) if go_backwards else range(steps)
        for i, t in enumerate(order):
            xt = x[b, t] @ W + b_in
            z = f(recurrent_activation, xt[:H] + h @ U[:, :H] + b_rec[:H])
            r = f(recurrent_activation, xt[H:2 * H] + h @ U[:, H:2 * H] + b_rec[H:2 * H])
            if reset_after:
                hh = f(activation, xt[2 * H:] + r * (h @ U[:, 2 * H:] + b_rec[2 * H:]))
            else:
                hh = f(activation, xt[2 * H:] + (r * h) @ U[:, 2 * H:])
            h_new = z * h + (1 - z) * hh
            if mask is not None and not mask[b, t]:
                out = np.zeros(H) if zero_output_for_mask else prev_out
            else:
                h = h_new
                out = h_new
            outs[b, i] = out
            prev_out = out
        last[b] = prev_out if steps else 0
        h_last[b] = h
    return (outs if return_sequences else last), h_last


def reference_lstm(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, c0=None, activation="tanh",
    recurrent_activation="sigmoid", return_sequences=False, go_backwards=False, mask=None,
    zero_output_for_mask=False, dropout_mask=None, recurrent_dropout_mask=None,
):
    """Return (outputs, h_last, c_last) computed one sample, one step at a time in float64.

    dropout_mask None, (B, D) or (4, B, D); recurrent_dropout_mask None or (4, B, H) (as the ops take them).
    """
    x = np.asarray(x, np.float64)
    bsz, steps, d = x.shape
    H = recurrent_kernel.shape[0]
    W = np.asarray(kernel, np.float64)
    U = np.asarray(recurrent_kernel, np.float64)
    bias = np.zeros(4 * H) if bias is None else np.asarray(bias, np.float64)

    def f(name, v):
        return activations.apply(name, np.asarray(v, np.float64))

    outs = np.zeros((bsz, steps, H))
    last = np.zeros((bsz, H))
    h_last = np.zeros((bsz, H))
    c_last = np.zeros((bsz, H))
    for b in range(bsz):
        h = np.zeros(H) if h0 is None else np.asarray(h0[b], np.float64).copy()
        c = np.zeros(H) if c0 is None else np.asarray(c0[b], np.float64).copy()
        prev_out = np.zeros(H)
        order = range(steps - 1, -1, -1) if go_backwards else range(steps)
        for i, t in enumerate(order):
            a = np.empty(4 * H)
            for g in range(4):
                cols = slice(g * H, (g + 1) * H)
                if dropout_mask is None:
                    xg = x[b, t]
                elif np.ndim(dropout_mask) == 2:
                    xg = x[b, t] * dropout_mask[b]
                else:
                    xg = x[b, t] * dropout_mask[g, b]
                hg = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask[g, b]
                a[cols] = xg @ W[:, cols] + hg @ U[:, cols] + bias[cols]
            ig = f(recurrent_activation, a[:H])
            fg_ = f(recurrent_activation, a[H:2 * H])
            gg = f(activation, a[2 * H:3 * H])
            og = f(recurrent_activation, a[3 * H:])
            c_new = fg_ * c + ig * gg
            h_new = og * f(activation, c_new)
            if mask is not None and not mask[b, t]:
                out = np.zeros(H) if zero_output_for_mask else prev_out
            else:
                h, c = h_new, c_new
                out = h_new
            outs[b, i] = out
            prev_out = out
        last[b] = prev_out if steps else 0
        h_last[b] = h
        c_last[b] = c
    return (outs if return_sequences else last), h_last, c_last


def reference_simple_rnn(
    x, kernel, recurrent_kernel, bias=None, *, h0=None, activation="tanh", return_sequences=False,
    go_backwards=False, mask=None, zero_output_for_mask=False, dropout_mask=None, recurrent_dropout_mask=None,
):
    """Return (outputs, h_last) computed one sample, one step at a time in float64, as Keras 3's
    SimpleRNNCell: h = act((x m_x) W + b + (h_prev m_h) U). dropout_mask None or (B, D);
    recurrent_dropout_mask None or (B, H)."""
    x = np.asarray(x, np.float64)
    bsz, steps, _ = x.shape
    H = recurrent_kernel.shape[0]
    W = np.asarray(kernel, np.float64)
    U = np.asarray(recurrent_kernel, np.float64)
    bias = np.zeros(H) if bias is None else np.asarray(bias, np.float64)
    outs = np.zeros((bsz, steps, H))
    last = np.zeros((bsz, H))
    h_last = np.zeros((bsz, H))
    for b in range(bsz):
        h = np.zeros(H) if h0 is None else np.asarray(h0[b], np.float64).copy()
        prev_out = np.zeros(H)
        order = range(steps - 1, -1, -1) if go_backwards else range(steps)
        for i, t in enumerate(order):
            xt = x[b, t] if dropout_mask is None else x[b, t] * dropout_mask[b]
            hm = h if recurrent_dropout_mask is None else h * recurrent_dropout_mask[b]
            h_new = activations.apply(activation, xt @ W + bias + hm @ U)
            if mask is not None and not mask[b, t]:
                out = np.zeros(H) if zero_output_for_mask else prev_out
            else:
                h = h_new
                out = h_new
            outs[b, i] = out
            prev_out = out
        last[b] = prev_out if steps else 0
        h_last[b] = h
    return (outs if return_sequences else last), h_last
