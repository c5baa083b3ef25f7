"""``exercise_policy``: Longstaff-Schwartz policies fitted on pilot paths and applied to independent
ones, under GBM (paths simulated exactly here with NumPy), against the finite-difference
references of ``analytic.american`` (Bermudan and American values).  The estimate is the value
of a fixed feasible policy, so it must not exceed the reference beyond its noise, and its low
bias is measured and bounded."""
import numpy as np
import pytest

from mc_checks import one_thread
from mcgreeks import exercise_policy as X
from mcgreeks import payoffs as P
from mcgreeks.analytic.american import american_price
from mcgreeks.analytic.black_scholes import european


def gbm_paths(spot, rate, div, vol, times, n_paths, seed):
    rng = np.random.default_rng(seed)
    dt = np.diff(np.concatenate([[0.0], times]))
    w = np.cumsum(rng.standard_normal((times.size, n_paths)) * np.sqrt(dt)[:, None], axis=0)
    return spot * np.exp((rate - div - 0.5 * vol * vol) * times[:, None] + vol * w)


def remaining_european(spots, times, strike, rate, div, vol, is_call):
    out = np.zeros_like(spots)
    maturity = times[-1]
    for k in range(times.size - 1):
        out[k] = european(spot=spots[k], strike=strike, maturity=maturity - times[k], rate=rate,
                          vol=vol, div_yield=div, is_call=is_call)["price"]
    return out


def lsm(spot, strike, rate, div, vol, times, is_call, n_pilot=1 << 14, n_main=1 << 17,
        with_european=True):
    pilot = gbm_paths(spot, rate, div, vol, times, n_pilot, seed=1)
    main = gbm_paths(spot, rate, div, vol, times, n_main, seed=2)
    e_pilot = remaining_european(pilot, times, strike, rate, div, vol, is_call) \
        if with_european else None
    e_main = remaining_european(main, times, strike, rate, div, vol, is_call) \
        if with_european else None
    policy = X.fit(pilot, times, strike, rate, is_call, e_pilot)
    return X.price(policy, main, times, strike, rate, is_call, e_main), policy


#: Longstaff & Schwartz (2001), Table 1, T = 1 rows: K = 40, r = 0.06, q = 0, 50 exercise dates a
#: year (Bermudan; ``tests/analytic/test_american.py`` checks the finite-difference reference
#: reproduces them): (S, sigma, value).
LS_TABLE = [(36.0, 0.2, 4.478), (36.0, 0.4, 7.101), (40.0, 0.2, 2.314), (44.0, 0.2, 1.110)]


@pytest.mark.parametrize("spot, vol, table", LS_TABLE)
def test_bermudan_put_of_longstaff_schwartz(spot, vol, table):
    """The policy's value sits below the reference by at most its low bias (allowed: 0.5 % of
    the price, the issue's aim) and never above it beyond 4 SE.  Measured with 2^14 pilot
    paths and 2^20 main ones: 0.13-0.23 % low (± 0.06-0.18 %); here at 2^17, 0.25-1.1 % with
    z between -1.4 and -2.4 (one main seed for all four)."""
    times = np.arange(1, 51) / 50.0
    ref = american_price(spot, 40.0, 0.06, 0.0, vol, 1.0, "put", exercise_dates=times)
    assert ref == pytest.approx(table, abs=6e-4)
    (value, se), policy = lsm(spot, 40.0, 0.06, 0.0, vol, times, False)
    assert se < 0.006 * ref
    assert value < ref + 4 * se, (value, se, ref)
    assert value > ref - 4 * se - 0.005 * ref, (value, se, ref)
    assert policy.columns == ("1", "S/K", "(S/K)^2", "european/K")
    assert np.nanmin(policy.r_squared) > 0.0


def test_four_date_bermudan_and_the_european_regressor():
    """A 4-date Bermudan put: with the European regressor the policy's value is within 0.2 %
    (plus 4 SE) below the reference (measured 0.29 % ± 0.34 %); powers alone also stay below it
    (0.39 %: a worse, still feasible policy)."""
    times = np.array([0.25, 0.5, 0.75, 1.0])
    ref = american_price(100.0, 100.0, 0.05, 0.0, 0.25, 1.0, "put", exercise_dates=times)
    (with_e, se), _ = lsm(100.0, 100.0, 0.05, 0.0, 0.25, times, False)
    (powers, se_p), _ = lsm(100.0, 100.0, 0.05, 0.0, 0.25, times, False, with_european=False)
    assert ref - 4 * se - 0.002 * ref < with_e < ref + 4 * se, (with_e, se, ref)
    assert powers < ref + 4 * se_p


