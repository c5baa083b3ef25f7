"""Vibrato delta and gamma of Heston digital options (``mcgreeks.pricers.heston._vibrato``).

Vibrato (Giles 2009) is pathwise along the path up to the step ending at the payoff date and
likelihood ratio over that step: given the path before it, ln S_T = μ + s Z is Gaussian with
ln S0 in μ only, so delta = e^{-rT}/S0 · ∂μ E[f | path] and gamma = e^{-rT}/S0² · (∂²μ - ∂μ)
E[f | path], each estimated with the antithetic pair and the mid value.  Where the step has no
spot noise (QE: both its variances 0) the pricer takes the last step that has some
(``models.heston.last_noise``), which keeps the estimate exactly unbiased.

1. The reference: the digital's price, delta and gamma are -d/dK of the European call's
   (``mcgreeks.analytic.heston``, accurate to ~1e-13), by a fourth-order central difference in
   the strike, checked against an independent quadrature of Heston's P2 integral and its S0
   derivatives (scipy), and the price against QuantLib's AnalyticPDFHestonEngine.
2. T = 1, 252 QE steps, four parameter sets (one violates the Feller condition): vibrato delta
   and gamma within 4 SE plus the measured discretization bias of the closed form; delta's
   4 SE is under 5 % of its natural size.  Gamma's is not, and cannot be at any affordable path
   count: see below.
3. A sharp check of the formulas, the chain rule and the zero-noise fallback: on one- and
   two-step grids, where the last step is long, vibrato minus likelihood ratio on the same
   paths (a per-path total, so its SE is that of the difference) is zero within 4 SE, under QE
   and Euler, with the Feller condition badly violated (on two steps most paths have no noise
   on the last step).
4. Wiring: the validity tables, the errors, auto against the pilot, bit-identical results on 1
   and 2 threads and any chunking.

Measured while writing this file: the variance of one-step vibrato against Heston's ``lr``,
same paths.  Heston's ``lr`` does not score the first step: it scores the law of ln S at the
payoff date given the whole variance path (``models.heston``), a Gaussian whose variance is the
whole path's, so its per-path weight is O(1/(S0 sqrt(v T))); one-step vibrato's is
O(1/(S0 s)) with s ~ sqrt(v dt (1 - corr²)) the last step's, on the fraction O(s) of paths
near the strike.  At 252 steps a year vibrato's variance is 6-28 times lr's for delta and
4e3-8e6 times for gamma (``test_one_step_vibrato_is_noisier_than_lr``), and auto keeps lr.
Its per-path gamma is O(1/s²) on a fraction O(s) of paths, so its variance is ~E[s^-3], infinite
unless P(s < σ) vanishes faster than σ³ as σ -> 0: not with the Feller condition violated, nor
(measured, P(s < σ) ~ σ^2.5) on positive_corr, so vibrato's gamma SE is erratic.

References: M. B. Giles, "Vibrato Monte Carlo sensitivities", Monte Carlo and Quasi-Monte Carlo
Methods 2008, Springer (2009); S. L. Heston (1993), Rev. Financial Studies 6(2), 327-343 (P2);
H. Albrecher et al. (2007), "The little Heston trap" (the characteristic function's form).
"""
import functools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from mc_checks import MEANINGFUL, one_thread
from mcgreeks import engine, price_portfolio
from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.analytic.heston import heston_european
from mcgreeks.estimators import validity
from mcgreeks.models import heston as H
from mcgreeks.pricers import heston as HP
from mcgreeks.rng import STREAM_MAIN, name_key, seed_key
from mcgreeks.validation import InputError

SEED = 20260317
STEPS_PER_YEAR = 252
MATURITY = 1.0
#: Natural size of a Greek: its largest |closed form| over strikes F exp(m sqrt(vbar T)).
MONEYNESS = (-1.0, -0.5, 0.0, 0.5, 1.0)
#: Relative strike step of the fourth-order difference: truncation (h^4) and roundoff
#: (1e-13 / h) of the differenced Lewis integral are both ~1e-12 of the value here; h/2
#: gives the same digits (``test_the_closed_form_is_accurate``).
H_REL = 3e-4

