"""GBM pricer: exact Brownian paths on the union of the trades' dates, every payoff, every estimator.

For one tile of paths, W is drawn on the underlying's grid (the union of all its trades' dates, one
normal per grid step, or a Sobol point per path), then for each trade, which reads the path as the
view ln S_t = ln S0 + μt + σW_t (``payoffs``):
- one pass over its dates, the tile's paths as the inner loop, gathers the payoff's per-path sums
  (``payoffs.accumulate``: an average and its date-weight moments, an extreme, an arithmetic
  Asian's geometric twin) and the squared increments the scores need (``_score_sums``);
- per path, the payoff, its tangents with respect to S0, σ, r, T (pathwise and mixed estimators:
  ``models.gbm.tangents`` of the date-weight moments) and the scores of the law of W on the
  trade's own dates (likelihood ratio) follow from those sums (``_fill``); a continuously
  monitored barrier takes the Brownian-bridge survival weight of [0, T] and its derivatives,
  which make it exact (no monitoring bias) and its Greeks smooth;
- fd revalues the tile's payoffs by a second pass over the dates with bumped parameters on the
  same W (common random numbers: ``_moved_values``); vibrato uses the first step's Gaussian law
  (``_vibrato``).
``estimators.combine`` turns these rows into each estimator's estimate; the engine sums tiles
in order.
"""
import math

import numpy as np

from mcgreeks import engine
from mcgreeks import exercise_policy as XP
from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks import elementary, vecmath
from mcgreeks._jit import borrow, keep, kernel, wait_for_background
from mcgreeks.engine import TILE, add_to_total, brownian_tile, sobol_tile, write_moments
from mcgreeks.estimators import combine as C
from mcgreeks.estimators import fd, optimal, vibrato
from mcgreeks.models import gbm
from mcgreeks.rng import antithetic
from mcgreeks.pricers import gbm_multi

# Per-path quantities kept for a tile: the rows of ``estimators.combine``.
F, U, SLOPE = C.F, C.U, C.SLOPE
N_Q = C.N_ROWS


# Which scores a tile needs: none; the spot's alone (mixed gamma: the first step's); or all,
# which take the sum of squared increments over every date (likelihood ratio, optimal's blend,
# the baseline's controls).
SCORES_NONE, SCORES_SPOT, SCORES_ALL = range(3)

#: Row of the tile buffer ``acc`` (after the payoff's own, ``payoffs.accumulate``) holding
#: Σ(ΔW)²/Δt over the trade's dates, which the scores of σ and T read.
Q_SUM = P.N_ACC
N_ACC = P.N_ACC + 1


@kernel(inline=True)
def _score_sums(ti, fix_idx, grid, w, m, acc):
    """Σ(ΔW)²/Δt over the trade's dates per path into acc[Q_SUM] (tile-inner, vectorizes)."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    acc[Q_SUM, :m] = 0.0
    t_prev, g_prev = 0.0, -1
    for k in range(n):
        g = fix_idx[off + k]
        t = grid[g]
        inv_dt = 1.0 / (t - t_prev)
        if g_prev < 0:
            for i in range(m):
                acc[Q_SUM, i] += w[g, i] * w[g, i] * inv_dt
        else:
            for i in range(m):
                dw = w[g, i] - w[g_prev, i]
                acc[Q_SUM, i] += dw * dw * inv_dt
        t_prev, g_prev = t, g


@kernel(inline=True)
def _payoff_alone(kind, ti, need_tangents, scores):
    """Whether ``_fill`` needs only the payoff of a one-date trade (its price and fd slots),
    which it reads off the last date without ``payoffs.accumulate``'s sums."""
    return P.is_one_date(kind) and not need_tangents and \
        scores == SCORES_NONE and ti[P.EXERCISE] == 0


