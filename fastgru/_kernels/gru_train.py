"""GRU training forward: the input projection (with Keras's input dropout masks) written into the saved
buffer, then the time loop of :mod:`fastgru._kernels.gru` saving the gates, with Keras's recurrent dropout
masks when given (the same loop as inference: one kernel, no second copy). Buffer layout and equations:
:mod:`fastgru._kernels.gru_bptt`."""

from __future__ import annotations

from .gru import gru_forward_slice
from .rnn_common import project_train_slice


# ---------------------------------------------------------------------------------------------
# drivers: one chunk of batch rows = one thread, doing everything for its rows
# (plain Python, not compiled: a compiled driver would link its callees' code into one module
# and re-optimise all of it, about 2 s more of first-use compile per driver for no run-time gain)
# ---------------------------------------------------------------------------------------------
def gru_forward_train_chunk(
    b0, b1, *, x, w, b_in, imask, n_imask, u, u_h, u3, b_rec, rmask, use_rmask, h0, mask, use_mask, flags,
    reset_after, out, h_last, saved, small_rows,
):
    """Training forward of rows ``b0:b1``: the projection into ``saved``, then the time loop
    (:func:`fastgru._kernels.gru.gru_forward_slice`) saving the gates; u3 (3, H, H) and rmask (3, B, H)
    when ``use_rmask`` (recurrent dropout), else empty."""
    project_train_slice(x, w, b_in, imask, n_imask, saved, small_rows, b0, b1)
    gru_forward_slice(
        saved, u, u_h, u3, b_rec, rmask, use_rmask, h0, mask, use_mask, flags.act, flags.ract, reset_after,
        flags.go_backwards, flags.return_sequences, flags.zero_output_for_mask, out, h_last, saved, True,
        small_rows, b0, b1,
    )