# name, market, (call strike, put strike), paths.  feller_violated: 2 kappa vbar / xi^2 = 0.49 <
# 2/3, so QE's exponential branch puts variance at 0.  Its paths are doubled for delta's 5 %.
SETS = [
    ("base", dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.04, xi=0.3,
                  corr=-0.7), (100.0, 95.0), 1 << 19),
    ("positive_corr", dict(spot=100.0, rate=0.02, div_yield=0.0, v0=0.05, kappa=3.0, vbar=0.05,
                           xi=0.5, corr=0.4), (105.0, 95.0), 1 << 19),
    ("feller_violated", dict(spot=100.0, rate=0.02, div_yield=0.0, v0=0.05, kappa=1.0,
                             vbar=0.05, xi=0.45, corr=-0.5), (100.0, 90.0), 1 << 20),
    ("low_corr", dict(spot=50.0, rate=0.05, div_yield=0.02, v0=0.09, kappa=2.0, vbar=0.06,
                      xi=0.4, corr=-0.3), (52.0, 45.0), 1 << 19),
]
SET_NAMES = [s[0] for s in SETS]

# Discretization bias of QE at 252 steps a year, (bias, its SE) per (set, option, Greek): the lr
# estimator (the precise one) with 2**22 paths (seed 99, underlying "B"), minus the closed form.
# All are within 2.2 SE of zero and below 0.1 % (delta) / 2 % (gamma) of the value.
ALLOWANCES = {
    ("base", "call"): {"delta": (3.29e-06, 2.8e-05), "gamma": (-6.5e-06, 3.9e-06)},
    ("base", "put"): {"delta": (-1.9e-05, 2.0e-05), "gamma": (1.28e-06, 2.8e-06)},
    ("positive_corr", "call"): {"delta": (-8.15e-06, 1.6e-05), "gamma": (-2.99e-06, 1.4e-06)},
    ("positive_corr", "put"): {"delta": (5.76e-06, 1.6e-05), "gamma": (1.03e-06, 1.8e-06)},
    ("feller_violated", "call"): {"delta": (-9.85e-06, 2.4e-05), "gamma": (-3.99e-06, 3.4e-06)},
    ("feller_violated", "put"): {"delta": (-9.55e-06, 1.6e-05), "gamma": (1.5e-06, 2.2e-06)},
    ("low_corr", "call"): {"delta": (-1.96e-05, 2.4e-05), "gamma": (-5.65e-06, 3.7e-06)},
    ("low_corr", "put"): {"delta": (5.09e-07, 2.3e-05), "gamma": (1.2e-06, 3.8e-06)},
}

#: Andersen (2008) case I parameters: 2 kappa vbar / xi^2 = 0.04.
ANDERSEN_1 = dict(spot=100.0, rate=0.0, div_yield=0.0, v0=0.04, kappa=0.5, vbar=0.04, xi=1.0,
                  corr=-0.9)


# -- the closed form -------------------------------------------------------------------------------

def digital(market, maturity, strike, is_call, cash=1.0, h_rel=H_REL):
    """Price, delta and gamma of a cash-or-nothing digital (pays ``cash``) under Heston: the call
    is -cash d/dK of the European call's price, delta and gamma (price = e^{-rT} Q(S_T > K)),
    by the fourth-order central difference (8 (f(K+h) - f(K-h)) - (f(K+2h) - f(K-2h))) / 12h
    (the Richardson extrapolation of two central differences); the put is cash e^{-rT} minus
    the call (its delta and gamma the call's negated)."""
    h = h_rel * strike
    calls = {j: heston_european(**market, strike=strike + j * h, maturity=maturity)
             for j in (-2, -1, 1, 2)}
    out = {q: -cash * (8.0 * (calls[1][q] - calls[-1][q]) - (calls[2][q] - calls[-2][q]))
           / (12.0 * h) for q in ("price", "delta", "gamma")}
    if not is_call:
        out = {"price": cash * math.exp(-market["rate"] * maturity) - out["price"],
               "delta": -out["delta"], "gamma": -out["gamma"]}
    return out


