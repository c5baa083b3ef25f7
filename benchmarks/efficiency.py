"""Efficiency of every Greek estimator and sampler, relative to bump-and-revalue (fd).

    python benchmarks/efficiency.py [--quick] [--out DIR]

For each case (one trade, quantity 1: European, digital, arithmetic and geometric Asian,
continuous and discrete up-and-out barrier under GBM; European and digital under Heston) and
each Greek, every estimator the library accepts for that Greek (pathwise, lr, mixed, fd,
optimal, vibrato: asked through ``price_portfolio(..., method={greek: name})``, an
``InputError`` meaning "not valid") is run with each sampler ("mc", "antithetic"; "sobol" for GBM
only) on the same seed and number of paths.  Measured per cell:

- variance per path = se² × n_paths (for antithetic and sobol the "effective" variance, se² × n:
  an antithetic pair costs two paths);
- wall time per path of the whole ``price_portfolio`` call (the trade's price and all its Greeks,
  the asked Greek on the asked estimator and the others on ``auto``), best of 3 after a warm-up
  call that compiles the kernels (the repeats taken in turn across the row's cells).

Efficiency = 1 / (variance × time), reported relative to fd with mc on the same (case, Greek),
together with the variance ratio alone (the statistical gain).  Writes DIR/EFFICIENCY.md and
DIR/efficiency.png (default DIR: benchmarks/results), keeping the marked sections that other
scripts wrote into EFFICIENCY.md (heston_feller.py, efficiency_multi.py).  The full run takes
several minutes on 2 cores; ``--quick`` (under a minute) uses 16x fewer paths, to check that
everything runs.
"""
import argparse
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import mcgreeks  # noqa: E402
from benchmarks.cases import HESTON, HESTON_GREEKS  # noqa: E402
from benchmarks.run import _kept_sections, log, machine, timed  # noqa: E402
from mcgreeks import InputError  # noqa: E402
from mcgreeks.analytic import asian, barrier, black_scholes, heston  # noqa: E402
from mcgreeks.greeks import ESTIMATORS, GBM_GREEKS  # noqa: E402

SEED = 2024
REPEATS = 3
WARM_PATHS = 16 * 256          # the warm-up call: compiles the kernels; a valid sobol size too
RANDOMIZATIONS = 16            # price_portfolio's default for sobol
MODES = {                      # paths per call: GBM (16 × a power of two, for sobol), Heston
    "full": dict(gbm=16 * 2**14, heston=2**16),
    "quick": dict(gbm=16 * 2**10, heston=2**12),
}
BASELINE = ("fd", "mc")
Z_FLAG = 4.0                   # |estimate − closed form| / se beyond which a cell is flagged
ROUNDING = 1e-12               # se below this × max(|value|, 1): zero but for rounding

# -- the cases -------------------------------------------------------------------------------------

GBM_MARKET = dict(spot=100.0, rate=0.03, div_yield=0.01, vol=0.2)
STRIKE, MATURITY, N_FIXINGS, BARRIER_LEVEL = 100.0, 1.0, 52, 130.0
HESTON_STEPS_PER_YEAR = 252

CASES = {   # key: (label, model, the trade's payoff columns)
    "european": ("European call", "gbm", dict(payoff="european")),
    "digital": ("digital call (cash 1)", "gbm", dict(payoff="digital", cash=1.0)),
    "asian_arithmetic": ("arithmetic Asian call, 52 fixings, geometric CV", "gbm",
                         dict(payoff="asian_arithmetic", n_fixings=N_FIXINGS)),
    "asian_geometric": ("geometric Asian call, 52 fixings", "gbm",
                        dict(payoff="asian_geometric", n_fixings=N_FIXINGS)),
    "barrier_continuous": ("up-and-out call H=130, continuous", "gbm",
                           dict(payoff="barrier", barrier=BARRIER_LEVEL, barrier_type="up_out",
                                monitoring="continuous")),
    "barrier_discrete": ("up-and-out call H=130, 52 dates", "gbm",
                         dict(payoff="barrier", barrier=BARRIER_LEVEL, barrier_type="up_out",
                              monitoring="discrete", n_fixings=N_FIXINGS)),
    "heston_european": ("Heston European call, 252 steps", "heston", dict(payoff="european")),
    "heston_digital": ("Heston digital call, 252 steps", "heston",
                       dict(payoff="digital", cash=1.0)),
}
SHORT = {"european": "European", "digital": "digital", "asian_arithmetic": "Asian arith.",
         "asian_geometric": "Asian geom.", "barrier_continuous": "barrier cont.",
         "barrier_discrete": "barrier disc.", "heston_european": "Heston European",
         "heston_digital": "Heston digital"}


