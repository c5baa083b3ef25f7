"""Portfolio pricing: DataFrames in, one row per trade out (SPEC §2).

This layer validates the tables, turns them into arrays once, asks the engine for each
underlying's estimates (all trades on an underlying share its paths) and turns the estimates
back into one DataFrame.  It holds no numerics of its own beyond scaling unit values by the
position's quantity.
"""
import numpy as np
import pandas as pd

from mcgreeks import engine, payoffs
from mcgreeks import greeks as G
from mcgreeks.estimators import fd, valid_estimators, why_invalid
from mcgreeks.pricers import gbm as gbm_pricer
from mcgreeks.rng import STREAM_MAIN, STREAM_PILOT, name_key, seed_key
from mcgreeks.validation import InputError, check_market, check_trades

#: Paths of the pilot run that picks ``auto`` estimators (its own random stream, never reused).
PILOT_PATHS = 4096

COLUMNS = (list(G.QUANTITIES) + [q + "_se" for q in G.QUANTITIES]
           + ["method_" + g for g in G.GREEKS] + ["error"])

_APPLIES = {"pathwise": (G.DELTA, G.VEGA, G.RHO, G.THETA), "mixed": (G.GAMMA,),
            "lr": tuple(range(1, 6)), "fd": tuple(range(1, 6))}


def _method_plan(method):
    """{greek code: (estimator name or 'auto', explicit)} from the ``method`` argument."""
    if isinstance(method, str):
        name = method.lower()
        if name != "auto" and name not in G.ESTIMATORS:
            raise InputError(f"method {method!r}: must be auto or one of " + ", ".join(G.ESTIMATORS))
        # One name asks for that estimator of every Greek it can estimate at all; the others
        # (e.g. gamma under pathwise) stay on auto, visibly so in their method_ column.
        return {g: (name if name != "auto" and g in _APPLIES[name] else "auto", False)
                for g in range(1, 6)}
    plan = {g: ("auto", False) for g in range(1, 6)}
    for greek, name in dict(method).items():
        name = str(name).lower()
        if greek not in G.GBM_GREEKS:
            raise InputError(f"method: unknown Greek {greek!r}; Greeks are " + ", ".join(G.GBM_GREEKS))
        if name not in ("auto",) + G.ESTIMATORS:
            raise InputError(f"method[{greek!r}] = {name!r}: must be auto or one of "
                             + ", ".join(G.ESTIMATORS))
        plan[G.QUANTITIES.index(greek)] = (name, name != "auto")
    return plan


def _choices(record, plan):
    """Per Greek: the chosen estimator code, or the tuple of candidates the pilot decides among."""
    kind = payoffs.KINDS[record["payoff"]]
    continuous = record.get("monitoring") == "continuous"
    out = {}
    for g, (name, _) in plan.items():
        valid = valid_estimators(kind, g, continuous)
        if name == "auto":
            candidates = tuple(e for e in valid if e != G.FD) or (G.FD,)
            out[g] = candidates[0] if len(candidates) == 1 else candidates
            continue
        e = G.ESTIMATORS.index(name)
        if e not in valid:
            raise InputError(
                f"trade {record['trade_id']!r}: column 'method' has value {name!r} for "
                f"{G.QUANTITIES[g]} of a {record['payoff']} {record['option_type']}: "
                f"{why_invalid(kind, g, e, continuous)}; valid: " + ", ".join(G.ESTIMATORS[v] for v in valid))
        out[g] = e
    return out


def _schedule(record):
    """The dates (years) a trade's payoff reads: t_i = i·T/n, or just T (SPEC §1)."""
    kind = payoffs.KINDS[record["payoff"]]
    n = payoffs.schedule(kind, record.get("monitoring") == "continuous", record["maturity"],
                         record.get("n_fixings") or 1)
    return np.arange(1, n + 1) * record["maturity"] / n


def _trade_arrays(records):
    """The union grid of all trades' dates and the pricer's per-trade arrays (ti, tf, fix_idx)."""
    dates = [_schedule(r) for r in records]
    grid = np.unique(np.concatenate(dates))
    ti = np.zeros((len(records), 6), dtype=np.int64)
    tf = np.zeros((len(records), 5))
    fix_idx, offset = [], 0
    for j, (r, d) in enumerate(zip(records, dates)):
        down, knock_in = payoffs.BARRIER_KINDS.get(r.get("barrier_type"), (False, False))
        ti[j] = (payoffs.KINDS[r["payoff"]], down, knock_in, r.get("monitoring") == "continuous",
                 offset, d.size)
        tf[j] = (1.0 if r["option_type"] == "call" else -1.0, r["strike"], r["cash"],
                 r.get("barrier") or 0.0, r["maturity"])
        fix_idx.append(np.searchsorted(grid, d))
        offset += d.size
    return grid, ti, tf, np.concatenate(fix_idx).astype(np.int64)


def _run(params, arrays, slots, *, key0, key1, stream, n_paths, options):
    """Mean, standard error and count per slot from the model's pricer."""
    grid, ti, tf, fix_idx = arrays
    options = dict(options)
    bumps = options.pop("bumps")
    args = (grid, params["spot"], params["rate"], params["div_yield"], params["vol"], ti, tf,
            fix_idx, slots, bumps)
    return engine.run(gbm_pricer.chunk, args, key0=key0, key1=key1, stream=stream,
                      n_paths=n_paths, n_slots=int(slots.max()) + 1, **options)


def _number_slots(wanted, n_trades):
    """slots[j, g, e] = consecutive indices for the (j, g, e) in ``wanted``, -1 elsewhere."""
    slots = np.full((n_trades, 6, G.N_ESTIMATORS), -1, dtype=np.int64)
    for k, (j, g, e) in enumerate(wanted):
        slots[j, g, e] = k
    return slots


