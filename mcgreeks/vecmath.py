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


#: exp's Taylor coefficients, highest power first (``horner``).
_EXP_TAYLOR = (_C12, _C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2)


@kernel(inline=True)
def horner(coefficients, x):
    """The polynomial whose coefficients are listed from the highest power down, at x, in
    Horner form with fused multiply-adds (one rounding per step)."""
    p = coefficients[0]
    for c in coefficients[1:]:
        p = fma(p, x, c)
    return p


@kernel(inline=True)
def _exp_reduced(x):
    """(p, k) with e**x = p 2**k: x = k ln2 + r with |r| <= ln2/2 (Cody–Waite reduction) and
    p = e**r by its degree-12 Taylor polynomial in Horner form with fused multiply-adds
    (Muller, "Elementary Functions", 3rd ed., 2016, §11.1)."""
    k = math.floor(x * _LOG2E + 0.5)
    minus_k = -float(k)
    r = fma(minus_k, _LN2_LO, fma(minus_k, _LN2_HI, x))
    p = horner(_EXP_TAYLOR, r)
    # 1 + (r + r²·p): the large terms added last, so rounding touches only the small tail.
    return 1.0 + fma(r * r, p, r), np.int64(k)


@kernel(inline=True)
def _pow2(k):
    """2**k for a normal exponent, -1022 <= k <= 1023, from its bits."""
    return bits_double((k + _BIAS) << _MANTISSA_BITS)


@kernel
def exp(x):
    """e**x within 2.5 ulp for |x| <= 708 (clamped there), ``_exp_reduced``'s p times 2**k
    built from its exponent bits."""
    p, k = _exp_reduced(min(max(x, -EXP_MAX), EXP_MAX))
    return p * _pow2(k)


@kernel(inline=True)
def exp_any(x):
    """e**x for every double, IEEE's way: ``exp``'s bits on [-708, 708], and beyond, p 2**k
    scaled in two exact halves, so that it rounds once into the subnormals or overflows to
    inf; exp(-inf) = 0, NaN gives NaN.  Branch-free, so loops over it vectorize."""
    p, k = _exp_reduced(min(max(x, -746.0), 710.0))
    half = k >> np.int64(1)
    y = p * _pow2(half) * _pow2(k - half)
    return y if x == x else x


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


@kernel(inline=True)
def step_matmul(matrix, x, out, k, n, m, lower):
    """``tile_matmul`` at step k of arrays laid out (row, step, path): out[r, k, i] =
    Σ_s matrix[r, s] x[s, k, i], the same sums in the same order, so the same bits as
    ``tile_matmul(matrix, x[:, k], out[:, k], ...)``.  Here each row of the step is a
    contiguous view, which LLVM vectorizes; x[:, k] is a 2-D view of unknown strides, whose
    loops stay scalar (a simulation group's 5 members: 2.5 against 0.6 ns a member-path-step
    on one thread)."""
    for r in range(n):
        row = out[r, k]
        for i in range(m):
            row[i] = 0.0
        for s in range(r + 1 if lower else n):
            c = matrix[r, s]
            xs = x[s, k]
            for i in range(m):
                row[i] += c * xs[i]


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
# 631-638: the near-minimax rational functions of his SPECFUN packet CALERF (Argonne, 1990),
# coefficients listed here from the highest power down.  On x <= 0.46875:
# erf x = x·P(x²)/Q(x²).
_ERF_P = (1.85777706184603153e-1, 3.16112374387056560e0, 1.13864154151050156e2,
          3.77485237685302021e2, 3.20937758913846947e3)
_ERF_Q = (1.0, 2.36012909523441209e1, 2.44024637934444173e2, 1.28261652607737228e3,
          2.84423683343917062e3)
# On 0.46875 <= x <= 4: erfc x = e^(-x²)·P(x)/Q(x).
_ERFC_P = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e0,
           6.61191906371416295e1, 2.98635138197400131e2, 8.81952221241769090e2,
           1.71204761263407058e3, 2.05107837782607147e3, 1.23033935479799725e3)
_ERFC_Q = (1.0, 1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
           1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
           3.43936767414372164e3, 1.23033935480374942e3)
# On x >= 4: erfc x = e^(-x²)/x·(1/√π - y·P(y)/Q(y)), y = 1/x², P and Q of degree 5.  Written
# here as u⁵P(1/u) and u⁵Q(1/u) in u = x² (Cody's lists reversed), which takes no division for y.
_ERFC_TAIL_P = (6.58749161529837803e-4, 1.60837851487422766e-2, 1.25781726111229246e-1,
                3.60344899949804439e-1, 3.05326634961232344e-1, 1.63153871373020978e-2)
_ERFC_TAIL_Q = (2.33520497626869185e-3, 6.05183413124413191e-2, 5.27905102951428412e-1,
                1.87295284992346047e0, 2.56852019228982242e0, 1.0)
_ERF_X_SMALL = 0.46875
_ERFC_X_MID = 4.0
_FRAC_1_SQRT2 = 0.7071067811865476
_FRAC_1_SQRT_PI = 0.5641895835477563


