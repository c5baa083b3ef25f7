"""Shared fixtures: small tables built in code, so each test states its own inputs."""
import pandas as pd
import pytest

#: Tests that take minutes or most of one on an empty cache (the first a whole ``mcgreeks
#: warmup``, 220 s on the CI's 2 cores): collected first, so that under ``pytest -n 2`` they run
#: beside the rest, not alone at the end (alphabetical order put the warmup last: the suite's
#: last 3 minutes on one core).
FIRST = ("test_warmup.py::test_after_warmup_the_sample_book_compiles_nothing",
         "test_heston_group.py::test_error_bars_are_calibrated_over_many_seeds",
         "test_american.py::test_heston_american_put_published_refined",
         "test_gbm_exercise.py::"
         "test_greek_errors_over_seeds_are_calibrated_by_their_policy_spread_ses")


def _rank(item):
    name = item.nodeid.split("[")[0]
    return next((r for r, first in enumerate(FIRST) if name.endswith(first)), len(FIRST))


def pytest_collection_modifyitems(config, items):
    """``FIRST`` in its order before every other test, the rest in their usual order."""
    items.sort(key=_rank)


@pytest.fixture
def one_underlying():
    """Four trades on one GBM underlying: long/short, European and digital, two maturities."""
    trades = pd.DataFrame({
        "trade_id": ["C1", "P1", "DC", "DP"], "underlying": "X",
        "payoff": ["european", "european", "digital", "digital"],
        "option_type": ["call", "put", "call", "put"], "strike": [100.0, 95.0, 105.0, 98.0],
        "maturity": [1.0, 0.5, 1.0, 2.0], "quantity": [1.0, -2.0, 3.0, 1.0],
        "cash": [None, None, 10.0, 1.0]})
    market = pd.DataFrame({"underlying": ["X"], "model": ["gbm"], "spot": [100.0],
                           "rate": [0.03], "div_yield": [0.01], "vol": [0.2]})
    return trades, market
