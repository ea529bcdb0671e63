"""Step products against a pre-packed right operand, through a register-tile micro-kernel.

The recurrent product of every time step is ``(rows, K) @ (K, N)`` with the same right operand U
for the whole sequence. BLAS re-packs U into its panel layout at every call (and pays a call and a
dispatch per step); here U is packed once per call of a time loop (or, when small, read where it
lies: ``operand``), and each step runs a micro-kernel that keeps an (mr, NR) tile of the product in
vector registers over the whole K loop.

Packed layout, ``pack_panels``: ``up (P, K, NR)``, panel ``p`` holding columns ``p*NR : (p+1)*NR``
of U (the last one zero-padded), so one panel row is ``NV`` consecutive vectors.

The micro-kernel (``tiles``) is written in LLVM IR (``numba.extending.intrinsic``) with LLVM's
*generic* vector type ``<V x float>`` and ``llvm.fmuladd``: LLVM lowers it for whatever CPU Numba
compiles for (AVX-512, AVX2, plain SSE), so nothing here can emit an instruction the CPU lacks. Only
the tile size follows the CPU (``simd``, from LLVM's host feature list): the vector width ``V`` (64
bytes with AVX-512F, else 32) and the rows per tile ``MR`` (as many as the vector registers hold: 16
registers without AVX-512, 32 with it). This module holds the layout (``pack``) and the loops over
tiles and cache blocks (``packed_matmul_into``, which checks the operands, then calls ``_packed_loops``:
compiled once per dtype and reached through a cell, ``_LoopsSlot``, rather than compiled again into
every time loop).
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import cfunc, njit, types
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic, register_jitable

from .aligned import empty_aligned, starts_on_line
from .simd import L1_PANEL_BYTES, L2_BYTES, L2_ROWS_BYTES, MR, NV, VECTOR_BYTES, panel_width
from .tiles import REST_PANELS, REST_SPLIT, tile_full, tile_rest


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


@intrinsic
def _pointee_size(typingctx, ptr):
    """The size in bytes of what ``ptr`` points to, a compile-time constant."""
    if not isinstance(ptr, types.CPointer):
        return None

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(sig.args[0].dtype)))

    return types.intp(ptr), codegen


def _packed_loops(ap, lda, upp, n_panels, k, cp, ldc, m, n, pstride, bstep):
    """The loops over cache blocks and register tiles of :func:`packed_matmul_into`, on pointers
    (``ap``: ``a``'s first element, row stride ``lda`` elements; ``upp``: the ``(n_panels, k, NR)``
    packed operand; ``cp``: ``out``'s first element, row stride ``ldc``), shapes already checked.

    Compiled once per dtype as a C-callable function, which every caller calls through a cell
    (:class:`_LoopsSlot`): inlined, the tiles' IR was optimised again inside each of the dozen time loops
    that call it, for both dtypes (the GRU's first call on a fresh install: 15.6 s, 9.8 s without).

    Loop order: K in blocks whose panel slice (kc, NR) fills ``L1_PANEL_BYTES``; within one, panel
    outer and row tiles inner, so the panel block stays in L1 while every row tile of ``a`` passes over
    it. With many rows (more than one L2 block of ``a``) and a K block of all panels that fits in half
    of L2, row blocks go outermost instead, so that their block of ``out`` stays in L2 across the K
    blocks. The K blocks are the same for every row, so a row's sums do not depend on the other rows.
    """
    isz = _pointee_size(ap)
    nr = NV * (VECTOR_BYTES // isz)
    kc = max(16, L1_PANEL_BYTES // (nr * isz))
    if m < MR and k <= kc:
        # a step product of few rows (one sequence; a thread's share of a small batch) in one K block:
        # its tiles straight away (the blocking below costs ~50 ns of trip counts and divisions, a
        # sixth of a batch-of-one step)
        _rest_rows(0, m, n_panels, ap, 0, lda, upp, 0, pstride, bstep, k, cp, 0, ldc, n, nr, 0)
        return
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
                        tile_full(ap, i * lda + k0, lda, upp, p * pstride + k0 * bstep, pstride, bstep, kb, cp,
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
                        tile_full(ap, i * lda + k0, lda, upp, p * pstride + k0 * bstep, pstride, bstep, kb, cp,
                                   i * ldc + p * nr, ldc, ncols, k0)
        # the rows left over, in tiles of few rows over several panels (REST_SPLIT, REST_PANELS)
        _rest_rows(full, m, n_panels, ap, k0, lda, upp, k0 * bstep, pstride, bstep, kb, cp, 0, ldc, n, nr, k0)


@register_jitable
def _rest_rows(r0, m, n_panels, ap, a0, lda, upp, b0, pstride, bstep, kb, cp, c0, ldc, n, nr, accumulate):
    """Rows ``r0:m`` (fewer than MR) of one K block in tiles of few rows over several panels
    (``REST_SPLIT``, ``REST_PANELS``); ``a0``, ``b0``, ``c0``: the block's offsets in a, the panels
    and c."""
    while r0 < m:
        rows = REST_SPLIT[m - r0]
        width = REST_PANELS[rows]
        p = 0
        while p < n_panels:
            left = n_panels - p
            npan = width if left >= width else 4 if rows == 1 and left >= 4 else 2 if rows <= 2 and left >= 2 else 1
            ncols = min(npan * nr, n - p * nr)
            tile_rest(rows, npan, ap, r0 * lda + a0, lda, upp, p * pstride + b0, pstride, bstep, kb, cp,
                      r0 * ldc + p * nr + c0, ldc, ncols, accumulate)
            p += npan
        r0 += rows


#: argument kinds of a slot's function: "p" a pointer to the dtype, "i" an intp
_C_TYPES = {"p": ctypes.c_void_p, "i": ctypes.c_ssize_t}


class _LoopsSlot:
    """Where the callers find ``_packed_loops`` (or another loop function of pointers and sizes,
    ``func``) for one dtype: a pointer-sized cell registered with LLVM under a symbol named after this
    module (two copies of the package in one process keep their own) when the module is imported, and
    read by the callers' code, compiled or loaded from Numba's cache, at every call. It first holds a
    resolver (a ctypes callback): the first call compiles the loops (or loads them from Numba's cache),
    points the cell at them and runs them; later calls go straight there. So importing fastgru compiles
    nothing, and a dtype's loops are compiled only once one is used."""

    def __init__(self, dtype, func=None, kinds: str = "pipiipiiiii"):
        self.dtype = dtype
        self.func = _packed_loops if func is None else func
        ptr = types.CPointer(dtype)
        self.signature = types.void(*[ptr if kind == "p" else types.intp for kind in kinds])
        # (the argument kinds in the name: a caller cached against another signature of the loops finds
        # no symbol to link, rather than calling these with arguments they do not take)
        self.symbol = f"{__name__}.{self.func.__name__}.{kinds}.{dtype}"
        self.cell = ctypes.c_void_p()
        self.compiled = None
        c_type = ctypes.CFUNCTYPE(None, *[_C_TYPES[kind] for kind in kinds])
        self._c_type = c_type
        self._resolver = c_type(self._resolve_and_run)  # (kept: the cell holds its address)
        self.cell.value = ctypes.cast(self._resolver, ctypes.c_void_p).value
        llvm_binding.add_symbol(self.symbol, ctypes.addressof(self.cell))

    def load(self):
        """The loops for this dtype, compiled or loaded from Numba's cache (once), and the cell set."""
        with global_compiler_lock:
            if self.compiled is None:
                self.compiled = cfunc(self.signature, cache=True, error_model="numpy")(self.func)
                self.cell.value = self.compiled.address
        return self.compiled

    def _resolve_and_run(self, *args):
        try:
            loops = self.load()
        except BaseException as exc:  # noqa: BLE001  (a ctypes callback cannot raise into the kernel)
            # the kernel that called would go on with its product unwritten: stop rather than answer wrong
            sys.stderr.write(f"fastgru: compiling the packed product's loops ({self.func.__name__}, {self.dtype}) "
                             f"failed: {exc!r}\n")
            sys.stderr.flush()
            os.abort()
        self._c_type(loops.address)(*args)

    def call_codegen(self, builder, context, args):
        """IR of a call of the loops through the cell (for an intrinsic's codegen)."""
        fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in self.signature.args])
        cell = builder.module.globals.get(self.symbol)
        if cell is None:
            cell = ir.GlobalVariable(builder.module, fnty.as_pointer(), name=self.symbol)
            cell.linkage = "external"
        builder.call(builder.load(cell), args)


#: the callers' way to ``_packed_loops``, per dtype
_LOOPS = {dtype: _LoopsSlot(dtype) for dtype in (types.float32, types.float64)}


@intrinsic
def _tile_loops(typingctx, ap, lda, upp, n_panels, k, cp, ldc, m, n, pstride, bstep):
    """A call of ``_packed_loops`` for ``ap``'s dtype, through its cell (:class:`_LoopsSlot`)."""
    if not (isinstance(ap, types.CPointer) and ap.dtype in _LOOPS and upp == ap and cp == ap):
        return None
    slot = _LOOPS[ap.dtype]
    slot.load()  # now, where an error reaches the caller (a cached caller resolves on its first call)

    def codegen(context, builder, sig_, args):
        slot.call_codegen(builder, context, args)
        return context.get_dummy_value()

    return slot.signature, codegen


@njit(cache=True, nogil=True, error_model="numpy")
def packed_matmul_into(a, up, out):
    """``out[:] = a @ u`` for ``a (m, K)``, ``out (m, N)`` and ``up = pack(u)``; a and out may be row
    blocks of wider buffers (any row stride, unit column stride). Checks the shapes and strides, then
    runs the loops over tiles (``_packed_loops``, compiled once per dtype)."""
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
    _tile_loops(_data(a), lda, _data(up), n_panels, k, _data(out), ldc, m, n, k * nr, nr)


@njit(cache=True, nogil=True, error_model="numpy")
def packed_rows_into(a_flat, a0, lda, m, up, out):
    """``out[i] = a_flat[a0 + i*lda : a0 + i*lda + K] @ u`` for ``i < m``, ``up = pack(u)`` (K, N):
    the left operand's rows read from a flat array at any row step, overlapping ones included (a
    convolution's windows: row step = stride x channels, width = taps x channels). ``a_flat`` 1-D
    C-contiguous; ``out (m, N)`` any row stride, unit column stride. Every row is checked to lie
    inside ``a_flat``."""
    n_panels, k, nr = up.shape
    n = out.shape[1]
    if out.shape[0] != m or n_panels != (n + nr - 1) // nr or nr != NV * (VECTOR_BYTES // a_flat.itemsize):
        raise ValueError("packed_rows_into: operand shapes do not match")
    if m == 0 or n == 0:
        return
    if a0 < 0 or lda < 0 or a0 + (m - 1) * lda + k > a_flat.shape[0]:
        raise ValueError("packed_rows_into: rows outside the flat operand")
    if k == 0:
        out[:] = 0.0
        return
    isz = a_flat.itemsize
    if ((n > 1 and out.strides[1] != isz) or not up.flags.c_contiguous
            or (a_flat.shape[0] > 1 and a_flat.strides[0] != isz)):
        raise ValueError("packed_rows_into: operands need unit column strides")
    ldc = out.strides[0] // isz
    if m > 1 and (out.strides[0] % isz != 0 or ldc < n):
        raise ValueError("packed_rows_into: rows of the output overlap")
    _tile_loops(_data(a_flat[a0:]), lda, _data(up), n_panels, k, _data(out), ldc, m, n, k * nr, nr)


#: a right operand of at most this many bytes whose width is whole panels, multiplied by at least
#: MR rows at a time, is read where it lies (row-major) rather than packed: it stays in cache for the
#: whole loop either way, full tiles are bound by their multiply-adds (not their loads), and packing
#: it costs a short sequence's call more than the layout gains (S2: 1.7 us of 85). With one or two
#: rows a tile is bound by its loads, and reads packed panels 1.15-1.35x faster: those stay packed.
#: So do rows of a multiple of 512 bytes (an LSTM's 4H with H a power of two): a panel's rows then
#: fall into few L1 sets, and full tiles read them 1-8% slower than packed panels, about what
#: packing costs.
UNPACKED_MAX_BYTES = L2_BYTES // 8


@njit(cache=True, nogil=True, error_model="numpy")
def operand(u, rows):
    """``u (K, N)`` as the products of ``rows`` rows at a time read it: ``(flat, K, N, pstride, bstep)``,
    panel ``p``'s row ``i`` at ``flat[p*pstride + i*bstep :][:NR]`` (for :func:`operand_matmul_into`).
    Read in place (row-major: pstride NR, bstep N; no copy) when the note on ``UNPACKED_MAX_BYTES``
    allows it (size, whole panels, rows not a multiple of 512 bytes, at least MR rows) and it is
    C-contiguous and starts on a cache line (else every vector load of a row would span two lines),
    else packed (:func:`pack`: pstride K*NR, bstep NR). The products' sums are the same either way (a
    tile's multiply-adds do not depend on where its panel rows lie). Compiled on its own (one
    function for every caller: inlined into each, it cost the LSTM's first call ~0.3 s more)."""
    k, n = u.shape
    nr = NV * (VECTOR_BYTES // u.itemsize)
    if (rows >= MR and n % nr == 0 and (n * u.itemsize) % 512 != 0 and k * n * u.itemsize <= UNPACKED_MAX_BYTES
            and u.flags.c_contiguous):
        if starts_on_line(u):  # (rows of whole panels then start on cache lines too)
            c = np.ascontiguousarray(u)  # (u itself when its type is C-contiguous, as the callers' are)
            return c.reshape(k * n), k, n, nr, n
    up = pack(u)
    return up.reshape(up.shape[0] * k * nr), k, n, k * nr, nr


@njit(cache=True, nogil=True, error_model="numpy")
def operand_matmul_into(a, b, out):
    """``out[:] = a @ u`` for ``a (m, K)``, ``out (m, N)`` and ``b = operand(u)``; a and out may be row
    blocks of wider buffers (any row stride, unit column stride). Checks that every panel row the
    loops read lies inside ``b``'s flat array (:func:`step_plan`), then runs them (``_packed_loops``)."""
    step_matmul_into(a, b, out, step_plan(a, b, out))


@register_jitable
def step_plan(a, b, out):
    """The checks of a product ``a (m, K) @ u -> out (m, N)``, ``b = operand(u)``: shapes, every panel
    row the loops read inside ``b``'s flat array, unit column strides, rows that do not overlap.
    Returns the plan ``(lda, n_panels, K, ldc, m, N, pstride, bstep, flat size)`` that
    :func:`step_matmul_into` runs. A time loop plans its step product once and runs it every step:
    made at every step, the checks cost ~40 ns of a batch-of-one GRU step's ~0.35 us (measured in a
    compiled loop, 2026-12-05), while the step's comparison with the plan costs nothing measurable."""
    flat, k, n, pstride, bstep = b
    m = a.shape[0]
    nr = NV * (VECTOR_BYTES // a.itemsize)
    n_panels = (n + nr - 1) // nr
    if a.shape[1] != k or out.shape[0] != m or out.shape[1] != n:
        raise ValueError("packed product: operand shapes do not match")
    size = flat.shape[0]
    lda, ldc = k, n  # (one row: its row stride is never read)
    if m == 0 or n == 0 or k == 0:  # nothing read (an empty array's strides may be anything)
        return (lda, n_panels, k, ldc, m, n, pstride, bstep, size)
    if (pstride < 0 or bstep < 0 or pstride > size or bstep > size
            or (n_panels - 1) * pstride + (k - 1) * bstep + nr > size):
        raise ValueError("packed product: the operand's panels lie outside its array")
    isz = a.itemsize
    if (k > 1 and a.strides[1] != isz) or (n > 1 and out.strides[1] != isz) or flat.strides[0] != isz:
        raise ValueError("packed product: operands need unit column strides")
    if m > 1:
        if a.strides[0] % isz != 0 or out.strides[0] % isz != 0:
            raise ValueError("packed product: row strides are not whole elements")
        lda, ldc = a.strides[0] // isz, out.strides[0] // isz
        if lda < k or ldc < n:
            raise ValueError("packed product: rows of the operands overlap")
    return (lda, n_panels, k, ldc, m, n, pstride, bstep, size)


@register_jitable
def step_matmul_into(a, b, out, plan):
    """``out[:] = a @ u`` for the arrays :func:`step_plan` checked: their shapes, row strides, unit
    column strides and the operand's size must be the planned ones (compared here, so the product is
    safe whatever is passed)."""
    lda, n_panels, k, ldc, m, n, pstride, bstep, size = plan
    flat = b[0]
    isz = a.itemsize
    if a.shape[0] != m or a.shape[1] != k or out.shape[0] != m or out.shape[1] != n or flat.shape[0] != size:
        raise ValueError("packed product: the arrays are not the planned ones")
    if m == 0 or n == 0:
        return
    if k == 0:
        out[:] = 0.0
        return
    if ((m > 1 and (a.strides[0] != lda * isz or out.strides[0] != ldc * isz))
            or (k > 1 and a.strides[1] != isz) or (n > 1 and out.strides[1] != isz) or flat.strides[0] != isz):
        raise ValueError("packed product: the arrays are not the planned ones")
    _tile_loops(_data(a), lda, _data(flat), n_panels, k, _data(out), ldc, m, n, pstride, bstep)
