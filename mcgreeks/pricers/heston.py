"""Heston pricer: QE (or full-truncation Euler) paths on a time grid, every payoff, price and the
sensitivities to S0, r, T, v0, kappa, vbar, xi and corr in one pass.

For one tile of paths the normals of every step are drawn once (``models.heston.tile_normals``:
step k uses draws 2k and 2k+1 of the path, so a number depends only on seed, underlying, path and
draw), the path is simulated on the underlying's grid (the union of its trades' payoff dates and
a uniform grid of ``steps_per_year`` steps per year), and then each trade, path by path:
- reads ln S at its own dates through the view ln S_t = ln S0 + x_t (``payoffs``: ``_fill``,
  and ``_values`` for the revaluations, the tile's paths as the inner loop);
- for pathwise and mixed estimators, the tangents of its payoff's underlying quantity (terminal
  spot, average, extreme) along the eight directions S0, r, T, v0, kappa, vbar, xi, corr
  (``_fill``): d ln S_t / d S0 = 1/S0 and d ln S_t / dr = t exactly, chained through the
  payoff's date-weight moments; the other six come from the tangent processes that
  ``models.heston.simulate_tile`` carries along the path (the chain rule through each step of
  the discretized scheme), contracted with the payoff's date weights (``payoffs.contract``);
- for likelihood-ratio estimators, the scores of S0 (and of r for one-date payoffs) from the law
  of ln S at its first (last) date conditional on the variance path, a Gaussian
  (``models.heston``; Glasserman 2004, §7.3 for the Gaussian scores);
- for vibrato (digitals' delta and gamma), the same Gaussian structure over the last step only:
  given the path before the step ending at the payoff date, ln S there is Normal(μ, s²) with
  ln S0 in μ alone, and the likelihood ratio over that step (Giles 2009) is taken with an
  antithetic pair and the mid value (``_vibrato``);
- for a continuously monitored barrier, the product over grid steps of Brownian-bridge survival
  probabilities of ln S with the step's variance (v_{k-1} + v_k) dt / 2 (an approximation whose
  error vanishes with the step; the probabilities are smooth, so the barrier's Greeks are
  pathwise-valid), and its derivatives (``_barrier_pathwise``).
fd revalues on the same normals: spot and rate bumps need no new path (x = ln(S/S0) does not
depend on S0, and r only adds r t: ``_fd_spot_rate``); maturity and the five model parameters
re-simulate the tile with the bumped parameters (``_block``).  ``estimators.combine`` turns the
rows of ``_fill`` into each estimator's estimate.

Bump sizes (``estimators.fd.HESTON_BUMPS``): spot 1 % of S0, rate 10 bp, maturity 10 % of T
(the whole grid scales, the normals of each step are kept), v0, kappa, vbar and xi 10 % of their
value (v0 = 0: 10 % of vbar, one-sided), corr 0.01 absolute, clipped to [-1, 1] (the quotient
divides by the clipped width); why 10 % is said there.

Pathwise under QE differentiates the QE map inside its branches; see ``models.heston`` for what
that leaves out (the switch at psi_c) and for the variance of the tangents when the Feller
condition fails: below a Feller ratio of about 1/2 the pathwise theta and d_v0 ... d_xi have an
infinite variance (tail index 1.1-2.9, measured), so their sample standard error means nothing;
``auto`` takes fd there and pilots the two against each other up to a ratio of 1
(``estimators.validity.PATHWISE_FELLER``).  Which estimator is valid where is decided by the
validity table (``estimators.validity``), which ``prepare`` checks the slots against.
"""
import numpy as np

from mcgreeks import elementary, engine, kernel_inputs, vecmath
from mcgreeks import exercise_policy as XP
from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks._jit import borrow, keep, kernel, wait_for_background
from mcgreeks.engine import TILE, add_to_total_called, store_moments
from mcgreeks.estimators import combine as C
from mcgreeks.estimators import fd, optimal, validity, vibrato
from mcgreeks.models import heston as H
from mcgreeks.pricers import gbm as gbm_pricer
from mcgreeks.pricers import heston_multi
from mcgreeks.rng import antithetic

#: Default time grid: weekly steps.  With QE the price bias at this grid is a few basis points of
#: the spot on ordinary parameters (benchmarks/results/HESTON_BIAS.md).
DEFAULT_STEPS_PER_YEAR = 52

# Per-path quantities kept for a tile: the rows of ``estimators.combine``.  Pathwise
# derivatives are taken along N_PW directions j: 0 (S0), 1 (r), 2 + d (models.heston direction d:
# grid scale, v0, kappa, vbar, xi, corr), whose rows are those of delta, rho, theta and d_v0 ...
# d_corr (``_pw_row``; the grid scale's row becomes theta's ∂/∂T once divided by T).
F, U, SLOPE = C.F, C.U, C.SLOPE
N_PW = 2 + H.N_DIR
N_Q = C.N_ROWS


@kernel(inline=True)
def _pw_row(j):
    """The row of q holding the pathwise derivative along direction j."""
    if j == 0:
        return C.D + G.DELTA
    if j == 1:
        return C.D + G.RHO
    return C.D + G.THETA + (j - 2)


# Model parameter of each re-simulated fd quantity (None: the grid scale).
_RESIM = {G.THETA: None, G.D_V0: "v0", G.D_KAPPA: "kappa", G.D_VBAR: "vbar", G.D_XI: "xi",
          G.D_CORR: "corr"}


# -- one trade on one path -------------------------------------------------------------------------

@kernel
def _survival(ti, tf, fix_idx, grid, c, x, v, m, log_s0, dr, v0, alive):
    """alive[i] = the product over the grid steps up to the trade's maturity of the
    Brownian-bridge survival of ln S on path i, with the step's variance (v_{k-1} + v_k) dt_k c / 2
    (dates scaled by c, rate moved by dr): Heston's segments of a continuously monitored barrier
    are its grid steps.  Steps outer, the tile's paths inner, so that it vectorizes."""
    down = ti[P.DOWN] == 1
    log_level = elementary.ln(tf[P.LEVEL])
    g_last = fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1]
    for i in range(m):
        y1 = log_s0 + x[0, i] + dr * grid[0]
        alive[i] = P.bridge_alive(down, log_level, log_s0, y1,
                                  0.5 * (v0 + v[0, i]) * grid[0] * c)
    for k in range(1, g_last + 1):
        t0, t1 = grid[k - 1], grid[k]
        for i in range(m):
            y0 = log_s0 + x[k - 1, i] + dr * t0
            y1 = log_s0 + x[k, i] + dr * t1
            alive[i] *= P.bridge_alive(down, log_level, y0, y1,
                                       0.5 * (v[k - 1, i] + v[k, i]) * (t1 - t0) * c)


