"""mcgreeks benchmark suite: mcgreeks vs a NumPy engine vs QuantLib (and FinancePy), same work.

    python benchmarks/run.py [--quick] [--out DIR]

Everything that compares libraries runs in this one process on this machine: paths/s and
path-steps/s for the price alone and with all Greeks; time to reach a target standard error on
every Greek (measured time × (SE / target)², the fair comparison across estimators and
libraries); scaling with numba threads, paths, fixings and portfolio size; the generator and
exp limit for price-only GBM.  Peak memory (max RSS) and JIT cold start are measured in fresh
subprocesses, as they must be.  Before measuring, the NumPy engine's correctness tests
(``benchmarks/test_numpy_engine.py``) and sanity checks of the peers run; a failure stops the run.

Writes DIR/RESULTS.md and PNG plots (default DIR: benchmarks/results), keeping the sections
other scripts wrote there, and last runs ``benchmarks/stac_like.py`` (its own section).  ``--quick`` (about two
minutes) uses fewer paths and sizes; the full run takes about 10-15 minutes on 2 cores.
FinancePy runs in the full mode only, when importable (see ``benchmarks/peers.py``).
"""
import argparse
import contextlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numba  # noqa: E402
import numpy as np  # noqa: E402

#: Relative precision every Greek is asked for in the time-to-target table: SE = 0.1 % of |value|.
REL_TARGET = 1e-3
THREADS = 2

MODES = {
    # seconds aimed at per timed run (paths are calibrated to it), sizes of the scaling sweeps
    "quick": dict(seconds=0.6, ql_seconds=2.0, repeats=2, batches=16,
                  paths_sweep=[1_000, 10_000, 100_000], steps_sweep=[1, 12, 52, 252],
                  portfolio_sweep=[1, 4, 16], memory_paths=[10**4, 10**5, 10**6, 10**7],
                  memory_asian_paths=[], memory_numpy_paths=[10**4, 10**7], financepy=False,
                  profile=False),
    "full": dict(seconds=2.5, ql_seconds=10.0, repeats=3, batches=32,
                 paths_sweep=[1_000, 10_000, 100_000, 1_000_000],
                 steps_sweep=[1, 4, 12, 52, 252, 1000], portfolio_sweep=[1, 4, 16, 64],
                 memory_paths=[10**4, 10**5, 10**6, 10**7],
                 memory_asian_paths=[10**4, 10**5, 10**6], memory_numpy_paths=[10**4, 10**5,
                                                                              10**6, 10**7],
                 financepy=True, profile=True),
}

LIBS = ("mcgreeks", "NumPy", "QuantLib", "QuantLib+CV", "FinancePy")


def log(*args):
    print(*args, flush=True)


# -- machine ------------------------------------------------------------------------------------

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__,
                "numba": numba.__version__}
    for name, module in (("llvmlite", "llvmlite"), ("QuantLib", "QuantLib"),
                         ("pandas", "pandas"), ("matplotlib", "matplotlib"),
                         ("mcgreeks", "mcgreeks")):
        try:
            mod = __import__(module)
            versions[name] = getattr(mod, "__version__", "?")
        except ImportError:
            versions[name] = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "threading_layer": None, "platform": platform.platform(), "versions": versions,
            "load_before": os.getloadavg()}


# -- timing helpers -----------------------------------------------------------------------------

def timed(fn, repeats=1):
    """(best seconds, result of the last call)."""
    best, result = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def calibrate(fn, seconds, n0, lo, hi, quantum=4096):
    """Paths so that fn(paths) takes about ``seconds``.  Grows n from n0 until a run takes a
    third of the budget, so fixed costs (pilot, Python layer, compilation on the first call)
    do not pass for per-path costs; then scales linearly."""
    n = n0
    while True:
        t, _ = timed(lambda: fn(n))
        if t >= seconds / 3 or n >= hi:
            break
        n = int(n * min(16.0, max(2.0, seconds / 3 / max(t, 1e-6))))
    n = seconds / max(t, 1e-6) * n
    n = int(min(max(n, lo), hi)) // quantum * quantum
    return max(n, quantum)


@contextlib.contextmanager
def _guard(add=None, what="section"):
    """Run a report section or plot; on an error, log it (and note it in the report) and go on.
    Other engineers change mcgreeks while this runs: one broken part must not lose the rest."""
    try:
        yield
    except Exception as exc:
        msg = f"{what} failed: {type(exc).__name__}: {exc}"
        log("  " + msg)
        if add is not None:
            add(f"_({msg})_\n")


def guarded(name, fn, *args):
    """fn(*args), or {"error": why} if it raises (logged)."""
    try:
        return fn(*args)
    except Exception as exc:
        import traceback
        log(f"  {name} failed: {type(exc).__name__}: {exc}")
        log(traceback.format_exc(limit=-3))
        return {"error": f"{type(exc).__name__}: {exc}"}


@contextlib.contextmanager
def threads(n):
    saved = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(saved)


# -- the libraries on the cases -----------------------------------------------------------------

def mcgreeks_greeks(case, n, trades=None):
    """mcgreeks on a case, all Greeks.  GBM cases use the NumPy baseline's estimators
    (pathwise, mixed gamma), so both do the same work; mcgreeks' auto would take its optimal
    blend instead, whose extra variance cut EFFICIENCY.md measures."""
    from benchmarks import cases as C
    from benchmarks.numpy_engine import METHODS
    if case == "heston":
        return C.mcgreeks_all(C.trades("european", underlying="H"), C.heston_market(), n,
                              steps_per_year=C.HESTON_STEPS / C.MATURITY)
    payoff = "european" if case == "european" else "asian_arithmetic"
    table = trades if trades is not None else C.trades(payoff)
    return C.mcgreeks_all(table, C.gbm_market(), n, method=dict(METHODS))


def row_values(row, quantities):
    return {q: (float(row[q]), float(row[q + "_se"])) for q in quantities}


def numpy_run(case, n, greeks, methods=None, strikes=None, n_fixings=None):
    from benchmarks import cases as C
    from benchmarks.numpy_engine import gbm_mc
    payoff = "european" if case == "european" else "asian_arithmetic"
    return gbm_mc(payoff=payoff, spot=C.GBM["spot"], rate=C.GBM["rate"], vol=C.GBM["vol"],
                  div_yield=C.GBM["div_yield"], maturity=C.MATURITY,
                  strike=C.STRIKE if strikes is None else strikes,
                  n_fixings=n_fixings or C.N_FIXINGS, n_paths=n, seed=7, greeks=greeks,
                  methods=methods)


def quantlib_run(case, n, greeks, batches, control_variate=False):
    from benchmarks import cases as C, peers
    if case == "heston":
        return peers.heston(strike=C.STRIKE, days=C.DAYS, n_steps=C.HESTON_STEPS, n_paths=n,
                            greeks=greeks, batches=batches if greeks else 1, **C.HESTON)
    payoff = "european" if case == "european" else "asian_arithmetic"
    return peers.gbm(payoff=payoff, strike=C.STRIKE, days=C.DAYS,
                     n_fixings=C.N_FIXINGS if case == "asian" else 1, n_paths=n, greeks=greeks,
                     batches=batches if greeks else 1, control_variate=control_variate,
                     spot=C.GBM["spot"], rate=C.GBM["rate"], vol=C.GBM["vol"],
                     div_yield=C.GBM["div_yield"])


def references():
    """Reference values of every quantity (targets are REL_TARGET of their magnitude)."""
    from benchmarks import cases as C
    from mcgreeks.analytic import black_scholes, heston
    euro = black_scholes.european(spot=C.GBM["spot"], strike=C.STRIKE, maturity=C.MATURITY,
                                  rate=C.GBM["rate"], vol=C.GBM["vol"],
                                  div_yield=C.GBM["div_yield"])
    hest = heston.heston_european(strike=C.STRIKE, maturity=C.MATURITY, **C.HESTON)
    # The Asian has no closed form: mcgreeks with many paths (its control variate makes the
    # SEs tiny), filled in by measure_greeks.
    return {"european": {q: float(euro[q]) for q in ("price",) + C.GBM_GREEKS},
            "heston": {q: float(hest[q]) for q in ("price",) + C.HESTON_GREEKS}}


# -- 1. correctness before speed ----------------------------------------------------------------

