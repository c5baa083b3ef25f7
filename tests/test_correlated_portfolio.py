"""Correlated multi-asset GBM books through the public API and the command line
(docs/reference.md: Correlations, Multi-asset trades, Input errors, Aggregation).

- Bad input: every problem of a multi-asset trade or of the correlations table is one line
  naming the trade or row, the column and the value; ``on_error="skip"`` prices the good rows
  (to the bit as if the bad one were absent) and gives a bad multi-asset row its reason, while
  a bad correlations table fails whatever ``on_error`` says; the command line exits 2 with one
  line on stderr and writes nothing.
- Reproducibility of a grouped book (a group of three names with single- and multi-asset
  trades, and an ungrouped name): the same bits on one or two threads, any chunk or block
  size, in either table order, and on a real Dask cluster.
- An ungrouped underlying keeps its bits whatever else the book and the correlations hold.
- Aggregation: per (measure, underlying, underlying_2) sums of the long risk table with
  standard errors from per-path totals (a long and a short of one basket net to SE 0), totals
  across simulation groups in quadrature, and (slow) a seed study of those standard errors.
- The command line end to end with CSV and Parquet correlations files, its manifest and
  ``mcgreeks reproduce``.
"""
import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys

import numba
import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from mcgreeks import InputError, aggregate, aggregate_risk, engine, price_portfolio
from mcgreeks.analytic import black_scholes

# --- the book -----------------------------------------------------------------------------------

#: A, B, C and D under GBM (D at another rate), H under Heston for the "not yet" errors.
MARKET = pd.DataFrame({"underlying": ["A", "B", "C", "D"], "model": "gbm",
                       "spot": [100.0, 50.0, 80.0, 30.0], "rate": [0.03, 0.03, 0.03, 0.01],
                       "div_yield": [0.01, 0.0, 0.02, 0.0], "vol": [0.2, 0.3, 0.25, 0.4]})
MARKET_H = pd.concat([MARKET, pd.DataFrame([{
    "underlying": "H", "model": "heston", "spot": 90.0, "rate": 0.03, "div_yield": 0.0,
    "v0": 0.04, "kappa": 1.5, "vbar": 0.04, "xi": 0.5, "corr": -0.7}])], ignore_index=True)

#: A-B and B-C link A, B, C into one group (A-C unlisted: 0); D-A at 0 links nothing.
CORR = pd.DataFrame({"underlying_1": ["A", "C", "D"], "underlying_2": ["B", "B", "A"],
                     "corr": [0.5, -0.3, 0.0]})
GROUP_MATRIX = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 1.0]])


def trade(trade_id, underlying, payoff, option_type, strike, maturity, **cells):
    return dict(trade_id=trade_id, underlying=underlying, payoff=payoff,
                option_type=option_type, strike=strike, maturity=maturity, **cells)


#: Every multi-asset payoff, single-asset trades on each member of the group (a control-variate
#: Asian, a barrier priced by lr), and two trades on the ungrouped D, in mixed order.
TRADES = pd.DataFrame([
    trade("bk", "A;B;C", "basket", "call", 165.0, 1.0, weights="0.5;1;0.8", quantity=2.0),
    trade("a1", "A", "european", "call", 100.0, 1.0),
    trade("bo", "A;C", "best_of", "call", 105.0, 0.5, weights="1;1.25", quantity=-1.0),
    trade("d1", "D", "european", "put", 30.0, 1.0, quantity=3.0),
    trade("b1", "B", "asian_arithmetic", "put", 50.0, 1.0, n_fixings=4),
    trade("wo", "C;B", "worst_of", "put", 95.0, 0.75, weights="1.25;2"),
    trade("sp", "A;B", "spread", "call", 0.0, 1.0, weights="1;2", quantity=0.5),
    trade("c1", "C", "barrier", "call", 80.0, 1.0, barrier=100.0, barrier_type="up_out",
          n_fixings=6),
    trade("d2", "D", "digital", "call", 32.0, 0.5, cash=5.0),
])
D_IDS = ["d1", "d2"]
SEED = 20260
#: Two whole segments and a partial one: chunk_paths = 1 << 14 splits the main run in three.
N_BITS = 2 * engine.SEGMENT + 123
N_SMALL = 2048


