"""Finite-difference reference values for American and Bermudan options under Black–Scholes.

A deterministic, independent oracle for early-exercise Monte Carlo (Longstaff–Schwartz): the
Black–Scholes–Merton PDE with continuous dividend yield, in x = ln S and time to maturity τ,

    ∂V/∂τ = ½σ² ∂²V/∂x² + (r − q − ½σ²) ∂V/∂x − r V,      V(x, 0) = g(x) = max(ω(eˣ − K), 0),

with ω = +1 for a call and −1 for a put, is solved by Crank–Nicolson on a uniform x grid, and
the exercise right is imposed exactly as the linear complementarity problem
V ≥ g, A V ≥ b, (V − g)·(A V − b) = 0 at every time step (American), or by V ← max(V, g) at
the exercise dates (Bermudan).

Units, as in :mod:`mcgreeks.analytic.black_scholes`: ``maturity`` and exercise dates in years
from today; ``rate`` r, ``div_yield`` q and ``vol`` σ continuously compounded annual figures;
prices in the currency of ``spot`` and ``strike``, for ONE unit of the option.  Greeks:
delta = ∂V/∂S₀, gamma = ∂²V/∂S₀², vega = ∂V/∂σ and rho = ∂V/∂r (q held fixed) per 1.00, theta
= −∂V/∂T per year (how the value moves as calendar time passes, the contract fixed).

Numerical method (the choices, and why):

* Space.  Uniform grid in x over [min(ln S, ln K) − w, max(ln S, ln K) + w], w = 8σ√T +
  |r − q − ½σ²| T, placed so that ln S₀ is a node (no interpolation at the spot), central
  differences for both derivatives.  dx is capped at σ²/|r − q − ½σ²| (cell Péclet number
  below one), which keeps the implicit matrix an M-matrix, as Brennan–Schwartz requires.
  Dirichlet boundaries: 0 on the out-of-the-money side, and on the in-the-money side the best
  of "hold to expiry" (the forward, ω(S e^{-qτ} − K e^{-rτ})) and "exercise at an allowed
  date", both eight standard deviations away from anything that matters.
* Payoff.  The initial values are the cell averages of g over [x_j − dx/2, x_j + dx/2], which
  restores second-order convergence whatever the strike's position between nodes (Pooley,
  Vetzal & Forsyth 2003 [4]).  The exercise constraint uses g at the nodes.
* Time.  Crank–Nicolson with Rannacher start-up: the first two steps are replaced by four
  fully implicit half steps (Rannacher 1984 [3], Giles & Carter 2006 [5]), which damps the
  oscillations from the payoff's kink.  The American early-exercise boundary leaves the
  strike like K(1 − σ√(τ|ln τ|)) (Kuske & Keller 1998 [7]), so the solution is not smooth in
  τ at τ = 0 and uniform steps converge at about order 1.3; the steps are therefore uniform in
  u with τ = T u² (step n ends at τ = T (n/N)²), which measured second order.  A Bermudan
  option is marched one exercise period at a time, each with the same τ ∝ u² grid and its
  own Rannacher start (V ← max(V, g) puts a new kink in the data at every date).
* Early exercise.  Brennan–Schwartz (1977) [1]: eliminate the tridiagonal system from the
  out-of-the-money side, then substitute from the in-the-money side taking
  V_j = max(continuation_j, g_j) node by node.  Jaillet, Lamberton & Lapeyre (1990) [2] proved
  this solves the LCP exactly when the matrix is an M-matrix and the exercise region is one
  interval at the in-the-money end of the grid, which holds for a put unless q < r < 0 and
  for a call unless r < q < 0; those two "double continuation region" cases (Battauz,
  De Donno & Sbuelz 2015 [6]) are refused.  The substitution is vectorized: the exercised
  run is located with one comparison and the rest solved as a banded system, so no Python
  loop runs over the nodes.

Accuracy (tests/analytic/test_american.py): with the defaults (n_space = 1000 intervals,
n_time = 500 steps), about 80 ms a price on one core, the Longstaff–Schwartz (2001) puts are
within 2e-5 relative of QuantLib's high-precision QD+ fixed-point values; the error is second
order in both dx and dt.

References:
  [1] M. J. Brennan, E. S. Schwartz, "The valuation of American put options", Journal of
      Finance 32(2) (1977) 449–462.
  [2] P. Jaillet, D. Lamberton, B. Lapeyre, "Variational inequalities and the pricing of
      American options", Acta Applicandae Mathematicae 21 (1990) 263–289.
  [3] R. Rannacher, "Finite element solution of diffusion problems with irregular data",
      Numerische Mathematik 43 (1984) 309–327.
  [4] D. M. Pooley, K. R. Vetzal, P. A. Forsyth, "Convergence remedies for non-smooth payoffs
      in option pricing", Journal of Computational Finance 6(4) (2003) 25–40.
  [5] M. B. Giles, R. Carter, "Convergence analysis of Crank–Nicolson and Rannacher
      time-marching", Journal of Computational Finance 9(4) (2006) 89–112.
  [6] A. Battauz, M. De Donno, A. Sbuelz, "Real options and American derivatives: the double
      continuation region", Management Science 61(5) (2015) 1094–1107.
  [7] R. Kuske, J. B. Keller, "Optimal exercise boundary for an American put option",
      Applied Mathematical Finance 5 (1998) 107–116.
  [8] F. A. Longstaff, E. S. Schwartz, "Valuing American options by simulation: a simple
      least-squares approach", Review of Financial Studies 14(1) (2001) 113–147.
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dtbtrs

from mcgreeks.analytic._inputs import GREEKS, _finite, _positive

__all__ = ["american_price", "american_greeks"]

#: Default number of x intervals across the grid.
N_SPACE = 1000
#: Default number of time steps over [0, T] (shared out over the exercise periods).
N_TIME = 500
#: Half-width of the grid in standard deviations σ√T (plus the drift over T).
_WIDTH_SD = 8.0
#: Crank–Nicolson steps replaced by two fully implicit half steps each (Rannacher).
_RANNACHER_STEPS = 2
#: Fewest steps in one exercise period of a Bermudan (the Rannacher steps plus two).
_MIN_PERIOD_STEPS = _RANNACHER_STEPS + 2
#: Refuse grids larger than this (only tiny σ with a large drift gets near it).
_MAX_NODES = 200_000
#: Relative bumps of the re-solved Greeks, see american_greeks.
_VOL_BUMP = 1e-3
_RATE_BUMP = 1e-4
_TIME_BUMP = 1e-3


# ----------------------------------------------------------------------------- public API


def american_price(spot, strike, rate, div_yield, vol, maturity, option_type, *,
                   exercise_dates=None, n_space=N_SPACE, n_time=N_TIME):
    """Value of an American or Bermudan call or put under Black–Scholes, by finite differences.

    Crank–Nicolson in ln S with Rannacher start-up and the Brennan–Schwartz solution of the
    early-exercise complementarity problem (see the module docstring for the scheme and its
    measured accuracy).

    Args:
      spot: S₀ > 0.
      strike: K > 0, same currency as ``spot``.
      rate: r, continuously compounded per year (may be negative).
      div_yield: q, continuous dividend yield per year (may be negative).
      vol: σ > 0 per √year.
      maturity: T > 0 in years.
      option_type: ``"call"`` or ``"put"``.
      exercise_dates: None for an American option (exercise at any time in [0, T]), or the
        Bermudan exercise times in years from today, each in (0, T] and the last one equal to
        T, e.g. ``[i * T / n for i in range(1, n + 1)]``; ``[T]`` is the European option.
      n_space: number of x intervals across the grid (>= 20; more if the Péclet cap asks).
      n_time: number of time steps over [0, T] (>= 4); a Bermudan gets them in proportion to
        the length of each exercise period, at least four per period.

    Returns:
      float, the value of one option.

    Raises:
      ValueError: naming the argument, if an input is out of its domain, if the exercise
        dates are not in (0, T] with the last at T, or if the rates put the exercise region
        in the middle of the grid (put with q < r < 0, call with r < q < 0).

    Example (Longstaff–Schwartz 2001 Table 1, first row):
      >>> round(american_price(36.0, 40.0, 0.06, 0.0, 0.2, 1.0, "put"), 3)
      4.487
    """
    problem = _Problem.make(spot, strike, rate, div_yield, vol, maturity, option_type,
                            exercise_dates)
    plan = _Plan.make(problem, n_space, n_time)
    values = _march(problem, plan)
    return float(values[plan.spot_node])


def american_greeks(spot, strike, rate, div_yield, vol, maturity, option_type, *,
                    exercise_dates=None, n_space=N_SPACE, n_time=N_TIME):
    """Price and Greeks of an American or Bermudan option by finite differences (one unit).

    * price: as :func:`american_price`.
    * delta, gamma: from the same t = 0 grid, central differences at the spot node,
      delta = V_x / S and gamma = (V_xx − V_x) / S² (second order in dx).
    * vega = ∂V/∂σ per 1.00: central difference of two re-solves at σ(1 ± 1e-3).
    * rho = ∂V/∂r per 1.00, q fixed: central difference of re-solves at r ± 1e-4.
    * theta = −∂V/∂T per year: central difference of re-solves at T(1 ± 1e-3) with every
      exercise date moved along with T, i.e. [V(T − h) − V(T + h)] / 2h is the value's change
      as calendar time passes with the contract fixed.

    The re-solves use the grid of the base problem (same x nodes, same number of steps in
    every exercise period), so the discretization error is nearly the same smooth function
    in all of them and cancels in the differences; seven solves in all.

    Args:
      As :func:`american_price`.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta`` (floats).

    Raises:
      ValueError: as :func:`american_price`.
    """
    problem = _Problem.make(spot, strike, rate, div_yield, vol, maturity, option_type,
                            exercise_dates)
    plan = _Plan.make(problem, n_space, n_time)
    values = _march(problem, plan)
    j, dx = plan.spot_node, plan.dx
    s = problem.spot
    v_x = (values[j + 1] - values[j - 1]) / (2.0 * dx)
    v_xx = (values[j + 1] - 2.0 * values[j] + values[j - 1]) / (dx * dx)

    def resolve(**changes):
        return float(_march(problem.replace(**changes), plan)[j])

    h_vol = _VOL_BUMP * problem.vol
    h_rate = _RATE_BUMP
    h_time = _TIME_BUMP * problem.maturity
    dates = problem.exercise_dates
    if dates is not None:
        h_time = min(h_time, 0.5 * dates[0])  # the first date must stay in the future

    def dated(h):
        return dict(maturity=problem.maturity + h,
                    exercise_dates=None if dates is None else dates + h)

    out = {
        "price": float(values[j]),
        "delta": v_x / s,
        "gamma": (v_xx - v_x) / (s * s),
        "vega": (resolve(vol=problem.vol + h_vol) - resolve(vol=problem.vol - h_vol))
        / (2.0 * h_vol),
        "rho": (resolve(rate=problem.rate + h_rate) - resolve(rate=problem.rate - h_rate))
        / (2.0 * h_rate),
        "theta": (resolve(**dated(-h_time)) - resolve(**dated(h_time))) / (2.0 * h_time),
    }
    return {key: float(out[key]) for key in GREEKS}


# ----------------------------------------------------------------------------- the problem


@dataclass(frozen=True)
class _Problem:
    """Validated contract and market: scalars, and the exercise dates as a sorted array."""

    spot: float
    strike: float
    rate: float
    div_yield: float
    vol: float
    maturity: float
    omega: float  # +1 call, -1 put
    exercise_dates: np.ndarray | None  # None: American

    @classmethod
    def make(cls, spot, strike, rate, div_yield, vol, maturity, option_type, exercise_dates):
        values = {}
        for name, value, check in (("spot", spot, _positive), ("strike", strike, _positive),
                                   ("rate", rate, _finite), ("div_yield", div_yield, _finite),
                                   ("vol", vol, _positive), ("maturity", maturity, _positive)):
            arr = check(name, value)
            if arr.ndim:
                raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
            values[name] = float(arr)
        if option_type not in ("call", "put"):
            raise ValueError(f"option_type must be 'call' or 'put', got {option_type!r}")
        omega = 1.0 if option_type == "call" else -1.0
        r, q = values["rate"], values["div_yield"]
        if (omega < 0 and q < r < 0) or (omega > 0 and r < q < 0):
            raise ValueError(
                f"{option_type} with rate={r!r}, div_yield={q!r}: the exercise region is not "
                "one interval at the in-the-money end (double continuation region), which "
                "the Brennan-Schwartz solver does not handle")
        dates = None
        if exercise_dates is not None:
            dates = _dates(exercise_dates, values["maturity"])
        return cls(**values, omega=omega, exercise_dates=dates)

    def replace(self, **changes):
        fields = dict(self.__dict__)
        fields.update(changes)
        return _Problem(**fields)


def _dates(exercise_dates, maturity):
    try:
        dates = np.unique(np.asarray(exercise_dates, dtype=float).ravel())
    except (TypeError, ValueError):
        raise ValueError(f"exercise_dates must be numbers, got {exercise_dates!r}") from None
    if dates.size == 0 or not np.all(np.isfinite(dates)):
        raise ValueError(f"exercise_dates must be a non-empty list of finite times, "
                         f"got {exercise_dates!r}")
    if dates[0] <= 0.0:
        raise ValueError(f"exercise_dates must be > 0 (years from today), got {dates[0]!r}")
    if abs(dates[-1] - maturity) > 1e-12 * maturity:
        raise ValueError(f"the last exercise date must equal maturity={maturity!r}, "
                         f"got {dates[-1]!r}")
    dates[-1] = maturity  # equal within rounding: make it exact
    return dates


@dataclass(frozen=True)
class _Plan:
    """The discretization: x nodes (ascending), the spot's node, steps per exercise period."""

    x: np.ndarray
    dx: float
    spot_node: int
    period_steps: tuple

    @classmethod
    def make(cls, problem, n_space, n_time):
        n_space = _integer("n_space", n_space, 20)
        n_time = _integer("n_time", n_time, _MIN_PERIOD_STEPS)
        sig, t = problem.vol, problem.maturity
        drift = problem.rate - problem.div_yield - 0.5 * sig * sig
        half_width = _WIDTH_SD * sig * math.sqrt(t) + abs(drift) * t
        ls, lk = math.log(problem.spot), math.log(problem.strike)
        lo, hi = min(ls, lk) - half_width, max(ls, lk) + half_width
        dx = (hi - lo) / n_space
        if drift != 0.0:
            dx = min(dx, sig * sig / abs(drift))  # cell Péclet number <= 1: an M-matrix
        below, above = math.ceil((ls - lo) / dx), math.ceil((hi - ls) / dx)
        if below + above + 1 > _MAX_NODES:
            raise ValueError(f"the grid would need {below + above + 1} nodes (vol={sig!r} "
                             f"is too small for the drift {drift!r}); limit {_MAX_NODES}")
        x = ls + dx * np.arange(-below, above + 1)
        x[below] = ls
        # steps per exercise period, in proportion to its length
        starts = _period_bounds(problem)
        lengths = np.diff(starts)
        steps = tuple(max(_MIN_PERIOD_STEPS, int(round(n_time * length / t)))
                      for length in lengths)
        return cls(x=x, dx=dx, spot_node=below, period_steps=steps)


