"""Fused SimpleRNN kernels: forward (inference, and training that saves what BPTT needs) and BPTT.

Shapes: B batch, T steps, D features, H units; Keras's layout: kernel (D, H), recurrent_kernel (H, H),
bias (H,). The cell (Keras 3 ``SimpleRNNCell``; m_x, m_h its dropout masks, ones without dropout):

    a = (x_t m_x) W + b + (h_prev m_h) U          h = act(a)          output = h

``xp`` (B, T, H) holds the hoisted input projection ``(x m_x) W + b`` for all steps (one GEMM per
thread's rows); per step the time loop does one recurrent product and one pass of the activation.

Saved buffer for training, ``saved`` (B, T, 2H), indexed like x by *time* t (with go_backwards
processing step i is t = T-1-i): row ``saved[b, t]`` = [act(a) | h_prev]. The projection lives in its
columns 0:H (``xp = saved``): each row is read before it is overwritten. BPTT overwrites columns 0:H
with the pre-activation gradients ``da``; after the reverse loop a few GEMMs over the chunk's B_c*T
rows give dX, dW, dU and the bias sums:

    da = (dh + d_out) act'(a)          dh_prev = (da U^T) m_h
    dW = (x m_x)^T da    dX = (da W^T) m_x    dU = (h_prev m_h)^T da    db = sum da

Masked steps (mask[b, t] == 0) keep the state (its gradient passes through unchanged) and repeat the
previous output (or output zeros): their ``da`` is zero. Batch rows are independent for the whole
sequence: each chunk function runs one thread's contiguous slice of rows through the full time loop
(no barrier per step), as for the GRU and the LSTM.
"""

from __future__ import annotations

from numba import njit

from .activations import activate_inplace, derivative_from_output
from .aligned import empty_aligned, zeros_aligned
from .atomics import NO_POST, publish_post
from .fpmode import flush_denormals, restore_fp_mode
from .gradient_products import matmul_tn_into
from .packed import operand, pack, packed_matmul_into, step_matmul_into, step_plan
from .rnn_common import (
    block_projection_buffers,
    column_sums,
    copy_rows,
    empty_array,
    input_grads_slice,
    mask_rows,
    masked_step_output,
    project_block,
    project_train_slice,
    projection_block_steps,
    step_output_grad,
)
from .task_records import record_simple_rnn

N_SAVED = 2


