"""Counter-based standard normal draws for the mcgreeks path simulator.

What the generator is
---------------------
Uniform bits come from the Threefry2x64-20 block cipher of Salmon, Moraes, Dror and Shaw
("Parallel random numbers: as easy as 1, 2, 3", Proc. SC11, 2011): a keyed bijection of a
128-bit counter ``(c0, c1)`` under a 128-bit key ``(k0, k1)``, twenty rounds of 64-bit
additions, rotations and XORs with the Skein key schedule injected every fourth round.  It
passes BigCrush from 13 rounds on; 20 is Random123's default, kept for the margin.  It is the
``threefry2x64_20`` of the Random123 library and of JAX.  Only additions, rotations and XORs,
so LLVM vectorizes it across counters (eight to a 512-bit register, ``vprolq``), where Philox's
64x64 -> 128-bit products cannot be.  A 64-bit output word becomes a uniform on the open
interval (0, 1) by :func:`bits_to_uniform`.

The (seed, stream, path, draw) -> normal mapping
------------------------------------------------
The key is ``(k0, k1)``, typically ``k0 = seed_key(seed)`` and ``k1 = name_key(underlying)``, so
each underlying has its own independent numbers whatever the order of the input tables.  Draw
number ``draw`` (< 2**32) of paths 2m and 2m + 1 in stream ``stream`` (< 2**31;
``STREAM_MAIN`` for pricing, ``STREAM_PILOT`` etc. for pilot runs) come from one block::

    (w0, w1) = threefry2x64_20(m, stream * 2**32 + draw, k0, k1)
    normal of path 2m, 2m + 1 = sqrt(-2 log U) * (cos a, sin a),  U = bits_to_uniform(w0),
                                a uniform on the circle from w1 (_circle_point)

the Box-Muller transform (Box & Muller 1958), branch-free and vectorized.  A draw whose uniform
is needed as well (the QE variance step reads 1 - U) is read by inversion instead:
``inverse_normal`` = ``ndtri(bits_to_uniform(w))`` with ``w`` word ``path & 1`` of the same
block, where :func:`ndtri` is Wichura's AS241 (relative accuracy about 1e-16).  Each draw
number is read one way only.  Sobol' runs (``mcgreeks.sobol``) keep inversion of their points
and Philox4x64-10 (:func:`philox4x64_10`, Random123's ``philox4x64_10``) for their
scrambling.  Version 0.4.0 changed the stream once, from Philox4x64-10 and AS241 for every
draw to the above: 1.9x fewer nanoseconds a normal.

Why counter-based
-----------------
A normal is a pure function of (key, stream, path, draw): there is no generator state to carry
from one draw to the next.  Results are therefore bit-for-bit independent of the number of
threads, of how paths are cut into chunks, of the order in which chunks run, and of the machine:
only IEEE-754 double arithmetic (+, -, *, /, ``sqrt`` and explicit fused multiply-adds, all
correctly rounded; numba does not contract without fastmath), exact integer/bit operations and
exact int64 -> double conversions are used.  In particular the logarithm is :func:`_log`
below and cos/sin are polynomials, not the platform's libm, so not even the last bit depends on
the C library.  Any single path can be replayed on its own for debugging, and the pilot and
main runs can never overlap by accident.

How fill_normals is fast
------------------------
:func:`fill_normals` produces the same bits as :func:`normal` for every element.  A chunk of up
to 64 pairs of paths goes through three loops with no branch and no call, so LLVM vectorizes
each: the Threefry words (two independent blocks an iteration, first words and second words in
separate rows of a stack buffer), then -2 ln U in place, then the angle's cos and sin times the
radius, written path by path (``_gaussian_pairs``).  One loop for all of it spills registers and
runs at the latency of its log-division-square-root chain.  A lone first or last path of an odd
cut takes one scalar block.  :func:`fill_normal_rows` fills a tile's rows of every step in one
call, which sets the loops' constants up once.  :func:`fill_inverse_normals` writes uniforms,
then runs AS241 in blocks of 64: a branch-free vectorized central loop, the tail elements (15 %)
gathered into a stack buffer, transformed by two vectorized loops and scattered back.
``benchmarks/normals_speed.py`` times the parts.

References
----------
* J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
  1, 2, 3", SC '11, doi:10.1145/2063384.2063405.  Known-answer vectors: Random123
  ``tests/kat_vectors``.
* N. Ferguson et al., "The Skein hash function family", v1.3 (2010): Threefish's key schedule
  and parity constant.
* G. E. P. Box, M. E. Muller, "A note on the generation of random normal deviates", Ann. Math.
  Statist. 29(2), 610-611 (1958).
* M. J. Wichura, "Algorithm AS 241: The percentage points of the normal distribution",
  Applied Statistics 37(3), 477-484 (1988), doi:10.2307/2347330.
* P. T. P. Tang, "Table-driven implementation of the logarithm function in IEEE floating-point
  arithmetic", ACM TOMS 16(4), 378-400 (1990), and the algorithm description of fdlibm's
  ``e_log.c`` (Sun Microsystems, 1993): the reduction ``x = 2**k (1 + f)``,
  ``sqrt(1/2) <= 1 + f < sqrt(2)``, ``log(1 + f) = 2 atanh(s)`` with ``s = f / (2 + f)``, and the
  order of summation that keeps the rounding error below one ulp.  The polynomial coefficients
  of :func:`_log` are our own minimax fit (see its docstring); no code was taken from either.

Notes on typing: numba has no 128-bit integer type and promotes ``uint64 op int64`` to
``float64``, so every integer literal used with a ``uint64`` below is a module-level
``np.uint64`` constant (numba freezes these as typed compile-time constants), and the few LLVM
operations numba cannot express (``mul i128``, bit casts, ``cttz``, a stack buffer) are
``@intrinsic``\\ s.  Called from Python, numba boxes ``uint64`` results as Python ``int``; inside
other kernels they are ``uint64``.
"""
import hashlib
import math
import numbers

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

from mcgreeks import _jit
from mcgreeks._jit import borrow, kernel
from mcgreeks.vecmath import bits_double, double_bits, fma

