"""Where mcgreeks spends its time, and the machine's limit for the same work.

numba-compiled code shows as one opaque frame to Python profilers and this machine has no
hardware counters for ``perf``, so the profile is taken by *decomposition*: a small driver calls
the engine's own kernels on the same tiles of paths, adding one stage at a time (random numbers,
Brownian path, payoff walk, tangent walk, scores, the control's walks); the engine's chunk kernel
on one thread is the whole; a stage costs the difference of two runs.  All run single-threaded
over the same paths; costs are per path-step (ns).  The stages are the engine's internals
(``mcgreeks.pricers.gbm``); if their signatures change the profile reports that instead.

Micro-benchmarks state the limit: the counter-based generator alone (Philox4x64-10 and the AS241
inverse normal, as ``mcgreeks.rng`` computes them), the same plus one ``exp`` per step (the
least work a GBM path price needs), and the parts of the generator separately.  A prototype of
Philox's 64×64→128-bit multiply as one LLVM ``mul i128`` (the engine builds it from four 32-bit
products) is checked bit for bit against ``mcgreeks.rng.philox4x64_10`` and timed, to size
that suggestion.

    python -m benchmarks.profile_engine [--paths 65536]
"""
import argparse
import math
import time

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from mcgreeks import rng as R

TILE = 64


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

@njit(parallel=True, cache=True)
def _rng_only(key0, key1, n_tiles, n_steps):
    total = 0.0
    for b in prange(n_tiles):
        z = np.empty(TILE)
        s = 0.0
        for k in range(n_steps):
            R.fill_normals(key0, key1, np.uint64(0), np.uint64(b * TILE), np.uint64(k), z)
            for i in range(TILE):
                s += z[i]
        total += s
    return total


@njit(parallel=True, cache=True)
def _rng_exp(key0, key1, n_tiles, n_steps, drift, sd):
    """Arithmetic-average price floor: RNG, a Brownian step and one exp per path-step."""
    total = 0.0
    for b in prange(n_tiles):
        z = np.empty(TILE)
        x = np.zeros(TILE)
        acc = np.zeros(TILE)
        for k in range(n_steps):
            R.fill_normals(key0, key1, np.uint64(0), np.uint64(b * TILE), np.uint64(k), z)
            for i in range(TILE):
                x[i] += drift + sd * z[i]
                acc[i] += math.exp(x[i])
        for i in range(TILE):
            total += max(acc[i] / n_steps - 1.0, 0.0)
    return total


@njit(cache=True)
def _philox_only(n):
    s = np.uint64(0)
    for c in range(n):
        w0, w1, w2, w3 = R.philox4x64_10(np.uint64(c), np.uint64(1), np.uint64(0), np.uint64(0),
                                         np.uint64(7), np.uint64(9))
        s ^= w0 ^ w1 ^ w2 ^ w3
    return s


@njit(cache=True)
def _inverse_normal_only(bits):
    s = 0.0
    for i in range(bits.size):
        s += R.ndtri(R.bits_to_uniform(bits[i]))
    return s


@njit(cache=True)
def _exp_only(x):
    s = 0.0
    for i in range(x.size):
        s += math.exp(x[i])
    return s


# -- prototype: Philox with a native 128-bit multiply ------------------------------------------------

@intrinsic
def _mul_hi_lo(typingctx, a, b):
    """(high, low) 64-bit words of the 128-bit product of two uint64, as one LLVM ``mul i128``."""
    if a != types.uint64 or b != types.uint64:
        return None
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        high = builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))
        low = builder.trunc(product, ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (high, low))

    return sig, codegen


# Philox4x64 round constants (Salmon et al., SC'11, "Parallel random numbers: as easy as 1, 2, 3").
_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)


@njit(cache=True)
def philox_native(c0, c1, c2, c3, k0, k1):
    """Philox4x64-10 with the multiply as ``mul i128``; must equal ``R.philox4x64_10``."""
    x0, x1, x2, x3 = np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)
    y0, y1 = np.uint64(k0), np.uint64(k1)
    for r in range(10):
        if r > 0:
            y0 += _W0
            y1 += _W1
        hi0, lo0 = _mul_hi_lo(_M0, x0)
        hi1, lo1 = _mul_hi_lo(_M1, x2)
        x0, x1, x2, x3 = hi1 ^ x1 ^ y0, lo1, hi0 ^ x3 ^ y1, lo0
    return x0, x1, x2, x3


