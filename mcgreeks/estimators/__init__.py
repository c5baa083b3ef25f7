"""Greek estimators and which of them is valid for which payoff and Greek.

Each module holds the one-path formula of one estimator; the engine combines them with a model's
tangents and scores and a payoff's value and slope.
"""
from mcgreeks.greeks import DELTA, FD, GAMMA, LR, MIXED, PATHWISE, RHO, THETA, VEGA
from mcgreeks.payoffs import DISCONTINUOUS

_FIRST_ORDER = (DELTA, VEGA, RHO, THETA)


def valid_estimators(kind, greek):
    """Estimator codes that are unbiased for ``greek`` of payoff ``kind`` (fd: up to its O(h²)
    bump bias), in order of preference when their variances tie."""
    smooth = kind not in DISCONTINUOUS
    if greek in _FIRST_ORDER:
        return (PATHWISE, LR, FD) if smooth else (LR, FD)
    if greek == GAMMA:
        return (MIXED, LR, FD) if smooth else (LR, FD)
    return ()


def why_invalid(kind, greek, estimator):
    """Why ``estimator`` cannot estimate ``greek`` of payoff ``kind`` (for error messages)."""
    if estimator == PATHWISE and greek == GAMMA:
        return "the second pathwise derivative of a kinked payoff is zero almost surely; use mixed"
    if estimator == MIXED and greek != GAMMA:
        return "mixed is a second-order estimator (pathwise then likelihood ratio): gamma only"
    if kind in DISCONTINUOUS:
        return "the payoff jumps, so its pathwise derivative misses a Dirac mass"
    return "not an estimator of this Greek"
