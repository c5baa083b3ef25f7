"""Payoffs: what one unit of a trade pays on a path, read at the trade's own dates, and the
derivatives of it the estimators need, written once for every model.

A payoff knows nothing of the model that made the path.  The model hands it the path as a
*view*: on path i, ln S at grid date g is

    y = a + b·grid[g] + c·X[g, i]

for the model's state rows X and three scalars (GBM: X = W, a = ln S0, b = r - q - σ²/2,
c = σ, and a maturity bump that scales the dates by k gives b·k, c·√k; Heston: X = ln(S/S0),
a = ln S0, b = a rate bump, c = 1).  From its dates t_1 < ... < t_n the payoff reads:
- its *underlying quantity* u: S at maturity (European, digital, a barrier's vanilla part),
  the arithmetic or geometric average of S (Asians), or the maximum (minimum) of S (lookback
  call (put)) over its dates;
- the extreme of ln S over its dates, a discrete barrier's knock test (``observe``,
  ``accumulate`` and ``quantity``);
- the weights ω_k = ∂u/∂ln S_{t_k} of its dates, through which every model's tangents chain:
  ∂u/∂θ = Σ_k ω_k ∂ln S_{t_k}/∂θ.  A model whose ∂ln S_t/∂θ is affine in (1, t, X_t), as
  GBM's are, needs only the moments Σω, Σω t and Σω X (``quantity``); a model that carries
  tangent rows, as Heston does, contracts them (``contract``).
The cash flow is f(u) (``value``), with its slope f'(u) where f is Lipschitz, times a barrier's
weight: the indicator of its knock state (discrete monitoring) or the survival probability of
the Brownian bridge between dates (continuous monitoring, ``bridge_survival``, whose segments
and variances the model provides).  It is paid at the maturity (``payment_time``).  Its
smoothness class (``smoothness``) decides which estimators are valid (``estimators.validity``).

Kinds are integer codes so kernels can branch on them without Python objects; ``omega`` is +1
for a call and -1 for a put, which turns every call formula into its put twin.
"""
import math

from mcgreeks import elementary, vecmath
from mcgreeks._jit import kernel

EUROPEAN, DIGITAL, ASIAN_ARITHMETIC, ASIAN_GEOMETRIC, BARRIER, LOOKBACK = range(6)
BASKET, BEST_OF, WORST_OF, SPREAD = range(6, 10)
KINDS = {"european": EUROPEAN, "digital": DIGITAL, "asian_arithmetic": ASIAN_ARITHMETIC,
         "asian_geometric": ASIAN_GEOMETRIC, "barrier": BARRIER, "lookback": LOOKBACK,
         "basket": BASKET, "best_of": BEST_OF, "worst_of": WORST_OF, "spread": SPREAD}
#: Payoffs on several underlyings (their *legs*), read at the maturity (``legs_quantity``).
MULTI_ASSET = frozenset({BASKET, BEST_OF, WORST_OF, SPREAD})
#: Payoffs that read the path at ``n_fixings`` equally spaced dates (the others at maturity).
FIXED_DATES = frozenset({ASIAN_ARITHMETIC, ASIAN_GEOMETRIC, LOOKBACK})
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


@kernel
def jumps(ti):
    """Whether a trade's payoff is of class JUMP (``smoothness``), read from its integer columns
    in a kernel: a digital, a discretely monitored barrier."""
    return ti[KIND] == DIGITAL or (ti[KIND] == BARRIER and ti[CONTINUOUS] == 0)


def one_date(kind):
    """Whether a payoff on one underlying reads its path at the maturity alone (so a parameter
    entering the law of ln S_T only through its mean has a one-date likelihood ratio).  Payoffs
    on several underlyings have their own estimators (``pricers.gbm_multi``)."""
    return kind == EUROPEAN or kind == DIGITAL


#: ``one_date`` for kernels (the GBM pricer's fast paths for such payoffs).
is_one_date = kernel(one_date, inline=True)

BARRIER_KINDS = {"up_out": (False, False), "up_in": (False, True),
                 "down_out": (True, False), "down_in": (True, True)}   # name -> (down, knock_in)

