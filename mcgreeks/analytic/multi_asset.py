"""Options on several correlated GBM assets: best-of and worst-of (Stulz), the exchange option
(Margrabe), and the arithmetic basket and the spread with a strike by conditional quadrature.

Model: each asset i follows dS_i = (r − q_i) S_i dt + σ_i S_i dW_i under the pricing measure,
with one common rate r and d⟨W_i, W_j⟩ = ρ_ij dt.  A weight w_i scales an asset: w_i S_i is
again a GBM, with spot w_i S_i and the same σ_i, q_i.  With ω = +1 for a call and −1 for a put,
the contracts pay at T:

* :func:`best_of` — max(ω(max(w₁S₁, w₂S₂) − K), 0), two assets, Stulz's closed form [1], [3];
* :func:`worst_of` — max(ω(min(w₁S₁, w₂S₂) − K), 0), two assets, Stulz's closed form;
* :func:`exchange` — max(ω(w₁S₁ − w₂S₂), 0), Margrabe's closed form [2], [3];
* :func:`spread` — max(ω(w₁S₁ − w₂S₂ − K), 0), any K, by quadrature (the basket with weights
  (w₁, −w₂));
* :func:`basket` — max(ω(Σ w_i S_i − K), 0), 1 to 5 assets, by quadrature.

The quadrature (see :func:`basket`) conditions on all Brownian drivers but one: given them, the
remaining asset is lognormal and the option on it is a Black–Scholes price in closed form; the
other n − 1 dimensions are integrated by a tensor Gauss–Hermite rule.  It is exact up to that
rule's error, which is measured in the tests (about 1e-11 relative for two to four assets,
2e-8 for five, at the default node counts) against QuantLib's independent engines.

Greeks are central finite differences of the price (as in :mod:`mcgreeks.analytic.lookback`),
for ONE unit of the option.  Every function returns a ``dict``:

=============== ============ =============================================================
key             shape        meaning
=============== ============ =============================================================
``price``       float        V
``delta``       (n,)         ∂V/∂S_i (the asset's own spot, weights held fixed)
``gamma``       (n,)         ∂²V/∂S_i²
``vega``        (n,)         ∂V/∂σ_i, per 1.00 of volatility
``pairs``       tuple        the pairs (i, j), i < j, in the order (0,1), (0,2), …, (1,2), …
``cross_gamma`` (n(n−1)/2,)  ∂²V/∂S_i∂S_j for each of ``pairs``
``d_pair_corr`` (n(n−1)/2,)  ∂V/∂ρ_ij for each of ``pairs`` (ρ_ij and ρ_ji move together)
``rho``         float        ∂V/∂r per 1.00 of rate, the dividend yields held fixed
``theta``       float        −∂V/∂T per year
=============== ============ =============================================================

Arguments are scalars per asset (no broadcasting over trades): ``spots``, ``vols``,
``div_yields`` and ``weights`` are sequences of length n (``div_yields`` and ``weights`` may be
scalars, applied to every asset); ``corr`` is the n×n correlation matrix, or for two assets the
one number ρ₁₂.  Units: ``maturity`` T in years, ``rate``, ``div_yields`` and ``vols``
continuously compounded annual figures.

Finite-difference steps (central, truncation error about step²): spots 1e-4 relative for
delta, 2.5e-4 relative for gamma and cross-gamma, vols 1e-4 relative, maturity 1e-4 relative,
rate 1e-5 and correlation 1e-4 absolute.  Where a correlation bump would leave the set of
valid (positive semidefinite) matrices, e.g. at ρ = ±1, the correlation derivative is the
one-sided second-order difference on the valid side.

References:
  [1] R. M. Stulz, "Options on the minimum or the maximum of two risky assets: analysis and
      applications", Journal of Financial Economics 10 (1982) 161–185.
  [2] W. Margrabe, "The value of an option to exchange one asset for another", Journal of
      Finance 33(1) (1978) 177–186.
  [3] E. G. Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., McGraw-Hill (2007),
      §5.1 (exchange-one-asset-for-another options), §5.7 (options on the minimum or the
      maximum of two risky assets); 1st ed. (1998) pp. 56–58 for the values used in the tests.
  [4] D. B. Owen, "Tables for computing bivariate normal probabilities", Annals of
      Mathematical Statistics 27 (1956) 1075–1090 (the bivariate normal law through Owen's T).
  [5] M. M. Patefield, D. Tandy, "Fast and accurate calculation of Owen's T function",
      Journal of Statistical Software 5(5) (2000) (the algorithm of scipy.special.owens_t).
  [6] J. Choi, "Sum of all Black–Scholes–Merton models: an efficient pricing method for
      spread, basket, and Asian options", Journal of Futures Markets 38 (2018) 627–644
      (conditioning on all drivers but one; QuantLib's ChoiBasketEngine, used in the tests).
"""
import itertools

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import special

