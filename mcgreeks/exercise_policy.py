"""Longstaff–Schwartz exercise policies: fitted by least squares on pilot paths, applied to others.

An option exercisable at dates t_1 < ... < t_n (t_n = T, the maturity) pays h(S_k) when exercised
at t_k.  Longstaff & Schwartz (2001) estimate the continuation value at t_k, the discounted
value of holding on, by regressing the cash flows that the policy from t_{k+1} on realizes,
discounted to t_k, on functions of the state at t_k, over the paths in the money at t_k; the
policy exercises at the first t_k where h(S_k) > 0 and h(S_k) >= the fitted continuation value
(and at T wherever h > 0).

Here the regression is fitted on a pilot set of paths (``fit``) and the fitted policy is applied
to independent paths (``stopping``), so the price on those paths is the value of a fixed,
feasible policy: its Monte Carlo estimate is unbiased for that value, a low-biased estimate of
the option's, with an honest standard error (Glasserman 2004, §8.6; Broadie & Glasserman
2004).  The same paths for both would bias it high (the policy would see the future of the
paths it is judged on).

Basis (``features``, documented per column): for one asset, x = S/K, the columns 1, x, x² and
the European value of the option's remaining life at t_k (Black–Scholes, in units of K, when
the caller gives it; the regressor that carries most of the continuation value, so that three
powers suffice).  The regression runs on in-the-money paths only, and a date with fewer
in-the-money pilot paths than ``MIN_ITM`` keeps no exercise (continuation = +inf).

References: F. Longstaff, E. Schwartz (2001), "Valuing American options by simulation: a simple
least-squares approach", Review of Financial Studies 14(1), 113-147; P. Glasserman (2004),
Monte Carlo Methods in Financial Engineering, §8.6.
"""
import math
from dataclasses import dataclass

import numpy as np

from mcgreeks import elementary, linalg, vecmath
from mcgreeks import payoffs as P
from mcgreeks._jit import kernel
from mcgreeks.engine import SEGMENT, TILE, for_blocks, prefetched
from mcgreeks.rng import fill_normal_rows

#: Fewest in-the-money pilot paths a date's regression needs (per basis column, 10).
MIN_ITM_PER_COLUMN = 10

#: Columns of a fitted policy as the kernels read it (``rows``): one row per exercise date of a
#: trade, aligned with its dates in ``kernel_inputs.Book.fix_idx``: the coefficients B0..B6 of
#: its basis (NaN: no exercise before the maturity at that date): for one asset 1, x, x²,
#: European/K and (Heston) the variance v (B4 = 0 under GBM; B5 = B6 = 0); for several,
#: ``legs_features``' seven; then the European regressor's inputs (one asset), frozen at the
#: fit (so that the policy is one fixed function of the date's number, the spot and the
#: variance, whatever parameter a Greek moves): the option's remaining life T - t_k, the rate,
#: the dividend yield, and its variance σ² = VAR_LONG + VAR_WEIGHT (v - VAR_LONG): GBM's σ²
#: (weight 0), or Heston's expected mean variance over the remaining life, which reverts from
#: the path's v to v̄ (weight (1 - e^{-κτ})/(κτ)).
B0, B1, B2, B3, B4, B5, B6, REMAINING, RATE, DIV, VAR_LONG, VAR_WEIGHT = range(12)
N_POLICY = 12


@dataclass
class Policy:
    """A fitted exercise policy: coefficients[k] of the continuation value at date k (k < n - 1;
    NaN where the date keeps no exercise), the basis' column names, and per date the number
    of in-the-money pilot paths and the regression's R² (diagnostics)."""
    coefficients: np.ndarray
    columns: tuple
    n_itm: np.ndarray
    r_squared: np.ndarray


#: Relative cutoff of the fit's pseudo-inverse, per basis column: NumPy's ``lstsq`` default
#: (machine epsilon times the matrix's size).
LSTSQ_RCOND = float(np.finfo(float).eps)


def exercise_value(spots, strike, is_call):
    """h(S) = (ω(S - K))⁺ of a vanilla, per element."""
    omega = 1.0 if is_call else -1.0
    return np.maximum(omega * (np.asarray(spots) - strike), 0.0)


def features(spots, strike, european=None, variance=None):
    """The regression basis at one date: columns 1, x, x² with x = S/K, and, when given, the
    European value of the remaining option divided by K and the variance.  Shape (n_paths,
    n_columns)."""
    x = np.asarray(spots, dtype=float) / strike
    cols = [np.ones_like(x), x, x * x]
    if european is not None:
        cols.append(np.asarray(european, dtype=float) / strike)
    if variance is not None:
        cols.append(np.asarray(variance, dtype=float))
    return np.stack(cols, axis=1)


def column_names(with_european, with_variance=False):
    """The basis' column names, as ``features`` builds them."""
    return ("1", "S/K", "(S/K)^2") + (("european/K",) if with_european else ()) + \
        (("v",) if with_variance else ())


