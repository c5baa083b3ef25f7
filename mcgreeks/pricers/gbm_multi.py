"""GBM trades on several correlated underlyings: basket, best-of, worst-of and spread options,
their price and every sensitivity with its standard error, in the pass that prices them.

A simulation group's Brownian motions are mixed by its Cholesky factor (``pricers.gbm``), so a
multi-asset trade reads its n legs' log-spots at maturity

    ln S_k(T) = ln S0_k + μ_k T + σ_k √T Y_k,    Y ~ N(0, C)

with C the correlation matrix of its own legs.  Everything below is written in the trade's own
law: its factor L (C = L Lᵀ), the independent normals Z = L⁻¹Y behind Y, and the precision
ζ = C⁻¹Y, all read from ``kernel_inputs.Legs``.  Per path, with f the cash flow, u its
underlying quantity (``payoffs.legs_quantity``) and p_k = f'(u) ∂u/∂ln S_k its pathwise
weights, and s_k = ζ_k/(σ_k√T), the score of ln S0_k:

- pathwise (Glasserman 2004, §7.2): delta_k = p_k/S0_k; vega_k = p_k(√T Y_k - σ_k T);
  rho = T Σp_k (and the discount's -T f); theta from ∂ln S_k/∂T = μ_k + σ_k Y_k/(2√T) (and the
  discount's -r f); ∂/∂c_kl = Σ_m p_m σ_m √T (dL Z)_m with dL = ∂L/∂c_kl
  (``correlation.cholesky_derivative``), the reparameterization Y = L(c) Z;
- likelihood ratio, the scores of the multivariate normal law of ln S(T) (Glasserman 2004,
  §7.3): ∂/∂ln S0_k: s_k; ∂/∂σ_k: ζ_k(Y_k/σ_k - √T) - 1/σ_k; ∂/∂r: √T Σ ζ_k/σ_k;
  ∂/∂T: Σ ζ_k (μ_k/(σ_k√T) + Y_k/(2T)) - n/(2T); ∂/∂c_kl: ζ_k ζ_l - (C⁻¹)_kl; second order in
  spot:
  (s_k s_l - (C⁻¹)_kl/(σ_k σ_l T) - δ_kl s_k)/(S0_k S0_l);
- mixed (pathwise then likelihood ratio): ∂²/∂S0_k∂S0_l = (p_l s_k - δ_kl p_k)/(S0_k S0_l),
  symmetrized over (k, l) for a cross-gamma;
- fd: central differences of the revalued payoff on the same normals (common random numbers);
  a correlation bump revalues with the bumped factor, Y' = L(c ± h) Z.
Every estimate is multiplied by the discount e^{-rT} (whose own derivative enters rho and
theta).  Every measure has pathwise (mixed for gammas), lr and fd.

An exercisable trade (``exercise_policy``) is read at the date τ where its fixed policy stops
the path (``_stop``) and discounted from there, e^{-rτ}; τ is locally constant in the path, so
the pathwise formulas above hold with T replaced by τ (with W(τ) for √T Y, and theta's
∂ln S_k(τ)/∂T = (μ_k τ + σ_k W_k(τ)/2)/T as the dates scale with T, and the discount's
-rτ/T f), and mixed gammas take the score of the first exercise date t_1 (S0 enters the law of
the path there: Y = W(t_1)/√t_1 in the formulas).  fd revalues each moved path with the same
policy, which stops it where the moved spots say (``_stopped_fd``).  Likelihood ratio (the
scores of every date) is not built for them yet.

A trade's measures (``measures``) are numbered after ``greeks.N_QUANTITIES`` on the quantity
axis of ``kernel_inputs.Plan.slots``, so the engine's slots, moments and per-path totals serve
them unchanged; the kernel reads them, with their legs, from ``kernel_inputs.Legs.measure``.
"""
import math

from mcgreeks import exercise_policy as XP
from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks import elementary, vecmath
from mcgreeks._jit import kernel
# called, not inlined: one compiled copy each (a tile's moments cost microseconds here)
from mcgreeks.engine import add_to_total_called, store_moments
from mcgreeks.models import gbm

