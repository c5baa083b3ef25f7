"""Throughput of one European call with price and all Greeks (auto estimators), 1 and 2 threads,
and the first-call time of a fresh process with a cold and with a warm numba cache.

    python benchmarks/european_throughput.py [--paths 1000000]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numba
import pandas as pd

import mcgreeks

TRADES = pd.DataFrame({"trade_id": ["C"], "underlying": ["X"], "payoff": ["european"],
                       "option_type": ["call"], "strike": [100.0], "maturity": [1.0]})
MARKET = pd.DataFrame({"underlying": ["X"], "model": ["gbm"], "spot": [100.0], "rate": [0.03],
                       "div_yield": [0.01], "vol": [0.2]})

_FIRST_CALL = """
import time; t = time.perf_counter()
import pandas as pd, mcgreeks
from benchmarks.european_throughput import TRADES, MARKET
mcgreeks.price_portfolio(TRADES, MARKET, n_paths=10_000)
print(time.perf_counter() - t)
"""


def first_call_seconds(cache_dir):
    """Seconds from interpreter start-up work to the first priced trade, in a new process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, cwd=root, check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def paths_per_second(n_paths, threads, repeats=3):
    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        mcgreeks.price_portfolio(TRADES, MARKET, n_paths=n_paths)  # warm-up
        best = min(_timed(n_paths) for _ in range(repeats))
    finally:
        numba.set_num_threads(saved)
    return n_paths / best


def _timed(n_paths):
    t = time.perf_counter()
    mcgreeks.price_portfolio(TRADES, MARKET, n_paths=n_paths)
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_000_000)
    args = parser.parse_args()
    for threads in (1, 2):
        rate = paths_per_second(args.paths, threads)
        print(f"{args.paths} paths, price + 5 Greeks + SEs, {threads} thread(s): "
              f"{rate / 1e6:.2f} M paths/s")
    cache = tempfile.mkdtemp(prefix="mcgreeks-cache-")
    try:
        cold = first_call_seconds(cache)
        warm = first_call_seconds(cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print(f"first call in a new process: {cold:.2f} s with an empty cache (JIT), "
          f"{warm:.2f} s with a warm cache")


if __name__ == "__main__":
    main()
