"""Discrete geometric Asian closed form against QuantLib, identities and published values."""
import itertools

import numpy as np
import pytest

import differences
import QuantLib as ql

from mcgreeks.analytic.asian import geometric_asian
from mcgreeks.analytic.black_scholes import european

GREEKS = ("price", "delta", "gamma", "vega", "rho", "theta")

# Fixings every STEP days, n of them; maturity = last fixing.  Whole days keep QuantLib's
# Actual/365 (Fixed) times equal to ours: t_i = i * STEP / 365 = i * T / n.
SPOTS = (80.0, 100.0, 120.0)
STRIKES = (90.0, 100.0, 115.0)
N_FIXINGS = (1, 4, 12, 52)
STEPS = (7, 30)
RATES = (-0.02, 0.04)
DIVS = (0.0, 0.03)
VOLS = (0.15, 0.4)
CALLS = (True, False)


def _grid():
    rows = list(itertools.product(SPOTS, STRIKES, N_FIXINGS, STEPS, RATES, DIVS, VOLS, CALLS))
    c = [np.array(col) for col in zip(*rows)]
    return dict(spot=c[0], strike=c[1], n_fixings=c[2], step=c[3],
                maturity=c[2] * c[3] / 365.0, rate=c[4], div_yield=c[5], vol=c[6],
                is_call=c[7])


def _kwargs(g):
    return {k: g[k] for k in ("spot", "strike", "maturity", "rate", "div_yield", "vol",
                              "n_fixings", "is_call")}


@pytest.fixture(scope="module")
def today():
    date = ql.Date(15, ql.January, 2025)
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = date
    yield date
    ql.Settings.instance().evaluationDate = saved


def _process(today, spot, rate, div, vol):
    dc = ql.Actual365Fixed()
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )


def _ql_discrete(today, spot, strike, n, step, rate, div, vol, is_call):
    fixings = [today + step * i for i in range(1, n + 1)]
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike)
    # running accumulator 1 and no past fixings: every fixing is in the future, t = 0 excluded
    option = ql.DiscreteAveragingAsianOption(ql.Average.Geometric, 1.0, 0, fixings, payoff,
                                             ql.EuropeanExercise(fixings[-1]))
    option.setPricingEngine(
        ql.AnalyticDiscreteGeometricAveragePriceAsianEngine(_process(today, spot, rate, div, vol)))
    return (option.NPV(), option.delta(), option.gamma(), option.vega(), option.rho(),
            option.theta())


# ----------------------------------------------------------------------------- QuantLib


