"""Checking the trades and market tables against the rules of docs/reference.md#input-errors.

Every problem is reported as one line naming the trade (or underlying), the column and the value,
so a nightly job's log says exactly which input row to fix.  Checks return the problems per row
rather than stopping at the first, so a caller may fail on the first one or skip bad rows.
"""
import math

import numpy as np
import pandas as pd

from mcgreeks.models import COMMON_PARAMETERS, MODELS
from mcgreeks.payoffs import KINDS, MULTI_ASSET, reads_fixings

OPTION_TYPES = ("call", "put")
BARRIER_TYPES = ("up_out", "up_in", "down_out", "down_in")
MONITORING = ("discrete", "continuous")

TRADE_COLUMNS = ("trade_id", "underlying", "payoff", "option_type", "strike", "maturity")
MARKET_COLUMNS = ("underlying", "model", "spot", "rate")


class InputError(ValueError):
    """Input that breaks a rule of docs/reference.md#input-errors; the message names the row,
    the column and the value."""


#: At most this many problems are listed in one error; the rest are counted.
REPORT_LIMIT = 20


def raise_problems(problems, table, limit=REPORT_LIMIT):
    """Raise one InputError reporting every problem, or return if there is none.

    ``problems`` holds one line per problem, or per row the list of its lines (as
    ``check_trades`` returns them); ``table`` names the table ("trades", "market").  A single
    problem is its own one-line message.  Several give a first line counting them (and the
    rows, for per-row lists), then one line each, at most ``limit`` of them, then
    "... and N more".
    """
    rows = [p if isinstance(p, list) else [p] for p in problems]
    rows = [r for r in rows if r]
    lines = [line for r in rows for line in r]
    if not lines:
        return
    if len(lines) == 1:
        raise InputError(lines[0])
    per_row = any(isinstance(p, list) for p in problems)
    head = (f"{len(lines)} problems in the {table} table"
            + (f" ({len(rows)} rows)" if per_row and len(rows) != len(lines) else "") + ":")
    shown = [f"  {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... and {len(lines) - limit} more")
    raise InputError("\n".join([head] + shown))


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip() == "") or value is pd.NA


def _number(value):
    """The value as a float, or None if it is not a number (bools are not numbers)."""
    if isinstance(value, (bool, np.bool_)) or _missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value):
    return None if _missing(value) else str(value).strip()


def _describe(value):
    return "empty" if _missing(value) else repr(value.item() if hasattr(value, "item") else value)


class _Row:
    """One input row being checked: collects problems in the row's own words."""

    def __init__(self, label, record):
        self.label, self.record, self.problems = label, record, []

    def fail(self, column, why):
        value = self.record.get(column)
        self.problems.append(f"{self.label}: column '{column}' has value {_describe(value)}: {why}")

    def number(self, column, *, default=None, low=None, low_open=True, high=None):
        raw = self.record.get(column)
        if _missing(raw) and default is not None:
            return default
        x = _number(raw)
        if x is None or not math.isfinite(x):
            self.fail(column, "must be a finite number")
        elif low is not None and (x <= low if low_open else x < low):
            self.fail(column, f"must be {'>' if low_open else '>='} {low:g}")
        elif high is not None and x > high:
            self.fail(column, f"must be <= {high:g}")
        else:
            return x
        return None

    def choice(self, column, allowed, *, default=None):
        raw = _text(self.record.get(column))
        value = default if raw is None else raw.lower()
        if value not in allowed:
            self.fail(column, "must be one of " + ", ".join(allowed))
            return None
        return value


def _require(table, columns, what):
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{what}: required column '{missing[0]}' is missing")


def check_market(market):
    """Validate the market table.

    Returns (params, bad): {underlying: parameters dict} for the good rows, and {underlying:
    first problem} for the bad ones (a duplicated name is bad: which row would apply?), and the
    list of all problems in row order.  Raises InputError for a missing column."""
    _require(market, MARKET_COLUMNS, "market")
    out, bad, problems = {}, {}, []
    for number, record in enumerate(market.to_dict("records"), start=1):
        name = _text(record.get("underlying"))
        row = _Row(f"underlying {name!r}" if name is not None else f"market row {number}", record)
        if name is None:
            row.fail("underlying", "must be a non-empty name")
        elif name in out or name in bad:
            row.fail("underlying", "duplicate underlying")
            out.pop(name, None)
        model = row.choice("model", tuple(MODELS))
        own = MODELS[model].parameters if model else ()
        params = {"model": model,
                  **{p.name: row.number(p.name, **p.bounds()) for p in COMMON_PARAMETERS + own}}
        problems += row.problems
        if row.problems:
            bad.setdefault(name, row.problems[0])
        elif name not in bad:
            out[name] = params
    return out, bad, problems


