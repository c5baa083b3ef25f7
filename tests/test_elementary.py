"""mcgreeks.elementary: accuracy against 40-digit mpmath, IEEE special values, shapes."""
import math

import mpmath
import numpy as np
import pytest

from mcgreeks import elementary as E


def _worst_ulps(ours, exact, xs):
    """Largest |ours(x) - exact(x)| over xs, in ulps of exact(x)."""
    with mpmath.workdps(40):
        worst = 0.0
        for x in xs:
            ref = exact(mpmath.mpf(float(x)))
            err = abs(mpmath.mpf(float(ours(x))) - ref) / mpmath.mpf(math.ulp(float(ref)))
            worst = max(worst, float(err))
    return worst


def test_exp_within_2_5_ulp():
    RNG = np.random.default_rng(1)
    xs = np.concatenate([RNG.uniform(-700.0, 700.0, 1500), RNG.uniform(-1.0, 1.0, 1500),
                         [-744.0, -720.5, -710.0, 709.0, 709.7, 1e-300, -1e-300]])
    assert _worst_ulps(E.exp, mpmath.exp, xs) <= 2.5


def test_expm1_within_4_ulp_and_exact_for_tiny_arguments():
    RNG = np.random.default_rng(2)
    xs = np.concatenate([RNG.uniform(-3.0, 3.0, 1500), RNG.uniform(-1.05, 1.55, 1500),
                         RNG.uniform(-1e-6, 1e-6, 300), [-1.0, 1.0, -40.0, 600.0]])
    assert _worst_ulps(E.expm1, mpmath.expm1, xs) <= 4.0
    assert E.expm1(1e-300) == 1e-300 and E.expm1(-2.5e-17) == -2.5e-17


def test_log_within_1_ulp_subnormals_included():
    RNG = np.random.default_rng(3)
    xs = np.concatenate([np.exp(RNG.uniform(-700.0, 700.0, 2000)), RNG.uniform(0.5, 2.0, 1000),
                         [5e-324, 2.2e-308, 1.0, 1.7e308]])
    assert _worst_ulps(E.log, mpmath.log, xs) <= 1.0
    assert E.log(1.0) == 0.0


def test_special_values_and_shapes():
    assert np.array_equal(E.exp(np.array([np.inf, -np.inf, 710.0, -746.0])),
                          [np.inf, 0.0, np.inf, 0.0])
    assert np.array_equal(E.log(np.array([0.0, np.inf])), [-np.inf, np.inf])
    assert np.isnan(E.log(-1.0)) and np.isnan(E.exp(np.nan)) and np.isnan(E.expm1(np.nan))
    assert E.expm1(np.inf) == np.inf and E.expm1(-np.inf) == -1.0
    assert isinstance(E.exp(0.5), np.float64) and E.exp(0.0) == 1.0
    grid = np.arange(6.0).reshape(2, 3)[:, ::-1]             # not contiguous
    out = E.exp(grid)
    assert out.shape == (2, 3)
    assert np.array_equal(out, [[E.exp(v) for v in row] for row in grid])


@pytest.mark.parametrize("f", [E.exp, E.expm1, E.log])
def test_the_same_as_numpy_to_a_few_ulps(f):
    x = np.random.default_rng(4).uniform(0.01, 5.0, 10_000)
    ref = getattr(np, f.__name__)(x)
    assert np.all(np.abs(f(x) - ref) <= 4 * np.spacing(np.abs(ref)))


def test_in_place_gives_the_same_bits_as_a_fresh_output():
    # out = x is the case that runs through _map's scratch tile (a direct loop would not
    # vectorize there); lengths around the tile's size test its partial last tile
    for n in (1, 255, 256, 257, 1000):
        x = np.random.default_rng(n).uniform(-50.0, 50.0, n)
        fresh = E.exp(x)
        E.exp(x, out=x)
        assert np.array_equal(x.view(np.int64), fresh.view(np.int64))