def _integer(name, value, low):
    if isinstance(value, bool) or not float(value).is_integer() or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _period_bounds(problem):
    """Times to maturity τ that bound the exercise periods: 0, T − t_i for the dates before
    T (ascending in τ), T.  An American option has the single period [0, T]."""
    t = problem.maturity
    if problem.exercise_dates is None:
        return np.array([0.0, t])
    taus = t - problem.exercise_dates[::-1]  # 0 first (the date T), then ascending
    return np.append(taus, t)


# ----------------------------------------------------------------------------- the solver


def _march(problem, plan):
    """Values at τ = T (today) on plan.x (ascending), marched from the payoff at τ = 0."""
    k, r, q, sig, omega = (problem.strike, problem.rate, problem.div_yield, problem.vol,
                           problem.omega)
    american = problem.exercise_dates is None
    x, dx = plan.x, plan.dx
    if omega > 0:  # the in-the-money side must be index 0: run the call on a descending grid
        x, dx = x[::-1], -dx
    s_nodes = np.exp(x)
    payoff = np.maximum(omega * (s_nodes - k), 0.0)
    values = _cell_average_payoff(x, dx, k, omega)

    drift = r - q - 0.5 * sig * sig
    lower = sig * sig / (2.0 * dx * dx) - drift / (2.0 * dx)  # L's weight on V_{j-1}
    upper = sig * sig / (2.0 * dx * dx) + drift / (2.0 * dx)  # on V_{j+1}
    centre = -sig * sig / (dx * dx) - r

    bounds = _period_bounds(problem)
    exercise_taus = bounds[:-1]  # exercise at the start of every period (τ = 0 is expiry)
    obstacle = payoff[1:-1]
    for p, steps in enumerate(plan.period_steps):
        tau0, length = bounds[p], bounds[p + 1] - bounds[p]
        for tau_a, tau_b, theta in _steps(tau0, length, steps):
            dt = tau_b - tau_a
            # right-hand side (I + (1 − θ) dt L) V on the interior nodes
            rhs = values[1:-1] + (1.0 - theta) * dt * (
                lower * values[:-2] + centre * values[1:-1] + upper * values[2:])
            edge = _itm_boundary(s_nodes[0], k, r, q, omega, tau_b,
                                 exercise_taus[exercise_taus <= tau_b] if not american
                                 else None)
            # the out-of-the-money boundary value is 0, so it adds nothing to the rhs
            a = -theta * dt * lower
            b = 1.0 - theta * dt * centre
            c = -theta * dt * upper
            interior = _brennan_schwartz(a, b, c, rhs, edge, obstacle if american else None)
            values = np.concatenate(([edge], interior, [0.0]))
        if not american and p + 1 < len(plan.period_steps):
            values = np.maximum(values, payoff)  # a Bermudan exercise date
    return values[::-1] if omega > 0 else values