@kernel
def _fill_tile(kind, ti, tf, fix_idx, grid, w, m, s0, log_s0, mu, vol, t_mean, need_tangents,
               scores, acc, q):
    """``_fill`` of a payoff of ``payoffs.has_tile_quantity`` that is not exercisable and needs
    no vibrato rows: the same expressions (so the same bits; no explicit terms, which are zero)
    in loops without calls or per-path branches on the trade, so that they vectorize.  In
    ``_fill``'s general loop, which holds every payoff's code, they cost a European 25 ns a path
    and a geometric average a scalar exp (measured).  Σω, Σω t and Σω X wait in the pathwise
    rows that the tangents then overwrite.  Called once a tile, not inlined: inlined into ``_fill``
    it cost the GBM kernels' first compile 4.5 s (a European's first call 40.5 s against 35.3
    called, the same speed)."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    g_first, g_last = fix_idx[off], fix_idx[off + n - 1]
    t1, t_n = grid[g_first], grid[g_last]
    omega, strike, cash, maturity = tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], tf[P.MATURITY]
    u, sw, swt, swx = q[U], q[C.D + G.DELTA], q[C.D + G.RHO], q[C.D + G.VEGA]
    P.tile_quantity(kind, ti, fix_idx, grid, w, acc, m, log_s0, mu, vol, t_mean, u, sw, swt,
                    swx)
    zero = 0.0
    for i in range(m):
        q[F, i] = P.value(kind, omega, strike, cash, u[i])     # = cash_flow for these kinds
        q[C.X + G.DELTA, i] = q[C.X + G.VEGA, i] = q[C.X + G.THETA, i] = zero
        q[C.X + G.RHO, i] = q[C.X2, i] = zero
    if need_tangents:
        for i in range(m):
            slope = P.slope(kind, omega, strike, cash, u[i]) * 1.0    # discrete_survival = 1
            q[SLOPE, i] = slope
            t_spot, t_vol, t_rate, t_mat = gbm.tangents(s0, mu, vol, maturity, sw[i], swt[i],
                                                        swx[i])
            q[C.D + G.DELTA, i] = slope * t_spot + zero
            q[C.D + G.VEGA, i] = slope * t_vol + zero
            q[C.D + G.RHO, i] = slope * t_rate + zero
            q[C.D + G.THETA, i] = slope * t_mat + zero
    if scores != SCORES_NONE:
        for i in range(m):
            w1 = w[g_first, i]
            q[C.SC + G.DELTA, i] = gbm.score_spot(s0, vol, t1, w1)
            q[C.SC2, i] = gbm.score2_spot(s0, vol, t1, w1)
            q[C.Z_FIRST, i] = w1 / math.sqrt(t1)
    if scores == SCORES_ALL:
        for i in range(m):
            w_n, q_sum = w[g_last, i], acc[Q_SUM, i]
            q[C.SC + G.VEGA, i] = gbm.score_vol(vol, n, q_sum, w_n)
            q[C.SC + G.RHO, i] = gbm.score_rate(vol, w_n)
            q[C.SC + G.THETA, i] = gbm.score_maturity(mu, vol, maturity, n, q_sum, w_n)
            q[C.Z_LAST, i] = w_n / math.sqrt(t_n)
            q[C.Q_EXCESS, i] = q_sum - n


@kernel(inline=True)
def _fill(kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate, mu, vol, need_tangents, scores,
          need_vibrato, acc, q):
    """Per-path quantities of one trade (as payoff ``kind``) over a tile into the rows of ``q``
    (``estimators.combine``), from the sums ``acc`` of ``payoffs.accumulate`` and
    ``_score_sums``: the payoff, its underlying quantity u and slope, the pathwise derivatives
    (``models.gbm.tangents`` of the payoff's date-weight moments: the chain rule along the path;
    Glasserman 2004, §7.2.2), the scores of the law of W on the trade's own dates, for a
    continuously monitored barrier the bridge weight's explicit derivatives, and with
    ``need_vibrato`` (a payoff that jumps) the vibrato estimates (``_vibrato``).

    An exercisable option reads its path at the date τ where the fixed ``policy`` stops it
    (``exercise_policy.stop``), and its cash flow h(S_τ) is carried to the maturity,
    f = h(S_τ) e^{r(T - τ)}, so that the maturity's discount gives e^{-rτ} h(S_τ).  τ is a
    locally constant function of the path, so the tangents are those of a one-date payoff at τ,
    and the carry's own derivatives enter as explicit terms: (T - τ) f in r, r (T - τ)/T f in T
    (τ scales with T)."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    maturity = tf[P.MATURITY]
    omega, strike, cash = tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH]
    g_first, g_last = fix_idx[off], fix_idx[off + n - 1]
    t1, t_n = grid[g_first], grid[g_last]
    log_s0 = elementary.ln(s0)
    down = ti[P.DOWN] == 1
    continuous_barrier = kind == P.BARRIER and ti[P.CONTINUOUS] == 1
    stopped = ti[P.EXERCISE] == 1
    if _payoff_alone(kind, ti, need_tangents, scores):
        # a loop simple enough to vectorize
        for i in range(m):
            q[F, i] = P.value(kind, omega, strike, cash,
                              vecmath.exp(log_s0 + mu * t_n + vol * w[g_last, i]))
        return
    t_mean = P.mean_date(ti, fix_idx, grid)
    if P.has_tile_quantity(kind) and not stopped and not need_vibrato:
        _fill_tile(kind, ti, tf, fix_idx, grid, w, m, s0, log_s0, mu, vol, t_mean, need_tangents,
                   scores, acc, q)
        return
    log_level = elementary.ln(tf[P.LEVEL])
    for i in range(m):
        w_n = w[g_last, i]
        t_stop = maturity
        if stopped:
            g = XP.stop(ti, tf, policy, fix_idx, grid, w, i, log_s0, mu, vol, None)
            t_stop, w_stop = grid[g], w[g, i]
            u = vecmath.exp(log_s0 + mu * t_stop + vol * w_stop)
            extreme, sw, swt, swx = 0.0, u, u * t_stop, u * w_stop
        else:
            u, extreme, sw, swt, swx = P.quantity(kind, ti, fix_idx, grid, w, acc, i, log_s0,
                                                  mu, vol, t_mean)
        f = P.cash_flow(kind, ti, tf, u, extreme)
        slope = P.slope(kind, omega, strike, cash, u) * P.discrete_survival(ti, tf, extreme)
        x_spot = x_vol = x_mat = x_spot2 = x_rate = 0.0
        if stopped:
            carry = elementary.exp_scalar(rate * (maturity - t_stop))
            f *= carry
            slope *= carry
            x_rate = (maturity - t_stop) * f
            x_mat = rate * x_rate / maturity
        if continuous_barrier:
            # f = vanilla(S_T) × weight(ln S0, ln S_T, σ²T): the weight's own derivatives enter
            # as explicit terms, and its S_T-derivative joins the slope.
            var = vol * vol * maturity
            p, p_y0, p_y1, p_var, p_y0y0 = P.bridge_survival(down, log_level, log_s0,
                                                             elementary.ln(u), var)
            sign = -1.0 if ti[P.KNOCK_IN] == 1 else 1.0
            x_spot = sign * f * p_y0 / s0
            x_vol = sign * f * p_var * 2.0 * var / vol
            x_mat = sign * f * p_var * var / maturity
            x_spot2 = sign * f * (p_y0y0 - p_y0) / (s0 * s0)
            slope = slope * P.knock_weight(ti, p) + sign * f * p_y1 / u
            f *= P.knock_weight(ti, p)
        q[F, i] = f
        q[C.X + G.DELTA, i], q[C.X + G.VEGA, i], q[C.X + G.THETA, i] = x_spot, x_vol, x_mat
        q[C.X + G.RHO, i], q[C.X2, i] = x_rate, x_spot2
        if need_tangents:
            q[U, i], q[SLOPE, i] = u, slope
            t_spot, t_vol, t_rate, t_mat = gbm.tangents(s0, mu, vol, maturity, sw, swt, swx)
            q[C.D + G.DELTA, i] = slope * t_spot + x_spot
            q[C.D + G.VEGA, i] = slope * t_vol + x_vol
            q[C.D + G.RHO, i] = slope * t_rate + x_rate
            q[C.D + G.THETA, i] = slope * t_mat + x_mat
        if scores != SCORES_NONE:
            w1 = w[g_first, i]
            q[C.SC + G.DELTA, i] = gbm.score_spot(s0, vol, t1, w1)
            q[C.SC2, i] = gbm.score2_spot(s0, vol, t1, w1)
            q[C.Z_FIRST, i] = w1 / math.sqrt(t1)
        if scores == SCORES_ALL:
            q_sum = acc[Q_SUM, i]
            q[C.SC + G.VEGA, i] = gbm.score_vol(vol, n, q_sum, w_n)
            q[C.SC + G.RHO, i] = gbm.score_rate(vol, w_n)
            q[C.SC + G.THETA, i] = gbm.score_maturity(mu, vol, maturity, n, q_sum, w_n)
            q[C.Z_LAST, i] = w_n / math.sqrt(t_n)
            q[C.Q_EXCESS, i] = q_sum - n
        if need_vibrato:
            _vibrato(kind, ti, tf, fix_idx, grid, w, i, s0, rate, mu, vol, f, extreme, q)