#: Measures of a multi-asset trade, in the order of its quantity axis (after N_QUANTITIES): per
#: leg delta, gamma, vega; per pair of legs (k < l, in leg order) cross-gamma and pair
#: correlation; then rho and theta.
DELTA, GAMMA, VEGA, CROSS_GAMMA, PAIR_CORR, RHO, THETA = range(7)
MEASURE_NAMES = ("delta", "gamma", "vega", "cross_gamma", "d_pair_corr", "rho", "theta")
#: Estimators valid for each measure (the payoffs are Lipschitz: pathwise for first order,
#: mixed for second order; lr and fd for all), the first being auto's choice.
VALID = {DELTA: (G.PATHWISE, G.LR, G.FD), GAMMA: (G.MIXED, G.LR, G.FD),
         VEGA: (G.PATHWISE, G.LR, G.FD), CROSS_GAMMA: (G.MIXED, G.LR, G.FD),
         PAIR_CORR: (G.PATHWISE, G.LR, G.FD), RHO: (G.PATHWISE, G.LR, G.FD),
         THETA: (G.PATHWISE, G.LR, G.FD)}

#: Rows of the per-leg scratch rows[row, leg, path]: weighted spot w_k S_k(T), Y, Z = L⁻¹Y,
#: ζ = C⁻¹Y, pathwise weight p, and the weighted spots of an fd revaluation; for an exercisable
#: trade (``_stop``) the stopping date τ (in rows[STOP, 0]) and W(τ) (in rows[MOVED]); the
#: walk's scratch (``_walk``): the legs' weighted spots at one date, at each path's stopping
#: date, their W at one date and its re-mixing, the stopping date's grid index (rows[ENDS, 0]).
LEG, Y, Z, ZETA, PW, MOVED, STOP, WALK, AT, WB, WM, ENDS = range(12)
N_LEG_ROWS = 12


def pairs(n):
    """The (k, l), k < l, pairs of n legs in measure order."""
    return [(k, l) for k in range(n) for l in range(k + 1, n)]


def measures(n):
    """(measure code, k, l) of a trade with n legs, in quantity order (k, l: legs, -1 unused)."""
    out = [(code, k, -1) for code in (DELTA, GAMMA, VEGA) for k in range(n)]
    out += [(code, k, l) for code in (CROSS_GAMMA, PAIR_CORR) for k, l in pairs(n)]
    return out + [(RHO, -1, -1), (THETA, -1, -1)]


@kernel
def _move(j, ti_j, tf_j, legs, paths, bumps, rows, m, code, k, l, side_k, side_l):
    """The legs' weighted spots w_q S_q(T) of the tile's paths with one parameter moved by
    side_k (+1, -1) fd steps (``estimators.fd``; the same normals) into rows[MOVED]: the spot
    of leg k (and of leg l by side_l: a cross-gamma's corner), the volatility of leg k, every
    leg's rate, the maturity (dates scale by c, W by √c), or pair (k, l)'s correlation
    (Y' = L(c ± h) Z with the bumped factor ``Legs.bumped``).  Each multiplies a leg's value by
    a factor and the exponential of a move of its log: the moves go to rows[MOVED] first, and
    one loop applies them.  Returns the moved discount factor."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    root_t = math.sqrt(t)
    rate = paths.rate[legs.asset[j, 0]]
    disc = elementary.exp_scalar(-rate * t)
    c = 1.0 + side_k * bumps[3]       # the maturity's scale (theta)
    for q in range(n):
        a = legs.asset[j, q]
        vol = paths.vol[a]
        drift, diffusion = 0.0, 0.0   # the log's move: drift + diffusion · Y_q
        if code == RHO:
            drift = side_k * bumps[2] * t
        elif code == VEGA and q == k:
            # ln S = ln S0 + (r - q - σ²/2)T + σ√T Y: σ moves in the drift and the diffusion
            moved_vol = vol * (1.0 + side_k * bumps[1])
            drift = -0.5 * (moved_vol * moved_vol - vol * vol) * t
            diffusion = (moved_vol - vol) * root_t
        elif code == THETA:
            drift = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol) * t * (c - 1.0)
            diffusion = vol * root_t * (math.sqrt(c) - 1.0)
        for i in range(m):
            rows[MOVED, q, i] = drift + diffusion * rows[Y, q, i]
        if code == PAIR_CORR:
            factor = legs.bumped[j, _pair_index(k, l, n), 0 if side_k > 0 else 1]
            for i in range(m):
                y = 0.0
                for s in range(q + 1):
                    y += factor[q, s] * rows[Z, s, i]
                rows[MOVED, q, i] = vol * root_t * (y - rows[Y, q, i])
        scale = 1.0
        if (code == DELTA or code == GAMMA or code == CROSS_GAMMA) and q == k:
            scale = 1.0 + side_k * bumps[0]
        elif code == CROSS_GAMMA and q == l:
            scale = 1.0 + side_l * bumps[0]
        for i in range(m):
            rows[MOVED, q, i] = scale * rows[LEG, q, i] * vecmath.exp(rows[MOVED, q, i])
    if code == RHO:
        disc = elementary.exp_scalar(-(rate + side_k * bumps[2]) * t)
    elif code == THETA:
        disc = elementary.exp_scalar(-rate * t * c)
    return disc


@kernel
def _pair_index(k, l, n):
    """Position of pair (k, l), k < l, in ``pairs``' order of n legs."""
    return k * n - k * (k + 1) // 2 + (l - k - 1)


