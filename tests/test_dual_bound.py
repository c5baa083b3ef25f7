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
- the European control in the inner paths changes the noise, not the mean.
"""
import time

import numba
import numpy as np
import pytest

from mcgreeks import dual_bound as D
from mcgreeks import exercise_policy as X
from mcgreeks.analytic.american import american_price

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
    """The defaults' run (DEFAULT_OUTER x DEFAULT_INNER paths) and its time in seconds."""
    rows, times, market, ref = ls_put
    start = time.perf_counter()
    bounds = D.gbm_bounds(rows, times, *market, *KEYS)
    return bounds, time.perf_counter() - start


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
    1000 x 50, 0.0069 at 1000 x 100), in 2.2 s on one core; the test allows 20 s."""
    *_, ref = ls_put
    b, elapsed = ls_put_bounds
    assert ref == pytest.approx(4.478, abs=6e-4)
    _check_tight(b, ref)
    assert b.gap < 0.003 * ref
    assert elapsed < 20.0


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


def test_same_bits_on_one_and_two_threads(ls_put):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one numba thread only")
    rows, times, market, _ = ls_put
    before = numba.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            out.append(D.gbm_bounds(rows, times, *market, *KEYS, n_outer=96, n_inner=24))
    finally:
        numba.set_num_threads(before)
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
    good, _ = ls_put_bounds
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
    """The estimator as the definitions read, slowly: every Q̂_k (k = 0..n-1) simulated on every
    inner path to the maturity, L̂_k, Δ_k = L̂_{k+1} - Q̂_k and M_k = Σ_{j<k} Δ_j, the max of
    h̃_k - M_k over the dates the kernel keeps.  (upper, lower) means."""
    from mcgreeks.rng import STREAM_DUAL, normal
    n = times.size
    omega = 1.0 if is_call else -1.0
    grid = np.concatenate([[0.0], times])
    dt = np.diff(grid)
    disc = np.exp(-rate * grid)

    def step(x, d, path):               # spot at date d from the spot at date d - 1
        z = normal(key0, key1, STREAM_DUAL, path, d - 1)
        return x * np.exp((rate - div - 0.5 * vol * vol) * dt[d - 1]
                          + vol * np.sqrt(dt[d - 1]) * z)

    def euro(x, d):
        return X.european_value(omega, x, strike, grid[n] - grid[d], rate, div, vol)

    def q_hat(x0, k, path0):
        total = 0.0
        for j in range(n_inner):
            x = x0
            for d in range(k + 1, n + 1):
                x = step(x, d, path0 + j)
                if d == n:
                    y = disc[n] * max(omega * (x - strike), 0.0)
                    if control:     # y - (D_T E(T, S_T) - D_k E(t_k, S_k)), E(T, S) = h(S)
                        y = disc[k] * euro(x0, k)
                    break
                if X.exercises(rows, d - 1, omega, strike, x):
                    y = disc[d] * omega * (x - strike)
                    if control:
                        y -= disc[d] * euro(x, d) - disc[k] * euro(x0, k)
                    break
            total += y
        return total / n_inner

    uppers, lowers = [], []
    for o in range(n_outer):
        inner0 = n_outer + o * n * n_inner
        s = [spot]
        for d in range(1, n + 1):
            s.append(step(s[-1], d, o))
        h = np.array([disc[k] * max(omega * (s[k] - strike), 0.0) for k in range(n + 1)])
        q = np.array([q_hat(s[k], k, inner0 + k * n_inner) for k in range(n)])
        stops = [False] + [X.exercises(rows, k - 1, omega, strike, s[k]) for k in range(1, n)]
        low = [h[k] if stops[k] else q[k] for k in range(n)] + [h[n]]
        m = np.concatenate([[0.0], np.cumsum([low[k + 1] - q[k] for k in range(n)])])
        # the dates where exercising may be optimal (worth at least the European), where the
        # policy exercises, and the maturity
        used = [k for k in range(1, n) if h[k] > 0.0 and (
            stops[k] or h[k] / disc[k] + D.TIE * strike >= euro(s[k], k))] + [n]
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
