"""Portfolio aggregation: values are sums of rows, errors come from per-path totals."""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import InputError, aggregate, price_portfolio

QUANTITIES = ("price", "delta", "gamma", "vega", "rho", "theta")
MARKET = pd.DataFrame({"underlying": ["X", "Y"], "model": "gbm", "spot": [100.0, 50.0],
                       "rate": [0.02, -0.005], "div_yield": [0.01, 0.0], "vol": [0.2, 0.35]})


def _trades(rows):
    base = dict(underlying="X", payoff="european", option_type="call", strike=100.0,
                maturity=1.0, quantity=1.0)
    return pd.DataFrame([{**base, **r} for r in rows])


def test_long_and_short_of_one_option_net_to_zero_error():
    trades = _trades([dict(trade_id="long"), dict(trade_id="short", quantity=-1.0)])
    totals = aggregate(price_portfolio(trades, MARKET, n_paths=20_000, seed=1))
    for q in QUANTITIES:
        assert abs(totals.at["X", q]) <= 1e-12
        assert totals.at["X", q + "_se"] <= 1e-12


@pytest.mark.parametrize("payoff,extra", [("european", {}), ("digital", {"cash": 3.0}),
                                          ("asian_arithmetic", {"n_fixings": 12}),
                                          ("barrier", {"barrier": 130.0, "barrier_type": "up_out",
                                                       "monitoring": "continuous"})])
def test_aggregate_se_is_that_of_one_trade_holding_the_sum(payoff, extra):
    split = _trades([dict(trade_id="a", payoff=payoff, quantity=2.0, **extra),
                     dict(trade_id="b", payoff=payoff, quantity=3.0, **extra)])
    whole = _trades([dict(trade_id="ab", payoff=payoff, quantity=5.0, **extra)])
    parts = aggregate(price_portfolio(split, MARKET, n_paths=30_000, seed=2))
    one = price_portfolio(whole, MARKET, n_paths=30_000, seed=2)
    for q in QUANTITIES:
        assert parts.at["X", q] == pytest.approx(one.at["ab", q], rel=1e-12, abs=1e-12)
        if payoff == "asian_arithmetic":
            # totals hold the control at the pilot's coefficient, the row its own fit
            assert parts.at["X", q + "_se"] == pytest.approx(one.at["ab", q + "_se"], rel=0.02)
        else:
            assert parts.at["X", q + "_se"] == pytest.approx(one.at["ab", q + "_se"], rel=1e-9)


def test_aggregates_are_sums_of_rows_and_the_total_adds_errors_in_quadrature():
    trades = _trades([dict(trade_id="c", quantity=4.0),
                      dict(trade_id="p", option_type="put", strike=90.0, quantity=-3.0),
                      dict(trade_id="d", payoff="digital", cash=10.0, maturity=0.5),
                      dict(trade_id="y1", underlying="Y", strike=55.0, quantity=7.0),
                      dict(trade_id="y2", underlying="Y", payoff="asian_geometric",
                           n_fixings=4, strike=45.0, quantity=-2.0)])
    results = price_portfolio(trades, MARKET, n_paths=30_000, seed=3)
    table = aggregate(results)
    assert list(table.index) == ["X", "Y", "total"]
    assert table.at["X", "n_trades"] == 3 and table.at["total", "n_trades"] == 5
    for q in QUANTITIES:
        assert table.at["X", q] == pytest.approx(results.loc[["c", "p", "d"], q].sum(), rel=1e-12)
        if q in ("price", "rho", "theta"):
            assert table.at["total", q] == pytest.approx(results[q].sum(), rel=1e-12)
            assert table.at["total", q + "_se"] == pytest.approx(
                np.hypot(table.at["X", q + "_se"], table.at["Y", q + "_se"]), rel=1e-12)
        else:   # shares (and vol points) of X and of Y do not add
            assert np.isnan(table.at["total", q]) and np.isnan(table.at["total", q + "_se"])
        # correlated rows: the honest SE is not the quadrature sum of row SEs
        assert table.at["X", q + "_se"] != pytest.approx(
            np.sqrt((results.loc[["c", "p", "d"], q + "_se"] ** 2).sum()), rel=1e-3)
    only_total = aggregate(results, by=None)
    assert list(only_total.index) == ["total"]
    assert only_total.at["total", "price"] == table.at["total", "price"]


def test_a_controlled_asian_s_totals_are_the_sums_of_its_rows():
    # A book on one name found by a 2,000-underlying batch (2026-12-08): its rows' gamma summed
    # to 0.83 SE away from its per-path total, because the Asian's control takes the pilot's
    # coefficient in the total and its own fit in the row; aggregate took the rows for edited
    # ones.  The totals now carry the rows' coefficients' shift (underlying._control_shift).
    market = pd.DataFrame({"underlying": ["U"], "model": ["gbm"], "spot": [27.375234308515044],
                           "rate": [0.03], "div_yield": [0.01], "vol": [0.4671624421875863]})
    trades = _trades([
        dict(trade_id="c", underlying="U", strike=25.08),
        dict(trade_id="p", underlying="U", option_type="put", strike=28.94),
        dict(trade_id="d", underlying="U", payoff="digital", strike=25.67, cash=1.0),
        dict(trade_id="a", underlying="U", payoff="asian_arithmetic", strike=29.59,
             n_fixings=12),
        dict(trade_id="b", underlying="U", payoff="barrier", option_type="put", strike=25.31,
             barrier=21.9, barrier_type="down_out", monitoring="continuous")])
    results = price_portfolio(trades, market, n_paths=2000, seed=0)
    for t in results.attrs["totals"]:
        rows = results.loc[t["trades"], t["measure"]].sum()
        assert t["value"] == pytest.approx(rows, rel=1e-12, abs=1e-15)
    table = aggregate(results)
    assert table.at["U", "gamma"] == pytest.approx(results["gamma"].sum(), rel=1e-12)
    # the SE is the per-path total's, within O(1/pilot) of the rows' own fit: the Asian alone
    alone = price_portfolio(trades[trades.trade_id == "a"], market, n_paths=2000, seed=0)
    assert aggregate(alone).at["U", "gamma_se"] == pytest.approx(alone.at["a", "gamma_se"],
                                                                rel=0.02)


