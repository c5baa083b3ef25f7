"""Black–Scholes–Merton closed forms: European and cash-or-nothing digital options.

Every function takes keyword-only arguments that broadcast against each other and returns a
``dict`` with the keys ``"price", "delta", "gamma", "vega", "rho", "theta"`` for ONE unit of
the option (docs/reference.md#output-columns):

* delta = ∂V/∂S₀, gamma = ∂²V/∂S₀²,
* vega = ∂V/∂σ per 1.00 of volatility,
* rho = ∂V/∂r per 1.00 of rate, the dividend yield q held fixed,
* theta = −∂V/∂T per year.

Units: ``maturity`` T in years; ``rate`` r, ``div_yield`` q and ``vol`` σ are continuously
compounded annual figures (``vol**2 * maturity`` is dimensionless).  The values are arrays of
the broadcast shape, or Python floats when every argument is a scalar.

The small helpers at the top (validation, broadcasting, the normal law) are shared by the
sibling modules ``asian`` and ``barrier``.

References:
  [1] F. Black, M. Scholes, "The pricing of options and corporate liabilities", Journal of
      Political Economy 81 (1973); R. C. Merton, "Theory of rational option pricing", Bell
      Journal of Economics 4 (1973).
  [2] E. G. Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., McGraw-Hill (2007),
      §1.1 (generalized Black–Scholes–Merton), ch. 2 (Greeks), §4.19.2 (cash-or-nothing).
"""
import numpy as np

from mcgreeks.analytic._inputs import _finite, _market, _norm_cdf, _norm_pdf, _package

__all__ = ["european", "digital"]

# ----------------------------------------------------------------------------- public API


def european(*, spot, strike, maturity, rate, vol, div_yield=0.0, is_call=True):
    """Black–Scholes–Merton price and Greeks of a European call or put, all in closed form.

    V = ω [S e^{-qT} N(ω d₁) − K e^{-rT} N(ω d₂)], ω = +1 for a call and −1 for a put,
    d₁ = [ln(S/K) + (r − q + σ²/2) T] / (σ√T), d₂ = d₁ − σ√T  (refs [1], [2] §1.1; the Greeks
    are the derivatives of this expression, [2] ch. 2).

    Args:
      spot: S₀ > 0.
      strike: K > 0, same currency as ``spot``.
      maturity: T > 0 in years.
      rate: r, continuously compounded per year (may be negative).
      vol: σ > 0 per √year.
      div_yield: q, continuous dividend yield per year (may be negative).
      is_call: bool, True for a call, False for a put.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta`` (see the module docstring for units).

    Raises:
      ValueError: naming the argument, if spot, strike, maturity or vol is not positive and
        finite, rate or div_yield is not finite, or is_call is not boolean.

    Example:
      >>> round(european(spot=60.0, strike=65.0, maturity=0.25, rate=0.08, vol=0.3)["price"], 4)
      2.1334
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)

    omega = np.where(call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(s / k) + (r - q + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    df_r = np.exp(-r * t)
    df_q = np.exp(-q * t)
    n_d1 = _norm_cdf(omega * d1)
    n_d2 = _norm_cdf(omega * d2)
    pdf = _norm_pdf(d1)

    out = {
        "price": omega * (s * df_q * n_d1 - k * df_r * n_d2),
        "delta": omega * df_q * n_d1,
        "gamma": df_q * pdf / (s * sd),
        "vega": s * df_q * pdf * sqrt_t,
        "rho": omega * k * t * df_r * n_d2,
        "theta": -s * df_q * pdf * v / (2.0 * sqrt_t)
        + omega * (q * s * df_q * n_d1 - r * k * df_r * n_d2),
    }
    return _package(out, s, k, t, v, r, q, call)


def digital(*, spot, strike, maturity, rate, vol, div_yield=0.0, is_call=True, cash=1.0):
    """Price and Greeks of a cash-or-nothing digital option, all in closed form.

    Pays ``cash`` at T if S_T > K (call) or S_T < K (put):
    V = c e^{-rT} N(ω d₂), with ω and d₂ as in :func:`european` (ref [2] §4.19.2).  With
    n the normal density and σ√T = s:
    delta = ω c e^{-rT} n(d₂)/(S s), gamma = −ω c e^{-rT} n(d₂) d₁/(S s)²,
    vega = −ω c e^{-rT} n(d₂) d₁/σ, rho = −T V + ω c e^{-rT} n(d₂) √T/σ,
    theta = r V − ω c e^{-rT} n(d₂) [(r − q)/s − d₁/(2T)].

    Args:
      spot, strike, maturity, rate, vol, div_yield, is_call: as in :func:`european`.
      cash: the payout c (currency units), any finite number.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: naming the argument, as in :func:`european`, or if cash is not finite.

    Example:
      >>> p = digital(spot=100.0, strike=80.0, maturity=0.75, rate=0.06, vol=0.35,
      ...             div_yield=0.06, is_call=False, cash=10.0)["price"]
      >>> f"{p:.4f}"
      '2.6710'
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)
    c = _finite("cash", cash)

    omega = np.where(call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    d1 = (np.log(s / k) + (r - q + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    pv_cash = c * np.exp(-r * t)
    price = pv_cash * _norm_cdf(omega * d2)
    # every Greek but rho/theta's discounting part moves V only through d₂
    slope = omega * pv_cash * _norm_pdf(d2)

    out = {
        "price": price,
        "delta": slope / (s * sd),
        "gamma": -slope * d1 / (s * sd) ** 2,
        "vega": -slope * d1 / v,
        "rho": -t * price + slope * sqrt_t / v,
        "theta": r * price - slope * ((r - q) / sd - d1 / (2.0 * t)),
    }
    return _package(out, s, k, t, v, r, q, c, call)
