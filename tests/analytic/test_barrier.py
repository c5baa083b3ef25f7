"""Barrier closed forms against QuantLib, identities, published values and Monte Carlo."""
import itertools

import numpy as np
import pytest

import differences
import QuantLib as ql
from scipy.stats import norm

from mcgreeks.analytic.barrier import BARRIER_TYPES, BGK_BETA, barrier, barrier_discrete_bgk
from mcgreeks.analytic.black_scholes import european

GREEKS = ("price", "delta", "gamma", "vega", "rho", "theta")
QL_TYPES = {"up_out": ql.Barrier.UpOut, "up_in": ql.Barrier.UpIn,
            "down_out": ql.Barrier.DownOut, "down_in": ql.Barrier.DownIn}

# Barriers on both sides of every strike, never breached at the spot; whole days so that
# QuantLib's Actual/365 (Fixed) times equal ours.
SPOTS = (90.0, 100.0)
BARRIERS = {"down_out": (70.0, 85.0), "down_in": (70.0, 85.0),
            "up_out": (105.0, 125.0), "up_in": (105.0, 125.0)}
STRIKES = (80.0, 95.0, 100.0, 110.0, 130.0)
DAYS = (30, 182, 730)
RATES = (-0.01, 0.05)
DIVS = (0.0, 0.04)
VOLS = (0.15, 0.4)
CALLS = (True, False)


def _grid(types=BARRIER_TYPES):
    rows = [
        (s, k, h, d, r, q, v, c, bt)
        for bt in types
        for s, k, h, d, r, q, v, c in itertools.product(
            SPOTS, STRIKES, BARRIERS[bt], DAYS, RATES, DIVS, VOLS, CALLS)
    ]
    c = [np.array(col) for col in zip(*rows)]
    return dict(spot=c[0], strike=c[1], barrier=c[2], days=c[3], maturity=c[3] / 365.0,
                rate=c[4], div_yield=c[5], vol=c[6], is_call=c[7], barrier_type=c[8])


def _kwargs(g):
    return {k: g[k] for k in ("spot", "strike", "barrier", "maturity", "rate", "div_yield",
                              "vol", "is_call", "barrier_type")}


@pytest.fixture(scope="module")
def today():
    date = ql.Date(15, ql.January, 2025)
    saved = ql.Settings.instance().evaluationDate
    ql.Settings.instance().evaluationDate = date
    yield date
    ql.Settings.instance().evaluationDate = saved


def _ql_price(today, spot, strike, h, days, rate, div, vol, is_call, btype):
    dc = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, div, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)),
    )
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike)
    option = ql.BarrierOption(QL_TYPES[btype], h, 0.0, payoff,
                              ql.EuropeanExercise(today + int(days)))
    option.setPricingEngine(ql.AnalyticBarrierEngine(process))
    return option.NPV()


# ----------------------------------------------------------------------------- QuantLib


def test_matches_quantlib_on_grid(today):
    g = _grid()
    ours = barrier(**_kwargs(g))["price"]
    theirs = np.array([
        _ql_price(today, *row)
        for row in zip(g["spot"], g["strike"], g["barrier"], g["days"], g["rate"],
                       g["div_yield"], g["vol"], g["is_call"], g["barrier_type"])
    ])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- identities


@pytest.mark.parametrize("btype", BARRIER_TYPES)
def test_greeks_are_derivatives_of_price(btype):
    # its steps (<= 2 % of a terminal sd) stay well inside the distance to the barrier
    differences.assert_greeks(barrier, _kwargs(_grid((btype,))))


@pytest.mark.parametrize("direction", ["up", "down"])
def test_in_plus_out_is_vanilla(direction):
    kw = _kwargs(_grid((f"{direction}_in",)))
    knock_in = barrier(**kw)
    knock_out = barrier(**dict(kw, barrier_type=f"{direction}_out"))
    kw.pop("barrier")
    kw.pop("barrier_type")
    vanilla = european(**kw)
    for name in GREEKS:
        scale = np.abs(vanilla[name]).max()
        np.testing.assert_allclose(knock_in[name] + knock_out[name], vanilla[name],
                                   rtol=1e-10, atol=1e-12 * scale, err_msg=name)