# Columns of the per-trade arrays the kernels take (ints and floats kept apart).  ASSET: which
# asset of the model's state the payoff reads (the first axis of its state rows: the trade's
# underlying's place in its simulation group, ``correlation.simulation_groups``).  LEG_N: a
# multi-asset trade's number of legs (0 for a trade on one underlying), described in
# ``kernel_inputs.Legs``.  EXERCISE: 1 for an option exercisable at each of its dates (a
# Bermudan; an American on the grid), by the fitted policy of ``exercise_policy``.
KIND, DOWN, KNOCK_IN, CONTINUOUS, FIX_OFF, FIX_N, CONTROL, ASSET, LEG_N, EXERCISE = range(10)
N_INT_COLUMNS = 10
OMEGA, STRIKE, CASH, LEVEL, MATURITY = range(5)                         # float64 columns
N_FLOAT_COLUMNS = 5


@kernel(inline=True)
def value(kind, omega, strike, cash, u):
    """Cash flow of one unit given the payoff's underlying quantity ``u`` (the terminal spot, or
    the average for an Asian; a barrier's vanilla part), in the units of the strike (or cash)."""
    moneyness = omega * (u - strike)
    if kind == DIGITAL:
        return cash if moneyness > 0.0 else 0.0
    return moneyness if moneyness > 0.0 else 0.0


@kernel(inline=True)
def slope(kind, omega, strike, cash, u):
    """df/du; zero for a digital, whose derivative is a Dirac mass that no pathwise estimator can
    see (hence digitals take likelihood-ratio Greeks)."""
    if kind == DIGITAL:
        return 0.0
    return omega if omega * (u - strike) > 0.0 else 0.0


@kernel(inline=True)
def legs_quantity(kind, x, n, du):
    """The underlying quantity u of a multi-asset payoff (``MULTI_ASSET``) from its n legs'
    weighted spots at maturity x[k] = w_k S_k(T) (docs/reference.md#multi-asset-trades):
    Σ x_k (basket), max_k x_k (best_of), min_k x_k (worst_of), x_1 - x_2 (spread); and its
    weights du[k] = ∂u/∂ln S_k, through which every model's tangents chain as for a single
    asset (±x_k on the legs that set u, 0 on the others).  The cash flow is then
    ``value``/``slope`` of a European on u."""
    if kind == BASKET or kind == SPREAD:
        u = 0.0
        for k in range(n):
            du[k] = -x[k] if kind == SPREAD and k == 1 else x[k]
            u += du[k]
        return u
    pick = 0
    for k in range(n):
        du[k] = 0.0
        if (kind == BEST_OF and x[k] > x[pick]) or (kind == WORST_OF and x[k] < x[pick]):
            pick = k
    du[pick] = x[pick]
    return x[pick]


@kernel
def legs_payoff(kind, omega, strike, legs, n, m, vec, f, weights):
    """A multi-asset payoff on a tile: f[i] = its cash flow on path i from the legs' weighted
    spots legs[k, i] (``legs_quantity``) and weights[k, i] = f'(u) ∂u/∂ln S_k, its pathwise
    weights (vec: scratch of n)."""
    for i in range(m):
        u = legs_quantity(kind, legs[:, i], n, vec)
        f[i] = value(EUROPEAN, omega, strike, 1.0, u)
        rate = slope(EUROPEAN, omega, strike, 1.0, u)
        for k in range(n):
            weights[k, i] = rate * vec[k]


def reads_fixings(kind, continuous=False):
    """Whether the payoff reads the path at ``n_fixings`` equally spaced dates t_i = i·T/n (an
    Asian, a lookback, a discretely monitored barrier), rather than at its maturity alone."""
    return kind in FIXED_DATES or (kind == BARRIER and not continuous)


def schedule(kind, continuous, maturity, n_fixings):
    """Number of dates the payoff reads, equally spaced at t_i = i·T/n (1 for a terminal payoff
    or a continuously monitored barrier, whose path between dates is integrated out)."""
    return n_fixings if reads_fixings(kind, continuous) else 1


@kernel
def payment_time(kind, tf):
    """When the cash flow is paid, in years: at the maturity.  Every pricer discounts from it,
    and ``estimators.combine`` differentiates that discount (rho: -t D).  An exercisable
    option's cash flow, paid at its stopping date τ, enters carried to the maturity at the
    rate (h e^{r(T - τ)}, ``exercise_policy``), so that this one discount serves it too."""
    return tf[MATURITY]


# -- reading the path -------------------------------------------------------------------------

@kernel(inline=True)
def _takes_min(kind, ti, tf):
    """Whether the payoff's extreme is a minimum: a down barrier's, a lookback put's."""
    return (kind == BARRIER and ti[DOWN] == 1) or (kind == LOOKBACK and tf[OMEGA] < 0.0)


