"""Fixed-strike lookback options under GBM: the continuous-monitoring closed form, the
Broadie–Glasserman–Kou approximation of the discretely monitored option, and the discretely
monitored price itself by a one-dimensional recursive quadrature.

A fixed-strike lookback call pays max(M − K, 0) at T, with M the maximum of the spot; a put
pays max(K − m, 0), with m the minimum.  Three ways of monitoring the extreme:

* :func:`lookback`: the spot is watched continuously on [0, T], starting from a known running
  extreme (the spot S₀ itself at inception).  Closed form of Conze & Viswanathan [1] (the
  floating-strike case is Goldman, Sosin & Gatto [2]), as tabulated by Haug [3].
* :func:`lookback_discrete_bgk`: the extreme is taken over the n fixings t_i = i·T/n,
  i = 1..n (t = 0 is NOT a fixing), approximated from the continuous formula by the
  continuity correction of Broadie, Glasserman & Kou [4].
* :func:`lookback_discrete`: the same discretely monitored option, computed to about 1e-8
  relative by a recursive quadrature of the reflected random walk ln(running max / spot) (the
  Lindley recursion; the duality idea of Aitsahlia & Lai [5]).  Use it as the reference for a
  Monte Carlo of the discrete contract: the BGK approximation is only first-order accurate.

Conventions as in :mod:`mcgreeks.analytic.black_scholes`: keyword-only broadcasting
arguments, a ``dict`` of ``price, delta, gamma, vega, rho, theta`` for one unit; vega per 1.00
of volatility, rho = ∂V/∂r per 1.00 of rate with the dividend yield q fixed, theta = −∂V/∂T per
year.  For the discrete options the fixing dates move with T (t_i = i·T/n), so theta is minus
the derivative in the ``maturity`` argument, as for the Asian closed form.  The Greeks are
central finite differences of the price with small relative steps (truncation error about
1e-7 relative for delta, vega, rho and theta, 1e-6 for gamma), except where a kink makes the
derivative one-sided (gamma of the continuous option at S₀ = K, see :func:`lookback`).

References:
  [1] A. Conze, Viswanathan, "Path dependent options: the case of lookback options",
      Journal of Finance 46(5) (1991) 1893–1907.
  [2] M. B. Goldman, H. B. Sosin, M. A. Gatto, "Path dependent options: 'buy at the low, sell
      at the high'", Journal of Finance 34(5) (1979) 1111–1127.
  [3] E. G. Haug, "The Complete Guide to Option Pricing Formulas", 2nd ed., McGraw-Hill
      (2007), §4.15.2 (fixed-strike lookback options); 1st ed. (1998) pp. 63–64 for the table
      of values used in the tests.
  [4] M. Broadie, P. Glasserman, S. Kou, "Connecting discrete and continuous path-dependent
      options", Finance and Stochastics 3 (1999) 55–82.
  [5] F. AitSahlia, T. L. Lai, "Random walk duality and the valuation of discrete lookback
      options", Applied Mathematical Finance 5 (1998) 227–240.
"""
import numpy as np
from numpy.polynomial.legendre import leggauss
from scipy import signal

from mcgreeks.analytic._inputs import (
    _count,
    _finite,
    _market,
    _norm_cdf,
    _norm_pdf,
    _package,
)
from mcgreeks.analytic.barrier import BGK_BETA

__all__ = ["lookback", "lookback_discrete_bgk", "lookback_discrete", "BGK_BETA"]

# |(r − q) T| below this: the r = q limit of the closed form.  The general expression loses
# about eps / |(r − q) T| to cancellation and the limit is off by O(|(r − q) T|): the two
# errors cross near 1e-8.
_CARRY_LIMIT = 1e-8

# Relative finite-difference steps: central differences, truncation ~ step**2.
_H_FIRST = 1e-4
_H_GAMMA = 1e-3
_H_RATE = 1e-5  # absolute, per 1.00 of rate

