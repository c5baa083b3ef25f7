"""Correlated groups with Heston members (``pricers.heston`` with a group, ``pricers.heston_multi``)
against an independent plain-NumPy Monte Carlo of the same law (``heston_group_reference``: its
own random numbers, full-truncation Euler on the same grid, docs/reference.md#correlations).

The engine runs ``scheme="euler"`` at the reference's steps per year, so both estimate exactly the
same quantity: no discretization allowance, 4 combined standard errors.  fd is compared with the
reference's central differences of the same sizes (the same estimand, bias included); pathwise,
an exact derivative of the discretized map, with the reference's differences at 0.1 % steps
(whose O(h²) bias is far below the SEs).  Single-asset trades on a grouped Heston name are
compared with the same trades ungrouped (same marginal law, independent numbers) under QE.
"""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import price_portfolio
from pricers.heston_group_reference import price_and_greeks

H1 = dict(model="heston", spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=2.0, vbar=0.05,
          xi=0.4, corr=-0.7)
H2 = dict(model="heston", spot=50.0, rate=0.03, div_yield=0.0, v0=0.09, kappa=1.5, vbar=0.06,
          xi=0.5, corr=-0.3)
G3 = dict(model="gbm", spot=80.0, rate=0.03, div_yield=0.02, vol=0.3)
NAMES = ("H1", "H2", "G3")
SPY = 12            # steps per year of both engines: the same grid, so the same law
N_ENGINE = 1 << 16
N_REFERENCE = 1 << 16


def market(members):
    return pd.DataFrame([dict(m, underlying=name) for name, m in zip(NAMES, members)])


def correlations(matrix, members):
    rows = [dict(underlying_1=NAMES[a], underlying_2=NAMES[b], corr=matrix[a][b])
            for a in range(len(members)) for b in range(a + 1, len(members))]
    return pd.DataFrame(rows)


def engine(members, matrix, trade, method, fd_bumps=None, n_paths=N_ENGINE, seed=5,
           scheme="euler", **options):
    trades = pd.DataFrame([dict(trade_id="X", quantity=1.0, **trade)])
    return price_portfolio(trades, market(members), n_paths=n_paths, seed=seed, method=method,
                           steps_per_year=SPY, scheme=scheme, fd_bumps=fd_bumps, risk=True,
                           correlations=correlations(matrix, members), progress=False,
                           **options)


def engine_measures(risk, members):
    """{reference measure tuple: (value, se)} from the engine's long risk table."""
    out = {}
    place = {name: k for k, name in enumerate(NAMES[:len(members)])}
    for _, row in risk.iterrows():
        m = row.measure
        if m in ("price", "rho", "theta"):
            key = (m,)
        elif m in ("cross_gamma", "d_pair_corr"):
            key = (m,) + tuple(sorted((place[row.underlying], place[row.underlying_2])))
        else:
            key = (m, place[row.underlying])
        out[key] = (row.value, row.se)
    return out


def compare(got, want, *, max_rel_se):
    """Every reference measure within 4 combined SEs of the engine's, each SE meaningful: below
    max_rel_se[measure] of its value, or, for a measure near 0, below 1 % of the price per
    unit of its parameter."""
    failures = []
    floor = 0.01 * abs(want[("price",)][0])
    for key, (value, se) in want.items():
        mine, my_se = got[key]
        combined = np.hypot(se, my_se)
        z = (mine - value) / combined
        if abs(z) > 4.0:
            failures.append(f"{key}: engine {mine:.6g} ± {my_se:.3g}, reference {value:.6g} ± "
                            f"{se:.3g} (z = {z:.2f})")
        if combined > max(max_rel_se[key[0]] * abs(value), floor):
            failures.append(f"{key}: combined SE {combined:.3g} too large for {value:.6g}")
    assert not failures, "\n".join(failures)


def measures_of(members):
    n = len(members)
    out = [("price",), ("rho",), ("theta",)]
    for k, m in enumerate(members):
        out += [("delta", k), ("gamma", k)]
        out += [(p, k) for p in ("d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")] \
            if m["model"] == "heston" else [("vega", k)]
    out += [(p, k, l) for p in ("cross_gamma", "d_pair_corr") for k in range(n)
            for l in range(k + 1, n)]
    return out


