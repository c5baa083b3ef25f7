"""Multi-asset references: the bivariate normal law and Stulz against QuantLib and Haug's
tables, Margrabe against QuantLib, the quadrature basket and spread against QuantLib's
ChoiBasketEngine and its Monte Carlo, exact identities, limiting cases, and every Greek
against an independent NumPy Monte Carlo (pathwise and likelihood-ratio estimators)."""
import math

import numpy as np
import pytest
from scipy import stats

import QuantLib as ql

from mcgreeks.analytic.black_scholes import european
from mcgreeks.analytic.multi_asset import (
    basket,
    best_of,
    bivariate_normal_cdf,
    exchange,
    spread,
    worst_of,
)

TODAY = ql.Date(15, ql.January, 2025)
DC = ql.Actual365Fixed()
DAYS = 292  # T = 0.8 years on Actual/365
PER_ASSET = ("delta", "gamma", "vega")
PER_PAIR = ("cross_gamma", "d_pair_corr")
SCALARS = ("price", "rho", "theta")


@pytest.fixture(autouse=True)
def _evaluation_date():
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = TODAY
    yield
    ql.Settings.instance().evaluationDate = saved


def _process(spot, div, rate, vol):
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, div, DC)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DC)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DC)))


def _ql_type(is_call):
    return ql.Option.Call if is_call else ql.Option.Put


def _matrix(c):
    m = ql.Matrix(len(c), len(c))
    for i in range(len(c)):
        for j in range(len(c)):
            m[i][j] = float(c[i][j])
    return m


def _equicorrelation(n, rho):
    c = np.full((n, n), rho)
    np.fill_diagonal(c, 1.0)
    return c


def _assert_greeks_close(got, ref, rel, abs_):
    for key in SCALARS:
        assert got[key] == pytest.approx(ref[key], rel=rel, abs=abs_), key
    for key in PER_ASSET + PER_PAIR:
        np.testing.assert_allclose(got[key], ref[key], rtol=rel, atol=abs_, err_msg=key)


# ----------------------------------------------------------------------------- bivariate normal


def test_bivariate_normal_against_quantlib_genz():
    """Owen's-T formula against Genz's double-precision algorithm on a grid with zeros,
    equal arguments, both signs and correlations up to +-1."""
    grid = [-8.0, -3.1, -1.0, -0.2, 0.0, 0.2, 1.0, 2.5, 8.0]
    worst = 0.0
    for rho in [-1.0, -0.999, -0.9, -0.5, -0.1, 0.0, 0.3, 0.75, 0.95, 0.999, 1.0]:
        genz = ql.BivariateCumulativeNormalDistributionWe04DP(rho)
        for h in grid:
            for k in grid:
                worst = max(worst, abs(bivariate_normal_cdf(h, k, rho) - genz(h, k)))
    assert worst < 1e-15


def test_bivariate_normal_edges_and_scipy():
    assert bivariate_normal_cdf(0.0, 0.0, 0.5) == pytest.approx(1.0 / 3.0, abs=1e-16)
    assert bivariate_normal_cdf(0.0, 0.0, -0.5) == pytest.approx(1.0 / 6.0, abs=1e-16)
    assert bivariate_normal_cdf(math.inf, 0.7, 0.4) == pytest.approx(stats.norm.cdf(0.7))
    assert bivariate_normal_cdf(0.3, -math.inf, 0.4) == 0.0
    assert bivariate_normal_cdf(0.3, 0.8, 1.0) == pytest.approx(stats.norm.cdf(0.3), abs=1e-16)
    assert bivariate_normal_cdf(0.3, 0.8, -1.0) == pytest.approx(
        stats.norm.cdf(0.3) + stats.norm.cdf(0.8) - 1.0, abs=1e-16)
    h, k, rho = np.array([0.4, -1.2, 2.0]), np.array([-0.3, 0.9, 1.5]), -0.35
    ref = [stats.multivariate_normal(cov=[[1.0, rho], [rho, 1.0]]).cdf([a, b])
           for a, b in zip(h, k)]
    np.testing.assert_allclose(bivariate_normal_cdf(h, k, rho), ref, atol=1e-7)
    with pytest.raises(ValueError, match="rho"):
        bivariate_normal_cdf(0.0, 0.0, 1.5)