def legs_value(kind, xs):
    """u of a multi-asset payoff from its legs' weighted spots xs[q, ...] (``payoffs``'
    ``legs_quantity``): their sum (basket), largest (best_of), smallest (worst_of), or the
    first less the second (spread)."""
    if kind == P.BASKET:
        return xs.sum(axis=0)
    if kind == P.BEST_OF:
        return xs.max(axis=0)
    if kind == P.WORST_OF:
        return xs.min(axis=0)
    return xs[0] - xs[1]


def legs_features(kind, xs, strike, omega):
    """The basis of a multi-asset exercise policy at one date: columns 1, a, b, a², b², ab and
    h/K, where a and b are the two legs' weighted spots (in units of K) that matter most, the
    largest two (a basket, a best-of), the smallest two (a worst-of) or the two legs in order (a
    spread), b = 0 for one leg, and h = (ω(u - K))⁺ the exercise value (Longstaff & Schwartz
    2001, §3: powers and products of the sorted assets and the payoff).  xs[q, p]: leg q's
    weighted spot on path p.  Shape (n_paths, 7)."""
    xs = np.asarray(xs, dtype=float) / strike
    if kind == P.SPREAD:
        a, b = xs[0], xs[1]
    elif len(xs) == 1:
        a, b = xs[0], np.zeros_like(xs[0])
    else:
        a, b = _two_extremes(xs, np.minimum if kind == P.WORST_OF else np.maximum)
    h = np.maximum(omega * (legs_value(kind, xs) - 1.0), 0.0)
    return np.stack([np.ones_like(a), a, b, a * a, b * b, a * b, h], axis=1)


def _two_extremes(xs, better):
    """(first, second) of the rows xs[q, :] ranked by ``better`` (np.maximum: the largest two,
    np.minimum: the smallest two), per column, ties kept (two equal largest give a = b): the
    values a sort along axis 0 puts first, in one pass over the legs instead of a sort of
    every column (a sort of five strided values per path was half of a basket's fit)."""
    worse = np.minimum if better is np.maximum else np.maximum
    first, second = better(xs[0], xs[1]), worse(xs[0], xs[1])
    for x in xs[2:]:
        second = better(second, worse(first, x))
        first = better(first, x)
    return first, second


LEGS_COLUMNS = ("1", "a", "b", "a^2", "b^2", "ab", "h/K")


def fit_legs(xs, times, strike, rate, is_call, kind):
    """``fit`` for a multi-asset payoff ``kind`` on pilot paths of its legs' weighted spots
    xs[k, q, p] at dates times[k], with the basis of ``legs_features`` (built by
    ``_legs_basis``, date by date, without temporaries the size of the pilot)."""
    omega = 1.0 if is_call else -1.0
    xs = np.asarray(xs, dtype=float)

    def value(k):
        h = np.empty(xs.shape[2])
        _legs_exercise(xs[k], kind, strike, omega, h)
        return h

    def basis(k, itm):
        xt = np.empty((len(LEGS_COLUMNS), itm.size))
        _legs_basis(xs[k], kind, strike, omega, itm, xt)
        return xt

    return _fit(value, basis, xs.shape[0], len(LEGS_COLUMNS), times, rate, LEGS_COLUMNS)


@kernel
def _legs_exercise(xs, kind, strike, omega, out):
    """out[p] = (ω(u - K))⁺ of ``fit_legs``' regressand on each path p of a date's weighted
    spots xs[q, p]: u formed leg by leg over all the paths (``_legs_fold``), a loop over the
    paths that vectorizes."""
    n_paths = xs.shape[1]
    for p in range(n_paths):
        out[p] = xs[0, p]
    if kind == P.SPREAD:
        for p in range(n_paths):
            out[p] = out[p] - xs[1, p]
    else:
        for q in range(1, xs.shape[0]):
            for p in range(n_paths):
                out[p] = _legs_fold(kind, out[p], xs[q, p])
    for p in range(n_paths):
        out[p] = max(omega * (out[p] - strike), 0.0)


@kernel(inline=True)
def _legs_fold(kind, u, x):
    """u of ``legs_value`` after adding leg value x (legs added in order, as NumPy's sum over
    the legs' axis adds them; not a spread's)."""
    if kind == P.BASKET:
        return u + x
    if kind == P.BEST_OF:
        return max(u, x)
    return min(u, x)


