"""Early exercise under GBM: what an American price and its Greeks cost, how tight the dual
upper bound is, how the grid's Bermudan approaches the true American, and whether the Greeks'
standard errors are honest.

Two contracts: the Longstaff-Schwartz put (S = 36, K = 40, r = 6 %, q = 0, σ = 20 %, T = 1) and a
call that is exercised early for its dividend (S = K = 100, r = 3 %, q = 7 %, σ = 25 %, T = 1),
both ``exercise="american"`` (exercisable at each step of the grid, here 52 a year) through
``mcgreeks.price_portfolio``:

1. cost: wall time (best of ``--repeats``, after a warm-up so that compiling is left out) of
   the price alone, of the price with every Greek and of the price with the dual upper bound,
   and of the European of the same contract (the repeats go round the runs); each run is
   split, from outside, into the policies' fit (``underlying.fit_policies``), the dual bound
   (``dual_bound.gbm_upper_bound``), the main run (``underlying.simulate``) and the rest, by
   timing those functions in place;
2. duality gap: price, Andersen-Broadie upper bound and their gap, each with its SE;
3. convergence: the ``american`` price at 12 ... 252 steps a year next to the finite-difference
   values (``mcgreeks.analytic.american``) of the Bermudan with the same dates and of the
   continuously exercisable American;
4. Greeks at 52 steps a year against the finite-difference Bermudan with those dates, as
   error / SE (z-scores), over a few seeds.

Full: 100,000 paths, 12/26/52/104/252 steps a year, Greeks over 8 seeds, best of 3; about two
minutes on 2 cores.  ``--quick``: 81,920 paths (5 policies), 12 and 52 steps, one seed, one
repeat; under a minute.  Either way the paths are cheap next to the policies' fit, which is a
fixed 2^18 pilot paths per trade.  Writes the ``american`` section of RESULTS.md and
``american.png``.

    python benchmarks/american.py [--quick] [--repeats 3]
"""
import contextlib
import math
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases as C                                    # noqa: E402
from benchmarks.run import machine                                   # noqa: E402
from benchmarks.sections import put_section, report_parser          # noqa: E402

import mcgreeks                                                      # noqa: E402
from mcgreeks import dual_bound, underlying                          # noqa: E402
from mcgreeks.analytic.american import american_greeks, american_price  # noqa: E402

