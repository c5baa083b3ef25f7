"""Measurement prototypes behind the engine's speed-ups, and what is left of them (not used by
mcgreeks).

``profile_engine`` showed where the Asian-with-Greeks time went: the normals (Philox + AS241)
and three scalar walks over the dates per path (payoff, tangents, the control's twin), each with
libm's exp.  The prototypes here did the same arithmetic with a tile of paths as the inner loop,
so that LLVM vectorizes it, and are now the engine itself:

- tile-wise normals (AS241 branch-free over the tile, tails gathered and vectorized, its own
  log) and Philox's 64×64→128-bit multiply as one ``mul i128``: ``mcgreeks.rng.fill_normals``
  (``benchmarks/normals_speed.py`` times its parts);
- a vectorizable exp (Cody–Waite reduction, degree-12 Taylor polynomial, 2**k from the exponent
  bits): ``mcgreeks.vecmath.exp``;
- one fused pass over the dates giving the arithmetic average, its tangent sums and the twin's
  Σ W: ``mcgreeks.pricers.gbm._accumulate``.

What ``measure`` still reports (keys for ``benchmarks/run.py``), single thread:

- ``normals_bits_differing``: draws where ``fill_normals`` differs from the scalar
  ``rng.normal`` (must be 0);
- ``vecmath_exp_max_ulp``: ``vecmath.exp`` against NumPy's exp on [-5, 5] (the walk's range);
- ``philox_tile_ns_per_word`` / ``philox_tile_bits_differing``: Philox4x64-10 with the counters
  of a tile as the inner loop (the engine's ``mul i128`` multiply), to see whether LLVM
  vectorizes it across counters (on the machines tried it does not gain on the scalar Philox);
- ``fused_walk_libm_exp_ns`` / ``fused_walk_vecmath_exp_ns``: the fused date pass (``fused_walk``,
  the sums of ``_accumulate`` for an arithmetic Asian and its twin) with libm's ``math.exp``,
  which numba cannot vectorize, and with ``vecmath.exp``: what the vectorizable exp buys.

And ``inlined_comparison``: the engine's GBM kernels recompiled with numba's
``inline="always"`` on the per-path helpers that take arrays (``PER_PATH_HELPERS``), against the
engine, same bits.

The drivers are compiled without numba's on-disk cache (a cached caller keeps the code of the
kernels it was compiled with).

    python -m benchmarks.kernel_prototypes
"""
import math

import numpy as np
from numba import njit

from benchmarks.profile_engine import best_time
from mcgreeks import rng as R
from mcgreeks import vecmath
from mcgreeks.engine import TILE

_JIT = dict(cache=False, error_model="numpy")

# Philox4x64 round multipliers and key increments (Salmon et al., SC'11).
_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)


@njit(**_JIT)
def normals_agree(key0, key1, n_tiles, n_steps):
    """Count of draws where fill_normals differs from the scalar ``normal`` (must be 0)."""
    a = np.empty(TILE)
    bad = 0
    for t in range(n_tiles):
        for k in range(n_steps):
            R.fill_normals(key0, key1, np.uint64(0), np.uint64(t * TILE), np.uint64(k), a)
            for i in range(TILE):
                if a[i] != R.normal(key0, key1, np.uint64(0), np.uint64(t * TILE + i),
                                    np.uint64(k)):
                    bad += 1
    return bad


@njit(**_JIT)
def vecmath_exp(x, out):
    """out[i] = vecmath.exp(x[i]) (a loop LLVM vectorizes)."""
    for i in range(x.size):
        out[i] = vecmath.exp(x[i])


@njit(**_JIT)
def fused_walk(w, grid, mu, vol, vectorized, n_tiles, s_sum, sw_sum, st_sum, w_sum):
    """One pass over the dates for ``n_tiles`` tiles of the same W (w[date, path]): the sums an
    arithmetic Asian's value and pathwise tangents need, and the geometric twin's Σ W, with
    ``vecmath.exp`` (``vectorized``) or libm's ``math.exp``."""
    for _ in range(n_tiles):
        for i in range(TILE):
            s_sum[i] = sw_sum[i] = st_sum[i] = w_sum[i] = 0.0
        for k in range(grid.size):
            t = grid[k]
            if vectorized:
                for i in range(TILE):
                    e = vecmath.exp(mu * t + vol * w[k, i])
                    s_sum[i] += e
                    sw_sum[i] += e * w[k, i]
                    st_sum[i] += e * t
            else:
                for i in range(TILE):
                    e = math.exp(mu * t + vol * w[k, i])
                    s_sum[i] += e
                    sw_sum[i] += e * w[k, i]
                    st_sum[i] += e * t
            for i in range(TILE):
                w_sum[i] += w[k, i]


