"""Portfolio pricing: DataFrames in, one row per trade out (docs/reference.md#output-columns), and
aggregation.

This layer validates the tables, turns them into plain records once, hands each underlying's
pricing to ``underlying`` (here, or on a Dask cluster through ``distributed``), and turns the
results back into one DataFrame.  It holds no numerics beyond sums of rows.
"""
import numpy as np
import pandas as pd

from mcgreeks import engine, underlying
from mcgreeks import greeks as G
from mcgreeks.correlation import check_correlations, group_matrix, simulation_groups, \
    singular_legs
from mcgreeks.correlation import groups as correlation_groups
from mcgreeks.estimators import fd
from mcgreeks.exercise_policy import PILOT_PATHS, american_dates
from mcgreeks.estimators.selection import choices, greek_plan, method_plan, multi_asset_choices
from mcgreeks.models import MODELS
from mcgreeks.risk import PORTFOLIO_MEASURES, Totals, check_sum, portfolio_se, risk_table
from mcgreeks.rng import seed_key
from mcgreeks.validation import InputError, check_market, check_trades, raise_problems



def columns(quantities):
    """The results' columns for the quantity codes present (price first), in docs order."""
    names = [G.QUANTITIES[g] for g in sorted(set(quantities) | {G.PRICE})]
    return (names + [q + "_se" for q in names] + ["method_" + q for q in names[1:]]
            + ["error", "warning"])


#: Every column price_portfolio can return (``greeks="all"`` on a book with every model).
COLUMNS = columns(range(G.N_QUANTITIES))

DIAGNOSTIC_COLUMNS = ["trade_id", "quantity", "method", "weight", "control",
                      "control_beta", "variance_reduction", "se_uncertainty",
                      "largest_tile_share", "reason"]
ON_ERROR = ("fail", "skip")


SAMPLERS = ("mc", "antithetic", "sobol")


def _check_sampler(sampler, randomizations, n_paths):
    if sampler not in SAMPLERS:
        raise InputError(f"sampler has value {sampler!r}: must be one of " + ", ".join(SAMPLERS))
    if sampler == "antithetic" and n_paths % 2:
        raise InputError(f"n_paths has value {n_paths!r}: with sampler 'antithetic' it must be "
                         f"even (paths come in reflected pairs), e.g. {n_paths + 1}")
    if sampler != "sobol":
        return
    if isinstance(randomizations, bool) or int(randomizations) != randomizations \
            or randomizations < 2:
        raise InputError(f"randomizations has value {randomizations!r}: must be a whole number "
                         ">= 2 (the standard error comes from the spread across them)")
    per = n_paths // randomizations
    power = per >= engine.TILE and per & (per - 1) == 0
    if n_paths % randomizations or not (power or per % engine.SEGMENT == 0):
        good = randomizations * max(engine.TILE, 1 << max(0, int(per).bit_length() - 1))
        raise InputError(f"n_paths has value {n_paths!r}: with sampler 'sobol' it must be "
                         f"randomizations ({randomizations}) × a power of two >= {engine.TILE} "
                         f"(Sobol points are balanced in powers of two), e.g. {good}")


def _group_sampler(sampler, model, group):
    """The sampler a simulation group takes: the one asked, but Monte Carlo where its model
    has no such sampler, and for Sobol in a group of several (its kernels take one name's
    points)."""
    if sampler not in MODELS[model].samplers or (sampler == "sobol" and len(group) > 1):
        return "mc"
    return sampler