def corr_table(rows):
    return pd.DataFrame(rows, columns=["underlying_1", "underlying_2", "corr"])


def price(trades=TRADES, market=MARKET, correlations=CORR, n_paths=N_BITS, seed=SEED, **kw):
    return price_portfolio(trades, market, correlations=correlations, n_paths=n_paths,
                           seed=seed, risk=True, **kw)


def assert_identical(got, expected):
    """Two (results, risk) pairs are the same to the bit, per-path totals and sums included."""
    (res, risk), (res0, risk0) = got, expected
    pd.testing.assert_frame_equal(res, res0, check_exact=True)
    pd.testing.assert_frame_equal(risk, risk0, check_exact=True)
    assert res.attrs["totals"] == res0.attrs["totals"]
    assert risk.attrs["totals"] == risk0.attrs["totals"]
    pd.testing.assert_frame_equal(aggregate_risk(risk), aggregate_risk(risk0), check_exact=True)
    pd.testing.assert_frame_equal(aggregate(res), aggregate(res0), check_exact=True)


@contextlib.contextmanager
def numba_threads(n):
    if numba.config.NUMBA_NUM_THREADS < n:
        pytest.skip(f"needs {n} numba threads")
    saved = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(saved)


@pytest.fixture(scope="module")
def reference():
    """The grouped book on two threads with the default chunk and block sizes."""
    with numba_threads(2):
        return price()


def assert_one_line(message, *words):
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    for text in words:
        assert text in message, f"{text!r} not in {message!r}"


# --- 1. bad input -------------------------------------------------------------------------------

#: id, cells replacing those of trade "bk", column, value as quoted, words of the reason
BAD_TRADES = [
    ("unknown name", {"underlying": "A;ZZ;C"}, "underlying", "'A;ZZ;C'",
     "'ZZ': no such underlying in the market table"),
    ("weights count", {"weights": "1;2"}, "weights", "'1;2'", "has 2 weights for 3 underlyings"),
    ("name repeated", {"underlying": "A;B;A"}, "underlying", "'A;B;A'",
     "'A' is listed more than once"),
    ("spread of three", {"payoff": "spread", "strike": 0.0}, "underlying", "'A;B;C'",
     "a spread takes exactly two underlyings, got 3"),
    ("spread of one", {"payoff": "spread", "underlying": "A", "weights": None}, "underlying",
     "'A'", "a spread takes exactly two underlyings, got 1"),
    ("mixed rates", {"underlying": "A;B;D"}, "underlying", "'A;B;D'",
     "its underlyings must share one rate: 'A' has rate 0.03, 'D' has rate 0.01"),
]


def with_bad_basket(cells):
    trades = TRADES.copy().astype(object)
    for column, value in cells.items():
        trades.loc[trades.trade_id == "bk", column] = value
    return trades


@pytest.mark.parametrize("cells, column, value, why", [c[1:] for c in BAD_TRADES],
                         ids=[c[0] for c in BAD_TRADES])
def test_bad_multi_asset_trade_is_one_line_and_skip_prices_the_rest(cells, column, value, why):
    trades = with_bad_basket(cells)
    with pytest.raises(InputError) as info:
        price(trades, MARKET_H, n_paths=N_SMALL)
    message = str(info.value)
    assert_one_line(message, why)
    assert message.startswith(f"trade 'bk': column '{column}' has value {value}: "), message

    res, risk = price(trades, MARKET_H, n_paths=N_SMALL, on_error="skip")
    assert res.loc["bk", "error"] == message
    assert np.isnan(res.loc["bk", "price"]) and "bk" not in set(risk.trade_id)
    # the good rows as if the bad one were not in the book, to the bit
    good, good_risk = price(TRADES[TRADES.trade_id != "bk"], MARKET_H, n_paths=N_SMALL)
    # A bad row whose names passed their checks (a Heston leg) brings that model's columns,
    # empty; the good rows' numbers are those of the book without it.
    for c in res.columns.difference(good.columns):
        assert (res[c] == "").all() if c.startswith("method_") else res[c].isna().all(), c
    pd.testing.assert_frame_equal(res.drop(index="bk")[good.columns], good, check_exact=True)
    pd.testing.assert_frame_equal(risk.reset_index(drop=True), good_risk, check_exact=True)
    pd.testing.assert_frame_equal(aggregate_risk(risk), aggregate_risk(good_risk),
                                  check_exact=True)