@kernel
def _fd_corner(code, c, bumps, spot_k, spot_l, vol_k, maturity, width):
    """Corner c of measure code's central difference: (side of leg k, side of leg l, weight):
    V(+) and V(-) over 2h, the second difference (V(+) - 2V + V(-))/h² for gamma (the middle
    corner is the unmoved value: side 0), the four corners of a cross-gamma over 4 h_k h_l;
    theta's sign is -∂/∂T, and a pair correlation divides by its (possibly clipped) width."""
    if code == CROSS_GAMMA:
        sk = 1.0 if c < 2 else -1.0
        sl = 1.0 if c % 2 == 0 else -1.0
        return sk, sl, sk * sl / (4.0 * bumps[0] * spot_k * bumps[0] * spot_l)
    if code == GAMMA:
        h = bumps[0] * spot_k
        side = 1.0 - c
        return side, 0.0, (-2.0 if c == 1 else 1.0) / (h * h)
    side = 1.0 if c == 0 else -1.0
    if code == DELTA:
        h2 = 2.0 * bumps[0] * spot_k
    elif code == VEGA:
        h2 = 2.0 * bumps[1] * vol_k
    elif code == RHO:
        h2 = 2.0 * bumps[2]
    elif code == THETA:
        h2 = -2.0 * bumps[3] * maturity
    else:
        h2 = width
    return side, 0.0, side / h2


