"""1-D convolution as ``kernel_size`` accumulated GEMMs on shifted views of the flattened input
(no im2col copy, no col2im scatter), over one range of flat rows per call (a task: see
``fastgru/layers/conv.py``; ranges need not follow sequence boundaries).

Layout. The (zero-padded) input is flattened to ``xf`` (B*T_p, C_in) rows, T_p a multiple of the
stride s; the output is computed on the flattened sequence too: flat output row ``o`` reads input
rows ``o*s + k*d`` (tap k, dilation d), so each tap is ONE strided 2-D view of ``xf`` spanning the
whole chunk (row stride s*C_in) and one gemm call per tap and group covers many sequences at once.
Row ``o = b*T_q + t`` (T_q = T_p / s) is sequence b's output step t when ``t < T_out``; the rows with
``t >= T_out`` straddle two sequences and are discarded (forward) or carry a zero gradient
(backward). Work is done in blocks of ``BLOCK`` flat rows, so that a block's output and the input
rows its taps read stay in cache across the taps.

Backward, from ``dzf`` (B*T_q, F), dz in the same flat layout with zeros on the straddling rows:
* ``dW[k] += xf[o*s + k*d]^T @ dzf[o]`` per tap over the chunk's output rows (per-chunk partials);
* ``dxf[i] = sum_k dzf[(i - k*d)/s] @ W[k]^T`` over the chunk's input rows, gathered (each input
  row is written by one chunk only: no race between threads), for the taps where ``i - k*d`` is a
  non-negative multiple of s.

Groups: the same per group on column blocks (strided views; ``linalg.gemm`` takes them without a
copy). All views are passed with 'A' layout so each kernel compiles one gemm specialization per dtype.

One group and no dilation (the common case): a window is ``k*C_in`` contiguous numbers of the flat
input, so a block's forward is one packed product over the windows read in place
(``packed.packed_rows_into``, rows overlapping when s < k) and the kernel gradient one ``A^T dY`` over
the task's windows (``gradient_products.matmul_tn_rows_into``): no per-tap BLAS call, no im2col block.
With stride 1 too, the input gradient is one packed product over windows of dY after k - 1 zero rows
(``conv1d_backward_chunk``'s ``dzp``, ``wtp``).
"""

from __future__ import annotations

from numba import njit

from .gradient_products import matmul_tn_rows_into
from .linalg import gemm
from .packed import packed_rows_into

#: flat rows per block (a block's output, float32 x 128 columns, is 128 KiB: L2-resident)
BLOCK = 256

#: flat rows per block of the kernel gradient's products (their inner dimension)
DW_BLOCK = 256

#: bytes of im2col block the kernel gradient aims to keep in cache (fewer rows for wide windows, at
#: least ``DW_MIN_ROWS`` so the products keep a useful depth)
DW_BLOCK_BYTES = 1 << 20
DW_MIN_ROWS = 64


@njit(cache=True, nogil=True, error_model="numpy")
def conv1d_forward_chunk(xf, w, wp, bias, use_bias, out, t_p, stride, dilation, groups, scratch, o0, o1):
    """The output steps of flat output rows ``o0:o1`` (row ``b*T_q + t`` is ``out[b, t]``, out (B, T_out,
    F)) = conv(x) + bias; the rows that straddle two sequences are skipped.

    xf (B*T_p, C_in) padded flat input, w (k, C_in/groups, F), bias (F,), scratch (BLOCK, F) this
    call's own buffer. The caller has checked every shape. With one group and no dilation, ``wp`` is
    ``packed.pack(w.reshape(k*C_in, F))`` and each block is ONE packed product: flat output row ``o``'s
    window is the k*C_in contiguous numbers from ``xf[o*s]`` on (rows overlap when s < k); otherwise
    ``wp`` is empty and each tap is one BLAS gemm accumulated into the block.
    """
    ksize = w.shape[0]
    cg = w.shape[1]
    f = w.shape[2]
    fg = f // groups
    t_out = out.shape[1]
    t_q = t_p // stride
    n_flat = (out.shape[0] - 1) * t_q + t_out  # rows past this would read beyond xf
    o_start = o0
    o_end = min(o1, n_flat)
    block = scratch.shape[0]
    windows = wp.shape[0] > 0
    if windows and (groups != 1 or dilation != 1 or wp.shape[1] != ksize * cg):
        raise ValueError("conv1d_forward_chunk: the packed kernel does not match the convolution")
    for r in range(o_start, o_end, block):
        n = min(block, o_end - r)
        if n <= 0:
            break
        blk = scratch[0:n:1, :]
        if windows:
            packed_rows_into(xf.reshape(xf.shape[0] * xf.shape[1]), r * stride * cg, stride * cg, n, wp, blk)
        else:
            for g in range(groups):
                for k in range(ksize):
                    a0 = r * stride + k * dilation
                    a = xf[a0:a0 + (n - 1) * stride + 1:stride, g * cg:(g + 1) * cg]
                    gemm(a, w[k, :, g * fg:(g + 1) * fg], blk[:, g * fg:(g + 1) * fg], False, False, k > 0)
        for i in range(n):
            o = r + i
            b = o // t_q
            t = o - b * t_q
            if t < t_out:
                src = blk[i]
                dst = out[b, t]
                if use_bias:
                    for j in range(f):
                        dst[j] = src[j] + bias[j]
                else:
                    for j in range(f):
                        dst[j] = src[j]


