"""Black–Scholes–Merton closed forms against QuantLib, identities and published values."""
import itertools

import numpy as np
import pytest

import differences
import QuantLib as ql

from mcgreeks.analytic.black_scholes import digital, european

GREEKS = ("price", "delta", "gamma", "vega", "rho", "theta")

# A grid wide enough to reach deep in/out of the money, short and long maturities, negative
# rates and dividend yields.  Maturities are whole days so that QuantLib's Actual/365 (Fixed)
# year fraction equals ours exactly.
SPOTS = (70.0, 100.0, 130.0)
STRIKES = (80.0, 100.0, 125.0)
DAYS = (30, 365, 1095)
RATES = (-0.02, 0.0, 0.05)
DIVS = (-0.01, 0.03)
VOLS = (0.1, 0.3, 0.7)
CALLS = (True, False)


def _grid():
    rows = list(itertools.product(SPOTS, STRIKES, DAYS, RATES, DIVS, VOLS, CALLS))
    cols = list(zip(*rows))
    return dict(
        spot=np.array(cols[0]),
        strike=np.array(cols[1]),
        days=np.array(cols[2]),
        maturity=np.array(cols[2]) / 365.0,
        rate=np.array(cols[3]),
        div_yield=np.array(cols[4]),
        vol=np.array(cols[5]),
        is_call=np.array(cols[6]),
    )


@pytest.fixture(scope="module")
def today():
    date = ql.Date(15, ql.January, 2025)
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = date
    yield date
    ql.Settings.instance().evaluationDate = saved


def _ql_greeks(today, payoff, spot, days, rate, div, vol):
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + int(days)))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    # QuantLib's vega and rho are per 1.00 and theta is per year, as ours
    return (option.NPV(), option.delta(), option.gamma(), option.vega(), option.rho(),
            option.theta())


def _ql_option_type(is_call):
    return ql.Option.Call if is_call else ql.Option.Put


def _kwargs(g):
    return {k: g[k] for k in ("spot", "strike", "maturity", "rate", "div_yield", "vol", "is_call")}


# ----------------------------------------------------------------------------- European


