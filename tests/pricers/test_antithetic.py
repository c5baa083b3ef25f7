"""The antithetic sampler (sampler="antithetic"): paths in reflected pairs, each pair's mean one
sample of the standard error (Glasserman 2004, §4.2).  GBM prices and Greeks by every estimator
within 4 SE of the closed forms (mcgreeks.analytic, checked against QuantLib in
tests/analytic); Heston single-asset, correlated multi-asset and exercisable trades against
plain Monte Carlo on other seeds (the same scheme, so the same discretization bias: an
independent estimate of the same number); the SE calibrated over seeds; the same bits on any
thread count or chunking; the variance cut where theory promises one."""
import numpy as np
import pandas as pd
import pytest

from mc_checks import (assert_same_bits_across_threads_and_chunks, assert_within_4se,
                       closed_forms, natural_scale)
from mcgreeks import engine, price_portfolio
from mcgreeks.validation import InputError

GREEKS = ("delta", "gamma", "vega", "rho", "theta")
ESTIMATORS = ("pathwise", "lr", "mixed", "optimal", "vibrato", "fd")

MARKET = pd.DataFrame([
    dict(underlying="A", spot=100.0, rate=0.03, div_yield=0.0, vol=0.2),
    dict(underlying="B", spot=42.0, rate=-0.01, div_yield=0.02, vol=0.35),
]).assign(model="gbm")


def _trades():
    rows = []
    for s in MARKET.itertuples():
        base = dict(underlying=s.underlying, maturity=1.5, quantity=1.0)
        rows += [dict(base, trade_id=f"{s.underlying}-call", payoff="european",
                      option_type="call", strike=round(1.05 * s.spot, 4)),
                 dict(base, trade_id=f"{s.underlying}-gput", payoff="asian_geometric",
                      option_type="put", strike=round(0.95 * s.spot, 4), n_fixings=12),
                 dict(base, trade_id=f"{s.underlying}-dig", payoff="digital",
                      option_type="call", strike=s.spot, cash=s.spot)]
    return pd.DataFrame(rows)


TRADES = _trades()


def _closed_forms():
    """(closed forms, natural sizes) of TRADES."""
    p = TRADES.merge(MARKET, on="underlying").set_index("trade_id")
    scale = natural_scale(p)
    # a digital paying C is a strike-derivative of calls: its sizes are a vanilla's over σ√T
    digital = (p.payoff == "digital").to_numpy()
    scale.loc[digital] = scale.loc[digital].div(p.vol[digital] * np.sqrt(p.maturity[digital]),
                                                axis=0)
    return closed_forms(TRADES, MARKET), scale


@pytest.mark.parametrize("method", ESTIMATORS)
def test_gbm_price_and_greeks_by_every_estimator_match_the_closed_forms(method):
    """Each estimator on the trades it is valid for (the others are refused row by row; where
    it does not apply to a Greek, the plan's fallback estimates it).  A digital's gamma, and
    its rho by fd (a difference quotient of an indicator), are too noisy at these paths for
    4 SE to mean something, and are left out."""
    reference, scale = _closed_forms()
    got = price_portfolio(TRADES, MARKET, n_paths=1 << 18, seed=11, sampler="antithetic",
                          method=method, on_error="skip")
    valid = got[got["error"] == ""]
    assert len(valid) >= 2, got["error"]
    assert (valid[["method_" + g for g in GREEKS]] == method).to_numpy().any(axis=1).all()
    vanilla = valid[~valid.index.str.endswith("-dig")]
    digital = valid[valid.index.str.endswith("-dig")]
    for rows, greeks in ((vanilla, GREEKS),
                         (digital, ("delta", "vega", "theta") + (() if method == "fd"
                                                                  else ("rho",)))):
        assert_within_4se(rows, reference.loc[rows.index], scale.loc[rows.index],
                          ("price",) + greeks, None)


