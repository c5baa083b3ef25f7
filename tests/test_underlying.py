"""One underlying's pricing phases (``mcgreeks.underlying``) directly: the pilot's decision and
its diagnostic line, the main run's slots, the per-path totals' weights and the control
variate's means (against ``analytic.asian.geometric_asian`` and its own difference quotients,
written here), and ``price`` on a job built as ``price_portfolio`` builds it.  The pilot's tail
rule and the Feller band are in tests/pricers/test_heston_feller.py."""
import numpy as np
import pandas as pd

import mcgreeks
from mcgreeks import greeks as G
from mcgreeks import underlying
from mcgreeks.analytic.asian import geometric_asian
from mcgreeks.estimators.selection import choices, method_plan
from mcgreeks.models import MODELS
from mcgreeks.underlying import Job, decide
from mcgreeks.validation import check_market, check_trades

LIMIT = underlying.PILOT_TAIL_LIMIT
PW, LR, FD, MIXED = G.PATHWISE, G.LR, G.FD, G.MIXED

MARKET = pd.DataFrame([dict(underlying="X", model="gbm", spot=100.0, rate=0.03, div_yield=0.01,
                            vol=0.25)])
TRADES = pd.DataFrame([
    dict(trade_id="A", payoff="asian_arithmetic", option_type="put", strike=102.0, maturity=1.5,
         n_fixings=6, quantity=3.0),
    dict(trade_id="E", payoff="european", option_type="call", strike=95.0, maturity=0.5,
         quantity=-2.0),
    dict(trade_id="D", payoff="digital", option_type="call", strike=105.0, maturity=1.0,
         cash=10.0)]).assign(underlying="X")


def clean(trades=TRADES, market=MARKET):
    params, _, problems = check_market(market)
    assert not any(problems)
    records, problems = check_trades(trades, params)
    assert not any(problems), problems
    return params, records


def job(picks=None, trades=TRADES, market=MARKET, **options):
    """A Job on the first underlying with explicit choices (default: one Greek each)."""
    params, records = clean(trades, market)
    name = records[0]["underlying"]
    picks = picks or [{G.DELTA: G.OPTIMAL} for _ in records]
    model = params[name]["model"]
    return Job(name, params[name], records, picks, seed=1, n_paths=1 << 13,
               bumps=MODELS[model].bump_sizes(), **options)


# -- the pilot's decision --------------------------------------------------------------------------

def test_ties_keep_the_preference_order():
    se = {PW: 0.2, LR: 0.2, FD: 0.2}
    trusted = dict.fromkeys(se, 0.0)
    assert decide((PW, LR), se, trusted) == PW
    assert decide((LR, PW), se, trusted) == LR
    assert decide((MIXED, LR), {MIXED: 0.3, LR: 0.3}, {MIXED: 1.0, LR: 1.0}) == MIXED


def test_a_trusted_candidate_beats_any_untrusted_one():
    se = {PW: 0.1, LR: 0.5, FD: 0.9}
    assert decide((PW, LR, FD), se, {PW: 1.0, LR: 0.01, FD: 0.01}) == LR
    assert decide((PW, LR, FD), se, {PW: 1.0, LR: 1.0, FD: 0.01}) == FD
    # the limit itself passes
    assert decide((PW, FD), {PW: 0.1, FD: 0.9}, {PW: LIMIT, FD: 0.0}) == PW
    assert decide((PW, FD), {PW: 0.1, FD: 0.9},
                  {PW: np.nextafter(LIMIT, 1.0), FD: 0.0}) == FD


def test_none_trusted_takes_fd_if_offered_else_the_lowest_se():
    untrusted = {PW: 1.0, LR: 0.5, FD: 0.3}
    assert decide((PW, LR, FD), {PW: 0.1, LR: 0.2, FD: 0.9}, untrusted) == FD
    assert decide((PW, LR), {PW: 0.1, LR: 0.2}, untrusted) == PW
    assert decide((MIXED, LR), {MIXED: 0.4, LR: 0.2}, {MIXED: 0.5, LR: 0.5}) == LR