def _price_underlying(name, params, records, choices, *, seed, n_paths, options):
    """Estimates for the trades of one underlying: one {column: value} dict per trade.

    ``choices`` (one dict per trade, Greek code -> estimator code or tuple of candidates) is
    resolved in place: a pilot run on its own random stream keeps, among candidates, the one
    with the lowest variance (ties keep the preference order)."""
    arrays = _trade_arrays(records)
    key0, key1 = seed_key(seed), name_key(name)
    run = dict(key0=key0, key1=key1, options=options)

    undecided = [(j, g, e) for j, c in enumerate(choices) for g, cands in c.items()
                 if isinstance(cands, tuple) for e in cands]
    if undecided:
        pilot = _number_slots(undecided, len(records))
        _, pilot_se, _ = _run(params, arrays, pilot, stream=STREAM_PILOT,
                              n_paths=min(PILOT_PATHS, n_paths), **run)
        for j, c in enumerate(choices):
            for g, cands in c.items():
                if isinstance(cands, tuple):
                    c[g] = min(cands, key=lambda e: pilot_se[pilot[j, g, e]])

    wanted = [(j, G.PRICE, 0) for j in range(len(records))]
    wanted += [(j, g, e) for j, c in enumerate(choices) for g, e in c.items()]
    slots = _number_slots(wanted, len(records))
    mean, se, _ = _run(params, arrays, slots, stream=STREAM_MAIN, n_paths=n_paths, **run)

    rows = []
    for j, (r, c) in enumerate(zip(records, choices)):
        q = r["quantity"]
        row = {}
        for g, e in [(G.PRICE, 0)] + list(c.items()):
            quantity = G.QUANTITIES[g]
            row[quantity] = q * mean[slots[j, g, e]]
            row[quantity + "_se"] = abs(q) * se[slots[j, g, e]]
            if g != G.PRICE:
                row["method_" + quantity] = G.ESTIMATORS[e]
        rows.append(row)
    return rows


def price_portfolio(trades, market, n_paths=100_000, seed=0, method="auto", steps_per_year=None,
                    *, fd_bumps=None, chunk_paths=1 << 16, block_paths=1 << 12):
    """Price every trade and its Greeks, each with its Monte Carlo standard error.

    Args:
      trades, market: DataFrames with the columns of SPEC §1.
      n_paths: Monte Carlo paths per underlying (trades on one underlying share them).
      seed: integer in [0, 2**64); with the inputs it fixes every bit of the result, whatever the
        thread count, ``chunk_paths`` or ``block_paths``.
      method: ``"auto"`` (per trade and Greek, the valid estimator with the lowest variance in a
        pilot run of its own random stream), an estimator name (used for every Greek it
        estimates; the others stay auto), or a dict {greek: name}.  An estimator that is invalid
        for a trade's payoff raises.
      steps_per_year: time grid of discretized models; GBM paths are exact and ignore it.
      fd_bumps: bump sizes of the ``fd`` estimator, overriding any of {"spot": 0.01 (of S0),
        "vol": 0.01 (of σ), "rate": 0.001, "maturity": 0.01 (of T)}.
      chunk_paths, block_paths: paths per kernel call (bounds memory) and per parallel task;
        neither changes the result.

    Returns:
      DataFrame indexed by ``trade_id`` in input order with the columns of SPEC §2, position
      level (unit value × quantity).  Rows that cannot be priced carry the reason in ``error``.

    Raises:
      InputError: a table violates SPEC §1, or ``method`` is invalid; the message names the trade
        or underlying, the column and the value.
    """
    if isinstance(n_paths, bool) or int(n_paths) != n_paths or n_paths < 2:
        raise InputError(f"n_paths has value {n_paths!r}: must be a whole number >= 2")
    if steps_per_year is not None and not steps_per_year > 0:
        raise InputError(f"steps_per_year has value {steps_per_year!r}: must be > 0")
    try:
        seed_key(seed)
        bump_sizes = fd.bumps(fd_bumps)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    plan = _method_plan(method)
    market_params = check_market(market)
    records, problems = check_trades(trades, market_params)
    for p in problems:
        if p:
            raise InputError(p[0])
    choices = [_choices(r, plan) for r in records]

    options = {"chunk_paths": chunk_paths, "block_paths": block_paths, "bumps": bump_sizes}
    rows = [{} for _ in records]
    for name in dict.fromkeys(r["underlying"] for r in records):
        params = market_params[name]
        priceable = []
        for i, r in enumerate(records):
            if r["underlying"] != name:
                continue
            if params["model"] != "gbm":
                rows[i]["error"] = f"model {params['model']!r} is not supported yet"
            else:
                priceable.append(i)
        if priceable:
            priced = _price_underlying(name, params, [records[i] for i in priceable],
                                       [choices[i] for i in priceable], seed=seed,
                                       n_paths=int(n_paths), options=options)
            for i, row in zip(priceable, priced):
                rows[i].update(row)
    return _table(rows, [r["trade_id"] for r in records])


def _table(rows, trade_ids):
    """The output DataFrame of SPEC §2 from one dict per trade (absent numbers are NaN)."""
    index = pd.Index(trade_ids, name="trade_id", dtype=object)
    data = {}
    for col in COLUMNS:
        if col == "error" or col.startswith("method_"):
            data[col] = pd.Series([r.get(col, "") for r in rows], index=index, dtype=object)
        else:
            data[col] = pd.Series([r.get(col, np.nan) for r in rows], index=index, dtype=float)
    return pd.DataFrame(data, index=index)
