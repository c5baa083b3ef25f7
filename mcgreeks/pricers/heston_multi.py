"""Trades on several underlyings of a simulation group with a Heston member: basket, best-of,
worst-of and spread options, their price and sensitivities with standard errors, read from the
group's paths in ``pricers.heston``.

Each leg k reads its asset's log-spot at the trade's maturity T (grid date g_T): a Heston
asset's ln S0_k + x_k(g_T) from its QE (or Euler) path, a GBM member's ln S0_k + μ_k T +
σ_k W_k(T) from its exact Brownian motion on the same grid (``models.heston.member_brownian``),
all driven by the group's correlated spot normals.  Per path, with f the cash flow, u its underlying quantity
(``payoffs.legs_quantity``), p_k = f'(u) ∂u/∂ln S_k its pathwise weights and D = e^{-rT}:

- pathwise (Glasserman 2004, §7.2; the payoffs are Lipschitz): delta_k = D p_k / S0_k;
  rho = D T (Σ p_k - f) (∂ ln S_k / ∂r = T exactly); theta = -(D Σ_k p_k ∂ln S_k/∂T - r D f)
  with ∂ln S_k/∂T = tx_k[scale]/T along the Heston direction of the grid scale (all dates scale
  with T, the normals of each step are kept) or μ_k + σ_k W_k(T)/(2T) for a GBM leg; a Heston
  leg's d_v0, d_kappa, d_vbar, d_xi = D p_k tx_k[parameter] (only leg k's path moves); a GBM
  leg's vega = D p_k (W_k(T) - σ_k T).  tx_k[d], the derivative of ln S_k at the path's end
  along direction d, comes from one reverse sweep of leg k's path (``models.heston.row_adjoint``,
  ``_row_sensitivities``), not from forward tangents: those would be stored at every date of
  every direction (15 MB a tile for 5 names and 252 dates) to be read at one;
- fd with common random numbers, for every measure: central differences of revaluations on the
  same normals.  Spot and rate moves need no new path; the maturity and a Heston leg's
  parameters re-simulate that leg on its own rows (``models.heston.simulate_tile``); a leg's
  spot-variance correlation ρ_k rebuilds its rows from the same spot and own normals at the
  bumped ρ_k (``models.heston.group_rows``), so the bumped group has exactly the bumped law (a
  move of ρ_k alone with the rows kept would leave the covariance of ρ_k's variance with the
  other spots at the old value); a pair's correlation re-mixes the legs' normals with the bumped
  factor, eps' = L(c ± h) L⁻¹ eps step by step (``kernel_inputs.Legs.bumped``), and
  re-simulates each leg whose normals moved.

- likelihood ratio and mixed, from the law of the legs' log-spots given the Heston legs'
  variance paths (Glasserman 2004, §7.3; the Gaussian structure of ``models.heston``): a step's
  spot noises zs of the legs given their variance noises zv are Gaussian, with mean M zv and
  covariance Σ⊥ (``correlation.conditional_law``), independent across steps, so given every
  zv, ln S(T) is Gaussian with residual e_q = Σ_k sig_qk (zs_qk - (M zv_k)_q) and covariance
  Σ_path = Σ⊥ ∘ Σ_k sig_k sig_kᵀ (sig_qk the step's noise sd, ``models.heston.step_sd``; a GBM
  leg's σ√dt with zs = its spot normal).  ln S0 enters only the mean, so its score is
  s = Σ_path⁻¹ e: lr delta_k = D f s_k/S0_k, lr gamma_kl = D f (s_k s_l - (Σ_path⁻¹)_kl -
  δ_kl s_k)/(S0_k S0_l), lr rho = D f T (Σ s - 1); mixed (pathwise then likelihood ratio)
  gamma_kk = D p_k (s_k - 1)/S0_k², cross-gamma D (p_k s_l + p_l s_k)/(2 S0_k S0_l).

- pathwise d_corr and d_pair_corr move the rows as the fd above does: d_corr_k = D p_k
  (tx_k[corr] + Σ_j (a^s_kj (-zv_kj) + a^v_kj zs_kj)/c_k), the coefficients' part tx_k[corr]
  and the rows' from the same reverse sweep per leg (``models.heston.row_adjoint``:
  a^s, a^v = d ln S_k(T)/d zs_kj, d zv_kj), as dzs/dρ = -zv/c and dzv/dρ = zs/c with the
  spot's normal ε held; d_pair_corr of pair p = D Σ_q p_q Σ_j a^ε_qj (dL_p L⁻¹ ε_j)_q with
  a^ε = c_q a^s + ρ_q a^v (a GBM leg's σ_q √dt_j), the derivative of ε = L Z in the pair's
  correlation (``correlation.cholesky_derivative``), so every pair costs one sum over the
  legs' sweeps, not a re-simulation.  An ungrouped underlying's own rows do not depend on ρ:
  its d_corr is tx_k[corr] alone.

A trade's measures (``measures``) are numbered after ``greeks.N_QUANTITIES`` on the quantity
axis of ``kernel_inputs.Plan.slots`` and listed, with their legs, in
``kernel_inputs.Legs.measure``.
"""
import math

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks import exercise_policy as XP
from mcgreeks import elementary, vecmath
from mcgreeks._jit import kernel
from mcgreeks.engine import TILE, add_to_total_called, store_moments
from mcgreeks.estimators import fd
from mcgreeks.models import gbm
from mcgreeks.models import heston as H
from mcgreeks.pricers import gbm_multi

#: Measure codes: gbm_multi's, then a Heston leg's parameters.
DELTA, GAMMA, VEGA, CROSS_GAMMA, PAIR_CORR, RHO, THETA = range(7)
D_V0, D_KAPPA, D_VBAR, D_XI, D_CORR = range(7, 12)
MEASURE_NAMES = gbm_multi.MEASURE_NAMES + ("d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")
#: Estimators valid for each measure of a trade with a Heston leg, the first being auto's choice
#: (where the Feller rule allows pathwise: ``valid``).
VALID = {DELTA: (G.PATHWISE, G.LR, G.FD), GAMMA: (G.MIXED, G.LR, G.FD),
         CROSS_GAMMA: (G.MIXED, G.LR, G.FD), VEGA: (G.PATHWISE, G.FD),
         PAIR_CORR: (G.PATHWISE, G.FD),
         RHO: (G.PATHWISE, G.LR, G.FD), THETA: (G.PATHWISE, G.FD),
         D_V0: (G.PATHWISE, G.FD), D_KAPPA: (G.PATHWISE, G.FD), D_VBAR: (G.PATHWISE, G.FD),
         D_XI: (G.PATHWISE, G.FD), D_CORR: (G.PATHWISE, G.FD)}

