"""The ``mcgreeks`` command line: argument parsing, files, logs (docs/reference.md#command-line).

``mcgreeks price`` prices a portfolio; with ``--out`` it writes the results (and with ``--by
underlying`` the aggregates, with ``--risk-out`` the long risk table) and beside them an audit
manifest from which ``mcgreeks reproduce MANIFEST`` reruns the job bit for bit.  The files appear
together or not at all: each is written to a hidden temporary file, then all are renamed, the
manifest last.

Exit status:
  0    every row priced;
  1    some rows carry an ``error`` (``--on-error skip``, or valid rows the engine cannot price);
  2    bad input or usage, or an optional extra (parquet, dask) missing for what was asked: on
       stderr one line naming the row, the column and the value (with ``--on-error fail`` and
       several bad rows, a first line counting them and one line each), and no output file;
  130  interrupted by SIGINT (Ctrl-C), 143 terminated by SIGTERM: one line on stderr, no output
       file and no temporary file (unless the signal came after the last rename: then every
       output file is there, whole).
"""
import contextlib
import hashlib
import importlib
import json
import logging
import os
import platform
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

import mcgreeks
from mcgreeks import arguments
from mcgreeks import greeks as G
from mcgreeks.formatting import with_error
from mcgreeks.portfolio import aggregate, price_portfolio
from mcgreeks.validation import InputError

OUTPUT_FORMATS = (".csv", ".parquet")
#: Columns read as text whatever they look like ("001" stays "001", "NA" stays "NA").
_TEXT_COLUMNS = ("trade_id", "underlying", "payoff", "option_type", "barrier_type", "monitoring",
                 "model", "exercise")
#: Print the per-trade table only up to this many rows (a batch writes them to --out).
PRINT_ROWS = 200


def read_table(path, what):
    """Read a CSV or Parquet table; only empty cells are missing values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file '{path}' does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"{what} file '{path}' is empty")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS},
                                keep_default_na=False, na_values=[""], skipinitialspace=True)
    except Exception as exc:  # a malformed file is bad input, reported in one line
        raise InputError(f"{what} file '{path}' could not be read: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    if len(table) == 0:
        raise InputError(f"{what} file '{path}' has no rows")
    return table


#: Optional extras: name -> the module that must import.
EXTRAS = {"parquet": "pyarrow", "dask": "dask.distributed"}


def need_extra(extra, why):
    """Raise InputError naming the extra to install if its module cannot be imported."""
    try:
        importlib.import_module(EXTRAS[extra])
    except ImportError:
        raise InputError(f"{why} needs the optional '{extra}' extra: "
                         f"pip install 'mcgreeks[{extra}]'") from None


def _check_extras(settings, inputs, outputs):
    """Every optional extra the job will use is installed, checked before anything is priced."""
    for name, path in list(inputs.items()) + list(outputs.items()):
        if path and Path(path).suffix.lower() == ".parquet":
            need_extra("parquet", f"Parquet file '{path}' ({name})")
    for flag in ("workers", "scheduler"):
        if settings.get(flag):
            need_extra("dask", f"--{flag}")


#: Packages whose versions the manifest records, when installed.
VERSIONED = ("numba", "llvmlite", "numpy", "scipy", "pandas", "pyarrow", "dask", "distributed")


def installed_versions():
    """{package: version} of the installed ones among VERSIONED, read from their metadata
    (nothing is imported: the optional extras may be absent)."""
    from importlib import metadata
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _encode(table, path, suffix):
    """Write ``table`` (a DataFrame; a dict for .json) to ``path`` in the format ``suffix``
    names (.parquet, .json, else CSV)."""
    suffix = suffix.lower()
    if suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".json":
        Path(path).write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    else:
        # an unnamed RangeIndex (the long risk table's) only numbers the rows: not a column
        keyed = table.index.name is not None or not isinstance(table.index, pd.RangeIndex)
        table.to_csv(path, index=keyed)


class OutputSet:
    """Output files that appear together or not at all.

    ``add`` writes each to a hidden temporary file beside its destination; ``commit`` renames
    them all in the order added (add the manifest last), with SIGINT and SIGTERM held until the
    last rename.  Leaving the ``with`` block without a commit (an error, an interrupt) removes
    every temporary file.  If a rename itself fails, the files already renamed are removed
    again (a file they replaced is not brought back).
    """

    def __init__(self):
        self.files = []                       # (temporary, destination), in commit order

    def __enter__(self):
        return self

    def add(self, table, path):
        """Write ``table`` for ``path``; returns the temporary file (to hash it, say)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.files.append((tmp, path))
        _encode(table, tmp, path.suffix)
        return tmp

    def commit(self):
        renamed = []
        with signals_held():
            try:
                for tmp, path in self.files:
                    os.replace(tmp, path)
                    renamed.append(path)
            except BaseException:
                for path in renamed:
                    path.unlink(missing_ok=True)
                raise
            self.files = []

    def __exit__(self, *exc):
        for tmp, _ in self.files:
            tmp.unlink(missing_ok=True)
        self.files = []
        return False


