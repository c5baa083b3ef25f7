"""``models.heston.row_adjoint``: the derivatives of a path's log-spot at a date with respect to
every step's normals, against central differences of the simulated path itself (each normal
moved by ±h, the QE uniform 1 - U = Phi(-zv) moved with it), and with respect to the model's
parameters, against the forward tangents of ``simulate_tile``; QE and Euler, Feller ratio above
and below 1."""
import numpy as np
import pytest
from scipy.special import ndtr

from mcgreeks.engine import TILE
from mcgreeks.models import heston as H

GRID = np.arange(1, 13) / 12.0


def _coefficients(params, grid=GRID):
    p = H.check_params(params)
    dt = np.diff(np.concatenate([[0.0], grid]))
    scen = H.scenario_row(p)
    coef = H.scenario_coefficients(dt, p, [scen])[0]
    dcoef = H.step_coefficients(dt, drift_rate=p["rate"] - p["div_yield"], kappa=p["kappa"],
                                vbar=p["vbar"], xi=p["xi"], corr=p["corr"],
                                derivatives=True)[1]
    return coef, scen, dcoef


def _simulate(params, z, scheme):
    n = GRID.size
    coef, scen, dcoef = _coefficients(params)
    x, v = np.empty((n, TILE)), np.empty((n, TILE))
    d3, d2 = np.empty((H.N_DIR, 1, 1)), np.empty((1, 1))
    H.simulate_tile(z, TILE, H.SCHEMES[scheme], coef, scen, dcoef, H.N_DIR, False, x, v, d3, d3,
                    d2, d2, np.empty(TILE), np.empty((H.N_DIR, TILE)), np.empty((H.N_DIR, TILE)))
    return x, v, coef, scen, dcoef


def _rows(rng):
    n = GRID.size
    z = np.empty((3 * n, TILE))
    z[:2 * n] = rng.standard_normal((2 * n, TILE))
    z[2 * n:] = ndtr(-z[1:2 * n:2])
    return z


@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("xi", [0.3, 0.9])
def test_row_adjoint_matches_differences_of_the_path(scheme, xi):
    params = dict(spot=100.0, rate=0.02, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.05, xi=xi,
                  corr=-0.6)
    rng = np.random.default_rng(3)
    z = _rows(rng)
    x, v, coef, scen, dcoef = _simulate(params, z, scheme)
    n = GRID.size
    g_t = 8
    adj_zs, adj_zv = np.zeros((n, TILE)), np.zeros((n, TILE))
    H.row_adjoint(z, TILE, H.SCHEMES[scheme], coef, scen, dcoef, v, g_t,
                  np.full(TILE, float(g_t)), adj_zs, adj_zv, np.empty(H.N_ADJ * TILE))
    h = 1e-6
    checked = 0
    for k in (0, 3, g_t):
        for row, adj in ((2 * k, adj_zs), (2 * k + 1, adj_zv)):
            moved = []
            for side in (1.0, -1.0):
                zz = z.copy()
                zz[row] += side * h
                zz[2 * n:] = ndtr(-zz[1:2 * n:2])
                moved.append(_simulate(params, zz, scheme)[0][g_t])
            diff = (moved[0] - moved[1]) / (2 * h)
            # paths where the move crosses a branch switch or the variance's zero differ by a
            # jump: the derivative there is the path's own, and such paths are rare
            smooth = np.abs(diff - adj[k]) < 1e-4 * (1.0 + np.abs(diff))
            assert smooth.mean() > 0.99, (k, row, smooth.mean())
            checked += smooth.sum()
    assert checked > 0.99 * 6 * TILE
    # steps after g_t do not move x at g_t
    assert np.all(adj_zs[g_t + 1:] == 0.0) and np.all(adj_zv[g_t + 1:] == 0.0)


