"""The fused gate math of one GRU or LSTM row (Keras's defaults: tanh and sigmoid; the GRU with
reset_after), written as explicit full-width vector code.

Each unit of a step needs two sigmoids and a tanh (rational approximations, ``activations``), about
fifty floating-point operations. Written as a plain element loop, LLVM vectorises it only 8 floats wide
on AVX-512 CPUs (their tuning prefers 256-bit vectors) and the loop is bound by the vector ports:
1.5 ns a unit, a fifth to a third of a whole step at S2 and S5. Here the loop body is LLVM IR on the
generic vector type ``<V x float>`` with V from ``simd.VECTOR_BYTES`` (16 float32 with AVX-512F, 8
with AVX2): LLVM lowers it for whatever CPU Numba compiles for, so nothing here can emit an
instruction the CPU lacks. The units left over after the last full vector run the same operations
on scalars, so every unit's value is the same whatever its position in the row.

GRU, per unit j (H units; the rows hold the gate blocks z, r, h side by side, as Keras's kernels):

    a_z = x[j] + rec[j] + b[j];  a_r = x[H+j] + rec[H+j] + b[H+j];  c = rec[2H+j] + b[2H+j]
    z = sigmoid(a_z);  r = sigmoid(a_r);  hh = tanh(x[2H+j] + r c);  h' = z h + (1 - z) hh

LSTM (gate blocks i, f, g, o):

    i, f, o = sigmoid(x + rec) of their blocks;  g = tanh(x_g + rec_g);  c' = f c + i g;  h' = o tanh(c')

with tanh the clamped rational p(x) / q(x) and sigmoid(a) = tanh(a / 2) / 2 + 1/2 (the halving folded
into p and q's coefficients), each multiply-add fused (``llvm.fmuladd``) exactly where the ``contract``
flag lets LLVM fuse the element loops of ``activations`` (their outputs are bit-identical). Every
path that runs these gates (inference, and the training forward that saves them) calls these functions.

The BPTT gate gradients of one row (``gru_grad_row``, ``lstm_grad_row``) are written the same way:
their element loops read six (LSTM) or five (GRU) blocks of the saved row and write four back, plus
the gradient and state rows, which LLVM cannot prove disjoint (the LSTM's loop stayed scalar). Plain
multiplies and adds in the element loops' order (those loops are compiled without ``contract``): the
gradients are bit-identical too.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import activations as _act
from .simd import VECTOR_BYTES


class _Math:
    """Elementwise float operations on values of type ``ty`` (a vector or a scalar type)."""

    def __init__(self, builder, ty, suffix):
        self.b, self.ty = builder, ty
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty, ty]),
                                                  f"llvm.fmuladd.{suffix}")

    def const(self, value):
        ty = self.ty
        scalar = ir.Constant(ty.element if isinstance(ty, ir.VectorType) else ty, float(value))
        return ir.Constant(ty, [scalar] * ty.count) if isinstance(ty, ir.VectorType) else scalar

    def fmuladd(self, a, b, c):
        return self.b.call(self.fma, [a, b, c])

    def max(self, a, b):  # Python's max(a, b): b only when b > a (a NaN stays NaN)
        return self.b.select(self.b.fcmp_ordered(">", b, a), b, a)

    def min(self, a, b):  # Python's min(a, b): b only when b < a
        return self.b.select(self.b.fcmp_ordered("<", b, a), b, a)

    def _rational(self, v, clamp, p_coefs, q_coefs):
        """``p(v) / q(v)`` of v clamped to [-clamp, clamp]: p odd (``p_coefs`` of v, v^3, ...), q even
        (``q_coefs`` of 1, v^2, ...), each by Horner's rule in v^2 with fused multiply-adds."""
        b, k = self.b, self.const
        v = self.min(self.max(v, k(-clamp)), k(clamp))
        v2 = b.fmul(v, v)
        p = k(p_coefs[-1])
        for coef in reversed(p_coefs[:-1]):
            p = self.fmuladd(p, v2, k(coef))
        p = b.fmul(p, v)
        q = k(q_coefs[-1])
        for coef in reversed(q_coefs[:-1]):
            q = self.fmuladd(q, v2, k(coef))
        return b.fdiv(p, q)

    def _saturated(self, v, y, clamp, low):
        """``y``, but exactly 1 where v >= clamp and ``low`` where v <= -clamp (NaN stays NaN)."""
        b, k = self.b, self.const
        y = b.select(b.fcmp_ordered(">=", v, k(clamp)), k(1.0), y)
        return b.select(b.fcmp_ordered("<=", v, k(-clamp)), k(low), y)

    def tanh(self, v):
        """``activations.tanh_rational``: exactly 1 and -1 from the clamp on."""
        y = self._rational(v, _act.TANH_CLAMP, (_act._A1, _act._A3, _act._A5, _act._A7, _act._A9, _act._A11, _act._A13),
                           (_act._B0, _act._B2, _act._B4, _act._B6))
        return self._saturated(v, y, _act.TANH_CLAMP, -1.0)

    def sigmoid(self, v):
        """``activations.sigmoid_rational``: tanh(v / 2) / 2 + 1/2, the halving folded into the coefficients,
        exactly 1 and 0 beyond the clamp."""
        half = self.const(_act._HALF)
        y = self.fmuladd(half, self._rational(v, _act.SIGMOID_CLAMP, _act._SIG_P, _act._SIG_Q), half)
        return self._saturated(v, y, _act.SIGMOID_CLAMP, 0.0)


