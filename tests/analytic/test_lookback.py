"""Fixed-strike lookback closed forms: published values, QuantLib, exact-maximum Monte Carlo,
the discrete quadrature against a discrete Monte Carlo, and the size of the BGK error."""
import math

import numpy as np
import pytest

import QuantLib as ql

from mcgreeks.analytic.black_scholes import european
from mcgreeks.analytic.lookback import lookback, lookback_discrete, lookback_discrete_bgk

GREEKS = ("price", "delta", "gamma", "vega", "rho", "theta")

# E. G. Haug, "Option Pricing Formulas" (1998), pp. 63-64 (also tabulated in QuantLib's
# test-suite/lookbackoptions.cpp): S = M0 = m0 = 100, q = 0, r = 0.10.
# (is_call, K, T, sigma, value to 4 decimals)
HAUG = [
    (True, 95, 0.5, 0.1, 13.2687), (True, 95, 0.5, 0.2, 18.9263), (True, 95, 0.5, 0.3, 24.9857),
    (True, 100, 0.5, 0.1, 8.5126), (True, 100, 0.5, 0.2, 14.1702), (True, 100, 0.5, 0.3, 20.2296),
    (True, 105, 0.5, 0.1, 4.3908), (True, 105, 0.5, 0.2, 9.8905), (True, 105, 0.5, 0.3, 15.8512),
    (True, 95, 1.0, 0.1, 18.3241), (True, 95, 1.0, 0.2, 26.0731), (True, 95, 1.0, 0.3, 34.7116),
    (True, 100, 1.0, 0.1, 13.8000), (True, 100, 1.0, 0.2, 21.5489), (True, 100, 1.0, 0.3, 30.1874),
    (True, 105, 1.0, 0.1, 9.5445), (True, 105, 1.0, 0.2, 17.2965), (True, 105, 1.0, 0.3, 25.9002),
    (False, 95, 0.5, 0.1, 0.6899), (False, 95, 0.5, 0.2, 4.4448), (False, 95, 0.5, 0.3, 8.9213),
    (False, 100, 0.5, 0.1, 3.3917), (False, 100, 0.5, 0.2, 8.3177), (False, 100, 0.5, 0.3, 13.1579),
    (False, 105, 0.5, 0.1, 8.1478), (False, 105, 0.5, 0.2, 13.0739), (False, 105, 0.5, 0.3, 17.9140),
    (False, 95, 1.0, 0.1, 1.0534), (False, 95, 1.0, 0.2, 6.2813), (False, 95, 1.0, 0.3, 12.2376),
    (False, 100, 1.0, 0.1, 3.8079), (False, 100, 1.0, 0.2, 10.1294), (False, 100, 1.0, 0.3, 16.3889),
    (False, 105, 1.0, 0.1, 8.3321), (False, 105, 1.0, 0.2, 14.6536), (False, 105, 1.0, 0.3, 20.9130),
]

# the sample-market-like case of the Monte Carlo checks
MARKET = dict(spot=100.0, maturity=1.0, rate=0.05, div_yield=0.02, vol=0.3)


@pytest.mark.parametrize("is_call, strike, maturity, vol, expected", HAUG)
def test_haug_table(is_call, strike, maturity, vol, expected):
    got = lookback(spot=100.0, strike=strike, maturity=maturity, rate=0.10, vol=vol,
                   is_call=is_call)["price"]
    # the table is printed to 4 decimals, not always rounded (24.98576 is printed 24.9857)
    assert abs(got - expected) <= 1e-4


def _quantlib(spot, strike, days, rate, div, vol, is_call, extreme):
    today = ql.Date(15, ql.January, 2025)
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = today
    try:
        dc = ql.Actual365Fixed()
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(spot)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)))
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike)
        option = ql.ContinuousFixedLookbackOption(
            extreme, payoff, ql.EuropeanExercise(today + days))
        option.setPricingEngine(ql.AnalyticContinuousFixedLookbackEngine(process))
        return option.NPV()
    finally:
        ql.Settings.instance().evaluationDate = saved


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [80.0, 100.0, 125.0])
@pytest.mark.parametrize("extreme_ratio", [1.0, 1.1])
@pytest.mark.parametrize("rate, div", [(0.05, 0.02), (-0.01, 0.03)])
def test_against_quantlib(is_call, strike, extreme_ratio, rate, div):
    """Both strike cases (K above and below the running extreme), a running extreme away
    from the spot, dividends and a negative rate, against QuantLib's independent code."""
    days = 300
    extreme = 100.0 * (extreme_ratio if is_call else 1.0 / extreme_ratio)
    got = lookback(spot=100.0, strike=strike, maturity=days / 365.0, rate=rate, vol=0.25,
                   div_yield=div, is_call=is_call, running_extreme=extreme)["price"]
    ref = _quantlib(100.0, strike, days, rate, div, 0.25, is_call, extreme)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-10)


