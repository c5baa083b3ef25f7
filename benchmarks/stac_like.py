"""A STAC-A2-like workload on this machine: an American call on a basket of correlated Heston
names, its price and every sensitivity of the long risk table, against the price alone and
against bump-and-revalue on the same engine and paths; how the cost grows with names, paths
and steps; the GBM variant beside QuantLib's ``MCAmericanBasketEngine``.

The base case (after STAC-A2's): 5 correlated Heston names (``multi_asset.basket_book``: spots
80-120, Feller ratios above 1, pairwise correlation 0.4 but one pair at -0.2), dividend yield
5 % over a 3 % rate so that the call is exercised early, an equally weighted basket call struck
at the sum of the spots, T = 1, ``exercise="american"`` on 252 steps a year (252 exercise
dates), 25,000 paths, its policy fitted on a pilot of as many paths (``pilot_paths``; one
policy: 25,000 paths are under two segments).  'every sensitivity' is the 57 of the long risk
table: 5 deltas, 5 gammas, 10 cross-gammas, 25 Heston parameter sensitivities (d_v0, d_kappa,
d_vbar, d_xi, d_corr per name), 10 pair-correlation sensitivities, rho and theta, each with
its SE, by ``auto`` (pathwise at each path's stopping date, mixed gammas) or by ``fd``
(bump-and-revalue: every moved path re-simulated where the parameter moves it and re-stopped by
the same policy, common random numbers: what peers do).

Measured: wall seconds (best of ``--repeats`` after a warm-up run, so that compiling is left
out), split into the policy's fit (pilot simulation and regressions) and the main run; the cold
time of the first run in a fresh process with an empty kernel cache; the peak memory
(VmHWM) of a fresh process with a warm cache; larger cases (10 names; 100,000 paths; 1,000 steps a
year), all sensitivities by auto.  The GBM variant (the same names with σ = √v̄) prices the same
basket call with mcgreeks and with QuantLib's ``MCAmericanBasketEngine`` (Longstaff-Schwartz,
its only output is the price) on as many paths, calibration paths and steps.

Writes the ``stac-like`` section of RESULTS.md and ``stac_like.png``.

    python benchmarks/stac_like.py [--quick] [--repeats 3]

``--quick``: the base case and the GBM variant only, one repeat, no cold start; about a minute.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases as C                                    # noqa: E402
from benchmarks.american import Phases                              # noqa: E402
from benchmarks.multi_asset import basket_book                      # noqa: E402
from benchmarks.run import machine                                   # noqa: E402
from benchmarks.sections import put_section, report_parser          # noqa: E402

import mcgreeks                                                      # noqa: E402

BEGIN, END = "<!-- stac-like -->", "<!-- /stac-like -->"
RATE, DIV_YIELD, STEPS = 0.03, 0.05, 252
#: label -> (names, paths, steps a year)
BASE = ("base", 5, 25_000, STEPS)
LARGER = (("10 names", 10, 25_000, STEPS), ("100,000 paths", 5, 100_000, STEPS),
          ("1,000 steps", 5, 25_000, 1000))
#: label -> (greeks, method)
RUNS = {"price alone": ("none", "auto"), "all, auto": ("all", "auto"),
        "all, fd": ("all", "fd")}


def book(n, model="heston"):
    """(trades, market, correlations) of the workload on n names (module docstring)."""
    trades, market, correlations = basket_book(n, model)
    market = market.assign(rate=RATE, div_yield=DIV_YIELD)
    return trades.assign(exercise="american"), market, correlations


def price(case, greeks, method, phases=None):
    """One run of ``case`` = (label, names, paths, steps): (risk table, phases' seconds)."""
    _, n, paths, steps = case
    trades, market, correlations = book(n)
    phases = phases or Phases()
    with phases.installed():
        _, risk = mcgreeks.price_portfolio(trades, market, n_paths=paths, seed=1,
                                           correlations=correlations, steps_per_year=steps,
                                           pilot_paths=paths, greeks=greeks, method=method,
                                           risk=True)
    return risk, phases.seconds


def timed(case, greeks, method, repeats):
    """dict(wall, fit, main: the best of ``repeats`` runs, each after a warm-up run;
    risk: the table)."""
    price(case, greeks, method)         # compile or load the kernels, warm the caches
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        risk, seconds = price(case, greeks, method, Phases())
        wall = time.perf_counter() - start
        if best is None or wall < best["wall"]:
            best = dict(wall=wall, fit=seconds.get("fit", 0.0), main=seconds.get("main", 0.0),
                        risk=risk)
    return best


def fresh_process(cache_dir=None):
    """(wall seconds of the base case with every sensitivity, peak memory in MB) in a new Python
    process, its kernel cache ``cache_dir`` (None: the usual one)."""
    # the peak from /proc (VmHWM): getrusage's maxrss survives exec, so a child forked from
    # a large parent would report the parent's size
    code = ("import sys, time; t = time.perf_counter(); "
            "sys.path.insert(0, %r); from benchmarks import stac_like as S; "
            "S.price(S.BASE, 'all', 'auto'); wall = time.perf_counter() - t; "
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
            "print(wall, int(hwm.split()[1]) / 1024)" % C.ROOT)
    env = dict(os.environ)
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = cache_dir
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=C.ROOT).stdout.split()
    return float(out[-2]), float(out[-1])


