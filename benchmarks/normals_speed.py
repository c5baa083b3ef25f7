"""Nanoseconds per standard normal of ``mcgreeks.rng.fill_normals``, single thread.

The engine asks for the draws of one tile of paths at a time (``engine.TILE`` paths, ``path0``
a multiple of it, one draw number per call), so that is what is timed: ``fill_normals`` over ``--tiles`` tiles
times ``--draws`` draws, and its two parts on the same tiles:

- ``philox``: the Philox4x64-10 words turned into uniforms (``rng._fill_groups``);
- ``ndtri``: the in-place uniforms -> normals transform (``rng._uniforms_to_normals``) on
  uniforms the generator really draws (so ~15 % land in AS241's tails, as in use): 2048 tiles
  (1 MiB, cache-resident) cycled through, each first copied into the output buffer (that copy,
  ~0.05 ns per normal, is included);
- ``total``: ``fill_normals`` itself, and the same for unaligned, odd-sized tiles (``path0 % 4 ==
  1``, 61 paths), which take the general path.

Each figure is the best of ``--repeats`` runs after a warm-up call (compilation); other processes
on the machine only ever make a run slower, so the minimum is the measurement.  The drivers are
compiled without numba's on-disk cache: a cached caller keeps the ``rng`` code it was compiled
with, and the point is to time the current one.  Before timing, the tiles are checked bit for bit
against the scalar ``rng.normal``.

    python -m benchmarks.normals_speed [--tiles 512] [--draws 252] [--repeats 7]
"""
import argparse

import numpy as np
from numba import njit

from benchmarks.profile_engine import best_time
from mcgreeks import rng as R
from mcgreeks.engine import TILE

_JIT = dict(cache=False, error_model="numpy")


@njit(**_JIT)
def _total(key0, key1, path0, n_tiles, n_draws, z):
    acc = 0.0
    for t in range(n_tiles):
        for k in range(n_draws):
            R.fill_normals(key0, key1, R.STREAM_MAIN, np.uint64(path0 + t * TILE), np.uint64(k),
                           z)
            acc += z[0]
    return acc


@njit(**_JIT)
def _philox(key0, key1, n_tiles, n_draws, z):
    acc = 0.0
    for t in range(n_tiles):
        for k in range(n_draws):
            R._fill_groups(key0, key1, R.STREAM_MAIN, np.uint64(k), np.uint64(t * TILE), z)
            acc += z[0]
    return acc


@njit(**_JIT)
def _uniform_tiles(key0, key1, n_tiles, n_draws):
    u = np.empty((n_tiles * n_draws, TILE))
    for t in range(n_tiles):
        for k in range(n_draws):
            R._fill_groups(key0, key1, R.STREAM_MAIN, np.uint64(k), np.uint64(t * TILE),
                           u[t * n_draws + k])
    return u


@njit(**_JIT)
def _ndtri(u, n_tiles, z, buf):
    acc = 0.0
    for j in range(n_tiles):
        z[:] = u[j % u.shape[0]]
        for b in range(0, z.size, R._BLOCK):     # fill_normals' blocks
            R._uniforms_to_normals(z[b:b + R._BLOCK], buf)
        acc += z[0]
    return acc


def check_bits(key0, key1):
    """fill_normals equals the scalar definition on a few aligned and unaligned tiles."""
    for path0, size in ((0, TILE), (5 * TILE, TILE), (TILE + 1, 61), (2**64 - 32, TILE)):
        z = np.empty(size)
        R.fill_normals(key0, key1, R.STREAM_MAIN, np.uint64(path0), np.uint64(3), z)
        ref = [R.normal(key0, key1, R.STREAM_MAIN, np.uint64((path0 + i) % 2**64), np.uint64(3))
               for i in range(size)]
        if not np.array_equal(z, ref):
            raise AssertionError(f"fill_normals differs from normal() at path0={path0}")


def measure(n_tiles=512, n_draws=252, repeats=7):
    """ns per normal: {'philox', 'ndtri', 'total', 'total_unaligned'} (single thread)."""
    key0, key1 = R.seed_key(1), R.name_key("X")
    check_bits(key0, key1)
    draws = n_tiles * n_draws * TILE
    z = np.empty(TILE)
    out = {"philox": best_time(_philox, key0, key1, n_tiles, n_draws, z, repeats=repeats)}
    u = _uniform_tiles(key0, key1, 8, 256)
    out["ndtri"] = best_time(_ndtri, u, n_tiles * n_draws, z, np.empty(R._SCRATCH),
                             repeats=repeats)
    out["total"] = best_time(_total, key0, key1, 0, n_tiles, n_draws, z, repeats=repeats)
    unaligned = best_time(_total, key0, key1, 1, n_tiles, n_draws, np.empty(61), repeats=repeats)
    out = {name: 1e9 * seconds / draws for name, seconds in out.items()}
    out["total_unaligned"] = 1e9 * unaligned / (n_tiles * n_draws * 61)
    out["tail_fraction"] = float(np.mean(np.abs(u - 0.5) > R._SPLIT1))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=512)
    parser.add_argument("--draws", type=int, default=252)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    r = measure(args.tiles, args.draws, args.repeats)
    print(f"fill_normals, single thread, tiles of {TILE} paths, best of {args.repeats}:")
    print(f"  philox -> uniforms            {r['philox']:6.2f} ns/normal")
    print(f"  uniforms -> normals (AS241)   {r['ndtri']:6.2f} ns/normal"
          f"   ({100 * r['tail_fraction']:.1f} % in the tails)")
    print(f"  total                         {r['total']:6.2f} ns/normal")
    print(f"  total, unaligned 61-path tile {r['total_unaligned']:6.2f} ns/normal")


if __name__ == "__main__":
    main()
