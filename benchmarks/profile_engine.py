"""Where mcgreeks spends its time, and the machine's limit for the same work.

numba-compiled code shows as one opaque frame to Python profilers and this machine has no
hardware counters for ``perf``, so the profile is taken by *decomposition*: a small driver calls
the engine's own kernels on the same tiles of paths (same key, stream and paths as the main run),
adding one stage at a time in the order the GBM pricer (``mcgreeks.pricers.gbm``) runs them:

0. random numbers: ``rng.fill_normal_rows``, every grid date's draws in one call (Threefry2x64-20
   and the Box-Muller transform, both vectorized over the tile);
1. + the Brownian path W on the grid (``engine.brownian_tile``, which draws those numbers);
2. + each trade's one pass over its dates with the tile's paths as the inner loop
   (``_accumulate``): e = exp(μt + σW) by the vectorizable ``mcgreeks.vecmath.exp`` and the
   per-path sums Σe, ΣeW, Σet, the geometric twin's ΣW and the scores' Σ(ΔW)²/Δt;
3. + per path, the payoff, its tangents and scores from those sums (``_fill``), for the trade and
   its geometric twin (``_fill_trade``, which also does stage 2);

and the engine's chunk kernel on one thread is the whole: the rest (estimates, moments, the
per-underlying totals, merge) is the chunk kernel minus stage 3.  A stage costs the difference of
two timed runs.  All run single-threaded over the same paths; costs are per path-step (ns).  The
stages are the engine's internals: if their signatures change the profile reports that instead
of failing.

Micro-benchmarks state the limit: the counter-based generator alone (``rng.fill_normal_rows``), the
same plus a Brownian step and one exp per step by ``mcgreeks.vecmath.exp``, the engine's exp (the
least work a GBM path price needs), and parts: scalar Threefry2x64-20 words
(``rng.threefry2x64_20``), scalar AS241 (``rng.ndtri``), libm's ``math.exp`` and ``vecmath.exp``
in a loop, and ``fill_normals``' own two halves (``benchmarks/normals_speed.py``).

The drivers here are compiled without numba's on-disk cache: a cached caller keeps the code of
the kernels it was compiled with (numba checks only the caller's source file), and the point is
to time the current engine.

    python -m benchmarks.profile_engine [--paths 32768]
"""
import argparse
import math
import time

import numba
import numpy as np
from numba import njit, prange

from mcgreeks import rng as R
from mcgreeks import vecmath
from mcgreeks.engine import TILE

#: Compile options of the drivers: no on-disk cache (see the module docstring); numpy's error
#: model, as the engine's kernels, so that loops vectorize alike.
_JIT = dict(cache=False, error_model="numpy")


def best_time(func, *args, repeats=3):
    """Fastest of ``repeats`` calls (seconds), after one untimed call (compilation)."""
    func(*args)
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - t)
    return best


# -- the limit: random numbers, one exp per step ----------------------------------------------------

#: Tiles per parallel block of the limit drivers, whose scratch is allocated once a block.
_LIMIT_TILES = 16


