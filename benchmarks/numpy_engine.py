"""A plain vectorized NumPy Monte Carlo engine: the baseline mcgreeks is measured against.

It does the same work as mcgreeks' ``auto`` method does for GBM calls, puts and Asians, with the
same estimators, written the way a careful NumPy user would write it:

- exact GBM paths on the fixing dates t_i = i·T/n (one normal per date), drawn with
  ``numpy.random.default_rng(seed)`` in chunks of paths, so memory is bounded whatever the
  number of paths (buffers are allocated once and reused);
- price and pathwise delta, vega, rho and theta (the chain rule along the path: the payoff's
  slope times the tangent of its underlying quantity, plus the discount factor's derivative);
- gamma by the mixed estimator: the pathwise delta differentiated by likelihood ratio through
  the density of the first Brownian increment (Glasserman 2004, §7.3.3);
- or, per Greek on request (``methods=``), the likelihood-ratio estimator with the scores of the
  law of W on the dates, as mcgreeks' ``auto`` sometimes picks them;
- for arithmetic Asians, their geometric twin on the same path (closed form known) as a control
  variate of the price and every Greek, coefficient fitted on the same paths (as mcgreeks does);
- every estimate with its standard error, from per-chunk means and centred sums of squares
  and cross products merged exactly (Chan, Golub & LeVeque 1983).

Conventions are mcgreeks' (docs/reference.md#output-columns): vega per 1.00 of volatility, rho
per 1.00 of rate with the dividend yield held fixed, theta = -∂V/∂T per year with the fixing
schedule scaling with T (so W_t scales as sqrt(T) under common random numbers).  Several strikes
may share one set of paths (``strike`` an array), as trades on one underlying share paths in
mcgreeks.

The random streams are NumPy's, not mcgreeks' Philox, so the numbers agree with mcgreeks within
standard errors, not to the bit.  The engine is single-threaded (NumPy is, apart from BLAS).

Example:
  >>> r = gbm_mc(payoff="european", spot=100.0, strike=100.0, maturity=1.0, rate=0.03,
  ...            vol=0.2, div_yield=0.01, n_paths=200_000, seed=1)
  >>> abs(r["price"] - 8.8273) < 4 * r["price_se"]      # Black-Scholes: 8.8273
  True

References:
  [1] P. Glasserman, Monte Carlo Methods in Financial Engineering, Springer (2004), §7.2
      (pathwise estimators, incl. Asian options), §7.3 (likelihood ratio and mixed estimators).
  [2] T. F. Chan, G. H. Golub, R. J. LeVeque, "Algorithms for computing the sample variance",
      The American Statistician 37 (1983) 242-247.
"""
import math

import numpy as np

PAYOFFS = ("european", "asian_arithmetic", "asian_geometric")
QUANTITIES = ("price", "delta", "gamma", "vega", "rho", "theta")
#: The estimator of each Greek (the ones mcgreeks' auto picks for calls, puts and Asians).
METHODS = {"delta": "pathwise", "gamma": "mixed", "vega": "pathwise", "rho": "pathwise",
           "theta": "pathwise"}

#: Chunk sizing, tuned on the benchmark machine: the (paths × dates) matrices of a chunk hold
#: about 2**18 float64 (2 MB, so NumPy's element-wise passes run in cache), and at most 2**14
#: paths so the dozen per-path arrays of the estimates stay small too.  Smaller chunks pay
#: NumPy's per-call overhead; 4-8× larger ones run 2× slower (memory bound).
CHUNK_ELEMENTS = 1 << 18
CHUNK_PATHS_MAX = 1 << 14


