"""Fused LSTM forward kernels (inference, and training that saves what BPTT needs).

Shapes: B batch, T steps, D features, H units; gate order i, f, c, o (Keras's layout: kernel
(D, 4H), recurrent_kernel (H, 4H), bias (4H,)).

The input projection ``x @ W + b`` (the LSTM's single bias goes in here) is hoisted out of the
recurrence: for training one product over all steps into ``xp`` (B, T, 4H); for inference inside
the time loop, a block of steps at a time (``rnn_common.project_block``, blocks that stay in L2, the
same values bit for bit), as the GRU's. Per step the time loop does one recurrent product ``h @ U`` (or,
with Keras's recurrent dropout, one per gate on the masked state) and one fused pass of the gate
math over the (rows, H) tile:

    a = xp_t + h_prev U              i = ract(a_i)  f = ract(a_f)  g = act(a_c)  o = ract(a_o)
    c = f c_prev + i g               h = o act(c)

Saved buffer for training, ``saved`` (B, T, 7H), indexed like x by *time* t (with go_backwards
processing step i is t = T-1-i): row ``saved[b, t]`` = [i | f | g | o | act(c) | c_prev | h_prev].
The projection may live in its columns 0:4H (pass ``xp=saved``): each row is read before it is
overwritten. BPTT (lstm_bptt.py) overwrites columns 0:4H with the gate gradients.

Batch rows are independent for the whole sequence: the chunk functions give each thread a
contiguous slice of rows running the full time loop (no barrier per step), as for the GRU.
"""

from __future__ import annotations

from numba import njit

from .activations import FAST_SIGMOID, FAST_TANH, FMA_ONLY, activate_inplace
from .aligned import empty_aligned
from .atomics import NO_POST, publish_post
from .fused_gates import lstm_gate_row
from .packed import _data, operand, pack_stack, packed_matmul_into, step_matmul_into, step_plan
from .rnn_common import (
    block_projection_buffers,
    copy_rows,
    empty_array,
    initial_rows,
    masked_step_output,
    project_block,
    project_train_slice,
    projection_block_steps,
)
from .shared_projection import NO_PROGRESS, await_block, check_shared
from .task_records import record_lstm, record_projection