def run_checks():
    """The NumPy engine's tests and the peers' sanity checks; raises AssertionError on failure."""
    import inspect

    from benchmarks import cases as C, peers, test_numpy_engine as T
    from mcgreeks.analytic import black_scholes
    names = []
    for name, fn in sorted(vars(T).items()):
        if not name.startswith("test_") or not callable(fn):
            continue
        marks = getattr(fn, "pytestmark", [])
        params = [m for m in marks if m.name == "parametrize"]
        if not params:
            fn()
            names.append(name)
            continue
        # expand stacked parametrize marks into their cartesian product
        combos = [{}]
        for mark in params:
            argnames = [a.strip() for a in mark.args[0].split(",")]
            new = []
            for values in mark.args[1]:
                values = values if len(argnames) > 1 else (values,)
                for c in combos:
                    new.append(dict(c, **dict(zip(argnames, values))))
            combos = new
        sig = inspect.signature(fn)
        for c in combos:
            fn(**{k: v for k, v in c.items() if k in sig.parameters})
            names.append(f"{name}{sorted(c.items())}")
    checks = [f"NumPy engine: {len(names)} tests of benchmarks/test_numpy_engine.py passed"]

    ok, why = peers.available()
    if ok:
        r = quantlib_run("european", 160_000, True, 16)
        ref = black_scholes.european(spot=C.GBM["spot"], strike=C.STRIKE, maturity=C.MATURITY,
                                     rate=C.GBM["rate"], vol=C.GBM["vol"],
                                     div_yield=C.GBM["div_yield"])
        worst = max(abs(r[q] - ref[q]) / r[q + "_se"] for q in peers.GBM_QUANTITIES)
        assert worst < 4.5, f"QuantLib European bump Greeks vs Black-Scholes: {worst:.2f} SE"
        checks.append(f"QuantLib European price and bump Greeks within {worst:.2f} SE of "
                      "Black-Scholes")
        h = quantlib_run("heston", 4_000, False, 1)
        exact = peers.heston_analytic_price(strike=C.STRIKE, days=C.DAYS, **C.HESTON)
        z = (h["price"] - exact) / h["price_se"]
        assert abs(z) < 4.5, f"QuantLib Heston MC vs AnalyticHestonEngine: {z:.2f} SE"
        checks.append(f"QuantLib Heston MC price within {abs(z):.2f} SE of its analytic engine")
    return checks


# -- 2. throughput and time to target SE ----------------------------------------------------------