# Gauss–Legendre nodes per side of the strike in the integral over the first fixing, and the
# normal quantile where that integral is cut (the mass beyond 10 is below 1e-23).
_FIRST_FIXING_NODES = 48
_Z_CUT = 10.0


def _continuous_price(s, k, t, r, q, v, call, extreme):
    """Continuous-monitoring price (refs [1], [3]), every argument a broadcastable array.

    With ω = +1 for a call and −1 for a put, b = r − q, L = max(K, M₀) for a call and
    min(K, m₀) for a put, d₁ = (ln(S/L) + (b + σ²/2)T)/(σ√T), d₂ = d₁ − σ√T:
        V = e^{-rT} (ω(M₀ − K))⁺ + ω [S e^{-qT} N(ωd₁) − L e^{-rT} N(ωd₂)]
            + ω S e^{-rT} σ²/(2b) [e^{bT} N(ωd₁) − (S/L)^{-2b/σ²} N(ω(d₁ − 2b√T/σ))].
    As b → 0 the last term tends to S e^{-rT} σ√T [n(d₁) + ω d₁ N(ωd₁)] (expand the bracket to
    first order in b: its two terms agree at b = 0).
    """
    omega = np.where(call, 1.0, -1.0)
    level = np.where(call, np.maximum(k, extreme), np.minimum(k, extreme))
    sd = v * np.sqrt(t)
    b = r - q
    d1 = (np.log(s / level) + (b + 0.5 * v * v) * t) / sd
    d2 = d1 - sd
    disc = np.exp(-r * t)
    base = (disc * np.maximum(omega * (extreme - k), 0.0)
            + omega * (s * np.exp(-q * t) * _norm_cdf(omega * d1)
                       - level * disc * _norm_cdf(omega * d2)))
    small = np.abs(b * t) < _CARRY_LIMIT
    x = np.where(small, 1.0, 2.0 * b / (v * v))  # 2b/σ²; a dummy 1 where the limit is used
    general = omega * s * disc / x * (
        np.exp(b * t) * _norm_cdf(omega * d1)
        - np.exp(-x * np.log(s / level)) * _norm_cdf(omega * (d1 - x * sd)))
    limit = s * disc * sd * (_norm_pdf(d1) + omega * d1 * _norm_cdf(omega * d1))
    return base + np.where(small, limit, general)


def _fd_greeks(price, s, t, r, v):
    """``price(s, t, r, v)`` and its Greeks by central differences (relative steps in s, t, v;
    an absolute step in r): delta, gamma = ∂/∂s, ∂²/∂s²; vega ∂/∂v; rho ∂/∂r; theta −∂/∂t."""
    p0 = price(s, t, r, v)
    hs, hg, ht, hv = _H_FIRST * s, _H_GAMMA * s, _H_FIRST * t, _H_FIRST * v
    up, down = price(s + hg, t, r, v), price(s - hg, t, r, v)
    return {
        "price": p0,
        "delta": (price(s + hs, t, r, v) - price(s - hs, t, r, v)) / (2.0 * hs),
        "gamma": (up - 2.0 * p0 + down) / (hg * hg),
        "vega": (price(s, t, r, v + hv) - price(s, t, r, v - hv)) / (2.0 * hv),
        "rho": (price(s, t, r + _H_RATE, v) - price(s, t, r - _H_RATE, v)) / (2.0 * _H_RATE),
        "theta": -(price(s, t + ht, r, v) - price(s, t - ht, r, v)) / (2.0 * ht),
    }


