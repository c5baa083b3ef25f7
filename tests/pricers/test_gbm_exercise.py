"""Early exercise under GBM (``exercise_policy`` in ``pricers.gbm``): Longstaff-Schwartz prices and
Greeks of Bermudan and American vanillas through ``price_portfolio``, against the finite-difference
references of ``analytic.american`` (themselves tested against published values in
tests/analytic/test_american.py).

What is compared with what, and the allowances:
- the price is the value of fixed policies fitted on pilots of their own stream, so it is
  low-biased: it must lie within 4 SE below the reference plus the policies' low bias, at most
  ``PRICE_BIAS`` = 0.5 % of the price (the issue's aim at 100k paths; measured -0.01 % on the LS
  put and -0.16 % on the dividend call, means over 12 and 8 seeds), and never above it beyond
  4 SE;
- the Greeks hold each fitted policy fixed (pathwise: the stopping date is locally constant;
  mixed gamma).  At the optimal policy that is the American Greek (smooth pasting); a fitted
  policy's boundary is off by its regression noise, which moves the Greeks to first order.  That
  noise is in their SEs: the main paths are split among independent policies and the SE is
  their estimates' spread (``underlying._policy_spread``).  Measured over 12 seeds on the LS put
  (200k paths, 8 policies): relative errors with means 0.09 % (delta), 0.1 % (vega), -0.17 %
  (rho), 0.01 % (theta), 1.5 ± 1.0 % (gamma), all consistent with 0, and z-scores with std
  1.2-1.3 (t with 7 degrees of freedom: 1.18) and 1.55 (gamma).  ``GREEK_ALLOWANCE`` bounds a
  systematic part at about three times those means' own uncertainty; the slow seed study
  checks the calibration.
"""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import engine, price_portfolio
from mcgreeks.analytic.american import american_greeks, american_price
from mcgreeks.validation import InputError

PRICE_BIAS = 0.005
GREEK_ALLOWANCE = {"delta": 0.005, "gamma": 0.03, "vega": 0.005, "rho": 0.01, "theta": 0.005}
GREEKS = tuple(GREEK_ALLOWANCE)


def _book(spot, strike, rate, div, vol, maturity, option_type, exercise, n_exercise=None):
    trade = dict(trade_id="t", underlying="X", payoff="european", option_type=option_type,
                 strike=strike, maturity=maturity, exercise=exercise)
    if n_exercise is not None:
        trade["n_exercise"] = n_exercise
    market = dict(underlying="X", model="gbm", spot=spot, rate=rate, div_yield=div, vol=vol)
    return pd.DataFrame([trade]), pd.DataFrame([market])


def _reference(spot, strike, rate, div, vol, maturity, option_type, dates):
    """Price and Greeks of the FD reference; theta with the exercise dates scaled with T, as the
    engine's theta (docs/reference.md: a maturity bump scales the whole schedule)."""
    ref = american_greeks(spot, strike, rate, div, vol, maturity, option_type,
                          exercise_dates=dates)
    if dates is not None:
        h = 1e-3
        moved = [american_price(spot, strike, rate, div, vol, maturity * c, option_type,
                                exercise_dates=np.asarray(dates) * c) for c in (1 + h, 1 - h)]
        ref["theta"] = -(moved[0] - moved[1]) / (2 * h * maturity)
    return ref


def _check_price(row, ref):
    price, se = row["price"], row["price_se"]
    assert se < 0.005 * ref["price"]            # small enough for the allowance to mean something
    assert price < ref["price"] + 4 * se        # a fixed policy's value: never above the option's
    assert price > ref["price"] * (1 - PRICE_BIAS) - 4 * se


def _check_greeks(row, ref, greeks=GREEKS):
    for g in greeks:
        err = abs(row[g] - ref[g])
        assert err < 4 * row[g + "_se"] + GREEK_ALLOWANCE[g] * abs(ref[g]), (g, row[g], ref[g])