def test_rate_equal_dividend_limit():
    """At r = q the closed form's σ²/(2(r − q)) factor is replaced by its limit: at r = q ± 1e-7
    (the general expression, which loses ~1e-9 to cancellation there) the price is the
    limit's plus rho × 1e-7, and the central difference over r = q ± 1e-4 is the rho reported at r = q."""
    for is_call in (True, False):
        for strike in (90.0, 100.0, 110.0):
            kw = dict(spot=100.0, strike=strike, maturity=1.0, vol=0.25, div_yield=0.03,
                      is_call=is_call)
            at = lookback(rate=0.03, **kw)
            for d in (-1e-7, 1e-7):
                assert lookback(rate=0.03 + d, **kw)["price"] == pytest.approx(
                    at["price"] + at["rho"] * d, rel=1e-9)
            lo, hi = (lookback(rate=0.03 + d, **kw)["price"] for d in (-1e-4, 1e-4))
            assert (hi - lo) / 2e-4 == pytest.approx(at["rho"], rel=1e-7)


def test_strike_below_running_max_identity():
    """For K <= M0 the call is the discounted sure part plus the call struck at M0 (and the
    mirror for the put): (M − K)⁺ = (M0 − K) + (M − M0) when M >= M0 >= K."""
    kw = dict(spot=100.0, maturity=0.8, rate=0.04, vol=0.3, div_yield=0.01)
    df = math.exp(-0.04 * 0.8)
    call = lookback(strike=90.0, is_call=True, running_extreme=110.0, **kw)["price"]
    atm = lookback(strike=110.0, is_call=True, running_extreme=110.0, **kw)["price"]
    assert call == pytest.approx(df * 20.0 + atm, rel=1e-13)
    put = lookback(strike=105.0, is_call=False, running_extreme=95.0, **kw)["price"]
    atm = lookback(strike=95.0, is_call=False, running_extreme=95.0, **kw)["price"]
    assert put == pytest.approx(df * 10.0 + atm, rel=1e-13)


def test_rejects_bad_running_extreme():
    kw = dict(spot=100.0, strike=100.0, maturity=1.0, rate=0.05, vol=0.2)
    with pytest.raises(ValueError, match="running_extreme"):
        lookback(is_call=True, running_extreme=99.0, **kw)
    with pytest.raises(ValueError, match="running_extreme"):
        lookback(is_call=False, running_extreme=101.0, **kw)
    with pytest.raises(ValueError, match="n_fixings"):
        lookback_discrete_bgk(n_fixings=0, **kw)
    with pytest.raises(ValueError, match="nodes_per_sd"):
        lookback_discrete(n_fixings=4, nodes_per_sd=2, **kw)


