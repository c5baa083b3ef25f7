"""A plain-NumPy Monte Carlo of a correlated group of GBM and Heston underlyings (test support).

It is the independent reference a compiled group engine is tested against: the same law, its
own code and its own random numbers (``numpy.random.default_rng``), so the two agree within a
few combined standard errors and share no bug of the engine's.  Nothing here is fast; it is
vectorized over paths and processes them in batches (``BATCH`` paths), so memory stays bounded
whatever ``n_paths`` is.

The law
-------
Members a = 0 .. n-1 (dicts: ``"model"`` is ``"gbm"`` or ``"heston"``; GBM takes spot, rate,
div_yield (default 0), vol; Heston takes spot, rate, div_yield (default 0), v0, kappa, vbar, xi,
corr = rho_a).  ``corr`` is the n x n correlation matrix R of the members' spot Brownian motions
and L its lower Cholesky factor (R = L L^T; a semidefinite R is allowed, a zero pivot leaves its
column zero).  On the grid 0 = t_0 < t_1 < ... < t_N = T (``mcgreeks.models.heston.
simulation_grid([T], steps_per_year)``: T and the uniform dates k / steps_per_year below it),
with dt_k = t_k - t_{k-1}, step k draws B_k ~ N(0, I_n) and Z_k ~ N(0, I_n) and sets
eps_k = L B_k.  Then

- GBM member a (exact): ln S_a(t_k) = ln S_a(t_{k-1}) + (r - q - vol^2 / 2) dt + vol sqrt(dt)
  eps_{a,k};
- Heston member a, full-truncation Euler (Lord, Koekkoek & van Dijk 2010):
  zv = rho_a eps_{a,k} + sqrt(1 - rho_a^2) Z_{a,k},  v+ = max(v, 0),
  v <- v + kappa (vbar - v+) dt + xi sqrt(v+ dt) zv,
  ln S <- ln S + (r - q) dt - v+ dt / 2 + sqrt(v+ dt) eps_{a,k}.

So the spot's Brownian motion is eps_a exactly and the variance's is rho_a W^S_a +
sqrt(1 - rho_a^2) W^Z_a: corr(dW^S_a, dW^S_b) = R_ab, corr(dW^S_a, dW^v_a) = rho_a,
corr(dW^v_a, dW^v_b) = rho_a rho_b R_ab, corr(dW^S_a, dW^v_b) = rho_b R_ab.

Implementation note: a GBM member is stepped by the same code as a Heston member with
v0 = vol^2, kappa = 0, xi = 0, corr = 0.  Its variance then stays vol^2 bit for bit
(v + 0.0 + 0.0 = v) and the log step is the exact GBM step above.  Z is drawn for every member
(a GBM member ignores it), so the random numbers depend on n, not on which members are Heston.

Random numbers
--------------
Batch b (paths b * BATCH ... , the last batch possibly shorter) uses
``default_rng([seed, b])`` and draws, step by step, B (n x m) and then Z (n x m), m the batch's
paths.  Every scenario of one call (``bumps``, the revaluations of ``price_and_greeks``) reuses
these numbers: common random numbers.  Two calls with the same (seed, n_paths, n, number of
steps) also use the same numbers, whatever the parameters, the correlation matrix or the grid
scale.

Finite differences (``price_and_greeks``)
-----------------------------------------
Central differences of revaluations on common random numbers; the estimate is the mean of the
per-path difference quotients and its SE is the SE of that mean.  Default sizes
(``DEFAULT_SIZES``, overridable per call):

- delta: spot ±1 % of S0_k, (V+ - V-) / (2 h);
- gamma: spot ±5 % of S0_k, (V+ - 2V + V-) / h^2; cross_gamma: ±5 % of each spot, the four
  corners (V++ - V+- - V-+ + V--) / (4 h_k h_l).  5 %, not 1 %: with common random numbers a
  second difference of a kinked payoff is nonzero only on the paths within h of the kink, where
  it is ~1/h, so its variance grows like 1/h^3 (1 % costs 125 times the paths of 5 % for the
  same SE).  The price of that is the quotient's O(h^2) bias: for a vanilla-like payoff it is
  about (h S)^2 / (12 sd^2) of gamma relative, with sd the terminal standard deviation of S
  (0.5 % at h = 5 %, S sd = 20 %), so compare with the same quotient of a closed form, or allow
  for it.  Spot bumps need no re-simulation: ln S = ln S0 + x.
- vega (GBM only): vol ±1 % relative.
- d_v0, d_kappa, d_vbar, d_xi (Heston only): the parameter ±10 % relative (the engine's fd sizes,
  ``mcgreeks.estimators.fd.HESTON_BUMPS``); v0 = 0: one-sided, (V(h) - V(0)) / h with
  h = 10 % of vbar.
- d_corr (Heston only): rho_k ±0.01 absolute, clipped to [-1, 1]; the quotient divides by the
  clipped width.  zv is rebuilt from the same eps and Z.
- d_pair_corr: R_kl = R_lk ±0.01 absolute, clipped to [-1, 1]; a side whose moved matrix is not
  positive semidefinite stays at the base value (as the engine does); the quotient divides by
  the width actually moved.  L is refactored and eps' = L' B with the same B and Z.
- rho: every member's rate and the discount rate ±10 bp (absolute 1e-3).  All members must share
  one rate (one currency), which discounts: e^{-rT}.
- theta = -dV/dT: T ±10 %, the whole grid scaled, every date t_k -> c t_k with c = 1 ± 0.1,
  keeping the number of steps and each step's normals; theta = -(V(1.1) - V(0.9)) / (0.2 T).
  (The scaled grid is not simulation_grid(c T): the steps are stretched, not re-cut.)
"""
import math

