"""mcgreeks.linalg against NumPy's BLAS/LAPACK (to rounding) on well- and ill-conditioned
systems; the bit-for-bit agreement across machines is tests/test_machines.py's."""
import numpy as np
import pytest

from mcgreeks import linalg


def test_normal_equations_and_columns_times_match_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((1000, 6)), rng.standard_normal(1000)
    xtx, xty = np.empty((6, 6)), np.empty(6)
    linalg.normal_equations(np.ascontiguousarray(x.T), y, xtx, xty)
    assert np.allclose(xtx, x.T @ x, rtol=1e-13, atol=1e-11)
    assert np.allclose(xty, x.T @ y, rtol=1e-13, atol=1e-11)
    assert np.array_equal(xtx, xtx.T)
    out = np.empty(1000)
    linalg.columns_times(np.ascontiguousarray(x.T), xty, out)
    assert np.allclose(out, x @ xty, rtol=1e-13, atol=1e-11)
    assert out[7] == sum(x[7, a] * xty[a] for a in range(6))     # the columns in order


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1003])
def test_lane_sums_are_the_documented_tree(n):
    rng = np.random.default_rng(n)
    xt, y = rng.standard_normal((2, n)), rng.standard_normal(n)
    xtx, xty = np.empty((2, 2)), np.empty(2)
    linalg.normal_equations(xt, y, xtx, xty)
    lanes = [0.0] * 8
    for i in range(n):
        lanes[i % 8] += xt[0, i] * y[i]
    assert xty[0] == ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + \
        ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_symmetric_eigen_reconstructs_the_matrix(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n))
    a = a + a.T
    w, v = np.empty(n), np.empty((n, n))
    linalg.symmetric_eigen(a.copy(), w, v)
    assert np.allclose(v @ np.diag(w) @ v.T, a, atol=1e-13)
    assert np.allclose(v.T @ v, np.eye(n), atol=1e-14)
    assert np.allclose(np.sort(w), np.linalg.eigvalsh(a), atol=1e-13)


def test_pinv_solve_matches_numpy_also_when_rank_deficient():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, 5))
    x[:, 4] = 2.0 * x[:, 3] - x[:, 0]            # rank 4: the minimum-norm solution
    a, b = x.T @ x, x.T @ rng.standard_normal(200)
    out = np.empty(5)
    linalg.pinv_solve(a, b, 1e-9, out)
    ref = np.linalg.pinv(a, rcond=1e-9, hermitian=True) @ b
    assert np.allclose(out, ref, rtol=1e-9, atol=1e-12)
    full = rng.standard_normal((5, 5))
    a = full @ full.T + np.eye(5)
    linalg.pinv_solve(a, b, 1e-15, out)
    assert np.allclose(out, np.linalg.solve(a, b), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 7, 8, 1001])
def test_r_squared_is_the_coefficient_of_determination_in_lane_order(n):
    rng = np.random.default_rng(n)
    y = rng.normal(3.0, 2.0, n)
    fitted = y + rng.normal(0.0, 1.0, n)
    got = linalg.r_squared(y, fitted)
    expected = 1.0 - np.sum((y - fitted) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # the lanes' order exactly: the mean as Σ y·1 / n, then the two sums of squares
    lanes = np.zeros(linalg.LANES)

    def lane_sum(v):
        for i, x in enumerate(v):
            lanes[i % linalg.LANES] += x
        out = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + \
            ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
        lanes[:] = 0.0
        return out

    mean = lane_sum(y) / n
    assert got == 1.0 - lane_sum((y - fitted) ** 2) / max(lane_sum((y - mean) ** 2), 1e-300)
    assert linalg.r_squared(y, y) == 1.0
