"""The ``mcgreeks`` command's entry point (``mcgreeks.__main__``), run as a real subprocess: it
ends the process itself once the command has returned (``end_process``), so what it owes the
caller is checked here: the exit status, every line of a long table through a pipe, the
registered exit handlers, and an argparse exit left to the interpreter."""
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"

# The command exactly as the console script starts it, after registering one exit handler.
START = ("import atexit, sys\n"
         "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
         "sys.argv = ['mcgreeks'] + sys.argv[1:]\n"
         "from mcgreeks.__main__ import console\n"
         "console()\n")


def run(*args):
    return subprocess.run([sys.executable, "-c", START, *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_a_run_prints_its_whole_table_runs_exit_handlers_and_exits_0(tmp_path):
    done = run("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", 2000,
               "--greeks", "delta")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the table is longer than a pipe's buffer: its last lines arrive only if flushed
    assert len(done.stdout) > 8192
    assert lines[-1] == "values are per position, ± one standard error"
    assert sum(line.startswith("T0") for line in lines) == 72      # T001 ... T072
    assert done.stderr.splitlines()[-1] == "exit handler ran"


def test_bad_input_exits_2_through_the_same_end(tmp_path):
    done = run("price", tmp_path / "missing.csv", "--market", DATA / "market.csv")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"mcgreeks: error: trades file "
                                        f"'{tmp_path / 'missing.csv'}' does not exist",
                                        "exit handler ran"]


def test_a_usage_error_is_argparse_s_exit(tmp_path):
    done = run("price", "--no-such-flag")
    assert done.returncode == 2
    assert "unrecognized arguments" in done.stderr or "required" in done.stderr
    assert done.stderr.splitlines()[-1] == "exit handler ran"


def test_help_version_and_usage_errors_answer_before_the_heavy_modules_load():
    # what a parse imports: nothing of pandas, numba or the kernels (``mcgreeks.arguments``)
    probe = ("import sys\n"
             "from mcgreeks.arguments import parse\n"
             "args = parse(['price', 'book.csv', '--market', 'm.csv', '--paths', '5000'])\n"
             "assert (args.command, args.paths, args.greeks) == ('price', 5000, 'all'), args\n"
             "heavy = sorted(m for m in ('pandas', 'numba', 'numpy', 'mcgreeks.cli') "
             "if m in sys.modules)\n"
             "assert not heavy, heavy\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    import mcgreeks
    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"mcgreeks {mcgreeks.__version__}\n")
    usage = run("price", "--help")
    assert usage.returncode == 0 and "--paths PATHS" in usage.stdout
    assert "Monte Carlo prices and Greeks" in run("--help").stdout