#: the relative SE a comparison must reach to mean something, per measure (``compare``)
MAX_REL_SE = {"price": 0.02, "delta": 0.02, "rho": 0.02, "theta": 0.05, "vega": 0.06,
              "gamma": 0.08, "cross_gamma": 0.1, "d_v0": 0.1, "d_vbar": 0.1, "d_xi": 0.35,
              "d_kappa": 0.1, "d_corr": 0.1, "d_pair_corr": 0.15}

BASKET = dict(underlying="H1;H2", weights="0.5;1", payoff="basket", option_type="call",
              strike=100.0, maturity=1.0)
MATRIX2 = [[1.0, 0.6], [0.6, 1.0]]


def test_two_heston_basket_fd_every_measure_matches_the_reference():
    members = [H1, H2]
    bumps = {"spot": 0.05}
    res, risk = engine(members, MATRIX2, BASKET, "fd", fd_bumps=bumps)
    assert res.loc["X", "error"] == ""
    want = price_and_greeks(members, np.array(MATRIX2), [0.5, 1.0], "basket", "call", 100.0, 1.0,
                            SPY, N_REFERENCE, 11, measures_of(members),
                            sizes={"delta": 0.05, "gamma": 0.05, "cross_gamma": 0.05})
    compare(engine_measures(risk, members), want, max_rel_se=MAX_REL_SE)


#: the reference's differences at 0.1 % (relative; absolute for the correlations and the rate):
#: an approximation of the exact derivative whose bias is far below the SEs
SMALL = {"delta": 1e-3, "vega": 1e-3, "v0": 1e-3, "kappa": 1e-3, "vbar": 1e-3, "xi": 1e-3,
         "corr": 1e-3, "rate": 1e-4, "maturity": 1e-3}


def _reference_sizes():
    from pricers.heston_group_reference import DEFAULT_SIZES
    return {k: v for k, v in SMALL.items() if k in DEFAULT_SIZES}


@pytest.mark.parametrize("payoff, option_type, strike", [
    ("basket", "call", 100.0), ("spread", "put", 5.0), ("best_of", "call", 60.0),
    ("worst_of", "put", 45.0)])