import numpy as np

from mcgreeks.models.heston import simulation_grid

__all__ = ["BATCH", "DEFAULT_SIZES", "PAYOFFS", "basket_values", "cholesky", "grid",
           "price_and_greeks", "terminal_log_spots"]

#: Paths per batch (the random numbers depend on it: see the module docstring).
BATCH = 2 ** 14

#: Payoffs of ``basket_values``: the underlying quantity u of the per-path spots.
PAYOFFS = ("basket", "best_of", "worst_of", "spread")

#: Default finite-difference sizes (relative to the parameter unless marked absolute).
DEFAULT_SIZES = {
    "delta": 0.01,          # spot, relative
    "gamma": 0.05,          # spot, relative (see the module docstring)
    "cross_gamma": 0.05,    # each spot, relative
    "vega": 0.01,           # GBM vol, relative
    "v0": 0.1, "kappa": 0.1, "vbar": 0.1, "xi": 0.1,   # Heston parameters, relative
    "corr": 0.01,           # Heston spot-variance correlation, absolute
    "pair_corr": 0.01,      # R_kl, absolute
    "rate": 1e-3,           # every rate and the discount, absolute
    "maturity": 0.1,        # grid scale c = 1 ± this
}

_GBM_KEYS = ("spot", "rate", "div_yield", "vol")
_HESTON_KEYS = ("spot", "rate", "div_yield", "v0", "kappa", "vbar", "xi", "corr")
_HESTON_PARAMS = ("v0", "kappa", "vbar", "xi")
_PSD_TOLERANCE = 1e-12


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------

