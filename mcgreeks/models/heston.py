"""Heston stochastic volatility: paths, tangents and scores (docs/reference.md#market):
dS = (r - q) S dt + sqrt(v) S dW1, dv = kappa (vbar - v) dt + xi sqrt(v) dW2, d<W1, W2> = corr dt.

The path is simulated on a time grid (``grid[0] < ... < grid[N-1]``, years, starting from
t = 0) as the log-spot x[k] = ln(S / S0) and the variance v[k] at grid[k].  Step k (from
grid[k-1], or 0, to grid[k]) uses two standard normals of the path: draw 2k (``zs``, the spot's
own noise) and draw 2k+1 (``zv``, the variance's noise), so every number is a pure function of
(seed, underlying, path, draw).  Two schemes:

- ``QE`` (the default): Andersen's quadratic-exponential step for the variance (switching value
  psi_c = 1.5; the exponential branch takes its uniform as U = Phi(zv), so each step consumes
  exactly two normals) and his central log-spot step (gamma1 = gamma2 = 1/2) with the martingale
  correction K0* that makes E[S at grid[k] | S, v at grid[k-1]] exact (Andersen 2008).
  The variance is never negative, whatever the Feller ratio 2 kappa vbar / xi^2.
- ``EULER``: full-truncation Euler (Lord, Koekkoek & van Dijk 2010): the variance state may go
  below zero but only v+ = max(v, 0) enters drift and diffusion, and v+ is what is stored.

Both are written as x[k] = x[k-1] + (r - q) dt + m_k(v) + sig_k zs with zs independent of the
variance path, so that *conditional on the variance path* the log-spot increments are
independent Gaussians with standard deviations sig_k.  The likelihood-ratio estimators use this:
``simulate_tile`` can accumulate G[k] = sum_{j<=k} sig_j zs_j and C[k] = sum_{j<=k} sig_j^2 (so
that, given the variance path, ln S at grid[k] is Normal(ln S0 + (r - q) grid[k] + mean_k, C[k])
with ln S0 and r in the mean only).  sig_k^2 is K3 (v[k-1] + v[k]) for QE and
v+[k-1] dt (1 - corr^2) for Euler (v[-1] = v0).  Vibrato uses the same structure over the last
step only: given the variance path and the spot's normals before step k, ln S at grid[k] is
Normal(ln S_k - sig_k zs_k, sig_k^2) (``step_sd``, ``last_noise``).

Pathwise (tangent) derivatives: ``simulate_tile`` can carry, along every path, the derivatives of
(x[k], v[k]) with respect to six directions (``DIRECTIONS``): the grid scale c (all dates scale
with c, so d/dT of a trade with maturity T is (1/T) d/dc), v0, kappa, vbar, xi, corr.  Spot and
rate need no tangent process: d x_k / d ln S0 = 1 and d x_k / d r = t_k exactly, in both schemes.
The tangents are the exact derivatives of the *discretized* map:
- Euler: differentiated everywhere except on the null sets v = 0 (max) where it is Lipschitz.
  The factor xi zv sqrt(dt) / (2 sqrt(v+)) of d v_k / d v_{k-1} is unbounded as v+ -> 0, so with
  the Feller condition violated the tangents are heavy-tailed (the estimator stays unbiased but
  its variance can be large).
- QE: differentiated inside each branch, where the map is smooth (m and s^2 are affine in v and
  m >= vbar (1 - e^{-kappa dt}) > 0, so nothing blows up at v = 0).  The map jumps where psi
  crosses psi_c (and where the martingale correction switches to its fallback); the pathwise
  derivative does not see these jumps.  Both branches match the first two conditional moments
  of v_k, so the expected effect of a switch is of third order in the step's standard deviation;
  ``benchmarks/heston_bias.py --pathwise-vs-fd`` measures it against bump-and-revalue of the QE
  scheme itself (common random numbers), which does see the jumps.
- When the Feller condition fails, the tangents of the variance path are not usable as they
  stand.  The flow of the square-root process is singular once v reaches 0: for
  2 kappa vbar / xi^2 < 1/2, d sqrt(v_t) / d sqrt(v_0) = exp(int ((xi^2 - 4 kappa vbar)
  / (8 v) - kappa / 2) dt), and int dt / v diverges at a visit to 0.  The discretized map
  follows it with steep stretches a few paths cross.  Measured (``benchmarks/heston_feller.py``,
  EFFICIENCY.md): the pathwise theta and d_v0 ... d_xi have tail index 1.1-2.9 (Hill) below a
  Feller ratio of 1/4, so an infinite variance, with 0.1 % of the paths holding 80-99.7 % of the
  sum of squares; the sample standard error then means nothing and the sample mean is mostly
  too small in magnitude.  A larger psi_c makes it worse (index 0.75-0.85 at psi_c = 2: the
  quadratic branch's b^2 has an infinite slope in psi at psi = 2).  From a Feller ratio of about
  1/2 the index is above 5.  The pricer's ``auto`` therefore takes bump-and-revalue below a
  ratio of 1/2 and lets a pilot with a tail test choose up to 1
  (``pricers.heston.auto_candidates``).

References
----------
- L. Andersen (2008), "Simple and efficient simulation of the Heston stochastic volatility
  model", J. Computational Finance 11(3), 1-42: the QE variance step, the central log-spot
  discretization (K0 ... K4) and its martingale correction (K0*, which needs A < 1/(2a) in the
  quadratic branch and A < beta in the exponential one).
- R. Lord, R. Koekkoek, D. van Dijk (2010), "A comparison of biased simulation schemes for
  stochastic volatility models", Quantitative Finance 10(2), 177-194: full truncation.
- P. Glasserman (2004), Monte Carlo Methods in Financial Engineering, ch. 7 (pathwise and
  likelihood-ratio estimators), §6.4 (Brownian-bridge barrier correction).
"""
import math

import numpy as np

from mcgreeks import elementary, vecmath
from mcgreeks._jit import kernel
from mcgreeks.engine import TILE
from mcgreeks.rng import fill_inverse_normals_and_complements, fill_normal_rows, log

#: Scheme codes.
QE, EULER = 0, 1
SCHEMES = {"qe": QE, "euler": EULER}

#: Andersen's switching value of psi = s^2 / m^2 between the quadratic and exponential branches.
PSI_C = 1.5

#: Tangent directions carried along the path.
D_SCALE, D_V0, D_KAPPA, D_VBAR, D_XI, D_CORR = range(6)
DIRECTIONS = ("scale", "v0", "kappa", "vbar", "xi", "corr")
N_DIR = 6

#: Per-step coefficient columns (``step_coefficients``): the step length, the drift (r - q) dt,
#: the conditional mean m = M0 + M1 v and variance s^2 = S0 + S1 v of the QE variance step,
#: Andersen's K0 ... K3 (K4 = K3 for gamma1 = gamma2 = 1/2), A = K2 + K4 / 2 and the switching
#: value psi_c (a coefficient, not a compiled constant, so studies can vary it).
DT, DRIFT, M0, M1, S0, S1, K0, K1, K2, K3, A, PSI = range(12)
N_COEF = 12

#: Rows of ``row_adjoint``'s flat scratch acc, each TILE long: row 0 w (the running dx/dv_k),
#: row 1 + d direction d's derivative (the result), and row ADJ_COEF + c the sum, over a run of
#: steps of one length, of the derivatives of x with respect to step coefficient c (QE only).
ADJ_COEF = 1 + N_DIR
N_ADJ = ADJ_COEF + N_COEF

#: Relative difference of two consecutive steps' lengths below which ``row_adjoint`` counts
#: them in one run (one set of coefficient derivatives): a uniform grid's dates k / n,
#: differenced, give lengths that differ in their last bits (5 distinct values, 96 changes
#: over 252 daily steps), which are the same length.
SAME_STEP_RTOL = 1e-12

#: Scenario columns (``scenarios``): grid scale c and the model parameters of one simulation.
SC_SCALE, SC_V0, SC_KAPPA, SC_VBAR, SC_XI, SC_CORR = range(6)
N_SCEN = 6


def check_params(params):
    """Validated Heston parameters as a dict of floats.

    ``params`` maps spot, rate, div_yield (default 0), v0, kappa, vbar, xi, corr to numbers
    (units of docs/reference.md#market: variances per year, kappa per year, xi per
    sqrt(year)).  Raises ValueError naming the first parameter that is missing, not finite or
    outside its domain.  A violated Feller condition (2 kappa vbar < xi^2) is allowed: both
    schemes handle it.
    """
    # the domains of the model registry, in the order errors are reported
    from mcgreeks.models import COMMON_PARAMETERS, MODELS
    out = {}
    for parameter in COMMON_PARAMETERS + MODELS["heston"].parameters:
        name = parameter.name
        if name not in params and parameter.default is not None:
            value = parameter.default
        else:
            if name not in params:
                raise ValueError(f"Heston parameter {name!r} is missing")
            value = params[name]
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Heston parameter {name} has value {value!r}: must be a number") \
                from None
        if not parameter.holds(value):
            raise ValueError(f"Heston parameter {name} has value {value!r}: {parameter.rule()}")
        out[name] = value
    return out


def feller_ratio(params):
    """2 kappa vbar / xi^2: at least 1 when the Feller condition holds (v never reaches 0)."""
    return 2.0 * params["kappa"] * params["vbar"] / params["xi"] ** 2


