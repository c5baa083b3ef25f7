"""The Monte Carlo loop: tiles of paths in parallel, per-tile moments merged in a fixed order.

Paths are numbered 0..N-1 and cut into tiles of ``TILE`` consecutive paths.  A tile is the unit of
vectorized work (the inner loop runs over its paths) and the unit of summation: each tile yields
the mean and centred sum of squares of every requested estimate, and tiles are merged one after
another in path order (Chan, Golub & LeVeque 1983).  Threads, blocks (tiles per parallel task)
and chunks (paths per kernel call, which bound memory) only decide who computes a tile and when,
never what it contains or the order of merging, so the result is the same to the bit for any of
them.  Random numbers are a pure function of (seed, underlying, path, draw) (see ``rng``).

A *slot* is one output estimate: (trade, quantity, estimator).  ``slots[j, g, e]`` holds its
index, or -1 when the caller does not want it; only wanted slots are computed.  A model's pricer
(``mcgreeks.pricers``) supplies the parallel ``chunk`` kernel that fills one chunk's tiles; this
module owns what every pricer shares: tiles, Brownian increments, moments and their merging.
"""
import math

import numpy as np

from mcgreeks._jit import kernel
from mcgreeks.rng import fill_normals

#: Paths per tile.  Part of the result's definition (it fixes the summation order), so it is a
#: constant, not a tuning knob; a multiple of 4 so Philox blocks never straddle tiles.
TILE = 64


#: Moments kept per tile and slot: mean and centred sum of squares of the estimate y, and of
#: its control x (when it has one), and their centred sum of cross products.
MEAN, M2, MEAN_X, M2_X, C_XY = range(5)
N_MOMENTS = 5


@kernel
def tile_moments(x, m):
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
def write_moments(y, x, m, with_control, out):
    """Write the tile moments of estimates y[:m] (and of their controls x[:m]) into out[:]."""
    out[MEAN], out[M2] = tile_moments(y, m)
    if with_control:
        out[MEAN_X], out[M2_X] = tile_moments(x, m)
        c = 0.0
        for i in range(m):
            c += (y[i] - out[MEAN]) * (x[i] - out[MEAN_X])
        out[C_XY] = c
    else:
        out[MEAN_X] = out[M2_X] = out[C_XY] = 0.0


@kernel
def brownian_tile(key0, key1, stream, path, m, grid, z, w):
    """W at the grid dates (years) for paths path..path+m-1 into w[k, i]: draw k of a path is the
    standard normal increment over (grid[k-1], grid[k]]."""
    t_prev = 0.0
    for k in range(grid.size):
        fill_normals(key0, key1, stream, np.uint64(path), np.uint64(k), z[:m])
        sd = math.sqrt(grid[k] - t_prev)
        for i in range(m):
            w[k, i] = (w[k - 1, i] if k > 0 else 0.0) + sd * z[i]
        t_prev = grid[k]


@kernel
def merge_tiles(out, n_paths, count, state):
    """Fold tile moments into the running moments of every slot, in tile order (Chan, Golub &
    LeVeque 1983, pairwise update; the cross term likewise).  ``count`` holds paths so far."""
    for tile in range(out.shape[0]):
        m = min(TILE, n_paths - tile * TILE)
        n_a = count[0]
        n_ab = n_a + m
        for k in range(out.shape[1]):
            dy = out[tile, k, MEAN] - state[k, MEAN]
            dx = out[tile, k, MEAN_X] - state[k, MEAN_X]
            state[k, MEAN] += dy * m / n_ab
            state[k, MEAN_X] += dx * m / n_ab
            w = n_a * m / n_ab
            state[k, M2] += out[tile, k, M2] + dy * dy * w
            state[k, M2_X] += out[tile, k, M2_X] + dx * dx * w
            state[k, C_XY] += out[tile, k, C_XY] + dy * dx * w
        count[0] = n_ab


def run(chunk, args, *, key0, key1, stream, n_paths, n_slots, chunk_paths=1 << 16,
        block_paths=1 << 12, first_path=0):
    """Simulate ``n_paths`` paths with a pricer's ``chunk`` kernel: (count, moments[slot, 5]).

    ``chunk(key0, key1, stream, path0, n, tiles_per_block, *args, out)`` fills out[tile, slot] with
    each tile's moments (``write_moments``).  ``chunk_paths`` bounds memory and ``block_paths`` sets the parallel
    grain; both are rounded to whole tiles and neither changes a single bit of the result.
    ``first_path`` (a multiple of TILE) lets a caller simulate one range of a longer run.
    """
    if first_path % TILE:
        raise ValueError(f"first_path has value {first_path}: must be a multiple of {TILE}")
    state = np.zeros((n_slots, N_MOMENTS))
    count = np.zeros(1)
    size = max(TILE, chunk_paths // TILE * TILE)
    tiles_per_block = max(1, block_paths // TILE)
    for start in range(0, n_paths, size):
        n = min(size, n_paths - start)
        out = np.empty(((n + TILE - 1) // TILE, n_slots, N_MOMENTS))
        chunk(np.uint64(key0), np.uint64(key1), np.uint64(stream), first_path + start, n,
              tiles_per_block, *args, out)
        merge_tiles(out, n, count, state)
    return int(count[0]), state


def estimate(count, state, control_mean=None):
    """Mean and standard error per slot from merged moments.

    Where ``control_mean`` (per slot; NaN for none) gives E[x] of a slot's control, the estimate is
    the control-variate one, ȳ - β(x̄ - E[x]) with β = C_xy/M2_x fitted on the same paths, and its
    standard error that of the regression residual (Glasserman 2004, §4.1).  Also returns the
    variance reduction factor Var(y)/Var(residual) (1 without a control) and β.
    """
    mean, m2 = state[:, MEAN].copy(), state[:, M2].copy()
    beta = np.zeros(len(state))
    dof = np.full(len(state), max(count - 1, 1), dtype=float)
    if control_mean is not None:
        use = ~np.isnan(control_mean) & (state[:, M2_X] > 0)
        beta[use] = state[use, C_XY] / state[use, M2_X]
        mean[use] -= beta[use] * (state[use, MEAN_X] - control_mean[use])
        m2[use] = np.maximum(m2[use] - beta[use] * state[use, C_XY], 0.0)
        dof[use] = max(count - 2, 1)
    se = np.sqrt(m2 / dof / max(count, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        reduction = np.where(m2 > 0, state[:, M2] / m2, 1.0)
    return mean, se, reduction, beta
