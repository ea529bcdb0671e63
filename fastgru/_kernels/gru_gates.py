"""The fused gate math of one GRU row (Keras's defaults: reset_after, tanh, sigmoid), written as
explicit full-width vector code.

Each unit of a step needs two sigmoids and a tanh (rational approximations, ``activations``), about
fifty floating-point operations. Written as a plain element loop, LLVM vectorises it only 8 floats wide
on AVX-512 CPUs (their tuning prefers 256-bit vectors) and the loop is bound by the vector ports:
1.5 ns a unit, a fifth to a third of a whole step at S2 and S5. Here the loop body is LLVM IR on the
generic vector type ``<V x float>`` with V from ``packed.VECTOR_BYTES`` (16 float32 with AVX-512F, 8
with AVX2): LLVM lowers it for whatever CPU Numba compiles for, so nothing here can emit an
instruction the CPU lacks. The units left over after the last full vector run the same operations
on scalars, so every unit's value is the same whatever its position in the row.

Per unit j (H units; the rows hold the gate blocks z, r, h side by side, as Keras's kernels):

    a_z = x[j] + rec[j] + b[j];  a_r = x[H+j] + rec[H+j] + b[H+j];  c = rec[2H+j] + b[2H+j]
    z = sigmoid(a_z);  r = sigmoid(a_r);  hh = tanh(x[2H+j] + r c);  h' = z h + (1 - z) hh

with sigmoid(a) = tanh(a / 2) / 2 + 1/2 and tanh the clamped rational p(x) / q(x), each multiply-add
fused (``llvm.fmuladd``, as the ``contract`` flag lets the element loops do). Every path that runs these
gates (inference, and the training forward that saves them) calls this one function.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import activations as _act
from .packed import VECTOR_BYTES


def _emit_unit(builder, module, ty, suffix, vals):
    """The gate math of ``vals`` = (x_z, x_r, x_h, rec_z, rec_r, rec_h, b_z, b_r, b_h, h) on values of
    type ``ty`` (a vector or a scalar): returns (z, r, hh, c, h_new)."""
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(ty, [ty, ty, ty]), f"llvm.fmuladd.{suffix}")

    def const(value):
        scalar = ir.Constant(ty.element if isinstance(ty, ir.VectorType) else ty, float(value))
        return ir.Constant(ty, [scalar] * ty.count) if isinstance(ty, ir.VectorType) else scalar

    def fmuladd(a, b, c):
        return builder.call(fma, [a, b, c])

    def max_(a, b):  # Python's max(a, b): b only when b > a (a NaN stays NaN)
        return builder.select(builder.fcmp_ordered(">", b, a), b, a)

    def min_(a, b):  # Python's min(a, b): b only when b < a
        return builder.select(builder.fcmp_ordered("<", b, a), b, a)

    def tanh(v):
        v = min_(max_(v, const(-_act.TANH_CLAMP)), const(_act.TANH_CLAMP))
        v2 = builder.fmul(v, v)
        p = const(_act._A13)
        for coef in (_act._A11, _act._A9, _act._A7, _act._A5, _act._A3, _act._A1):
            p = fmuladd(p, v2, const(coef))
        p = builder.fmul(p, v)
        q = fmuladd(fmuladd(fmuladd(const(_act._B6), v2, const(_act._B4)), v2, const(_act._B2)), v2,
                    const(_act._B0))
        return builder.fdiv(p, q)

    def sigmoid(v):
        half = const(_act._HALF)
        return fmuladd(half, tanh(builder.fmul(half, v)), half)

    x_z, x_r, x_h, rec_z, rec_r, rec_h, b_z, b_r, b_h, h = vals
    z = sigmoid(builder.fadd(builder.fadd(x_z, rec_z), b_z))
    r = sigmoid(builder.fadd(builder.fadd(x_r, rec_r), b_r))
    c = builder.fadd(rec_h, b_h)
    hh = tanh(fmuladd(r, c, x_h))
    h_new = fmuladd(z, h, builder.fmul(builder.fsub(const(1.0), z), hh))
    return z, r, hh, c, h_new


def _gate_row_codegen(context, builder, sig, args):
    x, rec, bias, h, h_new, out, saved, hdim, save = args
    elem = context.get_data_type(sig.args[0].dtype)
    width = VECTOR_BYTES // context.get_abi_sizeof(elem)
    vty = ir.VectorType(elem, width)
    suffix = "f32" if sig.args[0].dtype == types.float32 else "f64"
    intp = context.get_value_type(types.intp)
    module = builder.module
    do_save = builder.icmp_signed("!=", save, ir.Constant(intp, 0))

    def offset(j, block):  # j + block * hdim
        return builder.add(j, builder.mul(hdim, ir.Constant(intp, block))) if block else j

    def body(j, ty, sfx):
        if isinstance(ty, ir.VectorType):
            def load(ptr, idx):
                return builder.load(builder.bitcast(builder.gep(ptr, [idx]), ty.as_pointer()), align=4)

            def store(value, ptr, idx):
                builder.store(value, builder.bitcast(builder.gep(ptr, [idx]), ty.as_pointer()), align=4)
        else:
            def load(ptr, idx):
                return builder.load(builder.gep(ptr, [idx]))

            def store(value, ptr, idx):
                builder.store(value, builder.gep(ptr, [idx]))
        # every load before any store: h_new may be h, and saved may be x (its first 3H columns)
        vals = [load(x, offset(j, 0)), load(x, offset(j, 1)), load(x, offset(j, 2)),
                load(rec, offset(j, 0)), load(rec, offset(j, 1)), load(rec, offset(j, 2)),
                load(bias, offset(j, 0)), load(bias, offset(j, 1)), load(bias, offset(j, 2)), load(h, j)]
        z, r, hh, c, hn = _emit_unit(builder, module, ty, sfx, vals)
        with builder.if_then(do_save):
            for block, value in enumerate((z, r, hh, c, vals[9])):
                store(value, saved, offset(j, block))
        store(hn, h_new, j)
        store(hn, out, j)

    n_vec = builder.mul(builder.sdiv(hdim, ir.Constant(intp, width)), ir.Constant(intp, width))
    with cgutils.for_range_slice(builder, ir.Constant(intp, 0), n_vec, ir.Constant(intp, width), intp=intp) as (j, _):
        body(j, vty, f"v{width}{suffix}")
    with cgutils.for_range_slice(builder, n_vec, hdim, ir.Constant(intp, 1), intp=intp) as (j, _):
        body(j, elem, suffix)
    return context.get_dummy_value()


@intrinsic
def gate_row(typingctx, x, rec, bias, h, h_new, out, saved, hdim, save):
    """One row's GRU step: ``h_new`` and ``out`` (H,) from ``x`` (the input projection, 3H), ``rec``
    (the recurrent product, 3H), ``bias`` (the recurrent bias, 3H) and ``h`` (H,); with ``save`` != 0
    also ``saved`` (5H,) = [z | r | hh | c | h]. Arguments are data pointers (``packed._data``), one
    dtype; ``h_new`` may be ``h`` and ``saved`` may be ``x`` (each unit's values are all read before
    any is written). Bounds unchecked: the caller checks every row's length."""
    pointers = (x, rec, bias, h, h_new, out, saved)
    if not all(isinstance(p, types.CPointer) for p in pointers) or len({p.dtype for p in pointers}) != 1:
        return None
    if x.dtype not in (types.float32, types.float64):
        return None
    p = x
    return types.void(p, p, p, p, p, p, p, types.intp, types.intp), _gate_row_codegen
