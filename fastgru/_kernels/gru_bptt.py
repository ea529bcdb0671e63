"""GRU backpropagation through time (BPTT); the training forward is in :mod:`fastgru._kernels.gru_train`.

Shapes: B batch, T steps, D features, H units; gate order z, r, h (Keras's layout).

One (B, T, 5H) buffer, ``saved``, carries a training step (layout in :mod:`fastgru._kernels.gru`):
row ``saved[b, t]`` holds [z | r | hh | c | h_prev] after the forward, c being the recurrent
candidate term (reset_after: ``(h_prev*m_h) @ U_h + b_rh`` before the product with r;
reset_before: ``r * (h_prev*m_h)``, the left operand of the candidate's recurrent product; m_h
the recurrent dropout mask of the candidate gate, 1 without recurrent dropout).

The backward walks the steps in reverse processing order, one thread per contiguous slice of batch
rows (rows are independent for the whole sequence, as in the forward). Per step it does only the
elementwise gate derivatives and the sequential product(s) ``dG_t @ U^T`` that carry the gradient
to the previous state, and overwrites the row's now-dead columns with the gate gradients:

    row[0:H]   da_z     (gradient of the z pre-activation)
    row[H:2H]  da_r
    row[2H:3H] da_h     (gradient of the candidate pre-activation, the input side)
    row[3H:4H] dq       reset_after only: gradient of c = the recurrent candidate term
               (reset_before keeps c = r*(h_prev*m_h), the left operand for dU_h)
    row[4H:5H] h_prev   (kept)

Masked steps (mask[b, t] == 0) get zero gate gradients. After its loop, the same thread turns its
rows of the buffer into its rows of dX and its partial dW, dU and bias sums with a few large GEMMs
over all its B_c*T rows (:func:`gru_grads_slice`, BLAS reading the strided column blocks in place);
``ops.run_gru_backward`` adds the partials. Only fastgru's threads run: a multi-threaded NumPy GEMM
beside them would oversubscribe the cores (measured 30x slower on 2 cores).

The recurrence for one unmasked step (m_* recurrent dropout masks, all ones without dropout):

    a_z = xp_z + (h m_z) U_z + b_rz        z  = ract(a_z)
    a_r = xp_r + (h m_r) U_r + b_rr        r  = ract(a_r)
    reset_after:  c = (h m_h) U_h + b_rh,  a_h = xp_h + r c
    reset_before: c = r (h m_h),           a_h = xp_h + c U_h
    hh = act(a_h)                          h' = z h + (1 - z) hh

and its derivatives, given g = dL/dh' (state and output gradients together):

    da_z = g (h - hh) ract'(z)             da_h = g (1 - z) act'(hh)
    reset_after:  da_r = da_h c ract'(r),  dq = da_h r
                  dh = g z + [da_z | da_r | dq] U^T                (masks: per gate, times m_g)
    reset_before: dc = da_h U_h^T,         da_r = dc h m_h ract'(r)
                  dh = g z + dc r m_h + [da_z | da_r] U_zr^T       (masks: per gate, times m_g)

References: Cho et al. 2014 (arXiv:1406.1078) for the cell; cuDNN's RNN backward (reserve space
holding the gates, data gradient through time, then one weight-gradient GEMM) for the structure.
"""

from __future__ import annotations

from numba import njit

from .activations import FAST_SIGMOID, FAST_TANH, ONE_F32, derivative_from_output
from .aligned import empty_aligned, zeros_aligned
from .fpmode import flush_denormals, restore_fp_mode
from .fused_gates import gru_grad_row
from .gradient_products import matmul_tn_into
from .packed import _data, pack, pack_stack, packed_matmul_into
from .rnn_common import column_sums, copy_rows, input_grads_slice, mask_rows, step_output_grad