BEGIN, END = "<!-- american -->", "<!-- /american -->"
#: name -> (spot, strike, rate, div_yield, vol, maturity, option_type)
CONTRACTS = {"LS put": (36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put"),
             "dividend call": (100.0, 100.0, 0.03, 0.07, 0.25, 1.0, "call")}
STEPS = 52
GREEKS = ("delta", "gamma", "vega", "rho", "theta")
UNITS = {"price": "currency", "delta": "per unit of spot", "gamma": "per unit of spot²",
         "vega": "per 1.00 of σ", "rho": "per 1.00 of r", "theta": "per year"}
#: Relative bump of T (with the dates scaled along) for the reference theta.
THETA_BUMP = 1e-3


def book(contract, exercise="american"):
    """(trades, market) of one option on one GBM underlying."""
    spot, strike, rate, div, vol, maturity, option_type = contract
    trades = pd.DataFrame([dict(trade_id="t", underlying="X", payoff="european",
                                option_type=option_type, strike=strike, maturity=maturity,
                                exercise=exercise)])
    market = pd.DataFrame([dict(underlying="X", model="gbm", spot=spot, rate=rate,
                                div_yield=div, vol=vol)])
    return trades, market


def dates(maturity, steps_per_year):
    """The american grid's exercise dates: n = ceil(T · steps) dates i·T/n, i = 1..n."""
    n = max(1, math.ceil(maturity * steps_per_year - 1e-9))
    return maturity * np.arange(1, n + 1) / n


def revision():
    """'commit abc1234' of the checkout this mcgreeks comes from, '+ local changes' if its
    package files differ from it; '' outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", C.ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", C.ROOT, "status", "--porcelain", "--", "mcgreeks"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"mcgreeks at commit {head}" + (" + local changes" if dirty else "")


# -- timing ---------------------------------------------------------------------------------

class Phases:
    """Seconds spent, during one price_portfolio call, in the functions named in ``TIMED``:
    each is replaced in its module by a wrapper that adds its wall time (calls made from inside
    another timed function count in both)."""
    TIMED = ((underlying, "fit_policies", "fit"), (underlying, "simulate", "main"),
             (dual_bound, "gbm_upper_bound", "bound"))

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def installed(self):
        saved = []
        for module, name, label in self.TIMED:
            original = getattr(module, name)
            saved.append((module, name, original))
            setattr(module, name, self._wrap(original, label))
        try:
            yield self
        finally:
            for module, name, original in saved:
                setattr(module, name, original)

    def _wrap(self, function, label):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = (self.seconds.get(label, 0.0)
                                       + time.perf_counter() - start)
        return timed


_WARM = set()


def run(contract, n_paths, *, exercise="american", greeks="none", upper_bound=False,
        steps_per_year=STEPS, seed=0, repeats=1):
    """One price_portfolio configuration: dict(wall = best wall seconds of ``repeats`` runs,
    fit, bound, main, rest = the best of each phase over the repeats (fit excludes the bound,
    which fit_policies calls), row = the result row, the same in every repeat).  The first use
    of a configuration (exercise, greeks, bound) is preceded by a small warm-up run, so that
    compiling (or loading the cache) is not timed."""
    trades, market = book(contract, exercise)
    kwargs = dict(seed=seed, greeks=greeks, upper_bound=upper_bound,
                  steps_per_year=steps_per_year)
    if (exercise, greeks, upper_bound) not in _WARM:
        mcgreeks.price_portfolio(trades, market, n_paths=1 << 12, **kwargs)
        _WARM.add((exercise, greeks, upper_bound))
    best = None
    for _ in range(repeats):
        phases = Phases()
        with phases.installed():
            start = time.perf_counter()
            res = mcgreeks.price_portfolio(trades, market, n_paths=n_paths, **kwargs)
            wall = time.perf_counter() - start
        s = phases.seconds
        bound = s.get("bound", 0.0)
        this = dict(wall=wall, fit=s.get("fit", 0.0) - bound, bound=bound,
                    main=s.get("main", 0.0))
        this["rest"] = wall - this["fit"] - bound - this["main"]
        # each phase's best over the repeats (the runs are the same computation)
        best = this if best is None else {k: min(v, this[k]) for k, v in best.items()}
    best["row"] = res.iloc[0]
    return best


# -- references -----------------------------------------------------------------------------

def reference_greeks(contract, exercise_dates):
    """Finite-difference price and Greeks of the Bermudan (or, with None, the American); for a
    Bermudan, theta with the dates scaled along with T (t_i = i·T/n), as the engine's theta."""
    ref = american_greeks(*contract, exercise_dates=exercise_dates)
    if exercise_dates is not None:
        spot, strike, rate, div, vol, maturity, option_type = contract
        up, down = (american_price(spot, strike, rate, div, vol, maturity * c, option_type,
                                   exercise_dates=np.asarray(exercise_dates) * c)
                    for c in (1 + THETA_BUMP, 1 - THETA_BUMP))
        ref["theta"] = -(up - down) / (2 * THETA_BUMP * maturity)
    return ref


# -- the four measurements ------------------------------------------------------------------

#: label -> price_portfolio options of each timed run of section 1
COST_RUNS = {"European, price alone": dict(exercise="european"),
             "price alone": dict(),
             "price + all Greeks": dict(greeks="all"),
             "price + upper bound": dict(upper_bound=True)}


def measure_cost(n_paths, repeats):
    """{contract: {label: run}} for the runs of ``COST_RUNS``.  The repeats go round the runs
    (each round times every run once), so that a spell of load from another process falls on
    all of them alike rather than on one; each phase keeps its best over the rounds."""
    out = {name: {} for name in CONTRACTS}
    for _ in range(repeats):
        for name, contract in CONTRACTS.items():
            for label, options in COST_RUNS.items():
                r = run(contract, n_paths, **options)
                old = out[name].get(label)
                out[name][label] = r if old is None else dict(
                    {k: min(v, r[k]) for k, v in old.items() if k != "row"}, row=r["row"])
    for name in CONTRACTS:
        for label, r in out[name].items():
            print(f"{name:14s} {label:22s} {r['wall']:7.3f} s  fit {r['fit']:.3f}  "
                  f"bound {r['bound']:.3f}  main {r['main']:.3f}", flush=True)
    return out


def measure_convergence(n_paths, steps_list):
    """{contract: dict(american=FD American price, rows=[(steps, n dates, run, FD Bermudan)])}."""
    out = {}
    for name, contract in CONTRACTS.items():
        amer = american_price(*contract)
        rows = []
        for steps in steps_list:
            grid = dates(contract[5], steps)
            berm = american_price(*contract, exercise_dates=grid)
            r = run(contract, n_paths, steps_per_year=steps)
            rows.append((steps, grid.size, r, berm))
            print(f"{name:14s} {steps:4d} steps/yr  MC {r['row']['price']:.4f} ± "
                  f"{r['row']['price_se']:.4f}  Bermudan {berm:.4f}  American {amer:.4f}  "
                  f"({r['wall']:.2f} s)", flush=True)
        out[name] = dict(american=amer, rows=rows)
    return out


def measure_greeks(n_paths, seeds, first_rows):
    """{contract: dict(ref = FD Bermudan on the 52-step dates, american = FD American,
    rows = result rows of ``seeds`` (the first one from the cost run))}."""
    out = {}
    for name, contract in CONTRACTS.items():
        ref = reference_greeks(contract, dates(contract[5], STEPS))
        amer = reference_greeks(contract, None)
        rows = [first_rows[name]]
        for seed in seeds[1:]:
            rows.append(run(contract, n_paths, greeks="all", seed=seed)["row"])
        out[name] = dict(ref=ref, american=amer, rows=rows)
        z = {g: [(row[g] - ref[g]) / row[g + "_se"] for row in rows] for g in GREEKS}
        print(name, {g: np.round(v, 2).tolist() for g, v in z.items()}, flush=True)
    return out


# -- report ---------------------------------------------------------------------------------

def _span(values, fmt):
    """'a–b' of the smallest and largest of ``values`` formatted by ``fmt``, or 'a' if equal."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def _ratio(x):
    return f"{x:.2g}" if x < 0.1 else f"{x:.2f}"


def _pm(value, se, digits=4):
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def report(args, n_paths, repeats, steps_list, seeds, cost, conv, greeks, elapsed, m, load):
    quick = " --quick" if args.quick else ""
    lines = [BEGIN, "## Early exercise: cost, duality gap, convergence to the American\n",
             f"`python benchmarks/american.py{quick}` on {m['cpu']} ({m['cores']} cores, "
             f"{m['numba_threads']} numba threads, numba {m['versions']['numba']}"
             f"{', ' + revision() if revision() else ''}), load "
             f"average {load:.1f} at the start, {elapsed:.0f} s in all.  Two options under GBM "
             "with `exercise=\"american\"` (exercisable at every step of the grid, "
             f"{STEPS} a year unless said otherwise), priced by Longstaff–Schwartz policies "
             "fitted on 2^18 pilot paths of their own stream "
             "([reference](../../docs/reference.md#early-exercise)): the **LS put** (S = 36, "
             "K = 40, r = 6 %, q = 0, σ = 20 %, T = 1) and a **dividend call** (S = K = 100, "
             "r = 3 %, q = 7 %, σ = 25 %, T = 1).  "
             f"{n_paths:,} paths (so {n_policies(n_paths)} independent policies, whose "
             "spread is in every SE), seed 0.  Finite-difference "
             "references: `mcgreeks.analytic.american` (Crank–Nicolson, 4000 × 500; a Bermudan "
             "marched date by date).\n"]

    # 1. cost
    lines += ["### 1. What the price and its Greeks cost\n",
              f"Wall time of one `price_portfolio` call, best of {repeats} after a warm-up "
              "(compiling left out; the repeats go round the runs, so that another process's "
              "load falls on all of them alike).  *policy fit*: `underlying.fit_policies` "
              "(pilot paths and regressions, without the bound); *bound*: "
              "`dual_bound.gbm_upper_bound`; *main run*: `underlying.simulate` (the paths, with "
              "every estimator); *rest*: input checks, the pilot's other work, reduction and "
              "tables.  Each column is the best over the repeats, so the parts need not add up "
              f"to the wall exactly.  The main run is parallel ({m['numba_threads']} threads): "
              "it takes up to twice as long when another process holds a core, which the load "
              "above hints at.  Paths/s = paths / wall; × price alone = wall / the American "
              "price alone's wall.  All times in milliseconds.\n",
              "| contract | run | wall (ms) | policy fit (ms) | bound (ms) | main run (ms) | "
              "rest (ms) | paths/s | × price alone |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in cost.items():
        base = runs["price alone"]["wall"]
        for label, r in runs.items():
            lines.append(f"| {name} | {label} | {1e3 * r['wall']:,.0f} | {1e3 * r['fit']:,.0f} | "
                         f"{1e3 * r['bound']:,.0f} | {1e3 * r['main']:,.1f} | "
                         f"{1e3 * r['rest']:,.0f} | {n_paths / r['wall']:,.0f} | "
                         f"{_ratio(r['wall'] / base)} |")
    lines.append("")
    for name, runs in cost.items():
        p, a = runs["price alone"], runs["price + all Greeks"]
        e = runs["European, price alone"]
        lines.append(f"- {name}: all Greeks / price alone = {a['wall'] / p['wall']:.2f} in wall "
                     f"time, {a['main'] / p['main']:.2f} in the main run alone; the policy fit "
                     f"is {p['fit'] / p['wall']:.0%} of the price alone's wall; the main run "
                     f"prices {n_paths / p['main']:,.0f} paths/s (price alone) and "
                     f"{n_paths / a['main']:,.0f} paths/s (all Greeks); the European of the same "
                     f"contract: {1e3 * e['wall']:.1f} ms, price "
                     f"{_pm(e['row']['price'], e['row']['price_se'])} (American "
                     f"{_pm(p['row']['price'], p['row']['price_se'])}).")
    lines.append("")

    # 2. duality gap
    lines += ["### 2. Duality gap\n",
              "`upper_bound=True`: the Andersen–Broadie upper bound from the first policy "
              "(1,000 outer × 200 inner paths), and `duality_gap` = bound − price; SE of the "
              "gap = √(SE_price² + SE_bound²).  *FD Bermudan*: the finite-difference value of "
              f"the option exercisable on the same {STEPS} dates, which the price (a policy's "
              "value) must not exceed and the bound must not fall below, up to their noise.  "
              "*bound − FD Berm.*: how far above that value the bound sits, in % of it: how far "
              "the martingale built from the policy is from the optimal one, plus the inner "
              "paths' upward bias, measured to the bound's own small SE.  *bound adds*: wall "
              "with the bound − wall of the price alone (section 1); *bound itself*: "
              "time in `gbm_upper_bound`.  Prices in currency.\n",
              "| contract | price ± SE | FD Bermudan | upper bound ± SE | bound − FD Berm. "
              "(%) | gap ± SE | gap (% of price) | bound adds (s) | bound itself (s) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, runs in cost.items():
        r, p = runs["price + upper bound"], runs["price alone"]
        row = r["row"]
        berm = conv_value(conv, name, STEPS)
        lines.append(f"| {name} | {_pm(row['price'], row['price_se'])} | {berm:.4f} | "
                     f"{_pm(row['upper_bound'], row['upper_bound_se'])} | "
                     f"{100 * (row['upper_bound'] - berm) / berm:+.3f} ± "
                     f"{100 * row['upper_bound_se'] / berm:.3f} | "
                     f"{_pm(row['duality_gap'], row['duality_gap_se'])} | "
                     f"{row['duality_gap'] / row['price']:.2%} ± "
                     f"{row['duality_gap_se'] / row['price']:.2%} | "
                     f"{r['wall'] - p['wall']:.2f} | {r['bound']:.2f} |")
    lines.append("")

    # 3. convergence
    lines += ["### 3. `american` against the true American as the steps grow\n",
              f"Price alone, {n_paths:,} paths, seed 0, at each steps_per_year (n = ⌈T·steps⌉ "
              "exercise dates i·T/n).  *FD Bermudan*: the finite-difference value of the option "
              "exercisable on those n dates; *FD American*: exercisable at any time.  "
              "*Berm. − Amer.*: the cost of exercising on the grid only (the discretization of "
              "exercise); *MC − Berm.*: the fitted policies' low bias, ± its SE.  Both in % of "
              "the FD American.  *wall*: one run; *policy fit*: its part in `fit_policies`, which "
              "grows with the dates.  Every row uses seed 0, so the MC errors of one contract "
              "share their random numbers and move together down the column; section 4 has "
              f"the mean over {len(seeds)} seed(s) at {STEPS} steps.\n",
              "| contract | steps/yr | dates | MC price ± SE | FD Bermudan | FD American | "
              "Berm. − Amer. (%) | MC − Berm. (%) | wall (s) | policy fit (s) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in conv.items():
        amer = c["american"]
        for steps, n, r, berm in c["rows"]:
            row = r["row"]
            lines.append(f"| {name} | {steps} | {n} | {_pm(row['price'], row['price_se'])} | "
                         f"{berm:.4f} | {amer:.4f} | {100 * (berm - amer) / amer:+.3f} | "
                         f"{100 * (row['price'] - berm) / amer:+.3f} ± "
                         f"{100 * row['price_se'] / amer:.3f} | {r['wall']:.2f} | {r['fit']:.2f} |")
    lines.append("")

    # 4. Greeks
    lines += [f"### 4. Greeks at {STEPS} steps a year against finite differences\n",
              f"`greeks=\"all\"` (auto: pathwise, mixed gamma), {n_paths:,} paths, seeds "
              f"{seeds[0]}–{seeds[-1]}.  *FD Bermudan*: `american_greeks` of the option "
              f"exercisable on the same {STEPS} dates (theta with the dates scaled with T, as "
              "the engine's theta), the target; *FD American*: the continuous American, for "
              "scale.  *error*: MC (seed 0) − FD Bermudan, in % of it; z = error / SE per seed; "
              "mean z and RMS z over the seeds.  With R independent policies the SE rests on "
              "R − 1 degrees of freedom, so honest z-scores have RMS about √((R−1)/(R−3)) "
              "(1.29 at R = 6, 1.41 at R = 5), not 1; the price is low-biased, so its z leans "
              "negative.  Units: "
              + ", ".join(f"{g} {u}" for g, u in UNITS.items()) + ".\n",
              "| contract | quantity | FD Bermudan | FD American | MC (seed 0) ± SE | error (%) | "
              "z (seed 0) | mean error over seeds (%) | mean z | RMS z |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g in greeks.items():
        for q in ("price",) + GREEKS:
            ref, rows = g["ref"][q], g["rows"]
            se = "price_se" if q == "price" else q + "_se"
            z = np.array([(row[q] - ref) / row[se] for row in rows])
            err = np.array([100 * (row[q] - ref) / abs(ref) for row in rows])
            spread = (f" ± {err.std(ddof=1) / np.sqrt(err.size):.2f}" if err.size > 1 else "")
            lines.append(f"| {name} | {q} | {ref:.5g} | {g['american'][q]:.5g} | "
                         f"{rows[0][q]:.5g} ± {rows[0][se]:.2g} | {err[0]:+.2f} | {z[0]:+.2f} | "
                         f"{err.mean():+.2f}{spread} | {z.mean():+.2f} | "
                         f"{np.sqrt(np.mean(z ** 2)):.2f} |")
    lines += ["", "### Conclusions\n", conclusions(cost, conv, greeks, n_paths), "",
              "![price against steps per year; time of price, Greeks and bound](american.png)",
              END]
    return "\n".join(lines)


def n_policies(n_paths):
    """R, the number of independent policies an exercisable trade gets at ``n_paths``."""
    return underlying.exercise_policy.replicates(n_paths, underlying.engine.SEGMENT)[0]


def conv_value(conv, name, steps):
    """The FD Bermudan value at ``steps`` a year from the convergence runs (or computed)."""
    for s, _, _, berm in conv[name]["rows"]:
        if s == steps:
            return berm
    return american_price(*CONTRACTS[name], exercise_dates=dates(CONTRACTS[name][5], steps))


def conclusions(cost, conv, greeks, n_paths):
    """Two to four sentences from the numbers (so that they stay true on another machine)."""
    names = list(cost)
    ratios = [runs["price + all Greeks"]["wall"] / runs["price alone"]["wall"]
              for runs in cost.values()]
    fit_share = [runs["price alone"]["fit"] / runs["price alone"]["wall"]
                 for runs in cost.values()]
    main_share = [runs["price + all Greeks"]["main"] / runs["price + all Greeks"]["wall"]
                  for runs in cost.values()]
    bound_s = [runs["price + upper bound"]["wall"] - runs["price alone"]["wall"]
               for runs in cost.values()]
    gap_text = []
    for name, runs in cost.items():
        row = runs["price + upper bound"]["row"]
        gap_text.append(f"{100 * row['duality_gap'] / row['price']:.2f} ± "
                        f"{100 * row['duality_gap_se'] / row['price']:.2f} % ({name})")
    over = [100 * (runs["price + upper bound"]["row"]["upper_bound"]
                   - conv_value(conv, name, STEPS)) / conv_value(conv, name, STEPS)
            for name, runs in cost.items()]
    over_se = max(100 * runs["price + upper bound"]["row"]["upper_bound_se"]
                  / conv_value(conv, name, STEPS) for name, runs in cost.items())
    gap_z = max(runs["price + upper bound"]["row"]["duality_gap"]
                / runs["price + upper bound"]["row"]["duality_gap_se"] for runs in cost.values())
    disc = {name: {s: 100 * (berm - c["american"]) / c["american"]
                   for s, _, _, berm in c["rows"]} for name, c in conv.items()}
    bias_z = [(r["row"]["price"] - berm) / r["row"]["price_se"]
              for c in conv.values() for _, _, r, berm in c["rows"]]
    lo, hi = min(next(iter(disc.values()))), max(next(iter(disc.values())))
    rms = {name: float(np.sqrt(np.mean([((row[q] - g["ref"][q]) / row[q + "_se"]) ** 2
                                        for row in g["rows"] for q in GREEKS])))
           for name, g in greeks.items()}
    n_seeds = len(next(iter(greeks.values()))["rows"])
    worst = max(((name, q, np.mean([(row[q] - g["ref"][q]) / row[q + "_se"]
                                    for row in g["rows"]]))
                 for name, g in greeks.items() for q in GREEKS), key=lambda t: abs(t[2]))
    worst_err = [100 * (row[worst[1]] - greeks[worst[0]]["ref"][worst[1]])
                 / abs(greeks[worst[0]]["ref"][worst[1]]) for row in greeks[worst[0]]["rows"]]
    r = n_policies(n_paths)
    expected = f"{math.sqrt((r - 1) / (r - 3)):.2f}" if r > 3 else "unbounded"
    # mean z of n seeds has SE about RMS / √n: past 2.5 of those, the bias is more than noise
    significant = r > 3 and abs(worst[2]) * math.sqrt(n_seeds / ((r - 1) / (r - 3))) > 2.5
    return (
        f"At {n_paths:,} paths the price with every Greek takes {_span(ratios, '.2f')}× the "
        "time of the price alone: both are dominated by the fixed cost of fitting the "
        f"policies ({_span(fit_share, '.0%')} of the price alone's wall), and the main run "
        f"with every Greek is only {_span(main_share, '.0%')} of the wall.  "
        f"The dual bound adds {_span(bound_s, '.1f')} s per trade; the duality "
        f"gaps, {gap_text[0]} and {gap_text[1]}, "
        + ("are within the price's own noise" if gap_z < 2.5 else "are more than the noise")
        + f", while the bound itself sits only {over[0]:+.2f} % and {over[1]:+.2f} % above "
        f"the FD Bermudan (±{over_se:.2f} %): the first policy's martingale is close to "
        "optimal.  "
        f"Exercising on the grid instead of at any time costs {abs(disc[names[0]][lo]):.2f} % "
        f"({names[0]}) and {abs(disc[names[1]][lo]):.2f} % ({names[1]}) of the American at "
        f"{lo} steps a year and {abs(disc[names[0]][hi]):.3f} % and "
        f"{abs(disc[names[1]][hi]):.3f} % at {hi}, while the MC price sits within "
        f"{max(abs(z) for z in bias_z):.1f} SE of the grid's own Bermudan at every step count.  "
        f"The Greeks' z-scores against the FD Bermudan have RMS {rms[names[0]]:.2f} "
        f"({names[0]}) and {rms[names[1]]:.2f} ({names[1]}) over {n_seeds} seed(s), where "
        f"SEs on R − 1 = {r - 1} degrees of freedom give about {expected} when honest; the "
        f"largest mean z is {worst[2]:+.2f} ({worst[0]} {worst[1]}, mean error "
        f"{np.mean(worst_err):+.2f} %), "
        + ("more than the SEs allow: a bias shared by the policies, which their spread does "
           "not carry." if significant else "within what the SEs allow."))


# -- plot -----------------------------------------------------------------------------------

def plot(cost, conv, path):
    """Left: price against steps per year, relative to the FD American (MC ± 1 SE, FD
    Bermudan curve, American at 0).  Right: wall time of each run, split into its phases."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = dict(zip(conv, ("tab:blue", "tab:orange")))
    for name, c in conv.items():
        amer = c["american"]
        steps = np.array([s for s, _, _, _ in c["rows"]], dtype=float)
        berm = np.array([b for _, _, _, b in c["rows"]])
        mc = np.array([r["row"]["price"] for _, _, r, _ in c["rows"]])
        se = np.array([r["row"]["price_se"] for _, _, r, _ in c["rows"]])
        left.plot(steps, 100 * (berm / amer - 1), "-o", color=colours[name], markersize=4,
                  label=f"{name}: FD Bermudan on the grid")
        shift = 0.96 if name == next(iter(conv)) else 1.04
        left.errorbar(steps * shift, 100 * (mc / amer - 1), yerr=100 * se / amer, fmt="s",
                      color=colours[name], mfc="white", capsize=3,
                      label=f"{name}: MC american ± 1 SE")
    left.axhline(0.0, color="black", linewidth=1, label="FD American (continuous)")
    left.set_xscale("log")
    left.set_xticks(steps, [str(int(s)) for s in steps])
    left.set_xticks([], minor=True)
    left.set_xlabel("steps (exercise dates) per year")
    left.set_ylabel("price / FD American − 1 (%)")
    left.set_title("american: price against steps per year")
    left.legend(fontsize=7, loc="lower right")

    phases = (("fit", "policy fit", "tab:red"), ("main", "main run", "tab:green"),
              ("bound", "dual bound", "tab:purple"), ("rest", "rest", "tab:grey"))
    labels = list(next(iter(cost.values())))
    width = 0.38
    for k, (name, runs) in enumerate(cost.items()):
        x = np.arange(len(labels)) + (k - 0.5) * width
        bottom = np.zeros(len(labels))
        for key, text, colour in phases:
            h = np.array([max(runs[label][key], 0.0) for label in labels])
            right.bar(x, h, width, bottom=bottom, color=colour, alpha=1.0 if k == 0 else 0.55,
                      edgecolor="black", linewidth=0.5,
                      label=f"{text} ({name})")
            bottom += h
        for xi, label in zip(x, labels):
            right.text(xi, runs[label]["wall"], f"{runs[label]['wall']:.3g}", ha="center",
                       va="bottom", fontsize=7)
    right.set_xticks(np.arange(len(labels)), [lab.replace(", ", ",\n") for lab in labels],
                     fontsize=8)
    right.set_ylabel("wall time (s)")
    right.set_title("time per call (left bars: LS put; right: dividend call)")
    right.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = report_parser(__doc__, C.ROOT)
    parser.set_defaults(repeats=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load = os.getloadavg()[0]
    m = machine()
    if args.quick:
        n_paths, steps_list, seeds = 81_920, (12, 52), (0,)
        repeats = args.repeats or 1
    else:
        n_paths, steps_list, seeds = 100_000, (12, 26, 52, 104, 252), tuple(range(8))
        repeats = args.repeats or 3
    cost = measure_cost(n_paths, repeats)
    conv = measure_convergence(n_paths, steps_list)
    first = {name: runs["price + all Greeks"]["row"] for name, runs in cost.items()}
    greeks = measure_greeks(n_paths, seeds, first)
    elapsed = time.perf_counter() - start
    text = report(args, n_paths, repeats, steps_list, seeds, cost, conv, greeks, elapsed, m,
                  load)
    plot(cost, conv, os.path.join(os.path.dirname(args.out), "american.png"))
    put_section(args.out, text, BEGIN, END)
    print(text)
    print(f"wrote the american section of {args.out} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