#: Rows of the per-leg scratch rows[row, leg, path]: weighted spot w_k S_k(T), pathwise weight
#: p_k, the weighted spots of an fd revaluation; for the scores, a step's noise sd and residual
#: noise, and the score s_k (``_scores``); the rows' part of d ln S_k(T)/d corr_k
#: (``_row_sensitivities``); the grid index of each path's stopping date (an exercisable trade,
#: ``_stop``; its maturity's for the others) in rows[STOP, 0].
LEG, PW, MOVED, SIG, RES, SCORE, ROW_CORR, STOP = range(8)
N_LEG_ROWS = 8


def measures(models):
    """(measure code, k, l) of a trade whose legs have the given models ("gbm", "heston"), in
    quantity order: per leg delta and gamma, each GBM leg's vega, each Heston leg's d_v0 ...
    d_corr, per pair of legs (k < l) cross-gamma and pair correlation, rho and theta.  With GBM
    legs only, ``gbm_multi.measures``."""
    n = len(models)
    if all(m == "gbm" for m in models):
        return gbm_multi.measures(n)
    out = [(code, k, -1) for code in (DELTA, GAMMA) for k in range(n)]
    out += [(VEGA, k, -1) for k in range(n) if models[k] == "gbm"]
    out += [(code, k, -1) for code in (D_V0, D_KAPPA, D_VBAR, D_XI, D_CORR) for k in range(n)
            if models[k] == "heston"]
    out += [(code, k, l) for code in (CROSS_GAMMA, PAIR_CORR) for k, l in gbm_multi.pairs(n)]
    return out + [(RHO, -1, -1), (THETA, -1, -1)]


def valid(params, code):
    """The estimators valid for measure ``code`` of a trade whose legs have market ``params``,
    auto's choice first: ``gbm_multi.VALID`` with GBM legs only, else ``VALID`` less likelihood
    ratio and mixed where a Heston leg makes the legs' conditional law degenerate (v0 = 0: its
    first step has no noise; |corr| = 1: its spot noise is its variance's)."""
    if all(p["model"] == "gbm" for p in params):
        return gbm_multi.VALID[code]
    if any(p["model"] == "heston" and (p["v0"] == 0.0 or abs(p["corr"]) == 1.0)
           for p in params):
        # d_corr's pathwise rows move by (zs, -zv)/sqrt(1 - corr²) too
        dropped = (G.LR, G.MIXED) + ((G.PATHWISE,) if code == D_CORR else ())
        return tuple(e for e in VALID[code] if e not in dropped)
    return VALID[code]


# -- kernels ---------------------------------------------------------------------------------------

@kernel
def _log_move(paths, a, state, t):
    """ln(S(T)/S0) of asset a from its state at T: a Heston asset's log-spot move itself, a GBM
    member's Brownian motion W(T) (its move is (r - q - vol²/2) T + vol W(T))."""
    if paths.heston[a]:
        return state
    vol = paths.vol[a]
    return gbm.log_drift(paths.rate[a], paths.div_yield[a], vol) * t + vol * state


@kernel
def _resimulate(a, s, rows_z, m, paths, xs, vs, tx, tv, gs, cs, state_v, tan_x, tan_v):
    """Asset a's log-spot path re-simulated with its scenario s on the rows rows_z into xs."""
    H.simulate_tile(rows_z, m, paths.scheme, paths.coefs[a, s], paths.scenarios[a, s],
                    paths.dcoef[a], H.N_DIR, False, xs, vs, tx, tv, gs, cs, state_v, tan_x,
                    tan_v)


