"""Scrambled Sobol' points for randomized quasi-Monte Carlo (RQMC).

The sequence
------------
Sobol' points in base 2 with 32-bit integer coordinates, in up to ``MAX_DIM = 21201`` dimensions.
The direction numbers are those of Joe & Kuo's file ``new-joe-kuo-6.21201`` (search criterion
D(6); S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better two-dimensional
projections", SIAM J. Sci. Comput. 30(5), 2635-2654, 2008).  They are not shipped here: they are
read at first use from the installed SciPy, whose ``scipy.stats._sobol._initialize_v(v, dim,
bits)`` fills ``v[d, j]`` (uint32, ``bits=32``) with direction number ``j`` of dimension ``d``,
scaled so that ``v[d, 0]`` holds the most significant bit (``v[d, 0] == 2**31``).  That is the
function behind ``scipy.stats.qmc.Sobol``; dimension 0 is the van der Corput sequence.

Points are in Gray-code order, exactly as SciPy's ``qmc.Sobol(d, scramble=False,
bits=32).random(n)``: the integer coordinate of point ``i`` in dimension ``d`` is the XOR of
``v[d, j]`` over the set bits ``j`` of ``i ^ (i >> 1)``, so point 0 is the origin.  Consecutive
points differ by one direction number: ``x(i) = x(i - 1) ^ v[d, ctz(i)]`` (``ctz`` = number of
trailing zero bits), which :func:`fill_uniforms` uses within a run of indices.

The randomization
-----------------
Linear matrix scramble plus digital shift (J. Matousek, "On the L2-discrepancy for anchored
boxes", J. Complexity 14, 527-556, 1998; A. B. Owen, "Scrambled net variance for integrals of
smooth functions", Ann. Statist. 25, 1541-1562, 1997), the scheme of SciPy's ``scramble=True``:
in each dimension the digit vector of a coordinate is multiplied (over GF(2)) by a random lower
triangular matrix ``M`` with unit diagonal, then XORed with a random 32-bit shift.  ``M`` is
linear, so scrambling each direction number once gives the scrambled points as XORs of
scrambled direction numbers.  The randomness comes from the package's Philox generator, not
SciPy's: randomization ``r`` of dimension ``d`` is a pure function of ``(key0, key1, r, d)``
(see :func:`_scramble_one`).  Every scrambled point is uniform on the 2**-32 grid and any
``2**m`` consecutive points starting at a multiple of ``2**m`` keep the (t, m, s)-net property.

Uniforms are ``(x + 0.5) * 2**-32``: the midpoints of the 2**-32 grid, in the OPEN interval
(0, 1), exactly representable, with mean exactly 1/2 under the random shift.
"""
import functools

import numpy as np

from mcgreeks._jit import kernel, wait_for_background
from mcgreeks.rng import philox4x64_10

__all__ = ["MAX_DIM", "BITS", "directions", "scrambled_directions", "point_bits",
           "fill_uniforms", "points"]

#: Largest dimension count with Joe-Kuo direction numbers (SciPy's ``Sobol.MAXDIM``; written
#: out, as tests/test_sobol.py checks, because importing scipy.stats costs half a second of every
#: process's start whether or not it uses Sobol points).
MAX_DIM = 21201
#: Bits per coordinate; at most ``2**BITS`` distinct points per randomization.
BITS = 32

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_MASK32 = np.uint64(0xFFFFFFFF)
_TWO_M32 = 2.0 ** -32
# Third Philox counter word of every scrambling draw: ASCII "sobolLMS".  The normal draws of
# ``rng`` put a stream number (0 or 1) there, so scrambles never reuse a normal's bits.
_TAG = np.uint64(int.from_bytes(b"sobolLMS", "little"))


def _check_dim(dim):
    if not 1 <= dim <= MAX_DIM:
        raise ValueError(f"dim has value {dim}: must be in [1, {MAX_DIM}]")


@functools.lru_cache(maxsize=8)
def directions(dim):
    """Unscrambled Joe-Kuo direction numbers of dimensions 0..dim-1: uint32 array (dim, 32).

    ``v[d, j]`` is direction number j of dimension d as a 32-bit integer (bit 31 = 2**-1), read
    from SciPy's ``scipy.stats._sobol._initialize_v`` (see the module docstring).  Cached per
    ``dim``; the returned array is read-only.
    """
    from scipy.stats import _sobol

    _check_dim(dim)
    v = np.zeros((dim, BITS), dtype=np.uint32)
    _sobol._initialize_v(v, dim=dim, bits=BITS)
    v.setflags(write=False)
    return v


@kernel
def _scramble_one(v, key0, key1, r, d, col, out):
    """Scrambled direction numbers ``out[:] = M v[:]`` of dimension d, randomization r; returns
    the digital shift.

    Column b of M (the image of bit b) is bit b plus random bits strictly below it, i.e. unit
    diagonal and uniform entries below it in digit order (most significant digit first).  Its
    bits below b are those of word ``b & 3`` of ``philox4x64_10(r, d, TAG, b >> 2)``; the shift
    is the low 32 bits of word 0 of ``philox4x64_10(r, d, TAG, 8)``, all under key (key0, key1).
    """
    for j in range(8):
        w0, w1, w2, w3 = philox4x64_10(r, d, _TAG, j, key0, key1)
        col[4 * j] = w0
        col[4 * j + 1] = w1
        col[4 * j + 2] = w2
        col[4 * j + 3] = w3
    for b in range(32):
        bit = _U1 << np.uint64(b)
        col[b] = bit | (col[b] & (bit - _U1))
    for j in range(out.size):
        # M is linear: M x is the XOR of the columns of M at the set bits of x.
        x = np.uint64(v[j])
        y = _U0
        for b in range(32):
            if (x >> np.uint64(b)) & _U1:
                y ^= col[b]
        out[j] = y
    w0, w1, w2, w3 = philox4x64_10(r, d, _TAG, 8, key0, key1)
    return w0 & _MASK32


