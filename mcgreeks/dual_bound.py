"""The Andersen–Broadie dual upper bound of a fixed exercise policy, for a vanilla under GBM.

What is computed
----------------
An option exercisable at dates t_1 < ... < t_n = T pays h(S) = max(ω(S - K), 0) (ω = +1 call,
-1 put); h̃_k = D_k h(S_{t_k}) is that value discounted to time 0, D_k = e^{-r t_k}.  For any
martingale M with M_0 = 0 (in a filtration that contains the asset's), the option's value at
time 0 satisfies

    V_0 = sup_τ E[h̃_τ] = sup_τ E[h̃_τ - M_τ] <= E[max_{k=1..n} (h̃_k - M_k)]

(Rogers 2002; Haugh & Kogan 2004), with equality for the martingale part of the Snell
envelope.  Andersen & Broadie (2004) build M from a fixed exercise policy: with L_k the value,
discounted to 0, of following the policy from t_k on (L_k = h̃_k where the policy exercises at
t_k, else Q_k; L_n = h̃_n) and Q_k = E[L_{k+1} | S_{t_k}] (the value of following the policy
from t_{k+1} on, t_0 = 0),

    Δ_k = L_{k+1} - Q_k  (k = 0..n-1),        M_k = Σ_{j<k} Δ_j,        M_0 = 0.

Where the policy continues at t_k, L_k = Q_k and the increments telescope; where it exercises,
M drops the known step E[L_{k+1} - L_k | S_{t_k}].  The better the policy, the closer the bound
to the option's value: for the optimal one it is the value.

How it is estimated
-------------------
Outer paths o = 0..n_outer-1 of exact GBM at the dates.  On each, Q_k is replaced by Q̂_k, the
mean over ``n_inner`` inner paths started at S_{t_k} that follow the policy (``continuation``).
Since E[Q̂_k | outer path up to t_k] = Q_k and the inner paths of (o, k) share no random
number with anything later on the outer path, M̂_k = Σ_{j<k} (L̂_{j+1} - Q̂_j) (L̂_j = Q̂_j where
the policy continues) is a martingale in the filtration that adds each date's inner paths to
the asset's, and the bound holds for it exactly: E[max_k (h̃_k - M̂_k)] >= V_0 for any policy and
any n_inner.  The inner noise only raises the bound (a maximum of noisier terms).  The
estimate is the mean over outer paths of max_k (h̃_k - M̂_k), its standard error the sample
standard deviation over √n_outer.

Savings.  The first changes the inner estimates' noise, not their mean; the third drops
terms from the maximum, which keeps it an upper bound (and lowers it); the others skip work
whose result is known:

* The European control.  The discounted European price with the option's maturity,
  D_t E(t, S_t), is a martingale, so by optional stopping its value at the policy's stopping
  date τ has mean D_k E(t_k, S_{t_k}) given the start of an inner path.  Each inner path
  contributes D_τ h(S_τ) - [D_τ E(τ, S_τ) - D_k E(t_k, S_{t_k})] (the control's coefficient
  fixed at 1, so the estimate stays conditionally unbiased).  At τ = T, E = h and the term is
  the constant D_k E(t_k, S_{t_k}): paths that reach the maturity cost nothing there, only
  early exercises carry noise (the early-exercise premium h - E), and Q̂_{n-1}, a one-period
  European, is exact.  Measured on the 12-date dividend call of the tests (2000 × 100 paths):
  the policy value's SE 14 times smaller, the gap upper - lower 0.008 against 0.22 without
  (``control=False`` in ``gbm_bounds`` turns it off).
* After the last date at which the policy can exercise early (the last row with B0 not NaN),
  an inner path under the control contributes nothing more: it is not simulated further.
* Dates where exercising cannot be optimal.  The option's continuation value is at least the
  European's, so an optimal stopping time stops only at dates where h(S_{t_k}) >=
  E(t_k, S_{t_k}) (in the money, then) or at T: V_0 = E[h̃_τ* - M̂_τ*] is at most the mean of
  the maximum of h̃_k - M̂_k over those dates, the dates where the policy exercises, and
  k = n.  That is Broadie & Cao's (2008) sub-optimality checking with the European as the
  lower limit of the continuation value.  At a date left out the policy continues, so Q̂_k
  enters M̂ only through Δ_{k-1} + Δ_k = L̂_{k+1} - Q̂_{k-1}, where it cancels: its inner paths
  are not simulated.  (Measured on the Longstaff–Schwartz put: half the time of keeping every
  in-the-money date, and the same bound to 4 decimals.)
* Inner normals.  Once fewer than 1/SPARSE of a date's inner paths are alive, their normals
  are drawn one by one (``rng.normal``) instead of for all of them (``rng.fill_normals``):
  the same bits.

Reproducibility: normal draw number d (the increment of W over (t_d, t_{d+1}], d = 0..n-1,
t_0 = 0) of outer path o is path number o of stream ``rng.STREAM_DUAL``; that of inner path j of
(o, k) (started at t_k) is path number n_outer + (o·n + k)·n_inner + j.  Each outer path's value
is computed by one thread and the means are taken over the array in path order, so the result
depends on the keys, the inputs, n_outer and n_inner only, never on the thread count or the
blocks (``engine.for_blocks`` runs blocks of outer paths on threads).  Memory: two
per-outer-path arrays (n_outer doubles each) and per-block scratch of three n_inner arrays.

Units: times in years, rate r and dividend yield q continuously compounded per year, vol σ per
√year, values in the currency of spot and strike for one option, discounted to time 0.

Defaults: n_outer = DEFAULT_OUTER = 1000, n_inner = DEFAULT_INNER = 200.  What the bound
exceeds the option's value by is mostly inner noise (the maximum of noisy terms), which falls
about as 1/n_inner; the SE stays about the same at the same cost n_outer · n_inner, since each
outer path's variance holds inner noise too.  Measured on the Longstaff–Schwartz put (S = 36,
K = 40, r = 6 %, σ = 20 %, T = 1, 50 dates, Bermudan value 4.4778; the policy fitted on 2^16
pilot paths): gap upper - lower 0.0131 at 1000 × 50, 0.0069 at 1000 × 100, 0.0041 at
1000 × 200, 0.0034 at 500 × 200, 0.0019 at 250 × 400; SE 0.0011-0.0024.  So inner paths are
worth more than the 100 of a 2000 × 100 run (gap 0.0072, SE 0.0012, the same time), and 1000
outer paths keep the SE itself reliable.  At the defaults: 4.4823 ± 0.0011, 0.10 % above the
reference, in 2.2 s on one core (warm kernel cache; two threads took the same with the second
core busy with another job; outer paths share nothing, so two free cores should take about
half).  The cost grows about as the number of dates squared: 0.12 s for the 12-date call of
the tests, 0.03 s for the 4-date put.  The first call compiles the kernels (a few seconds,
then cached on disk).  tests/test_dual_bound.py has the other cases.

References
----------
* L. Andersen, M. Broadie (2004), "Primal-dual simulation algorithm for pricing
  multidimensional American options", Management Science 50(9), 1222-1234.
* L. C. G. Rogers (2002), "Monte Carlo valuation of American options", Mathematical Finance
  12(3), 271-286; M. Haugh, L. Kogan (2004), "Pricing American options: a duality approach",
  Operations Research 52(2), 258-270.
* M. Broadie, M. Cao (2008), "Improved lower and upper bound algorithms for pricing American
  options by simulation", Quantitative Finance 8(8), 845-861.
* P. Glasserman (2004), Monte Carlo Methods in Financial Engineering, §8.7.
"""
import math
from typing import NamedTuple

