"""The README's sample book end to end, as a new user runs it: cold (an empty numba cache) and
warm, in new processes.

Runs ``mcgreeks price data/trades.csv --market data/market.csv --correlations
data/correlations.csv --quiet`` (the README's quick start) with a fresh
``NUMBA_CACHE_DIR`` (cold: the kernels are compiled, the Heston ones by a child process while
the GBM ones compile here when a core is spare, see ``mcgreeks.warmup``), then again on that
cache (warm), and
``--repeats`` times each.  Also (``--parts``) what each model's compile costs alone
(``python -m mcgreeks.warmup MODEL`` on an empty cache: the figures behind
``warmup.COMPILE_SECONDS``), the cold CLI run with and without the child compile forced
(``MCGREEKS_COMPILE_CHILD``; by default a child is used when a core is spare) and the cold run
in one process (Python API).
Reports wall and CPU seconds (user + system of the run and its children) and peak memory (the
largest max RSS of the run's processes, ``getrusage(RUSAGE_CHILDREN)`` of a wrapper process),
with the machine's load average before each run; writes the ``first-run`` section of
benchmarks/results/RESULTS.md and prints the table.

    python benchmarks/first_run.py [--repeats 1] [--parts]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.run import machine                                    # noqa: E402
from benchmarks.sections import put_section                           # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
BEGIN, END = "<!-- first-run -->", "<!-- /first-run -->"
CLI = [sys.executable, "-m", "mcgreeks", "price", os.path.join(DATA, "trades.csv"),
       "--market", os.path.join(DATA, "market.csv"), "--correlations",
       os.path.join(DATA, "correlations.csv"), "--quiet"]
IN_PROCESS = ("import pandas as pd; from mcgreeks import price_portfolio; "
              f"price_portfolio(pd.read_csv({os.path.join(DATA, 'trades.csv')!r}), "
              f"pd.read_csv({os.path.join(DATA, 'market.csv')!r}), "
              f"correlations=pd.read_csv({os.path.join(DATA, 'correlations.csv')!r}))")


def one(command, cache, **env_vars):
    """Run ``command`` in a wrapper process with NUMBA_CACHE_DIR=cache (and ``env_vars``): wall,
    CPU (the command and everything it waited for) and the largest max RSS among them."""
    wrapper = ("import json, resource, subprocess, sys, time\n"
               "t = time.perf_counter()\n"
               "code = subprocess.run(json.loads(sys.argv[1])).returncode\n"
               "wall = time.perf_counter() - t\n"
               "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "print(json.dumps(dict(code=code, wall=wall, cpu=u.ru_utime + u.ru_stime,"
               " rss_mib=u.ru_maxrss / 1024)))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
    env["NUMBA_CACHE_DIR"] = cache
    env.update(env_vars)
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, "-c", wrapper, json.dumps(command)], env=env,
                         cwd=ROOT, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"{command} failed with exit status {result['code']}")
    result["load"] = load
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="cold/warm pairs to run")
    parser.add_argument("--parts", action="store_true",
                        help="also each model's compile alone and the one-process cold run")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "RESULTS.md"))
    args = parser.parse_args()
    rows = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="mcgreeks-cold-") as cache:
            rows.append(("sample book, CLI", "empty", one(CLI, cache)))
            rows.append(("sample book, CLI", "warm", one(CLI, cache)))
        print(rows[-2], rows[-1], flush=True)
    if args.parts:
        for forced in ("1", "0"):
            with tempfile.TemporaryDirectory(prefix="mcgreeks-cold-") as cache:
                rows.append((f"sample book, CLI, MCGREEKS_COMPILE_CHILD={forced}", "empty",
                             one(CLI, cache, MCGREEKS_COMPILE_CHILD=forced)))
        with tempfile.TemporaryDirectory(prefix="mcgreeks-cold-") as cache:
            rows.append(("sample book, Python, one process", "empty",
                         one([sys.executable, "-c", IN_PROCESS], cache)))
        for model in ("gbm", "heston"):
            with tempfile.TemporaryDirectory(prefix="mcgreeks-cold-") as cache:
                rows.append((f"python -m mcgreeks.warmup {model}", "empty",
                             one([sys.executable, "-m", "mcgreeks.warmup", model], cache)))
        with tempfile.TemporaryDirectory(prefix="mcgreeks-cold-") as cache:
            rows.append(("mcgreeks warmup (everything)", "empty",
                         one([sys.executable, "-m", "mcgreeks.cli", "warmup", "--quiet"],
                             cache)))
        print(rows[-6:], flush=True)
    m = machine()
    lines = [BEGIN, "## First run: the sample book end to end (new processes; seconds)", "",
             f"`python benchmarks/first_run.py{' --parts' if args.parts else ''}` on "
             f"{m.get('cpu', 'unknown')}, {os.cpu_count()} cores; numba "
             f"{m.get('versions', {}).get('numba', '?')}.  Cold: an empty `NUMBA_CACHE_DIR`; "
             "CPU = user + system of the run and its child processes; peak memory = the largest "
             "of its processes (a child compiling the Heston kernels runs beside the main one "
             "when a core is spare); load = the 1-minute load average when the run started "
             "(other processes on the machine).", "",
             "| run | numba cache | wall | CPU | peak memory | load |", "|---|---|---|---|---|---|"]
    for label, cache, r in rows:
        lines.append(f"| {label} | {cache} | {r['wall']:.1f} | {r['cpu']:.1f} | "
                     f"{r['rss_mib']:.0f} MiB | {r['load']:.1f} |")
    lines += ["", END]
    text = "\n".join(lines)
    print(text)
    put_section(args.out, text, BEGIN, END)


if __name__ == "__main__":
    main()
