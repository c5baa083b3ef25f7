"""Geometric Brownian motion: dS = (r - q) S dt + σ S dW.

The path is carried as the Brownian motion W on a time grid; the spot at any grid date is an exact
function of it, S_t = S0 exp((r - q - σ²/2) t + σ W_t), so GBM has no discretization error.

Besides the spot, the estimators need two things from the model, both provided here:
- tangents ∂S_t/∂θ along the path (pathwise estimators);
- scores ∂ log p/∂θ of the law of W at the payoff date (likelihood-ratio estimators), which for
  GBM are those of the normal law of log S_T (Glasserman 2004, §7.3, eqs. 7.34-7.39).
Parameters θ: spot S0, volatility σ (per 1.00), rate r (per 1.00, dividend yield held fixed) and
maturity T in years; a maturity bump scales the whole schedule (t_i = i·T/n) and, with common
random numbers, maps W_t to W_t·sqrt(T'/T).
"""
import math

from mcgreeks import vecmath
from mcgreeks._jit import kernel


@kernel
def log_drift(rate, div_yield, vol):
    """Drift of log S per year: r - q - σ²/2."""
    return rate - div_yield - 0.5 * vol * vol


@kernel
def spot_at(s0, mu, vol, t, w):
    """Spot at time t (years) given W_t = w, with mu = log_drift(...).  (``vecmath.exp``, so that
    the pricers' per-path loops vectorize.)"""
    return s0 * vecmath.exp(mu * t + vol * w)


# -- tangents dS_t/dθ ------------------------------------------------------------------------------

@kernel
def tangent_spot(s, s0):
    """∂S_t/∂S0 (dimensionless)."""
    return s / s0


@kernel
def tangent_vol(s, vol, t, w):
    """∂S_t/∂σ, per 1.00 of volatility."""
    return s * (w - vol * t)


@kernel
def tangent_rate(s, t):
    """∂S_t/∂r, per 1.00 of rate."""
    return s * t


@kernel
def tangent_maturity(s, mu, vol, t, w, maturity):
    """∂S_t/∂T per year when the date t = c·T moves with the maturity (W_t scales as sqrt(T))."""
    return s * (mu * t + 0.5 * vol * w) / maturity


# -- scores ∂ log p/∂θ of the law of W on a payoff's own dates t_1 < ... < t_n ----------------------
# Only the increments between the payoff's dates enter (scores on a finer simulation grid would add
# variance and no information).  With z_k = ΔW_k/sqrt(Δt_k), q = Σ z_k², w1 = W(t_1), wn = W(t_n):
# (Glasserman 2004, §7.3, eqs. 7.34-7.39, summed over independent increments)

@kernel
def score_spot(s0, vol, t1, w1):
    """∂ log p/∂S0 = W(t_1) / (S0 σ t_1): only the first increment depends on S0."""
    return w1 / (s0 * vol * t1)


@kernel
def score2_spot(s0, vol, t1, w1):
    """(∂²p/∂S0²)/p = (z² - zσ√t_1 - 1)/(S0² σ² t_1) with z = W(t_1)/√t_1 (the LR gamma weight)."""
    z2 = w1 * w1 / t1
    return (z2 - vol * w1 - 1.0) / (s0 * s0 * vol * vol * t1)


@kernel
def score_vol(vol, n, q, wn):
    """∂ log p/∂σ = Σ (z_k² - 1)/σ - W(t_n)."""
    return (q - n) / vol - wn


@kernel
def score_rate(vol, wn):
    """∂ log p/∂r = W(t_n)/σ."""
    return wn / vol


@kernel
def score_maturity(mu, vol, maturity, n, q, wn):
    """∂ log p/∂T when every date scales with T: W(t_n)(r - q - σ²/2)/(σT) + Σ(z_k² - 1)/(2T)."""
    return wn * mu / (vol * maturity) + 0.5 * (q - n) / maturity


# -- continuous barrier: survival of the log-Brownian bridge between two dates ---------------------

@kernel
def bridge_survival(down, barrier, s0, s1, var):
    """Probability that GBM from s0 to s1 over a period of log-variance ``var`` = σ²Δt did not touch
    the barrier, and its derivatives.

    P = 1 - exp(-2 a b / var), a = ±ln(s0/H), b = ±ln(s1/H) (+ for a down barrier, - for an up
    barrier), and 0 when either end is on the far side (Glasserman 2004, §6.4; the reflection
    principle for Brownian motion).  Returns (P, ∂P/∂s1, ∂P/∂s0, ∂P/∂var, ∂²P/∂s0², ∂²P/∂s0∂s1).
    """
    u = 1.0 if down else -1.0
    a = u * math.log(s0 / barrier)
    b = u * math.log(s1 / barrier)
    if a <= 0.0 or b <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    x = 2.0 * a * b / var
    e = math.exp(-x)
    x_s0 = 2.0 * b * u / (var * s0)
    x_s1 = 2.0 * a * u / (var * s1)
    x_s0s0 = -x_s0 / s0
    x_s0s1 = 2.0 / (var * s0 * s1)
    return (1.0 - e, e * x_s1, e * x_s0, -e * x / var, e * (x_s0s0 - x_s0 * x_s0),
            e * (x_s0s1 - x_s0 * x_s1))
