"""Which estimator is valid for which Greek of which payoff under which model: the one table.

A payoff enters only through its smoothness class (``payoffs.smoothness``: LIPSCHITZ, JUMP,
BRIDGED) and whether it reads the path at its maturity alone (``payoffs.one_date``); a model only
through its ``Capability``: the Greeks it defines, where its likelihood-ratio scores exist,
whether it offers the optimal blend, where vibrato applies, which estimators degenerate at some
parameters, and where pathwise may be heavy-tailed.  The rules, per Greek g:

- pathwise (first-order g) needs a payoff that does not jump (LIPSCHITZ or BRIDGED: the
  pathwise derivative of a jump misses its Dirac mass); mixed (pathwise then likelihood ratio,
  gamma) needs a LIPSCHITZ payoff (a bridged barrier's survival weight has a kink at the strike
  that the mixed form would need);
- likelihood ratio needs the model's score for g (``scores``, or ``one_date_scores`` for a
  one-date payoff);
- vibrato needs a JUMP payoff and the model's vibrato for g at that payoff's number of dates;
- optimal blends the other two non-fd estimators, so it is offered where two exist, under a
  model that offers it;
- fd is valid for every Greek the model defines;
- the model's ``degenerate`` rule drops estimators at parameters where they break down;
- an option exercisable before its maturity (``exercise``) pays a vanilla's cash flow at the
  date its fixed policy stops the path, Lipschitz on each path: pathwise and mixed as for a
  LIPSCHITZ payoff (holding the stopping date fixed, exact for the true option's Greeks where
  the policy is optimal, by smooth pasting), likelihood ratio where the model scores every
  date (exact for the fixed policy's value), fd (the same policy on bumped paths); no vibrato,
  and no optimal blend, since its two parts estimate different things (they differ by the
  policy's boundary terms).

Valid estimators come in the order optimal, pathwise / mixed, lr, vibrato, fd, which is the
order of preference.  Glasserman (2004), *Monte Carlo Methods in Financial Engineering*, §7.2-7.3.
"""
from typing import Callable, NamedTuple

from mcgreeks import greeks as G
from mcgreeks import payoffs as P

_FIRST_ORDER = tuple(g for g in range(1, G.N_QUANTITIES) if g != G.GAMMA)


class TailRule(NamedTuple):
    """Where a model's pathwise estimates may have an infinite variance, which a pilot's tail
    test can miss: for the Greeks ``greeks``, below ``bounds[0]`` of ``ratio(params)`` auto takes
    fd instead of pathwise, below ``bounds[1]`` it pilots both."""
    greeks: tuple
    ratio: Callable
    bounds: tuple


class Capability(NamedTuple):
    """What a model offers the estimators, independent of the payoff (one per model, in
    ``mcgreeks.models``).  Greeks are ``greeks`` quantity codes; ``reasons`` are the model's
    words for ``why_invalid``."""
    name: str
    #: The Greeks the model defines.
    greeks: tuple
    #: Greeks with a likelihood-ratio score for every payoff, and for one-date payoffs only.
    scores: tuple
    one_date_scores: tuple = ()
    #: Whether the optimal blend (``estimators.optimal``) is offered.
    optimal: bool = False
    #: Greeks vibrato estimates on a JUMP payoff that reads one date, and one that reads several.
    vibrato_one_date: tuple = ()
    vibrato_multi_date: tuple = ()
    #: params -> {estimator code: why it is not valid at these parameters}; None: never.
    degenerate: Callable = None
    #: Where auto distrusts pathwise (``TailRule``); None: nowhere.
    tails: TailRule = None
    #: Why a Greek the model lacks, and the optimal blend, likelihood ratio beyond ``scores``
    #: and vibrato beyond its Greeks, are not offered.
    reasons: dict = {}


def _estimators(cap, kind, greek, continuous, exercise=False):
    """The valid estimators before the parameter rules (see the module docstring)."""
    if greek not in cap.greeks:
        return ()
    smooth = P.smoothness(kind, continuous)
    one_date = P.one_date(kind) and not exercise
    if greek == G.GAMMA:
        direct = (G.MIXED,) if smooth == P.LIPSCHITZ else ()
    else:
        direct = (G.PATHWISE,) if smooth != P.JUMP else ()
    score = (G.LR,) if greek in cap.scores or (one_date and greek in cap.one_date_scores) else ()
    vibrato_greeks = cap.vibrato_one_date if one_date else cap.vibrato_multi_date
    vib = (G.VIBRATO,) if smooth == P.JUMP and greek in vibrato_greeks else ()
    return direct + score + vib + (G.FD,)


