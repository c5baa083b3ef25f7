"""Closed forms for single-barrier knock-in / knock-out options (no rebate) under GBM.

Same conventions as :mod:`mcgreeks.analytic.black_scholes`: keyword-only broadcasting
arguments, a ``dict`` of ``price, delta, gamma, vega, rho, theta`` for one unit, vega and rho
per 1.00, theta = −∂V/∂T per year.

Reiner & Rubinstein's formulas [1] as tabulated by Haug [2] §4.17.1, with b = r − q,
μ = (b − σ²/2)/σ², φ = +1 call / −1 put, η = +1 down / −1 up:
    A = φ S e^{-qT} N(φ x₁) − φ K e^{-rT} N(φ x₁ − φσ√T)
    B = φ S e^{-qT} N(φ x₂) − φ K e^{-rT} N(φ x₂ − φσ√T)
    C = φ S e^{-qT} (H/S)^{2(μ+1)} N(η y₁) − φ K e^{-rT} (H/S)^{2μ} N(η y₁ − ησ√T)
    D = φ S e^{-qT} (H/S)^{2(μ+1)} N(η y₂) − φ K e^{-rT} (H/S)^{2μ} N(η y₂ − ησ√T)
with x₁, x₂, y₁, y₂ the Black–Scholes d₁ of (spot, strike) = (S, K), (S, H), (H²/S, K),
(H²/S, H).  A is the vanilla; each option is a signed sum of A..D chosen by the type, call or
put, and K > H or K <= H (table ``_COEFFICIENTS``).

The Greeks are analytic: each of A..D is w·P(Y, L) with P a Black–Scholes-like term in a
"spot" Y (S or H²/S) and a "level" L (K or H), and w = 1 or (H/S)^{2μ}; the derivatives of P
are in closed form and the chain rule through Y, w and μ(σ, r) gives ∂/∂S, ∂²/∂S², ∂/∂σ,
∂/∂r, ∂/∂T and ∂/∂H (the last one is used by the discrete-monitoring correction).

References:
  [1] E. Reiner, M. Rubinstein, "Breaking down the barriers", Risk 4(8) (1991) 28–35.
  [2] E. G. Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., McGraw-Hill (2007),
      §4.17.1 (standard barrier options), Table 4-13.
  [3] M. Broadie, P. Glasserman, S. Kou, "A continuity correction for discrete barrier
      options", Mathematical Finance 7(4) (1997) 325–349.
"""
import math

import numpy as np
from scipy import special

from mcgreeks.analytic._inputs import (
    _LOG_SQRT_2PI,
    _count,
    _finite,
    _flag,
    _package,
    _positive,
)

__all__ = ["barrier", "barrier_discrete_bgk", "BARRIER_TYPES", "BGK_BETA"]

BARRIER_TYPES = ("up_out", "up_in", "down_out", "down_in")

#: β = −ζ(1/2)/√(2π) ≈ 0.5826 of the Broadie–Glasserman–Kou correction [3].
BGK_BETA = 1.4603545088095868 / math.sqrt(2.0 * math.pi)

# (type, is_call, K > H) -> coefficients of (A, B, C, D); Haug [2] §4.17.1 with rebate 0.
_COEFFICIENTS = {
    ("down_in", True, True): (0, 0, 1, 0),
    ("down_in", True, False): (1, -1, 0, 1),
    ("up_in", True, True): (1, 0, 0, 0),
    ("up_in", True, False): (0, 1, -1, 1),
    ("down_in", False, True): (0, 1, -1, 1),
    ("down_in", False, False): (1, 0, 0, 0),
    ("up_in", False, True): (1, -1, 0, 1),
    ("up_in", False, False): (0, 0, 1, 0),
    ("down_out", True, True): (1, 0, -1, 0),
    ("down_out", True, False): (0, 1, 0, -1),
    ("up_out", True, True): (0, 0, 0, 0),
    ("up_out", True, False): (1, -1, 1, -1),
    ("down_out", False, True): (1, -1, 1, -1),
    ("down_out", False, False): (0, 0, 0, 0),
    ("up_out", False, True): (0, 1, 0, -1),
    ("up_out", False, False): (1, 0, -1, 0),
}