def market(model):
    if model == "gbm":
        row = dict(underlying="X", model="gbm", **GBM_MARKET)
    else:
        row = dict(underlying="X", model="heston", **HESTON)
    return pd.DataFrame([row])


def trade(fields):
    row = dict(trade_id="T1", underlying="X", option_type="call", strike=STRIKE,
               maturity=MATURITY, quantity=1)
    row.update(fields)
    return pd.DataFrame([row])


#: Every sampler, in column order.
SAMPLERS = ("mc", "antithetic", "sobol")


def samplers(model):
    return SAMPLERS if model == "gbm" else ("mc", "antithetic")


def greeks_of(model):
    return GBM_GREEKS if model == "gbm" else HESTON_GREEKS


def closed_form(key):
    """Exact price and Greeks of a case, where a closed form exists (else None).  Heston's is
    the model's, so the QE discretization bias is part of the difference."""
    gbm = dict(spot=GBM_MARKET["spot"], strike=STRIKE, maturity=MATURITY, rate=GBM_MARKET["rate"],
               vol=GBM_MARKET["vol"], div_yield=GBM_MARKET["div_yield"])
    if key == "european":
        return black_scholes.european(**gbm)
    if key == "digital":
        return black_scholes.digital(**gbm, cash=1.0)
    if key == "asian_geometric":
        return asian.geometric_asian(**gbm, n_fixings=N_FIXINGS)
    if key == "barrier_continuous":
        return barrier.barrier(**gbm, barrier=BARRIER_LEVEL, barrier_type="up_out")
    if key == "heston_european":
        return heston.heston_european(strike=STRIKE, maturity=MATURITY, **HESTON)
    return None


# -- measuring -------------------------------------------------------------------------------------

def run_once(key, n_paths, greek, estimator, sampler):
    _, model, fields = CASES[key]
    return mcgreeks.price_portfolio(
        trade(fields), market(model), n_paths=n_paths, seed=SEED, method={greek: estimator},
        sampler=sampler, randomizations=RANDOMIZATIONS,
        steps_per_year=HESTON_STEPS_PER_YEAR if model == "heston" else None).iloc[0]


def accepts(key, greek, estimator, sampler="mc"):
    """Whether the library accepts ``estimator`` for this Greek; the call also warms the JIT."""
    try:
        run_once(key, WARM_PATHS, greek, estimator, sampler)
    except InputError:
        return False
    return True


def measure_row(key, n_paths, greek, estimators, sampler_names):
    """Every (estimator, sampler) cell of one (case, Greek).  After a warm-up call per cell, the
    repeats go round the cells in turn, so a burst of other work on the machine hits them alike;
    each cell keeps its best time."""
    keys = [(e, s) for e in estimators for s in sampler_names]
    for e, s in keys:
        accepts(key, greek, e, s)                           # warm-up (compilation excluded)
    best, rows = {k: math.inf for k in keys}, {}
    for _ in range(REPEATS):
        for e, s in keys:
            seconds, rows[(e, s)] = timed(lambda: run_once(key, n_paths, greek, e, s))
            best[(e, s)] = min(best[(e, s)], seconds)
    cells = []
    for (e, s), row in rows.items():
        se = float(row[greek + "_se"])
        cells.append(dict(case=key, greek=greek, estimator=e, sampler=s, n_paths=n_paths,
                          value=float(row[greek]), se=se, seconds=best[(e, s)],
                          variance=se * se * n_paths, time_per_path=best[(e, s)] / n_paths,
                          used=row["method_" + greek],
                          error=row["error"] if isinstance(row["error"], str) else ""))
    return cells