def moment_explosion_time(params, omega=2.0):
    """The time T* (years) from which E[S_T^omega] is infinite under Heston, inf if it stays
    finite (always for 0 <= omega <= 1).  Depends on kappa, xi and corr alone.

    E[(S_T / F_T)^omega] = exp(A(T) + B(T) v0) with B' = a B^2 + b B + c, B(0) = 0, where
    a = xi^2 / 2, b = corr xi omega - kappa, c = omega (omega - 1) / 2; the moment is infinite
    from the time B blows up (Andersen & Piterbarg 2007, "Moment explosions in stochastic
    volatility models", Finance Stoch. 11, Prop. 3.1).  With D = b^2 - 4 a c and c > 0: no
    blow-up when D >= 0 and b < 0; T* = ln((b + sqrt D) / (b - sqrt D)) / sqrt D when D > 0 and
    b > 0 (2 / b at D = 0); T* = 2 (pi / 2 - atan(b / sqrt(-D))) / sqrt(-D) when D < 0 (B is
    then a shifted tangent).  Monte Carlo's SE of a payoff that grows like S_T (a call) needs
    E[S_T^2]: omega = 2."""
    a = 0.5 * params["xi"] ** 2
    b = params["corr"] * params["xi"] * omega - params["kappa"]
    c = 0.5 * omega * (omega - 1.0)
    if c <= 0.0 or a == 0.0:
        return math.inf
    d = b * b - 4.0 * a * c
    if d < 0.0:
        root = math.sqrt(-d)
        return 2.0 * (0.5 * math.pi - math.atan(b / root)) / root
    if b < 0.0:
        return math.inf
    if d == 0.0:
        return 2.0 / b
    root = math.sqrt(d)
    return math.log((b + root) / (b - root)) / root


# -- per-step coefficients and their parameter derivatives (Python, once per run) ---------------

def step_coefficients(dt, *, drift_rate, kappa, vbar, xi, corr, derivatives=False,
                      psi_c=PSI_C):
    """The path-independent coefficients of every step (columns ``DT`` ... ``A``), shape
    (n_steps, N_COEF); with ``derivatives=True`` also their derivatives along the tangent
    directions, shape (n_steps, N_COEF, N_DIR) (the scale direction multiplies every step by c,
    so d/dc = dt d/d(dt); v0 enters no coefficient).

    ``dt`` are the step lengths (years), ``drift_rate`` is r - q.  With E = exp(-kappa dt):
    M0 = vbar (1 - E), M1 = E, S1 = xi^2 E (1 - E) / kappa, S0 = vbar xi^2 (1 - E)^2 / (2 kappa),
    K0 = -corr kappa vbar dt / xi, K1 = dt (kappa corr / xi - 1/2) / 2 - corr / xi,
    K2 = dt (kappa corr / xi - 1/2) / 2 + corr / xi, K3 = dt (1 - corr^2) / 2, A = K2 + K3 / 2
    (Andersen 2008, with gamma1 = gamma2 = 1/2); PSI = ``psi_c``, in [1, 2] (Andersen's
    range: the quadratic branch needs psi <= 2, the exponential one psi >= 1).
    """
    if not 1.0 <= psi_c <= 2.0:
        raise ValueError(f"psi_c has value {psi_c!r}: must be in [1, 2]")
    dt = np.asarray(dt, dtype=float)
    e = elementary.exp(-kappa * dt)
    one_e = -elementary.expm1(-kappa * dt)
    x2 = xi * xi
    half = 0.5 * dt * (kappa * corr / xi - 0.5)
    c = np.empty((dt.size, N_COEF))
    c[:, DT] = dt
    c[:, DRIFT] = drift_rate * dt
    c[:, M0] = vbar * one_e
    c[:, M1] = e
    c[:, S1] = x2 * e * one_e / kappa
    c[:, S0] = vbar * x2 * one_e * one_e / (2.0 * kappa)
    c[:, K0] = -corr * kappa * vbar * dt / xi
    c[:, K1] = half - corr / xi
    c[:, K2] = half + corr / xi
    c[:, K3] = 0.5 * dt * (1.0 - corr * corr)
    c[:, A] = c[:, K2] + 0.5 * c[:, K3]
    c[:, PSI] = psi_c
    if not derivatives:
        return c
    d = np.zeros((dt.size, N_COEF, N_DIR))
    # scale: d/dc = dt d/d(dt)
    d[:, DT, D_SCALE] = dt
    d[:, DRIFT, D_SCALE] = drift_rate * dt
    d[:, M0, D_SCALE] = vbar * kappa * e * dt
    d[:, M1, D_SCALE] = -kappa * e * dt
    d[:, S1, D_SCALE] = -x2 * e * (1.0 - 2.0 * e) * dt
    d[:, S0, D_SCALE] = vbar * x2 * one_e * e * dt
    d[:, K0, D_SCALE] = c[:, K0]
    d[:, K1, D_SCALE] = half
    d[:, K2, D_SCALE] = half
    d[:, K3, D_SCALE] = c[:, K3]
    # kappa (dE/dkappa = -dt E)
    d[:, M0, D_KAPPA] = vbar * dt * e
    d[:, M1, D_KAPPA] = -dt * e
    d[:, S1, D_KAPPA] = x2 * ((1.0 - 2.0 * e) * (-dt * e) / kappa - e * one_e / kappa ** 2)
    d[:, S0, D_KAPPA] = 0.5 * vbar * x2 * (2.0 * one_e * dt * e / kappa - one_e ** 2 / kappa ** 2)
    d[:, K0, D_KAPPA] = -corr * vbar * dt / xi
    d[:, K1, D_KAPPA] = 0.5 * dt * corr / xi
    d[:, K2, D_KAPPA] = 0.5 * dt * corr / xi
    # vbar
    d[:, M0, D_VBAR] = one_e
    d[:, S0, D_VBAR] = x2 * one_e * one_e / (2.0 * kappa)
    d[:, K0, D_VBAR] = -corr * kappa * dt / xi
    # xi
    d[:, S1, D_XI] = 2.0 * xi * e * one_e / kappa
    d[:, S0, D_XI] = vbar * xi * one_e * one_e / kappa
    d[:, K0, D_XI] = corr * kappa * vbar * dt / x2
    d[:, K1, D_XI] = -0.5 * dt * kappa * corr / x2 + corr / x2
    d[:, K2, D_XI] = -0.5 * dt * kappa * corr / x2 - corr / x2
    # corr
    d[:, K0, D_CORR] = -kappa * vbar * dt / xi
    d[:, K1, D_CORR] = 0.5 * dt * kappa / xi - 1.0 / xi
    d[:, K2, D_CORR] = 0.5 * dt * kappa / xi + 1.0 / xi
    d[:, K3, D_CORR] = -dt * corr
    d[:, A] = d[:, K2] + 0.5 * d[:, K3]
    return c, d


def scenario_row(params, scale=1.0, **moves):
    """One scenario: [c, v0, kappa, vbar, xi, corr] with any parameters replaced by ``moves``."""
    p = dict(params, **moves)
    return np.array([scale, p["v0"], p["kappa"], p["vbar"], p["xi"], p["corr"]])


def scenario_coefficients(dt, params, scenarios, psi_c=PSI_C):
    """Step coefficients of every scenario row: shape (n_scenarios, n_steps, N_COEF)."""
    out = np.empty((len(scenarios), np.size(dt), N_COEF))
    for s, row in enumerate(scenarios):
        out[s] = step_coefficients(np.asarray(dt) * row[SC_SCALE],
                                   drift_rate=params["rate"] - params["div_yield"],
                                   kappa=row[SC_KAPPA], vbar=row[SC_VBAR], xi=row[SC_XI],
                                   corr=row[SC_CORR], psi_c=psi_c)
    return out


# -- one step of one path ------------------------------------------------------------------------

@kernel(inline=True)
def qe_moments(coef, v):
    """What both QE branches need from variance v, with one division: (m, s2, quadratic, t,
    one_p, beta, r_beta).  m = M0 + M1 v and s2 = S0 + S1 v are the conditional mean and
    variance of the next variance, psi = s2 / m^2; quadratic = psi <= psi_c, tested as
    s2 <= psi_c m^2; t = 2 / psi; one_p = 1 - p = 2 / (psi + 1) (p = (psi - 1) / (psi + 1), the
    atom's mass); beta = (1 - p) / m and r_beta = 1 / beta.  With w = s2 + m^2 and
    d = 1 / (s2 w m): t = 2 m^3 w d, 1 - p = 2 m^3 s2 d, beta = 2 m^2 s2 d, 1 / beta =
    s2 w^2 d / 2.  Divisions and square roots bound the step (about 2 and 3 cycles each, even
    vectorized), so the five divisions these take one at a time are one here."""
    m = coef[M0] + coef[M1] * v
    s2 = coef[S0] + coef[S1] * v
    m2 = m * m
    w = s2 + m2
    d = 1.0 / (s2 * w * m)
    m3d = 2.0 * m2 * m * d
    return (m, s2, s2 <= coef[PSI] * m2, m3d * w, m3d * s2, 2.0 * m2 * s2 * d,
            0.5 * s2 * w * w * d)