def _gru_unit(m, vals):
    """The GRU's gate math of ``vals`` = (x_z, x_r, x_h, rec_z, rec_r, rec_h, b_z, b_r, b_h, h):
    returns (z, r, hh, c, h_new)."""
    b = m.b
    x_z, x_r, x_h, rec_z, rec_r, rec_h, b_z, b_r, b_h, h = vals
    z = m.sigmoid(b.fadd(b.fadd(x_z, rec_z), b_z))
    r = m.sigmoid(b.fadd(b.fadd(x_r, rec_r), b_r))
    c = b.fadd(rec_h, b_h)
    hh = m.tanh(m.fmuladd(r, c, x_h))
    h_new = m.fmuladd(z, h, b.fmul(b.fsub(m.const(1.0), z), hh))
    return z, r, hh, c, h_new


def _lstm_unit(m, vals):
    """The LSTM's gate math of ``vals`` = (x_i, x_f, x_g, x_o, rec_i, rec_f, rec_g, rec_o, c): returns
    (i, f, g, o, c_new, tanh(c_new), h_new)."""
    b = m.b
    x_i, x_f, x_g, x_o, rec_i, rec_f, rec_g, rec_o, c = vals
    ig = m.sigmoid(b.fadd(x_i, rec_i))
    fg = m.sigmoid(b.fadd(x_f, rec_f))
    gg = m.tanh(b.fadd(x_g, rec_g))
    og = m.sigmoid(b.fadd(x_o, rec_o))
    c_new = m.fmuladd(ig, gg, b.fmul(fg, c))
    tc = m.tanh(c_new)
    return ig, fg, gg, og, c_new, tc, b.fmul(og, tc)


def _row_loop(context, builder, elem_type, hdim, body):
    """``body(j, ty, suffix)`` over units ``j`` of a row: full vectors of ``packed.VECTOR_BYTES``,
    then the units left over one at a time (scalars, the same operations)."""
    elem = context.get_data_type(elem_type)
    width = VECTOR_BYTES // context.get_abi_sizeof(elem)
    suffix = "f32" if elem_type == types.float32 else "f64"
    intp = context.get_value_type(types.intp)
    n_vec = builder.mul(builder.sdiv(hdim, ir.Constant(intp, width)), ir.Constant(intp, width))
    with cgutils.for_range_slice(builder, ir.Constant(intp, 0), n_vec, ir.Constant(intp, width), intp=intp) as (j, _):
        body(j, ir.VectorType(elem, width), f"v{width}{suffix}")
    with cgutils.for_range_slice(builder, n_vec, hdim, ir.Constant(intp, 1), intp=intp) as (j, _):
        body(j, elem, suffix)