def _check_arguments(n_paths, steps_per_year, seed, fd_bumps, on_error):
    if isinstance(n_paths, bool) or int(n_paths) != n_paths or n_paths < 2:
        raise InputError(f"n_paths has value {n_paths!r}: must be a whole number >= 2")
    if steps_per_year is not None and not steps_per_year > 0:
        raise InputError(f"steps_per_year has value {steps_per_year!r}: must be > 0")
    if on_error not in ON_ERROR:
        raise InputError(f"on_error has value {on_error!r}: must be one of " + ", ".join(ON_ERROR))
    try:
        seed_key(seed)
        return {name: model.bump_sizes(fd_bumps) for name, model in MODELS.items()}
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _validated(trades, market, correlations, plan, on_error, sampler, asked,
               steps_per_year=None):
    """Clean records (None for a bad row), per-row problems and the correlations' pairs; with
    on_error="fail", raise instead, listing every problem of the market table, or else of the
    trades table.  A bad correlations table raises whatever ``on_error`` says: pricing without
    a row of it would simulate a pair as independent."""
    market_params, bad_market, market_problems = check_market(market)
    if on_error == "fail":
        raise_problems(market_problems, "market")
    pairs = []
    if correlations is not None:
        pairs = check_correlations(correlations, market_params, bad_market)
        simulation_groups(sorted(market_params), pairs)    # each group's matrix is PSD
    records, problems = check_trades(trades, market_params, bad_market)
    for r in records:
        if r is not None and r.get("exercise") == "american":
            r["n_exercise"] = american_dates(r["maturity"], steps_per_year)
    mixed = _mixed_group_members(records, market_params, pairs)
    picks = []
    for r, p in zip(records, problems):
        pick = None
        if r is not None:
            try:
                if r.get("underlyings"):
                    singular = singular_legs(r, pairs)
                    if singular:
                        raise InputError(singular)
                    pick = multi_asset_choices(r, plan, asked,
                                               [market_params[n] for n in r["underlyings"]])
                else:
                    params = market_params[r["underlying"]]
                    pick = choices(r, plan, params["model"], params, sampler, asked,
                                   blends=r["underlying"] not in mixed)
            except InputError as exc:
                p.append(str(exc))
        picks.append(pick)
    if on_error == "fail":
        raise_problems(problems, "trades")
    return market_params, records, problems, picks, pairs


def _mixed_group_members(records, market_params, pairs):
    """{name: its group's Heston names} for each GBM underlying simulated together with a
    Heston one (``correlation.groups`` over the good records): the Heston kernel prices its
    trades, with GBM's estimators but no GBM pilot, so without the optimal blend."""
    together = [r["underlyings"] for r in records if r is not None and r.get("underlyings")]
    out = {}
    for group in correlation_groups(sorted(market_params), pairs, together):
        heston = [n for n in group if market_params[n]["model"] == "heston"]
        if heston:
            out.update({n: heston for n in group if market_params[n]["model"] == "gbm"})
    return out


def _jobs(records, picks, market_params, pairs, settings):
    """One ``underlying.Job`` per simulation group with good trades (``correlation.groups``:
    underlyings linked by a nonzero correlation or by a multi-asset trade), and per job the
    row numbers of its trades in input order.  A group of one underlying is priced as before
    correlations existed, to the bit; a larger one on Monte Carlo paths of its members'
    streams mixed by its Cholesky factor.  ``settings``: the Job's engine options, with
    ``bumps`` per model and the ``sampler`` asked."""
    good = [i for i, (r, pick) in enumerate(zip(records, picks))
            if r is not None and pick is not None]
    together = [records[i]["underlyings"] for i in good if records[i].get("underlyings")]
    # every good underlying, traded or not: a group's paths do not depend on which of its
    # members the book trades
    names = sorted(market_params)
    # their matrices were checked in _validated; each Job factors its own
    groups = correlation_groups(names, pairs, together)
    group_of = {name: g for g, group in enumerate(groups) for name in group}

    def kernel_model(group):       # a group with a Heston member runs the Heston kernel
        models = [market_params[name]["model"] for name in group]
        return "heston" if "heston" in models else models[0]

    # one compiled kernel per model and run: the multi-asset one for every job of a model that
    # has multi-asset trades in the book
    with_legs = {kernel_model(groups[group_of[t[0]]]) for t in together}
    trades_of = {}                  # group -> its good rows, in input order
    for i in good:
        first = records[i].get("underlyings", (records[i]["underlying"],))[0]
        trades_of.setdefault(group_of[first], []).append(i)
    jobs, members = [], []
    for g, idx in trades_of.items():
        group = groups[g]
        place = {name: a for a, name in enumerate(group)}
        params = [market_params[name] for name in group]
        model = kernel_model(group)
        lead = next(p for p in params if p["model"] == model)
        options = dict(settings, bumps=settings["bumps"][model], with_legs=model in with_legs,
                       sampler=_group_sampler(settings["sampler"], model, group))
        records_ = [dict(r, legs=tuple(place[n] for n in r["underlyings"]))
                    if r.get("underlyings") else dict(r, asset=place[r["underlying"]])
                    for r in (records[i] for i in idx)]
        options.update(members=group, member_params=params,
                       correlation=group_matrix(group, pairs),
                       member_bumps=settings["bumps"]["gbm"] if model != "gbm" else None)
        jobs.append(underlying.Job(";".join(group), lead, records_, [picks[i] for i in idx],
                                   **options))
        members.append(idx)
    return jobs, members      # in the order of their first trades, as the tables list them


