"""Greek estimators: each module holds the one-path formula of one estimator (``fd`` also the
bump sizes); the engine combines them with a model's tangents and scores and a payoff's value and
slope.  Which of them is valid for which payoff, Greek and model: ``validity``.
"""
from mcgreeks.greeks import FD


# Kept for ``pricers.heston`` until its rewrite calls ``validity`` directly; remove then.
def auto_candidates(valid):
    """``validity.auto_candidates`` before a model's tail rule, from the ``valid`` estimators."""
    return tuple(e for e in valid if e != FD) or (FD,)


def why_invalid(kind, greek, estimator, continuous=False):
    """``validity.why_invalid`` under GBM."""
    from mcgreeks.estimators import validity
    return validity.why_invalid(validity.GBM, kind, greek, estimator, continuous)
