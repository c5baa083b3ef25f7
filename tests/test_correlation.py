"""``mcgreeks.correlation``: the correlations table's checks (every problem one line naming the
row, the column and the value), simulation groups, the Cholesky factor (L L^T against the
matrix, semidefinite matrices, the error for an indefinite one, the same bits twice) and its
derivative against central differences, and the cells of multi-asset trades."""
import math
import re

import numpy as np
import pandas as pd
import pytest

from mcgreeks import InputError
from mcgreeks import correlation as C
from mcgreeks.validation import REPORT_LIMIT, _Row, check_market


def _market(**columns):
    """GBM underlyings SPX, SX5E, NKY (NKY at another rate) and Heston H; overrides by column."""
    base = {"underlying": ["SPX", "SX5E", "NKY", "H"], "model": ["gbm", "gbm", "gbm", "heston"],
            "spot": [100.0, 50.0, 30.0, 80.0], "rate": [0.03, 0.03, 0.001, 0.03],
            "div_yield": [0.01, 0.02, 0.0, 0.0], "vol": [0.2, 0.25, 0.3, np.nan],
            "v0": [np.nan, np.nan, np.nan, 0.04], "kappa": [np.nan, np.nan, np.nan, 1.5],
            "vbar": [np.nan, np.nan, np.nan, 0.04], "xi": [np.nan, np.nan, np.nan, 0.5],
            "corr": [np.nan, np.nan, np.nan, -0.7]}
    base.update(columns)
    params, bad, problems = check_market(pd.DataFrame(base))
    return params, bad


MARKET, _ = _market()


def _table(rows):
    return pd.DataFrame(rows, columns=list(C.CORRELATION_COLUMNS)).astype(object)


GOOD = [("SPX", "SX5E", 0.6), ("SX5E", "H", -0.2)]


def _mentions(message, text):
    """``text`` occurs in ``message`` as a whole token (so '0' does not match inside '100')."""
    return re.search(r"(?<![\w.])" + re.escape(text) + r"(?![\w]|\.\d)", message) is not None


def _assert_line(message, *, who, column, value):
    assert "\n" not in message.strip(), f"message is not one line: {message!r}"
    for text in (who, f"'{column}'", value):
        assert _mentions(message, text), f"{text!r} not named in {message!r}"


# --- the correlations table ---------------------------------------------------------------------

def test_good_table_gives_clean_pairs_in_row_order():
    table = _table([(" SPX ", "SX5E", "0.6"), ("SX5E", " H", -0.2), ("NKY", "SPX", 0)])
    assert C.check_correlations(table, MARKET) == [("SPX", "SX5E", 0.6), ("SX5E", "H", -0.2),
                                                   ("NKY", "SPX", 0.0)]


def test_bounds_are_inclusive_and_no_table_means_no_pairs():
    table = _table([("SPX", "SX5E", 1.0), ("SPX", "NKY", -1.0)])
    assert [p[2] for p in C.check_correlations(table, MARKET)] == [1.0, -1.0]
    assert C.check_correlations(None, MARKET) == []
    assert C.check_correlations(_table([]), MARKET) == []


CORR_CASES = [
    # id, bad row (placed as row 2 after a good row), column, value as it appears
    ("unknown name 1", ("NOPE", "SPX", 0.1), "underlying_1", "'NOPE'"),
    ("unknown name 2", ("SPX", "FOO", 0.1), "underlying_2", "'FOO'"),
    ("empty name", ("SPX", np.nan, 0.1), "underlying_2", "empty"),
    ("same name twice", ("NKY", " NKY", 0.1), "underlying_2", "' NKY'"),
    ("corr above 1", ("SPX", "NKY", 1.5), "corr", "1.5"),
    ("corr below -1", ("SPX", "NKY", -1.01), "corr", "-1.01"),
    ("corr NaN", ("SPX", "NKY", np.nan), "corr", "empty"),
    ("corr text", ("SPX", "NKY", "high"), "corr", "'high'"),
    ("corr infinite", ("SPX", "NKY", np.inf), "corr", "inf"),
    ("pair twice", ("SPX", "SX5E", 0.6), "underlying_2", "'SX5E'"),
    ("pair twice reversed", ("SX5E", "SPX", 0.5), "underlying_2", "'SPX'"),
]


