"""GBM pricer: exact Brownian paths on the union of the trades' dates, every payoff, every estimator.

For one tile of paths, W is drawn on the underlying's grid (the union of all its trades' dates, one
normal per grid step), then each trade reads W at its own dates and, path by path:
- walks its schedule to get its payoff (``_walk``, ``_value``); fd revalues the same walk with
  bumped parameters on the same W (common random numbers);
- for pathwise and mixed estimators, the tangents of its payoff's underlying quantity u (S_T or
  an average) with respect to S0, σ, r, T (``_tangents``);
- for likelihood-ratio estimators, the scores of the law of W on its own dates (``_scores``);
- for a continuously monitored barrier, the log-Brownian-bridge survival weight of [0, T] and its
  derivatives, which make the barrier exact (no monitoring bias) and its Greeks smooth.
``_estimate`` combines these with the estimator formulas; the engine sums tiles in order.
"""
import math

import numpy as np
from numba import prange

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks._jit import kernel
from mcgreeks.engine import TILE, brownian_tile, paths_tile, write_moments
from mcgreeks.estimators import fd, likelihood_ratio as lr, mixed, optimal, pathwise, vibrato
from mcgreeks.models import gbm

# Per-path quantities kept for a tile, rows of the ``q`` buffer.
(F, SLOPE, U, T_SPOT, T_VOL, T_RATE, T_MAT, SC_SPOT, SC2_SPOT, SC_VOL, SC_RATE, SC_MAT,
 X_SPOT, X_VOL, X_MAT, X_SPOT2, Z_FIRST, Z_LAST, Q_EXCESS) = range(19)
N_Q = 19


@kernel
def _walk(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol, c):
    """Walk a trade's dates on path i with parameters (s0, mu = log drift, vol), dates scaled by c
    (W by √c, as common random numbers give under a maturity bump).

    Returns (u, s_last, knocked): the payoff's underlying quantity (terminal spot, arithmetic or
    geometric average), the spot at the last date, and whether a discretely monitored barrier was
    touched at one of the dates."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    root_c = math.sqrt(c)
    discrete_barrier = kind == P.BARRIER and ti[P.CONTINUOUS] == 0
    log_level = math.log(tf[P.LEVEL] / s0) if discrete_barrier else 0.0
    down = ti[P.DOWN] == 1
    total = 0.0
    knocked = False
    x = 0.0
    for k in range(n):
        g = fix_idx[off + k]
        x = mu * grid[g] * c + vol * w[g, i] * root_c      # log(S_t / S0)
        if kind == P.ASIAN_ARITHMETIC:
            total += math.exp(x)
        elif kind == P.ASIAN_GEOMETRIC:
            total += x
        elif discrete_barrier and (x <= log_level if down else x >= log_level):
            knocked = True
    s_last = s0 * math.exp(x)
    if kind == P.ASIAN_ARITHMETIC:
        return s0 * total / n, s_last, knocked
    if kind == P.ASIAN_GEOMETRIC:
        return s0 * math.exp(total / n), s_last, knocked
    return s_last, s_last, knocked


@kernel
def _value(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol, c):
    """Undiscounted payoff of one unit on path i (see ``_walk`` for the arguments)."""
    u, s_last, knocked = _walk(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol, c)
    f = P.value(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], u)
    if kind != P.BARRIER:
        return f
    if ti[P.CONTINUOUS] == 1:
        alive = gbm.bridge_survival(ti[P.DOWN] == 1, tf[P.LEVEL], s0, s_last,
                                    vol * vol * tf[P.MATURITY] * c)[0]
    else:
        alive = 0.0 if knocked else 1.0
    return f * (1.0 - alive if ti[P.KNOCK_IN] == 1 else alive)


@kernel
def _tangents(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol):
    """(u, ∂u/∂S0, ∂u/∂σ, ∂u/∂r, ∂u/∂T) on path i: the chain rule along the path
    (Glasserman 2004, §7.2.2 for the Asian sums)."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    maturity = tf[P.MATURITY]
    if kind == P.ASIAN_ARITHMETIC:
        s_sum = sw_sum = st_sum = 0.0
        for k in range(n):
            g = fix_idx[off + k]
            s = gbm.spot_at(s0, mu, vol, grid[g], w[g, i])
            s_sum += s
            sw_sum += s * w[g, i]
            st_sum += s * grid[g]
        u = s_sum / n
        return (u, u / s0, (sw_sum - vol * st_sum) / n, st_sum / n,
                (mu * st_sum + 0.5 * vol * sw_sum) / (n * maturity))
    if kind == P.ASIAN_GEOMETRIC:
        w_mean = t_mean = 0.0
        for k in range(n):
            g = fix_idx[off + k]
            w_mean += w[g, i] / n
            t_mean += grid[g] / n
        u = s0 * math.exp(mu * t_mean + vol * w_mean)
        return (u, u / s0, u * (w_mean - vol * t_mean), u * t_mean,
                u * (mu * t_mean + 0.5 * vol * w_mean) / maturity)
    g = fix_idx[off + n - 1]
    t, wt = grid[g], w[g, i]
    s = gbm.spot_at(s0, mu, vol, t, wt)
    return (s, gbm.tangent_spot(s, s0), gbm.tangent_vol(s, vol, t, wt), gbm.tangent_rate(s, t),
            gbm.tangent_maturity(s, mu, vol, t, wt, maturity))