@kernel
def observe(kind, ti, tf, fix_idx, grid, x, i, a, b, c):
    """One walk over the trade's dates on path i of the view (a, b, c) of state rows x:
    (u, ln S at the last date, the extreme of ln S over the dates: a minimum for a down barrier
    or a lookback put, else a maximum).  The pricers use the tile pass ``accumulate`` and
    ``quantity``; this per-path walk is their reference in tests/payoffs/test_contract.py."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    lowest = _takes_min(kind, ti, tf)
    total = 0.0
    extreme = math.inf if lowest else -math.inf
    y = a
    for k in range(n):
        g = fix_idx[off + k]
        y = a + b * grid[g] + c * x[g, i]
        if kind == ASIAN_ARITHMETIC:
            total += vecmath.exp(y)
        elif kind == ASIAN_GEOMETRIC:
            total += y
        elif lowest:
            extreme = min(extreme, y)
        else:
            extreme = max(extreme, y)
    if kind == ASIAN_ARITHMETIC:
        return total / n, y, extreme
    if kind == ASIAN_GEOMETRIC:
        return vecmath.exp(total / n), y, extreme
    if kind == LOOKBACK:
        return vecmath.exp(extreme), y, extreme
    return vecmath.exp(y), y, extreme


@kernel
def knock_weight(ti, survival):
    """A barrier's weight on its vanilla payoff given the probability that the barrier was not
    touched: the survival itself for a knock-out, its complement for a knock-in."""
    return 1.0 - survival if ti[KNOCK_IN] == 1 else survival


@kernel
def discrete_survival(ti, tf, extreme):
    """1 if a discretely monitored barrier was not touched at the trade's dates (``extreme`` of
    ln S over them, ``observe``), else 0; 1 for any other payoff."""
    if ti[KIND] != BARRIER or ti[CONTINUOUS] == 1:
        return 1.0
    log_level = elementary.ln(tf[LEVEL])
    touched = extreme <= log_level if ti[DOWN] == 1 else extreme >= log_level
    return 0.0 if touched else 1.0


@kernel
def cash_flow(kind, ti, tf, u, extreme):
    """Undiscounted cash flow of one unit given its quantity u and the path's extreme of ln S:
    f(u) times a discrete barrier's knock weight (a continuous barrier's weight is applied by
    the caller, which knows the model's bridge)."""
    f = value(kind, tf[OMEGA], tf[STRIKE], tf[CASH], u)
    if kind == BARRIER and ti[CONTINUOUS] == 0:
        f *= knock_weight(ti, discrete_survival(ti, tf, extreme))
    return f


# Per-path sums over a trade's dates, rows of the ``acc`` buffer of ``accumulate``.
SUM_E, SUM_ET, SUM_EX, SUM_X, EXTREME, ARG_EXTREME = range(6)
N_ACC = 6


@kernel
def accumulate(kind, ti, tf, fix_idx, grid, x, m, a, b, c, twin, acc):
    """One pass over a trade's dates with the tile's m paths as the inner loop, so that it
    vectorizes: per path, with e = S_t = exp(y_t), Σe, Σe t, Σe X (an arithmetic average and
    its weights' moments), ΣX (a geometric average, or an arithmetic one's geometric ``twin``),
    the extreme of y and the grid index where it is reached (a lookback; a discrete barrier's
    knock test), and for a payoff read at its last date (a European, a digital, a barrier's
    vanilla part) that date's spot in SUM_E.  ``quantity`` finishes each path.  Called once per
    trade and tile, so not inlined: one compiled copy serves every pricer."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    arithmetic = kind == ASIAN_ARITHMETIC
    geometric = kind == ASIAN_GEOMETRIC or twin
    extremes = kind == LOOKBACK or (kind == BARRIER and ti[CONTINUOUS] == 0)
    lowest = _takes_min(kind, ti, tf)
    acc[:, :m] = 0.0
    if not arithmetic and kind != ASIAN_GEOMETRIC and kind != LOOKBACK:
        # the payoffs of ``quantity``'s last case read this; exp here, in a loop that
        # vectorizes, not in its per-path loop: there its polynomial's chain of fused
        # multiply-adds was a GBM European's ~20 ns a path
        g = fix_idx[off + n - 1]
        t = grid[g]
        for i in range(m):
            acc[SUM_E, i] = vecmath.exp(a + b * t + c * x[g, i])
    if extremes:
        acc[EXTREME, :m] = math.inf if lowest else -math.inf
    for k in range(n):
        g = fix_idx[off + k]
        t = grid[g]
        if arithmetic:
            for i in range(m):
                e = vecmath.exp(a + b * t + c * x[g, i])
                acc[SUM_E, i] += e
                acc[SUM_ET, i] += e * t
                acc[SUM_EX, i] += e * x[g, i]
        if geometric:
            for i in range(m):
                acc[SUM_X, i] += x[g, i]
        if extremes:
            for i in range(m):
                y = a + b * t + c * x[g, i]
                beyond = y < acc[EXTREME, i] if lowest else y > acc[EXTREME, i]
                if beyond:
                    acc[EXTREME, i] = y
                    acc[ARG_EXTREME, i] = g


@kernel
def mean_date(ti, fix_idx, grid):
    """The mean of a trade's dates (years), t̄ = Σ t_k / n."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    total = 0.0
    for k in range(n):
        total += grid[fix_idx[off + k]] / n
    return total