@kernel
def _scramble_all(v, key0, key1, dirs, shifts):
    col = np.empty(32, dtype=np.uint64)  # scratch: the columns of one matrix M
    for r in range(dirs.shape[0]):
        for d in range(dirs.shape[1]):
            shifts[r, d] = _scramble_one(v[d], key0, key1, np.uint64(r), np.uint64(d), col,
                                         dirs[r, d])


def scrambled_directions(key0, key1, n_randomizations, dim):
    """Direction numbers and shifts of ``n_randomizations`` independent LMS + shift scrambles.

    Returns ``(dirs, shifts)``: ``dirs[r, d, j]`` (uint32, shape (n_randomizations, dim, 32)) is
    scrambled direction number j of dimension d in randomization r, ``shifts[r, d]`` (uint32)
    its digital shift.  A pure function of (key0, key1, r, d) for each entry (uint64 keys), so
    asking for more randomizations or dimensions never changes the ones already drawn.
    """
    _check_dim(dim)
    if n_randomizations < 1:
        raise ValueError(f"n_randomizations has value {n_randomizations}: must be >= 1")
    dirs = np.empty((n_randomizations, dim, BITS), dtype=np.uint32)
    shifts = np.empty((n_randomizations, dim), dtype=np.uint32)
    wait_for_background("gbm")          # a child may be compiling this kernel (mcgreeks.warmup)
    _scramble_all(directions(dim), np.uint64(key0), np.uint64(key1), dirs, shifts)
    return dirs, shifts


@kernel
def point_bits(dirs, shifts, r, index, dim_k):
    """32-bit integer coordinate ``dim_k`` of point ``index`` (0 <= index < 2**32) of
    randomization r: ``shifts[r, dim_k]`` XOR ``dirs[r, dim_k, j]`` over set bits j of the Gray
    code ``index ^ (index >> 1)``.  Returned as uint64."""
    i = np.uint64(index)
    g = i ^ (i >> _U1)
    x = np.uint64(shifts[r, dim_k])
    j = 0
    while g != _U0:
        if g & _U1:
            x ^= np.uint64(dirs[r, dim_k, j])
        g >>= _U1
        j += 1
    return x


@kernel
def _next_bits(dirs, r, dim_k, i, x):
    """Coordinate of point i given x, that of point i - 1 (i >= 1): the Gray codes of i - 1 and
    i differ only in bit ctz(i), the number of trailing zero bits of i."""
    c = 0
    t = np.uint64(i)
    while (t & _U1) == _U0:
        t >>= _U1
        c += 1
    return x ^ np.uint64(dirs[r, dim_k, c])


@kernel
def fill_uniforms(dirs, shifts, r, index0, dim_k, out):
    """Uniforms of dimension ``dim_k``, randomization r, for points index0 .. index0+out.size-1.

    ``out[k] = (point_bits(dirs, shifts, r, index0 + k, dim_k) + 0.5) * 2**-32`` (float64 in
    the open interval (0, 1)), a pure function of (r, index, dim_k) whatever the split of the
    indices into calls.  Needs ``index0 + out.size <= 2**32``.  One direct evaluation for the
    first point, then one XOR per point.  ``out`` may be strided.  No allocation.
    """
    i = np.uint64(index0)
    x = point_bits(dirs, shifts, r, i, dim_k)
    for k in range(out.size):
        if k > 0:
            i += _U1
            x = _next_bits(dirs, r, dim_k, i, x)
        # x < 2**32 fits an int64, whose conversion to double is exact and fast.
        out[k] = (np.float64(np.int64(x)) + 0.5) * _TWO_M32


def points(key0, key1, r, n, d, scramble=True, index0=0):
    """Points index0 .. index0+n-1 of randomization r as an (n, d) float64 array in (0, 1).

    With ``scramble=False`` the key and r are ignored and the points are SciPy's unscrambled
    ``qmc.Sobol(d, scramble=False, bits=32)`` points moved by half a grid step (+2**-33).
    A convenience for tests and exploration; the engine calls :func:`fill_uniforms`.
    """
    if index0 < 0 or index0 + n > 2 ** BITS:
        raise ValueError(f"indices {index0}..{index0 + n - 1} outside [0, 2**{BITS})")
    if scramble:
        dirs, shifts = scrambled_directions(key0, key1, r + 1, d)
    else:
        r = 0
        dirs = directions(d)[np.newaxis]
        shifts = np.zeros((1, d), dtype=np.uint32)
    out = np.empty((d, n))
    for k in range(d):
        fill_uniforms(dirs, shifts, r, index0, k, out[k])
    return out.T