@kernel
def _values(ti, tf, fix_idx, policy, grid, c, x, v, m, log_s0, rate, dr, v0, acc, alive, out):
    """Undiscounted payoffs of one unit on the tile's paths into out[:m] (grid dates scaled by c,
    rate moved by dr: the payoff's view is ln S_t = ln S0 + dr t + x_t, ``payoffs``), the
    tile's paths as the inner loop: the fd revaluations.  An exercisable option keeps its
    fixed policy, and its cash flow is carried to the maturity at the moved rate r + dr."""
    kind = ti[P.KIND]
    if ti[P.EXERCISE] == 1:
        maturity = tf[P.MATURITY]
        for i in range(m):
            g = XP.stop(ti, tf, policy, fix_idx, grid, x, i, log_s0, dr, 1.0, v)
            u = elementary.exp_scalar(log_s0 + dr * grid[g] + x[g, i])
            out[i] = P.value(P.EUROPEAN, tf[P.OMEGA], tf[P.STRIKE], 1.0, u) * \
                elementary.exp_scalar((rate + dr) * c * (maturity - grid[g]))
        return
    P.accumulate(kind, ti, tf, fix_idx, grid, x, m, log_s0, dr, 1.0, False, acc)
    t_mean = P.mean_date(ti, fix_idx, grid)
    for i in range(m):
        u, extreme, _, _, _ = P.quantity_called(kind, ti, fix_idx, grid, x, acc, i, log_s0, dr,
                                                1.0, t_mean)
        out[i] = P.cash_flow(kind, ti, tf, u, extreme)
    if kind == P.BARRIER and ti[P.CONTINUOUS] == 1:
        _survival(ti, tf, fix_idx, grid, c, x, v, m, log_s0, dr, v0, alive)
        for i in range(m):
            out[i] *= P.knock_weight(ti, alive[i])


@kernel
def _tangent_y(j, k, i, s0, grid, tx):
    """d ln S_{t_k} / d(direction j) on path i; k = -1 is t = 0."""
    if j == 0:
        return 1.0 / s0
    if k < 0:
        return 0.0
    if j == 1:
        return grid[k]
    return tx[j - 2, k, i]


@kernel
def _tangent_v(j, k, i, tv):
    """d v_{t_k} / d(direction j) on path i; k = -1 is t = 0 (v = v0)."""
    if j < 2:
        return 0.0
    if k < 0:
        return 1.0 if j - 2 == H.D_V0 else 0.0
    return tv[j - 2, k, i]


#: Rows of ``_barrier_pathwise``'s scratch: the survival so far, then one step's bridge terms.
B_W, B_P, B_P0, B_P1, B_PV, B_VAR = range(6)
N_BRIDGE = 6


@kernel
def _barrier_pathwise(ti, tf, fix_idx, grid, x, v, tx, tv, m, s0, log_s0, v0, n_pw, b, q):
    """Continuous barrier: f = vanilla(S_T) W (out) or vanilla (1 - W) (in), W the product of the
    steps' bridge survivals; q[_pw_row(j), i] = df/d(direction j) on each path i of the tile,
    by the product rule along the path (W and dW accumulated step by step; a path stops
    accumulating once its W is 0, never dividing by a survival that may be 0); j < n_pw as in
    ``_fill``.  Steps outer, the tile's paths inner (``payoffs.bridge_terms`` has no branch), so
    that it vectorizes; b: scratch rows ``B_*``."""
    kind = ti[P.KIND]
    down = ti[P.DOWN] == 1
    log_level = elementary.ln(tf[P.LEVEL])
    g_last = fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1]
    for j in range(N_PW):
        for i in range(m):
            q[_pw_row(j), i] = 0.0
    for i in range(m):
        b[B_W, i] = 1.0
    t_prev = 0.0
    for k in range(g_last + 1):
        dtk = grid[k] - t_prev
        for i in range(m):
            y0 = log_s0 + x[k - 1, i] if k > 0 else log_s0
            v_prev = v[k - 1, i] if k > 0 else v0
            var = 0.5 * (v_prev + v[k, i]) * dtk
            b[B_P, i], b[B_P0, i], b[B_P1, i], b[B_PV, i], _ = P.bridge_terms(
                down, log_level, y0, log_s0 + x[k, i], var)
            b[B_VAR, i] = var
        for j in range(n_pw):
            row = _pw_row(j)
            for i in range(m):
                if b[B_W, i] != 0.0:
                    dvar = 0.5 * (_tangent_v(j, k - 1, i, tv) + _tangent_v(j, k, i, tv)) * dtk
                    if j == 2 + H.D_SCALE:
                        dvar += b[B_VAR, i]
                    dp = (b[B_P0, i] * _tangent_y(j, k - 1, i, s0, grid, tx)
                          + b[B_P1, i] * _tangent_y(j, k, i, s0, grid, tx) + b[B_PV, i] * dvar)
                    q[row, i] = q[row, i] * b[B_P, i] + b[B_W, i] * dp
        for i in range(m):
            b[B_W, i] *= b[B_P, i]
        t_prev = grid[k]
    knock_in = ti[P.KNOCK_IN] == 1
    sign = -1.0 if knock_in else 1.0
    for i in range(m):
        s_t = elementary.exp_scalar(log_s0 + x[g_last, i])
        vanilla = P.value(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], s_t)
        slope = P.slope(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], s_t)
        weight = 1.0 - b[B_W, i] if knock_in else b[B_W, i]
        for j in range(n_pw):
            q[_pw_row(j), i] = (slope * s_t * _tangent_y(j, g_last, i, s0, grid, tx) * weight
                                + sign * vanilla * q[_pw_row(j), i])
        q[U, i] = s_t
        q[SLOPE, i] = slope * weight


@kernel
def _barrier_explicit(ti, tf, fix_idx, grid, x, v, m, s0, log_s0, v0, rest, q):
    """Continuous barrier, likelihood-ratio view (the random variables are ln S at the grid dates,
    S0 enters the payoff only through the first step's bridge): (df/dS0, d2f/dS0^2) at fixed
    ln S_{t_1..} on each path of the tile into q[C.X + G.DELTA] and q[C.X2].  Steps outer, the
    tile's paths inner, so that it vectorizes; rest: scratch, the later steps' survival."""
    down = ti[P.DOWN] == 1
    log_level = elementary.ln(tf[P.LEVEL])
    g_last = fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1]
    for i in range(m):
        rest[i] = 1.0
    for k in range(1, g_last + 1):
        dtk = grid[k] - grid[k - 1]
        for i in range(m):
            rest[i] *= P.bridge_terms(down, log_level, log_s0 + x[k - 1, i], log_s0 + x[k, i],
                                      0.5 * (v[k - 1, i] + v[k, i]) * dtk)[0]
    sign = -1.0 if ti[P.KNOCK_IN] == 1 else 1.0
    for i in range(m):
        _, p0, _, _, p00 = P.bridge_terms(down, log_level, log_s0, log_s0 + x[0, i],
                                          0.5 * (v0 + v[0, i]) * grid[0])
        s_t = vecmath.exp_any(log_s0 + x[g_last, i])
        vanilla = P.value(ti[P.KIND], tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], s_t)
        # a path whose first step has no S0-derivative, or that is knocked later, has none
        none = (p0 == 0.0 and p00 == 0.0) or rest[i] == 0.0
        q[C.X + G.DELTA, i] = 0.0 if none else sign * vanilla * rest[i] * p0 / s0
        q[C.X2, i] = 0.0 if none else sign * vanilla * rest[i] * (p00 - p0) / (s0 * s0)


