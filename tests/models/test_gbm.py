"""GBM's model kernels (``mcgreeks.models.gbm``) against difference quotients written here.

Tangents: ∂u/∂θ from the date weights' moments (``tangents``) against central differences of
u computed in NumPy from a fixed Brownian path (common random numbers) for θ = S0, σ, r, T, with
μ = r - q - σ²/2 moving with σ and r, and under a maturity bump the dates t = c·T moving and
W_t scaling as √T (Glasserman 2004, §7.2).  Scores: ∂ log p/∂θ of the law of the log-spots at
the payoff's dates (independent Gaussian increments), differenced in θ with the log-spots held
fixed, at the log-spots of the path (Glasserman 2004, §7.3).
"""
import math

import numpy as np
import pytest

from differences import central, second
from mcgreeks.models import gbm

PARAMS = [dict(spot=100.0, vol=0.2, rate=0.03, div_yield=0.01, maturity=1.0),
          dict(spot=42.0, vol=0.45, rate=-0.01, div_yield=0.02, maturity=0.4),
          dict(spot=1500.0, vol=0.1, rate=0.06, div_yield=0.0, maturity=3.0)]
#: Payoff dates as fractions c of the maturity (t = c·T): one date, and four unequal ones.
FRACTIONS = [np.array([1.0]), np.array([0.1, 0.35, 0.7, 1.0])]


def brownian(fractions, maturity, seed):
    """W at the dates c·T (seeded), and the standard normals it is made of."""
    t = fractions * maturity
    z = np.random.default_rng(seed).standard_normal(t.size)
    return np.cumsum(z * np.sqrt(np.diff(t, prepend=0.0))), z


def log_spots(spot, vol, rate, div_yield, maturity, fractions, z):
    """ln S at the dates c·T on the path with standard normal increments z: W at the dates is
    Σ z √Δt, so a maturity bump scales the dates and W_t by √(T'/T) with common numbers."""
    t = fractions * maturity
    w = np.cumsum(z * np.sqrt(np.diff(t, prepend=0.0)))
    return math.log(spot) + (rate - div_yield - 0.5 * vol * vol) * t + vol * w


QUANTITIES = {
    "terminal": (lambda y: np.exp(y[-1]),
                 lambda y: np.eye(y.size)[-1] * np.exp(y[-1])),
    "geometric": (lambda y: np.exp(y.mean()),
                  lambda y: np.full(y.size, np.exp(y.mean()) / y.size)),
    "arithmetic": (lambda y: np.exp(y).mean(),
                   lambda y: np.exp(y) / y.size),
}


def test_log_drift():
    assert gbm.log_drift(0.05, 0.02, 0.3) == pytest.approx(0.05 - 0.02 - 0.045, rel=1e-15)


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("fractions", FRACTIONS, ids=["one date", "four dates"])
@pytest.mark.parametrize("quantity", QUANTITIES)
def test_tangents_are_the_derivatives_of_u_on_a_fixed_path(params, fractions, quantity):
    """∂u/∂S0, ∂u/∂σ, ∂u/∂r, ∂u/∂T from Σω, Σω t, Σω W, ω_k = ∂u/∂ln S_{t_k}, against
    Richardson central differences of u with the path's normals held (error O(h⁴))."""
    u_of, weights_of = QUANTITIES[quantity]
    for seed in range(3):
        w, z = brownian(fractions, params["maturity"], seed)
        t = fractions * params["maturity"]

        def u(**p):
            return u_of(log_spots(**p, fractions=fractions, z=z))

        omega = weights_of(log_spots(**params, fractions=fractions, z=z))
        mu = params["rate"] - params["div_yield"] - 0.5 * params["vol"] ** 2
        got = gbm.tangents(params["spot"], mu, params["vol"], params["maturity"], omega.sum(),
                           omega @ t, omega @ w)
        expected = [central(u, params, "spot", 1e-3 * params["spot"]),
                    central(u, params, "vol", 1e-3 * params["vol"]),
                    central(u, params, "rate", 1e-4),
                    central(u, params, "maturity", 1e-3 * params["maturity"])]
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9 * params["spot"],
                                   err_msg=f"{quantity} seed {seed}")