__all__ = [
    "STREAM_MAIN",
    "STREAM_PILOT",
    "STREAM_EXERCISE",
    "STREAM_DUAL",
    "ANTITHETIC",
    "antithetic",
    "philox4x64_10",
    "threefry2x64_20",
    "random_word",
    "bits_to_uniform",
    "ndtri",
    "normal",
    "inverse_normal",
    "fill_normals",
    "fill_normal_rows",
    "fill_inverse_normals",
    "fill_complements",
    "fill_inverse_normals_and_complements",
    "seed_key",
    "name_key",
]

STREAM_MAIN = np.uint64(0)
STREAM_PILOT = np.uint64(1)
#: The pilot paths that exercise policies are fitted on (``exercise_policy``).
STREAM_EXERCISE = np.uint64(2)
#: The outer and inner paths of the dual upper bound of an exercise policy (``dual_bound``).
STREAM_DUAL = np.uint64(3)
#: A stream number with this bit set draws antithetic pairs (``antithetic``).
ANTITHETIC = np.uint64(1 << 63)
_PLAIN = np.uint64((1 << 63) - 1)

# --- uint64 constants (never mix uint64 with a Python int literal inside a kernel) -------------
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U4 = np.uint64(4)
_SH12 = np.uint64(12)

# Philox4x64 multipliers and Weyl key increments (golden ratio, sqrt(3) - 1).
_PHILOX_M0 = np.uint64(0xD2E7470EE14C6C93)
_PHILOX_M1 = np.uint64(0xCA5A826395121157)
_PHILOX_W0 = np.uint64(0x9E3779B97F4A7C15)
_PHILOX_W1 = np.uint64(0xBB67AE8584CAA73B)

_TWO_M52 = 2.0 ** -52


def _inline_kernel(func):
    """A kernel (same numba options as :func:`mcgreeks._jit.kernel`) that numba inlines into its
    callers at IR level.

    Used for the pieces of :func:`fill_normals`' loops: LLVM's own inliner declines functions as
    long as the logarithm or a rational function, and a loop that still contains a call is not
    vectorized.
    """
    return numba.njit(inline="always", **_jit._OPTIONS)(func)


# --- LLVM operations numba has no syntax for ----------------------------------------------------

@intrinsic
def _mul128(typingctx, a, b):
    """``(high, low)`` 64-bit words of the full product of two uint64, as one ``mul i128``.

    LLVM lowers it to a single ``mulx``/``mul`` on x86-64 (two instructions on AArch64) instead
    of four 32x32-bit products and their carries.
    """
    if a != types.uint64 or b != types.uint64:
        return None
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        low = builder.trunc(product, ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (high, low))

    return sig, codegen


@intrinsic
def _trailing_zeros(typingctx, x):
    """Number of trailing zero bits of a NONZERO uint64 (``cttz``; undefined for 0)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.uint64(types.uint64), codegen


_BLOCK = 64                 # elements per AS241 block: one bit each in a uint64 mask
_SCRATCH = _BLOCK + 4       # tail buffer, room to pad a full block to a multiple of 4


@intrinsic
def _block_scratch(typingctx):
    """Pointer to ``_SCRATCH`` float64 on the caller's stack (an ``alloca`` in its entry block).

    Lives until the calling kernel returns; uninitialised.  Wrap it with ``numba.carray``; the
    array has no memory manager, so it must never be returned or stored.  Lets
    :func:`fill_normals` keep its signature without allocating on the heap per call.
    """
    sig = types.CPointer(types.float64)()

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, ir.DoubleType(), size=_SCRATCH)

    return sig, codegen


_PAIRS = 64                 # pairs of paths per Box-Muller chunk of ``_fill_gaussian_pairs``


@intrinsic
def _pair_scratch(typingctx):
    """Pointer to ``2 * _PAIRS`` float64 on the caller's stack, as ``_block_scratch``: the raw
    Threefry words of one chunk of :func:`fill_normals`, first words then second words."""
    sig = types.CPointer(types.float64)()

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, ir.DoubleType(), size=2 * _PAIRS)

    return sig, codegen


@intrinsic
def _as_rows(typingctx, a):
    """A 1-D array as a borrowed 2-D array of one row, the same data and layout (as ``_view``:
    no memory manager, valid only while ``a`` is alive)."""
    if not (isinstance(a, types.Array) and a.ndim == 1):
        return None
    rows = a.copy(ndim=2, layout="C" if a.layout == "C" else "A")

    def codegen(context, builder, signature, args):
        src = context.make_array(signature.args[0])(context, builder, value=args[0])
        dst = context.make_array(signature.return_type)(context, builder)
        n = builder.extract_value(src.shape, 0)
        stride = builder.extract_value(src.strides, 0)
        populate_array(dst, data=src.data, shape=[ir.Constant(n.type, 1), n],
                       strides=[builder.mul(n, stride), stride], itemsize=src.itemsize,
                       meminfo=None, parent=None)
        return dst._getvalue()

    return rows(a), codegen


@intrinsic
def _view(typingctx, a, start, n):
    """``a[start:start + n]`` of a 1-D array (any layout), as a borrowed view.

    Unlike a slice it carries no memory manager, so creating and dropping it costs no reference
    counting: numba otherwise increments and decrements ``a``'s count around the whole kernel
    (two atomic operations per call, ~4 % of a 64-path ``fill_normals``).  Valid only while
    ``a`` is alive, so it must never be returned or stored; no bounds are checked.
    """
    if not (isinstance(a, types.Array) and a.ndim == 1 and isinstance(start, types.Integer)
            and isinstance(n, types.Integer)):
        return None
    sig = a(a, start, n)

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        src = context.make_array(arrty)(context, builder, value=args[0])
        dst = context.make_array(arrty)(context, builder)
        stride = builder.extract_value(src.strides, 0)
        first = context.cast(builder, args[1], signature.args[1], types.intp)
        count = context.cast(builder, args[2], signature.args[2], types.intp)
        byte = ir.IntType(8).as_pointer()
        data = builder.gep(builder.bitcast(src.data, byte), [builder.mul(first, stride)])
        populate_array(dst, data=builder.bitcast(data, src.data.type), shape=[count],
                       strides=[stride], itemsize=src.itemsize, meminfo=None, parent=None)
        return dst._getvalue()

    return sig, codegen


# --- Philox4x64-10 -----------------------------------------------------------------------------

@kernel
def _mulhilo64(a, b):
    """Full 128-bit product of two uint64: returns ``(high 64 bits, low 64 bits)``."""
    return _mul128(np.uint64(a), np.uint64(b))


@_inline_kernel
def _philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox4x64 round (S-box then the fixed word permutation)."""
    hi0, lo0 = _mul128(_PHILOX_M0, c0)
    hi1, lo1 = _mul128(_PHILOX_M1, c2)
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