@kernel
def _legs_basis(xs, kind, strike, omega, itm, xt):
    """xt[:, j] = ``legs_features``' seven columns (1, a, b, a², b², ab, h/K) of path itm[j] of
    a date's weighted spots xs[q, p]: the same operations in the same order, so the same bits.
    Leg by leg over all the paths, each leg's x / K computed once for the extremes and for u:
    a path at a time with its legs inside, the ten divisions by K of a 5-name basket did not
    overlap (12 ns a path)."""
    n, m = xs.shape[0], itm.size
    a, b, u = xt[1], xt[2], xt[6]
    for j in range(m):
        x0 = xs[0, itm[j]] / strike
        u[j] = x0
        a[j] = x0
        b[j] = 0.0
    if kind == P.SPREAD:
        for j in range(m):
            x1 = xs[1, itm[j]] / strike
            b[j] = x1
            u[j] = u[j] - x1
    elif n > 1:
        for j in range(m):
            # _two_extremes' running pair: the largest two (smallest two for a worst-of)
            x1 = xs[1, itm[j]] / strike
            x0 = a[j]
            a[j] = min(x0, x1) if kind == P.WORST_OF else max(x0, x1)
            b[j] = max(x0, x1) if kind == P.WORST_OF else min(x0, x1)
            u[j] = _legs_fold(kind, u[j], x1)
        for q in range(2, n):
            for j in range(m):
                x = xs[q, itm[j]] / strike
                if kind == P.WORST_OF:
                    b[j] = min(b[j], max(a[j], x))
                    a[j] = min(a[j], x)
                else:
                    b[j] = max(b[j], min(a[j], x))
                    a[j] = max(a[j], x)
                u[j] = _legs_fold(kind, u[j], x)
    for j in range(m):
        xt[0, j] = 1.0
        xt[3, j] = a[j] * a[j]
        xt[4, j] = b[j] * b[j]
        xt[5, j] = a[j] * b[j]
        u[j] = max(omega * (u[j] - 1.0), 0.0)


def fit(spots, times, strike, rate, is_call, european=None, variance=None, regressor=None):
    """Fit the policy by backward induction on pilot paths.

    spots[k, p]: the spot at exercise date times[k] (years, increasing, the last the maturity)
    on pilot path p; european[k, p] (optional): the European value of the option's remaining
    life at times[k], and variance[k, p] (optional, Heston), basis columns (the variance only
    with the European).  ``regressor`` = (div_yield, vol, kappa), instead of ``european``:
    that column is ``remaining_european``'s, computed date by date for the paths the date
    regresses on alone, by the kernel that forms the basis (``_european_basis``: the same
    values, on the worker thread that prepares the next date).  The realized cash flow of each
    path under the policy already fitted from t_{k+1} on is discounted to t_k at ``rate`` and
    regressed on the basis over the paths in the money at t_k.  Returns a ``Policy``."""
    spots = np.asarray(spots, dtype=float)
    with_european = european is not None or regressor is not None
    n_cols = 3 + with_european + (variance is not None)

    def values(k):
        # date by date, on the fit's prefetch thread (the whole pilot's at once was a tenth of
        # a GBM American's fit, on the calling thread)
        return exercise_value(spots[k], strike, is_call)

    if regressor is None:
        def basis(k, itm):
            return features(spots[k, itm], strike,
                            None if european is None else european[k, itm],
                            None if variance is None else variance[k, itm]).T
    else:
        div_yield, vol, kappa = regressor
        weights = variance_weights(times, kappa)
        omega = 1.0 if is_call else -1.0
        var_k = np.zeros((len(times), 0)) if variance is None else \
            np.ascontiguousarray(variance, dtype=float)

        def basis(k, itm):
            xt = np.empty((n_cols, itm.size))
            _european_basis(spots[k], var_k[k], itm, strike, omega, times[-1] - times[k], rate,
                            div_yield, vol, weights[k], xt)
            return xt

    return _fit(values, basis, len(times), n_cols, times, rate,
                column_names(with_european, variance is not None))


@kernel
def _european_basis(spots, variance, itm, strike, omega, remaining, rate, div_yield, vol,
                    weight, xt):
    """xt[:, j] = ``features``' columns 1, x, x², E/K (and v when variance is not empty) of
    path itm[j] (in the money), with E ``remaining_european``'s value there: the same
    operations, so the same bits, for only the paths a date regresses on (the whole pilot's
    European values, one date after another on one thread, were a fifth of a GBM American's
    time)."""
    m = itm.size
    ones, xs, squares, ek = xt[0], xt[1], xt[2], xt[3]
    # gathered first, so that each loop below runs over contiguous rows and vectorizes
    for j in range(m):
        xs[j] = spots[itm[j]]
    v2 = vol * vol
    if variance.size > 0:
        vs = xt[4]
        for j in range(m):
            vs[j] = variance[itm[j]]
        for j in range(m):
            var = v2 + weight * (vs[j] - v2)
            ek[j] = _black_scholes(omega, xs[j], strike, remaining, rate, div_yield,
                                   math.sqrt(max(var, 0.0)), False) / strike
    else:
        sd = math.sqrt(max(v2, 0.0))
        for j in range(m):
            ek[j] = _black_scholes(omega, xs[j], strike, remaining, rate, div_yield, sd,
                                   False) / strike
    for j in range(m):
        x = xs[j] / strike
        ones[j] = 1.0
        xs[j] = x
        squares[j] = x * x