def test_pairs_cut_the_variance_of_monotone_payoffs():
    """A call's and a put's discounted payoffs are monotone in the terminal normal, so a pair's
    two values are negatively correlated and the pair mean has less than half the variance of
    one path's (Glasserman 2004, §4.2): at the same paths, a smaller SE (by 0.6-0.9 here:
    the out-of-the-money payoffs are far from linear)."""
    kw = dict(n_paths=1 << 15, seed=4, greeks="none")
    anti = price_portfolio(TRADES, MARKET, sampler="antithetic", **kw)
    plain = price_portfolio(TRADES, MARKET, **kw)
    ratio = anti["price_se"] / plain["price_se"]
    assert (ratio < 1.0).all(), ratio


HESTON = pd.DataFrame([
    dict(underlying="H", spot=100.0, rate=0.02, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.05,
         xi=0.6, corr=-0.7),
    dict(underlying="F", spot=1.1, rate=0.01, div_yield=0.03, v0=0.01, kappa=0.5, vbar=0.02,
         xi=0.5, corr=0.2),      # 2 kappa vbar / xi^2 = 0.08: Feller badly violated
]).assign(model="heston", vol=np.nan)


def _agree(a, b, quantities, limit=4.0):
    """|a - b| within ``limit`` combined SEs for every quantity and trade; returns the
    z-scores."""
    zs = []
    for q in quantities:
        z = (a[q] - b[q]) / np.hypot(a[q + "_se"], b[q + "_se"])
        assert (z.abs() <= limit).all(), (q, z.abs().idxmax(), z.abs().max())
        zs += list(z)
    return np.array(zs)


def test_heston_prices_and_sensitivities_agree_with_plain_monte_carlo():
    """Every sensitivity the long risk table has for a Heston European and an up-and-out call,
    by auto's estimators (which differ per quantity) and by fd re-simulation."""
    trades = pd.DataFrame([
        dict(trade_id="Hc", underlying="H", payoff="european", option_type="call",
             strike=105.0, maturity=1.0, quantity=1.0),
        dict(trade_id="Huo", underlying="H", payoff="barrier", option_type="call",
             strike=95.0, maturity=1.0, quantity=1.0, barrier=130.0, barrier_type="up_out",
             monitoring="discrete", n_fixings=12),
        dict(trade_id="Fp", underlying="F", payoff="european", option_type="put",
             strike=1.1, maturity=2.0, quantity=1.0)])
    quantities = ("price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar",
                  "d_xi", "d_corr")
    for method, seeds in (("auto", (21, 22)), ("fd", (23, 24))):
        kw = dict(n_paths=1 << 15, method=method, greeks="all")
        anti = price_portfolio(trades, HESTON, seed=seeds[0], sampler="antithetic", **kw)
        plain = price_portfolio(trades, HESTON, seed=seeds[1], **kw)
        _agree(anti, plain, quantities)


CORRELATED = pd.DataFrame([
    dict(underlying="A", model="gbm", spot=100.0, rate=0.03, div_yield=0.0, vol=0.25),
    dict(underlying="B", model="gbm", spot=95.0, rate=0.03, div_yield=0.01, vol=0.3),
    dict(underlying="H", model="heston", spot=100.0, rate=0.03, div_yield=0.0, v0=0.04,
         kappa=1.5, vbar=0.05, xi=0.6, corr=-0.7),
])
PAIRS = pd.DataFrame([dict(underlying_1="A", underlying_2="B", corr=0.5),
                      dict(underlying_1="A", underlying_2="H", corr=0.3)])