def test_european_matches_quantlib_on_grid(today):
    g = _grid()
    ours = european(**_kwargs(g))
    theirs = np.array([
        _ql_greeks(today, ql.PlainVanillaPayoff(_ql_option_type(c), k), s, d, r, q, v)
        for s, k, d, r, q, v, c in zip(g["spot"], g["strike"], g["days"], g["rate"],
                                       g["div_yield"], g["vol"], g["is_call"])
    ])
    for i, name in enumerate(GREEKS):
        np.testing.assert_allclose(ours[name], theirs[:, i], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_european_greeks_are_derivatives_of_price():
    differences.assert_greeks(european, _kwargs(_grid()))


def test_european_put_call_parity():
    g = _grid()
    kw = _kwargs(g)
    call = european(**dict(kw, is_call=True))
    put = european(**dict(kw, is_call=False))
    s, k, t, r, q = g["spot"], g["strike"], g["maturity"], g["rate"], g["div_yield"]
    dq, dr = np.exp(-q * t), np.exp(-r * t)
    expected = {
        "price": s * dq - k * dr,
        "delta": dq,
        "gamma": 0.0,
        "vega": 0.0,
        "rho": k * t * dr,
        "theta": q * s * dq - r * k * dr,
    }
    for name in GREEKS:
        np.testing.assert_allclose(call[name] - put[name], expected[name], rtol=1e-12,
                                   atol=1e-10, err_msg=name)


@pytest.mark.parametrize(
    "kwargs, greek, expected",
    [
        # Haug (2007) §1.1.1 / QuantLib test-suite europeanoption.cpp (Haug 1998 values)
        (dict(spot=60.0, strike=65.0, maturity=0.25, rate=0.08, vol=0.30), "price", 2.1334),
        (dict(spot=100.0, strike=95.0, maturity=0.5, rate=0.10, div_yield=0.05, vol=0.20,
              is_call=False), "price", 2.4648),
        # Haug (2007) ch. 2 Greeks examples (b = r − q)
        (dict(spot=105.0, strike=100.0, maturity=0.5, rate=0.10, div_yield=0.10, vol=0.36),
         "delta", 0.5946),
        (dict(spot=105.0, strike=100.0, maturity=0.5, rate=0.10, div_yield=0.10, vol=0.36,
              is_call=False), "delta", -0.3566),
        (dict(spot=55.0, strike=60.0, maturity=0.75, rate=0.10, vol=0.30), "gamma", 0.0278),
        (dict(spot=55.0, strike=60.0, maturity=0.75, rate=0.10, vol=0.30), "vega", 18.9358),
        (dict(spot=430.0, strike=405.0, maturity=0.0833, rate=0.07, div_yield=0.05, vol=0.20,
              is_call=False), "theta", -31.1924),
        (dict(spot=72.0, strike=75.0, maturity=1.0, rate=0.09, vol=0.19), "rho", 38.7325),
    ],
)
def test_european_published_values(kwargs, greek, expected):
    assert european(**kwargs)[greek] == pytest.approx(expected, abs=5e-5)


# ----------------------------------------------------------------------------- digital


def test_digital_matches_quantlib_on_grid(today):
    g = _grid()
    cash = 7.5
    ours = digital(**_kwargs(g), cash=cash)
    theirs = np.array([
        _ql_greeks(today, ql.CashOrNothingPayoff(_ql_option_type(c), k, cash), s, d, r, q, v)
        for s, k, d, r, q, v, c in zip(g["spot"], g["strike"], g["days"], g["rate"],
                                       g["div_yield"], g["vol"], g["is_call"])
    ])
    for i, name in enumerate(GREEKS):
        np.testing.assert_allclose(ours[name], theirs[:, i], rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_digital_greeks_are_derivatives_of_price():
    differences.assert_greeks(digital, _kwargs(_grid()))


def test_digital_call_plus_put_is_discounted_cash():
    g = _grid()
    kw = _kwargs(g)
    call = digital(**dict(kw, is_call=True), cash=3.0)
    put = digital(**dict(kw, is_call=False), cash=3.0)
    t, r = g["maturity"], g["rate"]
    expected = {"price": 3.0 * np.exp(-r * t), "rho": -3.0 * t * np.exp(-r * t),
                "theta": 3.0 * r * np.exp(-r * t), "delta": 0.0, "gamma": 0.0, "vega": 0.0}
    for name in GREEKS:
        np.testing.assert_allclose(call[name] + put[name], expected[name], rtol=1e-12,
                                   atol=1e-12, err_msg=name)


def test_digital_is_minus_strike_derivative_of_vanilla():
    g = _grid()
    kw = _kwargs(g)

    def vanilla(**k):
        return european(**k)["price"]

    # a call pays 1{S_T > K}: −∂C/∂K; a put pays 1{S_T < K}: +∂P/∂K
    sign = np.where(g["is_call"], -1.0, 1.0)
    from_vanilla = sign * differences.central(vanilla, kw, "strike", 1e-3 * g["strike"])
    np.testing.assert_allclose(digital(**kw)["price"], from_vanilla, rtol=1e-7, atol=1e-10)


def test_digital_published_value():
    # Haug (2007) §4.19.2: cash-or-nothing put, S=100, K=80, T=0.75, r=0.06, b=0, σ=0.35,
    # cash 10 -> 2.6710
    p = digital(spot=100.0, strike=80.0, maturity=0.75, rate=0.06, div_yield=0.06, vol=0.35,
                is_call=False, cash=10.0)["price"]
    assert p == pytest.approx(2.6710, abs=5e-5)


# ----------------------------------------------------------------------------- API


@pytest.mark.parametrize("func", [european, digital])
def test_scalar_input_gives_floats_and_arrays_broadcast(func):
    out = func(spot=100.0, strike=105.0, maturity=1.0, rate=0.03, vol=0.2)
    assert set(out) == set(GREEKS)
    assert all(type(v) is float for v in out.values())

    out = func(spot=np.array([[90.0], [110.0]]), strike=np.array([95.0, 100.0, 105.0]),
               maturity=1.0, rate=0.03, vol=0.2, is_call=np.array([True, False, True]))
    assert all(v.shape == (2, 3) for v in out.values())
    # every element equals the scalar evaluation
    single = func(spot=110.0, strike=100.0, maturity=1.0, rate=0.03, vol=0.2, is_call=False)
    for name in GREEKS:
        assert out[name][1, 1] == pytest.approx(single[name], rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("func", [european, digital])
@pytest.mark.parametrize(
    "name, bad",
    [("spot", 0.0), ("strike", -1.0), ("maturity", 0.0), ("vol", -0.2), ("vol", np.nan),
     ("rate", np.inf), ("div_yield", np.nan), ("spot", [100.0, -5.0]), ("is_call", "put")],
)
def test_invalid_input_raises_naming_argument(func, name, bad):
    kwargs = dict(spot=100.0, strike=100.0, maturity=1.0, rate=0.01, vol=0.2)
    kwargs[name] = bad
    with pytest.raises(ValueError, match=name):
        func(**kwargs)


def test_digital_rejects_non_finite_cash():
    with pytest.raises(ValueError, match="cash"):
        digital(spot=100.0, strike=100.0, maturity=1.0, rate=0.01, vol=0.2, cash=np.nan)


def test_invalid_value_is_reported():
    with pytest.raises(ValueError, match="-5.0"):
        european(spot=[100.0, -5.0], strike=100.0, maturity=1.0, rate=0.0, vol=0.2)
