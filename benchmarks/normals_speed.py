"""Nanoseconds per standard normal of ``mcgreeks.rng.fill_normals``, single thread.

The engine asks for the draws of one tile of paths at a time (``engine.TILE`` paths, ``path0``
a multiple of it), every step's in one call (``fill_normal_rows``), so that is what is timed:
each kernel over ``--tiles`` tiles times ``--draws`` draws, on the same tiles:

- ``words``: Threefry2x64-20 words turned into uniforms (``rng._fill_uniform_pairs``): the
  generator alone;
- ``transform``: the two Box-Muller loops of ``fill_normals`` (``rng._gaussian_pairs``: -2 ln U
  in place, then cos and sin times the radius) on words the generator really draws, cycled
  through 2048 cache-resident tiles, each first copied into a buffer (that copy, ~0.05 ns a
  normal, is included);
- ``ndtri``: AS241 on uniforms the generator draws (``rng._uniforms_to_normals`` in 64-blocks,
  ~15 % of them in its tails), the same way: what ``fill_inverse_normals`` adds;
- ``total``: ``fill_normals`` called once a row, and the same for unaligned, odd-sized tiles
  (``path0`` odd, 61 paths), which take the scalar ends; ``rows``: ``fill_normal_rows``, every
  draw of a tile in one call, the engine's form; ``total_inverse``: ``fill_inverse_normals``.

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
from mcgreeks.vecmath import bits_double

_JIT = dict(cache=False, error_model="numpy")


@njit(**_JIT)
def _total(key0, key1, path0, n_tiles, n_draws, z, inverse):
    acc = 0.0
    for t in range(n_tiles):
        for k in range(n_draws):
            p = np.uint64(path0 + t * TILE)
            if inverse:
                R.fill_inverse_normals(key0, key1, R.STREAM_MAIN, p, np.uint64(k), z)
            else:
                R.fill_normals(key0, key1, R.STREAM_MAIN, p, np.uint64(k), z)
            acc += z[0]
    return acc


@njit(**_JIT)
def _words(key0, key1, n_tiles, n_draws, z):
    acc = 0.0
    for t in range(n_tiles):
        for k in range(n_draws):
            R._fill_uniform_pairs(key0, key1, R.STREAM_MAIN, np.uint64(t * TILE), np.uint64(k), z)
            acc += z[0]
    return acc


@njit(**_JIT)
def _draw_tiles(key0, key1, n_tiles, n_draws, raw):
    """Tiles of uniforms, or of raw Threefry words stored as doubles (``raw``)."""
    u = np.empty((n_tiles * n_draws, TILE))
    for t in range(n_tiles):
        for k in range(n_draws):
            row = u[t * n_draws + k]
            for m in range(TILE // 2):
                w0, w1 = R.threefry2x64_20(np.uint64(t * TILE // 2 + m), np.uint64(k), key0, key1)
                if raw:         # _gaussian_pairs' layout: first words, then second words
                    row[m] = bits_double(np.int64(w0))
                    row[TILE // 2 + m] = bits_double(np.int64(w1))
                else:
                    row[2 * m] = R.bits_to_uniform(w0)
                    row[2 * m + 1] = R.bits_to_uniform(w1)
    return u


@njit(**_JIT)
def _box_muller(w, n_tiles, z):
    """``rng._box_muller_pairs``, the two Box-Muller loops of ``rng._gaussian_pairs``, on raw
    words in its layout (first words, then second words)."""
    acc = 0.0
    half = z.size // 2
    words = np.empty(z.size)
    for j in range(n_tiles):
        words[:] = w[j % w.shape[0]]
        R._box_muller_pairs(words, half, half, z)
        acc += z[0]
    return acc


@njit(**_JIT)
def _rows(key0, key1, n_tiles, rows):
    """``fill_normal_rows``: every draw of a tile in one call, as the engine's paths take them."""
    acc = 0.0
    for t in range(n_tiles):
        R.fill_normal_rows(key0, key1, R.STREAM_MAIN, np.uint64(t * TILE), rows, rows.shape[0],
                           1, 0, 1, TILE)
        acc += rows[0, 0]
    return acc


@njit(**_JIT)
def _ndtri(u, n_tiles, z, buf):
    acc = 0.0
    for j in range(n_tiles):
        z[:] = u[j % u.shape[0]]
        for b in range(0, z.size, R._BLOCK):     # fill_inverse_normals' blocks
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
    """ns per normal: {'words', 'transform', 'ndtri', 'total', 'rows', 'total_inverse',
    'total_unaligned'} (single thread), and 'tail_fraction' (AS241's tails)."""
    key0, key1 = R.seed_key(1), R.name_key("X")
    check_bits(key0, key1)
    draws = n_tiles * n_draws * TILE
    z = np.empty(TILE)
    out = {"words": best_time(_words, key0, key1, n_tiles, n_draws, z, repeats=repeats)}
    out["transform"] = best_time(_box_muller, _draw_tiles(key0, key1, 8, 256, True),
                                 n_tiles * n_draws, z, repeats=repeats)
    u = _draw_tiles(key0, key1, 8, 256, False)
    out["ndtri"] = best_time(_ndtri, u, n_tiles * n_draws, z, np.empty(R._SCRATCH),
                             repeats=repeats)
    out["total"] = best_time(_total, key0, key1, 0, n_tiles, n_draws, z, False, repeats=repeats)
    out["rows"] = best_time(_rows, key0, key1, n_tiles, np.empty((n_draws, TILE)),
                            repeats=repeats)
    out["total_inverse"] = best_time(_total, key0, key1, 0, n_tiles, n_draws, z, True,
                                     repeats=repeats)
    unaligned = best_time(_total, key0, key1, 1, n_tiles, n_draws, np.empty(61), False,
                          repeats=repeats)
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
    print(f"  Threefry2x64-20 -> uniforms       {r['words']:6.2f} ns/normal")
    print(f"  Box-Muller, two loops            {r['transform']:6.2f} ns/normal")
    print(f"  total (fill_normals, a row)      {r['total']:6.2f} ns/normal")
    print(f"  total (fill_normal_rows, a tile) {r['rows']:6.2f} ns/normal")
    print(f"  total, unaligned 61-path tile    {r['total_unaligned']:6.2f} ns/normal")
    print(f"  AS241 on uniforms                {r['ndtri']:6.2f} ns/normal"
          f"   ({100 * r['tail_fraction']:.1f} % in the tails)")
    print(f"  total (fill_inverse_normals)     {r['total_inverse']:6.2f} ns/normal")


if __name__ == "__main__":
    main()
