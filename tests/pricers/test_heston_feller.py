"""Heston error bars when the Feller condition fails (the light tier of
``benchmarks/heston_feller.py``, which runs the full seed study and the diagnosis).

The study prices one trade on each of 200 underlyings with identical parameters and different
names: a name keys its own random stream (``rng.name_key``), so these are 200 independent
Monte Carlo runs of one contract, each with its own pilot, in one ``price_portfolio`` call.
z = (estimate - Fourier reference) / SE over the runs; calibrated error bars give mean z ~ 0 and
std z ~ 1.  With 200 runs the standard error of mean z is 0.07 and that of std z about 0.05 for
normal z, so the acceptance bounds (|mean z| <= 0.3, std z in [0.85, 1.15]) sit 3-4 of them
away.  The reference is the model's exact value (``mcgreeks.analytic.heston``); QE's own
discretization bias at 16-64 steps a year is a small fraction of these runs' SEs (HESTON_BIAS.md).
"""
import pandas as pd
import pytest

import mcgreeks
from mcgreeks import greeks as G
from mcgreeks import underlying
from mcgreeks.analytic.heston import heston_european
from mcgreeks.estimators import validity

QUANTITIES = ("price", "delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
              "d_corr")
RUNS = 200
PATHS = 4096

#: Three Feller-violating cases (Feller ratio <= 0.1, corr from -0.9 to +0.3, maturities 0.5 to
#: 5 years) and one Feller-satisfying one, the benchmark's cases A-D: name -> (market parameters,
#: option, steps a year, paths).  B has 64 steps a year (32 steps in all), D more paths: enough
#: for every quantity to be resolved by each run.
CASES = {
    "A: 3y put, Feller 0.04, corr -0.9": (
        dict(spot=100.0, rate=0.02, div_yield=0.0, v0=0.04, kappa=0.5, vbar=0.04, xi=1.0,
             corr=-0.9), dict(strike=90.0, maturity=3.0, option_type="put"), 16, PATHS),
    "B: 0.5y call, Feller 0.10, corr -0.5": (
        dict(spot=100.0, rate=0.01, div_yield=0.0, v0=0.09, kappa=1.0, vbar=0.04, xi=0.9,
             corr=-0.5), dict(strike=100.0, maturity=0.5, option_type="call"), 64, PATHS),
    "C: 5y put, Feller 0.05, corr +0.3": (
        dict(spot=100.0, rate=0.03, div_yield=0.01, v0=0.02, kappa=0.3, vbar=0.05, xi=0.8,
             corr=0.3), dict(strike=110.0, maturity=5.0, option_type="put"), 16, PATHS),
    "D: 1y put, Feller 1.78": (
        dict(spot=100.0, rate=0.02, div_yield=0.0, v0=0.04, kappa=2.0, vbar=0.04, xi=0.3,
             corr=-0.7), dict(strike=100.0, maturity=1.0, option_type="put"), 32, 8 * PATHS),
}


def _runs(params, option, runs, n_paths, steps_per_year, seed=2026):
    """``runs`` independent runs of one contract (one underlying each) in one call."""
    names = [f"H{k:03d}" for k in range(runs)]
    trades = pd.DataFrame([dict(trade_id=n, underlying=n, payoff="european", **option)
                           for n in names])
    market = pd.DataFrame([dict(underlying=n, model="heston", **params) for n in names])
    return mcgreeks.price_portfolio(trades, market, n_paths=n_paths, seed=seed,
                                    steps_per_year=steps_per_year)


def _reference(params, option):
    return heston_european(spot=params["spot"], strike=option["strike"],
                           maturity=option["maturity"], rate=params["rate"],
                           div_yield=params["div_yield"], v0=params["v0"],
                           kappa=params["kappa"], vbar=params["vbar"], xi=params["xi"],
                           corr=params["corr"], is_call=option["option_type"] == "call")


@pytest.fixture(scope="module", params=list(CASES))
def study(request):
    params, option, steps_per_year, n_paths = CASES[request.param]
    return request.param, params, option, _runs(params, option, RUNS, n_paths, steps_per_year)


