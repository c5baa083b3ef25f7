"""Elementary functions written in plain arithmetic, so loops that call them vectorize.

numba lowers ``math.exp`` to a call into libm, one element at a time: LLVM can only vectorize such
a loop with a vector math library (SVML), which pip's llvmlite does not ship.  The functions here
use only +, *, fused multiply-add, floor, integer shifts and a bit cast, all of which LLVM
vectorizes, and they are deterministic (no fast-math), so results stay the same bits on every run
and thread count.  A fused multiply-add is exactly rounded by IEEE 754, so it gives the same bits
whether the CPU has an FMA unit or LLVM falls back to libm's ``fma`` (slower, never different).
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from mcgreeks._jit import kernel

_LOG2E = 1.4426950408889634
# ln 2 split in two so that k·LN2_HI is exact for |k| < 2**20 (Cody & Waite 1980).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# Taylor coefficients 1/j!, j = 2..12: on |r| <= ln2/2 the remainder r**13/13! is below 2e-16.
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12 = (
    1.0 / math.factorial(j) for j in range(2, 13))
_BIAS = np.int64(1023)
_MANTISSA_BITS = np.int64(52)
#: exp's argument is clamped to this range, inside which 2**k is a normal double.
EXP_MAX = 708.0


@intrinsic
def bits_double(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (a bit cast, free)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def double_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64, as int64 (a bit cast, not a conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a·b + c rounded once (IEEE 754 fusedMultiplyAdd; LLVM's ``llvm.fma``, one instruction on a
    CPU with FMA).  Horner steps written with it take half the instructions and round half as
    often as a separate multiply and add, which numba does not fuse without fast-math."""
    if not (a == types.float64 and b == types.float64 and c == types.float64):
        return None

    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        llvm_fma = builder.module.declare_intrinsic("llvm.fma", [double],
                                                    ir.FunctionType(double, [double] * 3))
        return builder.call(llvm_fma, args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@kernel
def exp(x):
    """e**x within 2 ulp for |x| <= 708 (clamped there): x = k ln2 + r with |r| <= ln2/2
    (Cody–Waite reduction), e**r by its degree-12 Taylor polynomial in Horner form, and 2**k
    built from its exponent bits (Muller, "Elementary Functions", 3rd ed., 2016, §11.1), with
    fused multiply-adds."""
    x = min(max(x, -EXP_MAX), EXP_MAX)
    k = math.floor(x * _LOG2E + 0.5)
    minus_k = -float(k)
    r = fma(minus_k, _LN2_LO, fma(minus_k, _LN2_HI, x))
    p = _C12
    for c in (_C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2):
        p = fma(p, r, c)
    # 1 + (r + r²·p): the large terms added last, so rounding touches only the small tail.
    p = 1.0 + fma(r * r, p, r)
    return p * bits_double((np.int64(k) + _BIAS) << _MANTISSA_BITS)


@kernel(inline=True)
def tile_matmul(matrix, x, out, n, m, lower):
    """out[k, i] = Σ_s matrix[k, s] x[s, i] for k < n and the tile's paths i < m, over s <= k
    when ``lower`` (a lower-triangular matrix: a Cholesky factor), else s < n; with the paths
    as the inner loop, so it vectorizes.  out must not overlap x."""
    for k in range(n):
        for i in range(m):
            out[k, i] = 0.0
        for s in range(k + 1 if lower else n):
            c = matrix[k, s]
            for i in range(m):
                out[k, i] += c * x[s, i]
