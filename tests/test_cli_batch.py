"""The nightly batch command line: --on-error, manifest and reproduce, --by, progress, Dask."""
import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mcgreeks import aggregate, price_portfolio

DATA = Path(__file__).resolve().parents[1] / "data"
PATHS = "3000"


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mcgreeks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def sample():
    trades = pd.read_csv(DATA / "trades.csv", dtype=str, keep_default_na=False)
    market = pd.read_csv(DATA / "market.csv", dtype=str, keep_default_na=False)
    return trades, market


def _set(table, key_column, key, column, value):
    table.loc[table[key_column] == key, column] = value


# Every bad-input case of docs/reference.md#input-errors that concerns a row (a missing column
# concerns the table).
ROW_CASES = {
    "unknown payoff": ("trades", "T001", "payoff", "chooser", ["T001"]),
    "unknown underlying": ("trades", "T002", "underlying", "NOPE", ["T002"]),
    "strike zero": ("trades", "T003", "strike", "0", ["T003"]),
    "strike negative": ("trades", "T004", "strike", "-5", ["T004"]),
    "maturity zero": ("trades", "T005", "maturity", "0", ["T005"]),
    "strike NaN": ("trades", "T006", "strike", "NaN", ["T006"]),
    "duplicate trade_id": ("trades", "T008", "trade_id", "T007", ["T007 <row 8>"]),
    "vol zero": ("market", "BOLT", "vol", "0", None),     # None: every trade naming BOLT
}