def test_multi_asset_trades_agree_with_plain_monte_carlo():
    """A GBM-only exchange option (one simulation group) and a basket with a Heston name (a
    mixed group): every measure of the risk table, against plain Monte Carlo on another seed;
    the exchange option's price also against Margrabe's closed form."""
    from mcgreeks.analytic import multi_asset
    trades = pd.DataFrame([
        dict(trade_id="x", underlying="A;B", payoff="spread", option_type="call", strike=0.0,
             maturity=1.0, quantity=1.0),
        dict(trade_id="b", underlying="A;H", payoff="basket", option_type="put",
             strike=100.0, maturity=1.0, quantity=1.0, weights="0.5;0.5")])
    kw = dict(n_paths=1 << 15, risk=True, greeks="all")
    anti, anti_risk = price_portfolio(trades, CORRELATED, correlations=PAIRS, seed=31,
                                      sampler="antithetic",
                                      **kw)
    plain, plain_risk = price_portfolio(trades, CORRELATED, correlations=PAIRS, seed=32, **kw)
    _agree(anti, plain, ("price",))
    keys = ["trade_id", "measure", "underlying", "underlying_2"]
    a, p = anti_risk.set_index(keys), plain_risk.set_index(keys)
    z = ((a["value"] - p["value"]) / np.hypot(a["se"], p["se"])).dropna()   # NaN in both:
    assert np.array_equal(a["value"].isna(), p["value"].isna())    # a measure not offered
    assert len(z) >= 20 and (z.abs() <= 4).all(), z.abs().sort_values().tail()
    exact = multi_asset.exchange(spots=[100.0, 95.0], maturity=1.0, rate=0.03, vols=[0.25, 0.3],
                                 corr=0.5, div_yields=[0.0, 0.01])["price"]
    row = anti.loc["x"]
    assert abs(row["price"] - exact) <= 4 * row["price_se"] and 4 * row["price_se"] < 0.05 * exact


def test_exercisable_trades_agree_with_plain_monte_carlo():
    """An American put under GBM and under Heston: the stopped paths' price and Greeks."""
    market = pd.concat([MARKET.iloc[:1], HESTON.iloc[:1]], ignore_index=True)
    trades = pd.DataFrame([
        dict(trade_id=f"{u}-am", underlying=u, payoff="european", option_type="put",
             strike=100.0, maturity=1.0, quantity=1.0, exercise="american") for u in ("A", "H")])
    kw = dict(n_paths=1 << 15, greeks="all", pilot_paths=1 << 14)
    anti = price_portfolio(trades, market, seed=41, sampler="antithetic", **kw)
    plain = price_portfolio(trades, market, seed=42, **kw)
    _agree(anti, plain,
           ("price", "delta", "gamma", "rho", "theta"))


def test_same_bits_on_one_or_two_threads_and_any_chunking():
    trades = pd.concat([TRADES, pd.DataFrame([dict(
        trade_id="Hc", underlying="H", payoff="european", option_type="call", strike=105.0,
        maturity=1.0, quantity=1.0)])], ignore_index=True)
    market = pd.concat([MARKET, HESTON.iloc[:1]], ignore_index=True)
    assert_same_bits_across_threads_and_chunks(
        trades, market, n_paths=2 * engine.SEGMENT + 2 * engine.TILE + 6, seed=3,
        sampler="antithetic")


def test_an_odd_number_of_paths_is_an_input_error():
    with pytest.raises(InputError, match="n_paths has value 4097: with sampler 'antithetic' it "
                                         "must be even"):
        price_portfolio(TRADES, MARKET, n_paths=4097, sampler="antithetic")


@pytest.mark.slow
def test_standard_errors_are_calibrated_over_seeds():
    """z = (estimate - closed form) / SE over 40 seeds, per quantity of an ATM call by auto
    (whose estimators differ per Greek): mean 0 and standard deviation 1 within their own
    sampling error (4 × 1/√40 and about 4 × 1/√80), pooled as well.  An SE computed from
    single paths rather than pair means would be too large for the price (std of z well
    below 1)."""
    trades = TRADES[TRADES.trade_id.isin(["A-call", "A-dig"])]
    reference, _ = _closed_forms()
    quantities = ("price",) + GREEKS
    z = {(t, q): [] for t in trades.trade_id for q in quantities}
    for seed in range(40):
        got = price_portfolio(trades, MARKET, n_paths=1 << 13, seed=1000 + seed,
                              sampler="antithetic")
        for t, q in z:
            z[(t, q)].append((got.at[t, q] - reference.at[t, q]) / got.at[t, q + "_se"])
    z = pd.DataFrame(z)
    n = len(z)
    assert (z.mean().abs() < 4 / np.sqrt(n)).all(), z.mean()
    assert ((z.std() - 1).abs() < 4 / np.sqrt(2 * n)).all(), z.std()
    pooled = z.to_numpy().ravel()
    assert abs(pooled.std() - 1) < 4 / np.sqrt(2 * pooled.size)