def _p2_quadrature(market, maturity, strike):
    """Independent reference: e^{-rT} (P2, dP2/dS0, d²P2/dS0²) by scipy quad of Heston's (1993)
    inversion P2 = 1/2 + 1/π ∫_0^∞ Re[e^{-iu ln K} φ(u) / (iu)] du, φ the characteristic
    function of ln S_T in the Albrecher et al. (2007) form; ln S0 enters φ as e^{iu ln S0}, so
    the S0-derivatives multiply the integrand by iu/S0 and iu (iu - 1)/S0²."""
    s0, r, q = market["spot"], market["rate"], market["div_yield"]
    v0, kappa, vbar, xi, rho = (market[k] for k in ("v0", "kappa", "vbar", "xi", "corr"))
    t = maturity

    def phi(u):
        b = kappa - rho * xi * 1j * u
        d = np.sqrt(b * b + xi * xi * (1j * u + u * u))
        g = (b - d) / (b + d)
        e = np.exp(-d * t)
        c = kappa * vbar / xi ** 2 * ((b - d) * t - 2.0 * np.log((1.0 - g * e) / (1.0 - g)))
        big_d = (b - d) / xi ** 2 * (1.0 - e) / (1.0 - g * e)
        return np.exp(1j * u * (math.log(s0) + (r - q) * t) + c + big_d * v0)

    def integral(weight):
        f = lambda u: (np.exp(-1j * u * math.log(strike)) * phi(u) * weight(u)).real  # noqa: E731
        return integrate.quad(f, 1e-12, np.inf, limit=2000, epsabs=1e-13, epsrel=1e-12)[0]

    disc = math.exp(-r * t)
    return (disc * (0.5 + integral(lambda u: 1.0 / (1j * u)) / math.pi),
            disc * integral(lambda u: 1.0 / s0) / math.pi,
            disc * integral(lambda u: (1j * u - 1.0) / s0 ** 2) / math.pi)


def _ql_digital_call(market, maturity, strike):
    """QuantLib's AnalyticPDFHestonEngine value of a cash-or-nothing call paying 1."""
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = lambda r: ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))  # noqa: E731
    process = ql.HestonProcess(curve(market["rate"]), curve(market["div_yield"]),
                               ql.QuoteHandle(ql.SimpleQuote(market["spot"])), market["v0"],
                               market["kappa"], market["vbar"], market["xi"], market["corr"])
    option = ql.VanillaOption(ql.CashOrNothingPayoff(ql.Option.Call, strike, 1.0),
                              ql.EuropeanExercise(today + int(round(365 * maturity))))
    option.setPricingEngine(ql.AnalyticPDFHestonEngine(ql.HestonModel(process), 1e-10, 100000))
    return option.NPV()


def natural_sizes(market, maturity):
    """Largest |delta| and |gamma| of a digital (call or put alike) over the MONEYNESS strikes."""
    fwd = market["spot"] * math.exp((market["rate"] - market["div_yield"]) * maturity)
    sd = math.sqrt(market["vbar"] * maturity)
    values = [digital(market, maturity, fwd * math.exp(m * sd), True) for m in MONEYNESS]
    return {q: max(abs(v[q]) for v in values) for q in ("delta", "gamma")}


def test_the_closed_form_is_accurate():
    """The strike difference against itself at h/2 (1e-9) and against the P2 quadrature (1e-7,
    price, delta, gamma), and the call's price against QuantLib (1e-5).  QuantLib's PDF engine
    is the loosest: 2e-6 off on positive_corr (where the quadrature agrees with us to 1e-10),
    and its own call + put misses e^{-rT} by up to 5e-5 on these sets."""
    failures = []
    for name, market, strikes, _ in SETS:
        for strike in strikes:
            ours = digital(market, MATURITY, strike, True)
            half = digital(market, MATURITY, strike, True, h_rel=H_REL / 2)
            quad = dict(zip(("price", "delta", "gamma"),
                            _p2_quadrature(market, MATURITY, strike)))
            for q in ("price", "delta", "gamma"):
                if not abs(ours[q] - half[q]) <= 1e-9 * abs(ours[q]):
                    failures.append(f"{name} K={strike} {q}: h vs h/2 {ours[q]!r} {half[q]!r}")
                if not abs(ours[q] - quad[q]) <= 1e-7 * abs(ours[q]):
                    failures.append(f"{name} K={strike} {q}: {ours[q]!r} vs quadrature "
                                    f"{quad[q]!r}")
            ql_call = _ql_digital_call(market, MATURITY, strike)
            if not abs(ours["price"] - ql_call) <= 1e-5:
                failures.append(f"{name} K={strike}: {ours['price']!r} vs QuantLib {ql_call!r}")
    assert not failures, "\n".join(failures)


# -- Monte Carlo helpers ---------------------------------------------------------------------------

