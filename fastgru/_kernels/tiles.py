"""The register tiles of the packed products: ``(mr, NR * npan)`` blocks of ``A @ panels`` kept in
vector registers over the whole K loop, written in LLVM IR on LLVM's generic vector type (see
``packed``'s docstring), and which tile takes which rows (``tile_full``, ``tile_rest``)."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

from .simd import MR, N_REGS, NV, ONE_ROW_PANELS, VECTOR_BYTES


def _no_unroll(module):
    """Loop metadata ``!{self, !{"llvm.loop.unroll.disable"}}`` (a loop ID refers to itself)."""
    loop_id = module.add_metadata([module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])])
    loop_id.operands = (loop_id,) + tuple(loop_id.operands)
    return loop_id


def _tile_codegen(mr: int, npan: int, a_transposed: bool = False):
    """IR for ``c[c0 + r*ldc + j] (+)= sum_p a[a0 + r*lda + p] * bp[b0 + (j // NR)*pstride + p*bstep + j % NR]``
    for r < mr rows, j < ncols (at most npan*NR columns: npan panels side by side), p < k; with
    ``a_transposed``, ``a[a0 + p*lda + r]`` instead (the left operand read as the transpose of a
    row-major (k, rows) array: a tile's mr values of one p are adjacent).

    Every output element is one chain of fused multiply-adds over p in order, whatever mr and npan:
    a row's result does not depend on the rows computed beside it (batch invariance). Columns at and
    past ``ncols`` (a last, partial panel) are neither read nor written.
    """

    def codegen(context, builder, sig, args):
        a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, accumulate = args
        elem = context.get_data_type(sig.args[0].dtype)
        v = VECTOR_BYTES // context.get_abi_sizeof(elem)
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
        a_rows = None if a_transposed else [builder.gep(a_base, [builder.mul(lda, const(r))]) for r in range(mr)]
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
        offset = builder.mul(p, bstep)
        bv = [builder.load(builder.bitcast(builder.gep(col, [offset]), vptr), align=4) for col in b_cols]
        a_step = builder.gep(a_base, [builder.mul(p, lda)]) if a_transposed else None
        for r in range(mr):
            x = builder.load(builder.gep(a_step, [const(r)]) if a_transposed else builder.gep(a_rows[r], [p]))
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


def _make_tile(mr: int, npan: int, a_transposed: bool = False):
    @intrinsic
    def tile(typingctx, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, accumulate):
        """C tile (mr, ncols <= npan*NR) = A rows (mr, k) @ npan panels (k, NR each; panel rows ``bstep``
        apart, panels ``pstride`` apart: packed, or a row-major operand read in place) (``+=`` when
        accumulate != 0); a, bp, c the arrays' data pointers (:func:`_data`), element offsets from
        each, unchecked: the entry points (``packed_matmul_into``, ``operand_matmul_into``, ...) check every
        bound. A transposed tile reads A's
        element (r, p) at ``a0 + p*lda + r``."""
        pointers = (a, bp, c)
        if not all(isinstance(x, types.CPointer) for x in pointers) or len({x.dtype for x in pointers}) != 1:
            return None
        if a.dtype not in (types.float32, types.float64):
            return None
        i = types.intp
        return types.void(a, i, i, bp, i, i, i, i, c, i, i, i, i), _tile_codegen(mr, npan, a_transposed)

    return tile


# the tiles. Full ones: MR rows, one panel. The rows left over (fewer than MR) go through tiles of few
# rows over several panels at once, so that each tile has enough independent accumulators (>= 8
# vectors) to hide the FMA latency: one row over ONE_ROW_PANELS panels, two rows over 2; with 32 vector
# registers three and four rows over 2 (12 and 16 accumulators), five and six over one, seven as
# 4 + 3; with 16, three to five rows over one. One-panel versions take a last, odd
# panel. Every tile is compiled into the packed product's loops (``packed._packed_loops``, once per
# dtype, ~0.15 s per accumulator vector): no more of them.
tile_full = _make_tile(MR, 1)
#: the full tile reading its left operand transposed: the weight-gradient products ``A^T B``
#: (``packed.matmul_tn_into``)
tile_full_t = _make_tile(MR, 1, a_transposed=True)
_t1_4, _t1_2, _t1_1 = _make_tile(1, 4), _make_tile(1, 2), _make_tile(1, 1)
_t2_2, _t2_1 = _make_tile(2, 2), _make_tile(2, 1)
_t3_1, _t4_1, _t5_1 = _make_tile(3, 1), _make_tile(4, 1), _make_tile(5, 1)


@register_jitable
def _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc):
    # one or two rows: one branch per tile, each an inlined micro-kernel with its tile in registers
    if m == 1:
        if npan == 4:
            _t1_4(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif npan == 2:
            _t1_2(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        else:
            _t1_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
    elif npan == 2:
        _t2_2(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
    else:
        _t2_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)


if N_REGS >= 32:
    _t1_6, _t3_2, _t4_2, _t6_1 = _make_tile(1, 6), _make_tile(3, 2), _make_tile(4, 2), _make_tile(6, 1)
    #: rows left over (< MR) -> rows of their first tile (7 = 4 + 3)
    REST_SPLIT = (0, 1, 2, 3, 4, 5, 6, 4)
    #: rows of a tile -> panels side by side in it
    REST_PANELS = (0, ONE_ROW_PANELS, 2, 2, 2, 1, 1)

    @register_jitable
    def tile_rest(m, npan, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc):
        """One tile of ``m`` rows (as REST_SPLIT) over ``npan`` panels (as REST_PANELS, or fewer at
        the last panels), C += / = A @ panels as the tiles (``_tile_codegen``)."""
        if m == 1 and npan == 6:
            _t1_6(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m <= 2:
            _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m == 3:
            if npan == 2:
                _t3_2(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
            else:
                _t3_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m == 4:
            if npan == 2:
                _t4_2(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
            else:
                _t4_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m == 5:  # five and six rows: one panel, one pass (measured faster than 4 + 1, 4 + 2, 3 + 3)
            _t5_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        else:
            _t6_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
else:
    REST_SPLIT = (0, 1, 2, 3, 4, 5)
    REST_PANELS = (0, ONE_ROW_PANELS, 2, 1, 1, 1)

    @register_jitable
    def tile_rest(m, npan, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc):
        """One tile of ``m`` rows (as REST_SPLIT) over ``npan`` panels (as REST_PANELS, or fewer at
        the last panels), C += / = A @ panels as the tiles (``_tile_codegen``)."""
        if m <= 2:
            _tile_1_2(m, npan, a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m == 3:
            _t3_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        elif m == 4:
            _t4_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
        else:
            _t5_1(a, a0, lda, bp, b0, pstride, bstep, k, c, c0, ldc, ncols, acc)
