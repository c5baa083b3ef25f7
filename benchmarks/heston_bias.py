"""Discretization bias of the Heston Monte Carlo pricer, measured against the semi-analytic price.

    python benchmarks/heston_bias.py [--quick] [--paths N] [--out FILE]
    python benchmarks/heston_bias.py --allowances [--out FILE]

Default mode: for Andersen's (2008) test cases, QE (with martingale correction) and full-truncation
Euler, and 4, 8, ..., 128 steps per year, the at-the-money call price by Monte Carlo minus the
closed form (mcgreeks.analytic.heston), with its standard error; then the observed weak order p
of |bias| ~ dt^p, a weighted least-squares fit of log|bias| on log dt over the points where the
bias is resolved (|bias| > 3 SE).  Also the cost of price + all nine sensitivities over the price
alone.  Writes benchmarks/results/HESTON_BIAS.md (or --out).

--pathwise-vs-fd: pathwise sensitivities under QE differentiate the QE map inside its branches
and miss the jumps of the map where psi crosses psi_c; bump-and-revalue of QE (common random
numbers) sees them.  Measures pathwise minus fd (shifted by the closed form's difference-quotient
bias) as the mean of 32 independent batches, with its standard error, on two Feller-violating
parameter sets at 4 and 12 steps a year; writes its own section of HESTON_BIAS.md.

--allowances: the discretization bias of the price and of every sensitivity on the 8 parameter
sets of tests/pricers/test_heston_mc.py, at the default grid (52 steps a year, QE), measured with
the fd estimator (bump-and-revalue of the price) on 16 x the test's paths and an independent
seed, minus the closed form's own fd difference quotient.  Prints the ALLOWANCES dict for the
test and writes the table into its own section of HESTON_BIAS.md (which the default mode keeps).

Andersen's cases (S = K = 100, r = q = 0, v0 = vbar): case I kappa = 0.5, vbar = 0.04, xi = 1,
corr = -0.9, T = 10 (given in the issue and checked in tests/analytic/test_heston.py); cases II
(kappa = 0.3, vbar = 0.04, xi = 0.9, corr = -0.5, T = 15) and III (kappa = 1, vbar = 0.09, xi = 1,
corr = -0.3, T = 5) as recalled from Andersen's (2008) test cases; their parameters could not be
re-checked against the paper while writing this script.  All three violate the Feller condition.

Reference: L. Andersen (2008), "Simple and efficient simulation of the Heston stochastic
volatility model", J. Computational Finance 11(3).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.analytic.heston import heston_european
from mcgreeks.pricers import heston as HP
from mcgreeks.rng import STREAM_MAIN, name_key, seed_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from benchmarks.cases import test_module  # noqa: E402
from benchmarks.sections import put_section, section  # noqa: E402

CASES = {
    "I": dict(kappa=0.5, vbar=0.04, xi=1.0, corr=-0.9, maturity=10.0, confirmed=True),
    "II": dict(kappa=0.3, vbar=0.04, xi=0.9, corr=-0.5, maturity=15.0, confirmed=False),
    "III": dict(kappa=1.0, vbar=0.09, xi=1.0, corr=-0.3, maturity=5.0, confirmed=False),
}
STEPS = (4, 8, 16, 32, 64, 128)
SEED = 2008


def _market(case):
    c = CASES[case]
    return dict(spot=100.0, rate=0.0, div_yield=0.0, v0=c["vbar"], kappa=c["kappa"],
                vbar=c["vbar"], xi=c["xi"], corr=c["corr"])


def _call_arrays(maturity, strike=100.0):
    """(ti, tf, fix_idx, payoff_grid) of one European call, in mcgreeks.payoffs' layout."""
    ti = np.zeros((1, getattr(P, "N_INT_COLUMNS", 6)), dtype=np.int64)
    ti[0, P.KIND], ti[0, P.FIX_N] = P.EUROPEAN, 1
    tf = np.zeros((1, getattr(P, "N_FLOAT_COLUMNS", 5)))
    tf[0, P.OMEGA], tf[0, P.STRIKE], tf[0, P.CASH], tf[0, P.MATURITY] = 1.0, strike, 1.0, maturity
    return ti, tf, np.array([0]), np.array([maturity])