def valid_estimators(cap, kind, greek, continuous=False, params=None, exercise=False):
    """Estimator codes that are unbiased (fd: up to its O(h²) bump bias) for ``greek`` of payoff
    ``kind`` (``continuous``: a continuously monitored barrier; ``exercise``: exercisable before
    its maturity) under a model of capability ``cap``, in order of preference; () for a Greek
    the model does not define.  With ``params`` (the model's parameters), those the model's
    ``degenerate`` rule names are dropped.

    >>> [G.ESTIMATORS[e] for e in valid_estimators(GBM, P.DIGITAL, G.DELTA)]
    ['optimal', 'lr', 'vibrato', 'fd']
    """
    out = _estimators(cap, kind, greek, continuous, exercise)
    if params is not None and cap.degenerate is not None:
        dropped = cap.degenerate(params)
        out = tuple(e for e in out if e not in dropped)
    # optimal blends the two non-fd estimators where there are two (pathwise or mixed with lr;
    # lr with vibrato for a payoff that jumps)
    if cap.optimal and len(out) > 2 and not exercise:
        out = (G.OPTIMAL,) + out
    return out


def auto_candidates(cap, kind, greek, continuous=False, params=None, exercise=False):
    """The estimators ``auto`` chooses among (in order of preference): the valid ones but fd,
    whose bump bias and re-simulation cost make it the last resort; fd alone where nothing else
    is valid.  Where the model's ``tails`` rule says pathwise may have an infinite variance at
    ``params``, fd replaces pathwise (below the rule's first bound) or joins it for a pilot with
    a tail test to decide (below its second, ``underlying.pilot``)."""
    valid = valid_estimators(cap, kind, greek, continuous, params, exercise)
    out = tuple(e for e in valid if e != G.FD) or (G.FD,)
    if exercise:        # the direct estimator: the stopping date held fixed, as lr cannot
        out = out[:1]
    rule = cap.tails
    if infinite_variance(cap, greek, G.PATHWISE, params) and G.PATHWISE in out:
        out = tuple(e for e in out if e != G.PATHWISE) + (G.FD,)
    elif (rule is not None and params is not None and greek in rule.greeks and G.PATHWISE in out
          and rule.ratio(params) < rule.bounds[1]):
        out += (G.FD,)
    return out


def infinite_variance(cap, greek, estimator, params):
    """Whether, by the model's ``tails`` rule, ``estimator``'s estimate of ``greek`` has an
    infinite variance at ``params`` (pathwise below the rule's first bound): its sample SE then
    means nothing, whatever a tail test on the run happens to see."""
    rule = cap.tails
    return (estimator == G.PATHWISE and rule is not None and params is not None
            and greek in rule.greeks and rule.ratio(params) < rule.bounds[0])


def applies(cap, estimator):
    """The Greeks ``estimator`` estimates for some payoff under a model of capability ``cap``
    (asked for by name alone, an estimator is used for these and auto keeps the others)."""
    return tuple(g for g in cap.greeks
                 if any(estimator in valid_estimators(cap, kind, g, continuous)
                        for kind in P.KINDS.values() for continuous in (False, True)))


def _one_date_names():
    return ", ".join(name for name, kind in P.KINDS.items() if P.one_date(kind))


def why_invalid(cap, kind, greek, estimator, continuous=False, params=None, exercise=False):
    """Why ``estimator`` cannot estimate ``greek`` of payoff ``kind`` under a model of capability
    ``cap`` (for error messages); with ``params``, an estimator valid for the payoff but dropped
    at these parameters gets the model's reason for that."""
    if params is not None and cap.degenerate is not None \
            and estimator in _estimators(cap, kind, greek, continuous):
        reason = cap.degenerate(params).get(estimator)
        if reason:
            return reason
    if greek not in cap.greeks:
        return cap.reasons["greek"]
    if estimator == G.OPTIMAL and not cap.optimal:
        return cap.reasons["optimal"]
    if exercise and estimator == G.OPTIMAL:
        return ("the optimal blend is not offered for early exercise: pathwise holds the "
                "stopping date fixed and likelihood ratio differentiates the fixed policy's "
                "value, which differ by the policy's boundary terms")
    if exercise and estimator == G.VIBRATO:
        return "vibrato is for payoffs that jump; an exercisable vanilla's is Lipschitz"
    if estimator == G.LR and greek not in cap.scores + cap.one_date_scores:
        return cap.reasons["lr"]
    if estimator == G.LR and greek not in cap.scores:
        return (f"likelihood-ratio {G.QUANTITIES[greek]} is offered for one-date payoffs "
                f"({_one_date_names()}) only")
    if estimator == G.VIBRATO:
        return cap.reasons["vibrato"]
    if estimator == G.PATHWISE and greek == G.GAMMA:
        return "the second pathwise derivative of a kinked payoff is zero almost surely; use mixed"
    if estimator == G.MIXED and greek != G.GAMMA:
        return "mixed is a second-order estimator (pathwise then likelihood ratio): gamma only"
    if estimator == G.OPTIMAL:
        return ("optimal blends two unbiased estimators, and this payoff's Greek has only one "
                "besides fd")
    smooth = P.smoothness(kind, continuous)
    if smooth == P.BRIDGED:
        return "not offered for a continuous barrier's gamma; use lr"
    if smooth == P.JUMP:
        return "the payoff jumps, so its pathwise derivative misses a Dirac mass"
    return "not an estimator of this Greek"