def test_aggregate_refuses_filtered_or_foreign_results():
    trades = _trades([dict(trade_id="c"), dict(trade_id="p", option_type="put")])
    results = price_portfolio(trades, MARKET, n_paths=10_000, seed=4)
    with pytest.raises(ValueError, match="lack some"):
        aggregate(results.drop(index="p"))
    changed = results.copy()
    changed.loc["c", "delta"] += 1.0
    with pytest.raises(ValueError, match="no longer matches"):
        aggregate(changed)
    with pytest.raises(ValueError, match="no per-path totals"):
        aggregate(pd.DataFrame(results))  # a bare copy without attrs


# -- greeks: pay for what is asked ------------------------------------------------------------

HESTON = pd.DataFrame({"underlying": ["H"], "model": ["heston"], "spot": [100.0],
                       "rate": [0.02], "div_yield": [0.0], "v0": [0.04], "kappa": [1.5],
                       "vbar": [0.04], "xi": [0.3], "corr": [-0.6]})


@pytest.mark.parametrize("greeks,names", [
    ("none", []), ("delta", ["delta"]), (["vega", "delta"], ["delta", "vega"]),
    ("rho, theta", ["rho", "theta"]), ("all", ["delta", "gamma", "vega", "rho", "theta"])])
def test_only_the_greeks_asked_are_columns_and_they_equal_the_full_run(greeks, names):
    trades = _trades([dict(trade_id="c", quantity=2.0),
                      dict(trade_id="d", payoff="digital", cash=5.0, strike=105.0),
                      dict(trade_id="a", payoff="asian_arithmetic", n_fixings=12)])
    some = price_portfolio(trades, MARKET, n_paths=8192, seed=5, greeks=greeks)
    every = price_portfolio(trades, MARKET, n_paths=8192, seed=5)
    assert list(some.columns) == (["price"] + names + ["price_se"] + [q + "_se" for q in names]
                                  + ["method_" + q for q in names] + ["error", "warning"])
    # the same paths and estimators: what is computed does not depend on what else is
    for q in ["price"] + names:
        assert (some[q] == every[q]).all() and (some[q + "_se"] == every[q + "_se"]).all()


def test_a_gbm_book_has_no_heston_columns_and_a_heston_book_no_vega():
    gbm = price_portfolio(_trades([dict(trade_id="c")]), MARKET, n_paths=4096)
    assert not [c for c in gbm.columns if c.startswith("d_")]
    heston = price_portfolio(_trades([dict(trade_id="h", underlying="H")]), HESTON,
                             n_paths=4096, steps_per_year=12, greeks="delta,vega,d_xi")
    assert [c for c in heston.columns if not c.endswith("_se")][:3] == ["price", "delta", "d_xi"]
    assert "vega" not in heston.columns


def test_a_bad_greek_name_is_an_error_listing_the_valid_ones():
    trades = _trades([dict(trade_id="c")])
    with pytest.raises(InputError, match=r"'detla'.*valid: all, none, or any of delta, gamma"):
        price_portfolio(trades, MARKET, greeks="delta,detla")
    with pytest.raises(InputError, match="gamma, which greeks does not ask"):
        price_portfolio(trades, MARKET, greeks=["delta"], method={"gamma": "lr"})


def test_price_only_skips_the_work_of_the_greeks():
    """greeks="none" runs no Greek estimator: the kernels see only the price slots, so the run
    is the price-only run (no pilot, no tangents; the heavy Heston re-simulations are absent)."""
    trades = _trades([dict(trade_id="h", underlying="H", maturity=2.0)])
    results, notes = price_portfolio(trades, HESTON, n_paths=4096, steps_per_year=12,
                                     greeks="none", diagnostics=True)
    assert list(notes.index.get_level_values("quantity")) == ["price"]
    assert list(results.columns) == ["price", "price_se", "error", "warning"]


def test_heston_price_is_the_same_bits_whatever_greeks_are_asked():
    """The price alone takes the vectorized QE step, a run with scores and tangents the per-path
    one: the same paths either way."""
    trades = _trades([dict(trade_id="h", underlying="H", option_type="put", maturity=1.5),
                      dict(trade_id="b", underlying="H", payoff="barrier", barrier=130.0,
                           barrier_type="up_out", monitoring="continuous")])
    runs = [price_portfolio(trades, HESTON, n_paths=4096, seed=8, steps_per_year=24, greeks=g)
            for g in ("none", "delta,d_xi", "all")]
    for run in runs[1:]:
        assert (run["price"] == runs[0]["price"]).all()
        assert (run["price_se"] == runs[0]["price_se"]).all()