def test_matches_quantlib_on_grid(today):
    g = _grid()
    ours = geometric_asian(**_kwargs(g))
    theirs = np.array([
        _ql_discrete(today, s, k, int(n), int(st), r, q, v, bool(c))
        for s, k, n, st, r, q, v, c in zip(g["spot"], g["strike"], g["n_fixings"], g["step"],
                                           g["rate"], g["div_yield"], g["vol"], g["is_call"])
    ])
    # QuantLib's theta is a different quantity (see the next test); the rest must agree
    for i, name in enumerate(GREEKS[:5]):
        np.testing.assert_allclose(ours[name], theirs[:, i], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_quantlib_theta_is_calendar_theta_not_ours(today):
    """QuantLib's theta keeps the fixing dates fixed while time passes: it is the
    Black–Scholes PDE value rV − (r − q)SΔ − σ²S²Γ/2.  Ours moves the fixings with T
    (docs/reference.md#output-columns), so the two differ for n > 1 and coincide for n = 1."""
    s, k, r, q, v = 100.0, 95.0, 0.03, 0.01, 0.25
    for n, step in ((1, 365), (12, 30)):
        ql_theta = _ql_discrete(today, s, k, n, step, r, q, v, True)[5]
        ours = geometric_asian(spot=s, strike=k, maturity=n * step / 365.0, rate=r, vol=v,
                               div_yield=q, n_fixings=n)
        pde = (r * ours["price"] - (r - q) * s * ours["delta"]
               - 0.5 * v * v * s * s * ours["gamma"])
        assert ql_theta == pytest.approx(pde, rel=1e-9)
        if n == 1:
            assert ours["theta"] == pytest.approx(ql_theta, rel=1e-9)
        else:
            assert abs(ours["theta"] - ql_theta) > 1.0


def test_continuous_limit_matches_quantlib_continuous_engine(today):
    # Kemna & Vorst's continuous geometric average over [0, T] is the n → ∞ limit of ours
    s, k, days, r, q, v = 100.0, 105.0, 365, 0.05, 0.02, 0.3
    option = ql.ContinuousAveragingAsianOption(
        ql.Average.Geometric, ql.PlainVanillaPayoff(ql.Option.Call, k),
        ql.EuropeanExercise(today + days))
    option.setPricingEngine(
        ql.AnalyticContinuousGeometricAveragePriceAsianEngine(_process(today, s, r, q, v)))
    theirs = dict(price=option.NPV(), delta=option.delta(), gamma=option.gamma(),
                  vega=option.vega(), rho=option.rho())
    errors = []
    for n in (10_000, 100_000):
        ours = geometric_asian(spot=s, strike=k, maturity=days / 365.0, rate=r, vol=v,
                               div_yield=q, n_fixings=n)
        errors.append(abs(ours["price"] - theirs["price"]))
        for name, value in theirs.items():
            assert ours[name] == pytest.approx(value, rel=2e-3 * 10_000 / n)
    # the discretisation error is O(1/n)
    assert errors[1] == pytest.approx(errors[0] / 10.0, rel=0.05)


# ----------------------------------------------------------------------------- identities


def test_greeks_are_derivatives_of_price():
    kw = _kwargs(_grid())
    greeks = geometric_asian(**kw)

    # the maturity bump moves every fixing date t_i = i T / n with it
    fd = differences.greeks(geometric_asian, kw)
    for name, value in fd.items():
        np.testing.assert_allclose(greeks[name], value, rtol=1e-6, atol=1e-8, err_msg=name)


def test_single_fixing_is_the_european():
    g = _grid()
    kw = _kwargs(g)
    kw["n_fixings"] = 1
    asian = geometric_asian(**kw)
    kw.pop("n_fixings")
    vanilla = european(**kw)
    for name in GREEKS:
        np.testing.assert_allclose(asian[name], vanilla[name], rtol=1e-12, atol=1e-13,
                                   err_msg=name)


def test_put_call_parity_with_moments_from_explicit_sums():
    """C − P = e^{-rT}(E[G] − K), with E[G] from the mean and variance of ln G computed by
    brute-force sums over the fixing dates (independent of the closed-form sums)."""
    s, k, t, r, q, v = 100.0, 97.0, 1.3, 0.02, 0.035, 0.27
    for n in (1, 2, 7, 40):
        times = t * np.arange(1, n + 1) / n
        mean = np.log(s) + (r - q - 0.5 * v * v) * times.mean()
        var = v * v * np.minimum.outer(times, times).sum() / n**2
        expected = np.exp(-r * t) * (np.exp(mean + 0.5 * var) - k)
        kw = dict(spot=s, strike=k, maturity=t, rate=r, vol=v, div_yield=q, n_fixings=n)
        call = geometric_asian(**kw, is_call=True)["price"]
        put = geometric_asian(**kw, is_call=False)["price"]
        assert call - put == pytest.approx(expected, rel=1e-12)


def test_price_decreases_towards_continuous_limit_as_fixings_increase():
    # more fixings average earlier (smaller) variances: an ATM call loses value monotonically
    prices = [geometric_asian(spot=100.0, strike=100.0, maturity=1.0, rate=0.0, vol=0.3,
                              n_fixings=n)["price"] for n in (1, 2, 4, 12, 52, 252)]
    assert np.all(np.diff(prices) < 0)


# ----------------------------------------------------------------------------- published


def test_clewlow_strickland_value():
    # Clewlow & Strickland, "Implementing Derivatives Models" (1998) pp. 118-123, as used by
    # QuantLib's test-suite (asianoptions.cpp): 10 fixings at t = 0.1, ..., 1.0
    p = geometric_asian(spot=100.0, strike=100.0, maturity=1.0, rate=0.06, vol=0.2,
                        div_yield=0.03, n_fixings=10)["price"]
    assert p == pytest.approx(5.3425606635, abs=1e-10)


def test_haug_continuous_geometric_value_in_the_limit():
    # Haug (2007) §4.20.1: continuous geometric average-rate put, S=80, K=85, T=0.25,
    # r=0.05, b=0.08 (q = −0.03), σ=0.2 -> 4.6922
    p = geometric_asian(spot=80.0, strike=85.0, maturity=0.25, rate=0.05, vol=0.2,
                        div_yield=-0.03, n_fixings=1_000_000, is_call=False)["price"]
    assert p == pytest.approx(4.6922, abs=5e-5)


# ----------------------------------------------------------------------------- API


def test_scalar_input_gives_floats_and_n_fixings_broadcasts():
    out = geometric_asian(spot=100.0, strike=100.0, maturity=1.0, rate=0.01, vol=0.2,
                          n_fixings=12)
    assert set(out) == set(GREEKS) and all(type(v) is float for v in out.values())

    out = geometric_asian(spot=100.0, strike=np.array([[95.0], [105.0]]), maturity=1.0,
                          rate=0.01, vol=0.2, n_fixings=np.array([1, 12, 52]))
    assert all(v.shape == (2, 3) for v in out.values())
    single = geometric_asian(spot=100.0, strike=105.0, maturity=1.0, rate=0.01, vol=0.2,
                             n_fixings=52)
    for name in GREEKS:
        assert out[name][1, 2] == pytest.approx(single[name], rel=1e-14)


@pytest.mark.parametrize(
    "name, bad",
    [("spot", -1.0), ("strike", 0.0), ("maturity", -0.5), ("vol", 0.0), ("rate", np.nan),
     ("div_yield", np.inf), ("n_fixings", 0), ("n_fixings", 2.5), ("n_fixings", [4, -1]),
     ("is_call", "call")],
)
def test_invalid_input_raises_naming_argument(name, bad):
    kwargs = dict(spot=100.0, strike=100.0, maturity=1.0, rate=0.01, vol=0.2, n_fixings=12)
    kwargs[name] = bad
    with pytest.raises(ValueError, match=name):
        geometric_asian(**kwargs)