def _check_members(members):
    """Validated copies of the member dicts (floats, div_yield defaulted to 0)."""
    if not members:
        raise ValueError("members must be a non-empty list")
    out = []
    for a, m in enumerate(members):
        model = m.get("model")
        if model not in ("gbm", "heston"):
            raise ValueError(f"member {a}: model must be 'gbm' or 'heston', got {model!r}")
        keys = _GBM_KEYS if model == "gbm" else _HESTON_KEYS
        clean = {"model": model}
        for key in keys:
            if key == "div_yield" and key not in m:
                clean[key] = 0.0
                continue
            if key not in m:
                raise ValueError(f"member {a} ({model}): missing {key!r}")
            value = float(m[key])
            if not math.isfinite(value):
                raise ValueError(f"member {a}: {key} must be finite, got {value!r}")
            clean[key] = value
        if clean["spot"] <= 0:
            raise ValueError(f"member {a}: spot must be > 0")
        if model == "gbm" and clean["vol"] < 0:
            raise ValueError(f"member {a}: vol must be >= 0")
        if model == "heston":
            if clean["v0"] < 0:
                raise ValueError(f"member {a}: v0 must be >= 0")
            for key in ("kappa", "vbar", "xi"):
                if clean[key] <= 0:
                    raise ValueError(f"member {a}: {key} must be > 0")
            if not -1.0 <= clean["corr"] <= 1.0:
                raise ValueError(f"member {a}: corr must be in [-1, 1]")
        out.append(clean)
    return out


