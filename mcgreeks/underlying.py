"""The pricing of one underlying, in phases that can run in this process or on any worker.

All trades on an underlying share its paths.  A ``Job`` holds what its pricing needs (picklable:
plain numbers, strings and arrays).  The phases:
1. ``pilot``: on its own random stream (never reused), fit the likelihood-ratio baselines and the
   optimal blends' weights (GBM), pick auto estimators by their variance (Heston), and fit the
   control-variate coefficients that the per-path totals use;
2. ``simulate``: the main run's moments for any run of whole segments of paths (``engine``), so a
   large underlying can be spread over workers and merged exactly;
3. ``finish``: merged moments → per-trade rows (position level), diagnostics, and the
   underlying's per-path totals for ``aggregate``.
``price`` runs the three here.
"""
from dataclasses import dataclass, field

import numpy as np

from mcgreeks import bridge, correlation, engine, exercise_policy, kernel_inputs, sobol
from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.analytic.asian import geometric_asian
from mcgreeks.estimators import fd, optimal, validity
from mcgreeks.estimators.selection import ASKED_BY
from mcgreeks.kernel_inputs import MC_SAMPLER, exercisable, no_policy, no_totals, number_slots, \
    trade_arrays
from mcgreeks.models import MODELS
from mcgreeks.pricers import heston_multi
from mcgreeks.risk import GROUP_TOTAL, PORTFOLIO_MEASURES, risk_label
from mcgreeks.rng import ANTITHETIC, STREAM_MAIN, STREAM_PILOT, name_key, seed_key

#: Paths of the pilot run (its own random stream, never reused).
PILOT_PATHS = 4096

#: The tail test (``engine.se_reliability``, the relative error of an SE): an auto candidate
#: whose pilot SE is uncertain by more than PILOT_TAIL_LIMIT is not trusted (a light-tailed
#: estimate's is sqrt((kurtosis - 1) / n) / 2, about 2 % on the pilot for a kurtosis of 10), and
#: a main-run estimate whose SE is uncertain by more than WARN_TAIL_LIMIT gets a row
#: ``warning``.  Measured on the Heston seed study (tests/pricers/test_heston_feller.py): fd
#: estimates at 11-15 % on 4,096 paths still gave std z of 0.96-1.12 over 200 runs, while the
#: infinite-variance pathwise ones stood at 21-45 % on 50,000 paths.
PILOT_TAIL_LIMIT = 0.1
WARN_TAIL_LIMIT = 0.2


