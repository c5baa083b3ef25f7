"""The lean core without its extras, run as real subprocesses whose Python cannot import pyarrow
or Dask (a finder at the head of ``sys.meta_path`` refuses them, as a venv without the extra
would): CSV in and out and the manifest work; Parquet and Dask are one line naming the extra,
exit 2, and nothing written.  Also the header-only input files and ``--version``."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
PATHS = "2000"

#: Python run with ``-c``: refuse the modules named in argv[1] (comma-separated), then run the
#: mcgreeks command line on the remaining arguments exactly as the installed script would.
WITHOUT = """
import sys
blocked = set(sys.argv[1].split(","))

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
if sys.argv[2] == "--probe":        # what this Python can import, for the test's own check
    for name in sys.argv[3:]:
        try:
            __import__(name)
            print(name, "imports")
        except ImportError:
            print(name, "missing")
    sys.exit(0)
sys.argv = ["mcgreeks"] + sys.argv[2:]
from mcgreeks.cli import main
sys.exit(main())
"""


def run_without(blocked, *args, cwd):
    """The CLI in a Python where the top-level packages ``blocked`` cannot be imported."""
    return subprocess.run([sys.executable, "-c", WITHOUT, ",".join(blocked), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mcgreeks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def one_error_line(proc):
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mcgreeks: error:"), lines[0]
    return lines[0]


NO_EXTRAS = ("pyarrow", "dask", "distributed")


def test_the_wrapper_really_hides_the_extras(tmp_path):
    """The environment the other tests run in: pyarrow and Dask do not import, the core does."""
    proc = run_without(NO_EXTRAS, "--probe", "pyarrow", "dask", "distributed", "pandas",
                       "numba", "mcgreeks.cli", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:6] == ["pyarrow missing", "dask missing",
                                           "distributed missing", "pandas imports",
                                           "numba imports", "mcgreeks.cli imports"]


def test_csv_and_manifest_work_without_the_extras(tmp_path):
    proc = run_without(NO_EXTRAS, "price", DATA / "trades.csv", "--market", DATA / "market.csv",
                       "--paths", PATHS, "--out", "r.csv", "--by", "underlying", "--quiet",
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r.by_underlying.csv", "r.csv", "r.csv.manifest.json"]
    manifest = json.loads((tmp_path / "r.csv.manifest.json").read_text())
    assert {"numba", "numpy", "pandas", "scipy"} <= set(manifest["versions"])
    assert set(manifest["outputs"]) == {"results", "by_underlying"}
    # the same bits as a run in the full environment
    full = run_cli("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths",
                   PATHS, "--out", "full.csv", "--quiet", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert (tmp_path / "full.csv").read_bytes() == (tmp_path / "r.csv").read_bytes()


def _parquet_inputs(tmp_path):
    pd.read_csv(DATA / "trades.csv").to_parquet(tmp_path / "trades.parquet", index=False)
    pd.read_csv(DATA / "market.csv").to_parquet(tmp_path / "market.parquet", index=False)


@pytest.mark.parametrize("args, extra, named", [
    (["trades.parquet", "--market", DATA / "market.csv"], "parquet", "trades.parquet"),
    ([DATA / "trades.csv", "--market", "market.parquet"], "parquet", "market.parquet"),
    ([DATA / "trades.csv", "--market", DATA / "market.csv", "--out", "r.parquet"], "parquet",
     "r.parquet"),
    ([DATA / "trades.csv", "--market", DATA / "market.csv", "--out", "r.csv", "--workers", "2"],
     "dask", "--workers"),
    ([DATA / "trades.csv", "--market", DATA / "market.csv", "--out", "r.csv", "--scheduler",
      "tcp://127.0.0.1:8786"], "dask", "--scheduler"),
], ids=["parquet-trades", "parquet-market", "parquet-out", "workers", "scheduler"])
def test_missing_extra_is_one_line_exit_2_and_nothing_written(tmp_path, args, extra, named):
    _parquet_inputs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = run_without(NO_EXTRAS, "price", *args, "--paths", PATHS, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert f"needs the optional '{extra}' extra" in line, line
    assert f"pip install 'mcgreeks[{extra}]'" in line, line
    assert named in line, line
    assert proc.stdout == ""                               # nothing priced, nothing printed
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_only_pyarrow_missing_still_runs_dask_with_csv(tmp_path):
    """The extras are independent: without pyarrow, --workers and CSV files work."""
    proc = run_without(("pyarrow",), "price", DATA / "trades.csv", "--market",
                       DATA / "market.csv", "--paths", PATHS, "--out", "r.csv", "--workers", "2",
                       "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.csv.manifest.json"]


@pytest.mark.parametrize("which", ["trades", "market"])
@pytest.mark.parametrize("form", ["header-only", "empty"])
def test_input_without_rows_is_a_clear_message(tmp_path, which, form):
    source = DATA / f"{which}.csv"
    header = source.read_text().splitlines()[0] + "\n"
    (tmp_path / f"{which}.csv").write_text(header if form == "header-only" else "")
    files = {"trades": DATA / "trades.csv", "market": DATA / "market.csv",
             which: tmp_path / f"{which}.csv"}
    proc = run_cli("price", files["trades"], "--market", files["market"], "--paths", PATHS,
                   "--out", "r.csv", cwd=tmp_path)
    assert proc.returncode == 2
    line = one_error_line(proc)
    words = "has no rows" if form == "header-only" else "is empty"
    assert f"{which} file '{files[which]}' {words}" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{which}.csv"]


def test_header_only_parquet_trades(tmp_path):
    pd.read_csv(DATA / "trades.csv").iloc[:0].to_parquet(tmp_path / "t.parquet", index=False)
    proc = run_cli("price", "t.parquet", "--market", DATA / "market.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "trades file 't.parquet' has no rows" in one_error_line(proc)


def test_version():
    from mcgreeks import __version__
    proc = run_cli("--version", cwd=DATA)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"mcgreeks {__version__}\n"
    # the package's version is the one pyproject.toml gives the installed distribution
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert __version__ == tomllib.loads(pyproject.read_text())["project"]["version"] == "0.4.1"