@kernel
def _scores(ti, tf, fix_idx, grid, w, i, s0, mu, vol):
    """Scores of the law of W on the trade's own dates: (∂S0, ∂²S0 weight, ∂σ, ∂r, ∂T), then
    the standardized z_1, z_n and Σ z_k² - n the likelihood-ratio baseline is built from."""
    off, n = ti[P.FIX_OFF], ti[P.FIX_N]
    t_prev = w_prev = q = 0.0
    for k in range(n):
        g = fix_idx[off + k]
        dw = w[g, i] - w_prev
        q += dw * dw / (grid[g] - t_prev)
        t_prev, w_prev = grid[g], w[g, i]
    g1 = fix_idx[off]
    t1, w1 = grid[g1], w[g1, i]
    return (gbm.score_spot(s0, vol, t1, w1), gbm.score2_spot(s0, vol, t1, w1),
            gbm.score_vol(vol, n, q, w_prev), gbm.score_rate(vol, w_prev),
            gbm.score_maturity(mu, vol, tf[P.MATURITY], n, q, w_prev),
            w1 / math.sqrt(t1), w_prev / math.sqrt(t_prev), q - n)


@kernel
def _fill(kind, ti, tf, fix_idx, grid, w, m, s0, mu, vol, need_tangents, need_scores, q):
    """Per-path quantities of one trade (as payoff ``kind``) over a tile into the rows of ``q``."""
    continuous_barrier = kind == P.BARRIER and ti[P.CONTINUOUS] == 1
    for i in range(m):
        q[F, i] = _value(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol, 1.0)
        q[X_SPOT, i] = q[X_VOL, i] = q[X_MAT, i] = q[X_SPOT2, i] = 0.0
        if need_tangents:
            u, q[T_SPOT, i], q[T_VOL, i], q[T_RATE, i], q[T_MAT, i] = _tangents(
                kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol)
            q[U, i] = u
            q[SLOPE, i] = P.slope(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], u)
        if need_scores:
            (q[SC_SPOT, i], q[SC2_SPOT, i], q[SC_VOL, i], q[SC_RATE, i], q[SC_MAT, i],
             q[Z_FIRST, i], q[Z_LAST, i], q[Q_EXCESS, i]) = _scores(ti, tf, fix_idx, grid, w, i,
                                                                   s0, mu, vol)
        if continuous_barrier:
            # f = vanilla(S_T) × weight(S0, S_T, σ²T): the weight's own derivatives enter as
            # explicit terms, and its S_T-derivative joins the slope.
            s_t = _walk(kind, ti, tf, fix_idx, grid, w, i, s0, mu, vol, 1.0)[1]
            vanilla = P.value(kind, tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH], s_t)
            var = vol * vol * tf[P.MATURITY]
            p, p_s1, p_s0, p_var, p_s0s0, p_s0s1 = gbm.bridge_survival(
                ti[P.DOWN] == 1, tf[P.LEVEL], s0, s_t, var)
            sign = 1.0
            if ti[P.KNOCK_IN] == 1:
                p, sign = 1.0 - p, -1.0
            q[X_SPOT, i] = sign * vanilla * p_s0
            q[X_VOL, i] = sign * vanilla * p_var * 2.0 * var / vol
            q[X_MAT, i] = sign * vanilla * p_var * var / tf[P.MATURITY]
            q[X_SPOT2, i] = sign * vanilla * p_s0s0
            if need_tangents:
                q[SLOPE, i] = q[SLOPE, i] * p + sign * vanilla * p_s1


