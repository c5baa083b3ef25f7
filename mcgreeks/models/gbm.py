"""Geometric Brownian motion: dS = (r - q) S dt + σ S dW.

The path is carried as the Brownian motion W on a time grid; the spot at any grid date is an exact
function of it, S_t = S0 exp((r - q - σ²/2) t + σ W_t), so GBM has no discretization error.  A
payoff reads it as the view ln S_t = a + b t + c W_t with (a, b, c) = (ln S0, r - q - σ²/2, σ)
(``payoffs``).

Besides the spot, the estimators need two things from the model, both provided here:
- tangents ∂ln S_t/∂θ along the path (pathwise estimators), affine in (1, t, W_t), so that a
  payoff's date weights enter through three moments (``tangents``);
- scores ∂ log p/∂θ of the law of W at the payoff date (likelihood-ratio estimators), which for
  GBM are those of the normal law of log S_T (Glasserman 2004, §7.3, eqs. 7.34-7.39).
Parameters θ: spot S0, volatility σ (per 1.00), rate r (per 1.00, dividend yield held fixed) and
maturity T in years; a maturity bump scales the whole schedule (t_i = i·T/n) and, with common
random numbers, maps W_t to W_t·sqrt(T'/T).
"""
from mcgreeks._jit import kernel


@kernel
def log_drift(rate, div_yield, vol):
    """Drift of log S per year: r - q - σ²/2."""
    return rate - div_yield - 0.5 * vol * vol


# -- tangents ∂ln S_t/∂θ, chained through a payoff's date weights ------------------------------------

@kernel(inline=True)
def tangents(s0, mu, vol, maturity, sw, swt, swx):
    """∂u/∂θ for θ = S0, σ, r, T of a payoff quantity u whose date weights ω_k = ∂u/∂ln S_{t_k}
    have the moments sw = Σω, swt = Σω t, swx = Σω W (``payoffs.quantity``).

    ln S_t = ln S0 + μt + σW_t is affine in (1, t, W_t), so ∂u/∂θ = Σ ω_k ∂ln S_{t_k}/∂θ needs
    only the moments: ∂ln S_t/∂S0 = 1/S0; ∂/∂σ = W_t - σt (per 1.00 of volatility); ∂/∂r = t
    (per 1.00 of rate); ∂/∂T = (μt + σW_t/2)/T when every date t = c·T moves with the maturity
    (W_t scaling as √T).  Returns (∂u/∂S0, ∂u/∂σ, ∂u/∂r, ∂u/∂T)."""
    return sw / s0, swx - vol * swt, swt, (mu * swt + 0.5 * vol * swx) / maturity


# -- scores ∂ log p/∂θ of the law of W on a payoff's own dates t_1 < ... < t_n ----------------------
# Only the increments between the payoff's dates enter (scores on a finer simulation grid would add
# variance and no information).  With z_k = ΔW_k/sqrt(Δt_k), q = Σ z_k², w1 = W(t_1), wn = W(t_n):
# (Glasserman 2004, §7.3, eqs. 7.34-7.39, summed over independent increments)

@kernel(inline=True)
def score_spot(s0, vol, t1, w1):
    """∂ log p/∂S0 = W(t_1) / (S0 σ t_1): only the first increment depends on S0."""
    return w1 / (s0 * vol * t1)


@kernel(inline=True)
def score2_spot(s0, vol, t1, w1):
    """(∂²p/∂S0²)/p = (z² - zσ√t_1 - 1)/(S0² σ² t_1) with z = W(t_1)/√t_1 (the LR gamma weight)."""
    z2 = w1 * w1 / t1
    return (z2 - vol * w1 - 1.0) / (s0 * s0 * vol * vol * t1)


@kernel(inline=True)
def score_vol(vol, n, q, wn):
    """∂ log p/∂σ = Σ (z_k² - 1)/σ - W(t_n)."""
    return (q - n) / vol - wn


@kernel(inline=True)
def score_rate(vol, wn):
    """∂ log p/∂r = W(t_n)/σ."""
    return wn / vol


@kernel(inline=True)
def score_maturity(mu, vol, maturity, n, q, wn):
    """∂ log p/∂T when every date scales with T: W(t_n)(r - q - σ²/2)/(σT) + Σ(z_k² - 1)/(2T)."""
    return wn * mu / (vol * maturity) + 0.5 * (q - n) / maturity
