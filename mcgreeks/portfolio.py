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
from mcgreeks.analytic.asian import geometric_asian
from mcgreeks.estimators import fd, valid_estimators, why_invalid
from mcgreeks.pricers import gbm as gbm_pricer
from mcgreeks.rng import STREAM_MAIN, STREAM_PILOT, name_key, seed_key
from mcgreeks.validation import InputError, check_market, check_trades

#: Paths of the pilot run that picks ``auto`` estimators (its own random stream, never reused).
PILOT_PATHS = 4096

COLUMNS = (list(G.QUANTITIES) + [q + "_se" for q in G.QUANTITIES]
           + ["method_" + g for g in G.GREEKS] + ["error"])

DIAGNOSTIC_COLUMNS = ["trade_id", "quantity", "method", "control", "control_beta",
                      "variance_reduction"]

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


def _has_control(record, control_variate):
    return control_variate and record["payoff"] == "asian_arithmetic"


def _trade_arrays(records, control_variate):
    """The union grid of all trades' dates and the pricer's per-trade arrays (ti, tf, fix_idx)."""
    dates = [_schedule(r) for r in records]
    grid = np.unique(np.concatenate(dates))
    ti = np.zeros((len(records), payoffs.N_INT_COLUMNS), dtype=np.int64)
    tf = np.zeros((len(records), payoffs.N_FLOAT_COLUMNS))
    fix_idx, offset = [], 0
    for j, (r, d) in enumerate(zip(records, dates)):
        down, knock_in = payoffs.BARRIER_KINDS.get(r.get("barrier_type"), (False, False))
        ti[j] = (payoffs.KINDS[r["payoff"]], down, knock_in, r.get("monitoring") == "continuous",
                 offset, d.size, _has_control(r, control_variate))
        tf[j] = (1.0 if r["option_type"] == "call" else -1.0, r["strike"], r["cash"],
                 r.get("barrier") or 0.0, r["maturity"])
        fix_idx.append(np.searchsorted(grid, d))
        offset += d.size
    return grid, ti, tf, np.concatenate(fix_idx).astype(np.int64)


def _control_means(records, params, wanted, bumps):
    """E[x] of each slot's control: the geometric twin's closed-form value of the quantity, or for
    fd the closed form's own difference quotient with the same bumps; NaN without a control."""
    means = np.full(len(wanted), np.nan)
    for k, (j, g, e) in enumerate(wanted):
        r = records[j]
        if not r["control"]:
            continue
        args = dict(spot=params["spot"], strike=r["strike"], maturity=r["maturity"],
                    rate=params["rate"], vol=params["vol"], div_yield=params["div_yield"],
                    n_fixings=r["n_fixings"], is_call=r["option_type"] == "call")
        if e != G.FD or g == G.PRICE:
            means[k] = geometric_asian(**args)[G.QUANTITIES[g]]
            continue
        price = lambda **moved: geometric_asian(**{**args, **moved})["price"]  # noqa: E731
        spot_rel, vol_rel, rate_abs, maturity_rel = bumps
        s0, vol, t = args["spot"], args["vol"], args["maturity"]
        h = {G.DELTA: spot_rel * s0, G.GAMMA: spot_rel * s0, G.VEGA: vol_rel * vol,
             G.RHO: rate_abs, G.THETA: maturity_rel * t}[g]
        name = {G.DELTA: "spot", G.GAMMA: "spot", G.VEGA: "vol", G.RHO: "rate",
                G.THETA: "maturity"}[g]
        up, down = price(**{name: args[name] + h}), price(**{name: args[name] - h})
        if g == G.GAMMA:
            means[k] = fd.second(up, price(), down, h)
        else:
            means[k] = fd.central(up, down, h) * (-1.0 if g == G.THETA else 1.0)
    return means


def _run(params, arrays, slots, *, key0, key1, stream, n_paths, options, totals=None):
    """Merged moments (count, state) per slot from the model's pricer.  With ``totals`` =
    (agg_e, agg_w), also the per-path totals of each quantity, in the last N_QUANTITIES slots."""
    grid, ti, tf, fix_idx = arrays
    options = dict(options)
    bumps = options.pop("bumps")
    n_slots = int(slots.max()) + 1
    if totals is None:
        agg_e = np.full((len(ti), G.N_QUANTITIES), -1, dtype=np.int64)
        agg_w, agg_base = np.zeros((len(ti), G.N_QUANTITIES, 3)), -1
    else:
        (agg_e, agg_w), agg_base = totals, n_slots
        n_slots += G.N_QUANTITIES
    args = (grid, params["spot"], params["rate"], params["div_yield"], params["vol"], ti, tf,
            fix_idx, slots, bumps, agg_e, agg_w, agg_base)
    return engine.run(gbm_pricer.chunk, args, key0=key0, key1=key1, stream=stream,
                      n_paths=n_paths, n_slots=n_slots, **options)


