"""Compile the kernels ahead of a run, say how long a first run takes, and show its progress.

numba compiles mcgreeks' kernels on first use and caches them on disk (``_jit.cache_dir()``,
one folder per package version and kernel sources).  ``warmup()`` fills that cache for this
machine by pricing a tiny synthetic book that takes every path of the kernels: every payoff
(European, digital, both Asians, continuous and discrete barriers of each kind) under GBM with
Monte Carlo and Sobol sampling, a basket on two correlated GBM names, and under Heston with the
QE and Euler schemes, every Greek by the automatic choice of estimator (which pilots, blends and
falls back to finite differences).
``cache_is_warm()`` says, without compiling anything, whether a model's kernels are cached.

A cold ``mcgreeks price`` compiles only the models its book has.  With two or more models and a
spare core (``_spare_core``), the models priced later are compiled by a child process
(``python -m mcgreeks.warmup MODEL``) while this one compiles and prices the first; a pricer
waits for its model's child (``_jit.wait_for_background``) and then loads its kernels from the
cache.  numba compiles one kernel at a time per process, so this is what uses the second core.

``RunProgress`` is the command line's progress: the first-run message, then a bar (a terminal)
or log lines over compile and pricing, with an ETA from a cost model of each underlying
(``estimate_seconds``).
"""
import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd

from mcgreeks import _jit, payoffs

MODELS = ("gbm", "heston")

#: Seconds to compile each model's kernels (single-threaded; numba compiles one at a time),
#: from benchmarks/first_run.py --parts on this project's 2-core benchmark machine (the AMD EPYC
#: VM, numba 0.68.1, 2026-12-07 11:12; RESULTS.md, "First run"): Heston is ``warmup heston``
#: (41.3 s) less start-up; GBM with Monte Carlo and its pilot is the cold run without a child
#: (93.9 s) less the warm run (about 4 s: start-up and pricing) less Heston; Sobol's own block
#: kernel is ``warmup gbm`` (81.7 s) less start-up and GBM.  A CPU that compiles faster (the
#: Xeon of earlier runs took about half) finishes before the estimate.
COMPILE_SECONDS = {"gbm": 51.0, "sobol": 29.0, "heston": 39.0}
#: Seconds to start a child Python and import mcgreeks (the same measurement).
CHILD_START_SECONDS = 1.5

#: Pricing cost model, CPU seconds per path, fitted to the sample book's warm run
#: (benchmarks/first_run.py): a GBM underlying costs GBM_TRADE per trade plus GBM_DATE per
#: payoff date, and its pilot PILOT; a Heston underlying HESTON_STEP per grid step plus
#: HESTON_TRADE_STEP per trade and step (the fd re-simulations of theta and d_* are per step).
#: Refitted 2026-12-07 on the EPYC (2 threads): the correlated group ACME;BOLT;DYNA 0.39 s,
#: CRUX 0.12 s, HSTN 0.98 s, FXVL 0.95 s.
GBM_TRADE = 8.0e-8
GBM_DATE = 4.0e-9
PILOT_SECONDS = 0.04
HESTON_STEP = 9.0e-8
HESTON_TRADE_STEP = 1.5e-8


# -- the synthetic book -----------------------------------------------------------------------

def _book_trades(underlying):
    """One trade of every payoff variant on ``underlying`` (spot 100)."""
    rows = [("european", "call", 100.0, {}), ("european", "put", 95.0, {}),
            ("digital", "call", 105.0, {"cash": 10.0}),
            ("asian_arithmetic", "call", 100.0, {"n_fixings": 4}),
            ("asian_geometric", "put", 100.0, {"n_fixings": 4}),
            ("barrier", "call", 100.0, {"barrier": 130.0, "barrier_type": "up_out",
                                        "monitoring": "continuous"}),
            ("barrier", "put", 100.0, {"barrier": 80.0, "barrier_type": "down_in",
                                       "monitoring": "continuous"}),
            ("barrier", "call", 95.0, {"barrier": 85.0, "barrier_type": "down_out",
                                       "monitoring": "discrete", "n_fixings": 4}),
            ("barrier", "put", 105.0, {"barrier": 120.0, "barrier_type": "up_in",
                                       "monitoring": "discrete", "n_fixings": 4})]
    out = []
    for k, (payoff, kind, strike, extra) in enumerate(rows):
        row = {"trade_id": f"{underlying}{k}", "underlying": underlying, "payoff": payoff,
               "option_type": kind, "strike": strike, "maturity": 0.5, "quantity": 1.0,
               "cash": np.nan, "barrier": np.nan, "barrier_type": None, "monitoring": None,
               "n_fixings": np.nan}
        row.update(extra)
        out.append(row)
    return out