@pytest.mark.parametrize("bad, column, value", [c[1:] for c in CORR_CASES],
                         ids=[c[0] for c in CORR_CASES])
def test_bad_correlation_row_names_row_column_value(bad, column, value):
    with pytest.raises(InputError) as info:
        C.check_correlations(_table([GOOD[0], bad]), MARKET)
    _assert_line(str(info.value), who="correlations row 2", column=column, value=value)


def test_pair_listed_twice_names_the_first_row():
    with pytest.raises(InputError, match=r"already listed in correlations row 1"):
        C.check_correlations(_table([("SPX", "SX5E", 0.6), ("SX5E", "SPX", 0.6)]), MARKET)


def test_name_with_an_invalid_market_row_quotes_its_problem():
    market, bad = _market(vol=[0.2, -0.25, 0.3, np.nan])
    assert "SX5E" in bad
    with pytest.raises(InputError) as info:
        C.check_correlations(_table([("SPX", "SX5E", 0.6)]), market, bad)
    message = str(info.value)
    _assert_line(message, who="correlations row 1", column="underlying_2", value="'SX5E'")
    assert "market row is invalid" in message and "'vol'" in message


def test_every_bad_row_is_reported_with_a_count():
    rows = [("SPX", "SX5E", 2.0), ("A", "SPX", 0.1), ("NKY", "NKY", np.nan), ("SPX", "H", 0.1)]
    with pytest.raises(InputError) as info:
        C.check_correlations(_table(rows), MARKET)
    lines = str(info.value).splitlines()
    assert lines[0] == "4 problems in the correlations table:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "correlations row 1", "correlations row 2", "correlations row 3", "correlations row 3"]


def test_report_is_capped_at_the_limit():
    rows = [("SPX", f"X{k}", 0.1) for k in range(REPORT_LIMIT + 5)]
    with pytest.raises(InputError) as info:
        C.check_correlations(_table(rows), MARKET)
    assert str(info.value).splitlines()[-1].strip() == "... and 5 more"


def test_problems_are_returned_without_raising():
    pairs, problems = C.correlation_problems(_table([GOOD[0], ("SPX", "NKY", 3.0)]), MARKET)
    assert pairs == [GOOD[0]] and len(problems) == 1 and "'corr'" in problems[0]


def test_missing_column_is_named():
    with pytest.raises(InputError, match=r"^correlations: required column 'corr' is missing$"):
        C.check_correlations(pd.DataFrame({"underlying_1": ["SPX"], "underlying_2": ["NKY"]}),
                             MARKET)


# --- groups -------------------------------------------------------------------------------------

def test_chain_makes_one_group_and_isolated_names_are_alone():
    names = ["e", "c", "b", "a", "d"]
    pairs = [("a", "b", 0.5), ("c", "b", -0.3)]
    assert C.groups(names, pairs) == [("a", "b", "c"), ("d",), ("e",)]


def test_zero_correlation_does_not_link():
    assert C.groups(["a", "b", "c"], [("a", "b", 0.0), ("b", "c", -0.0)]) == [("a",), ("b",),
                                                                              ("c",)]


def test_groups_do_not_depend_on_table_order():
    names = ["n%d" % k for k in range(12)]
    pairs = [("n3", "n7", 0.2), ("n7", "n1", 0.1), ("n10", "n5", -0.4), ("n11", "n0", 0.9),
             ("n0", "n3", 0.3)]
    expected = C.groups(names, pairs)
    assert expected == [("n0", "n1", "n11", "n3", "n7"), ("n10", "n5"), ("n2",), ("n4",),
                        ("n6",), ("n8",), ("n9",)]
    rng = np.random.default_rng(19)
    for _ in range(5):
        shuffled = [pairs[k] for k in rng.permutation(len(pairs))]
        flipped = [(b, a, c) if rng.random() < 0.5 else (a, b, c) for a, b, c in shuffled]
        assert C.groups(list(rng.permutation(names)), flipped) == expected


def test_pair_outside_the_names_is_a_programming_error():
    with pytest.raises(ValueError, match="'z'"):
        C.groups(["a", "b"], [("a", "z", 0.5)])