@njit(**_JIT)
def philox_tile(c0, c1, c2, c3, k0, k1, x0, x1, x2, x3):
    """Philox4x64-10 of the counters (c0[j], c1, c2, c3) for j < c0.size, rounds outer and
    counters inner (the engine's multiply, one ``mul i128``), into x0..x3."""
    n = c0.size
    for j in range(n):
        x0[j], x1[j], x2[j], x3[j] = c0[j], c1, c2, c3
    y0, y1 = np.uint64(k0), np.uint64(k1)
    for r in range(10):
        if r > 0:
            y0 += _W0
            y1 += _W1
        for j in range(n):
            hi0, lo0 = R._mulhilo64(_M0, x0[j])
            hi1, lo1 = R._mulhilo64(_M1, x2[j])
            a, b, c, d = hi1 ^ x1[j] ^ y0, lo1, hi0 ^ x3[j] ^ y1, lo0
            x0[j], x1[j], x2[j], x3[j] = a, b, c, d


@njit(**_JIT)
def philox_tile_rate(n_calls, n):
    c0 = np.arange(n).astype(np.uint64)
    x0 = np.empty(n, dtype=np.uint64)
    x1 = np.empty(n, dtype=np.uint64)
    x2 = np.empty(n, dtype=np.uint64)
    x3 = np.empty(n, dtype=np.uint64)
    acc = np.uint64(0)
    for c in range(n_calls):
        philox_tile(c0, np.uint64(c), np.uint64(0), np.uint64(0), np.uint64(7), np.uint64(9),
                    x0, x1, x2, x3)
        acc ^= x0[0] ^ x3[n - 1]
    return acc


@njit(**_JIT)
def philox_tile_agree(n_calls, n):
    c0 = np.arange(n).astype(np.uint64)
    x0 = np.empty(n, dtype=np.uint64)
    x1 = np.empty(n, dtype=np.uint64)
    x2 = np.empty(n, dtype=np.uint64)
    x3 = np.empty(n, dtype=np.uint64)
    bad = 0
    for c in range(n_calls):
        philox_tile(c0, np.uint64(c), np.uint64(5), np.uint64(0), np.uint64(7), np.uint64(9),
                    x0, x1, x2, x3)
        for j in range(n):
            w = R.philox4x64_10(c0[j], np.uint64(c), np.uint64(5), np.uint64(0), np.uint64(7),
                                np.uint64(9))
            if w[0] != x0[j] or w[1] != x1[j] or w[2] != x2[j] or w[3] != x3[j]:
                bad += 1
    return bad


def measure(n_tiles=512, n_steps=252):
    """The checks and timings listed in the module docstring (ns per word / per path-date,
    single thread); dict."""
    key0, key1 = np.uint64(R.seed_key(1)), np.uint64(R.name_key("X"))
    out = {"normals_bits_differing": int(normals_agree(key0, key1, 64, n_steps))}

    x = np.random.default_rng(3).uniform(-5.0, 5.0, 1 << 16)
    got = np.empty_like(x)
    vecmath_exp(x, got)
    want = np.exp(x)
    out["vecmath_exp_max_ulp"] = float(np.max(np.abs(got - want) / np.spacing(want)))

    out["philox_tile_bits_differing"] = int(philox_tile_agree(100, 16))
    out["philox_tile_ns_per_word"] = 1e9 * best_time(philox_tile_rate, 20_000, 64) / (20_000 * 64 * 4)

    grid = np.arange(1, n_steps + 1) * (252 / 365) / n_steps
    w = np.cumsum(np.random.default_rng(4).standard_normal((n_steps, TILE)), axis=0) * \
        math.sqrt(grid[0])
    sums = [np.empty(TILE) for _ in range(4)]
    reps = n_tiles
    for vectorized in (False, True):
        t = best_time(fused_walk, w, grid, 0.0, 0.2, vectorized, reps, *sums)
        out["fused_walk_" + ("vecmath" if vectorized else "libm") + "_exp_ns"] = \
            1e9 * t / (reps * TILE * n_steps)
    return out


# -- the whole GBM engine re-jitted with its per-path helpers inlined --------------------------------

#: The per-path helpers of ``mcgreeks.pricers.gbm`` that take arrays (inlining only these keeps
#: the compile time reasonable; inlining every kernel took 11 minutes to compile here).
PER_PATH_HELPERS = ("_walk", "_value", "_estimate", "_direct_estimate", "_direct", "_likelihood",
                    "_derivative_parts")


