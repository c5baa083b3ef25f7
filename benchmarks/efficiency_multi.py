"""Efficiency of the multi-asset and early-exercise estimators relative to bump-and-revalue (fd).

    python benchmarks/efficiency_multi.py [--quick] [--repeats 3] [--out .../EFFICIENCY.md]

``benchmarks/efficiency.py`` covers one-name European payoffs; this script covers the
estimators added since, through ``mcgreeks.price_portfolio(..., risk=True, method=...)``:

1. ``gbm basket``: cross-gamma and pair-correlation sensitivity (``d_pair_corr``) of a 5-name
   GBM basket call (``benchmarks.multi_asset.basket_book(5, "gbm")``) by ``auto`` (mixed for
   cross-gamma, pathwise for ``d_pair_corr``), ``lr`` and ``fd``;
2. ``heston basket 2`` / ``5``: ``d_corr`` and ``d_pair_corr`` of a 2- and a 5-name Heston
   basket call (``basket_book(n, "heston")``, 52 QE steps a year) by ``auto`` (pathwise, from
   the reverse sweeps) and ``fd``;
3. ``american put``: delta, gamma, vega, rho and theta of the Longstaff-Schwartz American put
   (S = 36, K = 40, r = 6 %, q = 0, σ = 20 %, T = 1, exercisable 52 times a year) by ``auto``
   (pathwise; mixed gamma), ``lr`` and ``fd``; ``american best-of``: every measure of a
   two-name American best-of call on a Heston name and a GBM name (the setup of
   tests/pricers/test_heston_multi_exercise.py, ξ = 0.3, correlation 0.3) by ``auto`` and
   ``fd``.

Every estimator of a case runs on the same paths (same seed and number of paths), asked per
measure (``method={measure: name}``, so that an estimator the library does not offer is an
``InputError`` and not a silent fallback to auto), with ``greeks=`` the case's measures only.
Measured per (case, measure, name or pair, estimator):

- the estimate and its standard error;
- the wall time of the run, best of ``--repeats`` after a warm-up run of the same size that
  is not timed (compiling excluded); the repeats go round the estimators in turn, so a burst of
  other work on the machine hits them alike.  One run computes every measure of the case, so
  the run's time is attributed to each of its measures.  The early-exercise cases include the
  fit of their exercise policies (the same for every estimator) in that time;
- efficiency = 1 / (SE² × time): relative to fd, (SE_fd² · t_fd) / (SE² · t), above 1× when
  the estimator reaches a given standard error sooner than bump-and-revalue.

An early-exercise estimate's SE is the spread of the 8 policies' estimates (7 degrees of
freedom, docs/reference.md "Early exercise"), too rough alone for a ratio of variances, so
those cases run on ``--seeds`` seeds (the same for every estimator): the efficiency takes the
root mean square over the seeds of one run's SE and the best time of one run; the estimate
shown is the mean over the seeds, with its SE.  Each estimate is compared (z-score) with fd's
on the same paths, and the put's with the finite-difference Bermudan
(``mcgreeks.analytic.american``, the same 52 dates).  An estimate more than 4 SE from fd's is
checked by two more sets of runs on the same seeds: fd with 5x smaller bumps (does fd's bump
bias make the gap?) and, for early exercise, auto and fd of the same contract exercisable at T
only (does the gap come with early exercise?).

Full run: 2^20 GBM paths, 2^16 Heston paths, 2^17 early-exercise paths (8 policies) on 6
seeds, best of 3: about 3.5 minutes on 2 cores.  ``--quick``: 16x fewer basket paths, 2^16
early-exercise paths on one seed, one repeat: under a minute.  Writes the ``efficiency-multi``
section of EFFICIENCY.md (``benchmarks/sections.py``).
"""
import math
import os
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.american import dates, reference_greeks, revision   # noqa: E402
from benchmarks.multi_asset import basket_book                       # noqa: E402
from benchmarks.run import machine                                   # noqa: E402
from benchmarks.sections import put_section, report_parser          # noqa: E402

import mcgreeks                                                      # noqa: E402
from mcgreeks import InputError, engine, exercise_policy             # noqa: E402
from mcgreeks.estimators import fd                                   # noqa: E402

BEGIN, END = "<!-- efficiency-multi -->", "<!-- /efficiency-multi -->"
SEED = 1
STEPS_PER_YEAR = 52
MODES = {   # paths per run by kind of case; early-exercise seeds; repeats are --repeats
    "full": dict(gbm=1 << 20, heston=1 << 16, early=1 << 17, seeds=6),
    "quick": dict(gbm=1 << 16, heston=1 << 12, early=1 << 16, seeds=1),
}
Z_FLAG = 4.0        # |z| beyond which an estimate is flagged in the table

# -- the cases -------------------------------------------------------------------------------