@njit(cache=True)
def _philox_native_only(n):
    s = np.uint64(0)
    for c in range(n):
        w0, w1, w2, w3 = philox_native(np.uint64(c), np.uint64(1), np.uint64(0), np.uint64(0),
                                       np.uint64(7), np.uint64(9))
        s ^= w0 ^ w1 ^ w2 ^ w3
    return s


@njit(cache=True)
def _philox_agree(counters, keys):
    for i in range(counters.shape[0]):
        a = R.philox4x64_10(counters[i, 0], counters[i, 1], counters[i, 2], counters[i, 3],
                            keys[i, 0], keys[i, 1])
        b = philox_native(counters[i, 0], counters[i, 1], counters[i, 2], counters[i, 3],
                          keys[i, 0], keys[i, 1])
        if a[0] != b[0] or a[1] != b[1] or a[2] != b[2] or a[3] != b[3]:
            return False
    return True


def limits(n_paths=1 << 16, n_steps=252):
    """Micro-benchmark rates (per second) of the generator and the price floor; dict."""
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
        finally:
            numba.set_num_threads(saved)
    n = 1 << 21
    out["philox_words"] = 4 * n / best_time(_philox_only, n)
    out["philox_native_words"] = 4 * n / best_time(_philox_native_only, n)
    bits = np.random.default_rng(0).integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    out["inverse_normal"] = n / best_time(_inverse_normal_only, bits)
    x = np.random.default_rng(0).standard_normal(n) * 0.1
    out["exp"] = n / best_time(_exp_only, x)
    rg = np.random.default_rng(5)
    counters = rg.integers(0, 2**63, size=(10_000, 4), dtype=np.uint64) * np.uint64(2) + \
        rg.integers(0, 2, size=(10_000, 4), dtype=np.uint64)
    keys = rg.integers(0, 2**63, size=(10_000, 2), dtype=np.uint64) * np.uint64(2)
    out["philox_native_bit_identical"] = bool(_philox_agree(counters, keys))
    return out


# -- decomposition of the Asian-with-Greeks work --------------------------------------------------

def _stage_drivers():
    """The driver, compiled against the engine's current internals (raises if they changed)."""
    from mcgreeks import payoffs as P
    from mcgreeks.engine import brownian_tile
    from mcgreeks.models import gbm as model
    from mcgreeks.pricers.gbm import N_Q, _fill

    geometric = P.ASIAN_GEOMETRIC

    @njit
    def stage(level, key0, key1, n_tiles, grid, s0, rate, div, vol, ti, tf, fix_idx):
        """level 0: RNG; 1: + Brownian path; 2: + payoff walk; 3: + tangent walk;
        4: + scores; 5: + the control's walks.  (The rest, estimates and moments, is the
        engine's chunk kernel minus level 5.)"""
        w = np.empty((grid.size, TILE))
        z = np.empty(TILE)
        q = np.empty((N_Q, TILE))
        q_x = np.empty((N_Q, TILE))
        mu = model.log_drift(rate, div, vol)
        kind = ti[0, P.KIND]
        acc = 0.0
        for tile in range(n_tiles):
            path = np.uint64(tile * TILE)
            if level == 0:
                for k in range(grid.size):
                    R.fill_normals(key0, key1, np.uint64(0), path, np.uint64(k), z)
                    acc += z[0]
                continue
            brownian_tile(key0, key1, np.uint64(0), path, TILE, grid, z, w)
            if level == 1:
                acc += w[grid.size - 1, 0]
                continue
            _fill(kind, ti[0], tf[0], fix_idx, grid, w, TILE, s0, mu, vol, level >= 3,
                  level >= 4, q)
            if level == 5:
                _fill(geometric, ti[0], tf[0], fix_idx, grid, w, TILE, s0, mu, vol, True, True,
                      q_x)
            acc += q[0, 0]
        return acc

    return stage