@pytest.mark.parametrize("case", sorted(ROW_CASES))
def test_skip_prices_the_good_rows_and_explains_the_bad(tmp_path, case):
    table, key, column, value, bad_ids = ROW_CASES[case]
    trades, market = sample()
    bad_ids = bad_ids or list(trades.trade_id[trades.underlying.str.split(";").map(
        lambda names: key in names)])
    if table == "trades":
        _set(trades, "trade_id", key, column, value)
    else:
        _set(market, "underlying", key, column, value)
    trades.to_csv(tmp_path / "t.csv", index=False)
    market.to_csv(tmp_path / "m.csv", index=False)
    failing = run_cli("price", "t.csv", "--market", "m.csv", "--paths", PATHS, "--out", "r.csv",
                      cwd=tmp_path)
    assert failing.returncode == 2 and not (tmp_path / "r.csv").exists()
    proc = run_cli("price", "t.csv", "--market", "m.csv", "--paths", PATHS, "--out", "r.csv",
                   "--on-error", "skip", "--quiet", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    out = pd.read_csv(tmp_path / "r.csv", index_col="trade_id", keep_default_na=False,
                      na_values=[""])
    assert len(out) == len(trades)
    errors = out["error"].fillna("")
    assert set(out.index[errors != ""]) == set(bad_ids), errors[errors != ""]
    for tid in bad_ids:
        assert column in errors[tid] and np.isnan(out.at[tid, "price"])
    assert np.isfinite(out.loc[errors == "", "price"]).all()


def test_heston_corr_out_of_range_is_skipped_per_underlying(tmp_path):
    trades, market = sample()
    heston = {c: "" for c in market.columns} | dict(
        underlying="HEST", model="heston", spot="100", rate="0.02", v0="0.04", kappa="1.5",
        vbar="0.04", xi="0.5", corr="1.5")
    market = pd.concat([market, pd.DataFrame([heston])], ignore_index=True).fillna("")
    row = {c: "" for c in trades.columns} | dict(trade_id="H1", underlying="HEST",
                                                 payoff="european", option_type="call",
                                                 strike="100", maturity="1")
    trades = pd.concat([trades, pd.DataFrame([row])], ignore_index=True).fillna("")
    trades.to_csv(tmp_path / "t.csv", index=False)
    market.to_csv(tmp_path / "m.csv", index=False)
    proc = run_cli("price", "t.csv", "--market", "m.csv", "--paths", PATHS, "--out", "r.csv",
                   "--on-error", "skip", "--quiet", cwd=tmp_path)
    assert proc.returncode == 1
    out = pd.read_csv(tmp_path / "r.csv", index_col="trade_id")
    assert "corr" in out.at["H1", "error"] and "1.5" in out.at["H1", "error"]


def test_a_missing_column_fails_even_with_skip(tmp_path):
    trades, market = sample()
    trades.drop(columns="strike").to_csv(tmp_path / "t.csv", index=False)
    proc = run_cli("price", "t.csv", "--market", DATA / "market.csv", "--out", "r.parquet",
                   "--on-error", "skip", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert "strike" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_manifest_records_the_run_and_reproduces_it(tmp_path):
    proc = run_cli("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths",
                   PATHS, "--seed", "42", "--out", "r.parquet", "--by", "underlying", "--quiet",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "r.parquet.manifest.json").read_text())
    assert manifest["settings"]["seed"] == 42 and manifest["settings"]["paths"] == int(PATHS)
    assert manifest["settings"]["method"] == "auto"
    assert {"numba", "numpy"} <= set(manifest["versions"]) and manifest["mcgreeks"]
    assert set(manifest["inputs"]) == {"trades", "market"}
    assert all(len(v["sha256"]) == 64 for v in manifest["inputs"].values())
    n_trades = len(pd.read_csv(DATA / "trades.csv"))
    assert manifest["rows"] == {"trades": n_trades, "priced": n_trades, "failed": 0}
    assert manifest["started"] <= manifest["finished"]
    assert set(manifest["outputs"]) == {"results", "by_underlying"}
    again = run_cli("reproduce", "r.parquet.manifest.json", "--out", "again.parquet",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "identical" in again.stderr
    assert (tmp_path / "again.parquet").read_bytes() == (tmp_path / "r.parquet").read_bytes()


def test_reproduce_refuses_changed_inputs(tmp_path):
    trades, market = sample()
    trades.to_csv(tmp_path / "t.csv", index=False)
    assert run_cli("price", "t.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--out", "r.csv", "--quiet", cwd=tmp_path).returncode == 0
    trades.assign(quantity="1").to_csv(tmp_path / "t.csv", index=False)
    proc = run_cli("reproduce", "r.csv.manifest.json", "--out", "again.csv", cwd=tmp_path)
    assert proc.returncode == 2 and "changed" in proc.stderr
    assert not (tmp_path / "again.csv").exists()


def test_by_underlying_file_matches_aggregate(tmp_path):
    assert run_cli("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths",
                   PATHS, "--out", "r.csv", "--by", "underlying", "--quiet",
                   cwd=tmp_path).returncode == 0
    written = pd.read_csv(tmp_path / "r.by_underlying.csv", index_col=0)
    trades, market = pd.read_csv(DATA / "trades.csv"), pd.read_csv(DATA / "market.csv")
    expected = aggregate(price_portfolio(trades, market, n_paths=int(PATHS)))
    assert list(written.index) == list(expected.index)
    for column in ("price", "price_se", "delta", "delta_se"):
        np.testing.assert_allclose(written[column], expected[column], rtol=1e-12)


def _run_on_a_terminal(args, cwd):
    """Run the CLI with stdout and stderr on a pseudo-terminal; return what the terminal got."""
    leader, follower = pty.openpty()
    # a terminal has a size (rows, columns); tqdm draws its bar to the width
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "mcgreeks.cli", *map(str, args)], cwd=cwd,
                            stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait()
    os.close(leader)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_logs_otherwise(tmp_path):
    args = ("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
            "--out", "r.csv")
    code, screen = _run_on_a_terminal(args, tmp_path)
    # one step per simulation group: ACME;BOLT (linked by their multi-asset trades) and the
    # other four underlyings
    n = pd.read_csv(DATA / "market.csv")["underlying"].nunique() - 1
    assert code == 0
    assert f"{n}/{n}" in screen and "underlying" in screen          # tqdm's bar
    piped = run_cli(*args, cwd=tmp_path)
    assert f"{n}/{n}" not in piped.stderr and "priced ACME;BOLT (38 trades)" in piped.stderr
    assert all(line.startswith("[") and "s] " in line for line in piped.stderr.splitlines())
    quiet = run_cli(*args, "--quiet", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


def test_workers_give_the_serial_file(tmp_path):
    common = ("price", DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
              "--quiet")
    assert run_cli(*common, "--out", "serial.csv", cwd=tmp_path).returncode == 0
    proc = run_cli(*common, "--out", "dask.csv", "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "serial.csv").read_bytes()