def measure_greeks(mode, refs):
    """Per case and library: seconds, paths, and the values with SEs, price only and all Greeks."""
    from benchmarks import cases as C, peers
    cfg = MODES[mode]
    out = {}
    ql_ok, ql_why = peers.available()
    heston_ok, heston_why = C.heston_status()
    for case in ("european", "asian", "heston"):
        quantities = ("price",) + (C.HESTON_GREEKS if case == "heston" else C.GBM_GREEKS)
        res = {}
        steps = 1 if case == "european" else 252
        # mcgreeks and NumPy: paths calibrated first, then their timed runs alternate (best of
        # ``repeats`` each), so a burst of other work on the machine hits both alike
        runs = {}              # (lib, what) -> callable; best seconds and last result kept
        if case != "heston" or heston_ok:
            with threads(THREADS):
                n_mc = calibrate(lambda k: mcgreeks_greeks(case, k), cfg["seconds"], 8192,
                                 16_384, 8_000_000 if case == "european" else 1_000_000)
            runs["mcgreeks", "greeks"] = lambda: mcgreeks_greeks(case, n_mc)
            if case != "heston":
                payoff = "european" if case == "european" else "asian_arithmetic"
                runs["mcgreeks", "price"] = lambda: C.mcgreeks_price_only(
                    C.trades(payoff), C.gbm_market(), n_mc)
            else:
                runs["mcgreeks", "price"] = lambda: C.mcgreeks_price_only(
                    C.trades("european", underlying="H"), C.heston_market(), n_mc,
                    steps_per_year=C.HESTON_STEPS / C.MATURITY)
                # the tangent kernel's speed: auto takes fd for d_* here (Feller ratio < 1/2)
                runs["mcgreeks", "pathwise"] = lambda: C.mcgreeks_all(
                    C.trades("european", underlying="H"), C.heston_market(), n_mc,
                    steps_per_year=C.HESTON_STEPS / C.MATURITY, method="pathwise")
        else:
            res["mcgreeks"] = dict(missing=heston_why)
        if case != "heston":
            # NumPy does the estimators mcgreeks' auto chose (GBM only)
            with threads(THREADS):
                row = mcgreeks_greeks(case, 8192).iloc[0]
            methods = {g: row["method_" + g] for g in C.GBM_GREEKS}
            n_np = calibrate(lambda k: numpy_run(case, k, True, methods), cfg["seconds"], 8192,
                             8192, 8_000_000 if case == "european" else 400_000)
            runs["NumPy", "greeks"] = lambda: numpy_run(case, n_np, True, methods)
            runs["NumPy", "price"] = lambda: numpy_run(case, n_np, False)
        best, last = {}, {}
        with threads(THREADS):
            for _ in range(cfg["repeats"]):
                for key, fn in runs.items():
                    try:
                        t, last[key] = timed(fn)
                    except RuntimeError as exc:          # the engine's internals moved
                        log(f"  {key[0]} {key[1]}: {exc}")
                        continue
                    best[key] = min(best.get(key, math.inf), t)
        if ("mcgreeks", "greeks") in best:
            row = last["mcgreeks", "greeks"].iloc[0]
            res["mcgreeks"] = dict(greeks=dict(
                seconds=best["mcgreeks", "greeks"], n_paths=n_mc,
                values=row_values(row, quantities),
                methods={g: row["method_" + g] for g in C.GBM_GREEKS} if case != "heston"
                else {}))
            if ("mcgreeks", "price") in best:
                res["mcgreeks"]["price"] = dict(seconds=best["mcgreeks", "price"], n_paths=n_mc,
                                                se=float(last["mcgreeks", "price"][1][0]))
            if ("mcgreeks", "pathwise") in best:
                res["mcgreeks"]["pathwise"] = dict(seconds=best["mcgreeks", "pathwise"],
                                                   n_paths=n_mc)
        if case == "asian":
            refs["asian"] = {q: v for q, (v, _) in res["mcgreeks"]["greeks"]["values"].items()}
        if ("NumPy", "greeks") in best:
            r, rp = last["NumPy", "greeks"], last["NumPy", "price"]
            res["NumPy"] = dict(greeks=dict(seconds=best["NumPy", "greeks"], n_paths=n_np,
                                            values={q: (r[q], r[q + "_se"]) for q in quantities},
                                            methods={g: r["method_" + g] for g in C.GBM_GREEKS}),
                                price=dict(seconds=best["NumPy", "price"], n_paths=n_np,
                                           se=rp["price_se"]))
        # QuantLib
        if ql_ok:
            variants = [("QuantLib", False)] + ([("QuantLib+CV", True)] if case == "asian" else [])
            for name, cv in variants:
                per_pricing = 17 if case == "heston" else 9
                b = cfg["batches"]
                n = calibrate(lambda k: quantlib_run(case, k, False, 1, cv),
                              cfg["ql_seconds"] / per_pricing, 1024 if steps > 1 else 16384,
                              b * 64, 4_000_000)
                n = max(n // b * b, b * 64)
                r = quantlib_run(case, n, True, b, cv)
                rp = quantlib_run(case, n, False, 1, cv)
                res[name] = dict(greeks=dict(seconds=r["seconds"], n_paths=r["n_paths"],
                                             values={q: (r[q], r[q + "_se"]) for q in quantities},
                                             pricings=r["pricings"]),
                                 price=dict(seconds=rp["seconds"], n_paths=rp["n_paths"],
                                            se=rp["price_se"]))
        else:
            res["QuantLib"] = dict(missing=ql_why)
        out[case] = res
        log(f"  {case}: " + ", ".join(
            f"{lib} {v['greeks']['n_paths'] / v['greeks']['seconds']:,.0f} paths/s"
            for lib, v in res.items() if "greeks" in v))
    return out


def time_to_target(results, refs):
    """{case: {lib: {quantity: seconds to SE = REL_TARGET·|ref|}}} from the all-Greeks runs."""
    out = {}
    for case, res in results.items():
        out[case] = {}
        for lib, v in res.items():
            if "greeks" not in v:
                continue
            g = v["greeks"]
            per = {}
            for q, (_, se) in g["values"].items():
                target = REL_TARGET * abs(refs[case][q])
                per[q] = g["seconds"] * (se / target) ** 2 if target > 0 else math.nan
            per["all"] = max(per.values())
            out[case][lib] = per
    return out


def financepy_runs(mode):
    """FinancePy's parallel European kernel: pairs/s, and the price SE from independent seeds."""
    from benchmarks import cases as C, peers
    if not MODES[mode]["financepy"]:
        return dict(missing="skipped in --quick (its import compiles for about a minute on a "
                            "cold cache)")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):     # it prints a banner on import
        kernel, why = peers.financepy_kernel()
    if kernel is None:
        return dict(missing=why)
    import_seconds = time.perf_counter() - t0
    kw = dict(spot=C.GBM["spot"], strike=C.STRIKE, maturity=C.MATURITY, rate=C.GBM["rate"],
              vol=C.GBM["vol"], div_yield=C.GBM["div_yield"])
    n = 4_000_000
    best = {"financepy": math.inf, "mcgreeks": math.inf, "antithetic": math.inf}
    se_mc = se_anti = math.nan
    with threads(THREADS):
        peers.financepy_european(kernel, n_paths=10_000, **kw)      # compile / load
        for _ in range(3):        # alternate with mcgreeks' price-only European: n paths, and
            # n antithetic pairs (FinancePy's n pairs are 2n payoffs)
            t, _ = timed(lambda: peers.financepy_european(kernel, n_paths=n, **kw))
            best["financepy"] = min(best["financepy"], t)
            try:
                t, (_, se) = timed(lambda: C.mcgreeks_price_only(C.trades("european"),
                                                                  C.gbm_market(), n))
                best["mcgreeks"], se_mc = min(best["mcgreeks"], t), float(se[0])
                t, (_, se) = timed(lambda: C.mcgreeks_price_only(
                    C.trades("european"), C.gbm_market(), 2 * n, sampler="antithetic"))
                best["antithetic"], se_anti = min(best["antithetic"], t), float(se[0])
            except RuntimeError as exc:
                log(f"  mcgreeks price only: {exc}")
        # its SE from the spread of 256 independent runs of n/64 pairs: the spread of 16 runs
        # (this benchmark until 2026-12-07) is itself uncertain by ~18%, the ratio by ~40%
        prices = [peers.financepy_european(kernel, n_paths=n // 64, seed=100 + s, **kw)
                  for s in range(256)]
    se_small = float(np.std(prices, ddof=1))          # SE of one run of n/64 pairs
    return dict(seconds=best["financepy"], n_pairs=n, import_seconds=import_seconds,
                price_se=se_small / math.sqrt(64), price=float(np.mean(prices)),
                mcgreeks_seconds=best["mcgreeks"], mcgreeks_n=n, mcgreeks_se=se_mc,
                antithetic_seconds=best["antithetic"], antithetic_n=2 * n,
                antithetic_se=se_anti)


# -- 3. scaling -----------------------------------------------------------------------------------

def scaling_threads(mode):
    """mcgreeks paths/s on 1 and 2 numba threads; the thread counts alternate run by run (best
    of ``repeats`` each), so a burst of other work on the machine hits both alike."""
    from benchmarks import cases as C
    cfg = MODES[mode]
    out = {}
    for case, payoff in (("european", "european"), ("asian", "asian_arithmetic")):
        n = 2_000_000 if case == "european" else 100_000
        if mode == "quick":
            n //= 2
        best = {(th, what): math.inf for th in (1, 2) for what in ("greeks", "price")}
        for rep in range(cfg["repeats"] + 1):
            for th in (1, 2):
                with threads(th):
                    if rep == 0:                       # warm-up (compilation, caches)
                        mcgreeks_greeks(case, 8192)
                        continue
                    t, _ = timed(lambda: mcgreeks_greeks(case, n))
                    best[th, "greeks"] = min(best[th, "greeks"], t)
                    try:
                        t, _ = timed(lambda: C.mcgreeks_price_only(C.trades(payoff),
                                                                   C.gbm_market(), n))
                        best[th, "price"] = min(best[th, "price"], t)
                    except RuntimeError as exc:          # the engine's internals moved
                        log(f"  mcgreeks price only: {exc}")
        out[case] = {th: {what: n / best[th, what] for what in ("greeks", "price")}
                     for th in (1, 2)}
    return out


def scaling_paths(mode, methods):
    cfg = MODES[mode]
    out = {"mcgreeks": {}, "NumPy": {}}
    with threads(THREADS):
        for n in cfg["paths_sweep"]:
            t, _ = timed(lambda: mcgreeks_greeks("asian", n), cfg["repeats"])
            out["mcgreeks"][n] = t
            t, _ = timed(lambda: numpy_run("asian", n, True, methods), cfg["repeats"])
            out["NumPy"][n] = t
    return out


def scaling_steps(mode):
    from benchmarks import cases as C
    cfg = MODES[mode]
    out = {"mcgreeks": {}, "NumPy": {}, "methods": {}}
    with threads(THREADS):
        for n_fix in cfg["steps_sweep"]:
            n = int(min(400_000, max(8192, 2e7 / n_fix))) if mode == "full" else \
                int(min(100_000, max(4096, 5e6 / n_fix)))
            table = C.trades("asian_arithmetic", n_fixings=n_fix)
            mcgreeks_greeks("asian", 4096, table)
            t, res = timed(lambda: mcgreeks_greeks("asian", n, table), cfg["repeats"])
            methods = {g: res.iloc[0]["method_" + g] for g in C.GBM_GREEKS}
            out["mcgreeks"][n_fix] = n * n_fix / t
            t, _ = timed(lambda: numpy_run("asian", n, True, methods, n_fixings=n_fix),
                         cfg["repeats"])
            out["NumPy"][n_fix] = n * n_fix / t
            out["methods"][n_fix] = methods
    return out


def scaling_portfolio(mode, methods):
    from benchmarks import cases as C
    cfg = MODES[mode]
    out = {"mcgreeks": {}, "NumPy": {}}
    n = 20_000
    with threads(THREADS):
        for k in cfg["portfolio_sweep"]:
            strikes = list(np.linspace(80.0, 120.0, k)) if k > 1 else [C.STRIKE]
            table = C.trades("asian_arithmetic", strikes=strikes)
            mcgreeks_greeks("asian", 4096, table)
            t, _ = timed(lambda: mcgreeks_greeks("asian", n, table),
                         cfg["repeats"] if k < 16 else 1)
            out["mcgreeks"][k] = t
            t, _ = timed(lambda: numpy_run("asian", n, True, methods, strikes=np.array(strikes)),
                         cfg["repeats"])
            out["NumPy"][k] = t
    out["n_paths"] = n
    return out


# -- 4. subprocesses: peak memory, cold start ---------------------------------------------------

_CHILD_MEMORY = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
engine, case, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
from benchmarks import cases as C
from benchmarks.run import mcgreeks_greeks, numpy_run
import numba
numba.set_num_threads(min({threads}, numba.config.NUMBA_NUM_THREADS))
# warm up on a tiny run so that the baseline includes compiled code and imports
if engine == "mcgreeks":
    mcgreeks_greeks(case, 256)
elif engine == "NumPy":
    numpy_run(case, 256, True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if n:
    if engine == "mcgreeks":
        mcgreeks_greeks(case, n)
    else:
        numpy_run(case, n, True)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open("/proc/self/status") as f:
    hwm = int(f.read().split("VmHWM:")[1].split()[0])
print(json.dumps(dict(base_kib=base, peak_kib=peak, hwm_kib=hwm, seconds=seconds)))
"""


def _child(code, args, env=None, timeout=900):
    """Run ``python -c code args`` in a fresh process and parse the JSON it prints last.

    Linux carries a process's max-RSS record across fork and exec (the kernel keeps the larger of
    the old address space's high-water mark), so a child started straight from this process
    would report *this* process's peak.  A shell in between, which forks before it execs
    Python, gives the child a clean record."""
    cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-c", code]
    out = subprocess.run(cmd + [str(a) for a in args], cwd=ROOT,
                         env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_memory(mode):
    cfg = MODES[mode]
    code = _CHILD_MEMORY.format(root=ROOT, threads=THREADS)
    out = {}
    runs = [("mcgreeks", "european", cfg["memory_paths"]),
            ("mcgreeks", "asian", cfg["memory_asian_paths"]),
            ("NumPy", "european", cfg["memory_numpy_paths"])]
    for engine, case, sweep in runs:
        if not sweep:
            continue
        key = f"{engine} {case}"
        out[key] = {}
        for n in sweep:
            r = _child(code, [engine, case, n])
            out[key][n] = r
            log(f"  memory {key} {n:>9,}: peak {r['peak_kib'] / 1024:7.1f} MiB "
                f"(after warm-up {r['base_kib'] / 1024:7.1f} MiB), {r['seconds']:.2f} s")
    return out


_CHILD_START = """
import time
t0 = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
import mcgreeks
from benchmarks import cases as C
t1 = time.perf_counter()
C.mcgreeks_all(C.trades({payoff!r}), C.gbm_market(), 10_000)
t2 = time.perf_counter()
C.mcgreeks_all(C.trades({payoff!r}), C.gbm_market(), 10_000)
t3 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, first=t2 - t1, second=t3 - t2)))
"""


def cold_start():
    out = {}
    for payoff in ("european", "asian_arithmetic"):
        code = _CHILD_START.format(root=ROOT, payoff=payoff)
        cache = tempfile.mkdtemp(prefix="mcgreeks-bench-cache-")
        try:
            t = time.perf_counter()
            cold = _child(code, [], env={"NUMBA_CACHE_DIR": cache})
            cold["process"] = time.perf_counter() - t
            t = time.perf_counter()
            warm = _child(code, [], env={"NUMBA_CACHE_DIR": cache})
            warm["process"] = time.perf_counter() - t
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        out[payoff] = dict(cold=cold, warm=warm)
        log(f"  cold start {payoff}: first call {cold['first']:.2f} s cold, "
            f"{warm['first']:.2f} s warm")
    return out


# -- 5. limits and profile ------------------------------------------------------------------------

def _best_limits(first, second):
    """Two passes of ``profile_engine.limits`` merged entry by entry: the faster of each speed
    (rates the larger, ``*_ns`` costs the smaller), since other work on the machine can only slow
    a pass (on 2026-12-07 a disturbed pass put the 2-thread limit at 317 M path-steps/s against
    570 M, and the Asian above its limit)."""
    out = dict(first)
    for key, value in second.items():
        if not isinstance(value, float) or not isinstance(first.get(key), float) or \
                key.endswith("fraction"):
            continue
        out[key] = min(first[key], value) if key.endswith("_ns") else max(first[key], value)
    return out


def limits_and_profile(mode):
    from benchmarks import profile_engine
    n_paths = 1 << 15 if mode == "quick" else 1 << 16
    out = {"limits": profile_engine.limits(n_paths)}
    if MODES[mode]["profile"]:
        out["profile"] = profile_engine.decomposition(1 << 15)
        from benchmarks import kernel_prototypes
        try:
            out["prototypes"] = kernel_prototypes.measure()
        except Exception as exc:            # internals moved
            out["prototypes"] = {"error": f"{type(exc).__name__}: {exc}"}
        out["european_profile"] = profile_engine.decomposition(1 << 21, "european", False)
        try:
            out["inlined"] = kernel_prototypes.inlined_comparison()
        except Exception as exc:            # internals moved
            out["inlined"] = {"error": f"{type(exc).__name__}: {exc}"}
    # a second pass, minutes later
    out["limits"] = _best_limits(out["limits"], profile_engine.limits(n_paths))
    return out


# -- report -----------------------------------------------------------------------------------------

def fmt_rate(x):
    if x is None or not np.isfinite(x):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def fmt_s(x):
    if x is None or not np.isfinite(x):
        return "—"
    if x >= 100:
        return f"{x:,.0f} s"
    if x >= 1:
        return f"{x:.3g} s"
    return f"{x * 1e3:.3g} ms"


def headline(data):
    """The issue's headline ratios (each one left out if what it needs is missing)."""
    h = {}
    with _guard(what="headline: Asian vs NumPy"):
        g = data["greeks"]["asian"]
        m, n = g["mcgreeks"]["greeks"], g["NumPy"]["greeks"]
        h["asian_vs_numpy_paths"] = (m["n_paths"] / m["seconds"]) / (n["n_paths"] / n["seconds"])
    with _guard(what="headline: per core"):
        n = data["greeks"]["asian"]["NumPy"]["greeks"]
        h["asian_vs_numpy_per_core"] = data["threads"]["asian"][1]["greeks"] / \
            (n["n_paths"] / n["seconds"])
    with _guard(what="headline: time to target"):
        tt = data["targets"]["asian"]
        ql = [tt[k]["all"] for k in ("QuantLib", "QuantLib+CV") if k in tt]
        h["asian_vs_quantlib_time"] = min(ql) / tt["mcgreeks"]["all"]
        if "QuantLib+CV" in tt:
            h["asian_vs_quantlib_cv_per_quantity"] = {
                q: tt["QuantLib+CV"][q] / tt["mcgreeks"][q] for q in tt["mcgreeks"] if q != "all"}
        h["asian_vs_quantlib_plain_time"] = tt["QuantLib"]["all"] / tt["mcgreeks"]["all"] \
            if "QuantLib" in tt else math.nan
        h["asian_vs_numpy_time"] = tt["NumPy"]["all"] / tt["mcgreeks"]["all"] \
            if "NumPy" in tt else math.nan
    with _guard(what="headline: FinancePy"):
        fp = data.get("financepy", {})
        if "seconds" in fp:
            e = data["greeks"]["european"]["mcgreeks"]["price"]
            if np.isfinite(fp.get("mcgreeks_seconds", math.nan)):   # the alternated runs
                e = dict(n_paths=fp["mcgreeks_n"], seconds=fp["mcgreeks_seconds"],
                         se=fp["mcgreeks_se"])
            mc_rate = e["n_paths"] / e["seconds"]
            h["euro_vs_financepy_pairs"] = mc_rate / (fp["n_pairs"] / fp["seconds"])
            h["euro_vs_financepy_payoffs"] = mc_rate / (2 * fp["n_pairs"] / fp["seconds"])
            # time to the same price SE (the antithetic pairs' lower variance counted)
            h["euro_vs_financepy_time"] = (fp["seconds"] * fp["price_se"] ** 2) / \
                (e["seconds"] * e["se"] ** 2)
            if np.isfinite(fp.get("antithetic_seconds", math.nan)):     # both in pairs
                h["euro_anti_vs_financepy_time"] = (fp["seconds"] * fp["price_se"] ** 2) / \
                    (fp["antithetic_seconds"] * fp["antithetic_se"] ** 2)
    with _guard(what="headline: limit"):
        a = data["greeks"]["asian"]["mcgreeks"]["price"]
        h["asian_price_path_steps"] = a["n_paths"] * 252 / a["seconds"]
        h["limit_path_steps"] = data["limits"]["limits"][f"rng_exp_{THREADS}"]
    with _guard(what="headline: Heston limit"):
        hs = data["greeks"]["heston"]["mcgreeks"]
        steps = 252
        h["heston_limit_path_steps"] = data["limits"]["limits"][f"rng_qe_{THREADS}"]
        h["heston_price_path_steps"] = hs["price"]["n_paths"] * steps / hs["price"]["seconds"]
        h["heston_all_path_steps"] = hs["greeks"]["n_paths"] * steps / hs["greeks"]["seconds"]
        h["heston_pathwise_path_steps"] = hs["pathwise"]["n_paths"] * steps / \
            hs["pathwise"]["seconds"]
    return h