@kernel(inline=True)
def normal_tail(z):
    """Φ(-z) = erfc(z/√2)/2, the standard normal upper tail P(Z > z), in plain arithmetic: a loop
    over paths that calls it vectorizes, and it gives the same bits on every machine.

    Why: the Heston QE scheme's exponential branch inverts the uniform 1 - U of the variance draw,
    and in a correlated simulation that draw's normal zv is a mixture of independent draws, so no
    uniform exists to read 1 - U = Φ(-zv) from.  libm's erfc is a scalar call (the loop does not
    vectorize) and its last bits depend on the libm.

    How: with x = |z|/√2, W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
    approximations for the error function", Math. Comp. 23, 1969, 631-638; the coefficients of
    his SPECFUN CALERF): erf on x <= 0.46875, then erfc = e^(-x²)·R(x) with one rational R on
    (0.46875, 4] and another beyond.  All three are evaluated, with one division, and selected by comparisons.  e^(-x²) = e^(-z²/2)
    is taken from z, not from the rounded x, with z² split exactly as hi + lo (hi = z·z,
    lo = fma(z, z, -hi)) and e^(-hi/2)·(1 - lo/2): without the split the relative error at z = 12
    would be about z²/2 ulp.  For z < 0 the result is 1 - Φ(-|z|), so Φ(-z) + Φ(z) == 1 to
    rounding.  0 beyond z ≈ 37.6 (where Φ(-z) underflows; exp's clamp), 1 below -37.6, nan for nan.

    Accuracy, measured against mpmath's ncdf at 40 digits (tests/test_vecmath.py, 28000 points):
    relative error at most 6.6e-16 (4.8 ulp) over z in [-12, 12], 5.4e-16 on [8, 12].  Inlined
    into its callers (numba IR): LLVM does not inline a function this size, and a call in the
    loop would keep it from vectorizing."""
    x = abs(z) * _FRAC_1_SQRT2
    u = x * x
    num1, q1 = _erf_small(x, u)
    num2, den2 = _erfc_mid(x)
    num3, den3 = _erfc_far(x, u)
    e, half_hi = _gauss(z)
    small = x <= _ERF_X_SMALL
    mid = x <= _ERFC_X_MID
    num = num1 if small else (num2 if mid else num3)
    den = q1 if small else (den2 if mid else den3)
    scale = 0.5 if small else 0.5 * e
    return _tail(z, scale * num / den, half_hi)


@kernel(inline=True)
def normal_tail_one(z):
    """``normal_tail``'s value, to the bit, computing only the branch that z selects: for one
    value at a time (a path's exercise decision, a dual bound's inner path), where evaluating
    the three rational functions and the exponential, as the branch-free form must, cost a
    quarter more of a GBM dual bound's time."""
    x = abs(z) * _FRAC_1_SQRT2
    u = x * x
    if x <= _ERF_X_SMALL:
        num, den = _erf_small(x, u)
        return _tail(z, 0.5 * num / den, 0.0)
    e, half_hi = _gauss(z)
    num, den = _erfc_mid(x) if x <= _ERFC_X_MID else _erfc_far(x, u)
    return _tail(z, 0.5 * e * num / den, half_hi)


@kernel(inline=True)
def _erf_small(x, u):
    """x <= 0.46875: Φ(-|z|) = (1 - erf x)/2 = (Q - x·P)/(2Q), Q - x·P > Q/2 (no
    cancellation); (Q - x·P, Q)."""
    p1, q1 = horner(_ERF_P, u), horner(_ERF_Q, u)
    return fma(-x, p1, q1), q1


@kernel(inline=True)
def _erfc_mid(x):
    """0.46875 < x <= 4: erfc x / e^(-x²) = P(x)/Q(x); (P, Q)."""
    return horner(_ERFC_P, x), horner(_ERFC_Q, x)


@kernel(inline=True)
def _erfc_far(x, u):
    """x > 4: erfc x / e^(-x²) = (1/√π - P/(u·Q))/x = (u·Q/√π - P)/(x·u·Q), P < u·Q/(30√π);
    (numerator, denominator)."""
    p3, q3 = horner(_ERFC_TAIL_P, u), horner(_ERFC_TAIL_Q, u)
    uq3 = u * q3
    return fma(uq3, _FRAC_1_SQRT_PI, -p3), x * uq3


@kernel(inline=True)
def _gauss(z):
    """(e^(-z²/2), z²/2 rounded): e^(-z²/2) = e^(-hi/2)·e^(-lo/2) with z² = hi + lo split
    exactly, |lo| <= ulp(z²)/2 so e^(-lo/2) = 1 - lo/2 to rounding."""
    hi = z * z
    lo = fma(z, z, -hi)
    half_hi = 0.5 * hi
    e = exp(-half_hi)
    return fma(e, -0.5 * lo, e), half_hi


@kernel(inline=True)
def _tail(z, t, half_hi):
    """Φ(-z) from t = Φ(-|z|): 0 where e^(-z²/2) underflows, 1 - t for z < 0."""
    t = 0.0 if half_hi > EXP_MAX else t
    return 1.0 - t if z < 0.0 else t