@njit(cache=True, nogil=True, error_model="numpy")
def conv1d_backward_chunk(xf, dzf, w, dxf, dw, cols, need_dx, t_p, stride, dilation, groups, o0, o1, i0, i1,
                          dzp, wtp):
    """The kernel gradient over flat output rows ``o0:o1`` added to ``dw`` (k, C_in/groups, F), this
    task's partial sum, and when need_dx the rows ``i0:i1`` of ``dxf`` (B*T_p, C_in), the padded flat
    input's gradient (overwritten). cols (block rows, k*C_in/groups) is the calling thread's scratch;
    xf (B*T_p, C_in), dzf (B*T_q, F) with zeros on the straddling rows. Shapes checked by the caller.

    With one group, no dilation and stride 1, ``dzp`` is dzf after k-1 zero rows (dzf a view of its
    tail) and ``wtp`` = ``pack`` of [W[k-1]^T; ...; W[0]^T] (k*F, C_in): input row i's gradient is
    then the window of dzp's k*F contiguous numbers from row i on against wtp, one packed product
    over the chunk's input rows; otherwise both are empty and the rows are gathered tap by tap.
    """
    ksize = w.shape[0]
    cg = w.shape[1]
    f = w.shape[2]
    fg = f // groups
    c_in = cg * groups
    n_out = dzf.shape[0]
    n_in = xf.shape[0]
    # kernel gradient over this chunk's output rows (the straddling rows of dzf are zeros)
    # output rows whose taps stay inside xf
    n_valid = min(n_out, (n_in - 1 - (ksize - 1) * dilation) // stride + 1)
    o_start = o0
    o_end = min(o1, n_valid)
    dw2 = dw.reshape(ksize * cg, f)
    if groups == 1 and dilation == 1:
        # one product over the chunk's windows, read in place from xf (no im2col copy, ``cols`` unused):
        # dw is this task's own partial sum, zero until now
        if o_end > o_start:
            matmul_tn_rows_into(xf.reshape(n_in * c_in), o_start * stride * c_in, stride * c_in, o_end - o_start,
                                ksize * c_in, dzf[o_start:o_end], dw2)
    else:
        dw_block = cols.shape[0]
        for r in range(o_start, o_end, dw_block):
            n = min(dw_block, o_end - r)
            if n <= 0:
                break
            dz = dzf[r:r + n:1, :]
            for g in range(groups):
                # this block's im2col rows (in cache), then one product over all taps
                for i in range(n):
                    crow = cols[i]
                    base = (r + i) * stride
                    for k in range(ksize):
                        src = xf[base + k * dilation]
                        for c in range(cg):
                            crow[k * cg + c] = src[g * cg + c]
                gemm(cols[0:n:1, :], dz[:, g * fg:(g + 1) * fg], dw2[:, g * fg:(g + 1) * fg], True, False, True)
    if not need_dx:
        return
    # input gradient, gathered over this chunk's input rows
    i_start = i0
    i_end = min(i1, n_in)
    if wtp.shape[0] > 0:
        if (dzp.shape[0] != n_out + ksize - 1 or dzp.shape[1] != f or stride != 1 or groups != 1 or dilation != 1
                or wtp.shape[1] != ksize * f):
            raise ValueError("conv1d_backward_chunk: padded output gradient does not match")
        if i_end > i_start:
            packed_rows_into(dzp.reshape(dzp.shape[0] * f), i_start * f, f, i_end - i_start, wtp, dxf[i_start:i_end])
        return
    for r in range(i_start, i_end, BLOCK):
        n = min(BLOCK, i_end - r)
        for i in range(r, r + n):
            row = dxf[i]
            for c in range(c_in):
                row[c] = 0.0
        for k in range(ksize):
            shift = k * dilation
            # input rows i in [r, r+n) with i = o*s + shift, 0 <= o < n_out
            lo = max(r - shift, 0)
            o0 = (lo + stride - 1) // stride
            o1 = min((r + n - shift + stride - 1) // stride, n_out) if r + n > shift else 0
            if o1 <= o0:
                continue
            i0 = o0 * stride + shift
            nn = o1 - o0
            dst = dxf[i0:i0 + (nn - 1) * stride + 1:stride, :]
            src = dzf[o0:o1:1, :]
            for g in range(groups):
                gemm(src[:, g * fg:(g + 1) * fg], w[k, :, g * fg:(g + 1) * fg], dst[:, g * cg:(g + 1) * cg],
                     False, True, True)


@njit(cache=True, nogil=True, error_model="numpy")
def flat_output_gradient(dz, dzf, t_q):
    """``dzf`` (B*T_q, F) = dz (B, T_out, F) on the flat rows ``b*T_q + t``, zeros elsewhere."""
    bsz = dz.shape[0]
    t_out = dz.shape[1]
    f = dz.shape[2]
    for b in range(bsz):
        for t in range(t_q):
            dst = dzf[b * t_q + t]
            if t < t_out:
                src = dz[b, t]
                for j in range(f):
                    dst[j] = src[j]
            else:
                for j in range(f):
                    dst[j] = 0.0
