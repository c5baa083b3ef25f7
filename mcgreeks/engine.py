"""The Monte Carlo loop: tiles of paths in parallel, per-tile moments merged in a fixed order.

Paths are numbered 0..N-1 and cut into tiles of ``TILE`` consecutive paths.  A tile is the unit of
vectorized work (the inner loop runs over its paths) and the unit of summation: each tile yields
the mean and centred sum of squares of every requested estimate, and tiles are merged one after
another in path order (Chan, Golub & LeVeque 1983).  Threads, blocks (tiles per parallel task)
and chunks (paths per kernel call, which bound memory) only decide who computes a tile and when,
never what it contains or the order of merging, so the result is the same to the bit for any of
them.  Random numbers are a pure function of (seed, underlying, path, draw) (see ``rng``).

A *slot* is one output estimate: (trade, quantity, estimator).  ``slots[j, g, e]`` holds its
index, or -1 when the caller does not want it; only wanted slots are computed.
"""
import math

import numpy as np
from numba import prange

from mcgreeks import greeks as G
from mcgreeks import payoffs
from mcgreeks._jit import kernel
from mcgreeks.estimators import fd, likelihood_ratio as lr, mixed, pathwise
from mcgreeks.models import gbm
from mcgreeks.rng import fill_normals

#: Paths per tile.  Part of the result's definition (it fixes the summation order), so it is a
#: constant, not a tuning knob; a multiple of 4 so Philox blocks never straddle tiles.
TILE = 64


@kernel
def _tile_moments(x, m):
    """Mean and centred sum of squares of x[:m], two-pass for accuracy."""
    s = 0.0
    for i in range(m):
        s += x[i]
    mean = s / m
    m2 = 0.0
    for i in range(m):
        d = x[i] - mean
        m2 += d * d
    return mean, m2


@kernel
def _brownian_tile(key0, key1, stream, path, m, grid, z, w):
    """W at the grid dates for paths path..path+m-1: w[k, i], one normal draw per grid step."""
    t_prev = 0.0
    for k in range(grid.size):
        fill_normals(key0, key1, stream, np.uint64(path), np.uint64(k), z[:m])
        sd = math.sqrt(grid[k] - t_prev)
        for i in range(m):
            w[k, i] = (w[k - 1, i] if k > 0 else 0.0) + sd * z[i]
        t_prev = grid[k]


@kernel
def _gbm_terminal_estimate(g, e, w, s, f, slope, s0, mu, rate, div, vol, t, disc,
                           kind, omega, strike, cash, bumps):
    """One path's estimate of quantity g by estimator e for a payoff of S_T under GBM.

    w = W_T, s = S_T, f = payoff, slope = f'(S_T); t = T in years; disc = exp(-rT).
    """
    if g == G.PRICE:
        return disc * f
    if g == G.DELTA:
        if e == G.PATHWISE:
            return pathwise.first_order(disc, 0.0, f, slope, gbm.tangent_spot(s, s0))
        if e == G.LR:
            return lr.first_order(disc, 0.0, f, gbm.score_spot(s0, vol, t, w))
        h = bumps[0]
        up = payoffs.terminal_value(kind, omega, strike, cash, s * (1.0 + h))
        dn = payoffs.terminal_value(kind, omega, strike, cash, s * (1.0 - h))
        return disc * fd.central(up, dn, h * s0)
    if g == G.GAMMA:
        if e == G.MIXED:
            return mixed.gamma(disc, slope, gbm.tangent_spot(s, s0), -s / (s0 * s0),
                               gbm.score_spot(s0, vol, t, w))
        if e == G.LR:
            return lr.second_order(disc, f, gbm.score2_spot(s0, vol, t, w))
        h = bumps[0]
        up = payoffs.terminal_value(kind, omega, strike, cash, s * (1.0 + h))
        dn = payoffs.terminal_value(kind, omega, strike, cash, s * (1.0 - h))
        return disc * fd.second(up, f, dn, h * s0)
    if g == G.VEGA:
        if e == G.PATHWISE:
            return pathwise.first_order(disc, 0.0, f, slope, gbm.tangent_vol(s, vol, t, w))
        if e == G.LR:
            return lr.first_order(disc, 0.0, f, gbm.score_vol(vol, t, w))
        h = bumps[1] * vol
        up = payoffs.terminal_value(kind, omega, strike, cash,
                                    gbm.spot_at(s0, gbm.log_drift(rate, div, vol + h), vol + h, t, w))
        dn = payoffs.terminal_value(kind, omega, strike, cash,
                                    gbm.spot_at(s0, gbm.log_drift(rate, div, vol - h), vol - h, t, w))
        return disc * fd.central(up, dn, h)
    if g == G.RHO:
        if e == G.PATHWISE:
            return pathwise.first_order(disc, -t * disc, f, slope, gbm.tangent_rate(s, t))
        if e == G.LR:
            return lr.first_order(disc, -t * disc, f, gbm.score_rate(vol, w))
        h = bumps[2]
        up = math.exp(-h * t) * payoffs.terminal_value(kind, omega, strike, cash, s * math.exp(h * t))
        dn = math.exp(h * t) * payoffs.terminal_value(kind, omega, strike, cash, s * math.exp(-h * t))
        return disc * fd.central(up, dn, h)
    # theta = -∂V/∂T
    if e == G.PATHWISE:
        return -pathwise.first_order(disc, -rate * disc, f, slope,
                                     gbm.tangent_maturity(s, mu, vol, t, w, t))
    if e == G.LR:
        return -lr.first_order(disc, -rate * disc, f, gbm.score_maturity(mu, vol, t, w))
    h = bumps[3] * t
    t_up, t_dn = t + h, t - h
    up = math.exp(-rate * t_up) * payoffs.terminal_value(
        kind, omega, strike, cash, gbm.spot_at(s0, mu, vol, t_up, w * math.sqrt(t_up / t)))
    dn = math.exp(-rate * t_dn) * payoffs.terminal_value(
        kind, omega, strike, cash, gbm.spot_at(s0, mu, vol, t_dn, w * math.sqrt(t_dn / t)))
    return -fd.central(up, dn, h)


