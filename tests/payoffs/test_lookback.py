"""The fixed-strike lookback through the whole engine, the payoff added by the payoff module alone.

Under GBM against the exact discretely monitored price and Greeks
(``analytic.lookback.lookback_discrete``, recursive quadrature, checked in tests/analytic against
Haug's tables, QuantLib and an independent Monte Carlo) for every valid estimator, within 4 SE;
against the continuous closed form with the Broadie–Glasserman–Kou shift where that shift is
accurate to well under an SE; the sample maximum never below the sample's final spot.  Under
Heston, which has no closed form: every offered estimator against bump-and-revalue on the same
paths, and the price on the default weekly grid against its own fine-grid limit.
"""
import numpy as np
import pandas as pd
import pytest

from mc_checks import MEANINGFUL, assert_within_4se, natural_scale
from mcgreeks import price_portfolio
from mcgreeks.analytic import lookback as lb
from mcgreeks.analytic.heston import heston_european

GREEKS = ("delta", "gamma", "vega", "rho", "theta")
FIRST_ORDER = ("delta", "vega", "rho", "theta")

MARKET = pd.DataFrame([
    dict(underlying="LB1", model="gbm", spot=100.0, rate=0.03, div_yield=0.01, vol=0.25),
    dict(underlying="LB2", model="gbm", spot=42.0, rate=-0.01, div_yield=0.02, vol=0.4),
    dict(underlying="LB3", model="gbm", spot=1500.0, rate=0.06, div_yield=0.0, vol=0.15)])
MATURITY = {"LB1": 1.0, "LB2": 0.5, "LB3": 2.0}


def _trades(fixings):
    """Calls and puts on each underlying, strikes either side of the spot, per fixing count."""
    rows = []
    for m in MARKET.itertuples():
        sd = m.vol * np.sqrt(MATURITY[m.underlying])
        for n in fixings:
            for option_type, k in (("call", 0.3), ("call", -0.2), ("put", -0.3), ("put", 0.2)):
                rows.append(dict(trade_id=f"{m.underlying}-{option_type}{k:+.1f}-n{n}",
                                 underlying=m.underlying, payoff="lookback",
                                 option_type=option_type, maturity=MATURITY[m.underlying],
                                 strike=round(m.spot * np.exp(k * sd), 4), n_fixings=n))
    return pd.DataFrame(rows)


TRADES = _trades((4, 12, 52))
#: Likelihood ratio scores the first increment, of length T/n: its variance grows like n², so
#: it is checked where that is workable (as for Asians).
TRADES_FEW = _trades((2, 4))


def _params(trades):
    return trades.merge(MARKET, on="underlying").set_index("trade_id")


def _exact(trades, formula=lb.lookback_discrete):
    p = _params(trades)
    out = formula(spot=p.spot.to_numpy(), strike=p.strike.to_numpy(),
                  maturity=p.maturity.to_numpy(), rate=p.rate.to_numpy(), vol=p.vol.to_numpy(),
                  div_yield=p.div_yield.to_numpy(), n_fixings=p.n_fixings.to_numpy(),
                  is_call=(p.option_type == "call").to_numpy())
    return pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in out.items()}, index=p.index)


def _scale(trades):
    return natural_scale(_params(trades))


@pytest.fixture(scope="module")
def runs():
    direct = dict.fromkeys(FIRST_ORDER, "pathwise") | {"gamma": "mixed"}
    return {"auto": price_portfolio(TRADES, MARKET, n_paths=200_000, seed=21),
            "pathwise": price_portfolio(TRADES, MARKET, n_paths=100_000, seed=22, method=direct),
            "lr": price_portfolio(TRADES_FEW, MARKET, n_paths=300_000, seed=23, method="lr")}


def test_auto_blends_pathwise_and_lr_and_matches_the_discrete_price(runs):
    result = runs["auto"]
    assert_within_4se(result, _exact(TRADES), _scale(TRADES), ("price",) + GREEKS, "optimal")


@pytest.mark.slow
def test_pathwise_and_mixed_gamma(runs):
    """Mixed gamma differentiates the pathwise delta through the score of the first increment,
    of length T/n: with 52 fixings its variance needs more paths than this run (the optimal
    blend of the auto run does not), so it is checked up to 12."""
    result = runs["pathwise"]
    assert_within_4se(result, _exact(TRADES), _scale(TRADES), ("price",) + FIRST_ORDER,
                      "pathwise")
    few = TRADES[TRADES.n_fixings <= 12]
    assert_within_4se(result.loc[few.trade_id], _exact(few), _scale(few), ("gamma",), "mixed")


@pytest.mark.slow
def test_likelihood_ratio(runs):
    assert_within_4se(runs["lr"], _exact(TRADES_FEW), _scale(TRADES_FEW), ("price",) + GREEKS,
                      "lr")


def test_pathwise_is_refused_for_gamma_and_vibrato_for_a_lipschitz_payoff():
    one = TRADES.iloc[:1]
    for method in ({"gamma": "pathwise"}, {"delta": "vibrato"}):
        with pytest.raises(ValueError, match="lookback"):
            price_portfolio(one, MARKET, n_paths=1024, method=method)