@_inline_kernel
def _philox(x0, x1, x2, x3, y0, y1):
    """Philox4x64-10 of uint64 counter words ``x0..x3`` under uint64 key ``(y0, y1)``."""
    x0, x1, x2, x3 = _philox_round(x0, x1, x2, x3, y0, y1)
    for _ in range(9):
        y0 += _PHILOX_W0
        y1 += _PHILOX_W1
        x0, x1, x2, x3 = _philox_round(x0, x1, x2, x3, y0, y1)
    return x0, x1, x2, x3


@kernel
def philox4x64_10(c0, c1, c2, c3, k0, k1):
    """Philox4x64 with 10 rounds: encrypt counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    Returns a 4-tuple of ``uint64``.  Round ``r`` (0-based) uses the key bumped ``r`` times by
    the Weyl increments, as in Random123's ``philox4x64_R(10, ...)``.  Arguments are cast to
    ``uint64`` (a no-op when they already are).
    """
    return _philox(np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3),
                   np.uint64(k0), np.uint64(k1))


# --- Threefry2x64-20 ---------------------------------------------------------------------------

# Rotation distances of Threefry2x64 (Salmon et al. 2011, Table 4; Random123's R_64x2_*) and
# the Skein key-schedule parity constant (Ferguson et al., "The Skein hash function family",
# v1.3, 2010).
_TF_ROT = (16, 42, 12, 31, 16, 32, 24, 21)
(_R0, _R1, _R2, _R3, _R4, _R5, _R6, _R7) = (np.uint64(r) for r in _TF_ROT)
(_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7) = (np.uint64(64 - r) for r in _TF_ROT)
_SKEIN_PARITY = np.uint64(0x1BD11BDAA9FC1A22)
_U5 = np.uint64(5)


@_inline_kernel
def _mix(x0, x1, left, right):
    """One Threefry2x64 round: add, rotate x1 left by ``left`` bits (``right = 64 - left``; LLVM
    emits one rotate instruction), xor."""
    x0 += x1
    x1 = (x1 << left) | (x1 >> right)
    return x0, x1 ^ x0


@_inline_kernel
def _four_rounds(x0, x1, first):
    """Four Threefry2x64 rounds with rotations 0-3 (``first``) or 4-7 of ``_TF_ROT``."""
    if first:
        x0, x1 = _mix(x0, x1, _R0, _L0)
        x0, x1 = _mix(x0, x1, _R1, _L1)
        x0, x1 = _mix(x0, x1, _R2, _L2)
        return _mix(x0, x1, _R3, _L3)
    x0, x1 = _mix(x0, x1, _R4, _L4)
    x0, x1 = _mix(x0, x1, _R5, _L5)
    x0, x1 = _mix(x0, x1, _R6, _L6)
    return _mix(x0, x1, _R7, _L7)


@_inline_kernel
def _threefry(c0, c1, k0, k1):
    """Threefry2x64-20 of uint64 counter ``(c0, c1)`` under uint64 key ``(k0, k1)``."""
    k2 = k0 ^ k1 ^ _SKEIN_PARITY
    x0, x1 = _four_rounds(c0 + k0, c1 + k1, True)
    x0, x1 = _four_rounds(x0 + k1, x1 + k2 + _U1, False)
    x0, x1 = _four_rounds(x0 + k2, x1 + k0 + _U2, True)
    x0, x1 = _four_rounds(x0 + k0, x1 + k1 + _U3, False)
    x0, x1 = _four_rounds(x0 + k1, x1 + k2 + _U4, True)
    return x0 + k2, x1 + k0 + _U5


@kernel
def threefry2x64_20(c0, c1, k0, k1):
    """Threefry2x64 with 20 rounds: encrypt counter ``(c0, c1)`` under key ``(k0, k1)``.

    Returns a 2-tuple of ``uint64``: Random123's ``threefry2x64_R(20, ...)``, its default round
    count (13 is the fewest that pass BigCrush).  The key is injected, Skein-style, before the
    first round and after every fourth, with ``k2 = k0 ^ k1 ^ 0x1BD11BDAA9FC1A22`` and the
    injection's number added to the second word.  Arguments are cast to ``uint64``.
    """
    return _threefry(np.uint64(c0), np.uint64(c1), np.uint64(k0), np.uint64(k1))


@kernel
def bits_to_uniform(x):
    """Map 64 random bits to a double in the OPEN interval (0, 1).

    Uses the top 52 bits: ``((x >> 12) + 0.5) * 2**-52``, i.e. the odd multiples of ``2**-53``
    from ``2**-53`` to ``1 - 2**-53``.  Every value is exactly representable, so the result is
    never 0 or 1, and the grid is symmetric (``u`` and ``1 - u`` are equally likely).

    (The 53-bit variant ``((x >> 11) + 0.5) * 2**-53`` is NOT open: above 0.5 its midpoints are
    not representable, round-half-to-even sends ``x = 2**64 - 1`` to exactly 1.0, and the upper
    half of its grid collapses onto even multiples of ``2**-53``.)
    """
    # x >> 12 < 2**52 fits an int64; int64 -> double converts faster than uint64 -> double.
    return (np.float64(np.int64(np.uint64(x) >> _SH12)) + 0.5) * _TWO_M52


# --- natural logarithm -------------------------------------------------------------------------