@dataclass
class Job:
    """One simulation group's pricing: its name and market parameters, its trades (clean
    records, in input order) with their estimator choices, the seed, paths and engine options.

    A group of one underlying (the default) is that underlying.  Correlated underlyings are
    simulated together as one group: ``members`` are their names (in group order), with their
    market parameters ``member_params`` and ``correlation`` matrix; a record's ``asset`` is its
    underlying's place in the group, and a multi-asset record's ``legs`` the places of its
    names (with its ``weights``); ``pair_bump`` is the fd bump of a pair's correlation.
    ``with_legs``: run the GBM kernel compiled for multi-asset trades even without any, so that
    a book that has some compiles one kernel, not two (the choice changes no bit).
    ``member_bumps``: the fd sizes of GBM members' trades in a group run by the Heston kernel."""
    name: str
    params: dict
    records: list
    choices: list
    seed: int
    n_paths: int
    bumps: np.ndarray
    control_variate: bool = True
    chunk_paths: int = engine.CHUNK_PATHS
    block_paths: int = 1 << 12
    steps_per_year: float = None
    scheme: str = "qe"
    lr_baseline: bool = True
    sampler: str = "mc"
    randomizations: int = 16
    pilot_beta: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    members: tuple = None
    member_params: list = None
    correlation: np.ndarray = None
    pair_bump: float = fd.PAIR_CORR_ABS
    with_legs: bool = False
    member_bumps: np.ndarray = None
    upper_bound: bool = False
    pilot_paths: int = exercise_policy.PILOT_PATHS

    def __post_init__(self):
        if self.members is None:
            self.members, self.member_params = (self.name,), [self.params]
            self.correlation = np.eye(1)
        self.factor = correlation.cholesky(np.asarray(self.correlation, dtype=float),
                                           self.members)
        # The geometric-Asian control's closed form is known under some models only.
        control = self.control_variate and self.model.geometric_control
        self.records = [dict(r, control=control and r["payoff"] == "asian_arithmetic")
                        for r in self.records]
        self.arrays = trade_arrays(self.records)
        #: the exercisable trades' fitted policies and the policy of each segment of the main
        #: run (``kernel_inputs.Book``; fitted by ``pilot``)
        self.n_policies, self.policy_of = 1, np.zeros(1, dtype=np.int64)
        if any(exercisable(r) for r in self.records):
            self.n_policies, self.policy_of = exercise_policy.replicates(
                self.n_paths, self.segment, self.sampler != "sobol")
        self.policy = no_policy(self.arrays[3], self.n_policies)
        #: trade -> (upper bound, its SE), one option's, with ``upper_bound``
        self.bounds = {}
        #: the quantity axis: N_QUANTITIES, then the measures of the largest multi-asset trade
        self.n_quantities = G.N_QUANTITIES + max(
            [len(self.measures(r)) for r in self.records if r.get("legs")] + [0])
        self.legs = correlation.trade_laws(self)
        self.total_keys, self.targets = total_rows(self)
        # (w, c) per (trade, quantity): blend weight and baseline (estimators.optimal).
        self.coef = np.zeros((len(self.records), G.N_QUANTITIES, optimal.N_COEFFICIENTS))
        self.sampler_args = sampler_args(self)

    def measures(self, record):
        """(code, k, l) of a multi-asset record's measures (``pricers.heston_multi.measures``)."""
        return heston_multi.measures([self.member_params[a]["model"] for a in record["legs"]])

    @property
    def model(self):
        """The underlying's model record (``mcgreeks.models``)."""
        return MODELS[self.params["model"]]

    @property
    def segment(self):
        """Paths per segment: with sobol, each replicate is a whole number of segments."""
        if self.sampler == "sobol":
            return min(engine.SEGMENT, self.n_paths // self.randomizations)
        return engine.SEGMENT

    @property
    def pairs(self):
        """Whether paths come in antithetic pairs (``rng.antithetic``), each pair one sample."""
        return self.sampler == "antithetic"

    def stream(self, stream):
        """The random stream ``stream`` (``rng.STREAM_MAIN``, ``STREAM_PILOT``) as this job
        draws it: in antithetic pairs with the antithetic sampler."""
        return np.uint64(stream) | ANTITHETIC if self.pairs else np.uint64(stream)

    @property
    def n_slots(self):
        """Slots of the main run: one per wanted estimate, then the per-path totals."""
        return len(self.wanted()) + len(self.total_keys)

    def wanted(self):
        """(trade, quantity, estimator) of the main run, in slot order (choices resolved)."""
        out = [(j, G.PRICE, 0) for j in range(len(self.records))]
        return out + [(j, g, e) for j, c in enumerate(self.choices) for g, e in c.items()]


def total_rows(job):
    """(keys, target): the job's per-path totals, one row each, keyed (measure, underlying,
    underlying_2), and target[j, g] (``kernel_inputs.Totals``) the rows trade j's quantity g adds
    to: its own underlying's row of g (a multi-asset trade: each leg's delta, gamma, vega in
    its name's rows, a pair's measures in the pair's, price, rho and theta in the row of its
    ``risk.risk_label``) and, in a group of several underlyings, price, rho and theta also in
    the group's rows ``GROUP_TOTAL``.  Only quantities some trade asks for have rows (each row
    costs every tile its sums and every merge its moments); a one-underlying job's are in the
    order of ``greeks.QUANTITIES``."""
    keys, index = [], {}

    def row(key):
        if key not in index:
            index[key] = len(keys)
            keys.append(key)
        return index[key]

    asked = [{G.PRICE} | set(c) for c in job.choices]
    grouped = len(job.members) > 1
    if not grouped:
        for g, q in enumerate(G.QUANTITIES):
            if any(g in a for a in asked):
                row((q, job.name, ""))
    target = np.full((len(job.records), job.n_quantities, 2), -1, dtype=np.int64)
    for j, r in enumerate(job.records):
        portfolio = {}                  # quantity axis position -> measure, for GROUP_TOTAL rows
        if r.get("legs"):
            target[j, G.PRICE, 0] = row(("price", risk_label(r), ""))
            portfolio[G.PRICE] = "price"
            for g in range(G.N_QUANTITIES, G.N_QUANTITIES + len(job.measures(r))):
                if g not in asked[j]:
                    continue
                key = _multi_measure(job, r, g)
                target[j, g, 0] = row(key)
                if key[0] in PORTFOLIO_MEASURES:
                    portfolio[g] = key[0]
        else:
            name = job.members[r.get("asset", 0)]
            for g, q in enumerate(G.QUANTITIES):
                if g in asked[j]:
                    target[j, g, 0] = row((q, name, ""))
            portfolio = {g: q for g, q in ((G.PRICE, "price"), (G.RHO, "rho"),
                                           (G.THETA, "theta")) if g in asked[j]}
        if grouped:
            for g, measure in portfolio.items():
                target[j, g, 1] = row((measure, GROUP_TOTAL, ""))
    return keys, target


def sampler_args(job, first=0, count=None):
    """The GBM kernel's sampler arguments (``engine.sobol_tile``'s), (direction numbers,
    (shifts, points per replicate, bridge steps, bridge weights)): for sobol, the scrambled
    direction numbers of randomizations first..first+count-1 (default: the job's
    0..randomizations-1; keyed by seed and underlying, one dimension per grid date), the main
    run's points per replicate and the Brownian-bridge plan of the grid
    (``kernel_inputs.GbmPaths``)."""
    if job.sampler != "sobol":
        return MC_SAMPLER
    grid = job.arrays[0]
    count = count or job.randomizations
    dirs, shifts = sobol.scrambled_directions(seed_key(job.seed), name_key(job.name),
                                              first + count, grid.size)
    p = bridge.plan(grid)
    return (np.ascontiguousarray(dirs[first:]),
            (np.ascontiguousarray(shifts[first:]), np.int64(job.n_paths // job.randomizations),
             np.stack([p.order, p.left, p.right]), np.stack([p.a, p.b, p.s])))


#: Scramblings of a Sobol pilot, each as large as a main-run replicate: estimators' quasi-Monte
#: Carlo errors fall at different rates, so they are compared at the main run's size.
SOBOL_PILOT_REPLICATES = 4


def _control_means(job, wanted):
    """E[x] of each slot's control: the geometric twin's closed-form value of the quantity, or for
    fd the closed form's own difference quotient with the same bumps; NaN without a control."""
    records, bumps = job.records, job.bumps
    means = np.full(len(wanted), np.nan)
    closed = {}                 # trade -> its twin's closed form, which holds every quantity
    for k, (j, g, e) in enumerate(wanted):
        r = records[j]
        if not r["control"]:
            continue
        params = job.member_params[r.get("asset", 0)]
        args = dict(spot=params["spot"], strike=r["strike"], maturity=r["maturity"],
                    rate=params["rate"], vol=params["vol"], div_yield=params["div_yield"],
                    n_fixings=r["n_fixings"], is_call=r["option_type"] == "call")
        if j not in closed:
            closed[j] = geometric_asian(**args)
        if e != G.FD or g == G.PRICE:
            means[k] = closed[j][G.QUANTITIES[g]]
            continue
        price = lambda **moved: geometric_asian(**{**args, **moved})["price"]  # noqa: E731
        name = fd.BUMPED[g]
        h = fd.step(bumps, name, args[name])
        up, down = price(**{name: args[name] + h}), price(**{name: args[name] - h})
        if g == G.GAMMA:
            means[k] = fd.second(up, closed[j]["price"], down, h)
        else:
            means[k] = fd.central(up, down, h) * (-1.0 if g == G.THETA else 1.0)
    return means


def kernel_args(job, wanted, totals=None, sampler=None):
    """The arguments of the job's model's chunk kernel after the random-number keys, for the
    (trade, quantity, estimator) estimates ``wanted`` in slot order (``Job.wanted``; a pilot's
    candidates).  With ``totals`` = (agg_e, agg_w) (``totals_weights``), the per-path totals of
    each quantity go to the N_QUANTITIES slots after the wanted ones.  ``sampler``:
    ``sampler_args`` (None: Monte Carlo).  For ``segments``."""
    slots = number_slots(wanted, len(job.records), job.n_quantities)
    if totals is None:
        totals = no_totals(len(job.records), job.n_quantities)
    else:
        totals = kernel_inputs.totals(*totals, len(wanted), job.targets, len(job.total_keys))
    return job.model.kernel_inputs(job, slots, totals, sampler)


def segments(job, args, n_slots, stream, first_path, n_paths, segment=engine.SEGMENT):
    """The segment moments (``engine.simulate_segments``) of the job's model's chunk kernel with
    arguments ``args`` (``kernel_args``, ``n_slots`` slots) over paths first_path ..
    first_path + n_paths - 1 of random stream ``stream``."""
    model = job.model
    return engine.simulate_segments(
        model.kernels().chunk, args, key0=seed_key(job.seed), key1=name_key(job.name),
        stream=stream, first_path=first_path, n_paths=n_paths, n_slots=n_slots,
        chunk_paths=model.call_paths(args, job.chunk_paths), block_paths=job.block_paths,
        segment=segment)


def _pilot_covariances(job, n_paths):
    """{(trade, quantity): covariance of its ``estimators.optimal`` components} on the pilot
    paths, for each estimate (or auto candidate set) with a likelihood-ratio part, under a model
    whose pilot fits them (``Model.pilot_inputs``)."""
    fitted = np.zeros((len(job.records), G.N_QUANTITIES), dtype=np.int64)
    for j, c in enumerate(job.choices):
        for g, e in c.items():       # e is a code, or a tuple of auto candidates
            if g >= G.N_QUANTITIES:  # a multi-asset trade's measures fit nothing
                continue
            fitted[j, g] = bool({G.LR, G.OPTIMAL, G.VIBRATO}
                                & set(e if isinstance(e, tuple) else (e,)))
    if not fitted.any():
        return {}
    sums = np.zeros((-(-n_paths // engine.TILE), len(job.records), G.N_QUANTITIES,
                     optimal.N_COMPONENTS * (optimal.N_COMPONENTS + 3) // 2))
    job.model.kernels().pilot_chunk(engine.keys(seed_key(job.seed), name_key(job.name),
                                                STREAM_PILOT),
                                    n_paths, *job.model.pilot_inputs(job), fitted, sums)
    total = np.zeros(sums.shape[1:])
    for tile in sums:            # in path order, so the fit is the same on any thread count
        total += tile
    which = np.nonzero(fitted)
    covariances = optimal.covariance(total[which], n_paths)     # all at once: 80 µs each alone
    return {(j, g): cov for j, g, cov in zip(*which, covariances)}


def _fit_coefficients(job, covariances):
    """Each such estimate's (w, c) for the estimator (or candidates) it has now."""
    for (j, g), cov in covariances.items():
        choice = job.choices[j][g]
        blended = choice == G.OPTIMAL or (isinstance(choice, tuple) and G.OPTIMAL in choice)
        job.coef[j, g] = optimal.coefficients(cov, blended,
                                              bool(job.records[j]["control"]), job.lr_baseline,
                                              direct_only=choice == G.VIBRATO)


def fit_policies(job):
    """Fit each exercisable trade's Longstaff-Schwartz policies (``job.n_policies`` of them,
    each on its own share of ``job.pilot_paths`` pilot paths of their own stream)
    into ``job.policy``, their description into the price's diagnostics."""
    grid, ti, _, fix_idx = job.arrays
    n_pilot = job.pilot_paths // job.n_policies
    for j, r in enumerate(job.records):
        if not exercisable(r):
            continue
        rows = slice(ti[j, P.FIX_OFF], ti[j, P.FIX_OFF] + ti[j, P.FIX_N])
        times = grid[fix_idx[rows]]
        if r.get("legs"):
            _fit_legs_policies(job, j, r, rows, times, n_pilot)
            continue
        params = job.member_params[r.get("asset", 0)]
        heston = params["model"] == "heston"
        # the European regressor's volatility: GBM's, or Heston's long-run √v̄ reverting from v
        vol = np.sqrt(params["vbar"]) if heston else params["vol"]
        kappa = params["kappa"] if heston else None
        market = (params["rate"], params.get("div_yield", 0.0), vol)
        is_call = r["option_type"] == "call"
        keys = seed_key(job.seed), name_key(job.members[r.get("asset", 0)])
        policies = []
        for k in range(job.n_policies):
            variance = None
            if heston:
                spots, variance = exercise_policy.heston_pilot(params, times, *keys,
                                                               job.steps_per_year, job.scheme,
                                                               n_pilot, k * n_pilot)
            else:
                spots = exercise_policy.gbm_pilot(params["spot"], *market, times, *keys,
                                                  n_pilot, k * n_pilot)
            # the European regressor (remaining_european's) formed date by date in the fit
            policies.append(exercise_policy.fit(spots, times, r["strike"], params["rate"],
                                                is_call, variance=variance,
                                                regressor=(*market[1:], kappa)))
            job.policy[k, rows] = exercise_policy.rows(policies[-1], times, *market, kappa)
        job.reasons[(j, G.PRICE)] = exercise_policy.describe(policies, n_pilot,
                                                             r["exercise"] == "american")
        if job.upper_bound and heston:
            from mcgreeks.dual_bound import heston_upper_bound
            job.bounds[j] = heston_upper_bound(
                job.policy[0, rows], times, params, r["strike"], is_call, *keys,
                steps_per_year=job.steps_per_year, scheme=job.scheme, n_outer=HESTON_OUTER_PATHS,
                n_inner=HESTON_INNER_PATHS)
        elif job.upper_bound:
            from mcgreeks.dual_bound import gbm_upper_bound
            job.bounds[j] = gbm_upper_bound(job.policy[0, rows], times, params["spot"],
                                            r["strike"], *market, is_call, *keys)


#: Outer and inner paths of a Heston trade's dual bound: each path costs a QE step per grid
#: step, and beyond 100 inner paths the bound barely moves (the policy's shortfall and the
#: inner delta hedge's leftover noise dominate): the American put of
#: tests/pricers/test_heston_exercise.py, 6.579 ± 0.009 against 6.573 at 500 x 100 in 3 s,
#: 6.588 ± 0.005 at 1,000 x 200 in 20 s.
HESTON_OUTER_PATHS, HESTON_INNER_PATHS = 500, 100

#: Inner paths of a multi-asset trade's dual bound: without the vanilla's European control its
#: inner estimates are noisier, and the bound sits above the value by about their noise
#: (Broadie-Glasserman max-call: +0.6-1.0 % at 200, +0.15-0.25 % at 500; 0.2-0.5 s a trade).
LEGS_INNER_PATHS = 500

#: Outer and inner paths of the dual bound of a multi-asset trade with a Heston name: every
#: path steps every leg at every grid step (162 steps for 9 dates over 3 years at 52 a year,
#: against the GBM legs' 9) and there is no control, so fewer paths than the GBM legs' at more
#: inner-noise bias.  Measured on the Broadie-Glasserman max-call with one name a Heston name
#: whose variance cannot move (13.90; tests/test_dual_bound.py): 500 x 200 13.95 ± 0.05
#: (+0.4 %, gap to the policy's value 0.14) in 2 s on one core; 500 x 100 +1.4 % in 1.2 s;
#: 1000 x 200 +0.8 % in 4.7 s.  The cost grows with dates x steps: an American (52 dates) one-
#: year basket put on two names, 9 s.
HESTON_LEGS_OUTER_PATHS, HESTON_LEGS_INNER_PATHS = 500, 200


#: The most doubles one policy's pilot of a multi-asset trade may hold (its legs' weighted
#: spots at every exercise date on every pilot path, held at once for the backward
#: regression): 512 MiB.  A larger one (many names, many dates, few policies) is cut to fit,
#: and the price's diagnostics say so: at the default pilot a 25,000-path run of a 5-name
#: American (one policy, 252 dates) would otherwise hold 2.6 GB.
PILOT_DOUBLES = 1 << 26


def _fit_legs_policies(job, j, r, rows, times, n_pilot):
    """``fit_policies`` for multi-asset trade j: pilots of its legs' correlated weighted spots,
    each leg's normals from its own name's key (``gbm_legs_pilot``; ``group_legs_pilot`` with a
    Heston leg)."""
    legs = list(r["legs"])
    params = [job.member_params[a] for a in legs]
    column = lambda key: np.array([p[key] for p in params], dtype=float)  # noqa: E731
    factor = correlation.cholesky(np.asarray(job.correlation)[np.ix_(legs, legs)])
    names = [name_key(job.members[a]) for a in legs]
    is_call = r["option_type"] == "call"
    policies = []
    heston = any(p["model"] == "heston" for p in params)
    whole = n_pilot
    n_pilot = min(n_pilot, PILOT_DOUBLES // (len(times) * len(legs)))
    for k in range(job.n_policies):
        if heston:
            xs = exercise_policy.group_legs_pilot(params, r["weights"], factor, times,
                                                  seed_key(job.seed), names, job.steps_per_year,
                                                  job.scheme, n_pilot, k * n_pilot)
        else:
            xs = exercise_policy.gbm_legs_pilot(column("spot"), params[0]["rate"],
                                                column("div_yield"), column("vol"),
                                                r["weights"], factor, times, seed_key(job.seed),
                                                names, n_pilot, k * n_pilot)
        policies.append(exercise_policy.fit_legs(xs, times, r["strike"], params[0]["rate"],
                                                 is_call, P.KINDS[r["payoff"]]))
        job.policy[k, rows] = exercise_policy.legs_rows(policies[-1], times)
    job.reasons[(j, G.PRICE)] = exercise_policy.describe(policies, n_pilot,
                                                         r["exercise"] == "american")
    if n_pilot < whole:
        job.reasons[(j, G.PRICE)] += (
            f"; each pilot cut from {whole:,} to {n_pilot:,} paths to hold {len(legs)} legs at "
            f"{len(times)} dates in {PILOT_DOUBLES * 8 >> 20} MiB (pilot_paths sets it)")
    if job.upper_bound and heston:
        from mcgreeks.dual_bound import heston_legs_upper_bound
        job.bounds[j] = heston_legs_upper_bound(
            job.policy[0, rows], times, P.KINDS[r["payoff"]], is_call, r["strike"], params,
            np.asarray(r["weights"], dtype=float), factor, seed_key(job.seed), names,
            steps_per_year=job.steps_per_year, scheme=job.scheme,
            n_outer=HESTON_LEGS_OUTER_PATHS, n_inner=HESTON_LEGS_INNER_PATHS)
    elif job.upper_bound:
        from mcgreeks.dual_bound import gbm_legs_upper_bound
        job.bounds[j] = gbm_legs_upper_bound(
            job.policy[0, rows], times, P.KINDS[r["payoff"]], is_call, r["strike"],
            column("spot"), np.asarray(r["weights"], dtype=float), column("vol"),
            column("div_yield"), params[0]["rate"], factor, seed_key(job.seed), names,
            n_inner=LEGS_INNER_PATHS)


def pilot(job):
    """Fit the exercise policies, the likelihood-ratio baselines and blend weights, resolve
    auto choices (lowest pilot variance; ties keep the preference order) and fit the pilot
    control coefficients.  Returns the job, updated."""
    fit_policies(job)
    covariances = {}
    if job.model.pilot_inputs is not None:
        covariances = _pilot_covariances(job, min(PILOT_PATHS, job.n_paths))
        _fit_coefficients(job, covariances)
    piloted = [(j, g, e) for j, c in enumerate(job.choices) for g, cands in c.items()
               for e in (cands if isinstance(cands, tuple)
                         else (cands,) if job.records[j]["control"] else ())]
    piloted += [(j, G.PRICE, 0) for j, r in enumerate(job.records) if r["control"]]
    if not piloted:
        return job
    n = min(PILOT_PATHS, job.n_paths)
    means = _control_means(job, piloted)
    if job.sampler == "sobol" and any(isinstance(e, tuple) for c in job.choices
                                      for e in c.values()):
        # Candidates are compared by their error across scramblings the main run has not used,
        # each the size of a main-run replicate.
        sampler = sampler_args(job, job.randomizations, SOBOL_PILOT_REPLICATES)
        counts, states = segments(job, kernel_args(job, piloted, sampler=sampler),
                                   len(piloted), STREAM_PILOT, 0,
                                   SOBOL_PILOT_REPLICATES * sampler[1][1], job.segment)
        count, state = engine.merge_segments(counts, states)
        beta = engine.estimate(count, state, means)[3]
        reps = _replicates(counts, states, SOBOL_PILOT_REPLICATES)
        se = engine.estimate_replicates(*reps, means, beta)[1]
        uncertain = np.zeros(len(piloted))      # the tile test has no meaning across scramblings
        size = f"{SOBOL_PILOT_REPLICATES} scramblings of {sampler[1][1]:,} points"
    else:
        # candidates are compared as the main run will draw them: in pairs if it does
        counts, states = segments(job, kernel_args(job, piloted), len(piloted),
                                   job.stream(STREAM_PILOT), 0, n)
        count, state = engine.merge_segments(counts, states)
        _, se, _, beta = engine.estimate(count, state, means, job.pairs)
        uncertain = engine.se_reliability(state)[0]
        size = f"{n:,} paths"
    job.pilot_beta = {key: float(beta[k]) for k, key in enumerate(piloted)}
    index = {key: k for k, key in enumerate(piloted)}
    decided = False
    for j, c in enumerate(job.choices):
        for g, cands in list(c.items()):
            if isinstance(cands, tuple):
                se_of = {e: se[index[(j, g, e)]] for e in cands}
                uncertain_of = {e: uncertain[index[(j, g, e)]] for e in cands}
                c[g] = decide(cands, se_of, uncertain_of)
                job.reasons[(j, g)] = _reason(size, cands, se_of, uncertain_of, c[g])
                decided = True
    if decided:
        _fit_coefficients(job, covariances)       # now for the estimator chosen
    return job


def decide(candidates, se, uncertain):
    """The auto choice: the lowest pilot SE among the candidates that pass the tail test (their
    SE uncertain by at most PILOT_TAIL_LIMIT); if none does, fd when it is a candidate (a
    difference quotient is bounded path by path), else the lowest SE.  Ties keep the preference order."""
    trusted = [e for e in candidates if uncertain[e] <= PILOT_TAIL_LIMIT]
    pool = trusted or ([G.FD] if G.FD in candidates else list(candidates))
    return min(pool, key=lambda e: se[e])


def _reason(size, candidates, se, uncertain, chosen):
    """One line for the diagnostics: what the pilot measured of each candidate (``se`` and
    ``uncertain`` map a candidate to its figure, as for ``decide``), and the pick."""
    parts = []
    for e in candidates:
        text = f"{G.ESTIMATORS[e]} SE {se[e]:.3g}"
        if uncertain[e] > PILOT_TAIL_LIMIT:
            text += f" (failed the tail test: SE uncertain by {uncertain[e]:.0%})"
        parts.append(text)
    return f"auto on a pilot of {size}: " + ", ".join(parts) + f"; took {G.ESTIMATORS[chosen]}"


def totals_weights(job, wanted):
    """(agg_e, agg_w) for the per-path totals: each trade's chosen estimator of each quantity
    weighted by its quantity, minus its control at the pilot's coefficient (fixed before the main
    run, so the total is a plain per-path sum)."""
    agg_e = np.full((len(job.records), job.n_quantities), -1, dtype=np.int64)
    agg_w = np.zeros((len(job.records), job.n_quantities, 3))
    means = _control_means(job, wanted)
    for k, (j, g, e) in enumerate(wanted):
        r = job.records[j]
        b = job.pilot_beta.get((j, g, e), 0.0) if r["control"] else 0.0
        agg_e[j, g] = e
        agg_w[j, g] = (r["quantity"], r["quantity"] * b,
                       r["quantity"] * b * means[k] if r["control"] else 0.0)
    return agg_e, agg_w


def simulate(job, first_path, n_paths):
    """Main-run segment moments of paths first_path..first_path+n_paths-1 (whole segments)."""
    wanted = job.wanted()
    args = kernel_args(job, wanted, totals_weights(job, wanted), sampler=job.sampler_args)
    return segments(job, args, job.n_slots, job.stream(STREAM_MAIN), first_path, n_paths,
                    job.segment)


def _replicates(counts, states, n_replicates):
    """(counts[R], states[R, slot, 5]): the segment moments of a Sobol run merged per
    randomization (each a whole number of consecutive segments)."""
    k = len(counts) // n_replicates
    reps = [engine.merge_segments(counts[r * k:(r + 1) * k], states[r * k:(r + 1) * k])
            for r in range(n_replicates)]
    return np.array([c for c, _ in reps]), np.stack([st for _, st in reps])


def finish(job, counts, states):
    """Rows, diagnostics and per-path totals from all segment moments of the main run."""
    wanted = job.wanted()
    means = _control_means(job, wanted)
    if job.sampler == "sobol":
        # One merged state per replicate; the estimate and its error come from across them.
        rep_counts, rep_states = _replicates(counts, states, job.randomizations)
        beta = np.array([job.pilot_beta.get(key, 0.0) for key in wanted])
        mean, se, reduction, beta = engine.estimate_replicates(
            rep_counts, rep_states[:, :len(wanted)], means, beta)
        n_rows = len(job.total_keys)
        total, total_se, _, _ = engine.estimate_replicates(
            rep_counts, rep_states[:, len(wanted):], np.full(n_rows, np.nan), np.zeros(n_rows))
        uncertain = share = np.full(len(wanted), np.nan)   # no tile test across scramblings
    else:
        count, state = engine.merge_segments(counts, states)
        mean, se, reduction, beta = engine.estimate(count, state[:len(wanted)], means, job.pairs)
        total, total_se, _, _ = engine.estimate(count, state[len(wanted):], pairs=job.pairs)
        total = total + _control_shift(job, wanted, beta, state, means)
        uncertain, share = engine.se_reliability(state[:len(wanted)])
        if job.n_policies > 1:
            _policy_spread(job, wanted, counts, states, mean, se)
    index = {key: k for k, key in enumerate(wanted)}
    rows, diagnostics = [], []
    for j, (r, c) in enumerate(zip(job.records, job.choices)):
        q = r["quantity"]
        exploded = _moment_explosion(job, r)
        row, warnings = {}, [exploded] if exploded else []
        if r.get("legs"):
            row["risk"] = []
        for g, e in [(G.PRICE, 0)] + list(c.items()):
            k = index[(j, g, e)]
            if g >= G.N_QUANTITIES:
                measure, name, name_2 = _multi_measure(job, r, g)
                if measure not in ("rho", "theta"):
                    row["risk"].append((measure, name, name_2, q * mean[k], abs(q) * se[k],
                                        G.ESTIMATORS[e]))
                    label = ":".join(x for x in (measure, name, name_2) if x)
                    infinite = _infinite_variance(job, r, g, e)
                    if infinite:
                        warnings.append(f"{label}_se uncertain: {infinite}")
                    elif uncertain[k] > WARN_TAIL_LIMIT:
                        warnings.append(f"{label}_se uncertain by {uncertain[k]:.0%}")
                    diagnostics.append(_diagnostic(job, r, j, g, e, k, label, beta, reduction,
                                                   uncertain, share))
                    continue
                g = G.QUANTITIES.index(measure)
            quantity = G.QUANTITIES[g]
            row[quantity] = q * mean[k]
            row[quantity + "_se"] = abs(q) * se[k]
            if g != G.PRICE:
                row["method_" + quantity] = G.ESTIMATORS[e]
            infinite = _infinite_variance(job, r, g, e) if g != G.PRICE else ""
            if infinite:
                warnings.append(f"{quantity}_se uncertain: {infinite}")
            elif uncertain[k] > WARN_TAIL_LIMIT:
                warnings.append(f"{quantity}_se uncertain by {uncertain[k]:.0%} (heavy tails: "
                                f"one 128-path tile holds {share[k]:.0%} of the variance)")
            diagnostics.append(_diagnostic(job, r, j, g, e, k, quantity, beta, reduction,
                                           uncertain, share))
        if j in job.bounds:
            upper, upper_se = job.bounds[j]
            k = index[(j, G.PRICE, 0)]
            price, price_se = mean[k], se[k]
            row.update(upper_bound=q * upper, upper_bound_se=abs(q) * upper_se,
                       duality_gap=q * (upper - price),
                       duality_gap_se=abs(q) * float(np.hypot(upper_se, price_se)))
        row["warning"] = "; ".join(warnings)
        rows.append(row)
    return rows, diagnostics, _totals(job, wanted, total, total_se)


def _control_shift(job, wanted, beta, state, means):
    """Per per-path total, what the rows' controls move the sum of its rows from it: over the
    controlled estimates k that add to it, quantity × (b_k - beta_k) × (x̄_k - E[x_k]), with b_k
    the pilot's coefficient, which the per-path total takes (it is fixed before the run), and
    beta_k the one the row fits on the main run's paths (``engine.estimate``).  Added to the
    totals' values, so that a total is the sum of its rows to rounding (``aggregate`` checks
    it), where the two coefficients made them differ by up to about one SE whatever the paths
    (x̄ - E[x] and the SE both shrink as 1/√n).  The total's SE stays the per-path total's,
    which the rows' own coefficients would change by a relative O(1/pilot paths)."""
    shift = np.zeros(len(job.total_keys))
    for k, (j, g, e) in enumerate(wanted):
        r = job.records[j]
        if not r["control"] or np.isnan(means[k]):
            continue
        b = job.pilot_beta.get((j, g, e), 0.0)
        move = r["quantity"] * (b - beta[k]) * (state[k, engine.MEAN_X] - means[k])
        for row in job.targets[j, g]:
            if row >= 0:
                shift[row] += move
    return shift


def _policy_spread(job, wanted, counts, states, mean, se):
    """The standard errors of exercisable trades' estimates from the spread of their policies'
    (``exercise_policy.replicates``): each policy's estimate m_r, over its n_r of the N paths,
    varies with its fit and its paths, so Var(mean) is estimated by the batch means'
    R/(R-1) Σ (n_r/N)² (m_r - mean)², kept no smaller than the paths' own variance (it cannot
    be).  With R - 1 degrees of freedom, such an SE is uncertain by about 1/√(2(R-1)) (the
    diagnostics' reason says R); the tail test still reads the paths."""
    ti = job.arrays[1]

    def exercised(j):
        """Whether trade j's policies exercise anywhere before the maturity (else they are all
        the same rule, and the paths' own SE is the whole error)."""
        rows = slice(ti[j, P.FIX_OFF], ti[j, P.FIX_OFF] + ti[j, P.FIX_N])
        return exercisable(job.records[j]) and \
            not np.isnan(job.policy[:, rows, exercise_policy.B0]).all()

    slots = [k for k, (j, _, _) in enumerate(wanted) if exercised(j)]
    if not slots:
        return
    reps = [engine.merge_segments(counts[job.policy_of == r], states[job.policy_of == r])
            for r in range(job.n_policies)]
    n_r = np.array([c for c, _ in reps], dtype=float)
    m_r = np.stack([st[slots, engine.MEAN] for _, st in reps])
    w = (n_r / n_r.sum())[:, None]
    r = job.n_policies
    spread = np.sqrt(r / (r - 1) * np.sum(w * w * (m_r - mean[slots]) ** 2, axis=0))
    se[slots] = np.maximum(se[slots], spread)


def _infinite_variance(job, record, g, e):
    """Why estimator e's estimate of quantity g of ``record`` has an infinite variance by its
    model's tail rule (``validity.infinite_variance``), or "": read from the legs whose paths it
    differentiates, the trade's own underlying (a single-asset trade), one leg (a multi-asset
    measure of a leg: d_v0 ... d_xi), or every leg (a multi-asset trade's theta)."""
    greek, legs = g, [record.get("asset", 0)]
    if record.get("legs"):
        if g >= G.N_QUANTITIES:
            code, k, _ = job.measures(record)[g - G.N_QUANTITIES]
            greek = ASKED_BY[code]
            legs = [record["legs"][k]] if k >= 0 else list(record["legs"])
        else:
            legs = list(record["legs"])
    for a in legs:
        params = job.member_params[a]
        capability = MODELS[params["model"]].capability
        if validity.infinite_variance(capability, greek, e, params):
            rule = capability.tails
            return (f"pathwise has an infinite variance below a Feller ratio of "
                    f"{rule.bounds[0]} (here {rule.ratio(params):.2f}"
                    f"{'' if len(legs) == 1 else ', ' + job.members[a]}); fd does not")
    return ""


def _unbounded_legs(record):
    """(legs, every): the places in the group of the legs whose spot the trade's payoff grows
    with, without bound (docs/reference.md's payoff table, w the weights, omega +1 for a call);
    every: the payoff grows only when all of them do (a call on the worst of, a put on the best
    of).  A put, a digital and an up-and-out call are bounded: no legs."""
    omega = 1.0 if record["option_type"] == "call" else -1.0
    kind = record["payoff"]
    if not record.get("legs"):
        bounded = (omega < 0.0 or kind == "digital"
                   or (kind == "barrier" and record.get("barrier_type") == "up_out"))
        return ([] if bounded else [record.get("asset", 0)]), False
    legs, w = list(record["legs"]), record["weights"]
    signs = [omega * w[0], -omega * w[1]] if kind == "spread" else [omega * x for x in w]
    grows = [a for a, s in zip(legs, signs) if s > 0.0]
    if (kind == "worst_of" and omega > 0.0) or (kind == "best_of" and omega < 0.0):
        return (legs if len(grows) == len(legs) else []), True
    return grows, False


def _moment_explosion(job, record):
    """The row warning of a trade whose payoff grows like the spot of a Heston leg whose second
    moment E[S_T^2] is infinite before the trade's maturity (``models.heston.
    moment_explosion_time``): the payoff's variance is then infinite and no standard error of
    the row estimates anything, whatever the tile test sees on a finite sample.  "" otherwise."""
    from mcgreeks.models.heston import moment_explosion_time     # a kernel module
    legs, every = _unbounded_legs(record)
    times = {a: moment_explosion_time(job.member_params[a]) for a in legs
             if job.member_params[a]["model"] == "heston"}
    exploded = {a: t for a, t in times.items() if t <= record["maturity"]}
    if not exploded or (every and len(exploded) < len(legs)):
        return ""
    a = min(exploded, key=exploded.get)
    name = f" of {job.members[a]}" if record.get("legs") else ""
    return (f"every _se meaningless: E[S_T^2]{name} is infinite from T = {exploded[a]:.3g} y "
            f"(Heston moment explosion, Andersen & Piterbarg 2007), before this maturity, so the "
            f"payoff's variance is infinite" + ("; price the put and use parity"
                                                 if record["payoff"] == "european" else ""))


def _multi_measure(job, record, g):
    """(measure, underlying, underlying_2) of quantity g >= N_QUANTITIES of a multi-asset
    record (``pricers.gbm_multi.measures``); rho and theta name ``risk.risk_label``."""
    code, k, l = job.measures(record)[g - G.N_QUANTITIES]
    names = [job.members[a] for a in record["legs"]]
    measure = heston_multi.MEASURE_NAMES[code]
    if l >= 0:
        a, b = sorted((record["legs"][k], record["legs"][l]))
        return measure, job.members[a], job.members[b]
    return measure, names[k] if k >= 0 else risk_label(record), ""


def _diagnostic(job, r, j, g, e, k, quantity, beta, reduction, uncertain, share):
    """The diagnostics row of trade j's quantity g by estimator e (slot k)."""
    w = job.coef[j, g, optimal.W] if g < G.N_QUANTITIES else np.nan
    return {"trade_id": r["trade_id"], "quantity": quantity,
            "method": G.ESTIMATORS[e] if g != G.PRICE else "",
            "weight": w if g != G.PRICE and e == G.OPTIMAL else np.nan,
            "control": "geometric_asian" if r["control"] else "",
            "control_beta": beta[k] if r["control"] else np.nan,
            "variance_reduction": reduction[k],
            "se_uncertainty": uncertain[k], "largest_tile_share": share[k],
            "reason": job.reasons.get((j, g), "")}


def _totals(job, wanted, total, total_se):
    """The job's per-path totals as a list of {measure, underlying, underlying_2, value, se,
    trades, job}: one per row of ``total_rows`` that some wanted estimate adds to, with the ids
    of the trades that do (``risk.aggregate_risk``, ``portfolio.aggregate``)."""
    trades = {}
    for j, g, e in wanted:
        for row in job.targets[j, g]:
            if row >= 0:
                trades.setdefault(int(row), [])
                if job.records[j]["trade_id"] not in trades[row]:
                    trades[row].append(job.records[j]["trade_id"])
    return [{"measure": measure, "underlying": name, "underlying_2": name_2,
             "value": float(total[row]), "se": float(total_se[row]), "trades": trades[row],
             "job": job.name}
            for row, (measure, name, name_2) in enumerate(job.total_keys) if row in trades]


def price(job):
    """All three phases here."""
    job = pilot(job)
    return finish(job, *simulate(job, 0, job.n_paths))
