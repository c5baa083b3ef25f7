"""The QE step of models.heston: its vectorized tile form against the per-path form, and the
uniform tails tile_normals hands the exponential branch."""
import numpy as np
import pytest
from scipy.special import ndtr

from mcgreeks.engine import TILE
from mcgreeks.models import heston as H

CASES = {  # (params, steps per year): Feller ratio 0.06 (mostly the exponential branch and its
    # atom at zero), a positive correlation, and v0 = 0 with a Feller ratio of 13.5
    "feller_0.06": dict(v0=0.02, kappa=0.8, vbar=0.03, xi=0.9, corr=-0.3),
    "corr_+0.7": dict(v0=0.04, kappa=1.5, vbar=0.04, xi=0.5, corr=0.7),
    "v0_zero": dict(v0=0.0, kappa=3.0, vbar=0.09, xi=0.2, corr=-0.9),
}


def _simulate(params, want_lr, n_steps=104, years=2.0, path=0):
    p = dict(spot=100.0, rate=0.02, div_yield=0.01, **params)
    dt = np.full(n_steps, years / n_steps)
    scen = H.scenario_row(p)
    coef = H.scenario_coefficients(dt, p, [scen])[0]
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