@kernel(inline=True)
def quantity(kind, ti, fix_idx, grid, x, acc, i, a, b, c, t_mean):
    """Path i's (u, extreme of y, Σω, Σω t, Σω X) from the sums of ``accumulate`` (``kind``
    ASIAN_GEOMETRIC reads an arithmetic Asian's twin), ω_k = ∂u/∂y_k; t_mean = ``mean_date``.
    The extreme is the accumulated one for a lookback or a discrete barrier, which read it, and
    means nothing for the other payoffs.
    The moments chain a tangent affine in (1, t, X): ∂u/∂θ = α Σω + β Σω t + γ Σω X for
    ∂y_t/∂θ = α + β t + γ X_t."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    extreme = acc[EXTREME, i]
    if kind == ASIAN_ARITHMETIC:
        u = acc[SUM_E, i] / n
        return u, extreme, u, acc[SUM_ET, i] / n, acc[SUM_EX, i] / n
    if kind == ASIAN_GEOMETRIC:
        x_mean = acc[SUM_X, i] / n
        u = vecmath.exp(a + b * t_mean + c * x_mean)
        return u, extreme, u, u * t_mean, u * x_mean
    g = fix_idx[off + n - 1]
    if kind == LOOKBACK:
        g = int(acc[ARG_EXTREME, i])
        t, x_g = grid[g], x[g, i]
        u = vecmath.exp(a + b * t + c * x_g)
        return u, extreme, u, u * t, u * x_g
    t, x_g, u = grid[g], x[g, i], acc[SUM_E, i]       # the last date's spot, from accumulate
    return u, extreme, u, u * t, u * x_g


@kernel(inline=True)
def contract(kind, ti, fix_idx, grid, x, acc, i, a, b, c, u, rows, first, end, out, out_row):
    """out[out_row + d, i] = Σ_k ω_k rows[d, g_k, i] for d in first..end-1: the derivative of u
    along tangent rows of ln S (∂y/∂θ_d at each grid date) given by the model; u from
    ``quantity``."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    for d in range(first, end):
        out[out_row + d, i] = 0.0
    if kind == ASIAN_ARITHMETIC or kind == ASIAN_GEOMETRIC:
        for k in range(n):
            g = fix_idx[off + k]
            if kind == ASIAN_ARITHMETIC:
                w = vecmath.exp(a + b * grid[g] + c * x[g, i]) / n
            else:
                w = u / n
            for d in range(first, end):
                out[out_row + d, i] += w * rows[d, g, i]
        return
    g = fix_idx[off + n - 1]
    if kind == LOOKBACK:
        g = int(acc[ARG_EXTREME, i])
    for d in range(first, end):
        out[out_row + d, i] = u * rows[d, g, i]


@kernel(inline=True)
def has_tile_quantity(kind):
    """Whether ``tile_quantity`` serves payoff ``kind``: a payoff that reads no extreme and
    carries no knock weight (a European, a digital, an Asian), whose cash flow is ``value``."""
    return kind == EUROPEAN or kind == DIGITAL or kind == ASIAN_ARITHMETIC or \
        kind == ASIAN_GEOMETRIC