@njit(cache=True, nogil=True, error_model="numpy")
def simple_rnn_forward_slice(
    xp, x, w, b_in, block, u, rmask, use_rmask, h0, mask, use_mask, act, go_backwards, return_sequences,
    zero_output_for_mask, out, h_last, saved, save, b0, b1, post,
):
    """Run the whole time loop for batch rows ``b0:b1``; ``post``: see ``atomics.publish_post``.

    xp (B, T, >=H) the projection (it may be ``saved`` itself), read when ``block`` is 0; with ``block``
    > 0 the loop projects x (B, T, D) @ w (D, H) + b_in (H,) itself, ``block`` steps at a time (as
    ``fastgru._kernels.gru.gru_forward_slice``; xp unused); u (H, H); rmask (B, H) recurrent dropout
    mask scaled by 1/(1-rate) (read when use_rmask); h0 (B, H); mask (B, T) uint8 (read when use_mask);
    out (B, T or 1, H) zero-initialised; h_last (B, H); saved (B, T, 2H) written when save.
    """
    # first: the worker's share written down and posted (another thread's chunk starts while this one sets up)
    record_simple_rnn(post, xp, x, w, b_in, block, u, rmask, use_rmask, h0, mask, use_mask, act, go_backwards,
                      return_sequences, zero_output_for_mask, out, h_last, saved, save)
    publish_post(post)
    steps = x.shape[1] if block > 0 else xp.shape[1]
    hdim = h0.shape[1]
    nb = b1 - b0
    dt = h0.dtype
    h = empty_aligned((nb, hdim), dt)
    copy_rows(h0, b0, h, 0, nb)
    hm = empty_aligned((nb if use_rmask else 0, hdim), dt)
    rec = empty_aligned((nb, hdim), dt)
    a = empty_aligned((hdim,), dt)
    up = operand(u, nb)  # the step product's right operand, packed once for the whole loop (or read in place)
    # the step products' checks made once (packed.step_plan): the same buffers every step
    plan = step_plan(h, up, rec)
    plan_m = step_plan(hm, up, rec) if use_rmask else plan
    if block > 0 and w.shape[1] != hdim:
        raise ValueError("input kernel width does not match the units")  # the gate loops index hdim columns
    wp, xpc = block_projection_buffers(w, block, nb, dt)
    t_lo = 0
    i_next = 0
    for i in range(steps):
        t = steps - 1 - i if go_backwards else i
        oi = i if return_sequences else 0
        if block > 0 and i == i_next:
            # the next block of steps' projection (in processing order: t falling with go_backwards;
            # a step counter, not i % block: an integer division every step)
            i_end = min(steps, i + block)
            i_next = i_end
            t_lo = steps - i_end if go_backwards else i
            project_block(x, wp, b_in, xpc, b0, nb, t_lo, t_lo + i_end - i)
        if use_rmask:
            for bb in range(nb):
                mrow = rmask[b0 + bb]
                for j in range(hdim):
                    hm[bb, j] = h[bb, j] * mrow[j]
            step_matmul_into(hm, up, rec, plan_m)
        else:
            step_matmul_into(h, up, rec, plan)
        for bb in range(nb):
            b = b0 + bb
            xrow = xpc[t - t_lo, bb] if block > 0 else xp[b, t]
            rrow = rec[bb]
            hrow = h[bb]
            for j in range(hdim):
                a[j] = xrow[j] + rrow[j]
            activate_inplace(act, a)
            if save:
                # row (b, t) of xp may be this very row (xp = saved): all of it has been read above
                srow = saved[b, t]
                for j in range(hdim):
                    srow[j] = a[j]
                    srow[hdim + j] = hrow[j]
            if use_mask and mask[b, t] == 0:
                # masked step: the state is kept; the output repeats the previous one (or is zero)
                masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                continue
            orow = out[b, oi]
            for j in range(hdim):
                hrow[j] = a[j]
                orow[j] = a[j]
    copy_rows(h, 0, h_last, b0, nb)


def simple_rnn_forward_chunk(b0, b1, x, w, b, u, h0, mask, use_mask, flags, out, h_last, post=NO_POST):
    """Inference of rows ``b0:b1``, one thread's share: their time loop, projecting their inputs
    (``x @ w + b``) a block of steps at a time as it goes (blocks that fit in L2). Positional
    arguments, one tuple for every chunk (as ``gru_forward_chunk``)."""
    act, _, go_backwards, return_sequences, zero_output_for_mask = flags  # (a LoopFlags or a plain tuple)
    block = projection_block_steps(b1 - b0, x.shape[1], h0.shape[1], x.dtype.itemsize)
    empty3 = empty_array(x.dtype, 3)
    simple_rnn_forward_slice(
        empty3, x, w, b, block, u, empty_array(x.dtype, 2), False, h0, mask, use_mask, act, go_backwards,
        return_sequences, zero_output_for_mask, out, h_last, empty3, False, b0, b1, post,
    )


def simple_rnn_forward_train_chunk(
    b0, b1, *, x, w, b, imask, n_imask, u, rmask, use_rmask, h0, mask, use_mask, flags, out, h_last, saved,
):
    """Training forward of rows ``b0:b1``: the projection (with the input dropout mask, imask (1, B, D)
    when n_imask is 1) into ``saved``, then the time loop saving [act(a) | h_prev]."""
    project_train_slice(x, w, b, imask, n_imask, saved, b0, b1)
    simple_rnn_forward_slice(
        saved, x, w, b, 0, u, rmask, use_rmask, h0, mask, use_mask, flags.act, flags.go_backwards,
        flags.return_sequences, flags.zero_output_for_mask, out, h_last, saved, True, b0, b1, NO_POST,
    )


