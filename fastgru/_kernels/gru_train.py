"""GRU training forward: the input projection written into the saved buffer, and the time loop that
saves the gates (the plain loop of :mod:`fastgru._kernels.gru` with ``save``, or the loop with Keras's
recurrent dropout masks). Buffer layout and equations: :mod:`fastgru._kernels.gru_bptt`.

The recurrent-dropout loop is a loop of its own, not a branch of the inference loop: merged (tried, with
bit-identical results), its branch is compiled by every process that only predicts, 0.5-1.5 s more
first-use compile of a GRU model (9.4 s against 7.9-9.1 s, measured in alternation on a 2-core AVX2
machine), while its run time did not change within noise."""

from __future__ import annotations

from numba import njit

from .activations import ONE_F32, activate_inplace
from .aligned import empty_aligned
from .atomics import NO_POST
from .gru import gru_forward_slice
from .packed import pack_stack, packed_matmul_into
from .rnn_common import copy_rows, masked_step_output, project_train_slice
from .shared_projection import NO_PROGRESS


# ---------------------------------------------------------------------------------------------
# training forward with recurrent dropout (Keras's implementation 1)
# ---------------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def gru_forward_rdrop_slice(
    xp, u3, b_rec, rmask, h0, mask, use_mask, act, ract, reset_after, go_backwards,
    return_sequences, zero_output_for_mask, out, h_last, saved, b0, b1,
):
    """The training forward with recurrent dropout masks, for batch rows ``b0:b1``.

    xp (B, T, ≥3H) the hoisted input projection (input dropout already applied per gate); it may be
    ``saved`` itself (row (b, t) is read before it is written). u3 (3, H, H) the recurrent kernel's
    z, r, h column blocks, each C-contiguous; b_rec (3H,) recurrent bias (zeros when absent or
    reset_before); rmask (3, B, H) recurrent dropout masks (already scaled by 1/(1-rate)) applied to
    h_prev before each gate's recurrent product, while the interpolation uses the undropped h_prev.
    The rest as :func:`fastgru._kernels.gru.gru_forward_slice` with ``save`` always on.
    """
    steps = xp.shape[1]
    hdim = h0.shape[1]
    nb = b1 - b0
    dt = xp.dtype
    h2 = 2 * hdim
    h = empty_aligned((nb, hdim), dt)
    copy_rows(h0, b0, h, 0, nb)
    hm = empty_aligned((3, nb, hdim), dt)   # h_prev times each gate's mask (reset_before: hm[2] -> r h m_h)
    rec = empty_aligned((3, nb, hdim), dt)  # the three recurrent products
    zg = empty_aligned((hdim,), dt)
    rg = empty_aligned((nb, hdim), dt)
    hh = empty_aligned((hdim,), dt)
    up3 = pack_stack(u3)  # the three step products' right operands, packed once for the whole loop
    for i in range(steps):
        t = steps - 1 - i if go_backwards else i
        oi = i if return_sequences else 0
        for g in range(3):
            for bb in range(nb):
                mrow = rmask[g, b0 + bb]
                for j in range(hdim):
                    hm[g, bb, j] = h[bb, j] * mrow[j]
        packed_matmul_into(hm[0], up3[0], rec[0])
        packed_matmul_into(hm[1], up3[1], rec[1])
        if reset_after:
            packed_matmul_into(hm[2], up3[2], rec[2])
        else:
            for bb in range(nb):
                xrow = xp[b0 + bb, t]
                r = rg[bb]
                for j in range(hdim):
                    r[j] = xrow[hdim + j] + rec[1, bb, j] + b_rec[hdim + j]
                activate_inplace(ract, r)
                for j in range(hdim):
                    hm[2, bb, j] = r[j] * hm[2, bb, j]
            packed_matmul_into(hm[2], up3[2], rec[2])
        for bb in range(nb):
            b = b0 + bb
            xrow = xp[b, t]
            hrow = h[bb]
            r = rg[bb]
            for j in range(hdim):
                zg[j] = xrow[j] + rec[0, bb, j] + b_rec[j]
            activate_inplace(ract, zg)
            srow = saved[b, t]
            if reset_after:
                for j in range(hdim):
                    r[j] = xrow[hdim + j] + rec[1, bb, j] + b_rec[hdim + j]
                activate_inplace(ract, r)
                for j in range(hdim):
                    c = rec[2, bb, j] + b_rec[h2 + j]
                    hh[j] = xrow[h2 + j] + r[j] * c
                    srow[3 * hdim + j] = c  # after the read of xrow[h2 + j]: same row when aliased
            else:
                for j in range(hdim):
                    hh[j] = xrow[h2 + j] + rec[2, bb, j]
                    srow[3 * hdim + j] = hm[2, bb, j]
            activate_inplace(act, hh)
            for j in range(hdim):
                srow[j] = zg[j]
                srow[hdim + j] = r[j]
                srow[h2 + j] = hh[j]
                srow[4 * hdim + j] = hrow[j]
            if use_mask and mask[b, t] == 0:
                masked_step_output(out, b, i, oi, return_sequences, zero_output_for_mask)
                continue
            orow = out[b, oi]
            for j in range(hdim):
                hn = zg[j] * hrow[j] + (ONE_F32 - zg[j]) * hh[j]
                hrow[j] = hn
                orow[j] = hn
    copy_rows(h, 0, h_last, b0, nb)


# ---------------------------------------------------------------------------------------------
# drivers: one chunk of batch rows = one thread, doing everything for its rows
# (plain Python, not compiled: a compiled driver would link its callees' code into one module
# and re-optimise all of it, about 2 s more of first-use compile per driver for no run-time gain)
# ---------------------------------------------------------------------------------------------
def gru_forward_train_chunk(
    b0, b1, *, x, w, b_in, imask, n_imask, u, u_h, u3, b_rec, rmask, use_rmask, h0, mask, use_mask, flags,
    reset_after, out, h_last, saved,
):
    """Training forward of rows ``b0:b1``: the projection into ``saved``, then the time loop
    (:func:`fastgru._kernels.gru.gru_forward_slice`, or the recurrent-dropout loop) saving the gates.
    """
    project_train_slice(x, w, b_in, imask, n_imask, saved, b0, b1)
    if use_rmask:
        gru_forward_rdrop_slice(
            saved, u3, b_rec, rmask, h0, mask, use_mask, flags.act, flags.ract, reset_after, flags.go_backwards,
            flags.return_sequences, flags.zero_output_for_mask, out, h_last, saved, b0, b1,
        )
    else:
        gru_forward_slice(
            saved, x, w, b_in, 0, u, u_h, b_rec, h0, mask, use_mask, flags.act, flags.ract, reset_after,
            flags.go_backwards, flags.return_sequences, flags.zero_output_for_mask, out, h_last, saved, True, b0, b1,
            NO_POST, NO_PROGRESS,
        )
