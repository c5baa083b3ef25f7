"""Issue 8 acceptance: vibrato digital delta and gamma at 252 discrete steps are within 4 SE of
the closed form and have at least 5 times lower variance than whole-path likelihood ratio.

The two estimators, per path, for a digital f (pays c 1{S_T > K}, or 1{S_T < K}) discounted by
D = e^{-rT}:

- vibrato (Giles 2009; ``method="vibrato"``, ``mcgreeks.pricers.gbm._vibrato`` and
  ``mcgreeks.pricers.heston._vibrato``): pathwise up to the last step, likelihood ratio over
  that step's conditional Gaussian, with the antithetic pair and the mid value.  Under GBM a
  digital is simulated exactly, so its last step is [0, T] whatever the underlying's grid (here
  252 dates, from a discretely monitored barrier with 252 fixings on the same underlying); the
  engine also subtracts its pilot-fitted baseline (``estimators.optimal``).  Under Heston it is
  the last of 252 QE steps, s_N = sqrt(K3 (v_{N-1} + v_N)).
- whole-path LR (the comparator; mcgreeks does not offer it, so it is computed here): the score
  of the density of the whole discretized path.  S0 enters only the first step's transition
  density, whose log-spot is Gaussian with ln S0 in its mean and sd s_1, so with z_1 that
  step's standard normal
      delta = D f z_1 / (S0 s_1),   gamma = D f [(z_1² - 1)/s_1² - z_1/s_1] / S0²
  (GBM: s_1 = σ sqrt(dt), dt = T/252; Heston: s_1 = sqrt(K3 (v0 + v_1)) given the first step's
  variances, Andersen's K3 = dt (1 - corr²)/2).  Its variance grows like 1/dt (delta) and
  1/dt² (gamma); vibrato's like 1/s_N and 1/s_N³ (its per-path weight is O(1/s_N), O(1/s_N²)
  on the fraction O(s_N) of paths whose last step can cross the strike).

The ratio compared is Var(whole-path LR) / Var(vibrato) per path, vibrato's from mcgreeks'
output (SE² × n_paths).

GBM (whole-path LR variance in closed form).  With Z = W_T/sqrt(T) the call pays iff Z > a,
a = -d2 (the put iff Z < a), and z_1 = ρ Z + sqrt(1 - ρ²) U with U independent, ρ = sqrt(dt/T)
= 1/sqrt(252).  By parts, M_j(a) = E[Z^j 1{Z > a}] satisfies M_0 = N(-a), M_1 = φ(a),
M_j = a^{j-1} φ(a) + (j - 1) M_{j-2}; E[Z^j 1{Z < a}] = m_j - M_j with m_j = E[U^j] (0 for odd
j, (j - 1)!! for even).  So
      E[z_1^k 1{Z > a}] = Σ_j C(k, j) ρ^j (1 - ρ²)^{(k-j)/2} m_{k-j} M_j(a),
e.g. E[z_1² 1{Z > a}] = N(-a) + ρ² a φ(a); the delta weight squared needs k <= 2, gamma's
k <= 4, and Var = D² c² E[w(z_1)² 1_A] - (Greek)².  ``test_z1_moments_against_quadrature``
checks the formula against quadrature, ``test_gbm_whole_path_lr_closed_form_against_simulation``
the whole variance against 252-step paths simulated here.  The same moments give the
comparator with its best baseline in the Hermite polynomials z_1, z_1² - 1, z_1³ - 3 z_1 (the
family mcgreeks' own lr baseline uses): Var - Σ_k Cov(Y, H_k)²/k!, also asserted >= 5 times
vibrato's.

Heston (whole-path LR variance by simulation).  ``_qe_step`` is an independent vectorized NumPy
version of the engine's scheme (``mcgreeks.models.heston.qe_step``: Andersen 2008 QE, psi_c =
1.5, uniform of the exponential branch U = N(zv), central log-spot step gamma1 = gamma2 = 1/2
with the martingale correction K0*); ``test_numpy_qe_is_the_engines_scheme`` checks it against
the engine's paths on the engine's normals (to 1e-12).  LR_PATHS = 2^17 paths give the
comparator's variance to 0.6-2.0 % (its SE, from fourth moments, is asserted under 5 %).
mcgreeks' vibrato runs 2^19 paths per set through the Heston pricer that ``price_portfolio``
calls, asked for price, delta and gamma only (``test_heston_runs_are_price_portfolios``: the
same bits as ``price_portfolio``, which would also compute fd theta and d_v0 .. d_corr at 8
times the cost).  Heston sets: T = 1, 252 steps, Feller ratio ν = 2 kappa vbar / xi² >= 4 and
v0 <= vbar; see below for why.

Closed forms.  GBM: Black-Scholes-Merton digital delta and gamma (``analytic.black_scholes``,
Haug 2007 §4.19.2), within 4 SE, with 4 SE under MEANINGFUL (5 %) of the natural size
(c/(S0 sd), c/(S0 sd)², sd = σ sqrt(T), as in test_european_digital.py).  Heston: the
semi-analytic digital of tests/pricers/test_heston_vibrato.py (the strike derivative of
``analytic.heston``, checked there against quadrature and QuantLib), within 4 SE, delta's 4 SE
under 5 % of its natural size (measured 2.9-4.1 %); gamma's 4 SE is 1.3-2.8 times its natural
size (one-step vibrato's gamma variance ~ E[s_N^-3], s_N ~ 0.01), a gross check only, as in
test_heston_vibrato.py (which also covers Feller ratios down to 0.49, with the QE bias
measured).

Measured ratios Var(whole-path LR)/Var(vibrato) with this file's seeds and paths
(``test_report_ratios`` prints them; run with -s):
  GBM            (plain LR; LR with the Hermite baseline)  delta           gamma
    atm   call and put (K = S0 = 100, T = 1)               1.1e4 (5.4e3)   1.4e8 (6.8e7)
    otm   call K = 45  (S0 = 37.5, T = 0.5)                1.9e3 (1.5e3)   7.4e5 (6.0e5)
          put  K = 32                                      3.8e3 (2.6e3)   1.5e6 (1.0e6)
    long  call K = 1600 (S0 = 1800, T = 2)                 8.0e3 (2.5e3)   3.0e6 (9.3e5)
          put  K = 2000                                    7.8e3 (1.6e3)   3.2e6 (6.5e5)
  (the GBM digital's vibrato is one exact step over [0, T]: the 252 steps enter only the
  comparator, whose variance grows like 252 for delta and 252² for gamma.)
  Heston         (plain LR)                       delta call / put   gamma call / put
    feller4      (ν = 4, corr -0.5)               28 / 20            15 / 12
    feller4_pos  (ν = 4, corr +0.3, S0 = 50)      23 / 16            11 / 7.7
    feller4_hv   (ν = 4.4, corr -0.8, v0 = 0.09)  38 / 33            22 / 23
  Against whole-path LR with an in-sample least-squares baseline in z_1, z_1² - 1, z_1³ - 3 z_1
  (measured while writing this file, not asserted): delta 11-23, gamma 5.0-16 (feller4_pos put
  gamma 5.03).

Where the criterion fails for Heston gamma (measured while writing this file with
test_heston_vibrato's ``run`` and this file's comparator; not asserted).  Delta's ratio was
>= 8 on every set tried, a violated Feller condition included.  Gamma's, by regime:
  - 1 <= ν <= 3/2 (Feller holds, but the density of v_T near 0 is ~ v^{ν-1}, so E[s_N^-3],
    vibrato gamma's variance, is infinite; in theory the ratio is 0): test_heston_vibrato's
    base (ν = 1.33) 2.6-3.8 (call) and 5.3-5.8 (put), positive_corr (ν = 1.2) 0.4-1.8,
    low_corr (ν = 1.5) 0.4-1.2, at 2^19 paths, seeds 1 and 2; its feller_violated (ν = 0.49)
    0.0-0.1.
  - 3/2 < ν < 7/2: the variance is finite but its estimate is heavy-tailed (E[s_N^-7] = ∞):
    ν = 2.04, corr -0.7: pooled over 2^22 paths 9.0 (call) / 9.7 (put), but single 2^18-path
    runs from 2.6 to 15.
  - v0 > vbar (the variance falls over the year, so s_N < s_1; vibrato's gamma variance goes
    as s_N^-3, whole-path LR's as s_1^-4): ν = 4 and v0 = 0.09 falling to vbar = 0.06, corr
    0.3: 5.2 / 4.3; to vbar = 0.04, corr -0.5: 4.3 / 4.0 (pooled over 2^22 paths, each 2^18-path
    run within 5-7 %).  (v0 = 0.02 < vbar = 0.05: 77 / 64.)

References: M. B. Giles, "Vibrato Monte Carlo sensitivities", MCQMC 2008, Springer (2009);
P. Glasserman, Monte Carlo Methods in Financial Engineering (2004), §7.3 (likelihood ratio);
L. Andersen (2008), "Simple and efficient simulation of the Heston stochastic volatility
model", J. Comput. Finance 11(3) (QE, K0*..K4); E. G. Haug (2007), The Complete Guide to Option
Pricing Formulas, §4.19.2.
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import ndtr
from scipy.stats import norm

from mc_checks import MEANINGFUL, assert_within_4se
from mcgreeks import price_portfolio
from mcgreeks.analytic import black_scholes as bs
from mcgreeks.engine import TILE
from mcgreeks.kernel_inputs import trade_arrays
from mcgreeks.models import heston as H
from mcgreeks.rng import name_key, seed_key
from mcgreeks.validation import check_market, check_trades
from pricers.test_heston_vibrato import digital as heston_digital
from pricers.test_heston_vibrato import natural_sizes, records_of, run

SEED = 20261208
N_STEPS = 252
#: Paths of mcgreeks' vibrato runs, per underlying.
GBM_PATHS = 1 << 18
HESTON_PATHS = 1 << 19
#: Paths of this file's own simulations of whole-path LR.
LR_PATHS = 1 << 17
GBM_SIM_PATHS = 1 << 17
MIN_RATIO = 5.0
VIBRATO = {"delta": "vibrato", "gamma": "vibrato"}
GREEKS = ("delta", "gamma")

# name, market, maturity, (call strike, put strike), cash
GBM_SETS = [
    ("atm", dict(spot=100.0, rate=0.03, div_yield=0.01, vol=0.2), 1.0, (100.0, 100.0), 1.0),
    ("otm", dict(spot=37.5, rate=0.0, div_yield=0.02, vol=0.35), 0.5, (45.0, 32.0), 2.5),
    ("long", dict(spot=1800.0, rate=-0.01, div_yield=0.0, vol=0.12), 2.0, (1600.0, 2000.0),
     10.0),
]

# name, market, (call strike, put strike); T = 1, 252 steps.  Feller ratio ν = 2 kappa vbar /
# xi² >= 4 (> 7/2, so vibrato gamma's fourth moment, ~ E[s_N^-7], is finite and its variance
# estimate settles) and v0 <= vbar (module docstring).
HESTON_MATURITY = 1.0
HESTON_SETS = [
    ("feller4", dict(spot=100.0, rate=0.02, div_yield=0.0, v0=0.04, kappa=2.0, vbar=0.04,
                     xi=0.2, corr=-0.5), (100.0, 90.0)),
    ("feller4_pos", dict(spot=50.0, rate=0.05, div_yield=0.02, v0=0.06, kappa=3.0, vbar=0.06,
                         xi=0.3, corr=0.3), (50.0, 45.0)),
    ("feller4_hv", dict(spot=100.0, rate=0.01, div_yield=0.0, v0=0.09, kappa=3.0, vbar=0.09,
                        xi=0.35, corr=-0.8), (100.0, 85.0)),
]

#: Andersen (2008) case I: 2 kappa vbar / xi² = 0.04, so QE's exponential branch and its atom
#: at 0 are busy (only for checking the NumPy scheme).
ANDERSEN_1 = dict(spot=100.0, rate=0.0, div_yield=0.0, v0=0.04, kappa=0.5, vbar=0.04, xi=1.0,
                  corr=-0.9)


def _kinds(strikes):
    return tuple(zip(("call", "put"), strikes))


# -- GBM: the comparator in closed form ------------------------------------------------------------

def _normal_moment(j):
    """E[U^j], U standard normal: 0 for odd j, (j - 1)!! for even j."""
    return 0.0 if j % 2 else float(np.prod(np.arange(j - 1, 0, -2)))


def _tail_moments(a, kmax):
    """M_j(a) = E[Z^j 1{Z > a}] for j = 0..kmax (M_j = a^{j-1} φ(a) + (j - 1) M_{j-2})."""
    m = [norm.sf(a), norm.pdf(a)]
    for j in range(2, kmax + 1):
        m.append(a ** (j - 1) * norm.pdf(a) + (j - 1) * m[j - 2])
    return np.array(m[:kmax + 1])


def z1_moments(a, rho, kmax, above):
    """E[z_1^k 1{Z > a}] (``above``) or E[z_1^k 1{Z < a}], k = 0..kmax, for z_1 = ρ Z +
    sqrt(1 - ρ²) U (module docstring)."""
    m = _tail_moments(a, kmax)
    if not above:
        m = np.array([_normal_moment(j) for j in range(kmax + 1)]) - m
    s = math.sqrt(1.0 - rho * rho)
    return np.array([sum(math.comb(k, j) * rho ** j * s ** (k - j) * _normal_moment(k - j)
                         * m[j] for j in range(k + 1)) for k in range(kmax + 1)])


def _expect(poly, moments):
    """E[poly(z_1) 1_A] from the moments E[z_1^k 1_A] (poly: coefficients, lowest first)."""
    return float(np.dot(poly, moments[:len(poly)]))


def gbm_lr_weights(spot, vol, dt):
    """Whole-path LR weights of delta and gamma as polynomials in z_1 (lowest degree first):
    z_1/(S0 h) and [(z_1² - 1)/h² - z_1/h]/S0², h = σ sqrt(dt)."""
    h = vol * math.sqrt(dt)
    return {"delta": np.array([0.0, 1.0 / (spot * h)]),
            "gamma": np.array([-1.0 / h ** 2, -1.0 / h, 1.0 / h ** 2]) / spot ** 2}


def gbm_whole_path_lr(market, maturity, strike, is_call, cash, n_steps=N_STEPS):
    """{greek: (mean, variance, variance with the best Hermite baseline)} per path of whole-path
    LR for a GBM digital on n_steps equal steps, in closed form."""
    s0, r, q, vol = (market[k] for k in ("spot", "rate", "div_yield", "vol"))
    sd = vol * math.sqrt(maturity)
    d2 = (math.log(s0 / strike) + (r - q - 0.5 * vol * vol) * maturity) / sd
    moments = z1_moments(-d2, 1.0 / math.sqrt(n_steps), 5, is_call)
    pv = cash * math.exp(-r * maturity)
    hermite = [np.array([0.0, 1.0]), np.array([-1.0, 0.0, 1.0]), np.array([0.0, -3.0, 0.0, 1.0])]
    out = {}
    for g, w in gbm_lr_weights(s0, vol, maturity / n_steps).items():
        mean = pv * _expect(w, moments)
        var = pv ** 2 * _expect(np.polynomial.polynomial.polymul(w, w), moments) - mean ** 2
        explained = sum((pv * _expect(np.polynomial.polynomial.polymul(w, hk), moments)) ** 2
                        / math.factorial(k) for k, hk in enumerate(hermite, 1))
        out[g] = (mean, var, var - explained)
    return out


def test_z1_moments_against_quadrature():
    """E[z_1^k 1{Z > a}] and E[z_1^k 1{Z < a}], k <= 5, against quadrature: Gauss-Hermite in U
    (exact for these polynomials) inside adaptive quad in Z."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(12)
    weights = weights / weights.sum()
    failures = []
    for a in (-1.3, 0.05, 2.2):
        for rho in (1.0 / math.sqrt(N_STEPS), 0.6):
            s = math.sqrt(1.0 - rho * rho)
            for above in (True, False):
                formula = z1_moments(a, rho, 5, above)
                for k in range(6):
                    def integrand(z):
                        return float(weights @ (rho * z + s * nodes) ** k) * norm.pdf(z)
                    lo, hi = (a, np.inf) if above else (-np.inf, a)
                    quad = integrate.quad(integrand, lo, hi, epsabs=1e-13, epsrel=1e-12)[0]
                    if not abs(formula[k] - quad) <= 1e-10 * max(1.0, abs(quad)):
                        failures.append(f"a={a} rho={rho:.3f} above={above} k={k}: "
                                        f"{formula[k]!r} vs {quad!r}")
    assert not failures, "\n".join(failures)


