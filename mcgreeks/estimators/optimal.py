"""Likelihood ratio with a baseline, and its variance-optimal blend with the pathwise estimator.

Two facts make both unbiased whatever their coefficients, as long as the coefficients are fixed
before the paths they are applied to (mcgreeks fits them on a pilot run of its own random stream):
- a score has mean zero, so the likelihood-ratio estimate L = f·s and L - b·s have the same mean
  for any baseline b (Mohamed, Rosca, Figurnov & Mnih, "Monte Carlo gradient estimation in
  machine learning", JMLR 2020, §7.4).  The same holds for every mean-zero function of the
  path's standardized increments, so the baseline here is a vector: L - Σ c_k C_k over the
  Hermite polynomials z_1, z_1² - 1, z_1³ - 3 z_1 of the first increment z_1 = W(t_1)/√t_1, and
  z_n = W(t_n)/√t_n and Σ_k z_k² - n (z_k the standardized increments between the payoff's
  dates).  Every GBM score, and the gamma weight, is a combination of these, so the single-score
  baseline b·s is the special case; the higher Hermite terms let the baseline follow a call's
  convexity (at the money the delta's variance falls 10-200× by Gauss-Hermite quadrature, against
  about 2× for b·s alone, which cannot reach 3× there);
- where a direct estimate D (pathwise, mixed for gamma, or vibrato for a payoff that jumps) and L
  are both unbiased for the same
  derivative, so is w·D + (1 - w)·L for any w (Parmas & Sugiyama, "A unified view of likelihood
  ratio and reparameterization gradients", AISTATS 2021; the inverse-variance weighting of
  Parmas et al., "PIPPS", ICML 2018).
``optimal`` is w·D + (1 - w)·L - c·C with (w, c) of least pilot variance: ordinary least squares
of L on (L - D, C).  With a control variate (an arithmetic Asian's geometric twin x = w·D_x +
(1 - w)·L_x, same w), w minimises the variance left after regressing on the twin as well.
"""
import numpy as np

from mcgreeks import linalg
from mcgreeks._jit import kernel

#: Per-path components of one (trade, quantity) the pilot keeps covariances of: the direct and
#: likelihood-ratio estimates, the same for the control twin, then the baseline's controls.
DIRECT, LIKELIHOOD, DIRECT_X, LIKELIHOOD_X = range(4)
FIRST_CONTROL, N_CONTROLS = 4, 5
N_COMPONENTS = FIRST_CONTROL + N_CONTROLS
#: Coefficients per (trade, quantity): the weight w on the direct estimate, then c.
W = 0
N_COEFFICIENTS = 1 + N_CONTROLS
#: Bounds of w (any real w keeps the estimate unbiased; bounding it keeps a noisy pilot from
#: extrapolating far outside the two estimators it blends).
W_MIN, W_MAX = -1.0, 2.0


@kernel
def controls(z1, zn, q_excess):
    """The baseline's mean-zero controls (z_1, z_1² - 1, z_1³ - 3 z_1, z_n, Σ z_k² - n) of one
    path, from z_1, z_n and ``q_excess`` = Σ z_k² - n."""
    z1_sq = z1 * z1
    return z1, z1_sq - 1.0, z1 * (z1_sq - 3.0), zn, q_excess


@kernel
def blend(w, coef, direct, likelihood, c1, c2, c3, c4, c5):
    """One path's w·D + (1 - w)·L - c·C (c = coef[1:]; w is given, as likelihood ratio alone
    takes 0 and vibrato alone 1 whatever weight the optimal blend of the same Greek has)."""
    return (w * direct + (1.0 - w) * likelihood
            - (coef[1] * c1 + coef[2] * c2 + coef[3] * c3 + coef[4] * c4 + coef[5] * c5))


def covariance(sums, count):
    """Covariance matrix of the components from their per-path sums: ``sums`` holds Σv (first
    N_COMPONENTS) then Σ v_a v_b for a <= b in row-major order of the upper triangle.  Leading
    axes of ``sums`` are kept: sums[..., K] gives [..., N_COMPONENTS, N_COMPONENTS], each
    matrix with the same bits as alone (elementwise operations)."""
    n = N_COMPONENTS
    sums = np.asarray(sums, dtype=float)
    mean = sums[..., :n] / count
    second = np.zeros(sums.shape[:-1] + (n, n))
    upper = np.triu_indices(n)
    second[..., upper[0], upper[1]] = sums[..., n:] / count
    second = second + np.swapaxes(np.triu(second, 1), -1, -2)
    return (second - mean[..., :, None] * mean[..., None, :]) * count / max(count - 1, 1)