# ---------------------------------------------------------------------------------------------
# backward through time
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def gru_backward_slice(
    saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, act, ract, reset_after,
    go_backwards, return_sequences, zero_output_for_mask, dh0, b0, b1,
):
    """The reverse time loop for batch rows ``b0:b1``.

    saved (B, T, 5H) from the training forward; its columns 0:4H are overwritten with the gate
    gradients (module docstring). ut (3H, H) the transposed recurrent kernel ``U^T`` (C-contiguous).
    rmask (3, B, H) recurrent dropout masks (read when use_rmask). d_out (B, T or 1, H) gradient of
    the outputs, indexed like the outputs (processing order). dh_last (B, H) gradient of the final
    state. mask (B, T) uint8 (read when use_mask). dh0 (B, H) receives the gradient of h0.
    """
    fp_mode = flush_denormals()  # vanishing gradients: no slow subnormal arithmetic (fpmode.py)
    steps = saved.shape[1]
    hdim = dh_last.shape[1]
    nb = b1 - b0
    dt = saved.dtype
    h2 = 2 * hdim
    h3 = 3 * hdim
    dh = empty_aligned((nb, hdim), dt)        # dL/dh of the state after the current step
    carry = zeros_aligned((nb, hdim), dt)     # dL/d(output) carried back through repeated outputs
    gout = empty_aligned((hdim,), dt)
    # left operands of the step products: [da_z | da_r | dq] (reset_after) or [da_z | da_r] and
    # da_h (reset_before); gate-major (3, nb, H) blocks when recurrent dropout needs one product
    # per gate
    gb = empty_aligned((nb, h3 if reset_after else h2), dt)
    ghb = empty_aligned((nb, hdim), dt)
    g3 = empty_aligned((3 if use_rmask else 0, nb, hdim), dt)
    dc = empty_aligned((nb, hdim), dt)
    prod = empty_aligned((nb, hdim), dt)
    # the step products' right operands (blocks of U^T), packed once for the whole loop
    # (each only where the loop uses it: per-gate blocks with recurrent dropout, and U_h^T for
    # reset_before; the joint block otherwise)
    upt3 = pack_stack(ut.reshape(3, hdim, hdim)[0:3 if use_rmask or not reset_after else 0])
    upt = pack(ut[0:0 if use_rmask else gb.shape[1]])
    copy_rows(dh_last, b0, dh, 0, nb)
    if not return_sequences:
        copy_rows(d_out[:, 0], b0, carry, 0, nb)
    one_pass = reset_after and not use_rmask and act == FAST_TANH and ract == FAST_SIGMOID
    if one_pass and saved.shape[2] < 5 * hdim:
        raise ValueError("gru_backward_slice: saved rows narrower than 5H")  # gru_grad_row reads 5H of each
    for i in range(steps - 1, -1, -1):
        t = steps - 1 - i if go_backwards else i
        # pass 1: output gradient, interpolation, z and the candidate (and r when reset_after)
        for bb in range(nb):
            b = b0 + bb
            if use_rmask:
                vz = g3[0, bb]
                vr = g3[1, bb]
                vh = g3[2, bb]
            elif reset_after:
                vz = gb[bb, 0:hdim]
                vr = gb[bb, hdim:h2]
                vh = gb[bb, h2:h3]
            else:
                vz = gb[bb, 0:hdim]
                vr = gb[bb, hdim:h2]
                vh = ghb[bb]
            crow = carry[bb]
            step_output_grad(crow, d_out, b, i, return_sequences, gout)
            srow = saved[b, t]
            if use_mask and mask[b, t] == 0:
                # the state passes through unchanged; the output repeats the previous one (or is 0)
                for j in range(hdim):
                    crow[j] = 0.0 if zero_output_for_mask else gout[j]
                    vz[j] = 0.0
                    vr[j] = 0.0
                    vh[j] = 0.0
                    srow[j] = 0.0
                    srow[hdim + j] = 0.0
                    srow[h2 + j] = 0.0
                if reset_after:
                    for j in range(hdim):
                        srow[h3 + j] = 0.0
                continue
            dhrow = dh[bb]
            if one_pass:
                # the gate gradients of the row as explicit full-width vectors (fused_gates.gru_grad_row,
                # float32, Keras's default activations, reset_after, no recurrent dropout): the general
                # path's formulas below, the same operations in the same order
                gru_grad_row(_data(srow), _data(gout), _data(dhrow), _data(gb[bb]), _data(crow), hdim)
                continue
            for j in range(hdim):
                crow[j] = 0.0
                g = dhrow[j] + gout[j]
                z = srow[j]
                vz[j] = g * (srow[4 * hdim + j] - srow[h2 + j])
                vh[j] = g * (ONE_F32 - z)
                dhrow[j] = g * z
            derivative_from_output(ract, srow[0:hdim], vz)
            derivative_from_output(act, srow[h2:h3], vh)
            for j in range(hdim):
                srow[j] = vz[j]
            if reset_after:
                for j in range(hdim):
                    dah = vh[j]
                    vr[j] = dah * srow[h3 + j]
                    srow[h2 + j] = dah
                    vh[j] = dah * srow[hdim + j]
                derivative_from_output(ract, srow[hdim:h2], vr)
                for j in range(hdim):
                    srow[hdim + j] = vr[j]
                    srow[h3 + j] = vh[j]
            else:
                for j in range(hdim):
                    srow[h2 + j] = vh[j]
        if not reset_after:
            # pass 2: the reset gate sits inside the candidate's product: dc = da_h @ U_h^T first
            packed_matmul_into(g3[2] if use_rmask else ghb, upt3[2], dc)
            for bb in range(nb):
                b = b0 + bb
                if use_mask and mask[b, t] == 0:
                    continue
                srow = saved[b, t]
                dcrow = dc[bb]
                dhrow = dh[bb]
                if use_rmask:
                    vr = g3[1, bb]
                    mrow = rmask[2, b]
                    for j in range(hdim):
                        vr[j] = dcrow[j] * srow[4 * hdim + j] * mrow[j]
                        dhrow[j] += dcrow[j] * srow[hdim + j] * mrow[j]
                else:
                    vr = gb[bb, hdim:h2]
                    for j in range(hdim):
                        vr[j] = dcrow[j] * srow[4 * hdim + j]
                        dhrow[j] += dcrow[j] * srow[hdim + j]
                derivative_from_output(ract, srow[hdim:h2], vr)
                for j in range(hdim):
                    srow[hdim + j] = vr[j]
        # the sequential product(s): carry the gate gradients to the previous state
        if use_rmask:
            for gate in range(3 if reset_after else 2):
                packed_matmul_into(g3[gate], upt3[gate], prod)
                for bb in range(nb):
                    mrow = rmask[gate, b0 + bb]
                    for j in range(hdim):
                        dh[bb, j] += prod[bb, j] * mrow[j]
        else:
            packed_matmul_into(gb, upt, prod)
            for bb in range(nb):
                for j in range(hdim):
                    dh[bb, j] += prod[bb, j]
    copy_rows(dh, 0, dh0, b0, nb)
    restore_fp_mode(fp_mode)


