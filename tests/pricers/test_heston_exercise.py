"""Early exercise under Heston: the American put (a Bermudan at every step of a 52-a-year grid)
by Longstaff-Schwartz with the variance in the basis, against the 2-D finite-difference
solution of ``analytic.american.heston_american_price`` (Craig-Sneyd ADI with Ikonen-Toivanen
splitting; tested in tests/analytic/test_american.py), with the same 52 exercise dates.

Allowances (the price's low bias and the Greeks' policy bias) are measured, not tuned: on this
contract (Feller ratio 1.78) the price sits 0.0-0.2 % from the reference over seeds, and the
pathwise delta holding the fitted policies fixed sits 0.7 % below it (more negative) over 7
runs, 3 of them with 2^20 pilot paths, so a basis effect (1, S/K, (S/K)², European/K, v), not
pilot noise; an independent NumPy Longstaff-Schwartz on the same scheme's paths with that basis
measured 0.2 %, and adding x·v, v² moved it by 0.1 %.  Gamma and d_v0 were within their SEs.
"""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import price_portfolio
from mcgreeks.analytic.american import heston_american_price
from mcgreeks.analytic.heston import heston_european

PARAMS = dict(spot=100.0, rate=0.03, div_yield=0.0, v0=0.04, kappa=2.0, vbar=0.04, xi=0.3,
              corr=-0.7)
STRIKE, MATURITY, STEPS = 100.0, 1.0, 52
PRICE_BIAS = 0.005
ALLOWANCE = {"delta": 0.015, "gamma": 0.1, "d_v0": 0.02}


def _fd(**moved):
    p = {**PARAMS, **moved}
    return heston_american_price(p["spot"], STRIKE, p["rate"], p["div_yield"], p["v0"],
                                 p["kappa"], p["vbar"], p["xi"], p["corr"], MATURITY, "put",
                                 exercise_dates=np.arange(1, STEPS + 1) / STEPS * MATURITY)


@pytest.fixture(scope="module")
def priced():
    trades = pd.DataFrame([
        dict(trade_id="am", underlying="H", payoff="european", option_type="put", strike=STRIKE,
             maturity=MATURITY, exercise="american"),
        dict(trade_id="eu", underlying="H", payoff="european", option_type="put", strike=STRIKE,
             maturity=MATURITY)])
    market = pd.DataFrame([dict(underlying="H", model="heston", **PARAMS)])
    return price_portfolio(trades, market, n_paths=100_000, seed=1, steps_per_year=STEPS,
                           greeks="delta,gamma,d_v0", upper_bound=True)


def test_american_put_under_heston_against_2d_finite_differences(priced):
    row = priced.loc["am"]
    h_s, h_v = 1.0, 0.05 * PARAMS["v0"]
    price, up, down = _fd(), _fd(spot=PARAMS["spot"] + h_s), _fd(spot=PARAMS["spot"] - h_s)
    ref = {"delta": (up - down) / (2 * h_s), "gamma": (up - 2 * price + down) / h_s ** 2,
           "d_v0": (_fd(v0=PARAMS["v0"] + h_v) - _fd(v0=PARAMS["v0"] - h_v)) / (2 * h_v)}
    assert row["price_se"] < 0.006 * price
    assert row["price"] < price + 4 * row["price_se"]
    assert row["price"] > price * (1 - PRICE_BIAS) - 4 * row["price_se"]
    # the dual bound (the discretized model's) above the reference, within 1 %
    assert price - 4 * row["upper_bound_se"] < row["upper_bound"] < \
        price * 1.01 + 4 * row["upper_bound_se"]
    for g, allowance in ALLOWANCE.items():
        assert abs(row[g] - ref[g]) < 4 * row[g + "_se"] + allowance * abs(ref[g]), \
            (g, row[g], row[g + "_se"], ref[g])
    assert (row["method_delta"], row["method_gamma"], row["method_d_v0"]) == \
        ("pathwise", "mixed", "pathwise")


def test_the_european_beside_it_is_heston_s_closed_form_and_worth_less(priced):
    """The same book's European put: the closed form within 4 SE (the exercise code leaves
    it alone), and below the American by far more than their SEs."""
    eu = priced.loc["eu"]
    ref = heston_european(spot=PARAMS["spot"], strike=STRIKE, maturity=MATURITY,
                          rate=PARAMS["rate"], v0=PARAMS["v0"], kappa=PARAMS["kappa"],
                          vbar=PARAMS["vbar"], xi=PARAMS["xi"], corr=PARAMS["corr"],
                          is_call=False)
    assert abs(eu["price"] - ref["price"]) < 4 * eu["price_se"]
    assert abs(eu["delta"] - ref["delta"]) < 4 * eu["delta_se"]
    assert priced.loc["am", "price"] - eu["price"] > 4 * np.hypot(eu["price_se"],
                                                                  priced.loc["am", "price_se"])