def measure_all(mode):
    paths = MODES[mode]
    cells, fd_only = [], []
    for key, (label, model, _) in CASES.items():
        for greek in greeks_of(model):
            valid = [e for e in ESTIMATORS if accepts(key, greek, e)]
            if valid == ["fd"]:
                fd_only.append((key, greek))
                continue
            for c in measure_row(key, paths[model], greek, valid, samplers(model)):
                cells.append(c)
                log(f"  {key:18s} {greek:7s} {c['estimator']:8s} {c['sampler']:5s} "
                    f"{c['value']:12.6g} ± {c['se']:.3g}  {c['seconds']:.3f} s")
    return cells, fd_only


def exact_zero_se(c):
    """The standard error is zero but for rounding (every randomization gave the same number)."""
    return c["se"] <= ROUNDING * max(abs(c["value"]), 1.0)


def add_ratios(cells):
    """rel = (var × time of fd/mc) / (var × time), and the variance ratio alone (∞ where the
    standard error is zero but for rounding)."""
    base = {(c["case"], c["greek"]): c for c in cells if (c["estimator"], c["sampler"]) == BASELINE}
    for c in cells:
        b = base[(c["case"], c["greek"])]
        if exact_zero_se(c):
            c["rel"] = c["var_ratio"] = math.inf
            continue
        cost, b_cost = c["variance"] * c["time_per_path"], b["variance"] * b["time_per_path"]
        c["rel"] = b_cost / cost
        c["var_ratio"] = b["variance"] / c["variance"]


# -- summary and oddities, from the numbers --------------------------------------------------------

def rows_of(cells):
    """{(case, greek): {(estimator, sampler): cell}} in measuring order."""
    rows = {}
    for c in cells:
        rows.setdefault((c["case"], c["greek"]), {})[(c["estimator"], c["sampler"])] = c
    return rows


def columns_of(cells):
    present = {(c["estimator"], c["sampler"]) for c in cells}
    return [(e, s) for e in ESTIMATORS for s in SAMPLERS if (e, s) in present]


def best_key(row, field="rel", sampler=None):
    """The (estimator, sampler) of a row with the highest ``field``, among the cells not
    flagged as biased (``check`` marks them) and, if given, with ``sampler``."""
    keys = [k for k, c in row.items() if not c.get("biased") and sampler in (None, k[1])]
    return max(keys, key=lambda k: row[k][field])


def row_name(case, greek):
    return f"{SHORT[case]} {greek}"