def _access(builder, ty):
    """``(load(ptr, idx), store(value, ptr, idx))`` of values of type ``ty`` at element offsets."""
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
    return load, store


def _input_bias_loops(context, builder, elem_type, hdim, has_bin, body):
    """The row loop twice, chosen once per row: ``body(j, ty, suffix, with_bin)`` with the input bias added
    to the projection's values (``has_bin`` != 0), and without."""
    intp = context.get_value_type(types.intp)
    with builder.if_else(builder.icmp_signed("!=", has_bin, ir.Constant(intp, 0))) as (with_bin, without):
        with with_bin:
            _row_loop(context, builder, elem_type, hdim, lambda j, ty, suffix: body(j, ty, suffix, True))
        with without:
            _row_loop(context, builder, elem_type, hdim, lambda j, ty, suffix: body(j, ty, suffix, False))


def _gru_row_codegen(context, builder, sig, args):
    x, rec, bias, b_in, h, h_new, out, saved, hdim, has_bin, save = args
    intp = context.get_value_type(types.intp)
    do_save = builder.icmp_signed("!=", save, ir.Constant(intp, 0))

    def at(j, block):  # j + block * hdim
        return builder.add(j, builder.mul(hdim, ir.Constant(intp, block))) if block else j

    def body(j, ty, suffix, with_bin):
        load, store = _access(builder, ty)
        # every load before any store: h_new may be h, and saved may be x (its first 3H columns)
        xs = [load(x, at(j, g)) for g in range(3)]
        if with_bin:  # x + b_in rounded as the projection's own bias pass would round it
            xs = [builder.fadd(v, load(b_in, at(j, g))) for g, v in enumerate(xs)]
        vals = xs + [load(rec, at(j, 0)), load(rec, at(j, 1)), load(rec, at(j, 2)), load(bias, at(j, 0)),
                     load(bias, at(j, 1)), load(bias, at(j, 2)), load(h, j)]
        z, r, hh, c, hn = _gru_unit(_Math(builder, ty, suffix), vals)
        with builder.if_then(do_save):
            for block, value in enumerate((z, r, hh, c, vals[9])):
                store(value, saved, at(j, block))
        store(hn, h_new, j)
        store(hn, out, j)

    _input_bias_loops(context, builder, sig.args[0].dtype, hdim, has_bin, body)
    return context.get_dummy_value()


def _lstm_row_codegen(context, builder, sig, args):
    x, rec, b_in, c, h, c_new, h_new, out, saved, hdim, has_bin, save = args
    intp = context.get_value_type(types.intp)
    do_save = builder.icmp_signed("!=", save, ir.Constant(intp, 0))

    def at(j, block):
        return builder.add(j, builder.mul(hdim, ir.Constant(intp, block))) if block else j

    def body(j, ty, suffix, with_bin):
        load, store = _access(builder, ty)
        # every load before any store: c_new may be c, h_new h, and saved x (its first 4H columns)
        xs = [load(x, at(j, g)) for g in range(4)]
        if with_bin:  # x + b rounded as the projection's own bias pass would round it
            xs = [builder.fadd(v, load(b_in, at(j, g))) for g, v in enumerate(xs)]
        vals = xs + [load(rec, at(j, g)) for g in range(4)] + [load(c, j)]
        h_prev = load(h, j)
        ig, fg, gg, og, cn, tc, hn = _lstm_unit(_Math(builder, ty, suffix), vals)
        with builder.if_then(do_save):
            for block, value in enumerate((ig, fg, gg, og, tc, vals[8], h_prev)):
                store(value, saved, at(j, block))
        store(cn, c_new, j)
        store(hn, h_new, j)
        store(hn, out, j)

    _input_bias_loops(context, builder, sig.args[0].dtype, hdim, has_bin, body)
    return context.get_dummy_value()