@pytest.mark.parametrize("btype, h", [("up_out", 95.0), ("up_in", 95.0), ("up_out", 100.0),
                                      ("up_in", 100.0), ("down_out", 105.0),
                                      ("down_in", 105.0), ("down_out", 100.0),
                                      ("down_in", 100.0)])
def test_breached_at_spot(btype, h):
    kw = dict(spot=100.0, strike=np.array([90.0, 100.0, 110.0])[:, None], maturity=0.7,
              rate=0.03, div_yield=0.01, vol=0.25, is_call=np.array([True, False]))
    out = barrier(**kw, barrier=h, barrier_type=btype)
    vanilla = european(**kw)
    for name in GREEKS:
        expected = vanilla[name] if btype.endswith("_in") else np.zeros((3, 2))
        np.testing.assert_allclose(out[name], expected, rtol=1e-13, atol=0.0, err_msg=name)


@pytest.mark.parametrize("direction, h", [("down", 1e-3), ("up", 1e5)])
def test_barrier_far_away(direction, h):
    kw = dict(spot=100.0, strike=np.array([80.0, 100.0, 120.0]), maturity=2.0, rate=0.04,
              div_yield=0.01, vol=0.3, is_call=np.array([[True], [False]]))
    knock_out = barrier(**kw, barrier=h, barrier_type=f"{direction}_out")
    knock_in = barrier(**kw, barrier=h, barrier_type=f"{direction}_in")
    vanilla = european(**kw)
    for name in GREEKS:
        np.testing.assert_allclose(knock_out[name], vanilla[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)
        np.testing.assert_allclose(knock_in[name], 0.0, atol=1e-12, err_msg=name)


def test_extreme_parameters_stay_finite():
    # (H/S)^{2μ} alone overflows here (2μ ln(H/S) ≈ 2·10³); its products with the normal
    # tails must not turn into inf·0
    for btype, h in (("down_in", 50.0), ("down_out", 50.0), ("up_in", 200.0),
                     ("up_out", 200.0)):
        out = barrier(spot=100.0, strike=100.0, barrier=h, maturity=1.0, rate=0.2, vol=0.02,
                      div_yield=-0.3, barrier_type=btype, is_call=np.array([True, False]))
        for name in GREEKS:
            assert np.all(np.isfinite(out[name])), (btype, name)


def test_strike_equal_to_barrier_is_continuous():
    # K = H is where the formulas switch branches; both sides must meet
    kw = dict(spot=100.0, barrier=95.0, maturity=0.8, rate=0.03, div_yield=0.01, vol=0.3,
              barrier_type=np.array(BARRIER_TYPES)[:, None], is_call=np.array([True, False]))
    below = barrier(**kw, strike=95.0 - 1e-9)
    at = barrier(**kw, strike=95.0)
    above = barrier(**kw, strike=95.0 + 1e-9)
    for name in GREEKS:
        np.testing.assert_allclose(below[name], at[name], rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(above[name], at[name], rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------- published


def _hit_rebate(s, h, t, r, q, v):
    """PV of 1 paid when S first touches H before T (first-passage Laplace transform)."""
    nu = r - q - 0.5 * v * v
    a = abs(np.log(h / s))
    nu = nu if h > s else -nu  # mirror a down barrier into an up one
    zeta = np.sqrt(nu * nu + 2.0 * r * v * v)
    sd = v * np.sqrt(t)
    return (np.exp(a * (nu - zeta) / v**2) * norm.cdf((-a + zeta * t) / sd)
            + np.exp(a * (nu + zeta) / v**2) * norm.cdf((-a - zeta * t) / sd))


def _expiry_rebate(s, h, t, r, q, v):
    """PV of 1 paid at T if S never touches H (reflection principle)."""
    nu = r - q - 0.5 * v * v
    b = np.log(h / s)
    sd = v * np.sqrt(t)
    sign = 1.0 if h > s else -1.0
    no_touch = (norm.cdf(sign * (b - nu * t) / sd)
                - np.exp(2.0 * nu * b / v**2) * norm.cdf(sign * (-b - nu * t) / sd))
    return np.exp(-r * t) * no_touch


# Haug, "The Complete Guide to Option Pricing Formulas" (2007) Table 4-13 (also Haug 1998
# p. 72, reproduced in QuantLib's test-suite barrieroption.cpp): S=100, T=0.5, r=0.08,
# q=0.04, rebate 3 (paid at the hit for "out", at expiry if never hit for "in").
# Rows: (type, H, call?, [σ=0.25: K=90, 100, 110], [σ=0.30: K=90, 100, 110])
HAUG_TABLE = [
    ("down_out", 95.0, True, (9.0246, 6.7924, 4.8759), (8.8334, 7.0285, 5.4137)),
    ("down_out", 100.0, True, (3.0000, 3.0000, 3.0000), (3.0000, 3.0000, 3.0000)),
    ("up_out", 105.0, True, (2.6789, 2.3580, 2.3453), (2.6341, 2.4389, 2.4315)),
    ("down_in", 95.0, True, (7.7627, 4.0109, 2.0576), (9.0093, 5.1370, 2.8517)),
    ("down_in", 100.0, True, (13.8333, 7.8494, 3.9795), (14.8816, 9.2045, 5.3043)),
    ("up_in", 105.0, True, (14.1112, 8.4482, 4.5910), (15.2098, 9.7278, 5.8350)),
    ("down_out", 95.0, False, (2.2798, 2.2947, 2.6252), (2.4170, 2.4258, 2.6246)),
    ("down_out", 100.0, False, (3.0000, 3.0000, 3.0000), (3.0000, 3.0000, 3.0000)),
    ("up_out", 105.0, False, (3.7760, 5.4932, 7.5187), (4.2293, 5.8032, 7.5649)),
    ("down_in", 95.0, False, (2.9586, 6.5677, 11.9752), (3.8769, 7.7989, 13.3078)),
    ("down_in", 100.0, False, (2.2845, 5.9085, 11.6465), (3.3328, 7.2636, 12.9713)),
    ("up_in", 105.0, False, (1.4653, 3.3721, 7.0846), (2.0658, 4.4226, 8.3686)),
]


@pytest.mark.parametrize("btype, h, is_call, low_vol, high_vol", HAUG_TABLE)
def test_haug_table_minus_rebate(btype, h, is_call, low_vol, high_vol):
    s, t, r, q, rebate = 100.0, 0.5, 0.08, 0.04, 3.0
    for vol, values in ((0.25, low_vol), (0.30, high_vol)):
        for strike, expected in zip((90.0, 100.0, 110.0), values):
            if btype.endswith("_out"):
                # at S = H the option is out at once and pays the rebate now
                rebate_pv = rebate * (1.0 if s == h else _hit_rebate(s, h, t, r, q, vol))
            else:
                rebate_pv = 0.0 if s == h else rebate * _expiry_rebate(s, h, t, r, q, vol)
            ours = barrier(spot=s, strike=strike, barrier=h, maturity=t, rate=r, vol=vol,
                           div_yield=q, barrier_type=btype, is_call=is_call)["price"]
            assert ours + rebate_pv == pytest.approx(expected, abs=1e-4), (vol, strike)


@pytest.mark.parametrize(
    "btype, h, vol, expected",
    [
        # El Babsiri & Noel, "Simulating path-dependent options: a new approach", Journal of
        # Derivatives 6(2) (1998), via QuantLib's test-suite: S=K=100, r=0.05, q=0.02, T=1
        ("down_in", 90.0, 0.10, 0.07187), ("down_in", 90.0, 0.15, 0.60638),
        ("down_in", 90.0, 0.20, 1.64005), ("down_in", 90.0, 0.25, 2.98495),
        ("down_in", 90.0, 0.30, 4.50952), ("up_in", 110.0, 0.10, 4.79148),
        ("up_in", 110.0, 0.15, 7.08268), ("up_in", 110.0, 0.20, 9.11008),
        ("up_in", 110.0, 0.25, 11.06148), ("up_in", 110.0, 0.30, 12.98351),
    ],
)
def test_babsiri_noel_values(btype, h, vol, expected):
    p = barrier(spot=100.0, strike=100.0, barrier=h, maturity=1.0, rate=0.05, vol=vol,
                div_yield=0.02, barrier_type=btype, is_call=True)["price"]
    assert p == pytest.approx(expected, abs=1e-5)


def test_beaglehole_dybvig_zhou_value():
    # Beaglehole, Dybvig & Zhou, "Going to extremes", Financial Analysts Journal 53(1)
    # (1997), via QuantLib's test-suite: down-and-out call S=K=50, H=45, r=ln 1.1, σ=0.5, T=1
    p = barrier(spot=50.0, strike=50.0, barrier=45.0, maturity=1.0, rate=np.log(1.1),
                vol=0.5, barrier_type="down_out", is_call=True)["price"]
    assert p == pytest.approx(5.477, abs=1e-3)


# ----------------------------------------------------------------------------- BGK


def test_bgk_is_continuous_formula_at_shifted_barrier():
    kw = _kwargs(_grid())
    n = 12
    shift = np.where(np.char.startswith(kw["barrier_type"].astype(str), "up"), 1.0, -1.0)
    shifted = kw["barrier"] * np.exp(shift * BGK_BETA * kw["vol"] * np.sqrt(kw["maturity"] / n))
    bgk = barrier_discrete_bgk(**kw, n_fixings=n)
    cont = barrier(**dict(kw, barrier=shifted))
    # the shifted barrier moves with σ and T, so vega and theta differ (checked by FD below)
    for name in ("price", "delta", "gamma", "rho"):
        np.testing.assert_allclose(bgk[name], cont[name], rtol=1e-13, atol=1e-14,
                                   err_msg=name)
    assert BGK_BETA == pytest.approx(0.5826, abs=5e-5)


@pytest.mark.parametrize("btype", BARRIER_TYPES)
def test_bgk_greeks_are_derivatives_of_price(btype):
    kw = dict(_kwargs(_grid((btype,))), n_fixings=52)
    differences.assert_greeks(barrier_discrete_bgk, kw)


def test_bgk_in_plus_out_is_vanilla():
    kw = _kwargs(_grid(("down_in", "up_in")))
    knock_in = barrier_discrete_bgk(**kw, n_fixings=20)
    out_type = np.char.replace(kw["barrier_type"].astype(str), "_in", "_out")
    knock_out = barrier_discrete_bgk(**dict(kw, barrier_type=out_type), n_fixings=20)
    kw.pop("barrier")
    kw.pop("barrier_type")
    vanilla = european(**kw)
    for name in GREEKS:
        scale = np.abs(vanilla[name]).max()
        np.testing.assert_allclose(knock_in[name] + knock_out[name], vanilla[name],
                                   rtol=1e-10, atol=1e-12 * scale, err_msg=name)


def test_bgk_tends_to_continuous_like_one_over_sqrt_n():
    kw = _kwargs(_grid())
    cont = barrier(**kw)
    gaps = []
    for n in (10**6, 10**8):
        bgk = barrier_discrete_bgk(**kw, n_fixings=n)
        gaps.append(np.abs(bgk["price"] - cont["price"]))
    big = gaps[0] > 1e-7  # below that the gap is rounding noise
    np.testing.assert_allclose(gaps[1][big] * 10.0, gaps[0][big], rtol=0.02)
    huge = barrier_discrete_bgk(**kw, n_fixings=10**14)
    for name in GREEKS:
        scale = np.abs(cont[name]).max()
        np.testing.assert_allclose(huge[name], cont[name], rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=name)


def test_bgk_against_monte_carlo_of_discrete_monitoring():
    """Exact GBM at the fixing dates, seeded.  BGK's own error is o(1/√n) (it overstates
    up-and-out calls by ~1 % near the barrier, as in their Table 2), so the check is:
    within that error of the simulation, and far closer than the continuous formula."""
    s, k, t, r, q, v, n = 100.0, 100.0, 0.2, 0.1, 0.0, 0.3, 50
    rng = np.random.default_rng(20250115)
    paths = 200_000
    dt = t / n
    log_paths = np.cumsum((r - q - 0.5 * v * v) * dt
                          + v * np.sqrt(dt) * rng.standard_normal((paths, n)), axis=1)
    high = s * np.exp(log_paths.max(axis=1))
    low = s * np.exp(log_paths.min(axis=1))
    final = s * np.exp(log_paths[:, -1])
    df = np.exp(-r * t)
    cases = [
        ("up_out", True, 115.0, df * np.maximum(final - k, 0.0) * (high < 115.0)),
        ("up_out", True, 130.0, df * np.maximum(final - k, 0.0) * (high < 130.0)),
        ("up_in", False, 110.0, df * np.maximum(k - final, 0.0) * (high >= 110.0)),
        ("down_out", True, 90.0, df * np.maximum(final - k, 0.0) * (low > 90.0)),
        ("down_in", False, 90.0, df * np.maximum(k - final, 0.0) * (low <= 90.0)),
        ("down_in", True, 95.0, df * np.maximum(final - k, 0.0) * (low <= 95.0)),
    ]
    for btype, is_call, h, payoff in cases:
        mc, se = payoff.mean(), payoff.std() / np.sqrt(paths)
        kw = dict(spot=s, strike=k, barrier=h, maturity=t, rate=r, vol=v, div_yield=q,
                  barrier_type=btype, is_call=is_call)
        bgk = barrier_discrete_bgk(**kw, n_fixings=n)["price"]
        cont = barrier(**kw)["price"]
        assert abs(bgk - mc) < 4.0 * se + 0.015 * mc, (btype, h, bgk, mc, se)
        assert abs(bgk - mc) < 0.25 * abs(cont - mc), (btype, h, bgk, cont, mc)


def test_bgk_breach_rule_applies_to_shifted_barrier():
    # monitoring starts at t_1 > 0: a spot just above an up barrier but below H' is alive
    kw = dict(spot=100.5, strike=95.0, barrier=100.0, maturity=0.5, rate=0.02, vol=0.3,
              n_fixings=12)
    shifted = 100.0 * np.exp(BGK_BETA * 0.3 * np.sqrt(0.5 / 12))
    assert 100.5 < shifted
    alive = barrier_discrete_bgk(**kw, barrier_type="up_out")["price"]
    assert alive > 0.0
    dead = barrier_discrete_bgk(**dict(kw, spot=shifted + 0.01), barrier_type="up_out")
    assert all(dead[name] == 0.0 for name in GREEKS)


# ----------------------------------------------------------------------------- API


def test_scalar_input_gives_floats_and_barrier_type_broadcasts():
    kw = dict(spot=100.0, strike=100.0, barrier=90.0, maturity=1.0, rate=0.02, vol=0.2)
    out = barrier(**kw, barrier_type="down_out")
    assert set(out) == set(GREEKS) and all(type(v) is float for v in out.values())
    out = barrier_discrete_bgk(**kw, barrier_type="down_out", n_fixings=12)
    assert all(type(v) is float for v in out.values())

    types = np.array(["down_out", "down_in"])
    out = barrier(**dict(kw, strike=np.array([[95.0], [105.0]])), barrier_type=types)
    assert all(v.shape == (2, 2) for v in out.values())
    single = barrier(**dict(kw, strike=105.0), barrier_type="down_in")
    for name in GREEKS:
        assert out[name][1, 1] == pytest.approx(single[name], rel=1e-14)


@pytest.mark.parametrize("func", [barrier, barrier_discrete_bgk])
@pytest.mark.parametrize(
    "name, bad",
    [("spot", 0.0), ("strike", -3.0), ("barrier", 0.0), ("barrier", np.nan),
     ("maturity", 0.0), ("vol", -0.1), ("rate", np.inf), ("div_yield", np.nan),
     ("barrier_type", "knock_out"), ("barrier_type", ["up_in", "UP_OUT"]),
     ("barrier_type", 3), ("is_call", "call")],
)
def test_invalid_input_raises_naming_argument(func, name, bad):
    kwargs = dict(spot=100.0, strike=100.0, barrier=120.0, maturity=1.0, rate=0.01, vol=0.2,
                  barrier_type="up_out")
    if func is barrier_discrete_bgk:
        kwargs["n_fixings"] = 12
    kwargs[name] = bad
    with pytest.raises(ValueError, match=name):
        func(**kwargs)


def test_bgk_rejects_bad_n_fixings():
    with pytest.raises(ValueError, match="n_fixings"):
        barrier_discrete_bgk(spot=100.0, strike=100.0, barrier=120.0, maturity=1.0, rate=0.0,
                             vol=0.2, barrier_type="up_out", n_fixings=0)