import numba
import numpy as np

from mcgreeks import engine
from mcgreeks._jit import kernel
from mcgreeks.exercise_policy import B0, N_POLICY, european_value, exercises
from mcgreeks.rng import STREAM_DUAL, fill_normals, normal

#: Outer paths by default: the bound's standard error falls as 1/√n_outer (module docstring).
DEFAULT_OUTER = 1000
#: Inner paths per continuation estimate by default: the bound's high bias from inner noise
#: falls about as 1/n_inner (module docstring: why 1000 × 200 rather than, say, 2000 × 100).
DEFAULT_INNER = 200


#: An inner date draws its normals one by one (``rng.normal``, about 25 ns each) rather than for
#: all the inner paths at once (``rng.fill_normals``, about 4.5 ns a path, dead ones included)
#: when fewer than 1/SPARSE of the paths are still alive.  The same bits either way.
SPARSE = 5

#: Slack, in units of the strike, of the test h >= E (exercise worth at least the European) that
#: keeps a date in the bound's maximum: rounding may not drop a date where h = E.
TIE = 1e-9


@kernel
def continuation(policy, grid, disc, drift, sd, omega, strike, rate, div_yield, vol, last,
                 key0, key1, stream, path0, k, s0, control, z, s, live):
    """Q̂_k: the mean over the inner paths path0 .. path0 + s.size - 1 (stream ``stream``, draw
    d the increment over (grid[d], grid[d+1]]) started at spot s0 at grid[k] (years; grid[0] =
    0, grid[1..n] the exercise dates) of the cash flow of following ``policy`` from date k+1
    on (row d-1 of ``policy`` at date d < n, exercise wherever in the money at d = n),
    discounted to time 0 by disc[d] = e^{-r grid[d]}.

    drift[d], sd[d]: the mean and standard deviation of ln S_{grid[d]} - ln S_{grid[d-1]}.
    With ``control``, each path's cash flow less D_τ E(τ, S_τ) - D_k E(t_k, s0), the European
    martingale (module docstring), and paths stop after date ``last``, the last date < n at
    which the policy may exercise (0: none).  z, s (float) and live (int) are scratch of the
    inner paths' size.  The paths' terms are added in path order."""
    n = grid.size - 1
    m = s.size
    maturity = grid[n]
    base = 0.0
    end = n
    if control:
        base = disc[k] * european_value(omega, s0, strike, maturity - grid[k], rate, div_yield,
                                        vol)
        end = last
    for j in range(m):
        s[j] = s0
        live[j] = j
    n_live = m
    acc = 0.0
    for d in range(k + 1, end + 1):
        draw = np.uint64(d - 1)
        dense = n_live * SPARSE >= m
        if dense:
            fill_normals(key0, key1, stream, path0, draw, z)
        a = drift[d]
        b = sd[d]
        kept = 0
        for i in range(n_live):
            j = live[i]
            w = z[j] if dense else normal(key0, key1, stream, path0 + np.uint64(j), draw)
            x = s[j] * math.exp(a + b * w)
            if d == n:
                acc += disc[n] * max(omega * (x - strike), 0.0)
            elif exercises(policy, d - 1, omega, strike, x):
                cash = omega * (x - strike)
                if control:
                    cash -= european_value(omega, x, strike, maturity - grid[d], rate,
                                           div_yield, vol)
                acc += disc[d] * cash
            else:
                s[j] = x
                live[kept] = j
                kept += 1
        n_live = kept
        if n_live == 0:
            break
    return base + acc / m