@pytest.mark.slow
def test_error_bars_are_calibrated_over_independent_runs(study):
    name, params, option, results = study
    exact = _reference(params, option)
    failures = []
    for q in QUANTITIES:
        se = results[q + "_se"]
        # the test means something only if each run resolves the quantity (SE below its size),
        # so that a bias of 30 % of the value moves mean z by more than the 0.3 allowed
        assert se.median() < abs(exact[q]), (name, q, se.median(), exact[q])
        z = (results[q] - exact[q]) / se
        if abs(z.mean()) > 0.3 or not 0.85 <= z.std(ddof=1) <= 1.15:
            failures.append(f"{q}: mean z {z.mean():+.2f}, std z {z.std(ddof=1):.2f} "
                            f"({results['method_' + q].iloc[0] if q != 'price' else 'mc'})")
    assert not failures, f"{name}: " + "; ".join(failures)


@pytest.mark.slow
def test_auto_avoids_pathwise_where_its_variance_is_infinite(study):
    name, params, option, results = study
    ratio = 2 * params["kappa"] * params["vbar"] / params["xi"] ** 2
    for q in ("theta", "d_v0", "d_kappa", "d_vbar", "d_xi"):
        expected = "fd" if ratio < validity.PATHWISE_FELLER[0] else "pathwise"
        assert (results["method_" + q] == expected).all(), (name, q)
    assert (results["method_d_corr"] == "pathwise").all()
    # their calibrated SEs carry no warning (the tail test's own noise aside)
    assert (results["warning"] == "").mean() > 0.95, results["warning"].value_counts()


@pytest.mark.slow
def test_standard_errors_fall_as_one_over_root_n():
    """Case A: the median SE over runs at 4,096 paths is 4x that at 65,536 (1/sqrt(N)), each
    quantity within 10 %."""
    params, option, steps_per_year, _ = CASES["A: 3y put, Feller 0.04, corr -0.9"]
    small = _runs(params, option, 40, PATHS, steps_per_year, seed=7)
    large = _runs(params, option, 4, 16 * PATHS, steps_per_year, seed=8)
    for q in QUANTITIES:
        ratio = small[q + "_se"].median() / large[q + "_se"].median()
        assert 3.6 <= ratio <= 4.4, (q, ratio)


def test_pathwise_asked_for_where_its_variance_is_infinite_carries_a_warning():
    """The estimator the issue measured (pathwise, case A, Feller ratio 0.04): the row says its
    SEs mean nothing for each of theta, d_v0 ... d_xi, never a silent ±.  The theory decides
    (``validity.infinite_variance``), not the run's tail test, which missed d_kappa and d_vbar
    on 3 of 12 seeds measured (six on 0.3.0's random numbers, six on 0.4.0's)."""
    params, option, steps_per_year, _ = CASES["A: 3y put, Feller 0.04, corr -0.9"]
    results = mcgreeks.price_portfolio(
        pd.DataFrame([dict(trade_id="A", underlying="A", payoff="european", **option)]),
        pd.DataFrame([dict(underlying="A", model="heston", **params)]), n_paths=1 << 16,
        seed=1, method="pathwise", steps_per_year=steps_per_year)
    warning = results.loc["A", "warning"]
    for q in ("theta", "d_v0", "d_kappa", "d_vbar", "d_xi"):
        assert results.loc["A", "method_" + q] == "pathwise"
        assert f"{q}_se uncertain: pathwise has an infinite variance" in warning, warning
    for q in ("price", "delta", "rho", "d_corr"):
        assert f"{q}_se uncertain" not in warning, warning


def test_the_same_warning_on_a_multi_asset_trade_names_the_leg():
    """A basket on a Feller-violating name (A, ratio 0.04) and a name well above (B, 3.6), every
    sensitivity by pathwise: A's d_v0 ... d_xi and the trade's theta (which reads every leg's
    variance path) carry the warning, B's and the rest do not; a single-asset trade on A in the
    same group keeps its own."""
    market = pd.DataFrame([
        dict(underlying="A", model="heston", spot=100.0, rate=0.02, div_yield=0.0, v0=0.04,
             kappa=0.5, vbar=0.04, xi=1.0, corr=-0.5),
        dict(underlying="B", model="heston", spot=100.0, rate=0.02, div_yield=0.0, v0=0.04,
             kappa=2.0, vbar=0.04, xi=0.3, corr=-0.5)])
    trades = pd.DataFrame([
        dict(trade_id="BK", underlying="A;B", payoff="basket", option_type="call", strike=100.0,
             maturity=1.0, quantity=1.0, weights="0.5;0.5"),
        dict(trade_id="SA", underlying="A", payoff="european", option_type="call", strike=100.0,
             maturity=1.0, quantity=1.0)])
    correlations = pd.DataFrame([dict(underlying_1="A", underlying_2="B", corr=0.3)])
    results = mcgreeks.price_portfolio(trades, market, n_paths=4096, seed=1, method="pathwise",
                                       correlations=correlations)
    basket, single = results.loc["BK", "warning"], results.loc["SA", "warning"]
    words = "_se uncertain: pathwise has an infinite variance below a Feller ratio of 0.5"
    for q in ("d_v0", "d_kappa", "d_vbar", "d_xi"):
        assert f"{q}:A{words} (here 0.04)" in basket, basket
        assert f"{q}:B_se uncertain" not in basket, basket
        assert f"{q}{words} (here 0.04)" in single, single
    assert f"theta{words} (here 0.04, A)" in basket, basket
    for q in ("delta:A", "delta:B", "d_corr:A", "rho"):
        assert f"{q}_se uncertain" not in basket, basket