def lookback(*, spot, strike, maturity, rate, vol, div_yield=0.0, is_call=True,
             running_extreme=None):
    """Price and Greeks of a continuously monitored fixed-strike lookback option.

    Payoff at T: max(M_T − K, 0) for a call, M_T = max(M₀, max_{0≤t≤T} S_t); max(K − m_T, 0)
    for a put, m_T = min(m₀, min_{0≤t≤T} S_t).  Closed form of Conze & Viswanathan [1], in
    Haug's notation [3] with cost of carry b = r − q; both cases K ≤ M₀ and K > M₀ (call), and
    K ≥ m₀ and K < m₀ (put), are covered (see ``_continuous_price`` for the expression).  The
    formula carries a factor σ²/(2(r − q)); at r = q (|r − q|·T < 1e-8) its limit is used, which
    is continuous with the general expression.

    Greeks by central differences of the closed form.  With ``running_extreme=None`` the
    running extreme IS the spot (a contract at inception), so the spot bump of delta and
    gamma moves both, like a Monte Carlo whose paths start at S₀.  The price is then not
    twice differentiable at S₀ = K (the call's level max(K, S₀) switches), and gamma there is
    the average of the two one-sided values.  With a given running extreme, delta and gamma
    hold it fixed.

    Args:
      spot: S₀ > 0.
      strike: K > 0.
      maturity: T > 0 in years.
      rate: r, continuously compounded per year (may be negative).
      vol: σ > 0 per √year.
      div_yield: q, continuous dividend yield per year (may be negative).
      is_call: bool, True for a call (maximum), False for a put (minimum).
      running_extreme: the maximum (call) or minimum (put) observed so far: M₀ >= S₀ for a
        call, m₀ <= S₀ for a put.  None (default): S₀, the option at inception.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: naming the argument, if spot, strike, maturity, vol or running_extreme is not
        positive and finite, rate or div_yield is not finite, is_call is not boolean, or the
        running extreme is on the wrong side of the spot.

    Example (ref [3], 1st ed. p. 64):
      >>> p = lookback(spot=100.0, strike=95.0, maturity=0.5, rate=0.1, vol=0.1)["price"]
      >>> round(p, 4)
      13.2687
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)
    inputs = [s, k, t, v, r, q, call]
    if running_extreme is None:
        def price(s_, t_, r_, v_):
            return _continuous_price(s_, k, t_, r_, q, v_, call, s_)
    else:
        ext = _finite("running_extreme", running_extreme)
        if np.any(~(ext > 0.0)):
            raise ValueError(f"running_extreme must be positive, got {running_extreme!r}")
        wrong = np.where(call, ext < s, ext > s)
        if np.any(wrong):
            raise ValueError("running_extreme must be >= spot for a call (a running maximum) "
                             "and <= spot for a put (a running minimum), got "
                             f"{running_extreme!r} with spot {spot!r}")
        inputs.append(ext)

        def price(s_, t_, r_, v_):
            # a spot bump above a call's M0 (below a put's m0) would be inconsistent: the
            # running extreme follows the spot there, as it would along a path
            e = np.where(call, np.maximum(ext, s_), np.minimum(ext, s_))
            return _continuous_price(s_, k, t_, r_, q, v_, call, e)
    return _package(_fd_greeks(price, s, t, r, v), *inputs)


def _bgk_price(s, k, t, r, q, v, call, n):
    """The BGK-corrected discrete price (see :func:`lookback_discrete_bgk`), arrays broadcast
    together; the integral over the first fixing on a trailing node axis."""
    s, k, t, r, q, v, call, n = (np.asarray(a)[..., None] for a in
                                 np.broadcast_arrays(s, k, t, r, q, v, call, n))
    dt = t / n
    sd1 = v * np.sqrt(dt)
    mu1 = (r - q - 0.5 * v * v) * dt
    shift = BGK_BETA * sd1  # β σ √(T/n)
    omega = np.where(call, 1.0, -1.0)
    # split the integral where S(t1) = K: the value at t1 has a kink there
    z_k = np.clip((np.log(k / s) - mu1) / sd1, -_Z_CUT, _Z_CUT)
    x, w = leggauss(_FIRST_FIXING_NODES)
    lo_half, hi_half = 0.5 * (z_k + _Z_CUT), 0.5 * (_Z_CUT - z_k)
    z = np.concatenate([z_k - lo_half + lo_half * x, z_k + hi_half + hi_half * x], axis=-1)
    weight = np.concatenate([lo_half * w + 0.0 * z_k, hi_half * w + 0.0 * z_k], axis=-1)
    s1 = s * np.exp(mu1 + sd1 * z)
    rest = t - dt
    # the fixings t1..tn seen from t1: a walk whose start point is a fixing, over n − 1 steps
    # of the same length; its extreme is the continuous one moved by e^{∓βσ√Δt}, with the
    # start point itself moved the same way (see the docstring of lookback_discrete_bgk)
    factor = np.exp(omega * shift)
    with np.errstate(all="ignore"):
        later = _continuous_price(s1, k * factor, np.where(n > 1, rest, 1.0), r, q, v, call,
                                  s1 * factor) / factor
    value_t1 = np.where(n > 1, later, np.maximum(omega * (s1 - k), 0.0))
    return np.exp(-r[..., 0] * dt[..., 0]) * np.sum(weight * _norm_pdf(z) * value_t1, axis=-1)


def lookback_discrete_bgk(*, spot, strike, maturity, rate, vol, div_yield=0.0, n_fixings,
                          is_call=True):
    """Broadie–Glasserman–Kou approximation of a discretely monitored fixed-strike lookback.

    Payoff at T: max(M − K, 0), M = max_{i=1..n} S(t_i) (call), or max(K − m, 0),
    m = min_{i=1..n} S(t_i) (put), t_i = i·T/n; t = 0 is NOT a fixing.

    The correction [4] (Siegmund's corrected diffusion approximation): for a walk whose start
    point is a fixing, the discrete maximum above the start is distributed like the
    continuous one moved down by e^{-a}, a = βσ√(T/n), β = −ζ(1/2)/√(2π) ≈ 0.5826:
    P(M_d ≥ y) ≈ P(M_c ≥ y e^{a}) for y above the start point S, and P(M_d ≥ y) = 1 below it.
    Integrating (M_d − K)⁺ = ∫_K^∞ 1{M_d ≥ y} dy gives, for every K,
        V_d(S, K) ≈ e^{-a} V_c(S, K e^{a}, M₀ = S e^{a})
    (V_c the continuous price of :func:`lookback` with running maximum M₀; for K ≥ S this is
    BGK's e^{-a} V_c(S, K e^{a})).  The put is the mirror image: e^{a} V_c(S, K e^{-a},
    m₀ = S e^{-a}).

    Here t = 0 is not a fixing, and that matters in the money: M = max_{i≥1} S(t_i) may end
    below S₀, which the formula above (written for M ≥ S₀) does not allow; applied from t = 0
    it overprices an in-the-money call by O(σ√(T/n)) (+0.74 on 39.48, S₀ = 100, K = 80,
    σ = 0.3, n = 12).  For K ≥ S₀ (call) or K ≤ S₀ (put) both agree.  So the correction is
    applied from the first fixing on: conditionally on S(t₁), the fixings t₁..t_n are a walk
    whose start point is a fixing, over T − T/n, and
        V = e^{-rT/n} E[e^{-a} V_c(S(t₁), K e^{a}, T − T/n, M₀ = S(t₁) e^{a})],
    the expectation over the lognormal S(t₁) by Gauss–Legendre quadrature on each side of
    S(t₁) = K.  For n = 1 this is the European option exactly.

    Accuracy: the correction removes the O(1/√n) error of the continuous formula and leaves an
    O(1/n) one, always an underpricing in our checks.  At S₀ = 100, r = 0.05, q = 0.02,
    σ = 0.3, T = 1, K = 80..120, against :func:`lookback_discrete`: calls −0.23 to −0.25
    (0.6–2.6 % of the price) at n = 12 and −0.054 to −0.063 at n = 52; puts −0.11 to −0.13 at
    n = 12 and −0.023 to −0.030 at n = 52.  A Monte Carlo standard error is 0.016 at two
    million paths, so the gap is 15 SE at n = 12 and 3–4 SE at n = 52: test a Monte Carlo of
    the discrete contract against :func:`lookback_discrete`, and use this function only for
    the size of the discrete-monitoring effect.

    Greeks by central differences of the approximation (the fixing dates move with T).

    Args:
      spot, strike, maturity, rate, vol, div_yield, is_call: as in :func:`lookback`.
      n_fixings: n, integer >= 1, number of equally spaced fixings.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: as :func:`lookback`, or if n_fixings is not an integer >= 1.
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)
    n = _count("n_fixings", n_fixings)

    def price(s_, t_, r_, v_):
        return _bgk_price(s_, k, t_, r_, q, v_, call, n)
    return _package(_fd_greeks(price, s, t, r, v), s, k, t, v, r, q, call, n)