@pytest.mark.parametrize("scheme", ["qe", "euler"])
def test_row_adjoint_ends_each_path_at_its_own_date(scheme):
    """A path ended at an earlier date (an exercisable trade's stopping date) gets, to the bit,
    the sweep of that date; the others keep the full sweep's bits."""
    params = dict(spot=100.0, rate=0.02, div_yield=0.01, v0=0.04, kappa=1.5, vbar=0.05, xi=0.5,
                  corr=-0.6)
    z = _rows(np.random.default_rng(5))
    _, v, coef, scen, dcoef = _simulate(params, z, scheme)
    n, g_t, early = GRID.size, 8, 5
    ends = np.where(np.arange(TILE) % 3 == 0, float(early), float(g_t))

    def sweep(last, ends):
        adj_zs, adj_zv = np.zeros((n, TILE)), np.zeros((n, TILE))
        acc = np.empty(H.N_ADJ * TILE)
        H.row_adjoint(z, TILE, H.SCHEMES[scheme], coef, scen, dcoef, v, last, ends, adj_zs,
                      adj_zv, acc)
        return adj_zs, adj_zv, acc.reshape(H.N_ADJ, TILE)[:1 + H.N_DIR]

    mixed, full = sweep(g_t, ends), sweep(g_t, np.full(TILE, float(g_t)))
    short = sweep(early, np.full(TILE, float(early)))
    cut = ends == early
    for got, whole, part in zip(mixed, full, short):
        assert np.array_equal(got[:, ~cut], whole[:, ~cut])
        assert np.array_equal(got[:, cut], part[:, cut])


CASES = {  # Feller ratios 1.33 (every QE step quadratic), 0.5 (mixed) and 0.06 (mostly the
    # exponential branch and its atom at zero)
    "feller_1.33": dict(v0=0.0225, kappa=1.5, vbar=0.04, xi=0.3, corr=-0.7),
    "feller_0.5": dict(v0=0.05, kappa=2.0, vbar=0.045, xi=0.6, corr=-0.65),
    "feller_0.06": dict(v0=0.02, kappa=0.8, vbar=0.03, xi=0.9, corr=-0.3),
}


GRIDS = {  # a year of daily steps (one run of QE coefficient derivatives, though the lengths
    # differ in their last bits), and weekly steps broken by payoff dates off the week (runs of
    # three lengths, ``models.heston.row_adjoint``)
    "daily": np.arange(1, 253) / 252.0,
    "weekly_and_dates": H.simulation_grid(np.array([0.3, 0.77, 1.0]), 52),
}


@pytest.mark.parametrize("scheme", ["qe", "euler"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("grid", GRIDS)
def test_row_adjoint_parameter_derivatives_are_the_forward_tangents(scheme, case, grid):
    """The sweep's derivatives along the directions (scale, v0 ... corr) at each path's own end
    date are the forward tangents tx[d, end, i] of ``simulate_tile`` up to rounding (relative
    1e-12 of the direction's largest over the tile; measured up to 3e-13, where QE's sums over
    a run of steps partly cancel), with a third of the paths ended at date 100 of the daily
    grid, 20 of the weekly one (the multi-asset pricer's exercised paths)."""
    params = dict(spot=100.0, rate=0.02, div_yield=0.01, **CASES[case])
    grid = GRIDS[grid]
    n = grid.size
    coef, scen, dcoef = _coefficients(params, grid)
    z = np.empty((3 * n, TILE))
    H.tile_normals(7, 11, 0, 0, TILE, n, z)
    x, v = np.empty((n, TILE)), np.empty((n, TILE))
    tx, tv = np.empty((H.N_DIR, n, TILE)), np.empty((H.N_DIR, n, TILE))
    d2 = np.empty((1, 1))
    H.simulate_tile(z, TILE, H.SCHEMES[scheme], coef, scen, dcoef, 0, False, x, v, tx, tv, d2,
                    d2, np.empty(TILE), np.empty((H.N_DIR, TILE)), np.empty((H.N_DIR, TILE)))
    ends = np.where(np.arange(TILE) % 3 == 0, 100.0 if n > 100 else 20.0, float(n - 1))
    acc = np.empty(H.N_ADJ * TILE)
    H.row_adjoint(z, TILE, H.SCHEMES[scheme], coef, scen, dcoef, v, n - 1, ends,
                  np.zeros((n, TILE)), np.zeros((n, TILE)), acc)
    swept = acc.reshape(H.N_ADJ, TILE)[1:1 + H.N_DIR]
    forward = tx[:, ends.astype(int), np.arange(TILE)]
    scale = np.abs(forward).max(axis=1, keepdims=True)
    assert (scale > 0.0).all()
    assert (np.abs(swept - forward) <= 1e-12 * scale).all()