@kernel(inline=True)
def _fill_trade(ti, tf, fix_idx, policy, grid, w, m, s0, rate, mu, vol, need_tangents, scores,
                need_vibrato, acc, q, q_x):
    """The trade's per-path quantities into q and, when it has a control, its geometric twin's
    (same dates, same path) into q_x: one pass over the dates serves both.  Vibrato's rows only
    for a payoff that jumps (``payoffs.jumps``)."""
    kind = ti[P.KIND]
    control = ti[P.CONTROL] == 1
    # an exercisable trade reads its stopping date alone, a one-date payoff alone its last date
    if ti[P.EXERCISE] == 0 and not _payoff_alone(kind, ti, need_tangents, scores):
        P.accumulate(kind, ti, tf, fix_idx, grid, w, m, elementary.ln(s0), mu, vol, control, acc)
    if scores == SCORES_ALL:
        _score_sums(ti, fix_idx, grid, w, m, acc)
    need_vibrato = need_vibrato and P.jumps(ti)
    # one call site for both sides: each inlined copy costs compile time
    for twin in range(2 if control else 1):
        _fill(P.ASIAN_GEOMETRIC if twin else kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate,
              mu, vol, need_tangents, scores, need_vibrato, acc, q_x if twin else q)


@kernel
def _moved_values(kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate, div, vol, c, acc, out):
    """Discounted payoffs of one unit on the tile's paths under moved parameters into out[:m]:
    the fd revaluations, on the same W (common random numbers), with dates scaled by c and W
    by √c (a maturity bump), the tile's paths as the inner loop.  An exercisable option keeps
    its fixed policy, which stops the moved path where it stops.  acc: ``payoffs.accumulate``'s
    scratch rows."""
    a, b, c_w = elementary.ln(s0), gbm.log_drift(rate, div, vol) * c, vol * math.sqrt(c)
    if ti[P.EXERCISE] == 1:
        for i in range(m):
            g = XP.stop(ti, tf, policy, fix_idx, grid, w, i, a, b, c_w, None)
            out[i] = elementary.exp_scalar(-rate * grid[g] * c) * P.value(
                P.EUROPEAN, tf[P.OMEGA], tf[P.STRIKE], 1.0,
                vecmath.exp(a + b * grid[g] + c_w * w[g, i]))
        return
    disc = elementary.exp_scalar(-rate * P.payment_time(kind, tf) * c)
    g_last = fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1]
    t_n = grid[g_last]
    if P.is_one_date(kind):
        # a loop simple enough to vectorize
        omega, strike, cash = tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH]
        for i in range(m):
            out[i] = disc * P.value(kind, omega, strike, cash,
                                    vecmath.exp(a + b * t_n + c_w * w[g_last, i]))
        return
    P.accumulate(kind, ti, tf, fix_idx, grid, w, m, a, b, c_w, False, acc)
    t_mean = P.mean_date(ti, fix_idx, grid)
    continuous = kind == P.BARRIER and ti[P.CONTINUOUS] == 1
    down, log_level = ti[P.DOWN] == 1, elementary.ln(tf[P.LEVEL])
    # GBM's bridge over [0, T] is exact: one segment, log-variance σ²T
    var = vol * vol * tf[P.MATURITY] * c
    for i in range(m):
        u, extreme, _, _, _ = P.quantity_called(kind, ti, fix_idx, grid, w, acc, i, a, b, c_w,
                                                t_mean)
        f = P.cash_flow(kind, ti, tf, u, extreme)
        if continuous and f != 0.0:
            y_last = a + b * t_n + c_w * w[g_last, i]
            f *= P.knock_weight(ti, P.bridge_survival(down, log_level, a, y_last, var)[0])
        out[i] = disc * f