# Longstaff & Schwartz (2001), Table 1: S = 36, K = 40, r = 6 %, σ = 20 %, T = 1, exercisable 50
# times a year; their finite-difference value 4.478 (a Bermudan: analytic.american reproduces it).
LS_PUT = (36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put")


@pytest.fixture(scope="module")
def ls_put():
    trades, market = _book(*LS_PUT, "bermudan", 50)
    res, diag = price_portfolio(trades, market, n_paths=100_000, seed=3, diagnostics=True)
    return res.iloc[0], diag


def test_ls_bermudan_put_price_and_greeks_against_finite_differences(ls_put):
    row, _ = ls_put
    ref = _reference(*LS_PUT, np.arange(1, 51) / 50)
    assert abs(ref["price"] - 4.478) < 1e-3
    _check_price(row, ref)
    _check_greeks(row, ref)
    assert (row["method_delta"], row["method_gamma"]) == ("pathwise", "mixed")


def test_the_policy_and_its_basis_are_reported(ls_put):
    _, diag = ls_put
    reason = diag.reset_index().set_index("quantity").loc["price", "reason"]
    assert "Longstaff-Schwartz on 50 exercise dates" in reason
    assert "basis 1, S/K, (S/K)^2, european/K" in reason
    assert "6 policies, each on 43,690 pilot paths" in reason


def test_bermudan_put_with_four_dates():
    case = (100.0, 100.0, 0.05, 0.0, 0.3, 1.0, "put")
    trades, market = _book(*case, "bermudan", 4)
    row = price_portfolio(trades, market, n_paths=100_000, seed=5).iloc[0]
    ref = _reference(*case, np.arange(1, 5) / 4)
    _check_price(row, ref)
    _check_greeks(row, ref)


def test_pilot_paths_sets_the_pilot_and_is_checked():
    case = (100.0, 100.0, 0.05, 0.0, 0.3, 1.0, "put")
    trades, market = _book(*case, "bermudan", 4)
    res, diag = price_portfolio(trades, market, n_paths=100_000, seed=5, pilot_paths=48_000,
                                greeks="none", diagnostics=True)
    reason = diag.reset_index().set_index("quantity").loc["price", "reason"]
    assert "6 policies, each on 8,000 pilot paths" in reason
    _check_price(res.iloc[0], _reference(*case, np.arange(1, 5) / 4))
    with pytest.raises(InputError, match="pilot_paths has value 100: must be a whole number"):
        price_portfolio(trades, market, n_paths=1000, pilot_paths=100)


@pytest.mark.parametrize("case", [
    (36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put"),
    (100.0, 100.0, 0.03, 0.07, 0.25, 1.0, "call"),     # early exercise for the dividend
])
def test_american_against_the_continuous_american(case):
    """``american`` is the Bermudan at every grid step (steps_per_year, here 200): its value is
    below the continuous American's by that Bermudan's gap (measured with the FD reference,
    0.05 % and 0.03 % at 200 dates) and the policy's low bias, within PRICE_BIAS together."""
    trades, market = _book(*case, "american")
    row = price_portfolio(trades, market, n_paths=200_000, seed=7, steps_per_year=200,
                          greeks="delta,gamma,vega").iloc[0]
    american = american_greeks(*case)
    bermudan = american_price(*case, exercise_dates=np.arange(1, 201) / 200)
    assert american["price"] - bermudan < 0.001 * american["price"]
    _check_price(row, american)
    _check_greeks(row, american, ("delta", "gamma", "vega"))


def test_an_exercisable_option_is_worth_at_least_its_european():
    trades, market = _book(*LS_PUT, "bermudan", 10)
    both = pd.concat([trades, trades.assign(trade_id="e", exercise="european")])
    res = price_portfolio(both, market, n_paths=20_000, seed=1, greeks="none")
    assert res.loc["t", "price"] > res.loc["e", "price"] + 4 * res.loc["t", "price_se"]


def test_lr_and_fd_are_offered_optimal_is_not():
    trades, market = _book(*LS_PUT, "bermudan", 4)
    lr = price_portfolio(trades, market, n_paths=20_000, seed=2, method="lr",
                         greeks="delta,rho").iloc[0]
    fd = price_portfolio(trades, market, n_paths=20_000, seed=2, method="fd",
                         greeks="delta,rho").iloc[0]
    ref = _reference(*LS_PUT, np.arange(1, 5) / 4)
    for row in (lr, fd):
        _check_greeks(row, ref, ("delta", "rho"))
    with pytest.raises(InputError, match="optimal blend is not offered for early exercise"):
        price_portfolio(trades, market, n_paths=1000, method="optimal")


def test_same_bits_on_any_chunking():
    trades, market = _book(*LS_PUT, "american")
    kw = dict(n_paths=2 * engine.SEGMENT + 77, seed=11)    # two policies
    one = price_portfolio(trades, market, **kw)
    many = price_portfolio(trades, market, chunk_paths=1024, block_paths=256, **kw)
    pd.testing.assert_frame_equal(one, many, check_exact=True)


@pytest.mark.parametrize("change, match", [
    (dict(exercise="bermudan"), "'n_exercise' has value empty: required for a bermudan"),
    (dict(exercise="bermudan", n_exercise=0), "'n_exercise' has value 0: must be >= 1"),
    (dict(exercise="bermudan", n_exercise=2.5), "'n_exercise' has value 2.5: must be a whole"),
    (dict(exercise="sometimes"), "'exercise' has value 'sometimes': must be one of european"),
    (dict(exercise="american", payoff="asian_arithmetic", n_fixings=4),
     "'exercise' has value 'american': early exercise is offered for european, basket, "
     "best_of, worst_of, spread payoffs, not asian_arithmetic"),
])
def test_bad_exercise_input_is_a_one_line_error_naming_trade_column_value(change, match):
    trades, market = _book(*LS_PUT, "european")
    trades = trades.assign(**{"n_exercise": np.nan, **{k: [v] for k, v in change.items()}})
    with pytest.raises(InputError) as error:
        price_portfolio(trades, market, n_paths=1000)
    assert str(error.value).startswith(f"trade 't': column {match}")
    assert "\n" not in str(error.value)



@pytest.mark.slow
def test_greek_errors_over_seeds_are_calibrated_by_their_policy_spread_ses():
    """Over 12 seeds (pilots and main paths), the z-scores of delta, gamma, vega and rho against
    the reference have mean about 0 and std about 1: the SEs carry the policies' noise.  With 6
    policies (100k paths) each SE has 5 degrees of freedom, so the z-scores are t-like (std
    1.29); the bounds allow that and the noise of 12 draws."""
    trades, market = _book(*LS_PUT, "bermudan", 50)
    ref = _reference(*LS_PUT, np.arange(1, 51) / 50)
    z = np.array([[(row[g] - ref[g]) / row[g + "_se"] for g in ("delta", "gamma", "vega", "rho")]
                  for row in (price_portfolio(trades, market, n_paths=100_000, seed=100 + s,
                                              greeks="delta,gamma,vega,rho").iloc[0]
                              for s in range(12))])
    assert np.all(np.abs(z.mean(axis=0)) < 0.9), z.mean(axis=0)
    assert np.all((z.std(axis=0, ddof=1) > 0.5) & (z.std(axis=0, ddof=1) < 1.9)), z.std(axis=0)


def test_the_dual_upper_bound_brackets_the_reference_with_the_price():
    """upper_bound=True: price (a lower bound) <= reference <= upper bound, each up to 4 SE,
    and the gap upper - price within 0.5 % of the price on the LS put (measured 0.1 %)."""
    trades, market = _book(*LS_PUT, "bermudan", 50)
    row = price_portfolio(trades, market, n_paths=100_000, seed=4, greeks="none",
                          upper_bound=True).iloc[0]
    ref = american_price(*LS_PUT, exercise_dates=np.arange(1, 51) / 50)
    assert row["upper_bound"] > ref - 4 * row["upper_bound_se"]
    assert row["price"] < ref + 4 * row["price_se"]
    assert row["upper_bound_se"] < 0.001 * ref
    assert row["duality_gap"] == pytest.approx(row["upper_bound"] - row["price"])
    assert row["duality_gap"] < 0.005 * ref + 4 * row["duality_gap_se"]


def test_same_bits_on_one_or_two_threads():
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    trades, market = _book(*LS_PUT, "bermudan", 12)
    kw = dict(n_paths=2 * engine.SEGMENT + 77, seed=13, block_paths=1024)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = price_portfolio(trades, market, **kw)
        numba.set_num_threads(2)
        two = price_portfolio(trades, market, **kw)
    finally:
        numba.set_num_threads(saved)
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_the_american_example_book_prices_with_its_bounds():
    """data/american (the README's early-exercise example: Bermudan and American vanillas under
    GBM and Heston and a Bermudan max-call), as the command line reads it: every trade priced,
    each bracketed by its price and dual bound within their noise."""
    from pathlib import Path

    from mcgreeks.cli import read_table
    data = Path(__file__).resolve().parents[2] / "data" / "american"
    trades, market = read_table(data / "trades.csv", "trades"), read_table(data / "market.csv",
                                                                           "market")
    res = price_portfolio(trades, market, n_paths=2 * engine.SEGMENT, greeks="delta",
                          upper_bound=True)
    assert list(res.index) == list(trades.trade_id)
    assert (res.error == "").all() and res.price.notna().all()
    q = trades.set_index("trade_id")["quantity"]
    gap, gap_se = res["duality_gap"] / q, res["duality_gap_se"] / q.abs()   # one option's
    assert (gap > -4 * gap_se).all() and (gap < 0.02 * res["price"] / q + 4 * gap_se).all()


def test_a_bermudan_with_one_date_is_its_european_to_the_bit():
    """n_exercise = 1: the only date is the maturity, so no policy acts; the price is the
    European's on the same paths, and its SE is the paths' own (no spread of identical
    policies, whose few degrees of freedom would only add noise to it)."""
    trades, market = _book(*LS_PUT, "bermudan", 1)
    both = pd.concat([trades, trades.assign(trade_id="e", exercise="european")])
    res = price_portfolio(both, market, n_paths=3 * engine.SEGMENT, seed=2, greeks="none")
    assert res.loc["t", "price"] == res.loc["e", "price"]
    assert res.loc["t", "price_se"] == res.loc["e", "price_se"]