def _not_psd():
    return corr_table([("A", "B", 0.9), ("A", "C", 0.9), ("B", "C", -0.9)])


#: id, correlations table, words of the one-line message
BAD_TABLES = [
    ("corr above 1", corr_table([("A", "B", 0.5), ("C", "B", 1.5)]),
     ["correlations row 2: column 'corr' has value 1.5: must be <= 1"]),
    ("corr below -1", corr_table([("A", "B", -1.2)]),
     ["correlations row 1: column 'corr' has value -1.2: must be >= -1"]),
    ("pair twice", corr_table([("A", "B", 0.5), ("B", "A", 0.5)]),
     ["correlations row 2: column 'underlying_2' has value 'A'",
      "already listed in correlations row 1"]),
    ("name not in market", corr_table([("A", "ZZ", 0.5)]),
     ["correlations row 1: column 'underlying_2' has value 'ZZ'",
      "no such underlying in the market table"]),
    ("not psd", _not_psd(),
     ["correlations: the group A, B, C is not positive semidefinite",
      "smallest eigenvalue -0.8 "]),
]


@pytest.mark.parametrize("on_error", ["fail", "skip"])
@pytest.mark.parametrize("table, words", [c[1:] for c in BAD_TABLES],
                         ids=[c[0] for c in BAD_TABLES])
def test_bad_correlations_table_fails_even_with_skip(table, words, on_error):
    with pytest.raises(InputError) as info:
        price(TRADES, MARKET_H, table, n_paths=N_SMALL, on_error=on_error)
    assert_one_line(str(info.value), *words)


def test_non_psd_smallest_eigenvalue_is_the_groups():
    smallest = np.linalg.eigvalsh(np.array([[1, .9, .9], [.9, 1, -.9], [.9, -.9, 1]]))[0]
    assert smallest == pytest.approx(-0.8)
    with pytest.raises(InputError, match=r"smallest eigenvalue -0\.8 "):
        price(correlations=_not_psd(), n_paths=N_SMALL)


def test_optimal_on_a_gbm_name_grouped_with_heston_is_one_line_and_skipped():
    """A GBM name correlated with a Heston one is priced by the Heston kernel, with GBM's
    estimators but no GBM pilot: asking for the optimal blend there is one line, and skip
    prices the rest (a GBM name outside the group keeps it)."""
    table = corr_table([("A", "B", 0.5), ("H", "A", 0.3)])
    trades = TRADES[TRADES.trade_id.isin(["a1", "d1"])]
    with pytest.raises(InputError) as info:
        price(trades, MARKET_H, table, n_paths=N_SMALL, method={"delta": "optimal"})
    assert_one_line(str(info.value), "trade 'a1': column 'method' has value 'optimal'",
                    "fitted by the GBM pilot")
    res, _ = price(trades, MARKET_H, table, n_paths=N_SMALL, on_error="skip",
                   method={"delta": "optimal"})
    assert "GBM pilot" in res.loc["a1", "error"]
    assert res.loc["d1", "error"] == "" and res.loc["d1", "method_delta"] == "optimal"
    auto, _ = price(trades, MARKET_H, table, n_paths=N_SMALL)
    assert auto.loc["a1", "method_delta"] in ("pathwise", "lr")      # the pilot's pick


def test_skip_gives_a_singular_basket_its_reason():
    table = corr_table([("A", "B", 1.0)])
    trades = TRADES[TRADES.trade_id.isin(["sp", "a1", "d1"])]
    res, _ = price(trades, correlations=table, n_paths=N_SMALL, on_error="skip")
    assert "singular" in res.loc["sp", "error"]
    assert (res.loc[["a1", "d1"], "error"] == "").all()


