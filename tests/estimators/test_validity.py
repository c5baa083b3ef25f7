"""The validity table (``mcgreeks.estimators.validity``): each rule checked directly, with the
reason it holds, and the bump-size table (``mcgreeks.estimators.fd``) that fd's Greeks use."""
import numpy as np
import pytest

from mcgreeks import greeks as G
from mcgreeks import payoffs as P
from mcgreeks.estimators import fd
from mcgreeks.estimators.validity import (GBM, HESTON, PATHWISE_FELLER, applies,
                                          auto_candidates, valid_estimators, why_invalid)
from mcgreeks.models import MODELS

HESTON_PARAMS = dict(spot=100.0, rate=0.0, div_yield=0.0, v0=0.04, kappa=1.5, vbar=0.04, xi=0.5,
                     corr=-0.7)


def names(codes):
    return tuple(G.ESTIMATORS[e] for e in codes)


def test_gbm_lipschitz_payoffs_take_pathwise_mixed_and_their_blend():
    """A call or an Asian is Lipschitz: pathwise for first-order Greeks and mixed for gamma
    (Glasserman 2004, §7.2), lr everywhere (GBM's law of W has every parameter in it), optimal
    blending the two."""
    for kind in (P.EUROPEAN, P.ASIAN_ARITHMETIC, P.ASIAN_GEOMETRIC):
        for g in (G.DELTA, G.VEGA, G.RHO, G.THETA):
            assert names(valid_estimators(GBM, kind, g)) == ("optimal", "pathwise", "lr", "fd")
        assert names(valid_estimators(GBM, kind, G.GAMMA)) == ("optimal", "mixed", "lr", "fd")


def test_gbm_digital_takes_lr_and_vibrato_never_pathwise():
    """A digital jumps: its pathwise derivative misses the Dirac mass at the strike, so lr and
    vibrato (Giles 2009: lr over the last step) remain, with their optimal blend."""
    for g in GBM.greeks:
        assert names(valid_estimators(GBM, P.DIGITAL, g)) == ("optimal", "lr", "vibrato", "fd")
    assert "Dirac mass" in why_invalid(GBM, P.DIGITAL, G.DELTA, G.PATHWISE)


def test_gbm_discrete_barrier_vibrato_for_delta_and_gamma_only():
    """S0 enters a discrete barrier's path only through its first step; σ, r and T move every
    step, where the knock-out's jumps would bias vibrato's pathwise part."""
    for g in (G.DELTA, G.GAMMA):
        assert names(valid_estimators(GBM, P.BARRIER, g)) == ("optimal", "lr", "vibrato", "fd")
    for g in (G.VEGA, G.RHO, G.THETA):
        assert names(valid_estimators(GBM, P.BARRIER, g)) == ("lr", "fd")
    assert "discrete barriers' delta and gamma" in why_invalid(GBM, P.BARRIER, G.VEGA, G.VIBRATO)


def test_a_bridged_barrier_is_pathwise_for_first_order_greeks_but_not_mixed():
    """A continuous barrier's survival weight is smooth, so its first-order Greeks are
    pathwise-valid; the mixed gamma would need the weight's kink at the strike."""
    assert names(valid_estimators(GBM, P.BARRIER, G.DELTA, True)) == (
        "optimal", "pathwise", "lr", "fd")
    assert names(valid_estimators(GBM, P.BARRIER, G.GAMMA, True)) == ("lr", "fd")
    assert why_invalid(GBM, P.BARRIER, G.GAMMA, G.MIXED, True) == (
        "not offered for a continuous barrier's gamma; use lr")


def test_heston_scores_cover_delta_gamma_and_one_date_rho():
    """Given the variance path, ln S at the first date is Gaussian with ln S0 in its mean (delta,
    gamma) and r T in it for a one-date payoff (rho); QE's variance step has no differentiable
    density, so theta and the model parameters have no score.  No optimal blend, no vega."""
    assert names(valid_estimators(HESTON, P.EUROPEAN, G.DELTA)) == ("pathwise", "lr", "fd")
    assert names(valid_estimators(HESTON, P.EUROPEAN, G.GAMMA)) == ("mixed", "lr", "fd")
    assert names(valid_estimators(HESTON, P.EUROPEAN, G.RHO)) == ("pathwise", "lr", "fd")
    assert names(valid_estimators(HESTON, P.ASIAN_ARITHMETIC, G.RHO)) == ("pathwise", "fd")
    for g in (G.THETA, G.D_V0, G.D_CORR):
        assert names(valid_estimators(HESTON, P.EUROPEAN, g)) == ("pathwise", "fd")
        assert names(valid_estimators(HESTON, P.DIGITAL, g)) == ("fd",)
    assert valid_estimators(HESTON, P.EUROPEAN, G.VEGA) == ()
    assert "one-date payoffs (european, digital)" in why_invalid(HESTON, P.ASIAN_ARITHMETIC,
                                                                 G.RHO, G.LR)
    assert why_invalid(HESTON, P.EUROPEAN, G.DELTA, G.OPTIMAL) == (
        "the optimal blend is offered under GBM only")
    assert why_invalid(HESTON, P.EUROPEAN, G.VEGA, G.FD).startswith("vega is a GBM Greek")