# -- the models' capabilities ----------------------------------------------------------------------

def _codes(names):
    return tuple(G.QUANTITIES.index(g) for g in names)


_GBM_GREEKS = _codes(G.GBM_GREEKS)

#: GBM: exact paths, so the law of W at each date is Gaussian with every parameter in it: a
#: likelihood-ratio score for every Greek, the optimal blend, and vibrato (likelihood ratio over
#: the one step a parameter enters): every Greek of a one-date payoff that jumps, delta and gamma
#: of a discrete barrier (S0 enters only through the first step; σ, r and T move every step,
#: where the barrier's jumps would bias the pathwise part).
GBM = Capability(
    name="gbm", greeks=_GBM_GREEKS, scores=_GBM_GREEKS, optimal=True,
    vibrato_one_date=_GBM_GREEKS, vibrato_multi_date=(G.DELTA, G.GAMMA),
    reasons={"greek": "not a GBM Greek; Heston's d_v0 ... d_corr are not defined under GBM",
             "vibrato": ("vibrato is offered for digitals and discrete barriers' delta and gamma; "
                         "Lipschitz payoffs take pathwise or optimal, and a discrete barrier's σ, "
                         "r and T move every step, where its jumps would bias the pathwise "
                         "part")})

#: Feller ratios 2 kappa vbar / xi^2 between which ``auto`` pilots pathwise theta and
#: d_v0 ... d_xi against fd with a tail test (``auto_candidates``); below the first it takes fd,
#: from the second pathwise.  The pathwise derivative of the variance path follows the flow of
#: the square-root process, which is singular at visits to 0 below a ratio of 1/2 (the flow
#: derivative of sqrt(v) is exp(int ((xi^2 - 4 kappa vbar) / (8 v) - kappa / 2) dt)); measured on
#: QE at 52-64 steps a year (``benchmarks/heston_feller.py``): tail index 1.1-2.9 below 0.25,
#: above 5 from 0.48.  A 4,096-path pilot can miss tails that rare, so below 1/2 the theory
#: decides, not the pilot.
PATHWISE_FELLER = (0.5, 1.0)


def _feller_ratio(params):
    from mcgreeks.models.heston import feller_ratio    # a kernel module: imported when needed
    return feller_ratio(params)


def _heston_degenerate(params):
    """Heston estimators that break down at ``params``: likelihood ratio and mixed need a
    non-degenerate first step (v0 > 0 and |corr| < 1), vibrato a step with spot noise of its own
    (|corr| < 1; with v0 = 0 only a path with no spot noise at all up to the payoff date lacks
    one, and there the payoff is a step function of S0 whose derivative is 0)."""
    out = {}
    if not (params["v0"] > 0.0 and abs(params["corr"]) < 1.0):
        reason = ("the likelihood-ratio score needs a non-degenerate first step: v0 > 0 and "
                  "|corr| < 1")
        out = {G.LR: reason, G.MIXED: reason}
    if not abs(params["corr"]) < 1.0:
        out[G.VIBRATO] = "vibrato needs the spot's own noise: |corr| < 1"
    return out


#: Heston: the law of ln S at a payoff's first date given the variance path is Gaussian with
#: ln S0 in its mean (scores of delta and gamma), and r enters that mean as r T (a score of rho
#: for one-date payoffs); theta and the model parameters move the variance path's law, and QE's
#: is not differentiable, so they have no score.  Vibrato (the same Gaussian over the last noisy
#: step) for one-date payoffs' delta and gamma.  Vega is GBM's only; no optimal blend.
HESTON = Capability(
    name="heston",
    greeks=_codes(G.HESTON_GREEKS),
    scores=(G.DELTA, G.GAMMA), one_date_scores=(G.RHO,),
    vibrato_one_date=(G.DELTA, G.GAMMA), degenerate=_heston_degenerate,
    tails=TailRule(greeks=(G.THETA, G.D_V0, G.D_KAPPA, G.D_VBAR, G.D_XI), ratio=_feller_ratio,
                   bounds=PATHWISE_FELLER),
    reasons={"greek": "vega is a GBM Greek; Heston has d_v0 ... d_corr instead",
             "optimal": "the optimal blend is offered under GBM only",
             "lr": ("likelihood ratio under Heston covers delta, gamma and rho: the QE variance "
                    "step has no differentiable density in the model parameters or the "
                    "maturity"),
             "vibrato": "vibrato is offered for digitals' delta and gamma under Heston"})
