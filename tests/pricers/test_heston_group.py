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
         "corr": 1e-3, "pair_corr": 1e-3, "rate": 1e-4, "maturity": 1e-3}


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
                               "d_xi", "d_corr", "d_pair_corr")]
    methods = dict(zip(zip(risk.measure, risk.underlying), risk.method))
    assert all(m in ("pathwise", "") for (q, _), m in methods.items()
               if q in ("delta", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr",
                        "d_pair_corr"))
    want = price_and_greeks(members, np.array(MATRIX2), [0.5, 1.0], payoff, option_type, strike,
                            1.0, SPY, 2 * N_REFERENCE, 11, first_order,
                            sizes=_reference_sizes())
    compare(got, want, max_rel_se=MAX_REL_SE)


def test_mixed_heston_and_gbm_legs_pathwise_match_the_reference():
    """Pathwise on a Heston-Heston-GBM basket (the GBM leg's vega and its pair correlations
    through its exact Brownian motion)."""
    members = [H1, H2, G3]
    matrix = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]])
    trade = dict(BASKET, underlying="H1;H2;G3", weights="0.4;1;0.5", strike=110.0)
    res, risk = engine(members, matrix, trade, "pathwise", n_paths=2 * N_ENGINE)
    wanted = [k for k in measures_of(members)
              if k[0] not in ("gamma", "cross_gamma")]
    want = price_and_greeks(members, matrix, [0.4, 1.0, 0.5], "basket", "call", 110.0, 1.0,
                            SPY, 2 * N_REFERENCE, 11, wanted, sizes=_reference_sizes())
    compare(engine_measures(risk, members), want, max_rel_se=MAX_REL_SE)


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


@pytest.mark.parametrize("method", ["auto", "pathwise", "lr", "fd"])
def test_gbm_trade_in_a_group_with_heston_matches_black_scholes(method):
    """A European call on a GBM name correlated with a Heston one is priced in the Heston
    kernel by GBM's own estimators on the group's normals: price and every Greek within 4 SE of
    Black-Scholes (fd against the closed form's own central differences: the same estimand)."""
    from mcgreeks.analytic.black_scholes import european
    members = [H1, H2, G3]
    matrix = [[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]]
    trade = dict(underlying="G3", payoff="european", option_type="call", strike=85.0,
                 maturity=1.0)
    res, _ = engine(members, matrix, trade, method, scheme="qe")
    row = res.loc["X"]
    args = dict(spot=80.0, strike=85.0, maturity=1.0, rate=0.03, vol=0.3, div_yield=0.02)
    want = european(**args)
    if method == "fd":
        sizes = {"delta": ("spot", 0.8), "gamma": ("spot", 0.8), "vega": ("vol", 0.003),
                 "rho": ("rate", 0.001), "theta": ("maturity", 0.01)}
        for greek, (name, h) in sizes.items():
            up = european(**dict(args, **{name: args[name] + h}))["price"]
            down = european(**dict(args, **{name: args[name] - h}))["price"]
            if greek == "gamma":
                want[greek] = (up - 2 * want["price"] + down) / h ** 2
            else:
                want[greek] = (up - down) / (2 * h) * (-1.0 if greek == "theta" else 1.0)
    for q in ("price", "delta", "gamma", "vega", "rho", "theta"):
        assert abs(row[q] - want[q]) < 4 * row[q + "_se"], (q, row[q], row[q + "_se"], want[q])
        assert row[q + "_se"] < 0.05 * abs(want[q]), (q, row[q + "_se"])


def _mixed_book():
    """Two Heston names and a GBM one, correlated, with single- and multi-asset trades on all."""
    members = [H1, H2, G3]
    matrix = [[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]]
    trades = pd.DataFrame([
        dict(trade_id="c1", underlying="H1", payoff="european", option_type="call",
             strike=105.0, maturity=1.0, quantity=1.0),
        dict(trade_id="a3", underlying="G3", payoff="asian_arithmetic", option_type="put",
             strike=80.0, maturity=0.5, n_fixings=6, quantity=-2.0),
        dict(BASKET, trade_id="bk", quantity=1.0),
        dict(trade_id="wo", underlying="G3;H2", weights="1;1.6", payoff="worst_of",
             option_type="put", strike=75.0, maturity=0.75, quantity=3.0)])
    return trades, market(members), correlations(matrix, members)