class _Moments:
    """Running count, means, centred sums of squares and cross products of a stack of estimates
    y and (optionally) their controls x, merged chunk by chunk (ref [2])."""

    def __init__(self, shape, with_control):
        self.count = 0
        self.with_control = with_control
        self.mean_y, self.m2_y = np.zeros(shape), np.zeros(shape)
        self.mean_x, self.m2_x, self.c_xy = np.zeros(shape), np.zeros(shape), np.zeros(shape)

    def add(self, y, x=None):
        """Merge a chunk of per-path estimates ``y`` and controls ``x`` (paths on axis 1)."""
        m = y.shape[1]
        n_a, n_ab = self.count, self.count + m
        w = n_a * m / n_ab
        mean_y = y.mean(axis=1)
        dev_y = y - mean_y[:, None]
        d_y = mean_y - self.mean_y
        self.m2_y += np.einsum("qp...,qp...->q...", dev_y, dev_y) + d_y * d_y * w
        self.mean_y += d_y * (m / n_ab)
        if self.with_control:
            mean_x = x.mean(axis=1)
            dev_x = x - mean_x[:, None]
            d_x = mean_x - self.mean_x
            self.m2_x += np.einsum("qp...,qp...->q...", dev_x, dev_x) + d_x * d_x * w
            self.c_xy += np.einsum("qp...,qp...->q...", dev_x, dev_y) + d_x * d_y * w
            self.mean_x += d_x * (m / n_ab)
        self.count = n_ab

    def estimate(self, control_mean=None):
        """(mean, standard error); with controls of known mean, the regression estimate
        ȳ - β(x̄ - E[x]), β = C_xy/M2_x fitted on the same paths (Glasserman 2004, §4.1)."""
        if not self.with_control:
            return self.mean_y, np.sqrt(self.m2_y / max(self.count - 1, 1) / self.count)
        beta = np.divide(self.c_xy, self.m2_x, out=np.zeros_like(self.c_xy),
                         where=self.m2_x > 0)
        mean = self.mean_y - beta * (self.mean_x - control_mean)
        m2 = np.maximum(self.m2_y - beta * self.c_xy, 0.0)
        return mean, np.sqrt(m2 / max(self.count - 2, 1) / self.count)


def _check(payoff, spot, maturity, vol, n_fixings, n_paths):
    if payoff not in PAYOFFS:
        raise ValueError(f"payoff has value {payoff!r}: must be one of " + ", ".join(PAYOFFS))
    for name, value in (("spot", spot), ("maturity", maturity), ("vol", vol)):
        if not value > 0:
            raise ValueError(f"{name} has value {value!r}: must be > 0")
    if int(n_fixings) != n_fixings or n_fixings < 1:
        raise ValueError(f"n_fixings has value {n_fixings!r}: must be a whole number >= 1")
    if int(n_paths) != n_paths or n_paths < 2:
        raise ValueError(f"n_paths has value {n_paths!r}: must be a whole number >= 2")


