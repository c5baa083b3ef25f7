"""Correctness of the NumPy baseline engine (``benchmarks/numpy_engine.py``).

Each Monte Carlo number is compared with an independent answer in standard errors:
Black–Scholes closed forms for Europeans, the discrete geometric-average closed form (with its own
analytic Greeks) for geometric Asians, and mcgreeks itself for arithmetic Asians (no closed form;
the two engines use different random numbers, so the test is on the combined SE), with and
without the geometric control variate.  Plus
properties that need no reference: chunking does not change the answer, strikes sharing paths
equal strikes priced one by one, a one-date Asian is a European.

Not collected by the project's test run (``testpaths = tests``); run it with
``python -m pytest benchmarks/test_numpy_engine.py`` — ``python benchmarks/run.py --quick``
runs these same functions first and stops if one fails.
"""
import numpy as np
import pandas as pd
import pytest

import mcgreeks
from mcgreeks.analytic import asian, black_scholes

from benchmarks.numpy_engine import METHODS, QUANTITIES, gbm_mc

MARKET = dict(spot=100.0, maturity=1.0, rate=0.03, vol=0.2, div_yield=0.01)
#: Tolerance in standard errors, as in the project's Monte Carlo tests.
Z = 4.0


def _assert_within(mc, ref, label, se_ref=None):
    for q in QUANTITIES:
        se = mc[q + "_se"] if se_ref is None else np.hypot(mc[q + "_se"], se_ref[q + "_se"])
        z = (mc[q] - ref[q]) / se
        assert abs(z) < Z, f"{label}: {q} = {mc[q]:.6g} vs {ref[q]:.6g}, {z:+.2f} SE"


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("strike", [90.0, 110.0])
def test_european_matches_black_scholes(is_call, strike):
    mc = gbm_mc(payoff="european", strike=strike, is_call=is_call, n_paths=400_000, seed=11,
                **MARKET)
    ref = black_scholes.european(strike=strike, is_call=is_call, **MARKET)
    _assert_within(mc, ref, f"european K={strike} call={is_call}")


@pytest.mark.parametrize("n_fixings", [12, 252])
@pytest.mark.parametrize("is_call", [True, False])
def test_geometric_asian_matches_closed_form(n_fixings, is_call):
    mc = gbm_mc(payoff="asian_geometric", strike=100.0, is_call=is_call, n_fixings=n_fixings,
                n_paths=200_000, seed=12, **MARKET)
    ref = asian.geometric_asian(strike=100.0, is_call=is_call, n_fixings=n_fixings, **MARKET)
    _assert_within(mc, ref, f"geometric asian n={n_fixings} call={is_call}")


def _lr_everywhere():
    return {g: "lr" for g in ("delta", "gamma", "vega", "rho", "theta")}


@pytest.mark.parametrize("is_call", [True, False])
def test_likelihood_ratio_european_matches_black_scholes(is_call):
    mc = gbm_mc(payoff="european", strike=105.0, is_call=is_call, n_paths=400_000, seed=21,
                methods=_lr_everywhere(), **MARKET)
    assert all(mc["method_" + g] == "lr" for g in _lr_everywhere())
    _assert_within(mc, black_scholes.european(strike=105.0, is_call=is_call, **MARKET),
                   f"lr european call={is_call}")


def test_likelihood_ratio_geometric_asian_matches_closed_form():
    mc = gbm_mc(payoff="asian_geometric", strike=100.0, n_fixings=12, n_paths=400_000, seed=22,
                methods=_lr_everywhere(), **MARKET)
    ref = asian.geometric_asian(strike=100.0, n_fixings=12, **MARKET)
    _assert_within(mc, ref, "lr geometric asian")