@kernel
def _fd(g, kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate, div, vol, disc, f, bumps, acc,
        up, out):
    """Central bump-and-revalue of quantity g on the tile's paths into out[:m]; disc · f[i] is
    path i's unbumped discounted value; acc and up are scratch (``_moved_values``)."""
    s_up = s_dn = s0
    v_up = v_dn = vol
    r_up = r_dn = rate
    c_up = c_dn = 1.0
    if g == G.DELTA or g == G.GAMMA:
        h = bumps[0] * s0
        s_up, s_dn = s0 + h, s0 - h
    elif g == G.VEGA:
        h = bumps[1] * vol
        v_up, v_dn = vol + h, vol - h
    elif g == G.RHO:
        h = bumps[2]
        r_up, r_dn = rate + h, rate - h
    else:       # theta = -∂V/∂T, dates and W scaled by 1 ± h
        h = bumps[3]
        c_up, c_dn = 1.0 + h, 1.0 - h
    _moved_values(kind, ti, tf, fix_idx, policy, grid, w, m, s_up, r_up, div, v_up, c_up, acc,
                  up)
    _moved_values(kind, ti, tf, fix_idx, policy, grid, w, m, s_dn, r_dn, div, v_dn, c_dn, acc,
                  out)
    if g == G.GAMMA:
        for i in range(m):
            out[i] = fd.second(up[i], disc * f[i], out[i], h)
    elif g == G.THETA:
        for i in range(m):
            out[i] = -fd.central(up[i], out[i], h * tf[P.MATURITY])
    else:
        for i in range(m):
            out[i] = fd.central(up[i], out[i], h)


@kernel
def _reflected_value(kind, ti, tf, log_s0, mu, vol, t_n, w_n, w1, extreme, k):
    """The payoff of the path whose first increment W(t_1) is replaced by (1 - k) W(t_1) (k = 1:
    zeroed, the centre; k = 2: reflected, the antithetic path): every later W moves by -k W(t_1),
    so every log-price by -kσW(t_1), the extreme of ln S with them.  A digital's or a discrete
    barrier's (payoffs of class JUMP read S_T).  ln S_T is recomputed from the moved W, not
    shifted: at the centre of a one-date payoff it must not depend on W(t_1) even by a rounding
    (S0 e^{μT} can sit on the strike)."""
    s_t = vecmath.exp(log_s0 + mu * t_n + vol * (w_n - k * w1))
    return P.cash_flow(kind, ti, tf, s_t, extreme - k * vol * w1)