_MIN_NORMAL = 2.2250738585072014e-308
_TWO54 = 2.0 ** 54
_SQRT_HALF_BITS = np.int64(0x3FE6A09E667F3BCD)   # bit pattern of sqrt(1/2) rounded
_SH52 = np.int64(52)
# ln 2 = _LN2_HI + _LN2_LO: _LN2_HI is ln 2 with its last 12 significand bits cleared, so
# k * _LN2_HI is exact for |k| < 2**12; |ln 2 - _LN2_HI - _LN2_LO| < 2e-31.
_LN2_HI = float.fromhex("0x1.62e42fefa3000p-1")
_LN2_LO = float.fromhex("0x1.3de6af278ece6p-42")
# R(z) = 2 atanh(s) / s - 2 = z (2/3 + 2z/5 + 2z^2/7 + ...), z = s^2 <= (3 - 2 sqrt 2)^2, fitted as
# z P(z) with P of degree 6 minimizing max |s^3 (P(z) - R(z)/z)| (the error it puts into log):
# 4.1e-19 with the rounded coefficients below (Remez exchange at 60 digits, mpmath).
_LG1 = 0.666666666666681
_LG2 = 0.3999999999901471
_LG3 = 0.285714288184047
_LG4 = 0.2222219165421115
_LG5 = 0.18183890874962766
_LG6 = 0.15306339791929607
_LG7 = 0.14867996279935214


@_inline_kernel
def _log(x):
    """Natural logarithm of a finite ``x > 0`` (subnormals included), branch-free.

    Tang's reduction as in fdlibm's ``e_log``: ``x = 2**k (1 + f)`` with ``sqrt(1/2) <= 1 + f <
    sqrt(2)`` read off the bit pattern (``f`` is exact), ``s = f / (2 + f)``, ``log(1 + f) = f -
    f^2/2 + s (f^2/2 + R(s^2))`` with ``R`` the degree-7 polynomial above, and ``k ln 2`` split in
    two so that ``k * _LN2_HI`` is exact.  Within one ulp of the exact logarithm everywhere
    (measured against 40-digit mpmath: at most 0.59 ulp on [2**-53, 0.075], the range AS241's
    tails need, and 0.75 ulp near 1, where the final subtraction cancels); no libm call.
    Zero, negative, infinite and NaN arguments give meaningless finite or NaN values: callers
    screen them.  Written without branches (the subnormal rescaling is a select) so that loops
    calling it vectorize.
    """
    tiny = x < _MIN_NORMAL
    # exact: subnormals become normal, their exponent 54 lower
    return _log_normal(x * _TWO54 if tiny else x, np.int64(54) if tiny else np.int64(0))


@_inline_kernel
def _log_normal(x, shift):
    """ln(x) - shift ln 2 for a normal, finite x > 0 (x >= 2**-1022): :func:`_log` without
    its subnormal select, for arguments known to be normal (Box-Muller's U >= 2**-53)."""
    bits = double_bits(x)
    # subtracting sqrt(1/2)'s pattern makes the exponent field round at sqrt(2), not at 2
    k = (bits - _SQRT_HALF_BITS) >> _SH52
    f = bits_double(bits - (k << _SH52)) - 1.0   # exact (Sterbenz)
    kf = np.float64(k - shift)
    s = f / (2.0 + f)
    z = s * s
    # Estrin's scheme: shorter dependency chains than Horner's, which matters in the tail loops
    z2 = z * z
    z4 = z2 * z2
    r = z * (((_LG1 + z * _LG2) + z2 * (_LG3 + z * _LG4))
             + z4 * ((_LG5 + z * _LG6) + z2 * _LG7))
    hfsq = 0.5 * f * f
    return kf * _LN2_HI - ((hfsq - (s * (hfsq + r) + kf * _LN2_LO)) - f)


#: The branch-free logarithm above, for other modules' loops over tiles (``models.heston``).
log = _log


# --- AS241 PPND16 coefficients (Wichura 1988) --------------------------------------------------
_SPLIT1 = 0.425
_SPLIT2 = 5.0
_CONST1 = 0.180625
_CONST2 = 1.6

# central region |q| <= 0.425
_A0 = 3.3871328727963666080e0
_A1 = 1.3314166789178437745e2
_A2 = 1.9715909503065514427e3
_A3 = 1.3731693765509461125e4
_A4 = 4.5921953931549871457e4
_A5 = 6.7265770927008700853e4
_A6 = 3.3430575583588128105e4
_A7 = 2.5090809287301226727e3
_B1 = 4.2313330701600911252e1
_B2 = 6.8718700749205790830e2
_B3 = 5.3941960214247511077e3
_B4 = 2.1213794301586595867e4
_B5 = 3.9307895800092710610e4
_B6 = 2.8729085735721942674e4
_B7 = 5.2264952788528545610e3

# intermediate region r = sqrt(-log(min(p, 1 - p))) <= 5
_C0 = 1.42343711074968357734e0
_C1 = 4.63033784615654529590e0
_C2 = 5.76949722146069140550e0
_C3 = 3.64784832476320460504e0
_C4 = 1.27045825245236838258e0
_C5 = 2.41780725177450611770e-1
_C6 = 2.27238449892691845833e-2
_C7 = 7.74545014278341407640e-4
_D1 = 2.05319162663775882187e0
_D2 = 1.67638483018380384940e0
_D3 = 6.89767334985100004550e-1
_D4 = 1.48103976427480074590e-1
_D5 = 1.51986665636164571966e-2
_D6 = 5.47593808499534494600e-4
_D7 = 1.05075007164441684324e-9

# far tail r > 5 (min(p, 1 - p) < exp(-25) ~ 1.4e-11)
_E0 = 6.65790464350110377720e0
_E1 = 5.46378491116411436990e0
_E2 = 1.78482653991729133580e0
_E3 = 2.96560571828504891230e-1
_E4 = 2.65321895265761230930e-2
_E5 = 1.24266094738807843860e-3
_E6 = 2.71155556874348757815e-5
_E7 = 2.01033439929228813265e-7
_F1 = 5.99832206555887937690e-1
_F2 = 1.36929880922735805310e-1
_F3 = 1.48753612908506148525e-2
_F4 = 7.86869131145613259100e-4
_F5 = 1.84631831751005468180e-5
_F6 = 1.42151175831644588870e-7
_F7 = 2.04426310338993978564e-15


