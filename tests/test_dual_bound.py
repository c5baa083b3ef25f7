"""``dual_bound``: the Andersen-Broadie upper bound of a fitted Longstaff-Schwartz policy under GBM,
against the finite-difference Bermudan values of ``analytic.american``.

What is checked, and the allowances:
- the bound holds: upper >= reference - 4 SE, for the fitted policies and for bad ones (the dual
  bound holds for any martingale);
- it is tight for a fitted policy: upper - reference < 1 % of the price + 4 SE, with an SE below
  0.1 % of the price so that the check means something.  Measured (keys below, warm kernel
  cache, one thread): the Longstaff-Schwartz put at the defaults (1000 x 200 paths)
  4.4823 ± 0.0011 against 4.4778 (+0.10 %), gap upper - lower 0.0041 ± 0.0003, 2.2 s; the
  4-date put at 2000 x 100 9.7223 ± 0.0015 against 9.7247 (-0.02 %, 1.6 SE below), gap 0.0010,
  0.04 s; the 12-date dividend call at 2000 x 100 8.1202 ± 0.0023 against 8.1190 (+0.01 %),
  gap 0.0078 (the policy's value 8.1124, 0.08 % low), 0.12 s;
- the kernel's bookkeeping against a slow transcription of the definitions;
- the same bits on 1 and 2 threads;
- the European control in the inner paths changes the noise, not the mean;
- several assets (``gbm_legs_bounds``, no control): the Broadie-Glasserman two-asset max-call
  against its commonly quoted values, upper >= reference - 4 SE and upper - reference < 1 % of
  the price + 4 SE with an SE below 0.3 % of it (measured +0.15 to +0.23 %, SE 0.12-0.23 %,
  1000 x 500 paths, 0.4-0.9 s each on one core); bad policies bound it too; the same bits on
  1 and 2 threads; the kernel against the transcription for a best-of call, worst-of put,
  basket put and spread call; the floors that skip dates below the analytic Europeans;
- several assets with a Heston name (``heston_legs_bounds``, the legs stepped on the pricer's
  grid as a group): a Heston name whose variance cannot move beside a GBM name is the max-call
  (measured 13.950 ± 0.052 against 13.90 at 500 x 200 paths, 2 s; allowed 1.5 % + 4 SE) and
  agrees with the GBM legs' bound under the same policy; the kernel against a transcription
  whose outer paths are ``models.heston.group_sample_paths``' (QE and Euler, two and three
  legs); the same bits on repeat and on 1 and 2 threads.
"""
import functools

import numba
import numpy as np
import pytest

from mcgreeks import dual_bound as D
from mcgreeks import exercise_policy as X
from mcgreeks import payoffs as P
from mcgreeks.analytic.american import american_price, heston_american_price

#: Keys of the pilot (stream STREAM_EXERCISE) and of the bound's paths (stream STREAM_DUAL).
KEYS = (20240601, 7)
PILOT = 1 << 16
TIGHT = 0.01            # upper - reference allowed for a fitted policy, relative (+ 4 SE)


def _case(spot, strike, rate, div, vol, maturity, n_dates, is_call):
    """(policy rows fitted on a GBM pilot, dates, market tuple, Bermudan reference)."""
    times = np.arange(1, n_dates + 1) / n_dates * maturity
    ref = american_price(spot, strike, rate, div, vol, maturity, "call" if is_call else "put",
                         exercise_dates=times)
    pilot = X.gbm_pilot(spot, rate, div, vol, times, *KEYS, PILOT)
    european = X.remaining_european(pilot, times, strike, rate, div, vol, is_call)
    policy = X.fit(pilot, times, strike, rate, is_call, european)
    rows = X.rows(policy, times, rate, div, vol)
    return rows, times, (spot, strike, rate, div, vol, is_call), ref


# Longstaff & Schwartz (2001), Table 1: S = 36, K = 40, r = 6 %, σ = 20 %, T = 1, 50 dates: 4.478.
LS_PUT = (36.0, 40.0, 0.06, 0.0, 0.2, 1.0, 50, False)
FOUR_DATE_PUT = (100.0, 100.0, 0.05, 0.0, 0.3, 1.0, 4, False)
DIVIDEND_CALL = (100.0, 100.0, 0.03, 0.07, 0.25, 1.0, 12, True)


@pytest.fixture(scope="module")
def ls_put():
    return _case(*LS_PUT)


@pytest.fixture(scope="module")
def ls_put_bounds(ls_put):
    """The defaults' run (DEFAULT_OUTER x DEFAULT_INNER paths)."""
    rows, times, market, ref = ls_put
    return D.gbm_bounds(rows, times, *market, *KEYS)


def _check_tight(b, ref):
    assert b.upper_se < 0.001 * ref                      # small enough for the checks below
    assert b.upper > ref - 4 * b.upper_se, (b, ref)       # an upper bound
    assert b.upper - ref < TIGHT * ref + 4 * b.upper_se, (b, ref)
    # the policy's value is a lower bound; the gap, their difference, is >= 0 by construction
    # (at the policy's own stopping date h̃ - M̂ = Q̂_0)
    assert b.lower < ref + 4 * b.lower_se, (b, ref)
    assert b.gap > -1e-12 * ref                          # >= 0 up to rounding
    assert b.gap == pytest.approx(b.upper - b.lower, abs=1e-12)


def test_longstaff_schwartz_put_with_the_defaults(ls_put, ls_put_bounds):
    """The defaults (1000 x 200 paths): measured 4.4823 ± 0.0011 against 4.4778, the policy's
    value 4.4781 ± 0.0011, the gap 0.0041 ± 0.0003 (mostly the inner paths' noise: 0.013 at
    1000 x 50, 0.0069 at 1000 x 100), in 2.2 s on one core (its speed is
    ``benchmarks/american.py``'s to measure)."""
    *_, ref = ls_put
    b = ls_put_bounds
    assert ref == pytest.approx(4.478, abs=6e-4)
    _check_tight(b, ref)
    assert b.gap < 0.003 * ref