@kernel(inline=True)
def tile_quantity(kind, ti, fix_idx, grid, x, acc, m, a, b, c, t_mean, u, sw, swt, swx):
    """``quantity`` of the tile's m paths at once for a payoff of ``has_tile_quantity``: u, Σω,
    Σω t and Σω X into u[:m], sw, swt, swx, the same expressions in loops that vectorize (a
    geometric average's exp included)."""
    off, n = ti[FIX_OFF], ti[FIX_N]
    if kind == ASIAN_ARITHMETIC:
        for i in range(m):
            u[i] = acc[SUM_E, i] / n
            sw[i] = u[i]
            swt[i] = acc[SUM_ET, i] / n
            swx[i] = acc[SUM_EX, i] / n
        return
    if kind == ASIAN_GEOMETRIC:
        for i in range(m):
            x_mean = acc[SUM_X, i] / n
            u[i] = vecmath.exp(a + b * t_mean + c * x_mean)
            sw[i] = u[i]
            swt[i] = u[i] * t_mean
            swx[i] = u[i] * x_mean
        return
    g = fix_idx[off + n - 1]
    t = grid[g]
    for i in range(m):
        u[i] = acc[SUM_E, i]
        sw[i] = u[i]
        swt[i] = u[i] * t
        swx[i] = u[i] * x[g, i]


#: ``quantity`` and ``contract`` called rather than inlined, for a pricer whose paths cost
#: microseconds (Heston): one compiled copy saves compile time, where inlining saves a GBM path's
#: few nanoseconds (a call passes every array as about ten scalars).
quantity_called = kernel(quantity.py_func)
contract_called = kernel(contract.py_func)


# -- continuous monitoring --------------------------------------------------------------------

@kernel(inline=True)
def _bridge_ends(down, log_level, y0, y1):
    """(u, a, b) of ``bridge_survival``: u = +1 for a down barrier, -1 for an up barrier, and
    a = u (y0 - ln H), b = u (y1 - ln H), the ends' distances to the barrier (> 0: alive)."""
    u = 1.0 if down else -1.0
    return u, u * (y0 - log_level), u * (y1 - log_level)


@kernel(inline=True)
def bridge_alive(down, log_level, y0, y1, var):
    """The probability P of ``bridge_survival`` alone, with ``vecmath.exp`` and no early return,
    so that a loop over a tile's paths vectorizes: 1 - exp(-2 a b / var) where both ends are
    alive (1 when var = 0), else 0."""
    _, a, b = _bridge_ends(down, log_level, y0, y1)
    exponent = -2.0 * a * b / var if var > 0.0 else -math.inf
    return 1.0 - vecmath.exp(exponent) if (a > 0.0 and b > 0.0) else 0.0


@kernel(inline=True)
def bridge_terms(down, log_level, y0, y1, var):
    """Probability that ln S, a Brownian bridge from y0 to y1 with variance ``var`` over a
    segment, stays on the alive side of ln H = ``log_level``, and its derivatives.

    P = 1 - exp(-2 a b / var), a = u (y0 - ln H), b = u (y1 - ln H), u = +1 for a down barrier,
    -1 for an up barrier; P = 0 when either end is on the far side, P = 1 when var = 0 and both
    ends are alive (Glasserman 2004, §6.4: the reflection principle).  Returns
    (P, ∂P/∂y0, ∂P/∂y1, ∂P/∂var, ∂²P/∂y0²).  (In S0: ∂P/∂S0 = ∂P/∂y0 / S0 and
    ∂²P/∂S0² = (∂²P/∂y0² - ∂P/∂y0) / S0².)  Every term is computed and the case selected, with
    no branch, so that a loop over a tile's paths vectorizes (``pricers.heston``); the per-path
    callers call ``bridge_survival``, the same function compiled once."""
    u, a, b = _bridge_ends(down, log_level, y0, y1)
    dead = a <= 0.0 or b <= 0.0
    smooth = not dead and var > 0.0
    e = vecmath.exp_any(-2.0 * a * b / var)
    g0 = 2.0 * b * u / var
    return ((1.0 - e) if smooth else (0.0 if dead else 1.0),
            e * g0 if smooth else 0.0,
            e * 2.0 * a * u / var if smooth else 0.0,
            -e * 2.0 * a * b / (var * var) if smooth else 0.0,
            -e * g0 * g0 if smooth else 0.0)


#: ``bridge_terms`` called rather than inlined, for the per-path call sites (one compiled copy).
bridge_survival = kernel(bridge_terms.py_func)