@kernel
def _gbm_terminal_trade(w, m, s0, rate, div, vol, t, kind, omega, strike, cash, slots_j, bumps,
                        s, f, slope, x, out_tile):
    """All wanted estimates of one terminal-payoff trade over one tile (w = W_T per path)."""
    mu = gbm.log_drift(rate, div, vol)
    disc = math.exp(-rate * t)
    for i in range(m):
        s[i] = gbm.spot_at(s0, mu, vol, t, w[i])
        f[i] = payoffs.terminal_value(kind, omega, strike, cash, s[i])
        slope[i] = payoffs.terminal_slope(kind, omega, strike, cash, s[i])
    for g in range(slots_j.shape[0]):
        for e in range(slots_j.shape[1]):
            k = slots_j[g, e]
            if k < 0:
                continue
            for i in range(m):
                x[i] = _gbm_terminal_estimate(g, e, w[i], s[i], f[i], slope[i], s0, mu, rate, div,
                                              vol, t, disc, kind, omega, strike, cash, bumps)
            out_tile[k, 0], out_tile[k, 1] = _tile_moments(x, m)


@kernel(parallel=True)
def _gbm_chunk(key0, key1, stream, path0, n_paths, tiles_per_block, grid, s0, rate, div, vol,
               kind, omega, strike, cash, maturity, mat_idx, slots, bumps, out):
    """Simulate paths path0..path0+n_paths-1 (path0 a multiple of TILE) and write each tile's
    (mean, M2) per slot to out[tile, slot, :]."""
    n_tiles = (n_paths + TILE - 1) // TILE
    n_blocks = (n_tiles + tiles_per_block - 1) // tiles_per_block
    for b in prange(n_blocks):
        w = np.empty((grid.size, TILE))
        z = np.empty(TILE)
        s = np.empty(TILE)
        f = np.empty(TILE)
        slope = np.empty(TILE)
        x = np.empty(TILE)
        for tile in range(b * tiles_per_block, min(n_tiles, (b + 1) * tiles_per_block)):
            first = tile * TILE
            m = min(TILE, n_paths - first)
            _brownian_tile(key0, key1, stream, path0 + first, m, grid, z, w)
            for j in range(kind.size):
                _gbm_terminal_trade(w[mat_idx[j]], m, s0, rate, div, vol, maturity[j], kind[j],
                                    omega[j], strike[j], cash[j], slots[j], bumps, s, f, slope, x,
                                    out[tile])


@kernel
def _merge_tiles(out, n_paths, state):
    """Fold tile moments into the running (count, mean, M2) of every slot, in tile order."""
    for tile in range(out.shape[0]):
        m = min(TILE, n_paths - tile * TILE)
        for k in range(out.shape[1]):
            n_a = state[k, 0]
            n_ab = n_a + m
            delta = out[tile, k, 0] - state[k, 1]
            state[k, 1] += delta * m / n_ab
            state[k, 2] += out[tile, k, 1] + delta * delta * n_a * m / n_ab
            state[k, 0] = n_ab


def run_gbm(*, key0, key1, stream, n_paths, grid, s0, rate, div_yield, vol, trades, slots,
            bumps=None, chunk_paths=1 << 16, block_paths=1 << 12, first_path=0):
    """Simulate ``n_paths`` GBM paths and return, per slot, (mean, standard error, count).

    ``trades`` is a dict of equal-length arrays: kind, omega, strike, cash, maturity, mat_idx
    (index of the maturity in ``grid``).  ``chunk_paths`` bounds memory, ``block_paths`` is the
    parallel grain; both are rounded to whole tiles and neither changes a single bit of the result.
    """
    bumps = fd.bumps() if bumps is None else bumps
    n_slots = int(slots.max()) + 1 if slots.size else 0
    state = np.zeros((n_slots, 3))
    chunk = max(TILE, chunk_paths // TILE * TILE)
    tiles_per_block = max(1, block_paths // TILE)
    for start in range(0, n_paths, chunk):
        n = min(chunk, n_paths - start)
        out = np.empty(((n + TILE - 1) // TILE, n_slots, 2))
        _gbm_chunk(np.uint64(key0), np.uint64(key1), np.uint64(stream), first_path + start, n,
                   tiles_per_block, grid, s0, rate, div_yield, vol, trades["kind"],
                   trades["omega"], trades["strike"], trades["cash"], trades["maturity"],
                   trades["mat_idx"], slots, bumps, out)
        _merge_tiles(out, n, state)
    count = state[:, 0]
    var = state[:, 2] / np.maximum(count - 1, 1)
    return state[:, 1].copy(), np.sqrt(var / np.maximum(count, 1)), count
