"""Tests of the Heston semi-analytic oracle mcgreeks.analytic.heston.heston_european.

Independent checks, in decreasing order of authority:
1. published reference prices (Lewis's 50-digit values, Fang-Oosterlee 2008, Andersen 2008);
2. QuantLib's AnalyticHestonEngine (separate code and quadrature: adaptive Gauss-Lobatto) on a
   grid of 24 contracts x models, and a 30-digit mpmath evaluation of the textbook
   (un-rewritten) little-trap integrand on hard cases, one of which QuantLib rejects (v0 = 0);
3. identities and limits: put-call parity for price and Greeks, the xi -> 0 Black-Scholes
   limit, and every analytic Greek against a Richardson-extrapolated central difference.
"""
import math

import numpy as np
import pytest
from scipy.stats import norm

from mcgreeks.analytic.heston import heston_european

# Any numpy overflow / invalid-value warning on ordinary inputs is a bug.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

GREEKS = ("delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")


def heston(**kw):
    kw.setdefault("div_yield", 0.0)
    return heston_european(**kw)


def black_scholes(*, spot, strike, maturity, rate, div_yield, vol, is_call):
    """Black-Scholes-Merton price and Greeks, written out here to stay independent."""
    sd = vol * math.sqrt(maturity)
    d1 = (math.log(spot / strike) + (rate - div_yield + 0.5 * vol * vol) * maturity) / sd
    d2 = d1 - sd
    dq, dr = math.exp(-div_yield * maturity), math.exp(-rate * maturity)
    w = 1.0 if is_call else -1.0
    price = w * (spot * dq * norm.cdf(w * d1) - strike * dr * norm.cdf(w * d2))
    return {
        "price": price,
        "delta": w * dq * norm.cdf(w * d1),
        "gamma": dq * norm.pdf(d1) / (spot * sd),
        "vega": spot * dq * norm.pdf(d1) * math.sqrt(maturity),
        "rho": w * strike * maturity * dr * norm.cdf(w * d2),
        "theta": (-spot * dq * norm.pdf(d1) * vol / (2.0 * math.sqrt(maturity))
                  + w * (div_yield * spot * dq * norm.cdf(w * d1)
                         - rate * strike * dr * norm.cdf(w * d2))),
    }


# ---------------------------------------------------------------------------------------------
# 1. published reference values
# ---------------------------------------------------------------------------------------------

# A. Lewis, Wilmott forum thread "Heston - Reference Prices" (30 May 2012), Mathematica at
# WorkingPrecision 50, quoted "good for about 20 digits"; the same numbers are the expected
# values of QuantLib's test-suite/hestonmodel.cpp::testAlanLewisReferencePrices.
# S = 100, T = 1, r = 0.01, q = 0.02, v0 = 0.04, kappa = 4, vbar = 0.25, xi = 1, corr = -0.5.
LEWIS = {  # strike: (put, call)
    80: (7.958878113256768285213263077598987193482161301733,
         26.774758743998854221382195325726949201687074848341),
    90: (12.017966707346304987709573290236471654992071308187,
         20.933349000596710388139445766564068085476194042256),
    100: (17.055270961270109413522653999411000974895436309183,
          16.070154917028834278213466703938231827658768230714),
    110: (23.017825898442800538908781834822560777763225722188,
          12.132211516709844867860534767549426052805766831181),
    120: (29.811026202682471843340682293165857439167301370697,
          9.024913483457835636553375454092357136489051667150),
}


@pytest.mark.parametrize("strike", sorted(LEWIS))
@pytest.mark.parametrize("is_call", [False, True])
def test_lewis_reference_prices(strike, is_call):
    expected = LEWIS[strike][int(is_call)]
    got = heston(spot=100.0, strike=strike, maturity=1.0, rate=0.01, div_yield=0.02, v0=0.04,
                 kappa=4.0, vbar=0.25, xi=1.0, corr=-0.5, is_call=is_call)["price"]
    assert got == pytest.approx(expected, rel=1e-12)