def _unit(index):
    e = np.zeros(N_COMPONENTS)
    e[index] = 1.0
    return e


def _regression(cov, y, regressors):
    """Least-squares coefficients of y on the regressors and the residual variance, for a batch
    of candidates: y is (k, N_COMPONENTS), regressors (k, r, N_COMPONENTS) coefficient vectors.

    For a one-date payoff z_n = z_1 and Σz² - n = z_1² - 1: the regressors are collinear, and
    a pseudo-inverse that drops directions below 1e-9 of the largest keeps the coefficients
    finite (an exact solve would return huge ones that cancel only in exact arithmetic).
    Computed by ``mcgreeks.linalg`` (fixed-order sums, Jacobi eigenvectors), not BLAS/LAPACK,
    so that the coefficients, hence the Greeks, have the same bits on every machine."""
    y = np.ascontiguousarray(y, dtype=float)
    regressors = np.ascontiguousarray(regressors, dtype=float)
    beta = np.empty(regressors.shape[:2])
    var = np.empty(y.shape[0])
    _regressions(np.ascontiguousarray(cov, dtype=float), y, regressors, 1e-9, beta, var)
    return beta, var


@kernel
def _regressions(cov, y, regressors, rcond, beta, var):
    """``_regression``'s arithmetic: for each candidate c, G = R cov R^T and h = R cov y
    (R = regressors[c]), beta[c] = pinv(G) h, var[c] = y^T cov y - beta[c] . h."""
    k, r, n = regressors.shape
    cy = np.empty(n)
    creg = np.empty((r, n))
    gram = np.empty((r, r))
    cross = np.empty(r)
    for c in range(k):
        # cov is symmetric, so its columns times a vector are cov times it
        linalg.columns_times(cov, y[c], cy)
        for a in range(r):
            linalg.columns_times(cov, regressors[c, a], creg[a])
        for a in range(r):
            for b in range(a, r):
                g = 0.0
                for i in range(n):
                    g += regressors[c, a, i] * creg[b, i]
                gram[a, b] = g
                gram[b, a] = g
            h = 0.0
            for i in range(n):
                h += regressors[c, a, i] * cy[i]
            cross[a] = h
        linalg.pinv_solve(gram, cross, rcond, beta[c])
        total = 0.0
        for i in range(n):
            total += y[c, i] * cy[i]
        for a in range(r):
            total -= beta[c, a] * cross[a]
        var[c] = total


def coefficients(cov, blended, control, with_baseline=True, direct_only=False):
    """(w, c_1..c_5) for one (trade, quantity) from its pilot covariance ``cov``.

    ``blended``: both the direct and the likelihood-ratio estimates are valid, so w is fitted;
    otherwise w = 0 (likelihood ratio with its baseline), or w = 1 with ``direct_only`` (the
    direct estimate with a baseline: vibrato).  ``control``: w minimises the variance left after
    the control twin's regression too.  Without ``with_baseline``, c = 0."""
    controls_ = ([_unit(FIRST_CONTROL + k) for k in range(N_CONTROLS)] if with_baseline
                 else [])

    def fit(ws):
        y = _unit(LIKELIHOOD)[None, :] + ws[:, None] * (_unit(DIRECT) - _unit(LIKELIHOOD))
        regs = [np.broadcast_to(c, y.shape) for c in controls_]
        if control:
            regs.append(_unit(LIKELIHOOD_X)[None, :]
                        + ws[:, None] * (_unit(DIRECT_X) - _unit(LIKELIHOOD_X)))
        if not regs:
            return _regression(cov, y, np.zeros((len(ws), 0, N_COMPONENTS)))
        return _regression(cov, y, np.stack(regs, axis=1))

    if not blended:
        ws = np.full(1, 1.0 if direct_only else 0.0)
    elif not control:
        # w and c together are one least-squares fit of L on (L - D, C).
        regs = np.stack([_unit(LIKELIHOOD) - _unit(DIRECT)] + controls_)[None]
        beta, _ = _regression(cov, _unit(LIKELIHOOD)[None], regs)
        ws = np.clip(beta[:, 0], W_MIN, W_MAX)
    else:
        coarse = np.linspace(W_MIN, W_MAX, 31)
        best = coarse[int(np.argmin(fit(coarse)[1]))]
        ws = np.linspace(best - 0.1, best + 0.1, 41)
    beta, var = fit(ws)
    k = int(np.argmin(var))
    c = np.zeros(N_CONTROLS)
    c[:len(controls_)] = beta[k, :len(controls_)]
    return (float(ws[k]),) + tuple(float(v) for v in c)