@kernel
def _outer_block(policy, grid, disc, drift, sd, spot, omega, strike, rate, div_yield, vol,
                 last, key0, key1, stream, n_outer, n_inner, control, first, end, values, lows):
    """Outer paths first .. end-1 (one parallel task): values[o] = the max of h̃_k - M̂_k over
    the maturity, the dates where the policy exercises and those where exercising is worth at
    least the European, lows[o] = Q̂_0 (the policy's value from S_0: their mean is the lower
    bound).  Arguments as ``continuation``'s; values discounted to time 0."""
    n = grid.size - 1
    z = np.empty(n_inner)
    s = np.empty(n_inner)
    live = np.empty(n_inner, dtype=np.int64)
    for o in range(first, end):
        inner0 = n_outer + o * n * n_inner
        q_prev = continuation(policy, grid, disc, drift, sd, omega, strike, rate, div_yield,
                              vol, last, key0, key1, stream, np.uint64(inner0), 0, spot,
                              control, z, s, live)
        lows[o] = q_prev
        m = 0.0                 # M̂ at the last date used (its Q̂ in q_prev)
        best = -math.inf
        log_s = 0.0
        for k in range(1, n + 1):
            log_s += drift[k] + sd[k] * normal(key0, key1, stream, np.uint64(o), np.uint64(k - 1))
            x = spot * math.exp(log_s)
            h = max(omega * (x - strike), 0.0)
            paid = disc[k] * h
            if k == n:
                m += paid - q_prev
                best = max(best, paid - m)
            elif h > 0.0:
                stops = exercises(policy, k - 1, omega, strike, x)
                if stops or h + TIE * strike >= european_value(
                        omega, x, strike, grid[n] - grid[k], rate, div_yield, vol):
                    q = continuation(policy, grid, disc, drift, sd, omega, strike, rate,
                                     div_yield, vol, last, key0, key1, stream,
                                     np.uint64(inner0 + k * n_inner), k, x, control, z, s,
                                     live)
                    m += (paid if stops else q) - q_prev
                    best = max(best, paid - m)
                    q_prev = q
        values[o] = best


class DualBounds(NamedTuple):
    """Estimates from one run (values discounted to time 0, per option): the upper bound and
    its SE, the policy's value (a lower bound: the mean of Q̂_0 over n_outer · n_inner paths)
    and its SE, and the gap upper - lower (the mean over outer paths of the max term less
    Q̂_0, with its own, smaller, SE)."""
    upper: float
    upper_se: float
    lower: float
    lower_se: float
    gap: float
    gap_se: float


