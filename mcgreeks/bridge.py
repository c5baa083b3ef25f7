"""Brownian-bridge construction of a Brownian path on an arbitrary grid of dates.

For dates ``0 = t_0 < t_1 < ... < t_n`` (years; ``W(t_0) = 0``) the path is built coarse to
fine.  Step 0 draws the last date, ``W(t_n) = sqrt(t_n) Z_0``.  Then, breadth first, each date
interval ``(l, r)`` of the construction (in date indices, starting with ``(0, n)``) with a date
strictly inside gets its midpoint by index ``m = (l + r) // 2`` from the Brownian bridge between
its ends::

    W(t_m) = a W(t_l) + b W(t_r) + s Z_k,
    a = (t_r - t_m) / (t_r - t_l),  b = (t_m - t_l) / (t_r - t_l),
    s = sqrt((t_m - t_l) (t_r - t_m) / (t_r - t_l)),

and is then split into ``(l, m)`` and ``(m, r)``.  Normal number k (row k of ``z``) drives the
k-th date in this order, so with quasi-random normals the first, best distributed, dimensions
fix the terminal value and coarse shape of the path, where most of the variance of a typical
payoff lies.  The map ``z -> W`` is linear, ``W = L z`` with ``L L^T = min(t_i, t_j)``, so the
path has exactly the law of Brownian motion for iid normals.

References: P. Glasserman, "Monte Carlo Methods in Financial Engineering", Springer 2004,
sections 3.1 (Brownian bridge construction) and 5.5 (its use with quasi-Monte Carlo);
B. Moskowitz and R. E. Caflisch, "Smoothness and dimension reduction in quasi-Monte Carlo
methods", Math. Comput. Modelling 23(8-9), 37-54, 1996.
"""
import collections
import math

import numpy as np

from mcgreeks._jit import kernel

__all__ = ["Plan", "plan", "build_tile"]

#: Construction order of a grid: step k sets date ``order[k]`` (0-based index into the grid) to
#: ``a[k] W(left[k]) + b[k] W(right[k]) + s[k] z[k]``, where ``left[k] = -1`` stands for
#: ``t_0 = 0`` and ``right[k] = -1`` for "no right end" (step 0 only; then ``a = b = 0``).
Plan = collections.namedtuple("Plan", ["order", "left", "right", "a", "b", "s"])


def plan(grid):
    """The Brownian-bridge construction :class:`Plan` of ``grid``, an increasing sequence of
    dates ``t_1 < ... < t_n`` in years with ``t_1 > 0``.  Arrays of length n: ``order``,
    ``left``, ``right`` (int64) and ``a``, ``b``, ``s`` (float64)."""
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or g[0] <= 0.0 \
            or np.any(np.diff(g) <= 0.0):
        raise ValueError(f"grid has value {grid!r}: must be a non-empty, finite, strictly "
                         "increasing sequence of positive dates")
    n = g.size
    t = np.concatenate([[0.0], g])  # t[i] is date i of the construction; t[0] = 0
    # Indices into t while building; stored as grid indices (one less: t_0 becomes -1).
    order, left, right = [n - 1], [-1], [-1]
    a, b, s = [0.0], [0.0], [math.sqrt(t[n])]
    queue = collections.deque([(0, n)])
    while queue:
        lo, hi = queue.popleft()
        if hi - lo < 2:
            continue
        m = (lo + hi) // 2
        span = t[hi] - t[lo]
        order.append(m - 1)
        left.append(lo - 1)
        right.append(hi - 1)
        a.append((t[hi] - t[m]) / span)
        b.append((t[m] - t[lo]) / span)
        s.append(math.sqrt((t[m] - t[lo]) * (t[hi] - t[m]) / span))
        queue.append((lo, m))
        queue.append((m, hi))
    ints = [np.asarray(x, dtype=np.int64) for x in (order, left, right)]
    return Plan(*ints, np.asarray(a), np.asarray(b), np.asarray(s))


@kernel
def build_tile(order, left, right, a, b, s, z, w, m):
    """Brownian paths from normals: ``w[date, i]`` for paths i < m, from ``z[k, i]``.

    ``order .. s`` are the arrays of :func:`plan` (pass ``*plan(grid)``); ``z`` is (n, TILE)
    with row k the normals of construction step k (dimension k of a QMC point); ``w`` is
    (n, TILE) and receives W at grid date j in row j.  The path index is the inner loop, so it
    vectorizes.  No allocation.
    """
    for k in range(order.size):
        j = order[k]
        lo = left[k]
        hi = right[k]
        sk = s[k]
        if hi < 0:  # the last date, from W(0) = 0
            for i in range(m):
                w[j, i] = sk * z[k, i]
        elif lo < 0:  # left end t_0 = 0, where W = 0
            bk = b[k]
            for i in range(m):
                w[j, i] = bk * w[hi, i] + sk * z[k, i]
        else:
            ak = a[k]
            bk = b[k]
            for i in range(m):
                w[j, i] = ak * w[lo, i] + bk * w[hi, i] + sk * z[k, i]