# --- stopping on SIGINT and SIGTERM ---------------------------------------------------------

class Stopped(BaseException):
    """SIGINT or SIGTERM arrived.  A BaseException, so that no ``except Exception`` between the
    signal and ``main`` takes it for an error of its own."""

    def __init__(self, signum, after_commit=False):
        super().__init__(signum)
        self.signum, self.after_commit = signum, after_commit


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_held = {"active": False, "pending": None}


def _on_signal(signum, frame):
    # Later signals are ignored: the first one's clean-up (temporary files) must finish.
    for s in _STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if _held["active"]:
        _held["pending"] = signum
        return
    raise Stopped(signum)


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM during the block (the renames of an OutputSet) and act on one
    that arrived when it ends, so that a set of files is never half renamed."""
    _held["active"], _held["pending"] = True, None
    try:
        yield
    finally:
        _held["active"] = False
    if _held["pending"] is not None:
        raise Stopped(_held["pending"], after_commit=True)


@contextlib.contextmanager
def _stop_on_signals():
    """Within the block, SIGINT and SIGTERM raise Stopped in this (the main) thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _on_signal) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def in_background(func, /, *args, **kwargs):
    """``func(*args, **kwargs)``, run in a worker thread while this thread waits for it.

    Python runs signal handlers in the main thread only, between bytecodes; a numba kernel
    called from the main thread would delay a Ctrl-C until it returns.  The kernels release
    the GIL, so with the work in another thread the main thread takes the signal at once.
    The worker is a daemon: when a signal stops the run, the process exits without it."""
    outcome = {}

    def work():
        try:
            outcome["value"] = func(*args, **kwargs)
        except BaseException as exc:            # handed to the waiting thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="mcgreeks-background", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_method(text):
    """'auto', an estimator name, or 'greek=name,greek=name' for per-Greek choices."""
    if "=" not in text:
        return text
    items = [item.strip() for item in text.split(",") if item.strip()]
    bad = [item for item in items if "=" not in item]
    if bad:
        raise InputError(f"--method has value {text!r}: {bad[0]!r} is not of the form greek=estimator")
    return {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in items)}


def format_table(results):
    """The results as an aligned text table of value ± standard error, for a terminal."""
    shown = [q for q in G.QUANTITIES if q in results and results[q].notna().any()]
    view = pd.DataFrame({q: [with_error(v, s) for v, s in zip(results[q], results[q + "_se"])]
                         for q in shown}, index=results.index)
    for column in ("error", "warning"):
        if column in results and (results[column] != "").any():
            view[column] = results[column]
    return view.to_string()


