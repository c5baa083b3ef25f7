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

#: Smoothness classes, from which the valid estimators follow (``estimators``' validity table):
#: LIPSCHITZ, a payoff continuous and piecewise differentiable in the path (pathwise and mixed
#: valid); JUMP, a payoff with jumps (pathwise biased: likelihood ratio, vibrato, fd);
#: BRIDGED, a payoff made smooth by a survival weight that depends on the parameters itself
#: (a continuously monitored barrier: pathwise valid for first-order Greeks, the weight's
#: explicit derivatives included; no mixed gamma, which would need the weight's kink).
LIPSCHITZ, JUMP, BRIDGED = range(3)


def smoothness(kind, continuous=False):
    """The smoothness class of payoff ``kind`` (``continuous``: a continuously monitored barrier)."""
    if kind == BARRIER:
        return BRIDGED if continuous else JUMP
    return JUMP if kind == DIGITAL else LIPSCHITZ


def one_date(kind):
    """Whether the payoff reads the path at its maturity alone (so a parameter entering the law
    of ln S_T only through its mean has a one-date likelihood ratio)."""
    return kind == EUROPEAN or kind == DIGITAL
BARRIER_KINDS = {"up_out": (False, False), "up_in": (False, True),
                 "down_out": (True, False), "down_in": (True, True)}   # name -> (down, knock_in)

# Columns of the per-trade arrays the kernels take (ints and floats kept apart).
KIND, DOWN, KNOCK_IN, CONTINUOUS, FIX_OFF, FIX_N, CONTROL = range(7)   # int64 columns
N_INT_COLUMNS = 7
OMEGA, STRIKE, CASH, LEVEL, MATURITY = range(5)                         # float64 columns
N_FLOAT_COLUMNS = 5


@kernel
def value(kind, omega, strike, cash, u):
    """Cash flow of one unit given the payoff's underlying quantity ``u`` (the terminal spot, or
    the average for an Asian; a barrier's vanilla part), in the units of the strike (or cash)."""
    moneyness = omega * (u - strike)
    if kind == DIGITAL:
        return cash if moneyness > 0.0 else 0.0
    return moneyness if moneyness > 0.0 else 0.0


@kernel
def slope(kind, omega, strike, cash, u):
    """df/du; zero for a digital, whose derivative is a Dirac mass that no pathwise estimator can
    see (hence digitals take likelihood-ratio Greeks)."""
    if kind == DIGITAL:
        return 0.0
    return omega if omega * (u - strike) > 0.0 else 0.0


@kernel
def schedule(kind, continuous, maturity, n_fixings):
    """Number of dates the payoff reads, equally spaced at t_i = i·T/n (1 for a terminal payoff
    or a continuously monitored barrier, whose path between dates is integrated out)."""
    if kind == ASIAN_ARITHMETIC or kind == ASIAN_GEOMETRIC or (kind == BARRIER and not continuous):
        return n_fixings
    return 1