#: The ``exercise`` column's values (docs/reference.md#trades).
EXERCISE_STYLES = ("european", "bermudan", "american")


#: Payoffs early exercise is offered for (docs/reference.md#early-exercise), and those it is
#: built for so far.
EXERCISABLE = ("european", "basket", "best_of", "worst_of", "spread")
EXERCISE_BUILT = EXERCISABLE


def _exercise_dates(row, exercise, payoff):
    """The number of exercise dates of a Bermudan (its ``n_exercise``; None for an American,
    whose dates are the simulation grid's, ``portfolio``), with the row's problems: a payoff
    early exercise is not offered for, a missing or bad ``n_exercise``."""
    if payoff is not None and payoff not in EXERCISABLE:
        return row.fail("exercise", f"early exercise is offered for {', '.join(EXERCISABLE)} "
                                    f"payoffs, not {payoff}")
    if payoff is not None and payoff not in EXERCISE_BUILT:
        return row.fail("exercise", f"early exercise of {payoff} payoffs is not built yet")
    if exercise != "bermudan":
        return None
    if _missing(row.record.get("n_exercise")):
        row.fail("n_exercise", "required for a bermudan: its number of exercise dates")
        return None
    n = row.number("n_exercise", low=1.0, low_open=False)
    if n is not None and n != int(n):
        row.fail("n_exercise", "must be a whole number")
    return None if n is None else int(n)


def check_trades(trades, market, bad_market=None):
    """Validate the trades table against the checked market (``bad_market``: {underlying:
    problem} of invalid market rows, whose trades cannot be priced).

    Returns (records, problems): one dict of clean values per input row (None where the row is
    bad) and, per row, the list of its problems in input order.
    """
    _require(trades, TRADE_COLUMNS, "trades")
    records, problems, seen = [], [], set()
    for number, record in enumerate(trades.to_dict("records"), start=1):
        tid = _text(record.get("trade_id"))
        row = _Row(f"trade {tid!r}" if tid is not None else f"trade in row {number}", record)
        if tid is None:
            row.fail("trade_id", "must be a non-empty id")
        elif tid in seen:
            row.fail("trade_id", "duplicate trade_id")
        seen.add(tid)
        underlying = _text(record.get("underlying"))
        raw_payoff = (_text(record.get("payoff")) or "").lower()
        legs = None
        if KINDS.get(raw_payoff) in MULTI_ASSET:
            # import here: correlation builds on this module's row checks
            from mcgreeks.correlation import multi_asset_cells
            legs = multi_asset_cells(row, raw_payoff, market, bad_market)
        elif underlying in (bad_market or {}):
            row.fail("underlying", f"its market row is invalid ({bad_market[underlying]})")
        elif underlying not in market:
            row.fail("underlying", "no such underlying in the market table")
        payoff = row.choice("payoff", tuple(KINDS))
        clean = {"trade_id": tid, "underlying": underlying, "payoff": payoff,
                 "option_type": row.choice("option_type", OPTION_TYPES),
                 # a spread's strike may be 0: the exchange option
                 "strike": row.number("strike", low=0.0, low_open=payoff != "spread"),
                 "maturity": row.number("maturity", low=0.0),
                 "quantity": row.number("quantity", default=1.0),
                 "cash": row.number("cash", default=1.0) if payoff == "digital" else 1.0}
        if legs is not None:
            clean["underlyings"], clean["weights"] = legs["underlyings"], legs["weights"]
            clean["underlying"] = ";".join(legs["underlyings"])
        if payoff == "barrier":
            clean["barrier"] = row.number("barrier", low=0.0)
            clean["barrier_type"] = row.choice("barrier_type", BARRIER_TYPES)
            clean["monitoring"] = row.choice("monitoring", MONITORING, default="discrete")
        exercise = row.choice("exercise", EXERCISE_STYLES, default="european")
        if exercise not in (None, "european"):
            clean.update(exercise=exercise, n_exercise=_exercise_dates(row, exercise, payoff))
        if payoff is not None and reads_fixings(KINDS[payoff],
                                                clean.get("monitoring") == "continuous"):
            n = row.number("n_fixings", low=1.0, low_open=False)
            if n is not None and n != int(n):
                row.fail("n_fixings", "must be a whole number")
            clean["n_fixings"] = None if n is None else int(n)
        records.append(None if row.problems else clean)
        problems.append(row.problems)
    return records, problems

