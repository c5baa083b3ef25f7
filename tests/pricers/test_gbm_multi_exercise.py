"""Early exercise of multi-asset payoffs under GBM (``pricers.gbm_multi``: each path stopped by a
fixed Longstaff-Schwartz policy on ``exercise_policy.legs_features``' basis).

References:
- a basket of one name is a vanilla: its Bermudan put against the finite-difference solution
  of ``analytic.american`` (independent of the multi-asset code), every measure;
- the two-asset Bermudan max-call of Broadie & Glasserman (S = 90, 100, 110 for both names,
  K = 100, r = 5 %, q = 10 %, σ = 20 %, ρ = 0, T = 3, 9 dates): 8.08, 13.90, 21.34, as quoted by
  Broadie & Glasserman (2004) and Andersen & Broadie (2004).

Allowances, measured: the basis (1, a, b, a², b², ab, h/K) has no European regressor, so the
policies are a little worse than the single-asset ones: the one-name basket put's price 0.3 %
low, its delta 1.3 % and theta 2.2 % off the reference beyond their SEs (gamma, vega and rho
within them); the max-call prices 0.3-0.7 % low (an independent NumPy fit on 2^17 pilot paths
with that basis: 8.032, 13.870, 21.270; four times the pilot moved them by under 0.2 %).
"""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import engine, price_portfolio
from mcgreeks.analytic.american import american_greeks, american_price
from mcgreeks.validation import InputError

ALLOWANCE = {"price": 0.005, "delta": 0.02, "gamma": 0.05, "vega": 0.01, "rho": 0.01,
             "theta": 0.03}
BG = {90.0: 8.08, 100.0: 13.90, 110.0: 21.34}