def log_density(spot, vol, rate, div_yield, maturity, fractions, y):
    """log p of the log-spots y at the dates c·T: independent Gaussian increments of mean
    (r - q - σ²/2) Δt and variance σ² Δt from ln S0 (the density of ln S; the density of S
    differs by a Jacobian free of every parameter)."""
    t = fractions * maturity
    dt = np.diff(t, prepend=0.0)
    dy = np.diff(y, prepend=math.log(spot))
    mean = (rate - div_yield - 0.5 * vol * vol) * dt
    var = vol * vol * dt
    return float(np.sum(-0.5 * (dy - mean) ** 2 / var - 0.5 * np.log(2 * math.pi * var)))


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("fractions", FRACTIONS, ids=["one date", "four dates"])
def test_scores_are_derivatives_of_the_log_density_at_the_payoff_dates(params, fractions):
    """score_spot, score_vol, score_rate, score_maturity = ∂ log p/∂θ and score2_spot =
    (∂²p/∂S0²)/p = ∂² log p/∂S0² + (∂ log p/∂S0)², the log-spots held at the path's."""
    s0, vol, T = params["spot"], params["vol"], params["maturity"]
    mu = params["rate"] - params["div_yield"] - 0.5 * vol * vol
    t = fractions * T
    n = t.size
    for seed in range(3):
        w, z = brownian(fractions, T, seed)
        y = log_spots(**params, fractions=fractions, z=z)

        def logp(**p):
            return log_density(**p, fractions=fractions, y=y)

        q = float(np.sum(np.diff(w, prepend=0.0) ** 2 / np.diff(t, prepend=0.0)))
        d_spot = central(logp, params, "spot", 1e-3 * s0)
        np.testing.assert_allclose(gbm.score_spot(s0, vol, t[0], w[0]), d_spot, rtol=1e-7)
        np.testing.assert_allclose(gbm.score2_spot(s0, vol, t[0], w[0]),
                                   second(logp, params, "spot", 1e-2 * s0) + d_spot ** 2,
                                   rtol=1e-6, atol=1e-9 / s0 ** 2)
        np.testing.assert_allclose(gbm.score_vol(vol, n, q, w[-1]),
                                   central(logp, params, "vol", 1e-4 * vol), rtol=1e-7,
                                   atol=1e-9)
        np.testing.assert_allclose(gbm.score_rate(vol, w[-1]),
                                   central(logp, params, "rate", 1e-4), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(gbm.score_maturity(mu, vol, T, n, q, w[-1]),
                                   central(logp, params, "maturity", 1e-3 * T), rtol=1e-7,
                                   atol=1e-9)


def test_the_spot_scores_have_the_moments_of_scores():
    """E[score] = 0 and E[score2] = 0 (∫∂p = ∂∫p = 0), and E[score²] is the Fisher information
    1/(S0² σ² t_1): a direct check on many draws that the formulas are scores at all, within
    4 SE."""
    s0, vol, t1 = 100.0, 0.25, 0.5
    w1 = np.random.default_rng(5).standard_normal(200_000) * math.sqrt(t1)
    score = np.array([gbm.score_spot(s0, vol, t1, x) for x in w1[:2000]])
    np.testing.assert_allclose(score, w1[:2000] / (s0 * vol * t1), rtol=1e-14)
    score = w1 / (s0 * vol * t1)
    score2 = np.array([gbm.score2_spot(s0, vol, t1, x) for x in w1[:20_000]])
    info = 1.0 / (s0 ** 2 * vol ** 2 * t1)
    for sample, mean in ((score, 0.0), (score2, 0.0), (score ** 2, info)):
        se = sample.std() / math.sqrt(sample.size)
        assert abs(sample.mean() - mean) < 4 * se