@kernel
def _estimates(j, ti_j, tf_j, legs, paths, bumps, rows, f, m, code, k, l, e, est, vec):
    """The estimates of measure (code, k, l) by estimator e on the tile's m paths into est[:m]
    (module docstring), discounted.  Every formula but fd's runs with the paths as the inner
    loop over the per-leg rows, so it vectorizes."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    root_t = math.sqrt(t)
    rate = paths.rate[legs.asset[j, 0]]
    disc = elementary.exp_scalar(-rate * t)
    if e == G.FD:
        # central differences of revaluations on the same normals, corner by corner
        a_k, a_l = legs.asset[j, max(k, 0)], legs.asset[j, max(l, 0)]
        width = legs.pair_width[j, _pair_index(k, l, n)] if code == PAIR_CORR else 1.0
        n_corners = 4 if code == CROSS_GAMMA else (3 if code == GAMMA else 2)
        for i in range(m):
            est[i] = 0.0
        for c in range(n_corners):
            side_k, side_l, weight = _fd_corner(code, c, bumps, paths.spot[a_k],
                                                paths.spot[a_l], paths.vol[a_k], t, width)
            if side_k == 0.0:
                for i in range(m):
                    est[i] += weight * disc * f[i]
                continue
            moved_disc = _move(j, ti_j, tf_j, legs, paths, bumps, rows, m, code, k, l, side_k,
                               side_l)
            kind, omega, strike = ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE]
            for i in range(m):
                u = P.legs_quantity(kind, rows[MOVED, :, i], n, vec)
                est[i] += weight * moved_disc * P.value(P.EUROPEAN, omega, strike, 1.0, u)
        return
    if code == RHO or code == THETA:
        # rho: T Σ p_q - T f (pathwise) or f (√T Σ ζ_q/σ_q - T) (lr); theta = -∂/∂T: pathwise
        # -(Σ p_q ∂ln S_q/∂T - r f) with ∂ln S_q/∂T = μ_q + σ_q Y_q/(2√T), lr -f (score_T - r)
        # with score_T = Σ ζ_q (μ_q/(σ_q√T) + Y_q/(2T)) - n/(2T)
        for i in range(m):
            est[i] = -t * f[i] if code == RHO else rate * f[i]
            if code == THETA and e == G.LR:
                est[i] += f[i] * 0.5 * n / t
        for q in range(n):
            a = legs.asset[j, q]
            vol = paths.vol[a]
            mu = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol)
            for i in range(m):
                if code == THETA and e == G.PATHWISE:
                    est[i] -= rows[PW, q, i] * (mu + 0.5 * vol * rows[Y, q, i] / root_t)
                elif code == THETA:
                    est[i] -= f[i] * rows[ZETA, q, i] * (mu / (vol * root_t)
                                                         + 0.5 * rows[Y, q, i] / t)
                elif e == G.PATHWISE:
                    est[i] += rows[PW, q, i] * t
                else:
                    est[i] += f[i] * root_t * rows[ZETA, q, i] / vol
        for i in range(m):
            est[i] *= disc
        return
    a_k = legs.asset[j, k]
    s0_k, vol_k = paths.spot[a_k], paths.vol[a_k]
    # the score of ln S0_k: s_k = ζ_k/(σ_k √T)
    sc_k = 1.0 / (vol_k * root_t)
    if code == DELTA:
        for i in range(m):
            if e == G.PATHWISE:
                est[i] = disc * rows[PW, k, i] / s0_k
            else:
                est[i] = disc * f[i] * rows[ZETA, k, i] * sc_k / s0_k
        return
    if code == VEGA:
        for i in range(m):
            if e == G.PATHWISE:
                est[i] = disc * rows[PW, k, i] * (root_t * rows[Y, k, i] - vol_k * t)
            else:
                est[i] = disc * f[i] * (rows[ZETA, k, i] * (rows[Y, k, i] / vol_k - root_t)
                                        - 1.0 / vol_k)
        return
    if code == GAMMA:
        c = disc / (s0_k * s0_k)
        precision = legs.precision[j, k, k] / (vol_k * vol_k * t)
        for i in range(m):
            score = rows[ZETA, k, i] * sc_k
            if e == G.MIXED:
                est[i] = c * rows[PW, k, i] * (score - 1.0)
            else:
                est[i] = c * f[i] * (score * score - precision - score)
        return
    a_l = legs.asset[j, l]
    s0_l, vol_l = paths.spot[a_l], paths.vol[a_l]
    sc_l = 1.0 / (vol_l * root_t)
    if code == CROSS_GAMMA:
        c = disc / (s0_k * s0_l)
        precision = legs.precision[j, k, l] / (vol_k * vol_l * t)
        for i in range(m):
            score_k, score_l = rows[ZETA, k, i] * sc_k, rows[ZETA, l, i] * sc_l
            if e == G.MIXED:
                est[i] = c * 0.5 * (rows[PW, l, i] * score_k + rows[PW, k, i] * score_l)
            else:
                est[i] = c * f[i] * (score_k * score_l - precision)
        return
    # PAIR_CORR
    if e == G.LR:
        precision = legs.precision[j, k, l]
        for i in range(m):
            est[i] = disc * f[i] * (rows[ZETA, k, i] * rows[ZETA, l, i] - precision)
        return
    # pathwise: Σ_q p_q σ_q √T (dL Z)_q, dL lower triangular
    d_factor = legs.d_factor[j, _pair_index(k, l, n)]
    for i in range(m):
        est[i] = 0.0
    for q in range(n):
        c = disc * paths.vol[legs.asset[j, q]] * root_t
        for s in range(q + 1):
            d = c * d_factor[q, s]
            if d != 0.0:
                for i in range(m):
                    est[i] += d * rows[PW, q, i] * rows[Z, s, i]


@kernel
def _stop(j, ti_j, tf_j, book, legs, paths, bumps, policy, w, m, rows):
    """An exercisable trade's rows on the tile: per path, the date where the fixed ``policy``
    stops it (``_walk``), τ in rows[STOP, 0], the legs' weighted spots there in rows[LEG] and
    their W(τ) in rows[MOVED], and Y = W(t_1)/√t_1 of the first date in rows[Y] (the mixed
    gammas' score)."""
    n = ti_j[P.LEG_N]
    g_1 = book.fix_idx[ti_j[P.FIX_OFF]]
    root_t1 = math.sqrt(book.grid[g_1])
    _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, w, m, rows, -1, -1, -1, 0.0, 0.0,
          rows[LEG])
    for i in range(m):
        g = int(rows[ENDS, 0, i])
        rows[STOP, 0, i] = book.grid[g]
        for k in range(n):
            a = legs.asset[j, k]
            rows[MOVED, k, i] = w[a, g, i]
            rows[Y, k, i] = w[a, g_1, i] / root_t1