from mcgreeks.analytic._inputs import _finite, _flag, _norm_cdf, _positive

__all__ = ["bivariate_normal_cdf", "best_of", "worst_of", "exchange", "spread", "basket"]

# Relative finite-difference steps: central differences, truncation ~ step**2.
_H_FIRST = 1e-4
_H_GAMMA = 2.5e-4
_H_RATE = 1e-5  # absolute, per 1.00 of rate
_H_CORR = 1e-4  # absolute

# Below this total volatility σ̂√T of a ratio of two assets, the ratio is treated as known.
_DEGENERATE_SD = 1e-12

# A correlation matrix is accepted when its smallest eigenvalue is above −_PSD_TOL.
_PSD_TOL = 1e-12

# Gauss–Hermite nodes per integrated dimension (index: number of assets − 1), and the
# relative size below which a tensor-product weight is dropped (its mass is negligible).
_DEFAULT_NODES = {0: 1, 1: 64, 2: 96, 3: 48, 4: 24}
_MAX_ASSETS = 5
_WEIGHT_CUT = 1e-16


# ----------------------------------------------------------------------------- bivariate normal


def _owens_t_term(h, other, s):
    """T(h, (other − ρh)/(h√(1−ρ²))) with ``other`` already ``other − ρh``; at h = 0 the limit
    from h = +0, T(0, ±∞) = ±1/4 (0 when ``other`` is 0 too, a case handled by the caller)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = other / (h * s)
        t = special.owens_t(h, np.where(h == 0.0, 0.0, a))
    return np.where(h == 0.0, 0.25 * np.sign(other), t)


def bivariate_normal_cdf(h, k, rho):
    """P(X ≤ h, Y ≤ k) for standard normals X, Y with correlation ρ; arrays broadcast.

    Owen's formula [4]: for |ρ| < 1,
        Φ₂(h, k; ρ) = ½[Φ(h) + Φ(k)] − T(h, a_h) − T(k, a_k) − β,
        a_h = (k − ρh)/(h√(1 − ρ²)),  a_k = (h − ρk)/(k√(1 − ρ²)),
    β = 0 if hk > 0 or (hk = 0 and h + k ≥ 0), ½ otherwise; T is Owen's T function
    (scipy.special.owens_t, the Patefield–Tandy algorithm [5], accurate to about 1e-16).  At
    h = k = 0 the value is ¼ + arcsin(ρ)/(2π); at ρ = 1 it is Φ(min(h, k)); at ρ = −1,
    max(Φ(h) + Φ(k) − 1, 0); infinite h or k are allowed.

    Accuracy: absolute error below 1e-15 on the tested grid (h, k in [−8, 8] with zeros and
    infinities, ρ in [−1, 1]) against QuantLib's BivariateCumulativeNormalDistributionWe04DP
    (Genz's double-precision algorithm); relative accuracy is lower far in the lower tail,
    where the value is below 1e-15 (irrelevant for prices).

    Args:
      h, k: upper limits (may be ±inf).
      rho: correlation in [−1, 1].

    Returns:
      float, or an array of the broadcast shape.

    Raises:
      ValueError: if h or k is NaN, or rho is not finite or outside [−1, 1].

    Example:
      >>> round(bivariate_normal_cdf(0.0, 0.0, 0.5), 12)  # 1/4 + arcsin(1/2)/(2π) = 1/3
      0.333333333333
    """
    h = np.asarray(h, dtype=float)
    k = np.asarray(k, dtype=float)
    r = _finite("rho", rho)
    if np.any(np.isnan(h)) or np.any(np.isnan(k)):
        raise ValueError("h and k must not be NaN")
    if np.any(np.abs(r) > 1.0):
        raise ValueError(f"rho must be in [-1, 1], got {rho!r}")
    h, k, r = np.broadcast_arrays(h, k, r)
    ph, pk = _norm_cdf(h), _norm_cdf(k)
    inner = (r > -1.0) & (r < 1.0) & np.isfinite(h) & np.isfinite(k)
    # Owen's formula on finite arguments with |ρ| < 1 (dummies elsewhere, replaced below)
    hh, kk = np.where(inner, h, 1.0), np.where(inner, k, 1.0)
    rr = np.where(inner, r, 0.0)
    s = np.sqrt((1.0 - rr) * (1.0 + rr))
    beta = np.where((hh * kk > 0.0) | ((hh * kk == 0.0) & (hh + kk >= 0.0)), 0.0, 0.5)
    owen = (0.5 * (_norm_cdf(hh) + _norm_cdf(kk))
            - _owens_t_term(hh, kk - rr * hh, s) - _owens_t_term(kk, hh - rr * kk, s) - beta)
    origin = 0.25 + np.arcsin(rr) / (2.0 * np.pi)
    owen = np.where((hh == 0.0) & (kk == 0.0), origin, owen)
    edge = np.where(r >= 1.0, np.minimum(ph, pk), np.maximum(ph + pk - 1.0, 0.0))
    # an infinite limit: +inf leaves the other marginal, −inf gives 0 (any ρ)
    edge = np.where(np.isposinf(h), pk, np.where(np.isposinf(k), ph, edge))
    edge = np.where(np.isneginf(h) | np.isneginf(k), 0.0, edge)
    out = np.clip(np.where(inner, owen, edge), 0.0, 1.0)
    return float(out) if out.shape == () else out


# ----------------------------------------------------------------------------- inputs


class _Market:
    """The validated inputs of one multi-asset option: arrays of length n and scalars."""

    def __init__(self, spots, maturity, rate, vols, corr, div_yields, weights, n_assets=None,
                 positive_weights=False):
        s = np.atleast_1d(_positive("spots", spots)).astype(float)
        if s.ndim != 1:
            raise ValueError(f"spots must be a sequence of numbers, got {spots!r}")
        n = s.size
        if n_assets is not None and n != n_assets:
            raise ValueError(f"this option needs exactly {n_assets} assets, got {n} spots")
        if not 1 <= n <= _MAX_ASSETS:
            raise ValueError(f"between 1 and {_MAX_ASSETS} assets are supported, got {n}")
        self.n = n
        self.spots = s
        self.vols = self._per_asset("vols", _positive("vols", vols))
        self.div_yields = self._per_asset("div_yields", _finite("div_yields", div_yields))
        w = self._per_asset("weights", _finite("weights", 1.0 if weights is None else weights))
        if np.any(w == 0.0) or (positive_weights and np.any(w < 0.0)):
            kind = "positive" if positive_weights else "nonzero"
            raise ValueError(f"weights must be {kind}, got {weights!r}")
        self.weights = w
        self.maturity = float(_positive("maturity", maturity))
        self.rate = float(_finite("rate", rate))
        self.corr = _correlation(corr, n)

    def _per_asset(self, name, arr):
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 0:
            return np.full(self.n, float(arr))
        if arr.shape != (self.n,):
            raise ValueError(f"{name} must have one entry per asset ({self.n}), got shape "
                             f"{arr.shape}")
        return arr.copy()


def _min_eigenvalue(c):
    return float(np.linalg.eigvalsh(c)[0]) if c.shape[0] > 1 else 1.0


def _correlation(corr, n):
    """The n×n correlation matrix from ``corr`` (a matrix, or for n = 2 the number ρ₁₂; for
    n = 1 None or [[1]]), checked: symmetric, unit diagonal, entries in [−1, 1], PSD."""
    if corr is None:
        if n == 1:
            return np.ones((1, 1))
        raise ValueError(f"corr is required for {n} assets")
    c = _finite("corr", corr)
    if c.ndim == 0:
        if n != 2:
            raise ValueError(f"a single correlation number needs 2 assets, got {n}; pass the "
                             f"{n}x{n} matrix")
        c = np.array([[1.0, float(c)], [float(c), 1.0]])
    if c.shape != (n, n):
        raise ValueError(f"corr must be a {n}x{n} matrix, got shape {c.shape}")
    if np.any(np.abs(c) > 1.0):
        raise ValueError("corr entries must be in [-1, 1]")
    if not np.array_equal(c, c.T) or np.any(np.diag(c) != 1.0):
        raise ValueError("corr must be symmetric with a unit diagonal")
    low = _min_eigenvalue(c)
    if low < -_PSD_TOL:
        raise ValueError(f"corr is not positive semidefinite (smallest eigenvalue {low:.3g})")
    return c.astype(float)


def _strike(value, allow_zero):
    k = float(_finite("strike", value))
    if k < 0.0 or (k == 0.0 and not allow_zero):
        raise ValueError(f"strike must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return k


def _is_call(value):
    call = _flag("is_call", value)
    if call.shape != ():
        raise ValueError(f"is_call must be one boolean, got {value!r}")
    return bool(call)


# ----------------------------------------------------------------------------- greeks


def _fd_greeks(price, m):
    """``price(spots, vols, corr, rate, maturity)`` and its Greeks at the market ``m`` by
    central differences (the layout of the module docstring)."""
    s, v, c, r, t = m.spots, m.vols, m.corr, m.rate, m.maturity
    n = m.n

    def at(s_=s, v_=v, c_=c, r_=r, t_=t):
        return float(price(s_, v_, c_, r_, t_))

    def bumped(arr, i, h):
        out = arr.copy()
        out[i] += h
        return out

    p0 = at()
    delta, gamma, vega = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        hs, hg, hv = _H_FIRST * s[i], _H_GAMMA * s[i], _H_FIRST * v[i]
        delta[i] = (at(s_=bumped(s, i, hs)) - at(s_=bumped(s, i, -hs))) / (2.0 * hs)
        gamma[i] = (at(s_=bumped(s, i, hg)) - 2.0 * p0 + at(s_=bumped(s, i, -hg))) / (hg * hg)
        vega[i] = (at(v_=bumped(v, i, hv)) - at(v_=bumped(v, i, -hv))) / (2.0 * hv)
    pairs = tuple(itertools.combinations(range(n), 2))
    cross, d_corr = np.empty(len(pairs)), np.empty(len(pairs))
    for p, (i, j) in enumerate(pairs):
        hi, hj = _H_GAMMA * s[i], _H_GAMMA * s[j]
        corners = [at(s_=bumped(bumped(s, i, a * hi), j, b * hj))
                   for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
        cross[p] = (corners[0] - corners[1] - corners[2] + corners[3]) / (4.0 * hi * hj)
        d_corr[p] = _corr_derivative(at, c, i, j, p0)
    ht = _H_FIRST * t
    return {
        "price": p0,
        "delta": delta,
        "gamma": gamma,
        "vega": vega,
        "pairs": pairs,
        "cross_gamma": cross,
        "d_pair_corr": d_corr,
        "rho": (at(r_=r + _H_RATE) - at(r_=r - _H_RATE)) / (2.0 * _H_RATE),
        "theta": -(at(t_=t + ht) - at(t_=t - ht)) / (2.0 * ht),
    }


def _corr_derivative(at, c, i, j, p0):
    """∂V/∂ρ_ij: central where both bumped matrices are valid, else one-sided with three
    points (second order) on the valid side; NaN if neither side is valid."""
    def moved(h):
        out = c.copy()
        out[i, j] += h
        out[j, i] += h
        ok = abs(out[i, j]) <= 1.0 and _min_eigenvalue(out) >= -_PSD_TOL
        return out if ok else None

    h = _H_CORR
    up, down = moved(h), moved(-h)
    if up is not None and down is not None:
        return (at(c_=up) - at(c_=down)) / (2.0 * h)
    for sign in (1.0, -1.0):
        one, two = moved(sign * h), moved(2.0 * sign * h)
        if one is not None and two is not None:
            return sign * (-3.0 * p0 + 4.0 * at(c_=one) - at(c_=two)) / (2.0 * h)
    return float("nan")


# ----------------------------------------------------------------------------- Stulz


def _black(fwd, strike, sd, omega):
    """Undiscounted Black price ω[F N(ωd₁) − K N(ωd₂)] for F > 0, K > 0, sd = σ√T >= 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(fwd / strike) / sd + 0.5 * sd
    value = omega * (fwd * _norm_cdf(omega * d1) - strike * _norm_cdf(omega * (d1 - sd)))
    return np.where(sd > 0.0, value, np.maximum(omega * (fwd - strike), 0.0))


def _ratio_sd(v1, v2, rho, t):
    """σ̂√T, σ̂² = σ₁² + σ₂² − 2ρσ₁σ₂: the volatility of ln(S₁/S₂)."""
    return np.sqrt(max(v1 * v1 + v2 * v2 - 2.0 * rho * v1 * v2, 0.0) * t)


def _call_on_extreme(x1, x2, k, t, r, q1, q2, v1, v2, rho, maximum):
    """Stulz's call on max(X₁, X₂) (``maximum``) or min(X₁, X₂), X_i GBMs with spots x_i,
    strike k >= 0 (refs [1], [3] §5.7, cost of carry b_i = r − q_i):
        σ̂² = σ₁² + σ₂² − 2ρσ₁σ₂,  d = [ln(x₁/x₂) + (q₂ − q₁ + σ̂²/2)T]/(σ̂√T),
        y_i = [ln(x_i/K) + (r − q_i + σ_i²/2)T]/(σ_i√T),
        ρ₁ = (σ₁ − ρσ₂)/σ̂,  ρ₂ = (σ₂ − ρσ₁)/σ̂,  M = the bivariate normal law;
        C_max = x₁e^{-q₁T} M(y₁, d; ρ₁) + x₂e^{-q₂T} M(y₂, σ̂√T − d; ρ₂)
                − K e^{-rT} [1 − M(σ₁√T − y₁, σ₂√T − y₂; ρ)],
        C_min = x₁e^{-q₁T} M(y₁, −d; −ρ₁) + x₂e^{-q₂T} M(y₂, d − σ̂√T; −ρ₂)
                − K e^{-rT} M(y₁ − σ₁√T, y₂ − σ₂√T; ρ).
    When σ̂√T < 1e-12 the ratio X₁/X₂ is deterministic and the option is a Black–Scholes call
    on the asset with the larger (max) or smaller (min) forward."""
    a1, a2 = x1 * np.exp(-q1 * t), x2 * np.exp(-q2 * t)  # prepaid forwards
    disc = np.exp(-r * t)
    sd = _ratio_sd(v1, v2, rho, t)
    if sd < _DEGENERATE_SD:
        pick_first = (a1 >= a2) if maximum else (a1 <= a2)
        a, vol = (a1, v1) if pick_first else (a2, v2)
        if k == 0.0:
            return a
        return float(disc * _black(a / disc, k, vol * np.sqrt(t), 1.0))
    sd1, sd2 = v1 * np.sqrt(t), v2 * np.sqrt(t)
    d = (np.log(a1 / a2) + 0.5 * sd * sd) / sd
    with np.errstate(divide="ignore"):
        y1 = (np.log(a1 / (k * disc)) + 0.5 * sd1 * sd1) / sd1
        y2 = (np.log(a2 / (k * disc)) + 0.5 * sd2 * sd2) / sd2
    rho1 = float(np.clip((v1 - rho * v2) * np.sqrt(t) / sd, -1.0, 1.0))
    rho2 = float(np.clip((v2 - rho * v1) * np.sqrt(t) / sd, -1.0, 1.0))
    m = bivariate_normal_cdf
    if maximum:
        value = (a1 * m(y1, d, rho1) + a2 * m(y2, sd - d, rho2))
        if k > 0.0:
            value -= k * disc * (1.0 - m(sd1 - y1, sd2 - y2, rho))
    else:
        value = (a1 * m(y1, -d, -rho1) + a2 * m(y2, d - sd, -rho2))
        if k > 0.0:
            value -= k * disc * m(y1 - sd1, y2 - sd2, rho)
    return float(value)


def _extreme_price(k, call, weights, q, maximum):
    """price(spots, vols, corr, rate, maturity) of the option on the max or min.

    Puts by parity (ref [1]; (K − Y)⁺ = K − Y + (Y − K)⁺ for Y = max or min):
        P = K e^{-rT} − C(K = 0) + C(K),
    C(K = 0) being the present value of the maximum (minimum) itself."""
    def price(s, v, c, r, t):
        x1, x2 = weights[0] * s[0], weights[1] * s[1]
        args = (t, r, q[0], q[1], v[0], v[1], c[0, 1], maximum)
        value = _call_on_extreme(x1, x2, k, *args)
        if call:
            return value
        return k * np.exp(-r * t) - _call_on_extreme(x1, x2, 0.0, *args) + value
    return price


def _extreme(spots, strike, maturity, rate, vols, corr, div_yields, weights, is_call, maximum):
    m = _Market(spots, maturity, rate, vols, corr, div_yields, weights, n_assets=2,
                positive_weights=True)
    k = _strike(strike, allow_zero=True)
    return _fd_greeks(_extreme_price(k, _is_call(is_call), m.weights, m.div_yields, maximum), m)


def best_of(*, spots, strike, maturity, rate, vols, corr, div_yields=0.0, weights=None,
            is_call=True):
    """Price and Greeks of a European option on the better of two assets (Stulz [1]).

    Payoff at T: max(ω(max(w₁S₁(T), w₂S₂(T)) − K), 0), ω = +1 call, −1 put.  The call is
    Stulz's closed form (see ``_call_on_extreme`` for the expression, [3] §5.7), the put comes
    from the exact parity (K − Y)⁺ = K − Y + (Y − K)⁺ with Y the maximum:
        P(K) = K e^{-rT} − C(0) + C(K),  C(0) = PV of max(w₁S₁, w₂S₂) (= w₂S₂e^{-q₂T} plus
        Margrabe's option to exchange w₂S₂ for w₁S₁).
    The bivariate normal law is :func:`bivariate_normal_cdf` (about 1e-15 absolute), so the
    price is exact to rounding.  With σ₁ = σ₂ and ρ = 1 the ratio of the assets is known and
    the option is the Black–Scholes option on the asset with the larger forward.

    Args:
      spots: (S₁, S₂), each > 0.
      strike: K >= 0 (K = 0: the call is the present value of the maximum).
      maturity: T > 0 in years.
      rate: r, continuously compounded per year (may be negative).
      vols: (σ₁, σ₂), each > 0 per √year.
      corr: ρ₁₂ in [−1, 1] (or the 2×2 matrix).
      div_yields: q_i, continuous dividend yields per year (a number or one per asset).
      weights: w_i > 0 (a number or one per asset); default 1.
      is_call: bool, True for a call, False for a put.

    Returns:
      dict of ``price, delta, gamma, vega, pairs, cross_gamma, d_pair_corr, rho, theta``
      (layout in the module docstring).

    Raises:
      ValueError: naming the argument, if a spot, vol or maturity is not positive and finite,
        the strike is negative, a weight is not positive, the rate or a dividend yield is not
        finite, corr is outside [−1, 1], there are not exactly two spots, or is_call is not
        one boolean.

    Example (ref [3], 1st ed. p. 58):
      >>> v = best_of(spots=[100.0, 105.0], strike=98.0, maturity=0.5, rate=0.05,
      ...             vols=[0.11, 0.16], corr=0.63, div_yields=[0.06, 0.09])
      >>> round(v["price"], 4)
      8.0701
    """
    return _extreme(spots, strike, maturity, rate, vols, corr, div_yields, weights, is_call,
                    maximum=True)


def worst_of(*, spots, strike, maturity, rate, vols, corr, div_yields=0.0, weights=None,
             is_call=True):
    """Price and Greeks of a European option on the worse of two assets (Stulz [1]).

    Payoff at T: max(ω(min(w₁S₁(T), w₂S₂(T)) − K), 0).  As :func:`best_of` with the minimum:
    the call is Stulz's closed form, the put P(K) = K e^{-rT} − C(0) + C(K) with C(0) the
    present value of min(w₁S₁, w₂S₂) (= w₁S₁e^{-q₁T} minus Margrabe's option to exchange
    w₂S₂ for w₁S₁).  Arguments, returns and errors as :func:`best_of`.

    Example (ref [3], 1st ed., the values of its program, tabulated in QuantLib's tests):
      >>> v = worst_of(spots=[100.0, 105.0], strike=98.0, maturity=0.5, rate=0.05,
      ...              vols=[0.11, 0.16], corr=0.63)
      >>> round(v["price"], 4)
      4.8177
    """
    return _extreme(spots, strike, maturity, rate, vols, corr, div_yields, weights, is_call,
                    maximum=False)


# ----------------------------------------------------------------------------- Margrabe


def _margrabe_price(call, weights, q):
    def price(s, v, c, r, t):
        a1 = weights[0] * s[0] * np.exp(-q[0] * t)
        a2 = weights[1] * s[1] * np.exp(-q[1] * t)
        if not call:
            a1, a2 = a2, a1
        return float(_black(a1, a2, _ratio_sd(v[0], v[1], c[0, 1], t), 1.0))
    return price


def exchange(*, spots, maturity, rate, vols, corr, div_yields=0.0, weights=None, is_call=True):
    """Price and Greeks of the option to exchange one asset for another (Margrabe [2]).

    Payoff at T: max(ω(w₁S₁(T) − w₂S₂(T)), 0), the ``spread`` with K = 0.  With a_i =
    w_iS_ie^{-q_iT} and σ̂² = σ₁² + σ₂² − 2ρσ₁σ₂ (refs [2], [3] §5.1):
        call = a₁N(d₁) − a₂N(d₂),  d₁ = [ln(a₁/a₂) + σ̂²T/2]/(σ̂√T),  d₂ = d₁ − σ̂√T;
    the put exchanges the other way (a₁ and a₂ swapped).  The price does not depend on r
    (rho is 0 up to rounding).  At σ̂ = 0 it is max(ω(a₁ − a₂), 0).  Exact to rounding.

    Args:
      spots, maturity, rate, vols, corr, div_yields, weights, is_call: as :func:`best_of`.

    Returns:
      dict as :func:`best_of`.

    Raises:
      ValueError: as :func:`best_of` (no strike).

    Example (the same value as QuantLib's AnalyticEuropeanMargrabeEngine):
      >>> v = exchange(spots=[22.0, 20.0], maturity=0.25, rate=0.1, vols=[0.2, 0.25],
      ...              corr=-0.5, div_yields=[0.06, 0.04])
      >>> round(v["price"], 4)
      2.7173
    """
    m = _Market(spots, maturity, rate, vols, corr, div_yields, weights, n_assets=2,
                positive_weights=True)
    return _fd_greeks(_margrabe_price(_is_call(is_call), m.weights, m.div_yields), m)


# ----------------------------------------------------------------------------- quadrature


def _semidefinite_cholesky(c):
    """Lower-triangular L with L Lᵀ = c for a PSD matrix c; a zero pivot (a variable that
    the previous ones determine) gives a zero column instead of a failure."""
    n = c.shape[0]
    low = np.zeros((n, n))
    for j in range(n):
        pivot = c[j, j] - low[j, :j] @ low[j, :j]
        if pivot <= 1e-14:
            continue
        low[j, j] = np.sqrt(pivot)
        low[j + 1:, j] = (c[j + 1:, j] - low[j + 1:, :j] @ low[j, :j]) / low[j, j]
    return low


def _order(c, last):
    """Asset indices with ``last`` moved to the end."""
    return [i for i in range(c.shape[0]) if i != last] + [last]


def _choose_pivot(m):
    """The asset kept in closed form: the largest conditional standard deviation of its
    weighted forward, |w_k F_k| σ_k √(1 − R²_k) (the smoother the inner price, the better
    the outer rule)."""
    scale = []
    for k in range(m.n):
        idx = _order(m.corr, k)
        cond = _semidefinite_cholesky(m.corr[np.ix_(idx, idx)])[-1, -1]
        fwd = abs(m.weights[k]) * m.spots[k] * np.exp(-m.div_yields[k] * m.maturity)
        scale.append(fwd * m.vols[k] * cond)
    return int(np.argmax(scale))


def _grid(dim, nodes):
    """Tensor Gauss–Hermite points (dim, P) and weights (P,) for the standard normal law in
    ``dim`` dimensions, weights below _WEIGHT_CUT × the largest dropped."""
    if dim == 0:
        return np.zeros((0, 1)), np.ones(1)
    x, w = hermegauss(nodes)
    w = w / w.sum()
    points = np.indices((nodes,) * dim).reshape(dim, -1)
    weight = np.prod(w[points], axis=0)
    keep = weight > _WEIGHT_CUT * weight.max()
    return x[points[:, keep]], weight[keep]


def _basket_price(k, call, weights, q, pivot, points, weight):
    """price(spots, vols, corr, rate, maturity) of max(ω(Σ w_i S_i(T) − K), 0) by
    conditioning on every driver but the pivot's (see :func:`basket`)."""
    omega = 1.0 if call else -1.0

    def price(s, v, c, r, t):
        idx = _order(c, pivot)
        low = _semidefinite_cholesky(c[np.ix_(idx, idx)])
        sqt = np.sqrt(t)
        fwd = weights[idx] * s[idx] * np.exp((r - q[idx]) * t)  # signed forwards
        vol = v[idx] * sqt
        # drivers Z = L ε; ε_1..ε_{n−1} are the quadrature points, ε_n stays in closed form
        z = low[:-1, :-1] @ points  # (n − 1, P)
        others = fwd[:-1, None] * np.exp(vol[:-1, None] * z - 0.5 * vol[:-1, None] ** 2)
        rest = np.sum(others, axis=0) if len(idx) > 1 else np.zeros(points.shape[1])
        mean = low[-1, :-1] @ points  # the pivot's driver given ε_1..ε_{n−1}
        cond_sd = vol[-1] * low[-1, -1]
        # given the others, w S(T) of the pivot is lognormal with this (signed) forward
        cond_fwd = fwd[-1] * np.exp(vol[-1] * mean - 0.5 * vol[-1] ** 2
                                    + 0.5 * cond_sd ** 2)
        sign = 1.0 if fwd[-1] > 0.0 else -1.0
        # ω(sign·Y + rest − K)⁺ = (θ(Y − K'))⁺, Y = |pivot|, θ = ω·sign, K' = sign·(K − rest)
        theta = omega * sign
        k_eff = sign * (k - rest)
        g = np.abs(cond_fwd)
        safe = np.where(k_eff > 0.0, k_eff, 1.0)
        inner = np.where(k_eff > 0.0, _black(g, safe, cond_sd, theta),
                         np.maximum(theta * (g - k_eff), 0.0))
        return np.exp(-r * t) * (weight @ inner)
    return price


def _quadrature(m, k, call, nodes):
    dim = m.n - 1
    if nodes is None:
        nodes = _DEFAULT_NODES[dim]
    elif not (isinstance(nodes, (int, np.integer)) and nodes >= 2):
        raise ValueError(f"nodes must be an integer >= 2, got {nodes!r}")
    points, weight = _grid(dim, int(nodes))
    pivot = _choose_pivot(m)
    price = _basket_price(k, call, m.weights, m.div_yields, pivot, points, weight)
    return _fd_greeks(price, m)


def spread(*, spots, strike, maturity, rate, vols, corr, div_yields=0.0, weights=None,
           is_call=True, nodes=None):
    """Price and Greeks of a spread option, by conditional quadrature.

    Payoff at T: max(ω(w₁S₁(T) − w₂S₂(T) − K), 0), any K (K = 0 is :func:`exchange`).  It is
    the :func:`basket` with weights (w₁, −w₂): given one asset's driver, the other asset is
    lognormal and the option on it a Black–Scholes price with strike shifted by the first;
    the remaining one-dimensional integral uses ``nodes`` Gauss–Hermite points (default 64).

    Accuracy: about 1e-12 relative to the price for |ρ| <= 0.9 (checked in the tests against
    Margrabe at K = 0, against QuantLib's ChoiBasketEngine and against twice the nodes).  The
    rule converges slowly as |ρ| → 1 with σ₁w₁S₁ ≈ σ₂w₂S₂, where the inner price
    approaches the payoff's kink.

    Args:
      spots, maturity, rate, vols, corr, div_yields, is_call: as :func:`best_of`.
      strike: K, finite (any sign).
      weights: w_i > 0 (a number or one per asset); default 1.
      nodes: Gauss–Hermite points, integer >= 2, or None for the default.

    Returns:
      dict as :func:`best_of`.

    Raises:
      ValueError: as :func:`best_of`, or if nodes is not an integer >= 2.
    """
    m = _Market(spots, maturity, rate, vols, corr, div_yields, weights, n_assets=2,
                positive_weights=True)
    m.weights = m.weights * np.array([1.0, -1.0])
    return _quadrature(m, float(_finite("strike", strike)), _is_call(is_call), nodes)


def basket(*, spots, strike, maturity, rate, vols, corr=None, div_yields=0.0, weights=None,
           is_call=True, nodes=None):
    """Price and Greeks of an arithmetic basket option on 1 to 5 correlated GBM assets.

    Payoff at T: max(ω(Σ w_i S_i(T) − K), 0); weights of any sign (nonzero).

    Method (the conditioning of Choi [6], with a plain tensor rule): write the drivers as
    Z = L ε, L the Cholesky factor of the correlation matrix with a pivot asset p last.  Given
    ε_1..ε_{n−1}, the other assets are known and w_pS_p(T) is lognormal with log-standard
    deviation σ_p√T·L_pp, so E[payoff | ε_1..ε_{n−1}] is a Black–Scholes price with the strike
    moved by the sum of the others (or a forward, when that strike is <= 0: the price is
    infinitely smooth across that switch).  The n − 1 outer dimensions are integrated by a
    tensor Gauss–Hermite rule with ``nodes`` points per dimension (default 64, 96, 48, 24 for
    2, 3, 4, 5 assets; product weights below 1e-16 of the largest dropped).  The pivot is the
    asset with the largest |w_pF_p| σ_p √(1 − R²_p), fixed across the Greeks' bumps so that
    the rule's error moves smoothly with them.  n = 1 is Black–Scholes exactly.

    Accuracy (measured in the tests, against QuantLib's ChoiBasketEngine and against finer
    rules): about 1e-11 relative for 2 to 4 assets and 2e-8 for 5 assets at correlations
    within ±0.9 (for a price far below the basket's size, about 1e-12 of that size) (the Greeks of 5 assets take about 4 s); the rule degrades when the correlation matrix is nearly singular (then the
    pivot is nearly determined by the others and the inner price nearly kinked).

    Args:
      spots: (S_1, …, S_n), each > 0, 1 <= n <= 5.
      strike: K, finite (any sign).
      maturity, rate, vols, div_yields, is_call: as :func:`best_of`, one per asset.
      corr: the n×n correlation matrix (PSD), the number ρ₁₂ for two assets, None for one.
      weights: w_i, nonzero (a number or one per asset); default 1.
      nodes: Gauss–Hermite points per dimension, integer >= 2, or None for the default.

    Returns:
      dict as :func:`best_of`.

    Raises:
      ValueError: as :func:`best_of`, if corr is not a valid correlation matrix (the message
        gives its smallest eigenvalue when it is not PSD), or nodes is not an integer >= 2.

    Example (one asset: Black–Scholes):
      >>> v = basket(spots=[60.0], strike=65.0, maturity=0.25, rate=0.08, vols=[0.3])
      >>> round(v["price"], 4)
      2.1334
    """
    m = _Market(spots, maturity, rate, vols, corr, div_yields, weights)
    return _quadrature(m, float(_finite("strike", strike)), _is_call(is_call), nodes)
