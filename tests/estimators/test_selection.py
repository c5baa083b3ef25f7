"""Estimator selection (``mcgreeks.estimators.selection``) directly: the ``greeks`` and ``method``
arguments' parsing, and the per-trade choices against the validity table
(``estimators.validity``) and the model registry (``mcgreeks.models``) as they stand."""
import pytest

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.estimators import validity
from mcgreeks.estimators.selection import ALL_GREEKS, choices, greek_plan, method_plan
from mcgreeks.models import MODELS
from mcgreeks.validation import InputError

GBM_PARAMS = dict(model="gbm", spot=100.0, rate=0.03, div_yield=0.01, vol=0.2)
#: Heston parameters by Feller ratio 2 κ v̄ / ξ²: 2 (pathwise trusted), 0.65 (a pilot decides
#: between pathwise and fd), 0.08 (fd).
HESTON_BASE = dict(model="heston", spot=100.0, rate=0.02, div_yield=0.0, v0=0.04, kappa=1.0,
                   vbar=0.04, corr=-0.5)
HESTON = {ratio: dict(HESTON_BASE, xi=xi) for ratio, xi in ((2.0, 0.2), (0.65, 0.35),
                                                           (0.08, 1.0))}
#: The Heston Greeks whose pathwise estimator follows the variance path's flow (the tail rule).
FLOW_GREEKS = (G.THETA, G.D_V0, G.D_KAPPA, G.D_VBAR, G.D_XI)


def record(payoff="european", option_type="call", trade_id="T1", **extra):
    return dict(trade_id=trade_id, underlying="X", payoff=payoff, option_type=option_type,
                strike=100.0, maturity=1.0, quantity=1.0, cash=1.0, **extra)


def code(name):
    return G.QUANTITIES.index(name)


# -- greek_plan ------------------------------------------------------------------------------------

def test_greek_plan_all_and_none():
    assert greek_plan("all") == tuple(range(1, G.N_QUANTITIES + 2))
    assert greek_plan("cross_gamma,delta") == (G.DELTA, G.CROSS_GAMMA)
    assert greek_plan(" ALL ") == ALL_GREEKS
    assert greek_plan("none") == ()


def test_greek_plan_names_come_back_in_column_order():
    assert greek_plan(["rho", "delta"]) == (G.DELTA, G.RHO)
    assert greek_plan("d_xi, Vega,delta") == (G.DELTA, G.VEGA, G.D_XI)
    assert greek_plan(("theta", "theta")) == (G.THETA,)
    assert greek_plan([]) == ()


def test_greek_plan_names_a_bad_greek_and_lists_the_valid_ones():
    with pytest.raises(InputError) as err:
        greek_plan("delta,veg")
    message = str(err.value)
    assert "'veg'" in message
    for name in G.GREEKS:
        assert name in message
    with pytest.raises(InputError, match="'price'"):
        greek_plan(["price"])                    # the price is always computed, not a Greek
    with pytest.raises(InputError, match="greeks has value 3"):
        greek_plan(3)


# -- method_plan -----------------------------------------------------------------------------------

def test_method_plan_auto_and_one_name():
    assert method_plan("auto") == ("auto", {})
    assert method_plan("Pathwise") == ("pathwise", {})
    for name in G.ESTIMATORS:
        assert method_plan(name) == (name, {})
    with pytest.raises(InputError) as err:
        method_plan("bump")
    assert "'bump'" in str(err.value) and all(e in str(err.value) for e in G.ESTIMATORS)


def test_method_plan_per_greek():
    assert method_plan({"delta": "LR", "gamma": "mixed", "vega": "auto"}) == (
        "auto", {G.DELTA: "lr", G.GAMMA: "mixed", G.VEGA: "auto"})
    with pytest.raises(InputError, match="unknown Greek 'delt'"):
        method_plan({"delt": "lr"})
    with pytest.raises(InputError, match=r"method\['delta'\] = 'bump'"):
        method_plan({"delta": "bump"})


def test_method_plan_refuses_a_method_for_a_greek_not_asked():
    assert method_plan({"delta": "lr"}, asked=(G.DELTA,)) == ("auto", {G.DELTA: "lr"})
    with pytest.raises(InputError, match="vega, which greeks does not ask for"):
        method_plan({"delta": "lr", "vega": "lr"}, asked=(G.DELTA,))
    with pytest.raises(InputError, match="delta"):
        method_plan({"delta": "lr"}, asked=())


# -- choices ---------------------------------------------------------------------------------------

def test_auto_takes_optimal_for_every_gbm_greek_where_it_is_offered():
    """Under GBM a European, an Asian, a lookback and a digital have two unbiased non-fd
    estimators of every Greek, so auto takes their optimal blend (a single code: no pilot)."""
    plan = method_plan("auto")
    for payoff in ("european", "asian_arithmetic", "lookback", "digital"):
        picks = choices(record(payoff, n_fixings=4), plan, "gbm", GBM_PARAMS)
        assert picks == dict.fromkeys(MODELS["gbm"].greeks, G.OPTIMAL), payoff


