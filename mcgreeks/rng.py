"""Counter-based standard normal draws for the mcgreeks path simulator.

What the generator is
---------------------
Uniform bits come from the Philox4x64-10 block cipher of Salmon, Moraes, Dror and Shaw
("Parallel random numbers: as easy as 1, 2, 3", Proc. SC11, 2011): a keyed bijection of a
256-bit counter ``(c0, c1, c2, c3)`` under a 128-bit key ``(k0, k1)``, made of ten rounds of two
64x64->128-bit multiplications, XORs and a Weyl-sequence key schedule.  It passes BigCrush and
is the ``philox4x64_10`` of the Random123 library and of ``numpy.random.Philox``.  Each 64-bit
output word is turned into a uniform on the open interval (0, 1) by :func:`bits_to_uniform`, and
into a standard normal by :func:`ndtri`, Wichura's algorithm AS241 (PPND16) for the inverse
normal distribution function (relative accuracy about 1e-16).  Inversion, rather than
Box-Muller or a rejection method, keeps exactly one uniform per normal, so a draw is addressable
and monotone in its uniform (good for common random numbers across bumped Greeks).

The (seed, stream, path, draw) -> normal mapping
------------------------------------------------
The key is ``(k0, k1)``, typically ``k0 = seed_key(seed)`` and ``k1 = name_key(underlying)``, so
each underlying has its own independent numbers whatever the order of the input tables.  Draw
number ``draw`` of path number ``path`` in stream ``stream`` (``STREAM_MAIN`` for pricing,
``STREAM_PILOT`` for pilot runs such as regression or control-variate fits) is::

    w = philox4x64_10(path >> 2, draw, stream, 0, k0, k1)[path & 3]
    z = ndtri(bits_to_uniform(w))

Four consecutive paths (``4m .. 4m + 3``) share one Philox call for the same draw, which
:func:`fill_normals` exploits.  All counter and key arguments are ``uint64``.

Why counter-based
-----------------
A normal is a pure function of (key, stream, path, draw): there is no generator state to carry
from one draw to the next.  Results are therefore bit-for-bit independent of the number of
threads, of how paths are cut into chunks, of the order in which chunks run, and of the machine
(only IEEE-754 double arithmetic and correctly rounded ``sqrt`` are used; ``log`` comes from the
platform's libm, which is accurate to within an ulp).  Any single path can be replayed on its own
for debugging, and the pilot and main runs can never overlap by accident.

References
----------
* J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
  1, 2, 3", SC '11, doi:10.1145/2063384.2063405.  Known-answer vectors: Random123
  ``examples/kat_vectors``.
* M. J. Wichura, "Algorithm AS 241: The percentage points of the normal distribution",
  Applied Statistics 37(3), 477-484 (1988), doi:10.2307/2347330.

Notes on typing: numba has no 128-bit integer and promotes ``uint64 op int64`` to ``float64``,
so every integer literal used with a ``uint64`` below is a module-level ``np.uint64`` constant
(numba freezes these as typed compile-time constants).  Called from Python, numba boxes ``uint64``
results as Python ``int``; inside other kernels they are ``uint64``.
"""
import hashlib
import math
import numbers

import numpy as np

from mcgreeks._jit import kernel

__all__ = [
    "STREAM_MAIN",
    "STREAM_PILOT",
    "philox4x64_10",
    "bits_to_uniform",
    "ndtri",
    "normal",
    "fill_normals",
    "seed_key",
    "name_key",
]

STREAM_MAIN = np.uint64(0)
STREAM_PILOT = np.uint64(1)

# --- uint64 constants (never mix uint64 with a Python int literal inside a kernel) -------------
_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)
_U4 = np.uint64(4)
_SH12 = np.uint64(12)
_SH32 = np.uint64(32)
_MASK32 = np.uint64(0xFFFFFFFF)

# Philox4x64 multipliers and Weyl key increments (golden ratio, sqrt(3) - 1).
_PHILOX_M0 = np.uint64(0xD2E7470EE14C6C93)
_PHILOX_M1 = np.uint64(0xCA5A826395121157)
_PHILOX_W0 = np.uint64(0x9E3779B97F4A7C15)
_PHILOX_W1 = np.uint64(0xBB67AE8584CAA73B)

_TWO_M52 = 2.0 ** -52


@kernel
def _mulhilo64(a, b):
    """Full 128-bit product of two uint64: returns ``(high 64 bits, low 64 bits)``.

    Schoolbook multiplication on 32-bit halves; no partial sum can overflow 64 bits:
    ``mid <= 3 * (2**32 - 1)``.
    """
    a_lo = a & _MASK32
    a_hi = a >> _SH32
    b_lo = b & _MASK32
    b_hi = b >> _SH32
    p_ll = a_lo * b_lo
    p_lh = a_lo * b_hi
    p_hl = a_hi * b_lo
    p_hh = a_hi * b_hi
    mid = (p_ll >> _SH32) + (p_lh & _MASK32) + (p_hl & _MASK32)
    hi = p_hh + (p_lh >> _SH32) + (p_hl >> _SH32) + (mid >> _SH32)
    return hi, a * b


@kernel
def _philox_round(c0, c1, c2, c3, k0, k1):
    """One Philox4x64 round (S-box then the fixed word permutation)."""
    hi0, lo0 = _mulhilo64(_PHILOX_M0, c0)
    hi1, lo1 = _mulhilo64(_PHILOX_M1, c2)
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