def test_skip_when_the_only_trade_on_a_correlated_name_is_bad():
    trades = pd.concat([TRADES[~TRADES.underlying.str.contains("C")],
                        pd.DataFrame([trade("c9", "C", "european", "call", -80.0, 1.0)])],
                       ignore_index=True)
    res, _ = price(trades, n_paths=N_SMALL, on_error="skip")
    assert "strike" in res.loc["c9", "error"]
    assert (res.drop(index="c9")["error"] == "").all()


# --- 2. reproducibility on a grouped book -------------------------------------------------------

def test_grouped_book_is_priced_as_one_group_and_every_row_priced(reference):
    res, risk = reference
    assert (res["error"] == "").all() and res["price"].notna().all()
    assert {t["job"] for t in res.attrs["totals"]} == {"A;B;C", "D"}
    # a multi-asset trade fills price, rho, theta and leaves per-asset columns NaN (section 9)
    multi = ["bk", "bo", "wo", "sp"]
    assert res.loc[multi, ["delta", "gamma", "vega"]].isna().all().all()
    assert res.loc[multi, ["price", "rho", "theta"]].notna().all().all()
    bk = risk[risk.trade_id == "bk"]
    assert list(bk.measure) == (["price"] + ["delta"] * 3 + ["gamma"] * 3 + ["vega"] * 3
                                + ["cross_gamma"] * 3 + ["d_pair_corr"] * 3 + ["rho", "theta"])
    assert set(zip(bk.underlying, bk.underlying_2)) >= {("A", "B"), ("A", "C"), ("B", "C")}
    # single-asset rows of the long table equal their wide columns
    for tid in ["a1", "b1", "c1", "d1", "d2"]:
        rows = risk[risk.trade_id == tid].set_index("measure")
        for m in rows.index:
            assert rows.at[m, "value"] == res.at[tid, m]
            assert rows.at[m, "se"] == res.at[tid, m + "_se"]


@pytest.mark.parametrize("threads, chunk_paths, block_paths", [
    (1, 1 << 16, 1 << 12), (2, 1 << 14, 256), (1, 1 << 14, 256)])
def test_same_bits_on_any_thread_count_chunk_and_block(reference, threads, chunk_paths,
                                                       block_paths):
    with numba_threads(threads):
        got = price(chunk_paths=chunk_paths, block_paths=block_paths)
    assert_identical(got, reference)


def test_same_bits_in_any_table_order(reference):
    market = MARKET.iloc[::-1].reset_index(drop=True)
    flipped = CORR.iloc[::-1].rename(columns={"underlying_1": "underlying_2",
                                              "underlying_2": "underlying_1"})
    with numba_threads(2):
        got = price(market=market, correlations=flipped)
    assert_identical(got, reference)


def test_dask_local_cluster_gives_the_serial_bits(reference):
    from mcgreeks.distributed import close_local, local_client
    client = local_client(2)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        got = price(client=client)
    finally:
        close_local(client)
    assert_identical(got, reference)


def test_single_asset_trades_in_a_group_keep_their_own_law():
    """Each member's marginal under the group's correlated paths (member 0 reads its own stream,
    the others mix streams): europeans on A, B, C agree with Black-Scholes within 4 SE, every
    Greek, whichever estimator auto takes (scores included)."""
    trades = pd.DataFrame([trade("bk", "A;B;C", "basket", "call", 165.0, 1.0,
                                 weights="0.5;1;0.8")]
                          + [trade(f"e{n}", n, "european", kind, k, 0.75)
                             for n, kind, k in [("A", "call", 105.0), ("B", "put", 48.0),
                                                ("C", "call", 80.0)]])
    res, _ = price(trades, correlations=CORR.iloc[:2], n_paths=1 << 15)
    assert {t["job"] for t in res.attrs["totals"]} == {"A;B;C"}
    failures = []
    for n, kind, k in [("A", "call", 105.0), ("B", "put", 48.0), ("C", "call", 80.0)]:
        p = MARKET.set_index("underlying").loc[n]
        ref = black_scholes.european(spot=p.spot, strike=k, maturity=0.75, rate=p.rate,
                                     vol=p.vol, div_yield=p.div_yield, is_call=kind == "call")
        for g in ["price", "delta", "gamma", "vega", "rho", "theta"]:
            got, se = res.at[f"e{n}", g], res.at[f"e{n}", g + "_se"]
            if abs(got - ref[g]) > 4 * se:
                failures.append(f"{n} {g}: {got:.6g} vs {ref[g]:.6g}, se {se:.3g}")
    assert not failures, failures