def test_mixed_book_same_bits_in_any_table_order_and_on_a_dask_cluster():
    from mcgreeks.distributed import close_local, local_client
    trades, mkt, corr = _mixed_book()
    run = dict(n_paths=3000, seed=4, risk=True, progress=False)
    base = price_portfolio(trades, mkt, correlations=corr, **run)
    flipped = corr.iloc[::-1].rename(columns={"underlying_1": "underlying_2",
                                              "underlying_2": "underlying_1"})
    other = price_portfolio(trades, mkt.iloc[::-1].reset_index(drop=True), correlations=flipped,
                            **run)
    client = local_client(2)
    try:
        dask = price_portfolio(trades, mkt, correlations=corr, client=client, **run)
    finally:
        close_local(client)
    for got in (other, dask):
        for a, b in zip(base, got):
            pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("n", [5, 10])
def test_many_heston_legs_match_the_reference(n):
    """A basket of n correlated Heston names (the STAC-A2 layout): price, pathwise deltas and
    rho, mixed gammas, one cross-gamma, against the NumPy reference."""
    rng = np.random.default_rng(n)
    members = [dict(H1 if k % 2 == 0 else H2, spot=float(rng.uniform(40, 120)),
                    v0=float(rng.uniform(0.03, 0.08)), corr=float(rng.uniform(-0.8, -0.2)))
               for k in range(n)]
    names = [f"N{k}" for k in range(n)]
    a = rng.standard_normal((n, n + 2))
    cov = a @ a.T
    matrix = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    weights = 1.0 / np.array([m["spot"] for m in members])
    strike = float(n)
    mkt = pd.DataFrame([dict(m, underlying=name) for name, m in zip(names, members)])
    corr = pd.DataFrame([dict(underlying_1=names[k], underlying_2=names[l], corr=matrix[k, l])
                         for k in range(n) for l in range(k + 1, n)])
    trades = pd.DataFrame([dict(trade_id="X", underlying=";".join(names),
                                weights=";".join(repr(float(w)) for w in weights), payoff="basket",
                                option_type="call", strike=strike, maturity=1.0, quantity=1.0)])
    res, risk = price_portfolio(trades, mkt, n_paths=2 * N_ENGINE, seed=3, scheme="euler",
                                steps_per_year=SPY, correlations=corr, risk=True, progress=False,
                                greeks=["delta", "gamma", "cross_gamma", "rho"])
    place = {name: k for k, name in enumerate(names)}
    got = {}
    for row in risk.itertuples():
        if row.measure in ("price", "rho"):
            got[(row.measure,)] = (row.value, row.se)
        elif row.measure == "cross_gamma":
            got[("cross_gamma",) + tuple(sorted((place[row.underlying],
                                                 place[row.underlying_2])))] = (row.value, row.se)
        else:
            got[(row.measure, place[row.underlying])] = (row.value, row.se)
    wanted = [("price",), ("rho",), ("cross_gamma", 0, 1)]
    wanted += [(m, k) for m in ("delta", "gamma") for k in range(n)]
    want = price_and_greeks(members, matrix, weights, "basket", "call", strike, 1.0, SPY,
                            2 * N_REFERENCE, 11, wanted,
                            sizes={"delta": 1e-3, "gamma": 0.02, "cross_gamma": 0.02,
                                   "rate": 1e-4})
    compare(got, want, max_rel_se=dict(MAX_REL_SE, gamma=0.15, cross_gamma=0.15))


