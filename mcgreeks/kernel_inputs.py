"""The arguments of the models' kernels, built from one underlying's ``underlying.Job``, as named
records (numba takes a named tuple of arrays and numbers as one typed argument, fields read by
name).

Every model's chunk kernel takes ``chunk(keys, path0, n_paths, tiles_per_block, book, paths,
plan, totals, ..., out)``: the random-number keys (key0, key1, stream), the trades (``Book``:
``trade_arrays``), the model's own path inputs (``GbmPaths``, ``HestonPaths``), the wanted
estimates (``Plan``: slot numbers from ``number_slots``) and the per-path totals (``Totals``;
``no_totals`` when none are wanted).  The model registry (``mcgreeks.models``) says which builder
a model uses (``gbm``, ``heston``).  The pricers are imported when a builder runs, so this
module (and the registry) import no kernels.
"""
from collections import namedtuple

import numpy as np

from mcgreeks import greeks as G
from mcgreeks import payoffs
from mcgreeks.rng import name_key


#: A book of trades on one grid.  grid: the dates (years, increasing) the paths are read at;
#: ti, tf: per trade the integer and float columns of ``payoffs`` (``payoffs.KIND`` ...,
#: ``payoffs.OMEGA`` ...); fix_idx: trade j's dates are grid[fix_idx[ti[j, FIX_OFF]:][:ti[j,
#: FIX_N]]]; policy[r]: exercise policy r of the exercisable trades, one row per entry of
#: fix_idx (``exercise_policy.rows``; NaN for the other trades, never read), and policy_of[s]
#: the policy of the paths of segment s (``exercise_policy.replicates``).
Book = namedtuple("Book", "grid ti tf fix_idx policy policy_of")
#: The estimates wanted.  slots[j, g, e]: the output index of trade j's quantity g
#: (``greeks.QUANTITIES``) by estimator e (``greeks.ESTIMATORS``), or -1; needs[j]: what trade j's
#: estimates read of a path, the model's flags (GBM: ``pricers.gbm.needs``); coef[j, g]: the
#: optimal blend's weight and baseline (``estimators.optimal``; empty for a model without);
#: bumps: the fd bump sizes in the model's order (``estimators.fd``).
Plan = namedtuple("Plan", "slots needs coef bumps")
#: Per-path totals over the trades.  estimator[j, g]: the estimator of trade j's quantity g that
#: enters the totals (-1: none); weights[j, g] = (quantity, control coefficient, coefficient ×
#: the control's mean): a total adds weights[0]·y - weights[1]·x + weights[2]; target[j, g] =
#: the two totals (rows) it adds to (-1: none; one underlying's book: row g, as each quantity
#: has one total); base: the first of the slots the rows go to (-1: no totals); wanted[row]:
#: whether any trade enters that row.
Totals = namedtuple("Totals", "estimator weights target base wanted")
#: GBM's paths, per asset of the simulation group (arrays of its size; one underlying: size 1):
#: spot, rate, dividend yield, volatility, the name key of its random stream (``rng.name_key``)
#: and the group's Cholesky factor mix (asset a's Brownian motion is Σ_l mix[a, l] B_l of the
#: members' independent ones); then Sobol points' inputs of ``engine.sobol_tile`` besides their
#: direction numbers (shifts, points per replicate, the Brownian-bridge steps and weights), which
#: go to the kernel on their own: None for Monte Carlo, so that numba prunes the Sobol branch (it
#: prunes on an argument being None, not a field).
GbmPaths = namedtuple("GbmPaths", "spot rate div_yield vol names mix shifts per_replicate steps "
                                  "weights")
#: The legs of multi-asset trades (``pricers.gbm_multi``), per trade j, padded to the group's
#: size n: asset[j, k] (its place in the group) and weight[j, k] of leg k < ti[j, LEG_N]; the
#: law of its legs' Y = W(T)/√T ~ N(0, C): inverse[j] = L⁻¹ (C = L Lᵀ) and precision[j] = C⁻¹;
#: per pair p of its legs (``gbm_multi.pairs``) d_factor[j, p] = ∂L/∂c_p, the factors
#: bumped[j, p, 0 / 1] at c_p ± h (fd) and their width pair_width[j, p] (2h, or less where the
#: bump was clipped to keep C positive semidefinite).
#: measure[j, r] = (code, k, l) of trade j's r-th measure (``pricers.heston_multi.measures``,
#: which are ``gbm_multi.measures`` for GBM legs only).  With a Heston leg, the law of
#: one step's spot noises zs of the legs given the Heston legs' variance noises zv
#: (``correlation.conditional_law``): E[zs | zv] = cond_mean[j] · zv (zv of leg r in column r, 0
#: for a GBM leg) and Cov(zs | zv) = cond_cov[j].
Legs = namedtuple("Legs", "asset weight inverse precision d_factor bumped pair_width measure "
                          "cond_mean cond_cov")