@kernel(inline=True)
def _quadratic(m, t, zv, a_coef):
    """Andersen's quadratic branch (psi <= psi_c), given t = 2 / psi (``qe_moments``):
    v_next = a (b + zv)^2 with b^2 = t - 1 + sqrt(t (t - 1)) and a = m / (1 + b^2), and
    ln M = A b^2 a / (1 - 2 A a) - ln(1 - 2 A a) / 2 where den = 1 - 2 A a > 0 (``corrected``;
    ``_quadratic_log_m``).  Returns (v_next, corrected, root, b2, b, a, bz, den, a_den),
    a_den = a / den; the logarithm is left to the caller, so that a tile computes one for both
    branches.  With g = 1 + b^2 and h = g - 2 A m (den = h / g), a, den and a / den come from
    one reciprocal r = 1 / (g h): a = m h r, den = h^2 r, a / den = m g r."""
    root = math.sqrt(t * (t - 1.0))
    b2 = t - 1.0 + root
    b = math.sqrt(b2)
    g = 1.0 + b2
    h = g - 2.0 * a_coef * m
    hs = h if h != 0.0 else 1.0         # h = 0: no correction, and a stays m / g
    r = 1.0 / (g * hs)
    a = m * hs * r
    bz = b + zv
    return a * bz * bz, h > 0.0, root, b2, b, a, bz, h * h * r, m * g * r


@kernel(inline=True)
def _quadratic_log_m(a_coef, b2, a_den, log_den):
    """ln M of the quadratic branch, given a_den = a / den and log_den = ln(1 - 2 A a)
    (``_quadratic``)."""
    return a_coef * b2 * a_den - 0.5 * log_den


@kernel(inline=True)
def _exponential(one_p, beta, tail, a_coef):
    """Andersen's exponential branch (psi > psi_c), given 1 - p and beta (``qe_moments``) and
    tail = 1 - U (U = Phi(zv)): v_next = ln((1 - p) / (1 - U)) / beta, or 0 (the atom) when
    U <= p; ln M = ln(mm), mm = p + beta (1 - p) / (beta - A), where beta > A (``corrected``).
    Returns (ratio, corrected, mm, p), ratio = (1 - p) / (1 - U), both quotients from one
    reciprocal of tail (beta - A): the logarithms of ratio and mm are left to the caller
    (``_exponential_v``)."""
    p = 1.0 - one_p
    gap = beta - a_coef
    gs = gap if gap != 0.0 else 1.0     # gap = 0: no correction
    r = 1.0 / (tail * gs)
    return one_p * gs * r, gap > 0.0, p + beta * one_p * tail * r, p


@kernel(inline=True)
def _exponential_v(ratio, r_beta, log_ratio):
    """(v_next, ell) of the exponential branch given log_ratio = ln(ratio) (``_exponential``)
    and r_beta = 1 / beta: v_next = ell / beta."""
    ell = log_ratio if ratio > 1.0 else 0.0
    return ell * r_beta, ell


@kernel(inline=True)
def _log_spot_step(coef, v, v_next, zs, corrected, log_m):
    """(dx, sig): the log-spot increment drift + corr_term + K2 v_next + sig zs with
    sig = sqrt(K3 (v + v_next)) and corr_term = -ln M - K3 v / 2 (Andersen's K0* + K1 v) when the
    martingale correction exists, else K0 + K1 v."""
    if corrected:
        corr_term = -log_m - 0.5 * coef[K3] * v
    else:
        corr_term = coef[K0] + coef[K1] * v
    sig = math.sqrt(coef[K3] * (v + v_next))
    return coef[DRIFT] + corr_term + coef[K2] * v_next + sig * zs, sig


@kernel
def qe_step(v, zv, zs, tail, coef):
    """One QE step from variance v with normals (zv, zs), tail = 1 - U of zv = Phi^-1(U)
    (``tile_normals``) and the step's coefficient row, one path at a time (the dual bound's
    inner paths): (v_next, dx, sig).

    v_next >= 0, the log-spot increment dx = drift + corr_term + K2 v_next + sig zs with
    sig = sqrt(K3 (v + v_next)) and corr_term = -ln M - K3 v / 2 (Andersen's K0* + K1 v), or
    K0 + K1 v in the rare case where M does not exist (A >= 1/(2a) or A >= beta, possible only
    for corr > 0 and large steps: then the step is Andersen's uncorrected one).  The same
    arithmetic, hence the same bits, as ``qe_tile_step`` (logarithms by ``rng.log``), but only
    the branch taken is computed."""
    m, _, quadratic, t, one_p, beta, r_beta = qe_moments(coef, v)
    a_coef = coef[A]
    if quadratic:
        v_next, corrected, _, b2, _, _, _, den, a_den = _quadratic(m, t, zv, a_coef)
        log_m = _quadratic_log_m(a_coef, b2, a_den, log(den)) if corrected else 0.0
    else:
        ratio, corrected, mm, _ = _exponential(one_p, beta, tail, a_coef)
        v_next = _exponential_v(ratio, r_beta, log(ratio))[0]
        log_m = log(mm) if corrected else 0.0
    dx, sig = _log_spot_step(coef, v, v_next, zs, corrected, log_m)
    return v_next, dx, sig


_FRAC_1_SQRT_2PI = 0.3989422804014327


@kernel
def row_adjoint(z, m, scheme, coef, scen, dcoef, v, g_t, ends, adj_zs, adj_zv, acc):
    """The derivatives of the log-spot x at grid date g_t with respect to every step's rows and
    to the model's parameters, along the simulated path: adj_zs[k, i] = dx_{g_t} / dzs_k and
    adj_zv[k, i] = dx_{g_t} / dzv_k for k <= g_t (the spot's own and the variance's normals,
    ``tile_normals``' layout in z), and acc[(1 + d) * TILE + i] = dx_{g_t} / d(direction d)
    (``DIRECTIONS``: the grid scale c, v0, kappa, vbar, xi, corr, the coefficients' part of
    corr, as the forward tangents tx[d, g_t, i] of ``simulate_tile``), with the scenario's
    coefficients ``coef``, their derivatives ``dcoef`` (n_steps, N_COEF, N_DIR) and parameters
    ``scen`` and the path's stored variances v (``simulate_tile``; QE recomputes each step's
    partials from them, to the bit the same step).  acc: flat scratch of N_ADJ rows of TILE
    (``ADJ_COEF``); its row 0 holds w below.

    One backward sweep (reverse mode, Giles & Glasserman 2006 "Smoking adjoints"): with
    x_{g_t} = Σ_k dx_k(v_{k-1}, v_k, zs_k, zv_k; θ) and v_k = F_k(v_{k-1}, zv_k; θ),
    w_k = dx_{g_t}/dv_k obeys w_{k-1} = (w_k + ∂dx_k/∂v_k) ∂F_k/∂v_{k-1} + ∂dx_k/∂v_{k-1} from
    w_{g_t} = 0, dx_{g_t}/dzv_k = (w_k + ∂dx_k/∂v_k) ∂F_k/∂zv_k + ∂dx_k/∂zv_k, and
    dx_{g_t}/dθ = Σ_k (∂dx_k/∂θ + (w_k + ∂dx_k/∂v_k) ∂F_k/∂θ) + w_{-1} dv0/dθ, the partials in θ
    through the step's coefficients (``dcoef``).  Those partials are linear in the coefficients'
    derivatives, which are the same on every step of one length: QE sums, per path, the
    derivatives with respect to each coefficient over a run of such steps and multiplies them
    by the run's coefficient derivatives once, at the run's end (``_coefficient_run``).  Five
    direction sums a step took the sweep from 6.3 to 10.5 ns a path-step on one thread (the
    STAC-like basket's 252 daily steps); ten coefficient sums take it to 7.5.  The sums over a
    run partly cancel, so the directions move by up to 3e-13 of their size against the
    step-by-step sums.  So one sweep gives every direction's derivative at a path's own end
    date, where the forward tangents must store every date (a basket of 5 names, 252 steps:
    15 MB of tangents a tile).  The two agree up to rounding.  Euler's state is the raw
    variance (the stored v+ gives its sign), whose own term carries through where it is
    negative.  Like the tangents, the flow ∂F/∂v is heavy-tailed once the Feller condition
    fails (module docstring).

    ends[i] (a grid index <= g_t, as a float) ends path i earlier: its derivatives are those of
    x at grid date ends[i] (an exercisable trade's stopping date), zero for k > ends[i].  The
    path's own steps are multiplied by 1.0, so a path ending at g_t keeps its bits."""
    kappa, vbar, xi, corr = scen[SC_KAPPA], scen[SC_VBAR], scen[SC_XI], scen[SC_CORR]
    corr_bar = correlation_complement(corr)
    n_rows = z.shape[0] // 3
    v0 = scen[SC_V0]
    for r in range(N_ADJ):
        for i in range(m):
            acc[r * TILE + i] = 0.0
    if scheme == QE:
        for k in range(g_t, -1, -1):
            _qe_adjoint_step(coef[k], z[2 * k], z[2 * k + 1], z[2 * n_rows + k],
                             v[k - 1] if k > 0 else v[0], k > 0, v0, k, ends, m, adj_zs[k],
                             adj_zv[k], acc)
            # a run of steps of one length ends at its first step, whose coefficient
            # derivatives serve it: runs are the grid's, wherever the sweep starts, so a path
            # ended early keeps the bits of a sweep from its own end
            if k == 0 or abs(coef[k - 1, DT] - coef[k, DT]) > SAME_STEP_RTOL * coef[k, DT]:
                _coefficient_run(dcoef[k], m, acc)
    else:
        for k in range(g_t, -1, -1):
            _euler_adjoint_step(coef[k], z[2 * k], z[2 * k + 1], v[k - 1] if k > 0 else v[0],
                                k > 0, v0, k, ends, m, kappa, vbar, xi, corr, corr_bar,
                                adj_zs[k], adj_zv[k], acc)
    for i in range(m):          # v0 enters no coefficient: its derivative is w_{-1}
        acc[(1 + D_V0) * TILE + i] += acc[i]