@kernel
def _vibrato(kind, ti, tf, fix_idx, grid, w, i, s0, rate, mu, vol, f, extreme, q):
    """Path i's vibrato estimates of every Greek of a digital or a discrete barrier (payoff f,
    extreme of ln S over its dates) into q's rows VB + g (``estimators.combine``: divided by the
    discount).

    S0 enters the path only through the first step of the trade's dates, (0, t_1], which is
    exact under GBM: ln S_{t_1} = ln S0 + μt_1 + s Z with s = σ√t_1, and every later log-price
    moves with it.  So the likelihood ratio is taken over that step's Gaussian, with the
    antithetic path (first increment reflected: every log-price moved by -2sZ) and the centre
    (moved by -sZ) of ``estimators.vibrato``, and the rest of the path is carried along.  For a
    digital (one date) that step is the whole path and is also the last step of Giles' vibrato,
    so the Greeks in σ, r and T follow from the same Gaussian: its mean μ_T = ln S0 + (r - q -
    σ²/2)T and sd σ√T.  A discrete barrier's σ, r, T move every step, where its earlier dates'
    jumps would bias a pathwise part: the validity table offers those by lr only."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    t1, w1 = grid[fix_idx[off]], w[fix_idx[off], i]
    sd = vol * math.sqrt(t1)
    z = w1 / math.sqrt(t1)
    g_last = fix_idx[off + n - 1]
    t_n, w_n = grid[g_last], w[g_last, i]
    log_s0 = elementary.ln(s0)
    f_down = _reflected_value(kind, ti, tf, log_s0, mu, vol, t_n, w_n, w1, extreme, 2.0)
    f_mid = _reflected_value(kind, ti, tf, log_s0, mu, vol, t_n, w_n, w1, extreme, 1.0)
    by_mean = vibrato.d_mean(f, f_down, z, sd)
    by_sd = vibrato.d_sd(f, f_down, f_mid, z, sd)
    price = 0.5 * (f + f_down)
    q[C.VB + G.DELTA, i] = by_mean / s0
    q[C.VB + G.GAMMA, i] = (vibrato.d2_mean(f, f_down, f_mid, z, sd) - by_mean) / (s0 * s0)
    # ∂μ_T/∂σ = -σT, ∂s/∂σ = √T
    q[C.VB + G.VEGA, i] = -vol * t1 * by_mean + math.sqrt(t1) * by_sd
    # ∂μ_T/∂r = T, and the discount's -T
    q[C.VB + G.RHO, i] = t1 * by_mean - P.payment_time(kind, tf) * price
    # ∂/∂T (theta's sign is combine's): ∂μ_T/∂T = μ, ∂s/∂T = σ/(2√T), and the discount's -r
    q[C.VB + G.THETA, i] = mu * by_mean + 0.5 * vol / math.sqrt(t1) * by_sd - rate * price


@kernel(inline=True)
def _estimates(g, e, kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate, div, vol, q, bumps,
               coef, baseline, acc, x):
    """One path's estimate of (g, e) for each path of the tile into x[:m]; acc: scratch (the
    trade's sums, read by then)."""
    pay = P.payment_time(kind, tf)
    disc = elementary.exp_scalar(-rate * pay)
    if e == G.FD:
        _fd(g, kind, ti, tf, fix_idx, policy, grid, w, m, s0, rate, div, vol, disc, q[F], bumps,
            acc[:P.N_ACC], acc[Q_SUM], x)
        return
    C.estimate_tile(g, e, q, m, s0, rate, pay, disc, P.jumps(ti), coef, baseline, x)


def needs(slots):
    """What each trade's wanted estimates read of a path, per trade j: (tangents wanted, scores:
    SCORES_NONE, SCORES_SPOT or SCORES_ALL, vibrato wanted), for ``kernel_inputs.Plan.needs``.
    The price (g = 0) needs none; pathwise, mixed and optimal read tangents; mixed the spot's
    score; lr, optimal and vibrato (whose baseline controls live in the score rows) all scores;
    vibrato and optimal (the direct part of a payoff that jumps) the vibrato rows."""
    greeks = np.asarray(slots)[:, 1:, :] >= 0
    out = np.zeros((len(greeks), 3), dtype=np.int64)
    out[:, 0] = greeks[:, :, [G.PATHWISE, G.MIXED, G.OPTIMAL]].any(axis=(1, 2))
    out[:, 2] = greeks[:, :, [G.VIBRATO, G.OPTIMAL]].any(axis=(1, 2))
    out[:, 1] = np.where(greeks[:, :, [G.LR, G.OPTIMAL, G.VIBRATO]].any(axis=(1, 2)), SCORES_ALL,
                         np.where(greeks[:, :, G.MIXED].any(axis=1), SCORES_SPOT, SCORES_NONE))
    return out


