"""The benchmark cases, and how each library is asked to price them.

Three cases, the same work in every library: a European call (one date), an arithmetic-average
Asian call with 252 daily fixings, and a Heston European call simulated with 252 time steps.
Maturity 252 calendar days (T = 252/365 years) so that QuantLib's whole-day dates fix every day
at exactly t_i = i·T/n.

mcgreeks is called through its public ``price_portfolio`` (``auto`` estimators, all Greeks, the
pilot included; the price alone with ``greeks="none"``).  ``mcgreeks_job`` builds an engine job
through the portfolio layer's internals for the profiling scripts; if those change, it says so
instead of failing the run.
"""
import importlib.util
import os
import sys

import numpy as np
import pandas as pd

import mcgreeks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DAYS = 252
MATURITY = DAYS / 365.0
GBM = dict(spot=100.0, rate=0.03, div_yield=0.01, vol=0.2)
HESTON = dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.04, xi=0.5,
              corr=-0.7)
STRIKE = 100.0
N_FIXINGS = 252
HESTON_STEPS = 252
GBM_GREEKS = ("delta", "gamma", "vega", "rho", "theta")
HESTON_GREEKS = ("delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi", "d_corr")


def gbm_market(name="X"):
    return pd.DataFrame({"underlying": [name], "model": ["gbm"], "spot": [GBM["spot"]],
                         "rate": [GBM["rate"]], "div_yield": [GBM["div_yield"]],
                         "vol": [GBM["vol"]]})


def heston_market(name="H"):
    row = {"underlying": [name], "model": ["heston"]}
    row.update({k: [v] for k, v in HESTON.items()})
    return pd.DataFrame(row)


def trades(payoff, *, strikes=(STRIKE,), n_fixings=N_FIXINGS, underlying="X"):
    """One call per strike on ``underlying``; ``n_fixings`` is used by Asians only."""
    k = len(strikes)
    return pd.DataFrame({"trade_id": [f"T{i}" for i in range(k)], "underlying": [underlying] * k,
                         "payoff": [payoff] * k, "option_type": ["call"] * k,
                         "strike": list(strikes), "maturity": [MATURITY] * k,
                         "n_fixings": [n_fixings if payoff.startswith("asian") else 1] * k})


def mcgreeks_all(trade_table, market, n_paths, seed=1, steps_per_year=None, method="auto"):
    """``price_portfolio`` with ``method`` (auto by default): the result table."""
    return mcgreeks.price_portfolio(trade_table, market, n_paths=n_paths, seed=seed,
                                    steps_per_year=steps_per_year, method=method)


def heston_status(n_paths=256):
    """(True, '') if mcgreeks prices a Heston European without an error, else (False, the error)."""
    try:
        row = mcgreeks_all(trades("european", underlying="H"), heston_market(), n_paths,
                           steps_per_year=HESTON_STEPS / MATURITY).iloc[0]
    except Exception as exc:       # the Heston pricer is being written: any failure is "not yet"
        return False, f"{type(exc).__name__}: {exc}"
    if isinstance(row["error"], str) and row["error"]:
        return False, row["error"]
    if not np.isfinite(row["price"]):
        return False, "price is NaN"
    return True, ""


def mcgreeks_job(trade_table, market, n_paths, *, seed=1, methods=None):
    """An ``mcgreeks.underlying.Job`` for the trades of one underlying, its estimators fixed to
    ``methods`` ({greek: estimator name}, e.g. auto's choices from a ``price_portfolio`` run;
    None for the price alone), with the default control variate.  Internal API: raises
    RuntimeError naming what changed."""
    try:
        from mcgreeks import greeks as G, underlying
        from mcgreeks.estimators import fd
        from mcgreeks.validation import check_market, check_trades

        checked = check_market(market)
        params = checked[0] if isinstance(checked, tuple) else checked
        records = check_trades(trade_table, params)[0]
        name = records[0]["underlying"]
        codes = {G.QUANTITIES.index(g): G.ESTIMATORS.index(e) for g, e in (methods or {}).items()}
        return underlying.Job(name, params[name], records, [dict(codes) for _ in records],
                              seed=seed, n_paths=int(n_paths), bumps=fd.bumps())
    except Exception as exc:
        raise RuntimeError(f"mcgreeks internals changed ({type(exc).__name__}: {exc})") from None


def mcgreeks_price_only(trade_table, market, n_paths, seed=1, sampler="mc", **options):
    """The price of every trade alone (``greeks="none"``: no Greek is computed), with the
    control variate ``price_portfolio`` uses by default (``options``: more of its arguments).
    Returns (prices, standard errors)."""
    results = mcgreeks.price_portfolio(trade_table, market, n_paths=n_paths, seed=seed,
                                       greeks="none", sampler=sampler, **options)
    return results["price"].to_numpy(), results["price_se"].to_numpy()


def test_module(relative_path):
    """A test module of the repository loaded by path (tests/ is not a package), so that a
    benchmark measures the cases its tests check rather than a copy of them.  tests/ goes on
    sys.path first, as pytest's ``pythonpath`` setting puts it, for the tests' shared helpers."""
    helpers = os.path.join(ROOT, "tests")
    if helpers not in sys.path:
        sys.path.insert(0, helpers)
    path = os.path.join(ROOT, relative_path)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