@_inline_kernel
def _central(u):
    """AS241's central-region value for ``|u - 1/2| <= 0.425`` (garbage elsewhere, no branch)."""
    q = u - 0.5
    r = _CONST1 - q * q
    num = fma(fma(fma(fma(fma(fma(fma(_A7, r, _A6), r, _A5), r, _A4), r, _A3), r, _A2), r, _A1),
              r, _A0)
    den = fma(fma(fma(fma(fma(fma(fma(_B7, r, _B6), r, _B5), r, _B4), r, _B3), r, _B2), r, _B1),
              r, 1.0)
    return q * num / den


@_inline_kernel
def _signed_neg_log(u):
    """``-log(min(u, 1 - u))``, negated when ``u < 1/2``: AS241's ``r**2`` with the sign of the
    result.  For ``u`` in (0, 1) outside the central region its magnitude is >= -log(0.075) > 2.5.
    """
    q = u - 0.5
    p = u if q < 0.0 else 1.0 - u      # 1 - u is exact for u >= 1/2 (Sterbenz)
    r2 = -_log(p)
    return -r2 if q < 0.0 else r2


@_inline_kernel
def _tail(v):
    """AS241's tail value from ``v = _signed_neg_log(u)``: ``r = sqrt(|v|)``, the intermediate
    (r <= 5) or far (r > 5) rational function of ``r``, with the sign of ``v``.

    The region is chosen by selecting coefficients, not by branching, so a loop over it
    vectorizes; the arithmetic is the same either way.
    """
    r = math.sqrt(math.fabs(v))
    sign = -1.0 if v < 0.0 else 1.0
    if r <= _SPLIT2:
        x = r - _CONST2
        a7, a6, a5, a4, a3, a2, a1, a0 = _C7, _C6, _C5, _C4, _C3, _C2, _C1, _C0
        b7, b6, b5, b4, b3, b2, b1 = _D7, _D6, _D5, _D4, _D3, _D2, _D1
    else:
        x = r - _SPLIT2
        a7, a6, a5, a4, a3, a2, a1, a0 = _E7, _E6, _E5, _E4, _E3, _E2, _E1, _E0
        b7, b6, b5, b4, b3, b2, b1 = _F7, _F6, _F5, _F4, _F3, _F2, _F1
    num = fma(fma(fma(fma(fma(fma(fma(a7, x, a6), x, a5), x, a4), x, a3), x, a2), x, a1), x, a0)
    den = fma(fma(fma(fma(fma(fma(fma(b7, x, b6), x, b5), x, b4), x, b3), x, b2), x, b1), x, 1.0)
    # sign * num is exact, so this is -(num / den) or num / den bit for bit
    return sign * num / den


@kernel
def ndtri(u):
    """Inverse of the standard normal CDF, ``Phi^{-1}(u)``, for ``u`` in (0, 1).

    Wichura's algorithm AS241, function PPND16 (M. J. Wichura, "Algorithm AS 241: The
    percentage points of the normal distribution", Applied Statistics 37(3), 477-484, 1988):
    degree-7 rational minimax approximations in three regions, accurate to about 1 part in
    1e16, with the tails' ``log`` computed by :func:`_log` (within an ulp of the exact value).
    ``ndtri(0) = -inf``, ``ndtri(1) = +inf``; outside [0, 1] or NaN gives NaN.

    The same helpers, with the same arithmetic, make :func:`fill_normals`' vectorized loops, so
    the two agree bit for bit.
    """
    q = u - 0.5
    if math.fabs(q) <= _SPLIT1:
        return _central(u)
    p = u if q < 0.0 else 1.0 - u
    if not p > 0.0:  # p <= 0 or NaN
        if p == 0.0:
            return -math.inf if q < 0.0 else math.inf
        return math.nan
    return _tail(_signed_neg_log(u))


@_inline_kernel
def _uniforms_to_normals(out, buf):
    """``out[j] = ndtri(out[j])`` for ``j < out.size <= 64``, ``out`` holding uniforms in (0, 1).

    ``buf`` is scratch of at least ``n + 3`` float64.  Every loop is branch-free (LLVM vectorizes
    them); the only data-dependent control flow is the walk over the set bits of the tail mask.
    """
    # 1. central region in place; tail elements keep their uniform and get a bit in the mask
    n = out.size
    mask = _U0
    for j in range(n):
        u = out[j]
        in_tail = math.fabs(u - 0.5) > _SPLIT1
        mask |= np.uint64(in_tail) << np.uint64(j)
        z = _central(u)
        out[j] = u if in_tail else z
    # 2. gather the tail uniforms (about 15 % of them), padded with a harmless value so that
    #    the vector loops below run whole vectors only
    nt = 0
    bits = mask
    while bits != _U0:
        buf[nt] = out[np.int64(_trailing_zeros(bits))]
        nt += 1
        bits &= bits - _U1
    nv = (nt + 3) & -4
    for k in range(nt, nv):
        buf[k] = 0.25
    # 3. the tails, in two loops: shorter dependency chains keep more of them in flight
    for k in range(nv):
        buf[k] = _signed_neg_log(buf[k])
    for k in range(nv):
        buf[k] = _tail(buf[k])
    # 4. scatter back
    nt = 0
    bits = mask
    while bits != _U0:
        out[np.int64(_trailing_zeros(bits))] = buf[nt]
        nt += 1
        bits &= bits - _U1


@kernel
def antithetic(stream):
    """Whether ``stream`` draws antithetic pairs: paths 2q and 2q + 1 get the draws +z and -z,
    z the draw of path q in the plain stream ``stream & ~ANTITHETIC`` (Glasserman 2004, §4.2).
    A pure function of (seed, underlying, path, draw) like any other stream; a pair never
    straddles a tile (``engine.TILE`` is even) when the run's paths are even in number."""
    return (np.uint64(stream) & ANTITHETIC) != _U0


# --- the uniforms of (stream, path, draw) --------------------------------------------------------

