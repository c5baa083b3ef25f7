"""A real two-worker Dask LocalCluster gives the serial result to the bit."""
import numpy as np
import pandas as pd
import pytest

from mcgreeks import aggregate, engine, price_portfolio
from mcgreeks.distributed import _tasks_per_job, local_client

MARKET = pd.DataFrame({"underlying": ["A", "B", "C"], "model": "gbm", "spot": [100.0, 40.0, 7.5],
                       "rate": [0.03, 0.0, -0.01], "div_yield": [0.01, 0.0, 0.02],
                       "vol": [0.2, 0.35, 0.5]})
TRADES = pd.DataFrame([
    dict(trade_id="a1", underlying="A", payoff="european", option_type="call", strike=105.0,
         maturity=1.0, quantity=3.0),
    dict(trade_id="a2", underlying="A", payoff="asian_arithmetic", option_type="put",
         strike=95.0, maturity=0.5, n_fixings=12, quantity=-2.0),
    dict(trade_id="b1", underlying="B", payoff="barrier", option_type="call", strike=40.0,
         maturity=1.0, barrier=50.0, barrier_type="up_out", monitoring="continuous"),
    dict(trade_id="b2", underlying="B", payoff="digital", option_type="put", strike=38.0,
         maturity=0.75, cash=5.0),
    dict(trade_id="c1", underlying="C", payoff="barrier", option_type="put", strike=7.0,
         maturity=2.0, barrier=6.0, barrier_type="down_in", n_fixings=24),
])
N_PATHS = 5 * engine.SEGMENT + 123        # several segments and a partial one per underlying


@pytest.fixture(scope="module")
def client():
    client = local_client(2)
    yield client
    client.close()
    client.cluster.close()


def test_local_cluster_is_bit_identical_to_serial(client):
    assert len(client.scheduler_info()["workers"]) == 2
    serial = price_portfolio(TRADES, MARKET, n_paths=N_PATHS, seed=17)
    spread = price_portfolio(TRADES, MARKET, n_paths=N_PATHS, seed=17, client=client)
    numbers = serial.select_dtypes("number").columns
    np.testing.assert_array_equal(spread[numbers].to_numpy(), serial[numbers].to_numpy())
    assert spread.drop(columns=numbers).equals(serial.drop(columns=numbers))
    pd.testing.assert_frame_equal(aggregate(spread), aggregate(serial), check_exact=True)


def test_large_underlyings_are_split_into_path_ranges():
    """With these sizes each underlying's main run goes out as several segment-range tasks."""
    jobs = [type("J", (), {"n_paths": N_PATHS})()] * 3
    per_task = _tasks_per_job(jobs, 2)
    assert per_task < -(-N_PATHS // engine.SEGMENT)