N_SAVED = 7


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FMA_ONLY)
def lstm_forward_slice(
    xp, x, w, b_in, block, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, act, ract, go_backwards, return_sequences,
    zero_output_for_mask, out, h_last, c_last, saved, save, b0, b1, post, progress,
):
    """Run the whole time loop for batch rows ``b0:b1``; ``post``: see ``atomics.publish_post``;
    ``progress`` not empty: the projection shared with a worker (as ``gru.gru_forward_slice``'s).

    The input projection: with ``block`` 0, read from xp (B, T, >=4H) (x, w, b_in unused); with
    ``block`` > 0, computed in the loop ``block`` steps at a time from x (B, T, D), w (D, 4H) and
    b_in (4H,) (xp unused; ``fastgru._kernels.gru.gru_forward_slice`` does the same).
    u (H, 4H) recurrent kernel; u4 (4, H, H) its gate blocks, C-contiguous (read when use_rmask);
    rmask (4, B, H) recurrent dropout masks, scaled by 1/(1-rate), applied to h_prev before each
    gate's product (training only); h0, c0 (B, H), or empty (0 rows) for zero states; mask (B, T)
    uint8 (read when use_mask); out (B, T or 1, H) zero-initialised; h_last, c_last (B, H); saved
    (B, T, 7H) written when save (module docstring; xp may be saved itself).
    """
    # first: the worker's share written down and posted (another thread's chunk starts while this one sets up)
    shared = progress.shape[0] > 0
    if shared:
        check_shared(x, w, b_in, xp, progress, block, b0, b1 - b0)
        record_projection(post, x, w, b_in, xp, progress, block, b0, b1 - b0, go_backwards)
    else:
        record_lstm(post, xp, x, w, b_in, block, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, act, ract,
                    go_backwards, return_sequences, zero_output_for_mask, out, h_last, c_last, saved, save)
    publish_post(post)
    steps = x.shape[1] if block > 0 else xp.shape[1]
    hdim = u.shape[0]
    nb = b1 - b0
    dt = u.dtype
    h2 = 2 * hdim
    h3 = 3 * hdim
    h4 = 4 * hdim
    h = empty_aligned((nb, hdim), dt)
    c = empty_aligned((nb, hdim), dt)
    initial_rows(h0, b0, h, nb)
    initial_rows(c0, b0, c, nb)
    rec = empty_aligned((nb, h4), dt)
    hm = empty_aligned((nb if use_rmask else 0, hdim), dt)
    rec1 = empty_aligned((nb if use_rmask else 0, hdim), dt)
    # Keras's default activations in float32: all of a row's gate math in one pass
    fused = act == FAST_TANH and ract == FAST_SIGMOID
    # the element loops' scratch rows (the fused rows need none but a masked, saved step's: each
    # allocation left out is ~0.15 us of a short sequence's call)
    gates = empty_aligned((0 if fused else h4,), dt)
    n_row = 0 if fused and not (use_mask and save) else hdim
    tc = empty_aligned((n_row,), dt)
    cnew = empty_aligned((n_row,), dt)
    hnew = empty_aligned((n_row,), dt)
    # the step products' right operands, packed once for the whole loop (the unmasked one read in
    # place where that is as fast: packed.operand)
    up = operand(u, nb)
    plan = step_plan(h, up, rec)  # the step product's checks made once: the same buffers every step
    up4 = pack_stack(u4 if use_rmask else u4[0:0])
    if block > 0 and w.shape[1] != 4 * hdim:
        raise ValueError("input kernel width does not match the units")  # the gate loops index 4 * hdim columns
    wp, xpc = block_projection_buffers(w, block if not shared else 0, nb, dt)
    if shared:  # (the whole sequence's projection, blocks claimed as they come: t_lo stays 0)
        wp = operand(w, max(nb, block))
        xpc = xp
    t_lo = 0
    if fused and (rec.shape[1] != h4 or out.shape[2] != hdim or (block == 0 and xp.shape[2] < h4)
                  or (save and saved.shape[2] < 7 * hdim) or (b_in.shape[0] != 0 and b_in.shape[0] != h4)):
        raise ValueError("lstm_forward_slice: row widths do not match the units")  # lstm_gate_row trusts them
    # the fused rows add the bias to the projection they read (the same values, one pass over the
    # projection block fewer); the element loops read it added by project_block
    # (a shared projection is made with its bias: the worker's blocks are read as they are)
    has_bin = 1 if fused and block > 0 and b_in.shape[0] != 0 and not shared else 0
    b_proj = b_in[0:0] if has_bin else b_in
    i_next = 0
    for i in range(steps):
        t = steps - 1 - i if go_backwards else i
        oi = i if return_sequences else 0
        if block > 0 and i == i_next:
            # the next block of steps' projection (in processing order: t falling with go_backwards;
            # a step counter, not i % block: an integer division every step)
            i_end = min(steps, i + block)
            i_next = i_end
            if shared:
                await_block(progress, i // block, x, wp, b_in, xp, b0, nb, block, go_backwards)
            else:
                t_lo = steps - i_end if go_backwards else i
                project_block(x, wp, b_proj, xpc, b0, nb, t_lo, t_lo + i_end - i)
        if use_rmask:
            for gi in range(4):
                for bb in range(nb):
                    mrow = rmask[gi, b0 + bb]
                    for j in range(hdim):
                        hm[bb, j] = h[bb, j] * mrow[j]
                packed_matmul_into(hm, up4[gi], rec1)
                for bb in range(nb):
                    for j in range(hdim):
                        rec[bb, gi * hdim + j] = rec1[bb, j]
        else:
            step_matmul_into(h, up, rec, plan)
        if fused:
            # every row's gate math in one explicit full-width vector pass (fused_gates.lstm_gate_row),
            # saving the gates straight into the saved row when training
            for bb in range(nb):
                b = b0 + bb
                live = not (use_mask and mask[b, t] == 0)
                if not live and not save:
                    masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                    continue
                xptr = _data(xpc[t - t_lo, bb]) if block > 0 else _data(xp[b, t])
                hptr = _data(h[bb])
                cptr = _data(c[bb])
                binp = _data(b_in) if has_bin else cptr
                if live:
                    lstm_gate_row(xptr, _data(rec[bb]), binp, cptr, hptr, cptr, hptr, _data(out[b, oi]),
                                  _data(saved[b, t]) if save else hptr, hdim, has_bin, 1 if save else 0)
                else:  # masked step, saving: the gates are saved (tanh(c) as zeros), the states kept
                    lstm_gate_row(xptr, _data(rec[bb]), binp, cptr, hptr, _data(cnew), _data(hnew), _data(tc),
                                  _data(saved[b, t]), hdim, has_bin, 1)
                    srow = saved[b, t]
                    for j in range(hdim):
                        srow[h4 + j] = 0.0
                    masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
            continue
        for bb in range(nb):
            b = b0 + bb
            xrow = xpc[t - t_lo, bb] if block > 0 else xp[b, t]
            rrow = rec[bb]
            for j in range(h4):
                gates[j] = xrow[j] + rrow[j]
            activate_inplace(ract, gates[0:h2])
            activate_inplace(act, gates[h2:h3])
            activate_inplace(ract, gates[h3:h4])
            crow = c[bb]
            for j in range(hdim):
                tc[j] = gates[hdim + j] * crow[j] + gates[j] * gates[h2 + j]
            if save:
                srow = saved[b, t]
                for j in range(h4):
                    srow[j] = gates[j]
                for j in range(hdim):
                    srow[5 * hdim + j] = crow[j]
                    srow[6 * hdim + j] = h[bb, j]
            if use_mask and mask[b, t] == 0:
                # masked step: both states are kept; the output repeats the previous one (or is zero)
                if save:
                    srow = saved[b, t]
                    for j in range(hdim):
                        srow[h4 + j] = 0.0
                masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                continue
            for j in range(hdim):
                crow[j] = tc[j]
            activate_inplace(act, tc)
            if save:
                srow = saved[b, t]
                for j in range(hdim):
                    srow[h4 + j] = tc[j]
            hrow = h[bb]
            orow = out[b, oi]
            for j in range(hdim):
                hn = gates[h3 + j] * tc[j]
                hrow[j] = hn
                orow[j] = hn
    copy_rows(h, 0, h_last, b0, nb)
    copy_rows(c, 0, c_last, b0, nb)


def lstm_forward_chunk(b0, b1, x, w, b, u, h0, c0, mask, use_mask, flags, out, h_last, c_last, post=NO_POST,
                       shared=None):
    """Inference of batch rows ``b0:b1``, one thread's share: their time loop, projecting their inputs
    (``x @ w + b``) a block of steps at a time as it goes (blocks that fit in L2). Positional
    arguments, one tuple for every chunk (as ``gru_forward_chunk``); ``shared`` as there."""
    act, ract, go_backwards, return_sequences, zero_output_for_mask = flags  # (a LoopFlags or a plain tuple)
    empty3 = empty_array(x.dtype, 3)
    if shared is None:
        xp, progress = empty3, NO_PROGRESS
        block = projection_block_steps(b1 - b0, x.shape[1], 4 * u.shape[0], x.dtype.itemsize)
    else:
        xp, progress, block = shared
    lstm_forward_slice(
        xp, x, w, b, block, u, empty3, empty3, False, h0, c0, mask, use_mask, act, ract, go_backwards,
        return_sequences, zero_output_for_mask, out, h_last, c_last, empty3, False, b0, b1, post, progress,
    )


def lstm_forward_train_chunk(
    b0, b1, *, x, w, b, imask, n_imask, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, flags, out, h_last,
    c_last, saved,
):
    """Training forward of rows ``b0:b1``: the projection (with input dropout masks) into
    ``saved``, then the time loop saving the gates."""
    project_train_slice(x, w, b, imask, n_imask, saved, b0, b1)
    lstm_forward_slice(
        saved, x, w, b, 0, u, u4, rmask, use_rmask, h0, c0, mask, use_mask, flags.act, flags.ract, flags.go_backwards,
        flags.return_sequences, flags.zero_output_for_mask, out, h_last, c_last, saved, True, b0, b1, NO_POST,
        NO_PROGRESS,
    )