STAGES = ("random numbers (Philox + inverse normal)", "Brownian path W on the grid",
          "payoff walk (one exp per date)", "tangent walk (a second exp per date)",
          "likelihood-ratio scores", "control: the geometric twin's walks",
          "estimates, moments, merge (chunk kernel - the above)")


def decomposition(n_paths=1 << 15, payoff="asian_arithmetic", greeks=True):
    """Per-stage single-thread cost (ns per path-step) of one call (252 fixings for the Asian)
    with the estimators mcgreeks' auto chooses (``greeks``) or the price alone, plus the
    engine's chunk kernel at 1 and 2 threads and (with Greeks) ``price_portfolio`` end to end.
    Returns a dict, or {"error": why} if the internals changed."""
    from benchmarks import cases
    try:
        from mcgreeks import underlying

        trades, market = cases.trades(payoff), cases.gbm_market()
        row = cases.mcgreeks_all(trades, market, 4096).iloc[0]
        chosen = {g: row["method_" + g] for g in cases.GBM_GREEKS} if greeks else {}
        n_tiles = n_paths // TILE
        job = underlying.pilot(cases.mcgreeks_job(trades, market, n_tiles * TILE,
                                                  methods=chosen))
        control = job.records[0]["control"]
        grid, ti, tf, fix_idx = job.arrays
        p = job.params
        stage = _stage_drivers()
        args = (np.uint64(1), np.uint64(2), n_tiles, grid, p["spot"], p["rate"], p["div_yield"],
                p["vol"], ti, tf, fix_idx)
        # without Greeks: no tangents, no scores; without a control: no twin
        levels = [0, 1, 2] + ([3, 4] if greeks else []) + ([5] if control and greeks else [])
        timed_levels = {level: best_time(stage, level, *args) for level in levels}
        cumulative, last = [], 0.0
        for level in range(6):
            last = timed_levels.get(level, last)
            cumulative.append(last)

        def chunk_kernel():
            underlying.simulate(job, 0, n_tiles * TILE)

        def end_to_end():
            cases.mcgreeks_all(trades, market, n_tiles * TILE)

        result = {"methods": chosen, "n_paths": n_tiles * TILE, "steps": int(grid.size),
                  "payoff": payoff}
        steps = n_tiles * TILE * grid.size
        saved = numba.get_num_threads()
        try:
            for threads in (1, 2):
                numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
                result[f"chunk_{threads}"] = 1e9 * best_time(chunk_kernel) / steps
                if greeks:
                    result[f"portfolio_{threads}"] = 1e9 * best_time(end_to_end) / steps
        finally:
            numba.set_num_threads(saved)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    per_step = [1e9 * c / steps for c in cumulative] + [result["chunk_1"]]
    result["stages"] = [(STAGES[0], per_step[0])] + [
        (STAGES[i], per_step[i] - per_step[i - 1]) for i in range(1, 7)
        if i in levels or i == 6]
    result["stage_total"] = per_step[6]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1 << 15)
    args = parser.parse_args()
    for name, value in limits(args.paths).items():
        print(f"{name:30s} {value:,.4g}" if not isinstance(value, bool) else f"{name:30s} {value}")
    for payoff, greeks, n in (("asian_arithmetic", True, args.paths),
                              ("european", False, 64 * args.paths)):
        d = decomposition(n, payoff, greeks)
        print(f"-- {payoff}, {'all Greeks' if greeks else 'price only'}")
        if "error" in d:
            print("decomposition skipped:", d["error"])
            continue
        print("methods", d["methods"])
        for name, ns in d["stages"]:
            print(f"{name:55s} {ns:6.2f} ns/path-step")
        print(f"{'total = chunk kernel, 1 thread':55s} {d['stage_total']:6.2f}")
        for threads in (1, 2):
            print(f"chunk kernel, {threads} thread(s): {d[f'chunk_{threads}']:6.2f} ns/path-step"
                  + (f"; price_portfolio: {d[f'portfolio_{threads}']:6.2f}" if greeks else ""))


if __name__ == "__main__":
    main()