@kernel(inline=True)
def _euler_adjoint_step(row, zs, zv, v_prev, has_prev, v0, k, ends, m, kappa, vbar, xi, corr,
                        corr_bar, adj_zs, adj_zv, acc):
    """``row_adjoint``'s Euler step k: the partials of ``euler_step`` (the derivatives
    ``simulate_tile``'s Euler tangents carry, with the previous variance held)."""
    dt, drift = row[DT], row[DRIFT]
    for i in range(m):
        vi = v_prev[i] if has_prev else v0
        zs_i, zv_i = zs[i], zv[i]
        live = 1.0 if k <= ends[i] else 0.0
        positive = vi > 0.0
        sq = math.sqrt(vi * dt) if positive else 0.0
        noise = corr * zv_i + corr_bar * zs_i
        a_prev = 0.0
        f_prev = 1.0
        if positive:
            a_prev = -0.5 * dt + 0.5 * noise * sq / vi
            f_prev = 1.0 - kappa * dt + 0.5 * xi * zv_i * sq / vi
        w = acc[i]
        adj_zs[i] = sq * corr_bar * live
        adj_zv[i] = (w * xi * sq + sq * corr) * live
        acc[i] = w * f_prev + a_prev * live
        # the step's partials in each direction, the previous variance held: only the scale
        # moves dt (and sqrt(v dt) with it)
        d_sq = 0.5 * vi * dt / sq if sq > 0.0 else 0.0
        _add_direction(acc, i, D_SCALE, live, w, drift - 0.5 * vi * dt + d_sq * noise,
                       kappa * (vbar - vi) * dt + xi * d_sq * zv_i)
        _add_direction(acc, i, D_KAPPA, live, w, 0.0, (vbar - vi) * dt)
        _add_direction(acc, i, D_VBAR, live, w, 0.0, kappa * dt)
        _add_direction(acc, i, D_XI, live, w, 0.0, sq * zv_i)
        d_corr = sq * (zv_i - corr / corr_bar * zs_i) if corr_bar > 0.0 else 0.0
        _add_direction(acc, i, D_CORR, live, w, d_corr, 0.0)


@kernel(inline=True)
def _add_direction(acc, i, d, live, total, d_dx, d_v):
    """acc's direction d on path i += the step's ∂dx/∂θ_d (d_dx, counted while the path lives)
    + (w + ∂dx/∂v_k) ∂F/∂θ_d (total times d_v)."""
    acc[(1 + d) * TILE + i] += live * d_dx + total * d_v


@kernel(inline=True)
def _coefficient_run(dk, m, acc):
    """The end of a run of QE steps with the coefficient derivatives dk (``row_adjoint``): each
    direction d's row += Σ_c dk[c, d] (the run's sum of dx/d coef_c, row ADJ_COEF + c), and
    those sums cleared for the next run.  v0 enters no coefficient (its row is w alone)."""
    for d in range(N_DIR):
        if d == D_V0:
            continue
        c_drift, c_m0, c_m1, c_s0, c_s1 = dk[DRIFT, d], dk[M0, d], dk[M1, d], dk[S0, d], dk[S1, d]
        c_k0, c_k1, c_k2, c_k3, c_a = dk[K0, d], dk[K1, d], dk[K2, d], dk[K3, d], dk[A, d]
        row = (1 + d) * TILE
        for i in range(m):
            acc[row + i] += (c_drift * acc[(ADJ_COEF + DRIFT) * TILE + i]
                             + c_m0 * acc[(ADJ_COEF + M0) * TILE + i]
                             + c_m1 * acc[(ADJ_COEF + M1) * TILE + i]
                             + c_s0 * acc[(ADJ_COEF + S0) * TILE + i]
                             + c_s1 * acc[(ADJ_COEF + S1) * TILE + i]
                             + c_k0 * acc[(ADJ_COEF + K0) * TILE + i]
                             + c_k1 * acc[(ADJ_COEF + K1) * TILE + i]
                             + c_k2 * acc[(ADJ_COEF + K2) * TILE + i]
                             + c_k3 * acc[(ADJ_COEF + K3) * TILE + i]
                             + c_a * acc[(ADJ_COEF + A) * TILE + i])
    for c in range(N_COEF):
        for i in range(m):
            acc[(ADJ_COEF + c) * TILE + i] = 0.0


@kernel
def _qe_adjoint_step(row, zs, zv, tail, v_prev, has_prev, v0, k, ends, m, adj_zs, adj_zv,
                     acc):
    """``row_adjoint``'s QE step k for m paths at once, in a loop LLVM vectorizes (each path's
    step recomputed from its stored variance v_prev[i], or v0 when not has_prev: the same
    step to the bit; its partials ``_qe_partials``', and d v_next / d zv: 2 a (b + zv) in the
    quadratic branch, phi(zv) / (beta (1 - U)) = phi(zv) m ratio / (1 - p)^2 in the exponential
    one above its atom (v_next = ln((1 - p) / (1 - U)) / beta, d(1 - U)/dzv = -phi(zv)), 0 on
    the atom).  Without the exponential branch where no path takes it (``all_quadratic``)."""
    if all_quadratic(row, v_prev, m) if has_prev else is_quadratic(row, v0):
        _qe_adjoint_paths(row, zs, zv, tail, v_prev, has_prev, v0, k, ends, m, adj_zs, adj_zv,
                          acc, True)
    else:
        pending_tails(zv, tail, m)
        _qe_adjoint_paths(row, zs, zv, tail, v_prev, has_prev, v0, k, ends, m, adj_zs, adj_zv,
                          acc, False)


@kernel(inline=True)
def _qe_adjoint_paths(row, zs, zv, tail, v_prev, has_prev, v0, k, ends, m, adj_zs, adj_zv, acc,
                      quadratic_only):
    """``_qe_adjoint_step``'s loop, with ``quadratic_only`` a constant of each inlined copy."""
    a_coef = row[A]
    for i in range(m):
        vi = v_prev[i] if has_prev else v0
        zs_i, zv_i = zs[i], zv[i]
        live = 1.0 if k <= ends[i] else 0.0
        (vn, _, sig, quadratic, corrected, t, root, b2, b, a, bz, den, mm, p, beta, ell, s2,
         mean, ratio) = _qe_values(row, vi, zs_i, zv_i, tail[i], quadratic_only)
        vm, vs, lm, ls, la = _qe_partials(a_coef, quadratic, corrected, t, root, b2, b, a, bz,
                                          den, mm, p, beta, ell, s2, mean, vn)
        half_rsig = 0.5 / sig if sig > 0.0 else 0.0
        spread = 0.5 * row[K3] * zs_i / sig if sig > 0.0 else 0.0
        a_prev = (-(lm * row[M1] + ls * row[S1]) - 0.5 * row[K3] + spread) if corrected \
            else row[K1] + spread
        b_next = row[K2] + spread
        f_prev = vm * row[M1] + vs * row[S1]
        r_1p = 0.5 * (s2 / (mean * mean) + 1.0)     # 1 / (1 - p)
        density = vecmath.exp(-0.5 * zv_i * zv_i) * _FRAC_1_SQRT_2PI
        f_exp = density * mean * ratio * r_1p * r_1p if ratio > 1.0 else 0.0
        f_zv = 2.0 * a * bz if quadratic else f_exp
        adj_zs[i] = sig * live
        total = (acc[i] + b_next) * live
        adj_zv[i] = total * f_zv
        acc[i] = total * f_prev + a_prev * live
        # the step's partials in its coefficients, the previous variance held (those
        # ``qe_tile_tangent_step``'s tangents carry): along a direction, Σ_c (its dk_c) times
        # these, summed at the run's end (``_coefficient_run``).  m = M0 + M1 v, s² = S0 + S1 v
        # move v_next (vm, vs) and, with A, the martingale correction (lm, ls, la); K0 + K1 v
        # stands in for the correction where it fails
        kept = live if corrected else 0.0
        on_m = total * vm - kept * lm
        on_s = total * vs - kept * ls
        plain = live - kept
        _add_coefficient(acc, i, DRIFT, live)
        _add_coefficient(acc, i, M0, on_m)
        _add_coefficient(acc, i, M1, on_m * vi)
        _add_coefficient(acc, i, S0, on_s)
        _add_coefficient(acc, i, S1, on_s * vi)
        _add_coefficient(acc, i, K0, plain)
        _add_coefficient(acc, i, K1, plain * vi)
        _add_coefficient(acc, i, K2, live * vn)
        _add_coefficient(acc, i, K3, live * (vi + vn) * zs_i * half_rsig - 0.5 * kept * vi)
        _add_coefficient(acc, i, A, -kept * la)


@kernel(inline=True)
def _add_coefficient(acc, i, c, value):
    """The run's dx/d coef_c on path i += this step's (``_coefficient_run``)."""
    acc[(ADJ_COEF + c) * TILE + i] += value


@kernel(inline=True)
def is_quadratic(coef, v):
    """Whether QE steps from variance v by its quadratic branch: ``qe_moments``' test
    s2 <= psi_c m^2, the same expression, so the same answer to the bit."""
    mean = coef[M0] + coef[M1] * v
    s2 = coef[S0] + coef[S1] * v
    return s2 <= coef[PSI] * (mean * mean)


@kernel(inline=True)
def all_quadratic(coef, state_v, m):
    """Whether every one of m paths at variances state_v takes QE's quadratic branch this step
    (``is_quadratic``).  A tile where all do is stepped without the exponential branch's
    division and logarithm: with a Feller ratio above about 1 and daily steps no path leaves
    the quadratic branch, and skipping the other branch saves a third of the step."""
    n = 0
    for i in range(m):
        n += 1 if is_quadratic(coef, state_v[i]) else 0
    return n == m


