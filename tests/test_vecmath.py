"""The vectorizable exp against libm's (numpy's exp), in ulps, over the range the pricers use and
up to the clamp; the fused multiply-add it is built from against exact rational arithmetic."""
from fractions import Fraction

import numpy as np
from numba import njit

from mcgreeks import vecmath


@njit
def _fma_all(a, b, c, out):
    for i in range(a.size):
        out[i] = vecmath.fma(a[i], b[i], c[i])


def test_fma_rounds_once():
    """a·b + c computed exactly (Fraction) and rounded once (Python's float() of a Fraction is
    correctly rounded); chosen so that a·b and c nearly cancel, where rounding a·b first
    would differ."""
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-2, 2, 2000), rng.uniform(-2, 2, 2000)
    c = -(a * b) * (1 + rng.uniform(-1e-12, 1e-12, 2000))
    got = np.empty_like(a)
    _fma_all(a, b, c, got)
    exact = np.array([float(Fraction(x) * Fraction(y) + Fraction(z)) for x, y, z in zip(a, b, c)])
    assert np.array_equal(got, exact)
    assert not np.array_equal(a * b + c, exact)     # the test can tell fused from unfused


@njit
def _exp_all(x, out):
    for i in range(x.size):
        out[i] = vecmath.exp(x[i])


def test_exp_within_two_ulp_of_libm():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-5, 5, 200_000), rng.uniform(-700, 700, 200_000),
                        np.linspace(-1e-12, 1e-12, 1001), [0.0, 1.0, -1.0, np.log(2.0)]])
    got = np.empty_like(x)
    _exp_all(x, got)
    ulps = np.abs(got - np.exp(x)) / np.spacing(np.exp(x))
    assert ulps.max() <= 2.0, (x[ulps.argmax()], ulps.max())
    assert got[-4] == 1.0


def test_exp_is_clamped_not_garbage_beyond_708():
    got = np.empty(2)
    _exp_all(np.array([-1e4, 1e4]), got)
    np.testing.assert_allclose(got, np.exp([-vecmath.EXP_MAX, vecmath.EXP_MAX]), rtol=1e-15)