def _simpson_weights(count, h):
    w = np.full(count, 2.0)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * h / 3.0


def _grid_size(s, k, t, r, q, v, n, per_sd):
    """Per entry, an odd number of grid nodes, spaced σ√(T/n)/per_sd, covering [0, u_max]:
    u_max = |ln(K/S)| + 12σ√T + 2|r − q + σ²/2| T (the law of u is negligible beyond)."""
    sd = v * np.sqrt(t / n)
    top = np.abs(np.log(k / s)) + 12.0 * v * np.sqrt(t) + 2.0 * np.abs(r - q + 0.5 * v * v) * t
    # 10 % spare so that the bumps of the Greeks stay covered by the same number of nodes
    count = np.ceil(1.1 * top / sd * per_sd)
    return count + 1.0 + count % 2.0


def _discrete_price_scalar(s, k, t, r, q, v, call, n, per_sd, count):
    """Discrete fixed-strike lookback by the recursion of :func:`lookback_discrete` (scalars);
    ``count`` nodes spaced σ√(T/n)/per_sd (fixed, so that a bump moves the grid smoothly)."""
    omega = 1.0 if call else -1.0
    dt = t / n
    sd = v * np.sqrt(dt)
    # the step of ω ln S under the measure with the share as numeraire (ln S drifts by
    # r − q + σ²/2 per year there)
    drift = omega * (r - q + 0.5 * v * v) * dt
    h = sd / per_sd
    u = h * np.arange(count)
    w = _simpson_weights(count, h)
    # state u_i = ω ln(Y_i / S_i) >= 0 after the first fixing, Y_i the running extreme started
    # at K: u_{i+1} = max(u_i − ΔX, 0), ΔX ~ N(drift, sd²) the step of ω ln S
    c = omega * np.log(k / s)
    # after the first fixing (from the point u0 = c, exactly): atom at 0, density on the grid
    atom = _norm_cdf((drift - c) / sd)  # P(c − ΔX <= 0)
    dens = _norm_pdf((c - u - drift) / sd) / sd
    if n > 1:
        # to u' > 0 from u: the density of ΔX at u − u', a convolution on the uniform grid
        # (the kernel cut at 10 sd plus the drift); to 0: P(ΔX >= u)
        half = int(np.ceil(10.0 * per_sd + abs(drift) / h))
        kernel = _norm_pdf(((half - np.arange(2 * half + 1)) * h - drift) / sd) / sd
        to_zero = _norm_cdf((drift - u) / sd) * w
        from_zero = _norm_pdf((-u - drift) / sd) / sd
        p_zero = _norm_cdf(drift / sd)
        for _ in range(n - 1):
            moved = signal.fftconvolve(w * dens, kernel)[half:half + count]
            atom, dens = atom * p_zero + to_zero @ dens, moved + atom * from_zero
    # E[Y_n] = S₀ e^{(r−q)T} Ẽ[e^{ω u_n}] (the share measure), payoff ω(Y_n − K)
    moment = atom + w @ (np.exp(omega * u) * dens)
    return np.exp(-r * t) * omega * (s * np.exp((r - q) * t) * moment - k)


