"""The kernels' trade inputs (``mcgreeks.kernel_inputs``): what the arrays hold, checked against
the trades they are built from (the dates of docs/reference.md#payoffs recomputed here), not
the order of any kernel's arguments."""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.kernel_inputs import no_totals, number_slots, trade_arrays
from mcgreeks.validation import check_market, check_trades

MARKET = pd.DataFrame([dict(underlying="X", model="gbm", spot=100.0, rate=0.03, div_yield=0.0,
                            vol=0.2)])

#: One trade of every kind, several sharing dates (1.0; 0.5 = 1/2 of 1.0 = 3/6 of 1.0 = 2/4
#: of 1.0) and some not (1.5/4 and 2.0/3 dates).
TRADES = pd.DataFrame([
    dict(trade_id="eu", payoff="european", option_type="call", strike=100.0, maturity=1.0),
    dict(trade_id="dig", payoff="digital", option_type="put", strike=95.0, maturity=0.5,
         cash=7.0),
    dict(trade_id="aa", payoff="asian_arithmetic", option_type="call", strike=101.0,
         maturity=1.0, n_fixings=4),
    dict(trade_id="ag", payoff="asian_geometric", option_type="put", strike=99.0, maturity=1.5,
         n_fixings=4),
    dict(trade_id="uo", payoff="barrier", option_type="call", strike=100.0, maturity=1.0,
         barrier=120.0, barrier_type="up_out", n_fixings=6),
    dict(trade_id="di", payoff="barrier", option_type="put", strike=100.0, maturity=2.0,
         barrier=80.0, barrier_type="down_in", n_fixings=3),
    dict(trade_id="cont", payoff="barrier", option_type="call", strike=100.0, maturity=0.75,
         barrier=85.0, barrier_type="down_out", monitoring="continuous"),
    dict(trade_id="ui", payoff="barrier", option_type="put", strike=100.0, maturity=1.0,
         barrier=115.0, barrier_type="up_in", n_fixings=2),
    dict(trade_id="lb", payoff="lookback", option_type="put", strike=90.0, maturity=1.0,
         n_fixings=2),
]).assign(underlying="X")

#: What each trade's columns must say: (kind, down, knock_in, continuous, omega, level).
EXPECTED = {"eu": (P.EUROPEAN, 0, 0, 0, 1.0, 1.0), "dig": (P.DIGITAL, 0, 0, 0, -1.0, 1.0),
            "aa": (P.ASIAN_ARITHMETIC, 0, 0, 0, 1.0, 1.0),
            "ag": (P.ASIAN_GEOMETRIC, 0, 0, 0, -1.0, 1.0),
            "uo": (P.BARRIER, 0, 0, 0, 1.0, 120.0), "di": (P.BARRIER, 1, 1, 0, -1.0, 80.0),
            "cont": (P.BARRIER, 1, 0, 1, 1.0, 85.0), "ui": (P.BARRIER, 0, 1, 0, -1.0, 115.0),
            "lb": (P.LOOKBACK, 0, 0, 0, -1.0, 1.0)}


def records(trades=TRADES, control=("aa",)):
    params, _, market_problems = check_market(MARKET)
    assert not any(market_problems)
    out, problems = check_trades(trades, params)
    assert not any(problems), problems
    return [dict(r, control=r["trade_id"] in control) for r in out]


def dates(r):
    """The trade's payoff dates: i·T/n, i = 1..n, for an Asian, a lookback and a discrete
    barrier; T alone for the others."""
    if r["payoff"] in ("asian_arithmetic", "asian_geometric", "lookback") or (
            r["payoff"] == "barrier" and r.get("monitoring") != "continuous"):
        n = r["n_fixings"]
        return [i * r["maturity"] / n for i in range(1, n + 1)]
    return [r["maturity"]]


def test_the_grid_is_the_sorted_union_of_every_trades_dates():
    recs = records()
    grid, ti, tf, fix_idx = trade_arrays(recs)
    union = sorted({t for r in recs for t in dates(r)})
    assert grid.tolist() == union
    assert grid.dtype == np.float64 and np.all(np.diff(grid) > 0)