@kernel
def _move(j, ti_j, tf_j, legs, paths, bumps, grid, g_t, x, eps, own, z, theta_x, m, rows, zr, ep,
          xs, vs, tx, tv, gs, cs, state_v, tan_x, tan_v, code, k, l, side_k, side_l):
    """The legs' weighted spots w_q S_q(T) on the tile's paths with one parameter moved by side_k
    (+1, -1) fd steps into rows[MOVED] (module docstring; the same normals).  Returns (moved
    discount factor, the scale of the dates)."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    rate = paths.rate[legs.asset[j, 0]]
    disc = elementary.exp_scalar(-rate * t)
    c = 1.0 + side_k * bumps[fd.B_MAT]
    n_steps = grid.size
    side = 0 if side_k > 0 else 1
    for q in range(n):
        a = legs.asset[j, q]
        for i in range(m):
            rows[MOVED, q, i] = rows[LEG, q, i]
        resimulated = False
        if code == THETA or (q == k and code >= D_V0) or (code == PAIR_CORR and q >= l):
            if paths.heston[a]:
                if code == THETA:       # re-simulated by ``pricers.heston``'s fd pass
                    for i in range(m):
                        xs[g_t, i] = theta_x[a, side, g_t, i]
                elif code == PAIR_CORR:
                    H.group_rows(ep[q], own[a], paths.scenarios[a, 0, H.SC_CORR],
                                 H.correlation_complement(paths.scenarios[a, 0, H.SC_CORR]),
                                 n_steps, m, zr)
                    _resimulate(a, 0, zr, m, paths, xs, vs, tx, tv, gs, cs, state_v, tan_x,
                                tan_v)
                else:       # D_CORR in a group (the others: ``fd_resimulated``)
                    # coupling B: the rows rebuilt at the bumped ρ from the same normals
                    s = paths.fd_scenario[a, G.D_CORR, side]
                    corr = paths.scenarios[a, s, H.SC_CORR]
                    H.group_rows(eps[a], own[a], corr, H.correlation_complement(corr), n_steps,
                                 m, zr)
                    _resimulate(a, s, zr, m, paths, xs, vs, tx, tv, gs, cs, state_v, tan_x,
                                tan_v)
                resimulated = True
            elif code == THETA:
                vol = paths.vol[a]
                drift = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol)
                for i in range(m):
                    xs[g_t, i] = drift * t * c + vol * math.sqrt(c) * x[a, g_t, i]
                resimulated = True
            elif code == PAIR_CORR:
                H.member_brownian(ep[q], grid, m, xs)
                for i in range(m):
                    xs[g_t, i] = _log_move(paths, a, xs[g_t, i], t)
                resimulated = True
        if resimulated:
            for i in range(m):
                rows[MOVED, q, i] = legs.weight[j, q] * vecmath.exp(
                    elementary.ln(paths.spot[a]) + xs[g_t, i])
        if code == VEGA and q == k:
            vol = paths.vol[a]
            moved = vol * (1.0 + side_k * bumps[fd.B_VOL])
            shift = -0.5 * (moved * moved - vol * vol) * t
            for i in range(m):
                rows[MOVED, q, i] *= vecmath.exp(shift + (moved - vol) * x[a, g_t, i])
        elif code == RHO:
            growth = elementary.exp_scalar(side_k * bumps[fd.B_RATE] * t)
            for i in range(m):
                rows[MOVED, q, i] *= growth
        scale = _spot_scale(bumps, code, q, k, l, side_k, side_l)
        if scale != 1.0:
            for i in range(m):
                rows[MOVED, q, i] *= scale
    if code == RHO:
        disc = elementary.exp_scalar(-(rate + side_k * bumps[fd.B_RATE]) * t)
    elif code == THETA:
        disc = elementary.exp_scalar(-rate * t * c)
    return disc


@kernel
def _spot_scale(bumps, code, q, k, l, side_k, side_l):
    """The factor an fd move of measure (code, k, l) on corner (side_k, side_l) puts on leg q's
    spot: 1 + side h on the legs whose spot moves, else 1."""
    if (code == DELTA or code == GAMMA or code == CROSS_GAMMA) and q == k:
        return 1.0 + side_k * bumps[fd.B_SPOT]
    if code == CROSS_GAMMA and q == l:
        return 1.0 + side_l * bumps[fd.B_SPOT]
    return 1.0


@kernel
def _mix_pair(j, n, legs, eps, n_steps, m, k, l, side, ep):
    """ep[q] = the normals of leg q >= l of trade j (n legs) re-mixed with pair (k, l)'s bumped
    factor: eps' = L' L⁻¹ eps over the trade's legs, step by step (rows q < l of L' are L's)."""
    p = gbm_multi._pair_index(k, l, n)
    factor = legs.bumped[j, p, side]
    inverse = legs.inverse[j]
    for q in range(l, n):
        for step in range(n_steps):
            for i in range(m):
                ep[q, step, i] = 0.0
        for u in range(q + 1):
            c = 0.0
            for s in range(u, q + 1):
                c += factor[q, s] * inverse[s, u]
            if c != 0.0:
                a = legs.asset[j, u]
                for step in range(n_steps):
                    for i in range(m):
                        ep[q, step, i] += c * eps[a, step, i]


@kernel
def _fd_shape(j, n, legs, paths, code, k, l):
    """(width, corners) of measure (code, k, l)'s central difference on trade j (n legs): a
    pair correlation's or a Heston parameter's scenario width (1 for the others, whose
    ``_fd_corner`` weights carry their steps) and its number of corners."""
    if code == PAIR_CORR:
        width = legs.pair_width[j, gbm_multi._pair_index(k, l, n)]
    elif code >= D_V0:
        width = paths.fd_denominator[legs.asset[j, k], _quantity(code)]
    else:
        width = 1.0
    return width, 4 if code == CROSS_GAMMA else (3 if code == GAMMA else 2)


@kernel
def _fd_corner(code, c, bumps, spot_k, spot_l, vol_k, maturity, width):
    """Corner c of measure code's central difference: (side of leg k, side of leg l, weight),
    as ``gbm_multi._fd_corner``, with a Heston parameter's width (its scenarios' difference)."""
    if code >= D_V0:
        side = 1.0 if c == 0 else -1.0
        return side, 0.0, side / width
    if code == THETA:
        side = 1.0 if c == 0 else -1.0
        return side, 0.0, side / (-2.0 * bumps[fd.B_MAT] * maturity)
    return gbm_multi._fd_corner(code, c, bumps, spot_k, spot_l, vol_k, maturity, width)