def test_heston_vibrato_for_one_date_jumps_delta_and_gamma():
    assert names(valid_estimators(HESTON, P.DIGITAL, G.DELTA)) == ("lr", "vibrato", "fd")
    assert names(valid_estimators(HESTON, P.BARRIER, G.DELTA)) == ("lr", "fd")
    assert names(valid_estimators(HESTON, P.DIGITAL, G.RHO)) == ("lr", "fd")


def test_heston_degenerate_parameters_drop_lr_mixed_and_vibrato():
    """v0 = 0 or |corr| = 1: the first step's law of ln S is degenerate (no lr, no mixed);
    |corr| = 1: no step has spot noise of its own (no vibrato)."""
    flat = dict(HESTON_PARAMS, v0=0.0)
    locked = dict(HESTON_PARAMS, corr=1.0)
    assert names(valid_estimators(HESTON, P.EUROPEAN, G.GAMMA, params=flat)) == ("fd",)
    assert names(valid_estimators(HESTON, P.DIGITAL, G.DELTA, params=flat)) == ("vibrato", "fd")
    assert names(valid_estimators(HESTON, P.DIGITAL, G.DELTA, params=locked)) == ("fd",)
    assert "v0 > 0" in why_invalid(HESTON, P.EUROPEAN, G.DELTA, G.LR, params=flat)
    assert "|corr| < 1" in why_invalid(HESTON, P.DIGITAL, G.GAMMA, G.VIBRATO, params=locked)


def test_auto_takes_every_valid_estimator_but_fd_unless_nothing_else_is_valid():
    assert names(auto_candidates(GBM, P.DIGITAL, G.DELTA)) == ("optimal", "lr", "vibrato")
    assert names(auto_candidates(HESTON, P.DIGITAL, G.THETA, params=HESTON_PARAMS)) == ("fd",)


@pytest.mark.parametrize("xi, expected", [(1.0, ("fd",)), (0.35, ("pathwise", "fd")),
                                          (0.2, ("pathwise",))])
def test_heston_auto_follows_the_feller_ratio(xi, expected):
    """Below a Feller ratio of 1/2 the variance path's pathwise tangents have an infinite
    variance (benchmarks/heston_feller.py), so auto takes fd; up to 1 a pilot decides."""
    params = dict(HESTON_PARAMS, kappa=1.0, xi=xi)      # ratios 0.08, 0.65, 2
    assert PATHWISE_FELLER == (0.5, 1.0)
    for g in (G.THETA, G.D_V0, G.D_XI):
        assert names(auto_candidates(HESTON, P.EUROPEAN, g, params=params)) == expected
    assert names(auto_candidates(HESTON, P.EUROPEAN, G.D_CORR, params=params)) == ("pathwise",)


def test_applies_lists_the_greeks_an_estimator_can_take_for_some_payoff():
    assert applies(HESTON, G.LR) == (G.DELTA, G.GAMMA, G.RHO)
    assert applies(HESTON, G.OPTIMAL) == ()
    assert applies(HESTON, G.VIBRATO) == (G.DELTA, G.GAMMA)
    assert applies(GBM, G.VIBRATO) == GBM.greeks
    assert applies(GBM, G.MIXED) == (G.GAMMA,)


def test_every_model_record_uses_its_own_row_and_bumps():
    assert MODELS["gbm"].capability is GBM and MODELS["heston"].capability is HESTON
    assert tuple(G.QUANTITIES[g] for g in MODELS["heston"].greeks) == G.HESTON_GREEKS


def test_bump_arrays_keep_the_kernels_layout():
    """GBM's kernel reads 4 sizes, Heston's 9, by position (``fd.BUMP_NAMES`` order); Heston's
    maturity and variance parameters move by 10 % (QE's jumps, see ``fd.HESTON_BUMPS``)."""
    np.testing.assert_array_equal(fd.bumps(), [0.01, 0.01, 0.001, 0.01])
    heston = MODELS["heston"].bump_sizes()
    np.testing.assert_array_equal(heston, [0.01, 0.01, 0.001, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01])
    assert heston[fd.B_CORR] == 0.01 and heston[fd.B_MAT] == 0.1
    # one mapping serves every model: a name the model does not bump is ignored
    np.testing.assert_array_equal(MODELS["gbm"].bump_sizes({"v0": 0.2, "spot": 0.02}),
                                  [0.02, 0.01, 0.001, 0.01])
    assert fd.step(heston, "rate", 0.03) == 0.001 and fd.step(heston, "spot", 50.0) == 0.5
    with pytest.raises(ValueError, match="unknown bump 'sigma'"):
        fd.bumps({"sigma": 0.1})
    with pytest.raises(ValueError, match=r"fd_bumps\['corr'\] has value 0.7"):
        fd.bumps({"corr": 0.7, "spot": 0.01}, fd.HESTON_BUMPS)
    with pytest.raises(ValueError, match="must be 4"):
        fd.bumps([0.01] * 5, fd.HESTON_BUMPS)