def test_group_matrix_is_symmetric_with_unlisted_pairs_zero():
    pairs = [("b", "a", 0.5), ("c", "b", -0.3), ("a", "x", 0.9)]
    np.testing.assert_array_equal(C.group_matrix(("a", "b", "c"), pairs),
                                  [[1.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 1.0]])


# --- the Cholesky factor ------------------------------------------------------------------------

def _random_correlation(n, rng, rank=None, floor=0.0):
    """A random correlation matrix of rank ``rank`` (full by default): normalized B B^T, mixed
    with the identity in proportion ``floor`` (which bounds its eigenvalues below by it)."""
    b = rng.standard_normal((n, rank or n))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    m = (1.0 - floor) * (b @ b.T) + floor * np.eye(n)
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    return m


def _check_factor(matrix, factor):
    assert factor.shape == matrix.shape and factor.dtype == np.float64
    assert np.all(np.triu(factor, 1) == 0.0) and np.all(np.diag(factor) >= 0.0)
    np.testing.assert_allclose(factor @ factor.T, matrix, rtol=0, atol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 25])
def test_factor_reproduces_positive_definite_matrices(n):
    rng = np.random.default_rng(n)
    matrix = _random_correlation(n, rng)
    factor = C.cholesky(matrix)
    _check_factor(matrix, factor)
    np.testing.assert_allclose(factor, np.linalg.cholesky(matrix), rtol=0, atol=1e-12)
    assert factor[0, 0] == 1.0   # member 0's draws are its own stream's, bit for bit


def test_two_names_have_the_closed_form_factor():
    factor = C.cholesky([[1.0, 0.5], [0.5, 1.0]])
    assert factor.tolist() == [[1.0, 0.0], [0.5, math.sqrt(0.75)]]


@pytest.mark.parametrize("rho", [1.0, -1.0])
def test_perfect_correlation_is_factored(rho):
    factor = C.cholesky([[1.0, rho], [rho, 1.0]], ("a", "b"))
    assert factor.tolist() == [[1.0, 0.0], [rho, 0.0]]


def test_semidefinite_chains_and_low_rank_matrices_are_factored():
    # a = b exactly and b = -c exactly, d correlated with all three through a
    chain = C.group_matrix(("a", "b", "c", "d"), [("a", "b", 1.0), ("b", "c", -1.0),
                                                  ("a", "c", -1.0), ("a", "d", 0.4),
                                                  ("b", "d", 0.4), ("c", "d", -0.4)])
    _check_factor(chain, C.cholesky(chain))
    rng = np.random.default_rng(7)
    for n, rank in [(3, 1), (4, 2), (6, 3), (10, 4)]:
        matrix = _random_correlation(n, rng, rank)
        assert np.linalg.eigvalsh(matrix)[0] < 1e-12       # singular
        _check_factor(matrix, C.cholesky(matrix))


def test_indefinite_group_names_members_and_smallest_eigenvalue():
    group = ("SPX", "SX5E", "NKY")
    pairs = [("SPX", "SX5E", 0.9), ("SPX", "NKY", 0.9), ("SX5E", "NKY", -0.9)]
    matrix = C.group_matrix(group, pairs)
    smallest = np.linalg.eigvalsh(matrix)[0]
    with pytest.raises(InputError) as info:
        C.cholesky(matrix, group)
    message = str(info.value)
    assert "\n" not in message
    assert "the group SPX, SX5E, NKY" in message and "not positive semidefinite" in message
    assert f"{smallest:.6g}" in message and smallest < -0.5


def test_tolerance_accepts_rounding_but_not_a_real_negative_eigenvalue():
    # Three names with pairwise corr -1/2 are exactly singular; typed as -0.5 they are PSD to
    # rounding.  -0.5 - 1e-9 makes the smallest eigenvalue 1 + 2 (-0.5 - 1e-9) = -2e-9: rejected.
    near = np.full((3, 3), -0.5)
    np.fill_diagonal(near, 1.0)
    _check_factor(near, C.cholesky(near))
    beyond = np.full((3, 3), -0.5 - 1e-9)
    np.fill_diagonal(beyond, 1.0)
    with pytest.raises(InputError, match="smallest eigenvalue -2e-09"):
        C.cholesky(beyond, ("a", "b", "c"))


