"""Step products against a pre-packed right operand, through a register-tile micro-kernel.

The recurrent product of every time step is ``(rows, K) @ (K, N)`` with the same right operand U
for the whole sequence. BLAS re-packs U into its panel layout at every call (and pays a call and a
dispatch per step); here U is packed once per call of a time loop, and each step runs a micro-kernel
that keeps an (mr, NR) tile of the product in vector registers over the whole K loop.

Packed layout, ``pack_panels``: ``up (P, K, NR)``, panel ``p`` holding columns ``p*NR : (p+1)*NR``
of U (the last one zero-padded), so one panel row is ``NV`` consecutive vectors.

The micro-kernel is written in LLVM IR (``numba.extending.intrinsic``) with LLVM's *generic* vector
type ``<V x float>`` and ``llvm.fmuladd``: LLVM lowers it for whatever CPU Numba compiles for
(AVX-512, AVX2, plain SSE), so nothing here can emit an instruction the CPU lacks. Only the tile
size follows the CPU, from LLVM's host feature list: the vector width ``V`` (64 bytes with
AVX-512F, else 32) and the rows per tile ``MR`` (as many as the vector registers hold: 16 registers
without AVX-512, 32 with it).
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from .aligned import empty_aligned

#: vectors per tile row
NV = 2


def _vector_bytes() -> int:
    """64 with AVX-512F, else 32; ``FASTGRU_VECTOR_BYTES`` (16, 32 or 64) picks the tile layout of
    another CPU kind (tests run both on one machine; use a separate ``NUMBA_CACHE_DIR`` with it, as
    Numba's cache does not know this setting)."""
    override = os.environ.get("FASTGRU_VECTOR_BYTES", "").strip()
    if override:
        if override not in ("16", "32", "64"):
            raise ValueError(f"FASTGRU_VECTOR_BYTES must be 16, 32 or 64, received {override!r}")
        if not os.environ.get("NUMBA_CACHE_DIR"):
            raise ValueError("FASTGRU_VECTOR_BYTES needs its own NUMBA_CACHE_DIR (Numba's cache does not know it)")
        return int(override)
    try:
        features = llvm_binding.get_host_cpu_features()
    except RuntimeError:  # pragma: no cover  (LLVM cannot tell: assume the common AVX2 width)
        return 32
    return 64 if features.get("avx512f", False) else 32


VECTOR_BYTES = _vector_bytes()
_N_REGS = 32 if VECTOR_BYTES == 64 else 16
#: rows per full tile: accumulators (MR * NV) + one panel row (NV) + a broadcast fit the registers
#: (6 with 16 vector registers, 8 with 32)
MR = 8 if _N_REGS >= 32 else 6
#: panels of a one-row tile (a batch of one, or the row left over): 6 (12 accumulators) with 32 vector
#: registers; 4 (8) with 16. (1, 64) @ (64, 192) in one (1, 6) tile rather than (1, 4) + a
#: latency-bound (1, 2): see docs/performance.md
ONE_ROW_PANELS = 6 if _N_REGS >= 32 else 4


def _cache_bytes(level: int, fallback: int) -> int:
    """This CPU's data (or unified) cache of ``level`` per core in bytes, from Linux's /sys, else
    ``fallback``."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            with open(os.path.join(path, "level")) as f:
                found = f.read().strip()
            with open(os.path.join(path, "type")) as f:
                kind = f.read().strip()
            if found == str(level) and kind in ("Unified", "Data"):
                with open(os.path.join(path, "size")) as f:
                    size = f.read().strip().upper()
                scale = {"K": 1024, "M": 1 << 20}.get(size[-1:], 1)
                value = int(size.rstrip("KM")) * scale
                if value > 0:
                    return value
    except (OSError, ValueError):
        pass
    return fallback


#: L1 data cache per core (bytes), else 32 KiB (the smallest of the machines fastgru is measured on)
L1D_BYTES = _cache_bytes(1, 1 << 15)
#: L2 per core (bytes), else 512 KiB (AMD Zen 3): decides the loop order of products with many rows
#: (``packed_matmul_into``) and the inference loops' projection blocks (``rnn_common``)
L2_BYTES = _cache_bytes(2, 1 << 19)
#: bytes of one packed panel's K block, kept in L1 while the row tiles pass over it: L1 less 16 KiB
#: for the rows' broadcasts and the output tile (16 KiB of 32 on Zen 3; 32 of 48 on Sapphire Rapids,
#: where the step products with K = 256 and 512 measured 1.05-1.2x faster than with 16 KiB)
L1_PANEL_BYTES = min(65536, max(8192, L1D_BYTES - 16384))
#: bytes of the left operand's (rows, K block) block kept in L2 while the panels pass over it
L2_ROWS_BYTES = max(131072, L2_BYTES // 8)


def lanes(itemsize: int) -> int:
    """Vector lanes for an element size (8 float32 / 4 float64 with 32-byte vectors)."""
    return VECTOR_BYTES // itemsize


def panel_width(dtype) -> int:
    """``NR``: columns per packed panel for ``dtype``."""
    return NV * lanes(np.dtype(dtype).itemsize)


def _no_unroll(module):
    """Loop metadata ``!{self, !{"llvm.loop.unroll.disable"}}`` (a loop ID refers to itself)."""
    loop_id = module.add_metadata([module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])])
    loop_id.operands = (loop_id,) + tuple(loop_id.operands)
    return loop_id


def _tile_codegen(mr: int, npan: int):
    """IR for ``c[c0 + r*ldc + j] (+)= sum_p a[a0 + r*lda + p] * bp[b0 + (j // NR)*pstride + p*NR + j % NR]``
    for r < mr rows, j < ncols (at most npan*NR columns: npan panels side by side), p < k.

    Every output element is one chain of fused multiply-adds over p in order, whatever mr and npan:
    a row's result does not depend on the rows computed beside it (batch invariance). Columns at and
    past ``ncols`` (a last, partial panel) are neither read nor written.
    """

    def codegen(context, builder, sig, args):
        a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, accumulate = args
        elem = context.get_data_type(sig.args[0].dtype)
        v = VECTOR_BYTES // context.get_abi_sizeof(elem)
        nr = NV * v
        nvec = npan * NV
        vty = ir.VectorType(elem, v)
        vptr = vty.as_pointer()
        i32 = ir.IntType(32)
        suffix = "f32" if sig.args[0].dtype == types.float32 else "f64"
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]),
                                             f"llvm.fmuladd.v{v}{suffix}")
        intp = context.get_value_type(types.intp)

        def const(value):
            return ir.Constant(intp, value)

        a_base = builder.gep(a, [a0])
        b_base = builder.gep(bp, [b0])
        c_base = builder.gep(c, [c0])
        zero = ir.Constant(vty, None)
        splat_mask = ir.Constant(ir.VectorType(i32, v), None)
        undef = ir.Constant(vty, ir.Undefined)
        a_rows = [builder.gep(a_base, [builder.mul(lda, const(r))]) for r in range(mr)]
        # column vector q of the tile: panel q // NV, vector q % NV
        b_cols = [builder.gep(b_base, [builder.add(builder.mul(pstride, const(q // NV)), const((q % NV) * v))])
                  for q in range(nvec)]
        # the output tile's cache lines are fetched (for writing) while the K loop runs
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32]),
            "llvm.prefetch.p0i8")
        for r in range(mr):
            for q in range(0, nvec, max(1, 64 // (v * context.get_abi_sizeof(elem)))):
                line = builder.gep(builder.gep(c_base, [builder.mul(ldc, const(r))]), [const(q * v)])
                builder.call(prefetch, [builder.bitcast(line, ir.IntType(8).as_pointer()), ir.Constant(i32, 1),
                                        ir.Constant(i32, 3), ir.Constant(i32, 1)])
        # the K loop, written out so that its back edge can carry "do not unroll": unrolled, the tile's
        # registers spill and every variant's code (and compile time) grows several-fold
        entry = builder.block
        cond_bb = builder.append_basic_block("tile.cond")
        body_bb = builder.append_basic_block("tile.body")
        end_bb = builder.append_basic_block("tile.end")
        builder.branch(cond_bb)
        builder.position_at_end(cond_bb)
        p = builder.phi(intp)
        p.add_incoming(const(0), entry)
        # the accumulators: SSA values carried round the loop (phi nodes), no stack slots to promote
        accs = [[builder.phi(vty) for _ in range(nvec)] for _ in range(mr)]
        for row in accs:
            for acc in row:
                acc.add_incoming(zero, entry)
        builder.cbranch(builder.icmp_signed("<", p, k), body_bb, end_bb)
        builder.position_at_end(body_bb)
        offset = builder.mul(p, const(nr))
        bv = [builder.load(builder.bitcast(builder.gep(col, [offset]), vptr), align=4) for col in b_cols]
        for r in range(mr):
            x = builder.load(builder.gep(a_rows[r], [p]))
            xv = builder.shuffle_vector(builder.insert_element(undef, x, ir.Constant(i32, 0)), undef, splat_mask)
            for q in range(nvec):
                accs[r][q].add_incoming(builder.call(fma, [xv, bv[q], accs[r][q]]), body_bb)
        p.add_incoming(builder.add(p, const(1)), body_bb)
        builder.branch(cond_bb).set_metadata("llvm.loop", _no_unroll(builder.module))
        builder.position_at_end(end_bb)
        keep = builder.icmp_signed("!=", accumulate, const(0))
        width = nvec * v
        whole_tile = builder.icmp_signed(">=", ncols, const(width))
        with builder.if_else(whole_tile, likely=True) as (whole, part):
            with whole:
                # (a branch, not a select: loading C when it is not accumulated would miss the cache
                # on every tile of a large output)
                c_ptrs = [[builder.bitcast(builder.gep(builder.gep(c_base, [builder.mul(ldc, const(r))]),
                                                       [const(q * v)]), vptr) for q in range(nvec)]
                          for r in range(mr)]
                with builder.if_else(keep) as (add, overwrite):
                    with add:
                        for r in range(mr):
                            for q in range(nvec):
                                total = builder.fadd(accs[r][q], builder.load(c_ptrs[r][q], align=4))
                                builder.store(total, c_ptrs[r][q], align=4)
                    with overwrite:
                        for r in range(mr):
                            for q in range(nvec):
                                builder.store(accs[r][q], c_ptrs[r][q], align=4)
            with part:  # a last, partial panel: the tile through a stack buffer, then ncols per row
                buf = cgutils.alloca_once(builder, elem, size=mr * width)
                for r in range(mr):
                    for q in range(nvec):
                        dst = builder.bitcast(builder.gep(buf, [const(r * width + q * v)]), vptr)
                        builder.store(accs[r][q], dst, align=4)
                with cgutils.for_range(builder, const(mr), intp=intp) as rows:
                    c_row = builder.gep(c_base, [builder.mul(ldc, rows.index)])
                    b_row = builder.gep(buf, [builder.mul(rows.index, const(width))])
                    with cgutils.for_range(builder, ncols, intp=intp) as cols:
                        sptr = builder.gep(c_row, [cols.index])
                        old = builder.select(keep, builder.load(sptr), ir.Constant(elem, 0.0))
                        builder.store(builder.fadd(builder.load(builder.gep(b_row, [cols.index])), old), sptr)
        return context.get_dummy_value()

    return codegen


def _make_tile(mr: int, npan: int):
    @intrinsic
    def tile(typingctx, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, accumulate):
        """C tile (mr, ncols <= npan*NR) = A rows (mr, k) @ npan packed panels (k, NR each) (``+=`` when
        accumulate != 0); a, bp, c the arrays' data pointers (:func:`_data`), element offsets from
        each, unchecked: ``packed_matmul_into`` checks every bound."""
        pointers = (a, bp, c)
        if not all(isinstance(x, types.CPointer) for x in pointers) or len({x.dtype for x in pointers}) != 1:
            return None
        if a.dtype not in (types.float32, types.float64):
            return None
        i = types.intp
        return types.void(a, i, i, bp, i, i, i, c, i, i, i, i), _tile_codegen(mr, npan)

    return tile


@intrinsic
def _data(typingctx, arr):
    """A pointer to ``arr``'s first element (typed by its dtype). The tiles take pointers, not arrays:
    a compiled function taking arrays increments and decrements each one's reference count (atomic
    operations) at every call, which cost ~60 ns per tile, a third of a (8, 32) @ (32, 32) tile."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        return context.make_array(sig.args[0])(context, builder, args[0]).data

    return types.CPointer(arr.dtype)(arr), codegen


@intrinsic
def _copy_panel_row(typingctx, dst, d0, src, s0):
    """``dst[d0 : d0+NR] = src[s0 : s0+NR]`` as NV vector moves (no loop, no aliasing check: the
    packing's inner copy, 16 float32 elements, would cost more in loop set-up than in moves); offsets
    unchecked, :func:`pack_panels` keeps them in bounds."""
    if not (isinstance(dst, types.Array) and isinstance(src, types.Array) and dst.dtype == src.dtype
            and dst.dtype in (types.float32, types.float64)):
        return None

    def codegen(context, builder, sig, args):
        dst_arr, d_off, src_arr, s_off = args
        elem = context.get_data_type(sig.args[0].dtype)
        v = VECTOR_BYTES // context.get_abi_sizeof(elem)
        vptr = ir.VectorType(elem, v).as_pointer()
        intp = context.get_value_type(types.intp)
        d_base = builder.gep(context.make_array(sig.args[0])(context, builder, dst_arr).data, [d_off])
        s_base = builder.gep(context.make_array(sig.args[2])(context, builder, src_arr).data, [s_off])
        for q in range(NV):
            offset = ir.Constant(intp, q * v)
            value = builder.load(builder.bitcast(builder.gep(s_base, [offset]), vptr), align=4)
            builder.store(value, builder.bitcast(builder.gep(d_base, [offset]), vptr), align=4)
        return context.get_dummy_value()

    return types.void(dst, types.intp, src, types.intp), codegen


# the tiles. Full ones: MR rows, one panel. The rows left over (fewer than MR) go through tiles of few
# rows over several panels at once, so that each tile has enough independent accumulators (>= 8
# vectors) to hide the FMA latency: one row over ONE_ROW_PANELS panels, two rows over 2; with 32 vector
# registers three and four rows over 2 (12 and 16 accumulators), five and six over one, seven as
# 4 + 3; with 16, three to five rows over one. One-panel versions take a last, odd
# panel. Every tile is compiled into each signature of packed_matmul_into (~0.15 s per accumulator
# vector): no more of them.
_tile_full = _make_tile(MR, 1)
_t1_4, _t1_2, _t1_1 = _make_tile(1, 4), _make_tile(1, 2), _make_tile(1, 1)
_t2_2, _t2_1 = _make_tile(2, 2), _make_tile(2, 1)
_t3_1, _t4_1, _t5_1 = _make_tile(3, 1), _make_tile(4, 1), _make_tile(5, 1)


@register_jitable
def _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc):
    # one or two rows: one branch per tile, each an inlined micro-kernel with its tile in registers
    if m == 1:
        if npan == 4:
            _t1_4(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif npan == 2:
            _t1_2(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        else:
            _t1_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
    elif npan == 2:
        _t2_2(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
    else:
        _t2_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)


if _N_REGS >= 32:
    _t1_6, _t3_2, _t4_2, _t6_1 = _make_tile(1, 6), _make_tile(3, 2), _make_tile(4, 2), _make_tile(6, 1)
    #: rows left over (< MR) -> rows of their first tile (7 = 4 + 3)
    _REST_SPLIT = (0, 1, 2, 3, 4, 5, 6, 4)
    #: rows of a tile -> panels side by side in it
    _REST_PANELS = (0, ONE_ROW_PANELS, 2, 2, 2, 1, 1)

    @register_jitable
    def _tile_rest(m, npan, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc):
        """One tile of ``m`` rows (as _REST_SPLIT) over ``npan`` panels (as _REST_PANELS, or fewer at
        the last panels), C += / = A @ panels as the tiles (``_tile_codegen``)."""
        if m == 1 and npan == 6:
            _t1_6(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m <= 2:
            _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m == 3:
            if npan == 2:
                _t3_2(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
            else:
                _t3_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m == 4:
            if npan == 2:
                _t4_2(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
            else:
                _t4_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m == 5:  # five and six rows: one panel, one pass (measured faster than 4 + 1, 4 + 2, 3 + 3)
            _t5_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        else:
            _t6_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
else:
    _REST_SPLIT = (0, 1, 2, 3, 4, 5)
    _REST_PANELS = (0, ONE_ROW_PANELS, 2, 1, 1, 1)

    @register_jitable
    def _tile_rest(m, npan, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc):
        """One tile of ``m`` rows (as _REST_SPLIT) over ``npan`` panels (as _REST_PANELS, or fewer at
        the last panels), C += / = A @ panels as the tiles (``_tile_codegen``)."""
        if m <= 2:
            _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m == 3:
            _t3_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        elif m == 4:
            _t4_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)
        else:
            _t5_1(a, a0, lda, bp, b0, pstride, k, c, c0, ldc, ncols, acc)


@njit(cache=True, nogil=True, error_model="numpy")
def pack_panels(u, up):
    """Pack ``u (K, N)`` into ``up (P, K, NR)`` (P = ceil(N / NR); padding columns zero)."""
    k, n = u.shape
    n_panels, _, nr = up.shape
    if up.shape[1] != k or n_panels * nr < n or (n_panels - 1) * nr >= max(n, 1):
        raise ValueError("pack_panels: packed buffer does not match the operand")
    if nr != NV * (VECTOR_BYTES // u.itemsize):
        raise ValueError("pack_panels: panel width does not match the dtype")
    n_full = n // nr
    tail = n - n_full * nr
    # flat indices, no per-row views (a view costs more than copying its 16 elements), and each full
    # panel row copied by vector moves
    flat = up.reshape(n_panels * k * nr)
    src = np.ascontiguousarray(u).reshape(k * n)
    for i in range(k):
        row = i * n
        for p in range(n_full):
            base = (p * k + i) * nr
            lo = row + p * nr
            _copy_panel_row(flat, base, src, lo)
        if tail > 0:
            base = (n_full * k + i) * nr
            lo = row + n_full * nr
            for j in range(tail):
                flat[base + j] = src[lo + j]
            for j in range(tail, nr):
                flat[base + j] = 0.0


@register_jitable
def pack(u):
    """``u (K, N)`` packed into panels for :func:`packed_matmul_into`: a new ``(P, K, NR)`` array.

    ``register_jitable`` (compiled into its callers, and plain Python when called from Python), like
    :func:`pack_stack`: a dispatcher of its own would add a compile and a cache load to the first call
    of every process (cold start: the LSTM model's reached 10.0 s with both)."""
    k, n = u.shape
    nr = NV * (VECTOR_BYTES // u.itemsize)
    up = empty_aligned(((n + nr - 1) // nr, k, nr), u.dtype)
    pack_panels(u, up)
    return up


@register_jitable
def pack_stack(u3):
    """``u3 (G, K, N)``, G operands (one per gate), packed: a new ``(G, P, K, NR)`` array."""
    g, k, n = u3.shape
    nr = NV * (VECTOR_BYTES // u3.itemsize)
    up = empty_aligned((g, (n + nr - 1) // nr, k, nr), u3.dtype)
    for i in range(g):
        pack_panels(u3[i], up[i])
    return up


def packed_shape(k: int, n: int, dtype) -> tuple[int, int, int]:
    """Shape of ``u (k, n)`` packed (what :func:`pack` allocates)."""
    nr = panel_width(dtype)
    return (-(-n // nr), k, nr)


@njit(cache=True, nogil=True, error_model="numpy")
def packed_matmul_into(a, up, out):
    """``out[:] = a @ u`` for ``a (m, K)``, ``out (m, N)`` and ``up = pack(u)``; a and out may be row
    blocks of wider buffers (any row stride, unit column stride).

    Loop order: K in blocks whose panel slice (kc, NR) fills ``L1_PANEL_BYTES``; within one, panel
    outer and row tiles inner, so the panel block stays in L1 while every row tile of ``a`` passes over
    it. With many rows (more than one L2 block of ``a``) and a K block of all panels that fits in half
    of L2, row blocks go outermost instead, so that their block of ``out`` stays in L2 across the K
    blocks. The K blocks are the same for every row, so a row's sums do not depend on the other rows.
    """
    m, k = a.shape
    n = out.shape[1]
    n_panels, kp, nr = up.shape
    if kp != k or out.shape[0] != m or n_panels != (n + nr - 1) // nr or nr != NV * (VECTOR_BYTES // a.itemsize):
        raise ValueError("packed_matmul_into: operand shapes do not match")
    if m == 0 or n == 0:
        return
    if k == 0:
        out[:] = 0.0
        return
    isz = a.itemsize
    if (k > 1 and a.strides[1] != isz) or (n > 1 and out.strides[1] != isz) or not up.flags.c_contiguous:
        raise ValueError("packed_matmul_into: operands need unit column strides")
    lda = a.strides[0] // isz
    ldc = out.strides[0] // isz
    if (m > 1 and (a.strides[0] % isz != 0 or lda < k or out.strides[0] % isz != 0 or ldc < n)):
        raise ValueError("packed_matmul_into: rows of the operands overlap")
    pstride = k * nr
    ap, upp, cp = _data(a), _data(up), _data(out)  # the tiles take pointers (see _data)
    kc = max(16, L1_PANEL_BYTES // (nr * isz))
    # row blocks of whole tiles whose (mc, kc) block of ``a`` stays in L2 while the panels pass
    mc = max(MR, L2_ROWS_BYTES // (kc * isz) // MR * MR)
    full = m - m % MR
    if full > mc and min(k, kc) * n_panels * nr * isz <= L2_BYTES // 2:
        # many rows (an input projection) against a K block of panels that stays in L2: row blocks
        # outermost, each small enough that its (rows, N) block of ``out`` also stays in L2 across the
        # K blocks (the other order writes and re-reads all of ``out`` from memory once per K block).
        # S4's projection on AVX-512: 94 -> 134-139 GFLOP/s. Each row's sums run over the same K
        # blocks in the same order either way.
        mc = max(MR, min(mc, L2_BYTES // 8 // (n * isz)) // MR * MR)
        for i0 in range(0, full, mc):
            i1 = min(full, i0 + mc)
            for k0 in range(0, k, kc):
                kb = min(kc, k - k0)
                for p in range(n_panels):
                    ncols = min(nr, n - p * nr)
                    for i in range(i0, i1, MR):
                        _tile_full(ap, i * lda + k0, lda, upp, p * pstride + k0 * nr, pstride, kb, cp,
                                   i * ldc + p * nr, ldc, ncols, k0)
        full_done = True
    else:
        full_done = False
    for k0 in range(0, k, kc):
        kb = min(kc, k - k0)
        if not full_done:
            for i0 in range(0, full, mc):
                i1 = min(full, i0 + mc)
                for p in range(n_panels):
                    ncols = min(nr, n - p * nr)
                    for i in range(i0, i1, MR):
                        _tile_full(ap, i * lda + k0, lda, upp, p * pstride + k0 * nr, pstride, kb, cp,
                                   i * ldc + p * nr, ldc, ncols, k0)
        # the rows left over, in tiles of few rows over several panels (_REST_SPLIT, _REST_PANELS)
        r0 = full
        while r0 < m:
            rows = _REST_SPLIT[m - r0]
            width = _REST_PANELS[rows]
            p = 0
            while p < n_panels:
                left = n_panels - p
                npan = width if left >= width else 4 if rows == 1 and left >= 4 else 2 if rows <= 2 and left >= 2 else 1
                ncols = min(npan * nr, n - p * nr)
                _tile_rest(rows, npan, ap, r0 * lda + k0, lda, upp, p * pstride + k0 * nr, pstride, kb, cp,
                           r0 * ldc + p * nr, ldc, ncols, k0)
                p += npan
            r0 += rows