def _gru_grad_unit(m, vals):
    """The GRU's gate gradients of one unit (reset_after) from ``vals`` = (z, r, hh, c, h_prev, dh, gout):
    returns (da_z, da_r, da_h, dc, dh_prev's part through z). Plain multiplies and adds in the element
    loop's order (compiled without ``contract``)."""
    b = m.b
    z, r, hh, c, hp, dh, gout = vals
    one = m.const(1.0)
    g = b.fadd(dh, gout)
    daz = b.fmul(b.fmul(g, b.fsub(hp, hh)), b.fmul(z, b.fsub(one, z)))
    dah = b.fmul(b.fmul(g, b.fsub(one, z)), b.fsub(one, b.fmul(hh, hh)))
    dar = b.fmul(b.fmul(dah, c), b.fmul(r, b.fsub(one, r)))
    return daz, dar, dah, b.fmul(dah, r), b.fmul(g, z)


def _gru_grad_row_codegen(context, builder, sig, args):
    saved, gout, dh, g, carry, hdim = args
    intp = context.get_value_type(types.intp)

    def at(j, block):
        return builder.add(j, builder.mul(hdim, ir.Constant(intp, block))) if block else j

    def body(j, ty, suffix):
        load, store = _access(builder, ty)
        # every load before any store: the gradients overwrite the saved gates (columns 0:4H)
        vals = [load(saved, at(j, blk)) for blk in range(5)] + [load(dh, j), load(gout, j)]
        daz, dar, dah, dq, dh_prev = _gru_grad_unit(_Math(builder, ty, suffix), vals)
        store(ir.Constant(ty, None), carry, j)
        store(dh_prev, dh, j)
        for blk, value in enumerate((daz, dar, dq)):
            store(value, g, at(j, blk))
        for blk, value in enumerate((daz, dar, dah, dq)):
            store(value, saved, at(j, blk))

    _row_loop(context, builder, sig.args[0].dtype, hdim, body)
    return context.get_dummy_value()


def _lstm_grad_unit(m, vals):
    """The LSTM's gate gradients of one unit from ``vals`` = (i, f, g, o, tanh(c), c_prev, dh, gout, dc):
    returns (da_i, da_f, da_g, da_o, dc_prev). Plain multiplies and adds in the element loop's order
    (that loop is compiled without ``contract``: no fused multiply-adds here either)."""
    b = m.b
    ig, fg, gg, og, tc, cp, dh, gout, dc = vals
    one = m.const(1.0)
    gh = b.fadd(dh, gout)
    dct = b.fadd(dc, b.fmul(b.fmul(gh, og), b.fsub(one, b.fmul(tc, tc))))
    dai = b.fmul(b.fmul(dct, gg), b.fmul(ig, b.fsub(one, ig)))
    daf = b.fmul(b.fmul(dct, cp), b.fmul(fg, b.fsub(one, fg)))
    dag = b.fmul(b.fmul(dct, ig), b.fsub(one, b.fmul(gg, gg)))
    dao = b.fmul(b.fmul(gh, tc), b.fmul(og, b.fsub(one, og)))
    return dai, daf, dag, dao, b.fmul(dct, fg)


def _lstm_grad_row_codegen(context, builder, sig, args):
    saved, gout, dh, dc, g, carry, hdim = args
    intp = context.get_value_type(types.intp)

    def at(j, block):
        return builder.add(j, builder.mul(hdim, ir.Constant(intp, block))) if block else j

    def body(j, ty, suffix):
        load, store = _access(builder, ty)
        # every load before any store: the gradients overwrite the saved gates (columns 0:4H)
        vals = [load(saved, at(j, blk)) for blk in range(6)] + [load(dh, j), load(gout, j), load(dc, j)]
        grads = _lstm_grad_unit(_Math(builder, ty, suffix), vals)
        zero = ir.Constant(ty, None)
        store(zero, carry, j)
        store(zero, dh, j)
        store(grads[4], dc, j)
        for blk in range(4):
            store(grads[blk], g, at(j, blk))
            store(grads[blk], saved, at(j, blk))

    _row_loop(context, builder, sig.args[0].dtype, hdim, body)
    return context.get_dummy_value()


