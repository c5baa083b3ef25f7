"""The command line (docs/reference.md#command-line), run as a real subprocess: CSV and Parquet
in and out, results identical to ``price_portfolio`` in-process, and bad input reported as one
line with exit 2 and no output file (a pre-existing one is left untouched; no temporary file is
left behind)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mcgreeks import greeks as G
from mcgreeks import price_portfolio

DATA = Path(__file__).resolve().parents[1] / "data"
PATHS = 2000
SEED = 7
TEXT_OUT = ["error", "warning"] + ["method_" + g for g in G.GREEKS]


def run_cli(*args, cwd):
    """Run ``python -m mcgreeks.cli price ARGS`` in ``cwd``; CompletedProcess with text output."""
    return subprocess.run([sys.executable, "-m", "mcgreeks.cli", "price", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def sample_tables():
    """The sample trades and market as read by a user (text ids stay text)."""
    return pd.read_csv(DATA / "trades.csv"), pd.read_csv(DATA / "market.csv")


def sample_text():
    """The sample tables with every cell as text, for editing one cell and writing CSV back."""
    read = dict(dtype=str, keep_default_na=False)
    return pd.read_csv(DATA / "trades.csv", **read), pd.read_csv(DATA / "market.csv", **read)


def read_csv_out(path):
    """A CSV output read back exactly: every cell as text, numbers converted by Python's float
    (correctly rounded, so a repr-precision file gives back the same bits)."""
    back = pd.read_csv(path, index_col="trade_id", dtype=str, keep_default_na=False)
    for c in back.columns:
        if c not in TEXT_OUT:
            back[c] = np.array([float(x) if x != "" else np.nan for x in back[c]], dtype=np.float64)
    return back


def assert_same_results(back, expected, *, exact_frame=False):
    assert list(back.index) == list(expected.index)
    assert back.index.name == expected.index.name == "trade_id"
    assert list(back.columns) == list(expected.columns)
    for c in expected.columns:
        if c in TEXT_OUT:
            assert list(back[c]) == list(expected[c]), c
        else:
            assert back[c].dtype == np.float64, c
            np.testing.assert_array_equal(back[c].to_numpy(), expected[c].to_numpy(float),
                                          err_msg=c)
    if exact_frame:
        pd.testing.assert_frame_equal(back, expected, check_exact=True, check_dtype=False,
                                      check_index_type=False)


def listing(directory):
    """Every entry of ``directory``, hidden ones included (temporary files start with '.')."""
    return sorted(os.listdir(directory))


@pytest.fixture(scope="module")
def expected():
    """In-process results for the sample with the arguments the CLI runs use."""
    trades, market = sample_tables()
    return price_portfolio(trades, market, n_paths=PATHS, seed=SEED)


# --- successful runs ---------------------------------------------------------------------------

def test_sample_prints_every_trade(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    for tid in pd.read_csv(DATA / "trades.csv", dtype=str)["trade_id"]:
        assert tid in proc.stdout
    assert "±" in proc.stdout
    assert listing(tmp_path) == []   # no --out: nothing written


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_out_file_matches_price_portfolio(tmp_path, expected, suffix):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"results.{suffix}"
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--seed", SEED, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    # the file and its audit manifest, and no temporary file beside them
    assert listing(out_dir) == [out.name, out.name + ".manifest.json"]
    if suffix == "parquet":
        assert_same_results(pd.read_parquet(out), expected, exact_frame=True)
    else:
        assert_same_results(read_csv_out(out), expected)


@pytest.mark.parametrize("trades_fmt, market_fmt", [("parquet", "parquet"), ("parquet", "csv"),
                                                    ("csv", "parquet")])
def test_parquet_input(tmp_path, expected, trades_fmt, market_fmt):
    trades, market = sample_tables()
    paths = {}
    for name, table, fmt in (("trades", trades, trades_fmt), ("market", market, market_fmt)):
        paths[name] = tmp_path / f"{name}.{fmt}"
        if fmt == "parquet":
            table.to_parquet(paths[name], index=False)
        else:
            table.to_csv(paths[name], index=False)
    out = tmp_path / "results.parquet"
    proc = run_cli(paths["trades"], "--market", paths["market"], "--paths", PATHS,
                   "--seed", SEED, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_same_results(pd.read_parquet(out), expected, exact_frame=True)


def test_per_greek_method(tmp_path):
    out = tmp_path / "m.csv"
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--method", "delta=lr,gamma=fd", "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    back = read_csv_out(out)
    trades, market = sample_tables()
    # a multi-asset trade's per-name deltas and gammas are in the risk table, not these columns
    single = trades.set_index("trade_id")["underlying"].str.contains(";") == False  # noqa: E712
    assert (back.loc[single, "method_delta"] == "lr").all()
    assert (back.loc[single, "method_gamma"] == "fd").all()
    assert (back.loc[~single, "method_delta"] == "").all()
    same = price_portfolio(trades, market, n_paths=PATHS, method={"delta": "lr", "gamma": "fd"})
    assert_same_results(back, same)
    assert listing(tmp_path) == ["m.csv", "m.csv.manifest.json"]


def test_heston_underlying_is_priced_from_files(tmp_path):
    """A Heston market row and its trade, beside the GBM sample, from CSV files."""
    trades, market = sample_text()
    heston = {c: "" for c in market.columns}
    heston.update(underlying="HEST", model="heston", spot="100", rate="0.02", v0="0.04",
                  kappa="1.5", vbar="0.04", xi="0.5", corr="-0.7")
    market = pd.concat([market, pd.DataFrame([heston])], ignore_index=True).fillna("")
    row = {c: "" for c in trades.columns}
    row.update(trade_id="H001", underlying="HEST", payoff="european", option_type="call",
               strike="100", maturity="1.0", quantity="2")
    trades = pd.concat([trades, pd.DataFrame([row])], ignore_index=True).fillna("")
    trades.to_csv(tmp_path / "trades.csv", index=False)
    market.to_csv(tmp_path / "market.csv", index=False)
    out = tmp_path / "results.csv"
    proc = run_cli("trades.csv", "--market", "market.csv", "--paths", PATHS,
                   "--steps-per-year", "24", "--out", out.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    back = read_csv_out(out)
    assert list(back.index) == list(trades["trade_id"])
    assert np.isfinite(back.loc["H001", ["price", "delta", "d_v0", "d_corr"]].astype(float)).all()
    assert np.isnan(back.loc["H001", "vega"])
    assert (back["error"] == "").all()

# --- bad input: exit 2, one line, no traceback, no output file ---------------------------------

def _edit_trades(row, column, value):
    def edit(trades, market):
        trades.loc[row, column] = value
    return edit


def _drop(table_name, column):
    def edit(trades, market):
        table = trades if table_name == "trades" else market
        del table[column]
    return edit


def _duplicate_id(trades, market):
    trades.loc[4, "trade_id"] = trades.loc[2, "trade_id"]   # T005 becomes a second T003


def _heston_corr(trades, market):
    for c in ("v0", "kappa", "vbar", "xi", "corr"):
        if c not in market:
            market[c] = ""
    market.loc[len(market)] = {"underlying": "HEST", "model": "heston", "spot": "100",
                               "rate": "0.01", "div_yield": "0", "vol": "", "v0": "0.04",
                               "kappa": "1.5", "vbar": "0.04", "xi": "0.5", "corr": "1.5"}


def _edit_market(row, column, value):
    def edit(trades, market):
        market.loc[row, column] = value
    return edit


BAD_INPUTS = [
    # id, edit of the text tables, extra args, words the message must contain
    ("unknown payoff", _edit_trades(4, "payoff", "chooser"), [], ["T005", "payoff", "chooser"]),
    ("unknown option_type", _edit_trades(0, "option_type", "cal"), [],
     ["T001", "option_type", "cal"]),
    ("negative strike", _edit_trades(6, "strike", "-5"), [], ["T007", "strike", "-5"]),
    ("zero maturity", _edit_trades(1, "maturity", "0"), [], ["T002", "maturity", "0"]),
    ("NaN strike", _edit_trades(2, "strike", "NaN"), [], ["T003", "strike", "NaN"]),
    ("text strike", _edit_trades(3, "strike", "abc"), [], ["T004", "strike", "abc"]),
    ("unknown underlying", _edit_trades(5, "underlying", "ZZZZ"), [],
     ["T006", "underlying", "ZZZZ"]),
    ("duplicate trade_id", _duplicate_id, [], ["T003", "trade_id"]),
    ("empty strike", _edit_trades(7, "strike", ""), [], ["T008", "strike"]),
    ("missing trades column", _drop("trades", "maturity"), [], ["trades", "maturity"]),
    ("missing market column", _drop("market", "spot"), [], ["market", "spot"]),
    ("zero vol", _edit_market(1, "vol", "0"), [], ["BOLT", "vol", "0"]),
    ("negative spot", _edit_market(2, "spot", "-1850"), [], ["CRUX", "spot", "-1850"]),
    ("heston corr 1.5", _heston_corr, [], ["HEST", "corr", "1.5"]),
    ("unknown method", None, ["--method", "bogus"], ["method", "bogus"]),
    ("one path", None, ["--paths", "1"], ["paths", "1"]),
]


@pytest.mark.parametrize("suffix, preexisting", [("csv", False), ("parquet", True)],
                         ids=["new-csv-out", "old-parquet-out"])
@pytest.mark.parametrize("edit, extra, words", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, edit, extra, words,
                                                       preexisting, suffix):
    trades, market = sample_text()
    if edit is not None:
        edit(trades, market)
    trades.to_csv(tmp_path / "trades.csv", index=False)
    market.to_csv(tmp_path / "market.csv", index=False)
    out = tmp_path / f"results.{suffix}"
    old = b"an earlier night's results\n"
    if preexisting:
        out.write_bytes(old)
    before = listing(tmp_path)

    args = ["trades.csv", "--market", "market.csv", "--out", out.name] + extra
    if "--paths" not in extra:
        args += ["--paths", PATHS]
    proc = run_cli(*args, cwd=tmp_path)

    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mcgreeks: error:"), lines[0]
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    if preexisting:
        assert out.read_bytes() == old
    else:
        assert not out.exists()
    assert listing(tmp_path) == before   # no temporary file left behind


@pytest.mark.parametrize("missing", ["trades", "market"])
def test_missing_input_file(tmp_path, missing):
    trades = DATA / "trades.csv" if missing != "trades" else tmp_path / "nope_trades.csv"
    market = DATA / "market.csv" if missing != "market" else tmp_path / "nope_market.csv"
    proc = run_cli(trades, "--market", market, "--paths", PATHS, "--out", "x.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert f"nope_{missing}.csv" in lines[0]
    assert listing(tmp_path) == []


def test_unreadable_parquet_input(tmp_path):
    (tmp_path / "trades.parquet").write_text("this is not parquet\n")
    proc = run_cli("trades.parquet", "--market", DATA / "market.csv", "--paths", PATHS,
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert "trades.parquet" in lines[0]


def test_out_with_unknown_suffix(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--out", "foo.txt", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert "foo.txt" in lines[0]
    assert listing(tmp_path) == []


def test_negative_seed_is_bad_input(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--seed", "-1", "--out", "x.csv", cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert "seed" in lines[0] and "-1" in lines[0]
    assert listing(tmp_path) == []


def test_out_into_missing_directory_is_bad_input(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--out", tmp_path / "no_such_dir" / "x.csv", cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert "no_such_dir" in lines[0]
    assert listing(tmp_path) == []


# --- several bad rows: all reported (up to a limit), one line each ----------------------------

def test_every_bad_row_is_reported(tmp_path):
    trades, market = sample_text()
    trades.loc[0, "payoff"] = "chooser"             # T001
    trades.loc[3, "strike"] = "-5"                   # T004
    trades.loc[40, "maturity"] = "0"                 # T041
    trades.to_csv(tmp_path / "trades.csv", index=False)
    proc = run_cli("trades.csv", "--market", DATA / "market.csv", "--paths", PATHS, "--out",
                   "r.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "mcgreeks: error: 3 problems in the trades table:", proc.stderr
    assert len(lines) == 4, proc.stderr
    for line, words in zip(lines[1:], [("'T001'", "payoff", "chooser"),
                                       ("'T004'", "strike", "-5"),
                                       ("'T041'", "maturity", "0")]):
        assert all(w in line for w in words), (words, line)
    assert listing(tmp_path) == ["trades.csv"]


def test_a_method_invalid_for_many_trades_lists_them_up_to_the_limit(tmp_path):
    """--method pathwise is invalid for every digital and discretely monitored barrier of the
    sample: the first 20 are listed in input order and the rest counted."""
    from mcgreeks.validation import REPORT_LIMIT
    trades, market = sample_tables()
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--method", "pathwise", "--out", "r.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    jumps = (trades["payoff"] == "digital") | ((trades["payoff"] == "barrier") & (
        trades["monitoring"] == "discrete"))
    bad = list(trades.loc[jumps, "trade_id"])
    assert len(bad) > REPORT_LIMIT
    lines = proc.stderr.splitlines()
    assert lines[0] == f"mcgreeks: error: {len(bad)} problems in the trades table:"
    assert len(lines) == 1 + REPORT_LIMIT + 1
    for line, tid in zip(lines[1:-1], bad):
        assert f"trade '{tid}'" in line and "method" in line and "pathwise" in line, line
    assert lines[-1].strip() == f"... and {len(bad) - REPORT_LIMIT} more"
    assert listing(tmp_path) == []


# --- --greeks and --risk-out -------------------------------------------------------------------

def read_risk_csv(path):
    """The long risk table read back: text columns as text, numbers by Python's float."""
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in ("value", "se"):
        back[c] = np.array([float(x) if x != "" else np.nan for x in back[c]], dtype=np.float64)
    return back