# F. Fang, C. W. Oosterlee (2008), "A novel pricing method for European options based on
# Fourier-cosine series expansions", SIAM J. Sci. Comput. 31(2), Tables 4 and 5 ("reference
# val.", from Carr-Madan with N = 2^17): S = K = 100, r = q = 0, kappa = 1.5768, xi = 0.5751,
# vbar = 0.0398, v0 = 0.0175, corr = -0.5711 (2 kappa vbar = 0.126 < xi^2 = 0.331: Feller
# violated).  The quoted values are slightly off: this module, QuantLib (Gauss-Lobatto at
# 1e-14) and a 30-digit mpmath evaluation all give 5.78515543437... (1.6e-8 below the quoted
# T = 1 value) and 22.3189457911545 (3.2e-10 below the quoted T = 10 value), so each is
# checked to its own accuracy.
FANG_OOSTERLEE = dict(spot=100.0, strike=100.0, rate=0.0, v0=0.0175, kappa=1.5768, vbar=0.0398,
                      xi=0.5751, corr=-0.5711)


@pytest.mark.parametrize("maturity, expected, rel", [(1.0, 5.785155450, 5e-9),
                                                     (10.0, 22.318945791474590, 3e-11)])
def test_fang_oosterlee_reference_prices(maturity, expected, rel):
    got = heston(maturity=maturity, **FANG_OOSTERLEE)["price"]
    assert got == pytest.approx(expected, rel=rel)


# L. Andersen (2008), "Simple and efficient simulation of the Heston stochastic volatility
# model", J. Comput. Finance 11(3), test case I: kappa = 0.5, xi = 1, corr = -0.9, vbar = v0 =
# 0.04, r = 0, T = 10, S = K = 100 (Feller violated), exact price 13.0847 (4 decimals quoted).
# QuantLib's AnalyticHestonEngine gives 13.08467014 (checked while writing this test), as does
# PyFENG's documented "true price" for the same case.
def test_andersen_case_one():
    got = heston(spot=100.0, strike=100.0, maturity=10.0, rate=0.0, v0=0.04, kappa=0.5,
                 vbar=0.04, xi=1.0, corr=-0.9)["price"]
    assert got == pytest.approx(13.0847, abs=5e-5)
    assert got == pytest.approx(13.08467014, abs=5e-9)


# ---------------------------------------------------------------------------------------------
# 2. independent implementations
# ---------------------------------------------------------------------------------------------

QL_MODELS = [  # v0, kappa, vbar, xi, corr
    (0.04, 1.5, 0.04, 0.3, -0.7),
    (0.09, 3.0, 0.05, 0.5, -0.3),
    (0.02, 0.8, 0.06, 0.2, 0.2),
    (0.0175, 1.5768, 0.0398, 0.5751, -0.5711),   # Feller violated (Fang-Oosterlee)
    (0.04, 0.5, 0.04, 1.0, -0.9),                # Feller violated (Andersen case I)
    (0.25, 6.0, 0.1, 0.8, 0.5),
]
QL_TRADES = [  # spot, strike, days (Actual/365 Fixed, so T = days / 365 exactly), r, q, call
    (100.0, 100.0, 365, 0.03, 0.01, True),
    (100.0, 80.0, 182, 0.01, 0.0, False),
    (50.0, 60.0, 730, 0.05, 0.02, True),
    (100.0, 120.0, 3650, 0.02, 0.03, False),
]


def quantlib_price(ql, *, spot, strike, days, rate, div_yield, v0, kappa, vbar, xi, corr,
                   is_call):
    today = ql.Date(15, 3, 2021)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = lambda x: ql.YieldTermStructureHandle(ql.FlatForward(today, x, dc))  # noqa: E731
    process = ql.HestonProcess(curve(rate), curve(div_yield),
                               ql.QuoteHandle(ql.SimpleQuote(spot)), v0, kappa, vbar, xi, corr)
    # adaptive Gauss-Lobatto at relative tolerance 1e-14 (the default Gauss-Laguerre rule
    # is good to ~1e-10 only)
    engine = ql.AnalyticHestonEngine(ql.HestonModel(process), 1e-14, 1_000_000)
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike),
        ql.EuropeanExercise(today + days))
    option.setPricingEngine(engine)
    return option.NPV()


def test_against_quantlib_grid():
    ql = pytest.importorskip("QuantLib")
    for v0, kappa, vbar, xi, corr in QL_MODELS:
        for spot, strike, days, rate, q, is_call in QL_TRADES:
            model = dict(v0=v0, kappa=kappa, vbar=vbar, xi=xi, corr=corr)
            expected = quantlib_price(ql, spot=spot, strike=strike, days=days, rate=rate,
                                      div_yield=q, is_call=is_call, **model)
            got = heston(spot=spot, strike=strike, maturity=days / 365.0, rate=rate,
                         div_yield=q, is_call=is_call, **model)["price"]
            assert got == pytest.approx(expected, rel=1e-9), (model, spot, strike, days)