# ----------------------------------------------------------------------------- Stulz


def _stulz_quantlib(spots, strike, rate, divs, vols, rho, is_call, maximum):
    p1 = _process(spots[0], divs[0], rate, vols[0])
    p2 = _process(spots[1], divs[1], rate, vols[1])
    vanilla = ql.PlainVanillaPayoff(_ql_type(is_call), strike)
    payoff = ql.MaxBasketPayoff(vanilla) if maximum else ql.MinBasketPayoff(vanilla)
    option = ql.BasketOption(payoff, ql.EuropeanExercise(TODAY + DAYS))
    option.setPricingEngine(ql.StulzEngine(p1, p2, rho))
    return option.NPV()


@pytest.mark.parametrize("maximum", [True, False])
@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("rho", [-0.7, 0.0, 0.5, 0.95])
@pytest.mark.parametrize("strike", [80.0, 100.0, 125.0])
def test_stulz_against_quantlib(maximum, is_call, rho, strike):
    """Weights (0.5, 2) and dividend yields; QuantLib sees the weighted spots w_i S_i."""
    spots, weights = np.array([190.0, 52.0]), np.array([0.5, 2.0])
    divs, vols, rate = [0.01, 0.04], [0.25, 0.35], 0.03
    fn = best_of if maximum else worst_of
    got = fn(spots=spots, strike=strike, maturity=DAYS / 365.0, rate=rate, vols=vols,
             corr=rho, div_yields=divs, weights=weights, is_call=is_call)["price"]
    ref = _stulz_quantlib(spots * weights, strike, rate, divs, vols, rho, is_call, maximum)
    assert got == pytest.approx(ref, rel=1e-11, abs=1e-12)


# E. G. Haug, "Option Pricing Formulas" (1998), pp. 56-58, and the values of its program
# (both tabulated in QuantLib's test-suite/basketoption.cpp): S1 = 100, S2 = 105, K = 98,
# r = 0.05, T = 0.5, sigma = (0.11, 0.16), rho = 0.63.  (maximum, is_call, q1, q2, value)
HAUG = [
    (False, True, 0.00, 0.00, 4.8177), (True, True, 0.00, 0.00, 11.6323),
    (False, False, 0.00, 0.00, 2.0376), (True, False, 0.00, 0.00, 0.5731),
    (False, True, 0.06, 0.09, 2.9340), (False, False, 0.06, 0.09, 3.5224),
    (True, True, 0.06, 0.09, 8.0701), (True, False, 0.06, 0.09, 1.2181),  # printed p. 58
]


@pytest.mark.parametrize("maximum, is_call, q1, q2, expected", HAUG)
def test_stulz_haug_table(maximum, is_call, q1, q2, expected):
    fn = best_of if maximum else worst_of
    got = fn(spots=[100.0, 105.0], strike=98.0, maturity=0.5, rate=0.05, vols=[0.11, 0.16],
             corr=0.63, div_yields=[q1, q2], is_call=is_call)["price"]
    assert abs(got - expected) <= 0.6e-4


