"""Every (payoff, Greek, valid estimator) of European and digital options under GBM against the
Black–Scholes–Merton closed forms (mcgreeks.analytic.black_scholes, itself checked against
QuantLib), within 4 standard errors, on 24 parameter sets; and the estimators against each other.

The fd estimator is an unbiased estimate of the central difference quotient of the price with its
own bump sizes, so it is compared with the same quotient of the closed form; that quotient's
distance from the exact Greek (the O(h²) bump bias) is checked separately.
"""
import itertools

import numpy as np
import pandas as pd
import pytest

from mc_checks import MEANINGFUL, assert_within_4se
from mcgreeks import price_portfolio
from mcgreeks.analytic import black_scholes as bs
from mcgreeks.estimators import fd

N_PATHS = 200_000
SEED = 20261124
GREEKS = ("delta", "gamma", "vega", "rho", "theta")


def _grid():
    """24 parameter sets covering moneyness, short and long maturities, negative rates, yields."""
    spots = (100.0, 37.5, 1800.0)
    moneyness = (-1.2, 0.0, 1.0)   # log(K/S) in terminal standard deviations
    maturities = (0.08, 0.5, 1.0, 3.0)
    rates = (-0.01, 0.0, 0.03, 0.08)
    yields = (0.0, 0.02, 0.05)
    vols = (0.1, 0.25, 0.5)
    rows = []
    for i, (m, t) in enumerate(itertools.product(moneyness, maturities)):
        for variant in range(2):
            k = 2 * i + variant
            s = spots[k % 3]
            vol = vols[(k + variant) % 3]
            rows.append(dict(underlying=f"U{k:02d}", spot=s, maturity=t, vol=vol,
                             strike=round(s * np.exp(m * vol * np.sqrt(t)), 4),
                             rate=rates[k % 4], div_yield=yields[(k // 3) % 3]))
    return pd.DataFrame(rows)


GRID = _grid()
MARKET = GRID.assign(model="gbm")[["underlying", "model", "spot", "rate", "div_yield", "vol"]]


def _trades(payoffs):
    rows = []
    for p in GRID.itertuples():
        for payoff, option_type in payoffs:
            rows.append(dict(trade_id=f"{p.underlying}-{payoff[0]}{option_type[0]}",
                             underlying=p.underlying, payoff=payoff, option_type=option_type,
                             strike=p.strike, maturity=p.maturity, quantity=1.0,
                             cash=2.5 if payoff == "digital" else np.nan))
    return pd.DataFrame(rows)


VANILLAS = _trades([("european", "call"), ("european", "put")])
DIGITALS = _trades([("digital", "call"), ("digital", "put")])
ALL = _trades([("european", "call"), ("european", "put"), ("digital", "call"), ("digital", "put")])


def _closed_form(trades, **bump):
    """Closed-form price and Greeks per trade, with the market moved by ``bump``."""
    p = trades.merge(MARKET, on="underlying", how="left")
    args = dict(spot=p.spot.to_numpy(), strike=p.strike.to_numpy(),
                maturity=p.maturity.to_numpy(), rate=p.rate.to_numpy(), vol=p.vol.to_numpy(),
                div_yield=p.div_yield.to_numpy(), is_call=(p.option_type == "call").to_numpy())
    for name, shift in bump.items():
        args[name] = args[name] + shift(args)
    digital = (p.payoff == "digital").to_numpy()
    eu = bs.european(**args)
    dg = bs.digital(**args, cash=p.cash.fillna(1.0).to_numpy())
    return pd.DataFrame({k: np.where(digital, dg[k], eu[k]) for k in ("price",) + GREEKS},
                        index=trades.trade_id.to_numpy())


def _fd_quotients(trades, bumps=None):
    """The central difference quotients that the fd estimator estimates without bias."""
    spot_rel, vol_rel, rate_abs, maturity_rel = fd.bumps(bumps)
    def moved(name, sign, size):
        return _closed_form(trades, **{name: lambda a: sign * size(a)})["price"]

    h_s = lambda a: spot_rel * a["spot"]
    h_v = lambda a: vol_rel * a["vol"]
    h_r = lambda a: rate_abs + 0 * a["rate"]
    h_t = lambda a: maturity_rel * a["maturity"]
    base = _closed_form(trades)
    p = trades.merge(MARKET, on="underlying", how="left").set_index("trade_id")
    hs, hv = spot_rel * p.spot, vol_rel * p.vol
    ht = maturity_rel * p.maturity
    return pd.DataFrame({
        "delta": (moved("spot", 1, h_s) - moved("spot", -1, h_s)) / (2 * hs),
        "gamma": (moved("spot", 1, h_s) - 2 * base["price"] + moved("spot", -1, h_s)) / hs**2,
        "vega": (moved("vol", 1, h_v) - moved("vol", -1, h_v)) / (2 * hv),
        "rho": (moved("rate", 1, h_r) - moved("rate", -1, h_r)) / (2 * rate_abs),
        "theta": -(moved("maturity", 1, h_t) - moved("maturity", -1, h_t)) / (2 * ht)})


def _scale(trades):
    """Natural size of each Greek per trade (its order of magnitude near the money), so that
    'the SE is small' means the same on every parameter set.  With sd = σ√T the terminal
    log-spot standard deviation, a vanilla's Greeks scale as (S, 1, 1/(S sd), S√T, S T, S σ/√T)
    and a digital's, which has one more derivative of the payoff in it, as
    (c, c/(S sd), c/(S sd)², c/σ, c T/sd, c/T)."""
    p = trades.merge(MARKET, on="underlying", how="left").set_index("trade_id")
    s, c, t, v = p.spot, p.cash.fillna(1.0), p.maturity, p.vol
    sd = v * np.sqrt(t)
    vanilla = pd.DataFrame({"price": s, "delta": 1.0 + 0 * s, "gamma": 1 / (s * sd),
                            "vega": s * np.sqrt(t), "rho": s * t, "theta": s * v / np.sqrt(t)})
    digital = pd.DataFrame({"price": c, "delta": c / (s * sd), "gamma": c / (s * sd) ** 2,
                            "vega": c / v, "rho": c * t / sd, "theta": c / t})
    is_digital = (p.payoff == "digital").to_numpy()[:, None]
    return pd.DataFrame(np.where(is_digital, digital, vanilla), index=p.index,
                        columns=vanilla.columns)


#: fd of a digital differences a jump: variance ∝ 1/h for first differences and 1/h³ for gamma
#: (≈ (2 sd^1.5 c/(S²√N))² with the default 1 % spot bump, hopeless at any practical N).  Its
#: test therefore uses the bumps a desk would choose for a jump, and more paths.
DIGITAL_FD_BUMPS = {"spot": 0.15, "rate": 0.01}
DIGITAL_FD_PATHS = 2_000_000


@pytest.fixture(scope="module")
def runs():
    out = {"lr": price_portfolio(ALL, MARKET, n_paths=N_PATHS, seed=SEED, method="lr"),
           "fd": price_portfolio(VANILLAS, MARKET, n_paths=N_PATHS, seed=SEED + 1, method="fd")}
    out["pathwise"] = price_portfolio(VANILLAS, MARKET, n_paths=N_PATHS, seed=SEED + 2,
                                      method="pathwise")
    out["mixed"] = price_portfolio(VANILLAS, MARKET, n_paths=N_PATHS, seed=SEED + 3,
                                   method={"gamma": "mixed"})
    return out


def test_grid_has_negative_rates_and_yields():
    assert len(GRID) >= 20 and (GRID.rate < 0).any() and (GRID.div_yield > 0).any()


def test_price_within_4se(runs):
    assert_within_4se(runs["lr"], _closed_form(ALL), _scale(ALL), ("price",), "lr")


def test_likelihood_ratio_every_greek(runs):
    assert_within_4se(runs["lr"], _closed_form(ALL), _scale(ALL), GREEKS, "lr")


def test_pathwise_first_order_greeks(runs):
    assert_within_4se(runs["pathwise"], _closed_form(VANILLAS), _scale(VANILLAS),
           ("delta", "vega", "rho", "theta"), "pathwise")


def test_mixed_gamma(runs):
    assert_within_4se(runs["mixed"], _closed_form(VANILLAS), _scale(VANILLAS), ("gamma",), "mixed")


def test_fd_estimates_the_difference_quotient(runs):
    assert_within_4se(runs["fd"], _fd_quotients(VANILLAS), _scale(VANILLAS), GREEKS, "fd")


@pytest.fixture(scope="module")
def fd_digital():
    """Its own fixture: at 2,000,000 paths it costs ten times the other runs together."""
    return price_portfolio(DIGITALS, MARKET, n_paths=DIGITAL_FD_PATHS, seed=SEED + 5,
                           method="fd", fd_bumps=DIGITAL_FD_BUMPS)


@pytest.mark.slow
def test_fd_of_digitals_with_jump_sized_bumps(fd_digital):
    assert_within_4se(fd_digital, _fd_quotients(DIGITALS, DIGITAL_FD_BUMPS), _scale(DIGITALS),
           GREEKS, "fd")


def test_fd_bump_bias_is_small_for_vanillas():
    """The quotient fd estimates is within 1 % of the Greek's natural size of the exact Greek."""
    bias = (_fd_quotients(VANILLAS) - _closed_form(VANILLAS)[list(GREEKS)]).abs()
    assert (bias < 0.01 * _scale(VANILLAS)[list(GREEKS)]).all().all()


@pytest.mark.parametrize("a,b", [("pathwise", "lr"), ("pathwise", "fd"), ("lr", "fd"),
                                 ("mixed", "lr"), ("mixed", "fd")])
def test_estimators_agree(runs, a, b):
    """Each pair, run on independent seeds so their difference has SE sqrt(se_a² + se_b²).
    fd estimates the difference quotient, so its known O(h²) offset from the Greek (closed form)
    is removed before comparing."""
    greeks = ["gamma"] if a == "mixed" else ["delta", "vega", "rho", "theta"]
    ids = VANILLAS.trade_id.to_numpy()
    offset = (_fd_quotients(VANILLAS) - _closed_form(VANILLAS)).loc[ids, greeks]
    x, y = runs[a].loc[ids], runs[b].loc[ids]
    for g in greeks:
        diff = (x[g] - (offset[g] if a == "fd" else 0)) - (y[g] - (offset[g] if b == "fd" else 0))
        se = np.hypot(x[g + "_se"], y[g + "_se"])
        assert (diff.abs() <= 4 * se + 1e-12).all(), (a, b, g, (diff / se).abs().max())
    # and both are precise enough for agreement to mean something
    assert (4 * se < MEANINGFUL * _scale(VANILLAS)[g].loc[ids]).all()


def test_auto_takes_optimal_where_two_estimators_are_valid(runs):
    auto = price_portfolio(ALL, MARKET, n_paths=N_PATHS, seed=SEED + 4)
    for g in GREEKS:       # vanillas blend pathwise (mixed) with lr; digitals vibrato with lr
        assert (auto["method_" + g] == "optimal").all()
    # its SE is no worse than the best explicit one (same N, other seeds) by more than noise
    for g in GREEKS:
        explicit = pd.concat([runs[m][g + "_se"] for m in ("pathwise", "lr", "mixed")], axis=1)
        best = explicit.min(axis=1).reindex(auto.index)
        assert (auto[g + "_se"] <= 1.1 * best.fillna(np.inf)).all(), g
    assert_within_4se(auto, _closed_form(ALL), _scale(ALL), ("price",) + GREEKS, "")


# -- optimal blend and the likelihood-ratio baseline (same paths, so SEs compare without noise) --

FIRST_ORDER = ("delta", "vega", "rho", "theta")


@pytest.fixture(scope="module")
def same_paths():
    kw = dict(n_paths=N_PATHS, seed=SEED + 6)
    return {"optimal": price_portfolio(VANILLAS, MARKET, method="optimal", **kw),
            "direct": price_portfolio(VANILLAS, MARKET, **kw,
                                      method=dict.fromkeys(FIRST_ORDER, "pathwise")
                                      | {"gamma": "mixed"}),
            "lr": price_portfolio(ALL, MARKET, method="lr", **kw),
            "lr_plain": price_portfolio(ALL, MARKET, method="lr", lr_baseline=False, **kw)}


def test_optimal_every_greek(same_paths):
    assert_within_4se(same_paths["optimal"], _closed_form(VANILLAS), _scale(VANILLAS), GREEKS,
                      "optimal")


def test_optimal_se_at_most_the_smaller_of_its_two_estimators(same_paths):
    ids = VANILLAS.trade_id.to_numpy()
    for g in GREEKS:
        smaller = np.minimum(same_paths["direct"].loc[ids, g + "_se"],
                             same_paths["lr"].loc[ids, g + "_se"])
        ratio = same_paths["optimal"].loc[ids, g + "_se"] / smaller
        assert (ratio <= 1.05).all(), (g, ratio.max())


def test_lr_baseline_never_noisier_than_plain_lr(same_paths):
    for g in GREEKS:
        ratio = same_paths["lr"][g + "_se"] / same_paths["lr_plain"][g + "_se"]
        assert (ratio <= 1.05).all(), (g, ratio.idxmax(), ratio.max())


def test_lr_baseline_cuts_atm_european_delta_variance_threefold(same_paths):
    atm = VANILLAS.merge(GRID, on=["underlying", "strike", "maturity"]).query("strike == spot")
    assert len(atm) >= 8
    ids = atm.trade_id.to_numpy()
    cut = (same_paths["lr_plain"].loc[ids, "delta_se"] / same_paths["lr"].loc[ids, "delta_se"]) ** 2
    assert (cut >= 3).all(), cut


def test_vibrato_every_greek_of_digitals():
    """Under GBM a digital's only step is exact, so vibrato is the Gaussian likelihood ratio of
    that step with an antithetic pair (Giles 2009); auto blends it with lr (optimal)."""
    vib = price_portfolio(DIGITALS, MARKET, n_paths=N_PATHS, seed=SEED + 7, method="vibrato")
    assert_within_4se(vib, _closed_form(DIGITALS), _scale(DIGITALS), GREEKS, "vibrato")


def test_vibrato_when_the_centre_sits_on_the_strike():
    """S0 = K with r - q - σ²/2 = 0 puts vibrato's centre S0 e^{μT} exactly on the strike; its
    baseline f(centre) must not depend on the path's normal, not even through a rounding."""
    spot, rate, div_yield, vol, t = 100.0, 0.03, 0.01, 0.2, 1.0
    trades = pd.DataFrame({"trade_id": ["DC", "DP"], "underlying": "X", "payoff": "digital",
                           "option_type": ["call", "put"], "strike": spot, "maturity": t,
                           "quantity": 1.0, "cash": 1.0})
    market = pd.DataFrame({"underlying": ["X"], "model": ["gbm"], "spot": [spot],
                           "rate": [rate], "div_yield": [div_yield], "vol": [vol]})
    vib = price_portfolio(trades, market, n_paths=N_PATHS, seed=SEED + 8, method="vibrato")
    ref = pd.DataFrame({tid: bs.digital(spot=spot, strike=spot, maturity=t, rate=rate, vol=vol,
                                        div_yield=div_yield, is_call=call, cash=1.0)
                        for tid, call in (("DC", True), ("DP", False))}).T
    sd = vol * np.sqrt(t)      # the digital scales of _scale
    scale = pd.DataFrame({"price": 1.0, "delta": 1 / (spot * sd), "gamma": 1 / (spot * sd) ** 2,
                          "vega": 1 / vol, "rho": t / sd, "theta": 1 / t}, index=["DC", "DP"])
    assert_within_4se(vib, ref, scale, GREEKS, "vibrato")