@kernel
def trade_tile(j, book, legs, paths, plan, totals, x, v, tx, eps, own, z, theta_x, m, rows, cov,
               adj, sens, dirs, zr, ep, xs, vs, gs, cs, state_v, tan_x, tan_v, f, est, vec, agg,
               pairs, out_tile, policy):
    """Trade j's (a multi-asset trade's) wanted estimates over one tile: their moments into
    out_tile[slot] and the per-path totals.  x[a], v[a], tx[a]: asset a's log-spot and variance
    paths and tangents (``pricers.heston``); eps, own: the group's spot normals and the Heston
    members' own (empty for an ungrouped underlying); z[a]: asset a's rows; theta_x[a, side]:
    its path re-simulated at the maturity's fd scale; adj (2, n_steps, TILE), sens
    (n_legs, n_legs, TILE) and dirs (n_legs N_ADJ TILE): the reverse sweeps' scratch
    (``_row_sensitivities``); the rest scratch (tx only as such: the pathwise estimates read
    the sweeps' derivatives, not the forward tangents).  The fd estimates that
    re-simulate one asset's path on its own rows are ``fd_resimulated``'s, but an exercisable
    trade's (``_stopped_fd``).  ``policy``: the tile's exercise policy
    (``exercise_policy.tile_policy``), read by an exercisable trade; pairs: the moments are of
    antithetic pairs' means (``engine.tile_moments``)."""
    ti_j, tf_j = book.ti[j], book.tf[j]
    grid = book.grid
    slots_j = plan.slots[j]
    bumps = plan.bumps
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    g_t = book.fix_idx[ti_j[P.FIX_OFF]]
    omega, strike, kind = tf_j[P.OMEGA], tf_j[P.STRIKE], ti_j[P.KIND]
    rate = paths.rate[legs.asset[j, 0]]
    disc = elementary.exp_scalar(-rate * t)
    stopped = ti_j[P.EXERCISE] == 1
    g_end = g_t
    if stopped:     # g_t is the first exercise date, the mixed gammas' scores' end
        g_end = book.fix_idx[ti_j[P.FIX_OFF] + ti_j[P.FIX_N] - 1]
        _stop(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, ep, theta_x, m, rows)
    else:
        for k in range(n):
            a = legs.asset[j, k]
            log_s0 = elementary.ln(paths.spot[a])
            weight = legs.weight[j, k]
            for i in range(m):
                rows[LEG, k, i] = weight * vecmath.exp(log_s0
                                                       + _log_move(paths, a, x[a, g_t, i], t))
    P.legs_payoff(kind, omega, strike, rows[LEG], n, m, vec, f, rows[PW])
    scored = False
    need_sweeps = False
    need_rows = False
    for r in range(slots_j.shape[0] - G.N_QUANTITIES):
        code = legs.measure[j, r, 0]
        if slots_j[G.N_QUANTITIES + r, G.PATHWISE] >= 0:
            need_sweeps |= code == THETA or code == PAIR_CORR or code >= D_V0
            need_rows |= code == D_CORR or code == PAIR_CORR
    if need_sweeps:
        if not stopped:
            for i in range(m):
                rows[STOP, 0, i] = g_t
        _row_sensitivities(j, n, legs, paths, grid, g_end, v, z, eps, m, rows, adj, sens, dirs,
                           need_rows)
    for r in range(-1, slots_j.shape[0] - G.N_QUANTITIES):     # r = -1: the price
        g = G.N_QUANTITIES + r if r >= 0 else G.PRICE
        for e in range(slots_j.shape[1]):
            slot = slots_j[g, e]
            if slot < 0:
                continue
            if r < 0:
                for i in range(m):
                    est[i] = disc * f[i] if not stopped else \
                        elementary.exp_scalar(-rate * grid[int(rows[STOP, 0, i])]) * f[i]
            elif stopped:
                code, k, l = legs.measure[j, r, 0], legs.measure[j, r, 1], legs.measure[j, r, 2]
                if e == G.FD:
                    _stopped_fd(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, eps, own, z,
                                theta_x, m, rows, zr, ep, xs, vs, tx, gs, cs, state_v, tan_x,
                                tan_v, f, code, k, l, est, vec)
                elif e == G.PATHWISE:
                    _stopped_pathwise(j, n, legs, paths, grid, x, dirs, m, rows, sens, f, t,
                                      rate, code, k, l, est)
                else:       # mixed: the scores of the first exercise date
                    if not scored:
                        _scores(j, n, legs, paths, grid, g_t, v, z, eps, m, rows, cov)
                        scored = True
                    _score_estimate(j, n, legs, paths, m, rows, cov, f, t, 0.0, code, k, l, e,
                                    est)
                    for i in range(m):
                        est[i] *= elementary.exp_scalar(-rate * grid[int(rows[STOP, 0, i])])
            else:
                code, k, l = legs.measure[j, r, 0], legs.measure[j, r, 1], legs.measure[j, r, 2]
                if e == G.FD and _shared(code, paths):
                    continue
                if e == G.FD:
                    _fd(j, ti_j, tf_j, legs, paths, bumps, grid, g_t, x, eps, own, z, theta_x,
                        m, rows, zr, ep, xs, vs, tx, gs, cs, state_v, tan_x, tan_v, f, code, k, l,
                        est, vec)
                elif e == G.PATHWISE and (code == D_CORR or code == PAIR_CORR):
                    _pathwise_correlation(j, n, legs, paths, dirs, m, rows, sens, t, rate, code,
                                          k, l, est)
                elif e == G.PATHWISE:
                    _pathwise(j, n, legs, paths, g_t, x, dirs, m, rows, f, t, rate, code, k, est)
                else:
                    if not scored:
                        _scores(j, n, legs, paths, grid, g_t, v, z, eps, m, rows, cov)
                        scored = True
                    _score_estimate(j, n, legs, paths, m, rows, cov, f, t, rate, code, k, l, e,
                                    est)
            store_moments(est, m, pairs, out_tile[slot])
            add_to_total_called(g, e, est, est, m, False, totals.estimator[j],
                                totals.weights[j], totals.target[j], agg)


@kernel
def _pathwise(j, n, legs, paths, g_t, x, dirs, m, rows, f, t, rate, code, k, est):
    """The pathwise estimate of measure (code, k) of trade j (n legs) on the tile's paths into
    est (module docstring; a Heston leg's derivatives from its sweep, ``_leg_derivative``),
    discounted."""
    disc = elementary.exp_scalar(-rate * t)
    if code == RHO or code == THETA:
        for i in range(m):
            est[i] = -t * f[i] if code == RHO else rate * f[i]
        for q in range(n):
            a = legs.asset[j, q]
            for i in range(m):
                if code == RHO:
                    est[i] += rows[PW, q, i] * t
                elif paths.heston[a]:
                    est[i] -= rows[PW, q, i] * _leg_derivative(dirs, q, H.D_SCALE, i) / t
                else:
                    vol = paths.vol[a]
                    drift = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol)
                    est[i] -= rows[PW, q, i] * (drift + 0.5 * vol * x[a, g_t, i] / t)
        for i in range(m):
            est[i] *= disc
        return
    a = legs.asset[j, k]
    if code == DELTA:
        s0 = paths.spot[a]
        for i in range(m):
            est[i] = disc * rows[PW, k, i] / s0
    elif code == VEGA:
        vol = paths.vol[a]
        for i in range(m):
            est[i] = disc * rows[PW, k, i] * (x[a, g_t, i] - vol * t)
    else:
        d = code - D_V0 + H.D_V0
        for i in range(m):
            est[i] = disc * rows[PW, k, i] * _leg_derivative(dirs, k, d, i)