def test_the_reason_line_says_what_the_pilot_measured():
    line = underlying._reason("4,096 paths", (PW, LR, FD), {PW: 0.01234, LR: 0.5, FD: 0.25},
                              {PW: 0.35, LR: 0.02, FD: LIMIT}, FD)
    assert line == ("auto on a pilot of 4,096 paths: pathwise SE 0.0123 (failed the tail test: "
                    "SE uncertain by 35%), lr SE 0.5, fd SE 0.25; took fd")


# -- the job ---------------------------------------------------------------------------------------

def test_wanted_lists_every_price_then_each_trades_choices():
    picks = [{G.DELTA: G.OPTIMAL, G.GAMMA: G.FD}, {}, {G.VEGA: G.LR, G.DELTA: G.VIBRATO}]
    j = job(picks)
    assert j.wanted() == [(0, G.PRICE, 0), (1, G.PRICE, 0), (2, G.PRICE, 0),
                          (0, G.DELTA, G.OPTIMAL), (0, G.GAMMA, G.FD),
                          (2, G.VEGA, G.LR), (2, G.DELTA, G.VIBRATO)]
    # then one per-path total per quantity some trade asks for, in the order of QUANTITIES
    assert [key[0] for key in j.total_keys] == ["price", "delta", "gamma", "vega"]
    assert j.n_slots == 7 + 4


def test_only_an_arithmetic_asian_under_gbm_takes_the_control():
    assert [r["control"] for r in job().records] == [True, False, False]
    assert [r["control"] for r in job(control_variate=False).records] == [False] * 3
    heston = pd.DataFrame([dict(underlying="X", model="heston", spot=100.0, rate=0.03,
                                v0=0.04, kappa=1.5, vbar=0.04, xi=0.5, corr=-0.7)])
    assert [r["control"] for r in job(market=heston).records] == [False] * 3


def control_args(r, params=MARKET.iloc[0]):
    return dict(spot=params.spot, strike=r["strike"], maturity=r["maturity"], rate=params.rate,
                vol=params.vol, div_yield=params.div_yield, n_fixings=r["n_fixings"],
                is_call=r["option_type"] == "call")


def fd_quotient(args, g, sizes):
    """The closed form's own central difference quotient with fd's documented sizes (spot and vol
    relative, rate absolute, maturity relative; theta = -∂/∂T; gamma the second difference)."""
    name, size = {G.DELTA: ("spot", 0.01), G.GAMMA: ("spot", 0.01), G.VEGA: ("vol", 0.01),
                  G.RHO: ("rate", 0.001), G.THETA: ("maturity", 0.01)}[g]
    assert sizes[("spot", "vol", "rate", "maturity").index(name)] == size
    h = size if name == "rate" else size * args[name]

    def price(x):
        return geometric_asian(**dict(args, **{name: x}))["price"]

    x = args[name]
    if g == G.GAMMA:
        return (price(x + h) - 2 * price(x) + price(x - h)) / h ** 2
    return (price(x + h) - price(x - h)) / (2 * h) * (-1.0 if g == G.THETA else 1.0)


def test_control_means_are_the_geometric_twins_closed_form():
    """E[x] of the control: the geometric Asian's price and Greeks, or for fd the same
    difference quotient of its price; NaN for a trade without a control."""
    j = job()
    wanted = [(0, g, e) for g in range(6) for e in (G.OPTIMAL, G.FD) if g or e == G.OPTIMAL]
    wanted += [(1, G.PRICE, 0), (1, G.DELTA, G.FD), (2, G.DELTA, G.LR)]
    means = underlying._control_means(j, wanted)
    args = control_args(j.records[0])
    exact = geometric_asian(**args)
    for k, (t, g, e) in enumerate(wanted):
        if t != 0:
            assert np.isnan(means[k])
        elif e == G.FD:
            np.testing.assert_allclose(means[k], fd_quotient(args, g, j.bumps), rtol=1e-12)
            # ... which is the Greek up to the quotient's O(h²) bias
            np.testing.assert_allclose(means[k], exact[G.QUANTITIES[g]], rtol=2e-3)
        else:
            assert means[k] == exact[G.QUANTITIES[g]]


