"""The Andersen–Broadie dual upper bound of a fixed exercise policy, for a vanilla or a
multi-asset payoff (basket, best-of, worst-of, spread) under GBM, for a vanilla on one Heston
asset (``heston_bounds``, "One Heston asset" below), and for a multi-asset payoff whose legs
include a Heston name (``heston_legs_bounds``, "Several assets with a Heston name").

What is computed
----------------
An option exercisable at dates t_1 < ... < t_n = T pays h(S) = max(ω(S - K), 0) (ω = +1 call,
-1 put; for several assets h = max(ω(u - K), 0) of their legs, "Several assets" below);
h̃_k = D_k h(S_{t_k}) is that value discounted to time 0, D_k = e^{-r t_k}.  For any
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

* The European control (a vanilla only).  The discounted European price with the option's maturity,
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
  European's, so an optimal stopping time (the first date with h > 0 and h >= the
  continuation value, else T) stops only at dates where h(S_{t_k}) > 0 and h(S_{t_k}) >= F_k,
  any lower limit of the European's value E(t_k, S_{t_k}), or at T: V_0 = E[h̃_τ* - M̂_τ*] is
  at most the mean of the maximum of h̃_k - M̂_k over those dates, the dates where the policy
  exercises, and k = n.  That is Broadie & Cao's (2008) sub-optimality checking, with F = E
  for a vanilla (``continuation_floor``; several assets: below).  At a date left out the
  policy continues, so Q̂_k enters M̂ only through Δ_{k-1} + Δ_k = L̂_{k+1} - Q̂_{k-1}, where it
  cancels: its inner paths are not simulated.  (Measured on the Longstaff–Schwartz put: half
  the time of keeping every in-the-money date, and the same bound to 4 decimals.)
* Inner normals.  Once fewer than 1/SPARSE of a date's inner paths are alive, their normals
  are drawn one by one (``rng.normal``) instead of for all of them (``rng.fill_normals``):
  the same bits.

Several assets
--------------
``gbm_legs_bounds``: legs q = 1..m, correlated GBMs S_q with their own dividend yield and
volatility, read through the weighted spots x_q = w_q S_q; the payoff's u is Σ x_q (basket),
max x_q (best_of), min x_q (worst_of) or x_1 - x_2 (spread) (``exercise_policy.legs_value``),
the policy ``exercise_policy.exercises_legs``'s (fitted by ``fit_legs``).  Outer and inner
paths step each leg exactly: ln x_q moves by (r - q_q - σ_q²/2)Δt + σ_q √Δt Σ_{p<=q} L_qp z_p,
L the lower Cholesky factor of the legs' correlation, z_p leg p's own normal.  The same
kernels serve the vanilla (one leg, no mixing: numba compiles it apart, ``factor`` None) and
the legs, so the bookkeeping of M̂ and the savings are one code.

No control.  A general basket or best-of has no closed-form European, and a control must have
an exactly known conditional mean, or Q̂_k is biased and the bound may fail.  Martingales with
a closed form, such as one leg's European or the legs' discounted forwards, would keep Q̂_k
unbiased but do not equal h at the maturity, so the paths that reach T would stay noisy;
Stulz's formula for a two-leg best-of or worst-of would, but the kernels have no bivariate
normal law (``analytic.multi_asset``'s is SciPy's).  So the inner paths run to the maturity
and the estimates are plain means, as with ``control=False`` for a vanilla.  The cost is inner
noise, which raises the bound: on the max-call of the tests (S0 = 100) the gap upper - lower
falls from 0.20 at 1000 × 200 paths to 0.096 at 1000 × 500, 0.075 at 1000 × 1000 and 0.062 at
1000 × 2000 (the bound's SE 0.037, 0.023, 0.018, 0.013), against 0.008 with the control on the
12-date vanilla call at 2000 × 100.

The floors F (``continuation_floor``) are lower limits of the European proved from the payoff
alone, so that the skipped dates stay valid for any policy: a best-of call is worth at least
the Black–Scholes call on any one leg x_q > 0 ((max_p x_p - K)⁺ >= (x_q - K)⁺), a worst-of put
the put on any one leg ((K - min_p x_p)⁺ >= (K - x_q)⁺), each a GBM with the leg's dividend
yield and volatility; a basket or spread option, u linear in the legs, at least
e^{-rτ}(ω(E[u_T] - K))⁺ (Jensen), E[x_q(T)] = x_q e^{(r - q_q)τ}; a best-of put and a
worst-of call are given F = 0 (every in-the-money date kept).  Measured on the max-call at
1000 × 500: 15-30 % less time than keeping every in-the-money date (0.42 against 0.56 s at
S0 = 90, 0.56 against 0.79 s at 100, 0.70 against 0.85 s at 110), the bound lower by at most
0.0004.

Measured on the Broadie & Glasserman two-asset max-call (tests/test_dual_bound.py: S0 = 90,
100, 110, K = 100, r = 5 %, q = 10 %, σ = 20 %, ρ = 0, T = 3, 9 dates, values 8.08, 13.90,
21.34; the policy fitted on 2^16 pilot paths), 1000 × 500 paths: 8.092 ± 0.018, 13.932 ±
0.023, 21.377 ± 0.026 (0.15-0.23 % above), the policy's value 8.039, 13.835, 21.249, in
0.4-0.5, 0.5-0.7, 0.7-0.9 s on one core (over runs), 0.2-0.3, 0.3, 0.4-0.5 s on two (the first
call compiles the legs' kernels, a few seconds).  Under bad policies the bound stays above and
loosens (S0 = 100, 1000 × 100 paths: 15.29 ± 0.16 never exercising early, 14.35 ± 0.18
exercising at the first in-the-money date, 14.15 ± 0.05 the fitted policy).

One Heston asset
----------------
``heston_bounds``: the bound of the Bermudan of the model as the pricer discretizes it, the
scheme (``models.heston``: QE or full-truncation Euler) on ``simulation_grid(times,
steps_per_year)``, with the pricer's step and draws (the step into grid point i, from
grid[i-2], or 0, to grid[i-1], reads normal draws 2(i-1) (the spot's own) and 2i-1 (the
variance's and, for QE, its 1 - U)), so that outer path o is the path ``sample_paths`` gives
path number o of stream ``STREAM_DUAL``, to the bit.  The state is (ln S, v), v the scheme's
state (Euler's may be negative; the policy reads v+, as the pricer stores it); the inner paths
of date k start from the outer path's state at t_k and follow ``exercise_policy.exercises_at``
with the variance at each date, so Q̂_k is conditionally unbiased for the discretized chain and
the bound holds as above.  Dates are left out of the maximum only where h = 0 (F = 0: no
closed-form European in a kernel, ``analytic.heston`` being SciPy's), so every in-the-money date
is kept.

The control.  Y_i = S_i e^{-(r-q) t_i} at the grid points is a martingale of the scheme where
E[S_{i+1} | S_i, v_i] = S_i e^{(r-q)Δt} holds exactly: always for Euler (its log-spot noise is
Gaussian given v), and for QE where Andersen's martingale correction exists at every state,
which A = K2 + K3/2 <= 0 on every step guarantees (A <= 0: the quadratic branch's 1 - 2Aa > 0
and the exponential's β > A; the contract of the tests has A < 0).  Then each inner path
contributes its discounted cash flow less Σ_{i<τ} β_i (Y_{i+1} - Y_i), β_i e^{-q t_i} times the
Black-Scholes delta at its state with the policy's variance v̄ + w_i (v_i - v̄) (any β_i known
at point i keeps the sum's conditional mean 0 at the stopping time, a bounded one), a delta
hedge: the estimate stays conditionally unbiased and the bound valid for any policy, only the
noise changes.  Otherwise (QE with A > 0 somewhere) no control, silently.  The inner paths run
to the maturity (no closed form to stop on).  Measured on the American put of
tests/pricers/test_heston_exercise.py (S = K = 100, r = 3 %, v0 = v̄ = 0.04, κ = 2, ξ = 0.3,
ρ = -0.7, T = 1, 52 dates; ADI Bermudan 6.5731; QE, policy on a 2^16-path pilot): 500 × 100
paths 6.5772 ± 0.0087 (+0.06 %), gap 0.016, 4.3 s on two busy cores; 1000 × 200 (the
defaults) 6.5884 ± 0.0047 (+0.23 %), gap 0.015, 20 s; 500 × 50 6.5957 ± 0.012 (+0.34 %); without
the control at 200 × 100 6.92 ± 0.07 (+5 %), gap 0.35 against 0.020 with it.  The gap hardly
falls from 100 to 200 inner paths: what is left is mostly the policy's own shortfall and the
hedge's residual noise.  Memory: per block 7 n_inner doubles and n_inner ints.

Several assets with a Heston name
---------------------------------
``heston_legs_bounds``: the legs of "Several assets" (payoffs, policy ``exercises_legs``)
when one or more of them is a Heston name, for the model as the pricer discretizes a group:
on ``simulation_grid(times, steps_per_year)``, step k draws leg q's spot driver b_q (draw 2k,
keys (key0, names[q])) and, for a Heston leg, its variance's own driver Z_q (draw 2k + 1);
the spot normals are e = L b (L the lower Cholesky factor of the legs' correlation); a Heston
leg rotates (e_q, Z_q) into its variance's zv = ρ e_q + ρ̄ Z_q and its spot's own
zs = ρ̄ e_q - ρ Z_q (ρ its spot-variance correlation, ρ̄ = √(1 - ρ²);
``models.heston.group_rows``), takes 1 - U = Φ(-zv) computed (zv mixes two draws: there is
no uniform to read it from) and the pricer's QE or Euler step; a GBM leg steps exactly.  So
outer path o is path o of ``models.heston.group_sample_paths`` in stream ``STREAM_DUAL`` (to
rounding), and the inner paths of date k start from the outer path's state at t_k (every
leg's log-spot and variance) and follow the policy: Q̂_k is conditionally unbiased for the
discretized chain, and the bound holds as above.

No control, and only the in-the-money dates.  As for GBM legs there is no European with a
closed form in a kernel, and one Heston asset's control (a delta hedge in the forward) would
need the legs' joint deltas: the inner estimates are plain means, the inner paths run to
their stop or the maturity.  Dates leave the maximum only where h = 0.  The floors of "Several
assets" rest on the legs' Black–Scholes values or forwards, which a Heston leg's scheme does
not have exactly (QE's forward is a martingale only where its correction exists); the one
that stays valid, the Black–Scholes value of a GBM leg of a best-of call or worst-of put, is
left out for simplicity (on the max-call below it would skip about a quarter of the inner
work, estimated).  Every path steps every leg at every grid step: the max-call's 9 dates over
3 years are 162 steps (the weekly grid with the dates added), against the GBM legs' 9.

Measured on the max-call of "Several assets" at S0 = 100 with one name a Heston name whose
variance cannot move (ξ = 10⁻³, v0 = v̄ = σ², so a GBM name; QE, 52 steps a year) and the
policy fitted on GBM pilots (tests/test_dual_bound.py): at 500 × 200 paths 13.950 ± 0.052
(+0.36 % on 13.90), the policy's value 13.814, gap 0.136 ± 0.017, 2.0 s (one core free, the
other busy with another job: one thread or two took the same); the same trade with both names
GBM (``gbm_legs_bounds``, the same policy and paths) 13.991 ± 0.053, gap 0.174, in 0.12 s.
Other sizes: 500 × 100 14.087 ± 0.074 (+1.35 %, gap 0.24) in 1.2 s, 1000 × 200 14.010 ± 0.038
(+0.79 %, gap 0.18) in 4.7 s.  A step of the two legs costs about 60 ns a path under QE, 45 ns
under Euler (legs outer and paths inner in ``_legs_step``; with the paths outer, 170 ns).
Memory: per block 4 m n_inner doubles and n_inner ints (m legs).

Reproducibility: normal draw number d (the increment of W over (t_d, t_{d+1}], d = 0..n-1,
t_0 = 0) of outer path o is path number o of stream ``rng.STREAM_DUAL``; that of inner path j of
(o, k) (started at t_k) is path number n_outer + (o·n + k)·n_inner + j; under keys (key0, key1)
for a vanilla, (key0, names[q]) for leg q's own normal.  Each outer path's value is computed by
one thread and the means are taken over the array in path order, so the result depends on the
keys, the inputs, n_outer and n_inner only, never on the thread count or the blocks
(``engine.for_blocks`` runs blocks of outer paths on threads).  Memory: two per-outer-path
arrays (n_outer doubles each) and per-block scratch of 2m + 1 n_inner arrays (m legs).

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

from mcgreeks import elementary, engine, vecmath
from mcgreeks import payoffs as P
from mcgreeks._jit import kernel
from mcgreeks.exercise_policy import (B0, N_POLICY, european_value, exercises, exercises_at,
                                      exercises_legs, normal_cdf, variance_weights)
from mcgreeks.models import heston as H
from mcgreeks.rng import (STREAM_DUAL, fill_complements, fill_inverse_normals,
                          fill_inverse_normals_and_complements, fill_normals, inverse_normal,
                          normal)

#: Outer paths by default: the bound's standard error falls as 1/√n_outer (module docstring).
DEFAULT_OUTER = 1000
#: Inner paths per continuation estimate by default: the bound's high bias from inner noise
#: falls about as 1/n_inner (module docstring: why 1000 × 200 rather than, say, 2000 × 100).
DEFAULT_INNER = 200


#: An inner date draws its normals one by one (``rng.normal``, about 25 ns each) rather than for
#: all the inner paths at once (``rng.fill_normals``, about 4.5 ns a path, dead ones included)
#: when fewer than 1/SPARSE of the paths are still alive.  The same bits either way.
SPARSE = 5

#: Slack, in units of the strike, of the test h >= the continuation's floor that keeps a date in
#: the bound's maximum: rounding may not drop a date where h equals it.
TIE = 1e-9

#: The kernels' payoff kind of a single-asset vanilla (its one "leg" is the spot itself); the
#: multi-asset kinds are ``payoffs.MULTI_ASSET``'s.  The kernels tell a vanilla by its
#: ``factor``, None (nothing to mix): numba compiles it apart, without the legs' loops.
VANILLA = P.EUROPEAN


@kernel(inline=True)
def moneyness(factor, kind, omega, strike, x, du):
    """ω(u - K), the exercise value h = max(ω(u - K), 0) before its positive part, of a vanilla
    (factor None: u = x[0], the spot) or of a multi-asset payoff ``kind`` on its legs' weighted
    spots x (``payoffs.legs_quantity``; du: scratch of x.size)."""
    u = x[0] if factor is None else P.legs_quantity(kind, x, x.size, du)
    return omega * (u - strike)


@kernel
def continuation_floor(factor, kind, omega, strike, x, remaining, rate, div_yields, vols):
    """A lower bound, in money of its date, on the value of holding the option on from state x
    with ``remaining`` years to the maturity: the European's value (a vanilla, factor None:
    Black-Scholes, which the control needs exact) or less (module docstring, "Several
    assets"):
      best_of call, worst_of put: the largest Black-Scholes value of the same option on one leg
        x_q > 0 alone ((max_q x_q - K)⁺ >= (x_q - K)⁺, (K - min_q x_q)⁺ >= (K - x_q)⁺);
      basket, spread (u linear in the legs): e^{-rτ}(ω(E[u_T] - K))⁺ (Jensen);
      best_of put, worst_of call: 0."""
    if factor is None:
        return european_value(omega, x[0], strike, remaining, rate, div_yields[0], vols[0])
    n = x.size
    if (kind == P.BEST_OF and omega > 0.0) or (kind == P.WORST_OF and omega < 0.0):
        best = 0.0
        for q in range(n):
            if x[q] > 0.0:
                best = max(best, european_value(omega, x[q], strike, remaining, rate,
                                                div_yields[q], vols[q]))
        return best
    if kind == P.BASKET or kind == P.SPREAD:
        forward = 0.0
        for q in range(n):
            f = x[q] * elementary.exp_scalar((rate - div_yields[q]) * remaining)
            forward += -f if kind == P.SPREAD and q == 1 else f
        return elementary.exp_scalar(-rate * remaining) * max(omega * (forward - strike), 0.0)
    return 0.0


@kernel(inline=True)
def _mixed(factor, w, q):
    """Leg q's correlated normal Σ_{p<=q} factor[q, p] w[p] (factor lower triangular; None for
    one asset: w[q])."""
    if factor is None:
        return w[q]
    acc = 0.0
    for p in range(q + 1):
        acc += factor[q, p] * w[p]
    return acc


@kernel
def continuation(policy, grid, disc, drift, sd, factor, kind, omega, strike, rate, div_yields,
                 vols, last, key0, names, stream, path0, k, x0, control, z, s, y, w, du, live):
    """Q̂_k: the mean over the inner paths path0 .. path0 + s.shape[0] - 1 (stream ``stream``,
    leg q's normals under keys (key0, names[q]), draw d the increment over (grid[d], grid[d+1]])
    started at state x0 (n legs) at grid[k] (years; grid[0] = 0, grid[1..n] the exercise dates)
    of the cash flow of following ``policy`` from date k+1 on (row d-1 of ``policy`` at date
    d < n, exercise wherever in the money at d = n), discounted to time 0 by disc[d] =
    e^{-r grid[d]}.

    drift[d, q], sd[d, q]: the mean and standard deviation of leg q's ln x_{grid[d]} -
    ln x_{grid[d-1]}, whose normal is Σ_p factor[q, p] z_p (``factor`` the lower Cholesky
    factor of the legs' correlation, None for a vanilla: its own z).  With ``control`` (a
    vanilla only: its ``continuation_floor`` is its European, a legs' floor is not), each path's
    cash flow less D_τ E(τ, S_τ) - D_k E(t_k, s0), the European martingale (module docstring),
    and paths stop after date ``last``, the last date < n at which the policy may exercise (0:
    none).
    z (legs × paths), s (paths × legs), y, w, du (legs) and live (paths, int) are scratch.  The
    paths' terms are added in path order."""
    n = grid.size - 1
    m = s.shape[0]
    n_legs = 1 if factor is None else x0.size     # a constant for a vanilla
    maturity = grid[n]
    base = 0.0
    end = n
    if control:
        base = disc[k] * continuation_floor(factor, kind, omega, strike, x0, maturity - grid[k],
                                            rate, div_yields, vols)
        end = last
    for j in range(m):
        for q in range(n_legs):
            s[j, q] = x0[q]
        live[j] = j
    n_live = m
    acc = 0.0
    for d in range(k + 1, end + 1):
        draw = np.uint64(d - 1)
        dense = n_live * SPARSE >= m
        if dense:
            for q in range(n_legs):
                fill_normals(key0, names[q], stream, path0, draw, z[q])
        a = drift[d]
        b = sd[d]
        kept = 0
        for i in range(n_live):
            j = live[i]
            for q in range(n_legs):
                w[q] = z[q, j] if dense else normal(key0, names[q], stream,
                                                    path0 + np.uint64(j), draw)
            for q in range(n_legs):
                y[q] = s[j, q] * elementary.exp_scalar(a[q] + b[q] * _mixed(factor, w, q))
            cash = moneyness(factor, kind, omega, strike, y, du)
            if d == n:
                acc += disc[n] * max(cash, 0.0)
            # the policy written out here: an inlined helper cost a vanilla 10 % of its time
            elif (exercises(policy, d - 1, omega, strike, y[0]) if factor is None
                  else exercises_legs(policy, d - 1, kind, omega, strike, y, n_legs)):
                if control:
                    cash -= continuation_floor(factor, kind, omega, strike, y, maturity - grid[d],
                                               rate, div_yields, vols)
                acc += disc[d] * cash
            else:
                for q in range(n_legs):
                    s[j, q] = y[q]
                live[kept] = j
                kept += 1
        n_live = kept
        if n_live == 0:
            break
    return base + acc / m


@kernel(inline=True)
def _account(m, best, q_prev, paid, value):
    """(M̂_k, the running maximum) after an outer path's date k that enters the maximum: M̂
    moves by L̂_k - Q̂_j (``value`` = L̂_k: h̃_k = ``paid`` where the policy exercises or at the
    maturity, else Q̂_k; q_prev = Q̂_j of the last date j < k used, the dates between cancelling)
    and h̃_k - M̂_k joins the maximum ``best``."""
    m += value - q_prev
    return m, max(best, paid - m)


@kernel
def _outer_block(policy, grid, disc, drift, sd, factor, kind, omega, strike, rate, div_yields,
                 vols, x0, last, key0, names, stream, n_outer, n_inner, control, first, end,
                 values, lows):
    """Outer paths first .. end-1 (one parallel task): values[o] = the max of h̃_k - M̂_k over
    the maturity, the dates where the policy exercises and those where exercising is worth at
    least ``continuation_floor``, lows[o] = Q̂_0 (the policy's value from x0: their mean is the
    lower bound).  Arguments as ``continuation``'s; values discounted to time 0."""
    n = grid.size - 1
    n_legs = 1 if factor is None else x0.size     # a constant for a vanilla
    z = np.empty((n_legs, n_inner))
    s = np.empty((n_inner, n_legs))
    live = np.empty(n_inner, dtype=np.int64)
    y = np.empty(n_legs)
    w = np.empty(n_legs)
    du = np.empty(n_legs)
    x = np.empty(n_legs)
    log_x = np.empty(n_legs)
    for o in range(first, end):
        inner0 = n_outer + o * n * n_inner
        q_prev = continuation(policy, grid, disc, drift, sd, factor, kind, omega, strike, rate,
                              div_yields, vols, last, key0, names, stream, np.uint64(inner0), 0,
                              x0, control, z, s, y, w, du, live)
        lows[o] = q_prev
        m = 0.0                 # M̂ at the last date used (its Q̂ in q_prev)
        best = -math.inf
        log_x[:] = 0.0
        for k in range(1, n + 1):
            for q in range(n_legs):
                w[q] = normal(key0, names[q], stream, np.uint64(o), np.uint64(k - 1))
            for q in range(n_legs):
                log_x[q] += drift[k, q] + sd[k, q] * _mixed(factor, w, q)
                x[q] = x0[q] * elementary.exp_scalar(log_x[q])
            h = max(moneyness(factor, kind, omega, strike, x, du), 0.0)
            paid = disc[k] * h
            if k == n:
                m, best = _account(m, best, q_prev, paid, paid)
            elif h > 0.0:
                exercised = (exercises(policy, k - 1, omega, strike, x[0]) if factor is None
                             else exercises_legs(policy, k - 1, kind, omega, strike, x, n_legs))
                if exercised or h + TIE * strike >= continuation_floor(
                        factor, kind, omega, strike, x, grid[n] - grid[k], rate, div_yields,
                        vols):
                    q_k = continuation(policy, grid, disc, drift, sd, factor, kind, omega,
                                       strike, rate, div_yields, vols, last, key0, names,
                                       stream, np.uint64(inner0 + k * n_inner), k, x, control,
                                       z, s, y, w, du, live)
                    m, best = _account(m, best, q_prev, paid, paid if exercised else q_k)
                    q_prev = q_k
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


def _check(policy_rows, times, n_outer, n_inner, **positive):
    """Validate the inputs common to every bound; ``positive``: name -> value(s) that must be
    finite and > 0."""
    if times.ndim != 1 or times.size < 1 or not np.all(np.isfinite(times)) \
            or times[0] <= 0.0 or np.any(np.diff(times) <= 0.0):
        raise ValueError(f"times must be increasing exercise dates > 0, got {times!r}")
    if policy_rows.shape != (times.size, N_POLICY):
        raise ValueError(f"policy_rows has shape {policy_rows.shape}: must be "
                         f"({times.size}, {N_POLICY}), one row per exercise date")
    for name, value in positive.items():
        value = np.asarray(value, dtype=np.float64)
        if not np.all(value > 0.0) or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if int(n_outer) != n_outer or n_outer < 2:
        raise ValueError(f"n_outer must be an integer >= 2, got {n_outer!r}")
    if int(n_inner) != n_inner or n_inner < 1:
        raise ValueError(f"n_inner must be an integer >= 1, got {n_inner!r}")
    if n_outer * (1 + times.size * n_inner) >= 2 ** 63:
        raise ValueError("n_outer · n · n_inner path numbers do not fit in 63 bits")


def _check_legs(kind, n_legs, weights, factor, names):
    """Validate what every multi-asset bound reads of its legs (arrays, as its caller makes
    them): the payoff ``kind``, one weight (finite, nonzero) and one name per leg, and
    ``factor``, the lower Cholesky factor of the legs' correlation matrix."""
    if kind not in P.MULTI_ASSET:
        raise ValueError(f"kind must be one of payoffs.MULTI_ASSET, got {kind!r}")
    if kind == P.SPREAD and n_legs != 2:
        raise ValueError(f"a spread has two legs, got {n_legs}")
    for name, a in (("weights", weights), ("names", names)):
        if a.shape != (n_legs,):
            raise ValueError(f"{name} has shape {a.shape}: must be ({n_legs},), one per leg")
    if not np.all(np.isfinite(weights)) or np.any(weights == 0.0):
        raise ValueError(f"weights must be finite and nonzero, got {weights!r}")
    if factor.shape != (n_legs, n_legs) or not np.all(np.isfinite(factor)) \
            or np.any(np.triu(factor, 1) != 0.0) \
            or not np.allclose(np.sum(factor * factor, axis=1), 1.0, rtol=0.0, atol=1e-9):
        raise ValueError("factor must be the lower Cholesky factor of the legs' correlation "
                         f"matrix ({n_legs} x {n_legs}, rows of unit norm), got {factor!r}")


def _bounds(policy, times, kind, is_call, strike, x0, div_yields, vols, rate, factor, key0,
            names, n_outer, n_inner, control):
    """``DualBounds`` of the payoff ``kind`` on legs (or a vanilla's spot) x0 from validated
    inputs: arrays of the legs (x0, div_yields, vols, names; factor legs × legs)."""
    n_outer, n_inner = int(n_outer), int(n_inner)
    grid = np.concatenate([[0.0], times])
    dt = np.diff(grid)
    drift = np.zeros((grid.size, x0.size))
    sd = np.zeros((grid.size, x0.size))
    drift[1:] = np.multiply.outer(dt, rate - div_yields - 0.5 * vols * vols)
    sd[1:] = np.multiply.outer(np.sqrt(dt), vols)
    disc = elementary.exp(-rate * grid)
    fitted = np.flatnonzero(~np.isnan(policy[:-1, B0]))
    last = int(fitted[-1]) + 1 if fitted.size else 0
    head = (policy, grid, disc, drift, sd, factor, kind, 1.0 if is_call else -1.0, strike, rate,
            div_yields, vols, x0, last, np.uint64(key0), names, STREAM_DUAL, n_outer, n_inner,
            bool(control))
    return _run(_outer_block, head, n_outer)


def _run(block, head, n_outer):
    """``DualBounds`` from the outer paths 0 .. n_outer-1 of ``block(*head, first, end,
    values, lows)`` (``_outer_block`` or ``_heston_outer_block``), run in blocks on threads."""
    values = np.empty(n_outer)
    lows = np.empty(n_outer)
    per_block = max(1, min(64, n_outer // (8 * numba.get_num_threads())))
    engine.for_blocks(block, n_outer, per_block, head, (values, lows))
    upper, upper_se = _mean_se(values)
    lower, lower_se = _mean_se(lows)
    gap, gap_se = _mean_se(values - lows)
    return DualBounds(upper, upper_se, lower, lower_se, gap, gap_se)


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
    _check(policy, times, n_outer, n_inner, spot=spot, strike=strike, vol=vol)
    one = np.ones(1)
    return _bounds(policy, times, VANILLA, is_call, strike, spot * one, div_yield * one,
                   vol * one, rate, None, key0, np.array([key1], dtype=np.uint64),
                   n_outer, n_inner, control)


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


def gbm_legs_bounds(policy_rows, times, kind, is_call, strike, spots, weights, vols, div_yields,
                    rate, factor, key0, names, n_outer=DEFAULT_OUTER, n_inner=DEFAULT_INNER):
    """Andersen–Broadie bounds (a ``DualBounds``) of the Bermudan multi-asset call (``is_call``)
    or put ``kind`` (``payoffs.BASKET``, ``BEST_OF``, ``WORST_OF``, ``SPREAD``: exercise value
    max(ω(u - K), 0) of the legs' weighted spots x_q = w_q S_q, ``exercise_policy.legs_value``)
    on correlated GBM legs (spots, weights, vols, div_yields: one per leg; ``factor`` the lower
    Cholesky factor of their correlation matrix) exercisable at ``times`` under the fixed
    policy ``policy_rows`` (``exercise_policy.legs_rows``).  Random numbers of stream
    ``rng.STREAM_DUAL``, leg q's under keys (key0, names[q]).  No control: the inner paths run
    to the maturity (module docstring, "Several assets")."""
    policy = np.ascontiguousarray(policy_rows, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    spots, weights, vols, div_yields = (np.array(a, dtype=np.float64, ndmin=1)
                                        for a in (spots, weights, vols, div_yields))
    factor = np.ascontiguousarray(factor, dtype=np.float64)
    names = np.array([int(name) for name in names], dtype=np.uint64)
    strike, rate = float(strike), float(rate)
    n_legs = spots.size
    _check(policy, times, n_outer, n_inner, spots=spots, strike=strike, vols=vols)
    _check_legs(kind, n_legs, weights, factor, names)
    for name, a in (("vols", vols), ("div_yields", div_yields)):
        if a.shape != (n_legs,):
            raise ValueError(f"{name} has shape {a.shape}: must be ({n_legs},), one per leg")
    if not np.all(np.isfinite(div_yields)) or not math.isfinite(rate):
        raise ValueError("div_yields and rate must be finite")
    return _bounds(policy, times, kind, is_call, strike, weights * spots, div_yields, vols, rate,
                   factor, key0, names, n_outer, n_inner, False)


def gbm_legs_upper_bound(policy_rows, times, kind, is_call, strike, spots, weights, vols,
                         div_yields, rate, factor, key0, names, n_outer=DEFAULT_OUTER,
                         n_inner=DEFAULT_INNER):
    """(upper, se) of ``gbm_legs_bounds``: the Andersen–Broadie estimate of an upper bound on
    the value at time 0 of the Bermudan multi-asset option, and its standard error over the
    ``n_outer`` outer paths."""
    b = gbm_legs_bounds(policy_rows, times, kind, is_call, strike, spots, weights, vols,
                        div_yields, rate, factor, key0, names, n_outer, n_inner)
    return b.upper, b.upper_se


# -- one Heston asset ----------------------------------------------------------------------------

@kernel(inline=True)
def _heston_draws(key0, key1, stream, path, draw, scheme, one):
    """(zs, zv, 1 - U of zv) of one path's step whose spot normal is ``draw`` (the variance's
    draw + 1), as ``models.heston.tile_normals`` lays them out (1 - U only for QE; one: scratch
    of one double)."""
    zs = normal(key0, key1, stream, path, draw)
    zv = inverse_normal(key0, key1, stream, path, draw + np.uint64(1))
    if scheme == H.QE:
        fill_complements(key0, key1, stream, path, draw + np.uint64(1), one[:1])
    return zs, zv, one[0]


@kernel(inline=True)
def _heston_step(scheme, row, scen, corr_bar, v, zs, zv, tail):
    """(the variance state after one step, the variance as stored (v+ for Euler), the log-spot
    increment) from state v: ``models.heston.qe_step`` or ``euler_step``, the pricer's bits."""
    if scheme == H.QE:
        v_next, dx, _ = H.qe_step(v, zv, zs, tail, row)
        return v_next, v_next, dx
    v_next, dx, _, _ = H.euler_step(v, zv, zs, row[H.DT], row[H.DRIFT], scen[H.SC_KAPPA],
                                    scen[H.SC_VBAR], scen[H.SC_XI], scen[H.SC_CORR], corr_bar)
    return v_next, max(v_next, 0.0), dx


@kernel(inline=True)
def _hedge_ratio(omega, spot, strike, remaining, rate, div_yield, var, scale):
    """scale · the Black-Scholes delta ω e^{-qτ} Φ(ω d₁) with variance var (0 when there is no
    time or variance left): the control's holding of the discounted forward (``heston_bounds``)."""
    sd = math.sqrt(max(var, 0.0) * remaining)
    if not sd > 0.0:
        return 0.0
    d1 = (elementary.ln(spot / strike) + (rate - div_yield) * remaining) / sd + 0.5 * sd
    return (scale * omega * elementary.exp_scalar(-div_yield * remaining)
            * normal_cdf(omega * d1, True))


@kernel
def _heston_continuation(policy, coef, scen, scheme, date_of, disc, growth, remaining, weight,
                         omega, strike, s0, rate, div_yield, control, key0, key1, stream, path0,
                         start, x0, v0, zs, zv, tail, one, x, e, v, gain, live):
    """Q̂ at grid point ``start`` (points: 0 = time 0, i = the end of step i - 1 of ``coef``,
    ``models.heston.step_coefficients``' rows; date_of[i] = d > 0 where point i is exercise
    date d, the last the maturity n, else 0): the mean over inner paths path0 .. path0 + m - 1
    (m = x.size; stream ``stream``, keys (key0, key1), the step into point i from draws 2(i-1)
    and 2i - 1) started at the log-spot x0 = ln(S/S0) and variance state v0 of the cash flow of
    following ``policy`` from the next date on, discounted to time 0 by disc[d].  With
    ``control``, each path's cash flow less its gain Σ β_i (Y_{i+1} - Y_i) up to its stop, Y_i =
    S_i growth[i] = S_i e^{-(r-q)t_i} (a martingale of the scheme, so the gain has mean 0) and
    β_i = e^{-q t_i}·the Black-Scholes delta at point i with the policy's kind of variance
    v̄ + weight[i](v_i - v̄) over remaining[i] = T - t_i.  zs, zv, tail, x, e (= e^{x}), v,
    gain (m doubles), one (one double) and live (m ints) are scratch.  The paths' terms are
    added in path order."""
    n_points = coef.shape[0] + 1
    n = date_of[n_points - 1]
    m = x.size
    corr_bar = H.correlation_complement(scen[H.SC_CORR])
    vbar = scen[H.SC_VBAR]
    e0 = elementary.exp_scalar(x0)
    for j in range(m):
        x[j] = x0
        e[j] = e0
        v[j] = v0
        gain[j] = 0.0
        live[j] = j
    n_live = m
    acc = 0.0
    for i in range(start + 1, n_points):
        row = coef[i - 1]
        draw = np.uint64(2 * (i - 1))
        dense = n_live * SPARSE >= m
        if dense:
            fill_normals(key0, key1, stream, path0, draw, zs)
            if scheme == H.QE:      # zv and its 1 - U from one pass over the uniforms
                fill_inverse_normals_and_complements(key0, key1, stream, path0,
                                                     draw + np.uint64(1), zv, tail)
            else:
                fill_inverse_normals(key0, key1, stream, path0, draw + np.uint64(1), zv)
        d = date_of[i]
        # e^{-q t_i}
        carry = elementary.exp_scalar(-div_yield * (remaining[0] - remaining[i - 1]))
        kept = 0
        for a in range(n_live):
            j = live[a]
            if dense:
                z_s, z_v, z_t = zs[j], zv[j], tail[j]
            else:
                z_s, z_v, z_t = _heston_draws(key0, key1, stream, path0 + np.uint64(j), draw,
                                              scheme, one)
            beta = 0.0
            if control:
                beta = _hedge_ratio(omega, s0 * e[j], strike, remaining[i - 1], rate, div_yield,
                                    vbar + weight[i - 1] * (max(v[j], 0.0) - vbar), carry)
            v_next, v_pos, dx = _heston_step(scheme, row, scen, corr_bar, v[j], z_s, z_v, z_t)
            x_next = x[j] + dx
            e_next = elementary.exp_scalar(x_next)
            if control:
                gain[j] += beta * s0 * (e_next * growth[i] - e[j] * growth[i - 1])
            stopped = False
            if d > 0:
                spot = s0 * e_next
                cash = omega * (spot - strike)
                if d == n:
                    acc += disc[n] * max(cash, 0.0) - gain[j]
                    stopped = True
                elif exercises_at(policy, d - 1, omega, strike, spot, v_pos):
                    acc += disc[d] * cash - gain[j]
                    stopped = True
            if not stopped:
                x[j] = x_next
                e[j] = e_next
                v[j] = v_next
                live[kept] = j
                kept += 1
        n_live = kept
        if n_live == 0:
            break
    return acc / m


@kernel
def _heston_outer_block(policy, coef, scen, scheme, date_of, disc, growth, remaining, weight,
                        omega, strike, s0, rate, div_yield, control, key0, key1, stream, n_outer,
                        n_inner, first, end, values, lows):
    """Outer paths first .. end-1 (one parallel task) of the scheme on the grid of ``coef``
    (outer path o: path number o, the pricer's draws): values[o] = the max of h̃_k - M̂_k over
    the maturity and the dates where the option is in the money (at the others exercise is
    not optimal and not the policy's, so they are left out: module docstring), lows[o] = Q̂_0.
    Inner paths of date d from path number n_outer + (o·n + d)·n_inner on.  Arguments as
    ``_heston_continuation``'s."""
    n_points = coef.shape[0] + 1
    n = date_of[n_points - 1]
    corr_bar = H.correlation_complement(scen[H.SC_CORR])
    zs = np.empty(n_inner)
    zv = np.empty(n_inner)
    tail = np.empty(n_inner)
    x = np.empty(n_inner)
    e = np.empty(n_inner)
    v = np.empty(n_inner)
    gain = np.empty(n_inner)
    live = np.empty(n_inner, dtype=np.int64)
    one = np.empty(1)
    for o in range(first, end):
        inner0 = n_outer + o * n * n_inner
        q_prev = _heston_continuation(policy, coef, scen, scheme, date_of, disc, growth,
                                      remaining, weight, omega, strike, s0, rate, div_yield,
                                      control, key0, key1, stream, np.uint64(inner0), 0, 0.0,
                                      scen[H.SC_V0], zs, zv, tail, one, x, e, v, gain, live)
        lows[o] = q_prev
        m = 0.0                 # M̂ at the last date used (its Q̂ in q_prev)
        best = -math.inf
        log_s = 0.0
        var = scen[H.SC_V0]
        for i in range(1, n_points):
            z_s, z_v, z_t = _heston_draws(key0, key1, stream, np.uint64(o),
                                          np.uint64(2 * (i - 1)), scheme, one)
            var, v_pos, dx = _heston_step(scheme, coef[i - 1], scen, corr_bar, var, z_s, z_v,
                                          z_t)
            log_s += dx
            d = date_of[i]
            if d == 0:
                continue
            spot = s0 * elementary.exp_scalar(log_s)
            h = max(omega * (spot - strike), 0.0)
            paid = disc[d] * h
            if d == n:
                m, best = _account(m, best, q_prev, paid, paid)
            elif h > 0.0:
                exercised = exercises_at(policy, d - 1, omega, strike, spot, v_pos)
                q_k = _heston_continuation(policy, coef, scen, scheme, date_of, disc, growth,
                                           remaining, weight, omega, strike, s0, rate,
                                           div_yield, control, key0, key1, stream,
                                           np.uint64(inner0 + d * n_inner), i, log_s, var, zs,
                                           zv, tail, one, x, e, v, gain, live)
                m, best = _account(m, best, q_prev, paid, paid if exercised else q_k)
                q_prev = q_k
        values[o] = best


def heston_bounds(policy_rows, times, params, strike, is_call, key0, key1, steps_per_year=None,
                  scheme="qe", n_outer=DEFAULT_OUTER, n_inner=DEFAULT_INNER, control=True):
    """Andersen–Broadie bounds (a ``DualBounds``) of the Bermudan call (``is_call``) or put on
    one Heston asset (``params``: spot, rate, div_yield, v0, kappa, vbar, xi, corr, as
    ``models.heston.check_params``) exercisable at ``times`` under the fixed policy
    ``policy_rows`` (``exercise_policy.rows`` of a fit with the variance, one row per date),
    for the model as the pricer discretizes it: ``scheme`` ("qe" or "euler") on
    ``models.heston.simulation_grid(times, steps_per_year or 52)``.  Random numbers of stream
    ``rng.STREAM_DUAL`` under keys (key0, key1).  ``control`` (default on) subtracts from each
    inner path a delta hedge in the discounted forward, a martingale of the scheme with mean 0,
    where the scheme makes the forward an exact martingale (Euler always; QE where its
    martingale correction exists at every state, A <= 0 on every step), else none (module
    docstring, "Heston")."""
    from mcgreeks.pricers.heston import DEFAULT_STEPS_PER_YEAR
    policy = np.ascontiguousarray(policy_rows, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    p = H.check_params(params)
    strike = float(strike)
    _check(policy, times, n_outer, n_inner, strike=strike)
    if scheme not in H.SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(H.SCHEMES)}, got {scheme!r}")
    grid = H.simulation_grid(times, steps_per_year or DEFAULT_STEPS_PER_YEAR)
    points = np.concatenate([[0.0], grid])
    date_of = np.zeros(points.size, dtype=np.int64)
    date_of[np.searchsorted(grid, times) + 1] = np.arange(1, times.size + 1)
    scen = H.scenario_row(p)
    coef = np.ascontiguousarray(H.scenario_coefficients(np.diff(points), p, [scen])[0])
    code = H.SCHEMES[scheme]
    exact = code == H.EULER or bool(np.all(coef[:, H.A] <= 0.0))
    rate, div_yield = p["rate"], p["div_yield"]
    remaining = points[-1] - points
    weight = variance_weights(points, p["kappa"])
    disc = elementary.exp(-rate * np.concatenate([[0.0], times]))
    head = (policy, coef, scen, code, date_of, disc, elementary.exp(-(rate - div_yield) * points),
            remaining, weight, 1.0 if is_call else -1.0, strike, p["spot"], rate, div_yield,
            bool(control) and exact, np.uint64(key0), np.uint64(key1), STREAM_DUAL,
            int(n_outer), int(n_inner))
    return _run(_heston_outer_block, head, int(n_outer))


def heston_upper_bound(policy_rows, times, params, strike, is_call, key0, key1,
                       steps_per_year=None, scheme="qe", n_outer=DEFAULT_OUTER,
                       n_inner=DEFAULT_INNER):
    """(upper, se) of ``heston_bounds``: the Andersen–Broadie estimate of an upper bound on the
    value at time 0 of the Bermudan call (``is_call``) or put on one Heston asset exercisable
    at ``times``, for the pricer's discretization (``scheme`` on the grid of ``times`` and
    ``steps_per_year``), from the martingale of the fixed policy ``policy_rows``, and its
    standard error over the ``n_outer`` outer paths."""
    b = heston_bounds(policy_rows, times, params, strike, is_call, key0, key1, steps_per_year,
                      scheme, n_outer, n_inner)
    return b.upper, b.upper_se


# -- several assets with a Heston name -----------------------------------------------------------

@kernel(inline=True)
def _legs_draws(key0, names, heston, stream, path, draw, b, own, j):
    """One path's draws of the step whose spot draws are number ``draw``, into column j: leg q's
    spot driver b[q, j] (its draw ``draw``) and, for a Heston leg, its variance's own driver
    own[q, j] (draw + 1), under keys (key0, names[q]) (``models.heston.group_normals``)."""
    for q in range(names.size):
        b[q, j] = normal(key0, names[q], stream, path, draw)
        if heston[q]:
            own[q, j] = normal(key0, names[q], stream, path, draw + np.uint64(1))


@kernel(inline=True)
def _qe_tail(row, v, zv):
    """1 - U = Φ(-zv) where the QE step of ``row`` from variance v reads it, in its exponential
    branch (ψ above the switch, decided as ``models.heston.qe_step`` decides), else 0.5, which
    that step does not read.  Φ(-zv) has to be computed (``vecmath.normal_tail``: zv mixes two
    draws, so no uniform holds it), and most steps take the quadratic branch."""
    if H.qe_moments(row, v)[2]:
        return 0.5
    return vecmath.normal_tail(zv)


@kernel(inline=True)
def _spot_normal(factor, b, q, j):
    """Leg q's correlated spot normal Σ_{p<=q} factor[q, p] b[p, j] of path j (factor lower
    triangular), summed as ``vecmath.tile_matmul`` sums it for the pricer."""
    e = 0.0
    for p in range(q + 1):
        e += factor[q, p] * b[p, j]
    return e


@kernel(inline=True)
def _legs_step(scheme, heston, coef, scens, corr_bar, drift, sd, factor, k, b, own, x, v, live,
               n_live):
    """Step k of the paths live[:n_live] of the legs, in place: leg q's log-spot
    x[j, q] = ln(S_q/S_q(0)) and, for a Heston leg, its variance state v[j, q], from the draws
    b[:, j], own[:, j] (``_legs_draws``), as the pricer steps a group
    (``models.heston.group_rows``): a Heston leg rotates its spot normal e (``_spot_normal``)
    and own driver into its variance's zv = ρ e + ρ̄ own and its spot's own zs = ρ̄ e - ρ own
    (ρ its spot-variance correlation, ρ̄ = corr_bar[q]) and takes the scheme's step on its rows
    coef[q, k] (``_heston_step``); a GBM leg moves exactly, by drift[q, k] + sd[q, k] e.  Legs
    outer, paths inner: a leg's rows are looked up once a step."""
    for q in range(x.shape[1]):
        if heston[q]:
            row = coef[q, k]
            scen = scens[q]
            rho, rho_bar = scen[H.SC_CORR], corr_bar[q]
            for a in range(n_live):
                j = live[a]
                e = _spot_normal(factor, b, q, j)
                zs = rho_bar * e - rho * own[q, j]
                zv = rho * e + rho_bar * own[q, j]
                tail = _qe_tail(row, v[j, q], zv) if scheme == H.QE else 0.5
                v_next, _, dx = _heston_step(scheme, row, scen, rho_bar, v[j, q], zs, zv, tail)
                v[j, q] = v_next
                x[j, q] += dx
        else:
            mean, spread = drift[q, k], sd[q, k]
            for a in range(n_live):
                j = live[a]
                x[j, q] += mean + spread * _spot_normal(factor, b, q, j)


@kernel
def _heston_legs_continuation(policy, coef, scens, corr_bar, drift, sd, heston, factor, scheme,
                              date_of, disc, kind, omega, strike, level, key0, names, stream,
                              path0, start, x0, v0, b, own, x, v, xs, du, live):
    """Q̂ at grid point ``start`` (points as ``_heston_continuation``'s: 0 = time 0, i = the end
    of step i - 1; date_of[i] = d > 0 where point i is exercise date d, the last the maturity n):
    the mean over inner paths path0 .. path0 + m - 1 (m = x.shape[0]; stream ``stream``, leg q's
    draws under keys (key0, names[q]), the step into point i from draws 2(i - 1) and 2i - 1)
    started at the legs' log-spots x0 and variance states v0, of the cash flow of following
    ``policy`` (``exercises_legs`` on the weighted spots level[q] e^{x_q}) from the next date
    on, discounted to time 0 by disc[d].  No control: the paths run to their stop or the
    maturity.  b, own (legs x m), x, v (m x legs), xs, du (legs) and live (m ints) are
    scratch.  The paths' terms are added in path order."""
    n_points = coef.shape[1] + 1
    n = date_of[n_points - 1]
    m = x.shape[0]
    n_legs = level.size
    for j in range(m):
        for q in range(n_legs):
            x[j, q] = x0[q]
            v[j, q] = v0[q]
        live[j] = j
    n_live = m
    acc = 0.0
    for i in range(start + 1, n_points):
        draw = np.uint64(2 * (i - 1))
        if n_live * SPARSE >= m:
            for q in range(n_legs):
                fill_normals(key0, names[q], stream, path0, draw, b[q])
                if heston[q]:
                    fill_normals(key0, names[q], stream, path0, draw + np.uint64(1), own[q])
        else:
            for a in range(n_live):
                _legs_draws(key0, names, heston, stream, path0 + np.uint64(live[a]), draw, b,
                            own, live[a])
        _legs_step(scheme, heston, coef, scens, corr_bar, drift, sd, factor, i - 1, b, own, x,
                   v, live, n_live)
        d = date_of[i]
        if d == 0:
            continue
        kept = 0
        for a in range(n_live):
            j = live[a]
            for q in range(n_legs):
                xs[q] = level[q] * elementary.exp_scalar(x[j, q])
            cash = moneyness(factor, kind, omega, strike, xs, du)
            if d == n:
                acc += disc[n] * max(cash, 0.0)
            elif exercises_legs(policy, d - 1, kind, omega, strike, xs, n_legs):
                acc += disc[d] * cash
            else:
                live[kept] = j
                kept += 1
        n_live = kept
        if n_live == 0:
            break
    return acc / m


@kernel
def _heston_legs_outer_block(policy, coef, scens, corr_bar, drift, sd, heston, factor, scheme,
                             date_of, disc, kind, omega, strike, level, v_start, key0, names,
                             stream, n_outer, n_inner, first, end, values, lows):
    """Outer paths first .. end-1 (one parallel task) of the legs on the grid of ``coef``
    (outer path o: path number o): values[o] = the max of h̃_k - M̂_k over the maturity and the
    dates where the option is in the money (at the others exercise is not optimal and not the
    policy's: module docstring), lows[o] = Q̂_0.  Inner paths of date d from path number
    n_outer + (o·n + d)·n_inner on.  v_start: the legs' variances at time 0 (0 for a GBM leg);
    the other arguments as ``_heston_legs_continuation``'s."""
    n_points = coef.shape[1] + 1
    n = date_of[n_points - 1]
    n_legs = level.size
    b = np.empty((n_legs, n_inner))
    own = np.empty((n_legs, n_inner))
    x = np.empty((n_inner, n_legs))
    v = np.empty((n_inner, n_legs))
    live = np.empty(n_inner, dtype=np.int64)
    xs = np.empty(n_legs)
    du = np.empty(n_legs)
    origin = np.zeros(n_legs)
    # the outer path: one path of the inner paths' layout
    path_b = np.empty((n_legs, 1))
    path_own = np.empty((n_legs, 1))
    path_x = np.empty((1, n_legs))
    path_v = np.empty((1, n_legs))
    path_live = np.zeros(1, dtype=np.int64)
    for o in range(first, end):
        inner0 = n_outer + o * n * n_inner
        q_prev = _heston_legs_continuation(policy, coef, scens, corr_bar, drift, sd, heston,
                                           factor, scheme, date_of, disc, kind, omega, strike,
                                           level, key0, names, stream, np.uint64(inner0), 0,
                                           origin, v_start, b, own, x, v, xs, du, live)
        lows[o] = q_prev
        m = 0.0                 # M̂ at the last date used (its Q̂ in q_prev)
        best = -math.inf
        for q in range(n_legs):
            path_x[0, q] = 0.0
            path_v[0, q] = v_start[q]
        for i in range(1, n_points):
            _legs_draws(key0, names, heston, stream, np.uint64(o), np.uint64(2 * (i - 1)),
                        path_b, path_own, 0)
            _legs_step(scheme, heston, coef, scens, corr_bar, drift, sd, factor, i - 1, path_b,
                       path_own, path_x, path_v, path_live, 1)
            d = date_of[i]
            if d == 0:
                continue
            for q in range(n_legs):
                xs[q] = level[q] * elementary.exp_scalar(path_x[0, q])
            h = max(moneyness(factor, kind, omega, strike, xs, du), 0.0)
            paid = disc[d] * h
            if d == n:
                m, best = _account(m, best, q_prev, paid, paid)
            elif h > 0.0:
                exercised = exercises_legs(policy, d - 1, kind, omega, strike, xs, n_legs)
                q_k = _heston_legs_continuation(policy, coef, scens, corr_bar, drift, sd, heston,
                                                factor, scheme, date_of, disc, kind, omega,
                                                strike, level, key0, names, stream,
                                                np.uint64(inner0 + d * n_inner), i, path_x[0],
                                                path_v[0], b, own, x, v, xs, du, live)
                m, best = _account(m, best, q_prev, paid, paid if exercised else q_k)
                q_prev = q_k
        values[o] = best


def _gbm_leg(params):
    """A GBM leg's market (spot, rate, div_yield, vol) as floats, validated."""
    p = {key: float(params.get(key, 0.0)) for key in ("spot", "rate", "div_yield", "vol")}
    if not (p["spot"] > 0.0 and p["vol"] > 0.0) or not all(map(math.isfinite, p.values())):
        raise ValueError(f"a GBM leg needs a spot and vol > 0, a finite rate and div_yield, got "
                         f"{params!r}")
    return p


def heston_legs_bounds(policy_rows, times, kind, is_call, strike, params, weights, factor, key0,
                       names, steps_per_year=None, scheme="qe", n_outer=DEFAULT_OUTER,
                       n_inner=DEFAULT_INNER):
    """Andersen–Broadie bounds (a ``DualBounds``) of the Bermudan multi-asset call
    (``is_call``) or put ``kind`` (``payoffs.BASKET``, ``BEST_OF``, ``WORST_OF``, ``SPREAD``:
    exercise value max(ω(u - K), 0) of the legs' weighted spots x_q = w_q S_q) exercisable at
    ``times`` under the fixed policy ``policy_rows`` (``exercise_policy.legs_rows``), on legs
    ``params`` (per leg a market dict: model "heston" with spot, rate, div_yield, v0, kappa,
    vbar, xi, corr, or "gbm" with spot, rate, div_yield, vol; one rate for all) whose spots
    are correlated by the lower Cholesky factor ``factor``, simulated together as the pricer
    simulates a group: a Heston leg by ``scheme`` ("qe" or "euler"), a GBM leg exactly, on
    ``models.heston.simulation_grid(times, steps_per_year or 52)``.  Random numbers of stream
    ``rng.STREAM_DUAL``, leg q's under keys (key0, names[q]).  No control: the inner paths run
    to their stop or the maturity (module docstring, "Several assets with a Heston name")."""
    from mcgreeks.pricers.heston import DEFAULT_STEPS_PER_YEAR
    policy = np.ascontiguousarray(policy_rows, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    weights = np.array(weights, dtype=np.float64, ndmin=1)
    factor = np.ascontiguousarray(factor, dtype=np.float64)
    names = np.array([int(name) for name in names], dtype=np.uint64)
    strike = float(strike)
    n_legs = len(params)
    _check(policy, times, n_outer, n_inner, strike=strike)
    _check_legs(kind, n_legs, weights, factor, names)
    if scheme not in H.SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(H.SCHEMES)}, got {scheme!r}")
    heston = np.array([p.get("model") == "heston" for p in params])
    legs = [H.check_params(p) if h else _gbm_leg(p) for p, h in zip(params, heston)]
    rate = legs[0]["rate"]
    if any(p["rate"] != rate for p in legs):
        raise ValueError("the legs must share one rate (the trade is discounted at one), got "
                         f"{[p['rate'] for p in legs]}")
    grid = H.simulation_grid(times, steps_per_year or DEFAULT_STEPS_PER_YEAR)
    points = np.concatenate([[0.0], grid])
    dt = np.diff(points)
    date_of = np.zeros(points.size, dtype=np.int64)
    date_of[np.searchsorted(grid, times) + 1] = np.arange(1, times.size + 1)
    # per leg and step: a Heston leg's scheme coefficients, a GBM leg's exact log-spot moments
    coef = np.zeros((n_legs, dt.size, H.N_COEF))
    scens = np.zeros((n_legs, H.SC_CORR + 1))
    drift = np.zeros((n_legs, dt.size))
    sd = np.zeros((n_legs, dt.size))
    for q, p in enumerate(legs):
        if heston[q]:
            scens[q] = H.scenario_row(p)
            coef[q] = H.scenario_coefficients(dt, p, [scens[q]])[0]
        else:
            drift[q] = (rate - p["div_yield"] - 0.5 * p["vol"] ** 2) * dt
            sd[q] = p["vol"] * np.sqrt(dt)
    corr_bar = np.array([H.correlation_complement(rho) for rho in scens[:, H.SC_CORR]])
    level = weights * np.array([p["spot"] for p in legs])
    disc = elementary.exp(-rate * np.concatenate([[0.0], times]))
    head = (policy, coef, scens, corr_bar, drift, sd, heston, factor, H.SCHEMES[scheme],
            date_of, disc, kind, 1.0 if is_call else -1.0, strike, level,
            np.ascontiguousarray(scens[:, H.SC_V0]), np.uint64(key0), names, STREAM_DUAL,
            int(n_outer), int(n_inner))
    return _run(_heston_legs_outer_block, head, int(n_outer))


def heston_legs_upper_bound(policy_rows, times, kind, is_call, strike, params, weights, factor,
                            key0, names, steps_per_year=None, scheme="qe",
                            n_outer=DEFAULT_OUTER, n_inner=DEFAULT_INNER):
    """(upper, se) of ``heston_legs_bounds``: the Andersen–Broadie estimate of an upper bound on
    the value at time 0 of the Bermudan multi-asset option on legs with a Heston name, for the
    pricer's discretization, and its standard error over the ``n_outer`` outer paths."""
    b = heston_legs_bounds(policy_rows, times, kind, is_call, strike, params, weights, factor,
                           key0, names, steps_per_year, scheme, n_outer, n_inner)
    return b.upper, b.upper_se
