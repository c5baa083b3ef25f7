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
def merge_tiles(out, n_paths, state):
    """Fold tile moments into the running (count, mean, M2) of every slot, in tile order
    (Chan, Golub & LeVeque 1983, pairwise update)."""
    for tile in range(out.shape[0]):
        m = min(TILE, n_paths - tile * TILE)
        for k in range(out.shape[1]):
            n_a = state[k, 0]
            n_ab = n_a + m
            delta = out[tile, k, 0] - state[k, 1]
            state[k, 1] += delta * m / n_ab
            state[k, 2] += out[tile, k, 1] + delta * delta * n_a * m / n_ab
            state[k, 0] = n_ab


def run(chunk, args, *, key0, key1, stream, n_paths, n_slots, chunk_paths=1 << 16,
        block_paths=1 << 12, first_path=0):
    """Simulate ``n_paths`` paths with a pricer's ``chunk`` kernel; per slot (mean, SE, count).

    ``chunk(key0, key1, stream, path0, n, tiles_per_block, *args, out)`` fills out[tile, slot] with
    each tile's (mean, M2).  ``chunk_paths`` bounds memory and ``block_paths`` sets the parallel
    grain; both are rounded to whole tiles and neither changes a single bit of the result.
    ``first_path`` (a multiple of TILE) lets a caller simulate one range of a longer run.
    """
    if first_path % TILE:
        raise ValueError(f"first_path has value {first_path}: must be a multiple of {TILE}")
    state = np.zeros((n_slots, 3))
    size = max(TILE, chunk_paths // TILE * TILE)
    tiles_per_block = max(1, block_paths // TILE)
    for start in range(0, n_paths, size):
        n = min(size, n_paths - start)
        out = np.empty(((n + TILE - 1) // TILE, n_slots, 2))
        chunk(np.uint64(key0), np.uint64(key1), np.uint64(stream), first_path + start, n,
              tiles_per_block, *args, out)
        merge_tiles(out, n, state)
    count = state[:, 0]
    var = state[:, 2] / np.maximum(count - 1, 1)
    return state[:, 1].copy(), np.sqrt(var / np.maximum(count, 1)), count