@kernel(inline=True)
def _qe_tile_values(coef, zs, zv, tail, m, state_v, state_x, x_next, v_next, quadratic_only):
    """``qe_tile_step``'s loop, with ``quadratic_only`` a constant of each inlined copy."""
    for i in range(m):
        vn, dx = _qe_values(coef, state_v[i], zs[i], zv[i], tail[i], quadratic_only)[:2]
        state_x[i] += dx
        x_next[i] = state_x[i]
        v_next[i] = vn
        state_v[i] = vn


@kernel(inline=True)
def qe_tile_step(coef, zs, zv, tail, m, state_v, state_x, x_next, v_next):
    """One QE step of m paths at once, without tangents or scores: from the variances state_v
    and log-spots state_x, x_next[i] = state_x[i] = state_x[i] + dx and v_next[i] = state_v[i] =
    the new variance (zs, zv, tail: the step's rows of ``tile_normals``).

    Bit for bit ``qe_step`` (``_qe_values``: the same expressions), written so that LLVM
    vectorizes it: both branches are computed for every path and one is selected, or the
    quadratic one alone where every path takes it (``all_quadratic``)."""
    if all_quadratic(coef, state_v, m):
        _qe_tile_values(coef, zs, zv, tail, m, state_v, state_x, x_next, v_next, True)
    else:
        pending_tails(zv, tail, m)
        _qe_tile_values(coef, zs, zv, tail, m, state_v, state_x, x_next, v_next, False)


#: Rows of ``qe_tile_tangent_step``'s scratch: per path, the running log-spot, the variance at
#: the step's start, sig, and the partials of ``qe_step`` (vm, vs, lm, ls, la; lm, ls, la 0
#: where the martingale correction fails), the correction flag (1 or 0) and 1 / (2 sig) (0 where
#: sig = 0).  Row r holds path i at [r * TILE + i] of one flat array: rows a constant TILE
#: apart are what LLVM proves disjoint, where rows of a 2-D array (a run-time stride) or
#: separate arrays (a run-time check for each pair) keep the loop scalar.
PT_X, PT_V, PT_SIG, PT_VM, PT_VS, PT_LM, PT_LS, PT_LA, PT_CORRECTED, PT_HALF_RSIG = range(10)
N_PT = 10


@kernel(inline=True)
def _qe_values(coef, vi, zs, zv, tail, quadratic_only):
    """``qe_tile_step``'s arithmetic for one path (the same expressions, so the same bits as
    ``qe_step``): (v_next, dx, sig) and what the partials reuse (quadratic, corrected, t, root,
    b2, b, a, bz, den, mm, p, beta, ell, s2, mean, ratio).  ``quadratic_only`` (a constant, for
    paths known to take the quadratic branch: ``all_quadratic``) lets LLVM drop the exponential
    branch's arithmetic, whose results are then unread."""
    a_coef = coef[A]
    mean, s2, quadratic, t, one_p, beta, r_beta = qe_moments(coef, vi)
    if quadratic_only:
        quadratic = True
    vq, cq, root, b2, b, a, bz, den, a_den = _quadratic(mean, t, zv, a_coef)
    ratio, ce, mm, p = _exponential(one_p, beta, tail, a_coef)
    # one logarithm serves the martingale correction of either branch
    log_corr = log(den if quadratic else mm)
    ve, ell = _exponential_v(ratio, r_beta, log(1.0 if quadratic else ratio))
    corrected = cq if quadratic else ce
    if quadratic:
        vn, log_m = vq, _quadratic_log_m(a_coef, b2, a_den, log_corr)
    else:
        vn, log_m = ve, log_corr
    dx, sig = _log_spot_step(coef, vi, vn, zs, corrected, log_m if corrected else 0.0)
    return (vn, dx, sig, quadratic, corrected, t, root, b2, b, a, bz, den, mm, p, beta, ell,
            s2, mean, ratio)


@kernel(inline=True)
def _qe_partials(a_coef, quadratic, corrected, t, root, b2, b, a, bz, den, mm, p, beta, ell, s2,
                 mean, vn):
    """``qe_step``'s partials (vm, vs, lm, ls, la; the last three 0 where the martingale
    correction fails) from ``_qe_values``' intermediates, both branches computed and one
    selected, so that a loop over paths vectorizes; qe_step's divisions are products with six
    reciprocals here (m, root b, den, psi + 1, beta - A, M), so the two agree up to rounding."""
    r_m = 1.0 / mean
    psi = s2 * r_m * r_m
    psi_m = -2.0 * psi * r_m
    psi_s = r_m * r_m
    # the quadratic branch's
    r_rb = 1.0 / (root * b)
    b2_psi = (1.0 + (2.0 * t - 1.0) * (0.5 * b * r_rb)) * (-0.5 * t * t)
    b_psi = b2_psi * (0.5 * root * r_rb)
    a_m = a * r_m
    a_b2 = -a * a_m
    v_psi = bz * bz * a_b2 * b2_psi + 2.0 * a * bz * b_psi
    r_den = 1.0 / den
    l_a = a_coef * b2 * r_den * r_den + a_coef * r_den
    l_psi = (l_a * a_b2 + a_coef * a * r_den) * b2_psi
    vm_q, vs_q = bz * bz * a_m + v_psi * psi_m, v_psi * psi_s
    lm_q, ls_q = l_a * a_m + l_psi * psi_m, l_psi * psi_s
    la_q = b2 * a * r_den * r_den + a * r_den
    # the exponential branch's
    r_p1 = 1.0 / (psi + 1.0)
    p_psi = 2.0 * r_p1 * r_p1
    r_1p = 0.5 * (psi + 1.0)                    # 1 / (1 - p)
    v_p = mean * (ell - 1.0) * r_1p * r_1p
    live = vn > 0.0
    vm_e = ell * r_1p + v_p * p_psi * psi_m if live else 0.0
    vs_e = v_p * p_psi * psi_s if live else 0.0
    r_gap = 1.0 / (beta - a_coef)
    r_mm = 1.0 / mm
    mm_beta = -(1.0 - p) * a_coef * r_gap * r_gap
    mm_psi = ((1.0 - beta * r_gap) - mm_beta * r_m) * p_psi
    lm_e = (-mm_beta * beta * r_m + mm_psi * psi_m) * r_mm
    ls_e = mm_psi * psi_s * r_mm
    la_e = beta * (1.0 - p) * r_gap * r_gap * r_mm
    if not corrected:
        return (vm_q if quadratic else vm_e), (vs_q if quadratic else vs_e), 0.0, 0.0, 0.0
    if quadratic:
        return vm_q, vs_q, lm_q, ls_q, la_q
    return vm_e, vs_e, lm_e, ls_e, la_e


@kernel(inline=True)
def _qe_tile_partials(coef, zs, zv, tail, m, partials, state_v, part, x_next, v_next,
                      quadratic_only):
    """``qe_tile_tangent_step``'s first pass: the step, and with ``partials`` its partials into
    ``part`` (``quadratic_only``: a constant of each inlined copy, as in ``_qe_values``)."""
    a_coef = coef[A]
    if not partials:
        for i in range(m):
            vi = state_v[i]
            vn, dx, sig = _qe_values(coef, vi, zs[i], zv[i], tail[i], quadratic_only)[:3]
            part[PT_X * TILE + i] += dx
            x_next[i] = part[PT_X * TILE + i]
            v_next[i] = vn
            state_v[i] = vn
            part[PT_SIG * TILE + i] = sig
        return
    for i in range(m):
        vi = state_v[i]
        (vn, dx, sig, quadratic, corrected, t, root, b2, b, a, bz, den, mm, p, beta, ell, s2,
         mean, _) = _qe_values(coef, vi, zs[i], zv[i], tail[i], quadratic_only)
        part[PT_X * TILE + i] += dx
        x_next[i] = part[PT_X * TILE + i]
        v_next[i] = vn
        state_v[i] = vn
        part[PT_V * TILE + i] = vi
        part[PT_SIG * TILE + i] = sig
        vm, vs, lm, ls, la = _qe_partials(a_coef, quadratic, corrected, t, root, b2, b, a, bz,
                                          den, mm, p, beta, ell, s2, mean, vn)
        part[PT_VM * TILE + i] = vm
        part[PT_VS * TILE + i] = vs
        part[PT_LM * TILE + i] = lm
        part[PT_LS * TILE + i] = ls
        part[PT_LA * TILE + i] = la
        part[PT_CORRECTED * TILE + i] = 1.0 if corrected else 0.0
        part[PT_HALF_RSIG * TILE + i] = 0.5 / sig if sig > 0.0 else 0.0