@pytest.mark.slow
def test_error_bars_are_calibrated_over_many_seeds():
    """The SEs of a 2-Heston basket's estimates, QE, over 160 independent runs of 16,384 paths
    (scores given variance paths, mixed gammas, pathwise model parameters and the fd couplings
    all have heavy-tail risks).  Per measure: the runs' pooled mean agrees with a 2^21-path run
    of another seed within 4 combined SEs, and the runs' z = (estimate - pooled mean) / SE has
    std 1 within 3 of its own standard errors, sqrt((kurtosis - 1) / (4 runs)) (wider where z
    is heavy-tailed, as a fixed bound could not be).  Measured: at 4,096 paths the stds stood at
    1.03-1.16 (fd d_vbar highest: the QE branch switch makes a bumped path jump, and a sample
    SE of rare jumps is low at small n); at 16,384 paths 0.92-1.0 over 400 runs.  lr delta's z
    is heavy-tailed (the score of a leg whose variance path stays low is large): its std was
    1.27 ± 0.20 over the first 100 of these runs, 0.95 over 400 others."""
    members = [H1, H2]
    trades = pd.DataFrame([dict(BASKET, trade_id="X", quantity=1.0)])
    mkt, corr = market(members), correlations(MATRIX2, members)
    method = {"delta": "lr", "gamma": "mixed", "cross_gamma": "mixed", "rho": "pathwise",
              "theta": "pathwise", "d_v0": "pathwise", "d_vbar": "fd", "d_corr": "fd",
              "d_pair_corr": "fd"}

    def run(n_paths, seed):
        _, risk = price_portfolio(trades, mkt, n_paths=n_paths, seed=seed, correlations=corr,
                                  method=method, greeks=list(method), risk=True, progress=False)
        return risk.set_index(["measure", "underlying", "underlying_2"])

    ref = run(1 << 21, 99)
    runs = [run(1 << 14, 1000 + s) for s in range(160)]
    values = np.array([r.value.to_numpy() for r in runs])
    ses = np.array([r.se.to_numpy() for r in runs])
    pooled = values.mean(axis=0)
    z_pooled = (pooled - ref.value.to_numpy()) / np.hypot(values.std(axis=0, ddof=1)
                                                          / np.sqrt(len(runs)), ref.se)
    z = (values - pooled) / ses
    stds = z.std(axis=0, ddof=1)
    kurtosis = ((z - z.mean(axis=0)) ** 4).mean(axis=0) / z.var(axis=0) ** 2
    allowed = 3.0 * np.sqrt((kurtosis - 1.0) / (4.0 * len(runs)))
    table = "; ".join(f"{':'.join(k for k in key if k)} z {zp:.2f} std {sd:.3f} ± {al:.3f}"
                      for key, zp, sd, al in zip(ref.index, z_pooled, stds, allowed))
    assert np.all(np.abs(z_pooled) < 4.0), table
    assert np.all(np.abs(stds - 1.0) < allowed), table
    assert np.all(allowed < 0.35), table          # the study can tell a 35 % SE error


def test_the_heston_group_example_prices_from_the_command_line(tmp_path):
    """data/heston_group (the README's example of a correlated Heston group): every trade
    priced, every multi-asset trade's measures in the risk table, and the GBM name's trade
    priced in the group with GBM's estimators."""
    import subprocess
    import sys
    from pathlib import Path
    data = Path(__file__).resolve().parents[2] / "data" / "heston_group"
    proc = subprocess.run(
        [sys.executable, "-m", "mcgreeks.cli", "price", data / "trades.csv", "--market",
         data / "market.csv", "--correlations", data / "correlations.csv", "--paths", "4096",
         "--out", "r.csv", "--risk-out", "risk.csv", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    res = pd.read_csv(tmp_path / "r.csv", keep_default_na=False, na_values=[""])
    risk = pd.read_csv(tmp_path / "risk.csv", keep_default_na=False, na_values=[""])
    trades = pd.read_csv(data / "trades.csv")
    assert list(res.trade_id) == list(trades.trade_id)
    assert res.price.notna().all() and res.error.isna().all()
    basket = risk[risk.trade_id == "M103"]
    assert set(basket.measure) == {"price", "delta", "gamma", "vega", "d_v0", "d_kappa", "d_vbar",
                                   "d_xi", "d_corr", "cross_gamma", "d_pair_corr", "rho",
                                   "theta"}
    assert len(basket[basket.measure == "cross_gamma"]) == 3
    assert res.set_index("trade_id").loc["A001", "method_vega"] in ("pathwise", "lr")
