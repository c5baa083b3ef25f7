"""The ``mcgreeks`` command line (SPEC §5): argument parsing, files and printing; no pricing logic.

Exit status: 0 when every row priced, 1 when some rows carry an ``error``, 2 on bad input or
usage (one line on stderr naming the row, the column and the value; no output file written).
"""
import argparse
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd

from mcgreeks import greeks as G
from mcgreeks.portfolio import price_portfolio
from mcgreeks.validation import InputError

OUTPUT_FORMATS = (".csv", ".parquet")
#: Columns read as text whatever they look like ("001" stays "001", "NA" stays "NA").
_TEXT_COLUMNS = ("trade_id", "underlying", "payoff", "option_type", "barrier_type", "monitoring",
                 "model")


def read_table(path, what):
    """Read a CSV or Parquet table; only empty cells are missing values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file '{path}' does not exist")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS},
                                keep_default_na=False, na_values=[""], skipinitialspace=True)
    except Exception as exc:  # a malformed file is bad input, reported in one line
        raise InputError(f"{what} file '{path}' could not be read: {exc}") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table


def write_table(table, path):
    """Write ``table`` to ``path`` whole or not at all: a temporary file, then an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            table.to_parquet(tmp)
        else:
            table.to_csv(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _parse_method(text):
    """'auto', an estimator name, or 'greek=name,greek=name' for per-Greek choices."""
    if "=" not in text:
        return text
    items = [item.strip() for item in text.split(",") if item.strip()]
    bad = [item for item in items if "=" not in item]
    if bad:
        raise InputError(f"--method has value {text!r}: {bad[0]!r} is not of the form greek=estimator")
    return {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in items)}


def _with_error(value, se):
    """'value ± se' with the se to two significant digits and the value to the same decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not se > 0 or math.isnan(se):
        return f"{value:.6g}"
    decimals = max(0, 1 - math.floor(math.log10(se)))
    return f"{value:.{decimals}f} ± {se:.{decimals}f}"


def format_table(results):
    """The results as an aligned text table of value ± standard error, for a terminal."""
    shown = [q for q in G.QUANTITIES if results[q].notna().any()]
    view = pd.DataFrame({q: [_with_error(v, s) for v, s in zip(results[q], results[q + "_se"])]
                         for q in shown}, index=results.index)
    if (results["error"] != "").any():
        view["error"] = results["error"]
    return view.to_string()


def _parser():
    parser = argparse.ArgumentParser(prog="mcgreeks", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    price = commands.add_parser("price", help="price a portfolio and its Greeks")
    price.add_argument("trades", help="trades table (.csv or .parquet)")
    price.add_argument("--market", required=True, help="market table (.csv or .parquet)")
    price.add_argument("--paths", type=int, default=100_000, help="paths per underlying")
    price.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64)")
    price.add_argument("--method", default="auto",
                       help="auto|pathwise|lr|mixed|fd, or per Greek: delta=lr,gamma=fd")
    price.add_argument("--steps-per-year", type=float, default=None,
                       help="time steps per year of discretized models (GBM is exact)")
    price.add_argument("--out", help="write the results to FILE.csv or FILE.parquet")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.out and Path(args.out).suffix.lower() not in OUTPUT_FORMATS:
            raise InputError(f"--out has value '{args.out}': the file must end in .csv or .parquet")
        if args.out and not Path(args.out).resolve().parent.is_dir():
            raise InputError(f"--out has value '{args.out}': its folder does not exist")
        method = _parse_method(args.method)
        trades = read_table(args.trades, "trades")
        market = read_table(args.market, "market")
        start = time.perf_counter()
        results, notes = price_portfolio(trades, market, n_paths=args.paths, seed=args.seed,
                                         method=method, steps_per_year=args.steps_per_year,
                                         diagnostics=True)
    except InputError as exc:
        print(f"mcgreeks: error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(format_table(results))
    print(f"\n{len(results)} trades, {args.paths} paths per underlying, seed {args.seed}, "
          f"{elapsed:.2f} s; values are per position, ± one standard error")
    controlled = notes[notes["control"] != ""].xs("price", level="quantity")
    if len(controlled):
        reduction = controlled["variance_reduction"]
        print(f"control variate (geometric Asian) on {len(controlled)} arithmetic Asians: price "
              f"variance reduced {reduction.min():.0f}x to {reduction.max():.0f}x")
    if args.out:
        try:
            write_table(results, args.out)
        except OSError as exc:
            print(f"mcgreeks: error: --out has value '{args.out}': could not write it: {exc}",
                  file=sys.stderr)
            return 2
        print(f"wrote {args.out}")
    failed = int((results["error"] != "").sum())
    if failed:
        print(f"mcgreeks: {failed} rows could not be priced (see the error column)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
