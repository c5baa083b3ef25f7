"""The ``mcgreeks`` command line's grammar: its commands, options and defaults.

Apart from ``cli``, which runs a parsed command, so that ``mcgreeks --help``, ``--version`` and a
usage error answer without importing pandas, numba or the kernels (about a second: they
answered in 0.9-1.25 s on 2026-12-08's EPYC, and now in the interpreter's start)."""
import argparse

from mcgreeks import __version__

DESCRIPTION = ("Monte Carlo prices and Greeks with standard errors for a portfolio of options "
               "(docs/reference.md#command-line).")


def parser():
    """The command line's parser: the commands ``price``, ``warmup`` and ``reproduce``, their
    options and defaults (docs/reference.md#command-line)."""
    parser = argparse.ArgumentParser(prog="mcgreeks", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mcgreeks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    price = commands.add_parser("price", help="price a portfolio and its Greeks")
    price.add_argument("trades", help="trades table (.csv or .parquet)")
    price.add_argument("--market", required=True, help="market table (.csv or .parquet)")
    price.add_argument("--correlations", metavar="FILE",
                       help="correlations table (.csv or .parquet: underlying_1, underlying_2, "
                            "corr): correlated underlyings are simulated together")
    price.add_argument("--paths", type=int, default=100_000, help="paths per underlying")
    price.add_argument("--seed", type=int, default=0, help="random seed in [0, 2**64)")
    price.add_argument("--method", default="auto",
                       help="auto|pathwise|lr|mixed|fd|optimal, or per Greek: "
                            "delta=lr,gamma=fd")
    price.add_argument("--steps-per-year", type=float, default=None,
                       help="time steps per year of discretized models (GBM is exact)")
    price.add_argument("--out", help="write the results to FILE.csv or FILE.parquet, with an "
                                     "audit manifest FILE.csv.manifest.json (or "
                                     "FILE.parquet.manifest.json) beside it")
    price.add_argument("--greeks", default="all",
                       help="what to compute besides the price: all (default), none (the price "
                            "alone), or a comma-separated list such as delta,vega,d_xi; the "
                            "others are not computed and their columns are absent")
    price.add_argument("--risk-out", metavar="FILE",
                       help="also write the long risk table (one row per trade and measure: "
                            "trade_id, measure, underlying, underlying_2, value, se, method) "
                            "to FILE.csv or FILE.parquet, together with --out's files")
    price.add_argument("--by", choices=["underlying"], help="also aggregate per underlying and "
                       "in total (printed, and written to FILE.by_underlying.csv|parquet)")
    price.add_argument("--on-error", choices=["fail", "skip"], default="fail",
                       help="fail: bad input writes nothing (default); skip: price the good "
                            "rows, give each bad row its reason in 'error', exit 1")
    price.add_argument("--no-control-variate", action="store_true",
                       help="price arithmetic Asians without their geometric control")
    price.add_argument("--no-lr-baseline", action="store_true",
                       help="plain likelihood-ratio estimates, without the pilot-fitted baseline")
    price.add_argument("--sampler", choices=["mc", "antithetic", "sobol"], default="mc",
                       help="mc: Monte Carlo (default); antithetic: Monte Carlo in pairs of "
                            "reflected paths (even --paths); sobol: randomized quasi-Monte "
                            "Carlo (GBM; --paths = randomizations × a power of two)")
    price.add_argument("--upper-bound", action="store_true",
                       help="also the dual upper bound of each Bermudan or American trade and "
                            "its gap to the price (Andersen-Broadie)")
    price.add_argument("--pilot-paths", type=int, default=None, metavar="N",
                       help="pilot paths each Bermudan or American trade's exercise policies "
                            "are fitted on, in all (default 262,144)")
    price.add_argument("--randomizations", type=int, default=16,
                       help="independent Sobol scramblings, whose spread gives the standard "
                            "errors (default 16)")
    where = price.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="start a local Dask cluster of N processes")
    where.add_argument("--scheduler", help="join the Dask cluster at this scheduler ADDRESS")
    price.add_argument("--quiet", action="store_true", help="no progress bar, logs or table")
    warm = commands.add_parser("warmup", help="compile the kernels for this machine ahead of a "
                               "run (a first run otherwise compiles what its book needs)")
    warm.add_argument("--quiet", action="store_true", help="no log lines")
    reproduce = commands.add_parser("reproduce", help="rerun a job from its audit manifest")
    reproduce.add_argument("manifest", help="FILE.manifest.json written by 'mcgreeks price'")
    reproduce.add_argument("--out", required=True, help="where to write the rerun's results")
    reproduce.add_argument("--quiet", action="store_true")
    return parser


def parse(argv=None):
    """The parsed command line (argv: the arguments after the program's name, None for
    sys.argv's); argparse exits with status 2 on a usage error, 0 after --help or --version."""
    return parser().parse_args(argv)
