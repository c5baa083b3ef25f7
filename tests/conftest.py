"""Shared fixtures: small tables built in code, so each test states its own inputs."""
import pandas as pd
import pytest


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