def gbm_mc(*, payoff, spot, strike, maturity, rate, vol, div_yield=0.0, is_call=True,
           n_fixings=1, n_paths, seed=0, greeks=True, methods=None, control_variate=True,
           chunk_paths=None):
    """Monte Carlo price (and Greeks) of a European or Asian option under GBM, with SEs.

    Args:
      payoff: ``"european"`` (pays on S_T; ``n_fixings`` ignored), ``"asian_arithmetic"`` or
        ``"asian_geometric"`` (average of S at t_i = i·T/n, i = 1..n).
      spot, maturity, vol: S0 > 0, T > 0 in years, σ > 0 per sqrt(year).
      strike: K > 0, a float or a 1-D array of strikes priced on the same paths.
      rate, div_yield: continuously compounded per year.
      is_call: True for calls, False for puts.
      n_fixings: number of averaging dates of an Asian.
      n_paths: number of paths; seed: the ``default_rng`` seed.
      greeks: False for the price alone (less work: no tangents, one estimate per path).
      methods: {greek: estimator} overriding ``METHODS``: ``"pathwise"`` or ``"lr"`` for delta,
        vega, rho and theta, ``"mixed"`` or ``"lr"`` for gamma — pass mcgreeks' ``method_``
        columns to do exactly the work its ``auto`` chose.
      control_variate: for an arithmetic Asian, use its geometric twin on the same path (closed
        form known) as a control variate of the price and of every Greek, each by the same
        estimator, with the coefficient fitted on the same paths — what mcgreeks does by default.
      chunk_paths: paths per chunk (bounds memory); default about 2**18 path-dates per chunk,
        at most 2**14 paths.

    Returns:
      dict: for each of ``price`` (and ``delta, gamma, vega, rho, theta`` when ``greeks``), the
      estimate and, under ``<name>_se``, its standard error (floats for a scalar strike, arrays
      for an array of strikes); ``n_paths``; ``method_<greek>`` the estimator used;
      ``control`` the control variate used ("" or "geometric_asian").

    Raises:
      ValueError: naming the argument, on an unknown payoff, estimator or out-of-range input.
    """
    _check(payoff, spot, maturity, vol, n_fixings, n_paths)
    plan = _plan(methods)
    n = 1 if payoff == "european" else int(n_fixings)
    strikes = np.atleast_1d(np.asarray(strike, dtype=float))
    omega = 1.0 if is_call else -1.0
    dt = maturity / n
    t = dt * np.arange(1, n + 1)
    mu = rate - div_yield - 0.5 * vol * vol
    disc = math.exp(-rate * maturity)
    if chunk_paths is None:
        chunk_paths = min(CHUNK_PATHS_MAX, max(256, CHUNK_ELEMENTS // n))
    chunk_paths = int(min(chunk_paths, n_paths))
    need_tangents = greeks and any(e in ("pathwise", "mixed") for e in plan.values())
    need_scores = greeks and any(e in ("lr", "mixed") for e in plan.values())
    need_sum_z2 = greeks and any(plan[g] == "lr" for g in ("vega", "theta"))

    control = control_variate and payoff == "asian_arithmetic"
    rng = np.random.default_rng(seed)
    n_q = len(QUANTITIES) if greeks else 1
    moments = _Moments((n_q, strikes.size), control)
    w_buf = np.empty((chunk_paths, n))           # Brownian motion on the dates
    r_buf = np.empty((chunk_paths, n)) if payoff == "asian_arithmetic" else None   # S_t / S0
    est = np.empty((n_q, chunk_paths, strikes.size))
    est_control = np.empty_like(est) if control else None
    sqrt_dt = math.sqrt(dt)
    const = dict(strikes=strikes, omega=omega, disc=disc, spot=spot, rate=rate,
                 maturity=maturity, plan=plan)

    for start in range(0, n_paths, chunk_paths):
        m = min(chunk_paths, n_paths - start)
        w = w_buf[:m]
        rng.standard_normal(out=w)
        sum_z2 = np.einsum("ij,ij->i", w, w) if need_sum_z2 else None
        if n > 1:
            np.cumsum(w, axis=1, out=w)
        w *= sqrt_dt
        scores = _scores(w, sum_z2, t, spot, vol, mu, maturity) if need_scores else None
        # u: the payoff's underlying quantity; tangents: ∂u/∂(σ, r, T) along the path.
        tangents = None
        if payoff == "european":
            w_t = w[:, 0]
            u = spot * np.exp(mu * maturity + vol * w_t)
            if need_tangents:
                tangents = (u * (w_t - vol * maturity), u * maturity,
                            u * (mu + 0.5 * vol * w_t / maturity))
        elif payoff == "asian_arithmetic":
            rel = r_buf[:m]
            np.multiply(w, vol, out=rel)
            rel += mu * t
            np.exp(rel, out=rel)                       # S_i / S0
            u = rel.sum(axis=1)
            u *= spot / n
            if need_tangents:
                sw = np.einsum("ij,ij->i", rel, w)       # Σ S_i W_i / S0
                st = rel @ t                              # Σ S_i t_i / S0
                c = spot / n
                tangents = (c * (sw - vol * st), c * st,
                            c * (mu * st + 0.5 * vol * sw) / maturity)
        if payoff == "asian_geometric" or control:
            w_mean = w.mean(axis=1)
            t_mean = t.mean()
            g = spot * np.exp(mu * t_mean + vol * w_mean)
            g_tangents = None
            if need_tangents:
                g_tangents = (g * (w_mean - vol * t_mean), g * t_mean,
                              g * (mu * t_mean + 0.5 * vol * w_mean) / maturity)
            if payoff == "asian_geometric":
                u, tangents = g, g_tangents
        _estimates(u, tangents, scores, est[:, :m], **const)
        if control:
            _estimates(g, g_tangents, scores, est_control[:, :m], **const)
            moments.add(est[:, :m], est_control[:, :m])
        else:
            moments.add(est[:, :m])

    control_mean = None
    if control:
        from mcgreeks.analytic.asian import geometric_asian   # the twin's closed form
        closed = geometric_asian(spot=spot, strike=strikes, maturity=maturity, rate=rate,
                                 vol=vol, div_yield=div_yield, n_fixings=n, is_call=is_call)
        control_mean = np.array([np.broadcast_to(closed[q], strikes.shape)
                                 for q in QUANTITIES[:n_q]])
    mean, se = moments.estimate(control_mean)
    scalar = np.ndim(strike) == 0
    out = {"n_paths": int(n_paths), "control": "geometric_asian" if control else ""}
    for i, name in enumerate(QUANTITIES[:n_q]):
        out[name] = float(mean[i, 0]) if scalar else mean[i].copy()
        out[name + "_se"] = float(se[i, 0]) if scalar else se[i].copy()
        if name in plan:
            out["method_" + name] = plan[name]
    return out


_VALID = {"delta": ("pathwise", "lr"), "gamma": ("mixed", "lr"), "vega": ("pathwise", "lr"),
          "rho": ("pathwise", "lr"), "theta": ("pathwise", "lr")}


def _plan(methods):
    plan = dict(METHODS)
    for greek, name in (methods or {}).items():
        if greek not in _VALID or name not in _VALID[greek]:
            raise ValueError(f"methods has {greek!r}: {name!r}; valid: " + "; ".join(
                f"{g}: {'/'.join(v)}" for g, v in _VALID.items()))
        plan[greek] = name
    return plan


def _scores(w, sum_z2, t, spot, vol, mu, maturity):
    """Scores ∂ log p/∂θ of the law of W on the dates (Glasserman 2004, §7.3), per path:
    (S0, the S0 second-derivative weight p''/p, σ, r, T when every date scales with T).
    ``sum_z2`` = Σ z_k² of the standardized increments (None when σ and T are not needed)."""
    n = w.shape[1]
    w1, wn, t1 = w[:, 0], w[:, -1], t[0]
    s_spot = w1 / (spot * vol * t1)
    s2_spot = (w1 * w1 / t1 - vol * w1 - 1.0) / (spot * spot * vol * vol * t1)
    s_rate = wn / vol
    s_vol = s_mat = None
    if sum_z2 is not None:
        s_vol = (sum_z2 - n) / vol - wn
        s_mat = wn * mu / (vol * maturity) + 0.5 * (sum_z2 - n) / maturity
    return s_spot, s2_spot, s_vol, s_rate, s_mat


def _estimates(u, tangents, scores, x, *, strikes, omega, disc, spot, rate, maturity, plan):
    """Per-path estimates into x[quantity, path, strike] from the payoff's underlying quantity u,
    its tangents (∂u/∂σ, ∂u/∂r, ∂u/∂T) and the scores (None when not needed)."""
    moneyness = omega * (u[:, None] - strikes[None, :])
    np.maximum(moneyness, 0.0, out=x[0])
    x[0] *= disc                                                   # D f
    if x.shape[0] == 1:
        return
    price = x[0]
    if tangents is not None:
        slope = np.where(moneyness > 0.0, omega * disc, 0.0)      # D f'(u)
        t_spot = (u / spot)[:, None]
    if scores is not None:
        s_spot, s2_spot, s_vol, s_rate, s_mat = scores
    # first-order Greeks: pathwise D f' ∂u/∂θ, or likelihood ratio D f ∂ log p/∂θ
    for i, greek in ((1, "delta"), (3, "vega"), (4, "rho"), (5, "theta")):
        if plan[greek] == "pathwise":
            tangent = t_spot if greek == "delta" else tangents[i - 3][:, None]
            np.multiply(slope, tangent, out=x[i])
        else:
            score = {"delta": s_spot, "vega": s_vol, "rho": s_rate, "theta": s_mat}[greek]
            np.multiply(price, score[:, None], out=x[i])
    x[4] -= maturity * price                                       # rho: + (∂D/∂r) f
    x[5] -= rate * price                                           # ∂/∂T: + (∂D/∂T) f
    np.negative(x[5], out=x[5])                                    # theta = -∂V/∂T
    if plan["gamma"] == "mixed":        # pathwise delta differentiated by likelihood ratio
        np.multiply(slope, t_spot * (s_spot - 1.0 / spot)[:, None], out=x[2])
    else:
        np.multiply(price, s2_spot[:, None], out=x[2])
