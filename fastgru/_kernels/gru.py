"""Fused GRU forward kernels (inference, and training that saves what BPTT needs).

Shapes: B batch, T steps, D features, H units; gate order z, r, h (Keras's layout).

The input projection ``x @ W + b_input`` is hoisted out of the recurrence: for training, one product
over all steps (``xp`` (B, T, 3H), ``rnn_common.project_train_slice``);
for inference, inside the time loop a block of steps at a time (``rnn_common.project_block``, blocks
that stay in L2, the same values bit for bit), so that the (B, T, 3H) projection is never written to
and read back from memory. The time loop then does, per step, one recurrent product and one fused
pass of gate math over the (rows, H) tile, writing into preallocated buffers only.

Batch rows are independent for the whole sequence, so each thread takes a contiguous slice of rows
(:func:`gru_forward_chunk`, called side by side by ``fastgru._threads.run_chunks``) and runs its
projection and its full time loop (no barrier per step). The ``*_chunk`` drivers here and in the other
kernel modules are plain Python calling two or three compiled kernels: compiling a driver too would
make Numba link every callee's code into the driver's module and optimise all of it again (about 2 s
more of first-use compile each, for a few microseconds of call overhead saved).

Saved buffer for training, ``saved`` (B, T, 5H), indexed like x by *time* t (not processing step;
with go_backwards step i reads and saves t = T-1-i), row ``saved[b, t]`` = [z | r | hh | c | h_prev]
with hh the candidate after activation and c the recurrent candidate term (reset_after:
``h_prev @ U_h + b_rh``, before the product with r; reset_before: ``r * h_prev``). The input
projection may live in columns 0:3H of the same buffer (pass ``xp=saved``): each row is read before
it is overwritten. The BPTT kernels (gru_bptt.py) then overwrite columns 0:4H with the gate
gradients, so one (B, T, 5H) buffer serves the projection, the saved gates and the gate gradients.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .activations import FAST_SIGMOID, FAST_TANH, FMA_ONLY, ONE_F32, activate_inplace
from .aligned import empty_aligned
from .atomics import NO_POST, publish_post
from .fused_gates import gru_gate_row
from .packed import _data, operand, step_matmul_into, step_plan
from .rnn_common import (
    block_projection_buffers,
    copy_rows,
    empty_array,
    initial_rows,
    masked_step_output,
    project_block,
    projection_block_steps,
)
from .shared_projection import NO_PROGRESS, await_block, check_shared
from .task_records import record_gru, record_projection

S_Z, S_R, S_HH, S_RH, S_HPREV = 0, 1, 2, 3, 4
N_SAVED = 5


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FMA_ONLY)
def gru_forward_slice(
    xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, use_mask, act, ract, reset_after, go_backwards,
    return_sequences, zero_output_for_mask, out, h_last, saved, save, b0, b1, post, progress,
):
    """Run the whole time loop for batch rows ``b0:b1``; ``post``: see ``atomics.publish_post``.

    The input projection: with ``block`` 0, read from xp (B, T, 3H) (x, w, b_in unused); with
    ``block`` > 0, computed in the loop, ``block`` steps at a time (:func:`project_block`:
    ``x (B, T, D) @ w (D, 3H) + b_in (3H,)``, the same values), into a (block, rows, 3H) buffer that is
    still in cache when the gates read it (xp unused); with ``progress`` not empty (one flag per
    block), the projection is shared with a worker thread (``shared_projection``: xp (T, rows, 3H)
    holds it, the post hands the worker its task, and each block is projected by whichever thread
    claims it first).
    u: reset_after (H, 3H) full recurrent kernel, else (H, 2H) its z|r block;
    u_h: reset_before (H, H) candidate block (unused otherwise); b_rec (3H,) recurrent bias
    (zeros when absent); h0 (B, H), or empty (0 rows) for a zero state; mask (B, T) uint8 (read
    when use_mask); out (B, T or 1, H), zero-initialised; h_last (B, H); saved (B, T, 5H) written
    when save (see the module docstring; xp may be saved itself).
    """
    # first: the worker's share written down and posted (another thread's chunk starts while this one sets up)
    shared = progress.shape[0] > 0
    if shared:
        check_shared(x, w, b_in, xp, progress, block, b0, b1 - b0)
        record_projection(post, x, w, b_in, xp, progress, block, b0, b1 - b0, go_backwards)
    else:
        record_gru(post, xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, use_mask, act, ract, reset_after,
                   go_backwards, return_sequences, zero_output_for_mask, out, h_last, saved, save)
    publish_post(post)
    steps = x.shape[1] if block > 0 else xp.shape[1]
    hdim = u.shape[0]
    nb = b1 - b0
    dt = u.dtype
    h = empty_aligned((nb, hdim), dt)
    initial_rows(h0, b0, h, nb)
    rec = empty_aligned((nb, u.shape[1]), dt)
    # Keras's defaults in float32 (reset_after, tanh, sigmoid): all of a row's gate math in one pass
    fused = reset_after and act == FAST_TANH and ract == FAST_SIGMOID
    # the element loops' scratch rows (the fused rows need none but a masked, saved step's state row:
    # each allocation left out is ~0.15 us of a short sequence's call)
    n_scratch = 0 if fused else hdim
    zg = empty_aligned((n_scratch,), dt)
    rg = empty_aligned((nb, n_scratch), dt)
    hh = empty_aligned((n_scratch,), dt)
    rh = empty_aligned((nb, n_scratch), dt)
    rech = empty_aligned((nb if not fused or (use_mask and save) else 0, hdim), dt)
    h2 = 2 * hdim
    # the step products' right operands: packed once for the whole loop, or read in place
    # (packed.operand); reset_after has no candidate block (u_h empty: its empty operand, unread)
    up = operand(u, nb)
    up_h = operand(u_h, nb) if not reset_after else (np.empty(0, dt), 0, 0, 0, 0)
    # the step product's checks made once (step_plan): the loop's h, up and rec stay the same arrays
    plan = step_plan(h, up, rec)
    plan_h = step_plan(rh, up_h, rech) if not reset_after else plan
    if block > 0 and w.shape[1] != 3 * hdim:
        raise ValueError("input kernel width does not match the units")  # the gate loops index 3 * hdim columns
    wp, xpc = block_projection_buffers(w, block if not shared else 0, nb, dt)
    if shared:  # (the whole sequence's projection, blocks claimed as they come: t_lo stays 0)
        wp = operand(w, max(nb, block))
        xpc = xp
    t_lo = 0
    if fused and (u.shape[1] != 3 * hdim or b_rec.shape[0] != 3 * hdim or out.shape[2] != hdim
                  or (block == 0 and xp.shape[2] < 3 * hdim) or (save and saved.shape[2] < 5 * hdim)
                  or (b_in.shape[0] != 0 and b_in.shape[0] != 3 * hdim)):
        raise ValueError("gru_forward_slice: row widths do not match the units")  # gru_gate_row trusts them
    # the fused rows add the input bias to the projection they read (the same values, one pass over
    # the projection block fewer); the element loops read it added by project_block
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
        step_matmul_into(h, up, rec, plan)
        if fused:
            # every row's gate math in one explicit full-width vector pass (fused_gates.gru_gate_row),
            # saving the gates straight into the saved row when training
            bp = _data(b_rec)
            binp = _data(b_in) if has_bin else bp
            for bb in range(nb):
                b = b0 + bb
                live = not (use_mask and mask[b, t] == 0)
                if not live and not save:
                    masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                    continue
                xptr = _data(xpc[t - t_lo, bb]) if block > 0 else _data(xp[b, t])
                hptr = _data(h[bb])
                if live:
                    optr = _data(out[b, oi])
                    sptr = _data(saved[b, t]) if save else hptr  # (not written unless saving)
                    gru_gate_row(xptr, _data(rec[bb]), bp, binp, hptr, hptr, optr, sptr, hdim, has_bin,
                                 1 if save else 0)
                else:  # masked step, saving: the gates are saved, the state is kept
                    tmp = _data(rech[bb])
                    gru_gate_row(xptr, _data(rec[bb]), bp, binp, hptr, tmp, tmp, _data(saved[b, t]), hdim, has_bin, 1)
                    masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
            continue
        if not reset_after:
            # the candidate's recurrent product needs r first: r * h_prev, then one more product
            for bb in range(nb):
                xrow = xpc[t - t_lo, bb] if block > 0 else xp[b0 + bb, t]
                r = rg[bb]
                for j in range(hdim):
                    r[j] = xrow[hdim + j] + rec[bb, hdim + j]
                activate_inplace(ract, r)
                for j in range(hdim):
                    rh[bb, j] = r[j] * h[bb, j]
            step_matmul_into(rh, up_h, rech, plan_h)
        for bb in range(nb):
            b = b0 + bb
            xrow = xpc[t - t_lo, bb] if block > 0 else xp[b, t]
            rrow = rec[bb]
            hrow = h[bb]
            r = rg[bb]
            for j in range(hdim):
                zg[j] = xrow[j] + rrow[j] + b_rec[j]
            activate_inplace(ract, zg)
            if reset_after:
                for j in range(hdim):
                    r[j] = xrow[hdim + j] + rrow[hdim + j] + b_rec[hdim + j]
                activate_inplace(ract, r)
                for j in range(hdim):
                    rh[bb, j] = rrow[h2 + j] + b_rec[h2 + j]
                    hh[j] = xrow[h2 + j] + r[j] * rh[bb, j]
            else:
                for j in range(hdim):
                    hh[j] = xrow[h2 + j] + rech[bb, j]
            activate_inplace(act, hh)
            if save:
                # row (b, t) of xp may be this very row (xp aliasing saved[..., :3H]): all of it
                # has been read above
                srow = saved[b, t]
                for j in range(hdim):
                    srow[j] = zg[j]
                    srow[hdim + j] = r[j]
                    srow[h2 + j] = hh[j]
                    srow[3 * hdim + j] = rh[bb, j]
                    srow[4 * hdim + j] = hrow[j]
            if use_mask and mask[b, t] == 0:
                # masked step: the state is kept; the output repeats the previous one (or is zero)
                masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                continue
            orow = out[b, oi]
            for j in range(hdim):
                hn = zg[j] * hrow[j] + (ONE_F32 - zg[j]) * hh[j]
                hrow[j] = hn
                orow[j] = hn
    copy_rows(h, 0, h_last, b0, nb)


def gru_forward_chunk(
    b0, b1, x, w, b_in, u, u_h, b_rec, h0, mask, use_mask, flags, reset_after, out, h_last, saved, save,
    post=NO_POST, shared=None,
):
    """Batch rows ``b0:b1``, one thread's share: their time loop, projecting their inputs
    (``x @ w + b_in``) a block of steps at a time as it goes (blocks that fit in L2). Positional
    arguments (``ops.run_gru`` passes one tuple to every chunk): a layer call of a short sequence
    spends as long in Python as in its kernel, and keyword plumbing cost ~1.5 us of it. ``shared``:
    ``(xp (T, rows, 3H), progress, block)``, the projection shared with a worker thread
    (``shared_projection``), whose task ``post`` hands over."""
    act, ract, go_backwards, return_sequences, zero_output_for_mask = flags  # (a LoopFlags or a plain tuple)
    if shared is None:
        xp, progress = empty_array(x.dtype, 3), NO_PROGRESS
        block = projection_block_steps(b1 - b0, x.shape[1], 3 * u.shape[0], x.dtype.itemsize)
    else:
        xp, progress, block = shared
    gru_forward_slice(
        xp, x, w, b_in, block, u, u_h, b_rec, h0, mask, use_mask, act, ract, reset_after,
        go_backwards, return_sequences, zero_output_for_mask, out, h_last, saved, save, b0, b1, post, progress,
    )
