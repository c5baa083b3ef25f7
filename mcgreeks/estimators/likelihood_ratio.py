"""Likelihood-ratio (score-function) estimator: ∂θ E[D f(X)] = E[(D ∂θ log p(X; θ) + ∂θD) f(X)].

Unbiased for any integrable f (digitals, barriers), since only the density of the path moves; its
variance grows as the first time step of the score shrinks.
Reference: Glasserman (2004), §7.3; Broadie & Glasserman (1996).
"""
from mcgreeks._jit import kernel


@kernel
def first_order(disc, ddisc, f, score, explicit):
    """One path's estimate of ∂θ[D f(X; θ)] given the score ∂θ log p(X) and ``explicit`` =
    ∂f/∂θ at a fixed path (zero unless the payoff itself depends on θ)."""
    return disc * (f * score + explicit) + ddisc * f


@kernel
def second_order(disc, f, weight, score, explicit, explicit2):
    """One path's estimate of ∂²θ E[D f(X; θ)] for θ not in D: ``weight`` = (∂²θ p)/p, ``score``
    = ∂θ log p, and the payoff's own first and second θ-derivatives at a fixed path."""
    return disc * (f * weight + 2.0 * explicit * score + explicit2)
