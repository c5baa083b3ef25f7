"""What every sensitivity of a basket costs: 5- and 10-asset GBM and Heston baskets, price alone
against price with every per-name delta, gamma and vega (Heston: d_v0 ... d_corr), every
cross-gamma and pair-correlation sensitivity, rho and theta, by each estimator.

The same paths and seed are priced with ``greeks="none"`` (the price alone), then every
measure by ``auto`` (pathwise for first order, mixed for gammas and cross-gammas), by ``lr``
(likelihood ratio for every measure) and by ``fd`` (bump-and-revalue on the same
paths: the baseline).  The table gives paths per second (wall, best of ``--repeats``), the
number of sensitivities, the wall time over the price alone and the median relative standard
error of the sensitivities (the median of SE/|value|, so a cheap estimator cannot hide a noisy
one).  Writes the
``multi-asset`` section of RESULTS.md and ``multi_asset.png``.

    python benchmarks/multi_asset.py [--quick] [--repeats 3]
"""
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases as C                                    # noqa: E402
from benchmarks.run import machine                                   # noqa: E402
from benchmarks.sections import put_section, report_parser                          # noqa: E402

import mcgreeks                                                      # noqa: E402

BEGIN, END = "<!-- multi-asset -->", "<!-- /multi-asset -->"
#: (label, greeks, method) of each run; the first is the price alone.
RUNS = (("price alone", "none", "auto"), ("all, auto", "all", "auto"),
        ("all, lr", "all", "lr"), ("all, fd", "all", "fd"))
CORRELATION = 0.4


def basket_book(n, model="gbm"):
    """(trades, market, correlations): an at-the-money call on an equally weighted basket of n
    GBM names (spots 80-120, volatilities 15-40 %, one rate) or Heston names (the same spots,
    initial volatilities 15-40 %, long-run 20-30 %, kappa 1.5, xi 0.3, spot-variance
    correlation -0.7 to -0.3: Feller ratios above 1, the STAC-A2 layout), pairwise correlation
    0.4 but for one negative pair, so that the matrix is no plain equicorrelation."""
    names = [f"S{k:02d}" for k in range(n)]
    market = pd.DataFrame({"underlying": names, "model": model,
                           "spot": np.linspace(80.0, 120.0, n), "rate": 0.03,
                           "div_yield": 0.01, "vol": np.linspace(0.15, 0.40, n)})
    if model == "heston":
        market = market.drop(columns="vol").assign(
            v0=np.linspace(0.15, 0.40, n) ** 2, kappa=1.5, vbar=np.linspace(0.2, 0.3, n) ** 2,
            xi=0.3, corr=np.linspace(-0.7, -0.3, n))
    pairs = [(a, b, -0.2 if (i, j) == (0, 1) else CORRELATION)
             for i, a in enumerate(names) for j, b in enumerate(names) if i < j]
    correlations = pd.DataFrame(pairs, columns=["underlying_1", "underlying_2", "corr"])
    trades = pd.DataFrame({"trade_id": ["B"], "underlying": [";".join(names)],
                           "payoff": ["basket"], "option_type": ["call"],
                           "strike": [float(market["spot"].sum())], "maturity": [1.0],
                           "weights": [";".join(["1"] * n)]})
    return trades, market, correlations


def measure(book, n_paths, greeks, method, repeats):
    """(best wall seconds, risk table of that run) of one price_portfolio call."""
    trades, market, correlations = book
    kwargs = dict(correlations=correlations, greeks=greeks, method=method, risk=True, seed=1)
    mcgreeks.price_portfolio(trades, market, n_paths=4096, **kwargs)     # compile or load
    best, risk = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        _, risk = mcgreeks.price_portfolio(trades, market, n_paths=n_paths, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, risk


def main(argv=None):
    args = report_parser(__doc__, C.ROOT).parse_args(argv)
    n_paths = 1 << 15 if args.quick else 1 << 20
    #: Heston paths are simulated in 52 steps a year, with every fd scenario re-simulated
    heston_paths = n_paths >> 4
    m = machine()
    lines = [BEGIN, "## Baskets: the cost of every sensitivity\n",
             f"`python benchmarks/multi_asset.py{' --quick' if args.quick else ''}` on "
             f"{m['cpu']} ({m['cores']} cores, numba {m['versions']['numba']}), {n_paths:,} "
             f"paths for GBM and {heston_paths:,} for Heston (52 steps a year), best of "
             f"{args.repeats}, load average {os.getloadavg()[0]:.1f} at the "
             "start.  One basket call on n correlated names (pairwise correlation "
             f"{CORRELATION}, one pair -0.2); 'all' is every per-name delta, gamma and vega "
             "(Heston: d_v0, d_kappa, d_vbar, d_xi, d_corr), "
             "every cross-gamma and pair-correlation sensitivity, rho and theta, each with its "
             "SE, in the pass that prices; fd is bump-and-revalue on the same paths (Heston: "
             "re-simulating each bumped parameter's paths); lr under Heston covers delta, gamma, "
             "cross-gamma and rho, auto the rest.  Rel. SE: "
             "the median over the sensitivities of SE / |value|.\n",
             "| model | names | run | sensitivities | paths/s | × price alone | median rel. SE |",
             "|---|---|---|---|---|---|---|"]
    ratios = {}
    for model, n in (("gbm", 5), ("gbm", 10), ("heston", 5), ("heston", 10)):
        book = basket_book(n, model)
        base = None
        paths = n_paths if model == "gbm" else heston_paths
        for label, greeks, method in RUNS:
            wall, risk = measure(book, paths, greeks, method, args.repeats)
            base = base or wall
            sens = risk[risk["measure"] != "price"]
            rel = float(np.median(sens["se"] / sens["value"].abs())) if len(sens) else np.nan
            ratios[(model, n, label)] = wall / base
            row = (f"| {model} | {n} | {label} | {len(sens)} | {paths / wall:,.0f} | "
                   f"{wall / base:.2f} | "
                   + ("" if np.isnan(rel) else f"{rel:.2%}") + " |")
            print(row, flush=True)
            lines.append(row)
    lines += ["", "![cost of every sensitivity](multi_asset.png)", END]
    _plot(ratios, os.path.join(os.path.dirname(args.out), "multi_asset.png"))
    put_section(args.out, "\n".join(lines), BEGIN, END)
    print(f"wrote the multi-asset section of {args.out}")


def _plot(ratios, path):
    """Bars of the wall time over the price alone, per estimator and basket size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = [label for label, _, _ in RUNS[1:]]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    groups = sorted({key[:2] for key in ratios})
    width = 0.8 / len(groups)
    for k, (model, n) in enumerate(groups):
        ax.bar(np.arange(len(labels)) + width * k,
               [ratios[(model, n, label)] for label in labels], width=width,
               label=f"{model}, {n} names")
    ax.axhline(3.0, color="grey", linestyle="--", linewidth=1, label="target (5 GBM names): 3×")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels)
    ax.set_ylabel("wall time / price alone")
    ax.set_title("Basket: price and every sensitivity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