@kernel
def _vibrato(tf, kind, k, x, v, z, i, log_s0, f, scheme, coef, corr_bar, v0):
    """Vibrato of a one-date payoff read at grid date k on path i whose value there is f:
    (∂μ E[f | path], ∂²μ E[f | path]) by ``estimators.vibrato``, where, given the variance path
    and the spot's normals before its last noisy step j (``models.heston.last_noise``),
    ln S_k = μ + s Z is Gaussian: s = sig_j, Z = zs_j, μ = ln S_k - s Z.  S0 enters only μ,
    with ∂μ/∂S0 = 1/S0, so the caller's delta is disc/S0 times the first and gamma
    disc/S0² times (second - first).  f⁺ is the path's own payoff f, f⁻ and f⁰ the payoff at
    μ - s Z and μ.  j is the step ending at grid[k] except on paths where that step has no spot
    noise: under QE both its variances are 0, which has positive probability once
    2 kappa vbar / xi² < 2/3 (QE's exponential branch has an atom at 0; with Andersen's case I
    at 252 steps a year, 65 % of paths), under Euler its starting v+ is 0.  Conditioning there
    on the whole variance path (independent of S0 and of the spot's normals) instead of on the
    step's two variances, the estimate stays exactly unbiased.  On a path with no noise at all
    (v0 = 0 only; |corr| = 1 is refused) ln S_k is S0-independent noise plus ln S0, so the
    payoff is a step function of S0 whose derivative is 0 except at one S0: both are 0."""
    s, zn, _ = H.last_noise(scheme, coef, corr_bar, v0, v, z, k, i)
    if s == 0.0:
        return 0.0, 0.0
    y = log_s0 + x[k, i]
    f_mid = P.value(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], elementary.exp_scalar(y - s * zn))
    f_down = P.value(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH],
                     elementary.exp_scalar(y - 2.0 * s * zn))
    return vibrato.d_mean(f, f_down, zn, s), vibrato.d2_mean(f, f_down, f_mid, zn, s)


@kernel
def _fill(ti, tf, fix_idx, policy, grid, x, v, tx, tv, gs, cs, z, m, s0, rate, v0, scheme, coef,
          corr_bar, need_pw, n_pw, need_sc, need_vb, acc, alive, bridge, q):
    """Per-path quantities of one trade over a tile into the rows of ``q``: the payoff from the
    sums of ``payoffs.accumulate`` (the view ln S_t = ln S0 + x_t); with ``need_pw``, u, its
    slope (times a discrete barrier's knock weight) and the pathwise derivatives f'(u) du/dθ_j
    along the first ``n_pw`` directions j: S0 and r from the payoff's date-weight moments
    (d ln S_t/d S0 = 1/S0, d ln S_t/dr = t), the model's tangent rows tx by ``payoffs.contract``
    (Glasserman 2004, §7.2.2); a continuous barrier's along its bridge (``_barrier_pathwise``).
    An exercisable option is read at the date τ its fixed ``policy`` stops the path, its cash
    flow carried to the maturity at the rate (as ``pricers.gbm._fill``): the tangents are a
    one-date payoff's at τ, and the carry's own derivatives are explicit terms of rho and
    theta."""
    kind = ti[P.KIND]
    maturity = tf[P.MATURITY]
    stopped = ti[P.EXERCISE] == 1
    continuous = kind == P.BARRIER and ti[P.CONTINUOUS] == 1
    log_s0 = elementary.ln(s0)
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    g_first = 0 if continuous else fix_idx[off]
    g_last = fix_idx[off + n - 1]
    if not stopped:     # an exercisable trade reads its stopping date alone
        P.accumulate(kind, ti, tf, fix_idx, grid, x, m, log_s0, 0.0, 1.0, False, acc)
    t_mean = P.mean_date(ti, fix_idx, grid)
    if continuous:
        _survival(ti, tf, fix_idx, grid, 1.0, x, v, m, log_s0, 0.0, v0, alive)
        if need_pw:
            _barrier_pathwise(ti, tf, fix_idx, grid, x, v, tx, tv, m, s0, log_s0, v0, n_pw,
                              bridge, q)
    for i in range(m):
        g_stop, carry, x_rate = g_last, 1.0, 0.0
        if stopped:
            g_stop = XP.stop(ti, tf, policy, fix_idx, grid, x, i, log_s0, 0.0, 1.0, v)
            u = elementary.exp_scalar(log_s0 + x[g_stop, i])
            extreme, sw, swt = 0.0, u, u * grid[g_stop]
            carry = elementary.exp_scalar(rate * (maturity - grid[g_stop]))
        else:
            u, extreme, sw, swt, _ = P.quantity_called(kind, ti, fix_idx, grid, x, acc, i,
                                                       log_s0, 0.0, 1.0, t_mean)
        f = P.cash_flow(kind, ti, tf, u, extreme) * carry
        if stopped:
            x_rate = (maturity - grid[g_stop]) * f
        if continuous:
            f *= P.knock_weight(ti, alive[i])
        q[F, i] = f
        q[C.X + G.DELTA, i] = q[C.X2, i] = 0.0
        q[C.X + G.RHO, i] = x_rate
        if need_pw:
            if not continuous:      # a continuous barrier's rows are _barrier_pathwise's
                slope = (P.slope(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], u)
                         * P.discrete_survival(ti, tf, extreme) * carry)
                q[U, i], q[SLOPE, i] = u, slope
                q[C.D + G.DELTA, i] = slope * sw / s0
                q[C.D + G.RHO, i] = slope * swt + x_rate
                if n_pw > 2:
                    if stopped:       # one date, τ: ω = u there
                        for d in range(H.N_DIR):
                            q[C.D + G.THETA + d, i] = u * tx[d, g_stop, i]
                    else:
                        P.contract_called(kind, ti, fix_idx, grid, x, acc, i, log_s0, 0.0, 1.0,
                                          u, tx, 0, H.N_DIR, q, C.D + G.THETA)
                    for j in range(2, n_pw):
                        q[_pw_row(j), i] *= slope
            if n_pw > 2:      # the grid scale c = T'/T: d/dT = (1/T) d/dc
                q[C.D + G.THETA, i] = (q[C.D + G.THETA, i] + rate * x_rate) / maturity
        if need_sc:
            c1 = cs[g_first, i]
            g1 = gs[g_first, i]
            q[C.SC + G.DELTA, i] = g1 / (s0 * c1)
            q[C.SC2, i] = (g1 * g1 / c1 - g1 - 1.0) / (s0 * s0 * c1)
            q[C.SC + G.RHO, i] = gs[g_last, i] * grid[g_last] / cs[g_last, i]
        if need_vb:
            # V = disc E[h(ln S0 + c)]: dV/dS0 = disc h'/S0, d²V/dS0² = disc (h'' - h')/S0²
            by_mean, by_mean2 = _vibrato(tf, kind, g_last, x, v, z, i, log_s0, f, scheme, coef,
                                         corr_bar, v0)
            q[C.VB + G.DELTA, i] = by_mean / s0
            q[C.VB + G.GAMMA, i] = (by_mean2 - by_mean) / (s0 * s0)
    if need_sc and continuous:
        _barrier_explicit(ti, tf, fix_idx, grid, x, v, m, s0, log_s0, v0, bridge[B_W], q)