def test_two_heston_pathwise_matches_the_reference(payoff, option_type, strike):
    members = [H1, H2]
    trade = dict(BASKET, payoff=payoff, option_type=option_type, strike=strike)
    res, risk = engine(members, MATRIX2, trade, "pathwise", n_paths=2 * N_ENGINE)
    got = engine_measures(risk, members)
    first_order = [k for k in measures_of(members)
                   if k[0] in ("price", "delta", "rho", "theta", "d_v0", "d_kappa", "d_vbar",
                               "d_xi")]
    methods = dict(zip(zip(risk.measure, risk.underlying), risk.method))
    assert all(m in ("pathwise", "") for (q, _), m in methods.items()
               if q in ("delta", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi"))
    want = price_and_greeks(members, np.array(MATRIX2), [0.5, 1.0], payoff, option_type, strike,
                            1.0, SPY, 2 * N_REFERENCE, 11, first_order,
                            sizes=_reference_sizes())
    compare(got, want, max_rel_se=MAX_REL_SE)


def test_mixed_heston_and_gbm_legs_match_the_reference():
    """A GBM leg simulated in the Heston kernel, on the group's normals: a three-name basket
    (two Heston, one GBM) with fd of every measure, vega of the GBM leg among them."""
    members = [H1, H2, G3]
    matrix = [[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]]
    trade = dict(BASKET, underlying="H1;H2;G3", weights="0.4;1;0.5", strike=110.0)
    res, risk = engine(members, matrix, trade, "fd", fd_bumps={"spot": 0.05})
    want = price_and_greeks(members, np.array(matrix), [0.4, 1.0, 0.5], "basket", "call", 110.0,
                            1.0, SPY, N_REFERENCE, 11, measures_of(members),
                            sizes={"delta": 0.05, "gamma": 0.05, "cross_gamma": 0.05})
    compare(engine_measures(risk, members), want, max_rel_se=MAX_REL_SE)


def test_single_asset_heston_trades_in_a_group_keep_their_law():
    """A European call on H1 and a put on H2, correlated at 0.6 and with a basket beside them,
    against the same trades ungrouped (independent numbers, the same marginal laws): every Greek
    by auto's estimator, QE."""
    trades = pd.DataFrame([
        dict(trade_id="c1", underlying="H1", payoff="european", option_type="call",
             strike=105.0, maturity=1.0, quantity=1.0),
        dict(trade_id="p2", underlying="H2", payoff="european", option_type="put", strike=48.0,
             maturity=0.5, quantity=1.0),
        dict(BASKET, trade_id="bk", quantity=1.0)])
    members = [H1, H2]
    grouped = price_portfolio(trades, market(members), n_paths=N_ENGINE, seed=5,
                              correlations=correlations(MATRIX2, members), progress=False)
    alone = price_portfolio(trades.iloc[:2], market(members), n_paths=N_ENGINE, seed=6,
                            progress=False)
    for trade in ("c1", "p2"):
        for q in ("price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
                  "d_corr"):
            a, b = grouped.loc[trade], alone.loc[trade]
            z = (a[q] - b[q]) / np.hypot(a[q + "_se"], b[q + "_se"])
            assert abs(z) < 4.0, (trade, q, a[q], b[q], z)


def test_grouped_heston_book_same_bits_on_threads_and_chunks():
    from numba import get_num_threads, set_num_threads
    trades = pd.DataFrame([
        dict(trade_id="c1", underlying="H1", payoff="european", option_type="call",
             strike=105.0, maturity=1.0, quantity=1.0),
        dict(BASKET, trade_id="bk", quantity=1.0)])
    members = [H1, H2]
    run = dict(n_paths=3000, seed=9, correlations=correlations(MATRIX2, members), progress=False,
               method="fd", risk=True)
    base, base_risk = price_portfolio(trades, market(members), **run)
    threads = get_num_threads()
    try:
        set_num_threads(1)
        one, one_risk = price_portfolio(trades, market(members), **run, chunk_paths=1024,
                                        block_paths=256)
    finally:
        set_num_threads(threads)
    pd.testing.assert_frame_equal(base, one, check_exact=True)
    pd.testing.assert_frame_equal(base_risk, one_risk, check_exact=True)


@pytest.mark.parametrize("method", ["mixed", "lr"])
@pytest.mark.parametrize("names", ["H1;H2", "H1;H2;G3"])
def test_scores_of_the_conditional_law_match_the_reference(method, names):
    """Likelihood ratio and mixed (the score of ln S0 given the variance paths, a GBM leg's
    given its own spot normal): delta, gamma, cross-gamma, rho against the reference's central
    differences (gamma at 2 % of the spot, whose O(h²) bias is far below the SEs)."""
    members = [H1, H2, G3][:names.count(";") + 1]
    matrix = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]])
    matrix = matrix[:len(members), :len(members)]
    weights = [0.5, 1.0, 0.5][:len(members)]
    trade = dict(BASKET, underlying=names, weights=";".join(map(str, weights)), strike=110.0)
    res, risk = engine(members, matrix, trade, method, n_paths=2 * N_ENGINE)
    got = engine_measures(risk, members)
    wanted = [k for k in measures_of(members)
              if k[0] in ("price", "delta", "gamma", "cross_gamma", "rho")]
    if method == "mixed":           # mixed is a second-order estimator; first order stays auto
        wanted = [k for k in wanted if k[0] in ("price", "gamma", "cross_gamma")]
    chosen = {(r.measure, r.underlying): r.method for r in risk.itertuples()}
    assert all(chosen[(k[0], NAMES[k[1]])] == method for k in wanted if k[0] != "price"
               and k[0] != "rho" and k[0] != "cross_gamma")
    want = price_and_greeks(members, matrix, weights, "basket", "call", 110.0, 1.0, SPY,
                            2 * N_REFERENCE, 11, wanted,
                            sizes={"delta": 1e-3, "gamma": 0.02, "cross_gamma": 0.02,
                                   "rate": 1e-4})
    compare(got, want, max_rel_se=MAX_REL_SE)
