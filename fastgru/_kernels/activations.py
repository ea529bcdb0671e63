"""Activations and their derivatives for the recurrent kernels, selected by an integer code.

Every function works in place on a 1-D array so that the branch on the code sits outside the
element loop (the loop itself stays simple enough for LLVM to vectorise). Derivatives are
computed from the activation's *output* ``y``, which is what the training forward saves.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LINEAR = 0
TANH = 1
SIGMOID = 2
HARD_SIGMOID = 3  # Keras 3: clip(x / 6 + 0.5, 0, 1)
HARD_SIGMOID_KERAS2 = 4  # Keras 2: clip(0.2 x + 0.5, 0, 1)
RELU = 5
SOFTSIGN = 6
ELU = 7
SELU = 8
SOFTPLUS = 9
SWISH = 10
GELU = 11
#: float32 tanh and sigmoid through a rational approximation (max abs error 3.4e-7) that LLVM can
#: vectorise; libm's scalar tanhf/expf calls cannot be. ``fast_code`` maps onto them.
FAST_TANH = 12
FAST_SIGMOID = 13
# Keras 3's other elementwise activations, inside a recurrent cell as Keras's TensorFlow backend computes them
RELU6 = 14
LEAKY_RELU = 15  # negative_slope 0.2 (Keras's default, what the name means)
HARD_TANH = 16
CELU = 17  # alpha 1: max(x, 0) + expm1(min(x, 0)), ELU's values
LOG_SIGMOID = 18
SPARSE_PLUS = 19
SQUAREPLUS = 20  # b 4
EXPONENTIAL = 21
MISH = 22
HARD_SILU = 23

# odd numerator / even denominator of the rational tanh approximation, valid on |x| <= TANH_CLAMP
# (float32 constants keep the arithmetic in float32, 16 lanes per AVX-512 vector)
_f32 = np.float32
TANH_CLAMP = _f32(7.90531110763549805)
_A1, _A3, _A5, _A7 = _f32(4.89352455891786e-03), _f32(6.37261928875436e-04), _f32(1.48572235717979e-05), _f32(
    5.12229709037114e-08)
_A9, _A11, _A13 = _f32(-8.60467152213735e-11), _f32(2.00018790482477e-13), _f32(-2.76076847742355e-16)
_B0, _B2, _B4, _B6 = _f32(4.89352518554385e-03), _f32(2.26843463243900e-03), _f32(1.18534705686654e-04), _f32(
    1.19825839466702e-06)
_HALF = _f32(0.5)
# sigmoid(x) = tanh(x / 2) / 2 + 1/2 with the halving folded into the same rational function: clamp
# x at 2 TANH_CLAMP, the coefficients of p's x^(2k+1) term scaled by 4^-k and q's x^(2k) term by
# 2 * 4^-k (exact: powers of two), so that p / q is the same float32 value as tanh_rational(x / 2)
# for every input (checked over all 2^32 of them) with one multiply fewer
SIGMOID_CLAMP = _f32(2.0) * TANH_CLAMP
_SIG_P = tuple(_f32(a / _f32(4.0 ** k)) for k, a in enumerate((_A1, _A3, _A5, _A7, _A9, _A11, _A13)))
_SIG_Q = tuple(_f32(b * _f32(2.0 / 4.0 ** k)) for k, b in enumerate((_B0, _B2, _B4, _B6)))
_S1, _S3, _S5, _S7, _S9, _S11, _S13 = _SIG_P
_T0, _T2, _T4, _T6 = _SIG_Q
#: 1 as float32: a Python literal 1.0 is float64 in Numba and would widen float32 arithmetic to float64
ONE_F32 = _f32(1.0)
ZERO_F32 = _f32(0.0)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

#: codes whose derivative can be recovered from the output alone (needed by BPTT).
INVERTIBLE_FROM_OUTPUT = frozenset(
    {LINEAR, TANH, SIGMOID, HARD_SIGMOID, HARD_SIGMOID_KERAS2, RELU, SOFTSIGN, ELU, SELU, SOFTPLUS, FAST_TANH,
     FAST_SIGMOID, RELU6, LEAKY_RELU, HARD_TANH, CELU, LOG_SIGMOID, SPARSE_PLUS, SQUAREPLUS, EXPONENTIAL}
)


_FAST_FLOAT32 = {TANH: FAST_TANH, SIGMOID: FAST_SIGMOID}


def fast_code(code: int, dtype) -> int:
    """The code to run in ``dtype``: float32 tanh/sigmoid use the vectorisable approximation."""
    if dtype == np.float32:
        return _FAST_FLOAT32.get(code, code)
    return code


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def tanh_rational(x):
    """Eigen's rational tanh (TensorFlow's float32 tanh) on x clamped to [-TANH_CLAMP, TANH_CLAMP], and exactly
    1 and -1 from the clamp on, as TensorFlow's: evaluated with fused multiply-adds the rational function
    gives 1 - 2^-22 there, and its derivative 1 - y^2, taken from the output in BPTT, times a large input
    was a wrong gradient (~2e-7 of the input's size where Keras's is 0)."""
    c = min(max(x, -TANH_CLAMP), TANH_CLAMP)
    x2 = c * c
    p = ((((((_A13 * x2 + _A11) * x2 + _A9) * x2 + _A7) * x2 + _A5) * x2 + _A3) * x2 + _A1) * c
    q = ((_B6 * x2 + _B4) * x2 + _B2) * x2 + _B0
    y = p / q
    y = ONE_F32 if x >= TANH_CLAMP else y
    return -ONE_F32 if x <= -TANH_CLAMP else y


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def sigmoid_rational(x):
    """``tanh_rational(x / 2) / 2 + 1/2``, bit for bit, without the multiply by 1/2 (``_SIG_P``): exactly 1 and
    0 from the clamp on (the rational function alone gave 1 - 2^-23 and 3.6e-7 there, where Keras's sigmoid
    is 1 from x ~ 17 and e^x below, and its derivative y (1 - y) times a large input was a wrong gradient)."""
    c = min(max(x, -SIGMOID_CLAMP), SIGMOID_CLAMP)
    x2 = c * c
    p = ((((((_S13 * x2 + _S11) * x2 + _S9) * x2 + _S7) * x2 + _S5) * x2 + _S3) * x2 + _S1) * c
    q = ((_T6 * x2 + _T4) * x2 + _T2) * x2 + _T0
    y = _HALF * (p / q) + _HALF
    y = ONE_F32 if x >= SIGMOID_CLAMP else y
    return ZERO_F32 if x <= -SIGMOID_CLAMP else y


#: Numba's floating-point flags of every kernel that evaluates the rational activations: ``contract``
#: lets LLVM fuse each multiply-add of the polynomials into one FMA (half the instructions; each
#: result rounded once instead of twice). No other fast-math freedom: no reassociation, so a value
#: depends only on its own inputs, never on the loop's vector width or the rows beside it.
FMA_ONLY = {"contract"}


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FMA_ONLY)
def activate_inplace(code, v):
    """Replace ``v`` (n,) by ``act(v)`` for the activation ``code``."""
    n = v.shape[0]
    if code == FAST_TANH:
        for i in range(n):
            v[i] = tanh_rational(v[i])
    elif code == FAST_SIGMOID:
        for i in range(n):
            v[i] = sigmoid_rational(v[i])
    elif code == TANH:
        for i in range(n):
            v[i] = math.tanh(v[i])
    elif code == SIGMOID:
        for i in range(n):
            v[i] = 1.0 / (1.0 + math.exp(-v[i]))
    elif code == LINEAR:
        pass
    elif code == HARD_SIGMOID:
        for i in range(n):
            v[i] = min(max(v[i] / 6.0 + 0.5, 0.0), 1.0)
    elif code == HARD_SIGMOID_KERAS2:
        for i in range(n):
            v[i] = min(max(0.2 * v[i] + 0.5, 0.0), 1.0)
    elif code == RELU:
        for i in range(n):
            v[i] = max(v[i], 0.0)
    elif code == SOFTSIGN:
        for i in range(n):
            v[i] = v[i] / (1.0 + abs(v[i]))
    elif code == ELU or code == CELU:
        for i in range(n):
            x = v[i]
            v[i] = x if x > 0.0 else math.expm1(x)
    elif code == SELU:
        for i in range(n):
            x = v[i]
            v[i] = SELU_SCALE * x if x > 0.0 else SELU_SCALE * SELU_ALPHA * math.expm1(x)
    elif code == SOFTPLUS:
        for i in range(n):
            x = v[i]
            v[i] = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    elif code == SWISH:
        for i in range(n):
            x = v[i]
            v[i] = x / (1.0 + math.exp(-x))
    elif code == GELU:
        for i in range(n):
            x = v[i]
            v[i] = 0.5 * x * (1.0 + math.erf(x * 0.7071067811865476))
    else:
        _activate_more(code, v)


@njit(cache=True, nogil=True, error_model="numpy")
def _activate_more(code, v):
    """``activate_inplace`` for Keras 3's less common activations."""
    n = v.shape[0]
    if code == RELU6:
        for i in range(n):
            v[i] = min(max(v[i], 0.0), 6.0)
    elif code == LEAKY_RELU:
        for i in range(n):
            x = v[i]
            v[i] = x if x > 0.0 else 0.2 * x
    elif code == HARD_TANH:
        for i in range(n):
            v[i] = min(max(v[i], -1.0), 1.0)
    elif code == LOG_SIGMOID:  # -softplus(-x)
        for i in range(n):
            x = v[i]
            v[i] = -(max(-x, 0.0) + math.log1p(math.exp(-abs(x))))
    elif code == SPARSE_PLUS:
        for i in range(n):
            x = v[i]
            v[i] = 0.0 if x <= -1.0 else (0.25 * (x + 1.0) * (x + 1.0) if x < 1.0 else x)
    elif code == SQUAREPLUS:
        for i in range(n):
            x = v[i]
            v[i] = (x + math.sqrt(x * x + 4.0)) / 2.0
    elif code == EXPONENTIAL:
        for i in range(n):
            v[i] = math.exp(v[i])
    elif code == MISH:  # x tanh(softplus(x))
        for i in range(n):
            x = v[i]
            v[i] = x * math.tanh(max(x, 0.0) + math.log1p(math.exp(-abs(x))))
    elif code == HARD_SILU:  # x relu6(x + 3) / 6
        for i in range(n):
            x = v[i]
            v[i] = x * (min(max(x + 3.0, 0.0), 6.0) / 6.0)