def _bridge_mc(is_call, strike, paths, seed, spot, maturity, rate, div_yield, vol):
    """Discounted payoffs, and their pathwise delta, vega and rho, of the continuously
    monitored option from the exact joint law of (ln S_T, extreme): given ln(S_T/S0) = x the
    maximum of the Brownian bridge is (x + √(x² − 2σ²T ln U))/2 (the minimum with − before
    the root), U uniform.  One step is exact; S0 is the running extreme."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(paths)
    e = -np.log(rng.random(paths))  # −ln U, exponential
    sq = math.sqrt(maturity)
    x = (rate - div_yield - 0.5 * vol * vol) * maturity + vol * sq * z
    root = np.sqrt(x * x + 2.0 * vol * vol * maturity * e)
    w = 1.0 if is_call else -1.0
    log_ext = 0.5 * (x + w * root)
    ext = spot * np.exp(log_ext)
    df = math.exp(-rate * maturity)
    pay = df * np.maximum(w * (ext - strike), 0.0)
    itm = w * (ext - strike) > 0.0
    # d ln(ext)/dθ through x and the root; ext scales with S0 (it is the running extreme)
    dx_dvol = -vol * maturity + sq * z
    dlog_dvol = 0.5 * (dx_dvol + w * (x * dx_dvol + 2.0 * vol * maturity * e) / root)
    dlog_drate = 0.5 * (maturity + w * x * maturity / root)
    return {
        "price": pay,
        "delta": np.where(itm, df * w * ext / spot, 0.0),
        "vega": np.where(itm, df * w * ext * dlog_dvol, 0.0),
        "rho": np.where(itm, df * w * ext * dlog_drate, 0.0) - maturity * pay,
    }


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike, rate", [(85.0, 0.05), (100.0, 0.05), (115.0, 0.05),
                                          (100.0, 0.02)])  # the last one: r = q
def test_continuous_against_exact_maximum_monte_carlo(is_call, strike, rate):
    """Price, delta, vega and rho within 4 SE of a Monte Carlo that samples the continuous
    extreme exactly (no time grid), with 4 SE under 1 % of each value."""
    market = dict(MARKET, rate=rate)
    ref = lookback(strike=strike, is_call=is_call, **market)
    mc = _bridge_mc(is_call, strike, 400_000, 1234 + int(strike) + 7 * is_call, **market)
    for g, samples in mc.items():
        mean = samples.mean()
        se = samples.std(ddof=1) / math.sqrt(samples.size)
        assert 4.0 * se < 0.01 * abs(ref[g]), (g, se, ref[g])
        assert abs(mean - ref[g]) < 4.0 * se, (g, mean, ref[g], se)


def test_continuous_gamma_against_quantlib_differences():
    """Gamma away from S0 = K, with a running extreme held fixed, against second differences
    of QuantLib's prices."""
    for is_call, extreme in ((True, 105.0), (False, 95.0)):
        got = lookback(spot=100.0, strike=110.0 if is_call else 90.0, maturity=200 / 365.0,
                       rate=0.03, div_yield=0.01, vol=0.2, is_call=is_call,
                       running_extreme=extreme)
        p = {d: _quantlib(100.0 + d, 110.0 if is_call else 90.0, 200, 0.03, 0.01, 0.2,
                          is_call, extreme) for d in (-0.1, -0.01, 0.0, 0.01, 0.1)}
        assert got["gamma"] == pytest.approx((p[-0.1] - 2 * p[0.0] + p[0.1]) / 0.01, rel=1e-4)
        assert got["delta"] == pytest.approx((p[0.01] - p[-0.01]) / 0.02, rel=1e-7)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [80.0, 100.0, 120.0])
def test_one_fixing_is_european(is_call, strike):
    """n = 1: the extreme over the fixings is S_T, so both discrete functions give the
    Black–Scholes price and every Greek (this pins the conventions of rho and theta)."""
    bs = european(strike=strike, is_call=is_call, **MARKET)
    exact = lookback_discrete(strike=strike, is_call=is_call, n_fixings=1, **MARKET)
    bgk = lookback_discrete_bgk(strike=strike, is_call=is_call, n_fixings=1, **MARKET)
    for g in GREEKS:
        assert exact[g] == pytest.approx(bs[g], rel=2e-5, abs=1e-7), g
        assert bgk[g] == pytest.approx(bs[g], rel=2e-5, abs=1e-7), g


def test_discrete_quadrature_converges():
    """Halving the grid step changes the discrete price by under 3e-6 relative (Simpson:
    the default's error is about 1/15 of that change), and the Greeks by under 1e-4."""
    kw = dict(strike=100.0, n_fixings=52, **MARKET)
    for is_call in (True, False):
        a = lookback_discrete(is_call=is_call, **kw)
        b = lookback_discrete(is_call=is_call, nodes_per_sd=32, **kw)
        assert a["price"] == pytest.approx(b["price"], rel=3e-6)
        for g in GREEKS[1:]:
            assert a[g] == pytest.approx(b[g], rel=1e-4), g


def test_discrete_tends_to_continuous():
    """The fine-grid limit: the discrete price rises to the continuous one, the gap shrinking
    like 1/√n (BGK: it is about βσ√(T/n) times the continuous maximum's sensitivity)."""
    cont = lookback(strike=100.0, **MARKET)["price"]
    gaps = [cont - lookback_discrete(strike=100.0, n_fixings=n, **MARKET)["price"]
            for n in (50, 200, 800)]
    assert gaps[0] > gaps[1] > gaps[2] > 0.0
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.1)
    assert gaps[1] / gaps[2] == pytest.approx(2.0, rel=0.05)