@pytest.mark.slow
def test_bgk_shifted_continuous_price_where_the_shift_is_accurate():
    """With 252 fixings the BGK-shifted continuous closed form is within half an SE of the
    exact discrete price (asserted: BGK's own error falls like 1/n, and at 52 fixings it is
    still about an SE of this run), so the engine must match it within 4 SE too."""
    trades = _trades((252,))
    result = price_portfolio(trades, MARKET, n_paths=100_000, seed=24, greeks="none")
    bgk = _exact(trades, lb.lookback_discrete_bgk)
    exact = _exact(trades)
    assert ((bgk.price - exact.price).abs() < result.price_se / 2).all()
    assert_within_4se(result, bgk, _scale(trades), ("price",), None)


def test_the_maximum_is_at_least_the_terminal_spot():
    """On every path max_i S_i >= S_T >= min_i S_i, so a lookback call is worth at least the
    European call and a lookback put at least the European put of the same strike, and with
    one fixing they are the same payoff: equal to the bit on the same paths."""
    market = MARKET.iloc[:1]
    rows = []
    for option_type in ("call", "put"):
        for payoff, n in (("lookback", 12), ("european", None), ("lookback", 1)):
            rows.append(dict(trade_id=f"{payoff}-{option_type}-{n}", underlying="LB1",
                             payoff=payoff, option_type=option_type, strike=100.0,
                             maturity=1.0, n_fixings=n))
    result = price_portfolio(pd.DataFrame(rows), market, n_paths=8192, seed=3, greeks="none")
    for option_type in ("call", "put"):
        look, euro = result.price[f"lookback-{option_type}-12"], result.price[
            f"european-{option_type}-None"]
        assert look > euro
        assert result.price[f"lookback-{option_type}-1"] == euro


# -- under Heston --------------------------------------------------------------------------------

HESTON = pd.DataFrame([dict(underlying="HL", model="heston", spot=100.0, rate=0.02,
                            div_yield=0.0, v0=0.04, kappa=1.5, vbar=0.05, xi=0.4, corr=-0.6)])
HESTON_TRADES = pd.DataFrame([
    dict(trade_id="call", underlying="HL", payoff="lookback", option_type="call", strike=105.0,
         maturity=1.0, n_fixings=4),
    dict(trade_id="put", underlying="HL", payoff="lookback", option_type="put", strike=95.0,
         maturity=1.0, n_fixings=4)])
HESTON_GREEKS = ("delta", "gamma", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
                 "d_corr")


def _heston_sizes():
    """Per quantity, the largest |value| of a European on the same market over strikes from 0.7
    to 1.3 of the spot (``analytic.heston``): the natural size a sensitivity is judged by."""
    m = HESTON.iloc[0]
    values = [heston_european(spot=m.spot, strike=k * m.spot, maturity=1.0, rate=m.rate,
                              div_yield=m.div_yield, v0=m.v0, kappa=m.kappa, vbar=m.vbar,
                              xi=m.xi, corr=m["corr"], is_call=call)
              for k in (0.7, 0.85, 1.0, 1.15, 1.3) for call in (True, False)]
    return {g: max(abs(v[g]) for v in values) for g in HESTON_GREEKS}


@pytest.mark.slow
def test_heston_estimators_agree_with_bump_and_revalue():
    """Pathwise first-order sensitivities, mixed and lr gamma, lr delta: each within 4 SE (both
    SEs added) of fd on paths of its own seed; those 4 SE under a tenth of the natural size
    (twice MEANINGFUL: two estimators' errors).  Four fixings: the scores of lr and mixed are
    those of the first increment, whose variance grows with the fixings."""
    fd = price_portfolio(HESTON_TRADES, HESTON, n_paths=800_000, seed=31, method="fd")
    direct = dict.fromkeys(("delta", "rho", "theta", "d_v0", "d_kappa", "d_vbar", "d_xi",
                            "d_corr"), "pathwise") | {"gamma": "mixed"}
    runs = [price_portfolio(HESTON_TRADES, HESTON, n_paths=800_000, seed=32, method=direct),
            price_portfolio(HESTON_TRADES, HESTON, n_paths=2_400_000, seed=33,
                            method={"delta": "lr", "gamma": "lr"}, greeks="delta,gamma")]
    size = _heston_sizes()
    failures = []
    for result in runs:
        for g in [c for c in HESTON_GREEKS if c in result]:
            for tid in result.index:
                got, se = result.at[tid, g], result.at[tid, g + "_se"]
                ref, ref_se = fd.at[tid, g], fd.at[tid, g + "_se"]
                if abs(got - ref) > 4 * (se + ref_se):
                    failures.append(f"{tid} {g} {result.at[tid, 'method_' + g]}: {got:.6g} ± "
                                    f"{se:.3g} vs fd {ref:.6g} ± {ref_se:.3g}")
                if 4 * (se + ref_se) > 2 * MEANINGFUL * size[g]:
                    failures.append(f"{tid} {g}: too loose to mean anything ({se:.3g}, "
                                    f"{ref_se:.3g} against a natural size {size[g]:.3g})")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_heston_price_reaches_its_fine_grid_limit():
    """The weekly grid's price within 4 SE (both added) of a grid eight times finer, on
    independent paths: QE's discretization bias at weekly steps is a fraction of an SE here."""
    coarse = price_portfolio(HESTON_TRADES, HESTON, n_paths=400_000, seed=34, greeks="none")
    fine = price_portfolio(HESTON_TRADES, HESTON, n_paths=400_000, seed=35, greeks="none",
                           steps_per_year=416)
    gap = (coarse.price - fine.price).abs()
    assert (gap <= 4 * (coarse.price_se + fine.price_se)).all(), (coarse.price, fine.price)
    assert (4 * coarse.price_se < 0.01 * coarse.price).all()