@kernel
def _revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol, c):
    """Discounted payoff of path i under moved parameters (same W): the fd revaluation."""
    return math.exp(-rate * tf[P.MATURITY] * c) * _value(
        kind, ti, tf, fix_idx, grid, w, i, s0, gbm.log_drift(rate, div, vol), vol, c)


@kernel
def _fd(g, kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol, base, bumps):
    """Central bump-and-revalue of quantity g on path i; ``base`` is the unbumped discounted value."""
    if g == G.DELTA or g == G.GAMMA:
        h = bumps[0] * s0
        up = _revalue(kind, ti, tf, fix_idx, grid, w, i, s0 + h, rate, div, vol, 1.0)
        dn = _revalue(kind, ti, tf, fix_idx, grid, w, i, s0 - h, rate, div, vol, 1.0)
        return fd.central(up, dn, h) if g == G.DELTA else fd.second(up, base, dn, h)
    if g == G.VEGA:
        h = bumps[1] * vol
        return fd.central(_revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol + h, 1.0),
                          _revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol - h, 1.0), h)
    if g == G.RHO:
        h = bumps[2]
        return fd.central(_revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate + h, div, vol, 1.0),
                          _revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate - h, div, vol, 1.0), h)
    h = bumps[3]  # theta = -∂V/∂T, dates and W scaled by 1 ± h
    return -fd.central(_revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol, 1.0 + h),
                       _revalue(kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol, 1.0 - h),
                       h * tf[P.MATURITY])


@kernel
def _derivative_parts(g, q, i, maturity, rate, disc):
    """(tangent, score, explicit payoff derivative, ∂D/∂θ) of first-order quantity g on path i;
    theta's are those of ∂/∂T (its sign is applied by the callers)."""
    if g == G.DELTA:
        return q[T_SPOT, i], q[SC_SPOT, i], q[X_SPOT, i], 0.0
    if g == G.VEGA:
        return q[T_VOL, i], q[SC_VOL, i], q[X_VOL, i], 0.0
    if g == G.RHO:
        return q[T_RATE, i], q[SC_RATE, i], 0.0, -maturity * disc
    return q[T_MAT, i], q[SC_MAT, i], q[X_MAT, i], -rate * disc


@kernel
def _direct(g, q, i, s0, rate, maturity, disc):
    """One path's pathwise estimate of first-order quantity g, or its mixed gamma."""
    if g == G.GAMMA:
        return mixed.gamma(disc, q[SLOPE, i], q[T_SPOT, i], -q[U, i] / (s0 * s0), q[SC_SPOT, i])
    tangent, _, explicit, ddisc = _derivative_parts(g, q, i, maturity, rate, disc)
    d = pathwise.first_order(disc, ddisc, q[F, i], q[SLOPE, i], tangent, explicit)
    return -d if g == G.THETA else d