@njit(cache=True, nogil=True, error_model="numpy")
def derivative_from_output(code, y, d):
    """Multiply ``d`` (n,) in place by ``act'(x)`` expressed through ``y = act(x)``."""
    n = y.shape[0]
    if code == TANH or code == FAST_TANH:
        for i in range(n):
            d[i] *= ONE_F32 - y[i] * y[i]
    elif code == SIGMOID or code == FAST_SIGMOID:
        for i in range(n):
            d[i] *= y[i] * (ONE_F32 - y[i])
    elif code == LINEAR:
        pass
    elif code == HARD_SIGMOID:
        for i in range(n):
            d[i] *= (1.0 / 6.0) if (y[i] > 0.0 and y[i] < 1.0) else 0.0
    elif code == HARD_SIGMOID_KERAS2:
        for i in range(n):
            d[i] *= 0.2 if (y[i] > 0.0 and y[i] < 1.0) else 0.0
    elif code == RELU:
        for i in range(n):
            d[i] *= 1.0 if y[i] > 0.0 else 0.0
    elif code == SOFTSIGN:
        for i in range(n):
            a = 1.0 - abs(y[i])
            d[i] *= a * a
    elif code == ELU:
        for i in range(n):
            d[i] *= 1.0 if y[i] > 0.0 else y[i] + 1.0
    elif code == CELU:  # (at 0 TensorFlow passes the gradient through both its maximum and its minimum: 2)
        for i in range(n):
            d[i] *= 1.0 if y[i] > 0.0 else (2.0 if y[i] == 0.0 else y[i] + 1.0)
    elif code == SELU:
        for i in range(n):
            d[i] *= SELU_SCALE if y[i] >= 0.0 else y[i] + SELU_SCALE * SELU_ALPHA  # (TensorFlow: the scale at 0)
    elif code == SOFTPLUS:
        for i in range(n):
            d[i] *= -math.expm1(-y[i])
    else:
        _derivative_more(code, y, d)