def digital_arrays(records):
    """(payoff_grid, ti, tf, fix_idx) of one-date digitals in ``mcgreeks.payoffs``' layout."""
    grid = np.unique([r["maturity"] for r in records])
    ti = np.zeros((len(records), P.N_INT_COLUMNS), dtype=np.int64)
    tf = np.zeros((len(records), P.N_FLOAT_COLUMNS))
    for j, r in enumerate(records):
        ti[j, P.KIND], ti[j, P.FIX_OFF], ti[j, P.FIX_N] = P.DIGITAL, j, 1
        tf[j, P.OMEGA] = 1.0 if r["option_type"] == "call" else -1.0
        tf[j, P.STRIKE], tf[j, P.CASH] = r["strike"], r.get("cash", 1.0)
        tf[j, P.MATURITY] = r["maturity"]
    fix = np.searchsorted(grid, [r["maturity"] for r in records]).astype(np.int64)
    return grid, ti, tf, fix


def run(market, records, estimators, *, n_paths, seed, name="V", **options):
    """{(j, quantity, estimator): (mean, se)}: the price and delta, gamma by each estimator."""
    grid, ti, tf, fix = digital_arrays(records)
    slots = np.full((len(records), G.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
    index = {}
    for j in range(len(records)):
        for g, e in [(G.PRICE, G.PATHWISE)] + [(g, G.ESTIMATORS.index(e))
                                               for g in (G.DELTA, G.GAMMA) for e in estimators]:
            slots[j, g, e] = len(index)
            index[(j, G.QUANTITIES[g], G.ESTIMATORS[e] if g else "mc")] = len(index)
    mean, se, _ = HP.run_heston(key0=seed_key(seed), key1=name_key(name), stream=STREAM_MAIN,
                                n_paths=n_paths, params=market, ti=ti, tf=tf, fix_idx=fix,
                                payoff_grid=grid, slots=slots, **options)
    return {key: (mean[k], se[k]) for key, k in index.items()}


def records_of(strikes, maturity=MATURITY, cash=1.0):
    return [dict(payoff="digital", option_type=kind, strike=k, maturity=maturity, cash=cash)
            for kind, k in zip(("call", "put"), strikes)]


@pytest.fixture(scope="module")
def results():
    """Each set's call and put at 252 steps a year, vibrato and lr on the same paths."""
    return {name: run(market, records_of(strikes), ("lr", "vibrato"), n_paths=n, seed=SEED,
                      name=name, steps_per_year=STEPS_PER_YEAR)
            for name, market, strikes, n in SETS}


# -- 2. against the closed form at 252 steps a year ------------------------------------------------

def test_the_sets_include_a_violated_feller_condition():
    assert any(H.feller_ratio(market) < 2.0 / 3.0 for _, market, _, _ in SETS)


@pytest.mark.slow
@pytest.mark.parametrize("set_index", range(len(SETS)), ids=SET_NAMES)
def test_vibrato_matches_the_closed_form(set_index, results):
    """Delta and gamma of the call and the put within 4 SE plus the measured bias (tolerance
    4 hypot(SE, bias SE) + |bias|, as tests/pricers/test_heston_mc.py), and delta's 4 SE under
    MEANINGFUL (5 %) of its natural size (measured 3.0-4.0 %).  Gamma's 4 SE is 2-60 times
    its natural size at these paths (its variance is ~s^-3 for a last step of s ~ 0.01, worst
    with the Feller condition violated), so its check only guards against gross errors;
    ``test_vibrato_agrees_with_lr_on_the_same_paths`` is the sharp one."""
    name, market, strikes, _ = SETS[set_index]
    natural = natural_sizes(market, MATURITY)
    res = results[name]
    failures = []
    for j, (kind, strike) in enumerate(zip(("call", "put"), strikes)):
        exact = digital(market, MATURITY, strike, kind == "call")
        for q in ("delta", "gamma"):
            got, se = res[(j, q, "vibrato")]
            bias, bias_se = ALLOWANCES[(name, kind)][q]
            tol = 4.0 * math.hypot(se, bias_se) + abs(bias)
            if not abs(got - exact[q]) <= tol:
                failures.append(f"{name} {kind} K={strike} {q}: vibrato {got:.6g} vs "
                                f"{exact[q]:.6g}, |diff| {abs(got - exact[q]):.3g} > {tol:.3g}")
        se = res[(j, "delta", "vibrato")][1]
        if not 4.0 * se <= MEANINGFUL * natural["delta"]:
            failures.append(f"{name} {kind} delta: 4 SE = {4 * se:.3g} > {MEANINGFUL:.0%} of "
                            f"{natural['delta']:.3g}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_one_step_vibrato_is_noisier_than_lr(results):
    """Per trade, same paths: Var(vibrato) / Var(lr), measured 6.4-28 for delta and 4e3-8e6 for
    gamma on these sets (module docstring: Heston's lr already conditions on the whole variance
    path).  Asserted loosely (> 2 and > 100): this is why auto keeps lr at this grid."""
    failures = []
    for name, _, strikes, _ in SETS:
        for j, kind in enumerate(("call", "put")):
            for q, floor in (("delta", 2.0), ("gamma", 100.0)):
                ratio = (results[name][(j, q, "vibrato")][1]
                         / results[name][(j, q, "lr")][1]) ** 2
                if not ratio > floor:
                    failures.append(f"{name} {kind} {q}: Var(vibrato)/Var(lr) = {ratio:.3g}")
    assert not failures, "\n".join(failures)


# -- 3. against lr on the same paths, coarse grid --------------------------------------------------

def vibrato_minus_lr(market, record, *, n_paths, seed, steps_per_year, scheme):
    """Mean and SE of vibrato minus lr of delta and of gamma per path, from the pricer's per-path
    totals: the same digital twice, once by each estimator, with weights +1 and -1."""
    grid, ti, tf, fix = digital_arrays([record, record])
    slots = np.full((2, G.N_QUANTITIES, G.N_ESTIMATORS), -1, dtype=np.int64)
    agg_e = np.full((2, G.N_QUANTITIES), -1, dtype=np.int64)
    agg_w = np.zeros((2, G.N_QUANTITIES, 3))
    for j, e, w in ((0, G.VIBRATO, 1.0), (1, G.LR, -1.0)):
        for g in (G.DELTA, G.GAMMA):
            slots[j, g, e] = int(slots.max()) + 1
            agg_e[j, g], agg_w[j, g, 0] = e, w
    n_wanted = int(slots.max()) + 1
    args, _ = HP.prepare(params=market, ti=ti, tf=tf, fix_idx=fix, payoff_grid=grid, slots=slots,
                         steps_per_year=steps_per_year, scheme=scheme,
                         totals=(agg_e, agg_w, n_wanted))
    result = engine.run(HP.chunk, args, key0=seed_key(seed),
                        key1=name_key("D"), stream=STREAM_MAIN, n_paths=n_paths,
                        n_slots=n_wanted + G.N_QUANTITIES)
    mean, se = engine.estimate(*result)[:2] if len(result) == 2 else result[:2]
    return {q: (mean[n_wanted + G.QUANTITIES.index(q)], se[n_wanted + G.QUANTITIES.index(q)])
            for q in ("delta", "gamma")}


def test_the_coarse_grid_exercises_steps_without_noise():
    """With Andersen's case I on two steps, three paths in four have no spot noise on the last
    QE step (both variances 0), and over a third none on the last Euler step (v+ = 0 at its
    start), so the zero-noise fallback carries much of the check below.  (At 252 steps a year
    it is near two in three for both.)"""
    grid = H.simulation_grid([MATURITY], 2)
    for scheme, floor in (("qe", 0.5), ("euler", 0.25)):
        _, v = H.sample_paths(ANDERSEN_1, grid, 1 << 14, key0=seed_key(1), key1=name_key("D"),
                              scheme=scheme)
        silent = (v[-1] == 0.0) & (v[-2] == 0.0) if scheme == "qe" else v[-2] == 0.0
        assert silent.mean() > floor, (scheme, silent.mean())


@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("steps_per_year, gamma_size", [(1, MEANINGFUL), (2, 0.3)])
def test_vibrato_agrees_with_lr_on_the_same_paths(scheme, steps_per_year, gamma_size):
    """Both estimate derivatives of the same discretized price, so their per-path difference has
    mean zero: within 4 of its own SE, which is under MEANINGFUL (5 %) of the Greek's natural
    size for delta, and for gamma on one step.  One step a year: vibrato and lr weigh the same
    Gaussian, a sharp check of the formulas and the chain rule.  Two: the last step is often
    silent (above); gamma then reaches 30 % only (measured 26 % for Andersen's QE call: where
    the variance has just reached 0 the step taken, v_{k-1} + 0, can be tiny, and vibrato's
    gamma weight is 1/s²)."""
    failures = []
    for name, market in (("base", SETS[0][1]), ("andersen_1", ANDERSEN_1)):
        natural = natural_sizes(market, MATURITY)
        for kind, strike in (("call", 100.0), ("put", 90.0)):
            record = dict(payoff="digital", option_type=kind, strike=strike, maturity=MATURITY)
            diff = vibrato_minus_lr(market, record, n_paths=1 << 20, seed=SEED,
                                    steps_per_year=steps_per_year, scheme=scheme)
            for q, size in (("delta", MEANINGFUL), ("gamma", gamma_size)):
                mean, se = diff[q]
                if not abs(mean) <= 4.0 * se:
                    failures.append(f"{name} {kind} {q}: vibrato - lr = {mean:.3g} ± {se:.3g}")
                if not 4.0 * se <= size * natural[q]:
                    failures.append(f"{name} {kind} {q}: 4 SE {4 * se:.3g} > {size:.0%} of "
                                    f"{natural[q]:.3g}")
    assert not failures, "\n".join(failures)


def test_last_noise_walks_back_over_steps_without_noise():
    """Variances v[k, path] at the ends of four steps (QE: step k's noise has variance
    K3 (v[k-1] + v[k]); Euler: v[k-1] dt (1 - corr^2)).  Path 0: noise on the last step;
    path 1: none on the last two, so the first step's; path 2 with v0 = 0: no noise at all."""
    grid = np.array([0.25, 0.5, 0.75, 1.0])
    coef = H.step_coefficients(np.diff(np.concatenate([[0.0], grid])), drift_rate=0.0, kappa=1.0,
                               vbar=0.04, xi=0.5, corr=-0.5)
    v = np.array([[0.04, 0.05, 0.0], [0.05, 0.0, 0.0], [0.03, 0.0, 0.0], [0.02, 0.0, 0.0]])
    z = np.arange(24.0).reshape(8, 3)
    bar = H.correlation_complement(-0.5)
    assert bar == math.sqrt(0.75)
    assert H.last_noise(H.QE, coef, bar, 0.04, v, z, 3, 0) == (
        math.sqrt(coef[3, H.K3] * (0.03 + 0.02)), z[6, 0], 3)
    assert H.last_noise(H.QE, coef, bar, 0.04, v, z, 3, 1) == (
        math.sqrt(coef[1, H.K3] * (0.05 + 0.0)), z[2, 1], 1)
    assert H.last_noise(H.QE, coef, bar, 0.0, v, z, 3, 2) == (0.0, 0.0, -1)
    assert H.last_noise(H.EULER, coef, bar, 0.04, v, z, 3, 0) == (
        math.sqrt(0.03 * 0.25) * bar, z[6, 0], 3)
    assert H.last_noise(H.EULER, coef, bar, 0.04, v, z, 3, 1) == (
        math.sqrt(0.05 * 0.25) * bar, z[2, 1], 1)
    assert H.last_noise(H.EULER, coef, bar, 0.0, v, z, 3, 2) == (0.0, 0.0, -1)


# -- 4. wiring -------------------------------------------------------------------------------------

def test_validity_tables_and_errors():
    market = SETS[0][1]
    valid = functools.partial(validity.valid_estimators, validity.HESTON)
    for g in (G.DELTA, G.GAMMA):
        assert valid(P.DIGITAL, g) == (G.LR, G.VIBRATO, G.FD)
        assert valid(P.DIGITAL, g, params=market) == (G.LR, G.VIBRATO, G.FD)
        # v0 = 0: lr's first step is degenerate, vibrato finds a noisy step (or the payoff is
        # flat in S0); |corr| = 1: no step has noise of its own
        assert valid(P.DIGITAL, g, params=dict(market, v0=0.0)) == (G.VIBRATO, G.FD)
        assert valid(P.DIGITAL, g, params=dict(market, corr=1.0)) == (G.FD,)
        for kind in (P.EUROPEAN, P.BARRIER, P.ASIAN_ARITHMETIC):
            assert G.VIBRATO not in valid(kind, g)
    assert G.VIBRATO not in valid(P.DIGITAL, G.RHO)
    assert validity.why_invalid(validity.HESTON, P.EUROPEAN, G.DELTA, G.VIBRATO) == (
        "vibrato is offered for digitals' delta and gamma under Heston")

    grid, ti, tf, fix = digital_arrays(records_of((100.0, 95.0)))
    good = dict(key0=1, key1=2, stream=0, n_paths=64, params=market, ti=ti, tf=tf, fix_idx=fix,
                payoff_grid=grid)
    base = np.full((2, G.N_QUANTITIES, G.N_ESTIMATORS), -1)
    base[0, G.PRICE, 0] = 0
    european = ti.copy()
    european[1, P.KIND] = P.EUROPEAN
    for kinds, g, e, params, message in (
            (european, G.DELTA, G.VIBRATO, market, "offered for digitals' delta and gamma"),
            (ti, G.RHO, G.VIBRATO, market, "offered for digitals' delta and gamma"),
            (ti, G.DELTA, G.OPTIMAL, market, "GBM only"),
            (ti, G.GAMMA, G.VIBRATO, dict(market, corr=-1.0), r"\|corr\| < 1")):
        slots = base.copy()
        slots[1, g, e] = 1
        with pytest.raises(ValueError, match=message):
            HP.run_heston(**dict(good, ti=kinds, params=params), slots=slots)


def _portfolio(kinds=("digital", "digital")):
    cash = [10.0 if k == "digital" else None for k in kinds]
    trades = pd.DataFrame({"trade_id": ["DC", "DP"], "underlying": "H", "payoff": list(kinds),
                           "option_type": ["call", "put"], "strike": [100.0, 95.0],
                           "maturity": [1.0, 1.0], "quantity": [2.0, -1.0], "cash": cash})
    market = pd.DataFrame([dict(underlying="H", model="heston", **SETS[0][1])])
    return trades, market


def test_auto_takes_the_lower_variance_candidate_and_vibrato_on_request():
    """auto's candidates for a Heston digital's delta and gamma are lr and vibrato, decided by
    the pilot's variance: lr at 252 steps a year (see the module docstring).  Asked for, vibrato
    is used and reported; asked for a European's delta it is an input error."""
    trades, market = _portfolio()
    kw = dict(n_paths=1 << 14, seed=3, steps_per_year=STEPS_PER_YEAR)
    auto = price_portfolio(trades, market, **kw)
    assert (auto["method_delta"] == "lr").all() and (auto["method_gamma"] == "lr").all()
    asked = price_portfolio(trades, market, method={"delta": "vibrato", "gamma": "vibrato"}, **kw)
    assert (asked["method_delta"] == "vibrato").all()
    assert (asked["method_gamma"] == "vibrato").all()
    assert (asked["delta_se"] > auto["delta_se"]).all()
    assert np.isfinite(asked[["delta", "gamma", "delta_se", "gamma_se"]].to_numpy()).all()
    with pytest.raises(InputError, match="vibrato is offered for digitals' delta and gamma"):
        price_portfolio(*_portfolio(("digital", "european")), method={"delta": "vibrato"}, **kw)


def test_bit_identical_across_threads_chunks_and_blocks():
    """Vibrato slots (and the pilot that weighs them under auto) give the same bits on 1 and 2
    threads and any chunking, with the zero-noise fallback busy (Andersen's case I)."""
    trades, market = _portfolio()
    market = pd.DataFrame([dict(underlying="H", model="heston", **ANDERSEN_1)])
    kw = dict(n_paths=5003, seed=11, steps_per_year=STEPS_PER_YEAR)
    methods = ("auto", "vibrato")
    with one_thread():
        one = [price_portfolio(trades, market, method=m, **kw) for m in methods]
        one_run = run(ANDERSEN_1, records_of((100.0, 90.0)), ("lr", "vibrato"), n_paths=3000,
                      seed=13, steps_per_year=STEPS_PER_YEAR)
    for m, reference in zip(methods, one):
        for other in (price_portfolio(trades, market, method=m, **kw),
                      price_portfolio(trades, market, method=m, chunk_paths=4096, block_paths=64,
                                      **kw)):
            numbers = other.select_dtypes("number").to_numpy()
            np.testing.assert_array_equal(numbers, reference.select_dtypes("number").to_numpy())
            assert other.filter(like="method_").equals(reference.filter(like="method_"))
            assert other.attrs["totals"] == reference.attrs["totals"]
    for options in ({}, dict(chunk_paths=640, block_paths=128)):
        assert run(ANDERSEN_1, records_of((100.0, 90.0)), ("lr", "vibrato"), n_paths=3000,
                   seed=13, steps_per_year=STEPS_PER_YEAR, **options) == one_run