TWO = dict(spots=[100.0, 90.0], maturity=0.8, rate=0.04, vols=[0.3, 0.2], corr=0.4,
           div_yields=[0.02, 0.0], weights=[1.0, 1.2])


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [0.0, 90.0, 110.0])
def test_max_plus_min_is_both_single_options(is_call, strike):
    """{max(a, b), min(a, b)} = {a, b}, so an option on the max plus the same option on the
    min is the two single-asset options, for every K: every Greek adds up too, the
    cross-gammas and correlation sensitivities cancel."""
    hi = best_of(strike=strike, is_call=is_call, **TWO)
    lo = worst_of(strike=strike, is_call=is_call, **TWO)
    singles = [european(spot=TWO["weights"][i] * TWO["spots"][i], strike=max(strike, 1e-300),
                        maturity=0.8, rate=0.04, vol=TWO["vols"][i],
                        div_yield=TWO["div_yields"][i], is_call=is_call) for i in (0, 1)]
    w = np.array(TWO["weights"])
    assert hi["price"] + lo["price"] == pytest.approx(
        singles[0]["price"] + singles[1]["price"], rel=1e-12, abs=1e-12)
    for key in ("rho", "theta"):
        assert hi[key] + lo[key] == pytest.approx(singles[0][key] + singles[1][key],
                                                  rel=1e-6, abs=1e-8)
    for key, scale in (("delta", w), ("gamma", w * w), ("vega", np.ones(2))):
        np.testing.assert_allclose(hi[key] + lo[key],
                                   [singles[i][key] * scale[i] for i in (0, 1)],
                                   rtol=1e-6, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(hi["cross_gamma"] + lo["cross_gamma"], 0.0, atol=1e-7)
    np.testing.assert_allclose(hi["d_pair_corr"] + lo["d_pair_corr"], 0.0, atol=1e-8)


@pytest.mark.parametrize("fn", [best_of, worst_of])
def test_put_call_parity_and_zero_strike(fn):
    """C(K) − P(K) = PV(Y) − K e^{-rT}, PV(Y) = C(0); at K = 0 the max and the min add up to
    the two prepaid forwards."""
    k, disc = 95.0, math.exp(-0.04 * 0.8)
    call, put = fn(strike=k, **TWO)["price"], fn(strike=k, is_call=False, **TWO)["price"]
    assert call - put == pytest.approx(fn(strike=0.0, **TWO)["price"] - k * disc, rel=1e-13)
    forwards = sum(TWO["weights"][i] * TWO["spots"][i] * math.exp(-TWO["div_yields"][i] * 0.8)
                   for i in (0, 1))
    total = best_of(strike=0.0, **TWO)["price"] + worst_of(strike=0.0, **TWO)["price"]
    assert total == pytest.approx(forwards, rel=1e-14)


@pytest.mark.parametrize("is_call", [True, False])
def test_perfect_correlation_equal_vols_is_single_asset(is_call):
    """ρ = 1 and σ₁ = σ₂: the ratio of the assets is known, the best-of is the option on the
    asset with the larger forward and the worst-of the one on the smaller."""
    args = dict(spots=[100.0, 50.0], maturity=0.8, rate=0.04, vols=[0.25, 0.25], corr=1.0,
                div_yields=[0.03, 0.0], weights=[1.0, 1.9], is_call=is_call)
    # prepaid forwards: 100 e^{-0.024} = 97.6 > 95
    big = european(spot=100.0, strike=97.0, maturity=0.8, rate=0.04, vol=0.25, div_yield=0.03,
                   is_call=is_call)
    small = european(spot=95.0, strike=97.0, maturity=0.8, rate=0.04, vol=0.25,
                     is_call=is_call)
    assert best_of(strike=97.0, **args)["price"] == pytest.approx(big["price"], rel=1e-13)
    assert worst_of(strike=97.0, **args)["price"] == pytest.approx(small["price"], rel=1e-13)
    # close to the limit the closed form is continuous with it
    near = dict(args, corr=1.0 - 1e-10)
    assert best_of(strike=97.0, **near)["price"] == pytest.approx(big["price"], rel=1e-4)


# ----------------------------------------------------------------------------- Margrabe


@pytest.mark.parametrize("rho", [-0.5, 0.3, 0.9])
@pytest.mark.parametrize("quantities", [(1, 1), (2, 3)])
def test_margrabe_against_quantlib(rho, quantities):
    """Price, deltas, gammas and theta against QuantLib's analytic Margrabe engine (which
    takes integer quantities: our weights)."""
    spots, divs, vols = [60.0, 45.0], [0.06, 0.02], [0.2, 0.3]
    option = ql.MargrabeOption(quantities[0], quantities[1], ql.EuropeanExercise(TODAY + DAYS))
    option.setPricingEngine(ql.AnalyticEuropeanMargrabeEngine(
        _process(spots[0], divs[0], 0.05, vols[0]), _process(spots[1], divs[1], 0.05, vols[1]),
        rho))
    got = exchange(spots=spots, maturity=DAYS / 365.0, rate=0.05, vols=vols, corr=rho,
                   div_yields=divs, weights=list(quantities))
    assert got["price"] == pytest.approx(option.NPV(), rel=1e-13)
    np.testing.assert_allclose(got["delta"], [option.delta1(), option.delta2()], rtol=1e-6)
    # QuantLib 1.44's gamma1/gamma2 are the second derivatives divided by the quantity
    # (its own NPV bumped in S_1 gives 2x its gamma1 at Q_1 = 2): scale them back
    ql_gamma = [quantities[0] * option.gamma1(), quantities[1] * option.gamma2()]
    np.testing.assert_allclose(got["gamma"], ql_gamma, rtol=1e-5)
    assert got["rho"] == pytest.approx(0.0, abs=1e-8)
    if quantities == (1, 1):
        # with other quantities QuantLib 1.44's theta disagrees with its own NPV differenced
        # over one day (-5.5078 against its -4.4798 here); ours agrees with that difference
        assert got["theta"] == pytest.approx(option.theta(), rel=1e-6)
    else:
        days = [DAYS - 1, DAYS + 1]
        npv = []
        for d in days:
            o = ql.MargrabeOption(quantities[0], quantities[1], ql.EuropeanExercise(TODAY + d))
            o.setPricingEngine(option.pricingEngine())
            npv.append(o.NPV())
        assert got["theta"] == pytest.approx(-(npv[1] - npv[0]) * 365.0 / 2.0, rel=1e-4)


def test_margrabe_cross_gamma_and_correlation_closed_forms():
    """V is homogeneous of degree 1 in (S₁, S₂): S₁Γ₁₁ + S₂Γ₁₂ = 0.  ∂V/∂ρ = ∂V/∂σ̂ · ∂σ̂/∂ρ
    = a₁ n(d₁) √T · (−σ₁σ₂/σ̂); ∂V/∂σ₁ = a₁ n(d₁) √T (σ₁ − ρσ₂)/σ̂."""
    s, q, v, rho, t = [60.0, 45.0], [0.06, 0.02], [0.2, 0.3], 0.3, 0.8
    got = exchange(spots=s, maturity=t, rate=0.05, vols=v, corr=rho, div_yields=q,
                   weights=[1.0, 1.5])
    a1, a2 = s[0] * math.exp(-q[0] * t), 1.5 * s[1] * math.exp(-q[1] * t)
    sig = math.sqrt(v[0] ** 2 + v[1] ** 2 - 2 * rho * v[0] * v[1])
    d1 = math.log(a1 / a2) / (sig * math.sqrt(t)) + 0.5 * sig * math.sqrt(t)
    vega_hat = a1 * stats.norm.pdf(d1) * math.sqrt(t)
    assert got["cross_gamma"][0] == pytest.approx(-s[0] * got["gamma"][0] / s[1], rel=1e-5)
    assert got["d_pair_corr"][0] == pytest.approx(-vega_hat * v[0] * v[1] / sig, rel=1e-7)
    assert got["vega"][0] == pytest.approx(vega_hat * (v[0] - rho * v[1]) / sig, rel=1e-7)
    assert got["vega"][1] == pytest.approx(vega_hat * (v[1] - rho * v[0]) / sig, rel=1e-7)
    assert got["pairs"] == ((0, 1),)


def test_exchange_put_swaps_the_assets():
    put = exchange(spots=[60.0, 45.0], maturity=0.8, rate=0.05, vols=[0.2, 0.3], corr=0.3,
                   div_yields=[0.06, 0.02], weights=[1.0, 1.5], is_call=False)
    call = exchange(spots=[67.5, 60.0], maturity=0.8, rate=0.05, vols=[0.3, 0.2], corr=0.3,
                    div_yields=[0.02, 0.06])
    assert put["price"] == pytest.approx(call["price"], rel=1e-14)


# ----------------------------------------------------------------------------- quadrature


def _choi(spots, divs, rate, vols, corr, weights, strike, is_call):
    procs = [_process(s, q, rate, v) for s, q, v in zip(spots, divs, vols)]
    payoff = ql.AverageBasketPayoff(ql.PlainVanillaPayoff(_ql_type(is_call), strike),
                                    ql.Array([float(w) for w in weights]))
    option = ql.BasketOption(payoff, ql.EuropeanExercise(TODAY + DAYS))
    option.setPricingEngine(ql.ChoiBasketEngine(procs, _matrix(corr), 20.0))
    return option.NPV()


def _case(n, rho):
    return dict(spots=np.linspace(80.0, 120.0, n), vols=np.linspace(0.15, 0.45, n),
                div_yields=np.linspace(0.0, 0.03, n), corr=_equicorrelation(n, rho))


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("n, rho, rel", [(2, 0.5, 1e-11), (2, -0.6, 1e-11), (3, 0.3, 1e-10),
                                         (3, 0.85, 1e-10), (4, 0.5, 1e-10), (5, 0.4, 5e-8)])
def test_basket_price_against_choi(n, rho, rel, is_call):
    case = _case(n, rho)
    weights = np.full(n, 1.0 / n)
    strike = 100.0
    got = basket(strike=strike, maturity=DAYS / 365.0, rate=0.03, weights=weights,
                 is_call=is_call, **case)["price"]
    ref = _choi(case["spots"], case["div_yields"], 0.03, case["vols"], case["corr"], weights,
                strike, is_call)
    assert got == pytest.approx(ref, rel=rel)


def test_basket_with_mixed_sign_weights_and_a_full_matrix_against_choi():
    corr = np.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    args = dict(spots=[100.0, 80.0, 50.0], vols=[0.3, 0.2, 0.4], div_yields=[0.01, 0.02, 0.0],
                corr=corr, weights=[1.0, -0.5, 0.8])
    for is_call in (True, False):
        got = basket(strike=60.0, maturity=DAYS / 365.0, rate=0.02, is_call=is_call,
                     **args)["price"]
        ref = _choi(args["spots"], args["div_yields"], 0.02, args["vols"], corr,
                    args["weights"], 60.0, is_call)
        # the put is worth 0.13: the rule's error is about 1e-12 of the basket's size
        assert got == pytest.approx(ref, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("rho", [-0.5, 0.5, 0.9])
@pytest.mark.parametrize("strike", [2.0, 10.0])
def test_spread_against_choi(is_call, rho, strike):
    """QuantLib's spread basket: weights (w₁, −w₂)."""
    spots, divs, vols = [100.0, 45.0], [0.01, 0.03], [0.3, 0.2]
    got = spread(spots=spots, strike=strike, maturity=DAYS / 365.0, rate=0.03, vols=vols,
                 corr=rho, div_yields=divs, weights=[1.0, 2.0], is_call=is_call)["price"]
    ref = _choi(spots, divs, 0.03, vols, [[1.0, rho], [rho, 1.0]], [1.0, -2.0], strike,
                is_call)
    assert got == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize("rho", [-0.5, 0.3, 0.9])
def test_spread_at_zero_strike_is_margrabe(rho):
    """Quadrature against the closed form, price and every Greek."""
    args = dict(spots=[60.0, 45.0], maturity=0.8, rate=0.05, vols=[0.2, 0.3], corr=rho,
                div_yields=[0.06, 0.02], weights=[1.0, 1.5])
    _assert_greeks_close(spread(strike=0.0, **args), exchange(**args), rel=1e-7, abs_=1e-8)


def test_spread_is_the_basket_with_a_negative_weight():
    args = dict(spots=[60.0, 45.0], maturity=0.8, rate=0.05, vols=[0.2, 0.3], corr=0.3,
                div_yields=[0.06, 0.02])
    got = spread(strike=3.0, weights=[1.0, 1.5], is_call=False, **args)
    ref = basket(strike=3.0, weights=[1.0, -1.5], is_call=False, **args)
    # the second asset's own spot moves the same way in both
    _assert_greeks_close(got, ref, rel=1e-12, abs_=1e-12)


@pytest.mark.parametrize("is_call", [True, False])
def test_one_asset_basket_is_black_scholes(is_call):
    got = basket(spots=[90.0], strike=100.0, maturity=0.8, rate=0.04, vols=[0.3],
                 div_yields=0.02, weights=[1.2], is_call=is_call)
    ref = european(spot=108.0, strike=100.0, maturity=0.8, rate=0.04, vol=0.3, div_yield=0.02,
                   is_call=is_call)
    assert got["price"] == pytest.approx(ref["price"], rel=1e-14)
    assert got["delta"][0] == pytest.approx(1.2 * ref["delta"], rel=1e-7)
    assert got["gamma"][0] == pytest.approx(1.44 * ref["gamma"], rel=1e-6)
    for key in ("vega", "rho", "theta"):
        assert np.ravel(got[key])[0] == pytest.approx(ref[key], rel=1e-7), key
    assert got["pairs"] == () and got["cross_gamma"].shape == (0,)


@pytest.mark.parametrize("n, rel", [(2, 1e-13), (3, 1e-10), (4, 1e-10),
                                    pytest.param(5, 5e-8, marks=pytest.mark.slow)])
def test_basket_default_rule_against_a_finer_one(n, rel):
    case = _case(n, 0.5)
    args = dict(strike=100.0, maturity=1.0, rate=0.03, weights=1.0 / n, **case)
    finer = {2: 128, 3: 128, 4: 64, 5: 32}[n]
    assert basket(**args)["price"] == pytest.approx(basket(nodes=finer, **args)["price"],
                                                    rel=rel)


def test_basket_against_quantlib_monte_carlo():
    """QuantLib's own Monte Carlo (seeded), within 4 of its standard errors."""
    case = _case(3, 0.4)
    weights = [0.5, 0.3, 0.2]
    procs = [_process(s, q, 0.03, v) for s, q, v in
             zip(case["spots"], case["div_yields"], case["vols"])]
    process = ql.StochasticProcessArray(procs, _matrix(case["corr"]))
    option = ql.BasketOption(
        ql.AverageBasketPayoff(ql.PlainVanillaPayoff(ql.Option.Call, 95.0), ql.Array(weights)),
        ql.EuropeanExercise(TODAY + DAYS))
    option.setPricingEngine(ql.MCEuropeanBasketEngine(
        process, "pseudorandom", timeStepsPerYear=1, requiredSamples=200_000, seed=42))
    got = basket(strike=95.0, maturity=DAYS / 365.0, rate=0.03, weights=weights,
                 **case)["price"]
    se = option.errorEstimate()
    assert se < 0.005 * got
    assert abs(got - option.NPV()) < 4.0 * se


# ----------------------------------------------------------------------------- Greeks by MC


def _cholesky_derivative(low, i, j):
    """dL/dρ_ij for L Lᵀ = C: L Φ(L⁻¹ dC L⁻ᵀ), Φ the lower triangle with half the diagonal."""
    n = low.shape[0]
    dc = np.zeros((n, n))
    dc[i, j] = dc[j, i] = 1.0
    inv = np.linalg.inv(low)
    m = inv @ dc @ inv.T
    phi = np.tril(m, -1) + 0.5 * np.diag(np.diag(m))
    return low @ phi


def _monte_carlo(payoff, spots, strike, t, r, vols, corr, divs, weights, is_call, paths,
                 seed):
    """Independent Monte Carlo of every Greek: pathwise (delta, vega, correlations, rho,
    theta) and pathwise-then-likelihood-ratio (gamma, cross-gamma: ∂/∂S_j of the pathwise
    delta_i through the Gaussian score of ln S(T)).  Returns (values, standard errors) in the
    layout of the references."""
    s, v, q, w = (np.asarray(x, dtype=float) for x in (spots, vols, divs, weights))
    n = s.size
    low = np.linalg.cholesky(corr)
    eps = np.random.default_rng(seed).standard_normal((paths, n))
    z = eps @ low.T
    sqt = math.sqrt(t)
    st = s * np.exp((r - q - 0.5 * v * v) * t + v * sqt * z)
    x = w * st
    omega = 1.0 if is_call else -1.0
    if payoff == "basket":
        level = x.sum(axis=1)
        slope = np.tile(w, (paths, 1))
    else:
        pick = np.argmax(x, axis=1) if payoff == "best_of" else np.argmin(x, axis=1)
        level = x[np.arange(paths), pick]
        slope = np.zeros((paths, n))
        slope[np.arange(paths), pick] = w[pick]
    live = omega * (level - strike) > 0.0
    f = np.where(live, omega * (level - strike), 0.0)
    g = omega * live[:, None] * slope  # ∂f/∂S_i(T)
    disc = math.exp(-r * t)
    cov_inv = np.linalg.inv(corr * np.outer(v, v) * t)
    score = (np.log(st / s) - (r - q - 0.5 * v * v) * t) @ cov_inv  # u = (ΣT)⁻¹(X − m)
    samples = {"price": disc * f}
    samples["delta"] = disc * g * st / s
    samples["vega"] = disc * g * st * (sqt * z - v * t)
    samples["rho"] = disc * (-t * f + t * np.sum(g * st, axis=1))
    dst_dt = st * (r - q - 0.5 * v * v + 0.5 * v * z / sqt)
    samples["theta"] = -disc * (-r * f + np.sum(g * dst_dt, axis=1))
    # gamma_ij = D E[g_i S_i(T) u_j] / (S_i S_j) − δ_ij delta_i / S_i
    mixed = disc * (g * st)[:, :, None] * score[:, None, :] / np.outer(s, s)
    samples["gamma"] = (mixed[:, np.arange(n), np.arange(n)]
                        - samples["delta"] / s)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    samples["cross_gamma"] = np.stack([0.5 * (mixed[:, i, j] + mixed[:, j, i])
                                       for i, j in pairs], axis=1).reshape(paths, len(pairs))
    corr_cols = []
    for i, j in pairs:
        dz = eps @ _cholesky_derivative(low, i, j).T
        corr_cols.append(disc * np.sum(g * st * v * sqt * dz, axis=1))
    samples["d_pair_corr"] = np.stack(corr_cols, axis=1).reshape(paths, len(pairs))
    values = {key: a.mean(axis=0) for key, a in samples.items()}
    errors = {key: a.std(axis=0, ddof=1) / math.sqrt(paths) for key, a in samples.items()}
    return values, errors


GREEK_CASES = [
    ("basket", basket, dict(spots=[100.0, 80.0, 120.0], strike=100.0, vols=[0.3, 0.2, 0.4],
                            corr=np.array([[1.0, 0.5, 0.2], [0.5, 1.0, -0.3],
                                           [0.2, -0.3, 1.0]]),
                            div_yields=[0.01, 0.02, 0.0], weights=[0.4, 0.4, 0.3],
                            is_call=True)),
    ("basket", basket, dict(spots=[100.0, 80.0], strike=60.0, vols=[0.3, 0.25],
                            corr=np.array([[1.0, 0.6], [0.6, 1.0]]), div_yields=[0.01, 0.0],
                            weights=[1.0, -0.5], is_call=False)),
    ("best_of", best_of, dict(spots=[100.0, 95.0], strike=100.0, vols=[0.3, 0.2],
                              corr=np.array([[1.0, 0.4], [0.4, 1.0]]),
                              div_yields=[0.02, 0.0], weights=[1.0, 1.0], is_call=True)),
    ("worst_of", worst_of, dict(spots=[100.0, 95.0], strike=100.0, vols=[0.3, 0.2],
                                corr=np.array([[1.0, -0.3], [-0.3, 1.0]]),
                                div_yields=[0.02, 0.0], weights=[1.0, 1.1], is_call=False)),
]


@pytest.mark.parametrize("payoff, fn, args", GREEK_CASES, ids=[c[0] for c in GREEK_CASES])
def test_greeks_against_independent_monte_carlo(payoff, fn, args):
    """Every Greek of the reference within 4 standard errors of an independent Monte Carlo
    (600,000 paths, seeded); each standard error is checked to be small against the value
    so that the comparison has teeth."""
    t, r = 0.8, 0.03
    ref = fn(maturity=t, rate=r, **args)
    mc, se = _monte_carlo(payoff, args["spots"], args["strike"], t, r, args["vols"],
                          args["corr"], args["div_yields"], args["weights"], args["is_call"],
                          paths=600_000, seed=20250115)
    for key in SCALARS + PER_ASSET + PER_PAIR:
        got, want, err = np.atleast_1d(ref[key]), np.atleast_1d(mc[key]), np.atleast_1d(se[key])
        assert np.all(np.abs(got - want) <= 4.0 * err), (key, got, want, err)
        # teeth: the SE is under 3 % of the size of the quantity (or of the price scale)
        assert np.all(err <= 0.03 * np.maximum(np.abs(want), 0.05 * ref["price"])), (key, err)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("change, message", [
    (dict(spots=[100.0, -1.0]), "spots"),
    (dict(spots=[100.0, 90.0, 80.0]), "exactly 2"),
    (dict(vols=[0.2]), "vols"),
    (dict(corr=1.2), "corr"),
    (dict(weights=[1.0, -1.0]), "weights"),
    (dict(strike=-1.0), "strike"),
    (dict(is_call="put"), "is_call"),
    (dict(maturity=0.0), "maturity"),
])
def test_bad_input_two_assets(change, message):
    args = dict(spots=[100.0, 90.0], strike=100.0, maturity=1.0, rate=0.03, vols=[0.2, 0.3],
                corr=0.5)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        best_of(**args)


def test_bad_input_basket():
    args = dict(spots=[100.0, 90.0, 80.0], strike=100.0, maturity=1.0, rate=0.03,
                vols=[0.2, 0.3, 0.25])
    with pytest.raises(ValueError, match="positive semidefinite"):
        basket(corr=_equicorrelation(3, -0.9), **args)
    with pytest.raises(ValueError, match="3x3"):
        basket(corr=0.5, **args)
    with pytest.raises(ValueError, match="symmetric"):
        basket(corr=np.array([[1.0, 0.5, 0.0], [0.4, 1.0, 0.0], [0.0, 0.0, 1.0]]), **args)
    with pytest.raises(ValueError, match="nodes"):
        basket(corr=_equicorrelation(3, 0.2), nodes=1, **args)
    with pytest.raises(ValueError, match="between 1 and 5"):
        basket(spots=[100.0] * 6, strike=1.0, maturity=1.0, rate=0.0, vols=[0.2] * 6,
               corr=np.eye(6))
