"""Mixed estimator of gamma: the pathwise delta differentiated once more by likelihood ratio.

The pathwise delta D f'(S) ∂S/∂S0 is a function h(S; S0) of the path, discontinuous in S for a
call, so its own S0-derivative is taken through the density: ∂S0 E[h] = E[h · score + ∂h/∂S0|_S].
Valid for Lipschitz payoffs; usually far less variance than likelihood ratio twice.
Reference: Glasserman (2004), §7.3.3 (combining pathwise and likelihood ratio).
"""
from mcgreeks._jit import kernel


@kernel
def gamma(disc, slope, tangent, dtangent, score):
    """One path's gamma: D f'(S) (∂S/∂S0 · score + ∂(∂S/∂S0)/∂S0 at fixed S)."""
    return disc * slope * (tangent * score + dtangent)