@kernel
def _fd_spot_rate(g, ti, tf, fix_idx, policy, grid, x, v, m, s0, rate, v0, disc, q, bumps, acc,
                  alive, up, down, out):
    """Central bump-and-revalue of delta, gamma or rho on the tile's paths into out[:m]: spot and
    rate bumps need no new path (x = ln(S/S0) does not depend on S0; r moves ln S_t by r t).
    disc: the trade's unbumped discount; up, down: scratch of the tile's size."""
    log_s0 = elementary.ln(s0)
    if g == G.RHO:
        h = bumps[fd.B_RATE]
        _values(ti, tf, fix_idx, policy, grid, 1.0, x, v, m, log_s0, rate, h, v0, acc, alive, up)
        _values(ti, tf, fix_idx, policy, grid, 1.0, x, v, m, log_s0, rate, -h, v0, acc, alive,
                down)
        pay = P.payment_time(ti[P.KIND], tf)
        d_up = elementary.exp_scalar(-(rate + h) * pay)
        d_down = elementary.exp_scalar(-(rate - h) * pay)
        for i in range(m):
            out[i] = fd.central(d_up * up[i], d_down * down[i], h)
        return
    h = bumps[fd.B_SPOT] * s0
    _values(ti, tf, fix_idx, policy, grid, 1.0, x, v, m, elementary.ln(s0 + h), rate, 0.0, v0, acc,
            alive, up)
    _values(ti, tf, fix_idx, policy, grid, 1.0, x, v, m, elementary.ln(s0 - h), rate, 0.0, v0, acc,
            alive, down)
    for i in range(m):
        if g == G.DELTA:
            out[i] = fd.central(disc * up[i], disc * down[i], h)
        else:
            out[i] = fd.second(disc * up[i], disc * q[F, i], disc * down[i], h)


@kernel
def _trade_tile(ti, tf, fix_idx, policy, grid, x, v, tx, tv, gs, cs, z, m, s0, rate, v0, scheme,
                coef, corr_bar, slots_j, blend_j, bumps, agg_e_j, agg_w_j, agg_t_j, agg, acc,
                alive, bridge, up, down, q, buf, pairs, out_tile):
    """All wanted estimates of one trade over one tile, except the re-simulated fd ones (which
    ``chunk`` adds), and their contributions to the per-path totals.  z: the tile's normals;
    coef: the base scenario's step coefficients; corr_bar = sqrt(1 - corr²); blend_j: the
    trade's blend coefficients (zero: Heston fits none); pairs: the moments are of antithetic
    pairs' means (``engine.tile_moments``)."""
    pay = P.payment_time(ti[P.KIND], tf)
    disc = elementary.exp_scalar(-rate * pay)
    # np.bool_ and np.int64, not literals: numba would type (and compile) _fill for the literal
    # False and 2 first, then again for bool and int64 once the loop below widens them
    need_pw = need_sc = need_vb = np.bool_(False)
    n_pw = np.int64(2)   # S0 and r: exact; the tangents' directions only for theta and d_*
    for g in range(slots_j.shape[0]):
        need_pw |= slots_j[g, G.PATHWISE] >= 0 and g != G.PRICE
        need_pw |= slots_j[g, G.MIXED] >= 0
        if g >= G.THETA and slots_j[g, G.PATHWISE] >= 0:
            n_pw = N_PW
        need_sc |= slots_j[g, G.LR] >= 0 or slots_j[g, G.MIXED] >= 0
        need_vb |= slots_j[g, G.VIBRATO] >= 0
    _fill(ti, tf, fix_idx, policy, grid, x, v, tx, tv, gs, cs, z, m, s0, rate, v0, scheme, coef,
          corr_bar, need_pw, n_pw, need_sc, need_vb, acc, alive, bridge, q)
    for g in range(slots_j.shape[0]):
        for e in range(slots_j.shape[1]):
            k = slots_j[g, e]
            if k < 0:
                continue
            if g == G.PRICE:
                for i in range(m):
                    buf[i] = disc * q[F, i]
            elif e == G.FD:
                if g != G.DELTA and g != G.GAMMA and g != G.RHO:
                    continue  # re-simulated in ``chunk``
                _fd_spot_rate(g, ti, tf, fix_idx, policy, grid, x, v, m, s0, rate, v0, disc, q,
                              bumps,
                              acc, alive, up, down, buf)
            else:
                jumps = P.jumps(ti)
                for i in range(m):
                    buf[i] = C.estimate_called(g, e, q, i, s0, rate, pay, disc, jumps,
                                               blend_j[g], False)
            store_moments(buf, m, pairs, out_tile[k])
            add_to_total_called(g, e, buf, buf, m, False, agg_e_j, agg_w_j, agg_t_j, agg)