def _pointer_signature(pointers, n_ints):
    if not all(isinstance(p, types.CPointer) for p in pointers) or len({p.dtype for p in pointers}) != 1:
        return None
    if pointers[0].dtype not in (types.float32, types.float64):
        return None
    return types.void(*([pointers[0]] * len(pointers)), *([types.intp] * n_ints))


@intrinsic
def gru_gate_row(typingctx, x, rec, bias, b_in, h, h_new, out, saved, hdim, has_bin, save):
    """One row's GRU step: ``h_new`` and ``out`` (H,) from ``x`` (the input projection, 3H), ``rec``
    (the recurrent product, 3H), ``bias`` (the recurrent bias, 3H) and ``h`` (H,); with ``has_bin`` != 0
    ``x`` is the projection without its bias and ``b_in`` (3H) is added to it first (the same values
    as a projection with the bias: the inference loops skip a pass over the projection); with ``save``
    != 0 also ``saved`` (5H,) = [z | r | hh | c | h]. Arguments are data pointers (``packed._data``),
    one dtype; ``h_new`` may be ``h`` and ``saved`` may be ``x`` (each unit's values are all read
    before any is written). Bounds unchecked: the caller checks every row's length."""
    sig = _pointer_signature((x, rec, bias, b_in, h, h_new, out, saved), 3)
    return None if sig is None else (sig, _gru_row_codegen)


@intrinsic
def lstm_gate_row(typingctx, x, rec, b_in, c, h, c_new, h_new, out, saved, hdim, has_bin, save):
    """One row's LSTM step: ``c_new``, ``h_new`` and ``out`` (H,) from ``x`` (the input projection with
    the bias, 4H; with ``has_bin`` != 0 without it, and ``b_in`` (4H) is added to it first: the same
    values), ``rec`` (the recurrent product, 4H) and ``c`` (H,); with ``save`` != 0 also ``saved``
    (7H,) = [i | f | g | o | tanh(c_new) | c | h]. Data pointers, one dtype; ``c_new`` may be ``c``,
    ``h_new`` may be ``h``, ``saved`` may be ``x``. Bounds unchecked: the caller checks them."""
    sig = _pointer_signature((x, rec, b_in, c, h, c_new, h_new, out, saved), 3)
    return None if sig is None else (sig, _lstm_row_codegen)


@intrinsic
def lstm_grad_row(typingctx, saved, gout, dh, dc, g, carry, hdim):
    """One row's LSTM gate gradients of a BPTT step (Keras's default activations): from ``saved``
    (7H: [i | f | g | o | tanh(c) | c_prev | h_prev] of the forward), ``gout`` (H, the output's
    gradient), ``dh`` and ``dc`` (H, the carried state gradients): ``g`` (4H) and ``saved[0:4H]`` =
    [da_i | da_f | da_g | da_o], ``dc`` = dc_prev's part through the forget gate, ``dh`` and ``carry``
    (H) zeroed. Data pointers, one dtype, distinct rows. Bounds unchecked: the caller checks them."""
    sig = _pointer_signature((saved, gout, dh, dc, g, carry), 1)
    return None if sig is None else (sig, _lstm_grad_row_codegen)


@intrinsic
def gru_grad_row(typingctx, saved, gout, dh, g, carry, hdim):
    """One row's GRU gate gradients of a BPTT step (Keras's defaults, reset_after): from ``saved`` (5H:
    [z | r | hh | c | h_prev] of the forward), ``gout`` (H, the output's gradient) and ``dh`` (H, the
    carried state gradient): ``g`` (3H) = [da_z | da_r | dc], ``saved[0:4H]`` = [da_z | da_r | da_h |
    dc], ``dh`` = dh_prev's part through z, ``carry`` (H) zeroed. Data pointers, one dtype, distinct
    rows. Bounds unchecked: the caller checks them."""
    sig = _pointer_signature((saved, gout, dh, g, carry), 1)
    return None if sig is None else (sig, _gru_grad_row_codegen)
