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


DEFAULT_BUMPS = {"spot": SPOT_REL, "vol": VOL_REL, "rate": RATE_ABS, "maturity": MATURITY_REL}


def bumps(overrides=None):
    """The bump sizes as the kernels take them: [spot rel, vol rel, rate abs, maturity rel].

    ``overrides`` maps any of "spot" (fraction of S0), "vol" (fraction of σ), "rate" (absolute)
    and "maturity" (fraction of T) to a size in (0, 0.5].  Payoffs with jumps want larger bumps:
    the variance of a central difference of a jump grows as 1/h (1/h³ for a second difference).
    """
    sizes = dict(DEFAULT_BUMPS)
    for name, size in (overrides or {}).items():
        if name not in sizes:
            raise ValueError(f"fd_bumps: unknown bump {name!r}; bumps are " + ", ".join(sizes))
        if not 0 < size <= 0.5:
            raise ValueError(f"fd_bumps[{name!r}] has value {size!r}: must be in (0, 0.5]")
        sizes[name] = float(size)
    return np.array([sizes["spot"], sizes["vol"], sizes["rate"], sizes["maturity"]])


@kernel
def central(up, down, h):
    """(V(θ+h) - V(θ-h)) / 2h."""
    return (up - down) / (2.0 * h)


@kernel
def second(up, mid, down, h):
    """(V(θ+h) - 2V(θ) + V(θ-h)) / h²."""
    return (up - 2.0 * mid + down) / (h * h)