@kernel
def _likelihood(g, q, i, rate, maturity, disc):
    """One path's likelihood-ratio estimate of quantity g."""
    f = q[F, i]
    if g == G.GAMMA:
        return lr.second_order(disc, f, q[SC2_SPOT, i], q[SC_SPOT, i], q[X_SPOT, i],
                               q[X_SPOT2, i])
    _, score, explicit, ddisc = _derivative_parts(g, q, i, maturity, rate, disc)
    d = lr.first_order(disc, ddisc, f, score, explicit)
    return -d if g == G.THETA else d


@kernel
def _estimate(g, e, q, i, s0, rate, maturity, disc, coef, baseline):
    """One path's estimate of quantity g by estimator e (not fd) from the tile quantities q.
    Likelihood ratio and optimal take ``coef`` = (w, c) (``estimators.optimal``), the baseline's
    controls only when ``baseline`` (a control twin goes without)."""
    if g == G.PRICE:
        return disc * q[F, i]
    if e == G.PATHWISE or e == G.MIXED:
        return _direct(g, q, i, s0, rate, maturity, disc)
    direct = _direct(g, q, i, s0, rate, maturity, disc) if e == G.OPTIMAL else 0.0
    likelihood = _likelihood(g, q, i, rate, maturity, disc)
    if not baseline:
        return optimal.blend(coef, direct, likelihood, 0.0, 0.0, 0.0, 0.0, 0.0)
    c1, c2, c3, c4, c5 = optimal.controls(q[Z_FIRST, i], q[Z_LAST, i], q[Q_EXCESS, i])
    return optimal.blend(coef, direct, likelihood, c1, c2, c3, c4, c5)


@kernel
def _vibrato(g, kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol):
    """One path's vibrato estimate of quantity g of a one-date payoff (a digital).  Its only
    step, (0, T], is exact under GBM: ln S_T = ln S0 + μT + σ√T Z, so the last step's mean and
    sd are μ_T = ln S0 + (r - q - σ²/2)T and s = σ√T, whose parameter derivatives chain with the
    Gaussian ratios of ``estimators.vibrato``."""
    maturity = tf[P.MATURITY]
    t = grid[fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1]]
    mu = gbm.log_drift(rate, div, vol)
    sd = vol * math.sqrt(t)
    z = w[fix_idx[ti[P.FIX_OFF] + ti[P.FIX_N] - 1], i] / math.sqrt(t)
    omega, strike, cash = tf[P.OMEGA], tf[P.STRIKE], tf[P.CASH]
    centre = s0 * math.exp(mu * t)
    f_up = P.value(kind, omega, strike, cash, centre * math.exp(sd * z))
    f_down = P.value(kind, omega, strike, cash, centre * math.exp(-sd * z))
    f_mid = P.value(kind, omega, strike, cash, centre)
    disc = math.exp(-rate * maturity)
    by_mean = vibrato.d_mean(f_up, f_down, z, sd)
    by_sd = vibrato.d_sd(f_up, f_down, f_mid, z, sd)
    price = 0.5 * (f_up + f_down)
    if g == G.DELTA:
        return disc * by_mean / s0
    if g == G.GAMMA:
        return disc * (vibrato.d2_mean(f_up, f_down, f_mid, z, sd) - by_mean) / (s0 * s0)
    if g == G.VEGA:       # ∂μ_T/∂σ = -σT, ∂s/∂σ = √T
        return disc * (-vol * t * by_mean + math.sqrt(t) * by_sd)
    if g == G.RHO:        # ∂μ_T/∂r = T, and the discount's -T
        return disc * (t * by_mean - maturity * price)
    # theta = -∂V/∂T: ∂μ_T/∂T = μ, ∂s/∂T = σ/(2√T), and the discount's -r
    return -disc * (mu * by_mean + 0.5 * vol / math.sqrt(t) * by_sd - rate * price)