_U32 = np.uint64(32)
_U62 = np.uint64(62)
_PAIR_MASK = np.uint64((1 << 63) - 1)


@_inline_kernel
def _counter(stream, draw):
    """Threefry's second counter word for draw ``draw`` of plain stream ``stream``: ``stream *
    2**32 + draw`` (both uint64; unique while stream < 2**31 and draw < 2**32)."""
    return (stream << _U32) | draw


@kernel
def random_word(k0, k1, stream, path, draw):
    """The 64 random bits behind draw ``draw`` of path ``path`` in a plain stream: word
    ``path & 1`` of ``threefry2x64_20(path >> 1, stream * 2**32 + draw, k0, k1)``."""
    p = np.uint64(path)
    w0, w1 = _threefry(p >> _U1, _counter(np.uint64(stream), np.uint64(draw)), np.uint64(k0),
                       np.uint64(k1))
    return w1 if p & _U1 else w0


# --- Box-Muller ----------------------------------------------------------------------------------

# sin and cos on |phi| <= pi/4 by their Taylor series to x^15 and x^16: the first omitted terms
# are below (pi/4)^17/17! = 4.6e-17 and (pi/4)^18/18! = 2.0e-18 (Abramowitz & Stegun 4.3.65-66).
_SIN = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8))
_COS = tuple((-1) ** k / math.factorial(2 * k) for k in range(9))
(_SN1, _SN3, _SN5, _SN7, _SN9, _SN11, _SN13, _SN15) = _SIN
(_CS0, _CS2, _CS4, _CS6, _CS8, _CS10, _CS12, _CS14, _CS16) = _COS
_QUARTER_TURN = math.pi / 2


@_inline_kernel
def _circle_point(w):
    """``(cos a, sin a)`` of an angle ``a`` uniform on [0, 2 pi), from 64 random bits ``w``.

    The top two bits pick a quarter turn q, the next 52 an offset phi = (j + 1/2) 2^-52 - 1/2
    quarter turns, |phi| < pi/4, so a = (q + phi) pi/2 lies on a grid symmetric about every
    axis.  cos and sin of phi are polynomials (above); turning by q quarters swaps and negates
    them exactly.  Branch-free, so loops over it vectorize.
    """
    q = np.int64(w >> _U62)
    j = np.float64(np.int64((w << _U2) >> _SH12))
    phi = ((j + 0.5) * _TWO_M52 - 0.5) * _QUARTER_TURN
    p2 = phi * phi
    s = phi * fma(fma(fma(fma(fma(fma(fma(_SN15, p2, _SN13), p2, _SN11), p2, _SN9), p2, _SN7), p2,
                          _SN5), p2, _SN3), p2, _SN1)
    c = fma(fma(fma(fma(fma(fma(fma(fma(_CS16, p2, _CS14), p2, _CS12), p2, _CS10), p2, _CS8), p2,
                        _CS6), p2, _CS4), p2, _CS2), p2, _CS0)
    odd = (q & 1) != 0
    x = -s if odd else c
    y = c if odd else s
    return (-x, -y) if q >= 2 else (x, y)


@_inline_kernel
def _box_muller(w0, w1):
    """The two independent standard normals of a Box-Muller pair (Box & Muller, "A note on the
    generation of random normal deviates", Ann. Math. Statist. 29, 1958):
    ``sqrt(-2 log U) (cos a, sin a)``, U = ``bits_to_uniform(w0)`` in (0, 1) and the angle a
    from ``w1`` (:func:`_circle_point`).  |z| <= sqrt(106 log 2) = 8.57."""
    radius = math.sqrt(-2.0 * _log(bits_to_uniform(w0)))
    x, y = _circle_point(w1)
    return radius * x, radius * y


@kernel
def normal(k0, k1, stream, path, draw):
    """Standard normal number ``draw`` of path ``path`` in stream ``stream`` under key (k0, k1).

    Paths 2m and 2m + 1 share the Box-Muller pair of ``threefry2x64_20(m, stream * 2**32 +
    draw, k0, k1)``: the cosine side for the even path, the sine side for the odd.  A pure
    function of its (uint64) arguments.  In an antithetic stream (``antithetic``), (-1)^path
    times the draw of path ``path >> 1`` in the plain stream.
    """
    p, s = np.uint64(path), np.uint64(stream)
    sign = 1.0
    if antithetic(s):
        sign = -1.0 if p & _U1 else 1.0
        p, s = p >> _U1, s & _PLAIN
    w0, w1 = _threefry(p >> _U1, _counter(s, np.uint64(draw)), np.uint64(k0), np.uint64(k1))
    x, y = _box_muller(w0, w1)
    return sign * (y if p & _U1 else x)


@kernel
def inverse_normal(k0, k1, stream, path, draw):
    """The normal of draw ``draw`` of path ``path`` by inversion: ``ndtri(U)``, U =
    ``bits_to_uniform(random_word(...))``.  For the draws whose uniform itself is also needed
    (QE's variance step, ``fill_inverse_normals_and_complements``); a draw number is read either
    this way or by :func:`normal`, never both.  In an antithetic stream the odd path of a pair has
    the uniform 1 - U and the normal -z."""
    p, s = np.uint64(path), np.uint64(stream)
    if antithetic(s):
        z = ndtri(bits_to_uniform(random_word(k0, k1, s & _PLAIN, p >> _U1, draw)))
        return -z if p & _U1 else z
    return ndtri(bits_to_uniform(random_word(k0, k1, s, p, draw)))