def test_simulation_groups_factor_each_group_and_report_every_bad_one():
    names = ["a", "b", "c", "d", "e", "f", "g"]
    good = [("a", "b", 0.3), ("c", "d", 1.0)]
    out = C.simulation_groups(names, good)
    assert [g for g, _ in out] == [("a", "b"), ("c", "d"), ("e",), ("f",), ("g",)]
    for members, factor in out:
        _check_factor(C.group_matrix(members, good), factor)
    bad = [("a", "b", 0.9), ("a", "c", 0.9), ("b", "c", -0.9),
           ("e", "f", 0.95), ("f", "g", 0.95), ("e", "g", -0.95)]
    with pytest.raises(InputError) as info:
        C.simulation_groups(names, bad)
    lines = str(info.value).splitlines()
    assert lines[0] == "2 problems in the correlations table:"
    assert "the group a, b, c " in lines[1] and "the group e, f, g " in lines[2]


def test_malformed_matrices_are_programming_errors():
    for bad in ([[1.0, 0.2]], [[1.0, 0.2], [0.3, 1.0]], [[1.0, np.nan], [np.nan, 1.0]]):
        with pytest.raises(ValueError):
            C.cholesky(bad)


def test_same_bits_twice_and_independent_of_memory_layout():
    rng = np.random.default_rng(11)
    matrix = _random_correlation(8, rng)
    first = C.cholesky(matrix).tobytes()
    assert C.cholesky(matrix.copy()).tobytes() == first
    assert C.cholesky(np.asfortranarray(matrix)).tobytes() == first
    d = C.cholesky_derivative(C.cholesky(matrix), 5, 2).tobytes()
    assert C.cholesky_derivative(C.cholesky(matrix), 5, 2).tobytes() == d


# --- its derivative -----------------------------------------------------------------------------

def _bumped(matrix, i, j, h):
    m = matrix.copy()
    m[i, j] += h
    m[j, i] += h
    return m


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_derivative_matches_central_differences(n):
    # Eigenvalues >= 0.2: the differences' h^2 error stays far below the tolerance (a nearly
    # singular matrix has large third derivatives, so a tolerance would have to follow them).
    rng = np.random.default_rng(100 + n)
    matrix = _random_correlation(n, rng, floor=0.2)
    factor = C.cholesky(matrix)
    h = 1e-5
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            exact = C.cholesky_derivative(factor, i, j)
            diff = (C.cholesky(_bumped(matrix, i, j, h))
                    - C.cholesky(_bumped(matrix, i, j, -h))) / (2 * h)
            np.testing.assert_allclose(exact, diff, rtol=0, atol=1e-8)
            # the defining identity, to rounding: dL L^T + L dL^T = dSigma
            d_sigma = np.zeros((n, n))
            d_sigma[i, j] = d_sigma[j, i] = 1.0
            np.testing.assert_allclose(exact @ factor.T + factor @ exact.T, d_sigma,
                                       rtol=0, atol=1e-12)
            assert np.all(np.triu(exact, 1) == 0.0) and np.all(exact[:max(i, j)] == 0.0)


def test_derivative_of_two_names_is_the_closed_form():
    rho = 0.3
    d = C.cholesky_derivative(C.cholesky([[1.0, rho], [rho, 1.0]]), 1, 0)
    np.testing.assert_allclose(d, [[0.0, 0.0], [1.0, -rho / math.sqrt(1 - rho ** 2)]],
                               rtol=0, atol=1e-15)


def test_derivative_refuses_singular_matrices_and_bad_positions():
    with pytest.raises(ValueError, match="singular"):
        C.cholesky_derivative(C.cholesky([[1.0, 1.0], [1.0, 1.0]]), 0, 1)
    factor = C.cholesky(np.eye(3))
    for i, j in [(1, 1), (0, 3), (-1, 0)]:
        with pytest.raises(ValueError):
            C.cholesky_derivative(factor, i, j)


# --- multi-asset trades -------------------------------------------------------------------------

def _trade(**cells):
    base = {"trade_id": "B1", "payoff": "basket", "underlying": "SPX;SX5E", "weights": None}
    base.update(cells)
    return base