def price_portfolio(trades, market, n_paths=100_000, seed=0, method="auto", steps_per_year=None,
                    *, scheme="qe", control_variate=True, lr_baseline=True, sampler="mc",
                    randomizations=16, fd_bumps=None, on_error="fail", greeks="all",
                    risk=False, correlations=None, client=None, progress=None, diagnostics=False,
                    upper_bound=False, pilot_paths=None, chunk_paths=engine.CHUNK_PATHS,
                    block_paths=1 << 12):
    """Price every trade and its Greeks, each with its Monte Carlo standard error.

    Args:
      trades, market: DataFrames with the columns of docs/reference.md#trades and
        docs/reference.md#market.
      n_paths: Monte Carlo paths per underlying (trades on one underlying share them).
      seed: integer in [0, 2**64); with the inputs it fixes every bit of the result, whatever the
        thread count, ``chunk_paths``, ``block_paths`` or cluster.
      method: ``"auto"``, an estimator name (used for every Greek it estimates; the others stay
        auto), or a dict {greek: name}.  Estimators: pathwise, lr, mixed (gamma), fd, and
        optimal (GBM: per path w·pathwise + (1 - w)·lr, mixed for gamma, with the w of least
        variance fitted on a pilot run of its own random stream).  auto takes optimal wherever
        two unbiased estimators exist, else the valid one (Heston: the one with the lowest
        pilot variance; fd only when nothing else is valid).  An estimator that is invalid for
        a trade's payoff is an input error.
      steps_per_year: time steps per year of Heston paths (default 52; payoff dates are always
        on the grid); GBM paths are exact and ignore it.
      scheme: Heston discretization, "qe" (Andersen's quadratic-exponential with martingale
        correction) or "euler" (full truncation).
      control_variate: arithmetic Asians take their geometric twin (closed form known, same
        dates, same path, same estimator) as a control variate for the price and every Greek,
        with the coefficient fitted on the same paths.
      lr_baseline: GBM likelihood-ratio estimates (lr and optimal) subtract a baseline, a
        combination of mean-zero functions of the path's scores with coefficients fitted on the
        pilot paths (``mcgreeks.estimators.optimal``): unbiased, and never noisier than plain lr
        beyond the pilot's noise.
      sampler: "mc" (Monte Carlo: the counter-based generator, one independent path per path
        number), "antithetic" (Monte Carlo in pairs: path 2k + 1 is driven by the negated
        normals of path 2k, every model, payoff and estimator; each pair's mean is one sample
        of the standard error, n_paths must be even; Glasserman 2004, §4.2) or "sobol": randomized quasi-Monte Carlo for GBM underlyings (Heston ones keep
        Monte Carlo), ``randomizations`` independent scramblings of Sobol points with the
        Brownian-bridge construction; n_paths is split evenly among them, each gets a power of
        two points, and the standard errors come from the spread of the scramblings'
        estimates, so they are honest but rest on ``randomizations`` - 1 degrees of freedom.  With sobol, a control variate's
        coefficient is the pilot's (on Monte Carlo paths of its own stream).
      randomizations: number of independent scramblings for sobol (default 16).
      fd_bumps: bump sizes of the ``fd`` estimator, overriding any of {"spot": 0.01 (of S0),
        "vol": 0.01 (of σ), "rate": 0.001, "maturity": 0.01 (of T; 0.1 under Heston)} and, for
        Heston, "v0", "kappa", "vbar", "xi" (0.1, relative: see
        ``estimators.fd.HESTON_BUMPS``) and "corr" (0.01, absolute).
      on_error: "fail" raises, listing every bad row; "skip" prices the good rows and gives each
        bad one its reason in ``error`` (NaN numbers).
      greeks: "all" (default), "none" (the price alone) or the Greeks wanted, as a list or one
        comma-separated string ("delta,vega,d_xi").  Only those are computed: the kernels skip
        the tangents, scores and re-simulations nobody asked for.  The columns of a Greek not
        asked, or defined by no model in the book (vega without a GBM underlying, d_* without a
        Heston one), are absent.
      risk: also return the long risk table (``mcgreeks.risk``): one row per (trade, measure)
        computed, with columns trade_id, measure, underlying, underlying_2, value, se, method;
        ``mcgreeks.aggregate_risk`` sums it per (measure, underlying, underlying_2).  A
        multi-asset trade's per-name and per-pair measures (delta, gamma, vega, cross_gamma,
        d_pair_corr) are there only.
      correlations: DataFrame (underlying_1, underlying_2, corr) of docs/reference.md#correlations,
        or None.  Underlyings linked by a nonzero correlation or by a multi-asset trade
        (basket, best_of, worst_of, spread) are simulated together on correlated paths; an
        underlying in no such group keeps its numbers to the bit.
      client: a ``dask.distributed.Client``; underlyings (and large underlyings' path ranges)
        are then priced on its cluster, with the same result to the bit.
      progress: called as ``progress(name, n_trades)`` after each simulation group is priced
        (an underlying alone: its name; a group: its names joined by ``;``).
      diagnostics: also return the diagnostics table (see Returns).
      upper_bound: for each Bermudan or American trade, also the Andersen-Broadie dual upper
        bound of its value (``mcgreeks.dual_bound``, 1,000 outer paths with 200 inner paths
        each, under the first of its fitted policies) in the columns ``upper_bound``,
        ``upper_bound_se`` and ``duality_gap`` (upper bound - price), ``duality_gap_se``:
        the price is a lower bound, so the gap says how far from the option's value the
        policies could be (docs/reference.md#early-exercise).
      pilot_paths: the pilot paths each Bermudan or American trade's exercise policies are
        fitted on, in all (default ``exercise_policy.PILOT_PATHS``, 262,144, whatever
        ``n_paths``; at least 1,024): fewer fit faster and worse.
      chunk_paths, block_paths: paths per kernel call (at most; ``engine.call_size`` and the
        model's ``call_paths`` bound a call's memory and time) and per parallel task; neither
        changes the result.

    Returns:
      DataFrame indexed by ``trade_id`` in input order with the columns of
      docs/reference.md#output-columns, position
      level (unit value × quantity), for the quantities asked (``greeks``).  Rows that cannot be priced carry the reason in ``error``.
      ``warning`` names every column whose standard error failed the tail test on the main run
      (its own relative error, from the spread of 128-path tiles, above 20 %: heavy tails), or
      is empty.  ``aggregate(results)`` sums it per underlying with standard errors from
      per-path totals.
      With ``diagnostics=True``, the pair (results, diagnostics): a DataFrame with one row per
      (trade_id, quantity) giving the estimator, the optimal blend's weight w on pathwise/mixed
      (NaN for other estimators), the control
      variate and its fitted coefficient (control_beta), the variance_reduction factor
      (variance without / with the control; 1 without one), se_uncertainty (the relative error
      of the SE itself, ``engine.se_reliability``), largest_tile_share (of the sum of squares)
      and reason (for an auto choice made on the pilot: what the pilot measured).
      With ``risk=True``, (results, risk), or (results, risk, diagnostics) with both.

    Raises:
      InputError: (with on_error="fail") a table breaks a rule of docs/reference.md#input-errors
        or ``method`` is invalid for a trade; the message names the trade or underlying, the
        column and the value, one line per problem (at most
        ``validation.REPORT_LIMIT``, the rest counted) after a first line counting them when
        there are several.  Bad arguments and missing columns raise whatever ``on_error`` says.
    """
    bumps = _check_arguments(n_paths, steps_per_year, seed, fd_bumps, on_error)
    if pilot_paths is None:
        pilot_paths = PILOT_PATHS
    if isinstance(pilot_paths, bool) or int(pilot_paths) != pilot_paths or pilot_paths < 1024:
        raise InputError(f"pilot_paths has value {pilot_paths!r}: must be a whole number "
                         ">= 1024")
    _check_sampler(sampler, randomizations, int(n_paths))
    asked = greek_plan(greeks)
    plan = method_plan(method, asked)
    market_params, records, problems, picks, pairs = _validated(
        trades, market, correlations, plan, on_error, sampler, asked, steps_per_year)

    rows = [{"error": "; ".join(p)} if p else {} for p in problems]
    trade_ids = _unique([r["trade_id"] if r else _trade_label(trades, i)
                         for i, r in enumerate(records)])
    if scheme not in ("qe", "euler"):
        raise InputError(f"scheme has value {scheme!r}: must be qe or euler")
    pair_bump = fd_bumps.get("pair_corr", fd.PAIR_CORR_ABS) if isinstance(fd_bumps, dict) \
        else fd.PAIR_CORR_ABS
    jobs, members = _jobs(records, picks, market_params, pairs, dict(
        seed=seed, n_paths=int(n_paths), bumps=bumps, control_variate=control_variate,
        lr_baseline=lr_baseline, sampler=sampler, randomizations=int(randomizations),
        chunk_paths=chunk_paths, block_paths=block_paths, steps_per_year=steps_per_year,
        scheme=scheme, pair_bump=pair_bump, upper_bound=bool(upper_bound),
        pilot_paths=int(pilot_paths)))

    def report(job):
        if progress:
            progress(job.name, len(job.records))

    if client is None:
        priced = []
        for job in jobs:
            priced.append(underlying.price(job))
            report(job)
    else:
        from mcgreeks.distributed import price_jobs
        priced = price_jobs(client, jobs, report)

    notes, totals = [], []
    for job, idx, (job_rows, job_notes, job_totals) in zip(jobs, members, priced):
        for i, row in zip(idx, job_rows):
            rows[i].update(row)
        notes += job_notes
        totals += job_totals
    models = {market_params[n]["model"] for r in records if r is not None
              for n in r.get("underlyings", (r["underlying"],))} or \
        {p["model"] for p in market_params.values()}
    defined = {g for m in models for g in MODELS[m].greeks}
    table = _table(rows, trade_ids, [g for g in asked if g in defined], upper_bound)
    # Plain numbers only: attrs travel with the table (and into Parquet metadata).
    table.attrs["totals"] = Totals(totals)
    out = (table,)
    if risk:
        out += (risk_table(table, records, [r.get("risk", ()) for r in rows]),)
    if diagnostics:
        order = {tid: i for i, tid in enumerate(table.index)}
        notes.sort(key=lambda d: order[d["trade_id"]])
        out += (pd.DataFrame(notes, columns=DIAGNOSTIC_COLUMNS).set_index(
            ["trade_id", "quantity"]),)
    return out if len(out) > 1 else table