def test_a_basket_of_one_name_is_the_vanilla_against_finite_differences():
    trades = pd.DataFrame([dict(trade_id="b", underlying="X", payoff="basket",
                                option_type="put", strike=40.0, maturity=1.0, weights="1",
                                exercise="bermudan", n_exercise=50)])
    market = pd.DataFrame([dict(underlying="X", model="gbm", spot=36.0, rate=0.06,
                                div_yield=0.0, vol=0.2)])
    _, risk = price_portfolio(trades, market, n_paths=100_000, seed=3, risk=True)
    got = risk.set_index("measure")
    dates = np.arange(1, 51) / 50
    ref = american_greeks(36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put", exercise_dates=dates)
    h = 1e-3
    ref["theta"] = -(american_price(36.0, 40.0, 0.06, 0.0, 0.2, 1 + h, "put",
                                    exercise_dates=dates * (1 + h))
                     - american_price(36.0, 40.0, 0.06, 0.0, 0.2, 1 - h, "put",
                                      exercise_dates=dates * (1 - h))) / (2 * h)
    assert got.loc["price", "se"] < 0.003 * ref["price"]
    assert got.loc["price", "value"] < ref["price"] + 4 * got.loc["price", "se"]
    for g, allowance in ALLOWANCE.items():
        err = abs(got.loc[g, "value"] - ref[g])
        assert err < 4 * got.loc[g, "se"] + allowance * abs(ref[g]), (g, got.loc[g], ref[g])
    assert got.loc["delta", "method"] == "pathwise" and got.loc["gamma", "method"] == "mixed"


@pytest.fixture(scope="module")
def max_calls():
    trades = pd.DataFrame([dict(trade_id=f"bg{s:.0f}", underlying=f"A{s:.0f};B{s:.0f}",
                                payoff="best_of", option_type="call", strike=100.0,
                                maturity=3.0, exercise="bermudan", n_exercise=9) for s in BG])
    market = pd.DataFrame([dict(underlying=f"{n}{s:.0f}", model="gbm", spot=s, rate=0.05,
                                div_yield=0.10, vol=0.2) for s in BG for n in "AB"])
    return price_portfolio(trades, market, n_paths=100_000, seed=1, risk=True, upper_bound=True)


def test_broadie_glasserman_max_call_inside_the_price_and_its_dual_bound(max_calls):
    """The quoted value lies in [price - 4 SE, upper bound + 4 SE], and both ends are close:
    the price (the fixed policies' value) within 1 % below it, the dual bound (1,000 outer x
    500 inner paths, no control on several names) within 1 % above it.  The price SE carries
    the spread of the 8 fitted policies' values, which now and then outweighs the paths' own:
    over 8 seeds each on 0.3.0's and 0.4.0's random numbers the S = 90 SE was
    0.0048-0.0049 of the value in 12 runs and 0.0053-0.0074 in 4 (S = 100: 0.0035-0.0062, S = 110:
    0.0027-0.0039)."""
    res, _ = max_calls
    for s, value in BG.items():
        row = res.loc[f"bg{s:.0f}"]
        assert row["price_se"] < 0.008 * value and row["upper_bound_se"] < 0.004 * value
        assert row["price"] - 4 * row["price_se"] < value < \
            row["upper_bound"] + 4 * row["upper_bound_se"]
        assert row["price"] > value * (1 - 0.01) - 4 * row["price_se"]
        assert row["upper_bound"] < value * (1 + 0.01) + 4 * row["upper_bound_se"]


def test_max_call_measures_are_symmetric_in_the_two_names(max_calls):
    """The two names are exchangeable: their deltas, gammas and vegas agree within their SEs,
    and the cross-gamma of a max-call is negative."""
    _, risk = max_calls
    for s in BG:
        got = risk[risk.trade_id == f"bg{s:.0f}"].set_index(["measure", "underlying"])
        for measure in ("delta", "gamma", "vega"):
            a, b = got.loc[(measure, f"A{s:.0f}")], got.loc[(measure, f"B{s:.0f}")]
            assert abs(a["value"] - b["value"]) < 4 * np.hypot(a["se"], b["se"]), measure
        cross = got.xs("cross_gamma", level="measure").iloc[0]
        assert cross["value"] < -4 * cross["se"]


def test_same_bits_on_any_chunking():
    trades = pd.DataFrame([dict(trade_id="w", underlying="A;B", payoff="worst_of",
                                option_type="put", strike=100.0, maturity=1.0,
                                exercise="bermudan", n_exercise=6)])
    market = pd.DataFrame([dict(underlying=n, model="gbm", spot=100.0, rate=0.02,
                                div_yield=0.0, vol=v) for n, v in (("A", 0.2), ("B", 0.3))])
    corr = pd.DataFrame([dict(underlying_1="A", underlying_2="B", corr=0.5)])
    kw = dict(n_paths=2 * engine.SEGMENT + 77, seed=5, correlations=corr, greeks="delta,rho")
    one = price_portfolio(trades, market, **kw)
    many = price_portfolio(trades, market, chunk_paths=1024, block_paths=256, **kw)
    pd.testing.assert_frame_equal(one, many, check_exact=True)


def test_fd_re_stopping_moved_paths_agrees_with_pathwise_and_mixed():
    """fd (each bumped path re-stopped by the same policies, common random numbers) against
    the pathwise and mixed estimates of every measure of a correlated max-call: within 4 SE of
    their difference (fd's SE dominates: a moved path that crosses the exercise boundary jumps;
    the gammas' fd is too noisy at this size to say more than its sign's neighbourhood)."""
    trades = pd.DataFrame([dict(trade_id="bg", underlying="A;B", payoff="best_of",
                                option_type="call", strike=100.0, maturity=3.0,
                                exercise="bermudan", n_exercise=9)])
    market = pd.DataFrame([dict(underlying=n, model="gbm", spot=100.0, rate=0.05,
                                div_yield=0.10, vol=0.2) for n in "AB"])
    corr = pd.DataFrame([dict(underlying_1="A", underlying_2="B", corr=0.3)])
    runs = [price_portfolio(trades, market, n_paths=100_000, seed=1, risk=True, method=m,
                            correlations=corr)[1].set_index(["measure", "underlying",
                                                             "underlying_2"])
            for m in ("auto", "fd")]
    both = runs[0].join(runs[1].add_suffix("_fd")).drop(index="price")
    assert (both["method_fd"] == "fd").all()
    assert (np.abs(both["value"] - both["value_fd"])
            < 4 * np.hypot(both["se"], both["se_fd"])).all(), both
    assert (both["se_fd"] < 0.15 * both["value"].abs()).loc[["delta", "vega", "rho"]].all()


def test_lr_is_refused():
    trades = pd.DataFrame([dict(trade_id="m", underlying="A;B", payoff="best_of",
                                option_type="call", strike=100.0, maturity=1.0,
                                exercise="bermudan", n_exercise=4)])
    market = pd.DataFrame([dict(underlying=n, model="gbm", spot=100.0, rate=0.02,
                                div_yield=0.0, vol=0.2) for n in "AB"])
    with pytest.raises(InputError, match="not offered for early exercise on several"):
        price_portfolio(trades, market, n_paths=1000, method={"delta": "lr"})


def test_a_pilot_too_large_for_memory_is_cut_and_said(monkeypatch):
    """One policy's pilot holds legs × dates × paths doubles at once; beyond
    ``underlying.PILOT_DOUBLES`` it is cut to fit and the price's diagnostics say so."""
    from mcgreeks import underlying
    monkeypatch.setattr(underlying, "PILOT_DOUBLES", 1 << 16)
    trades = pd.DataFrame([dict(trade_id="m", underlying="A;B", payoff="basket",
                                option_type="put", strike=200.0, maturity=1.0,
                                exercise="bermudan", n_exercise=4)])
    market = pd.DataFrame([dict(underlying=n, model="gbm", spot=100.0, rate=0.02,
                                div_yield=0.0, vol=0.2) for n in "AB"])
    _, diag = price_portfolio(trades, market, n_paths=1000, seed=1, greeks="none",
                              diagnostics=True)
    reason = diag.reset_index().set_index("quantity").loc["price", "reason"]
    assert "one policy on 8,192 pilot paths" in reason
    assert "each pilot cut from 262,144 to 8,192 paths to hold 2 legs at 4 dates" in reason