@_inline_kernel
def _gaussian_pairs(k0, k1, c1, m0, n, words, out):
    """The normals of the n <= ``_PAIRS`` pairs of paths from pair m0 into out[:2 n] (paths
    2 m0 ... of a plain stream, counter word c1), through words (2 ``_PAIRS`` scratch).

    :func:`_box_muller` in three branch-free loops over the pairs, each vectorized: the
    Threefry words, first words in words[:n] and second in words[_PAIRS:] (contiguous rows, no
    shuffles); -2 ln U in place of the first words; then cos and sin of the angle times the
    radius, written path by path.  One loop for all of it spills registers, and a loop whose
    dependency chain (log, division, square root) is longer than the scheduler holds runs at its
    latency: split, each keeps several iterations in flight (2.42 against 2.15 ns a normal,
    128-path tiles, measured on AMD Zen 4).  The same operations as ``_box_muller``, so the same
    bits."""
    half = n >> 1
    for m in range(half):
        # two independent blocks an iteration: Threefry's twenty rounds are one dependency
        # chain, and two chains keep the vector units busier (1.09 against 0.94 ns a normal)
        w0, w1 = _threefry((m0 + np.uint64(m)) & _PAIR_MASK, c1, k0, k1)
        u0, u1 = _threefry((m0 + np.uint64(m + half)) & _PAIR_MASK, c1, k0, k1)
        words[m] = bits_double(np.int64(w0))
        words[_PAIRS + m] = bits_double(np.int64(w1))
        words[m + half] = bits_double(np.int64(u0))
        words[_PAIRS + m + half] = bits_double(np.int64(u1))
    if n & 1:
        w0, w1 = _threefry((m0 + np.uint64(n - 1)) & _PAIR_MASK, c1, k0, k1)
        words[n - 1] = bits_double(np.int64(w0))
        words[_PAIRS + n - 1] = bits_double(np.int64(w1))
    _box_muller_pairs(words, _PAIRS, n, out)


@_inline_kernel
def _box_muller_pairs(words, second, n, out):
    """out[2 m], out[2 m + 1] = the Box-Muller pair of words[m] and words[second + m] (raw
    Threefry words stored as doubles) for m < n, in two loops: -2 ln U in place of the first
    words, then cos and sin of the angle times the radius (``_gaussian_pairs``)."""
    for m in range(n):
        words[m] = -2.0 * _log_normal(bits_to_uniform(np.uint64(double_bits(words[m]))),
                                      np.int64(0))
    for m in range(n):
        x, y = _circle_point(np.uint64(double_bits(words[second + m])))
        radius = math.sqrt(words[m])
        out[2 * m] = radius * x
        out[2 * m + 1] = radius * y


@_inline_kernel
def _pair_cut(path0, n):
    """How a fill of n paths from path0 splits into whole pairs (2m, 2m + 1): (head, m0,
    pairs, last): head = 1 when the first path is odd (the second half of its pair), pairs
    whole pairs from pair m0, last = 1 when a lone even path ends the cut."""
    p = np.uint64(path0)
    head = np.int64(p & _U1) if n > 0 else 0
    pairs = (n - head) >> 1
    return head, (p + np.uint64(head)) >> _U1, pairs, (n - head) & 1


@_inline_kernel
def _fill_uniform_pairs(k0, k1, stream, path0, draw, out):
    """``out[i] = bits_to_uniform(random_word(k0, k1, stream, path0 + i, draw))`` in a plain
    stream (paths wrap modulo 2**64), any size and stride.  One Threefry call serves each pair
    of paths (2m, 2m + 1); the loop over whole pairs has no branch and no call, so LLVM
    vectorizes it (8 pairs to a 512-bit register)."""
    a0, a1 = np.uint64(k0), np.uint64(k1)
    c1 = _counter(np.uint64(stream), np.uint64(draw))
    n = out.size
    head, m0, pairs, last = _pair_cut(path0, n)
    if head:                                       # an odd first path: the pair's second half
        out[0] = _lone(a0, a1, stream, np.uint64(path0), draw, None)
    body = _view(out, head, 2 * pairs)
    for m in range(pairs):
        w0, w1 = _threefry((m0 + np.uint64(m)) & _PAIR_MASK, c1, a0, a1)
        body[2 * m] = bits_to_uniform(w0)
        body[2 * m + 1] = bits_to_uniform(w1)
    if last:                                       # an even last path: the pair's first half
        out[n - 1] = _lone(a0, a1, stream, np.uint64(path0) + np.uint64(n - 1), draw, None)


@_inline_kernel
def _fill_gaussian_pairs(k0, k1, stream, path0, draw, out):
    """``out[i] = normal(k0, k1, stream, path0 + i, draw)`` in a plain stream, as
    ``_fill_uniform_pairs``: whole pairs by ``_gaussian_pairs``, 64 at a time through a stack
    buffer, and a lone path at either end by one scalar block.  Kept apart from the uniform
    fill: one function for both, switched by an argument, compiled the Box-Muller loops into
    the uniform fills too."""
    a0, a1 = np.uint64(k0), np.uint64(k1)
    c1 = _counter(np.uint64(stream), np.uint64(draw))
    n = out.size
    head, m0, pairs, last = _pair_cut(path0, n)
    if head:
        out[0] = _lone(a0, a1, stream, np.uint64(path0), draw, True)
    body = _view(out, head, 2 * pairs)
    words = numba.carray(_pair_scratch(), 2 * _PAIRS)
    for start in range(0, pairs, _PAIRS):
        _gaussian_pairs(a0, a1, c1, m0 + np.uint64(start), min(_PAIRS, pairs - start), words,
                        _view(body, 2 * start, 2 * _PAIRS))
    if last:
        out[n - 1] = _lone(a0, a1, stream, np.uint64(path0) + np.uint64(n - 1), draw, True)


@kernel
def _lone(k0, k1, stream, path, draw, gaussian):
    """The value a pair fill writes for one path of a plain stream, as a call: the lone paths
    at the ends of an odd cut (inlined there, they doubled the fills' compile time)."""
    if gaussian is not None:
        return normal(k0, k1, stream, path, draw)
    return bits_to_uniform(random_word(k0, k1, stream, path, draw))


@_inline_kernel
def _spread_pairs(out, comp, odd):
    """Antithetic pairs from plain draws: ``out[i] = +-out[(odd + i) // 2]`` (minus for the odd
    path of a pair), from the back so that no source is overwritten before it is read; comp, if
    not None, gets the pair's 1 - U, or U for the odd path (its uniform is 1 - U)."""
    for i in range(out.size - 1, -1, -1):
        q = (odd + i) // 2
        flip = (odd + i) & 1
        z = out[q]
        out[i] = -z if flip else z
        if comp is not None:
            c = comp[q]
            comp[i] = 1.0 - c if flip else c


