"""LSTM backpropagation through time (BPTT); the training forward is in :mod:`fastgru._kernels.lstm`.

Shapes: B batch, T steps, D features, H units; gate order i, f, c, o (Keras's layout).

The forward saves, per (b, t), ``saved[b, t]`` = [i | f | g | o | act(c) | c_prev | h_prev] (7H).
The backward walks the steps in reverse processing order, one thread per contiguous slice of batch
rows; per step it does the elementwise gate derivatives and the one sequential product
``[da_i | da_f | da_g | da_o] @ U^T`` (one per gate, each times its mask, with recurrent dropout),
and overwrites columns 0:4H of the row with those pre-activation gradients. After the loop a few
large GEMMs over the chunk's B_c*T rows give dX, dW, dU and the bias sums.

For one unmasked step, given gh = dL/dh (state and output gradients together) and gc = dL/dc
carried from the next step (tc = act(c)):

    da_o = gh tc ract'(o)                 dc = gc + gh o act'(tc)
    da_i = dc g ract'(i)    da_f = dc c_prev ract'(f)    da_g = dc i act'(g)
    dc_prev = dc f          dh_prev = [da_i | da_f | da_g | da_o] U^T    (masks: per gate, times m)

Masked steps (mask[b, t] == 0) keep both states, so their gradients pass through unchanged and
their gate gradients are zero. References: Hochreiter & Schmidhuber 1997 with the forget gate of
Gers et al. 2000; cuDNN's RNN backward for the structure (reserve space, data then weight gradients).
"""

from __future__ import annotations

from numba import njit

from .activations import FAST_SIGMOID, FAST_TANH, derivative_from_output
from .aligned import empty_aligned, zeros_aligned
from .fpmode import flush_denormals, restore_fp_mode
from .fused_gates import lstm_grad_row
from .gradient_products import matmul_tn_into
from .packed import _data, pack, pack_stack, packed_matmul_into
from .rnn_common import column_sums, copy_rows, input_grads_slice, mask_rows, step_output_grad


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_backward_slice(
    saved, ut, rmask, use_rmask, d_out, dh_last, dc_last, mask, use_mask, act, ract, go_backwards,
    return_sequences, zero_output_for_mask, dh0, dc0, b0, b1,
):
    """The reverse time loop for batch rows ``b0:b1``.

    saved (B, T, 7H) from the training forward (columns 0:4H overwritten with the gate gradients);
    ut (4H, H) the transposed recurrent kernel ``U^T`` (C-contiguous); rmask (4, B, H) recurrent
    dropout masks (read when use_rmask); d_out (B, T or 1, H) gradient of the outputs in processing
    order; dh_last, dc_last (B, H) gradients of the final states; mask (B, T) uint8; dh0, dc0 (B, H)
    receive the gradients of the initial states.
    """
    fp_mode = flush_denormals()  # vanishing gradients: no slow subnormal arithmetic (fpmode.py)
    steps = saved.shape[1]
    hdim = dh_last.shape[1]
    nb = b1 - b0
    dt = saved.dtype
    h2 = 2 * hdim
    h3 = 3 * hdim
    h4 = 4 * hdim
    dh = empty_aligned((nb, hdim), dt)
    dc = empty_aligned((nb, hdim), dt)
    carry = zeros_aligned((nb, hdim), dt)   # dL/d(output) carried back through repeated outputs
    gout = empty_aligned((hdim,), dt)
    vt = empty_aligned((hdim,), dt)
    gb = empty_aligned((nb, h4), dt)        # [da_i | da_f | da_g | da_o], the step product's left operand
    g1 = empty_aligned((nb if use_rmask else 0, hdim), dt)
    prod = empty_aligned((nb, hdim), dt)
    # the step products' right operands (U^T, or its gate blocks with recurrent dropout), packed once
    upt = pack(ut[0:0 if use_rmask else h4])
    upt4 = pack_stack(ut.reshape(4, hdim, hdim)[0:4 if use_rmask else 0])
    copy_rows(dh_last, b0, dh, 0, nb)
    copy_rows(dc_last, b0, dc, 0, nb)
    if not return_sequences:
        copy_rows(d_out[:, 0], b0, carry, 0, nb)
    one_pass = act == FAST_TANH and ract == FAST_SIGMOID
    if one_pass and saved.shape[2] < 6 * hdim:
        raise ValueError("lstm_backward_slice: saved rows narrower than 6H")  # lstm_grad_row reads 6H of each
    for i in range(steps - 1, -1, -1):
        t = steps - 1 - i if go_backwards else i
        for bb in range(nb):
            b = b0 + bb
            crow = carry[bb]
            step_output_grad(crow, d_out, b, i, return_sequences, gout)
            srow = saved[b, t]
            grow = gb[bb]
            if use_mask and mask[b, t] == 0:
                # both states pass through unchanged; the output repeats the previous one (or is 0)
                for j in range(hdim):
                    crow[j] = 0.0 if zero_output_for_mask else gout[j]
                for j in range(h4):
                    grow[j] = 0.0
                    srow[j] = 0.0
                continue
            dhrow = dh[bb]
            dcrow = dc[bb]
            if one_pass:
                # all gate gradients of the row as explicit full-width vectors (fused_gates.lstm_grad_row):
                # the general path's formulas below, the same operations in the same order
                lstm_grad_row(_data(srow), _data(gout), _data(dhrow), _data(dcrow), _data(grow), _data(crow), hdim)
                continue
            vo = grow[h3:h4]
            for j in range(hdim):
                crow[j] = 0.0
                gh = dhrow[j] + gout[j]
                vo[j] = gh * srow[h4 + j]
                vt[j] = gh * srow[h3 + j]
                dhrow[j] = 0.0
            derivative_from_output(ract, srow[h3:h4], vo)
            derivative_from_output(act, srow[h4:5 * hdim], vt)
            vi = grow[0:hdim]
            vf = grow[hdim:h2]
            vg = grow[h2:h3]
            for j in range(hdim):
                dct = dcrow[j] + vt[j]
                vi[j] = dct * srow[h2 + j]
                vf[j] = dct * srow[5 * hdim + j]
                vg[j] = dct * srow[j]
                dcrow[j] = dct * srow[hdim + j]
            derivative_from_output(ract, srow[0:hdim], vi)
            derivative_from_output(ract, srow[hdim:h2], vf)
            derivative_from_output(act, srow[h2:h3], vg)
            for j in range(h4):
                srow[j] = grow[j]
        # the sequential product(s): carry the gate gradients to the previous state
        if use_rmask:
            for gi in range(4):
                for bb in range(nb):
                    for j in range(hdim):
                        g1[bb, j] = gb[bb, gi * hdim + j]
                packed_matmul_into(g1, upt4[gi], prod)
                for bb in range(nb):
                    mrow = rmask[gi, b0 + bb]
                    for j in range(hdim):
                        dh[bb, j] += prod[bb, j] * mrow[j]
        else:
            packed_matmul_into(gb, upt, prod)
            for bb in range(nb):
                for j in range(hdim):
                    dh[bb, j] += prod[bb, j]
    copy_rows(dh, 0, dh0, b0, nb)
    copy_rows(dc, 0, dc0, b0, nb)
    restore_fp_mode(fp_mode)