@kernel
def _fd(j, ti_j, tf_j, legs, paths, bumps, grid, g_t, x, eps, own, z, theta_x, m, rows, zr, ep,
        xs, vs, tx, gs, cs, state_v, tan_x, tan_v, f, code, k, l, est, vec):
    """The fd estimate of measure (code, k, l) on the tile's paths into est: its corners'
    revaluations on the same normals (``_move``), weighted (``_fd_corner``)."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    rate = paths.rate[legs.asset[j, 0]]
    disc = elementary.exp_scalar(-rate * t)
    a_k, a_l = legs.asset[j, max(k, 0)], legs.asset[j, max(l, 0)]
    width, n_corners = _fd_shape(j, n, legs, paths, code, k, l)
    for i in range(m):
        est[i] = 0.0
    omega, strike, kind = tf_j[P.OMEGA], tf_j[P.STRIKE], ti_j[P.KIND]
    for c in range(n_corners):
        side_k, side_l, weight = _fd_corner(code, c, bumps, paths.spot[a_k], paths.spot[a_l],
                                            paths.vol[a_k], t, width)
        if side_k == 0.0:
            for i in range(m):
                est[i] += weight * disc * f[i]
            continue
        if code == PAIR_CORR:
            _mix_pair(j, n, legs, eps, grid.size, m, k, l, 0 if side_k > 0 else 1, ep)
        moved_disc = _move(j, ti_j, tf_j, legs, paths, bumps, grid, g_t, x, eps, own, z, theta_x,
                           m, rows, zr, ep, xs, vs, tx[0], tx[0], gs, cs, state_v, tan_x, tan_v,
                           code, k, l, side_k, side_l)
        for i in range(m):
            u = P.legs_quantity(kind, rows[MOVED, :, i], n, vec)
            est[i] += weight * moved_disc * P.value(P.EUROPEAN, omega, strike, 1.0, u)


@kernel
def _quantity(code):
    """The quantity (fd scenario) of a Heston parameter's measure code."""
    return G.D_V0 + (code - D_V0)


@kernel
def _scores(j, n, legs, paths, grid, g_t, v, z, eps, m, rows, cov):
    """The score s = Σ_path⁻¹ e of ln S0 given the variance paths (module docstring) into
    rows[SCORE], and Σ_path⁻¹ into cov[0] (lower triangle: [k, l], k >= l), on the tile's paths:
    the steps up to the maturity's grid date g_t accumulate e and Σ_path, then a Cholesky
    factor per path (cov[1]) gives both.  Every loop has the paths inner, so it vectorizes."""
    for q in range(n):
        for i in range(m):
            rows[SCORE, q, i] = 0.0
        for r in range(q + 1):
            for i in range(m):
                cov[0, q, r, i] = 0.0
    for k in range(g_t + 1):
        dt = grid[k] - (grid[k - 1] if k > 0 else 0.0)
        for q in range(n):
            a = legs.asset[j, q]
            if paths.heston[a]:
                corr_bar = H.correlation_complement(paths.scenarios[a, 0, H.SC_CORR])
                coef = paths.coefs[a, 0, k]
                v0 = paths.scenarios[a, 0, H.SC_V0]
                for i in range(m):
                    v_prev = v[a, k - 1, i] if k > 0 else v0
                    rows[SIG, q, i] = H.step_sd(paths.scheme, coef, corr_bar, v_prev, v[a, k, i])
                    rows[RES, q, i] = z[a, 2 * k, i]
            else:
                sd = paths.vol[a] * math.sqrt(dt)
                for i in range(m):
                    rows[SIG, q, i] = sd
                    rows[RES, q, i] = eps[a, k, i]
        for q in range(n):
            for r in range(n):
                c = legs.cond_mean[j, q, r]
                if c != 0.0:
                    b = legs.asset[j, r]
                    for i in range(m):
                        rows[RES, q, i] -= c * z[b, 2 * k + 1, i]
        for q in range(n):
            for i in range(m):
                rows[SCORE, q, i] += rows[SIG, q, i] * rows[RES, q, i]
            for r in range(q + 1):
                c = legs.cond_cov[j, q, r]
                for i in range(m):
                    cov[0, q, r, i] += c * rows[SIG, q, i] * rows[SIG, r, i]
    # Cholesky factor L of Σ_path into cov[1]
    for col in range(n):
        for i in range(m):
            d = cov[0, col, col, i]
            for s in range(col):
                d -= cov[1, col, s, i] * cov[1, col, s, i]
            cov[1, col, col, i] = math.sqrt(d)
        for row in range(col + 1, n):
            for i in range(m):
                d = cov[0, row, col, i]
                for s in range(col):
                    d -= cov[1, row, s, i] * cov[1, col, s, i]
                cov[1, row, col, i] = d / cov[1, col, col, i]
    # s = L⁻ᵀ L⁻¹ e, in place in rows[SCORE]
    for q in range(n):
        for i in range(m):
            y = rows[SCORE, q, i]
            for s in range(q):
                y -= cov[1, q, s, i] * rows[SCORE, s, i]
            rows[SCORE, q, i] = y / cov[1, q, q, i]
    for q in range(n - 1, -1, -1):
        for i in range(m):
            y = rows[SCORE, q, i]
            for s in range(q + 1, n):
                y -= cov[1, s, q, i] * rows[SCORE, s, i]
            rows[SCORE, q, i] = y / cov[1, q, q, i]
    # Σ_path⁻¹ = L⁻ᵀ L⁻¹: L⁻¹ (lower) into cov[0], then its products
    for col in range(n):
        for i in range(m):
            cov[0, col, col, i] = 1.0 / cov[1, col, col, i]
        for row in range(col + 1, n):
            for i in range(m):
                d = 0.0
                for s in range(col, row):
                    d -= cov[1, row, s, i] * cov[0, s, col, i]
                cov[0, row, col, i] = d / cov[1, row, row, i]
    for k in range(n):
        for l in range(k + 1):
            for i in range(m):
                p = 0.0
                for t in range(k, n):
                    p += cov[0, t, k, i] * cov[0, t, l, i]
                cov[1, k, l, i] = p
    for k in range(n):
        for l in range(k + 1):
            for i in range(m):
                cov[0, k, l, i] = cov[1, k, l, i]


@kernel
def _score_estimate(j, n, legs, paths, m, rows, cov, f, t, rate, code, k, l, e, est):
    """The likelihood-ratio (e = LR) or mixed (e = MIXED) estimate of measure (code, k, l) of
    trade j (n legs) from the scores ``_scores`` left in rows[SCORE] and cov[0] (module docstring), discounted."""
    disc = elementary.exp_scalar(-rate * t)
    if code == RHO:
        for i in range(m):
            total = 0.0
            for q in range(n):
                total += rows[SCORE, q, i]
            est[i] = disc * f[i] * t * (total - 1.0)
        return
    s0_k = paths.spot[legs.asset[j, k]]
    if code == DELTA:
        for i in range(m):
            est[i] = disc * f[i] * rows[SCORE, k, i] / s0_k
        return
    if code == GAMMA:
        c = disc / (s0_k * s0_k)
        for i in range(m):
            s_k = rows[SCORE, k, i]
            if e == G.MIXED:
                est[i] = c * rows[PW, k, i] * (s_k - 1.0)
            else:
                est[i] = c * f[i] * (s_k * s_k - cov[0, k, k, i] - s_k)
        return
    # CROSS_GAMMA, k < l
    c = disc / (s0_k * paths.spot[legs.asset[j, l]])
    for i in range(m):
        s_k, s_l = rows[SCORE, k, i], rows[SCORE, l, i]
        if e == G.MIXED:
            est[i] = c * 0.5 * (rows[PW, k, i] * s_l + rows[PW, l, i] * s_k)
        else:
            est[i] = c * f[i] * (s_k * s_l - cov[0, l, k, i])


