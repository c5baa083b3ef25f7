"""Payoffs of a simulated path, and their derivatives with respect to the path.

A payoff knows nothing of the model that made the path: it sees spot values and returns the
undiscounted cash flow of one unit, f, and where f is Lipschitz its slope f' = df/dS, which the
pathwise estimators contract with the model's tangent dS/dθ.

Kinds are integer codes so kernels can branch on them without Python objects; ``omega`` is +1
for a call and -1 for a put, which turns every call formula into its put twin.
"""
from mcgreeks._jit import kernel

EUROPEAN, DIGITAL, ASIAN_ARITHMETIC, ASIAN_GEOMETRIC, BARRIER = range(5)
KINDS = {"european": EUROPEAN, "digital": DIGITAL, "asian_arithmetic": ASIAN_ARITHMETIC,
         "asian_geometric": ASIAN_GEOMETRIC, "barrier": BARRIER}
#: Payoffs whose value jumps (so pathwise derivatives of them are biased).
DISCONTINUOUS = frozenset({DIGITAL, BARRIER})
#: Payoffs the engine prices today; the others are valid input that a row's ``error`` reports.
SUPPORTED = frozenset({EUROPEAN, DIGITAL})


@kernel
def terminal_value(kind, omega, strike, cash, s):
    """Cash flow at maturity of one unit, given the terminal spot ``s`` (same units as strike)."""
    moneyness = omega * (s - strike)
    if kind == DIGITAL:
        return cash if moneyness > 0.0 else 0.0
    return moneyness if moneyness > 0.0 else 0.0


@kernel
def terminal_slope(kind, omega, strike, cash, s):
    """df/dS at the terminal spot ``s``; zero for a digital, whose derivative is a Dirac mass
    that no pathwise estimator can see (hence digitals take likelihood-ratio Greeks)."""
    if kind == DIGITAL:
        return 0.0
    return omega if omega * (s - strike) > 0.0 else 0.0