@kernel
def qe_tile_tangent_step(coef, dk, zs, zv, tail, m, tangents_from, partials, state_v, part,
                         tan_x, tan_v, x_next, v_next):
    """One QE step of m <= TILE paths at once with what ``simulate_tile`` carries beside the
    path: x_next[i] and v_next[i] as ``qe_tile_step`` (bit for bit ``qe_step``),
    part[PT_SIG * TILE + i] (the log-spot noise's sig) and, with ``partials``, the tangents of
    the directions tangents_from .. N_DIR - 1 in tan_x, tan_v (``dk``: the step's coefficient
    derivatives).  part: the flat (N_PT * TILE) scratch, whose PT_X row holds the running
    log-spot.

    Two passes, each a loop over the paths that LLVM vectorizes: the step and its partials
    (both branches computed, one selected, or the quadratic one alone where every path takes
    it: ``all_quadratic``), then each direction's tangent update.  A path at a
    time, the partials' 20-odd divisions and branch tests cost 35 ns a path-step and each
    direction 5 more; here the partials divide by six reciprocals (m, root b, den, psi + 1,
    beta - A, M), so they equal ``qe_step``'s up to rounding, not bit for bit."""
    if partials and all_quadratic(coef, state_v, m):
        _qe_tile_partials(coef, zs, zv, tail, m, True, state_v, part, x_next, v_next, True)
    else:
        # without partials (scores alone, a rare request) one copy serves: each costs seconds
        # of compiling
        pending_tails(zv, tail, m)
        _qe_tile_partials(coef, zs, zv, tail, m, partials, state_v, part, x_next, v_next, False)
    if not partials:
        return
    for d in range(tangents_from, N_DIR):
        # the step's coefficient derivatives along d as scalars, so the loop reads only rows
        dm0, dm1, ds0, ds1 = dk[M0, d], dk[M1, d], dk[S0, d], dk[S1, d]
        dk0, dk1, dk2, dk3, da, ddrift = dk[K0, d], dk[K1, d], dk[K2, d], dk[K3, d], dk[A, d], \
            dk[DRIFT, d]
        tx, tv = tan_x[d], tan_v[d]
        for i in range(m):
            vi = part[PT_V * TILE + i]
            dvi = tv[i]
            dm = dm0 + dm1 * vi + coef[M1] * dvi
            ds = ds0 + ds1 * vi + coef[S1] * dvi
            dvn = part[PT_VM * TILE + i] * dm + part[PT_VS * TILE + i] * ds
            corrected_term = (-(part[PT_LM * TILE + i] * dm + part[PT_LS * TILE + i] * ds
                                + part[PT_LA * TILE + i] * da)
                              - 0.5 * (dk3 * vi + coef[K3] * dvi))
            plain_term = dk0 + dk1 * vi + coef[K1] * dvi
            dcorr = corrected_term if part[PT_CORRECTED * TILE + i] > 0.0 else plain_term
            dsig = (dk3 * (vi + v_next[i]) + coef[K3] * (dvi + dvn)) \
                * part[PT_HALF_RSIG * TILE + i]
            tx[i] += ddrift + dcorr + dk2 * v_next[i] + coef[K2] * dvn + dsig * zs[i]
            tv[i] = dvn


@kernel
def euler_step(v, zv, zs, dt, drift, kappa, vbar, xi, corr, corr_bar):
    """One full-truncation Euler step: (v_next (may be < 0), dx, sig, sqrt(v+ dt)).

    v_next = v + kappa (vbar - v+) dt + xi sqrt(v+ dt) zv,
    dx = drift - v+ dt / 2 + sqrt(v+ dt) (corr zv + corr_bar zs), corr_bar = sqrt(1 - corr^2);
    sig = sqrt(v+ dt) corr_bar is dx's standard deviation given zv."""
    vp = v if v > 0.0 else 0.0
    sq = math.sqrt(vp * dt)
    v_next = v + kappa * (vbar - vp) * dt + xi * sq * zv
    dx = drift - 0.5 * vp * dt + sq * (corr * zv + corr_bar * zs)
    return v_next, dx, sq * corr_bar, sq


@kernel
def correlation_complement(corr):
    """sqrt(1 - corr^2), the weight of the spot's own noise zs (from (1 - corr)(1 + corr), which
    keeps its digits as |corr| -> 1)."""
    return math.sqrt(max(0.0, (1.0 - corr) * (1.0 + corr)))


@kernel
def step_sd(scheme, coef, corr_bar, v_prev, v_next):
    """The standard deviation sig of one step's log-spot noise sig zs given the stored variances
    at its ends (v_prev at the step's start, v0 for the first step): sqrt(K3 (v_prev + v_next))
    for QE, sqrt(v_prev dt) corr_bar for Euler (whose stored variance is already v+).  The same
    expression, hence the same bits, as the ``sig`` of ``qe_step`` and ``euler_step``."""
    if scheme == QE:
        return math.sqrt(coef[K3] * (v_prev + v_next))
    return math.sqrt(v_prev * coef[DT]) * corr_bar


@kernel
def last_noise(scheme, coef, corr_bar, v0, v, z, k, i):
    """The log-spot noise of path i drawn last up to grid date k, for vibrato: (s, zs, j), j the
    last step <= k whose noise sig_j zs_j is not degenerate (sig_j > 0), s = sig_j and zs = zs_j
    (z[2j, i]).  Given the variance path and the normals before step j, ln S at grid[k] is then
    Normal(ln S_k - s zs, s^2): the steps after j add no noise.  j = k (the step ending at
    grid[k]) unless both of its variances are 0 (QE) or its starting one is (Euler).
    (0, 0, -1) when no step up to k has noise (possible only with v0 = 0 or |corr| = 1): ln S_k
    is then a deterministic function of S0 given the variance path.  ``coef``: the scenario's step
    coefficients; ``v``: the stored variances (``simulate_tile``)."""
    j = k
    while j >= 0:
        v_prev = v[j - 1, i] if j > 0 else v0
        s = step_sd(scheme, coef[j], corr_bar, v_prev, v[j, i])
        if s > 0.0:
            return s, z[2 * j, i], j
        j -= 1
    return 0.0, 0.0, -1


@kernel
def qe_tile_path(coef, z, m, state_v, state_x, x, v):
    """x and v of m paths over the grid of ``coef`` (its first coef.shape[0] steps when
    shorter than z's) by ``qe_tile_step``, from the variances state_v (overwritten) and the
    draws z (``tile_normals``); state_x is scratch of m values.
    The running log-spot lives in state_x, not in x[k - 1]: with two rows of one array LLVM
    cannot rule out their overlap and does not vectorize the step (measured: 62 against 20 ns a
    path-step)."""
    for i in range(m):
        state_x[i] = 0.0
    tails = z.shape[0] // 3 * 2       # z's rows of 1 - U, after its 2 n_steps normal rows
    for k in range(coef.shape[0]):
        qe_tile_step(coef[k], z[2 * k], z[2 * k + 1], z[tails + k], m, state_v, state_x, x[k],
                     v[k])


# -- a tile of paths over the whole grid ---------------------------------------------------------

@kernel
def tile_normals(key0, key1, stream, path, m, n_steps, z):
    """The draws of paths path..path+m-1 into z (3 n_steps rows): z[j, :m] = normal draw j,
    j = 0 .. 2 n_steps - 1 (zs of step k is row 2k, zv row 2k + 1), and z[2 n_steps + k, :m] =
    1 - U of zv = Phi^-1(U), which QE's exponential branch needs.

    1 - U comes from the uniform itself, in the same pass as zv
    (``rng.fill_inverse_normals_and_complements``: one uniform serves both, where a second pass cost
    3 ns a path-step): U = (k + 1/2) 2^-52 lies on a grid symmetric about 1/2, so 1 - U is
    exact; recomputing it as Phi(-zv) would cost a libm erfc per path-step, which no loop
    vectorizes."""
    fill_normal_rows(key0, key1, stream, np.uint64(path), z, np.int64(n_steps), np.int64(2),
                     np.int64(0), np.int64(2), np.int64(m))
    for k in range(n_steps):
        fill_inverse_normals_and_complements(key0, key1, stream, np.uint64(path),
                                             np.uint64(2 * k + 1), z[2 * k + 1, :m],
                                             z[2 * n_steps + k, :m])


@kernel
def group_normals(key0, names, heston, stream, path, m, n_steps, mix, b, eps, own):
    """The independent draws of a simulation group's members for paths path..path+m-1, and
    their mix: member a (stream key names[a]) gives b[a, k] = its draw 2k (the spot's driver
    at step k) and, when heston[a], own[a, k] = its draw 2k + 1 (Z_a, its variance's own
    driver); eps[:, k] = mix · b[:, k], the members' correlated spot normals of step k (mix the
    lower Cholesky factor of their correlation matrix, Glasserman 2004, §2.3.3).  A member's
    numbers are a pure function of (seed, its name, path, draw), whatever else is in the
    group."""
    n = names.size
    for a in range(n):
        fill_normal_rows(key0, names[a], stream, np.uint64(path), b[a], np.int64(n_steps),
                         np.int64(1), np.int64(0), np.int64(2), np.int64(m))
        if heston[a]:
            fill_normal_rows(key0, names[a], stream, np.uint64(path), own[a], np.int64(n_steps),
                             np.int64(1), np.int64(1), np.int64(2), np.int64(m))
    for k in range(n_steps):
        vecmath.step_matmul(mix, b, eps, k, n, m, True)


@kernel
def group_rows(eps, own, corr, corr_bar, n_steps, m, z):
    """The rows ``simulate_tile`` reads (``tile_normals``' layout) of a Heston member of a
    group, from its correlated spot normals eps[k] and own normals own[k]: the variance's
    zv = corr eps + corr_bar Z (z[2k + 1]), the spot's own noise zs = corr_bar eps - corr Z
    (z[2k]) and 1 - U = Phi(-zv) (z[2 n_steps + k]).  The rotation is orthogonal, so (zs, zv)
    are independent standard normals, as ungrouped; and corr zv + corr_bar zs = eps, so the
    spot's Brownian motion is the group's, and the variance's is corr W^S + corr_bar W^Z
    (docs/reference.md#correlations).  Phi(-zv) is computed (``vecmath.normal_tail``): zv
    mixes two draws, so no uniform exists to read it from.  It is left pending (a NaN first
    element) and computed by the first step that reads it (``pending_tails``): only the
    exponential branch does, and with a Feller ratio above about 1 no step takes it, where the
    tails were a tenth of a group's price."""
    for k in range(n_steps):
        e, w, zs, zv = eps[k], own[k], z[2 * k], z[2 * k + 1]
        for i in range(m):
            zs[i] = corr_bar * e[i] - corr * w[i]
            zv[i] = corr * e[i] + corr_bar * w[i]
        z[2 * n_steps + k, 0] = math.nan