def test_totals_weights_are_quantity_and_the_pilots_control_coefficient():
    """Per path the total adds q·y - q·β·x + q·β·E[x]: each trade's chosen estimate y at its
    position, its control x at the pilot's coefficient β around the control's mean (mean zero,
    so the total's expectation is untouched); (q, 0, 0) without a control; -1 where no estimate
    enters."""
    picks = [{G.DELTA: G.OPTIMAL, G.GAMMA: G.FD}, {G.VEGA: G.LR}, {G.DELTA: G.LR}]
    j = job(picks)
    j.pilot_beta = {(0, G.PRICE, 0): 0.9, (0, G.DELTA, G.OPTIMAL): 0.7, (0, G.GAMMA, G.FD): -0.4,
                    (1, G.VEGA, G.LR): 5.0}          # the last ignored: E has no control
    wanted = j.wanted()
    agg_e, agg_w = underlying.totals_weights(j, wanted)
    assert agg_e.shape == (3, G.N_QUANTITIES) and agg_w.shape == (3, G.N_QUANTITIES, 3)
    args = control_args(j.records[0])
    exact = geometric_asian(**args)
    expected_w = np.zeros((3, G.N_QUANTITIES, 3))
    expected_e = np.full((3, G.N_QUANTITIES), -1)
    for t, g, e in wanted:
        expected_e[t, g] = e
    expected_w[0, G.PRICE] = (3.0, 3.0 * 0.9, 3.0 * 0.9 * exact["price"])
    expected_w[0, G.DELTA] = (3.0, 3.0 * 0.7, 3.0 * 0.7 * exact["delta"])
    expected_w[0, G.GAMMA] = (3.0, 3.0 * -0.4, 3.0 * -0.4 * fd_quotient(args, G.GAMMA, j.bumps))
    expected_w[1, G.PRICE] = expected_w[1, G.VEGA] = (-2.0, 0.0, 0.0)
    expected_w[2, G.PRICE] = expected_w[2, G.DELTA] = (1.0, 0.0, 0.0)
    np.testing.assert_array_equal(agg_e, expected_e)
    np.testing.assert_allclose(agg_w, expected_w, rtol=1e-12)


# -- price -----------------------------------------------------------------------------------------

def test_price_of_a_job_is_price_portfolio_to_the_bit():
    """``price`` on a Job built as ``price_portfolio`` builds it (validated records, auto
    choices, the model's default bumps) gives the same numbers, methods and totals."""
    params, records = clean()
    p = params["X"]
    plan = method_plan("auto")
    picks = [choices(r, plan, "gbm", p) for r in records]
    j = Job("X", p, records, picks, seed=7, n_paths=1 << 13, bumps=MODELS["gbm"].bump_sizes())
    rows, _, totals = underlying.price(j)
    table = mcgreeks.price_portfolio(TRADES, MARKET, n_paths=1 << 13, seed=7)
    assert table.attrs["totals"] == totals
    for r, row in zip(records, rows):
        for column, value in row.items():
            if column != "warning":
                assert table.at[r["trade_id"], column] == value, (r["trade_id"], column)
    assert table.loc["A", "method_delta"] == "optimal"
    assert np.isfinite(table.loc["A", "price"]) and table.loc["A", "price_se"] > 0


# --- Heston moment explosion (models.heston.moment_explosion_time) ----------------------------

# kappa 1, xi 1, corr 0.5: E[S_T^2] is infinite from T = 2.2214 y (tests/models/
# test_heston_moments.py checks the time against the Riccati equation integrated numerically)
EXPLOSIVE = dict(model="heston", spot=100.0, rate=0.02, div_yield=0.0, v0=0.04, kappa=1.0,
                 vbar=0.04, xi=1.0, corr=0.5)


