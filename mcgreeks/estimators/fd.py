"""Central bump-and-revalue with common random numbers: the baseline every estimator is checked
against.

Both bumped revaluations reuse the path's random numbers, so the difference has the variance of a
derivative, not of two prices.  The estimator is unbiased for the central difference quotient of
the price, which differs from the derivative by O(h²); tests therefore compare it with the same
difference quotient of the closed form.  Bump sizes (fixed, documented, part of the result):
spot ±1 % of S0, volatility ±1 % of σ, rate ±10 bp, maturity ±1 % of T (the schedule scales).
"""
import numpy as np

from mcgreeks._jit import kernel

SPOT_REL = 1e-2
VOL_REL = 1e-2
RATE_ABS = 1e-3
MATURITY_REL = 1e-2


def bumps():
    """The bump sizes as the kernels take them: [spot rel, vol rel, rate abs, maturity rel]."""
    return np.array([SPOT_REL, VOL_REL, RATE_ABS, MATURITY_REL])


@kernel
def central(up, down, h):
    """(V(θ+h) - V(θ-h)) / 2h."""
    return (up - down) / (2.0 * h)


@kernel
def second(up, mid, down, h):
    """(V(θ+h) - 2V(θ) + V(θ-h)) / h²."""
    return (up - 2.0 * mid + down) / (h * h)