@kernel
def _estimates(g, e, kind, ti, tf, fix_idx, grid, w, m, s0, rate, div, vol, q, bumps, coef,
               baseline, x):
    """One path's estimate of (g, e) for each path of the tile into x[:m]."""
    maturity = tf[P.MATURITY]
    disc = math.exp(-rate * maturity)
    if e == G.VIBRATO:
        for i in range(m):
            x[i] = _vibrato(g, kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol)
    elif e == G.FD:
        for i in range(m):
            x[i] = _fd(g, kind, ti, tf, fix_idx, grid, w, i, s0, rate, div, vol,
                       disc * q[F, i], bumps)
    else:
        for i in range(m):
            x[i] = _estimate(g, e, q, i, s0, rate, maturity, disc, coef, baseline)


@kernel
def _trade_tile(ti, tf, fix_idx, grid, w, m, s0, rate, div, vol, slots_j, coef_j, bumps, agg_e,
                agg_w, q, q_x, y, x, agg, out_tile):
    """All wanted estimates of one trade over one tile; with a control (an arithmetic Asian's
    geometric twin on the same path, same estimator), their joint moments.  The estimate of
    quantity g by estimator agg_e[g] is also added, per path, to the underlying's total agg[g]
    as agg_w[g] · (y, -x, 1): the position's quantity, and its control's fixed coefficient.
    coef_j[g] = (w, c) are the blend weight and baseline (``estimators.optimal``)."""
    mu = gbm.log_drift(rate, div, vol)
    need_tangents = need_scores = False
    for g in range(slots_j.shape[0]):
        blended = slots_j[g, G.OPTIMAL] >= 0
        need_tangents |= slots_j[g, G.PATHWISE] >= 0 or slots_j[g, G.MIXED] >= 0 or blended
        need_scores |= slots_j[g, G.LR] >= 0 or slots_j[g, G.MIXED] >= 0 or blended
    kind = ti[P.KIND]
    control = ti[P.CONTROL] == 1
    _fill(kind, ti, tf, fix_idx, grid, w, m, s0, mu, vol, need_tangents, need_scores, q)
    if control:
        _fill(P.ASIAN_GEOMETRIC, ti, tf, fix_idx, grid, w, m, s0, mu, vol, need_tangents,
              need_scores, q_x)
    for g in range(slots_j.shape[0]):
        for e in range(slots_j.shape[1]):
            k = slots_j[g, e]
            if k < 0:
                continue
            _estimates(g, e, kind, ti, tf, fix_idx, grid, w, m, s0, rate, div, vol, q, bumps,
                       coef_j[g], True, y)
            if control:
                _estimates(g, e, P.ASIAN_GEOMETRIC, ti, tf, fix_idx, grid, w, m, s0, rate, div,
                           vol, q_x, bumps, coef_j[g], False, x)
            write_moments(y, x, m, control, out_tile[k])
            if agg_e[g] == e:
                for i in range(m):
                    agg[g, i] += agg_w[g, 0] * y[i] + agg_w[g, 2]
                if control:
                    for i in range(m):
                        agg[g, i] -= agg_w[g, 1] * x[i]