def fmt_x(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞"
    if x >= 1e6:
        return f"{x:.1e}×".replace("e+0", "e")
    if x >= 1000:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    if x >= 0.01:
        return f"{x:.2f}×"
    return f"{x:.1e}×".replace("e-0", "e-")


def summary(cells):
    """'What to use' lines, each computed from the measured cells."""
    rows, lines = rows_of(cells), []

    def listing(groups):
        return "; ".join(f"**{k}** in {len(v)} ({', '.join(v)})" for k, v in
                         sorted(groups.items(), key=lambda kv: -len(kv[1])))

    best_mc, best_any, fd_best = {}, {}, []
    for (case, greek), row in rows.items():
        e, s = best_key(row, sampler="mc")
        best_mc.setdefault(e, []).append(f"{row_name(case, greek)} {fmt_x(row[(e, s)]['rel'])}")
        if e == "fd":
            fd_best.append(row_name(case, greek))
        e, s = best_key(row)
        best_any.setdefault(f"{e} + {s}", []).append(row_name(case, greek))
    lines.append(f"- With Monte Carlo paths (`mc`), the most efficient estimator per (payoff, "
                 f"Greek), its gain over fd after the name: {listing(best_mc)}. Where two "
                 "estimators have about the same variance (pathwise and fd on smooth payoffs: fd "
                 "on common random numbers is a finite-difference pathwise estimate), the winner "
                 "is decided by timing noise of ±20 % or so.")
    lines.append(f"- Over all samplers, the best (estimator, sampler) per row, leaving out "
                 f"estimates flagged ‡ as biased: {listing(best_any)}.")
    lines.append("- fd with mc is the most efficient mc estimator in "
                 + (f"{len(fd_best)} rows: {', '.join(fd_best)}." if fd_best else
                    "no row: some unbiased estimator always beats bump-and-revalue."))

    for sampler in SAMPLERS[1:]:
        gains = {}      # this sampler over mc, same estimator, per case
        for (case, greek), row in rows.items():
            for (e, s), c in row.items():
                if s == sampler and (e, "mc") in row:
                    gains.setdefault(case, []).append(c["rel"] / row[(e, "mc")]["rel"])
        if gains:
            allg = [g for v in gains.values() for g in v]
            per_case = ", ".join(f"{SHORT[k]} {fmt_x(float(np.median(v)))}" for k, v in
                                 sorted(gains.items(), key=lambda kv: -np.median(kv[1])))
            lines.append(f"- {sampler} instead of mc, same estimator: more efficient in "
                         f"{sum(g > 1 for g in allg)} of {len(allg)} cells; median gain by "
                         f"payoff: {per_case}.")

    worse = []      # optimal against the better of its two components
    for (case, greek), row in rows.items():
        for s in SAMPLERS:
            if ("optimal", s) not in row:
                continue
            parts = [row[(e, s)]["variance"] for e in ("pathwise", "mixed", "lr")
                     if (e, s) in row and not exact_zero_se(row[(e, s)])]
            if parts and row[("optimal", s)]["variance"] > 1.1 * min(parts):
                worse.append(f"{row_name(case, greek)} ({s}, "
                             f"{row[('optimal', s)]['variance'] / min(parts):.2f}× the variance)")
    n_opt = sum(1 for c in cells if c["estimator"] == "optimal")
    by_sampler = ", ".join(f"{sum(f'({s},' in w for w in worse)} with {s}" for s in SAMPLERS)
    lines.append(f"- optimal (the blend, its weight fitted on a Monte Carlo pilot) has a variance "
                 f"within 10 % of, or below, the better of its two components in "
                 f"{n_opt - len(worse)} of {n_opt} cells"
                 + (f"; it is worse in {len(worse)} ({by_sampler}): {', '.join(worse)}."
                    if worse else "."))

    spreads = []    # how much the estimator changes the wall time of a row (same sampler)
    for row in rows.values():
        for s in SAMPLERS:
            t = [c["seconds"] for (e, ss), c in row.items() if ss == s]
            if len(t) > 1:
                spreads.append(max(t) / min(t))
    if spreads:
        lines.append(f"- Time is a small part of the story: within a row and sampler, the slowest "
                     f"estimator's call takes a median {np.median(spreads):.2f}× (at most "
                     f"{max(spreads):.2f}×) the fastest one's, while variances differ by orders "
                     "of magnitude.")
    return lines


def check(cells, fd_only):
    """Notes on things in the numbers that deserve a second look.  Marks c["biased"] on the
    cells more than Z_FLAG standard errors from the closed form (or from the row's most
    precise estimate): efficiency counts variance only, so those must not win a row."""
    notes, rows = [], rows_of(cells)

    def name(c):
        return f"{row_name(c['case'], c['greek'])} {c['estimator']}/{c['sampler']}"

    for c in cells:
        if c["error"]:
            notes.append(f"{name(c)}: row error {c['error']!r}")
        if c["used"] != c["estimator"]:
            notes.append(f"{name(c)}: the result says method_{c['greek']} = {c['used']!r}")
    exact_cells = [c for c in cells if exact_zero_se(c)]
    if exact_cells:
        drift = GBM_MARKET["rate"] - GBM_MARKET["div_yield"] - GBM_MARKET["vol"] ** 2 / 2
        notes.append(
            "Standard error zero but for rounding (shown as ∞): "
            + ", ".join(f"{name(c)} ({c['value']:.6g})" for c in exact_cells) + ". "
            + ("Here r − q − σ²/2 = 0, so the strike K = S0 sits at the median of S_T: the "
               "digital's indicator (and the European's pathwise rho, T·K·e^(−rT)·1{S_T > K}) "
               "jumps at u = 1/2 of the single uniform, a boundary of every Sobol stratum, and "
               "each scrambling counts the same points. A coincidence of these parameters, not a "
               "general gain; such cells are left out of the 'what to use' comparisons with "
               "optimal. The same coincidence makes the "
               "digital's theta easy for fd on mc: T moves no path across the strike, so the "
               "bumped prices differ by the discount factor only." if abs(drift) < 1e-12 else
               "Every scrambling gave the same number; the SE from 15 degrees of freedom cannot "
               "see the error."))
    for (case, greek), row in rows.items():
        keys = list(row)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if a[1] == b[1] and row[a]["value"] == row[b]["value"] \
                        and row[a]["se"] == row[b]["se"] and not exact_zero_se(row[a]):
                    why = (f"optimal's fitted blend weight put it all on {a[0]}"
                           if b[0] == "optimal" else "as if one were computed as the other")
                    notes.append(f"{row_name(case, greek)} ({a[1]}): {a[0]} and {b[0]} give "
                                 f"bit-identical estimates ({row[a]['value']:.6g} ± "
                                 f"{row[a]['se']:.3g}): {why}.")
    for (case, greek), row in rows.items():
        exact, skip = closed_form(case), None
        if exact is not None:
            ref, ref_se, what = float(exact[greek]), 0.0, "the closed form"
        else:       # no closed form: the most precise estimate other than fd's in the row
            skip = min((c for (e, s), c in row.items() if e != "fd" and not exact_zero_se(c)),
                       key=lambda c: c["se"])
            ref, ref_se = skip["value"], skip["se"]
            what = f"the row's most precise estimate ({skip['estimator']}/{skip['sampler']})"
        for c in row.values():
            if c is skip:
                continue
            if exact_zero_se(c):
                if exact is not None and abs(c["value"] - ref) > 1e-9 * max(abs(ref), 1.0):
                    c["biased"] = True
                    notes.append(f"{name(c)}: {c['value']:.6g} with an SE of 0, but the closed "
                                 f"form is {ref:.6g}: the jump of the bumped payoff is near a "
                                 "Sobol stratum boundary and every scrambling happened to count "
                                 "the same points, so the SE cannot see the error.")
                continue
            z = (c["value"] - ref) / math.hypot(c["se"], ref_se)
            if abs(z) > Z_FLAG:
                c["biased"] = True
                notes.append(
                    f"{name(c)}: {c['value']:.6g} ± {c['se']:.2g} is {z:+.1f} SE from {what} "
                    f"{ref:.6g}" + (" (fd's O(h²) bump bias?)" if c["estimator"] == "fd" else "")
                    + (" (includes the QE discretization bias)" if case.startswith("heston")
                       else "")
                    + (" (sobol: an SE from 15 degrees of freedom)" if c["sampler"] == "sobol"
                       else ""))
    noisy = [c for c in cells if c["var_ratio"] < 0.01]
    if noisy:
        notes.append("More than 100× the variance of fd with mc (valid, not worth using there): "
                     + ", ".join(f"{name(c)} ({fmt_x(c['var_ratio'])})" for c in noisy) + ".")
    vibrato = [c for c in cells if c["case"] == "heston_digital" and c["estimator"] == "vibrato"]
    notes.append("Vibrato under Heston (digital delta/gamma, being added to the library while this "
                 "ran): " + ("accepted by the library at run time and measured above."
                             if vibrato else "refused with an InputError at run time: skipped."))
    if fd_only:
        notes.append("Only fd is valid (not timed, nothing to compare): "
                     + ", ".join(row_name(*k) for k in fd_only) + ".")
    return notes


# -- report ----------------------------------------------------------------------------------------

def table(cells, field):
    """Markdown table of ``field`` (rel or var_ratio): best unflagged per row in bold, cells
    flagged as biased marked ‡."""
    cols = columns_of(cells)
    out = ["| payoff | Greek | " + " | ".join(f"{e} {s}" for e, s in cols) + " |",
           "|---|---|" + "---|" * len(cols)]
    for (case, greek), row in rows_of(cells).items():
        best = best_key(row, field)
        cells_txt = []
        for k in cols:
            if k not in row:
                cells_txt.append("—")
            else:
                txt = fmt_x(row[k][field]) + (" ‡" if row[k].get("biased") else "")
                cells_txt.append(f"**{txt}**" if k == best else txt)
        out.append(f"| {SHORT[case]} | {greek} | " + " | ".join(cells_txt) + " |")
    return out


def write_report(data, out_dir):
    m, cells, mode = data["machine"], data["cells"], data["mode"]
    paths = MODES[mode]
    L = []
    add = L.append
    add("# Estimator efficiency relative to bump-and-revalue\n")
    add(f"Generated by `python benchmarks/efficiency.py{' --quick' if mode == 'quick' else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(data['finished']))} "
        f"({'quick mode: 16× fewer paths, for checking only' if mode == 'quick' else 'full run'}; "
        f"{data['elapsed'] / 60:.1f} min).\n")
    add("## Machine\n")
    add(f"- CPU: {m['cpu']}, {m['cores']} cores; numba threads used: {data['threads']}, "
        f"threading layer `{m.get('threading_layer')}`")
    add(f"- {m['platform']}")
    add("- Versions: " + ", ".join(f"{k} {m['versions'][k]}" for k in
                                   ("mcgreeks", "numba", "numpy", "pandas", "python")))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(data["source_before"]))
    add(f"- mcgreeks source last modified {stamp} before the run"
        + ("; **it was modified again during the run** (another engineer's work): the "
           "measurements use the code imported at the start, bar kernels compiled later."
           if data["source_after"] != data["source_before"] else ", not during it."))
    lb, la = m["load_before"], data["load_after"]
    add(f"- Load average (1/5/15 min) before: {lb[0]:.2f} / {lb[1]:.2f} / {lb[2]:.2f}; after: "
        f"{la[0]:.2f} / {la[1]:.2f} / {la[2]:.2f}. Other processes shared the 2 cores, so times "
        "are noisy; each is the best of 3.\n")

    add("## What is measured\n")
    add(f"- Market: GBM S0 = {GBM_MARKET['spot']:g}, r = {GBM_MARKET['rate']:.0%}, "
        f"q = {GBM_MARKET['div_yield']:.0%}, σ = {GBM_MARKET['vol']:.0%}; Heston "
        + ", ".join(f"{k} = {v:g}" for k, v in HESTON.items())
        + f" with {HESTON_STEPS_PER_YEAR} QE steps per year. T = {MATURITY:g}, K = {STRIKE:g}, "
        "one trade of quantity 1 per case:")
    for key, (label, model, _) in CASES.items():
        add(f"  - **{SHORT[key]}**: {label}")
    add(f"- Greeks: {', '.join(GBM_GREEKS)} (GBM); {', '.join(HESTON_GREEKS)} (Heston). Vega per "
        "1.00 of σ, rho per 1.00 of r, theta = −∂V/∂T.")
    add("- Estimators: each of " + ", ".join(ESTIMATORS) + " that the library accepts for the "
        "(payoff, Greek): `price_portfolio(..., method={greek: name})`, an `InputError` meaning "
        "not valid (shown as —). Samplers: `mc` (Monte Carlo), `antithetic` (Monte Carlo in "
        "reflected pairs, the SE from the pair means) and, for GBM only, `sobol` "
        f"(randomized QMC, {RANDOMIZATIONS} scramblings of a power of two each). "
        "Library defaults otherwise: lr baseline on, geometric control variate for the arithmetic "
        "Asian, fd bumps spot ±1 %, σ ±1 %, r ±10 bp, T ±1 %.")
    add(f"- Paths per call: {paths['gbm']:,} (GBM; = {RANDOMIZATIONS} × 2^"
        f"{int(math.log2(paths['gbm'] // RANDOMIZATIONS))}), {paths['heston']:,} (Heston); "
        f"seed {SEED}, the same for every cell.")
    add("- **Variance per path** = se² × n_paths. For antithetic and sobol it is the *effective* "
        "variance, comparable with mc's at the same cost in paths; for sobol the "
        f"squared standard error (from the spread of the {RANDOMIZATIONS} scramblings, so it rests "
        f"on {RANDOMIZATIONS - 1} degrees of freedom and is itself uncertain by roughly ±35 %) "
        "times n.")
    add("- **Time per path** = wall time of the whole `price_portfolio` call ÷ n_paths, best of "
        f"{REPEATS}, after a {WARM_PATHS:,}-path warm-up call with the same settings "
        "(compilation excluded). The repeats go round a row's cells in turn, so a burst of other "
        "work hits its estimators alike.")
    add("- **Relative efficiency** = efficiency / efficiency of fd with mc on the same (payoff, "
        "Greek), efficiency = 1 / (variance × time): rel = (var_fd × time_fd) / (var × time). "
        "Above 1× the estimator reaches a given standard error faster than bump-and-revalue.")
    add("- Honest caveat on time: each call prices the trade *with all its Greeks*; only the "
        "asked Greek uses the asked estimator and the others stay on `auto` (including its "
        "4,096-path pilot and, for optimal, the blend's pilot). Differences in cost between "
        "estimators are therefore diluted; the **variance ratio** var_fd / var (second table) "
        "is the pure statistical gain, free of timing noise.")
    add(f"- Efficiency counts variance, not bias. Estimates more than {Z_FLAG:g} standard errors "
        "from the closed form (or, without one, from the row's most precise non-fd estimate) are "
        "marked ‡ and cannot be a row's best: fd's O(h²) bump bias shows once sobol makes the "
        "standard error tiny.\n")

    add(f"## Relative efficiency (× fd with mc; best per row in bold, ‡ more than {Z_FLAG:g} SE "
        "off)\n")
    L.extend(table(cells, "rel"))
    add("")
    add(f"## Variance ratio alone, var_fd(mc) / var (best per row in bold, ‡ more than "
        f"{Z_FLAG:g} SE off)\n")
    L.extend(table(cells, "var_ratio"))
    add("")
    add("![relative efficiency](efficiency.png)\n")

    add("## What to use\n")
    add("Generated from the numbers above:\n")
    L.extend(data["summary"])
    add("")
    add("## Things to look at\n")
    add(f"Generated checks: each result's method column is the estimator asked; every estimate "
        f"is compared with the closed form (European, digital, geometric Asian, continuous "
        f"barrier, Heston European) or, without one, with the most precise non-fd estimate of "
        f"its row, and flagged beyond {Z_FLAG:g} combined SE; estimators giving bit-identical "
        f"numbers are named.\n")
    for note in data["oddities"]:
        add(f"- {note}")
    add("")

    add("## All measurements\n")
    add("| payoff | Greek | estimator | sampler | estimate | se | variance per path | "
        "µs per path | rel. efficiency | variance ratio |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        add(f"| {SHORT[c['case']]} | {c['greek']} | {c['estimator']} | {c['sampler']} | "
            f"{c['value']:.6g} | {c['se']:.3g} | {c['variance']:.3g} | "
            f"{c['time_per_path'] * 1e6:.3f} | {fmt_x(c['rel'])} | {fmt_x(c['var_ratio'])} |")
    path = os.path.join(out_dir, "EFFICIENCY.md")
    # other scripts write marked sections of this file (heston_feller.py, efficiency_multi.py):
    # keep every one of them, each after a blank line; read them before opening the file for
    # writing, which empties it
    kept = _kept_sections(path)
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n" + "".join(kept))


