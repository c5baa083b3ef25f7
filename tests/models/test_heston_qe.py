"""The QE step of models.heston: its vectorized tile form against the per-path form, and the
uniform tails tile_normals hands the exponential branch."""
import numpy as np
import pytest
from scipy.special import ndtr

from mcgreeks import elementary
from mcgreeks.engine import TILE
from mcgreeks.models import heston as H

CASES = {  # (params, steps per year): Feller ratio 0.06 (mostly the exponential branch and its
    # atom at zero), a positive correlation, and v0 = 0 with a Feller ratio of 13.5
    "feller_0.06": dict(v0=0.02, kappa=0.8, vbar=0.03, xi=0.9, corr=-0.3),
    "corr_+0.7": dict(v0=0.04, kappa=1.5, vbar=0.04, xi=0.5, corr=0.7),
    "v0_zero": dict(v0=0.0, kappa=3.0, vbar=0.09, xi=0.2, corr=-0.9),
    # Feller ratio 1.33 (STAC-like): every path of every step in the quadratic branch, so the
    # tile steps take their quadratic-only loops (``all_quadratic``)
    "feller_1.33": dict(v0=0.0225, kappa=1.5, vbar=0.04, xi=0.3, corr=-0.7),
}


def _coefficients(params, n_steps, years):
    p = dict(spot=100.0, rate=0.02, div_yield=0.01, **params)
    dt = np.full(n_steps, years / n_steps)
    scen = H.scenario_row(p)
    return scen, H.scenario_coefficients(dt, p, [scen])[0]


def _simulate(params, want_lr, n_steps=104, years=2.0, path=0):
    scen, coef = _coefficients(params, n_steps, years)
    z = np.empty((3 * n_steps, TILE))
    H.tile_normals(7, 11, 0, path, TILE, n_steps, z)
    x, v = np.empty((n_steps, TILE)), np.empty((n_steps, TILE))
    lr = np.empty((n_steps, TILE)), np.empty((n_steps, TILE))
    H.simulate_tile(z, TILE, H.QE, coef, scen, np.empty((n_steps, H.N_COEF, H.N_DIR)), H.N_DIR,
                    want_lr, x, v, np.empty((H.N_DIR, 1, 1)), np.empty((H.N_DIR, 1, 1)), *lr,
                    np.empty(TILE), np.empty((H.N_DIR, TILE)), np.empty((H.N_DIR, TILE)))
    return x, v, z


@pytest.mark.parametrize("case", CASES)
def test_tile_step_gives_the_bits_of_the_per_path_step(case):
    """The price alone and the fd re-simulations take the vectorized step; paths with scores
    (or tangents) the per-path one: the same expressions, so the same paths to the bit."""
    x_tile, v_tile, _ = _simulate(CASES[case], want_lr=False)
    x_path, v_path, _ = _simulate(CASES[case], want_lr=True)
    np.testing.assert_array_equal(x_tile, x_path)
    np.testing.assert_array_equal(v_tile, v_path)
    if case == "feller_0.06":
        assert 0.3 < (v_tile == 0.0).mean() < 0.9     # the atom is exercised


@pytest.mark.parametrize("case", CASES)
def test_tile_path_is_the_scalar_step_path_by_path(case):
    """The tile loops (both branches and a select, or the quadratic one alone) give the bits of
    ``qe_step``, the one-path form that takes only its own branch."""
    n_steps = 104
    scen, coef = _coefficients(CASES[case], n_steps, 2.0)
    x_tile, v_tile, z = _simulate(CASES[case], want_lr=False)
    quadratic = np.empty((n_steps, TILE), dtype=bool)
    for i in range(TILE):
        v, x = scen[H.SC_V0], 0.0
        for k in range(n_steps):
            quadratic[k, i] = H.is_quadratic(coef[k], v)
            v, dx, _ = H.qe_step(v, z[2 * k + 1, i], z[2 * k, i], z[2 * n_steps + k, i], coef[k])
            x += dx
            assert (x, v) == (x_tile[k, i], v_tile[k, i]), (k, i)
    if case in ("feller_1.33", "v0_zero"):      # large Feller ratios: the quadratic-only loop
        assert quadratic.all()
    else:
        assert 0.0 < quadratic.mean() < 1.0        # both branches, in the same tiles


def test_tails_are_one_minus_the_uniform_of_each_variance_normal():
    """z[2 n + k] = 1 - U with zv = Phi^-1(U): Phi(-zv) to the accuracy of the inverse normal
    (AS241, about 1e-16 relative; scipy's ndtr is the reference), over unaligned paths too."""
    n_steps = 40
    for path in (0, 3, 1_000_003):
        z = np.empty((3 * n_steps, TILE))
        H.tile_normals(5, 9, 1, path, TILE - 5, n_steps, z)
        zv, tail = z[1:2 * n_steps:2, :TILE - 5], z[2 * n_steps:, :TILE - 5]
        np.testing.assert_allclose(tail, ndtr(-zv), rtol=1e-13, atol=0)
        assert ((tail > 0) & (tail < 1)).all()


@pytest.mark.parametrize("scheme", ["qe", "euler"])
def test_sample_paths_keeps_dates_and_scales_with_the_bits_of_the_whole_paths(scheme):
    """``keep`` and ``scale`` (the exercise pilots' way) give the rows and the spots that
    indexing the whole paths and exponentiating afterwards give, bit for bit, on a partial
    last tile and a first path off the tile grid."""
    params = dict(spot=97.0, rate=0.03, div_yield=0.01, v0=0.03, kappa=0.8, vbar=0.05, xi=0.9,
                  corr=-0.4)
    grid = np.arange(1, 27) / 26.0
    keep = np.array([0, 5, 12, 25])
    kw = dict(key0=5, key1=6, stream=2, scheme=scheme, first_path=77)
    x, v = H.sample_paths(params, grid, 1000, **kw)
    spots, kept_v = H.sample_paths(params, grid, 1000, keep=keep, scale=97.0, **kw)
    assert np.array_equal(spots, 97.0 * elementary.exp(x[keep]))
    assert np.array_equal(kept_v, v[keep])
    assert np.isfinite(spots).all() and (spots > 0).all()