@kernel
def _block(keys, path0, n_paths, book, paths, plan, totals, legs, members, mix, first_tile,
           end_tile, out):
    """Tiles first_tile..end_tile-1 of ``chunk`` (one parallel task), with their own scratch.
    Every array is ``borrow``ed: no reference counting in the loops.

    Per tile: the draws (an ungrouped underlying's own, ``models.heston.tile_normals``; a
    group's mixed, ``models.heston.group_normals`` and ``group_rows``), then asset by asset
    its path and its single-asset trades' estimates; then asset by asset its fd
    re-simulations, each revaluing the single-asset trades on the asset and the multi-asset
    trades with a leg on it (``heston_multi.fd_resimulated``; a maturity's re-simulated paths
    are kept for the multi-asset thetas, which move every leg); last the multi-asset trades'
    other estimates (``pricers.heston_multi``, which read every asset's path).  A GBM member's
    state is its Brownian motion, and its single-asset trades are GBM's (``pricers.gbm``), read
    with ``members`` (``kernel_inputs.GbmMembers``).  legs is None for a book without
    multi-asset trades, members without single-asset trades on a GBM member, and mix (the
    group's Cholesky factor) for an underlying alone, so numba prunes their branches: an
    ungrouped Heston book compiles none of the group's code."""
    key0, key1, stream = keys
    pairs = antithetic(stream)
    grid, ti, tf, fix_idx = borrow(book.grid), borrow(book.ti), borrow(book.tf), \
        borrow(book.fix_idx)
    policies, policy_of = borrow(book.policy), borrow(book.policy_of)
    coefs, scens, dcoefs = borrow(paths.coefs), borrow(paths.scenarios), borrow(paths.dcoef)
    fd_scens, fd_dens = borrow(paths.fd_scenario), borrow(paths.fd_denominator)
    scheme, spots, rates = paths.scheme, borrow(paths.spot), borrow(paths.rate)
    names, heston = borrow(paths.names), borrow(paths.heston)
    slots, bumps, blend = borrow(plan.slots), borrow(plan.bumps), borrow(plan.coef)
    agg_e, agg_w, agg_base = borrow(totals.estimator), borrow(totals.weights), totals.base
    agg_t = borrow(totals.target)
    out = borrow(out)
    n_steps = grid.size
    n_trades = ti.shape[0]
    n_assets = names.size
    grouped = n_assets > 1
    want_tangents = paths.tangents_from.min() < H.N_DIR
    want_lr = paths.want_lr.max() == 1
    want_resim = paths.want_resim == 1
    nt = n_steps if want_tangents else 1
    nl = n_steps if want_lr else 1
    n_legs = legs.asset.shape[1] if legs is not None else 0
    nr = n_steps if want_resim or n_legs > 0 else 1
    ng = n_steps if grouped else 0
    # per asset of the group: its draws' rows and its state at the grid dates (the
    # multi-asset trades read them all once every asset is simulated)
    z_ = np.empty((n_assets, 3 * n_steps, TILE))
    x_, v_ = np.empty((n_assets, n_steps, TILE)), np.empty((n_assets, n_steps, TILE))
    tx_ = np.empty((n_assets, H.N_DIR, nt, TILE))
    tv_ = np.empty((n_assets, H.N_DIR, nt, TILE))
    b_, eps_ = np.empty((n_assets, ng, TILE)), np.empty((n_assets, ng, TILE))
    own_ = np.empty((n_assets, ng, TILE))
    gs_, cs_ = np.empty((nl, TILE)), np.empty((nl, TILE))
    xs_, vs_ = np.empty((nr, TILE)), np.empty((nr, TILE))
    state_v_, tan_x_, tan_v_ = np.empty(TILE), np.empty((H.N_DIR, TILE)), np.empty((H.N_DIR, TILE))
    q_, buf_, up_ = np.empty((N_Q, TILE)), np.empty(TILE), np.empty((n_trades, TILE))
    acc_, alive_, down_ = np.empty((P.N_ACC, TILE)), np.empty(TILE), np.empty(TILE)
    bridge_ = np.empty((N_BRIDGE, TILE))
    disc_up_ = np.empty(n_trades)
    agg_ = np.empty((totals.wanted.size, TILE))
    rows_ = np.empty((heston_multi.N_LEG_ROWS, n_legs, TILE))
    zr_ = np.empty((3 * n_steps if n_legs > 0 else 0, TILE))
    # a pair correlation's re-mixed normals; an exercisable trade's moved paths
    ep_ = np.empty((n_legs, n_steps if n_legs > 0 else 0, TILE))
    cov_ = np.empty((2, n_legs, n_legs, TILE))
    theta_x_ = np.empty((n_assets if n_legs > 0 else 0, 2, n_steps, TILE))
    adj_ = np.empty((2, n_steps if n_legs > 0 else 0, TILE))
    sens_ = np.empty((n_legs, n_legs, TILE))
    dirs_ = np.empty(n_legs * H.N_ADJ * TILE)
    n_gbm = TILE if members is not None else 0
    acc_g_, q_x_ = np.empty((gbm_pricer.N_ACC, n_gbm)), np.empty((N_Q, n_gbm))
    f_, vec_ = np.empty(TILE), np.empty(n_legs)
    z, x, v, tx, tv = borrow(z_), borrow(x_), borrow(v_), borrow(tx_), borrow(tv_)
    b, eps, own = borrow(b_), borrow(eps_), borrow(own_)
    gs, cs, xs, vs = borrow(gs_), borrow(cs_), borrow(xs_), borrow(vs_)
    state_v, tan_x, tan_v = borrow(state_v_), borrow(tan_x_), borrow(tan_v_)
    q, buf, up, agg, acc = borrow(q_), borrow(buf_), borrow(up_), borrow(agg_), borrow(acc_)
    alive, down, disc_up, bridge = borrow(alive_), borrow(down_), borrow(disc_up_), borrow(bridge_)
    rows, zr, ep, f, vec = borrow(rows_), borrow(zr_), borrow(ep_), borrow(f_), borrow(vec_)
    cov, acc_g, q_x, theta_x = borrow(cov_), borrow(acc_g_), borrow(q_x_), borrow(theta_x_)
    adj, sens, dirs = borrow(adj_), borrow(sens_), borrow(dirs_)
    for tile in range(first_tile, end_tile):
        first = tile * TILE
        m = min(TILE, n_paths - first)
        agg[:, :] = 0.0
        policy_r = XP.tile_policy(policies, policy_of, path0 + first)
        if mix is not None:
            H.group_normals(key0, names, heston, stream, path0 + first, m, n_steps, borrow(mix),
                            b, eps, own)
        else:
            H.tile_normals(key0, key1, stream, path0 + first, m, n_steps, z[0])
        for a in range(n_assets):
            if not heston[a]:
                H.member_brownian(eps[a], grid, m, x[a])
                # members is None when no single-asset trade reads a GBM member: numba prunes
                # this branch, so a Heston book compiles no GBM trade code
                if members is not None:
                    for j in range(n_trades):
                        if ti[j, P.ASSET] == a and ti[j, P.LEG_N] == 0:
                            gbm_pricer.trade_tile(
                                ti[j], tf[j], fix_idx, policy_r, grid, x[a], m,
                                spots[a], rates[a],
                                paths.div_yield[a], paths.vol[a], members.needs[j], slots[j],
                                members.coef[j], members.bumps, agg_e[j], agg_w[j], agg_t[j],
                                agg, acc_g, q, q_x, buf, f, pairs, out[tile])
                continue
            scen_a, coef_a = scens[a], coefs[a]
            s0, rate, v0 = spots[a], rates[a], scen_a[0, H.SC_V0]
            corr_bar = H.correlation_complement(scen_a[0, H.SC_CORR])
            if mix is not None:
                H.group_rows(eps[a], own[a], scen_a[0, H.SC_CORR], corr_bar, n_steps, m, z[a])
            H.simulate_tile(z[a], m, scheme, coef_a[0], scen_a[0], dcoefs[a],
                            paths.tangents_from[a], paths.want_lr[a] == 1, x[a], v[a], tx[a],
                            tv[a], gs, cs, state_v, tan_x, tan_v)
            for j in range(n_trades):
                if ti[j, P.ASSET] != a or ti[j, P.LEG_N] > 0:
                    continue
                _trade_tile(ti[j], tf[j], fix_idx, policy_r, grid, x[a], v[a], tx[a], tv[a], gs,
                            cs, z[a],
                            m, s0, rate, v0, scheme, coef_a[0], corr_bar, slots[j], blend[j],
                            bumps, agg_e[j], agg_w[j], agg_t[j], agg, acc, alive, bridge, up[0],
                            down, q, buf, pairs, out[tile])
        # the fd re-simulations, asset by asset once every asset's path is known: one serves
        # the single-asset trades on the asset and the multi-asset trades with a leg on it
        for a in range(n_assets):
            if not heston[a]:
                continue
            scen_a, fd_scen, fd_den = scens[a], fd_scens[a], fd_dens[a]
            rate = rates[a]
            log_s0 = elementary.ln(spots[a])
            for g in range(G.THETA, G.N_QUANTITIES if want_resim else G.THETA):
                if fd_scen[g, 0] < 0:
                    continue
                n_fd = paths.fd_steps[a, g]
                for side in range(2):
                    s = fd_scen[g, side]
                    H.simulate_tile(z[a], m, scheme, coefs[a, s, :n_fd], scen_a[s], dcoefs[a],
                                    H.N_DIR, False, xs, vs, tx[a], tv[a], gs, cs, state_v, tan_x,
                                    tan_v)
                    c = scen_a[s, H.SC_SCALE]
                    for j in range(n_trades):
                        k = slots[j, g, G.FD]
                        if k < 0 or ti[j, P.ASSET] != a or ti[j, P.LEG_N] > 0:
                            continue
                        # the discount once per trade and side
                        disc = elementary.exp_scalar(
                            -rate * P.payment_time(ti[j, P.KIND], tf[j]) * c)
                        _values(ti[j], tf[j], fix_idx, policy_r, grid, c, xs, vs, m, log_s0, rate,
                                0.0,
                                scen_a[s, H.SC_V0], acc, alive, up[j] if side == 0 else down)
                        if side == 0:
                            disc_up[j] = disc
                        else:
                            for i in range(m):
                                d = (disc_up[j] * up[j, i] - disc * down[i]) / fd_den[g]
                                buf[i] = -d / tf[j, P.MATURITY] if g == G.THETA else d
                        if side == 1:
                            store_moments(buf, m, pairs, out[tile, k])
                            add_to_total_called(g, G.FD, buf, buf, m, False, agg_e[j], agg_w[j],
                                                agg_t[j], agg)
                    if legs is not None:
                        if g == G.THETA:
                            for k in range(n_steps):
                                for i in range(m):
                                    theta_x[a, side, k, i] = xs[k, i]
                        else:       # each decides which of its estimates this path serves
                            for j in range(n_trades):
                                if ti[j, P.LEG_N] > 0:
                                    heston_multi.fd_resimulated(
                                        j, a, g, side, book, legs, paths, plan, totals, x, xs, m,
                                        rows, up[j], down, vec, agg, pairs, out[tile])
        if legs is not None:
            for j in range(n_trades):
                if ti[j, P.LEG_N] > 0:
                    heston_multi.trade_tile(j, book, legs, paths, plan, totals, x, v, tx, eps,
                                            own, z, theta_x, m, rows, cov, adj, sens, dirs, zr,
                                            ep, xs, vs, gs, cs, state_v, tan_x, tan_v, f, buf,
                                            vec, agg, pairs, out[tile], policy_r)
        if agg_base >= 0:
            for g in range(agg.shape[0]):
                store_moments(agg[g], m, pairs, out[tile, agg_base + g])
    keep(z_), keep(x_), keep(v_), keep(tx_), keep(tv_), keep(gs_), keep(cs_), keep(xs_)
    keep(vs_), keep(state_v_), keep(tan_x_), keep(tan_v_), keep(q_), keep(buf_), keep(up_)
    keep(agg_), keep(acc_), keep(alive_), keep(down_), keep(disc_up_), keep(b_), keep(eps_)
    keep(own_), keep(rows_), keep(zr_), keep(ep_), keep(f_), keep(vec_), keep(cov_)
    keep(acc_g_), keep(q_x_), keep(theta_x_), keep(adj_), keep(sens_), keep(bridge_), keep(dirs_)