def synthetic_book():
    """(trades, market): every payoff on a GBM underlying WG and a Heston one WH (whose Feller
    ratio, 0.6, makes ``auto`` pilot pathwise against fd), and baskets of WG and a second GBM
    underlying WG2, correlated by ``CORRELATIONS``, and of WH and a second Heston one WH2
    (``HESTON_CORRELATIONS``, ``HESTON_GROUP_RUN``)."""
    basket = {"trade_id": "WGB", "underlying": "WG;WG2", "payoff": "basket", "option_type": "call",
              "strike": 200.0, "maturity": 0.5, "quantity": 1.0, "weights": "1;1"}
    heston_basket = dict(basket, trade_id="WHB", underlying="WH;WH2")
    # early exercise: its pilots' kernels (the pricers' stopping is in their own kernels)
    american = [{"trade_id": f"{name}A", "underlying": name, "payoff": "european",
                 "option_type": "put", "strike": 105.0, "maturity": 0.25, "quantity": 1.0,
                 "exercise": "american"} for name in ("WG", "WH")]
    bermudan = dict(basket, trade_id="WGBB", option_type="put", exercise="bermudan",
                    n_exercise=4)
    heston_bermudan = dict(bermudan, trade_id="WHBB", underlying="WH;WH2")
    trades = pd.DataFrame(_book_trades("WG") + _book_trades("WH") + american
                          + [basket, heston_basket, bermudan, heston_bermudan])
    market = pd.DataFrame([
        {"underlying": "WG", "model": "gbm", "spot": 100.0, "rate": 0.03, "div_yield": 0.01,
         "vol": 0.2, "v0": np.nan, "kappa": np.nan, "vbar": np.nan, "xi": np.nan,
         "corr": np.nan},
        {"underlying": "WG2", "model": "gbm", "spot": 100.0, "rate": 0.03, "div_yield": 0.0,
         "vol": 0.3, "v0": np.nan, "kappa": np.nan, "vbar": np.nan, "xi": np.nan,
         "corr": np.nan},
        {"underlying": "WH", "model": "heston", "spot": 100.0, "rate": 0.03, "div_yield": 0.01,
         "vol": np.nan, "v0": 0.04, "kappa": 1.5, "vbar": 0.04, "xi": 0.4472, "corr": -0.6},
        {"underlying": "WH2", "model": "heston", "spot": 100.0, "rate": 0.03, "div_yield": 0.0,
         "vol": np.nan, "v0": 0.06, "kappa": 1.0, "vbar": 0.05, "xi": 0.5, "corr": -0.4}])
    return trades, market


#: The synthetic book's correlations: WG and WG2 form a simulation group, and so do WH and WH2.
CORRELATIONS = pd.DataFrame({"underlying_1": ["WG"], "underlying_2": ["WG2"], "corr": [0.5]})
HESTON_CORRELATIONS = pd.DataFrame({"underlying_1": ["WH"], "underlying_2": ["WH2"],
                                    "corr": [0.5]})


def _runs(model):
    """The price_portfolio calls that compile ``model``'s kernels: (label, underlyings priced,
    keyword arguments)."""
    small = 2048        # 16 Sobol scramblings of 128 points; the pilot and the main run
    if model == "gbm":
        return [("GBM, Monte Carlo", ("WG",), dict(n_paths=small)),
                ("GBM, Sobol", ("WG",), dict(n_paths=small, sampler="sobol")),
                ("GBM, correlated", ("WG", "WG;WG2"),
                 dict(n_paths=small, correlations=CORRELATIONS))]
    return [("Heston, QE", ("WH",), dict(n_paths=small)),
            ("Heston, Euler", ("WH",), dict(n_paths=small, scheme="euler", steps_per_year=12))]


#: The Heston kernel of a correlated group with multi-asset trades: its own compile, which
#: ``warmup`` does but a cold run's child does not (a book needs it only with a Heston group).
HESTON_GROUP_RUN = ("Heston, correlated", ("WH", "WH;WH2"),
                    dict(n_paths=2048, correlations=HESTON_CORRELATIONS))