@njit(cache=True, nogil=True, error_model="numpy")
def _derivative_more(code, y, d):
    """``derivative_from_output`` for the less common activations that have one."""
    n = y.shape[0]
    if code == RELU6:
        for i in range(n):
            d[i] *= 1.0 if (y[i] > 0.0 and y[i] < 6.0) else 0.0
    elif code == LEAKY_RELU:
        for i in range(n):
            d[i] *= 1.0 if y[i] > 0.0 else 0.2
    elif code == HARD_TANH:
        for i in range(n):
            d[i] *= 1.0 if (y[i] > -1.0 and y[i] < 1.0) else 0.0
    elif code == LOG_SIGMOID:  # sigmoid(-x) = 1 - exp(y)
        for i in range(n):
            d[i] *= -math.expm1(y[i])
    elif code == SPARSE_PLUS:  # (x + 1) / 2 = sqrt(y) between -1 and 1, 1 from 1 on
        for i in range(n):
            d[i] *= 1.0 if y[i] >= 1.0 else math.sqrt(y[i])
    elif code == SQUAREPLUS:  # (1 + x / sqrt(x^2 + 4)) / 2 = y^2 / (y^2 + 1)
        for i in range(n):
            yy = y[i] * y[i]
            d[i] *= yy / (yy + 1.0)
    elif code == EXPONENTIAL:
        for i in range(n):
            d[i] *= y[i]