def mpmath_call(*, spot, strike, maturity, rate, div_yield, v0, kappa, vbar, xi, corr):
    """The Lewis integral with the little-trap phi exactly as published, in 30-digit arithmetic."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(30):
        s, kk, t, r, q = (mp.mpf(x) for x in (spot, strike, maturity, rate, div_yield))
        v0, kappa, vbar, xi, corr = (mp.mpf(x) for x in (v0, kappa, vbar, xi, corr))
        fwd = s * mp.exp((r - q) * t)
        k = mp.log(kk / fwd)

        def phi(z):
            beta = kappa - corr * xi * 1j * z
            d = mp.sqrt(beta ** 2 + xi ** 2 * (z * z + 1j * z))
            g = (beta - d) / (beta + d)
            e = mp.exp(-d * t)
            big_d = (beta - d) / xi ** 2 * (1 - e) / (1 - g * e)
            big_c = kappa * vbar / xi ** 2 * ((beta - d) * t - 2 * mp.log((1 - g * e) / (1 - g)))
            return mp.exp(big_c + v0 * big_d)

        integrand = lambda u: mp.re(mp.exp(-1j * u * k) * phi(u - 0.5j)) / (u * u + 0.25)  # noqa
        # breakpoints on a doubling grid up to u = 4096: the slowest-decaying case below
        # (v0 = 0) needs u ~ 3000 before phi is negligible
        points = [0] + [mp.mpf(2) ** j / 4 for j in range(15)] + [mp.inf]
        integral = mp.quad(integrand, points)
        return float(mp.exp(-r * t) * (fwd - mp.sqrt(fwd * kk) * integral / mp.pi))


@pytest.mark.parametrize("case", [
    # T = 30, large xi, positive correlation, far OTM
    dict(spot=100.0, strike=300.0, maturity=30.0, rate=0.02, div_yield=0.01, v0=0.04,
         kappa=0.3, vbar=0.04, xi=1.5, corr=0.7),
    # v0 = 0 and 2 kappa vbar / xi^2 = 0.006: phi decays only like exp(-0.011 u);
    # QuantLib rejects v0 = 0
    dict(spot=100.0, strike=80.0, maturity=5.0, rate=0.05, div_yield=0.0, v0=0.0,
         kappa=0.1, vbar=0.02, xi=0.8, corr=-0.5),
    # one trading day, |corr| near 1
    dict(spot=100.0, strike=101.0, maturity=1.0 / 252, rate=0.02, div_yield=0.01, v0=0.01,
         kappa=2.0, vbar=0.04, xi=0.5, corr=-0.99),
])
def test_against_high_precision_integral(case):
    expected = mpmath_call(**case)
    got = heston(**case)["price"]
    assert got == pytest.approx(expected, rel=1e-11, abs=1e-12 * case["spot"])


# ---------------------------------------------------------------------------------------------
# 3. identities and limits
# ---------------------------------------------------------------------------------------------

CASES = [
    dict(spot=100.0, strike=100.0, maturity=1.0, rate=0.03, div_yield=0.01, v0=0.04,
         kappa=1.5, vbar=0.05, xi=0.6, corr=-0.7),
    dict(spot=100.0, strike=130.0, maturity=10.0, rate=0.01, div_yield=0.02, v0=0.04,
         kappa=0.5, vbar=0.04, xi=1.0, corr=-0.9),           # Feller violated, long
    dict(spot=90.0, strike=75.0, maturity=0.1, rate=0.05, div_yield=0.0, v0=0.09,
         kappa=3.0, vbar=0.04, xi=0.3, corr=0.4),            # short, ITM call
    dict(spot=100.0, strike=100.0, maturity=30.0, rate=0.02, div_yield=0.01, v0=0.02,
         kappa=0.3, vbar=0.06, xi=0.4, corr=-0.3),           # T = 30
]


@pytest.mark.parametrize("case", CASES)
def test_put_call_parity(case):
    call = heston(**case, is_call=True)
    put = heston(**case, is_call=False)
    s, k, t, r, q = (case[n] for n in ("spot", "strike", "maturity", "rate", "div_yield"))
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    tol = 1e-12 * s
    assert call["price"] - put["price"] == pytest.approx(s * dq - k * dr, abs=tol)
    assert call["delta"] - put["delta"] == pytest.approx(dq, abs=1e-13)
    assert call["gamma"] == pytest.approx(put["gamma"], abs=1e-15)
    assert call["rho"] - put["rho"] == pytest.approx(k * t * dr, abs=tol * t)
    # theta = -d/dT, and d/dT (S e^{-qT} - K e^{-rT}) = -q S e^{-qT} + r K e^{-rT}
    assert call["theta"] - put["theta"] == pytest.approx(q * s * dq - r * k * dr, abs=tol)
    for name in ("d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr"):
        assert call[name] == pytest.approx(put[name], abs=tol)


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [70.0, 100.0, 140.0])
def test_black_scholes_limit(is_call, strike):
    # xi -> 0 with v0 = vbar: the variance stays at v0, so Heston is Black-Scholes with
    # vol sqrt(v0); the gap is O(xi) (O(xi corr)), so xi = 1e-7 leaves ~1e-8 relative.
    v = 0.09
    market = dict(spot=100.0, strike=strike, maturity=2.0, rate=0.04, div_yield=0.015)
    bs = black_scholes(**market, vol=math.sqrt(v), is_call=is_call)
    hes = heston(**market, v0=v, kappa=1.2, vbar=v, xi=1e-7, corr=-0.6, is_call=is_call)
    for key in ("price", "delta", "gamma", "rho", "theta"):
        assert hes[key] == pytest.approx(bs[key], rel=1e-6, abs=1e-9), key
    # moving v0 and vbar together moves the flat variance: dV/d(sigma^2) = vega / (2 sigma)
    assert hes["d_v0"] + hes["d_vbar"] == pytest.approx(bs["vega"] / (2 * math.sqrt(v)),
                                                        rel=1e-6)
    # with v0 = vbar and no vol-of-vol, the reversion speed is irrelevant
    assert abs(hes["d_kappa"]) < 1e-6


def test_black_scholes_limit_convergence_rate():
    market = dict(spot=100.0, strike=110.0, maturity=1.0, rate=0.02, div_yield=0.0)
    bs = black_scholes(**market, vol=0.2, is_call=True)["price"]
    gaps = [heston(**market, v0=0.04, kappa=2.0, vbar=0.04, xi=xi, corr=-0.5)["price"] - bs
            for xi in (1e-2, 1e-3, 1e-4)]
    # first order in xi when corr != 0
    assert gaps[0] / gaps[1] == pytest.approx(10.0, rel=0.02)
    assert gaps[1] / gaps[2] == pytest.approx(10.0, rel=0.02)


def richardson_first(f, x, h):
    """df/dx by central differences at h and 2h, Richardson-extrapolated: error O(h^4)."""
    d_h = (f(x + h) - f(x - h)) / (2 * h)
    d_2h = (f(x + 2 * h) - f(x - 2 * h)) / (4 * h)
    return (4 * d_h - d_2h) / 3


def richardson_second(f, x, h):
    s_h = (f(x + h) - 2 * f(x) + f(x - h)) / h ** 2
    s_2h = (f(x + 2 * h) - 2 * f(x) + f(x - 2 * h)) / (4 * h ** 2)
    return (4 * s_h - s_2h) / 3


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_greeks_match_finite_differences(case, is_call):
    # Steps: the price is accurate to ~1e-14 * spot, so a step h costs ~1e-14 * spot / h of
    # noise, while the Richardson truncation error is O((h / scale)^4) with scale the width of
    # the terminal distribution (spot * sqrt(v T) in S, sqrt(v T) / T in r, ...).  The steps
    # below make both terms < 1e-8 relative.
    analytic = heston(**case, is_call=is_call)
    width = math.sqrt(max(case["v0"], case["vbar"]) * case["maturity"])

    def price(name):
        return lambda x: heston(**{**case, name: x}, is_call=is_call)["price"]

    steps = {
        "delta": ("spot", 2e-3 * case["spot"] * width),
        "rho": ("rate", 2e-3 * width / case["maturity"]),
        "theta": ("maturity", 1e-3 * case["maturity"]),
        "d_v0": ("v0", 1e-3 * max(case["v0"], 0.01)),
        "d_kappa": ("kappa", 1e-3 * case["kappa"]),
        "d_vbar": ("vbar", 1e-3 * case["vbar"]),
        "d_xi": ("xi", 1e-3 * case["xi"]),
        "d_corr": ("corr", 1e-3),
    }
    numeric = {greek: richardson_first(price(arg), case[arg], h)
               for greek, (arg, h) in steps.items()}
    numeric["theta"] = -numeric["theta"]
    numeric["gamma"] = richardson_second(price("spot"), case["spot"],
                                         5e-3 * case["spot"] * width)
    scale = {"gamma": 1e-9 / case["spot"]}
    for greek in GREEKS:
        tol = 1e-7 * abs(numeric[greek]) + scale.get(greek, 1e-9 * case["spot"])
        assert abs(analytic[greek] - numeric[greek]) <= tol, (greek, analytic[greek],
                                                              numeric[greek])


def test_long_maturity_is_continuous_in_time():
    # The original Heston form jumps between log branches as T grows (Albrecher et al. 2007,
    # Fig. 1); here the price must be smooth: second differences in T stay tiny.
    params = dict(spot=100.0, strike=100.0, rate=0.0, v0=0.04, kappa=0.5, vbar=0.04, xi=1.0,
                  corr=-0.9)
    ts = np.linspace(5.0, 30.0, 101)
    prices = heston(maturity=ts, **params)["price"]
    assert np.all(np.diff(prices) > 0)
    assert np.max(np.abs(np.diff(prices, 2))) < 5e-3   # 2.8e-3 measured


# ---------------------------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------------------------

BASE = dict(spot=100.0, strike=100.0, maturity=1.0, rate=0.03, div_yield=0.01, v0=0.04,
            kappa=1.5, vbar=0.05, xi=0.6, corr=-0.7)


def test_scalar_input_returns_floats_with_all_keys():
    out = heston_european(**BASE)
    assert set(out) == {"price", *GREEKS}
    assert all(type(v) is float for v in out.values())


def test_array_input_broadcasts_and_matches_scalar_calls():
    strikes = np.array([[80.0, 100.0, 125.0]])
    flags = np.array([[True], [False]])
    out = heston_european(**{**BASE, "strike": strikes}, is_call=flags)
    assert out["price"].shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = heston_european(**{**BASE, "strike": float(strikes[0, j])},
                                  is_call=bool(flags[i, 0]))
            for key in one:
                assert out[key][i, j] == one[key]


@pytest.mark.parametrize("name, value", [
    ("spot", 0.0), ("spot", -1.0), ("strike", 0.0), ("maturity", 0.0), ("maturity", -0.5),
    ("v0", -1e-4), ("kappa", 0.0), ("vbar", 0.0), ("xi", 0.0), ("xi", -0.2),
    ("corr", 1.0001), ("corr", -1.5), ("rate", math.nan), ("spot", math.inf),
    ("strike", [100.0, -5.0]),
])
def test_invalid_inputs_raise_value_error_naming_the_argument(name, value):
    with pytest.raises(ValueError, match=rf"^{name} .*{value if np.isscalar(value) else -5.0}"):
        heston_european(**{**BASE, name: value})


def test_zero_initial_variance_and_unit_correlation_are_accepted():
    assert heston_european(**{**BASE, "v0": 0.0})["price"] > 0
    for corr in (-1.0, 1.0):
        assert heston_european(**{**BASE, "corr": corr})["price"] > 0


def test_degenerate_parameters_warn():
    # corr = 1 and xi = 2 kappa make ln S_T an affine function of v_T: phi(u - i/2) no longer
    # decays and the quadrature cannot certify its result
    with pytest.warns(RuntimeWarning, match="quadrature"):
        heston_european(**{**BASE, "corr": 1.0, "kappa": 1.5, "xi": 3.0})
    # vanishing variance with 2 kappa vbar / xi^2 ~ 1e-7: phi decays only like a tiny power
    with pytest.warns(RuntimeWarning, match="quadrature"):
        heston_european(**{**BASE, "v0": 0.0, "vbar": 1e-8})


def test_far_wings_are_accurate_in_absolute_terms():
    out = heston_european(**{**BASE, "strike": np.array([1e-3, 1e4])})
    forward_intrinsic = BASE["spot"] * math.exp(-BASE["div_yield"]) - 1e-3 * math.exp(
        -BASE["rate"])
    assert out["price"][0] == pytest.approx(forward_intrinsic, abs=1e-10 * BASE["spot"])
    assert 0.0 <= out["price"][1] <= 1e-10 * BASE["spot"]