@kernel
def _shared(code, paths):
    """Whether measure ``code``'s fd is ``fd_resimulated``'s: a Heston parameter whose bumped
    path re-simulates one asset on its own rows (v0, kappa, vbar, xi; corr of an ungrouped
    asset, whose rows are its own whatever corr is)."""
    return (code >= D_V0 and code != D_CORR) or (code == D_CORR and paths.names.size == 1)


@kernel
def fd_resimulated(j, a, g, side, book, legs, paths, plan, totals, x, xs, m, rows, up, down,
                   vec, agg, pairs, out_tile):
    """Trade j's fd estimate of its leg on asset a's Heston parameter of quantity g, on side
    ``side`` of the central difference, from asset a's path xs re-simulated with that bump by
    ``pricers.heston`` (the re-simulation its single-asset trades use): side 0 keeps the
    revalued discounted payoffs in up, side 1 writes the difference quotient's moments and
    adds it to the per-path totals.  Nothing when trade j has no leg on a or no such estimate
    is wanted, or is exercisable (``_stopped_fd`` re-simulates its leg itself)."""
    ti_j, tf_j = book.ti[j], book.tf[j]
    n = ti_j[P.LEG_N]
    code = D_V0 + (g - G.D_V0)
    if not _shared(code, paths) or ti_j[P.EXERCISE] == 1:     # re-stopped by ``_stopped_fd``
        return
    r = -1
    for rr in range(legs.measure.shape[1]):
        if legs.measure[j, rr, 0] == code and legs.asset[j, legs.measure[j, rr, 1]] == a:
            r = rr
    if r < 0:
        return
    slot = plan.slots[j, G.N_QUANTITIES + r, G.FD]
    if slot < 0:
        return
    t = tf_j[P.MATURITY]
    g_t = book.fix_idx[ti_j[P.FIX_OFF]]
    disc = elementary.exp_scalar(-paths.rate[legs.asset[j, 0]] * t)
    for q in range(n):
        b = legs.asset[j, q]
        log_s0 = elementary.ln(paths.spot[b])
        weight = legs.weight[j, q]
        if b == a:
            for i in range(m):
                rows[MOVED, q, i] = weight * vecmath.exp(log_s0 + xs[g_t, i])
        else:
            for i in range(m):
                rows[MOVED, q, i] = weight * vecmath.exp(log_s0
                                                         + _log_move(paths, b, x[b, g_t, i], t))
    omega, strike, kind = tf_j[P.OMEGA], tf_j[P.STRIKE], ti_j[P.KIND]
    out = up if side == 0 else down
    for i in range(m):
        u = P.legs_quantity(kind, rows[MOVED, :, i], n, vec)
        out[i] = disc * P.value(P.EUROPEAN, omega, strike, 1.0, u)
    if side == 0:
        return
    width = paths.fd_denominator[a, g]
    for i in range(m):
        down[i] = (up[i] - down[i]) / width
    store_moments(down, m, pairs, out_tile[slot])
    add_to_total_called(G.N_QUANTITIES + r, G.FD, down, down, m, False, totals.estimator[j],
                        totals.weights[j], totals.target[j], agg)


@kernel
def _row_sensitivities(j, n, legs, paths, grid, g_t, v, z, eps, m, rows, adj, sens, dirs,
                       correlations):
    """Per Heston leg q of trade j, one reverse sweep of its path to the maturity's grid date g_t
    (``models.heston.row_adjoint``): the derivatives of ln S_q(T) along its directions (the
    grid scale, v0 ... corr) into dirs (``_leg_derivative``).  With ``correlations``, per leg
    q (a GBM leg's ln S_q(T) moves by σ_q √dt_j per unit of its step j's normal):
    rows[ROW_CORR, q] = Σ_j (a^s_qj (-zv_qj) + a^v_qj zs_qj)/c_q, the rows' part of
    d ln S_q(T)/d corr_q (0 for an ungrouped underlying, whose rows are its own, and a GBM leg),
    and sens[q, u] = Σ_j a^ε_qj ε_uj for the legs u <= q (module docstring).  Each path i ends
    at grid date rows[STOP, 0, i] <= g_t (an exercisable trade's stopping date): the steps
    after it do not move its cash flow."""
    grouped = paths.names.size > 1 and correlations
    ends = rows[STOP, 0]
    width = H.N_ADJ * TILE
    for q in range(n):
        a = legs.asset[j, q]
        for i in range(m):
            rows[ROW_CORR, q, i] = 0.0
        if paths.heston[a]:
            corr = paths.scenarios[a, 0, H.SC_CORR]
            corr_bar = H.correlation_complement(corr)
            H.row_adjoint(z[a], m, paths.scheme, paths.coefs[a, 0], paths.scenarios[a, 0],
                          paths.dcoef[a], v[a], g_t, ends, adj[0], adj[1],
                          dirs[q * width:(q + 1) * width])
            if grouped:
                for k in range(g_t + 1):
                    for i in range(m):
                        rows[ROW_CORR, q, i] += (adj[1, k, i] * z[a, 2 * k, i]
                                                 - adj[0, k, i] * z[a, 2 * k + 1, i]) / corr_bar
                    for i in range(m):        # a^ε, in place of a^s
                        adj[0, k, i] = corr_bar * adj[0, k, i] + corr * adj[1, k, i]
        elif grouped:
            t_prev = 0.0
            for k in range(g_t + 1):
                sd = paths.vol[a] * math.sqrt(grid[k] - t_prev)
                t_prev = grid[k]
                for i in range(m):
                    adj[0, k, i] = sd if k <= ends[i] else 0.0
        if not grouped:
            continue
        for u in range(q + 1):
            b = legs.asset[j, u]
            for i in range(m):
                sens[q, u, i] = 0.0
            for k in range(g_t + 1):
                for i in range(m):
                    sens[q, u, i] += adj[0, k, i] * eps[b, k, i]