def mc_price(market, maturity, *, scheme, steps_per_year, n_paths, seed=SEED, slots=None):
    """(price, se) of the at-the-money call (or all slots when ``slots`` is given)."""
    ti, tf, fix, grid = _call_arrays(maturity)
    if slots is None:
        slots = np.full((1, HP.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
        slots[0, G.PRICE, 0] = 0
    mean, se, _ = HP.run_heston(key0=seed_key(seed), key1=name_key("andersen"),
                                stream=STREAM_MAIN, n_paths=n_paths, params=market, ti=ti, tf=tf,
                                fix_idx=fix, payoff_grid=grid, slots=slots,
                                steps_per_year=steps_per_year, scheme=scheme)
    return mean, se


def observed_order(steps, bias, se):
    """(p, se of p, points used): weighted LS fit of log|bias| = c + p log dt over the points
    with |bias| > 3 SE (weights from the delta method, sd(log|b|) = se/|b|)."""
    use = [i for i in range(len(steps)) if abs(bias[i]) > 3 * se[i]]
    if len(use) < 3:
        return None, None, use
    x = np.log(1.0 / np.asarray(steps, dtype=float)[use])
    y = np.log(np.abs(np.asarray(bias)[use]))
    w = (np.abs(np.asarray(bias)[use]) / np.asarray(se)[use]) ** 2
    a = np.vstack([np.ones_like(x), x]).T
    cov = np.linalg.inv(a.T @ (a * w[:, None]))
    coef = cov @ (a.T @ (w * y))
    resid = y - a @ coef
    scale = max(1.0, float(np.sum(w * resid ** 2)) / max(len(use) - 2, 1))
    return float(coef[1]), float(math.sqrt(cov[1, 1] * scale)), use


def cost_ratio(n_paths=1 << 17, repeats=3):
    """Seconds for price alone and price + all sensitivities (pathwise, mixed gamma; + lr; all
    fd) of one 1-year call, 52 steps a year, on the machine's threads."""
    market = dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.04, xi=0.5,
                  corr=-0.7)
    first = [(G.DELTA, G.PATHWISE), (G.GAMMA, G.MIXED)] + [(g, G.PATHWISE) for g in
                                                            (G.RHO, G.THETA, 6, 7, 8, 9, 10)]
    configs = {"price alone": [],
               "price + 9 sensitivities (pathwise, mixed gamma)": first,
               "  ... + lr delta, gamma, rho": first + [(G.DELTA, G.LR), (G.GAMMA, G.LR),
                                                        (G.RHO, G.LR)],
               "price + 9 sensitivities, all fd": [(g, G.FD) for g in range(1, 11) if g != 3]}
    rows = []
    for scheme in ("qe", "euler"):
        base = None
        for label, pairs in configs.items():
            slots = np.full((1, HP.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
            slots[0, G.PRICE, 0] = 0
            for k, (g, e) in enumerate(pairs):
                slots[0, g, e] = k + 1
            kw = dict(scheme=scheme, steps_per_year=52, slots=slots)
            mc_price(market, 1.0, n_paths=4096, **kw)                    # compile / warm up
            best = min(_timed(lambda: mc_price(market, 1.0, n_paths=n_paths, **kw))
                       for _ in range(repeats))
            base = base or best
            rows.append((scheme, label, best, best / base))
    return rows


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def bias_tables(n_paths, steps):
    """Per case and scheme: bias and SE of the ATM call at each steps/year; ``n_paths`` maps the
    scheme to its number of paths."""
    out = []
    for case in CASES:
        market = _market(case)
        maturity = CASES[case]["maturity"]
        exact = heston_european(spot=100.0, strike=100.0, maturity=maturity, rate=0.0,
                                v0=market["v0"], kappa=market["kappa"], vbar=market["vbar"],
                                xi=market["xi"], corr=market["corr"])["price"]
        for scheme in ("qe", "euler"):
            bias, se, secs = [], [], []
            for spy in steps:
                t = time.perf_counter()
                mean, err = mc_price(market, maturity, scheme=scheme, steps_per_year=spy,
                                     n_paths=n_paths[scheme])
                secs.append(time.perf_counter() - t)
                bias.append(float(mean[0] - exact))
                se.append(float(err[0]))
                print(f"case {case} {scheme:5s} {spy:4d}/yr  bias {bias[-1]:+.4f} ± {se[-1]:.4f}"
                      f"  ({secs[-1]:.1f} s)", flush=True)
            out.append(dict(case=case, scheme=scheme, exact=exact, bias=bias, se=se, secs=secs))
    return out


def write_bias_report(path, tables, steps, n_paths, cost, cost_paths, command, elapsed):
    lines = ["# Heston Monte Carlo: discretization bias and cost", "",
             f"Generated by `{command}` ({n_paths['qe']:,} paths per QE cell, "
             f"{n_paths['euler']:,} per Euler cell (its bias is far larger), seed {SEED}, "
             f"{elapsed / 60:.1f} min on {os.cpu_count()} cores).", "",
             "At-the-money call (S = K = 100, r = q = 0, v0 = vbar), price by Monte Carlo minus "
             "the semi-analytic price (`mcgreeks.analytic.heston`), ± one standard error. "
             "Schemes: QE = Andersen's quadratic-exponential with martingale correction "
             "(psi_c = 1.5, gamma1 = gamma2 = 1/2, the default); Euler = full truncation. "
             "Observed order p: weighted least-squares slope of log|bias| on log dt over the "
             "cells where the bias is resolved (|bias| > 3 SE); '-' when fewer than 3 are.", ""]
    for case, spec in CASES.items():
        m = _market(case)
        note = "" if spec["confirmed"] else (" — parameters as recalled from Andersen (2008), "
                                             "test cases, not re-checked against the paper")
        lines += [f"## Case {case}: kappa = {m['kappa']}, vbar = v0 = {m['vbar']}, "
                  f"xi = {m['xi']}, corr = {m['corr']}, T = {spec['maturity']:g}"
                  f"{note}", ""]
        rows = [t for t in tables if t["case"] == case]
        lines.append(f"Semi-analytic price: {rows[0]['exact']:.6f}; Feller ratio "
                     f"2 kappa vbar / xi^2 = {2 * m['kappa'] * m['vbar'] / m['xi'] ** 2:.3f}.")
        lines += ["", "| steps/year | " + " | ".join(f"{t['scheme']} bias ± SE" for t in rows)
                  + " |", "|---:|" + "---:|" * len(rows)]
        for i, spy in enumerate(steps):
            cells = [f"{t['bias'][i]:+.4f} ± {t['se'][i]:.4f}" for t in rows]
            lines.append(f"| {spy} | " + " | ".join(cells) + " |")
        orders = []
        for t in rows:
            p, p_se, use = observed_order(steps, t["bias"], t["se"])
            orders.append("-" if p is None else f"{p:.2f} ± {p_se:.2f} "
                          f"(from {', '.join(str(steps[i]) for i in use)})")
        lines.append("| observed order p | " + " | ".join(orders) + " |")
        lines.append("")
    if cost:
        lines += ["## Cost: price + all sensitivities over price alone", "",
                  "One 1-year at-the-money call (S = K = 100, r = 3 %, q = 1 %, kappa = 1.5, "
                  "vbar = v0 = 0.04, xi = 0.5, corr = -0.7: Feller ratio 0.48), 52 steps a year, "
                  f"{cost_paths:,} paths, best of 3, all cores. The sensitivities are delta, "
                  "gamma, rho, theta, d_v0, d_kappa, d_vbar, d_xi, d_corr.", "",
                  "| scheme | what | seconds | ratio to price alone |", "|---|---|---:|---:|"]
        for scheme, label, secs, ratio in cost:
            lines.append(f"| {scheme} | {label} | {secs:.3f} | {ratio:.2f} |")
        lines.append("")
    kept = [k for k in (_section(path, _PW_BEGIN, _PW_END), _section(path)) if k]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "".join("\n" + k + "\n" for k in kept))


# -- allowances for tests/pricers/test_heston_mc.py ------------------------------------------------

def _load_test_module():
    return test_module(os.path.join("tests", "pricers", "test_heston_mc.py"))


def allowances():
    """{(set, kind, quantity): (bias, se)} measured as the module docstring says."""
    t = _load_test_module()
    n_paths = t.ALLOWANCE_FACTOR * t.N_PATHS
    out = {}
    for name, market, maturity, strikes in t.SETS:
        start = time.perf_counter()
        res = t.run(market, t.european_records(maturity, strikes), n_paths=n_paths,
                    seed=t.ALLOWANCE_SEED, name=name, estimators=("fd",))
        for j, (kind, strike) in enumerate(zip(("call", "put"), strikes)):
            quotient = t.fd_quotients(market, maturity, strike, kind == "call")
            for q in t.QUANTITIES:
                mean, se = res[(j, q, "mc" if q == "price" else "fd")]
                out[(name, kind, q)] = (float(mean - quotient[q]), float(se))
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    return out, t


_BEGIN, _END = "<!-- allowances -->", "<!-- /allowances -->"
_PW_BEGIN, _PW_END = "<!-- pathwise-vs-fd -->", "<!-- /pathwise-vs-fd -->"


def _section(path, begin=_BEGIN, end=_END):
    """A marked section of an existing report ('' if none)."""
    return section(path, begin, end)


def _put_section(path, text, begin, end):
    """Replace (or append) a marked section of the report."""
    if not os.path.exists(path):
        with open(path, "w") as fh:
            fh.write("# Heston Monte Carlo\n")
    put_section(path, text, begin, end)


PW_SETS = {
    "Andersen I parameters, T = 1 (Feller ratio 0.04)":
        dict(spot=100.0, rate=0.0, div_yield=0.0, v0=0.04, kappa=0.5, vbar=0.04, xi=1.0,
             corr=-0.9),
    "kappa = 1.5, vbar = v0 = 0.04, xi = 0.5, corr = -0.7, r = 3 %, q = 1 %, T = 1 (ratio 0.48)":
        dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.04, xi=0.5,
             corr=-0.7),
}


def pathwise_vs_fd(batches=32, batch_paths=100_000):
    """Rows (set, steps/year, quantity, pathwise mean, pw - fd, se of it) for the 1-year ATM
    call; the fd mean is shifted by the closed form's (quotient - derivative)."""
    t = _load_test_module()
    rows = []
    quantities = ("theta", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")
    for label, market in PW_SETS.items():
        exact = t.closed_form(market, 1.0, 100.0, True)
        quotient = t.fd_quotients(market, 1.0, 100.0, True)
        for spy in (4, 12):
            diffs, means = {q: [] for q in quantities}, {q: [] for q in quantities}
            for b in range(batches):
                res = t.run(market, t.european_records(1.0, (100.0, 100.0))[:1],
                            n_paths=batch_paths, seed=1000 + b, name="pw", steps_per_year=spy,
                            estimators=("pathwise", "fd"))
                for q in quantities:
                    pw, fdv = res[(0, q, "pathwise")][0], res[(0, q, "fd")][0]
                    diffs[q].append(pw - (fdv - (quotient[q] - exact[q])))
                    means[q].append(pw)
            for q in quantities:
                d = np.array(diffs[q])
                rows.append((label, spy, q, float(np.mean(means[q])), float(d.mean()),
                             float(d.std(ddof=1) / math.sqrt(batches))))
            print(label, spy, "done", flush=True)
    return rows, batches * batch_paths


def write_pathwise_vs_fd(path, rows, n_paths):
    lines = [_PW_BEGIN, "## Pathwise under QE against bump-and-revalue of QE", "",
             "Generated by `python benchmarks/heston_bias.py --pathwise-vs-fd`: 1-year "
             f"at-the-money call, {n_paths:,} paths in 32 independent batches. Pathwise "
             "differentiates the QE map inside its branches; fd (1 % bumps, 0.01 for corr, "
             "common random numbers) differentiates the QE price including the jumps where "
             "psi crosses psi_c = 1.5. Their difference (fd shifted by the closed form's "
             "quotient-minus-derivative) is what pathwise leaves out, plus the O(h^2) of the "
             "bumps beyond the closed form's; ± its standard error over the batches.", "",
             "| parameters | steps/year | quantity | pathwise | pathwise - fd |",
             "|---|---:|---|---:|---:|"]
    for label, spy, q, mean, diff, se in rows:
        lines.append(f"| {label} | {spy} | {q} | {mean:.4f} | {diff:+.5f} ± {se:.5f} |")
    lines.append(_PW_END)
    _put_section(path, "\n".join(lines), _PW_BEGIN, _PW_END)


def write_allowances(path, table, t):
    lines = [_BEGIN, "## Discretization bias of every sensitivity (the tests' allowances)", "",
             "Generated by `python benchmarks/heston_bias.py --allowances`: QE at 52 steps a "
             f"year, {t.ALLOWANCE_FACTOR * t.N_PATHS:,} paths, seed {t.ALLOWANCE_SEED}; bias = "
             "fd estimate (bump-and-revalue of the MC price, same bumps as the pricer) minus "
             "the closed form's difference quotient with those bumps (price: MC minus closed "
             "form), ± its standard error. These are the allowances of "
             "`tests/pricers/test_heston_mc.py`.", "",
             "| set | option | " + " | ".join(t.QUANTITIES) + " |",
             "|---|---|" + "---:|" * len(t.QUANTITIES)]
    for name, market, maturity, strikes in t.SETS:
        for kind in ("call", "put"):
            cells = [f"{table[(name, kind, q)][0]:+.2e} ± {table[(name, kind, q)][1]:.1e}"
                     for q in t.QUANTITIES]
            lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
    lines.append(_END)
    _put_section(path, "\n".join(lines), _BEGIN, _END)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2**15 paths and 4..32 steps a year (about a minute)")
    parser.add_argument("--paths", type=int, default=None,
                        help="paths per QE cell (default 2**20; Euler cells take a quarter)")
    parser.add_argument("--allowances", action="store_true",
                        help="measure the bias allowances of tests/pricers/test_heston_mc.py")
    parser.add_argument("--pathwise-vs-fd", action="store_true",
                        help="measure what pathwise under QE leaves out (the branch switch)")
    parser.add_argument("--out", default=None, help="output markdown file")
    args = parser.parse_args(argv)
    results = os.path.join(ROOT, "benchmarks", "results")
    os.makedirs(results, exist_ok=True)
    if args.pathwise_vs_fd:
        rows, n_paths = pathwise_vs_fd()
        write_pathwise_vs_fd(args.out or os.path.join(results, "HESTON_BIAS.md"), rows, n_paths)
        return
    if args.allowances:
        table, t = allowances()
        write_allowances(args.out or os.path.join(results, "HESTON_BIAS.md"), table, t)
        print("ALLOWANCES = {")
        for name, _, _, _ in t.SETS:
            for kind in ("call", "put"):
                cells = ", ".join(f"{q!r}: ({table[(name, kind, q)][0]:.4g}, "
                                  f"{table[(name, kind, q)][1]:.3g})" for q in t.QUANTITIES)
                print(f"    ({name!r}, {kind!r}): {{{cells}}},")
        print("}")
        return
    start = time.perf_counter()
    steps = STEPS[:4] if args.quick else STEPS
    qe_paths = args.paths or (1 << 15 if args.quick else 1 << 20)
    n_paths = {"qe": qe_paths, "euler": max(qe_paths // 4, 1 << 12)}
    tables = bias_tables(n_paths, steps)
    cost_paths = 1 << 15 if args.quick else 1 << 17
    cost = cost_ratio(n_paths=cost_paths)
    for row in cost:
        print("cost", *row)
    command = "python benchmarks/heston_bias.py" + (" --quick" if args.quick else "") + (
        f" --paths {args.paths}" if args.paths else "")
    write_bias_report(args.out or os.path.join(results, "HESTON_BIAS.md"), tables, steps,
                      n_paths, cost, cost_paths, command, time.perf_counter() - start)


if __name__ == "__main__":
    main()