def _steps(tau0, length, n):
    """(τ_a, τ_b, θ) of each step of one period: τ = τ₀ + length·(i/n)², the first
    _RANNACHER_STEPS steps split into two fully implicit (θ = 1) half steps each, the rest
    Crank–Nicolson (θ = ½)."""
    taus = tau0 + length * (np.arange(n + 1) / n) ** 2
    out = []
    for i in range(n):
        a, b = taus[i], taus[i + 1]
        if i < _RANNACHER_STEPS:
            mid = 0.5 * (a + b)
            out += [(a, mid, 1.0), (mid, b, 1.0)]
        else:
            out.append((a, b, 0.5))
    return out


def _cell_average_payoff(x, dx, k, omega):
    """Mean of max(ω(eʸ − K), 0) over y in [x_j − |dx|/2, x_j + |dx|/2], exactly."""
    h = 0.5 * abs(dx)
    a, b = x - h, x + h
    lk = math.log(k)
    if omega < 0:  # ∫ (K − eʸ) dy over [a, min(b, ln K)]
        top = np.minimum(b, lk)
        total = np.where(top > a, k * (top - a) - (np.exp(top) - np.exp(a)), 0.0)
    else:  # ∫ (eʸ − K) dy over [max(a, ln K), b]
        bottom = np.maximum(a, lk)
        total = np.where(b > bottom, (np.exp(b) - np.exp(bottom)) - k * (b - bottom), 0.0)
    return np.maximum(total, 0.0) / (2.0 * h)