# the partial derivatives carried through the computation, besides "price"
_PARTIALS = ("d_spot", "d_spot2", "d_vol", "d_rate", "d_mat", "d_barrier")


def _barrier_type(value):
    arr = np.asarray(value)
    if arr.dtype.kind not in "USO":
        raise ValueError(f"barrier_type must be one of {BARRIER_TYPES}, got {value!r}")
    known = np.isin(arr, BARRIER_TYPES)
    if not np.all(known):
        bad = arr[~known].ravel()[0]
        raise ValueError(f"barrier_type must be one of {BARRIER_TYPES}, got {bad!r}")
    return arr


def _black_term(y, level, x, psi, phi, log_w, t, r, q, v):
    """w·P and its partials, P = φ[Y e^{-qT} N(ψ d₁) − X e^{-rT} N(ψ d₂)], d₁ = d₁(Y, L).

    Uses Y e^{-qT} n(d₁) = L e^{-rT} n(d₂) to write every density term with n(d₂).  The weight
    w = e^{log_w} is multiplied inside the logarithms: (H/S)^{2μ} alone can overflow while
    its product with the normal tail stays tiny.
    """
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(y / level) + (r - q + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    w_cdf1 = np.exp(log_w + special.log_ndtr(psi * d1))
    w_cdf2 = np.exp(log_w + special.log_ndtr(psi * d2))
    # φψ e^{-rT} w n(d₂): the common factor of every term that moves through d₁, d₂
    dens = phi * psi * np.exp(log_w - r * t - 0.5 * d2 * d2 - _LOG_SQRT_2PI)
    df_q = np.exp(-q * t)
    x_df = x * np.exp(-r * t)
    gap = level - x
    return {
        "value": phi * (y * df_q * w_cdf1 - x_df * w_cdf2),
        "d_y": phi * df_q * w_cdf1 + dens * gap / (y * sd),
        "d_yy": dens * (level - gap * d1 / sd) / (y * y * sd),
        "d_vol": dens * (level * sqrt_t - gap * d1 / v),
        "d_rate": phi * t * x_df * w_cdf2 + dens * gap * t / sd,
        "d_mat": phi * (r * x_df * w_cdf2 - q * y * df_q * w_cdf1)
        + dens * (gap * ((r - q) / sd - d1 / (2.0 * t)) + level * sd / (2.0 * t)),
        "d_level": -dens * gap / (level * sd),
    }


def _direct(level_is_barrier, p):
    """A or B: Y = S, w = 1."""
    return {
        "price": p["value"],
        "d_spot": p["d_y"],
        "d_spot2": p["d_yy"],
        "d_vol": p["d_vol"],
        "d_rate": p["d_rate"],
        "d_mat": p["d_mat"],
        "d_barrier": p["d_level"] if level_is_barrier else np.zeros_like(p["value"]),
    }


def _reflected(s, h, y, mu, log_ratio, level_is_barrier, p, r, q, v):
    """C or D: w = (H/S)^{2μ}, Y = H²/S, with μ = (r − q)/σ² − 1/2 depending on σ and r."""
    wp, wpy, wpyy = p["value"], p["d_y"], p["d_yy"]
    two_mu = 2.0 * mu
    d_barrier = (two_mu * wp + 2.0 * y * wpy) / h
    if level_is_barrier:
        d_barrier = d_barrier + p["d_level"]
    return {
        "price": wp,
        "d_spot": -(two_mu * wp + y * wpy) / s,
        "d_spot2": ((two_mu + 1.0) * (two_mu * wp + 2.0 * y * wpy) + y * y * wpyy) / (s * s),
        # ∂ln w/∂σ = 2 ln(H/S) ∂μ/∂σ, ∂μ/∂σ = −2(r − q)/σ³;  ∂ln w/∂r = 2 ln(H/S)/σ²
        "d_vol": p["d_vol"] - 4.0 * log_ratio * (r - q) / v**3 * wp,
        "d_rate": p["d_rate"] + 2.0 * log_ratio / (v * v) * wp,
        "d_mat": p["d_mat"],
        "d_barrier": d_barrier,
    }


def _continuous(s, k, h, t, r, q, v, btype, call):
    """Price and the partials in ``_PARTIALS`` of the continuous-monitoring barrier option."""
    phi = np.where(call, 1.0, -1.0)
    eta = np.where(np.char.startswith(btype.astype(str), "down"), 1.0, -1.0)
    mu = (r - q) / (v * v) - 0.5
    log_ratio = np.log(h / s)
    log_w = 2.0 * mu * log_ratio
    y = h * h / s
    zero = np.zeros(())

    terms = (
        _direct(False, _black_term(s, k, k, phi, phi, zero, t, r, q, v)),  # A
        _direct(True, _black_term(s, h, k, phi, phi, zero, t, r, q, v)),  # B
        _reflected(s, h, y, mu, log_ratio, False,
                   _black_term(y, k, k, eta, phi, log_w, t, r, q, v), r, q, v),  # C
        _reflected(s, h, y, mu, log_ratio, True,
                   _black_term(y, h, k, eta, phi, log_w, t, r, q, v), r, q, v),  # D
    )

    shape = np.broadcast_shapes(*(np.shape(a) for a in (s, k, h, t, r, q, v, btype, call)))
    coef = np.zeros((4,) + shape)
    k_above = np.broadcast_to(k > h, shape)
    bt = np.broadcast_to(btype, shape)
    cl = np.broadcast_to(call, shape)
    for (name, is_call, above), c in _COEFFICIENTS.items():
        mask = (bt == name) & (cl == is_call) & (k_above == above)
        coef[:, mask] = np.asarray(c, dtype=float)[:, None]

    # Already through the barrier at t = 0: "out" is dead, "in" is the vanilla (A).
    up = eta < 0
    breached = np.broadcast_to(np.where(up, s >= h, s <= h), shape)
    knock_in = np.char.endswith(bt.astype(str), "_in")
    coef[:, breached] = 0.0
    coef[0, breached & knock_in] = 1.0

    out = {}
    for key in ("price",) + _PARTIALS:
        # where a coefficient is 0 its term may be inf/nan far outside its domain; drop it
        out[key] = sum(np.where(c != 0.0, c * term[key], 0.0) for c, term in zip(coef, terms))
    return out


def _inputs(spot, strike, barrier, maturity, rate, vol, div_yield, barrier_type, is_call):
    return (
        _positive("spot", spot),
        _positive("strike", strike),
        _positive("barrier", barrier),
        _positive("maturity", maturity),
        _finite("rate", rate),
        _finite("div_yield", div_yield),
        _positive("vol", vol),
        _barrier_type(barrier_type),
        _flag("is_call", is_call),
    )


def _greeks(raw, theta_extra=0.0, vega_extra=0.0):
    return {
        "price": raw["price"],
        "delta": raw["d_spot"],
        "gamma": raw["d_spot2"],
        "vega": raw["d_vol"] + vega_extra,
        "rho": raw["d_rate"],
        "theta": -raw["d_mat"] - theta_extra,
    }


def barrier(*, spot, strike, barrier, maturity, rate, vol, div_yield=0.0, barrier_type,
            is_call=True):
    """Price and Greeks of a continuously monitored single-barrier option without rebate.

    Reiner–Rubinstein closed form [1] in Haug's notation [2] §4.17.1 (see the module
    docstring), all 8 cases of call/put × up/down × in/out, for K above and below H.  If the
    barrier is already breached at the spot (S₀ >= H for "up", S₀ <= H for "down") an "out"
    option is worth 0 and an "in" option is the vanilla, Greeks included.  The Greeks are
    analytic (derivatives of the closed form, not finite differences).

    Args:
      spot: S₀ > 0.
      strike: K > 0.
      barrier: H > 0, same currency as ``spot``.
      maturity: T > 0 in years.
      rate: r, continuously compounded per year (may be negative).
      vol: σ > 0 per √year.
      div_yield: q, continuous dividend yield per year (may be negative).
      barrier_type: "up_out", "up_in", "down_out" or "down_in" (a string or array of them).
      is_call: bool, True for a call, False for a put.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: naming the argument, if spot, strike, barrier, maturity or vol is not
        positive and finite, rate or div_yield is not finite, barrier_type is unknown, or
        is_call is not boolean.

    Example (El Babsiri & Noel 1998, down-and-in call):
      >>> p = barrier(spot=100.0, strike=100.0, barrier=90.0, maturity=1.0, rate=0.05,
      ...             vol=0.2, div_yield=0.02, barrier_type="down_in")["price"]
      >>> round(p, 5)
      1.64005
    """
    s, k, h, t, r, q, v, btype, call = _inputs(
        spot, strike, barrier, maturity, rate, vol, div_yield, barrier_type, is_call)
    raw = _continuous(s, k, h, t, r, q, v, btype, call)
    return _package(_greeks(raw), s, k, h, t, r, q, v, btype, call)


def barrier_discrete_bgk(*, spot, strike, barrier, maturity, rate, vol, div_yield=0.0,
                         barrier_type, is_call=True, n_fixings):
    """Broadie–Glasserman–Kou approximation of a discretely monitored barrier option.

    The barrier is checked only at t_i = i·T/n, i = 1..n.  Following [3], the price is the
    continuous formula of :func:`barrier` with the barrier moved away from the spot,
    H' = H e^{+βσ√(T/n)} for "up" and H' = H e^{−βσ√(T/n)} for "down", β = −ζ(1/2)/√(2π).
    The Greeks are analytic derivatives of this approximation; since H' depends on σ and on
    T (through T/n), vega and theta include the ∂V/∂H' · ∂H'/∂σ and ∂H'/∂T terms.

    The correction is an asymptotic expansion in √(T/n): it is accurate to a few basis points
    when the spot is not within about one σ√(T/n) of H, and degrades when it is.  The
    "breached" rule of :func:`barrier` is applied to H' (S₀ beyond H' gives 0 for "out" and
    the vanilla for "in"): t = 0 is not a monitoring date, so S₀ beyond H alone does not
    knock anything in or out.

    Args:
      spot, strike, barrier, maturity, rate, vol, div_yield, barrier_type, is_call:
        as in :func:`barrier`.
      n_fixings: n, integer >= 1, the number of monitoring dates.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: as :func:`barrier`, or if n_fixings is not an integer >= 1.
    """
    s, k, h, t, r, q, v, btype, call = _inputs(
        spot, strike, barrier, maturity, rate, vol, div_yield, barrier_type, is_call)
    n = _count("n_fixings", n_fixings)
    sign = np.where(np.char.startswith(btype.astype(str), "up"), 1.0, -1.0)
    shift = sign * BGK_BETA * v * np.sqrt(t / n)  # ln(H'/H)
    h_shifted = h * np.exp(shift)
    raw = _continuous(s, k, h_shifted, t, r, q, v, btype, call)
    dv_dh = raw["d_barrier"]
    # ∂H'/∂σ = H' shift/σ and ∂H'/∂T = H' shift/(2T)
    greeks = _greeks(raw,
                     theta_extra=dv_dh * h_shifted * shift / (2.0 * t),
                     vega_extra=dv_dh * h_shifted * shift / v)
    return _package(greeks, s, k, h, t, r, q, v, btype, call, n)