def plot(cells, out_dir, mode):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    rows, cols = rows_of(cells), columns_of(cells)
    grid = np.full((len(rows), len(cols)), np.nan)
    for i, row in enumerate(rows.values()):
        for j, k in enumerate(cols):
            if k in row:
                grid[i, j] = row[k]["rel"]
    logs = np.log10(np.clip(grid, 1e-6, 1e9))          # ∞ (SE 0) drawn at the top end
    low = min(-1, math.floor(float(np.nanmin(logs))))
    high = max(1, math.ceil(float(np.nanmax(logs))))
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 3.5, 0.32 * len(rows) + 2.0))
    cmap = plt.get_cmap("RdBu").copy()
    cmap.set_bad("#e8e8e8")
    im = ax.imshow(np.ma.masked_invalid(logs), cmap=cmap, aspect="auto",
                   norm=TwoSlopeNorm(vmin=low, vcenter=0.0, vmax=high))
    for i, row in enumerate(rows.values()):
        best = best_key(row)
        for j, k in enumerate(cols):
            if k in row:
                text = "SE 0" if math.isinf(grid[i, j]) else fmt_x(grid[i, j]).replace("×", "")
                dark = logs[i, j] > 0.6 * high or logs[i, j] < 0.6 * low
                ax.text(j, i, text + (" ‡" if row[k].get("biased") else ""), ha="center",
                        va="center", fontsize=6.5, fontweight="bold" if k == best else "normal",
                        color="white" if dark else "black")
    cases = [case for case, _ in rows]
    for i in range(1, len(cases)):
        if cases[i] != cases[i - 1]:
            ax.axhline(i - 0.5, color="black", linewidth=0.8)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([f"{e}\n{s}" for e, s in cols], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([row_name(*k) for k in rows], fontsize=8)
    bar = fig.colorbar(im, ax=ax, shrink=0.6, pad=0.02)
    ticks = list(range(low, high + 1, 1 if high - low <= 8 else 2))
    bar.set_ticks(ticks)
    bar.set_ticklabels([f"{10.0 ** t:g}×" for t in ticks])
    bar.set_label("efficiency relative to fd with mc (log scale)")
    ax.set_title("Relative efficiency 1/(variance × time) vs fd/mc; grey: not valid; "
                 f"‡: more than {Z_FLAG:g} SE off (biased); bold: best unflagged"
                 + (" (quick run)" if mode == "quick" else ""), fontsize=9, pad=30)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "efficiency.png"), dpi=120)
    plt.close(fig)