def chunk(keys, path0, n_paths, tiles_per_block, book, paths, plan, totals, legs, members, mix,
          out):
    """Simulate paths path0..path0+n_paths-1 (path0 a multiple of TILE) and write each tile's
    moments per slot to out[tile, slot, :] (mean and M2; further moments zero); with
    totals.base >= 0, the moments of the per-path totals of each quantity to slots
    totals.base + g.  The arguments are the records of ``kernel_inputs`` (``prepare`` builds
    them: the trades on the simulation grid, ``kernel_inputs.HestonPaths`` with the fd
    scenarios, the plan and the totals).  Blocks of ``tiles_per_block`` tiles run in parallel
    (``engine.for_blocks``).
    """
    n_tiles = (n_paths + TILE - 1) // TILE
    wait_for_background("heston")
    engine.for_blocks(_block, n_tiles, tiles_per_block,
                      (keys, path0, n_paths, book, paths, plan, totals, legs, members, mix),
                      (out,))


# -- Python side -----------------------------------------------------------------------------------

def _check_slots(slots, ti, params):
    """Raise ValueError for a slot the validity table does not offer under Heston."""
    for j, g, e in zip(*np.nonzero(slots >= 0)):
        if g == G.PRICE:
            continue
        kind, continuous = int(ti[j, P.KIND]), bool(ti[j, P.CONTINUOUS])
        if e not in validity.valid_estimators(validity.HESTON, kind, g, continuous, params):
            raise ValueError(f"trade {j}: {G.QUANTITIES[g]} by {G.ESTIMATORS[e]} is not "
                             "available under Heston: "
                             + validity.why_invalid(validity.HESTON, kind, g, e, continuous,
                                                    params))


def _check_gbm_slots(slots, ti):
    """Raise ValueError for a slot of a single-asset trade on a GBM member that GBM does not
    offer without its pilot (the optimal blend)."""
    for j, g, e in zip(*np.nonzero(slots >= 0)):
        if g == G.PRICE:
            continue
        kind, continuous = int(ti[j, P.KIND]), bool(ti[j, P.CONTINUOUS])
        if e == G.OPTIMAL or e not in validity.valid_estimators(validity.GBM, kind, g,
                                                                continuous):
            raise ValueError(f"trade {j}: {G.QUANTITIES[g]} by {G.ESTIMATORS[e]} is not "
                             "available on a gbm member of a group with a heston member")


def _fd_scenarios(params, wanted, b):
    """Scenario rows (base first) and, per quantity, the (up, down) rows and their difference, for
    the quantities g with wanted[g]."""
    rows = [H.scenario_row(params)]
    fd_scen = np.full((G.N_QUANTITIES, 2), -1, dtype=np.int64)
    fd_den = np.ones(G.N_QUANTITIES)
    for g, name in _RESIM.items():
        if not wanted[g]:
            continue
        if name is None:
            h = b[fd.B_MAT]
            up, dn = H.scenario_row(params, 1.0 + h), H.scenario_row(params, 1.0 - h)
            den = 2.0 * h
        else:
            value = params[name]
            if name == "corr":
                hi, lo = min(value + b[fd.B_CORR], 1.0), max(value - b[fd.B_CORR], -1.0)
            else:
                size = b[fd.BUMP_NAMES.index(name)]
                step = size * (value if value > 0.0 else params["vbar"])
                hi, lo = value + step, max(value - step, 0.0)
            up, dn = H.scenario_row(params, **{name: hi}), H.scenario_row(params, **{name: lo})
            den = hi - lo
        fd_scen[g] = (len(rows), len(rows) + 1)
        fd_den[g] = den
        rows += [up, dn]
    return np.array(rows), fd_scen, fd_den


