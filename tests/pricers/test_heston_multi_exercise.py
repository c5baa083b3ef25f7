"""Early exercise of multi-asset payoffs with a Heston name (``pricers.heston_multi``: each path
stopped by a fixed Longstaff-Schwartz policy fitted on pilot paths of the legs simulated together,
``exercise_policy.group_legs_pilot``).

References:
- a Heston name whose variance cannot move (xi -> 0, v0 = vbar = σ²) is a GBM name of volatility
  σ: beside a GBM name it makes the two-asset Bermudan max-call of Broadie & Glasserman
  (S = 100, K = 100, r = 5 %, q = 10 %, σ = 20 %, ρ = 0, T = 3, 9 dates), 13.90 as quoted by
  Broadie & Glasserman (2004) and Andersen & Broadie (2004), and its two names are
  exchangeable: equal deltas and gammas, and the GBM name's vega equals the Heston name's
  2σ (d_v0 + d_vbar) (both variances moved together move σ²);
- fd with common random numbers, each moved path re-stopped by the same policies (an
  independent method on the same paths), for every measure of a genuine Heston name.

Allowance, measured: the basis (1, a, b, a², b², ab, h/K) prices the max-call 0.3-0.7 % low under
GBM (tests/pricers/test_gbm_multi_exercise.py); 0.45 % here at seed 1.
"""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import engine, price_portfolio
from mcgreeks.validation import InputError

SIGMA = 0.2
HESTON = dict(model="heston", rate=0.05, div_yield=0.10, v0=SIGMA ** 2, kappa=2.0,
              vbar=SIGMA ** 2, corr=-0.5)


def _max_call(maturity, n_exercise, names="H;G"):
    return pd.DataFrame([dict(trade_id="mc", underlying=names, payoff="best_of",
                              option_type="call", strike=100.0, maturity=maturity,
                              exercise="bermudan", n_exercise=n_exercise)])


def _market(xi):
    return pd.DataFrame([dict(underlying="H", spot=100.0, xi=xi, **HESTON),
                         dict(underlying="G", model="gbm", spot=100.0, rate=0.05,
                              div_yield=0.10, vol=SIGMA)])


def test_a_still_heston_name_is_a_gbm_name_in_the_broadie_glasserman_max_call():
    res, risk = price_portfolio(_max_call(3.0, 9), _market(1e-3), n_paths=100_000, seed=1,
                                risk=True)
    got = risk.set_index(["measure", "underlying"])["value"]
    se = risk.set_index(["measure", "underlying"])["se"]
    price, price_se = res.loc["mc", "price"], res.loc["mc", "price_se"]
    assert price_se < 0.005 * 13.90
    assert price - 4 * price_se < 13.90 < price + 4 * price_se + 0.01 * 13.90
    for measure in ("delta", "gamma"):
        h, g = (measure, "H"), (measure, "G")
        assert se[h] < 0.03 * abs(got[h])
        assert abs(got[h] - got[g]) < 4 * np.hypot(se[h], se[g]), measure
    # SE of the sum bounded by the sum of the SEs (the two share their paths)
    from_h = 2 * SIGMA * (got["d_v0", "H"] + got["d_vbar", "H"])
    from_h_se = 2 * SIGMA * (se["d_v0", "H"] + se["d_vbar", "H"])
    assert abs(from_h - got["vega", "G"]) < 4 * np.hypot(from_h_se, se["vega", "G"])
    methods = risk.set_index(["measure", "underlying"])["method"]
    assert methods["d_v0", "H"] == "pathwise" and methods["gamma", "H"] == "mixed"


