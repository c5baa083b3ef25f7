"""Pathwise (reparameterization) estimator: ∂θ E[D f(S)] = E[D f'(S) ∂θS + (∂θD) f(S)].

Unbiased when f is Lipschitz and differentiable almost everywhere (calls, puts, Asians); biased
for payoffs with jumps, whose derivative is a Dirac mass the path never sees.
Reference: Glasserman, Monte Carlo Methods in Financial Engineering (2004), §7.2;
Broadie & Glasserman (1996).
"""
from mcgreeks._jit import kernel


@kernel
def first_order(disc, ddisc, f, slope, tangent, explicit):
    """One path's estimate of ∂θ[D f(S; θ)]: discount D, its derivative ∂θD, payoff f, slope
    f'(S), tangent ∂θS, and ``explicit`` = ∂f/∂θ at a fixed path (nonzero when the payoff itself
    depends on θ, as a barrier's bridge survival weight does on S0, σ and T)."""
    return disc * (slope * tangent + explicit) + ddisc * f
