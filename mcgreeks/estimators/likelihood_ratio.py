"""Likelihood-ratio (score-function) estimator: ∂θ E[D f(X)] = E[(D ∂θ log p(X; θ) + ∂θD) f(X)].

Unbiased for any integrable f (digitals, barriers), since only the density of the path moves; its
variance grows as the first time step of the score shrinks.
Reference: Glasserman (2004), §7.3; Broadie & Glasserman (1996).
"""
from mcgreeks._jit import kernel


@kernel
def first_order(disc, ddisc, f, score):
    """One path's estimate of ∂θ[D f(X)] given the score ∂θ log p(X)."""
    return (disc * score + ddisc) * f


@kernel
def second_order(disc, f, weight):
    """One path's estimate of ∂²θ E[D f(X)] for θ not in D, with ``weight`` = (∂²θ p)/p."""
    return disc * weight * f
