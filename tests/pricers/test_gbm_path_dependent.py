"""Asians and barriers under GBM against closed forms (mcgreeks.analytic.asian / .barrier, each
checked against QuantLib in tests/analytic), within 4 standard errors, for every valid estimator;
in-out parity path by path; discrete barriers against the continuous limit and the
Broadie–Glasserman–Kou correction; arithmetic-Asian estimators against each other.
"""
import numpy as np
import pandas as pd
import pytest

from mc_checks import MEANINGFUL, assert_estimates_agree, assert_within_4se, natural_scale
from mcgreeks import price_portfolio
from mcgreeks.analytic import asian, barrier as rr
from mcgreeks.estimators import fd

N_PATHS = 200_000
SEED = 4
GREEKS = ("delta", "gamma", "vega", "rho", "theta")
FIRST_ORDER = ("delta", "vega", "rho", "theta")


def _sets(n):
    """n parameter sets: spots, maturities, negative and positive rates, yields, vols."""
    spots, maturities = (100.0, 42.0, 1500.0), (0.25, 0.5, 1.0, 2.0, 3.0)
    rates, yields, vols = (-0.01, 0.0, 0.03, 0.06), (0.0, 0.02, 0.04), (0.15, 0.25, 0.4)
    return pd.DataFrame([dict(underlying=f"U{k:02d}", model="gbm", spot=spots[k % 3],
                              maturity=maturities[k % 5], rate=rates[k % 4],
                              div_yield=yields[(k // 2) % 3], vol=vols[(k // 3) % 3])
                         for k in range(n)])


SETS = _sets(12)
MARKET = SETS[["underlying", "model", "spot", "rate", "div_yield", "vol"]]


def _reference(trades, formula, bumps=None):
    """Closed-form price and Greeks per trade; with ``bumps``, the central difference quotients
    the fd estimator estimates without bias (its O(h²) bias then cancels exactly)."""
    p = trades.merge(MARKET, on="underlying").set_index("trade_id")
    args = dict(spot=p.spot, strike=p.strike, maturity=p.maturity, rate=p.rate, vol=p.vol,
                div_yield=p.div_yield)
    args = {k: v.to_numpy() for k, v in args.items()}

    def price(**moved):
        return pd.Series(formula(p, **{**args, **moved})["price"], index=p.index)

    exact = pd.DataFrame(formula(p, **args), index=p.index)
    if bumps is None:
        return exact
    spot_rel, vol_rel, rate_abs, maturity_rel = fd.bumps(bumps)
    hs, hv, ht = spot_rel * args["spot"], vol_rel * args["vol"], maturity_rel * args["maturity"]
    up, dn = price(spot=args["spot"] + hs), price(spot=args["spot"] - hs)
    quotients = pd.DataFrame({
        "price": exact["price"],
        "delta": (up - dn) / (2 * hs),
        "gamma": (up - 2 * exact["price"] + dn) / hs**2,
        "vega": (price(vol=args["vol"] + hv) - price(vol=args["vol"] - hv)) / (2 * hv),
        "rho": (price(rate=args["rate"] + rate_abs) - price(rate=args["rate"] - rate_abs))
        / (2 * rate_abs),
        "theta": -(price(maturity=args["maturity"] + ht) - price(maturity=args["maturity"] - ht))
        / (2 * ht)})
    return quotients


# -- geometric Asian ----------------------------------------------------------------------------

def _asian_trades(payoff, fixings=(4, 12, 52)):
    rows = []
    for k, s in enumerate(SETS.itertuples()):
        sd = s.vol * np.sqrt(s.maturity)
        for option_type, m in (("call", 0.3), ("put", -0.2)):
            rows.append(dict(trade_id=f"{s.underlying}-{option_type}", underlying=s.underlying,
                             payoff=payoff, option_type=option_type,
                             strike=round(s.spot * np.exp(m * sd), 4), maturity=s.maturity,
                             n_fixings=fixings[k % 3]))
    return pd.DataFrame(rows)


GEOMETRIC = _asian_trades("asian_geometric")
#: LR gamma of an Asian scores only the first increment, of length T/n, so its variance grows
#: like n² (the reason auto takes mixed): it is checked where that variance is still workable.
GEOMETRIC_FEW = _asian_trades("asian_geometric", fixings=(2, 6, 12))


def _geometric(p, **a):
    return asian.geometric_asian(**a, n_fixings=p.n_fixings.to_numpy(),
                                 is_call=(p.option_type == "call").to_numpy())


@pytest.fixture(scope="module")
def geometric_runs():
    direct = dict.fromkeys(FIRST_ORDER, "pathwise") | {"gamma": "mixed"}
    runs = {m: price_portfolio(GEOMETRIC, MARKET, n_paths=N_PATHS, seed=SEED + i,
                               method=direct if m == "pathwise" else m)
            for i, m in enumerate(("pathwise", "lr", "fd"))}
    runs["lr_few"] = price_portfolio(GEOMETRIC_FEW, MARKET, n_paths=3 * N_PATHS, seed=SEED + 3,
                                     method="lr")
    return runs


def _scale(trades):
    return natural_scale(trades.merge(MARKET, on="underlying").set_index("trade_id"))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pathwise", "lr"])
def test_geometric_asian_against_closed_form(geometric_runs, method):
    assert_within_4se(geometric_runs[method], _reference(GEOMETRIC, _geometric), _scale(GEOMETRIC),
           ("price",) + FIRST_ORDER, method)


@pytest.mark.slow
def test_geometric_asian_lr_gamma(geometric_runs):
    assert_within_4se(geometric_runs["lr_few"], _reference(GEOMETRIC_FEW, _geometric),
           _scale(GEOMETRIC_FEW), ("gamma",), "lr")


@pytest.mark.slow
def test_geometric_asian_mixed_gamma(geometric_runs):
    result = geometric_runs["pathwise"]
    assert_within_4se(result, _reference(GEOMETRIC, _geometric), _scale(GEOMETRIC), ("gamma",), "mixed")


@pytest.mark.slow
def test_geometric_asian_fd(geometric_runs):
    assert_within_4se(geometric_runs["fd"], _reference(GEOMETRIC, _geometric, bumps={}), _scale(GEOMETRIC),
           GREEKS, "fd")


# -- continuous barriers --------------------------------------------------------------------------

def _barrier_trades(monitoring, n_fixings=None):
    """Every barrier type, call and put, barrier one terminal sd away, strikes either side."""
    rows = []
    for k, s in enumerate(SETS.itertuples()):
        sd = s.vol * np.sqrt(s.maturity)
        for barrier_type in ("up_out", "up_in", "down_out", "down_in"):
            up = barrier_type.startswith("up")
            level = s.spot * np.exp((1.0 if up else -1.0) * sd)
            for option_type in ("call", "put"):
                # the strike sits between spot and barrier or beyond the spot, alternating
                m = (0.4 if k % 2 else -0.4) * (1 if up else -1)
                rows.append(dict(trade_id=f"{s.underlying}-{barrier_type}-{option_type}",
                                 underlying=s.underlying, payoff="barrier",
                                 option_type=option_type, barrier_type=barrier_type,
                                 barrier=round(level, 4), monitoring=monitoring,
                                 n_fixings=n_fixings, maturity=s.maturity,
                                 strike=round(s.spot * np.exp(m * sd), 4)))
    return pd.DataFrame(rows)


CONTINUOUS = _barrier_trades("continuous")


def _continuous(p, **a):
    return rr.barrier(**a, barrier=p.barrier.to_numpy(), barrier_type=p.barrier_type.to_numpy(),
                      is_call=(p.option_type == "call").to_numpy())


#: fd gamma differences the knock-out weight too; it needs more paths to be meaningful.
#: fd at 4x: at 3x its gamma SE of U08's down-and-out put sat at 0.99-1.00 of MEANINGFUL (6 seeds,
#: both random-number versions).
BARRIER_PATHS = {"pathwise": N_PATHS, "lr": N_PATHS, "fd": 4 * N_PATHS}


@pytest.fixture(scope="module")
def barrier_runs():
    return {m: price_portfolio(CONTINUOUS, MARKET, n_paths=BARRIER_PATHS[m], seed=SEED + 10 + i,
                               method=m)
            for i, m in enumerate(("pathwise", "lr", "fd"))}


def test_barrier_grid_covers_every_type():
    assert set(CONTINUOUS.barrier_type) == {"up_out", "up_in", "down_out", "down_in"}
    assert CONTINUOUS.underlying.nunique() >= 10


@pytest.mark.slow
@pytest.mark.parametrize("method,greeks", [("pathwise", ("price",) + FIRST_ORDER),
                                           ("lr", ("price",) + GREEKS)])
def test_continuous_barrier_against_reiner_rubinstein(barrier_runs, method, greeks):
    assert_within_4se(barrier_runs[method], _reference(CONTINUOUS, _continuous), _scale(CONTINUOUS), greeks,
           method)


@pytest.mark.slow
def test_continuous_barrier_fd(barrier_runs):
    assert_within_4se(barrier_runs["fd"], _reference(CONTINUOUS, _continuous, bumps={}), _scale(CONTINUOUS),
           GREEKS, "fd")


@pytest.mark.slow
def test_continuous_barrier_gamma_auto_is_lr(barrier_runs):
    assert (barrier_runs["pathwise"]["method_gamma"] == "lr").all()


# -- in-out parity ------------------------------------------------------------------------------

@pytest.mark.parametrize("monitoring,n_fixings,methods", [
    ("continuous", None, ("pathwise", "lr", "fd")), ("discrete", 24, ("fd",))])
def test_in_plus_out_is_vanilla_path_by_path(monitoring, n_fixings, methods):
    """Knock-in and knock-out weights sum to one on every path, so with shared paths the
    estimates of in + out equal the vanilla's to rounding.  (A discrete barrier's LR scores its
    own first fixing step, the vanilla's the whole [0, T]: equal in mean, not path by path.)"""
    barriers = _barrier_trades(monitoring, n_fixings)
    vanillas = barriers[barriers.barrier_type.str.endswith("out")].assign(
        payoff="european", trade_id=lambda t: t.trade_id.str.replace("_out", "_vanilla"))
    trades = pd.concat([barriers, vanillas], ignore_index=True)
    for method in methods:
        r = price_portfolio(trades, MARKET, n_paths=20_000, seed=SEED, method=method)
        for tid in vanillas.trade_id:
            out_id, in_id = tid.replace("_vanilla", "_out"), tid.replace("_vanilla", "_in")
            # a single name leaves gamma on auto, which differs between barrier and vanilla
            for g in ("price",) + (FIRST_ORDER if method == "pathwise" else GREEKS):
                total = r.at[out_id, g] + r.at[in_id, g]
                scale = 1e-9 * max(1.0, abs(r.at[tid, g]), r.at[tid, g + "_se"] * 1e3)
                assert abs(total - r.at[tid, g]) <= scale, (method, tid, g, total, r.at[tid, g])


# -- discrete barriers --------------------------------------------------------------------------

def _one(params, **trade):
    trades = pd.DataFrame([dict(trade_id="B", underlying="X", payoff="barrier", **trade)])
    market = pd.DataFrame([dict(underlying="X", model="gbm", **params)])
    return trades, market


DISCRETE_CASE = dict(spot=100.0, rate=0.05, div_yield=0.0, vol=0.3)
DISCRETE_TRADE = dict(option_type="call", strike=100.0, maturity=1.0, barrier=130.0,
                      barrier_type="up_out", monitoring="discrete")


def test_discrete_barrier_converges_to_continuous():
    """Monitoring more often lowers an up-and-out price toward the continuous closed form, with
    the gap shrinking like 1/sqrt(n) (Broadie, Glasserman & Kou 1997)."""
    limit = rr.barrier(spot=100.0, strike=100.0, barrier=130.0, maturity=1.0, rate=0.05,
                       vol=0.3, barrier_type="up_out", is_call=True)["price"]
    gaps, ses = [], []
    for n in (4, 16, 64, 256):
        r = price_portfolio(*_one(DISCRETE_CASE, **DISCRETE_TRADE, n_fixings=n),
                            n_paths=200_000, seed=SEED)
        gaps.append(r.at["B", "price"] - limit)
        ses.append(r.at["B", "price_se"])
    gaps, ses = np.array(gaps), np.array(ses)
    assert (gaps > 4 * ses).all()                          # discrete is worth more
    assert (np.diff(gaps) < 0).all()                       # and falls as n grows
    ratio = gaps[:-1] / gaps[1:]                           # 1/sqrt(n): ratio 2 per 4x
    assert ((ratio > 1.5) & (ratio < 2.6)).all(), ratio


@pytest.mark.parametrize("barrier_type,option_type,level", [
    ("up_out", "call", 130.0), ("down_out", "put", 75.0), ("up_in", "call", 120.0),
    ("down_in", "call", 85.0)])
def test_discrete_barrier_matches_bgk(barrier_type, option_type, level):
    """BGK's shifted barrier is accurate to about 1-1.5 % of the price at 50 fixings (their
    Table 2 error pattern, and our own measurement in tests/analytic): 4 SE + 1.5 %."""
    trade = dict(DISCRETE_TRADE, barrier=level, barrier_type=barrier_type,
                 option_type=option_type, n_fixings=50)
    r = price_portfolio(*_one(DISCRETE_CASE, **trade), n_paths=2_000_000, seed=SEED)
    bgk = rr.barrier_discrete_bgk(spot=100.0, strike=100.0, barrier=level, maturity=1.0,
                                  rate=0.05, vol=0.3, barrier_type=barrier_type,
                                  is_call=option_type == "call", n_fixings=50)["price"]
    assert abs(r.at["B", "price"] - bgk) <= 4 * r.at["B", "price_se"] + 0.015 * bgk
    assert 4 * r.at["B", "price_se"] < 0.015 * bgk


@pytest.mark.slow
def test_discrete_barrier_greeks_lr_agrees_with_fd():
    """fd with the bumps a payoff with jumps wants (``estimators.fd.bumps``): rate ±100 bp and
    maturity ±5 %.  At the default 10 bp and 1 %, a knock at a fixing flips on a fraction ~h of
    the paths, too few to show in a sample's SE: the rho of out-of-the-money knock-ins (an
    up-and-in put, a down-and-in call) came out 2-3x the likelihood ratio's and the
    Broadie-Glasserman-Kou value (``analytic.barrier.barrier_discrete_bgk``) with z up to 11.6
    over 4 seeds, on 0.3.0's random numbers and on 0.4.0's; with these bumps (on 0.4.0's)
    |z| <= 3.7, the z-scores' spread 0.91-1.08 over the same seeds."""
    trades = _barrier_trades("discrete", 12)
    lr = price_portfolio(trades, MARKET, n_paths=100_000, seed=SEED, method="lr")
    bump = price_portfolio(trades, MARKET, n_paths=100_000, seed=SEED + 1, method="fd",
                           fd_bumps={"rate": 1e-2, "maturity": 5e-2})
    assert_estimates_agree([(lr[g] - bump[g]) / np.hypot(lr[g + "_se"], bump[g + "_se"])
                            for g in ("delta", "vega", "rho", "theta")])


#: Discrete barriers on 252 dates: a whole-path likelihood ratio scores the first step, of length
#: T/252, where S0 enters; vibrato takes that step's Gaussian with an antithetic pair instead.
VIBRATO_TRADES = pd.DataFrame([
    dict(DISCRETE_TRADE, trade_id=tid, underlying="X", payoff="barrier", n_fixings=252,
         option_type=option_type, barrier=level, barrier_type=barrier_type)
    for tid, option_type, level, barrier_type in (("uoc", "call", 130.0, "up_out"),
                                                   ("dop", "put", 75.0, "down_out"),
                                                   ("dic", "call", 85.0, "down_in"))])
VIBRATO_MARKET = pd.DataFrame([dict(underlying="X", model="gbm", **DISCRETE_CASE)])


@pytest.fixture(scope="module")
def vibrato_runs():
    kw = dict(n_paths=1 << 20)
    vib = dict.fromkeys(("delta", "gamma"), "vibrato")
    return {"vibrato": price_portfolio(VIBRATO_TRADES, VIBRATO_MARKET, seed=SEED + 60,
                                       method=vib, **kw),
            "whole_path_lr": price_portfolio(VIBRATO_TRADES, VIBRATO_MARKET, seed=SEED + 60,
                                             method="lr", lr_baseline=False, **kw),
            "lr": price_portfolio(VIBRATO_TRADES, VIBRATO_MARKET, seed=SEED + 61, method="lr",
                                  **kw)}


@pytest.mark.slow
def test_vibrato_discrete_barrier_delta_agrees_with_lr(vibrato_runs):
    """Two unbiased estimators on independent paths; 4 combined SE under 5 % of delta's scale.
    (Gamma's agreement at this N would not be meaningful: the digital closed-form test covers
    the vibrato gamma formula, and _shifted_value is the path this test exercises.)"""
    a, b = vibrato_runs["vibrato"], vibrato_runs["lr"]
    se = np.hypot(a["delta_se"], b["delta_se"])
    assert ((a["delta"] - b["delta"]).abs() <= 4 * se).all(), ((a["delta"] - b["delta"]) / se)
    assert (4 * se < MEANINGFUL).all(), se


@pytest.mark.slow
def test_vibrato_discrete_barrier_variance_against_whole_path_lr(vibrato_runs):
    """Same paths: the variance ratio whole-path LR / vibrato (delta, gamma), recorded and
    bounded below.  Measured 4-8× for delta and 2.5-6× for gamma: the first step is T/252 long and
    the knock events near the barrier keep vibrato's variance of order (T/252)^(-1/2)."""
    for g, floor in (("delta", 4.0), ("gamma", 2.0)):
        cut = (vibrato_runs["whole_path_lr"][g + "_se"] / vibrato_runs["vibrato"][g + "_se"]) ** 2
        assert (cut >= floor).all(), (g, cut.to_dict())


# -- arithmetic Asian -----------------------------------------------------------------------------

@pytest.mark.slow
def test_arithmetic_asian_estimators_agree():
    """No closed form: pathwise, LR, mixed and fd (independent seeds) agree, 360 comparisons in
    combined SEs (``assert_estimates_agree``; over 4 seeds on each of 0.3.0's and 0.4.0's random
    numbers the z-scores' spread was 0.81-1.03, the largest |z| 4.29: U11's call delta, LR
    2.6 SE low and fd 2.8 SE high against a 2M-path pathwise run, independently).
    With the control variate the SEs are small enough to see fd's O(h²) bump bias at the default
    bumps, so fd runs with 10× smaller bumps (bias 100× smaller; with common random numbers the
    variance of first differences of a Lipschitz payoff stays bounded as h shrinks)."""
    trades = _asian_trades("asian_arithmetic")
    methods = {"pathwise": dict.fromkeys(FIRST_ORDER, "pathwise") | {"gamma": "mixed"},
               "lr": "lr", "fd": "fd"}
    small = {"spot": 1e-3, "vol": 1e-3, "rate": 1e-4, "maturity": 1e-3}
    runs = {m: price_portfolio(trades, MARKET, n_paths=N_PATHS, seed=SEED + 20 + i, method=how,
                               fd_bumps=small)
            for i, (m, how) in enumerate(methods.items())}
    z = []
    for a, b in (("pathwise", "lr"), ("pathwise", "fd"), ("lr", "fd")):
        greeks = GREEKS if "pathwise" not in (a, b) else FIRST_ORDER + ("gamma",)
        for g in greeks:
            z.append((runs[a][g] - runs[b][g]) / np.hypot(runs[a][g + "_se"], runs[b][g + "_se"]))
    assert_estimates_agree(z)
    scale = _scale(trades)
    for m in runs:
        assert (4 * runs[m]["delta_se"] < MEANINGFUL * scale["delta"]).all(), m


def test_control_variate_cuts_atm_arithmetic_asian_variance_tenfold():
    """The geometric twin as control: ≥ 10× less price variance at the money (measured on the
    same paths, and as the SE ratio against an independent run without it), and estimates that
    agree with the plain ones for the price and every Greek."""
    atm = _asian_trades("asian_arithmetic").assign(
        strike=lambda t: t.merge(MARKET, on="underlying").spot.to_numpy(), option_type="call")
    atm = atm.drop_duplicates("underlying").assign(trade_id=lambda t: t.underlying + "-atm")
    with_cv, notes = price_portfolio(atm, MARKET, n_paths=N_PATHS, seed=SEED + 30,
                                     diagnostics=True)
    plain, plain_notes = price_portfolio(atm, MARKET, n_paths=N_PATHS, seed=SEED + 31,
                                         control_variate=False, diagnostics=True)
    reduction = notes.xs("price", level="quantity")["variance_reduction"]
    assert (reduction >= 10).all(), reduction
    assert ((plain["price_se"] / with_cv["price_se"]) ** 2 >= 10).all()
    for g in ("price",) + GREEKS:
        z = (with_cv[g] - plain[g]) / np.hypot(with_cv[g + "_se"], plain[g + "_se"])
        assert (z.abs() <= 4).all(), (g, z.abs().max())
    assert (plain_notes["variance_reduction"] == 1).all()
    assert (notes.xs("price", level="quantity")["control"] == "geometric_asian").all()


# -- the optimal blend (same paths as its two estimators, so SEs compare without seed noise) ------

#: (trades, reference, Greeks the blend covers): geometric Asians blend pathwise (mixed for
#: gamma) with LR; a continuous barrier's gamma has LR only.
OPTIMAL_CASES = {"geometric": (GEOMETRIC, _geometric, GREEKS),
                 "continuous": (CONTINUOUS, _continuous, FIRST_ORDER)}


@pytest.fixture(scope="module", params=list(OPTIMAL_CASES))
def optimal_case(request):
    trades, formula, greeks = OPTIMAL_CASES[request.param]
    kw = dict(n_paths=N_PATHS, seed=SEED + 40)
    direct = dict.fromkeys(FIRST_ORDER, "pathwise") | ({"gamma": "mixed"} if "gamma" in greeks
                                                       else {})
    runs = {"optimal": price_portfolio(trades, MARKET, method=dict.fromkeys(greeks, "optimal"),
                                       **kw),
            "direct": price_portfolio(trades, MARKET, method=direct, **kw),
            "lr": price_portfolio(trades, MARKET, method="lr", **kw)}
    return trades, formula, greeks, runs


def test_optimal_against_closed_form(optimal_case):
    trades, formula, greeks, runs = optimal_case
    assert_within_4se(runs["optimal"], _reference(trades, formula), _scale(trades), greeks,
                      "optimal")


def test_optimal_se_at_most_the_smaller_of_its_two_estimators(optimal_case):
    _, _, greeks, runs = optimal_case
    for g in greeks:
        smaller = np.minimum(runs["direct"][g + "_se"], runs["lr"][g + "_se"])
        ratio = runs["optimal"][g + "_se"] / smaller
        assert (ratio <= 1.05).all(), (g, ratio.idxmax(), ratio.max())


def test_optimal_on_arithmetic_asians_agrees_and_reports_its_weight():
    """No closed form: the blend (with the geometric control) agrees with pathwise/mixed on
    independent paths, is no noisier, and reports w per Greek in the diagnostics."""
    trades = _asian_trades("asian_arithmetic")
    blend, notes = price_portfolio(trades, MARKET, n_paths=N_PATHS, seed=SEED + 50,
                                   method="optimal", diagnostics=True)
    direct = price_portfolio(trades, MARKET, n_paths=N_PATHS, seed=SEED + 51,
                             method=dict.fromkeys(FIRST_ORDER, "pathwise") | {"gamma": "mixed"})
    for g in GREEKS:
        z = (blend[g] - direct[g]) / np.hypot(blend[g + "_se"], direct[g + "_se"])
        assert (z.abs() <= 4).all(), (g, z.abs().max())
        assert (blend[g + "_se"] <= 1.1 * direct[g + "_se"]).all(), g
    weights = notes.drop("price", level="quantity")["weight"]
    assert weights.notna().all() and weights.between(-1, 2).all()
    assert notes.xs("price", level="quantity")["weight"].isna().all()