@kernel
def _stopped_estimates(j, ti_j, tf_j, legs, paths, rows, f, m, code, k, l, t_1, est):
    """The pathwise (mixed for gammas) estimates of measure (code, k, l) of an exercisable
    trade on the tile into est[:m] (module docstring: T replaced by each path's τ, the scores
    of the first exercise date t_1), discounted from τ."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    rate = paths.rate[legs.asset[j, 0]]
    for i in range(m):
        tau = rows[STOP, 0, i]
        est[i] = 0.0
        if code == RHO:
            est[i] = -tau * f[i]
        elif code == THETA:
            est[i] = rate * tau / t * f[i]
    if code == RHO or code == THETA:
        for q in range(n):
            a = legs.asset[j, q]
            vol = paths.vol[a]
            mu = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol)
            for i in range(m):
                tau = rows[STOP, 0, i]
                if code == RHO:
                    est[i] += rows[PW, q, i] * tau
                else:
                    est[i] -= rows[PW, q, i] * (mu * tau + 0.5 * vol * rows[MOVED, q, i]) / t
    elif code == PAIR_CORR:
        # Σ_q p_q σ_q (dL Z(τ))_q with Z(τ) = L⁻¹ W(τ) in rows[Z]
        d_factor = legs.d_factor[j, _pair_index(k, l, n)]
        for q in range(n):
            c = paths.vol[legs.asset[j, q]]
            for s in range(q + 1):
                d = c * d_factor[q, s]
                if d != 0.0:
                    for i in range(m):
                        est[i] += d * rows[PW, q, i] * rows[Z, s, i]
    else:
        a_k = legs.asset[j, k]
        s0_k, vol_k = paths.spot[a_k], paths.vol[a_k]
        sc_k = 1.0 / (vol_k * math.sqrt(t_1))
        a_l = legs.asset[j, max(l, 0)]
        s0_l, sc_l = paths.spot[a_l], 1.0 / (paths.vol[a_l] * math.sqrt(t_1))
        for i in range(m):
            if code == DELTA:
                est[i] = rows[PW, k, i] / s0_k
            elif code == VEGA:
                est[i] = rows[PW, k, i] * (rows[MOVED, k, i] - vol_k * rows[STOP, 0, i])
            elif code == GAMMA:
                est[i] = rows[PW, k, i] * (rows[ZETA, k, i] * sc_k - 1.0) / (s0_k * s0_k)
            else:       # CROSS_GAMMA
                est[i] = 0.5 * (rows[PW, l, i] * rows[ZETA, k, i] * sc_k
                                + rows[PW, k, i] * rows[ZETA, l, i] * sc_l) / (s0_k * s0_l)
    for i in range(m):
        est[i] *= elementary.exp_scalar(-rate * rows[STOP, 0, i])


@kernel
def _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, w, m, rows, code, k, l, side_k,
          side_l, at_stop):
    """Stop the tile's paths of exercisable trade j by the fixed ``policy`` with one parameter
    moved as in ``_move`` (spot of leg k (and l), volatility of leg k, every rate, the
    maturity's scale c, which scales the dates (W by √c), or pair (k, l)'s correlation: W' =
    L(c ± h) L⁻¹ W at every date; code -1: none): rows[ENDS, 0, i] = the grid index of path
    i's stopping date, at_stop[:, i] = the legs' weighted spots there.  Date by date, every
    path's spots are formed in rows[WALK] (paths inner, so the exponentials vectorize) and the
    paths still alive are offered the policy's exercise; the walk ends once all have stopped."""
    n, n_dates, off = ti_j[P.LEG_N], ti_j[P.FIX_N], ti_j[P.FIX_OFF]
    kind, omega, strike = ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE]
    rate = paths.rate[legs.asset[j, 0]] + (side_k * bumps[2] if code == RHO else 0.0)
    c = 1.0 + side_k * bumps[3] if code == THETA else 1.0
    stop = rows[ENDS, 0]
    for i in range(m):
        stop[i] = -1.0
    alive = m
    for d in range(n_dates):
        g = book.fix_idx[off + d]
        t = book.grid[g] * c
        if code == PAIR_CORR:
            for q in range(n):
                for i in range(m):
                    rows[WB, q, i] = w[legs.asset[j, q], g, i]
            vecmath.tile_matmul(legs.inverse[j], rows[WB], rows[WM], n, m, True)
            vecmath.tile_matmul(legs.bumped[j, _pair_index(k, l, n), 0 if side_k > 0 else 1],
                                rows[WM], rows[WB], n, m, True)
        for q in range(n):
            a = legs.asset[j, q]
            vol = paths.vol[a] * (1.0 + side_k * bumps[1] if code == VEGA and q == k else 1.0)
            mu = gbm.log_drift(rate if code == RHO else paths.rate[a], paths.div_yield[a], vol)
            scale = 1.0
            if (code == DELTA or code == GAMMA or code == CROSS_GAMMA) and q == k:
                scale = 1.0 + side_k * bumps[0]
            elif code == CROSS_GAMMA and q == l:
                scale = 1.0 + side_l * bumps[0]
            level = scale * legs.weight[j, q]
            base = elementary.ln(paths.spot[a]) + mu * t
            factor = vol * math.sqrt(c)
            y = rows[WB, q] if code == PAIR_CORR else w[a, g]
            for i in range(m):
                rows[WALK, q, i] = level * vecmath.exp(base + factor * y[i])
        alive -= XP.stop_legs(policy, off + d, kind, omega, strike, rows[WALK], n, m,
                              d == n_dates - 1, g, stop, at_stop)
        if alive == 0:
            break