def compile_model(model, progress=None):
    """Compile (or load) ``model``'s kernels by pricing the synthetic book's trades of it."""
    from mcgreeks.portfolio import price_portfolio
    trades, market = synthetic_book()
    for label, names, kwargs in _runs(model):
        price_portfolio(trades[trades["underlying"].isin(names)], market, seed=1, **kwargs)
        if progress:
            progress(label)
    mark_warm(model)


# -- is the cache warm? -----------------------------------------------------------------------

def _marker(model):
    """The file that says ``model``'s kernels are cached for this machine: named by numba's
    own machine key (target triple, CPU name and features), as are numba's cache entries."""
    import hashlib

    from numba.core.registry import cpu_target
    machine = repr(cpu_target.target_context.codegen().magic_tuple())
    tag = hashlib.sha256(machine.encode()).hexdigest()[:12]
    root = _jit.cache_dir()
    return None if root is None else root / f"warm-{model}-{tag}"


def mark_warm(model):
    """Record that ``model``'s kernels are now cached for this machine."""
    marker = _marker(model)
    if marker is not None:
        marker.touch()


def cache_is_warm(models=MODELS):
    """Whether the kernels of every model in ``models`` are cached for this version, these
    kernel sources (the cache folder is named by them) and this machine: a file check, no
    compiling.  True after ``warmup()`` or a run that priced that model."""
    if isinstance(models, str):
        models = (models,)
    for model in models:
        marker = _marker(model)
        if marker is None or not marker.exists():
            return False
    return True


# -- warmup -----------------------------------------------------------------------------------