# --- 3. an ungrouped underlying keeps its bits --------------------------------------------------

@pytest.fixture(scope="module")
def d_alone():
    return price(TRADES[TRADES.trade_id.isin(D_IDS)], correlations=None)


def _d_part(priced):
    res, risk = priced
    return (res.loc[D_IDS], risk[risk.trade_id.isin(D_IDS)].reset_index(drop=True),
            [t for t in res.attrs["totals"] if t["job"] == "D"],
            aggregate_risk(risk).query("underlying == 'D'").reset_index(drop=True))


@pytest.mark.parametrize("correlations", [CORR, None, CORR.iloc[:2]],
                         ids=["correlations with a zero pair to D", "no correlations",
                              "correlations without D"])
def test_ungrouped_underlying_is_bit_identical_beside_a_group(d_alone, reference, correlations):
    got = reference if correlations is CORR else price(correlations=correlations)
    res, risk, totals, summed = _d_part(got)
    res0, risk0, totals0, summed0 = _d_part(d_alone)
    pd.testing.assert_frame_equal(res, res0, check_exact=True)
    pd.testing.assert_frame_equal(risk, risk0, check_exact=True)
    assert totals == totals0 and len(totals) == 6
    pd.testing.assert_frame_equal(summed, summed0, check_exact=True)


@pytest.mark.parametrize("correlations", [CORR, CORR.iloc[:2]],
                         ids=["zero pair to D", "pairs without D"])
def test_ungrouped_book_is_bit_identical_with_a_correlations_table(d_alone, correlations):
    got = price(TRADES[TRADES.trade_id.isin(D_IDS)], correlations=correlations)
    assert_identical(got, d_alone)


# --- 4. aggregation -----------------------------------------------------------------------------

KEY = ["measure", "underlying", "underlying_2"]


def test_aggregate_risk_is_the_row_sums_with_per_path_errors(reference):
    res, risk = reference
    summed = aggregate_risk(risk)
    per_key = summed[summed.underlying != "total"]
    groups = dict(list(risk.groupby(KEY, sort=False)))
    assert set(map(tuple, per_key[KEY].to_numpy())) == set(groups)
    controlled = {"b1"}              # its per-path total uses the pilot's control coefficient
    for _, row in per_key.iterrows():
        part = groups[tuple(row[KEY])]
        assert row.n_trades == len(part)
        assert row.value == pytest.approx(math.fsum(part.value), rel=1e-12, abs=1e-15)
        # errors of positions on shared paths: at most their sum, exactly a lone row's own
        # (an Asian's control at the pilot's coefficient: within a relative O(1/4096))
        slack = 1e-2 if controlled & set(part.trade_id) else 1e-12
        assert row.se <= part.se.sum() * (1 + slack) + 1e-15
        if len(part) == 1:
            assert row.se == pytest.approx(part.se.iloc[0], rel=slack, abs=1e-15)
    # a name's delta: its single-asset trades' deltas and the multi-asset trades' legs
    delta_a = groups[("delta", "A", "")]
    assert sorted(delta_a.trade_id) == ["a1", "bk", "bo", "sp"]
    # the total rows: every position of the portfolio, in currency
    totals = summed[summed.underlying == "total"].set_index("measure")
    assert list(totals.index) == ["price", "rho", "theta"]
    for m in totals.index:
        part = risk[risk.measure == m]
        assert totals.at[m, "n_trades"] == len(part) == len(TRADES)
        assert totals.at[m, "value"] == pytest.approx(math.fsum(part.value), rel=1e-12)
    # The wide aggregate agrees with the long one.  Where a name has multi-asset legs (NaN in
    # the wide table) it reports the per-path total's mean, which for B holds the Asian b1 with
    # its control at the pilot's coefficient instead of the main run's: off by far less than
    # an SE, not to rounding.
    wide = aggregate(res)
    by = per_key.set_index(KEY)
    for name in "ABCD":
        for m in ["delta", "gamma", "vega"]:
            value, se = by.loc[(m, name, ""), ["value", "se"]]
            close = (dict(rel=0, abs=1e-3 * se) if name == "B"
                     else dict(rel=1e-12, abs=1e-15))
            assert wide.at[name, m] == pytest.approx(value, **close), (name, m)
            assert wide.at[name, m + "_se"] == se
    for m in ["price", "rho", "theta"]:
        assert wide.at["total", m] == pytest.approx(totals.at[m, "value"], rel=1e-12)
        assert wide.at["total", m + "_se"] == totals.at[m, "se"]