def _itm_boundary(s, k, r, q, omega, tau, exercise_taus):
    """Value at the far in-the-money node s, τ before expiry: the best of holding to expiry
    (the forward) and exercising at the first allowed date (at once for an American)."""
    value = omega * (s * math.exp(-q * tau) - k * math.exp(-r * tau))
    if exercise_taus is None:  # American: exercise now
        return max(value, omega * (s - k), 0.0)
    wait = tau - exercise_taus.max()  # time to the next exercise date
    return max(value, omega * (s * math.exp(-q * wait) - k * math.exp(-r * wait)), 0.0)


def _brennan_schwartz(a, b, c, rhs, edge, obstacle):
    """Solve the constant-coefficient tridiagonal system a V_{j−1} + b V_j + c V_{j+1} = rhs_j
    on the interior nodes j = 1..n (V_0 = edge, V_{n+1} = 0), with V ≥ obstacle and
    complementarity if an obstacle is given (Brennan–Schwartz; node 0 is the in-the-money end).

    Elimination from the top, A = L U with U unit upper bidiagonal (superdiagonal c/β_{j+1})
    and L lower bidiagonal (diagonal β_j, subdiagonal a), β_n = b, β_j = b − ac/β_{j+1}.  This
    continued fraction has the closed form β_{n−m} = ρ₁(1 − ϱ^{m+2})/(1 − ϱ^{m+1}), ρ₁ ≥ |ρ₂|
    the roots of z² − b z + ac and ϱ = ρ₂/ρ₁, so no loop over the nodes is needed.  Then
    U δ = rhs, and the forward substitution V_j = max((δ_j − a V_{j−1})/β_j, obstacle_j).
    """
    n = rhs.size
    disc = math.sqrt(b * b - 4.0 * a * c)  # b > 2 sqrt(ac) for these diagonally dominant rows
    root1 = 0.5 * (b + disc)
    ratio = (a * c / root1) / root1  # in [0, 1): the grid keeps ac >= 0
    beta = np.full(n, root1)
    if ratio > 0.0:  # only the rows within ~40/|ln ratio| of the top differ from root1
        near = min(n, int(math.ceil(40.0 / -math.log(ratio))) + 1)
        m = np.arange(near)[::-1]  # m = n − 1 − j on the last `near` rows
        power = ratio ** (m + 1.0)
        beta[n - near:] = root1 * (1.0 - power * ratio) / (1.0 - power)
    # U δ = rhs, U unit upper bidiagonal (LAPACK band storage, row 0 the superdiagonal)
    ab = np.empty((2, n))
    ab[0, 0] = 0.0
    ab[0, 1:] = c / beta[1:]
    ab[1] = 1.0
    delta = _banded_triangular(ab, rhs, b"U", b"U")
    if obstacle is None:
        return _forward(a, beta, delta, edge)
    # Projected forward substitution.  Inside an exercised run V_{j-1} = obstacle_{j-1}, so
    # the first node whose continuation value beats the obstacle is found in one comparison;
    # from there the plain recurrence is a banded solve.  Should it dip below the obstacle
    # again (never seen for vanilla options, kept for exactness), project and resume.
    out = obstacle.copy()
    tol = 1e-13 * max(1.0, float(np.max(obstacle)))
    start, left = 0, edge
    while start < n:
        prev = np.empty(n - start)
        prev[0] = left
        prev[1:] = obstacle[start:-1]
        cont = (delta[start:] - a * prev) / beta[start:]
        above = np.flatnonzero(cont > obstacle[start:])
        if above.size == 0:
            break
        first = start + int(above[0])
        solved = _forward(a, beta[first:], delta[first:],
                          left if first == start else obstacle[first - 1])
        out[first:] = solved
        below = np.flatnonzero(solved < obstacle[first:] - tol)
        if below.size == 0:
            break
        j = first + int(below[0])
        out[j:] = obstacle[j:]
        start, left = j + 1, obstacle[j]
    return np.maximum(out, obstacle)


def _forward(a, beta, delta, left):
    """Solve a V_{j−1} + β_j V_j = δ_j, V_{−1} = left (lower bidiagonal)."""
    n = delta.size
    rhs = delta.copy()
    rhs[0] -= a * left
    ab = np.empty((2, n))
    ab[0] = beta
    ab[1, :-1] = a
    ab[1, -1] = 0.0
    return _banded_triangular(ab, rhs, b"L", b"N")


def _banded_triangular(ab, rhs, uplo, diag):
    """LAPACK dtbtrs: the bidiagonal triangular solve, without scipy's per-call checks."""
    solution, info = dtbtrs(ab, rhs, uplo=uplo, diag=diag)
    if info != 0:
        raise FloatingPointError(f"singular bidiagonal system (LAPACK dtbtrs info={info})")
    return solution