def test_gbm_whole_path_lr_mean_is_the_closed_form_greek():
    """The comparator is unbiased: its mean from the same moments is Black-Scholes' delta and
    gamma (a check of the weights and of ρ = 1/sqrt(252))."""
    for _, market, maturity, strikes, cash in GBM_SETS:
        for kind, strike in _kinds(strikes):
            lr = gbm_whole_path_lr(market, maturity, strike, kind == "call", cash)
            exact = bs.digital(**market, strike=strike, maturity=maturity,
                               is_call=kind == "call", cash=cash)
            for g in GREEKS:
                assert lr[g][0] == pytest.approx(exact[g], rel=1e-10), (kind, strike, g)


def test_gbm_whole_path_lr_closed_form_against_simulation():
    """252-step GBM paths simulated here (NumPy), per-path whole-path LR delta and gamma: their
    sample mean within 4 SE of Black-Scholes and their sample variance within 4 SE (from the
    fourth moment) of the closed form, with that SE under 5 % of the variance (measured
    0.6-2.6 %)."""
    rng = np.random.default_rng(SEED)
    failures = []
    for name, market, maturity, strikes, cash in GBM_SETS[:2]:
        s0, r, q, vol = (market[k] for k in ("spot", "rate", "div_yield", "vol"))
        dt = maturity / N_STEPS
        z1, w_t = [], []
        for _ in range(GBM_SIM_PATHS // 8192):
            z = rng.standard_normal((8192, N_STEPS))
            z1.append(z[:, 0])
            w_t.append(math.sqrt(dt) * z.sum(axis=1))       # W_T from the whole path
        z1, w_t = np.concatenate(z1), np.concatenate(w_t)
        s_t = s0 * np.exp((r - q - 0.5 * vol * vol) * maturity + vol * w_t)
        weights = gbm_lr_weights(s0, vol, dt)
        for kind, strike in _kinds(strikes):
            f = cash * math.exp(-r * maturity) * ((s_t > strike) if kind == "call"
                                                  else (s_t < strike))
            exact = bs.digital(**market, strike=strike, maturity=maturity,
                               is_call=kind == "call", cash=cash)
            lr = gbm_whole_path_lr(market, maturity, strike, kind == "call", cash)
            for g in GREEKS:
                y = f * np.polynomial.polynomial.polyval(z1, weights[g])
                n = y.size
                mean, var = y.mean(), y.var(ddof=1)
                var_se = math.sqrt(np.mean((y - mean) ** 4) - var ** 2) / math.sqrt(n)
                if not abs(mean - exact[g]) <= 4 * math.sqrt(var / n):
                    failures.append(f"{name} {kind} {g}: mean {mean:.4g} vs {exact[g]:.4g}")
                if not (abs(var - lr[g][1]) <= 4 * var_se and var_se < 0.05 * var):
                    failures.append(f"{name} {kind} {g}: variance {var:.5g} ± {var_se:.2g} "
                                    f"vs closed form {lr[g][1]:.5g}")
    assert not failures, "\n".join(failures)


# -- GBM: mcgreeks' vibrato ------------------------------------------------------------------------

def _gbm_tables():
    """Per set a digital call and put and, on the same underlying, a discretely monitored
    up-and-out call with 252 fixings, so the underlying's paths have 252 dates (its own Greeks
    are not looked at)."""
    trades, market = [], []
    for name, m, maturity, strikes, cash in GBM_SETS:
        market.append(dict(underlying=name, model="gbm", **m))
        for kind, strike in _kinds(strikes):
            trades.append(dict(trade_id=f"{name}-{kind}", underlying=name, payoff="digital",
                               option_type=kind, strike=strike, maturity=maturity,
                               quantity=1.0, cash=cash))
        trades.append(dict(trade_id=f"{name}-barrier", underlying=name, payoff="barrier",
                           option_type="call", strike=m["spot"], maturity=maturity,
                           quantity=1.0, barrier=2.0 * m["spot"], barrier_type="up_out",
                           monitoring="discrete", n_fixings=N_STEPS))
    return pd.DataFrame(trades), pd.DataFrame(market)


GBM_TRADES, GBM_MARKET = _gbm_tables()
GBM_DIGITALS = [f"{name}-{kind}" for name, *_ in GBM_SETS for kind in ("call", "put")]


@pytest.fixture(scope="module")
def gbm_vibrato():
    return price_portfolio(GBM_TRADES, GBM_MARKET, n_paths=GBM_PATHS, seed=SEED, method=VIBRATO)


def _gbm_reference():
    """Closed-form Greeks, natural sizes and whole-path LR moments per digital trade."""
    exact, scale, lr = {}, {}, {}
    for name, market, maturity, strikes, cash in GBM_SETS:
        sd = market["vol"] * math.sqrt(maturity)
        for kind, strike in _kinds(strikes):
            tid = f"{name}-{kind}"
            exact[tid] = bs.digital(**market, strike=strike, maturity=maturity,
                                    is_call=kind == "call", cash=cash)
            scale[tid] = {"delta": cash / (market["spot"] * sd),
                          "gamma": cash / (market["spot"] * sd) ** 2}
            lr[tid] = gbm_whole_path_lr(market, maturity, strike, kind == "call", cash)
    return pd.DataFrame(exact).T, pd.DataFrame(scale).T, lr


def test_gbm_digitals_sit_on_a_252_step_grid():
    """Each underlying's paths are drawn on the union of its trades' dates: 252 of them."""
    market_params, bad_market, _ = check_market(GBM_MARKET)
    records, problems = check_trades(GBM_TRADES, market_params, bad_market)
    assert not any(problems)
    for name, *_ in GBM_SETS:
        mine = [dict(r, control=False) for r in records if r["underlying"] == name]
        assert trade_arrays(mine)[0].size == N_STEPS


def test_gbm_vibrato_matches_the_closed_form(gbm_vibrato):
    """Within 4 SE of Black-Scholes, 4 SE under MEANINGFUL (5 %) of the natural size."""
    exact, scale, _ = _gbm_reference()
    assert_within_4se(gbm_vibrato.loc[GBM_DIGITALS], exact, scale, GREEKS, "vibrato")


def gbm_ratios(gbm_vibrato):
    """{(trade, greek): (Var(LR)/Var(vibrato), Var(baselined LR)/Var(vibrato))}."""
    _, _, lr = _gbm_reference()
    out = {}
    for tid in GBM_DIGITALS:
        for g in GREEKS:
            vibrato_var = gbm_vibrato.at[tid, g + "_se"] ** 2 * GBM_PATHS
            out[(tid, g)] = (lr[tid][g][1] / vibrato_var, lr[tid][g][2] / vibrato_var)
    return out


def test_gbm_vibrato_variance_at_least_5x_below_whole_path_lr(gbm_vibrato):
    bad = {k: v for k, v in gbm_ratios(gbm_vibrato).items() if not min(v) >= MIN_RATIO}
    assert not bad, bad


# -- Heston: the comparator by simulation ----------------------------------------------------------

def qe_coefficients(dt, kappa, vbar, xi, corr):
    """Andersen's (2008) per-step constants: the conditional mean m = m0 + m1 v and variance
    s² = s0 + s1 v of the CIR step, K0..K3 (gamma1 = gamma2 = 1/2, so K4 = K3) and A = K2 +
    K3/2."""
    e = math.exp(-kappa * dt)
    one_e = -math.expm1(-kappa * dt)
    half = 0.5 * dt * (kappa * corr / xi - 0.5)
    c = dict(m0=vbar * one_e, m1=e, s0=vbar * xi * xi * one_e ** 2 / (2.0 * kappa),
             s1=xi * xi * e * one_e / kappa, k0=-corr * kappa * vbar * dt / xi,
             k1=half - corr / xi, k2=half + corr / xi, k3=0.5 * dt * (1.0 - corr * corr))
    c["a"] = c["k2"] + 0.5 * c["k3"]
    return c


def _qe_step(v, zv, zs, c, drift):
    """One QE step of every path (arrays): (v_next, log-spot increment, its sd s).  Quadratic
    branch for psi = s²/m² <= 1.5 (v' = a (b + zv)²), else exponential with U = N(zv) (atom at 0
    when U <= p); log-spot drift + K0* + K1 v + K2 v' + sqrt(K3 (v + v')) zs with Andersen's
    martingale correction K0* + K1 v = -ln M - K3 v/2, M = E[exp(A v')], or K0 + K1 v where M
    does not exist."""
    m = c["m0"] + c["m1"] * v
    psi = (c["s0"] + c["s1"] * v) / (m * m)
    v_next, log_m = np.empty_like(v), np.empty_like(v)
    corrected = np.empty(v.shape, dtype=bool)
    quad = np.flatnonzero(psi <= 1.5)
    expo = np.flatnonzero(psi > 1.5)
    if quad.size:
        t = 2.0 / psi[quad]
        b2 = t - 1.0 + np.sqrt(t * (t - 1.0))
        a = m[quad] / (1.0 + b2)
        v_next[quad] = a * (np.sqrt(b2) + zv[quad]) ** 2
        den = 1.0 - 2.0 * c["a"] * a
        corrected[quad] = den > 0.0
        den = np.where(den > 0.0, den, 1.0)
        log_m[quad] = c["a"] * b2 * a / den - 0.5 * np.log(den)
    if expo.size:
        p = (psi[expo] - 1.0) / (psi[expo] + 1.0)
        beta = (1.0 - p) / m[expo]
        tail = ndtr(-zv[expo])                                  # 1 - U
        atom = tail >= 1.0 - p
        v_next[expo] = np.where(atom, 0.0,
                                (np.log1p(-p) - np.log(np.where(atom, 1.0, tail))) / beta)
        corrected[expo] = beta > c["a"]
        gap = np.where(beta > c["a"], beta - c["a"], 1.0)
        log_m[expo] = np.log(p + beta * (1.0 - p) / gap)
    corr_term = np.where(corrected, -log_m - 0.5 * c["k3"] * v, c["k0"] + c["k1"] * v)
    sig = np.sqrt(c["k3"] * (v + v_next))
    return v_next, drift + corr_term + c["k2"] * v_next + sig * zs, sig


def _qe_paths(market, zs, zv, maturity=HESTON_MATURITY, n_steps=N_STEPS):
    """Yields (k, ln(S/S0), v, s) after each step, from normals zs[k], zv[k] (rows = steps)."""
    dt = maturity / n_steps
    c = qe_coefficients(dt, market["kappa"], market["vbar"], market["xi"], market["corr"])
    drift = (market["rate"] - market["div_yield"]) * dt
    v = np.full(zs.shape[1], float(market["v0"]))
    x = np.zeros(zs.shape[1])
    for k in range(n_steps):
        v, dx, sig = _qe_step(v, zv[k], zs[k], c, drift)
        x = x + dx
        yield k, x, v, sig


def heston_whole_path_lr(market, strikes, n_paths, seed, block=1 << 14):
    """{(kind, quantity): per-path array} of the discounted payoff and whole-path LR delta and
    gamma of a digital call and put paying 1, on n_paths QE paths (NumPy's generator)."""
    rng = np.random.default_rng(seed)
    s0 = market["spot"]
    disc = math.exp(-market["rate"] * HESTON_MATURITY)
    out = {(kind, q): [] for kind in ("call", "put") for q in ("price",) + GREEKS}
    for start in range(0, n_paths, block):
        m = min(block, n_paths - start)
        z = rng.standard_normal((N_STEPS, 2, m))
        for k, x, _, sig in _qe_paths(market, z[:, 0], z[:, 1]):
            if k == 0:
                z1, s1 = z[0, 0], sig
        s_t = s0 * np.exp(x)
        w_delta = z1 / (s0 * s1)
        w_gamma = ((z1 * z1 - 1.0) / (s1 * s1) - z1 / s1) / (s0 * s0)
        for kind, strike in _kinds(strikes):
            f = disc * ((s_t > strike) if kind == "call" else (s_t < strike))
            out[(kind, "price")].append(f)
            out[(kind, "delta")].append(f * w_delta)
            out[(kind, "gamma")].append(f * w_gamma)
    return {key: np.concatenate(parts) for key, parts in out.items()}


def _mean_var(y):
    """(mean, its SE, variance, SE of the variance from the fourth moment)."""
    mean, var = y.mean(), y.var(ddof=1)
    var_se = math.sqrt(max(np.mean((y - mean) ** 4) - var * var, 0.0) / y.size)
    return mean, math.sqrt(var / y.size), var, var_se


@pytest.mark.parametrize("market", [ANDERSEN_1, HESTON_SETS[0][1]], ids=["andersen_1", "feller4"])
def test_numpy_qe_is_the_engines_scheme(market):
    """On the engine's normals of one tile (draw 2k: zs of step k, 2k + 1: zv), the NumPy
    scheme gives the engine's ln(S/S0) and v at every one of the 252 dates (to 1e-12)."""
    grid = H.simulation_grid([HESTON_MATURITY], N_STEPS)
    assert grid.size == N_STEPS and np.allclose(np.diff(grid), HESTON_MATURITY / N_STEPS)
    key0, key1 = seed_key(SEED), name_key("Q")
    x_engine, v_engine = H.sample_paths(market, grid, TILE, key0=key0, key1=key1)
    z = np.empty((3 * N_STEPS, TILE))       # normals, then the tails the engine's QE reads
    H.tile_normals(np.uint64(key0), np.uint64(key1), np.uint64(0), 0, TILE, N_STEPS, z)
    x, v = np.empty_like(x_engine), np.empty_like(v_engine)
    for k, xk, vk, _ in _qe_paths(market, z[0:2 * N_STEPS:2], z[1:2 * N_STEPS:2]):
        x[k], v[k] = xk, vk
    np.testing.assert_allclose(x, x_engine, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, v_engine, rtol=0, atol=1e-12)
    if market is ANDERSEN_1:
        assert (v == 0.0).mean() > 0.3          # the exponential branch's atom was exercised


# -- Heston: mcgreeks' vibrato ---------------------------------------------------------------------

def _heston_tables(sets=HESTON_SETS):
    trades, market = [], []
    for name, m, strikes in sets:
        market.append(dict(underlying=name, model="heston", **m))
        for kind, strike in _kinds(strikes):
            trades.append(dict(trade_id=f"{name}-{kind}", underlying=name, payoff="digital",
                               option_type=kind, strike=strike, maturity=HESTON_MATURITY,
                               quantity=1.0, cash=1.0))
    return pd.DataFrame(trades), pd.DataFrame(market)


def _vibrato_run(name, market, strikes, n_paths):
    """mcgreeks' price and vibrato delta and gamma of the set's call and put, {(kind, quantity):
    (mean, SE)}, from the Heston pricer that ``price_portfolio`` calls, asked for these
    quantities only (``price_portfolio`` would add fd theta and d_v0 .. d_corr, each two
    re-simulations, 8 times the cost; ``test_heston_runs_are_price_portfolios`` shows the
    numbers are the same to the bit)."""
    res = run(market, records_of(strikes, HESTON_MATURITY), ("vibrato",), n_paths=n_paths,
              seed=SEED, name=name, steps_per_year=N_STEPS / HESTON_MATURITY)
    return {(kind, q): res[(j, q, "mc" if q == "price" else "vibrato")]
            for j, kind in enumerate(("call", "put")) for q in ("price",) + GREEKS}


@pytest.fixture(scope="module")
def heston_vibrato():
    return {name: _vibrato_run(name, market, strikes, HESTON_PATHS)
            for name, market, strikes in HESTON_SETS}


@pytest.fixture(scope="module")
def heston_lr():
    """{set name: {(kind, quantity): (mean, SE, variance, variance SE)}} of the comparator."""
    return {name: {key: _mean_var(y) for key, y in
                   heston_whole_path_lr(market, strikes, LR_PATHS, SEED + i).items()}
            for i, (name, market, strikes) in enumerate(HESTON_SETS)}


def test_heston_sets_hold_the_feller_condition_with_room():
    for _, market, _ in HESTON_SETS:
        assert H.feller_ratio(market) > 3.5 and market["v0"] <= market["vbar"]


def test_heston_runs_are_price_portfolios():
    """``price_portfolio(..., method=vibrato, steps_per_year=252)`` reports the same price,
    delta, gamma and SEs, to the bit, as ``_vibrato_run`` with the same seed, name and paths."""
    name, market, strikes = HESTON_SETS[0]
    trades, table = _heston_tables(HESTON_SETS[:1])
    n = 5 * TILE + 3
    public = price_portfolio(trades, table, n_paths=n, seed=SEED, method=VIBRATO,
                             steps_per_year=N_STEPS / HESTON_MATURITY)
    ours = _vibrato_run(name, market, strikes, n)
    for kind in ("call", "put"):
        tid = f"{name}-{kind}"
        assert (public.at[tid, "method_delta"], public.at[tid, "method_gamma"]) == (
            "vibrato", "vibrato")
        for q in ("price",) + GREEKS:
            assert (public.at[tid, q], public.at[tid, q + "_se"]) == ours[(kind, q)], (tid, q)


def test_heston_vibrato_matches_the_closed_form(heston_vibrato):
    """Within 4 SE of the semi-analytic digital (test_heston_vibrato's ``digital``: the strike
    derivative of ``analytic.heston``), delta's 4 SE under MEANINGFUL (5 %) of its natural size
    (largest |delta| over five strikes, test_heston_vibrato's ``natural_sizes``; measured
    2.9-4.1 %).  The QE bias at 252 steps is not added: measured on test_heston_vibrato's sets
    (its ALLOWANCES) below 0.1 % of delta and 2 % of gamma, under a tenth of these tolerances.
    Gamma's 4 SE is 1.3-2.8 times its natural size at these paths (one-step vibrato, variance
    ~ s_N^-3), so its check only catches gross errors; test_heston_vibrato's comparison with lr
    on coarse grids is the sharp one."""
    failures = []
    for name, market, strikes in HESTON_SETS:
        natural = natural_sizes(market, HESTON_MATURITY)
        for kind, strike in _kinds(strikes):
            exact = heston_digital(market, HESTON_MATURITY, strike, kind == "call")
            for q in GREEKS:
                got, se = heston_vibrato[name][(kind, q)]
                if not abs(got - exact[q]) <= 4 * se:
                    failures.append(f"{name} {kind} {q}: vibrato {got:.6g} ± {se:.2g} vs "
                                    f"{exact[q]:.6g}")
            se = heston_vibrato[name][(kind, "delta")][1]
            if not 4 * se <= MEANINGFUL * natural["delta"]:
                failures.append(f"{name} {kind} delta: 4 SE {4 * se:.3g} > {MEANINGFUL:.0%} "
                                f"of {natural['delta']:.3g}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_heston_comparator_agrees_with_the_engine(heston_vibrato, heston_lr):
    """Independent streams, the same discretized model: the NumPy price within 4 combined SE
    of mcgreeks' (a check of the scheme's law), and whole-path LR delta and gamma within 4
    combined SE of vibrato's (both unbiased for the discretized Greeks; LR's SE is large, so
    this only catches gross errors in its weights)."""
    failures = []
    for name, _, _ in HESTON_SETS:
        for kind in ("call", "put"):
            for q in ("price",) + GREEKS:
                mean, se = heston_lr[name][(kind, q)][:2]
                engine, engine_se = heston_vibrato[name][(kind, q)]
                if not abs(mean - engine) <= 4 * math.hypot(se, engine_se):
                    failures.append(f"{name} {kind} {q}: NumPy {mean:.5g} ± {se:.2g} vs "
                                    f"mcgreeks {engine:.5g} ± {engine_se:.2g}")
    assert not failures, "\n".join(failures)


def heston_ratios(heston_vibrato, heston_lr):
    """{(trade, greek): (Var(LR)/Var(vibrato), relative SE of Var(LR))}."""
    out = {}
    for name, _, _ in HESTON_SETS:
        for kind in ("call", "put"):
            for g in GREEKS:
                _, _, var, var_se = heston_lr[name][(kind, g)]
                vibrato_var = heston_vibrato[name][(kind, g)][1] ** 2 * HESTON_PATHS
                out[(f"{name}-{kind}", g)] = (var / vibrato_var, var_se / var)
    return out


@pytest.mark.slow
def test_heston_vibrato_variance_at_least_5x_below_whole_path_lr(heston_vibrato, heston_lr):
    """Per path, same model and grid; the comparator's variance known to within 5 %."""
    ratios = heston_ratios(heston_vibrato, heston_lr)
    bad = {k: v for k, v in ratios.items() if not (v[0] >= MIN_RATIO and v[1] < 0.05)}
    assert not bad, bad


@pytest.mark.slow
def test_report_ratios(gbm_vibrato, heston_vibrato, heston_lr):
    """Prints the measured ratios (run with -s); asserts nothing new."""
    for (tid, g), (plain, baselined) in gbm_ratios(gbm_vibrato).items():
        print(f"GBM {tid:12s} {g:5s} Var(LR)/Var(vibrato) = {plain:9.3g}  "
              f"(LR with Hermite baseline: {baselined:9.3g})")
    for (tid, g), (ratio, rel) in heston_ratios(heston_vibrato, heston_lr).items():
        print(f"Heston {tid:16s} {g:5s} Var(LR)/Var(vibrato) = {ratio:6.3g}  "
              f"(Var(LR) to {rel:.1%})")