class _Log:
    """Log lines with elapsed time on stderr, and a progress bar when stderr is a terminal."""

    def __init__(self, quiet):
        self.quiet, self.start, self.bar = quiet, time.perf_counter(), None

    def __call__(self, message):
        if not self.quiet:
            print(f"[{time.perf_counter() - self.start:8.2f}s] {message}", file=sys.stderr)

    def progress(self, trades, market, settings, correlations=None):
        """A callback for price_portfolio's progress (``warmup.RunProgress``): the first-run
        message when kernels must be compiled, then a tqdm bar on a terminal, else log lines,
        over compile and pricing, with an ETA weighted by each underlying's estimated cost."""
        from mcgreeks.warmup import RunProgress
        bar = None
        if not self.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            def bar(total):
                return tqdm(total=total, file=sys.stderr, unit="s",
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")
        self.bar = RunProgress(trades, market, n_paths=settings["paths"],
                               steps_per_year=settings["steps_per_year"],
                               sampler=settings.get("sampler", "mc"),
                               log=self if not self.quiet else None, bar=bar,
                               parallel=not (settings.get("workers") or settings.get("scheduler")),
                               correlations=correlations)
        return self.bar

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _sibling(out, tag):
    """FILE.csv -> FILE.<tag>.csv (same folder and format)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{tag}{out.suffix}")


def manifest_path(out):
    out = Path(out)
    return out.with_name(out.name + ".manifest.json")


def _check_out(out, flag="--out"):
    if Path(out).suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(f"{flag} has value '{out}': the file must end in .csv or .parquet")
    if not Path(out).resolve().parent.is_dir():
        raise InputError(f"{flag} has value '{out}': its folder does not exist")


def _check_outputs(out, risk_out):
    """Both output flags name writable .csv/.parquet files, and the risk table would not
    overwrite one of --out's files."""
    if out:
        _check_out(out)
    if risk_out:
        _check_out(risk_out, "--risk-out")
        if out and Path(risk_out).resolve() in {Path(p).resolve() for p in (
                out, _sibling(out, "by_underlying"), manifest_path(out))}:
            raise InputError(f"--risk-out has value '{risk_out}': that is one of --out's files")


def _client(settings):
    if settings.get("workers"):
        from mcgreeks.distributed import local_client
        return local_client(settings["workers"])
    if settings.get("scheduler"):
        from dask.distributed import Client
        return Client(settings["scheduler"])
    return None


def _close_client(client, settings):
    if settings.get("workers"):
        from mcgreeks.distributed import close_local
        close_local(client)
    else:
        client.close()


def _price(settings, inputs, out, log, quiet, argv):
    """Run one pricing job; write outputs and manifest.  Returns the exit status."""
    started = datetime.now(timezone.utc)
    risk_out = settings.get("risk_out")
    _check_outputs(out, risk_out)
    _check_extras(settings, inputs, {"out": out, "risk_out": risk_out})
    method = _parse_method(settings["method"])
    trades = read_table(inputs["trades"], "trades")
    market = read_table(inputs["market"], "market")
    correlations = (read_table(inputs["correlations"], "correlations")
                    if inputs.get("correlations") else None)
    # Nothing is logged before the inputs are validated: bad input gets exactly one line.
    client = _client(settings)
    stopped = False
    try:
        priced = in_background(
            price_portfolio,
            trades, market, correlations=correlations, n_paths=settings["paths"],
            seed=settings["seed"], method=method,
            steps_per_year=settings["steps_per_year"], on_error=settings["on_error"],
            control_variate=settings["control_variate"],
            lr_baseline=settings.get("lr_baseline", True),
            sampler=settings.get("sampler", "mc"),
            randomizations=settings.get("randomizations", 16), client=client, diagnostics=True,
            greeks=settings.get("greeks", "all"), risk=bool(risk_out),
            upper_bound=settings.get("upper_bound", False),
            pilot_paths=settings.get("pilot_paths"),
            progress=log.progress(trades, market, settings, correlations))
    except Stopped:
        stopped = True      # the process ends now: no waiting on a cluster to shut down
        log.quiet = True    # the pricing thread may still report a job: the stop line is last
        raise
    finally:
        log.close()
        if client is not None and not stopped:
            _close_client(client, settings)
    results, risk, notes = priced if risk_out else (priced[0], None, priced[1])
    failed = int((results["error"] != "").sum())
    where = (f" on {settings['workers']} local Dask workers" if settings.get("workers") else
             f" on the Dask cluster at {settings['scheduler']}" if settings.get("scheduler") else "")
    log(f"priced {len(results) - failed} of {len(results)} trades{where}, "
        f"{settings['paths']} paths per underlying"
        + (f" (Sobol, {settings['randomizations']} scramblings)"
           if settings.get("sampler") == "sobol" else
           " (antithetic pairs)" if settings.get("sampler") == "antithetic" else "")
        + f", seed {settings['seed']}")
    controlled = notes[notes["control"] != ""]
    if len(controlled):
        reduction = controlled.xs("price", level="quantity")["variance_reduction"]
        log(f"geometric control variate on {len(reduction)} arithmetic Asians: price variance "
            f"cut {reduction.min():.0f}x to {reduction.max():.0f}x")
    totals = aggregate(results) if settings.get("by") else None
    if not quiet:
        if not out or len(results) <= PRINT_ROWS:
            print(format_table(results))
        if totals is not None:
            print("\n" + format_table(totals.assign(error="")))
        print("values are per position, ± one standard error")
    tables = {}                       # name -> (destination, table), written together
    if out:
        tables["results"] = (out, results)
        if totals is not None:
            tables["by_underlying"] = (_sibling(out, "by_underlying"), totals)
    if risk_out:
        tables["risk"] = (risk_out, risk)
    with OutputSet() as files:
        digests = {name: sha256(files.add(table, path)) for name, (path, table) in tables.items()}
        if out:
            files.add(_manifest(settings, inputs, tables, digests, argv, started, results,
                                failed), manifest_path(out))
        files.commit()
    if tables:
        log(f"wrote {', '.join(str(path) for path, _ in tables.values())}"
            + (f" and {manifest_path(out)}" if out else ""))
    if failed:
        print(f"mcgreeks: {failed} rows could not be priced (see the error column)",
              file=sys.stderr)
        return 1
    return 0


def _manifest(settings, inputs, tables, digests, argv, started, results, failed):
    """The audit record of a run: versions, command, settings, inputs' and outputs' hashes."""
    return {
        "mcgreeks": mcgreeks.__version__,
        "versions": installed_versions(),
        "python": platform.python_version(), "platform": platform.platform(),
        "command": argv, "settings": settings,
        "inputs": {k: {"path": str(Path(v).resolve()), "sha256": sha256(v)}
                   for k, v in inputs.items()},
        "outputs": {name: {"path": str(Path(path).resolve()), "sha256": digests[name]}
                    for name, (path, _) in tables.items()},
        "started": started.isoformat(), "finished": datetime.now(timezone.utc).isoformat(),
        "rows": {"trades": len(results), "priced": len(results) - failed, "failed": failed},
    }


def _reproduce(args, log):
    manifest = json.loads(Path(args.manifest).read_text())
    inputs = {}
    for name, entry in manifest["inputs"].items():
        if not Path(entry["path"]).is_file() or sha256(entry["path"]) != entry["sha256"]:
            raise InputError(f"manifest input '{name}' ({entry['path']}) is missing or has "
                             "changed since the run: its sha256 differs")
        inputs[name] = entry["path"]
    settings = dict(manifest["settings"])
    rerun = {"results": args.out}
    if settings.get("risk_out"):
        # the rerun's risk table goes beside its results: FILE.risk.<the original's format>
        rerun["risk"] = _sibling(args.out, "risk").with_suffix(Path(settings["risk_out"]).suffix)
        settings["risk_out"] = str(rerun["risk"])
    status = _price(settings, inputs, args.out, log, args.quiet, sys.argv)
    same = True
    for name, path in rerun.items():
        original = manifest["outputs"][name]
        same_file = sha256(path) == original["sha256"]
        log(f"{path}: {'identical to' if same_file else 'DIFFERENT from'} the original {name} "
            f"(sha256 {original['sha256'][:12]}…)")
        same = same and same_file
    return status if same else 1


def main(argv=None):
    """Run the command line; returns the exit status (a signal ends the process itself)."""
    return execute(arguments.parse(argv), argv)


def execute(args, argv=None):
    """Run the parsed command line ``args`` (``arguments.parse``; argv: what it was parsed from,
    None for sys.argv, recorded in a manifest); returns the exit status."""
    log = _Log(args.quiet)
    with _stop_on_signals():
        try:
            return _run(args, log, argv)
        except Stopped as stop:
            _stopped(stop, log)


def _stopped(stop, log):
    """Say in one line that a signal stopped the run, and end the process with 128 + signal.

    Temporary files are gone by now (removed on the way out of OutputSet).  ``os._exit``,
    because a pricing thread inside a kernel, or a Dask cluster, would otherwise hold the
    exit up; local Dask workers are killed first (they ignore the signal, see
    ``distributed.local_client``)."""
    from mcgreeks import distributed

    logging.disable(logging.CRITICAL)     # a cluster's threads have nothing more to say
    log.close()
    what = "interrupted" if stop.signum == signal.SIGINT else "terminated"
    done = ("after its output files were written" if stop.after_commit else
            "before writing any output file")
    print(f"mcgreeks: {what} ({signal.Signals(stop.signum).name}) {done}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # That line is the last this process's terminal sees: a Dask worker still being spawned
    # (the cluster starts in a thread of its own) inherits /dev/null, and one spawned before
    # is killed, instead of printing its EOFError once this process is gone
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    distributed.kill_local()
    os._exit(128 + stop.signum)


def _run(args, log, argv):
    try:
        if args.command == "warmup":
            from mcgreeks import _jit, warmup
            log("compiling the kernels for this machine (GBM, Sobol, correlated GBM, Heston)")
            seconds = warmup.warmup(progress=lambda part: log(f"ready: {part}"))
            log(f"kernels ready in {seconds:.0f} s, cached in {_jit.cache_dir()}")
            return 0
        if args.command == "reproduce":
            return _reproduce(args, log)
        settings = {"paths": args.paths, "seed": args.seed, "method": args.method,
                    "steps_per_year": args.steps_per_year, "on_error": args.on_error,
                    "by": args.by, "control_variate": not args.no_control_variate,
                    "lr_baseline": not args.no_lr_baseline, "sampler": args.sampler,
                    "randomizations": args.randomizations, "greeks": args.greeks,
                    "risk_out": args.risk_out, "upper_bound": args.upper_bound,
                    "pilot_paths": args.pilot_paths,
                    "workers": args.workers, "scheduler": args.scheduler}
        inputs = {"trades": args.trades, "market": args.market}
        if args.correlations:
            inputs["correlations"] = args.correlations
        return _price(settings, inputs, args.out, log, args.quiet,
                      sys.argv if argv is None else ["mcgreeks"] + list(argv))
    except InputError as exc:
        print(f"mcgreeks: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mcgreeks: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