def _member_wants(a, ti, slots, legs):
    """What asset a's path must carry, from the estimates wanted of the trades that read it:
    (fd[g]: quantity g's fd scenarios, pathwise[g]: its forward tangent direction, lr: the
    scores), over its single-asset trades' slots and the multi-asset trades' fd measures on its
    legs (``heston_multi.measures``: theta moves every leg, a Heston parameter its own).  A
    multi-asset trade's pathwise measures need no forward tangent: they read one reverse
    sweep per leg, which ends each path at its own date (``heston_multi._row_sensitivities``)."""
    single = (ti[:, P.ASSET] == a) & (ti[:, P.LEG_N] == 0)
    own = slots[single, :G.N_QUANTITIES]
    fd_wanted = (own[:, :, G.FD] >= 0).any(axis=0)
    pathwise = (own[:, :, G.PATHWISE] >= 0).any(axis=0)
    lr = bool((own[:, 1:][:, :, [G.LR, G.MIXED]] >= 0).any())
    if legs is not None:
        for j in np.nonzero(ti[:, P.LEG_N] > 0)[0]:
            on_a = a in legs.asset[j, :ti[j, P.LEG_N]]
            for r in range(slots.shape[1] - G.N_QUANTITIES):
                code, k, _ = legs.measure[j, r]
                if code == heston_multi.THETA and on_a:
                    g = G.THETA
                elif code >= heston_multi.D_V0 and legs.asset[j, k] == a:
                    g = G.D_V0 + code - heston_multi.D_V0
                else:
                    continue
                fd_wanted[g] |= slots[j, G.N_QUANTITIES + r, G.FD] >= 0
    return fd_wanted, pathwise, lr


def _fd_steps(ti, slots, fix, n_steps, n_assets, legs):
    """fd_steps[a, g] of ``kernel_inputs.HestonPaths``: how many grid steps the fd re-simulation
    of quantity g on asset a runs.  A single-asset trade reads its path up to its last date (its
    maturity), so a re-simulation stops at the latest maturity among the trades that read it
    (the sample book's Heston digital and barrier: 26 of 104 steps); a multi-asset trade reads
    its legs' re-simulated paths whole (and the thetas keep them), so an asset that is a leg
    runs the whole grid."""
    steps = np.zeros((n_assets, G.N_QUANTITIES), dtype=np.int64)
    last = fix[ti[:, P.FIX_OFF] + ti[:, P.FIX_N] - 1] + 1
    for j in range(len(ti)):
        if ti[j, P.LEG_N] > 0:
            continue
        wanted = slots[j, :G.N_QUANTITIES, G.FD] >= 0
        a = ti[j, P.ASSET]
        steps[a, wanted] = np.maximum(steps[a, wanted], last[j])
    for j in np.nonzero(ti[:, P.LEG_N] > 0)[0]:
        steps[legs.asset[j, :ti[j, P.LEG_N]], :] = n_steps
    return steps


def prepare(*, params, ti, tf, fix_idx, payoff_grid, slots, bumps=None,
            steps_per_year=DEFAULT_STEPS_PER_YEAR, scheme="qe", totals=None, names=None, mix=None,
            legs=None, gbm_bumps=None, policy=None):
    """Validate the inputs and build the ``chunk`` kernel's arguments after its path range:
    (book, paths, plan, totals, legs, members, mix), the records of ``kernel_inputs`` (mix: the
    group's Cholesky factor, None for one underlying): the trades on the
    simulation grid, the scenarios' step coefficients and fd plan, the slots and bumps, and
    ``totals`` (a ``kernel_inputs.Totals``, or (estimator, weights, base) arrays; None: no
    per-path totals).  Returns (args, n_slots).

    ``params``: one Heston underlying's parameters, or a simulation group's members' (a list,
    each with its ``model``, "heston" or "gbm"), with their name keys ``names``
    (``rng.name_key``), the lower Cholesky factor ``mix`` of their correlation matrix and
    ``legs`` (``kernel_inputs.Legs``: the multi-asset trades'; None when there are none).
    ``policy``: (``kernel_inputs.Book.policy``, ``Book.policy_of``) of its exercisable trades
    (None: none).
    Single-asset trades on a GBM member are GBM's, with fd sizes ``gbm_bumps``
    (``estimators.fd.GBM_BUMPS`` by default) and no pilot fit (no optimal blend, no baseline).
    Raises ValueError as ``run_heston`` does."""
    members = [dict(params, model="heston")] if isinstance(params, dict) else list(params)
    n = len(members)
    if scheme not in H.SCHEMES:
        raise ValueError(f"scheme has value {scheme!r}: must be one of " + ", ".join(H.SCHEMES))
    spy = DEFAULT_STEPS_PER_YEAR if steps_per_year is None else steps_per_year
    slots = np.ascontiguousarray(slots, dtype=np.int64)
    ti = np.ascontiguousarray(ti, dtype=np.int64)
    if slots.ndim != 3 or slots.shape[1] < G.N_QUANTITIES or slots.shape[2] != G.N_ESTIMATORS \
            or slots.shape[0] != ti.shape[0]:
        raise ValueError(f"slots has shape {slots.shape}: must be (n_trades, {G.N_QUANTITIES}, "
                         f"{G.N_ESTIMATORS})")
    if slots.max(initial=-1) < 0:
        raise ValueError("slots: no estimate is wanted")
    payoff_grid = np.asarray(payoff_grid, dtype=float)
    grid = H.simulation_grid(payoff_grid, spy)
    dates = payoff_grid[np.asarray(fix_idx, dtype=np.int64)]
    fix = np.searchsorted(grid, dates).astype(np.int64)
    if not np.array_equal(grid[np.minimum(fix, grid.size - 1)], dates):
        raise ValueError("a payoff date is missing from the simulation grid")
    dt = np.diff(np.concatenate([[0.0], grid]))
    b = fd.bumps(bumps, fd.HESTON_BUMPS)
    per_member = []
    for a, member in enumerate(members):
        single = (ti[:, P.ASSET] == a) & (ti[:, P.LEG_N] == 0)
        if member["model"] != "heston":
            _check_gbm_slots(slots[single][:, :G.N_QUANTITIES], ti[single])
            per_member.append(None)
            continue
        p = H.check_params(member)
        _check_slots(slots[single][:, :G.N_QUANTITIES], ti[single], p)
        fd_wanted, pathwise, want_lr = _member_wants(a, ti, slots, legs)
        scens, fd_scen, fd_den = _fd_scenarios(p, fd_wanted, b)
        coefs = H.scenario_coefficients(dt, p, scens)
        _, dcoef = H.step_coefficients(dt, drift_rate=p["rate"] - p["div_yield"],
                                       kappa=p["kappa"], vbar=p["vbar"], xi=p["xi"],
                                       corr=p["corr"], derivatives=True)
        # Tangent processes only along the directions a pathwise theta or d_* reads, from the
        # first of them: theta is direction 0 (the grid scale), d_v0 ... d_corr 1-5.
        tangent_quantities = np.nonzero(pathwise[G.THETA:])[0]
        tangents_from = tangent_quantities.min() if tangent_quantities.size else H.N_DIR
        per_member.append((p, scens, coefs, dcoef, fd_scen, fd_den, tangents_from, want_lr))
    n_scen = max(len(m[1]) for m in per_member if m is not None)
    coefs = np.zeros((n, n_scen, grid.size, H.N_COEF))
    scens = np.zeros((n, n_scen, 6))
    dcoefs = np.zeros((n, grid.size, H.N_COEF, H.N_DIR))
    fd_scen = np.full((n, G.N_QUANTITIES, 2), -1, dtype=np.int64)
    fd_den = np.ones((n, G.N_QUANTITIES))
    tangents_from = np.full(n, H.N_DIR, dtype=np.int64)
    want_lr = np.zeros(n, dtype=np.int64)
    column = lambda key: np.array([float(m.get(key) or 0.0) for m in members])  # noqa: E731
    vol, rate, div = column("vol"), column("rate"), column("div_yield")
    for a, member in enumerate(per_member):
        if member is None:
            continue
        _, sc, co, dco, fs, fdd, tfrom, lr = member
        coefs[a, :len(sc)], scens[a, :len(sc)], dcoefs[a] = co, sc, dco
        fd_scen[a], fd_den[a], tangents_from[a], want_lr[a] = fs, fdd, tfrom, lr
    tf = np.ascontiguousarray(tf, dtype=float)
    heston = np.array([m["model"] == "heston" for m in members], dtype=np.int64)
    paths = kernel_inputs.HestonPaths(
        np.int64(H.SCHEMES[scheme]), column("spot"), rate, coefs, scens, dcoefs, tangents_from,
        want_lr, np.int64((fd_scen[:, :, 0] >= 0).any()), fd_scen, fd_den,
        _fd_steps(ti, slots, fix, grid.size, n, legs),
        np.zeros(1, dtype=np.uint64) if names is None else np.asarray(names, dtype=np.uint64),
        heston, np.eye(1) if mix is None else np.ascontiguousarray(mix, dtype=float),
        div, vol)
    plan = kernel_inputs.Plan(slots, np.zeros((len(ti), 0), dtype=np.int64),
                              np.zeros((len(ti), G.N_QUANTITIES, optimal.N_COEFFICIENTS)), b)
    if totals is None:
        totals = kernel_inputs.no_totals(len(ti), slots.shape[1])
    elif not isinstance(totals, kernel_inputs.Totals):
        totals = kernel_inputs.totals(*totals)
    members_ = None
    on_gbm = (ti[:, P.LEG_N] == 0) & (heston[ti[:, P.ASSET]] == 0)
    if on_gbm.any():
        members_ = kernel_inputs.GbmMembers(
            gbm_pricer.needs(slots[:, :G.N_QUANTITIES]),
            np.zeros((len(ti), G.N_QUANTITIES, optimal.N_COEFFICIENTS)),
            fd.bumps(gbm_bumps, fd.GBM_BUMPS))
    if policy is None:
        policy = kernel_inputs.no_policy(fix), np.zeros(1, dtype=np.int64)
    args = (kernel_inputs.Book(grid, ti, tf, fix, *policy), paths, plan, totals, legs, members_,
            paths.mix if n > 1 else None)
    return args, int(slots.max()) + 1