@pytest.mark.parametrize("greeks", ["none", "delta,vega,d_xi", "all"])
def test_greeks_flag_matches_price_portfolio(tmp_path, greeks):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--seed", SEED, "--greeks", greeks, "--out", "r.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trades, market = sample_tables()
    same = price_portfolio(trades, market, n_paths=PATHS, seed=SEED, greeks=greeks)
    back = read_csv_out(tmp_path / "r.csv")
    assert_same_results(back, same)
    if greeks == "none":
        assert not any(c in back for g in G.GREEKS for c in (g, g + "_se", "method_" + g))
    elif greeks != "all":
        assert {c for c in back if c in G.QUANTITIES} == {"price", "delta", "vega", "d_xi"}
    import json
    manifest = json.loads((tmp_path / "r.csv.manifest.json").read_text())
    assert manifest["settings"]["greeks"] == greeks


def test_bad_greek_name_is_one_line_listing_the_valid_ones(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--greeks", "delta,vanna", "--out", "r.csv", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcgreeks: error:"), proc.stderr
    assert "vanna" in lines[0]
    for name in G.GREEKS:
        assert name in lines[0], name
    assert listing(tmp_path) == []


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_risk_out_is_the_long_table_of_price_portfolio(tmp_path, suffix):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--seed", SEED, "--greeks", "delta,d_v0", "--out", "r.csv", "--by",
                   "underlying", "--risk-out", f"risk.{suffix}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert listing(tmp_path) == sorted(["r.csv", "r.by_underlying.csv", "r.csv.manifest.json",
                                        f"risk.{suffix}"])
    trades, market = sample_tables()
    _, risk = price_portfolio(trades, market, n_paths=PATHS, seed=SEED, greeks="delta,d_v0",
                              risk=True)
    back = (pd.read_parquet(tmp_path / f"risk.{suffix}") if suffix == "parquet"
            else read_risk_csv(tmp_path / f"risk.{suffix}"))
    assert list(back.columns) == ["trade_id", "measure", "underlying", "underlying_2", "value",
                                  "se", "method"]
    assert len(back) == len(risk)
    for c in ("trade_id", "measure", "underlying", "underlying_2", "method"):
        assert list(back[c]) == list(risk[c]), c
    for c in ("value", "se"):
        np.testing.assert_array_equal(back[c].to_numpy(float), risk[c].to_numpy(float))
    assert set(back["measure"]) == {"price", "delta", "d_v0"}
    import json
    manifest = json.loads((tmp_path / "r.csv.manifest.json").read_text())
    assert set(manifest["outputs"]) == {"results", "by_underlying", "risk"}
    assert manifest["settings"]["risk_out"] == f"risk.{suffix}"


