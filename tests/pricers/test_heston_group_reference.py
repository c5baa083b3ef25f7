"""The NumPy group reference (``heston_group_reference``) against closed forms: Margrabe's exchange
option on two correlated GBM names (price and every finite-difference Greek), the Heston
semi-analytic European for a one-name Heston basket (price, and every Greek against the same
difference quotient of the closed form), and the instantaneous correlations of one-step
increments.  Fixed seeds; every comparison is within 4 standard errors (plus, for Heston, a
stated allowance for the Euler scheme's bias), and each SE is checked to be small enough for the
comparison to mean something."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from mcgreeks.analytic.heston import heston_european
from mcgreeks.models.heston import simulation_grid
from pricers.heston_group_reference import (DEFAULT_SIZES, basket_values, grid,
                                            price_and_greeks, terminal_log_spots)


# ------------------------------------------------------------------------------------------------
# (1) two GBM names: the exchange option (spread, K = 0) against Margrabe
# ------------------------------------------------------------------------------------------------

def margrabe(s1, s2, q1, q2, vol1, vol2, rho, T):
    """Margrabe (1978), "The value of an option to exchange one asset for another", J. Finance
    33(1): max(S1(T) - S2(T), 0) is worth S1 e^{-q1 T} N(d1) - S2 e^{-q2 T} N(d2) with
    sigma^2 = vol1^2 + vol2^2 - 2 rho vol1 vol2, d1 = (ln(S1/S2) + (q2 - q1 + sigma^2/2) T)
    / (sigma sqrt T), d2 = d1 - sigma sqrt T (no dependence on the rate)."""
    sigma = math.sqrt(vol1 ** 2 + vol2 ** 2 - 2 * rho * vol1 * vol2)
    d1 = (math.log(s1 / s2) + (q2 - q1 + 0.5 * sigma ** 2) * T) / (sigma * math.sqrt(T))
    d2 = d1 - sigma * math.sqrt(T)
    return s1 * math.exp(-q1 * T) * norm.cdf(d1) - s2 * math.exp(-q2 * T) * norm.cdf(d2)


GBM_PAIR = [dict(model="gbm", spot=100.0, rate=0.03, div_yield=0.01, vol=0.25),
            dict(model="gbm", spot=95.0, rate=0.03, div_yield=0.02, vol=0.30)]
GBM_CORR = 0.4
GBM_T = 1.0


def _margrabe_quotient(measure):
    """The closed form's difference quotient for ``measure``, with the reference's sizes."""
    a, b = GBM_PAIR
    base = dict(s1=a["spot"], s2=b["spot"], q1=a["div_yield"], q2=b["div_yield"],
                vol1=a["vol"], vol2=b["vol"], rho=GBM_CORR, T=GBM_T)

    def V(**changes):
        return margrabe(**{**base, **changes})

    s = DEFAULT_SIZES
    kind = measure[0]
    if kind == "price":
        return V()
    if kind == "rho":
        return 0.0
    if kind == "theta":
        h = s["maturity"]
        return -(V(T=GBM_T * (1 + h)) - V(T=GBM_T * (1 - h))) / (2 * h * GBM_T)
    if kind == "d_pair_corr":
        h = s["pair_corr"]
        return (V(rho=GBM_CORR + h) - V(rho=GBM_CORR - h)) / (2 * h)
    if kind == "cross_gamma":
        h = s["cross_gamma"]
        s1, s2 = base["s1"], base["s2"]
        corners = sum(i * j * V(s1=s1 * (1 + i * h), s2=s2 * (1 + j * h))
                      for i in (1, -1) for j in (1, -1))
        return corners / (4 * h * s1 * h * s2)
    key = ("s1", "s2")[measure[1]] if kind in ("delta", "gamma") else ("vol1", "vol2")[measure[1]]
    x = base[key]
    h = s[kind] * x
    if kind == "gamma":
        return (V(**{key: x + h}) - 2 * V() + V(**{key: x - h})) / h ** 2
    return (V(**{key: x + h}) - V(**{key: x - h})) / (2 * h)


def test_exchange_option_matches_margrabe():
    measures = [("price",), ("delta", 0), ("delta", 1), ("gamma", 0), ("gamma", 1),
                ("cross_gamma", 0, 1), ("vega", 0), ("vega", 1), ("d_pair_corr", 0, 1),
                ("rho",), ("theta",)]
    corr = [[1.0, GBM_CORR], [GBM_CORR, 1.0]]
    # 12 steps a year: GBM is exact on any grid, this exercises the step loop and its scaling
    res = price_and_greeks(GBM_PAIR, corr, [1.0, 1.0], "spread", "call", 0.0, GBM_T, 12,
                           2 ** 18, 20240601, measures)
    failures = []
    for measure in measures:
        est, se = res[measure]
        ref = _margrabe_quotient(measure)
        if measure == ("rho",):
            # the payoff is homogeneous of degree 1 in the spots: the rate cancels path by path
            if abs(est) > 1e-9:
                failures.append(f"rho {est:.3g} not 0")
            continue
        limit = 0.01 if measure == ("price",) else 0.02
        if not se < limit * abs(ref):
            failures.append(f"{measure}: se {se:.3g} not below {limit:.0%} of {ref:.6g}")
        if abs(est - ref) > 4 * se:
            failures.append(f"{measure}: mc {est:.6g} ref {ref:.6g} se {se:.3g}")
    assert not failures, "\n".join(failures)


def test_basket_values_are_the_price_paths():
    """basket_values' mean is price_and_greeks' price on the same seed (the same paths)."""
    corr = [[1.0, GBM_CORR], [GBM_CORR, 1.0]]
    values = basket_values(GBM_PAIR, corr, [1.0, 1.0], "spread", "call", 0.0, GBM_T, 12,
                           5000, 3)
    res = price_and_greeks(GBM_PAIR, corr, [1.0, 1.0], "spread", "call", 0.0, GBM_T, 12,
                           5000, 3, [("price",)])
    assert values.shape == (5000,)
    assert res[("price",)][0] == pytest.approx(values.mean(), rel=1e-12)
    assert res[("price",)][1] == pytest.approx(values.std(ddof=1) / math.sqrt(5000), rel=1e-9)


# ------------------------------------------------------------------------------------------------
# (2) one Heston name as a basket of one: the semi-analytic European
# ------------------------------------------------------------------------------------------------

HESTON = dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.04, kappa=2.0, vbar=0.04, xi=0.3,
              corr=-0.7)     # Feller ratio 2 kappa vbar / xi^2 = 1.78

#: Allowance for full-truncation Euler's weak bias on these parameters, T = 1, K = 100, at 200
#: steps a year.  Measured with this module (2^21 paths, the terminal spot as a control variate,
#: call and put alike since the log-spot scheme is an exact martingale): MC - Heston price =
#: +0.081 (4 steps a year), +0.0167 (10), +0.0061 ± 0.0020 (25), +0.0020 ± 0.0039 (200).  The
#: coarse grids follow ~0.16 / steps, i.e. ~0.001 at 200; the allowance takes five times that
#: (0.06 % of the price; the test's 4 SE is about 0.09).
EULER_PRICE_ALLOWANCE = 0.005


@pytest.mark.parametrize("option_type", ["call", "put"])
def test_heston_european_price(option_type):
    strike, T = 100.0, 1.0
    values = basket_values([dict(model="heston", **HESTON)], [[1.0]], [1.0], "basket",
                           option_type, strike, T, 200, 2 ** 18, 7)
    est, se = values.mean(), values.std(ddof=1) / math.sqrt(values.size)
    ref = heston_european(strike=strike, maturity=T, is_call=option_type == "call",
                          **HESTON)["price"]
    assert se < 0.01 * ref, (se, ref)
    assert abs(est - ref) <= 4 * se + EULER_PRICE_ALLOWANCE, (est, ref, se)


#: Greeks at 100 steps a year.  Measured (2^21 paths, K = 110 call) against the closed form's
#: quotients: every difference within 2 of its SE, |difference| <= 0.3 % of the value (d_v0:
#: +0.11 ± 0.056 on 40.9; d_corr +0.0016 ± 0.0047 on 0.954; theta -0.0003 ± 0.005 on -4.24).
#: The allowance is 0.5 % of the value; the test's 4 SE is 1.5-8 % of it.
EULER_GREEK_ALLOWANCE = 0.005


def _heston_quotient(measure, strike, T, is_call):
    """The closed form's difference quotient for ``measure``, with the reference's sizes."""
    def V(**changes):
        p = {**HESTON, **changes}
        maturity = p.pop("maturity", T)
        return heston_european(strike=strike, maturity=maturity, is_call=is_call, **p)["price"]

    s = DEFAULT_SIZES
    kind = measure[0]
    if kind == "price":
        return V()
    if kind == "theta":
        h = s["maturity"]
        return -(V(maturity=T * (1 + h)) - V(maturity=T * (1 - h))) / (2 * h * T)
    if kind == "gamma":
        h = s["gamma"] * HESTON["spot"]
        return (V(spot=HESTON["spot"] + h) - 2 * V() + V(spot=HESTON["spot"] - h)) / h ** 2
    name = {"delta": "spot", "rho": "rate", "d_corr": "corr"}.get(kind, kind[2:])
    size = {"delta": "delta", "rho": "rate", "d_corr": "corr"}.get(kind, kind[2:])
    h = s[size] if size in ("rate", "corr") else s[size] * HESTON[name]
    return (V(**{name: HESTON[name] + h}) - V(**{name: HESTON[name] - h})) / (2 * h)


def test_heston_greeks_match_closed_form_quotients():
    strike, T = 110.0, 1.0
    measures = [("price",), ("delta", 0), ("gamma", 0), ("d_v0", 0), ("d_kappa", 0),
                ("d_vbar", 0), ("d_xi", 0), ("d_corr", 0), ("rho",), ("theta",)]
    res = price_and_greeks([dict(model="heston", **HESTON)], [[1.0]], [1.0], "basket", "call",
                           strike, T, 100, 2 ** 17, 99, measures)
    failures = []
    for measure in measures:
        est, se = res[measure]
        ref = _heston_quotient(measure, strike, T, True)
        # the vol-of-vol, mean-reversion and correlation sensitivities are small and noisy
        limit = 0.025 if measure[0] in ("d_kappa", "d_xi", "d_corr") else 0.01
        if not se < limit * abs(ref):
            failures.append(f"{measure}: se {se:.3g} not below {limit:.1%} of {ref:.6g}")
        if abs(est - ref) > 4 * se + EULER_GREEK_ALLOWANCE * abs(ref):
            failures.append(f"{measure}: mc {est:.6g} ref {ref:.6g} se {se:.3g}")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------
# (3) the instantaneous correlations, from one-step increments
# ------------------------------------------------------------------------------------------------

def _assert_correlations(dx, dv, expected, n):
    """Each expected correlation ((kind, a), (kind, b)) -> value within 4 Fisher SEs: atanh of
    the sample correlation is ~Normal(atanh(rho), 1 / (n - 3)) for Gaussian pairs."""
    rows = {"S": dx, "v": dv}
    se = 1.0 / math.sqrt(n - 3)
    failures = []
    for ((ka, a), (kb, b)), value in expected.items():
        r = np.corrcoef(rows[ka][a], rows[kb][b])[0, 1]
        if abs(math.atanh(r) - math.atanh(value)) > 4 * se:
            failures.append(f"corr({ka}{a}, {kb}{b}) = {r:.4f}, expected {value:.4f}")
    assert not failures, "\n".join(failures)


def test_one_step_correlations_of_two_heston_names():
    rho1, rho2, r12 = -0.7, -0.3, 0.6
    members = [dict(model="heston", **{**HESTON, "corr": rho1}),
               dict(model="heston", **{**HESTON, "spot": 50.0, "v0": 0.09, "corr": rho2})]
    T, n = 1.0 / 250, 2 ** 18
    assert grid(T, 1).size == 1                     # one step: T itself
    log_s, v = terminal_log_spots(members, [[1.0, r12], [r12, 1.0]], T, 1, n, 5,
                                  return_variance=True)
    dx = log_s - np.log([[m["spot"]] for m in members])
    dv = v - np.array([[m["v0"]] for m in members])
    _assert_correlations(dx, dv, {
        (("S", 0), ("S", 1)): r12,
        (("S", 0), ("v", 0)): rho1,
        (("S", 1), ("v", 1)): rho2,
        (("v", 0), ("v", 1)): rho1 * rho2 * r12,     # 0.126
        (("S", 0), ("v", 1)): rho2 * r12,
        (("S", 1), ("v", 0)): rho1 * r12,
    }, n)


def test_one_step_correlations_of_a_mixed_group():
    """Heston, Heston, GBM: the GBM member's variance stays vol^2 exactly and its spot is
    correlated with the others' spots by R and with their variances by rho_a R."""
    rho1, rho2 = -0.7, 0.4
    R = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, -0.2], [0.3, -0.2, 1.0]])
    members = [dict(model="heston", **{**HESTON, "corr": rho1}),
               dict(model="heston", **{**HESTON, "corr": rho2}),
               dict(model="gbm", spot=80.0, rate=HESTON["rate"], div_yield=0.0, vol=0.35)]
    T, n = 1.0 / 250, 2 ** 17
    log_s, v = terminal_log_spots(members, R, T, 1, n, 6, return_variance=True)
    assert np.all(v[2] == 0.35 ** 2)
    dx = log_s - np.log([[m["spot"]] for m in members])
    dv = v - np.array([[HESTON["v0"]], [HESTON["v0"]], [0.35 ** 2]])
    _assert_correlations(dx, dv, {
        (("S", 0), ("S", 1)): R[0, 1], (("S", 0), ("S", 2)): R[0, 2],
        (("S", 1), ("S", 2)): R[1, 2],
        (("S", 2), ("v", 0)): rho1 * R[0, 2], (("S", 2), ("v", 1)): rho2 * R[1, 2],
        (("v", 0), ("v", 1)): rho1 * rho2 * R[0, 1],
    }, n)
    # the GBM member's one step is exact: ln S increment ~ N((r - q - vol^2/2) T, vol^2 T)
    mean, sd = (HESTON["rate"] - 0.5 * 0.35 ** 2) * T, 0.35 * math.sqrt(T)
    assert abs(dx[2].mean() - mean) < 4 * sd / math.sqrt(n)
    assert abs(dx[2].std() / sd - 1) < 4 / math.sqrt(2 * n)


# ------------------------------------------------------------------------------------------------
# the grid and the common random numbers
# ------------------------------------------------------------------------------------------------

def test_grid_and_common_random_numbers():
    assert np.array_equal(grid(1.3, 4), simulation_grid([1.3], 4))
    assert np.array_equal(grid(1.3, 4, 1.1), 1.1 * simulation_grid([1.3], 4))
    members = [dict(model="heston", **HESTON), GBM_PAIR[0]]
    corr = [[1.0, 0.5], [0.5, 1.0]]
    base = terminal_log_spots(members, corr, 0.5, 52, 3000, 11)
    moved = [dict(members[0], xi=0.5), members[1]]
    both = terminal_log_spots(members, corr, 0.5, 52, 3000, 11,
                              bumps=[{}, {"members": moved}, {"scale": 1.1}])
    assert both.shape == (3, 2, 3000)
    assert np.array_equal(both[0], base)
    # a separate call with the bumped members draws the same numbers
    assert np.array_equal(both[1], terminal_log_spots(moved, corr, 0.5, 52, 3000, 11))
    # xi does not move the GBM member; the grid scale does
    assert np.array_equal(both[1][1], base[1]) and not np.array_equal(both[2][1], base[1])