def test_each_trade_reads_its_own_dates_through_fix_idx():
    recs = records()
    grid, ti, tf, fix_idx = trade_arrays(recs)
    assert fix_idx.dtype == np.int64
    offset = 0
    for j, r in enumerate(recs):
        n = len(dates(r))
        assert (ti[j, P.FIX_OFF], ti[j, P.FIX_N]) == (offset, n), r["trade_id"]
        assert grid[fix_idx[offset:offset + n]].tolist() == dates(r), r["trade_id"]
        offset += n
    assert fix_idx.size == offset


def test_the_columns_are_as_documented():
    recs = records()
    grid, ti, tf, fix_idx = trade_arrays(recs)
    assert ti.shape == (len(recs), P.N_INT_COLUMNS) and ti.dtype == np.int64
    assert tf.shape == (len(recs), P.N_FLOAT_COLUMNS) and tf.dtype == np.float64
    for j, r in enumerate(recs):
        kind, down, knock_in, continuous, omega, level = EXPECTED[r["trade_id"]]
        assert [ti[j, c] for c in (P.KIND, P.DOWN, P.KNOCK_IN, P.CONTINUOUS, P.CONTROL)] == [
            kind, down, knock_in, continuous, r["trade_id"] == "aa"], r["trade_id"]
        assert [tf[j, c] for c in (P.OMEGA, P.STRIKE, P.CASH, P.LEVEL, P.MATURITY)] == [
            omega, r["strike"], 7.0 if r["trade_id"] == "dig" else 1.0, level,
            r["maturity"]], r["trade_id"]


def test_a_trade_without_a_barrier_gets_level_one():
    """Not 0: the kernels' log of the level must stay finite (and off libm's slow path)."""
    recs = records()
    _, ti, tf, _ = trade_arrays(recs)
    no_barrier = ti[:, P.KIND] != P.BARRIER
    assert no_barrier.sum() == 5
    assert (tf[no_barrier, P.LEVEL] == 1.0).all()


def test_one_trade_and_input_order():
    """A single European: a one-date grid; the order of the trades is the order of the rows."""
    recs = records(TRADES.iloc[[0]])
    grid, ti, tf, fix_idx = trade_arrays(recs)
    assert grid.tolist() == [1.0] and fix_idx.tolist() == [0]
    assert ti[0, P.FIX_OFF] == 0 and ti[0, P.FIX_N] == 1
    reversed_recs = records(TRADES.iloc[::-1])
    _, ti_rev, tf_rev, _ = trade_arrays(reversed_recs)
    _, ti_fwd, tf_fwd, _ = trade_arrays(records())
    np.testing.assert_array_equal(tf_rev, tf_fwd[::-1])
    np.testing.assert_array_equal(ti_rev[:, P.KIND], ti_fwd[::-1, P.KIND])


def test_number_slots_numbers_the_wanted_estimates_in_order():
    wanted = [(0, G.PRICE, 0), (1, G.PRICE, 0), (0, G.DELTA, G.OPTIMAL), (1, G.VEGA, G.LR),
              (0, G.DELTA, G.FD), (1, G.D_CORR, G.PATHWISE)]
    slots = number_slots(wanted, 3)
    assert slots.shape == (3, G.N_QUANTITIES, G.N_ESTIMATORS) and slots.dtype == np.int64
    expected = np.full(slots.shape, -1)
    for k, (j, g, e) in enumerate(wanted):
        expected[j, g, e] = k
    np.testing.assert_array_equal(slots, expected)
    assert (slots[2] == -1).all()
    assert (number_slots([], 2) == -1).all()


@pytest.mark.parametrize("n_trades", [1, 4])
def test_no_totals_asks_for_none(n_trades):
    """No trade's estimator enters a total (-1), zero weights, and no slot for them (-1)."""
    t = no_totals(n_trades)
    estimator, weights, base = t.estimator, t.weights, t.base
    assert estimator.shape == (n_trades, G.N_QUANTITIES) and (estimator == -1).all()
    assert weights.shape == (n_trades, G.N_QUANTITIES, 3) and (weights == 0).all()
    assert base == -1