@kernel(parallel=True)
def chunk(key0, key1, stream, path0, n_paths, tiles_per_block, grid, s0, rate, div, vol,
          ti, tf, fix_idx, slots, coef, bumps, agg_e, agg_w, agg_base, sampler_dirs,
          sampler_shifts, per_replicate, steps, weights, out):
    """Simulate paths path0..path0+n_paths-1 (path0 a multiple of TILE) and write each tile's
    moments per slot to out[tile, slot, :] (``engine.write_moments``); with agg_base >= 0, the
    moments of the per-path totals of each quantity to slots agg_base + g.  The sampler
    arguments are those of ``engine.paths_tile`` (empty for Monte Carlo)."""
    n_tiles = (n_paths + TILE - 1) // TILE
    n_blocks = (n_tiles + tiles_per_block - 1) // tiles_per_block
    for b in prange(n_blocks):
        w = np.empty((grid.size, TILE))
        u = np.empty(TILE)
        z = np.empty((grid.size if sampler_dirs.shape[0] else 0, TILE))
        q = np.empty((N_Q, TILE))
        q_x = np.empty((N_Q, TILE))
        y = np.empty(TILE)
        x = np.empty(TILE)
        agg = np.empty((slots.shape[1], TILE))
        for tile in range(b * tiles_per_block, min(n_tiles, (b + 1) * tiles_per_block)):
            first = tile * TILE
            m = min(TILE, n_paths - first)
            paths_tile(key0, key1, stream, path0 + first, m, grid, sampler_dirs, sampler_shifts,
                       per_replicate, steps, weights, u, z, w)
            agg[:, :] = 0.0
            for j in range(ti.shape[0]):
                _trade_tile(ti[j], tf[j], fix_idx, grid, w, m, s0, rate, div, vol, slots[j],
                            coef[j], bumps, agg_e[j], agg_w[j], q, q_x, y, x, agg, out[tile])
            if agg_base >= 0:
                for g in range(agg.shape[0]):
                    write_moments(agg[g], x, m, False, out[tile, agg_base + g])


@kernel
def _components(g, q, q_x, i, s0, rate, maturity, disc, control, v):
    """The pilot's components of quantity g on path i into v (``estimators.optimal``)."""
    v[optimal.DIRECT] = _direct(g, q, i, s0, rate, maturity, disc)
    v[optimal.LIKELIHOOD] = _likelihood(g, q, i, rate, maturity, disc)
    v[optimal.DIRECT_X] = v[optimal.LIKELIHOOD_X] = 0.0
    if control:
        v[optimal.DIRECT_X] = _direct(g, q_x, i, s0, rate, maturity, disc)
        v[optimal.LIKELIHOOD_X] = _likelihood(g, q_x, i, rate, maturity, disc)
    c = optimal.FIRST_CONTROL
    v[c], v[c + 1], v[c + 2], v[c + 3], v[c + 4] = optimal.controls(q[Z_FIRST, i], q[Z_LAST, i],
                                                                    q[Q_EXCESS, i])


@kernel(parallel=True)
def pilot_chunk(key0, key1, stream, n_paths, grid, s0, rate, div, vol, ti, tf, fix_idx, fitted,
                out):
    """Per-tile sums of the components of each fitted (trade j, quantity g) (fitted[j, g] == 1)
    over paths 0..n_paths-1: out[tile, j, g] = (Σv, Σ v_a v_b for a <= b), for
    ``estimators.optimal.covariance`` once summed over tiles in order."""
    n_tiles = (n_paths + TILE - 1) // TILE
    n_c = optimal.N_COMPONENTS
    for tile in prange(n_tiles):
        w = np.empty((grid.size, TILE))
        z = np.empty(TILE)
        q = np.empty((N_Q, TILE))
        q_x = np.empty((N_Q, TILE))
        v = np.empty(n_c)
        first = tile * TILE
        m = min(TILE, n_paths - first)
        brownian_tile(key0, key1, stream, first, m, grid, z, w)
        mu = gbm.log_drift(rate, div, vol)
        for j in range(ti.shape[0]):
            control = ti[j, P.CONTROL] == 1
            _fill(ti[j, P.KIND], ti[j], tf[j], fix_idx, grid, w, m, s0, mu, vol, True, True, q)
            if control:
                _fill(P.ASIAN_GEOMETRIC, ti[j], tf[j], fix_idx, grid, w, m, s0, mu, vol, True,
                      True, q_x)
            maturity = tf[j, P.MATURITY]
            disc = math.exp(-rate * maturity)
            for g in range(fitted.shape[1]):
                if fitted[j, g] == 0:
                    continue
                sums = out[tile, j, g]
                sums[:] = 0.0
                for i in range(m):
                    _components(g, q, q_x, i, s0, rate, maturity, disc, control, v)
                    k = n_c
                    for a in range(n_c):
                        sums[a] += v[a]
                        for b in range(a, n_c):
                            sums[k] += v[a] * v[b]
                            k += 1
