"""Input checks (docs/reference.md#input-errors) through the public API: every violation raises
``mcgreeks.InputError`` whose one-line message names the trade (or underlying), the column and
the bad value; inputs that are valid but not priced yet are not errors but carry their reason in
the row's ``error`` column."""
import math
import re

import numpy as np
import pandas as pd
import pytest

import mcgreeks
from mcgreeks import InputError, price_portfolio

PATHS = 2000  # validation happens before any path is simulated; keep the priced cases cheap


def _trades(**columns):
    """Two good trades on X (a call and a digital put); ``columns`` overrides/extends columns."""
    base = {"trade_id": ["T1", "T2"], "underlying": ["X", "X"],
            "payoff": ["european", "digital"], "option_type": ["call", "put"],
            "strike": [100.0, 95.0], "maturity": [1.0, 0.5], "quantity": [2.0, -1.0],
            "cash": [np.nan, 10.0]}
    base.update(columns)
    return pd.DataFrame(base)


def _market(**columns):
    """One GBM underlying X and one Heston underlying H; ``columns`` overrides/extends."""
    base = {"underlying": ["X", "H"], "model": ["gbm", "heston"], "spot": [100.0, 50.0],
            "rate": [0.03, 0.02], "div_yield": [0.01, 0.0], "vol": [0.2, np.nan],
            "v0": [np.nan, 0.04], "kappa": [np.nan, 1.5], "vbar": [np.nan, 0.04],
            "xi": [np.nan, 0.5], "corr": [np.nan, -0.7]}
    base.update(columns)
    return pd.DataFrame(base)