def _number_slots(wanted, n_trades):
    """slots[j, g, e] = consecutive indices for the (j, g, e) in ``wanted``, -1 elsewhere."""
    slots = np.full((n_trades, G.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
    for k, (j, g, e) in enumerate(wanted):
        slots[j, g, e] = k
    return slots


def _estimates(params, records, arrays, wanted, *, stream, n_paths, run, totals=None):
    """slots, (mean, se, variance reduction, beta) per wanted (trade, quantity, estimator), and
    with ``totals`` the (mean, se) of the underlying's per-path total of each quantity."""
    slots = _number_slots(wanted, len(records))
    count, state = _run(params, arrays, slots, stream=stream, n_paths=n_paths, totals=totals,
                        **run)
    controls = _control_means(records, params, wanted, run["options"]["bumps"])
    per_slot = engine.estimate(count, state[:len(wanted)], controls)
    if totals is None:
        return slots, per_slot, None
    total_mean, total_se, _, _ = engine.estimate(count, state[len(wanted):])
    return slots, per_slot, (total_mean, total_se)


def _totals_weights(records, choices, wanted, beta, control_means):
    """(agg_e, agg_w) for the per-path totals: each trade's chosen estimator of each quantity
    weighted by its quantity, minus its control at the pilot's coefficient (fixed before the
    main run, so the total is a plain per-path sum)."""
    agg_e = np.full((len(records), G.N_QUANTITIES), -1, dtype=np.int64)
    agg_w = np.zeros((len(records), G.N_QUANTITIES, 3))
    index = {key: k for k, key in enumerate(wanted)}
    for j, (r, c) in enumerate(zip(records, choices)):
        for g, e in [(G.PRICE, 0)] + list(c.items()):
            agg_e[j, g] = e
            b = beta[index[(j, g, e)]] if r["control"] else 0.0
            mean_x = control_means[index[(j, g, e)]] if r["control"] else 0.0
            agg_w[j, g] = (r["quantity"], r["quantity"] * b, r["quantity"] * b * mean_x)
    return agg_e, agg_w


def _price_underlying(name, params, records, choices, *, seed, n_paths, options):
    """Estimates for the trades of one underlying: one {column: value} dict per trade.

    ``choices`` (one dict per trade, Greek code -> estimator code or tuple of candidates) is
    resolved in place: a pilot run on its own random stream keeps, among candidates, the one
    with the lowest variance (ties keep the preference order)."""
    control_variate = options.pop("control_variate")
    records = [dict(r, control=_has_control(r, control_variate)) for r in records]
    arrays = _trade_arrays(records, control_variate)
    run = dict(key0=seed_key(seed), key1=name_key(name), options=options)

    # The pilot (its own random stream, never reused) picks auto estimators and fits the control
    # coefficients that the per-path totals use.
    piloted = [(j, g, e) for j, c in enumerate(choices) for g, cands in c.items()
               for e in (cands if isinstance(cands, tuple) else (cands,) if records[j]["control"]
                         else ())]
    piloted += [(j, G.PRICE, 0) for j, r in enumerate(records) if r["control"]]
    pilot_beta = {}
    if piloted:
        pilot, (_, pilot_se, _, beta), _ = _estimates(params, records, arrays, piloted,
                                                      stream=STREAM_PILOT,
                                                      n_paths=min(PILOT_PATHS, n_paths), run=run)
        pilot_beta = {key: beta[k] for k, key in enumerate(piloted)}
        for j, c in enumerate(choices):
            for g, cands in c.items():
                if isinstance(cands, tuple):
                    c[g] = min(cands, key=lambda e: pilot_se[pilot[j, g, e]])

    wanted = [(j, G.PRICE, 0) for j in range(len(records))]
    wanted += [(j, g, e) for j, c in enumerate(choices) for g, e in c.items()]
    totals = _totals_weights(records, choices, wanted,
                             np.array([pilot_beta.get(key, 0.0) for key in wanted]),
                             _control_means(records, params, wanted, options["bumps"]))
    slots, (mean, se, reduction, beta), (total, total_se) = _estimates(
        params, records, arrays, wanted, stream=STREAM_MAIN, n_paths=n_paths, run=run,
        totals=totals)
    rows, diagnostics = [], []
    for j, (r, c) in enumerate(zip(records, choices)):
        q = r["quantity"]
        row = {}
        for g, e in [(G.PRICE, 0)] + list(c.items()):
            quantity, k = G.QUANTITIES[g], slots[j, g, e]
            row[quantity] = q * mean[k]
            row[quantity + "_se"] = abs(q) * se[k]
            if g != G.PRICE:
                row["method_" + quantity] = G.ESTIMATORS[e]
            diagnostics.append({"trade_id": r["trade_id"], "quantity": quantity,
                                "method": G.ESTIMATORS[e] if g != G.PRICE else "",
                                "control": "geometric_asian" if r["control"] else "",
                                "control_beta": beta[k] if r["control"] else np.nan,
                                "variance_reduction": reduction[k]})
        rows.append(row)
    quantities = [G.QUANTITIES[g] for g in range(G.N_QUANTITIES)
                  if (totals[0][:, g] >= 0).any()]
    summary = {"trades": [r["trade_id"] for r in records],
               **{q: [float(total[G.QUANTITIES.index(q)]),
                      float(total_se[G.QUANTITIES.index(q)])] for q in quantities}}
    return rows, diagnostics, summary


def price_portfolio(trades, market, n_paths=100_000, seed=0, method="auto", steps_per_year=None,
                    *, control_variate=True, fd_bumps=None, diagnostics=False,
                    chunk_paths=1 << 16, block_paths=1 << 12):
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
      control_variate: arithmetic Asians take their geometric twin (closed form known, same
        dates, same path, same estimator) as a control variate for the price and every Greek,
        with the coefficient fitted on the same paths.
      fd_bumps: bump sizes of the ``fd`` estimator, overriding any of {"spot": 0.01 (of S0),
        "vol": 0.01 (of σ), "rate": 0.001, "maturity": 0.01 (of T)}.
      diagnostics: also return the diagnostics table (see Returns).
      chunk_paths, block_paths: paths per kernel call (bounds memory) and per parallel task;
        neither changes the result.

    Returns:
      DataFrame indexed by ``trade_id`` in input order with the columns of SPEC §2, position
      level (unit value × quantity).  Rows that cannot be priced carry the reason in ``error``.
      With ``diagnostics=True``, the pair (results, diagnostics): a DataFrame with one row per
      (trade_id, quantity) giving the estimator, the control variate and its fitted coefficient
      (control_beta), and the variance_reduction factor (variance without / with the control;
      1 without one).

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

    options = {"chunk_paths": chunk_paths, "block_paths": block_paths, "bumps": bump_sizes,
               "control_variate": control_variate}
    rows, notes, totals = [{} for _ in records], [], {}
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
            priced, underlying_notes, totals[name] = _price_underlying(
                name, params, [records[i] for i in priceable], [choices[i] for i in priceable],
                seed=seed, n_paths=int(n_paths), options=dict(options))
            for i, row in zip(priceable, priced):
                rows[i].update(row)
            notes += underlying_notes
    table = _table(rows, [r["trade_id"] for r in records])
    # Plain numbers only: attrs travel with the table (and into Parquet metadata).
    table.attrs["totals"] = totals
    if not diagnostics:
        return table
    order = {tid: i for i, tid in enumerate(table.index)}
    notes.sort(key=lambda d: order[d["trade_id"]])
    return table, pd.DataFrame(notes, columns=DIAGNOSTIC_COLUMNS).set_index(
        ["trade_id", "quantity"])


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


def aggregate(results, by="underlying"):
    """Sum position prices and Greeks per underlying and in total, with honest standard errors.

    Values are the sums of the rows.  Standard errors come from the per-path totals the engine
    carried while pricing (trades on one underlying share paths, so their errors are correlated:
    a long and a short of the same option net to an SE of 0), with an arithmetic Asian's control
    at its pilot coefficient (its SE then differs from that of the rows' own fit by a relative
    O(1/4096)).  Underlyings are simulated independently, so the total's SE adds in quadrature.

    Args:
      results: the DataFrame returned by ``price_portfolio``, unfiltered.
      by: "underlying" (a row per underlying and a "total" row) or None (the total only).
    Returns:
      DataFrame indexed by underlying (and "total") with n_trades and, per quantity, its sum and
      its ``_se``.  A quantity defined for only some underlyings (vega, the Heston d_*) is summed
      over those.
    Raises:
      ValueError: ``results`` lacks the per-path totals, or its rows no longer match them.
    """
    if by not in ("underlying", None):
        raise ValueError(f"by has value {by!r}: must be 'underlying' or None")
    totals = results.attrs.get("totals")
    if totals is None:
        raise ValueError("results carry no per-path totals: pass the DataFrame that "
                         "price_portfolio returned")
    out = {}
    for name, summary in totals.items():
        rows = results.loc[[t for t in summary["trades"] if t in results.index]]
        if len(rows) != len(summary["trades"]):
            raise ValueError(f"underlying {name!r}: results lack some of its priced trades; "
                             "aggregate the unfiltered results")
        entry = {"n_trades": len(rows)}
        for q in G.QUANTITIES:
            if q not in summary:
                entry[q], entry[q + "_se"] = np.nan, np.nan
                continue
            value, se = float(rows[q].sum()), summary[q][1]
            if abs(value - summary[q][0]) > 0.5 * se + 1e-9 * (abs(value) + 1.0):
                raise ValueError(f"underlying {name!r}: the rows' {q} no longer matches the "
                                 "priced portfolio; aggregate the unchanged results")
            entry[q], entry[q + "_se"] = value, se
        out[name] = entry
    table = pd.DataFrame.from_dict(out, orient="index",
                                   columns=["n_trades"] + [c for q in G.QUANTITIES
                                                           for c in (q, q + "_se")])
    total = {"n_trades": int(table["n_trades"].sum())}
    for q in G.QUANTITIES:
        total[q] = table[q].sum(min_count=1)
        total[q + "_se"] = float(np.sqrt((table[q + "_se"] ** 2).sum(min_count=1)))
    table.loc["total"] = pd.Series(total)
    table.index.name = by or "portfolio"
    return table.loc[["total"]] if by is None else table