@njit(cache=True, nogil=True, error_model="numpy")
def lstm_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, dx, dw, du, db, b0, b1):
    """Input and weight gradients of rows ``b0:b1`` from their gate gradients (after the loop).

    dx (B, T, D) rows b0:b1 written (an empty (0, 0, D) array skips it); dw (D, 4H), du (H, 4H):
    this chunk's partial sums (written); db (4H,) float64 partial bias sums.
    """
    steps = x.shape[1]
    n = w.shape[1]
    units = n // 4
    rows = (b1 - b0) * steps
    s2 = saved[b0:b1].reshape(rows, saved.shape[2])
    g = s2[:, 0:n]
    hp = s2[:, 6 * units:7 * units]
    input_grads_slice(x, w, g, imask, n_imask, dx, dw, b0, b1)
    if use_rmask:
        hm = empty_aligned((rows, units), x.dtype)
        for gi in range(4):
            lo = gi * units
            mask_rows(hp, rmask[gi, b0:b1], steps, hm)
            matmul_tn_into(hm, g[:, lo:lo + units], du[:, lo:lo + units])
    else:
        matmul_tn_into(hp, g, du)
    column_sums(s2, 0, db)


def lstm_backward_chunk(
    b0, b1, *, saved, ut, rmask, use_rmask, d_out, dh_last, dc_last, mask, use_mask, flags, x, w, imask,
    n_imask, dx, dw, du, db, dh0, dc0,
):
    """Backward of rows ``b0:b1``: the reverse time loop, then the chunk's gradient GEMMs."""
    lstm_backward_slice(
        saved, ut, rmask, use_rmask, d_out, dh_last, dc_last, mask, use_mask, flags.act, flags.ract,
        flags.go_backwards, flags.return_sequences, flags.zero_output_for_mask, dh0, dc0, b0, b1,
    )
    lstm_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, dx, dw, du, db, b0, b1)
