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

from mcgreeks._jit import kernel


@kernel
def log_drift(rate, div_yield, vol):
    """Drift of log S per year: r - q - σ²/2."""
    return rate - div_yield - 0.5 * vol * vol


@kernel
def spot_at(s0, mu, vol, t, w):
    """Spot at time t (years) given W_t = w, with mu = log_drift(...)."""
    return s0 * math.exp(mu * t + vol * w)


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


# -- scores ∂ log p(W_T)/∂θ of the terminal law W_T ~ N(0, T) through log S_T ----------------------

@kernel
def score_spot(s0, vol, t, w):
    """∂ log p/∂S0 = W_T / (S0 σ T)."""
    return w / (s0 * vol * t)


@kernel
def score2_spot(s0, vol, t, w):
    """(∂²p/∂S0²)/p = (Z² - Zσ√T - 1)/(S0² σ² T) with Z = W_T/√T (the LR gamma weight)."""
    z2 = w * w / t
    return (z2 - vol * w - 1.0) / (s0 * s0 * vol * vol * t)


@kernel
def score_vol(vol, t, w):
    """∂ log p/∂σ = (Z² - 1)/σ - Z√T."""
    return (w * w / t - 1.0) / vol - w


@kernel
def score_rate(vol, w):
    """∂ log p/∂r = Z√T/σ."""
    return w / vol


@kernel
def score_maturity(mu, vol, t, w):
    """∂ log p/∂T = Z (r - q - σ²/2)/(σ√T) + (Z² - 1)/(2T)."""
    return w * mu / (vol * t) + 0.5 * (w * w / t - 1.0) / t
