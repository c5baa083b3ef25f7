"""Tests for mcgreeks.sobol: SciPy's unscrambled Sobol' points, LMS + shift scrambling with the
package's Philox keys, chunk-split invariance, the (0, m, 2)-net property and RQMC accuracy."""
import numpy as np
import pytest
import scipy.special
from scipy.stats import qmc

from mcgreeks import sobol
from mcgreeks.sobol import (
    directions,
    fill_uniforms,
    point_bits,
    points,
    scrambled_directions,
)

KEY = (0x1234_5678_9ABC_DEF0, 0x0FED_CBA9_8765_4321)


def run_bits(dirs, shifts, r, index0, n, d):
    """The integer points behind fill_uniforms: u = (x + 1/2)·2^-32 is exact, so x is too."""
    out = np.empty(n)
    fill_uniforms(dirs, shifts, r, index0, d, out)
    return (out * 2.0 ** 32 - 0.5).astype(np.uint64)


# --- the unscrambled sequence is SciPy's ----------------------------------------------------------

@pytest.mark.parametrize("d", [1, 2, 5, 252])
def test_unscrambled_equals_scipy(d):
    n = 2 ** 12
    ref = qmc.Sobol(d, scramble=False, bits=32).random(n)  # exact multiples of 2**-32
    dirs, shifts = directions(d)[np.newaxis], np.zeros((1, d), dtype=np.uint32)
    for k in range(d):
        bits = run_bits(dirs, shifts, 0, 0, n, k)
        np.testing.assert_array_equal(bits, (ref[:, k] * 2.0 ** 32).astype(np.uint64))
    np.testing.assert_array_equal(points(0, 0, 0, n, d, scramble=False), ref + 2.0 ** -33)


def test_direction_numbers_are_joe_kuo():
    from scipy.stats import _sobol
    assert sobol.MAX_DIM == _sobol._MAXDIM      # written out in mcgreeks.sobol
    v = directions(sobol.MAX_DIM)
    assert v.shape == (21201, 32) and v.dtype == np.uint32
    assert np.all(v[:, 0] == 2 ** 31)  # m_1 = 1 in every dimension
    np.testing.assert_array_equal(v[0], 2 ** (31 - np.arange(32)))  # van der Corput
    # dimension 2 of new-joe-kuo-6.21201: s = 1, a = 0, m_1 = 1 (polynomial x + 1)
    assert list(v[1, :4]) == [0x80000000, 0xC0000000, 0xA0000000, 0xF0000000]
    with pytest.raises(ValueError):
        directions(sobol.MAX_DIM + 1)


# --- scrambling: a pure function of (key, r, index, dim) ------------------------------------------

def test_same_values_for_any_split_of_indices():
    dirs, shifts = scrambled_directions(*KEY, 3, 4)
    rng = np.random.default_rng(7)
    for index0 in (0, 1000, 2 ** 32 - 3000):
        n = 2500
        for r in range(3):
            for d in range(4):
                whole = np.empty(n)
                fill_uniforms(dirs, shifts, r, index0, d, whole)
                cuts = np.sort(rng.choice(np.arange(1, n), size=20, replace=False))
                parts = np.empty(n)
                for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, n]):
                    fill_uniforms(dirs, shifts, r, index0 + lo, d, parts[lo:hi])
                np.testing.assert_array_equal(parts, whole)
                direct = [point_bits(dirs, shifts, r, index0 + i, d) for i in range(0, n, 97)]
                np.testing.assert_array_equal((np.array(direct) + 0.5) * 2.0 ** -32,
                                              whole[::97])
    assert np.all((whole > 0.0) & (whole < 1.0))


def test_scramble_is_deterministic_and_prefix_stable():
    d1, s1 = scrambled_directions(*KEY, 4, 6)
    d2, s2 = scrambled_directions(*KEY, 8, 300)
    np.testing.assert_array_equal(d1, d2[:4, :6])
    np.testing.assert_array_equal(s1, s2[:4, :6])
    np.testing.assert_array_equal(points(*KEY, 2, 64, 6), points(*KEY, 2, 64, 6))


def test_randomizations_and_keys_differ():
    a = points(*KEY, 0, 256, 3)
    b = points(*KEY, 1, 256, 3)
    c = points(KEY[0], KEY[1] + 1, 0, 256, 3)
    assert np.all(a != b) and np.all(a != c)
    # the scramble matrix is lower triangular with unit diagonal, the shift random
    dirs, shifts = scrambled_directions(*KEY, 2, 3)
    assert np.all(dirs[:, :, 0] >= 2 ** 31)
    assert len(set(shifts.ravel().tolist())) == shifts.size


@pytest.mark.parametrize("m", [4, 8, 12])
def test_scrambled_2d_points_are_0m2_nets(m):
    """Each elementary interval [i 2**-a, (i+1) 2**-a) x [j 2**-(m-a), (j+1) 2**-(m-a)) holds
    exactly one of the 2**m points, for both the first and a later block of 2**m indices."""
    n = 2 ** m
    dirs, shifts = scrambled_directions(*KEY, 3, 2)
    for r in range(3):
        for index0 in (0, 5 * n):
            x = run_bits(dirs, shifts, r, index0, n, 0)
            y = run_bits(dirs, shifts, r, index0, n, 1)
            for a in range(m + 1):
                box = ((x >> np.uint64(32 - a)) * np.uint64(2 ** (m - a))
                       + (y >> np.uint64(32 - m + a)))
                assert np.array_equal(np.sort(box), np.arange(n)), (r, index0, a)


# --- randomized QMC beats Monte Carlo on smooth integrands ----------------------------------------

def rqmc_and_mc(f, d, n=2 ** 12, reps=16):
    dirs, shifts = scrambled_directions(*KEY, reps, d)
    u = np.empty((d, n))
    qmc_est = []
    for r in range(reps):
        for k in range(d):
            fill_uniforms(dirs, shifts, r, 0, k, u[k])
        qmc_est.append(f(u.T).mean())
    gen = np.random.Generator(np.random.Philox(11))
    mc_est = [f(gen.random((n, d))).mean() for _ in range(reps)]
    return (np.mean(qmc_est), np.std(qmc_est, ddof=1) / np.sqrt(reps),
            np.std(mc_est, ddof=1) / np.sqrt(reps))


@pytest.mark.parametrize("name, d, f, exact", [
    ("product", 5, lambda u: np.prod(0.5 + u, axis=1), 1.0),
    # E exp(c sum z_k) = exp(d c**2 / 2) with z_k = Phi^{-1}(u_k)
    ("lognormal", 8, lambda u: np.exp(0.1 * scipy.special.ndtri(u).sum(axis=1)), np.exp(0.04)),
])
def test_rqmc_error_is_small_and_unbiased(name, d, f, exact):
    mean, se_qmc, se_mc = rqmc_and_mc(f, d)
    assert se_qmc * 10 < se_mc, (name, se_qmc, se_mc)
    assert abs(mean - exact) < 4 * se_qmc, (name, mean, exact, se_qmc)
