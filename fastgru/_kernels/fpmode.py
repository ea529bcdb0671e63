"""Denormal floats flushed to zero inside the BPTT loops and Adam's update (x86's MXCSR flags FTZ and DAZ).

Gradients that vanish over a long sequence pass through the subnormal range (below 1.2e-38 in
float32) on their way to zero, and x86 cores take a slow microcode path for every operation on a
subnormal number: a GRU backward over 1000 steps measured 5x slower with gradients that vanish than
with the same work on normal numbers (67 ms against 13.5 ms, S5's shape). TensorFlow runs its kernels
with FTZ and DAZ set, so Keras's gradients are flushed the same way.

:func:`flush_denormals` sets both flags for the calling thread and returns the previous MXCSR;
:func:`restore_fp_mode` puts it back. A kernel calls the pair around its loop, so Python code and other
libraries never run with the flags changed. On other architectures both are no-ops (the values there
are computed with subnormals, correctly, only more slowly on some cores).
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: MXCSR bits: FTZ (flush results to zero, bit 15) and DAZ (read subnormal inputs as zero, bit 6)
FTZ_DAZ = 0x8040
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _mxcsr_functions(module):
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    return (cgutils.get_or_insert_function(module, fnty, "llvm.x86.sse.stmxcsr"),
            cgutils.get_or_insert_function(module, fnty, "llvm.x86.sse.ldmxcsr"), i8p)


@intrinsic
def flush_denormals(typingctx):
    """Set FTZ and DAZ in this thread's MXCSR; returns the previous MXCSR (0 off x86)."""
    sig = types.uint32()

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not X86:
            return ir.Constant(i32, 0)
        stmxcsr, ldmxcsr, i8p = _mxcsr_functions(builder.module)
        slot = cgutils.alloca_once(builder, i32)
        builder.call(stmxcsr, [builder.bitcast(slot, i8p)])
        old = builder.load(slot)
        builder.store(builder.or_(old, ir.Constant(i32, FTZ_DAZ)), slot)
        builder.call(ldmxcsr, [builder.bitcast(slot, i8p)])
        return old

    return sig, codegen


@intrinsic
def restore_fp_mode(typingctx, old):
    """Put back the MXCSR that :func:`flush_denormals` returned (nothing off x86)."""
    sig = types.none(types.uint32)

    def codegen(context, builder, signature, args):
        if X86:
            stmxcsr, ldmxcsr, i8p = _mxcsr_functions(builder.module)
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            builder.call(ldmxcsr, [builder.bitcast(slot, i8p)])
        return context.get_dummy_value()

    return sig, codegen