def write_report(data, out_dir, mode):
    from benchmarks.profile_engine import STAGES
    m = data["machine"]
    h = data["headline"]
    L = []
    add = L.append
    add("# mcgreeks benchmarks\n")
    add(f"Generated by `python benchmarks/run.py{' --quick' if mode == 'quick' else ''}` "
        f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(data['finished']))} "
        f"({'quick mode: fewer paths, smaller sweeps' if mode == 'quick' else 'full run'}; "
        f"{data['elapsed'] / 60:.1f} min).\n")
    with _guard(add):
        add("## Machine\n")
        add(f"- CPU: {m['cpu']}, {m['cores']} cores; numba threads available: "
            f"{m['numba_threads']}, threading layer `{m.get('threading_layer')}`")
        add(f"- {m['platform']}")
        add("- Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            + (f", FinancePy {data['financepy'].get('version')}"
               if "seconds" in data.get("financepy", {}) else ""))
        lb, la = m["load_before"], data["load_after"]
        add(f"- Load average (1/5/15 min) before: {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f}; "
            f"after: {la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}.  Other work on the machine during the "
            "run slows every library alike only to first order: mcgreeks' 2-thread figures suffer "
            "most when another process holds a core.\n")

    with _guard(add):
        add("## Headline\n")
        add("Arithmetic Asian call, 252 daily fixings, price + 5 Greeks with SEs, mcgreeks on "
            f"{THREADS} threads with the NumPy baseline's estimators (so that both do the same "
            "work; `auto` would take its optimal blend, whose extra variance cut EFFICIENCY.md "
            "measures) and the geometric control variate:\n")
        add("| measure | ratio | issue 7 target |\n|---|---|---|")
        if "asian_vs_numpy_paths" in h:
            add(f"| mcgreeks ÷ NumPy baseline, paths/s (same estimators, same control variate) | "
                f"**{h['asian_vs_numpy_paths']:.2f}×** | ≥ 5× (aim 10×) |")
        if "asian_vs_numpy_per_core" in h:
            add(f"| same, per core: mcgreeks on 1 thread ÷ NumPy (1 thread) | "
                f"{h['asian_vs_numpy_per_core']:.2f}× | |")
        if "asian_vs_quantlib_time" in h:
            add(f"| QuantLib with bumps ÷ mcgreeks, time to the same SE on every Greek "
                f"(QuantLib's better variant) | **{h['asian_vs_quantlib_time']:.1f}×** | "
                "≥ 50× (aim 100×) |")
            add(f"| same, QuantLib without its control variate | "
                f"{h['asian_vs_quantlib_plain_time']:.0f}× | |")
            add("| per quantity, QuantLib+CV ÷ mcgreeks | " + ", ".join(
                f"{q} {r:.0f}×" for q, r in h["asian_vs_quantlib_cv_per_quantity"].items()) + " | |")
            add(f"| NumPy ÷ mcgreeks, time to the same SE on every Greek | "
                f"{h['asian_vs_numpy_time']:.2f}× | |")
        if "euro_vs_financepy_pairs" in h:
            add(f"| European price only, mcgreeks paths/s ÷ FinancePy `value_mc_numba_parallel` "
                f"antithetic pairs/s | {h['euro_vs_financepy_pairs']:.2f}× | > 1× |")
            add(f"| same, ÷ FinancePy payoffs/s (2 per pair) | {h['euro_vs_financepy_payoffs']:.2f}× "
                "| |")
            add(f"| same, FinancePy ÷ mcgreeks time to the same price SE (FinancePy's SE from "
                f"the spread of 256 runs) | {h['euro_vs_financepy_time']:.2f}× | |")
            if "euro_anti_vs_financepy_time" in h:
                f = data["financepy"]
                add(f"| same, mcgreeks with `sampler=\"antithetic\"` (both in reflected pairs; "
                    f"the same estimator, so the SEs differ by noise alone: FinancePy's ÷ "
                    f"mcgreeks' {f['price_se'] / f['antithetic_se']:.3f} here, ± 0.044 from the "
                    f"256 runs; time per pair alone "
                    f"{f['seconds'] / f['antithetic_seconds'] * f['antithetic_n'] / (2 * f['n_pairs']):.2f}×) | "
                    f"{h['euro_anti_vs_financepy_time']:.2f}× | ≥ 1.5× |")
        else:
            add(f"| European price only vs FinancePy | not measured: "
                f"{data.get('financepy', {}).get('missing', '')} | > 1× |")
        if "asian_price_path_steps" in h:
            add(f"| Asian price only: mcgreeks path-steps/s ÷ the limit (its own generator + one "
                f"vectorized exp per step, {THREADS} threads) | {h['asian_price_path_steps'] / h['limit_path_steps']:.2f} "
                f"({fmt_rate(h['asian_price_path_steps'])} of {fmt_rate(h['limit_path_steps'])}) | "
                "≥ 0.5 |")
        if "heston_price_path_steps" in h:
            from benchmarks import cases as C
            lim = h["heston_limit_path_steps"]
            feller = 2 * C.HESTON["kappa"] * C.HESTON["vbar"] / C.HESTON["xi"] ** 2
            add(f"| Heston European (252 QE steps) ÷ the QE limit (its generator + the two logs and "
                f"three square roots of a step, {THREADS} threads): price only; price + all nine "
                f"sensitivities by `pathwise` (the tangent kernel); by `auto` (which takes fd "
                f"where the Feller ratio, here {feller:.2f}, is below 1/2) | "
                f"{h['heston_price_path_steps'] / lim:.2f} "
                f"({fmt_rate(h['heston_price_path_steps'])} of {fmt_rate(lim)}); "
                f"{h['heston_pathwise_path_steps'] / lim:.2f} "
                f"({fmt_rate(h['heston_pathwise_path_steps'])}); "
                f"{h['heston_all_path_steps'] / lim:.2f} ({fmt_rate(h['heston_all_path_steps'])}) "
                "| ≥ 0.5; ≥ 0.25 |")
        add("")

    with _guard(add):
        add("## Correctness checks (run first)\n")
        for c in data["checks"]:
            add(f"- {c}")
        add("")

    with _guard(add):
        add("## Throughput\n")
        add(f"Paths per second (path-steps per second = paths × dates). mcgreeks on {THREADS} numba "
            "threads, `price_portfolio` (GBM: the NumPy baseline's estimators; Heston: `auto`; its "
            "4,096-path pilot and the Python layer included); price only = the engine asked for the price slot alone. NumPy: one thread "
            "(`benchmarks/numpy_engine.py`). QuantLib: price only = one MC run; with Greeks = "
            "1 + 8 bumped runs per batch (Heston 1 + 16), counted once per path. Each path count "
            "was calibrated to a fixed time budget.\n")
        add("| case | library | paths | price only: paths/s | path-steps/s | all Greeks: paths/s "
            "| path-steps/s |")
        add("|---|---|---|---|---|---|---|")
        labels = {"european": "European (1 date)", "asian": "Asian (252 fixings)",
                  "heston": "Heston European (252 steps)"}
        for case, res in data["greeks"].items():
            steps = 1 if case == "european" else 252
            for lib in LIBS:
                v = res.get(lib)
                if v is None:
                    continue
                if "missing" in v:
                    add(f"| {labels[case]} | {lib} | — | not available: {v['missing']} | | | |")
                    continue
                p, g = v.get("price"), v["greeks"]
                pr = p["n_paths"] / p["seconds"] if p else math.nan
                gr = g["n_paths"] / g["seconds"]
                add(f"| {labels[case]} | {lib} | {g['n_paths']:,} | {fmt_rate(pr)} | "
                    f"{fmt_rate(pr * steps)} | {fmt_rate(gr)} | {fmt_rate(gr * steps)} |")
        fp = data.get("financepy", {})
        if "seconds" in fp:
            add(f"| European (1 date) | FinancePy (price only, antithetic) | {fp['n_pairs']:,} pairs "
                f"| {fmt_rate(fp['n_pairs'] / fp['seconds'])} pairs/s | "
                f"{fmt_rate(2 * fp['n_pairs'] / fp['seconds'])} payoffs/s | — | — |")
        add("")
        add("Estimators used by mcgreeks (and by the NumPy engine): " + "; ".join(
            f"{labels[c]}: " + ", ".join(f"{g} {e}" for g, e in
                                         res["mcgreeks"]["greeks"]["methods"].items())
            for c, res in data["greeks"].items()
            if "greeks" in res.get("mcgreeks", {}) and res["mcgreeks"]["greeks"]["methods"]) + ".\n")

    with _guard(add):
        add("## Time to a target standard error on every Greek\n")
        add(f"Target: SE = {REL_TARGET:.1%} of |value| for each quantity (value: closed form for the "
            "European and Heston, mcgreeks' own estimate for the Asian). Seconds = measured time × "
            "(measured SE / target)²; 'every Greek' is the largest, i.e. the run that meets all "
            "targets at once. Fixed costs (mcgreeks' pilot and Python layer) are scaled with the "
            "rest, which favours no one much at these run lengths.\n")
        for case, per_lib in data["targets"].items():
            libs = [lib for lib in LIBS if lib in per_lib]
            if not libs:
                continue
            quantities = [q for q in next(iter(per_lib.values())) if q != "all"]
            add(f"### {labels[case]}\n")
            add("| quantity | " + " | ".join(libs) + " |")
            add("|---|" + "---|" * len(libs))
            for q in quantities + ["all"]:
                cells = [fmt_s(per_lib[lib].get(q)) for lib in libs]
                name = "**every Greek**" if q == "all" else q
                add(f"| {name} | " + " | ".join(cells) + " |")
            add("")
            vals = {lib: data["greeks"][case][lib]["greeks"]["values"] for lib in libs}
            add("<details><summary>values ± SE behind this table</summary>\n")
            add("| quantity | " + " | ".join(libs) + " |")
            add("|---|" + "---|" * len(libs))
            for q in quantities:
                add(f"| {q} | " + " | ".join(f"{vals[lib][q][0]:.6g} ± {vals[lib][q][1]:.2g}"
                                              for lib in libs) + " |")
            add("\n</details>\n")
        miss = data["greeks"]["heston"].get("mcgreeks", {}).get("missing")
        if miss:
            add(f"mcgreeks Heston: **not yet available** — `price_portfolio` answers: `{miss}`. "
                "The harness detects it at run time and fills these rows once the Heston pricer "
                "lands.\n")
        add("QuantLib Greeks are central bump-and-revalue on common random numbers; their SEs come "
            f"from {MODES[mode]['batches']} independent batches (QuantLib estimates no error for a "
            "difference), so they carry about ±"
            f"{100 / math.sqrt(2 * (MODES[mode]['batches'] - 1)):.0f} % uncertainty themselves "
            "(±twice that on the seconds). QuantLib+CV is `MCDiscreteArithmeticAPEngine(controlVariate"
            "=True)`. Bump theta of the GBM cases scales the maturity through the quotes (see "
            "`peers.py`); the Heston theta moves the evaluation date by a day.\n")

    with _guard(add):
        add("## Scaling\n")
        st = data["threads"]
        add("### numba threads (mcgreeks, paths/s)\n")
        add("| case | mode | 1 thread | 2 threads | speed-up |\n|---|---|---|---|---|")
        for case, per in st.items():
            for what in ("price", "greeks"):
                a, b = per[1][what], per[2][what]
                add(f"| {labels[case]} | {'price only' if what == 'price' else 'all Greeks'} | "
                    f"{fmt_rate(a)} | {fmt_rate(b)} | {b / a:.2f}× |")
        add("")
        sp = data["paths"]
        add("### paths (Asian, all Greeks; seconds)\n")
        add("| paths | mcgreeks | NumPy | mcgreeks paths/s | NumPy paths/s |\n|---|---|---|---|---|")
        for n in sp["mcgreeks"]:
            a, b = sp["mcgreeks"][n], sp["NumPy"][n]
            add(f"| {n:,} | {fmt_s(a)} | {fmt_s(b)} | {fmt_rate(n / a)} | {fmt_rate(n / b)} |")
        add("")
        ss = data["steps"]
        add("### fixings (arithmetic Asian, all Greeks; path-steps/s)\n")
        add("| fixings | mcgreeks | NumPy | ratio | estimators (delta, gamma, vega, rho, "
            "theta) |\n|---|---|---|---|---|")
        for n in ss["mcgreeks"]:
            a, b = ss["mcgreeks"][n], ss["NumPy"][n]
            add(f"| {n} | {fmt_rate(a)} | {fmt_rate(b)} | {a / b:.2f}× | "
                + ", ".join(ss["methods"][n].values()) + " |")
        add("")
        so = data["portfolio"]
        add(f"### portfolio size (Asian calls, strikes 80–120, one underlying, {so['n_paths']:,} "
            "paths, all Greeks)\n")
        add("Trades on one underlying share paths in mcgreeks; the NumPy engine shares them too "
            "(an array of strikes).\n")
        add("| trades | mcgreeks | per trade | NumPy | per trade |\n|---|---|---|---|---|")
        for k in so["mcgreeks"]:
            a, b = so["mcgreeks"][k], so["NumPy"][k]
            add(f"| {k} | {fmt_s(a)} | {fmt_s(a / k)} | {fmt_s(b)} | {fmt_s(b / k)} |")
        add("")

    with _guard(add):
        add("## Peak memory (max RSS of a fresh process)\n")
        add("Each row is a new process that imports, warms up on 256 paths, then prices once; "
            "'growth' is the peak minus the RSS after the warm-up.\n")
        add("| engine, case (all Greeks) | paths | peak RSS | growth | seconds |\n|---|---|---|---|---|")
        for key, per in data["memory"].items():
            for n, r in per.items():
                add(f"| {key} | {int(n):,} | {r['peak_kib'] / 1024:.0f} MiB | "
                    f"{(r['peak_kib'] - r['base_kib']) / 1024:.1f} MiB | {r['seconds']:.2f} |")
        add("")

    with _guard(add):
        add("## JIT cold start (new process; seconds)\n")
        add("| trade | numba cache | imports | first call (10k paths) | second call | whole process |")
        add("|---|---|---|---|---|---|")
        for payoff, r in data["cold_start"].items():
            for which in ("cold", "warm"):
                x = r[which]
                add(f"| {payoff} | {'empty' if which == 'cold' else 'warm'} | {x['imports']:.2f} | "
                    f"{x['first']:.2f} | {x['second']:.3f} | {x['process']:.2f} |")
        add("")

    lim, prof = {}, None
    with _guard(add):
        lim = data["limits"]["limits"]
    with _guard(add):
        add("## The limits: price-only GBM and a Heston QE step\n")
        add("Micro-benchmarks in numba of what any GBM path price must do (`benchmarks/"
            "profile_engine.py`): the engine's own counter-based normals (`rng.fill_normals`: "
            "Threefry2x64-20 and the Box-Muller transform, each a branch-free loop vectorized "
            "over the paths of a tile, with the package's own log, cos and sin), and those plus one Brownian step and one `exp` per path-step by the engine's "
            "vectorizable `vecmath.exp` (the arithmetic-average floor).\n")
        if data["limits"].get("note"):
            add(data["limits"]["note"] + "\n")
        add("| kernel | 1 thread | 2 threads |\n|---|---|---|")
        add(f"| normals (`fill_normal_rows`, a tile's draws in one call), per second | "
            f"{fmt_rate(lim['rng_1'])} "
            f"({1e9 / lim['rng_1']:.2f} ns) | {fmt_rate(lim['rng_2'])} |")
        add(f"| normals + step + `vecmath.exp`, path-steps/s | {fmt_rate(lim['rng_exp_1'])} "
            f"({1e9 / lim['rng_exp_1']:.2f} ns) | {fmt_rate(lim['rng_exp_2'])} |")
        if "rng_qe_1" in lim:
            add(f"| Heston QE floor: 2 normals + 1 − U + 2 `rng.log` + 3 √ per path-step | "
                f"{fmt_rate(lim['rng_qe_1'])} ({1e9 / lim['rng_qe_1']:.2f} ns) | "
                f"{fmt_rate(lim['rng_qe_2'])} |")
        add("")
        if "normals_words_ns" in lim:
            parts = (f"`fill_normals`' halves (`benchmarks/normals_speed.py`): Threefry words "
                     f"{lim['normals_words_ns']:.2f} ns + Box-Muller "
                     f"{lim['normals_transform_ns']:.2f} ns per normal; whole, "
                     f"{lim.get('normals_rows_ns', float('nan')):.2f} ns a tile's draws at once "
                     f"(`fill_normal_rows`); AS241 on uniforms, for "
                     f"the Heston variance draws, {lim['normals_ndtri_ns']:.2f} ns "
                     f"({lim['normals_tail_fraction']:.0%} of them in its tails). ")
        else:
            parts = f"(`fill_normals`' halves not measured: {lim.get('normals_parts_error')}.) "
        add(f"Parts, 1 thread: {parts}One at a time, for comparison: Threefry2x64-20 "
            f"{fmt_rate(lim['threefry_words'])} words/s ({1e9 / lim['threefry_words']:.2f} "
            "ns/word), "
            f"scalar AS241 `ndtri` {fmt_rate(lim['inverse_normal'])}/s "
            f"({1e9 / lim['inverse_normal']:.2f} ns); libm `exp` {fmt_rate(lim['exp'])}/s "
            f"({1e9 / lim['exp']:.2f} ns) against `vecmath.exp` in a vectorized loop "
            f"{fmt_rate(lim['exp_vecmath'])}/s ({1e9 / lim['exp_vecmath']:.2f} ns). For comparison "
            f"NumPy's `default_rng().standard_normal` gives {fmt_rate(data['numpy_normals'])} "
            "normals/s.\n")
        if "asian_price_path_steps" in h:
            e = data["greeks"]["european"]["mcgreeks"]["price"]
            add(f"mcgreeks price only, {THREADS} threads: Asian {fmt_rate(h['asian_price_path_steps'])}"
                f" path-steps/s = {h['asian_price_path_steps'] / h['limit_path_steps']:.0%} of the "
                f"limit; European {fmt_rate(e['n_paths'] / e['seconds'])} paths/s.\n")

    with _guard(add):
        prof = data["limits"].get("profile")
        if prof:
            add("## Profile: arithmetic Asian with all Greeks\n")
            if "error" in prof:
                add(f"Skipped: {prof['error']}\n")
            else:
                add(f"Single thread, {prof['n_paths']:,} paths × {prof['steps']} dates, auto's "
                    "estimators (" + ", ".join(f"{g} {e}" for g, e in prof["methods"].items())
                    + ")" + (" with the geometric control" if prof.get("control", True) else "")
                    + ". A driver calls the engine's own kernels on the main run's paths, adding "
                    "one stage at a time in the pricer's order: the normals; the Brownian path; "
                    "the trade's one pass over its dates with the tile's paths as the inner "
                    "loop (`_accumulate`: `vecmath.exp` and the per-path sums, the twin's ΣW and "
                    "the scores' Σ(ΔW)²/Δt included); then per path, the payoff, tangents and "
                    "scores of the trade and of its geometric twin from those sums (`_fill`). "
                    "The last row is the engine's chunk kernel (1 thread) minus the other stages, "
                    "each a difference of two timed runs.\n")
                add("| stage (kernel) | ns per path-step | share |\n|---|---|---|")
                for name, ns in prof["stages"]:
                    add(f"| {name} | {ns:.2f} | {ns / prof['stage_total']:.0%} |")
                add(f"| **sum** | **{prof['stage_total']:.2f}** | |")
                add("")
                add(f"Engine chunk kernel: {prof['chunk_1']:.2f} ns/path-step on 1 thread, "
                    f"{prof['chunk_2']:.2f} on 2 ({prof['chunk_1'] / prof['chunk_2']:.2f}× "
                    f"speed-up); `price_portfolio` end to end {prof['portfolio_1']:.2f} / "
                    f"{prof['portfolio_2']:.2f} ns/path-step.\n")

    with _guard(add):
        proto = data["limits"].get("prototypes")
        if proto and prof and "error" not in prof:
            st = [ns for _, ns in prof["stages"]]
            if len(st) != len(STAGES):       # a profile of other stages (an old pickle)
                raise ValueError(f"the profile has {len(st)} stages, not {len(STAGES)}")
            add("### The measured fixes, now in the engine (`benchmarks/kernel_prototypes.py`)\n")
            add("Each was first prototyped and timed against the engine; all are now its code. "
                "Single thread, ns per normal or per path-step:\n")
            add("| fix (now in) | replaced | measured now | same bits? |\n|---|---|---|---|")
            if "error" in proto:
                add(f"| — | — | prototypes skipped: {proto['error']} | |")
                proto = {}
            add(f"| normals tile by tile: Threefry2x64-20 and Box-Muller, each a branch-free "
                "loop over the tile's pairs of paths (`rng.fill_normals`, version 0.4.0) | "
                "Philox4x64-10 (scalar 64×64→128-bit products) and AS241, its tails gathered | "
                f"{st[0]:.2f} in the profile; {1e9 / lim['rng_1']:.2f} alone"
                + (f" ({lim['normals_words_ns']:.2f} Threefry + "
                   f"{lim['normals_transform_ns']:.2f} Box-Muller)"
                   if "normals_words_ns" in lim else "")
                + f"; scalar `ndtri` {1e9 / lim['inverse_normal']:.2f} | "
                + (f"yes ({proto['normals_bits_differing']} of {64 * 64 * 252:,} draws differ "
                   "from the scalar `rng.normal`) |" if "normals_bits_differing" in proto
                   else "— |"))
            add("| one fused pass over the dates, the tile's paths inner, with a vectorizable exp "
                "(`gbm._accumulate`, `vecmath.exp`) | three scalar walks per path (payoff, "
                "tangents, the twin), three libm exps per date | "
                f"{st[2]:.2f} in the profile (all sums, twin and scores included)"
                + (f"; the Asian's sums alone {proto['fused_walk_vecmath_exp_ns']:.2f}, "
                   f"{proto['fused_walk_libm_exp_ns']:.2f} with libm's exp"
                   if "fused_walk_vecmath_exp_ns" in proto else "")
                + " | no: `vecmath.exp` is within "
                + (f"{proto['vecmath_exp_max_ulp']:.0f} ulp" if "vecmath_exp_max_ulp" in proto
                   else "2 ulp")
                + " of libm's and the sums are regrouped, so results moved by rounding |")
            add(f"| per-path payoff, tangents and scores from those sums (`gbm._fill`) | the "
                f"walks' per-path arithmetic | {st[3]:.2f} in the profile | — |")
            add("")
            add(f"Single thread the engine now takes {prof['stage_total']:.1f} ns/path-step for "
                f"the Asian with all Greeks, {prof['stage_total'] * lim['rng_exp_1'] / 1e9:.2f}× "
                f"the floor of {1e9 / lim['rng_exp_1']:.1f} (normals + step + one exp).\n")

    with _guard(add):
        inl = data["limits"].get("inlined")
        ep = data["limits"].get("european_profile")
        if inl or ep:
            add("### Per-path call overhead (the European's problem)\n")
        if ep and "error" not in ep:
            add(f"European price only, engine main-run kernel (per-underlying totals included) on "
                f"1 thread: {ep['chunk_1']:.1f} ns/path ({ep['chunk_2']:.1f} on 2 threads) "
                f"against {1e9 / lim['rng_1']:.1f} ns for the normal and "
                f"{1e9 / lim['rng_exp_1']:.1f} ns for normal + exp (the limit): "
                f"{1 - 1e9 / lim['rng_exp_1'] / ep['chunk_1']:.0%} of a one-date path's cost is "
                "neither random numbers nor the exp. By stage (same driver as above), ns/path: "
                + "; ".join(f"{name} {ns:.1f}" for name, ns in ep["stages"]) + ".\n")
        if inl and "error" not in inl:
            from benchmarks.kernel_prototypes import PER_PATH_HELPERS
            add(f"The engine's GBM kernels recompiled from the same source with numba "
                f"`inline=\"always\"` on the {len(PER_PATH_HELPERS)} per-path helpers that take "
                "arrays (" + ", ".join(f"`{n}`" for n in PER_PATH_HELPERS)
                + "; `benchmarks/kernel_prototypes.py`), main-run kernel, 1 thread, interleaved "
                "runs:\n")
            add("| case (all Greeks) | engine ns/path | inlined ns/path | speed-up | same bits |")
            add("|---|---|---|---|---|")
            for payoff in ("european", "asian_arithmetic"):
                r = inl[payoff]
                add(f"| {payoff} | {r['engine_ns_per_path']:.1f} | {r['inlined_ns_per_path']:.1f} "
                    f"| {r['engine_ns_per_path'] / r['inlined_ns_per_path']:.2f}× | "
                    f"{'yes' if r['bit_identical'] else 'NO'} |")
            add(f"\nCompile time of the inlined copy (first call, no cache): "
                f"{inl['compile_seconds']:.1f} s. Inlining every kernel instead took 11 minutes "
                "to compile here, so inline only the per-path helpers.\n")
        elif inl:
            add(f"Inlining experiment skipped: {inl['error']}\n")

    add("## Plots\n")
    for name, caption in PLOTS:
        if os.path.exists(os.path.join(out_dir, name)):
            add(f"![{caption}]({name})\n")
    add("## How to run\n")
    add("```\npip install matplotlib QuantLib           # QuantLib is in mcgreeks[test]\n"
        "pip install --no-deps financepy          # optional peer; it pins older numba/NumPy\n"
        "python benchmarks/run.py --quick         # about 2 minutes\n"
        "python benchmarks/run.py                 # full, about 15 minutes on 2 cores\n"
        "python -m pytest -p no:cacheprovider benchmarks/test_numpy_engine.py\n"
        "python -m benchmarks.profile_engine      # the profile alone\n```\n")
    path = os.path.join(out_dir, "RESULTS.md")
    kept = _kept_sections(path)         # read before "w" empties the file
    with open(path, "w") as f:
        f.write("\n".join(L + kept))


