"""A real two-worker Dask LocalCluster gives the serial result to the bit."""
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mcgreeks import aggregate, engine, price_portfolio
from mcgreeks.distributed import _tasks_per_job, close_local, local_client

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
    dict(trade_id="a3", underlying="A", payoff="european", option_type="put", strike=110.0,
         maturity=0.5, exercise="american"),
])
N_PATHS = 5 * engine.SEGMENT + 123        # several segments and a partial one per underlying


@pytest.fixture(scope="module")
def client():
    client = local_client(2)
    yield client
    close_local(client)


@pytest.mark.parametrize("sampler", ["mc", "antithetic"])
def test_local_cluster_is_bit_identical_to_serial(client, sampler):
    assert len(client.scheduler_info()["workers"]) == 2
    n_paths = N_PATHS + 1 if sampler == "antithetic" else N_PATHS     # even: whole pairs
    serial = price_portfolio(TRADES, MARKET, n_paths=n_paths, seed=17, sampler=sampler)
    spread = price_portfolio(TRADES, MARKET, n_paths=n_paths, seed=17, sampler=sampler,
                             client=client)
    numbers = serial.select_dtypes("number").columns
    np.testing.assert_array_equal(spread[numbers].to_numpy(), serial[numbers].to_numpy())
    assert spread.drop(columns=numbers).equals(serial.drop(columns=numbers))
    pd.testing.assert_frame_equal(aggregate(spread), aggregate(serial), check_exact=True)


def test_large_underlyings_are_split_into_path_ranges():
    """With these sizes each underlying's main run goes out as several segment-range tasks."""
    jobs = [type("J", (), {"n_paths": N_PATHS})()] * 3
    per_task = _tasks_per_job(jobs, 2)
    assert per_task < -(-N_PATHS // engine.SEGMENT)


def _blocked_signals(pid):
    """The signals blocked in process ``pid``'s main thread, from /proc."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("SigBlk:"):
            mask = int(line.split()[1], 16)
            return {s for s in range(1, 65) if mask >> (s - 1) & 1}
    raise AssertionError("no SigBlk line")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_workers_leave_signals_to_the_parent_and_scratch_goes_with_the_cluster():
    """A Ctrl-C goes to the whole process group: the workers must not act on it (the CLI ends
    them itself), and they keep their scratch files in a folder removed on close."""
    client = local_client(2)
    try:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        for pid in pids:
            assert {signal.SIGINT, signal.SIGTERM} <= _blocked_signals(pid)
        assert signal.SIGINT not in _blocked_signals(os.getpid())     # the parent takes them
        folders = client.run(lambda dask_worker: dask_worker.local_directory).values()
        scratch = {next(p for p in Path(f).parents if p.name.startswith("mcgreeks-dask-"))
                   for f in folders}
        assert len(scratch) == 1
        scratch = scratch.pop()
        assert scratch.is_dir()
    finally:
        close_local(client)
    assert not scratch.exists()


def test_workers_numba_sees_one_thread_from_the_start():
    """The workers' numba is configured for the one thread the cluster gives each worker from
    its import on, so a kernel compiled in a worker (a cold cache) does not fail on a thread
    count that changed under it."""
    def numba_threads():
        import numba
        return os.environ.get("NUMBA_NUM_THREADS"), numba.config.NUMBA_NUM_THREADS

    before = os.environ.get("NUMBA_NUM_THREADS")
    client = local_client(2)
    try:
        assert list(client.run(numba_threads).values()) == [("1", 1)] * 2
    finally:
        close_local(client)
    assert os.environ.get("NUMBA_NUM_THREADS") == before      # this process's left as it was


def test_a_worker_spawned_after_the_kill_is_reaped_with_its_folder(tmp_path):
    """The race a signal meets while the cluster starts: a worker spawned after ``kill_local``
    looked for the run's children outlives the run and creates its scratch folder later.  The
    reaper ends it and removes the folder once the run is gone."""
    import subprocess
    import sys
    import time

    import psutil

    folder = tmp_path / "mcgreeks-dask-x"
    late = f"import os, time; time.sleep(0.3); os.makedirs({str(folder / 'worker')!r}); " \
           "time.sleep(60)"
    run = f"""
import os, subprocess, sys
from mcgreeks import _reaper, distributed
os.environ[_reaper.CLUSTER_MARK] = str(os.getpid())
os.mkdir({str(folder)!r})
distributed._LOCAL.append([None, {str(folder)!r}])
distributed.kill_local()
proc = subprocess.Popen([sys.executable, "-c", {late!r}])
print(proc.pid, flush=True)
os._exit(130)
"""
    done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130, done.stderr
    late_pid = int(done.stdout)
    def alive():
        try:
            return psutil.Process(late_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(), "the late worker outlived the run"
    time.sleep(0.5)     # a surviving late worker would have created the folder by now
    assert not folder.exists()