@kernel
def trade_tile(ti_j, tf_j, fix_idx, policy, grid, w_j, m, s0, rate, div, vol, needs_j, slots_j,
               coef_j, bumps, agg_e_j, agg_w_j, agg_t_j, agg, acc, q, q_x, y, x, pairs, out_tile):
    """All wanted estimates of one single-asset trade over one tile, read from its asset's
    Brownian motion w_j at the grid dates with that asset's parameters (s0, rate, div, vol):
    their moments into out_tile[slot] and their per-path totals; with a control (an arithmetic
    Asian's geometric twin on the same path, same estimator), their joint moments.  needs_j,
    slots_j, coef_j: the trade's rows of ``kernel_inputs.Plan``; agg_e_j, agg_w_j, agg_t_j: of
    ``kernel_inputs.Totals``; acc, q, q_x, y, x: scratch; pairs: the moments are of antithetic
    pairs' means (``engine.tile_moments``).  Called, not inlined: numba inlines by
    copying the callee's IR, and copying this one into every kernel that prices a GBM asset cost
    compile time (2.7 of the GBM kernels' 19 CPU s, measured; on 2026-12-07, inlined into this
    pricer's ``_block`` alone: GBM warm-up 81 -> 124 s, for 1.7 ns a path of a European's 7.9
    on one thread)."""
    kind = ti_j[P.KIND]
    control = ti_j[P.CONTROL] == 1
    mu = gbm.log_drift(rate, div, vol)
    _fill_trade(ti_j, tf_j, fix_idx, policy, grid, w_j, m, s0, rate, mu, vol, needs_j[0] == 1,
                needs_j[1], needs_j[2] == 1, acc, q, q_x)
    for g in range(slots_j.shape[0]):
        for e in range(slots_j.shape[1]):
            k = slots_j[g, e]
            if k < 0:
                continue
            for twin in range(2 if control else 1):     # one inlined copy
                _estimates(g, e, P.ASIAN_GEOMETRIC if twin else kind, ti_j, tf_j, fix_idx, policy,
                           grid, w_j, m, s0, rate, div, vol, q_x if twin else q, bumps, coef_j[g],
                           not twin, acc, x if twin else y)
            write_moments(y, x, m, control, pairs, out_tile[k])
            add_to_total(g, e, y, x, m, control, agg_e_j, agg_w_j, agg_t_j, agg)


@kernel(inline=True)
def group_tile(key0, stream, path, m, grid, names, mix, b, w):
    """The simulation group's Brownian motions at the grid dates for paths path..path+m-1 into
    w[asset, k, i]: each member l's own Brownian motion B_l from its own stream (key names[l],
    ``engine.brownian_tile``) into b[l], mixed by the group's Cholesky factor, W_a = Σ_l
    mix[a, l] B_l (Glasserman 2004, §2.3.3).  A group of one is its member's Brownian motion,
    written straight into w (b unused), so an uncorrelated underlying keeps its numbers to the
    bit."""
    n = names.size
    if n == 1:
        brownian_tile(key0, names[0], stream, path, m, grid, w[0])
        return
    for a in range(n):
        brownian_tile(key0, names[a], stream, path, m, grid, b[a])
    for k in range(grid.size):
        vecmath.step_matmul(mix, b, w, k, n, m, True)