def _fit(value, basis, n_dates, n_cols, times, rate, names):
    """Longstaff-Schwartz backward induction over ``n_dates`` dates: value(k), the exercise
    value at date k per pilot path (an array no later call overwrites); basis(k, itm), the
    regressors of the in-the-money paths ``itm`` at date k as columns (n_cols x itm.size).
    A date's exercise values and regressors do not depend on the later dates' fits, so the
    next date's are formed on a worker thread while this date's regression runs
    (``engine.prefetched``: the same operations, so the same bits; a 5-name basket's 251
    dates, 25,000 pilot paths: 0.14 s on one thread, of which the regressors 0.04 and the
    exercise values 0.02)."""
    times = np.asarray(times, dtype=float)
    # each path's realized cash flow discounted to 0, so that a date's regressand is one
    # product (the discount to t_k) instead of an exponential per path
    paid = value(n_dates - 1) * elementary.exp_scalar(-rate * times[-1])
    coefficients = np.full((n_dates - 1, n_cols), np.nan)
    xtx, xty = np.empty((n_cols, n_cols)), np.empty(n_cols)
    n_itm = np.zeros(n_dates - 1, dtype=np.int64)
    r_squared = np.full(n_dates - 1, np.nan)

    def inputs(k):
        h = value(k)
        itm = np.flatnonzero(h > 0.0)
        if itm.size < MIN_ITM_PER_COLUMN * n_cols:
            return h, itm, None
        return h, itm, np.ascontiguousarray(basis(k, itm), dtype=float)

    dates = range(n_dates - 2, -1, -1)
    for k, (h, itm, xt) in zip(dates, prefetched(inputs, dates)):
        n_itm[k] = itm.size
        if xt is None:
            continue
        y = np.empty(itm.size)
        _gather(paid, itm, elementary.exp_scalar(rate * times[k]), y)
        # least squares by the normal equations: n_cols² work per path instead of an SVD of
        # the whole matrix; the small system's pseudo-inverse keeps a rank-deficient basis
        # (e.g. a basket of one name) at its minimum-norm solution.  mcgreeks.linalg, not
        # BLAS: the policy, hence every exercise, has the same bits on every machine.
        linalg.normal_equations(xt, y, xtx, xty)
        beta = np.empty(n_cols)
        linalg.pinv_solve(xtx, xty, LSTSQ_RCOND * n_cols, beta)
        fitted = np.empty(itm.size)
        linalg.columns_times(xt, beta, fitted)
        coefficients[k] = beta
        r_squared[k] = linalg.r_squared(y, fitted)
        _exercise(h, itm, fitted, elementary.exp_scalar(-rate * times[k]), paid)
    return Policy(coefficients, names, n_itm, r_squared)


@kernel
def _gather(paid, itm, growth, y):
    """y[j] = paid[itm[j]] · growth: the regressand of a date, each in-the-money path's realized
    cash flow (discounted to 0) carried to the date."""
    for j in range(itm.size):
        y[j] = paid[itm[j]] * growth


@kernel
def _exercise(h, itm, fitted, discount, paid):
    """Where the exercise value h of an in-the-money path itm[j] reaches its fitted
    continuation, the path is exercised at this date: its cash flow becomes h · discount (the
    date's discount to 0), replacing a later one."""
    for j in range(itm.size):
        i = itm[j]
        if h[i] >= fitted[j]:
            paid[i] = h[i] * discount


def stopping(policy, spots, times, strike, is_call, european=None):
    """Apply a fitted policy to paths (spots[k, p] at times[k], as for ``fit``, but independent
    paths): (index of the exercise date per path, or -1 when the option expires unexercised;
    the cash flow at that date)."""
    spots = np.asarray(spots, dtype=float)
    n_dates, n_paths = spots.shape
    index = np.full(n_paths, -1, dtype=np.int64)
    cash = np.zeros(n_paths)
    alive = np.ones(n_paths, dtype=bool)
    for k in range(n_dates):
        h = exercise_value(spots[k], strike, is_call)
        if k == n_dates - 1:
            exercise = alive & (h > 0.0)
        else:
            beta = policy.coefficients[k]
            if np.isnan(beta).any():
                continue
            x = features(spots[k], strike, None if european is None else european[k])
            fitted = np.empty(n_paths)
            linalg.columns_times(np.ascontiguousarray(x.T), beta, fitted)
            exercise = alive & (h > 0.0) & (h >= fitted)
        index[exercise] = k
        cash[exercise] = h[exercise]
        alive &= ~exercise
    return index, cash


def price(policy, spots, times, strike, rate, is_call, european=None):
    """(estimate, standard error) of the policy's value on the paths: the mean over paths of the
    cash flow discounted from its exercise date (0 where unexercised)."""
    index, cash = stopping(policy, spots, times, strike, is_call, european)
    paid = np.where(index >= 0, cash * elementary.exp(-rate * np.asarray(times)[np.maximum(index, 0)]),
                    0.0)
    return float(paid.mean()), float(paid.std(ddof=1) / np.sqrt(paid.size))


#: Pilot paths a trade's policies are fitted on, in all (stream ``rng.STREAM_EXERCISE``).
PILOT_PATHS = 1 << 18
#: Independent policies a trade is priced with, at most: each fitted on its own share of the
#: pilot and applied to its own run of whole segments of the main paths, so that the spread of
#: their estimates carries the policy fit's noise into every standard error (``replicates``).
POLICY_REPLICATES = 8