@_inline_kernel
def _plain_draws(stream, path0, n):
    """Where a fill of n paths from path0 reads its plain draws: (plain stream, its first path,
    how many, whether the stream is antithetic, path0's parity).  An antithetic stream's pairs
    read path (path0 + i) // 2 of the plain one, computed into the front of the output and
    spread from the back (``_spread_pairs``)."""
    s = np.uint64(stream)
    flip = antithetic(s)
    odd = np.int64(np.uint64(path0) & _U1) if flip else 0
    first = (np.uint64(path0) >> _U1) if flip else np.uint64(path0)
    return s & _PLAIN, first, (min(n, (odd + n + 1) // 2) if flip else n), flip, odd


@kernel
def fill_normal_rows(k0, k1, stream, path0, out, n_rows, row_step, draw0, draw_step, m):
    """``out[j row_step, i] = normal(k0, k1, stream, path0 + i, draw0 + j draw_step)`` for
    ``j < n_rows`` and ``i < m``: :func:`fill_normals` row by row, in one call, for a tile's draws
    of every step at once.  The loops' forty-odd constants are set up once, not once a row (a
    call per 128-path row cost 0.12 ns a normal of that, measured on AMD Zen 4).  ``out`` is
    2-D with contiguous rows (a C array), which the row step and m keep so: a strided or cut
    view would not vectorize the stores.

    In an antithetic stream (where paths must not wrap past 2**64), each pair's plain draw is
    computed once, into the front of the row, then spread from the back."""
    rows = borrow(out)
    plain, first, n_plain, flip, odd = _plain_draws(stream, path0, m)
    for j in range(n_rows):
        row = _view(rows[j * row_step], 0, m)
        draw = np.uint64(draw0) + np.uint64(j) * np.uint64(draw_step)
        # the only inlined copy of the Box-Muller loops: each costs seconds of compiling
        _fill_gaussian_pairs(k0, k1, plain, first, draw, _view(row, 0, n_plain))
        if flip:
            _spread_pairs(row, None, odd)


@kernel
def fill_normals(k0, k1, stream, path0, draw, out):
    """``out[i] = normal(k0, k1, stream, path0 + i, draw)`` for ``i in range(out.size)``, the
    same bits however ``out`` is cut (any size and stride; no heap allocation): the one-row
    case of :func:`fill_normal_rows`."""
    # the engine's own calls' argument types, so that one compiled copy serves both
    fill_normal_rows(np.uint64(k0), np.uint64(k1), np.uint64(stream), np.uint64(path0),
                     _as_rows(out), np.int64(1), np.int64(1), np.int64(draw), np.int64(0),
                     np.int64(out.size))


@_inline_kernel
def _fill_inverse(k0, k1, stream, path0, draw, out, comp):
    """``out[i] = inverse_normal(k0, k1, stream, path0 + i, draw)``, and the uniforms'
    complements 1 - U into comp unless it is None (numba then compiles no trace of them).

    The uniforms are written into ``out`` first, then AS241 runs in blocks of 64
    (:func:`_uniforms_to_normals`: a vectorized central loop, the tails gathered, transformed
    by vectorized loops and scattered back) with a 68-double stack buffer.
    """
    s, first, m, flip, odd = _plain_draws(stream, path0, out.size)
    plain = _view(out, 0, m)
    _fill_uniform_pairs(k0, k1, s, first, draw, plain)
    if comp is not None:
        for j in range(m):
            comp[j] = 1.0 - plain[j]
    buf = numba.carray(_block_scratch(), _SCRATCH)
    for b in range(0, m, _BLOCK):
        _uniforms_to_normals(_view(plain, b, min(_BLOCK, m - b)), buf)
    if flip:
        _spread_pairs(out, comp, odd)


@kernel
def fill_inverse_normals(k0, k1, stream, path0, draw, out):
    """``out[i] = inverse_normal(k0, k1, stream, path0 + i, draw)``, i < out.size."""
    _fill_inverse(k0, k1, stream, path0, draw, out, None)


@kernel
def fill_inverse_normals_and_complements(k0, k1, stream, path0, draw, out, comp):
    """``fill_inverse_normals`` into ``out`` and ``fill_complements`` into ``comp`` (of out's
    size) at once, the same bits as the two: each uniform serves the normal and its 1 - U."""
    _fill_inverse(k0, k1, stream, path0, draw, out, comp)


@kernel
def fill_complements(k0, k1, stream, path0, draw, out):
    """``out[i] = 1 - U`` for the uniform U behind ``inverse_normal(k0, k1, stream, path0 + i,
    draw)`` (so Phi^-1(U) is that normal), i < out.size.  Exact: U lies on a grid symmetric
    about 1/2 (``bits_to_uniform``).  In an antithetic stream the odd path of a pair has the
    uniform 1 - U of its pair's, so its complement is U.  QE's exponential branch reads it;
    computing it as Phi(-z) would cost an erfc a draw, which no loop vectorizes."""
    s = np.uint64(stream)
    for i in range(out.size):
        pi = np.uint64(path0) + np.uint64(i)
        if antithetic(s):
            u = bits_to_uniform(random_word(k0, k1, s & _PLAIN, pi >> _U1, draw))
            out[i] = u if pi & _U1 else 1.0 - u
        else:
            out[i] = 1.0 - bits_to_uniform(random_word(k0, k1, s, pi, draw))


# --- Python-side key helpers --------------------------------------------------------------------

def seed_key(seed):
    """Key word for an integer ``seed`` in [0, 2**64), as ``np.uint64``.

    Accepts Python ints and NumPy integer scalars; rejects bools, non-integers and values out of
    range with ``ValueError`` naming the value.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    value = int(seed)
    if not 0 <= value < 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return np.uint64(value)


def name_key(name):
    """Stable 64-bit key of a string: blake2b (8-byte digest) of its UTF-8, little-endian.

    Independent of Python's hash randomization, platform and input order, so each underlying
    keeps its own stream however the tables are sorted.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))