def _mean_se(x):
    return float(np.mean(x)), float(np.std(x, ddof=1) / math.sqrt(x.size))


def _check(policy_rows, times, spot, strike, vol, n_outer, n_inner):
    if times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)) \
            or times[0] <= 0.0 or np.any(np.diff(times) <= 0.0):
        raise ValueError(f"times must be increasing exercise dates > 0, got {times!r}")
    if policy_rows.shape != (times.size, N_POLICY):
        raise ValueError(f"policy_rows has shape {policy_rows.shape}: must be "
                         f"({times.size}, {N_POLICY}), one row per exercise date")
    for name, value in (("spot", spot), ("strike", strike), ("vol", vol)):
        if not value > 0.0 or not math.isfinite(value):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if int(n_outer) != n_outer or n_outer < 2:
        raise ValueError(f"n_outer must be an integer >= 2, got {n_outer!r}")
    if int(n_inner) != n_inner or n_inner < 1:
        raise ValueError(f"n_inner must be an integer >= 1, got {n_inner!r}")
    if n_outer * (1 + times.size * n_inner) >= 2 ** 63:
        raise ValueError("n_outer · n · n_inner path numbers do not fit in 63 bits")


def gbm_bounds(policy_rows, times, spot, strike, rate, div_yield, vol, is_call, key0, key1,
               n_outer=DEFAULT_OUTER, n_inner=DEFAULT_INNER, control=True):
    """Andersen–Broadie bounds of the Bermudan call (``is_call``) or put on one GBM asset
    exercisable at ``times`` (years, increasing, the last the maturity) under the fixed policy
    ``policy_rows`` (``exercise_policy.rows``, one row per date): a ``DualBounds``.  Random
    numbers of stream ``rng.STREAM_DUAL`` under keys (key0, key1); ``control`` (default on)
    uses the European control in the inner paths (module docstring)."""
    policy = np.ascontiguousarray(policy_rows, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    spot, strike, rate, div_yield, vol = map(float, (spot, strike, rate, div_yield, vol))
    _check(policy, times, spot, strike, vol, n_outer, n_inner)
    n_outer, n_inner = int(n_outer), int(n_inner)
    grid = np.concatenate([[0.0], times])
    dt = np.diff(grid)
    drift = np.concatenate([[0.0], (rate - div_yield - 0.5 * vol * vol) * dt])
    sd = np.concatenate([[0.0], vol * np.sqrt(dt)])
    disc = np.exp(-rate * grid)
    fitted = np.flatnonzero(~np.isnan(policy[:-1, B0]))
    last = int(fitted[-1]) + 1 if fitted.size else 0
    values = np.empty(n_outer)
    lows = np.empty(n_outer)
    per_block = max(1, min(64, n_outer // (8 * numba.get_num_threads())))
    head = (policy, grid, disc, drift, sd, spot, 1.0 if is_call else -1.0, strike, rate,
            div_yield, vol, last, np.uint64(key0), np.uint64(key1), STREAM_DUAL, n_outer,
            n_inner, bool(control))
    engine.for_blocks(_outer_block, n_outer, per_block, head, (values, lows))
    upper, upper_se = _mean_se(values)
    lower, lower_se = _mean_se(lows)
    gap, gap_se = _mean_se(values - lows)
    return DualBounds(upper, upper_se, lower, lower_se, gap, gap_se)


def gbm_upper_bound(policy_rows, times, spot, strike, rate, div_yield, vol, is_call, key0, key1,
                    n_outer=DEFAULT_OUTER, n_inner=DEFAULT_INNER):
    """(upper, se): the Andersen–Broadie (2004) estimate of an upper bound on the value at time
    0 of the Bermudan call (``is_call``) or put on one GBM asset (spot, strike; rate, div_yield
    continuously compounded per year; vol per √year) exercisable at ``times`` (years,
    increasing, the last the maturity), from the martingale of the fixed exercise policy
    ``policy_rows`` (``exercise_policy.rows``), and its standard error over the ``n_outer``
    outer paths; ``n_inner`` inner paths per continuation value.  Random numbers: stream
    ``rng.STREAM_DUAL`` under keys (key0, key1); the result depends on them, the inputs,
    n_outer and n_inner only.  See the module docstring for the algorithm and the defaults;
    ``gbm_bounds`` also returns the policy's value (lower bound) and the gap."""
    b = gbm_bounds(policy_rows, times, spot, strike, rate, div_yield, vol, is_call, key0, key1,
                   n_outer, n_inner)
    return b.upper, b.upper_se