def inlined_gbm_pricer(only=PER_PATH_HELPERS):
    """A copy of ``mcgreeks.pricers.gbm`` whose kernels are recompiled from the same Python source
    with numba's ``inline="always"`` on the helpers named in ``only`` (None: every helper; the
    parallel ``chunk`` stays a kernel).

    Why: a helper that takes arrays and is called per path (``_walk``, ``_value``, ``_estimate``
    ...) is a real call in the compiled code, and numba increments and decrements the reference
    count of every array argument around it (atomic operations), which costs far more than the
    arithmetic of a one-date payoff.  Inlined at numba-IR level, those disappear.  Nothing in
    mcgreeks is changed: new module objects hold the recompiled functions.
    """
    import sys
    import types

    from numba.core.registry import CPUDispatcher

    import mcgreeks.pricers.gbm as pricer
    names = [n for n, m in sys.modules.items()
             if n.startswith("mcgreeks") and isinstance(m, types.ModuleType)
             and not n.startswith("mcgreeks.analytic")]
    copies = {}
    for name in names:
        module = sys.modules[name]
        copy = types.ModuleType(name + "__inlined")
        copy.__dict__.update(module.__dict__)
        copies[module] = copy
    for copy in copies.values():                 # module references -> the copies
        for key, value in list(copy.__dict__.items()):
            if isinstance(value, types.ModuleType) and value in copies:
                copy.__dict__[key] = copies[value]
    for module, copy in copies.items():          # own kernels -> recompiled
        for key, value in list(copy.__dict__.items()):
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                py = value.py_func
                func = types.FunctionType(py.__code__, copy.__dict__, py.__name__,
                                          py.__defaults__, py.__closure__)
                # the kernel's own options (error model, parallel, an rng helper's own
                # inline="always"), without the on-disk cache
                options = {k: v for k, v in value.targetoptions.items() if k != "nopython"}
                if not options.get("parallel") and (only is None or py.__name__ in only):
                    options["inline"] = "always"
                copy.__dict__[key] = njit(**options)(func)
    by_name = {m.__name__: c for m, c in copies.items()}
    for module, copy in copies.items():          # imported kernels -> their recompiled twin
        for key, value in list(copy.__dict__.items()):
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ != module.__name__:
                source = by_name.get(value.py_func.__module__)
                if source is not None:
                    copy.__dict__[key] = source.__dict__[value.py_func.__name__]
    return copies[pricer]


def inlined_comparison(repeats=4):
    """The engine's main-run kernel as it is vs with ``PER_PATH_HELPERS`` inlined: single thread,
    runs interleaved (so machine load hits both alike), best of ``repeats``; ns per path for a
    European (all Greeks, per-underlying totals included) and an Asian with 252 fixings, plus
    whether ``price_portfolio`` gives the same bits and the inlined copy's compile time."""
    import dataclasses
    import sys
    import time

    import numba

    from benchmarks import cases
    from mcgreeks import models, underlying
    from mcgreeks.rng import STREAM_MAIN

    original = models.MODELS["gbm"]            # its ``pricer`` holds the kernels the engine runs
    t = time.perf_counter()
    inlined = inlined_gbm_pricer(PER_PATH_HELPERS)
    sys.modules[inlined.__name__] = inlined
    out = {}
    saved = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        for payoff, n in (("european", 1 << 20), ("asian_arithmetic", 1 << 14)):
            trades, market = cases.trades(payoff), cases.gbm_market()
            reference = cases.mcgreeks_all(trades, market, 4096)
            chosen = {g: reference.iloc[0]["method_" + g] for g in cases.GBM_GREEKS}
            job = underlying.pilot(cases.mcgreeks_job(trades, market, n, methods=chosen))
            wanted = job.wanted()
            args = underlying.kernel_args(job, wanted, underlying.totals_weights(job, wanted))

            def main_run():
                underlying.segments(job, args, job.n_slots, STREAM_MAIN, 0, n)

            best = {"engine": math.inf, "inlined": math.inf}
            tables = {}
            for rep in range(repeats + 1):
                for label, module in (("engine", original.pricer), ("inlined", inlined.__name__)):
                    models.MODELS["gbm"] = dataclasses.replace(original, pricer=module)
                    try:
                        if rep == 0:
                            t0 = time.perf_counter()
                            tables[label] = cases.mcgreeks_all(trades, market, 8192)
                            if label == "inlined" and "compile_seconds" not in out:
                                out["compile_seconds"] = time.perf_counter() - t0 + \
                                    (t0 - t if payoff == "european" else 0.0)
                            continue
                        t0 = time.perf_counter()
                        main_run()
                        best[label] = min(best[label], time.perf_counter() - t0)
                    finally:
                        models.MODELS["gbm"] = original
            a, b = tables["engine"], tables["inlined"]
            cols = [c for c in a.columns if a[c].dtype.kind == "f"]
            out[payoff] = {"engine_ns_per_path": 1e9 * best["engine"] / n,
                           "inlined_ns_per_path": 1e9 * best["inlined"] / n,
                           "bit_identical": bool(np.array_equal(a[cols].to_numpy(),
                                                                b[cols].to_numpy(),
                                                                equal_nan=True))}
    finally:
        numba.set_num_threads(saved)
        models.MODELS["gbm"] = original
        sys.modules.pop(inlined.__name__, None)
    return out


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:32s} {value:.3g}")
