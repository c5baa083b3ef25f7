"""The arguments of the models' kernels, built from one underlying's ``underlying.Job``.

Every model's chunk kernel takes the trades as arrays (``trade_arrays``), the wanted estimates as
slot numbers (``number_slots``) and the per-path totals' weights (``no_totals`` when none are
wanted); what comes between them is the model's own (``gbm``, ``heston``), and the model
registry (``mcgreeks.models``) says which builder a model uses.  The pricers are imported when a
builder runs, so this module (and the registry) import no kernels.
"""
import numpy as np

from mcgreeks import greeks as G
from mcgreeks import payoffs, sobol


def _schedule(record):
    """The dates (years) a trade's payoff reads: t_i = i·T/n or T (docs/reference.md#payoffs)."""
    kind = payoffs.KINDS[record["payoff"]]
    n = payoffs.schedule(kind, record.get("monitoring") == "continuous", record["maturity"],
                         record.get("n_fixings") or 1)
    return np.arange(1, n + 1) * record["maturity"] / n


def trade_arrays(records):
    """(grid, ti, tf, fix_idx) of clean trade records (``validation.check_trades``, each with a
    ``control`` flag): the union grid of all trades' dates and the per-trade integer and float
    columns of ``payoffs`` (``payoffs.KIND`` ..., ``payoffs.OMEGA`` ...); trade j's dates are
    grid[fix_idx[ti[j, FIX_OFF]:][:ti[j, FIX_N]]]."""
    dates = [_schedule(r) for r in records]
    grid = np.unique(np.concatenate(dates))
    ti = np.zeros((len(records), payoffs.N_INT_COLUMNS), dtype=np.int64)
    tf = np.zeros((len(records), payoffs.N_FLOAT_COLUMNS))
    fix_idx, offset = [], 0
    for j, (r, d) in enumerate(zip(records, dates)):
        down, knock_in = payoffs.BARRIER_KINDS.get(r.get("barrier_type"), (False, False))
        ti[j] = (payoffs.KINDS[r["payoff"]], down, knock_in, r.get("monitoring") == "continuous",
                 offset, d.size, r["control"])
        # A trade without a barrier gets level 1.0, not 0: the kernels' logs of the level are
        # evaluated speculatively by LLVM, and log(0) takes libm's slow path (~60 ns a call).
        tf[j] = (1.0 if r["option_type"] == "call" else -1.0, r["strike"], r["cash"],
                 r.get("barrier") or 1.0, r["maturity"])
        fix_idx.append(np.searchsorted(grid, d))
        offset += d.size
    return grid, ti, tf, np.concatenate(fix_idx).astype(np.int64)


def number_slots(wanted, n_trades):
    """slots[j, g, e] = k for the k-th (trade j, quantity g, estimator e) in ``wanted``, -1
    elsewhere: where the kernels write each estimate."""
    slots = np.full((n_trades, G.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
    for k, (j, g, e) in enumerate(wanted):
        slots[j, g, e] = k
    return slots


def no_totals(n_trades):
    """The (agg_e, agg_w, agg_base) that ask a chunk kernel for no per-path totals."""
    return (np.full((n_trades, G.N_QUANTITIES), -1, dtype=np.int64),
            np.zeros((n_trades, G.N_QUANTITIES, 3)), -1)


#: The Monte Carlo sampler's arguments of the GBM kernel (no Sobol directions).
MC_SAMPLER = (np.zeros((0, 1, sobol.BITS), dtype=np.uint32), np.zeros((0, 1), dtype=np.uint32),
              1, np.zeros((3, 1), dtype=np.int64), np.zeros((3, 1)))


def gbm(job, slots, totals, sampler=None):
    """``pricers.gbm.chunk``'s arguments after the random-number keys: the trades, the slots,
    the blends' coefficients and bumps, the ``totals`` (agg_e, agg_w, agg_base) and the
    sampler's (``underlying.sampler_args``; None: Monte Carlo)."""
    grid, ti, tf, fix_idx = job.arrays
    p = job.params
    return (grid, p["spot"], p["rate"], p["div_yield"], p["vol"], ti, tf, fix_idx, slots,
            job.coef, job.bumps) + totals + (sampler or MC_SAMPLER)


def gbm_pilot(job):
    """``pricers.gbm.pilot_chunk``'s model and trade arguments (between the path count and the
    ``fitted`` flags)."""
    grid, ti, tf, fix_idx = job.arrays
    p = job.params
    return grid, p["spot"], p["rate"], p["div_yield"], p["vol"], ti, tf, fix_idx


def heston(job, slots, totals, sampler=None):
    """``pricers.heston.chunk``'s arguments after the random-number keys (``prepare`` validates
    and builds the grid, scenarios and fd plan), then the ``totals``; Heston has Monte Carlo
    paths only, so ``sampler`` is ignored."""
    from mcgreeks.pricers import heston as pricer
    grid, ti, tf, fix_idx = job.arrays
    args, _ = pricer.prepare(params=job.params, ti=ti, tf=tf, fix_idx=fix_idx, payoff_grid=grid,
                             slots=slots, bumps=job.bumps, steps_per_year=job.steps_per_year,
                             scheme=job.scheme)
    return args + totals


#: Heston path-steps (counting each re-simulated fd scenario) per kernel call, about 0.2 s on
#: two cores.  Python sees Ctrl-C and SIGTERM only between calls, and a Heston underlying with
#: its fd re-simulations would otherwise spend seconds in one call of ``chunk_paths`` paths.
CALL_PATH_STEPS = 1 << 24


def heston_call_paths(args, chunk_paths):
    """Paths per call of ``pricers.heston.chunk`` with arguments ``args`` (``heston``): at most
    ``chunk_paths``, and at most CALL_PATH_STEPS path-steps over all scenarios."""
    grid, scenarios = args[0], args[5]
    return min(chunk_paths, CALL_PATH_STEPS // (grid.size * len(scenarios)))