@kernel
def _block(keys, path0, n_paths, book, paths, plan, totals, legs, sobol_dirs, first_tile,
           end_tile, out):
    """Tiles first_tile..end_tile-1 of ``chunk`` (one parallel task), with their own scratch.
    Every array is ``borrow``ed: no reference counting in the loops.

    Per tile: the paths of every asset of the group (``group_tile``), then for each trade all
    its wanted estimates, read from its own asset's path with that asset's parameters; with a
    control (an arithmetic Asian's geometric twin on the same path, same estimator), their joint
    moments; a multi-asset trade's are ``gbm_multi.trade_tile``'s.  The estimate of quantity g
    by estimator totals.estimator[j, g] is also added, per path, to its per-path totals
    (``kernel_inputs.Totals``).  The trade's part is written out here rather than inlined from
    a function of its own: numba inlines by copying the callee's IR, and copying this one cost
    2.7 of the GBM kernels' 19 CPU s of compile (measured)."""
    key0, _, stream = keys
    pairs = antithetic(stream)
    grid, ti, tf, fix_idx = borrow(book.grid), borrow(book.ti), borrow(book.tf), \
        borrow(book.fix_idx)
    policies, policy_of = borrow(book.policy), borrow(book.policy_of)
    slots, trade_needs, coef, bumps = borrow(plan.slots), borrow(plan.needs), borrow(plan.coef), \
        borrow(plan.bumps)
    agg_e, agg_w, agg_t = borrow(totals.estimator), borrow(totals.weights), \
        borrow(totals.target)
    totals_wanted = borrow(totals.wanted)
    agg_base = totals.base
    spot, rates, divs, vols = borrow(paths.spot), borrow(paths.rate), borrow(paths.div_yield), \
        borrow(paths.vol)
    names, mix = borrow(paths.names), borrow(paths.mix)
    out = borrow(out)
    n_assets = names.size
    # the model's state, W per asset of the group at the grid dates, and the members' own B
    w_, u_ = np.empty((n_assets, grid.size, TILE)), np.empty(TILE)
    b_ = np.empty((n_assets if n_assets > 1 else 0, grid.size, TILE))
    z_ = np.empty((grid.size if sobol_dirs is not None else 0, TILE))
    acc_, q_, q_x_ = np.empty((N_ACC, TILE)), np.empty((N_Q, TILE)), np.empty((N_Q, TILE))
    y_, x_, agg_ = np.empty(TILE), np.empty(TILE), np.empty((totals_wanted.size, TILE))
    # legs is None for a book without multi-asset trades: numba prunes their branch, which
    # then costs such a book no compile time
    n_legs = legs.asset.shape[1] if legs is not None else 0
    rows_ = np.empty((gbm_multi.N_LEG_ROWS, n_legs, TILE))
    vec_ = np.empty(n_legs)
    w, u, z, acc, b = borrow(w_), borrow(u_), borrow(z_), borrow(acc_), borrow(b_)
    q, q_x, y, x, agg = borrow(q_), borrow(q_x_), borrow(y_), borrow(x_), borrow(agg_)
    rows, vec = borrow(rows_), borrow(vec_)
    for tile in range(first_tile, end_tile):
        first = tile * TILE
        m = min(TILE, n_paths - first)
        # Monte Carlo passes sobol_dirs = None: numba prunes the branch not taken before
        # compiling, so a Monte Carlo book does not compile the Sobol kernels, nor the reverse
        if sobol_dirs is None:
            group_tile(key0, stream, path0 + first, m, grid, names, mix, b, w)
        else:
            sobol_tile(borrow(sobol_dirs), borrow(paths.shifts), paths.per_replicate,
                       path0 + first, m, borrow(paths.steps), borrow(paths.weights), u, z, w[0])
        if agg_base >= 0:
            agg[:, :m] = 0.0
        policy = XP.tile_policy(policies, policy_of, path0 + first)
        for j in range(ti.shape[0]):
            ti_j, tf_j, slots_j, coef_j, agg_e_j, agg_w_j, agg_t_j = (
                ti[j], tf[j], slots[j], coef[j], agg_e[j], agg_w[j], agg_t[j])
            out_tile = out[tile]
            if legs is not None:
                if ti_j[P.LEG_N] > 0:
                    gbm_multi.trade_tile(j, book, legs, paths, plan, totals, w, m, rows, y, x,
                                         vec, agg, pairs, out_tile, policy)
                    continue
            a = ti_j[P.ASSET]
            # the state of the asset the payoff reads, with that asset's parameters
            trade_tile(ti_j, tf_j, fix_idx, policy, grid, w[a], m, spot[a], rates[a], divs[a],
                       vols[a], trade_needs[j], slots_j, coef_j, bumps, agg_e_j, agg_w_j, agg_t_j,
                       agg, acc, q, q_x, y, x, pairs, out_tile)
        if agg_base >= 0:
            for g in range(agg.shape[0]):
                if totals_wanted[g]:
                    write_moments(agg[g], x, m, False, pairs, out[tile, agg_base + g])
                else:       # a quantity no trade here has (vega under Heston, d_* here)
                    out[tile, agg_base + g, :] = 0.0
    keep(w_), keep(u_), keep(z_), keep(acc_), keep(q_), keep(q_x_), keep(b_)
    keep(y_), keep(x_), keep(agg_), keep(rows_), keep(vec_)


def chunk(keys, path0, n_paths, tiles_per_block, book, paths, plan, totals, legs, sobol_dirs,
          out):
    """Simulate paths path0..path0+n_paths-1 (path0 a multiple of TILE) and write each tile's
    moments per slot to out[tile, slot, :] (``engine.write_moments``); with totals.base >= 0, the
    moments of the per-path totals of each quantity to slots totals.base + g.  The arguments are
    the records of ``kernel_inputs`` (``kernel_inputs.gbm`` builds them); ``legs`` the
    ``kernel_inputs.Legs`` of its multi-asset trades, or None when it has none; ``sobol_dirs``
    the Sobol direction numbers, or None for Monte Carlo.  Blocks of ``tiles_per_block`` tiles
    run in parallel (``engine.for_blocks``)."""
    n_tiles = (n_paths + TILE - 1) // TILE
    wait_for_background("gbm")
    engine.for_blocks(_block, n_tiles, engine.block_tiles(tiles_per_block, n_tiles,
                                                          book.grid.size),
                      (keys, path0, n_paths, book, paths, plan, totals, legs, sobol_dirs), (out,))