def test_good_trades_give_names_and_weights():
    clean, problems = C.check_multi_asset_trade(_trade(underlying=" SPX ; SX5E ; H"), MARKET)
    assert problems == [] and clean == {"underlyings": ("SPX", "SX5E", "H"),
                                        "weights": (1.0, 1.0, 1.0)}
    clean, problems = C.check_multi_asset_trade(
        _trade(payoff="Spread", underlying="SX5E;SPX", weights=" 0.5; 2"), MARKET)
    assert problems == [] and clean == {"underlyings": ("SX5E", "SPX"), "weights": (0.5, 2.0)}
    clean, _ = C.check_multi_asset_trade(_trade(underlying="NKY", weights=3.0), MARKET)
    assert clean == {"underlyings": ("NKY",), "weights": (3.0,)}


TRADE_CASES = [
    # id, cells, column, value as it appears, words of the reason
    ("unknown name", {"underlying": "SPX;FOO"}, "underlying", "'SPX;FOO'", "'FOO'"),
    ("empty item", {"underlying": "SPX;;SX5E"}, "underlying", "'SPX;;SX5E'", "item 2 of 3"),
    ("empty cell", {"underlying": np.nan}, "underlying", "empty", "names"),
    ("repeated name", {"underlying": "SPX; SX5E;SPX "}, "underlying", "'SPX; SX5E;SPX '",
     "'SPX' is listed more than once"),
    ("weights count", {"weights": "1;2;3"}, "weights", "'1;2;3'", "3 weights for 2"),
    ("weight text", {"weights": "1;x"}, "weights", "'1;x'", "item 2 of 2 ('x')"),
    ("weight infinite", {"weights": "inf;1"}, "weights", "'inf;1'", "finite"),
    ("weight empty item", {"weights": "1;"}, "weights", "'1;'", "item 2 of 2"),
    ("spread of three", {"payoff": "spread", "underlying": "SPX;SX5E;H"}, "underlying",
     "'SPX;SX5E;H'", "exactly two underlyings, got 3"),
    ("spread of one", {"payoff": "spread", "underlying": "SPX"}, "underlying", "'SPX'",
     "exactly two underlyings, got 1"),
    ("mixed rates", {"underlying": "SPX;NKY"}, "underlying", "'SPX;NKY'",
     "'SPX' has rate 0.03, 'NKY' has rate 0.001"),
]


@pytest.mark.parametrize("cells, column, value, why", [c[1:] for c in TRADE_CASES],
                         ids=[c[0] for c in TRADE_CASES])
def test_bad_multi_asset_cell_names_trade_column_value(cells, column, value, why):
    clean, problems = C.check_multi_asset_trade(_trade(**cells), MARKET)
    assert clean is None and len(problems) == 1, problems
    _assert_line(problems[0], who="trade 'B1'", column=column, value=value)
    assert why in problems[0]


def test_invalid_market_row_is_quoted():
    market, bad = _market(spot=[100.0, -50.0, 30.0, 80.0])
    clean, problems = C.check_multi_asset_trade(_trade(), market, bad)
    assert clean is None and len(problems) == 1
    assert "'SX5E': its market row is invalid" in problems[0] and "'spot'" in problems[0]


def test_every_problem_of_one_trade_is_listed():
    clean, problems = C.check_multi_asset_trade(
        _trade(payoff="spread", underlying="SPX;FOO;SPX", weights="1;bad"), MARKET)
    assert clean is None
    assert [p.split(": ", 2)[2] for p in problems] == [
        "'FOO': no such underlying in the market table", "'SPX' is listed more than once",
        "item 2 of 2 ('bad') must be a finite number", "has 2 weights for 3 underlyings"]
    assert all(p.startswith("trade 'B1': column '") for p in problems)


def test_cells_helper_records_on_the_callers_row():
    row = _Row("trade in row 7", _trade(underlying="SPX;NKY"))
    assert C.multi_asset_cells(row, "worst_of", MARKET) is None
    assert row.problems[0].startswith("trade in row 7: column 'underlying' has value 'SPX;NKY'")
    row = _Row("trade 'W'", _trade(underlying="SPX;SX5E"))
    assert C.multi_asset_cells(row, "best_of", MARKET) == {"underlyings": ("SPX", "SX5E"),
                                                           "weights": (1.0, 1.0)}
    assert row.problems == []