@njit(cache=True, nogil=True, error_model="numpy")
def gru_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, reset_after, dx, dw, du, db, b0, b1):
    """Input and weight gradients of rows ``b0:b1`` from their gate gradients (after the loop).

    dx (B, T, D): rows b0:b1 written; an empty (0, 0, D) array skips the input gradient. dw (D, 3H),
    du (H, 3H): this chunk's partial sums (written, not accumulated); db (2, 3H) float64 partial bias
    sums: db[0] input bias, db[1] recurrent bias (reset_after). Masks as in
    :mod:`fastgru._kernels.rnn_common` and the module docstring.
    """
    steps = x.shape[1]
    n = w.shape[1]
    units = n // 3
    u2 = 2 * units
    rows = (b1 - b0) * steps
    s2 = saved[b0:b1].reshape(rows, saved.shape[2])
    g = s2[:, 0:n]  # [da_z | da_r | da_h]
    c4 = s2[:, n:n + units]  # reset_after: dq; reset_before: r * h_prev * m_h
    hp = s2[:, n + units:n + 2 * units]  # h_prev
    # dW = (x m)^T G and dX = (G W^T) m (dX skipped when dx is empty, e.g. for the first layer)
    input_grads_slice(x, w, g, imask, n_imask, dx, dw, b0, b1)
    # dU: previous states (times each gate's recurrent mask) against the recurrent-side gradients
    if not use_rmask:
        matmul_tn_into(hp, g[:, 0:u2], du[:, 0:u2])
        if reset_after:
            matmul_tn_into(hp, c4, du[:, u2:n])
    else:
        hm = empty_aligned((rows, units), x.dtype)
        for gi in range(3 if reset_after else 2):
            lo = gi * units
            hi = lo + units
            mask_rows(hp, rmask[gi, b0:b1], steps, hm)
            if gi == 2:
                matmul_tn_into(hm, c4, du[:, lo:hi])
            else:
                matmul_tn_into(hm, g[:, lo:hi], du[:, lo:hi])
    if not reset_after:
        matmul_tn_into(c4, g[:, u2:n], du[:, u2:n])
    # bias gradients: column sums, accumulated in float64
    column_sums(s2, 0, db[0])
    if reset_after:
        column_sums(s2, n, db[1, u2:n])
        for j in range(u2):
            db[1, j] = db[0, j]
    else:
        db[1] = 0.0


# ---------------------------------------------------------------------------------------------
# driver: one chunk of batch rows = one thread
# (plain Python, not compiled: a compiled driver would link its callees' code into one module
# and re-optimise all of it, about 2 s more of first-use compile per driver for no run-time gain)
# ---------------------------------------------------------------------------------------------
def gru_backward_chunk(
    b0, b1, *, saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, flags, reset_after, x, w, imask,
    n_imask, dx, dw, du, db, dh0,
):
    """Backward of rows ``b0:b1``: the reverse time loop, then the chunk's gradient GEMMs."""
    gru_backward_slice(
        saved, ut, rmask, use_rmask, d_out, dh_last, mask, use_mask, flags.act, flags.ract, reset_after,
        flags.go_backwards, flags.return_sequences, flags.zero_output_for_mask, dh0, b0, b1,
    )
    gru_grads_slice(x, w, saved, imask, n_imask, rmask, use_rmask, reset_after, dx, dw, du, db, b0, b1)