def _value_forms(value):
    """Acceptable spellings of a bad value inside a message."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, float) and math.isnan(value):
        return ["nan", "NaN", "empty", "missing"]
    forms = [repr(float(value)), str(value)]
    if float(value) == int(value):
        forms.append(str(int(value)))
    return forms


def _mentions(message, text):
    """``text`` occurs in ``message`` as a whole token (so '0' does not match inside '100')."""
    return re.search(r"(?<![\w.])" + re.escape(text) + r"(?![\w]|\.\d)", message) is not None


def _assert_names(message, *, who, column, value=None):
    assert "\n" not in message.strip(), f"message is not one line: {message!r}"
    assert _mentions(message, who), f"{who!r} not named in {message!r}"
    assert _mentions(message, column), f"column {column!r} not named in {message!r}"
    if value is not None:
        forms = _value_forms(value)
        assert any(_mentions(message, f) for f in forms), \
            f"value {value!r} (as any of {forms}) not named in {message!r}"


def _raises(trades, market, **kwargs):
    with pytest.raises(InputError) as info:
        price_portfolio(trades, market, n_paths=PATHS, **kwargs)
    return str(info.value)


def test_input_error_is_public_and_a_value_error():
    assert issubclass(mcgreeks.InputError, ValueError)
    assert mcgreeks.InputError is InputError


# --- trades table: one bad cell per case (row T2 unless stated) ------------------------------

def _set(column, value, row=1):
    """Trades with ``column`` of row ``row`` replaced by ``value`` (object dtype if needed)."""
    def make():
        t = _trades()
        if column not in t.columns:
            t[column] = np.nan
        if isinstance(value, str) or t[column].dtype.kind not in "fi":
            t[column] = t[column].astype(object)
        t.loc[row, column] = value
        return t
    return make


TRADE_CASES = [
    # id, trades factory, trade named, column, value
    ("unknown payoff", _set("payoff", "chooser"), "T2", "payoff", "chooser"),
    ("unknown option_type", _set("option_type", "straddle"), "T2", "option_type", "straddle"),
    ("empty option_type", _set("option_type", np.nan), "T2", "option_type", float("nan")),
    ("underlying not in market", _set("underlying", "NOPE"), "T2", "underlying", "NOPE"),
    ("strike zero", _set("strike", 0.0), "T2", "strike", 0.0),
    ("strike negative", _set("strike", -12.5), "T2", "strike", -12.5),
    ("strike NaN", _set("strike", np.nan), "T2", "strike", float("nan")),
    ("strike text", _set("strike", "abc"), "T2", "strike", "abc"),
    ("strike infinite", _set("strike", np.inf), "T2", "strike", "inf"),
    ("maturity zero", _set("maturity", 0.0), "T2", "maturity", 0.0),
    ("maturity negative", _set("maturity", -0.25), "T2", "maturity", -0.25),
    ("maturity NaN", _set("maturity", np.nan), "T2", "maturity", float("nan")),
    ("quantity text", _set("quantity", "lots"), "T2", "quantity", "lots"),
    ("digital cash text", _set("cash", "ten"), "T2", "cash", "ten"),
    ("bad first row", _set("strike", -3.0, row=0), "T1", "strike", -3.0),
    ("duplicate trade_id", _set("trade_id", "T1"), "T1", "trade_id", "T1"),
    ("empty trade_id", _set("trade_id", np.nan), "trade_id", "trade_id", float("nan")),
    ("american exercise", _set("exercise", "american"), "T2", "exercise", "american"),
    ("bermudan exercise", _set("exercise", "Bermudan"), "T2", "exercise", "Bermudan"),
    ("unknown exercise", _set("exercise", "asian"), "T2", "exercise", "asian"),
]


@pytest.mark.parametrize("make, who, column, value",
                         [c[1:] for c in TRADE_CASES], ids=[c[0] for c in TRADE_CASES])
def test_bad_trade_cell_raises_naming_trade_column_value(make, who, column, value):
    message = _raises(make(), _market())
    _assert_names(message, who=who, column=column, value=value)


def test_duplicate_trade_id_after_stripping_spaces():
    message = _raises(_trades(trade_id=["T1", " T1 "]), _market())
    _assert_names(message, who="T1", column="trade_id")


def _exotic(payoff, **cells):
    """Trades whose second row is an exotic ``payoff`` with the given cells."""
    base = {"n_fixings": [np.nan, 12], "barrier": [np.nan, 120.0],
            "barrier_type": [None, "up_out"], "monitoring": [None, "discrete"]}
    for column, value in cells.items():
        base[column] = [base[column][0], value]
    t = _trades(payoff=["european", payoff], **{k: pd.Series(v, dtype=object)
                                               for k, v in base.items()})
    return t


EXOTIC_CASES = [
    ("barrier missing", "barrier", {"barrier": np.nan}, "barrier", float("nan")),
    ("barrier zero", "barrier", {"barrier": 0.0}, "barrier", 0.0),
    ("barrier negative", "barrier", {"barrier": -80.0}, "barrier", -80.0),
    ("barrier_type bad", "barrier", {"barrier_type": "sideways"}, "barrier_type", "sideways"),
    ("barrier_type missing", "barrier", {"barrier_type": None}, "barrier_type", float("nan")),
    ("monitoring bad", "barrier", {"monitoring": "hourly"}, "monitoring", "hourly"),
    ("discrete barrier n_fixings missing", "barrier", {"n_fixings": np.nan}, "n_fixings",
     float("nan")),
    ("asian n_fixings zero", "asian_arithmetic", {"n_fixings": 0}, "n_fixings", 0),
    ("asian n_fixings fractional", "asian_geometric", {"n_fixings": 2.5}, "n_fixings", 2.5),
    ("asian n_fixings negative", "asian_arithmetic", {"n_fixings": -4}, "n_fixings", -4),
    ("asian n_fixings missing", "asian_geometric", {"n_fixings": np.nan}, "n_fixings",
     float("nan")),
    ("asian n_fixings text", "asian_arithmetic", {"n_fixings": "monthly"}, "n_fixings",
     "monthly"),
    ("lookback n_fixings missing", "lookback", {"n_fixings": np.nan}, "n_fixings",
     float("nan")),
    ("lookback n_fixings fractional", "lookback", {"n_fixings": 0.5}, "n_fixings", 0.5),
]


@pytest.mark.parametrize("payoff, cells, column, value",
                         [c[1:] for c in EXOTIC_CASES], ids=[c[0] for c in EXOTIC_CASES])
def test_bad_exotic_cell_raises_naming_trade_column_value(payoff, cells, column, value):
    message = _raises(_exotic(payoff, **cells), _market())
    _assert_names(message, who="T2", column=column, value=value)


@pytest.mark.parametrize("column", ["trade_id", "underlying", "payoff", "option_type", "strike",
                                    "maturity"])
def test_missing_required_trade_column(column):
    message = _raises(_trades().drop(columns=column), _market())
    _assert_names(message, who="trades", column=column)


@pytest.mark.parametrize("column", ["quantity", "cash"])
def test_optional_trade_columns_may_be_absent(column):
    result = price_portfolio(_trades().drop(columns=column), _market(), n_paths=PATHS)
    assert list(result.index) == ["T1", "T2"]
    assert (result["error"] == "").all()


# --- market table ------------------------------------------------------------------------------

def _mset(column, value, row):
    def make():
        m = _market()
        if isinstance(value, str) or m[column].dtype.kind not in "fi":
            m[column] = m[column].astype(object)
        m.loc[row, column] = value
        return m
    return make


MARKET_CASES = [
    # id, market factory, underlying named, column, value
    ("unknown model", _mset("model", "sabr", 0), "X", "model", "sabr"),
    ("spot zero", _mset("spot", 0.0, 0), "X", "spot", 0.0),
    ("spot negative", _mset("spot", -7.5, 0), "X", "spot", -7.5),
    ("spot text", _mset("spot", "high", 0), "X", "spot", "high"),
    ("rate NaN", _mset("rate", np.nan, 0), "X", "rate", float("nan")),
    ("gbm vol missing", _mset("vol", np.nan, 0), "X", "vol", float("nan")),
    ("gbm vol zero", _mset("vol", 0.0, 0), "X", "vol", 0.0),
    ("gbm vol negative", _mset("vol", -0.2, 0), "X", "vol", -0.2),
    ("heston corr above 1", _mset("corr", 1.5, 1), "H", "corr", 1.5),
    ("heston corr below -1", _mset("corr", -1.2, 1), "H", "corr", -1.2),
    ("heston corr missing", _mset("corr", np.nan, 1), "H", "corr", float("nan")),
    ("heston v0 negative", _mset("v0", -0.01, 1), "H", "v0", -0.01),
    ("heston kappa zero", _mset("kappa", 0.0, 1), "H", "kappa", 0.0),
    ("heston vbar negative", _mset("vbar", -0.04, 1), "H", "vbar", -0.04),
    ("heston xi zero", _mset("xi", 0.0, 1), "H", "xi", 0.0),
    ("duplicate underlying", _mset("underlying", "X", 1), "X", "underlying", "X"),
]


@pytest.mark.parametrize("make, who, column, value",
                         [c[1:] for c in MARKET_CASES], ids=[c[0] for c in MARKET_CASES])
def test_bad_market_cell_raises_naming_underlying_column_value(make, who, column, value):
    message = _raises(_trades(), make())
    _assert_names(message, who=who, column=column, value=value)


def test_gbm_market_without_vol_column():
    market = _market().drop(columns="vol")
    message = _raises(_trades(), market)
    _assert_names(message, who="X", column="vol")


@pytest.mark.parametrize("corr", [-1.0, 1.0])
def test_heston_corr_bounds_are_inclusive(corr):
    market = _market(corr=[np.nan, corr])
    price_portfolio(_trades(), market, n_paths=PATHS)  # no error


@pytest.mark.parametrize("column", ["underlying", "model", "spot", "rate"])
def test_missing_required_market_column(column):
    message = _raises(_trades(), _market().drop(columns=column))
    _assert_names(message, who="market", column=column)


def test_market_without_heston_columns_is_fine_for_gbm_only():
    market = _market().iloc[:1][["underlying", "model", "spot", "rate", "vol"]]
    result = price_portfolio(_trades(), market, n_paths=PATHS)
    assert (result["error"] == "").all()


# --- arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method, names", [
    ("bogus", ["bogus"]),
    ("", ["method"]),
    ({"gamma": "bogus"}, ["gamma", "bogus"]),
    ({"vgea": "lr"}, ["vgea"]),
    ({"price": "lr"}, ["price"]),
], ids=["unknown name", "empty name", "unknown estimator for a greek", "unknown greek",
        "price is not a greek"])
def test_invalid_method_names(method, names):
    message = _raises(_trades(), _market(), method=method)
    assert "method" in message
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


def test_a_heston_greek_choice_binds_heston_trades_only():
    """{"d_v0": "lr"} is moot for GBM trades (no d_v0) and an error for a Heston trade, where
    likelihood ratio covers delta, gamma and rho only."""
    assert (price_portfolio(_trades(), _market(), n_paths=PATHS,
                            method={"d_v0": "lr"})["error"] == "").all()
    heston = _trades(underlying=["H", "H"], payoff=["european", "european"])
    message = _raises(heston, _market(), method={"d_v0": "lr"})
    assert "T1" in message and "d_v0" in message and "lr" in message


@pytest.mark.parametrize("method, trades, who, greek", [
    ("pathwise", _trades(), "T2", "delta"),              # T2 is a digital
    ({"delta": "pathwise"}, _trades(), "T2", "delta"),
    ({"vega": "pathwise"}, _trades(), "T2", "vega"),
    ({"gamma": "pathwise"}, _trades(payoff=["european", "european"]), "T1", "gamma"),
    ({"gamma": "mixed"}, _trades(), "T2", "gamma"),   # mixed starts pathwise: not for digitals
    ({"delta": "mixed"}, _trades(), "T1", "delta"),   # mixed is gamma only
], ids=["pathwise on digital", "pathwise delta on digital", "pathwise vega on digital",
        "pathwise gamma of call", "mixed gamma of digital", "mixed delta"])
def test_explicitly_invalid_estimator_names_the_trade(method, trades, who, greek):
    # where both trades are invalid for the method, both are reported, one line each
    lines = _raises(trades, _market(), method=method).split("\n")
    message = next(line for line in lines if f"'{who}'" in line)
    _assert_names(message, who=who, column="method")
    assert greek in message
    name = method if isinstance(method, str) else next(iter(method.values()))
    assert name in message


def test_explicit_valid_methods_are_used():
    result = price_portfolio(_trades(), _market(), n_paths=PATHS,
                             method={"delta": "lr", "gamma": "fd"})
    assert (result["method_delta"] == "lr").all()
    assert (result["method_gamma"] == "fd").all()
    assert (result["error"] == "").all()


@pytest.mark.parametrize("n_paths", [1, 0, -100, 2.5, True])
def test_n_paths_below_two_or_not_whole(n_paths):
    with pytest.raises(InputError) as info:
        price_portfolio(_trades(), _market(), n_paths=n_paths)
    assert "n_paths" in str(info.value) and _mentions(str(info.value), repr(n_paths))


@pytest.mark.parametrize("steps", [0, -12.0, float("nan")])
def test_steps_per_year_not_positive(steps):
    message = _raises(_trades(), _market(), steps_per_year=steps)
    assert "steps_per_year" in message


@pytest.mark.parametrize("seed", [-1, 1.5, 2 ** 64])
def test_bad_seed_is_an_input_error(seed):
    with pytest.raises(InputError) as info:
        price_portfolio(_trades(), _market(), n_paths=PATHS, seed=seed)
    assert "seed" in str(info.value) and repr(seed) in str(info.value)


# --- every payoff under both models, in one table ---------------------------------------------

def test_gbm_and_heston_rows_of_every_payoff_are_priced_together():
    trades = pd.DataFrame({
        "trade_id": ["EU", "AS", "AG", "BA", "BC", "HE", "DG"],
        "underlying": ["X", "X", "X", "X", "X", "H", "X"],
        "payoff": ["european", "asian_arithmetic", "asian_geometric", "barrier", "barrier",
                   "european", "digital"],
        "option_type": ["call", "put", "call", "call", "put", "call", "call"],
        "strike": [100.0, 95.0, 100.0, 100.0, 90.0, 50.0, 105.0],
        "maturity": [1.0, 1.0, 0.5, 1.0, 2.0, 1.0, 1.0],
        "quantity": [1.0, 2.0, 1.0, -1.0, 1.0, 3.0, 5.0],
        "cash": [np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 10.0],
        "barrier": [np.nan, np.nan, np.nan, 130.0, 80.0, np.nan, np.nan],
        "barrier_type": [None, None, None, "up_out", "down_in", None, None],
        "monitoring": [None, None, None, "discrete", "continuous", None, None],
        "n_fixings": [np.nan, 12, 4, 52, np.nan, np.nan, np.nan],
    })
    result = price_portfolio(trades, _market(), n_paths=PATHS)
    assert list(result.index) == list(trades["trade_id"])
    assert (result["error"] == "").all()
    heston = ("price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
              "d_corr")
    for q in heston:
        assert np.isfinite(result.loc["HE", q]) and np.isfinite(result.loc["HE", q + "_se"])
    assert np.isnan(result.loc["HE", "vega"])
    for tid in ("EU", "AS", "AG", "BA", "BC", "DG"):
        for q in ("price", "delta", "gamma", "vega", "rho", "theta"):
            assert np.isfinite(result.loc[tid, q]) and np.isfinite(result.loc[tid, q + "_se"])
        assert result.loc[[tid], list(heston[5:])].isna().all().all()
    # underlyings are independent: the GBM rows are the same numbers without the Heston one
    alone = price_portfolio(trades.drop(index=5), _market(), n_paths=PATHS)
    numbers = alone.select_dtypes("number").columns
    np.testing.assert_array_equal(result.drop(index="HE")[numbers].to_numpy(float),
                                  alone[numbers].to_numpy(float))


def test_heston_only_market_row_is_not_an_error_when_unused():
    result = price_portfolio(_trades(), _market(), n_paths=PATHS)
    assert (result["error"] == "").all()
    assert list(result.index) == ["T1", "T2"]


# --- with on_error="fail", every problem is reported, not just the first -----------------------

def _many_trades(n):
    """``n`` good European calls on X, T1..Tn."""
    return pd.DataFrame({"trade_id": [f"T{i + 1}" for i in range(n)], "underlying": "X",
                         "payoff": "european", "option_type": "call", "strike": 100.0,
                         "maturity": 1.0}).astype({"strike": object, "payoff": object})


def test_every_bad_row_is_reported_one_line_each():
    trades = _many_trades(6)
    trades.loc[0, "payoff"] = "chooser"      # T1
    trades.loc[3, "strike"] = -5.0            # T4
    trades.loc[5, "underlying"] = "NOPE"      # T6
    lines = _raises(trades, _market()).split("\n")
    assert lines[0] == "3 problems in the trades table:"
    assert len(lines) == 4
    for line, (who, column, value) in zip(lines[1:], [("T1", "payoff", "chooser"),
                                                     ("T4", "strike", -5.0),
                                                     ("T6", "underlying", "NOPE")]):
        _assert_names(line, who=who, column=column, value=value)


def test_a_row_with_two_problems_is_counted_once_as_a_row():
    trades = _many_trades(3)
    trades.loc[1, "strike"] = "abc"
    trades.loc[1, "maturity"] = 0.0
    trades.loc[2, "payoff"] = "chooser"
    lines = _raises(trades, _market()).split("\n")
    assert lines[0] == "3 problems in the trades table (2 rows):"
    _assert_names(lines[1], who="T2", column="strike", value="abc")
    _assert_names(lines[2], who="T2", column="maturity", value=0.0)
    _assert_names(lines[3], who="T3", column="payoff", value="chooser")


def test_more_problems_than_the_limit_are_counted():
    from mcgreeks.validation import REPORT_LIMIT
    n = REPORT_LIMIT + 7
    trades = _many_trades(n)
    trades["strike"] = [-float(i + 1) for i in range(n)]
    lines = _raises(trades, _market()).split("\n")
    assert lines[0] == f"{n} problems in the trades table:"
    assert len(lines) == 1 + REPORT_LIMIT + 1
    for i, line in enumerate(lines[1:-1]):
        _assert_names(line, who=f"T{i + 1}", column="strike", value=-float(i + 1))
    assert lines[-1].strip() == "... and 7 more"


def test_every_bad_market_row_is_reported():
    market = _market(vol=[0.0, np.nan], corr=[np.nan, 1.5])
    lines = _raises(_trades(), market).split("\n")
    assert lines[0] == "2 problems in the market table:"
    _assert_names(lines[1], who="X", column="vol", value=0.0)
    _assert_names(lines[2], who="H", column="corr", value=1.5)


def test_an_invalid_method_is_listed_with_the_cell_problems():
    """A method invalid for a trade's payoff is one more problem of that row's, in row order."""
    trades = _trades()
    trades.loc[0, "strike"] = -1.0
    lines = _raises(trades, _market(), method="pathwise").split("\n")
    assert lines[0] == "2 problems in the trades table:"
    _assert_names(lines[1], who="T1", column="strike", value=-1.0)
    assert "T2" in lines[2] and "pathwise" in lines[2] and "digital" in lines[2]


def test_skip_still_gives_each_bad_row_its_reasons():
    trades = _many_trades(3)
    trades.loc[1, "strike"] = "abc"
    trades.loc[1, "maturity"] = 0.0
    result = price_portfolio(trades, _market(), n_paths=PATHS, on_error="skip")
    assert "strike" in result.loc["T2", "error"] and "maturity" in result.loc["T2", "error"]
    assert (result.loc[["T1", "T3"], "error"] == "").all()


def test_european_exercise_is_accepted():
    """The exercise column may say european (or be empty): priced as before."""
    trades = _trades()
    trades["exercise"] = ["european"] + [None] * (len(trades) - 1)
    from mcgreeks.validation import check_market, check_trades
    records, problems = check_trades(trades, check_market(_market())[0])
    assert all(r is not None for r in records) and not any(problems)