def _explosion_book():
    market = pd.DataFrame([dict(underlying="HX", **EXPLOSIVE),
                           dict(underlying="G", model="gbm", spot=100.0, rate=0.02,
                                div_yield=0.0, vol=0.2)])
    rows = [("C3", "HX", "european", "call", 3.0, {}),
            ("P3", "HX", "european", "put", 3.0, {}),
            ("C2", "HX", "european", "call", 2.0, {}),
            ("D3", "HX", "digital", "call", 3.0, {"cash": 1.0}),
            ("A3", "HX", "asian_arithmetic", "call", 3.0, {"n_fixings": 12}),
            ("UO3", "HX", "barrier", "call", 3.0, {"barrier": 150.0, "barrier_type": "up_out",
                                                    "monitoring": "continuous"}),
            ("DO3", "HX", "barrier", "call", 3.0, {"barrier": 60.0, "barrier_type": "down_out",
                                                   "monitoring": "continuous"}),
            ("B3", "HX;G", "basket", "call", 3.0, {"weights": "0.5;0.5"}),
            ("BS3", "HX;G", "basket", "call", 3.0, {"weights": "-0.5;1"}),
            ("W3", "HX;G", "worst_of", "call", 3.0, {}),
            ("S3", "G;HX", "spread", "put", 3.0, {})]
    trades = pd.DataFrame([dict(trade_id=t, underlying=u, payoff=p, option_type=o, strike=100.0,
                                maturity=m, **extra) for t, u, p, o, m, extra in rows])
    correlations = pd.DataFrame([dict(underlying_1="HX", underlying_2="G", corr=0.3)])
    return trades, market, correlations


def test_a_payoff_growing_with_an_exploding_heston_spot_is_warned_about():
    """Every trade whose payoff grows like HX's spot, with a maturity past HX's explosion time,
    and no other: a put, a digital, an up-and-out call, a call before 2.22 y, a basket with a
    negative weight on HX, a call on the worst of HX and a GBM name are bounded in HX's spot (or
    have E[S_T^2] finite), and a put on a spread G - HX grows with HX."""
    trades, market, correlations = _explosion_book()
    out = mcgreeks.price_portfolio(trades, market, correlations=correlations, n_paths=2048,
                                   greeks="none")
    warned = {t for t, w in out["warning"].items() if "E[S_T^2]" in w}
    assert warned == {"C3", "A3", "DO3", "B3", "S3"}
    assert out.loc["C3", "warning"].startswith(
        "every _se meaningless: E[S_T^2] is infinite from T = 2.22 y (Heston moment explosion")
    assert "price the put and use parity" in out.loc["C3", "warning"]
    assert "E[S_T^2] of HX is infinite" in out.loc["B3", "warning"]


def test_unbounded_legs_follow_the_payoff_table():
    def legs(payoff, option_type, weights=None, barrier_type=None):
        record = dict(payoff=payoff, option_type=option_type, asset=1,
                      barrier_type=barrier_type)
        if weights is not None:
            record.update(legs=(3, 5), weights=weights)
        return underlying._unbounded_legs(record)
    assert legs("european", "call") == ([1], False)
    assert legs("lookback", "call") == ([1], False)
    assert legs("european", "put") == ([], False)
    assert legs("digital", "call") == ([], False)
    assert legs("barrier", "call", barrier_type="up_out") == ([], False)
    assert legs("barrier", "call", barrier_type="up_in") == ([1], False)
    assert legs("basket", "call", (1.0, -1.0)) == ([3], False)
    assert legs("basket", "put", (1.0, -1.0)) == ([5], False)
    assert legs("spread", "call", (1.0, 1.0)) == ([3], False)
    assert legs("spread", "put", (1.0, 1.0)) == ([5], False)
    assert legs("best_of", "call", (1.0, 1.0)) == ([3, 5], False)
    assert legs("worst_of", "call", (1.0, 1.0)) == ([3, 5], True)
    assert legs("worst_of", "call", (1.0, -1.0)) == ([], True)
    assert legs("best_of", "put", (1.0, 1.0)) == ([], True)
    assert legs("worst_of", "put", (1.0, 1.0)) == ([], False)
