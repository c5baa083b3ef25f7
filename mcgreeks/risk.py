"""The long risk table: one row per (trade, measure), and its sums with honest standard errors.

The wide results table has a column per Greek; a risk system wants a row per number, keyed by
what it is a sensitivity to.  Each row names its ``measure`` (price, delta, ..., d_corr) and the
underlying it refers to; ``underlying_2`` is the second name of a measure that has two (a
cross-gamma, a pair correlation) and empty otherwise, so multi-asset measures take their place
without a change of schema.

Sums never mix underlyings: a delta is in shares of its own underlying, so deltas of two names do
not add.  Only measures in the same unit whatever the underlying (the price, rho and theta, all in
currency, per unit of rate and per year) have a portfolio total.
"""
import numpy as np
import pandas as pd

from mcgreeks import greeks as G

RISK_COLUMNS = ["trade_id", "measure", "underlying", "underlying_2", "value", "se", "method"]
AGGREGATE_COLUMNS = ["measure", "underlying", "underlying_2", "n_trades", "value", "se"]
#: Measures with a portfolio total, in the same unit on every underlying.
PORTFOLIO_MEASURES = ("price", "rho", "theta")
#: The ``underlying`` label of a portfolio total row, and of a simulation group's own totals in
#: the per-path totals (``underlying.GROUP_TOTAL``).
TOTAL = GROUP_TOTAL = "total"


class Totals(list):
    """The per-path totals a results or risk table carries in ``attrs["totals"]``: a list of
    dicts (measure, underlying, underlying_2, value, se, trades, job), one per measure and
    underlying or simulation group, which ``aggregate`` and ``aggregate_risk`` sum from.

    pandas deep-copies ``attrs`` on every operation that makes a new frame or column (pandas
    3.1's ``__finalize__``): with 2,400 totals (400 underlyings) a column access took 16 ms,
    and the code that walked the table row by row grew with the square of the book.  A copy of
    Totals is a new list of the same dicts, which are records of what was priced and are not to
    be edited.  It is a list to everything else (equality, JSON in Parquet metadata, pickling)."""

    def __deepcopy__(self, memo):
        return Totals(self)


def risk_label(record):
    """The ``underlying`` of a trade's rows that are not per name (price, rho, theta; and every
    row of a single-asset trade): its underlying, or a multi-asset trade's names joined by
    ``;`` in name order, so that one basket written in two orders nets."""
    names = record.get("underlyings")
    return ";".join(sorted(names)) if names else record["underlying"]


def risk_table(results, records, legs=None):
    """The long risk table of a ``price_portfolio`` result.

    Args:
      results: the wide results (index trade_id, attrs["totals"] as ``price_portfolio`` sets).
      records: the clean trade records in the results' row order (None for a bad row).
      legs: per row, a multi-asset trade's per-name measures (measure, underlying,
        underlying_2, value, se, method), which have no column of the wide table.
    Returns:
      DataFrame with columns ``RISK_COLUMNS``, one row per (priced trade, measure computed), in
      trade order then column order (a multi-asset trade: price, its per-name measures, rho,
      theta); value and se at position level, as in ``results``.  Its attrs["totals"] lists,
      per (measure, underlying, underlying_2), the sum and the standard error from per-path
      totals that ``aggregate_risk`` uses (and each simulation group's own totals).
    """
    measures = [q for q in G.QUANTITIES if q in results.columns]
    legs = legs or [()] * len(results)
    # the columns once, as arrays: a row at a time, pandas makes a Series per row
    column = {c: results[c].to_numpy() for c in results.columns}
    rows = []
    for i, (trade_id, r, extra) in enumerate(zip(results.index, records, legs)):
        if r is None or column["error"][i]:
            continue
        for q in measures:
            value = column[q][i]
            if np.isnan(value):             # not defined by this trade's model
                continue
            method = column["method_" + q][i] if q != "price" and "method_" + q in column \
                else ""
            rows.append((trade_id, q, risk_label(r), "", value, column[q + "_se"][i], method))
            if q == "price":
                rows += [(trade_id, *leg) for leg in extra]
    table = pd.DataFrame(rows, columns=RISK_COLUMNS)
    table = table.astype({"value": float, "se": float})
    table.attrs["totals"] = Totals(dict(t) for t in results.attrs.get("totals", ()))
    return table