def test_auto_takes_the_one_estimator_left():
    """A discrete barrier's vega, rho and theta have lr alone besides fd: auto takes lr."""
    picks = choices(record("barrier", barrier=120.0, barrier_type="up_out", n_fixings=12),
                    method_plan("auto"), "gbm", GBM_PARAMS)
    assert picks[G.DELTA] == picks[G.GAMMA] == G.OPTIMAL
    assert picks[G.VEGA] == picks[G.RHO] == picks[G.THETA] == G.LR


def test_sobol_keeps_the_candidates_for_its_pilot():
    """With sobol the optimal blend's Monte Carlo weights are no guide: auto keeps every
    candidate (validity.auto_candidates) for a Sobol pilot."""
    r = record()
    picks = choices(r, method_plan("auto"), "gbm", GBM_PARAMS, sampler="sobol")
    for g in MODELS["gbm"].greeks:
        expected = validity.auto_candidates(validity.GBM, P.EUROPEAN, g, False, GBM_PARAMS)
        assert picks[g] == expected
        assert G.OPTIMAL in expected and len(expected) > 1 and G.FD not in expected


def test_heston_candidates_follow_the_feller_band():
    """Under Heston (no optimal blend) auto keeps a tuple wherever two estimators remain, for a
    pilot to decide: pathwise and lr for delta; for the variance-flow Greeks pathwise alone above
    the band, pathwise and fd inside it, fd below it."""
    plan = method_plan("auto")
    expected_flow = {2.0: G.PATHWISE, 0.65: (G.PATHWISE, G.FD), 0.08: G.FD}
    for ratio, params in HESTON.items():
        picks = choices(record(), plan, "heston", params)
        assert set(picks) == set(MODELS["heston"].greeks)
        assert picks[G.DELTA] == (G.PATHWISE, G.LR)
        assert picks[G.GAMMA] == (G.MIXED, G.LR)
        assert picks[G.D_CORR] == G.PATHWISE
        for g in FLOW_GREEKS:
            assert picks[g] == expected_flow[ratio], (ratio, G.QUANTITIES[g])


def test_one_name_covers_the_greeks_it_estimates_and_leaves_the_others_on_auto():
    picks = choices(record(), method_plan("pathwise"), "gbm", GBM_PARAMS)
    assert picks == {G.DELTA: G.PATHWISE, G.GAMMA: G.OPTIMAL, G.VEGA: G.PATHWISE,
                     G.RHO: G.PATHWISE, G.THETA: G.PATHWISE}
    picks = choices(record(), method_plan("mixed"), "gbm", GBM_PARAMS)
    assert picks[G.GAMMA] == G.MIXED
    assert all(picks[g] == G.OPTIMAL for g in (G.DELTA, G.VEGA, G.RHO, G.THETA))
    picks = choices(record(), method_plan("fd"), "heston", HESTON[2.0])
    assert picks == dict.fromkeys(MODELS["heston"].greeks, G.FD)


def test_choices_only_for_the_greeks_asked():
    picks = choices(record(), method_plan("auto"), "gbm", GBM_PARAMS, asked=(G.GAMMA, G.RHO))
    assert picks == {G.GAMMA: G.OPTIMAL, G.RHO: G.OPTIMAL}
    picks = choices(record(), method_plan("auto"), "heston", HESTON[2.0], asked=(G.VEGA,))
    assert picks == {}                           # vega is not a Heston Greek


def test_a_per_greek_method_for_a_greek_the_model_lacks_is_moot():
    picks = choices(record(), method_plan({"vega": "lr", "delta": "lr"}), "heston", HESTON[2.0])
    assert G.VEGA not in picks and picks[G.DELTA] == G.LR


def test_an_invalid_explicit_estimator_names_the_trade_column_and_value():
    digital = record("digital", "put", trade_id="DIG-7")
    with pytest.raises(InputError) as err:
        choices(digital, method_plan("pathwise"), "gbm", GBM_PARAMS)
    message = str(err.value)
    assert message.startswith("trade 'DIG-7': column 'method' has value 'pathwise' for delta "
                              "of a digital put")
    assert "Dirac mass" in message and message.endswith("valid: optimal, lr, vibrato, fd")
    with pytest.raises(InputError, match="trade 'T1'.*'optimal' for delta.*GBM only"):
        choices(record(), method_plan({"delta": "optimal"}), "heston", HESTON[2.0])


def test_an_estimator_the_parameters_break_is_refused_with_the_models_reason():
    """Heston with |corr| = 1 has no non-degenerate first step for the likelihood ratio."""
    params = dict(HESTON[2.0], corr=-1.0)
    with pytest.raises(InputError, match="value 'lr' for delta.*non-degenerate first step"):
        choices(record(), method_plan({"delta": "lr"}), "heston", params)
    picks = choices(record(), method_plan("auto"), "heston", params)
    assert picks[G.DELTA] == G.PATHWISE          # lr dropped: one candidate left


def test_method_plan_names_pair_measures():
    """cross_gamma and d_pair_corr, the multi-asset measures without a column, take a per-Greek
    method like the Greeks (docs/reference.md#method)."""
    default, explicit = method_plan({"cross_gamma": "lr", "d_pair_corr": "fd"})
    assert default == "auto" and explicit == {G.CROSS_GAMMA: "lr", G.D_PAIR_CORR: "fd"}
    with pytest.raises(InputError, match="greeks does not ask"):
        method_plan({"cross_gamma": "lr"}, asked=(G.DELTA,))