def test_totals_add_simulation_groups_in_quadrature(reference):
    res, risk = reference
    totals = aggregate_risk(risk).query("underlying == 'total'").set_index("measure")
    for m in ["price", "rho", "theta"]:
        group = [t for t in res.attrs["totals"]
                 if t["measure"] == m and t["underlying"] == "total"]
        alone = [t for t in res.attrs["totals"] if t["measure"] == m and t["underlying"] == "D"]
        assert len(group) == 1 and group[0]["job"] == "A;B;C" and len(alone) == 1
        assert sorted(group[0]["trades"]) == sorted(set(TRADES.trade_id) - set(D_IDS))
        expected = math.sqrt(group[0]["se"] ** 2 + alone[0]["se"] ** 2)
        assert totals.at[m, "se"] == pytest.approx(expected, rel=1e-14)


def test_long_and_short_of_one_basket_net_to_se_zero():
    basket = dict(weights="0.5;1;0.8")
    trades = pd.DataFrame([trade("L", "A;B;C", "basket", "call", 165.0, 1.0, quantity=1.5,
                                 **basket),
                           trade("S", "A;B;C", "basket", "call", 165.0, 1.0, quantity=-1.5,
                                 **basket),
                           trade("d1", "D", "european", "put", 30.0, 1.0)])
    res, risk = price(trades, n_paths=N_SMALL)
    assert res.loc["L", "price_se"] > 0
    summed = aggregate_risk(risk)
    group = summed[~summed.underlying.isin(["D", "total"])]
    assert set(group.measure) == {"price", "delta", "gamma", "vega", "cross_gamma",
                                  "d_pair_corr", "rho", "theta"}
    assert (group.n_trades == 2).all()
    assert (group.value == 0.0).all() and (group.se == 0.0).all(), group
    wide = aggregate(res)
    for name in "ABC":
        assert wide.at[name, "delta"] == 0.0 and wide.at[name, "delta_se"] == 0.0
    # the group adds nothing to the portfolio's error: D's alone remains
    totals = summed.query("underlying == 'total'").set_index("measure")
    d = summed.query("underlying == 'D'").set_index("measure")
    for m in ["price", "rho", "theta"]:
        assert totals.at[m, "se"] == d.at[m, "se"] > 0


@pytest.mark.slow
def test_per_name_delta_errors_match_the_spread_over_seeds():
    """200 seeds of a hedged book (a basket call spread, a best-of and a short call sharing A):
    the standard deviation over seeds of each name's delta total, and of the portfolio price,
    against the mean reported SE.  With n seeds, (n - 1) s^2 / sigma^2 is chi-square(n - 1)
    while the reported SE moves by about 1 % from seed to seed, so the ratio must lie in the
    chi-square band at 1e-4 (two-sided, four ratios): [0.81, 1.20] for n = 200.  Adding the
    rows' SEs in quadrature instead (what independence would give) is outside that band."""
    trades = pd.DataFrame([
        trade("up", "A;B;C", "basket", "call", 165.0, 1.0, weights="0.5;1;0.8"),
        trade("dn", "A;B;C", "basket", "call", 162.0, 1.0, weights="0.5;1;0.8", quantity=-1.0),
        trade("bo", "A;C", "best_of", "call", 105.0, 1.0, weights="1;1.25", quantity=0.25),
        trade("a1", "A", "european", "call", 100.0, 1.0, quantity=-0.3),
        trade("d1", "D", "european", "put", 30.0, 1.0)])
    n_seeds = 200
    keys = [("delta", "A", ""), ("delta", "B", ""), ("delta", "C", ""), ("price", "total", "")]
    values, ses, quadrature = [], [], []
    for seed in range(1000, 1000 + n_seeds):
        _, risk = price(trades, n_paths=4096, seed=seed, greeks="delta")
        summed = aggregate_risk(risk).set_index(KEY)
        values.append([summed.at[k, "value"] for k in keys])
        ses.append([summed.at[k, "se"] for k in keys])
        delta_a = risk[(risk.measure == "delta") & (risk.underlying == "A")]
        quadrature.append(math.sqrt((delta_a.se ** 2).sum()))
    low, high = (math.sqrt(chi2.ppf(p, n_seeds - 1) / (n_seeds - 1)) for p in (5e-5, 1 - 5e-5))
    ratio = np.std(values, axis=0, ddof=1) / np.mean(ses, axis=0)
    assert (np.std(ses, axis=0) < 0.05 * np.mean(ses, axis=0)).all()
    assert ((low < ratio) & (ratio < high)).all(), dict(zip(keys, ratio))
    wrong = np.std(np.array(values)[:, 0], ddof=1) / np.mean(quadrature)
    assert not low < wrong < high, wrong