def test_call_without_dividends_is_never_exercised_early():
    """An American call on a non-dividend stock is worth its European.  The fitted policy
    still stops early on a few deep in-the-money paths (1.7 %, measured: there the regression's
    continuation value falls just under the exercise value, and the loss is as small), and the
    policy's value matches Black-Scholes within 4 SE."""
    times = np.arange(1, 13) / 12.0
    (value, se), policy = lsm(100.0, 100.0, 0.05, 0.0, 0.2, times, True)
    main = gbm_paths(100.0, 0.05, 0.0, 0.2, times, 1 << 17, seed=2)
    index, _ = X.stopping(policy, main, times, 100.0, True,
                          remaining_european(main, times, 100.0, 0.05, 0.0, 0.2, True))
    assert np.mean((index >= 0) & (index < times.size - 1)) < 0.03
    bs = european(spot=100.0, strike=100.0, maturity=1.0, rate=0.05, vol=0.2)["price"]
    assert abs(value - bs) < 4 * se


def test_policy_fitted_on_the_paths_it_prices_is_biased_high():
    """Why the pilot is separate: judged on its own pilot paths, a policy fitted with many basis
    columns looks better than it is (foresight); on independent paths it does not."""
    times = np.arange(1, 51) / 50.0
    ref = american_price(36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put", exercise_dates=times)
    pilot = gbm_paths(36.0, 0.06, 0.0, 0.2, times, 1 << 10, seed=5)
    e = remaining_european(pilot, times, 40.0, 0.06, 0.0, 0.2, False)
    policy = X.fit(pilot, times, 40.0, 0.06, False, e)
    in_sample, se = X.price(policy, pilot, times, 40.0, 0.06, False, e)
    main = gbm_paths(36.0, 0.06, 0.0, 0.2, times, 1 << 17, seed=6)
    out, se_out = X.price(policy, main, times, 40.0, 0.06, False,
                          remaining_european(main, times, 40.0, 0.06, 0.0, 0.2, False))
    assert out < ref + 4 * se_out
    assert in_sample > out - 4 * se


def test_a_fit_has_the_same_bits_on_one_thread():
    # _fit forms the next date's regressors on a worker thread (engine.prefetched)
    rng = np.random.default_rng(4)
    xs = 20.0 * np.exp(0.05 * rng.standard_normal((30, 5, 6000)).cumsum(axis=0))
    times = np.arange(1, 31) / 30.0
    two = X.fit_legs(xs, times, 100.0, 0.03, False, P.BASKET)
    with one_thread():
        one = X.fit_legs(xs, times, 100.0, 0.03, False, P.BASKET)
    assert np.isfinite(two.coefficients).sum() > 100
    assert np.array_equal(one.coefficients, two.coefficients, equal_nan=True)
    assert np.array_equal(one.n_itm, two.n_itm)


@pytest.mark.parametrize("kind, n_legs", [(P.BASKET, 1), (P.BASKET, 5), (P.BEST_OF, 3),
                                          (P.WORST_OF, 4), (P.SPREAD, 2)])
@pytest.mark.parametrize("is_call", [True, False])
def test_the_kernel_basis_is_legs_features_bit_for_bit(kind, n_legs, is_call):
    # fit_legs builds a date's regressors with _legs_basis; legs_features is the NumPy
    # statement of the same basis (and of its ties: equal legs appear in the data)
    rng = np.random.default_rng(n_legs)
    xs = rng.lognormal(3.0, 0.3, (n_legs, 4000))
    xs[:, :50] = xs[0, :50]
    strike, omega = np.median(X.legs_value(kind, xs)), (1.0 if is_call else -1.0)
    h = np.empty(xs.shape[1])
    X._legs_exercise(xs, kind, strike, omega, h)
    assert np.array_equal(h, np.maximum(omega * (X.legs_value(kind, xs) - strike), 0.0))
    itm = np.flatnonzero(h > 0.0)
    xt = np.empty((len(X.LEGS_COLUMNS), itm.size))
    X._legs_basis(xs, kind, strike, omega, itm, xt)
    assert itm.size > 100
    assert np.array_equal(xt, X.legs_features(kind, xs[:, itm], strike, omega).T)


def exercise_by_the_rule(policy, row, kind, omega, strike, x):
    """(h, continuation) of the multi-asset exercise rule as docs/reference.md states it, for
    one path's legs x, in Python: the policy exercises when h > 0 and h >= continuation, the
    fit on (1, a, b, a², b², ab, h/K) with a and b the largest two legs (smallest two for a
    worst-of, the two legs of a spread) over K, the pair kept by the branches
    ``if y > a: a, b = y, a elif y > b: b = y``."""
    u = x[1:].sum(initial=x[0]) if kind == P.BASKET else (
        x.max() if kind == P.BEST_OF else x.min() if kind == P.WORST_OF else x[0] - x[1])
    h = omega * (u - strike)
    if kind == P.SPREAD:
        a, b = x[0], x[1]
    else:
        sign = -1.0 if kind == P.WORST_OF else 1.0
        a = b = -np.inf
        for y in sign * x:
            if y > a:
                a, b = y, a
            elif y > b:
                b = y
        a, b = sign * a, (sign * b if x.size > 1 else 0.0)
    a, b = a / strike, b / strike
    c = policy[row, X.B0:X.B6 + 1]
    return h, c[0] + a * c[1] + b * c[2] + a * a * c[3] + b * b * c[4] + a * b * c[5] + \
        h / strike * c[6]


@pytest.mark.parametrize("kind, n_legs", [(P.BASKET, 1), (P.BASKET, 5), (P.BEST_OF, 3),
                                          (P.WORST_OF, 4), (P.SPREAD, 2)])
@pytest.mark.parametrize("omega", [1.0, -1.0])
def test_the_exercise_decisions_of_a_tile_and_of_a_path_are_the_rule(kind, n_legs, omega):
    # stop_legs (a tile's paths, legs read in place) and exercises_legs (one path's legs, the
    # dual bound's) take the running pair by max and min; ties between legs are in the data
    rng = np.random.default_rng(7 + n_legs)
    m = 128
    xs = np.round(rng.lognormal(3.0, 0.3, (n_legs, m)), 1)
    xs[:, :10] = xs[0, :10]
    if kind == P.SPREAD:
        xs[0] += 10.0                                       # a spread struck well above 0
    strike = float(np.median(X.legs_value(kind, xs)))
    policy = np.zeros((3, X.VAR_WEIGHT + 1))
    policy[:, X.B1:X.B6 + 1] = rng.normal(0.0, [1.0, 1.0, 0.5, 0.5, 0.5, 1.0], (3, 6))
    for row in range(2):    # B0 splits the paths in the money in about two halves
        gap = [np.subtract(*exercise_by_the_rule(policy, row, kind, omega, strike, xs[:, i]))
               for i in range(m)]
        policy[row, X.B0] = np.median([g for g, x in zip(gap, X.legs_value(kind, xs))
                                       if omega * (x - strike) > 0.0])
    policy[2, X.B0] = np.nan                               # a date the fit left out
    for row in range(3):
        parts = [exercise_by_the_rule(policy, row, kind, omega, strike, xs[:, i])
                 for i in range(m)]
        rule = np.array([h > 0.0 and h >= c for h, c in parts])
        assert 10 < rule.sum() < m - 10 or row == 2 and not rule.any()
        one = [X.exercises_legs(policy, row, kind, omega, strike, np.ascontiguousarray(xs[:, i]),
                                n_legs) for i in range(m)]
        assert np.array_equal(one, rule)
        stop, at_stop = np.full(m, -1.0), np.zeros((n_legs, m))
        stop[:3] = 4.0                                      # stopped before: left alone
        stopped = X.stop_legs(policy, row, kind, omega, strike, xs, n_legs, m, False, 9, stop,
                              at_stop)
        now = rule & (np.arange(m) >= 3)
        assert stopped == now.sum()
        assert np.array_equal(stop, np.where(now, 9.0, np.where(np.arange(m) < 3, 4.0, -1.0)))
        assert np.array_equal(at_stop, np.where(now, xs, 0.0))


@pytest.mark.parametrize("is_call", [True, False])
@pytest.mark.parametrize("heston", [False, True])
def test_the_regressor_formed_in_the_fit_is_remaining_european_bit_for_bit(is_call, heston):
    """``fit(..., regressor=...)`` forms the European column date by date for the in-the-money
    paths alone (``_european_basis``); the policy is the one fitted on the whole pilot's
    ``X.remaining_european``, to the bit, with Heston's variance column and weights too."""
    times = np.arange(1, 27) / 26.0
    strike, rate, div, vol = 100.0, 0.04, 0.02, 0.25
    spots = gbm_paths(100.0, rate, div, vol, times, 6000, seed=3)
    rng = np.random.default_rng(5)
    variance = rng.gamma(2.0, 0.02, spots.shape) if heston else None
    kappa = 1.5 if heston else None
    e = X.remaining_european(spots, times, strike, rate, div, vol, is_call, variance, kappa)
    whole = X.fit(spots, times, strike, rate, is_call, e, variance)
    formed = X.fit(spots, times, strike, rate, is_call, variance=variance,
                   regressor=(div, vol, kappa))
    assert np.isfinite(whole.coefficients).sum() > 50
    assert np.array_equal(whole.coefficients, formed.coefficients, equal_nan=True)
    assert np.array_equal(whole.n_itm, formed.n_itm)
    assert whole.columns == formed.columns
