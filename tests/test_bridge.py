"""Tests for mcgreeks.bridge: the Brownian-bridge map z -> W has exactly the Brownian covariance."""
import numpy as np
import pytest

from mcgreeks.bridge import build_tile, plan
from mcgreeks.engine import TILE

GRIDS = {
    "uniform252": np.arange(1, 253) / 252.0,
    "union": np.array([0.1, 0.25, 0.5, 0.7, 1.0, 2.0]),
    "two": np.array([0.3, 0.4]),
    "single": np.array([0.7]),
}


def bridge(grid, z):
    """W (n_dates, n_paths) from normals z (n_dates, n_paths), one tile at a time."""
    p = plan(grid)
    n, n_paths = z.shape
    w = np.empty((n, n_paths))
    zt = np.empty((n, TILE))
    wt = np.empty((n, TILE))
    for start in range(0, n_paths, TILE):
        m = min(TILE, n_paths - start)
        zt[:, :m] = z[:, start:start + m]
        wt.fill(np.nan)
        build_tile(*p, zt, wt, m)
        assert np.all(np.isnan(wt[:, m:]))  # paths >= m are left alone
        w[:, start:start + m] = wt[:, :m]
    return w


@pytest.mark.parametrize("name", GRIDS)
def test_plan_builds_each_date_once_from_built_ends(name):
    p = plan(GRIDS[name])
    n = GRIDS[name].size
    assert sorted(p.order) == list(range(n)) and p.order[0] == n - 1
    built = {-1}
    for k in range(n):
        assert p.left[k] in built and (k == 0 or p.right[k] in built)
        built.add(p.order[k])


@pytest.mark.parametrize("name", GRIDS)
def test_linear_map_has_brownian_covariance(name):
    t = GRIDS[name]
    lower = bridge(t, np.eye(t.size))  # column k is W for z = e_k
    np.testing.assert_allclose(lower @ lower.T, np.minimum.outer(t, t), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["union", "two", "uniform252"])
def test_empirical_covariance(name):
    t = GRIDS[name]
    n_paths = 300 * TILE + 17  # ends in a partial tile
    z = np.random.default_rng(3).standard_normal((t.size, n_paths))
    w = bridge(t, z)
    cov = np.minimum.outer(t, t)
    sd = np.sqrt((cov ** 2 + np.outer(t, t)) / n_paths)  # sd of a sample covariance
    emp = w @ w.T / n_paths  # the mean is known to be 0
    assert np.all(np.abs(emp - cov) < 5 * sd)
    assert np.all(np.abs(w.mean(axis=1)) < 5 * np.sqrt(t / n_paths))


def test_single_date_is_scaled_normal():
    z = np.random.default_rng(5).standard_normal((1, 100))
    np.testing.assert_array_equal(bridge([0.7], z), np.sqrt(0.7) * z)


def test_terminal_date_uses_first_normal():
    t = GRIDS["union"]
    z = np.random.default_rng(6).standard_normal((t.size, 10))
    np.testing.assert_array_equal(bridge(t, z)[-1], np.sqrt(2.0) * z[0])


@pytest.mark.parametrize("grid", [[], [0.0, 1.0], [0.5, 0.5], [1.0, 0.5], [np.nan], [[1.0]]])
def test_bad_grid_rejected(grid):
    with pytest.raises(ValueError):
        plan(grid)
