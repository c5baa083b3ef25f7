"""Write a realistic synthetic portfolio for batch tests and benchmarks.

    python data/make_portfolio.py [--positions 10000] [--underlyings 50] [--seed 1]
                                  [--out-dir data/generated] [--format csv|parquet]

Underlyings are a mix of GBM and Heston (about one in four Heston) with spreads of spot, rate
(some negative), dividend yield and volatility; positions cover every payoff (European, digital,
arithmetic and geometric Asians, barriers of every type, discretely and continuously monitored),
calls and puts, long and short, strikes around the money in units of the terminal standard
deviation, maturities from a month to five years.  The same seed writes the same files.
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

PAYOFF_MIX = {"european": 0.35, "digital": 0.1, "asian_arithmetic": 0.2, "asian_geometric": 0.05,
              "barrier": 0.3}
MATURITIES = np.array([1 / 12, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0])
FIXINGS = np.array([4, 12, 26, 52, 252])


def make_market(n, rng):
    names = [f"U{i:04d}" for i in range(n)]
    heston = rng.random(n) < 0.25
    vol = rng.uniform(0.12, 0.55, n)
    return pd.DataFrame({
        "underlying": names, "model": np.where(heston, "heston", "gbm"),
        "spot": np.round(np.exp(rng.uniform(np.log(5), np.log(2000), n)), 2),
        "rate": np.round(rng.uniform(-0.01, 0.06, n), 4),
        "div_yield": np.round(rng.choice([0.0, 0.01, 0.02, 0.04], n), 4),
        "vol": np.where(heston, np.nan, np.round(vol, 4)),
        "v0": np.where(heston, np.round(vol**2, 4), np.nan),
        "kappa": np.where(heston, np.round(rng.uniform(0.5, 3.0, n), 3), np.nan),
        "vbar": np.where(heston, np.round(rng.uniform(0.02, 0.09, n), 4), np.nan),
        "xi": np.where(heston, np.round(rng.uniform(0.2, 1.0, n), 3), np.nan),
        "corr": np.where(heston, np.round(rng.uniform(-0.9, 0.1, n), 3), np.nan),
    })


def make_trades(n, market, rng):
    u = rng.integers(0, len(market), n)
    spot = market["spot"].to_numpy()[u]
    vol = np.where(market["model"].to_numpy()[u] == "gbm", market["vol"].to_numpy()[u],
                   np.sqrt(market["v0"].to_numpy()[u]))
    payoff = rng.choice(list(PAYOFF_MIX), n, p=list(PAYOFF_MIX.values()))
    maturity = rng.choice(MATURITIES, n)
    sd = vol * np.sqrt(maturity)
    strike = np.round(spot * np.exp(rng.normal(0.0, 0.6, n) * sd), 4)
    barrier_type = rng.choice(["up_out", "up_in", "down_out", "down_in"], n)
    up = np.char.startswith(barrier_type.astype(str), "up")
    level = np.round(spot * np.exp(np.where(up, 1, -1) * rng.uniform(0.5, 1.5, n) * sd), 4)
    is_barrier = payoff == "barrier"
    continuous = is_barrier & (rng.random(n) < 0.5)
    needs_fixings = np.isin(payoff, ["asian_arithmetic", "asian_geometric"]) | (
        is_barrier & ~continuous)
    quantity = rng.choice([-1, 1], n) * rng.integers(1, 50, n)
    return pd.DataFrame({
        "trade_id": [f"P{i:06d}" for i in range(n)],
        "underlying": market["underlying"].to_numpy()[u], "payoff": payoff,
        "option_type": rng.choice(["call", "put"], n), "strike": strike, "maturity": maturity,
        "quantity": quantity.astype(float),
        "cash": np.where(payoff == "digital", rng.choice([1.0, 10.0, 100.0], n), np.nan),
        "barrier": np.where(is_barrier, level, np.nan),
        "barrier_type": np.where(is_barrier, barrier_type, ""),
        "monitoring": np.where(is_barrier, np.where(continuous, "continuous", "discrete"), ""),
        "n_fixings": pd.Series(rng.choice(FIXINGS, n)).astype("Int64").where(needs_fixings),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--underlyings", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "generated"))
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    market = make_market(args.underlyings, rng)
    trades = make_trades(args.positions, market, rng)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("trades", trades), ("market", market)):
        path = out / f"{name}.{args.format}"
        if args.format == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        print(f"wrote {path} ({len(table)} rows)")


if __name__ == "__main__":
    main()