@kernel
def philox4x64_10(c0, c1, c2, c3, k0, k1):
    """Philox4x64 with 10 rounds: encrypt counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``.

    Returns a 4-tuple of ``uint64``.  Round ``r`` (0-based) uses the key bumped ``r`` times by
    the Weyl increments, as in Random123's ``philox4x64_R(10, ...)``.  Arguments are cast to
    ``uint64`` (a no-op when they already are).
    """
    x0 = np.uint64(c0)
    x1 = np.uint64(c1)
    x2 = np.uint64(c2)
    x3 = np.uint64(c3)
    y0 = np.uint64(k0)
    y1 = np.uint64(k1)
    x0, x1, x2, x3 = _philox_round(x0, x1, x2, x3, y0, y1)
    for _ in range(9):
        y0 += _PHILOX_W0
        y1 += _PHILOX_W1
        x0, x1, x2, x3 = _philox_round(x0, x1, x2, x3, y0, y1)
    return x0, x1, x2, x3


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


@kernel
def ndtri(u):
    """Inverse of the standard normal CDF, ``Phi^{-1}(u)``, for ``u`` in (0, 1).

    Wichura's algorithm AS241, function PPND16 (M. J. Wichura, "Algorithm AS 241: The
    percentage points of the normal distribution", Applied Statistics 37(3), 477-484, 1988):
    degree-7 rational minimax approximations in three regions, accurate to about 1 part in
    1e16.  ``ndtri(0) = -inf``, ``ndtri(1) = +inf``; outside [0, 1] or NaN gives NaN.
    """
    q = u - 0.5
    if math.fabs(q) <= _SPLIT1:
        r = _CONST1 - q * q
        num = ((((((_A7 * r + _A6) * r + _A5) * r + _A4) * r + _A3) * r + _A2) * r + _A1) * r + _A0
        den = ((((((_B7 * r + _B6) * r + _B5) * r + _B4) * r + _B3) * r + _B2) * r + _B1) * r + 1.0
        return q * num / den
    if q < 0.0:
        r = u
    else:
        r = 1.0 - u  # exact for u >= 0.5 (Sterbenz)
    if not r > 0.0:  # r <= 0 or NaN
        if r == 0.0:
            return -math.inf if q < 0.0 else math.inf
        return math.nan
    r = math.sqrt(-math.log(r))
    if r <= _SPLIT2:
        r -= _CONST2
        num = ((((((_C7 * r + _C6) * r + _C5) * r + _C4) * r + _C3) * r + _C2) * r + _C1) * r + _C0
        den = ((((((_D7 * r + _D6) * r + _D5) * r + _D4) * r + _D3) * r + _D2) * r + _D1) * r + 1.0
    else:
        r -= _SPLIT2
        num = ((((((_E7 * r + _E6) * r + _E5) * r + _E4) * r + _E3) * r + _E2) * r + _E1) * r + _E0
        den = ((((((_F7 * r + _F6) * r + _F5) * r + _F4) * r + _F3) * r + _F2) * r + _F1) * r + 1.0
    x = num / den
    return -x if q < 0.0 else x


@kernel
def _bits_to_normal(x):
    return ndtri(bits_to_uniform(x))


@kernel
def normal(k0, k1, stream, path, draw):
    """Standard normal number ``draw`` of path ``path`` in stream ``stream`` under key (k0, k1).

    Word ``path & 3`` of ``philox4x64_10(path >> 2, draw, stream, 0, k0, k1)``, mapped through
    :func:`bits_to_uniform` and :func:`ndtri`.  A pure function of its (uint64) arguments.
    """
    p = np.uint64(path)
    w0, w1, w2, w3 = philox4x64_10(p >> _U2, np.uint64(draw), np.uint64(stream), _U0,
                                   np.uint64(k0), np.uint64(k1))
    j = p & _U3
    if j == _U0:
        w = w0
    elif j == _U1:
        w = w1
    elif j == _U2:
        w = w2
    else:
        w = w3
    return _bits_to_normal(w)


@kernel
def fill_normals(k0, k1, stream, path0, draw, out):
    """``out[i] = normal(k0, k1, stream, path0 + i, draw)`` for ``i in range(out.size)``.

    ``out`` is a 1-D float64 array (any stride).  One Philox call serves each group of four
    paths; an unaligned head (``path0 % 4 != 0``) and a partial tail are handled with one extra
    call each.  Path numbers wrap modulo 2**64 exactly as ``path0 + i`` does in uint64.
    No allocation.
    """
    n = out.size
    if n == 0:
        return
    a0 = np.uint64(k0)
    a1 = np.uint64(k1)
    s = np.uint64(stream)
    d = np.uint64(draw)
    p = np.uint64(path0)
    i = 0
    j = p & _U3
    if j != _U0:
        # unaligned head: words j..3 of the group containing path0
        w0, w1, w2, w3 = philox4x64_10(p >> _U2, d, s, _U0, a0, a1)
        if j == _U1:
            out[i] = _bits_to_normal(w1)
            i += 1
            if i == n:
                return
        if j <= _U2:
            out[i] = _bits_to_normal(w2)
            i += 1
            if i == n:
                return
        out[i] = _bits_to_normal(w3)
        i += 1
        p += _U4 - j  # now aligned (wraps modulo 2**64 like path0 + i)
    # aligned full groups
    while i + 4 <= n:
        w0, w1, w2, w3 = philox4x64_10(p >> _U2, d, s, _U0, a0, a1)
        out[i] = _bits_to_normal(w0)
        out[i + 1] = _bits_to_normal(w1)
        out[i + 2] = _bits_to_normal(w2)
        out[i + 3] = _bits_to_normal(w3)
        i += 4
        p += _U4
    # partial tail: 1 to 3 paths left
    m = n - i
    if m > 0:
        w0, w1, w2, w3 = philox4x64_10(p >> _U2, d, s, _U0, a0, a1)
        out[i] = _bits_to_normal(w0)
        if m > 1:
            out[i + 1] = _bits_to_normal(w1)
        if m > 2:
            out[i + 2] = _bits_to_normal(w2)


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