def _check_corr(corr, n):
    r = np.array(corr, dtype=float, ndmin=2)
    if r.shape != (n, n):
        raise ValueError(f"corr must be {n} x {n}, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or not np.allclose(r, r.T, atol=0, rtol=0):
        raise ValueError("corr must be finite and symmetric")
    if not np.all(np.diag(r) == 1.0) or np.any(np.abs(r) > 1.0):
        raise ValueError("corr must have a unit diagonal and entries in [-1, 1]")
    return r


def cholesky(corr):
    """Lower L with L L^T = corr for a positive semidefinite ``corr`` (L[k, k] >= 0; a zero pivot
    leaves its column zero).  Raises ValueError when the smallest eigenvalue is below -1e-12."""
    r = np.asarray(corr, dtype=float)
    n = r.shape[0]
    if np.linalg.eigvalsh(r)[0] < -_PSD_TOLERANCE:
        raise ValueError("corr is not positive semidefinite: smallest eigenvalue "
                         f"{np.linalg.eigvalsh(r)[0]:.3g}")
    low = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            s = r[i, j] - low[i, :j] @ low[j, :j]
            if i == j:
                low[i, i] = math.sqrt(s) if s > 0 else 0.0
            else:
                low[i, j] = s / low[j, j] if low[j, j] > 0 else 0.0
    return low


def grid(T, steps_per_year, scale=1.0):
    """The simulation dates t_1 < ... < t_N = T (``simulation_grid([T], steps_per_year)``), each
    multiplied by ``scale``."""
    return scale * simulation_grid([float(T)], steps_per_year)


def _common_rate(members):
    rates = {m["rate"] for m in members}
    if len(rates) != 1:
        raise ValueError(f"all members must share one rate (one currency), got {sorted(rates)}")
    return rates.pop()


# ------------------------------------------------------------------------------------------------
# simulation
# ------------------------------------------------------------------------------------------------

def _scenario_arrays(scenarios):
    """Per-scenario parameter arrays of shape (S, n, 1) (and L of shape (S, n, n), the grid
    scales of shape (S, 1, 1)), GBM members written as Heston with kappa = xi = corr = 0."""
    cols = {k: [] for k in ("rq", "v0", "kappa", "vbar", "xi", "rho")}
    factors, scales = [], []
    for members, factor, scale in scenarios:
        row = {k: [] for k in cols}
        for m in members:
            row["rq"].append(m["rate"] - m["div_yield"])
            if m["model"] == "gbm":
                var = m["vol"] ** 2
                vals = (var, 0.0, var, 0.0, 0.0)
            else:
                vals = (m["v0"], m["kappa"], m["vbar"], m["xi"], m["corr"])
            for key, val in zip(("v0", "kappa", "vbar", "xi", "rho"), vals):
                row[key].append(val)
        for key in cols:
            cols[key].append(row[key])
        factors.append(factor)
        scales.append(scale)
    out = {k: np.asarray(v, dtype=float)[:, :, None] for k, v in cols.items()}
    out["rhobar"] = np.sqrt(np.maximum(1.0 - out["rho"] ** 2, 0.0))
    out["L"] = np.asarray(factors, dtype=float)
    out["scale"] = np.asarray(scales, dtype=float)[:, None, None]
    return out


def _batches(n_paths):
    n_paths = int(n_paths)
    if n_paths < 1:
        raise ValueError("n_paths must be >= 1")
    for b, start in enumerate(range(0, n_paths, BATCH)):
        yield b, start, min(BATCH, n_paths - start)


def _simulate_batch(arrays, dts, n, m, seed, b):
    """x = ln(S(T) / S0) and the Euler variance state v at T (raw, may be < 0) of every scenario,
    arrays of shape (S, n, m), for batch b of m paths (its own generator, shared by every
    scenario)."""
    rng = np.random.default_rng([int(seed), int(b)])
    n_scen = arrays["L"].shape[0]
    x = np.zeros((n_scen, n, m))
    v = np.broadcast_to(arrays["v0"], (n_scen, n, m)).copy()
    rq, kappa, vbar, xi = arrays["rq"], arrays["kappa"], arrays["vbar"], arrays["xi"]
    rho, rhobar, factor, scale = arrays["rho"], arrays["rhobar"], arrays["L"], arrays["scale"]
    for dt in dts:
        normals = rng.standard_normal((n, m))
        own = rng.standard_normal((n, m))
        eps = np.matmul(factor, normals)                  # (S, n, m): L B, per scenario
        h = scale * dt                                    # (S, 1, 1)
        vp = np.maximum(v, 0.0)
        root = np.sqrt(vp * h)
        zv = rho * eps + rhobar * own
        x += rq * h - 0.5 * vp * h + root * eps
        v += kappa * (vbar - vp) * h + xi * root * zv
    return x, v


def _base_scenario(members, corr):
    return (members, cholesky(corr), 1.0)


def _scenarios_from_bumps(members, corr, bumps):
    """(members, L, scale) per scenario dict of ``bumps`` (keys "members", "corr", "scale", each
    defaulting to the base)."""
    out = []
    for i, bump in enumerate(bumps):
        unknown = set(bump) - {"members", "corr", "scale"}
        if unknown:
            raise ValueError(f"bumps[{i}]: unknown keys {sorted(unknown)}")
        ms = _check_members(bump.get("members", members))
        if len(ms) != len(members):
            raise ValueError(f"bumps[{i}]: {len(ms)} members, the base has {len(members)}")
        r = _check_corr(bump.get("corr", corr), len(members))
        scale = float(bump.get("scale", 1.0))
        if not scale > 0:
            raise ValueError(f"bumps[{i}]: scale must be > 0")
        out.append((ms, cholesky(r), scale))
    return out


def terminal_log_spots(members, corr, T, steps_per_year, n_paths, seed, *, bumps=None,
                       return_variance=False):
    """ln S_a(T) on ``n_paths`` paths: an array (n, n_paths).

    ``bumps``: None, or a list of scenario dicts, each overriding any of "members" (a full
    member list), "corr" (a full matrix) and "scale" (grid scale c: every date t_k -> c t_k,
    the same steps and normals); the result is then (len(bumps), n, n_paths), every scenario on
    the same random numbers as the base call with the same seed.  ``return_variance``: also
    return the variance state at T, the same shape (Heston: the Euler state v, which may be
    negative; max(v, 0) is the v+ that would enter the next step; GBM: vol^2).
    """
    members = _check_members(members)
    n = len(members)
    corr = _check_corr(corr, n)
    scenarios = ([_base_scenario(members, corr)] if bumps is None
                 else _scenarios_from_bumps(members, corr, bumps))
    arrays = _scenario_arrays(scenarios)
    dts = np.diff(np.concatenate([[0.0], grid(T, steps_per_year)]))
    log_s0 = np.array([[math.log(m["spot"]) for m in s[0]] for s in scenarios])[:, :, None]
    x_out = np.empty((len(scenarios), n, int(n_paths)))
    v_out = np.empty_like(x_out) if return_variance else None
    for b, start, m in _batches(n_paths):
        x, v = _simulate_batch(arrays, dts, n, m, seed, b)
        x_out[:, :, start:start + m] = log_s0 + x
        if return_variance:
            v_out[:, :, start:start + m] = v
    if bumps is None:
        x_out = x_out[0]
        v_out = v_out[0] if return_variance else None
    return (x_out, v_out) if return_variance else x_out


# ------------------------------------------------------------------------------------------------
# payoffs
# ------------------------------------------------------------------------------------------------

def _omega(option_type):
    if option_type not in ("call", "put"):
        raise ValueError(f"option_type must be 'call' or 'put', got {option_type!r}")
    return 1.0 if option_type == "call" else -1.0


def _check_payoff(payoff, weights, n, strike):
    if payoff not in PAYOFFS:
        raise ValueError(f"payoff must be one of {PAYOFFS}, got {payoff!r}")
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have {n} entries, got shape {w.shape}")
    if payoff == "spread" and n != 2:
        raise ValueError("spread needs exactly 2 members")
    if not (strike >= 0 if payoff == "spread" else strike > 0):
        raise ValueError(f"strike {strike!r} out of range for {payoff}")
    return w


def _quantity(payoff, weights, spots):
    """u per path from spots of shape (n, m)."""
    legs = weights[:, None] * spots
    if payoff == "basket":
        return legs.sum(axis=0)
    if payoff == "best_of":
        return legs.max(axis=0)
    if payoff == "worst_of":
        return legs.min(axis=0)
    return legs[0] - legs[1]


def _cash(payoff, weights, omega, strike, spots):
    return np.maximum(omega * (_quantity(payoff, weights, spots) - strike), 0.0)


def basket_values(members, corr, weights, payoff, option_type, strike, T, steps_per_year,
                  n_paths, seed):
    """Per-path discounted payoffs e^{-rT} max(omega (u - K), 0), an array (n_paths,): u is
    Σ w_i S_i(T) ("basket"), max_i w_i S_i(T) ("best_of"), min_i w_i S_i(T) ("worst_of") or
    w_1 S_1(T) - w_2 S_2(T) ("spread", n = 2); omega = +1 for "call", -1 for "put"; r is the
    members' common rate.  The same paths as ``terminal_log_spots`` with the same arguments."""
    checked = _check_members(members)
    rate = _common_rate(checked)
    w = _check_payoff(payoff, weights, len(checked), strike)
    omega = _omega(option_type)
    log_spots = terminal_log_spots(checked, corr, T, steps_per_year, n_paths, seed)
    return math.exp(-rate * T) * _cash(payoff, w, omega, strike, np.exp(log_spots))


# ------------------------------------------------------------------------------------------------
# finite differences
# ------------------------------------------------------------------------------------------------

class _Plan:
    """The scenarios to simulate (deduplicated) and, per measure, its corners
    (scenario index, spot factors (n,), weight)."""

    def __init__(self, members, corr, T, sizes):
        self.members, self.corr, self.T, self.sizes = members, corr, T, sizes
        self.n = len(members)
        self.scenarios, self._keys = [], {}
        self.measures = {}
        self.base = self.scenario(members, corr, 1.0)

    def scenario(self, members, corr, scale):
        key = (tuple(tuple(sorted(m.items())) for m in members),
               np.asarray(corr).tobytes(), float(scale))
        if key not in self._keys:
            self._keys[key] = len(self.scenarios)
            self.scenarios.append((members, cholesky(corr), float(scale)))
        return self._keys[key]

    def _moved(self, k, **changes):
        out = [dict(m) for m in self.members]
        out[k].update(changes)
        return out

    def _spots(self, moves):
        """Spot factors (n,): member k's spot times moves[k], the others unmoved."""
        f = np.ones(self.n)
        for k, value in moves.items():
            f[k] = value
        return f

    def _member(self, k, model=None):
        if not 0 <= k < self.n:
            raise ValueError(f"member index {k} out of range 0..{self.n - 1}")
        if model is not None and self.members[k]["model"] != model:
            raise ValueError(f"member {k} is not a {model} member")
        return self.members[k]

    def add(self, measure):
        measure = tuple(measure)
        kind, idx = measure[0], measure[1:]
        s, one, base = self.sizes, np.ones(self.n), self.base
        if kind == "price" and not idx:
            corners = [(base, one, 1.0)]
        elif kind == "delta" and len(idx) == 1:
            k, = idx
            h = s["delta"] * self._member(k)["spot"]
            corners = [(base, self._spots({k: 1 + s["delta"]}), 1 / (2 * h)),
                       (base, self._spots({k: 1 - s["delta"]}), -1 / (2 * h))]
        elif kind == "gamma" and len(idx) == 1:
            k, = idx
            h = s["gamma"] * self._member(k)["spot"]
            corners = [(base, self._spots({k: 1 + s["gamma"]}), 1 / h ** 2),
                       (base, one, -2 / h ** 2),
                       (base, self._spots({k: 1 - s["gamma"]}), 1 / h ** 2)]
        elif kind == "cross_gamma" and len(idx) == 2:
            k, l = idx
            if k == l:
                raise ValueError("cross_gamma needs two different members")
            rel = s["cross_gamma"]
            hk, hl = rel * self._member(k)["spot"], rel * self._member(l)["spot"]
            corners = []
            for sk in (1.0, -1.0):
                for sl in (1.0, -1.0):
                    f = self._spots({k: 1 + sk * rel, l: 1 + sl * rel})
                    corners.append((base, f, sk * sl / (4 * hk * hl)))
        elif kind == "vega" and len(idx) == 1:
            k, = idx
            vol = self._member(k, "gbm")["vol"]
            h = s["vega"] * vol
            corners = [(self.scenario(self._moved(k, vol=vol + h), self.corr, 1.0), one,
                        1 / (2 * h)),
                       (self.scenario(self._moved(k, vol=vol - h), self.corr, 1.0), one,
                        -1 / (2 * h))]
        elif kind in ("d_v0", "d_kappa", "d_vbar", "d_xi") and len(idx) == 1:
            k, = idx
            name = kind[2:]
            m = self._member(k, "heston")
            value = m[name]
            if name == "v0" and value == 0.0:
                h = s["v0"] * m["vbar"]
                corners = [(self.scenario(self._moved(k, v0=h), self.corr, 1.0), one, 1 / h),
                           (base, one, -1 / h)]
            else:
                h = s[name] * value
                corners = [(self.scenario(self._moved(k, **{name: value + h}), self.corr, 1.0),
                            one, 1 / (2 * h)),
                           (self.scenario(self._moved(k, **{name: value - h}), self.corr, 1.0),
                            one, -1 / (2 * h))]
        elif kind == "d_corr" and len(idx) == 1:
            k, = idx
            rho = self._member(k, "heston")["corr"]
            up = min(rho + s["corr"], 1.0)
            down = max(rho - s["corr"], -1.0)
            width = up - down
            corners = [(self.scenario(self._moved(k, corr=up), self.corr, 1.0), one, 1 / width),
                       (self.scenario(self._moved(k, corr=down), self.corr, 1.0), one,
                        -1 / width)]
        elif kind == "d_pair_corr" and len(idx) == 2:
            k, l = idx
            self._member(k), self._member(l)
            if k == l:
                raise ValueError("d_pair_corr needs two different members")
            ends = []
            for sign in (1.0, -1.0):
                moved = self.corr.copy()
                c = float(np.clip(self.corr[k, l] + sign * s["pair_corr"], -1.0, 1.0))
                moved[k, l] = moved[l, k] = c
                if np.linalg.eigvalsh(moved)[0] < -_PSD_TOLERANCE:   # not PSD: stay at base
                    c, moved = self.corr[k, l], self.corr
                ends.append((c, moved))
            width = ends[0][0] - ends[1][0]
            if width <= 0:
                raise ValueError(f"d_pair_corr {k}, {l}: no admissible move of the correlation")
            corners = [(self.scenario(self.members, ends[0][1], 1.0), one, 1 / width),
                       (self.scenario(self.members, ends[1][1], 1.0), one, -1 / width)]
        elif kind == "rho" and not idx:
            h = s["rate"]
            corners = []
            for sign in (1.0, -1.0):
                moved = [dict(m, rate=m["rate"] + sign * h) for m in self.members]
                corners.append((self.scenario(moved, self.corr, 1.0), one, sign / (2 * h)))
        elif kind == "theta" and not idx:
            h = s["maturity"]
            corners = [(self.scenario(self.members, self.corr, 1 + h), one,
                        -1 / (2 * h * self.T)),
                       (self.scenario(self.members, self.corr, 1 - h), one,
                        1 / (2 * h * self.T))]
        else:
            raise ValueError(f"unknown measure {measure!r}")
        self.measures[measure] = corners


def price_and_greeks(members, corr, weights, payoff, option_type, strike, T, steps_per_year,
                     n_paths, seed, measures, *, sizes=None):
    """{measure: (estimate, se)} by central differences on common random numbers.

    ``measures``: tuples ("price",), ("delta", k), ("gamma", k), ("cross_gamma", k, l),
    ("vega", k) (GBM), ("d_v0" | "d_kappa" | "d_vbar" | "d_xi" | "d_corr", k) (Heston),
    ("d_pair_corr", k, l), ("rho",), ("theta",); the result is keyed by the tuples themselves.
    Sizes: ``DEFAULT_SIZES`` updated by ``sizes`` (module docstring).  Every revaluation uses the
    base call's random numbers (the same seed); each measure's estimate is the mean over paths
    of its per-path quotient, its se the sample standard deviation of that quotient over
    sqrt(n_paths).  The payoff arguments are those of ``basket_values``; the discount is
    e^{-r c T} with the (bumped) common rate r and grid scale c of each revaluation.
    """
    members = _check_members(members)
    n = len(members)
    corr = _check_corr(corr, n)
    _common_rate(members)
    w = _check_payoff(payoff, weights, n, strike)
    omega = _omega(option_type)
    chosen = dict(DEFAULT_SIZES)
    if sizes:
        unknown = set(sizes) - set(DEFAULT_SIZES)
        if unknown:
            raise ValueError(f"unknown sizes {sorted(unknown)}")
        chosen.update(sizes)
    plan = _Plan(members, corr, float(T), chosen)
    for measure in measures:
        plan.add(measure)

    arrays = _scenario_arrays(plan.scenarios)
    dts = np.diff(np.concatenate([[0.0], grid(T, steps_per_year)]))
    spot0 = np.array([[m["spot"] for m in sc[0]] for sc in plan.scenarios])[:, :, None]
    disc = np.array([math.exp(-_common_rate(sc[0]) * sc[2] * T) for sc in plan.scenarios])
    stats = {measure: [0, 0.0, 0.0] for measure in plan.measures}   # count, mean, M2
    for b, _, m in _batches(n_paths):
        x, _ = _simulate_batch(arrays, dts, n, m, seed, b)
        growth = spot0 * np.exp(x)                        # S(T) per scenario, (S, n, m)
        cache = {}
        for measure, corners in plan.measures.items():
            est = np.zeros(m)
            for scen, factors, weight in corners:
                key = (scen, factors.tobytes())
                if key not in cache:
                    cache[key] = disc[scen] * _cash(payoff, w, omega, strike,
                                                    factors[:, None] * growth[scen])
                est += weight * cache[key]
            # merge the batch's mean and M2 (Chan, Golub & LeVeque)
            count, mean, m2 = stats[measure]
            b_mean = est.mean()
            b_m2 = float(((est - b_mean) ** 2).sum())
            total = count + m
            delta = b_mean - mean
            stats[measure] = [total, mean + delta * m / total,
                              m2 + b_m2 + delta ** 2 * count * m / total]
    out = {}
    for measure, (count, mean, m2) in stats.items():
        se = math.sqrt(m2 / (count - 1) / count) if count > 1 else float("nan")
        out[measure] = (float(mean), se)
    return out