def _discrete_price(s, k, t, r, q, v, call, n, per_sd, count):
    arrays = np.broadcast_arrays(s, k, t, r, q, v, call, n, count)
    out = np.empty(arrays[0].shape)
    for idx in np.ndindex(out.shape):
        a = [x[idx] for x in arrays]
        out[idx] = _discrete_price_scalar(float(a[0]), float(a[1]), float(a[2]), float(a[3]),
                                          float(a[4]), float(a[5]), bool(a[6]), int(a[7]),
                                          per_sd, int(a[8]))
    return out


def lookback_discrete(*, spot, strike, maturity, rate, vol, div_yield=0.0, n_fixings,
                      is_call=True, nodes_per_sd=16):
    """Discretely monitored fixed-strike lookback under GBM by recursive quadrature.

    Payoff at T as in :func:`lookback_discrete_bgk` (fixings t_i = i·T/n, i = 1..n, t = 0 not
    a fixing).  No approximation but the quadrature: with ω = ±1 and the running extreme
    started at the strike, Y_i = max(K, S(t₁), ..., S(t_i)) for a call (min for a put), the
    payoff is ω(Y_n − K).  The state u_i = ω ln(Y_i / S(t_i)) is the reflected random walk
    u_{i+1} = max(u_i − ΔX_{i+1}, 0) (Lindley's recursion, ΔX the step of ω ln S) started at
    u₀ = ω ln(K/S₀), and with the share as numeraire
        V = ω e^{-rT} (S₀ e^{(r−q)T} Ẽ[e^{ω u_n}] − K),
    Ẽ under the measure where ln S has drift r − q + σ²/2.  The law of u_i (an atom at 0 and a
    density) is carried through the n steps on a uniform grid, spaced σ√(T/n)/nodes_per_sd,
    with Simpson's rule, each step a convolution done by FFT (the duality idea of ref [5]);
    the first step, from the point u₀, is exact.

    Accuracy: Simpson's error falls as nodes_per_sd⁻⁴; with the default 16 it is a few 1e-6
    relative (checked in the tests against the n = 1 Black–Scholes price and against a grid
    twice as fine), far below any Monte Carlo standard error.  Cost O(n · G log G) with
    G ≈ 13 √n · nodes_per_sd nodes, times 11 for the Greeks (central differences; the node
    count is fixed across the bumps, so the quadrature error moves smoothly with them).

    Args:
      spot, strike, maturity, rate, vol, div_yield, is_call: as in :func:`lookback`.
      n_fixings: n, integer >= 1, number of equally spaced fixings.
      nodes_per_sd: integer >= 4, grid nodes per standard deviation of one step of ln S.

    Returns:
      dict of ``price, delta, gamma, vega, rho, theta``.

    Raises:
      ValueError: as :func:`lookback_discrete_bgk`, or if nodes_per_sd is not an integer >= 4.
    """
    s, k, t, v, r, q, call = _market(spot, strike, maturity, rate, vol, div_yield, is_call)
    n = _count("n_fixings", n_fixings)
    if not (isinstance(nodes_per_sd, (int, np.integer)) and nodes_per_sd >= 4):
        raise ValueError(f"nodes_per_sd must be an integer >= 4, got {nodes_per_sd!r}")
    per_sd = int(nodes_per_sd)
    count = _grid_size(s, k, t, r, q, v, n, per_sd)

    def price(s_, t_, r_, v_):
        return _discrete_price(s_, k, t_, r_, q, v_, call, n, per_sd, count)
    return _package(_fd_greeks(price, s, t, r, v), s, k, t, v, r, q, call, n)