@njit(parallel=True, **_JIT)
def _rng_only(key0, key1, n_tiles, n_steps):
    total = 0.0
    for blk in prange(-(-n_tiles // _LIMIT_TILES)):
        z = np.empty((n_steps, TILE))       # once a block: a fresh array a tile page-faults
        s = 0.0
        for b in range(blk * _LIMIT_TILES, min(n_tiles, (blk + 1) * _LIMIT_TILES)):
            R.fill_normal_rows(key0, key1, np.uint64(0), np.uint64(b * TILE), z, n_steps, 1, 0,
                               1, TILE)
            # one number a row keeps the draws live: a sum of all of them would be a chain of
            # dependent additions (1.2 ns a normal), timing the adder, not the generator
            for k in range(n_steps):
                s += z[k, b % TILE]
        total += s
    return total


@njit(parallel=True, **_JIT)
def _rng_exp(key0, key1, n_tiles, n_steps, drift, sd):
    """Arithmetic-average price floor: RNG, a Brownian step and one exp per path-step, the exp
    being the engine's own (``vecmath.exp``, vectorized over the tile's paths)."""
    total = 0.0
    for blk in prange(-(-n_tiles // _LIMIT_TILES)):
        z = np.empty((n_steps, TILE))
        x = np.empty(TILE)
        acc = np.empty(TILE)
        for b in range(blk * _LIMIT_TILES, min(n_tiles, (blk + 1) * _LIMIT_TILES)):
            x[:] = 0.0
            acc[:] = 0.0
            R.fill_normal_rows(key0, key1, np.uint64(0), np.uint64(b * TILE), z, n_steps, 1, 0,
                               1, TILE)
            for k in range(n_steps):
                for i in range(TILE):
                    x[i] += drift + sd * z[k, i]
                    acc[i] += vecmath.exp(x[i])
            for i in range(TILE):
                total += max(acc[i] / n_steps - 1.0, 0.0)
    return total


@njit(parallel=True, **_JIT)
def _rng_qe(key0, key1, n_tiles, n_steps):
    """The Heston QE floor: what a QE path-step must compute whatever its arithmetic, the two
    normals (zs, zv) and zv's 1 - U by the engine's generator
    (``rng.fill_inverse_normals_and_complements``), then, per path, the transcendental functions a
    step takes (``models.heston.qe_tile_step``): two logarithms (the martingale correction's
    and the exponential branch's), by the engine's vectorizable ``rng.log``, and three square
    roots (the quadratic branch's two and the log-spot noise's), in a loop LLVM vectorizes.
    Their arguments are kept positive and data-dependent so that nothing folds."""
    total = 0.0
    for blk in prange(-(-n_tiles // _LIMIT_TILES)):
        zs, zv, tail = np.empty((n_steps, TILE)), np.empty(TILE), np.empty(TILE)
        v = np.empty(TILE)
        for b in range(blk * _LIMIT_TILES, min(n_tiles, (blk + 1) * _LIMIT_TILES)):
            v[:] = 0.04
            R.fill_normal_rows(key0, key1, np.uint64(0), np.uint64(b * TILE), zs, n_steps, 1, 0,
                               2, TILE)
            for k in range(n_steps):
                R.fill_inverse_normals_and_complements(key0, key1, np.uint64(0),
                                                       np.uint64(b * TILE), np.uint64(2 * k + 1),
                                                       zv, tail)
                for i in range(TILE):
                    root = math.sqrt(v[i] + zv[i] * zv[i])
                    b2 = math.sqrt(root + 1.0)
                    sig = math.sqrt(v[i] * 0.5 + 1e-3)
                    v[i] = 0.02 * (R.log(1.0 + b2) - R.log(tail[i])) + sig * 0.001 * zs[k, i]
            for i in range(TILE):
                total += v[i]
    return total


@njit(**_JIT)
def _threefry_only(n):
    s = np.uint64(0)
    for c in range(n):
        w0, w1 = R.threefry2x64_20(np.uint64(c), np.uint64(1), np.uint64(7), np.uint64(9))
        s ^= w0 ^ w1
    return s


@njit(**_JIT)
def _inverse_normal_only(bits):
    s = 0.0
    for i in range(bits.size):
        s += R.ndtri(R.bits_to_uniform(bits[i]))
    return s


@njit(**_JIT)
def _exp_only(x):
    s = 0.0
    for i in range(x.size):
        s += math.exp(x[i])
    return s


@njit(**_JIT)
def _vexp_only(x, y):
    for i in range(x.size):
        y[i] = vecmath.exp(x[i])
    return y[0]


def limits(n_paths=1 << 16, n_steps=252):
    """Micro-benchmark rates (per second) of the generator and the price floor; dict.

    rng_{1,2}: ``fill_normal_rows`` normals/s on 1 and 2 threads (every draw of a tile in one
    call, as the engine's paths take them); rng_exp_{1,2}: the same plus a
    Brownian step and one ``vecmath.exp`` per path-step (path-steps/s); rng_qe_{1,2}: the Heston
    QE floor, two normals, a complement, two logs and three square roots per path-step
    (path-steps/s, ``_rng_qe``); threefry_words: scalar
    Threefry2x64-20 words/s (one at a time, not vectorized); inverse_normal: scalar AS241 (``ndtri``)/s; exp / exp_vecmath: libm's
    ``math.exp`` (scalar) and ``vecmath.exp`` (vectorized loop) per second; normals_words_ns /
    normals_transform_ns: ``fill_normals``' two halves per normal, normals_ndtri_ns: AS241 on
    uniforms (``benchmarks/normals_speed.py``), or normals_parts_error if those internals
    moved."""
    key0, key1 = np.uint64(R.seed_key(1)), np.uint64(R.name_key("X"))
    n_tiles = n_paths // TILE
    out = {}
    for threads in (1, 2):
        saved = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            t = best_time(_rng_only, key0, key1, n_tiles, n_steps)
            out[f"rng_{threads}"] = n_tiles * TILE * n_steps / t
            t = best_time(_rng_exp, key0, key1, n_tiles, n_steps, 0.0, 0.0126)
            out[f"rng_exp_{threads}"] = n_tiles * TILE * n_steps / t
            t = best_time(_rng_qe, key0, key1, n_tiles, n_steps)
            out[f"rng_qe_{threads}"] = n_tiles * TILE * n_steps / t
        finally:
            numba.set_num_threads(saved)
    n = 1 << 21
    out["threefry_words"] = 2 * n / best_time(_threefry_only, n)
    bits = np.random.default_rng(0).integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    out["inverse_normal"] = n / best_time(_inverse_normal_only, bits)
    x = np.random.default_rng(0).standard_normal(n) * 0.1
    out["exp"] = n / best_time(_exp_only, x)
    out["exp_vecmath"] = n / best_time(_vexp_only, x, np.empty_like(x))
    try:
        from benchmarks import normals_speed
        parts = normals_speed.measure(min(n_tiles, 512), n_steps, repeats=3)
        out["normals_words_ns"] = parts["words"]
        out["normals_transform_ns"] = parts["transform"]
        out["normals_rows_ns"] = parts["rows"]
        out["normals_ndtri_ns"] = parts["ndtri"]
        out["normals_tail_fraction"] = parts["tail_fraction"]
    except Exception as exc:             # rng internals moved
        out["normals_parts_error"] = f"{type(exc).__name__}: {exc}"
    return out


# -- decomposition of the Asian-with-Greeks work --------------------------------------------------

def _stage_drivers():
    """The driver, compiled against the engine's current internals (raises if they changed)."""
    from mcgreeks import payoffs as P
    from mcgreeks.engine import brownian_tile
    from mcgreeks.models import gbm as model
    from mcgreeks.pricers.gbm import (N_ACC, N_Q, SCORES_ALL, _fill_trade, _payoff_alone,
                                      _score_sums)

    @njit(**_JIT)
    def stage(level, key0, key1, stream, n_tiles, grid, s0, rate, div, vol, ti, tf, fix_idx,
              policy, need_tangents, scores):
        """level 0: random numbers; 1: + Brownian path; 2: + each trade's date passes
        (``payoffs.accumulate`` unless the engine skips it, a one-date payoff priced alone, and
        ``_score_sums`` with all scores); 3: + its per-path
        quantities and its twin's (``_fill_trade``, which repeats the date passes itself).  The
        rest is the chunk kernel minus level 3."""
        w = np.empty((grid.size, TILE))
        acc = np.empty((N_ACC, TILE))
        q = np.empty((N_Q, TILE))
        q_x = np.empty((N_Q, TILE))
        mu = model.log_drift(rate, div, vol)
        total = 0.0
        for tile in range(n_tiles):
            path = np.uint64(tile * TILE)
            if level == 0:
                R.fill_normal_rows(key0, key1, stream, path, w, grid.size, 1, 0, 1, TILE)
                total += w[0, 0]
                continue
            brownian_tile(key0, key1, stream, path, TILE, grid, w)
            if level == 1:
                total += w[grid.size - 1, 0]
                continue
            for j in range(ti.shape[0]):
                if level == 2:
                    if not _payoff_alone(ti[j, P.KIND], ti[j], need_tangents, scores):
                        P.accumulate(ti[j, P.KIND], ti[j], tf[j], fix_idx, grid, w, TILE,
                                     math.log(s0), mu, vol, ti[j, P.CONTROL] == 1, acc)
                    if scores == SCORES_ALL:
                        _score_sums(ti[j], fix_idx, grid, w, TILE, acc)
                    total += acc[0, 0]
                else:
                    _fill_trade(ti[j], tf[j], fix_idx, policy, grid, w, TILE, s0, rate, mu, vol,
                                need_tangents, scores, False, acc, q, q_x)
                    total += q[0, 0]
        return total

    return stage


#: The decomposition's rows: stages 0-3 of the driver, then the rest of the chunk kernel.
STAGES = ("random numbers (fill_normal_rows: Threefry + Box-Muller)",
          "Brownian path W on the grid (brownian_tile)",
          "date pass: vecmath.exp and per-path sums (payoffs.accumulate, _score_sums)",
          "per-path payoff, tangents, scores; the twin's too (_fill)",
          "estimates, moments, totals, merge (chunk kernel - the above)")
N_LEVELS = 4


def _needs(job):
    """(need_tangents, scores) as the engine's GBM pricer derives them from the main run's slots
    (``pricers.gbm.needs``; any trade needing them; scores is a ``SCORES_*`` level)."""
    from mcgreeks.kernel_inputs import number_slots
    from mcgreeks.pricers import gbm as pricer

    needs = pricer.needs(number_slots(job.wanted(), len(job.records)))
    return bool(needs[:, 0].any()), int(needs[:, 1].max())


def decomposition(n_paths=1 << 15, payoff="asian_arithmetic", greeks=True, repeats=3):
    """Per-stage single-thread cost (ns per path-step) of one call (252 fixings for the Asian)
    with the estimators mcgreeks' auto chooses (``greeks``) or the price alone, plus the
    engine's chunk kernel at 1 and 2 threads and (with Greeks) ``price_portfolio`` end to end.
    Returns a dict (``stages``: [(STAGES[i], ns)], their sum ``stage_total`` = the chunk kernel
    on 1 thread), or {"error": why} if the internals changed."""
    from benchmarks import cases
    try:
        from mcgreeks import underlying
        from mcgreeks.rng import STREAM_MAIN, name_key, seed_key

        trades, market = cases.trades(payoff), cases.gbm_market()
        row = cases.mcgreeks_all(trades, market, 4096).iloc[0]
        chosen = {g: row["method_" + g] for g in cases.GBM_GREEKS} if greeks else {}
        n_tiles = n_paths // TILE
        job = underlying.pilot(cases.mcgreeks_job(trades, market, n_tiles * TILE,
                                                  methods=chosen))
        control = bool(job.records[0]["control"])
        grid, ti, tf, fix_idx = job.arrays
        p = job.params
        need_tangents, scores = _needs(job)
        stage = _stage_drivers()
        args = (np.uint64(seed_key(job.seed)), np.uint64(name_key(job.name)),
                np.uint64(STREAM_MAIN), n_tiles, grid, p["spot"], p["rate"], p["div_yield"],
                p["vol"], ti, tf, fix_idx, job.policy[0], need_tangents, scores)
        steps = n_tiles * TILE * grid.size

        def chunk_kernel():
            underlying.simulate(job, 0, n_tiles * TILE)

        def end_to_end():
            cases.mcgreeks_all(trades, market, n_tiles * TILE)

        result = {"methods": chosen, "n_paths": n_tiles * TILE, "steps": int(grid.size),
                  "payoff": payoff, "control": control, "need_tangents": need_tangents,
                  "scores": scores}
        saved = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            cumulative = [best_time(stage, level, *args, repeats=repeats)
                          for level in range(N_LEVELS)]
            for threads in (1, 2):
                numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
                result[f"chunk_{threads}"] = 1e9 * best_time(chunk_kernel, repeats=repeats) / steps
                if greeks:
                    result[f"portfolio_{threads}"] = 1e9 * best_time(end_to_end) / steps
        finally:
            numba.set_num_threads(saved)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    per_step = [1e9 * c / steps for c in cumulative] + [result["chunk_1"]]
    result["stages"] = [(STAGES[0], per_step[0])] + [
        (STAGES[i], per_step[i] - per_step[i - 1]) for i in range(1, len(STAGES))]
    result["stage_total"] = per_step[-1]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1 << 15)
    args = parser.parse_args()
    for name, value in limits(args.paths).items():
        if isinstance(value, str):
            print(f"{name:30s} {value}")
        elif name.endswith(("_ns", "_fraction")):
            print(f"{name:30s} {value:.3g}")
        else:
            print(f"{name:30s} {value:,.4g}/s  ({1e9 / value:.2f} ns)")
    for payoff, greeks, n in (("asian_arithmetic", True, args.paths),
                              ("european", False, 64 * args.paths)):
        d = decomposition(n, payoff, greeks)
        print(f"-- {payoff}, {'all Greeks' if greeks else 'price only'}")
        if "error" in d:
            print("decomposition skipped:", d["error"])
            continue
        print("methods", d["methods"], "| control", d["control"], "| tangents",
              d["need_tangents"], "| scores", d["scores"])
        for name, ns in d["stages"]:
            print(f"{name:62s} {ns:6.2f} ns/path-step")
        print(f"{'total = chunk kernel, 1 thread':62s} {d['stage_total']:6.2f}")
        for threads in (1, 2):
            print(f"chunk kernel, {threads} thread(s): {d[f'chunk_{threads}']:6.2f} ns/path-step"
                  + (f"; price_portfolio: {d[f'portfolio_{threads}']:6.2f}" if greeks else ""))


if __name__ == "__main__":
    main()