def _kept_sections(path):
    """The marked sections other scripts wrote into the report (``benchmarks/sections.py``:
    american.py, multi_asset.py, stac_like.py ...), kept when this run rewrites it."""
    import re
    if not os.path.exists(path):
        return []
    text = open(path).read()
    return ["\n" + m.group(0) + "\n"
            for m in re.finditer(r"<!-- ([\w-]+) -->.*?<!-- /\1 -->", text, re.S)]


PLOTS = (("profile.png", "where mcgreeks spends its time on the Asian with all Greeks"),
         ("throughput.png", "paths/s per case and library"),
         ("time_to_target.png", "time to the target SE per Greek"),
         ("scaling.png", "scaling with threads, paths, fixings and portfolio size"),
         ("memory_coldstart.png", "peak memory vs paths, and JIT cold start"))


def plot(data, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.patches  # noqa: F401
    import matplotlib.pyplot as plt

    colors = {"mcgreeks": "#1f77b4", "NumPy": "#ff7f0e", "QuantLib": "#2ca02c",
              "QuantLib+CV": "#98df8a", "FinancePy": "#9467bd"}
    labels = {"european": "European\n(1 date)", "asian": "Asian\n(252 fixings)",
              "heston": "Heston European\n(252 steps)"}

    with _guard(what="plot"):
        # throughput
        fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
        for ax, what, title in ((axes[0], "price", "price only"), (axes[1], "greeks",
                                                                   "price + all Greeks with SEs")):
            cases = list(data["greeks"])
            width = 0.8 / len(LIBS)
            for i, lib in enumerate(LIBS):
                xs, ys = [], []
                for c, case in enumerate(cases):
                    v = data["greeks"][case].get(lib, {})
                    if what in v:
                        steps = 1 if case == "european" else 252
                        xs.append(c + (i - (len(LIBS) - 1) / 2) * width)
                        ys.append(v[what]["n_paths"] * steps / v[what]["seconds"])
                if lib == "FinancePy" and what == "price" and "seconds" in data.get("financepy", {}):
                    fp = data["financepy"]
                    xs.append(0 + (i - (len(LIBS) - 1) / 2) * width)
                    ys.append(fp["n_pairs"] / fp["seconds"])
                if xs:
                    ax.bar(xs, ys, width, label=lib, color=colors[lib])
                    for x, y in zip(xs, ys):
                        ax.text(x, y * 1.1, fmt_rate(y), ha="center", va="bottom", fontsize=7,
                                rotation=90)
            ax.set_xticks(range(len(cases)))
            ax.set_xticklabels([labels[c] for c in cases])
            ax.set_yscale("log")
            ax.set_title(title)
            ax.grid(axis="y", which="both", alpha=0.3)
        for ax in axes:
            ymin, ymax = ax.get_ylim()
            ax.set_ylim(ymin, ymax * 4)
            for c, case in enumerate(data["greeks"]):
                if "missing" in data["greeks"][case].get("mcgreeks", {}):
                    ax.text(c - 0.4, ymin * 1.5, "mcgreeks:\nnot yet", fontsize=7, color="#1f77b4")
        axes[0].set_ylabel("path-steps per second (log)")
        handles = [matplotlib.patches.Patch(color=colors[lib], label=lib) for lib in LIBS
                   if any(lib in data["greeks"][c] and "greeks" in data["greeks"][c][lib]
                          for c in data["greeks"]) or (lib == "FinancePy" and
                                                      "seconds" in data.get("financepy", {}))]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
        fig.suptitle(f"Throughput, higher is better (mcgreeks on {THREADS} threads, NumPy on 1; "
                     "FinancePy: antithetic pairs)")
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        fig.savefig(os.path.join(out_dir, "throughput.png"), dpi=110)
        plt.close(fig)

    with _guard(what="plot"):
        # time to target
        cases = [c for c in data["targets"] if data["targets"][c]]
        fig, axes = plt.subplots(1, len(cases), figsize=(5.5 * len(cases), 5), squeeze=False)
        for ax, case in zip(axes[0], cases):
            per = data["targets"][case]
            libs = [lib for lib in LIBS if lib in per]
            quantities = [q for q in next(iter(per.values())) if q != "all"] + ["all"]
            width = 0.8 / len(libs)
            for i, lib in enumerate(libs):
                xs = np.arange(len(quantities)) + (i - (len(libs) - 1) / 2) * width
                ax.bar(xs, [per[lib][q] for q in quantities], width, label=lib, color=colors[lib])
            ax.set_xticks(range(len(quantities)))
            ax.set_xticklabels([("every\nGreek" if q == "all" else q) for q in quantities],
                               rotation=45 if case == "heston" else 0, fontsize=8)
            ax.set_yscale("log")
            ax.set_title(labels[case].replace("\n", " "))
            ax.grid(axis="y", which="both", alpha=0.3)
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel(f"seconds to SE = {REL_TARGET:.1%} of |value| (log)")
        fig.suptitle("Time to reach the target standard error (lower is better)")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "time_to_target.png"), dpi=110)
        plt.close(fig)

    with _guard(what="plot"):
        # scaling
        fig, axes = plt.subplots(2, 2, figsize=(12, 9))
        ax = axes[0][0]
        st = data["threads"]
        names = [(case, what) for case in st for what in ("price", "greeks")]
        xs = np.arange(len(names))
        for i, th in enumerate((1, 2)):
            ax.bar(xs + (i - 0.5) * 0.35, [st[c][th][w] for c, w in names], 0.35,
                   label=f"{th} thread{'s' if th > 1 else ''}", color=["#aec7e8", "#1f77b4"][i])
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{c}\n{'price' if w == 'price' else 'all Greeks'}" for c, w in names],
                           fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("paths/s (log)")
        ax.set_title("mcgreeks: numba threads")
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax = axes[0][1]
        sp = data["paths"]
        for lib in ("mcgreeks", "NumPy"):
            ns = list(sp[lib])
            ax.loglog(ns, [sp[lib][n] for n in ns], "o-", label=lib, color=colors[lib])
        ax.set_xlabel("paths")
        ax.set_ylabel("seconds")
        ax.set_title("Asian, all Greeks: time vs paths")
        ax.legend(fontsize=8)
        ax.grid(which="both", alpha=0.3)
        ax = axes[1][0]
        ss = data["steps"]
        for lib in ("mcgreeks", "NumPy"):
            ns = list(ss[lib])
            ax.semilogx(ns, [ss[lib][n] / 1e6 for n in ns], "o-", label=lib, color=colors[lib])
        ax.set_xlabel("fixings (dates per path)")
        ax.set_ylabel("million path-steps/s")
        ax.set_title("arithmetic Asian, all Greeks: fixings")
        ax.legend(fontsize=8)
        ax.grid(which="both", alpha=0.3)
        ax = axes[1][1]
        so = data["portfolio"]
        for lib in ("mcgreeks", "NumPy"):
            ks = list(so[lib])
            ax.loglog(ks, [so[lib][k] / k for k in ks], "o-", label=lib, color=colors[lib])
        ax.set_xlabel("trades on one underlying")
        ax.set_ylabel("seconds per trade")
        ax.set_title(f"portfolio size ({so['n_paths']:,} paths, Asian calls)")
        ax.legend(fontsize=8)
        ax.grid(which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "scaling.png"), dpi=110)
        plt.close(fig)

    with _guard(what="plot"):
        # profile
        prof = data["limits"].get("profile")
        if prof and "error" not in prof:
            fig, ax = plt.subplots(figsize=(11, 3.6))
            left = 0.0
            stage_colors = ["#1f77b4", "#17becf", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                            "#e377c2"]
            for i, (name, ns) in enumerate(prof["stages"]):
                ns = max(ns, 0.0)
                ax.barh(1, ns, left=left, color=stage_colors[i % 7], label=name, edgecolor="white")
                if ns > 1.2:
                    ax.text(left + ns / 2, 1, f"{ns:.1f}", ha="center", va="center", fontsize=8,
                            color="white")
                left += ns
            lim = data["limits"]["limits"]
            floor = 1e9 / lim["rng_exp_1"]
            ax.barh(0, floor, color="#7f7f7f")
            ax.text(floor, 0, f"  {floor:.1f} ns: the engine's normals + one vecmath.exp per "
                    "step (price floor)", va="center", fontsize=8)
            g = data["greeks"]["asian"].get("NumPy", {}).get("greeks")
            ticks = ["limit", "mcgreeks\n(1 thread)"]
            numpy_ns = 0.0
            if g:
                numpy_ns = 1e9 * g["seconds"] / (g["n_paths"] * 252)
                ax.barh(2, numpy_ns, color="#ff7f0e")
                ax.text(numpy_ns, 2, f"  {numpy_ns:.1f} ns", va="center", fontsize=8)
                ticks.append("NumPy\n(1 thread)")
            ax.set_yticks(range(len(ticks)))
            ax.set_yticklabels(ticks)
            ax.set_xlabel("ns per path-step (252 dates), single thread — lower is better")
            ax.set_title("Arithmetic Asian, price + all Greeks with the control variate: "
                         "cost by stage", fontsize=10)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            # room for the floor's label, and for the NumPy bar however it compares
            ax.set_xlim(0, max(left * 1.35, floor * 2.4, numpy_ns * 1.15))
            fig.tight_layout()
            fig.savefig(os.path.join(out_dir, "profile.png"), dpi=110)
            plt.close(fig)

    with _guard(what="plot"):
        # memory and cold start
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        ax = axes[0]
        for key, per in data["memory"].items():
            ns = [int(n) for n in per]
            ax.semilogx(ns, [per[n]["peak_kib"] / 1024 for n in per], "o-", label=key)
        ax.set_xlabel("paths")
        ax.set_ylabel("peak RSS (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title("peak RSS of a fresh process (imports + one run, all Greeks)")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(which="both", alpha=0.3)
        ax = axes[1]
        cs = data["cold_start"]
        payoffs = list(cs)
        xs = np.arange(len(payoffs))
        for i, which in enumerate(("cold", "warm")):
            imports = [cs[p][which]["imports"] for p in payoffs]
            first = [cs[p][which]["first"] for p in payoffs]
            x = xs + (i - 0.5) * 0.35
            ax.bar(x, imports, 0.35, color=["#c7c7c7", "#e0e0e0"][i], edgecolor="k")
            ax.bar(x, first, 0.35, bottom=imports, color=["#d62728", "#1f77b4"][i],
                   label=f"first call, {'empty' if which == 'cold' else 'warm'} cache")
            for xi, a, b in zip(x, imports, first):
                ax.text(xi, a + b, f"{a + b:.1f} s", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs)
        ax.set_xticklabels(payoffs)
        ax.set_ylabel("seconds from process start (grey: imports)")
        ax.set_title("JIT cold start vs warm numba cache")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.15)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "memory_coldstart.png"), dpi=110)
        plt.close(fig)