def quantlib_american_basket(n, paths, steps):
    """(price, seconds) of QuantLib's MCAmericanBasketEngine on the GBM variant: paths main and
    calibration paths, ``steps`` time steps, polynomial basis of order 2 (monomials)."""
    import QuantLib as ql
    trades, market, correlations = book(n, "gbm")
    today = ql.Date(6, 12, 2026)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    curve = lambda r: ql.YieldTermStructureHandle(ql.FlatForward(today, r, day_count))  # noqa
    processes = [ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(float(row.spot))), curve(float(row.div_yield)),
        curve(float(row.rate)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(),
                                                           float(row.vol), day_count)))
        for row in market.itertuples()]
    matrix = np.eye(n)
    index = {name: k for k, name in enumerate(market["underlying"])}
    for row in correlations.itertuples():
        a, b = index[row.underlying_1], index[row.underlying_2]
        matrix[a, b] = matrix[b, a] = row.corr
    process = ql.StochasticProcessArray(processes, ql.Matrix([list(r) for r in matrix]))
    maturity = today + ql.Period(365, ql.Days)
    payoff = ql.AverageBasketPayoff(ql.PlainVanillaPayoff(ql.Option.Call,
                                                          float(trades.strike[0]) / n),
                                    ql.Array([1.0 / n] * n))
    option = ql.BasketOption(payoff, ql.AmericanExercise(today, maturity))
    option.setPricingEngine(ql.MCAmericanBasketEngine(
        process, "pseudorandom", timeSteps=steps, requiredSamples=paths,
        nCalibrationSamples=paths, seed=42, polynomOrder=2,
        polynomType=ql.LsmBasisSystem.Monomial))
    start = time.perf_counter()
    value = option.NPV() * n
    return value, time.perf_counter() - start


def gbm_variant(repeats):
    """The GBM variant's price by mcgreeks (best wall of ``repeats``) and QuantLib."""
    _, n, paths, steps = BASE
    trades, market, correlations = book(n, "gbm")
    kwargs = dict(n_paths=paths, seed=1, correlations=correlations, steps_per_year=steps,
                  pilot_paths=paths, greeks="none")
    mcgreeks.price_portfolio(trades, market, **kwargs)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        res = mcgreeks.price_portfolio(trades, market, **kwargs)
        best = min(best, time.perf_counter() - start)
    out = dict(mcgreeks=(float(res["price"].iloc[0]), float(res["price_se"].iloc[0]), best))
    try:
        out["QuantLib"] = quantlib_american_basket(n, paths, steps)
    except Exception as exc:      # QuantLib missing or its API changed: say so in the report
        out["QuantLib"] = repr(exc)
    return out


def main(argv=None):
    args = report_parser(__doc__, C.ROOT).parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    m = machine()
    start = time.perf_counter()
    cold = None
    if not args.quick:
        with tempfile.TemporaryDirectory() as cache:
            cold = fresh_process(cache)
    # the usual cache is warm only once this process has compiled into it (after an edit of any
    # kernel its folder is new): else the "warm" process would time a compile
    price(BASE, "all", "auto")
    warm_process = fresh_process()
    base = {label: timed(BASE, *run, repeats) for label, run in RUNS.items()}
    for label, b in base.items():
        print(f"{label}: {b['wall']:.2f} s (fit {b['fit']:.2f} s, main {b['main']:.2f} s)",
              flush=True)
    larger = {} if args.quick else {case[0]: timed(case, "all", "auto", 1) for case in LARGER}
    price_alone = {} if args.quick else {case[0]: timed(case, "none", "auto", 1)
                                         for case in LARGER}
    gbm = gbm_variant(repeats)
    print(json.dumps({"cold": cold, "warm_process": warm_process, "gbm": gbm}, default=str))
    lines = report(args, m, base, larger, price_alone, cold, warm_process, gbm,
                   time.perf_counter() - start)
    plot(base, larger, price_alone, os.path.join(os.path.dirname(args.out), "stac_like.png"))
    put_section(args.out, "\n".join(lines), BEGIN, END)
    print(f"wrote the stac-like section of {args.out}")