# -- the pieces ----------------------------------------------------------------------------------

def test_auto_candidates_follow_the_feller_ratio():
    base = dict(spot=100.0, rate=0.0, div_yield=0.0, v0=0.04, kappa=1.0, vbar=0.04, corr=-0.5)
    european = 0
    for xi, expected in ((1.0, (G.FD,)), (0.35, (G.PATHWISE, G.FD)), (0.2, (G.PATHWISE,))):
        params = dict(base, xi=xi)           # Feller ratios 0.08, 0.65, 2
        auto = lambda g: validity.auto_candidates(validity.HESTON, european, g,  # noqa: E731
                                                  False, params)
        for g in (G.THETA, G.D_V0, G.D_KAPPA, G.D_VBAR, G.D_XI):
            assert auto(g) == expected, (xi, g)
        assert auto(G.D_CORR) == (G.PATHWISE,)
        assert auto(G.DELTA) == (G.PATHWISE, G.LR)


def test_the_pilot_takes_no_candidate_that_fails_the_tail_test():
    pw, fd = G.PATHWISE, G.FD
    limit = underlying.PILOT_TAIL_LIMIT
    # pathwise has the smaller SE but fails the test: fd
    assert underlying.decide((pw, fd), {pw: 0.1, fd: 0.5}, {pw: 2 * limit, fd: 0.01}) == fd
    # both pass: the smaller SE
    assert underlying.decide((pw, fd), {pw: 0.1, fd: 0.5}, {pw: 0.01, fd: 0.01}) == pw
    assert underlying.decide((pw, fd), {pw: 0.5, fd: 0.1}, {pw: 0.01, fd: 0.01}) == fd
    # neither passes: fd, whose quotient is bounded path by path
    assert underlying.decide((pw, fd), {pw: 0.1, fd: 0.5}, {pw: 1.0, fd: 1.0}) == fd
    assert underlying.decide((pw, G.LR), {pw: 0.3, G.LR: 0.2}, {pw: 1.0, G.LR: 1.0}) == G.LR


def test_a_payoff_with_infinite_variance_is_flagged():
    """A 5-year call with corr = +0.3 and xi = 0.8 has E[S_T^2] infinite (the Riccati equation
    of E[S_T^2] blows up at 2.5 years, Andersen & Piterbarg 2007, §3): the tail test finds its
    price SE far less certain than the put's on the same paths (bounded), by 22-100x over 12
    seeds measured (six on 0.3.0's random numbers, six on 0.4.0's), and the put's is not
    flagged.  Whether the call's crosses WARN_TAIL_LIMIT and gets its warning is luck at this
    size (it did on 6 of those 12 seeds): a sample's tail test cannot see an infinite variance
    every time."""
    params, _, steps_per_year, _ = CASES["C: 5y put, Feller 0.05, corr +0.3"]
    trades = pd.DataFrame([dict(trade_id=t, underlying="X", payoff="european", strike=110.0,
                                maturity=5.0, option_type=t) for t in ("call", "put")])
    market = pd.DataFrame([dict(underlying="X", model="heston", **params)])
    results, diagnostics = mcgreeks.price_portfolio(trades, market, n_paths=1 << 17, seed=3,
                                                    steps_per_year=steps_per_year,
                                                    method={"delta": "pathwise"},
                                                    diagnostics=True)
    call = diagnostics.loc[("call", "price"), "se_uncertainty"]
    put = diagnostics.loc[("put", "price"), "se_uncertainty"]
    assert call > 10 * put
    assert ("price_se uncertain" in results.loc["call", "warning"]) == (
        call > underlying.WARN_TAIL_LIMIT)
    assert "price_se" not in results.loc["put", "warning"]
    assert diagnostics.loc[("put", "price"), "se_uncertainty"] < 0.02