def test_risk_out_alone_and_reproduce_reruns_it(tmp_path):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--greeks", "gamma", "--risk-out", "alone.csv", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert listing(tmp_path) == ["alone.csv"]           # no --out: no manifest
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--greeks", "gamma", "--risk-out", "risk.parquet", "--out", "r.csv",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    again = subprocess.run([sys.executable, "-m", "mcgreeks.cli", "reproduce",
                            "r.csv.manifest.json", "--out", "again.csv"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.risk.parquet").read_bytes() == \
        (tmp_path / "risk.parquet").read_bytes()
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "r.csv").read_bytes()
    assert "identical to the original risk" in again.stderr
    assert "gamma" in read_csv_out(tmp_path / "again.csv")
    assert "delta" not in read_csv_out(tmp_path / "again.csv")


@pytest.mark.parametrize("risk_out, words", [("r.csv", "one of --out's files"),
                                              ("r.csv.manifest.json", "must end in"),
                                              ("risk.txt", "must end in"),
                                              ("nowhere/risk.csv", "folder does not exist")])
def test_bad_risk_out_is_usage_error(tmp_path, risk_out, words):
    proc = run_cli(DATA / "trades.csv", "--market", DATA / "market.csv", "--paths", PATHS,
                   "--out", "r.csv", "--risk-out", risk_out, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "--risk-out" in lines[0] and words in lines[0], proc.stderr
    assert listing(tmp_path) == []


def test_upper_bound_flag_adds_the_dual_bound_of_exercisable_trades(tmp_path):
    """--upper-bound: the Bermudan and American rows get the dual bound and its gap, the same
    numbers as price_portfolio(upper_bound=True); a European row leaves them empty."""
    trades = pd.DataFrame([
        dict(trade_id="am", underlying="X", payoff="european", option_type="put", strike=40.0,
             maturity=0.5, exercise="american", n_exercise=""),
        dict(trade_id="be", underlying="X", payoff="european", option_type="call", strike=36.0,
             maturity=1.0, exercise="bermudan", n_exercise=4),
        dict(trade_id="eu", underlying="X", payoff="european", option_type="put", strike=40.0,
             maturity=0.5, exercise="", n_exercise="")])
    market = pd.DataFrame([dict(underlying="X", model="gbm", spot=36.0, rate=0.06,
                                div_yield=0.04, vol=0.2)])
    trades.to_csv(tmp_path / "t.csv", index=False)
    market.to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "o.csv"
    proc = run_cli("t.csv", "--market", "m.csv", "--paths", 40_000, "--greeks", "delta",
                   "--upper-bound", "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    back = read_csv_out(out)
    same = price_portfolio(pd.read_csv(tmp_path / "t.csv"), market, n_paths=40_000,
                           greeks="delta", upper_bound=True)
    assert_same_results(back, same)
    assert back.loc[["am", "be"], "upper_bound"].notna().all()
    assert back.loc["eu", ["upper_bound", "duality_gap"]].isna().all()
    gap = back.loc[["am", "be"], "duality_gap"]
    assert (gap > -4 * back.loc[["am", "be"], "duality_gap_se"]).all()