@kernel
def _stopped_fd(j, ti_j, tf_j, book, legs, paths, bumps, policy, w, rows, f, m, code, k, l,
                est, vec):
    """fd of measure (code, k, l) of an exercisable trade on the tile into est[:m]: the
    corners of ``_fd_corner``, the moved paths re-stopped by the fixed policy (``_walk``), each
    discounted from its own stopping date (at the moved rate, on the moved dates)."""
    n = ti_j[P.LEG_N]
    a_k, a_l = legs.asset[j, max(k, 0)], legs.asset[j, max(l, 0)]
    width = legs.pair_width[j, _pair_index(k, l, n)] if code == PAIR_CORR else 1.0
    n_corners = 4 if code == CROSS_GAMMA else (3 if code == GAMMA else 2)
    rate = paths.rate[legs.asset[j, 0]]
    kind, omega, strike = ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE]
    for i in range(m):
        est[i] = 0.0
    for c in range(n_corners):
        side_k, side_l, weight = _fd_corner(code, c, bumps, paths.spot[a_k], paths.spot[a_l],
                                            paths.vol[a_k], tf_j[P.MATURITY], width)
        if side_k == 0.0:
            for i in range(m):
                est[i] += weight * elementary.exp_scalar(-rate * rows[STOP, 0, i]) * f[i]
            continue
        _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, w, m, rows, code, k, l, side_k,
              side_l, rows[AT])
        moved_rate = rate + (side_k * bumps[2] if code == RHO else 0.0)
        scale = 1.0 + side_k * bumps[3] if code == THETA else 1.0
        for i in range(m):
            u = P.legs_quantity(kind, rows[AT, :, i], n, vec)
            paid = book.grid[int(rows[ENDS, 0, i])]
            est[i] += weight * elementary.exp_scalar(-moved_rate * paid * scale) \
                * P.value(P.EUROPEAN, omega, strike, 1.0, u)