#: Heston's paths (``pricers.heston.prepare``), per asset a of the simulation group (one
#: underlying: a = 0 only): scheme code; spot[a], rate[a]; per scenario s (0: the base, then
#: the fd bumps' up and down) its step coefficients coefs[a, s] and parameters
#: scenarios[a, s]; dcoef[a], the base's coefficient derivatives along the tangent directions;
#: tangents_from[a], the first direction carried (``models.heston.N_DIR``: none); want_lr[a],
#: whether the scores are accumulated; want_resim, whether any fd re-simulates;
#: fd_scenario[a, g] = (up, down) scenario of quantity g or -1, fd_denominator[a, g] its
#: parameter difference; fd_steps[a, g], the grid steps its re-simulation runs (to the last
#: date a trade reading it needs: the maturities of the single-asset trades, the whole grid
#: where a multi-asset trade has a leg on a); names[a], the member's stream key (``rng.name_key``; unread for one
#: underlying, whose key is the kernel's key1); heston[a], 1 for a Heston member and 0 for a
#: GBM one (whose state is its Brownian motion, ``models.heston.member_brownian``, read with
#: div_yield[a] and vol[a]); mix, the lower Cholesky factor of the group's correlation matrix.
HestonPaths = namedtuple("HestonPaths", "scheme spot rate coefs scenarios dcoef tangents_from "
                                        "want_lr want_resim fd_scenario fd_denominator fd_steps "
                                        "names "
                                        "heston mix div_yield vol")
#: What the single-asset trades on a GBM member of a group with a Heston member read
#: (``pricers.heston``, which prices them with ``pricers.gbm.trade_tile``): needs[j] as
#: ``Plan.needs`` (``pricers.gbm.needs``), coef[j] as ``Plan.coef`` (zero: no pilot fits them)
#: and GBM's fd bump sizes.
GbmMembers = namedtuple("GbmMembers", "needs coef bumps")


def _schedule(record):
    """The dates (years) a trade's payoff reads: t_i = i·T/n or T (docs/reference.md#payoffs);
    an exercisable option's are its exercise dates (``n_exercise`` of them)."""
    kind = payoffs.KINDS[record["payoff"]]
    n = payoffs.schedule(kind, record.get("monitoring") == "continuous", record["maturity"],
                         record.get("n_fixings") or 1)
    if exercisable(record):
        n = record["n_exercise"]
    return np.arange(1, n + 1) * record["maturity"] / n


def exercisable(record):
    """Whether a clean trade record may be exercised before its maturity."""
    return record.get("exercise", "european") != "european"


def no_policy(fix_idx, n_policies=1):
    """``Book.policy`` before any fit (NaN rows: no exercise before the maturity)."""
    from mcgreeks.exercise_policy import N_POLICY
    return np.full((n_policies, len(fix_idx), N_POLICY), np.nan)


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
                 offset, d.size, r["control"], r.get("asset", 0), len(r.get("legs", ())),
                 exercisable(r))
        # A trade without a barrier gets level 1.0, not 0: the kernels' logs of the level are
        # evaluated speculatively by LLVM, and log(0) takes libm's slow path (~60 ns a call).
        tf[j] = (1.0 if r["option_type"] == "call" else -1.0, r["strike"], r["cash"],
                 r.get("barrier") or 1.0, r["maturity"])
        fix_idx.append(np.searchsorted(grid, d))
        offset += d.size
    return grid, ti, tf, np.concatenate(fix_idx).astype(np.int64)


def number_slots(wanted, n_trades, n_quantities=G.N_QUANTITIES):
    """slots[j, g, e] = k for the k-th (trade j, quantity g, estimator e) in ``wanted``, -1
    elsewhere: where the kernels write each estimate.  The quantity axis has n_quantities: the
    N_QUANTITIES, then a multi-asset trade's measures (``pricers.gbm_multi.measures``)."""
    slots = np.full((n_trades, n_quantities, G.N_ESTIMATORS), -1, dtype=np.int64)
    for k, (j, g, e) in enumerate(wanted):
        slots[j, g, e] = k
    return slots


def totals(estimator, weights, base, target=None, n_rows=G.N_QUANTITIES):
    """The ``Totals`` record: per-path totals over the trades whose estimator[j, g] >= 0,
    weighted by weights[j, g], into rows target[j, g] (default: row g) of n_rows, which go to
    slots base + row."""
    estimator = np.ascontiguousarray(estimator, dtype=np.int64)
    if target is None:
        target = np.full(estimator.shape + (2,), -1, dtype=np.int64)
        target[:, :G.N_QUANTITIES, 0] = np.arange(G.N_QUANTITIES)
    target = np.ascontiguousarray(target, dtype=np.int64)
    wanted = np.zeros(n_rows, dtype=bool)
    rows = target[estimator >= 0]
    wanted[rows[rows >= 0]] = True
    return Totals(estimator, np.ascontiguousarray(weights, dtype=float), target, np.int64(base),
                  wanted)