def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _idle_cores(interval=0.1):
    """How many cores were idle over the next ``interval`` seconds, from the kernel's CPU
    counters (/proc/stat); None where they cannot be read."""
    def sample():
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields)          # idle + iowait, all
    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def _spare_core():
    """Whether a child compile would get a core of its own: two or more cores, and at least
    0.9 of a core idle now (measured over 0.1 s; where that cannot be read, a 1-minute load
    average below cores - 1).  On a busy machine the child only takes time from this process:
    measured, the sample book's cold run took 52 s with a child and 41 s without at a load of
    3.3 on 2 cores.  Not the load average alone: it trails by a minute, so a machine that has
    just finished a job looks busy (a clean-checkout CI run after a benchmark compiled without
    the child, 34 s against 25 s).  MCGREEKS_COMPILE_CHILD=1 or 0 decides instead (a container
    sees its host's counters)."""
    forced = os.environ.get("MCGREEKS_COMPILE_CHILD", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    cores = _cores()
    if cores < 2:
        return False
    idle = _idle_cores()
    if idle is not None:
        return idle >= 0.9
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return load < cores - 1


def start_background(model):
    """Compile ``model``'s kernels in a child process, now; ``_jit.wait_for_background(model)``
    waits for it.  The child ends if this process does."""
    if model in _jit.BACKGROUND:
        return
    child = subprocess.Popen(
        [sys.executable, "-m", "mcgreeks.warmup", "--child", str(os.getpid()), model],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _jit.BACKGROUND[model] = child


def warmup(progress=None, models=MODELS, parallel=True):
    """Compile (or load from the cache) every kernel the given models can need, by pricing a
    tiny synthetic book of every payoff with every estimator (``synthetic_book``).

    ``progress(message)`` is called as each part is ready.  With ``parallel`` and two or more
    cores, the models after the first are compiled by child processes at the same time.
    Returns the seconds it took."""
    start = time.perf_counter()
    models = tuple(models)
    if parallel and _spare_core():
        for model in models[1:]:
            start_background(model)
    compile_model(models[0], progress)
    for model in models[1:]:
        if model in _jit.BACKGROUND:
            ok = _jit.wait_for_background(model)
            if ok and cache_is_warm(model):
                if progress:
                    progress(f"{model} kernels (compiled in a child process)")
                continue
        compile_model(model, progress)      # no child, or it failed: here
    if "heston" in models:
        from mcgreeks.portfolio import price_portfolio
        trades, market = synthetic_book()
        label, names, kwargs = HESTON_GROUP_RUN
        price_portfolio(trades[trades["underlying"].isin(names)], market, seed=1, **kwargs)
        if progress:
            progress(label)
    return time.perf_counter() - start


# -- the cost of a run ------------------------------------------------------------------------

def _dates(trade):
    n = trade.get("n_fixings")
    kind = payoffs.KINDS.get(trade.get("payoff"))
    fixed = kind is not None and payoffs.reads_fixings(kind, trade.get("monitoring") == "continuous")
    return int(n) if fixed and n == n and n else 1


def _job_names(trades, market, correlations):
    """Per trade, the name price_portfolio gives its job: its simulation group's names joined
    by ``;`` (``correlation.groups``; an underlying alone: its name), read best-effort from the
    raw tables (a malformed cell leaves the trade's own ``underlying`` text)."""
    from mcgreeks.correlation import groups
    cells = [str(u) for u in trades["underlying"]]
    lists = [[n.strip() for n in cell.split(";")] for cell in cells]
    names = {str(n) for n in market["underlying"]} | {n for names in lists for n in names}
    pairs = []
    if correlations is not None:
        for r in correlations.to_dict("records"):
            try:
                pairs.append((str(r["underlying_1"]), str(r["underlying_2"]), float(r["corr"])))
            except (KeyError, TypeError, ValueError):
                continue
    pairs = [p for p in pairs if p[0] in names and p[1] in names]
    label = {n: ";".join(g) for g in groups(names, pairs, [t for t in lists if len(t) > 1])
             for n in g}
    return [label.get(names_[0], cell) for names_, cell in zip(lists, cells)]


def estimate_seconds(trades, market, n_paths=100_000, steps_per_year=None, threads=None,
                     correlations=None):
    """[(job, model, n_trades, seconds)]: a rough wall time to price each simulation group
    (``_job_names``; an underlying alone is its own) (cost model above, ``threads`` cores;
    default numba's), in the order price_portfolio takes them (first appearance in
    ``trades``).  A multi-asset trade costs as many trades as it has names and pairs.  Rows it
    cannot read are skipped."""
    import numba
    threads = max(1, threads or numba.get_num_threads())
    models = {str(r.get("underlying")): str(r.get("model", "")).strip().lower()
              for r in market.to_dict("records")}
    # the rows once, grouped by job in order of first appearance (a frame per job cost 1.5 ms
    # each: 3 s of a 2,000-name book's start)
    rows = trades.to_dict("records")
    maturities = pd.to_numeric(trades["maturity"], errors="coerce").to_numpy() \
        if "maturity" in trades else np.full(len(rows), np.nan)
    jobs = {}
    for i, name in enumerate(_job_names(trades, market, correlations)):
        jobs.setdefault(name, []).append(i)
    out = []
    for name, idx in jobs.items():
        records = [rows[i] for i in idx]
        members = [models.get(n) for n in name.split(";")]
        # a group with a Heston member runs the Heston kernel, one path per member
        model = "heston" if "heston" in members else members[0]
        if model == "gbm":
            legs = [len(str(r["underlying"]).split(";")) for r in records]
            n_trades = sum(n * (n + 1) // 2 for n in legs)
            dates = sum(_dates(r) for r in records)
            cpu = n_paths * (GBM_TRADE * n_trades + GBM_DATE * dates) + PILOT_SECONDS
        elif model == "heston":
            spy = steps_per_year or 52
            known = [m for m in maturities[idx] if m == m]
            maturity = max(known) if known else 1.0
            steps = max(1, math.ceil(spy * maturity))
            cpu = n_paths * steps * (HESTON_STEP * len(members)
                                     + HESTON_TRADE_STEP * len(records))
        else:
            continue
        out.append((name, model, len(records), cpu / threads))
    return out


class RunProgress:
    """The command line's progress over one pricing run: compile (when the cache is cold) and
    the underlyings, by estimated seconds, so that its ETA weighs a Heston underlying by its
    cost rather than as one of n.

    ``log(message)`` writes a log line; ``bar`` is a tqdm-like factory or None (log lines).
    When some model's kernels are not cached, the first kernel compile (which comes only after
    the inputs are validated) prints "compiling kernels for this machine, first run: about N s"
    and, with ``parallel``, starts the later models' compiles in child processes.
    Call the object as price_portfolio's ``progress(name, n_trades)``; ``close()`` at the end."""

    def __init__(self, trades, market, *, n_paths=100_000, steps_per_year=None, sampler="mc",
                 log=None, bar=None, parallel=True, correlations=None):
        self.log = log or (lambda message: None)
        try:
            self.items = estimate_seconds(trades, market, n_paths, steps_per_year,
                                          correlations=correlations)
        except Exception:      # malformed tables: price_portfolio says what is wrong with them
            self.items = []
        order = []
        for _, model, _, _ in self.items:
            if model not in order:
                order.append(model)
        self.cold = [m for m in order if not cache_is_warm(m)]
        # The first model compiles here; with a second core, the others in children.  The
        # core is only looked for (a 0.1 s sample) when there is a second model to compile.
        self.background = self.cold[1:] if parallel and len(self.cold) > 1 and _spare_core() \
            else []
        self.compile = {}
        for model in self.cold:
            seconds = COMPILE_SECONDS[model] + (COMPILE_SECONDS["sobol"]
                                                if model == "gbm" and sampler == "sobol" else 0)
            self.compile[model] = seconds
        self.costs = self._costs()
        self.total = sum(self.costs)
        self.done = 0                     # underlyings priced
        self.started = time.perf_counter()
        self.bar = bar(total=round(self.total, 1)) if bar else None
        if self.bar is not None:
            self.bar.set_postfix_str(f"0/{len(self.items)} underlyings")
        self._stop = threading.Event()
        self._listener = None
        if self.cold:
            self._listen()
        if self.bar is not None:
            threading.Thread(target=self._tick, daemon=True).start()

    def _costs(self):
        """Estimated seconds from one underlying's end to the next's: its pricing, after its
        model's compile when it is the model's first (here: all of it; in a child: what is
        left of it, the child having started with the first compile)."""
        costs, elapsed, seen = [], 0.0, set()
        for _, model, _, seconds in self.items:
            start = elapsed
            if model not in seen:
                seen.add(model)
                if model in self.background:
                    elapsed = max(elapsed, CHILD_START_SECONDS + self.compile[model])
                else:
                    elapsed += self.compile.get(model, 0.0)
            elapsed += seconds
            costs.append(elapsed - start)
        return costs

    def _listen(self):
        """Announce the compile (and start the children) at numba's first compile, which
        comes after price_portfolio has validated the inputs."""
        from numba.core import event

        progress = self

        class FirstCompile(event.Listener):
            def on_start(self, ev):
                if progress._listener is not None:
                    event.unregister("numba:compile", progress._listener)
                    progress._listener = None
                    progress._announce()

            def on_end(self, ev):
                pass

        self._listener = FirstCompile()
        event.register("numba:compile", self._listener)

    def _announce(self):
        for model in self.background:
            start_background(model)
        self.log(f"compiling kernels for this machine ({', '.join(self.cold)}), first run: "
                 f"about {self.total:.0f} s")

    def _tick(self):
        """Move the bar with time between callbacks, never past 98 % of the next
        underlying's estimated end."""
        last = time.perf_counter()
        while not self._stop.wait(0.5):
            now = time.perf_counter()
            limit = sum(self.costs[:self.done + 1]) * 0.98
            step = min(now - last, limit - self.bar.n)
            last = now
            if step > 0.01:
                self.bar.update(round(step, 2))

    def __call__(self, name, n_trades):
        """price_portfolio's progress callback: underlying ``name`` is priced."""
        model = next((m for nm, m, _, _ in self.items if nm == name), None)
        if model is not None:
            mark_warm(model)        # its kernels are cached now: later runs say nothing
        self.done = min(self.done + 1, len(self.costs))
        reached = sum(self.costs[:self.done])
        left = max(0.0, self.total - reached)
        if self.bar is not None:
            if reached > self.bar.n:
                self.bar.update(round(reached - self.bar.n, 2))
            self.bar.set_postfix_str(f"{self.done}/{len(self.costs)} underlyings, {name}")
        else:
            self.log(f"priced {name} ({n_trades} trades), about {left:.0f} s left")

    def close(self):
        """Stop the bar's clock and stop listening to numba."""
        self._stop.set()
        if self._listener is not None:
            from numba.core import event
            event.unregister("numba:compile", self._listener)
            self._listener = None
        if self.bar is not None:
            self.bar.close()


def _watch_parent(pid):
    """End this child process when its parent (``pid``) is gone."""
    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != pid:
                os._exit(1)
    threading.Thread(target=watch, daemon=True).start()


def main(argv=None):
    """``python -m mcgreeks.warmup [--child PID] [MODEL ...]``: compile those models' kernels
    (default all) in this process."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--child"]:
        _watch_parent(int(args[1]))
        args = args[2:]
    for model in args or MODELS:
        compile_model(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