@kernel
def trade_tile(j, book, legs, paths, plan, totals, w, m, rows, f, est, vec, agg, pairs, out_tile,
               policy):
    """Trade j's (a multi-asset trade's) wanted estimates over one tile: their moments into
    out_tile[slot] (``engine.write_moments``) and the per-path totals (``engine.add_to_total``).

    w[asset, date, path]: the group's mixed Brownian motions on the grid; m: paths in the tile;
    rows (N_LEG_ROWS, n_max, TILE), f and est (TILE,), vec (n_max): scratch; pairs: the moments
    are of antithetic pairs' means (``engine.tile_moments``).  Z = L⁻¹Y and
    ζ = C⁻¹Y are formed only when an estimate reads them.  ``policy``: the tile's exercise
    policy (``exercise_policy.tile_policy``), read by an exercisable trade."""
    ti_j, tf_j = book.ti[j], book.tf[j]
    slots_j = plan.slots[j]
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    root_t = math.sqrt(t)
    g_t = book.fix_idx[ti_j[P.FIX_OFF]]
    need_z = need_zeta = False
    for r in range(slots_j.shape[0] - G.N_QUANTITIES):
        code = legs.measure[j, r, 0]
        for e in range(slots_j.shape[1]):
            if slots_j[G.N_QUANTITIES + r, e] >= 0:
                need_zeta |= e == G.LR or e == G.MIXED
                need_z |= code == PAIR_CORR and (e == G.PATHWISE or e == G.FD)
    stopped = ti_j[P.EXERCISE] == 1
    if stopped:
        _stop(j, ti_j, tf_j, book, legs, paths, plan.bumps, policy, w, m, rows)
    else:
        for k in range(n):
            a = legs.asset[j, k]
            log_s0 = elementary.ln(paths.spot[a])
            drift = gbm.log_drift(paths.rate[a], paths.div_yield[a], paths.vol[a]) * t
            diffusion = paths.vol[a] * root_t
            weight = legs.weight[j, k]
            for i in range(m):
                rows[Y, k, i] = w[a, g_t, i] / root_t
                rows[LEG, k, i] = weight * vecmath.exp(log_s0 + drift
                                                       + diffusion * rows[Y, k, i])
    if need_z:
        vecmath.tile_matmul(legs.inverse[j], rows[MOVED] if stopped else rows[Y], rows[Z], n,
                            m, True)
    if need_zeta:
        vecmath.tile_matmul(legs.precision[j], rows[Y], rows[ZETA], n, m, False)
    P.legs_payoff(ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE], rows[LEG], n, m, vec, f,
                  rows[PW])
    disc = elementary.exp_scalar(-paths.rate[legs.asset[j, 0]] * t)
    for r in range(-1, slots_j.shape[0] - G.N_QUANTITIES):     # r = -1: the price
        g = G.N_QUANTITIES + r if r >= 0 else G.PRICE
        for e in range(slots_j.shape[1]):
            slot = slots_j[g, e]
            if slot < 0:
                continue
            if r < 0:
                for i in range(m):
                    est[i] = disc * f[i] if not stopped else \
                        elementary.exp_scalar(-paths.rate[legs.asset[j, 0]]
                                              * rows[STOP, 0, i]) * f[i]
            elif stopped:
                code, k, l = legs.measure[j, r, 0], legs.measure[j, r, 1], legs.measure[j, r, 2]
                if e == G.FD:
                    _stopped_fd(j, ti_j, tf_j, book, legs, paths, plan.bumps, policy, w, rows, f,
                                m, code, k, l, est, vec)
                else:
                    _stopped_estimates(j, ti_j, tf_j, legs, paths, rows, f, m, code, k, l,
                                       book.grid[g_t], est)
            else:
                code, k, l = legs.measure[j, r, 0], legs.measure[j, r, 1], legs.measure[j, r, 2]
                _estimates(j, ti_j, tf_j, legs, paths, plan.bumps, rows, f, m, code, k, l, e,
                           est, vec)
            store_moments(est, m, pairs, out_tile[slot])
            add_to_total_called(g, e, est, est, m, False, totals.estimator[j],
                                totals.weights[j], totals.target[j], agg)