def no_totals(n_trades, n_quantities=G.N_QUANTITIES):
    """The ``Totals`` that ask a chunk kernel for no per-path totals."""
    return totals(np.full((n_trades, n_quantities), -1, dtype=np.int64),
                  np.zeros((n_trades, n_quantities, 3)), -1)


#: The Monte Carlo sampler's fields of ``GbmPaths`` (no Sobol points) and direction numbers.
MC_SAMPLER = (None, (np.zeros((0, 1), dtype=np.uint32), np.int64(1),
                     np.zeros((3, 1), dtype=np.int64), np.zeros((3, 1))))


def _gbm_paths(job, fields):
    """The job's ``GbmPaths``, with the sampler ``fields`` (shifts, points per replicate, bridge
    steps, bridge weights)."""
    column = lambda key: np.array([float(p[key]) for p in job.member_params])  # noqa: E731
    names = np.array([name_key(name) for name in job.members], dtype=np.uint64)
    return GbmPaths(column("spot"), column("rate"), column("div_yield"), column("vol"), names,
                    np.ascontiguousarray(job.factor, dtype=float), *fields)


def gbm(job, slots, totals, sampler=None):
    """``pricers.gbm.chunk``'s arguments after the keys, path range and block size: (book,
    paths, plan, totals, legs, sobol_dirs) for the ``slots`` wanted (legs: the ``Legs`` of its
    multi-asset trades; None without any unless ``job.with_legs`` on Monte Carlo paths: see
    ``underlying.Job``), the ``totals`` record and the sampler (``underlying.sampler_args``:
    (direction numbers, (shifts, points per replicate, bridge steps, bridge weights)); None:
    Monte Carlo)."""
    from mcgreeks.pricers import gbm as pricer
    dirs, fields = sampler or MC_SAMPLER
    plan = Plan(slots, pricer.needs(slots), job.coef, job.bumps)
    # Sobol jobs keep the kernel without legs: a multi-asset trade's group runs Monte Carlo, so
    # the kernel with legs and Sobol points would be a third compile
    legs = job.legs if any(r.get("legs") for r in job.records) or (
        job.with_legs and dirs is None) else None
    return Book(*job.arrays, job.policy, job.policy_of), _gbm_paths(job, fields), plan, totals, legs, dirs


def gbm_pilot(job):
    """``pricers.gbm.pilot_chunk``'s (book, paths) (between the path count and the ``fitted``
    flags): Monte Carlo paths."""
    return Book(*job.arrays, job.policy, job.policy_of), _gbm_paths(job, MC_SAMPLER[1])


def heston(job, slots, totals, sampler=None):
    """``pricers.heston.chunk``'s arguments after the keys, path range and block size (``prepare``
    validates and builds the simulation grid, scenarios and fd plan); Heston has Monte Carlo
    paths only, so ``sampler`` is ignored."""
    from mcgreeks.pricers import heston as pricer
    grid, ti, tf, fix_idx = job.arrays
    group = {}
    if len(job.members) > 1:
        group = dict(params=job.member_params, mix=job.factor,
                     names=[name_key(name) for name in job.members])
    # as for GBM: a book with multi-asset trades runs every Heston job with legs, one compile
    legs = job.legs if job.with_legs or any(r.get("legs") for r in job.records) else None
    args, _ = pricer.prepare(**{"params": job.params, **group}, ti=ti, tf=tf, fix_idx=fix_idx,
                             payoff_grid=grid, slots=slots, bumps=job.bumps,
                             steps_per_year=job.steps_per_year, scheme=job.scheme, totals=totals,
                             legs=legs, gbm_bumps=job.member_bumps,
                             policy=(job.policy, job.policy_of))
    return args


#: Path-steps per kernel call (a Heston call counting each re-simulated fd scenario), about
#: 0.2 s of Heston on two cores.  Python sees Ctrl-C and SIGTERM only between calls, and a
#: Heston underlying with its fd re-simulations would otherwise spend seconds in one call of
#: ``chunk_paths`` paths.
CALL_PATH_STEPS = 1 << 24


def gbm_call_paths(args, chunk_paths):
    """Paths per call of ``pricers.gbm.chunk`` with arguments ``args`` (``gbm``): at most
    ``chunk_paths``, and at most CALL_PATH_STEPS path-dates (a 252-date Asian: 66,576 paths)."""
    return min(chunk_paths, CALL_PATH_STEPS // max(args[0].grid.size, 1))


def heston_call_paths(args, chunk_paths):
    """Paths per call of ``pricers.heston.chunk`` with arguments ``args`` (``heston``): at most
    ``chunk_paths``, and at most CALL_PATH_STEPS path-steps over all scenarios."""
    book, paths = args[0], args[1]
    return min(chunk_paths, CALL_PATH_STEPS // (book.grid.size * paths.scenarios.shape[0]
                                                 * paths.scenarios.shape[1]))