# -- main -------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about two minutes")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--profile", action="store_true",
                        help="also the stage profile in --quick (the full run always has it)")
    parser.add_argument("--replot", metavar="PICKLE",
                        help="rewrite the report and plots from a saved run; measure nothing")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    os.makedirs(args.out, exist_ok=True)
    if args.replot:
        import pickle
        with open(args.replot, "rb") as f:
            data = pickle.load(f)
        data["headline"] = headline(data)
        plot(data, args.out)
        write_report(data, args.out, data["mode"])
        return
    if args.profile:
        MODES[mode]["profile"] = True
    start = time.perf_counter()
    data = {"machine": machine(), "mode": mode}
    log(f"mcgreeks benchmarks ({mode}); load average {data['machine']['load_before']}")

    log("checks ...")
    data["checks"] = run_checks()
    for c in data["checks"]:
        log("  " + c)
    try:
        data["machine"]["threading_layer"] = numba.threading_layer()
    except ValueError:
        pass

    log("throughput and SEs ...")
    refs = references()
    data["greeks"] = guarded("throughput", measure_greeks, mode, refs)
    data["targets"] = guarded("targets", time_to_target, data["greeks"], refs)
    data["references"] = refs
    log("FinancePy ...")
    data["financepy"] = guarded("FinancePy", financepy_runs, mode)
    if "seconds" in data["financepy"]:
        try:
            import financepy
            data["financepy"]["version"] = financepy.__version__
        except Exception:
            pass
    log("  " + (f"{data['financepy']['n_pairs'] / data['financepy']['seconds']:,.0f} pairs/s"
                if "seconds" in data["financepy"] else
                data["financepy"].get("missing", data["financepy"].get("error"))))
    try:
        methods = data["greeks"]["asian"]["mcgreeks"]["greeks"]["methods"]
    except (KeyError, TypeError):
        methods = None
    log("scaling: threads ...")
    data["threads"] = guarded("threads", scaling_threads, mode)
    log("scaling: paths ...")
    data["paths"] = guarded("paths", scaling_paths, mode, methods)
    log("scaling: fixings ...")
    data["steps"] = guarded("fixings", scaling_steps, mode)
    log("scaling: portfolio ...")
    data["portfolio"] = guarded("portfolio", scaling_portfolio, mode, methods)
    log("limits and profile ...")
    data["limits"] = guarded("limits", limits_and_profile, mode)
    z = np.empty(1 << 22)
    rng = np.random.default_rng(0)
    t, _ = timed(lambda: rng.standard_normal(out=z), 3)
    data["numpy_normals"] = z.size / t
    log("peak memory (subprocesses) ...")
    data["memory"] = guarded("memory", peak_memory, mode)
    log("JIT cold start (subprocesses) ...")
    data["cold_start"] = guarded("cold start", cold_start)

    data["load_after"] = os.getloadavg()
    data["finished"] = time.time()
    data["elapsed"] = time.perf_counter() - start
    data["headline"] = guarded("headline", headline, data)
    import pickle
    saved = os.path.join(tempfile.gettempdir(), f"mcgreeks-bench-{mode}.pickle")
    with open(saved, "wb") as f:          # --replot input, should a plot or the report fail
        pickle.dump(data, f)
    log(f"measurements saved to {saved}")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1, default=str)
    plot(data, args.out)
    write_report(data, args.out, mode)
    log("STAC-like workload (benchmarks/stac_like.py) ...")
    stac = [sys.executable, os.path.join(ROOT, "benchmarks", "stac_like.py"),
            "--out", os.path.join(args.out, "RESULTS.md")] + (["--quick"] if mode == "quick"
                                                              else [])
    guarded("stac-like", lambda: subprocess.run(stac, check=True))
    h = data["headline"]
    log(f"done in {data['elapsed'] / 60:.1f} min; load average {data['load_after']}")
    for k, v in h.items():
        log(f"  {k}: " + (f"{v:,.3g}" if isinstance(v, float) else str(v)))
    log(f"wrote {os.path.join(args.out, 'RESULTS.md')}")


if __name__ == "__main__":
    main()
