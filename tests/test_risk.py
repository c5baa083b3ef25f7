"""The long risk table and its aggregation, checked against the wide results table."""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import aggregate, aggregate_risk, price_portfolio
from mcgreeks.risk import AGGREGATE_COLUMNS, RISK_COLUMNS

MARKET = pd.DataFrame({"underlying": ["X", "H"], "model": ["gbm", "heston"],
                       "spot": [100.0, 50.0], "rate": [0.02, 0.01], "div_yield": [0.01, 0.0],
                       "vol": [0.2, None], "v0": [None, 0.04], "kappa": [None, 1.5],
                       "vbar": [None, 0.05], "xi": [None, 0.4], "corr": [None, -0.5]})
TRADES = pd.DataFrame({
    "trade_id": ["c", "p", "bad", "h1", "h2"], "underlying": ["X", "X", "X", "H", "H"],
    "payoff": ["european", "digital", "european", "european", "barrier"],
    "option_type": ["call", "put", "call", "put", "call"],
    "strike": [100.0, 95.0, -1.0, 50.0, 50.0], "maturity": [1.0, 0.5, 1.0, 1.0, 0.5],
    "quantity": [3.0, -2.0, 1.0, 5.0, -1.0], "cash": [None, 4.0, None, None, None],
    "barrier": [None, None, None, None, 60.0],
    "barrier_type": [None, None, None, None, "up_out"],
    "monitoring": [None, None, None, None, "discrete"], "n_fixings": [None] * 4 + [12]})


@pytest.fixture(scope="module")
def priced():
    return price_portfolio(TRADES, MARKET, n_paths=8192, seed=11, steps_per_year=24,
                           on_error="skip", risk=True)


def test_risk_table_holds_every_number_of_the_wide_table_once(priced):
    results, risk = priced
    assert list(risk.columns) == RISK_COLUMNS
    assert "bad" not in set(risk["trade_id"])           # its reason is in results["error"]
    assert results.at["bad", "error"]
    assert (risk["underlying_2"] == "").all()           # single-asset measures only, so far
    assert set(risk.loc[risk["underlying"] == "X", "measure"]) == {
        "price", "delta", "gamma", "vega", "rho", "theta"}
    assert set(risk.loc[risk["underlying"] == "H", "measure"]) == {
        "price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
        "d_corr"}
    for row in risk.itertuples():
        assert row.value == results.at[row.trade_id, row.measure]
        assert row.se == results.at[row.trade_id, row.measure + "_se"]
        assert row.method == ("" if row.measure == "price"
                              else results.at[row.trade_id, "method_" + row.measure])
    priced_numbers = results.drop(index="bad")[[q for q in risk["measure"].unique()]].notna()
    assert len(risk) == int(priced_numbers.to_numpy().sum())


def test_aggregate_risk_matches_the_wide_aggregate(priced):
    results, risk = priced
    table = aggregate_risk(risk)
    wide = aggregate(results)
    assert list(table.columns) == AGGREGATE_COLUMNS
    for row in table.itertuples():
        assert row.value == pytest.approx(wide.at[row.underlying, row.measure], rel=1e-12)
        assert row.se == pytest.approx(wide.at[row.underlying, row.measure + "_se"], rel=1e-12)
        assert row.n_trades == (2 if row.underlying in ("X", "H") else 4)
    # a portfolio total only where units agree across names
    assert list(table.loc[table["underlying"] == "total", "measure"]) == ["price", "rho", "theta"]
    assert np.isnan(wide.at["total", "delta"]) and np.isnan(wide.at["total", "d_xi"])


def test_aggregate_risk_refuses_edited_or_filtered_tables(priced):
    _, risk = priced
    edited = risk.copy()
    edited.loc[edited.index[1], "value"] += 1.0
    with pytest.raises(ValueError, match="no longer matches"):
        aggregate_risk(edited)
    with pytest.raises(ValueError, match="lacks some"):
        aggregate_risk(risk[risk["trade_id"] != "c"])
    with pytest.raises(ValueError, match="no per-path totals"):
        aggregate_risk(pd.DataFrame(risk))


def test_greeks_selection_reaches_the_risk_table():
    results, risk, notes = price_portfolio(TRADES.drop(index=2), MARKET, n_paths=4096, seed=3,
                                           steps_per_year=12, greeks="delta,d_xi", risk=True,
                                           diagnostics=True)
    assert set(risk["measure"]) == {"price", "delta", "d_xi"}
    assert set(notes.index.get_level_values("quantity")) == {"price", "delta", "d_xi"}


def test_the_totals_travel_with_pandas_copies_as_new_lists_of_the_same_records(priced,
                                                                               tmp_path):
    # pandas deep-copies attrs with every frame or column it makes; Totals copies only its list
    results, risk = priced
    for table in (results, risk):
        totals = table.attrs["totals"]
        view = table.iloc[:2]
        copied = view.attrs["totals"]
        assert copied == totals and copied is not totals
        assert all(a is b for a, b in zip(copied, totals))
        copied.append({"measure": "price"})
        assert len(table.attrs["totals"]) == len(copied) - 1
    aggregate(results)                                    # the original still aggregates
    aggregate_risk(risk)
    # Parquet keeps them (as JSON in its metadata), and a table read back still aggregates
    results.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(tmp_path / "r.parquet")
    assert back.attrs["totals"] == results.attrs["totals"]
    pd.testing.assert_frame_equal(aggregate(back), aggregate(results))
