"""The vectorizable exp against libm's (numpy's exp), in ulps, over the range the pricers use and
up to the clamp; the fused multiply-add it is built from against exact rational arithmetic; the
normal tail Φ(-z) against 40-digit mpmath; the tile matrix products against NumPy's sums in
the same order."""
from fractions import Fraction

import numpy as np
import pytest
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


@njit
def _normal_tail_all(z, out):
    for i in range(z.size):
        out[i] = vecmath.normal_tail(z[i])


def _normal_tail(z):
    out = np.empty_like(z)
    _normal_tail_all(z, out)
    return out


@njit
def _normal_tail_one_each(z, out):
    for i in range(z.size):
        out[i] = vecmath.normal_tail_one(z[i])


def test_normal_tail_one_is_normal_tail_to_the_bit():
    """The branching form computes the branch-free form's selected branch: the same bits on
    every branch, at and around the switches (|z|/√2 = 0.46875 and 4), in the far tails where
    the exponential underflows, and at ±0, ±inf and NaN."""
    rng = np.random.default_rng(11)
    edges = np.array([0.46875, 4.0]) * np.sqrt(2.0)
    near = np.concatenate([np.nextafter(edges, 0.0), edges, np.nextafter(edges, 100.0)])
    z = np.concatenate([rng.uniform(-40.0, 40.0, 200_000), rng.normal(0.0, 1.0, 100_000), near,
                        -near, [0.0, -0.0, 37.5, 37.7, -37.7, np.inf, -np.inf, np.nan]])
    one = np.empty_like(z)
    _normal_tail_one_each(z, one)
    assert np.array_equal(one, _normal_tail(z), equal_nan=True)


def test_normal_tail_relative_error_against_mpmath():
    """Φ(-z) against 40-digit mpmath ncdf(-z) on a grid of step 1e-3 over [-12, 12], 4000 random
    points and both sides of Cody's interval ends (x = z/√2 = 0.46875 and 4): 6.6e-16 (4.8 ulp)
    measured, against the 1e-14 asked for.  On [8, 12], where rounding z² before the exponential
    would cost up to 7e-15, under 1.5e-15 (5.4e-16 measured)."""
    mp = pytest.importorskip("mpmath")
    rng = np.random.default_rng(5)
    ends = np.array([0.46875, 4.0]) * np.sqrt(2.0)
    ends = np.concatenate([ends, np.nextafter(ends, 0.0), np.nextafter(ends, 13.0)])
    z = np.concatenate([np.linspace(-12.0, 12.0, 24001), rng.uniform(-12.0, 12.0, 4000),
                        ends, -ends])
    got = _normal_tail(z)
    with mp.workdps(40):
        rel = np.array([float(abs(mp.mpf(float(g)) / mp.ncdf(-mp.mpf(float(x))) - 1))
                        for x, g in zip(z, got)])
    assert rel.max() <= 1e-14, (z[rel.argmax()], rel.max())
    assert rel[z >= 8.0].max() <= 1.5e-15, rel[z >= 8.0].max()


def test_normal_tail_symmetric():
    """Φ(-z) + Φ(z) == 1 within 2e-16 on [-8, 8] (for z < 0 it is 1 - Φ(-|z|): 0 measured)."""
    z = np.linspace(-8.0, 8.0, 160_001)
    assert np.abs(_normal_tail(z) + _normal_tail(-z) - 1.0).max() <= 2e-16


def test_normal_tail_decreasing():
    """Non-increasing on a grid of step 1e-5 over [-12, 12] and of step 1e-13 across Cody's
    interval ends, where two approximations meet; strictly decreasing where 1 - Φ(-|z|) still
    moves by more than an ulp of 1 per step (z > -5)."""
    z = np.linspace(-12.0, 12.0, 2_400_001)
    step = np.diff(_normal_tail(z))
    assert step.max() <= 0.0
    assert np.all(step[z[1:] > -5.0] < 0.0)
    for end in (0.46875 * np.sqrt(2.0), 4.0 * np.sqrt(2.0)):
        for z in (end + np.arange(-20_000, 20_001) * 1e-13,
                  -end + np.arange(-20_000, 20_001) * 1e-13):
            assert np.diff(_normal_tail(z)).max() <= 0.0


def test_normal_tail_loop_matches_scalar_calls_and_limits():
    """The vectorized loop gives the same bits as one call at a time; 1/2 at 0, 0 and 1 at
    ±inf and beyond the underflow, nan for nan."""
    z = np.random.default_rng(6).uniform(-14.0, 14.0, 1001)
    assert np.array_equal(_normal_tail(z), [vecmath.normal_tail(x) for x in z])
    got = _normal_tail(np.array([0.0, -0.0, np.inf, -np.inf, 40.0, -40.0, np.nan]))
    assert np.array_equal(got[:6], [0.5, 0.5, 0.0, 1.0, 0.0, 1.0])
    assert np.isnan(got[6])


@njit
def _matmuls(matrix, x, n, m, lower, by_tile, by_step):
    for k in range(x.shape[1]):
        vecmath.tile_matmul(matrix, x[:, k], by_tile[:, k], n, m, lower)
        vecmath.step_matmul(matrix, x, by_step, k, n, m, lower)


@pytest.mark.parametrize("lower", [True, False])
def test_step_and_tile_matrix_products_are_the_same_sums(lower):
    """``step_matmul`` (a step of (row, step, path) arrays) has tile_matmul's bits on the same
    step's view, and both are the sums Σ_s matrix[r, s] x[s] added in order of s, over the
    first m paths only (lower: over s <= r)."""
    rng = np.random.default_rng(3)
    n, steps, width, m = 4, 6, 16, 13
    matrix = rng.standard_normal((n, n))
    x = rng.standard_normal((n, steps, width))
    by_tile, by_step = np.full_like(x, np.nan), np.full_like(x, np.nan)
    _matmuls(matrix, x, n, m, lower, by_tile, by_step)
    assert np.array_equal(by_tile, by_step, equal_nan=True)
    expected = np.zeros((n, steps, m))
    for r in range(n):
        for s_ in range(r + 1 if lower else n):
            expected[r] += matrix[r, s_] * x[s_, :, :m]
    assert np.array_equal(by_step[:, :, :m], expected)
    assert np.isnan(by_step[:, :, m:]).all()