LS_PUT = (36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put")   # spot, strike, r, q, σ, T, type


def american_put():
    """The Longstaff-Schwartz put on one GBM name, exercisable at the 52 steps of a year."""
    spot, strike, rate, div, vol, maturity, option_type = LS_PUT
    trades = pd.DataFrame([dict(trade_id="P", underlying="X", payoff="european",
                                option_type=option_type, strike=strike, maturity=maturity,
                                exercise="american")])
    market = pd.DataFrame([dict(underlying="X", model="gbm", spot=spot, rate=rate,
                                div_yield=div, vol=vol)])
    return trades, market, None


def american_best_of():
    """A call on the best of a Heston name H and a GBM name G (both at 100, K = 100, r = 5 %,
    q = 10 %, T = 1; H: v0 = v̄ = 0.04, κ = 2, ξ = 0.3, ρ = -0.5, Feller ratio 1.8; G: σ = 20 %;
    correlation 0.3), exercisable at the 52 steps of a year: the setup of
    tests/pricers/test_heston_multi_exercise.py with ``exercise="american"``."""
    trades = pd.DataFrame([dict(trade_id="M", underlying="H;G", payoff="best_of",
                                option_type="call", strike=100.0, maturity=1.0,
                                exercise="american")])
    common = dict(spot=100.0, rate=0.05, div_yield=0.10)
    market = pd.DataFrame([dict(underlying="H", model="heston", v0=0.04, kappa=2.0, vbar=0.04,
                                xi=0.3, corr=-0.5, **common),
                           dict(underlying="G", model="gbm", vol=0.2, **common)])
    correlations = pd.DataFrame([dict(underlying_1="H", underlying_2="G", corr=0.3)])
    return trades, market, correlations


#: key -> dict(short name, label, book, measures, estimators timed, kind of paths, early
#: exercise or not)
CASES = {
    "gbm basket": dict(
        short="5-name GBM basket",
        label="5-name GBM basket call", book=lambda: basket_book(5, "gbm"),
        measures=("cross_gamma", "d_pair_corr"), estimators=("auto", "lr", "fd"), paths="gbm",
        early=False),
    "heston basket 2": dict(
        short="2-name Heston basket",
        label="2-name Heston basket call, 52 steps a year", book=lambda: basket_book(2, "heston"),
        measures=("d_corr", "d_pair_corr"), estimators=("auto", "fd"), paths="heston",
        early=False),
    "heston basket 5": dict(
        short="5-name Heston basket",
        label="5-name Heston basket call, 52 steps a year", book=lambda: basket_book(5, "heston"),
        measures=("d_corr", "d_pair_corr"), estimators=("auto", "fd"), paths="heston",
        early=False),
    "american put": dict(
        short="American put",
        label="Longstaff-Schwartz American put, 52 dates", book=american_put,
        measures=("delta", "gamma", "vega", "rho", "theta"), estimators=("auto", "lr", "fd"),
        paths="early", early=True),
    "american best-of": dict(
        short="American best-of",
        label="American best-of call, Heston name H + GBM name G, 52 dates",
        book=american_best_of,
        measures=("delta", "gamma", "vega", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr",
                  "cross_gamma", "d_pair_corr", "rho", "theta"),
        estimators=("auto", "fd"), paths="early", early=True),
}
#: estimators not timed but asked once, so that the report can say which are refused
PROBED = ("lr",)


# -- measuring -------------------------------------------------------------------------------

def run(case, estimator, n_paths, seed, fd_bumps=None, exercise=None):
    """(wall seconds, risk table) of one price_portfolio call; ``estimator`` None is the price
    alone.  The estimator is asked per measure, so that one the library does not offer raises
    InputError instead of falling back to auto.  ``exercise`` replaces the trade's (the
    disagreement check's European twin)."""
    trades, market, correlations = case["book"]()
    if exercise is not None:
        trades = trades.assign(exercise=exercise)
    if estimator is None:
        greeks, method = "none", "auto"
    else:
        greeks = ",".join(case["measures"])
        method = "auto" if estimator == "auto" else {m: estimator for m in case["measures"]}
    start = time.perf_counter()
    _, risk = mcgreeks.price_portfolio(trades, market, correlations=correlations,
                                       n_paths=n_paths, seed=seed, risk=True, greeks=greeks,
                                       method=method, steps_per_year=STEPS_PER_YEAR,
                                       fd_bumps=fd_bumps)
    return time.perf_counter() - start, risk


def refused(case):
    """{estimator: {measure: the library's reason}} for the PROBED estimators the case does not
    time, asked for one measure at a time (a small run each; a refusal costs no paths)."""
    out = {}
    for estimator in PROBED:
        if estimator in case["estimators"]:
            continue
        for measure in case["measures"]:
            try:
                run(dict(case, measures=(measure,)), estimator, 4096, SEED)
            except InputError as err:
                # the message names the trade, the column and the value, then why: keep why
                why = str(err).split(": ", 2)[-1]
                out.setdefault(estimator, {})[measure] = why
    return out


def measure_case(case, mode, repeats):
    """The timed runs of one case: dict(seconds = {estimator: best wall seconds of one run;
    None: the price alone}, risks = {estimator: [risk table per seed]}, n_paths, seeds).  A warm-up run
    of the full size per estimator comes first (compiling, or loading the cache, and first
    touches excluded).  Early exercise: one round per seed; otherwise ``repeats`` rounds on one
    seed (the results are the same bits each round)."""
    n_paths = MODES[mode][case["paths"]]
    seeds = list(range(SEED, SEED + MODES[mode]["seeds"])) if case["early"] else [SEED]
    rounds = seeds if case["early"] else [SEED] * repeats
    runs = (None,) + case["estimators"]
    for estimator in runs:
        run(case, estimator, n_paths, seeds[0])
    seconds = {e: math.inf for e in runs}
    risks = {e: {} for e in case["estimators"]}
    for seed in rounds:
        for estimator in runs:
            wall, risk = run(case, estimator, n_paths, seed)
            seconds[estimator] = min(seconds[estimator], wall)
            if estimator is not None:
                risks[estimator][seed] = risk
        print(f"  {case['label']}: seed {seed}: "
              + ", ".join(f"{e or 'price'} {seconds[e]:.2f} s" for e in runs), flush=True)
    return dict(seconds=seconds, risks={e: [r[s] for s in seeds] for e, r in risks.items()},
                n_paths=n_paths, seeds=seeds)


def rows_of(key, case, measured, reference):
    """One row per (measure, name or pair, estimator): the mean estimate over the seeds and its
    SE, one run's SE (root mean square over the seeds), the run's time, the method the library
    reports, and z against the reference (the put's finite-difference Bermudan) or else fd."""
    rows = []
    for estimator, risks in measured["risks"].items():
        long = pd.concat([r.assign(seed=i) for i, r in enumerate(risks)])
        long = long[long["measure"] != "price"]
        by = long.groupby(["measure", "underlying", "underlying_2"], sort=False)
        for (measure, name, name_2), g in by:
            k = len(g)
            rows.append(dict(case=key, measure=measure, names=name + ("–" + name_2 if name_2
                                                                        else ""),
                             estimator=estimator, method="/".join(sorted(set(g["method"]))),
                             value=float(g["value"].mean()),
                             se_mean=float(np.sqrt((g["se"] ** 2).sum()) / k),
                             se=float(np.sqrt((g["se"] ** 2).mean())),
                             seconds=measured["seconds"][estimator]))
    frame = pd.DataFrame(rows)
    baseline = frame[frame["estimator"] == "fd"].set_index(["measure", "names"])
    for i, r in frame.iterrows():
        b = baseline.loc[(r["measure"], r["names"])]
        frame.loc[i, "var_ratio"] = (b["se"] / r["se"]) ** 2
        frame.loc[i, "time_ratio"] = b["seconds"] / r["seconds"]
        if reference is not None and r["measure"] in reference:
            frame.loc[i, "z"] = (r["value"] - reference[r["measure"]]) / r["se_mean"]
            frame.loc[i, "z_against"] = "reference"
        elif r["estimator"] != "fd":
            frame.loc[i, "z"] = (r["value"] - b["value"]) / math.hypot(r["se_mean"],
                                                                         b["se_mean"])
            frame.loc[i, "z_against"] = "fd"
    frame["rel"] = frame["var_ratio"] * frame["time_ratio"]
    return frame


#: the fd bump (``mcgreeks.estimators.fd``'s name) each measure moves, for the check below
BUMP_OF = {"delta": "spot", "gamma": "spot", "cross_gamma": "spot", "vega": "vol",
           "rho": "rate", "theta": "maturity", "d_v0": "v0", "d_kappa": "kappa",
           "d_vbar": "vbar", "d_xi": "xi", "d_corr": "corr", "d_pair_corr": "pair_corr"}
SMALL_BUMPS = 0.2       # the check's bumps, as a fraction of the defaults


def mean_over_seeds(case, estimator, n_paths, seeds, **options):
    """{(measure, name or pair): (mean estimate over ``seeds``, its SE)}."""
    risks = [run(case, estimator, n_paths, seed, **options)[1] for seed in seeds]
    long = pd.concat(risks)
    long = long[long["measure"] != "price"]
    out = {}
    for (measure, name, name_2), g in long.groupby(["measure", "underlying", "underlying_2"],
                                                    sort=False):
        key = (measure, name + ("–" + name_2 if name_2 else ""))
        out[key] = (float(g["value"].mean()),
                    float(np.sqrt((g["se"] ** 2).sum()) / len(g)))
    return out


def check_disagreements(frame, cases):
    """For every estimate more than Z_FLAG SE from fd on the same paths, two more sets of runs
    on the same seeds and paths: fd with bumps SMALL_BUMPS times the defaults (were the gap fd's
    own O(h²) bias, it would move towards the other estimate) and, for an early-exercise case,
    auto and fd of the same contract exercisable at T only (does the gap come with early
    exercise?).  Returns one dict per flagged row, with (value, SE) pairs."""
    flagged = frame[(frame["z"].abs() > Z_FLAG) & (frame["z_against"] == "fd")]
    checks = []
    for key, rows in flagged.groupby("case", sort=False):
        case = dict(CASES[key], measures=tuple(dict.fromkeys(rows["measure"])))
        trades, market, _ = case["book"]()
        defaults = {}       # the smallest default among the case's models (theta differs)
        for model in set(market["model"]):
            table = fd.HESTON_BUMPS if model == "heston" else fd.GBM_BUMPS
            for name, size in dict(table, pair_corr=fd.PAIR_CORR_ABS).items():
                defaults[name] = min(size, defaults.get(name, math.inf))
        small = {BUMP_OF[m]: SMALL_BUMPS * defaults[BUMP_OF[m]] for m in case["measures"]}
        n_paths, seeds = cases[key]["n_paths"], cases[key]["seeds"]
        print(f"  checking {key}: {', '.join(case['measures'])}", flush=True)
        found = dict(fd_small=mean_over_seeds(case, "fd", n_paths, seeds, fd_bumps=small))
        if case["early"]:
            for estimator in ("auto", "fd"):
                found["european_" + estimator] = mean_over_seeds(
                    case, estimator, n_paths, seeds, exercise="european")
        for _, r in rows.iterrows():
            both = frame[(frame["case"] == key) & (frame["measure"] == r["measure"])
                         & (frame["names"] == r["names"])].set_index("estimator")
            check = dict(case=key, measure=r["measure"], names=r["names"],
                         estimator=r["estimator"], bumps=small,
                         estimate=(r["value"], r["se_mean"]),
                         fd=(both.loc["fd", "value"], both.loc["fd", "se_mean"]))
            check.update({k: v[(r["measure"], r["names"])] for k, v in found.items()})
            checks.append(check)
    return checks


def measure_all(mode, repeats):
    """(one row per case, measure, name or pair and estimator; per case its times, paths, seeds
    and refused estimators; the checks of the estimates far from fd)."""
    frames, cases = [], {}
    for key, case in CASES.items():
        print(f"{key} ({mode})", flush=True)
        measured = measure_case(case, mode, repeats)
        reference = (reference_greeks(LS_PUT, dates(LS_PUT[5], STEPS_PER_YEAR))
                     if key == "american put" else None)
        frames.append(rows_of(key, case, measured, reference))
        cases[key] = dict(seconds=measured["seconds"], n_paths=measured["n_paths"],
                          seeds=measured["seeds"], refused=refused(case))
    frame = pd.concat(frames, ignore_index=True)
    # list each name or pair's estimators together: by case, measure, name or pair, estimator
    frame["_case"] = frame["case"].map(list(CASES).index)
    frame["_measure"] = [CASES[c]["measures"].index(m) for c, m in zip(frame["case"],
                                                                         frame["measure"])]
    frame["_names"] = frame.groupby(["case", "measure", "estimator"]).cumcount()
    frame["_estimator"] = [CASES[c]["estimators"].index(e) for c, e in zip(frame["case"],
                                                                             frame["estimator"])]
    order = ["_case", "_measure", "_names", "_estimator"]
    frame = frame.sort_values(order, kind="stable").drop(columns=order).reset_index(drop=True)
    return frame, cases, check_disagreements(frame, cases)


# -- the report ------------------------------------------------------------------------------

def fmt_x(x):
    if not np.isfinite(x):
        return "—"
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    if x >= 0.01:
        return f"{x:.2f}×"
    return f"{x:.1e}×".replace("e-0", "e-")


def fmt_g(x, digits=4):
    return f"{x:.{digits}g}"


def aggregate(frame):
    """One row per (case, measure, estimator): how many names or pairs, the method used, the
    run's time, and the median (min, max) over the names or pairs of the variance ratio and of
    the relative efficiency."""
    out = []
    for (case, measure, estimator), g in frame.groupby(["case", "measure", "estimator"],
                                                       sort=False):
        out.append(dict(case=case, measure=measure, estimator=estimator, n=len(g),
                        method="/".join(sorted(set("/".join(g["method"]).split("/")))),
                        seconds=g["seconds"].iloc[0], time_ratio=g["time_ratio"].iloc[0],
                        var_ratio=float(g["var_ratio"].median()),
                        var_min=float(g["var_ratio"].min()),
                        var_max=float(g["var_ratio"].max()),
                        rel=float(g["rel"].median()), rel_min=float(g["rel"].min()),
                        rel_max=float(g["rel"].max()),
                        max_z=float(g["z"].abs().max()) if g["z"].notna().any() else np.nan))
    # rows in the order of the cases, their measures and their estimators
    order = {(k, m, e): i for i, (k, m, e) in enumerate(
        (k, m, e) for k, c in CASES.items() for m in c["measures"] for e in c["estimators"])}
    return pd.DataFrame(sorted(out, key=lambda r: order[(r["case"], r["measure"],
                                                         r["estimator"])]))


MEASURE_NAMES = {"cross_gamma": "cross-gamma", "d_pair_corr": "`d_pair_corr`",
                 "d_corr": "`d_corr`", "d_v0": "`d_v0`", "d_kappa": "`d_kappa`",
                 "d_vbar": "`d_vbar`", "d_xi": "`d_xi`"}


def measure_name(measure):
    return MEASURE_NAMES.get(measure, measure)


def with_range(r):
    if r["n"] == 1 or fmt_x(r["rel_min"]) == fmt_x(r["rel_max"]):
        return fmt_x(r["rel"])
    return f"{fmt_x(r['rel'])} ({fmt_x(r['rel_min'])}–{fmt_x(r['rel_max'])})"


def summary(agg, cases):
    """The prose at the top of the section, each number read from the measurements."""
    lines = []
    for key, case in CASES.items():
        a = agg[agg["case"] == key]
        parts = []
        for measure in case["measures"]:
            m = a[(a["measure"] == measure) & (a["estimator"] != "fd")]
            if m.empty:
                continue
            best = m.loc[m["rel"].idxmax()]
            text = (f"{measure_name(measure)}: {best['estimator']} ({best['method']}) "
                    f"{with_range(best)}")
            others = m[m["estimator"] != best["estimator"]]
            if len(others):
                text += ", " + ", ".join(f"{o['estimator']} {fmt_x(o['rel'])}"
                                         for _, o in others.iterrows())
            parts.append(text)
        fd_time = cases[key]["seconds"]["fd"] / cases[key]["seconds"]["auto"]
        lines.append(f"- **{CASES[key]['label']}**: " + "; ".join(parts)
                     + f". The fd run takes {fd_time:.1f}× auto's.")
    return lines


def rows_text(rows, show):
    """'measure of the case (show(row))' for each row, comma-separated."""
    return ", ".join(f"{measure_name(r['measure'])} of the {CASES[r['case']]['short']} "
                     f"({show(r)})"
                     for _, r in rows.iterrows())


def growth(agg):
    """A sentence on how fd's time over auto's grows from the 2- to the 5-name Heston basket
    (fd re-simulates the names each bump moves; the reverse sweeps are one pass), or ''."""
    ratio = {k: agg[(agg["case"] == k) & (agg["estimator"] == "auto")]["time_ratio"].iloc[0]
             for k in ("heston basket 2", "heston basket 5")}
    if ratio["heston basket 5"] <= 1.1 * ratio["heston basket 2"]:
        return ""
    return (f" fd re-simulates, for each bumped ρ or pair correlation and each direction, the "
            f"names it moves, while the reverse sweeps run once along each name's path: fd's run "
            f"takes {ratio['heston basket 2']:.1f}× auto's on two Heston names and "
            f"{ratio['heston basket 5']:.1f}× on five.")


def headline(agg):
    """One sentence: auto's median efficiency over fd per case, and whether any other
    estimator beat it in some row."""
    auto = agg[agg["estimator"] == "auto"]
    per_case = ", ".join(f"{fmt_x(float(g['rel'].median()))} on the {CASES[k]['short']}"
                         for k, g in auto.groupby("case", sort=False))
    beaten = [r for _, r in agg[agg["estimator"] != "auto"].iterrows()
              if r["rel"] > 1.25 * auto[(auto["case"] == r["case"])
                                        & (auto["measure"] == r["measure"])]["rel"].iloc[0]]
    return ("In short: auto (pathwise, mixed for second order) "
            + ("is fd's equal or better everywhere here. Its" if (auto["rel"] > 0.8).all()
               else "is not always fd's equal. Its")
            + f" median efficiency over fd per case: {per_case}; "
            + ("no other estimator beats it by more than 25 % in any row" if not beaten else
               "it is beaten by more than 25 % in "
               + rows_text(pd.DataFrame(beaten), lambda r: r["estimator"]))
            + ". The lists below say why.")


def verdicts(agg, frame, cases):
    """Generated lines: where auto wins and by how much and why (variance or time), lr's
    place, what the library refuses, and the bias check."""
    lines = []
    auto = agg[agg["estimator"] == "auto"]
    won, lost = auto[auto["rel"] > 1.0], auto[auto["rel"] <= 1.0]
    lines.append(f"- auto is more efficient than fd in {len(won)} of {len(auto)} (case, "
                 "measure) rows" + ("; fd is as or more efficient for " + rows_text(
                     lost, lambda r: f"auto {fmt_x(r['rel'])} fd's, its variance "
                     f"{fmt_x(1 / r['var_ratio'])} fd's") if len(lost) else "") + ".")
    # same variance (every name or pair within 25 %): the difference is the run's time alone
    same = auto[(auto["var_min"] > 0.8) & (auto["var_max"] < 1.25)]
    if len(same):
        lines.append("- Same variance as fd (within 25 % for every name or pair) for "
                     + rows_text(same, lambda r: f"fd's run {r['time_ratio']:.1f}× auto's")
                     + ": on common random numbers with small bumps, fd of a smooth payoff is "
                     "a finite-difference copy of the pathwise estimate, so only the time "
                     "differs." + growth(agg))
    differ = auto[~auto.index.isin(same.index)]
    early = differ[differ["case"].map(lambda c: CASES[c]["early"])]
    if len(early):
        lines.append(f"- Early exercise: fd's run costs only {early['time_ratio'].min():.1f}–"
                     f"{early['time_ratio'].max():.1f}× auto's (fitting the policies, the same "
                     "for every estimator, is much of a run), but a bumped path that crosses "
                     "the exercise boundary changes its stopping date and jumps, so fd's "
                     f"variance is {fmt_x(early['var_min'].min())}–"
                     f"{fmt_x(early['var_max'].max())} pathwise's or mixed's: auto gains "
                     f"{fmt_x(early['rel'].min())}–{fmt_x(early['rel'].max())} (median "
                     f"{fmt_x(float(early['rel'].median()))}), most on "
                     + rows_text(early.nlargest(3, "rel"), lambda r: fmt_x(r["rel"])) + ".")
    rest = differ[~differ.index.isin(early.index)]
    if len(rest):
        lines.append("- Elsewhere the variances differ: " + rows_text(
            rest, lambda r: f"variance ratio var_fd/var {fmt_x(r['var_min'])}–"
            f"{fmt_x(r['var_max'])}, fd's run {r['time_ratio']:.1f}× auto's, efficiency "
            f"{with_range(r)}") + ".")
    lr = agg[agg["estimator"] == "lr"]
    if len(lr):
        least = sum(r["rel"] <= agg[(agg["case"] == r["case"]) &
                                    (agg["measure"] == r["measure"])]["rel"].min()
                    for _, r in lr.iterrows())
        beats = lr[lr["rel"] > 1.25]        # within 25 %: timing noise
        lines.append("- lr, where it is offered: " + rows_text(
            lr, lambda r: f"{with_range(r)} fd's") + f"; the least efficient estimator of its "
            f"row in {least} of {len(lr)}"
            + ("; it beats fd by more than 25 % only for "
               + rows_text(beats, lambda r: fmt_x(r["rel"]))
               + ", where fd's bumped paths change their stopping dates" if len(beats) else "")
            + ".")
    # what is left to fd: measures where auto took fd, and the estimators the library refuses
    fd_only = auto[auto["method"] == "fd"]
    refusals = {}
    for key, c in cases.items():
        for estimator, by_measure in c["refused"].items():
            for measure, why in by_measure.items():
                reason = why.split("; valid")[0]
                refusals.setdefault((estimator, reason), []).append((key, measure))
    told = []
    for (estimator, reason), where in refusals.items():
        keys = [k for k in CASES if k in {k2 for k2, _ in where}]
        measures = [m for m in dict.fromkeys(m2 for k in keys for m2 in CASES[k]["measures"])
                    if m in {m2 for _, m2 in where}]
        every = all(sum(k2 == k for k2, _ in where) == len(CASES[k]["measures"]) for k in keys)
        told.append(f"{estimator} is refused for "
                    + ("every measure of " if every else
                       ", ".join(measure_name(m) for m in measures) + " of ")
                    + " and ".join(f"the {CASES[k]['short']}" for k in keys)
                    + f" ({reason})")
    lines.append(("- fd is the only estimator for " + rows_text(fd_only, lambda r: "auto "
                                                                   "took fd")
                  if len(fd_only) else "- No measure here is left to fd alone")
                 + (": " + "; ".join(told) + ", so pathwise (mixed for second order) and fd "
                    "remain there" if told else "")
                 + ". auto itself takes fd for a Heston name's `d_*`, theta and the pair "
                 "correlations when its Feller ratio is below 1 (not measured here: every "
                 "Heston name above has a ratio of at least 1.3; docs/reference.md "
                 "\"Multi-asset trades\").")
    compared = frame[frame["z"].notna()]
    flagged = compared[compared["z"].abs() > Z_FLAG]
    lines.append(f"- Bias check: of {len(compared)} estimates compared (the put's with the "
                 f"finite-difference Bermudan, the others with fd), "
                 + (f"{len(flagged)} {'lies' if len(flagged) == 1 else 'lie'} more than "
                    f"{Z_FLAG:g} SE off: " + ", ".join(
                     f"{CASES[r['case']]['short']} {r['measure']} {r['names']} {r['estimator']} "
                     f"(z = {r['z']:+.1f} against {r['z_against']})"
                     for _, r in flagged.iterrows()) if len(flagged) else
                    f"none lies more than {Z_FLAG:g} SE off")
                 + f"; the largest |z| is {compared['z'].abs().max():.1f}.")
    return lines


def pm(pair):
    return f"{fmt_g(pair[0])} ± {fmt_g(pair[1], 2)}"


def gap(a, b):
    """z of the difference of two (value, SE) pairs, taking them as independent."""
    return (a[0] - b[0]) / math.hypot(a[1], b[1])


def checks_text(checks):
    """(the summary's bullet, the table) for the estimates checked by check_disagreements."""
    if not checks:
        return [], []
    bumps = {k: v for c in checks for k, v in c["bumps"].items()}
    names = ", ".join(f"{c['measure']} {c['names']}" for c in checks)
    small_vs_fd = max(abs(gap(c["fd_small"], c["fd"])) for c in checks)
    # were the gap fd's O(h²) bump bias, with ``estimate`` right, bumps SMALL_BUMPS times the
    # size would leave SMALL_BUMPS² of it: test that prediction on every row together
    predicted = [c["estimate"][0] + SMALL_BUMPS ** 2 * (c["fd"][0] - c["estimate"][0])
                 for c in checks]
    z_bias = [(c["fd_small"][0] - p) / c["fd_small"][1] for c, p in zip(checks, predicted)]
    chi2 = float(np.sum(np.square(z_bias)))
    p_bias = float(stats.chi2.sf(chi2, len(checks)))
    text = (f"- The gaps flagged above ({names}) were checked on the same seeds and paths. fd "
            f"with bumps {1 / SMALL_BUMPS:g}× smaller ("
            + ", ".join(f"{k} {v:g}" for k, v in bumps.items()) + ") stays within "
            f"{small_vs_fd:.1f} SE of fd with the default bumps in every row; were the gap fd's "
            f"bump bias, it would have moved {1 - SMALL_BUMPS ** 2:.0%} of the way to the other "
            "estimate, and it is " + ", ".join(f"{z:+.1f}" for z in z_bias)
            + f" SE from there (χ² = {chi2:.1f} on {len(checks)} degree"
            f"{'s' * (len(checks) > 1)} of freedom, p = {p_bias:.1g}), so "
            + ("fd's bump bias does not explain the gap" if p_bias < 0.01
               else "fd's bump bias cannot be ruled out"))
    european = [c for c in checks if "european_auto" in c]
    if european:
        eu = max(abs(gap(c["european_auto"], c["european_fd"])) for c in european)
        text += (f". On the same contract exercisable at T only, auto and fd agree within "
                 f"{eu:.1f} SE" + (", so the gap comes with early exercise" if eu < 2 else ""))
        if eu < 2 and p_bias < 0.01:
            text += (". Pathwise differentiates each path's cash flow at its stopping date held "
                     "fixed, while fd re-stops every moved path under the same fitted policy "
                     "(it differentiates the fixed policy's value, as lr does) and so also counts "
                     "the paths a bump moves across the exercise boundary: a "
                     "term that vanishes at the optimal boundary, where exercising and holding "
                     "on are worth the same, but not at a fitted one (docs/reference.md "
                     "\"Early exercise\": the Greeks are off to first order in the policy's "
                     "error). The several-name policy regresses on the spots only (no variance "
                     "regressor yet), and the flagged measures move the variance. Which "
                     "estimate is nearer the option's own sensitivity needs a reference this "
                     "contract lacks; these rows' efficiencies compare estimators of two "
                     "slightly different quantities")
    table = ["| case | measure | name | estimator | its estimate | fd | fd, bumps "
             f"{1 / SMALL_BUMPS:g}× smaller | exercise at T only: auto | exercise at T only: fd |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in checks:
        table.append(f"| {CASES[c['case']]['short']} | {c['measure']} | {c['names']} | "
                     f"{c['estimator']} | {pm(c['estimate'])} | {pm(c['fd'])} | "
                     f"{pm(c['fd_small'])} | "
                     + (f"{pm(c['european_auto'])} | {pm(c['european_fd'])} |"
                        if "european_auto" in c else "| |"))
    return [text + "."], table


def report(frame, cases, checks, mode, repeats, m, elapsed, load_after):
    agg = aggregate(frame)
    quick = " --quick" if mode == "quick" else ""
    paths = MODES[mode]
    seeds = cases["american put"]["seeds"]
    policies, _ = exercise_policy.replicates(paths["early"], engine.SEGMENT)
    dof = (policies - 1) * len(seeds)
    L = [BEGIN, "## Multi-asset and early-exercise estimators\n",
         f"`python benchmarks/efficiency_multi.py{quick}` on "
         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {m['cpu']} ({m['cores']} "
         f"cores, numba {m['versions']['numba']}; "
         f"{revision() or 'mcgreeks ' + m['versions']['mcgreeks']}), {elapsed / 60:.1f} min, "
         f"load average {m['load_before'][0]:.2f} before and "
         f"{load_after[0]:.2f} after (other jobs shared the cores: times carry ±20 % or so)"
         + ("; **quick mode: fewer paths, one repeat, for checking only**" if quick else "")
         + ".\n",
         "Efficiency = 1 / (SE² × time), shown relative to fd on the same paths: "
         "(SE_fd² · t_fd) / (SE² · t), above 1× when the estimator reaches a given standard "
         "error sooner than bump-and-revalue. The estimators are those of Glasserman (2004), §7 "
         "(pathwise §7.2, likelihood ratio and mixed §7.3), the correlation derivatives through "
         "the Cholesky factor's derivative (Murray 2016) and, under Heston, reverse sweeps "
         "along each name's path; the exercise policies are Longstaff & Schwartz's (2001), "
         "fitted on pilot paths, and every Greek of an exercisable trade holds the fitted policy "
         "fixed (docs/reference.md \"Early exercise\").\n",
         headline(agg) + "\n",
         "What the numbers show:\n"]
    L += verdicts(agg, frame, cases)
    check_lines, check_table = checks_text(checks)
    L += check_lines
    L += ["", "Per case, efficiency × fd's (median over the names or pairs, and range):\n"]
    L += summary(agg, cases)
    L += ["", "### What is measured\n",
          f"- Paths per run: {paths['gbm']:,} (GBM basket), {paths['heston']:,} (Heston "
          f"baskets, {STEPS_PER_YEAR} QE steps a year), {paths['early']:,} (early exercise, "
          f"{STEPS_PER_YEAR} dates a year; the policies' fit on 2^18 pilot paths comes on top "
          "and is in every run's time); every estimator of a case on the same seed.",
          "- Each run asks for the case's measures only (`greeks=`), each by the estimator "
          "named (`method={measure: name}`); auto is the library's default choice, which the "
          "`method` column names. One run computes all the case's measures, so its wall time "
          "is attributed to each of them: best of "
          + (f"{repeats} runs" if repeats > 1 else "one run")
          + " for the baskets, of one run per seed for the early-exercise cases, after an "
          "untimed warm-up run of the same size (compiling excluded).",
          f"- Early exercise: the SE of an estimate is the spread of its {policies} policies' "
          f"estimates ({policies - 1} degrees of freedom, docs/reference.md \"Early "
          f"exercise\"), so those cases run on {len(seeds)} seed{'s' * (len(seeds) > 1)} "
          f"({', '.join(map(str, seeds))}), the same for every estimator, and the efficiency "
          "takes the root mean square of one run's SE over them (a ratio of two such variances "
          f"is uncertain by about ±{2 / math.sqrt(dof):.0%}). The estimate shown is the mean "
          "over the seeds, with its SE.",
          "- z: (estimate − reference) / SE, where the reference is the finite-difference "
          "Bermudan of `mcgreeks.analytic.american` on the same 52 dates for the put, else fd "
          "on the same paths (SE of the difference taken as √(SE² + SE_fd²), which overstates "
          "it where the two are correlated, so a small z there says little).\n",
          "### Per case and measure (median over the names or pairs, min–max)\n",
          "| case | measure | names/pairs | estimator (method) | run time s | t_fd / t | "
          "var_fd / var | efficiency × fd | max abs z |",
          "|---|---|---|---|---|---|---|---|---|"]
    for key, case in CASES.items():
        L.append(f"| {case['short']} | price alone | | | {cases[key]['seconds'][None]:.3f} "
                 "| | | | |")
        a = agg[agg["case"] == key]
        for _, r in a.iterrows():
            L.append(f"| {case['short']} | {r['measure']} | {r['n']} | "
                     f"{r['estimator']} ({r['method']}) | {r['seconds']:.3f} | "
                     f"{r['time_ratio']:.2f} | {fmt_x(r['var_ratio'])} | "
                     + ("1×" if r["estimator"] == "fd" else with_range(r))
                     + " | " + ("" if np.isnan(r["max_z"]) else f"{r['max_z']:.1f}") + " |")
    if check_table:
        L += ["", f"### Estimates more than {Z_FLAG:g} SE from fd, checked (mean over the "
              "seeds ± SE)\n"]
        L += check_table
    L += ["", "<details><summary>Every measurement</summary>\n",
          "| case | measure | name(s) | estimator | method | estimate ± SE | SE of one run | "
          "run time s | efficiency × fd | z |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        z = "" if np.isnan(r["z"]) else f"{r['z']:+.1f}" + (" (ref.)" if r["z_against"] ==
                                                            "reference" else "")
        L.append(f"| {CASES[r['case']]['short']} | {r['measure']} | {r['names']} | "
                 f"{r['estimator']} | {r['method']} | "
                 f"{fmt_g(r['value'])} ± {fmt_g(r['se_mean'], 2)} | "
                 f"{fmt_g(r['se'], 2)} | {r['seconds']:.3f} | {fmt_x(r['rel'])} | {z} |")
    L += ["", "</details>", END]
    return "\n".join(L)


def main(argv=None):
    parser = report_parser(__doc__, ROOT)
    parser.set_defaults(out=os.path.join(ROOT, "benchmarks", "results", "EFFICIENCY.md"))
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    repeats = 1 if args.quick else args.repeats
    m = machine()
    start = time.perf_counter()
    frame, cases, checks = measure_all(mode, repeats)
    text = report(frame, cases, checks, mode, repeats, m, time.perf_counter() - start,
                  os.getloadavg())
    put_section(args.out, text, BEGIN, END)
    print(f"wrote the efficiency-multi section of {args.out} "
          f"({(time.perf_counter() - start) / 60:.1f} min)")


if __name__ == "__main__":
    main()
