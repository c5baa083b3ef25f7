"""mcgreeks.estimators.optimal tested directly: the pilot covariance from its sums, and the
coefficient fits on covariances whose answer is known in closed form."""
import numpy as np
import pytest
from scipy import optimize

from mcgreeks.estimators import optimal
from mcgreeks.estimators.optimal import (
    DIRECT,
    DIRECT_X,
    FIRST_CONTROL,
    LIKELIHOOD,
    LIKELIHOOD_X,
    N_COMPONENTS,
    N_CONTROLS,
    W_MAX,
    W_MIN,
)


def _sums(data):
    """Σv then Σ v_a v_b over the upper triangle in row-major order, as the pilot keeps them."""
    iu = np.triu_indices(N_COMPONENTS)
    return np.concatenate([data.sum(axis=0), (data.T @ data)[iu]])


def test_covariance_from_sums():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((500, N_COMPONENTS)) @ rng.standard_normal(
        (N_COMPONENTS, N_COMPONENTS)) + rng.standard_normal(N_COMPONENTS)
    got = optimal.covariance(_sums(data), data.shape[0])
    np.testing.assert_allclose(got, np.cov(data, rowvar=False, ddof=1), rtol=1e-10, atol=1e-12)
    # one path: no division by zero, the (zero) second moment about the mean
    assert np.all(optimal.covariance(_sums(data[:1]), 1) == pytest.approx(0.0, abs=1e-9))


def _cov_of(loadings):
    """Covariance of components that are ``loadings`` @ (independent unit factors)."""
    a = np.asarray(loadings, dtype=float)
    return a @ a.T


def _two_estimators(var_d, var_l, cov_dl):
    """Only D and L vary (controls and the twin constant): the blend's optimum is known."""
    cov = np.zeros((N_COMPONENTS, N_COMPONENTS))
    cov[DIRECT, DIRECT], cov[LIKELIHOOD, LIKELIHOOD] = var_d, var_l
    cov[DIRECT, LIKELIHOOD] = cov[LIKELIHOOD, DIRECT] = cov_dl
    return cov


@pytest.mark.parametrize("var_d, var_l, cov_dl", [(1.0, 4.0, 0.5), (2.0, 1.0, -0.3),
                                                  (1.0, 1.0, 0.0), (3.0, 5.0, 2.0)])
@pytest.mark.parametrize("with_baseline", [True, False])
def test_blend_weight_of_two_unbiased_estimators(var_d, var_l, cov_dl, with_baseline):
    """w minimising Var(wD + (1 − w)L) is (var_L − cov)/(var_D + var_L − 2 cov)."""
    w_star = (var_l - cov_dl) / (var_d + var_l - 2.0 * cov_dl)
    assert W_MIN <= w_star <= W_MAX
    coef = optimal.coefficients(_two_estimators(var_d, var_l, cov_dl), blended=True,
                                control=False, with_baseline=with_baseline)
    assert coef[0] == pytest.approx(w_star, rel=1e-9)
    assert coef[1:] == pytest.approx((0.0,) * N_CONTROLS, abs=1e-12)


@pytest.mark.parametrize("var_d, var_l, cov_dl, bound", [(1.0, 1.21, 1.09, W_MAX),
                                                         (1.21, 1.0, 1.09, W_MIN)])
def test_blend_weight_clipped(var_d, var_l, cov_dl, bound):
    """Nearly collinear estimators put the unconstrained optimum at 4 or −3: w stops at the
    bound."""
    coef = optimal.coefficients(_two_estimators(var_d, var_l, cov_dl), blended=True,
                                control=False, with_baseline=False)
    assert coef[0] == bound


def test_baseline_recovers_linear_combination():
    """L = 2 C₁ − 1.5 C₃ + 0.7 C₅ + noise with independent unit controls: likelihood ratio
    alone (not blended) gets w = 0 and c = (2, 0, −1.5, 0, 0.7)."""
    factors = N_COMPONENTS + 2  # the controls, plus noise for L and D
    a = np.zeros((N_COMPONENTS, factors))
    for k in range(N_CONTROLS):
        a[FIRST_CONTROL + k, FIRST_CONTROL + k] = 1.0
    a[LIKELIHOOD, FIRST_CONTROL + np.array([0, 2, 4])] = (2.0, -1.5, 0.7)
    a[LIKELIHOOD, -1] = 0.4
    a[DIRECT, -2] = 1.0
    coef = optimal.coefficients(_cov_of(a), blended=False, control=False)
    assert coef[0] == 0.0
    assert coef[1:] == pytest.approx((2.0, 0.0, -1.5, 0.0, 0.7), rel=1e-9, abs=1e-12)
    none = optimal.coefficients(_cov_of(a), blended=False, control=False, with_baseline=False)
    assert none == (0.0,) + (0.0,) * N_CONTROLS