def test_upper_bound_function_is_the_bounds_upper(ls_put):
    """``gbm_upper_bound`` returns (upper, se) of ``gbm_bounds``."""
    rows, times, market, _ = ls_put
    b = D.gbm_bounds(rows, times, *market, *KEYS, n_outer=40, n_inner=20)
    assert D.gbm_upper_bound(rows, times, *market, *KEYS, n_outer=40, n_inner=20) \
        == (b.upper, b.upper_se)


@pytest.mark.parametrize("case, label", [(FOUR_DATE_PUT, "4-date put"),
                                         (DIVIDEND_CALL, "12-date dividend call")])
def test_bermudan_put_and_dividend_call(case, label):
    """Measured: the 4-date put 9.7223 ± 0.0015 against 9.7247, the call 8.1202 ± 0.0023
    against 8.1190 (both within 0.02 %)."""
    rows, times, market, ref = _case(*case)
    b = D.gbm_bounds(rows, times, *market, *KEYS, n_outer=2000, n_inner=100)
    _check_tight(b, ref)


def _on_one_and_two_threads(run):
    """[run() on 1 numba thread, run() on 2] (the test is skipped with only one)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one numba thread only")
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            out.append(run())
    finally:
        numba.set_num_threads(before)
    return out


def test_same_bits_on_one_and_two_threads(ls_put):
    rows, times, market, _ = ls_put
    out = _on_one_and_two_threads(
        lambda: D.gbm_bounds(rows, times, *market, *KEYS, n_outer=96, n_inner=24))
    assert out[0] == out[1]
    # and the keys matter
    other = D.gbm_bounds(rows, times, *market, KEYS[0] + 1, KEYS[1], n_outer=96, n_inner=24)
    assert other.upper != out[0].upper


def test_european_control_keeps_the_mean_and_cuts_the_noise():
    """Without the control the inner estimates are plain means of the policy's cash flows: the
    same policy value within the noise, a larger standard error and a larger gap (inner noise
    raises the bound).  Measured on the call, 2000 x 100: lower 8.1124 ± 0.0018 with,
    8.1241 ± 0.0254 without; gap 0.0078 with, 0.224 without (upper 8.1202 and 8.3482)."""
    rows, times, market, ref = _case(*DIVIDEND_CALL)
    with_cv = D.gbm_bounds(rows, times, *market, *KEYS, n_outer=2000, n_inner=100)
    plain = D.gbm_bounds(rows, times, *market, *KEYS, n_outer=2000, n_inner=100,
                         control=False)
    assert abs(with_cv.lower - plain.lower) < 4 * np.hypot(with_cv.lower_se, plain.lower_se)
    assert plain.lower_se > 2 * with_cv.lower_se
    assert plain.gap > with_cv.gap + 4 * np.hypot(with_cv.gap_se, plain.gap_se)
    assert plain.upper > ref - 4 * plain.upper_se        # still an upper bound


def _never_early(rows):
    bad = rows.copy()
    bad[:, X.B0] = np.nan                 # no exercise before the maturity
    return bad


def _first_in_the_money(rows):
    bad = rows.copy()
    bad[:, X.B0:X.B3 + 1] = 0.0
    bad[:, X.B0] = -np.inf                # continuation -inf: exercise wherever in the money
    return bad


@pytest.mark.parametrize("spoil", [_never_early, _first_in_the_money])
def test_bad_policy_still_bounds_from_above(ls_put, ls_put_bounds, spoil):
    """Any martingale gives an upper bound, a bad policy's a loose one.  Measured (1000 x 50):
    never exercising early (the European's martingale), 4.695 ± 0.015, gap 0.85; exercising
    at the first in-the-money date, 4.884 ± 0.041, gap 0.93; against 4.478 (the fitted
    policy's gap 0.0041 at the defaults)."""
    rows, times, market, ref = ls_put
    b = D.gbm_bounds(spoil(rows), times, *market, *KEYS, n_outer=1000, n_inner=50)
    good = ls_put_bounds
    assert b.upper_se < 0.015 * ref
    assert b.upper > ref - 4 * b.upper_se, (b, ref)
    assert b.upper > good.upper + 4 * np.hypot(b.upper_se, good.upper_se)
    assert b.gap > 20 * good.gap
    assert b.lower < ref - 0.1 * ref      # and the policy is visibly bad


def test_a_european_is_its_own_bound():
    """One date (the maturity): the bound and the policy's value are the Black-Scholes price
    (the European control makes Q̂_0 exact, the same on every outer path), with an SE of 0
    up to the rounding of the mean."""
    from mcgreeks.analytic.black_scholes import european
    times = np.array([0.5])
    rows = X.rows(X.Policy(np.zeros((0, 4)), (), np.zeros(0), np.zeros(0)), times, 0.02, 0.0,
                  0.3)
    b = D.gbm_bounds(rows, times, 100.0, 110.0, 0.02, 0.0, 0.3, False, *KEYS, n_outer=10,
                     n_inner=3)
    bs = european(spot=100.0, strike=110.0, maturity=0.5, rate=0.02, vol=0.3,
                  is_call=False)["price"]
    assert b.upper == pytest.approx(bs, rel=1e-12) and b.upper_se < 1e-12 * bs
    assert b.lower == b.upper


def test_bad_input():
    times = np.array([0.5, 1.0])
    rows = np.zeros((2, X.N_POLICY))
    args = (100.0, 100.0, 0.05, 0.0, 0.2, False, *KEYS)
    with pytest.raises(ValueError, match="policy_rows"):
        D.gbm_upper_bound(rows[:1], times, *args)
    with pytest.raises(ValueError, match="times"):
        D.gbm_upper_bound(rows, times[::-1], *args)
    with pytest.raises(ValueError, match="n_outer"):
        D.gbm_upper_bound(rows, times, *args, n_outer=1)
    with pytest.raises(ValueError, match="n_inner"):
        D.gbm_upper_bound(rows, times, *args, n_inner=0)
    with pytest.raises(ValueError, match="vol"):
        D.gbm_upper_bound(rows, times, 100.0, 100.0, 0.05, 0.0, 0.0, False, *KEYS)


def _transcription(rows, times, spot, strike, rate, div, vol, is_call, key0, key1, n_outer,
                   n_inner, control):
    """``_legs_transcription`` of a vanilla: one leg, the spot, under keys (key0, key1)."""
    one = np.ones(1)
    return _legs_transcription(rows, times, D.VANILLA, is_call, strike, spot * one, div * one,
                               vol * one, rate, None, key0, [key1], n_outer, n_inner, control)


def _legs_transcription(rows, times, kind, is_call, strike, x0, divs, vols, rate, factor, key0,
                        names, n_outer, n_inner, control=False):
    """The estimator as the definitions read, slowly: every Q̂_k (k = 0..n-1) simulated on every
    inner path to the maturity, L̂_k, Δ_k = L̂_{k+1} - Q̂_k and M_k = Σ_{j<k} Δ_j, the max of
    h̃_k - M_k over the dates the kernel keeps.  Legs' weighted spots x0 (a vanilla: its spot,
    with factor None and kind ``D.VANILLA``), leg q's normals under keys (key0, names[q]) mixed
    by ``factor``.  (upper, lower) means."""
    from mcgreeks.rng import STREAM_DUAL, normal
    n = times.size
    omega = 1.0 if is_call else -1.0
    grid = np.concatenate([[0.0], times])
    dt = np.diff(grid)
    disc = np.exp(-rate * grid)

    def step(x, d, path):               # the legs at date d from the legs at date d - 1
        z = np.array([normal(key0, name, STREAM_DUAL, path, d - 1) for name in names])
        z = z if factor is None else factor @ z
        return x * np.exp((rate - divs - 0.5 * vols * vols) * dt[d - 1]
                          + vols * np.sqrt(dt[d - 1]) * z)

    def value(x):
        u = x[0] if factor is None else X.legs_value(kind, x)
        return max(omega * (u - strike), 0.0)

    def exercises(x, d):
        if factor is None:
            return X.exercises(rows, d - 1, omega, strike, x[0])
        return X.exercises_legs(rows, d - 1, kind, omega, strike, x, x.size)

    def floor(x, d):                    # the European's value for a vanilla (the control's)
        return D.continuation_floor(factor, kind, omega, strike, x, grid[n] - grid[d], rate,
                                    divs, vols)

    def q_hat(x0, k, path0):
        total = 0.0
        for j in range(n_inner):
            x = x0
            for d in range(k + 1, n + 1):
                x = step(x, d, path0 + j)
                if d == n:
                    y = disc[n] * value(x)
                    if control:     # y - (D_T E(T, S_T) - D_k E(t_k, S_k)), E(T, S) = h(S)
                        y = disc[k] * floor(x0, k)
                    break
                if exercises(x, d):
                    y = disc[d] * value(x)
                    if control:
                        y -= disc[d] * floor(x, d) - disc[k] * floor(x0, k)
                    break
            total += y
        return total / n_inner

    uppers, lowers = [], []
    for o in range(n_outer):
        inner0 = n_outer + o * n * n_inner
        s = [x0]
        for d in range(1, n + 1):
            s.append(step(s[-1], d, o))
        h = np.array([disc[k] * value(s[k]) for k in range(n + 1)])
        q = np.array([q_hat(s[k], k, inner0 + k * n_inner) for k in range(n)])
        stops = [False] + [exercises(s[k], k) for k in range(1, n)]
        low = [h[k] if stops[k] else q[k] for k in range(n)] + [h[n]]
        m = np.concatenate([[0.0], np.cumsum([low[k + 1] - q[k] for k in range(n)])])
        # the dates where exercising may be optimal (worth at least the continuation's floor),
        # where the policy exercises, and the maturity
        used = [k for k in range(1, n) if h[k] > 0.0 and (
            stops[k] or h[k] / disc[k] + D.TIE * strike >= floor(s[k], k))] + [n]
        uppers.append(max(h[k] - m[k] for k in used))
        lowers.append(q[0])
    return np.mean(uppers), np.mean(lowers)


@pytest.mark.parametrize("control", [True, False])
def test_kernel_is_the_definitions(control):
    """The kernel's bookkeeping (dates where exercise is worth less than the European and the
    policy continues skipped, M̂ carried across them, inner paths stopped after the last
    exercisable date, normals drawn for all inner paths or one by one) against
    ``_transcription``, on a 6-date put with few paths: the same means up to rounding."""
    rows, times, market, _ = _case(100.0, 105.0, 0.05, 0.01, 0.3, 1.0, 6, False)
    b = D.gbm_bounds(rows, times, *market, *KEYS, n_outer=12, n_inner=10, control=control)
    upper, lower = _transcription(rows, times, *market, *KEYS, 12, 10, control)
    assert b.upper == pytest.approx(upper, rel=1e-11)
    assert b.lower == pytest.approx(lower, rel=1e-11)


# -- several assets -------------------------------------------------------------------------

#: The Broadie & Glasserman (2004) two-asset Bermudan max-call: S1(0) = S2(0) = 90, 100, 110,
#: K = 100, r = 5 %, q = 10 %, σ = 20 %, ρ = 0, T = 3, exercisable at t_i = i/3, i = 1..9.
#: Their values 8.08, 13.90, 21.34, as commonly quoted (Andersen & Broadie 2004, Table 2, and
#: Broadie & Cao 2008 bracket them by their bounds; not checked against the papers here).
MAX_CALL_DATES = np.arange(1, 10) / 3.0
MAX_CALL_REFERENCE = {90.0: 8.08, 100.0: 13.90, 110.0: 21.34}
#: Leg keys of the pilots and of the bounds (the seed key is KEYS[0]).
NAMES = (KEYS[1], KEYS[1] + 1)
#: Outer x inner paths of the max-call runs (module docstring of dual_bound: the gap falls
#: from about 0.2 at 1000 x 200 to 0.1 at 1000 x 500, 0.06-0.08 at 1000 x 2000).
MAX_CALL_PATHS = (1000, 500)


def _legs_case(kind, is_call, strike, spots, weights, vols, divs, rate, factor, times,
               pilot=PILOT):
    """(policy rows fitted on a correlated GBM pilot, the arguments of ``gbm_legs_bounds``
    after policy_rows and times)."""
    names = NAMES[:len(spots)]
    xs = X.gbm_legs_pilot(spots, rate, divs, vols, weights, factor, times, KEYS[0], names, pilot)
    rows = X.legs_rows(X.fit_legs(xs, times, strike, rate, is_call, kind), times)
    return rows, (kind, is_call, strike, spots, weights, vols, divs, rate, factor, KEYS[0], names)


@functools.lru_cache(maxsize=None)
def _max_call(spot):
    """(spot, policy rows, market, reference) of the max-call."""
    rows, market = _legs_case(P.BEST_OF, True, 100.0, [spot, spot], [1.0, 1.0], [0.2, 0.2],
                              [0.1, 0.1], 0.05, np.eye(2), MAX_CALL_DATES)
    return spot, rows, market, MAX_CALL_REFERENCE[spot]


@pytest.mark.parametrize("spot", sorted(MAX_CALL_REFERENCE))
def test_broadie_glasserman_max_call(spot):
    """The bound of the policy fitted on 2^16 pilot paths, 1000 x 500 paths, no control.
    Measured (keys above, one thread, warm kernel cache): S0 = 90: 8.0922 ± 0.0181 (policy's
    value 8.0392, gap 0.053), S0 = 100: 13.9316 ± 0.0234 (13.8353, 0.096), S0 = 110:
    21.3765 ± 0.0264 (21.2485, 0.128); upper - reference +0.15 %, +0.23 %, +0.17 % (+0.7, +1.4,
    +1.4 SE), allowed 1 % + 4 SE; 0.4-0.9 s each.  Andersen & Broadie's bounds, as commonly
    quoted (about [8.05, 8.08], [13.88, 13.90], [21.31, 21.35]; not checked against the paper
    here), are tighter: their policy's value is within about 0.03 of the reference, ours
    0.04-0.09 below it, and our inner paths carry no control."""
    spot, rows, market, ref = _max_call(spot)
    b = D.gbm_legs_bounds(rows, MAX_CALL_DATES, *market, *MAX_CALL_PATHS)
    assert b.upper_se < 0.003 * ref                      # small enough for the checks below
    assert b.upper > ref - 4 * b.upper_se, (spot, b)      # an upper bound
    assert b.upper - ref < TIGHT * ref + 4 * b.upper_se, (spot, b)
    assert b.lower < ref + 4 * b.lower_se, (spot, b)      # the policy's value, a lower bound
    assert 0.0 < b.gap < 0.015 * ref, (spot, b)
    assert b.gap == pytest.approx(b.upper - b.lower, abs=1e-12)


def test_legs_upper_bound_function_is_the_bounds_upper():
    _, rows, market, _ = _max_call(100.0)
    b = D.gbm_legs_bounds(rows, MAX_CALL_DATES, *market, n_outer=20, n_inner=10)
    assert D.gbm_legs_upper_bound(rows, MAX_CALL_DATES, *market, n_outer=20, n_inner=10) \
        == (b.upper, b.upper_se)


def test_legs_same_bits_on_one_and_two_threads():
    _, rows, market, _ = _max_call(100.0)
    out = _on_one_and_two_threads(
        lambda: D.gbm_legs_bounds(rows, MAX_CALL_DATES, *market, n_outer=96, n_inner=24))
    assert out[0] == out[1]
    # and each leg's key matters
    kind, is_call, strike, spots, weights, vols, divs, rate, factor, key0, names = market
    other = D.gbm_legs_bounds(rows, MAX_CALL_DATES, kind, is_call, strike, spots, weights,
                              vols, divs, rate, factor, key0, (names[0], names[1] + 1),
                              n_outer=96, n_inner=24)
    assert other.upper != out[0].upper


@pytest.mark.parametrize("spoil", [_never_early, _first_in_the_money])
def test_legs_bad_policy_still_bounds_from_above(spoil):
    """The max-call (S0 = 100) under a bad policy, 1000 x 100 paths.  Measured: never
    exercising early 15.29 ± 0.16, gap 4.06; exercising at the first in-the-money date
    14.35 ± 0.18, gap 6.17; the fitted policy 14.15 ± 0.05, gap 0.27; against 13.90."""
    _, rows, market, ref = _max_call(100.0)
    good = D.gbm_legs_bounds(rows, MAX_CALL_DATES, *market, n_outer=1000, n_inner=100)
    b = D.gbm_legs_bounds(spoil(rows), MAX_CALL_DATES, *market, n_outer=1000, n_inner=100)
    assert b.upper > ref - 4 * b.upper_se, (b, ref)
    assert b.gap > 10 * good.gap
    assert b.lower < ref - 0.1 * ref      # and the policy is visibly bad


#: Small multi-asset cases for the bookkeeping: (kind, is_call, strike, weights), two legs at
#: 100 and 95, correlation 0.3, 5 dates over a year.
LEGS_CASES = [(P.BEST_OF, True, 100.0, [1.0, 1.0]), (P.WORST_OF, False, 100.0, [1.0, 1.0]),
              (P.BASKET, False, 100.0, [0.6, 0.4]), (P.SPREAD, True, 5.0, [1.0, 1.0])]
CHOLESKY_03 = np.linalg.cholesky(np.array([[1.0, 0.3], [0.3, 1.0]]))


@pytest.mark.parametrize("kind, is_call, strike, weights", LEGS_CASES)
def test_legs_kernel_is_the_definitions(kind, is_call, strike, weights):
    """The legs' kernel (correlated steps, ``exercises_legs``, the floors' date skipping, M̂
    carried across skipped dates, dense and one-by-one normals) against ``_legs_transcription``
    with few paths: the same means up to rounding."""
    times = np.arange(1, 6) / 5.0
    spots, vols, divs = [100.0, 95.0], [0.25, 0.35], [0.04, 0.02]
    rows, market = _legs_case(kind, is_call, strike, spots, weights, vols, divs, 0.03,
                              CHOLESKY_03, times, pilot=1 << 13)
    assert not np.isnan(rows[:-1, X.B0]).all()           # some date exercises
    b = D.gbm_legs_bounds(rows, times, *market, n_outer=8, n_inner=10)
    x0 = np.array(weights) * np.array(spots)
    upper, lower = _legs_transcription(rows, times, kind, is_call, strike, x0, np.array(divs),
                                       np.array(vols), 0.03, CHOLESKY_03, KEYS[0], NAMES, 8, 10)
    assert b.upper == pytest.approx(upper, rel=1e-11)
    assert b.lower == pytest.approx(lower, rel=1e-11)


@pytest.mark.parametrize("kind", [P.BEST_OF, P.WORST_OF, P.BASKET, P.SPREAD])
@pytest.mark.parametrize("is_call", [True, False])
def test_continuation_floor_is_at_most_the_european(kind, is_call):
    """The floor that drops dates from the bound's maximum must not exceed the European on the
    legs (which the continuation value is at least): checked against ``analytic.multi_asset``
    at states in and out of the money; and it is not empty where it has a closed form."""
    from mcgreeks.analytic import multi_asset as A
    price = {P.BEST_OF: A.best_of, P.WORST_OF: A.worst_of, P.BASKET: A.basket,
             P.SPREAD: A.spread}[kind]
    omega = 1.0 if is_call else -1.0
    strike = 5.0 if kind == P.SPREAD else 100.0
    vols, divs, rate, remaining = np.array([0.25, 0.35]), np.array([0.04, 0.02]), 0.03, 1.5
    for x in ([130.0, 80.0], [100.0, 95.0], [70.0, 75.0], [95.0, 125.0]):
        x = np.array(x)
        floor = D.continuation_floor(CHOLESKY_03, kind, omega, strike, x, remaining, rate, divs,
                                     vols)
        european = price(spots=x, strike=strike, maturity=remaining, rate=rate, vols=vols,
                         corr=0.3, div_yields=divs, is_call=is_call)["price"]
        assert 0.0 <= floor <= european + 1e-12, (x, floor, european)
        closed = kind in (P.BASKET, P.SPREAD) or (kind == P.BEST_OF) == is_call
        if closed and omega * (X.legs_value(kind, x) - strike) > 10.0:
            assert floor > 0.5 * european, (x, floor, european)


def test_legs_bad_input():
    times = np.array([0.5, 1.0])
    rows = np.zeros((2, X.N_POLICY))
    legs = dict(strike=100.0, spots=[100.0, 90.0], weights=[1.0, 1.0], vols=[0.2, 0.3],
                div_yields=[0.0, 0.0], rate=0.05, factor=np.eye(2), key0=KEYS[0], names=NAMES)

    def bound(kind=P.BASKET, **change):
        return D.gbm_legs_upper_bound(rows, times, kind, True, **{**legs, **change})

    with pytest.raises(ValueError, match="kind"):
        bound(kind=P.EUROPEAN)
    with pytest.raises(ValueError, match="two legs"):
        bound(P.SPREAD, spots=[1.0, 2.0, 3.0], weights=[1.0] * 3, vols=[0.2] * 3,
              div_yields=[0.0] * 3, factor=np.eye(3), names=(1, 2, 3))
    with pytest.raises(ValueError, match="names"):
        bound(names=NAMES[:1])
    with pytest.raises(ValueError, match="factor"):
        bound(factor=np.array([[1.0, 0.5], [0.0, 1.0]]))        # not lower triangular
    with pytest.raises(ValueError, match="factor"):
        bound(factor=np.array([[1.0, 0.0], [0.5, 1.0]]))        # rows not of unit norm
    with pytest.raises(ValueError, match="weights"):
        bound(weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="vols"):
        bound(vols=[0.2, 0.0])
    with pytest.raises(ValueError, match="policy_rows"):
        D.gbm_legs_upper_bound(rows[:1], times, P.BEST_OF, True, **legs)


# -- one Heston asset (heston_bounds) -------------------------------------------------------------

#: The American put of tests/pricers/test_heston_exercise.py: a Bermudan at 52 dates a year.
HESTON = dict(spot=100.0, rate=0.03, div_yield=0.0, v0=0.04, kappa=2.0, vbar=0.04, xi=0.3,
              corr=-0.7)
HESTON_STRIKE = 100.0
HESTON_TIMES = np.arange(1, 53) / 52


@pytest.fixture(scope="module")
def heston_put():
    """(policy rows fitted as ``underlying.fit_policies`` does, on a 2^15-path QE pilot; the
    2-D ADI Bermudan reference at the same dates)."""
    p, times = HESTON, HESTON_TIMES
    ref = heston_american_price(p["spot"], HESTON_STRIKE, p["rate"], p["div_yield"], p["v0"],
                                p["kappa"], p["vbar"], p["xi"], p["corr"], 1.0, "put",
                                exercise_dates=times)
    vol = np.sqrt(p["vbar"])
    spots, variance = X.heston_pilot(p, times, *KEYS, 52, "qe", 1 << 15, 0)
    european = X.remaining_european(spots, times, HESTON_STRIKE, p["rate"], p["div_yield"], vol,
                                    False, variance, p["kappa"])
    policy = X.fit(spots, times, HESTON_STRIKE, p["rate"], False, european, variance)
    return X.rows(policy, times, p["rate"], p["div_yield"], vol, p["kappa"]), ref


def test_heston_american_put(heston_put):
    """Measured on 0.3.0's random numbers (this pilot, 500 x 100 paths, QE on the 52-date grid):
    6.5790 ± 0.0092 against the ADI's 6.5731 (+0.09 %), the policy's value 6.5546, gap 0.024 ±
    0.003, 3.0 s on two cores (2.9 s in pytest); with a 2^16-path pilot 6.5772 ± 0.0087
    (+0.06 %), gap 0.016; at the defaults (1000 x 200) 6.5884 ± 0.0047 (+0.23 %), gap 0.015,
    20 s.  Without the control (200 x 100): 6.92 ± 0.07 (+5 %), gap 0.35.  On 0.4.0's: 6.5885 ±
    0.0099, policy 6.5519, gap 0.037 ± 0.005.  The gap over 16 keys: 0.024 ± 0.005 (0.018-0.038)
    on 0.3.0's numbers, 0.028 ± 0.006 (0.021-0.044) on 0.4.0's, so the bound on it is
    0.0075 of the price (0.049), not the 0.005 one run on 0.3.0's suggested."""
    rows, ref = heston_put
    b = D.heston_bounds(rows, HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS, n_outer=500,
                        n_inner=100)
    assert ref == pytest.approx(6.5731, abs=1e-3)
    assert b.upper_se < 0.003 * ref
    assert b.upper > ref - 4 * b.upper_se, (b, ref)
    assert b.upper - ref < TIGHT * ref + 4 * b.upper_se, (b, ref)
    assert b.lower < ref + 4 * b.lower_se, (b, ref)
    assert 0.0 <= b.gap < 0.0075 * ref, b


def test_heston_upper_bound_function_is_the_bounds_upper(heston_put):
    rows, _ = heston_put
    b = D.heston_bounds(rows, HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS, n_outer=40,
                        n_inner=20)
    assert D.heston_upper_bound(rows, HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS,
                                n_outer=40, n_inner=20) == (b.upper, b.upper_se)


def test_heston_same_bits_on_one_and_two_threads(heston_put):
    rows, _ = heston_put
    first, second = _on_one_and_two_threads(functools.partial(
        D.heston_bounds, rows, HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS, n_outer=40,
        n_inner=20))
    assert first == second


def test_heston_bad_policy_still_bounds_from_above(heston_put):
    """Never exercising early: the bound stays above and loosens (measured at 200 x 50:
    6.678 ± 0.042, the policy's value 6.299)."""
    rows, ref = heston_put
    b = D.heston_bounds(_never_early(rows), HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS,
                        n_outer=200, n_inner=50)
    assert b.upper > ref - 4 * b.upper_se, (b, ref)
    assert b.lower < ref


def test_heston_bad_input(heston_put):
    rows, _ = heston_put
    with pytest.raises(ValueError, match="scheme"):
        D.heston_bounds(rows, HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS, scheme="milstein")
    with pytest.raises(ValueError, match="kappa"):
        D.heston_bounds(rows, HESTON_TIMES, dict(HESTON, kappa=-1.0), HESTON_STRIKE, False, *KEYS)
    with pytest.raises(ValueError, match="policy_rows"):
        D.heston_bounds(rows[1:], HESTON_TIMES, HESTON, HESTON_STRIKE, False, *KEYS)


# -- several assets with a Heston name (heston_legs_bounds) ------------------------------------

#: A Heston name whose variance cannot move (ξ = 1e-3, v0 = v̄ = σ²) is a GBM name of volatility
#: σ = 0.2: beside a GBM name it makes the max-call above at S0 = 100 (13.90).
STILL_HESTON = dict(model="heston", spot=100.0, rate=0.05, div_yield=0.10, v0=0.04, kappa=2.0,
                    vbar=0.04, xi=1e-3, corr=-0.5)
GBM_LEG = dict(model="gbm", spot=100.0, rate=0.05, div_yield=0.10, vol=0.2)
#: Outer x inner paths of its runs (the engine's, ``underlying.HESTON_LEGS_*_PATHS``).
HESTON_LEGS_PATHS = (500, 200)


@functools.lru_cache(maxsize=None)
def _still_heston_max_call():
    """(the Heston legs' bounds, the GBM legs' bounds of the same trade), both from the max-call's policy fitted on GBM pilots (``_max_call``) and the same
    outer x inner paths."""
    _, rows, market, _ = _max_call(100.0)
    heston = D.heston_legs_bounds(rows, MAX_CALL_DATES, P.BEST_OF, True, 100.0,
                                  [STILL_HESTON, GBM_LEG], [1.0, 1.0], np.eye(2), KEYS[0], NAMES,
                                  n_outer=HESTON_LEGS_PATHS[0], n_inner=HESTON_LEGS_PATHS[1])
    gbm = D.gbm_legs_bounds(rows, MAX_CALL_DATES, *market, *HESTON_LEGS_PATHS)
    return heston, gbm


def test_still_heston_max_call_is_bounded_tightly():
    """QE on the 162-step grid (52 a year and the dates), 500 x 200 paths (the engine's
    defaults).  Measured: 13.950 ± 0.052 against 13.90 (+0.36 %, +1.0 SE), the policy's value
    13.814 ± 0.049, gap 0.136 ± 0.017, 2.0 s; allowed 1.5 % + 4 SE (the inner paths carry no
    control: 500 x 100 gave +1.35 %)."""
    b, _ = _still_heston_max_call()
    ref = MAX_CALL_REFERENCE[100.0]
    assert b.upper_se < 0.005 * ref
    assert b.upper > ref - 4 * b.upper_se, b               # an upper bound
    assert b.upper - ref < 0.015 * ref + 4 * b.upper_se, b
    assert b.lower < ref + 4 * b.lower_se, b
    assert 0.0 < b.gap < 0.03 * ref, b


def test_still_heston_max_call_agrees_with_the_gbm_legs_bound():
    """The same trade with both names GBM (``gbm_legs_bounds``, exact steps at the dates, its
    own paths), the same policy and numbers of paths: the two bounds and policy values agree
    within their SEs.  Measured: upper 13.950 ± 0.052 against 13.991 ± 0.053, lower 13.814
    against 13.818, gap 0.136 against 0.174."""
    heston, gbm = _still_heston_max_call()
    assert abs(heston.upper - gbm.upper) < 4 * np.hypot(heston.upper_se, gbm.upper_se)
    assert abs(heston.lower - gbm.lower) < 4 * np.hypot(heston.lower_se, gbm.lower_se)


def _genuine_heston_run(**paths):
    """A call of ``heston_legs_bounds`` on a genuine Heston name (ξ = 0.3) beside a GBM name,
    correlated 0.3, under the max-call's policy."""
    _, rows, _, _ = _max_call(100.0)
    return functools.partial(D.heston_legs_bounds, rows, MAX_CALL_DATES, P.BEST_OF, True, 100.0,
                             [dict(STILL_HESTON, xi=0.3), GBM_LEG], [1.0, 1.0], CHOLESKY_03,
                             KEYS[0], NAMES, **paths)


def test_heston_legs_two_calls_give_the_same_bits():
    run = _genuine_heston_run(n_outer=48, n_inner=16)
    first = run()
    assert run() == first
    assert D.heston_legs_upper_bound(*run.args, **run.keywords) == (first.upper, first.upper_se)
    # and each leg's key matters
    args = list(run.args)
    args[-1] = (NAMES[0] + 5, NAMES[1])
    assert D.heston_legs_bounds(*args, **run.keywords).upper != first.upper


def test_heston_legs_same_bits_on_one_and_two_threads():
    first, second = _on_one_and_two_threads(_genuine_heston_run(n_outer=48, n_inner=16))
    assert first == second


def _heston_legs_transcription(rows, times, kind, is_call, strike, params, weights, factor,
                               names, steps_per_year, scheme, n_outer, n_inner):
    """``heston_legs_bounds`` as the definitions read, slowly: the legs stepped one by one as
    ``models.heston.group_rows`` lays out a group (leg q's spot driver draw 2k and, for a Heston
    leg, its own driver draw 2k + 1 of step k under keys (KEYS[0], names[q]), the spot drivers
    mixed by ``factor``, a Heston leg's (zs, zv) rotated from its spot normal and its own and
    stepped by ``qe_step`` or ``euler_step``, a GBM leg exactly), every Q̂_k (k = 0..n-1) on
    inner paths to their stop or the maturity, M_k = Σ_{j<k} (L̂_{j+1} - Q̂_j), the max of
    h̃_k - M_k over the in-the-money dates and the maturity.  (upper, lower, the outer paths'
    log-spots x[q, i, o] at the grid points)."""
    from mcgreeks import vecmath
    from mcgreeks.models import heston as H
    from mcgreeks.rng import STREAM_DUAL, normal
    n = times.size
    omega = 1.0 if is_call else -1.0
    grid = H.simulation_grid(times, steps_per_year)
    dt = np.diff(np.concatenate([[0.0], grid]))
    point = np.searchsorted(grid, times) + 1          # the grid point of each date
    date_of = {int(i): d + 1 for d, i in enumerate(point)}
    heston = [p["model"] == "heston" for p in params]
    coef = [H.scenario_coefficients(dt, p, [H.scenario_row(p)])[0] if h else None
            for p, h in zip(params, heston)]
    rate = params[0]["rate"]
    disc = np.exp(-rate * np.concatenate([[0.0], times]))
    level = np.array(weights) * np.array([p["spot"] for p in params])

    def step(x, v, i, path):            # the legs' log-spots and variances at point i from i - 1
        k = i - 1
        e = factor @ np.array([normal(KEYS[0], name, STREAM_DUAL, path, 2 * k) for name in names])
        x, v = x.copy(), v.copy()
        for q, p in enumerate(params):
            if not heston[q]:
                x[q] += (rate - p["div_yield"] - 0.5 * p["vol"] ** 2) * dt[k] \
                    + p["vol"] * np.sqrt(dt[k]) * e[q]
                continue
            own = normal(KEYS[0], names[q], STREAM_DUAL, path, 2 * k + 1)
            rho = p["corr"]
            rho_bar = H.correlation_complement(rho)
            zs, zv = rho_bar * e[q] - rho * own, rho * e[q] + rho_bar * own
            if scheme == "qe":
                v[q], dx = H.qe_step(v[q], zv, zs, vecmath.normal_tail(zv), coef[q][k])[:2]
            else:
                v[q], dx = H.euler_step(v[q], zv, zs, dt[k], coef[q][k, H.DRIFT], p["kappa"],
                                        p["vbar"], p["xi"], rho, rho_bar)[:2]
            x[q] += dx
        return x, v

    def spots(x):
        return level * np.exp(x)

    def value(x):
        return max(omega * (X.legs_value(kind, spots(x)) - strike), 0.0)

    def exercises(x, d):
        return X.exercises_legs(rows, d - 1, kind, omega, strike, spots(x), len(params))

    def q_hat(x0, v0, k, path0):        # from date k (0: time 0) on
        total = 0.0
        for j in range(n_inner):
            x, v = x0, v0
            for i in range(point[k - 1] + 1 if k > 0 else 1, grid.size + 1):
                x, v = step(x, v, i, path0 + j)
                d = date_of.get(i, 0)
                if d == n or (d > 0 and exercises(x, d)):
                    total += disc[d] * value(x)
                    break
        return total / n_inner

    uppers, lowers, outer = [], [], []
    start = (np.zeros(len(params)), np.array([p["v0"] if h else 0.0
                                              for p, h in zip(params, heston)]))
    for o in range(n_outer):
        inner0 = n_outer + o * n * n_inner
        path = [start]
        for i in range(1, grid.size + 1):
            path.append(step(*path[-1], i, o))
        outer.append([x for x, _ in path[1:]])
        s = [start] + [path[i] for i in point]           # the states at dates 0..n
        h = np.array([disc[k] * value(s[k][0]) for k in range(n + 1)])
        q = np.array([q_hat(*s[k], k, inner0 + k * n_inner) for k in range(n)])
        stops = [False] + [exercises(s[k][0], k) for k in range(1, n)]
        low = [h[k] if stops[k] else q[k] for k in range(n)] + [h[n]]
        m = np.concatenate([[0.0], np.cumsum([low[k + 1] - q[k] for k in range(n)])])
        used = [k for k in range(1, n) if h[k] > 0.0] + [n]
        uppers.append(max(h[k] - m[k] for k in used))
        lowers.append(q[0])
    return np.mean(uppers), np.mean(lowers), np.transpose(outer, (2, 1, 0))


#: Small cases for the bookkeeping, over a year at 8 steps a year: a best-of call on a Heston
#: and a GBM name (QE) and a basket put on a GBM and two Heston names (Euler), each name's
#: market its own.
HESTON_LEGS_CASES = [
    (P.BEST_OF, True, [dict(STILL_HESTON, xi=0.5, corr=-0.6, div_yield=0.06, v0=0.05),
                       dict(GBM_LEG, spot=95.0, div_yield=0.03, vol=0.3)],
     [1.0, 1.0], CHOLESKY_03, "qe"),
    (P.BASKET, False, [dict(GBM_LEG, div_yield=0.0),
                       dict(STILL_HESTON, div_yield=0.0, xi=0.6, corr=-0.3),
                       dict(STILL_HESTON, spot=90.0, div_yield=0.02, v0=0.09, xi=0.4, corr=0.2)],
     [0.5, 0.3, 0.2], np.linalg.cholesky(np.array([[1.0, 0.3, 0.2], [0.3, 1.0, 0.5],
                                                     [0.2, 0.5, 1.0]])), "euler")]


@pytest.mark.parametrize("kind, is_call, params, weights, factor, scheme", HESTON_LEGS_CASES)
def test_heston_legs_kernel_is_the_definitions(kind, is_call, params, weights, factor, scheme):
    """The kernel (the legs' group steps, ``exercises_legs``, only in-the-money dates used, M̂
    carried across the others, dense and one-by-one normals) against
    ``_heston_legs_transcription`` with few paths: the same means up to rounding; and the
    transcription's outer paths are ``models.heston.group_sample_paths``' (the pricer's way of
    simulating a group) in stream ``STREAM_DUAL``."""
    from mcgreeks.models.heston import group_sample_paths, simulation_grid
    from mcgreeks.rng import STREAM_DUAL
    times = np.arange(1, 5) / 4.0
    names = (KEYS[1], KEYS[1] + 1, KEYS[1] + 2)[:len(params)]
    xs = X.group_legs_pilot(params, weights, factor, times, KEYS[0], names, 8, scheme, 1 << 13)
    rows = X.legs_rows(X.fit_legs(xs, times, 100.0, 0.05, is_call, kind), times)
    assert not np.isnan(rows[:-1, X.B0]).all()           # some date exercises
    b = D.heston_legs_bounds(rows, times, kind, is_call, 100.0, params, weights, factor,
                             KEYS[0], names, 8, scheme, n_outer=8, n_inner=10)
    upper, lower, outer = _heston_legs_transcription(rows, times, kind, is_call, 100.0, params,
                                                     weights, factor, names, 8, scheme, 8, 10)
    assert b.upper == pytest.approx(upper, rel=1e-11)
    assert b.lower == pytest.approx(lower, rel=1e-11)
    grid = simulation_grid(times, 8)
    pricer = group_sample_paths(params, factor, grid, 8, key0=KEYS[0], names=names,
                                stream=STREAM_DUAL, scheme=scheme)
    np.testing.assert_allclose(outer, pricer, rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("kind, is_call, params, weights, factor, scheme", HESTON_LEGS_CASES)
def test_group_legs_pilot_is_the_exponential_of_the_group_paths(kind, is_call, params, weights,
                                                                factor, scheme):
    """``exercise_policy.group_legs_pilot`` takes the exponential and the legs' weights inside
    the kernel (``group_sample_paths``' ``scale``): the bits of w_q S0_q exp(x) from the log-moves,
    with a GBM member and a Heston one, odd path counts and a first path past 0, and a subset of
    the grid's dates."""
    from mcgreeks import elementary
    from mcgreeks.models.heston import group_sample_paths, simulation_grid
    from mcgreeks.rng import STREAM_EXERCISE
    times = np.array([0.3, 0.5, 1.0])
    names = (KEYS[1], KEYS[1] + 1, KEYS[1] + 2)[:len(params)]
    grid = simulation_grid(times, 12)
    keep = np.searchsorted(grid, times)
    scale = np.asarray(weights) * np.array([p["spot"] for p in params])
    for n_paths, path0 in ((300, 0), (77, 256)):
        got = X.group_legs_pilot(params, weights, factor, times, KEYS[0], names, 12, scheme,
                                 n_paths, path0)
        x = group_sample_paths(params, factor, grid, n_paths, key0=KEYS[0], names=names,
                               stream=STREAM_EXERCISE, scheme=scheme, first_path=path0, keep=keep)
        want = elementary.exp(x) * scale[:, None, None]
        assert np.array_equal(got, want.transpose(1, 0, 2))


def test_heston_legs_bad_input():
    _, rows, _, _ = _max_call(100.0)
    legs = [STILL_HESTON, GBM_LEG]

    def bound(params=legs, kind=P.BEST_OF, **change):
        args = dict(weights=[1.0, 1.0], factor=np.eye(2), key0=KEYS[0], names=NAMES)
        return D.heston_legs_upper_bound(rows, MAX_CALL_DATES, kind, True, 100.0, params,
                                         **{**args, **change})

    with pytest.raises(ValueError, match="kind"):
        bound(kind=P.EUROPEAN)
    with pytest.raises(ValueError, match="scheme"):
        bound(scheme="milstein")
    with pytest.raises(ValueError, match="kappa"):
        bound([dict(STILL_HESTON, kappa=-1.0), GBM_LEG])
    with pytest.raises(ValueError, match="GBM leg"):
        bound([STILL_HESTON, dict(GBM_LEG, vol=0.0)])
    with pytest.raises(ValueError, match="one rate"):
        bound([STILL_HESTON, dict(GBM_LEG, rate=0.04)])
    with pytest.raises(ValueError, match="names"):
        bound(names=NAMES[:1])
    with pytest.raises(ValueError, match="factor"):
        bound(factor=np.array([[1.0, 0.5], [0.0, 1.0]]))