@kernel
def pending_tails(zv, tail, m):
    """tail[i] = Phi(-zv[i]) (``vecmath.normal_tail``) for the m paths of a step's row that
    ``group_rows`` left pending (tail[0] NaN; an uncorrelated draw's row is never pending, its
    1 - U is exact), so that every step reading a row sees the same bits; nothing otherwise."""
    if m > 0 and tail[0] != tail[0]:
        for i in range(m):
            tail[i] = vecmath.normal_tail(zv[i])


@kernel
def member_brownian(eps, grid, m, w):
    """w[k, i] = W(grid[k]) of a GBM member of a group on the grid, from its correlated normals
    eps[k] of each step: W_k = W_{k-1} + sqrt(dt_k) eps_k (its log-spot is
    (r - q - vol^2 / 2) t + vol W_t, exact on any grid)."""
    t_prev = 0.0
    for k in range(grid.size):
        sd = math.sqrt(grid[k] - t_prev)
        for i in range(m):
            w[k, i] = (w[k - 1, i] if k > 0 else 0.0) + sd * eps[k, i]
        t_prev = grid[k]


@kernel
def simulate_tile(z, m, scheme, coef, scen, dcoef, tangents_from, want_lr, x, v, tx, tv, gs, cs,
                  state_v, tan_x, tan_v):
    """Simulate m paths on the whole grid with one scenario's coefficients ``coef`` (n_steps,
    N_COEF) and parameters ``scen`` (a scenario row), from the draws z (``tile_normals``).

    Writes x[k, i] = ln(S_{t_{k+1}} / S0) and v[k, i] (>= 0; v+ for Euler) for k = 0..n_steps-1,
    n_steps = coef.shape[0]: the grid of z (3 rows a step: ``tile_normals``) or its first
    n_steps steps (an fd re-simulation that no trade reads to the end).
    With ``tangents_from`` < N_DIR: tx[d, k, i], tv[d, k, i], the derivatives of x and v along
    the directions d = tangents_from .. N_DIR - 1 (``DIRECTIONS``; each direction's tangent
    process is independent of the others', so a pathwise d_corr alone carries one, not six;
    the rows of the directions before keep their starting values), using ``dcoef`` (n_steps, N_COEF, N_DIR) (QE) or the
    scenario's parameters (Euler).  With ``want_lr``: gs[k, i] = sum_{j<=k} sig_j zs_j and
    cs[k, i] = sum_{j<=k} sig_j^2 (see the module docstring).  state_v, tan_x, tan_v are
    scratch arrays of shapes (TILE,), (N_DIR, TILE), (N_DIR, TILE).
    """
    n_steps = coef.shape[0]
    want_tangents = tangents_from < N_DIR
    kappa, vbar, xi, corr = scen[SC_KAPPA], scen[SC_VBAR], scen[SC_XI], scen[SC_CORR]
    corr_bar = correlation_complement(corr)
    for i in range(m):
        state_v[i] = scen[SC_V0]
    if want_tangents:
        for d in range(N_DIR):
            for i in range(m):
                tan_x[d, i] = 0.0
                tan_v[d, i] = 1.0 if d == D_V0 else 0.0
    if scheme == QE and not want_tangents and not want_lr:
        # The fd re-simulations and the price alone; tan_x is free scratch.
        qe_tile_path(coef, z, m, state_v, tan_x[0], x, v)
        return
    if scheme == QE:
        _qe_tile_sensitivities(z, m, coef, dcoef, tangents_from, want_lr, x, v, tx, tv, gs, cs,
                               state_v, tan_x, tan_v)
        return
    for k in range(n_steps):
        row = coef[k]
        dt = row[DT]
        for i in range(m):
            zs = z[2 * k, i]
            zv = z[2 * k + 1, i]
            vi = state_v[i]
            x_prev = x[k - 1, i] if k > 0 else 0.0
            v_next, dx, sig, sq = euler_step(vi, zv, zs, dt, row[DRIFT], kappa, vbar, xi,
                                             corr, corr_bar)
            if want_tangents:
                vp = vi if vi > 0.0 else 0.0
                noise = corr * zv + corr_bar * zs
                for d in range(tangents_from, N_DIR):
                    dvp = tan_v[d, i] if vi > 0.0 else 0.0
                    ddt = dt if d == D_SCALE else 0.0
                    dsq = 0.0
                    if sq > 0.0:
                        dsq = (dvp * dt + vp * ddt) / (2.0 * sq)
                    dvn = (tan_v[d, i] + kappa * (-dvp) * dt + kappa * (vbar - vp) * ddt
                           + xi * dsq * zv)
                    dxn = row[DRIFT] * (1.0 if d == D_SCALE else 0.0) \
                        - 0.5 * (dvp * dt + vp * ddt) + dsq * noise
                    if d == D_KAPPA:
                        dvn += (vbar - vp) * dt
                    elif d == D_VBAR:
                        dvn += kappa * dt
                    elif d == D_XI:
                        dvn += sq * zv
                    elif d == D_CORR and corr_bar > 0.0:
                        dxn += sq * (zv - corr / corr_bar * zs)
                    tan_x[d, i] += dxn
                    tan_v[d, i] = dvn
            state_v[i] = v_next
            x[k, i] = x_prev + dx
            v[k, i] = v_next if v_next > 0.0 else 0.0
            if want_lr:
                _add_score_terms(gs, cs, k, i, sig, zs)
        if want_tangents:
            for d in range(N_DIR):
                for i in range(m):
                    tx[d, k, i] = tan_x[d, i]
                    # Euler stores v+, whose tangent vanishes where v <= 0
                    tv[d, k, i] = tan_v[d, i] if state_v[i] > 0.0 else 0.0


@kernel(inline=True)
def _add_score_terms(gs, cs, k, i, sig, zs):
    """gs[k, i] = gs[k - 1, i] + sig zs and cs[k, i] = cs[k - 1, i] + sig^2 (0 before k = 0)."""
    g_prev = gs[k - 1, i] if k > 0 else 0.0
    c_prev = cs[k - 1, i] if k > 0 else 0.0
    gs[k, i] = g_prev + sig * zs
    cs[k, i] = c_prev + sig * sig


@kernel
def _qe_tile_sensitivities(z, m, coef, dcoef, tangents_from, want_lr, x, v, tx, tv, gs, cs,
                           state_v, tan_x, tan_v):
    """``simulate_tile``'s QE paths with tangents or scores, a step of the whole tile at a time
    (``qe_tile_tangent_step``; its scratch, N_PT rows of TILE, is allocated once a tile)."""
    n_steps = coef.shape[0]
    tails = z.shape[0] // 3 * 2
    want_tangents = tangents_from < N_DIR
    part = np.empty(N_PT * TILE)
    for i in range(m):
        part[PT_X * TILE + i] = 0.0
    for k in range(n_steps):
        # without tangents dcoef may be a placeholder: any row of it serves, unread
        dk = dcoef[min(k, dcoef.shape[0] - 1)]
        qe_tile_tangent_step(coef[k], dk, z[2 * k], z[2 * k + 1], z[tails + k], m,
                             tangents_from if want_tangents else N_DIR, want_tangents, state_v,
                             part, tan_x, tan_v, x[k], v[k])
        if want_lr:
            zs = z[2 * k]
            for i in range(m):
                _add_score_terms(gs, cs, k, i, part[PT_SIG * TILE + i], zs[i])
        if want_tangents:
            for d in range(N_DIR):
                for i in range(m):
                    tx[d, k, i] = tan_x[d, i]
                    tv[d, k, i] = tan_v[d, i]


# -- paths for inspection (tests, diagnostics) ----------------------------------------------------

def simulation_grid(payoff_dates, steps_per_year):
    """The union of the payoff dates and the uniform dates k / steps_per_year below the last payoff
    date (a uniform date within 1e-9 years of a payoff date is dropped, so no step is degenerate).
    Payoff dates are kept exactly.  Returns a sorted float array of dates > 0 (t_0 = 0 implied)."""
    dates = np.unique(np.asarray(payoff_dates, dtype=float))
    if dates.size == 0 or dates[0] <= 0.0 or not np.all(np.isfinite(dates)):
        raise ValueError("payoff dates must be finite and > 0")
    if not steps_per_year > 0:
        raise ValueError(f"steps_per_year has value {steps_per_year!r}: must be > 0")
    last = dates[-1]
    n = int(math.floor(last * steps_per_year + 1e-9))
    uniform = np.arange(1, n + 1) / float(steps_per_year)
    uniform = uniform[uniform < last]
    if uniform.size:
        uniform = uniform[_nearest(uniform, dates) > 1e-9]
    return np.unique(np.concatenate([dates, uniform]))


def _nearest(points, dates):
    """Distance from each point to the nearest of the sorted ``dates``."""
    if dates.size == 1:
        return np.abs(points - dates[0])
    j = np.clip(np.searchsorted(dates, points), 1, dates.size - 1)
    return np.minimum(np.abs(points - dates[j - 1]), np.abs(points - dates[j]))


#: Tiles of a block of ``sample_paths``, ``group_sample_paths`` and the GBM exercise pilots
#: (``exercise_policy.gbm_legs_pilot``; each on the engine's threads): enough work per block
#: (milliseconds) to keep the Python loop's share small.
PILOT_TILES_PER_BLOCK = 16