def replicates(n_paths, segment, replicated=True):
    """(number of policies R, policy_of[s]: the policy of main-run segment s, s = 0 ..
    ⌈n_paths / segment⌉ - 1).  R = min(POLICY_REPLICATES, the whole segments), each policy on a
    run of consecutive segments (a partial last segment joins the last run); R = 1 with fewer
    than two whole segments, or when not ``replicated`` (a Sobol run, whose spread is its
    scramblings')."""
    n_segments = -(-n_paths // segment)
    whole = n_paths // segment
    r = min(POLICY_REPLICATES, whole) if replicated and whole >= 2 else 1
    policy_of = np.minimum(np.arange(n_segments) * r // max(whole, 1), r - 1)
    return r, policy_of.astype(np.int64)


#: Exercise dates per year of an American option when ``steps_per_year`` is not given (the
#: Heston grid's default, ``pricers.heston.DEFAULT_STEPS_PER_YEAR``).
AMERICAN_STEPS_PER_YEAR = 52


def american_dates(maturity, steps_per_year=None):
    """Exercise dates of an American option: one per step of the simulation grid,
    n = ⌈T · steps_per_year⌉ equally spaced dates (a Bermudan that approaches it as n grows)."""
    spy = AMERICAN_STEPS_PER_YEAR if steps_per_year is None else steps_per_year
    return max(1, math.ceil(maturity * spy - 1e-9))


def gbm_pilot(spot, rate, div_yield, vol, times, key0, key1, n_paths=PILOT_PATHS, path0=0):
    """Spots S[k, p] at dates ``times`` of ``n_paths`` exact GBM pilot paths, numbers path0 ..
    path0 + n_paths - 1 of stream ``rng.STREAM_EXERCISE`` under keys (key0, key1): the one-leg
    case of ``gbm_legs_pilot``, so the pilot depends on the seed, the name and the dates only."""
    return gbm_legs_pilot([spot], rate, [div_yield], [vol], [1.0], [[1.0]], times, key0, [key1],
                          n_paths, path0)[:, 0]


def gbm_legs_pilot(spots, rate, div_yields, vols, weights, factor, times, key0, names,
                   n_paths=PILOT_PATHS, path0=0):
    """Weighted spots xs[k, q, p] = w_q S_q(t_k) of the legs of a multi-asset trade at dates
    ``times`` on ``n_paths`` exact correlated GBM pilot paths: leg q's own normals (path
    numbers path0 .., stream ``rng.STREAM_EXERCISE``, name key names[q], draw k the increment
    over (t_{k-1}, t_k]) mixed by the lower Cholesky factor of the legs' correlation matrix.
    Blocks of tiles on the engine's threads (``_gbm_legs_block``), as the Heston pilots'."""
    from mcgreeks.models.heston import PILOT_TILES_PER_BLOCK
    from mcgreeks.rng import STREAM_EXERCISE
    times = np.asarray(times, dtype=float)
    steps = np.sqrt(np.diff(np.concatenate([[0.0], times])))
    out = np.empty((times.size, len(spots), n_paths))
    mu = np.asarray(rate - np.asarray(div_yields) - 0.5 * np.asarray(vols) ** 2, dtype=float)
    level = np.asarray(weights, dtype=float) * np.asarray(spots, dtype=float)
    keys = (np.uint64(key0), np.uint64(STREAM_EXERCISE), np.uint64(path0))
    for_blocks(_gbm_legs_block, -(-n_paths // TILE), PILOT_TILES_PER_BLOCK,
               (keys, np.asarray(names, dtype=np.uint64), n_paths),
               (np.ascontiguousarray(factor, dtype=float), times, steps, mu,
                np.asarray(vols, dtype=float), level, out))
    return out


@kernel
def _gbm_legs_block(keys, names, n_paths, first_tile, end_tile, factor, times, steps, mu, vols,
                    level, out):
    """``gbm_legs_pilot``'s tiles first_tile..end_tile-1 into out[:, :, paths], with their own
    scratch: per tile, each leg's normals of every date (``rng.fill_normal_rows``), mixed date
    by date (``vecmath.step_matmul``, the sums of ``tile_matmul``), the Brownian motions
    w += sqrt(dt) mixed, and out = level exp(mu t + vol w): NumPy's operations on whole rows
    before, one at a time, so the same bits (``vecmath.exp_any`` is ``elementary.exp``).
    In NumPy, date by date on one thread, 2^18 paths of 52 dates took 0.2 s."""
    key0, stream, path0 = keys
    n, n_dates = names.size, times.size
    z, mixed = np.empty((n, n_dates, TILE)), np.empty((n, n_dates, TILE))
    w = np.empty((n, TILE))
    for tile in range(first_tile, end_tile):
        start = tile * TILE
        m = min(TILE, n_paths - start)
        for q in range(n):
            fill_normal_rows(key0, names[q], stream, path0 + np.uint64(start), z[q],
                             np.int64(n_dates), np.int64(1), np.int64(0), np.int64(1),
                             np.int64(m))
            for i in range(m):
                w[q, i] = 0.0
        for k in range(n_dates):
            vecmath.step_matmul(factor, z, mixed, k, n, m, True)
            for q in range(n):
                wq, step, drift, vol, scale = w[q], steps[k], mu[q] * times[k], vols[q], level[q]
                dx, dst = mixed[q, k], out[k, q, start:]
                for i in range(m):
                    wq[i] = wq[i] + step * dx[i]
                    dst[i] = scale * vecmath.exp_any(drift + vol * wq[i])


def group_legs_pilot(params, weights, factor, times, key0, names, steps_per_year, scheme,
                     n_paths=PILOT_PATHS, path0=0):
    """``gbm_legs_pilot`` for legs with a Heston name: xs[k, q, p] = w_q S_q(t_k) on
    ``n_paths`` pilot paths of the legs simulated together as the pricer simulates a group
    (``models.heston.group_sample_paths``: leg q's numbers from its name's key names[q], stream
    ``rng.STREAM_EXERCISE``, its spot mixed by the lower Cholesky ``factor`` of the legs'
    correlation, a Heston leg by the pricer's ``scheme`` on the grid of ``times`` and
    ``steps_per_year``)."""
    from mcgreeks.models import heston as H
    from mcgreeks.pricers.heston import DEFAULT_STEPS_PER_YEAR
    from mcgreeks.rng import STREAM_EXERCISE
    grid = H.simulation_grid(times, steps_per_year or DEFAULT_STEPS_PER_YEAR)
    # dates × legs × paths doubles, the pilot's whole memory: formed in place, no copies
    scale = np.asarray(weights, dtype=float) * np.array([p["spot"] for p in params])
    xs = H.group_sample_paths(params, factor, grid, n_paths, key0=key0, names=names,
                              stream=STREAM_EXERCISE, scheme=scheme, first_path=path0,
                              keep=np.searchsorted(grid, times), scale=scale)
    return xs.transpose(1, 0, 2)


def legs_rows(policy, times):
    """The kernels' rows of a multi-asset ``Policy`` (``fit_legs``): B0..B6 per date (NaN: no
    exercise; the maturity's row never read), the other columns unused (NaN)."""
    out = np.full((len(times), N_POLICY), np.nan)
    out[:-1, B0:B6 + 1] = policy.coefficients
    return out


def heston_pilot(params, times, key0, key1, steps_per_year, scheme, n_paths=PILOT_PATHS,
                 path0=0):
    """(spots, variances)[k, p] at dates ``times`` of ``n_paths`` Heston pilot paths, numbers
    path0 .. path0 + n_paths - 1 of stream ``rng.STREAM_EXERCISE``, simulated by the pricer's
    scheme on the grid of ``times`` and ``steps_per_year`` (``models.heston.sample_paths``)."""
    from mcgreeks.models import heston as H
    from mcgreeks.pricers.heston import DEFAULT_STEPS_PER_YEAR
    from mcgreeks.rng import STREAM_EXERCISE
    grid = H.simulation_grid(times, steps_per_year or DEFAULT_STEPS_PER_YEAR)
    # only the exercise dates' rows, the spots' exponential taken as they are written
    return H.sample_paths(params, grid, n_paths, key0=key0, key1=key1, stream=STREAM_EXERCISE,
                          scheme=scheme, first_path=path0, keep=np.searchsorted(grid, times),
                          scale=params["spot"])


def remaining_european(spots, times, strike, rate, div_yield, vol, is_call, variance=None,
                       kappa=None):
    """The European regressor: E[k, p], the Black-Scholes value of the option's remaining life
    T - t_k at spot spots[k, p] (``european_value``, as the kernels evaluate it, with the
    variance of ``rows``: σ² = vol², or with ``kappa`` (Heston) the mean variance expected
    from variance[k, p]) where the option is in the money; 0 elsewhere and at the maturity,
    which no fit reads."""
    spots = np.ascontiguousarray(spots, dtype=float)
    out = np.zeros_like(spots)
    omega = 1.0 if is_call else -1.0
    weights = variance_weights(times, kappa)
    for k in range(len(times) - 1):
        var = np.full(spots.shape[1], vol * vol) if variance is None else \
            vol * vol + weights[k] * (np.asarray(variance[k], dtype=float) - vol * vol)
        var = np.maximum(var, 0.0)      # as exercises_at
        _european_values(omega, spots[k], strike, times[-1] - times[k], rate, div_yield,
                         np.sqrt(var), out[k])
    return out


def variance_weights(times, kappa=None):
    """VAR_WEIGHT per date: (1 - e^{-κτ})/(κτ) over the remaining life τ = T - t_k (the weight
    of today's variance in the mean variance expected over τ under Heston), 0 without
    ``kappa`` (GBM) or at the maturity."""
    times = np.asarray(times, dtype=float)
    tau = times[-1] - times
    if kappa is None:
        return np.zeros_like(tau)
    k_tau = kappa * tau
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k_tau > 1e-12, -elementary.expm1(-k_tau) / k_tau, 1.0) * (tau > 0)


def describe(policies, n_pilot, american):
    """One line for the diagnostics: the method, basis, pilots and the fits' quality."""
    fitted = ~np.isnan(np.stack([p.coefficients[:, 0] for p in policies]))
    r2 = np.stack([p.r_squared for p in policies])[fitted]
    dates = policies[0].coefficients.shape[0] + 1
    quality = f"R² {r2.min():.2f}-{r2.max():.2f}" if r2.size else "no date fitted"
    spread = (f"{len(policies)} policies, each on {n_pilot:,} pilot paths (own stream) and its "
              "own run of main paths; the SEs are the spread of their estimates"
              if len(policies) > 1 else
              f"one policy on {n_pilot:,} pilot paths (own stream); the SEs leave out the "
              "policy's noise (fewer than two segments of paths, or Sobol points)")
    return (f"Longstaff-Schwartz on {dates} exercise date{'s' if dates > 1 else ''}"
            + (" (american: Bermudan at every grid step)" if american else "")
            + f"; basis {', '.join(policies[0].columns)} on in-the-money paths; {spread}; "
            f"{int(fitted.sum(axis=1).min())} dates with exercise, {quality}")


def rows(policy, times, rate, div_yield, vol, kappa=None):
    """The kernels' rows (columns ``B0`` .. ``VAR_WEIGHT``) of a fitted ``Policy`` (its basis
    with the European column, and the variance's under Heston) on exercise dates ``times`` (the
    last the maturity, whose row is never read: there the option is exercised wherever it is
    in the money), with the European regressor's rate, dividend yield and volatility (Heston:
    √v̄, with ``kappa``)."""
    times = np.asarray(times, dtype=float)
    out = np.full((times.size, N_POLICY), np.nan)
    n_cols = policy.coefficients.shape[1]
    out[:-1, B0:B0 + n_cols] = policy.coefficients
    out[:-1, B0 + n_cols:B6 + 1] = 0.0
    out[:, REMAINING] = times[-1] - times
    out[:, RATE], out[:, DIV], out[:, VAR_LONG] = rate, div_yield, vol * vol
    out[:, VAR_WEIGHT] = variance_weights(times, kappa)
    return out


# -- applying a policy in a kernel ------------------------------------------------------------

@kernel(inline=True)
def normal_cdf(z, one_value):
    """Φ(z) = ``vecmath.normal_tail(-z)``, in plain arithmetic: its bits are the same on every
    machine (libm's erfc, used before, gave the policy's regressor, hence which paths exercise,
    the libm's last bits) and a loop over paths that calls it vectorizes.  ``one_value`` (a
    constant of each inlined copy): ``vecmath.normal_tail_one``, the same bits computing only
    the branch z needs, for a caller that takes one value at a time."""
    return vecmath.normal_tail_one(-z) if one_value else vecmath.normal_tail(-z)


@kernel
def european_value(omega, spot, strike, remaining, rate, div_yield, vol):
    """Black-Scholes value of a European call (omega = 1) or put (-1) with ``remaining`` years
    to run: ω [S e^{-qτ} N(ω d₁) - K e^{-rτ} N(ω d₂)] (``analytic.black_scholes.european``),
    one value (an exercise decision, a dual bound's inner path): one compiled copy that its
    many callers call, where inlining it into each made their compile longer."""
    return _black_scholes(omega, spot, strike, remaining, rate, div_yield, vol, True)


@kernel(inline=True)
def _black_scholes(omega, spot, strike, remaining, rate, div_yield, vol, one_value):
    """``european_value``'s formula, inlined into the loops over pilot paths
    (``_european_values``, ``_european_basis``) with ``one_value`` False, so that they
    vectorize (``normal_cdf``)."""
    sd = vol * math.sqrt(remaining)
    d1 = (elementary.ln(spot / strike) + (rate - div_yield) * remaining) / sd + 0.5 * sd
    return omega * (spot * elementary.exp_scalar(-div_yield * remaining)
                    * normal_cdf(omega * d1, one_value)
                    - strike * elementary.exp_scalar(-rate * remaining)
                    * normal_cdf(omega * (d1 - sd), one_value))


@kernel
def _european_values(omega, spots, strike, remaining, rate, div_yield, vols, out):
    """out[p] = ``european_value`` where path p is in the money (the only paths a fit
    regresses on), else 0."""
    for p in range(spots.size):
        out[p] = _black_scholes(omega, spots[p], strike, remaining, rate, div_yield, vols[p],
                                False) \
            if omega * (spots[p] - strike) > 0.0 else 0.0


@kernel
def exercises_at(policy, row, omega, strike, spot, var):
    """Whether the policy row ``row`` (an exercise date before the maturity) exercises at
    ``spot`` and variance ``var``: in the money and the exercise value at least the fitted
    continuation value."""
    h = omega * (spot - strike)
    if not h > 0.0 or math.isnan(policy[row, B0]):
        return False
    x = spot / strike
    mean_var = policy[row, VAR_LONG] + policy[row, VAR_WEIGHT] * (var - policy[row, VAR_LONG])
    e = european_value(omega, spot, strike, policy[row, REMAINING], policy[row, RATE],
                       policy[row, DIV], math.sqrt(max(mean_var, 0.0))) / strike
    return h >= policy[row, B0] + x * (policy[row, B1] + x * policy[row, B2]) + \
        e * policy[row, B3] + var * policy[row, B4]


@kernel
def exercises(policy, row, omega, strike, spot):
    """``exercises_at`` for a policy that reads no variance (GBM's)."""
    return exercises_at(policy, row, omega, strike, spot, policy[row, VAR_LONG])


@kernel(inline=True)
def _legs_add(kind, sign, q, u, a, b, x):
    """(u, a, b) after leg q's weighted spot x, from u (the payoff's underlying so far:
    ``_legs_fold``, or a spread's difference) and the running pair a >= b of the largest two of
    sign * x (sign -1: the smallest two, for a worst-of; a spread's pair is its two legs).

    The pair is a' = max(a, y), b' = max(b, min(y, a)) (numba's max and min select as Python's
    do): the values of ``if y > a: a, b = y, a elif y > b: b = y``, ties and a NaN y included,
    but without branches, which mispredicted on the legs' random order (24 against 3.4 ns a
    path-date of a 5-name basket, 2026-12-08).  Only scalars pass: an inlined helper taking the
    tile's arrays costs numba's reference counting calls in every path."""
    if kind == P.SPREAD:
        return (x, x, b) if q == 0 else (u - x, a, x)
    y = sign * x
    return x if q == 0 else _legs_fold(kind, u, x), max(a, y), max(b, min(y, a))


@kernel(inline=True)
def _policy_exercises(coefs, kind, omega, strike, n, u, a, b):
    """Whether a path whose legs gave (u, a, b) (``_legs_add`` over its n legs) is exercised by
    the policy row coefs = (B0, ..., B6): in the money and the exercise value at least the
    continuation value fitted on ``legs_features``' basis (1, a, b, a², b², ab, h/K), a and b
    the largest two legs (the smallest for a worst-of) over the strike."""
    h = omega * (u - strike)
    if not h > 0.0 or math.isnan(coefs[0]):
        return False
    if kind != P.SPREAD:
        sign = -1.0 if kind == P.WORST_OF else 1.0
        a, b = sign * a, (sign * b if n > 1 else 0.0)
    a, b = a / strike, b / strike
    return h >= coefs[0] + a * coefs[1] + b * coefs[2] + a * a * coefs[3] + b * b * coefs[4] + \
        a * b * coefs[5] + h / strike * coefs[6]


@kernel(inline=True)
def _policy_row(policy, row):
    """Row ``row`` of a multi-asset policy's coefficients as a tuple (B0, ..., B6)."""
    return (policy[row, B0], policy[row, B1], policy[row, B2], policy[row, B3], policy[row, B4],
            policy[row, B5], policy[row, B6])


@kernel
def exercises_legs(policy, row, kind, omega, strike, xs, n):
    """Whether the multi-asset policy row ``row`` (a date before the maturity) exercises a
    payoff ``kind`` whose n legs' weighted spots are xs[:n] (``_policy_exercises``)."""
    sign = -1.0 if kind == P.WORST_OF else 1.0
    u, a, b = 0.0, -math.inf, -math.inf
    for q in range(n):
        u, a, b = _legs_add(kind, sign, q, u, a, b, xs[q])
    return _policy_exercises(_policy_row(policy, row), kind, omega, strike, n, u, a, b)


@kernel(inline=True)
def stop_legs(policy, row, kind, omega, strike, spots, n, m, last, g, stop, at_stop):
    """Offer exercise at policy row ``row`` (grid date g) to the tile's paths still running
    (stop[i] < 0) of a multi-asset payoff whose n legs' weighted spots are spots[:, i]
    (``exercises_legs``, written out over the tile's paths with the same arithmetic): a path
    the policy exercises (every path at the ``last`` date) gets stop[i] = g and at_stop[:, i]
    = its spots.  Returns how many paths stopped."""
    coefs = _policy_row(policy, row)
    sign = -1.0 if kind == P.WORST_OF else 1.0
    stopped = 0
    for i in range(m):
        if stop[i] >= 0.0:
            continue
        if not last:
            u, a, b = 0.0, -math.inf, -math.inf
            for q in range(n):
                u, a, b = _legs_add(kind, sign, q, u, a, b, spots[q, i])
            if not _policy_exercises(coefs, kind, omega, strike, n, u, a, b):
                continue
        stop[i] = g
        stopped += 1
        for q in range(n):
            at_stop[q, i] = spots[q, i]
    return stopped


@kernel(inline=True)
def tile_policy(policies, policy_of, path):
    """The policy (``kernel_inputs.Book.policy[r]``) of the tile of paths that starts at path
    number ``path``: its segment's (a tile never straddles two)."""
    return policies[policy_of[min(path // SEGMENT, policy_of.size - 1)]]


@kernel
def stop(ti, tf, policy, fix_idx, grid, x, i, a, b, c, v):
    """The grid index of the exercise date at which the policy stops path i of the view
    ln S_t = a + b t + c X_t (``payoffs``), with variance rows v (Heston's; GBM passes None):
    the first of the trade's dates where it exercises, else the last (the maturity, where the
    cash flow is max(ω(S - K), 0))."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    omega, strike = tf[P.OMEGA], tf[P.STRIKE]
    for k in range(n - 1):
        g = fix_idx[off + k]
        spot = elementary.exp_scalar(a + b * grid[g] + c * x[g, i])
        if v is None:
            stops = exercises(policy, off + k, omega, strike, spot)
        else:
            stops = exercises_at(policy, off + k, omega, strike, spot, v[g, i])
        if stops:
            return g
    return fix_idx[off + n - 1]
