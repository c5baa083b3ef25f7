"""Closed form for the discretely sampled geometric-average (average-price) Asian option.

Same conventions as :mod:`mcgreeks.analytic.black_scholes`: keyword-only broadcasting
arguments, a ``dict`` of ``price, delta, gamma, vega, rho, theta`` for one unit, vega and rho
per 1.00, theta = −∂V/∂T per year.  The fixing dates t_i = i·T/n move with T, so theta is
minus the derivative of the closed form with respect to its ``maturity`` argument (it is NOT
the calendar-time theta of a contract whose fixing dates are fixed).

References:
  [1] A. G. Z. Kemna, A. C. F. Vorst, "A pricing method for options based on average asset
      values", Journal of Banking and Finance 14 (1990) 113–129.
  [2] E. G. Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., McGraw-Hill (2007),
      §4.20.1 (geometric average-rate options).
  [3] L. Clewlow, C. Strickland, "Implementing Derivatives Models", Wiley (1998), pp. 118–123
      (discrete geometric average, the reference value used in the tests).
"""
import numpy as np

from mcgreeks import elementary
from mcgreeks.analytic._inputs import _count, _market, _norm_cdf, _norm_pdf, _package

__all__ = ["geometric_asian"]


def geometric_asian(*, spot, strike, maturity, rate, vol, div_yield=0.0, n_fixings, is_call=True):
    """Price and Greeks of a discrete geometric-average-price Asian option, all in closed form.

    Payoff at T: max(ω(G − K), 0) with G = (∏_{i=1..n} S(t_i))^{1/n}, t_i = i·T/n.  Under GBM
    ln G is normal with (refs [1], [2]; discrete sums Σ t_i and Σ_ij min(t_i, t_j)):
        E[ln G]   = ln S + (r − q − σ²/2) τ₁,      τ₁ = T (n + 1) / (2n),
        Var[ln G] = σ² τ₂,                        τ₂ = T (n + 1)(2n + 1) / (6n²),
    so V is Black's formula on the forward F = E[G] = S exp((r − q − σ²/2) τ₁ + σ² τ₂ / 2)
    with total volatility σ√τ₂ and discount e^{-rT}.  n = 1 is the European option.

    All Greeks are analytic (chain rule through F, σ√τ₂ and e^{-rT}; τ₁ and τ₂ scale with T).

    Args:
      spot: S₀ > 0.
      strike: K > 0.
      maturity: T > 0 in years (also the last fixing date).
      rate: r, continuously compounded per year (may be negative).
      vol: σ > 0 per √year.
      div_yield: q, continuous dividend yield per year (may be negative).
      n_fixings: n, integer >= 1, number of equally spaced fixings (t = 0 is not a fixing).
      is_call: bool, True for a call, False for a put.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: naming the argument, if spot, strike, maturity or vol is not positive and
        finite, rate or div_yield is not finite, n_fixings is not an integer >= 1, or is_call
        is not boolean.

    Example (ref [3]):
      >>> p = geometric_asian(spot=100.0, strike=100.0, maturity=1.0, rate=0.06, vol=0.2,
      ...                     div_yield=0.03, n_fixings=10)["price"]
      >>> round(p, 10)
      5.3425606635
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)
    n = _count("n_fixings", n_fixings)

    omega = np.where(call, 1.0, -1.0)
    tau1 = t * (n + 1.0) / (2.0 * n)
    tau2 = t * (n + 1.0) * (2.0 * n + 1.0) / (6.0 * n * n)
    # ln(F/S); linear in T, which is what makes theta simple below
    carry = (r - q - 0.5 * v * v) * tau1 + 0.5 * v * v * tau2
    fwd = s * elementary.exp(carry)
    sd = v * np.sqrt(tau2)
    d1 = (elementary.log(fwd / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = elementary.exp(-r * t)
    n_d1 = _norm_cdf(omega * d1)
    price = omega * df * (fwd * n_d1 - k * _norm_cdf(omega * d2))

    dv_dlogf = omega * df * n_d1 * fwd  # ∂V/∂ln F
    dv_dsd = df * fwd * _norm_pdf(d1)  # Black vega with respect to the total volatility

    out = {
        "price": price,
        "delta": dv_dlogf / s,
        "gamma": dv_dsd / (s * s * sd),
        "vega": dv_dlogf * v * (tau2 - tau1) + dv_dsd * np.sqrt(tau2),
        "rho": dv_dlogf * tau1 - t * price,
        "theta": -(dv_dlogf * carry / t + dv_dsd * sd / (2.0 * t) - r * price),
    }
    return _package(out, s, k, t, v, r, q, n, call)