@kernel(inline=True)
def _leg_derivative(dirs, q, d, i):
    """d ln S_q / d(direction d) on path i at its end date (``models.heston.DIRECTIONS``), from
    leg q's reverse sweep (``_row_sensitivities``)."""
    return dirs[(q * H.N_ADJ + 1 + d) * TILE + i]


@kernel
def _pathwise_correlation(j, n, legs, paths, dirs, m, rows, sens, t, rate, code, k, l, est):
    """Pathwise d_corr of leg k or d_pair_corr of pair (k, l) on the tile's paths into est, from
    ``_row_sensitivities`` (module docstring), discounted."""
    disc = elementary.exp_scalar(-rate * t)
    if code == D_CORR:
        for i in range(m):
            est[i] = disc * rows[PW, k, i] * (_leg_derivative(dirs, k, H.D_CORR, i)
                                              + rows[ROW_CORR, k, i])
        return
    p = gbm_multi._pair_index(k, l, n)
    d_factor, inverse = legs.d_factor[j, p], legs.inverse[j]
    for i in range(m):
        est[i] = 0.0
    for q in range(l, n):              # rows q < l of L do not move with pair (k, l)
        for u in range(q + 1):
            c = 0.0                    # (dL L⁻¹)[q, u], both lower triangular
            for s in range(u, q + 1):
                c += d_factor[q, s] * inverse[s, u]
            if c != 0.0:
                for i in range(m):
                    est[i] += disc * c * rows[PW, q, i] * sens[q, u, i]


# -- early exercise --------------------------------------------------------------------------------

@kernel
def _resimulated(code, q, k, l):
    """Whether an fd move of measure (code, k, l) re-simulates leg q's path: a Heston leg's own
    parameter (k = q), or the legs q >= l whose normals a pair correlation re-mixes."""
    return (code >= D_V0 and q == k) or (code == PAIR_CORR and q >= l)


@kernel
def _leg_affine(q, a, paths, bumps, t, code, k, l, side_k):
    """ln(S_q / S0_q) of leg q (asset a) at a grid date (time t before any move of the dates),
    with measure (code, k, l)'s parameter moved by side_k fd steps as in ``_move`` (code -1:
    none), as A + B y with y the path's value in source ``which`` at that date: 0 the asset's
    own state x[a] (a Heston log-spot move; a GBM member's W), 1 the leg's re-simulated path
    moved[q] (``_stopped_paths``), 2 its path at the maturity's moved scale theta_x[a, side]
    (a Heston leg).  GBM legs move exactly on the same normals: the scaled date's drift and
    √c W, a moved volatility's drift and W's factor, every leg's rate in its drift.
    Returns (A, B, which)."""
    if code == THETA:
        if paths.heston[a]:
            return 0.0, 1.0, 2
        c = 1.0 + side_k * bumps[fd.B_MAT]
        vol = paths.vol[a]
        return gbm.log_drift(paths.rate[a], paths.div_yield[a], vol) * t * c, \
            vol * math.sqrt(c), 0
    if code >= 0 and _resimulated(code, q, k, l):
        return 0.0, 1.0, 1
    shift, factor = 0.0, 1.0
    if not paths.heston[a]:
        vol = paths.vol[a]
        shift, factor = gbm.log_drift(paths.rate[a], paths.div_yield[a], vol) * t, vol
        if code == VEGA and q == k:
            bumped = vol * (1.0 + side_k * bumps[fd.B_VOL])
            shift -= 0.5 * (bumped * bumped - vol * vol) * t
            factor = bumped
    if code == RHO:
        shift += side_k * bumps[fd.B_RATE] * t
    return shift, factor, 0


@kernel
def _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, moved, theta_x, m, rows, code,
          k, l, side_k, side_l, at_stop, stop):
    """Stop the tile's paths of exercisable trade j by the fixed ``policy``, with measure
    (code, k, l)'s parameter moved (``_leg_affine``, ``_spot_scale``; code -1: none): stop[i]
    = the grid index of path i's stopping date, at_stop[:, i] = the legs' weighted spots there.
    Date by date, the legs' weighted spots of every path are formed in rows[MOVED] (paths
    inner, so the exponentials vectorize) and the paths still alive are offered the policy's
    exercise; the walk ends once every path has stopped."""
    n, n_dates, off = ti_j[P.LEG_N], ti_j[P.FIX_N], ti_j[P.FIX_OFF]
    kind, omega, strike = ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE]
    side = 0 if side_k > 0 else 1
    for i in range(m):
        stop[i] = -1.0
    alive = m
    for d in range(n_dates):
        g = book.fix_idx[off + d]
        t = book.grid[g]
        for q in range(n):
            a = legs.asset[j, q]
            shift, factor, which = _leg_affine(q, a, paths, bumps, t, code, k, l, side_k)
            level = _spot_scale(bumps, code, q, k, l, side_k, side_l) * legs.weight[j, q]
            base = elementary.ln(paths.spot[a]) + shift
            y = x[a, g] if which == 0 else (moved[q, g] if which == 1 else theta_x[a, side, g])
            for i in range(m):
                rows[MOVED, q, i] = level * vecmath.exp(base + factor * y[i])
        alive -= XP.stop_legs(policy, off + d, kind, omega, strike, rows[MOVED], n, m,
                              d == n_dates - 1, g, stop, at_stop)
        if alive == 0:
            break


@kernel
def _stop(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, moved, theta_x, m, rows):
    """An exercisable trade's rows on the tile: per path, the grid index of the date where the
    fixed ``policy`` stops it in rows[STOP, 0] and the legs' weighted spots there in rows[LEG]."""
    _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, moved, theta_x, m, rows, -1, -1,
          -1, 0.0, 0.0, rows[LEG], rows[STOP, 0])