# -- main ------------------------------------------------------------------------------------------

def library_stamp():
    """Latest modification time of mcgreeks' source (others edit it while benchmarks run)."""
    root = os.path.dirname(mcgreeks.__file__)
    return max(os.path.getmtime(os.path.join(d, f)) for d, _, files in os.walk(root)
               for f in files if f.endswith(".py"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16x fewer paths, to check it runs")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    data = {"machine": machine(), "mode": mode, "threads": numba.get_num_threads(),
            "source_before": library_stamp()}
    log(f"estimator efficiency ({mode}); load average {data['machine']['load_before']}")
    data["cells"], data["fd_only"] = measure_all(mode)
    try:
        data["machine"]["threading_layer"] = numba.threading_layer()
    except ValueError:
        pass
    add_ratios(data["cells"])
    data["oddities"] = check(data["cells"], data["fd_only"])     # before the summary
    data["summary"] = summary(data["cells"])
    data["load_after"] = os.getloadavg()
    data["source_after"] = library_stamp()
    data["finished"] = time.time()
    data["elapsed"] = time.perf_counter() - start
    plot(data["cells"], args.out, mode)
    write_report(data, args.out)
    log(f"done in {data['elapsed'] / 60:.1f} min; wrote "
        f"{os.path.join(args.out, 'EFFICIENCY.md')} and efficiency.png")


if __name__ == "__main__":
    main()