def report(args, m, base, larger, price_alone, cold, warm_process, gbm, elapsed):
    """The section's lines."""
    auto, alone, fd = base["all, auto"], base["price alone"], base["all, fd"]
    n_sens = int((auto["risk"]["measure"] != "price").sum())
    lines = [BEGIN, "## A STAC-A2-like workload: American basket on 5 Heston names\n",
             f"`python benchmarks/stac_like.py{' --quick' if args.quick else ''}` on "
             f"{m['cpu']} ({m['cores']} cores, numba {m['versions']['numba']}, llvmlite "
             f"{m['versions'].get('llvmlite', '?')}), {time.strftime('%Y-%m-%d')}, best of "
             f"{1 if args.quick else args.repeats} after a warm-up run, load average "
             f"{m['load_before'][0]:.1f} at the start; {elapsed:.0f} s in all.  The workload "
             "is the module docstring's: 5 correlated Heston names, 25,000 paths, 252 steps "
             "and exercise dates, an American basket call, its policy fitted on 25,000 pilot "
             f"paths; 'all' is the long risk table's {n_sens} sensitivities, each with its SE.\n",
             "| run | wall (s) | policy fit (s) | main run (s) | × price alone | "
             "× price alone, main runs |", "|---|---|---|---|---|---|"]
    for label, b in base.items():
        lines.append(f"| {label} | {b['wall']:.2f} | {b['fit']:.2f} | {b['main']:.2f} | "
                     f"{b['wall'] / alone['wall']:.2f} | {b['main'] / alone['main']:.2f} |")
    price_row = auto["risk"].set_index("measure").loc["price"]
    lines += ["", f"Price {price_row['value']:.4f} ± {price_row['se']:.4f}.  Every sensitivity "
              f"by auto costs {auto['wall'] / alone['wall']:.2f}× the price alone "
              f"({auto['main'] / alone['main']:.2f}× in the main run, the policy's fit being "
              "the same work), and bump-and-revalue on the same engine and paths "
              f"{fd['wall'] / auto['wall']:.1f}× auto.  Targets of issue 21: ≤ 1 s warm and "
              f"≤ 4× the price alone; measured {auto['wall']:.2f} s and "
              f"{auto['wall'] / alone['wall']:.2f}×."]
    if cold:
        lines.append(f"Cold (a fresh process, empty kernel cache: imports, compiling, the "
                     f"run): {cold[0]:.1f} s, peak memory {cold[1]:.0f} MB.")
    lines.append(f"A fresh process with a warm cache: {warm_process[0]:.1f} s, peak memory "
                 f"{warm_process[1]:.0f} MB (the pilot's paths are most of it: 5 names × 252 "
                 "dates × 25,000 paths × 8 bytes = 252 MB, on top of the imports' 190 MB).\n")
    if larger:
        lines += ["| case | all, auto (s) | price alone (s) | × price alone | policy fit (s) |",
                  "|---|---|---|---|---|"]
        for label, b in [("base", auto)] + list(larger.items()):
            p = alone if label == "base" else price_alone[label]
            lines.append(f"| {label} | {b['wall']:.2f} | {p['wall']:.2f} | "
                         f"{b['wall'] / p['wall']:.2f} | {b['fit']:.2f} |")
        lines.append("")
    value, se, wall = gbm["mcgreeks"]
    ql_text = (f"QuantLib {gbm['QuantLib'][0]:.4f} in {gbm['QuantLib'][1]:.2f} s "
               f"({gbm['QuantLib'][1] / wall:.1f}× mcgreeks' time; its price only, no SE)"
               if isinstance(gbm["QuantLib"], tuple) else f"QuantLib failed: {gbm['QuantLib']}")
    lines += [f"GBM variant (σ = √v̄), price alone on the same 25,000 paths and 252 steps: "
              f"mcgreeks {value:.4f} ± {se:.4f} in {wall:.2f} s; {ql_text}.",
              "", "![STAC-like workload](stac_like.png)", END]
    return lines


def plot(base, larger, price_alone, path):
    """Wall time of each run of the base case, split into fit and main run; and of every case,
    price alone and every sensitivity."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2 if larger else 1, figsize=(10 if larger else 5.5, 3.8),
                             squeeze=False)
    ax = axes[0, 0]
    labels = list(base)
    fit = [base[k]["fit"] for k in labels]
    main = [base[k]["main"] for k in labels]
    rest = [base[k]["wall"] - f - r for k, f, r in zip(labels, fit, main)]
    ax.bar(labels, fit, label="policy fit")
    ax.bar(labels, main, bottom=fit, label="main run")
    ax.bar(labels, rest, bottom=np.add(fit, main), label="rest")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="target: 1 s")
    ax.set_ylabel("wall seconds (2 cores)")
    ax.set_title("5 Heston names, 25k paths, 252 steps")
    ax.legend()
    if larger:
        ax = axes[0, 1]
        cases = ["base"] + list(larger)
        x = np.arange(len(cases))
        ax.bar(x - 0.2, [base["price alone"]["wall"]] + [price_alone[c]["wall"]
                                                       for c in larger], 0.4,
               label="price alone")
        ax.bar(x + 0.2, [base["all, auto"]["wall"]] + [larger[c]["wall"] for c in larger], 0.4,
               label="every sensitivity")
        ax.set_xticks(x, cases)
        ax.set_yscale("log")
        ax.set_ylabel("wall seconds")
        ax.set_title("How the cost grows")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