def run_heston(*, key0, key1, stream, n_paths, params, ti, tf, fix_idx, payoff_grid, slots,
               bumps=None, steps_per_year=DEFAULT_STEPS_PER_YEAR, scheme="qe",
               chunk_paths=engine.CHUNK_PATHS, block_paths=1 << 12, first_path=0):
    """Simulate ``n_paths`` Heston paths of one underlying and return (mean, se, count) per slot.

    Args:
      key0, key1, stream: random-number keys (``rng.seed_key(seed)``, ``rng.name_key(name)``,
        ``rng.STREAM_MAIN``); normal draw d of path p is a pure function of them, p and d.
      params: dict with spot, rate, div_yield, v0, kappa, vbar, xi, corr (``models.heston``).
      ti, tf, fix_idx, payoff_grid: the trades, as ``kernel_inputs.trade_arrays`` builds them (the
        payoff dates are ``payoff_grid[fix_idx]``).
      slots: int array (n_trades, 11, greeks.N_ESTIMATORS): slots[j, g, e] = output index of
        quantity g (``greeks.QUANTITIES``, price..d_corr) of trade j by estimator e
        (``greeks.ESTIMATORS``; the price takes any e), or -1.  See ``estimators.validity``; vega
        and optimal are refused.
      bumps: fd bump sizes (``estimators.fd.bumps``): None, a dict, or an array of 4 or 9 sizes.
      steps_per_year: uniform steps per year of the simulation grid (payoff dates are added);
        default ``DEFAULT_STEPS_PER_YEAR`` = 52.
      scheme: "qe" (Andersen's QE with martingale correction) or "euler" (full truncation).
      chunk_paths, block_paths: as ``engine.run``; neither changes a bit of the result.
      first_path: first path number (a multiple of TILE), passed to ``engine.run`` only when
        non-zero (for engines that take it).

    Returns (mean, se, count), arrays indexed by slot: unit (per one option) values.

    Raises ValueError for bad parameters, a slot no Heston estimator provides, or likelihood-ratio
    slots with v0 = 0 or |corr| = 1 (their first step is degenerate).

    Example (2**12 paths of an at-the-money call, price and pathwise delta):
      >>> slots = np.full((1, 11, 6), -1); slots[0, 0, 0] = 0; slots[0, 1, 0] = 1
      >>> ti = np.array([[0, 0, 0, 0, 0, 1]]); tf = np.array([[1.0, 100.0, 1.0, 0.0, 1.0]])
      >>> mean, se, _ = run_heston(key0=1, key1=2, stream=0, n_paths=4096, params=dict(
      ...     spot=100, rate=0.0, v0=0.04, kappa=1.5, vbar=0.04, xi=0.5, corr=-0.7), ti=ti,
      ...     tf=tf, fix_idx=np.array([0]), payoff_grid=np.array([1.0]), slots=slots)
    """
    args, n_slots = prepare(params=params, ti=ti, tf=tf, fix_idx=fix_idx,
                            payoff_grid=payoff_grid, slots=slots, bumps=bumps,
                            steps_per_year=steps_per_year, scheme=scheme)
    extra = {"first_path": first_path} if first_path else {}
    result = engine.run(chunk, args, key0=key0, key1=key1, stream=stream, n_paths=n_paths,
                        n_slots=n_slots, chunk_paths=chunk_paths, block_paths=block_paths,
                        **extra)
    if len(result) == 2:  # engine.run -> (count, moments): mean and SE from engine.estimate
        count, state = result
        mean, se = engine.estimate(count, state, pairs=bool(antithetic(stream)))[:2]
        return mean, se, np.full(n_slots, float(count))
    return result