def test_fd_re_stopping_moved_paths_agrees_with_pathwise_and_mixed():
    """Every measure of a correlated Heston/GBM max-call (Feller ratio 1.8, so auto takes
    pathwise for the Heston parameters): auto against fd within 4 SE of their difference (fd's
    SE dominates: a moved path that crosses the exercise boundary jumps).  One seed is too few
    to see the fitted policy's boundary term: over 6 seeds pathwise d_kappa, d_vbar and d_xi
    sit 5-8 SE from fd re-stopping (benchmarks/results/EFFICIENCY.md; docs/reference.md).
    fd's SE over 10 runs (seeds 1-5 on 0.3.0's and on 0.4.0's random numbers): 0.10-0.17 of
    the value for d_corr, at most 0.10 for the other first-order measures."""
    corr = pd.DataFrame([dict(underlying_1="H", underlying_2="G", corr=0.3)])
    runs = [price_portfolio(_max_call(1.0, 4), _market(0.3), n_paths=100_000, seed=1, risk=True,
                            method=m, correlations=corr)[1].set_index(["measure", "underlying",
                                                                       "underlying_2"])
            for m in ("auto", "fd")]
    both = runs[0].join(runs[1].add_suffix("_fd")).drop(index="price", level=0)
    assert (both["method_fd"] == "fd").all()
    assert set(both["method"]) == {"pathwise", "mixed"}
    assert len(both) == 14
    assert (np.abs(both["value"] - both["value_fd"])
            < 4 * np.hypot(both["se"], both["se_fd"])).all(), both
    first_order = both.drop(index=["gamma", "cross_gamma"], level=0)
    assert (first_order["se_fd"] < 0.2 * first_order["value"].abs()).all()


def test_same_bits_on_any_chunking():
    corr = pd.DataFrame([dict(underlying_1="H", underlying_2="G", corr=0.3)])
    trades = pd.DataFrame([dict(trade_id="w", underlying="H;G", payoff="basket",
                                option_type="put", strike=100.0, maturity=0.5,
                                exercise="american")])
    kw = dict(n_paths=2 * engine.SEGMENT + 77, seed=5, correlations=corr, risk=True,
              greeks="delta,gamma,d_v0,d_corr,d_pair_corr,theta", steps_per_year=12)
    for method in ("auto", "fd"):
        one = price_portfolio(trades, _market(0.3), method=method, **kw)
        many = price_portfolio(trades, _market(0.3), method=method, chunk_paths=1024,
                               block_paths=256, **kw)
        for a, b in zip(one, many):
            pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_lr_is_refused_and_the_dual_bound_is_given():
    """With ``upper_bound=True`` the trade gets the Andersen-Broadie bound of its first policy
    (``dual_bound.heston_legs_bounds``, the legs simulated as a group on the pricer's grid):
    above the price (within the SEs) and no warning."""
    with pytest.raises(InputError, match="not offered for early exercise on several"):
        price_portfolio(_max_call(1.0, 4), _market(0.3), n_paths=1000,
                        method={"delta": "lr"})
    res = price_portfolio(_max_call(1.0, 4), _market(0.3), n_paths=1000, greeks="none",
                          upper_bound=True)
    row = res.loc["mc"]
    assert np.isfinite(row["upper_bound"]) and 0.0 < row["upper_bound_se"] < 0.02 * row["price"]
    assert row["upper_bound"] >= row["price"] - 4 * row["price_se"], row
    assert row["duality_gap"] == pytest.approx(row["upper_bound"] - row["price"])
    assert np.isfinite(row["duality_gap_se"])
    assert "no upper bound" not in row["warning"]


@pytest.mark.slow
def test_standard_errors_are_calibrated_over_seeds():
    """The SEs (the spread of 6 policies' estimates, never below the paths' own) against the
    seed-to-seed spread of every measure of the correlated Heston/GBM max-call over 8 seeds:
    z = (estimate - mean over seeds)/SE pooled over the 15 quantities has std near 1 (measured
    0.98 over 10 seeds; each quantity's spread/SE 0.5-1.4, as 10 seeds and 5 degrees of
    freedom per SE allow)."""
    corr = pd.DataFrame([dict(underlying_1="H", underlying_2="G", corr=0.3)])
    runs = [price_portfolio(_max_call(1.0, 4), _market(0.3), n_paths=100_000, seed=100 + s,
                            risk=True, correlations=corr)[1] for s in range(8)]
    table = pd.concat(runs)
    key = [table["measure"], table["underlying"].fillna(""), table["underlying_2"].fillna("")]
    mean = table.groupby(key)["value"].transform("mean")
    z = (table["value"] - mean) / table["se"] * np.sqrt(len(runs) / (len(runs) - 1))
    assert len(z) == 15 * len(runs)
    assert 0.7 < z.std() < 1.4 and abs(z.mean()) < 0.2
    spread = table.assign(z=z).groupby(key)["z"].std()
    assert (spread < 2.2).all(), spread