def test_arithmetic_asian_matches_mcgreeks():
    n_fixings, n_paths = 52, 200_000
    trades = pd.DataFrame({"trade_id": ["A"], "underlying": ["X"],
                           "payoff": ["asian_arithmetic"], "option_type": ["call"],
                           "strike": [100.0], "maturity": [MARKET["maturity"]],
                           "n_fixings": [n_fixings]})
    market = pd.DataFrame({"underlying": ["X"], "model": ["gbm"], "spot": [MARKET["spot"]],
                           "rate": [MARKET["rate"]], "div_yield": [MARKET["div_yield"]],
                           "vol": [MARKET["vol"]]})
    row = mcgreeks.price_portfolio(trades, market, n_paths=n_paths, seed=13,
                                   method=dict(METHODS)).iloc[0]
    chosen = {g: row["method_" + g] for g in ("delta", "gamma", "vega", "rho", "theta")}
    mc = gbm_mc(payoff="asian_arithmetic", strike=100.0, n_fixings=n_fixings, n_paths=n_paths,
                seed=13, methods=chosen, **MARKET)
    assert mc["control"] == "geometric_asian"
    _assert_within(mc, row, "arithmetic asian vs mcgreeks", se_ref=row)


def test_control_variate_agrees_and_reduces_the_error():
    kw = dict(payoff="asian_arithmetic", strike=100.0, n_fixings=52, n_paths=100_000, **MARKET)
    plain = gbm_mc(control_variate=False, seed=19, **kw)
    controlled = gbm_mc(seed=20, **kw)
    assert plain["control"] == "" and controlled["control"] == "geometric_asian"
    _assert_within(controlled, plain, "control variate vs plain", se_ref=plain)
    assert controlled["price_se"] < plain["price_se"] / 10     # the twin is that close
    for q in QUANTITIES:
        assert controlled[q + "_se"] < plain[q + "_se"], q


def test_arithmetic_asian_is_above_geometric():
    kw = dict(strike=100.0, n_fixings=52, n_paths=50_000, seed=14, control_variate=False,
              **MARKET)
    arith = gbm_mc(payoff="asian_arithmetic", **kw)
    geo = gbm_mc(payoff="asian_geometric", **kw)
    assert arith["price"] > geo["price"]      # AM-GM path by path, same paths


def test_one_date_asian_is_european():
    kw = dict(strike=100.0, n_paths=20_000, seed=15, **MARKET)
    euro = gbm_mc(payoff="european", **kw)
    for payoff in ("asian_arithmetic", "asian_geometric"):
        one = gbm_mc(payoff=payoff, n_fixings=1, control_variate=False, **kw)
        for q in QUANTITIES:
            assert one[q] == pytest.approx(euro[q], rel=1e-12, abs=1e-14), (payoff, q)


def test_chunking_does_not_change_the_answer():
    kw = dict(payoff="asian_arithmetic", strike=100.0, n_fixings=24, n_paths=10_000, seed=16,
              **MARKET)
    a = gbm_mc(chunk_paths=1_000, **kw)
    b = gbm_mc(chunk_paths=3_333, **kw)
    for q in QUANTITIES:
        assert a[q] == pytest.approx(b[q], rel=1e-10), q
        assert a[q + "_se"] == pytest.approx(b[q + "_se"], rel=1e-8), q


def test_strikes_share_paths():
    strikes = np.array([90.0, 100.0, 110.0])
    kw = dict(payoff="asian_arithmetic", n_fixings=12, n_paths=10_000, seed=17, **MARKET)
    together = gbm_mc(strike=strikes, **kw)
    for i, k in enumerate(strikes):
        alone = gbm_mc(strike=k, **kw)
        for q in QUANTITIES:
            assert together[q][i] == pytest.approx(alone[q], rel=1e-12), (k, q)


def test_price_only_is_the_same_price():
    kw = dict(payoff="asian_arithmetic", strike=100.0, n_fixings=12, n_paths=10_000, seed=18,
              **MARKET)
    full, price = gbm_mc(**kw), gbm_mc(greeks=False, **kw)
    assert price["price"] == pytest.approx(full["price"], rel=1e-13)
    assert price["price_se"] == pytest.approx(full["price_se"], rel=1e-12)
    assert "delta" not in price


@pytest.mark.parametrize("bad", [dict(payoff="barrier"), dict(spot=-1.0), dict(n_fixings=0),
                                 dict(n_paths=1), dict(methods={"gamma": "pathwise"})])
def test_bad_input_names_the_argument(bad):
    kw = dict(payoff="european", strike=100.0, n_paths=100, **MARKET)
    kw.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        gbm_mc(**kw)