def sample_paths(params, grid, n_paths, *, key0, key1, stream=0, scheme="qe", first_path=0,
                 keep=None, scale=None):
    """(x, v): ln(S_t / S0) and the variance (v+ for Euler) at the grid dates for paths
    first_path .. first_path + n_paths - 1, arrays of shape (len(grid), n_paths).  The same
    numbers as the pricer's paths (for the exercise pilots, tests and diagnostics; blocks of
    tiles on the engine's threads, as ``group_sample_paths``).  With ``keep`` (indices into the
    grid), the rows of those dates alone; with ``scale`` (a number), x = scale S_t / S0 instead,
    the exponential taken as each tile is written, with the bits of ``elementary.exp(x) *
    scale`` (an exercise pilot's spots: 2^18 paths of 52 dates are 109 MB an array, and the
    copies of the whole x made by indexing and exponentiating it afterwards were a third of
    the pilot's time, spent by the kernel clearing their fresh pages)."""
    from mcgreeks.engine import for_blocks

    p = check_params(params)
    grid = np.asarray(grid, dtype=float)
    dt = np.diff(np.concatenate([[0.0], grid]))
    scen = scenario_row(p)
    coef = scenario_coefficients(dt, p, [scen])[0]
    keep = np.arange(grid.size) if keep is None else np.asarray(keep, dtype=np.int64)
    x = np.empty((keep.size, n_paths))
    v = np.empty((keep.size, n_paths))
    keys = (np.uint64(key0), np.uint64(key1), np.uint64(stream))
    scaled = (scale is not None, 0.0 if scale is None else float(scale))
    for_blocks(_sample_block, -(-n_paths // TILE), PILOT_TILES_PER_BLOCK,
               (keys, first_path, n_paths), (SCHEMES[scheme], coef, scen, keep, scaled, x, v))
    return x, v


@kernel
def _sample_block(keys, first_path, n_paths, first_tile, end_tile, scheme, coef, scen, keep,
                  scaled, x, v):
    """``sample_paths``' tiles first_tile..end_tile-1 into x[:, paths] and v[:, paths] at the
    grid dates ``keep`` (x as ``_kept_row`` writes it, scaled = (whether, scale)), with their
    own scratch.  One kernel call a block, where a Python loop called the two kernels and
    copied a tile at a time."""
    key0, key1, stream = keys
    n = coef.shape[0]
    z = np.empty((3 * n, TILE))
    xt, vt = np.empty((n, TILE)), np.empty((n, TILE))
    dcoef = np.empty((n, N_COEF, N_DIR))
    dummy3, dummy2 = np.empty((N_DIR, 1, 1)), np.empty((1, 1))
    state_v, tan_x, tan_v = np.empty(TILE), np.empty((N_DIR, TILE)), np.empty((N_DIR, TILE))
    for tile in range(first_tile, end_tile):
        start = tile * TILE
        m = min(TILE, n_paths - start)
        tile_normals(key0, key1, stream, first_path + start, m, n, z)
        simulate_tile(z, m, scheme, coef, scen, dcoef, N_DIR, False, xt, vt, dummy3, dummy3,
                      dummy2, dummy2, state_v, tan_x, tan_v)
        for r in range(keep.size):
            _kept_row(xt[keep[r]], m, False, 0.0, 1.0, scaled[1], scaled[0], x[r, start:])
            _kept_row(vt[keep[r]], m, False, 0.0, 1.0, 1.0, False, v[r, start:])


def group_sample_paths(params, factor, grid, n_paths, *, key0, names, stream=0, scheme="qe",
                       first_path=0, keep=None, scale=None):
    """x[q, k, p] = ln(S_q / S0_q) at the grid dates grid[keep[k]] (``keep``: indices into the
    grid, default all) of the members q of a simulation group (``params``: their market rows,
    Heston or GBM; ``factor``: the lower Cholesky factor of their spots' correlation matrix;
    ``names``: their stream keys) for paths first_path .. first_path + n_paths - 1, simulated
    as the pricer simulates a group (``group_normals``, ``group_rows``, ``member_brownian``).
    With ``scale`` (a number per member), x[q, k, p] = scale[q] S_q / S0_q instead, the
    exponential (``vecmath.exp_any``, as ``elementary.exp``) taken as each tile is written: the
    bits of exp(x) * scale, without a second pass over the whole array (an exercise pilot's
    weighted spots: 252 MB for 5 names, 252 dates and 25,000 paths).
    For the exercise pilots and tests: a block of tiles is one kernel call
    (``_group_sample_block``), where a Python loop over the tiles with NumPy copies took 18 ns
    an asset-path-step on a thread for the 11 the kernels need."""
    from mcgreeks.engine import for_blocks
    from mcgreeks.models.gbm import log_drift

    grid = np.asarray(grid, dtype=float)
    dt = np.diff(np.concatenate([[0.0], grid]))
    n, n_members = grid.size, len(params)
    heston = np.array([p["model"] == "heston" for p in params], dtype=np.int64)
    # per member, what the kernel reads: a Heston member's step coefficients and scenario row,
    # a GBM member's log drift and volatility (the other's rows stay zero, unread)
    coef = np.zeros((n_members, n, N_COEF))
    scen = np.zeros((n_members, N_SCEN))
    gbm = np.zeros((n_members, 2))
    for q, p in enumerate(params):
        if heston[q]:
            p = check_params(p)
            scen[q] = scenario_row(p)
            coef[q] = scenario_coefficients(dt, p, [scen[q]])[0]
        else:
            gbm[q] = log_drift(p["rate"], p.get("div_yield", 0.0), p["vol"]), p["vol"]
    keep = np.arange(n) if keep is None else np.asarray(keep, dtype=np.int64)
    out = np.empty((n_members, keep.size, n_paths))
    factor = np.ascontiguousarray(factor, dtype=float)
    names = np.asarray(names, dtype=np.uint64)
    scale = np.zeros(0) if scale is None else np.asarray(scale, dtype=float)

    def block(first_tile, end_tile):
        # the kernel releases the GIL: blocks of tiles run on the engine's threads, each with
        # its own scratch, each tile written to its own columns (the same bits on any threads)
        _group_sample_block(np.uint64(key0), names, heston, np.uint64(stream), first_path,
                            n_paths, first_tile, end_tile, factor, SCHEMES[scheme], coef, scen,
                            gbm, grid, keep, scale, out)

    for_blocks(block, -(-n_paths // TILE), PILOT_TILES_PER_BLOCK, (), ())
    return out


@kernel
def _group_sample_block(key0, names, heston, stream, first_path, n_paths, first_tile, end_tile,
                        factor, scheme, coef, scen, gbm, grid, keep, scale, out):
    """``group_sample_paths``' tiles first_tile..end_tile-1 into out[q, :, paths]: member q's
    ln(S / S0) at the grid dates keep, from coef[q] and scen[q] (a Heston member) or
    gbm[q] = (log drift, vol) (a GBM one), or scale[q] S / S0 when scale is not empty, with its
    own scratch."""
    n_members, n = names.size, grid.size
    b, eps, own = (np.empty((n_members, n, TILE)), np.empty((n_members, n, TILE)),
                   np.empty((n_members, n, TILE)))
    z = np.empty((3 * n, TILE))
    xt, vt = np.empty((n, TILE)), np.empty((n, TILE))
    dummy3, dummy2 = np.empty((N_DIR, 1, 1)), np.empty((1, 1))
    dcoef = np.empty((n, N_COEF, N_DIR))
    state_v, tan_x, tan_v = np.empty(TILE), np.empty((N_DIR, TILE)), np.empty((N_DIR, TILE))
    for tile in range(first_tile, end_tile):
        start = tile * TILE
        m = min(TILE, n_paths - start)
        group_normals(key0, names, heston, stream, first_path + start, m, n, factor, b, eps, own)
        for q in range(n_members):
            if heston[q]:
                corr = scen[q, SC_CORR]
                group_rows(eps[q], own[q], corr, correlation_complement(corr), n, m, z)
                simulate_tile(z, m, scheme, coef[q], scen[q], dcoef, N_DIR, False, xt, vt,
                              dummy3, dummy3, dummy2, dummy2, state_v, tan_x, tan_v)
            else:
                member_brownian(eps[q], grid, m, xt)
            for r in range(keep.size):
                # a GBM member's log-move mu t + vol W(t) from its Brownian motion
                _kept_row(xt[keep[r]], m, heston[q] == 0, gbm[q, 0] * grid[keep[r]], gbm[q, 1],
                          scale[q] if scale.size > 0 else 0.0, scale.size > 0, out[q, r, start:])


@kernel(inline=True)
def _kept_row(row, m, affine, shift, slope, factor, scaled, dst):
    """dst[i] = y or exp(y) * factor (``scaled``) for i < m, y = shift + slope row[i] when
    ``affine`` else row[i]: ``_group_sample_block``'s output row, with its branches outside the
    loops and dst one contiguous row, so that each loop vectorizes (with the branches inside
    and a 3-D index it ran at 2.5 ns a value, 15 % of a 5-name exercise pilot)."""
    if scaled and affine:
        for i in range(m):
            dst[i] = vecmath.exp_any(shift + slope * row[i]) * factor
    elif scaled:
        for i in range(m):
            dst[i] = vecmath.exp_any(row[i]) * factor
    elif affine:
        for i in range(m):
            dst[i] = shift + slope * row[i]
    else:
        for i in range(m):
            dst[i] = row[i]
