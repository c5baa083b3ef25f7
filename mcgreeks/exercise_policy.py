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
from dataclasses import dataclass

import numpy as np

#: Fewest in-the-money pilot paths a date's regression needs (per basis column, 10).
MIN_ITM_PER_COLUMN = 10


@dataclass
class Policy:
    """A fitted exercise policy: coefficients[k] of the continuation value at date k (k < n - 1;
    NaN where the date keeps no exercise), the basis' column names, and per date the number
    of in-the-money pilot paths and the regression's R² (diagnostics)."""
    coefficients: np.ndarray
    columns: tuple
    n_itm: np.ndarray
    r_squared: np.ndarray


def exercise_value(spots, strike, is_call):
    """h(S) = (ω(S - K))⁺ of a vanilla, per element."""
    omega = 1.0 if is_call else -1.0
    return np.maximum(omega * (np.asarray(spots) - strike), 0.0)


def features(spots, strike, european=None):
    """The regression basis at one date: columns 1, x, x² with x = S/K, and, when given, the
    European value of the remaining option divided by K.  Shape (n_paths, n_columns)."""
    x = np.asarray(spots, dtype=float) / strike
    cols = [np.ones_like(x), x, x * x]
    if european is not None:
        cols.append(np.asarray(european, dtype=float) / strike)
    return np.stack(cols, axis=1)


def column_names(with_european):
    """The basis' column names, as ``features`` builds them."""
    return ("1", "S/K", "(S/K)^2") + (("european/K",) if with_european else ())


def fit(spots, times, strike, rate, is_call, european=None):
    """Fit the policy by backward induction on pilot paths.

    spots[k, p]: the spot at exercise date times[k] (years, increasing, the last the maturity)
    on pilot path p; european[k, p] (optional): the European value of the option's remaining
    life at times[k], a basis column.  The realized cash flow of each path under the policy
    already fitted from t_{k+1} on is discounted to t_k at ``rate`` and regressed on the basis
    over the paths in the money at t_k.  Returns a ``Policy``."""
    spots = np.asarray(spots, dtype=float)
    times = np.asarray(times, dtype=float)
    n_dates, n_paths = spots.shape
    cash = exercise_value(spots[-1], strike, is_call)
    when = np.full(n_paths, times[-1])
    n_cols = 3 + (european is not None)
    coefficients = np.full((n_dates - 1, n_cols), np.nan)
    n_itm = np.zeros(n_dates - 1, dtype=np.int64)
    r_squared = np.full(n_dates - 1, np.nan)
    for k in range(n_dates - 2, -1, -1):
        h = exercise_value(spots[k], strike, is_call)
        itm = h > 0.0
        n_itm[k] = itm.sum()
        if n_itm[k] < MIN_ITM_PER_COLUMN * n_cols:
            continue
        x = features(spots[k, itm], strike, None if european is None else european[k, itm])
        y = cash[itm] * np.exp(-rate * (when[itm] - times[k]))
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        fitted = x @ beta
        coefficients[k] = beta
        r_squared[k] = 1.0 - np.sum((y - fitted) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
        exercise = np.zeros(n_paths, dtype=bool)
        exercise[itm] = h[itm] >= fitted
        cash = np.where(exercise, h, cash)
        when = np.where(exercise, times[k], when)
    return Policy(coefficients, column_names(european is not None), n_itm, r_squared)


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
            exercise = alive & (h > 0.0) & (h >= x @ beta)
        index[exercise] = k
        cash[exercise] = h[exercise]
        alive &= ~exercise
    return index, cash


def price(policy, spots, times, strike, rate, is_call, european=None):
    """(estimate, standard error) of the policy's value on the paths: the mean over paths of the
    cash flow discounted from its exercise date (0 where unexercised)."""
    index, cash = stopping(policy, spots, times, strike, is_call, european)
    paid = np.where(index >= 0, cash * np.exp(-rate * np.asarray(times)[np.maximum(index, 0)]),
                    0.0)
    return float(paid.mean()), float(paid.std(ddof=1) / np.sqrt(paid.size))