# ---------------------------------------------------------------------------------------------
# backward through time
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def simple_rnn_backward_slice(
    saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, act, go_backwards, return_sequences,
    zero_output_for_mask, dh0, b0, b1,
):
    """The reverse time loop for batch rows ``b0:b1``.

    saved (B, T, 2H) from the training forward (columns 0:H overwritten with ``da``); ut (H, H) ``U^T``
    (C-contiguous); rmask (B, H) (read when use_rmask); d_out (B, T or 1, H) gradient of the outputs in
    processing order; dh_last (B, H) gradient of the final state; mask (B, T) uint8; dh0 (B, H)
    receives the gradient of the initial state.
    """
    fp_mode = flush_denormals()  # vanishing gradients: no slow subnormal arithmetic (fpmode.py)
    steps = saved.shape[1]
    hdim = dh_last.shape[1]
    nb = b1 - b0
    dt = saved.dtype
    dh = empty_aligned((nb, hdim), dt)        # dL/dh of the state after the current step
    carry = zeros_aligned((nb, hdim), dt)     # dL/d(output) carried back through repeated outputs
    gout = empty_aligned((hdim,), dt)
    ga = empty_aligned((nb, hdim), dt)        # da, the step product's left operand
    prod = empty_aligned((nb, hdim), dt)
    upt = pack(ut)  # the step product's right operand, packed once for the whole loop
    copy_rows(dh_last, b0, dh, 0, nb)
    if not return_sequences:
        copy_rows(d_out[:, 0], b0, carry, 0, nb)
    for i in range(steps - 1, -1, -1):
        t = steps - 1 - i if go_backwards else i
        for bb in range(nb):
            b = b0 + bb
            crow = carry[bb]
            step_output_grad(crow, d_out, b, i, return_sequences, gout)
            srow = saved[b, t]
            grow = ga[bb]
            dhrow = dh[bb]
            if use_mask and mask[b, t] == 0:
                # the state passes through unchanged; the output repeats the previous one (or is 0)
                for j in range(hdim):
                    crow[j] = 0.0 if zero_output_for_mask else gout[j]
                    grow[j] = 0.0
                    srow[j] = 0.0
                continue
            for j in range(hdim):
                crow[j] = 0.0
                grow[j] = dhrow[j] + gout[j]
            derivative_from_output(act, srow[0:hdim], grow)
            for j in range(hdim):
                srow[j] = grow[j]
                dhrow[j] = 0.0  # the state is replaced: all of its gradient goes through da
        # the sequential product: carry da to the previous state
        packed_matmul_into(ga, upt, prod)
        if use_rmask:
            for bb in range(nb):
                mrow = rmask[b0 + bb]
                for j in range(hdim):
                    dh[bb, j] += prod[bb, j] * mrow[j]
        else:
            for bb in range(nb):
                for j in range(hdim):
                    dh[bb, j] += prod[bb, j]
    copy_rows(dh, 0, dh0, b0, nb)
    restore_fp_mode(fp_mode)


@njit(cache=True, nogil=True, error_model="numpy")
def simple_rnn_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, dx, dw, du, db, b0, b1):
    """Input and weight gradients of rows ``b0:b1`` from their ``da`` (after the loop).

    dx (B, T, D) rows b0:b1 written (an empty (0, 0, D) array skips it); dw (D, H), du (H, H): this
    chunk's partial sums (written); db (H,) float64 partial bias sums.
    """
    steps = x.shape[1]
    units = w.shape[1]
    rows = (b1 - b0) * steps
    s2 = saved[b0:b1].reshape(rows, saved.shape[2])
    g = s2[:, 0:units]
    hp = s2[:, units:2 * units]
    input_grads_slice(x, w, g, imask, n_imask, dx, dw, b0, b1)
    if use_rmask:
        hm = empty_aligned((rows, units), x.dtype)
        mask_rows(hp, rmask[b0:b1], steps, hm)
        matmul_tn_into(hm, g, du)
    else:
        matmul_tn_into(hp, g, du)
    column_sums(s2, 0, db)


def simple_rnn_backward_chunk(
    b0, b1, *, saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, flags, x, w, imask, n_imask, dx,
    dw, du, db, dh0,
):
    """Backward of rows ``b0:b1``: the reverse time loop, then the chunk's gradient GEMMs."""
    simple_rnn_backward_slice(
        saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, flags.act, flags.go_backwards,
        flags.return_sequences, flags.zero_output_for_mask, dh0, b0, b1,
    )
    simple_rnn_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, dx, dw, du, db, b0, b1)