def test_direct_only_keeps_w_one():
    """Vibrato alone: w = 1 whatever the covariance, the baseline fitted to D."""
    a = np.zeros((N_COMPONENTS, N_COMPONENTS))
    for k in range(N_CONTROLS):
        a[FIRST_CONTROL + k, FIRST_CONTROL + k] = 1.0
    a[DIRECT, FIRST_CONTROL + 1] = -3.0
    a[DIRECT, DIRECT] = 0.5
    a[LIKELIHOOD, LIKELIHOOD] = 0.1  # L far better: a blend would pick w near 0
    coef = optimal.coefficients(_cov_of(a), blended=False, control=False, direct_only=True)
    assert coef[0] == 1.0
    assert coef[1:] == pytest.approx((0.0, -3.0, 0.0, 0.0, 0.0), abs=1e-9)


def test_collinear_controls_give_finite_coefficients():
    """A one-date payoff: z_n = z_1 and Σz² − n = z_1² − 1, so C₄ = C₁ and C₅ = C₂.  The fit
    stays finite and removes what the controls explain: c₁ + c₄ and c₂ + c₅ are the true
    loadings and the residual variance is the noise's."""
    factors = 4
    a = np.zeros((N_COMPONENTS, factors))
    a[FIRST_CONTROL + 0, 0] = a[FIRST_CONTROL + 3, 0] = 1.0
    a[FIRST_CONTROL + 1, 1] = a[FIRST_CONTROL + 4, 1] = 1.0
    a[FIRST_CONTROL + 2, 2] = 1.0
    a[LIKELIHOOD, :] = (1.5, -0.5, 0.25, 0.3)
    cov = _cov_of(a)
    c = np.array(optimal.coefficients(cov, blended=False, control=False)[1:])
    assert np.all(np.isfinite(c)) and np.max(np.abs(c)) < 10.0
    assert c[0] + c[3] == pytest.approx(1.5, rel=1e-9)
    assert c[1] + c[4] == pytest.approx(-0.5, rel=1e-9)
    assert c[2] == pytest.approx(0.25, rel=1e-9)
    e = np.zeros(N_COMPONENTS)
    e[LIKELIHOOD] = 1.0
    e[FIRST_CONTROL:] = -c
    assert e @ cov @ e == pytest.approx(0.3 ** 2, rel=1e-9)


def _residual_variance(cov, w):
    """Variance of wD + (1 − w)L left after regressing on the twin and the controls (lstsq)."""
    y = np.zeros(N_COMPONENTS)
    y[DIRECT], y[LIKELIHOOD] = w, 1.0 - w
    x = np.zeros(N_COMPONENTS)
    x[DIRECT_X], x[LIKELIHOOD_X] = w, 1.0 - w
    regs = np.vstack([x] + [np.eye(N_COMPONENTS)[FIRST_CONTROL + k] for k in range(N_CONTROLS)])
    g = regs @ cov @ regs.T
    b = np.linalg.lstsq(g, regs @ cov @ y, rcond=None)[0]
    return y @ cov @ y - b @ g @ b


def test_control_twin_weight_minimises_residual_variance():
    """With a control twin, w is the minimiser of the variance left after the twin's and the
    controls' regression (found here by an independent scalar minimisation)."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((N_COMPONENTS, N_COMPONENTS + 3))
    cov = _cov_of(a)
    w_ref = optimize.minimize_scalar(lambda w: _residual_variance(cov, w),
                                     bounds=(W_MIN, W_MAX), method="bounded",
                                     options={"xatol": 1e-10}).x
    coef = optimal.coefficients(cov, blended=True, control=True)
    # the fit searches a 31-point grid then a 41-point one 0.005 apart around the best
    assert coef[0] == pytest.approx(w_ref, abs=0.005)
    assert _residual_variance(cov, coef[0]) <= _residual_variance(cov, w_ref) * (1 + 1e-4)