@kernel
def _components(g, ti, q, q_x, i, s0, rate, disc, pay, control, v):
    """The pilot's components of quantity g on path i into v (``estimators.optimal``)."""
    jumps = P.jumps(ti)
    v[optimal.DIRECT] = C.direct(g, q, i, s0, rate, pay, disc, jumps)
    v[optimal.LIKELIHOOD] = C.likelihood(g, q, i, rate, pay, disc)
    v[optimal.DIRECT_X] = v[optimal.LIKELIHOOD_X] = 0.0
    if control:
        v[optimal.DIRECT_X] = C.direct(g, q_x, i, s0, rate, pay, disc, False)
        v[optimal.LIKELIHOOD_X] = C.likelihood(g, q_x, i, rate, pay, disc)
    c = optimal.FIRST_CONTROL
    v[c], v[c + 1], v[c + 2], v[c + 3], v[c + 4] = optimal.controls(
        q[C.Z_FIRST, i], q[C.Z_LAST, i], q[C.Q_EXCESS, i])


@kernel
def _pilot_block(keys, n_paths, book, paths, fitted, first_tile, end_tile, out):
    """Tiles first_tile..end_tile-1 of ``pilot_chunk`` (one parallel task); arrays borrowed as
    in ``_block``."""
    key0, _, stream = keys
    grid, ti, tf, fix_idx = borrow(book.grid), borrow(book.ti), borrow(book.tf), \
        borrow(book.fix_idx)
    spot, rates, divs, vols = borrow(paths.spot), borrow(paths.rate), borrow(paths.div_yield), \
        borrow(paths.vol)
    names, mix = borrow(paths.names), borrow(paths.mix)
    fitted, out = borrow(fitted), borrow(out)
    policy = XP.tile_policy(borrow(book.policy), borrow(book.policy_of), 0)
    n_c = optimal.N_COMPONENTS
    n_assets = names.size
    w_, acc_ = np.empty((n_assets, grid.size, TILE)), np.empty((N_ACC, TILE))
    b_ = np.empty((n_assets if n_assets > 1 else 0, grid.size, TILE))
    q_, q_x_, v_ = np.empty((N_Q, TILE)), np.empty((N_Q, TILE)), np.empty(n_c)
    w, acc, b = borrow(w_), borrow(acc_), borrow(b_)
    q, q_x, v = borrow(q_), borrow(q_x_), borrow(v_)
    for tile in range(first_tile, end_tile):
        first = tile * TILE
        m = min(TILE, n_paths - first)
        group_tile(key0, stream, first, m, grid, names, mix, b, w)
        for j in range(ti.shape[0]):
            if ti[j, P.LEG_N] > 0:      # multi-asset trades fit nothing on the pilot
                continue
            control = ti[j, P.CONTROL] == 1
            a = ti[j, P.ASSET]
            s0, rate, vol = spot[a], rates[a], vols[a]
            mu = gbm.log_drift(rate, divs[a], vol)
            _fill_trade(ti[j], tf[j], fix_idx, policy, grid, w[a], m, s0, rate, mu, vol,
                        True, SCORES_ALL, True, acc, q, q_x)
            pay = P.payment_time(ti[j, P.KIND], tf[j])
            disc = elementary.exp_scalar(-rate * pay)
            for g in range(fitted.shape[1]):
                if fitted[j, g] == 0:
                    continue
                sums = out[tile, j, g]
                sums[:] = 0.0
                for i in range(m):
                    _components(g, ti[j], q, q_x, i, s0, rate, disc, pay, control, v)
                    k = n_c
                    for c1 in range(n_c):
                        sums[c1] += v[c1]
                        for c2 in range(c1, n_c):
                            sums[k] += v[c1] * v[c2]
                            k += 1
    keep(w_), keep(acc_), keep(q_), keep(q_x_), keep(v_), keep(b_)


#: Tiles per parallel task of the pilot (its 4,096 paths are 32 tiles).
PILOT_TILES_PER_BLOCK = 4


def pilot_chunk(keys, n_paths, book, paths, fitted, out):
    """Per-tile sums of the components of each fitted (trade j, quantity g) (fitted[j, g] == 1)
    over paths 0..n_paths-1: out[tile, j, g] = (Σv, Σ v_a v_b for a <= b), for
    ``estimators.optimal.covariance`` once summed over tiles in order."""
    n_tiles = (n_paths + TILE - 1) // TILE
    wait_for_background("gbm")
    engine.for_blocks(_pilot_block, n_tiles, PILOT_TILES_PER_BLOCK,
                      (keys, n_paths, book, paths, fitted), (out,))