def _unique(labels):
    """Labels made unique (a skipped duplicate id gets its row number) so the index is a key."""
    seen, out = set(), []
    for i, label in enumerate(labels):
        out.append(label if label not in seen else f"{label} <row {i + 1}>")
        seen.add(out[-1])
    return out


def _trade_label(trades, i):
    """The trade_id of a bad row as written (or its row number if it has none)."""
    value = trades["trade_id"].iloc[i] if "trade_id" in trades.columns else None
    text = None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return text.strip() if text and text.strip() else f"<row {i + 1}>"


#: The columns of the dual upper bound (``price_portfolio(upper_bound=True)``).
BOUND_COLUMNS = ["upper_bound", "upper_bound_se", "duality_gap", "duality_gap_se"]


def _table(rows, trade_ids, quantities, upper_bound=False):
    """The results DataFrame (docs/reference.md#output-columns) from one dict per trade, with
    the columns of the price and the Greek codes ``quantities`` (absent numbers are NaN), and
    with ``upper_bound`` the dual bound's before error and warning."""
    index = pd.Index(trade_ids, name="trade_id", dtype=object)
    data = {}
    names = columns(quantities)
    if upper_bound:
        names = names[:-2] + BOUND_COLUMNS + names[-2:]
    for col in names:
        if col in ("error", "warning") or col.startswith("method_"):
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
      DataFrame indexed by underlying (and "total") with n_trades and, per quantity in
      ``results``, its sum and its ``_se`` (NaN where the underlying's model lacks it).  The
      "total" row carries only price, rho and theta: a delta or a model sensitivity is per unit
      of its own underlying's spot or parameter, and those of different names do not add
      (``mcgreeks.risk``).
    Raises:
      ValueError: ``results`` lacks the per-path totals, or its rows no longer match them.
    """
    if by not in ("underlying", None):
        raise ValueError(f"by has value {by!r}: must be 'underlying' or None")
    totals = results.attrs.get("totals")
    if totals is None:
        raise ValueError("results carry no per-path totals: pass the DataFrame that "
                         "price_portfolio returned")
    measures = [q for q in G.QUANTITIES if q in results.columns]
    # the rows and columns once, as arrays: pandas copies attrs["totals"] with every frame or
    # column it makes, so a selection per underlying and measure grew with the square of the book
    position = {tid: i for i, tid in enumerate(results.index)}
    column = {q: results[q].to_numpy() for q in measures}
    by_name = {}                   # underlying label -> {measure: its per-path total}
    for t in totals:
        if t["underlying"] != underlying.GROUP_TOTAL and not t["underlying_2"] \
                and t["measure"] in measures:
            by_name.setdefault(t["underlying"], {})[t["measure"]] = t
    out = {}
    for name, summary in by_name.items():
        entry = {"n_trades": len({tid for t in summary.values() for tid in t["trades"]})}
        for q in measures:
            if q not in summary:
                entry[q], entry[q + "_se"] = np.nan, np.nan
                continue
            t = summary[q]
            rows = [position[tid] for tid in t["trades"] if tid in position]
            if len(rows) != len(t["trades"]):
                raise ValueError(f"underlying {name!r}: results lack some of its priced trades; "
                                 "aggregate the unfiltered results")
            values = column[q][rows]
            if np.isnan(values).any():
                # a multi-asset trade's leg: its value is in the long risk table, not a column
                value = t["value"]
            else:
                value = float(values.sum())
                check_sum(value, t["value"], t["se"], f"underlying {name!r}: the rows' {q}")
            entry[q], entry[q + "_se"] = value, t["se"]
        out[name] = entry
    table = pd.DataFrame.from_dict(out, orient="index",
                                   columns=["n_trades"] + [c for q in measures
                                                           for c in (q, q + "_se")])
    total = {"n_trades": len({tid for t in totals for tid in t["trades"]})}
    for q in measures:
        if q in PORTFOLIO_MEASURES:
            total[q] = table[q].sum(min_count=1)
            total[q + "_se"] = portfolio_se(totals, q)
        else:       # shares of one name do not add to shares of another
            total[q] = total[q + "_se"] = np.nan
    table.loc["total"] = pd.Series(total)
    table.index.name = by or "portfolio"
    return table.loc[["total"]] if by is None else table