@kernel
def _stopped_paths(j, ti_j, legs, paths, grid, eps, own, z, m, zr, ep, xs, vs, tx, gs, cs,
                   state_v, tan_x, tan_v, code, k, l, side_k):
    """The re-simulated legs' (``_resimulated``) moved log-spot paths, ln(S_q / S0_q) at every
    grid date, into ep[q] for an exercisable trade's fd corner side_k, on the same normals as
    ``_move``'s: a Heston leg's parameter with its fd scenario (its corr in a group with its
    rows rebuilt at the bumped value), a pair correlation's legs q >= l from their re-mixed
    normals (``_mix_pair``, whose ep[q] each leg's path then replaces)."""
    n = ti_j[P.LEG_N]
    n_steps = grid.size
    side = 0 if side_k > 0 else 1
    if code == PAIR_CORR:
        _mix_pair(j, n, legs, eps, n_steps, m, k, l, side, ep)
    for q in range(n):
        if not _resimulated(code, q, k, l):
            continue
        a = legs.asset[j, q]
        if not paths.heston[a]:         # a GBM leg of a moved pair
            H.member_brownian(ep[q], grid, m, xs)
            for g in range(n_steps):
                for i in range(m):
                    ep[q, g, i] = _log_move(paths, a, xs[g, i], grid[g])
            continue
        if code == PAIR_CORR:
            corr = paths.scenarios[a, 0, H.SC_CORR]
            H.group_rows(ep[q], own[a], corr, H.correlation_complement(corr), n_steps, m, zr)
            _resimulate(a, 0, zr, m, paths, xs, vs, tx, tx, gs, cs, state_v, tan_x, tan_v)
        else:
            s = paths.fd_scenario[a, _quantity(code), side]
            if code == D_CORR and paths.names.size > 1:
                corr = paths.scenarios[a, s, H.SC_CORR]
                H.group_rows(eps[a], own[a], corr, H.correlation_complement(corr), n_steps, m,
                             zr)
                _resimulate(a, s, zr, m, paths, xs, vs, tx, tx, gs, cs, state_v, tan_x, tan_v)
            else:
                _resimulate(a, s, z[a], m, paths, xs, vs, tx, tx, gs, cs, state_v, tan_x, tan_v)
        for g in range(n_steps):
            for i in range(m):
                ep[q, g, i] = xs[g, i]


@kernel
def _stopped_fd(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, eps, own, z, theta_x, m,
                rows, zr, ep, xs, vs, tx, gs, cs, state_v, tan_x, tan_v, f, code, k, l, est,
                vec):
    """fd of measure (code, k, l) of an exercisable trade on the tile into est: the corners of
    ``_fd_corner`` on the same normals, the moved paths re-stopped by the fixed policy
    (``_walk``), each discounted from its own stopping date (at the moved rate, on the moved
    dates)."""
    n = ti_j[P.LEG_N]
    t = tf_j[P.MATURITY]
    grid = book.grid
    rate = paths.rate[legs.asset[j, 0]]
    a_k, a_l = legs.asset[j, max(k, 0)], legs.asset[j, max(l, 0)]
    width, n_corners = _fd_shape(j, n, legs, paths, code, k, l)
    kind, omega, strike = ti_j[P.KIND], tf_j[P.OMEGA], tf_j[P.STRIKE]
    for i in range(m):
        est[i] = 0.0
    for c in range(n_corners):
        side_k, side_l, weight = _fd_corner(code, c, bumps, paths.spot[a_k], paths.spot[a_l],
                                            paths.vol[a_k], t, width)
        if side_k == 0.0:
            for i in range(m):
                est[i] += weight * elementary.exp_scalar(-rate * grid[int(rows[STOP, 0, i])]) * f[i]
            continue
        _stopped_paths(j, ti_j, legs, paths, grid, eps, own, z, m, zr, ep, xs, vs, tx[0], gs,
                       cs, state_v, tan_x, tan_v, code, k, l, side_k)
        moved_rate = rate + (side_k * bumps[fd.B_RATE] if code == RHO else 0.0)
        scale = 1.0 + side_k * bumps[fd.B_MAT] if code == THETA else 1.0
        # rows[SIG] and rows[RES, 0] are scratch here (``_scores`` fills them anew)
        _walk(j, ti_j, tf_j, book, legs, paths, bumps, policy, x, ep, theta_x, m, rows, code, k,
              l, side_k, side_l, rows[SIG], rows[RES, 0])
        for i in range(m):
            u = P.legs_quantity(kind, rows[SIG, :, i], n, vec)
            paid = grid[int(rows[RES, 0, i])]
            est[i] += weight * elementary.exp_scalar(-moved_rate * paid * scale) * \
                P.value(P.EUROPEAN, omega, strike, 1.0, u)


@kernel
def _stopped_pathwise(j, n, legs, paths, grid, x, dirs, m, rows, sens, f, t, rate, code, k, l,
                      est):
    """The pathwise estimate of measure (code, k, l) of an exercisable trade on the tile into
    est: ``_pathwise``'s and ``_pathwise_correlation``'s with the maturity T replaced by each
    path's stopping date τ (grid date g = rows[STOP, 0]; the legs' sweeps ended there),
    discounted from τ; theta moves τ with T (every date scales)."""
    if code == PAIR_CORR:       # rate 0: undiscounted
        _pathwise_correlation(j, n, legs, paths, dirs, m, rows, sens, t, 0.0, code, k, l, est)
    else:
        a = legs.asset[j, max(k, 0)]
        for i in range(m):
            g = int(rows[STOP, 0, i])
            tau = grid[g]
            if code == RHO or code == THETA:
                e = -tau * f[i] if code == RHO else rate * tau / t * f[i]
                for q in range(n):
                    b = legs.asset[j, q]
                    if code == RHO:
                        e += rows[PW, q, i] * tau
                    elif paths.heston[b]:
                        e -= rows[PW, q, i] * _leg_derivative(dirs, q, H.D_SCALE, i) / t
                    else:
                        vol = paths.vol[b]
                        drift = gbm.log_drift(paths.rate[b], paths.div_yield[b], vol)
                        e -= rows[PW, q, i] * (drift * tau + 0.5 * vol * x[b, g, i]) / t
            elif code == DELTA:
                e = rows[PW, k, i] / paths.spot[a]
            elif code == VEGA:
                e = rows[PW, k, i] * (x[a, g, i] - paths.vol[a] * tau)
            elif code == D_CORR:
                e = rows[PW, k, i] * (_leg_derivative(dirs, k, H.D_CORR, i) + rows[ROW_CORR, k, i])
            else:
                e = rows[PW, k, i] * _leg_derivative(dirs, k, code - D_V0 + H.D_V0, i)
            est[i] = e
    for i in range(m):
        est[i] *= elementary.exp_scalar(-rate * grid[int(rows[STOP, 0, i])])