# --- 5. the command line ------------------------------------------------------------------------

def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mcgreeks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def write(table, path):
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    return path.name


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


TEXT_OUT = {"error", "warning"}


def read_results(path):
    """A results file read back exactly (CSV numbers through Python's float)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    back = pd.read_csv(path, index_col="trade_id", dtype=str, keep_default_na=False)
    for c in back.columns:
        if c not in TEXT_OUT and not c.startswith("method_"):
            back[c] = np.array([float(x) if x else np.nan for x in back[c]], dtype=np.float64)
    return back


def read_risk(path):
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in ("value", "se"):
        back[c] = np.array([float(x) for x in back[c]], dtype=np.float64)
    return back


#: id, table edited ("trades" or "correlations"), what it becomes, file format, --on-error,
#: words of the one line
CLI_BAD = [
    ("corr above 1", "correlations", corr_table([("A", "B", 0.5), ("C", "B", 1.5)]), ".csv",
     "fail", ["correlations row 2", "'corr'", "1.5"]),
    ("name not in market", "correlations", corr_table([("A", "ZZ", 0.5)]), ".parquet", "skip",
     ["correlations row 1", "'underlying_2'", "'ZZ'", "no such underlying"]),
    ("pair twice", "correlations", corr_table([("A", "B", 0.5), ("B", "A", 0.4)]), ".csv",
     "skip", ["correlations row 2", "'underlying_2'", "'A'", "already listed"]),
    ("not psd", "correlations", _not_psd(), ".csv", "fail",
     ["the group A, B, C", "smallest eigenvalue -0.8"]),
    ("weights count", "trades", with_bad_basket({"weights": "1;2"}), ".csv", "fail",
     ["trade 'bk'", "'weights'", "'1;2'", "2 weights for 3 underlyings"]),
]


@pytest.mark.parametrize("which, table, suffix, on_error, words", [c[1:] for c in CLI_BAD],
                         ids=[c[0] for c in CLI_BAD])
def test_cli_bad_input_exits_2_with_one_line_and_no_file(tmp_path, which, table, suffix,
                                                         on_error, words):
    tables = {"trades": TRADES, "correlations": CORR, which: table}
    trades = write(tables["trades"], tmp_path / "trades.csv")
    market = write(MARKET_H, tmp_path / "market.csv")
    corr = write(tables["correlations"], tmp_path / f"corr{suffix}")
    before = sorted(os.listdir(tmp_path))
    proc = run_cli("price", trades, "--market", market, "--correlations", corr, "--paths",
                   N_SMALL, "--on-error", on_error, "--out", "r.csv", "--risk-out", "risk.csv",
                   "--by", "underlying", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error: "), proc.stderr
    assert_one_line(lines[0], *words)
    assert sorted(os.listdir(tmp_path)) == before


def test_cli_skip_prices_the_good_rows_and_explains_the_bad_basket(tmp_path):
    trades = with_bad_basket({"underlying": "A;ZZ;C"})
    write(trades, tmp_path / "trades.csv")
    write(MARKET, tmp_path / "market.csv")
    write(CORR, tmp_path / "corr.csv")
    proc = run_cli("price", "trades.csv", "--market", "market.csv", "--correlations",
                   "corr.csv", "--paths", N_SMALL, "--seed", 3, "--on-error", "skip", "--out",
                   "r.csv", "--risk-out", "risk.csv", "--quiet", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        "mcgreeks: 1 rows could not be priced (see the error column)"]
    back = read_results(tmp_path / "r.csv")
    assert back.loc["bk", "error"] == ("trade 'bk': column 'underlying' has value 'A;ZZ;C': "
                                       "'ZZ': no such underlying in the market table")
    assert (back.drop(index="bk")["error"] == "").all()
    expected, expected_risk = price(trades, n_paths=N_SMALL, seed=3, on_error="skip")
    np.testing.assert_array_equal(back["price"].to_numpy(), expected["price"].to_numpy())
    risk = read_risk(tmp_path / "risk.csv")
    assert "bk" not in set(risk.trade_id) and len(risk) == len(expected_risk)
    np.testing.assert_array_equal(risk["value"].to_numpy(), expected_risk["value"].to_numpy())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_end_to_end_with_a_correlations_file_and_reproduce(tmp_path, suffix):
    write(TRADES, tmp_path / "trades.csv")
    write(MARKET, tmp_path / "market.csv")
    corr = write(CORR, tmp_path / f"corr{suffix}")
    out, risk_out = f"r{suffix}", f"risk{suffix}"
    proc = run_cli("price", "trades.csv", "--market", "market.csv", "--correlations", corr,
                   "--paths", 4096, "--seed", 7, "--out", out, "--risk-out", risk_out,
                   "--by", "underlying", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    by = f"r.by_underlying{suffix}"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["trades.csv", "market.csv", corr, out, risk_out, by, f"{out}.manifest.json"])

    # what a user reading the same files in Python gets, to the bit
    expected, expected_risk = price(pd.read_csv(tmp_path / "trades.csv",
                                                dtype={"trade_id": str, "underlying": str}),
                                    pd.read_csv(tmp_path / "market.csv"), CORR,
                                    n_paths=4096, seed=7)
    back = read_results(tmp_path / out)
    assert list(back.index) == list(expected.index)
    assert list(back.columns) == list(expected.columns)
    for c in expected.columns:
        if expected[c].dtype == object:
            assert list(back[c]) == list(expected[c]), c
        else:
            np.testing.assert_array_equal(back[c].to_numpy(float), expected[c].to_numpy(),
                                          err_msg=c)
    risk = read_risk(tmp_path / risk_out)
    for c in ("trade_id", "measure", "underlying", "underlying_2", "method"):
        assert list(risk[c]) == list(expected_risk[c]), c
    for c in ("value", "se"):
        np.testing.assert_array_equal(risk[c].to_numpy(), expected_risk[c].to_numpy())
    summed = (pd.read_parquet(tmp_path / by) if suffix == ".parquet"
              else pd.read_csv(tmp_path / by, index_col=0))
    wide = aggregate(expected)
    assert list(summed.index) == list(wide.index)
    np.testing.assert_allclose(summed[wide.columns].to_numpy(float), wide.to_numpy(float),
                               rtol=1e-15, atol=0)

    manifest = json.loads((tmp_path / f"{out}.manifest.json").read_text())
    assert set(manifest["inputs"]) == {"trades", "market", "correlations"}
    entry = manifest["inputs"]["correlations"]
    assert entry["path"] == str((tmp_path / corr).resolve())
    assert entry["sha256"] == sha256(tmp_path / corr)
    assert set(manifest["outputs"]) == {"results", "by_underlying", "risk"}
    assert manifest["rows"] == {"trades": len(TRADES), "priced": len(TRADES), "failed": 0}

    again = run_cli("reproduce", f"{out}.manifest.json", "--out", f"again{suffix}", "--quiet",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for original, rerun in [(out, f"again{suffix}"), (risk_out, f"again.risk{suffix}"),
                            (by, f"again.by_underlying{suffix}")]:
        assert (tmp_path / rerun).read_bytes() == (tmp_path / original).read_bytes(), rerun