def portfolio_se(totals, measure):
    """The standard error of ``measure`` (one of ``PORTFOLIO_MEASURES``) summed over the whole
    portfolio, from the per-path totals ``totals`` (a results' or risk table's
    attrs["totals"]): per simulation group its own total's (an underlying alone: its total's),
    in quadrature across groups, which are simulated independently."""
    per_job = {}
    for t in totals:
        if t["measure"] == measure and (t["underlying"] == GROUP_TOTAL
                                        or t["job"] not in per_job):
            per_job[t["job"]] = t["se"]
    return float(np.sqrt(sum(se ** 2 for se in per_job.values()))) if per_job else np.nan


def aggregate_risk(risk):
    """Sum the long risk table per (measure, underlying, underlying_2), with standard errors.

    Values are the sums of the rows; standard errors come from the per-path totals carried while
    pricing (trades on one underlying, or on the names of one simulation group, share paths, so
    their errors are correlated and do not add in quadrature).  Rows with underlying "total" add
    price, rho and theta over the portfolio (``portfolio_se``).

    Args:
      risk: the risk table ``price_portfolio(..., risk=True)`` returned, unfiltered.
    Returns:
      DataFrame with columns ``AGGREGATE_COLUMNS``, per-underlying rows in the order of the
      per-path totals (simulation group by group, as their trades fill them), then the total
      rows.
    Raises:
      ValueError: ``risk`` lacks its per-path totals, or its rows no longer match them.
    """
    totals = risk.attrs.get("totals")
    if totals is None:
        raise ValueError("risk carries no per-path totals: pass the table that "
                         "price_portfolio(..., risk=True) returned")
    # the rows of each (measure, underlying, underlying_2), in table order, found in one pass
    keys = zip(risk["measure"].to_numpy(), risk["underlying"].to_numpy(),
               risk["underlying_2"].to_numpy())
    rows_of = {}
    for i, key in enumerate(keys):
        rows_of.setdefault(key, []).append(i)
    trade_ids, values = risk["trade_id"].to_numpy(), risk["value"].to_numpy()
    rows = []
    for t in totals:
        if t["underlying"] == GROUP_TOTAL:
            continue
        part = rows_of.get((t["measure"], t["underlying"], t["underlying_2"]), [])
        if sorted(trade_ids[part]) != sorted(t["trades"]):
            raise ValueError(f"underlying {t['underlying']!r}: risk lacks some of the rows of "
                             f"{t['measure']}; aggregate the unfiltered table")
        value = float(np.nansum(values[part]))      # pandas' sum: NaN skipped
        check_sum(value, t["value"], t["se"], f"underlying {t['underlying']!r}: the rows' "
                  f"{t['measure']}")
        rows.append((t["measure"], t["underlying"], t["underlying_2"], len(part), value, t["se"]))
    table = pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)
    total = [(q, TOTAL, "", int(part["n_trades"].sum()), float(part["value"].sum()),
              portfolio_se(totals, q))
             for q in PORTFOLIO_MEASURES
             for part in [table[table["measure"] == q]] if len(part)]
    return pd.concat([table, pd.DataFrame(total, columns=AGGREGATE_COLUMNS)],
                     ignore_index=True)


def check_sum(value, carried, se, what):
    """Raise ValueError when a sum of rows differs from the per-path total carried for it beyond
    rounding (half its SE): the rows were edited after pricing."""
    if abs(value - carried) > 0.5 * se + 1e-9 * (abs(value) + 1.0):
        raise ValueError(f"{what} no longer matches the priced portfolio; aggregate the "
                         "unchanged results")