def _discrete_mc(is_call, strike, n, paths, seed, spot, maturity, rate, div_yield, vol,
                 chunk=250_000):
    """Discounted payoffs of the discrete lookback from exact GBM at t_i = i·T/n, i = 1..n."""
    rng = np.random.default_rng(seed)
    dt = maturity / n
    out = []
    for start in range(0, paths, chunk):
        z = rng.standard_normal((min(chunk, paths - start), n))
        x = np.cumsum((rate - div_yield - 0.5 * vol * vol) * dt + vol * math.sqrt(dt) * z,
                      axis=1)
        ext = spot * np.exp(x.max(axis=1) if is_call else x.min(axis=1))
        out.append(math.exp(-rate * maturity)
                   * np.maximum((ext - strike) if is_call else (strike - ext), 0.0))
    return np.concatenate(out)


@pytest.mark.slow
@pytest.mark.parametrize("n", [12, 52])
@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [80.0, 100.0, 120.0])
def test_discrete_against_monte_carlo_and_bgk_error(n, is_call, strike):
    """The quadrature within 4 SE of an independent Monte Carlo of the discrete contract
    (4 SE under 1 % of the price); BGK below it by 0.3-1.6 % at n = 12 and 0.05-0.7 % at
    n = 52 (its O(1/n) remainder), and much closer than the uncorrected continuous price."""
    pay = _discrete_mc(is_call, strike, n, 1_000_000, 97 + n + int(strike) + 5 * is_call,
                       **MARKET)
    mean, se = pay.mean(), pay.std(ddof=1) / math.sqrt(pay.size)
    exact = lookback_discrete(strike=strike, is_call=is_call, n_fixings=n, **MARKET)["price"]
    assert 4.0 * se < 0.01 * exact
    assert abs(mean - exact) < 4.0 * se, (mean, exact, se)
    bgk = lookback_discrete_bgk(strike=strike, is_call=is_call, n_fixings=n,
                                **MARKET)["price"]
    cont = lookback(strike=strike, is_call=is_call, **MARKET)["price"]
    # measured gaps (bgk - exact): calls -0.23..-0.25 (n=12), -0.054..-0.063 (n=52);
    # puts -0.11..-0.13 (n=12), -0.023..-0.030 (n=52)
    bound = (0.3 if is_call else 0.15) * 12.0 / n
    assert -bound < bgk - exact < 0.0
    assert abs(bgk - exact) < 0.1 * abs(cont - exact)


def test_bgk_error_falls_like_one_over_n():
    """The BGK remainder is O(1/n): from n = 12 to 52 it shrinks by about 52/12."""
    kw = dict(strike=100.0, **MARKET)
    gap = [lookback_discrete_bgk(n_fixings=n, **kw)["price"]
           - lookback_discrete(n_fixings=n, **kw)["price"] for n in (12, 52)]
    assert gap[0] / gap[1] == pytest.approx(52.0 / 12.0, rel=0.15)


def test_bgk_in_the_money_when_spot_is_not_a_fixing():
    """In the money the maximum over t1..tn may end below S0: BGK from t = 0 (which treats S0
    as a fixing) overprices; conditioning on the first fixing does not."""
    kw = dict(strike=80.0, n_fixings=12, **MARKET)
    exact = lookback_discrete(**kw)["price"]
    a = 0.5826 * 0.3 * math.sqrt(1.0 / 12)
    df = math.exp(-0.05)
    from_zero = df * 20.0 + math.exp(-a) * lookback(
        strike=100.0 * math.exp(a), **MARKET)["price"]
    assert from_zero - exact > 0.5
    assert abs(lookback_discrete_bgk(**kw)["price"] - exact) < 0.3


def test_broadcasting():
    """Array arguments broadcast; each entry equals the scalar call."""
    strikes = np.array([90.0, 100.0, 110.0])
    calls = np.array([True, False, True])
    for fn, extra in ((lookback, {}), (lookback_discrete_bgk, {"n_fixings": 12}),
                      (lookback_discrete, {"n_fixings": 12})):
        arr = fn(strike=strikes, is_call=calls, **extra, **MARKET)
        for i in range(3):
            one = fn(strike=strikes[i], is_call=bool(calls[i]), **extra, **MARKET)
            for g in GREEKS:
                assert arr[g][i] == pytest.approx(one[g], rel=1e-12, abs=1e-12), (fn, g)
