"""Greek estimators and which of them is valid for which payoff and Greek.

Each module holds the one-path formula of one estimator; the engine combines them with a model's
tangents and scores and a payoff's value and slope.
"""
from mcgreeks.greeks import (DELTA, FD, GAMMA, LR, MIXED, OPTIMAL, PATHWISE, RHO, THETA, VEGA,
                             VIBRATO)
from mcgreeks.payoffs import BARRIER, DIGITAL, DISCONTINUOUS

_FIRST_ORDER = (DELTA, VEGA, RHO, THETA)


def valid_estimators(kind, greek, continuous=False):
    """Estimator codes that are unbiased for ``greek`` of payoff ``kind`` (fd: up to its O(h²)
    bump bias), in order of preference.  ``optimal`` blends the other two non-fd estimators, so
    it is offered exactly where two exist.  ``vibrato`` (likelihood ratio over the one step the
    Greek's parameter enters, with an antithetic pair) is offered for digitals and for discrete
    barriers' delta and gamma.

    A continuously monitored barrier is priced with its bridge survival weight, which is smooth:
    its first-order Greeks are pathwise-valid; its gamma is taken by likelihood ratio with the
    weight's own S0-derivatives (the mixed form would need the weight's kink at the strike)."""
    smooth = kind not in DISCONTINUOUS or (kind == BARRIER and continuous)
    # vibrato: a digital's every Greek; a discrete barrier's delta and gamma (S0 enters only
    # through its first step, see pricers.gbm._vibrato)
    jump = (VIBRATO,) if kind == DIGITAL or (
        kind == BARRIER and not continuous and greek in (DELTA, GAMMA)) else ()
    # optimal blends lr with pathwise (mixed for gamma) or, for a payoff that jumps, vibrato
    jump = (OPTIMAL, LR, VIBRATO) if jump else (LR,)
    if greek in _FIRST_ORDER:
        return (OPTIMAL, PATHWISE, LR, FD) if smooth else jump + (FD,)
    if greek == GAMMA:
        return (OPTIMAL, MIXED, LR, FD) if smooth and kind != BARRIER else jump + (FD,)
    return ()


def auto_candidates(valid):
    """The estimators ``auto`` chooses among from the ``valid`` ones (in order of preference):
    all but fd, whose bump bias and re-simulation cost make it the last resort; fd alone where
    nothing else is valid.  (Heston widens this where pathwise can be heavy-tailed:
    ``pricers.heston.auto_candidates``.)"""
    return tuple(e for e in valid if e != FD) or (FD,)


def why_invalid(kind, greek, estimator, continuous=False):
    """Why ``estimator`` cannot estimate ``greek`` of payoff ``kind`` (for error messages)."""
    if estimator == PATHWISE and greek == GAMMA:
        return "the second pathwise derivative of a kinked payoff is zero almost surely; use mixed"
    if estimator == MIXED and greek != GAMMA:
        return "mixed is a second-order estimator (pathwise then likelihood ratio): gamma only"
    if estimator == VIBRATO:
        return ("vibrato is offered for digitals and discrete barriers' delta and gamma; "
                "Lipschitz payoffs take pathwise or optimal, and a discrete barrier's σ, r and T "
                "move every step, where its jumps would bias the pathwise part")
    if estimator == OPTIMAL:
        return ("optimal blends two unbiased estimators, and this payoff's Greek has only one "
                "besides fd")
    if kind == BARRIER and continuous:
        return "not offered for a continuous barrier's gamma; use lr"
    if kind in DISCONTINUOUS:
        return "the payoff jumps, so its pathwise derivative misses a Dirac mass"
    return "not an estimator of this Greek"
