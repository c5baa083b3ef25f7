"""What the Greeks cost: ``price_portfolio`` with ``greeks="none"``, one Greek, and all of them.

For each case of ``benchmarks.cases`` (European and 252-fixing Asian under GBM, a 252-step Heston
European) and for the README's sample book, the same paths and seed are priced with the price
alone, delta alone, delta and gamma, and every Greek; the table gives paths per second (wall,
best of ``--repeats``), CPU seconds (all threads) and the cost over the price alone.  The price
alone is what ``benchmarks/run.py`` reports as mcgreeks' price-only speed (both call
``price_portfolio(greeks="none")``).  Writes the ``greeks-cost`` section of RESULTS.md.

    python benchmarks/greeks_cost.py [--quick] [--repeats 3]
"""
import os
import sys
import time

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import cases as C                                    # noqa: E402
from benchmarks.run import machine                                   # noqa: E402
from benchmarks.sections import put_section, report_parser                          # noqa: E402

import mcgreeks                                                      # noqa: E402

SELECTIONS = ("none", "delta", "delta,gamma", "all")
BEGIN, END = "<!-- greeks-cost -->", "<!-- /greeks-cost -->"


def book_cases(quick):
    """(label, trades, market, paths, options) of each case."""
    n = 1 << 15 if quick else 1 << 18
    data = os.path.join(C.ROOT, "data")
    sample = (pd.read_csv(os.path.join(data, "trades.csv"), dtype={"trade_id": str}),
              pd.read_csv(os.path.join(data, "market.csv")))
    heston_steps = {"steps_per_year": C.HESTON_STEPS / C.MATURITY}
    return [("European call, GBM", C.trades("european"), C.gbm_market(), n, {}),
            ("Asian call (252 fixings), GBM", C.trades("asian_arithmetic"), C.gbm_market(),
             n // 4, {}),
            ("European call, Heston (252 steps)", C.trades("european", underlying="H"),
             C.heston_market(), n // 8, heston_steps),
            ("sample book (72 trades, 6 underlyings)", *sample, n // 8 if quick else 100_000,
             {})]


def measure(trades, market, n_paths, options, greeks, repeats):
    """(best wall seconds, CPU seconds of that run) of one price_portfolio call."""
    mcgreeks.price_portfolio(trades, market, n_paths=min(n_paths, 8192), greeks=greeks,
                             **options)                             # compile or load first
    best = (float("inf"), 0.0)
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        mcgreeks.price_portfolio(trades, market, n_paths=n_paths, seed=1, greeks=greeks,
                                 **options)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def main(argv=None):
    args = report_parser(__doc__, C.ROOT).parse_args(argv)
    m = machine()
    lines = [BEGIN, "## What the Greeks cost (`greeks=`)\n",
             f"`python benchmarks/greeks_cost.py{' --quick' if args.quick else ''}` on "
             f"{m['cpu']} ({m['cores']} cores, numba {m['versions']['numba']}), best of {args.repeats}, load average "
             f"{os.getloadavg()[0]:.1f} at the start.  Paths per second per underlying "
             "(wall), CPU seconds (all threads), and the wall time over the price alone.\n",
             "| case | paths | greeks | paths/s | CPU s | × price alone |", "|---|---|---|---|---|---|"]
    for label, trades, market, n, options in book_cases(args.quick):
        base = None
        for greeks in SELECTIONS:
            wall, cpu = measure(trades, market, n, options, greeks, args.repeats)
            base = base or wall
            row = (f"| {label} | {n:,} | {greeks} | {n / wall:,.0f} | {cpu:.2f} | "
                   f"{wall / base:.2f} |")
            print(row, flush=True)
            lines.append(row)
    lines.append(END)
    put_section(args.out, "\n".join(lines), BEGIN, END)
    print(f"wrote the greeks-cost section of {args.out}")


if __name__ == "__main__":
    main()
