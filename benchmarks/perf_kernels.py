"""Profile mcgreeks' compiled kernels with Linux ``perf``, function by function.

numba's machine code lives in anonymous memory, so ``perf report`` shows it as bare addresses.
``perf`` reads symbols for such code from ``/tmp/perf-<pid>.map`` (one line per function: start
address, size, name, in hexadecimal).  This script runs a workload once (so that its kernels
are compiled or loaded from the cache), writes that map from the process's own code libraries,
then runs the workload ``--repeats`` more times for ``perf`` to sample.  A software clock is
enough (``-e cpu-clock``): no hardware counters are needed, which VMs often lack.

    perf record -e cpu-clock -o perf.data python benchmarks/perf_kernels.py asian
    perf report -i perf.data --sort sym --stdio | head -40

Workloads (``WORKLOADS``): ``european`` (a GBM European, price and five Greeks by the NumPy
baseline's estimators, 2^22 paths), ``asian`` (the arithmetic Asian of the headline, 2^18
paths), ``book`` (the README's sample book), ``stac`` (``benchmarks/stac_like.py``'s base case,
every sensitivity).  Function names are shortened to numba's qualified names
(``mcgreeks.models.heston.qe_tile_path``); an inlined kernel shows under its caller.

The map is read from numba internals (``CPUCodeLibrary``, the JIT engine's symbol addresses);
if they move, the script says so and the report shows addresses again.  Measured this way on
2026-12-07: a GBM European's Greeks spent 58 ns a path in a scalar exp and in the per-path loop
that serves every payoff, which led to ``pricers.gbm._fill_tile``.
"""
import argparse
import gc
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _european():
    from benchmarks import cases as C
    from benchmarks.numpy_engine import METHODS
    C.mcgreeks_all(C.trades("european"), C.gbm_market(), 1 << 22, method=dict(METHODS))


def _asian():
    from benchmarks import cases as C
    from benchmarks.numpy_engine import METHODS
    C.mcgreeks_all(C.trades("asian_arithmetic"), C.gbm_market(), 1 << 18, method=dict(METHODS))


def _book():
    import pandas as pd

    import mcgreeks
    data = os.path.join(ROOT, "data")
    mcgreeks.price_portfolio(pd.read_csv(os.path.join(data, "trades.csv")),
                             pd.read_csv(os.path.join(data, "market.csv")),
                             correlations=pd.read_csv(os.path.join(data, "correlations.csv")))


def _stac():
    from benchmarks import stac_like
    stac_like.price(stac_like.BASE, "all", "auto")


WORKLOADS = {"european": _european, "asian": _asian, "book": _book, "stac": _stac}


def short_name(symbol):
    """numba's mangled symbol (``_ZN8mcgreeks6engine...B3v12...``) as its dotted qualified name;
    anything else unchanged."""
    found = re.match(r"_ZN((?:\d+\w+?)+?)B\d", symbol)
    if not found:
        return symbol
    parts, rest = [], found.group(1)
    while rest:
        digits = re.match(r"\d+", rest)
        if digits is None:
            break
        n = int(digits.group())
        rest = rest[digits.end():]
        parts.append(rest[:n])
        rest = rest[n:]
    return ".".join(parts) or symbol


def kernel_symbols():
    """[(address, mangled name)] of every function in the process's numba code libraries,
    sorted by address."""
    from numba.core.codegen import CPUCodeLibrary
    from numba.core.registry import cpu_target

    engine = cpu_target.target_context.codegen()._engine._ee
    names = set()
    for obj in gc.get_objects():
        if not isinstance(obj, CPUCodeLibrary):
            continue
        if getattr(obj, "_final_module", None) is not None:
            names.update(f.name for f in obj._get_module_for_linking().functions)
        names.update(getattr(obj, "_defined_symbols", None) or ())
    out = []
    for name in names:
        try:
            address = engine.get_function_address(name)
        except Exception:           # declared here, defined in another library
            continue
        if address:
            out.append((address, name))
    return sorted(out)


def write_map(path, symbols):
    """The perf map: each function runs to the next one's start (the last: 4 KiB)."""
    ends = [a for a, _ in symbols[1:]] + [symbols[-1][0] + 4096]
    with open(path, "w") as f:
        for (address, name), end in zip(symbols, ends):
            f.write(f"{address:x} {min(end - address, 1 << 22):x} {short_name(name)}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    work = WORKLOADS[args.workload]
    work()
    try:
        symbols = kernel_symbols()
    except Exception as exc:        # numba internals moved
        print(f"no perf map: numba's internals changed ({type(exc).__name__}: {exc})")
        symbols = []
    if symbols:
        path = f"/tmp/perf-{os.getpid()}.map"
        write_map(path, symbols)
        print(f"{len(symbols)} kernel symbols in {path}")
    start = time.perf_counter()
    for _ in range(args.repeats):
        work()
    print(f"{args.workload}: {(time.perf_counter() - start) / args.repeats:.3f} s a run")


if __name__ == "__main__":
    main()
