"""Central bump-and-revalue with common random numbers: the baseline every estimator is checked
against, and the one table of its bump sizes.

Both bumped revaluations reuse the path's random numbers, so the difference has the variance of a
derivative, not of two prices.  The estimator is unbiased for the central difference quotient of
the price, which differs from the derivative by O(h²); tests therefore compare it with the same
difference quotient of the closed form.  Bump sizes are fixed, documented and part of the result
(``BUMP_NAMES``, ``GBM_BUMPS``, ``HESTON_BUMPS``; a caller may override them, ``bumps``).
"""
import numpy as np

from mcgreeks import greeks as G
from mcgreeks._jit import kernel

#: Every bump, in the order of the kernels' bump arrays (a model's array is a prefix of it or the
#: whole), and the index of each in them.
#: "pair_corr", the correlation of two underlyings in a ``correlations`` pair, is in no model's
#: array: a simulation group takes it on its own (``PAIR_CORR_ABS``).
BUMP_NAMES = ("spot", "vol", "rate", "maturity", "v0", "kappa", "vbar", "xi", "corr", "pair_corr")
B_SPOT, B_VOL, B_RATE, B_MAT, B_V0, B_KAPPA, B_VBAR, B_XI, B_CORR, B_PAIR_CORR = range(10)
#: Bumps whose size is an absolute move of the parameter (rate: 0.001 is 10 bp; corr); every
#: other size is a fraction of the parameter's value (maturity: the whole schedule scales).
ABSOLUTE = frozenset({"rate", "corr", "pair_corr"})
#: The parameter each Greek's fd estimate bumps (gamma: the second difference in spot).
BUMPED = {G.DELTA: "spot", G.GAMMA: "spot", G.VEGA: "vol", G.RHO: "rate", G.THETA: "maturity",
          G.D_V0: "v0", G.D_KAPPA: "kappa", G.D_VBAR: "vbar", G.D_XI: "xi", G.D_CORR: "corr"}

#: A pair correlation's bump: ±0.01, clipped where the moved matrix would leave [-1, 1] or stop
#: being positive semidefinite (the quotient then divides by the clipped width).
PAIR_CORR_ABS = 1e-2
SPOT_REL = 1e-2
VOL_REL = 1e-2
RATE_ABS = 1e-3
MATURITY_REL = 1e-2

#: GBM's default sizes, in its kernel's order: spot ±1 % of S0, volatility ±1 % of σ, rate
#: ±10 bp, maturity ±1 % of T.
GBM_BUMPS = {"spot": SPOT_REL, "vol": VOL_REL, "rate": RATE_ABS, "maturity": MATURITY_REL}

#: Heston's default sizes, in its kernel's order (``BUMP_NAMES``): spot 1 % of S0, rate 10 bp,
#: maturity 10 % of T (the whole grid scales, the normals of each step are kept), v0, kappa, vbar
#: and xi 10 % of their value (v0 = 0: 10 % of vbar, one-sided), corr 0.01 absolute, clipped to
#: [-1, 1] (the quotient divides by the clipped width); vol is unused.
#: Maturity and the variance parameters are bumped by 10 %, not GBM's 1 %: they move the variance
#: path, and QE's map from normals to variances jumps where a step's psi crosses psi_c, so with
#: common random numbers a small bump's quotient is a jump over 2h on a fraction ~h of paths:
#: tail index 1, an infinite variance (measured: Hill index 1.0-1.5 at 1 % whenever
#: 2 kappa vbar / xi^2 < 1/2, 3.7-9 at 10 %; ``benchmarks/heston_feller.py``).  The central
#: quotient's own bias at 10 % is 0.3 % of the value or less on the benchmark's cases.
HESTON_BUMPS = {**GBM_BUMPS, "maturity": 0.1, "v0": 0.1, "kappa": 0.1, "vbar": 0.1, "xi": 0.1,
                "corr": 1e-2}


def bumps(overrides=None, defaults=GBM_BUMPS):
    """A model's bump sizes as its kernel takes them: an array in the order of ``defaults`` (its
    default sizes, ``GBM_BUMPS`` or ``HESTON_BUMPS``).

    ``overrides`` is a mapping {name: size} over ``BUMP_NAMES`` (a name the model does not bump
    is ignored, so one mapping serves a book of several models), or an array of the first 4
    sizes (spot, vol, rate, maturity; the others keep their defaults) or of all the model's.
    Sizes are in (0, 0.5]: a fraction of the parameter's value, or absolute for ``ABSOLUTE``.
    Payoffs with jumps want larger bumps: the variance of a central difference of a jump grows
    as 1/h (1/h³ for a second difference).  Raises ValueError naming an unknown bump or a size
    out of range (the first in ``BUMP_NAMES`` order).
    """
    given = {}
    if isinstance(overrides, dict):
        for name, size in overrides.items():
            if name not in BUMP_NAMES:
                raise ValueError(f"fd_bumps: unknown bump {name!r}; bumps are "
                                 + ", ".join(BUMP_NAMES))
            given[name] = size
    elif overrides is not None:
        arr = np.asarray(overrides, dtype=float).ravel()
        counts = sorted({4, len(defaults)})
        if arr.size not in counts:
            raise ValueError(f"bumps has {arr.size} entries: must be "
                             + " or ".join(f"{n} (" + ", ".join(BUMP_NAMES[:n]) + ")"
                                           for n in counts))
        given = dict(zip(BUMP_NAMES, arr.tolist()))
    for name in BUMP_NAMES:
        if name in given and not 0 < given[name] <= 0.5:
            raise ValueError(f"fd_bumps[{name!r}] has value {given[name]!r}: must be in (0, 0.5]")
    return np.array([float(given.get(name, size)) for name, size in defaults.items()])


def step(sizes, name, value):
    """The move h of parameter ``name`` at ``value`` for a bump array ``sizes`` (``bumps``):
    the size itself for an absolute bump, else the size times the value."""
    size = sizes[BUMP_NAMES.index(name)]
    return size if name in ABSOLUTE else size * value


@kernel
def central(up, down, h):
    """(V(θ+h) - V(θ-h)) / 2h."""
    return (up - down) / (2.0 * h)


@kernel
def second(up, mid, down, h):
    """(V(θ+h) - 2V(θ) + V(θ-h)) / h²."""
    return (up - 2.0 * mid + down) / (h * h)
